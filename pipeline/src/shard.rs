//! Splitting work over tasks, the output layout, and completion markers for resume.
//!
//! One input file is one shard. Task `i` of `n` takes the shards whose index (position
//! in the sorted list of all inputs) is `i` modulo `n`, so any number of tasks, on one
//! machine or a cluster array, covers every shard exactly once, and a shard's outputs
//! have the same name whichever task wrote them.
//!
//! Output layout under the output directory:
//!
//! ```text
//! docs/part-00000.jsonl.gz     kept documents of shard 0 (or .parquet)
//! dropped/part-00000.jsonl.gz  dropped documents with stage and reason (optional)
//! stats/part-00000.json        statistics of shard 0
//! state/part-00000.stage-2.bin state of ordered stage 2 after shard 0 (exact dedup)
//! done/part-00000.json         completion marker, written last
//! stats.json                   statistics merged over every completed shard
//! config.toml                  the resolved config of the run
//! ```

use crate::config::ConfigError;
use crate::source::InputFile;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which part of the work this process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSpec {
    /// 0-based task index.
    pub index: usize,
    /// Number of tasks.
    pub count: usize,
}

impl Default for TaskSpec {
    fn default() -> Self {
        TaskSpec { index: 0, count: 1 }
    }
}

impl TaskSpec {
    /// Resolves the task from flags, falling back to the scheduler's environment:
    /// Slurm arrays (`SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`, and
    /// `SLURM_ARRAY_TASK_COUNT`) or Kubernetes indexed Jobs (`JOB_COMPLETION_INDEX`, with
    /// the count from the flag or `CORPUS_TASK_COUNT`).
    pub fn resolve(
        index: Option<usize>,
        count: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TaskSpec, ConfigError> {
        let num = |name: &str| -> Result<Option<usize>, ConfigError> {
            env(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        ConfigError::Invalid(format!("{name}={v} is not a non-negative integer"))
                    })
                })
                .transpose()
        };
        let (env_index, env_count) = if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            (Some(id.saturating_sub(min)), num("SLURM_ARRAY_TASK_COUNT")?)
        } else if let Some(id) = num("JOB_COMPLETION_INDEX")? {
            (Some(id), num("CORPUS_TASK_COUNT")?)
        } else {
            (None, num("CORPUS_TASK_COUNT")?)
        };
        let index = index.or(env_index).unwrap_or(0);
        let count = count
            .or(env_count)
            .unwrap_or(if index == 0 { 1 } else { 0 });
        if count == 0 {
            return Err(ConfigError::Invalid(format!(
                "task index {index} given without a task count: pass --task-count"
            )));
        }
        if index >= count {
            return Err(ConfigError::Invalid(format!(
                "task index {index} is not below the task count {count}"
            )));
        }
        Ok(TaskSpec { index, count })
    }

    /// The shards of this task, in input order.
    pub fn select(&self, files: &[InputFile]) -> Vec<InputFile> {
        files
            .iter()
            .filter(|f| f.index % self.count == self.index)
            .cloned()
            .collect()
    }
}

/// The dedup barriers among stage `kinds`: (position, name in pass names, directory
/// under the output directory holding its `pre/` documents and default work files).
/// A kind that appears more than once gets its position as a suffix (`minhash_dedup-5`).
pub fn barrier_names(kinds: &[&str]) -> Vec<(usize, String, String)> {
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    kinds
        .iter()
        .enumerate()
        .filter_map(|(i, &kind)| {
            let dir = match kind {
                corpus_stages::minhash::KIND => "minhash",
                corpus_stages::exact_dedup::KIND => "exact_dedup",
                _ => return None,
            };
            Some(if count(kind) > 1 {
                (i, format!("{kind}-{i}"), format!("{dir}-{i}"))
            } else {
                (i, kind.to_string(), dir.to_string())
            })
        })
        .collect()
}

/// Paths of the outputs of a run.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The output directory.
    pub root: PathBuf,
    /// Extension of document files (`jsonl.gz` or `parquet`).
    pub extension: &'static str,
}

impl Layout {
    /// The base name of a shard's files, `part-00042`.
    pub fn part(index: usize) -> String {
        format!("part-{index:05}")
    }

    /// Kept documents of a shard.
    pub fn docs(&self, index: usize) -> PathBuf {
        self.root
            .join("docs")
            .join(format!("{}.{}", Self::part(index), self.extension))
    }

    /// Dropped documents of a shard.
    pub fn dropped(&self, index: usize) -> PathBuf {
        self.root
            .join("dropped")
            .join(format!("{}.{}", Self::part(index), self.extension))
    }

    /// Statistics of a shard.
    pub fn stats(&self, index: usize) -> PathBuf {
        self.root
            .join("stats")
            .join(format!("{}.json", Self::part(index)))
    }

    /// Completion marker of a shard.
    pub fn marker(&self, index: usize) -> PathBuf {
        self.root
            .join("done")
            .join(format!("{}.json", Self::part(index)))
    }

