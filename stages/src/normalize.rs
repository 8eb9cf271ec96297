//! `normalize`: Unicode normalization and whitespace cleanup of the text, and the shared
//! dedup key ([`dedup_key`], [`key_tokens`]).
//!
//! The stage ([`normalize`]) rewrites the text in this order, and the result is a fixed
//! point (normalizing it again changes nothing):
//! 1. Line breaks: CRLF and lone CR, vertical tab, form feed, NEL, U+2028 and U+2029
//!    become `\n`.
//! 2. Spaces: tab (unless `keep_tabs`), no-break space, the en/em/thin... spaces of
//!    U+2000..U+200A, narrow and medium math spaces, ogham space mark and the ideographic
//!    space U+3000 become an ASCII space.
//! 3. Removed: C0 and C1 control characters other than the ones above, DEL, zero-width
//!    space U+200B, word joiner U+2060 and the invisible operators, byte-order mark
//!    U+FEFF, soft hyphen, Mongolian vowel separator, and the bidirectional controls
//!    (LRM, RLM, ALM, embeddings, overrides, isolates). The bidi controls go because they
//!    are invisible noise in training text and can reorder what a reader sees ("Trojan
//!    Source"); the Unicode bidi algorithm already lays out ordinary RTL text without them.
//! 4. Joiners: ZWJ (U+200D) and ZWNJ (U+200C) are kept between two visible characters
//!    and removed elsewhere (at a line edge, next to a space, doubled). Between visible
//!    characters they carry meaning: ZWJ glues emoji sequences (👩‍💻, 👨‍👩‍👧) and selects
//!    Indic conjunct forms; ZWNJ is part of Persian and Indic spelling.
//! 5. Noncharacters (U+FFFE, U+FFFF, U+FDD0..U+FDEF and the last two of every plane)
//!    become U+FFFD. Invalid byte sequences never reach a stage: text is decoded with
//!    replacement (`Document::decode_raw`); [`normalize_bytes`] does the same for bytes.
//! 6. Lines: trailing spaces are removed; inside a line, a run of spaces becomes one
//!    space (`collapse_spaces`), the indentation at the start of a line is kept; runs of
//!    blank lines are collapsed to `max_blank_lines`; blank lines at the start and end of
//!    the text are removed.
//! 7. NFC (default, as Qwen's tokenizer normalizes) or NFKC. Text already in the form
//!    (checked with `is_nfc_quick`/`is_nfkc_quick`) is not rebuilt.
//!
//! NFKC maps some characters to spaces (U+00A8 diaeresis becomes space + combining
//! diaeresis), so in that mode the cleanup runs a second time when NFKC changed the text.

use crate::document::Document;
use crate::stage::{Reason, Stage, StageCx, StageError, Verdict};
use serde::{Deserialize, Serialize};
use unicode_normalization::{IsNormalized, UnicodeNormalization};

/// The stage kind.
pub const KIND: &str = "normalize";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "Unicode NFC/NFKC, line and space cleanup, invisible characters removed";

/// Nothing is left of the text after normalization (it was only whitespace and
/// invisible characters).
pub const EMPTY: Reason = Reason::new("empty");

/// Unicode normalization form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// Canonical composition: keeps every distinction a reader sees.
    Nfc,
    /// Compatibility composition: also folds full-width forms, ligatures, superscripts,
    /// circled numbers... into their plain forms.
    Nfkc,
}

/// Configuration of the `normalize` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Normalization form: `nfc` or `nfkc`. Default `nfc`.
    pub form: Form,
    /// Keep tabs as tabs (for code and tables); otherwise a tab becomes a space.
    /// Default false.
    pub keep_tabs: bool,
    /// Collapse runs of spaces inside a line to one space (indentation is kept).
    /// Default true.
    pub collapse_spaces: bool,
    /// Most consecutive blank lines kept. Default 1.
    pub max_blank_lines: usize,
    /// Drop documents left empty by normalization (reason `empty`). Default true.
    pub drop_empty: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            form: Form::Nfc,
            keep_tabs: false,
            collapse_spaces: true,
            max_blank_lines: 1,
            drop_empty: true,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "form",
        doc: "Unicode normalization form: \"nfc\" (as Qwen's tokenizer) or \"nfkc\" (also folds full-width and compatibility forms)",
    },
    crate::FieldDoc {
        name: "keep_tabs",
        doc: "keep tab characters; false turns them into spaces",
    },
    crate::FieldDoc {
        name: "collapse_spaces",
        doc: "collapse runs of spaces inside a line to one space (indentation at the start of a line is kept)",
    },
    crate::FieldDoc {
        name: "max_blank_lines",
        doc: "most consecutive blank lines kept; longer runs are collapsed",
    },
    crate::FieldDoc {
        name: "drop_empty",
        doc: "drop documents whose text is empty after normalization (empty)",
    },
];

