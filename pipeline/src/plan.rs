//! The plan of a run: the config's `[[stages]]` cut at their barriers into passes.
//!
//! A barrier is a stage that must see every document of the job before it can decide
//! about any: `exact_dedup`, `minhash_dedup` (global dedup) and `tokenize` (packing
//! shuffles the whole run). The plan cuts the stage list at each of them:
//!
//! ```text
//! stages: extract langid normalize |exact_dedup| quality |minhash_dedup| decontam |tokenize|
//!
//! exact_dedup.signatures    files       extract .. normalize -> OUT/exact_dedup/pre/, key hashes
//! exact_dedup.buckets       bands       equal keys                (W = OUT/exact_dedup)
//! exact_dedup.cluster       single      first occurrence of each key
//! minhash_dedup.signatures  files       drop exact duplicates, quality -> OUT/minhash/pre/,
//!                                       MinHash signatures (as the documents are written)
//! minhash_dedup.buckets     bands       LSH buckets               (W = work_dir or OUT/minhash)
//! minhash_dedup.cluster     single      clusters and survivors
//! minhash_dedup.filter      files       drop near-duplicates, decontam -> OUT/docs/,
//!                                       token ids -> OUT/tokenize/ (as the documents are written)
//! tokenize                  single      shuffle and pack the ids -> OUT/tokens/
//! ```
//!
//! A config without a dedup barrier has one per-file pass, `stages`. Each pass has a
//! sharding: by input file (`files`; task `i` of `n` takes the files whose index is `i`
//! modulo `n`), by LSH band (`bands`) or one task (`single`). A scheduler runs each pass
//! as an array job after the whole of the one before (`corpus plan CONFIG --json` lists
//! them; `configs/cc-job-slurm.sh` builds its chain from that), and `corpus run CONFIG
//! --pass NAME` runs one pass for one task. With a single dedup barrier the short names
//! `signatures`, `buckets`, `cluster` and `filter` name its passes too.
//!
//! One process (`corpus run CONFIG`, one task) runs every pass in order and fuses what
//! it can without changing a byte of the output: `exact_dedup` stays an ordered stage
//! of its per-file pass (first occurrence in input order, as the passes decide), and a
//! `minhash_dedup` without `work_dir` clusters in memory. Shard `i` of the input is
//! shard `i` of every `pre/` directory and of `OUT`, whichever task wrote it, so the
//! result is the same for any number of tasks (tests/slurm.rs).

use crate::config::{ConfigError, PipelineConfig};
use crate::executor::{Artifact, RunError, RunOptions, RunSummary, chain_stats, run_segment};
use crate::io::AtomicFile;
use crate::shard::{Layout, barrier_names};
use crate::source::{self, Format, InputConfig, InputFile};
use crate::stats::RunStats;
use corpus_stages::StageConfig;
use corpus_stages::minhash::Config as DedupConfig;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the last per-file pass leaves the token ids `tokenize` packs, under the output
/// directory (removed once packed).
const IDS_DIR: &str = "tokenize";

/// Runs a pipeline: the passes of its [`Plan`] for this task, from sources through
/// stages to sinks (and token shards, with a `tokenize` stage).
///
/// With `options.pass`, only that pass runs; a task of a multi-task run runs the
/// passes given to it by its scheduler (`corpus plan`).
pub fn run(config: &PipelineConfig, options: &RunOptions) -> Result<RunSummary, RunError> {
    let mode = if options.pass.is_some() || options.task.count > 1 {
        Mode::Scheduled
    } else {
        Mode::OneProcess
    };
    Plan::new(config, options.output_dir.as_deref(), mode)?.run(options, options.pass.as_deref())
}

/// How the work of a pass is split over the tasks of an array job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharding {
    /// By input file.
    Files,
    /// By LSH band (`tasks` bands).
    Bands,
    /// By hash partition.
    Partitions,
    /// One task.
    Single,
}

impl Sharding {
    /// The word used in `corpus plan`.
    pub fn name(self) -> &'static str {
        match self {
            Sharding::Files => "files",
            Sharding::Bands => "bands",
            Sharding::Partitions => "partitions",
            Sharding::Single => "single",
        }
    }
}

/// One pass of a plan, as `corpus plan` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassInfo {
    /// The name `--pass` takes.
    pub name: String,
    /// How the pass is split over tasks.
    pub sharding: Sharding,
    /// Useful tasks: `None` for a pass sharded by input file (any number), else how
    /// many units of work there are (bands; 1 for a single task).
    pub tasks: Option<usize>,
    /// What the pass does, in a few words.
    #[serde(skip)]
    pub about: String,
}

/// What a pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The stages before barrier `j` (after barrier `j - 1`'s filter), then the
    /// signatures barrier `j` observes.
    Signatures(usize),
    /// Barrier `j`'s buckets.
    Buckets(usize),
    /// Barrier `j`'s clusters and decisions.
    Cluster(usize),
    /// The stages after the last dedup barrier, writing `OUT`.
    Last,
    /// Packing `OUT/docs` into token shards.
    Tokenize,
}

