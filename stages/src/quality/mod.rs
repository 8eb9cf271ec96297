//! `quality`: rule-based quality filters, language-aware (Chinese and Japanese count
//! characters, not space-split words).
//!
//! Four groups of rules, each with the published defaults (as datatrove implements
//! them for FineWeb) and its own `mode`: `drop` (the first failing rule drops the
//! document with its own reason), `annotate` (failing rules are added to
//! `scores.flags` as `quality/<reason>` and the document is kept, unchanged) or `off`.
//!
//! - [`gopher`]: Gopher quality (Rae et al. 2021): word count, mean word length,
//!   symbol-to-word ratio, bullet and ellipsis lines, alphabetic words, stop words.
//! - [`repetition`]: Gopher repetition: duplicated lines and paragraphs, top n-gram and
//!   duplicated n-gram character fractions.
//! - [`c4`]: C4 (Raffel et al. 2020): removes lines without terminal punctuation, short
//!   lines, javascript and policy lines and citation marks; drops lorem ipsum, curly
//!   braces and documents left with too few sentences.
//! - [`fineweb`]: FineWeb's extra rules: lines ending in punctuation, short lines,
//!   characters in duplicated lines, newlines per word.
//!
//! Groups run in that order (C4 may shorten the text the FineWeb rules then see).

pub mod c4;
pub mod fineweb;
pub mod gopher;
pub mod repetition;
pub mod text;

use crate::document::Document;
use crate::stage::{Failure, Stage, StageCx, StageError, Verdict};
use serde::{Deserialize, Serialize};

/// The stage kind.
pub const KIND: &str = "quality";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "rule-based quality filters: Gopher quality and repetition, C4, FineWeb (drop, annotate or off per group)";

/// What a rule group does with a failing document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Drop it, with the failing rule's reason.
    Drop,
    /// Keep it unchanged and record `quality/<reason>` in `scores.flags`.
    Annotate,
    /// Do not run the group.
    Off,
}

/// Configuration of the `quality` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Gopher quality rules.
    pub gopher: gopher::Config,
    /// Gopher repetition rules.
    pub repetition: repetition::Config,
    /// C4 rules.
    pub c4: c4::Config,
    /// FineWeb's extra rules.
    pub fineweb: fineweb::Config,
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "gopher",
        doc: "Gopher quality: mode (drop|annotate|off), min_words 50, max_words 100000, min/max_avg_word_length 3/10 (not for CJK), max_symbol_word_ratio 0.1, max_bullet_lines_ratio 0.9, max_ellipsis_lines_ratio 0.3, min_alpha_words_ratio 0.8, min_stop_words 2 (en, zh)",
    },
    crate::FieldDoc {
        name: "repetition",
        doc: "Gopher repetition: mode, dup_line_frac 0.3, dup_para_frac 0.3, dup_line_char_frac 0.2, dup_para_char_frac 0.2, top_n_grams [[2,0.2],[3,0.18],[4,0.16]], dup_n_grams [[5,0.15]..[10,0.10]] (n in words; CJK characters are words)",
    },
    crate::FieldDoc {
        name: "c4",
        doc: "C4: mode (default off), line rules (terminal punctuation, min_words_per_line 3, max_word_length 1000, javascript, policy, citations) and document rules (min_sentences 5, lorem ipsum, curly braces)",
    },
    crate::FieldDoc {
        name: "fineweb",
        doc: "FineWeb: mode, line_punct_thr 0.12, short_line_thr 0.67 (short: < 30 chars, < 10 for CJK lines), char_duplicates_ratio 0.01, new_line_ratio 0.3",
    },
];

/// The outcome of one rule group: `None` when the document passes, else the first
/// failing rule, with its measured value against its threshold.
pub type Check = Option<Failure>;

/// The built stage.
#[derive(Debug)]
pub struct Quality {
    config: Config,
}

/// Builds the stage.
pub fn build(config: &Config) -> Result<Quality, StageError> {
    let bad = |message: String| StageError::Config {
        kind: KIND,
        message,
    };
    config.gopher.validate().map_err(bad)?;
    config.repetition.validate().map_err(bad)?;
    config.fineweb.validate().map_err(bad)?;
    Ok(Quality {
        config: config.clone(),
    })
}

