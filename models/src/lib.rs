//! Learned components of `corpus`: the ONNX scorer runtime, tokenizer vocabularies and
//! the Candle reference language model, with small model files under `models/assets/`
//! and the recipes that build them.
//!
//! [`tokenizer`]: byte-level BPE with tiktoken-format vocabularies (cl100k_base built in,
//! Qwen's `qwen.tiktoken` or any other file by path).
#![deny(missing_docs)]

pub mod tokenizer;
