//! Training and evaluation: next-token loss over windows of a token stream, AdamW, warm-up
//! and cosine decay, global-norm clipping, periodic validation, checkpoints that resume
//! exactly.
//!
//! Data: the packed sequences of a split, concatenated in order, form one token stream
//! (documents are already separated by `<|endoftext|>`). A training window is
//! `context + 1` consecutive tokens starting at a multiple of `context`; each epoch visits
//! the windows in a SplitMix64 permutation seeded by `(seed, epoch)`, so the batch of any
//! step is a function of the seed and the step alone, and a resumed run reads what the
//! uninterrupted run would have read.
//!
//! The final hidden states are cut from the graph; the output projection and loss give
//! the loss, the projection's gradient and the hidden states' gradient `dL/dhidden`, and
//! the body then gets its gradient from the surrogate `sum(hidden * dL/dhidden)`. On the
//! CPU the head is the fused kernel of [`super::head`] (never materialises the logits);
//! on other devices it runs on tensors `loss_chunk_tokens` at a time, so memory for
//! logits is `chunk x vocab` floats whatever the batch. Either way the gradients are
//! those of the whole loss.

use candle_core::{DType, Device, Storage, Tensor, Var, WithDType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::config::{HfConfig, Precision, RefConfig};
use super::head::Head;
use super::model::{LongContext, Qwen2, cross_entropy, cross_entropy_sum};
use super::rng::SplitMix64;
use super::{RefError, Result};

/// A split as one stream of token ids.
#[derive(Debug, Clone, Default)]
pub struct TokenStream {
    /// Token ids in order.
    pub tokens: Vec<u32>,
}

impl TokenStream {
    /// Windows of `context + 1` tokens at stride `context`.
    pub fn windows(&self, context: usize) -> usize {
        if self.tokens.len() < context + 1 {
            0
        } else {
            (self.tokens.len() - 1) / context
        }
    }

    /// Window `i`: inputs and next-token targets, `context` tokens each.
    pub fn window(&self, context: usize, i: usize) -> (&[u32], &[u32]) {
        let s = i * context;
        (
            &self.tokens[s..s + context],
            &self.tokens[s + 1..s + context + 1],
        )
    }
}

/// What a training run is given besides the config.
pub struct TrainOptions {
    /// Vocabulary size (ids must be below it).
    pub vocab: usize,
    /// `<|endoftext|>` id (written to config.json).
    pub eot: u32,
    /// Device to train on.
    pub device: Device,
    /// Fingerprint of the training data (e.g. the shard manifest's hash); a resume over
    /// other data is refused.
    pub data_fingerprint: String,
    /// Stop (with a checkpoint) after this step even if the schedule goes on; for tests
    /// of resumption.
    pub stop_after: Option<u64>,
    /// Print progress lines to stderr.
    pub verbose: bool,
    /// Dense peak FLOP/s of the device for the MFU in the summary; None: looked up by
    /// the device's name for known GPUs ([`super::perf::peak_flops`]).
    pub peak_flops: Option<f64>,
}

/// One row of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Optimizer step (1-based: after this many updates).
    pub step: u64,
    /// Mean training loss of the step's tokens.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Training tokens seen so far.
    pub tokens: u64,
    /// Validation loss, on evaluation steps.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_loss: Option<f64>,
}

/// Result of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Steps done (in total, across resumptions).
    pub steps: u64,
    /// Training tokens seen.
    pub tokens: u64,
    /// Parameters.
    pub parameters: usize,
    /// Final training loss (last step).
    pub train_loss: f64,
    /// Final validation loss, if a validation stream was given.
    pub val_loss: Option<f64>,
    /// exp(val_loss).
    pub val_perplexity: Option<f64>,
    /// Perplexity of a unigram model of the training tokens (add-one smoothing) on the
    /// same validation windows.
    pub unigram_perplexity: Option<f64>,
    /// Training tokens per second in this process (resumed steps only), evaluation and
    /// checkpoints included.
    pub tokens_per_second: f64,
    /// Training tokens per second of the optimizer steps alone (without evaluation and
    /// checkpoints): the throughput MFU is computed from.
    #[serde(default)]
    pub step_tokens_per_second: f64,
    /// Device trained on (`cpu`, `cuda:0 (NVIDIA H100 80GB HBM3)`).
    #[serde(default)]
    pub device: String,
    /// Precision of the matrix products (`f32` or `bf16`).
    #[serde(default)]
    pub precision: String,
    /// Model FLOPs per training token ([`super::perf::flops_per_token`]).
    #[serde(default)]
    pub flops_per_token: f64,
    /// Dense peak FLOP/s assumed for MFU (given, or known for the device), if any.
    #[serde(default)]
    pub peak_flops: Option<f64>,
    /// Model FLOPs utilization: `flops_per_token * step_tokens_per_second / peak_flops`.
    #[serde(default)]
    pub mfu: Option<f64>,
    /// On a GPU: the most device memory in use (as the driver reports it: all processes,
    /// and memory the allocator keeps for reuse), sampled after every backward pass and
    /// optimizer step.
    #[serde(default)]
    pub gpu_memory_peak_bytes: Option<u64>,
    /// On a GPU: the device's memory.
    #[serde(default)]
    pub gpu_memory_total_bytes: Option<u64>,
    /// Checkpoint directory of the final step.
    pub checkpoint: PathBuf,
    /// Step this process started from (0 when not resumed).
    pub resumed_from: u64,
}

