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
                ..base
            },
            "ve",
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
