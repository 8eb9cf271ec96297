//! Finding the main content in a [`Page`] and writing it as plain text.
//!
//! 1. Pruning: subtrees marked boilerplate by tag (done while building the arena), by
//!    class/id/role/hidden (`BOILER`), and `<header>`s outside an article are left out;
//!    a marked subtree that holds an `<article>`/`<main>` is kept, since page wrappers
//!    carry words like `has-sidebar` too.
//! 2. Scoring, after readability: every leaf block with enough text gives its parent a
//!    score from its length and punctuation (any script's), half of it to the grandparent
//!    and a third to the great-grandparent; a candidate's score is damped by its link
//!    density and raised by article markup. The best candidate and its siblings that
//!    score close to it are the content.
//! 3. Rendering: blocks become lines, table cells are separated by tabs, whitespace is
//!    collapsed except in `<pre>`; blocks that are mostly link text are dropped.
//!
//! Text length is weighted by script: a CJK character counts as three Latin letters, so
//! thresholds mean about the same amount of content for pages without spaces.

use super::dom::{ARTICLE, BOILER, CONTENT, HEADER, Page, Tag};

/// Weighted length of one character: CJK ideographs, kana and hangul carry about as much
/// as a short word.
fn weight(c: char) -> u32 {
    match c as u32 {
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff => 3,
        _ => 1,
    }
}

fn is_punct(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | '!' | '?' | '，' | '。' | '、' | '；' | '！' | '？' | '،' | '؛' | '۔' | '।'
    )
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

/// Share of the page's text (in tenths) above which a subtree marked boilerplate by
/// class is kept anyway: such a subtree is a page wrapper with an unlucky class
/// (`widget Blog`, `has-sidebar`, `enable-pin-share`), or the page is its comments.
const GUARD_TENTHS: u64 = 4;

fn prune(page: &Page, use_classes: bool) -> Vec<bool> {
    let n = page.nodes.len();
    let mass = if use_classes {
        let m = measure(page, prune(page, false));
        let direct = leaf_text(page, &m);
        Some(paragraph_mass(page, &m, &direct))
    } else {
        None
    };
    let total = mass.as_ref().map_or(0, |g| g[0]);
    let mut removed = vec![false; n];
    let mut in_article = vec![false; n];
    let guard = std::env::var("CORPUS_EXTRACT_GUARD").as_deref() != Ok("off");
    for i in 1..n {
        let node = &page.nodes[i];
        let p = node.parent as usize;
        in_article[i] = in_article[p] || node.flags & ARTICLE != 0;
        let big = mass
            .as_ref()
            .is_some_and(|g| guard && total > 0 && g[i] * 10 >= total * GUARD_TENTHS);
        removed[i] = removed[p]
            || (use_classes && node.flags & BOILER != 0 && !big && node.tag != Tag::Body)
            || ((node.tag == Tag::Header || (use_classes && node.flags & HEADER != 0))
                && !in_article[i]
                && !big);
    }
    removed
}

fn measure(page: &Page, removed: Vec<bool>) -> Measure {
    let n = page.nodes.len();
    let mut w = vec![0u32; n];
    let mut lw = vec![0u32; n];
    for i in (1..n).rev() {
        if removed[i] {
            continue;
        }
        let node = &page.nodes[i];
        if node.tag == Tag::Text {
            w[i] = page
                .text_of(node)
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(weight)
                .sum();
        }
        if node.tag == Tag::A {
            lw[i] = w[i];
        }
        let p = node.parent as usize;
        w[p] += w[i];
        lw[p] += lw[i];
    }
    Measure { removed, w, lw }
}