/// Trainer state saved with each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    format_version: u32,
    step: u64,
    tokens: u64,
    vocab: usize,
    eot: u32,
    config: RefConfig,
    data_fingerprint: String,
}

const STATE_VERSION: u32 = 1;
/// File naming the latest complete checkpoint of a training output directory.
pub const LATEST: &str = "latest";

/// AdamW with decoupled weight decay (PyTorch's formulation), state kept per parameter
/// so checkpoints can restore it exactly. On the CPU the moments live in plain vectors and
/// each parameter is updated in one fused pass ([`super::ops::adamw_update`]); elsewhere
/// with tensor operations.
struct AdamW {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    mc: Vec<Vec<f32>>,
    vc: Vec<Vec<f32>>,
    cpu: bool,
    t: u64,
}

impl AdamW {
    fn new(model: &Qwen2) -> Result<Self> {
        let params = model.params();
        let cpu = model.device().is_cpu();
        let mut o = AdamW {
            m: Vec::new(),
            v: Vec::new(),
            mc: Vec::new(),
            vc: Vec::new(),
            cpu,
            t: 0,
        };
        let zeros: Vec<Tensor> = params
            .iter()
            .map(|p| p.var.as_tensor().zeros_like())
            .collect::<candle_core::Result<_>>()?;
        o.set_moments(zeros.clone(), zeros)?;
        Ok(o)
    }

    fn set_moments(&mut self, m: Vec<Tensor>, v: Vec<Tensor>) -> Result<()> {
        if self.cpu {
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
            self.mc = m.iter().map(flat).collect::<candle_core::Result<_>>()?;
            self.vc = v.iter().map(flat).collect::<candle_core::Result<_>>()?;
        }
        self.m = m;
        self.v = v;
        Ok(())
    }

