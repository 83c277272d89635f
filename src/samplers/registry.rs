//! Samplers registered by name, so configs and the CLI select them without scattered matches.

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::{
    annealed_langevin, ddim, ddpm_ancestral, dpmpp_2m, heun_edm, langevin, pc_sampler,
    pc_vp_algorithm3, probability_flow, HeunOptions, Observer, Predictor, Rk45Options, Sampled,
};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::{prior_sample, Sde};
use crate::tensor::randn;

/// Every sampler scoregen provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Langevin MCMC at the fixed time t = ε.
    Langevin,
    /// Annealed Langevin dynamics (NCSN).
    AnnealedLangevin,
    /// Reverse-SDE Euler–Maruyama.
    Em,
    /// Reverse-diffusion predictor.
    ReverseDiffusion,
    /// Ancestral predictor (SMLD/DDPM).
    Ancestral,
    /// Predictor–corrector: reverse diffusion + Langevin corrector.
    Pc,
    /// PC for the VP SDE, Algorithm 3 of Song et al. 2021.
    PcVp,
    /// Probability-flow ODE with adaptive RK45.
    Ode,
    /// DDPM ancestral sampling (Algorithm 2).
    Ddpm,
    /// DDIM with parameter η.
    Ddim,
    /// Heun / EDM (Karras et al. 2022).
    Heun,
    /// DPM-Solver++(2M).
    DpmPp2m,
}

impl SamplerKind {
    /// All samplers with their CLI names.
    pub const ALL: [(&'static str, SamplerKind); 12] = [
        ("langevin", SamplerKind::Langevin),
        ("annealed-langevin", SamplerKind::AnnealedLangevin),
        ("em", SamplerKind::Em),
        ("reverse-diffusion", SamplerKind::ReverseDiffusion),
        ("ancestral", SamplerKind::Ancestral),
        ("pc", SamplerKind::Pc),
        ("pc-vp", SamplerKind::PcVp),
        ("ode", SamplerKind::Ode),
        ("ddpm", SamplerKind::Ddpm),
        ("ddim", SamplerKind::Ddim),
        ("heun", SamplerKind::Heun),
        ("dpmpp-2m", SamplerKind::DpmPp2m),
    ];

    /// Looks a sampler up by its CLI name.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                Error::config(
                    "sampler",
                    format!(
                        "unknown sampler `{name}`; expected one of: {}",
                        names.join(", ")
                    ),
                )
            })
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Default number of steps (levels for annealed Langevin; ignored by `ode`).
    pub fn default_steps(self) -> usize {
        match self {
            SamplerKind::Langevin => 1000,
            SamplerKind::AnnealedLangevin => 100,
            SamplerKind::Em | SamplerKind::ReverseDiffusion | SamplerKind::Ancestral => 1000,
            SamplerKind::Pc | SamplerKind::PcVp => 500,
            SamplerKind::Ddpm => 1000,
            SamplerKind::Ddim => 100,
            SamplerKind::Heun => 50,
            SamplerKind::DpmPp2m => 50,
            SamplerKind::Ode => 0,
        }
    }
}

/// The most steps (or corrector steps) a sampler may be asked for.
pub const MAX_STEPS: usize = 1_000_000;

/// Refuses more than [`MAX_STEPS`] steps or corrector steps, and a corrector signal-to-noise
/// ratio that is not a finite number ≥ 0 (shared by [`SamplerConfig::check`] and inpainting).
pub(crate) fn check_steps_and_snr(steps: usize, corrector_steps: usize, snr: f64) -> Result<()> {
    if steps > MAX_STEPS || corrector_steps > MAX_STEPS {
        return Err(Error::config(
            "steps",
            format!(
                "{steps} steps and {corrector_steps} corrector steps: at most {MAX_STEPS} each"
            ),
        ));
    }
    if !(snr.is_finite() && snr >= 0.0) {
        return Err(Error::config(
            "snr",
            format!("must be a finite number ≥ 0, got {snr}"),
        ));
    }
    Ok(())
}

/// A sampler with all its options.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerConfig {
    /// Which sampler.
    pub kind: SamplerKind,
    /// Steps (noise levels for annealed Langevin); 0 = the sampler's default.
    pub steps: usize,
    /// Langevin corrector steps per predictor step (`pc`, `pc-vp`) or per level (annealed).
    pub corrector_steps: usize,
    /// Target signal-to-noise ratio r of the Langevin corrector.
    pub snr: f64,
    /// Step size ε of Langevin / annealed Langevin (α_i = ε σ_i²/σ_L²; 0 = automatic for
    /// annealed Langevin, see [`annealed_langevin`]).
    pub step_size: f64,
    /// DDIM η.
    pub eta: f64,
    /// Heun's stochastic churn (Karras et al. 2022, Algorithm 2); the default is deterministic.
    pub heun: HeunOptions,
    /// RK45 tolerances for `ode`.
    pub rtol: f64,
    /// RK45 absolute tolerance.
    pub atol: f64,
    /// Remove the last step's noise (Tweedie denoising).
    pub denoise: bool,
    /// Clamp DDIM's x̂0 to this data range at every step (image models: [−1, 1]).
    pub clip: Option<(f64, f64)>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            kind: SamplerKind::Pc,
            steps: 0,
            corrector_steps: 1,
            snr: 0.16,
            step_size: 0.0,
            eta: 0.0,
            heun: HeunOptions::default(),
            rtol: 1e-5,
            atol: 1e-5,
            denoise: true,
            clip: None,
        }
    }
}

