//! The byte layer under the WARC parser: a file read as plain bytes or as a sequence of
//! gzip members, decoded member by member with one reused inflater and fixed buffers.
//!
//! Member boundaries are kept visible to the parser because Common Crawl writes one
//! member per record: a record that runs over the end of its member is damaged, and the
//! start of the next member is a safe place to resume after damage.

use flate2::{Crc, Decompress, FlushDecompress, Status};
use memchr::memmem;
use std::io::{self, Read, Seek, SeekFrom};

/// Stored (compressed) bytes read from the file at a time.
const RAW_CAP: usize = 1 << 18;
/// Decoded bytes buffered at a time; also bounds the longest WARC header block.
const OUT_CAP: usize = 1 << 18;
/// Decoded bytes looked at to tell whether a record starts: a version line
/// (`WARC/0.18\r\n` is the longest in use) with room for blanks before its end.
pub(crate) const VERSION_PEEK: usize = 16;

/// True when `b` starts with a WARC version line, which is how every record starts:
/// `WARC/1.` (1.0, 1.1) or `WARC/0.` (0.17, 0.18: ClueWeb09 and other early crawls),
/// a minor version of one to three digits, then the end of the line (blanks allowed
/// before it). The whole line is checked, not a prefix, so that text merely starting
/// with `WARC/` (`WARC/0.9 not a record`) is not taken for a record. `b` cut short after
/// a digit still counts: the header read that follows finds the cut.
pub(crate) fn is_version_line(b: &[u8]) -> bool {
    let Some(rest) = b
        .strip_prefix(b"WARC/1.")
        .or_else(|| b.strip_prefix(b"WARC/0."))
    else {
        return false;
    };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) {
        return false;
    }
    let rest = &rest[digits..];
    let blanks = rest
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    matches!(rest.get(blanks), None | Some(b'\r' | b'\n'))
}

/// Damage or failure seen by the byte layer.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// Reading the file failed; ends the file.
    Io(io::Error),
    /// A gzip member is damaged (bad header, bad deflate data, CRC or length mismatch).
    Gzip { member: u64, message: String },
    /// The file ends inside a gzip member.
    Truncated { member: u64 },
    /// Bytes that do not start a gzip member where one should start.
    Garbage { offset: u64 },
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Decoding data (plain: reading the file).
    Data,
    /// The current gzip member is finished; the next one has not been started.
    MemberEnd,
    /// Nothing more to read.
    Eof,
}

/// A plain or gzip file as a stream of decoded bytes with visible member boundaries.
pub(crate) struct Stream<R> {
    inner: R,
    gzip: bool,
    raw: Vec<u8>,
    raw_pos: usize,
    raw_len: usize,
    /// File offset of `raw[0]`.
    raw_off: u64,
    raw_eof: bool,
    inflate: Decompress,
    crc: Crc,
    /// File offset of the current (or last) gzip member.
    member_start: u64,
    state: State,
    /// Set after damage: the next member is searched for byte by byte and accepted only
    /// when it decodes to the start of a WARC record.
    resync: bool,
    out: Vec<u8>,
    pos: usize,
    len: usize,
    /// Offset of `out[0]` in the decoded stream (for plain files, in the file).
    out_off: u64,
}

impl<R: Read + Seek> Stream<R> {
    /// Wraps `inner`, telling plain from gzip by the first bytes.
    pub(crate) fn new(mut inner: R) -> io::Result<Self> {
        let mut raw = vec![0u8; RAW_CAP];
        let mut raw_len = 0;
        let mut raw_eof = false;
        while raw_len < 2 {
            let n = read_retry(&mut inner, &mut raw[raw_len..])?;
            if n == 0 {
                raw_eof = true;
                break;
            }
            raw_len += n;
        }
        let gzip = crate::io::Compression::sniff(&raw[..raw_len]) == crate::io::Compression::Gzip;
        let mut s = Stream {
            inner,
            gzip,
            raw,
            raw_pos: 0,
            raw_len,
            raw_off: 0,
            raw_eof,
            inflate: Decompress::new(false),
            crc: Crc::new(),
            member_start: 0,
            state: if gzip { State::MemberEnd } else { State::Data },
            resync: false,
            out: vec![0u8; OUT_CAP],
            pos: 0,
            len: 0,
            out_off: 0,
        };
        if !gzip {
            // The sniffed bytes are the first decoded bytes.
            s.out[..raw_len].copy_from_slice(&s.raw[..raw_len]);
            s.len = raw_len;
            s.raw_len = 0;
            if raw_eof && raw_len == 0 {
                s.state = State::Eof;
            }
        }
        Ok(s)
    }

