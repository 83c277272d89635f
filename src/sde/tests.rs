use super::*;
use crate::rng::Rng;

fn all_sdes() -> Vec<Box<dyn Sde>> {
    ["ve", "vp", "subvp"]
        .iter()
        .map(|n| SdeSpec::default_for(n).unwrap().build().unwrap())
        .collect()
}

#[test]
fn marginals_solve_the_moment_odes_of_the_sde() {
    // For dx = a x dt + g dw: d m/dt = a m and d s²/dt = 2 a s² + g² (Särkkä & Solin, Eq. 5.51).
    for sde in all_sdes() {
        for &t in &[0.05, 0.3, 0.7, 0.95] {
            let h = 1e-6;
            let dm = (sde.mean_factor(t + h) - sde.mean_factor(t - h)) / (2.0 * h);
            let ds2 = (sde.std(t + h).powi(2) - sde.std(t - h).powi(2)) / (2.0 * h);
            let (a, g, m, s) = (
                sde.drift_coef(t),
                sde.diffusion(t),
                sde.mean_factor(t),
                sde.std(t),
            );
            assert!(
                (dm - a * m).abs() < 1e-5 * (1.0 + m.abs()),
                "{} dm t={t}",
                sde.name()
            );
            let rhs = 2.0 * a * s * s + g * g;
            assert!(
                (ds2 - rhs).abs() < 1e-5 * (1.0 + rhs.abs()),
                "{} ds2 t={t}: {ds2} vs {rhs}",
                sde.name()
            );
        }
    }
}

#[test]
fn marginals_match_simulation_of_the_forward_sde() {
    // Euler–Maruyama from a point x0: mean m(t)x0 and variance s(t)² − m(t)²s(0)²... minus the
    // marginal std at t=0, which is 0 for VP/sub-VP and σ_min for VE.
    let mut rng = Rng::new(11);
    let (paths, steps, x0) = (20_000usize, 1000usize, 1.5f64);
    for sde in all_sdes() {
        let t_end = 0.6;
        let dt = t_end / steps as f64;
        let mut x = vec![x0; paths];
        for k in 0..steps {
            let t = k as f64 * dt;
            let (a, g) = (sde.drift_coef(t), sde.diffusion(t));
            for xi in x.iter_mut() {
                *xi += a * *xi * dt + g * dt.sqrt() * rng.normal();
            }
        }
        let mean = x.iter().sum::<f64>() / paths as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / paths as f64;
        let m = sde.mean_factor(t_end);
        let s0 = sde.std(0.0) * sde.mean_factor(t_end) / sde.mean_factor(0.0);
        let var_true = sde.std(t_end).powi(2) - s0 * s0;
        let se_mean = (var_true / paths as f64).sqrt();
        let se_var = var_true * (2.0 / paths as f64).sqrt();
        assert!(
            (mean - m * x0).abs() < 4.0 * se_mean + 2e-3,
            "{} mean {mean} vs {}",
            sde.name(),
            m * x0
        );
        assert!(
            (var - var_true).abs() < 4.0 * se_var + 2e-3,
            "{} var {var} vs {var_true}",
            sde.name()
        );
    }
}

#[test]
fn ddpm_schedule_is_the_discretisation_of_the_vp_sde() {
    // β(t) = T·β_i: β_min 0.1 = 1000·1e-4, β_max 20 = 1000·0.02, and ᾱ_i ≈ m(i/T)².
    let (betas, alpha_bars) = ddpm_betas(1e-4, 0.02, 1000);
    assert!((betas[0] - 1e-4).abs() < 1e-15 && (betas[999] - 0.02).abs() < 1e-15);
    let vp = VpSde::new(0.1, 20.0).unwrap();
    for (i, ab) in alpha_bars.iter().enumerate() {
        let t = (i + 1) as f64 / 1000.0;
        let cont = 2.0 * vp.mean_factor(t).ln();
        // The gap is −½Σβ_j² ≤ 0.07 (second order of log(1−β)); tighter early on.
        let tol = if i < 500 { 0.02 } else { 0.08 };
        assert!((ab.ln() - cont).abs() < tol, "i={i}: {} vs {cont}", ab.ln());
    }
}

#[test]
fn ncsn_levels_are_geometric_from_max_to_min() {
    let s = ncsn_sigmas(50.0, 0.01, 232);
    assert_eq!(s.len(), 232);
    assert!((s[0] - 50.0).abs() < 1e-12 && (s[231] - 0.01).abs() < 1e-12);
    let r = s[1] / s[0];
    assert!(s.windows(2).all(|w| (w[1] / w[0] - r).abs() < 1e-12));
}

#[test]
fn edm_sigma_inverse_and_ve_discretisation_telescopes() {
    for sde in all_sdes() {
        for &t in &[0.01, 0.2, 0.5, 0.9] {
            let back = sde.t_from_edm_sigma(sde.edm_sigma(t));
            assert!((back - t).abs() < 1e-9, "{} t={t} back={back}", sde.name());
        }
    }
    // Σ G_i² over the SMLD discretisation equals σ_max² exactly (σ_0 := 0).
    let ve = VeSde::new(0.01, 50.0).unwrap();
    let n = 100;
    let sum: f64 = (0..n)
        .map(|i| {
            let t = 1.0 - i as f64 / n as f64;
            ve.discretize(t, 1.0 / n as f64).1.powi(2)
        })
        .sum();
    assert!((sum - 2500.0).abs() < 1e-8, "{sum}");
}

#[test]
fn prior_logp_is_the_gaussian_density() {
    use burn::backend::Flex;
    let dev = Default::default();
    let sde = VeSde::new(0.01, 3.0).unwrap();
    let x = crate::tensor::from_rows::<Flex>(vec![1.0, -2.0, 0.5, 0.0], 2, 2, &dev);
    let lp = crate::tensor::to_vec(prior_logp(&sde, x));
    let want = |a: f64, b: f64| -0.5 * (a * a + b * b) / 9.0 - (std::f64::consts::TAU * 9.0).ln();
    assert!((lp[0] as f64 - want(1.0, -2.0)).abs() < 1e-5);
    assert!((lp[1] as f64 - want(0.5, 0.0)).abs() < 1e-5);
    assert!(SdeSpec::default_for("xx").is_err());
    assert!(VeSde::new(1.0, 0.5).is_err() && VpSde::new(-1.0, 2.0).is_err());
}
