//! Concatenation of two NCHW tensors along channels (the U-Net's skip connections,
//! Ronneberger et al. 2015) whose gradients are contiguous tensors, on the flex CPU backend
//! under autodiff.
//!
//! burn's `cat` backward hands each input a slice of the output gradient: a view whose images
//! are `C_out·H·W` apart, not `C_in·H·W`, so every operation that reads it (the convolution's
//! three backward passes, GroupNorm's, the sum of gradients where a tensor has several uses)
//! makes its own contiguous copy. Here the backward pass splits the gradient once into two
//! contiguous tensors. Forward values are burn's `cat`; other backends get burn's `cat`.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{backend::Backend, DType, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};

use super::autodiff_node::record;
use rayon::prelude::*;

use super::flex_native::{flex, slice, try_cast, write_copy, written};

/// `[a, b]` along dimension 1 (channels): the same values as `Tensor::cat(vec![a, b], 1)`,
/// with contiguous gradients for `a` and `b` on flex under autodiff (f32).
pub fn cat_channels<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
    let pair = (a, b);
    match try_cast::<_, (Tensor<Autodiff<Flex>, 4>, Tensor<Autodiff<Flex>, 4>)>(pair) {
        Ok((a, b)) => try_cast(autodiff(a, b)).unwrap_or_else(|_| unreachable!()),
        Err((a, b)) => Tensor::cat(vec![a, b], 1),
    }
}

/// The forward pass under autodiff, recording one [`CatBackward`] node.
fn autodiff(
    a: Tensor<Autodiff<Flex>, 4>,
    b: Tensor<Autodiff<Flex>, 4>,
) -> Tensor<Autodiff<Flex>, 4> {
    let (pa, pb) = (
        a.clone().into_primitive().tensor(),
        b.clone().into_primitive().tensor(),
    );
    let f32s = pa.primitive.dtype() == DType::F32 && pb.primitive.dtype() == DType::F32;
    let [n, ca, h, w] = a.dims();
    let [nb, cb, hb, wb] = b.dims();
    if !f32s || (n, h, w) != (nb, hb, wb) {
        return Tensor::cat(vec![a, b], 1);
    }
    let y = Tensor::<Flex, 4>::cat(
        vec![
            Tensor::from_primitive(TensorPrimitive::Float(pa.primitive.clone())),
            Tensor::from_primitive(TensorPrimitive::Float(pb.primitive.clone())),
        ],
        1,
    )
    .into_primitive()
    .tensor();
    let split = Split {
        n,
        hw: h * w,
        ca,
        cb,
        h,
        w,
    };
    record(CatBackward, [&pa, &pb], y, || split)
}

/// Where the output's channels came from: the first `ca` from `a`, the next `cb` from `b`.
#[derive(Clone, Copy, Debug)]
struct Split {
    n: usize,
    hw: usize,
    ca: usize,
    cb: usize,
    h: usize,
    w: usize,
}

/// The autodiff node of [`cat_channels`].
#[derive(Debug)]
struct CatBackward;

impl Backward<Flex, 2> for CatBackward {
    type State = Split;

    fn backward(self, ops: Ops<Split, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let s = ops.state;
        let (da, db) = split(slice(&dy), s);
        let [pa, pb] = ops.parents;
        if let Some(node) = pa {
            grads.register::<Flex>(node.id, flex(da, [s.n, s.ca, s.h, s.w]));
        }
        if let Some(node) = pb {
            grads.register::<Flex>(node.id, flex(db, [s.n, s.cb, s.h, s.w]));
        }
    }
}

/// The `[n, ca + cb, h·w]` values `dy` cut along channels into `[n, ca, h·w]` and
/// `[n, cb, h·w]`, images in parallel.
fn split(dy: &[f32], s: Split) -> (Vec<f32>, Vec<f32>) {
    let (la, lb) = (s.ca * s.hw, s.cb * s.hw);
    let mut db = Vec::new();
    // Every image's two runs are written (or the whole of the non-empty one).
    let da = written(s.n * la, |ua| {
        db = written(s.n * lb, |ub| {
            if la == 0 || lb == 0 {
                let whole = if la == 0 { ub } else { ua };
                write_copy(whole, dy);
                return;
            }
            ua.par_chunks_mut(la)
                .zip(ub.par_chunks_mut(lb))
                .zip(dy.par_chunks(la + lb))
                .for_each(|((a, b), img)| {
                    write_copy(a, &img[..la]);
                    write_copy(b, &img[la..]);
                });
        });
    });
    (da, db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    type A = Autodiff<Flex>;

    /// Values and both gradients match burn's `cat` (a weighted sum makes every gradient
    /// element distinct), and the gradients are contiguous.
    #[test]
    fn matches_burns_cat_with_contiguous_gradients() {
        let dev = Default::default();
        let a = crate::nn::exclusive(|| {
            Tensor::<Flex, 4>::random([3, 2, 4, 5], Distribution::Default, &dev)
        });
        let b = crate::nn::exclusive(|| {
            Tensor::<Flex, 4>::random([3, 5, 4, 5], Distribution::Default, &dev)
        });
        let r = crate::nn::exclusive(|| {
            Tensor::<A, 4>::random([3, 7, 4, 5], Distribution::Default, &dev)
        });
        let run = |fused: bool| {
            let (a, b) = (
                Tensor::<A, 4>::from_inner(a.clone()).require_grad(),
                Tensor::<A, 4>::from_inner(b.clone()).require_grad(),
            );
            let y = if fused {
                cat_channels(a.clone(), b.clone())
            } else {
                Tensor::cat(vec![a.clone(), b.clone()], 1)
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            let (ga, gb) = (a.grad(&grads).unwrap(), b.grad(&grads).unwrap());
            let contiguous = ga.clone().into_primitive().tensor().is_contiguous()
                && gb.clone().into_primitive().tensor().is_contiguous();
            let data = |t: Tensor<Flex, 4>| t.into_data();
            (data(y.inner()), data(ga), data(gb), contiguous)
        };
        let (want, got) = (run(false), run(true));
        let same = |x: &TensorData, y: &TensorData| {
            x.to_vec::<f32>().unwrap() == y.to_vec::<f32>().unwrap()
        };
        assert!(same(&got.0, &want.0), "values differ");
        assert!(same(&got.1, &want.1), "gradient of a differs");
        assert!(same(&got.2, &want.2), "gradient of b differs");
        assert!(got.3, "gradients not contiguous");
        assert!(
            !want.3,
            "burn's cat gave contiguous gradients: nothing to compare against"
        );
    }
}
