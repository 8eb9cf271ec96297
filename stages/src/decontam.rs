//! `decontam`: finds text shared with benchmark test examples (13-grams by default), so
//! evaluation sets do not leak into training data, and drops the document or removes the
//! matched spans.
//!
//! Benchmarks are files the user points to, read by one generic loader: JSON lines,
//! JSON (an array of records, or an object holding one, such as BIG-Bench-Hard's
//! `examples`) or CSV (MMLU, CMMLU), optionally gzip-compressed, a file or a directory
//! of them. Each record is one test example; its text is every string in it (question,
//! choices, answer, code, tests), or only the configured `fields`.
//!
//! Text on both sides goes through the shared dedup key and its tokens
//! ([`crate::normalize::dedup_key`], [`crate::normalize::key_tokens`]): lower-cased,
//! punctuation and digits folded, every CJK character a token, so Chinese benchmarks
//! work. An n-gram found in more than `max_examples_per_ngram` examples is too common to
//! be evidence and is ignored. A test example, or its question, shorter than `n` tokens
//! but with at least `short_min_tokens` (8) is matched whole, as the evaluation
//! harnesses do for short examples; choices and answers are not (short phrases such as
//! "the general agreement on tariffs and trade" are in ordinary text). A document with at
//! least `min_matches` distinct matching n-grams (or whole questions) is contaminated.
//! Policies:
//! - `drop` (default, as Qwen did): the document is dropped (`contaminated`).
//! - `remove_span` (GPT-3): every matched n-gram is cut out of the text with `window`
//!   characters on each side; the pieces left are the document's new text, joined by a
//!   blank line. Pieces shorter than `min_piece_chars` are discarded; a document cut into
//!   more than `max_pieces` pieces is dropped (`contaminated_split`), and so is one with
//!   no piece left (`contaminated_remainder`). Spans are found in the text through the
//!   byte map of the dedup key ([`crate::normalize::dedup_key_mapped`]).
//!
//! The scan probes a filter of 8-token anchors at one position in `n - 7` and looks
//! n-grams up only around the anchors that pass (see [`Index`]).
//!
//! The index (n-gram hash -> benchmark and example) is built from the benchmark files,
//! or loaded from an index file written once by [`Index::to_bytes`] (`corpus decontam
//! index`): versioned, checksummed and fingerprinted with `n`, `max_examples_per_ngram`,
//! `short_min_tokens` and the key and hash functions, so a file made with other settings
//! is refused.
//!
//! Statistics: `benchmark:<name>` counts contaminated documents by the benchmark they
//! matched most, `matched:<name>` documents matching a benchmark at all,
//! `example:<name>:<file>:<record>` documents matching each test example and
//! `ngram:<name>:<n-gram>` a sample matched n-gram per document and benchmark (the one
//! with the smallest hash, so the same example gives the same sample). The matched
//! benchmark, examples and removed spans are also written to `meta.extra.decontam`.

use crate::document::Document;
use crate::minhash::files::{FileError, decode_unchecked, encode_versioned};
use crate::ngram::{BuildMix, ngram_hash, ngram_hashes, word_hash};
use crate::normalize::{KeyMap, dedup_key, dedup_key_mapped, is_cjk_token_char, key_tokens};
use crate::stage::{Failure, Measure, Reason, Stage, StageCx, StageError, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The stage kind.
pub const KIND: &str = "decontam";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str =
    "drop documents sharing 13-grams with benchmark test sets (GSM8K, MMLU, HumanEval, CMMLU...)";

/// The document shares n-grams with a benchmark (policy `drop`).
pub const CONTAMINATED: Reason = Reason::new("contaminated");
/// Removing the matched spans cut the document into more than `max_pieces` pieces.
pub const CONTAMINATED_SPLIT: Reason = Reason::new("contaminated_split");
/// No piece of at least `min_piece_chars` characters was left after removing the spans.
pub const CONTAMINATED_REMAINDER: Reason = Reason::new("contaminated_remainder");

/// Magic of index files.
pub const INDEX_MAGIC: &[u8; 8] = b"CDXIDX\0\0";
/// Index file format version written and accepted.
pub const INDEX_VERSION: u32 = 2;

/// Tokens of the anchor n-grams the scan probes first (fewer when `n` or
/// `short_min_tokens` is smaller): see [`Index`].
const ANCHOR: usize = 8;

/// One benchmark: a name for reports and where its test examples are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benchmark {
    /// Name in statistics and metadata.
    pub name: String,
    /// A file or a directory of `.jsonl`, `.json` or `.csv` files (optionally `.gz`).
    pub path: PathBuf,
    /// Fields of a JSON record that hold the example's text; empty: every string.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// What happens to a contaminated document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Drop the whole document (Qwen).
    #[default]
    Drop,
    /// Remove each matched n-gram with a window around it, keep the pieces (GPT-3).
    RemoveSpan,
}

/// Configuration of the `decontam` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The benchmarks to protect (or `index`).
    pub benchmarks: Vec<Benchmark>,
    /// An index file written by `corpus decontam index`, instead of `benchmarks`.
    /// Default: none.
    pub index: Option<PathBuf>,
    /// n-gram length in tokens. Default 13.
    pub n: usize,
    /// n-grams found in more test examples than this are ignored. Default 10.
    pub max_examples_per_ngram: usize,
    /// A test example, or its question, with fewer than `n` tokens but at least this
    /// many is matched as a whole (see [`for_each_example`] for which field is the
    /// question; choices and answers are not: short phrases are no evidence); 0: never.
    /// Default 8.
    pub short_min_tokens: usize,
    /// Distinct matching n-grams that make a document contaminated. Default 1.
    pub min_matches: usize,
    /// `drop` (default) or `remove_span`.
    pub policy: Policy,
    /// `remove_span`: characters removed on each side of a matched n-gram. Default 200.
    pub window: usize,
    /// `remove_span`: pieces shorter than this many characters are discarded.
    /// Default 200.
    pub min_piece_chars: usize,
    /// `remove_span`: a document cut into more pieces than this is dropped. Default 10.
    pub max_pieces: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            benchmarks: Vec::new(),
            index: None,
            n: 13,
            max_examples_per_ngram: 10,
            short_min_tokens: 8,
            min_matches: 1,
            policy: Policy::Drop,
            window: 200,
            min_piece_chars: 200,
            max_pieces: 10,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "benchmarks",
        doc: "list of {name, path, fields}: benchmark test sets (.jsonl/.json/.csv, .gz, or a directory)",
    },
    crate::FieldDoc {
        name: "index",
        doc: "index file from `corpus decontam index`, used instead of benchmarks",
    },
    crate::FieldDoc {
        name: "n",
        doc: "n-gram length in tokens (words; each CJK character a token)",
    },
    crate::FieldDoc {
        name: "max_examples_per_ngram",
        doc: "n-grams in more test examples than this are too common to count",
    },
    crate::FieldDoc {
        name: "short_min_tokens",
        doc: "examples or questions shorter than n tokens but with at least this many are matched whole (0: never)",
    },
    crate::FieldDoc {
        name: "min_matches",
        doc: "distinct matching n-grams that make a document contaminated",
    },
    crate::FieldDoc {
        name: "policy",
        doc: "drop (the whole document) | remove_span (cut matched n-grams out, GPT-3)",
    },
    crate::FieldDoc {
        name: "window",
        doc: "remove_span: characters removed on each side of a matched n-gram",
    },
    crate::FieldDoc {
        name: "min_piece_chars",
        doc: "remove_span: pieces shorter than this (characters) are discarded",
    },
    crate::FieldDoc {
        name: "max_pieces",
        doc: "remove_span: documents cut into more pieces than this are dropped",
    },
];

/// What was indexed of one benchmark.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Benchmark name.
    pub name: String,
    /// Test examples read.
    pub examples: usize,
    /// Examples without an n-gram that can be evidence (fewer than `n` tokens, or
    /// mostly numbers) and without a field matched whole: they cannot be matched.
    pub too_short: usize,
    /// Questions (or whole examples) with fewer than `n` tokens but at least
    /// `short_min_tokens`, indexed to be matched as a whole.
    #[serde(default)]
    pub short_fields: usize,
    /// The files read, in order, with the number of their first example: example `k`
    /// is in the last file whose `first` is at most `k`.
    pub files: Vec<ExampleFile>,
}

/// One benchmark file in an index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleFile {
    /// The file, relative to the benchmark's path (its name when the path is the file).
    pub file: String,
    /// Number of its first example in the benchmark.
    pub first: u32,
}

impl IndexStats {
    /// `FILE:RECORD` of example `k` (records counted from 1 within the file: JSONL
    /// lines, CSV rows, JSON array items).
    pub fn label(&self, k: u32) -> String {
        let at = self.files.partition_point(|f| f.first <= k);
        match at.checked_sub(1).map(|i| &self.files[i]) {
            Some(f) => format!("{}:{}", f.file, k - f.first + 1),
            None => format!("#{k}"),
        }
    }
}

