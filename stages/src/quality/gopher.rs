//! Gopher quality rules (Rae et al. 2021, as in datatrove's `GopherQualityFilter`).

use super::text::Analysis;
use super::{Check, Mode};
use crate::stage::Measure;
use serde::{Deserialize, Serialize};

/// English stop words of the Gopher paper.
const STOP_WORDS_EN: &[&str] = &["the", "be", "to", "of", "and", "that", "have", "with"];
/// What the word length rules measure.
const MEAN_WORD: &str = "mean word length";

/// The most common Chinese function characters, playing the same part for Chinese.
const STOP_WORDS_ZH: &[&str] = &["的", "了", "是", "在", "和", "有", "不", "这", "我", "也"];

/// Gopher quality configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// drop | annotate | off. Default drop.
    pub mode: Mode,
    /// Fewest words (CJK characters count as words). Default 50.
    pub min_words: usize,
    /// Most words. Default 100000.
    pub max_words: usize,
    /// Lowest mean word length in characters (not applied to CJK text). Default 3.
    pub min_avg_word_length: f64,
    /// Highest mean word length in characters (not applied to CJK text). Default 10.
    pub max_avg_word_length: f64,
    /// Highest ratio of `#` and ellipses to words. Default 0.1.
    pub max_symbol_word_ratio: f64,
    /// Highest fraction of lines starting with a bullet. Default 0.9.
    pub max_bullet_lines_ratio: f64,
    /// Highest fraction of lines ending with an ellipsis. Default 0.3.
    pub max_ellipsis_lines_ratio: f64,
    /// Lowest fraction of words holding a letter. Default 0.8.
    pub min_alpha_words_ratio: f64,
    /// Fewest stop words (English or Chinese list, by `meta.lang` or the script; other
    /// languages are not checked). Default 2.
    pub min_stop_words: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Drop,
            min_words: 50,
            max_words: 100_000,
            min_avg_word_length: 3.0,
            max_avg_word_length: 10.0,
            max_symbol_word_ratio: 0.1,
            max_bullet_lines_ratio: 0.9,
            max_ellipsis_lines_ratio: 0.3,
            min_alpha_words_ratio: 0.8,
            min_stop_words: 2,
        }
    }
}

