//! SiLU, y = x·σ(x) (Elfwing et al. 2018; Hendrycks & Gimpel 2016), as one operation on the
//! flex CPU backend, with and without autodiff.
//!
//! burn composes it as `x * sigmoid(x)`: two passes forward, and under autodiff a multiply
//! node and a sigmoid node whose backward passes make four more (each a full read and write of
//! the tensor, most allocating). Here the forward pass is one pass (in place when the input is
//! not shared) and the backward pass is one node with the closed-form derivative
//! dx = dy·σ(x)·(1 + x·(1 − σ(x))), one pass over x and dy (in place in dy when it is not
//! shared). Other backends get the composed version.

use std::mem::MaybeUninit;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{activation, backend::Backend, DType, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};

use super::autodiff_node::record;
use burn_flex::ops::activation::sigmoid_f32;
use burn_flex::FlexTensor;

use super::flex_native::{
    dispatch, flex, owned_contiguous, run_pieces, simd, slice, try_cast, unique_values, written,
};

/// SiLU, x·σ(x), of every element: fused on flex (with or without autodiff) for f32 tensors,
/// composed from burn's `x * sigmoid(x)` elsewhere. Same values (to rounding) and gradients.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = match try_cast::<_, Tensor<Flex, D>>(x) {
        Ok(x) => return try_cast(inference(x)).unwrap_or_else(|_| unreachable!()),
        Err(x) => x,
    };
    match try_cast::<_, Tensor<Autodiff<Flex>, D>>(x) {
        Ok(x) => try_cast(autodiff(x)).unwrap_or_else(|_| unreachable!()),
        Err(x) => activation::silu(x),
    }
}

/// The forward pass without autodiff: in place when the input's buffer is not shared.
fn inference<const D: usize>(x: Tensor<Flex, D>) -> Tensor<Flex, D> {
    let mut t = x.clone().into_primitive().tensor();
    if t.dtype() != DType::F32 {
        return activation::silu(x);
    }
    drop(x);
    if let Some(values) = unique_values(&mut t) {
        let level = simd();
        run_pieces(values, 1, |_, c| forward_inplace_at(level, c));
        return Tensor::from_primitive(TensorPrimitive::Float(t));
    }
    Tensor::from_primitive(TensorPrimitive::Float(forward(&t.to_contiguous())))
}

/// The forward pass under autodiff, recording one [`SiluBackward`] node that keeps x.
fn autodiff<const D: usize>(x: Tensor<Autodiff<Flex>, D>) -> Tensor<Autodiff<Flex>, D> {
    let prim = x.clone().into_primitive().tensor();
    if prim.primitive.dtype() != DType::F32 {
        return activation::silu(x);
    }
    drop(x);
    let xv = prim.primitive.to_contiguous();
    let y = forward(&xv);
    record(SiluBackward, [&prim], y, || xv)
}

/// The autodiff node of [`silu`]; its state is the (contiguous f32) input.
#[derive(Debug)]
struct SiluBackward;

impl Backward<Flex, 1> for SiluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, backward(&ops.state, dy));
        }
    }
}

/// y = x·σ(x) into a new tensor of x's shape (x must be contiguous f32: [`slice`] reads its
/// buffer in storage order).
fn forward(x: &FlexTensor) -> FlexTensor {
    let (xs, level) = (slice(x), simd());
    // `run_pieces` gives every element to `forward_into`, which writes it.
    let y = written(xs.len(), |y| {
        run_pieces(y, 1, |off, c| {
            forward_into_at(level, &xs[off..off + c.len()], c)
        })
    });
    flex(y, x.layout().shape().clone())
}

/// dx = dy·σ(x)·(1 + x·(1 − σ(x))), in dy's buffer when it is contiguous and not shared, else
/// in one contiguous copy of it.
fn backward(x: &FlexTensor, dy: FlexTensor) -> FlexTensor {
    let mut dx = owned_contiguous(dy);
    let (xs, level) = (slice(x), simd());
    let d = unique_values(&mut dx).expect("dx is contiguous, f32 and not shared");
    run_pieces(d, 1, |off, c| {
        backward_at(level, &xs[off..off + c.len()], c)
    });
    dx
}

#[inline(always)]
fn forward_inplace(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x *= sigmoid_f32(*x);
    }
}

#[inline(always)]
fn forward_into(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    for (o, &v) in y.iter_mut().zip(x) {
        o.write(v * sigmoid_f32(v));
    }
}

#[inline(always)]
fn backward_chunk(x: &[f32], d: &mut [f32]) {
    for (g, &v) in d.iter_mut().zip(x) {
        let s = sigmoid_f32(v);
        *g *= s * (1.0 + v * (1.0 - s));
    }
}

