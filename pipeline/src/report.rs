//! `corpus report RUN_DIR`: one self-contained HTML page about a finished (or partly
//! finished) run, built only from what the run wrote next to its outputs: the
//! statistics of each completed shard (`stats/part-*.json`, merged with `+=`), the
//! fuzzy dedup summary (`clusters/summary.json`) and the token manifest
//! (`tokens/manifest.json`). No document is read again, so a report of a crawl-sized
//! run takes as long as one of the sample run.
//!
//! The page has the funnel of documents and bytes per stage, drops by reason, the time
//! spent per stage, what the input readers skipped, the language and source mix and
//! score histograms of the documents written, dedup clusters and token counts. It
//! needs no network and no script: CSS and SVG are inline.
//!
//! ```no_run
//! let report = corpus::report::load(std::path::Path::new("out/default")).unwrap();
//! std::fs::write("report.html", corpus::report::html(&report)).unwrap();
//! ```

use crate::commands::tokens::TokenReport;
use crate::fuzzy::ClusterSummary;
use crate::html::escape as esc;
use crate::remote::Storage;
use crate::shard::Marker;
use crate::stats::{Count, Histogram, RunStats};
use corpus_stages::minhash::files::FileError;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Errors of building a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file of the run could not be read ([`FileError::Io`]), or is not what the run
    /// writes, or the directory is no run ([`FileError::Invalid`]).
    #[error(transparent)]
    File(#[from] FileError),
    /// The token manifest could not be read.
    #[error(transparent)]
    Tokens(#[from] crate::commands::tokens::TokensError),
}

impl ReportError {
    /// True when the directory or a file in it is not what a run writes (a usage
    /// error), rather than unreadable.
    pub fn is_invalid(&self) -> bool {
        matches!(self, ReportError::File(FileError::Invalid { .. }))
    }
}

/// What a report shows.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The run's output directory.
    pub dir: PathBuf,
    /// Statistics merged over the completed shards: with in-run or multi-pass fuzzy
    /// dedup, the stages before it (`minhash/pre/`) followed by the rest.
    pub stats: RunStats,
    /// Completed shards of the output.
    pub shards: usize,
    /// The config's fingerprint (from `config.toml`).
    pub fingerprint: Option<String>,
    /// Fuzzy dedup clusters, when the run deduplicated.
    pub dedup: Option<ClusterSummary>,
    /// Token counts, when the run tokenized.
    pub tokens: Option<TokenReport>,
    /// The sample page (`corpus sample`) to link to, relative to the report: set when
    /// one is beside it.
    pub samples: Option<String>,
}

