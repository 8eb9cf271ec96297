//! The reference model's TOML config (`[model]` and `[train]`) and the Hugging Face
//! `config.json` written beside every checkpoint.

use serde::{Deserialize, Serialize};

use super::RefError;

/// Whole config file: `[model]` and `[train]` tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefConfig {
    /// Architecture.
    pub model: ModelConfig,
    /// Optimisation and schedule.
    #[serde(default)]
    pub train: TrainConfig,
}

impl RefConfig {
    /// Parses TOML text; `what` names the file in errors.
    pub fn from_toml(text: &str, what: &str) -> Result<Self, RefError> {
        let cfg: RefConfig = toml::from_str(text).map_err(|e| RefError::Config {
            what: what.to_string(),
            message: e.to_string(),
        })?;
        cfg.validate(what)?;
        Ok(cfg)
    }

    /// Checks the values that serde cannot.
    pub fn validate(&self, what: &str) -> Result<(), RefError> {
        let bad = |message: String| {
            Err(RefError::Config {
                what: what.to_string(),
                message,
            })
        };
        let m = &self.model;
        if m.layers == 0 || m.hidden == 0 || m.heads == 0 || m.context == 0 {
            return bad("model.layers, hidden, heads and context must be > 0".into());
        }
        if !m.hidden.is_multiple_of(m.heads) {
            return bad(format!(
                "model.hidden ({}) must be a multiple of model.heads ({})",
                m.hidden, m.heads
            ));
        }
        if !(m.hidden / m.heads).is_multiple_of(2) {
            return bad("model.hidden / model.heads (the head size) must be even for RoPE".into());
        }
        let kv = m.kv_heads();
        if kv == 0 || !m.heads.is_multiple_of(kv) {
            return bad(format!(
                "model.kv_heads ({kv}) must divide model.heads ({})",
                m.heads
            ));
        }
        let t = &self.train;
        if t.batch_sequences == 0 || t.grad_accum == 0 || t.steps == 0 {
            return bad("train.batch_sequences, grad_accum and steps must be > 0".into());
        }
        if t.lr.is_nan() || t.lr <= 0.0 || !(0.0..=1.0).contains(&t.min_lr_ratio) {
            return bad("train.lr must be > 0 and train.min_lr_ratio in 0..=1".into());
        }
        if t.loss_chunk_tokens == 0 {
            return bad("train.loss_chunk_tokens must be > 0".into());
        }
        Ok(())
    }
}

/// Qwen architecture, scaled down. Every field has a default except the sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Hidden size (embedding width).
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention); 0 = `heads` (Qwen's multi-head).
    #[serde(default)]
    pub kv_heads: usize,
    /// SwiGLU inner size; 0 = 8/3 of `hidden`, rounded up to a multiple of 8.
    #[serde(default)]
    pub intermediate: usize,
    /// Training context length in tokens.
    pub context: usize,
    /// RoPE base (Qwen: 10000).
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// Standard deviation of the normal initialisation of weight matrices.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// Vocabulary size; 0 = the shard manifest's `vocab_size`.
    #[serde(default)]
    pub vocab: usize,
}

fn default_rope_theta() -> f64 {
    10000.0
}
fn default_rms_eps() -> f64 {
    1e-6
}
fn default_init_std() -> f64 {
    0.02
}

impl ModelConfig {
    /// Key/value heads in effect.
    pub fn kv_heads(&self) -> usize {
        if self.kv_heads == 0 {
            self.heads
        } else {
            self.kv_heads
        }
    }

    /// SwiGLU inner size in effect: 8/3 of the hidden size (Qwen), rounded up to 8.
    pub fn intermediate(&self) -> usize {
        if self.intermediate > 0 {
            self.intermediate
        } else {
            (self.hidden * 8).div_ceil(3).div_ceil(8) * 8
        }
    }

    /// Size of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Parameter count for a vocabulary of `vocab` ids (embedding and output projection
    /// counted separately: they are untied).
    pub fn parameters(&self, vocab: usize) -> usize {
        let h = self.hidden;
        let kv = self.kv_heads() * self.head_dim();
        let attn = h * h + h + 2 * (h * kv + kv) + h * h;
        let mlp = 3 * h * self.intermediate();
        let layer = attn + mlp + 2 * h;
        self.layers * layer + 2 * vocab * h + h
    }
}

