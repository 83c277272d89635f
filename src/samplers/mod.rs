//! Samplers: each is a pure function of (score, SDE, initial x, schedule options, rng) returning
//! the samples and the number of score evaluations (NFE). An observer callback receives every
//! intermediate state (t, x), so trajectories can be recorded without I/O in the math.

mod ddim;
mod ddpm;
mod edm;
mod grid;
mod inpaint;
mod langevin;
mod ode;
mod pc;
mod registry;
mod steps;

pub use ddim::ddim;
pub use ddpm::ddpm_ancestral;
pub use edm::{dpmpp_2m, heun_edm, karras_sigmas, HeunOptions};
pub use grid::{reverse_grid, uniform_grid};
pub use inpaint::{pc_inpaint, Basis};
pub use langevin::{annealed_langevin, langevin};
pub use ode::{probability_flow, rk45, Rk45Options, Rk45Stats};
pub use pc::{pc_sampler, pc_vp_algorithm3, Predictor};
pub use registry::{sample, SamplerConfig, SamplerKind, MAX_STEPS};
pub use steps::{denoise, langevin_corrector_step, tweedie_x0};

use burn::tensor::{backend::Backend, Tensor};

/// Result of a sampler run.
pub struct Sampled<B: Backend> {
    /// Final samples `[n, d]`.
    pub x: Tensor<B, 2>,
    /// Number of score-function evaluations (on the whole batch).
    pub nfe: usize,
}

/// Receives (t, x) after every step of a sampler; `&mut |_, _| {}` ignores them.
pub type Observer<'a, B> = &'a mut dyn FnMut(f64, &Tensor<B, 2>);

#[cfg(test)]
mod tests;