/// A dedup barrier the plan cuts at.
#[derive(Debug, Clone)]
struct Cut {
    /// Position of the stage in the config.
    stage: usize,
    /// Its name in pass names: the stage kind, with `-N` (its position) when the kind
    /// appears more than once.
    name: String,
    /// The settings of the passes (`method = "exact"` for `exact_dedup`); `work_dir`
    /// absolute.
    dedup: DedupConfig,
    /// Where the documents of the stages before it go: `OUT/<dir>/pre`.
    pre: PathBuf,
    /// `work_dir` was empty: one process clusters in memory.
    in_memory: bool,
}

/// Whether the plan is for one process or for a scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every pass in this process, fusing what stays byte-identical (`exact_dedup` as
    /// an ordered stage).
    OneProcess,
    /// Passes run by tasks of array jobs: every dedup barrier is cut.
    Scheduled,
}

/// A config cut into passes.
pub struct Plan<'a> {
    config: &'a PipelineConfig,
    /// The output directory (absolute when local).
    root: PathBuf,
    cuts: Vec<Cut>,
    /// End of the per-document stages (the position of `tokenize`, or the stage count).
    stage_end: usize,
    tokenize: Option<corpus_stages::tokenize::Config>,
    /// Every input file of the job.
    inputs: Vec<InputFile>,
}

fn output_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Output {
        path: path.to_path_buf(),
        source,
    }
}

