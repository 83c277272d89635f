//! Samplers in the EDM parametrisation (Karras et al. 2022): y = x/m(t) follows a VE process
//! with noise level σ = s(t)/m(t), and the denoiser D(y; σ) = x̂0 by Tweedie's formula.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::{steps::tweedie_x0, Observer, Sampled};
use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::randn;
use crate::{Error, Result};

/// The Karras et al. 2022 noise schedule (Eq. 5): `n` levels
/// σ_i = (σ_max^{1/ρ} + i/(n−1)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, followed by σ_n = 0.
pub fn karras_sigmas(sigma_min: f64, sigma_max: f64, n: usize, rho: f64) -> Vec<f64> {
    let (a, b) = (sigma_max.powf(1.0 / rho), sigma_min.powf(1.0 / rho));
    let mut s: Vec<f64> = (0..n)
        .map(|i| {
            let f = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            (a + f * (b - a)).powf(rho)
        })
        .collect();
    s.push(0.0);
    s
}

/// D(y; σ): the denoised estimate x̂0 at the time t(σ) (one NFE).
fn denoiser<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    y: Tensor<B, 2>,
    sigma: f64,
) -> Tensor<B, 2> {
    let t = sde.t_from_edm_sigma(sigma);
    let x = y.mul_scalar(sde.mean_factor(t));
    let s = score.score(x.clone(), &[t]);
    tweedie_x0(sde, x, s, t)
}

fn schedule(sde: &dyn Sde, steps: usize) -> Vec<f64> {
    karras_sigmas(
        sde.edm_sigma(sde.t_min()),
        sde.edm_sigma(sde.t_end()),
        steps,
        7.0,
    )
}

fn to_edm<B: Backend>(sde: &dyn Sde, x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.div_scalar(sde.mean_factor(sde.t_end()))
}

/// Options of the stochastic Heun sampler (Karras et al. 2022, Algorithm 2; S_churn = 0 gives
/// the deterministic Algorithm 1). Each step whose level σ_i lies in [S_tmin, S_tmax] first
/// raises the noise to σ̂ = (1 + γ)σ_i, γ = min(S_churn/N, √2 − 1), by adding
/// S_noise·√(σ̂² − σ_i²)·ε, then integrates the ODE from σ̂ to σ_{i+1}.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeunOptions {
    /// Total churn S_churn (0: deterministic).
    pub s_churn: f64,
    /// Churn only for σ in [s_tmin, s_tmax] (EDM noise levels σ = s(t)/m(t)).
    pub s_tmin: f64,
    /// Upper end of the churn range (∞ by default; written as the string "inf" in formats without
    /// infinities, such as JSON, and read back from it).
    #[serde(with = "f64_or_inf")]
    pub s_tmax: f64,
    /// Noise inflation S_noise (1: none).
    pub s_noise: f64,
}

impl HeunOptions {
    /// Checks that S_churn ≥ 0, 0 ≤ S_tmin ≤ S_tmax and S_noise > 0 (all but S_tmax finite),
    /// naming the offending option.
    pub fn check(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(Error::config(field, why));
        if !(self.s_churn.is_finite() && self.s_churn >= 0.0) {
            return bad("s_churn", "must be a finite number ≥ 0");
        }
        if !(self.s_tmin.is_finite() && self.s_tmin >= 0.0) {
            return bad("s_tmin", "must be a finite number ≥ 0");
        }
        if self.s_tmax.is_nan() || self.s_tmax < self.s_tmin {
            return bad("s_tmax", "must be at least s_tmin");
        }
        if !(self.s_noise.is_finite() && self.s_noise > 0.0) {
            return bad("s_noise", "must be a finite number > 0");
        }
        Ok(())
    }
}

/// Serde for an f64 that may be +∞: finite values as numbers, +∞ as the string "inf"
/// (serde_json would write null, which does not read back).
mod f64_or_inf {
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if *v == f64::INFINITY {
            s.serialize_str("inf")
        } else {
            s.serialize_f64(*v)
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match NumOrText::deserialize(d)? {
            NumOrText::Num(v) => Ok(v),
            NumOrText::Text(t) if matches!(t.as_str(), "inf" | "infinity" | "+inf") => {
                Ok(f64::INFINITY)
            }
            NumOrText::Text(t) => Err(de::Error::custom(format!(
                "`{t}` is neither a number nor \"inf\""
            ))),
        }
    }
}

impl Default for HeunOptions {
    fn default() -> Self {
        HeunOptions {
            s_churn: 0.0,
            s_tmin: 0.0,
            s_tmax: f64::INFINITY,
            s_noise: 1.0,
        }
    }
}

/// Heun's second-order sampler on dy/dσ = (y − D(y;σ))/σ with the Karras schedule
/// (Karras et al. 2022, Algorithms 1–2). `x` is a prior sample; NFE = 2·steps − 1.
pub fn heun_edm<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    x: Tensor<B, 2>,
    steps: usize,
    opts: HeunOptions,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Sampled<B> {
    let [n, d] = x.dims();
    let device = x.device();
    let sigmas = schedule(sde, steps);
    let mut y = to_edm(sde, x);
    let mut nfe = 0;
    for w in sigmas.windows(2) {
        let (mut sigma, next) = (w[0], w[1]);
        let gamma = if opts.s_churn > 0.0 && sigma >= opts.s_tmin && sigma <= opts.s_tmax {
            (opts.s_churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        };
        if gamma > 0.0 {
            let hat = sigma * (1.0 + gamma);
            let extra = (hat * hat - sigma * sigma).sqrt() * opts.s_noise;
            y = y + randn::<B>(rng, n, d, &device).mul_scalar(extra);
            sigma = hat;
        }
        let d1 = (y.clone() - denoiser(score, sde, y.clone(), sigma)).div_scalar(sigma);
        nfe += 1;
        let y_euler = y.clone() + d1.clone().mul_scalar(next - sigma);
        y = if next > 0.0 {
            let d2 = (y_euler.clone() - denoiser(score, sde, y_euler, next)).div_scalar(next);
            nfe += 1;
            y + (d1 + d2).mul_scalar(0.5 * (next - sigma))
        } else {
            y_euler
        };
        observe(sde.t_from_edm_sigma(next), &y);
    }
    Sampled { x: y, nfe }
}

/// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) in the EDM variables, multistep in
/// λ = −log σ, with the Karras schedule as in k-diffusion. NFE = steps.
pub fn dpmpp_2m<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    x: Tensor<B, 2>,
    steps: usize,
    observe: Observer<B>,
) -> Sampled<B> {
    let sigmas = schedule(sde, steps);
    let mut y = to_edm(sde, x);
    let mut old: Option<Tensor<B, 2>> = None;
    for i in 0..steps {
        let (sigma, next) = (sigmas[i], sigmas[i + 1]);
        let den = denoiser(score, sde, y.clone(), sigma);
        if next == 0.0 {
            y = den.clone();
        } else {
            let h = sigma.ln() - next.ln();
            let ratio = next / sigma;
            let coef = -(-h).exp_m1();
            let d = match (&old, i) {
                (Some(prev), i) if i > 0 => {
                    let h_last = sigmas[i - 1].ln() - sigma.ln();
                    let r = h_last / h;
                    den.clone().mul_scalar(1.0 + 1.0 / (2.0 * r))
                        - prev.clone().mul_scalar(1.0 / (2.0 * r))
                }
                _ => den.clone(),
            };
            y = y.mul_scalar(ratio) + d.mul_scalar(coef);
        }
        old = Some(den);
        observe(sde.t_from_edm_sigma(next), &y);
    }
    Sampled { x: y, nfe: steps }
}
