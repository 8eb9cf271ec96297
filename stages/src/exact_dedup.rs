//! `exact_dedup`: drops documents whose key was seen before, keeping the first
//! occurrence in input order.
//!
//! The key is a 128-bit hash (XXH3-128) of the shared dedup key of the text
//! ([`crate::normalize::dedup_key`]: NFKC, case, punctuation, digits and whitespace
//! folded, so two copies of a page that differ only in those are duplicates), of the
//! exact text, or of the URL. Hashing runs on the worker
//! threads (the stage's `prepare` part, which also writes `meta.content_hash`); the
//! decision runs in input order on one thread, so the survivors are the same for any
//! thread count.
//!
//! Two memory modes:
//! - `exact`: every hash in a hash set, about 32 bytes per distinct document; no false
//!   positives.
//! - `bloom`: a Bloom filter (probabilistic-collections) sized for `expected_docs` at
//!   `false_positive_rate`, fixed memory; a false positive drops a unique document. The
//!   rate measured against the configured one is in benches/README.md.
//!
//! Scope: this stage compares documents across the shards of one process. In a
//! multi-task job the pipeline's plan (`corpus::plan`) cuts the config at it into passes
//! that dedup across every task (the key's hash through the MinHash machinery,
//! `minhash::Method::exact(key)`), with the same decisions (`mode = "bloom"` only applies
//! in one process; the passes are exact).

use crate::document::Document;
use crate::stage::{Ordered, OrderedStage, Reason, Stage, StageCx, StageError, Verdict};
use probabilistic_collections::bloom::BloomFilter;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};

/// The stage kind.
pub const KIND: &str = "exact_dedup";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "drop documents whose text (or URL) was seen earlier; the first occurrence wins, across every task of a job (a barrier)";

/// Builds the stage for the executor (the registry in [`crate::config`] calls this).
pub fn stage(config: &Config) -> Result<crate::stage::AnyStage, crate::stage::StageError> {
    Ok(crate::stage::AnyStage::Ordered(build(config)?))
}

/// The key was seen earlier in the input.
pub const DUPLICATE: Reason = Reason::new("duplicate");

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    /// The shared dedup key of the text (see [`crate::normalize::dedup_key`]).
    Text,
    /// The text, byte for byte.
    ExactText,
    /// `meta.url`; documents without a URL are kept (counted as `no_url`).
    Url,
}

/// How seen keys are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A hash set of 128-bit hashes: exact, memory grows with distinct documents.
    Exact,
    /// A Bloom filter: fixed memory, rare false positives.
    Bloom,
}

/// Configuration of the `exact_dedup` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// What is compared: `text`, `exact_text` or `url`.
    pub key: Key,
    /// `exact` (hash set) or `bloom` (fixed-size Bloom filter).
    pub mode: Mode,
    /// Bloom mode: distinct documents the filter is sized for.
    pub expected_docs: u64,
    /// Bloom mode: false-positive rate when `expected_docs` are in the filter.
    pub false_positive_rate: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            key: Key::Text,
            mode: Mode::Exact,
            expected_docs: 10_000_000,
            false_positive_rate: 1e-5,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "key",
        doc: "what is compared: text (case, punctuation, digits, whitespace folded), exact_text or url",
    },
    crate::FieldDoc {
        name: "mode",
        doc: "exact (hash set, ~32 bytes per distinct document) or bloom (fixed memory)",
    },
    crate::FieldDoc {
        name: "expected_docs",
        doc: "bloom: distinct documents the filter is sized for",
    },
    crate::FieldDoc {
        name: "false_positive_rate",
        doc: "bloom: false-positive rate at expected_docs (memory: about 1.44*log2(1/rate) bits per document)",
    },
];

/// Builds the stage: a parallel hashing part and the ordered decision.
pub fn build(config: &Config) -> Result<Ordered, StageError> {
    let invalid = |message: String| StageError::Config {
        kind: KIND,
        message,
    };
    if config.mode == Mode::Bloom {
        if !(config.false_positive_rate > 0.0 && config.false_positive_rate < 1.0) {
            return Err(invalid(format!(
                "false_positive_rate must be in (0, 1), not {}",
                config.false_positive_rate
            )));
        }
        if config.expected_docs == 0 {
            return Err(invalid("expected_docs must be at least 1".into()));
        }
    }
    let seen = match config.mode {
        Mode::Exact => Seen::Exact(HashSet::with_hasher(HalfHasher(false))),
        Mode::Bloom => Seen::Bloom(Box::new(BloomFilter::with_hashers(
            usize::try_from(config.expected_docs).unwrap_or(usize::MAX),
            config.false_positive_rate,
            [HalfHasher(false), HalfHasher(true)],
        ))),
    };
    Ok(Ordered {
        prepare: Some(Box::new(Hash { key: config.key })),
        stage: std::sync::Mutex::new(Box::new(Decide {
            key: config.key,
            seen,
            added: Vec::new(),
        })),
    })
}

