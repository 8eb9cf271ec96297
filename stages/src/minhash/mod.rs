//! MinHash/LSH fuzzy dedup: shingling, signatures, banding, clustering and the
//! `minhash_dedup` stage that applies the decisions.
//!
//! The pieces, in the order the passes use them:
//! - [`Signer`]: the shared dedup key ([`crate::normalize::dedup_key`]) split into tokens
//!   ([`crate::normalize::key_tokens`]: words, and every CJK character on its own, so
//!   Chinese text gets character n-grams), shingled into token n-grams (default 5),
//!   and hashed into a MinHash signature of `bands x rows` values with gaoya's
//!   [`MinHasher32`]. Documents with fewer tokens than one shingle get no signature
//!   and pass through (counted as `too_short`).
//! - Band hashes: each band of `rows` values hashed to 64 bits; two documents are a
//!   candidate pair when they agree on any band. The chance of that for true Jaccard
//!   similarity `J` is `1 - (1 - J^rows)^bands` ([`candidate_probability`]).
//! - [`cluster`]: candidates grouped by band bucket, optionally verified against the
//!   estimated Jaccard similarity, joined with union-find; one survivor per cluster.
//! - [`files`]: the versioned on-disk formats of the multi-pass mode.
//! - [`filter`]: the stage that drops (or annotates) non-survivors by their input
//!   position.
//!
//! Documents are named by their position in the input ([`DocKey`]: input file number and
//! record number within the file), so every pass agrees on who is who without relying on
//! ids being unique.

pub mod cluster;
pub mod files;
pub mod filter;

use crate::ngram::{ngram_hashes, word_hash};
use crate::normalize::{dedup_key, key_tokens};
use gaoya::minhash::{MinHasher, MinHasher32};
use serde::{Deserialize, Serialize};

/// The stage kind. A barrier: the pipeline's plan (`corpus::plan`) cuts a config at it
/// into passes (signatures, buckets, cluster), and this stage applies their decisions in
/// the pass after.
pub const KIND: &str = "minhash_dedup";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "MinHash/LSH near-duplicate dedup across the whole job (a barrier: signatures, buckets and clusters run as passes before it; here it drops or annotates the non-survivors)";

/// Builds the stage for the executor (the registry in [`crate::config`] calls this).
pub fn stage(config: &Config) -> Result<crate::stage::AnyStage, crate::stage::StageError> {
    Ok(crate::stage::AnyStage::Doc(Box::new(filter::build(
        config,
    )?)))
}

/// Which member of a cluster survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// The first in input order.
    First,
    /// The longest text (in characters); ties go to the first in input order.
    Longest,
    /// The highest `scores.quality`; documents without one rank lowest; ties go to the
    /// first in input order.
    BestQualityScore,
}

/// What happens to the non-survivors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Drop them (reason `near_duplicate`).
    Drop,
    /// Keep every document and write `meta.extra.minhash` (`cluster`: the survivor's
    /// position as `file:record`, `size`: documents in the cluster, `survivor`: bool).
    Annotate,
}

/// How candidate pairs are checked before they are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// Every candidate pair is joined (FineWeb's way).
    Off,
    /// Joined when the signatures' estimated Jaccard similarity reaches `threshold`.
    Estimate,
    /// Joined when the exact Jaccard similarity of the two shingle sets reaches
    /// `threshold`; the documents in some bucket are read again to shingle them.
    Exact,
}

/// What the signature of a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// MinHash of the shingles: near-duplicates.
    Minhash,
    /// XXH3-128 of the whole dedup key as 4 values in one band: exact duplicates (as the
    /// `exact_dedup` stage with `key = "text"`), through the same passes, so exact dedup
    /// also scales over tasks and machines.
    Exact,
    /// XXH3-128 of the text byte for byte (`exact_dedup` with `key = "exact_text"`).
    ExactText,
    /// XXH3-128 of `meta.url` (`exact_dedup` with `key = "url"`); documents without a
    /// URL get no signature and pass.
    Url,
}