impl<'a> Plan<'a> {
    /// Cuts `config` into passes; `output_dir` overrides the config's `output.dir`.
    pub fn new(
        config: &'a PipelineConfig,
        output_dir: Option<&Path>,
        mode: Mode,
    ) -> Result<Plan<'a>, RunError> {
        config.validate_settings()?;
        let root = output_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| config.output_dir());
        let remote = crate::remote::Storage::of(&root).is_remote();
        let root = if remote {
            root
        } else {
            // Absolute: later passes read earlier passes' documents as input paths,
            // which are taken from the config file's folder, not the current directory.
            std::path::absolute(&root)
                .map(|p| crate::io::clean_path(&p))
                .map_err(output_err(&root))?
        };
        let (stage_end, tokenize) = match config.stages.last() {
            Some(StageConfig::Tokenize(t)) => {
                t.validate().map_err(|e| {
                    ConfigError::Invalid(format!("stages[{}]: {e}", config.stages.len() - 1))
                })?;
                if remote {
                    return Err(ConfigError::Invalid(format!(
                        "tokenize packs from a local output directory; {} is object storage",
                        root.display()
                    ))
                    .into());
                }
                (config.stages.len() - 1, Some(t.clone()))
            }
            _ => (config.stages.len(), None),
        };
        let kinds: Vec<&str> = config.stages[..stage_end]
            .iter()
            .map(StageConfig::kind)
            .collect();
        let names = barrier_names(&kinds);
        let mut cuts = Vec::new();
        for (i, stage) in config.stages[..stage_end].iter().enumerate() {
            let invalid =
                |m: String| RunError::from(ConfigError::Invalid(format!("stages[{i}]: {m}")));
            let dedup = match stage {
                StageConfig::MinhashDedup(c) => {
                    c.validate().map_err(invalid)?;
                    c.clone()
                }
                StageConfig::ExactDedup(c) if mode == Mode::Scheduled => DedupConfig {
                    method: corpus_stages::minhash::Method::exact(c.key),
                    ..DedupConfig::exact()
                },
                _ => continue,
            };
            let Some((_, name, dir)) = names.iter().find(|(k, _, _)| *k == i).cloned() else {
                continue;
            };
            if remote {
                return Err(invalid(format!(
                    "{} keeps its work files and the documents before it next to the \
                     output: write {} to a local (or shared) directory",
                    stage.kind(),
                    root.display()
                )));
            }
            let in_memory = dedup.work_dir.as_os_str().is_empty();
            let mut dedup = dedup;
            dedup.work_dir = if in_memory {
                root.join(&dir)
            } else {
                std::path::absolute(&dedup.work_dir)
                    .map(|p| crate::io::clean_path(&p))
                    .map_err(output_err(&dedup.work_dir))?
            };
            cuts.push(Cut {
                stage: i,
                name,
                dedup,
                pre: root.join(&dir).join("pre"),
                in_memory,
            });
        }
        let inputs =
            source::expand_inputs(&config.input, &config.base_dir).map_err(RunError::Input)?;
        Ok(Plan {
            config,
            root,
            cuts,
            stage_end,
            tokenize,
            inputs,
        })
    }

    /// The output directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn steps(&self) -> Vec<(Step, PassInfo)> {
        let mut steps = Vec::new();
        let info =
            |name: String, sharding: Sharding, tasks: Option<usize>, about: String| PassInfo {
                name,
                sharding,
                tasks,
                about,
            };
        for (j, cut) in self.cuts.iter().enumerate() {
            let before = self.segment_kinds(j).join(" ");
            steps.push((
                Step::Signatures(j),
                info(
                    format!("{}.signatures", cut.name),
                    Sharding::Files,
                    None,
                    if before.is_empty() {
                        "signatures of the input documents".into()
                    } else {
                        format!("{before}, then signatures")
                    },
                ),
            ));
            steps.push((
                Step::Buckets(j),
                info(
                    format!("{}.buckets", cut.name),
                    Sharding::Bands,
                    Some(cut.dedup.bands),
                    "documents sharing a band hash".into(),
                ),
            ));
            steps.push((
                Step::Cluster(j),
                info(
                    format!("{}.cluster", cut.name),
                    Sharding::Single,
                    Some(1),
                    "clusters and survivors".into(),
                ),
            ));
        }
        let last = self.segment_kinds(self.cuts.len()).join(" ");
        steps.push((
            Step::Last,
            info(
                match self.cuts.last() {
                    Some(cut) => format!("{}.filter", cut.name),
                    None => "stages".into(),
                },
                Sharding::Files,
                None,
                if last.is_empty() {
                    "copy the documents".into()
                } else {
                    last
                },
            ),
        ));
        if self.tokenize.is_some() {
            steps.push((
                Step::Tokenize,
                info(
                    "tokenize".into(),
                    Sharding::Single,
                    Some(1),
                    "shuffle and pack the kept documents".into(),
                ),
            ));
        }
        steps
    }

    /// The passes in execution order.
    pub fn passes(&self) -> Vec<PassInfo> {
        self.steps().into_iter().map(|(_, i)| i).collect()
    }

    /// The plan as `corpus plan --json` prints it.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out {
            passes: Vec<PassInfo>,
        }
        serde_json::to_string_pretty(&Out {
            passes: self.passes(),
        })
        .unwrap_or_default()
    }

    /// The plan as text, one pass a line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.passes().iter().enumerate() {
            let tasks = p.tasks.map_or("any".to_string(), |t| t.to_string());
            out.push_str(&format!(
                "{:>2}. {:<26} {:<7} tasks {:<4} {}\n",
                i + 1,
                p.name,
                p.sharding.name(),
                tasks,
                p.about
            ));
        }
        out
    }

    /// The stage kinds of segment `j`: what runs before barrier `j` (or, for `j` = the
    /// number of cuts, after the last one), the previous barrier's filter first.
    fn segment_kinds(&self, j: usize) -> Vec<String> {
        let stages = self.segment_stages(j);
        stages
            .iter()
            .enumerate()
            .map(|(k, s)| match k {
                // The filter of the barrier before: named by the barrier.
                0 if j > 0 => format!("{} (filter)", self.cuts[j - 1].name),
                _ => s.kind().to_string(),
            })
            .collect()
    }

    /// The stages of segment `j`.
    fn segment_stages(&self, j: usize) -> Vec<StageConfig> {
        let start = if j == 0 {
            0
        } else {
            self.cuts[j - 1].stage + 1
        };
        let end = self.cuts.get(j).map_or(self.stage_end, |c| c.stage);
        let filter = (j > 0).then(|| StageConfig::MinhashDedup(self.cuts[j - 1].dedup.clone()));
        filter
            .into_iter()
            .chain(self.config.stages[start..end].iter().cloned())
            .collect()
    }

    /// What segment `j` reads: the input, or the documents the segment before it wrote
    /// (when it had stages).
    fn segment_input(&self, j: usize) -> (InputConfig, Option<Vec<InputFile>>) {
        if j == 0 || self.segment_stages(j - 1).is_empty() {
            return (self.config.input.clone(), None);
        }
        let files = self.pre_files(j - 1);
        let input = InputConfig {
            paths: files
                .iter()
                .map(|f| f.path.to_string_lossy().into_owned())
                .collect(),
            ..Default::default()
        };
        (input, Some(files))
    }

    /// The documents barrier `j` observes: `pre/` of the segment before it, one file
    /// per input file (the input files themselves when that segment has no stages).
    fn pre_files(&self, j: usize) -> Vec<InputFile> {
        let format = match self.config.output.format {
            crate::sink::OutputFormat::Jsonl => Format::Jsonl,
            crate::sink::OutputFormat::Parquet => Format::Parquet,
        };
        let pre = Layout {
            root: self.cuts[j].pre.clone(),
            extension: self.config.output.format.extension(),
        };
        self.inputs
            .iter()
            .map(|f| InputFile {
                index: f.index,
                path: pre.docs(f.index),
                format,
            })
            .collect()
    }
}

/// The settings of a task's run of a plan.
struct Exec<'o> {
    options: &'o RunOptions,
    threads: usize,
}

