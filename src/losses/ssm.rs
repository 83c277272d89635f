//! Sliced score matching with variance reduction (Song, Garg, Shi & Ermon 2019, Eq. 8), using the
//! finite-difference form of Pang et al. 2020 because burn has no second-order autodiff.

use burn::tensor::{backend::Backend, Tensor};

use super::{perturb, LossConfig};
use crate::rng::Rng;
use crate::score::{time_column, EpsModel};
use crate::sde::Sde;

/// SSM-VR on the perturbed marginals p_t: E[λ(t)(vᵀ∇ₓs_θ v + ½‖s_θ‖²)], with v Rademacher and
/// vᵀ∇ₓs v ≈ vᵀ[s(x + hv) − s(x − hv)]/(2h), h = `h_rel`·s(t) (design/MATH.md).
/// The noise z that produced x_t is never used: only samples of p_t are needed.
/// In the ε-parametrisation with λ = s²: −s·vᵀ∇ε_θ v + ½‖ε_θ‖²; averaged over dimensions.
/// From `cfg`: the weighting, the time distribution, the projections per sample and h_rel.
pub fn ssm_loss<B: Backend, M: EpsModel<B>>(
    model: &M,
    sde: &dyn Sde,
    x0: Tensor<B, 2>,
    cfg: &LossConfig,
    rng: &mut Rng,
) -> Tensor<B, 1> {
    let [n, d] = x0.dims();
    let device = x0.device();
    let (likelihood_weighting, projections, h_rel) =
        (cfg.likelihood_weighting, cfg.ssm_projections, cfg.ssm_h);
    let times = cfg.sampler().sample(sde, n, rng);
    let (xt, _z, t_col) = perturb(sde, x0, &times, rng);
    let s = time_column::<B>(&times, |t| sde.std(t), &device);
    let h = s.clone().mul_scalar(h_rel);
    let eps = model.eps(xt.clone(), t_col.clone());
    let mut jac = Tensor::<B, 2>::zeros([n, 1], &device);
    let k = projections.max(1);
    for _ in 0..k {
        let v = crate::tensor::rademacher::<B>(rng, n, d, &device);
        let hv = v.clone() * h.clone();
        let plus = model.eps(xt.clone() + hv.clone(), t_col.clone());
        let minus = model.eps(xt.clone() - hv, t_col.clone());
        let vjv = ((plus - minus) * v).sum_dim(1) / h.clone().mul_scalar(2.0);
        jac = jac + vjv;
    }
    let jac = jac.div_scalar(k as f64);
    let per = (jac.neg() * s + eps.powi_scalar(2).sum_dim(1).mul_scalar(0.5)).div_scalar(d as f64);
    let per = if likelihood_weighting {
        per * time_column::<B>(&times, |t| (sde.diffusion(t) / sde.std(t)).powi(2), &device)
    } else {
        per
    };
    per.mean()
}
