//! `corpus extract INPUT... -o OUT.jsonl`: main text of web pages, one JSON object per
//! page, without a pipeline config.
//!
//! Inputs are WARC files (every HTML response record is a page) and HTML files (`.html`,
//! `.htm`, optionally `.gz`; one page per file, id = file name without the suffix);
//! directories are searched for HTML files. The command is a plan built in code over the
//! executor: a pipeline whose only stage is [`extract`](corpus_stages::extract), run with
//! the markers, resume, statistics and progress of `corpus run`, then one step that
//! gathers the kept pages into the output file in the order the inputs were given.
//!
//! While it runs, the pipeline's output is a run directory next to the output:
//!
//! ```text
//! OUT.jsonl.work/          the pipeline run (removed once OUT.jsonl is written)
//!   docs/part-NNNNN.jsonl.gz   kept pages of input file NNNNN (inputs in path order)
//!   done/ stats/ state/        markers, statistics and locks, as `corpus run` writes
//! OUT.jsonl                written last, under a temporary name renamed when complete
//! ```
//!
//! A killed run leaves the work directory; the same command again skips the input files
//! finished already. An input that cannot be read is reported with its name and the
//! others go on; the command then fails (exit 1) and keeps the work directory, so that a
//! rerun redoes only that input. A damaged record inside a WARC file is counted and
//! skipped, as in `corpus run`.

use crate::config::{ConfigError, PipelineConfig};
use crate::executor::{RunError, RunOptions, RunSummary};
use crate::io::AtomicFile;
use crate::shard::Layout;
use crate::source::{Format, Source};
use corpus_stages::extract;
use corpus_stages::{Document, StageConfig};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of one `corpus extract` run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Input files or directories.
    pub inputs: Vec<PathBuf>,
    /// Output JSONL file (`-` for standard output).
    pub output: PathBuf,
    /// Worker threads (default: one per core).
    pub threads: Option<usize>,
    /// Stage configuration (limits).
    pub config: extract::Config,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct ExtractSummary {
    /// The pipeline run: statistics merged over every completed input (`total`: pages
    /// read, drops by reason, damaged records, extraction time), inputs done by an
    /// earlier, interrupted run of the same command (`skipped`).
    pub run: RunSummary,
    /// Pages written.
    pub written: u64,
    /// Inputs that could not be read, with the error.
    pub failed: Vec<String>,
    /// Time spent, gathering the output included.
    pub elapsed: Duration,
}

impl ExtractSummary {
    /// The summary line `corpus extract` prints.
    pub fn to_text(&self) -> String {
        let total = &self.run.total;
        let pages = total.input.docs;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let stage = total.stages.first();
        let work = stage.map_or(0.0, |s| s.seconds).max(1e-9);
        let drops: Vec<String> = stage
            .iter()
            .flat_map(|s| &s.drops)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut also = String::new();
        let corrupt: u64 = total.input.corrupt.values().sum();
        if corrupt > 0 {
            also += &format!(", {corrupt} damaged record(s) skipped");
        }
        if self.run.skipped > 0 {
            also += &format!(
                ", {} input file(s) done by an earlier run",
                self.run.skipped
            );
        }
        format!(
            "corpus extract: {pages} pages, {} written, dropped: [{}]{also}, {secs:.2}s \
             ({:.1} pages/s); extraction {work:.2}s of worker time ({:.1} pages/s per thread)",
            self.written,
            drops.join(" "),
            pages as f64 / secs,
            pages as f64 / work
        )
    }
}

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Bad arguments (no inputs, unknown file type).
    #[error("{0}")]
    Usage(String),
    /// The output could not be written.
    #[error("{path}: {source}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The pipeline run failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl ExtractError {
    /// True when the error is the user's input to fix (arguments, paths).
    pub fn is_usage(&self) -> bool {
        match self {
            ExtractError::Usage(_) => true,
            ExtractError::Run(e) => e.is_usage(),
            ExtractError::Output { .. } => false,
        }
    }
}

#[derive(Serialize)]
struct OutLine<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    title: Option<&'a str>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    canonical_url: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<&'a serde_json::Value>,
}

