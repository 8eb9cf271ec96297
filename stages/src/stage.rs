//! The stage traits: per-document stages and batched stages, with verdicts and drop
//! reasons.

use crate::document::Document;
use std::collections::BTreeMap;
use std::fmt;

/// Why a document was dropped: a short static code such as `too_short`, counted in the
/// stage statistics and written next to dropped documents in the side output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason(&'static str);

impl Reason {
    /// A reason code. By convention lower snake case.
    pub const fn new(code: &'static str) -> Self {
        Reason(code)
    }

    /// The reason code.
    pub const fn code(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Why a rule failed, in its own numbers: the value it measured on a document against
/// the threshold it broke, such as `line punctuation ratio 0.08 < 0.12`. A stage that
/// drops a document for a rule records it with [`Failure::drop`]; the dropped document's
/// side output carries it (`drop.detail`), so a reviewer sees how far off it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// What was measured (`line punctuation ratio`, `words`).
    pub what: std::borrow::Cow<'static, str>,
    /// The value measured on the document.
    pub value: f64,
    /// How the value failed the threshold: `<`, `>` or `>=`.
    pub op: &'static str,
    /// The threshold of the rule.
    pub threshold: f64,
}

impl Measure {
    /// `Some` when `value < min`: the rule wants at least `min`.
    pub fn below(what: &'static str, value: f64, min: f64) -> Option<Measure> {
        (value < min).then_some(Measure {
            what: what.into(),
            value,
            op: "<",
            threshold: min,
        })
    }

    /// `Some` when `value > max`: the rule allows at most `max`.
    pub fn above(what: &'static str, value: f64, max: f64) -> Option<Measure> {
        (value > max).then_some(Measure {
            what: what.into(),
            value,
            op: ">",
            threshold: max,
        })
    }

    /// `Some` when `value >= limit`: the rule wants less than `limit`.
    pub fn reaches(what: &'static str, value: f64, limit: f64) -> Option<Measure> {
        (value >= limit).then_some(Measure {
            what: what.into(),
            value,
            op: ">=",
            threshold: limit,
        })
    }

    /// The same measure under another name (one made at run time, such as `top 3-gram
    /// character ratio`).
    pub fn named(self, what: String) -> Measure {
        Measure {
            what: what.into(),
            ..self
        }
    }

    /// The failure of the rule with reason `code`.
    pub fn fails(self, code: &'static str) -> Failure {
        Failure::new(Reason::new(code), Some(self.to_string()))
    }
}

impl fmt::Display for Measure {
    /// `what value op threshold`, with as many decimals as it takes to tell the value
    /// from the threshold (whole numbers without).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = 2;
        let (value, threshold) = loop {
            let (v, t) = (number(self.value, digits), number(self.threshold, digits));
            if v != t || digits >= 6 {
                break (v, t);
            }
            digits += 1;
        };
        write!(f, "{} {value} {} {threshold}", self.what, self.op)
    }
}

/// `x` with at most `digits` decimals, trailing zeros cut (`0.080` -> `0.08`, `50.0`
/// -> `50`).
fn number(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A rule that failed: its reason and, where there is one, what it saw (a [`Measure`],
/// or words such as the listed domain that blocked a URL).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The drop reason.
    pub reason: Reason,
    /// What the rule measured or found, for `drop.detail`.
    pub detail: Option<String>,
}

impl Failure {
    /// A failure with reason and detail.
    pub fn new(reason: Reason, detail: Option<String>) -> Failure {
        Failure { reason, detail }
    }

    /// Drops `doc` for this failure: records the detail on the document (for the side
    /// output of dropped documents) and returns the verdict.
    pub fn drop(self, doc: &mut Document) -> Verdict {
        doc.drop_detail = self.detail;
        Verdict::Drop(self.reason)
    }
}

/// What a stage decided about one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The document goes on to the next stage.
    Keep,
    /// The document leaves the pipeline, for this reason.
    Drop(Reason),
}

/// An error raised while processing.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// This one document could not be processed; it is dropped with reason `error`,
    /// counted, and the run goes on.
    #[error("document {id}: {message}")]
    Document {
        /// Id of the document.
        id: String,
        /// What went wrong.
        message: String,
    },
    /// The stage cannot go on (a model failed to run, a resource vanished): the run stops.
    #[error("{0}")]
    Fatal(String),
    /// A stage could not be built from its configuration.
    #[error("stage `{kind}`: {message}")]
    Config {
        /// The stage kind.
        kind: &'static str,
        /// What is wrong with the configuration.
        message: String,
    },
}

