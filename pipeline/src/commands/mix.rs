//! The source mix before and after upsampling, from the `upsample` stage's statistics
//! (`docs_in:<source>`, `bytes_out:<source>`, `tokens_in:<source>`... merged over every
//! shard and task in `stats.json`), so it needs no second pass over the data. Tokens are
//! there when the stage was given a `vocab`.

use crate::stats::RunStats;
use serde::Serialize;
use std::collections::BTreeMap;

/// One source before and after upsampling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceMix {
    /// Source name (`other` for sources without a weight).
    pub source: String,
    /// Documents into the stage.
    pub docs_in: u64,
    /// Documents out (copies included).
    pub docs_out: u64,
    /// Text bytes in.
    pub bytes_in: u64,
    /// Text bytes out.
    pub bytes_out: u64,
    /// Tokens in, when counted.
    pub tokens_in: Option<u64>,
    /// Tokens out, when counted.
    pub tokens_out: Option<u64>,
}

/// The mix of the first `upsample` stage of `stats`, by source name; `None` without one.
pub fn upsample_mix(stats: &RunStats) -> Option<Vec<SourceMix>> {
    let stage = stats
        .stages
        .iter()
        .find(|s| s.kind == corpus_stages::upsample::KIND)?;
    let mut by: BTreeMap<&str, SourceMix> = BTreeMap::new();
    for (counter, &v) in &stage.counters {
        let Some((what, source)) = counter.split_once(':') else {
            continue;
        };
        let m = by.entry(source).or_insert_with(|| SourceMix {
            source: source.to_string(),
            ..Default::default()
        });
        match what {
            "docs_in" => m.docs_in = v,
            "docs_out" => m.docs_out = v,
            "bytes_in" => m.bytes_in = v,
            "bytes_out" => m.bytes_out = v,
            "tokens_in" => m.tokens_in = Some(v),
            "tokens_out" => m.tokens_out = Some(v),
            _ => {}
        }
    }
    // A source whose documents were all dropped has tokens in but no tokens_out counter.
    for m in by.values_mut() {
        if m.tokens_in.is_some() && m.tokens_out.is_none() {
            m.tokens_out = Some(0);
        }
    }
    Some(by.into_values().collect())
}

/// The mix as a text table: per source, documents and tokens (or bytes when tokens were
/// not counted) before and after, with each side's share.
pub fn mix_table(mix: &[SourceMix]) -> String {
    let tokens = mix.iter().all(|m| m.tokens_in.is_some());
    let unit = if tokens { "tokens" } else { "bytes" };
    let get = |m: &SourceMix| {
        if tokens {
            (m.tokens_in.unwrap_or(0), m.tokens_out.unwrap_or(0))
        } else {
            (m.bytes_in, m.bytes_out)
        }
    };
    let total_in: u64 = mix.iter().map(|m| get(m).0).sum::<u64>().max(1);
    let total_out: u64 = mix.iter().map(|m| get(m).1).sum::<u64>().max(1);
    let width = mix
        .iter()
        .map(|m| m.source.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!(
        "  upsampling mix ({unit}):\n  {:<width$} {:>9} {:>9} {:>14} {:>7} {:>14} {:>7}\n",
        "source", "docs in", "docs out", "in", "share", "out", "share"
    );
    for m in mix {
        let (i, o) = get(m);
        out.push_str(&format!(
            "  {:<width$} {:>9} {:>9} {:>14} {:>6.2}% {:>14} {:>6.2}%\n",
            m.source,
            m.docs_in,
            m.docs_out,
            i,
            100.0 * i as f64 / total_in as f64,
            o,
            100.0 * o as f64 / total_out as f64
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StageStats;
    use crate::testing::assert_mentions;

    #[test]
    fn the_mix_comes_from_the_upsample_counters() {
        let mut st = StageStats {
            kind: "upsample".into(),
            ..Default::default()
        };
        for (k, v) in [
            ("docs_in:wiki", 2),
            ("docs_out:wiki", 4),
            ("bytes_in:wiki", 10),
            ("bytes_out:wiki", 20),
            ("tokens_in:wiki", 3),
            ("tokens_out:wiki", 6),
            ("docs_in:web", 5),
            ("bytes_in:web", 50),
            ("tokens_in:web", 9),
        ] {
            st.counters.insert(k.into(), v);
        }
        let stats = RunStats {
            stages: vec![StageStats::default(), st],
            ..Default::default()
        };
        let mix = upsample_mix(&stats).unwrap();
        assert_eq!(mix[1].source, "wiki");
        assert_eq!((mix[1].tokens_in, mix[1].tokens_out), (Some(3), Some(6)));
        assert_eq!((mix[0].docs_out, mix[0].tokens_out), (0, Some(0)));
        let t = mix_table(&mix);
        assert_mentions(&t, &["(tokens)", "25.00%", "100.00%"]);
        assert!(upsample_mix(&RunStats::default()).is_none());
    }
}
