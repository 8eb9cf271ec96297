//! The streaming executor.
//!
//! ```text
//! reader thread --batches--> worker threads --results--> commit (calling thread)
//!   (sources)    bounded by     (stages,        any order   restores input order,
//!                 tokens         in parallel)               writes shards, markers
//! ```
//!
//! A reader thread reads this task's shards one after another and cuts them into
//! batches (never spanning two shards). Workers run the stages over whole batches. The
//! calling thread commits batches in input order: it writes documents to the shard's
//! files (under temporary names), and when a shard's last batch is committed, renames
//! them, writes the shard's statistics and finally its completion marker. Batches are cut
//! by the config alone, so the output is byte-identical for any number of threads. At
//! most `in_flight` batches exist at once, which bounds memory whatever the input size.

use crate::config::{ConfigError, PipelineConfig};
use crate::io::{AtomicFile, remove_stale_tmp};
use crate::shard::{Layout, Marker, TaskSpec};
use crate::sink::{self, DocSink, DropInfo, SinkError};
use crate::source::{self, InputFile, SourceError, SourceStats};
use crate::stats::{RunStats, StageStats};
use corpus_stages::{AnyStage, Document, StageCx, StageError, Verdict, build_stage};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A stage failed in a way that stops the run.
    #[error("stage failed: {0}")]
    Stage(StageError),
}

impl RunError {
    /// True when the error is the user's input to fix (bad config, flags or paths).
    pub fn is_usage(&self) -> bool {
        matches!(self, RunError::Config(_) | RunError::Input(_))
    }
}

fn output_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Output {
        path: path.to_path_buf(),
        source,
    }
}

/// One batch of documents from one shard.
struct Batch {
    seq: u64,
    /// Position of the shard in this task's list.
    shard: usize,
    docs: Vec<Document>,
    /// Set on the shard's last batch: the source's final counters.
    end: Option<ShardEnd>,
    /// Bytes of the input file consumed when the batch was cut (for progress).
    input_pos: u64,
}

struct ShardEnd {
    source: SourceStats,
    /// A fatal source error: the shard is incomplete and gets no marker.
    error: Option<String>,
}

/// A processed batch.
struct Done {
    seq: u64,
    shard: usize,
    kept: Vec<Document>,
    /// Dropped documents with the stage index and reason, in input order.
    dropped: Vec<(Document, usize, &'static str)>,
    stages: Vec<StageStats>,
    end: Option<ShardEnd>,
    input_pos: u64,
}

/// Runs a pipeline: this task's shards, from sources through stages to sinks.
pub fn run(config: &PipelineConfig, options: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    config.validate()?;
    let stages: Vec<AnyStage> = config
        .stages
        .iter()
        .map(|c| build_stage(c).map_err(|e| ConfigError::Invalid(e.to_string())))
        .collect::<Result<_, _>>()?;
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
    let fingerprint = config.fingerprint();
    prepare_output(config, options, &layout, &fingerprint, &task_files)?;

    // Shards left to do.
    let mut todo = Vec::new();
    let mut skipped = 0;
    for file in task_files.iter() {
        if options.resume
            && let Some(marker) = Marker::read(&layout.marker(file.index))
            && marker.fingerprint == fingerprint
            && marker.input == file.path
            && layout.docs(file.index).exists()
        {
            skipped += 1;
            continue;
        }
        todo.push(file.clone());
    }

    let threads = options
        .threads
        .filter(|&t| t > 0)
        .or(Some(config.executor.threads).filter(|&t| t > 0))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let in_flight = if config.executor.in_flight > 0 {
        config.executor.in_flight
    } else {
        4 * threads
    };
    let total_bytes: u64 = todo
        .iter()
        .map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len()))
        .sum();
    let progress = progress_bar(options.progress, total_bytes);

    let decode_first = !stages.iter().any(AnyStage::reads_raw);
    let mut committer = Committer {
        config,
        layout: &layout,
        fingerprint: &fingerprint,
        todo: &todo,
        stage_names: stages.iter().map(|s| s.name()).collect(),
        open: None,
        stats: RunStats::default(),
        failed: Vec::new(),
        progress: &progress,
        input_done: 0,
        docs_committed: 0,
    };

    let (batch_tx, batch_rx) = bounded::<Batch>(in_flight);
    let (done_tx, done_rx) = unbounded::<Result<Done, StageError>>();
    let (token_tx, token_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = token_tx.send(());
    }
    let warnings = Warnings::new(options.max_warnings, progress.clone());

    let result = std::thread::scope(|scope| {
        let reader_files = &todo;
        let input = &config.input;
        let exec = &config.executor;
        let warnings_ref = &warnings;
        scope.spawn(move || {
            read_shards(reader_files, input, exec, batch_tx, token_rx, warnings_ref)
        });
        for _ in 0..threads {
            let rx = batch_rx.clone();
            let tx = done_tx.clone();
            let stages = &stages;
            scope.spawn(move || work(rx, tx, stages, decode_first, config.output.dropped));
        }
        drop(batch_rx);
        drop(done_tx);
        let outcome = commit_in_order(&mut committer, &done_rx, &token_tx);
        // On error, dropping the token sender and the result receiver ends the reader
        // and the workers.
        drop(token_tx);
        drop(done_rx);
        outcome
    });
    progress.finish_and_clear();
    result?;

    let stats = committer.stats;
    let failed = committer.failed;
    let total = merge_stats(&layout, &files)?;
    AtomicFile::write_all(
        &root.join("stats.json"),
        serde_json::to_string_pretty(&total)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(output_err(&root))?;
    Ok(RunSummary {
        stats,
        total,
        shards: task_files.len(),
        skipped,
        failed,
        output_dir: root,
        elapsed: started.elapsed(),
    })
}

