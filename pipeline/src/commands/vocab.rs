//! `corpus vocab build` and `corpus vocab compare`: extend cl100k_base into a Qwen-style
//! vocabulary on corpus documents, and measure bytes per token of vocabularies on text.
//!
//! Documents are read with the project's sources (JSONL or Parquet, plain or compressed),
//! `text` is the text and `lang` (a top-level field or `meta.lang`) the language. A
//! damaged record is an error naming the file and line: a vocabulary recipe must not
//! silently train on less.
//!
//! **Held-out split.** A document is held out when the xxh3-64 hash of its text, as a
//! fraction of 2^64, is below `--holdout`. `build --holdout F` trains on the other
//! documents, `compare --holdout F` measures on the held-out ones only, so the same `F`
//! gives disjoint train and test sets of the same files.
//!
//! **Output.** The vocabulary is written in tiktoken's format (`base64(token) rank` per
//! line; gzip-compressed when the name ends in `.gz`), next to a sidecar JSON
//! ([`sidecar_path`]) with the pattern, the special tokens (numbered after the ordinary
//! tokens as Qwen does), sizes, SHA-256 hashes, the training settings, the corpus files
//! and the command. Both are written atomically. Same corpus and settings give the same
//! bytes, for any thread count.
//!
//! **Patterns.** `--pattern qwen` and `cl100k` are [`corpus_models::tokenizer`]'s
//! patterns, the ones `corpus tokens` encodes with; `cl100k` is tiktoken's current
//! (possessive) form, which differs from the form tiktoken first published only on text
//! that ends in a run of whitespace with a line break followed by other whitespace
//! (`"a\n "`: one piece `"\n "`, not `"\n"`, `" "`), and each document is cut as a
//! whole text, so training sees the pieces that encoding makes. Vocabularies are encoded
//! for `compare` with the project's [`Tokenizer`], with the pattern of their sidecar.

use crate::io::AtomicFile;
use crate::progress::bar;
use crate::source::{self, Format, InputConfig, SourceError};
use corpus_models::tokenizer::{
    self, Pattern, QWEN_EXTRA_TOKENS, Rank, Tokenizer, TokenizerError, VocabSource,
};
use corpus_models::vocab_build::{
    self, QWEN_ORDINARY_TOKENS, TrainOptions, VocabError, Vocabulary, WordCounter,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What stopped a vocabulary command.
#[derive(Debug, thiserror::Error)]
pub enum VocabCmdError {
    /// Bad options or input paths.
    #[error("{0}")]
    Usage(String),
    /// An input could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Training, loading or encoding failed.
    #[error(transparent)]
    Vocab(#[from] VocabError),
    /// Loading a vocabulary or encoding a document failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Writing an output failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl VocabCmdError {
    /// True for errors of the command line or input paths rather than of a run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            VocabCmdError::Usage(_) | VocabCmdError::Source(SourceError::Config(_))
        )
    }
}

/// One document of a corpus, as far as vocabularies care.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The document id (the input's, or `<file stem>/<line>`).
    pub id: String,
    /// The text.
    pub text: String,
    /// Its language (`und` when the input has none).
    pub lang: String,
}

/// Whether a document belongs to the held-out fraction `fraction` (0..=1), by the xxh3-64
/// hash of its text.
pub fn is_heldout(text: &str, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let h = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
    (h as f64) < fraction * 18_446_744_073_709_551_616.0
}

/// Expands files, directories and globs into a sorted list of input files.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, VocabCmdError> {
    let paths: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let files = source::expand_documents(&paths, "is not supported here; extract the text first")?;
    Ok(files.into_iter().map(|f| f.path).collect())
}

/// Reads every intact document of `path` (a damaged record is skipped with a warning).
pub fn read_docs(path: &Path) -> Result<Vec<Doc>, VocabCmdError> {
    let config = InputConfig::default();
    let format = Format::detect(path).unwrap_or(Format::Jsonl);
    let file = source::InputFile {
        index: 0,
        path: path.to_path_buf(),
        format,
    };
    let mut src = source::open(&file, &config)?;
    let mut docs = Vec::new();
    while let Some(d) = src.next_intact(&mut source::warn_skipped)? {
        let lang = d
            .meta
            .lang
            .clone()
            .or_else(|| {
                d.meta
                    .extra
                    .get("lang")
                    .and_then(|v| v.as_str())
                    .map(String::from)
            })
            .unwrap_or_else(|| "und".into());
        docs.push(Doc {
            id: d.id,
            text: d.text,
            lang,
        });
    }
    Ok(docs)
}

