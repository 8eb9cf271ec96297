//! Fused CPU kernels for the two places where a tiny model's step spends its time:
//! the cross-entropy over a large vocabulary (one pass forward, one pass backward over the
//! `tokens x vocab` logits instead of a chain of element-wise tensors) and AdamW (one pass
//! over each parameter instead of a dozen temporaries). Other devices use the generic
//! tensor-op versions in [`super::model`] and [`super::train`]; both give the same
//! numbers up to float rounding.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor, WithDType, bail};
use rayon::prelude::*;

/// The `T`s a contiguous layout covers in a CPU storage; `what` names the input in errors.
fn slice<'a, T: WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [T]> {
    let Ok(v) = s.as_slice::<T>() else {
        bail!("{what}: expected {}", T::DTYPE.as_str())
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{what}: expected a contiguous tensor"),
    }
}

/// The inputs both cross-entropy kernels start from: the logits' shape `(n, v)`, the
/// logits and the targets (one per row).
fn logits_and_targets<'a>(
    (s1, l1): (&'a CpuStorage, &Layout),
    (s2, l2): (&'a CpuStorage, &Layout),
) -> candle_core::Result<(usize, usize, &'a [f32], &'a [u32])> {
    let (n, v) = l1.shape().dims2()?;
    let z = slice(s1, l1, "logits")?;
    let t = slice(s2, l2, "targets")?;
    if t.len() != n {
        bail!("cross-entropy: {n} rows, {} targets", t.len())
    }
    Ok((n, v, z, t))
}

/// Per-row loss `logsumexp(z) - z[t]` of logits `[n, v]` and targets `[n]`.
struct CrossEntropyRows;

impl CustomOp2 for CrossEntropyRows {
    fn name(&self) -> &'static str {
        "cross-entropy-rows"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, v, z, t) = logits_and_targets((s1, l1), (s2, l2))?;
        let out: Vec<f32> = z
            .par_chunks(v)
            .zip(t.par_iter())
            .map(|(row, &t)| {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let s: f64 = row.iter().map(|&x| ((x - m) as f64).exp()).sum();
                (s.ln() + m as f64 - row[t as usize] as f64) as f32
            })
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = logits.apply_op3_no_bwd(targets, &grad_res.contiguous()?, &CrossEntropyGrad)?;
        Ok((Some(g), None))
    }
}

/// `d loss_i / d z_ij = g_i * (softmax(z_i)_j - [j == t_i])`.
struct CrossEntropyGrad;

impl CustomOp3 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, v, z, t) = logits_and_targets((s1, l1), (s2, l2))?;
        let g = slice::<f32>(s3, l3, "grad")?;
        let mut out = vec![0f32; n * v];
        out.par_chunks_mut(v)
            .zip(z.par_chunks(v))
            .zip(t.par_iter().zip(g.par_iter()))
            .for_each(|((o, row), (&t, &g))| {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let s: f64 = row.iter().map(|&x| ((x - m) as f64).exp()).sum();
                let inv = (1.0 / s) as f32;
                for (o, &x) in o.iter_mut().zip(row) {
                    *o = g * (x - m).exp() * inv;
                }
                o[t as usize] -= g;
            });
        Ok((CpuStorage::F32(out), Shape::from((n, v))))
    }
}

/// Per-row losses of CPU logits `[n, v]` (contiguous f32) against targets `[n]` (u32),
/// differentiable with respect to the logits.
pub fn cross_entropy_rows(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, CrossEntropyRows)
}

/// One AdamW update of a parameter, in place (PyTorch's formulation): returns nothing,
/// updates `theta`, `m` and `v`. `g` is already scaled by the clipping factor `clip`.
#[allow(clippy::too_many_arguments)]
pub fn adamw_update(
    theta: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    clip: f32,
    lr: f64,
    wd: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    bc1: f64,
    bc2: f64,
) {
    let (b1, b2) = (beta1 as f32, beta2 as f32);
    let decay = (1.0 - lr * wd) as f32;
    let step = (lr / bc1) as f32;
    let sbc2 = (bc2.sqrt()) as f32;
    let eps = eps as f32;
    theta
        .par_chunks_mut(1 << 14)
        .zip(m.par_chunks_mut(1 << 14))
        .zip(v.par_chunks_mut(1 << 14).zip(g.par_chunks(1 << 14)))
        .for_each(|((th, m), (v, g))| {
            for i in 0..th.len() {
                let gi = g[i] * clip;
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                let denom = v[i].sqrt() / sbc2 + eps;
                th[i] = th[i] * decay - step * m[i] / denom;
            }
        });
}

/// The largest element-wise difference between two tensors of one shape: how the parity
/// checks (fused kernels against tensor ops, the model against transformers' numbers)
/// measure agreement.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f32> {
    (a - b)?.abs()?.max_all()?.to_scalar()
}

#[cfg(test)]
mod tests {
    use super::super::model::{cross_entropy, cross_entropy_generic};
    use candle_core::{Device, Tensor, Var};

    /// The fused kernel and the tensor-op version agree in value and gradient.
    #[test]
    fn fused_cross_entropy_matches_generic() {
        let mut r = super::super::rng::SplitMix64::new(5);
        let (n, v) = (7, 300);
        let data: Vec<f32> = (0..n * v).map(|_| r.normal() * 3.0).collect();
        let t: Vec<u32> = (0..n).map(|_| r.below(v as u64) as u32).collect();
        let z = Var::from_tensor(&Tensor::from_vec(data, (n, v), &Device::Cpu).unwrap()).unwrap();
        let t = Tensor::from_vec(t, n, &Device::Cpu).unwrap();
        let a = cross_entropy(z.as_tensor(), &t).unwrap();
        let b = cross_entropy_generic(z.as_tensor(), &t).unwrap();
        let (la, lb): (f32, f32) = (a.to_scalar().unwrap(), b.to_scalar().unwrap());
        assert!((la - lb).abs() < 1e-5, "{la} vs {lb}");
        let ga = a.backward().unwrap().get(z.as_tensor()).unwrap().clone();
        let gb = b.backward().unwrap().get(z.as_tensor()).unwrap().clone();
        let d = super::max_abs_diff(&ga, &gb).unwrap();
        assert!(d < 1e-6, "gradient difference {d}");
    }
}
