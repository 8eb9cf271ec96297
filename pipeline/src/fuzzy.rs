//! MinHash/LSH fuzzy dedup over input files, in memory or as resumable passes.
//!
//! Multi-pass mode (for data larger than one machine's memory, or spread over many):
//! 1. [`signatures`] (sharded over input files): for each input file, `signatures/fNNNNNN.sig`
//!    (one record per document) and `bands/bBBB/fNNNNNN.band` (band hashes, sorted).
//!    Memory: one input file's signatures.
//! 2. [`buckets`] (sharded over bands): merges the sorted band files of every input and
//!    writes the buckets of two or more documents to `groups/bBBB.groups`. Memory: the
//!    buckets found.
//! 3. [`cluster`] (one task): union-find over the buckets, one survivor per cluster;
//!    `clusters/fNNNNNN.dec` per input and `clusters/summary.json`. Memory: the
//!    documents that are in some bucket.
//! 4. filter (sharded over input files): the executor with the `minhash_dedup` stage,
//!    writing survivors with all their fields, in input order. Memory: one input file's
//!    decisions.
//!
//! When the documents are written by a pass of the plan (`OUT/<barrier>/pre/`), that
//! pass writes their signature and band files as it goes ([`SignArtifact`]), and pass 1
//! only signs what is missing.
//!
//! [`in_memory`] does 1-3 in one process (signatures from those files or from the
//! documents), feeding the same clustering the same buckets, and writes the same
//! decision files.
//!
//! Every file is written atomically (temporary name, then rename) and framed with a
//! format version, a settings fingerprint and a checksum
//! ([`corpus_stages::minhash::files`]); a pass skips outputs that are already complete
//! (resume) and refuses intermediate files that are damaged or were made with other
//! settings or inputs.

use crate::executor::{Part, RunError};
use crate::io::AtomicFile;
use crate::shard::TaskSpec;
use crate::source::{self, InputConfig, InputFile, SourceError};
use corpus_stages::Document;
use corpus_stages::minhash::cluster::{ClusterStats, Clusterer, Decisions, Lookup};
use corpus_stages::minhash::files::{self, FileError, names};
use corpus_stages::minhash::{Config, DocKey, SigRecord, Signer, Verify};
use serde::{Deserialize, Serialize};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of the dedup passes.
#[derive(Debug, thiserror::Error)]
pub enum FuzzyError {
    /// Bad settings or arguments.
    #[error("{0}")]
    Usage(String),
    /// An input file could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An intermediate file is missing, damaged or foreign.
    #[error(transparent)]
    File(#[from] FileError),
    /// Writing failed.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The task or the filter pass's config is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl FuzzyError {
    /// True for errors of the command line or config rather than of a run.
    pub fn is_usage(&self) -> bool {
        matches!(self, FuzzyError::Usage(_) | FuzzyError::Config(_))
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), FuzzyError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| FuzzyError::Write {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    AtomicFile::write_all(path, bytes).map_err(|e| FuzzyError::Write {
        path: path.to_path_buf(),
        source: e,
    })
}

/// What a pass did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PassSummary {
    /// Documents read.
    pub docs: u64,
    /// Documents with a signature.
    pub signed: u64,
    /// Documents too short to shingle (passed through).
    pub too_short: u64,
    /// Input files (or bands) done by this call.
    pub done: u64,
    /// Input files (or bands) skipped because their outputs were complete.
    pub skipped: u64,
    /// Corrupt records skipped while reading.
    pub corrupt: u64,
    /// Bytes of text hashed.
    pub text_bytes: u64,
    /// Time spent.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl PassSummary {
    /// One line on what a signature pass did, with its rate.
    pub fn describe(&self, what: &str) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "{what}: {} docs ({} signed, {} too short to shingle, {} corrupt records \
             skipped), {} file(s) done, {} already complete, {:.1}s, {:.0} docs/s, {:.1} MB/s",
            self.docs,
            self.signed,
            self.too_short,
            self.corrupt,
            self.done,
            self.skipped,
            secs,
            self.docs as f64 / secs,
            self.text_bytes as f64 / secs / 1e6
        )
    }
}

