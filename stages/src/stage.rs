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
    /// The stage kind, as written in configs and statistics.
    fn name(&self) -> &'static str;

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
    /// The stage kind, as written in configs and statistics.
    fn name(&self) -> &'static str;

    /// Processes `docs` in place and writes one verdict per document into `verdicts`
    /// (same length as `docs`, pre-filled with [`Verdict::Keep`]).
    fn process_batch(
        &self,
        docs: &mut [Document],
        verdicts: &mut [Verdict],
        cx: &mut StageCx,
    ) -> Result<(), StageError>;
}

/// A built stage of either shape.
pub enum AnyStage {
    /// A per-document stage.
    Doc(Box<dyn Stage>),
    /// A batched stage.
    Batch(Box<dyn BatchStage>),
}

impl AnyStage {
    /// The stage kind.
    pub fn name(&self) -> &'static str {
        match self {
            AnyStage::Doc(s) => s.name(),
            AnyStage::Batch(s) => s.name(),
        }
    }

    /// The per-document stage, if this is one.
    pub fn as_doc(&self) -> Option<&dyn Stage> {
        match self {
            AnyStage::Doc(s) => Some(s.as_ref()),
            AnyStage::Batch(_) => None,
        }
    }

    /// True when the stage reads raw payloads itself.
    pub fn reads_raw(&self) -> bool {
        match self {
            AnyStage::Doc(s) => s.reads_raw(),
            AnyStage::Batch(_) => false,
        }
    }

    /// Runs the stage over `docs`, writing verdicts. Per-document errors become drops
    /// with reason `error` (counted under the `errors` counter); fatal errors stop.
    pub fn run(
        &self,
        docs: &mut [Document],
        verdicts: &mut [Verdict],
        cx: &mut StageCx,
    ) -> Result<(), StageError> {
        match self {
            AnyStage::Doc(stage) => {
                for (doc, verdict) in docs.iter_mut().zip(verdicts.iter_mut()) {
                    *verdict = match stage.process(doc, cx) {
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
            AnyStage::Batch(stage) => stage.process_batch(docs, verdicts, cx),
        }
    }
}

/// Drop reason used when a stage failed on one document.
pub const ERROR: Reason = Reason::new("error");
