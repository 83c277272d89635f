//! Softmax of a scaled tensor over its last dimension, y = softmax(s·x), as one operation on
//! the flex CPU backend, with and without autodiff (the attention weights
//! softmax(Q·Kᵀ/√d) of Vaswani et al. 2017, with s = 1/√d).
//!
//! burn composes it from a scaling, `max_dim`, a broadcast subtraction, `exp`, `sum_dim` and a
//! broadcast division: six passes over the tensor forward and, under autodiff, five nodes whose
//! backward passes make about ten more, with a libm `expf` call per element. Here the forward
//! pass reads each row twice and writes it once (the row stays in L1), with an `exp` that
//! vectorises, and the backward pass is one node with the closed form
//! dx = s·y·(dy − Σ_j dy_j·y_j) per row, one pass over y and dy. Other backends get the
//! composed version.

use std::mem::MaybeUninit;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{activation, backend::Backend, DType, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};

use super::autodiff_node::record;
use burn_flex::ops::activation::exp_f32;
use burn_flex::FlexTensor;

use super::flex_native::{
    dispatch, flex, owned_contiguous, run_pieces, simd, slice, try_cast, unique_values, written,
};

/// softmax(scale·x) over the last dimension: fused on flex (with or without autodiff) for f32
/// tensors, composed from burn's `softmax(x * scale, D − 1)` elsewhere. Same values (to
/// rounding) and gradients.
pub fn scaled_softmax<B: Backend, const D: usize>(x: Tensor<B, D>, scale: f64) -> Tensor<B, D> {
    let x = match try_cast::<_, Tensor<Flex, D>>(x) {
        Ok(x) => return try_cast(inference(x, scale)).unwrap_or_else(|_| unreachable!()),
        Err(x) => x,
    };
    match try_cast::<_, Tensor<Autodiff<Flex>, D>>(x) {
        Ok(x) => try_cast(autodiff(x, scale)).unwrap_or_else(|_| unreachable!()),
        Err(x) => composed(x, scale),
    }
}

/// burn's own composition, for other backends and dtypes.
fn composed<B: Backend, const D: usize>(x: Tensor<B, D>, scale: f64) -> Tensor<B, D> {
    activation::softmax(x.mul_scalar(scale), D - 1)
}

/// The forward pass without autodiff.
fn inference<const D: usize>(x: Tensor<Flex, D>, scale: f64) -> Tensor<Flex, D> {
    let t = x.clone().into_primitive().tensor();
    if t.dtype() != DType::F32 {
        return composed(x, scale);
    }
    drop(x);
    let y = forward(&t.to_contiguous(), scale as f32);
    Tensor::from_primitive(TensorPrimitive::Float(y))
}

/// The forward pass under autodiff, recording one [`SoftmaxBackward`] node that keeps y.
fn autodiff<const D: usize>(x: Tensor<Autodiff<Flex>, D>, scale: f64) -> Tensor<Autodiff<Flex>, D> {
    let prim = x.clone().into_primitive().tensor();
    if prim.primitive.dtype() != DType::F32 {
        return composed(x, scale);
    }
    drop(x);
    let y = forward(&prim.primitive.to_contiguous(), scale as f32);
    let state = (y.clone(), scale as f32);
    record(SoftmaxBackward, [&prim], y, || state)
}

/// The autodiff node of [`scaled_softmax`]; its state is the (contiguous f32) output and the
/// scale.
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            let (y, scale) = &ops.state;
            grads.register::<Flex>(node.id, backward(y, dy, *scale));
        }
    }
}

/// The length of the last dimension (rows are contiguous runs of it).
fn row_len(t: &FlexTensor) -> usize {
    t.layout().shape().last().copied().unwrap_or(1).max(1)
}

/// y = softmax(scale·x) row by row into a new tensor of x's shape (x must be contiguous f32).
fn forward(x: &FlexTensor, scale: f32) -> FlexTensor {
    let (xs, l, level) = (slice(x), row_len(x), simd());
    // `run_pieces` gives every row to `forward_rows`, which writes all of it.
    let y = written(xs.len(), |y| {
        run_pieces(y, l, |off, c| {
            forward_rows_at(level, &xs[off..off + c.len()], c, l, scale)
        })
    });
    flex(y, x.layout().shape().clone())
}

/// dx = scale·y·(dy − Σ_j dy_j·y_j) per row, in dy's buffer when it is contiguous and not
/// shared, else in one contiguous copy of it.
fn backward(y: &FlexTensor, dy: FlexTensor, scale: f32) -> FlexTensor {
    let mut dx = owned_contiguous(dy);
    let (ys, l, level) = (slice(y), row_len(y), simd());
    let d = unique_values(&mut dx).expect("dx is contiguous, f32 and not shared");
    run_pieces(d, l, |off, c| {
        backward_rows_at(level, &ys[off..off + c.len()], c, l, scale)
    });
    dx
}

