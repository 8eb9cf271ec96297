//! Finding the main content in a [`Page`] and writing it as plain text.
//!
//! 1. Pruning: subtrees marked boilerplate by tag (done while building the arena), by
//!    class/id/role/hidden (`BOILER`), and page headers outside an article are left
//!    out, unless the subtree holds half of the page's paragraph text (a wrapper with an
//!    unlucky class) or is an `<article>`/`<main>`. When pruning would leave under a
//!    fifth of the paragraph text, the class rules are not trusted for that page.
//!    Overlays (`STRONG`: cookie and consent banners, modals, pop-ups) are left out
//!    however much text they hold, unless they hold an `<article>`/`<main>`, and their
//!    text does not count in those shares.
//! 2. Choosing the root: paragraph text is the text of leaf blocks long enough and not
//!    mostly links; the root is the deepest container holding all of it, or inside it
//!    the smallest `<article>`/`<main>` holding 70% of it.
//! 3. Rendering: blocks become lines, table cells are separated by tabs, whitespace is
//!    collapsed except in `<pre>`.
//! 4. Lines: link-heavy lines are dropped; lines before the first and after the last
//!    content line ("anchor") are dropped unless they sit in the same block as it (a
//!    list or table closing the article); short labels over link lists go too, and so
//!    do headings left at the end of the text with nothing under them.
//!
//! Text length is weighted by script: a CJK character counts as three Latin letters, so
//! thresholds mean about the same amount of content for pages without spaces.

use super::dom::{ARTICLE, BOILER, HEADER, Page, STRONG, Tag};

/// Weighted length of one character: CJK ideographs, kana and hangul carry about as much
/// as a short word.
fn weight(c: char) -> u32 {
    match c as u32 {
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff => {
            3
        }
        _ => 1,
    }
}

/// Per-node measures on the pruned tree.
struct Measure {
    /// Nodes removed as boilerplate (with their subtrees).
    removed: Vec<bool>,
    /// Weighted text length of the subtree.
    w: Vec<u32>,
    /// Weighted length of text inside links.
    lw: Vec<u32>,
}

/// Share of the page's paragraph text (in tenths) from which a subtree marked
/// boilerplate by class is kept anyway: such a subtree is a page wrapper with an unlucky class
/// (`widget Blog`, `has-sidebar`, `enable-pin-share`), or the page is its comments.
const GUARD_TENTHS: u64 = 5;
/// When pruning leaves less than this many tenths of the paragraph text, it is undone.
const RESCUE_TENTHS: u64 = 2;

/// Which nodes to leave out (with their subtrees): overlays (cookie banners, modals)
/// always, class/id/role boilerplate and page headers unless they hold a large share of
/// the page's paragraph text or are article elements themselves.
fn prune(page: &Page, tw: &TextWeights) -> Vec<bool> {
    let n = page.nodes.len();
    let whole = measure(page, tw, vec![false; n]);
    let mass = paragraph_mass(page, &whole, &leaf_text(page, &whole));
    // An element that holds an `<article>`/`<main>` wraps the content, whatever its
    // class says (Drupal's `dialog-off-canvas-main-canvas`).
    let mut holds_article = vec![false; n];
    for i in (1..n).rev() {
        if holds_article[i] || page.nodes[i].flags & ARTICLE != 0 {
            holds_article[page.nodes[i].parent as usize] = true;
        }
    }
    let mut overlay = vec![false; n];
    for i in 1..n {
        let node = &page.nodes[i];
        overlay[i] = overlay[node.parent as usize]
            || (node.flags & STRONG != 0
                && node.flags & ARTICLE == 0
                && !holds_article[i]
                && node.tag != Tag::Body);
    }
    // The paragraph text outside overlays: a long privacy notice in a cookie dialog
    // must not make the article look small.
    let mut total = kept_mass(page, &mass, &overlay);
    if total * 10 < mass[0] * RESCUE_TENTHS {
        // Overlays took (nearly) everything: the markup misleads, keep them.
        overlay = vec![false; n];
        total = mass[0];
    }
    let mut removed = overlay.clone();
    let mut in_article = vec![false; n];
    for i in 1..n {
        let node = &page.nodes[i];
        let p = node.parent as usize;
        in_article[i] = in_article[p] || node.flags & ARTICLE != 0;
        let big = total > 0 && mass[i] * 10 >= total * GUARD_TENTHS;
        let boiler = node.flags & BOILER != 0 && node.flags & ARTICLE == 0;
        let header = (node.tag == Tag::Header || node.flags & HEADER != 0) && !in_article[i];
        removed[i] |= removed[p] || ((boiler || header) && !big && node.tag != Tag::Body);
    }
    // Class words took (nearly) all the paragraph text: the markup misleads (a theme
    // that names every block `…-share-…`), so trust the tags alone.
    let kept = kept_mass(page, &mass, &removed);
    if total > 0 && kept * 10 < total * RESCUE_TENTHS {
        return overlay;
    }
    removed
}

