//! The streaming executor.
//!
//! ```text
//! reader threads --batches--> worker threads --results--> commit (calling thread)
//!  (one shard      bounded by   (stages, then   any order   restores each shard's
//!   each at once)   tokens       encoding)                  order, writes, renames,
//!                                                           stats, markers
//! ```
//!
//! Reader threads each take the next shard of this task and cut it into batches (a
//! batch never spans two shards), so several input files are decompressed and parsed
//! at once. Workers run the stages over whole batches and, for JSONL output, also
//! serialize and compress the batch into a gzip member. The calling thread commits each
//! shard's batches in input order: it appends them to the shard's files (under
//! temporary names), and when a shard's last batch is committed, renames them, writes
//! the shard's statistics and finally its completion marker.
//!
//! Batches are cut by the config alone, so the output is byte-identical for any number
//! of threads. At most `in_flight` batches exist at once (a token is taken before a
//! batch is read and returned when it is committed), which bounds memory whatever the
//! input size.

use crate::config::{ConfigError, PipelineConfig};
use crate::io::file_name;
use crate::progress::ProgressBar;
use crate::remote::{OutputFile, Storage};
use crate::shard::{Layout, Marker, TaskSpec};
use crate::sink::{self, DocSink, DropInfo, SinkError};
use crate::source::{self, InputFile, SourceError, SourceStats};
use crate::stats::{OutputMix, RunStats, StageStats};
use corpus_stages::{AnyStage, Document, StageConfig, StageCx, StageError, Verdict};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Options of one run that are not part of the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Worker threads, overriding `executor.threads`.
    pub threads: Option<usize>,
    /// Output directory, overriding `output.dir` (taken as given, not relative to the
    /// config file).
    pub output_dir: Option<PathBuf>,
    /// Which part of the input this process handles.
    pub task: TaskSpec,
    /// Skip shards whose completion marker matches; redo the others.
    pub resume: bool,
    /// Replace this task's shards in an output directory that already holds results.
    pub overwrite: bool,
    /// Draw a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Print at most this many warnings about corrupt records (the rest are counted).
    pub max_warnings: usize,
    /// Run only this pass of the plan (see the `plan` module); `None` runs every pass
    /// here.
    pub pass: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Statistics of the shards this process processed.
    pub stats: RunStats,
    /// Statistics merged over every completed shard in the output directory (also
    /// written to `stats.json` there).
    pub total: RunStats,
    /// Shards of this task.
    pub shards: usize,
    /// Shards skipped because their marker showed them complete.
    pub skipped: usize,
    /// Shards that failed, with the error.
    pub failed: Vec<(PathBuf, String)>,
    /// The output directory.
    pub output_dir: PathBuf,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// What passes of a multi-pass job did besides running shards, one line each.
    pub notes: Vec<String>,
    /// What the `tokenize` pass packed, when it ran.
    pub packed: Option<crate::commands::pack::PackSummary>,
}

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration, the flags or the input list is wrong (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The input paths do not resolve (exit code 2).
    #[error(transparent)]
    Input(SourceError),
    /// An output file or directory cannot be written.
    #[error("{path}: {source}")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another run of the same task is writing to the output directory.
    #[error(
        "{path}: another run of task {task} is writing to this output directory; wait for it \
         to end, or write elsewhere"
    )]
    Busy {
        /// Its lock file.
        path: PathBuf,
        /// The task.
        task: usize,
    },
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A stage failed in a way that stops the run.
    #[error("stage failed: {0}")]
    Stage(StageError),
    /// Encoding a document for output failed.
    #[error("encoding output: {0}")]
    Encode(String),
    /// In-run fuzzy dedup failed.
    #[error("minhash_dedup: {0}")]
    Dedup(#[from] crate::fuzzy::FuzzyError),
    /// Tokenizing the run's output failed.
    #[error("tokenize: {0}")]
    Tokenize(#[from] crate::commands::tokens::TokensError),
}

impl RunError {
    /// True when the error is the user's input to fix (bad config, flags or paths).
    pub fn is_usage(&self) -> bool {
        match self {
            RunError::Config(_) | RunError::Input(_) => true,
            RunError::Tokenize(e) => e.is_usage(),
            _ => false,
        }
    }
}

fn output_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Output {
        path: path.to_path_buf(),
        source,
    }
}

/// What a pass derives from the documents it writes and keeps beside them for a later
/// pass: a barrier's signatures of the documents it will observe, the token ids
/// `tokenize` packs. Deriving it while the documents are in memory spares the later pass
/// a whole read of them.
///
/// A part is derived in a worker from each batch's output documents (copies included,
/// in output order, with the values cached on them); the committer hands it to
/// [`Artifact::append`] as it commits the batch, in the shard's order (so an artifact
/// can stream to disk), and calls [`Artifact::commit`] once the shard's documents are
/// renamed into place and before its marker is written. A run killed in between leaves
/// a shard without its marker, so it is redone; an artifact that is missing or stale for
/// a complete shard (an output of an older version) is the later pass's to derive from
/// the documents.
pub(crate) trait Artifact: Sync {
    /// The part of one batch.
    fn derive(&self, docs: &mut [Document]) -> Result<Part, RunError>;