/// Reads one input file and signs its documents on `threads` workers, in input order,
/// while the next documents are read. Corrupt records are skipped and counted (they get
/// no record number: the reader numbers the documents it produces, and the filter pass
/// reads the same way).
fn sign_file(
    file: &InputFile,
    input: &InputConfig,
    signer: &Signer,
    threads: usize,
    summary: &mut PassSummary,
) -> Result<Vec<SigRecord>, FuzzyError> {
    const BATCH: usize = 256;
    let mut src = source::open(file, input)?;
    let mut out = Vec::new();
    let mut corrupt = 0;
    crate::parallel::stream(
        threads,
        Vec::new,
        |sink| {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(d) = src.next_intact(&mut |_| corrupt += 1)? {
                batch.push(d);
                if batch.len() == BATCH
                    && !sink(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                {
                    return Ok(());
                }
            }
            if !batch.is_empty() {
                sink(batch);
            }
            Ok::<_, FuzzyError>(())
        },
        |ids, mut batch: Vec<Document>| {
            let bytes: u64 = batch.iter().map(|d| d.text.len() as u64).sum();
            let sigs: Vec<SigRecord> = batch
                .iter_mut()
                .map(|d| signer.sign_document(d, ids))
                .collect();
            (bytes, sigs)
        },
        |(bytes, sigs)| {
            summary.text_bytes += bytes;
            for r in sigs {
                if r.has_signature() {
                    summary.signed += 1;
                } else {
                    summary.too_short += 1;
                }
                out.push(r);
            }
            Ok(())
        },
    )?;
    summary.corrupt += corrupt;
    summary.docs += out.len() as u64;
    Ok(out)
}

/// Size and modification time of a file (zeros when unknown).
fn stamp(path: &Path) -> (u64, u128) {
    let (size, mtime) = crate::shard::file_identity(path);
    (size.unwrap_or(0), u128::from(mtime.unwrap_or(0)))
}

fn input_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The signatures of `file` written by an earlier pass (or while a segment wrote it),
/// if they are complete and were made from the file as it is now.
fn finished_signatures(config: &Config, work: &Path, file: &InputFile) -> Option<Vec<SigRecord>> {
    let path = names::sig(work, file.index as u32);
    let bytes = std::fs::read(&path).ok()?;
    let (h, records) = files::decode_sigs(config, &bytes, &path).ok()?;
    (h.input == file.path && h.input_bytes == input_bytes(&file.path)).then_some(records)
}

/// Writes the band files and then the signature file of input `file`: the signature
/// file, written last, marks the file done.
fn write_signatures(
    config: &Config,
    work: &Path,
    file: &InputFile,
    records: &[SigRecord],
) -> Result<(), FuzzyError> {
    let idx = file.index as u32;
    let docs = u32::try_from(records.len()).map_err(|_| {
        FuzzyError::Usage(format!("{}: more than 2^32 documents", file.path.display()))
    })?;
    for band in 0..config.bands {
        let mut entries: Vec<(u64, u32)> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.has_signature())
            .map(|(i, r)| (band_hash(config, &r.hashes, band), i as u32))
            .collect();
        let bytes = files::encode_band(config, idx, band as u32, &mut entries);
        write(&names::band(work, band as u32, idx), &bytes)?;
    }
    let header = files::SigHeader {
        file: idx,
        input: file.path.clone(),
        input_bytes: input_bytes(&file.path),
        docs,
        num_hashes: config.num_hashes() as u32,
    };
    write(
        &names::sig(work, idx),
        &files::encode_sigs(config, &header, records),
    )
}

