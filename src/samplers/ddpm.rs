//! DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), written for any linear SDE.

use burn::tensor::{backend::Backend, Tensor};

use super::{grid::reverse_grid, Observer, Sampled};
use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::randn;

/// Coefficients of the step t → t_prev: x_t | x_prev ~ N(a·x_prev, b² I) with a = m_t/m_p,
/// b² = s_t² − a² s_p²; the target t_prev = 0 means the clean data (m = 1, s = 0).
pub(crate) fn transition(sde: &dyn Sde, t: f64, t_prev: f64) -> (f64, f64, f64, f64) {
    let (m_t, s_t) = (sde.mean_factor(t), sde.std(t));
    let (m_p, s_p) = if t_prev <= 0.0 {
        (1.0, 0.0)
    } else {
        (sde.mean_factor(t_prev), sde.std(t_prev))
    };
    let a = m_t / m_p;
    let b2 = (s_t * s_t - a * a * s_p * s_p).max(0.0);
    (a, b2, s_p, s_t)
}

/// DDPM ancestral sampling, Algorithm 2 of Ho et al. 2020:
/// x_{t−1} = (1/sqrt(α_t))(x_t − β_t/sqrt(1 − ᾱ_t)·ε_θ) + σ_t z, here with ε_θ = −s_t∇log p_t,
/// so x_prev = (x + β·∇log p_t)/sqrt(α). β and α come from the SDE's marginals (for the VP SDE
/// with `steps` = 1000 they are DDPM's linear schedule), and σ_t² = β̃_t = β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t),
/// the posterior variance (Ho et al. Sec. 3.2), which is also exact for VE and sub-VP.
/// The last step (to t = 0) adds no noise.
pub fn ddpm_ancestral<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    mut x: Tensor<B, 2>,
    steps: usize,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Sampled<B> {
    let [n, d] = x.dims();
    let device = x.device();
    let grid = reverse_grid(sde.t_end(), steps);
    for w in grid.windows(2) {
        let (t, t_prev) = (w[0], w[1]);
        let (a, b2, s_p, s_t) = transition(sde, t, t_prev);
        let s = score.score(x.clone(), &[t]);
        let mean = (x + s.mul_scalar(b2)).div_scalar(a);
        let sigma = (b2 * s_p * s_p / (s_t * s_t)).sqrt();
        x = if sigma > 0.0 {
            mean + randn::<B>(rng, n, d, &device).mul_scalar(sigma)
        } else {
            mean
        };
        observe(t_prev, &x);
    }
    Sampled { x, nfe: steps }
}