/// Lanes of the vectorisable loops: rows are walked in arrays of 16 with 16 independent
/// partial results, so that the compiler keeps them in vector registers.
const LANES: usize = 16;

/// max_j scale·x_j (NaNs skipped; they reach the output through `exp`).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // i indexes the lanes and the chunk in step
fn scaled_max(x: &[f32], scale: f32) -> f32 {
    let (x16, tail) = x.as_chunks::<LANES>();
    let mut acc = [f32::NEG_INFINITY; LANES];
    for c in x16 {
        for i in 0..LANES {
            let v = scale * c[i];
            acc[i] = if v > acc[i] { v } else { acc[i] };
        }
    }
    let fold = |m: f32, &v: &f32| if v > m { v } else { m };
    let m = acc.iter().fold(f32::NEG_INFINITY, fold);
    tail.iter().map(|&v| scale * v).fold(m, |m, v| fold(m, &v))
}

/// One piece of whole rows: y = e^(scale·x − max) / Σ e^(scale·x − max), every element
/// written.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // as in `scaled_max`
fn forward_rows(x: &[f32], y: &mut [MaybeUninit<f32>], l: usize, scale: f32) {
    for (xr, yr) in x.chunks_exact(l).zip(y.chunks_exact_mut(l)) {
        let m = scaled_max(xr, scale);
        let (x16, x_tail) = xr.as_chunks::<LANES>();
        let (y16, y_tail) = yr.as_chunks_mut::<LANES>();
        let mut acc = [0f32; LANES];
        for (xc, yc) in x16.iter().zip(y16.iter_mut()) {
            for i in 0..LANES {
                let e = exp_f32(scale * xc[i] - m);
                yc[i].write(e);
                acc[i] += e;
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (&v, o) in x_tail.iter().zip(y_tail) {
            let e = exp_f32(scale * v - m);
            o.write(e);
            sum += e;
        }
        let inv = 1.0 / sum;
        for o in yr.iter_mut() {
            // SAFETY: the loops above wrote every element of the row.
            let e = unsafe { o.assume_init() };
            o.write(e * inv);
        }
    }
}

/// One piece of whole rows of the backward pass: d (holding dy) ← scale·y·(dy − Σ dy·y).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // as in `scaled_max`
fn backward_rows(y: &[f32], d: &mut [f32], l: usize, scale: f32) {
    for (yr, dr) in y.chunks_exact(l).zip(d.chunks_exact_mut(l)) {
        let (y16, y_tail) = yr.as_chunks::<LANES>();
        let (d16, d_tail) = dr.as_chunks::<LANES>();
        let mut acc = [0f32; LANES];
        for (yc, dc) in y16.iter().zip(d16) {
            for i in 0..LANES {
                acc[i] += yc[i] * dc[i];
            }
        }
        let dot =
            acc.iter().sum::<f32>() + y_tail.iter().zip(d_tail).map(|(a, b)| a * b).sum::<f32>();
        for (g, &v) in dr.iter_mut().zip(yr) {
            *g = scale * v * (*g - dot);
        }
    }
}

dispatch!(forward_rows_at, forward_rows,
    (x: &[f32], y: &mut [MaybeUninit<f32>], l: usize, scale: f32) -> ());
dispatch!(backward_rows_at, backward_rows, (y: &[f32], d: &mut [f32], l: usize, scale: f32) -> ());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flex_native::{value_and_grad, Simd};
    use crate::tensor::to_vec;
    use burn::tensor::{Distribution, TensorData};

    type A = Autodiff<Flex>;

    /// `[3, 180, 37]`: 19 980 elements (one piece), or `[9, 180, 37]` (59 940: split over
    /// threads); rows of 37 = two vectors and a tail of 5. Values up to ±20, so that the
    /// shift by the row maximum matters (e^(20·1.5) alone is 10¹³).
    fn input<B: Backend>(batch: usize, device: &B::Device) -> Tensor<B, 3> {
        let v: Vec<f32> = (0..batch * 180 * 37)
            .map(|i| ((i * 7919) % 4001) as f32 / 100.0 - 20.0)
            .collect();
        Tensor::from_data(TensorData::new(v, [batch, 180, 37]), device)
    }

    /// |a − b| ≤ atol + rtol·|b| element by element.
    fn close(what: &str, a: &[f32], b: &[f32], (atol, rtol): (f32, f32)) {
        assert_eq!(a.len(), b.len());
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!(
                (p - q).abs() <= atol + rtol * q.abs(),
                "{what}, element {i}: {p} vs {q}"
            );
        }
    }

    /// Tolerances of the outputs (at most 1) and of the gradients (of order 1: a few units of
    /// the last place of dy's values, since dx is s·y·(dy − Σ dy·y), a difference).
    const Y_TOL: (f32, f32) = (1e-7, 1e-5);
    const DX_TOL: (f32, f32) = (2e-6, 1e-4);

    /// Values against burn's composed softmax, for both sizes, a negative scale and a strided
    /// input; every row sums to one.
    #[test]
    fn fused_softmax_matches_burns_values() {
        let dev = Default::default();
        for batch in [3, 9] {
            for scale in [1.5, -0.25] {
                let want = to_vec(composed(input::<Flex>(batch, &dev), scale));
                let got = to_vec(scaled_softmax(input::<Flex>(batch, &dev), scale));
                close("y", &got, &want, Y_TOL);
                for row in got.chunks(37) {
                    let s: f32 = row.iter().sum();
                    assert!((s - 1.0).abs() < 1e-5, "row sum {s}");
                }
            }
        }
        // A strided view: rows along the view's last dimension (180 long), not storage order.
        let swapped = |x: Tensor<Flex, 3>| x.swap_dims(1, 2);
        let want = to_vec(composed(swapped(input::<Flex>(3, &dev)), 0.5));
        let got = to_vec(scaled_softmax(swapped(input::<Flex>(3, &dev)), 0.5));
        close("strided y", &got, &want, Y_TOL);
        // NaN in a row makes that row NaN, as the composed version does.
        let mut v = vec![0.5f32; 2 * 20];
        v[3] = f32::NAN;
        let y = to_vec(scaled_softmax(
            Tensor::<Flex, 2>::from_data(TensorData::new(v, [2, 20]), &dev),
            1.0,
        ));
        assert!(y[..20].iter().all(|v| v.is_nan()));
        assert!(y[20..].iter().all(|&v| (v - 0.05).abs() < 1e-6));
    }

    /// Gradients of Σ w·softmax(s·x) against burn's composed version: with a weight dy is a
    /// fresh buffer (in place), with none (Σ softmax) a broadcast view of one value (copied),
    /// whose gradient is zero since every row sums to one.
    #[test]
    fn fused_softmax_matches_burns_gradients() {
        let dev = Default::default();
        for (batch, scale) in [(3, 1.5), (9, -0.25)] {
            let w = crate::nn::exclusive(|| {
                Tensor::<A, 3>::random([batch, 180, 37], Distribution::Normal(0.0, 1.0), &dev)
            });
            let grad = |fused: bool, w: Option<Tensor<A, 3>>| {
                let x = input::<A>(batch, &dev);
                match fused {
                    true => value_and_grad(x, |x| scaled_softmax(x, scale), w),
                    false => value_and_grad(x, |x| composed(x, scale), w),
                }
            };
            let (y_fused, g_fused) = grad(true, Some(w.clone()));
            let (y_ref, g_ref) = grad(false, Some(w));
            close("y", &y_fused, &y_ref, Y_TOL);
            close("dx", &g_fused, &g_ref, DX_TOL);
            // Not trivially zero: the weighted loss moves the inputs.
            assert!(g_fused.iter().any(|g| g.abs() > 1e-2));
            // Each row of the gradient sums to zero (softmax is shift-invariant).
            for row in g_fused.chunks(37) {
                assert!(row.iter().sum::<f32>().abs() < 1e-4);
            }
            let (_, g_sum) = grad(true, None);
            assert!(g_sum.iter().all(|g| g.abs() < 1e-5));
        }
    }

    /// Every SIMD copy of the kernels that this CPU runs gives the baseline copy's results.
    #[test]
    fn every_simd_copy_matches_the_baseline() {
        let l = 53;
        let x: Vec<f32> = (0..l * 7)
            .map(|i| ((i * 31) % 97) as f32 / 9.0 - 5.0)
            .collect();
        let d: Vec<f32> = (0..l * 7).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
        let run = |level: Simd| {
            let mut y = vec![MaybeUninit::new(0.0); x.len()];
            forward_rows_at(level, &x, &mut y, l, 0.7);
            // SAFETY: initialised above (and overwritten by the kernel).
            let y: Vec<f32> = y.iter().map(|v| unsafe { v.assume_init() }).collect();
            let mut g = d.clone();
            backward_rows_at(level, &y, &mut g, l, 0.7);
            (y, g)
        };
        let want = run(Simd::Baseline);
        // The sums keep 16 partial sums at every level, so the copies agree exactly.
        for &level in Simd::ALL.iter().skip(1).filter(|l| l.supported()) {
            assert_eq!(run(level), want);
        }
    }
}