    /// True for gzip input.
    pub(crate) fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Decoded bytes buffered and not consumed yet.
    #[inline]
    pub(crate) fn buf(&self) -> &[u8] {
        &self.out[self.pos..self.len]
    }

    /// Marks `n` buffered bytes as consumed.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len - self.pos);
        self.pos += n;
    }

    /// Offset in the decoded stream of the next unconsumed byte.
    pub(crate) fn stream_pos(&self) -> u64 {
        self.out_off + self.pos as u64
    }

    /// Where a record starting at the next unconsumed byte is in the file as stored: the
    /// start of its gzip member, or its byte offset in a plain file.
    pub(crate) fn record_offset(&self) -> u64 {
        if self.gzip {
            self.member_start
        } else {
            self.stream_pos()
        }
    }

    /// Stored bytes consumed so far.
    pub(crate) fn stored_pos(&self) -> u64 {
        if self.gzip {
            self.raw_off + self.raw_pos as u64
        } else {
            self.stream_pos()
        }
    }

    /// True when the whole input has been read.
    pub(crate) fn at_eof(&self) -> bool {
        self.state == State::Eof
    }

    /// True when the current member is finished and [`Stream::next_member`] is due.
    pub(crate) fn at_member_end(&self) -> bool {
        self.state == State::MemberEnd
    }

    /// Adds decoded bytes of the current member to the buffer. Returns how many; 0 means
    /// the member (or a plain file) has ended, or the buffer is full of unconsumed bytes.
    pub(crate) fn fill(&mut self) -> Result<usize, StreamError> {
        if self.state != State::Data {
            return Ok(0);
        }
        self.make_room();
        if self.len == self.out.len() {
            return Ok(0);
        }
        if !self.gzip {
            let n = read_retry(&mut self.inner, &mut self.out[self.len..])?;
            if n == 0 {
                self.state = State::Eof;
            }
            self.len += n;
            return Ok(n);
        }
        loop {
            if self.raw_pos == self.raw_len && !self.refill_raw()? {
                return Err(self.fail_truncated());
            }
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            let status = self.inflate.decompress(
                &self.raw[self.raw_pos..self.raw_len],
                &mut self.out[self.len..],
                FlushDecompress::None,
            );
            let used = (self.inflate.total_in() - before_in) as usize;
            let made = (self.inflate.total_out() - before_out) as usize;
            self.raw_pos += used;
            self.crc.update(&self.out[self.len..self.len + made]);
            self.len += made;
            match status {
                Ok(Status::StreamEnd) => {
                    self.finish_member()?;
                    return Ok(made);
                }
                Ok(_) if made > 0 => return Ok(made),
                Ok(_) if used == 0 && self.raw_pos < self.raw_len => {
                    // No progress with input and output room: cannot happen with a
                    // well-behaved inflater, but never spin on it.
                    return Err(self.fail_gzip("inflater made no progress".into()));
                }
                Ok(_) => {}
                Err(e) => return Err(self.fail_gzip(format!("bad deflate data: {e}"))),
            }
        }
    }

    /// Starts the next gzip member after [`Stream::at_member_end`]. `Ok(false)` at the
    /// end of the file. Bytes that are not a member are reported once as
    /// [`StreamError::Garbage`]; the following call searches past them.
    pub(crate) fn next_member(&mut self) -> Result<bool, StreamError> {
        if self.state == State::Eof {
            return Ok(false);
        }
        debug_assert_eq!(self.state, State::MemberEnd);
        if self.resync {
            return self.search_member();
        }
        match self.gzip_header()? {
            HeaderCheck::Eof => {
                self.state = State::Eof;
                Ok(false)
            }
            HeaderCheck::Valid(n) => {
                self.begin_member(n);
                Ok(true)
            }
            HeaderCheck::Truncated => {
                let member = self.stored_pos();
                self.raw_pos = self.raw_len;
                self.state = State::Eof;
                Err(StreamError::Truncated { member })
            }
            HeaderCheck::Invalid => {
                self.resync = true;
                Err(StreamError::Garbage {
                    offset: self.stored_pos(),
                })
            }
        }
    }

    /// After damage inside a member: forget what is buffered and look for the next
    /// member that decodes to a WARC record, from the byte after the damaged member's
    /// start. For plain files use [`Stream::seek_plain`] instead.
    fn enter_resync(&mut self) {
        self.pos = self.len;
        self.state = State::MemberEnd;
        self.resync = true;
        let from = self.member_start + 1;
        self.seek_raw(from);
    }

    /// Marks the rest of the current member as damaged: the next member is found by
    /// searching, as after a gzip error.
    pub(crate) fn abandon_member(&mut self) {
        if self.gzip {
            self.pos = self.len;
            if self.state == State::Data {
                // Skip to the member's end would mean decoding it; searching from here
                // finds the next member just as well.
                self.state = State::MemberEnd;
            }
            self.resync = true;
        }
    }

    /// Plain files: goes back (or forward) to file offset `to`, dropping the buffer.
    pub(crate) fn seek_plain(&mut self, to: u64) -> Result<(), StreamError> {
        debug_assert!(!self.gzip);
        let lo = self.out_off;
        let hi = self.out_off + self.len as u64;
        if (lo..=hi).contains(&to) {
            self.pos = (to - lo) as usize;
        } else {
            self.inner.seek(SeekFrom::Start(to))?;
            self.out_off = to;
            self.pos = 0;
            self.len = 0;
        }
        self.state = State::Data;
        Ok(())
    }

    fn make_room(&mut self) {
        if self.pos == self.len {
            self.out_off += self.pos as u64;
            self.pos = 0;
            self.len = 0;
        } else if self.len == self.out.len() || self.pos >= self.out.len() / 2 {
            self.out.copy_within(self.pos..self.len, 0);
            self.out_off += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
    }

    /// Reads more stored bytes, keeping the unconsumed ones. `Ok(false)` at end of file.
    fn refill_raw(&mut self) -> io::Result<bool> {
        if self.raw_eof {
            return Ok(false);
        }
        if self.raw_pos > 0 {
            self.raw.copy_within(self.raw_pos..self.raw_len, 0);
            self.raw_off += self.raw_pos as u64;
            self.raw_len -= self.raw_pos;
            self.raw_pos = 0;
        }
        if self.raw_len == self.raw.len() {
            return Ok(true);
        }
        let n = read_retry(&mut self.inner, &mut self.raw[self.raw_len..])?;
        if n == 0 {
            self.raw_eof = true;
            return Ok(false);
        }
        self.raw_len += n;
        Ok(true)
    }

    /// Makes at least `n` stored bytes available; false if the file ends first.
    fn ensure_raw(&mut self, n: usize) -> io::Result<bool> {
        while self.raw_len - self.raw_pos < n {
            if !self.refill_raw()? {
                return Ok(self.raw_len - self.raw_pos >= n);
            }
        }
        Ok(true)
    }

    fn seek_raw(&mut self, to: u64) {
        let lo = self.raw_off;
        let hi = self.raw_off + self.raw_len as u64;
        if (lo..=hi).contains(&to) {
            self.raw_pos = (to - lo) as usize;
        } else {
            // Seeking can only fail on I/O trouble, which the next read reports.
            let _ = self.inner.seek(SeekFrom::Start(to));
            self.raw_off = to;
            self.raw_pos = 0;
            self.raw_len = 0;
            self.raw_eof = false;
        }
    }

    fn gzip_header(&mut self) -> Result<HeaderCheck, StreamError> {
        let mut want = 10;
        loop {
            let have = self.ensure_raw(want)?;
            let avail = &self.raw[self.raw_pos..self.raw_len];
            if avail.is_empty() {
                return Ok(HeaderCheck::Eof);
            }
            match parse_gzip_header(avail) {
                Ok(Some(n)) => return Ok(HeaderCheck::Valid(n)),
                Err(()) => return Ok(HeaderCheck::Invalid),
                Ok(None) if !have || avail.len() >= RAW_CAP => return Ok(HeaderCheck::Truncated),
                Ok(None) => want = avail.len() + 1,
            }
        }
    }

    fn begin_member(&mut self, header_len: usize) {
        self.member_start = self.raw_off + self.raw_pos as u64;
        self.raw_pos += header_len;
        self.inflate.reset(false);
        self.crc.reset();
        self.state = State::Data;
    }

    fn finish_member(&mut self) -> Result<(), StreamError> {
        if !self.ensure_raw(8)? {
            return Err(self.fail_truncated());
        }
        let t = &self.raw[self.raw_pos..self.raw_pos + 8];
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        if crc != self.crc.sum() {
            return Err(self.fail_gzip("CRC mismatch".into()));
        }
        if size != self.inflate.total_out() as u32 {
            return Err(self.fail_gzip("length mismatch".into()));
        }
        self.raw_pos += 8;
        self.state = State::MemberEnd;
        Ok(())
    }

    fn fail_gzip(&mut self, message: String) -> StreamError {
        let member = self.member_start;
        self.enter_resync();
        StreamError::Gzip { member, message }
    }

    fn fail_truncated(&mut self) -> StreamError {
        let member = self.member_start;
        self.enter_resync();
        StreamError::Truncated { member }
    }

    /// Finds the next member that decodes to a WARC version line, trying every gzip
    /// magic.
    fn search_member(&mut self) -> Result<bool, StreamError> {
        let finder = memmem::Finder::new(&[0x1f, 0x8b, 0x08]);
        loop {
            // Find a candidate magic in the stored bytes.
            loop {
                let avail = &self.raw[self.raw_pos..self.raw_len];
                if let Some(i) = finder.find(avail) {
                    self.raw_pos += i;
                    break;
                }
                // Keep the last two bytes: a magic may straddle the refill.
                let keep = avail.len().min(2);
                self.raw_pos = self.raw_len - keep;
                if !self.refill_raw()? {
                    self.raw_pos = self.raw_len;
                    self.state = State::Eof;
                    self.resync = false;
                    return Ok(false);
                }
            }
            let candidate = self.raw_off + self.raw_pos as u64;
            if let HeaderCheck::Valid(n) = self.gzip_header()? {
                self.begin_member(n);
                // Whatever is buffered is dead while searching; start trial decoding
                // from an empty buffer so its bytes stay where we look for them.
                self.pos = self.len;
                self.make_room();
                let start = self.len;
                let ok = loop {
                    if self.len - start >= VERSION_PEEK {
                        break true;
                    }
                    // A failure here only means "not a member"; fill() has already
                    // set up a search from the byte after the candidate.
                    match self.fill() {
                        Ok(0) | Err(_) => break false,
                        Ok(_) => {}
                    }
                };
                if ok && is_version_line(&self.out[start..self.len]) {
                    self.resync = false;
                    return Ok(true);
                }
                // Not a record start: drop what it decoded to and go on searching.
                self.len = start;
                self.pos = self.pos.min(start);
            }
            self.state = State::MemberEnd;
            self.seek_raw(candidate + 1);
        }
    }
}

