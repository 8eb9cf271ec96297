//! A pipeline with multi-pass fuzzy dedup: one config run as passes, each pass a
//! cluster array job (or all of them in one process).
//!
//! A config whose `minhash_dedup` stage has a `work_dir` and comes after other stages
//! is a job of four passes over the same output directory `OUT` and work directory `W`:
//!
//! ```text
//! signatures  (array, by input file)  the stages before minhash_dedup, writing
//!                                     OUT/minhash/pre/, then the MinHash signatures
//!                                     and band files of those documents under W
//! buckets     (array, by band)        W/groups/
//! cluster     (one task: task 0)      W/clusters/ (the decisions)
//! filter      (array, by input file)  minhash_dedup applies the decisions, then the
//!                                     stages after it; writes OUT as a plain run does
//! ```
//!
//! `corpus run CONFIG --pass NAME` runs one pass for the task given by
//! `--task-index/--task-count` or the scheduler's environment; without `--pass` (one
//! task) the four run here one after another. Each pass resumes (skips what is
//! complete), and every task of a pass may run at once; a pass needs the whole of the
//! pass before it (a Slurm `afterok` dependency). Shard `i` of the input is shard `i`
//! of `OUT/minhash/pre/` and of `OUT`, whichever task wrote it, so the result is the
//! same for any number of tasks: byte-identical to a one-process run (tests/slurm.rs).
//!
//! When `minhash_dedup` is the first stage, the passes read the input files directly
//! (there is no `pre` output), and without `--pass` the run is the filter alone, as
//! `corpus dedup --fuzzy --pass filter` runs it.

use crate::config::{ConfigError, PipelineConfig};
use crate::executor::{RunError, RunOptions, RunSummary, chain_stats, run_plain};
use crate::io::AtomicFile;
use crate::shard::Layout;
use crate::source::{self, Format, InputConfig, InputFile};
use crate::stats::RunStats;
use corpus_stages::StageConfig;
use corpus_stages::minhash::Config as MinhashConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One pass of a multi-pass job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The stages before `minhash_dedup`, then signatures (sharded by input file).
    Signatures,
    /// Buckets of equal band hashes (sharded by band).
    Buckets,
    /// Clusters and decisions (task 0 only).
    Cluster,
    /// `minhash_dedup` and the stages after it (sharded by input file).
    Filter,
}

impl Pass {
    /// The pass's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Signatures => "signatures",
            Pass::Buckets => "buckets",
            Pass::Cluster => "cluster",
            Pass::Filter => "filter",
        }
    }
}

/// The position of the `minhash_dedup` stage that has a `work_dir`.
fn job_stage(config: &PipelineConfig) -> Option<usize> {
    config.stages.iter().position(
        |s| matches!(s, StageConfig::MinhashFilter(c) if !c.work_dir.as_os_str().is_empty()),
    )
}

/// True when `corpus run` runs `config` as a multi-pass job: it has a `minhash_dedup`
/// stage with a `work_dir` after other stages.
pub fn is_job(config: &PipelineConfig) -> bool {
    job_stage(config).is_some_and(|k| k > 0)
}

/// The parts of a job every pass agrees on.
struct Plan<'a> {
    config: &'a PipelineConfig,
    options: &'a RunOptions,
    /// Position of the `minhash_dedup` stage.
    k: usize,
    dedup: MinhashConfig,
    /// The output directory, absolute.
    root: PathBuf,
    /// What the dedup passes read: `OUT/minhash/pre` documents, one per input file (the
    /// input files themselves when `minhash_dedup` is the first stage).
    pass_files: Vec<InputFile>,
    pass_input: InputConfig,
    threads: usize,
}

