//! Statistics: per stage docs and bytes in and out, drops by reason, counters and time;
//! per source records read and skipped; the language and source mix and score
//! histograms of the documents written. Merged with `+=` across threads, shards, tasks
//! and passes, and written as JSON next to the outputs; `corpus report` reads them back.

use crate::source::SourceStats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::AddAssign;

/// Counters of one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageStats {
    /// The stage kind.
    pub kind: String,
    /// Documents in.
    pub docs_in: u64,
    /// Documents out (kept).
    pub docs_out: u64,
    /// Text bytes in.
    pub bytes_in: u64,
    /// Text bytes out.
    pub bytes_out: u64,
    /// Dropped documents by reason.
    pub drops: BTreeMap<String, u64>,
    /// Stage-specific counters.
    pub counters: BTreeMap<String, u64>,
    /// Time spent in the stage, summed over worker threads, in seconds (wall clock of
    /// the threads: it grows when the machine is shared).
    pub seconds: f64,
    /// CPU time spent in the stage, summed over threads, in seconds (comparable between
    /// runs on loaded and idle machines). For a dedup barrier it includes its own passes
    /// (signatures, buckets, clusters).
    pub cpu_seconds: f64,
}

impl AddAssign<&StageStats> for StageStats {
    fn add_assign(&mut self, o: &StageStats) {
        if self.kind.is_empty() {
            self.kind.clone_from(&o.kind);
        }
        self.docs_in += o.docs_in;
        self.docs_out += o.docs_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        add_map(&mut self.drops, &o.drops);
        add_map(&mut self.counters, &o.counters);
        self.seconds += o.seconds;
        self.cpu_seconds += o.cpu_seconds;
    }
}

/// CPU time of the calling thread, in seconds.
pub fn thread_cpu_seconds() -> f64 {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of this process (every thread), in seconds.
pub fn process_cpu_seconds() -> f64 {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the clock ids are the POSIX constants.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Statistics of a run, a task or one shard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunStats {
    /// Shards (input files) completed.
    pub shards: u64,
    /// Shards that failed (could not be opened or read to the end).
    pub failed_shards: u64,
    /// What the sources read and skipped.
    pub input: SourceStats,
    /// One entry per configured stage, in pipeline order.
    pub stages: Vec<StageStats>,
    /// Documents written to the output.
    pub docs_out: u64,
    /// Text bytes written to the output.
    pub bytes_out: u64,
    /// Wall-clock seconds (summed over shards and tasks when merged).
    pub seconds: f64,
    /// What the documents written look like: language and source mix, histograms.
    pub output: OutputMix,
}

impl AddAssign<&RunStats> for RunStats {
    fn add_assign(&mut self, o: &RunStats) {
        self.shards += o.shards;
        self.failed_shards += o.failed_shards;
        self.input += &o.input;
        if self.stages.len() < o.stages.len() {
            self.stages.resize_with(o.stages.len(), Default::default);
        }
        for (a, b) in self.stages.iter_mut().zip(&o.stages) {
            *a += b;
        }
        self.docs_out += o.docs_out;
        self.bytes_out += o.bytes_out;
        self.seconds += o.seconds;
        self.output += &o.output;
    }
}

/// Documents and text bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Count {
    /// Documents.
    pub docs: u64,
    /// Text bytes (UTF-8).
    pub bytes: u64,
}

impl AddAssign<&Count> for Count {
    fn add_assign(&mut self, o: &Count) {
        self.docs += o.docs;
        self.bytes += o.bytes;
    }
}

/// Counts of values in equal-width bins over `lo..hi`; values outside the range go to
/// the first or last bin. The bins are fixed by the statistic (see [`OutputMix`]), so
/// histograms of any shards add bin by bin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Count per bin.
    pub bins: Vec<u64>,
}

impl Histogram {
    /// An empty histogram of `bins` bins over `lo..hi`.
    pub fn new(lo: f64, hi: f64, bins: usize) -> Histogram {
        Histogram {
            lo,
            hi,
            bins: vec![0; bins],
        }
    }

    /// Counts one value (NaN is not counted).
    pub fn add(&mut self, value: f64) {
        let n = self.bins.len();
        if n == 0 || value.is_nan() || self.hi <= self.lo {
            return;
        }
        let pos = (value - self.lo) / (self.hi - self.lo) * n as f64;
        let bin = (pos.max(0.0) as usize).min(n - 1);
        self.bins[bin] += 1;
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.bins.iter().sum()
    }
}

impl AddAssign<&Histogram> for Histogram {
    /// Adds bin by bin. Histograms of another shape (from another version of the
    /// program) cannot be added: an empty one takes the other's, otherwise it is kept.
    fn add_assign(&mut self, o: &Histogram) {
        if self.bins.is_empty() {
            self.clone_from(o);
        } else if self.bins.len() == o.bins.len() && self.lo == o.lo && self.hi == o.hi {
            for (a, b) in self.bins.iter_mut().zip(&o.bins) {
                *a += b;
            }
        }
    }
}

/// The documents written, by language, source and rule flag, with histograms of their
/// scores and sizes. Counted after every stage (upsampled copies included), so it
/// describes the output files exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputMix {
    /// By `meta.lang` (`und` when a document has none).
    pub by_lang: BTreeMap<String, Count>,
    /// By source name (`-` when empty).
    pub by_source: BTreeMap<String, Count>,
    /// Documents carrying each rule flag of annotate-mode filters (`stage/reason`).
    pub flags: BTreeMap<String, u64>,
    /// Histograms by name: `lang_score`, `quality`, `safety` (each over 0..1, 20 bins,
    /// for documents that have the score) and `log10_bytes` (text size, 0..7, 28 bins).
    pub histograms: BTreeMap<String, Histogram>,
}

