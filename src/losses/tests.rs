use burn::backend::{Autodiff, Flex};
use burn::optim::GradientsParams;
use burn::tensor::{backend::Backend, Tensor};

use super::*;
use crate::nn::MlpConfig;
use crate::score::{GaussianMixture, GmmScore, ScoreFn};
use crate::sde::SdeSpec;
use crate::tensor::{from_rows, scalar, to_vec};
use crate::train::params::{map_named, param_ids};

/// The exact ε* = −s(t)∇log p_t of a mixture, optionally distorted: a·ε* + b.
struct ExactEps<B: Backend> {
    score: GmmScore<B>,
    scale: f64,
    shift: f64,
}

impl<B: Backend> EpsModel<B> for ExactEps<B> {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        let times: Vec<f64> = to_vec(t).iter().map(|&v| v as f64).collect();
        let s = crate::score::time_column::<B>(&times, |ti| -self.score.sde().std(ti), &x.device());
        (self.score.score(x, &times) * s)
            .mul_scalar(self.scale)
            .add_scalar(self.shift)
    }
}

fn data_gmm() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.4, 0.6],
        vec![vec![-1.0, 0.5], vec![1.0, -0.5]],
        vec![vec![0.3, 0.1, 0.1, 0.2], vec![0.2, 0.0, 0.0, 0.4]],
    )
    .unwrap()
}

fn configs() -> Vec<(LossConfig, &'static str)> {
    let base = LossConfig::default();
    vec![
        (base.clone(), "vp"),
        (base.clone(), "ve"),
        (
            LossConfig {
                likelihood_weighting: true,
                ..base.clone()
            },
            "subvp",
        ),
        (
            LossConfig {
                kind: LossKind::Ncsn,
                ..base.clone()
            },
            "ve",
        ),
        (
            LossConfig {
                kind: LossKind::Ddpm,
                ..base.clone()
            },
            "vp",
        ),
        (
            LossConfig {
                kind: LossKind::Ssm,
                ..base.clone()
            },
            "vp",
        ),
        (
            LossConfig {
                kind: LossKind::Ssm,
                ..base.clone()
            },
            "ve",
        ),
        (
            LossConfig {
                times: TimeSampling::Lognormal,
                ..base.clone()
            },
            "vp",
        ),
        (
            LossConfig {
                times: TimeSampling::Lognormal,
                likelihood_weighting: true,
                ..base.clone()
            },
            "ve",
        ),
        (
            LossConfig {
                kind: LossKind::Ssm,
                times: TimeSampling::Lognormal,
                ..base
            },
            "subvp",
        ),
    ]
}

fn spec(name: &str) -> SdeSpec {
    match name {
        "ve" => SdeSpec::Ve {
            sigma_min: 0.01,
            sigma_max: 5.0,
        },
        n => SdeSpec::default_for(n).unwrap(),
    }
}

#[test]
fn every_loss_is_smallest_at_the_true_score() {
    let dev = Default::default();
    let gmm = data_gmm();
    let n = 20_000;
    let mut rng = Rng::new(3);
    let x0 = gmm.sample(n, &mut rng);
    for (cfg, sde_name) in configs() {
        let spec = spec(sde_name);
        let sde = spec.build().unwrap();
        let eval = |scale: f64, shift: f64| {
            let model = ExactEps {
                score: GmmScore::<Flex>::new(gmm.clone(), &spec, &dev).unwrap(),
                scale,
                shift,
            };
            // Common random numbers: the same times, noise and probes for every candidate.
            let mut r = Rng::new(99);
            scalar(
                loss(
                    &cfg,
                    &model,
                    sde.as_ref(),
                    from_rows::<Flex>(x0.clone(), n, 2, &dev),
                    &mut r,
                )
                .unwrap(),
            )
        };
        let best = eval(1.0, 0.0);
        for (a, b) in [(1.15, 0.0), (0.85, 0.0), (1.0, 0.15), (1.0, -0.15)] {
            let other = eval(a, b);
            assert!(
                best < other,
                "{:?} on {sde_name}: loss at the true score {best} ≥ {other} at ({a}, {b})",
                cfg.kind
            );
        }
    }
}

