//! WARC input against real samples and against damaged copies of them.

use crate::common;
use common::{testing::assert_mentions, write_file};

use corpus::source::warc::{WarcOptions, WarcReader, WarcSource};
use corpus::source::{Source, SourceError, SourceStats};
use corpus::stages::Document;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const CC: &str = "CC-MAIN-20200808165417-20200808195417-00395.sample.warc.gz";
const DOLMA: &str = "dolma-sample-0000.warc.gz";
const WHIRL: &str = "cc-main-2024-22-whirlwind.warc.gz";
const WET: &str = "cc-main-2024-22-whirlwind.warc.wet.gz";

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/warc")
        .join(name)
}

/// The gzip members of a sample, split with flate2 (independently of the reader).
fn members(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(sample(name)).unwrap();
    let mut rest: &[u8] = &bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let before = rest.len();
        let mut dec = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut dec, &mut std::io::sink()).unwrap();
        rest = dec.into_inner();
        out.push(bytes[bytes.len() - before..bytes.len() - rest.len()].to_vec());
    }
    out
}

fn gunzip(member: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(member)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// The uncompressed records of a sample (one per member).
fn records(name: &str) -> Vec<Vec<u8>> {
    members(name).iter().map(|m| gunzip(m)).collect()
}

fn record_type(record: &[u8]) -> String {
    warc_field(record, "WARC-Type")
}

/// A field of a record's WARC header (empty when it has none).
fn warc_field(record: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(&record[..record.len().min(4000)]).into_owned();
    let prefix = format!("{name}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Index of the `n`-th response record.
fn nth_response(recs: &[Vec<u8>], n: usize) -> usize {
    recs.iter()
        .enumerate()
        .filter(|(_, r)| record_type(r) == "response")
        .nth(n)
        .unwrap()
        .0
}

/// Replaces the first `from` in a record's bytes by `to`.
fn replace(record: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let i = record
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in record");
    [&record[..i], to, &record[i + from.len()..]].concat()
}

/// A record rebuilt around a new block, with a matching Content-Length.
fn with_block(record: &[u8], f: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let end = record.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let block = &record[end..record.len() - 4];
    let new_block = f(block);
    let head: Vec<Vec<u8>> = record[..end]
        .split(|&b| b == b'\n')
        .map(|l| {
            if l.starts_with(b"Content-Length:") {
                format!("Content-Length: {}\r", new_block.len()).into_bytes()
            } else {
                l.to_vec()
            }
        })
        .collect();
    [&head.join(&b'\n')[..], &new_block, b"\r\n\r\n"].concat()
}

struct Run {
    docs: Vec<Document>,
    errors: Vec<SourceError>,
    stats: SourceStats,
}

fn run_file(path: &Path, options: &WarcOptions) -> Run {
    let mut src = WarcSource::open(path, options, "web").unwrap();
    let mut run = Run {
        docs: Vec::new(),
        errors: Vec::new(),
        stats: SourceStats::default(),
    };
    // Bounded: a reader that loops forever fails here instead of hanging.
    for _ in 0..100_000 {
        match src.next_doc() {
            Ok(Some(d)) => run.docs.push(d),
            Ok(None) => {
                run.stats = src.stats().clone();
                return run;
            }
            Err(e) => {
                assert!(e.is_recoverable(), "{e}");
                run.errors.push(e);
            }
        }
    }
    panic!("{}: reader does not end", path.display());
}

fn run_bytes(name: &str, bytes: &[u8]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), name, bytes);
    run_file(&path, &WarcOptions::default())
}

fn urls(docs: &[Document]) -> Vec<String> {
    docs.iter().map(|d| d.meta.url.clone().unwrap()).collect()
}

fn corrupt_total(stats: &SourceStats) -> u64 {
    stats.corrupt.values().sum()
}

#[test]
fn cc_sample_reads_clean_with_expected_counts_and_meta() {
    let path = sample(CC);
    let run = run_file(&path, &WarcOptions::default());
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let s = &run.stats;
    assert_eq!(s.records, 50);
    assert_eq!(s.docs, 16);
    assert_eq!(run.docs.len(), 16);
    assert!(s.corrupt.is_empty());
    assert_eq!(s.skipped.get("warcinfo"), Some(&1));
    assert_eq!(s.skipped.get("request"), Some(&17));
    assert_eq!(s.skipped.get("metadata"), Some(&16));
    assert_eq!(s.bytes, std::fs::metadata(&path).unwrap().len());

    let d = &run.docs[1];
    assert_eq!(d.meta.url.as_deref(), Some("http://01spb.ru/company/"));
    assert_eq!(d.meta.http_status, Some(200));
    assert_eq!(d.meta.charset.as_deref(), Some("windows-1251"));
    assert_eq!(d.meta.content_type.as_deref(), Some("text/html"));
    assert_eq!(d.meta.crawl.as_deref(), Some("CC-MAIN-2020-34"));
    assert_eq!(
        d.meta.warc_filename.as_deref(),
        Some("CC-MAIN-20200808165417-20200808195417-00395.warc.gz")
    );
    assert_eq!(d.id, d.meta.warc_record_id.clone().unwrap());
    assert!(d.id.starts_with("urn:uuid:"), "{}", d.id);
    assert!(d.meta.date.as_deref().unwrap().starts_with("2020-08-0"));
    assert!(d.text.is_empty());
    let raw = d.raw.as_ref().unwrap();
    assert!(!raw.starts_with(b"HTTP/"));
    assert!(
        String::from_utf8_lossy(raw)
            .to_lowercase()
            .contains("<html")
    );

    // The offset is where the record's own gzip member starts.
    let bytes = std::fs::read(&path).unwrap();
    let off = d.meta.offset.unwrap() as usize;
    let mut dec = flate2::bufread::GzDecoder::new(&bytes[off..]);
    let mut rec = Vec::new();
    dec.read_to_end(&mut rec).unwrap();
    let rec = String::from_utf8_lossy(&rec);
    assert!(
        rec.starts_with("WARC/1.0\r\nWARC-Type: response"),
        "{rec:.80}"
    );
    assert!(rec.contains(&d.id));
    // The first page declares no charset.
    assert_eq!(
        run.docs[0].meta.url.as_deref(),
        Some("http://003338.cn/l41/481397.html")
    );
    assert_eq!(run.docs[0].meta.charset, None);
}

#[test]
fn other_samples_read_clean() {
    let dolma = run_file(&sample(DOLMA), &WarcOptions::default());
    assert!(dolma.errors.is_empty());
    assert_eq!(dolma.stats.records, 48);
    assert_eq!(dolma.stats.docs, 22);
    assert_eq!(dolma.stats.skipped.get("resource"), Some(&2));
    assert_eq!(dolma.stats.skipped.get("request"), Some(&22));
    assert!(dolma.docs.iter().all(|d| {
        let u = d.meta.url.as_deref().unwrap();
        u.starts_with("https://") && !u.ends_with('>')
    }));
    assert_eq!(
        dolma.docs[0].meta.warc_filename.as_deref(),
        Some("sample-0000.warc.gz")
    );
    assert_eq!(dolma.docs[0].meta.crawl, None);
    // This wget capture stores the chunked body as sent: it must come out dechunked.
    let weld = dolma
        .docs
        .iter()
        .find(|d| {
            d.meta.url.as_deref() == Some("https://www.cs.washington.edu/people/faculty/weld")
        })
        .unwrap();
    let raw = weld.raw.as_ref().unwrap();
    let head = String::from_utf8_lossy(&raw[..200.min(raw.len())]);
    assert!(head.trim_start().starts_with('<'), "{head}");
    assert!(String::from_utf8_lossy(raw).trim_end().ends_with("</html>"));

    let whirl = run_file(&sample(WHIRL), &WarcOptions::default());
    assert!(whirl.errors.is_empty());
    assert_eq!(whirl.stats.records, 4);
    assert_eq!(whirl.docs.len(), 1);
    let d = &whirl.docs[0];
    assert_eq!(
        d.meta.url.as_deref(),
        Some("https://an.wikipedia.org/wiki/Escopete")
    );
    assert_eq!(d.meta.charset.as_deref(), Some("utf-8"));
    assert_eq!(d.raw.as_ref().unwrap().len(), 72848); // the HTTP Content-Length

    let wet = run_file(&sample(WET), &WarcOptions::default());
    assert!(wet.errors.is_empty());
    assert_eq!(wet.stats.records, 2);
    let d = &wet.docs[0];
    assert!(d.raw.is_none());
    assert!(d.text.contains("Escopete"));
    assert_eq!(d.text.len(), 4456);
    assert_eq!(d.meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(d.meta.crawl.as_deref(), Some("CC-MAIN-2024-22"));
    // The WET text is text: `extract` (first in the default config) keeps it as it is,
    // every line break included, instead of parsing it as HTML.
    use corpus::stages::Stage;
    let mut doc = d.clone();
    let lines = doc.text.matches('\n').count();
    assert!(lines > 100, "{lines}");
    let stage = corpus::stages::extract::build(&Default::default()).unwrap();
    let mut cx = corpus::stages::StageCx::default();
    assert_eq!(
        stage.process(&mut doc, &mut cx).unwrap(),
        corpus::stages::Verdict::Keep
    );
    assert_eq!(doc.text, d.text);
    assert_eq!(cx.take_counters()["not_html"], 1);
}

#[test]
fn low_level_reader_yields_every_record_with_its_offset() {
    let mut r = WarcReader::open(&sample(CC)).unwrap();
    let ms = members(CC);
    let mut off = 0u64;
    let mut n = 0;
    while let Some(rec) = r.next_record().unwrap() {
        assert_eq!(rec.header.offset(), off);
        assert_eq!(rec.header.number(), n);
        assert_eq!(rec.body.len() as u64, rec.header.content_length());
        off += ms[n as usize].len() as u64;
        n += 1;
    }
    assert_eq!(n, 50);
}

#[test]
fn plain_and_single_member_gzip_read_like_per_record_gzip() {
    let clean = run_file(&sample(CC), &WarcOptions::default());
    let plain: Vec<u8> = records(CC).concat();
    for (name, bytes) in [("p.warc", plain.clone()), ("one.warc.gz", gzip(&plain))] {
        let run = run_bytes(name, &bytes);
        assert!(run.errors.is_empty(), "{name}: {:?}", run.errors);
        assert_eq!(run.stats.records, 50, "{name}");
        assert_eq!(urls(&run.docs), urls(&clean.docs), "{name}");
        for (a, b) in run.docs.iter().zip(&clean.docs) {
            assert_eq!(a.raw, b.raw);
        }
        assert_eq!(run.stats.bytes, bytes.len() as u64);
    }
    // Plain offsets are the records' byte offsets.
    let run = run_bytes("p.warc", &plain);
    let off = run.docs[3].meta.offset.unwrap() as usize;
    assert!(plain[off..].starts_with(b"WARC/1.0\r\nWARC-Type: response"));
}

#[test]
fn empty_file_gives_no_docs_and_missing_file_names_the_path() {
    let run = run_bytes("empty.warc.gz", b"");
    assert!(run.docs.is_empty() && run.errors.is_empty());
    assert_eq!(run.stats, SourceStats::default());

    let missing = Path::new("/nonexistent/dir/x.warc.gz");
    let err = WarcSource::open(missing, &WarcOptions::default(), "web")
        .err()
        .unwrap();
    assert!(matches!(err, SourceError::Open { .. }));
    assert!(
        err.to_string().contains("/nonexistent/dir/x.warc.gz"),
        "{err}"
    );
}

/// Runs damaged per-record gzip members and checks one corrupt record of `kind`, the
/// expected docs, and that the error names file, record and offset.
fn check_damaged(name: &str, bytes: &[u8], kind: &str, expect_urls: &[String]) -> Run {
    let run = run_bytes(name, bytes);
    assert_eq!(
        run.stats.corrupt.get(kind),
        Some(&1),
        "{name}: {:?}",
        run.stats
    );
    assert_eq!(corrupt_total(&run.stats), 1, "{name}: {:?}", run.stats);
    assert_eq!(run.errors.len(), 1, "{name}");
    let msg = run.errors[0].to_string();
    assert_mentions(&msg, &[name, "record ", "at byte "]);
    assert_eq!(urls(&run.docs), expect_urls, "{name}");
    run
}

#[test]
fn truncated_gzip_member_mid_file_and_at_end() {
    let ms = members(CC);
    let recs: Vec<Vec<u8>> = ms.iter().map(|m| gunzip(m)).collect();
    let clean = urls(&run_file(&sample(CC), &WarcOptions::default()).docs);
    let k = nth_response(&recs, 3);
    let mut bytes = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        bytes.extend_from_slice(if i == k { &m[..m.len() / 2] } else { m });
    }
    let mut expect = clean.clone();
    expect.remove(3);
    let run = run_bytes("mid.warc.gz", &bytes);
    assert_eq!(corrupt_total(&run.stats), 1, "{:?}", run.stats);
    assert_eq!(urls(&run.docs), expect);
    let SourceError::Corrupt { record, offset, .. } = &run.errors[0] else {
        panic!()
    };
    assert_eq!(*record, k as u64);
    assert_eq!(*offset, ms[..k].iter().map(|m| m.len() as u64).sum::<u64>());

    // Cut inside the last response's member: the file ends mid-record.
    let k = nth_response(&recs, 15);
    let mut bytes: Vec<u8> = ms[..k].concat();
    bytes.extend_from_slice(&ms[k][..ms[k].len() / 3]);
    check_damaged("end.warc.gz", &bytes, "truncated", &clean[..15]);
}

#[test]
fn garbage_between_records_plain_and_gzip() {
    let ms = members(CC);
    let recs = records(CC);
    let clean = urls(&run_file(&sample(CC), &WarcOptions::default()).docs);
    let mut gz = ms[..7].concat();
    gz.extend_from_slice(b"\x00\x01garbage bytes\x1f\x8b not a member\r\n");
    gz.extend(ms[7..].concat());
    let run = check_damaged("garbage.warc.gz", &gz, "garbage", &clean);
    assert_eq!(run.stats.records, 50);

    let mut plain = recs[..7].concat();
    plain.extend_from_slice(b"some junk line\r\nWARC/0.9 not a record\r\n\r\n");
    plain.extend(recs[7..].concat());
    let run = check_damaged("garbage.warc", &plain, "garbage", &clean);
    assert_eq!(run.stats.records, 50);

    // Junk inside a member, after a record.
    let mut gz = ms[..7].concat();
    gz.extend(gzip(&[&recs[7][..], b"trailing junk"].concat()));
    gz.extend(ms[8..].concat());
    check_damaged("junk-in-member.warc.gz", &gz, "garbage", &clean);
}

#[test]
fn content_length_too_long_or_too_short() {
    let recs = records(CC);
    let clean = urls(&run_file(&sample(CC), &WarcOptions::default()).docs);
    let k = nth_response(&recs, 2);
    let cl = recs[k]
        .windows(16)
        .position(|w| w == b"Content-Length: ")
        .unwrap();
    let line_end = cl + recs[k][cl..].iter().position(|&b| b == b'\r').unwrap();
    let n: u64 = std::str::from_utf8(&recs[k][cl + 16..line_end])
        .unwrap()
        .parse()
        .unwrap();
    let mut expect = clean.clone();
    expect.remove(2);
    for (label, new) in [
        ("long", n + 100),
        ("longer", n + 50_000),
        ("short", n - 100),
    ] {
        let bad = replace(
            &recs[k],
            format!("Content-Length: {n}\r\n").as_bytes(),
            format!("Content-Length: {new}\r\n").as_bytes(),
        );
        let mut all = recs.clone();
        all[k] = bad;
        let plain = all.concat();
        check_damaged(&format!("{label}.warc"), &plain, "content_length", &expect);
        let gz: Vec<u8> = all.iter().flat_map(|r| gzip(r)).collect();
        check_damaged(&format!("{label}.warc.gz"), &gz, "content_length", &expect);
    }
}

#[test]
fn invalid_utf8_in_headers_and_bodies_is_decoded_lossily() {
    let recs = records(CC);
    let k = nth_response(&recs, 0);
    let mut all = recs.clone();
    // WARC header: a bad byte in the URI and an extra field; HTTP header: a bad value.
    let r = replace(
        &all[k],
        b"WARC-Target-URI: http://003338.cn/",
        b"X-Junk: \xff\xfe\xfd\r\nWARC-Target-URI: http://003338.cn/\xff",
    );
    let r = with_block(&r, |b| {
        replace(
            b,
            b"Content-Type: text/html",
            b"X-Bad: \xc3\x28\xa0\r\nContent-Type: text/html; charset=\xffx",
        )
    });
    all[k] = r;
    let run = run_bytes(
        "utf8.warc.gz",
        &all.iter().flat_map(|r| gzip(r)).collect::<Vec<u8>>(),
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.docs.len(), 16);
    let d = &run.docs[0];
    assert!(
        d.meta
            .url
            .as_deref()
            .unwrap()
            .starts_with("http://003338.cn/\u{fffd}")
    );
    assert_eq!(d.meta.charset.as_deref(), Some("\u{fffd}x"));

    // WET text with invalid UTF-8.
    let wet = records(WET);
    let bad = with_block(&wet[1], |b| [b, &b"\xff\xfe tail"[..]].concat());
    let run = run_bytes("bad.wet.gz", &[gzip(&wet[0]), gzip(&bad)].concat());
    assert!(run.errors.is_empty());
    assert!(run.docs[0].text.ends_with("\u{fffd}\u{fffd} tail"));
}

#[test]
fn skips_by_status_mime_and_size_and_counts_reasons() {
    let recs = records(CC);
    let mut all = recs.clone();
    let k0 = nth_response(&recs, 0);
    let k1 = nth_response(&recs, 1);
    all[k0] = with_block(&all[k0], |b| {
        replace(b, b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found")
    });
    all[k1] = with_block(&all[k1], |b| {
        replace(b, b"HTTP/1.1 200 OK", b"HTTP/1.1 301 Moved")
    });
    let bytes: Vec<u8> = all.iter().flat_map(|r| gzip(r)).collect();
    let run = run_bytes("status.warc.gz", &bytes);
    assert_eq!(run.stats.skipped.get("status_404"), Some(&1));
    assert_eq!(run.stats.skipped.get("status_301"), Some(&1));
    assert_eq!(run.docs.len(), 14);

    let only_xhtml = WarcOptions {
        mime_types: vec!["application/xhtml+xml".into()],
        ..Default::default()
    };
    let run = run_file(&sample(CC), &only_xhtml);
    assert_eq!(run.stats.skipped.get("non_html"), Some(&16));
    assert!(run.docs.is_empty());

    let small = WarcOptions {
        max_record_bytes: 50_000,
        ..Default::default()
    };
    let run = run_file(&sample(CC), &small);
    let big = run.stats.skipped.get("too_large").copied().unwrap_or(0);
    assert!(big > 0 && big < 16, "{:?}", run.stats);
    assert_eq!(run.docs.len() as u64 + big, 16);
    assert!(
        run.docs
            .iter()
            .all(|d| d.raw.as_ref().unwrap().len() < 50_000)
    );
}

#[test]
fn options_parse_with_defaults_and_reject_unknown_fields() {
    let o: WarcOptions = toml::from_str("max_record_bytes = 1000").unwrap();
    assert_eq!(o.max_record_bytes, 1000);
    assert_eq!(o.mime_types, WarcOptions::default().mime_types);
    assert!(toml::from_str::<WarcOptions>("max_bytes = 1").is_err());
}

#[test]
fn damage_anywhere_never_panics_or_hangs() {
    let gz = std::fs::read(sample(CC)).unwrap();
    let plain = records(CC).concat();
    for (name, bytes) in [("f.warc.gz", &gz), ("f.warc", &plain)] {
        let clean = run_bytes(name, bytes);
        let step = bytes.len() / 97;
        let mut total_docs = 0;
        for i in 0..97 {
            let mut b = bytes.clone();
            let at = i * step + 13;
            for x in &mut b[at..at + 3] {
                *x ^= 0x5a;
            }
            let run = run_bytes(name, &b);
            // At most a record or two lost per damaged spot.
            assert!(
                run.docs.len() + 2 >= clean.docs.len(),
                "{name} at {at}: {:?}",
                run.stats
            );
            total_docs += run.docs.len();
        }
        assert!(total_docs > 0);
    }
}

/// A ClueWeb09-style copy of a record: version line `WARC/0.18`, and a response's HTTP
/// head with LF-only line ends and a false `Content-Encoding: gzip` (ClueWeb stores the
/// payload decoded but kept the header).
fn clueweb_record(record: &[u8]) -> Vec<u8> {
    let r = replace(record, b"WARC/1.0\r\n", b"WARC/0.18\r\n");
    if record_type(&r) != "response" {
        return r;
    }
    with_block(&r, |block| {
        let end = block.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = replace(&block[..end], b"\r\n", b"\r\nContent-Encoding: gzip\r\n");
        let lf_only: Vec<u8> = head.into_iter().filter(|&b| b != b'\r').collect();
        [&lf_only[..], &block[end..]].concat()
    })
}

#[test]
fn clueweb09_warc_0_18_with_lf_only_http_heads_reads_like_the_original() {
    let clean = run_file(&sample(CC), &WarcOptions::default());
    let recs: Vec<Vec<u8>> = records(CC).iter().map(|r| clueweb_record(r)).collect();
    let k = nth_response(&recs, 0);
    assert!(recs[k].starts_with(b"WARC/0.18\r\n"));
    let block = String::from_utf8_lossy(&recs[k][..recs[k].len().min(3000)]).into_owned();
    assert!(
        block.contains("\nContent-Encoding: gzip\n"),
        "{block:.1500}"
    );
    // ClueWeb09 ships one gzip member per file; per-record members and plain read alike.
    let plain = recs.concat();
    let per_record: Vec<u8> = recs.iter().flat_map(|r| gzip(r)).collect();
    for (name, bytes) in [
        ("clueweb.warc.gz", gzip(&plain)),
        ("clueweb-members.warc.gz", per_record),
        ("clueweb.warc", plain),
    ] {
        let run = run_bytes(name, &bytes);
        assert!(run.errors.is_empty(), "{name}: {:?}", run.errors);
        assert_eq!(run.stats.records, 50, "{name}");
        assert_eq!(run.docs.len(), clean.docs.len(), "{name}");
        for (a, b) in run.docs.iter().zip(&clean.docs) {
            assert_eq!((&a.id, &a.meta.url), (&b.id, &b.meta.url), "{name}");
            assert_eq!(a.raw, b.raw, "{name}: {:?}", a.meta.url);
            assert_eq!(a.meta.charset, b.meta.charset, "{name}: {:?}", a.meta.url);
            assert_eq!(a.meta.content_type, b.meta.content_type, "{name}");
            let (mut a, mut b) = (a.clone(), b.clone());
            a.decode_raw();
            b.decode_raw();
            assert!(!a.text.is_empty());
            assert_eq!(a.text, b.text, "{name}: {:?}", a.meta.url);
        }
    }
}

/// `member` with bytes in the middle of its deflate data flipped: its header still
/// decodes, its body fails (bad data or CRC).
fn flipped(member: &[u8]) -> Vec<u8> {
    let mut m = member.to_vec();
    let mid = m.len() / 2;
    for x in &mut m[mid..mid + 8] {
        *x ^= 0x5a;
    }
    m
}

#[test]
fn damage_just_before_the_last_record_loses_only_the_damaged_one() {
    let ms = members(CC);
    let recs: Vec<Vec<u8>> = ms.iter().map(|m| gunzip(m)).collect();
    let clean = urls(&run_file(&sample(CC), &WarcOptions::default()).docs);

    // Good response, damaged member, good response: the last one must come through.
    let (r0, r1, r2) = (
        nth_response(&recs, 0),
        nth_response(&recs, 1),
        nth_response(&recs, 2),
    );
    let cut = &ms[r1][..ms[r1].len() / 2];
    for (label, damaged) in [("flipped", flipped(&ms[r1])), ("cut", cut.to_vec())] {
        let bytes = [&ms[r0][..], &damaged, &ms[r2]].concat();
        let name = format!("three-{label}.warc.gz");
        let run = run_bytes(&name, &bytes);
        assert_eq!(corrupt_total(&run.stats), 1, "{name}: {:?}", run.stats);
        assert_eq!(
            urls(&run.docs),
            [clean[0].clone(), clean[2].clone()],
            "{name}"
        );
        // The last record's offset is where its member starts in this file.
        let last = run.docs[1].meta.offset.unwrap() as usize;
        assert_eq!(last, ms[r0].len() + damaged.len(), "{name}");
    }

    // The whole sample with junk inserted before its last member, or its last but one
    // member damaged: every other record is read.
    let n = ms.len();
    let mut junk = ms[..n - 1].concat();
    junk.extend_from_slice(b"\x00\x01junk between members\r\n");
    junk.extend_from_slice(&ms[n - 1]);
    let run = check_damaged("junk-last.warc.gz", &junk, "garbage", &clean);
    assert_eq!(intact(&run.stats), 50);
    let mut bad = ms[..n - 2].concat();
    bad.extend(flipped(&ms[n - 2]));
    bad.extend_from_slice(&ms[n - 1]);
    let run = run_bytes("flipped-last.warc.gz", &bad);
    assert_eq!(corrupt_total(&run.stats), 1, "{:?}", run.stats);
    assert_eq!(intact(&run.stats), 49, "{:?}", run.stats);
    let mut expect = clean.clone();
    if record_type(&recs[n - 2]) == "response" {
        expect.pop();
    }
    assert_eq!(urls(&run.docs), expect);
}

/// Records read whole: made documents or skipped on purpose.
fn intact(stats: &SourceStats) -> u64 {
    stats.docs + stats.skipped.values().sum::<u64>()
}

/// An HTML page saved under a WARC's name (what a failed download leaves): not gzip,
/// not WARC.
fn html_page() -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/html/017a3f641b32bfb9.html.gz");
    gunzip(&std::fs::read(path).unwrap())
}

/// The sample's records other than responses, one gzip member each.
fn without_responses(name: &str) -> Vec<u8> {
    records(name)
        .iter()
        .filter(|r| record_type(r) != "response")
        .flat_map(|r| gzip(r))
        .collect()
}

#[test]
fn a_file_nothing_could_be_read_from_is_an_error_but_an_empty_one_is_not() {
    use corpus::source::{Format, InputConfig, InputFile, open, read_all};
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str, bytes: &[u8]| {
        let path = write_file(dir.path(), name, bytes);
        let file = InputFile {
            index: 0,
            path,
            format: Format::Warc,
        };
        let mut src = open(&file, &InputConfig::default()).unwrap();
        let (docs, errors) = read_all(src.as_mut());
        // Finished either way.
        assert!(matches!(src.next_doc(), Ok(None)), "{name}");
        (docs, errors)
    };
    // Not the format its name says, or every record damaged: one error naming the file.
    let every_member_damaged: Vec<u8> = members(WHIRL).iter().flat_map(|m| flipped(m)).collect();
    for (name, bytes) in [
        ("page.warc.gz", html_page()),
        ("damaged.warc.gz", every_member_damaged),
    ] {
        let (docs, errors) = read(name, &bytes);
        assert!(docs.is_empty(), "{name}");
        let last = errors.last().unwrap();
        assert!(
            matches!(last, SourceError::Unreadable { .. }),
            "{name}: {last}"
        );
        assert!(!last.is_recoverable());
        assert_mentions(&last.to_string(), &[name, "nothing could be read"]);
    }
    // Legitimately empty: nothing to read, or only records skipped on purpose.
    for (name, bytes) in [
        ("empty.warc.gz", Vec::new()),
        ("empty-gzip.warc.gz", gzip(b"")),
        ("no-responses.warc.gz", without_responses(CC)),
    ] {
        let (docs, errors) = read(name, &bytes);
        assert!(docs.is_empty() && errors.is_empty(), "{name}: {errors:?}");
    }
    // One intact record is enough: the damage is counted, the file is read.
    let mut partly = members(CC)[..1].concat();
    partly.extend(html_page());
    let (_, errors) = read("partly.warc.gz", &partly);
    assert!(errors.iter().all(SourceError::is_recoverable), "{errors:?}");
}

#[test]
fn corpus_run_fails_the_shard_nothing_could_be_read_from_and_completes_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(sample(CC), input.join("a-good.warc.gz")).unwrap();
    write_file(&input, "b-page.warc.gz", html_page());
    write_file(&input, "c-empty.warc.gz", b"");
    write_file(&input, "d-no-responses.warc.gz", without_responses(CC));
    let config = write_file(
        dir.path(),
        "pipeline.toml",
        "[input]\npaths = [\"in\"]\n[output]\ndir = \"out\"\n[[stages]]\nkind = \"extract\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(["run", config.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_mentions(
        &err,
        &[
            "b-page.warc.gz",
            "nothing could be read",
            "1 shard(s) failed",
        ],
    );
    assert!(
        !err.contains("c-empty") && !err.contains("d-no-responses"),
        "{err}"
    );
    let done = dir.path().join("out/done");
    for (shard, complete) in [(0, true), (1, false), (2, true), (3, true)] {
        let marker = done.join(format!("part-{shard:05}.json"));
        assert_eq!(marker.exists(), complete, "shard {shard}");
    }
}