enum HeaderCheck {
    Valid(usize),
    Invalid,
    Truncated,
    Eof,
}

/// Length of the gzip member header at the start of `b`; `Ok(None)` if more bytes are
/// needed, `Err` if it is not a plausible gzip header.
fn parse_gzip_header(b: &[u8]) -> Result<Option<usize>, ()> {
    if b.len() < 10 {
        return if b.len() >= 3 && b[..3] != [0x1f, 0x8b, 0x08]
            || !b.is_empty() && b[0] != 0x1f
            || b.len() >= 2 && b[1] != 0x8b
        {
            Err(())
        } else {
            Ok(None)
        };
    }
    if b[..3] != [0x1f, 0x8b, 0x08] {
        return Err(());
    }
    let flags = b[3];
    // Reserved flag bits set: a false match inside other data. (The OS byte says
    // nothing: real Common Crawl files carry values outside the RFC's list.)
    if flags & 0xe0 != 0 {
        return Err(());
    }
    let mut n = 10;
    if flags & 0x04 != 0 {
        if b.len() < n + 2 {
            return Ok(None);
        }
        n += 2 + u16::from_le_bytes([b[n], b[n + 1]]) as usize;
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            if n >= b.len() {
                return Ok(None);
            }
            match memchr::memchr(0, &b[n..]) {
                Some(z) => n += z + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        n += 2;
    }
    if n > b.len() { Ok(None) } else { Ok(Some(n)) }
}

fn read_retry<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_header_lengths() {
        let mut h = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3];
        assert_eq!(parse_gzip_header(&h), Ok(Some(10)));
        assert_eq!(parse_gzip_header(&h[..5]), Ok(None));
        h[3] = 0x08; // FNAME
        assert_eq!(parse_gzip_header(&h), Ok(None));
        h.extend(b"name\0");
        assert_eq!(parse_gzip_header(&h), Ok(Some(15)));
        assert_eq!(parse_gzip_header(b"WARC/1.0\r\n"), Err(()));
        assert_eq!(
            parse_gzip_header(&[0x1f, 0x8b, 0x08, 0xff, 0, 0, 0, 0, 0, 3]),
            Err(())
        );
    }

    #[test]
    fn version_lines_of_warc_0_and_1_start_records() {
        for (line, starts) in [
            (&b"WARC/1.0\r\nWARC-Type"[..], true),
            (b"WARC/1.1\n", true),
            (b"WARC/0.18\r\n", true),
            (b"WARC/0.17 \r\n", true),
            (b"WARC/1.0", true),
            (b"WARC/0.9 not a record\r\n", false),
            (b"WARC/2.0\r\n", false),
            (b"WARC/1.\r\n", false),
            (b"WARC/1.0x\r\n", false),
            (b"WARC/1.", false),
            (b"warc/1.0\r\n", false),
            (b"HTTP/1.1 200 OK\r\n", false),
        ] {
            let shown = String::from_utf8_lossy(line);
            assert_eq!(is_version_line(line), starts, "{shown}");
        }
    }
}