impl Plan<'_> {
    /// The config of segment `j` as a run of its own.
    fn segment_config(&self, j: usize) -> PipelineConfig {
        let mut config = self.config.clone();
        config.stages = self.segment_stages(j);
        config.input = self.segment_input(j).0;
        config
    }

    /// Where segment `j` writes: `pre/` of barrier `j`, or `OUT` for the last.
    fn segment_root(&self, j: usize) -> PathBuf {
        self.cuts
            .get(j)
            .map_or_else(|| self.root.clone(), |c| c.pre.clone())
    }

    /// What barrier `j` observes, with the input settings to read it.
    fn observed(&self, j: usize) -> (InputConfig, Vec<InputFile>) {
        if self.segment_stages(j).is_empty() {
            (self.config.input.clone(), self.inputs.clone())
        } else {
            (InputConfig::default(), self.pre_files(j))
        }
    }

    /// Runs segment `j` for this task (nothing when it has no stages).
    fn run_segment(&self, j: usize, x: &Exec) -> Result<Option<RunSummary>, RunError> {
        let segment = self.segment_config(j);
        if j < self.cuts.len() && segment.stages.is_empty() {
            return Ok(None);
        }
        let options = RunOptions {
            output_dir: Some(self.segment_root(j)),
            pass: None,
            ..x.options.clone()
        };
        // What the next pass needs of the documents, derived while they are in memory:
        // the barrier's signatures, or the token ids `tokenize` packs.
        let cut = self.cuts.get(j);
        let sign = cut.map(|c| crate::fuzzy::SignArtifact::new(&c.dedup, &c.dedup.work_dir));
        let tokens = match &self.tokenize {
            Some(t) if cut.is_none() => Some(crate::commands::pack::TokensArtifact::new(
                self.tokenizer(t)?,
                self.root.join(IDS_DIR),
            )),
            _ => None,
        };
        let mut artifacts: Vec<&dyn Artifact> = Vec::new();
        if let Some(a) = &sign {
            artifacts.push(a);
        }
        if let Some(a) = &tokens {
            artifacts.push(a);
        }
        let mut summary = run_segment(&segment, &options, self.config, &artifacts)?;
        if let (Some(cut), Some(sign)) = (cut, &sign) {
            self.gather_dropped(j, x)?;
            let (signed, cpu) = sign.summary();
            if signed.done > 0 {
                let wall = signed.elapsed.as_secs_f64();
                record_time(cut, "observe", x.options.task.index, wall, cpu)?;
                summary.notes.push(signed.describe(&format!(
                    "{}.signatures (while the pass before wrote them)",
                    cut.name
                )));
            }
        }
        if let Some((docs, reused)) = tokens.as_ref().map(|a| a.counts())
            && docs > 0
        {
            summary.notes.push(format!(
                "tokenize: token ids of {docs} docs derived for packing ({reused} of them \
                 counted by upsample already)"
            ));
        }
        Ok(Some(summary))
    }

    /// The tokenizer of the `tokenize` stage.
    fn tokenizer(
        &self,
        t: &corpus_stages::tokenize::Config,
    ) -> Result<corpus_models::tokenizer::Tokenizer, RunError> {
        Ok(crate::commands::tokens::TokenizerSpec {
            vocab: t.vocab.clone(),
            pattern: t.pattern.clone(),
            extras: t.extra_tokens,
        }
        .load()?)
    }

    /// Moves the dropped documents of segment `j` (before barrier `j`) of this task's
    /// completed shards to `OUT/dropped/part-NNNNN.before-<barrier>.<ext>`, so that
    /// `OUT/dropped/` holds every drop of every pass.
    fn gather_dropped(&self, j: usize, x: &Exec) -> Result<(), RunError> {
        if !self.config.output.dropped {
            return Ok(());
        }
        let extension = self.config.output.format.extension();
        let pre = Layout {
            root: self.cuts[j].pre.clone(),
            extension,
        };
        let dir = self.root.join("dropped");
        std::fs::create_dir_all(&dir).map_err(output_err(&dir))?;
        for file in x.options.task.select(&self.inputs) {
            let from = pre.dropped(file.index);
            if !pre.marker(file.index).exists() || !from.exists() {
                continue;
            }
            let to = dir.join(format!(
                "{}.before-{}.{extension}",
                Layout::part(file.index),
                self.cuts[j].name
            ));
            std::fs::rename(&from, &to).map_err(output_err(&to))?;
        }
        Ok(())
    }

    fn note(&self, note: String) -> RunSummary {
        RunSummary {
            output_dir: self.root.clone(),
            notes: vec![note],
            ..Default::default()
        }
    }

    /// Runs one pass for this task.
    fn run_step(&self, step: Step, x: &Exec) -> Result<RunSummary, RunError> {
        let task = x.options.task;
        match step {
            Step::Signatures(j) => {
                let mut summary = match self.run_segment(j, x)? {
                    Some(s) if !s.failed.is_empty() => return Ok(s),
                    Some(s) => s,
                    None => self.note(String::new()),
                };
                summary.notes.retain(|n| !n.is_empty());
                summary.notes.push(self.signatures(j, x)?);
                Ok(summary)
            }
            Step::Buckets(j) => {
                let cut = &self.cuts[j];
                let clock = Clock::start();
                let s = crate::fuzzy::buckets(
                    self.inputs.len(),
                    &cut.dedup,
                    &cut.dedup.work_dir,
                    task,
                )?;
                clock.record(cut, "buckets", task.index)?;
                Ok(self.note(format!(
                    "{}.buckets: {} band(s) done, {} already complete, {:.1}s",
                    cut.name,
                    s.done,
                    s.skipped,
                    s.elapsed.as_secs_f64()
                )))
            }
            Step::Cluster(j) => {
                let cut = &self.cuts[j];
                if task.index != 0 {
                    return Ok(self.note(format!(
                        "{}.cluster: runs as task 0 only; nothing to do for task {}",
                        cut.name, task.index
                    )));
                }
                Ok(RunSummary {
                    output_dir: self.root.clone(),
                    notes: self.clusters(j, None)?,
                    ..Default::default()
                })
            }
            Step::Last => self.run_last(x),
            Step::Tokenize => {
                if task.index != 0 {
                    return Ok(self.note(format!(
                        "tokenize: runs as task 0 only; nothing to do for task {}",
                        task.index
                    )));
                }
                self.tokenize(x, true)
            }
        }
    }

    /// Barrier `j`'s signatures of this task's files (the segment before it has run).
    fn signatures(&self, j: usize, x: &Exec) -> Result<String, RunError> {
        let cut = &self.cuts[j];
        let (input, files) = self.observed(j);
        let task = x.options.task;
        let clock = Clock::start();
        let s = crate::fuzzy::signatures(
            &files,
            &input,
            &cut.dedup,
            &cut.dedup.work_dir,
            task,
            x.threads,
        )?;
        clock.record(cut, "signatures", task.index)?;
        if s.done == 0 {
            return Ok(format!(
                "{}.signatures: all {} file(s) of this task signed already",
                cut.name, s.skipped
            ));
        }
        Ok(s.describe(&format!("{}.signatures", cut.name)))
    }

    /// Barrier `j`'s clusters, reused when a finished cluster pass with the same
    /// settings and inputs left them; else computed from the signature passes' files,
    /// or (`in_memory`: worker threads) from the documents in memory. Returns the notes.
    fn clusters(&self, j: usize, in_memory: Option<usize>) -> Result<Vec<String>, RunError> {
        let cut = &self.cuts[j];
        let (input, files) = self.observed(j);
        let work = &cut.dedup.work_dir;
        if let Some(c) = crate::fuzzy::finished_cluster(&files, &cut.dedup, work) {
            return Ok(vec![cluster_note(&cut.name, &c, true)]);
        }
        let mut notes = Vec::new();
        let clock = Clock::start();
        let c = match in_memory {
            Some(threads) => {
                let (s, c) = crate::fuzzy::in_memory(&files, &input, &cut.dedup, work, threads)?;
                clock.record(cut, "in_memory", 0)?;
                notes.push(s.describe(&format!("{}.signatures (in memory)", cut.name)));
                c
            }
            None => {
                let c = crate::fuzzy::cluster(&files, &input, &cut.dedup, work)?;
                clock.record(cut, "cluster", 0)?;
                c
            }
        };
        notes.push(cluster_note(&cut.name, &c, false));
        Ok(notes)
    }

    /// The last per-file pass: the stages after the last dedup barrier, writing `OUT`;
    /// `stats.json` then holds the funnel of every pass over the completed shards.
    fn run_last(&self, x: &Exec) -> Result<RunSummary, RunError> {
        let j = self.cuts.len();
        let mut post = self
            .run_segment(j, x)?
            .expect("the last segment always runs");
        if self.cuts.is_empty() || !post.failed.is_empty() {
            return Ok(post);
        }
        // Merged again from the shard files: with several tasks, each may have written
        // a `pre/stats.json` before the others finished.
        let mut total: Option<RunStats> = None;
        for k in 0..j {
            if self.segment_stages(k).is_empty() {
                continue;
            }
            let pre = merged(&self.cuts[k].pre)?;
            total = Some(match total {
                None => pre,
                Some(t) => chain_stats(&t, &pre),
            });
        }
        if let Some(pre) = total {
            post.total = chain_stats(&pre, &post.total);
            self.add_barrier_time(&mut post.total);
            let path = self.root.join("stats.json");
            crate::remote::Storage::Local
                .write_json(&path, &post.total)
                .map_err(output_err(&path))?;
        }
        Ok(post)
    }

    /// Adds each barrier's own passes (recorded under `W/time/`) to the time of its
    /// filter, the first stage of the segment after it, in `stats` of every segment in
    /// a row (a segment that did nothing here has no entries: nothing is added then).
    fn add_barrier_time(&self, stats: &mut RunStats) {
        let mut at = 0;
        for k in 0..=self.cuts.len() {
            if k > 0 {
                let cut = &self.cuts[k - 1];
                // The filter's name, as the `minhash_dedup` stage gives it.
                let name = match cut.dedup.method.exact_key() {
                    Some(_) => corpus_stages::exact_dedup::KIND,
                    None => corpus_stages::minhash::KIND,
                };
                if let Some(st) = stats.stages.get_mut(at).filter(|st| st.kind == name) {
                    let (wall, cpu) = barrier_time(cut);
                    st.seconds += wall;
                    st.cpu_seconds += cpu;
                }
            }
            at += self.segment_stages(k).len();
        }
    }

    /// Packs `OUT/docs` once every shard of the run is complete. `required`: an
    /// incomplete run is an error (an explicit `--pass tokenize`) rather than a note
    /// (the last task of a multi-task run packs).
    fn tokenize(&self, x: &Exec, required: bool) -> Result<RunSummary, RunError> {
        use crate::commands::pack;
        let Some(t) = &self.tokenize else {
            return Ok(self.note(String::new()));
        };
        let layout = Layout {
            root: self.root.clone(),
            extension: self.config.output.format.extension(),
        };
        let missing = self
            .inputs
            .iter()
            .filter(|f| !layout.marker(f.index).exists())
            .count();
        if missing > 0 {
            let message = format!(
                "tokenize: {missing} shard(s) of the run are not complete yet; the task that \
                 completes the last one packs the tokens"
            );
            if required {
                return Err(ConfigError::Invalid(message).into());
            }
            return Ok(self.note(message));
        }
        let tokenizer = self.tokenizer(t)?;
        let out = crate::io::clean_path(&self.root.join(&t.dir));
        let docs = if self.config.output.docs {
            vec![self.root.join("docs").to_string_lossy().into_owned()]
        } else {
            // No copy of the documents was written: the input files are them.
            self.inputs
                .iter()
                .map(|f| glob::Pattern::escape(&f.path.to_string_lossy()))
                .collect()
        };
        let summary = pack::pack(
            &docs,
            &tokenizer,
            &pack::PackConfig::from(t),
            &out,
            x.threads,
            Some(&self.root.join(IDS_DIR)),
        )?;
        let mut notes: Vec<String> = summary
            .manifest
            .splits
            .iter()
            .map(|(name, s)| {
                format!(
                    "tokenize: {name:<10} {:>9} docs {:>12} tokens {:>8} sequences of {} -> {}",
                    s.docs,
                    s.tokens,
                    s.sequences,
                    t.seq_len,
                    out.display()
                )
            })
            .collect();
        if !summary.skipped {
            notes.push(format!(
                "tokenize: ids of {} docs from the pass before, the rest encoded here",
                summary.from_ids
            ));
        }
        Ok(RunSummary {
            output_dir: self.root.clone(),
            notes,
            packed: Some(summary),
            ..Default::default()
        })
    }

    /// Finds a pass by name (or, with one dedup barrier, by its short name).
    fn find(&self, name: &str) -> Result<Step, RunError> {
        let steps = self.steps();
        if let Some((step, _)) = steps.iter().find(|(_, i)| i.name == name) {
            return Ok(*step);
        }
        if let [cut] = self.cuts.as_slice()
            && let Some((step, _)) = steps
                .iter()
                .find(|(_, i)| i.name == format!("{}.{name}", cut.name))
        {
            return Ok(*step);
        }
        let names: Vec<String> = steps.into_iter().map(|(_, i)| i.name).collect();
        Err(ConfigError::Invalid(format!(
            "--pass {name}: this config's passes are {} (corpus plan CONFIG lists them)",
            names.join(", ")
        ))
        .into())
    }

    /// Runs the pass named `pass` for `options.task`, or every pass (one task), or, for
    /// a task of a multi-task run without `--pass`, its shards of a config that has no
    /// dedup barrier (and the packing, when its shards complete the run).
    pub fn run(&self, options: &RunOptions, pass: Option<&str>) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let threads = crate::executor::worker_threads(self.config, options)?;
        let _lock = self.lock(options)?;
        let x = Exec { options, threads };
        let mut summary = match pass {
            Some(name) => self.run_step(self.find(name)?, &x)?,
            None if options.task.count > 1 && !self.cuts.is_empty() => {
                let names: Vec<String> = self.passes().into_iter().map(|p| p.name).collect();
                return Err(ConfigError::Invalid(format!(
                    "{} dedups across the whole input, so this config runs as passes: run it \
                     as one task, or give each task --pass NAME, in order: {} (see \
                     `corpus plan`)",
                    self.cuts[0].name,
                    names.join(", ")
                ))
                .into());
            }
            None => self.run_all(&x)?,
        };
        summary.notes.retain(|n| !n.is_empty());
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// Holds `OUT/state/task-NNNNN.lock` for this task while it runs, so that a second
    /// run of the same task into the same output directory (a job started twice) is
    /// refused instead of both doing the work, or one failing on the other's files. The
    /// lock is the operating system's: a killed run leaves none behind. Tasks of one
    /// job hold locks of their own and run side by side; object storage has no lock.
    fn lock(&self, options: &RunOptions) -> Result<Option<std::fs::File>, RunError> {
        if crate::remote::Storage::of(&self.root).is_remote() {
            return Ok(None);
        }
        let dir = self.root.join("state");
        std::fs::create_dir_all(&dir).map_err(output_err(&dir))?;
        let path = dir.join(format!("task-{:05}.lock", options.task.index));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(output_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(RunError::Busy {
                path,
                task: options.task.index,
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(output_err(&path)(e)),
        }
    }

    /// Every pass of this task in order; in one process, in-memory barriers cluster
    /// without intermediate files.
    fn run_all(&self, x: &Exec) -> Result<RunSummary, RunError> {
        let mut notes = Vec::new();
        let mut before: Option<RunSummary> = None;
        for (j, cut) in self.cuts.iter().enumerate() {
            let mut pre = self.run_segment(j, x)?;
            if let Some(p) = pre.as_ref().filter(|p| !p.failed.is_empty()) {
                return Ok(p.clone());
            }
            if let Some(p) = pre.as_mut() {
                notes.append(&mut p.notes);
            }
            if cut.in_memory {
                notes.extend(self.clusters(j, Some(x.threads))?);
            } else {
                notes.push(self.signatures(j, x)?);
                notes.extend(self.run_step(Step::Buckets(j), x)?.notes);
                notes.extend(self.run_step(Step::Cluster(j), x)?.notes);
            }
            if let Some(pre) = pre {
                // The summary's shard counts are the last pass's: say what this one did.
                notes.push(format!(
                    "{}: the pass before it: {} shard(s) done, {} skipped as complete",
                    cut.name, pre.stats.shards, pre.skipped
                ));
                // Only the chained statistics and the skipped count are used after.
                before = Some(match before {
                    None => pre,
                    Some(mut b) => {
                        b.stats = chain_stats(&b.stats, &pre.stats);
                        b.skipped = b.skipped.min(pre.skipped);
                        b
                    }
                });
            }
        }
        let mut post = self.run_step(Step::Last, x)?;
        if !post.failed.is_empty() {
            return Ok(post);
        }
        if let Some(pre) = before {
            post.stats = chain_stats(&pre.stats, &post.stats);
            post.skipped = post.skipped.min(pre.skipped);
            self.add_barrier_time(&mut post.stats);
        }
        notes.append(&mut post.notes);
        let packed = self.tokenize(x, false)?;
        notes.extend(packed.notes);
        post.notes = notes;
        post.packed = packed.packed;
        Ok(post)
    }
}

/// Wall and CPU time of one pass of a barrier in this process.
struct Clock {
    started: Instant,
    cpu: f64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            started: Instant::now(),
            cpu: crate::stats::process_cpu_seconds(),
        }
    }

    /// Records the time since the start ([`record_time`]).
    fn record(&self, cut: &Cut, pass: &str, task: usize) -> Result<(), RunError> {
        let wall = self.started.elapsed().as_secs_f64();
        let cpu = crate::stats::process_cpu_seconds() - self.cpu;
        record_time(cut, pass, task, wall, cpu)
    }
}

