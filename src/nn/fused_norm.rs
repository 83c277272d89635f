//! GroupNorm (Wu & He 2018), optionally followed by SiLU, as one operation on the flex CPU
//! backend, with and without autodiff: the forward pass reads each (image, group) block twice
//! (moments) and writes the output once, and the backward pass is one autodiff node with the
//! closed-form gradient, two passes over x and dy, instead of the dozen element-wise tensor
//! operations (each a full read and write, most with its own backward) that the composed
//! version records. Other backends return `None` and the caller composes the operation.
//!
//! With x̂ = (x − μ_g)·r_g, r_g = 1/√(σ²_g + ε) over the M = (C/G)·H·W values of a group, z =
//! γ_c·x̂ + β_c and y = z·σ(z) (SiLU) or y = z:
//!
//! - dz = dy·σ(z)·(1 + z·(1 − σ(z))) (SiLU) or dy;
//! - dβ_c = Σ_{n,p} dz, dγ_c = Σ_{n,p} dz·x̂;
//! - with g = γ_c·dz: dx = r_g·(g − mean_g(g) − x̂·mean_g(g·x̂)).

use burn::backend::{Autodiff, Flex};
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};

use super::autodiff_node::record;
use burn_flex::ops::activation::sigmoid_f32;
use burn_flex::FlexTensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::flex_native::{cast, dispatch, f32_values, flex, simd, slice, written};

/// Shape and settings of one call.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    groups: usize,
    eps: f32,
    silu: bool,
}

impl Geom {
    /// Pixels per channel.
    fn hw(&self) -> usize {
        self.h * self.w
    }
    /// Channels per group.
    fn per(&self) -> usize {
        self.c / self.groups
    }
    /// Elements of one (image, group) block, contiguous in NCHW.
    fn block(&self) -> usize {
        self.per() * self.hw()
    }
    fn shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
}

/// `act(GroupNorm(x))` in one operation where `B` is flex or autodiff over flex and every tensor
/// is f32; `None` otherwise (the caller composes it). `x: [n, c, h, w]`, `gamma`, `beta`: `[c]`,
/// `groups` divides `c`.
pub(crate) fn group_norm<B: Backend>(
    x: &Tensor<B, 4>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Option<Tensor<B, 4>> {
    let [n, c, h, w] = x.dims();
    if groups == 0 || c % groups != 0 || n * c * h * w == 0 {
        return None;
    }
    let g = Geom {
        n,
        c,
        h,
        w,
        groups,
        eps: eps as f32,
        silu,
    };
    if let (Some(x), Some(gm), Some(bt)) = (
        cast::<_, Tensor<Flex, 4>>(x.clone()),
        cast::<_, Tensor<Flex, 1>>(gamma.clone()),
        cast::<_, Tensor<Flex, 1>>(beta.clone()),
    ) {
        let x = f32_values(x.into_primitive().tensor())?;
        let gm = f32_values(gm.into_primitive().tensor())?;
        let bt = f32_values(bt.into_primitive().tensor())?;
        let (y, _) = forward(slice(&x), slice(&gm), slice(&bt), g);
        let y = TensorPrimitive::Float(flex(y, g.shape()));
        return cast(Tensor::<Flex, 4>::from_primitive(y));
    }
    if let (Some(x), Some(gm), Some(bt)) = (
        cast::<_, Tensor<Autodiff<Flex>, 4>>(x.clone()),
        cast::<_, Tensor<Autodiff<Flex>, 1>>(gamma.clone()),
        cast::<_, Tensor<Autodiff<Flex>, 1>>(beta.clone()),
    ) {
        return cast(autodiff(x, gm, bt, g)?);
    }
    None
}

/// Everything the backward pass needs.
#[derive(Clone, Debug)]
struct Saved {
    x: FlexTensor,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    /// (μ, r) per (image, group).
    stats: Vec<(f32, f32)>,
    g: Geom,
}

/// The autodiff node of [`group_norm`] (parents x, γ, β).
#[derive(Debug)]
struct GroupNormBackward;

impl Backward<Flex, 3> for GroupNormBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let s = ops.state;
        let (dx, dgamma, dbeta) =
            backward(slice(&s.x), slice(&dy), &s.gamma, &s.beta, &s.stats, s.g);
        let [px, pg, pb] = ops.parents;
        if let Some(node) = px {
            grads.register::<Flex>(node.id, flex(dx, s.g.shape()));
        }
        if let Some(node) = pg {
            grads.register::<Flex>(node.id, flex(dgamma, [s.g.c]));
        }
        if let Some(node) = pb {
            grads.register::<Flex>(node.id, flex(dbeta, [s.g.c]));
        }
    }
}