    /// The moments as tensors (for checkpoints).
    fn moments(&self, model: &Qwen2) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        if !self.cpu {
            return Ok((self.m.clone(), self.v.clone()));
        }
        let mut m = Vec::new();
        let mut v = Vec::new();
        for (i, p) in model.params().iter().enumerate() {
            let shape = p.var.dims();
            m.push(Tensor::from_slice(&self.mc[i], shape, model.device())?);
            v.push(Tensor::from_slice(&self.vc[i], shape, model.device())?);
        }
        Ok((m, v))
    }

    /// One update with gradients `grads` (parameter order); returns the global gradient
    /// norm before clipping.
    fn step(&mut self, model: &Qwen2, grads: &[Tensor], lr: f64, cfg: &RefConfig) -> Result<f64> {
        let tc = &cfg.train;
        self.t += 1;
        let bc1 = 1.0 - tc.beta1.powi(self.t as i32);
        let bc2 = 1.0 - tc.beta2.powi(self.t as i32);
        if self.cpu {
            let gs: Vec<Vec<f32>> = grads
                .iter()
                .map(|g| g.flatten_all()?.to_vec1::<f32>())
                .collect::<candle_core::Result<_>>()?;
            let sq: f64 = gs
                .iter()
                .map(|g| g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
                .sum();
            let norm = sq.sqrt();
            let clip = clip_factor(norm, tc.grad_clip);
            for (i, p) in model.params().iter().enumerate() {
                let mut theta = p.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                let wd = if p.decay { tc.weight_decay } else { 0.0 };
                super::ops::adamw_update(
                    &mut theta,
                    &mut self.mc[i],
                    &mut self.vc[i],
                    &gs[i],
                    clip as f32,
                    lr,
                    wd,
                    tc.beta1,
                    tc.beta2,
                    tc.eps,
                    bc1,
                    bc2,
                );
                p.var
                    .set(&Tensor::from_vec(theta, p.var.dims(), model.device())?)?;
            }
            return Ok(norm);
        }
        let mut sq = 0.0f64;
        for g in grads {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
        let norm = sq.sqrt();
        let clip = clip_factor(norm, tc.grad_clip);
        for (i, p) in model.params().iter().enumerate() {
            let g = (&grads[i] * clip)?;
            let m = ((&self.m[i] * tc.beta1)? + (&g * (1.0 - tc.beta1))?)?;
            let v = ((&self.v[i] * tc.beta2)? + (g.sqr()? * (1.0 - tc.beta2))?)?;
            let denom = ((v.sqrt()? / bc2.sqrt())? + tc.eps)?;
            let update = ((&m / denom)? * (lr / bc1))?;
            let theta = p.var.as_tensor();
            let theta = if p.decay && tc.weight_decay > 0.0 {
                (theta * (1.0 - lr * tc.weight_decay))?
            } else {
                theta.clone()
            };
            p.var.set(&(theta - update)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(norm)
    }
}

/// PyTorch's `clip_grad_norm_` factor.
fn clip_factor(norm: f64, max: f64) -> f64 {
    if max > 0.0 && norm > max {
        max / (norm + 1e-6)
    } else {
        1.0
    }
}

/// The most device memory seen in use (GPU only; nothing to watch on the CPU).
struct MemWatch {
    device: Device,
    peak: Option<u64>,
    total: Option<u64>,
}

impl MemWatch {
    fn new(device: &Device) -> Self {
        MemWatch {
            device: device.clone(),
            peak: None,
            total: None,
        }
    }

    #[cfg(feature = "cuda")]
    fn sample(&mut self) {
        if let Some((used, total)) = super::cuda::memory(&self.device) {
            self.peak = Some(self.peak.map_or(used, |p| p.max(used)));
            self.total = Some(total);
        }
    }

    #[cfg(not(feature = "cuda"))]
    fn sample(&mut self) {
        let _ = &self.device;
    }
}

/// The device as the summary names it: `cpu`, `cuda:0 (NVIDIA H100 80GB HBM3)`.
fn device_label(device: &Device) -> (String, Option<String>) {
    match device {
        Device::Cpu => ("cpu".into(), None),
        #[cfg(feature = "cuda")]
        d @ Device::Cuda(c) => {
            let name = super::cuda::name(d);
            let ord = c.cuda_stream().context().ordinal();
            let label = match &name {
                Some(n) => format!("cuda:{ord} ({n})"),
                None => format!("cuda:{ord}"),
            };
            (label, name)
        }
        d => (format!("{:?}", d.location()), None),
    }
}

/// Loss and gradients (in parameter order) of one micro-batch; `scale` multiplies both.
/// `mem` is sampled while the graph and gradients are alive.
fn loss_and_grads(
    model: &Qwen2,
    inputs: &Tensor,
    targets: &Tensor,
    chunk: usize,
    scale: f64,
    mem: &mut MemWatch,
) -> Result<(f64, Vec<Option<Tensor>>)> {
    let hidden = model.hidden_states(inputs, LongContext::default())?;
    let n = hidden.dim(0)?;
    if model.device().is_cpu() {
        // The fused head: loss and gradients without materialising the logits.
        let h = hidden.detach().contiguous()?;
        let t = targets.contiguous()?;
        let lm = model.lm_head().as_tensor();
        let g = vec![(scale / n as f64) as f32; n];
        let out = with_cpu_head(model, &h, &t, |head| head.loss_and_grads(&g))?;
        let loss = out.losses.iter().sum::<f64>() * scale / n as f64;
        let gh = Tensor::from_vec(out.dh, h.dims(), model.device())?;
        let lm_grad = Tensor::from_vec(out.dw, lm.dims(), model.device())?;
        let body = (hidden * gh)?.sum_all()?.backward()?;
        let grads = model
            .params()
            .iter()
            .map(|p| {
                if p.name == "lm_head.weight" {
                    Some(lm_grad.clone())
                } else {
                    body.get(p.var.as_tensor()).cloned()
                }
            })
            .collect();
        return Ok((loss, grads));
    }
    let cut = Var::from_tensor(&hidden.detach())?;
    let lm = model.lm_head();
    let mut lm_grad: Option<Tensor> = None;
    let mut h_grads = Vec::new();
    let mut loss = 0.0;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let hc = Var::from_tensor(&cut.as_tensor().narrow(0, start, len)?)?;
        let logits = model.logits(hc.as_tensor())?;
        let l = (cross_entropy(&logits, &targets.narrow(0, start, len)?)?
            * (scale * len as f64 / n as f64))?;
        loss += l.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let g = l.backward()?;
        let gh = g
            .get(hc.as_tensor())
            .cloned()
            .ok_or_else(|| RefError::Training("no gradient for the hidden states".into()))?;
        h_grads.push(gh);
        if let Some(gl) = g.get(lm.as_tensor()) {
            lm_grad = Some(match lm_grad {
                Some(acc) => (acc + gl)?,
                None => gl.clone(),
            });
        }
        start += len;
    }
    let gh = Tensor::cat(&h_grads, 0)?;
    let surrogate = (hidden * gh)?.sum_all()?;
    let body = surrogate.backward()?;
    mem.sample();
    let grads = model
        .params()
        .iter()
        .map(|p| {
            if p.name == "lm_head.weight" {
                lm_grad.clone()
            } else {
                body.get(p.var.as_tensor()).cloned()
            }
        })
        .collect();
    Ok((loss, grads))
}

/// Runs `f` on the data of a contiguous CPU tensor of `T`s (f32 values, u32 token ids),
/// without copying it.
fn with_cpu<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let data = match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(s), Some((a, b))) => s.as_slice::<T>().ok().map(|v| &v[a..b]),
        _ => None,
    };
    data.map(f).ok_or_else(|| {
        RefError::Training(format!(
            "expected a contiguous {} tensor on the CPU",
            T::DTYPE.as_str()
        ))
    })
}