impl Plan<'_> {
    fn pre_root(&self) -> PathBuf {
        self.root.join("minhash").join("pre")
    }

    fn work(&self) -> &Path {
        &self.dedup.work_dir
    }

    /// Pass 1: the stages before dedup (this task's shards), then their signatures.
    fn signatures(&self) -> Result<RunSummary, RunError> {
        let mut summary = if self.k > 0 {
            let mut before = self.config.clone();
            before.stages.truncate(self.k);
            let pre = run_plain(
                &before,
                &RunOptions {
                    output_dir: Some(self.pre_root()),
                    pass: None,
                    ..self.options.clone()
                },
            )?;
            if !pre.failed.is_empty() {
                return Ok(pre);
            }
            pre
        } else {
            RunSummary {
                output_dir: self.root.clone(),
                ..Default::default()
            }
        };
        let s = crate::fuzzy::signatures(
            &self.pass_files,
            &self.pass_input,
            &self.dedup,
            self.work(),
            self.options.task,
            self.threads,
        )?;
        summary.notes.push(format!(
            "signatures: {} docs ({} signed, {} too short to shingle), {} file(s) done, {} already complete, {:.1}s",
            s.docs,
            s.signed,
            s.too_short,
            s.done,
            s.skipped,
            s.elapsed.as_secs_f64()
        ));
        Ok(summary)
    }

    /// Pass 2: this task's bands.
    fn buckets(&self) -> Result<RunSummary, RunError> {
        let s = crate::fuzzy::buckets(
            self.pass_files.len(),
            &self.dedup,
            self.work(),
            self.options.task,
        )?;
        Ok(self.note(format!(
            "buckets: {} band(s) done, {} already complete, {:.1}s",
            s.done,
            s.skipped,
            s.elapsed.as_secs_f64()
        )))
    }

    /// Pass 3 (task 0): clusters, unless a finished cluster pass with the same settings
    /// and inputs left them.
    fn cluster(&self) -> Result<RunSummary, RunError> {
        if self.options.task.index != 0 {
            return Ok(self.note(format!(
                "cluster: runs as task 0 only; nothing to do for task {}",
                self.options.task.index
            )));
        }
        let work = self.work();
        let (c, reused) = match crate::fuzzy::finished_cluster(&self.pass_files, &self.dedup, work)
        {
            Some(c) => (c, true),
            None => (
                crate::fuzzy::cluster(&self.pass_files, &self.pass_input, &self.dedup, work)?,
                false,
            ),
        };
        Ok(self.note(format!(
            "cluster{}: {} clusters of 2+ holding {} docs, {} to remove; {} buckets, {} pairs verified ({} rejected)",
            if reused { " (complete, reused)" } else { "" },
            c.clusters,
            c.clustered,
            c.removed,
            c.buckets,
            c.pairs_verified,
            c.pairs_rejected
        )))
    }

    /// Pass 4: the filter and the stages after it (this task's shards); `stats.json`
    /// then holds the whole funnel of the completed shards.
    fn filter(&self) -> Result<RunSummary, RunError> {
        if self.k == 0 {
            return run_plain(
                self.config,
                &RunOptions {
                    output_dir: Some(self.root.clone()),
                    pass: None,
                    ..self.options.clone()
                },
            );
        }
        let mut after = self.config.clone();
        after.input = InputConfig {
            paths: self
                .pass_files
                .iter()
                .map(|f| f.path.to_string_lossy().into_owned())
                .collect(),
            ..self.pass_input.clone()
        };
        after.stages = std::iter::once(StageConfig::MinhashFilter(self.dedup.clone()))
            .chain(self.config.stages[self.k + 1..].iter().cloned())
            .collect();
        let mut post = run_plain(
            &after,
            &RunOptions {
                output_dir: Some(self.root.clone()),
                pass: None,
                ..self.options.clone()
            },
        )?;
        // Merged again from the shard files: with several tasks, each may have written
        // `minhash/pre/stats.json` before the others finished.
        let pre_total = merged(&self.pre_root())?;
        post.total = chain_stats(&pre_total, &post.total);
        let path = self.root.join("stats.json");
        AtomicFile::write_all(
            &path,
            serde_json::to_string_pretty(&post.total)
                .unwrap_or_default()
                .as_bytes(),
        )
        .map_err(|source| RunError::Output { path, source })?;
        Ok(post)
    }

    fn note(&self, note: String) -> RunSummary {
        RunSummary {
            output_dir: self.root.clone(),
            notes: vec![note],
            ..Default::default()
        }
    }
}