/// Paragraph text left after pruning.
fn kept_mass(page: &Page, mass: &[u64], removed: &[bool]) -> u64 {
    // The mass of removed subtree roots, subtracted from the total.
    let lost: u64 = (1..page.nodes.len())
        .filter(|&i| removed[i] && !removed[page.nodes[i].parent as usize])
        .map(|i| mass[i])
        .sum();
    mass[0].saturating_sub(lost)
}

/// Weighted length of each text node, and whether it sits inside a link (at any
/// depth: a `<div>` inside an `<a>` is link text too). Computed once per page.
struct TextWeights {
    w: Vec<u32>,
    link: Vec<bool>,
}

fn text_weights(page: &Page) -> TextWeights {
    let n = page.nodes.len();
    let mut w = vec![0u32; n];
    let mut link = vec![false; n];
    for i in 1..n {
        let node = &page.nodes[i];
        link[i] = link[node.parent as usize] || node.tag == Tag::A;
        if node.tag == Tag::Text {
            w[i] = page
                .text_of(node)
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(weight)
                .sum();
        }
    }
    TextWeights { w, link }
}

fn measure(page: &Page, tw: &TextWeights, removed: Vec<bool>) -> Measure {
    let n = page.nodes.len();
    let mut w = vec![0u32; n];
    let mut lw = vec![0u32; n];
    for i in (1..n).rev() {
        if removed[i] {
            continue;
        }
        if page.nodes[i].tag == Tag::Text {
            w[i] = tw.w[i];
            if tw.link[i] {
                lw[i] = tw.w[i];
            }
        }
        let p = page.nodes[i].parent as usize;
        w[p] += w[i];
        lw[p] += lw[i];
    }
    Measure { removed, w, lw }
}

/// The nearest block ancestor of node `i`.
fn leaf_block(page: &Page, i: usize) -> usize {
    let mut b = page.nodes[i].parent as usize;
    while b != 0 && !(page.nodes[b].tag.is_block() || page.nodes[b].tag == Tag::Cell) {
        b = page.nodes[b].parent as usize;
    }
    b
}

/// Weighted text each leaf block holds directly (its text nodes and inline elements).
fn leaf_text(page: &Page, m: &Measure) -> Vec<u32> {
    let mut direct = vec![0u32; page.nodes.len()];
    for i in 1..page.nodes.len() {
        if page.nodes[i].tag == Tag::Text && !m.removed[i] && m.w[i] > 0 {
            direct[leaf_block(page, i)] += m.w[i];
        }
    }
    direct
}

/// Paragraph text under each node: the text of leaf blocks long enough and not mostly
/// links, summed over the subtree.
fn paragraph_mass(page: &Page, m: &Measure, direct: &[u32]) -> Vec<u64> {
    let n = page.nodes.len();
    let mut good = vec![0u64; n];
    for b in 1..n {
        // Prose in a `<p>` may be densely linked (encyclopedias); lists of links in
        // other blocks may not.
        let max_tenths = if page.nodes[b].tag == Tag::P {
            P_LINK_TENTHS
        } else {
            5
        };
        if direct[b] >= 25 && !m.removed[b] && m.lw[b] * 10 < m.w[b] * max_tenths {
            good[b] += direct[b] as u64;
        }
    }
    for i in (1..n).rev() {
        let p = page.nodes[i].parent as usize;
        good[p] += good[i];
    }
    good
}