/// Optimisation: AdamW, warm-up then cosine decay, clipping, evaluation and checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed of initialisation and data order.
    pub seed: u64,
    /// Sequences of `context` tokens per micro-batch.
    pub batch_sequences: usize,
    /// Micro-batches whose gradients are summed into one optimizer step.
    pub grad_accum: usize,
    /// Optimizer steps.
    pub steps: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps from 0 to `lr`.
    pub warmup_steps: u64,
    /// The cosine decays to `lr * min_lr_ratio` at the last step (Qwen: 10%).
    pub min_lr_ratio: f64,
    /// AdamW decoupled weight decay, applied to matrices and embeddings only (not to
    /// biases or norm gains).
    pub weight_decay: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// AdamW epsilon.
    pub eps: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    pub grad_clip: f64,
    /// Validation every this many steps (0: only at the end).
    pub eval_every: u64,
    /// At most this many validation sequences per evaluation (0: all).
    pub eval_sequences: usize,
    /// Checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// On devices other than the CPU, the output projection and loss are computed over
    /// this many tokens at a time, which bounds the memory of the logits (tokens x
    /// vocabulary floats). The CPU uses the fused head ([`super::head`]), which holds
    /// about 1 MB of logits per thread whatever this value.
    pub loss_chunk_tokens: usize,
    /// Arithmetic of the matrix products: `f32`, or `bf16` mixed precision (GPU only).
    pub precision: Precision,
}

/// Arithmetic of the matrix products in training and evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Mixed precision as PyTorch's autocast and Qwen's training do it: the operands of
    /// every matrix product (weights, activations) are cast to bfloat16 and the product
    /// back to f32; the master weights, AdamW moments, residual stream, RMSNorm, softmax
    /// and loss stay in f32. Only on a GPU: the CPU's fused kernels are f32.
    Bf16,
}

impl Precision {
    /// The dtype of the matrix products' operands.
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
        }
    }

    /// `f32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 1,
            batch_sequences: 8,
            grad_accum: 1,
            steps: 200,
            lr: 3e-3,
            warmup_steps: 20,
            min_lr_ratio: 0.1,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            eval_every: 50,
            eval_sequences: 64,
            checkpoint_every: 100,
            loss_chunk_tokens: 1024,
            precision: Precision::F32,
        }
    }
}

impl TrainConfig {
    /// Learning rate at optimizer step `step` (0-based): linear warm-up to the peak over
    /// `warmup_steps`, then cosine decay to `min_lr_ratio` of the peak at the last step.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay = self.steps.saturating_sub(self.warmup_steps).max(1);
        let t = ((step - self.warmup_steps) as f64 / decay as f64).min(1.0);
        let min = self.lr * self.min_lr_ratio;
        min + 0.5 * (self.lr - min) * (1.0 + (std::f64::consts::PI * t).cos())
    }

    /// Tokens per optimizer step for a context length.
    pub fn tokens_per_step(&self, context: usize) -> usize {
        self.batch_sequences * self.grad_accum * context
    }
}

/// Hugging Face `config.json` for `Qwen2ForCausalLM`, so checkpoints load in other tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HfConfig {
    /// `["Qwen2ForCausalLM"]`.
    pub architectures: Vec<String>,
    /// `qwen2`.
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// SwiGLU inner size.
    pub intermediate_size: usize,
    /// Blocks.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// Training context.
    pub max_position_embeddings: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// `silu`.
    pub hidden_act: String,
    /// Always false: Qwen unties input and output embeddings.
    pub tie_word_embeddings: bool,
    /// Init std.
    pub initializer_range: f64,
    /// `float32`.
    pub torch_dtype: String,
    /// No sliding window.
    pub use_sliding_window: bool,
    /// Unused without a sliding window; present for loaders that read it.
    pub max_window_layers: usize,
    /// Attention dropout (0).
    pub attention_dropout: f64,
    /// `<|endoftext|>`.
    pub bos_token_id: u32,
    /// `<|endoftext|>`.
    pub eos_token_id: u32,
    /// KV cache on.
    pub use_cache: bool,
}

