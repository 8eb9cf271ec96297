//! gzip JSON-lines sink: one document per line, as serialized by serde (`id`, `source`,
//! `text`, then `meta` and `scores` when set), plus `drop` in the side output.
//!
//! The file is a sequence of gzip members (which every gzip reader reads as one stream).
//! That lets the executor's workers compress batches in parallel with
//! [`encode_member`]; the sink only appends the bytes. Documents written one at a time
//! are gathered into members of about [`MEMBER_BYTES`] of JSON.

use super::{DocSink, DropInfo, SinkError};
use corpus_stages::Document;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// JSON bytes gathered before a member is compressed, when documents are written one at
/// a time.
pub const MEMBER_BYTES: usize = 4 << 20;

/// Writes `.jsonl.gz`.
pub struct JsonlSink {
    path: PathBuf,
    out: BufWriter<Box<dyn Write + Send>>,
    pending: Vec<u8>,
    level: u32,
    /// Bytes written to the file so far.
    written: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    doc: &'a Document,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop: Option<&'a DropInfo>,
}

/// Appends one document as a JSON line to `buf`.
pub fn encode_line(
    buf: &mut Vec<u8>,
    doc: &Document,
    drop: Option<&DropInfo>,
) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *buf, &Line { doc, drop })?;
    buf.push(b'\n');
    Ok(())
}

/// Compresses JSON lines into one gzip member at `level` (1 fastest .. 9 smallest). The
/// header carries no timestamp or name, so the bytes depend only on the lines.
pub fn compress_member(lines: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().write(
        Vec::with_capacity(lines.len() / 3 + 64),
        flate2::Compression::new(level),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(lines);
    enc.finish().unwrap_or_default()
}

/// Encodes documents as one gzip member of JSON lines, ready for
/// [`DocSink::write_encoded`]. Runs on worker threads.
pub fn encode_member<'a>(
    docs: impl IntoIterator<Item = (&'a Document, Option<&'a DropInfo>)>,
    level: u32,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut lines = Vec::new();
    for (doc, drop) in docs {
        encode_line(&mut lines, doc, drop)?;
    }
    Ok(if lines.is_empty() {
        Vec::new()
    } else {
        compress_member(&lines, level)
    })
}

impl JsonlSink {
    /// Creates (truncates) `path`; members are compressed at gzip `level`.
    pub fn create(path: &Path, level: u32) -> Result<JsonlSink, SinkError> {
        let file = File::create(path).map_err(|e| SinkError::write(path, e))?;
        Ok(Self::to_writer(Box::new(file), path, level))
    }

    /// Writes to `out` (a file or an upload); `path` names it in errors.
    pub fn to_writer(out: Box<dyn Write + Send>, path: &Path, level: u32) -> JsonlSink {
        JsonlSink {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, out),
            pending: Vec::new(),
            level,
            written: 0,
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        self.written += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| SinkError::write(&self.path, e))
    }

    fn flush_pending(&mut self) -> Result<(), SinkError> {
        if !self.pending.is_empty() {
            let member = compress_member(&self.pending, self.level);
            self.pending.clear();
            self.append(&member)?;
        }
        Ok(())
    }
}

impl DocSink for JsonlSink {
    fn write(&mut self, doc: &Document, drop: Option<&DropInfo>) -> Result<(), SinkError> {
        encode_line(&mut self.pending, doc, drop).map_err(|e| SinkError::write(&self.path, e))?;
        if self.pending.len() >= MEMBER_BYTES {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn write_encoded(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        self.flush_pending()?;
        self.append(bytes)
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        self.flush_pending()?;
        if self.written == 0 {
            // An empty file is not valid gzip for every reader; an empty member is.
            let empty = compress_member(b"", self.level);
            self.append(&empty)?;
        }
        self.out
            .flush()
            .map_err(|e| SinkError::write(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn writes_one_json_object_per_line_with_drop_info() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl.gz");
        let mut sink: Box<dyn DocSink> = Box::new(JsonlSink::create(&path, 6).unwrap());
        let mut doc = Document::new("1", "web", "héllo\n\"q\"");
        doc.meta.url = Some("http://a/".into());
        sink.write(&doc, None).unwrap();
        let info = DropInfo {
            stage: "length".into(),
            reason: "too_short".into(),
            detail: None,
        };
        sink.write(&Document::new("2", "web", "x"), Some(&info))
            .unwrap();
        sink.finish().unwrap();
        let text = gunzip(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: Document = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(back, doc);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["drop"]["reason"], "too_short");
        assert_eq!(v["drop"]["stage"], "length");
    }

    #[test]
    fn encoded_members_and_single_writes_make_one_readable_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl.gz");
        let docs: Vec<Document> = (0..5)
            .map(|i| Document::new(format!("d{i}"), "s", format!("text {i}")))
            .collect();
        let mut sink: Box<dyn DocSink> = Box::new(JsonlSink::create(&path, 6).unwrap());
        sink.write(&docs[0], None).unwrap();
        let member = encode_member(docs[1..4].iter().map(|d| (d, None)), 6).unwrap();
        sink.write_encoded(&member).unwrap();
        sink.write_encoded(&encode_member([], 6).unwrap()).unwrap();
        sink.write(&docs[4], None).unwrap();
        sink.finish().unwrap();
        let ids: Vec<String> = gunzip(&path)
            .lines()
            .map(|l| serde_json::from_str::<Document>(l).unwrap().id)
            .collect();
        assert_eq!(ids, ["d0", "d1", "d2", "d3", "d4"]);
        // No documents: still a valid (empty) gzip stream.
        let empty = dir.path().join("empty.jsonl.gz");
        Box::new(JsonlSink::create(&empty, 6).unwrap())
            .finish()
            .unwrap();
        assert_eq!(gunzip(&empty), "");
        // Same documents, same bytes.
        assert_eq!(
            member,
            encode_member(docs[1..4].iter().map(|d| (d, None)), 6).unwrap()
        );
    }
}