/// Pass 1: signatures and band files of this task's input files (those a segment did
/// not already sign as it wrote them: [`SignArtifact`]).
pub fn signatures(
    files: &[InputFile],
    input: &InputConfig,
    config: &Config,
    work: &Path,
    task: TaskSpec,
    threads: usize,
) -> Result<PassSummary, FuzzyError> {
    let start = Instant::now();
    let signer = Signer::new(config);
    let mut summary = PassSummary::default();
    for file in task.select(files) {
        if finished_signatures(config, work, &file).is_some() {
            summary.skipped += 1;
            continue;
        }
        let records = sign_file(&file, input, &signer, threads, &mut summary)?;
        write_signatures(config, work, &file, &records)?;
        summary.done += 1;
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// A barrier's signatures of the documents the segment before it writes to `pre/`,
/// computed while they are in memory ([`crate::executor::Artifact`]), so that neither
/// the signature pass nor the in-memory clustering reads `pre/` again to sign it.
pub(crate) struct SignArtifact<'a> {
    config: &'a Config,
    work: &'a Path,
    signer: Signer,
    /// What was signed (`elapsed`: the workers' wall time), and the workers' CPU time.
    counts: std::sync::Mutex<(PassSummary, f64)>,
    /// The signatures of the shards being written (a shard's, as the fuzzy signature
    /// pass holds them: the band files sort them).
    shards: std::sync::Mutex<HashMap<usize, Vec<SigRecord>>>,
}

impl<'a> SignArtifact<'a> {
    /// Signs for the barrier with these settings, into `work`.
    pub(crate) fn new(config: &'a Config, work: &'a Path) -> Self {
        SignArtifact {
            config,
            work,
            signer: Signer::new(config),
            counts: Default::default(),
            shards: Default::default(),
        }
    }

    /// What was signed, for the pass's note, and the CPU seconds it took.
    pub(crate) fn summary(&self) -> (PassSummary, f64) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl crate::executor::Artifact for SignArtifact<'_> {
    fn derive(&self, docs: &mut [Document]) -> Result<Part, RunError> {
        let (started, cpu) = (Instant::now(), crate::stats::thread_cpu_seconds());
        let mut ids = Vec::new();
        let records: Vec<SigRecord> = docs
            .iter_mut()
            .map(|d| self.signer.sign_document(d, &mut ids))
            .collect();
        let mut guard = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        guard.1 += crate::stats::thread_cpu_seconds() - cpu;
        let c = &mut guard.0;
        c.elapsed += started.elapsed();
        c.docs += records.len() as u64;
        c.signed += records.iter().filter(|r| r.has_signature()).count() as u64;
        c.too_short = c.docs - c.signed;
        c.text_bytes += docs.iter().map(|d| d.text.len() as u64).sum::<u64>();
        Ok(Box::new(records))
    }

    fn append(&self, index: usize, part: Part) -> Result<(), RunError> {
        let records = crate::executor::part::<Vec<SigRecord>>(part);
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        shards.entry(index).or_default().extend(records);
        Ok(())
    }

    fn abandon(&self, index: usize) {
        self.shards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&index);
    }

    fn commit(&self, index: usize, docs: &Path) -> Result<(), RunError> {
        let records = self
            .shards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&index)
            .unwrap_or_default();
        let file = InputFile {
            index,
            path: docs.to_path_buf(),
            format: source::Format::Auto,
        };
        write_signatures(self.config, self.work, &file, &records)?;
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).0.done += 1;
        Ok(())
    }
}

fn band_hash(config: &Config, hashes: &[u32], band: usize) -> u64 {
    corpus_stages::minhash::band_hash(hashes, band, config.rows)
}

