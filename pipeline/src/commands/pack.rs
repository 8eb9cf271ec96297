//! `corpus tokens pack`: token shards as Qwen trains on them.
//!
//! Every document is encoded (no special tokens) and put in a split by a hash of its id:
//! `validation` when `xxh3_64(id) / 2^64 < val_fraction`, else `train`, so a document
//! keeps its split whatever else changes. In each split the documents are shuffled with
//! a seeded Fisher-Yates shuffle (SplitMix64, seed `seed` for train and `seed + 1` for
//! validation), their ids are concatenated with `<|endoftext|>` after each document and
//! cut into sequences of `seq_len` tokens; the last sequence is filled up with
//! `<|endoftext|>` (counted as `pad_tokens`).
//!
//! Output directory:
//! - `{split}-{NNNNN}.parquet` (zstd) or `.arrow` (Arrow IPC file): `shard_sequences`
//!   sequences each, columns `tokens` (fixed-size list of `seq_len` u32),
//!   `doc_starts` (list of u32: offsets in the sequence where a document's first token
//!   is) and `first_doc` (u64: position in the split's document order of the document
//!   the sequence starts in).
//! - `docs-{split}.parquet` / `.arrow`: one row per document in split order: `id`,
//!   `source`, `lang` (nullable), `n_tokens` (u32, without the `<|endoftext|>`),
//!   `sequence` (u64) and `offset` (u32) of its first token.
//! - `manifest.json`, written last: tokenizer (vocabulary, hash, pattern), config,
//!   inputs, and per split the counts of documents, tokens and sequences, by source and
//!   by language, and the shard files.
//!
//! All files are written under temporary names and renamed when complete. A rerun over
//! an output whose manifest matches the inputs, tokenizer and config does nothing; any
//! other rerun removes the manifest and the shard and document files there and writes
//! everything anew (the output is a function of inputs and config, the same for any
//! thread count).

use super::tokens::{Count, DocTokens, TokenReport, TokensError, encode_documents, expand};
use crate::executor::{Part, RunError};
use crate::io::{AtomicFile, file_name};
use arrow::array::{
    ArrayRef, FixedSizeListArray, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use corpus_models::tokenizer::{Rank, Tokenizer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Shard file format (configured by the `tokenize` stage).
pub use corpus_stages::tokenize::ShardFormat;

/// Packing options (recorded in the manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackConfig {
    /// Tokens per sequence (the context length).
    pub seq_len: usize,
    /// Share of documents in the validation split (0..1).
    pub val_fraction: f64,
    /// Shuffle seed.
    pub seed: u64,
    /// Shard format.
    pub format: ShardFormat,
    /// Sequences per shard file.
    pub shard_sequences: usize,
}

impl Default for PackConfig {
    fn default() -> Self {
        PackConfig::from(&corpus_stages::tokenize::Config::default())
    }
}

impl From<&corpus_stages::tokenize::Config> for PackConfig {
    fn from(t: &corpus_stages::tokenize::Config) -> Self {
        PackConfig {
            seq_len: t.seq_len,
            val_fraction: t.val_fraction,
            seed: t.seed,
            format: t.format,
            shard_sequences: t.shard_sequences,
        }
    }
}

/// The tokenizer part of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTokenizer {
    /// `cl100k_base` or the vocabulary path as given.
    pub vocab: String,
    /// Hash of the vocabulary bytes, pattern and special tokens.
    pub hash: String,
    /// `cl100k`, `qwen` or `regex`.
    pub pattern_name: String,
    /// The pattern's regex.
    pub pattern: String,
    /// Ids in use (vocabulary + special tokens).
    pub vocab_size: usize,
    /// Id of `<|endoftext|>`.
    pub eot_id: Rank,
}

impl ManifestTokenizer {
    /// What the manifest records of `tokenizer`.
    pub fn of(tokenizer: &Tokenizer) -> ManifestTokenizer {
        ManifestTokenizer {
            vocab: tokenizer.source().describe(),
            hash: tokenizer.hash().to_string(),
            pattern_name: tokenizer.pattern().name().to_string(),
            pattern: tokenizer.pattern().regex().to_string(),
            vocab_size: tokenizer.vocab_size(),
            eot_id: tokenizer.eot(),
        }
    }
}

/// One shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// File name in the output directory.
    pub file: String,
    /// Sequences in it.
    pub sequences: u64,
    /// Documents starting in it.
    pub doc_starts: u64,
}

/// Counts of one split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// Documents.
    pub docs: u64,
    /// Tokens of the documents (no special tokens).
    pub tokens: u64,
    /// UTF-8 bytes of the documents' text.
    pub bytes: u64,
    /// `<|endoftext|>` tokens after documents (one per document).
    pub eot_tokens: u64,
    /// `<|endoftext|>` tokens filling up the last sequence.
    pub pad_tokens: u64,
    /// Sequences.
    pub sequences: u64,
    /// By source.
    pub by_source: BTreeMap<String, Count>,
    /// By language (`und` when none).
    pub by_lang: BTreeMap<String, Count>,
    /// Document table file.
    pub docs_file: String,
    /// Shard files in order.
    pub shards: Vec<ShardInfo>,
}

/// `manifest.json` of a pack output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version of this directory.
    pub format_version: u32,
    /// The tokenizer.
    pub tokenizer: ManifestTokenizer,
    /// Packing options.
    pub config: PackConfig,
    /// Input files with their sizes in bytes.
    pub inputs: Vec<(String, u64)>,
    /// `train` and `validation`.
    pub splits: BTreeMap<String, SplitInfo>,
}

