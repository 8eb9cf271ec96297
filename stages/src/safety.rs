//! `safety`: URL and domain blocklists with FineWeb's hard/soft-ban logic (datatrove's
//! `URLFilter`), and word blocklists over the text (LDNOOBW-style lists, as C4 used).
//!
//! Every list is a file the user points to (plain or gzip, one entry per line, `#`
//! comments): the FineWeb/UT1 domain list holds millions of entries under its own
//! licence, so it is not shipped. URL rules, in order, each with its own drop reason:
//! - `blocked_domain`: the URL's host or any parent domain of it is listed (checking
//!   every suffix covers the registered domain without a public-suffix list);
//! - `blocked_url`: the URL without scheme is listed;
//! - `banned_word`: a banned word equals a token of the URL (split on non-alphanumerics);
//! - `soft_banned_words`: at least `soft_word_threshold` soft-banned words are tokens;
//! - `banned_subword`: a banned subword is a substring of the URL lower-cased with
//!   non-alphanumerics removed (Aho-Corasick).
//!
//! Text rule: `text_badwords` when the text holds at least `text_badword_threshold`
//! words of the text lists (whole words for space-delimited text; any occurrence for
//! CJK entries, which have no word boundaries).
//!
//! Domains are kept as 64-bit hashes: 4.6 million entries take about 64 MB.

use crate::document::Document;
use crate::stage::{Failure, Measure, Reason, Stage, StageCx, StageError, Verdict};
use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The stage kind.
pub const KIND: &str = "safety";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str =
    "URL/domain blocklists with FineWeb's hard/soft-ban logic and word blocklists over the text";

/// Configuration of the `safety` stage. Every list is optional; a rule without its list
/// does not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Blocked domains, one per line (FineWeb: `domains`).
    pub domains: Option<PathBuf>,
    /// Blocked URLs without scheme (FineWeb: `urls`).
    pub urls: Option<PathBuf>,
    /// Words that block a URL when one is a token of it.
    pub banned_words: Option<PathBuf>,
    /// Words that block a URL when `soft_word_threshold` of them are tokens of it.
    pub soft_banned_words: Option<PathBuf>,
    /// Strings that block a URL when found in it (alphanumerics only, lower-cased).
    pub banned_subwords: Option<PathBuf>,
    /// Soft-banned URL tokens needed to block. Default 2.
    pub soft_word_threshold: usize,
    /// Word lists checked against the text (e.g. LDNOOBW `en.txt`, `zh.txt`).
    pub text_word_lists: Vec<PathBuf>,
    /// Listed words in the text that drop the document. Default 1 (as C4).
    pub text_badword_threshold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domains: None,
            urls: None,
            banned_words: None,
            soft_banned_words: None,
            banned_subwords: None,
            soft_word_threshold: 2,
            text_word_lists: Vec::new(),
            text_badword_threshold: 1,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "domains",
        doc: "path of blocked domains (host or any parent domain matches), plain or .gz",
    },
    crate::FieldDoc {
        name: "urls",
        doc: "path of blocked URLs without scheme",
    },
    crate::FieldDoc {
        name: "banned_words",
        doc: "path of words that block a URL when one is a URL token",
    },
    crate::FieldDoc {
        name: "soft_banned_words",
        doc: "path of words that block a URL when soft_word_threshold are URL tokens",
    },
    crate::FieldDoc {
        name: "banned_subwords",
        doc: "path of strings that block a URL when found in it (alphanumerics only)",
    },
    crate::FieldDoc {
        name: "soft_word_threshold",
        doc: "soft-banned URL tokens needed to block",
    },
    crate::FieldDoc {
        name: "text_word_lists",
        doc: "paths of word lists checked against the text (e.g. LDNOOBW en.txt, zh.txt)",
    },
    crate::FieldDoc {
        name: "text_badword_threshold",
        doc: "listed words in the text that drop the document",
    },
];

/// The built stage.
pub struct Safety {
    domains: HashSet<u64>,
    urls: HashSet<u64>,
    banned_words: HashSet<String>,
    soft_banned_words: HashSet<String>,
    banned_subwords: Option<AhoCorasick>,
    soft_word_threshold: usize,
    /// Text lists: whole-word automaton and CJK (substring) automaton.
    text_words: Option<AhoCorasick>,
    text_cjk: Option<AhoCorasick>,
    text_badword_threshold: usize,
}

