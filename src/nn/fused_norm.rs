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

use std::any::Any;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{backend::Backend, DType, Tensor, TensorData, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::ops::activation::sigmoid_f32;
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Shape and settings of one call.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    hw: usize,
    groups: usize,
    eps: f32,
    silu: bool,
}

impl Geom {
    /// Channels per group.
    fn per(&self) -> usize {
        self.c / self.groups
    }
    /// Elements of one (image, group) block, contiguous in NCHW.
    fn block(&self) -> usize {
        self.per() * self.hw
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
        hw: h * w,
        groups,
        eps: eps as f32,
        silu,
    };
    if let (Some(x), Some(gm), Some(bt)) = (
        cast::<_, Tensor<Flex, 4>>(x.clone()),
        cast::<_, Tensor<Flex, 1>>(gamma.clone()),
        cast::<_, Tensor<Flex, 1>>(beta.clone()),
    ) {
        let prim = |t: FlexTensor| Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(t));
        let x = f32_values(x.into_primitive().tensor())?;
        let gm = f32_values(gm.into_primitive().tensor())?;
        let bt = f32_values(bt.into_primitive().tensor())?;
        let (y, _) = forward(slice(&x), slice(&gm), slice(&bt), g);
        return cast(prim(flex(y, g.shape())));
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

/// `t` as a `U` when `T` is `U` (a run-time type check, no conversion).
fn cast<T: 'static, U: 'static>(t: T) -> Option<U> {
    (Box::new(t) as Box<dyn Any>)
        .downcast::<U>()
        .ok()
        .map(|b| *b)
}

/// `t` made contiguous, if it holds f32.
fn f32_values(t: FlexTensor) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    Some(if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    })
}

/// The values of a contiguous f32 tensor (see [`f32_values`]).
fn slice(t: &FlexTensor) -> &[f32] {
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .unwrap_or((0, t.layout().num_elements()));
    &t.storage::<f32>()[start..end]
}

fn flex(values: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
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
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let dy = if dy.is_contiguous() {
            dy
        } else {
            dy.to_contiguous()
        };
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
    let out = match GroupNormBackward
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                x: xv,
                gamma: gv,
                beta: bv,
                stats,
                g,
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// Lanes of the vectorisable sums below.
const LANES: usize = 16;

/// Σ_j f(j) for `K` sums at once over `0..len`, accumulated in [`LANES`] independent f32 lanes
/// (so that the loop vectorises) and added up in f64.
#[inline(always)]
fn lane_sums<const K: usize>(len: usize, mut f: impl FnMut(usize) -> [f32; K]) -> [f64; K] {
    let mut acc = [[0f32; LANES]; K];
    let full = len - len % LANES;
    for base in (0..full).step_by(LANES) {
        for i in 0..LANES {
            for (a, v) in acc.iter_mut().zip(f(base + i)) {
                a[i] += v;
            }
        }
    }
    let mut out = acc.map(|a| a.iter().map(|&v| v as f64).sum::<f64>());
    for j in full..len {
        for (o, v) in out.iter_mut().zip(f(j)) {
            *o += v as f64;
        }
    }
    out
}

/// (μ, 1/√(σ² + ε)) of one block, two passes (biased variance, as PyTorch).
fn moments(xb: &[f32], eps: f32) -> (f32, f32) {
    let m = xb.len() as f64;
    let [sum] = lane_sums(xb.len(), |j| [xb[j]]);
    let mean = (sum / m) as f32;
    let [ss] = lane_sums(xb.len(), |j| {
        let d = xb[j] - mean;
        [d * d]
    });
    let var = (ss / m) as f32;
    (mean, 1.0 / (var + eps).sqrt())
}

/// The output and the (μ, r) of every (image, group) block.
fn forward(x: &[f32], gamma: &[f32], beta: &[f32], g: Geom) -> (Vec<f32>, Vec<(f32, f32)>) {
    let (per, block) = (g.per(), g.block());
    let mut y = vec![0f32; x.len()];
    let mut stats = vec![(0f32, 0f32); g.n * g.groups];
    y.par_chunks_mut(block)
        .zip(x.par_chunks(block))
        .zip(stats.par_iter_mut())
        .enumerate()
        .for_each(|(b, ((yb, xb), st))| {
            let (mean, r) = moments(xb, g.eps);
            *st = (mean, r);
            let c0 = (b % g.groups) * per;
            for (k, (yr, xr)) in yb.chunks_mut(g.hw).zip(xb.chunks(g.hw)).enumerate() {
                let a = r * gamma[c0 + k];
                let s = beta[c0 + k] - mean * a;
                if g.silu {
                    for (o, &v) in yr.iter_mut().zip(xr) {
                        let z = v * a + s;
                        *o = z * sigmoid_f32(z);
                    }
                } else {
                    for (o, &v) in yr.iter_mut().zip(xr) {
                        *o = v * a + s;
                    }
                }
            }
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
    let (per, block, hw) = (g.per(), g.block(), g.hw);
    let mut dx = vec![0f32; x.len()];
    // Per (image, channel): Σ dz·x̂ and Σ dz.
    let mut partial = vec![(0f64, 0f64); g.n * g.c];
    dx.par_chunks_mut(block)
        .zip(x.par_chunks(block))
        .zip(dy.par_chunks(block))
        .zip(partial.par_chunks_mut(per))
        .enumerate()
        .for_each(|(b, (((dxb, xb), dyb), pb))| {
            let (mean, r) = stats[b];
            let c0 = (b % g.groups) * per;
            let (mut s1, mut s2) = (0f64, 0f64);
            // Pass 1: g = γ·dz into dx, the channel sums and the group sums of g and g·x̂.
            for (k, p) in pb.iter_mut().enumerate() {
                let (gm, bt) = (gamma[c0 + k], beta[c0 + k]);
                let rows = k * hw..(k + 1) * hw;
                let (xr, dyr) = (&xb[rows.clone()], &dyb[rows.clone()]);
                let dxr = &mut dxb[rows];
                let [dg, db, a1, a2] = lane_sums(hw, |j| {
                    let xh = (xr[j] - mean) * r;
                    let dz = if g.silu {
                        let z = gm * xh + bt;
                        let s = sigmoid_f32(z);
                        dyr[j] * s * (1.0 + z * (1.0 - s))
                    } else {
                        dyr[j]
                    };
                    let gj = gm * dz;
                    dxr[j] = gj;
                    [dz * xh, dz, gj, gj * xh]
                });
                *p = (dg, db);
                s1 += a1;
                s2 += a2;
            }
            // Pass 2: dx = r·(g − mean(g) − x̂·mean(g·x̂)).
            let m = block as f64;
            let (m1, m2) = ((s1 / m) as f32, (s2 / m) as f32);
            for (d, &v) in dxb.iter_mut().zip(xb) {
                let xh = (v - mean) * r;
                *d = r * (*d - m1 - xh * m2);
            }
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
