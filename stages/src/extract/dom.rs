//! Parsing with html5ever (through `scraper`'s tree sink) under a time budget, and a
//! compact arena of the parsed page that the content scorer walks.
//!
//! The arena caps depth: elements nested deeper than `max_depth` are not created, their
//! text goes to the ancestor at the cap. Every later pass can then recurse safely.
//!
//! The parser's own stack is bounded before that ([`DepthBound`]): html5ever checks
//! "in scope" by walking its stack of open elements, so a page of 50,000 nested `<div>`s
//! (12 KB) costs quadratic time. Start tags that would open elements deeper than
//! [`PARSE_DEPTH`] are left out of the token stream, with their end tags; their text
//! stays, in the deepest element kept.

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::tree_builder::{TreeBuilder, TreeBuilderOpts, TreeSink};
use html5ever::{LocalName, TokenizerResult};
use scraper::{Html, HtmlTreeSink, Node as HtmlNode};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

/// Why a page could not be turned into an arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Parsing ran past its time budget.
    Timeout,
    /// The page has more nodes than allowed.
    TooManyNodes,
}

/// Bytes fed to the parser between two looks at the clock.
const CHUNK: usize = 16 * 1024;

/// Elements whose content is never text: emptied before parsing. The tokenizer walks
/// script and style bodies character by character, and on modern pages they are most
/// of the bytes.
const RAW_ELEMENTS: &[&[u8]] = &[b"script", b"style", b"svg", b"noscript"];