/// Chooses the content nodes: indexes of subtrees to render, in document order.
fn choose(page: &Page, m: &Measure) -> Vec<u32> {
    let n = page.nodes.len();
    let mut score = vec![0f32; n];
    let direct = leaf_text(page, m);
    let mut punct = vec![0u32; n];
    if std::env::var("CORPUS_EXTRACT_ALGO").as_deref() != Ok("readability") {
        let frac: f32 = std::env::var("CORPUS_EXTRACT_FRAC")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.75);
        return choose_mass(page, m, &direct, frac);
    }
    for i in 1..n {
        let node = &page.nodes[i];
        if node.tag == Tag::Text && !m.removed[i] {
            punct[leaf_block(page, i)] +=
                page.text_of(node).chars().filter(|&c| is_punct(c)).count() as u32;
        }
    }
    let mut any = false;
    for b in 1..n {
        if direct[b] < 25 || m.removed[b] {
            continue;
        }
        let node = &page.nodes[b];
        let ld = if m.w[b] > 0 {
            m.lw[b] as f32 / m.w[b] as f32
        } else {
            0.0
        };
        let s = (1.0 + punct[b].min(10) as f32 + (direct[b] as f32 / 100.0).min(3.0)) * (1.0 - ld);
        if s <= 0.0 {
            continue;
        }
        any = true;
        let p = node.parent as usize;
        let g = page.nodes[p].parent as usize;
        let gg = page.nodes[g].parent as usize;
        // A leaf block that is itself a generic container scores for itself too.
        if matches!(node.tag, Tag::Div | Tag::Body) {
            score[b] += s;
        }
        score[p] += s;
        if g != p {
            score[g] += s / 2.0;
        }
        if gg != g {
            score[gg] += s / 3.0;
        }
    }
    if !any {
        return Vec::new();
    }
    let mut best = 0usize;
    let mut best_score = 0f32;
    for i in 1..n {
        if score[i] <= 0.0 || m.removed[i] {
            continue;
        }
        let node = &page.nodes[i];
        let ld = m.lw[i] as f32 / m.w[i].max(1) as f32;
        let mut s = score[i] * (1.0 - ld);
        if node.flags & ARTICLE != 0 {
            s *= 1.3;
        } else if node.flags & CONTENT != 0 {
            s *= 1.15;
        }
        score[i] = s;
        if s > best_score {
            best_score = s;
            best = i;
        }
    }
    if best == 0 {
        return Vec::new();
    }
    let parent = page.nodes[best].parent as usize;
    let threshold = (best_score * 0.2).max(10.0);
    page.nodes[parent]
        .children
        .iter()
        .copied()
        .filter(|&c| {
            let c = c as usize;
            if c == best {
                return true;
            }
            if m.removed[c] || m.w[c] == 0 {
                return false;
            }
            let ld = m.lw[c] as f32 / m.w[c] as f32;
            score[c] >= threshold
                || (direct[c] >= 80 && ld < 0.25)
                || (page.nodes[c].tag == Tag::H && ld < 0.5 && c < best)
        })
        .collect()
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
        if direct[b] >= 25 && !m.removed[b] && m.lw[b] * 2 < m.w[b] {
            good[b] += direct[b] as u64;
        }
    }
    for i in (1..n).rev() {
        let p = page.nodes[i].parent as usize;
        good[p] += good[i];
    }
    good
}

/// The deepest node that holds at least `frac` of the page's paragraph text, where
/// paragraph text is the text of leaf blocks long enough and not mostly links.
fn choose_mass(page: &Page, m: &Measure, direct: &[u32], frac: f32) -> Vec<u32> {
    let n = page.nodes.len();
    let good = paragraph_mass(page, m, direct);
    let total = good[0];
    if total == 0 {
        return Vec::new();
    }
    let need = (total as f64 * frac as f64) as u64;
    let mut cur = 0usize;
    loop {
        let best = page.nodes[cur]
            .children
            .iter()
            .map(|&c| c as usize)
            .max_by_key(|&c| good[c]);
        match best {
            Some(c) if good[c] >= need && good[c] > 0 => cur = c,
            _ => break,
        }
    }
    // An article element holding most of the paragraph text is a better boundary than
    // the common ancestor of every paragraph (which takes in unmarked side blocks).
    let article_frac: f64 = std::env::var("CORPUS_EXTRACT_AFRAC")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let mask: u8 = if std::env::var("CORPUS_EXTRACT_AMASK").is_ok() { ARTICLE | CONTENT } else { ARTICLE };
    let need = (total as f64 * article_frac) as u64;
    let mut best = None;
    for i in cur + 1..n {
        if page.nodes[i].flags & mask != 0 && good[i] >= need && good[i] > 0 && !m.removed[i] {
            // Later in pre-order with enough text = deeper or a sibling; keep the one
            // with the least text that still qualifies.
            if best.is_none_or(|b: usize| good[i] <= good[b]) {
                best = Some(i);
            }
        }
    }
    vec![best.unwrap_or(cur) as u32]
}

/// One rendered line of output.
struct Line {
    text: String,
    w: u32,
    lw: u32,
    keep: bool,
}