/// Per-call context handed to stages: a place for stage-specific counters that end up
/// in the stage's statistics (e.g. "documents too short to shingle").
#[derive(Debug, Default)]
pub struct StageCx {
    counters: BTreeMap<&'static str, u64>,
}

impl StageCx {
    /// Adds `n` to the counter `name`.
    pub fn count(&mut self, name: &'static str, n: u64) {
        *self.counters.entry(name).or_default() += n;
    }

    /// Takes the counters collected so far, leaving the context empty.
    pub fn take_counters(&mut self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut self.counters)
    }
}

/// A stage that looks at one document at a time. Runs on the worker threads in
/// parallel, so it must not depend on the order documents arrive in.
pub trait Stage: Send + Sync {
    /// Processes one document in place and says whether it stays.
    fn process(&self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError>;

    /// True when the stage reads `Document::raw` (the undecoded payload) itself. When no
    /// stage of a pipeline does, the executor decodes raw payloads into text before the
    /// first stage.
    fn reads_raw(&self) -> bool {
        false
    }
}

/// A stage that processes a batch of documents at once (model inference benefits from
/// batching). Runs on the worker threads, one batch per call.
pub trait BatchStage: Send + Sync {
    /// Processes `docs` in place and writes one verdict per document into `verdicts`
    /// (same length as `docs`, pre-filled with [`Verdict::Keep`]).
    fn process_batch(
        &self,
        docs: &mut [Document],
        verdicts: &mut [Verdict],
        cx: &mut StageCx,
    ) -> Result<(), StageError>;

    /// True when the stage reads values derived from the text and cached on the
    /// document ([`Document::features`]): the executor drops the cache after the last
    /// stage that does, so that batches waiting to be written do not hold it.
    fn uses_derived(&self) -> bool {
        false
    }
}

/// A stage that must see documents in input order, such as exact dedup (the first
/// occurrence wins). The executor runs it on one thread, over the documents of all of a
/// task's shards in input order, so its decisions do not depend on the thread count.
///
/// Its state must survive a resumed run: [`OrderedStage::checkpoint`] is taken when a
/// shard has passed the stage and persisted with that shard's outputs;
/// [`OrderedStage::restore`] replays the checkpoints of completed shards.
pub trait OrderedStage: Send {
    /// Decides about one document, in input order.
    fn process(&mut self, doc: &mut Document, cx: &mut StageCx) -> Result<Verdict, StageError>;

    /// The state added since the previous checkpoint, as bytes to persist.
    fn checkpoint(&mut self) -> Vec<u8>;

    /// Adds a persisted checkpoint back into the state.
    fn restore(&mut self, checkpoint: &[u8]) -> Result<(), StageError>;
}

/// An ordered stage with an optional parallel part that prepares documents for it (for
/// exact dedup: computing the content hash) on the worker threads.
pub struct Ordered {
    /// Runs on the workers before the ordered part, in parallel.
    pub prepare: Option<Box<dyn Stage>>,
    /// Runs in input order on one thread.
    pub stage: std::sync::Mutex<Box<dyn OrderedStage>>,
}

/// A built stage of any shape.
pub enum AnyStage {
    /// A per-document stage.
    Doc(Box<dyn Stage>),
    /// A batched stage.
    Batch(Box<dyn BatchStage>),
    /// A stage that sees documents in input order.
    Ordered(Ordered),
}

impl AnyStage {
    /// True for stages that see documents in input order.
    pub fn is_ordered(&self) -> bool {
        matches!(self, AnyStage::Ordered(_))
    }

    /// The per-document stage, if this is one.
    pub fn as_doc(&self) -> Option<&dyn Stage> {
        match self {
            AnyStage::Doc(s) => Some(s.as_ref()),
            _ => None,
        }
    }

    /// True when the stage reads values cached on the document
    /// ([`BatchStage::uses_derived`]).
    pub fn uses_derived(&self) -> bool {
        match self {
            AnyStage::Batch(s) => s.uses_derived(),
            _ => false,
        }
    }

