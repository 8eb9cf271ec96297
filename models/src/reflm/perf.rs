//! Model FLOPs and the peak FLOPs of known accelerators, for the model FLOPs utilization
//! (MFU) of a training run.
//!
//! Model FLOPs per training token follow PaLM (Chowdhery et al. 2022, appendix B):
//! `6 N + 12 L H T`, with `N` the parameters that take part in matrix products (all but
//! the input embedding, which is a lookup), `L` layers, `H` the hidden size and `T` the
//! context: the second term is attention's scores and weighted sum, forward and backward,
//! without crediting the causal mask. MFU is the model FLOPs done per second over the
//! device's dense peak; recomputation or padding would not count.

use super::config::{ModelConfig, Precision};

/// Model FLOPs of one training token (forward and backward).
pub fn flops_per_token(m: &ModelConfig, vocab: usize) -> f64 {
    let n = m.parameters(vocab) - vocab * m.hidden;
    6.0 * n as f64 + 12.0 * (m.layers * m.hidden * m.context) as f64
}

/// Dense peak FLOP/s of a device known by name, for a precision: NVIDIA's data-sheet
/// figures without sparsity (bf16 on tensor cores; f32 on the CUDA cores, since candle
/// runs f32 products without TF32). None for a device not in the table.
pub fn peak_flops(device_name: &str, precision: Precision) -> Option<f64> {
    let n = device_name.to_ascii_uppercase();
    // (name part, bf16 TFLOP/s, f32 TFLOP/s); the first match wins, so the PCIe and NVL
    // cards come before the SXM part they share a name with.
    const TABLE: &[(&str, f64, f64)] = &[
        ("H100 PCIE", 756.0, 51.2),
        ("H100 NVL", 835.0, 60.0),
        ("H200 NVL", 835.0, 60.0),
        ("H100", 989.4, 66.9),
        ("H200", 989.4, 66.9), // also GH200
        ("A100", 312.0, 19.5),
    ];
    let (_, bf16, f32) = TABLE.iter().find(|(k, _, _)| n.contains(k))?;
    Some(
        1e12 * match precision {
            Precision::Bf16 => *bf16,
            Precision::F32 => *f32,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_of_a_small_model() {
        let m = ModelConfig {
            layers: 2,
            hidden: 64,
            heads: 4,
            kv_heads: 0,
            intermediate: 0,
            context: 32,
            rope_theta: 1e4,
            rms_norm_eps: 1e-6,
            init_std: 0.02,
            vocab: 0,
        };
        let vocab = 100;
        // Everything but the input embedding: the parameter count less vocab x hidden.
        let n = m.parameters(vocab) - vocab * 64;
        assert_eq!(
            flops_per_token(&m, vocab),
            6.0 * n as f64 + 12.0 * 2.0 * 64.0 * 32.0
        );
    }

    #[test]
    fn peaks_by_name() {
        let tflops = |name: &str, p| peak_flops(name, p).map(|f| (f / 1e9).round() / 1e3);
        assert_eq!(
            tflops("NVIDIA H100 80GB HBM3", Precision::Bf16),
            Some(989.4)
        );
        assert_eq!(tflops("NVIDIA H100 PCIe", Precision::Bf16), Some(756.0));
        assert_eq!(tflops("NVIDIA H200", Precision::F32), Some(66.9));
        assert_eq!(tflops("NVIDIA H200 NVL", Precision::Bf16), Some(835.0));
        assert_eq!(tflops("NVIDIA GeForce RTX 4090", Precision::Bf16), None);
    }
}