/// Chooses the content root: the deepest node holding all paragraph text (the common
/// ancestor of every paragraph that survived pruning), or, inside it, the smallest
/// `<article>`/`<main>` holding most of it: unmarked side blocks between an article
/// and the page wrapper would otherwise come along. `None` when the page has no
/// paragraph text at all.
fn choose(page: &Page, m: &Measure) -> Option<usize> {
    let n = page.nodes.len();
    let direct = leaf_text(page, m);
    let good = paragraph_mass(page, m, &direct);
    let total = good[0];
    if total == 0 {
        return None;
    }
    let mut cur = 0usize;
    while let Some(c) = page
        .children(cur)
        // Only into containers: a single paragraph holding all the text still has its
        // lists, tables and code beside it.
        .find(|&c| {
            good[c] >= total && matches!(page.nodes[c].tag, Tag::Div | Tag::Body | Tag::Header)
        })
    {
        cur = c;
    }
    let need = total * ARTICLE_TENTHS / 10;
    let mut best: Option<usize> = None;
    for i in cur + 1..n {
        if page.nodes[i].flags & ARTICLE != 0
            && good[i] >= need
            && !m.removed[i]
            && best.is_none_or(|b| good[i] <= good[b])
        {
            best = Some(i);
        }
    }
    Some(best.unwrap_or(cur))
}

/// One rendered line of output.
struct Line {
    text: String,
    w: u32,
    lw: u32,
    keep: bool,
    /// The line is a heading (`<h1>`..`<h6>`).
    heading: bool,
    /// The line is (the start of) a `<p>`.
    para: bool,
    /// The block that holds this line together with its sibling paragraphs, lists
    /// and tables (see [`container`]).
    container: usize,
}

/// The element a line's paragraph, list item or table row sits in: the parent of
/// the paragraph, or the element around the list or table.
fn container(page: &Page, text_node: usize) -> usize {
    let mut b = page.nodes[text_node].parent as usize;
    while b != 0
        && matches!(
            page.nodes[b].tag,
            Tag::Inline | Tag::A | Tag::Cell | Tag::Tr | Tag::Table | Tag::Li | Tag::List
        )
    {
        b = page.nodes[b].parent as usize;
    }
    if matches!(page.nodes[b].tag, Tag::P | Tag::H | Tag::Pre | Tag::Quote) {
        b = page.nodes[b].parent as usize;
    }
    b
}

struct Render<'a> {
    page: &'a Page,
    m: &'a Measure,
    lines: Vec<Line>,
    cur: String,
    cur_w: u32,
    cur_lw: u32,
    cur_keep: bool,
    cur_heading: bool,
    space: bool,
    in_link: u32,
    in_pre: u32,
    /// First text node of the line being built.
    cur_text: Option<usize>,
}