#[test]
fn loss_gradients_match_finite_differences() {
    type A = Autodiff<Flex>;
    let dev = Default::default();
    let gmm = data_gmm();
    let n = 64;
    let mut rng = Rng::new(4);
    let x0 = gmm.sample(n, &mut rng);
    let small = MlpConfig {
        hidden: 16,
        blocks: 1,
        fourier_features: 8,
        fourier_scale: 1.0,
    };
    for (cfg, sde_name) in configs() {
        let sde = spec(sde_name).build().unwrap();
        let model = small.init::<A>(2, 1, &dev);
        let eval = |m: &crate::nn::MlpScoreNet<A>| {
            loss(
                &cfg,
                m,
                sde.as_ref(),
                from_rows::<A>(x0.clone(), n, 2, &dev),
                &mut Rng::new(5),
            )
            .unwrap()
        };
        let l = eval(&model);
        let grads = GradientsParams::from_grads(l.backward(), &model);
        for (name, id) in param_ids(&model) {
            if name != "blocks.0.fc1.weight" && name != "output.weight" {
                continue;
            }
            let g = to_vec(
                grads
                    .get::<Flex, 2>(id)
                    .expect("gradient of a trained weight"),
            );
            for &k in &[0usize, 7, 21] {
                let h = 1e-2f32;
                let bump = |delta: f32| {
                    map_named(model.clone(), &mut |p, t, _| {
                        (p == name).then(|| {
                            let mut v = to_vec(t.clone());
                            v[k] += delta;
                            Tensor::from_data(burn::tensor::TensorData::new(v, [t.dims()[0]]), &dev)
                        })
                    })
                };
                let fd = (scalar(eval(&bump(h))) - scalar(eval(&bump(-h)))) / (2.0 * h as f64);
                let ad = g[k] as f64;
                assert!(
                    (ad - fd).abs() < 3e-3 + 3e-2 * fd.abs(),
                    "{:?}/{sde_name} {name}[{k}]: autodiff {ad} vs fd {fd}",
                    cfg.kind
                );
            }
        }
    }
}

#[test]
fn objectives_reject_the_wrong_sde() {
    let ncsn = LossConfig {
        kind: LossKind::Ncsn,
        ..Default::default()
    };
    let ddpm = LossConfig {
        kind: LossKind::Ddpm,
        ..Default::default()
    };
    assert!(ncsn
        .validate(spec("vp").build().unwrap().as_ref())
        .unwrap_err()
        .to_string()
        .contains("VE"));
    assert!(ddpm
        .validate(spec("ve").build().unwrap().as_ref())
        .unwrap_err()
        .to_string()
        .contains("VP"));
    assert!(LossKind::from_name("foo").is_err());
}

/// Log-normal times: ln σ_EDM(t) has the configured mean and spread and the clamped tails sit
/// at the SDE's ends; uniform times stay uniform. A sampler that ignored σ, or mapped σ to t
/// wrongly, would move these moments by far more than the tolerances.
#[test]
fn lognormal_times_have_the_configured_noise_levels() {
    let n = 40_000;
    for name in ["vp", "ve", "subvp"] {
        let sde = spec(name).build().unwrap();
        let (p_mean, p_std) = (-0.8, 0.9);
        let cfg = LossConfig {
            times: TimeSampling::Lognormal,
            p_mean,
            p_std,
            ..Default::default()
        };
        let times = cfg.sampler().sample(sde.as_ref(), n, &mut Rng::new(7));
        assert!(times
            .iter()
            .all(|&t| (sde.t_min()..=sde.t_end()).contains(&t)));
        let ln: Vec<f64> = times.iter().map(|&t| sde.edm_sigma(t).ln()).collect();
        let mean = ln.iter().sum::<f64>() / n as f64;
        let sd = (ln.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        // ln σ(ε) of the VE test SDE (σ_min 0.01) is −4.6, 4.2 P_std below P_mean: no clamping
        // that could move the moments; the standard errors are 0.005 and 0.004.
        assert!((mean - p_mean).abs() < 0.02, "{name}: mean ln σ {mean}");
        assert!((sd - p_std).abs() < 0.02, "{name}: sd ln σ {sd}");
        let below = ln.iter().filter(|&&v| v < p_mean).count() as f64 / n as f64;
        assert!(
            (below - 0.5).abs() < 0.01,
            "{name}: median off ({below} below)"
        );
    }
    // Far outside the SDE's range, every draw is clamped to an end.
    let sde = spec("vp").build().unwrap();
    let high = LossConfig {
        times: TimeSampling::Lognormal,
        p_mean: 40.0,
        ..Default::default()
    };
    let t = high.sampler().sample(sde.as_ref(), 100, &mut Rng::new(8));
    assert!(t.iter().all(|&v| (v - sde.t_end()).abs() < 1e-6), "{t:?}");
    let uni = LossConfig::default()
        .sampler()
        .sample(sde.as_ref(), n, &mut Rng::new(9));
    let mid = (sde.t_min() + sde.t_end()) / 2.0;
    let below = uni.iter().filter(|&&v| v < mid).count() as f64 / n as f64;
    assert!((below - 0.5).abs() < 0.01);
}

#[test]
fn bad_lognormal_parameters_are_named() {
    let sde = spec("vp").build().unwrap();
    for (p_mean, p_std, field) in [
        (f64::NAN, 1.0, "p_mean"),
        (0.0, 0.0, "p_std"),
        (0.0, -1.0, "p_std"),
    ] {
        let cfg = LossConfig {
            times: TimeSampling::Lognormal,
            p_mean,
            p_std,
            ..Default::default()
        };
        let e = cfg.validate(sde.as_ref()).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    assert!("lognormal".parse::<TimeSampling>().is_ok());
    assert!("gamma"
        .parse::<TimeSampling>()
        .unwrap_err()
        .to_string()
        .contains("uniform or lognormal"));
}
