//! `corpus decontam`: the decontamination index file and the audit report.
//!
//! - [`build_index`] / [`write_index`]: `corpus decontam index --benchmark NAME=PATH...
//!   -o INDEX` builds the n-gram index of the benchmarks once and writes it as a
//!   versioned, fingerprinted, checksummed file ([`corpus_stages::decontam::Index`]) that
//!   every task of a run loads read-only (`index = "PATH"` in the stage, `--index` here).
//! - [`report`]: `corpus decontam ... --report report.json` turns the decontam stage's
//!   statistics of a finished run (`OUT/stats.json`, merged over every shard and task)
//!   into a per-benchmark account: contaminated documents, which test examples matched
//!   and how often, sample matching n-grams. It reads no documents: the stage counts what
//!   the report needs (see [`corpus_stages::decontam`]).

use crate::stats::{RunStats, StageStats};
use corpus_stages::decontam::{Benchmark, Index, IndexSettings, IndexStats, KIND};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of the decontam commands.
#[derive(Debug, thiserror::Error)]
pub enum DecontamError {
    /// Bad options (a malformed `--benchmark`).
    #[error("{0}")]
    Usage(String),
    /// The benchmarks could not be read or indexed.
    #[error(transparent)]
    Stage(#[from] corpus_stages::StageError),
    /// An index file could not be read or is not valid.
    #[error(transparent)]
    Index(#[from] corpus_stages::minhash::files::FileError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl DecontamError {
    /// True for errors of the command line or config rather than of a run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DecontamError::Usage(_) | DecontamError::Stage(_) | DecontamError::Index(_)
        )
    }

    fn file(path: &Path, e: impl std::fmt::Display) -> DecontamError {
        DecontamError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Parses `NAME=PATH` (every string field of a record is the example's text).
pub fn parse_benchmark(spec: &str) -> Result<Benchmark, DecontamError> {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(Benchmark {
            name: name.to_string(),
            path: path.into(),
            fields: Vec::new(),
        }),
        _ => Err(DecontamError::Usage(format!(
            "--benchmark {spec}: expected NAME=PATH"
        ))),
    }
}

/// Parses every `NAME=PATH` of `specs`.
pub fn parse_benchmarks(specs: &[String]) -> Result<Vec<Benchmark>, DecontamError> {
    specs.iter().map(|b| parse_benchmark(b)).collect()
}

/// The index a decontam run loads: `index` when given, else the index of `benchmarks`
/// built once into `OUT/decontam.index`.
pub fn run_index(
    benchmarks: &[String],
    index: Option<PathBuf>,
    settings: IndexSettings,
    output_dir: &Path,
) -> Result<PathBuf, DecontamError> {
    if let Some(index) = index {
        return Ok(index);
    }
    let benchmarks = parse_benchmarks(benchmarks)?;
    let path = output_dir.join("decontam.index");
    write_index(&benchmarks, settings, &path)?;
    Ok(path)
}

/// Writes the `--report` of a finished run (`output_dir`) that used `index` to `path`.
pub fn write_run_report(index: &Path, output_dir: &Path, path: &Path) -> Result<(), DecontamError> {
    let stats = Index::load(index, None).map(|i| i.stats)?;
    write_report(&report(output_dir, Some(&stats))?, path)
}

/// What `corpus decontam index` did.
#[derive(Debug, Clone)]
pub struct IndexSummary {
    /// Per benchmark: examples, too short, files.
    pub benchmarks: Vec<IndexStats>,
    /// Distinct n-grams indexed.
    pub ngrams: usize,
    /// Distinct fields matched whole (shorter than n tokens).
    pub short_fields: usize,
    /// Bytes of the index file.
    pub bytes: u64,
    /// Time to read the benchmarks and build the index.
    pub build: Duration,
    /// Time to encode and write the file.
    pub write: Duration,
}

impl IndexSummary {
    /// The lines `corpus decontam index` prints: one per benchmark, then the index
    /// written to `path`.
    pub fn to_text(&self, path: &Path) -> String {
        let mut out = String::new();
        for b in &self.benchmarks {
            out += &format!(
                "{}: {} examples ({} too short to match, {} fields matched whole) in {} files\n",
                b.name,
                b.examples,
                b.too_short,
                b.short_fields,
                b.files.len()
            );
        }
        out += &format!(
            "{}: {} n-grams, {} whole fields, {} bytes; built in {:.2}s, written in {:.2}s\n",
            path.display(),
            self.ngrams,
            self.short_fields,
            self.bytes,
            self.build.as_secs_f64(),
            self.write.as_secs_f64()
        );
        out
    }
}

/// Builds the index of `benchmarks`.
pub fn build_index(
    benchmarks: &[Benchmark],
    settings: IndexSettings,
) -> Result<(Index, Duration), DecontamError> {
    let started = Instant::now();
    let index = Index::build(benchmarks, settings)?;
    Ok((index, started.elapsed()))
}

/// Builds the index of `benchmarks` and writes it to `path` atomically.
pub fn write_index(
    benchmarks: &[Benchmark],
    settings: IndexSettings,
    path: &Path,
) -> Result<IndexSummary, DecontamError> {
    let (index, build) = build_index(benchmarks, settings)?;
    let started = Instant::now();
    let bytes = index.to_bytes();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DecontamError::file(dir, e))?;
    }
    crate::io::AtomicFile::write_all(path, &bytes).map_err(|e| DecontamError::file(path, e))?;
    Ok(IndexSummary {
        benchmarks: index.stats.clone(),
        ngrams: index.len(),
        short_fields: index.short_len(),
        bytes: bytes.len() as u64,
        build,
        write: started.elapsed(),
    })
}

