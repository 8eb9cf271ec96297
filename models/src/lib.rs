//! Learned components of `corpus`: the ONNX scorer runtime, tokenizer vocabularies and
//! the Candle reference language model, with small model files under `models/assets/`
//! and the recipes that build them.
//!
//! Nothing here yet: the crate exists so that the dependency direction
//! `models` <- `stages` <- `pipeline` holds from the start.
#![deny(missing_docs)]
