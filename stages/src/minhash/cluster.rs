//! Clustering: candidate buckets joined with union-find, one survivor per cluster.
//!
//! Both execution modes feed the same [`Clusterer`] with the same buckets (documents
//! that agree on one band, in input order), so they reach the same clusters. The
//! clusters are the connected components of the graph whose edges are the candidate
//! pairs (with `verify`, only the pairs whose Jaccard similarity, estimated or exact,
//! reaches the threshold); a pair whose documents are already in one cluster is not verified again,
//! which changes no component, so the result does not depend on the order buckets
//! arrive in.

use super::{Config, DocKey, Keep, Verify, estimated_jaccard, exact_jaccard};
use std::collections::HashMap;

/// Union-find over packed [`DocKey`]s, holding only documents that were in some
/// bucket. The root of a set is always its first member in input order.
#[derive(Debug, Default)]
pub struct UnionFind {
    parent: HashMap<u64, u64>,
}

impl UnionFind {
    /// The root of `x` (itself when never joined), compressing the path.
    pub fn find(&mut self, x: u64) -> u64 {
        let mut root = x;
        while let Some(&p) = self.parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        let mut cur = x;
        while cur != root {
            let next = self.parent.get(&cur).copied().unwrap_or(root);
            self.parent.insert(cur, root);
            cur = next;
        }
        root
    }

    /// Joins the sets of `a` and `b`; the smaller root (earlier in input order) wins.
    /// True when they were apart.
    pub fn union(&mut self, a: u64, b: u64) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent.entry(root).or_insert(root);
        self.parent.insert(child, root);
        true
    }

    /// Every document that was joined to another, with its root.
    pub fn members(&mut self) -> Vec<(u64, u64)> {
        let keys: Vec<u64> = self.parent.keys().copied().collect();
        let mut out: Vec<(u64, u64)> = keys.into_iter().map(|k| (k, self.find(k))).collect();
        out.sort_unstable();
        out
    }
}

/// Counters of a clustering run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Buckets with at least two documents.
    pub buckets: u64,
    /// Candidate pairs verified against the threshold.
    pub pairs_verified: u64,
    /// Verified pairs below the threshold.
    pub pairs_rejected: u64,
    /// Joins of two clusters.
    pub joins: u64,
}

/// Looks up what clustering needs to know about a document.
pub trait Lookup {
    /// The error of a failed lookup (a damaged intermediate file, say).
    type Error;
    /// Copies the signature of `key` into `out`.
    fn hashes(&mut self, key: u64, out: &mut Vec<u32>) -> Result<(), Self::Error>;
    /// Copies the shingle set of `key` (sorted, no repeats) into `out`; needed only with
    /// [`Verify::Exact`].
    fn shingles(&mut self, key: u64, out: &mut Vec<u64>) -> Result<(), Self::Error>;
    /// Length in characters and quality score (NaN when absent) of `key`.
    fn rank(&mut self, key: u64) -> Result<(u32, f32), Self::Error>;
}

/// Joins candidate buckets into clusters.
pub struct Clusterer {
    uf: UnionFind,
    verify: Verify,
    threshold: f64,
    stats: ClusterStats,
    sigs: Vec<Vec<u32>>,
    sets: Vec<Vec<u64>>,
}

impl Clusterer {
    /// A clusterer for `config`.
    pub fn new(config: &Config) -> Clusterer {
        Clusterer {
            uf: UnionFind::default(),
            verify: config.verify,
            threshold: config.threshold,
            stats: ClusterStats::default(),
            sigs: Vec::new(),
            sets: Vec::new(),
        }
    }