    /// Checkpoint of the ordered stage at `stage` (its index in the config) taken
    /// after a shard, replayed on resume.
    pub fn checkpoint(&self, index: usize, stage: usize) -> PathBuf {
        self.root
            .join("state")
            .join(format!("{}.stage-{stage}.bin", Self::part(index)))
    }

    /// The sub-directories, created before a run.
    pub fn dirs(&self) -> [PathBuf; 5] {
        ["docs", "dropped", "stats", "done", "state"].map(|d| self.root.join(d))
    }
}

/// What a completion marker records: enough to tell whether a finished shard may be
/// skipped on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Shard index.
    pub shard: usize,
    /// The input file.
    pub input: PathBuf,
    /// Fingerprint of the settings that decide the output (see
    /// [`PipelineConfig::fingerprint`](crate::config::PipelineConfig::fingerprint)).
    pub fingerprint: String,
    /// Documents written.
    pub docs_out: u64,
    /// The input file's size in bytes when it was read (local files; none in markers
    /// of older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<u64>,
    /// The input file's modification time (nanoseconds since the epoch) when it was
    /// read: local files outside the output directory. Files inside it (documents of an
    /// earlier pass) are checked by size only, so that a copied output directory resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_mtime: Option<u64>,
}

/// What a marker says of its input: the path (relative to the output directory when
/// inside it, so that the directory can be moved) and the file's identity.
pub fn input_identity(path: &Path, root: &Path) -> (PathBuf, Option<u64>, Option<u64>) {
    if let Ok(inside) = path.strip_prefix(root) {
        let size = std::fs::metadata(path).ok().map(|m| m.len());
        return (inside.to_path_buf(), size, None);
    }
    if crate::remote::Storage::of(path).is_remote() {
        return (path.to_path_buf(), None, None);
    }
    let (size, mtime) = file_identity(path);
    (path.to_path_buf(), size, mtime)
}

/// A local file's identity as every resume check records it: size and modification
/// time (nanoseconds since the epoch); `None` for what cannot be read.
pub fn file_identity(path: &Path) -> (Option<u64>, Option<u64>) {
    let meta = std::fs::metadata(path).ok();
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    (meta.map(|m| m.len()), mtime)
}

impl Marker {
    /// A marker for shard `shard` of input `input`, in the output directory `root`.
    pub fn new(
        shard: usize,
        input: &Path,
        root: &Path,
        fingerprint: &str,
        docs_out: u64,
    ) -> Marker {
        let (input, input_size, input_mtime) = input_identity(input, root);
        Marker {
            shard,
            input,
            fingerprint: fingerprint.to_string(),
            docs_out,
            input_size,
            input_mtime,
        }
    }

    /// True when the shard this marker completed may be skipped: same settings, same
    /// input file, unchanged since (as far as the marker recorded it).
    pub fn matches(&self, fingerprint: &str, input: &Path, root: &Path) -> bool {
        let (path, size, mtime) = input_identity(input, root);
        let same = |recorded: Option<u64>, now: Option<u64>| recorded.is_none() || recorded == now;
        self.fingerprint == fingerprint
            && self.input == path
            && same(self.input_size, size)
            && same(self.input_mtime, mtime)
    }

    /// Reads a marker; `None` when there is none or it cannot be parsed (a shard with
    /// a damaged marker is simply redone).
    pub fn read(path: &Path) -> Option<Marker> {
        let bytes = crate::remote::Storage::of(path).read(path).ok()??;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Format;
    use crate::testing::env;

    #[test]
    fn task_from_flags_and_schedulers() {
        assert_eq!(
            TaskSpec::resolve(None, None, env(&[])).unwrap(),
            TaskSpec::default()
        );
        assert_eq!(
            TaskSpec::resolve(Some(2), Some(4), env(&[])).unwrap(),
            TaskSpec { index: 2, count: 4 }
        );
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(
            TaskSpec::resolve(None, None, slurm).unwrap(),
            TaskSpec { index: 4, count: 8 }
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3")]);
        assert!(TaskSpec::resolve(None, None, &k8s).is_err());
        assert_eq!(
            TaskSpec::resolve(None, Some(4), &k8s).unwrap(),
            TaskSpec { index: 3, count: 4 }
        );
        assert!(TaskSpec::resolve(Some(4), Some(4), env(&[])).is_err());
        assert!(TaskSpec::resolve(None, None, env(&[("JOB_COMPLETION_INDEX", "x")])).is_err());
    }

    #[test]
    fn tasks_partition_the_shards() {
        let files: Vec<InputFile> = (0..10)
            .map(|index| InputFile {
                index,
                path: format!("f{index}").into(),
                format: Format::Jsonl,
            })
            .collect();
        let mut seen: Vec<usize> = (0..3)
            .flat_map(|index| TaskSpec { index, count: 3 }.select(&files))
            .map(|f| f.index)
            .collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
}