/// A whole file of the run, local or remote.
fn read(path: &Path) -> Result<Vec<u8>, ReportError> {
    let missing = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    match Storage::of(path).read(path) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(missing()),
        Err(e) => Err(e),
    }
    .map_err(|source| {
        FileError::Io {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

fn fingerprint(root: &Path) -> Option<String> {
    let text = Storage::of(root).read(&root.join("config.toml")).ok()??;
    let text = String::from_utf8(text).ok()?;
    let line = text.lines().next()?;
    let fp = line.strip_prefix("# fingerprint = \"")?.strip_suffix('"')?;
    Some(fp.to_string())
}

/// The completed shards of the output directory `root` (local or remote), by their
/// marker's name (`part-00042.json`) in name order: those with a completion marker of
/// the config in `root/config.toml`.
pub fn completed_shards(root: &Path) -> Result<Vec<String>, ReportError> {
    let storage = Storage::of(root);
    let done = root.join("done");
    let names = storage
        .list(&done)
        .map_err(|source| FileError::Io {
            path: done.clone(),
            source,
        })?
        .into_iter()
        .filter(|n| n.starts_with("part-") && n.ends_with(".json"));
    let fp = fingerprint(root);
    let mut completed = Vec::new();
    for name in names {
        let Some(marker) = Marker::read(&done.join(&name)) else {
            continue;
        };
        if fp.as_ref().is_some_and(|fp| *fp != marker.fingerprint) {
            // A leftover of another config (kept by --overwrite of other shards).
            continue;
        }
        completed.push(name);
    }
    Ok(completed)
}

/// The config a run wrote (`config.toml`); empty when there is none.
pub fn run_config(root: &Path) -> Result<toml::Table, ReportError> {
    let path = root.join("config.toml");
    let invalid = |message: String| FileError::Invalid {
        path: path.clone(),
        message,
    };
    match Storage::of(root).read(&path) {
        Ok(Some(bytes)) => {
            let text = String::from_utf8(bytes).map_err(|e| invalid(e.to_string()))?;
            Ok(toml::from_str(&text).map_err(|e| invalid(e.to_string()))?)
        }
        _ => Ok(toml::Table::new()),
    }
}

/// The `[[stages]]` tables of a run's config with their kinds (older runs with fuzzy
/// dedup named it `minhash_filter`).
pub fn stage_tables(config: &toml::Table) -> Vec<(&toml::Table, &str)> {
    config
        .get("stages")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_table())
        .map(|s| {
            let kind = match s.get("kind").and_then(|k| k.as_str()) {
                Some("minhash_filter") => corpus_stages::minhash::KIND,
                Some(k) => k,
                None => "",
            };
            (s, kind)
        })
        .collect()
}

/// The `pre/` output directories of the passes before each dedup barrier of a run
/// with stage `kinds`, with the barrier's name (`minhash_dedup`).
pub fn pre_roots(root: &Path, kinds: &[&str]) -> Vec<(String, PathBuf)> {
    crate::shard::barrier_names(kinds)
        .into_iter()
        .map(|(_, name, dir)| (name, root.join(dir).join("pre")))
        .collect()
}

/// Sums the statistics of every completed shard of the output directory `root` (those
/// with a completion marker of the config in `root/config.toml`). Returns the sum and
/// the number of shards.
pub fn merge_completed(root: &Path) -> Result<(RunStats, usize), ReportError> {
    let mut total = RunStats::default();
    let mut shards = 0;
    for name in completed_shards(root)? {
        let path = root.join("stats").join(&name);
        let stats: RunStats =
            serde_json::from_slice(&read(&path)?).map_err(|e| FileError::Invalid {
                path: path.clone(),
                message: format!("not the statistics of a shard: {e}"),
            })?;
        total += &stats;
        shards += 1;
    }
    Ok((total, shards))
}

/// Reads what the run in `root` wrote into a report.
pub fn load(root: &Path) -> Result<RunReport, ReportError> {
    // Object storage has no directories to check: a run there is known by its markers.
    if !Storage::of(root).is_remote() && !root.is_dir() {
        return Err(FileError::Invalid {
            path: root.to_path_buf(),
            message: "not a directory".into(),
        }
        .into());
    }
    let (post, shards) = merge_completed(root)?;
    if shards == 0 {
        return Err(FileError::Invalid {
            path: root.to_path_buf(),
            message: "no completed shard (done/part-*.json with stats/part-*.json): give \
                      the output directory of `corpus run`"
                .into(),
        }
        .into());
    }
    // The config of the run: its whole config (older runs with fuzzy dedup wrote the
    // part from minhash_dedup on, naming it `minhash_filter`).
    let config = run_config(root)?;
    let (stages, kinds): (Vec<&toml::Table>, Vec<&str>) = stage_tables(&config).into_iter().unzip();
    // The funnel: the passes before each dedup barrier (their `pre/` documents), then
    // the last pass.
    let mut pre_roots: Vec<PathBuf> = pre_roots(root, &kinds)
        .into_iter()
        .map(|(_, pre)| pre)
        .collect();
    if pre_roots.is_empty() {
        pre_roots.push(root.join("minhash").join("pre"));
    }
    let mut stats: Option<RunStats> = None;
    for pre_root in pre_roots.iter().filter(|p| p.join("done").is_dir()) {
        let (pre, _) = merge_completed(pre_root)?;
        stats = Some(match stats {
            None => pre,
            Some(s) => crate::executor::chain_stats(&s, &pre),
        });
    }
    let stats = match stats {
        Some(pre) => crate::executor::chain_stats(&pre, &post),
        None => post,
    };
    let work_dir = stages
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| **k == corpus_stages::minhash::KIND)
        .find_map(|(s, _)| s.get("work_dir").and_then(|w| w.as_str()))
        .filter(|w| !w.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("minhash"));
    let summary_path = corpus_stages::minhash::files::names::cluster_summary(&work_dir);
    let dedup = if summary_path.is_file() {
        Some(
            serde_json::from_slice(&read(&summary_path)?).map_err(|e| FileError::Invalid {
                path: summary_path.clone(),
                message: format!("not a cluster summary: {e}"),
            })?,
        )
    } else {
        None
    };
    // The `tokenize` stage's folder (older runs: a `[tokenize]` table).
    let tokens_dir = root.join(
        stages
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| **k == corpus_stages::tokenize::KIND)
            .map(|(s, _)| *s)
            .chain(config.get("tokenize").and_then(|t| t.as_table()))
            .find_map(|t| t.get("dir").and_then(|d| d.as_str()))
            .unwrap_or("tokens"),
    );
    let tokens = if tokens_dir.join(crate::commands::pack::MANIFEST).is_file() {
        Some(crate::commands::pack::report(&tokens_dir)?)
    } else {
        None
    };
    Ok(RunReport {
        dir: root.to_path_buf(),
        stats,
        shards,
        fingerprint: fingerprint(root),
        dedup,
        tokens,
        samples: None,
    })
}