/// Records time spent on barrier `cut` as `W/time/<pass>-<task>.json`, which the last
/// pass adds to the barrier's statistics.
fn record_time(cut: &Cut, pass: &str, task: usize, wall: f64, cpu: f64) -> Result<(), RunError> {
    let dir = cut.dedup.work_dir.join("time");
    std::fs::create_dir_all(&dir).map_err(output_err(&dir))?;
    let path = dir.join(format!("{pass}-{task:05}.json"));
    let time = serde_json::json!({ "seconds": wall, "cpu_seconds": cpu });
    AtomicFile::write_all(&path, time.to_string().as_bytes()).map_err(output_err(&path))
}

/// The wall and CPU seconds recorded by a barrier's passes (every task).
fn barrier_time(cut: &Cut) -> (f64, f64) {
    let Ok(entries) = std::fs::read_dir(cut.dedup.work_dir.join("time")) else {
        return (0.0, 0.0);
    };
    let mut total = (0.0, 0.0);
    for e in entries.flatten() {
        let Some(v) = std::fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        total.0 += v["seconds"].as_f64().unwrap_or(0.0);
        total.1 += v["cpu_seconds"].as_f64().unwrap_or(0.0);
    }
    total
}

fn cluster_note(name: &str, c: &crate::fuzzy::ClusterSummary, reused: bool) -> String {
    format!(
        "{name}.cluster{}: {} clusters of 2+ holding {} docs, {} to remove; {} buckets, {} pairs verified ({} rejected)",
        if reused { " (complete, reused)" } else { "" },
        c.clusters,
        c.clustered,
        c.removed,
        c.buckets,
        c.pairs_verified,
        c.pairs_rejected
    )
}

