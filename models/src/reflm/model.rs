//! Qwen's decoder (the `Qwen2ForCausalLM` layout): untied input embedding and output
//! projection, RoPE with f32 inverse frequencies, bias on the Q/K/V projections only,
//! pre-norm RMSNorm, SwiGLU. Built from candle primitives that all have gradients, so
//! the same code trains and evaluates on any candle device.
//!
//! Weight names are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, ...), so a
//! checkpoint loads in `transformers` unchanged.

use candle_core::{D, DType, Device, Tensor, Var};
use std::collections::HashMap;

use super::config::ModelConfig;
use super::rng::SplitMix64;
use super::{RefError, Result};

/// Long-context options at inference (Qwen's training-free extension).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LongContext {
    /// Dynamic NTK-aware RoPE: beyond the training context the RoPE base grows by
    /// `alpha^(d/(d-2))` with `alpha = 2^ceil(log2(L/train)+1) - 1`.
    pub ntk: bool,
    /// LogN attention scaling: queries at position `i > train` are scaled by
    /// `ln(i) / ln(train)`.
    pub logn: bool,
}

struct Layer {
    q_w: Var,
    q_b: Var,
    k_w: Var,
    k_b: Var,
    v_w: Var,
    v_b: Var,
    o_w: Var,
    gate: Var,
    up: Var,
    down: Var,
    ln1: Var,
    ln2: Var,
}

/// The model's weights (as trainable variables) and its config.
pub struct Qwen2 {
    cfg: ModelConfig,
    vocab: usize,
    embed: Var,
    layers: Vec<Layer>,
    norm: Var,
    lm_head: Var,
    device: Device,
    /// Dtype of the matrix products' operands: F32, or BF16 for mixed precision.
    compute: DType,
}

/// A parameter: its HF name and variable.
pub struct Param<'a> {
    /// Hugging Face weight name.
    pub name: String,
    /// The variable.
    pub var: &'a Var,
    /// Whether weight decay applies (matrices and embeddings).
    pub decay: bool,
}