/// A payload really encoded with its `Content-Encoding` (gzip, deflate) comes out
/// decoded, as it was before encoding (brotli: see the unit test of `decode_content`);
/// a header the bytes belie is ignored; a coding there is no decoder for (`compress`)
/// skips the record, counted under its name, and so does a damaged encoding. The other
/// records are untouched.
#[test]
fn content_encoded_payloads_are_decoded() {
    let recs = records(CC);
    let plain = run_file(&sample(CC), &WarcOptions::default());
    let url_of = |record: &[u8]| warc_field(record, "WARC-Target-URI");
    let kept = urls(&plain.docs);
    // Five responses that make documents.
    let picked: Vec<usize> = (0..recs.len())
        .filter(|&i| record_type(&recs[i]) == "response" && kept.contains(&url_of(&recs[i])))
        .take(5)
        .collect();
    assert_eq!(picked.len(), 5);
    let encode = |record: &[u8], coding: &str, f: &dyn Fn(&[u8]) -> Vec<u8>| -> Vec<u8> {
        with_block(record, |block| {
            let end = block.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let header = format!("\r\nContent-Encoding: {coding}\r\n\r\n");
            [&block[..end], header.as_bytes(), &f(&block[end + 4..])].concat()
        })
    };
    let zlib = |data: &[u8]| {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    };
    let cut_gzip = |data: &[u8]| {
        let g = gzip(data);
        g[..g.len() / 2].to_vec()
    };
    let mut out = recs.clone();
    out[picked[0]] = encode(&recs[picked[0]], "gzip", &gzip);
    out[picked[1]] = encode(&recs[picked[1]], "deflate", &zlib);
    out[picked[2]] = encode(&recs[picked[2]], "x-gzip", &|b| b.to_vec());
    out[picked[3]] = encode(&recs[picked[3]], "compress", &|b| b.to_vec());
    out[picked[4]] = encode(&recs[picked[4]], "gzip", &cut_gzip);
    let bytes: Vec<u8> = out.iter().flat_map(|r| gzip(r)).collect();
    let run = run_bytes("encoded.warc.gz", &bytes);
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let lost = [url_of(&recs[picked[3]]), url_of(&recs[picked[4]])];
    let expected: Vec<&Document> = plain
        .docs
        .iter()
        .filter(|d| !lost.contains(d.meta.url.as_ref().unwrap()))
        .collect();
    assert_eq!(run.docs.len(), expected.len());
    for (got, want) in run.docs.iter().zip(expected) {
        assert_eq!(got.meta.url, want.meta.url);
        assert_eq!(got.raw, want.raw, "{:?}", got.meta.url);
    }
    assert_eq!(run.stats.skipped.get("content_encoding_compress"), Some(&1));
    assert_eq!(run.stats.skipped.get("bad_content_encoding"), Some(&1));
}
