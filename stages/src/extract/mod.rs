//! `extract`: turns the raw HTML of a web page into its main text.
//!
//! Reads `Document::raw` (the HTTP body; when there is none, `text`, if it is HTML),
//! decodes it ([`charset`]: BOM, valid UTF-8, HTTP charset, `<meta>`, then detection),
//! parses it with html5ever under a time budget ([`dom`]), finds the main content and
//! writes it as plain text ([`score`]). Sets `meta.title`; puts the canonical URL, the
//! publication date and the `<html lang>` in `meta.extra` (`canonical_url`,
//! `date_published`, `html_lang`), since `meta.date` holds the capture date.
//!
//! Every document is bounded: too many bytes, too many nodes or too much parse time drop
//! it with a reason; nesting deeper than `max_depth` is flattened.
//!
//! Only HTML is parsed. A document that is text already — a WET `conversion` record,
//! a JSONL or Parquet text, a payload served as `text/plain` — keeps its text as it is
//! (its line breaks, and any `<` or `&` in it), counted as `not_html`: HTML parsing
//! would join its lines and eat what looks like tags. A text counts as HTML when it
//! starts, after white space, with what a browser sniffs as HTML (`<!DOCTYPE html`,
//! `<html`, `<head`, `<body`, `<p`, `<div`, `<!--`...: [`looks_like_html`]); a raw
//! payload unless its content type is another `text/` type.

pub mod charset;
pub mod dom;
pub mod score;

use crate::document::Document;
use crate::stage::{Failure, Measure, Reason, Stage, StageCx, StageError, Verdict};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The stage kind.
pub const KIND: &str = "extract";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "extract the main text, title and metadata from raw HTML (charset detection, boilerplate removal)";

/// The payload is larger than `max_bytes`.
pub const TOO_LARGE: Reason = Reason::new("too_large");
/// The page has more than `max_nodes` elements and text nodes.
pub const TOO_MANY_NODES: Reason = Reason::new("too_many_nodes");
/// Parsing took longer than `timeout_ms`.
pub const TIMEOUT: Reason = Reason::new("timeout");
/// The payload is not text (control characters, undecodable bytes).
pub const BINARY: Reason = Reason::new("binary");
/// No main text was found.
pub const NO_TEXT: Reason = Reason::new("no_text");

/// Configuration of the `extract` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Largest payload in bytes; larger ones are dropped (`too_large`).
    pub max_bytes: u64,
    /// Most nodes (elements and text nodes) in a page; more drops it (`too_many_nodes`).
    pub max_nodes: u64,
    /// Deepest element nesting kept; deeper elements are flattened into their ancestor.
    pub max_depth: u32,
    /// Parse time budget per document in milliseconds (`timeout`).
    pub timeout_ms: u64,
    /// Keep the page's headline as the first line of `text` when it repeats the title
    /// (`meta.title` has it either way). Default false.
    pub title_in_text: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_bytes: 10_000_000,
            max_nodes: 1_000_000,
            max_depth: 256,
            timeout_ms: 5_000,
            title_in_text: false,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "max_bytes",
        doc: "largest HTML payload in bytes; larger documents are dropped (too_large)",
    },
    crate::FieldDoc {
        name: "max_nodes",
        doc: "most DOM nodes (elements + text) per page; more are dropped (too_many_nodes)",
    },
    crate::FieldDoc {
        name: "max_depth",
        doc: "deepest element nesting kept; deeper elements are flattened into their ancestor",
    },
    crate::FieldDoc {
        name: "timeout_ms",
        doc: "parse time budget per document in milliseconds; slower pages are dropped (timeout)",
    },
    crate::FieldDoc {
        name: "title_in_text",
        doc: "keep a first line that repeats the page title in text (default false: the title is in meta.title only)",
    },
];

/// The built `extract` stage.
#[derive(Debug)]
pub struct Extract {
    config: Config,
}

/// Builds the stage.
pub fn build(config: &Config) -> Result<Extract, StageError> {
    if config.max_depth < 8 {
        return Err(StageError::Config {
            kind: KIND,
            message: format!("max_depth ({}) must be at least 8", config.max_depth),
        });
    }
    Ok(Extract {
        config: config.clone(),
    })
}

/// What extraction found in one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// The main text, blocks separated by newlines.
    pub text: String,
    /// The page title (`og:title`, else `<title>`).
    pub title: Option<String>,
    /// `<link rel=canonical>` or `og:url`.
    pub canonical_url: Option<String>,
    /// Publication date as written in the page.
    pub date: Option<String>,
    /// `<html lang>`.
    pub lang: Option<String>,
    /// How the encoding was chosen.
    pub charset_source: Option<charset::Source>,
}