/// The built `normalize` stage.
#[derive(Debug, Clone)]
pub struct Normalize {
    config: Config,
}

/// Builds the stage.
pub fn build(config: &Config) -> Result<Normalize, StageError> {
    Ok(Normalize {
        config: config.clone(),
    })
}

impl Stage for Normalize {
    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        let out = normalize(&doc.text, &self.config);
        if out != doc.text {
            cx.count("changed", 1);
            doc.text = out;
        }
        Ok(if self.config.drop_empty && doc.text.is_empty() {
            Verdict::Drop(EMPTY)
        } else {
            Verdict::Keep
        })
    }
}

/// What the cleanup does with one character.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Newline,
    Space,
    Tab,
    Removed,
    Joiner,
    Visible(char),
}

fn is_noncharacter(c: char) -> bool {
    let u = c as u32;
    (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

fn classify(c: char, keep_tabs: bool) -> Class {
    match c {
        '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => Class::Newline,
        '\t' if keep_tabs => Class::Tab,
        ' '
        | '\t'
        | '\u{A0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200A}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => Class::Space,
        '\u{200C}' | '\u{200D}' => Class::Joiner,
        '\0'..='\u{1F}'
        | '\u{7F}'..='\u{9F}'
        | '\u{AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}' => Class::Removed,
        c if is_noncharacter(c) => Class::Visible('\u{FFFD}'),
        c => Class::Visible(c),
    }
}

/// Steps 1 to 6 of the module documentation, into `out` (cleared first).
fn cleanup(text: &str, config: &Config, out: &mut String) {
    out.clear();
    out.reserve(text.len());
    let bytes = text.as_bytes();
    // Whitespace seen since the last visible character of the current line; written only
    // when a visible character follows, which drops trailing whitespace.
    let mut pending = String::new();
    let mut newlines = 0usize;
    let mut line_has_content = false;
    let mut i = 0;
    // Writes what is pending before a visible character.
    let flush = |out: &mut String,
                 pending: &mut String,
                 newlines: &mut usize,
                 line_has_content: &mut bool| {
        if *newlines > 0 {
            if !out.is_empty() {
                for _ in 0..(*newlines).min(config.max_blank_lines + 1) {
                    out.push('\n');
                }
            }
            *newlines = 0;
        }
        if !pending.is_empty() {
            if *line_has_content && config.collapse_spaces {
                out.push(' ');
            } else {
                out.push_str(pending);
            }
            pending.clear();
        }
        *line_has_content = true;
    };
    while i < bytes.len() {
        let b = bytes[i];
        if (0x21..=0x7E).contains(&b) {
            // A run of visible ASCII is copied as one slice: the common case.
            let start = i;
            while i < bytes.len() && (0x21..=0x7E).contains(&bytes[i]) {
                i += 1;
            }
            flush(out, &mut pending, &mut newlines, &mut line_has_content);
            out.push_str(&text[start..i]);
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        i += c.len_utf8();
        if c == '\r' {
            if bytes.get(i) != Some(&b'\n') {
                pending.clear();
                newlines += 1;
                line_has_content = false;
            }
            continue;
        }
        match classify(c, config.keep_tabs) {
            Class::Newline => {
                pending.clear();
                newlines += 1;
                line_has_content = false;
            }
            Class::Space => pending.push(' '),
            Class::Tab => pending.push('\t'),
            Class::Removed => {}
            Class::Joiner => {
                // Kept only between two visible characters: the previous one written
                // with nothing pending, the next one the first that is not removed.
                let after_visible = pending.is_empty()
                    && newlines == 0
                    && out.chars().next_back().is_some_and(|p| p != '\n');
                let before_visible = after_visible
                    && text[i..]
                        .chars()
                        .map(|n| lookahead_class(n, config.keep_tabs))
                        .find(|k| *k != Class::Removed)
                        .is_some_and(|k| matches!(k, Class::Visible(_)));
                if before_visible {
                    out.push(c);
                }
            }
            Class::Visible(v) => {
                flush(out, &mut pending, &mut newlines, &mut line_has_content);
                out.push(v);
            }
        }
    }
}

/// [`classify`] as the joiner look-ahead needs it: `\r` is a control there, but the
/// cleanup turns it into a line break, so the look-ahead must not skip it.
fn lookahead_class(c: char, keep_tabs: bool) -> Class {
    if c == '\r' {
        Class::Newline
    } else {
        classify(c, keep_tabs)
    }
}

fn normal_form(text: String, form: Form) -> String {
    match form {
        Form::Nfc => {
            if unicode_normalization::is_nfc_quick(text.chars()) == IsNormalized::Yes {
                text
            } else {
                text.nfc().collect()
            }
        }
        Form::Nfkc => {
            if unicode_normalization::is_nfkc_quick(text.chars()) == IsNormalized::Yes {
                text
            } else {
                text.nfkc().collect()
            }
        }
    }
}

/// Normalizes `text` as the stage does (see the module documentation).
pub fn normalize(text: &str, config: &Config) -> String {
    let mut out = String::new();
    cleanup(text, config, &mut out);
    let once = normal_form(out, config.form);
    if config.form == Form::Nfkc {
        // NFKC may have produced spaces (U+3000, U+00A8...) that the cleanup rules cover.
        let mut again = String::new();
        cleanup(&once, config, &mut again);
        if again != once {
            return normal_form(again, config.form);
        }
    }
    once
}

/// Normalizes bytes that may not be valid UTF-8: invalid sequences become U+FFFD.
pub fn normalize_bytes(bytes: &[u8], config: &Config) -> String {
    normalize(&String::from_utf8_lossy(bytes), config)
}

/// Writes the dedup key of `text` into `out` (cleared first).
///
/// This is THE text key shared by exact dedup (the content hash is taken over it),
/// MinHash (shingles are built from [`key_tokens`] of it) and decontamination (n-grams of
/// [`key_tokens`]), so the three see text the same way. Changing it changes every hash:
/// treat it as a format.
///
/// The key is the text in NFKC (full-width forms, ligatures, compatibility characters
/// folded), lowercased (per character, Unicode lowercase mapping), with every numeric
/// character replaced by `0`, letters and combining marks kept (CJK characters each
/// stay), and everything else (punctuation, symbols, emoji, whitespace, controls) treated
/// as a separator: runs of separators become one ASCII space, none at either end.
///
/// So `"Hello,   World! 2024"` and `"hello world 1999"` have the same key
/// (`"hello world 0000"`), and so do `"ＡＢＣ１２３"` and `"abc456"` (`"abc000"`). Digits
/// stay in their word: `"abc000"` and `"abc 000"` differ. The key is idempotent:
/// `dedup_key(dedup_key(x)) == dedup_key(x)`.
pub fn dedup_key(text: &str, out: &mut String) {
    dedup_key_with(text, out, &mut NoMap);
}

/// Writes the dedup key of `text` into `out`, as [`dedup_key`] does, and fills `map`
/// with the byte range of `text` that each byte of the key came from, so that a span
/// of key tokens can be found again in the text (decontamination removes matched spans
/// from the text itself). Slower than [`dedup_key`]: use it on the few texts that need
/// it.
///
/// ```
/// use corpus_stages::normalize::{dedup_key_mapped, KeyMap};
/// let text = "Say: HELLO,   Wörld!";
/// let (mut key, mut map) = (String::new(), KeyMap::default());
/// dedup_key_mapped(text, &mut key, &mut map);
/// assert_eq!(key, "say hello wörld");
/// let at = key.find("hello").unwrap();
/// assert_eq!(&text[map.source_range(at..key.len())], "HELLO,   Wörld");
/// ```
pub fn dedup_key_mapped(text: &str, out: &mut String, map: &mut KeyMap) {
    map.start.clear();
    map.end.clear();
    dedup_key_with(text, out, map);
}

fn dedup_key_with<M: KeyMapping>(text: &str, out: &mut String, map: &mut M) {
    key_pass(text, out, map);
    // Lowercasing can leave text that NFKC would still change (a few characters
    // lowercase to decomposed sequences); more passes make the key a fixed point.
    for _ in 0..2 {
        // ASCII and Han ideographs (U+4E00..U+9FFF) are NFKC and starters: a key made of
        // them only, as most are, needs no look-up per character.
        if out
            .chars()
            .all(|c| c.is_ascii() || ('\u{4E00}'..='\u{9FFF}').contains(&c))
            || unicode_normalization::is_nfkc_quick(out.chars()) == IsNormalized::Yes
        {
            return;
        }
        let first = std::mem::take(out);
        let mut inner = map.fresh();
        key_pass(&first, out, &mut inner);
        map.compose(inner);
        if *out == first {
            return;
        }
    }
}

/// Where the bytes of a dedup key came from (see [`dedup_key_mapped`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMap {
    /// Per key byte: the start of its source range.
    start: Vec<usize>,
    /// Per key byte: the end of its source range.
    end: Vec<usize>,
}

impl KeyMap {
    /// The byte range of the source text that the key bytes `key` came from: from the
    /// start of the first one's source to the end of the last one's. Empty at the start
    /// of the text for an empty range.
    ///
    /// The granularity is the character, except inside stretches of text that NFKC had
    /// to rewrite as a whole (such as a letter and its combining marks, or a word of a
    /// non-Latin script with the character before it): a key byte from such a stretch
    /// maps to the whole stretch.
    pub fn source_range(&self, key: std::ops::Range<usize>) -> std::ops::Range<usize> {
        if key.is_empty() || key.end > self.start.len() {
            return 0..0;
        }
        self.start[key.start]..self.end[key.end - 1]
    }

    /// Bytes of key mapped.
    pub fn len(&self) -> usize {
        self.start.len()
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }
}

/// What `key_pass` records about where key bytes come from: nothing ([`NoMap`], the
/// hot path, compiled away) or a [`KeyMap`].
trait KeyMapping {
    /// Key bytes from `key_len` on came from `source` in the text.
    fn mark(&mut self, key_len: usize, source: std::ops::Range<usize>);
    /// An empty mapping of the same kind, for a further pass over the key.
    fn fresh(&self) -> Self;
    /// Replaces this mapping (text -> key) by its composition with `inner` (key -> new
    /// key).
    fn compose(&mut self, inner: Self);
}

struct NoMap;

impl KeyMapping for NoMap {
    #[inline(always)]
    fn mark(&mut self, _: usize, _: std::ops::Range<usize>) {}
    fn fresh(&self) -> Self {
        NoMap
    }
    fn compose(&mut self, _: Self) {}
}

impl KeyMapping for KeyMap {
    fn mark(&mut self, key_len: usize, source: std::ops::Range<usize>) {
        self.start.resize(key_len, source.start);
        self.end.resize(key_len, source.end);
    }
    fn fresh(&self) -> Self {
        KeyMap::default()
    }
    fn compose(&mut self, inner: Self) {
        // Both maps are monotonic, so a range of the first key maps to the span from its
        // first byte's start to its last byte's end.
        let outer = std::mem::take(self);
        self.start = inner.start.iter().map(|&s| outer.start[s]).collect();
        self.end = inner.end.iter().map(|&e| outer.end[e - 1]).collect();
    }
}

/// What the key makes of each ASCII byte: the lowercase letter, `0` for a digit, 0 for
/// a separator.
const ASCII_KEY: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() {
            c.to_ascii_lowercase()
        } else if c.is_ascii_digit() {
            b'0'
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Writes a key: the kept characters, with one space where dropped ones stood between
/// two kept ones.
#[derive(Default)]
struct KeyWriter {
    /// Characters were dropped since the last kept one.
    separator: bool,
}

impl KeyWriter {
    #[inline]
    fn push(&mut self, out: &mut String, kept: Option<char>) {
        match kept {
            Some(k) => {
                if self.separator && !out.is_empty() {
                    out.push(' ');
                }
                self.separator = false;
                out.push(k);
            }
            None => self.separator = true,
        }
    }
}

/// What the key keeps of a lowercased, NFKC-normalized character: letters and
/// combining marks as they are, any digit as `0`, nothing of the rest.
#[inline]
fn key_char(c: char) -> Option<char> {
    if c.is_alphabetic() || unicode_normalization::char::is_combining_mark(c) {
        Some(c)
    } else if c.is_numeric() {
        Some('0')
    } else {
        None
    }
}

fn key_pass<M: KeyMapping>(text: &str, out: &mut String, map: &mut M) {
    out.clear();
    out.reserve(text.len());
    let mut writer = KeyWriter::default();
    if text.is_ascii() {
        // The common case, byte by byte through a table.
        for (i, &b) in text.as_bytes().iter().enumerate() {
            let k = ASCII_KEY[usize::from(b)];
            writer.push(out, (k != 0).then(|| char::from(k)));
            map.mark(out.len(), i..i + 1);
        }
        return;
    }
    let mut push = |out: &mut String, c: char| {
        // Han ideographs are most of Chinese text: kept as they are, without the
        // Unicode table look-ups below.
        let kept = if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
            Some(c)
        } else if c.is_ascii() {
            if c.is_ascii_alphabetic() {
                Some(c.to_ascii_lowercase())
            } else if c.is_ascii_digit() {
                Some('0')
            } else {
                None
            }
        } else {
            key_char(c)
        };
        writer.push(out, kept);
    };
    fn lower(c: char, out: &mut String, push: &mut impl FnMut(&mut String, char)) {
        if c.is_ascii() || ('\u{4E00}'..='\u{9FFF}').contains(&c) {
            push(out, c);
        } else {
            for l in c.to_lowercase() {
                push(out, l);
            }
        }
    }
    // NFKC (the slowest step) only runs over stretches of text that need it: ASCII, Han
    // ideographs, full-width ASCII and CJK punctuation are handled one by one, since NFKC
    // either keeps them or maps them alone (full-width to ASCII, U+3000 to a space). The
    // inert character before a stretch goes into it, as it may compose with what follows
    // (e + U+0301); none of these composes with what precedes it.
    let mut pending: Option<char> = None;
    let mut pending_at = 0;
    let mut stretch: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if is_key_inert(c) {
            if let Some(start) = stretch.take() {
                for d in text[start..i].nfkc() {
                    lower(d, out, &mut push);
                }
                map.mark(out.len(), start..i);
            } else if let Some(p) = pending {
                lower(fold_inert(p), out, &mut push);
                map.mark(out.len(), pending_at..i);
            }
            pending = Some(c);
            pending_at = i;
        } else if stretch.is_none() {
            stretch = Some(if pending.is_some() { pending_at } else { i });
            pending = None;
        }
    }
    if let Some(start) = stretch {
        for d in text[start..].nfkc() {
            lower(d, out, &mut push);
        }
        map.mark(out.len(), start..text.len());
    } else if let Some(p) = pending {
        lower(fold_inert(p), out, &mut push);
        map.mark(out.len(), pending_at..text.len());
    }
}

/// Characters the dedup key handles without running NFKC (see `key_pass`).
fn is_key_inert(c: char) -> bool {
    matches!(c, '\0'..='\u{7F}' | '\u{4E00}'..='\u{9FFF}' | '\u{FF01}'..='\u{FF5E}' | '\u{3000}'..='\u{3002}' | '\u{300C}'..='\u{3011}')
}

/// NFKC of an inert character.
fn fold_inert(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        c => c,
    }
}