/// `corpus report`: writes the report of the run in `root` to `output` (`-`: standard
/// output), linking to the sample page when one ([`sample::PAGE`]) is beside it.
///
/// [`sample::PAGE`]: crate::commands::sample::PAGE
pub fn command(root: &Path, output: &Path) -> Result<(), ReportError> {
    let mut report = load(root)?;
    let page = crate::commands::sample::PAGE;
    let beside = output.parent().unwrap_or(Path::new("")).join(page);
    if output != Path::new("-") && beside.is_file() {
        report.samples = Some(page.to_string());
    }
    crate::commands::tokens::write_output(output, html(&report).as_bytes())?;
    Ok(())
}

const BLUE: &str = "#4e79a7";
const ORANGE: &str = "#f28e2b";
const RED: &str = "#e15759";
use crate::html::PALETTE;

/// The page style, shared with the sample page ([`crate::commands::sample`]).
pub const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;\
background:#f4f5f7;margin:0;padding:24px}\
main{max-width:1040px;margin:0 auto}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 10px}\
.sub{color:#666;margin-bottom:16px;word-break:break-all}\
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:14px 18px;margin-bottom:16px}\
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:16px}\
.kpi{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 14px;min-width:130px;flex:1}\
.kpi b{display:block;font-size:20px}.kpi span{color:#666;font-size:12px}\
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}.grid .card{margin:0}\
table{border-collapse:collapse;width:100%}\
th,td{padding:3px 8px;text-align:right;border-bottom:1px solid #eef0f2;white-space:nowrap}\
th:first-child,td:first-child{text-align:left}th{font-weight:600;color:#555;font-size:12px}\
td.l{text-align:left}\
.bar{height:10px;background:#4e79a7;border-radius:2px;display:inline-block;vertical-align:middle}\
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}\
.hists{display:flex;flex-wrap:wrap;gap:18px}.note{color:#666;font-size:12px}\
svg text{font:11px system-ui,sans-serif;fill:#333}";

/// Renders a report as one HTML page (no scripts, no external resources).
pub fn html(r: &RunReport) -> String {
    let st = &r.stats;
    let mut h = String::with_capacity(32 << 10);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = writeln!(
        h,
        "<title>corpus run report: {}</title><style>{STYLE}</style></head><body><main>",
        esc(&r.dir.display().to_string())
    );
    let _ = writeln!(
        h,
        "<h1>corpus run report</h1><div class=\"sub\">{} &middot; {} shard(s) complete{}{}</div>",
        esc(&r.dir.display().to_string()),
        r.shards,
        if st.failed_shards > 0 {
            format!(", {} failed", st.failed_shards)
        } else {
            String::new()
        },
        r.fingerprint
            .as_ref()
            .map(|f| format!(" &middot; config {}", esc(f)))
            .unwrap_or_default()
    );
    kpis(&mut h, r);
    funnel(&mut h, st);
    drops(&mut h, st);
    samples(&mut h, r);
    h.push_str("<div class=\"grid\">\n");
    mix(
        &mut h,
        "Languages of the documents written",
        &st.output.by_lang,
    );
    mix(
        &mut h,
        "Sources of the documents written",
        &st.output.by_source,
    );
    h.push_str("</div>\n");
    histograms(&mut h, st);
    h.push_str("<div class=\"grid\">\n");
    input(&mut h, st);
    times(&mut h, st);
    h.push_str("</div>\n");
    if let Some(d) = &r.dedup {
        dedup(&mut h, d);
    }
    if let Some(t) = &r.tokens {
        tokens(&mut h, t);
    }
    h.push_str(
        "<p class=\"note\">Built by <code>corpus report</code> from the statistics files of the \
         run (stats/, done/, minhash/, tokens/manifest.json); no document was read.</p>\n",
    );
    h.push_str("</main></body></html>\n");
    h
}

fn kpis(h: &mut String, r: &RunReport) {
    let st = &r.stats;
    let read_docs = st.input.docs;
    let mut items = vec![
        (num(st.input.records), "records read".to_string()),
        (num(read_docs), "documents read".to_string()),
        (
            num(st.docs_out),
            format!("documents written ({})", pct(st.docs_out, read_docs)),
        ),
        (bytes(st.input.bytes), "input read (compressed)".to_string()),
        (bytes(st.bytes_out), "text written".to_string()),
    ];
    if let Some(t) = &r.tokens {
        items.push((num(t.total.tokens), "tokens packed".to_string()));
    }
    kpi_row(h, &items);
}

/// A row of headline numbers, each (value, label), as HTML (the sample page has one
/// too).
pub fn kpi_row(h: &mut String, items: &[(String, String)]) {
    h.push_str("<div class=\"kpis\">");
    for (value, label) in items {
        let _ = write!(
            h,
            "<div class=\"kpi\"><b>{value}</b><span>{label}</span></div>"
        );
    }
    h.push_str("</div>\n");
}

/// Documents and bytes left after each stage, as bars scaled to what was read.
fn funnel(h: &mut String, st: &RunStats) {
    let first_bytes = st.stages.first().map_or(st.bytes_out, |s| s.bytes_in);
    let mut rows: Vec<(String, u64, u64)> = vec![("read".to_string(), st.input.docs, first_bytes)];
    for s in &st.stages {
        rows.push((s.kind.clone(), s.docs_out, s.bytes_out));
    }
    let last = rows.last().map(|r| (r.1, r.2)).unwrap_or_default();
    if last != (st.docs_out, st.bytes_out) {
        rows.push(("written".to_string(), st.docs_out, st.bytes_out));
    }
    let (max_docs, max_bytes) = (
        rows.iter().map(|r| r.1).max().unwrap_or(0).max(1),
        rows.iter().map(|r| r.2).max().unwrap_or(0).max(1),
    );
    let (label_w, bar_w, row_h) = (120.0, 560.0, 34.0);
    let height = row_h * rows.len() as f64 + 24.0;
    let _ = write!(
        h,
        "<div class=\"card\"><h2>Funnel: documents and text bytes left after each stage</h2>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" height=\"{height}\" role=\"img\">\
         <rect x=\"{label_w}\" y=\"2\" width=\"10\" height=\"10\" fill=\"{BLUE}\"/>\
         <text x=\"{}\" y=\"11\">documents</text>\
         <rect x=\"{}\" y=\"2\" width=\"10\" height=\"10\" fill=\"{ORANGE}\"/>\
         <text x=\"{}\" y=\"11\">bytes (of documents entering the first stage; text after extract)</text>",
        label_w + 14.0,
        label_w + 90.0,
        label_w + 104.0
    );
    for (i, (name, docs, b)) in rows.iter().enumerate() {
        let y = 22.0 + row_h * i as f64;
        let wd = bar_w * *docs as f64 / max_docs as f64;
        let wb = bar_w * *b as f64 / max_bytes as f64;
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{}\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{wd:.1}\" height=\"14\" fill=\"{BLUE}\"/>\
             <rect x=\"{label_w}\" y=\"{}\" width=\"{wb:.1}\" height=\"8\" fill=\"{ORANGE}\"/>\
             <text x=\"{}\" y=\"{}\">{} docs ({}) &#183; {} ({})</text>",
            y + 15.0,
            esc(name),
            y + 16.0,
            label_w + bar_w + 8.0,
            y + 15.0,
            num(*docs),
            pct(*docs, st.input.docs),
            bytes(*b),
            pct(*b, first_bytes)
        );
    }
    h.push_str(
        "</svg>\n<table><tr><th>stage</th><th>docs in</th><th>docs out</th><th>kept</th>\
                <th>bytes in</th><th>bytes out</th><th>dropped</th></tr>\n",
    );
    for s in &st.stages {
        let dropped: u64 = s.drops.values().sum();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.kind),
            num(s.docs_in),
            num(s.docs_out),
            pct(s.docs_out, s.docs_in),
            bytes(s.bytes_in),
            bytes(s.bytes_out),
            num(dropped)
        );
    }
    h.push_str("</table></div>\n");
}

/// Where to read the documents themselves: the sample page, or how to make one.
fn samples(h: &mut String, r: &RunReport) {
    h.push_str("<div class=\"card\"><h2>Samples</h2><p>");
    match &r.samples {
        Some(href) => {
            let _ = write!(
                h,
                "Kept documents by source and language, dropped ones by stage and reason, \
                 with the measured value of the rule that dropped each: \
                 <a href=\"{}\">see samples</a>.",
                esc(href)
            );
        }
        None => {
            let _ = write!(
                h,
                "To read kept documents by source and language and dropped ones by stage and \
                 reason (with the measured value of the rule that dropped each), write a \
                 sample page beside this report with <code>corpus sample {} -o {}</code> \
                 and write the report again: it then links to it.",
                esc(&r.dir.display().to_string()),
                crate::commands::sample::PAGE
            );
        }
    }
    h.push_str("</p></div>\n");
}

fn drops(h: &mut String, st: &RunStats) {
    let mut rows: Vec<(&str, &str, u64, u64)> = Vec::new();
    for s in &st.stages {
        for (reason, n) in &s.drops {
            rows.push((s.kind.as_str(), reason.as_str(), *n, s.docs_in));
        }
    }
    h.push_str("<div class=\"card\"><h2>Drops by reason</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"note\">No document was dropped.</p></div>\n");
        return;
    }
    let max = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    h.push_str("<table><tr><th>stage</th><th>reason</th><th>docs</th><th>of stage input</th><th></th></tr>\n");
    for (stage, reason, n, docs_in) in rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"l\" style=\"width:45%\"><span class=\"bar\" style=\"width:{:.1}%;background:{RED}\"></span></td></tr>",
            esc(stage),
            esc(reason),
            num(n),
            pct(n, docs_in),
            100.0 * n as f64 / max as f64
        );
    }
    h.push_str("</table></div>\n");
}