impl Manifest {
    /// The split `name` of the pack output `dir` this manifest describes; the error
    /// message names the splits there are.
    pub fn split(&self, dir: &Path, name: &str) -> Result<&SplitInfo, String> {
        self.splits.get(name).ok_or_else(|| {
            format!(
                "{}: no split `{name}` (have: {})",
                dir.display(),
                self.splits.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// Name of the manifest file.
pub const MANIFEST: &str = "manifest.json";
/// The splits, in the order they are written.
pub const SPLITS: [&str; 2] = ["train", "validation"];

/// What a pack run did.
#[derive(Debug, Clone)]
pub struct PackSummary {
    /// The manifest (read back when the output was already complete).
    pub manifest: Manifest,
    /// True when the output was complete and nothing was done.
    pub skipped: bool,
    /// Documents whose token ids came from the ids files of the run's last pass rather
    /// than from encoding their text here.
    pub from_ids: u64,
    /// Input files encoded by an earlier, interrupted `corpus tokens pack` and not read
    /// again.
    pub resumed: usize,
}

/// Tokenizes `inputs` and writes shards to `out_dir`. With `ids_dir` (a pipeline run's
/// `OUT/tokenize/`), the token ids of an input shard come from its ids file when that is
/// complete and matches the shard and the tokenizer ([`TokensArtifact`]); the directory
/// is removed once the shards are written.
pub fn pack(
    inputs: &[String],
    tokenizer: &Tokenizer,
    config: &PackConfig,
    out_dir: &Path,
    threads: usize,
    ids_dir: Option<&Path>,
) -> Result<PackSummary, TokensError> {
    if config.seq_len == 0 || config.seq_len > u32::MAX as usize {
        return Err(TokensError::Usage(format!(
            "--seq-len {}: must be at least 1",
            config.seq_len
        )));
    }
    if !(0.0..1.0).contains(&config.val_fraction) {
        return Err(TokensError::Usage(format!(
            "--val-fraction {}: must be in 0..1",
            config.val_fraction
        )));
    }
    if config.shard_sequences == 0 {
        return Err(TokensError::Usage(
            "--shard-sequences must be at least 1".into(),
        ));
    }
    let files = expand(inputs)?;
    let input_list = input_list(&files)?;
    let tok_info = ManifestTokenizer::of(tokenizer);
    let manifest_path = out_dir.join(MANIFEST);
    if let Some(old) = complete(out_dir, &tok_info, config, &input_list) {
        return Ok(PackSummary {
            manifest: old,
            skipped: true,
            from_ids: 0,
            resumed: 0,
        });
    }
    std::fs::create_dir_all(out_dir).map_err(|e| TokensError::file(out_dir, e))?;
    crate::io::remove_stale_tmp(out_dir, "").map_err(|e| TokensError::file(out_dir, e))?;
    // A manifest of another run must not describe the files about to be replaced.
    match std::fs::remove_file(&manifest_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(TokensError::file(&manifest_path, e));
        }
        _ => {}
    }

    // Shards of an earlier run that this one might not overwrite (fewer shards, the
    // other format) must not stay next to the new ones.
    let entries = std::fs::read_dir(out_dir).map_err(|e| TokensError::file(out_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| TokensError::file(out_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_pack_file(&name) {
            std::fs::remove_file(entry.path()).map_err(|e| TokensError::file(&entry.path(), e))?;
        }
    }

    let mut splits: [Vec<DocTokens>; 2] = [Vec::new(), Vec::new()];
    let mut from_ids = 0;
    for (k, file) in files.iter().enumerate() {
        let mut each = |mut d: DocTokens| {
            d.file = k;
            splits[usize::from(is_validation(&d.id, config.val_fraction))].push(d);
            Ok(())
        };
        match ids_dir.and_then(|dir| read_ids(dir, k, &file.path, tokenizer)) {
            Some(docs) => {
                from_ids += docs.len() as u64;
                docs.into_iter().try_for_each(&mut each)?;
            }
            None => encode_documents(std::slice::from_ref(file), tokenizer, threads, each)?,
        }
    }

    let mut manifest = Manifest {
        format_version: 1,
        tokenizer: tok_info,
        config: config.clone(),
        inputs: input_list,
        splits: BTreeMap::new(),
    };
    for (k, docs) in splits.iter_mut().enumerate() {
        let name = SPLITS[k];
        shuffle(docs, config.seed.wrapping_add(k as u64));
        let info = write_split(name, docs, tokenizer.eot(), config, out_dir)?;
        manifest.splits.insert(name.to_string(), info);
    }
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| TokensError::file(&manifest_path, e))?;
    AtomicFile::write_all(&manifest_path, &json)
        .map_err(|e| TokensError::file(&manifest_path, e))?;
    // Packed: the ids are in the shards now, and the documents can give them again.
    if let Some(dir) = ids_dir
        && dir.exists()
    {
        std::fs::remove_dir_all(dir).map_err(|e| TokensError::file(dir, e))?;
    }
    Ok(PackSummary {
        manifest,
        skipped: false,
        from_ids,
        resumed: 0,
    })
}

/// The inputs as a manifest lists them: path and size.
fn input_list(files: &[crate::source::InputFile]) -> Result<Vec<(String, u64)>, TokensError> {
    files
        .iter()
        .map(|f| {
            let size = std::fs::metadata(&f.path)
                .map_err(|e| TokensError::file(&f.path, e))?
                .len();
            Ok((f.path.display().to_string(), size))
        })
        .collect()
}

/// The manifest in `out_dir` when it describes these inputs, tokenizer and settings and
/// its files are all there: the output is complete.
fn complete(
    out_dir: &Path,
    tokenizer: &ManifestTokenizer,
    config: &PackConfig,
    inputs: &[(String, u64)],
) -> Option<Manifest> {
    let bytes = std::fs::read(out_dir.join(MANIFEST)).ok()?;
    let old = serde_json::from_slice::<Manifest>(&bytes).ok()?;
    (old.tokenizer == *tokenizer
        && old.config == *config
        && old.inputs == inputs
        && all_present(out_dir, &old))
    .then_some(old)
}

/// Where `corpus tokens pack` keeps its run (markers, token ids) inside the output
/// directory until the shards are written.
pub const PACK_RUN_DIR: &str = ".run";

/// `corpus tokens pack INPUT... -o OUT`: a plan built in code over the executor. A
/// pipeline whose one stage is `tokenize` and which writes no documents
/// (`output.docs = false`) encodes each input file on the workers of a per-file pass,
/// with the markers, resume, statistics and progress of `corpus run`, into
/// `OUT/.run/` (token ids under `tokenize/`); its `tokenize` pass then shuffles and packs
/// them into `OUT`, and `OUT/.run/` is removed. An output already complete for these
/// inputs, tokenizer and settings is left as it is; a killed run resumes with the input
/// files not yet encoded.
pub fn pack_inputs(
    inputs: &[String],
    spec: &super::tokens::TokenizerSpec,
    config: &PackConfig,
    out_dir: &Path,
    threads: usize,
    progress: bool,
) -> Result<PackSummary, TokensError> {
    let tokenizer = spec.load()?;
    // Pages are refused here, before a plan would read them as documents.
    let files = expand(inputs)?;
    if let Some(manifest) = complete(
        out_dir,
        &ManifestTokenizer::of(&tokenizer),
        config,
        &input_list(&files)?,
    ) {
        return Ok(PackSummary {
            manifest,
            skipped: true,
            from_ids: 0,
            resumed: 0,
        });
    }
    let out = std::path::absolute(out_dir).map_err(|e| TokensError::file(out_dir, e))?;
    let stage = corpus_stages::tokenize::Config {
        vocab: spec.vocab.clone(),
        pattern: spec.pattern.clone(),
        extra_tokens: spec.extras,
        // The shards go to OUT, the run's own files to OUT/.run.
        dir: "..".into(),
        seq_len: config.seq_len,
        val_fraction: config.val_fraction,
        seed: config.seed,
        format: config.format,
        shard_sequences: config.shard_sequences,
    };
    let run_dir = out.join(PACK_RUN_DIR);
    let run_err = |e: crate::executor::RunError| TokensError::Run(Box::new(e));
    let mut pipeline = crate::config::PipelineConfig::for_command(
        inputs.to_vec(),
        &run_dir,
        vec![corpus_stages::StageConfig::Tokenize(stage)],
    )
    .map_err(|e| run_err(e.into()))?;
    pipeline.output.docs = false;
    let run = crate::plan::run(
        &pipeline,
        &crate::executor::RunOptions {
            threads: (threads > 0).then_some(threads),
            output_dir: Some(run_dir.clone()),
            resume: true,
            progress,
            max_warnings: if progress { 20 } else { 0 },
            ..Default::default()
        },
    )
    .map_err(run_err)?;
    if let Some((path, error)) = run.failed.first() {
        return Err(TokensError::File {
            path: path.clone(),
            message: format!(
                "{error} ({} input file(s) failed; the others are kept in {} for a rerun)",
                run.failed.len(),
                run_dir.display()
            ),
        });
    }
    let Some(packed) = run.packed else {
        return Err(TokensError::Usage(format!(
            "{}: the run did not pack (an input shard is not complete)",
            run_dir.display()
        )));
    };
    std::fs::remove_dir_all(&run_dir).map_err(|e| TokensError::file(&run_dir, e))?;
    Ok(PackSummary {
        resumed: run.skipped,
        ..packed
    })
}

/// Magic of an ids file.
const IDS_MAGIC: &[u8; 8] = b"CORPIDS\0";
/// Version of the ids file format.
const IDS_VERSION: u32 = 1;

/// The head of an ids file (`part-NNNNN.ids.head`, written after the body
/// `part-NNNNN.ids` is complete): which documents file the ids were derived from, and
/// the body's size and checksum.
#[derive(Debug, Serialize, Deserialize)]
struct IdsHeader {
    /// The documents file's name (the output directory may have moved since).
    docs: String,
    /// Its size when written.
    docs_bytes: u64,
    /// Documents in it.
    count: u64,
    /// Bytes of the body.
    body_bytes: u64,
    /// XXH3-64 of the body.
    body_xxh3: u64,
}

/// The ids body of a shard being written: under a temporary name, with its checksum so
/// far.
struct OpenIds {
    file: AtomicFile,
    out: std::io::BufWriter<std::fs::File>,
    hasher: xxhash_rust::xxh3::Xxh3,
    bytes: u64,
    count: u64,
}

/// The token ids of every document the last per-file pass of a run writes, derived
/// while the documents are in memory ([`crate::executor::Artifact`]) and streamed to
/// `OUT/tokenize/part-NNNNN.ids` batch by batch (memory: a batch's ids, whatever the
/// shard's size), then described by `part-NNNNN.ids.head` (framed like the MinHash work
/// files, [`corpus_stages::minhash::files`]; fingerprint = the tokenizer's encoding id).
/// The
/// ids `upsample` computed to count tokens are taken from the document when vocabulary
/// and pattern are the same, so the text is encoded once in the whole run; the rest is
/// encoded here, on the pass's workers, rather than in the single `tokenize` pass.
pub(crate) struct TokensArtifact {
    tokenizers: corpus_models::tokenizer::TokenizerPool,
    dir: PathBuf,
    /// Documents whose ids were cached by a stage, and all documents.
    reused: std::sync::atomic::AtomicU64,
    docs: std::sync::atomic::AtomicU64,
    /// The shards being written.
    open: std::sync::Mutex<std::collections::HashMap<usize, OpenIds>>,
}

impl TokensArtifact {
    /// Ids with `tokenizer`, into `dir`.
    pub(crate) fn new(tokenizer: Tokenizer, dir: PathBuf) -> Self {
        TokensArtifact {
            tokenizers: corpus_models::tokenizer::TokenizerPool::new(tokenizer),
            dir,
            reused: Default::default(),
            docs: Default::default(),
            open: Default::default(),
        }
    }

    /// Documents with ids, and how many of them a stage had encoded already.
    pub(crate) fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.docs.load(Relaxed), self.reused.load(Relaxed))
    }

    fn open(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<usize, OpenIds>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the body of shard `index`.
    fn create(&self, index: usize) -> std::io::Result<OpenIds> {
        std::fs::create_dir_all(&self.dir)?;
        let (body, _) = ids_paths(&self.dir, &crate::shard::Layout::part(index));
        let file = AtomicFile::new(&body);
        let out =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(file.tmp_path())?);
        Ok(OpenIds {
            file,
            out,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            bytes: 0,
            count: 0,
        })
    }
}

/// The body and the head of the ids file of shard `part` (`part-NNNNN`).
fn ids_paths(dir: &Path, part: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{part}.ids")),
        dir.join(format!("{part}.ids.head")),
    )
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl crate::executor::Artifact for TokensArtifact {
    fn derive(&self, docs: &mut [corpus_stages::Document]) -> Result<Part, RunError> {
        use std::sync::atomic::Ordering::Relaxed;
        let encoding = self.tokenizers.tokenizer().encoding_id();
        let mut body = Vec::new();
        self.tokenizers.with(|tok| {
            for d in docs.iter_mut() {
                if d.has_token_ids(encoding) {
                    self.reused.fetch_add(1, Relaxed);
                }
                let ids = match d.token_ids(tok) {
                    Ok(ids) => ids,
                    Err(source) => {
                        return Err(TokensError::Encode {
                            path: self.dir.clone(),
                            id: d.id.clone(),
                            source,
                        });
                    }
                };
                let n = ids.len() as u32;
                let mut record = Vec::with_capacity(8 + 4 * ids.len());
                record.extend_from_slice(&n.to_le_bytes());
                ids.iter()
                    .for_each(|id| record.extend_from_slice(&id.to_le_bytes()));
                put_str(&mut body, &d.id);
                put_str(&mut body, &d.source);
                match &d.meta.lang {
                    Some(lang) => put_str(&mut body, lang),
                    None => body.extend_from_slice(&u32::MAX.to_le_bytes()),
                }
                body.extend_from_slice(&(d.text.len() as u64).to_le_bytes());
                body.extend_from_slice(&record);
            }
            Ok::<_, TokensError>(())
        })?;
        self.docs.fetch_add(docs.len() as u64, Relaxed);
        Ok(Box::new((docs.len() as u64, body)))
    }

    fn append(&self, index: usize, part: Part) -> Result<(), RunError> {
        use std::io::Write;
        let (count, bytes) = crate::executor::part::<(u64, Vec<u8>)>(part);
        let mut open = self.open();
        let ids = match open.entry(index) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.create(index).map_err(|source| RunError::Output {
                    path: self.dir.clone(),
                    source,
                })?)
            }
        };
        ids.out
            .write_all(&bytes)
            .map_err(|source| RunError::Output {
                path: ids.file.tmp_path().to_path_buf(),
                source,
            })?;
        ids.hasher.update(&bytes);
        ids.bytes += bytes.len() as u64;
        ids.count += count;
        Ok(())
    }