/// Characters written without spaces between words, each of which is one token in
/// [`key_tokens`]: Han ideographs, Hiragana and Katakana. (Hangul is written with spaces
/// between words and is tokenized by them; Thai, Lao, Khmer and Myanmar are not split
/// further than their spaces.)
pub fn is_cjk_token_char(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3134F}'
        | '\u{2E80}'..='\u{2FDF}'
        | '\u{3005}'..='\u{3007}'
        | '\u{3040}'..='\u{30FF}'
        | '\u{31F0}'..='\u{31FF}'
        | '\u{FF66}'..='\u{FF9F}'
    )
}

/// The tokens of a dedup key (see [`dedup_key`]): whitespace-separated words, except
/// that every CJK character ([`is_cjk_token_char`]) is a token of its own, so Chinese
/// and Japanese text gets as many tokens as it has characters. MinHash shingles and
/// decontamination n-grams are built from these tokens.
///
/// ```
/// use corpus_stages::normalize::{dedup_key, key_tokens};
/// let mut key = String::new();
/// dedup_key("The iPhone手机壳, 2 pieces!", &mut key);
/// assert_eq!(key, "the iphone手机壳 0 pieces");
/// let tokens: Vec<&str> = key_tokens(&key).collect();
/// assert_eq!(tokens, ["the", "iphone", "手", "机", "壳", "0", "pieces"]);
/// ```
pub fn key_tokens(key: &str) -> KeyTokens<'_> {
    KeyTokens { rest: key }
}

