//! WARC input: Common Crawl WARC and WET files (WARC 1.0/1.1, plain or gzip), and the
//! WARC 0.17/0.18 of earlier crawls (ClueWeb09): their records differ only in the version
//! line, and their HTTP heads, which may end lines with LF alone, read the same.
//!
//! [`WarcReader`] is the low-level record reader; [`WarcSource`] turns HTML `response`
//! records (and WET `conversion` records) into documents and counts everything else.

pub mod http;
mod reader;
mod stream;

pub use reader::{
    Body, CorruptKind, MAX_HEADER_BYTES, Record, RecordHeader, RecordType, WarcError, WarcReader,
};

use super::{Source, SourceError, SourceStats};
use corpus_stages::Document;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// `[input.warc]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarcOptions {
    /// MIME types (lower-case, no parameters) of `response` records turned into
    /// documents; other responses are skipped as `non_html`. The HTTP `Content-Type`
    /// decides; without one, Common Crawl's `WARC-Identified-Payload-Type`.
    /// Default: `["text/html", "application/xhtml+xml"]`.
    pub mime_types: Vec<String>,
    /// Records whose block (`Content-Length`: HTTP head plus body, or WET text) is
    /// longer than this are skipped as `too_large` without being buffered. Unit: bytes.
    /// Default: 16777216 (16 MiB).
    pub max_record_bytes: u64,
}

impl Default for WarcOptions {
    fn default() -> Self {
        WarcOptions {
            mime_types: vec!["text/html".into(), "application/xhtml+xml".into()],
            max_record_bytes: 16 << 20,
        }
    }
}

/// Reads one WARC or WET file as documents.
///
/// `response` records with status 200 and an allowed MIME type become documents whose
/// `raw` is the HTTP body (chunked coding undone) and whose `text` is empty until a
/// later stage decodes it; `conversion` records (WET) become documents with `text` set.
/// Every other record is counted in [`SourceStats::skipped`] by reason: its type
/// (`warcinfo`, `request`, `metadata`, `revisit`, `resource`...), `status_<code>`,
/// `non_html`, `not_http`, `too_large`, `content_encoding_<coding>`,
/// `bad_content_encoding`.
///
/// A payload still encoded by its `Content-Encoding` (`gzip`, `x-gzip`, `deflate`, `br`)
/// is decoded, within `max_record_bytes`; the bytes decide, not the header alone: most
/// crawlers store the payload decoded (Common Crawl renames the header; ClueWeb09 keeps
/// it, so it may claim a gzip the body no longer has). A coding without a decoder here
/// (`compress`, `zstd`) skips the record as `content_encoding_<coding>`
/// ([`http::decode_content`]).
pub struct WarcSource {
    reader: WarcReader<Box<dyn crate::io::ReadSeek>>,
    path: PathBuf,
    options: WarcOptions,
    source: String,
    stats: SourceStats,
    warc_filename: String,
    crawl: Option<String>,
}

impl WarcSource {
    /// Opens `path`, a local file or a URL (`s3://`, `https://`: streamed as it
    /// downloads, see [`RemoteReader`](crate::remote::RemoteReader)); documents get
    /// `source` as their source name.
    pub fn open(
        path: &Path,
        options: &WarcOptions,
        source: &str,
    ) -> Result<WarcSource, SourceError> {
        let open_err = |e| SourceError::Open {
            path: path.to_path_buf(),
            source: e,
        };
        let input = crate::io::open_seekable(path).map_err(open_err)?;
        let reader = WarcReader::new(input).map_err(open_err)?;
        Ok(WarcSource {
            reader,
            path: path.to_path_buf(),
            options: options.clone(),
            source: source.to_string(),
            stats: SourceStats::default(),
            warc_filename: crate::io::file_name(path),
            crawl: crawl_from_path(path),
        })
    }

    fn error(&mut self, e: WarcError) -> SourceError {
        self.stats.bytes = self.reader.bytes_consumed();
        match e {
            WarcError::Io { offset, source } => SourceError::Fatal {
                path: self.path.clone(),
                offset,
                message: format!("I/O error: {source}"),
            },
            WarcError::Corrupt {
                record,
                offset,
                kind,
                message,
            } => {
                self.stats.corrupt(kind.as_str());
                SourceError::Corrupt {
                    path: self.path.clone(),
                    record,
                    offset,
                    message: format!("{kind}: {message}"),
                }
            }
        }
    }

    /// Takes the file name and crawl from a `warcinfo` record (header or body fields).
    fn read_warcinfo(&mut self) -> Result<(), WarcError> {
        let h = self.reader.header();
        if let Some(name) = h.get_str("WARC-Filename") {
            self.warc_filename = name.into_owned();
        }
        let body = match self.reader.read_body(1 << 20)? {
            Body::Complete(b) => b,
            Body::TooLarge(_) => return Ok(()),
        };
        for line in body.split(|&b| b == b'\n') {
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            let name = line[..colon].trim_ascii();
            let value = String::from_utf8_lossy(line[colon + 1..].trim_ascii());
            if value.is_empty() {
                continue;
            }
            if name.eq_ignore_ascii_case(b"isPartOf") {
                self.crawl = Some(value.into_owned());
            } else if name.eq_ignore_ascii_case(b"WARC-Filename") {
                self.warc_filename = value.into_owned();
            }
        }
        Ok(())
    }

