//! Accuracy of MinHash dedup on planted near-duplicates of real text.
//!
//! Takes documents from `../shared/data/corpus` (or `CORPUS_DIR`), English and Chinese,
//! and makes an edited copy of each with a random mix of controlled edits: token
//! insertions, deletions, substitutions, a boilerplate line added, two lines swapped.
//! The true Jaccard similarity of each pair is computed exactly on the same shingles
//! the dedup uses (dedup key, 5-token windows). Originals and copies go through
//! `corpus::fuzzy::in_memory` (the code behind `corpus dedup --fuzzy`); the bench
//! reports, per similarity bin, the share of pairs put in one cluster next to the LSH
//! candidate probability, recall at J >= 0.85 and >= 0.8, and precision: the share of
//! removed documents whose cluster holds a document they are truly similar to
//! (exact J >= 0.8; to the planted partner or to any other member).
//!
//! `cargo bench --bench minhash_accuracy [-- DOCS [EXTRA_ARGS]]`: DOCS originals (default
//! 4000); EXTRA `verify=0.8` verifies candidates by the signatures' estimate at that
//! threshold, `exact=0.8` by the exact Jaccard of the shingle sets.

use corpus::fuzzy;
use corpus_stages::minhash::{Config, DocKey, Signer, Verify, candidate_probability, files};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const BOILERPLATE: &str = "Share this article on Facebook Twitter and email. Subscribe to our newsletter for the latest updates. 分享到微信 关注我们";

/// Edits `text` at roughly `rate` of its tokens. CJK text is edited per character.
fn edit(text: &str, rate: f64, rng: &mut Rng, vocab: &[String]) -> String {
    let cjk = text
        .chars()
        .filter(|&c| corpus_stages::normalize::is_cjk_token_char(c))
        .count()
        * 2
        > text.chars().count();
    let mut lines: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            if cjk {
                l.chars().map(|c| c.to_string()).collect()
            } else {
                l.split_whitespace().map(str::to_string).collect()
            }
        })
        .collect();
    let total: usize = lines.iter().map(Vec::len).sum();
    let edits = ((total as f64) * rate).round() as usize;
    for _ in 0..edits {
        let li = rng.below(lines.len());
        let line = &mut lines[li];
        if line.is_empty() {
            continue;
        }
        let pos = rng.below(line.len());
        let word = if cjk {
            ["的", "了", "是", "在", "和", "有", "我", "他"][rng.below(8)].to_string()
        } else {
            vocab[rng.below(vocab.len())].clone()
        };
        match rng.below(3) {
            0 => line.insert(pos, word),
            1 => {
                line.remove(pos);
            }
            _ => line[pos] = word,
        }
    }
    if rng.below(4) == 0 {
        lines.push(BOILERPLATE.split(' ').map(str::to_string).collect());
    }
    if lines.len() >= 2 && rng.below(4) == 0 {
        let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
        lines.swap(a, b);
    }
    let sep = if cjk { "" } else { " " };
    lines
        .iter()
        .map(|l| l.join(sep))
        .collect::<Vec<_>>()
        .join("\n")
}

fn shingle_set(signer: &Signer, text: &str) -> HashSet<u64> {
    let (mut k, mut ids) = (String::new(), Vec::new());
    signer
        .shingles(text, &mut k, &mut ids)
        .into_iter()
        .collect()
}