    fn abandon(&self, index: usize) {
        // Dropped uncommitted, the body's temporary file goes.
        self.open().remove(&index);
    }

    fn commit(&self, index: usize, docs: &Path) -> Result<(), RunError> {
        use std::io::Write;
        let (_, head) = ids_paths(&self.dir, &crate::shard::Layout::part(index));
        let output = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RunError::Output { path, source }
        };
        let open = self.open().remove(&index);
        let mut ids = match open {
            Some(ids) => ids,
            // A shard with no documents.
            None => self.create(index).map_err(output(&self.dir))?,
        };
        ids.out.flush().map_err(output(ids.file.tmp_path()))?;
        drop(ids.out);
        let body = ids.file.target().to_path_buf();
        ids.file.commit().map_err(output(&body))?;
        let header = IdsHeader {
            docs: file_name(docs),
            docs_bytes: std::fs::metadata(docs).map_or(0, |m| m.len()),
            count: ids.count,
            body_bytes: ids.bytes,
            body_xxh3: ids.hasher.digest(),
        };
        let fingerprint = self.tokenizers.tokenizer().encoding_id();
        let bytes = corpus_stages::minhash::files::encode_versioned(
            IDS_MAGIC,
            IDS_VERSION,
            fingerprint,
            &header,
            &[],
        );
        AtomicFile::write_all(&head, &bytes).map_err(output(&head))
    }
}

