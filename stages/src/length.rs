//! `length`: drops documents whose text is empty, too short or too long.
//!
//! Lengths are counted in Unicode scalar values (characters), so the same limits mean
//! the same amount of text for Chinese and English alike... roughly: a Chinese character
//! carries more than a Latin letter, which is why language-aware rules live in `quality`.

use crate::document::Document;
use crate::stage::{Measure, Reason, Stage, StageCx, StageError, Verdict};
use serde::{Deserialize, Serialize};

/// The stage kind.
pub const KIND: &str = "length";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "drop documents whose text is empty, too short or too long (in characters)";

/// Text is empty or only whitespace.
pub const EMPTY: Reason = Reason::new("empty");
/// Fewer than `min_chars` characters.
pub const TOO_SHORT: Reason = Reason::new("too_short");
/// More than `max_chars` characters.
pub const TOO_LONG: Reason = Reason::new("too_long");

/// Configuration of the `length` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Minimum length in characters; shorter documents are dropped (`too_short`).
    pub min_chars: u64,
    /// Maximum length in characters; longer documents are dropped (`too_long`).
    /// 0 means no limit.
    pub max_chars: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_chars: 1,
            max_chars: 0,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "min_chars",
        doc: "minimum text length in characters; shorter documents are dropped (too_short)",
    },
    crate::FieldDoc {
        name: "max_chars",
        doc: "maximum text length in characters, 0 for no limit (too_long)",
    },
];

/// The built `length` stage.
#[derive(Debug)]
pub struct Length {
    config: Config,
}

/// Builds the stage.
pub fn build(config: &Config) -> Result<Length, StageError> {
    if config.max_chars != 0 && config.max_chars < config.min_chars {
        return Err(StageError::Config {
            kind: KIND,
            message: format!(
                "max_chars ({}) is below min_chars ({})",
                config.max_chars, config.min_chars
            ),
        });
    }
    Ok(Length {
        config: config.clone(),
    })
}

impl Stage for Length {
    fn process(&self, doc: &mut Document, _cx: &mut StageCx) -> Result<Verdict, StageError> {
        if doc.text.trim().is_empty() {
            return Ok(Verdict::Drop(EMPTY));
        }
        // Byte length bounds the character count from above and below (1..=4 bytes per
        // char), which settles most documents without counting.
        let bytes = doc.text.len() as u64;
        let max = self.config.max_chars;
        let min = self.config.min_chars;
        if bytes.div_ceil(4) >= min && (max == 0 || bytes <= max) {
            return Ok(Verdict::Keep);
        }
        // Counted only where the bytes leave it open, or for the drop's detail.
        let chars = doc.text.chars().count() as f64;
        let failure = match Measure::below("characters", chars, min as f64) {
            Some(m) => Some(m.fails(TOO_SHORT.code())),
            None if max != 0 => {
                Measure::above("characters", chars, max as f64).map(|m| m.fails(TOO_LONG.code()))
            }
            None => None,
        };
        Ok(failure.map_or(Verdict::Keep, |f| f.drop(doc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(stage: &Length, text: &str) -> Verdict {
        let mut doc = Document::new("d", "s", text);
        stage.process(&mut doc, &mut StageCx::default()).unwrap()
    }

    #[test]
    fn counts_characters_not_bytes() {
        let stage = build(&Config {
            min_chars: 3,
            max_chars: 4,
        })
        .unwrap();
        assert_eq!(verdict(&stage, "  \n"), Verdict::Drop(EMPTY));
        assert_eq!(verdict(&stage, "ab"), Verdict::Drop(TOO_SHORT));
        // Two Chinese characters are six bytes but two characters.
        assert_eq!(verdict(&stage, "中文"), Verdict::Drop(TOO_SHORT));
        assert_eq!(verdict(&stage, "中文字"), Verdict::Keep);
        assert_eq!(verdict(&stage, "中文字符"), Verdict::Keep);
        assert_eq!(verdict(&stage, "中文字符串"), Verdict::Drop(TOO_LONG));
        assert_eq!(verdict(&stage, "abcde"), Verdict::Drop(TOO_LONG));
    }

    #[test]
    fn rejects_inverted_bounds() {
        let err = build(&Config {
            min_chars: 10,
            max_chars: 5,
        })
        .unwrap_err();
        assert!(err.to_string().contains("max_chars"));
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_counting(text in "\\PC{0,12}", min in 0u64..8, max in 0u64..10) {
            proptest::prop_assume!(max == 0 || max >= min);
            let stage = Length { config: Config { min_chars: min, max_chars: max } };
            let chars = text.chars().count() as u64;
            let expected = if text.trim().is_empty() {
                Verdict::Drop(EMPTY)
            } else if chars < min {
                Verdict::Drop(TOO_SHORT)
            } else if max != 0 && chars > max {
                Verdict::Drop(TOO_LONG)
            } else {
                Verdict::Keep
            };
            proptest::prop_assert_eq!(verdict(&stage, &text), expected);
        }
    }
}