impl Stage for Quality {
    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        let c = &self.config;
        // Every group's check comes from one split of the text (a second one only when
        // C4 removed lines), and stops at the first group that drops.
        let mut checks: Vec<(Mode, Check)> = Vec::with_capacity(4);
        let mut filtered = None;
        {
            let t = text::Analysis::new(&doc.text);
            let lang = doc.meta.lang.as_deref();
            let dropped = |checks: &[(Mode, Check)]| {
                checks.iter().any(|(m, r)| *m == Mode::Drop && r.is_some())
            };
            if c.gopher.mode != Mode::Off {
                checks.push((c.gopher.mode, c.gopher.check(&t, lang)));
            }
            if c.repetition.mode != Mode::Off && !dropped(&checks) {
                checks.push((c.repetition.mode, c.repetition.check(&t)));
            }
            if c.c4.mode != Mode::Off && !dropped(&checks) {
                let (text, check) = c.c4.run(&doc.text);
                if check.is_none() && c.c4.mode == Mode::Drop && text.len() != doc.text.len() {
                    filtered = Some(text);
                }
                checks.push((c.c4.mode, check));
            }
            if c.fineweb.mode != Mode::Off && !dropped(&checks) {
                let check = match &filtered {
                    Some(text) => c.fineweb.check(&text::Analysis::new(text)),
                    None => c.fineweb.check(&t),
                };
                checks.push((c.fineweb.mode, check));
            }
        }
        if let Some(text) = filtered {
            cx.count("c4_lines_removed", 1);
            doc.text = text;
        }
        for (mode, check) in checks {
            if let Some(v) = apply(mode, check, doc, cx) {
                return Ok(v);
            }
        }
        Ok(Verdict::Keep)
    }
}

/// Turns a group's check into a verdict under its mode: `Some(drop)` ends processing.
fn apply(mode: Mode, check: Check, doc: &mut Document, cx: &mut StageCx) -> Option<Verdict> {
    let failure = check?;
    match mode {
        Mode::Drop => Some(failure.drop(doc)),
        Mode::Annotate => {
            cx.count("annotated", 1);
            doc.scores.flags.push(format!("{KIND}/{}", failure.reason));
            None
        }
        Mode::Off => None,
    }
}

/// The reason code each group's default rules give for a text: how the groups' unit
/// tests look at them.
#[cfg(test)]
pub(crate) mod defaults {
    use super::text::Analysis;

    /// Gopher quality, for a document in `lang`.
    pub(crate) fn gopher(text: &str, lang: Option<&str>) -> Option<&'static str> {
        let check = super::gopher::Config::default().check(&Analysis::new(text), lang);
        check.map(|f| f.reason.code())
    }

    /// Gopher repetition.
    pub(crate) fn repetition(text: &str) -> Option<&'static str> {
        let check = super::repetition::Config::default().check(&Analysis::new(text));
        check.map(|f| f.reason.code())
    }

    /// FineWeb's rules.
    pub(crate) fn fineweb(text: &str) -> Option<&'static str> {
        let check = super::fineweb::Config::default().check(&Analysis::new(text));
        check.map(|f| f.reason.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "The committee met on Tuesday to discuss the new budget for the city library. \
        Members agreed that the reading room needs better lighting and that the children's section \
        should stay open later in the evening. The treasurer explained how the money would be spent \
        over the next two years, and several residents asked questions about the plan.\n\
        After a long debate, the proposal was approved with a clear majority. The work will start in \
        the spring and should be finished before the end of the year.";

    fn run(config: &Config, text: &str) -> (Verdict, Document) {
        let stage = build(config).unwrap();
        let mut doc = Document::new("d", "s", text);
        let v = stage.process(&mut doc, &mut StageCx::default()).unwrap();
        (v, doc)
    }

    #[test]
    fn good_prose_passes_every_group() {
        let config = Config {
            c4: c4::Config {
                mode: Mode::Drop,
                ..Default::default()
            },
            ..Default::default()
        };
        let (v, doc) = run(&config, GOOD);
        assert_eq!(v, Verdict::Keep);
        assert_eq!(doc.text, GOOD);
    }

    #[test]
    fn annotate_mode_flags_and_keeps() {
        let mut annotate = Config::default();
        for mode in [
            &mut annotate.gopher.mode,
            &mut annotate.repetition.mode,
            &mut annotate.c4.mode,
            &mut annotate.fineweb.mode,
        ] {
            *mode = Mode::Annotate;
        }
        let (v, doc) = run(&annotate, "too short to be a document");
        assert_eq!(v, Verdict::Keep);
        assert_eq!(doc.text, "too short to be a document");
        assert_eq!(
            doc.scores.flags,
            [
                "quality/gopher_short_doc",
                "quality/c4_no_lines_left",
                "quality/fineweb_line_punct_ratio"
            ]
        );
        let (v, _) = run(&Config::default(), "too short to be a document");
        assert_eq!(v, Verdict::Drop(crate::Reason::new("gopher_short_doc")));
    }

    #[test]
    fn config_parses_nested_groups_and_rejects_typos() {
        let c: crate::StageConfig = toml::from_str(
            "kind = \"quality\"\n[gopher]\nmin_words = 20\n[c4]\nmode = \"annotate\"\n",
        )
        .unwrap();
        let crate::StageConfig::Quality(c) = c else {
            panic!("not quality")
        };
        assert_eq!(c.gopher.min_words, 20);
        assert_eq!(c.c4.mode, Mode::Annotate);
        let err =
            toml::from_str::<crate::StageConfig>("kind = \"quality\"\n[gopher]\nmin_word = 2\n")
                .unwrap_err();
        assert!(err.to_string().contains("min_word"), "{err}");
    }
}