/// Which benchmark example an n-gram belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    bench: u16,
    /// The first example (in load order) holding it.
    example: u32,
}

/// A matching n-gram of a scanned key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hit {
    /// Its first token.
    at: usize,
    /// Its tokens: `n`, or fewer for a field matched whole.
    len: usize,
    /// Its key in the index (distinct n-grams have distinct keys).
    key: u64,
    entry: Entry,
}

/// The settings an index is made with; a loaded index must have the stage's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSettings {
    /// n-gram length in tokens.
    pub n: usize,
    /// n-grams in more test examples than this are ignored.
    pub max_examples_per_ngram: usize,
    /// Fields with fewer than `n` tokens but at least this many are matched whole.
    pub short_min_tokens: usize,
}

impl IndexSettings {
    /// The anchor length: [`ANCHOR`] tokens, or fewer when `n` or `short_min_tokens`
    /// is smaller.
    fn anchor(&self) -> usize {
        let mut k = ANCHOR.min(self.n).max(1);
        if self.short_min_tokens > 0 {
            k = k.min(self.short_min_tokens);
        }
        k
    }

    /// True when fields shorter than `n` are matched whole.
    fn short(&self) -> bool {
        self.short_min_tokens > 0 && self.short_min_tokens < self.n
    }
}

impl Config {
    /// The index settings of this config.
    pub fn index_settings(&self) -> IndexSettings {
        IndexSettings {
            n: self.n,
            max_examples_per_ngram: self.max_examples_per_ngram,
            short_min_tokens: self.short_min_tokens,
        }
    }
}

/// The header of an index file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexHeader {
    settings: IndexSettings,
    entries: u64,
    short_entries: u64,
    anchor_words: u64,
    short_anchor_words: u64,
    benchmarks: Vec<IndexStats>,
}

/// Bytes per entry in an index file body: hash u64, benchmark u16, example u32.
const ENTRY_LEN: usize = 14;
/// Bytes per whole-field entry: key u64, length u16, benchmark u16, example u32.
const SHORT_ENTRY_LEN: usize = 16;

/// The n-gram index: n-gram hash -> benchmark and example, and the fields matched whole.
///
/// The scan does not probe every n-gram of a document. Every `k`-token window inside an
/// indexed n-gram (`k` = [`ANCHOR`], 8) is an *anchor*, kept in a compact filter. An
/// n-gram starting at token `j` holds the window starting at the one multiple of
/// `n - k + 1` in `j..=j + n - k`, so the scan probes the filter only at those
/// positions (one in six for 13-grams) and looks the n-grams around a passing anchor up
/// in the map. Fields matched whole (fewer than `n` tokens) are found through a second,
/// small filter of their first `k` tokens, probed at every position. No step can miss
/// an indexed n-gram, so the hits are those of looking up every n-gram.
pub struct Index {
    settings: IndexSettings,
    map: HashMap<u64, Entry, BuildMix>,
    /// Whole-field key ([`short_key`]) -> benchmark and example, and its tokens.
    short: HashMap<u64, (Entry, u16), BuildMix>,
    /// The lengths of the whole fields, ascending.
    short_lens: Vec<usize>,
    /// The anchors of the map's n-grams.
    anchors: Prefilter,
    /// The first `k` tokens of the whole fields.
    short_anchors: Prefilter,
    /// What was indexed, per benchmark.
    pub stats: Vec<IndexStats>,
}

/// The index key of a field of `len` tokens whose n-gram hash is `h`.
#[inline]
fn short_key(h: u64, len: usize) -> u64 {
    (h ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17)
}

/// A blocked Bloom filter of 64-bit hashes: two bits in one 64-bit word per hash,
/// about 16 bits per hash (4 MB for the 1.9 million anchors of the benchmark sets).
/// Nearly every window of a clean document misses the index; the filter answers most
/// of them from cache instead of a random access into the much larger hash map.
/// No false negatives, so it changes no result.
struct Prefilter {
    words: Vec<u64>,
    /// 64 minus log2 of the number of words.
    shift: u32,
}

