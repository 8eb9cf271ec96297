//! `upsample`: repeats or thins documents by per-source weights, as Qwen mixes its
//! sources (e.g. wiki 2.0, books 1.5, web 1.0, 0.5 to halve a source).
//!
//! A weight `w` gives every document `floor(w)` copies, plus one more with probability
//! `w - floor(w)`, decided by a hash of the document id and the seed: reruns and any
//! thread count make the same choice, and the expected number of copies is `w`. Zero
//! copies drops the document (`downsampled`); extra copies are written right after it
//! with ids `<id>#1`, `<id>#2`... Documents and bytes per source, before and after, are
//! counted in the statistics (`docs_in:<source>`, `docs_out:<source>`, `bytes_in:...`,
//! `bytes_out:...`; sources without a weight are counted as `other`). With a `vocab`,
//! tokens too (`tokens_in:<source>`, `tokens_out:<source>`): each document is encoded
//! once with that tokenizer, so the mix before and after upsampling is known in the
//! unit training consumes (the ids stay on the document: a `tokenize` stage with the
//! same vocabulary and pattern packs them without encoding the text again); the counters merge over shards and tasks like every other
//! statistic, and the run summary prints the mix from them.

use crate::document::Document;
use crate::stage::{Reason, Stage, StageCx, StageError, Verdict};
use corpus_models::tokenizer::{Pattern, Tokenizer, TokenizerPool, VocabSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The stage kind.
pub const KIND: &str = "upsample";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str =
    "repeat or thin documents by per-source weights, deterministically by document id";

/// The weight drew zero copies.
pub const DOWNSAMPLED: Reason = Reason::new("downsampled");

/// Configuration of the `upsample` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Weight per source name (expected copies per document). Default: none.
    pub weights: BTreeMap<String, f64>,
    /// Weight of sources not listed. Default 1.0.
    pub default_weight: f64,
    /// Seed of the fractional draws. Default 0.
    pub seed: u64,
    /// Count tokens per source with this vocabulary (`cl100k` or a tiktoken file, as
    /// in `[tokenize]`). Default: none (documents and bytes only).
    pub vocab: Option<String>,
    /// The tokenizer's pre-tokenization pattern: `qwen`, `cl100k` or a regex.
    /// Default `qwen`.
    pub pattern: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            weights: BTreeMap::new(),
            default_weight: 1.0,
            seed: 0,
            vocab: None,
            pattern: "qwen".into(),
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "weights",
        doc: "expected copies per document, by source name (e.g. { wiki = 2.0, web = 0.5 })",
    },
    crate::FieldDoc {
        name: "default_weight",
        doc: "weight of sources not listed",
    },
    crate::FieldDoc {
        name: "seed",
        doc: "seed of the fractional draws (hashed with the document id)",
    },
    crate::FieldDoc {
        name: "vocab",
        doc: "count tokens per source before and after with this vocabulary (cl100k or a tiktoken file)",
    },
    crate::FieldDoc {
        name: "pattern",
        doc: "pre-tokenization pattern of the vocab: qwen | cl100k | a regex",
    },
];

/// Counter names of one source.
struct Counters {
    docs_in: &'static str,
    docs_out: &'static str,
    bytes_in: &'static str,
    bytes_out: &'static str,
    tokens_in: &'static str,
    tokens_out: &'static str,
}

impl Counters {
    fn new(source: &str) -> Counters {
        // Counter names must be 'static; the set of sources is fixed by the config and
        // the stage is built once per run.
        let leak =
            |kind: &str| -> &'static str { Box::leak(format!("{kind}:{source}").into_boxed_str()) };
        Counters {
            docs_in: leak("docs_in"),
            docs_out: leak("docs_out"),
            bytes_in: leak("bytes_in"),
            bytes_out: leak("bytes_out"),
            tokens_in: leak("tokens_in"),
            tokens_out: leak("tokens_out"),
        }
    }
}

/// The built stage.
pub struct Upsample {
    weights: BTreeMap<String, (f64, Counters)>,
    default: (f64, Counters),
    seed: u64,
    /// Tokenizers for counting, one taken per call (a clone per thread, as the
    /// tokenizer asks).
    tokenizers: Option<TokenizerPool>,
}

/// Builds the stage.
pub fn build(config: &Config) -> Result<Upsample, StageError> {
    let bad = |message: String| StageError::Config {
        kind: KIND,
        message,
    };
    for (source, w) in config.weights.iter().chain(std::iter::once((
        &"default_weight".to_string(),
        &config.default_weight,
    ))) {
        if !(w.is_finite() && *w >= 0.0 && *w <= 1000.0) {
            return Err(bad(format!(
                "weight of `{source}` must be within 0..=1000, not {w}"
            )));
        }
    }
    Ok(Upsample {
        weights: config
            .weights
            .iter()
            .map(|(s, w)| (s.clone(), (*w, Counters::new(s))))
            .collect(),
        default: (config.default_weight, Counters::new("other")),
        seed: config.seed,
        tokenizers: match &config.vocab {
            Some(vocab) => {
                let first = Tokenizer::load(
                    &VocabSource::parse(vocab),
                    &Pattern::parse(&config.pattern),
                    0,
                )
                .map_err(|e| bad(format!("vocab {vocab}: {e}")))?;
                Some(TokenizerPool::new(first))
            }
            None => None,
        },
    })
}

