//! The output projection and next-token cross-entropy, fused and blocked over the
//! vocabulary, on the CPU.
//!
//! With a 152k vocabulary and a small hidden size, almost all of a tiny model's step is
//! here: `n x hidden` hidden states against a `vocab x hidden` projection. Materialising
//! the `n x vocab` logits (1.2 GB for a 2,048-token step) and then their gradient costs
//! more in page clearing and memory traffic than in arithmetic, so this computes the loss
//! and both gradients one block of vocabulary rows at a time, with the block's logits in
//! cache:
//!
//! 1. for each block, `Z = H W_blk^T`, and per row an online log-sum-exp (running maximum
//!    and sum) and the target's logit;
//! 2. for each block again, `Z` recomputed, `P = g * (exp(Z - lse) - onehot)`, then
//!    `dW_blk = P^T H` and `dH += P W_blk`.
//!
//! Recomputing `Z` costs a third more multiply-adds and saves writing and reading the
//! logits twice. The blocks are split into a fixed number of groups that run in parallel,
//! each with its own `dH` and sums, combined in group order: the result does not depend on
//! the thread count. Matrix products go through `gemm` (the kernel candle itself uses), one
//! thread per call. `exp` is a vectorisable polynomial (Cephes' `expf`, within 2 ulp).

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// Logits computed at a time per block: `rows x block` floats (about 1 MB).
const BLOCK_FLOATS: usize = 1 << 18;
/// Fixed number of parallel groups of blocks (independent of the thread count).
const GROUPS: usize = 32;

/// Shapes and inputs of the fused head: hidden states `h` (`n x d`, row-major), the
/// projection `w` (`v x d`, row-major, HF's `lm_head.weight`) and targets (`n`, each `< v`).
pub struct Head<'a> {
    /// Hidden states, `n x d`.
    pub h: &'a [f32],
    /// Output projection, `v x d`.
    pub w: &'a [f32],
    /// Target ids, `n`.
    pub targets: &'a [u32],
    /// Hidden size.
    pub d: usize,
    /// Vocabulary rows per block; 0 chooses about 1 MB of logits per block.
    pub block_rows: usize,
}

/// Loss and gradients of [`Head::loss_and_grads`].
pub struct HeadGrads {
    /// Per-row losses `logsumexp(z_i) - z_i[t_i]`.
    pub losses: Vec<f64>,
    /// Gradient of `sum_i g_i * loss_i` for the hidden states, `n x d`.
    pub dh: Vec<f32>,
    /// Gradient for the projection, `v x d`.
    pub dw: Vec<f32>,
}

/// Per-row log-sum-exp state: running maximum and sum of `exp(z - max)`.
#[derive(Clone, Copy)]
struct Lse {
    max: f32,
    sum: f64,
}

impl Lse {
    const EMPTY: Lse = Lse {
        max: f32::NEG_INFINITY,
        sum: 0.0,
    };

    fn merge(self, o: Lse) -> Lse {
        if o.max == f32::NEG_INFINITY {
            return self;
        }
        if self.max == f32::NEG_INFINITY {
            return o;
        }
        let max = self.max.max(o.max);
        Lse {
            max,
            sum: self.sum * ((self.max - max) as f64).exp() + o.sum * ((o.max - max) as f64).exp(),
        }
    }

    fn value(self) -> f64 {
        self.max as f64 + self.sum.ln()
    }
}