impl SamplerConfig {
    /// Defaults for `kind`.
    pub fn new(kind: SamplerKind) -> Self {
        let mut c = SamplerConfig {
            kind,
            ..Default::default()
        };
        match kind {
            SamplerKind::AnnealedLangevin => c.corrector_steps = 20,
            SamplerKind::Langevin => c.step_size = 1e-3,
            _ => {}
        }
        c
    }

    /// Checks every option's range (each sampler reads only its own, but a NaN or a negative
    /// size anywhere is a mistake worth naming).
    pub fn check(&self) -> Result<()> {
        let bad =
            |field: &str, why: &str, v: f64| Err(Error::config(field, format!("{why}, got {v}")));
        check_steps_and_snr(self.steps, self.corrector_steps, self.snr)?;
        if !(self.step_size.is_finite() && self.step_size >= 0.0) {
            return bad("step_size", "must be a finite number ≥ 0", self.step_size);
        }
        if !(0.0..=1.0).contains(&self.eta) {
            return bad(
                "eta",
                "must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise)",
                self.eta,
            );
        }
        for (field, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(field, "must be a finite number > 0", v);
            }
        }
        if let Some((lo, hi)) = self.clip {
            // Clamped in f32.
            let (l, h) = (lo as f32, hi as f32);
            if !(l.is_finite() && h.is_finite() && l < h) {
                return Err(Error::config(
                    "clip",
                    format!("needs finite lo < hi, got ({lo}, {hi})"),
                ));
            }
        }
        self.heun.check()
    }

    /// Steps actually used.
    pub fn effective_steps(&self) -> usize {
        if self.steps == 0 {
            self.kind.default_steps()
        } else {
            self.steps
        }
    }
}

/// Draws `n` samples of dimension `d`: prior sample (standard normal for `langevin`), then the
/// configured sampler.
pub fn sample<B: Backend, S: ScoreFn<B>>(
    cfg: &SamplerConfig,
    score: &S,
    sde: &dyn Sde,
    n: usize,
    d: usize,
    rng: &mut Rng,
    device: &B::Device,
    observe: Observer<B>,
) -> Result<Sampled<B>> {
    let steps = cfg.effective_steps();
    if steps == 0 && cfg.kind != SamplerKind::Ode {
        return Err(Error::config("steps", "must be at least 1"));
    }
    cfg.check()?;
    crate::tensor::check_allocatable(n, d, &format!("{n} samples of {d} values"))?;
    if cfg.kind == SamplerKind::Langevin {
        let x = randn::<B>(rng, n, d, device);
        return Ok(langevin(
            score,
            x,
            sde.t_min(),
            cfg.step_size,
            steps,
            rng,
            observe,
        ));
    }
    let x = prior_sample(sde, rng, n, d, device);
    let pc = |p: Predictor, corr: usize, rng: &mut Rng, observe: Observer<B>| {
        pc_sampler(
            score,
            sde,
            x.clone(),
            p,
            steps,
            corr,
            cfg.snr,
            cfg.denoise,
            rng,
            observe,
        )
    };
    match cfg.kind {
        SamplerKind::Langevin => unreachable!("handled above"),
        SamplerKind::AnnealedLangevin => Ok(annealed_langevin(
            score,
            sde,
            x,
            steps,
            cfg.corrector_steps.max(1),
            cfg.step_size,
            cfg.denoise,
            rng,
            observe,
        )),
        SamplerKind::Em => pc(Predictor::EulerMaruyama, 0, rng, observe),
        SamplerKind::ReverseDiffusion => pc(Predictor::ReverseDiffusion, 0, rng, observe),
        SamplerKind::Ancestral => pc(Predictor::Ancestral, 0, rng, observe),
        SamplerKind::Pc => pc(
            Predictor::ReverseDiffusion,
            cfg.corrector_steps,
            rng,
            observe,
        ),
        SamplerKind::PcVp => pc_vp_algorithm3(
            score,
            sde,
            x,
            steps,
            cfg.corrector_steps,
            cfg.snr,
            cfg.denoise,
            rng,
            observe,
        ),
        SamplerKind::Ode => {
            let opts = Rk45Options {
                rtol: cfg.rtol,
                atol: cfg.atol,
                ..Default::default()
            };
            probability_flow(score, sde, x, opts, cfg.denoise, observe)
        }
        SamplerKind::Ddpm => Ok(ddpm_ancestral(score, sde, x, steps, rng, observe)),
        SamplerKind::Ddim => Ok(ddim(score, sde, x, steps, cfg.eta, cfg.clip, rng, observe)),
        SamplerKind::Heun => Ok(heun_edm(score, sde, x, steps, cfg.heun, rng, observe)),
        SamplerKind::DpmPp2m => Ok(dpmpp_2m(score, sde, x, steps, observe)),
    }
}