impl Method {
    /// The `exact_dedup` key of an exact method; `None` for MinHash.
    pub fn exact_key(self) -> Option<crate::exact_dedup::Key> {
        use crate::exact_dedup::Key;
        match self {
            Method::Minhash => None,
            Method::Exact => Some(Key::Text),
            Method::ExactText => Some(Key::ExactText),
            Method::Url => Some(Key::Url),
        }
    }

    /// The exact method comparing `key`.
    pub fn exact(key: crate::exact_dedup::Key) -> Method {
        use crate::exact_dedup::Key;
        match key {
            Key::Text => Method::Exact,
            Key::ExactText => Method::ExactText,
            Key::Url => Method::Url,
        }
    }
}

/// Settings of MinHash dedup, shared by `corpus dedup --fuzzy` and every pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `minhash` (near-duplicates) or `exact` (see [`Method`]).
    pub method: Method,
    /// Tokens per shingle (words; CJK characters count one each).
    pub ngram: usize,
    /// LSH bands.
    pub bands: usize,
    /// Rows (hash values) per band; the signature has `bands * rows` values.
    pub rows: usize,
    /// Seed of the hash permutations. Documents hashed with different seeds cannot be
    /// compared.
    pub seed: u64,
    /// Check each candidate pair against `threshold` before joining it: `off`,
    /// `estimate` (from the signatures) or `exact` (from the shingle sets).
    pub verify: Verify,
    /// Jaccard threshold used by `verify`.
    pub threshold: f64,
    /// Which member of a cluster survives.
    pub keep: Keep,
    /// Drop the non-survivors or only annotate.
    pub action: Action,
    /// Work directory of the multi-pass mode; the `minhash_dedup` stage reads the
    /// cluster pass's decisions from `<work_dir>/clusters/`. Empty in a `corpus run`
    /// config: the run dedups in memory at the stage's place.
    pub work_dir: std::path::PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            method: Method::Minhash,
            ngram: 5,
            bands: 14,
            rows: 8,
            seed: 1,
            verify: Verify::Exact,
            threshold: 0.8,
            keep: Keep::First,
            action: Action::Drop,
            work_dir: std::path::PathBuf::new(),
        }
    }
}

impl Config {
    /// Exact dedup through the MinHash passes: one band of the key's 128-bit hash, no
    /// verification, the first occurrence survives.
    pub fn exact() -> Config {
        Config {
            method: Method::Exact,
            bands: 1,
            rows: 4,
            verify: Verify::Off,
            keep: Keep::First,
            ..Config::default()
        }
    }

    /// Signature length.
    pub fn num_hashes(&self) -> usize {
        self.bands * self.rows
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.ngram == 0 {
            return Err("ngram must be at least 1".into());
        }
        if self.method.exact_key().is_some() && (self.bands != 1 || self.rows != 4) {
            return Err(
                "an exact method uses one band of 4 rows of its 128-bit hash (bands = 1, rows = 4)"
                    .into(),
            );
        }
        if self.bands == 0 || self.rows == 0 {
            return Err("bands and rows must be at least 1".into());
        }
        if self.num_hashes() > 4096 {
            return Err(format!(
                "bands x rows = {} hashes; at most 4096 are supported",
                self.num_hashes()
            ));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is not in 0..=1", self.threshold));
        }
        Ok(())
    }

    /// A fingerprint of the settings that decide signatures (n-gram, bands, rows,
    /// seed): intermediate files made with other settings are refused.
    pub fn signature_fingerprint(&self) -> u64 {
        let text = match self.method {
            Method::Minhash => format!(
                "minhash-v1 ngram={} bands={} rows={} seed={}",
                self.ngram, self.bands, self.rows, self.seed
            ),
            Method::Exact => "exact-v1 key=text xxh3-128".to_string(),
            Method::ExactText => "exact-v1 key=exact_text xxh3-128".to_string(),
            Method::Url => "exact-v1 key=url xxh3-128".to_string(),
        };
        crate::fingerprint(&text)
    }

