//! Statistics: per stage docs and bytes in and out, drops by reason, counters and time;
//! per source records read and skipped. Merged with `+=` across threads, shards, tasks
//! and passes, and written as JSON next to the outputs.

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
    /// Time spent in the stage, summed over worker threads, in seconds.
    pub seconds: f64,
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
    }
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
    }
}