impl Upsample {
    /// Copies of a document with this id under weight `w` (0 drops it).
    pub fn copies(&self, id: &str, w: f64) -> u32 {
        let whole = w.floor();
        let frac = w - whole;
        let draw = xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), self.seed);
        // The top 53 bits as a uniform number in [0, 1).
        let u = (draw >> 11) as f64 / (1u64 << 53) as f64;
        whole as u32 + u32::from(u < frac)
    }
}

impl Stage for Upsample {
    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        let (w, counters) = self.weights.get(&doc.source).unwrap_or(&self.default);
        let bytes = doc.text.len() as u64;
        cx.count(counters.docs_in, 1);
        cx.count(counters.bytes_in, bytes);
        let copies = self.copies(&doc.id, *w);
        let tokens = match &self.tokenizers {
            Some(pool) => {
                // Cached on the document: `tokenize` packs these ids rather than
                // encoding the text again.
                let n = pool.with(|tok| doc.token_ids(tok).map(|ids| ids.len() as u64));
                let n = n.map_err(|e| StageError::Document {
                    id: doc.id.clone(),
                    message: format!("counting tokens: {e}"),
                })?;
                cx.count(counters.tokens_in, n);
                n
            }
            None => 0,
        };
        if copies == 0 {
            return Ok(Verdict::Drop(DOWNSAMPLED));
        }
        cx.count(counters.docs_out, u64::from(copies));
        cx.count(counters.bytes_out, bytes * u64::from(copies));
        if self.tokenizers.is_some() {
            cx.count(counters.tokens_out, tokens * u64::from(copies));
        }
        doc.repeat = copies - 1;
        Ok(Verdict::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(weights: &[(&str, f64)]) -> Upsample {
        build(&Config {
            weights: weights.iter().map(|(s, w)| (s.to_string(), *w)).collect(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn fractional_weights_give_the_expected_copies_deterministically() {
        let s = stage(&[("wiki", 2.5), ("web", 0.3)]);
        let n = 20_000;
        let total = |w: f64| {
            (0..n)
                .map(|i| s.copies(&format!("doc-{i}"), w))
                .sum::<u32>()
        };
        let wiki = total(2.5) as f64 / n as f64;
        let web = total(0.3) as f64 / n as f64;
        assert!((wiki - 2.5).abs() < 0.02, "{wiki}");
        assert!((web - 0.3).abs() < 0.02, "{web}");
        assert_eq!(total(1.0), n);
        // Same id, same draw.
        assert_eq!(s.copies("x", 0.5), s.copies("x", 0.5));
        let reseeded = build(&Config {
            seed: 1,
            ..Default::default()
        })
        .unwrap();
        let differ = (0..100)
            .filter(|i| s.copies(&i.to_string(), 0.5) != reseeded.copies(&i.to_string(), 0.5))
            .count();
        assert!(differ > 20, "{differ}");
    }

    #[test]
    fn process_sets_repeats_drops_and_counts_per_source() {
        let s = stage(&[("wiki", 3.0), ("spam", 0.0)]);
        let mut cx = StageCx::default();
        let mut wiki = Document::new("a", "wiki", "abc");
        assert_eq!(s.process(&mut wiki, &mut cx).unwrap(), Verdict::Keep);
        assert_eq!(wiki.repeat, 2);
        let mut spam = Document::new("b", "spam", "x");
        assert_eq!(
            s.process(&mut spam, &mut cx).unwrap(),
            Verdict::Drop(DOWNSAMPLED)
        );
        let mut web = Document::new("c", "web", "hello");
        assert_eq!(s.process(&mut web, &mut cx).unwrap(), Verdict::Keep);
        assert_eq!(web.repeat, 0);
        let c = cx.take_counters();
        assert_eq!(c["docs_out:wiki"], 3);
        assert_eq!(c["bytes_out:wiki"], 9);
        assert_eq!(c["docs_in:spam"], 1);
        assert!(!c.contains_key("docs_out:spam"));
        assert_eq!(c["docs_out:other"], 1);
        assert!(
            build(&Config {
                default_weight: -1.0,
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn tokens_per_source_are_counted_before_and_after() {
        let s = build(&Config {
            weights: [("wiki".to_string(), 2.0), ("spam".to_string(), 0.0)].into(),
            vocab: Some("cl100k".into()),
            pattern: "cl100k".into(),
            ..Default::default()
        })
        .unwrap();
        let mut cx = StageCx::default();
        let mut wiki = Document::new("a", "wiki", "hello world");
        s.process(&mut wiki, &mut cx).unwrap();
        let mut spam = Document::new("b", "spam", "buy buy buy");
        s.process(&mut spam, &mut cx).unwrap();
        let c = cx.take_counters();
        // cl100k: "hello", " world"; "buy", " buy", " buy".
        assert_eq!((c["tokens_in:wiki"], c["tokens_out:wiki"]), (2, 4));
        assert_eq!(c["tokens_in:spam"], 3);
        assert!(!c.contains_key("tokens_out:spam"));
        let e = build(&Config {
            vocab: Some("/nonexistent/v.tiktoken".into()),
            ..Default::default()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("/nonexistent/v.tiktoken"), "{e}");
    }
}