impl Prefilter {
    fn new<'a>(hashes: impl ExactSizeIterator<Item = &'a u64>) -> Prefilter {
        let mut p = Prefilter::empty((hashes.len() / 4).next_power_of_two().max(1));
        for &h in hashes {
            let (w, mask) = p.slot(h);
            p.words[w] |= mask;
        }
        p
    }

    /// A filter of `words` (a power of two) words, nothing in it.
    fn empty(words: usize) -> Prefilter {
        Prefilter {
            words: vec![0; words],
            shift: 64 - words.trailing_zeros(),
        }
    }

    /// The filter with these words (a power of two of them, from [`Prefilter::words`]).
    fn from_words(words: Vec<u64>) -> Option<Prefilter> {
        (words.len().is_power_of_two()).then(|| Prefilter {
            shift: 64 - words.len().trailing_zeros(),
            words,
        })
    }

    /// The word and the two bits of `h`.
    #[inline(always)]
    fn slot(&self, h: u64) -> (usize, u64) {
        let w = (h ^ (h >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // `checked_shr`: a one-word filter (shift 64) uses word 0.
        let word = w.checked_shr(self.shift).unwrap_or(0) as usize;
        (word, (1 << (h & 63)) | (1 << ((h >> 6) & 63)))
    }

    /// False when `h` is certainly not in the index.
    #[inline(always)]
    fn may_contain(&self, h: u64) -> bool {
        let (w, mask) = self.slot(h);
        self.words[w] & mask == mask
    }
}

/// Buffers of a scan, reused from document to document (one set per thread).
#[derive(Default)]
struct Scratch {
    key: String,
    /// Word hash per token of the key.
    ids: Vec<u64>,
    /// Tokens holding a letter among the first `i`, per `i`.
    letters: Vec<u32>,
    /// The hash of the anchor window starting at each token.
    grams: Vec<u64>,
    hits: Vec<Hit>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// `char::is_alphabetic`, without the table look-up for the common Han ideographs
/// (all alphabetic; a test checks it).
#[inline(always)]
fn is_letter(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c) || c.is_alphabetic()
}

/// The word hashes of the tokens of a dedup key (as [`key_tokens`] splits it) into
/// `ids`, and into `letters` the running count of tokens holding a letter, in one pass
/// over the key's bytes without collecting the tokens.
fn token_hashes(key: &str, ids: &mut Vec<u64>, letters: &mut Vec<u32>) {
    ids.clear();
    letters.clear();
    letters.push(0);
    let bytes = key.as_bytes();
    let mut count = 0u32;
    let mut i = 0;
    // The character at byte `j` and its length (`j` is on a character boundary). Three
    // bytes (CJK, most characters of Chinese text) are decoded here.
    let char_at = |j: usize| -> (char, usize) {
        if bytes[j] & 0xF0 == 0xE0 && j + 2 < bytes.len() {
            let c = (u32::from(bytes[j] & 0x0F) << 12)
                | (u32::from(bytes[j + 1] & 0x3F) << 6)
                | u32::from(bytes[j + 2] & 0x3F);
            if let Some(c) = char::from_u32(c) {
                return (c, 3);
            }
        }
        let c = key[j..].chars().next().unwrap_or(' ');
        (c, c.len_utf8())
    };
    while i < bytes.len() {
        let b = bytes[i];
        let (first, len) = if b < 0x80 {
            (char::from(b), 1)
        } else {
            char_at(i)
        };
        if first.is_whitespace() {
            i += len;
            continue;
        }
        let start = i;
        let mut letter = is_letter(first);
        i += len;
        if !is_cjk_token_char(first) {
            while i < bytes.len() {
                let b = bytes[i];
                if b < 0x80 {
                    if char::from(b).is_whitespace() {
                        break;
                    }
                    letter |= b.is_ascii_alphabetic();
                    i += 1;
                } else {
                    let (c, len) = char_at(i);
                    if c.is_whitespace() || is_cjk_token_char(c) {
                        break;
                    }
                    letter |= is_letter(c);
                    i += len;
                }
            }
        }
        ids.push(xxhash_rust::xxh3::xxh3_64(&bytes[start..i]));
        count += u32::from(letter);
        letters.push(count);
    }
}

fn config_err(message: String) -> StageError {
    StageError::Config {
        kind: KIND,
        message,
    }
}

/// The fingerprint of an index: its settings and the functions that make n-grams (the
/// dedup key, its tokens, the word and n-gram hashes, the evidence rule, the anchors),
/// probed on a fixed text so that a change to any of them changes it.
pub fn index_fingerprint(settings: &IndexSettings) -> u64 {
    const PROBE: &str =
        "Ｔhe QUICK brown fox, 1999 — café crème ﬁ 小明有五个苹果。Ǆemal İstanbul ß 12 34";
    let mut key = String::new();
    dedup_key(PROBE, &mut key);
    let grams: Vec<u64> = evidence_ngrams(&key, 3)
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    let IndexSettings {
        n,
        max_examples_per_ngram,
        short_min_tokens,
    } = *settings;
    let mut text = format!(
        "corpus decontam index v{INDEX_VERSION}; n={n}; max_examples_per_ngram={max_examples_per_ngram}; \
         short_min_tokens={short_min_tokens}; anchor={}; short_key={}; key={key}; tokens=",
        settings.anchor(),
        short_key(12345, 9)
    );
    for t in key_tokens(&key) {
        text.push_str(t);
        text.push('|');
    }
    text.push_str(&format!("; grams={grams:?}"));
    crate::fingerprint(&text)
}

/// True when at least half of the `len` tokens from `at` hold a letter (`letters` as
/// [`token_hashes`] makes it): n-grams of numbers are not evidence.
#[inline(always)]
fn evidence(letters: &[u32], at: usize, len: usize) -> bool {
    2 * (letters[at + len] - letters[at]) as usize >= len
}

impl Index {
    /// Builds the index from benchmark files.
    pub fn build(benchmarks: &[Benchmark], settings: IndexSettings) -> Result<Index, StageError> {
        let n = settings.n;
        if n == 0 {
            return Err(config_err("n must be at least 1".into()));
        }
        if benchmarks.len() > usize::from(u16::MAX) {
            return Err(config_err("too many benchmarks".into()));
        }
        let mut names = HashSet::new();
        for b in benchmarks {
            if b.name.is_empty() || b.name.contains(':') || !names.insert(&b.name) {
                return Err(config_err(format!(
                    "benchmark name `{}`: names must be unique, not empty and without `:`",
                    b.name
                )));
            }
        }
        let k = settings.anchor();
        // n-gram -> (first benchmark and example holding it, examples holding it).
        let mut counts: HashMap<u64, (Entry, u32), BuildMix> = HashMap::default();
        // Whole field key -> (first example, tokens, hash of its first k tokens).
        let mut shorts: HashMap<u64, (Entry, usize, u64), BuildMix> = HashMap::default();
        // Every example's tokens, for the anchors and for counting the whole fields.
        let mut examples: Vec<(Vec<u64>, Vec<u32>)> = Vec::new();
        let mut stats = Vec::new();
        let (mut key, mut ids, mut letters) = (String::new(), Vec::new(), Vec::new());
        let (mut fkey, mut fids, mut fletters) = (String::new(), Vec::new(), Vec::new());
        let mut seen: HashSet<u64, BuildMix> = HashSet::default();
        for (b, bench) in benchmarks.iter().enumerate() {
            let mut st = IndexStats {
                name: bench.name.clone(),
                ..Default::default()
            };
            let mut last_file: Option<PathBuf> = None;
            for_each_example(&bench.path, &bench.fields, &mut |file, text, question| {
                if last_file.as_deref() != Some(file) {
                    let rel = file.strip_prefix(&bench.path).unwrap_or(file);
                    let rel = if rel.as_os_str().is_empty() {
                        file.file_name().map_or(file, Path::new)
                    } else {
                        rel
                    };
                    st.files.push(ExampleFile {
                        file: rel.to_string_lossy().into_owned(),
                        first: st.examples as u32,
                    });
                    last_file = Some(file.to_path_buf());
                }
                let entry = Entry {
                    bench: b as u16,
                    example: st.examples as u32,
                };
                st.examples += 1;
                dedup_key(text, &mut key);
                token_hashes(&key, &mut ids, &mut letters);
                let mut matchable = false;
                seen.clear();
                for (j, h) in ngram_hashes(&ids, n).enumerate() {
                    if evidence(&letters, j, n) {
                        matchable = true;
                        if seen.insert(h) {
                            counts.entry(h).or_insert((entry, 0)).1 += 1;
                        }
                    }
                }
                if settings.short() {
                    let mut whole = |ids: &[u64], letters: &[u32]| {
                        let len = ids.len();
                        let fits = (settings.short_min_tokens..n).contains(&len)
                            && evidence(letters, 0, len);
                        if fits {
                            let anchor = ngram_hash(&ids[..k]);
                            shorts
                                .entry(short_key(ngram_hash(ids), len))
                                .or_insert((entry, len, anchor));
                        }
                        fits
                    };
                    let mut short = usize::from(whole(&ids, &letters));
                    if let Some(q) = question {
                        dedup_key(&text[q], &mut fkey);
                        token_hashes(&fkey, &mut fids, &mut fletters);
                        if fids.len() < ids.len() {
                            short += usize::from(whole(&fids, &fletters));
                        }
                    }
                    st.short_fields += short;
                    matchable |= short > 0;
                }
                st.too_short += usize::from(!matchable);
                examples.push((ids.clone(), letters.clone()));
            })?;
            if st.examples == 0 {
                return Err(config_err(format!(
                    "benchmark `{}`: no examples found in {}",
                    bench.name,
                    bench.path.display()
                )));
            }
            if st.examples > u32::MAX as usize {
                return Err(config_err(format!(
                    "benchmark `{}`: too many examples",
                    bench.name
                )));
            }
            stats.push(st);
        }
        let limit = max_examples_per_ngram_limit(settings.max_examples_per_ngram);
        let map: HashMap<u64, Entry, BuildMix> = counts
            .into_iter()
            .filter(|(_, (_, c))| *c <= limit)
            .map(|(h, (e, _))| (h, e))
            .collect();
        // Whole fields are too common when that many examples hold their tokens.
        let lens: BTreeSet<usize> = shorts.values().map(|s| s.1).collect();
        let mut short_counts: HashMap<u64, u32, BuildMix> = HashMap::default();
        for (ids, _) in &examples {
            seen.clear();
            for &len in &lens {
                for h in ngram_hashes(ids, len) {
                    let key = short_key(h, len);
                    if shorts.contains_key(&key) && seen.insert(key) {
                        *short_counts.entry(key).or_default() += 1;
                    }
                }
            }
        }
        shorts.retain(|key, _| short_counts.get(key).is_none_or(|&c| c <= limit));
        // The anchors: every k-token window inside an indexed n-gram.
        let stride = n - k + 1;
        let mut anchors: HashSet<u64, BuildMix> = HashSet::default();
        let mut windows = Vec::new();
        for (ids, letters) in &examples {
            windows.clear();
            windows.extend(ngram_hashes(ids, k));
            for (j, h) in ngram_hashes(ids, n).enumerate() {
                if evidence(letters, j, n) && map.contains_key(&h) {
                    anchors.extend(&windows[j..j + stride]);
                }
            }
        }
        let short_anchors: HashSet<u64, BuildMix> = shorts.values().map(|s| s.2).collect();
        Ok(Index {
            settings,
            anchors: Prefilter::new(anchors.iter()),
            short_anchors: Prefilter::new(short_anchors.iter()),
            short_lens: shorts
                .values()
                .map(|s| s.1)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            short: shorts
                .into_iter()
                .map(|(key, (e, len, _))| (key, (e, len as u16)))
                .collect(),
            map,
            stats,
        })
    }

    /// The index as an index file: framed, versioned, fingerprinted and checksummed;
    /// entries sorted by hash, so the same benchmarks and settings give the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<(u64, Entry)> = self.map.iter().map(|(h, e)| (*h, *e)).collect();
        entries.sort_unstable_by_key(|(h, _)| *h);
        let mut shorts: Vec<(u64, (Entry, u16))> =
            self.short.iter().map(|(h, e)| (*h, *e)).collect();
        shorts.sort_unstable_by_key(|(h, _)| *h);
        let (aw, sw) = (&self.anchors.words, &self.short_anchors.words);
        let mut body = Vec::with_capacity(
            entries.len() * ENTRY_LEN + shorts.len() * SHORT_ENTRY_LEN + (aw.len() + sw.len()) * 8,
        );
        for (h, e) in &entries {
            body.extend_from_slice(&h.to_le_bytes());
            body.extend_from_slice(&e.bench.to_le_bytes());
            body.extend_from_slice(&e.example.to_le_bytes());
        }
        for (key, (e, len)) in &shorts {
            body.extend_from_slice(&key.to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&e.bench.to_le_bytes());
            body.extend_from_slice(&e.example.to_le_bytes());
        }
        for w in aw.iter().chain(sw) {
            body.extend_from_slice(&w.to_le_bytes());
        }
        let header = IndexHeader {
            settings: self.settings,
            entries: entries.len() as u64,
            short_entries: shorts.len() as u64,
            anchor_words: aw.len() as u64,
            short_anchor_words: sw.len() as u64,
            benchmarks: self.stats.clone(),
        };
        encode_versioned(
            INDEX_MAGIC,
            INDEX_VERSION,
            index_fingerprint(&self.settings),
            &header,
            &body,
        )
    }

    /// Reads an index file. `expect`, when given, must be the settings the file was
    /// made with. A damaged, truncated, foreign or mismatched file is an error naming it.
    pub fn load(path: &Path, expect: Option<IndexSettings>) -> Result<Index, FileError> {
        let bytes = std::fs::read(path).map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Index::from_bytes(&bytes, path, expect)
    }

    /// Reads the bytes of an index file (`path` names it in errors).
    pub fn from_bytes(
        bytes: &[u8],
        path: &Path,
        expect: Option<IndexSettings>,
    ) -> Result<Index, FileError> {
        let invalid = |message: String| FileError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let (fingerprint, header, body): (u64, IndexHeader, &[u8]) =
            decode_unchecked(bytes, INDEX_MAGIC, INDEX_VERSION, path)?;
        let s = header.settings;
        if let Some(want) = expect
            && want != s
        {
            return Err(invalid(format!(
                "index made with n = {}, max_examples_per_ngram = {}, short_min_tokens = {}; \
                 the stage asks for n = {}, max_examples_per_ngram = {}, short_min_tokens = {}: \
                 rebuild the index or change the settings",
                s.n,
                s.max_examples_per_ngram,
                s.short_min_tokens,
                want.n,
                want.max_examples_per_ngram,
                want.short_min_tokens
            )));
        }
        if fingerprint != index_fingerprint(&s) {
            return Err(invalid(
                "index made by a build whose dedup key or n-gram hashing differs from this one: \
                 rebuild it with this build's `corpus decontam index`"
                    .into(),
            ));
        }
        let sizes = [
            header.entries.checked_mul(ENTRY_LEN as u64),
            header.short_entries.checked_mul(SHORT_ENTRY_LEN as u64),
            header.anchor_words.checked_mul(8),
            header.short_anchor_words.checked_mul(8),
        ];
        let expected = sizes
            .iter()
            .try_fold(0u64, |acc, s| s.and_then(|s| acc.checked_add(s)));
        if expected != Some(body.len() as u64) {
            return Err(invalid(format!(
                "body holds {} bytes, the header says {} entries, {} whole fields and {} + {} filter words",
                body.len(),
                header.entries,
                header.short_entries,
                header.anchor_words,
                header.short_anchor_words
            )));
        }
        let (entries, rest) = body.split_at(header.entries as usize * ENTRY_LEN);
        let (short_entries, words) = rest.split_at(header.short_entries as usize * SHORT_ENTRY_LEN);
        let bench_of = |bench: u16| {
            if usize::from(bench) >= header.benchmarks.len() {
                Err(invalid(format!("entry names benchmark {bench}, unknown")))
            } else {
                Ok(bench)
            }
        };
        let u16_at = |c: &[u8], at: usize| u16::from_le_bytes([c[at], c[at + 1]]);
        let u32_at = |c: &[u8], at: usize| u32::from_le_bytes(c[at..at + 4].try_into().unwrap());
        let u64_at = |c: &[u8], at: usize| u64::from_le_bytes(c[at..at + 8].try_into().unwrap());
        let mut map: HashMap<u64, Entry, BuildMix> =
            HashMap::with_capacity_and_hasher(header.entries as usize, BuildMix);
        for c in entries.chunks_exact(ENTRY_LEN) {
            let entry = Entry {
                bench: bench_of(u16_at(c, 8))?,
                example: u32_at(c, 10),
            };
            map.insert(u64_at(c, 0), entry);
        }
        let mut short: HashMap<u64, (Entry, u16), BuildMix> = HashMap::default();
        for c in short_entries.chunks_exact(SHORT_ENTRY_LEN) {
            let (key, len) = (u64_at(c, 0), usize::from(u16_at(c, 8)));
            if !(s.short_min_tokens.max(1)..s.n).contains(&len) {
                return Err(invalid(format!(
                    "whole field of {len} tokens, out of range"
                )));
            }
            let entry = Entry {
                bench: bench_of(u16_at(c, 10))?,
                example: u32_at(c, 12),
            };
            short.insert(key, (entry, len as u16));
        }
        let words: Vec<u64> = words.chunks_exact(8).map(|c| u64_at(c, 0)).collect();
        let (aw, sw) = words.split_at(header.anchor_words as usize);
        let filter = |w: &[u64]| {
            Prefilter::from_words(w.to_vec()).ok_or_else(|| {
                invalid(format!("a filter of {} words, not a power of two", w.len()))
            })
        };
        Ok(Index {
            settings: s,
            anchors: filter(aw)?,
            short_anchors: filter(sw)?,
            short_lens: short
                .values()
                .map(|(_, l)| usize::from(*l))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            short,
            map,
            stats: header.benchmarks,
        })
    }

    /// n-gram length.
    pub fn n(&self) -> usize {
        self.settings.n
    }

    /// The `max_examples_per_ngram` it was built with.
    pub fn max_examples_per_ngram(&self) -> usize {
        self.settings.max_examples_per_ngram
    }

    /// The settings it was built with.
    pub fn settings(&self) -> IndexSettings {
        self.settings
    }

    /// Number of distinct n-grams in the index.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Number of fields matched whole.
    pub fn short_len(&self) -> usize {
        self.short.len()
    }

    /// True when nothing was indexed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.short.is_empty()
    }

    /// The matching n-grams and whole fields of `scratch.key` (a dedup key) into
    /// `scratch.hits`, by position: the n-grams of [`evidence_ngrams`] found in the map
    /// and the fields found whole, made without collecting tokens or n-grams.
    fn hits(&self, scratch: &mut Scratch) {
        let Scratch {
            key,
            ids,
            letters,
            grams,
            hits,
        } = scratch;
        hits.clear();
        token_hashes(key, ids, letters);
        let (n, k, len) = (self.settings.n, self.settings.anchor(), ids.len());
        if len < k {
            return;
        }
        grams.clear();
        grams.extend(ngram_hashes(ids, k));
        if len >= n && !self.map.is_empty() {
            // The n-grams from `a + 1 - stride` to `a` hold the window at `a`.
            let stride = n - k + 1;
            for a in (0..grams.len()).step_by(stride) {
                if !self.anchors.may_contain(grams[a]) {
                    continue;
                }
                for j in a.saturating_sub(stride - 1)..=a.min(len - n) {
                    if !evidence(letters, j, n) {
                        continue;
                    }
                    let h = ngram_hash(&ids[j..j + n]);
                    if let Some(e) = self.map.get(&h) {
                        hits.push(Hit {
                            at: j,
                            len: n,
                            key: h,
                            entry: *e,
                        });
                    }
                }
            }
        }
        if !self.short.is_empty() {
            let before = hits.len();
            for (i, &g) in grams.iter().enumerate() {
                if !self.short_anchors.may_contain(g) {
                    continue;
                }
                for &l in self.short_lens.iter().take_while(|&&l| i + l <= len) {
                    if !evidence(letters, i, l) {
                        continue;
                    }
                    let key = short_key(ngram_hash(&ids[i..i + l]), l);
                    if let Some((e, _)) = self.short.get(&key) {
                        hits.push(Hit {
                            at: i,
                            len: l,
                            key,
                            entry: *e,
                        });
                    }
                }
            }
            if hits.len() > before {
                hits.sort_unstable_by_key(|h| (h.at, h.len));
            }
        }
    }
}

