//! Score-matching objectives, all written for an ε-parametrised model (s_θ = −ε_θ/s(t)):
//! continuous-time DSM (Song et al. 2021, Eq. 7) with λ = s² or likelihood weighting g²,
//! NCSN's DSM over geometric σ levels (Song & Ermon 2019, Eq. 5–6, λ(σ) = σ²), DDPM's
//! ε-prediction (Ho et al. 2020, Algorithm 1), and sliced score matching with variance
//! reduction in its finite-difference form (Song et al. 2019; Pang et al. 2020). The continuous
//! objectives draw their times uniformly, or from the log-normal noise-level distribution of
//! Karras et al. 2022 ([`TimeSampling`]).

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

/// How the continuous-time objectives (DSM, SSM) draw each sample's time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSampling {
    /// t ~ U(ε, T) (Song et al. 2021).
    #[default]
    Uniform,
    /// ln σ ~ N(P_mean, P_std²) for the EDM noise level σ = s(t)/m(t), clamped to the SDE's
    /// range and mapped back to t (Karras et al. 2022, Table 1, "p_train"): training effort goes
    /// to the noise levels where the image's structure is decided instead of the (for VP with
    /// uniform t, about 40 %) samples at σ > 5, where the denoiser only predicts the mean.
    Lognormal,
}

impl std::str::FromStr for TimeSampling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "uniform" => Ok(TimeSampling::Uniform),
            "lognormal" => Ok(TimeSampling::Lognormal),
            other => Err(Error::config(
                "loss.times",
                format!("unknown time sampling `{other}` (expected uniform or lognormal)"),
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
    /// How DSM and SSM draw their times.
    pub times: TimeSampling,
    /// P_mean of the log-normal σ distribution (Karras et al. 2022: −1.2 for data in [−1, 1]).
    pub p_mean: f64,
    /// P_std of the log-normal σ distribution (Karras et al. 2022: 1.2).
    pub p_std: f64,
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
            times: TimeSampling::Uniform,
            p_mean: -1.2,
            p_std: 1.2,
        }
    }
}

impl LossConfig {
    /// The configured time distribution.
    pub fn sampler(&self) -> TimeSampler {
        match self.times {
            TimeSampling::Uniform => TimeSampler::Uniform,
            TimeSampling::Lognormal => TimeSampler::Lognormal {
                p_mean: self.p_mean,
                p_std: self.p_std,
            },
        }
    }

    /// Checks the parameters that do not depend on the SDE.
    pub fn check_params(&self) -> Result<()> {
        if !self.p_mean.is_finite() {
            return Err(Error::config("loss.p_mean", "must be a finite number"));
        }
        Error::require_positive("loss.p_std", self.p_std)?;
        Error::require_positive("loss.ssm_h", self.ssm_h)?;
        Ok(())
    }

    /// Checks the objective fits the SDE.
    pub fn validate(&self, sde: &dyn Sde) -> Result<()> {
        self.check_params()?;
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
        LossKind::Dsm => dsm_loss(model, sde, x0, cfg.likelihood_weighting, cfg.sampler(), rng),
        LossKind::Ncsn => ncsn_loss(model, sde, x0, cfg.ncsn_levels, rng),
        LossKind::Ddpm => ddpm_loss(model, sde, x0, cfg.ddpm_steps, rng),
        LossKind::Ssm => ssm_loss(model, sde, x0, cfg, rng),
    })
}

/// A distribution of training times, with its parameters ([`TimeSampling`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeSampler {
    /// t ~ U(ε, T).
    Uniform,
    /// ln σ_EDM(t) ~ N(p_mean, p_std²), clamped to [σ(ε), σ(T)].
    Lognormal {
        /// Mean of ln σ.
        p_mean: f64,
        /// Standard deviation of ln σ.
        p_std: f64,
    },
}

impl TimeSampler {
    /// `n` per-sample times in [ε, T].
    pub fn sample(self, sde: &dyn Sde, n: usize, rng: &mut Rng) -> Vec<f64> {
        match self {
            TimeSampler::Uniform => rng.uniform_vec(n, sde.t_min(), sde.t_end()),
            TimeSampler::Lognormal { p_mean, p_std } => {
                let (lo, hi) = (sde.t_min(), sde.t_end());
                let (s_lo, s_hi) = (sde.edm_sigma(lo), sde.edm_sigma(hi));
                (0..n)
                    .map(|_| {
                        let sigma = (p_mean + p_std * rng.normal()).exp().clamp(s_lo, s_hi);
                        sde.t_from_edm_sigma(sigma).clamp(lo, hi)
                    })
                    .collect()
            }
        }
    }
}

/// x_t = m(t)x0 + s(t)z for per-sample times; returns (x_t, z, t column).
pub fn perturb<B: Backend>(
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
