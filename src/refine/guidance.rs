//! The discriminator's input and the score correction w·∇x logit d(x_t, t).

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::nn::Discriminator;
use crate::score::{per_row_times, time_column, ScoreCorrection};
use crate::sde::Sde;

/// The mean and standard deviation of the data's pixels (all pixels pooled), by which the
/// discriminator's input is standardised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputScale {
    /// Mean pixel value μ_d.
    pub mean: f64,
    /// Pixel standard deviation s_d.
    pub std: f64,
}

impl InputScale {
    /// The statistics of `pixels` (a std of 0 becomes 1).
    pub fn of(pixels: &[f32]) -> Self {
        let n = pixels.len().max(1) as f64;
        let mean = pixels.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = pixels
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        InputScale {
            mean,
            std: if var > 0.0 { var.sqrt() } else { 1.0 },
        }
    }
}

/// The discriminator's inputs for states `x_t` at per-row `times`: the standardised state
/// (x_t − m(t)μ_d)/√(m(t)²s_d² + s(t)²), zero mean and unit variance at every noise level for
/// data of pixel mean μ_d and std s_d (sparse images, mostly background, would otherwise reach
/// the network as a large constant with a small signal on top), and the noise level
/// c_noise = ln σ / 4, σ = s(t)/m(t) (Karras et al. 2022, Table 1).
pub fn discriminator_input<B: Backend>(
    sde: &dyn Sde,
    scale: InputScale,
    x_t: Tensor<B, 2>,
    times: &[f64],
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let dev = x_t.device();
    let (m, s) = (|t: f64| sde.mean_factor(t), |t: f64| sde.std(t));
    let shift = time_column::<B>(times, |t| m(t) * scale.mean, &dev);
    let inv = time_column::<B>(
        times,
        |t| 1.0 / (m(t).powi(2) * scale.std.powi(2) + s(t).powi(2)).sqrt(),
        &dev,
    );
    let c_noise = time_column::<B>(times, |t| (s(t) / m(t)).ln() / 4.0, &dev);
    ((x_t - shift) * inv, c_noise)
}

/// The correction w·∇x logit d(x, t) of discriminator guidance, added to a model's score.
pub struct DiscriminatorGuidance<A: AutodiffBackend> {
    net: Discriminator<A>,
    sde: Box<dyn Sde>,
    scale: InputScale,
    weight: f64,
    sigma_max: Option<f64>,
}

impl<A: AutodiffBackend> DiscriminatorGuidance<A> {
    /// Classes of a class-conditional discriminator (0: unconditional).
    pub fn num_classes(&self) -> usize {
        self.net.num_classes()
    }

    /// Guidance of weight `weight` by `net`, trained on states of `sde` with inputs
    /// standardised by `scale` (w = 1 is the correction of Kim et al. 2023, Eq. 8).
    pub fn new(net: Discriminator<A>, sde: Box<dyn Sde>, scale: InputScale, weight: f64) -> Self {
        DiscriminatorGuidance {
            // Only the input's gradient is needed, not the weights'.
            net: net.no_grad(),
            sde,
            scale,
            weight,
            sigma_max: None,
        }
    }

    /// Guides only at noise levels σ = s(t)/m(t) ≤ `sigma_max` (Kim et al. apply the correction
    /// on a range of times too): e.g. the fine detail of the last steps, where the
    /// discriminator is most accurate, without touching the structure drawn earlier.
    pub fn up_to_sigma(mut self, sigma_max: f64) -> Self {
        self.sigma_max = Some(sigma_max);
        self
    }

    /// logit d(x, t) of each row (inner backend, no graph kept), of the classes `classes` for a
    /// class-conditional discriminator: what [`ScoreCorrection::correction`] differentiates,
    /// for the finite-difference test of its gradient.
    #[cfg(test)]
    pub(crate) fn logits(
        &self,
        x: Tensor<A::InnerBackend, 2>,
        t: &[f64],
        classes: Option<&[usize]>,
    ) -> Vec<f32> {
        let times = per_row_times(t, x.dims()[0]);
        let (inp, c) = discriminator_input(
            self.sde.as_ref(),
            self.scale,
            Tensor::<A, 2>::from_inner(x),
            &times,
        );
        crate::tensor::to_vec(self.net.logit(inp, c, classes))
    }
}

impl<A: AutodiffBackend> ScoreCorrection<A::InnerBackend> for DiscriminatorGuidance<A> {
    fn correction(
        &self,
        x: Tensor<A::InnerBackend, 2>,
        t: &[f64],
        classes: Option<&[usize]>,
    ) -> Tensor<A::InnerBackend, 2> {
        let times = per_row_times(t, x.dims()[0]);
        let sigma = |t: f64| self.sde.std(t) / self.sde.mean_factor(t);
        let weight = |t: f64| match self.sigma_max {
            Some(max) if sigma(t) > max => 0.0,
            _ => self.weight,
        };
        if times.iter().all(|&t| weight(t) == 0.0) {
            return x.zeros_like();
        }
        let xa = Tensor::<A, 2>::from_inner(x.clone()).require_grad();
        let (inp, c) = discriminator_input(self.sde.as_ref(), self.scale, xa.clone(), &times);
        // Rows are independent (GroupNorm is per sample), so ∇ of the sum is each row's ∇.
        let grads = self.net.logit(inp, c, classes).sum().backward();
        match xa.grad(&grads) {
            Some(g) => g * time_column::<A::InnerBackend>(&times, weight, &x.device()),
            None => x.zeros_like(),
        }
    }
}
