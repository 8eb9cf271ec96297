//! `decontam`: drops documents that share n-grams (13 by default) with benchmark test
//! examples, so evaluation sets do not leak into training data.
//!
//! Benchmarks are files the user points to, read by one generic loader: JSON lines,
//! JSON (an array of records, or an object holding one, such as BIG-Bench-Hard's
//! `examples`) or CSV (MMLU, CMMLU), optionally gzip-compressed, a file or a directory
//! of them. Each record is one test example; its text is every string in it (question,
//! choices, answer, code, tests), or only the configured `fields`.
//!
//! Text on both sides goes through the shared dedup key and its tokens
//! ([`crate::normalize::dedup_key`], [`crate::normalize::key_tokens`]): lower-cased,
//! punctuation and digits folded, every CJK character a token, so Chinese benchmarks
//! work. An n-gram found in more than `max_examples_per_ngram` examples is too common to
//! be evidence and is ignored. A document with at least `min_matches` distinct matching
//! n-grams is dropped (`contaminated`, as Qwen did), and the benchmark it matched most is
//! counted (`benchmark:<name>`) and written to `meta.extra.decontam`.

use crate::document::Document;
use crate::ngram::{BuildMix, ngram_hashes, word_hash};
use crate::normalize::{dedup_key, key_tokens};
use crate::stage::{Reason, Stage, StageCx, StageError, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The stage kind.
pub const KIND: &str = "decontam";

/// The document shares n-grams with a benchmark.
pub const CONTAMINATED: Reason = Reason::new("contaminated");

/// One benchmark: a name for reports and where its test examples are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benchmark {
    /// Name in statistics and metadata.
    pub name: String,
    /// A file or a directory of `.jsonl`, `.json` or `.csv` files (optionally `.gz`).
    pub path: PathBuf,
    /// Fields of a JSON record that hold the example's text; empty: every string.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// Configuration of the `decontam` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The benchmarks to protect.
    pub benchmarks: Vec<Benchmark>,
    /// n-gram length in tokens. Default 13.
    pub n: usize,
    /// n-grams found in more test examples than this are ignored. Default 10.
    pub max_examples_per_ngram: usize,
    /// Distinct matching n-grams that make a document contaminated. Default 1.
    pub min_matches: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            benchmarks: Vec::new(),
            n: 13,
            max_examples_per_ngram: 10,
            min_matches: 1,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "benchmarks",
        doc: "list of {name, path, fields}: benchmark test sets (.jsonl/.json/.csv, .gz, or a directory)",
    },
    crate::FieldDoc {
        name: "n",
        doc: "n-gram length in tokens (words; each CJK character a token)",
    },
    crate::FieldDoc {
        name: "max_examples_per_ngram",
        doc: "n-grams in more test examples than this are too common to count",
    },
    crate::FieldDoc {
        name: "min_matches",
        doc: "distinct matching n-grams that make a document contaminated",
    },
];

/// Counts of what was indexed, per benchmark.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IndexStats {
    /// Benchmark name.
    pub name: String,
    /// Test examples read.
    pub examples: usize,
    /// Examples without an n-gram that can be evidence (fewer than `n` tokens, or
    /// mostly numbers): they cannot be matched.
    pub too_short: usize,
}