/// One test example that matched, with the documents it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleHit {
    /// `FILE:RECORD` within the benchmark (records counted from 1).
    pub example: String,
    /// Documents that held one of its n-grams.
    pub documents: u64,
}

/// A sample matching n-gram (in the dedup key's form: lower-cased, punctuation removed,
/// digits as `0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NgramHit {
    /// The n-gram's tokens joined by spaces.
    pub ngram: String,
    /// Documents for which it was the sample n-gram of the benchmark.
    pub documents: u64,
}

/// The account of one benchmark.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkReport {
    /// Benchmark name.
    pub name: String,
    /// Test examples indexed (when the index is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub examples: Option<usize>,
    /// Examples too short to be matched (when the index is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_short: Option<usize>,
    /// Contaminated documents attributed to this benchmark (the one each matched most;
    /// these add up to all contaminated documents).
    pub documents: u64,
    /// Contaminated documents that matched this benchmark at all.
    pub documents_matching: u64,
    /// Distinct test examples matched.
    pub examples_matched: usize,
    /// Every matched example, most documents first.
    pub matched_examples: Vec<ExampleHit>,
    /// The most frequent sample n-grams (at most [`SAMPLE_NGRAMS`]).
    pub sample_ngrams: Vec<NgramHit>,
}

/// Sample n-grams listed per benchmark.
pub const SAMPLE_NGRAMS: usize = 5;

/// The decontamination report of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Documents the stage saw.
    pub documents: u64,
    /// Documents it kept (edited ones included).
    pub kept: u64,
    /// Documents kept with matched spans removed (policy `remove_span`).
    pub edited: u64,
    /// Spans removed (policy `remove_span`).
    pub spans_removed: u64,
    /// Dropped documents by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Text bytes into and out of the stage.
    pub bytes_in: u64,
    /// Text bytes out of the stage.
    pub bytes_out: u64,
    /// Per benchmark, in index order (then any only the statistics name).
    pub benchmarks: Vec<BenchmarkReport>,
}