impl Qwen2 {
    /// A freshly initialised model: weight matrices and embeddings from N(0, init_std²)
    /// drawn from a SplitMix64 stream seeded with `seed` (in parameter order), biases
    /// zero, norm gains one.
    pub fn init(cfg: &ModelConfig, vocab: usize, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let std = cfg.init_std as f32;
        let mut normal = |shape: &[usize]| -> Result<Var> {
            if std == 0.0 {
                return Ok(Var::zeros(shape, DType::F32, device)?);
            }
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|_| rng.normal() * std).collect();
            Ok(Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?)
        };
        let zeros = |n: usize| -> Result<Var> { Ok(Var::zeros(n, DType::F32, device)?) };
        let ones = |n: usize| -> Result<Var> { Ok(Var::ones(n, DType::F32, device)?) };
        let h = cfg.hidden;
        let kv = cfg.kv_heads() * cfg.head_dim();
        let inter = cfg.intermediate();
        let embed = normal(&[vocab, h])?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for _ in 0..cfg.layers {
            layers.push(Layer {
                q_w: normal(&[h, h])?,
                q_b: zeros(h)?,
                k_w: normal(&[kv, h])?,
                k_b: zeros(kv)?,
                v_w: normal(&[kv, h])?,
                v_b: zeros(kv)?,
                o_w: normal(&[h, h])?,
                gate: normal(&[inter, h])?,
                up: normal(&[inter, h])?,
                down: normal(&[h, inter])?,
                ln1: ones(h)?,
                ln2: ones(h)?,
            });
        }
        let norm = ones(h)?;
        let lm_head = normal(&[vocab, h])?;
        Ok(Qwen2 {
            cfg: cfg.clone(),
            vocab,
            embed,
            layers,
            norm,
            lm_head,
            device: device.clone(),
            compute: DType::F32,
        })
    }

    /// A model from named tensors (a loaded `model.safetensors`). Every expected name must
    /// be present with the expected shape; the error names the first that is not. (The
    /// placeholder weights it starts from are zeros: `init_std = 0` draws nothing.)
    pub fn from_tensors(
        cfg: &ModelConfig,
        vocab: usize,
        mut tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let model = Qwen2::init(
            &ModelConfig {
                init_std: 0.0,
                ..cfg.clone()
            },
            vocab,
            0,
            device,
        )?;
        for p in model.params() {
            let t = tensors
                .remove(&p.name)
                .ok_or_else(|| RefError::Checkpoint(format!("missing tensor {}", p.name)))?;
            if t.dims() != p.var.dims() {
                return Err(RefError::Checkpoint(format!(
                    "tensor {} has shape {:?}, the config asks for {:?}",
                    p.name,
                    t.dims(),
                    p.var.dims()
                )));
            }
            p.var
                .set(&t.to_dtype(DType::F32)?.to_device(device)?)
                .map_err(RefError::from)?;
        }
        Ok(model)
    }

    /// The config.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Sets the dtype of the matrix products' operands: F32 (the default) or BF16 for
    /// mixed precision (see [`super::config::Precision::Bf16`]). The weights stay f32.
    pub fn set_compute_dtype(&mut self, dtype: DType) {
        self.compute = dtype;
    }

    /// The dtype of the matrix products' operands.
    pub fn compute_dtype(&self) -> DType {
        self.compute
    }

    /// `a b` in the compute dtype, as f32: under mixed precision both operands are cast
    /// to it and the product back to f32 (PyTorch autocast's rule for matmul).
    fn mm(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if self.compute == DType::F32 {
            return Ok(a.matmul(b)?);
        }
        Ok(a.to_dtype(self.compute)?
            .matmul(&b.to_dtype(self.compute)?)?
            .to_dtype(DType::F32)?)
    }

    /// `x W^T (+ b)` for `x: [n, in]`, `W: [out, in]`; the weight is cast before it is
    /// transposed, so the product reads it in place.
    fn linear(&self, x: &Tensor, w: &Var, b: Option<&Var>) -> Result<Tensor> {
        let w = w.as_tensor();
        let y = if self.compute == DType::F32 {
            x.matmul(&w.t()?)?
        } else {
            x.to_dtype(self.compute)?
                .matmul(&w.to_dtype(self.compute)?.t()?)?
                .to_dtype(DType::F32)?
        };
        Ok(match b {
            Some(b) => y.broadcast_add(b.as_tensor())?,
            None => y,
        })
    }

    /// Every parameter with its HF name, in a fixed order.
    pub fn params(&self) -> Vec<Param<'_>> {
        fn p(name: String, var: &Var, decay: bool) -> Param<'_> {
            Param { name, var, decay }
        }
        let mut out = vec![p("model.embed_tokens.weight".into(), &self.embed, true)];
        for (i, l) in self.layers.iter().enumerate() {
            let n = |s: &str| format!("model.layers.{i}.{s}");
            out.extend([
                p(n("self_attn.q_proj.weight"), &l.q_w, true),
                p(n("self_attn.q_proj.bias"), &l.q_b, false),
                p(n("self_attn.k_proj.weight"), &l.k_w, true),
                p(n("self_attn.k_proj.bias"), &l.k_b, false),
                p(n("self_attn.v_proj.weight"), &l.v_w, true),
                p(n("self_attn.v_proj.bias"), &l.v_b, false),
                p(n("self_attn.o_proj.weight"), &l.o_w, true),
                p(n("mlp.gate_proj.weight"), &l.gate, true),
                p(n("mlp.up_proj.weight"), &l.up, true),
                p(n("mlp.down_proj.weight"), &l.down, true),
                p(n("input_layernorm.weight"), &l.ln1, false),
                p(n("post_attention_layernorm.weight"), &l.ln2, false),
            ]);
        }
        out.push(p("model.norm.weight".into(), &self.norm, false));
        out.push(p("lm_head.weight".into(), &self.lm_head, true));
        out
    }

    /// Named weight tensors (for saving).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.params()
            .into_iter()
            .map(|p| (p.name, p.var.as_tensor().clone()))
            .collect()
    }

    /// Final hidden states `[batch * seq, hidden]` (after the last RMSNorm) of token ids
    /// `[batch, seq]`. `train_context` is the context the model was trained at (for the
    /// long-context options).
    pub fn hidden_states(&self, ids: &Tensor, long: LongContext) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let cfg = &self.cfg;
        let hd = cfg.head_dim();
        let nh = cfg.heads;
        let nkv = cfg.kv_heads();
        let train_ctx = cfg.context;
        let (cos, sin) = rope_tables(
            hd,
            t,
            rope_base(cfg.rope_theta, hd, t, train_ctx, long.ntk),
            &self.device,
        )?;
        let logn = if long.logn && t > train_ctx {
            Some(logn_scale(t, train_ctx, &self.device)?)
        } else {
            None
        };
        let mask = causal_mask(t, &self.device)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let eps = cfg.rms_norm_eps;

        let mut x = self.embed.as_tensor().embedding(&ids.flatten_all()?)?; // [b*t, h]
        for l in &self.layers {
            let h = rms_norm(&x, l.ln1.as_tensor(), eps)?;
            let q = self.linear(&h, &l.q_w, Some(&l.q_b))?;
            let k = self.linear(&h, &l.k_w, Some(&l.k_b))?;
            let v = self.linear(&h, &l.v_w, Some(&l.v_b))?;
            let heads = |x: Tensor, n: usize| -> Result<Tensor> {
                Ok(x.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
            };
            let q = apply_rope(&heads(q, nh)?, &cos, &sin)?;
            let k = apply_rope(&heads(k, nkv)?, &cos, &sin)?;
            let v = heads(v, nkv)?;
            let q = match &logn {
                Some(s) => q.broadcast_mul(s)?,
                None => q,
            };
            let (k, v) = if nkv != nh {
                (repeat_kv(&k, nh / nkv)?, repeat_kv(&v, nh / nkv)?)
            } else {
                (k, v)
            };
            let att = (self.mm(&q, &k.t()?)? * scale)?.broadcast_add(&mask)?;
            let att = softmax_last(&att)?;
            let o = self
                .mm(&att, &v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * t, cfg.hidden))?;
            x = (x + self.linear(&o, &l.o_w, None)?)?;
            let h = rms_norm(&x, l.ln2.as_tensor(), eps)?;
            let g = self.linear(&h, &l.gate, None)?.silu()?;
            let u = self.linear(&h, &l.up, None)?;
            x = (x + self.linear(&(g * u)?, &l.down, None)?)?;
        }
        rms_norm(&x, self.norm.as_tensor(), eps)
    }

    /// Logits `[n, vocab]` (f32) of hidden states `[n, hidden]`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.linear(hidden, &self.lm_head, None)
    }

    /// The output projection's weight variable.
    pub fn lm_head(&self) -> &Var {
        &self.lm_head
    }
}

