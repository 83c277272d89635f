//! DDIM (Song, Meng & Ermon 2021, Eq. 12), written for any linear SDE.

use burn::tensor::{backend::Backend, Tensor};

use super::{ddpm::transition, grid::reverse_grid, steps::tweedie_x0, Observer, Sampled};
use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::randn;

/// DDIM: x_prev = m_p·x̂0 + sqrt(s_p² − σ²)·ε̂ + σz with ε̂ = −s_t∇log p_t, x̂0 by Tweedie and
/// σ = η·sqrt(b² s_p²/s_t²) (η = 0 deterministic, η = 1 the DDPM posterior). For the VP SDE
/// m² = ᾱ and s² = 1 − ᾱ, the paper's notation. The last step returns x̂0.
///
/// With `clip = Some((lo, hi))`, x̂0 is clamped to the data range at every step and ε̂
/// recomputed from it, ε̂ = (x − m_t x̂0)/s_t ("clip_denoised" of Ho et al.'s code, diffusers'
/// `clip_sample`): it keeps pixel-space image models from running off the data range.
pub fn ddim<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    mut x: Tensor<B, 2>,
    steps: usize,
    eta: f64,
    clip: Option<(f64, f64)>,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Sampled<B> {
    let [n, d] = x.dims();
    let device = x.device();
    let grid = reverse_grid(sde.t_end(), steps);
    for w in grid.windows(2) {
        let (t, t_prev) = (w[0], w[1]);
        let s = score.score(x.clone(), &[t]);
        let mut x0 = tweedie_x0(sde, x.clone(), s.clone(), t);
        let mut eps = s.mul_scalar(-sde.std(t));
        if let Some((lo, hi)) = clip {
            x0 = x0.clamp(lo, hi);
            eps = (x.clone() - x0.clone().mul_scalar(sde.mean_factor(t))).div_scalar(sde.std(t));
        }
        if t_prev <= 0.0 {
            x = x0;
        } else {
            let (_, b2, s_p, s_t) = transition(sde, t, t_prev);
            let sigma = eta * (b2 * s_p * s_p / (s_t * s_t)).sqrt();
            let dir = (s_p * s_p - sigma * sigma).max(0.0).sqrt();
            x = x0.mul_scalar(sde.mean_factor(t_prev)) + eps.mul_scalar(dir);
            if sigma > 0.0 {
                x = x + randn::<B>(rng, n, d, &device).mul_scalar(sigma);
            }
        }
        observe(t_prev, &x);
    }
    Sampled { x, nfe: steps }
}
