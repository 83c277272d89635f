use burn::backend::{Autodiff, Flex};
use burn::tensor::Tensor;

use super::*;
use crate::nn::DiscriminatorConfig;
use crate::rng::Rng;
use crate::score::ScoreCorrection;
use crate::sde::{Sde, SdeSpec};
use crate::tensor::{from_rows, to_vec};

type A = Autodiff<Flex>;

fn vp() -> Box<dyn Sde> {
    SdeSpec::default_for("vp").unwrap().build().unwrap()
}

fn small(h: usize, w: usize) -> DiscriminatorConfig {
    DiscriminatorConfig {
        channels: 1,
        height: h,
        width: w,
        base: 8,
    }
}

#[test]
fn the_correction_is_the_weighted_input_gradient_of_the_logit() {
    // Central differences of the logit in data coordinates (through the c_in scaling) against
    // the autodiff correction, on an untrained network, for one shared time and per-row times.
    let dev = Default::default();
    let (h, w, sigma_data, weight) = (6, 5, 0.5, 2.5);
    let net = small(h, w).init::<A>(&dev);
    let guidance = DiscriminatorGuidance::new(net, vp(), sigma_data, weight);
    let d = h * w;
    let mut rng = Rng::new(3);
    let x = rng.normal_vec(2 * d);
    for times in [vec![0.3], vec![0.05, 0.7]] {
        let g = to_vec(guidance.correction(from_rows::<Flex>(x.clone(), 2, d, &dev), &times));
        assert!(
            g.iter().any(|v| v.abs() > 1e-4),
            "a zero gradient tests nothing"
        );
        let eps = 1e-2f32;
        for (row, pixel) in [(0, 0), (0, 17), (1, 4), (1, 29)] {
            let logit = |delta: f32| {
                let mut xs = x.clone();
                xs[row * d + pixel] += delta;
                guidance.logits(from_rows::<Flex>(xs, 2, d, &dev), &times)[row] as f64
            };
            let fd = weight * (logit(eps) - logit(-eps)) / (2.0 * eps as f64);
            let ad = g[row * d + pixel] as f64;
            assert!(
                (fd - ad).abs() <= 2e-3 + 0.03 * fd.abs(),
                "times {times:?}, row {row}, pixel {pixel}: finite differences {fd}, autodiff {ad}"
            );
        }
    }
    // Weight 0 adds nothing.
    let off = DiscriminatorGuidance::new(small(h, w).init::<A>(&dev), vp(), sigma_data, 0.0);
    let z = to_vec(off.correction(from_rows::<Flex>(x, 2, d, &dev), &[0.3]));
    assert!(z.iter().all(|v| *v == 0.0));
}

/// Rows of `n` 4×4 images with every pixel N(mean, std²).
fn gaussian_images(n: usize, mean: f32, std: f32, rng: &mut Rng) -> Vec<f32> {
    rng.normal_vec(n * 16)
        .into_iter()
        .map(|v| mean + std * v)
        .collect()
}

