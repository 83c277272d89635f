//! One-step helpers shared by samplers (k-diffusion's `to_d`-style pieces).

use burn::tensor::{backend::Backend, Tensor};

use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::{from_rows, row_sq_norm};

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
    // ‖z‖ is taken on the host where z is drawn, and ε stays a one-element tensor on the
    // device: no device-to-host read per corrector step (each one a synchronisation on a GPU).
    let z_host = rng.normal_vec(n * d);
    let noise_norm = z_host
        .chunks_exact(d.max(1))
        .map(|r| r.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt())
        .sum::<f64>()
        / n.max(1) as f64;
    let z = from_rows(z_host, n, d, &device);
    // ‖s‖² floored at 10⁻³⁰ (its inverse stays finite in f32, and a zero score moves nothing).
    let grad_norm = row_sq_norm(grad.clone()).sqrt().mean();
    let step = grad_norm
        .powi_scalar(2)
        .clamp_min(1e-30)
        .recip()
        .mul_scalar(2.0 * alpha * (snr * noise_norm).powi(2))
        .reshape([1, 1]);
    let x_mean = x + grad * step.clone();
    let x_new = x_mean.clone() + z * step.mul_scalar(2.0).sqrt();
    (x_new, x_mean)
}
