//! Group normalisation (Wu & He 2018) over `[N, C, H, W]`, written so that every elementwise
//! operation broadcasts a per-(image, channel) scalar along the contiguous trailing axis: the
//! affine parameters are folded into one scale and one shift per (image, channel),
//! y = x·a + b with a = γ/√(σ²_g + ε), b = β − μ_g·a. burn-nn's version multiplies by
//! γ reshaped to `[1, C, 1, 1]`, a broadcast the flex CPU backend can only walk element by
//! element; this one takes its SIMD per-row path. Parameter names (`gamma`, `beta`) match
//! burn-nn's, so checkpoints are interchangeable.

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Tensor};

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
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            groups,
            epsilon: 1e-5,
        }
    }

    /// Normalises each group of C/G channels of each image to zero mean and unit variance
    /// (biased variance, as PyTorch), then applies γ and β per channel.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
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
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn matches_burn_nn_group_norm_values_and_gradients() {
        type A = Autodiff<Flex>;
        let dev = Default::default();
        let (n, c, h, w, g) = (3, 8, 5, 4, 4);
        let x0 = Tensor::<A, 4>::random([n, c, h, w], Distribution::Normal(1.5, 2.0), &dev);
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
        let weights = Tensor::<A, 4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &dev);
        let run = |f: &dyn Fn(Tensor<A, 4>) -> Tensor<A, 4>| {
            let x = x0.clone().require_grad();
            let y = f(x.clone());
            let grads = (y.clone() * weights.clone()).sum().backward();
            (to_vec(y.inner()), to_vec(x.grad(&grads).unwrap()))
        };
        let (y1, g1) = run(&|x| ours.forward(x));
        let (y2, g2) = run(&|x| reference.forward(x));
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-4);
        assert!(close(&y1, &y2), "forward differs");
        assert!(close(&g1, &g2), "input gradient differs");
    }
}