/// The forward pass under autodiff, recording one [`GroupNormBackward`] node.
fn autodiff(
    x: Tensor<Autodiff<Flex>, 4>,
    gamma: Tensor<Autodiff<Flex>, 1>,
    beta: Tensor<Autodiff<Flex>, 1>,
    g: Geom,
) -> Option<Tensor<Autodiff<Flex>, 4>> {
    let x = x.into_primitive().tensor();
    let gamma = gamma.into_primitive().tensor();
    let beta = beta.into_primitive().tensor();
    let xv = f32_values(x.primitive.clone())?;
    let gv = slice(&f32_values(gamma.primitive.clone())?).to_vec();
    let bv = slice(&f32_values(beta.primitive.clone())?).to_vec();
    let (y, stats) = forward(slice(&xv), &gv, &bv, g);
    let y = flex(y, g.shape());
    let saved = || Saved {
        x: xv,
        gamma: gv,
        beta: bv,
        stats,
        g,
    };
    Some(record(GroupNormBackward, [&x, &gamma, &beta], y, saved))
}

/// Lanes of the vectorisable loops below: a block's rows are walked in arrays of 16, with 16
/// independent partial sums per quantity, so that the compiler keeps them in vector registers.
const LANES: usize = 16;

/// `f(a[j], b[j]) = (o, s)` for every j: o into `out[j]` (written, never read, so it may start
/// uninitialised), and Σ_j s (K sums) returned, added up in f64 from [`LANES`] f32 partial sums.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // i indexes four arrays in step; this form vectorises
fn map_sum<const K: usize>(
    a: &[f32],
    b: &[f32],
    out: &mut [MaybeUninit<f32>],
    f: impl Fn(f32, f32) -> (f32, [f32; K]),
) -> [f64; K] {
    let (a16, a_tail) = a.as_chunks::<LANES>();
    let (b16, b_tail) = b[..a.len()].as_chunks::<LANES>();
    let (o16, o_tail) = out[..a.len()].as_chunks_mut::<LANES>();
    let mut acc = [[0f32; LANES]; K];
    for ((ac, bc), oc) in a16.iter().zip(b16).zip(o16.iter_mut()) {
        for i in 0..LANES {
            let (o, v) = f(ac[i], bc[i]);
            oc[i].write(o);
            for k in 0..K {
                acc[k][i] += v[k];
            }
        }
    }
    let mut sums = acc.map(|a| a.iter().map(|&v| v as f64).sum::<f64>());
    for ((&x, &y), o) in a_tail.iter().zip(b_tail).zip(o_tail) {
        let (r, v) = f(x, y);
        o.write(r);
        for (s, v) in sums.iter_mut().zip(v) {
            *s += v as f64;
        }
    }
    sums
}

/// Σ_j f(a[j]), added up in f64 from 4·[`LANES`] f32 partial sums: four independent vector
/// additions per step, since one chain waits out the addition's latency on every vector (the
/// moments' second pass reads a block from cache and was bound by that chain).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // as in `map_sum`
fn lane_sum(a: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    const W: usize = 4 * LANES;
    let (a64, tail) = a.as_chunks::<W>();
    let mut acc = [0f32; W];
    for ac in a64 {
        for i in 0..W {
            acc[i] += f(ac[i]);
        }
    }
    let head: f64 = acc.iter().map(|&v| v as f64).sum();
    head + tail.iter().map(|&v| f(v) as f64).sum::<f64>()
}

/// (μ, 1/√(σ² + ε)) of one block, two passes (biased variance, as PyTorch).
#[inline(always)]
fn moments(xb: &[f32], eps: f32) -> (f32, f32) {
    let m = xb.len() as f64;
    let mean = (lane_sum(xb, |x| x) / m) as f32;
    let ss = lane_sum(xb, |x| (x - mean) * (x - mean));
    (mean, 1.0 / ((ss / m) as f32 + eps).sqrt())
}

