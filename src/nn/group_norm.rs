//! Group normalisation (Wu & He 2018) over `[N, C, H, W]`, written so that every elementwise
//! operation broadcasts a per-(image, channel) scalar along the contiguous trailing axis: the
//! affine parameters are folded into one scale and one shift per (image, channel),
//! y = x·a + b with a = γ/√(σ²_g + ε), b = β − μ_g·a. burn-nn's version multiplies by
//! γ reshaped to `[1, C, 1, 1]`, a broadcast the flex CPU backend can only walk element by
//! element; this one takes its SIMD per-row path. Parameter names (`gamma`, `beta`) match
//! burn-nn's, so checkpoints are interchangeable.

use super::precision::to_dtype;
use super::{fused_norm, norm_node};
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{activation::silu, backend::Backend, Tensor};

/// GroupNorm with a learnt per-channel scale γ (init 1) and shift β (init 0).
#[derive(Module, Debug)]
pub struct GroupNorm<B: Backend> {
    gamma: Param<Tensor<B, 1>>,
    beta: Param<Tensor<B, 1>>,
    groups: usize,
    epsilon: f64,
}

impl<B: Backend> GroupNorm<B> {
    /// `groups` groups over `channels` channels (groups must divide channels), ε = 1e-5.
    pub fn new(groups: usize, channels: usize, device: &B::Device) -> Self {
        GroupNorm {
            gamma: Initializer::Ones.init([channels], device),
            beta: Initializer::Zeros.init([channels], device),
            groups,
            epsilon: 1e-5,
        }
    }