    /// Adds one bucket: documents (packed keys, ascending) that agree on one band.
    pub fn add_bucket<L: Lookup>(
        &mut self,
        members: &[u64],
        lookup: &mut L,
    ) -> Result<(), L::Error> {
        if members.len() < 2 {
            return Ok(());
        }
        self.stats.buckets += 1;
        if self.verify == Verify::Off {
            for &m in &members[1..] {
                if self.uf.union(members[0], m) {
                    self.stats.joins += 1;
                }
            }
            return Ok(());
        }
        // Signatures or shingle sets are fetched once per bucket, only when a pair
        // needs them.
        self.sigs.resize_with(members.len(), Vec::new);
        self.sets.resize_with(members.len(), Vec::new);
        let mut fetched = vec![false; members.len()];
        for j in 1..members.len() {
            for i in 0..j {
                if self.uf.find(members[i]) == self.uf.find(members[j]) {
                    continue;
                }
                for k in [i, j] {
                    if !fetched[k] {
                        match self.verify {
                            Verify::Exact => lookup.shingles(members[k], &mut self.sets[k])?,
                            _ => lookup.hashes(members[k], &mut self.sigs[k])?,
                        }
                        fetched[k] = true;
                    }
                }
                self.stats.pairs_verified += 1;
                let similarity = match self.verify {
                    Verify::Exact => exact_jaccard(&self.sets[i], &self.sets[j]),
                    _ => estimated_jaccard(&self.sigs[i], &self.sigs[j]),
                };
                if similarity >= self.threshold {
                    self.uf.union(members[i], members[j]);
                    self.stats.joins += 1;
                } else {
                    self.stats.pairs_rejected += 1;
                }
            }
        }
        Ok(())
    }

    /// Counters so far.
    pub fn stats(&self) -> &ClusterStats {
        &self.stats
    }

    /// The clusters, with one survivor each by `keep`.
    pub fn finish<L: Lookup>(mut self, keep: Keep, lookup: &mut L) -> Result<Decisions, L::Error> {
        let members = self.uf.members();
        // Group by root; members come sorted by key.
        let mut by_root: HashMap<u64, Vec<u64>> = HashMap::new();
        for &(k, root) in &members {
            by_root.entry(root).or_default().push(k);
        }
        let mut roots: Vec<u64> = by_root.keys().copied().collect();
        roots.sort_unstable();
        let mut entries = Vec::with_capacity(members.len());
        for root in roots {
            let mut group = by_root.remove(&root).unwrap_or_default();
            group.sort_unstable();
            let survivor = match keep {
                Keep::First => group[0],
                Keep::Longest | Keep::BestQualityScore => {
                    let mut best = group[0];
                    let mut best_rank = rank_of(keep, lookup.rank(best)?);
                    for &k in &group[1..] {
                        let r = rank_of(keep, lookup.rank(k)?);
                        if r > best_rank {
                            best = k;
                            best_rank = r;
                        }
                    }
                    best
                }
            };
            let size = u32::try_from(group.len()).unwrap_or(u32::MAX);
            for k in group {
                entries.push(Decision {
                    key: DocKey::unpack(k),
                    cluster: DocKey::unpack(root),
                    size,
                    survivor: k == survivor,
                });
            }
        }
        entries.sort_unstable_by_key(|d| d.key);
        Ok(Decisions {
            entries,
            stats: self.stats,
        })
    }
}

/// A rank to maximize: the length, or the quality score with NaN lowest.
fn rank_of(keep: Keep, (chars, quality): (u32, f32)) -> f64 {
    match keep {
        Keep::Longest => f64::from(chars),
        _ if quality.is_nan() => f64::NEG_INFINITY,
        _ => f64::from(quality),
    }
}

/// What clustering decided about one document in a cluster of two or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The document.
    pub key: DocKey,
    /// The cluster, named by its first member in input order.
    pub cluster: DocKey,
    /// Documents in the cluster.
    pub size: u32,
    /// True for the one document of the cluster that stays.
    pub survivor: bool,
}

/// The outcome of clustering: every document that is in a cluster of two or more,
/// sorted by key. Documents not listed are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    /// Decisions, sorted by key.
    pub entries: Vec<Decision>,
    /// Counters of the clustering.
    pub stats: ClusterStats,
}

impl Decisions {
    /// Documents that do not survive.
    pub fn removed(&self) -> usize {
        self.entries.iter().filter(|d| !d.survivor).count()
    }