/// Removes the content of `<script>`, `<style>`, `<svg>`, `<noscript>` and comments,
/// keeping the tags, so the parser sees the same structure with less to tokenize.
/// An unclosed element or comment runs to the end, as the parser would take it.
pub fn strip_raw(html: &str) -> std::borrow::Cow<'_, str> {
    let bytes = html.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut pos = 0;
    while let Some(i) = memchr::memchr(b'<', &bytes[pos..]) {
        let start = pos + i;
        let rest = &bytes[start + 1..];
        pos = start + 1;
        // (end of the kept opening part, where the skipped part ends)
        let cut = if rest.starts_with(b"!--") {
            let body = start + 4;
            let end =
                memchr::memmem::find(&bytes[body..], b"-->").map_or(bytes.len(), |e| body + e);
            Some((body, end))
        } else {
            RAW_ELEMENTS.iter().find_map(|name| {
                let n = name.len();
                let matches = rest.len() > n
                    && rest[..n].eq_ignore_ascii_case(name)
                    && matches!(rest[n], b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/');
                if !matches {
                    return None;
                }
                let open_end = memchr::memchr(b'>', rest).map(|e| start + 2 + e)?;
                let mut close = None;
                let mut from = open_end;
                while let Some(j) = memchr::memmem::find(&bytes[from..], b"</") {
                    let at = from + j;
                    let tail = &bytes[at + 2..];
                    if tail.len() >= n && tail[..n].eq_ignore_ascii_case(name) {
                        close = Some(at);
                        break;
                    }
                    from = at + 2;
                }
                Some((open_end, close.unwrap_or(bytes.len())))
            })
        };
        if let Some((keep_to, skip_to)) = cut
            && skip_to > keep_to
        {
            let o = out.get_or_insert_with(|| String::with_capacity(html.len() / 2));
            o.push_str(&html[copied..keep_to]);
            copied = skip_to;
            pos = skip_to;
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(html),
        Some(mut o) => {
            o.push_str(&html[copied..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

/// Elements open at once that the parser is given at most (see [`DepthBound`]): far
/// above any real page's depth (and above `max_depth`, so the arena decides what is
/// flattened), low enough that a scope check costs little.
pub const PARSE_DEPTH: usize = 1024;

/// Parses `html`, giving up when `deadline` passes.
pub fn parse(html: &str, deadline: Instant) -> Result<Html, Limit> {
    let html = &*strip_raw(html);
    let builder = TreeBuilder::new(
        HtmlTreeSink::new(Html::new_document()),
        TreeBuilderOpts::default(),
    );
    let tokenizer = Tokenizer::new(
        DepthBound {
            inner: builder,
            open: Default::default(),
            left_out: Default::default(),
        },
        TokenizerOpts::default(),
    );
    let input = BufferQueue::default();
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(CHUNK);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        input.push_back(StrTendril::from_slice(&rest[..cut]));
        while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
        rest = &rest[cut..];
        if Instant::now() > deadline {
            return Err(Limit::Timeout);
        }
    }
    tokenizer.end();
    Ok(tokenizer.sink.inner.sink.finish())
}

/// Passes tokens to the tree builder, leaving out the start tags that would nest
/// elements deeper than [`PARSE_DEPTH`] and the end tags that close them.
///
/// Depth is tracked the way the tree builder nests: an end tag closes the innermost
/// open element of its name and every element opened inside it; void elements,
/// self-closing tags, elements whose end tag is optional (`p`, `li`, `td`...) and
/// raw-text elements (`script`, `style`...) are passed without being counted, since
/// they do not nest (or their content is not markup).
struct DepthBound<S> {
    inner: S,
    /// Names of the counted open elements, outermost first.
    open: RefCell<Vec<LocalName>>,
    /// Start tags left out, by name, whose end tags are still to come.
    left_out: RefCell<HashMap<LocalName, usize>>,
}

impl<S: TokenSink> TokenSink for DepthBound<S> {
    type Handle = S::Handle;

    fn process_token(&self, token: Token, line: u64) -> TokenSinkResult<S::Handle> {
        if let Token::TagToken(tag) = &token
            && counted(&tag.name)
        {
            let mut open = self.open.borrow_mut();
            let mut left_out = self.left_out.borrow_mut();
            match tag.kind {
                TagKind::StartTag if tag.self_closing => {}
                TagKind::StartTag if open.len() >= PARSE_DEPTH => {
                    *left_out.entry(tag.name.clone()).or_default() += 1;
                    return TokenSinkResult::Continue;
                }
                TagKind::StartTag => open.push(tag.name.clone()),
                TagKind::EndTag => match open.iter().rposition(|n| *n == tag.name) {
                    Some(at) => open.truncate(at),
                    None => {
                        if let Some(n) = left_out.get_mut(&tag.name).filter(|n| **n > 0) {
                            *n -= 1;
                            return TokenSinkResult::Continue;
                        }
                    }
                },
            }
        }
        self.inner.process_token(token, line)
    }

    fn end(&self) {
        self.inner.end();
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.inner
            .adjusted_current_node_present_but_not_in_html_namespace()
    }
}

/// Whether an element nests (see [`DepthBound`]).
fn counted(name: &LocalName) -> bool {
    !matches!(
        &**name,
        // Void elements.
        "area" | "base" | "br" | "col" | "embed" | "hr" | "img" | "input" | "link" | "meta"
            | "param" | "source" | "track" | "wbr" | "keygen" | "frame" | "basefont"
            | "bgsound"
            // Optional end tags: closed by their next sibling.
            | "p" | "li" | "dt" | "dd" | "tr" | "td" | "th" | "option" | "optgroup"
            | "rb" | "rt" | "rp" | "rtc" | "thead" | "tbody" | "tfoot" | "colgroup"
            | "caption"
            // Raw text: their content is not markup.
            | "script" | "style" | "textarea" | "title" | "xmp" | "iframe" | "noembed"
            | "noframes" | "noscript" | "plaintext"
            // The document's frame.
            | "html" | "head" | "body"
    )
}

/// Element kinds the extractor treats differently; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A text node.
    Text,
    /// Removed with its content (scripts, forms controls, navigation...).
    Skip,
    /// `<a>`.
    A,
    /// `<br>`.
    Br,
    /// `<hr>`.
    Hr,
    /// `<p>`.
    P,
    /// `<h1>`..`<h6>`.
    H,
    /// `<li>`, `<dt>`, `<dd>`.
    Li,
    /// `<ul>`, `<ol>`, `<dl>`.
    List,
    /// `<table>`, `<thead>`, `<tbody>`, `<tfoot>`.
    Table,
    /// `<tr>`.
    Tr,
    /// `<td>`, `<th>`.
    Cell,
    /// `<pre>`.
    Pre,
    /// `<blockquote>`.
    Quote,
    /// `<div>`, `<section>`, `<article>`, `<main>` and other generic blocks.
    Div,
    /// `<header>`: kept inside an article, boilerplate elsewhere.
    Header,
    /// `<body>`.
    Body,
    /// An inline element.
    Inline,
}

impl Tag {
    fn of(name: &str) -> Tag {
        match name {
            "script" | "style" | "noscript" | "template" | "svg" | "math" | "iframe" | "object"
            | "embed" | "canvas" | "video" | "audio" | "select" | "option" | "button" | "input"
            | "textarea" | "head" | "nav" | "aside" | "footer" | "menu" | "dialog" | "label"
            | "map" | "area" | "picture" | "img" | "source" | "link" | "meta" | "title"
            | "base" | "frameset" | "frame" | "rt" | "rp" => Tag::Skip,
            "a" => Tag::A,
            "br" => Tag::Br,
            "hr" => Tag::Hr,
            "p" => Tag::P,
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => Tag::H,
            "li" | "dt" | "dd" => Tag::Li,
            "ul" | "ol" | "dl" => Tag::List,
            // Row groups count as part of the table for grouping lines.
            "table" | "thead" | "tbody" | "tfoot" => Tag::Table,
            "tr" => Tag::Tr,
            "td" | "th" => Tag::Cell,
            "pre" => Tag::Pre,
            "blockquote" => Tag::Quote,
            "header" => Tag::Header,
            "body" => Tag::Body,
            "div" | "section" | "article" | "main" | "figure" | "figcaption" | "address"
            | "center" | "details" | "summary" | "fieldset" | "form" | "caption" | "legend"
            | "html" | "hgroup" | "search" => Tag::Div,
            _ => Tag::Inline,
        }
    }

    /// True for tags that start a new line of output.
    pub fn is_block(self) -> bool {
        !matches!(
            self,
            Tag::Text | Tag::A | Tag::Inline | Tag::Cell | Tag::Skip
        )
    }
}

/// Flag: class/id/role/hidden says this is boilerplate.
pub const BOILER: u8 = 1;
/// Flag: class/id/role says this is an overlay that is never the page's content
/// (cookie and consent banners, modals, pop-ups, dialogs), however much text it holds.
pub const STRONG: u8 = 2;
/// Flag: `<article>`, `<main>` or role=main/article.
pub const ARTICLE: u8 = 4;

/// Flag: class/id says page header; boilerplate outside an article only.
pub const HEADER: u8 = 8;

/// One node of the arena.
#[derive(Debug, Clone)]
pub struct Node {
    /// What it is.
    pub tag: Tag,
    /// Flags (`BOILER`, `STRONG`, `ARTICLE`, `HEADER`).
    pub flags: u8,
    /// Parent index (the root is its own parent).
    pub parent: u32,
    /// First child (0: none; the root is never a child).
    pub first_child: u32,
    /// Next sibling (0: none).
    pub next_sibling: u32,
    /// Text of a text node: a range of [`Page::text`].
    pub text: (u32, u32),
}

/// Metadata found in the head.
#[derive(Debug, Clone, Default)]
pub struct HeadMeta {
    /// `<title>`.
    pub title: Option<String>,
    /// `og:title`.
    pub og_title: Option<String>,
    /// `<link rel=canonical>` or `og:url`.
    pub canonical: Option<String>,
    /// Publication date from meta tags or the first `<time datetime>`.
    pub date: Option<String>,
    /// `<html lang>`.
    pub lang: Option<String>,
}

/// The arena of one page.
#[derive(Debug, Default)]
pub struct Page {
    /// Nodes; index 0 is the root.
    pub nodes: Vec<Node>,
    /// All text node contents, concatenated.
    pub text: String,
    /// Head metadata.
    pub meta: HeadMeta,
}

impl Page {
    /// Children of node `i`, in order.
    pub fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let mut next = self.nodes[i].first_child as usize;
        std::iter::from_fn(move || {
            let c = next;
            (c != 0).then(|| {
                next = self.nodes[c].next_sibling as usize;
                c
            })
        })
    }

    /// Text of a text node.
    pub fn text_of(&self, n: &Node) -> &str {
        self.text
            .get(n.text.0 as usize..n.text.1 as usize)
            .unwrap_or("")
    }
}

/// Builds the arena from a parsed document.
pub fn build(html: &Html, max_depth: usize, max_nodes: usize) -> Result<Page, Limit> {
    let mut page = Page::default();
    page.nodes.push(Node {
        tag: Tag::Div,
        flags: 0,
        parent: 0,
        first_child: 0,
        next_sibling: 0,
        text: (0, 0),
    });
    // Last child of each node, to append in O(1) while building.
    let mut last_child: Vec<u32> = vec![0];
    // Stack of (arena index or None when not materialized, kind of edge) per open element.
    let mut stack: Vec<Option<u32>> = Vec::new();
    let mut current: u32 = 0;
    let mut skip_depth = 0usize;
    let mut seen = 0usize;
    let mut in_title = false;
    for edge in html.tree.root().traverse() {
        match edge {
            ego_tree::iter::Edge::Open(node) => match node.value() {
                HtmlNode::Element(el) => {
                    seen += 1;
                    if seen > max_nodes {
                        return Err(Limit::TooManyNodes);
                    }
                    let name = el.name();
                    collect_head(name, el, &mut page.meta);
                    if name == "title" {
                        in_title = true;
                    }
                    let tag = Tag::of(name);
                    if skip_depth > 0 || tag == Tag::Skip {
                        skip_depth += 1;
                        stack.push(None);
                        continue;
                    }
                    if stack.len() >= max_depth {
                        stack.push(None);
                        continue;
                    }
                    let idx = page.nodes.len() as u32;
                    page.nodes.push(Node {
                        tag,
                        flags: flags(name, el),
                        parent: current,
                        first_child: 0,
                        next_sibling: 0,
                        text: (0, 0),
                    });
                    append(&mut page.nodes, &mut last_child, current, idx);
                    current = idx;
                    stack.push(Some(idx));
                }
                HtmlNode::Text(t) => {
                    if in_title {
                        let title = page.meta.title.get_or_insert_with(String::new);
                        title.push_str(t);
                    }
                    if skip_depth > 0 {
                        continue;
                    }
                    seen += 1;
                    if seen > max_nodes {
                        return Err(Limit::TooManyNodes);
                    }
                    let start = page.text.len() as u32;
                    page.text.push_str(t);
                    let idx = page.nodes.len() as u32;
                    page.nodes.push(Node {
                        tag: Tag::Text,
                        flags: 0,
                        parent: current,
                        first_child: 0,
                        next_sibling: 0,
                        text: (start, page.text.len() as u32),
                    });
                    append(&mut page.nodes, &mut last_child, current, idx);
                }
                _ => {}
            },
            ego_tree::iter::Edge::Close(node) => {
                if let HtmlNode::Element(el) = node.value() {
                    if el.name() == "title" {
                        in_title = false;
                    }
                    match stack.pop() {
                        Some(Some(idx)) => current = page.nodes[idx as usize].parent,
                        Some(None) => skip_depth = skip_depth.saturating_sub(1),
                        None => {}
                    }
                }
            }
        }
    }
    Ok(page)
}

fn append(nodes: &mut [Node], last_child: &mut Vec<u32>, parent: u32, idx: u32) {
    let p = parent as usize;
    match last_child[p] {
        0 => nodes[p].first_child = idx,
        last => nodes[last as usize].next_sibling = idx,
    }
    last_child[p] = idx;
    last_child.push(0);
}

fn collect_head(name: &str, el: &scraper::node::Element, meta: &mut HeadMeta) {
    match name {
        "html" => {
            if let Some(lang) = el.attr("lang").map(str::trim).filter(|l| !l.is_empty()) {
                meta.lang = Some(lang.to_string());
            }
        }
        "meta" => {
            let key = el
                .attr("property")
                .or_else(|| el.attr("name"))
                .or_else(|| el.attr("itemprop"))
                .unwrap_or("")
                .to_ascii_lowercase();
            let Some(content) = el.attr("content").map(str::trim).filter(|c| !c.is_empty()) else {
                return;
            };
            match key.as_str() {
                "og:title" => meta.og_title = Some(content.to_string()),
                "og:url" => {
                    meta.canonical.get_or_insert_with(|| content.to_string());
                }
                "article:published_time"
                | "datepublished"
                | "date"
                | "pubdate"
                | "publishdate"
                | "dc.date"
                | "dc.date.issued"
                | "dcterms.date"
                | "sailthru.date"
                | "parsely-pub-date"
                | "og:published_time" => {
                    meta.date.get_or_insert_with(|| content.to_string());
                }
                _ => {}
            }
        }
        "link" => {
            let rel = el.attr("rel").unwrap_or("");
            if rel
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("canonical"))
                && let Some(href) = el.attr("href").map(str::trim).filter(|h| !h.is_empty())
            {
                // A canonical link beats og:url.
                meta.canonical = Some(href.to_string());
            }
        }
        "time" => {
            if let Some(dt) = el.attr("datetime").map(str::trim).filter(|d| !d.is_empty()) {
                meta.date.get_or_insert_with(|| dt.to_string());
            }
        }
        _ => {}
    }
}

/// Words in class/id that mark boilerplate when they are a whole token of the
/// attribute (split at anything not a letter or digit): short words that would match
/// inside unrelated words (`ad` in `header`, `nav` in `canvas`).
const BOILER_TOKENS: &[&str] = &[
    "nav", "menu", "ad", "ads", "tags", "meta", "skip", "noprint", "login", "signup", "modal",
    "popup", "overlay", "promo", "rating", "reply", "respond", "share", "byline", "author",
    "caption", "toolbar", "masthead", "pager", "crumbs", "gdpr", "consent", "social", "dialog",
    // Image legends and photo credits.
    "legend", "credit", "credits",
];

/// Whole class names that hide an element or mark a sidebar widget. Only whole names:
/// `field--label-hidden` hides a label, not the field.
const HIDDEN_CLASSES: &[&str] = &[
    // Page-builder wrappers are named `elementor-widget-container`; sidebar widgets are
    // `widget widget_text`.
    "widget",
    "widgets",
    "widget-area",
    "hidden",
    "hide",
    "d-none",
    "is-hidden",
    "visually-hidden",
    "sr-only",
    "screen-reader-text",
    "invisible",
];

/// Longer words that mark boilerplate wherever they occur in class/id
/// (`commentlist`, `post-sidebar-left`, `site_footer_inner`, `sharebar`).
const BOILER_PARTS: &[&str] = &[
    "navigation",
    "navbar",
    "breadcrumb",
    "footer",
    "sidebar",
    "sharing",
    "share-",
    "social",
    "sociable",
    "comment",
    "banner",
    "advert",
    "sponsor",
    "newsletter",
    "subscri",
    "related",
    "recommend",
    "pagination",
    "tagcloud",
    "disqus",
    "outbrain",
    "authorbox",
    "author-box",
    "about-author",
    "upsell",
    "taboola",
    "copyright",
    "metadata",
    "postmeta",
    "entry-utility",
    "submenu",
    "dropdown",
    "offcanvas",
    // Appeals and notices around an article: donation calls, legal disclaimers,
    // affiliate-link disclosures.
    "donation",
    "disclaimer",
    "affiliate",
];

/// Words in class/id (whole tokens, as [`BOILER_TOKENS`]) that mark an overlay: a
/// cookie or consent banner, a modal, a pop-up. Such a block can hold long text (a
/// privacy policy) but never wraps the page's content.
const STRONG_TOKENS: &[&str] = &["modal", "popup"];

/// Parts of class/id that mark an overlay wherever they occur (`cookie-law-info-bar`,
/// `cmplz-cookiebanner`).
const STRONG_PARTS: &[&str] = &["cookie", "consent", "gdpr"];

fn tokens(s: &str) -> impl Iterator<Item = &str> + '_ {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
}

fn is_boiler_token(t: &str) -> bool {
    BOILER_TOKENS.iter().any(|b| b.eq_ignore_ascii_case(t))
}

/// One matcher for [`BOILER_PARTS`] and [`STRONG_PARTS`]; pattern ids from
/// `BOILER_PARTS.len()` on are overlay words.
static BOILER_MATCHER: std::sync::LazyLock<Option<aho_corasick::AhoCorasick>> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(BOILER_PARTS.iter().chain(STRONG_PARTS))
            .ok()
    });

