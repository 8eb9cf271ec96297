//! Decontamination scan speed per core: the `decontam` stage alone over documents held in
//! memory, timed by the thread's CPU clock (so other work on the machine does not count)
//! and by the wall clock; also the dedup key alone, the part of the scan shared with the
//! other dedup stages.
//!
//! cargo bench --bench decontam_scan -- --index FILE [--data DIR] [--runs N] [--policy drop|remove_span]
//!
//! The index is one written by `corpus decontam index` (benches/decontam.sh builds it from
//! ../shared/data/benchmarks); the documents are every `.jsonl.gz` file of DIR (default
//! ../shared/data/corpus), field `text`.

use corpus::stages::decontam::{Config, Decontam, Index, Policy};
use corpus::stages::normalize::dedup_key;
use corpus::stages::{Document, Stage, StageCx, Verdict};
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

/// CPU seconds used by this thread.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; the clock id is a constant of the platform.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let mut data = PathBuf::from("../shared/data/corpus");
    let mut index = None;
    let mut runs = 3;
    let mut policy = Policy::Drop;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = args.next().expect("--data DIR").into(),
            "--index" => index = Some(PathBuf::from(args.next().expect("--index FILE"))),
            "--runs" => runs = args.next().expect("--runs N").parse().expect("--runs N"),
            "--policy" => {
                policy = match args.next().as_deref() {
                    Some("drop") => Policy::Drop,
                    Some("remove_span" | "remove-span") => Policy::RemoveSpan,
                    other => panic!("--policy drop|remove_span, not {other:?}"),
                }
            }
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let index = index.expect("--index FILE (from `corpus decontam index`)");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap_or_else(|e| panic!("{}: {e}", data.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    let mut texts = Vec::new();
    for f in &files {
        let r = std::io::BufReader::new(flate2::read::GzDecoder::new(
            std::fs::File::open(f).expect("open"),
        ));
        for line in r.lines() {
            let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
            texts.push(v["text"].as_str().expect("text").to_string());
        }
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    let mb = bytes as f64 / 1e6;
    println!(
        "{} documents, {mb:.1} MB from {}; index {}",
        texts.len(),
        data.display(),
        index.display()
    );
    let t = Instant::now();
    let idx = Index::load(&index, None).expect("index");
    println!(
        "index: {} n-grams, n = {}, loaded in {:.2} s",
        idx.len(),
        idx.n(),
        t.elapsed().as_secs_f64()
    );
    let config = Config {
        n: idx.n(),
        max_examples_per_ngram: idx.max_examples_per_ngram(),
        policy,
        ..Config::default()
    };
    let stage = Decontam::new(idx, &config).expect("stage");

    let mut key = String::new();
    let mut best_key = f64::MAX;
    let mut best = (f64::MAX, f64::MAX);
    let mut flagged = 0;
    for _ in 0..runs {
        let c = thread_cpu();
        for text in &texts {
            dedup_key(text, &mut key);
            std::hint::black_box(&key);
        }
        best_key = best_key.min(thread_cpu() - c);

        let mut docs: Vec<Document> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| Document::new(i.to_string(), "bench", t.clone()))
            .collect();
        let mut cx = StageCx::default();
        flagged = 0;
        let (w, c) = (Instant::now(), thread_cpu());
        for doc in &mut docs {
            if !matches!(stage.process(doc, &mut cx).expect("process"), Verdict::Keep)
                || doc.meta.extra.contains_key("decontam")
            {
                flagged += 1;
            }
        }
        let (cpu, wall) = (thread_cpu() - c, w.elapsed().as_secs_f64());
        best = (best.0.min(cpu), best.1.min(wall));
    }
    println!("flagged documents: {flagged}");
    println!(
        "dedup key alone: {best_key:.3} CPU s, {:.1} MB/s per core",
        mb / best_key
    );
    println!(
        "decontam stage: {:.3} CPU s ({:.3} s wall), {:.0} docs/s, {:.1} MB/s per core",
        best.0,
        best.1,
        texts.len() as f64 / best.0,
        mb / best.0
    );
}