impl Extract {
    /// Extracts one page from its bytes. `http_charset` and `url` are hints for decoding.
    pub fn extract_bytes(
        &self,
        bytes: &[u8],
        http_charset: Option<&str>,
        url: Option<&str>,
    ) -> Result<Extracted, Failure> {
        self.check_size(bytes.len())?;
        let (html, _, source) = charset::decode(bytes, http_charset, url);
        let mut out = self.extract_str(&html)?;
        out.charset_source = Some(source);
        Ok(out)
    }

    /// `TOO_LARGE` for a page over `max_bytes`.
    fn check_size(&self, bytes: usize) -> Result<(), Failure> {
        match Measure::above("bytes", bytes as f64, self.config.max_bytes as f64) {
            Some(m) => Err(m.fails(TOO_LARGE.code())),
            None => Ok(()),
        }
    }

    /// Extracts one page that is already text.
    pub fn extract_str(&self, html: &str) -> Result<Extracted, Failure> {
        self.check_size(html.len())?;
        if looks_binary(html) {
            return Err(Failure::new(BINARY, None));
        }
        let c = &self.config;
        let deadline = Instant::now() + Duration::from_millis(c.timeout_ms);
        let doc = dom::parse(html, deadline).map_err(|_| {
            Failure::new(
                TIMEOUT,
                Some(format!("parsing took over {} ms", c.timeout_ms)),
            )
        })?;
        let page = dom::build(&doc, c.max_depth as usize, c.max_nodes as usize).map_err(|e| {
            let detail = match e {
                dom::Limit::Timeout => format!("parsing took over {} ms", c.timeout_ms),
                dom::Limit::TooManyNodes => format!("more than {} nodes", c.max_nodes),
            };
            Failure::new(TOO_MANY_NODES, Some(detail))
        })?;
        drop(doc);
        let text = score::main_text(&page);
        let clean = |s: &str| {
            let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
            (!s.is_empty()).then_some(s)
        };
        let meta = &page.meta;
        Ok(Extracted {
            text,
            title: meta
                .og_title
                .as_deref()
                .and_then(clean)
                .or_else(|| meta.title.as_deref().and_then(clean)),
            canonical_url: meta.canonical.clone(),
            date: meta.date.clone(),
            lang: meta.lang.clone(),
            charset_source: None,
        })
    }
}

/// Whether the document is HTML to parse: a raw payload unless its content type says
/// text of another kind (`text/plain`...; a source hands over a payload as a page, and
/// the size, binary and time limits catch what is not), or a text that sniffs as HTML.
fn is_html(doc: &Document) -> bool {
    match (&doc.raw, doc.meta.content_type.as_deref()) {
        (Some(_), Some(mime)) => {
            !mime.starts_with("text/") || mime.contains("html") || mime.ends_with("xml")
        }
        (Some(_), None) => true,
        (None, _) => looks_like_html(doc.text.as_bytes()),
    }
}

/// The start of `bytes` (after a byte order mark and white space) is what the WHATWG
/// MIME sniffing rules take for HTML: one of `<!DOCTYPE HTML`, `<HTML`, `<HEAD`,
/// `<SCRIPT`, `<IFRAME`, `<H1`, `<DIV`, `<FONT`, `<TABLE`, `<A`, `<STYLE`, `<TITLE`,
/// `<B`, `<BODY`, `<BR`, `<P` (any case; here also the other headings, the HTML5
/// sectioning elements, lists, `<span>`, `<meta>`, `<link>`) followed by white space,
/// `>` or `/`, or `<!--`; also an XML declaration followed by one of those, as XHTML
/// pages start.
pub fn looks_like_html(bytes: &[u8]) -> bool {
    const TAGS: [&[u8]; 34] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<script",
        b"<iframe",
        b"<h1",
        b"<div",
        b"<font",
        b"<table",
        b"<a",
        b"<style",
        b"<title",
        b"<b",
        b"<body",
        b"<br",
        b"<p",
        b"<h2",
        b"<h3",
        b"<h4",
        b"<h5",
        b"<h6",
        b"<article",
        b"<section",
        b"<main",
        b"<header",
        b"<footer",
        b"<nav",
        b"<aside",
        b"<span",
        b"<ul",
        b"<ol",
        b"<meta",
        b"<link",
        b"<center",
    ];
    let skip = |b: &[u8]| -> usize {
        b.iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'))
            .unwrap_or(b.len())
    };
    let mut rest = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    rest = &rest[skip(rest)..];
    if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"<?xml") {
        let end = rest
            .iter()
            .position(|&c| c == b'>')
            .map_or(rest.len(), |i| i + 1);
        rest = &rest[end..];
        rest = &rest[skip(rest)..];
    }
    if rest.starts_with(b"<!--") {
        return true;
    }
    TAGS.iter().any(|tag| {
        rest.len() > tag.len()
            && rest[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(
                rest[tag.len()],
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'>' | b'/'
            )
    })
}

