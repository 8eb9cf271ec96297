//! JSONL and Parquet inputs and outputs over real data: the sample in tests/data/jsonl
//! read plain, gzip and zstd; JSONL and Parquet sink outputs read back as the same
//! documents.

use crate::common;
use common::write_file;

use corpus::sink::{OutputFormat, create};
use corpus::source::jsonl::{JsonlOptions, JsonlSource};
use corpus::source::parquet::{ParquetOptions, ParquetSource};
use corpus::source::{Source, SourceStats};
use corpus::stages::Document;
use std::io::Write;
use std::path::{Path, PathBuf};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jsonl/movie_reviews-sample.jsonl")
}

fn drain(mut src: Box<dyn Source>) -> (Vec<Document>, SourceStats) {
    let mut docs = Vec::new();
    while let Some(d) = src.next_doc().unwrap() {
        docs.push(d);
    }
    (docs, src.stats().clone())
}

fn read_jsonl(path: &Path) -> (Vec<Document>, SourceStats) {
    drain(Box::new(
        JsonlSource::open(path, &JsonlOptions::default(), "fallback").unwrap(),
    ))
}

#[test]
fn jsonl_real_sample_reads_every_line() {
    let (docs, stats) = read_jsonl(&sample());
    assert_eq!(docs.len(), 30);
    assert_eq!(stats.records, 30);
    assert_eq!(stats.docs, 30);
    assert!(stats.corrupt.is_empty());
    assert_eq!(stats.bytes, std::fs::metadata(sample()).unwrap().len());

    // Cross-check against a plain serde_json parse of each line.
    let text = std::fs::read_to_string(sample()).unwrap();
    for (line, doc) in text.lines().zip(&docs) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(doc.id, v["id"].as_str().unwrap());
        assert_eq!(doc.text, v["text"].as_str().unwrap());
        assert_eq!(doc.source, "nltk-movie_reviews");
        assert_eq!(doc.meta.lang.as_deref(), Some("en"));
        assert_eq!(doc.meta.extra["label"], v["meta"]["label"]);
        assert_eq!(doc.meta.extra["file"], v["meta"]["file"]);
        assert_eq!(doc.meta.extra.len(), 2);
    }
    assert_eq!(docs[0].id, "movie-review-neg-cv000_29416");
    assert!(
        docs[0]
            .text
            .starts_with("plot : two teen couples go to a church party")
    );
    assert_eq!(docs[15].id, "movie-review-pos-cv000_29590");
    assert_eq!(docs[15].text.len(), 4225);
    assert_eq!(docs.iter().map(|d| d.text.len()).sum::<usize>(), 112_699);
}

#[test]
fn jsonl_gzip_and_zstd_read_like_plain() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(sample()).unwrap();
    let gz = dir.path().join("reviews.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&plain).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let zst = write_file(
        dir.path(),
        "reviews.jsonl.zst",
        zstd::encode_all(&plain[..], 3).unwrap(),
    );

    let (want, _) = read_jsonl(&sample());
    for path in [&gz, &zst] {
        let (docs, stats) = read_jsonl(path);
        assert_eq!(docs, want, "{}", path.display());
        assert_eq!(stats.bytes, std::fs::metadata(path).unwrap().len());
        assert!(stats.bytes < plain.len() as u64);
    }
}

fn rich_docs() -> Vec<Document> {
    let (mut docs, _) = read_jsonl(&sample());
    for (i, d) in docs.iter_mut().enumerate() {
        if i % 3 == 0 {
            d.meta.url = Some(format!("http://example.com/{i}"));
            d.meta.warc_record_id = Some(format!("urn:uuid:{i}"));
            d.meta.warc_filename = Some("CC-MAIN-x.warc.gz".into());
            d.meta.crawl = Some("CC-MAIN-2020-34".into());
            d.meta.offset = Some(u64::MAX - i as u64);
            d.meta.date = Some("2020-08-08T16:54:17Z".into());
            d.meta.http_status = Some(200);
            d.meta.content_type = Some("text/html".into());
            d.meta.charset = Some("utf-8".into());
            d.meta.title = Some("títle \"q\"".into());
            d.meta.lang_score = Some(0.875);
            d.meta.content_hash = Some("00ff".into());
            d.scores.quality = Some(0.25);
            d.scores.safety = Some(0.5);
            d.scores.flags = vec!["length/too_short".into(), "x/y".into()];
        }
        if i % 5 == 0 {
            d.meta.extra.clear();
        }
        if i == 1 {
            d.meta
                .extra
                .insert("nested".into(), serde_json::json!({"a": [1, null, "x"]}));
        }
    }
    docs
}

fn write_docs(format: OutputFormat, path: &Path, docs: &[Document]) {
    let mut sink = create(format, path, false, 6).unwrap();
    for d in docs {
        sink.write(d, None).unwrap();
    }
    sink.finish().unwrap();
}

#[test]
fn jsonl_sink_output_reads_back_as_the_same_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = rich_docs();
    let out = dir.path().join("out.jsonl.gz");
    write_docs(OutputFormat::Jsonl, &out, &docs);
    let (back, stats) = read_jsonl(&out);
    assert_eq!(stats.docs, docs.len() as u64);
    assert_eq!(back, docs);
}

