//! Discrete noise schedules: NCSN's geometric σ levels and DDPM's linear β.

/// NCSN noise levels (Song & Ermon 2019): `levels` values geometric from σ_max down to σ_min.
pub fn ncsn_sigmas(sigma_max: f64, sigma_min: f64, levels: usize) -> Vec<f64> {
    if levels == 1 {
        return vec![sigma_max];
    }
    let ratio = (sigma_min / sigma_max).ln() / (levels - 1) as f64;
    (0..levels)
        .map(|i| sigma_max * (ratio * i as f64).exp())
        .collect()
}

/// DDPM betas (Ho et al. 2020): `steps` values linear from `beta_1` to `beta_t`
/// (1e-4 to 0.02 with T = 1000 in the paper). Returns (β_i, ᾱ_i = Π_{j≤i}(1 − β_j)).
pub fn ddpm_betas(beta_1: f64, beta_t: f64, steps: usize) -> (Vec<f64>, Vec<f64>) {
    let betas: Vec<f64> = (0..steps)
        .map(|i| {
            if steps == 1 {
                beta_1
            } else {
                beta_1 + (beta_t - beta_1) * i as f64 / (steps - 1) as f64
            }
        })
        .collect();
    let mut acc = 1.0;
    let alpha_bars = betas
        .iter()
        .map(|b| {
            acc *= 1.0 - b;
            acc
        })
        .collect();
    (betas, alpha_bars)
}