/// Pass 2: for each band of this task, merges the band files of all `file_count`
/// inputs and writes the buckets of two or more.
pub fn buckets(
    file_count: usize,
    config: &Config,
    work: &Path,
    task: TaskSpec,
) -> Result<PassSummary, FuzzyError> {
    let start = Instant::now();
    let mut summary = PassSummary::default();
    for band in (0..config.bands).filter(|b| b % task.count == task.index) {
        let band = band as u32;
        let out = names::groups(work, band);
        if let Ok(bytes) = std::fs::read(&out)
            && let Ok((h, _)) = files::decode::<files::GroupHeader>(
                &bytes,
                files::GROUP_MAGIC,
                config.signature_fingerprint(),
                &out,
            )
            && h.files as usize == file_count
        {
            summary.skipped += 1;
            continue;
        }
        let mut readers = Vec::with_capacity(file_count);
        for f in 0..file_count as u32 {
            let path = names::band(work, band, f);
            if !path.exists() {
                return Err(FuzzyError::Usage(format!(
                    "{} is missing: the signature pass has not finished input file {f}",
                    path.display()
                )));
            }
            let r = files::BandReader::open(&path, config)?;
            if r.header.file != f || r.header.band != band {
                return Err(FileError::Invalid {
                    path,
                    message: format!(
                        "holds file {} band {}, expected file {f} band {band}",
                        r.header.file, r.header.band
                    ),
                }
                .into());
            }
            readers.push(r);
        }
        // k-way merge by (hash, file, record): members of a bucket come in input order.
        let mut heap = BinaryHeap::new();
        for (f, r) in readers.iter_mut().enumerate() {
            if let Some((h, rec)) = r.next_entry()? {
                heap.push(std::cmp::Reverse((h, f as u32, rec)));
            }
        }
        let mut body = Vec::new();
        let mut groups = 0u64;
        let mut run: Vec<u64> = Vec::new();
        let mut run_hash = None;
        while let Some(std::cmp::Reverse((h, f, rec))) = heap.pop() {
            if let Some(next) = readers[f as usize].next_entry()? {
                heap.push(std::cmp::Reverse((next.0, f, next.1)));
            }
            if run_hash != Some(h) {
                if run.len() >= 2 {
                    files::push_group(&mut body, &run);
                    groups += 1;
                }
                run.clear();
                run_hash = Some(h);
            }
            run.push(
                DocKey {
                    file: f,
                    record: rec,
                }
                .pack(),
            );
        }
        if run.len() >= 2 {
            files::push_group(&mut body, &run);
            groups += 1;
        }
        let header = files::GroupHeader {
            band,
            files: file_count as u32,
            groups,
        };
        let bytes = files::encode(
            files::GROUP_MAGIC,
            config.signature_fingerprint(),
            &header,
            &body,
        );
        write(&out, &bytes)?;
        summary.done += 1;
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Written last by the cluster step; the filter refuses to run without it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Format version of the decision files.
    pub version: u32,
    /// Decision fingerprint (settings).
    pub fingerprint: String,
    /// The input files, in order.
    pub inputs: Vec<PathBuf>,
    /// Size and modification time (ns since the epoch) of each input when clustered:
    /// a rerun reuses the clusters only for unchanged inputs.
    #[serde(default)]
    pub input_stamps: Vec<(u64, u128)>,
    /// Documents in clusters of two or more.
    pub clustered: u64,
    /// Clusters of two or more.
    pub clusters: u64,
    /// Documents that do not survive.
    pub removed: u64,
    /// Buckets of two or more.
    pub buckets: u64,
    /// Candidate pairs verified.
    pub pairs_verified: u64,
    /// Verified pairs rejected.
    pub pairs_rejected: u64,
}

/// Lookups over the records (and, for exact verification, shingle sets) of the
/// documents that are in some bucket.
struct MemLookup<'a> {
    records: &'a HashMap<u64, SigRecord>,
    shingles: &'a HashMap<u64, Vec<u64>>,
}

impl Lookup for MemLookup<'_> {
    type Error = FuzzyError;
    fn hashes(&mut self, key: u64, out: &mut Vec<u32>) -> Result<(), FuzzyError> {
        out.clone_from(&self.records.get(&key).ok_or_else(|| missing(key))?.hashes);
        Ok(())
    }
    fn shingles(&mut self, key: u64, out: &mut Vec<u64>) -> Result<(), FuzzyError> {
        out.clone_from(self.shingles.get(&key).ok_or_else(|| missing(key))?);
        Ok(())
    }
    fn rank(&mut self, key: u64) -> Result<(u32, f32), FuzzyError> {
        let r = self.records.get(&key).ok_or_else(|| missing(key))?;
        Ok((r.chars, r.quality))
    }
}

fn missing(key: u64) -> FuzzyError {
    FuzzyError::Usage(format!(
        "document {} is in a bucket but has no record (were the inputs changed between passes?)",
        DocKey::unpack(key)
    ))
}

/// Reads the input files again and shingles the documents in `needed` (sorted packed
/// keys), for exact verification.
fn load_shingles(
    files: &[InputFile],
    input: &InputConfig,
    config: &Config,
    needed: &[u64],
) -> Result<HashMap<u64, Vec<u64>>, FuzzyError> {
    let signer = Signer::new(config);
    let mut out = HashMap::with_capacity(needed.len());
    for file in files {
        let idx = file.index as u32;
        let lo = needed.partition_point(|&k| {
            k < DocKey {
                file: idx,
                record: 0,
            }
            .pack()
        });
        let mine: HashSet<u64> = needed[lo..]
            .iter()
            .take_while(|&&k| DocKey::unpack(k).file == idx)
            .copied()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut src = source::open(file, input)?;
        // Damaged records were skipped (and counted) by the signature pass too.
        while let Some(doc) = src.next_intact(&mut |_| {})? {
            let key = doc.origin.unwrap_or_default().pack();
            if mine.contains(&key) {
                out.insert(key, signer.shingle_set(&doc.text));
            }
        }
    }
    Ok(out)
}

