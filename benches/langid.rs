//! Language identification and normalization benchmark: accuracy and speed of the
//! `langid` detector against plain `whatlang::detect` on the 75-language sentence set,
//! accuracy on the en/zh documents, and normalize / dedup-key throughput.
//!
//! `cargo bench --bench langid -- [--data DIR] [--runs N]` (DIR defaults to
//! `../shared/data` next to the repository, as on the development machine).

use corpus::stages::langid::{Detector, lang_code, whatlang};
use corpus::stages::normalize::{Config, Form, dedup_key, normalize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Item {
    lang: String,
    text: String,
}

fn read_jsonl(path: &Path) -> Vec<Item> {
    let (reader, _) = corpus::io::open_decompressed(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    reader
        .lines()
        .map(|l| {
            let l = l.unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let v: Value = serde_json::from_str(&l).expect("a JSON line");
            Item {
                lang: v["lang"].as_str().expect("lang").to_string(),
                text: v["text"].as_str().expect("text").to_string(),
            }
        })
        .collect()
}

/// Best wall time of `runs` runs of `f`, and its last result.
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

#[derive(Default, Clone)]
struct Tally {
    n: usize,
    right: usize,
    und: usize,
}

impl Tally {
    fn pct(&self) -> f64 {
        100.0 * self.right as f64 / self.n.max(1) as f64
    }
}

type Labels = Vec<Option<&'static str>>;

fn score(items: &[Item], labels: &Labels) -> BTreeMap<String, Tally> {
    let mut per: BTreeMap<String, Tally> = BTreeMap::new();
    for (item, label) in items.iter().zip(labels) {
        let t = per.entry(item.lang.clone()).or_default();
        t.n += 1;
        t.right += usize::from(*label == Some(item.lang.as_str()));
        t.und += usize::from(label.is_none());
    }
    per
}

fn total(per: &BTreeMap<String, Tally>, filter: impl Fn(&str) -> bool) -> Tally {
    let mut t = Tally::default();
    for (_, x) in per.iter().filter(|(l, _)| filter(l)) {
        t.n += x.n;
        t.right += x.right;
        t.und += x.und;
    }
    t
}

fn main() {
    let mut data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = PathBuf::from(args.next().expect("--data DIR")),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    let detector = Detector::default();
    // The opt-in English prior (`prior = "en"`), measured beside the default.
    let prior = Detector::default().with_prior_english(true);
    let supported: Vec<&str> = whatlang::Lang::all()
        .iter()
        .map(|&l| lang_code(l))
        .collect();

    // Sentences.
    let sentences = read_jsonl(&data.join("langid/sentences.dev.jsonl.gz"));
    let bytes: usize = sentences.iter().map(|s| s.text.len()).sum();
    let (t_ours, ours): (f64, Labels) = best(runs, || {
        sentences
            .iter()
            .map(|s| detector.detect(&s.text).lang)
            .collect()
    });
    let (t_wl, wl): (f64, Labels) = best(runs, || {
        sentences
            .iter()
            .map(|s| whatlang::detect(&s.text).map(|i| lang_code(i.lang())))
            .collect()
    });
    let ours_prior: Labels = sentences
        .iter()
        .map(|s| prior.detect(&s.text).lang)
        .collect();
    let per_ours = score(&sentences, &ours);
    let per_prior = score(&sentences, &ours_prior);
    let per_wl = score(&sentences, &wl);
    println!(
        "## Sentences ({} sentences, {:.2} MB, {} languages; {} of them known to whatlang)\n",
        sentences.len(),
        bytes as f64 / 1e6,
        per_ours.len(),
        per_ours
            .keys()
            .filter(|l| supported.contains(&l.as_str()))
            .count()
    );
    println!(
        "| detector | accuracy, all 75 | accuracy, whatlang's languages | und | sentences/s | MB/s |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, per, t) in [
        ("corpus langid", &per_ours, t_ours),
        ("corpus langid, prior = \"en\"", &per_prior, t_ours),
        ("whatlang::detect", &per_wl, t_wl),
    ] {
        let all = total(per, |_| true);
        let known = total(per, |l| supported.contains(&l));
        println!(
            "| {name} | {:.2}% | {:.2}% | {} | {:.0} | {:.1} |",
            all.pct(),
            known.pct(),
            all.und,
            sentences.len() as f64 / t,
            bytes as f64 / 1e6 / t
        );
    }
    // Other languages' text taken for English: whole sentences, and the first k words of
    // each sentence (k = 1..8, sentences of at least k + 2 words), which is what short
    // rules see. Some of those fragments are English (titles, names, HTTP headers).
    println!(
        "\nOther-language sentences labelled en (of {}), and fragments of them (first 1..8 words):\n",
        sentences.iter().filter(|s| s.lang != "en").count()
    );
    println!("| detector | sentences -> en | fragments -> en | fragments |");
    println!("|---|---|---|---|");
    for (name, d, labels) in [
        ("corpus langid", &detector, &ours),
        ("corpus langid, prior = \"en\"", &prior, &ours_prior),
    ] {
        let whole = sentences
            .iter()
            .zip(labels)
            .filter(|(s, l)| s.lang != "en" && **l == Some("en"))
            .count();
        let (mut n, mut en) = (0, 0);
        for s in sentences.iter().filter(|s| s.lang != "en") {
            let words: Vec<&str> = s.text.split_whitespace().collect();
            for k in 1..=8 {
                if words.len() >= k + 2 {
                    n += 1;
                    en += usize::from(d.detect(&words[..k].join(" ")).lang == Some("en"));
                }
            }
        }
        println!(
            "| {name} | {whole} | {en} ({:.2}%) | {n} |",
            100.0 * en as f64 / n as f64
        );
    }
    println!("\nPer language (whatlang's languages), weakest first:\n");
    println!("| lang | n | corpus langid | whatlang | und (langid) |");
    println!("|---|---|---|---|---|");
    let mut rows: Vec<(&String, &Tally)> = per_ours
        .iter()
        .filter(|(l, _)| supported.contains(&l.as_str()))
        .collect();
    rows.sort_by(|a, b| a.1.pct().total_cmp(&b.1.pct()));
    for (lang, t) in rows.iter().take(15) {
        println!(
            "| {lang} | {} | {:.1}% | {:.1}% | {} |",
            t.n,
            t.pct(),
            per_wl[*lang].pct(),
            t.und
        );
    }
    for lang in ["en", "zh", "ja", "ko", "ru", "de", "fr", "es", "ar"] {
        if rows.iter().take(15).any(|(l, _)| l.as_str() == lang) {
            continue;
        }
        if let Some(t) = per_ours.get(lang) {
            println!(
                "| {lang} | {} | {:.1}% | {:.1}% | {} |",
                t.n,
                t.pct(),
                per_wl[lang].pct(),
                t.und
            );
        }
    }
    let unsupported: Vec<&String> = per_ours
        .keys()
        .filter(|l| !supported.contains(&l.as_str()))
        .collect();
    println!(
        "\nNot in whatlang (0% for both by construction): {}",
        unsupported
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );

    // Documents.
    println!("\n## en/zh documents\n");
    println!(
        "Accuracy counts `und` as wrong. \"≥200 chars\": accuracy on the documents of at least 200 \
         characters. \"wrong kept\": documents labelled with a wrong language at a confidence \
         ≥ 0.5 (the stage's default `min_confidence`), i.e. mislabelled documents the stage \
         would keep; \"dropped\": documents the stage would drop as unknown or low confidence.\n"
    );
    println!(
        "| file | docs | MB | corpus langid | prior = en | ≥200 chars | wrong kept | dropped | whatlang | docs/s (langid) | MB/s (langid) | docs/s (whatlang) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("corpus"))
        .expect("corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    let mut all_docs = Vec::new();
    let mut sums = (0usize, 0usize, 0usize, 0usize, 0.0f64, 0.0f64);
    for path in &files {
        let docs = read_jsonl(path);
        let mb: f64 = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
        let (t1, found): (f64, Vec<_>) = best(runs, || {
            docs.iter().map(|d| detector.detect(&d.text)).collect()
        });
        let ours: Labels = found.iter().map(|d| d.lang).collect();
        let long: Vec<bool> = docs.iter().map(|d| d.text.chars().count() >= 200).collect();
        let long_right = docs
            .iter()
            .zip(&ours)
            .zip(&long)
            .filter(|((d, l), long)| **long && **l == Some(d.lang.as_str()))
            .count();
        let long_n = long.iter().filter(|l| **l).count();
        let wrong_kept = docs
            .iter()
            .zip(&found)
            .filter(|(d, f)| {
                f.lang.is_some() && f.lang != Some(d.lang.as_str()) && f.confidence >= 0.5
            })
            .count();
        let dropped = found
            .iter()
            .filter(|f| f.lang.is_none() || f.confidence < 0.5)
            .count();
        let (t2, wl): (f64, Labels) = best(runs, || {
            docs.iter()
                .map(|d| whatlang::detect(&d.text).map(|i| lang_code(i.lang())))
                .collect()
        });
        let a = total(&score(&docs, &ours), |_| true);
        let with_prior: Labels = docs.iter().map(|d| prior.detect(&d.text).lang).collect();
        let p = total(&score(&docs, &with_prior), |_| true);
        let b = total(&score(&docs, &wl), |_| true);
        println!(
            "| {} | {} | {:.2} | {:.2}% | {:.2}% | {:.2}% ({long_n}) | {wrong_kept} | {dropped} | {:.2}% | {:.0} | {:.1} | {:.0} |",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            docs.len(),
            mb,
            a.pct(),
            p.pct(),
            100.0 * long_right as f64 / long_n.max(1) as f64,
            b.pct(),
            docs.len() as f64 / t1,
            mb / t1,
            docs.len() as f64 / t2
        );
        sums.0 += docs.len();
        sums.1 += a.right;
        sums.2 += b.right;
        sums.3 += a.und;
        sums.4 += t1;
        sums.5 += mb;
        all_docs.extend(docs);
    }
    println!(
        "| **all** | {} | {:.2} | {:.2}% | | | | {} und | {:.2}% | {:.0} | {:.1} | |",
        sums.0,
        sums.5,
        100.0 * sums.1 as f64 / sums.0.max(1) as f64,
        sums.3,
        100.0 * sums.2 as f64 / sums.0.max(1) as f64,
        sums.0 as f64 / sums.4,
        sums.5 / sums.4
    );
    println!();
    for lang in ["en", "zh"] {
        let docs: Vec<&Item> = all_docs.iter().filter(|d| d.lang == lang).collect();
        let with_prior = docs
            .iter()
            .filter(|d| prior.detect(&d.text).lang == Some(lang))
            .count();
        println!(
            "- {lang}, prior = \"en\": {with_prior}/{} = {:.3}% right",
            docs.len(),
            100.0 * with_prior as f64 / docs.len().max(1) as f64
        );
        let found: Vec<_> = docs.iter().map(|d| detector.detect(&d.text)).collect();
        let right = found.iter().filter(|f| f.lang == Some(lang)).count();
        let long: Vec<(&&Item, _)> = docs
            .iter()
            .zip(&found)
            .filter(|(d, _)| d.text.chars().count() >= 200)
            .collect();
        let long_right = long.iter().filter(|(_, f)| f.lang == Some(lang)).count();
        let wrong_kept = found
            .iter()
            .filter(|f| f.lang.is_some() && f.lang != Some(lang) && f.confidence >= 0.5)
            .count();
        println!(
            "- {lang}: {right}/{} = {:.3}% right; documents of ≥200 characters: {long_right}/{} = {:.3}%; wrong and kept at min_confidence 0.5: {wrong_kept} ({:.3}%)",
            docs.len(),
            100.0 * right as f64 / docs.len().max(1) as f64,
            long.len(),
            100.0 * long_right as f64 / long.len().max(1) as f64,
            100.0 * wrong_kept as f64 / docs.len().max(1) as f64,
        );
    }

    // Normalization.
    println!(
        "\n## normalize and dedup key (all {} documents, {:.1} MB)\n",
        all_docs.len(),
        sums.5
    );
    println!("| function | seconds | MB/s |");
    println!("|---|---|---|");
    let nfc = Config::default();
    let nfkc = Config {
        form: Form::Nfkc,
        ..Config::default()
    };
    let mb = sums.5;
    for (name, config) in [("normalize (nfc)", &nfc), ("normalize (nfkc)", &nfkc)] {
        let (t, n) = best(runs, || {
            all_docs
                .iter()
                .map(|d| normalize(&d.text, config).len())
                .sum::<usize>()
        });
        println!("| {name} | {t:.3} | {:.0} |", mb / t);
        std::hint::black_box(n);
    }
    for lang in ["en", "zh"] {
        let docs: Vec<&Item> = all_docs.iter().filter(|d| d.lang == lang).collect();
        let dmb = docs.iter().map(|d| d.text.len()).sum::<usize>() as f64 / 1e6;
        let (t, n) = best(runs, || {
            docs.iter()
                .map(|d| normalize(&d.text, &nfc).len())
                .sum::<usize>()
        });
        println!("| normalize (nfc), {lang} only | {t:.3} | {:.0} |", dmb / t);
        std::hint::black_box(n);
    }
    let (t, n) = best(runs, || {
        let mut key = String::new();
        all_docs
            .iter()
            .map(|d| {
                dedup_key(&d.text, &mut key);
                key.len()
            })
            .sum::<usize>()
    });
    println!("| dedup_key | {t:.3} | {:.0} |", mb / t);
    std::hint::black_box(n);
}