/// One (image, group) block of the forward pass: its (μ, r) and `yb` (every element written);
/// `c0` is its first channel.
#[inline(always)]
fn forward_block(
    xb: &[f32],
    yb: &mut [MaybeUninit<f32>],
    gamma: &[f32],
    beta: &[f32],
    c0: usize,
    g: Geom,
) -> (f32, f32) {
    let (mean, r) = moments(xb, g.eps);
    for (k, (yr, xr)) in yb.chunks_mut(g.hw()).zip(xb.chunks(g.hw())).enumerate() {
        let a = r * gamma[c0 + k];
        let s = beta[c0 + k] - mean * a;
        if g.silu {
            for (o, &v) in yr.iter_mut().zip(xr) {
                let z = v * a + s;
                o.write(z * sigmoid_f32(z));
            }
        } else {
            for (o, &v) in yr.iter_mut().zip(xr) {
                o.write(v * a + s);
            }
        }
    }
    (mean, r)
}

/// One block of the backward pass: `dxb` (every element written) and the per-channel
/// (Σ dz·x̂, Σ dz) in `pb`.
#[inline(always)]
fn backward_block(
    (xb, dyb, dxb): (&[f32], &[f32], &mut [MaybeUninit<f32>]),
    pb: &mut [(f64, f64)],
    (gamma, beta): (&[f32], &[f32]),
    (mean, r): (f32, f32),
    c0: usize,
    g: Geom,
) {
    let hw = g.hw();
    let (mut s1, mut s2) = (0f64, 0f64);
    // Pass 1: g = γ·dz into dx, the channel sums and the group sums of g and g·x̂.
    for (k, p) in pb.iter_mut().enumerate() {
        let (gm, bt) = (gamma[c0 + k], beta[c0 + k]);
        let rows = k * hw..(k + 1) * hw;
        let (xr, dyr) = (&xb[rows.clone()], &dyb[rows.clone()]);
        let [dg, db, a1, a2] = if g.silu {
            map_sum(xr, dyr, &mut dxb[rows], |x, dy| {
                let xh = (x - mean) * r;
                let z = gm * xh + bt;
                let s = sigmoid_f32(z);
                let dz = dy * s * (1.0 + z * (1.0 - s));
                let gj = gm * dz;
                (gj, [dz * xh, dz, gj, gj * xh])
            })
        } else {
            map_sum(xr, dyr, &mut dxb[rows], |x, dz| {
                let xh = (x - mean) * r;
                let gj = gm * dz;
                (gj, [dz * xh, dz, gj, gj * xh])
            })
        };
        *p = (dg, db);
        s1 += a1;
        s2 += a2;
    }
    // Pass 2: dx = r·(g − mean(g) − x̂·mean(g·x̂)).
    // SAFETY: pass 1 wrote every element: its channels' rows cover the block.
    let dxb = unsafe { assume_init(dxb) };
    let m = xb.len() as f64;
    let (m1, m2) = ((s1 / m) as f32, (s2 / m) as f32);
    for (d, &v) in dxb.iter_mut().zip(xb) {
        let xh = (v - mean) * r;
        *d = r * (*d - m1 - xh * m2);
    }
}

dispatch!(forward_block_at, forward_block,
    (xb: &[f32], yb: &mut [MaybeUninit<f32>], gamma: &[f32], beta: &[f32], c0: usize, g: Geom)
    -> (f32, f32));
dispatch!(backward_block_at, backward_block,
    (data: (&[f32], &[f32], &mut [MaybeUninit<f32>]), pb: &mut [(f64, f64)],
     params: (&[f32], &[f32]), stats: (f32, f32), c0: usize, g: Geom) -> ());