/// `max_examples_per_ngram` as a count limit (at least 1).
fn max_examples_per_ngram_limit(max: usize) -> u32 {
    max.clamp(1, u32::MAX as usize) as u32
}

/// Per-benchmark counter names, made once per build.
struct Names {
    name: String,
    top: &'static str,
    matched: &'static str,
}

/// The built stage.
pub struct Decontam {
    index: Index,
    min_matches: usize,
    policy: Policy,
    window: usize,
    min_piece_chars: usize,
    max_pieces: usize,
    names: Vec<Names>,
}

/// Builds the stage: loads `index` or builds one from `benchmarks`.
pub fn build(config: &Config) -> Result<Decontam, StageError> {
    let index = match &config.index {
        Some(path) => {
            if !config.benchmarks.is_empty() {
                return Err(config_err(
                    "give either `index` or `benchmarks`, not both".into(),
                ));
            }
            Index::load(path, Some(config.index_settings()))
                .map_err(|e| config_err(e.to_string()))?
        }
        None => Index::build(&config.benchmarks, config.index_settings())?,
    };
    Decontam::new(index, config)
}

impl Decontam {
    /// The stage over an index, with the policy settings of `config`.
    pub fn new(index: Index, config: &Config) -> Result<Decontam, StageError> {
        if config.policy == Policy::RemoveSpan && config.max_pieces == 0 {
            return Err(config_err("max_pieces must be at least 1".into()));
        }
        // Counter names must be 'static; a run has a handful of benchmarks, built once.
        let names = index
            .stats
            .iter()
            .map(|b| Names {
                name: b.name.clone(),
                top: intern(format!("benchmark:{}", b.name)),
                matched: intern(format!("matched:{}", b.name)),
            })
            .collect();
        Ok(Decontam {
            index,
            min_matches: config.min_matches.max(1),
            policy: config.policy,
            window: config.window,
            min_piece_chars: config.min_piece_chars,
            max_pieces: config.max_pieces,
            names,
        })
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// What was indexed, per benchmark.
    pub fn stats(&self) -> &[IndexStats] {
        &self.index.stats
    }

    /// Distinct matching n-grams in `text`, by benchmark index.
    pub fn matches(&self, text: &str) -> HashMap<u16, usize> {
        let mut scratch = Scratch::default();
        dedup_key(text, &mut scratch.key);
        self.index.hits(&mut scratch);
        let mut found: HashMap<u16, usize> = HashMap::new();
        let mut seen: HashSet<u64, BuildMix> = HashSet::default();
        for hit in &scratch.hits {
            if seen.insert(hit.key) {
                *found.entry(hit.entry.bench).or_default() += 1;
            }
        }
        found
    }

    /// Byte ranges of `text` to remove: every matched n-gram (first token and length
    /// in tokens of `key`, the dedup key of `text`, by position) widened by `window`
    /// characters on each side, merged, in order.
    fn spans(&self, text: &str, key: &str, hits: &[(usize, usize)]) -> Vec<Range<usize>> {
        let (mut mapped, mut map) = (String::new(), KeyMap::default());
        dedup_key_mapped(text, &mut mapped, &mut map);
        debug_assert_eq!(mapped, key);
        let tokens: Vec<Range<usize>> = key_tokens(&mapped)
            .map(|t| {
                let at = t.as_ptr() as usize - mapped.as_ptr() as usize;
                at..at + t.len()
            })
            .collect();
        let mut spans: Vec<Range<usize>> = Vec::new();
        for &(i, len) in hits {
            let r = map.source_range(tokens[i].start..tokens[i + len - 1].end);
            let r = back_chars(text, r.start, self.window)..fwd_chars(text, r.end, self.window);
            match spans.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => spans.push(r),
            }
        }
        spans
    }
}

