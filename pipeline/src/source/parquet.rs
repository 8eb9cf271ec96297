//! Parquet source. Placeholder until the Parquet reader lands.

use super::{Source, SourceError, SourceStats};
use corpus_stages::Document;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[input.parquet]` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParquetOptions {}

/// Reads Parquet files.
pub struct ParquetSource {
    stats: SourceStats,
}

impl ParquetSource {
    /// Opens `path`.
    pub fn open(
        path: &Path,
        _o: &ParquetOptions,
        _source: &str,
    ) -> Result<ParquetSource, SourceError> {
        Err(SourceError::Config(format!(
            "{}: Parquet input is not built yet",
            path.display()
        )))
    }
}

impl Source for ParquetSource {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        Ok(None)
    }
    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}
