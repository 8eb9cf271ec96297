//! WARC source. Placeholder until the WARC reader lands.

use super::{Source, SourceError, SourceStats};
use corpus_stages::Document;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[input.warc]` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarcOptions {}

/// Reads WARC files.
pub struct WarcSource {
    stats: SourceStats,
}

impl WarcSource {
    /// Opens `path`.
    pub fn open(path: &Path, _o: &WarcOptions, _source: &str) -> Result<WarcSource, SourceError> {
        Err(SourceError::Config(format!(
            "{}: WARC input is not built yet",
            path.display()
        )))
    }
}

impl Source for WarcSource {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        Ok(None)
    }
    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}
