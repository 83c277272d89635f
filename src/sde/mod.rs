//! Stochastic differential equations of score-based models (Song et al. 2021, Sec. 3 and App. B).
//!
//! Every SDE here is linear in x: dx = a(t)·x dt + g(t) dw, so its transition kernel is Gaussian,
//! p_t(x|x0) = N(m(t)·x0, s(t)² I). The trait exposes exactly what losses, samplers and the
//! likelihood need, as scalar functions of t; tensor code multiplies by them.

mod discrete;
mod subvp;
mod ve;
mod vp;

pub use discrete::{ddpm_betas, ncsn_sigmas};
pub use subvp::SubVpSde;
pub use ve::VeSde;
pub use vp::VpSde;

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Coefficients of one ancestral-sampling step (Song et al. 2021, App. F):
/// x_prev = `a`·x + `b`·score + `c`·z.
#[derive(Clone, Copy, Debug)]
pub struct AncestralStep {
    /// Multiplier of x.
    pub a: f64,
    /// Multiplier of the score.
    pub b: f64,
    /// Standard deviation of the added noise.
    pub c: f64,
}

/// A forward SDE dx = f(x,t) dt + g(t) dw with linear drift f(x,t) = a(t)·x.
pub trait Sde: Send + Sync + std::fmt::Debug {
    /// Short name (`ve`, `vp`, `subvp`).
    fn name(&self) -> &'static str;
    /// End time T (1 for all SDEs here).
    fn t_end(&self) -> f64 {
        1.0
    }
    /// Smallest time used for training and sampling (ε of Song et al.; 1e-5 VE, 1e-3 VP).
    fn t_min(&self) -> f64;
    /// Drift coefficient a(t) of f(x,t) = a(t)·x.
    fn drift_coef(&self, t: f64) -> f64;
    /// Diffusion coefficient g(t).
    fn diffusion(&self, t: f64) -> f64;
    /// Mean factor m(t) of p_t(x|x0) = N(m(t)·x0, s(t)² I).
    fn mean_factor(&self, t: f64) -> f64;
    /// Standard deviation s(t) of p_t(x|x0).
    fn std(&self, t: f64) -> f64;
    /// Standard deviation of the prior p_T = N(0, σ_T² I).
    fn prior_std(&self) -> f64;
    /// Discretisation (f_i, G_i) of the step t → t − dt as in Song et al. 2021 App. E:
    /// returns (c, G) with f_i = c·x.
    fn discretize(&self, t: f64, dt: f64) -> (f64, f64) {
        (self.drift_coef(t) * dt, self.diffusion(t) * dt.sqrt())
    }
    /// Ancestral step t → t − dt, where the SDE has one (SMLD for VE, DDPM for VP).
    fn ancestral(&self, _t: f64, _dt: f64) -> Option<AncestralStep> {
        None
    }
    /// The α_i of the Langevin corrector step size (Song et al. 2021, Alg. 5): 1 − β_i for VP.
    fn corrector_alpha(&self, _t: f64, _dt: f64) -> f64 {
        1.0
    }
    /// The EDM noise level σ(t) = s(t)/m(t) of Karras et al. 2022 (x/m(t) is then VE-like).
    fn edm_sigma(&self, t: f64) -> f64 {
        self.std(t) / self.mean_factor(t)
    }
    /// Inverse of [`Sde::edm_sigma`] on [0, T] (bisection; closed forms override it).
    fn t_from_edm_sigma(&self, sigma: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, self.t_end());
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if self.edm_sigma(mid) < sigma {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
    /// Whether m(t)² + s(t)² = 1 (variance preserving).
    fn is_variance_preserving(&self) -> bool {
        false
    }
    /// The parameters, for checkpoints and configs.
    fn spec(&self) -> SdeSpec;
}

/// Serialisable description of an SDE, as stored in configs and checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SdeSpec {
    /// Variance exploding SDE.
    Ve {
        /// Smallest noise level σ_min.
        sigma_min: f64,
        /// Largest noise level σ_max.
        sigma_max: f64,
    },
    /// Variance preserving SDE.
    Vp {
        /// β_min.
        beta_min: f64,
        /// β_max.
        beta_max: f64,
    },
    /// Sub-variance-preserving SDE.
    Subvp {
        /// β_min.
        beta_min: f64,
        /// β_max.
        beta_max: f64,
    },
}

