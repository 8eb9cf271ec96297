//! Turning the bytes of an HTML response into text: which encoding, and why.
//!
//! Order of evidence: a byte-order mark; then valid UTF-8 (legacy-encoded text with
//! non-ASCII bytes is almost never valid UTF-8, while pages labelled `iso-8859-1` that are
//! really UTF-8 are common); then the HTTP `charset` and the `<meta>` declaration, each
//! only if the bytes decode under it without errors; then statistical detection
//! (chardetng) with the URL's top-level domain as a hint. A declared single-byte encoding
//! never "fails" to decode, so when the detector is confident the page is in a CJK
//! multi-byte encoding that decodes cleanly, the detector wins over such a label.

use encoding_rs::{Encoding, UTF_8};
use std::borrow::Cow;

/// How the encoding was chosen (counted in the stage statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Byte-order mark.
    Bom,
    /// The bytes are valid UTF-8.
    Utf8,
    /// The HTTP Content-Type charset.
    Http,
    /// A `<meta charset>` or `<meta http-equiv=Content-Type>` declaration.
    Meta,
    /// Statistical detection.
    Detected,
}

impl Source {
    /// Counter name for the statistics.
    pub fn counter(self) -> &'static str {
        match self {
            Source::Bom => "charset_bom",
            Source::Utf8 => "charset_utf8",
            Source::Http => "charset_http",
            Source::Meta => "charset_meta",
            Source::Detected => "charset_detected",
        }
    }
}

/// Bytes of the document scanned for a `<meta>` charset declaration. The HTML standard's
/// prescan looks at 1024 bytes; real pages often put the declaration after long
/// comments or scripts, so look further.
const META_SCAN: usize = 8192;

/// Decodes `bytes`, returning the text (borrowed when the bytes are valid UTF-8), the
/// encoding used and how it was chosen.
pub fn decode<'a>(
    bytes: &'a [u8],
    http_charset: Option<&str>,
    url: Option<&str>,
) -> (Cow<'a, str>, &'static Encoding, Source) {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return (text, enc, Source::Bom);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (Cow::Borrowed(text), UTF_8, Source::Utf8);
    }
    // A page cut in the middle of a character, or with one stray byte, is still UTF-8:
    // legacy-encoded text almost never forms valid multi-byte sequences by chance.
    if mostly_utf8(bytes) {
        return (String::from_utf8_lossy(bytes), UTF_8, Source::Utf8);
    }
    let declared = [
        (
            http_charset.and_then(|c| Encoding::for_label(c.trim().as_bytes())),
            Source::Http,
        ),
        (meta_charset(bytes), Source::Meta),
    ];
    let mut single_byte_label = None;
    for (enc, source) in declared {
        // UTF-16 labels on a page without a BOM are treated as UTF-8 (HTML standard),
        // and UTF-8 is already ruled out above.
        let Some(enc) = enc.map(Encoding::output_encoding) else {
            continue;
        };
        if enc == UTF_8 {
            continue;
        }
        if enc.is_single_byte() {
            single_byte_label.get_or_insert((enc, source));
            continue;
        }
        if let Some(text) = enc.decode_without_bom_handling_and_without_replacement(bytes) {
            return (text, enc, source);
        }
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    // The first 64 KiB say as much about the encoding as the whole page, at a
    // fraction of the cost on large pages.
    let sample = &bytes[..bytes.len().min(64 * 1024)];
    detector.feed(sample, sample.len() == bytes.len());
    let tld = url.and_then(tld);
    let guess = detector.guess(
        tld.as_deref().map(str::as_bytes),
        chardetng::Utf8Detection::Deny,
    );
    if let Some((enc, source)) = single_byte_label
        && (guess.is_single_byte() || guess == UTF_8)
    {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return (text, enc, source);
    }
    if let Some((enc, source)) = single_byte_label
        && guess
            .decode_without_bom_handling_and_without_replacement(bytes)
            .is_none()
    {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return (text, enc, source);
    }
    let (text, _) = guess.decode_without_bom_handling(bytes);
    (text, guess, Source::Detected)
}

/// True when at least 95% of the non-ASCII sequences are valid UTF-8, with at least
/// a handful of them.
fn mostly_utf8(bytes: &[u8]) -> bool {
    let mut valid = 0usize;
    let mut invalid = 0usize;
    for chunk in bytes.utf8_chunks() {
        valid += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        if !chunk.invalid().is_empty() {
            invalid += 1;
        }
    }
    valid >= 8 && invalid * 20 <= valid
}

/// The top-level domain of a URL, lower-cased, as chardetng wants it (`cn`, `jp`...).
fn tld(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?.trim_end_matches('.');
    let tld = host.rsplit('.').next()?;
    (!tld.is_empty() && tld.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| tld.to_ascii_lowercase())
}

/// Finds `<meta charset=X>` or `<meta http-equiv=Content-Type content="...; charset=X">`
/// in the first bytes of the page.
pub fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(META_SCAN)];
    let mut pos = 0;
    while let Some(i) = find_ci(&head[pos..], b"<meta") {
        let start = pos + i + 5;
        let end = head[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(head.len(), |e| start + e);
        let tag = &head[start..end];
        if let Some(c) = find_ci(tag, b"charset") {
            let mut v = &tag[c + 7..];
            v = trim_start(v);
            if let Some(rest) = v.strip_prefix(b"=") {
                v = trim_start(rest);
                let v = v
                    .strip_prefix(b"\"")
                    .or_else(|| v.strip_prefix(b"'"))
                    .unwrap_or(v);
                let len = v
                    .iter()
                    .position(|&b| matches!(b, b'"' | b'\'' | b';' | b' ' | b'/' | b'>'))
                    .unwrap_or(v.len());
                if let Some(enc) = Encoding::for_label(&v[..len]) {
                    return Some(enc);
                }
            }
        }
        pos = end;
    }
    None
}

