//! Predictor–corrector samplers (Song et al. 2021, Alg. 1 and the VP variant Alg. 3),
//! with the reverse-SDE predictors: Euler–Maruyama, reverse diffusion and ancestral.

use burn::tensor::{backend::Backend, Tensor};

use super::{grid::sde_grid, steps::langevin_corrector_step, Observer, Sampled};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::randn;

/// A predictor: one step of a reverse-time SDE solver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predictor {
    /// Euler–Maruyama on the reverse SDE dx = [f − g²∇log p_t]dt + g dw̄.
    EulerMaruyama,
    /// Reverse diffusion (Song et al. 2021, Eq. 46): the SDE's own discretisation reversed.
    ReverseDiffusion,
    /// Ancestral sampling (SMLD for VE, DDPM for VP; Eqs. 47–48).
    Ancestral,
    /// No predictor (corrector only).
    None,
}

impl Predictor {
    /// One step t → t − dt; returns (x, x_mean) where x_mean is the step without noise.
    pub fn step<B: Backend, S: ScoreFn<B>>(
        self,
        score: &S,
        sde: &dyn Sde,
        x: Tensor<B, 2>,
        t: f64,
        dt: f64,
        rng: &mut Rng,
    ) -> Result<(Tensor<B, 2>, Tensor<B, 2>)> {
        let [n, d] = x.dims();
        let device = x.device();
        Ok(match self {
            Predictor::None => (x.clone(), x),
            Predictor::EulerMaruyama => {
                let s = score.score(x.clone(), &[t]);
                let g = sde.diffusion(t);
                let drift = x.clone().mul_scalar(sde.drift_coef(t)) - s.mul_scalar(g * g);
                let x_mean = x - drift.mul_scalar(dt);
                let z = randn::<B>(rng, n, d, &device);
                (x_mean.clone() + z.mul_scalar(g * dt.sqrt()), x_mean)
            }
            Predictor::ReverseDiffusion => {
                let (fc, g) = sde.discretize(t, dt);
                let s = score.score(x.clone(), &[t]);
                let rev_f = x.clone().mul_scalar(fc) - s.mul_scalar(g * g);
                let x_mean = x - rev_f;
                let z = randn::<B>(rng, n, d, &device);
                (x_mean.clone() + z.mul_scalar(g), x_mean)
            }
            Predictor::Ancestral => {
                let c = sde.ancestral(t, dt).ok_or_else(|| {
                    Error::Unsupported(format!(
                        "ancestral sampling is defined for the VE and VP SDEs (SMLD, DDPM), not `{}`; \
                         use reverse-diffusion, em or ddpm",
                        sde.name()
                    ))
                })?;
                let s = score.score(x.clone(), &[t]);
                let x_mean = x.mul_scalar(c.a) + s.mul_scalar(c.b);
                let z = randn::<B>(rng, n, d, &device);
                (x_mean.clone() + z.mul_scalar(c.c), x_mean)
            }
        })
    }

    fn nfe(self) -> usize {
        usize::from(self != Predictor::None)
    }
}

/// Generic predictor–corrector sampler (Song et al. 2021, Alg. 1; score_sde_pytorch's
/// `pc_sampler`): at each t_i of linspace(T, ε, N), `corrector_steps` Langevin corrector steps
/// with target `snr`, then one predictor step. Returns the last x_mean (noise-free last step)
/// when `denoise`.
#[allow(clippy::too_many_arguments)]
pub fn pc_sampler<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    mut x: Tensor<B, 2>,
    predictor: Predictor,
    steps: usize,
    corrector_steps: usize,
    snr: f64,
    denoise: bool,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Result<Sampled<B>> {
    let (times, dt) = sde_grid(sde, steps);
    let mut x_mean = x.clone();
    let mut nfe = 0;
    for &t in &times {
        let alpha = sde.corrector_alpha(t, dt);
        for _ in 0..corrector_steps {
            let (xn, xm) = langevin_corrector_step(score, x, t, snr, alpha, rng);
            x = xn;
            x_mean = xm;
            nfe += 1;
        }
        if predictor == Predictor::None {
            observe(t, &x);
            continue;
        }
        let (xn, xm) = predictor.step(score, sde, x, t, dt, rng)?;
        x = xn;
        x_mean = xm;
        nfe += predictor.nfe();
        observe(t, &x);
    }
    Ok(Sampled {
        x: if denoise { x_mean } else { x },
        nfe,
    })
}

/// PC sampling for the VP SDE as in Song et al. 2021, Algorithm 3: per step, first the
/// reverse-diffusion predictor x ← (2 − sqrt(1 − β_i))x + β_i s + sqrt(β_i) z, then `corrector_steps`
/// Langevin steps with ε = 2α_i(r‖z‖/‖s‖)², α_i = 1 − β_i.
#[allow(clippy::too_many_arguments)]
pub fn pc_vp_algorithm3<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    mut x: Tensor<B, 2>,
    steps: usize,
    corrector_steps: usize,
    snr: f64,
    denoise: bool,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Result<Sampled<B>> {
    if !sde.is_variance_preserving() {
        return Err(Error::Unsupported(format!(
            "pc-vp (Algorithm 3) is for the VP SDE, not `{}`; use pc",
            sde.name()
        )));
    }
    let (times, dt) = sde_grid(sde, steps);
    let mut nfe = 0;
    let mut x_mean = x.clone();
    for (i, &t) in times.iter().enumerate() {
        let (xn, xm) = Predictor::ReverseDiffusion.step(score, sde, x, t, dt, rng)?;
        x = xn;
        x_mean = xm;
        nfe += 1;
        // The corrector targets the next level t_{i−1} of the paper (here the next grid time).
        let t_next = times.get(i + 1).copied();
        if let Some(tn) = t_next {
            let alpha = sde.corrector_alpha(tn, dt);
            for _ in 0..corrector_steps {
                let (xn, xm) = langevin_corrector_step(score, x, tn, snr, alpha, rng);
                x = xn;
                x_mean = xm;
                nfe += 1;
            }
        }
        observe(t, &x);
    }
    Ok(Sampled {
        x: if denoise { x_mean } else { x },
        nfe,
    })
}