#[test]
fn a_trained_discriminator_recovers_the_density_ratio_of_two_gaussians() {
    // Data N(+½·1, ¼I), model samples N(−½·1, ¼I) on 4×4 images. Under the VP SDE both stay
    // Gaussian, x_t ~ N(m μ, (m²τ² + s²) I), so the exact correction ∇x log(p_data/p_model) is
    // the constant m(μ_data − μ_model)/(m²τ² + s²) in every pixel: the trained discriminator's
    // correction must have about its mean size and sign (a learned logit is not exactly linear, so
    // single pixels scatter around it), and it must tell the sets apart at low σ.
    let dev = Default::default();
    let sde = vp();
    let (tau, sigma_data) = (0.5f32, 0.7);
    let mut rng = Rng::new(11);
    let real = gaussian_images(4000, 0.5, tau, &mut rng);
    let fake = gaussian_images(4000, -0.5, tau, &mut rng);
    let opts = DiscriminatorTraining {
        steps: 400,
        batch: 64,
        lr: 3e-3,
        seed: 5,
        p_mean: -1.0,
        p_std: 1.2,
    };
    let cfg = small(4, 4);
    let net = train_discriminator::<A>(
        &cfg,
        sde.as_ref(),
        sigma_data,
        &real,
        &fake,
        &opts,
        &dev,
        &mut |_, _| {},
    )
    .unwrap();
    let held_real = gaussian_images(500, 0.5, tau, &mut rng);
    let held_fake = gaussian_images(500, -0.5, tau, &mut rng);
    let acc = heldout_accuracy(
        &net,
        sde.as_ref(),
        sigma_data,
        &held_real,
        &held_fake,
        &opts,
        &dev,
    )
    .unwrap();
    assert!(acc[0].accuracy > 0.97 && acc[0].count > 50, "{acc:?}");
    assert!(acc[1].accuracy > 0.9, "{acc:?}");
    // Reload through the autodiff backend, as `sample --discriminator` does.
    let dir = crate::test_dir::TestDir::new("refine-gauss");
    let meta = DiscriminatorMeta {
        config: cfg,
        sde: sde.spec(),
        sigma_data,
        generator: "test".into(),
        steps: opts.steps,
        real_images: 4000,
        fake_images: 4000,
        heldout: acc,
    };
    save_discriminator(&dir, &net, &meta).unwrap();
    let (net, back) = load_discriminator::<A>(&dir, &dev).unwrap();
    for (a, b) in back.heldout.iter().zip(&meta.heldout) {
        assert_eq!((a.count, a.sigma_hi), (b.count, b.sigma_hi));
        assert!((a.accuracy - b.accuracy).abs() < 1e-12);
    }
    let guidance = DiscriminatorGuidance::new(net, sde.spec().build().unwrap(), sigma_data, 1.0);
    for t in [0.05, 0.15, 0.3, 0.5] {
        let (m, s) = (sde.mean_factor(t), sde.std(t));
        let v = m * m * (tau as f64).powi(2) + s * s;
        let exact = m * 1.0 / v;
        // States between the two marginals, where sampling would move them.
        let x: Vec<f32> = rng
            .normal_vec(200 * 16)
            .into_iter()
            .map(|z| (z as f64 * v.sqrt()) as f32)
            .collect();
        let g = to_vec(guidance.correction(from_rows::<Flex>(x, 200, 16, &dev), &[t]));
        let mean = g.iter().map(|v| *v as f64).sum::<f64>() / g.len() as f64;
        assert!(
            mean > 0.6 * exact && mean < 1.4 * exact,
            "t = {t}: mean correction {mean}, exact {exact}"
        );
        // Each state's correction moves its mean pixel towards the data.
        let towards = g
            .chunks(16)
            .filter(|row| row.iter().sum::<f32>() > 0.0)
            .count();
        assert!(
            towards >= 190,
            "t = {t}: {towards} of 200 states corrected towards the data"
        );
    }
}

#[test]
fn bad_inputs_are_refused_with_their_names() {
    let dev = Default::default();
    let sde = vp();
    let opts = DiscriminatorTraining {
        steps: 1,
        ..Default::default()
    };
    let ragged = vec![0.0f32; 16 * 3 + 5];
    let fine = vec![0.0f32; 16 * 3];
    let run = |real: &[f32], fake: &[f32]| {
        train_discriminator::<A>(
            &small(4, 4),
            sde.as_ref(),
            0.5,
            real,
            fake,
            &opts,
            &dev,
            &mut |_, _| {},
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    assert!(run(&ragged, &fine).contains("--real"));
    assert!(run(&fine, &ragged).contains("--fake"));
    assert!(run(&fine, &[]).contains("--fake"));
    let dir = crate::test_dir::TestDir::new("refine-missing");
    let err = load_discriminator::<Flex>(&dir, &dev)
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("scoregen discriminator"), "{err}");
}

#[test]
fn discriminator_input_has_unit_scale_and_the_noise_level() {
    let dev = Default::default();
    let sde = vp();
    let sigma_data = 0.5;
    let t = 0.4;
    let (m, s) = (sde.mean_factor(t), sde.std(t));
    let x = Tensor::<Flex, 2>::ones([1, 3], &dev);
    let (inp, c) = discriminator_input(sde.as_ref(), sigma_data, x, &[t]);
    let sigma = s / m;
    let want = 1.0 / (m * (sigma * sigma + sigma_data * sigma_data).sqrt());
    assert!(to_vec(inp).iter().all(|v| (*v as f64 - want).abs() < 1e-5));
    assert!((to_vec(c)[0] as f64 - sigma.ln() / 4.0).abs() < 1e-6);
}