dispatch!(forward_inplace_at, forward_inplace, (v: &mut [f32]) -> ());
dispatch!(forward_into_at, forward_into, (x: &[f32], y: &mut [MaybeUninit<f32>]) -> ());
dispatch!(backward_at, backward_chunk, (x: &[f32], d: &mut [f32]) -> ());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flex_native::{value_and_grad, Simd};
    use crate::tensor::to_vec;
    use burn::tensor::{Distribution, TensorData};

    type A = Autodiff<Flex>;

    fn input<B: Backend>(device: &B::Device) -> Tensor<B, 3> {
        // 3·160·137 = 65 760 elements: split over threads, with a tail shorter than a vector.
        let v: Vec<f32> = (0..3 * 160 * 137)
            .map(|i| ((i * 7919) % 2001) as f32 / 100.0 - 10.0)
            .collect();
        Tensor::from_data(TensorData::new(v, [3, 160, 137]), device)
    }

    /// Values and gradients of the fused operation against burn's composed `x * sigmoid(x)`,
    /// with and without autodiff, with the input shared (allocating paths) and not (in place).
    #[test]
    fn fused_silu_matches_burns_values_and_gradients() {
        let dev = Default::default();
        let close = |a: &[f32], b: &[f32], tol: f32| {
            assert_eq!(a.len(), b.len());
            for (i, (p, q)) in a.iter().zip(b).enumerate() {
                assert!(
                    (p - q).abs() <= tol * (1.0 + q.abs()),
                    "element {i}: {p} vs {q}"
                );
            }
        };
        let want = to_vec(activation::silu(input::<Flex>(&dev)));
        // Not shared: in place.
        close(&to_vec(silu(input::<Flex>(&dev))), &want, 1e-6);
        // Shared: a new buffer, the input untouched.
        let x = input::<Flex>(&dev);
        close(&to_vec(silu(x.clone())), &want, 1e-6);
        close(&to_vec(x), &to_vec(input::<Flex>(&dev)), 0.0);
        // A strided view (dims swapped): its values in its own order.
        let swapped = |x: Tensor<Flex, 3>| x.swap_dims(0, 2);
        let want_t = to_vec(activation::silu(swapped(input::<Flex>(&dev))));
        close(&to_vec(silu(swapped(input::<Flex>(&dev)))), &want_t, 1e-6);

        // Gradients of Σ w·silu(x): with a non-uniform weight dy is a fresh buffer (in place),
        // with none (Σ silu(x)) a broadcast view of one value (copied).
        let w = crate::nn::exclusive(|| {
            Tensor::<A, 3>::random([3, 160, 137], Distribution::Normal(0.0, 1.0), &dev)
        });
        let grad = |fused: bool, w: Option<Tensor<A, 3>>| match fused {
            true => value_and_grad(input::<A>(&dev), silu, w),
            false => value_and_grad(input::<A>(&dev), activation::silu, w),
        };
        let (y_fused, g_fused) = grad(true, Some(w.clone()));
        let (y_ref, g_ref) = grad(false, Some(w));
        close(&y_fused, &y_ref, 1e-6);
        close(&g_fused, &g_ref, 1e-5);
        let (_, g_sum) = grad(true, None);
        let (_, g_sum_ref) = grad(false, None);
        close(&g_sum, &g_sum_ref, 1e-5);
        // The derivative is not trivially 1 or σ(x): it is negative below x ≈ −1.28.
        assert!(g_sum.iter().any(|&g| g < -0.05) && g_sum.iter().any(|&g| g > 1.05));
    }

    /// Every SIMD copy of the kernels that this CPU runs gives the baseline copy's results.
    #[test]
    fn every_simd_copy_matches_the_baseline() {
        let x: Vec<f32> = (0..1037).map(|i| (i as f32 - 500.0) / 37.0).collect();
        let d: Vec<f32> = (0..1037).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
        let run = |level: Simd| {
            let mut a = x.clone();
            forward_inplace_at(level, &mut a);
            let mut b = vec![MaybeUninit::new(0.0); x.len()];
            forward_into_at(level, &x, &mut b);
            // SAFETY: initialised above (and overwritten by the kernel).
            let b: Vec<f32> = b.iter().map(|v| unsafe { v.assume_init() }).collect();
            let mut g = d.clone();
            backward_at(level, &x, &mut g);
            (a, b, g)
        };
        let want = run(Simd::Baseline);
        assert_eq!(want.0, want.1);
        for &level in Simd::ALL.iter().skip(1).filter(|l| l.supported()) {
            assert_eq!(run(level), want);
        }
    }
}
