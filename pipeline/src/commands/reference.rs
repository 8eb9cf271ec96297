//! `corpus ref train|eval`: the reference model (models/src/reflm) on token shards made by
//! `corpus tokens pack` (or a run's `[tokenize]` step).
//!
//! A split is read as one token stream: the shards' sequences in order, without the
//! `<|endoftext|>` padding of the last one. The vocabulary size comes from the manifest
//! unless the config sets one.

use super::export::read_batches;
use super::pack::{self, Manifest};
use super::tokens::TokensError;
use arrow::array::AsArray;
use arrow::datatypes::UInt32Type;
use corpus_models::reflm::RefError;
use corpus_models::reflm::config::RefConfig;
use corpus_models::reflm::model::LongContext;
use corpus_models::reflm::train::{self, TokenStream, TrainOptions, TrainSummary};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Errors of `corpus ref`.
#[derive(Debug, thiserror::Error)]
pub enum RefCmdError {
    /// Reading shards failed.
    #[error(transparent)]
    Shards(#[from] TokensError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] RefError),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl RefCmdError {
    /// True for errors of the command line, config or device rather than of a run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RefCmdError::Usage(_)
                | RefCmdError::Model(RefError::Config { .. } | RefError::Device(_))
        )
    }
}

/// What `corpus ref train` prints after training into `out`: throughput (with MFU
/// where the peak is known, GPU memory where there is one) and the result.
pub fn train_summary_text(s: &TrainSummary, out: &Path) -> String {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut perf = format!(
        "{}, {}: {:.0} tokens/s in optimizer steps, {:.3} TFLOP/s of model FLOPs",
        s.device,
        s.precision,
        s.step_tokens_per_second,
        s.flops_per_token * s.step_tokens_per_second / 1e12
    );
    match s.mfu {
        Some(m) => perf += &format!(", MFU {:.1}%", m * 100.0),
        None if s.device != "cpu" => perf += " (for MFU give --peak-tflops)",
        None => {}
    }
    if let (Some(p), Some(t)) = (s.gpu_memory_peak_bytes, s.gpu_memory_total_bytes) {
        perf += &format!("; GPU memory peak {:.2} of {:.2} GiB", gib(p), gib(t));
    }
    format!(
        "{perf}\ntrained {} steps ({} tokens, {:.0} tokens/s): validation perplexity {} (unigram baseline {}); summary in {}\n",
        s.steps,
        s.tokens,
        s.tokens_per_second,
        s.val_perplexity.map_or("-".into(), |p| format!("{p:.2}")),
        s.unigram_perplexity
            .map_or("-".into(), |p| format!("{p:.2}")),
        out.join("summary.json").display()
    )
}

/// A split of a shard directory as one token stream, with the manifest.
pub fn load_split(dir: &Path, split: &str) -> Result<(TokenStream, Manifest), RefCmdError> {
    let m = pack::read_manifest(dir)?;
    let info = m.split(dir, split).map_err(RefCmdError::Usage)?;
    let total = (info.tokens + info.eot_tokens) as usize;
    let mut tokens = Vec::with_capacity(total);
    for shard in pack::shard_paths(dir, &m, split) {
        for b in read_batches(&shard)? {
            let col = b
                .column_by_name("tokens")
                .ok_or_else(|| TokensError::file(&shard, "no column `tokens`".to_string()))?;
            let values = col
                .as_fixed_size_list()
                .values()
                .as_primitive::<UInt32Type>();
            let room = total - tokens.len();
            let vals = values.values();
            tokens.extend_from_slice(&vals[..vals.len().min(room)]);
        }
    }
    if tokens.len() != total {
        return Err(TokensError::file(
            dir,
            format!(
                "the shards of `{split}` hold {} tokens, the manifest says {total}",
                tokens.len()
            ),
        )
        .into());
    }
    Ok((TokenStream { tokens }, m))
}

fn manifest_fingerprint(dir: &Path, split: &str) -> Result<String, RefCmdError> {
    let p = dir.join(pack::MANIFEST);
    let bytes = std::fs::read(&p).map_err(|source| RefCmdError::Io { path: p, source })?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(format!(
        "{split}:{:016x}",
        corpus_stages::fingerprint(&text)
    ))
}

/// Options of `corpus ref train`.
pub struct TrainArgs {
    /// Shard directory (`train` split for training).
    pub shards: PathBuf,
    /// Shard directory whose `validation` split is used (default: `shards`).
    pub val_shards: Option<PathBuf>,
    /// Config file.
    pub config: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Device name.
    pub device: String,
    /// Stop after this step (tests of resumption).
    pub stop_after: Option<u64>,
    /// Progress lines.
    pub verbose: bool,
    /// Dense peak TFLOP/s of the device for MFU (None: known GPUs by name).
    pub peak_tflops: Option<f64>,
}

