//! `corpus extract INPUT... -o OUT.jsonl`: main text of web pages, one JSON object per
//! page, without a pipeline config.
//!
//! Inputs are WARC files (every HTML response record is a page) and HTML files (`.html`,
//! `.htm`, optionally `.gz`; one page per file, id = file name without the suffix);
//! directories are searched for HTML files. Pages are extracted in parallel by the same
//! [`extract`](corpus_stages::extract) stage that `corpus run` uses, and written in input
//! order. An input that cannot be read is reported with its name and skipped; the run
//! goes on and fails (exit 1) at the end.

use crate::io::AtomicFile;
use crate::source::warc::{WarcOptions, WarcSource};
use crate::source::{Format, Source};
use corpus_stages::extract::{self, Extract};
use corpus_stages::{Document, Stage, StageCx, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
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
}

/// What a run did.
#[derive(Debug, Default)]
pub struct ExtractSummary {
    /// Pages read.
    pub pages: u64,
    /// Pages written.
    pub written: u64,
    /// Pages dropped, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Inputs (or records) that could not be read, with the error.
    pub failed: Vec<String>,
    /// Time spent, input reading included.
    pub elapsed: Duration,
    /// Time the workers spent extracting, summed over threads.
    pub extract_time: Duration,
}

impl ExtractSummary {
    /// The summary line `corpus extract` prints.
    pub fn to_text(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let work = self.extract_time.as_secs_f64().max(1e-9);
        let drops: Vec<String> = self
            .dropped
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "corpus extract: {} pages, {} written, dropped: [{}], {:.2}s ({:.1} pages/s); \
             extraction {:.2}s of worker time ({:.1} pages/s per thread)",
            self.pages,
            self.written,
            drops.join(" "),
            secs,
            self.pages as f64 / secs,
            work,
            self.pages as f64 / work
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

enum Input {
    Html(PathBuf),
    Warc(PathBuf),
}

fn html_stem(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let lower = name.to_ascii_lowercase();
    let base_len = lower.strip_suffix(".gz").map_or(lower.len(), str::len);
    let base = &lower[..base_len];
    [".html", ".htm", ".xhtml"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .map(|stem| name[..stem.len()].to_string())
}

fn classify(inputs: &[PathBuf]) -> Result<Vec<Input>, ExtractError> {
    let mut out = Vec::new();
    for path in inputs {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = walk(path)
                .into_iter()
                .filter(|p| html_stem(p).is_some())
                .collect();
            found.sort();
            out.extend(found.into_iter().map(Input::Html));
        } else if html_stem(path).is_some() {
            out.push(Input::Html(path.clone()));
        } else if Format::detect(path) == Some(Format::Warc) {
            out.push(Input::Warc(path.clone()));
        } else {
            return Err(ExtractError::Usage(format!(
                "{}: not a WARC (.warc, .warc.gz) or HTML (.html, .html.gz) file",
                path.display()
            )));
        }
    }
    if out.is_empty() {
        return Err(ExtractError::Usage("no input pages".into()));
    }
    Ok(out)
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

fn read_html(path: &Path) -> std::io::Result<Vec<u8>> {
    let (mut reader, _) = crate::io::open_decompressed(path)?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Pages handed to the workers at once; output order is restored per batch.
const BATCH: usize = 256;

/// Runs `corpus extract`.
pub fn run(options: &ExtractOptions) -> Result<ExtractSummary, ExtractError> {
    let start = Instant::now();
    let inputs = classify(&options.inputs)?;
    let stage = extract::build(&options.config).map_err(|e| ExtractError::Usage(e.to_string()))?;
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let out_err = |source| ExtractError::Output {
        path: options.output.clone(),
        source,
    };
    let atomic = (options.output != Path::new("-")).then(|| AtomicFile::new(&options.output));
    let mut sink: Box<dyn Write> = match &atomic {
        Some(a) => Box::new(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(a.tmp_path()).map_err(out_err)?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut summary = ExtractSummary::default();
    let mut batch: Vec<Document> = Vec::with_capacity(BATCH);
    let warc_options = WarcOptions::default();
    for input in inputs {
        match input {
            Input::Html(path) => match read_html(&path) {
                Ok(bytes) => {
                    let id = html_stem(&path).unwrap_or_default();
                    let mut doc = Document::new(id, "html", String::new());
                    doc.raw = Some(bytes);
                    batch.push(doc);
                }
                Err(e) => summary.failed.push(format!("{}: {e}", path.display())),
            },
            Input::Warc(path) => {
                let mut source = match WarcSource::open(&path, &warc_options, "web") {
                    Ok(s) => s,
                    Err(e) => {
                        summary.failed.push(e.to_string());
                        continue;
                    }
                };
                loop {
                    match source.next_doc() {
                        Ok(Some(doc)) => {
                            batch.push(doc);
                            if batch.len() >= BATCH {
                                flush(&stage, &mut batch, threads, &mut sink, &mut summary)
                                    .map_err(out_err)?;
                            }
                        }
                        Ok(None) => break,
                        Err(e) if e.is_recoverable() => summary.failed.push(e.to_string()),
                        Err(e) => {
                            summary.failed.push(e.to_string());
                            break;
                        }
                    }
                }
            }
        }
        if batch.len() >= BATCH {
            flush(&stage, &mut batch, threads, &mut sink, &mut summary).map_err(out_err)?;
        }
    }
    flush(&stage, &mut batch, threads, &mut sink, &mut summary).map_err(out_err)?;
    sink.flush().map_err(out_err)?;
    drop(sink);
    if let Some(a) = atomic {
        a.commit().map_err(out_err)?;
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Extracts `batch` on `threads` workers and writes the kept pages in order.
fn flush(
    stage: &Extract,
    batch: &mut Vec<Document>,
    threads: usize,
    sink: &mut dyn Write,
    summary: &mut ExtractSummary,
) -> std::io::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let results = crate::parallel::map(std::mem::take(batch), threads, |mut doc| {
        let t = Instant::now();
        let verdict = stage
            .process(&mut doc, &mut StageCx::default())
            .unwrap_or(Verdict::Drop(corpus_stages::stage::ERROR));
        let spent = t.elapsed();
        let line = (verdict == Verdict::Keep).then(|| line(&doc));
        (verdict, line, spent)
    });
    for (verdict, line, spent) in results {
        summary.pages += 1;
        summary.extract_time += spent;
        match (verdict, line) {
            (Verdict::Keep, Some(line)) => {
                sink.write_all(&line)?;
                summary.written += 1;
            }
            (Verdict::Drop(reason), _) => *summary.dropped.entry(reason.code()).or_default() += 1,
            (Verdict::Keep, None) => {}
        }
    }
    Ok(())
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
    fn html_stems() {
        assert_eq!(
            html_stem(Path::new("a/Page.HTML.gz")).as_deref(),
            Some("Page")
        );
        assert_eq!(html_stem(Path::new("x.htm")).as_deref(), Some("x"));
        assert_eq!(html_stem(Path::new("x.warc.gz")), None);
        assert!(matches!(
            classify(&[PathBuf::from("notes.txt")]),
            Err(ExtractError::Usage(_))
        ));
    }
}