/// Creates the output directories, refuses to mix with a different run, and clears this
/// task's leftovers.
fn prepare_output(
    config: &PipelineConfig,
    options: &RunOptions,
    layout: &Layout,
    fingerprint: &str,
    task_files: &[InputFile],
) -> Result<(), RunError> {
    for dir in layout.dirs() {
        std::fs::create_dir_all(&dir).map_err(output_err(&dir))?;
    }
    // Probe that the directory is writable now rather than after hours of work.
    let probe = AtomicFile::new(&layout.root.join("done").join("probe"));
    std::fs::write(probe.tmp_path(), b"").map_err(output_err(&layout.root))?;
    drop(probe);

    let config_path = layout.root.join("config.toml");
    let written = format!("# fingerprint = \"{fingerprint}\"\n{}", config.to_toml());
    if let Ok(old) = std::fs::read_to_string(&config_path)
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
    let has_results = task_files
        .iter()
        .any(|f| layout.marker(f.index).exists() || layout.docs(f.index).exists());
    if has_results && !options.resume && !options.overwrite {
        return Err(ConfigError::Invalid(format!(
            "{} already holds results of this run; pass --resume to finish it or \
             --overwrite to redo it",
            layout.root.display()
        ))
        .into());
    }
    AtomicFile::write_all(&config_path, written.as_bytes()).map_err(output_err(&config_path))?;
    for file in task_files {
        let part = format!("{}.", Layout::part(file.index));
        for dir in layout.dirs() {
            remove_stale_tmp(&dir, &part).map_err(output_err(&dir))?;
        }
        if options.overwrite {
            for path in [
                layout.marker(file.index),
                layout.docs(file.index),
                layout.dropped(file.index),
                layout.stats(file.index),
            ] {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(output_err(&path)(e));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn progress_bar(enabled: bool, total_bytes: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
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

fn read_shards(
    files: &[InputFile],
    input: &source::InputConfig,
    exec: &crate::config::ExecutorConfig,
    tx: Sender<Batch>,
    tokens: Receiver<()>,
    warnings: &Warnings,
) {
    let mut seq = 0u64;
    let send = |batch: Batch| -> bool {
        // A token per batch bounds the batches in flight; no token means the run stopped.
        tokens.recv().is_ok() && tx.send(batch).is_ok()
    };
    for (shard, file) in files.iter().enumerate() {
        let mut src = match source::open(file, input) {
            Ok(s) => s,
            Err(e) => {
                warnings.warn(&e.to_string());
                let end = ShardEnd {
                    source: SourceStats::default(),
                    error: Some(e.to_string()),
                };
                if !send(Batch {
                    seq,
                    shard,
                    docs: Vec::new(),
                    end: Some(end),
                    input_pos: 0,
                }) {
                    return;
                }
                seq += 1;
                continue;
            }
        };
        let mut docs = Vec::with_capacity(exec.batch_docs.min(4096));
        let mut bytes = 0usize;
        let error = loop {
            match src.next_doc() {
                Ok(Some(doc)) => {
                    bytes += doc.size() as usize;
                    docs.push(doc);
                    if docs.len() >= exec.batch_docs || bytes >= exec.batch_bytes {
                        let batch = Batch {
                            seq,
                            shard,
                            docs: std::mem::take(&mut docs),
                            end: None,
                            input_pos: src.stats().bytes,
                        };
                        if !send(batch) {
                            return;
                        }
                        seq += 1;
                        bytes = 0;
                    }
                }
                Ok(None) => break None,
                Err(e) if e.is_recoverable() => warnings.warn(&e.to_string()),
                Err(e) => {
                    warnings.warn(&e.to_string());
                    break Some(e.to_string());
                }
            }
        };
        let batch = Batch {
            seq,
            shard,
            docs,
            input_pos: src.stats().bytes,
            end: Some(ShardEnd {
                source: src.stats().clone(),
                error,
            }),
        };
        if !send(batch) {
            return;
        }
        seq += 1;
    }
}

fn work(
    rx: Receiver<Batch>,
    tx: Sender<Result<Done, StageError>>,
    stages: &[AnyStage],
    decode_first: bool,
    keep_dropped: bool,
) {
    for batch in rx {
        let result = process_batch(batch, stages, decode_first, keep_dropped);
        let stop = result.is_err();
        if tx.send(result).is_err() || stop {
            return;
        }
    }
}

fn process_batch(
    batch: Batch,
    stages: &[AnyStage],
    decode_first: bool,
    keep_dropped: bool,
) -> Result<Done, StageError> {
    let mut docs = batch.docs;
    if decode_first {
        docs.iter_mut().for_each(Document::decode_raw);
    }
    // Positions in the batch, so dropped documents can be put back in input order.
    let mut positions: Vec<u32> = (0..docs.len() as u32).collect();
    let mut dropped: Vec<(u32, Document, usize, &'static str)> = Vec::new();
    let mut stats = Vec::with_capacity(stages.len());
    let mut verdicts = Vec::new();
    let mut cx = StageCx::default();
    for (index, stage) in stages.iter().enumerate() {
        let started = Instant::now();
        let mut st = StageStats {
            kind: stage.name().to_string(),
            docs_in: docs.len() as u64,
            bytes_in: docs.iter().map(Document::size).sum(),
            ..Default::default()
        };
        verdicts.clear();
        verdicts.resize(docs.len(), Verdict::Keep);
        stage.run(&mut docs, &mut verdicts, &mut cx)?;
        if verdicts.iter().any(|v| *v != Verdict::Keep) {
            let mut kept = Vec::with_capacity(docs.len());
            let mut kept_pos = Vec::with_capacity(docs.len());
            for ((doc, pos), verdict) in docs.drain(..).zip(positions.drain(..)).zip(&verdicts) {
                match verdict {
                    Verdict::Keep => {
                        kept.push(doc);
                        kept_pos.push(pos);
                    }
                    Verdict::Drop(reason) => {
                        *st.drops.entry(reason.code().to_string()).or_default() += 1;
                        if keep_dropped {
                            dropped.push((pos, doc, index, reason.code()));
                        }
                    }
                }
            }
            docs = kept;
            positions = kept_pos;
        }
        st.docs_out = docs.len() as u64;
        st.bytes_out = docs.iter().map(Document::size).sum();
        st.counters = cx
            .take_counters()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        st.seconds = started.elapsed().as_secs_f64();
        stats.push(st);
    }
    // Whatever raw payload no stage consumed is written as decoded text.
    docs.iter_mut().for_each(Document::decode_raw);
    dropped.sort_by_key(|d| d.0);
    let dropped = dropped
        .into_iter()
        .map(|(_, mut doc, stage, reason)| {
            doc.decode_raw();
            (doc, stage, reason)
        })
        .collect();
    Ok(Done {
        seq: batch.seq,
        shard: batch.shard,
        kept: docs,
        dropped,
        stages: stats,
        end: batch.end,
        input_pos: batch.input_pos,
    })
}

/// The open files of the shard being committed.
struct OpenShard {
    shard: usize,
    docs: Box<dyn DocSink>,
    docs_file: AtomicFile,
    dropped: Option<(Box<dyn DocSink>, AtomicFile)>,
    stats: RunStats,
    started: Instant,
    input_pos: u64,
}

struct Committer<'a> {
    config: &'a PipelineConfig,
    layout: &'a Layout,
    fingerprint: &'a str,
    todo: &'a [InputFile],
    stage_names: Vec<&'static str>,
    open: Option<OpenShard>,
    stats: RunStats,
    failed: Vec<(PathBuf, String)>,
    progress: &'a ProgressBar,
    /// Input bytes of shards already finished, for progress.
    input_done: u64,
    /// Documents written so far, for progress.
    docs_committed: u64,
}

fn commit_in_order(
    committer: &mut Committer<'_>,
    rx: &Receiver<Result<Done, StageError>>,
    tokens: &Sender<()>,
) -> Result<(), RunError> {
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    for result in rx {
        let done = result.map_err(RunError::Stage)?;
        pending.insert(done.seq, done);
        while let Some(done) = pending.remove(&next) {
            committer.commit(done)?;
            next += 1;
            let _ = tokens.send(());
        }
    }
    Ok(())
}

impl Committer<'_> {
    fn open_shard(&mut self, shard: usize) -> Result<OpenShard, RunError> {
        let file = &self.todo[shard];
        let format = self.config.output.format;
        let docs_file = AtomicFile::new(&self.layout.docs(file.index));
        let docs = sink::create(format, docs_file.tmp_path(), false)?;
        let dropped = if self.config.output.dropped {
            let f = AtomicFile::new(&self.layout.dropped(file.index));
            Some((sink::create(format, f.tmp_path(), true)?, f))
        } else {
            None
        };
        Ok(OpenShard {
            shard,
            docs,
            docs_file,
            dropped,
            stats: RunStats::default(),
            started: Instant::now(),
            input_pos: 0,
        })
    }

    fn commit(&mut self, done: Done) -> Result<(), RunError> {
        if self.open.as_ref().map(|o| o.shard) != Some(done.shard) {
            self.open = Some(self.open_shard(done.shard)?);
        }
        let Some(open) = self.open.as_mut() else {
            unreachable!("a shard was just opened")
        };
        for doc in &done.kept {
            open.docs.write(doc, None)?;
            open.stats.docs_out += 1;
            open.stats.bytes_out += doc.text.len() as u64;
        }
        if let Some((sink, _)) = open.dropped.as_mut() {
            for (doc, stage, reason) in &done.dropped {
                let info = DropInfo {
                    stage: self.stage_names[*stage].to_string(),
                    reason: (*reason).to_string(),
                };
                sink.write(doc, Some(&info))?;
            }
        }
        open.stats += &RunStats {
            stages: done.stages,
            ..Default::default()
        };
        open.input_pos = open.input_pos.max(done.input_pos);
        self.progress.set_position(self.input_done + open.input_pos);
        self.docs_committed += done.kept.len() as u64;
        self.progress.set_message(format!(
            "{} docs out, {:.0} docs/s",
            self.docs_committed,
            self.docs_committed as f64 / self.progress.elapsed().as_secs_f64().max(1e-3)
        ));
        if let Some(end) = done.end {
            let open = self.open.take().unwrap_or_else(|| unreachable!());
            self.finish_shard(open, end)?;
        }
        Ok(())
    }

    fn finish_shard(&mut self, open: OpenShard, end: ShardEnd) -> Result<(), RunError> {
        let file = &self.todo[open.shard];
        let mut stats = open.stats;
        stats.input = end.source;
        stats.seconds = open.started.elapsed().as_secs_f64();
        self.input_done += std::fs::metadata(&file.path).map_or(stats.input.bytes, |m| m.len());
        if let Some(error) = end.error {
            // The shard is incomplete: its temporary files go away with `open`, and no
            // marker is written, so a resumed run redoes it.
            stats.failed_shards = 1;
            stats.docs_out = 0;
            stats.bytes_out = 0;
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
        open.docs.finish()?;
        open.docs_file
            .commit()
            .map_err(output_err(&self.layout.docs(file.index)))?;
        if let Some((sink, f)) = open.dropped {
            sink.finish()?;
            f.commit()
                .map_err(output_err(&self.layout.dropped(file.index)))?;
        }
        let stats_path = self.layout.stats(file.index);
        AtomicFile::write_all(
            &stats_path,
            serde_json::to_string_pretty(&stats)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(output_err(&stats_path))?;
        let marker = Marker {
            shard: file.index,
            input: file.path.clone(),
            fingerprint: self.fingerprint.to_string(),
            docs_out: stats.docs_out,
        };
        let marker_path = self.layout.marker(file.index);
        AtomicFile::write_all(
            &marker_path,
            serde_json::to_string(&marker)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(output_err(&marker_path))?;
        self.stats += &stats;
        Ok(())
    }
}

/// Sums the statistics of every completed shard of the run in the output directory.
fn merge_stats(layout: &Layout, files: &[InputFile]) -> Result<RunStats, RunError> {
    let mut total = RunStats::default();
    for file in files {
        if !layout.marker(file.index).exists() {
            continue;
        }
        let path = layout.stats(file.index);
        let bytes = std::fs::read(&path).map_err(output_err(&path))?;
        let stats: RunStats = serde_json::from_slice(&bytes).map_err(|e| RunError::Output {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        total += &stats;
    }
    Ok(total)
}