/// The documents of the ids file of shard `index` in `dir`, derived from `docs` (the
/// shard's documents file, or its input file in a run that writes no documents), when it
/// is complete and matches `docs` as it is now and the tokenizer's encoding; `None`
/// sends the caller to the documents.
fn read_ids(
    dir: &Path,
    index: usize,
    docs: &Path,
    tokenizer: &Tokenizer,
) -> Option<Vec<DocTokens>> {
    let name = file_name(docs);
    let (body_path, head_path) = ids_paths(dir, &crate::shard::Layout::part(index));
    let head = std::fs::read(&head_path).ok()?;
    let (fingerprint, header, _): (u64, IdsHeader, &[u8]) =
        corpus_stages::minhash::files::decode_unchecked(&head, IDS_MAGIC, IDS_VERSION, &head_path)
            .ok()?;
    let size = std::fs::metadata(docs).ok()?.len();
    if fingerprint != tokenizer.encoding_id() || header.docs != name || header.docs_bytes != size {
        return None;
    }
    let body = std::fs::read(&body_path).ok()?;
    if body.len() as u64 != header.body_bytes
        || xxhash_rust::xxh3::xxh3_64(&body) != header.body_xxh3
    {
        return None;
    }
    let body = body.as_slice();
    let mut cur = Cursor { body, at: 0 };
    let mut out = Vec::with_capacity(header.count.min(1 << 24) as usize);
    for _ in 0..header.count {
        let id = cur.string()??;
        let source = cur.string()??;
        let lang = cur.string()?;
        let bytes = u64::from_le_bytes(cur.take(8)?.try_into().ok()?);
        let n = cur.u32()? as usize;
        let ids = cur.take(4 * n)?.chunks_exact(4).map(u32_of).collect();
        out.push(DocTokens {
            file: 0,
            id,
            source,
            lang,
            bytes,
            ids,
        });
    }
    (cur.at == body.len()).then_some(out)
}

