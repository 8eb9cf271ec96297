use super::*;
use std::io::Cursor;

fn record(kind: &str, extra: &str, block: &[u8]) -> Vec<u8> {
    [
        format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\n{extra}Content-Length: {}\r\n\r\n",
            block.len()
        )
        .as_bytes(),
        block,
        b"\r\n\r\n",
    ]
    .concat()
}

fn read_all(bytes: Vec<u8>) -> (Vec<(String, Vec<u8>)>, Vec<WarcError>) {
    let mut r = WarcReader::new(Cursor::new(bytes)).unwrap();
    let (mut ok, mut errs) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        match r.next_record() {
            Ok(Some(rec)) => ok.push((rec.header.type_name(), rec.body.to_vec())),
            Ok(None) => return (ok, errs),
            Err(e) => errs.push(e),
        }
    }
    panic!("no end");
}

#[test]
fn header_fields_are_case_insensitive_trimmed_and_folded() {
    let bytes = record(
        "Response",
        "warc-target-uri:   <http://a.example/>  \r\nX-Folded: one\r\n  two\r\nno colon line\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nhi",
    );
    let mut r = WarcReader::new(Cursor::new(bytes)).unwrap();
    let h = r.next_header().unwrap().unwrap();
    assert_eq!(h.version(), b"WARC/1.1");
    assert_eq!(h.record_type(), RecordType::Response);
    assert_eq!(h.type_name(), "response");
    assert_eq!(h.get("WARC-TARGET-URI"), Some(&b"<http://a.example/>"[..]));
    assert_eq!(h.get_str("x-folded").as_deref(), Some("one\r\n  two"));
    assert_eq!(h.content_length(), 21);
    assert_eq!(h.fields().count(), 4);
    assert_eq!(strip_brackets(" <urn:uuid:x> "), "urn:uuid:x");
    assert_eq!(strip_brackets("http://a/"), "http://a/");
}

#[test]
fn blank_lines_between_records_and_lf_only_trailers_are_tolerated() {
    let mut bytes = record("request", "", b"GET / HTTP/1.1\r\n\r\n");
    bytes.extend(b"\r\n\r\n");
    let mut lf = record("metadata", "", b"a: b");
    lf.truncate(lf.len() - 4);
    lf.extend(b"\n\n");
    bytes.extend(lf);
    bytes.extend(record("resource", "", b""));
    let (ok, errs) = read_all(bytes);
    assert!(errs.is_empty(), "{errs:?}");
    let types: Vec<&str> = ok.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["request", "metadata", "resource"]);
    assert_eq!(ok[1].1, b"a: b");
}

#[test]
fn missing_or_invalid_content_length_is_a_bad_header_and_reading_goes_on() {
    let mut bytes =
        b"WARC/1.0\r\nWARC-Type: request\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\n\r\n".to_vec();
    bytes.extend(b"WARC/1.0\r\nWARC-Type: request\r\nContent-Length: 12x\r\n\r\nxx\r\n\r\n");
    bytes.extend(record("metadata", "", b"k: v"));
    let (ok, errs) = read_all(bytes);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].0, "metadata");
    assert_eq!(errs.len(), 2);
    for (i, e) in errs.iter().enumerate() {
        let WarcError::Corrupt { kind, record, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(*kind, CorruptKind::BadHeader);
        assert_eq!(*record, i as u64);
    }
    assert_eq!(ok.len() + errs.len(), 3);
}

#[test]
fn header_block_without_end_is_bounded() {
    let mut bytes = b"WARC/1.0\r\nWARC-Type: request\r\n".to_vec();
    bytes.extend(
        std::iter::repeat_n(b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaa\r\n".to_vec(), 5000).flatten(),
    );
    bytes.extend(b"\r\n");
    bytes.extend(record("metadata", "", b"k: v"));
    let (ok, errs) = read_all(bytes);
    assert_eq!(errs.len(), 1);
    assert!(matches!(
        errs[0],
        WarcError::Corrupt {
            kind: CorruptKind::BadHeader,
            ..
        }
    ));
    assert_eq!(ok.len(), 1);
}

#[test]
fn file_ending_inside_a_plain_record_is_truncated() {
    let mut bytes = record("metadata", "", b"k: v");
    let second = record("response", "", &[b'x'; 1000]);
    bytes.extend(&second[..second.len() - 500]);
    let (ok, errs) = read_all(bytes);
    assert_eq!(ok.len(), 1);
    assert_eq!(errs.len(), 1);
    assert!(
        matches!(
            errs[0],
            WarcError::Corrupt {
                kind: CorruptKind::Truncated,
                record: 1,
                ..
            }
        ),
        "{:?}",
        errs[0]
    );
}

#[test]
fn crawl_ids_come_from_cc_path_components_only() {
    let p = |s: &str| crawl_from_path(Path::new(s));
    assert_eq!(
        p(
            "crawl-data/CC-MAIN-2020-34/segments/1/warc/CC-MAIN-20200808165417-20200808195417-00395.warc.gz"
        ),
        Some("CC-MAIN-2020-34".to_string())
    );
    assert_eq!(
        p("x/CC-MAIN-20200808165417-20200808195417-00395.warc.gz"),
        None
    );
    assert_eq!(
        p("CC-MAIN-2024-22-part.warc.gz"),
        Some("CC-MAIN-2024-22".to_string())
    );
    assert_eq!(p("dolma-sample-0000.warc.gz"), None);
}
