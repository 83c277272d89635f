//! One-step helpers shared by samplers (k-diffusion's `to_d`-style pieces).

use burn::tensor::{backend::Backend, Tensor};

use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::{randn, row_sq_norm, scalar};

/// Tweedie's denoised estimate x̂0 = (x + s(t)² ∇log p_t(x)) / m(t) (Efron 2011).
pub fn tweedie_x0<B: Backend>(
    sde: &dyn Sde,
    x: Tensor<B, 2>,
    score: Tensor<B, 2>,
    t: f64,
) -> Tensor<B, 2> {
    let s2 = sde.std(t).powi(2);
    (x + score.mul_scalar(s2)).div_scalar(sde.mean_factor(t))
}

/// Final noise removal at time t (one Tweedie step; "denoise" of score_sde_pytorch). One NFE.
pub fn denoise<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    x: Tensor<B, 2>,
    t: f64,
) -> Tensor<B, 2> {
    let s = score.score(x.clone(), &[t]);
    tweedie_x0(sde, x, s, t)
}

/// One Langevin corrector step with a target signal-to-noise ratio `snr`
/// (Song et al. 2021, Alg. 4/5): ε = 2α(r‖z‖/‖s‖)², x ← x + ε s + sqrt(2ε) z, with the norms
/// averaged over the batch as in score_sde_pytorch (per-sample norms blow the step up near a
/// mode, where ‖s‖ → 0, in low dimension). Returns (x, x_mean).
pub fn langevin_corrector_step<B: Backend, S: ScoreFn<B>>(
    score: &S,
    x: Tensor<B, 2>,
    t: f64,
    snr: f64,
    alpha: f64,
    rng: &mut Rng,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [n, d] = x.dims();
    let device = x.device();
    let grad = score.score(x.clone(), &[t]);
    let z = randn::<B>(rng, n, d, &device);
    let grad_norm = scalar(row_sq_norm(grad.clone()).sqrt().mean()).max(1e-30);
    let noise_norm = scalar(row_sq_norm(z.clone()).sqrt().mean());
    let step = 2.0 * alpha * (snr * noise_norm / grad_norm).powi(2);
    let x_mean = x + grad.mul_scalar(step);
    let x_new = x_mean.clone() + z.mul_scalar((2.0 * step).sqrt());
    (x_new, x_mean)
}
