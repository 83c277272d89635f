//! Denoising score matching objectives (Vincent 2011) in the ε-parametrisation.

use burn::tensor::{backend::Backend, Tensor};

use super::{perturb, TimeSampler};
use crate::rng::Rng;
use crate::score::{time_column, EpsModel};
use crate::sde::{ddpm_betas, ncsn_sigmas, Sde};

/// Continuous-time DSM (Song et al. 2021, Eq. 7): E_t E_z[λ(t)‖s_θ(x_t,t) + z/s(t)‖²], averaged
/// over dimensions. With λ = s², this is ‖ε_θ − z‖²; with likelihood weighting λ = g², it is
/// (g²/s²)‖ε_θ − z‖² (Song et al. 2021b, "Maximum likelihood training of score-based models").
/// The times come from `times` (uniform, or the log-normal σ of Karras et al. 2022).
pub fn dsm_loss<B: Backend, M: EpsModel<B>>(
    model: &M,
    sde: &dyn Sde,
    x0: Tensor<B, 2>,
    likelihood_weighting: bool,
    times: TimeSampler,
    rng: &mut Rng,
) -> Tensor<B, 1> {
    let n = x0.dims()[0];
    let device = x0.device();
    let times = times.sample(sde, n, rng);
    let (xt, z, t_col) = perturb(sde, x0, &times, rng);
    let per = (model.eps(xt, t_col) - z).powi_scalar(2).mean_dim(1);
    let per = if likelihood_weighting {
        per * time_column::<B>(&times, |t| (sde.diffusion(t) / sde.std(t)).powi(2), &device)
    } else {
        per
    };
    per.mean()
}

/// NCSN objective (Song & Ermon 2019, Eq. 5–6): a level σ_i of the geometric sequence from
/// σ_max to σ_min per sample, x̃ = x + σ_i z, loss ½σ_i²‖s_θ(x̃, σ_i) + z/σ_i‖² = ½‖ε_θ − z‖².
/// The network is conditioned on the VE time t_i with σ(t_i) = σ_i.
pub fn ncsn_loss<B: Backend, M: EpsModel<B>>(
    model: &M,
    sde: &dyn Sde,
    x0: Tensor<B, 2>,
    levels: usize,
    rng: &mut Rng,
) -> Tensor<B, 1> {
    let n = x0.dims()[0];
    let sigmas = ncsn_sigmas(sde.std(sde.t_end()), sde.std(0.0), levels);
    let times: Vec<f64> = (0..n)
        .map(|_| sde.t_from_edm_sigma(sigmas[rng.below(levels)]))
        .collect();
    let (xt, z, t_col) = perturb(sde, x0, &times, rng);
    (model.eps(xt, t_col) - z)
        .powi_scalar(2)
        .mean_dim(1)
        .mean()
        .mul_scalar(0.5)
}

/// DDPM training objective (Ho et al. 2020, Algorithm 1): i ~ U{1..T},
/// x_i = sqrt(ᾱ_i)x0 + sqrt(1 − ᾱ_i)ε, loss ‖ε − ε_θ(x_i, i/T)‖², with the linear β schedule
/// β_i = β(i/T)/T of the VP SDE (1e-4 … 0.02 for β_min = 0.1, β_max = 20, T = 1000).
pub fn ddpm_loss<B: Backend, M: EpsModel<B>>(
    model: &M,
    sde: &dyn Sde,
    x0: Tensor<B, 2>,
    steps: usize,
    rng: &mut Rng,
) -> Tensor<B, 1> {
    let [n, d] = x0.dims();
    let device = x0.device();
    let tn = steps as f64;
    // β_1 = β(1/T)/T … β_T = β(1)/T, so that T·β_i = β(t_i) (the VP SDE's limit).
    let beta = |t: f64| sde.diffusion(t).powi(2) / tn;
    let (_, alpha_bars) = ddpm_betas(beta(1.0 / tn), beta(1.0), steps);
    let idx: Vec<usize> = (0..n).map(|_| rng.below(steps)).collect();
    let ab: Vec<f64> = idx.iter().map(|&i| alpha_bars[i]).collect();
    let times: Vec<f64> = idx.iter().map(|&i| (i + 1) as f64 / tn).collect();
    let eps = crate::tensor::randn::<B>(rng, n, d, &device);
    let c0 = crate::tensor::column::<B>(&ab.iter().map(|a| a.sqrt()).collect::<Vec<_>>(), &device);
    let c1 = crate::tensor::column::<B>(
        &ab.iter().map(|a| (1.0 - a).sqrt()).collect::<Vec<_>>(),
        &device,
    );
    let xt = x0 * c0 + eps.clone() * c1;
    let t_col = crate::tensor::column::<B>(&times, &device);
    (model.eps(xt, t_col) - eps)
        .powi_scalar(2)
        .mean_dim(1)
        .mean()
}