/// The byte offset `k` characters before `at` (or 0).
fn back_chars(text: &str, at: usize, k: usize) -> usize {
    if k == 0 {
        return at;
    }
    text[..at]
        .char_indices()
        .rev()
        .nth(k - 1)
        .map_or(0, |(i, _)| i)
}

/// The byte offset `k` characters after `at` (or the end).
fn fwd_chars(text: &str, at: usize, k: usize) -> usize {
    text[at..]
        .char_indices()
        .nth(k)
        .map_or(text.len(), |(i, _)| at + i)
}

/// A `'static` counter name for `name`, leaked once per distinct name and process.
/// Names are bounded by the index: benchmarks, examples and indexed n-grams.
fn intern(name: String) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&s) = names.get(name.as_str()) {
        return s;
    }
    let s: &'static str = Box::leak(name.into_boxed_str());
    names.insert(s);
    s
}

/// Examples listed in `meta.extra.decontam.examples` at most.
const META_EXAMPLES: usize = 20;

impl Stage for Decontam {
    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        // Clean documents (nearly all) need nothing beyond the thread's buffers; the key
        // and hits of a matching one are copied out.
        let found = SCRATCH.with_borrow_mut(|scratch| {
            // The key exact dedup and MinHash computed, when they ran on this text.
            scratch.key.clear();
            scratch.key.push_str(doc.dedup_key());
            self.index.hits(scratch);
            (!scratch.hits.is_empty()).then(|| (scratch.key.clone(), scratch.hits.clone()))
        });
        let Some((key, hits)) = found else {
            return Ok(Verdict::Keep);
        };
        // Distinct n-grams per benchmark; per (benchmark, example) the smallest hash.
        let mut seen: HashSet<u64, BuildMix> = HashSet::default();
        let mut per_bench: BTreeMap<u16, usize> = BTreeMap::new();
        let mut examples: BTreeSet<(u16, u32)> = BTreeSet::new();
        let mut sample: BTreeMap<u16, (u64, usize, usize)> = BTreeMap::new();
        for hit in &hits {
            let (h, e) = (hit.key, hit.entry);
            if seen.insert(h) {
                *per_bench.entry(e.bench).or_default() += 1;
            }
            examples.insert((e.bench, e.example));
            let s = sample.entry(e.bench).or_insert((h, hit.at, hit.len));
            if h < s.0 {
                *s = (h, hit.at, hit.len);
            }
        }
        let total: usize = per_bench.values().sum();
        if total < self.min_matches {
            return Ok(Verdict::Keep);
        }
        let (&top, &count) = per_bench
            .iter()
            .max_by_key(|(b, c)| (**c, std::cmp::Reverse(**b)))
            .expect("hits are not empty");
        cx.count(self.names[usize::from(top)].top, 1);
        let tokens: Vec<&str> = key_tokens(&key).collect();
        for (&b, &(_, i, len)) in &sample {
            let names = &self.names[usize::from(b)];
            cx.count(names.matched, 1);
            let gram = tokens[i..i + len].join(" ");
            cx.count(intern(format!("ngram:{}:{gram}", names.name)), 1);
        }
        let mut labels = Vec::new();
        for &(b, k) in &examples {
            let st = &self.index.stats[usize::from(b)];
            let label = format!("{}:{}", st.name, st.label(k));
            cx.count(intern(format!("example:{label}")), 1);
            if labels.len() < META_EXAMPLES {
                labels.push(label);
            }
        }
        let mut info = serde_json::json!({
            "benchmark": self.names[usize::from(top)].name,
            "ngram_matches": count,
            "examples": labels,
        });
        if self.policy == Policy::Drop {
            doc.meta.extra.insert("decontam".into(), info);
            return Ok(Verdict::Drop(CONTAMINATED));
        }
        let positions: Vec<(usize, usize)> = hits.iter().map(|h| (h.at, h.len)).collect();
        let spans = self.spans(&doc.text, &key, &positions);
        // Pieces between the removed spans, trimmed; empty ones do not count.
        let mut pieces: Vec<&str> = Vec::new();
        let mut at = 0;
        for r in spans
            .iter()
            .chain(std::iter::once(&(doc.text.len()..doc.text.len())))
        {
            let piece = doc.text[at..r.start].trim();
            if !piece.is_empty() {
                pieces.push(piece);
            }
            at = r.end;
        }
        info["removed"] =
            serde_json::json!(spans.iter().map(|r| [r.start, r.end]).collect::<Vec<_>>());
        info["pieces"] = serde_json::json!(pieces.len());
        cx.count("spans_removed", spans.len() as u64);
        let verdict = if let Some(m) =
            Measure::above("pieces", pieces.len() as f64, self.max_pieces as f64)
        {
            m.fails(CONTAMINATED_SPLIT.code()).drop(doc)
        } else {
            let kept: Vec<&str> = pieces
                .into_iter()
                .filter(|p| p.chars().count() >= self.min_piece_chars)
                .collect();
            if kept.is_empty() {
                let detail = format!("no piece of {} characters or more", self.min_piece_chars);
                Failure::new(CONTAMINATED_REMAINDER, Some(detail)).drop(doc)
            } else {
                let text = kept.join("\n\n");
                cx.count("edited", 1);
                doc.text = text;
                Verdict::Keep
            }
        };
        doc.meta.extra.insert("decontam".into(), info);
        Ok(verdict)
    }
}

/// The n-grams of a dedup key that can be evidence, as (first token position, hash):
/// at least half of their tokens hold a letter (a CJK character counts). Runs of
/// numbers, which the key folds to `0`, would otherwise match any table of figures.
fn evidence_ngrams(key: &str, n: usize) -> Vec<(usize, u64)> {
    let tokens: Vec<&str> = key_tokens(key).collect();
    let ids: Vec<u64> = tokens.iter().map(|t| word_hash(t)).collect();
    // prefix[i] = tokens with a letter among the first i.
    let mut prefix = Vec::with_capacity(tokens.len() + 1);
    prefix.push(0usize);
    for t in &tokens {
        let letter = t.chars().any(char::is_alphabetic);
        prefix.push(prefix.last().copied().unwrap_or(0) + usize::from(letter));
    }
    ngram_hashes(&ids, n)
        .enumerate()
        .filter(|(i, _)| 2 * (prefix[i + n] - prefix[*i]) >= n)
        .collect()
}

/// What [`for_each_example`] calls: file, example text, question range in the text.
pub type ExampleFn<'a> = dyn FnMut(&Path, &str, Option<Range<usize>>) + 'a;

/// Keys of a JSON record whose string is its question, when no `fields` are given.
pub const QUESTION_KEYS: &[&str] = &[
    "question",
    "problem",
    "prompt",
    "input",
    "query",
    "instruction",
    "text",
];

