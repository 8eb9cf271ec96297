//! What the HTML pages (`corpus report`, `corpus tokens report --html`) share.

use crate::commands::tokens::Count;
use std::collections::BTreeMap;

/// `s` with `&`, `<`, `>` and `"` escaped, for text and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The colours of bar segments and their swatches (class `sw`), in order.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// One grouping of token counts (by split, source, language or shard) as the token
/// report and the run report show it: a bar whose segments are sized by tokens, then a
/// table of documents, tokens, share, bytes and bytes per token, each row with its
/// segment's colour (class `sw`).
pub fn token_mix(title: &str, rows: &BTreeMap<String, Count>) -> String {
    let total: u64 = rows.values().map(|c| c.tokens).sum::<u64>().max(1);
    let share = |n: u64| 100.0 * n as f64 / total as f64;
    let mut h = format!(
        "<h3>By {title}</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 800 40\" \
         width=\"100%\" height=\"40\" preserveAspectRatio=\"none\" role=\"img\">\n"
    );
    let mut x = 0.0;
    for (i, (k, c)) in rows.iter().enumerate() {
        let w = 8.0 * share(c.tokens);
        h.push_str(&format!(
            "<rect x=\"{x:.2}\" y=\"0\" width=\"{w:.2}\" height=\"40\" fill=\"{}\"><title>{}: {} tokens ({:.2}%)</title></rect>\n",
            PALETTE[i % PALETTE.len()],
            escape(k),
            c.tokens,
            share(c.tokens)
        ));
        x += w;
    }
    h.push_str(&format!(
        "</svg>\n<table><tr><th>{title}</th><th>docs</th><th>tokens</th><th>share</th><th>bytes</th>\
         <th>bytes/token</th></tr>\n"
    ));
    for (i, (k, c)) in rows.iter().enumerate() {
        let per_token = crate::commands::tokens::bytes_per_token(c.bytes, c.tokens);
        h.push_str(&format!(
            "<tr><td><span class=\"sw\" style=\"background:{}\"></span>{}</td><td>{}</td><td>{}</td>\
             <td>{:.2}%</td><td>{}</td><td>{per_token}</td></tr>\n",
            PALETTE[i % PALETTE.len()],
            escape(k),
            c.docs,
            c.tokens,
            share(c.tokens),
            c.bytes,
        ));
    }
    h.push_str("</table>\n");
    h
}