/// `f` on the fused CPU head over the hidden states `h`, the targets `t` and the
/// model's output projection (all contiguous on the CPU), so that training and
/// evaluation build it alike.
fn with_cpu_head<R>(
    model: &Qwen2,
    h: &Tensor,
    t: &Tensor,
    f: impl FnOnce(Head<'_>) -> R,
) -> Result<R> {
    let lm = model.lm_head().as_tensor();
    let r = with_cpu(h, |hv: &[f32]| {
        with_cpu(t, |tv: &[u32]| {
            with_cpu(lm, |wv: &[f32]| {
                f(Head {
                    h: hv,
                    w: wv,
                    targets: tv,
                    d: model.config().hidden,
                    block_rows: 0,
                })
            })
        })
    });
    r??
}

fn batch_tensors(
    stream: &TokenStream,
    context: usize,
    windows: &[usize],
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(windows.len() * context);
    let mut y = Vec::with_capacity(windows.len() * context);
    for &w in windows {
        let (i, t) = stream.window(context, w);
        x.extend_from_slice(i);
        y.extend_from_slice(t);
    }
    Ok((
        Tensor::from_vec(x, (windows.len(), context), device)?,
        Tensor::from_vec(y, windows.len() * context, device)?,
    ))
}

/// Windows visited by training, epoch after epoch.
struct Order {
    seed: u64,
    n: usize,
    epoch: u64,
    perm: Vec<u32>,
}

impl Order {
    fn new(seed: u64, n: usize) -> Self {
        Order {
            seed,
            n,
            epoch: u64::MAX,
            perm: Vec::new(),
        }
    }

    fn get(&mut self, g: u64) -> usize {
        let epoch = g / self.n as u64;
        if epoch != self.epoch {
            let mut rng = SplitMix64::new(self.seed ^ epoch.wrapping_mul(0xA24B_AED4_963E_E407));
            self.perm = rng.permutation(self.n);
            self.epoch = epoch;
        }
        self.perm[(g % self.n as u64) as usize] as usize
    }
}

/// Mean next-token loss over the first `max_windows` windows (0: all) of `context`
/// tokens of a stream, with the long-context options. Returns (loss, target tokens).
pub fn evaluate(
    model: &Qwen2,
    stream: &TokenStream,
    context: usize,
    max_windows: usize,
    batch: usize,
    chunk: usize,
    long: LongContext,
) -> Result<(f64, u64)> {
    let mut n = stream.windows(context);
    if max_windows > 0 {
        n = n.min(max_windows);
    }
    if n == 0 {
        return Err(RefError::Data(format!(
            "the validation stream has {} tokens, fewer than one window of {} + 1",
            stream.tokens.len(),
            context
        )));
    }
    let mut total = 0.0;
    let mut count = 0u64;
    let ids: Vec<usize> = (0..n).collect();
    for b in ids.chunks(batch.max(1)) {
        let (x, y) = batch_tensors(stream, context, b, model.device())?;
        let h = model.hidden_states(&x, long)?.detach();
        let rows = h.dim(0)?;
        if model.device().is_cpu() {
            let (h, y) = (h.contiguous()?, y.contiguous()?);
            total += with_cpu_head(model, &h, &y, |head| head.losses().iter().sum::<f64>())?;
            count += rows as u64;
            continue;
        }
        let mut s = 0;
        while s < rows {
            let len = chunk.min(rows - s);
            let logits = model.logits(&h.narrow(0, s, len)?)?.detach();
            total += cross_entropy_sum(&logits, &y.narrow(0, s, len)?)?;
            s += len;
        }
        count += y.dim(0)? as u64;
    }
    Ok((total / count as f64, count))
}

/// Cross-entropy of a unigram model of `train` (add-one smoothing over `vocab`) on the
/// targets of the first `max_windows` windows of `val` (the same tokens `evaluate`
/// scores).
pub fn unigram_loss(
    train: &TokenStream,
    val: &TokenStream,
    vocab: usize,
    context: usize,
    max_windows: usize,
) -> f64 {
    let mut counts = vec![1u64; vocab];
    for &t in &train.tokens {
        if let Some(c) = counts.get_mut(t as usize) {
            *c += 1;
        }
    }
    let total: u64 = counts.iter().sum();
    let mut n = val.windows(context);
    if max_windows > 0 {
        n = n.min(max_windows);
    }
    let mut sum = 0.0;
    let mut k = 0u64;
    for w in 0..n {
        for &t in val.window(context, w).1 {
            let c = counts.get(t as usize).copied().unwrap_or(1);
            sum -= (c as f64 / total as f64).ln();
            k += 1;
        }
    }
    if k == 0 { f64::NAN } else { sum / k as f64 }
}

fn check_ids(stream: &TokenStream, vocab: usize, what: &str) -> Result<()> {
    if let Some((i, t)) = stream
        .tokens
        .iter()
        .enumerate()
        .find(|(_, t)| **t as usize >= vocab)
    {
        return Err(RefError::Data(format!(
            "{what}: token {t} at position {i} is outside the vocabulary of {vocab}"
        )));
    }
    Ok(())
}

/// Whether a config can train on a device: bf16 mixed precision needs a GPU.
pub fn check_device(cfg: &RefConfig, device: &Device) -> Result<()> {
    if cfg.train.precision == Precision::Bf16 && device.is_cpu() {
        return Err(RefError::Config {
            what: "train.precision".into(),
            message:
                "\"bf16\" mixed precision needs a GPU (--device cuda); the CPU trains in \"f32\""
                    .into(),
        });
    }
    Ok(())
}

/// Trains a model on `train` (validating on `val`), writing checkpoints and
/// `metrics.jsonl` under `out`. A directory holding a checkpoint of the same config and
/// data is resumed from its latest checkpoint; one of another config or data is refused.
pub fn train(
    cfg: &RefConfig,
    train: &TokenStream,
    val: Option<&TokenStream>,
    out: &Path,
    opts: &TrainOptions,
) -> Result<TrainSummary> {
    let ctx = cfg.model.context;
    let tc = &cfg.train;
    check_ids(train, opts.vocab, "training data")?;
    if let Some(v) = val {
        check_ids(v, opts.vocab, "validation data")?;
    }
    let n_windows = train.windows(ctx);
    if n_windows == 0 {
        return Err(RefError::Data(format!(
            "the training data has {} tokens, fewer than one window of {} + 1",
            train.tokens.len(),
            ctx
        )));
    }
    check_device(cfg, &opts.device)?;
    std::fs::create_dir_all(out).map_err(|e| RefError::io(out, e))?;

    let mut model = Qwen2::init(&cfg.model, opts.vocab, tc.seed, &opts.device)?;
    let mut opt = AdamW::new(&model)?;
    let mut step = 0u64;
    let mut tokens = 0u64;
    if let Some(dir) = latest_checkpoint(out)? {
        let state = read_state(&dir)?;
        if state.config != *cfg || state.vocab != opts.vocab {
            return Err(RefError::Resume(format!(
                "{} holds a checkpoint of another config or vocabulary; use another --out or remove it",
                out.display()
            )));
        }
        if state.data_fingerprint != opts.data_fingerprint {
            return Err(RefError::Resume(format!(
                "{} holds a checkpoint trained on other data (fingerprint {} vs {})",
                out.display(),
                state.data_fingerprint,
                opts.data_fingerprint
            )));
        }
        let (m, o) = load_checkpoint_tensors(&dir, &cfg.model, opts.vocab, &opts.device)?;
        model = m;
        opt = AdamW::new(&model)?;
        opt.set_moments(o.0, o.1)?;
        opt.t = state.step;
        step = state.step;
        tokens = state.tokens;
        if opts.verbose {
            eprintln!("resuming from {} (step {step})", dir.display());
        }
    }
    model.set_compute_dtype(tc.precision.dtype());
    let resumed_from = step;
    let metrics_path = out.join("metrics.jsonl");
    let mut kept = read_metrics(&metrics_path)?;
    kept.retain(|r| r.step <= step);
    write_metrics(&metrics_path, &kept)?;

    let params = model.config().parameters(opts.vocab);
    if opts.verbose {
        eprintln!(
            "model: {} layers, hidden {}, {} heads, context {}, vocab {}: {:.2} M parameters; {} training windows, {} tokens per step",
            cfg.model.layers,
            cfg.model.hidden,
            cfg.model.heads,
            ctx,
            opts.vocab,
            params as f64 / 1e6,
            n_windows,
            tc.tokens_per_step(ctx)
        );
    }
    let mut order = Order::new(tc.seed, n_windows);
    let mut mem = MemWatch::new(&opts.device);
    let mut step_secs = 0.0f64;
    let started = Instant::now();
    let tokens_at_start = tokens;
    let stop = opts.stop_after.unwrap_or(tc.steps).min(tc.steps);
    let n_params = model.params().len();
    while step < stop {
        let step_started = Instant::now();
        let lr = tc.lr_at(step);
        let mut grads: Vec<Option<Tensor>> = vec![None; n_params];
        let mut loss = 0.0;
        for micro in 0..tc.grad_accum {
            let base = (step * tc.grad_accum as u64 + micro as u64) * tc.batch_sequences as u64;
            let ws: Vec<usize> = (0..tc.batch_sequences as u64)
                .map(|j| order.get(base + j))
                .collect();
            let (x, y) = batch_tensors(train, ctx, &ws, &opts.device)?;
            let (l, g) = loss_and_grads(
                &model,
                &x,
                &y,
                tc.loss_chunk_tokens,
                1.0 / tc.grad_accum as f64,
                &mut mem,
            )?;
            loss += l;
            for (acc, g) in grads.iter_mut().zip(g) {
                if let Some(g) = g {
                    *acc = Some(match acc.take() {
                        Some(a) => (a + g)?,
                        None => g,
                    });
                }
            }
        }
        let grads: Vec<Tensor> = grads
            .into_iter()
            .zip(model.params())
            .map(|(g, p)| match g {
                Some(g) => Ok(g),
                None => Ok(p.var.as_tensor().zeros_like()?),
            })
            .collect::<Result<_>>()?;
        let norm = opt.step(&model, &grads, lr, cfg)?;
        drop(grads);
        // The update is queued on a GPU: wait for it, so the step's time is its own.
        opts.device.synchronize()?;
        mem.sample();
        step_secs += step_started.elapsed().as_secs_f64();
        step += 1;
        tokens += tc.tokens_per_step(ctx) as u64;
        let mut row = StepMetrics {
            step,
            loss,
            lr,
            grad_norm: norm,
            tokens,
            val_loss: None,
        };
        let eval_now =
            step == tc.steps || (tc.eval_every > 0 && step.is_multiple_of(tc.eval_every));
        if let (Some(v), true) = (val, eval_now) {
            let (vl, _) = evaluate(
                &model,
                v,
                ctx,
                tc.eval_sequences,
                tc.batch_sequences,
                tc.loss_chunk_tokens,
                LongContext::default(),
            )?;
            row.val_loss = Some(vl);
        }
        if opts.verbose {
            let secs = started.elapsed().as_secs_f64();
            let tps = (tokens - tokens_at_start) as f64 / secs.max(1e-9);
            eprint!(
                "step {step}/{}: loss {loss:.4} lr {lr:.2e} |g| {norm:.3} {tps:.0} tokens/s",
                tc.steps
            );
            match row.val_loss {
                Some(v) => eprintln!(" val {v:.4} (ppl {:.1})", v.exp()),
                None => eprintln!(),
            }
        }
        append_metrics(&metrics_path, &row)?;
        let ckpt_now =
            step == stop || (tc.checkpoint_every > 0 && step.is_multiple_of(tc.checkpoint_every));
        if ckpt_now {
            save_checkpoint(out, &model, &opt, cfg, opts, step, tokens)?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let checkpoint = latest_checkpoint(out)?.unwrap_or_else(|| out.to_path_buf());
    let unigram = val.map(|v| unigram_loss(train, v, opts.vocab, ctx, tc.eval_sequences).exp());
    // The summary comes from the metrics file, so a resumed run (or one with nothing
    // left to do) reports the same as an uninterrupted one.
    let rows = read_metrics(&metrics_path)?;
    let last_loss = rows.last().map_or(f64::NAN, |r| r.loss);
    let last_val = rows.iter().rev().find_map(|r| r.val_loss);
    let (device, device_name) = device_label(&opts.device);
    let flops_per_token = super::perf::flops_per_token(&cfg.model, opts.vocab);
    let peak_flops = opts.peak_flops.or_else(|| {
        device_name
            .as_deref()
            .and_then(|n| super::perf::peak_flops(n, tc.precision))
    });
    let step_tps = if step_secs > 0.0 {
        (tokens - tokens_at_start) as f64 / step_secs
    } else {
        0.0
    };
    let mfu = match peak_flops {
        Some(p) if p > 0.0 && step_tps > 0.0 => Some(flops_per_token * step_tps / p),
        _ => None,
    };
    Ok(TrainSummary {
        steps: step,
        tokens,
        parameters: params,
        train_loss: last_loss,
        val_loss: last_val,
        val_perplexity: last_val.map(f64::exp),
        unigram_perplexity: unigram,
        tokens_per_second: (tokens - tokens_at_start) as f64 / secs.max(1e-9),
        step_tokens_per_second: step_tps,
        device,
        precision: tc.precision.name().into(),
        flops_per_token,
        peak_flops,
        mfu,
        gpu_memory_peak_bytes: mem.peak,
        gpu_memory_total_bytes: mem.total,
        checkpoint,
        resumed_from,
    })
}

fn read_metrics(path: &Path) -> Result<Vec<StepMetrics>> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| {
                    RefError::Checkpoint(format!("{} line {}: {e}", path.display(), i + 1))
                })
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(RefError::io(path, e)),
    }
}

