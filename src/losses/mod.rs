//! Score-matching objectives, all written for an ε-parametrised model (s_θ = −ε_θ/s(t)):
//! continuous-time DSM (Song et al. 2021, Eq. 7) with λ = s² or likelihood weighting g²,
//! NCSN's DSM over geometric σ levels (Song & Ermon 2019, Eq. 5–6, λ(σ) = σ²), DDPM's
//! ε-prediction (Ho et al. 2020, Algorithm 1), and sliced score matching with variance
//! reduction in its finite-difference form (Song et al. 2019; Pang et al. 2020).

mod dsm;
mod ssm;

pub use dsm::{ddpm_loss, dsm_loss, ncsn_loss};
pub use ssm::ssm_loss;

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::score::EpsModel;
use crate::sde::Sde;

/// Which objective to train with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Continuous-time denoising score matching.
    Dsm,
    /// NCSN: DSM over L geometric noise levels (VE only).
    Ncsn,
    /// DDPM ε-prediction over T discrete steps (VP only).
    Ddpm,
    /// Sliced score matching (no knowledge of the noise).
    Ssm,
}

impl LossKind {
    /// Parses `dsm`, `ncsn`, `ddpm`, `ssm`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "dsm" => Ok(LossKind::Dsm),
            "ncsn" => Ok(LossKind::Ncsn),
            "ddpm" => Ok(LossKind::Ddpm),
            "ssm" => Ok(LossKind::Ssm),
            other => Err(Error::config(
                "loss",
                format!("unknown loss `{other}` (expected dsm, ncsn, ddpm or ssm)"),
            )),
        }
    }
}

/// Options of the objectives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossConfig {
    /// The objective.
    pub kind: LossKind,
    /// Likelihood weighting λ(t) = g(t)² instead of s(t)² (DSM and SSM).
    pub likelihood_weighting: bool,
    /// Number of NCSN noise levels L.
    pub ncsn_levels: usize,
    /// Number of DDPM steps T.
    pub ddpm_steps: usize,
    /// Random projections per sample for SSM.
    pub ssm_projections: usize,
    /// Finite-difference step of FD-SSM, relative to s(t).
    pub ssm_h: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            kind: LossKind::Dsm,
            likelihood_weighting: false,
            ncsn_levels: 100,
            ddpm_steps: 1000,
            ssm_projections: 1,
            ssm_h: 0.01,
        }
    }
}

impl LossConfig {
    /// Checks the objective fits the SDE.
    pub fn validate(&self, sde: &dyn Sde) -> Result<()> {
        match self.kind {
            LossKind::Ncsn if sde.name() != "ve" => Err(Error::config(
                "loss",
                format!(
                    "the NCSN loss perturbs with x + σz and needs the VE SDE, not `{}`",
                    sde.name()
                ),
            )),
            LossKind::Ddpm if sde.name() != "vp" => Err(Error::config(
                "loss",
                format!(
                    "the DDPM loss uses the VP schedule and needs the VP SDE, not `{}`",
                    sde.name()
                ),
            )),
            LossKind::Ncsn if self.ncsn_levels < 2 => {
                Err(Error::config("ncsn_levels", "need at least 2 levels"))
            }
            LossKind::Ddpm if self.ddpm_steps < 2 => {
                Err(Error::config("ddpm_steps", "need at least 2 steps"))
            }
            _ => Ok(()),
        }
    }
}

/// The configured objective on a batch `x0: [n, d]` (mean over the batch); draws its times and
/// noise from `rng`.
pub fn loss<B: Backend, M: EpsModel<B>>(
    cfg: &LossConfig,
    model: &M,
    sde: &dyn Sde,
    x0: Tensor<B, 2>,
    rng: &mut Rng,
) -> Result<Tensor<B, 1>> {
    cfg.validate(sde)?;
    Ok(match cfg.kind {
        LossKind::Dsm => dsm_loss(model, sde, x0, cfg.likelihood_weighting, rng),
        LossKind::Ncsn => ncsn_loss(model, sde, x0, cfg.ncsn_levels, rng),
        LossKind::Ddpm => ddpm_loss(model, sde, x0, cfg.ddpm_steps, rng),
        LossKind::Ssm => ssm_loss(
            model,
            sde,
            x0,
            cfg.likelihood_weighting,
            cfg.ssm_projections,
            cfg.ssm_h,
            rng,
        ),
    })
}

/// Per-sample times t ~ U(ε, T).
pub(crate) fn sample_times(sde: &dyn Sde, n: usize, rng: &mut Rng) -> Vec<f64> {
    rng.uniform_vec(n, sde.t_min(), sde.t_end())
}

/// x_t = m(t)x0 + s(t)z for per-sample times; returns (x_t, z, t column).
pub(crate) fn perturb<B: Backend>(
    sde: &dyn Sde,
    x0: Tensor<B, 2>,
    times: &[f64],
    rng: &mut Rng,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    let [n, d] = x0.dims();
    let device = x0.device();
    let z = crate::tensor::randn::<B>(rng, n, d, &device);
    let m = crate::score::time_column::<B>(times, |t| sde.mean_factor(t), &device);
    let s = crate::score::time_column::<B>(times, |t| sde.std(t), &device);
    let t_col = crate::score::time_column::<B>(times, |t| t, &device);
    (x0 * m + z.clone() * s, z, t_col)
}

#[cfg(test)]
mod tests;
