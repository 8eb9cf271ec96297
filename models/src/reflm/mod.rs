//! The reference language model: Qwen's architecture at a size that trains on a laptop,
//! used to judge data by the validation perplexity of a model trained on it (as DCLM and
//! FineWeb judge data with small models).
//!
//! - [`config`]: `[model]` / `[train]` TOML and the Hugging Face `config.json`.
//! - [`model`]: the decoder (`Qwen2ForCausalLM` weight names), with NTK-aware RoPE and
//!   LogN attention scaling for contexts beyond the training length.
//! - [`train`]: AdamW, warm-up and cosine decay, clipping, evaluation, checkpoints as
//!   safetensors that resume exactly.
//!
//! ```no_run
//! use corpus_models::reflm::{config::RefConfig, train::{TokenStream, TrainOptions, train}};
//! let cfg = RefConfig::from_toml(
//!     "[model]\nlayers = 2\nhidden = 64\nheads = 4\ncontext = 64\n", "inline")?;
//! let data = TokenStream { tokens: (0..10_000u32).map(|i| i % 97).collect() };
//! let opts = TrainOptions {
//!     vocab: 100, eot: 99, device: corpus_models::reflm::Device::Cpu,
//!     data_fingerprint: "demo".into(), stop_after: None, verbose: false,
//!     peak_flops: None,
//! };
//! let summary = train(&cfg, &data, Some(&data), std::path::Path::new("out/ref"), &opts)?;
//! println!("validation perplexity {:?}", summary.val_perplexity);
//! # Ok::<(), corpus_models::reflm::RefError>(())
//! ```

pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod head;
pub mod model;
pub mod ops;
pub mod perf;
pub use crate::rng;
pub mod train;

use std::path::Path;

pub use candle_core;
pub use candle_core::Device;

/// The device named on a command line: `cpu`, `cuda` (= `cuda:0`) or `cuda:N`. A CUDA
/// device needs a build with the `cuda` feature and an NVIDIA driver; the error says
/// which is missing (or how many devices there are, for an `N` out of range).
pub fn device(name: &str) -> Result<Device> {
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        n => match n.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => i,
            Some(Err(_)) => {
                return Err(RefError::Device(format!(
                    "--device {n}: expected cuda:N with N a device number (cuda:0, cuda:1, ...)"
                )));
            }
            None => {
                return Err(RefError::Device(format!(
                    "--device {n}: expected cpu, cuda or cuda:N"
                )));
            }
        },
    };
    cuda_device(name, ordinal)
}

#[cfg(feature = "cuda")]
fn cuda_device(name: &str, ordinal: usize) -> Result<Device> {
    cuda::open(name, ordinal).map_err(RefError::Device)
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(name: &str, _ordinal: usize) -> Result<Device> {
    Err(RefError::Device(format!(
        "--device {name}: this build has no CUDA support (build with `--features cuda`, see docs/cuda.md)"
    )))
}

/// Whether this build has the CUDA backend (the `cuda` feature).
pub const CUDA_BUILD: bool = cfg!(feature = "cuda");

/// Errors of the reference model.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A config is invalid.
    #[error("{what}: {message}")]
    Config {
        /// The config file.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint is missing, damaged or does not fit the config.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A training directory cannot be resumed.
    #[error("resume: {0}")]
    Resume(String),
    /// The token data does not fit.
    #[error("data: {0}")]
    Data(String),
    /// The device cannot be used.
    #[error("{0}")]
    Device(String),
    /// Training failed.
    #[error("training: {0}")]
    Training(String),
}

impl RefError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        RefError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Result with [`RefError`].
pub type Result<T> = std::result::Result<T, RefError>;
