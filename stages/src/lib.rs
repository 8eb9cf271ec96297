//! What happens to one document: the [`Document`] type, the stage traits and one module
//! per stage.
//!
//! A pipeline is a list of stages. Each stage is configured by a TOML table whose `kind`
//! names the stage; [`StageConfig`] is the tagged enum of all of them, so an unknown kind
//! or an unknown field is an error that names it.
//!
//! ```
//! use corpus_stages::{build_stage, Document, StageConfig, StageCx, Verdict};
//!
//! let config: StageConfig = toml::from_str("kind = \"length\"\nmin_chars = 5").unwrap();
//! let stage = build_stage(&config).unwrap();
//! let mut doc = Document::new("doc-1", "web", "hi");
//! let mut cx = StageCx::default();
//! let verdict = stage.as_doc().unwrap().process(&mut doc, &mut cx).unwrap();
//! assert_eq!(verdict, Verdict::Drop(corpus_stages::Reason::new("too_short")));
//! ```
#![deny(missing_docs)]

pub mod catalog;
pub mod classifier;
pub mod config;
pub mod decontam;
pub mod document;
pub mod exact_dedup;
pub mod extract;
pub mod langid;
pub mod length;
pub mod minhash;
pub mod ngram;
pub mod normalize;
pub mod quality;
pub mod safety;
pub mod stage;
pub mod tokenize;
pub mod upsample;

pub use catalog::{FieldDoc, StageInfo, catalog};
pub use config::{StageConfig, build_stage, fingerprint};
pub use document::{Document, Meta, Origin, Scores};
pub use stage::{
    AnyStage, BatchStage, Failure, Measure, Ordered, OrderedStage, Reason, Stage, StageCx,
    StageError, Verdict,
};