/// Calls `f` with the file, the text of every example under `path` and the byte range
/// of its question in that text, in order (the files of a directory sorted by name,
/// recursively). The question is the first CSV cell that is not a number, the first of
/// `fields` that is a string, or without `fields` the first of [`QUESTION_KEYS`].
pub fn for_each_example(
    path: &Path,
    fields: &[String],
    f: &mut ExampleFn<'_>,
) -> Result<(), StageError> {
    let err = |e: &dyn std::fmt::Display| config_err(format!("{}: {e}", path.display()));
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| err(&e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.to_string_lossy();
            let known = [".jsonl", ".json", ".csv"]
                .iter()
                .any(|ext| name.ends_with(ext) || name.ends_with(&format!("{ext}.gz")));
            if entry.is_dir() || known {
                for_each_example(&entry, fields, f)?;
            }
        }
        return Ok(());
    }
    let file = BufReader::new(std::fs::File::open(path).map_err(|e| err(&e))?);
    let mut reader = corpus_models::io::gunzip_if_gzip(file).map_err(|e| err(&e))?;
    let name = path.to_string_lossy();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    let mut text = String::new();
    if base.ends_with(".csv") {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        for record in csv.records() {
            let record = record.map_err(|e| err(&e))?;
            text.clear();
            let mut question = None;
            for cell in record.iter() {
                let number = cell.trim().bytes().all(|b| b.is_ascii_digit());
                if question.is_none() && !number {
                    question = Some(text.len()..text.len() + cell.len());
                }
                text.push_str(cell);
                text.push('\n');
            }
            f(path, &text, question);
        }
    } else if base.ends_with(".jsonl") {
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| err(&e))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| err(&format!("line {}: {e}", i + 1)))?;
            text.clear();
            let question = collect_record(&value, fields, &mut text);
            f(path, &text, question);
        }
    } else {
        let mut all = String::new();
        reader.read_to_string(&mut all).map_err(|e| err(&e))?;
        let value: serde_json::Value = serde_json::from_str(&all).map_err(|e| err(&e))?;
        for record in json_records(&value) {
            text.clear();
            let question = collect_record(record, fields, &mut text);
            f(path, &text, question);
        }
    }
    Ok(())
}

/// The records of a JSON document: an array's items, or the items of the first array of
/// objects an object holds (`{"examples": [...]}`), or the value itself.
fn json_records(value: &serde_json::Value) -> Vec<&serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => items.iter().collect(),
        serde_json::Value::Object(map) => map
            .values()
            .find_map(|v| match v {
                serde_json::Value::Array(items) if items.iter().all(|i| i.is_object()) => {
                    Some(items.iter().collect())
                }
                _ => None,
            })
            .unwrap_or_else(|| vec![value]),
        _ => vec![value],
    }
}

/// Appends the strings of a record (only `fields` when given) to `out`; the byte range
/// of its question (see [`for_each_example`]) in `out`.
fn collect_record(
    value: &serde_json::Value,
    fields: &[String],
    out: &mut String,
) -> Option<Range<usize>> {
    let mut ranges = Vec::new();
    collect_text(value, fields, out, &mut ranges);
    let question = match value {
        serde_json::Value::Object(map) if fields.is_empty() => {
            QUESTION_KEYS.iter().find_map(|k| map.get(*k)?.as_str())
        }
        serde_json::Value::Object(map) => fields.iter().find_map(|k| map.get(k)?.as_str()),
        _ => None,
    }?;
    ranges
        .into_iter()
        .find(|(ptr, _)| *ptr == question.as_ptr())
        .map(|(_, r)| r)
}

