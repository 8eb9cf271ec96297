//! HTML files as input: one page per file (`.html`, `.htm`, `.xhtml`, optionally `.gz`
//! or `.zst`), for example a saved crawl or a labelled evaluation set. The page is
//! handed to the `extract` stage as raw bytes, as a WARC response's body is; its id is
//! the file name without the suffixes (`a/Page.html.gz` -> `Page`), its source `html`
//! unless the config names one.

use super::{Source, SourceError, SourceStats};
use corpus_stages::Document;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The suffixes (before any compression suffix) of an HTML file.
const SUFFIXES: [&str; 3] = [".html", ".htm", ".xhtml"];

/// The page id of an HTML file: its name without the HTML and compression suffixes;
/// `None` when the name is not an HTML file's.
pub fn page_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let lower = name.to_ascii_lowercase();
    let base = lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".zst"))
        .unwrap_or(&lower);
    SUFFIXES
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .map(|stem| name[..stem.len()].to_string())
}

/// Reads one HTML file as one document.
pub struct HtmlSource {
    path: PathBuf,
    source: String,
    done: bool,
    stats: SourceStats,
}

impl HtmlSource {
    /// A source over the page in `path`, with documents from `source`.
    pub fn open(path: &Path, source: &str) -> Result<HtmlSource, SourceError> {
        Ok(HtmlSource {
            path: path.to_path_buf(),
            source: source.to_string(),
            done: false,
            stats: SourceStats::default(),
        })
    }
}

impl Source for HtmlSource {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(None);
        }
        let open_err = |source| SourceError::Open {
            path: self.path.clone(),
            source,
        };
        let (mut reader, counter) = crate::io::open_decompressed(&self.path).map_err(open_err)?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| SourceError::Fatal {
                path: self.path.clone(),
                offset: counter.get(),
                message: format!("reading the page: {e}"),
            })?;
        self.stats.records = 1;
        self.stats.docs = 1;
        self.stats.bytes = counter.get();
        let id = page_id(&self.path).unwrap_or_else(|| super::file_stem(&self.path));
        let mut doc = Document::new(id, self.source.clone(), String::new());
        doc.raw = Some(bytes);
        Ok(Some(doc))
    }

    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}