fn trim_start(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if !first.is_ascii_whitespace() {
            break;
        }
        v = rest;
    }
    v
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(enc: &'static Encoding, meta: Option<&str>, body: &str) -> Vec<u8> {
        let head = meta.map_or(String::new(), |m| format!("<meta charset=\"{m}\">"));
        let html = format!("<html><head>{head}</head><body><p>{body}</p></body></html>");
        enc.encode(&html).0.into_owned()
    }

    const ZH: &str = "中华人民共和国是一个位于东亚的国家，首都是北京。这是一段用于测试字符集检测的中文文本，内容足够长。";
    const JA: &str =
        "日本語のテキストです。これは文字コードの判定を試すための文章で、十分な長さがあります。";
    const ZH_TW: &str =
        "這是一段繁體中文的文字，用來測試字元編碼的偵測是否正確，內容應該足夠長了。";

    #[test]
    fn declared_cjk_encodings_decode() {
        for (enc, label, text) in [
            (encoding_rs::GBK, "gbk", ZH),
            (encoding_rs::SHIFT_JIS, "shift_jis", JA),
            (encoding_rs::BIG5, "big5", ZH_TW),
        ] {
            let bytes = page(enc, Some(label), text);
            let (out, used, source) = decode(&bytes, None, None);
            assert!(out.contains(text), "{label}");
            assert_eq!(used, enc);
            assert_eq!(source, Source::Meta);
            let (out, _, source) = decode(&bytes, Some(label), None);
            assert!(out.contains(text));
            assert_eq!(source, Source::Http);
        }
    }

    #[test]
    fn undeclared_pages_are_detected() {
        for (enc, text, url) in [
            (encoding_rs::GBK, ZH, "http://example.cn/a"),
            (encoding_rs::SHIFT_JIS, JA, "http://example.jp/"),
            (encoding_rs::BIG5, ZH_TW, "http://example.tw/x"),
            (
                encoding_rs::WINDOWS_1252,
                "Café crème brûlée à la française, déjà vu, naïve façade.",
                "http://example.fr",
            ),
        ] {
            let bytes = page(enc, None, text);
            let (out, used, source) = decode(&bytes, None, Some(url));
            assert_eq!(source, Source::Detected, "{}", enc.name());
            assert_eq!(used, enc);
            assert!(out.contains(text));
        }
    }

    #[test]
    fn wrong_declarations_lose_to_the_bytes() {
        // Declared UTF-8 in HTTP, really GBK: UTF-8 fails, the meta is right.
        let bytes = page(encoding_rs::GBK, Some("gb2312"), ZH);
        let (out, _, source) = decode(&bytes, Some("utf-8"), None);
        assert!(out.contains(ZH));
        assert_eq!(source, Source::Meta);
        // Declared iso-8859-1, really UTF-8.
        let bytes = page(UTF_8, Some("iso-8859-1"), ZH);
        let (out, _, source) = decode(&bytes, Some("iso-8859-1"), None);
        assert!(out.contains(ZH));
        assert_eq!(source, Source::Utf8);
        // Declared windows-1252, really GBK with no other declaration.
        let bytes = page(encoding_rs::GBK, None, ZH);
        let (out, used, _) = decode(&bytes, Some("windows-1252"), None);
        assert_eq!(used, encoding_rs::GBK);
        assert!(out.contains(ZH));
    }

    #[test]
    fn utf8_with_a_cut_character_stays_utf8() {
        let mut bytes = page(UTF_8, Some("utf-8"), ZH);
        bytes.extend_from_slice(&[0xe4, 0xb8]);
        let (out, used, source) = decode(&bytes, None, None);
        assert_eq!((used, source), (UTF_8, Source::Utf8));
        assert!(out.contains(ZH));
    }

    #[test]
    fn bom_wins() {
        let mut bytes = vec![0xef, 0xbb, 0xbf];
        bytes.extend_from_slice("<p>é</p>".as_bytes());
        let (out, used, source) = decode(&bytes, Some("windows-1252"), None);
        assert_eq!((&*out, used, source), ("<p>é</p>", UTF_8, Source::Bom));
        let mut bytes = vec![0xff, 0xfe];
        for u in "<p>中</p>".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let (out, _, _) = decode(&bytes, None, None);
        assert_eq!(out, "<p>中</p>");
    }

    #[test]
    fn meta_forms() {
        let http_equiv = b"<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=Shift_JIS'>";
        assert_eq!(meta_charset(http_equiv), Some(encoding_rs::SHIFT_JIS));
        assert_eq!(
            meta_charset(b"<meta charset=euc-kr/>"),
            Some(encoding_rs::EUC_KR)
        );
        assert_eq!(meta_charset(b"<meta name=x><p>charset=gbk"), None);
        assert_eq!(
            tld("https://user@www.Example.CN:8080/x").as_deref(),
            Some("cn")
        );
    }
}