fn hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// Calls `f` with every entry of a list: one per line, trimmed, lower-cased; blank lines
/// and `#` comments skipped. Plain or gzip (by magic bytes). Streams, so a list of
/// millions of domains is never held as strings.
pub fn for_each_entry(path: &Path, mut f: impl FnMut(&str)) -> Result<(), StageError> {
    let err = |e: std::io::Error| StageError::Config {
        kind: KIND,
        message: format!("{}: {e}", path.display()),
    };
    let file = BufReader::with_capacity(1 << 16, std::fs::File::open(path).map_err(err)?);
    let mut reader = corpus_models::io::gunzip_if_gzip(file).map_err(err)?;
    let mut line = String::new();
    let mut lower = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(err)? == 0 {
            return Ok(());
        }
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        if entry
            .bytes()
            .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
        {
            lower.clear();
            lower.extend(entry.chars().flat_map(char::to_lowercase));
            f(&lower);
        } else {
            f(entry);
        }
    }
}

/// Reads a whole (small) list; see [`for_each_entry`].
pub fn read_list(path: &Path) -> Result<Vec<String>, StageError> {
    let mut out = Vec::new();
    for_each_entry(path, |e| out.push(e.to_string()))?;
    Ok(out)
}

/// Reads a list as a set of 64-bit hashes.
fn hashed_list(path: &Option<PathBuf>, strip_www: bool) -> Result<HashSet<u64>, StageError> {
    let mut set = HashSet::new();
    if let Some(path) = path {
        for_each_entry(path, |e| {
            let e = if strip_www {
                e.trim_start_matches("www.")
            } else {
                e
            };
            set.insert(hash(e.trim_end_matches('/')));
        })?;
    }
    Ok(set)
}