/// `v` as initialised values.
///
/// # Safety
/// Every element of `v` must have been written.
unsafe fn assume_init(v: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the caller vouches for the contents.
    unsafe { &mut *(v as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// The output and the (μ, r) of every (image, group) block.
fn forward(x: &[f32], gamma: &[f32], beta: &[f32], g: Geom) -> (Vec<f32>, Vec<(f32, f32)>) {
    let (per, block, level) = (g.per(), g.block(), simd());
    let mut stats = vec![(0f32, 0f32); g.n * g.groups];
    // Blocks tile x, so every element of y is written.
    let y = written(x.len(), |y| {
        y.par_chunks_mut(block)
            .zip(x.par_chunks(block))
            .zip(stats.par_iter_mut())
            .enumerate()
            .for_each(|(b, ((yb, xb), st))| {
                let c0 = (b % g.groups) * per;
                *st = forward_block_at(level, xb, yb, gamma, beta, c0, g);
            });
    });
    (y, stats)
}

/// (dx, dγ, dβ) from the saved input and statistics and the output gradient `dy`.
fn backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &[(f32, f32)],
    g: Geom,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (per, block, level) = (g.per(), g.block(), simd());
    // Per (image, channel): Σ dz·x̂ and Σ dz.
    let mut partial = vec![(0f64, 0f64); g.n * g.c];
    // Blocks tile x, so every element of dx is written.
    let dx = written(x.len(), |dx| {
        dx.par_chunks_mut(block)
            .zip(x.par_chunks(block))
            .zip(dy.par_chunks(block))
            .zip(partial.par_chunks_mut(per))
            .enumerate()
            .for_each(|(b, (((dxb, xb), dyb), pb))| {
                let c0 = (b % g.groups) * per;
                let data = (xb, dyb, dxb);
                backward_block_at(level, data, pb, (gamma, beta), stats[b], c0, g);
            });
    });
    let (mut dgamma, mut dbeta) = (vec![0f64; g.c], vec![0f64; g.c]);
    for img in partial.chunks(g.c) {
        for (ch, &(dg, db)) in img.iter().enumerate() {
            dgamma[ch] += dg;
            dbeta[ch] += db;
        }
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (dx, f32s(dgamma), f32s(dbeta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flex_native::Simd;

    /// Every instruction-set copy of the block kernels that this CPU runs gives the baseline
    /// copy's results (the fused operation itself is checked against burn-nn's GroupNorm in
    /// `group_norm.rs`, with whichever copy this CPU picks).
    #[test]
    fn every_simd_copy_matches_the_baseline() {
        let g = Geom {
            n: 1,
            c: 6,
            h: 7,
            w: 5,
            groups: 2,
            eps: 1e-5,
            silu: true,
        };
        let block = g.block();
        let val = |i: usize, k: usize| ((i * 7919 + k * 104_729) % 1000) as f32 / 250.0 - 2.0;
        let x: Vec<f32> = (0..block).map(|i| val(i, 1)).collect();
        let dy: Vec<f32> = (0..block).map(|i| val(i, 2)).collect();
        let (gamma, beta) = (
            [0.5, 1.5, -0.7, 1.0, 2.0, 0.3],
            [0.1, -0.2, 0.3, 0.0, 0.5, -1.0],
        );
        let run = |level: Simd| {
            let mut y = vec![MaybeUninit::new(f32::NAN); block];
            let st = forward_block_at(level, &x, &mut y, &gamma, &beta, 3, g);
            let (mut dx, mut p) = (
                vec![MaybeUninit::new(f32::NAN); block],
                vec![(0f64, 0f64); 3],
            );
            let data = (&x[..], &dy[..], &mut dx[..]);
            backward_block_at(level, data, &mut p, (&gamma, &beta), st, 3, g);
            // SAFETY: initialised (to NaN, which the kernels overwrite).
            let init = |v: Vec<MaybeUninit<f32>>| -> Vec<f32> {
                v.iter().map(|e| unsafe { e.assume_init() }).collect()
            };
            (init(y), init(dx), p)
        };
        let want = run(Simd::Baseline);
        let levels = Simd::ALL.iter().skip(1).filter(|l| l.supported());
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-5);
        assert!(
            want.0.iter().chain(&want.1).all(|v| v.is_finite()),
            "an element not written"
        );
        for &level in levels {
            let got = run(level);
            assert!(close(&got.0, &want.0), "forward differs");
            assert!(close(&got.1, &want.1), "input gradient differs");
            for (a, b) in got.2.iter().zip(&want.2) {
                assert!((a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-4);
            }
        }
        assert!(want.0.iter().any(|&v| v != 0.0) && want.1.iter().any(|&v| v != 0.0));
    }
}