/// RMSNorm in f32: `x / sqrt(mean(x²) + eps) * g`.
fn rms_norm(x: &Tensor, g: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&inv)?.broadcast_mul(g)?)
}

/// Softmax over the last dimension; the row maximum is a constant (no gradient), which
/// leaves the gradient unchanged since softmax is shift-invariant.
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    Ok(e.broadcast_div(&s)?)
}

fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Ok(Tensor::from_vec(data, (t, t), device)?)
}

fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    let (b, h, t, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .broadcast_as((b, h, n, t, d))?
        .contiguous()?
        .reshape((b, h * n, t, d))?)
}

/// RoPE base in effect for a sequence of `t` tokens: Qwen's dynamic NTK-aware
/// interpolation when `ntk` and `t` exceeds the training context.
pub fn rope_base(theta: f64, head_dim: usize, t: usize, train_ctx: usize, ntk: bool) -> f64 {
    if !ntk || t <= train_ctx {
        return theta;
    }
    let context_value = (t as f64 / train_ctx as f64).log2() + 1.0;
    let alpha = (2f64.powf(context_value.ceil()) - 1.0).max(1.0);
    theta * alpha.powf(head_dim as f64 / (head_dim as f64 - 2.0))
}

/// cos and sin tables `[t, head_dim]` (halves repeated, HF's rotate-half layout), with
/// inverse frequencies `1 / base^(2i/d)` computed in f32 as Qwen does.
fn rope_tables(hd: usize, t: usize, base: f64, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = hd / 2;
    let base = base as f32;
    let inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / hd as f32))
        .collect();
    let mut cos = Vec::with_capacity(t * hd);
    let mut sin = Vec::with_capacity(t * hd);
    for p in 0..t {
        for _half in 0..2 {
            for f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    Ok((
        Tensor::from_vec(cos, (t, hd), device)?,
        Tensor::from_vec(sin, (t, hd), device)?,
    ))
}

fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rot.broadcast_mul(sin)?)?)
}