/// Builds the report from the statistics of the decontam stage of `stats`. `index`
/// (the benchmarks of the index, in order) adds benchmarks without a match and their
/// example counts.
pub fn report_from_stats(stats: &StageStats, index: Option<&[IndexStats]>) -> Report {
    let mut benches: BTreeMap<String, BenchmarkReport> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut entry = |name: &str| -> String {
        if !order.iter().any(|o| o == name) {
            order.push(name.to_string());
        }
        name.to_string()
    };
    for st in index.unwrap_or_default() {
        let name = entry(&st.name);
        let b = benches.entry(name.clone()).or_default();
        b.name = name;
        b.examples = Some(st.examples);
        b.too_short = Some(st.too_short);
    }
    let mut report = Report {
        documents: stats.docs_in,
        kept: stats.docs_out,
        dropped: stats.drops.clone(),
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        edited: stats.counters.get("edited").copied().unwrap_or(0),
        spans_removed: stats.counters.get("spans_removed").copied().unwrap_or(0),
        ..Default::default()
    };
    for (counter, &count) in &stats.counters {
        let Some((kind, rest)) = counter.split_once(':') else {
            continue;
        };
        // Benchmark names hold no `:` (the stage refuses them), so the name ends at the
        // first one.
        let (name, detail) = rest.split_once(':').unwrap_or((rest, ""));
        let name = entry(name);
        let b = benches.entry(name.clone()).or_default();
        b.name = name;
        match kind {
            "benchmark" => b.documents += count,
            "matched" => b.documents_matching += count,
            "example" => b.matched_examples.push(ExampleHit {
                example: detail.to_string(),
                documents: count,
            }),
            "ngram" => b.sample_ngrams.push(NgramHit {
                ngram: detail.to_string(),
                documents: count,
            }),
            _ => {}
        }
    }
    for name in order {
        let mut b = benches.remove(&name).unwrap_or_default();
        b.examples_matched = b.matched_examples.len();
        b.matched_examples.sort_by(|x, y| {
            y.documents
                .cmp(&x.documents)
                .then(x.example.cmp(&y.example))
        });
        b.sample_ngrams
            .sort_by(|x, y| y.documents.cmp(&x.documents).then(x.ngram.cmp(&y.ngram)));
        b.sample_ngrams.truncate(SAMPLE_NGRAMS);
        report.benchmarks.push(b);
    }
    report
}

/// Reads `OUT/stats.json` of a finished run and builds the report of its (first)
/// decontam stage.
pub fn report(output_dir: &Path, index: Option<&[IndexStats]>) -> Result<Report, DecontamError> {
    let path = output_dir.join("stats.json");
    let bytes = std::fs::read(&path).map_err(|e| DecontamError::file(&path, e))?;
    let stats: RunStats =
        serde_json::from_slice(&bytes).map_err(|e| DecontamError::file(&path, e))?;
    let stage = stats
        .stages
        .iter()
        .find(|s| s.kind == KIND)
        .ok_or_else(|| DecontamError::file(&path, "no decontam stage in these statistics"))?;
    Ok(report_from_stats(stage, index))
}

/// Writes the report as pretty JSON, atomically.
pub fn write_report(report: &Report, path: &Path) -> Result<(), DecontamError> {
    let json = serde_json::to_vec_pretty(report).expect("reports serialize");
    crate::io::AtomicFile::write_all(path, &json).map_err(|e| DecontamError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_groups_counters_by_benchmark_and_sorts_examples() {
        let mut st = StageStats {
            kind: KIND.into(),
            docs_in: 10,
            docs_out: 7,
            ..Default::default()
        };
        st.drops.insert("contaminated".into(), 3);
        for (k, v) in [
            ("benchmark:gsm8k", 2),
            ("benchmark:mmlu", 1),
            ("matched:gsm8k", 2),
            ("matched:mmlu", 2),
            ("example:gsm8k:test.jsonl:7", 1),
            ("example:gsm8k:test.jsonl:12", 2),
            ("example:mmlu:a/b.csv:3", 2),
            ("ngram:gsm8k:janet s ducks", 2),
            ("ngram:mmlu:which of the following", 2),
            ("edited", 0),
        ] {
            st.counters.insert(k.into(), v);
        }
        let index = vec![
            IndexStats {
                name: "mmlu".into(),
                examples: 100,
                ..Default::default()
            },
            IndexStats {
                name: "gsm8k".into(),
                examples: 20,
                ..Default::default()
            },
            IndexStats {
                name: "bbh".into(),
                examples: 5,
                ..Default::default()
            },
        ];
        let r = report_from_stats(&st, Some(&index));
        let names: Vec<&str> = r.benchmarks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["mmlu", "gsm8k", "bbh"]);
        let g = &r.benchmarks[1];
        assert_eq!(
            (g.documents, g.documents_matching, g.examples_matched),
            (2, 2, 2)
        );
        assert_eq!(g.matched_examples[0].example, "test.jsonl:12");
        assert_eq!(g.sample_ngrams[0].ngram, "janet s ducks");
        assert_eq!(r.benchmarks[0].matched_examples[0].example, "a/b.csv:3");
        assert_eq!(r.benchmarks[2].documents, 0);
        assert_eq!(r.benchmarks[2].examples, Some(5));
        assert_eq!(r.dropped["contaminated"], 3);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
        assert!(parse_benchmark("x").is_err() && parse_benchmark("a=b").is_ok());
    }
}