fn alnum_only(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_cjk_entry(word: &str) -> bool {
    word.chars().any(crate::normalize::is_cjk_token_char)
}

/// Builds the stage, reading every configured list.
pub fn build(config: &Config) -> Result<Safety, StageError> {
    let list = |p: &Option<PathBuf>| -> Result<Vec<String>, StageError> {
        p.as_deref().map_or(Ok(Vec::new()), read_list)
    };
    let ac = |patterns: Vec<String>| -> Result<Option<AhoCorasick>, StageError> {
        if patterns.is_empty() {
            return Ok(None);
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns)
            .map(Some)
            .map_err(|e| StageError::Config {
                kind: KIND,
                message: e.to_string(),
            })
    };
    let subwords: Vec<String> = list(&config.banned_subwords)?
        .iter()
        .map(|w| alnum_only(w))
        .filter(|w| !w.is_empty())
        .collect();
    let mut words = Vec::new();
    let mut cjk = Vec::new();
    for path in &config.text_word_lists {
        for w in read_list(path)? {
            if is_cjk_entry(&w) {
                cjk.push(w);
            } else {
                words.push(w);
            }
        }
    }
    Ok(Safety {
        domains: hashed_list(&config.domains, true)?,
        urls: hashed_list(&config.urls, false)?,
        banned_words: list(&config.banned_words)?.into_iter().collect(),
        soft_banned_words: list(&config.soft_banned_words)?.into_iter().collect(),
        banned_subwords: ac(subwords)?,
        soft_word_threshold: config.soft_word_threshold.max(1),
        text_words: ac(words)?,
        text_cjk: ac(cjk)?,
        text_badword_threshold: config.text_badword_threshold.max(1),
    })
}

/// Splits a URL into (host, URL without scheme), lower-cased.
fn url_parts(url: &str) -> (String, String) {
    let lower = url.trim().to_lowercase();
    let rest = lower.split_once("://").map_or(lower.as_str(), |(_, r)| r);
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    // Drop credentials and port.
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split_once(':').map_or(host, |(h, _)| h);
    (host.trim_end_matches('.').to_string(), rest.to_string())
}

impl Safety {
    /// The URL rule that blocks `url`, if any, with what it found.
    pub fn check_url(&self, url: &str) -> Option<Failure> {
        let fail = |code, detail: String| Some(Failure::new(Reason::new(code), Some(detail)));
        let (host, no_scheme) = url_parts(url);
        if !self.domains.is_empty() {
            let mut suffix = host.as_str();
            loop {
                if self.domains.contains(&hash(suffix)) {
                    return fail("blocked_domain", format!("domain {suffix} is listed"));
                }
                match suffix.split_once('.') {
                    Some((_, parent)) if parent.contains('.') => suffix = parent,
                    _ => break,
                }
            }
        }
        if !self.urls.is_empty() && self.urls.contains(&hash(no_scheme.trim_end_matches('/'))) {
            return fail("blocked_url", "the URL is listed".into());
        }
        if !self.banned_words.is_empty() || !self.soft_banned_words.is_empty() {
            let mut soft = 0usize;
            for token in no_scheme.split(|c: char| !c.is_ascii_alphanumeric()) {
                if token.is_empty() {
                    continue;
                }
                if self.banned_words.contains(token) {
                    return fail("banned_word", format!("URL word \"{token}\" is banned"));
                }
                if self.soft_banned_words.contains(token) {
                    soft += 1;
                }
            }
            let limit = self.soft_word_threshold as f64;
            if let Some(m) = Measure::reaches("soft-banned URL words", soft as f64, limit) {
                return Some(m.fails("soft_banned_words"));
            }
        }
        if let Some(ac) = &self.banned_subwords
            && ac.is_match(&alnum_only(&no_scheme))
        {
            return fail("banned_subword", "the URL holds a banned subword".into());
        }
        None
    }

    /// Number of listed words in `text`, counting up to `limit`.
    pub fn count_text_badwords(&self, text: &str, limit: usize) -> usize {
        if self.text_words.is_none() && self.text_cjk.is_none() {
            return 0;
        }
        let lower = text.to_lowercase();
        let mut found = 0;
        if let Some(ac) = &self.text_words {
            for m in ac.find_iter(&lower) {
                // Whole words only: "class" must not match "ass".
                let before = lower[..m.start()].chars().next_back();
                let after = lower[m.end()..].chars().next();
                let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
                if boundary(before) && boundary(after) {
                    found += 1;
                    if found >= limit {
                        return found;
                    }
                }
            }
        }
        if let Some(ac) = &self.text_cjk {
            found += ac
                .find_iter(&lower)
                .take(limit.saturating_sub(found))
                .count();
        }
        found
    }
}

impl Stage for Safety {
    fn process(&self, doc: &mut Document, _cx: &mut StageCx) -> Result<Verdict, StageError> {
        if let Some(url) = doc.meta.url.as_deref()
            && let Some(failure) = self.check_url(url)
        {
            return Ok(failure.drop(doc));
        }
        let limit = self.text_badword_threshold;
        let found = self.count_text_badwords(&doc.text, limit) as f64;
        if let Some(m) = Measure::reaches("listed words", found, limit as f64) {
            return Ok(m.fails("text_badwords").drop(doc));
        }
        Ok(Verdict::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    }

    #[test]
    fn url_rules_follow_finewebs_logic() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The domain list gzip-compressed, as FineWeb ships it.
        let gz = d.join("domains.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, b"# comment\nbadsite.com\nexample.org\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let config = Config {
            domains: Some(gz),
            urls: Some(write(d, "urls", &["good.com/bad/page"])),
            banned_words: Some(write(d, "bw", &["xxx"])),
            soft_banned_words: Some(write(d, "sbw", &["hot", "babes"])),
            banned_subwords: Some(write(d, "sub", &["bad words"])),
            ..Default::default()
        };
        let s = build(&config).unwrap();
        let check = |u: &str| s.check_url(u).map(|f| f.reason.code());
        assert_eq!(check("https://www.badsite.com/x"), Some("blocked_domain"));
        assert_eq!(
            check("http://cdn.images.badsite.com:8080/"),
            Some("blocked_domain")
        );
        assert_eq!(check("https://notbadsite.com/"), None);
        assert_eq!(check("https://good.com/bad/page/"), Some("blocked_url"));
        assert_eq!(check("https://good.com/bad/other"), None);
        assert_eq!(check("https://good.com/xxx-videos"), Some("banned_word"));
        assert_eq!(check("https://good.com/xxxl-shirts"), None);
        assert_eq!(
            check("https://good.com/hot-babes"),
            Some("soft_banned_words")
        );
        assert_eq!(check("https://good.com/hot-dogs"), None);
        assert_eq!(
            check("https://good.com/Bad_Words.html"),
            Some("banned_subword")
        );
        assert_eq!(check("https://good.com/news"), None);
    }

    #[test]
    fn text_lists_match_whole_words_and_cjk_substrings() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            text_word_lists: vec![write(dir.path(), "en", &["ass", "bad phrase", "脏话"])],
            text_badword_threshold: 2,
            ..Default::default()
        };
        let s = build(&config).unwrap();
        assert_eq!(s.count_text_badwords("a class of grass", 5), 0);
        assert_eq!(s.count_text_badwords("Ass! and a BAD PHRASE.", 5), 2);
        assert_eq!(s.count_text_badwords("这是脏话，很多脏话", 5), 2);
        let mut doc = Document::new("d", "s", "one ass only");
        assert_eq!(
            s.process(&mut doc, &mut StageCx::default()).unwrap(),
            Verdict::Keep
        );
        doc.text = "ass and ass".into();
        assert_eq!(
            s.process(&mut doc, &mut StageCx::default()).unwrap(),
            Verdict::Drop(Reason::new("text_badwords"))
        );
        let missing = Config {
            domains: Some(dir.path().join("nope.txt")),
            ..Default::default()
        };
        let err = build(&missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("nope.txt"), "{err}");
    }
}
