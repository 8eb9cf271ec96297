//! Parquet sink (zstd). Placeholder until the Parquet sink lands.

use super::{DocSink, DropInfo, SinkError};
use corpus_stages::Document;
use std::path::Path;

/// Writes Parquet files.
pub struct ParquetSink;

impl ParquetSink {
    /// Creates `path`.
    pub fn create(path: &Path, _with_drop_info: bool) -> Result<ParquetSink, SinkError> {
        Err(SinkError::write(path, "parquet output is not built yet"))
    }
}

impl DocSink for ParquetSink {
    fn write(&mut self, _doc: &Document, _drop: Option<&DropInfo>) -> Result<(), SinkError> {
        unreachable!()
    }
    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        unreachable!()
    }
}