/// Clusters `groups` and writes the decisions; `records` holds at least every document
/// named in a group.
fn cluster_groups(
    files: &[InputFile],
    input: &InputConfig,
    config: &Config,
    work: &Path,
    groups: &[Vec<u64>],
    records: &HashMap<u64, SigRecord>,
    needed: &[u64],
) -> Result<ClusterSummary, FuzzyError> {
    let shingles = if config.verify == Verify::Exact {
        load_shingles(files, input, config, needed)?
    } else {
        HashMap::new()
    };
    let mut lookup = MemLookup {
        records,
        shingles: &shingles,
    };
    let mut clusterer = Clusterer::new(config);
    for g in groups {
        clusterer.add_bucket(g, &mut lookup)?;
    }
    let decisions = clusterer.finish(config.keep, &mut lookup)?;
    write_decisions(files, config, work, &decisions)
}

fn needed_keys(groups: &[Vec<u64>]) -> Vec<u64> {
    let mut needed: Vec<u64> = groups.iter().flatten().copied().collect();
    needed.sort_unstable();
    needed.dedup();
    needed
}

/// Pass 3: clusters the buckets of every band and writes the decisions.
pub fn cluster(
    files: &[InputFile],
    input: &InputConfig,
    config: &Config,
    work: &Path,
) -> Result<ClusterSummary, FuzzyError> {
    let mut all_groups = Vec::new();
    for band in 0..config.bands as u32 {
        let path = names::groups(work, band);
        if !path.exists() {
            return Err(FuzzyError::Usage(format!(
                "{} is missing: run the bucket pass for band {band} first",
                path.display()
            )));
        }
        let (h, body) = files::read::<files::GroupHeader>(
            &path,
            files::GROUP_MAGIC,
            config.signature_fingerprint(),
        )?;
        if h.files as usize != files.len() || h.band != band {
            return Err(FileError::Invalid {
                path,
                message: format!(
                    "made from {} input files (band {}), but there are {} inputs (band {band})",
                    h.files,
                    h.band,
                    files.len()
                ),
            }
            .into());
        }
        all_groups.extend(files::groups(&body, &path)?);
    }
    // The signature records of the documents in some bucket, read file by file.
    let needed = needed_keys(&all_groups);
    let mut records: HashMap<u64, SigRecord> = HashMap::with_capacity(needed.len());
    let needed_files: HashSet<u32> = needed.iter().map(|&k| DocKey::unpack(k).file).collect();
    for file in files {
        let idx = file.index as u32;
        let path = names::sig(work, idx);
        let bytes = std::fs::read(&path).map_err(|e| {
            FuzzyError::Usage(format!(
                "{}: {e}: the signature pass has not finished input file {}",
                path.display(),
                file.path.display()
            ))
        })?;
        let (h, recs) = files::decode_sigs(config, &bytes, &path)?;
        check_input(&h, file, &path)?;
        if !needed_files.contains(&idx) {
            continue;
        }
        let lo = needed.partition_point(|&k| {
            k < DocKey {
                file: idx,
                record: 0,
            }
            .pack()
        });
        for &k in needed[lo..]
            .iter()
            .take_while(|&&k| DocKey::unpack(k).file == idx)
        {
            let rec =
                recs.get(DocKey::unpack(k).record as usize)
                    .ok_or_else(|| FileError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "has no record {} named by a bucket",
                            DocKey::unpack(k).record
                        ),
                    })?;
            records.insert(k, rec.clone());
        }
    }
    cluster_groups(files, input, config, work, &all_groups, &records, &needed)
}

fn check_input(h: &files::SigHeader, file: &InputFile, path: &Path) -> Result<(), FuzzyError> {
    if h.file != file.index as u32 || h.input != file.path {
        return Err(FileError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "was made from input {} ({}), but input {} is {}: pass the same inputs to every pass",
                h.file,
                h.input.display(),
                file.index,
                file.path.display()
            ),
        }
        .into());
    }
    Ok(())
}