/// True when the start of the text is mostly control characters or replacement
/// characters: an image, a PDF or random bytes served as HTML.
fn looks_binary(text: &str) -> bool {
    let mut total = 0u32;
    let mut bad = 0u32;
    for c in text.chars().take(4096) {
        total += 1;
        if c == '\u{fffd}' || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c')) {
            bad += 1;
        }
    }
    total > 0 && bad * 10 > total
}

/// Text folded for comparing a line with the title: lower case, every run of
/// characters other than letters and digits one space.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim().to_string()
}

/// Shortest first line (folded, in characters) taken for the title: a short line that
/// happens to occur in a title ("News") is not the headline.
const MIN_TITLE_LINE_CHARS: usize = 10;

/// Removes the first line of `text` when it is the page's headline: the title (og:title
/// or `<title>`) contains it, folded (titles often add the site's name: "Headline |
/// Site"). The main text of a page does not repeat its title (the full-text benchmarks
/// leave it out), and `meta.title` keeps it. Nothing is removed from a one-line text.
fn strip_title_line(text: &mut String, title: &str) -> bool {
    let Some((first, _)) = text.split_once('\n') else {
        return false;
    };
    let line = fold(first);
    // Whole words only: " {line} " within " {title} ".
    if line.chars().count() < MIN_TITLE_LINE_CHARS
        || !format!(" {} ", fold(title)).contains(&format!(" {line} "))
    {
        return false;
    }
    let cut = first.len() + 1;
    text.drain(..cut);
    true
}