fn u32_of(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("four bytes"))
}

/// Reads an ids file's body front to back; `None` when it ends early.
struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.body.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(u32_of)
    }

    /// A string written by `put_str` (`Some(None)` for the absent marker).
    fn string(&mut self) -> Option<Option<String>> {
        let n = self.u32()?;
        if n == u32::MAX {
            return Some(None);
        }
        String::from_utf8(self.take(n as usize)?.to_vec())
            .ok()
            .map(Some)
    }
}

/// True for the names of shard and document files: `{split}-NNNNN.{ext}` and
/// `docs-{split}.{ext}`.
fn is_pack_file(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix(".parquet")
        .or_else(|| name.strip_suffix(".arrow"))
    else {
        return false;
    };
    SPLITS.iter().any(|split| {
        stem.strip_prefix("docs-") == Some(*split)
            || stem
                .strip_prefix(split)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn all_present(dir: &Path, m: &Manifest) -> bool {
    m.splits.values().all(|s| {
        dir.join(&s.docs_file).is_file() && s.shards.iter().all(|f| dir.join(&f.file).is_file())
    })
}

/// True when the document with this id goes to the validation split.
pub fn is_validation(id: &str, val_fraction: f64) -> bool {
    let h = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
    (h as f64) < val_fraction * 18_446_744_073_709_551_616.0
}

/// The generator of the shuffle (shared with the reference model and the fuzzing harness).
pub use corpus_models::rng::SplitMix64;

/// Seeded Fisher-Yates shuffle.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    SplitMix64::new(seed).shuffle(items);
}

/// Sequences of one shard being built.
struct ShardBuf {
    tokens: Vec<u32>,
    starts: Vec<u32>,
    start_offsets: Vec<i32>,
    first_doc: Vec<u64>,
}

impl ShardBuf {
    fn new() -> ShardBuf {
        ShardBuf {
            tokens: Vec::new(),
            starts: Vec::new(),
            start_offsets: vec![0],
            first_doc: Vec::new(),
        }
    }
    fn sequences(&self) -> usize {
        self.first_doc.len()
    }
}

fn write_split(
    name: &str,
    docs: &[DocTokens],
    eot: Rank,
    config: &PackConfig,
    dir: &Path,
) -> Result<SplitInfo, TokensError> {
    let seq_len = config.seq_len;
    let ext = config.format.ext();
    let mut info = SplitInfo {
        docs_file: format!("docs-{name}.{ext}"),
        ..Default::default()
    };
    let mut shard = ShardBuf::new();
    // Position of the next token in the split's stream, and the document it belongs to.
    let mut pos: u64 = 0;
    let mut doc_seq = Vec::with_capacity(docs.len());
    let mut doc_off = Vec::with_capacity(docs.len());
    let mut current_doc = 0u64;
    let flush = |shard: &mut ShardBuf, info: &mut SplitInfo, force: bool| {
        if shard.sequences() >= config.shard_sequences || (force && shard.sequences() > 0) {
            let file = format!("{name}-{:05}.{ext}", info.shards.len());
            let full = std::mem::replace(shard, ShardBuf::new());
            let doc_starts = full.starts.len() as u64;
            let sequences = full.sequences() as u64;
            write_shard(&dir.join(&file), full, seq_len, config.format)?;
            info.shards.push(ShardInfo {
                file,
                sequences,
                doc_starts,
            });
        }
        Ok::<(), TokensError>(())
    };
    for (k, d) in docs.iter().enumerate() {
        let (t, b) = (d.ids.len() as u64, d.bytes);
        info.docs += 1;
        info.tokens += t;
        info.bytes += b;
        info.eot_tokens += 1;
        info.by_source
            .entry(d.source.clone())
            .or_default()
            .add(t, b);
        info.by_lang
            .entry(d.lang.clone().unwrap_or_else(|| "und".into()))
            .or_default()
            .add(t, b);
        doc_seq.push(pos / seq_len as u64);
        doc_off.push((pos % seq_len as u64) as u32);
        let mut first = true;
        for &id in d.ids.iter().chain(std::iter::once(&eot)) {
            let off = (pos % seq_len as u64) as usize;
            if off == 0 {
                // A new sequence starts; it belongs to the document being written.
                shard
                    .first_doc
                    .push(if first { k as u64 } else { current_doc });
            }
            if first {
                shard.starts.push(off as u32);
                current_doc = k as u64;
                first = false;
            }
            shard.tokens.push(id);
            pos += 1;
            if pos.is_multiple_of(seq_len as u64) {
                shard.start_offsets.push(shard.starts.len() as i32);
                info.sequences += 1;
                flush(&mut shard, &mut info, false)?;
            }
        }
    }
    let off = (pos % seq_len as u64) as usize;
    if off != 0 {
        let pad = seq_len - off;
        shard.tokens.extend(std::iter::repeat_n(eot, pad));
        info.pad_tokens = pad as u64;
        shard.start_offsets.push(shard.starts.len() as i32);
        info.sequences += 1;
    }
    flush(&mut shard, &mut info, true)?;
    write_docs(
        &dir.join(&info.docs_file),
        docs,
        &doc_seq,
        &doc_off,
        config.format,
    )?;
    Ok(info)
}

fn shard_schema(seq_len: usize) -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(
            "tokens",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::UInt32, false)),
                seq_len as i32,
            ),
            false,
        ),
        Field::new(
            "doc_starts",
            DataType::List(Arc::new(Field::new("item", DataType::UInt32, false))),
            false,
        ),
        Field::new("first_doc", DataType::UInt64, false),
    ]))
}