    /// Clusters of two or more.
    pub fn clusters(&self) -> usize {
        self.entries.iter().filter(|d| d.key == d.cluster).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    struct Table(HashMap<u64, (Vec<u32>, u32, f32)>);

    impl Lookup for Table {
        type Error = Infallible;
        fn hashes(&mut self, key: u64, out: &mut Vec<u32>) -> Result<(), Infallible> {
            out.clone_from(&self.0[&key].0);
            Ok(())
        }
        fn shingles(&mut self, key: u64, out: &mut Vec<u64>) -> Result<(), Infallible> {
            // The signature values as a set: exact Jaccard of these small sets.
            out.clear();
            out.extend(self.0[&key].0.iter().map(|&v| u64::from(v)));
            out.sort_unstable();
            out.dedup();
            Ok(())
        }
        fn rank(&mut self, key: u64) -> Result<(u32, f32), Infallible> {
            let e = &self.0[&key];
            Ok((e.1, e.2))
        }
    }

    fn k(file: u32, record: u32) -> u64 {
        DocKey { file, record }.pack()
    }

    #[test]
    fn union_find_roots_are_first_in_input_order() {
        let mut uf = UnionFind::default();
        uf.union(k(0, 5), k(0, 9));
        uf.union(k(1, 0), k(0, 9));
        uf.union(k(0, 2), k(1, 0));
        for x in [k(0, 5), k(0, 9), k(1, 0)] {
            assert_eq!(uf.find(x), k(0, 2));
        }
        assert_eq!(uf.find(k(3, 3)), k(3, 3));
    }

    #[test]
    fn chains_join_and_survivor_rules_apply() {
        // a~b in one bucket, b~c in another: one cluster {a, b, c}.
        let mut t = Table(HashMap::new());
        t.0.insert(k(0, 0), (vec![1, 2, 3, 4], 10, 0.1));
        t.0.insert(k(0, 3), (vec![1, 2, 3, 5], 30, f32::NAN));
        t.0.insert(k(1, 1), (vec![1, 2, 6, 5], 20, 0.9));
        for (keep, survivor) in [
            (Keep::First, k(0, 0)),
            (Keep::Longest, k(0, 3)),
            (Keep::BestQualityScore, k(1, 1)),
        ] {
            let off = Config {
                verify: Verify::Off,
                ..Config::default()
            };
            let mut c = Clusterer::new(&off);
            c.add_bucket(&[k(0, 0), k(0, 3)], &mut t).unwrap();
            c.add_bucket(&[k(0, 3), k(1, 1)], &mut t).unwrap();
            let d = c.finish(keep, &mut t).unwrap();
            assert_eq!(d.entries.len(), 3);
            assert_eq!(d.clusters(), 1);
            assert_eq!(d.removed(), 2);
            let s: Vec<u64> = d
                .entries
                .iter()
                .filter(|e| e.survivor)
                .map(|e| e.key.pack())
                .collect();
            assert_eq!(s, [survivor], "{keep:?}");
            assert!(
                d.entries
                    .iter()
                    .all(|e| e.cluster.pack() == k(0, 0) && e.size == 3)
            );
        }
    }

    #[test]
    fn verification_rejects_dissimilar_candidates_in_any_order() {
        let mut t = Table(HashMap::new());
        t.0.insert(1, (vec![1, 2, 3, 4], 1, 0.0));
        t.0.insert(2, (vec![1, 2, 3, 9], 1, 0.0)); // 0.75 with 1
        t.0.insert(3, (vec![1, 7, 8, 9], 1, 0.0)); // 0.25 with 1, 0.5 with 2
        let config = Config {
            verify: Verify::Estimate,
            threshold: 0.7,
            ..Config::default()
        };
        let mut a = Clusterer::new(&config);
        a.add_bucket(&[1, 2, 3], &mut t).unwrap();
        let da = a.finish(Keep::First, &mut t).unwrap();
        let mut b = Clusterer::new(&config);
        b.add_bucket(&[2, 3], &mut t).unwrap();
        b.add_bucket(&[1, 3], &mut t).unwrap();
        b.add_bucket(&[1, 2], &mut t).unwrap();
        let db = b.finish(Keep::First, &mut t).unwrap();
        assert_eq!(da.entries, db.entries);
        let keys: Vec<u64> = da.entries.iter().map(|e| e.key.pack()).collect();
        assert_eq!(keys, [1, 2]);
        assert_eq!(da.stats.pairs_rejected, 2);
        // Exact: {1,2,3,4} vs {1,2,3,9} is 3/5 = 0.6 < 0.7, so nothing joins.
        let exact = Config {
            verify: Verify::Exact,
            ..config
        };
        let mut c = Clusterer::new(&exact);
        c.add_bucket(&[1, 2, 3], &mut t).unwrap();
        assert!(c.finish(Keep::First, &mut t).unwrap().entries.is_empty());
    }
}
