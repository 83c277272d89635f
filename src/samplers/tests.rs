//! Every sampler, driven by the exact score of a Gaussian mixture, must reproduce the mixture:
//! energy distance to fresh samples within the two-sample noise floor, and per-component weights,
//! means and covariances within stated tolerances. Fixed seeds.

use burn::backend::Flex;

use super::*;
use crate::eval::{energy_distance, mixture_fit, noise_floor, Points};
use crate::rng::Rng;
use crate::score::{GaussianMixture, GmmScore};
use crate::sde::SdeSpec;
use crate::tensor::to_vec;

const N: usize = 2000;

fn target() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.3, 0.7],
        vec![vec![-2.0, 0.0], vec![1.5, 1.0]],
        vec![vec![0.5, 0.2, 0.2, 0.4], vec![0.3, -0.1, -0.1, 0.6]],
    )
    .unwrap()
}

fn spec(name: &str) -> SdeSpec {
    match name {
        // σ_max well above the largest pairwise distance of the data (Song & Ermon 2020,
        // Technique 1) so that p_T matches the prior N(0, σ_max²I).
        "ve" => SdeSpec::Ve {
            sigma_min: 0.01,
            sigma_max: 50.0,
        },
        other => SdeSpec::default_for(other).unwrap(),
    }
}

/// `n` samples drawn with `cfg` from the exact score of the 2-D mixture `gmm` under the SDE
/// `sde_name`.
fn draw(
    cfg: &SamplerConfig,
    sde_name: &str,
    gmm: &GaussianMixture,
    n: usize,
    rng: &mut Rng,
) -> crate::Result<Sampled<Flex>> {
    let dev = Default::default();
    let spec = spec(sde_name);
    let sde = spec.build().unwrap();
    let score = GmmScore::<Flex>::new(gmm.clone(), &spec, &dev).unwrap();
    sample(cfg, &score, sde.as_ref(), n, 2, rng, &dev, &mut |_, _| {})
}

/// Samples with `cfg` and checks the result against the mixture; returns the NFE.
fn check(cfg: SamplerConfig, sde_name: &str, gmm: &GaussianMixture, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let out = draw(&cfg, sde_name, gmm, N, &mut rng).unwrap();
    let x = to_vec(out.x);
    let what = format!("{} on {sde_name}", cfg.kind.name());
    assert!(
        x.iter().all(|v| v.is_finite()),
        "{what}: non-finite samples"
    );
    let reference = gmm.sample(N, &mut rng);
    let ed = energy_distance(Points::new(&x, 2), Points::new(&reference, 2));
    let floor = noise_floor(
        4,
        || (gmm.sample(N, &mut rng), gmm.sample(N, &mut rng)),
        2,
        energy_distance,
    );
    assert!(
        ed < floor.threshold(),
        "{what}: energy distance {ed:.5} above noise-floor threshold {:.5}",
        floor.threshold()
    );
    // Moments by hard assignment to the most probable component, compared with the same
    // statistics of a large exact sample (assignment truncates overlapping components equally).
    let fit = mixture_fit(gmm, &x);
    let truth = mixture_fit(gmm, &gmm.sample(20_000, &mut rng));
    for k in 0..gmm.weights().len() {
        // Weight SE at N = 2000 is ≤ 0.011; the tolerance allows 4 SE.
        assert!(
            (fit.weights[k] - truth.weights[k]).abs() < 0.045,
            "{what}: weights {:?} vs {:?}",
            fit.weights,
            truth.weights
        );
        for i in 0..2 {
            assert!(
                (fit.means[k][i] - truth.means[k][i]).abs() < 0.1,
                "{what}: mean {k} {:?} vs {:?}",
                fit.means[k],
                truth.means[k]
            );
        }
        for (j, (a, b)) in fit.covs[k].iter().zip(&truth.covs[k]).enumerate() {
            assert!((a - b).abs() < 0.1, "{what}: cov {k}[{j}] {a:.3} vs {b:.3}");
        }
    }
    out.nfe
}

fn cfg(kind: SamplerKind, steps: usize) -> SamplerConfig {
    SamplerConfig {
        steps,
        ..SamplerConfig::new(kind)
    }
}