    /// The threshold curve as text: candidate probability at a range of similarities,
    /// and the similarity where it crosses one half.
    pub fn explain(&self) -> String {
        let mut out = format!(
            "MinHash: {}-token shingles, {} hashes = {} bands x {} rows, seed {}\n",
            self.ngram,
            self.num_hashes(),
            self.bands,
            self.rows,
            self.seed
        );
        out.push_str(&format!(
            "LSH threshold (candidate probability 0.5) at Jaccard {:.3}; (1/b)^(1/r) = {:.3}\n",
            half_point(self.bands, self.rows),
            (1.0 / self.bands as f64).powf(1.0 / self.rows as f64)
        ));
        match self.verify {
            Verify::Off => {
                out.push_str("candidates not verified (every candidate pair is joined)\n")
            }
            Verify::Estimate => out.push_str(&format!(
                "candidates verified: estimated Jaccard >= {} (signature of {} values: \
                 standard error {:.3} at J = {})\n",
                self.threshold,
                self.num_hashes(),
                (self.threshold * (1.0 - self.threshold) / self.num_hashes() as f64).sqrt(),
                self.threshold
            )),
            Verify::Exact => out.push_str(&format!(
                "candidates verified: exact Jaccard of the shingle sets >= {}\n",
                self.threshold
            )),
        }
        out.push_str("Jaccard  P(candidate)\n");
        for j in [
            0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0,
        ] {
            out.push_str(&format!(
                "{j:>7.2}  {:>11.4}\n",
                candidate_probability(j, self.bands, self.rows)
            ));
        }
        out
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "method",
        doc: "minhash (near-duplicates), or an exact key's 128-bit hash (bands = 1, rows = 4): exact (the dedup key), exact_text or url",
    },
    crate::FieldDoc {
        name: "ngram",
        doc: "tokens per shingle (words; each CJK character is a token)",
    },
    crate::FieldDoc {
        name: "bands",
        doc: "LSH bands (signature length = bands x rows)",
    },
    crate::FieldDoc {
        name: "rows",
        doc: "hash values per band",
    },
    crate::FieldDoc {
        name: "seed",
        doc: "seed of the hash permutations (all passes must agree)",
    },
    crate::FieldDoc {
        name: "verify",
        doc: "check candidate pairs before joining them: off, estimate (signatures) or exact (shingle sets, reads candidates again)",
    },
    crate::FieldDoc {
        name: "threshold",
        doc: "Jaccard threshold of verify",
    },
    crate::FieldDoc {
        name: "keep",
        doc: "survivor of a cluster: first (input order), longest, best-quality-score",
    },
    crate::FieldDoc {
        name: "action",
        doc: "drop the non-survivors, or annotate (meta.extra.minhash: cluster, size, survivor)",
    },
    crate::FieldDoc {
        name: "work_dir",
        doc: "where the passes keep their files (signatures, buckets, decisions); empty (default): OUT/minhash, and a run in one process dedups in memory",
    },
];

/// Chance that two documents of Jaccard similarity `j` agree on at least one of
/// `bands` bands of `rows` rows.
pub fn candidate_probability(j: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - j.powi(rows as i32)).powi(bands as i32)
}

/// The similarity where [`candidate_probability`] is one half (bisection).
pub fn half_point(bands: usize, rows: usize) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if candidate_probability(mid, bands, rows) < 0.5 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

pub use crate::document::Origin as DocKey;

/// What one document contributes to clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct SigRecord {
    /// The MinHash values; empty when the document was too short to shingle.
    pub hashes: Vec<u32>,
    /// Text length in characters (for `keep = "longest"`).
    pub chars: u32,
    /// `scores.quality`, NaN when absent (for `keep = "best-quality-score"`).
    pub quality: f32,
}