impl Config {
    /// Checks the bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_words < self.min_words {
            return Err(format!(
                "gopher.max_words ({}) is below gopher.min_words ({})",
                self.max_words, self.min_words
            ));
        }
        if self.max_avg_word_length < self.min_avg_word_length {
            return Err("gopher.max_avg_word_length is below gopher.min_avg_word_length".into());
        }
        Ok(())
    }

    /// The first failing rule, if any. `lang` is `meta.lang` when known.
    pub fn check(&self, t: &Analysis<'_>, lang: Option<&str>) -> Check {
        let n = t.words.len();
        if let Some(m) = Measure::below("words", n as f64, self.min_words as f64) {
            return Some(m.fails("gopher_short_doc"));
        }
        if let Some(m) = Measure::above("words", n as f64, self.max_words as f64) {
            return Some(m.fails("gopher_long_doc"));
        }
        let cjk = t.is_cjk();
        if !cjk {
            let chars: usize = t.words.iter().map(|w| w.chars().count()).sum();
            let mean = chars as f64 / n as f64;
            if let Some(m) = Measure::below(MEAN_WORD, mean, self.min_avg_word_length) {
                return Some(m.fails("gopher_below_avg_word_length"));
            }
            if let Some(m) = Measure::above(MEAN_WORD, mean, self.max_avg_word_length) {
                return Some(m.fails("gopher_above_avg_word_length"));
            }
        }
        let hashes = t.text.matches('#').count();
        let ellipses = t.text.matches("...").count() + t.text.matches('…').count();
        let symbols = (hashes + ellipses) as f64 / n as f64;
        if let Some(m) = Measure::above("symbol-to-word ratio", symbols, self.max_symbol_word_ratio)
        {
            return Some(m.fails("gopher_symbol_word_ratio"));
        }
        let bullets = t.line_share(|l| l.starts_with(['•', '●', '○', '▪', '‣', '-', '*', '·']));
        if let Some(m) = Measure::above("bullet line ratio", bullets, self.max_bullet_lines_ratio) {
            return Some(m.fails("gopher_bullet_lines"));
        }
        let ellipsis_lines = t.line_share(|l| l.ends_with("...") || l.ends_with('…'));
        let max = self.max_ellipsis_lines_ratio;
        if let Some(m) = Measure::above("ellipsis line ratio", ellipsis_lines, max) {
            return Some(m.fails("gopher_ellipsis_lines"));
        }
        let alpha = t
            .words
            .iter()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count();
        let alpha = (alpha as f64) / (n as f64);
        if let Some(m) = Measure::below("alphabetic word ratio", alpha, self.min_alpha_words_ratio)
        {
            return Some(m.fails("gopher_below_alpha_ratio"));
        }
        let stop_words = match lang {
            Some("en") => Some(STOP_WORDS_EN),
            Some("zh") => Some(STOP_WORDS_ZH),
            Some(_) => None,
            None if cjk => Some(STOP_WORDS_ZH),
            None => Some(STOP_WORDS_EN),
        };
        if let Some(list) = stop_words {
            let mut found = 0;
            for w in &t.words {
                let lower = w.trim_matches(|c: char| !c.is_alphanumeric());
                if list.iter().any(|s| lower.eq_ignore_ascii_case(s)) {
                    found += 1;
                    if found >= self.min_stop_words {
                        break;
                    }
                }
            }
            if let Some(m) = Measure::below("stop words", found as f64, self.min_stop_words as f64)
            {
                return Some(m.fails("gopher_few_stop_words"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::quality::defaults::gopher as check;

    fn words(n: usize, word: &str) -> String {
        vec![word; n].join(" ")
    }

    #[test]
    fn each_rule_has_its_reason() {
        let prose = "the cat sat with the dog and that was fine to see ".repeat(6);
        assert_eq!(check(&prose, Some("en")), None);
        assert_eq!(check("the cat", None), Some("gopher_short_doc"));
        assert_eq!(
            check(&words(60, "a b"), None),
            Some("gopher_below_avg_word_length")
        );
        assert_eq!(
            check(&words(60, "incomprehensibilities"), None),
            Some("gopher_above_avg_word_length")
        );
        assert_eq!(
            check(&format!("{prose} {}", "#tag ".repeat(10)), None),
            Some("gopher_symbol_word_ratio")
        );
        let bullets = "- the item with that and the other\n".repeat(10);
        assert_eq!(check(&bullets, None), Some("gopher_bullet_lines"));
        let ellipsis = "the story goes on and on with that...\n".repeat(10);
        assert_eq!(check(&ellipsis, None), Some("gopher_symbol_word_ratio"));
        let numbers = format!("{} {}", "the and", "1234 5678 9012 ".repeat(20));
        assert_eq!(check(&numbers, None), Some("gopher_below_alpha_ratio"));
        let no_stop = "cats dogs birds fish mice ".repeat(12);
        assert_eq!(check(&no_stop, Some("en")), Some("gopher_few_stop_words"));
        // No stop-word list for German: not checked.
        assert_eq!(check(&no_stop, Some("de")), None);
    }

    #[test]
    fn chinese_counts_characters_and_has_its_stop_words() {
        let zh =
            "今天的天气很好，我们在公园里散步，看到了很多花。这是一个美好的下午，大家都很开心。";
        let text = zh.repeat(2);
        assert_eq!(check(&text, Some("zh")), None);
        assert_eq!(check(zh, Some("zh")), Some("gopher_short_doc"));
        let no_stop = "天气公园散步看到很多花美好下午大家开心".repeat(4);
        assert_eq!(check(&no_stop, None), Some("gopher_few_stop_words"));
    }
}
