//! `corpus`: turn raw web crawls into a clean, deduplicated, tokenized pretraining corpus.
//!
//! This crate is the pipeline: the [`plan`] cuts a config's stages at their barriers
//! (exact and MinHash dedup, tokenize) into passes; [`source`]s read input files (WARC,
//! JSONL, Parquet) as streams of [`Document`](corpus_stages::Document)s, the [`executor`]
//! runs a pass's stages over them on worker threads and commits results in input order
//! to [`sink`]s, one output shard per input file, with [`stats`] and completion markers
//! for resume.
//! The `corpus` binary is a thin clap layer over [`run`](plan::run).
//!
//! ```no_run
//! use corpus::config::PipelineConfig;
//! let config = PipelineConfig::load(std::path::Path::new("configs/default.toml"), &[]).unwrap();
//! let summary = corpus::plan::run(&config, &corpus::executor::RunOptions::default()).unwrap();
//! println!("{} documents written", summary.stats.docs_out);
//! ```
#![deny(missing_docs)]

pub mod commands;
pub mod config;
pub mod executor;
pub mod extract_cmd;
pub mod fuzzy;
pub mod html;
pub mod io;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod remote;
pub mod report;
pub mod shard;
pub mod sink;
pub mod source;
pub mod stats;
#[cfg(test)]
mod testing;

pub use corpus_stages as stages;
