//! The streaming executor. (Being built.)
use crate::config::PipelineConfig;
use crate::stats::RunStats;

/// Options of one run that are not part of the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Statistics.
    pub stats: RunStats,
}

/// Runs a pipeline.
pub fn run(_config: &PipelineConfig, _options: &RunOptions) -> Result<RunSummary, String> {
    Err("not built yet".into())
}