    /// True when the stage reads raw payloads itself.
    pub fn reads_raw(&self) -> bool {
        match self {
            AnyStage::Doc(s) => s.reads_raw(),
            _ => false,
        }
    }

    /// Runs the stage's parallel part over `docs`, writing verdicts: the whole stage for
    /// per-document and batched stages, the `prepare` part of an ordered one.
    /// Per-document errors become drops with reason `error` (counted under the `errors`
    /// counter); fatal errors stop.
    pub fn run(
        &self,
        docs: &mut [Document],
        verdicts: &mut [Verdict],
        cx: &mut StageCx,
    ) -> Result<(), StageError> {
        match self {
            AnyStage::Doc(stage) => run_each(docs, verdicts, cx, |d, cx| stage.process(d, cx)),
            AnyStage::Batch(stage) => stage.process_batch(docs, verdicts, cx),
            AnyStage::Ordered(o) => match &o.prepare {
                Some(stage) => run_each(docs, verdicts, cx, |d, cx| stage.process(d, cx)),
                None => Ok(()),
            },
        }
    }

    /// Runs the ordered part of an ordered stage over `docs` (which must come in input
    /// order); does nothing for other stages.
    pub fn run_ordered(
        &self,
        docs: &mut [Document],
        verdicts: &mut [Verdict],
        cx: &mut StageCx,
    ) -> Result<(), StageError> {
        let AnyStage::Ordered(o) = self else {
            return Ok(());
        };
        let mut stage = o
            .stage
            .lock()
            .map_err(|_| StageError::Fatal("an ordered stage panicked earlier".into()))?;
        run_each(docs, verdicts, cx, |d, cx| stage.process(d, cx))
    }

    /// Takes a checkpoint of an ordered stage; `None` for other stages.
    pub fn checkpoint(&self) -> Option<Vec<u8>> {
        let AnyStage::Ordered(o) = self else {
            return None;
        };
        o.stage.lock().ok().map(|mut s| s.checkpoint())
    }

    /// Restores a checkpoint into an ordered stage; does nothing for other stages.
    pub fn restore(&self, checkpoint: &[u8]) -> Result<(), StageError> {
        let AnyStage::Ordered(o) = self else {
            return Ok(());
        };
        o.stage
            .lock()
            .map_err(|_| StageError::Fatal("an ordered stage panicked earlier".into()))?
            .restore(checkpoint)
    }
}

/// Applies a per-document function to every document still undecided, turning
/// per-document errors into `error` drops.
fn run_each(
    docs: &mut [Document],
    verdicts: &mut [Verdict],
    cx: &mut StageCx,
    mut f: impl FnMut(&mut Document, &mut StageCx) -> Result<Verdict, StageError>,
) -> Result<(), StageError> {
    for (doc, verdict) in docs.iter_mut().zip(verdicts.iter_mut()) {
        *verdict = match f(doc, cx) {
            Ok(v) => v,
            Err(StageError::Document { .. }) => {
                cx.count("errors", 1);
                Verdict::Drop(ERROR)
            }
            Err(e) => return Err(e),
        };
    }
    Ok(())
}

/// Drop reason used when a stage failed on one document.
pub const ERROR: Reason = Reason::new("error");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measure_reads_as_value_against_threshold() {
        let m = Measure::below("line punctuation ratio", 0.08, 0.12).unwrap();
        assert_eq!(m.to_string(), "line punctuation ratio 0.08 < 0.12");
        assert!(Measure::below("x", 0.12, 0.12).is_none());
        assert_eq!(
            Measure::above("words", 100_001.0, 100_000.0)
                .unwrap()
                .to_string(),
            "words 100001 > 100000"
        );
        // Enough decimals to tell a value just under the threshold from it.
        let m = Measure::below("alphabetic word ratio", 0.7998, 0.8).unwrap();
        assert_eq!(m.to_string(), "alphabetic word ratio 0.7998 < 0.8");
        let m = Measure::reaches("safety score", 0.5, 0.5).unwrap();
        assert_eq!(m.to_string(), "safety score 0.5 >= 0.5");
        let mut doc = Document::new("d", "s", "t");
        let v = m.fails("unsafe_model").drop(&mut doc);
        assert_eq!(v, Verdict::Drop(Reason::new("unsafe_model")));
        assert_eq!(doc.drop_detail.as_deref(), Some("safety score 0.5 >= 0.5"));
    }
}