/// Options of `corpus vocab build`.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Corpus files, directories or globs.
    pub corpus: Vec<PathBuf>,
    /// The vocabulary file to write (gzip when it ends in `.gz`).
    pub output: PathBuf,
    /// Pattern name (`qwen`, `cl100k`) or regex.
    pub pattern: String,
    /// Target count of ordinary tokens.
    pub vocab_size: usize,
    /// Stop below this many occurrences.
    pub min_frequency: u64,
    /// Longest new token in bytes; 0 for no limit.
    pub max_token_bytes: usize,
    /// Fraction of documents held out (not trained on).
    pub holdout: f64,
    /// Count the documents of a language this many times (others once); 0 drops them.
    pub lang_weights: Vec<(String, u64)>,
    /// Reserved `<|extra_N|>` special tokens.
    pub extra_tokens: u32,
    /// Worker threads for reading and counting (0: one per core).
    pub threads: usize,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// The command line, recorded in the sidecar.
    pub command: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            corpus: Vec::new(),
            output: PathBuf::new(),
            pattern: "qwen".into(),
            vocab_size: QWEN_ORDINARY_TOKENS,
            min_frequency: 2,
            max_token_bytes: 0,
            holdout: 0.0,
            lang_weights: Vec::new(),
            extra_tokens: QWEN_EXTRA_TOKENS,
            threads: 0,
            progress: false,
            command: String::new(),
        }
    }
}

/// The sidecar JSON written next to a vocabulary.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Sidecar {
    /// Always `tiktoken`.
    pub format: String,
    /// File name of the vocabulary.
    pub file: String,
    /// SHA-256 of the vocabulary file as written (compressed when `.gz`).
    pub sha256: String,
    /// SHA-256 of the uncompressed tiktoken text.
    pub tiktoken_sha256: String,
    /// Pattern name as given (`qwen`, `cl100k` or `custom`).
    pub pattern_name: String,
    /// The pre-tokenization regex.
    pub pattern: String,
    /// Ordinary (BPE) tokens.
    pub ordinary_tokens: usize,
    /// Special tokens with their ids, numbered after the ordinary tokens.
    pub special_tokens: BTreeMap<String, u32>,
    /// Ordinary plus special tokens.
    pub n_vocab: usize,
    /// Base vocabulary.
    pub base: String,
    /// Tokens kept from the base.
    pub base_tokens: usize,
    /// Multi-digit number tokens removed from the base.
    pub removed_multi_digit: usize,
    /// Tokens learned on the corpus.
    pub new_tokens: usize,
    /// How it was trained.
    pub training: TrainingInfo,
    /// The command that built it.
    pub command: String,
}

/// Training settings and counts, for the sidecar.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct TrainingInfo {
    /// Requested ordinary tokens.
    pub target_size: usize,
    /// Minimum occurrences of a new token.
    pub min_frequency: u64,
    /// Longest new token in bytes (0: no limit).
    pub max_token_bytes: usize,
    /// Fraction of documents held out.
    pub holdout: f64,
    /// Per-language count multipliers.
    pub lang_weights: BTreeMap<String, u64>,
    /// Why training stopped (`size`, `min_frequency`, `no_candidates`).
    pub stop: String,
    /// Occurrences of the last token learned.
    pub last_count: u64,
    /// Documents trained on (after the hold-out).
    pub documents: u64,
    /// Bytes of text trained on, per language (before weights).
    pub bytes_by_lang: BTreeMap<String, u64>,
    /// Distinct pre-tokens of two or more base tokens.
    pub distinct_words: usize,
    /// Training words whose trained segmentation differs from tiktoken's encoding.
    pub mismatched_words: usize,
    /// Corpus files (name and SHA-256), in input order.
    pub corpus: Vec<(String, String)>,
}

/// What `build` did, for the terminal.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    /// The sidecar as written.
    pub sidecar: Sidecar,
    /// Where it was written.
    pub sidecar_path: PathBuf,
    /// Documents held out.
    pub heldout_docs: u64,
    /// Documents (of a sample of training documents) whose tiktoken encoding with the
    /// new vocabulary differs from the trained segmentation, and the sample size.
    pub check: (u64, u64),
    /// Time reading, counting, training.
    pub times: [Duration; 3],
}

