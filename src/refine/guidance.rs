//! The discriminator's input and the score correction w·∇x logit d(x_t, t).

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use crate::nn::Discriminator;
use crate::score::{time_column, ScoreCorrection};
use crate::sde::Sde;

/// The discriminator's inputs for states `x_t` at per-row `times`: the EDM-scaled state
/// c_in·x_t/m(t) with c_in = 1/√(σ² + σ_d²), σ = s(t)/m(t) (unit variance when the data have
/// std σ_d), and c_noise = ln σ / 4 (Karras et al. 2022, Table 1).
pub fn discriminator_input<B: Backend>(
    sde: &dyn Sde,
    sigma_data: f64,
    x_t: Tensor<B, 2>,
    times: &[f64],
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let dev = x_t.device();
    let sigma = |t: f64| sde.std(t) / sde.mean_factor(t);
    let scale = time_column::<B>(
        times,
        |t| 1.0 / (sde.mean_factor(t) * (sigma(t).powi(2) + sigma_data * sigma_data).sqrt()),
        &dev,
    );
    let c_noise = time_column::<B>(times, |t| sigma(t).ln() / 4.0, &dev);
    (x_t * scale, c_noise)
}

/// The correction w·∇x logit d(x, t) of discriminator guidance, added to a model's score.
pub struct DiscriminatorGuidance<A: AutodiffBackend> {
    net: Discriminator<A>,
    sde: Box<dyn Sde>,
    sigma_data: f64,
    weight: f64,
}

impl<A: AutodiffBackend> DiscriminatorGuidance<A> {
    /// Guidance of weight `weight` by `net`, trained on states of `sde` with data std
    /// `sigma_data` (w = 1 is the correction of Kim et al. 2023, Eq. 8).
    pub fn new(net: Discriminator<A>, sde: Box<dyn Sde>, sigma_data: f64, weight: f64) -> Self {
        DiscriminatorGuidance {
            // Only the input's gradient is needed, not the weights'.
            net: net.no_grad(),
            sde,
            sigma_data,
            weight,
        }
    }

    /// logit d(x, t) of each row (inner backend, no graph kept).
    pub fn logits(&self, x: Tensor<A::InnerBackend, 2>, t: &[f64]) -> Vec<f32> {
        let times = per_row(t, x.dims()[0]);
        let (inp, c) = discriminator_input(
            self.sde.as_ref(),
            self.sigma_data,
            Tensor::<A, 2>::from_inner(x),
            &times,
        );
        crate::tensor::to_vec(self.net.logit(inp, c))
    }
}

/// One time per row (a single time broadcasts).
fn per_row(t: &[f64], n: usize) -> Vec<f64> {
    if t.len() == 1 {
        vec![t[0]; n]
    } else {
        t.to_vec()
    }
}

impl<A: AutodiffBackend> ScoreCorrection<A::InnerBackend> for DiscriminatorGuidance<A> {
    fn correction(&self, x: Tensor<A::InnerBackend, 2>, t: &[f64]) -> Tensor<A::InnerBackend, 2> {
        if self.weight == 0.0 {
            return x.zeros_like();
        }
        let times = per_row(t, x.dims()[0]);
        let xa = Tensor::<A, 2>::from_inner(x.clone()).require_grad();
        let (inp, c) = discriminator_input(self.sde.as_ref(), self.sigma_data, xa.clone(), &times);
        // Rows are independent (GroupNorm is per sample), so ∇ of the sum is each row's ∇.
        let grads = self.net.logit(inp, c).sum().backward();
        match xa.grad(&grads) {
            Some(g) => g.mul_scalar(self.weight),
            None => x.zeros_like(),
        }
    }
}