fn merged(root: &Path) -> Result<RunStats, RunError> {
    crate::report::merge_completed(root)
        .map(|(stats, _)| stats)
        .map_err(|e| RunError::Output {
            path: root.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
}

/// Runs `options.pass` of the job `config` for `options.task`, or (no pass, one task)
/// every pass in order.
pub fn run(config: &PipelineConfig, options: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let Some(k) = job_stage(config) else {
        return Err(ConfigError::Invalid(
            "--pass runs a pass of a multi-pass job: the config needs a minhash_dedup stage \
             with a work_dir"
                .into(),
        )
        .into());
    };
    let StageConfig::MinhashFilter(dedup) = &config.stages[k] else {
        unreachable!("job_stage finds minhash_dedup stages")
    };
    if let Some(i) = job_stage(&PipelineConfig {
        stages: config.stages[k + 1..].to_vec(),
        ..config.clone()
    }) {
        return Err(ConfigError::Invalid(format!(
            "stages[{}]: only one minhash_dedup with a work_dir per pipeline",
            k + 1 + i
        ))
        .into());
    }
    dedup
        .validate()
        .map_err(|e| ConfigError::Invalid(format!("stages[{k}]: {e}")))?;
    let mut dedup = dedup.clone();
    dedup.work_dir = absolute(&dedup.work_dir)?;
    let root = absolute(
        &options
            .output_dir
            .clone()
            .unwrap_or_else(|| config.output_dir()),
    )?;
    let inputs = source::expand_inputs(&config.input, &config.base_dir).map_err(RunError::Input)?;
    let pre = Layout {
        root: root.join("minhash").join("pre"),
        extension: config.output.format.extension(),
    };
    let (pass_files, pass_input) = if k == 0 {
        (inputs.clone(), config.input.clone())
    } else {
        let format = match config.output.format {
            crate::sink::OutputFormat::Jsonl => Format::Jsonl,
            crate::sink::OutputFormat::Parquet => Format::Parquet,
        };
        let files = inputs
            .iter()
            .map(|f| InputFile {
                index: f.index,
                path: pre.docs(f.index),
                format,
            })
            .collect();
        (files, InputConfig::default())
    };
    let threads = options
        .threads
        .filter(|&t| t > 0)
        .or(Some(config.executor.threads).filter(|&t| t > 0))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let plan = Plan {
        config,
        options,
        k,
        dedup,
        root,
        pass_files,
        pass_input,
        threads,
    };
    let mut summary = match options.pass {
        Some(Pass::Signatures) => plan.signatures()?,
        Some(Pass::Buckets) => plan.buckets()?,
        Some(Pass::Cluster) => plan.cluster()?,
        Some(Pass::Filter) => plan.filter()?,
        None if k == 0 => plan.filter()?,
        None => {
            if options.task.count != 1 {
                return Err(ConfigError::Invalid(format!(
                    "stages[{k}]: minhash_dedup with a work_dir runs as passes: give each \
                     task --pass signatures, then buckets, cluster and filter (see \
                     configs/cc-job.toml), or run the job as one task"
                ))
                .into());
            }
            let pre = plan.signatures()?;
            if !pre.failed.is_empty() {
                return Ok(pre);
            }
            let mut notes = pre.notes.clone();
            notes.extend(plan.buckets()?.notes);
            notes.extend(plan.cluster()?.notes);
            let mut post = plan.filter()?;
            post.stats = chain_stats(&pre.stats, &post.stats);
            post.skipped = post.skipped.min(pre.skipped);
            notes.append(&mut post.notes);
            post.notes = notes;
            post
        }
    };
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn absolute(path: &Path) -> Result<PathBuf, RunError> {
    std::path::absolute(path)
        .map(|p| crate::io::clean_path(&p))
        .map_err(|source| RunError::Output {
            path: path.to_path_buf(),
            source,
        })
}
