//! The HTTP envelope of WARC `response` records: status line, the few headers the
//! pipeline needs, and chunked transfer coding. Header bytes need not be UTF-8.

/// What the pipeline needs from an HTTP response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// Status code (`200`).
    pub status: u16,
    /// The first `Content-Type` value, trimmed, as raw bytes.
    pub content_type: Option<&'a [u8]>,
    /// True when `Transfer-Encoding` names `chunked`.
    pub chunked: bool,
    /// The first `Content-Encoding` value, trimmed, as raw bytes.
    pub content_encoding: Option<&'a [u8]>,
    /// Where the body starts in the record block (after the blank line; the block's
    /// length when the head has no end).
    pub body_start: usize,
}

/// Parses the status line and headers at the start of a response record block.
/// `None` when the block does not start with an HTTP status line.
pub fn parse_response_head(block: &[u8]) -> Option<ResponseHead<'_>> {
    let first_end = memchr::memchr(b'\n', block).unwrap_or(block.len());
    let status_line = block[..first_end].trim_ascii();
    if !status_line.starts_with(b"HTTP/") {
        return None;
    }
    // `HTTP/1.1 200 OK`; the reason phrase is optional.
    let rest = &status_line[memchr::memchr(b' ', status_line)? + 1..];
    let rest = rest.trim_ascii_start();
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &b| acc * 10 + (b - b'0') as u16);
    let mut head = ResponseHead {
        status,
        content_type: None,
        chunked: false,
        content_encoding: None,
        body_start: block.len(),
    };
    let base = (first_end + 1).min(block.len());
    let mut start = base;
    for nl in memchr::memchr_iter(b'\n', &block[base..]) {
        let end = base + nl;
        let line = block[start..end].trim_ascii_end();
        start = end + 1;
        if line.is_empty() {
            head.body_start = start;
            return Some(head);
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-type") {
            if head.content_type.is_none() {
                head.content_type = Some(value);
            }
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            if head.content_encoding.is_none() {
                head.content_encoding = Some(value);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            head.chunked |= value
                .split(|&b| b == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    // No blank line: a head without body (or cut off); everything is head.
    Some(head)
}

/// What decoding a payload's `Content-Encoding` gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The payload as it is: no coding, `identity`, or a header that the bytes belie
    /// (crawlers that decoded the payload often keep the header).
    AsIs,
    /// The decoded payload.
    Bytes(Vec<u8>),
    /// Decoded, it is larger than the limit.
    TooLarge,
    /// A coding this reader does not decode (`compress`, `zstd`...), named.
    Unsupported(String),
    /// The bytes are damaged for the coding they start like.
    Damaged,
}

/// Decodes a payload by its `Content-Encoding` (`gzip`, `x-gzip`, `deflate`: zlib or
/// raw, `br`), at most `limit` bytes. The bytes decide, not the header alone: a payload
/// that does not start like its coding is taken as it is (brotli has no magic number:
/// a payload that starts like markup is taken as it is, anything else is decoded).
pub fn decode_content(encoding: &[u8], payload: &[u8], limit: u64) -> Decoded {
    use std::io::Read;
    let coding = lower(encoding.trim_ascii());
    let read = |mut r: Box<dyn Read + '_>| {
        let mut out = Vec::new();
        match r.by_ref().take(limit + 1).read_to_end(&mut out) {
            Ok(_) if out.len() as u64 > limit => Decoded::TooLarge,
            Ok(_) => Decoded::Bytes(out),
            Err(_) => Decoded::Damaged,
        }
    };
    match coding.as_str() {
        "" | "identity" | "none" => Decoded::AsIs,
        "gzip" | "x-gzip" => {
            if payload.starts_with(&[0x1f, 0x8b]) {
                read(Box::new(flate2::read::MultiGzDecoder::new(payload)))
            } else {
                Decoded::AsIs
            }
        }
        "deflate" => {
            let zlib = payload.len() >= 2
                && payload[0] & 0x0f == 8
                && (u16::from(payload[0]) << 8 | u16::from(payload[1])) % 31 == 0;
            if zlib {
                read(Box::new(flate2::read::ZlibDecoder::new(payload)))
            } else if starts_like_markup(payload) {
                Decoded::AsIs
            } else {
                read(Box::new(flate2::read::DeflateDecoder::new(payload)))
            }
        }
        "br" => {
            if starts_like_markup(payload) {
                Decoded::AsIs
            } else {
                read(Box::new(brotli_decompressor::Decompressor::new(
                    payload, 4096,
                )))
            }
        }
        other => Decoded::Unsupported(other.to_string()),
    }
}

/// The first byte after white space (and a UTF-8 byte order mark) is `<`: a page, not
/// compressed data.
fn starts_like_markup(payload: &[u8]) -> bool {
    let payload = payload.strip_prefix(b"\xef\xbb\xbf").unwrap_or(payload);
    payload
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<')
}

/// Splits a `Content-Type` value into the MIME type and the `charset` parameter, both
/// lower-cased; quotes around the charset are removed. Invalid UTF-8 is replaced.
pub fn parse_content_type(value: &[u8]) -> (String, Option<String>) {
    let mut parts = value.split(|&b| b == b';');
    let mime = lower(parts.next().unwrap_or_default().trim_ascii());
    let charset = parts.find_map(|p| {
        let eq = memchr::memchr(b'=', p)?;
        if !p[..eq].trim_ascii().eq_ignore_ascii_case(b"charset") {
            return None;
        }
        let v = p[eq + 1..].trim_ascii();
        let v = v.strip_prefix(b"\"").unwrap_or(v);
        let v = v.strip_suffix(b"\"").unwrap_or(v);
        let v = v.strip_prefix(b"'").unwrap_or(v);
        let v = v.strip_suffix(b"'").unwrap_or(v).trim_ascii();
        (!v.is_empty()).then(|| lower(v))
    });
    (mime, charset)
}

fn lower(v: &[u8]) -> String {
    String::from_utf8_lossy(v).to_lowercase()
}

/// Undoes chunked transfer coding of `buf[start..]` in place, if it parses as chunked.
/// Returns false (and leaves `buf` as it was) when it does not: Common Crawl keeps the
/// original `Transfer-Encoding` header but usually stores the payload already decoded.
/// A last chunk cut short, or a missing final `0` chunk, is accepted (truncated
/// captures); chunk extensions and trailers are dropped.
pub fn dechunk_in_place(buf: &mut Vec<u8>, start: usize) -> bool {
    // First pass only validates, so a body that is not chunked is never damaged.
    let Some(chunks) = scan_chunks(&buf[start..], |_, _| {}) else {
        return false;
    };
    if chunks == 0 {
        return false;
    }
    let mut write = start;
    let mut spans = Vec::with_capacity(chunks);
    scan_chunks(&buf[start..], |a, b| spans.push((start + a, start + b)));
    for (a, b) in spans {
        buf.copy_within(a..b, write);
        write += b - a;
    }
    buf.truncate(write);
    true
}

/// Walks the chunks of `body`, calling `data(from, to)` for each chunk's data. Returns
/// the number of chunks, or `None` if `body` is not chunked.
fn scan_chunks(body: &[u8], mut data: impl FnMut(usize, usize)) -> Option<usize> {
    let mut pos = 0;
    let mut chunks = 0;
    while pos < body.len() {
        let nl = memchr::memchr(b'\n', &body[pos..])?;
        let line = body[pos..pos + nl].trim_ascii_end();
        let size_part = match memchr::memchr(b';', line) {
            Some(i) => &line[..i],
            None => line,
        }
        .trim_ascii();
        if size_part.is_empty() || size_part.len() > 15 {
            return None;
        }
        let size = size_part.iter().try_fold(0usize, |acc, &b| {
            let d = (b as char).to_digit(16)?;
            Some(acc * 16 + d as usize)
        })?;
        pos += nl + 1;
        if size == 0 {
            return Some(chunks);
        }
        let end = pos.saturating_add(size).min(body.len());
        data(pos, end);
        chunks += 1;
        pos = end;
        if pos == body.len() {
            // Cut off: believe it only if an earlier chunk was framed correctly, so a
            // plain body that starts with a hex-looking word is not taken for chunks.
            return (chunks > 1).then_some(chunks);
        }
        // Chunk data is followed by CRLF (LF tolerated).
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos] == b'\n' {
            pos += 1;
        } else {
            return None;
        }
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A brotli stream of `data` in one uncompressed meta-block (RFC 7932: window bits
    /// 16; a meta-block header of 4 length nibbles, flagged uncompressed; then an empty
    /// last meta-block), for tests without a brotli encoder.
    pub(crate) fn brotli_stored(data: &[u8]) -> Vec<u8> {
        assert!(!data.is_empty() && data.len() <= 1 << 16);
        let l = data.len() - 1;
        // Bits, least significant first: WBITS 0, ISLAST 0, MNIBBLES 00, MLEN-1 (16
        // bits), ISUNCOMPRESSED 1, padding to the byte.
        let head = [
            ((l & 0xf) << 4) as u8,
            ((l >> 4) & 0xff) as u8,
            (((l >> 12) & 0xf) | 0x10) as u8,
        ];
        // ISLAST 1, ISLASTEMPTY 1.
        [&head[..], data, &[0x03]].concat()
    }

    /// Decoding by `Content-Encoding` is bounded, and the bytes decide.
    #[test]
    fn content_is_decoded_within_the_limit() {
        use std::io::Write;
        let page = b"<html><body>a page</body></html>".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&page).unwrap();
        let gz = gz.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&page).unwrap();
        let raw = raw.finish().unwrap();
        assert_eq!(
            decode_content(b"GZIP ", &gz, 1 << 20),
            Decoded::Bytes(page.clone())
        );
        assert_eq!(
            decode_content(b"deflate", &raw, 1 << 20),
            Decoded::Bytes(page.clone())
        );
        assert_eq!(decode_content(b"gzip", &gz, 100), Decoded::TooLarge);
        assert_eq!(decode_content(b"gzip", &page, 1 << 20), Decoded::AsIs);
        assert_eq!(decode_content(b"deflate", &page, 1 << 20), Decoded::AsIs);
        assert_eq!(decode_content(b"identity", &gz, 1 << 20), Decoded::AsIs);
        assert_eq!(
            decode_content(b"gzip", &gz[..gz.len() - 9], 1 << 20),
            Decoded::Damaged
        );
        assert_eq!(
            decode_content(b"br", &brotli_stored(&page), 1 << 20),
            Decoded::Bytes(page.clone())
        );
        assert_eq!(decode_content(b"br", &page, 1 << 20), Decoded::AsIs);
        assert_eq!(
            decode_content(b"br", b"\xff\xfe junk", 1 << 20),
            Decoded::Damaged
        );
        assert_eq!(
            decode_content(b"compress", &page, 1 << 20),
            Decoded::Unsupported("compress".into())
        );
    }

    #[test]
    fn parses_status_and_headers_with_invalid_utf8() {
        let block = b"HTTP/1.1 404 Not Found\r\nX-Bad: \xff\xfe\r\ncontent-type: Text/HTML; Charset=\"ISO-8859-1\"\r\nTransfer-Encoding: gzip, chunked\r\n\r\nbody";
        let head = parse_response_head(block).unwrap();
        assert_eq!(head.status, 404);
        assert!(head.chunked);
        assert_eq!(&block[head.body_start..], b"body");
        let (mime, cs) = parse_content_type(head.content_type.unwrap());
        assert_eq!(mime, "text/html");
        assert_eq!(cs.as_deref(), Some("iso-8859-1"));
        assert_eq!(
            parse_content_type(b"text/html\xff; charset=\xff"),
            (
                "text/html\u{fffd}".to_string(),
                Some("\u{fffd}".to_string())
            )
        );
        assert!(parse_response_head(b"GET / HTTP/1.1\r\n\r\n").is_none());
        assert!(parse_response_head(b"HTTP/1.1 20 OK\r\n\r\n").is_none());
        assert_eq!(parse_response_head(b"HTTP/2 301\n\n").unwrap().status, 301);
    }

    #[test]
    fn dechunks_only_real_chunked_bodies() {
        let mut b = b"HEAD4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n".to_vec();
        assert!(dechunk_in_place(&mut b, 4));
        assert_eq!(b, b"HEADWikipedia in \r\n\r\nchunks.");
        let html = b"<html><body>not chunked</body></html>".to_vec();
        let mut h = html.clone();
        assert!(!dechunk_in_place(&mut h, 0));
        assert_eq!(h, html);
        // Cut in the middle of the last chunk, as truncated captures are.
        let mut cut = b"5\r\nhello\r\n10\r\nwor".to_vec();
        assert!(dechunk_in_place(&mut cut, 0));
        assert_eq!(cut, b"hellowor");
        // A hex-looking first line is not enough.
        let mut bad = b"abc\r\nxyz".to_vec();
        assert!(!dechunk_in_place(&mut bad, 0));
        let mut bad2 = b"3\r\nxyzW\r\n".to_vec();
        assert!(!dechunk_in_place(&mut bad2, 0));
        assert_eq!(bad2, b"3\r\nxyzW\r\n");
        let mut empty = Vec::new();
        assert!(!dechunk_in_place(&mut empty, 0));
    }
}