fn write_metrics(path: &Path, rows: &[StepMetrics]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r).expect("metrics serialize"));
        text.push('\n');
    }
    atomic_write(path, text.as_bytes())
}

fn append_metrics(path: &Path, row: &StepMetrics) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| RefError::io(path, e))?;
    let line = serde_json::to_string(row).expect("metrics serialize");
    writeln!(f, "{line}").map_err(|e| RefError::io(path, e))
}

fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::io::AtomicFile::write_all(path, bytes).map_err(|e| RefError::io(path, e))
}

/// The latest complete checkpoint under a training output directory (named in its
/// `latest` file), or None.
pub fn latest_checkpoint(out: &Path) -> Result<Option<PathBuf>> {
    let p = out.join(LATEST);
    match std::fs::read_to_string(&p) {
        Ok(name) => Ok(Some(out.join(name.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RefError::io(&p, e)),
    }
}

/// A checkpoint directory: the path itself if it holds `model.safetensors`, else the
/// latest checkpoint of a training output directory.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf> {
    if path.join("model.safetensors").is_file() {
        return Ok(path.to_path_buf());
    }
    latest_checkpoint(path)?.ok_or_else(|| {
        RefError::Checkpoint(format!(
            "{} is neither a checkpoint (no model.safetensors) nor a training directory (no `latest`)",
            path.display()
        ))
    })
}

fn read_state(dir: &Path) -> Result<TrainerState> {
    let p = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| RefError::io(&p, e))?;
    let s: TrainerState = serde_json::from_str(&text)
        .map_err(|e| RefError::Checkpoint(format!("{}: {e}", p.display())))?;
    if s.format_version != STATE_VERSION {
        return Err(RefError::Checkpoint(format!(
            "{}: format version {} (this build reads {STATE_VERSION})",
            p.display(),
            s.format_version
        )));
    }
    Ok(s)
}

