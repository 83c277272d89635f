//! Neural score models in the ε-parametrisation: s_θ(x, t) = −ε_θ(x, t) / s(t).
//!
//! With this scaling (Song et al. 2021 App. C's "output scaled by 1/σ_t"; Ho et al.'s ε-prediction)
//! the σ²-weighted DSM loss becomes ‖ε_θ − z‖², well conditioned at every noise level.

use burn::tensor::{backend::Backend, Tensor};

use super::{time_column, ScoreFn};
use crate::sde::Sde;

/// A network predicting the noise ε from (x_t, t).
pub trait EpsModel<B: Backend> {
    /// ε_θ(x, t) for `x: [n, d]`, `t: [n, 1]` (continuous time in [0, 1]).
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// A reference to a model (also `&dyn EpsModel`) is the model.
impl<B: Backend, M: EpsModel<B> + ?Sized> EpsModel<B> for &M {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        (**self).eps(x, t)
    }
}

/// Wraps an [`EpsModel`] into a [`ScoreFn`] for a given SDE.
pub struct NeuralScore<'a, B: Backend, M: EpsModel<B>> {
    /// The network.
    pub model: &'a M,
    /// The SDE the network was trained for (gives s(t)).
    pub sde: &'a dyn Sde,
    /// Device of the network.
    pub device: B::Device,
    /// What the network outputs (ε, x₀ or EDM-preconditioned).
    pub output: super::Output,
    /// σ_d of the EDM preconditioning.
    pub sigma_data: f64,
}

impl<B: Backend, M: EpsModel<B>> ScoreFn<B> for NeuralScore<'_, B, M> {
    fn score(&self, x: Tensor<B, 2>, t: &[f64]) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let times = super::per_row_times(t, n);
        let t_col = time_column::<B>(&times, |v| v, &self.device);
        let inv_std = time_column::<B>(&times, |v| -1.0 / self.sde.std(v), &self.device);
        super::eps_of(
            self.model,
            self.sde,
            self.output,
            self.sigma_data,
            x,
            t_col,
            &times,
        ) * inv_std
    }
}
