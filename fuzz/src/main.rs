//! A mutation fuzzer that runs on the stable toolchain: no coverage guidance (cargo-fuzz
//! and libFuzzer need nightly for their instrumentation, afl.rs needs its own compiler
//! wrapper and setup), but a seeded, reproducible stream of mutated inputs — bit flips,
//! random bytes, insertions, deletions, duplicated runs, splices of two seeds,
//! truncations — from a seed corpus of real files, fed to one target for a fixed time.
//! A panic is a finding: the input is written to `fuzz/crashes/<target>/` and the run
//! goes on; an input that takes longer than `--slow-ms` is written to
//! `fuzz/slow/<target>/`.
//!
//! Usage: `cargo run --release -- TARGET SECONDS [SEED]`; targets: `warc` (the WARC
//! record reader and the WARC source over a file), `http` (the HTTP response head parser
//! and content decoding), `jsonl` (the JSONL source), `html` (the extract stage), `config`
//! (pipeline config parsing).

use corpus::source::Source;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The seeded generator of the mutations, so a run can be repeated.
type Rng = corpus::commands::pack::SplitMix64;

/// One to eight mutations of `input` (another seed may be spliced in).
fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.index(8) {
        let len = out.len();
        match rng.index(8) {
            0 if len > 0 => {
                let i = rng.index(len);
                out[i] ^= 1 << rng.index(8);
            }
            1 if len > 0 => {
                let i = rng.index(len);
                out[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.index(len + 1);
                let n = 1 + rng.index(16);
                let bytes: Vec<u8> = (0..n).map(|_| interesting(rng)).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.index(len);
                let n = 1 + rng.index((len - i).min(256));
                out.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.index(len);
                let n = 1 + rng.index((len - i).min(4096));
                let run = out[i..i + n].to_vec();
                let times = 1 + rng.index(64);
                let at = rng.index(out.len() + 1);
                out.splice(at..at, run.repeat(times));
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[rng.index(seeds.len())];
                let cut = rng.index(len + 1);
                let from = rng.index(other.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => out.truncate(rng.index(len)),
            _ => {
                let i = rng.index(len + 1);
                let token = TOKENS[rng.index(TOKENS.len())];
                out.splice(i..i, token.iter().copied());
            }
        }
        if out.len() > 4 << 20 {
            out.truncate(4 << 20);
        }
    }
    out
}

/// Bytes that matter to the formats.
fn interesting(rng: &mut Rng) -> u8 {
    const BYTES: &[u8] = b"\r\n\0\xff\x1f\x8b<>&\"':=;{}[],\\ 0123456789";
    if rng.index(2) == 0 {
        BYTES[rng.index(BYTES.len())]
    } else {
        rng.next_u64() as u8
    }
}

/// Pieces of the formats' syntax to insert.
const TOKENS: &[&[u8]] = &[
    b"WARC/1.0\r\n",
    b"WARC/0.18\r\n",
    b"Content-Length: 99999999999\r\n",
    b"Content-Length: -1\r\n",
    b"WARC-Type: response\r\n",
    b"WARC-Type: conversion\r\n",
    b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Encoding: gzip\r\n",
    b"Content-Type: text/html; charset=\"",
    b"ffffffff\r\n",
    b"<div>",
    b"</div>",
    b"<table><tr><td>",
    b"<script>",
    b"<![CDATA[",
    b"<!--",
    b"&#x110000;",
    b"{\"text\": ",
    b"\"\\ud800\"",
    b"[[stages]]\nkind = \"",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
];

/// Runs one input through a target.
type Target = fn(&[u8], &Path);

fn warc(input: &[u8], dir: &Path) {
    let mut reader = corpus::source::warc::WarcReader::new(std::io::Cursor::new(input)).unwrap();
    for _ in 0..100_000 {
        match reader.next_record() {
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => break,
        }
    }
    let path = dir.join("input.warc.gz");
    std::fs::write(&path, input).unwrap();
    if let Ok(mut src) = corpus::source::warc::WarcSource::open(&path, &Default::default(), "web") {
        drain(&mut src);
    }
}

fn http(input: &[u8], _: &Path) {
    if let Some(head) = corpus::source::warc::http::parse_response_head(input) {
        if let Some(coding) = head.content_encoding {
            let _ = corpus::source::warc::http::decode_content(
                coding,
                &input[head.body_start..],
                1 << 20,
            );
        }
        if let Some(ct) = head.content_type {
            let _ = corpus::source::warc::http::parse_content_type(ct);
        }
        let mut body = input[head.body_start..].to_vec();
        corpus::source::warc::http::dechunk_in_place(&mut body, 0);
    }
}

fn jsonl(input: &[u8], dir: &Path) {
    for name in ["input.jsonl", "input.jsonl.gz"] {
        let path = dir.join(name);
        std::fs::write(&path, input).unwrap();
        let file = corpus::source::InputFile {
            index: 0,
            path: path.clone(),
            format: corpus::source::Format::Jsonl,
        };
        if let Ok(mut src) = corpus::source::open(&file, &Default::default()) {
            drain(src.as_mut());
        }
    }
}

fn html(input: &[u8], _: &Path) {
    use corpus_stages::Stage;
    let stage = corpus_stages::extract::build(&Default::default()).unwrap();
    let mut doc = corpus_stages::Document::new("d", "web", "");
    doc.raw = Some(input.to_vec());
    let _ = stage.process(&mut doc, &mut Default::default());
    let mut text = corpus_stages::Document::new("t", "web", String::from_utf8_lossy(input));
    let _ = stage.process(&mut text, &mut Default::default());
}

fn config(input: &[u8], dir: &Path) {
    let text = String::from_utf8_lossy(input);
    let _ = corpus::config::PipelineConfig::from_toml(&text, Path::new("fuzz.toml"), dir, &[]);
}

fn drain(src: &mut dyn Source) {
    for _ in 0..1_000_000 {
        match src.next_doc() {
            Ok(Some(_)) => {}
            Err(e) if e.is_recoverable() => {}
            Ok(None) | Err(_) => break,
        }
    }
}

/// The seed corpus of a target: real files from tests/data (and configs/).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs: &[&str] = match target {
        "warc" => &["tests/data/warc"],
        "http" => &["tests/data/warc"],
        "jsonl" => &["tests/data/jsonl", "tests/data/benchmarks"],
        "html" => &["tests/data/html", "tests/data/extraction"],
        _ => &["configs"],
    };
    let mut out = Vec::new();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(d))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && !p.ends_with("SOURCE.md"))
            .collect();
        files.sort();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let bytes = match target {
                // The HTTP parser sees record blocks: take them out of the WARC's
                // first records (decompressed).
                "http" => http_blocks(&bytes),
                _ => vec![bytes],
            };
            out.extend(bytes.into_iter().map(|mut b| {
                b.truncate(256 << 10);
                b
            }));
        }
    }
    out
}