/// A stacked bar and a table of the largest groups (the rest summed as `other`).
fn mix(h: &mut String, title: &str, groups: &BTreeMap<String, Count>) {
    let _ = write!(h, "<div class=\"card\"><h2>{}</h2>", esc(title));
    if groups.is_empty() {
        h.push_str("<p class=\"note\">No document written.</p></div>\n");
        return;
    }
    let mut rows: Vec<(String, Count)> = groups.iter().map(|(k, c)| (k.clone(), *c)).collect();
    rows.sort_by(|a, b| b.1.docs.cmp(&a.1.docs).then_with(|| a.0.cmp(&b.0)));
    const TOP: usize = 9;
    if rows.len() > TOP + 1 {
        let mut other = Count::default();
        for (_, c) in rows.drain(TOP..) {
            other += &c;
        }
        rows.push(("other".to_string(), other));
    }
    let total_docs: u64 = rows.iter().map(|r| r.1.docs).sum::<u64>().max(1);
    let total_bytes: u64 = rows.iter().map(|r| r.1.bytes).sum::<u64>().max(1);
    let width = 470.0;
    h.push_str(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"470\" height=\"44\" role=\"img\">",
    );
    for (y, total, pick) in [(0.0, total_docs, 0usize), (24.0, total_bytes, 1usize)] {
        let mut x = 0.0;
        for (i, (k, c)) in rows.iter().enumerate() {
            let v = if pick == 0 { c.docs } else { c.bytes };
            let w = width * v as f64 / total as f64;
            let _ = write!(
                h,
                "<rect x=\"{x:.2}\" y=\"{y}\" width=\"{w:.2}\" height=\"18\" fill=\"{}\"><title>{}: {}</title></rect>",
                PALETTE[i % PALETTE.len()],
                esc(k),
                pct(v, total)
            );
            x += w;
        }
    }
    h.push_str("</svg><div class=\"note\">top bar: documents, bottom bar: text bytes</div>\n");
    h.push_str("<table><tr><th></th><th>docs</th><th>share</th><th>text</th><th>share</th></tr>\n");
    for (i, (k, c)) in rows.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td><span class=\"sw\" style=\"background:{}\"></span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            PALETTE[i % PALETTE.len()],
            esc(k),
            num(c.docs),
            pct(c.docs, total_docs),
            bytes(c.bytes),
            pct(c.bytes, total_bytes)
        );
    }
    h.push_str("</table></div>\n");
}

