//! Langevin dynamics: plain (a fixed distribution) and annealed over noise levels (NCSN).

use burn::tensor::{backend::Backend, Tensor};

use super::{grid::uniform_grid, Observer, Sampled};
use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::randn;

/// Unadjusted Langevin MCMC targeting p_t at one fixed time t (Song & Ermon 2019, Eq. 2):
/// x ← x + (ε/2)∇log p_t(x) + sqrt(ε) z, `steps` times.
pub fn langevin<B: Backend, S: ScoreFn<B>>(
    score: &S,
    mut x: Tensor<B, 2>,
    t: f64,
    step_size: f64,
    steps: usize,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Sampled<B> {
    let [n, d] = x.dims();
    let device = x.device();
    for _ in 0..steps {
        let s = score.score(x.clone(), &[t]);
        let z = randn::<B>(rng, n, d, &device);
        x = x + s.mul_scalar(0.5 * step_size) + z.mul_scalar(step_size.sqrt());
        observe(t, &x);
    }
    Sampled { x, nfe: steps }
}

/// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): for noise levels
/// t_1 = T > … > t_L = ε (σ_i = s(t_i), geometric for the VE SDE), run `steps_per_level`
/// Langevin steps with α_i = ε·σ_i²/σ_L². `step_lr` is NCSN's ε; 0 picks ε = 0.2·σ_L², i.e.
/// α_i = 0.2σ_i² at every level, NCSN's CIFAR-10 ratio (ε = 2e-5, σ_L = 0.01) for any σ range.
/// `denoise` adds the final Tweedie step of NCSNv2.
#[allow(clippy::too_many_arguments)]
pub fn annealed_langevin<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    mut x: Tensor<B, 2>,
    levels: usize,
    steps_per_level: usize,
    step_lr: f64,
    denoise: bool,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Sampled<B> {
    let [n, d] = x.dims();
    let device = x.device();
    let times = uniform_grid(sde.t_end(), sde.t_min(), levels);
    let sigma_l = sde.std(sde.t_min());
    let step_lr = if step_lr > 0.0 {
        step_lr
    } else {
        0.2 * sigma_l * sigma_l
    };
    let mut nfe = 0;
    for &t in &times {
        let alpha = step_lr * (sde.std(t) / sigma_l).powi(2);
        for _ in 0..steps_per_level {
            let s = score.score(x.clone(), &[t]);
            let z = randn::<B>(rng, n, d, &device);
            x = x + s.mul_scalar(0.5 * alpha) + z.mul_scalar(alpha.sqrt());
            nfe += 1;
        }
        observe(t, &x);
    }
    if denoise {
        x = super::steps::denoise(score, sde, x, sde.t_min());
        nfe += 1;
    }
    Sampled { x, nfe }
}