impl OutputMix {
    /// Counts one document.
    pub fn add(&mut self, doc: &corpus_stages::Document) {
        let count = Count {
            docs: 1,
            bytes: doc.text.len() as u64,
        };
        let lang = doc.meta.lang.as_deref().unwrap_or("und");
        self.by_lang
            .entry(lang.to_string())
            .or_default()
            .add_assign(&count);
        let source = if doc.source.is_empty() {
            "-"
        } else {
            doc.source.as_str()
        };
        self.by_source
            .entry(source.to_string())
            .or_default()
            .add_assign(&count);
        for flag in &doc.scores.flags {
            *self.flags.entry(flag.clone()).or_default() += 1;
        }
        let mut hist = |name: &str, lo: f64, hi: f64, bins: usize, value: f64| {
            self.histograms
                .entry(name.to_string())
                .or_insert_with(|| Histogram::new(lo, hi, bins))
                .add(value);
        };
        if let Some(s) = doc.meta.lang_score {
            hist("lang_score", 0.0, 1.0, 20, f64::from(s));
        }
        if let Some(s) = doc.scores.quality {
            hist("quality", 0.0, 1.0, 20, f64::from(s));
        }
        if let Some(s) = doc.scores.safety {
            hist("safety", 0.0, 1.0, 20, f64::from(s));
        }
        hist(
            "log10_bytes",
            0.0,
            7.0,
            28,
            (doc.text.len().max(1) as f64).log10(),
        );
    }
}

impl AddAssign<&OutputMix> for OutputMix {
    fn add_assign(&mut self, o: &OutputMix) {
        for (k, c) in &o.by_lang {
            *self.by_lang.entry(k.clone()).or_default() += c;
        }
        for (k, c) in &o.by_source {
            *self.by_source.entry(k.clone()).or_default() += c;
        }
        add_map(&mut self.flags, &o.flags);
        for (k, h) in &o.histograms {
            *self.histograms.entry(k.clone()).or_default() += h;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_everything() {
        let mut a = RunStats::default();
        let mut b = RunStats {
            shards: 1,
            docs_out: 3,
            stages: vec![StageStats {
                kind: "length".into(),
                docs_in: 5,
                docs_out: 3,
                ..Default::default()
            }],
            ..Default::default()
        };
        b.stages[0].drops.insert("too_short".into(), 2);
        b.input.skip("request");
        a += &b;
        a += &b;
        assert_eq!(a.shards, 2);
        assert_eq!(a.docs_out, 6);
        assert_eq!(a.stages[0].kind, "length");
        assert_eq!(a.stages[0].drops["too_short"], 4);
        assert_eq!(a.input.skipped["request"], 2);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<RunStats>(&json).unwrap(), a);
        // Statistics written before the output mix existed still read.
        let old: RunStats = serde_json::from_str(r#"{"shards": 2, "docs_out": 5}"#).unwrap();
        assert_eq!(old.output, OutputMix::default());
    }

    #[test]
    fn output_mix_counts_documents_and_merges_like_one_pass() {
        let mut docs = Vec::new();
        for (i, (lang, score)) in [("en", 0.99), ("zh", 0.5), ("en", 0.0), ("en", 1.0)]
            .into_iter()
            .enumerate()
        {
            let mut d =
                corpus_stages::Document::new(format!("d{i}"), "web", "x".repeat(10 * i + 1));
            d.meta.lang = Some(lang.into());
            d.meta.lang_score = Some(score);
            docs.push(d);
        }
        docs[1].scores.flags.push("quality/c4_curly_bracket".into());
        docs.push(corpus_stages::Document::new("bare", "", "hello"));
        let mut whole = OutputMix::default();
        docs.iter().for_each(|d| whole.add(d));
        let (mut a, mut b) = (OutputMix::default(), OutputMix::default());
        docs[..2].iter().for_each(|d| a.add(d));
        docs[2..].iter().for_each(|d| b.add(d));
        a += &b;
        assert_eq!(a, whole);
        assert_eq!(
            whole.by_lang["en"],
            Count {
                docs: 3,
                bytes: 1 + 21 + 31
            }
        );
        assert_eq!(whole.by_lang["und"].docs, 1);
        assert_eq!(whole.by_source["-"].docs, 1);
        assert_eq!(whole.flags["quality/c4_curly_bracket"], 1);
        let ls = &whole.histograms["lang_score"];
        assert_eq!(ls.total(), 4);
        // 0.0 in the first bin, 0.5 in the middle, 0.99 and 1.0 in the last.
        assert_eq!((ls.bins[0], ls.bins[10], ls.bins[19]), (1, 1, 2));
        assert_eq!(whole.histograms["log10_bytes"].total(), 5);
        assert!(!whole.histograms.contains_key("quality"));
    }

    #[test]
    fn histograms_clamp_and_refuse_other_shapes() {
        let mut h = Histogram::new(0.0, 1.0, 4);
        for v in [-1.0, 0.0, 0.3, 0.99, 7.0, f64::NAN] {
            h.add(v);
        }
        assert_eq!(h.bins, vec![2, 1, 0, 2]);
        let other = Histogram::new(0.0, 2.0, 4);
        let before = h.clone();
        h += &other;
        assert_eq!(h, before);
        let mut empty = Histogram::default();
        empty += &before;
        assert_eq!(empty, before);
    }
}
