//! C4 rules (Raffel et al. 2020, as in datatrove's `C4QualityFilter`). Line rules remove
//! lines; document rules drop the document. Off by default, as in FineWeb's recipe
//! (which keeps only the terminal-punctuation idea, in [`super::fineweb`]).

use super::text::ends_with_terminal_punct;
use super::{Check, Mode};
use crate::stage::{Failure, Measure, Reason};
use serde::{Deserialize, Serialize};

/// Lines holding one of these (lower-cased) are boilerplate.
const POLICY: &[&str] = &[
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

/// C4 configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// drop | annotate | off. Default off. In annotate mode no line is removed.
    pub mode: Mode,
    /// Remove lines that do not end in terminal punctuation. Default true.
    pub filter_no_terminal_punct: bool,
    /// Remove lines with fewer words (CJK characters count as words). Default 3.
    pub min_words_per_line: usize,
    /// Remove lines with a word longer than this many characters. Default 1000.
    pub max_word_length: usize,
    /// Remove lines mentioning javascript. Default true.
    pub filter_javascript: bool,
    /// Remove cookie/privacy/terms lines. Default true.
    pub filter_policy: bool,
    /// Remove Wikipedia-style citation marks like `[1]` or `[citation needed]`. Default true.
    pub remove_citations: bool,
    /// Drop documents containing "lorem ipsum". Default true.
    pub filter_lorem_ipsum: bool,
    /// Drop documents containing a curly brace (code, templates). Default true.
    pub filter_curly_bracket: bool,
    /// Drop documents left with fewer sentences (terminal punctuation marks). Default 5.
    pub min_sentences: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Off,
            filter_no_terminal_punct: true,
            min_words_per_line: 3,
            max_word_length: 1000,
            filter_javascript: true,
            filter_policy: true,
            remove_citations: true,
            filter_lorem_ipsum: true,
            filter_curly_bracket: true,
            min_sentences: 5,
        }
    }
}

fn remove_citations(line: &str) -> String {
    // `[12]`, `[citation needed]`, `[edit]`: brackets holding digits or those words.
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        let citation = (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()))
            || inner.eq_ignore_ascii_case("citation needed")
            || inner.eq_ignore_ascii_case("edit");
        out.push_str(&rest[..open]);
        if !citation {
            out.push_str(&rest[open..=open + close]);
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn count_words(line: &str) -> usize {
    super::text::Analysis::new(line).words.len()
}

impl Config {
    /// Applies the rules: the text with removed lines taken out, and the first document
    /// rule that fails, if any.
    pub fn run(&self, text: &str) -> (String, Check) {
        let lower = text.to_lowercase();
        if self.filter_lorem_ipsum && lower.contains("lorem ipsum") {
            let detail = Some("contains \"lorem ipsum\"".to_string());
            return (
                String::new(),
                Some(Failure::new(Reason::new("c4_lorem_ipsum"), detail)),
            );
        }
        if self.filter_curly_bracket && text.contains(['{', '}']) {
            let detail = Some("contains a curly bracket".to_string());
            return (
                String::new(),
                Some(Failure::new(Reason::new("c4_curly_bracket"), detail)),
            );
        }
        let mut kept: Vec<String> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let line = if self.remove_citations {
                remove_citations(line)
            } else {
                line.to_string()
            };
            if self.filter_no_terminal_punct && !ends_with_terminal_punct(&line) {
                continue;
            }
            if count_words(&line) < self.min_words_per_line {
                continue;
            }
            if line
                .split_whitespace()
                .any(|w| w.chars().count() > self.max_word_length)
            {
                continue;
            }
            let l = line.to_lowercase();
            if self.filter_javascript && l.contains("javascript") {
                continue;
            }
            if self.filter_policy && POLICY.iter().any(|p| l.contains(p)) {
                continue;
            }
            kept.push(line);
        }
        let filtered = kept.join("\n");
        let sentences = filtered
            .chars()
            .filter(|c| matches!(c, '.' | '!' | '?' | '。' | '！' | '？'))
            .count();
        if filtered.is_empty() {
            let detail = Some("no line left after the line rules".to_string());
            return (
                filtered,
                Some(Failure::new(Reason::new("c4_no_lines_left"), detail)),
            );
        }
        let min = self.min_sentences as f64;
        if let Some(m) = Measure::below("sentences", sentences as f64, min) {
            return (filtered, Some(m.fails("c4_few_sentences")));
        }
        (filtered, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_boilerplate_lines_and_drops_by_document_rules() {
        let c = Config::default();
        let text = "Home | About | Contact\n\
            The river rose two metres overnight.[3] Residents were moved to the school.\n\
            Please enable JavaScript to view the comments.\n\
            This site uses cookies to improve your experience.\n\
            Officials said the water would fall by Friday. Roads stay closed until then.\n\
            Read more";
        let (out, check) = c.run(text);
        assert_eq!(
            out,
            "The river rose two metres overnight. Residents were moved to the school.\n\
             Officials said the water would fall by Friday. Roads stay closed until then."
        );
        let check = check.unwrap();
        assert_eq!(check.reason.code(), "c4_few_sentences");
        assert_eq!(check.detail.as_deref(), Some("sentences 4 < 5"));
        let c = Config {
            min_sentences: 3,
            ..Default::default()
        };
        assert_eq!(c.run(text).1, None);
        assert_eq!(
            c.run("Lorem ipsum dolor sit amet.")
                .1
                .map(|f| f.reason.code()),
            Some("c4_lorem_ipsum")
        );
        assert_eq!(
            c.run("function f() { return 1; }")
                .1
                .map(|f| f.reason.code()),
            Some("c4_curly_bracket")
        );
        assert_eq!(
            c.run("Menu\nLogin").1.map(|f| f.reason.code()),
            Some("c4_no_lines_left")
        );
    }

    #[test]
    fn chinese_lines_and_sentences() {
        let c = Config {
            min_sentences: 2,
            ..Default::default()
        };
        let (out, check) = c.run("首页\n今天天气很好。我们去公园散步了。\n联系我们");
        assert_eq!(out, "今天天气很好。我们去公园散步了。");
        assert_eq!(check, None);
    }
}