impl ModelConfig {
    /// The model config and vocabulary size of a Hugging Face Qwen2 `config.json` (any
    /// transformers version: `rope_theta` at the top or under `rope_parameters`).
    pub fn from_hf_json(
        v: &serde_json::Value,
        what: &str,
    ) -> Result<(ModelConfig, usize), RefError> {
        let num = |k: &str| -> Result<f64, RefError> {
            v.get(k)
                .and_then(|x| x.as_f64())
                .ok_or_else(|| RefError::Config {
                    what: what.to_string(),
                    message: format!("no numeric `{k}`"),
                })
        };
        if v.get("tie_word_embeddings").and_then(|x| x.as_bool()) == Some(true) {
            return Err(RefError::Config {
                what: what.to_string(),
                message: "tied embeddings are not Qwen's layout".into(),
            });
        }
        let rope_theta = v
            .get("rope_theta")
            .or_else(|| v.get("rope_parameters").and_then(|r| r.get("rope_theta")))
            .and_then(|x| x.as_f64())
            .unwrap_or(10000.0);
        let heads = num("num_attention_heads")? as usize;
        let cfg = ModelConfig {
            layers: num("num_hidden_layers")? as usize,
            hidden: num("hidden_size")? as usize,
            heads,
            kv_heads: v
                .get("num_key_value_heads")
                .and_then(|x| x.as_u64())
                .map_or(heads, |x| x as usize),
            intermediate: num("intermediate_size")? as usize,
            context: num("max_position_embeddings")? as usize,
            rope_theta,
            rms_norm_eps: num("rms_norm_eps")?,
            init_std: v
                .get("initializer_range")
                .and_then(|x| x.as_f64())
                .unwrap_or(0.02),
            vocab: 0,
        };
        Ok((cfg, num("vocab_size")? as usize))
    }
}

impl HfConfig {
    /// The HF config of a model config with a vocabulary size and end-of-text id.
    pub fn new(m: &ModelConfig, vocab: usize, eot: u32) -> Self {
        HfConfig {
            architectures: vec!["Qwen2ForCausalLM".into()],
            model_type: "qwen2".into(),
            vocab_size: vocab,
            hidden_size: m.hidden,
            intermediate_size: m.intermediate(),
            num_hidden_layers: m.layers,
            num_attention_heads: m.heads,
            num_key_value_heads: m.kv_heads(),
            max_position_embeddings: m.context,
            rope_theta: m.rope_theta,
            rms_norm_eps: m.rms_norm_eps,
            hidden_act: "silu".into(),
            tie_word_embeddings: false,
            initializer_range: m.init_std,
            torch_dtype: "float32".into(),
            use_sliding_window: false,
            max_window_layers: m.layers,
            attention_dropout: 0.0,
            bos_token_id: eot,
            eos_token_id: eot,
            use_cache: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[model]` table of [`tiny`].
    const TINY: &str = "[model]\nlayers = 2\nhidden = 64\nheads = 4\ncontext = 32\n";

    fn tiny() -> RefConfig {
        RefConfig::from_toml(TINY, "t.toml").unwrap()
    }

    /// Why `text`, read from file `name`, is not a config.
    fn error(text: &str, name: &str) -> String {
        RefConfig::from_toml(text, name).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_intermediate() {
        let c = tiny();
        assert_eq!(c.model.intermediate(), 176); // 64 * 8 / 3 = 170.7 -> 176
        assert_eq!(c.model.kv_heads(), 4);
        assert_eq!(c.train.beta2, 0.95);
    }

    #[test]
    fn unknown_field_names_it() {
        let e = error(&format!("{TINY}hiden = 3\n"), "x.toml");
        assert!(e.contains("x.toml") && e.contains("hiden"), "{e}");
    }

    #[test]
    fn precision_parses_and_defaults_to_f32() {
        assert_eq!(tiny().train.precision, Precision::F32);
        let c = RefConfig::from_toml(&format!("{TINY}[train]\nprecision = \"bf16\"\n"), "t.toml")
            .unwrap();
        assert_eq!(c.train.precision, Precision::Bf16);
        let e = error(&format!("{TINY}[train]\nprecision = \"fp8\"\n"), "t.toml");
        assert!(e.contains("fp8") && e.contains("bf16"), "{e}");
    }

    #[test]
    fn bad_heads_rejected() {
        let e = error(
            "[model]\nlayers = 2\nhidden = 60\nheads = 8\ncontext = 32\n",
            "x.toml",
        );
        assert!(e.contains("multiple"), "{e}");
    }

    #[test]
    fn schedule_warmup_then_cosine_to_ten_percent() {
        let mut t = TrainConfig {
            lr: 1.0,
            warmup_steps: 10,
            steps: 110,
            ..TrainConfig::default()
        };
        assert!((t.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((t.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((t.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((t.lr_at(60) - 0.55).abs() < 1e-12);
        assert!((t.lr_at(110) - 0.1).abs() < 1e-12);
        // monotone after warm-up
        let lrs: Vec<f64> = (10..110).map(|s| t.lr_at(s)).collect();
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]));
        t.min_lr_ratio = 0.0;
        assert!(t.lr_at(110).abs() < 1e-12);
    }
}