/// Sequences per record batch (Parquet row group).
const BATCH_SEQUENCES: usize = 1024;

fn write_shard(
    path: &Path,
    shard: ShardBuf,
    seq_len: usize,
    format: ShardFormat,
) -> Result<(), TokensError> {
    let schema = shard_schema(seq_len);
    let n = shard.sequences();
    let mut batches = Vec::new();
    for lo in (0..n).step_by(BATCH_SEQUENCES) {
        let hi = (lo + BATCH_SEQUENCES).min(n);
        let tokens = UInt32Array::from(shard.tokens[lo * seq_len..hi * seq_len].to_vec());
        let tokens = FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::UInt32, false)),
            seq_len as i32,
            Arc::new(tokens),
            None,
        )
        .map_err(|e| TokensError::file(path, e))?;
        let (a, b) = (
            shard.start_offsets[lo] as usize,
            shard.start_offsets[hi] as usize,
        );
        let offsets: Vec<i32> = shard.start_offsets[lo..=hi]
            .iter()
            .map(|o| o - a as i32)
            .collect();
        let starts = ListArray::try_new(
            Arc::new(Field::new("item", DataType::UInt32, false)),
            OffsetBuffer::new(offsets.into()),
            Arc::new(UInt32Array::from(shard.starts[a..b].to_vec())),
            None,
        )
        .map_err(|e| TokensError::file(path, e))?;
        let first = UInt64Array::from(shard.first_doc[lo..hi].to_vec());
        let columns: Vec<ArrayRef> = vec![Arc::new(tokens), Arc::new(starts), Arc::new(first)];
        batches.push(
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| TokensError::file(path, e))?,
        );
    }
    write_batches(path, schema, &batches, format)
}

fn write_docs(
    path: &Path,
    docs: &[DocTokens],
    seq: &[u64],
    off: &[u32],
    format: ShardFormat,
) -> Result<(), TokensError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("lang", DataType::Utf8, true),
        Field::new("n_tokens", DataType::UInt32, false),
        Field::new("sequence", DataType::UInt64, false),
        Field::new("offset", DataType::UInt32, false),
    ]));
    let mut batches = Vec::new();
    for lo in (0..docs.len()).step_by(1 << 16) {
        let hi = (lo + (1 << 16)).min(docs.len());
        let part = &docs[lo..hi];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(part.iter().map(|d| &d.id))),
            Arc::new(StringArray::from_iter_values(
                part.iter().map(|d| &d.source),
            )),
            Arc::new(StringArray::from_iter(
                part.iter().map(|d| d.lang.as_deref()),
            )),
            Arc::new(UInt32Array::from_iter_values(
                part.iter().map(|d| d.ids.len() as u32),
            )),
            Arc::new(UInt64Array::from(seq[lo..hi].to_vec())),
            Arc::new(UInt32Array::from(off[lo..hi].to_vec())),
        ];
        batches.push(
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| TokensError::file(path, e))?,
        );
    }
    write_batches(path, schema, &batches, format)
}

/// Writes record batches to `path` atomically (an empty file keeps its schema).
pub fn write_batches(
    path: &Path,
    schema: Arc<Schema>,
    batches: &[RecordBatch],
    format: ShardFormat,
) -> Result<(), TokensError> {
    let file = AtomicFile::new(path);
    let f = std::fs::File::create(file.tmp_path()).map_err(|e| TokensError::file(path, e))?;
    let w = std::io::BufWriter::with_capacity(1 << 20, f);
    let err = |e: &dyn std::fmt::Display| TokensError::file(path, e);
    match format {
        ShardFormat::Parquet => {
            use parquet::basic::{Compression, ZstdLevel};
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(Compression::ZSTD(
                    ZstdLevel::try_new(3).map_err(|e| err(&e))?,
                ))
                .set_max_row_group_row_count(None)
                .set_max_row_group_bytes(None)
                .build();
            let mut writer = parquet::arrow::ArrowWriter::try_new(w, schema, Some(props))
                .map_err(|e| err(&e))?;
            for b in batches {
                writer.write(b).map_err(|e| err(&e))?;
                writer.flush().map_err(|e| err(&e))?;
            }
            writer.close().map_err(|e| err(&e))?;
        }
        ShardFormat::Arrow => {
            let mut writer =
                arrow::ipc::writer::FileWriter::try_new(w, &schema).map_err(|e| err(&e))?;
            for b in batches {
                writer.write(b).map_err(|e| err(&e))?;
            }
            writer.finish().map_err(|e| err(&e))?;
            writer
                .into_inner()
                .map_err(|e| err(&e))?
                .into_inner()
                .map_err(|e| err(&e))?;
        }
    }
    file.commit().map_err(|e| TokensError::file(path, e))
}

/// Reads the manifest of a pack output.
pub fn read_manifest(dir: &Path) -> Result<Manifest, TokensError> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| TokensError::file(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| TokensError::file(&path, e))
}

/// What `corpus tokens pack` prints after writing `out_dir` in `elapsed`: each
/// split's counts, and whether the output was already complete.
pub fn summary_text(
    summary: &PackSummary,
    seq_len: usize,
    out_dir: &Path,
    elapsed: std::time::Duration,
) -> String {
    let mut out = String::new();
    if summary.skipped {
        out += &format!(
            "corpus tokens pack: {} is complete for these inputs and settings; nothing to do\n",
            out_dir.display()
        );
    }
    for (name, s) in &summary.manifest.splits {
        out += &format!(
            "  {name:<10} {:>9} docs {:>12} tokens {:>8} sequences of {} in {} shard(s)\n",
            s.docs,
            s.tokens,
            s.sequences,
            seq_len,
            s.shards.len()
        );
    }
    if !summary.skipped {
        let resumed = match summary.resumed {
            0 => String::new(),
            n => format!(" ({n} input file(s) encoded by an earlier run)"),
        };
        out += &format!(
            "corpus tokens pack: wrote {} in {:.2}s{resumed}\n",
            out_dir.display(),
            elapsed.as_secs_f64()
        );
    }
    out
}

