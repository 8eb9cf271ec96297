//! Low-level WARC record reader: headers and bodies, one record at a time, in constant
//! memory, with recovery from damaged records.

use super::stream::{Stream, StreamError, VERSION_PEEK, is_version_line};
use memchr::memmem;
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

/// Longest WARC header block accepted, in bytes. Real ones are about 1 KiB; anything
/// longer is taken for damage rather than buffered.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Kind of damage found in a WARC file. [`CorruptKind::as_str`] is the key counted in
/// `SourceStats::corrupt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptKind {
    /// A gzip member is damaged (bad deflate data, CRC or length mismatch).
    Gzip,
    /// The file ends inside a record or a gzip member.
    Truncated,
    /// Bytes that are not a WARC record (or not a gzip member) where one should start.
    Garbage,
    /// The WARC header block is malformed: too long, or no valid `Content-Length`.
    BadHeader,
    /// The record's `Content-Length` does not match where the record really ends.
    ContentLength,
}

impl CorruptKind {
    /// Stable name used in statistics: `gzip`, `truncated`, `garbage`, `bad_header`,
    /// `content_length`.
    pub fn as_str(self) -> &'static str {
        match self {
            CorruptKind::Gzip => "gzip",
            CorruptKind::Truncated => "truncated",
            CorruptKind::Garbage => "garbage",
            CorruptKind::BadHeader => "bad_header",
            CorruptKind::ContentLength => "content_length",
        }
    }
}

impl std::fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of [`WarcReader`]. `Corrupt` is recoverable: the damaged record was skipped
/// and the next call goes on with the record after it.
#[derive(Debug, thiserror::Error)]
pub enum WarcError {
    /// Reading the file failed; nothing more can be read.
    #[error("at byte {offset}: I/O error: {source}")]
    Io {
        /// Stored bytes consumed when it happened.
        offset: u64,
        /// The cause.
        source: io::Error,
    },
    /// One record (or a run of bytes between records) is damaged and was skipped.
    #[error("record {record} at byte {offset}: {kind}: {message}")]
    Corrupt {
        /// Number of the damaged record in the file (0-based, all record types counted).
        record: u64,
        /// Where the record starts in the file as stored (see [`RecordHeader::offset`]).
        offset: u64,
        /// Kind of damage.
        kind: CorruptKind,
        /// What is wrong.
        message: String,
    },
}

impl WarcError {
    /// True when reading can go on after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, WarcError::Corrupt { .. })
    }
}

/// WARC record types (`WARC-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// `warcinfo`: describes the file.
    Warcinfo,
    /// `response`: a full server response (HTTP status line, headers and body).
    Response,
    /// `resource`: a resource without the protocol envelope.
    Resource,
    /// `request`: the request sent.
    Request,
    /// `metadata`: information about another record.
    Metadata,
    /// `revisit`: a repeat visit, usually without payload.
    Revisit,
    /// `conversion`: a transformed payload (Common Crawl WET text).
    Conversion,
    /// `continuation`: the rest of a segmented record.
    Continuation,
    /// Any other or missing type; its name is in the `WARC-Type` header.
    Other,
}

impl RecordType {
    fn parse(v: &[u8]) -> RecordType {
        let v = trim(v);
        let is = |s: &str| v.eq_ignore_ascii_case(s.as_bytes());
        if is("response") {
            RecordType::Response
        } else if is("request") {
            RecordType::Request
        } else if is("metadata") {
            RecordType::Metadata
        } else if is("warcinfo") {
            RecordType::Warcinfo
        } else if is("conversion") {
            RecordType::Conversion
        } else if is("resource") {
            RecordType::Resource
        } else if is("revisit") {
            RecordType::Revisit
        } else if is("continuation") {
            RecordType::Continuation
        } else {
            RecordType::Other
        }
    }
}

/// The header block of one record. Field names are matched ignoring ASCII case; values
/// are raw bytes (use [`RecordHeader::get_str`] for lossily decoded text).
#[derive(Debug, Clone, Default)]
pub struct RecordHeader {
    raw: Vec<u8>,
    /// (name start, name end, value start, value end) in `raw`.
    fields: Vec<(u32, u32, u32, u32)>,
    version_end: u32,
    record_type: Option<RecordType>,
    content_length: u64,
    offset: u64,
    stream_offset: u64,
    number: u64,
}

impl RecordHeader {
    /// The version line, e.g. `WARC/1.1`.
    pub fn version(&self) -> &[u8] {
        &self.raw[..self.version_end as usize]
    }