#[test]
fn parquet_sink_output_reads_back_as_the_same_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = rich_docs();
    let out = dir.path().join("out.parquet");
    write_docs(OutputFormat::Parquet, &out, &docs);
    let options = ParquetOptions {
        batch_rows: 7,
        ..Default::default()
    };
    let (back, stats) = drain(Box::new(
        ParquetSource::open(&out, &options, "fallback").unwrap(),
    ));
    assert_eq!(stats.docs, docs.len() as u64);
    assert_eq!(stats.records, docs.len() as u64);
    assert_eq!(stats.bytes, std::fs::metadata(&out).unwrap().len());
    assert_eq!(back, docs);
}

/// Throughput of the JSONL source on a file named by `CORPUS_BENCH_JSONL`, read
/// `CORPUS_BENCH_REPEAT` times (default 1). Run with
/// `cargo test --release --test io_formats -- --ignored --nocapture jsonl_throughput`.
#[test]
#[ignore = "benchmark; needs CORPUS_BENCH_JSONL"]
fn jsonl_throughput() {
    let Ok(path) = std::env::var("CORPUS_BENCH_JSONL") else {
        panic!("set CORPUS_BENCH_JSONL to a JSONL file");
    };
    let repeat: u32 = std::env::var("CORPUS_BENCH_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let start = std::time::Instant::now();
    let (mut docs, mut text_bytes, mut stored) = (0u64, 0u64, 0u64);
    for _ in 0..repeat {
        let mut src = JsonlSource::open(Path::new(&path), &JsonlOptions::default(), "b").unwrap();
        while let Some(d) = src.next_doc().unwrap() {
            text_bytes += d.text.len() as u64;
        }
        docs += src.stats().docs;
        stored += src.stats().bytes;
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(docs > 0);
    println!(
        "{path}: {docs} docs in {secs:.3}s: {:.0} docs/s, {:.1} MB/s of text, {:.1} MB/s as stored",
        docs as f64 / secs,
        text_bytes as f64 / secs / 1e6,
        stored as f64 / secs / 1e6
    );
}

#[test]
fn config_dispatch_opens_jsonl_and_parquet_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let docs = rich_docs();
    write_docs(
        OutputFormat::Parquet,
        &dir.path().join("b-part.parquet"),
        &docs[..10],
    );
    write_docs(
        OutputFormat::Jsonl,
        &dir.path().join("a-part.jsonl.gz"),
        &docs[10..],
    );
    std::fs::write(
        dir.path().join("c-bare.jsonl"),
        "{\"body\": \"x\"}\n{\"body\": \"y\", \"text\": \"t\"}\n",
    )
    .unwrap();
    let config: corpus::source::InputConfig = toml::from_str(
        r#"
paths = ["*-*"]
[jsonl]
text_field = "body"
[parquet]
batch_rows = 4
"#,
    )
    .unwrap();
    let files = corpus::source::expand_inputs(&config, dir.path()).unwrap();
    assert_eq!(files.len(), 3);

    // With text_field = "body", the sink's JSONL lines have no text: all corrupt.
    let mut src = corpus::source::open(&files[0], &config).unwrap();
    let err = src.next_doc().unwrap_err();
    assert!(
        err.is_recoverable() && err.to_string().contains("`body`"),
        "{err}"
    );

    let (bare, _) = drain(corpus::source::open(&files[2], &config).unwrap());
    assert_eq!(bare.len(), 2);
    assert_eq!(
        (bare[0].id.as_str(), bare[0].source.as_str()),
        ("c-bare/1", "c")
    );
    assert_eq!(bare[1].meta.extra["text"], "t");

    let (mut back, _) = drain(corpus::source::open(&files[1], &config).unwrap());
    // Opened as input file 1: every document carries its position in it.
    for (i, d) in back.iter_mut().enumerate() {
        assert_eq!(
            d.origin.take(),
            Some(corpus_stages::Origin {
                file: 1,
                record: i as u32
            })
        );
    }
    assert_eq!(back, docs[..10]);
}

#[test]
fn dropped_documents_keep_their_drop_info_when_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let docs = rich_docs();
    let info = corpus::sink::DropInfo {
        stage: "length".into(),
        reason: "too_short".into(),
        detail: Some("characters 1 < 5".into()),
    };
    for format in [OutputFormat::Parquet, OutputFormat::Jsonl] {
        let path = dir.path().join(format!("dropped.{}", format.extension()));
        let mut sink = create(format, &path, true, 6).unwrap();
        sink.write(&docs[0], Some(&info)).unwrap();
        sink.write(&docs[1], None).unwrap();
        sink.finish().unwrap();
        let (back, _) = match format {
            OutputFormat::Parquet => drain(Box::new(
                ParquetSource::open(&path, &ParquetOptions::default(), "x").unwrap(),
            )),
            OutputFormat::Jsonl => read_jsonl(&path),
        };
        assert_eq!(back.len(), 2);
        let mut first = back[0].clone();
        match format {
            OutputFormat::Parquet => {
                assert_eq!(first.meta.extra.remove("drop_stage").unwrap(), "length");
                assert_eq!(first.meta.extra.remove("drop_reason").unwrap(), "too_short");
                let detail = first.meta.extra.remove("drop_detail").unwrap();
                assert_eq!(detail, "characters 1 < 5");
            }
            OutputFormat::Jsonl => {
                let drop = first.meta.extra.remove("drop").unwrap();
                assert_eq!(drop["reason"], "too_short");
                assert_eq!(drop["detail"], "characters 1 < 5");
            }
        }
        assert_eq!(first, docs[0], "{format:?}");
        assert_eq!(back[1], docs[1], "{format:?}");
    }
}