type Moments = (Vec<Tensor>, Vec<Tensor>);

/// The model weights of a checkpoint directory.
fn load_model(
    dir: &Path,
    cfg: &super::config::ModelConfig,
    vocab: usize,
    device: &Device,
) -> Result<Qwen2> {
    let mp = dir.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&mp, device)
        .map_err(|e| RefError::Checkpoint(format!("{}: {e}", mp.display())))?;
    Qwen2::from_tensors(cfg, vocab, tensors, device)
}

fn load_checkpoint_tensors(
    dir: &Path,
    cfg: &super::config::ModelConfig,
    vocab: usize,
    device: &Device,
) -> Result<(Qwen2, Moments)> {
    let model = load_model(dir, cfg, vocab, device)?;
    let op = dir.join("optimizer.safetensors");
    let mut o = candle_core::safetensors::load(&op, device)
        .map_err(|e| RefError::Checkpoint(format!("{}: {e}", op.display())))?;
    let mut m = Vec::new();
    let mut v = Vec::new();
    for p in model.params() {
        for (prefix, dst) in [("m.", &mut m), ("v.", &mut v)] {
            let key = format!("{prefix}{}", p.name);
            let t = o
                .remove(&key)
                .ok_or_else(|| RefError::Checkpoint(format!("{}: missing {key}", op.display())))?;
            dst.push(t);
        }
    }
    Ok((model, (m, v)))
}