    /// Takes the part of the next batch of shard `index` (as `derive` made it: see
    /// [`part`]).
    fn append(&self, index: usize, part: Part) -> Result<(), RunError>;

    /// Completes the artifact of shard `index`, whose documents are at `docs`.
    fn commit(&self, index: usize, docs: &Path) -> Result<(), RunError>;

    /// Forgets what shard `index` appended: the shard failed and gets no marker.
    fn abandon(&self, index: usize);
}

/// An artifact's part of one batch, as its [`Artifact::derive`] made it.
pub(crate) type Part = Box<dyn Any + Send>;

/// A part as the artifact's `derive` made it (`T`).
pub(crate) fn part<T: 'static>(part: Part) -> T {
    *part
        .downcast::<T>()
        .expect("an artifact's parts are of the type its derive makes")
}

/// One batch of documents from one shard, on its way through the stages.
struct Work {
    /// Position of the shard in this task's list.
    shard: usize,
    /// Position of the batch in its shard.
    seq: u64,
    /// Which run of parallel stages comes next (phases are separated by ordered stages).
    phase: usize,
    /// Documents still in.
    docs: Vec<Document>,
    /// Position in the batch of each document still in, to put dropped ones back in
    /// input order.
    positions: Vec<u32>,
    /// Dropped documents with their position, kept for the side output.
    dropped: Vec<(u32, Document, DropInfo)>,
    /// One entry per stage passed so far.
    stages: Vec<StageStats>,
    /// Documents read into the batch.
    docs_in: u64,
    /// Checkpoints of ordered stages taken at the end of this shard, by stage index.
    checkpoints: Vec<(usize, Vec<u8>)>,
    /// Set on the shard's last batch: the source's final counters.
    end: Option<ShardEnd>,
    /// Bytes of the input file consumed when the batch was cut (for progress).
    input_pos: u64,
}

impl Work {
    fn new(shard: usize, seq: u64, docs: Vec<Document>, input_pos: u64) -> Work {
        Work {
            shard,
            seq,
            phase: 0,
            positions: (0..docs.len() as u32).collect(),
            docs_in: docs.len() as u64,
            docs,
            dropped: Vec::new(),
            stages: Vec::new(),
            checkpoints: Vec::new(),
            end: None,
            input_pos,
        }
    }

    /// Keeps the documents whose verdict is Keep; counts and (if asked) keeps the
    /// others for the side output.
    fn apply(&mut self, verdicts: &[Verdict], st: &mut StageStats, keep_dropped: bool) {
        if verdicts.iter().all(|v| *v == Verdict::Keep) {
            return;
        }
        let mut kept = Vec::with_capacity(self.docs.len());
        let mut kept_pos = Vec::with_capacity(self.docs.len());
        for ((doc, pos), verdict) in self
            .docs
            .drain(..)
            .zip(self.positions.drain(..))
            .zip(verdicts)
        {
            match verdict {
                Verdict::Keep => {
                    kept.push(doc);
                    kept_pos.push(pos);
                }
                Verdict::Drop(reason) => {
                    *st.drops.entry(reason.code().to_string()).or_default() += 1;
                    if keep_dropped {
                        let mut doc = doc;
                        let info = DropInfo {
                            stage: st.kind.clone(),
                            reason: reason.code().to_string(),
                            detail: doc.drop_detail.take(),
                        };
                        self.dropped.push((pos, doc, info));
                    }
                }
            }
        }
        self.docs = kept;
        self.positions = kept_pos;
    }
}

/// What workers send to the committing thread.
enum Msg {
    /// A batch that has reached an ordered stage.
    Ordered(Work),
    /// A batch through all stages, ready to write.
    Done(Done),
}

struct ShardEnd {
    source: SourceStats,
    /// A fatal source error: the shard is incomplete and gets no marker.
    error: Option<String>,
}

/// What a batch becomes after the stages: documents, or their encoded bytes.
enum Output {
    Docs(Vec<Document>),
    Encoded(Vec<u8>),
}

enum DroppedOutput {
    Docs(Vec<(Document, DropInfo)>),
    Encoded(Vec<u8>),
}

/// A processed batch.
struct Done {
    shard: usize,
    seq: u64,
    docs_in: u64,
    kept: Output,
    docs_out: u64,
    bytes_out: u64,
    /// Dropped documents (in input order) with stage and reason, when asked for.
    dropped: Option<DroppedOutput>,
    stages: Vec<StageStats>,
    checkpoints: Vec<(usize, Vec<u8>)>,
    end: Option<ShardEnd>,
    input_pos: u64,
    /// Language and source mix and histograms of the kept documents.
    output: OutputMix,
    /// The batch's part of each artifact of the pass.
    parts: Vec<Part>,
}