fn histograms(h: &mut String, st: &RunStats) {
    let hs = &st.output.histograms;
    h.push_str(
        "<div class=\"card\"><h2>Score and size distributions of the documents written</h2>",
    );
    if hs.is_empty() {
        h.push_str("<p class=\"note\">No document written.</p></div>\n");
        return;
    }
    h.push_str("<div class=\"hists\">");
    // Sizes first, then the scores in a fixed order, then anything else.
    let order = ["log10_bytes", "lang_score", "quality", "safety"];
    let mut names: Vec<&String> = hs.keys().collect();
    names.sort_by_key(|n| (order.iter().position(|o| o == n).unwrap_or(order.len()), *n));
    for name in names {
        histogram(h, name, &hs[name]);
    }
    h.push_str("</div>");
    if !st.output.flags.is_empty() {
        h.push_str(
            "<h2 style=\"margin-top:12px\">Rule flags (annotate mode) on documents written</h2>\
                    <table><tr><th>flag</th><th>docs</th><th>of written</th></tr>",
        );
        for (flag, n) in &st.output.flags {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(flag),
                num(*n),
                pct(*n, st.docs_out)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</div>\n");
}

fn histogram(h: &mut String, name: &str, hist: &Histogram) {
    let (w, ht, left, bottom) = (310.0, 150.0, 36.0, 20.0);
    let title = match name {
        "log10_bytes" => "text size (bytes, log scale)",
        "lang_score" => "language ID confidence",
        "quality" => "quality score",
        "safety" => "safety score (unsafe probability)",
        other => other,
    };
    let n = hist.bins.len().max(1);
    let max = hist.bins.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = w - left - 6.0;
    let plot_h = ht - bottom - 18.0;
    let _ = write!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" role=\"img\">\
         <text x=\"0\" y=\"12\" style=\"font-weight:600\">{} ({} docs)</text>\
         <text x=\"{}\" y=\"24\" text-anchor=\"end\">{}</text>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        esc(title),
        num(hist.total()),
        left - 4.0,
        num(max),
        ht - bottom,
        w - 6.0,
        ht - bottom
    );
    let bw = plot_w / n as f64;
    for (i, &c) in hist.bins.iter().enumerate() {
        let bh = plot_h * c as f64 / max as f64;
        let lo = hist.lo + (hist.hi - hist.lo) * i as f64 / n as f64;
        let hi = hist.lo + (hist.hi - hist.lo) * (i + 1) as f64 / n as f64;
        let _ = write!(
            h,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" fill=\"{BLUE}\"><title>{}..{}: {}</title></rect>",
            left + bw * i as f64 + 0.5,
            ht - bottom - bh,
            (bw - 1.0).max(0.5),
            axis(name, lo),
            axis(name, hi),
            c
        );
    }
    for frac in [0.0, 0.5, 1.0] {
        let v = hist.lo + (hist.hi - hist.lo) * frac;
        let anchor = if frac == 0.0 {
            "start"
        } else if frac == 1.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            left + plot_w * frac,
            ht - 5.0,
            axis(name, v)
        );
    }
    h.push_str("</svg>");
}

