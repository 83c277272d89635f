//! Variance-exploding SDE (SMLD/NCSN in continuous time; Song et al. 2021, Eq. 30).

use super::{AncestralStep, Sde, SdeSpec};
use crate::error::{Error, Result};

/// dx = sqrt(d[σ²(t)]/dt) dw with σ(t) = σ_min (σ_max/σ_min)^t.
///
/// Marginal std: this uses s(t) = σ(t), as the reference implementation does; the exact value
/// from a point x0 is sqrt(σ(t)² − σ_min²), equal to working precision for small σ_min.
#[derive(Clone, Debug)]
pub struct VeSde {
    /// σ_min.
    pub sigma_min: f64,
    /// σ_max.
    pub sigma_max: f64,
}

impl VeSde {
    /// A VE SDE; requires 0 < σ_min < σ_max.
    pub fn new(sigma_min: f64, sigma_max: f64) -> Result<Self> {
        if !(sigma_min > 0.0 && sigma_max > sigma_min && sigma_max.is_finite()) {
            return Err(Error::config(
                "sde.sigma_min/sigma_max",
                format!("need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}"),
            ));
        }
        Ok(VeSde {
            sigma_min,
            sigma_max,
        })
    }

    /// σ(t) = σ_min (σ_max/σ_min)^t.
    pub fn sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }

    fn sigma_prev(&self, t: f64, dt: f64) -> f64 {
        // SMLD's adjacent level is 0 at the last step (score_sde_pytorch VESDE.discretize).
        if t - dt <= 1e-12 {
            0.0
        } else {
            self.sigma(t - dt)
        }
    }
}

impl Sde for VeSde {
    fn name(&self) -> &'static str {
        "ve"
    }
    fn t_min(&self) -> f64 {
        1e-5
    }
    fn drift_coef(&self, _t: f64) -> f64 {
        0.0
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.sigma(t) * (2.0 * (self.sigma_max / self.sigma_min).ln()).sqrt()
    }
    fn mean_factor(&self, _t: f64) -> f64 {
        1.0
    }
    fn std(&self, t: f64) -> f64 {
        self.sigma(t)
    }
    fn prior_std(&self) -> f64 {
        self.sigma_max
    }
    /// SMLD discretisation: f_i = 0, G_i = sqrt(σ_i² − σ_{i−1}²).
    fn discretize(&self, t: f64, dt: f64) -> (f64, f64) {
        let s = self.sigma(t);
        let p = self.sigma_prev(t, dt);
        (0.0, (s * s - p * p).max(0.0).sqrt())
    }
    /// SMLD ancestral step (Song et al. 2021, Eq. 47).
    fn ancestral(&self, t: f64, dt: f64) -> Option<AncestralStep> {
        let s2 = self.sigma(t).powi(2);
        let p2 = self.sigma_prev(t, dt).powi(2);
        Some(AncestralStep {
            a: 1.0,
            b: s2 - p2,
            c: (p2 * (s2 - p2) / s2).max(0.0).sqrt(),
        })
    }
    fn edm_sigma(&self, t: f64) -> f64 {
        self.sigma(t)
    }
    fn t_from_edm_sigma(&self, sigma: f64) -> f64 {
        ((sigma / self.sigma_min).ln() / (self.sigma_max / self.sigma_min).ln()).clamp(0.0, 1.0)
    }
    fn spec(&self) -> SdeSpec {
        SdeSpec::Ve {
            sigma_min: self.sigma_min,
            sigma_max: self.sigma_max,
        }
    }
}
