//! JSONL source. Placeholder until the JSONL reader lands.

use super::{Source, SourceError, SourceStats};
use corpus_stages::Document;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[input.jsonl]` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonlOptions {}

/// Reads JSONL files.
pub struct JsonlSource {
    stats: SourceStats,
}

impl JsonlSource {
    /// Opens `path`.
    pub fn open(path: &Path, _o: &JsonlOptions, _source: &str) -> Result<JsonlSource, SourceError> {
        Err(SourceError::Config(format!(
            "{}: JSONL input is not built yet",
            path.display()
        )))
    }
}

impl Source for JsonlSource {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        Ok(None)
    }
    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}
