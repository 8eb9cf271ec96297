//! Learned components of `corpus`: the ONNX scorer runtime, tokenizer vocabularies and
//! the Candle reference language model, with small model files under `models/assets/`
//! and the recipes that build them.
//!
//! [`tokenizer`]: byte-level BPE with tiktoken-format vocabularies (cl100k_base built in,
//! Qwen's `qwen.tiktoken` or any other file by path); [`vocab_build`], which extends
//! cl100k_base into a Qwen-style vocabulary; [`reflm`]: the Candle reference language model
//! (Qwen architecture) that judges data by validation perplexity.
#![deny(missing_docs)]

pub mod features;
pub mod io;
pub mod reflm;
pub mod rng;
pub mod scorer;
pub mod tokenizer;
pub mod vocab_build;