impl SigRecord {
    /// True when the document has a signature.
    pub fn has_signature(&self) -> bool {
        !self.hashes.is_empty()
    }
}

/// Computes signatures. Cheap to share between threads.
pub struct Signer {
    config: Config,
    hasher: MinHasher32<crate::ngram::BuildMix>,
}

impl Signer {
    /// A signer for `config` (which must be valid).
    pub fn new(config: &Config) -> Signer {
        Signer {
            config: config.clone(),
            hasher: MinHasher32::new_with_hasher_and_seed(
                config.num_hashes(),
                crate::ngram::BuildMix,
                config.seed,
            ),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shingle hashes of a text: hashes of every `ngram`-token window of its dedup
    /// key (repeats included; MinHash treats them as a set). Empty when the text has
    /// fewer tokens than one shingle.
    pub fn shingles(&self, text: &str, key_buf: &mut String, ids: &mut Vec<u64>) -> Vec<u64> {
        key_buf.clear();
        dedup_key(text, key_buf);
        self.key_shingles(key_buf, ids)
    }

    /// The shingle hashes of a dedup key.
    fn key_shingles(&self, key: &str, ids: &mut Vec<u64>) -> Vec<u64> {
        ids.clear();
        ids.extend(key_tokens(key).map(word_hash));
        ngram_hashes(ids, self.config.ngram).collect()
    }

    /// The shingle set of a text: sorted, without repeats.
    pub fn shingle_set(&self, text: &str) -> Vec<u64> {
        let (mut key, mut ids) = (String::new(), Vec::new());
        let mut set = self.shingles(text, &mut key, &mut ids);
        set.sort_unstable();
        set.dedup();
        set
    }

    /// The signature of a document that is not to keep its dedup key (see
    /// [`Signer::sign_document`] to keep it on the document).
    pub fn sign(&self, doc: &crate::Document) -> SigRecord {
        match self.config.method {
            Method::Minhash => {
                let mut key = String::new();
                dedup_key(&doc.text, &mut key);
                self.record(doc, self.key_signature(&key, &mut Vec::new()))
            }
            // Exact keys are one hash of the text or URL: a copy costs little.
            _ => self.sign_document(&mut doc.clone(), &mut Vec::new()),
        }
    }

    /// The signature of a document, with a caller-owned scratch buffer; the dedup key
    /// comes from (and stays on) the document ([`crate::Document::dedup_key`]), shared
    /// with `exact_dedup` and `decontam`.
    pub fn sign_document(&self, doc: &mut crate::Document, ids: &mut Vec<u64>) -> SigRecord {
        let hashes = match self.config.method {
            Method::Exact | Method::ExactText | Method::Url => {
                let key = self.config.method.exact_key().expect("an exact method");
                match crate::exact_dedup::key_hash(key, doc) {
                    Some(h) => (0..4).map(|i| (h >> (32 * i)) as u32).collect(),
                    None => Vec::new(),
                }
            }
            Method::Minhash => self.key_signature(doc.dedup_key(), ids),
        };
        self.record(doc, hashes)
    }

    /// The MinHash signature of a dedup key (empty when it has no shingle).
    fn key_signature(&self, key: &str, ids: &mut Vec<u64>) -> Vec<u32> {
        let shingles = self.key_shingles(key, ids);
        if shingles.is_empty() {
            Vec::new()
        } else {
            self.hasher.create_signature(shingles.into_iter())
        }
    }

    /// A document's record with its signature.
    fn record(&self, doc: &crate::Document, hashes: Vec<u32>) -> SigRecord {
        SigRecord {
            hashes,
            chars: u32::try_from(doc.text.chars().count()).unwrap_or(u32::MAX),
            quality: doc.scores.quality.unwrap_or(f32::NAN),
        }
    }
}

/// The 64-bit hash of each band of `rows` values.
pub fn band_hashes(hashes: &[u32], bands: usize, rows: usize) -> Vec<u64> {
    (0..bands).map(|b| band_hash(hashes, b, rows)).collect()
}

/// The 64-bit hash of band `band` (values `band * rows .. (band + 1) * rows`), seeded
/// by the band number so equal values in different bands do not collide.
pub fn band_hash(hashes: &[u32], band: usize, rows: usize) -> u64 {
    let values = &hashes[band * rows..(band + 1) * rows];
    let mut bytes = [0u8; 256];
    if rows <= 64 {
        for (i, h) in values.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&h.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64_with_seed(&bytes[..rows * 4], band as u64)
    } else {
        let buf: Vec<u8> = values.iter().flat_map(|h| h.to_le_bytes()).collect();
        xxhash_rust::xxh3::xxh3_64_with_seed(&buf, band as u64)
    }
}

/// The Jaccard similarity of two sorted, de-duplicated sets.
pub fn exact_jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// The fraction of equal values in two signatures: the MinHash estimate of their
/// Jaccard similarity.
pub fn estimated_jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Document;

    fn sig(text: &str) -> SigRecord {
        Signer::new(&Config::default()).sign(&Document::new("x", "s", text))
    }

    #[test]
    fn curve_matches_the_formula_and_fineweb_threshold() {
        let c = Config::default();
        assert_eq!(c.num_hashes(), 112);
        // 14 x 8 (FineWeb's setting): the 50% point is at 0.685, below the usual
        // approximation (1/b)^(1/r) = 0.719.
        let h = half_point(14, 8);
        assert!((h - 0.6847).abs() < 0.001, "{h}");
        assert!(candidate_probability(0.85, 14, 8) > 0.98);
        assert!(candidate_probability(0.5, 14, 8) < 0.06);
        assert!(c.explain().contains("0.85"));
    }

    #[test]
    fn identical_texts_share_signatures_and_case_is_folded() {
        let a = sig("The quick brown fox jumps over the lazy dog near the river bank today");
        let b = sig("the QUICK brown fox jumps over the lazy dog, near the river bank today!");
        assert_eq!(a.hashes.len(), 112);
        assert_eq!(a.hashes, b.hashes);
    }

    #[test]
    fn too_short_documents_have_no_signature() {
        assert!(!sig("only four words here").has_signature());
        assert!(sig("five words are just enough").has_signature());
        // CJK: characters are tokens.
        assert!(sig("今天天气很好").has_signature());
        assert!(!sig("天气好").has_signature());
    }

    #[test]
    fn estimate_tracks_true_jaccard() {
        // 200 distinct words; the second text replaces the last 40 of them.
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let mut other = words.clone();
        for w in other.iter_mut().skip(160) {
            w.push('x');
        }
        let signer = Signer::new(&Config {
            bands: 32,
            rows: 8,
            ..Config::default()
        });
        let (mut k, mut ids) = (String::new(), Vec::new());
        let sa: std::collections::HashSet<u64> = signer
            .shingles(&words.join(" "), &mut k, &mut ids)
            .into_iter()
            .collect();
        let sb: std::collections::HashSet<u64> = signer
            .shingles(&other.join(" "), &mut k, &mut ids)
            .into_iter()
            .collect();
        let truth = sa.intersection(&sb).count() as f64 / sa.union(&sb).count() as f64;
        let a = signer.sign(&Document::new("a", "s", words.join(" ")));
        let b = signer.sign(&Document::new("b", "s", other.join(" ")));
        let est = estimated_jaccard(&a.hashes, &b.hashes);
        assert!((est - truth).abs() < 0.12, "estimate {est}, truth {truth}");
    }

    #[test]
    fn keys_pack_in_input_order() {
        let a = DocKey { file: 1, record: 7 };
        let b = DocKey { file: 2, record: 0 };
        assert!(a.pack() < b.pack());
        assert_eq!(DocKey::unpack(a.pack()), a);
        assert_eq!(a.to_string(), "1:7");
    }
}
