//! Sinks: write documents (and, optionally, dropped documents with their reason) to
//! files. A sink writes to the path it is given; the executor gives it a temporary path
//! and renames the file when the shard is complete.

pub mod jsonl;
pub mod parquet;

use corpus_stages::Document;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Output format of document files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// gzip-compressed JSON lines (`.jsonl.gz`), one document per line.
    Jsonl,
    /// Parquet with zstd compression (`.parquet`).
    Parquet,
}

impl OutputFormat {
    /// True when worker threads encode (serialize and compress) batches for this format,
    /// so the committing thread only appends bytes: JSONL.gz files are a sequence of
    /// gzip members, one per batch. Parquet row groups are encoded by the sink.
    pub fn encodes_in_workers(self) -> bool {
        matches!(self, OutputFormat::Jsonl)
    }

    /// File name extension, without the leading dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jsonl => "jsonl.gz",
            OutputFormat::Parquet => "parquet",
        }
    }
}

/// Why a document in the side output was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropInfo {
    /// The stage that dropped it.
    pub stage: String,
    /// The drop reason code.
    pub reason: String,
    /// What the rule measured against its threshold (`line punctuation ratio 0.08 <
    /// 0.12`), where the stage recorded it ([`corpus_stages::Failure`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl DropInfo {
    /// The drop information of a dropped document read back from the side output,
    /// taken out of the fields a source keeps without a typed slot (`meta.extra`): `drop`
    /// of JSONL, the `drop_stage`, `drop_reason` and `drop_detail` columns of Parquet.
    /// `None` for a kept document.
    pub fn take_from(extra: &mut BTreeMap<String, Value>) -> Option<DropInfo> {
        if let Some(v) = extra.remove("drop") {
            return serde_json::from_value(v).ok();
        }
        let mut text = |k: &str| match extra.remove(k) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let (stage, reason, detail) =
            (text("drop_stage"), text("drop_reason"), text("drop_detail"));
        Some(DropInfo {
            stage: stage?,
            reason: reason?,
            detail,
        })
    }
}

/// Errors of sinks.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing to the file failed.
    #[error("{path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl SinkError {
    /// A write error on `path`.
    pub fn write(path: &Path, e: impl std::fmt::Display) -> SinkError {
        SinkError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// A destination for documents.
pub trait DocSink: Send {
    /// Writes one document; `dropped` is set in the side output of dropped documents.
    fn write(&mut self, doc: &Document, dropped: Option<&DropInfo>) -> Result<(), SinkError>;

    /// Appends bytes already encoded in this sink's format by a worker thread (see
    /// [`OutputFormat::encodes_in_workers`]).
    fn write_encoded(&mut self, _bytes: &[u8]) -> Result<(), SinkError> {
        Err(SinkError::Write {
            path: PathBuf::new(),
            message: "this output format is not encoded in workers".into(),
        })
    }

    /// Flushes and closes the file.
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
}

/// Creates a sink of `format` writing to `path`. `with_drop_info` asks for the extra
/// drop stage/reason fields of the dropped-documents side output; `gzip_level` is the
/// compression level of JSONL output.
pub fn create(
    format: OutputFormat,
    path: &Path,
    with_drop_info: bool,
    gzip_level: u32,
) -> Result<Box<dyn DocSink>, SinkError> {
    Ok(match format {
        OutputFormat::Jsonl => Box::new(jsonl::JsonlSink::create(path, gzip_level)?),
        OutputFormat::Parquet => Box::new(parquet::ParquetSink::create(path, with_drop_info)?),
    })
}

/// As [`create`], writing to `out` (a local file or an upload, see
/// [`Storage::create`](crate::remote::Storage::create)); `path` names it in errors.
pub fn create_writer(
    format: OutputFormat,
    out: Box<dyn std::io::Write + Send>,
    path: &Path,
    with_drop_info: bool,
    gzip_level: u32,
) -> Result<Box<dyn DocSink>, SinkError> {
    Ok(match format {
        OutputFormat::Jsonl => Box::new(jsonl::JsonlSink::to_writer(out, path, gzip_level)),
        OutputFormat::Parquet => {
            Box::new(parquet::ParquetSink::to_writer(out, path, with_drop_info)?)
        }
    })
}