/// The built stage: an index from n-gram hash to the benchmark holding it.
pub struct Decontam {
    n: usize,
    min_matches: usize,
    index: HashMap<u64, u16, BuildMix>,
    /// Benchmark names, and their counter names (`benchmark:<name>`).
    names: Vec<(String, &'static str)>,
    /// What was indexed.
    pub stats: Vec<IndexStats>,
}

fn config_err(message: String) -> StageError {
    StageError::Config {
        kind: KIND,
        message,
    }
}

/// Builds the index from the configured benchmarks.
pub fn build(config: &Config) -> Result<Decontam, StageError> {
    if config.n == 0 {
        return Err(config_err("n must be at least 1".into()));
    }
    if config.benchmarks.len() > usize::from(u16::MAX) {
        return Err(config_err("too many benchmarks".into()));
    }
    // n-gram -> (benchmark, examples holding it).
    let mut counts: HashMap<u64, (u16, u32), BuildMix> = HashMap::default();
    let mut stats = Vec::new();
    let mut key = String::new();
    let mut seen: HashSet<u64, BuildMix> = HashSet::default();
    for (b, bench) in config.benchmarks.iter().enumerate() {
        let mut st = IndexStats {
            name: bench.name.clone(),
            ..Default::default()
        };
        for_each_example(&bench.path, &bench.fields, &mut |text| {
            st.examples += 1;
            dedup_key(text, &mut key);
            let grams = evidence_ngrams(&key, config.n);
            if grams.is_empty() {
                st.too_short += 1;
                return;
            }
            seen.clear();
            for h in grams {
                if seen.insert(h) {
                    counts.entry(h).or_insert((b as u16, 0)).1 += 1;
                }
            }
        })?;
        if st.examples == 0 {
            return Err(config_err(format!(
                "benchmark `{}`: no examples found in {}",
                bench.name,
                bench.path.display()
            )));
        }
        stats.push(st);
    }
    let limit = config.max_examples_per_ngram.max(1) as u32;
    let index = counts
        .into_iter()
        .filter(|(_, (_, c))| *c <= limit)
        .map(|(h, (b, _))| (h, b))
        .collect();
    // Counter names must be 'static; a run has a handful of benchmarks, built once.
    let names = config
        .benchmarks
        .iter()
        .map(|b| {
            let counter: &'static str = Box::leak(format!("benchmark:{}", b.name).into_boxed_str());
            (b.name.clone(), counter)
        })
        .collect();
    Ok(Decontam {
        n: config.n,
        min_matches: config.min_matches.max(1),
        index,
        names,
        stats,
    })
}

impl Decontam {
    /// Distinct matching n-grams in `text`, by benchmark index.
    pub fn matches(&self, text: &str) -> HashMap<u16, usize> {
        let mut key = String::new();
        dedup_key(text, &mut key);
        let mut found: HashMap<u16, usize> = HashMap::new();
        let mut seen: HashSet<u64, BuildMix> = HashSet::default();
        for h in evidence_ngrams(&key, self.n) {
            if let Some(&b) = self.index.get(&h)
                && seen.insert(h)
            {
                *found.entry(b).or_default() += 1;
            }
        }
        found
    }

    /// Number of distinct n-grams in the index.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nothing was indexed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl Stage for Decontam {
    fn name(&self) -> &'static str {
        KIND
    }

    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        let found = self.matches(&doc.text);
        let total: usize = found.values().sum();
        if total < self.min_matches {
            return Ok(Verdict::Keep);
        }
        let (&bench, &count) = found
            .iter()
            .max_by_key(|(b, c)| (**c, std::cmp::Reverse(**b)))
            .unwrap_or((&0, &0));
        let (name, counter) = &self.names[usize::from(bench)];
        cx.count(counter, 1);
        doc.meta.extra.insert(
            "decontam".into(),
            serde_json::json!({"benchmark": name, "ngram_matches": count}),
        );
        Ok(Verdict::Drop(CONTAMINATED))
    }
}

/// Hashes of the n-grams of a dedup key that can be evidence: at least half of their
/// tokens hold a letter (a CJK character counts). Runs of numbers, which the key folds to
/// `0`, would otherwise match any table of figures.
fn evidence_ngrams(key: &str, n: usize) -> Vec<u64> {
    let tokens: Vec<&str> = key_tokens(key).collect();
    let ids: Vec<u64> = tokens.iter().map(|t| word_hash(t)).collect();
    // prefix[i] = tokens with a letter among the first i.
    let mut prefix = Vec::with_capacity(tokens.len() + 1);
    prefix.push(0usize);
    for t in &tokens {
        let letter = t.chars().any(char::is_alphabetic);
        prefix.push(prefix.last().copied().unwrap_or(0) + usize::from(letter));
    }
    ngram_hashes(&ids, n)
        .enumerate()
        .filter(|(i, _)| 2 * (prefix[i + n] - prefix[*i]) >= n)
        .map(|(_, h)| h)
        .collect()
}

