//! Time grids shared by the samplers.

/// `n` times linear from `t_start` down to `t_end` inclusive (score_sde_pytorch's
/// `linspace(T, ε, N)`).
pub fn uniform_grid(t_start: f64, t_end: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![t_start];
    }
    (0..n)
        .map(|i| t_start + (t_end - t_start) * i as f64 / (n - 1) as f64)
        .collect()
}

/// DDPM-style grid: tᵢ = T·(n − i)/n for i = 0..n, so the last step goes from T/n to 0
/// (for n = 1000 these are DDPM's timesteps i/T).
pub fn reverse_grid(t_end: f64, n: usize) -> Vec<f64> {
    (0..=n).map(|i| t_end * (n - i) as f64 / n as f64).collect()
}

/// The reverse-SDE grid linspace(T, ε, n) of the predictor–corrector samplers and its spacing.
pub fn sde_grid(sde: &dyn crate::sde::Sde, n: usize) -> (Vec<f64>, f64) {
    let dt = (sde.t_end() - sde.t_min()) / (n.max(2) - 1) as f64;
    (uniform_grid(sde.t_end(), sde.t_min(), n), dt)
}