    /// The record type.
    pub fn record_type(&self) -> RecordType {
        self.record_type.unwrap_or(RecordType::Other)
    }

    /// The `WARC-Type` value, lower-cased (empty when missing).
    pub fn type_name(&self) -> String {
        self.get_str("WARC-Type")
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The block length from `Content-Length`, in bytes.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// Where the record starts in the file as stored: the offset of the gzip member it
    /// starts in (exactly the record's own member in gzip-per-record files, as Common
    /// Crawl indexes them), or its byte offset in a plain file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Where the record starts in the decompressed stream, in bytes.
    pub fn stream_offset(&self) -> u64 {
        self.stream_offset
    }

    /// Number of the record in the file, 0-based, counting every record.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The first value of field `name` (ASCII case ignored), trimmed.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// [`RecordHeader::get`] decoded as UTF-8, invalid sequences replaced.
    pub fn get_str(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(String::from_utf8_lossy)
    }

    /// All fields in order, as (name, trimmed value).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|&(a, b, c, d)| {
            (
                &self.raw[a as usize..b as usize],
                &self.raw[c as usize..d as usize],
            )
        })
    }

    /// Parses the header block `block` (version line to the blank line, inclusive).
    fn parse(&mut self, block: &[u8]) -> Result<(), String> {
        self.raw.clear();
        self.raw.extend_from_slice(block);
        self.fields.clear();
        self.record_type = None;
        let raw = &self.raw;
        let mut lines = memchr::memchr_iter(b'\n', raw);
        let first = lines.next().unwrap_or(raw.len());
        self.version_end = trim_end(&raw[..first]).len() as u32;
        let mut start = first + 1;
        for end in lines {
            let line = trim_end(&raw[start..end]);
            if line.is_empty() {
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                // A folded continuation line: extend the previous value.
                if let Some(last) = self.fields.last_mut() {
                    last.3 = (start + line.len()) as u32;
                }
            } else if let Some(colon) = memchr::memchr(b':', line) {
                let name = trim(&line[..colon]);
                let name_start = start + (name.as_ptr() as usize - line.as_ptr() as usize);
                let value = trim(&line[colon + 1..]);
                let value_start = start
                    + colon
                    + 1
                    + (value.as_ptr() as usize - line[colon + 1..].as_ptr() as usize);
                self.fields.push((
                    name_start as u32,
                    (name_start + name.len()) as u32,
                    value_start as u32,
                    (value_start + value.len()) as u32,
                ));
            }
            // Lines without a colon are ignored, as other readers do.
            start = end + 1;
        }
        self.record_type = Some(
            self.get("WARC-Type")
                .map_or(RecordType::Other, RecordType::parse),
        );
        let cl = self
            .get("Content-Length")
            .ok_or_else(|| "no Content-Length".to_string())?;
        self.content_length = parse_u64(cl).ok_or_else(|| {
            format!(
                "invalid Content-Length `{}`",
                String::from_utf8_lossy(&cl[..cl.len().min(40)])
            )
        })?;
        Ok(())
    }
}

/// A record with its whole body, as returned by [`WarcReader::next_record`].
#[derive(Debug)]
pub struct Record<'a> {
    /// The header block.
    pub header: &'a RecordHeader,
    /// The record block (`Content-Length` bytes).
    pub body: &'a [u8],
}

/// Outcome of [`WarcReader::read_body`].
#[derive(Debug)]
pub enum Body<'a> {
    /// The whole block.
    Complete(&'a [u8]),
    /// The block was longer than the limit and was skipped unread; its length.
    TooLarge(u64),
}

/// The body of the current record not read yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    remaining: u64,
    /// Stored offset where the body starts (plain files: where to search from after a
    /// wrong `Content-Length`).
    body_start: u64,
}

/// Streaming reader of WARC 1.0/1.1 (and 0.17/0.18) records from a plain or gzip file (one member per
/// record as Common Crawl writes, or one member for the whole file; told by the first
/// bytes, not the name).
///
/// Call [`WarcReader::next_header`], then [`WarcReader::read_body`] or
/// [`WarcReader::skip_body`] (an unread body is skipped by the next `next_header`); or
/// [`WarcReader::next_record`] for both. Memory stays bounded by two 256 KiB buffers,
/// the header limit and the longest body read.
///
/// After damage a [`WarcError::Corrupt`] names the record and the reader moves to the
/// next gzip member that decodes to a record (gzip) or the next line starting with
/// a WARC version line (plain), so later records are still read.
pub struct WarcReader<R = File> {
    s: Stream<R>,
    header: RecordHeader,
    body: Vec<u8>,
    next_number: u64,
    pending: Option<Pending>,
}