    /// Normalises each group of C/G channels of each image to zero mean and unit variance
    /// (biased variance, as PyTorch), then applies γ and β per channel. On the flex CPU
    /// backend this is one fused operation (`fused_norm`), on CUDA one autodiff node with a
    /// closed-form backward (`norm_node`); elsewhere it is composed.
    ///
    /// Under mixed precision (bf16 activations, f32 γ and β: `precision::autocast`) it runs in
    /// γ's format and answers in x's.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.in_params_dtype(x, false)
    }

    /// SiLU(GroupNorm(x)) (x·σ(x) of [`Self::forward`]), fused into one operation on flex.
    pub fn forward_silu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.in_params_dtype(x, true)
    }

    fn in_params_dtype(&self, x: Tensor<B, 4>, with_silu: bool) -> Tensor<B, 4> {
        let (gamma, beta) = (self.gamma.val(), self.beta.val());
        let dtype = x.dtype();
        let x = to_dtype(x, gamma.dtype());
        let (groups, eps) = (self.groups, self.epsilon);
        let y = fused_norm::group_norm(&x, &gamma, &beta, groups, eps, with_silu)
            .or_else(|| norm_node::dispatch(&x, &gamma, &beta, groups, eps, with_silu))
            .unwrap_or_else(|| {
                let y = self.composed(x);
                if with_silu {
                    silu(y)
                } else {
                    y
                }
            });
        to_dtype(y, dtype)
    }

    /// [`Self::forward`] composed from tensor operations (any backend).
    fn composed(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let g = self.groups;
        let per = c / g;
        let xg = x.clone().reshape([n, g, per * h * w]);
        let mean = xg.clone().mean_dim(2); // [n, g, 1]
        let var = (xg - mean.clone()).square().mean_dim(2);
        let inv = var.add_scalar(self.epsilon).sqrt().recip();
        // Per-(image, channel) values: repeat each group's statistic over its channels.
        let per_channel = |t: Tensor<B, 3>| t.repeat_dim(2, per).reshape([n, c]);
        let gamma = self.gamma.val().reshape([1, c]).repeat_dim(0, n);
        let beta = self.beta.val().reshape([1, c]).repeat_dim(0, n);
        let a = per_channel(inv) * gamma;
        let b = beta - per_channel(mean) * a.clone();
        let y = x.reshape([n, c, h * w]) * a.reshape([n, c, 1]) + b.reshape([n, c, 1]);
        y.reshape([n, c, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::to_vec;
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::tensor::{Distribution, TensorData};
    use burn_autodiff::grads::Gradients;

    #[test]
    fn fused_and_composed_match_burn_nn_group_norm_values_and_gradients() {
        type A = Autodiff<Flex>;
        let dev = Default::default();
        // Blocks of 2·7·6 = 84 values: one 64-wide step of the moments and a tail.
        let (n, c, h, w, g) = (3, 8, 7, 6, 4);
        let x0 = crate::nn::exclusive(|| {
            Tensor::<A, 4>::random([n, c, h, w], Distribution::Normal(1.5, 2.0), &dev)
        });
        let gamma: Vec<f32> = (0..c).map(|i| 0.5 + 0.1 * i as f32).collect();
        let beta: Vec<f32> = (0..c).map(|i| -0.3 + 0.05 * i as f32).collect();
        let ours = {
            let mut m = GroupNorm::<A>::new(g, c, &dev);
            m.gamma =
                Param::from_tensor(Tensor::from_data(TensorData::new(gamma.clone(), [c]), &dev));
            m.beta =
                Param::from_tensor(Tensor::from_data(TensorData::new(beta.clone(), [c]), &dev));
            m
        };
        let reference = {
            let mut m = burn::nn::GroupNormConfig::new(g, c).init::<A>(&dev);
            m.gamma = Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(gamma, [c]),
                &dev,
            )));
            m.beta = Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(beta, [c]),
                &dev,
            )));
            m
        };
        // A non-trivial scalar objective so the gradients differ per element.
        let weights = crate::nn::exclusive(|| {
            Tensor::<A, 4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &dev)
        });
        // Output and the gradients of x, γ and β.
        let run = |f: &dyn Fn(Tensor<A, 4>) -> Tensor<A, 4>,
                   params: &dyn Fn(&Gradients) -> [Vec<f32>; 2]| {
            let x = x0.clone().require_grad();
            let y = f(x.clone());
            let grads = (y.clone() * weights.clone()).sum().backward();
            let [dg, db] = params(&grads);
            [to_vec(y.inner()), to_vec(x.grad(&grads).unwrap()), dg, db]
        };
        let ours_params = |g: &Gradients| {
            [
                to_vec(ours.gamma.grad(g).unwrap()),
                to_vec(ours.beta.grad(g).unwrap()),
            ]
        };
        let ref_params = |g: &Gradients| {
            let gamma = reference.gamma.as_ref().unwrap().grad(g).unwrap();
            let beta = reference.beta.as_ref().unwrap().grad(g).unwrap();
            [to_vec(gamma), to_vec(beta)]
        };
        let close = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(p, q)| (p - q).abs() < 2e-4)
        };
        // The fused operation runs for flex, with and without autodiff.
        let fused_on = |x: Tensor<A, 4>| {
            fused_norm::group_norm(&x, &ours.gamma.val(), &ours.beta.val(), g, 1e-5, true)
        };
        assert!(fused_on(x0.clone()).is_some(), "not fused under autodiff");
        let plain = ours.valid();
        let (gi, bi) = (plain.gamma.val(), plain.beta.val());
        let y = fused_norm::group_norm(&x0.clone().inner(), &gi, &bi, g, 1e-5, false);
        assert!(y.is_some(), "not fused on flex");
        let names = ["output", "input gradient", "γ gradient", "β gradient"];
        for act in [false, true] {
            let activate = |y: Tensor<A, 4>| if act { silu(y) } else { y };
            let want = run(&|x| activate(reference.forward(x)), &ref_params);
            // The fused operation (flex under autodiff), and the composed one other backends
            // take.
            let fused = run(
                &|x| {
                    if act {
                        ours.forward_silu(x)
                    } else {
                        ours.forward(x)
                    }
                },
                &ours_params,
            );
            let composed = run(&|x| activate(ours.composed(x)), &ours_params);
            // The one-node version CUDA takes (norm_node), here on flex.
            let node = run(
                &|x| {
                    let (gm, bt) = (ours.gamma.val(), ours.beta.val());
                    norm_node::group_norm_autodiff(x, gm, bt, g, 1e-5, act)
                },
                &ours_params,
            );
            let node_plain = norm_node::group_norm(x0.clone().inner(), &gi, &bi, g, 1e-5, act);
            assert!(
                close(&to_vec(node_plain), &want[0]),
                "node without autodiff, silu {act}: output differs"
            );
            for (k, name) in names.iter().enumerate() {
                assert!(
                    close(&node[k], &want[k]),
                    "node, silu {act}: {name} differs"
                );
                assert!(
                    close(&fused[k], &want[k]),
                    "fused, silu {act}: {name} differs"
                );
                assert!(
                    close(&composed[k], &want[k]),
                    "composed, silu {act}: {name} differs"
                );
            }
            // Without autodiff (sampling): the fused forward pass on plain flex.
            let x = x0.clone().inner();
            let y = if act {
                plain.forward_silu(x)
            } else {
                plain.forward(x)
            };
            assert!(
                close(&to_vec(y), &want[0]),
                "flex, silu {act}: output differs"
            );
        }
    }
}
