//! The `minhash_dedup` stage: applies the cluster pass's decisions to documents read
//! again from the same inputs, finding each by its [`Origin`](crate::Origin).

use super::cluster::Decision;
use super::files::{self, names};
use super::{Action, Config, KIND};
use crate::document::Document;
use crate::stage::{Failure, Reason, Stage, StageCx, StageError, Verdict};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The document is a near-duplicate of the survivor of its cluster.
pub const NEAR_DUPLICATE: Reason = Reason::new("near_duplicate");

/// With `method = "exact"`: the document's dedup key was seen earlier.
pub const DUPLICATE: Reason = Reason::new("duplicate");

/// The stage. Decision files are loaded per input file on first use.
pub struct Filter {
    config: Config,
    loaded: Mutex<HashMap<u32, Arc<HashMap<u32, Decision>>>>,
}

/// Builds the stage; fails when the cluster pass has not finished in `work_dir`.
pub fn build(config: &Config) -> Result<Filter, StageError> {
    let invalid = |message: String| StageError::Config {
        kind: KIND,
        message,
    };
    config.validate().map_err(invalid)?;
    if config.work_dir.as_os_str().is_empty() {
        return Err(invalid("work_dir is required".into()));
    }
    let summary = names::cluster_summary(&config.work_dir);
    if !summary.exists() {
        return Err(invalid(format!(
            "{} is missing: run the cluster pass (`corpus dedup cluster`) first",
            summary.display()
        )));
    }
    Ok(Filter {
        config: config.clone(),
        loaded: Mutex::new(HashMap::new()),
    })
}

impl Filter {
    fn decisions(&self, file: u32) -> Result<Arc<HashMap<u32, Decision>>, StageError> {
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| StageError::Fatal("minhash_dedup: a worker panicked".into()))?;
        if let Some(d) = loaded.get(&file) {
            return Ok(d.clone());
        }
        let path = names::decisions(&self.config.work_dir, file);
        let bytes = std::fs::read(&path).map_err(|e| {
            StageError::Fatal(format!(
                "{}: {e} (is this input list the one the signature pass read?)",
                path.display()
            ))
        })?;
        let (_, entries) = files::decode_decisions(&self.config, &bytes, &path)
            .map_err(|e| StageError::Fatal(e.to_string()))?;
        let map: Arc<HashMap<u32, Decision>> =
            Arc::new(entries.into_iter().map(|d| (d.key.record, d)).collect());
        loaded.insert(file, map.clone());
        Ok(map)
    }
}

impl Stage for Filter {
    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError> {
        if let Some(key) = self.config.method.exact_key() {
            // `exact_dedup` cut into passes writes what the stage writes in one process.
            crate::exact_dedup::stamp_content_hash(key, doc);
        }
        let Some(origin) = doc.origin else {
            return Err(StageError::Fatal(format!(
                "minhash_dedup: document {} has no input position; it must be read from the \
                 inputs of the signature pass",
                doc.id
            )));
        };
        let decisions = self.decisions(origin.file)?;
        let Some(d) = decisions.get(&origin.record) else {
            return Ok(Verdict::Keep);
        };
        match self.config.action {
            Action::Drop if d.survivor => {
                // Exact dedup counts no survivors: its passes report what the
                // `exact_dedup` stage reports in one process.
                if self.config.method == super::Method::Minhash {
                    cx.count("survivors", 1);
                }
                Ok(Verdict::Keep)
            }
            // Exact dedup through the passes drops as the stage does in one process,
            // with nothing more.
            Action::Drop if self.config.method != super::Method::Minhash => {
                Ok(Verdict::Drop(DUPLICATE))
            }
            Action::Drop => {
                // The cluster is named by its first member in input order, the survivor
                // under `keep = "first"`.
                let survivor = match self.config.keep {
                    super::Keep::First => format!("survivor {}", d.cluster),
                    super::Keep::Longest => "survivor: its longest document".into(),
                    super::Keep::BestQualityScore => {
                        "survivor: its document of best quality score".into()
                    }
                };
                let detail = format!(
                    "cluster {} of {} documents, {survivor} (input file:document)",
                    d.cluster, d.size
                );
                // The dropped document carries its cluster as annotate mode writes it.
                doc.meta.extra.insert("minhash".into(), cluster_info(d));
                Ok(Failure::new(NEAR_DUPLICATE, Some(detail)).drop(doc))
            }
            Action::Annotate => {
                cx.count(
                    if d.survivor {
                        "survivors"
                    } else {
                        "near_duplicates"
                    },
                    1,
                );
                doc.meta.extra.insert("minhash".into(), cluster_info(d));
                Ok(Verdict::Keep)
            }
        }
    }
}

/// A document's cluster as `meta.extra.minhash` holds it: the cluster (named by its
/// first member, `file:document`), its size, and whether this document survives.
fn cluster_info(d: &Decision) -> serde_json::Value {
    serde_json::json!({
        "cluster": d.cluster.to_string(),
        "size": d.size,
        "survivor": d.survivor,
    })
}