impl WarcReader<File> {
    /// Opens a file.
    pub fn open(path: &Path) -> io::Result<Self> {
        WarcReader::new(File::open(path)?)
    }
}

impl<R: Read + Seek> WarcReader<R> {
    /// Reads from `inner` (a file, or a cursor over bytes).
    pub fn new(inner: R) -> io::Result<Self> {
        Ok(WarcReader {
            s: Stream::new(inner)?,
            header: RecordHeader::default(),
            body: Vec::new(),
            next_number: 0,
            pending: None,
        })
    }

    /// True when the input is gzip.
    pub fn is_gzip(&self) -> bool {
        self.s.is_gzip()
    }

    /// Stored (compressed) bytes consumed so far.
    pub fn bytes_consumed(&self) -> u64 {
        self.s.stored_pos()
    }

    /// The header of the current record (after a successful
    /// [`WarcReader::next_header`]).
    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// Reads the next record with its whole body. `Ok(None)` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, WarcError> {
        if self.next_header()?.is_none() {
            return Ok(None);
        }
        // No limit, so the whole body is always read.
        self.read_body(u64::MAX)?;
        Ok(Some(Record {
            header: &self.header,
            body: &self.body,
        }))
    }

    /// Reads the next record's header, skipping the rest of the current record.
    /// `Ok(None)` at the end of the file.
    pub fn next_header(&mut self) -> Result<Option<&RecordHeader>, WarcError> {
        if self.pending.is_some() {
            self.skip_body()?;
        }
        // Blank lines between records are tolerated.
        loop {
            let buf = self.s.buf();
            let blank = buf
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(buf.len());
            self.s.consume(blank);
            if !self.s.buf().is_empty() {
                break;
            }
            if !self.more()? {
                return Ok(None);
            }
        }
        let offset = self.s.record_offset();
        let stream_offset = self.s.stream_pos();
        let number = self.next_number;
        while self.s.buf().len() < VERSION_PEEK
            && self
                .s
                .fill()
                .map_err(|e| self.stream_err(e, number, offset))?
                > 0
        {}
        if !is_version_line(self.s.buf()) {
            let shown =
                String::from_utf8_lossy(&self.s.buf()[..self.s.buf().len().min(16)]).into_owned();
            self.resync(None)?;
            return Err(corrupt(
                number,
                offset,
                CorruptKind::Garbage,
                format!("expected a version line `WARC/1.x` or `WARC/0.x`, found {shown:?}"),
            ));
        }
        self.next_number += 1;
        // Find the blank line ending the header block.
        let mut scanned = 0;
        let end = loop {
            let buf = self.s.buf();
            let found = header_end(buf, &mut scanned);
            if let Some(end) = found.filter(|&e| e <= MAX_HEADER_BYTES) {
                break end;
            }
            if found.is_some() || buf.len() > MAX_HEADER_BYTES {
                self.resync(None)?;
                return Err(corrupt(
                    number,
                    offset,
                    CorruptKind::BadHeader,
                    format!("no end of header block within {MAX_HEADER_BYTES} bytes"),
                ));
            }
            if self
                .s
                .fill()
                .map_err(|e| self.stream_err(e, number, offset))?
                > 0
            {
                continue;
            }
            if !self.continues_in_next_member(number, offset)? {
                return Err(corrupt(
                    number,
                    offset,
                    CorruptKind::Truncated,
                    "header block cut off".into(),
                ));
            }
        };
        let parsed = self.header.parse(&self.s.buf()[..end]);
        self.s.consume(end);
        self.header.offset = offset;
        self.header.stream_offset = stream_offset;
        self.header.number = number;
        if let Err(message) = parsed {
            self.resync(None)?;
            return Err(corrupt(number, offset, CorruptKind::BadHeader, message));
        }
        self.pending = Some(Pending {
            remaining: self.header.content_length,
            body_start: self.s.stored_pos(),
        });
        Ok(Some(&self.header))
    }

    /// Reads the current record's body if it is at most `limit` bytes long; otherwise
    /// skips it without buffering it. An empty body if there is no current record.
    pub fn read_body(&mut self, limit: u64) -> Result<Body<'_>, WarcError> {
        self.body.clear();
        let Some(p) = self.pending else {
            return Ok(Body::Complete(&self.body));
        };
        if p.remaining > limit {
            self.skip_body()?;
            return Ok(Body::TooLarge(p.remaining));
        }
        // A lying Content-Length must not make us reserve gigabytes up front.
        self.body.reserve(p.remaining.min(1 << 22) as usize);
        self.consume_body(true)?;
        Ok(Body::Complete(&self.body))
    }

    /// Skips the current record's body.
    pub fn skip_body(&mut self) -> Result<(), WarcError> {
        if self.pending.is_some() {
            self.consume_body(false)?;
        }
        Ok(())
    }

    fn consume_body(&mut self, keep: bool) -> Result<(), WarcError> {
        let (number, offset) = (self.header.number, self.header.offset);
        let Some(mut p) = self.pending else {
            return Ok(());
        };
        let total = p.remaining;
        while p.remaining > 0 {
            let buf = self.s.buf();
            if buf.is_empty() {
                let got = match self.s.fill() {
                    Ok(n) => n,
                    Err(e) => {
                        self.pending = None;
                        return Err(self.stream_err(e, number, offset));
                    }
                };
                if got > 0 {
                    continue;
                }
                let read = total - p.remaining;
                self.pending = None;
                if self.s.at_eof() {
                    self.resync(Some(p.body_start))?;
                    return Err(corrupt(
                        number,
                        offset,
                        CorruptKind::Truncated,
                        format!("file ends {read} bytes into a {total}-byte block"),
                    ));
                }
                if !self.continues_in_next_member(number, offset)? {
                    return Err(corrupt(
                        number,
                        offset,
                        CorruptKind::ContentLength,
                        format!(
                            "Content-Length is {total} but the record's gzip member ends after {read} bytes"
                        ),
                    ));
                }
                self.pending = Some(p);
                continue;
            }
            let n = (p.remaining.min(buf.len() as u64)) as usize;
            if keep {
                self.body.extend_from_slice(&buf[..n]);
            }
            self.s.consume(n);
            p.remaining -= n as u64;
            self.pending = Some(p);
        }
        self.pending = None;
        // The block must be followed by the blank lines ending the record.
        let mut newlines = 0;
        loop {
            let buf = self.s.buf();
            let mut i = 0;
            while i < buf.len() && (buf[i] == b'\r' || buf[i] == b'\n') {
                newlines += (buf[i] == b'\n') as u32;
                i += 1;
            }
            self.s.consume(i);
            if !self.s.buf().is_empty() {
                break;
            }
            match self.s.fill() {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(self.stream_err(e, number, offset)),
            }
        }
        if newlines >= 2 {
            return Ok(());
        }
        self.resync(Some(p.body_start))?;
        Err(corrupt(
            number,
            offset,
            CorruptKind::ContentLength,
            format!("Content-Length is {total} but the block is not followed by the record end"),
        ))
    }

    /// The current member (or plain file) has no more bytes: moves on to the next member.
    /// `Ok(false)` at the end of the input.
    fn more(&mut self) -> Result<bool, WarcError> {
        loop {
            if self.s.at_eof() {
                return Ok(false);
            }
            if self.s.at_member_end() {
                match self.s.next_member() {
                    // After damage the next member is told by decoding its start, and a
                    // short member (the last record of a file is often a small
                    // `metadata`) may be decoded whole by that: its bytes are buffered
                    // and the member is already at its end, so fill() would add nothing
                    // and the record would be taken for the end of the file.
                    Ok(true) if !self.s.buf().is_empty() => return Ok(true),
                    Ok(true) => {}
                    Ok(false) => return Ok(false),
                    Err(e) => return Err(self.between_err(e)),
                }
            }
            match self.s.fill() {
                Ok(0) => {}
                Ok(_) => return Ok(true),
                Err(e) => return Err(self.between_err(e)),
            }
        }
    }

    /// Stream damage found before the next record started: it is counted against the
    /// next record number, at the damaged place.
    fn between_err(&mut self, e: StreamError) -> WarcError {
        let offset = match &e {
            StreamError::Gzip { member, .. } | StreamError::Truncated { member } => *member,
            StreamError::Garbage { offset } => *offset,
            StreamError::Io(_) => self.s.stored_pos(),
        };
        self.stream_err(e, self.next_number, offset)
    }

    /// A record runs past the end of its gzip member. If the next member starts a new
    /// record, the current one is damaged: returns `Ok(false)` positioned at the new
    /// record. Otherwise the record goes on in the next member (a writer may split a
    /// record over members): returns `Ok(true)` with the bytes appended to the buffer.
    fn continues_in_next_member(&mut self, number: u64, offset: u64) -> Result<bool, WarcError> {
        if self.s.at_eof() || !self.s.is_gzip() {
            self.s.consume(self.s.buf().len());
            self.pending = None;
            return Err(corrupt(
                number,
                offset,
                CorruptKind::Truncated,
                "file ends inside the record".into(),
            ));
        }
        let mark = self.s.buf().len();
        match self.s.next_member() {
            Ok(true) => {}
            Ok(false) => {
                self.s.consume(mark);
                return Err(corrupt(
                    number,
                    offset,
                    CorruptKind::Truncated,
                    "file ends inside the record".into(),
                ));
            }
            Err(e) => return Err(self.stream_err(e, number, offset)),
        }
        while self.s.buf().len() < mark + VERSION_PEEK {
            match self.s.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(self.stream_err(e, number, offset)),
            }
        }
        if is_version_line(&self.s.buf()[mark..]) {
            self.s.consume(mark);
            Ok(false)
        } else {
            Ok(true)
        }
    }

    /// After damage: moves to the next place a record can start. Plain files are
    /// searched from `from` (a stored offset) when given, else from here.
    fn resync(&mut self, from: Option<u64>) -> Result<(), WarcError> {
        self.pending = None;
        if !self.s.is_gzip()
            && let Some(from) = from
        {
            self.s
                .seek_plain(from)
                .map_err(|e| self.stream_err(e, self.next_number, from))?;
        }
        let finder = memmem::Finder::new(b"\nWARC/");
        // Skip the current position itself: it is where the damage is.
        if !self.s.buf().is_empty() && from.is_none() {
            self.s.consume(1);
        }
        loop {
            let buf = self.s.buf();
            if let Some(i) = finder.find(buf) {
                let line = &buf[i + 1..];
                if line.len() >= VERSION_PEEK {
                    let found = is_version_line(line);
                    self.s.consume(i + 1);
                    if found {
                        return Ok(());
                    }
                    continue;
                }
                // Too few bytes to judge the line: keep it and read on (a line cut
                // off by the end of the input is dropped below: no record fits in it).
                self.s.consume(i);
            } else {
                let keep = buf.len().min(VERSION_PEEK);
                self.s.consume(buf.len() - keep);
            }
            match self.s.fill() {
                Ok(n) if n > 0 => {}
                Ok(_) => {
                    if self.s.at_eof() || self.s.at_member_end() {
                        self.s.consume(self.s.buf().len());
                        self.s.abandon_member();
                        return Ok(());
                    }
                }
                // Damage inside damage: the stream already searches for the next member.
                Err(StreamError::Io(e)) => {
                    return Err(WarcError::Io {
                        offset: self.s.stored_pos(),
                        source: e,
                    });
                }
                Err(_) => return Ok(()),
            }
        }
    }

    fn stream_err(&mut self, e: StreamError, number: u64, offset: u64) -> WarcError {
        self.pending = None;
        match e {
            StreamError::Io(source) => WarcError::Io {
                offset: self.s.stored_pos(),
                source,
            },
            StreamError::Gzip { member, message } => corrupt(
                number,
                offset,
                CorruptKind::Gzip,
                format!("gzip member at byte {member}: {message}"),
            ),
            StreamError::Truncated { member } => corrupt(
                number,
                offset,
                CorruptKind::Truncated,
                format!("file ends inside the gzip member at byte {member}"),
            ),
            StreamError::Garbage { offset: at } => corrupt(
                number,
                at,
                CorruptKind::Garbage,
                format!("bytes at {at} are not a gzip member"),
            ),
        }
    }
}

fn corrupt(record: u64, offset: u64, kind: CorruptKind, message: String) -> WarcError {
    WarcError::Corrupt {
        record,
        offset,
        kind,
        message,
    }
}

/// End of the header block (after its blank line) in `buf`, scanning lines from
/// `*scanned` and remembering how far complete lines were checked.
fn header_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let base = *scanned;
    let mut line_start = base;
    for nl in memchr::memchr_iter(b'\n', &buf[base..]) {
        let line_end = base + nl;
        let line = &buf[line_start..line_end];
        line_start = line_end + 1;
        *scanned = line_start;
        if line.is_empty() || line == b"\r" {
            return Some(line_start);
        }
    }
    None
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn trim_end(v: &[u8]) -> &[u8] {
    v.trim_ascii_end()
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u64)
    })
}
