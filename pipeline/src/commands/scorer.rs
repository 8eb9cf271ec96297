//! `corpus scorer`: the text classifiers (quality, safety) on the `text` field of JSON
//! lines: scores in input order, or the feature vectors the training recipe reads.

use corpus_models::features;
use corpus_models::scorer::{Backend, Scorer, ScorerError};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Errors of `corpus scorer`.
#[derive(Debug, thiserror::Error)]
pub enum ScorerCmdError {
    /// Bad flags (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The input could not be opened (exit code 2).
    #[error(transparent)]
    Open(#[from] crate::io::OpenError),
    /// The model could not be loaded (exit code 2).
    #[error(transparent)]
    Load(ScorerError),
    /// A line of the input is unreadable, not JSON or has no string `text`.
    #[error("{path}: line {line}: {message}")]
    Line {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Scoring failed.
    #[error(transparent)]
    Score(#[from] ScorerError),
    /// Writing the output failed; `what` says which.
    #[error("{what}: {error}")]
    Output {
        /// What was being written.
        what: String,
        /// The cause (its message is part of this one's).
        error: std::io::Error,
    },
    /// Writing the scores failed.
    #[error(transparent)]
    Write(std::io::Error),
}

impl ScorerCmdError {
    /// True for errors of the command line or model rather than of a run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ScorerCmdError::Usage(_) | ScorerCmdError::Open(_) | ScorerCmdError::Load(_)
        )
    }
}

/// Calls `f` with the `text` of every JSON line of `path` (plain or compressed), in
/// order, skipping blank lines; errors name the line.
pub fn for_each_text(
    path: &Path,
    mut f: impl FnMut(String) -> Result<(), ScorerCmdError>,
) -> Result<(), ScorerCmdError> {
    let reader = crate::io::open_input(path)?;
    let bad = |line: usize, message: String| ScorerCmdError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| bad(n + 1, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(n + 1, format!("not JSON: {e}")))?;
        let Some(text) = value.get("text").and_then(|t| t.as_str()) else {
            return Err(bad(n + 1, "no string field `text`".into()));
        };
        f(text.to_string())?;
    }
    Ok(())
}

/// `corpus scorer features`: the hashed n-gram features of every document of `input`
/// in the training recipe's dump format, written to `output` atomically.
pub fn features(input: &Path, output: &Path) -> Result<(), ScorerCmdError> {
    let io = |what: String| move |error| ScorerCmdError::Output { what, error };
    let writing = || io("writing features".into());
    let file = crate::io::AtomicFile::new(output);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(file.tmp_path())
            .map_err(io(format!("creating {}", output.display())))?,
    );
    features::write_header(&mut out).map_err(writing())?;
    for_each_text(input, |text| {
        features::write_record(&mut out, &features::extract(&text)).map_err(writing())
    })?;
    out.flush().map_err(writing())?;
    drop(out);
    file.commit()
        .map_err(io(format!("writing {}", output.display())))
}

/// The inference backend named `name` (`tract`, or `onnxruntime` with `library`).
pub fn backend(name: &str, library: Option<PathBuf>) -> Result<Backend, ScorerCmdError> {
    match name {
        "tract" => Ok(Backend::Tract),
        "onnxruntime" => Ok(Backend::OnnxRuntime {
            library: library.ok_or_else(|| {
                ScorerCmdError::Usage(
                    "--backend onnxruntime needs --library PATH (or CORPUS_ONNXRUNTIME_LIB)".into(),
                )
            })?,
        }),
        other => Err(ScorerCmdError::Usage(format!(
            "unknown backend `{other}`: tract or onnxruntime"
        ))),
    }
}

/// `corpus scorer score`: one score per document of `input`, in input order, to
/// standard output; `model` is `quality`, `safety` or an ONNX file, run `batch_size`
/// documents per call.
pub fn score(
    input: &Path,
    model: &str,
    backend: &Backend,
    batch_size: usize,
) -> Result<(), ScorerCmdError> {
    let model = corpus_models::scorer::model_path(model);
    let scorer = Scorer::load(&model, backend, 1).map_err(ScorerCmdError::Load)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut batch = Vec::with_capacity(batch_size.max(1));
    let mut flush = |batch: &mut Vec<String>| -> Result<(), ScorerCmdError> {
        for s in scorer.score_texts(batch)? {
            writeln!(out, "{s}").map_err(ScorerCmdError::Write)?;
        }
        batch.clear();
        Ok(())
    };
    for_each_text(input, |text| {
        batch.push(text);
        if batch.len() >= batch_size.max(1) {
            flush(&mut batch)?;
        }
        Ok(())
    })?;
    flush(&mut batch)
}