/// The HTTP blocks of a WARC's response records.
fn http_blocks(warc: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = corpus::source::warc::WarcReader::new(std::io::Cursor::new(warc)).unwrap();
    let mut out = Vec::new();
    while let Ok(Some(rec)) = reader.next_record() {
        if rec.body.starts_with(b"HTTP/") {
            out.push(rec.body.to_vec());
        }
        if out.len() >= 40 {
            break;
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(secs)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok()))
    else {
        eprintln!("usage: corpus-fuzz warc|http|jsonl|html|config SECONDS [SEED] [--slow-ms N]");
        std::process::exit(2);
    };
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let slow_ms: u64 = args
        .iter()
        .position(|a| a == "--slow-ms")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let target: Target = match name.as_str() {
        "warc" => warc,
        "http" => http,
        "jsonl" => jsonl,
        "html" => html,
        "config" => config,
        other => {
            eprintln!("unknown target {other}");
            std::process::exit(2);
        }
    };
    let seeds = seeds(name);
    assert!(!seeds.is_empty(), "no seeds for {name}");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crashes = here.join("crashes").join(name);
    let slow = here.join("slow").join(name);
    let dir = tempfile::tempdir().unwrap();
    // Panics are findings, reported once each by their message: the default hook would
    // print every one with a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = corpus::commands::pack::SplitMix64::new(seed);
    let (start, budget) = (Instant::now(), Duration::from_secs(secs));
    let (mut execs, mut found, mut slow_found) = (0u64, 0u64, 0u64);
    let mut messages = std::collections::BTreeSet::new();
    while start.elapsed() < budget {
        let base = &seeds[rng.index(seeds.len())];
        let input = if execs < seeds.len() as u64 {
            base.clone()
        } else {
            mutate(&mut rng, base, &seeds)
        };
        let t = Instant::now();
        let result = std::panic::catch_unwind(|| target(&input, dir.path()));
        let spent = t.elapsed();
        execs += 1;
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            found += 1;
            save(&crashes, &input);
            if messages.insert(message.clone()) {
                eprintln!("{name}: panic: {message}");
            }
        } else if spent > Duration::from_millis(slow_ms) {
            slow_found += 1;
            save(&slow, &input);
            eprintln!("{name}: slow input: {:.1} s", spent.as_secs_f64());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name}: {execs} executions in {secs:.0} s ({:.0}/s), {} seeds, seed {seed}: {found} panics ({} distinct), {slow_found} slow inputs",
        execs as f64 / secs,
        seeds.len(),
        messages.len()
    );
    if found > 0 {
        std::process::exit(1);
    }
}

/// Writes a finding under its hash.
fn save(dir: &Path, input: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let mut f = std::fs::File::create(dir.join(format!("{h:016x}"))).unwrap();
    f.write_all(input).unwrap();
}