impl BuildSummary {
    /// The summary `corpus vocab build` prints; `output` is the vocabulary file.
    pub fn to_text(&self, output: &Path) -> String {
        let side = &self.sidecar;
        let t = &side.training;
        format!(
            "corpus vocab build: {} documents trained on ({} held out), {} distinct words; \
             read {:.1}s, counted {:.1}s, trained {:.1}s\n  \
             {} ordinary tokens = {} of cl100k_base ({} multi-digit tokens removed) + {} new \
             (stopped: {}, last count {}); {} special tokens; n_vocab {}\n  \
             tiktoken check: {} of {} training words and {} of {} sampled documents \
             encode differently from the trained segmentation\n  \
             wrote {} (sha256 {}) and {}\n",
            t.documents,
            self.heldout_docs,
            t.distinct_words,
            self.times[0].as_secs_f64(),
            self.times[1].as_secs_f64(),
            self.times[2].as_secs_f64(),
            side.ordinary_tokens,
            side.base_tokens,
            side.removed_multi_digit,
            side.new_tokens,
            t.stop,
            t.last_count,
            side.special_tokens.len(),
            side.n_vocab,
            t.mismatched_words,
            t.distinct_words,
            self.check.0,
            self.check.1,
            output.display(),
            side.sha256,
            self.sidecar_path.display()
        )
    }

    /// True when tiktoken encodes the training words and the sampled documents as
    /// training segmented them (anything else is a bug).
    pub fn reproduces_training(&self) -> bool {
        self.sidecar.training.mismatched_words == 0 && self.check.0 == 0
    }
}

/// Checks `--base` (only cl100k is supported) and parses `--weight LANG=N` specs.
pub fn parse_base_and_weights(
    base: &str,
    weights: &[String],
) -> Result<Vec<(String, u64)>, VocabCmdError> {
    if base != "cl100k" && base != "cl100k_base" {
        return Err(VocabCmdError::Usage(format!(
            "--base {base}: only cl100k is supported"
        )));
    }
    weights
        .iter()
        .map(|spec| {
            spec.split_once('=')
                .and_then(|(l, w)| Some((l.to_string(), w.parse::<u64>().ok()?)))
                .ok_or_else(|| {
                    VocabCmdError::Usage(format!(
                        "--weight {spec}: expected LANG=N with a whole number N"
                    ))
                })
        })
        .collect()
}