/// Calls `f` with the text of every example under `path`.
pub fn for_each_example(
    path: &Path,
    fields: &[String],
    f: &mut dyn FnMut(&str),
) -> Result<(), StageError> {
    let err = |e: &dyn std::fmt::Display| config_err(format!("{}: {e}", path.display()));
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| err(&e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.to_string_lossy();
            let known = [".jsonl", ".json", ".csv"]
                .iter()
                .any(|ext| name.ends_with(ext) || name.ends_with(&format!("{ext}.gz")));
            if entry.is_dir() || known {
                for_each_example(&entry, fields, f)?;
            }
        }
        return Ok(());
    }
    let mut file = BufReader::new(std::fs::File::open(path).map_err(|e| err(&e))?);
    let gzip = file
        .fill_buf()
        .map_err(|e| err(&e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    };
    let name = path.to_string_lossy();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    let mut text = String::new();
    if base.ends_with(".csv") {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        for record in csv.records() {
            let record = record.map_err(|e| err(&e))?;
            text.clear();
            for cell in record.iter() {
                text.push_str(cell);
                text.push('\n');
            }
            f(&text);
        }
    } else if base.ends_with(".jsonl") {
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| err(&e))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| err(&format!("line {}: {e}", i + 1)))?;
            text.clear();
            collect_text(&value, fields, &mut text);
            f(&text);
        }
    } else {
        let mut all = String::new();
        reader.read_to_string(&mut all).map_err(|e| err(&e))?;
        let value: serde_json::Value = serde_json::from_str(&all).map_err(|e| err(&e))?;
        for record in json_records(&value) {
            text.clear();
            collect_text(record, fields, &mut text);
            f(&text);
        }
    }
    Ok(())
}

/// The records of a JSON document: an array's items, or the items of the first array of
/// objects an object holds (`{"examples": [...]}`), or the value itself.
fn json_records(value: &serde_json::Value) -> Vec<&serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => items.iter().collect(),
        serde_json::Value::Object(map) => map
            .values()
            .find_map(|v| match v {
                serde_json::Value::Array(items) if items.iter().all(|i| i.is_object()) => {
                    Some(items.iter().collect())
                }
                _ => None,
            })
            .unwrap_or_else(|| vec![value]),
        _ => vec![value],
    }
}

