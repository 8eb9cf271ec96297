//! Candidate search for in-memory MinHash dedup: gaoya's `MinHashIndex` against the
//! sort-based band buckets `corpus dedup --fuzzy` uses, on the same signatures.
//!
//! Both find the documents that share a band with another and join them (no
//! verification), so they must reach the same clusters; the bench checks that and
//! reports time and memory growth. gaoya: every signature inserted, then each document
//! queried (its candidates are every document in any of its 14 buckets). corpus: per
//! band, (band hash, document) pairs sorted, runs of equal hashes joined.
//!
//! `cargo bench --bench minhash_index -- [DOCS] [COPIES]`: DOCS documents from
//! ../shared/data/corpus (default 100000; CORPUS_DIR overrides) plus COPIES exact copies
//! of one document (default 0), to show how a large duplicate cluster behaves.

use corpus_stages::Document;
use corpus_stages::minhash::cluster::{Clusterer, Lookup};
use corpus_stages::minhash::{Config, Keep, Signer, Verify, band_hash};
use gaoya::minhash::{MinHashIndex, VecContainer};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

struct NoLookup;
impl Lookup for NoLookup {
    type Error = ();
    fn hashes(&mut self, _: u64, _: &mut Vec<u32>) -> Result<(), ()> {
        Err(())
    }
    fn shingles(&mut self, _: u64, _: &mut Vec<u64>) -> Result<(), ()> {
        Err(())
    }
    fn rank(&mut self, _: u64) -> Result<(u32, f32), ()> {
        Ok((0, 0.0))
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let copies: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let dir = std::env::var("CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/corpus"));
    let mut texts = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    names.sort();
    'files: for p in names {
        let (mut r, _) = corpus::io::open_decompressed(&p).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut r, &mut s).unwrap();
        for line in s.lines() {
            if texts.len() >= n {
                break 'files;
            }
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            texts.push(v["text"].as_str().unwrap_or("").to_string());
        }
    }
    let dup = texts
        .iter()
        .find(|t| t.len() > 500)
        .cloned()
        .unwrap_or_default();
    texts.extend(std::iter::repeat_n(dup, copies));
    let config = Config {
        verify: Verify::Off,
        ..Config::default()
    };
    let signer = Signer::new(&config);
    let sigs: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| signer.sign(&Document::new("", "", t.as_str())).hashes)
        .filter(|h| !h.is_empty())
        .collect();
    println!(
        "{} signatures ({} documents, {} copies of one)",
        sigs.len(),
        texts.len(),
        copies
    );

    // corpus: sorted band buckets.
    let base = rss_mb();
    let t = Instant::now();
    let mut clusterer = Clusterer::new(&config);
    let mut pairs: Vec<(u64, u64)> = Vec::with_capacity(sigs.len());
    for band in 0..config.bands {
        pairs.clear();
        pairs.extend(
            sigs.iter()
                .enumerate()
                .map(|(i, s)| (band_hash(s, band, config.rows), i as u64)),
        );
        pairs.sort_unstable();
        for run in pairs.chunk_by(|a, b| a.0 == b.0) {
            if run.len() >= 2 {
                let members: Vec<u64> = run.iter().map(|p| p.1).collect();
                clusterer.add_bucket(&members, &mut NoLookup).unwrap();
            }
        }
    }
    let ours = clusterer.finish(Keep::First, &mut NoLookup).unwrap();
    let ours_secs = t.elapsed().as_secs_f64();
    let ours_mb = rss_mb() - base;
    drop(pairs);

    // gaoya: MinHashIndex, insert all, query each.
    let base = rss_mb();
    let t = Instant::now();
    let mut index: MinHashIndex<u32, u64, VecContainer<u64>> =
        MinHashIndex::new_index(config.bands, config.rows, 0.0);
    index.par_bulk_insert((0..sigs.len() as u64).collect(), sigs.clone());
    let insert_secs = t.elapsed().as_secs_f64();
    let mut uf = corpus_stages::minhash::cluster::UnionFind::default();
    let mut candidates = 0u64;
    for (i, s) in sigs.iter().enumerate() {
        for c in index.query_owned(s) {
            if c != i as u64 {
                candidates += 1;
                uf.union(c, i as u64);
            }
        }
    }
    let gaoya_secs = t.elapsed().as_secs_f64();
    let gaoya_mb = rss_mb() - base;
    let theirs = uf.members();
    let ours_members: Vec<(u64, u64)> = ours
        .entries
        .iter()
        .map(|d| (d.key.pack(), d.cluster.pack()))
        .collect();
    println!(
        "same clusters: {} ({} documents in clusters of 2+)",
        theirs == ours_members,
        ours_members.len()
    );
    println!("corpus sorted buckets: {ours_secs:.2} s, +{ours_mb:.0} MB resident");
    println!(
        "gaoya MinHashIndex:    {gaoya_secs:.2} s (insert {insert_secs:.2} s), +{gaoya_mb:.0} MB resident, {candidates} candidate hits"
    );
}