/// Writes one decision file per input and the summary (last).
fn write_decisions(
    files: &[InputFile],
    config: &Config,
    work: &Path,
    decisions: &Decisions,
) -> Result<ClusterSummary, FuzzyError> {
    let mut by_file: HashMap<u32, Vec<corpus_stages::minhash::cluster::Decision>> = HashMap::new();
    for d in &decisions.entries {
        by_file.entry(d.key.file).or_default().push(*d);
    }
    for file in files {
        let idx = file.index as u32;
        let entries = by_file.remove(&idx).unwrap_or_default();
        let header = files::DecisionHeader {
            file: idx,
            input: file.path.clone(),
            entries: entries.len() as u64,
        };
        write(
            &names::decisions(work, idx),
            &files::encode_decisions(config, &header, &entries),
        )?;
    }
    let ClusterStats {
        buckets,
        pairs_verified,
        pairs_rejected,
        ..
    } = decisions.stats.clone();
    let summary = ClusterSummary {
        version: files::VERSION,
        fingerprint: format!("{:016x}", files::decision_fingerprint(config)),
        inputs: files.iter().map(|f| f.path.clone()).collect(),
        input_stamps: files.iter().map(|f| stamp(&f.path)).collect(),
        clustered: decisions.entries.len() as u64,
        clusters: decisions.clusters() as u64,
        removed: decisions.removed() as u64,
        buckets,
        pairs_verified,
        pairs_rejected,
    };
    let json = serde_json::to_vec_pretty(&summary).expect("summary serializes");
    write(&names::cluster_summary(work), &json)?;
    Ok(summary)
}

/// Reads the cluster summary of `work` if it was made with these settings and inputs.
pub fn finished_cluster(
    files: &[InputFile],
    config: &Config,
    work: &Path,
) -> Option<ClusterSummary> {
    let bytes = std::fs::read(names::cluster_summary(work)).ok()?;
    let s: ClusterSummary = serde_json::from_slice(&bytes).ok()?;
    let same = s.version == files::VERSION
        && s.fingerprint == format!("{:016x}", files::decision_fingerprint(config))
        && s.inputs.len() == files.len()
        && s.inputs.iter().zip(files).all(|(a, b)| *a == b.path)
        && s.input_stamps.len() == files.len()
        && s.input_stamps
            .iter()
            .zip(files)
            .all(|(st, f)| *st == stamp(&f.path));
    same.then_some(s)
}

/// Passes 1-3 in one process: signatures in memory (the signature files a segment wrote
/// as it went, else signed from the documents), the same buckets and clustering as the
/// multi-pass mode, decision files under `work`.
pub fn in_memory(
    files: &[InputFile],
    input: &InputConfig,
    config: &Config,
    work: &Path,
    threads: usize,
) -> Result<(PassSummary, ClusterSummary), FuzzyError> {
    let start = Instant::now();
    let signer = Signer::new(config);
    let mut summary = PassSummary::default();
    let mut all: Vec<Vec<SigRecord>> = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        debug_assert_eq!(file.index, i);
        // Signed while the segment before wrote the file, unless it was complete already.
        if let Some(records) = finished_signatures(config, work, file) {
            summary.skipped += 1;
            summary.docs += records.len() as u64;
            summary.signed += records.iter().filter(|r| r.has_signature()).count() as u64;
            summary.too_short = summary.docs - summary.signed;
            all.push(records);
            continue;
        }
        all.push(sign_file(file, input, &signer, threads, &mut summary)?);
        summary.done += 1;
    }
    // The same buckets the bucket pass writes: per band, equal band hashes, members
    // in input order.
    let mut groups: Vec<Vec<u64>> = Vec::new();
    let mut pairs: Vec<(u64, u64)> = Vec::with_capacity(summary.signed as usize);
    for band in 0..config.bands {
        pairs.clear();
        for (f, recs) in all.iter().enumerate() {
            for (r, rec) in recs.iter().enumerate() {
                if rec.has_signature() {
                    let key = DocKey {
                        file: f as u32,
                        record: r as u32,
                    };
                    pairs.push((band_hash(config, &rec.hashes, band), key.pack()));
                }
            }
        }
        pairs.sort_unstable();
        for run in pairs.chunk_by(|a, b| a.0 == b.0) {
            if run.len() >= 2 {
                groups.push(run.iter().map(|p| p.1).collect());
            }
        }
    }
    let needed = needed_keys(&groups);
    let records: HashMap<u64, SigRecord> = needed
        .iter()
        .map(|&k| {
            let d = DocKey::unpack(k);
            (k, all[d.file as usize][d.record as usize].clone())
        })
        .collect();
    drop(all);
    let cluster = cluster_groups(files, input, config, work, &groups, &records, &needed)?;
    summary.elapsed = start.elapsed();
    Ok((summary, cluster))
}

/// Expands input specs into the sorted input list every pass must agree on.
pub fn input_files(paths: &[String]) -> Result<(InputConfig, Vec<InputFile>), FuzzyError> {
    let (input, files) = source::expand_paths(paths)?;
    if files.is_empty() {
        return Err(FuzzyError::Usage("no input files".into()));
    }
    Ok((input, files))
}
