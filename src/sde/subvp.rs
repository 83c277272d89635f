//! Sub-VP SDE (Song et al. 2021, Eq. 34): its variance is bounded by the VP SDE's.

use super::vp::{beta, log_mean};
use super::{check_betas, Sde, SdeSpec};
use crate::error::Result;

/// dx = −½β(t)x dt + sqrt(β(t)(1 − exp(−2∫₀ᵗβ))) dw.
#[derive(Clone, Debug)]
pub struct SubVpSde {
    /// β_min (0.1 by default).
    pub beta_min: f64,
    /// β_max (20 by default).
    pub beta_max: f64,
}

impl SubVpSde {
    /// A sub-VP SDE; requires 0 < β_min < β_max.
    pub fn new(beta_min: f64, beta_max: f64) -> Result<Self> {
        check_betas(beta_min, beta_max)?;
        Ok(SubVpSde { beta_min, beta_max })
    }
}

impl Sde for SubVpSde {
    fn name(&self) -> &'static str {
        "subvp"
    }
    fn t_min(&self) -> f64 {
        1e-3
    }
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * beta(self.beta_min, self.beta_max, t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        // ∫₀ᵗβ = −2L(t), so 1 − exp(−2∫β) = 1 − exp(4L(t)).
        let discount = -(4.0 * log_mean(self.beta_min, self.beta_max, t)).exp_m1();
        (beta(self.beta_min, self.beta_max, t) * discount).sqrt()
    }
    fn mean_factor(&self, t: f64) -> f64 {
        log_mean(self.beta_min, self.beta_max, t).exp()
    }
    fn std(&self, t: f64) -> f64 {
        -(2.0 * log_mean(self.beta_min, self.beta_max, t)).exp_m1()
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    /// Same β_i as VP, so the same corrector α_i.
    fn corrector_alpha(&self, t: f64, dt: f64) -> f64 {
        1.0 - (beta(self.beta_min, self.beta_max, t) * dt).min(0.999)
    }
    fn spec(&self) -> SdeSpec {
        SdeSpec::Subvp {
            beta_min: self.beta_min,
            beta_max: self.beta_max,
        }
    }
}