/// The 128-bit hash of a document's key, or `None` when it has none (no URL).
pub(crate) fn key_hash(key: Key, doc: &mut Document) -> Option<u128> {
    Some(match key {
        Key::Text => xxhash_rust::xxh3::xxh3_128(doc.dedup_key().as_bytes()),
        Key::ExactText => xxhash_rust::xxh3::xxh3_128(doc.text.as_bytes()),
        Key::Url => xxhash_rust::xxh3::xxh3_128(doc.meta.url.as_deref()?.as_bytes()),
    })
}

/// Records the hash of a text key (`text`, `exact_text`; not `url`) in
/// `meta.content_hash`, as the stage does for every document it sees. Also used by the
/// `exact_dedup` passes' filter, so that they write what the stage writes.
pub fn stamp_content_hash(key: Key, doc: &mut Document) {
    if key != Key::Url
        && let Some(h) = key_hash(key, doc)
    {
        doc.meta.content_hash = Some(format!("{h:032x}"));
    }
}

/// The parallel part: hashes the key and records it in `meta.content_hash`.
struct Hash {
    key: Key,
}

impl Stage for Hash {
    fn process(&self, doc: &mut Document, _cx: &mut StageCx) -> Result<Verdict, StageError> {
        stamp_content_hash(self.key, doc);
        Ok(Verdict::Keep)
    }
}

enum Seen {
    Exact(HashSet<u128, HalfHasher>),
    Bloom(Box<BloomFilter<u128, HalfHasher>>),
}

/// The ordered part: first occurrence wins.
struct Decide {
    key: Key,
    seen: Seen,
    /// Hashes inserted since the last checkpoint.
    added: Vec<u128>,
}

impl Decide {
    /// Inserts `h`; false when it was (or, for Bloom, may have been) there already.
    fn insert(&mut self, h: u128) -> bool {
        let new = match &mut self.seen {
            Seen::Exact(set) => set.insert(h),
            Seen::Bloom(filter) => {
                if filter.contains(&h) {
                    false
                } else {
                    filter.insert(&h);
                    true
                }
            }
        };
        if new {
            self.added.push(h);
        }
        new
    }
}

impl OrderedStage for Decide {
    fn process(&mut self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        let parsed = match self.key {
            Key::Url => None,
            _ => doc
                .meta
                .content_hash
                .as_deref()
                .and_then(|h| u128::from_str_radix(h, 16).ok()),
        };
        let hash = match parsed {
            Some(h) => Some(h),
            None => key_hash(self.key, doc),
        };
        let Some(hash) = hash else {
            cx.count("no_url", 1);
            return Ok(Verdict::Keep);
        };
        Ok(if self.insert(hash) {
            Verdict::Keep
        } else {
            Verdict::Drop(DUPLICATE)
        })
    }

    fn checkpoint(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.added.len() * 16);
        for h in self.added.drain(..) {
            out.extend_from_slice(&h.to_le_bytes());
        }
        out
    }

    fn restore(&mut self, checkpoint: &[u8]) -> Result<(), StageError> {
        if !checkpoint.len().is_multiple_of(16) {
            return Err(StageError::Fatal(format!(
                "exact_dedup checkpoint of {} bytes is not a list of 16-byte hashes",
                checkpoint.len()
            )));
        }
        for chunk in checkpoint.chunks_exact(16) {
            let mut b = [0u8; 16];
            b.copy_from_slice(chunk);
            self.insert(u128::from_le_bytes(b));
        }
        // Restored hashes are already persisted.
        self.added.clear();
        Ok(())
    }
}

/// Hashes a `u128` that is already a good hash by taking one of its halves: no need to
/// hash again. The two halves serve as the Bloom filter's two base hashes.
#[derive(Debug, Clone, Copy, Default)]
struct HalfHasher(bool);

impl BuildHasher for HalfHasher {
    type Hasher = Half;
    fn build_hasher(&self) -> Half {
        Half {
            high: self.0,
            value: 0,
        }
    }
}

