//! gzip JSON-lines sink: one document per line, as serialized by serde (`id`, `source`,
//! `text`, then `meta` and `scores` when set), plus `drop` in the side output.

use super::{DocSink, DropInfo, SinkError};
use corpus_stages::Document;
use flate2::write::GzEncoder;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `.jsonl.gz`.
pub struct JsonlSink {
    path: PathBuf,
    out: GzEncoder<BufWriter<File>>,
    line: Vec<u8>,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    doc: &'a Document,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop: Option<&'a DropInfo>,
}

impl JsonlSink {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<JsonlSink, SinkError> {
        let file = File::create(path).map_err(|e| SinkError::write(path, e))?;
        // The gzip header carries no timestamp or name, so output bytes depend only on
        // the documents.
        let out = flate2::GzBuilder::new().write(
            BufWriter::with_capacity(1 << 16, file),
            flate2::Compression::new(6),
        );
        Ok(JsonlSink {
            path: path.to_path_buf(),
            out,
            line: Vec::with_capacity(1 << 12),
        })
    }
}

impl DocSink for JsonlSink {
    fn write(&mut self, doc: &Document, drop: Option<&DropInfo>) -> Result<(), SinkError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, &Line { doc, drop })
            .map_err(|e| SinkError::write(&self.path, e))?;
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(|e| SinkError::write(&self.path, e))
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let path = self.path;
        let mut inner = self.out.finish().map_err(|e| SinkError::write(&path, e))?;
        inner.flush().map_err(|e| SinkError::write(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_one_json_object_per_line_with_drop_info() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl.gz");
        let mut sink: Box<dyn DocSink> = Box::new(JsonlSink::create(&path).unwrap());
        let mut doc = Document::new("1", "web", "héllo\n\"q\"");
        doc.meta.url = Some("http://a/".into());
        sink.write(&doc, None).unwrap();
        let info = DropInfo {
            stage: "length".into(),
            reason: "too_short".into(),
        };
        sink.write(&Document::new("2", "web", "x"), Some(&info))
            .unwrap();
        sink.finish().unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: Document = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(back, doc);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["drop"]["reason"], "too_short");
        assert_eq!(v["drop"]["stage"], "length");
    }
}