/// Appends the strings of a record (only `fields` when given) to `out`, and where each
/// string came from and went in `out` to `ranges`.
fn collect_text(
    value: &serde_json::Value,
    fields: &[String],
    out: &mut String,
    ranges: &mut Vec<(*const u8, Range<usize>)>,
) {
    match (value, fields.is_empty()) {
        (serde_json::Value::Object(map), false) => {
            for field in fields {
                if let Some(v) = map.get(field) {
                    collect_text(v, &[], out, ranges);
                }
            }
        }
        (serde_json::Value::String(s), _) => {
            ranges.push((s.as_ptr(), out.len()..out.len() + s.len()));
            out.push_str(s);
            out.push('\n');
        }
        (serde_json::Value::Array(items), _) => {
            items.iter().for_each(|v| collect_text(v, &[], out, ranges));
        }
        (serde_json::Value::Object(map), true) => {
            map.values().for_each(|v| collect_text(v, &[], out, ranges));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config over one benchmark file.
    fn one(name: &str, path: PathBuf) -> Config {
        Config {
            benchmarks: vec![Benchmark {
                name: name.into(),
                path,
                fields: vec![],
            }],
            ..Default::default()
        }
    }

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/benchmarks")
            .join(name)
    }

    fn stage() -> Decontam {
        build(&Config {
            benchmarks: vec![
                Benchmark {
                    name: "gsm8k".into(),
                    path: data("gsm8k-test-head20.jsonl"),
                    fields: vec!["question".into()],
                },
                Benchmark {
                    name: "humaneval".into(),
                    path: data("humaneval-head5.jsonl"),
                    fields: vec![],
                },
                Benchmark {
                    name: "mmlu".into(),
                    path: data("mmlu-anatomy-test-head20.csv"),
                    fields: vec![],
                },
            ],
            ..Default::default()
        })
        .unwrap()
    }

    fn verdict(s: &Decontam, text: &str) -> (Verdict, Document) {
        let mut doc = Document::new("d", "s", text);
        let v = s.process(&mut doc, &mut StageCx::default()).unwrap();
        (v, doc)
    }

    #[test]
    fn a_leaked_question_is_caught_despite_case_punctuation_and_numbers() {
        let s = stage();
        assert_eq!(s.stats()[0].examples, 20);
        assert_eq!(s.stats()[1].examples, 5);
        assert_eq!(s.stats()[2].examples, 20);
        // GSM8K's first question, re-cased, re-punctuated and with other numbers, inside
        // a web page.
        let page = "Math homework help! JANET'S DUCKS LAY 20 EGGS PER DAY; she eats three for \
            breakfast every morning and bakes muffins for her friends every day with four. \
            Post your answer below.";
        let (v, doc) = verdict(&s, page);
        assert_eq!(v, Verdict::Drop(CONTAMINATED));
        assert_eq!(doc.meta.extra["decontam"]["benchmark"], "gsm8k");
        // The answer field was not indexed for GSM8K (fields = [question]).
        let (v, _) = verdict(&s, "The farmers market sells eggs. Ducks are birds.");
        assert_eq!(v, Verdict::Keep);
        // HumanEval code and MMLU choices are caught too.
        let code = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \
            \"\"\" Check if in given list of numbers, are any two numbers closer to each other than\n    \
            given threshold.";
        assert_eq!(verdict(&s, code).0, Verdict::Drop(CONTAMINATED));
        let mmlu = "A lesion causing compression of the facial nerve at the stylomastoid foramen \
            will cause ipsilateral paralysis of the facial muscles.";
        let (v, doc) = verdict(&s, mmlu);
        assert_eq!(v, Verdict::Drop(CONTAMINATED));
        assert_eq!(doc.meta.extra["decontam"]["benchmark"], "mmlu");
    }

    #[test]
    fn chinese_benchmarks_match_by_character_ngrams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zh.jsonl");
        std::fs::write(
            &path,
            "{\"question\": \"小明有五个苹果，他给了小红两个，然后又买了三个，现在他有几个苹果？\"}\n",
        )
        .unwrap();
        let s = build(&one("cmath", path)).unwrap();
        // Other punctuation and spacing; numerals as written in the benchmark.
        let page = "今天的练习题： 小明有五个苹果 他给了小红两个! 然后又买了三个 现在他有几个苹果 答案见下。";
        assert_eq!(verdict(&s, page).0, Verdict::Drop(CONTAMINATED));
        assert_eq!(
            verdict(&s, "小明今天去公园玩了，天气很好。").0,
            Verdict::Keep
        );
    }

    #[test]
    fn common_ngrams_are_not_evidence_and_bad_inputs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        // The same 13-gram boilerplate in 3 examples: with max 2 it is ignored.
        let boiler = "answer the following question with a single word and nothing else at all";
        let json = serde_json::json!({"examples": [
            {"input": format!("{boiler} what is red"), "target": "x"},
            {"input": format!("{boiler} what is blue"), "target": "y"},
            {"input": format!("{boiler} what is green"), "target": "z"},
        ]});
        std::fs::write(&path, json.to_string()).unwrap();
        let config = |max| Config {
            max_examples_per_ngram: max,
            ..one("bbh", path.clone())
        };
        let strict = build(&config(2)).unwrap();
        assert_eq!(strict.stats()[0].examples, 3, "{:?}", strict.stats());
        assert_eq!(verdict(&strict, boiler).0, Verdict::Keep);
        let loose = build(&config(3)).unwrap();
        assert_eq!(verdict(&loose, boiler).0, Verdict::Drop(CONTAMINATED));

        // A run of numbers is no evidence, even when a benchmark holds the same run.
        let numbers = dir.path().join("n.jsonl");
        let run = "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16";
        std::fs::write(&numbers, format!("{{\"q\": \"{run}\"}}\n")).unwrap();
        let s = build(&one("n", numbers)).unwrap();
        assert_eq!(s.stats()[0].too_short, 1);
        assert_eq!(verdict(&s, run).0, Verdict::Keep);

        let missing = one("x", dir.path().join("nope.jsonl"));
        let e = build(&missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("nope.jsonl"), "{e}");
    }

    /// Real review texts from tests/data, as hosts for planted questions.
    fn reviews() -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/jsonl/movie_reviews-sample.jsonl");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn gsm8k(config: Config) -> Decontam {
        let benchmarks = vec![Benchmark {
            name: "gsm8k".into(),
            path: data("gsm8k-test-head20.jsonl"),
            fields: vec!["question".into()],
        }];
        build(&Config {
            benchmarks,
            ..config
        })
        .unwrap()
    }

    /// Policy `remove_span` with its defaults.
    fn span() -> Config {
        Config {
            policy: Policy::RemoveSpan,
            ..Default::default()
        }
    }

    const JANET: &str = "Janet's ducks lay 16 eggs per day. She eats three for breakfast every \
        morning and bakes muffins for her friends every day with four. She sells the remainder \
        at the farmers' market daily for $2 per fresh duck egg.";

    #[test]
    fn remove_span_cuts_the_question_and_its_window_out_and_keeps_the_rest() {
        let s = gsm8k(span());
        let hosts = reviews();
        let (a, b) = (&hosts[0], &hosts[2]);
        let text = format!("{a}\n{JANET}\n{b}");
        let mut cx = StageCx::default();
        let mut doc = Document::new("d", "s", &text);
        assert_eq!(s.process(&mut doc, &mut cx).unwrap(), Verdict::Keep);
        // Nothing of the question is left, and no n-gram of the index either.
        assert!(!doc.text.contains("ducks"), "{}", doc.text);
        assert!(s.matches(&doc.text).is_empty());
        let info = &doc.meta.extra["decontam"];
        assert_eq!(info["pieces"], 2);
        let removed: Vec<(usize, usize)> = serde_json::from_value(info["removed"].clone()).unwrap();
        assert_eq!(removed.len(), 1);
        // The span is the question widened by 200 characters on each side (the matched
        // n-grams start at "janet" and end at "egg").
        let q = a.len() + 1;
        let q_end = q + JANET.len() - 1;
        assert_eq!(
            text[..removed[0].0].chars().count(),
            a.chars().count() + 1 - 200
        );
        assert_eq!(text[q_end..removed[0].1].chars().count(), 200);
        assert!(removed[0].0 < q && removed[0].1 > q_end);
        // The rest is the two pieces around it, joined by a blank line.
        let expected = format!(
            "{}\n\n{}",
            text[..removed[0].0].trim(),
            text[removed[0].1..].trim()
        );
        assert_eq!(doc.text, expected);
        assert_eq!(info["examples"][0], "gsm8k:gsm8k-test-head20.jsonl:1");
        let c = cx.take_counters();
        assert_eq!(c["edited"], 1);
        assert_eq!(c["benchmark:gsm8k"], 1);
        assert_eq!(c["example:gsm8k:gsm8k-test-head20.jsonl:1"], 1);
        assert_eq!(
            c.keys().filter(|k| k.starts_with("ngram:gsm8k:")).count(),
            1
        );
        // The drop policy drops the same document.
        let drop = gsm8k(Config::default());
        let mut doc = Document::new("d", "s", &text);
        let v = drop.process(&mut doc, &mut StageCx::default()).unwrap();
        assert_eq!(v, Verdict::Drop(CONTAMINATED));
    }

    #[test]
    fn remove_span_drops_documents_cut_too_often_or_with_too_little_left() {
        let hosts = reviews();
        // Eleven copies of the question between stretches of real text: 12 pieces.
        let mut text = String::new();
        for h in &hosts[..11] {
            text.extend(h.chars().take(1000));
            text.push('\n');
            text.push_str(JANET);
            text.push('\n');
        }
        text.push_str(&hosts[11]);
        let s = gsm8k(span());
        let mut doc = Document::new("d", "s", &text);
        let v = s.process(&mut doc, &mut StageCx::default()).unwrap();
        assert_eq!(v, Verdict::Drop(CONTAMINATED_SPLIT));
        assert_eq!(doc.meta.extra["decontam"]["pieces"], 12);
        // Allowed 12 pieces, the document stays, with no copy of the question.
        let loose = gsm8k(Config {
            max_pieces: 12,
            ..span()
        });
        let mut doc = Document::new("d", "s", &text);
        let v = loose.process(&mut doc, &mut StageCx::default()).unwrap();
        assert_eq!(v, Verdict::Keep);
        assert!(!doc.text.contains("ducks") && loose.matches(&doc.text).is_empty());
        // Short text around the question: nothing long enough is left.
        let mut doc = Document::new("d", "s", format!("Homework: {JANET} Thanks!"));
        let v = s.process(&mut doc, &mut StageCx::default()).unwrap();
        assert_eq!(v, Verdict::Drop(CONTAMINATED_REMAINDER));
        assert_eq!(doc.meta.extra["decontam"]["pieces"], 0);
        // Clean text is left alone.
        let mut doc = Document::new("d", "s", &hosts[3]);
        let v = s.process(&mut doc, &mut StageCx::default()).unwrap();
        assert_eq!((v, doc.text.as_str()), (Verdict::Keep, hosts[3].as_str()));
    }

    #[test]
    fn remove_span_finds_spans_in_chinese_and_full_width_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zh.jsonl");
        let q = "小明有五个苹果，他给了小红两个，然后又买了三个，现在他有几个苹果？";
        std::fs::write(&path, format!("{{\"question\": \"{q}\"}}\n")).unwrap();
        let s = build(&Config {
            policy: Policy::RemoveSpan,
            window: 3,
            min_piece_chars: 5,
            ..one("cmath", path)
        })
        .unwrap();
        let before = "今天的天气很好，我们去公园散步。";
        let after = "老师说答案在下一页，请大家自己先算一算。";
        let planted = "小明有五个苹果 他给了小红两个! 然后又买了三个 现在他有几个苹果";
        let mut doc = Document::new("d", "s", format!("{before}{planted}{after}"));
        assert_eq!(
            s.process(&mut doc, &mut StageCx::default()).unwrap(),
            Verdict::Keep
        );
        // Three characters of window on each side go with the question.
        let b: String = before.chars().take(before.chars().count() - 3).collect();
        let a: String = after.chars().skip(3).collect();
        assert_eq!(doc.text, format!("{b}\n\n{a}"));
    }

    /// An MMLU question of 9 tokens (tests/data/benchmarks/mmlu-anatomy-test-head20.csv).
    const ECTO: &str = "Which of the following structures is derived from ectomesenchyme?";

    #[test]
    fn short_questions_are_matched_whole() {
        let s = stage();
        let host = &reviews()[0];
        let page = format!(
            "{host}\nWHICH OF THE FOLLOWING STRUCTURES IS DERIVED FROM ECTOMESENCHYME\n{host}"
        );
        let (v, d) = verdict(&s, &page);
        assert_eq!(v, Verdict::Drop(CONTAMINATED), "{:?}", d.meta.extra);
        assert_eq!(
            d.meta.extra["decontam"]["examples"][0],
            "mmlu:mmlu-anatomy-test-head20.csv:4"
        );
        // Only the whole field: a part of it is no evidence.
        let part = format!("{host}\nWhich of the following structures is derived from\n{host}");
        assert_eq!(verdict(&s, &part).0, Verdict::Keep);
        // 7 tokens: under the default 8.
        let short = format!("{host}\nThe palatine processes begin to fuse at\n{host}");
        assert_eq!(verdict(&s, &short).0, Verdict::Keep);
        let mmlu = |short_min_tokens| {
            build(&Config {
                benchmarks: vec![Benchmark {
                    name: "mmlu".into(),
                    path: data("mmlu-anatomy-test-head20.csv"),
                    fields: vec![],
                }],
                short_min_tokens,
                ..Default::default()
            })
            .unwrap()
        };
        assert_eq!(verdict(&mmlu(0), &page).0, Verdict::Keep);
        assert_eq!(verdict(&mmlu(7), &short).0, Verdict::Drop(CONTAMINATED));
        assert_eq!(mmlu(0).stats()[0].short_fields, 0);
        assert!(mmlu(8).stats()[0].short_fields >= 5);
        // A field in more examples than max_examples_per_ngram is too common.
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        let q = "which of the following is a bone of the hand";
        std::fs::write(
            &csv,
            format!(
                "{q},a,b\n{q},c,d\n17,another question of nine tokens about the arm,\
                 a choice of nine tokens about the leg here,f\n"
            ),
        )
        .unwrap();
        let common = |max| {
            build(&Config {
                max_examples_per_ngram: max,
                ..one("t", csv.clone())
            })
            .unwrap()
        };
        assert_eq!(verdict(&common(1), &format!("{host} {q}")).0, Verdict::Keep);
        assert_eq!(
            verdict(&common(2), &format!("{host} {q}")).0,
            Verdict::Drop(CONTAMINATED)
        );
        // The question, not the number before it, and not a choice.
        assert_eq!(
            verdict(
                &common(1),
                &format!("{host} another question of nine tokens about the arm")
            )
            .0,
            Verdict::Drop(CONTAMINATED)
        );
        assert_eq!(
            verdict(
                &common(1),
                &format!("{host} a choice of nine tokens about the leg here")
            )
            .0,
            Verdict::Keep
        );
    }

    #[test]
    fn index_files_round_trip_and_refuse_damage_and_other_settings() {
        let s = stage();
        let bytes = s.index().to_bytes();
        // Deterministic: the same benchmarks give the same bytes.
        assert_eq!(stage().index().to_bytes(), bytes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.index");
        std::fs::write(&path, &bytes).unwrap();
        let loaded = build(&Config {
            index: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(loaded.index().len(), s.index().len());
        assert!(s.index().short_len() > 0);
        assert_eq!(loaded.index().short_len(), s.index().short_len());
        assert_eq!(loaded.index().short_lens, s.index().short_lens);
        assert_eq!(loaded.stats(), s.stats());
        for text in reviews().iter().chain([&format!("x {ECTO} y")]) {
            assert_eq!(
                scan_hits(loaded.index(), text),
                scan_hits(s.index(), text),
                "{text}"
            );
        }
        let page = "JANET'S DUCKS LAY 20 EGGS PER DAY; she eats three for breakfast every \
            morning and bakes muffins for her friends every day with four.";
        let (v1, d1) = verdict(&s, page);
        let (v2, d2) = verdict(&loaded, page);
        assert_eq!((v1, &d1.meta.extra), (v2, &d2.meta.extra));
        assert_eq!(v2, Verdict::Drop(CONTAMINATED));

        let err = |bytes: &[u8], config: Config| {
            std::fs::write(&path, bytes).unwrap();
            build(&Config {
                index: Some(path.clone()),
                ..config
            })
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        let mut damaged = bytes.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 1;
        let e = err(&damaged, Config::default());
        assert!(e.contains("bench.index") && e.contains("checksum"), "{e}");
        let e = err(&bytes[..bytes.len() - 5], Config::default());
        assert!(e.contains("truncated"), "{e}");
        let e = err(
            &bytes,
            Config {
                n: 8,
                ..Default::default()
            },
        );
        assert!(e.contains("n = 13") && e.contains("n = 8"), "{e}");
        let e = err(b"{\"not\": \"an index\"}", Config::default());
        assert!(e.contains("bench.index"), "{e}");
        let e = err(&bytes, one("x", data("gsm8k-test-head20.jsonl")));
        assert!(e.contains("not both"), "{e}");
        // Another key or hashing changes the fingerprint; n and the limit are in it.
        let fp = |n, max, short| {
            index_fingerprint(&IndexSettings {
                n,
                max_examples_per_ngram: max,
                short_min_tokens: short,
            })
        };
        assert_ne!(fp(13, 10, 8), fp(12, 10, 8));
        assert_ne!(fp(13, 10, 8), fp(13, 9, 8));
        assert_ne!(fp(13, 10, 8), fp(13, 10, 7));
    }

    #[test]
    fn examples_are_labelled_by_file_and_record() {
        let s = build(&one("all", data(""))).unwrap();
        let st = &s.stats()[0];
        let files: Vec<&str> = st.files.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "gsm8k-test-head20.jsonl",
                "humaneval-head5.jsonl",
                "mmlu-anatomy-test-head20.csv"
            ]
        );
        assert_eq!(st.label(0), "gsm8k-test-head20.jsonl:1");
        assert_eq!(st.label(19), "gsm8k-test-head20.jsonl:20");
        assert_eq!(st.label(20), "humaneval-head5.jsonl:1");
        assert_eq!(st.label(44), "mmlu-anatomy-test-head20.csv:20");
    }

    /// The hits of the scan, made the plain way: every n-gram and every run of each
    /// whole-field length looked up (tokens collected, then n-grams).
    fn reference_hits(index: &Index, text: &str) -> Vec<Hit> {
        let mut key = String::new();
        dedup_key(text, &mut key);
        let n = index.n();
        let mut hits: Vec<Hit> = evidence_ngrams(&key, n)
            .into_iter()
            .filter_map(|(i, h)| {
                index.map.get(&h).map(|e| Hit {
                    at: i,
                    len: n,
                    key: h,
                    entry: *e,
                })
            })
            .collect();
        for &len in &index.short_lens {
            for (i, h) in evidence_ngrams(&key, len) {
                if let Some((e, _)) = index.short.get(&short_key(h, len)) {
                    hits.push(Hit {
                        at: i,
                        len,
                        key: short_key(h, len),
                        entry: *e,
                    });
                }
            }
        }
        hits.sort_by_key(|h| (h.at, h.len));
        hits
    }

    fn scan_hits(index: &Index, text: &str) -> Vec<Hit> {
        let mut scratch = Scratch::default();
        dedup_key(text, &mut scratch.key);
        index.hits(&mut scratch);
        scratch.hits
    }

    #[test]
    fn han_ideographs_are_letters() {
        assert!(('\u{4E00}'..='\u{9FFF}').all(char::is_alphabetic));
        for c in ['a', '0', ' ', 'é', '\u{301}', 'か', '\u{3400}', '中'] {
            assert_eq!(is_letter(c), c.is_alphabetic(), "{c:?}");
        }
    }

    #[test]
    fn prefilter_keeps_every_indexed_ngram_and_rejects_most_others() {
        let keys: Vec<u64> = (0..20_000u64)
            .map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_be_bytes()))
            .collect();
        let filter = Prefilter::new(keys.iter());
        assert!(keys.iter().all(|&h| filter.may_contain(h)));
        let others = (0..100_000u64)
            .map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()))
            .filter(|&h| filter.may_contain(h) && !keys.contains(&h))
            .count();
        assert!(others < 5_000, "{others} false positives of 100000");
        let back = Prefilter::from_words(filter.words.clone()).unwrap();
        assert!(keys.iter().all(|&h| back.may_contain(h)));
        assert!(Prefilter::from_words(vec![0; 3]).is_none());
        // An empty index and a one-word filter work too.
        let empty = Prefilter::new([].iter());
        assert!(!empty.may_contain(7));
        let one = Prefilter::new([7u64].iter());
        assert!(one.may_contain(7));
    }

    #[test]
    fn the_scan_finds_what_the_index_builder_would() {
        let s = stage();
        let mut texts: Vec<String> = reviews();
        texts.push(format!(
            "{} {JANET} ｊａｎｅｔ 小明有五个苹果 ǅemal İstanbul",
            reviews()[1]
        ));
        texts.push("def has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \
            \"\"\" Check if in given list of numbers, are any two numbers closer to each other than\n    \
            given threshold. café ﬁ Ｔhe 12 34 — ß"
            .into());
        texts.push(String::new());
        texts.push("  \u{3000}中文\u{301}e\u{301} かな 한국어 ١٢٣ x".into());
        texts.push(format!("{ECTO} {ECTO} which of the following {ECTO}"));
        for text in &texts {
            assert_eq!(
                scan_hits(s.index(), text),
                reference_hits(s.index(), text),
                "{text}"
            );
        }
        assert!(!scan_hits(s.index(), &texts[texts.len() - 5]).is_empty());
        assert_eq!(scan_hits(s.index(), &texts[texts.len() - 1]).len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn token_hashes_agree_with_key_tokens(text in "(\\PC|[\u{FF01}-\u{FF5E}\u{3000}-\u{3011}\u{300}-\u{36F}\u{AC00}-\u{AC10}\u{3040}-\u{30FF}e中 ,.0-9])*") {
            let mut key = String::new();
            dedup_key(&text, &mut key);
            let (mut ids, mut letters) = (Vec::new(), Vec::new());
            token_hashes(&key, &mut ids, &mut letters);
            let tokens: Vec<&str> = key_tokens(&key).collect();
            let expect: Vec<u64> = tokens.iter().map(|t| word_hash(t)).collect();
            proptest::prop_assert_eq!(&ids, &expect);
            let mut count = 0;
            let mut expect_letters = vec![0u32];
            for t in &tokens {
                count += u32::from(t.chars().any(char::is_alphabetic));
                expect_letters.push(count);
            }
            proptest::prop_assert_eq!(&letters, &expect_letters);
            // The raw text too: the tokenizer must not depend on the key's shape.
            token_hashes(&text, &mut ids, &mut letters);
            let expect: Vec<u64> = key_tokens(&text).map(word_hash).collect();
            proptest::prop_assert_eq!(ids, expect);
        }
    }
}