impl Head<'_> {
    fn n(&self) -> usize {
        self.targets.len()
    }

    fn v(&self) -> usize {
        self.w.len() / self.d
    }

    fn check(&self) {
        let (n, d, v) = (self.n(), self.d, self.v());
        assert_eq!(self.h.len(), n * d, "hidden states are not n x d");
        assert_eq!(self.w.len(), v * d, "projection is not v x d");
        assert!(
            self.targets.iter().all(|&t| (t as usize) < v),
            "target id beyond the vocabulary"
        );
    }

    /// Vocabulary rows per block, and the blocks of each group as `(start, end)` row
    /// ranges of the vocabulary.
    fn groups(&self) -> Vec<Vec<(usize, usize)>> {
        let (n, v) = (self.n(), self.v());
        let block = match self.block_rows {
            0 => (BLOCK_FLOATS / n.max(1)).clamp(16, 1024) / 16 * 16,
            b => b,
        };
        let blocks: Vec<(usize, usize)> = (0..v)
            .step_by(block)
            .map(|s| (s, (s + block).min(v)))
            .collect();
        let per = blocks.len().div_ceil(GROUPS).max(1);
        blocks.chunks(per).map(|c| c.to_vec()).collect()
    }

    /// `z = H W[s..e]^T` into `z` (`n x (e-s)`, row-major).
    fn logits(&self, s: usize, e: usize, z: &mut [f32]) {
        let (n, d, b) = (self.n(), self.d, e - s);
        // SAFETY: the strides describe `h` (n x d), `w[s..e]` transposed (d x b) and `z`
        // (n x b), all row-major and in bounds (checked by `check` and the slice lengths).
        unsafe {
            matmul(
                (n, b, d),
                (z.as_mut_ptr(), 1, b as isize),
                false,
                (self.h.as_ptr(), 1, d as isize),
                (self.w[s * d..e * d].as_ptr(), d as isize, 1),
            )
        }
    }

    /// Per-row log-sum-exp and target logit over the whole vocabulary.
    fn forward_stats(&self) -> (Vec<Lse>, Vec<f32>) {
        let n = self.n();
        // Per group: the rows' log-sum-exp over its blocks, and (row, target logit) for
        // the targets that fall in its blocks.
        type Part = (Vec<Lse>, Vec<(usize, f32)>);
        let parts: Vec<Part> = self
            .groups()
            .into_par_iter()
            .map(|blocks| {
                let mut lse = vec![Lse::EMPTY; n];
                let mut picked = Vec::new();
                let mut z = Vec::new();
                for (s, e) in blocks {
                    let b = e - s;
                    z.resize(n * b, 0.0);
                    self.logits(s, e, &mut z);
                    for (i, row) in z.chunks_exact_mut(b).enumerate() {
                        let t = self.targets[i] as usize;
                        if (s..e).contains(&t) {
                            picked.push((i, row[t - s]));
                        }
                        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let sum = exp_shifted_sum(row, max);
                        lse[i] = lse[i].merge(Lse {
                            max,
                            sum: sum as f64,
                        });
                    }
                }
                (lse, picked)
            })
            .collect();
        let mut lse = vec![Lse::EMPTY; n];
        let mut target = vec![0f32; n];
        for (part, picked) in parts {
            for (a, b) in lse.iter_mut().zip(part) {
                *a = a.merge(b);
            }
            for (i, z) in picked {
                target[i] = z;
            }
        }
        (lse, target)
    }

    /// Per-row losses `logsumexp(z_i) - z_i[t_i]` (no gradients).
    pub fn losses(&self) -> Vec<f64> {
        self.check();
        let (lse, target) = self.forward_stats();
        lse.iter()
            .zip(&target)
            .map(|(l, &t)| l.value() - t as f64)
            .collect()
    }

    /// Per-row losses and the gradients of `sum_i g[i] * loss_i` for the hidden states
    /// and the projection.
    pub fn loss_and_grads(&self, g: &[f32]) -> HeadGrads {
        self.check();
        let (n, d, v) = (self.n(), self.d, self.v());
        assert_eq!(g.len(), n, "one gradient weight per row");
        let (lse, target) = self.forward_stats();
        let lse_rows: Vec<f32> = lse.iter().map(|l| l.value() as f32).collect();
        let losses: Vec<f64> = lse
            .iter()
            .zip(&target)
            .map(|(l, &t)| l.value() - t as f64)
            .collect();
        let groups = self.groups();
        let mut dw = vec![0f32; v * d];
        // Each group owns a disjoint, contiguous range of rows of dW.
        let mut dw_parts: Vec<&mut [f32]> = Vec::with_capacity(groups.len());
        let mut rest: &mut [f32] = &mut dw;
        for blocks in &groups {
            let rows = blocks.last().map_or(0, |b| b.1) - blocks.first().map_or(0, |b| b.0);
            let (head, tail) = rest.split_at_mut(rows * d);
            dw_parts.push(head);
            rest = tail;
        }
        let dh_parts: Vec<Vec<f32>> = groups
            .into_par_iter()
            .zip(dw_parts)
            .map(|(blocks, dw_part)| {
                let mut dh = vec![0f32; n * d];
                let mut z = Vec::new();
                let base = blocks.first().map_or(0, |b| b.0);
                for (k, &(s, e)) in blocks.iter().enumerate() {
                    let b = e - s;
                    z.resize(n * b, 0.0);
                    self.logits(s, e, &mut z);
                    for (i, row) in z.chunks_exact_mut(b).enumerate() {
                        exp_shifted_scaled(row, lse_rows[i], g[i]);
                        let t = self.targets[i] as usize;
                        if (s..e).contains(&t) {
                            row[t - s] -= g[i];
                        }
                    }
                    let dwb = &mut dw_part[(s - base) * d..(e - base) * d];
                    // SAFETY: dW_blk (b x d) = P^T (b x n, P stored n x b row-major) times
                    // H (n x d); dH (n x d) += P (n x b) times W_blk (b x d). All slices
                    // have exactly these sizes.
                    unsafe {
                        matmul(
                            (b, d, n),
                            (dwb.as_mut_ptr(), 1, d as isize),
                            false,
                            (z.as_ptr(), b as isize, 1),
                            (self.h.as_ptr(), 1, d as isize),
                        );
                        matmul(
                            (n, d, b),
                            (dh.as_mut_ptr(), 1, d as isize),
                            k > 0,
                            (z.as_ptr(), 1, b as isize),
                            (self.w[s * d..e * d].as_ptr(), 1, d as isize),
                        );
                    }
                }
                dh
            })
            .collect();
        let mut dh = vec![0f32; n * d];
        for part in dh_parts {
            for (a, b) in dh.iter_mut().zip(part) {
                *a += b;
            }
        }
        HeadGrads { losses, dh, dw }
    }
}