/// The statistics of two runs in a row: the first's input, both runs' stages, the
/// second's output.
pub(crate) fn chain_stats(first: &RunStats, second: &RunStats) -> RunStats {
    RunStats {
        shards: second.shards,
        failed_shards: first.failed_shards + second.failed_shards,
        input: first.input.clone(),
        stages: first.stages.iter().chain(&second.stages).cloned().collect(),
        docs_out: second.docs_out,
        bytes_out: second.bytes_out,
        seconds: first.seconds + second.seconds,
        output: second.output.clone(),
    }
}

/// Runs the stages of `config` (one segment of a plan, no barrier among them) over this
/// task's shards; `record` is the whole config, written to `config.toml`.
pub(crate) fn run_segment(
    config: &PipelineConfig,
    options: &RunOptions,
    record: &PipelineConfig,
    artifacts: &[&dyn Artifact],
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    config.validate_settings()?;
    let stages: Vec<AnyStage> = config.build_stages()?;
    let files = source::expand_inputs(&config.input, &config.base_dir).map_err(RunError::Input)?;
    let task_files = options.task.select(&files);

    let root = options
        .output_dir
        .clone()
        .unwrap_or_else(|| config.output_dir());
    let layout = Layout {
        root: root.clone(),
        extension: config.output.format.extension(),
    };
    let fingerprint = config.fingerprint_in(&root);
    let storage = Storage::of(&root);
    prepare_output(
        config,
        record,
        options,
        &storage,
        &layout,
        &fingerprint,
        &task_files,
    )?;
    // What is there already, in two listings rather than a request per shard.
    let listed_docs = storage
        .list(&layout.root.join("docs"))
        .map_err(output_err(&layout.root))?;

    // Shards left to do. Ordered stages see all shards in order, so with them only the
    // longest complete prefix is skipped (their state is restored from its
    // checkpoints) and every shard after the first incomplete one is redone.
    let ordered: Vec<usize> = (0..stages.len())
        .filter(|&i| stages[i].is_ordered())
        .collect();
    let mut todo = Vec::new();
    let mut skipped = 0;
    for file in task_files.iter() {
        let docs_name = file_name(&layout.docs(file.index));
        let complete = options.resume
            && (ordered.is_empty() || todo.is_empty())
            && (listed_docs.contains(&docs_name) || !config.output.docs)
            && Marker::read(&layout.marker(file.index))
                .is_some_and(|m| m.matches(&fingerprint, &file.path, &layout.root));
        let checkpoints = if complete {
            ordered
                .iter()
                .map(|&i| {
                    let path = layout.checkpoint(file.index, i);
                    storage.read(&path).map_err(output_err(&path))
                })
                .collect::<Result<Option<Vec<Vec<u8>>>, RunError>>()?
        } else {
            None
        };
        if let Some(checkpoints) = checkpoints {
            for (&i, bytes) in ordered.iter().zip(&checkpoints) {
                stages[i].restore(bytes).map_err(RunError::Stage)?;
            }
            skipped += 1;
            continue;
        }
        todo.push(file.clone());
    }

    let threads = worker_threads(config, options)?;
    let in_flight = if config.executor.in_flight > 0 {
        config.executor.in_flight
    } else {
        4 * threads
    };
    let total_bytes: u64 = todo
        .iter()
        .map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len()))
        .sum();
    let progress = crate::progress::bar(options.progress, total_bytes, crate::progress::BYTES);

    let decode_first = !stages.iter().any(AnyStage::reads_raw);
    // Ordered stages need the shards in order: one reader.
    let readers = if !ordered.is_empty() {
        1
    } else if config.executor.readers > 0 {
        config.executor.readers
    } else {
        threads
    }
    .clamp(1, todo.len().max(1));
    // Phase p runs the parallel stages up to and including the prepare part of the
    // p-th ordered stage; the last phase runs the rest.
    let mut phases = Vec::new();
    let mut start = 0;
    for &i in &ordered {
        phases.push(start..i + 1);
        start = i + 1;
    }
    phases.push(start..stages.len());
    let mut committer = Committer {
        config,
        storage: &storage,
        layout: &layout,
        fingerprint: &fingerprint,
        todo: &todo,
        stage_names: config.stages.iter().map(StageConfig::name).collect(),
        shards: BTreeMap::new(),
        stats: RunStats::default(),
        failed: Vec::new(),
        progress: &progress,
        docs_read: 0,
        stages: &stages,
        ordered: &ordered,
        ordered_next: vec![(0, 0); ordered.len()],
        ordered_pending: BTreeMap::new(),
        finished: 0,
        keep_dropped: config.output.dropped,
        artifacts,
    };

    // Every batch in existence holds a token, and the work channel holds at most
    // `in_flight` batches, so sending a batch back from the committer never blocks.
    let (batch_tx, batch_rx) = bounded::<Work>(in_flight);
    let (done_tx, done_rx) = unbounded::<Result<Msg, RunError>>();
    let (token_tx, token_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = token_tx.send(());
    }
    let warnings = Warnings::new(options.max_warnings, progress.clone());
    let next_shard = AtomicUsize::new(0);
    let work_cx = WorkCx {
        last_derived: stages.iter().rposition(AnyStage::uses_derived),
        stages: &stages,
        names: config.stages.iter().map(StageConfig::name).collect(),
        phases: &phases,
        decode_first,
        keep_dropped: config.output.dropped,
        write_docs: config.output.docs,
        encode: config
            .output
            .format
            .encodes_in_workers()
            .then_some(config.output.gzip_level),
        artifacts,
    };

    let result = std::thread::scope(|scope| {
        for _ in 0..readers {
            let reader = Reader {
                files: &todo,
                input: &config.input,
                exec: &config.executor,
                next_shard: &next_shard,
                tx: batch_tx.clone(),
                tokens: token_rx.clone(),
                warnings: &warnings,
            };
            scope.spawn(move || reader.run());
        }
        for _ in 0..threads {
            let rx = batch_rx.clone();
            let tx = done_tx.clone();
            let cx = &work_cx;
            scope.spawn(move || cx.work(rx, tx));
        }
        drop((batch_rx, token_rx, done_tx));
        let outcome = committer.run(&done_rx, &token_tx, batch_tx);
        // On error, dropping the token sender and the result receiver ends the readers
        // and the workers.
        drop(token_tx);
        drop(done_rx);
        outcome
    });
    progress.finish_and_clear();
    result?;

    let stats = committer.stats;
    let failed = committer.failed;
    let total = merge_stats(&storage, &layout, &files)?;
    storage
        .write_json(&root.join("stats.json"), &total)
        .map_err(output_err(&root))?;
    Ok(RunSummary {
        stats,
        total,
        shards: task_files.len(),
        skipped,
        failed,
        output_dir: root,
        elapsed: started.elapsed(),
        notes: Vec::new(),
        packed: None,
    })
}

