use burn::backend::{Autodiff, Flex};

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
        classes: 0,
    }
}

fn unlabelled(rows: &[f32]) -> Labelled<'_> {
    Labelled { rows, labels: None }
}

/// Saves `net` with its metadata and loads it back on the autodiff backend, as
/// `sample --discriminator` does; returns it with the metadata read back.
fn round_trip(
    net: &crate::nn::Discriminator<Flex>,
    config: DiscriminatorConfig,
    input_scale: InputScale,
    heldout: Vec<BandAccuracy>,
    name: &str,
) -> (crate::nn::Discriminator<A>, DiscriminatorMeta) {
    let dir = crate::test_dir::TestDir::new(name);
    let meta = DiscriminatorMeta {
        config,
        sde: vp().spec(),
        input_scale,
        generator: "test".into(),
        steps: 400,
        p_mean: -1.0,
        p_std: 1.2,
        zero_below: None,
        real_images: 4000,
        fake_images: 4000,
        heldout,
    };
    save_discriminator(&dir, net, &meta).unwrap();
    load_discriminator::<A>(&dir, &Default::default()).unwrap()
}

#[test]
fn the_correction_is_the_weighted_input_gradient_of_the_logit() {
    // Central differences of the logit in data coordinates (through the c_in scaling) against
    // the autodiff correction, on an untrained network, for one shared time and per-row times.
    let dev = Default::default();
    let (h, w, weight) = (6, 5, 2.5);
    let scale = InputScale {
        mean: -0.3,
        std: 0.4,
    };
    let net = small(h, w).init::<A>(&dev);
    let guidance = DiscriminatorGuidance::new(net, vp(), scale, weight);
    let d = h * w;
    let mut rng = Rng::new(3);
    let x = rng.normal_vec(2 * d);
    for times in [vec![0.3], vec![0.05, 0.7]] {
        let g = to_vec(guidance.correction(from_rows::<Flex>(x.clone(), 2, d, &dev), &times, None));
        assert!(
            g.iter().any(|v| v.abs() > 1e-4),
            "a zero gradient tests nothing"
        );
        let eps = 1e-2f32;
        for (row, pixel) in [(0, 0), (0, 17), (1, 4), (1, 29)] {
            let logit = |delta: f32| {
                let mut xs = x.clone();
                xs[row * d + pixel] += delta;
                guidance.logits(from_rows::<Flex>(xs, 2, d, &dev), &times, None)[row] as f64
            };
            let fd = weight * (logit(eps) - logit(-eps)) / (2.0 * eps as f64);
            let ad = g[row * d + pixel] as f64;
            assert!(
                (fd - ad).abs() <= 2e-3 + 0.03 * fd.abs(),
                "times {times:?}, row {row}, pixel {pixel}: finite differences {fd}, autodiff {ad}"
            );
        }
    }
    // Restricted to σ ≤ 1: the row at t = 0.05 (σ ≈ 0.17) keeps its correction, the row at
    // t = 0.7 (σ ≈ 12) gets none.
    let full = DiscriminatorGuidance::new(small(h, w).init::<A>(&dev), vp(), scale, weight);
    let times = [0.05, 0.7];
    let g_full = to_vec(full.correction(from_rows::<Flex>(x.clone(), 2, d, &dev), &times, None));
    let low = full.up_to_sigma(1.0);
    let g_low = to_vec(low.correction(from_rows::<Flex>(x.clone(), 2, d, &dev), &times, None));
    assert!(g_full[d..].iter().any(|v| v.abs() > 1e-6));
    assert!(g_low[d..].iter().all(|v| *v == 0.0));
    assert_eq!(g_low[..d], g_full[..d]);
    let none = to_vec(low.correction(from_rows::<Flex>(x.clone(), 2, d, &dev), &[0.7], None));
    assert!(none.iter().all(|v| *v == 0.0));
    // Weight 0 adds nothing.
    let off = DiscriminatorGuidance::new(small(h, w).init::<A>(&dev), vp(), scale, 0.0);
    let z = to_vec(off.correction(from_rows::<Flex>(x, 2, d, &dev), &[0.3], None));
    assert!(z.iter().all(|v| *v == 0.0));
}