/// A matrix operand of [`matmul`]: its first element, the stride between columns and
/// the stride between rows (row-major `r x c`: `(p, 1, c)`; its transpose: `(p, c, 1)`).
type Strided<P> = (P, isize, isize);

/// `dst (m x n) = lhs (m x k) * rhs (k x n)`, added to what `dst` holds when
/// `accumulate`; single-threaded, as the callers already run one vocabulary group per
/// thread.
///
/// # Safety
/// Each operand's pointer and strides must describe a matrix of its size in bounds.
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: Strided<*mut f32>,
    accumulate: bool,
    lhs: Strided<*const f32>,
    rhs: Strided<*const f32>,
) {
    // SAFETY: the caller's contract. With `accumulate` false gemm ignores dst's old
    // values (and the 1.0 scaling them).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.0,
            dst.1,
            dst.2,
            accumulate,
            lhs.0,
            lhs.1,
            lhs.2,
            rhs.0,
            rhs.1,
            rhs.2,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// `exp(x)` for `x <= 0` (larger values are not needed here), Cephes' polynomial, written
/// without fused multiply-adds so that every instruction set gives the same bits.
#[inline(always)]
fn exp_nonpos(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.max(-87.0);
    let t = x * LOG2E + ROUND;
    let k = t - ROUND;
    let r = x - k * C1 - k * C2;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // The integer k sits in the low mantissa bits of t; 2^k built from its exponent bits
    // (wrapping arithmetic: no overflow checks in the vectorised loop).
    let e = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    y * f32::from_bits(e)
}

#[inline(always)]
fn exp_shifted_sum_body(row: &[f32], m: f32) -> f32 {
    // Eight partial sums: vectorisable without reassociating floats.
    let mut acc = [0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            acc[j] += exp_nonpos(c[j] - m);
        }
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        acc[j] += exp_nonpos(x - m);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[inline(always)]
fn exp_shifted_scaled_body(row: &mut [f32], m: f32, g: f32) {
    for x in row.iter_mut() {
        *x = exp_nonpos(*x - m) * g;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn exp_shifted_sum_avx2(row: &[f32], m: f32) -> f32 {
    exp_shifted_sum_body(row, m)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn exp_shifted_scaled_avx2(row: &mut [f32], m: f32, g: f32) {
    exp_shifted_scaled_body(row, m, g)
}

/// `sum_j exp(row_j - m)` for `m >= max(row)`.
fn exp_shifted_sum(row: &[f32], m: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { exp_shifted_sum_avx2(row, m) };
    }
    exp_shifted_sum_body(row, m)
}

/// `row_j = g * exp(row_j - m)` for `m >= max(row)`.
fn exp_shifted_scaled(row: &mut [f32], m: f32, g: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { exp_shifted_scaled_avx2(row, m, g) };
    }
    exp_shifted_scaled_body(row, m, g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (a, b) = (exp_nonpos(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.001;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert!(exp_nonpos(-1000.0) < 1e-37);
    }

    /// Random hidden states (`n x d`, standard normal), weights (`v x d`, normal with
    /// standard deviation `w_scale`) and targets, from `seed`.
    fn random_inputs(
        seed: u64,
        (n, d, v): (usize, usize, usize),
        w_scale: f32,
    ) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
        let mut r = super::super::rng::SplitMix64::new(seed);
        let h = (0..n * d).map(|_| r.normal()).collect();
        let w = (0..v * d).map(|_| r.normal() * w_scale).collect();
        let targets = (0..n).map(|_| r.below(v as u64) as u32).collect();
        (h, w, targets)
    }

    /// Loss and both gradients against a direct computation in f64, on shapes that leave
    /// partial blocks and groups.
    #[test]
    fn matches_direct_computation() {
        let (n, d, v) = (37, 8, 5_003);
        let (h, w, targets) = random_inputs(9, (n, d, v), 0.5);
        let g: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 / n as f32).collect();
        let head = Head {
            h: &h,
            w: &w,
            targets: &targets,
            d,
            block_rows: 64,
        };
        let out = head.loss_and_grads(&g);
        let mut dh = vec![0f64; n * d];
        let mut dw = vec![0f64; v * d];
        for i in 0..n {
            let z: Vec<f64> = (0..v)
                .map(|j| {
                    (0..d)
                        .map(|k| h[i * d + k] as f64 * w[j * d + k] as f64)
                        .sum()
                })
                .collect();
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            let loss = lse - z[targets[i] as usize];
            assert!(
                (loss - out.losses[i]).abs() < 1e-4,
                "row {i}: {loss} vs {}",
                out.losses[i]
            );
            for j in 0..v {
                let p = g[i] as f64 * ((z[j] - lse).exp() - f64::from(j == targets[i] as usize));
                for k in 0..d {
                    dh[i * d + k] += p * w[j * d + k] as f64;
                    dw[j * d + k] += p * h[i * d + k] as f64;
                }
            }
        }
        let diff = |a: &[f32], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 - y).abs())
                .fold(0.0, f64::max)
        };
        assert!(diff(&out.dh, &dh) < 1e-5, "dh {}", diff(&out.dh, &dh));
        assert!(diff(&out.dw, &dw) < 1e-6, "dw {}", diff(&out.dw, &dw));
        let losses = head.losses();
        assert_eq!(losses, out.losses);
    }

    /// The same bits whatever the thread count.
    #[test]
    fn independent_of_threads() {
        let (n, d, v) = (64, 16, 20_000);
        let (h, w, targets) = random_inputs(3, (n, d, v), 0.1);
        let g = vec![1.0 / n as f32; n];
        let head = Head {
            h: &h,
            w: &w,
            targets: &targets,
            d,
            block_rows: 0,
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| head.loss_and_grads(&g))
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a.losses, b.losses);
        assert_eq!(a.dh, b.dh);
        assert_eq!(a.dw, b.dw);
    }
}