#[test]
fn reverse_sde_predictors_reproduce_the_mixture() {
    let g = target();
    for sde in ["ve", "vp", "subvp"] {
        assert_eq!(check(cfg(SamplerKind::Em, 500), sde, &g, 1), 500);
        assert_eq!(
            check(cfg(SamplerKind::ReverseDiffusion, 500), sde, &g, 2),
            500
        );
    }
    for sde in ["ve", "vp"] {
        assert_eq!(check(cfg(SamplerKind::Ancestral, 500), sde, &g, 3), 500);
    }
}

#[test]
fn predictor_corrector_samplers_reproduce_the_mixture() {
    let g = target();
    for sde in ["ve", "vp", "subvp"] {
        assert_eq!(check(cfg(SamplerKind::Pc, 200), sde, &g, 4), 400);
    }
    assert_eq!(check(cfg(SamplerKind::PcVp, 200), "vp", &g, 5), 399);
}

#[test]
fn langevin_samplers_reproduce_mixtures() {
    let g = target();
    let mut al = cfg(SamplerKind::AnnealedLangevin, 50);
    al.corrector_steps = 40;
    assert_eq!(check(al, "ve", &g, 6), 2001);
    // Plain Langevin mixes only when the modes overlap (the low-density problem of
    // Song & Ermon 2019): a mixture it can sample, at t = ε.
    let near = GaussianMixture::isotropic(
        vec![0.4, 0.6],
        vec![vec![-0.8, 0.0], vec![0.8, 0.3]],
        vec![0.7, 0.6],
    )
    .unwrap();
    let mut l = cfg(SamplerKind::Langevin, 1500);
    l.step_size = 0.01;
    check(l, "vp", &near, 7);
}

#[test]
fn deterministic_and_few_step_solvers_reproduce_the_mixture() {
    let g = target();
    let mut ode = cfg(SamplerKind::Ode, 0);
    ode.rtol = 1e-4;
    ode.atol = 1e-4;
    for sde in ["ve", "vp"] {
        let nfe = check(ode.clone(), sde, &g, 8);
        assert!(nfe > 20 && nfe < 2000, "ode nfe {nfe}");
    }
    assert_eq!(check(cfg(SamplerKind::Ddpm, 1000), "vp", &g, 9), 1000);
    assert_eq!(check(cfg(SamplerKind::Ddpm, 300), "ve", &g, 10), 300);
    assert_eq!(check(cfg(SamplerKind::Ddim, 100), "vp", &g, 11), 100);
    let mut ddim_eta = cfg(SamplerKind::Ddim, 200);
    ddim_eta.eta = 1.0;
    check(ddim_eta, "subvp", &g, 12);
    for sde in ["ve", "vp", "subvp"] {
        assert_eq!(check(cfg(SamplerKind::Heun, 30), sde, &g, 13), 59);
        assert_eq!(check(cfg(SamplerKind::DpmPp2m, 30), sde, &g, 14), 30);
    }
    let mut churn = cfg(SamplerKind::Heun, 40);
    churn.heun.s_churn = 10.0;
    check(churn.clone(), "vp", &g, 15);
    // EDM's ImageNet setting: churn in a band of noise levels, inflated noise.
    churn.heun = HeunOptions {
        s_churn: 40.0,
        s_tmin: 0.05,
        s_tmax: 50.0,
        s_noise: 1.003,
    };
    check(churn, "ve", &g, 16);
}

/// 64 Heun-20 samples of the mixture with churn options `heun`, from a fixed seed.
fn heun_samples(heun: HeunOptions) -> Vec<f32> {
    let c = SamplerConfig {
        heun,
        ..cfg(SamplerKind::Heun, 20)
    };
    to_vec(draw(&c, "vp", &target(), 64, &mut Rng::new(5)).unwrap().x)
}

#[test]
fn churn_acts_only_inside_its_noise_band() {
    let plain = heun_samples(HeunOptions::default());
    let churned = |s_tmin: f64, s_tmax: f64| {
        heun_samples(HeunOptions {
            s_churn: 20.0,
            s_tmin,
            s_tmax,
            s_noise: 1.0,
        })
    };
    // VP's EDM levels run from about 152 down to 0.01: a band above them, or below them, leaves
    // every step deterministic and the samples identical…
    assert_eq!(churned(1e4, 1e5), plain);
    assert_eq!(churned(0.0, 1e-3), plain);
    // …and a band that holds some levels moves the samples.
    let moved = churned(0.1, 1.0);
    let shift = moved
        .iter()
        .zip(&plain)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(shift > 0.05, "churn in [0.1, 1] moved samples by {shift}");
}