/// Rows of `n` 4×4 images with every pixel N(mean, std²).
fn gaussian_images(n: usize, mean: f32, std: f32, rng: &mut Rng) -> Vec<f32> {
    rng.normal_vec(n * 16)
        .into_iter()
        .map(|v| mean + std * v)
        .collect()
}

/// A 4×4 discriminator trained with `opts` between 4 000 data images of N(`real`, τ²) pixels and
/// 4 000 samples of N(`fake`, τ²) pixels (drawn from `rng`), on the VP SDE.
fn trained_on_gaussians(
    real: f32,
    fake: f32,
    tau: f32,
    opts: &DiscriminatorTraining,
    rng: &mut Rng,
) -> (crate::nn::Discriminator<Flex>, InputScale) {
    let real = gaussian_images(4000, real, tau, rng);
    let fake = gaussian_images(4000, fake, tau, rng);
    train_discriminator::<A>(
        &small(4, 4),
        vp().as_ref(),
        unlabelled(&real),
        unlabelled(&fake),
        opts,
        &Default::default(),
        &mut |_, _| {},
    )
    .unwrap()
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
    let tau = 0.5f32;
    let mut rng = Rng::new(11);
    let opts = DiscriminatorTraining {
        steps: 400,
        batch: 64,
        lr: 3e-3,
        seed: 5,
        p_mean: -1.0,
        p_std: 1.2,
    };
    let cfg = small(4, 4);
    let (net, scale) = trained_on_gaussians(0.5, -0.5, tau, &opts, &mut rng);
    let held_real = gaussian_images(500, 0.5, tau, &mut rng);
    let held_fake = gaussian_images(500, -0.5, tau, &mut rng);
    let acc = heldout_accuracy(
        &net,
        sde.as_ref(),
        scale,
        unlabelled(&held_real),
        unlabelled(&held_fake),
        &opts,
        &dev,
    )
    .unwrap();
    assert!(acc[0].accuracy > 0.97 && acc[0].count > 50, "{acc:?}");
    assert!(acc[1].accuracy > 0.9, "{acc:?}");
    let (net, back) = round_trip(&net, cfg, scale, acc.clone(), "refine-gauss");
    for (a, b) in back.heldout.iter().zip(&acc) {
        assert_eq!((a.count, a.sigma_hi), (b.count, b.sigma_hi));
        assert!((a.accuracy - b.accuracy).abs() < 1e-12);
    }
    assert_eq!(back.input_scale, scale);
    let guidance = DiscriminatorGuidance::new(net, sde.spec().build().unwrap(), scale, 1.0);
    // Not at the lowest noise levels: where the two sets barely overlap, cross entropy pins the
    // logit's sign but hardly its slope. Training runs on the shared thread pool, whose
    // reductions vary with concurrent tests, so single times get a wide band and their mean a
    // tighter one.
    let mut ratios = Vec::new();
    for t in [0.15, 0.3, 0.5] {
        let (m, s) = (sde.mean_factor(t), sde.std(t));
        let v = m * m * (tau as f64).powi(2) + s * s;
        let exact = m * 1.0 / v;
        // States between the two marginals, where sampling would move them.
        let x: Vec<f32> = rng
            .normal_vec(200 * 16)
            .into_iter()
            .map(|z| (z as f64 * v.sqrt()) as f32)
            .collect();
        let g = to_vec(guidance.correction(from_rows::<Flex>(x, 200, 16, &dev), &[t], None));
        let mean = g.iter().map(|v| *v as f64).sum::<f64>() / g.len() as f64;
        assert!(
            mean > 0.5 * exact && mean < 1.6 * exact,
            "t = {t}: mean correction {mean}, exact {exact}"
        );
        ratios.push(mean / exact);
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
    let mean_ratio = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!(
        (0.65..1.35).contains(&mean_ratio),
        "mean correction / exact at the three times: {ratios:?}"
    );
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
            unlabelled(real),
            unlabelled(fake),
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
fn discriminator_input_is_standardised_at_every_noise_level() {
    // Pixels of mean μ_d and std s_d, perturbed by the VP SDE, reach the network with zero mean
    // and unit variance, at low and high noise alike; c_noise is ln σ / 4.
    let dev = Default::default();
    let sde = vp();
    let mut rng = Rng::new(2);
    let pixels: Vec<f32> = rng
        .normal_vec(20_000)
        .into_iter()
        .map(|z| if z > 1.0 { 0.8 } else { -0.9 })
        .collect();
    let scale = InputScale::of(&pixels);
    let mean = pixels.iter().map(|&v| v as f64).sum::<f64>() / 20_000.0;
    assert!(
        (scale.mean - mean).abs() < 1e-9 && scale.std > 0.5 && scale.std < 0.7,
        "{scale:?}"
    );
    for t in [0.02, 0.4, 0.9] {
        let times = vec![t; 20_000];
        let x0 = from_rows::<Flex>(pixels.clone(), 20_000, 1, &dev);
        let (x_t, _, _) = crate::losses::perturb(sde.as_ref(), x0, &times, &mut rng);
        let (inp, c) = discriminator_input(sde.as_ref(), scale, x_t, &times);
        let v = to_vec(inp);
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            m.abs() < 0.03 && (var - 1.0).abs() < 0.04,
            "t = {t}: mean {m}, variance {var}"
        );
        let sigma = sde.std(t) / sde.mean_factor(t);
        assert!((to_vec(c)[0] as f64 - sigma.ln() / 4.0).abs() < 1e-5);
    }
    // A constant image has no spread to standardise by.
    assert_eq!(InputScale::of(&[0.5; 8]).std, 1.0);
}

#[test]
fn a_class_conditional_discriminator_sees_samples_of_the_wrong_class() {
    // Data: class 0 bright (N(+½, ¼) pixels), class 1 dark (N(−½, ¼)). Samples: the same images
    // with the labels swapped, so data and samples have the same marginal and only the class
    // tells them apart. The conditional discriminator must separate them at low noise, and its
    // correction must brighten states sampled as class 0 and darken those sampled as class 1.
    let dev = Default::default();
    let sde = vp();
    let mut rng = Rng::new(21);
    let mut real = gaussian_images(2000, 0.5, 0.5, &mut rng);
    real.extend(gaussian_images(2000, -0.5, 0.5, &mut rng));
    let mut fake = gaussian_images(2000, -0.5, 0.5, &mut rng);
    fake.extend(gaussian_images(2000, 0.5, 0.5, &mut rng));
    let labels: Vec<u32> = (0..4000).map(|i| u32::from(i >= 2000)).collect();
    let cfg = DiscriminatorConfig {
        classes: 2,
        ..small(4, 4)
    };
    let opts = DiscriminatorTraining {
        steps: 400,
        batch: 64,
        lr: 3e-3,
        seed: 8,
        p_mean: -1.0,
        p_std: 1.2,
    };
    let set = |rows| Labelled {
        rows,
        labels: Some(&labels),
    };
    let (net, scale) = train_discriminator::<A>(
        &cfg,
        sde.as_ref(),
        set(&real),
        set(&fake),
        &opts,
        &dev,
        &mut |_, _| {},
    )
    .unwrap();
    let acc = heldout_accuracy(
        &net,
        sde.as_ref(),
        scale,
        set(&real),
        set(&fake),
        &opts,
        &dev,
    )
    .unwrap();
    assert!(acc[0].accuracy > 0.95, "{acc:?}");
    // Labels are required, and must be classes of the network.
    let err = train_discriminator::<A>(
        &cfg,
        sde.as_ref(),
        unlabelled(&real),
        set(&fake),
        &opts,
        &dev,
        &mut |_, _| {},
    )
    .map(|_| ())
    .unwrap_err();
    assert!(err.to_string().contains("--real"), "{err}");
    let (net, _) = round_trip(&net, cfg, scale, acc, "refine-classes");
    let guidance = DiscriminatorGuidance::new(net, vp(), scale, 1.0);
    assert_eq!(guidance.num_classes(), 2);
    let x: Vec<f32> = rng.normal_vec(200 * 16).iter().map(|v| v * 0.7).collect();
    let t = [0.2];
    for (class, sign) in [(0usize, 1.0f64), (1, -1.0)] {
        let g = to_vec(guidance.correction(
            from_rows::<Flex>(x.clone(), 200, 16, &dev),
            &t,
            Some(&[class]),
        ));
        let mean = g.iter().map(|v| *v as f64).sum::<f64>() / g.len() as f64;
        assert!(mean * sign > 0.5, "class {class}: mean correction {mean}");
    }
}

#[test]
fn rejection_by_a_trained_discriminator_moves_samples_to_the_data() {
    // Data N(+0.1, ¼) pixels, samples N(−0.1, ¼) on 4×4 images: the sets overlap, and the exact
    // log ratio of their noised laws at noise level σ (m ≈ 1) is linear in the pixel sum,
    // ℓ(x) = 0.2 Σx/(τ² + σ²). The judged logits must follow it, and rejection with them must move
    // the kept samples' mean pixel from −0.1 towards +0.1.
    let dev = Default::default();
    let sde = vp();
    let tau = 0.5f32;
    let mut rng = Rng::new(31);
    let opts = DiscriminatorTraining {
        steps: 600,
        batch: 128,
        lr: 3e-3,
        seed: 9,
        p_mean: -1.5,
        p_std: 1.0,
    };
    let (net, scale) = trained_on_gaussians(0.1, -0.1, tau, &opts, &mut rng);
    let pool = gaussian_images(4000, -0.1, tau, &mut rng);
    let sigma = 0.1;
    let logits = judge(
        &net,
        sde.as_ref(),
        scale,
        unlabelled(&pool),
        sigma,
        4,
        1,
        &dev,
    )
    .unwrap();
    assert_eq!(logits.len(), 4000);
    // Same seed, same logits.
    let again = judge(
        &net,
        sde.as_ref(),
        scale,
        unlabelled(&pool),
        sigma,
        4,
        1,
        &dev,
    )
    .unwrap();
    assert_eq!(logits, again);
    let sums: Vec<f64> = pool
        .chunks(16)
        .map(|r| r.iter().map(|&v| v as f64).sum())
        .collect();
    let exact: Vec<f64> = sums
        .iter()
        .map(|s| 0.2 * s / (tau as f64 * tau as f64 + sigma * sigma))
        .collect();
    let l: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ml, me) = (mean(&l), mean(&exact));
    let cov = l
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - ml) * (b - me))
        .sum::<f64>();
    let var = |v: &[f64], m: f64| v.iter().map(|a| (a - m).powi(2)).sum::<f64>();
    let corr = cov / (var(&l, ml) * var(&exact, me)).sqrt();
    let slope = cov / var(&exact, me);
    assert!(corr > 0.9, "correlation of judged and exact logits {corr}");
    assert!(
        (0.5..1.5).contains(&slope),
        "slope of judged on exact logits {slope}"
    );
    let bound = logit_bound(&logits, 0.99).unwrap();
    let kept = rejection_sample(&logits, bound, &mut Rng::new(2));
    let kept_mean = kept.iter().map(|&i| sums[i]).sum::<f64>() / (16 * kept.len()) as f64;
    assert!(
        kept.len() > 100 && kept_mean > 0.03,
        "{} kept, mean pixel {kept_mean} (pool −0.1, data +0.1)",
        kept.len()
    );
    // Errors name what is wrong.
    for (s, d) in [(0.0, 1), (f64::NAN, 1), (1e300, 1), (0.1, 0), (0.1, 1001)] {
        assert!(judge(&net, sde.as_ref(), scale, unlabelled(&pool), s, d, 1, &dev).is_err());
    }
    let err = judge(
        &net,
        sde.as_ref(),
        scale,
        unlabelled(&pool[..20]),
        0.1,
        1,
        1,
        &dev,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("samples to judge"), "{err}");
}

#[test]
fn zero_suppression_sets_what_lies_below_the_threshold_to_background() {
    // [0, 1] values 0.01, 0.019, 0.02, 0.5, 1 in the loaders' [−1, 1] coordinates.
    let mut p = [-0.98f32, -0.962, -0.96, 0.0, 1.0];
    zero_suppress(&mut p, 0.02);
    assert_eq!(p, [-1.0, -1.0, -0.96, 0.0, 1.0]);
}