fn merged(root: &Path) -> Result<RunStats, RunError> {
    crate::report::merge_completed(root)
        .map(|(stats, _)| stats)
        .map_err(|e| RunError::Output {
            path: root.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config over two small JSONL inputs in a temporary folder.
    fn config(dir: &Path, stages: &str) -> PipelineConfig {
        for i in 0..2 {
            std::fs::write(
                dir.join(format!("in{i}.jsonl")),
                format!("{{\"id\": \"{i}\", \"text\": \"a document\"}}\n"),
            )
            .unwrap();
        }
        let text = format!("[input]\npaths = [\"in*.jsonl\"]\n[output]\ndir = \"out\"\n{stages}");
        PipelineConfig::from_toml(&text, Path::new("t.toml"), dir, &[]).unwrap()
    }

    fn names(plan: &Plan) -> Vec<(String, &'static str, Option<usize>)> {
        plan.passes()
            .into_iter()
            .map(|p| (p.name, p.sharding.name(), p.tasks))
            .collect()
    }

    const TWO_BARRIERS: &str = "[[stages]]\nkind = \"length\"\n[[stages]]\nkind = \"exact_dedup\"\n\
        [[stages]]\nkind = \"quality\"\n[[stages]]\nkind = \"minhash_dedup\"\nbands = 4\nrows = 2\n\
        [[stages]]\nkind = \"length\"\n[[stages]]\nkind = \"tokenize\"\n";

    #[test]
    fn barriers_cut_the_stages_into_passes() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), TWO_BARRIERS);
        let plan = Plan::new(&c, None, Mode::Scheduled).unwrap();
        let s = |n: &str, sh, t| (n.to_string(), sh, t);
        assert_eq!(
            names(&plan),
            [
                s("exact_dedup.signatures", "files", None),
                s("exact_dedup.buckets", "bands", Some(1)),
                s("exact_dedup.cluster", "single", Some(1)),
                s("minhash_dedup.signatures", "files", None),
                s("minhash_dedup.buckets", "bands", Some(4)),
                s("minhash_dedup.cluster", "single", Some(1)),
                s("minhash_dedup.filter", "files", None),
                s("tokenize", "single", Some(1)),
            ]
        );
        // Segments: what runs before each barrier, its filter first after one.
        assert_eq!(plan.segment_kinds(0), ["length"]);
        assert_eq!(plan.segment_kinds(1), ["exact_dedup (filter)", "quality"]);
        assert_eq!(plan.segment_kinds(2), ["minhash_dedup (filter)", "length"]);
        let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(json["passes"][4]["sharding"], "bands");
        assert_eq!(json["passes"][4]["tasks"], 4);
        assert!(json["passes"][0]["tasks"].is_null());
        // In one process exact dedup stays an ordered stage of its pass.
        let fused = Plan::new(&c, None, Mode::OneProcess).unwrap();
        assert_eq!(fused.cuts.len(), 1);
        assert_eq!(fused.segment_kinds(0), ["length", "exact_dedup", "quality"]);
        // Short names need a single dedup barrier.
        let e = plan.find("signatures").unwrap_err().to_string();
        assert!(e.contains("exact_dedup.signatures"), "{e}");
        assert_eq!(plan.find("minhash_dedup.filter").unwrap(), Step::Last);
        assert_eq!(fused.find("filter").unwrap(), Step::Last);
        assert_eq!(fused.find("cluster").unwrap(), Step::Cluster(0));
    }

    #[test]
    fn plain_configs_repeated_kinds_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "[[stages]]\nkind = \"length\"\n");
        let plan = Plan::new(&c, None, Mode::Scheduled).unwrap();
        assert_eq!(names(&plan), [("stages".to_string(), "files", None)]);

        let two = "[[stages]]\nkind = \"minhash_dedup\"\n[[stages]]\nkind = \"minhash_dedup\"\nngram = 3\n";
        let c = config(dir.path(), two);
        let plan = Plan::new(&c, None, Mode::Scheduled).unwrap();
        let n: Vec<String> = plan.passes().into_iter().map(|p| p.name).collect();
        assert_eq!(n[0], "minhash_dedup-0.signatures");
        assert_eq!(n[3], "minhash_dedup-1.signatures");
        assert_eq!(n[6], "minhash_dedup-1.filter");
        assert_ne!(plan.cuts[0].dedup.work_dir, plan.cuts[1].dedup.work_dir);

        // Exact dedup across tasks with any key: its passes hash the same key.
        let c = config(
            dir.path(),
            "[[stages]]\nkind = \"exact_dedup\"\nkey = \"url\"\n",
        );
        assert!(
            Plan::new(&c, None, Mode::OneProcess)
                .unwrap()
                .cuts
                .is_empty()
        );
        let plan = Plan::new(&c, None, Mode::Scheduled).unwrap();
        assert_eq!(
            plan.cuts[0].dedup.method,
            corpus_stages::minhash::Method::Url
        );

        // tokenize is last, and its vocabulary must exist before the run starts.
        let text = "[[stages]]\nkind = \"tokenize\"\n[[stages]]\nkind = \"length\"\n";
        let e = PipelineConfig::from_toml(
            &format!("[input]\npaths = [\"in*.jsonl\"]\n{text}"),
            Path::new("t.toml"),
            dir.path(),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("last stage"), "{e}");
        let c = config(
            dir.path(),
            "[[stages]]\nkind = \"tokenize\"\nvocab = \"missing.tiktoken\"\n",
        );
        let e = Plan::new(&c, None, Mode::OneProcess)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("missing.tiktoken") && e.contains("not found"),
            "{e}"
        );
    }

    #[test]
    fn the_tokenize_table_is_read_as_the_last_stage() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            "[[stages]]\nkind = \"length\"\n[tokenize]\nvocab = \"cl100k\"\nseq_len = 64\n",
        );
        assert_eq!(c.notices.len(), 1, "{:?}", c.notices);
        assert!(c.notices[0].contains("deprecated"));
        let corpus_stages::StageConfig::Tokenize(t) = &c.stages[1] else {
            panic!("{:?}", c.stages)
        };
        assert_eq!(t.seq_len, 64);
        // Written back as the stage: the written config loads without a notice.
        let again =
            PipelineConfig::from_toml(&c.to_toml(), Path::new("w.toml"), dir.path(), &[]).unwrap();
        assert!(again.notices.is_empty());
        assert_eq!(again.stages, c.stages);
    }
}