/// An axis label: sizes from their log10, scores as they are.
fn axis(name: &str, v: f64) -> String {
    if name.starts_with("log10_") {
        bytes(10f64.powf(v).round() as u64)
    } else {
        format!("{v:.2}")
    }
}

fn input(h: &mut String, st: &RunStats) {
    let i = &st.input;
    h.push_str("<div class=\"card\"><h2>Input</h2><table>");
    let _ = write!(
        h,
        "<tr><td>records</td><td>{}</td></tr><tr><td>documents</td><td>{}</td></tr>\
         <tr><td>bytes read (as stored)</td><td>{}</td></tr>",
        num(i.records),
        num(i.docs),
        bytes(i.bytes)
    );
    for (label, map) in [
        ("skipped", &i.skipped),
        ("corrupt", &i.corrupt),
        ("repaired", &i.repaired),
    ] {
        for (k, n) in map {
            let _ = write!(
                h,
                "<tr><td>{label}: {}</td><td>{}</td></tr>",
                esc(k),
                num(*n)
            );
        }
    }
    h.push_str("</table></div>\n");
}

fn times(h: &mut String, st: &RunStats) {
    h.push_str(
        "<div class=\"card\"><h2>Time per stage</h2>\
                <table><tr><th>stage</th><th>CPU seconds</th><th>share</th>\
                <th>thread-seconds</th><th>docs per CPU second</th></tr>",
    );
    // CPU time is comparable between a loaded and an idle machine; runs of older
    // versions recorded only the threads' wall time, which stands in for it.
    let cpu = |s: &crate::stats::StageStats| {
        if s.cpu_seconds > 0.0 {
            s.cpu_seconds
        } else {
            s.seconds
        }
    };
    let total: f64 = st.stages.iter().map(cpu).sum::<f64>().max(1e-9);
    for s in &st.stages {
        let rate = if cpu(s) > 0.0 {
            num((s.docs_in as f64 / cpu(s)) as u64)
        } else {
            "-".into()
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.2}</td><td>{:.1}%</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&s.kind),
            cpu(s),
            100.0 * cpu(s) / total,
            s.seconds,
            rate
        );
    }
    let _ = writeln!(
        h,
        "</table><p class=\"note\">Summed over threads, tasks and passes; a dedup \
         barrier's own passes (signatures, buckets, clusters) count in its stage. Shard \
         wall time summed over shards: {:.1}s.</p></div>",
        st.seconds
    );
}