struct Render<'a> {
    page: &'a Page,
    m: &'a Measure,
    lines: Vec<Line>,
    cur: String,
    cur_w: u32,
    cur_lw: u32,
    cur_keep: bool,
    space: bool,
    in_link: u32,
    in_pre: u32,
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
            });
        }
        self.cur.clear();
        self.cur_w = 0;
        self.cur_lw = 0;
        self.cur_keep = false;
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
        for &c in &page.nodes[i].children {
            self.node(c as usize);
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

/// Decides which rendered lines to keep, after jusText: lines that are mostly links are
/// bad; long lines are good; short and middling lines are judged by the nearest
/// non-short lines around them, so a short line between paragraphs stays while a run
/// of short lines at the edge of the content (dates, "related posts", share labels)
/// goes. Headings and `<pre>` blocks count as good when content follows them.
fn classify_lines(lines: &[Line]) -> Vec<bool> {
    let class: Vec<Class> = lines
        .iter()
        .map(|l| {
            if l.w > 0 && l.lw * 10 > l.w * 6 {
                Class::Bad
            } else if l.w >= GOOD && l.lw * 10 < l.w * 3 {
                Class::Good
            } else if l.w < SHORT {
                Class::Short
            } else {
                Class::Near
            }
        })
        .collect();
    let n = lines.len();
    // Nearest non-short class before and after each line; the edges count as bad.
    let mut prev = vec![Class::Bad; n];
    let mut last = Class::Bad;
    for i in 0..n {
        prev[i] = last;
        if class[i] != Class::Short {
            last = class[i];
        }
    }
    let mut next = vec![Class::Bad; n];
    last = Class::Bad;
    for i in (0..n).rev() {
        next[i] = last;
        if class[i] != Class::Short {
            last = class[i];
        }
    }
    let mut keep: Vec<bool> = (0..n)
        .map(|i| {
            let near_good = |c: Class| matches!(c, Class::Good | Class::Near);
            match class[i] {
                Class::Good => true,
                Class::Bad => false,
                Class::Near => prev[i] == Class::Good || next[i] == Class::Good,
                Class::Short => {
                    near_good(prev[i])
                        && near_good(next[i])
                        && (prev[i] == Class::Good || next[i] == Class::Good)
                }
            }
        })
        .collect();
    // Headings (and code) are kept when followed by kept content within a few lines.
    for i in (0..n).rev() {
        if lines[i].keep && class[i] != Class::Bad && !keep[i] {
            keep[i] = keep[i + 1..].iter().take(3).any(|&k| k);
        }
    }
    keep
}

fn line_class(l: &Line) -> Class {
    if l.w > 0 && l.lw * 10 > l.w * 6 {
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
    let anchor: u32 = std::env::var("CORPUS_EXTRACT_ANCHOR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GOOD);
    let is_anchor = |i: usize| {
        class[i] != Class::Bad && lines[i].w >= anchor && lines[i].lw * 10 < lines[i].w * 3
    };
    let first = (0..lines.len()).position(is_anchor);
    let last = (0..lines.len()).rposition(is_anchor);
    let (Some(mut first), Some(last)) = (first, last) else {
        return class.iter().map(|&c| c != Class::Bad).collect();
    };
    // A heading right before the first good line belongs to it.
    while first > 0 && (lines[first - 1].keep || class[first - 1] == Class::Near) && first + 3 > first {
        first -= 1;
        if lines[first].keep {
            break;
        }
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
    let x = std::env::var("CORPUS_EXTRACT_X").unwrap_or_default();
    (0..n)
        .map(|i| {
            if i < first || i > last || class[i] == Class::Bad {
                return false;
            }
            // A label over a list of links ("Related", "See also") goes with it.
            let label = class[i] == Class::Short || (x.contains("hlabel") && lines[i].keep && lines[i].w < GOOD);
            if x.contains("label") && label && next[i] == Class::Bad {
                return false;
            }
            if x.contains("sandwich")
                && matches!(class[i], Class::Short | Class::Near)
                && next[i] == Class::Bad
                && prev[i] == Class::Bad
            {
                return false;
            }
            true
        })
        .collect()
}

/// Extracts the main text of a page. `use_classes`: prune by class/id words (turned off
/// when that would leave almost nothing).
pub fn main_text(page: &Page) -> String {
    if page.nodes.len() <= 1 {
        return String::new();
    }
    let m = measure(page, prune(page, true));
    let mut roots = choose(page, &m);
    let chosen: u32 = roots.iter().map(|&r| m.w[r as usize]).sum();
    // Too little chosen for the page: render everything that survived pruning.
    if roots.is_empty() || (chosen < 100 && m.w[0] > 3 * chosen.max(1)) {
        roots = vec![0];
    }
    let mut r = Render {
        page,
        m: &m,
        lines: Vec::new(),
        cur: String::new(),
        cur_w: 0,
        cur_lw: 0,
        cur_keep: false,
        space: false,
        in_link: 0,
        in_pre: 0,
    };
    for root in roots {
        r.node(root as usize);
        r.flush();
    }
    let keep = if std::env::var("CORPUS_EXTRACT_LINES").as_deref() == Ok("ld") {
        r.lines.iter().map(|l| l.keep || l.w == 0 || l.lw * 10 <= l.w * 6).collect()
    } else if std::env::var("CORPUS_EXTRACT_LINES").as_deref() == Ok("trim") {
        trim_lines(&r.lines)
    } else {
        classify_lines(&r.lines)
    };
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
        let html = format!("<body class=has-sidebar><div id=page class=with-nav-menu><main><p>{PARA}</p></main></div></body>");
        assert!(extract(&html).contains(PARA));
        // No article markup, everything under a misleading class: fall back to tags.
        let html = format!("<body><div class=widget><p>{PARA}</p><p>{PARA}</p></div></body>");
        assert!(extract(&html).contains(PARA));
    }
}