/// More worker threads than any machine has cores: a larger number is a typo, which
/// would otherwise ask for memory for its batches in flight before failing.
pub const MAX_THREADS: usize = 4096;

/// The worker threads of a run: `--threads`, else `executor.threads`, else one per core.
pub(crate) fn worker_threads(
    config: &PipelineConfig,
    options: &RunOptions,
) -> Result<usize, RunError> {
    let threads = options
        .threads
        .filter(|&t| t > 0)
        .or(Some(config.executor.threads).filter(|&t| t > 0))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads > MAX_THREADS {
        return Err(ConfigError::Invalid(format!(
            "{threads} worker threads: at most {MAX_THREADS} (--threads, executor.threads)"
        ))
        .into());
    }
    Ok(threads)
}

/// Creates the output directories, refuses to mix with a different run, and clears this
/// task's leftovers.
fn prepare_output(
    config: &PipelineConfig,
    record: &PipelineConfig,
    options: &RunOptions,
    storage: &Storage,
    layout: &Layout,
    fingerprint: &str,
    task_files: &[InputFile],
) -> Result<(), RunError> {
    let dirs = layout.dirs();
    storage
        .create_dirs(&dirs)
        .map_err(output_err(&layout.root))?;
    // Probe that the directory is writable now rather than after hours of work.
    storage
        .probe(&layout.root.join("done"))
        .map_err(output_err(&layout.root))?;

    let config_path = layout.root.join("config.toml");
    let written = format!("# fingerprint = \"{fingerprint}\"\n{}", record.to_toml());
    let old = storage
        .read(&config_path)
        .map_err(output_err(&config_path))?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    if let Some(old) = old
        && !old.starts_with(&format!("# fingerprint = \"{fingerprint}\""))
        && !options.overwrite
    {
        return Err(ConfigError::Invalid(format!(
            "{} holds the output of a different config (see {}); use another output \
             directory or pass --overwrite",
            layout.root.display(),
            config_path.display()
        ))
        .into());
    }
    let done = storage
        .list(&layout.root.join("done"))
        .map_err(output_err(&layout.root))?;
    let docs = storage
        .list(&layout.root.join("docs"))
        .map_err(output_err(&layout.root))?;
    let has_results = task_files.iter().any(|f| {
        done.contains(&file_name(&layout.marker(f.index)))
            || docs.contains(&file_name(&layout.docs(f.index)))
    });
    if has_results && !options.resume && !options.overwrite {
        return Err(ConfigError::Invalid(format!(
            "{} already holds results of this run; pass --resume to finish it or \
             --overwrite to redo it",
            layout.root.display()
        ))
        .into());
    }
    storage
        .write(&config_path, written.as_bytes())
        .map_err(output_err(&config_path))?;
    for file in task_files {
        let part = format!("{}.", Layout::part(file.index));
        for dir in &dirs {
            storage
                .remove_stale_tmp(dir, &part)
                .map_err(output_err(dir))?;
        }
        if options.overwrite {
            let checkpoints = (0..config.stages.len()).map(|i| layout.checkpoint(file.index, i));
            for path in [
                layout.marker(file.index),
                layout.docs(file.index),
                layout.dropped(file.index),
                layout.stats(file.index),
            ]
            .into_iter()
            .chain(checkpoints)
            {
                storage.remove(&path).map_err(output_err(&path))?;
            }
        }
    }
    Ok(())
}

