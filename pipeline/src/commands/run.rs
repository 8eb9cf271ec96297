//! What every command that runs the executor shares: the one-stage config of a
//! stand-alone command, and the run summary as the text the binary prints.

use crate::config::{ConfigError, PipelineConfig};
use crate::executor::RunSummary;
use crate::shard::TaskSpec;
use crate::sink::OutputFormat;
use corpus_stages::StageConfig;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The config of a stand-alone command (`corpus dedup`, `corpus decontam`): `inputs`
/// (relative to the current directory) through one stage into `output`, dropped
/// documents written when `dropped`, in `format` (the default when None).
pub fn command_config(
    inputs: Vec<String>,
    output: &Path,
    stage: StageConfig,
    dropped: bool,
    format: Option<OutputFormat>,
) -> Result<PipelineConfig, ConfigError> {
    let mut config = PipelineConfig::for_command(inputs, output, vec![stage])?;
    config.output.dropped = dropped;
    if let Some(format) = format {
        config.output.format = format;
    }
    Ok(config)
}

/// The summary of a run as printed to standard error: the notes of its passes, then
/// (unless it only did what the notes say) shards, the input, each stage's funnel, the
/// upsampling mix and the output. `task` names the task in a multi-task job.
pub fn summary_text(s: &RunSummary, task: TaskSpec) -> String {
    let mut out = String::new();
    for note in &s.notes {
        let _ = writeln!(out, "{note}");
    }
    if s.shards == 0 && !s.notes.is_empty() {
        return out;
    }
    let st = &s.stats;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let task_note = if task.count > 1 {
        format!(" (task {} of {})", task.index, task.count)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "corpus: {} shard(s){task_note}: {} done, {} skipped as complete, {} failed, in {:.2}s",
        s.shards,
        st.shards,
        s.skipped,
        s.failed.len(),
        secs
    );
    let _ = writeln!(
        out,
        "  input: {} records, {} documents, {:.1} MB read ({:.1} MB/s){}{}",
        st.input.records,
        st.input.docs,
        st.input.bytes as f64 / 1e6,
        st.input.bytes as f64 / 1e6 / secs,
        fmt_counts(" skipped", &st.input.skipped),
        fmt_counts(" corrupt", &st.input.corrupt),
    );
    for stage in &st.stages {
        let _ = writeln!(
            out,
            "  {:<13} {:>10} in {:>10} out {:>8.2} s CPU{}",
            stage.kind,
            stage.docs_in,
            stage.docs_out,
            stage.cpu_seconds,
            fmt_counts("", &stage.drops)
        );
    }
    if let Some(mix) = super::mix::upsample_mix(&s.total) {
        out.push_str(&super::mix::mix_table(&mix));
    }
    let _ = writeln!(
        out,
        "  output: {} documents, {:.1} MB of text -> {}",
        st.docs_out,
        st.bytes_out as f64 / 1e6,
        s.output_dir.display()
    );
    out
}

/// `; LABEL k=v k=v` of a count table, or nothing when it is empty.
fn fmt_counts(label: &str, counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let items: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(";{label} {}", items.join(" "))
}

/// The error of a run with failed shards, listing them; None when none failed.
pub fn failed_shards(s: &RunSummary) -> Option<String> {
    if s.failed.is_empty() {
        return None;
    }
    let list: Vec<String> = s.failed.iter().map(|(_, e)| format!("  {e}")).collect();
    Some(format!(
        "{} shard(s) failed (rerun with --resume to retry them):\n{}",
        s.failed.len(),
        list.join("\n")
    ))
}