/// Appends the strings of a record (only `fields` when given) to `out`.
fn collect_text(value: &serde_json::Value, fields: &[String], out: &mut String) {
    match (value, fields.is_empty()) {
        (serde_json::Value::Object(map), false) => {
            for field in fields {
                if let Some(v) = map.get(field) {
                    collect_text(v, &[], out);
                }
            }
        }
        (serde_json::Value::String(s), _) => {
            out.push_str(s);
            out.push('\n');
        }
        (serde_json::Value::Array(items), _) => {
            items.iter().for_each(|v| collect_text(v, &[], out));
        }
        (serde_json::Value::Object(map), true) => {
            map.values().for_each(|v| collect_text(v, &[], out));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/benchmarks")
            .join(name)
    }

    fn stage() -> Decontam {
        build(&Config {
            benchmarks: vec![
                Benchmark {
                    name: "gsm8k".into(),
                    path: data("gsm8k-test-head20.jsonl"),
                    fields: vec!["question".into()],
                },
                Benchmark {
                    name: "humaneval".into(),
                    path: data("humaneval-head5.jsonl"),
                    fields: vec![],
                },
                Benchmark {
                    name: "mmlu".into(),
                    path: data("mmlu-anatomy-test-head20.csv"),
                    fields: vec![],
                },
            ],
            ..Default::default()
        })
        .unwrap()
    }

    fn verdict(s: &Decontam, text: &str) -> (Verdict, Document) {
        let mut doc = Document::new("d", "s", text);
        let v = s.process(&mut doc, &mut StageCx::default()).unwrap();
        (v, doc)
    }

    #[test]
    fn a_leaked_question_is_caught_despite_case_punctuation_and_numbers() {
        let s = stage();
        assert_eq!(s.stats[0].examples, 20);
        assert_eq!(s.stats[1].examples, 5);
        assert_eq!(s.stats[2].examples, 20);
        // GSM8K's first question, re-cased, re-punctuated and with other numbers, inside
        // a web page.
        let page = "Math homework help! JANET'S DUCKS LAY 20 EGGS PER DAY; she eats three for \
            breakfast every morning and bakes muffins for her friends every day with four. \
            Post your answer below.";
        let (v, doc) = verdict(&s, page);
        assert_eq!(v, Verdict::Drop(CONTAMINATED));
        assert_eq!(doc.meta.extra["decontam"]["benchmark"], "gsm8k");
        // The answer field was not indexed for GSM8K (fields = [question]).
        let (v, _) = verdict(&s, "The farmers market sells eggs. Ducks are birds.");
        assert_eq!(v, Verdict::Keep);
        // HumanEval code and MMLU choices are caught too.
        let code = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n    \
            \"\"\" Check if in given list of numbers, are any two numbers closer to each other than\n    \
            given threshold.";
        assert_eq!(verdict(&s, code).0, Verdict::Drop(CONTAMINATED));
        let mmlu = "A lesion causing compression of the facial nerve at the stylomastoid foramen \
            will cause ipsilateral paralysis of the facial muscles.";
        let (v, doc) = verdict(&s, mmlu);
        assert_eq!(v, Verdict::Drop(CONTAMINATED));
        assert_eq!(doc.meta.extra["decontam"]["benchmark"], "mmlu");
    }

    #[test]
    fn chinese_benchmarks_match_by_character_ngrams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zh.jsonl");
        std::fs::write(
            &path,
            "{\"question\": \"小明有五个苹果，他给了小红两个，然后又买了三个，现在他有几个苹果？\"}\n",
        )
        .unwrap();
        let s = build(&Config {
            benchmarks: vec![Benchmark {
                name: "cmath".into(),
                path,
                fields: vec![],
            }],
            ..Default::default()
        })
        .unwrap();
        // Other punctuation and spacing; numerals as written in the benchmark.
        let page = "今天的练习题： 小明有五个苹果 他给了小红两个! 然后又买了三个 现在他有几个苹果 答案见下。";
        assert_eq!(verdict(&s, page).0, Verdict::Drop(CONTAMINATED));
        assert_eq!(
            verdict(&s, "小明今天去公园玩了，天气很好。").0,
            Verdict::Keep
        );
    }

    #[test]
    fn common_ngrams_are_not_evidence_and_bad_inputs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        // The same 13-gram boilerplate in 3 examples: with max 2 it is ignored.
        let boiler = "answer the following question with a single word and nothing else at all";
        let json = serde_json::json!({"examples": [
            {"input": format!("{boiler} what is red"), "target": "x"},
            {"input": format!("{boiler} what is blue"), "target": "y"},
            {"input": format!("{boiler} what is green"), "target": "z"},
        ]});
        std::fs::write(&path, json.to_string()).unwrap();
        let config = |max| Config {
            benchmarks: vec![Benchmark {
                name: "bbh".into(),
                path: path.clone(),
                fields: vec![],
            }],
            max_examples_per_ngram: max,
            ..Default::default()
        };
        let strict = build(&config(2)).unwrap();
        assert_eq!(strict.stats[0].examples, 3, "{:?}", strict.stats);
        assert_eq!(verdict(&strict, boiler).0, Verdict::Keep);
        let loose = build(&config(3)).unwrap();
        assert_eq!(verdict(&loose, boiler).0, Verdict::Drop(CONTAMINATED));

        // A run of numbers is no evidence, even when a benchmark holds the same run.
        let numbers = dir.path().join("n.jsonl");
        let run = "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16";
        std::fs::write(&numbers, format!("{{\"q\": \"{run}\"}}\n")).unwrap();
        let s = build(&Config {
            benchmarks: vec![Benchmark {
                name: "n".into(),
                path: numbers,
                fields: vec![],
            }],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.stats[0].too_short, 1);
        assert_eq!(verdict(&s, run).0, Verdict::Keep);

        let missing = Config {
            benchmarks: vec![Benchmark {
                name: "x".into(),
                path: dir.path().join("nope.jsonl"),
                fields: vec![],
            }],
            ..Default::default()
        };
        let e = build(&missing)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("nope.jsonl"), "{e}");
    }
}