#[test]
fn bad_churn_options_are_named() {
    let d = HeunOptions::default();
    for (heun, field) in [
        (HeunOptions { s_churn: -1.0, ..d }, "s_churn"),
        (
            HeunOptions {
                s_churn: f64::NAN,
                ..d
            },
            "s_churn",
        ),
        (HeunOptions { s_tmin: -0.5, ..d }, "s_tmin"),
        (
            HeunOptions {
                s_tmin: 2.0,
                s_tmax: 1.0,
                ..d
            },
            "s_tmax",
        ),
        (HeunOptions { s_noise: 0.0, ..d }, "s_noise"),
    ] {
        let c = SamplerConfig {
            heun,
            ..cfg(SamplerKind::Heun, 5)
        };
        let err = draw(&c, "vp", &target(), 4, &mut Rng::new(0))
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn heun_options_round_trip_through_json_and_toml() {
    let churned = HeunOptions {
        s_churn: 40.0,
        s_tmin: 0.05,
        s_tmax: 50.0,
        s_noise: 1.003,
    };
    for h in [HeunOptions::default(), churned] {
        let json = serde_json::to_string(&h).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert_eq!(
            serde_json::from_str::<HeunOptions>(&json).unwrap(),
            h,
            "{json}"
        );
        let text = toml::to_string(&h).unwrap();
        assert_eq!(toml::from_str::<HeunOptions>(&text).unwrap(), h, "{text}");
    }
    // TOML's own infinity reads too, and a word that is not one is named.
    let h: HeunOptions = toml::from_str("s_tmax = inf").unwrap();
    assert_eq!(h.s_tmax, f64::INFINITY);
    let e = serde_json::from_str::<HeunOptions>(r#"{"s_tmax": "big"}"#).unwrap_err();
    assert!(e.to_string().contains("big"), "{e}");
}

#[test]
fn unsupported_combinations_say_why() {
    let mut rng = Rng::new(0);
    for kind in [SamplerKind::Ancestral, SamplerKind::PcVp] {
        let err = draw(&cfg(kind, 10), "subvp", &target(), 4, &mut rng);
        let msg = err.err().expect("must fail").to_string();
        assert!(msg.contains("subvp"), "{msg}");
    }
    assert!(SamplerKind::from_name("nope")
        .unwrap_err()
        .to_string()
        .contains("annealed-langevin"));
}

#[test]
fn rk45_is_fifth_order_accurate_on_a_linear_ode() {
    // dy/dt = −2y + sin t has a closed form; check the error and that tolerances are honoured.
    let dev = Default::default();
    let y0 = crate::tensor::from_rows::<Flex>(vec![1.0], 1, 1, &dev);
    let mut f = |t: f64, y: burn::tensor::Tensor<Flex, 2>| y.mul_scalar(-2.0).add_scalar(t.sin());
    let (y, stats) = rk45(
        &mut f,
        y0,
        0.0,
        3.0,
        Rk45Options {
            rtol: 1e-6,
            atol: 1e-7,
            max_nfe: 10_000,
        },
        &mut |_, _| {},
    )
    .unwrap();
    let exact = |t: f64| (2.0 * t.sin() - t.cos()) / 5.0 + 1.2 * (-2.0 * t).exp();
    let got = to_vec(y)[0] as f64;
    assert!((got - exact(3.0)).abs() < 1e-5, "{got} vs {}", exact(3.0));
    assert!(stats.nfe < 400 && stats.accepted > 3);
}

#[test]
fn clipped_ddim_reproduces_in_range_data_and_never_leaves_the_range() {
    // Clamping x̂0 to a range that holds the data leaves the samples' law unchanged…
    let mut c = cfg(SamplerKind::Ddim, 100);
    c.clip = Some((-5.0, 5.0));
    check(c, "vp", &target(), 11);
    // …and with data far outside the range every sample ends inside it.
    let far = GaussianMixture::isotropic(
        vec![0.5, 0.5],
        vec![vec![8.0, 8.0], vec![-8.0, 6.0]],
        vec![0.5, 0.5],
    )
    .unwrap();
    let mut c = cfg(SamplerKind::Ddim, 50);
    c.clip = Some((-1.0, 1.0));
    let x = to_vec(draw(&c, "vp", &far, 500, &mut Rng::new(2)).unwrap().x);
    assert!(x.iter().all(|v| v.abs() <= 1.0 + 1e-5));
    assert!(x.iter().any(|v| v.abs() > 0.99), "the clamp is reached");
}