fn dedup(h: &mut String, d: &ClusterSummary) {
    let _ = writeln!(
        h,
        "<div class=\"card\"><h2>Fuzzy dedup (MinHash/LSH)</h2><table>\
         <tr><td>clusters of two or more documents</td><td>{}</td></tr>\
         <tr><td>documents in those clusters</td><td>{}</td></tr>\
         <tr><td>documents removed (all but one per cluster)</td><td>{}</td></tr>\
         <tr><td>LSH buckets of two or more</td><td>{}</td></tr>\
         <tr><td>candidate pairs verified (rejected)</td><td>{} ({})</td></tr>\
         <tr><td>input files</td><td>{}</td></tr></table></div>",
        num(d.clusters),
        num(d.clustered),
        num(d.removed),
        num(d.buckets),
        num(d.pairs_verified),
        num(d.pairs_rejected),
        d.inputs.len()
    );
}

fn tokens(h: &mut String, t: &TokenReport) {
    let _ = write!(
        h,
        "<div class=\"card\"><h2>Tokens</h2><div class=\"note\">{}</div>",
        esc(&t.tokenizer)
    );
    h.push_str("<div class=\"grid\">");
    for (title, rows) in [
        ("split", &t.by_split),
        ("language", &t.by_lang),
        ("source", &t.by_source),
    ] {
        if !rows.is_empty() {
            let _ = write!(h, "<div>{}</div>", crate::html::token_mix(title, rows));
        }
    }
    let _ = writeln!(
        h,
        "</div><p class=\"note\">{} documents, {} tokens in all.</p></div>",
        num(t.total.docs),
        num(t.total.tokens)
    );
}

