//! Variance-preserving SDE (DDPM in continuous time; Song et al. 2021, Eq. 32).

use super::{check_betas, AncestralStep, Sde, SdeSpec};
use crate::error::Result;

/// dx = −½β(t)x dt + sqrt(β(t)) dw with β(t) = β_min + t(β_max − β_min).
#[derive(Clone, Debug)]
pub struct VpSde {
    /// β_min (0.1 by default).
    pub beta_min: f64,
    /// β_max (20 by default).
    pub beta_max: f64,
}

impl VpSde {
    /// A VP SDE; requires 0 < β_min < β_max.
    pub fn new(beta_min: f64, beta_max: f64) -> Result<Self> {
        check_betas(beta_min, beta_max)?;
        Ok(VpSde { beta_min, beta_max })
    }
}

/// β(t) = β_min + t(β_max − β_min).
pub(crate) fn beta(beta_min: f64, beta_max: f64, t: f64) -> f64 {
    beta_min + t * (beta_max - beta_min)
}

/// L(t) = −¼t²(β_max − β_min) − ½tβ_min = log m(t).
pub(crate) fn log_mean(beta_min: f64, beta_max: f64, t: f64) -> f64 {
    -0.25 * t * t * (beta_max - beta_min) - 0.5 * t * beta_min
}

/// The discrete β_i = β(t)·dt of the step t → t − dt (DDPM with N = 1/dt steps).
fn discrete_beta(beta_min: f64, beta_max: f64, t: f64, dt: f64) -> f64 {
    (beta(beta_min, beta_max, t) * dt).min(0.999)
}

impl Sde for VpSde {
    fn name(&self) -> &'static str {
        "vp"
    }
    fn t_min(&self) -> f64 {
        1e-3
    }
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * beta(self.beta_min, self.beta_max, t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        beta(self.beta_min, self.beta_max, t).sqrt()
    }
    fn mean_factor(&self, t: f64) -> f64 {
        log_mean(self.beta_min, self.beta_max, t).exp()
    }
    fn std(&self, t: f64) -> f64 {
        (-(2.0 * log_mean(self.beta_min, self.beta_max, t)).exp_m1()).sqrt()
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    /// DDPM discretisation: f_i = (sqrt(1 − β_i) − 1)x, G_i = sqrt(β_i).
    fn discretize(&self, t: f64, dt: f64) -> (f64, f64) {
        let b = discrete_beta(self.beta_min, self.beta_max, t, dt);
        ((1.0 - b).sqrt() - 1.0, b.sqrt())
    }
    /// DDPM ancestral step (Song et al. 2021, Eq. 48).
    fn ancestral(&self, t: f64, dt: f64) -> Option<AncestralStep> {
        let b = discrete_beta(self.beta_min, self.beta_max, t, dt);
        let r = (1.0 - b).sqrt();
        Some(AncestralStep {
            a: 1.0 / r,
            b: b / r,
            c: b.sqrt(),
        })
    }
    fn corrector_alpha(&self, t: f64, dt: f64) -> f64 {
        1.0 - discrete_beta(self.beta_min, self.beta_max, t, dt)
    }
    /// σ_edm(t) = sqrt(exp(−2L(t)) − 1), inverted in closed form.
    fn t_from_edm_sigma(&self, sigma: f64) -> f64 {
        // ½t²Δβ + tβ_min = ln(1 + σ²).
        let c = (sigma * sigma).ln_1p();
        let a = 0.5 * (self.beta_max - self.beta_min);
        let b = self.beta_min;
        ((-b + (b * b + 4.0 * a * c).sqrt()) / (2.0 * a)).clamp(0.0, 1.0)
    }
    fn is_variance_preserving(&self) -> bool {
        true
    }
    fn spec(&self) -> SdeSpec {
        SdeSpec::Vp {
            beta_min: self.beta_min,
            beta_max: self.beta_max,
        }
    }
}
