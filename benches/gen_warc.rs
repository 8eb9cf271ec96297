//! Builds a Common-Crawl-like WARC file for the read benchmark: the real HTML pages of
//! the trafilatura evaluation set wrapped into request/response/metadata triples, one
//! gzip member per record, repeated with distinct record ids and URLs until the file
//! reaches the target size. Deterministic: the same inputs give the same bytes.
//!
//! Usage: gen-warc [--out PATH] [--size-mb N] [--html-dir DIR]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const DEFAULT_HTML: &str = "/work/shared/data/extraction/trafilatura-eval";

fn main() -> anyhow::Result<()> {
    let mut out = PathBuf::from("target/bench-data/bench.warc.gz");
    let mut size_mb: u64 = 100;
    let mut html_dir = PathBuf::from(DEFAULT_HTML);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--out" => out = val()?.into(),
            "--size-mb" => size_mb = val()?.parse()?,
            "--html-dir" => html_dir = val()?.into(),
            _ => anyhow::bail!("usage: gen-warc [--out PATH] [--size-mb N] [--html-dir DIR]"),
        }
    }
    let pages = load_pages(&html_dir)?;
    anyhow::ensure!(!pages.is_empty(), "no pages under {}", html_dir.display());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let target = size_mb * 1_000_000;
    let tmp = out.with_extension("tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut written = 0u64;
    let mut n = 0u64;
    let put =
        |record: &[u8], file: &mut std::io::BufWriter<std::fs::File>| -> anyhow::Result<u64> {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(record)?;
            let gz = enc.finish()?;
            file.write_all(&gz)?;
            Ok(gz.len() as u64)
        };
    let info = b"software: corpus gen-warc\r\nisPartOf: CC-MAIN-2099-01\r\noperator: benchmark\r\n";
    written += put(
        &record(
            "warcinfo",
            &uuid(0),
            None,
            "application/warc-fields",
            info,
            "",
        ),
        &mut file,
    )?;
    let mut round = 0u64;
    'outer: loop {
        for (url, html) in &pages {
            n += 1;
            let url = format!(
                "{}{}r={round}",
                url.replace(' ', "%20"),
                if url.contains('?') { '&' } else { '?' }
            );
            let req = format!(
                "GET /{n} HTTP/1.1\r\nHost: example\r\nUser-Agent: CCBot/2.0\r\nAccept: text/html\r\n\r\n"
            );
            let resp_id = uuid(3 * n);
            written += put(
                &record(
                    "request",
                    &uuid(3 * n - 1),
                    Some(&url),
                    "application/http; msgtype=request",
                    req.as_bytes(),
                    "",
                ),
                &mut file,
            )?;
            let mut block = format!(
                "HTTP/1.1 200 OK\r\nDate: Sat, 08 Aug 2020 17:27:41 GMT\r\nServer: Apache\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
                html.len()
            )
            .into_bytes();
            block.extend_from_slice(html);
            written += put(
                &record(
                    "response",
                    &resp_id,
                    Some(&url),
                    "application/http; msgtype=response",
                    &block,
                    "WARC-Identified-Payload-Type: text/html\r\n",
                ),
                &mut file,
            )?;
            let meta = format!("fetchTimeMs: {}\r\ncharset-detected: UTF-8\r\n", n % 997);
            written += put(
                &record(
                    "metadata",
                    &uuid(3 * n + 1),
                    Some(&url),
                    "application/warc-fields",
                    meta.as_bytes(),
                    &format!("WARC-Concurrent-To: <{resp_id}>\r\n"),
                ),
                &mut file,
            )?;
            if written >= target {
                break 'outer;
            }
        }
        round += 1;
    }
    file.flush()?;
    drop(file);
    std::fs::rename(&tmp, &out)?;
    println!(
        "{}: {} bytes, {} pages, {} records",
        out.display(),
        written,
        n,
        3 * n + 1
    );
    Ok(())
}

fn uuid(n: u64) -> String {
    format!("urn:uuid:00000000-0000-4000-8000-{n:012x}")
}

fn record(
    kind: &str,
    id: &str,
    url: Option<&str>,
    content_type: &str,
    block: &[u8],
    extra: &str,
) -> Vec<u8> {
    let mut r = format!(
        "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Date: 2020-08-08T17:27:41Z\r\nWARC-Record-ID: <{id}>\r\nContent-Length: {}\r\nContent-Type: {content_type}\r\n",
        block.len()
    );
    if let Some(u) = url {
        r.push_str(&format!("WARC-Target-URI: {u}\r\n"));
    }
    r.push_str(extra);
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(block);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

/// (url, html bytes) of every page, in the order of the annotations file.
fn load_pages(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(dir.join("annotations.jsonl.gz"))?)
        .read_to_string(&mut text)?;
    let mut pages = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let (Some(url), Some(html)) = (v["url"].as_str(), v["html"].as_str()) else {
            continue;
        };
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join(html))?)
            .read_to_end(&mut bytes)?;
        pages.push((url.to_string(), bytes));
    }
    Ok(pages)
}
