//! FineWeb's extra rules (Penedo et al. 2024, datatrove's `FineWebQualityFilter`).

use super::text::{Analysis, ends_with_terminal_punct};
use super::{Check, Mode};
use crate::normalize::is_cjk_token_char;
use crate::stage::{Failure, Measure, Reason};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// FineWeb configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// drop | annotate | off. Default drop.
    pub mode: Mode,
    /// Lowest fraction of lines ending in terminal punctuation. Default 0.12.
    pub line_punct_thr: f64,
    /// Highest fraction of short lines. Default 0.67.
    pub short_line_thr: f64,
    /// A line shorter than this many characters is short. Default 30.
    pub short_line_length: usize,
    /// The same for lines that are mostly CJK (a CJK character carries more than a
    /// letter). Default 10.
    pub short_line_length_cjk: usize,
    /// Highest fraction of characters in lines that repeat an earlier line. Default 0.01.
    pub char_duplicates_ratio: f64,
    /// Highest ratio of newlines to words. Default 0.3.
    pub new_line_ratio: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Drop,
            line_punct_thr: 0.12,
            short_line_thr: 0.67,
            short_line_length: 30,
            short_line_length_cjk: 10,
            char_duplicates_ratio: 0.01,
            new_line_ratio: 0.3,
        }
    }
}

impl Config {
    /// Checks the ratios.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("line_punct_thr", self.line_punct_thr),
            ("short_line_thr", self.short_line_thr),
            ("char_duplicates_ratio", self.char_duplicates_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("fineweb.{name} must be within 0..=1, not {v}"));
            }
        }
        Ok(())
    }

    /// The first failing rule, if any.
    pub fn check(&self, t: &Analysis<'_>) -> Check {
        if t.lines.is_empty() {
            return Some(Failure::new(Reason::new("fineweb_empty"), None));
        }
        let punct = t.line_share(ends_with_terminal_punct);
        if let Some(m) = Measure::below("line punctuation ratio", punct, self.line_punct_thr) {
            return Some(m.fails("fineweb_line_punct_ratio"));
        }
        let short = t.line_share(|l| {
            let chars = l.chars().count();
            let cjk = l.chars().filter(|c| is_cjk_token_char(*c)).count();
            let limit = if cjk * 2 > chars {
                self.short_line_length_cjk
            } else {
                self.short_line_length
            };
            chars < limit
        });
        if let Some(m) = Measure::above("short line ratio", short, self.short_line_thr) {
            return Some(m.fails("fineweb_short_line_ratio"));
        }
        let mut seen = HashSet::with_capacity(t.lines.len());
        let dup_chars: usize = t
            .lines
            .iter()
            .filter(|l| !seen.insert(**l))
            .map(|l| l.chars().count())
            .sum();
        let non_space = t.text.chars().filter(|c| !c.is_whitespace()).count().max(1);
        let dup = dup_chars as f64 / non_space as f64;
        let max = self.char_duplicates_ratio;
        if let Some(m) = Measure::above("duplicate line character ratio", dup, max) {
            return Some(m.fails("fineweb_char_dup_ratio"));
        }
        let newlines = t.text.matches('\n').count() as f64 / t.words.len().max(1) as f64;
        if let Some(m) = Measure::above("newline-to-word ratio", newlines, self.new_line_ratio) {
            return Some(m.fails("fineweb_list_ratio"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::quality::defaults::fineweb as check;

    #[test]
    fn each_rule_has_its_reason() {
        let good = "The museum reopened on Saturday after two years of repairs to its roof.\n\
            Visitors can see the restored ceiling paintings in the main hall again.";
        assert_eq!(check(good), None);
        assert_eq!(
            check("Home\nNews\nSports\nWeather"),
            Some("fineweb_line_punct_ratio")
        );
        let short =
            "Short line.\nAnother one.\nAnd more.\nA long line that goes on and on for a while.";
        assert_eq!(check(short), Some("fineweb_short_line_ratio"));
        let dup = format!(
            "{good}\nVisitors can see the restored ceiling paintings in the main hall again."
        );
        assert_eq!(check(&dup), Some("fineweb_char_dup_ratio"));
        let listy = "Extraordinarily unquestionable.\n\
            Incomprehensible entanglements.\n\
            Unprecedented meteorologists.\n\
            Interdisciplinary collaborations.\n\
            Counterrevolutionary sentiments.";
        assert_eq!(check(listy), Some("fineweb_list_ratio"));
    }

    #[test]
    fn chinese_lines_use_their_own_short_length() {
        let zh = "今天下午我们在公园里散步。\n晚上大家一起吃了晚饭。";
        assert_eq!(check(zh), None);
    }
}