/// Iterator returned by [`key_tokens`].
#[derive(Debug, Clone)]
pub struct KeyTokens<'a> {
    rest: &'a str,
}

impl<'a> Iterator for KeyTokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest.trim_start_matches(char::is_whitespace);
        let mut chars = rest.char_indices();
        let (_, first) = chars.next()?;
        let end = if is_cjk_token_char(first) {
            first.len_utf8()
        } else {
            chars
                .find(|&(_, c)| c.is_whitespace() || is_cjk_token_char(c))
                .map_or(rest.len(), |(i, _)| i)
        };
        let (token, after) = rest.split_at(end);
        self.rest = after;
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nfc(text: &str) -> String {
        normalize(text, &Config::default())
    }

    fn nfkc(text: &str) -> String {
        normalize(
            text,
            &Config {
                form: Form::Nfkc,
                ..Config::default()
            },
        )
    }

    fn key(text: &str) -> String {
        let mut out = String::new();
        dedup_key(text, &mut out);
        out
    }

    /// The mapped key is the key; every token's source range lies on character
    /// boundaries, in order, and holds the token (its key contains it).
    fn check_key_map(text: &str) -> Result<(), TestCaseError> {
        let (mut mapped, mut map) = (String::new(), KeyMap::default());
        dedup_key_mapped(text, &mut mapped, &mut map);
        let k = key(text);
        prop_assert_eq!(&mapped, &k);
        prop_assert_eq!(map.len(), k.len());
        let mut last = 0..0;
        for token in key_tokens(&k) {
            let at = token.as_ptr() as usize - k.as_ptr() as usize;
            let r = map.source_range(at..at + token.len());
            prop_assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
            prop_assert!(
                r.start < r.end && r.start >= last.start && r.end >= last.end,
                "{:?} after {:?}",
                r,
                last
            );
            let piece = key(&text[r.clone()]);
            prop_assert!(
                piece.contains(token),
                "token {:?} not in key {:?} of {:?}",
                token,
                piece,
                &text[r.clone()]
            );
            last = r;
        }
        Ok(())
    }

    #[test]
    fn key_map_points_into_the_original_text() {
        let text = "Ｔｈｅ  Café—crème 2024! 小明有五个苹果。";
        let (mut k, mut map) = (String::new(), KeyMap::default());
        dedup_key_mapped(text, &mut k, &mut map);
        assert_eq!(k, "the café crème 0000 小明有五个苹果");
        let find = |t: &str| {
            let at = k.find(t).unwrap();
            &text[map.source_range(at..at + t.len())]
        };
        assert_eq!(find("the"), "Ｔｈｅ");
        assert_eq!(find("café crème"), "Café—crème");
        assert_eq!(find("0000"), "2024");
        assert_eq!(find("五个苹"), "五个苹");
        assert_eq!(map.source_range(0..0), 0..0);
    }

    #[test]
    fn newlines_and_spaces() {
        assert_eq!(nfc("a\r\nb\rc\u{2028}d"), "a\nb\nc\nd");
        assert_eq!(nfc("a  \t b   \n\n\n\n c\u{3000}\u{A0}d  "), "a b\n\n c d");
        assert_eq!(nfc("\n\n  title\n\n"), "  title");
        assert_eq!(nfc("   \n\t\n"), "");
        let tabs = Config {
            keep_tabs: true,
            ..Config::default()
        };
        assert_eq!(normalize("\tx\t\ty \t", &tabs), "\tx y");
        let loose = Config {
            collapse_spaces: false,
            max_blank_lines: 0,
            ..Config::default()
        };
        assert_eq!(normalize("a   b\n\n\nc", &loose), "a   b\nc");
    }

    #[test]
    fn invisible_characters() {
        assert_eq!(nfc("\u{FEFF}a\u{200B}b\u{AD}c\u{0}\u{7}\u{9F}d"), "abcd");
        // Bidi controls go, the Hebrew and Arabic letters stay.
        assert_eq!(nfc("\u{202E}שלום\u{202C} \u{200F}مرحبا"), "שלום مرحبا");
        // ZWJ inside an emoji sequence stays; at an edge or next to a space it goes.
        let family = "👨\u{200D}👩\u{200D}👧";
        assert_eq!(nfc(family), family);
        assert_eq!(nfc("\u{200D}a \u{200D}b\u{200D}"), "a b");
        assert_eq!(nfc("a\u{200D}\u{200D}b"), "a\u{200D}b");
        // ZWNJ in Persian spelling stays.
        assert_eq!(nfc("می\u{200C}خواهم"), "می\u{200C}خواهم");
        assert_eq!(nfc("x\u{FFFE}y\u{FDD0}"), "x\u{FFFD}y\u{FFFD}");
        assert_eq!(
            normalize_bytes(b"ok\xff\xfe!", &Config::default()),
            "ok\u{FFFD}\u{FFFD}!"
        );
    }

    #[test]
    fn forms() {
        // e + combining acute composes in both forms.
        assert_eq!(nfc("e\u{301}"), "\u{E9}");
        // A removed character between a letter and its mark lets them compose.
        assert_eq!(nfc("e\u{200B}\u{301}"), "\u{E9}");
        assert_eq!(nfc("ＡＢＣ１２３ ﬁ"), "ＡＢＣ１２３ ﬁ");
        assert_eq!(nfkc("ＡＢＣ１２３ ﬁ"), "ABC123 fi");
        assert_eq!(nfkc("a\u{3000}\u{3000}b"), "a b");
    }

    #[test]
    fn stage_counts_changes_and_drops_empty() {
        let stage = build(&Config::default()).unwrap();
        let mut cx = StageCx::default();
        let mut doc = Document::new("d", "s", "x  y");
        assert_eq!(stage.process(&mut doc, &mut cx).unwrap(), Verdict::Keep);
        assert_eq!(doc.text, "x y");
        let mut doc = Document::new("d", "s", "\u{200B}\n");
        assert_eq!(
            stage.process(&mut doc, &mut cx).unwrap(),
            Verdict::Drop(EMPTY)
        );
        assert_eq!(cx.take_counters()["changed"], 2);
    }

    #[test]
    fn dedup_key_folds_case_punctuation_digits_width() {
        assert_eq!(key("Hello,   World! 2024"), "hello world 0000");
        assert_eq!(key("hello world 1999"), "hello world 0000");
        assert_eq!(key("ＨＥＬＬＯ　ｗｏｒｌｄ！１２"), "hello world 00");
        assert_eq!(key("«Ça va?» — oui."), "ça va oui");
        assert_eq!(key("你好，世界！"), "你好 世界");
        assert_eq!(key("  ...  "), "");
        assert_eq!(key("e\u{301}TÉ"), "été");
    }

    #[test]
    fn tokens_split_cjk_per_character() {
        let k = key("日本語のテキスト and Korean 한국어 텍스트");
        let t: Vec<&str> = key_tokens(&k).collect();
        assert_eq!(
            t,
            [
                "日",
                "本",
                "語",
                "の",
                "テ",
                "キ",
                "ス",
                "ト",
                "and",
                "korean",
                "한국어",
                "텍스트"
            ]
        );
        assert_eq!(key_tokens("").count(), 0);
    }

    /// Text built from the pieces that stress normalization.
    fn adversarial() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("e".to_string()),
            Just("A".to_string()),
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\t".to_string()),
            "[\u{300}-\u{36F}]".prop_map(|s| s),
            "[\u{FF01}-\u{FF5E}]".prop_map(|s| s),
            Just("\u{3000}".to_string()),
            Just("\u{A8}".to_string()),
            Just("\u{2002}".to_string()),
            Just("\u{200D}".to_string()),
            Just("\u{200C}".to_string()),
            Just("\u{200B}".to_string()),
            Just("\u{200E}".to_string()),
            Just("\u{200F}".to_string()),
            Just("\u{202E}".to_string()),
            Just("\u{FEFF}".to_string()),
            Just("👨".to_string()),
            Just("\u{FE0F}".to_string()),
            Just("\u{1F3FD}".to_string()),
            Just("ש".to_string()),
            Just("م".to_string()),
            Just("\u{FB2A}".to_string()),
            Just("\u{1E0A}\u{323}".to_string()),
            Just("ﬁ".to_string()),
            Just("İ".to_string()),
            Just("ẞ".to_string()),
            Just("Ⅻ".to_string()),
            Just("①".to_string()),
            Just("中".to_string()),
            Just("\u{85}".to_string()),
            Just("\u{0}".to_string()),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    fn configs() -> impl Strategy<Value = Config> {
        (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..3).prop_map(
            |(nfkc, keep_tabs, collapse_spaces, max_blank_lines)| Config {
                form: if nfkc { Form::Nfkc } else { Form::Nfc },
                keep_tabs,
                collapse_spaces,
                max_blank_lines,
                drop_empty: true,
            },
        )
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent_on_any_text(text in "\\PC{0,80}|.{0,80}", config in configs()) {
            let once = normalize(&text, &config);
            prop_assert_eq!(normalize(&once, &config), once);
        }

        #[test]
        fn normalize_is_idempotent_on_adversarial_text(text in adversarial(), config in configs()) {
            let once = normalize(&text, &config);
            prop_assert_eq!(&normalize(&once, &config), &once);
            prop_assert!(!once.contains('\r') && !once.ends_with(' ') && !once.starts_with('\n'));
        }

        #[test]
        fn dedup_key_is_idempotent(text in "\\PC{0,80}") {
            let k = key(&text);
            prop_assert_eq!(key(&k), k.clone());
            prop_assert!(!k.contains("  ") && !k.starts_with(' ') && !k.ends_with(' '));
        }

        #[test]
        fn dedup_key_fast_paths_agree_with_plain_nfkc(text in "(\\PC|[\u{FF01}-\u{FF5E}\u{3000}-\u{3011}\u{300}-\u{36F}\u{1100}-\u{11FF}\u{AC00}-\u{AC10}e中])*") {
            // The key as specified: NFKC of the whole text, lowercased, classified.
            let mut reference = String::new();
            let mut writer = KeyWriter::default();
            for c in text.nfkc().flat_map(char::to_lowercase) {
                writer.push(&mut reference, key_char(c));
            }
            let mut fast = String::new();
            key_pass(&text, &mut fast, &mut NoMap);
            prop_assert_eq!(fast, reference);
        }

        #[test]
        fn dedup_key_is_idempotent_on_adversarial_text(text in adversarial()) {
            let k = key(&text);
            prop_assert_eq!(key(&k), k);
        }

        #[test]
        fn dedup_key_ignores_case_punctuation_and_width(words in proptest::collection::vec("[a-zA-Z]{1,8}", 1..8), punct in "[,.!?;:]{0,3}") {
            let plain = words.join(" ");
            let shouty: String = words
                .iter()
                .map(|w| format!("{}{punct}", w.to_uppercase()))
                .collect::<Vec<_>>()
                .join("  ");
            // Full-width forms of the ASCII letters.
            let wide: String = plain
                .chars()
                .map(|c| if c == ' ' { '\u{3000}' } else { char::from_u32(c as u32 + 0xFEE0).unwrap_or(c) })
                .collect();
            let k = key(&plain);
            prop_assert_eq!(&key(&shouty), &k);
            prop_assert_eq!(&key(&wide), &k);
            prop_assert_eq!(k, plain.to_lowercase());
        }

        #[test]
        fn key_map_gives_the_same_key_and_finds_every_token(text in "(\\PC|[\u{FF01}-\u{FF5E}\u{3000}-\u{3011}\u{300}-\u{36F}\u{1E9E}\u{130}\u{1F88}\u{AC00}-\u{AC10}e中 ,.])*") {
            check_key_map(&text)?;
        }

        #[test]
        fn key_map_on_adversarial_text(text in adversarial()) {
            check_key_map(&text)?;
        }
        #[test]
        fn tokens_rebuild_the_key(text in "\\PC{0,60}") {
            let k = key(&text);
            let joined: String = key_tokens(&k).collect();
            let without_spaces: String = k.chars().filter(|c| *c != ' ').collect();
            prop_assert_eq!(joined, without_spaces);
        }
    }
}