/// 1234567 as `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{OutputMix, StageStats};
    use crate::testing::assert_mentions;

    fn sample() -> RunReport {
        let mut output = OutputMix::default();
        for (i, lang) in ["en", "en", "zh", "fr"].iter().enumerate() {
            let mut d = corpus_stages::Document::new(format!("{i}"), "web<x>", "t".repeat(100));
            d.meta.lang = Some(lang.to_string());
            d.meta.lang_score = Some(0.9);
            output.add(&d);
        }
        let mut quality = StageStats {
            kind: "quality".into(),
            docs_in: 10,
            docs_out: 4,
            bytes_in: 5000,
            bytes_out: 400,
            seconds: 0.5,
            ..Default::default()
        };
        quality.drops.insert("gopher_short".into(), 6);
        RunReport {
            dir: "out/x".into(),
            stats: RunStats {
                shards: 1,
                stages: vec![quality],
                docs_out: 4,
                bytes_out: 400,
                output,
                ..Default::default()
            },
            shards: 1,
            ..Default::default()
        }
    }

    #[test]
    fn page_holds_the_numbers_and_no_external_resource() {
        let page = html(&sample());
        for needle in [
            "gopher_short",
            "60.0%",
            "language ID confidence",
            "web&lt;x&gt;",
            ">zh<",
            "<svg",
        ] {
            assert!(page.contains(needle), "missing {needle}");
        }
        // Nothing to fetch: no script, image, stylesheet or font from elsewhere (the
        // only URL is the SVG namespace, a name rather than a request).
        let page = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for banned in [
            "<script", "http://", "https://", "src=", "@import", "url(", "<link",
        ] {
            assert!(!page.contains(banned), "{banned} in the page");
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(pct(1, 0), "-");
        assert_eq!(pct(1, 3), "33.3%");
    }

    #[test]
    fn a_directory_without_a_run_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no completed shard"), "{e}");
        let e = load(&dir.path().join("nope")).unwrap_err().to_string();
        assert_mentions(&e, &["nope", "not a directory"]);
    }
}
