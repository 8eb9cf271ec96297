//! Exact dedup benchmark: documents per second and bytes of memory per document for the
//! hash-set and Bloom-filter modes, and the Bloom filter's measured false-positive rate
//! against the configured one. Synthetic keys (the issue allows them here): short
//! distinct texts, a fixed fraction repeated.
//!
//! cargo bench --bench exact_dedup -- [--docs N] [--fp-rate P]

use corpus::stages::exact_dedup::{Config, Mode, build};
use corpus::stages::{AnyStage, Document, StageCx, Verdict};
use std::time::Instant;

const BATCH: usize = 10_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The i-th synthetic text: distinct for distinct i, also under the dedup key (which
/// folds digits, so the number is spelled in letters).
fn text(i: u64, out: &mut String) {
    out.clear();
    out.push_str("synthetic document ");
    let mut n = i;
    loop {
        out.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.push_str(" with some more words to hash like a short web page would have");
}

/// Runs `docs` documents numbered from `first` through the stage, every 10th repeating
/// an earlier one when `repeats`; returns (seconds, kept).
fn run(stage: &AnyStage, docs: u64, first: u64, repeats: bool) -> (f64, u64) {
    let mut kept = 0;
    let mut batch: Vec<Document> = Vec::with_capacity(BATCH);
    let mut verdicts = Vec::with_capacity(BATCH);
    let mut cx = StageCx::default();
    let mut scratch = String::new();
    let started = Instant::now();
    let mut i = 0;
    while i < docs {
        batch.clear();
        for _ in 0..BATCH.min((docs - i) as usize) {
            let n = first + i;
            // Every 10th document repeats one from earlier in the run.
            let key = if repeats && i % 10 == 9 {
                first + i / 2
            } else {
                n
            };
            text(key, &mut scratch);
            batch.push(Document::new(n.to_string(), "bench", scratch.as_str()));
            i += 1;
        }
        verdicts.clear();
        verdicts.resize(batch.len(), Verdict::Keep);
        stage
            .run(&mut batch, &mut verdicts, &mut cx)
            .expect("prepare");
        stage
            .run_ordered(&mut batch, &mut verdicts, &mut cx)
            .expect("ordered");
        kept += verdicts.iter().filter(|v| **v == Verdict::Keep).count() as u64;
        // As at a shard boundary: the new hashes go to the checkpoint file, so memory is
        // the set or filter itself.
        let _ = stage.checkpoint();
    }
    (started.elapsed().as_secs_f64(), kept)
}

fn main() {
    let mut docs: u64 = 10_000_000;
    let mut fp_rate = 1e-5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--docs" => docs = args.next().and_then(|v| v.parse().ok()).expect("--docs N"),
            "--fp-rate" => {
                fp_rate = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--fp-rate P")
            }
            _ => {}
        }
    }
    println!("exact_dedup: {docs} documents (10% repeats), 2 modes");
    println!(
        "{:<8} {:>10} {:>12} {:>14} {:>14} {:>16}",
        "mode", "seconds", "docs/s", "bytes/doc", "kept", "fp measured"
    );
    for mode in [Mode::Exact, Mode::Bloom] {
        let before = rss_bytes();
        let config = Config {
            mode,
            expected_docs: docs,
            false_positive_rate: fp_rate,
            ..Default::default()
        };
        let stage = AnyStage::Ordered(build(&config).expect("config"));
        let (secs, kept) = run(&stage, docs, 0, true);
        let used = rss_bytes().saturating_sub(before);
        // False positives: fresh keys never seen; any drop is a false positive.
        let probes = (docs / 10).max(100_000);
        let (_, fresh_kept) = run(&stage, probes, 1 << 40, false);
        let fp = (probes - fresh_kept) as f64 / probes as f64;
        println!(
            "{:<8} {:>10.2} {:>12.0} {:>14.1} {:>14} {:>16.2e}",
            format!("{mode:?}").to_lowercase(),
            secs,
            docs as f64 / secs,
            used as f64 / kept as f64,
            kept,
            fp
        );
        if mode == Mode::Bloom {
            println!("bloom configured fp rate: {fp_rate:.2e} at {docs} expected documents");
        }
        drop(stage);
    }
}