/// Prints the first few corrupt-record warnings above the progress bar.
struct Warnings {
    max: usize,
    printed: std::sync::atomic::AtomicUsize,
    bar: ProgressBar,
}

impl Warnings {
    fn new(max: usize, bar: ProgressBar) -> Self {
        Warnings {
            max,
            printed: Default::default(),
            bar,
        }
    }

    fn warn(&self, message: &str) {
        let n = self
            .printed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < self.max {
            self.bar.suspend(|| eprintln!("warning: {message}"));
        } else if n == self.max {
            self.bar.suspend(|| {
                eprintln!("warning: more corrupt records; see the `corrupt` counts in stats")
            });
        }
    }
}

/// A reader thread: takes shards until none is left.
struct Reader<'a> {
    files: &'a [InputFile],
    input: &'a source::InputConfig,
    exec: &'a crate::config::ExecutorConfig,
    next_shard: &'a AtomicUsize,
    tx: Sender<Work>,
    tokens: Receiver<()>,
    warnings: &'a Warnings,
}

impl Reader<'_> {
    fn run(&self) {
        loop {
            let shard = self.next_shard.fetch_add(1, Ordering::Relaxed);
            if shard >= self.files.len() || !self.read_shard(shard) {
                return;
            }
        }
    }

    /// Sends a batch once a token is free. False when the run has stopped.
    fn send(&self, batch: Work) -> bool {
        self.tokens.recv().is_ok() && self.tx.send(batch).is_ok()
    }

    /// Reads one shard into batches. False when the run has stopped.
    fn read_shard(&self, shard: usize) -> bool {
        let file = &self.files[shard];
        let mut src = match source::open(file, self.input) {
            Ok(s) => s,
            Err(e) => {
                self.warnings.warn(&e.to_string());
                let mut work = Work::new(shard, 0, Vec::new(), 0);
                work.end = Some(ShardEnd {
                    source: SourceStats::default(),
                    error: Some(e.to_string()),
                });
                return self.send(work);
            }
        };
        let mut seq = 0;
        let mut docs = Vec::with_capacity(self.exec.batch_docs.min(4096));
        let mut bytes = 0usize;
        let error = loop {
            match src.next_doc() {
                Ok(Some(doc)) => {
                    bytes += doc.size() as usize;
                    docs.push(doc);
                    if docs.len() >= self.exec.batch_docs || bytes >= self.exec.batch_bytes {
                        let batch =
                            Work::new(shard, seq, std::mem::take(&mut docs), src.stats().bytes);
                        if !self.send(batch) {
                            return false;
                        }
                        seq += 1;
                        bytes = 0;
                    }
                }
                Ok(None) => break None,
                Err(e) if e.is_recoverable() => self.warnings.warn(&e.to_string()),
                Err(e) => {
                    self.warnings.warn(&e.to_string());
                    break Some(e.to_string());
                }
            }
        };
        let mut work = Work::new(shard, seq, docs, src.stats().bytes);
        work.end = Some(ShardEnd {
            source: src.stats().clone(),
            error,
        });
        self.send(work)
    }
}

/// What the workers share.
struct WorkCx<'a> {
    stages: &'a [AnyStage],
    /// Their names in statistics ([`StageConfig::name`]).
    names: Vec<&'static str>,
    /// The last stage that reads values cached on documents: the cache is dropped after
    /// it (a classifier's features can be tens of kilobytes per document).
    last_derived: Option<usize>,
    /// The stages of each phase.
    phases: &'a [std::ops::Range<usize>],
    /// Decode raw payloads before the first stage (no stage reads them itself).
    decode_first: bool,
    keep_dropped: bool,
    /// Write the kept documents (`output.docs`).
    write_docs: bool,
    /// Encode outputs in the worker (JSONL), at this gzip level.
    encode: Option<u32>,
    artifacts: &'a [&'a dyn Artifact],
}