/// `corpus tokens report`: the token counts of a pack output directory (one input
/// holding a manifest) or of documents (encoded with `vocab` and `pattern`), written to
/// standard output as tables or JSON, and as an HTML page to `html` when given.
pub fn report_command(
    inputs: &[String],
    vocab: Option<String>,
    pattern: String,
    threads: usize,
    json: bool,
    html: Option<&Path>,
) -> Result<(), TokensError> {
    use super::tokens;
    let dir = Path::new(&inputs[0]);
    let report = if inputs.len() == 1 && dir.join(MANIFEST).is_file() {
        report(dir)?
    } else {
        let Some(vocab) = vocab else {
            return Err(TokensError::Usage(
                "documents need --vocab (or give a pack output directory)".into(),
            ));
        };
        let spec = tokens::TokenizerSpec {
            vocab,
            pattern,
            extras: corpus_models::tokenizer::QWEN_EXTRA_TOKENS,
        };
        let tokenizer = spec.load()?;
        tokens::report_documents(&expand(inputs)?, &tokenizer, threads)?
    };
    if let Some(path) = html {
        tokens::write_output(path, tokens::report_html(&report).as_bytes())?;
    }
    let stdout = Path::new("-");
    if json {
        let mut json =
            serde_json::to_vec_pretty(&report).map_err(|e| TokensError::Usage(e.to_string()))?;
        json.push(b'\n');
        tokens::write_output(stdout, &json)
    } else {
        tokens::write_output(stdout, tokens::report_table(&report).as_bytes())
    }
}

/// The token report of a pack output (from its manifest): by split, source, language
/// and shard file (shard tokens count every position, padding included; shard docs
/// count the documents starting in the shard).
pub fn report(dir: &Path) -> Result<TokenReport, TokensError> {
    let m = read_manifest(dir)?;
    let mut r = TokenReport {
        tokenizer: format!(
            "{} (pattern {}, {})",
            m.tokenizer.vocab, m.tokenizer.pattern_name, m.tokenizer.hash
        ),
        ..Default::default()
    };
    for (name, s) in &m.splits {
        let c = Count {
            docs: s.docs,
            tokens: s.tokens,
            bytes: s.bytes,
        };
        r.total += c;
        r.by_split.insert(name.clone(), c);
        for (k, c) in &s.by_source {
            *r.by_source.entry(k.clone()).or_default() += *c;
        }
        for (k, c) in &s.by_lang {
            *r.by_lang.entry(k.clone()).or_default() += *c;
        }
        for sh in &s.shards {
            r.by_shard.insert(
                sh.file.clone(),
                Count {
                    docs: sh.doc_starts,
                    tokens: sh.sequences * m.config.seq_len as u64,
                    bytes: 0,
                },
            );
        }
    }
    Ok(r)
}