/// The sidecar of a vocabulary file: `NAME.tiktoken[.gz]` -> `NAME.json`.
pub fn sidecar_path(vocab: &Path) -> PathBuf {
    let name = crate::io::file_name(vocab);
    let stem = name.strip_suffix(".gz").unwrap_or(&name);
    let stem = stem.strip_suffix(".tiktoken").unwrap_or(stem);
    vocab.with_file_name(format!("{stem}.json"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds a vocabulary as [`BuildOptions`] say and writes it with its sidecar.
pub fn build(options: &BuildOptions) -> Result<BuildSummary, VocabCmdError> {
    if !(0.0..1.0).contains(&options.holdout) {
        return Err(VocabCmdError::Usage(format!(
            "--holdout {} is not in [0, 1)",
            options.holdout
        )));
    }
    let base = vocab_build::cl100k_without_multi_digit();
    if options.vocab_size < base.tokens.len() {
        return Err(VocabCmdError::Usage(format!(
            "--size {} is smaller than the base vocabulary ({} tokens)",
            options.vocab_size,
            base.tokens.len()
        )));
    }
    let pattern_spec = Pattern::parse(&options.pattern);
    let pattern = pattern_spec.regex().to_string();
    WordCounter::new(&pattern)?; // fail early on a bad pattern
    let threads = crate::parallel::threads(options.threads);
    let weights: BTreeMap<String, u64> = options.lang_weights.iter().cloned().collect();

    // Read.
    let t0 = Instant::now();
    let files = expand(&options.corpus)?;
    let mut corpus_info = Vec::new();
    let mut train_docs: Vec<(Doc, u64)> = Vec::new();
    let mut heldout_docs = 0u64;
    let mut bytes_by_lang: BTreeMap<String, u64> = BTreeMap::new();
    for path in &files {
        let raw = std::fs::read(path).map_err(|e| SourceError::Open {
            path: path.clone(),
            source: e,
        })?;
        let name = crate::io::file_name(path);
        corpus_info.push((name, sha256_hex(&raw)));
        drop(raw);
        for doc in read_docs(path)? {
            if is_heldout(&doc.text, options.holdout) {
                heldout_docs += 1;
                continue;
            }
            let w = weights.get(&doc.lang).copied().unwrap_or(1);
            if w == 0 {
                continue;
            }
            *bytes_by_lang.entry(doc.lang.clone()).or_insert(0) += doc.text.len() as u64;
            train_docs.push((doc, w));
        }
    }
    if train_docs.is_empty() {
        return Err(VocabCmdError::Usage(
            "no training documents (all held out, weighted 0 or empty input)".into(),
        ));
    }
    let t_read = t0.elapsed();

    // Count pre-tokens, in parallel; the merged counts do not depend on the split.
    let t1 = Instant::now();
    let total: u64 = train_docs.iter().map(|(d, _)| d.text.len() as u64).sum();
    let pb = bar(
        options.progress,
        total,
        "counting pre-tokens [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    );
    let counters = crate::parallel::map_chunks(&train_docs, threads, |_, part| {
        let mut c = WordCounter::new(&pattern)?;
        for (d, w) in part {
            c.add(&d.text, *w)
                .map_err(|e| VocabError::Invalid(format!("document {}: {e}", d.id)))?;
            pb.inc(d.text.len() as u64);
        }
        Ok::<_, VocabError>(c)
    });
    pb.finish_and_clear();
    let mut counter = WordCounter::new(&pattern)?;
    for c in counters {
        counter.merge(c?);
    }
    let words = counter.into_counts();
    let t_count = t1.elapsed();

    // Train.
    let t2 = Instant::now();
    let train_options = TrainOptions {
        vocab_size: options.vocab_size,
        min_frequency: options.min_frequency,
        max_token_bytes: options.max_token_bytes,
    };
    let wanted = options.vocab_size - base.tokens.len();
    let pb = bar(
        options.progress,
        wanted as u64,
        "training [{bar:30}] {pos}/{len} tokens ({per_sec}, {eta}) {msg}",
    );
    let trained = vocab_build::train(&base.tokens, words, &train_options, &mut |p| {
        pb.set_position(p.added as u64);
        pb.set_message(format!("last count {}", p.last_count));
    })?;
    pb.finish_and_clear();
    let t_train = t2.elapsed();

    // Check the tokenizer's encoding of a sample of training documents against the
    // trained segmentation of their pre-tokens (the training words themselves were
    // checked against tiktoken's merge function: `mismatched_words`).
    let tokenizer =
        trained
            .vocab
            .tokenizer(VocabSource::File(options.output.clone()), &pattern_spec, 0)?;
    let regex = fancy_regex::Regex::new(&pattern)
        .map_err(|e| VocabCmdError::Vocab(VocabError::Pattern(e.to_string())))?;
    let ranks = trained.vocab.ranks();
    let (mut sample, mut differ) = (0u64, 0u64);
    for (doc, _) in train_docs.iter().step_by(50) {
        sample += 1;
        let mut expected: Vec<u32> = Vec::new();
        for m in regex.find_iter(&doc.text) {
            let piece = m
                .map_err(|e| VocabCmdError::Vocab(VocabError::Pattern(e.to_string())))?
                .as_str()
                .as_bytes();
            match trained.segmentation(piece) {
                Some(toks) => expected.extend_from_slice(toks),
                None => match ranks.get(piece) {
                    Some(&id) => expected.push(id),
                    // Every pre-token of a training document is a training word.
                    None => expected.push(u32::MAX),
                },
            }
        }
        if tokenizer.encode(&doc.text)? != expected {
            differ += 1;
        }
    }

    // Write.
    let gzip = options
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let text = trained.vocab.to_tiktoken();
    let file_bytes = if gzip {
        trained.vocab.to_tiktoken_gz()
    } else {
        text.clone()
    };
    let ordinary = trained.vocab.len();
    let special = tokenizer::special_tokens(ordinary as Rank, options.extra_tokens);
    let pattern_name = match &pattern_spec {
        Pattern::Regex(_) => "custom".into(),
        builtin => builtin.name().to_string(),
    };
    let sidecar = Sidecar {
        format: "tiktoken".into(),
        file: crate::io::file_name(&options.output),
        sha256: sha256_hex(&file_bytes),
        tiktoken_sha256: sha256_hex(&text),
        pattern_name,
        pattern: pattern.clone(),
        ordinary_tokens: ordinary,
        n_vocab: ordinary + special.len(),
        special_tokens: special.into_iter().collect(),
        base: "cl100k_base".into(),
        base_tokens: trained.base_len,
        removed_multi_digit: base.removed.len(),
        new_tokens: ordinary - trained.base_len,
        training: TrainingInfo {
            target_size: options.vocab_size,
            min_frequency: options.min_frequency,
            max_token_bytes: options.max_token_bytes,
            holdout: options.holdout,
            lang_weights: weights,
            stop: trained.stop.as_str().into(),
            last_count: trained.counts.last().copied().unwrap_or(0),
            documents: train_docs.len() as u64,
            bytes_by_lang,
            distinct_words: trained.words,
            mismatched_words: trained.mismatched_words,
            corpus: corpus_info,
        },
        command: options.command.clone(),
    };
    let sidecar_path = sidecar_path(&options.output);
    let mut json = serde_json::to_string_pretty(&sidecar).expect("serializable");
    json.push('\n');
    AtomicFile::write_all(&options.output, &file_bytes).map_err(|e| VocabCmdError::Write {
        path: options.output.clone(),
        source: e,
    })?;
    AtomicFile::write_all(&sidecar_path, json.as_bytes()).map_err(|e| VocabCmdError::Write {
        path: sidecar_path.clone(),
        source: e,
    })?;
    Ok(BuildSummary {
        sidecar,
        sidecar_path,
        heldout_docs,
        check: (differ, sample),
        times: [t_read, t_count, t_train],
    })
}

/// A vocabulary to compare: a label and its tokenizer.
#[derive(Clone)]
pub struct Encoder {
    /// Name in reports.
    pub label: String,
    /// Ordinary tokens.
    pub ordinary_tokens: usize,
    /// The pre-tokenization pattern.
    pub pattern: Pattern,
    tokenizer: Tokenizer,
}

impl Encoder {
    /// Opens `spec`: `cl100k` (the built-in cl100k_base with its pattern), or
    /// `[LABEL=]PATH` of a tiktoken file (plain or gzip) whose pattern is taken from its
    /// sidecar, else `default_pattern` (`qwen`, `cl100k` or a regex).
    pub fn open(spec: &str, default_pattern: &str) -> Result<Encoder, VocabCmdError> {
        if VocabSource::parse(spec) == VocabSource::Cl100k {
            let tokenizer = Tokenizer::load(&VocabSource::Cl100k, &Pattern::Cl100k, 0)?;
            return Ok(Encoder {
                label: "cl100k_base".into(),
                ordinary_tokens: tokenizer.n_tokens(),
                pattern: Pattern::Cl100k,
                tokenizer,
            });
        }
        let (label, path) = match spec.split_once('=') {
            Some((l, p)) if !Path::new(spec).exists() => (l.to_string(), PathBuf::from(p)),
            _ => {
                let p = PathBuf::from(spec);
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| spec.to_string());
                (name, p)
            }
        };
        let vocab = Vocabulary::load(&path)?;
        let side = sidecar_path(&path);
        let pattern = match std::fs::read(&side) {
            Ok(bytes) => {
                let s: Sidecar = serde_json::from_slice(&bytes).map_err(|e| {
                    VocabCmdError::Usage(format!(
                        "{}: not a vocabulary sidecar: {e}",
                        side.display()
                    ))
                })?;
                Pattern::from_regex(&s.pattern)
            }
            Err(_) => Pattern::parse(default_pattern),
        };
        let tokenizer = vocab.tokenizer(VocabSource::File(path), &pattern, 0)?;
        Ok(Encoder {
            label,
            ordinary_tokens: vocab.len(),
            pattern,
            tokenizer,
        })
    }

    /// Tokens of `text` (no special tokens).
    pub fn count(&self, text: &str) -> Result<usize, TokenizerError> {
        Ok(self.tokenizer.encode(text)?.len())
    }
}

/// Counts of one language.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LangRow {
    /// Language.
    pub lang: String,
    /// Documents.
    pub docs: u64,
    /// Bytes of UTF-8 text.
    pub bytes: u64,
    /// Tokens, one per encoder, in the order given.
    pub tokens: Vec<u64>,
}

/// Result of `compare`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    /// Encoder labels.
    pub vocabs: Vec<String>,
    /// Ordinary tokens of each encoder.
    pub sizes: Vec<usize>,
    /// The held-out fraction measured on (0: all documents).
    pub holdout: f64,
    /// One row per language, sorted by language.
    pub rows: Vec<LangRow>,
}

/// Counts bytes and tokens per language of the documents of `inputs` (only held-out
/// documents when `holdout` > 0; only the languages `langs` unless empty) for each
/// encoder.
pub fn compare(
    encoders: &[Encoder],
    inputs: &[PathBuf],
    holdout: f64,
    langs: &[String],
    threads: usize,
) -> Result<Comparison, VocabCmdError> {
    let files = expand(inputs)?;
    let mut docs = Vec::new();
    for f in &files {
        docs.extend(read_docs(f)?.into_iter().filter(|d| {
            (holdout <= 0.0 || is_heldout(&d.text, holdout))
                && (langs.is_empty() || langs.contains(&d.lang))
        }));
    }
    let parts = crate::parallel::map_chunks(&docs, crate::parallel::threads(threads), |_, part| {
        // A clone per thread: tokenizers should not share their regex.
        let encoders: Vec<Encoder> = encoders.iter().map(Encoder::clone).collect();
        let mut rows: BTreeMap<String, LangRow> = BTreeMap::new();
        for d in part {
            let row = rows.entry(d.lang.clone()).or_insert_with(|| LangRow {
                lang: d.lang.clone(),
                tokens: vec![0; encoders.len()],
                ..Default::default()
            });
            row.docs += 1;
            row.bytes += d.text.len() as u64;
            for (i, e) in encoders.iter().enumerate() {
                let n = e
                    .count(&d.text)
                    .map_err(|e| VocabError::Invalid(format!("document {}: {e}", d.id)))?;
                row.tokens[i] += n as u64;
            }
        }
        Ok::<_, VocabCmdError>(rows)
    });
    let mut rows: BTreeMap<String, LangRow> = BTreeMap::new();
    for part in parts {
        for (lang, r) in part? {
            let row = rows.entry(lang).or_insert_with(|| LangRow {
                lang: r.lang.clone(),
                tokens: vec![0; encoders.len()],
                ..Default::default()
            });
            row.docs += r.docs;
            row.bytes += r.bytes;
            for (a, b) in row.tokens.iter_mut().zip(&r.tokens) {
                *a += b;
            }
        }
    }
    Ok(Comparison {
        vocabs: encoders.iter().map(|e| e.label.clone()).collect(),
        sizes: encoders.iter().map(|e| e.ordinary_tokens).collect(),
        holdout,
        rows: rows.into_values().collect(),
    })
}

impl Comparison {
    /// What `corpus vocab compare` prints: pretty JSON with `json`, else the Markdown
    /// table.
    pub fn to_text(&self, json: bool) -> String {
        if json {
            serde_json::to_string_pretty(self).expect("serializable") + "\n"
        } else {
            self.to_markdown()
        }
    }

    /// A Markdown table: per language, bytes per token of each vocabulary and its token
    /// count relative to the first.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| lang | docs | MB |");
        for (v, n) in self.vocabs.iter().zip(&self.sizes) {
            out.push_str(&format!(" {v} ({n}) bytes/token | tokens vs first |"));
        }
        out.push('\n');
        out.push_str("|---|---:|---:|");
        for _ in &self.vocabs {
            out.push_str("---:|---:|");
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {:.2} |",
                r.lang,
                r.docs,
                r.bytes as f64 / 1e6
            ));
            let first = r.tokens.first().copied().unwrap_or(0).max(1) as f64;
            for &t in &r.tokens {
                out.push_str(&format!(
                    " {:.3} | {:.3}x |",
                    r.bytes as f64 / (t.max(1) as f64),
                    t as f64 / first
                ));
            }
            out.push('\n');
        }
        out
    }
}