fn save_checkpoint(
    out: &Path,
    model: &Qwen2,
    opt: &AdamW,
    cfg: &RefConfig,
    opts: &TrainOptions,
    step: u64,
    tokens: u64,
) -> Result<()> {
    let name = format!("step-{step:06}");
    let tmp = out.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| RefError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| RefError::io(&tmp, e))?;
    let mp = tmp.join("model.safetensors");
    candle_core::safetensors::save(&model.tensors(), &mp)
        .map_err(|e| RefError::Checkpoint(format!("{}: {e}", mp.display())))?;
    let mut moments = HashMap::new();
    let (m, v) = opt.moments(model)?;
    for (i, p) in model.params().iter().enumerate() {
        moments.insert(format!("m.{}", p.name), m[i].clone());
        moments.insert(format!("v.{}", p.name), v[i].clone());
    }
    let op = tmp.join("optimizer.safetensors");
    candle_core::safetensors::save(&moments, &op)
        .map_err(|e| RefError::Checkpoint(format!("{}: {e}", op.display())))?;
    let hf = HfConfig::new(&cfg.model, opts.vocab, opts.eot);
    let cp = tmp.join("config.json");
    std::fs::write(
        &cp,
        serde_json::to_string_pretty(&hf).expect("config serializes"),
    )
    .map_err(|e| RefError::io(&cp, e))?;
    let state = TrainerState {
        format_version: STATE_VERSION,
        step,
        tokens,
        vocab: opts.vocab,
        eot: opts.eot,
        config: cfg.clone(),
        data_fingerprint: opts.data_fingerprint.clone(),
    };
    let sp = tmp.join("trainer_state.json");
    std::fs::write(
        &sp,
        serde_json::to_string_pretty(&state).expect("state serializes"),
    )
    .map_err(|e| RefError::io(&sp, e))?;
    let dst = out.join(&name);
    if dst.exists() {
        std::fs::remove_dir_all(&dst).map_err(|e| RefError::io(&dst, e))?;
    }
    std::fs::rename(&tmp, &dst).map_err(|e| RefError::io(&dst, e))?;
    let previous = latest_checkpoint(out)?;
    atomic_write(&out.join(LATEST), name.as_bytes())?;
    // Keep the latest checkpoint only: the others are superseded (a tiny model's
    // optimizer state is already twice its weights).
    if let Some(prev) = previous
        && prev != dst
        && prev.exists()
    {
        std::fs::remove_dir_all(&prev).map_err(|e| RefError::io(&prev, e))?;
    }
    Ok(())
}

/// A checkpoint loaded for evaluation.
pub struct Loaded {
    /// The model.
    pub model: Qwen2,
    /// Its config (as trained).
    pub config: RefConfig,
    /// Steps it was trained for.
    pub step: u64,
    /// Training tokens seen.
    pub tokens: u64,
    /// `<|endoftext|>` id.
    pub eot: u32,
}

/// Loads a checkpoint directory (or a training directory's latest checkpoint).
pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let dir = resolve_checkpoint(path)?;
    let state = read_state(&dir)?;
    let mut model = load_model(&dir, &state.config.model, state.vocab, device)?;
    // A model trained in mixed precision is evaluated so on a GPU; the CPU is f32.
    if !device.is_cpu() {
        model.set_compute_dtype(state.config.train.precision.dtype());
    }
    Ok(Loaded {
        model,
        config: state.config,
        step: state.step,
        tokens: state.tokens,
        eot: state.eot,
    })
}