/// Paths of the shard files of a split, in order.
pub fn shard_paths(dir: &Path, m: &Manifest, split: &str) -> Vec<PathBuf> {
    m.splits
        .get(split)
        .map(|s| s.shards.iter().map(|f| dir.join(&f.file)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What packing reads back from an ids file is what encoding the documents gives
    /// (ChatML markers as special tokens, ids a stage cached taken as they are), and an
    /// ids file that no longer matches its documents or the tokenizer is not used.
    #[test]
    fn ids_files_give_back_the_encoding_and_stale_ones_are_not_used() {
        use crate::executor::Artifact;
        use corpus_models::tokenizer::{Pattern, VocabSource};
        use corpus_stages::Document;
        let dir = tempfile::tempdir().unwrap();
        let docs_path = dir.path().join("part-00002.jsonl.gz");
        std::fs::write(&docs_path, b"the documents").unwrap();
        let tok = Tokenizer::load(&VocabSource::Cl100k, &Pattern::Qwen, 3).unwrap();
        let mut plain = Document::new("a", "web", "Numbers 12345 and words.");
        plain.meta.lang = Some("en".into());
        let mut chat = Document::new("b", "chat", "<|im_start|>user\nHi<|im_end|>\n");
        chat.meta.extra.insert("format".into(), "chatml".into());
        let mut cached = Document::new("c", "web", "counted by upsample");
        // As upsample counts: a tokenizer without the extra special tokens.
        let counter = Tokenizer::load(&VocabSource::Cl100k, &Pattern::Qwen, 0).unwrap();
        cached.token_ids(&counter).unwrap();
        let mut docs = vec![plain, chat, cached];
        let ids_dir = dir.path().join("tokenize");
        let artifact = TokensArtifact::new(tok.clone(), ids_dir.clone());
        // Two batches, as the committer hands them over.
        let (first, second) = docs.split_at_mut(1);
        for batch in [first, second] {
            let part = artifact.derive(batch).unwrap();
            artifact.append(2, part).unwrap();
        }
        artifact.commit(2, &docs_path).unwrap();
        assert_eq!(artifact.counts(), (3, 1));
        let read = read_ids(&ids_dir, 2, &docs_path, &tok).expect("a matching ids file");
        assert_eq!(read.len(), 3);
        for (r, d) in read.iter().zip(&docs) {
            let ids = corpus_stages::tokenize::encode(&tok, d).unwrap();
            assert_eq!(
                (&r.id, &r.source, &r.lang, r.bytes, &r.ids),
                (&d.id, &d.source, &d.meta.lang, d.text.len() as u64, &ids)
            );
        }
        assert!(
            read[1]
                .ids
                .contains(&tok.special_id("<|im_start|>").unwrap())
        );
        // A damaged body is not used.
        let body = ids_dir.join("part-00002.ids");
        let good = std::fs::read(&body).unwrap();
        let mut bad = good.clone();
        bad[5] ^= 1;
        std::fs::write(&body, &bad).unwrap();
        assert!(read_ids(&ids_dir, 2, &docs_path, &tok).is_none());
        std::fs::write(&body, &good).unwrap();
        let cl100k = Tokenizer::load(&VocabSource::Cl100k, &Pattern::Cl100k, 3).unwrap();
        assert!(read_ids(&ids_dir, 2, &docs_path, &cl100k).is_none());
        std::fs::write(&docs_path, b"the documents, rewritten").unwrap();
        assert!(read_ids(&ids_dir, 2, &docs_path, &tok).is_none());
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a: Vec<u32> = (0..1000).collect();
        let mut b = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..1000).collect();
        shuffle(&mut c, 8);
        assert_ne!(a, c);
        a.sort_unstable();
        assert_eq!(a, (0..1000).collect::<Vec<_>>());
    }

    /// Packs documents of every length around a tiny sequence length and reads the
    /// shards back: each document's tokens sit where the document table says, followed
    /// by <|endoftext|>, and `doc_starts`/`first_doc` agree with the table.
    #[test]
    fn boundaries_for_every_length_around_the_sequence_length() {
        use arrow::array::AsArray;
        use arrow::datatypes::{UInt32Type, UInt64Type};
        const EOT: Rank = 99;
        let docs: Vec<DocTokens> = [0usize, 1, 2, 3, 4, 0, 0, 7, 3, 2, 9, 1]
            .iter()
            .enumerate()
            .map(|(k, &n)| DocTokens {
                file: 0,
                id: format!("d{k}"),
                source: if k % 2 == 0 { "a" } else { "b" }.into(),
                lang: (k % 3 == 0).then(|| "en".to_string()),
                bytes: n as u64,
                ids: (0..n as Rank).map(|i| 1000 * k as Rank + i).collect(),
            })
            .collect();
        for format in [ShardFormat::Parquet, ShardFormat::Arrow] {
            let dir = tempfile::tempdir().unwrap();
            let config = PackConfig {
                seq_len: 4,
                shard_sequences: 3,
                format,
                ..Default::default()
            };
            let info = write_split("train", &docs, EOT, &config, dir.path()).unwrap();
            let total: usize = docs.iter().map(|d| d.ids.len() + 1).sum();
            assert_eq!(info.sequences as usize, total.div_ceil(4));
            assert_eq!(
                info.pad_tokens as usize,
                info.sequences as usize * 4 - total
            );
            assert_eq!(info.shards.len(), (info.sequences as usize).div_ceil(3));
            let (mut flat, mut starts, mut first): (Vec<u32>, Vec<u64>, Vec<u64>) =
                (Vec::new(), Vec::new(), Vec::new());
            for shard in &info.shards {
                for b in super::super::export::read_batches(&dir.path().join(&shard.file)).unwrap()
                {
                    let t = b.column(0).as_fixed_size_list();
                    flat.extend(t.values().as_primitive::<UInt32Type>().values().iter());
                    let s = b.column(1).as_list::<i32>();
                    for row in 0..b.num_rows() {
                        let seq = first.len() as u64;
                        for o in s.value(row).as_primitive::<UInt32Type>().values() {
                            starts.push(seq * 4 + u64::from(*o));
                        }
                        first.push(b.column(2).as_primitive::<UInt64Type>().value(row));
                    }
                }
            }
            let table =
                super::super::export::read_batches(&dir.path().join(&info.docs_file)).unwrap();
            let seq = table[0].column(4).as_primitive::<UInt64Type>();
            let off = table[0].column(5).as_primitive::<UInt32Type>();
            let mut pos = 0u64;
            for (k, d) in docs.iter().enumerate() {
                let start = seq.value(k) * 4 + u64::from(off.value(k));
                assert_eq!(start, pos, "document {k}");
                assert_eq!(starts[k], start);
                let s = start as usize;
                assert_eq!(&flat[s..s + d.ids.len()], d.ids.as_slice());
                assert_eq!(flat[s + d.ids.len()], EOT);
                // Every sequence this document covers names it or an earlier one first.
                assert!(
                    first[s / 4..=(s + d.ids.len()) / 4]
                        .iter()
                        .all(|&f| f <= k as u64)
                );
                if s.is_multiple_of(4) {
                    assert_eq!(first[s / 4], k as u64);
                }
                pos += d.ids.len() as u64 + 1;
            }
            assert!(flat[pos as usize..].iter().all(|&t| t == EOT));
            assert_eq!(info.by_lang["en"].docs, 4);
            assert_eq!(info.by_source["b"].docs, 6);
        }
    }

    #[test]
    fn pack_file_names() {
        for yes in [
            "train-00000.parquet",
            "validation-00012.arrow",
            "docs-train.parquet",
            "docs-validation.arrow",
        ] {
            assert!(is_pack_file(yes), "{yes}");
        }
        for no in [
            "manifest.json",
            "train-0000.parquet",
            "train-00000.jsonl",
            "notes-train.parquet",
            "train-0000x.arrow",
        ] {
            assert!(!is_pack_file(no), "{no}");
        }
    }

    #[test]
    fn split_fraction_is_close_and_stable() {
        let n = 100_000;
        let val = (0..n)
            .filter(|i| is_validation(&format!("doc-{i}"), 0.05))
            .count();
        assert!((4_500..5_500).contains(&val), "{val}");
        assert!(!(0..n).any(|i| is_validation(&format!("doc-{i}"), 0.0)));
    }
}