fn jaccard(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(4000);
    // Default settings except verification, which the arguments choose (off by
    // default here, to show the raw LSH curve).
    let mut config = Config {
        verify: Verify::Off,
        ..Config::default()
    };
    for a in &args[1.min(args.len())..] {
        if let Some(t) = a.strip_prefix("verify=") {
            config.verify = Verify::Estimate;
            config.threshold = t.parse().expect("verify=THRESHOLD");
        }
        if let Some(t) = a.strip_prefix("exact=") {
            config.verify = Verify::Exact;
            config.threshold = t.parse().expect("exact=THRESHOLD");
        }
    }
    let corpus_dir = std::env::var("CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/corpus"));
    let mut originals = Vec::new();
    for (name, min_chars, share) in [
        ("en-news-reuters21578.jsonl.gz", 600, 0.3),
        ("en-reviews-movie_reviews.jsonl.gz", 600, 0.2),
        ("zh-wiki-cmrc2018.jsonl.gz", 200, 0.25),
        ("zh-mixed-fewclue.jsonl.gz", 150, 0.25),
    ] {
        let path = corpus_dir.join(name);
        let text = corpus::io::open_decompressed(&path)
            .map(|(mut r, _)| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut r, &mut s).unwrap();
                s
            })
            .unwrap_or_else(|e| panic!("{}: {e} (set CORPUS_DIR)", path.display()));
        let want = (n as f64 * share) as usize;
        let mut taken = 0;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let t = v["text"].as_str().unwrap_or("");
            if t.chars().count() >= min_chars && taken < want {
                originals.push(t.to_string());
                taken += 1;
            }
        }
    }
    let signer = Signer::new(&config);
    let vocab: Vec<String> = originals
        .iter()
        .take(200)
        .flat_map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let copies: Vec<String> = originals
        .iter()
        .map(|t| {
            // Edit rates spread the true similarity over roughly 0.3..1.
            let rate = rng.unit() * 0.12;
            edit(t, rate, &mut rng, &vocab)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, docs: &[String]| {
        let mut s = String::new();
        for (i, t) in docs.iter().enumerate() {
            s.push_str(&serde_json::json!({"id": format!("{name}-{i}"), "text": t}).to_string());
            s.push('\n');
        }
        std::fs::write(dir.path().join(format!("{name}.jsonl")), s).unwrap();
    };
    write("a-orig", &originals);
    write("b-copy", &copies);
    let (input, inputs) = fuzzy::input_files(&[dir.path().to_string_lossy().into_owned()]).unwrap();
    let work = dir.path().join("work");
    let (sum, cl) = fuzzy::in_memory(&inputs, &input, &config, &work, 2).unwrap();
    let mut cluster_of: HashMap<DocKey, DocKey> = HashMap::new();
    let mut members: HashMap<DocKey, Vec<DocKey>> = HashMap::new();
    let mut removed = Vec::new();
    for f in 0..2u32 {
        let path = files::names::decisions(&work, f);
        let (_, entries) =
            files::decode_decisions(&config, &std::fs::read(&path).unwrap(), &path).unwrap();
        for d in entries {
            cluster_of.insert(d.key, d.cluster);
            members.entry(d.cluster).or_default().push(d.key);
            if !d.survivor {
                removed.push(d.key);
            }
        }
    }
    let text_of = |k: DocKey| -> &str {
        if k.file == 0 {
            &originals[k.record as usize]
        } else {
            &copies[k.record as usize]
        }
    };
    // Pairs by true similarity.
    let mut bins = vec![(0usize, 0usize, 0.0f64); 20];
    let (mut pos85, mut hit85, mut pos80, mut hit80) = (0, 0, 0, 0);
    let mut sets: Vec<(HashSet<u64>, HashSet<u64>)> = Vec::new();
    for i in 0..originals.len() {
        let (a, b) = (
            shingle_set(&signer, &originals[i]),
            shingle_set(&signer, &copies[i]),
        );
        let j = jaccard(&a, &b);
        let ka = DocKey {
            file: 0,
            record: i as u32,
        };
        let kb = DocKey {
            file: 1,
            record: i as u32,
        };
        let joined =
            matches!((cluster_of.get(&ka), cluster_of.get(&kb)), (Some(x), Some(y)) if x == y);
        let bin = ((j * 20.0) as usize).min(19);
        bins[bin].0 += 1;
        bins[bin].1 += usize::from(joined);
        bins[bin].2 += candidate_probability(j, config.bands, config.rows);
        if j >= 0.85 {
            pos85 += 1;
            hit85 += usize::from(joined);
        }
        if j >= 0.8 {
            pos80 += 1;
            hit80 += usize::from(joined);
        }
        sets.push((a, b));
    }
    // Precision: a removed document is justified when some other member of its
    // cluster is truly similar (exact J >= 0.8).
    let set_of = |k: DocKey| -> HashSet<u64> { shingle_set(&signer, text_of(k)) };
    let mut justified = 0;
    for &r in &removed {
        let mine = set_of(r);
        let others = &members[&cluster_of[&r]];
        if others
            .iter()
            .take(64)
            .any(|&o| o != r && jaccard(&mine, &set_of(o)) >= 0.8)
        {
            justified += 1;
        }
    }
    println!(
        "docs: {} originals + {} edited copies; settings: {} bands x {} rows, ngram {}, verify {}",
        originals.len(),
        copies.len(),
        config.bands,
        config.rows,
        config.ngram,
        match config.verify {
            Verify::Off => "off".to_string(),
            v => format!("{v:?} at {}", config.threshold),
        }
    );
    println!(
        "signatures: {} docs in {:.2}s; clusters: {} holding {} docs, {} removed",
        sum.docs,
        sum.elapsed.as_secs_f64(),
        cl.clusters,
        cl.clustered,
        cl.removed
    );
    println!("true J bin   pairs  joined  share  P(candidate)");
    for (b, (count, joined, p)) in bins.iter().enumerate() {
        if *count > 0 {
            println!(
                "{:.2}-{:.2}  {:>6}  {:>6}  {:.3}  {:.3}",
                b as f64 / 20.0,
                (b + 1) as f64 / 20.0,
                count,
                joined,
                *joined as f64 / *count as f64,
                p / *count as f64
            );
        }
    }
    println!(
        "recall J>=0.85: {:.4} ({hit85}/{pos85}); recall J>=0.8: {:.4} ({hit80}/{pos80})",
        hit85 as f64 / pos85.max(1) as f64,
        hit80 as f64 / pos80.max(1) as f64
    );
    println!(
        "precision (removed docs with a truly similar cluster member, J>=0.8): {:.4} ({justified}/{})",
        justified as f64 / removed.len().max(1) as f64,
        removed.len()
    );
}