impl SdeSpec {
    /// The default parameters of Song et al. 2021 for `name` (`ve`, `vp`, `subvp`).
    pub fn default_for(name: &str) -> Result<Self> {
        match name {
            "ve" => Ok(SdeSpec::Ve {
                sigma_min: 0.01,
                sigma_max: 50.0,
            }),
            "vp" => Ok(SdeSpec::Vp {
                beta_min: 0.1,
                beta_max: 20.0,
            }),
            "subvp" | "sub-vp" => Ok(SdeSpec::Subvp {
                beta_min: 0.1,
                beta_max: 20.0,
            }),
            other => Err(Error::config(
                "sde",
                format!("unknown SDE `{other}` (expected ve, vp or subvp)"),
            )),
        }
    }

    /// Builds the SDE, checking its parameters.
    pub fn build(&self) -> Result<Box<dyn Sde>> {
        match *self {
            SdeSpec::Ve {
                sigma_min,
                sigma_max,
            } => Ok(Box::new(VeSde::new(sigma_min, sigma_max)?)),
            SdeSpec::Vp { beta_min, beta_max } => Ok(Box::new(VpSde::new(beta_min, beta_max)?)),
            SdeSpec::Subvp { beta_min, beta_max } => {
                Ok(Box::new(SubVpSde::new(beta_min, beta_max)?))
            }
        }
    }
}

/// The largest ∫₀¹ β(t) dt = (β_min + β_max)/2 accepted: ᾱ(1) = e^(−∫β) ≥ e^(−40), so that
/// the EDM samplers' σ(1)² = 1/ᾱ − 1 and the other ratios stay finite in f32 (usual: β_max = 20).
pub const MAX_BETA_INTEGRAL: f64 = 40.0;

pub(crate) fn check_betas(beta_min: f64, beta_max: f64) -> Result<()> {
    if !(beta_min > 0.0 && beta_max > beta_min && beta_max.is_finite()) {
        return Err(Error::config(
            "sde.beta_min/beta_max",
            format!("need 0 < beta_min < beta_max, got {beta_min}, {beta_max}"),
        ));
    }
    if (beta_min + beta_max) / 2.0 > MAX_BETA_INTEGRAL {
        return Err(Error::config(
            "sde.beta_min/beta_max",
            format!(
                "(beta_min + beta_max)/2 = {} exceeds {MAX_BETA_INTEGRAL}: the signal would \
                 vanish below f32's range (the usual beta_max is 20)",
                (beta_min + beta_max) / 2.0
            ),
        ));
    }
    Ok(())
}

/// log N(x; 0, σ² I) per row of `x` (`[n, d] → [n]`): the prior log-density of Song et al. 2021.
pub fn prior_logp<B: Backend>(sde: &dyn Sde, x: Tensor<B, 2>) -> Tensor<B, 1> {
    let d = x.dims()[1] as f64;
    let s2 = sde.prior_std().powi(2);
    let sq = x.powi_scalar(2).sum_dim(1).squeeze_dim::<1>(1);
    sq.mul_scalar(-0.5 / s2)
        .add_scalar(-0.5 * d * (std::f64::consts::TAU * s2).ln())
}

/// A sample of the prior N(0, σ_T² I), `[n, d]`.
pub fn prior_sample<B: Backend>(
    sde: &dyn Sde,
    rng: &mut crate::rng::Rng,
    n: usize,
    d: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    crate::tensor::randn::<B>(rng, n, d, device).mul_scalar(sde.prior_std())
}

#[cfg(test)]
mod tests;