/// Per-position query scale `[t, 1]`: `ln(i)/ln(train)` for 1-based positions beyond
/// the training context, 1 before.
fn logn_scale(t: usize, train_ctx: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (1..=t)
        .map(|i| {
            if i > train_ctx {
                ((i as f64).ln() / (train_ctx as f64).ln()) as f32
            } else {
                1.0
            }
        })
        .collect();
    Ok(Tensor::from_vec(data, (t, 1), device)?)
}

/// Mean next-token cross-entropy of logits `[n, vocab]` against `targets` (`[n]`, u32),
/// from primitives with gradients: `logsumexp(z) - z[target]`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.device().is_cpu() && logits.dtype() == DType::F32 {
        return Ok(super::ops::cross_entropy_rows(logits, targets)?.mean_all()?);
    }
    cross_entropy_generic(logits, targets)
}

/// [`cross_entropy`] from tensor primitives (any device; the CPU uses a fused kernel).
pub fn cross_entropy_generic(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let m = logits.max_keepdim(D::Minus1)?.detach();
    let lse = (logits
        .broadcast_sub(&m)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + m)?;
    let picked = logits.gather(&targets.unsqueeze(1)?, D::Minus1)?;
    Ok((lse - picked)?.mean_all()?)
}

/// Summed (not averaged) next-token cross-entropy, in f64, for evaluation.
pub fn cross_entropy_sum(logits: &Tensor, targets: &Tensor) -> Result<f64> {
    let n = targets.dim(0)?;
    let mean = cross_entropy(logits, targets)?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    Ok(mean * n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ModelConfig {
        ModelConfig {
            layers: 2,
            hidden: 32,
            heads: 4,
            kv_heads: 2,
            intermediate: 0,
            context: 16,
            rope_theta: 10000.0,
            rms_norm_eps: 1e-6,
            init_std: 0.1,
            vocab: 0,
        }
    }

    /// Loss and the gradient of every parameter, in parameter order.
    fn loss_and_grads(m: &Qwen2, ids: &Tensor, targets: &Tensor) -> (f32, Vec<Tensor>) {
        let h = m.hidden_states(ids, LongContext::default()).unwrap();
        let loss = cross_entropy_generic(&m.logits(&h).unwrap(), targets).unwrap();
        let g = loss.backward().unwrap();
        let grads = m
            .params()
            .iter()
            .map(|p| g.get(p.var.as_tensor()).unwrap().clone())
            .collect();
        (loss.to_scalar::<f32>().unwrap(), grads)
    }

    // Mixed precision is meant for the GPU; candle's CPU backend has the same bf16
    // operations, so the arithmetic (casts, f32 masters, f32 loss) is checked here.
    #[test]
    fn bf16_mixed_precision_tracks_f32_with_f32_gradients() {
        let dev = Device::Cpu;
        let vocab = 50;
        let mut m = Qwen2::init(&tiny(), vocab, 7, &dev).unwrap();
        let ids: Vec<u32> = (0..32u32).map(|i| (i * 7 + 3) % vocab as u32).collect();
        let targets: Vec<u32> = (0..32u32).map(|i| (i * 11 + 5) % vocab as u32).collect();
        let ids = Tensor::from_vec(ids, (2, 16), &dev).unwrap();
        let targets = Tensor::from_vec(targets, 32, &dev).unwrap();
        let (l32, g32) = loss_and_grads(&m, &ids, &targets);
        m.set_compute_dtype(DType::BF16);
        let (l16, g16) = loss_and_grads(&m, &ids, &targets);
        assert!(
            l32.is_finite() && (l32 - l16).abs() < 0.02 * l32,
            "{l32} vs {l16}"
        );
        for ((p, a), b) in m.params().iter().zip(&g32).zip(&g16) {
            assert_eq!(p.var.dtype(), DType::F32, "{}", p.name);
            assert_eq!(b.dtype(), DType::F32, "{}", p.name);
            let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
            let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt();
            // bf16 keeps 8 bits of mantissa: a few percent of relative error at most.
            assert!(
                diff <= 0.05 * norm + 1e-6,
                "{}: |g32 - g16| {diff} vs |g32| {norm}",
                p.name
            );
        }
        // Not the f32 result either: the products did run in bf16.
        assert_ne!(l32, l16);
    }
}