impl Render<'_> {
    fn flush(&mut self) {
        let text = self.cur.trim_end();
        if !text.is_empty() {
            self.lines.push(Line {
                text: text.to_string(),
                w: self.cur_w,
                lw: self.cur_lw,
                keep: self.cur_keep,
                heading: self.cur_heading,
                container: self.cur_text.map_or(0, |t| container(self.page, t)),
                para: self
                    .cur_text
                    .is_some_and(|t| self.page.nodes[leaf_block(self.page, t)].tag == Tag::P),
            });
        }
        self.cur_text = None;
        self.cur.clear();
        self.cur_w = 0;
        self.cur_lw = 0;
        self.cur_keep = false;
        self.cur_heading = false;
        self.space = false;
    }

    fn push_text(&mut self, s: &str) {
        if self.in_pre > 0 {
            for line in s.split('\n') {
                self.cur.push_str(line.trim_end());
                self.cur.push('\n');
            }
            self.cur.pop();
            let w: u32 = s.chars().filter(|c| !c.is_whitespace()).map(weight).sum();
            self.cur_w += w;
            return;
        }
        for c in s.chars() {
            if c.is_whitespace() {
                self.space = !self.cur.is_empty();
                continue;
            }
            if self.space {
                self.cur.push(' ');
                self.space = false;
            }
            self.cur.push(c);
            let w = weight(c);
            self.cur_w += w;
            if self.in_link > 0 {
                self.cur_lw += w;
            }
        }
    }

    fn node(&mut self, i: usize) {
        if self.m.removed[i] {
            return;
        }
        let node = &self.page.nodes[i];
        match node.tag {
            Tag::Text => {
                let page = self.page;
                if self.cur_text.is_none() {
                    self.cur_text = Some(i);
                }
                self.push_text(page.text_of(node));
            }
            Tag::Skip => {}
            Tag::Br | Tag::Hr => self.flush(),
            Tag::Cell => {
                if !self.cur.is_empty() {
                    self.cur.push('\t');
                    self.space = false;
                }
                self.children(i);
            }
            Tag::A => {
                self.in_link += 1;
                self.children(i);
                self.in_link -= 1;
            }
            Tag::Inline => self.children(i),
            Tag::Pre => {
                self.flush();
                self.in_pre += 1;
                self.children(i);
                self.in_pre -= 1;
                self.cur_keep = true;
                self.flush();
            }
            Tag::H => {
                self.flush();
                self.children(i);
                self.cur_keep = true;
                self.cur_heading = true;
                self.flush();
            }
            _ => {
                self.flush();
                self.children(i);
                self.flush();
            }
        }
    }

    fn children(&mut self, i: usize) {
        let page = self.page;
        for c in page.children(i) {
            self.node(c);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Good,
    Near,
    Short,
    Bad,
}

/// Line weights below this are short (a date, "Share this", a button label).
const SHORT: u32 = 30;
/// Line weights from this on are good content when not link-heavy.
const GOOD: u32 = 80;
/// Most link text, in tenths, a `<p>` may have and still count as prose.
const P_LINK_TENTHS: u32 = 8;
/// Most link text, in tenths, of a `<p>` line that delimits the content.
const P_ANCHOR_LINK_TENTHS: u32 = 7;
/// Lines from this weight on, not link-heavy, delimit the content: lines before the
/// first and after the last are dropped.
const ANCHOR: u32 = 40;
/// An `<article>`/`<main>` holding this many tenths of the paragraph text bounds the
/// content.
const ARTICLE_TENTHS: u64 = 7;

fn line_class(l: &Line) -> Class {
    let max_tenths = if l.para { P_LINK_TENTHS } else { 6 };
    if l.w > 0 && l.lw * 10 > l.w * max_tenths {
        Class::Bad
    } else if l.w >= GOOD && l.lw * 10 < l.w * 3 {
        Class::Good
    } else if l.w < SHORT {
        Class::Short
    } else {
        Class::Near
    }
}

/// Keeps the lines from the first good one to the last, minus link-heavy ones.
fn trim_lines(lines: &[Line]) -> Vec<bool> {
    let class: Vec<Class> = lines.iter().map(line_class).collect();
    let is_anchor = |i: usize| {
        let max_tenths = if lines[i].para {
            P_ANCHOR_LINK_TENTHS
        } else {
            3
        };
        class[i] != Class::Bad && lines[i].w >= ANCHOR && lines[i].lw * 10 < lines[i].w * max_tenths
    };
    let first = (0..lines.len()).position(is_anchor);
    let last = (0..lines.len()).rposition(is_anchor);
    let (Some(mut first), Some(mut last)) = (first, last) else {
        return class.iter().map(|&c| c != Class::Bad).collect();
    };
    // Lists, tables and short closing lines in the same block as the last paragraph
    // belong to the article; a different block after it is the page's tail.
    while last + 1 < lines.len()
        && lines[last + 1].container == lines[last].container
        && (class[last + 1] != Class::Bad || lines[last + 1].keep)
    {
        last += 1;
    }
    // Middling lines right before the first anchor (a lead, a subtitle) and the heading
    // over them belong to the content.
    while first > 0 && (lines[first - 1].keep || class[first - 1] == Class::Near) {
        first -= 1;
        if lines[first].keep {
            break;
        }
    }
    while first > 0
        && lines[first - 1].container == lines[first].container
        && class[first - 1] != Class::Bad
    {
        first -= 1;
    }
    let n = lines.len();
    // Nearest non-short class after each line (the end counts as good: the trimmed
    // edge is handled above).
    let mut next = vec![Class::Good; n];
    let mut prev = vec![Class::Good; n];
    let mut seen = Class::Good;
    for i in (0..n).rev() {
        next[i] = seen;
        if class[i] != Class::Short {
            seen = class[i];
        }
    }
    seen = Class::Good;
    for i in 0..n {
        prev[i] = seen;
        if class[i] != Class::Short {
            seen = class[i];
        }
    }
    let mut keep: Vec<bool> = (0..n)
        .map(|i| {
            if i < first || i > last || class[i] == Class::Bad {
                return false;
            }
            // A label over a list of links ("Related", "See also") goes with it.
            let label = class[i] == Class::Short || (lines[i].keep && lines[i].w < GOOD);
            if label && next[i] == Class::Bad {
                return false;
            }
            // So does a line caught between two of them.
            if matches!(class[i], Class::Short | Class::Near)
                && next[i] == Class::Bad
                && prev[i] == Class::Bad
            {
                return false;
            }
            true
        })
        .collect();
    // A heading that ends the text heads nothing that was kept: the title of a list
    // of links or teasers after the article ("Related articles", "More on this").
    while let Some(j) = keep.iter().rposition(|&k| k) {
        if !(lines[j].heading && lines[j].w < GOOD && keep[..j].iter().any(|&k| k)) {
            break;
        }
        keep[j] = false;
    }
    keep
}

/// Extracts the main text of a page. `use_classes`: prune by class/id words (turned off
/// when that would leave almost nothing).
pub fn main_text(page: &Page) -> String {
    if page.nodes.len() <= 1 {
        return String::new();
    }
    let tw = text_weights(page);
    let m = measure(page, &tw, prune(page, &tw));
    // No paragraph anywhere (a list of short lines, a table): render what survived
    // pruning and let the line rules decide.
    let mut root = choose(page, &m).unwrap_or(0);
    // A root with next to nothing in it on a page with text elsewhere: the paragraph
    // rule found a stray fragment, so render everything that survived pruning.
    if m.w[root] < 100 && m.w[0] > 3 * m.w[root].max(1) {
        root = 0;
    }
    let mut r = Render {
        page,
        m: &m,
        lines: Vec::new(),
        cur: String::new(),
        cur_w: 0,
        cur_lw: 0,
        cur_keep: false,
        cur_heading: false,
        space: false,
        in_link: 0,
        in_pre: 0,
        cur_text: None,
    };
    r.node(root);
    r.flush();
    let keep = trim_lines(&r.lines);
    let mut out = String::new();
    for (line, keep) in r.lines.iter().zip(keep) {
        if keep {
            out.push_str(&line.text);
            out.push('\n');
        }
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::super::dom;
    use super::*;
    use std::time::{Duration, Instant};

    fn extract(html: &str) -> String {
        let doc = dom::parse(html, Instant::now() + Duration::from_secs(10)).unwrap();
        let page = dom::build(&doc, 256, 1_000_000).unwrap();
        main_text(&page)
    }

    const PARA: &str = "This is a long paragraph of real article text, with commas, clauses and sentences. It goes on for a while so that it scores well.";

    #[test]
    fn keeps_article_drops_chrome() {
        let html = format!(
            "<html><body><header><a href=/>Home</a> <a href=/x>News</a></header>\
             <nav><ul><li><a href=/a>Menu A</a></li><li><a href=/b>Menu B</a></li></ul></nav>\
             <div class=content><h1>Headline here</h1><p>{PARA}</p><p>{PARA} Second.</p>\
             <ul><li>first item</li><li>second item</li></ul>\
             <div class=share-buttons>Share on Facebook</div></div>\
             <div id=sidebar><p>Sidebar text that is not part of the article, really.</p></div>\
             <footer>Copyright 2024 Company</footer></body></html>"
        );
        let text = extract(&html);
        assert!(text.contains("Headline here\n"), "{text}");
        assert!(text.contains(PARA));
        assert!(text.contains("first item\nsecond item"));
        for junk in ["Menu A", "Home", "Share on", "Sidebar", "Copyright"] {
            assert!(!text.contains(junk), "{junk} in {text}");
        }
    }

    #[test]
    fn cjk_without_spaces_is_kept_whole() {
        let zh = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心。这座城市有三千多年的建城史。";
        let html = format!(
            "<body><div class=menu><a href=/>首页</a><a href=/n>新闻</a></div>\
             <article><p>{zh}</p><p>上海是中国最大的<b>经济</b>中心城市之一。</p></article></body>"
        );
        let text = extract(&html);
        assert!(text.contains(zh), "{text}");
        assert!(text.contains("上海是中国最大的经济中心城市之一。"));
        assert!(!text.contains("首页"));
    }

    #[test]
    fn tables_and_pre_keep_structure() {
        let html = format!(
            "<body><article><p>{PARA}</p><table><tr><th>Name</th><th>Value</th></tr>\
             <tr><td>alpha</td><td>1</td></tr></table><pre>fn main() {{\n    go();\n}}</pre>\
             </article></body>"
        );
        let text = extract(&html);
        assert!(text.contains("Name\tValue\nalpha\t1"), "{text}");
        assert!(text.contains("fn main() {\n    go();\n}"), "{text}");
    }

    #[test]
    fn wrapper_with_boilerplate_class_is_not_pruned() {
        let html = format!(
            "<body class=has-sidebar><div id=page class=with-nav-menu><main><p>{PARA}</p></main></div></body>"
        );
        assert!(extract(&html).contains(PARA));
        // No article markup, everything under a misleading class: fall back to tags.
        let html = format!("<body><div class=widget><p>{PARA}</p><p>{PARA}</p></div></body>");
        assert!(extract(&html).contains(PARA));
    }
}
