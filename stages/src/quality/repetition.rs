//! Gopher repetition rules (Rae et al. 2021, as in datatrove's
//! `GopherRepetitionFilter`): duplicated lines and paragraphs, and n-gram repetition
//! measured in characters. n-grams are over words, CJK characters being words.

use super::text::Analysis;
use super::{Check, Mode};
use crate::stage::Measure;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Gopher repetition configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// drop | annotate | off. Default drop.
    pub mode: Mode,
    /// Highest fraction of lines that repeat an earlier line. Default 0.3.
    pub dup_line_frac: f64,
    /// Highest fraction of paragraphs that repeat an earlier one. Default 0.3.
    pub dup_para_frac: f64,
    /// Highest fraction of characters in repeated lines. Default 0.2.
    pub dup_line_char_frac: f64,
    /// Highest fraction of characters in repeated paragraphs. Default 0.2.
    pub dup_para_char_frac: f64,
    /// `[n, fraction]`: highest fraction of word characters covered by the most
    /// frequent n-gram. Default [[2, 0.2], [3, 0.18], [4, 0.16]].
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[n, fraction]`: highest fraction of word characters in n-grams that occurred
    /// before. Default [[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.1]].
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Drop,
            dup_line_frac: 0.3,
            dup_para_frac: 0.3,
            dup_line_char_frac: 0.2,
            dup_para_char_frac: 0.2,
            top_n_grams: vec![(2, 0.2), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
        }
    }
}

/// (repeated items, characters in repeated items).
fn duplicates(items: &[&str]) -> (usize, usize) {
    let mut seen = HashSet::with_capacity(items.len());
    let (mut count, mut chars) = (0, 0);
    for item in items {
        if !seen.insert(*item) {
            count += 1;
            chars += item.chars().count();
        }
    }
    (count, chars)
}

/// What the duplicate paragraph rules measure, with their reasons: repeated items,
/// then their characters.
const PARAGRAPH_RULES: [(&str, &str); 2] = [
    ("duplicate paragraph ratio", "repetition_dup_para_frac"),
    (
        "duplicate paragraph character ratio",
        "repetition_dup_para_char_frac",
    ),
];
/// The same for lines.
const LINE_RULES: [(&str, &str); 2] = [
    ("duplicate line ratio", "repetition_dup_line_frac"),
    (
        "duplicate line character ratio",
        "repetition_dup_line_char_frac",
    ),
];

impl Config {
    /// Checks the n-gram sizes.
    pub fn validate(&self) -> Result<(), String> {
        if self
            .top_n_grams
            .iter()
            .chain(&self.dup_n_grams)
            .any(|(n, _)| *n == 0)
        {
            return Err("repetition: n-gram sizes must be at least 1".into());
        }
        Ok(())
    }

    /// The first failing rule, if any.
    pub fn check(&self, t: &Analysis<'_>) -> Check {
        let text_chars = t.text.chars().count().max(1) as f64;
        // Paragraphs, then lines: the share of repeated items, then of their characters.
        let units = [
            (
                &t.paragraphs,
                self.dup_para_frac,
                self.dup_para_char_frac,
                PARAGRAPH_RULES,
            ),
            (
                &t.lines,
                self.dup_line_frac,
                self.dup_line_char_frac,
                LINE_RULES,
            ),
        ];
        for (items, max_share, max_chars, [(what, code), (char_what, char_code)]) in units {
            let (n, chars) = duplicates(items);
            let share = n as f64 / items.len().max(1) as f64;
            if let Some(m) = Measure::above(what, share, max_share) {
                return Some(m.fails(code));
            }
            if let Some(m) = Measure::above(char_what, chars as f64 / text_chars, max_chars) {
                return Some(m.fails(char_code));
            }
        }
        let lens: Vec<usize> = t.words.iter().map(|w| w.chars().count()).collect();
        let word_chars = lens.iter().sum::<usize>().max(1) as f64;
        // Words as 64-bit hashes and n-grams as rolling polynomial hashes of those: one
        // pass per n over integers instead of hashing n strings per position.
        let ids: Vec<u64> = t.words.iter().map(|w| crate::ngram::word_hash(w)).collect();
        let mut counts: HashMap<u64, (u32, usize), crate::ngram::BuildMix> = HashMap::default();
        for &(n, limit) in &self.top_n_grams {
            if ids.len() < n {
                continue;
            }
            counts.clear();
            for (i, h) in crate::ngram::ngram_hashes(&ids, n).enumerate() {
                counts.entry(h).or_insert((0, i)).0 += 1;
            }
            // The most frequent n-gram (ties: the longest), counted in characters.
            let top = counts
                .values()
                .filter(|(c, _)| *c > 1)
                .map(|&(c, first)| (c, lens[first..first + n].iter().sum::<usize>()))
                .max();
            if let Some((count, chars)) = top
                && let Some(m) = Measure::above(
                    "top n-gram character ratio",
                    (chars * count as usize) as f64 / word_chars,
                    limit,
                )
            {
                let m = m.named(format!("top {n}-gram character ratio"));
                return Some(m.fails("repetition_top_n_gram"));
            }
        }
        let mut seen: HashSet<u64, crate::ngram::BuildMix> = HashSet::default();
        let mut covered = vec![false; ids.len()];
        for &(n, limit) in &self.dup_n_grams {
            if ids.len() < n {
                continue;
            }
            // Characters of the words covered by an n-gram seen before; each word is
            // counted once however many repeated n-grams cover it.
            seen.clear();
            covered.iter_mut().for_each(|c| *c = false);
            for (i, h) in crate::ngram::ngram_hashes(&ids, n).enumerate() {
                if !seen.insert(h) {
                    covered[i..i + n].iter_mut().for_each(|c| *c = true);
                }
            }
            let chars: usize = covered
                .iter()
                .zip(&lens)
                .filter(|(c, _)| **c)
                .map(|(_, l)| l)
                .sum();
            if let Some(m) = Measure::above(
                "duplicate n-gram character ratio",
                chars as f64 / word_chars,
                limit,
            ) {
                let m = m.named(format!("duplicate {n}-gram character ratio"));
                return Some(m.fails("repetition_dup_n_gram"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::quality::defaults::repetition as check;

    #[test]
    fn repeated_lines_paragraphs_and_ngrams_are_caught() {
        let varied = "Alice went to the market on Monday morning.\n\
            Bob stayed home and read a long novel about sailors.\n\
            Carol fixed her bicycle after lunch with a borrowed wrench.\n\
            Dave called his grandmother who lives by the northern coast.";
        assert_eq!(check(varied), None);
        let lines = format!("{varied}\nBuy now!\nBuy now!\nBuy now!\nBuy now!");
        assert_eq!(check(&lines), Some("repetition_dup_line_frac"));
        let paras = format!(
            "{varied}\n\nSame paragraph here.\n\nSame paragraph here.\n\nSame paragraph here."
        );
        assert_eq!(check(&paras), Some("repetition_dup_para_frac"));
        let ngram =
            "click here to subscribe click here to win click here to read more about it now";
        assert_eq!(check(ngram), Some("repetition_top_n_gram"));
        // Each 10-gram seen once, but a long passage repeated: duplicated n-grams.
        let passage = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu";
        let spam = format!("{varied} {passage} nu xi omicron {passage} pi rho");
        assert_eq!(check(&spam), Some("repetition_dup_n_gram"));
    }

    #[test]
    fn chinese_ngrams_are_characters() {
        let varied =
            "我们今天在学校学习了数学和语文，老师讲得很清楚，同学们都认真听课，下午还有体育活动。";
        assert_eq!(check(varied), None);
        let spam = "点击这里免费领取大奖".repeat(5);
        assert!(check(&spam).is_some());
    }
}
