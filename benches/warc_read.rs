//! WARC read throughput: the raw record reader (every record, full body) and
//! `WarcSource` (HTML documents) over one file. Prints one line per measurement:
//! `name records=N docs=N seconds=S input_bytes=B`, best of the runs.
//!
//! Usage: cargo bench --bench warc_read -- [PATH] [--runs N]

use corpus::source::Source;
use corpus::source::warc::{WarcOptions, WarcReader, WarcSource};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut path = PathBuf::from("target/bench-data/bench.warc.gz");
    let mut runs = 3;
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(a) = args.next() {
        if a == "--runs" {
            runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(3);
        } else {
            path = a.into();
        }
    }
    let input_bytes = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run benches/warc_read.sh)", path.display()))
        .len();

    let mut best = f64::MAX;
    let mut records = 0u64;
    let mut payload = 0u64;
    for _ in 0..runs {
        let t = Instant::now();
        let mut r = WarcReader::open(&path).expect("open");
        records = 0;
        payload = 0;
        while let Some(rec) = r.next_record().expect("clean input") {
            records += 1;
            payload += rec.body.len() as u64;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    report("corpus-reader", records, 0, best, input_bytes, payload);

    let mut best = f64::MAX;
    let mut docs = 0u64;
    let mut recs = 0u64;
    for _ in 0..runs {
        let t = Instant::now();
        let mut s = WarcSource::open(&path, &WarcOptions::default(), "web").expect("open");
        docs = 0;
        while let Some(d) = s.next_doc().expect("clean input") {
            docs += 1;
            std::hint::black_box(&d);
        }
        recs = s.stats().records;
        best = best.min(t.elapsed().as_secs_f64());
    }
    report("corpus-source", recs, docs, best, input_bytes, 0);
}

fn report(name: &str, records: u64, docs: u64, secs: f64, input: u64, payload: u64) {
    println!(
        "{name} records={records} docs={docs} seconds={secs:.4} input_bytes={input} payload_bytes={payload} records_per_s={:.0} mb_per_s={:.1}",
        records as f64 / secs,
        input as f64 / secs / 1e6
    );
}