impl Stage for Extract {
    fn reads_raw(&self) -> bool {
        true
    }

    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        if !is_html(doc) {
            // Text already: decoded (a raw text payload), never parsed.
            cx.count("not_html", 1);
            doc.decode_raw();
            return Ok(if doc.text.trim().is_empty() {
                Verdict::Drop(NO_TEXT)
            } else {
                Verdict::Keep
            });
        }
        let result = match doc.raw.take() {
            Some(raw) => {
                self.extract_bytes(&raw, doc.meta.charset.as_deref(), doc.meta.url.as_deref())
            }
            None => self.extract_str(&doc.text),
        };
        let out = match result {
            Ok(out) => out,
            Err(failure) => {
                doc.text.clear();
                return Ok(failure.drop(doc));
            }
        };
        if let Some(source) = out.charset_source {
            cx.count(source.counter(), 1);
        }
        doc.text = out.text;
        if !self.config.title_in_text
            && let Some(title) = &out.title
            && strip_title_line(&mut doc.text, title)
        {
            cx.count("title_line_removed", 1);
        }
        if out.title.is_some() {
            doc.meta.title = out.title;
        }
        for (key, value) in [
            ("canonical_url", out.canonical_url),
            ("date_published", out.date),
            ("html_lang", out.lang),
        ] {
            if let Some(v) = value {
                doc.meta
                    .extra
                    .insert(key.into(), serde_json::Value::String(v));
            }
        }
        if doc.text.trim().is_empty() {
            return Ok(Verdict::Drop(NO_TEXT));
        }
        Ok(Verdict::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> Extract {
        build(&Config::default()).unwrap()
    }

    /// Text that is not HTML keeps its lines and its `<`, `>` and `&` (a WET record,
    /// JSONL text, a `text/plain` payload), counted as `not_html`; HTML in a text field,
    /// or a payload without a content type that sniffs as HTML, is extracted.
    #[test]
    fn only_html_is_parsed() {
        let mut cx = StageCx::default();
        let wet = "First line of a WET page\nsecond line\n\nif a<b and b>c then x &amp; y\n\
                   <script>an example, in prose</script>\n";
        let mut doc = Document::new("w", "web", wet);
        assert_eq!(stage().process(&mut doc, &mut cx).unwrap(), Verdict::Keep);
        assert_eq!(doc.text, wet);
        let mut plain = Document::new("p", "web", "");
        plain.raw = Some("x < y\nand\n<b>not bold</b>".as_bytes().to_vec());
        plain.meta.content_type = Some("text/plain".into());
        assert_eq!(stage().process(&mut plain, &mut cx).unwrap(), Verdict::Keep);
        assert_eq!(plain.text, "x < y\nand\n<b>not bold</b>");
        assert_eq!(cx.take_counters()["not_html"], 2);
        let page = "\u{feff}  <!DOCTYPE html>\n<html><body><article><p>Ein langer Absatz mit genug \
                    Text, damit er als Inhalt zählt, und noch ein wenig mehr.</p></article></body></html>";
        let mut html = Document::new("h", "web", page);
        assert_eq!(stage().process(&mut html, &mut cx).unwrap(), Verdict::Keep);
        assert!(html.text.starts_with("Ein langer Absatz"), "{}", html.text);
        assert!(!cx.take_counters().contains_key("not_html"));
        for (text, is) in [
            (
                "<?xml version=\"1.0\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0//EN\">",
                true,
            ),
            ("<HTML\nlang=en>", true),
            ("<!-- a comment --><p>x</p>", true),
            ("<br/>text", true),
            ("<b and b>c", true),
            ("if a<b and b>c", false),
            ("<bold claims> in prose", false),
            ("<|im_start|>user", false),
            ("", false),
        ] {
            assert_eq!(looks_like_html(text.as_bytes()), is, "{text:?}");
        }
    }

    #[test]
    fn sets_text_title_and_extra_and_consumes_raw() {
        let html = "<html lang=de><head><title> Die  Seite </title>\
            <link rel=canonical href='https://example.de/a'>\
            <meta property='article:published_time' content='2024-01-02'></head>\
            <body><article><p>Ein langer Absatz mit genug Text, damit er als Inhalt zählt, \
            und noch ein wenig mehr.</p></article></body></html>";
        let mut doc = Document::new("d", "web", "");
        doc.raw = Some(html.as_bytes().to_vec());
        let mut cx = StageCx::default();
        assert_eq!(stage().process(&mut doc, &mut cx).unwrap(), Verdict::Keep);
        assert!(doc.raw.is_none());
        assert!(doc.text.starts_with("Ein langer Absatz"), "{}", doc.text);
        assert_eq!(doc.meta.title.as_deref(), Some("Die Seite"));
        assert_eq!(doc.meta.extra["canonical_url"], "https://example.de/a");
        assert_eq!(doc.meta.extra["date_published"], "2024-01-02");
        assert_eq!(doc.meta.extra["html_lang"], "de");
        assert_eq!(cx.take_counters()["charset_utf8"], 1);
    }

    #[test]
    fn a_headline_repeating_the_title_is_left_to_meta_title() {
        let mut text = "Flood closes the bridge\nThe river rose overnight.".to_string();
        assert!(strip_title_line(
            &mut text,
            "Flood Closes the Bridge | Daily News"
        ));
        assert_eq!(text, "The river rose overnight.");
        // A short line, a line the title does not contain, a one-line text: kept.
        for (t, title) in [
            ("News\nThe river rose.", "News - Daily"),
            (
                "The river rose overnight.\nMore.",
                "Flood closes the bridge",
            ),
            ("Flood closes the bridge", "Flood closes the bridge"),
        ] {
            let mut text = t.to_string();
            assert!(!strip_title_line(&mut text, title));
            assert_eq!(text, t);
        }
        let html = "<html><head><title>Flood closes the bridge - Daily</title></head><body>\
            <article><h1>Flood closes the bridge</h1><p>The river rose by two metres overnight, \
            and the council opened the old school as a shelter for the families.</p>\
            </article></body></html>";
        for (title_in_text, first) in [(false, "The river rose"), (true, "Flood closes")] {
            let stage = build(&Config {
                title_in_text,
                ..Config::default()
            })
            .unwrap();
            let mut doc = Document::new("d", "web", "");
            doc.raw = Some(html.as_bytes().to_vec());
            let mut cx = StageCx::default();
            assert_eq!(stage.process(&mut doc, &mut cx).unwrap(), Verdict::Keep);
            assert!(doc.text.starts_with(first), "{}", doc.text);
            assert_eq!(
                doc.meta.title.as_deref(),
                Some("Flood closes the bridge - Daily")
            );
        }
    }

    #[test]
    fn limits_and_junk_drop_with_reasons() {
        let small = build(&Config {
            max_bytes: 100,
            ..Config::default()
        })
        .unwrap();
        let mut doc = Document::new("d", "web", "");
        doc.raw = Some(vec![b'a'; 101]);
        let verdict = small.process(&mut doc, &mut StageCx::default()).unwrap();
        assert_eq!(verdict, Verdict::Drop(TOO_LARGE));
        assert_eq!(doc.drop_detail.as_deref(), Some("bytes 101 > 100"));

        let junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let failure = stage().extract_bytes(&junk, None, None).unwrap_err();
        assert_eq!(failure.reason, BINARY);

        let mut empty = Document::new("e", "web", "");
        empty.raw = Some(b"<html><body><nav>menu</nav></body></html>".to_vec());
        let verdict = stage()
            .process(&mut empty, &mut StageCx::default())
            .unwrap();
        assert_eq!(verdict, Verdict::Drop(NO_TEXT));
        assert!(
            build(&Config {
                max_depth: 2,
                ..Config::default()
            })
            .is_err()
        );
    }
}