impl WorkCx<'_> {
    fn work(&self, rx: Receiver<Work>, tx: Sender<Result<Msg, RunError>>) {
        for work in rx {
            let result = self.process(work);
            let stop = result.is_err();
            if tx.send(result).is_err() || stop {
                return;
            }
        }
    }

    /// Runs the batch's current phase; hands it to the ordered stage that ends the
    /// phase, or finishes it after the last phase.
    fn process(&self, mut work: Work) -> Result<Msg, RunError> {
        if work.phase == 0 && self.decode_first {
            work.docs.iter_mut().for_each(Document::decode_raw);
        }
        let mut verdicts = Vec::new();
        let mut cx = StageCx::default();
        let phase = self.phases[work.phase].clone();
        for (index, stage) in phase.clone().zip(&self.stages[phase]) {
            let started = Instant::now();
            let cpu = crate::stats::thread_cpu_seconds();
            let mut st = StageStats {
                kind: self.names[index].to_string(),
                docs_in: work.docs.len() as u64,
                bytes_in: work.docs.iter().map(Document::size).sum(),
                ..Default::default()
            };
            verdicts.clear();
            verdicts.resize(work.docs.len(), Verdict::Keep);
            stage
                .run(&mut work.docs, &mut verdicts, &mut cx)
                .map_err(RunError::Stage)?;
            work.apply(&verdicts, &mut st, self.keep_dropped);
            st.docs_out = work.docs.len() as u64;
            st.bytes_out = work.docs.iter().map(Document::size).sum();
            st.counters = take_counters(&mut cx);
            st.seconds = started.elapsed().as_secs_f64();
            st.cpu_seconds = crate::stats::thread_cpu_seconds() - cpu;
            work.stages.push(st);
            if Some(index) == self.last_derived {
                let dropped = work.dropped.iter_mut().map(|(_, d, _)| d);
                for d in work.docs.iter_mut().chain(dropped) {
                    d.derived.drop_features();
                }
            }
        }
        if work.phase + 1 < self.phases.len() {
            return Ok(Msg::Ordered(work));
        }
        self.finish(work).map(Msg::Done)
    }

    /// Decodes what is left raw and encodes the outputs.
    fn finish(&self, work: Work) -> Result<Done, RunError> {
        let Work {
            shard,
            seq,
            mut docs,
            mut dropped,
            stages,
            docs_in,
            checkpoints,
            end,
            input_pos,
            ..
        } = work;
        // Whatever raw payload no stage consumed is written as decoded text.
        docs.iter_mut().for_each(Document::decode_raw);
        // Copies asked for by `upsample` follow their document, with suffixed ids.
        if docs.iter().any(|d| d.repeat > 0) {
            let mut expanded = Vec::with_capacity(docs.len());
            for mut doc in docs {
                let repeat = std::mem::take(&mut doc.repeat);
                for k in 1..=repeat {
                    let mut copy = doc.clone();
                    copy.id = format!("{}#{k}", doc.id);
                    expanded.push(copy);
                }
                // The original first, then its copies.
                let at = expanded.len() - repeat as usize;
                expanded.insert(at, doc);
            }
            docs = expanded;
        }
        let parts = self
            .artifacts
            .iter()
            .map(|a| a.derive(&mut docs))
            .collect::<Result<Vec<_>, _>>()?;
        // Values derived for the stages and the artifacts are not written.
        docs.iter_mut().for_each(|d| d.derived = Default::default());
        let docs_out = docs.len() as u64;
        let bytes_out = docs.iter().map(|d| d.text.len() as u64).sum();
        let mut output = OutputMix::default();
        docs.iter().for_each(|d| output.add(d));
        let encode_err = |e: serde_json::Error| RunError::Encode(e.to_string());
        let kept = if !self.write_docs {
            Output::Docs(Vec::new())
        } else if let Some(level) = self.encode {
            Output::Encoded(
                sink::jsonl::encode_member(docs.iter().map(|d| (d, None)), level)
                    .map_err(encode_err)?,
            )
        } else {
            Output::Docs(docs)
        };
        let dropped = if self.keep_dropped {
            dropped.sort_by_key(|d| d.0);
            let dropped: Vec<(Document, DropInfo)> = dropped
                .into_iter()
                .map(|(_, mut doc, info)| {
                    doc.decode_raw();
                    (doc, info)
                })
                .collect();
            Some(if let Some(level) = self.encode {
                DroppedOutput::Encoded(
                    sink::jsonl::encode_member(dropped.iter().map(|(d, i)| (d, Some(i))), level)
                        .map_err(encode_err)?,
                )
            } else {
                DroppedOutput::Docs(dropped)
            })
        } else {
            None
        };
        Ok(Done {
            shard,
            seq,
            docs_in,
            kept,
            docs_out,
            bytes_out,
            dropped,
            stages,
            checkpoints,
            end,
            input_pos,
            output,
            parts,
        })
    }
}

fn take_counters(cx: &mut StageCx) -> BTreeMap<String, u64> {
    cx.take_counters()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// A shard being committed: its open files and the batches that arrived early.
struct ShardState {
    next_seq: u64,
    pending: BTreeMap<u64, Done>,
    files: Option<OpenFiles>,
    stats: RunStats,
    started: Instant,
    /// Input bytes consumed as of the last committed batch (for progress).
    input_pos: u64,
    /// Checkpoints of ordered stages to persist with the shard.
    checkpoints: Vec<(usize, Vec<u8>)>,
}

impl ShardState {
    fn new() -> Self {
        ShardState {
            next_seq: 0,
            pending: BTreeMap::new(),
            files: None,
            stats: RunStats::default(),
            started: Instant::now(),
            input_pos: 0,
            checkpoints: Vec::new(),
        }
    }
}

struct OpenFiles {
    /// None when the config writes no documents (`output.docs = false`).
    docs: Option<(Box<dyn DocSink>, OutputFile)>,
    dropped: Option<(Box<dyn DocSink>, OutputFile)>,
}

struct Committer<'a> {
    config: &'a PipelineConfig,
    storage: &'a Storage,
    layout: &'a Layout,
    fingerprint: &'a str,
    todo: &'a [InputFile],
    stage_names: Vec<&'static str>,
    /// Shards with batches in flight, by position in `todo`.
    shards: BTreeMap<usize, ShardState>,
    stats: RunStats,
    failed: Vec<(PathBuf, String)>,
    progress: &'a ProgressBar,
    /// Documents read so far, for progress.
    docs_read: u64,
    stages: &'a [AnyStage],
    /// Indices of the ordered stages.
    ordered: &'a [usize],
    /// For each ordered stage, the (shard, batch) it must see next.
    ordered_next: Vec<(usize, u64)>,
    /// Batches that reached an ordered stage early, by (phase, shard, batch).
    ordered_pending: BTreeMap<(usize, usize, u64), Work>,
    /// Shards finished (written or failed).
    finished: usize,
    keep_dropped: bool,
    artifacts: &'a [&'a dyn Artifact],
}