    fn base_doc(&self) -> Document {
        let h = self.reader.header();
        let id = h
            .get_str("WARC-Record-ID")
            .map(|v| strip_brackets(&v).to_string())
            .unwrap_or_else(|| format!("{}/{}", self.warc_filename, h.number()));
        let mut doc = Document::new(id.clone(), self.source.clone(), String::new());
        let m = &mut doc.meta;
        m.url = h
            .get_str("WARC-Target-URI")
            .map(|v| strip_brackets(&v).to_string());
        m.warc_record_id = Some(id);
        m.warc_filename = Some(self.warc_filename.clone());
        m.crawl = self.crawl.clone();
        m.offset = Some(h.offset());
        m.date = h.get_str("WARC-Date").map(Cow::into_owned);
        doc
    }

    /// The MIME type (lowercased, without parameters) in the current record's header
    /// `name`.
    fn header_mime(&self, name: &str) -> Option<String> {
        self.reader
            .header()
            .get(name)
            .map(|v| http::parse_content_type(v).0)
    }

    /// Turns the current `response` record into a document, or names why it is skipped.
    fn response(&mut self) -> Result<Result<Document, Cow<'static, str>>, WarcError> {
        let mut doc = self.base_doc();
        let identified = self.header_mime("WARC-Identified-Payload-Type");
        let block = match self.reader.read_body(self.options.max_record_bytes)? {
            Body::Complete(b) => b,
            Body::TooLarge(_) => return Ok(Err("too_large".into())),
        };
        let Some(head) = http::parse_response_head(block) else {
            return Ok(Err("not_http".into()));
        };
        if head.status != 200 {
            return Ok(Err(Cow::Owned(format!("status_{}", head.status))));
        }
        let (mime, charset) = match head.content_type {
            Some(ct) => http::parse_content_type(ct),
            None => (identified.unwrap_or_default(), None),
        };
        if !self.options.mime_types.contains(&mime) {
            return Ok(Err("non_html".into()));
        }
        let (chunked, body_start) = (head.chunked, head.body_start);
        let mut raw = block[body_start..].to_vec();
        if chunked {
            http::dechunk_in_place(&mut raw, 0);
        }
        if let Some(coding) = head.content_encoding {
            match http::decode_content(coding, &raw, self.options.max_record_bytes) {
                http::Decoded::AsIs => {}
                http::Decoded::Bytes(decoded) => raw = decoded,
                http::Decoded::TooLarge => return Ok(Err("too_large".into())),
                http::Decoded::Unsupported(c) => {
                    return Ok(Err(Cow::Owned(format!("content_encoding_{c}"))));
                }
                http::Decoded::Damaged => return Ok(Err("bad_content_encoding".into())),
            }
        }
        doc.raw = Some(raw);
        doc.meta.http_status = Some(200);
        doc.meta.content_type = Some(mime);
        doc.meta.charset = charset;
        Ok(Ok(doc))
    }

    /// Turns the current WET `conversion` record into a document with text.
    fn conversion(&mut self) -> Result<Result<Document, Cow<'static, str>>, WarcError> {
        let mut doc = self.base_doc();
        let mime = self.header_mime("Content-Type");
        let text = match self.reader.read_body(self.options.max_record_bytes)? {
            Body::Complete(b) => String::from_utf8_lossy(b).into_owned(),
            Body::TooLarge(_) => return Ok(Err("too_large".into())),
        };
        doc.text = text;
        doc.meta.content_type = mime;
        Ok(Ok(doc))
    }

    fn next_inner(&mut self) -> Result<Option<Document>, WarcError> {
        loop {
            let Some(h) = self.reader.next_header()? else {
                return Ok(None);
            };
            self.stats.records += 1;
            let outcome = match h.record_type() {
                RecordType::Response => self.response()?,
                RecordType::Conversion => self.conversion()?,
                RecordType::Warcinfo => {
                    self.read_warcinfo()?;
                    Err("warcinfo".into())
                }
                _ => {
                    let name = h.type_name();
                    self.reader.skip_body()?;
                    self.stats
                        .skip(if name.is_empty() { "untyped" } else { &name });
                    continue;
                }
            };
            match outcome {
                Ok(doc) => {
                    self.stats.docs += 1;
                    return Ok(Some(doc));
                }
                Err(reason) => self.stats.skip(&reason),
            }
        }
    }
}

impl Source for WarcSource {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        let r = self.next_inner();
        self.stats.bytes = self.reader.bytes_consumed();
        r.map_err(|e| self.error(e))
    }

    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}

fn strip_brackets(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(v)
}

/// The crawl id (`CC-MAIN-2020-34`) named by a path component, as in Common Crawl's
/// `crawl-data/CC-MAIN-2020-34/segments/...` layout.
fn crawl_from_path(path: &Path) -> Option<String> {
    path.iter().rev().find_map(|c| {
        let c = c.to_string_lossy();
        let rest = c.strip_prefix("CC-MAIN-")?;
        let b = rest.as_bytes();
        let ok = b.len() >= 7
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b.get(7).is_none_or(|x| !x.is_ascii_digit());
        ok.then(|| format!("CC-MAIN-{}", &rest[..7]))
    })
}

#[cfg(test)]
mod tests;