/// See [`HalfHasher`].
struct Half {
    high: bool,
    value: u64,
}

impl Hasher for Half {
    fn finish(&self) -> u64 {
        self.value
    }

    fn write(&mut self, bytes: &[u8]) {
        // u128 keys arrive as 16 little-endian bytes; anything else is folded in.
        if bytes.len() == 16 {
            let half = if self.high { &bytes[8..] } else { &bytes[..8] };
            let mut b = [0u8; 8];
            b.copy_from_slice(half);
            self.value = u64::from_le_bytes(b);
        } else {
            for &byte in bytes {
                self.value = (self.value ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.value = if self.high {
            (v >> 64) as u64
        } else {
            v as u64
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::AnyStage;

    fn run(stage: &AnyStage, texts: &[&str]) -> Vec<bool> {
        let mut docs: Vec<Document> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| Document::new(i.to_string(), "s", *t))
            .collect();
        let mut verdicts = vec![Verdict::Keep; docs.len()];
        let mut cx = StageCx::default();
        stage.run(&mut docs, &mut verdicts, &mut cx).unwrap();
        stage
            .run_ordered(&mut docs, &mut verdicts, &mut cx)
            .unwrap();
        verdicts.iter().map(|v| *v == Verdict::Keep).collect()
    }

    #[test]
    fn first_occurrence_wins_and_key_folds_case_punctuation_digits() {
        let stage = AnyStage::Ordered(build(&Config::default()).unwrap());
        let kept = run(
            &stage,
            &[
                "Hello, World! 2024",
                "hello world 1999",
                "Hello World.",
                "你好，世界",
                "你好 世界",
                "Different text",
            ],
        );
        // Chinese punctuation folds like ASCII punctuation.
        assert_eq!(kept, [true, false, true, true, false, true]);
        let exact = AnyStage::Ordered(
            build(&Config {
                key: Key::ExactText,
                ..Default::default()
            })
            .unwrap(),
        );
        assert_eq!(run(&exact, &["a b", "a  b", "a b"]), [true, true, false]);
    }

    #[test]
    fn checkpoints_restore_the_state() {
        let first = AnyStage::Ordered(build(&Config::default()).unwrap());
        run(&first, &["one", "two", "one"]);
        let saved = first.checkpoint().unwrap();
        assert_eq!(saved.len(), 32, "two distinct hashes");
        let resumed = AnyStage::Ordered(build(&Config::default()).unwrap());
        resumed.restore(&saved).unwrap();
        assert_eq!(run(&resumed, &["two", "three"]), [false, true]);
        assert!(resumed.restore(&[0; 5]).is_err());
    }

    #[test]
    fn bloom_mode_agrees_on_real_duplicates_and_is_deterministic() {
        let config = Config {
            mode: Mode::Bloom,
            expected_docs: 1000,
            false_positive_rate: 1e-4,
            key: Key::ExactText,
        };
        let texts: Vec<String> = (0..500)
            .map(|i| format!("document number {}", i % 350))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let a = run(&AnyStage::Ordered(build(&config).unwrap()), &refs);
        let b = run(&AnyStage::Ordered(build(&config).unwrap()), &refs);
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|k| **k).count(), 350);
        let exact = run(
            &AnyStage::Ordered(
                build(&Config {
                    mode: Mode::Exact,
                    ..config.clone()
                })
                .unwrap(),
            ),
            &refs,
        );
        assert_eq!(a, exact);
        assert!(
            build(&Config {
                false_positive_rate: 0.0,
                ..config
            })
            .is_err()
        );
    }

    #[test]
    fn url_key_keeps_documents_without_url() {
        let stage = AnyStage::Ordered(
            build(&Config {
                key: Key::Url,
                ..Default::default()
            })
            .unwrap(),
        );
        let mut docs: Vec<Document> = (0..3)
            .map(|i| Document::new(i.to_string(), "s", "t"))
            .collect();
        docs[0].meta.url = Some("http://a/".into());
        docs[1].meta.url = Some("http://a/".into());
        let mut verdicts = vec![Verdict::Keep; 3];
        let mut cx = StageCx::default();
        stage.run(&mut docs, &mut verdicts, &mut cx).unwrap();
        stage
            .run_ordered(&mut docs, &mut verdicts, &mut cx)
            .unwrap();
        assert_eq!(
            verdicts,
            [Verdict::Keep, Verdict::Drop(DUPLICATE), Verdict::Keep]
        );
        assert_eq!(cx.take_counters()["no_url"], 1);
    }
}