/// The page files among `inputs` in the order given (directories: their HTML files,
/// sorted), and the inputs that do not exist.
fn classify(inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<String>), ExtractError> {
    let (mut out, mut missing) = (Vec::new(), Vec::new());
    for path in inputs {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = walk(path)
                .into_iter()
                .filter(|p| Format::detect(p) == Some(Format::Html))
                .collect();
            found.sort();
            out.extend(found);
            continue;
        }
        if !matches!(Format::detect(path), Some(Format::Html | Format::Warc)) {
            return Err(ExtractError::Usage(format!(
                "{}: not a WARC (.warc, .warc.gz) or HTML (.html, .html.gz) file",
                path.display()
            )));
        }
        if path.is_file() {
            out.push(path.clone());
        } else {
            missing.push(format!("{}: cannot open: no such file", path.display()));
        }
    }
    if out.is_empty() && missing.is_empty() {
        return Err(ExtractError::Usage("no input pages".into()));
    }
    Ok((out, missing))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The run directory of `output` (`OUT.jsonl.work` next to it; a fresh temporary
/// directory for standard output).
fn work_dir(output: &Path) -> PathBuf {
    if output == Path::new("-") {
        std::env::temp_dir().join(format!("corpus-extract-{}", std::process::id()))
    } else {
        let mut name = output.as_os_str().to_owned();
        name.push(".work");
        PathBuf::from(name)
    }
}

/// The plan of `options`: a pipeline over `files` whose only stage is `extract`,
/// writing to `work`.
fn plan_config(
    options: &ExtractOptions,
    files: &[PathBuf],
    work: &Path,
) -> Result<PipelineConfig, ConfigError> {
    // Each file is given by its own path: a name with glob characters must not be
    // taken as a pattern.
    let paths = files
        .iter()
        .map(|p| glob::Pattern::escape(&p.to_string_lossy()))
        .collect();
    let mut config = PipelineConfig::for_command(
        paths,
        work,
        vec![StageConfig::Extract(options.config.clone())],
    )?;
    // The pages are read once more, by the gathering step: fastest compression.
    config.output.gzip_level = 1;
    Ok(config)
}

/// Runs `corpus extract`.
pub fn run(options: &ExtractOptions) -> Result<ExtractSummary, ExtractError> {
    let start = Instant::now();
    let (files, mut failed) = classify(&options.inputs)?;
    let work = work_dir(&options.output);
    let mut summary = ExtractSummary::default();
    if !files.is_empty() {
        let config =
            plan_config(options, &files, &work).map_err(|e| ExtractError::Usage(e.to_string()))?;
        let run = crate::plan::run(
            &config,
            &RunOptions {
                threads: options.threads,
                output_dir: Some(work.clone()),
                resume: true,
                progress: options.progress,
                max_warnings: if options.progress { 20 } else { 0 },
                ..Default::default()
            },
        )?;
        failed.extend(
            run.failed
                .iter()
                .map(|(path, e)| format!("{}: {e}", path.display())),
        );
        summary.run = run;
        summary.written = gather(&config, &files, &work, &options.output)?;
    }
    summary.failed = failed;
    // The pages are in the output now; a failed input keeps the run for a rerun.
    if summary.failed.is_empty() || options.output == Path::new("-") {
        match std::fs::remove_dir_all(&work) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ExtractError::Output {
                    path: work,
                    source: e,
                });
            }
            _ => {}
        }
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Writes the kept pages of the run in `work` to `output`, input file by input file in
/// the order of `files`; returns how many.
fn gather(
    config: &PipelineConfig,
    files: &[PathBuf],
    work: &Path,
    output: &Path,
) -> Result<u64, ExtractError> {
    let out_err = |source| ExtractError::Output {
        path: output.to_path_buf(),
        source,
    };
    // The shard number of each input is its place in the plan's sorted input list.
    let inputs = crate::source::expand_inputs(&config.input, &config.base_dir)
        .map_err(|e| ExtractError::Run(RunError::Input(e)))?;
    let shard: BTreeMap<&Path, usize> =
        inputs.iter().map(|f| (f.path.as_path(), f.index)).collect();
    let layout = Layout {
        root: work.to_path_buf(),
        extension: config.output.format.extension(),
    };
    let atomic = (output != Path::new("-")).then(|| AtomicFile::new(output));
    let mut sink: Box<dyn Write> = match &atomic {
        Some(a) => Box::new(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(a.tmp_path()).map_err(out_err)?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut written = 0;
    let mut done = std::collections::BTreeSet::new();
    for path in files {
        let clean = crate::io::clean_path(&std::path::absolute(path).map_err(out_err)?);
        let Some(&index) = shard
            .get(clean.as_path())
            .or_else(|| shard.get(path.as_path()))
        else {
            continue;
        };
        let docs = layout.docs(index);
        // A file given twice is written once, as the run read it once; a failed one has
        // no documents file.
        if !done.insert(index) || !docs.exists() {
            continue;
        }
        let mut source =
            crate::source::jsonl::JsonlSource::open(&docs, &Default::default(), "html")
                .map_err(|e| ExtractError::Run(RunError::Input(e)))?;
        while let Some(doc) = source
            .next_doc()
            .map_err(|e| ExtractError::Run(RunError::Input(e)))?
        {
            sink.write_all(&line(&doc)).map_err(out_err)?;
            written += 1;
        }
    }
    sink.flush().map_err(out_err)?;
    drop(sink);
    if let Some(a) = atomic {
        a.commit().map_err(out_err)?;
    }
    Ok(written)
}

fn line(doc: &Document) -> Vec<u8> {
    let extra = &doc.meta.extra;
    let out = OutLine {
        id: &doc.id,
        url: doc.meta.url.as_deref(),
        title: doc.meta.title.as_deref(),
        text: &doc.text,
        canonical_url: extra.get("canonical_url"),
        date: extra.get("date_published"),
        lang: extra.get("html_lang"),
    };
    // Serializing plain strings and JSON values cannot fail.
    let mut bytes = serde_json::to_vec(&out).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_inputs() {
        assert!(matches!(
            classify(&[PathBuf::from("notes.txt")]),
            Err(ExtractError::Usage(_))
        ));
        let (files, missing) = classify(&[PathBuf::from("no/such.html")]).unwrap();
        assert!(files.is_empty());
        assert_eq!(missing.len(), 1);
        assert_eq!(
            work_dir(Path::new("a/out.jsonl")),
            PathBuf::from("a/out.jsonl.work")
        );
    }
}