/// Reads the config file.
pub fn read_config(path: &Path) -> Result<RefConfig, RefCmdError> {
    let text = std::fs::read_to_string(path).map_err(|source| RefCmdError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(RefConfig::from_toml(&text, &path.display().to_string())?)
}

/// `corpus ref train`: trains and writes `summary.json` beside the checkpoints.
pub fn train_cmd(args: &TrainArgs) -> Result<TrainSummary, RefCmdError> {
    let cfg = read_config(&args.config)?;
    let device = corpus_models::reflm::device(&args.device)?;
    train::check_device(&cfg, &device)?;
    let (train_stream, m) = load_split(&args.shards, "train")?;
    let val_dir = args.val_shards.as_deref().unwrap_or(&args.shards);
    let (val_stream, vm) = load_split(val_dir, "validation")?;
    if vm.tokenizer.hash != m.tokenizer.hash {
        return Err(RefCmdError::Usage(format!(
            "{} and {} were tokenized with different vocabularies",
            args.shards.display(),
            val_dir.display()
        )));
    }
    let vocab = if cfg.model.vocab > 0 {
        cfg.model.vocab
    } else {
        m.tokenizer.vocab_size
    };
    let opts = TrainOptions {
        vocab,
        eot: m.tokenizer.eot_id,
        device,
        data_fingerprint: manifest_fingerprint(&args.shards, "train")?,
        stop_after: args.stop_after,
        verbose: args.verbose,
        peak_flops: args.peak_tflops.map(|t| t * 1e12),
    };
    let summary = train::train(&cfg, &train_stream, Some(&val_stream), &args.out, &opts)?;
    let p = args.out.join("summary.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&summary).expect("summary serializes"),
    )
    .map_err(|source| RefCmdError::Io { path: p, source })?;
    Ok(summary)
}

/// Options of `corpus ref eval`.
pub struct EvalArgs {
    /// Shard directory.
    pub shards: PathBuf,
    /// Split to score.
    pub split: String,
    /// Checkpoint or training directory.
    pub checkpoint: PathBuf,
    /// Context length (0: the training context).
    pub context: usize,
    /// NTK-aware RoPE.
    pub ntk: bool,
    /// LogN attention scaling.
    pub logn: bool,
    /// At most this many windows (0: all).
    pub max_windows: usize,
    /// Windows per forward pass.
    pub batch: usize,
    /// Device name.
    pub device: String,
}

/// What `corpus ref eval` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Checkpoint evaluated.
    pub checkpoint: String,
    /// Steps it was trained for.
    pub step: u64,
    /// Shard directory and split.
    pub shards: String,
    /// Split scored.
    pub split: String,
    /// Context of the windows scored.
    pub context: usize,
    /// Context the model was trained at.
    pub train_context: usize,
    /// NTK-aware RoPE on.
    pub ntk: bool,
    /// LogN scaling on.
    pub logn: bool,
    /// Windows scored.
    pub windows: usize,
    /// Target tokens scored.
    pub tokens: u64,
    /// Mean next-token loss (nats).
    pub loss: f64,
    /// exp(loss).
    pub perplexity: f64,
    /// Tokens scored per second.
    pub tokens_per_second: f64,
}

/// `corpus ref eval`.
pub fn eval_cmd(args: &EvalArgs) -> Result<EvalReport, RefCmdError> {
    let device = corpus_models::reflm::device(&args.device)?;
    let loaded = train::load(&args.checkpoint, &device)?;
    let (stream, m) = load_split(&args.shards, &args.split)?;
    if m.tokenizer.vocab_size > loaded.model.vocab() {
        return Err(RefCmdError::Usage(format!(
            "{}: vocabulary of {} ids, the model has {}",
            args.shards.display(),
            m.tokenizer.vocab_size,
            loaded.model.vocab()
        )));
    }
    let train_ctx = loaded.config.model.context;
    let context = if args.context == 0 {
        train_ctx
    } else {
        args.context
    };
    let started = Instant::now();
    let (loss, tokens) = train::evaluate(
        &loaded.model,
        &stream,
        context,
        args.max_windows,
        args.batch,
        loaded.config.train.loss_chunk_tokens,
        LongContext {
            ntk: args.ntk,
            logn: args.logn,
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    Ok(EvalReport {
        checkpoint: train::resolve_checkpoint(&args.checkpoint)?
            .display()
            .to_string(),
        step: loaded.step,
        shards: args.shards.display().to_string(),
        split: args.split.clone(),
        context,
        train_context: train_ctx,
        ntk: args.ntk,
        logn: args.logn,
        windows: (tokens / context as u64) as usize,
        tokens,
        loss,
        perplexity: loss.exp(),
        tokens_per_second: tokens as f64 / secs.max(1e-9),
    })
}