impl Committer<'_> {
    /// Commits results as they arrive, each shard's batches in order, and runs ordered
    /// stages over batches in input order, sending them back to the workers after.
    /// Returns when every shard is finished (dropping `work_tx`, which lets the workers
    /// end) or at the first error.
    fn run(
        &mut self,
        rx: &Receiver<Result<Msg, RunError>>,
        tokens: &Sender<()>,
        work_tx: Sender<Work>,
    ) -> Result<(), RunError> {
        if self.finished == self.todo.len() {
            return Ok(());
        }
        for result in rx {
            let done = match result? {
                Msg::Done(done) => done,
                Msg::Ordered(work) => {
                    self.ordered_pending
                        .insert((work.phase, work.shard, work.seq), work);
                    self.run_ordered(&work_tx)?;
                    continue;
                }
            };
            let shard = done.shard;
            let mut state = self.shards.remove(&shard).unwrap_or_else(ShardState::new);
            state.pending.insert(done.seq, done);
            let mut finished = false;
            while let Some(done) = state.pending.remove(&state.next_seq) {
                state.next_seq += 1;
                finished = self.commit(shard, &mut state, done)?;
                let _ = tokens.send(());
                if finished {
                    break;
                }
            }
            if finished {
                self.finished += 1;
                if self.finished == self.todo.len() {
                    break;
                }
            } else {
                self.shards.insert(shard, state);
            }
        }
        Ok(())
    }

    /// Runs ordered stages over every batch whose turn it is.
    fn run_ordered(&mut self, work_tx: &Sender<Work>) -> Result<(), RunError> {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for phase in 0..self.ordered.len() {
                let (shard, seq) = self.ordered_next[phase];
                let Some(mut work) = self.ordered_pending.remove(&(phase, shard, seq)) else {
                    continue;
                };
                progressed = true;
                let index = self.ordered[phase];
                let stage = &self.stages[index];
                let started = Instant::now();
                let cpu = crate::stats::thread_cpu_seconds();
                let mut verdicts = vec![Verdict::Keep; work.docs.len()];
                let mut cx = StageCx::default();
                stage
                    .run_ordered(&mut work.docs, &mut verdicts, &mut cx)
                    .map_err(RunError::Stage)?;
                // The phase's last stats entry is this stage's prepare part.
                let mut st = work.stages.pop().unwrap_or_default();
                work.apply(&verdicts, &mut st, self.keep_dropped);
                st.docs_out = work.docs.len() as u64;
                st.bytes_out = work.docs.iter().map(Document::size).sum();
                for (k, v) in take_counters(&mut cx) {
                    *st.counters.entry(k).or_default() += v;
                }
                st.seconds += started.elapsed().as_secs_f64();
                st.cpu_seconds += crate::stats::thread_cpu_seconds() - cpu;
                work.stages.push(st);
                self.ordered_next[phase] = if work.end.is_some() {
                    if let Some(bytes) = stage.checkpoint() {
                        work.checkpoints.push((index, bytes));
                    }
                    (shard + 1, 0)
                } else {
                    (shard, seq + 1)
                };
                work.phase += 1;
                if work_tx.send(work).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn open_files(&self, shard: usize) -> Result<OpenFiles, RunError> {
        let file = &self.todo[shard];
        let format = self.config.output.format;
        let level = self.config.output.gzip_level;
        let create = |path: PathBuf, with_drop_info: bool| {
            let (file, out) = self
                .storage
                .create(&path)
                .map_err(|e| SinkError::write(&path, e))?;
            let sink = sink::create_writer(format, out, &path, with_drop_info, level)?;
            Ok::<_, SinkError>((sink, file))
        };
        let docs = if self.config.output.docs {
            Some(create(self.layout.docs(file.index), false)?)
        } else {
            None
        };
        let dropped = if self.config.output.dropped {
            Some(create(self.layout.dropped(file.index), true)?)
        } else {
            None
        };
        Ok(OpenFiles { docs, dropped })
    }

    /// Commits one batch; true when it was the shard's last.
    fn commit(
        &mut self,
        shard: usize,
        state: &mut ShardState,
        done: Done,
    ) -> Result<bool, RunError> {
        if state.files.is_none() {
            state.files = Some(self.open_files(shard)?);
        }
        let Some(files) = state.files.as_mut() else {
            unreachable!("files were just opened")
        };
        match (&done.kept, files.docs.as_mut()) {
            (Output::Encoded(bytes), Some((sink, _))) => sink.write_encoded(bytes)?,
            (Output::Docs(docs), Some((sink, _))) => {
                for doc in docs {
                    sink.write(doc, None)?;
                }
            }
            (_, None) => {}
        }
        if let (Some((sink, _)), Some(dropped)) = (files.dropped.as_mut(), &done.dropped) {
            match dropped {
                DroppedOutput::Encoded(bytes) => sink.write_encoded(bytes)?,
                DroppedOutput::Docs(docs) => {
                    for (doc, info) in docs {
                        sink.write(doc, Some(info))?;
                    }
                }
            }
        }
        state.checkpoints.extend(done.checkpoints);
        let index = self.todo[shard].index;
        for (artifact, part) in self.artifacts.iter().zip(done.parts) {
            artifact.append(index, part)?;
        }
        state.stats += &RunStats {
            stages: done.stages,
            docs_out: done.docs_out,
            bytes_out: done.bytes_out,
            output: done.output,
            ..Default::default()
        };
        self.progress
            .inc(done.input_pos.saturating_sub(state.input_pos));
        state.input_pos = state.input_pos.max(done.input_pos);
        self.docs_read += done.docs_in;
        self.progress.set_message(format!(
            "{} docs, {:.0} docs/s",
            self.docs_read,
            self.docs_read as f64 / self.progress.elapsed().as_secs_f64().max(1e-3)
        ));
        match done.end {
            Some(end) => {
                let state = std::mem::replace(state, ShardState::new());
                self.finish_shard(shard, state, end)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn finish_shard(
        &mut self,
        shard: usize,
        state: ShardState,
        end: ShardEnd,
    ) -> Result<(), RunError> {
        let file = &self.todo[shard];
        let mut stats = state.stats;
        stats.input = end.source;
        stats.seconds = state.started.elapsed().as_secs_f64();
        let size = std::fs::metadata(&file.path).map_or(stats.input.bytes, |m| m.len());
        self.progress.inc(size.saturating_sub(state.input_pos));
        if let Some(error) = end.error {
            // The shard is incomplete: its temporary files go away with `state`, and no
            // marker is written, so a resumed run redoes it.
            stats.failed_shards = 1;
            stats.docs_out = 0;
            stats.bytes_out = 0;
            stats.output = OutputMix::default();
            for artifact in self.artifacts {
                artifact.abandon(file.index);
            }
            self.failed.push((file.path.clone(), error));
            self.stats += &stats;
            return Ok(());
        }
        // Keep one entry per stage even for a shard with no documents, so merged stats
        // line up with the config.
        if stats.stages.len() < self.stage_names.len() {
            stats
                .stages
                .resize_with(self.stage_names.len(), Default::default);
            for (st, name) in stats.stages.iter_mut().zip(&self.stage_names) {
                st.kind = name.to_string();
            }
        }
        stats.shards = 1;
        let files = match state.files {
            Some(files) => files,
            None => self.open_files(shard)?,
        };
        // Without documents, the input file stands for them (its ids are derived as
        // they were read).
        let mut docs_path = file.path.clone();
        if let Some((sink, f)) = files.docs {
            sink.finish()?;
            docs_path = self.layout.docs(file.index);
            f.commit().map_err(output_err(&docs_path))?;
        }
        if let Some((sink, f)) = files.dropped {
            sink.finish()?;
            f.commit()
                .map_err(output_err(&self.layout.dropped(file.index)))?;
        }
        for artifact in self.artifacts {
            artifact.commit(file.index, &docs_path)?;
        }
        for (stage, bytes) in &state.checkpoints {
            let path = self.layout.checkpoint(file.index, *stage);
            self.storage
                .write(&path, bytes)
                .map_err(output_err(&path))?;
        }
        let stats_path = self.layout.stats(file.index);
        self.storage
            .write_json(&stats_path, &stats)
            .map_err(output_err(&stats_path))?;
        let marker = Marker::new(
            file.index,
            &file.path,
            &self.layout.root,
            self.fingerprint,
            stats.docs_out,
        );
        let marker_path = self.layout.marker(file.index);
        self.storage
            .write_json(&marker_path, &marker)
            .map_err(output_err(&marker_path))?;
        self.stats += &stats;
        Ok(())
    }
}

/// Sums the statistics of every completed shard of the run in the output directory.
fn merge_stats(
    storage: &Storage,
    layout: &Layout,
    files: &[InputFile],
) -> Result<RunStats, RunError> {
    let mut total = RunStats::default();
    let done = storage
        .list(&layout.root.join("done"))
        .map_err(output_err(&layout.root))?;
    for file in files {
        if !done.contains(&file_name(&layout.marker(file.index))) {
            continue;
        }
        let path = layout.stats(file.index);
        let bytes = storage
            .read(&path)
            .map_err(output_err(&path))?
            .ok_or_else(|| output_err(&path)(std::io::ErrorKind::NotFound.into()))?;
        let stats: RunStats = serde_json::from_slice(&bytes).map_err(|e| RunError::Output {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        total += &stats;
    }
    Ok(total)
}
