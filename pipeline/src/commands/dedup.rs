//! `corpus dedup --fuzzy`: MinHash dedup of inputs on their own, all passes in one
//! process (signatures in memory) or one pass of a multi-pass job per call. The
//! passes before the filter run here and report one line each; the filter is a run of
//! the executor over the returned config.

use crate::config::PipelineConfig;
use crate::fuzzy::{self, ClusterSummary, FuzzyError, PassSummary};
use crate::shard::TaskSpec;
use crate::sink::OutputFormat;
use corpus_stages::StageConfig;
use corpus_stages::minhash::Config;
use std::path::PathBuf;

/// One pass of multi-pass fuzzy dedup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// MinHash signatures, by input file.
    Signatures,
    /// LSH buckets, by band.
    Buckets,
    /// Clusters, one task.
    Cluster,
    /// Survivors, by input file.
    Filter,
}

/// What `corpus dedup --fuzzy` is asked to do.
#[derive(Debug, Clone)]
pub struct FuzzyOptions {
    /// Input files, directories or globs.
    pub inputs: Vec<String>,
    /// Output directory (needed by the filter).
    pub output: Option<PathBuf>,
    /// Directory of the intermediate files (default: OUT/minhash).
    pub work_dir: Option<PathBuf>,
    /// One pass; None runs every pass in this process.
    pub pass: Option<Pass>,
    /// This task's index and the number of tasks (default: from the scheduler).
    pub task_index: Option<usize>,
    /// Number of tasks.
    pub task_count: Option<usize>,
    /// Worker threads (default: one per core).
    pub threads: Option<usize>,
    /// Write dropped documents under OUT/dropped.
    pub dropped: bool,
    /// Output format of the filter.
    pub format: OutputFormat,
}

/// Runs the passes of `options` before the filter with the settings `config` (checked
/// already), calling `note` with one line per pass as it ends, and returns the config
/// whose `filter` pass the executor runs next, when the request includes the filter.
pub fn fuzzy(
    mut config: Config,
    options: &FuzzyOptions,
    note: &mut dyn FnMut(&str),
) -> Result<Option<PipelineConfig>, FuzzyError> {
    let usage = |m: &str| FuzzyError::Usage(m.into());
    if options.inputs.is_empty() {
        return Err(usage("no inputs given"));
    }
    let needs_output = matches!(options.pass, None | Some(Pass::Filter));
    let output = match (&options.output, needs_output) {
        (Some(o), _) => Some(o.clone()),
        (None, false) => None,
        (None, true) => return Err(usage("--output is required")),
    };
    let work = match (&options.work_dir, &output) {
        (Some(w), _) => w.clone(),
        (None, Some(o)) => o.join("minhash"),
        (None, None) => return Err(usage("--work-dir is required")),
    };
    config.work_dir = work.clone();
    let (input, files) = fuzzy::input_files(&options.inputs)?;
    let task = TaskSpec::resolve(options.task_index, options.task_count, |k| {
        std::env::var(k).ok()
    })?;
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    match options.pass {
        Some(Pass::Signatures) => {
            let s = fuzzy::signatures(&files, &input, &config, &work, task, threads)?;
            note(&pass_note("signatures", &s));
        }
        Some(Pass::Buckets) => {
            let s = fuzzy::buckets(files.len(), &config, &work, task)?;
            note(&format!(
                "buckets: {} bands done, {} already complete, {:.1}s",
                s.done,
                s.skipped,
                s.elapsed.as_secs_f64()
            ));
        }
        Some(Pass::Cluster) if task.index != 0 => note(&format!(
            "cluster: runs as task 0 only; nothing to do for task {}",
            task.index
        )),
        Some(Pass::Cluster) => {
            let c = fuzzy::cluster(&files, &input, &config, &work)?;
            note(&cluster_note(&c));
        }
        Some(Pass::Filter) => {}
        None => {
            if task.count != 1 {
                return Err(usage(
                    "in-memory fuzzy dedup runs as one task; use --pass for multi-task runs",
                ));
            }
            if let Some(c) = fuzzy::finished_cluster(&files, &config, &work) {
                note(&format!("clusters: reusing {}", work.display()));
                note(&cluster_note(&c));
            } else {
                let (s, c) = fuzzy::in_memory(&files, &input, &config, &work, threads)?;
                note(&pass_note("signatures (in memory)", &s));
                note(&cluster_note(&c));
            }
        }
    }
    // The decisions are there (or the filter says which pass is missing).
    Ok(match output {
        Some(output) if needs_output => Some(super::run::command_config(
            options.inputs.clone(),
            &output,
            StageConfig::MinhashDedup(config),
            options.dropped,
            Some(options.format),
        )?),
        _ => None,
    })
}

fn pass_note(what: &str, s: &PassSummary) -> String {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{what}: {} docs ({} signed, {} too short to shingle, {} corrupt records skipped), \
         {} done, {} already complete, {:.1}s, {:.0} docs/s, {:.1} MB/s",
        s.docs,
        s.signed,
        s.too_short,
        s.corrupt,
        s.done,
        s.skipped,
        secs,
        s.docs as f64 / secs,
        s.text_bytes as f64 / secs / 1e6
    )
}

fn cluster_note(c: &ClusterSummary) -> String {
    format!(
        "clusters: {} clusters of 2+ holding {} docs, {} to remove; {} buckets, {} pairs verified ({} rejected)",
        c.clusters, c.clustered, c.removed, c.buckets, c.pairs_verified, c.pairs_rejected
    )
}