fn flags(name: &str, el: &scraper::node::Element) -> u8 {
    let mut f = 0;
    if matches!(name, "article" | "main") {
        f |= ARTICLE;
    }
    // Comment forms, search boxes, newsletter sign-ups; a page wrapped whole in a
    // `<form>` (ASP.NET) is saved by the article guard or the prune fallback.
    // Forms (comment, search, newsletter), image captions and dates are not text.
    if matches!(name, "form" | "figcaption" | "time") {
        f |= BOILER;
    }
    if let Some(role) = el.attr("role") {
        match role.trim().to_ascii_lowercase().as_str() {
            "main" | "article" => f |= ARTICLE,
            "navigation" | "banner" | "contentinfo" | "complementary" | "search" | "menu"
            | "menubar" | "dialog" | "alertdialog" | "toolbar" => f |= BOILER,
            _ => {}
        }
    }
    if el.attr("hidden").is_some() || el.attr("aria-hidden").is_some_and(|v| v == "true") {
        f |= BOILER;
    }
    if let Some(style) = el.attr("style") {
        let s: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if s.contains("display:none") || s.contains("visibility:hidden") {
            f |= BOILER;
        }
    }
    if el.attr("class").is_some_and(|c| {
        c.split_ascii_whitespace()
            .any(|name| HIDDEN_CLASSES.iter().any(|h| name.eq_ignore_ascii_case(h)))
    }) {
        f |= BOILER;
    }
    for attr in [el.attr("class"), el.attr("id")].into_iter().flatten() {
        if let Some(m) = BOILER_MATCHER.as_ref() {
            for hit in m.find_iter(attr) {
                f |= BOILER;
                if hit.pattern().as_usize() >= BOILER_PARTS.len() {
                    f |= STRONG;
                }
            }
        }
        for t in tokens(attr) {
            if STRONG_TOKENS.iter().any(|w| w.eq_ignore_ascii_case(t)) {
                f |= BOILER | STRONG;
            } else if is_boiler_token(t) {
                f |= BOILER;
            } else if t.eq_ignore_ascii_case("header") {
                f |= HEADER;
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn raw_elements_are_emptied() {
        let html = "<p>a<script type=x>if (a<b) { x = '</p>'; }</script>b<!-- <p>c</p> -->\
                    <STYLE>p{}</STYLE><svg><text>t</text></svg>d<script>";
        assert_eq!(
            strip_raw(html),
            "<p>a<script type=x></script>b<!---->\
             <STYLE></STYLE><svg></svg>d<script>"
        );
        assert!(matches!(
            strip_raw("<p>plain</p>"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn deep_nesting_is_capped() {
        let mut html = String::new();
        for _ in 0..5000 {
            html.push_str("<div>");
        }
        html.push_str("deep text");
        let doc = parse(&html, Instant::now() + Duration::from_secs(30)).unwrap();
        let page = build(&doc, 64, 1_000_000).unwrap();
        assert!(page.nodes.len() < 100);
        assert!(page.text.contains("deep text"));
        assert_eq!(build(&doc, 64, 1000).unwrap_err(), Limit::TooManyNodes);
    }

    #[test]
    fn flags_from_class_and_role() {
        let doc = parse(
            "<div class='post-navigation'>a</div><div id='page-header'>b</div>\
             <div class='adapter'>c</div><div role=navigation>d</div>",
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        let page = build(&doc, 64, 1000).unwrap();
        let divs: Vec<u8> = page
            .nodes
            .iter()
            .filter(|n| n.tag == Tag::Div && n.parent != 0)
            .map(|n| n.flags)
            .collect();
        assert_eq!(&divs[divs.len() - 4..], &[BOILER, HEADER, 0, BOILER]);
    }
}
