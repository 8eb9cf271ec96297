//! `corpus dedup --fuzzy` (and `--exact --pass`): dedup of inputs on their own, as a plan
//! built in code over the executor: a config whose only stage is `minhash_dedup` (with
//! `method = "exact"` for exact dedup), run like any config by
//! [`plan::run`](crate::plan::run), all passes in one process (signatures in
//! memory unless a work directory is given) or one pass per call.

use crate::config::PipelineConfig;
use crate::fuzzy::FuzzyError;
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

impl Pass {
    /// The pass's name in the plan (the short name of the dedup stage's pass).
    pub fn name(self) -> &'static str {
        match self {
            Pass::Signatures => "signatures",
            Pass::Buckets => "buckets",
            Pass::Cluster => "cluster",
            Pass::Filter => "filter",
        }
    }
}

/// What `corpus dedup --fuzzy` is asked to do.
#[derive(Debug, Clone)]
pub struct FuzzyOptions {
    /// Input files, directories or globs.
    pub inputs: Vec<String>,
    /// Output directory (needed by the filter).
    pub output: Option<PathBuf>,
    /// Directory of the intermediate files (default: OUT/minhash, and one process
    /// clusters in memory).
    pub work_dir: Option<PathBuf>,
    /// One pass; None runs every pass in this process.
    pub pass: Option<Pass>,
    /// Write dropped documents under OUT/dropped.
    pub dropped: bool,
    /// Output format of the filter.
    pub format: OutputFormat,
}

/// The plan of `options` with the dedup settings `config` (checked already): the config
/// to run and the pass to run of it (None: every pass).
pub fn fuzzy(
    mut config: Config,
    options: &FuzzyOptions,
) -> Result<(PipelineConfig, Option<String>), FuzzyError> {
    let usage = |m: &str| FuzzyError::Usage(m.into());
    if options.inputs.is_empty() {
        return Err(usage("no inputs given"));
    }
    let needs_output = matches!(options.pass, None | Some(Pass::Filter));
    // The passes before the filter write only into the work directory, which then
    // stands for the output directory of the plan.
    let root = match (&options.output, &options.work_dir, needs_output) {
        (Some(o), _, _) => o.clone(),
        (None, _, true) => return Err(usage("--output is required")),
        (None, Some(w), false) => w.clone(),
        (None, None, false) => return Err(usage("--work-dir is required")),
    };
    if let Some(w) = &options.work_dir {
        config.work_dir = w.clone();
    }
    let pipeline = super::run::command_config(
        options.inputs.clone(),
        &root,
        StageConfig::MinhashDedup(config),
        options.dropped,
        Some(options.format),
    )?;
    Ok((pipeline, options.pass.map(|p| p.name().to_string())))
}
