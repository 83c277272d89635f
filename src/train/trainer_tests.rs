use burn::backend::{Autodiff, Flex};

use super::*;
use crate::data::Toy;
use crate::train::params::named_params;

type A = Autodiff<Flex>;

fn tmpdir(name: &str) -> crate::test_dir::TestDir {
    crate::test_dir::TestDir::new(&format!("train-{name}"))
}

fn small_cfg(steps: u64) -> TrainConfig {
    let mut c = TrainConfig {
        steps,
        batch: 64,
        checkpoint_every: 5,
        ..Default::default()
    };
    c.model.hidden = 32;
    c.model.blocks = 1;
    c
}

/// Trains `small_cfg(150)`, changed by `edit`, on two Gaussians.
fn two_gaussian_train(
    name: &str,
    edit: impl FnOnce(&mut TrainConfig),
) -> (crate::test_dir::TestDir, TrainSummary) {
    let data = Toy::TwoGaussians.sample(2000, &mut Rng::new(2));
    let mut cfg = small_cfg(150);
    cfg.checkpoint_every = 1000;
    edit(&mut cfg);
    let out = tmpdir(name);
    let s = train::<A>(
        &cfg,
        &data,
        &out,
        &TrainOptions::default(),
        &Default::default(),
    )
    .unwrap();
    (out, s)
}

/// [`two_gaussian_train`], asserting the loss fell.
fn two_gaussian_run(
    name: &str,
    edit: impl FnOnce(&mut TrainConfig),
) -> (crate::test_dir::TestDir, TrainSummary) {
    let (out, s) = two_gaussian_train(name, edit);
    assert!(
        s.last_loss < 0.8 * s.first_loss,
        "{name}: loss {} → {}",
        s.first_loss,
        s.last_loss
    );
    (out, s)
}

/// `n` samples of the EMA weights in `out` with `kind` in `steps` steps.
fn samples(out: &Path, kind: crate::samplers::SamplerKind, steps: usize, n: usize) -> Vec<f32> {
    let model = crate::app::Trained::<Flex>::load(out, true, &Default::default()).unwrap();
    let sc = crate::samplers::SamplerConfig {
        steps,
        ..crate::samplers::SamplerConfig::new(kind)
    };
    model
        .sample(&sc, n, &mut Rng::new(3), &mut |_, _| {})
        .unwrap()
        .0
}

#[test]
fn training_killed_and_resumed_matches_an_uninterrupted_run() {
    let dev = Default::default();
    let data = Toy::Moons.sample(500, &mut Rng::new(1));
    let cfg = small_cfg(12);
    let a = tmpdir("a");
    train::<A>(&cfg, &data, &a, &TrainOptions::default(), &dev).unwrap();
    let b = tmpdir("b");
    // "Killed" after the checkpoint at step 10, then resumed to the end.
    train::<A>(
        &cfg,
        &data,
        &b,
        &TrainOptions {
            stop_after: Some(10),
            ..Default::default()
        },
        &dev,
    )
    .unwrap();
    assert_eq!(Checkpoint::load(&b).unwrap().meta.step, 10);
    let again = train::<A>(&cfg, &data, &b, &TrainOptions::default(), &dev);
    assert!(
        again.unwrap_err().to_string().contains("--resume"),
        "must refuse to overwrite"
    );
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let rest = train::<A>(&cfg, &data, &b, &resume, &dev).unwrap();
    assert_eq!((rest.steps, rest.run_steps), (12, 2));
    // Resuming a finished run says how to continue instead of doing nothing.
    let done = train::<A>(&cfg, &data, &b, &resume, &dev)
        .unwrap_err()
        .to_string();
    assert!(
        done.contains("already at step 12") && done.contains("--steps"),
        "{done}"
    );
    let (ca, cb) = (Checkpoint::load(&a).unwrap(), Checkpoint::load(&b).unwrap());
    assert_eq!(ca.meta.step, 12);
    assert_eq!(ca.meta.rng, cb.meta.rng);
    for prefix in ["model.", "ema."] {
        let ma = named_params(&ca.model::<Flex>(prefix == "ema.", &dev).unwrap());
        let mb = named_params(&cb.model::<Flex>(prefix == "ema.", &dev).unwrap());
        for ((na, ta), (_, tb)) in ma.iter().zip(&mb) {
            let diff = ta
                .data
                .iter()
                .zip(&tb.data)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-6, "{prefix}{na} differs by {diff} after resume");
        }
    }
    let log = std::fs::read_to_string(b.join("loss.csv")).unwrap();
    assert_eq!(
        log.lines().count(),
        13,
        "one header and one row per step, no duplicates:\n{log}"
    );
}

#[test]
fn a_unet_with_dropout_resumes_exactly() {
    // Dropout masks come from the backend's generator, which no checkpoint holds: the trainer
    // seeds them per step, so the resumed steps draw the masks the uninterrupted run drew. The
    // learning rate is large enough (each Adam step moves a weight by about 1e-2) that other
    // masks would show.
    let dev = Default::default();
    let mut rng = Rng::new(8);
    let pixels = (0..16 * 64)
        .map(|_| rng.uniform() as f32 * 2.0 - 1.0)
        .collect();
    let images = crate::data::Dataset::new(pixels, 64);
    let cfg = TrainConfig {
        steps: 6,
        batch: 4,
        checkpoint_every: 3,
        standardize: false,
        sample_grid: 0,
        lr: 1e-2,
        unet: Some(crate::nn::UNetConfig {
            dropout: 0.5,
            ..crate::nn::tiny_unet(8, 8, 0)
        }),
        ..Default::default()
    };
    let (a, b) = (tmpdir("dropout-a"), tmpdir("dropout-b"));
    train::<A>(&cfg, &images, &a, &TrainOptions::default(), &dev).unwrap();
    let stop = TrainOptions {
        stop_after: Some(3),
        ..Default::default()
    };
    train::<A>(&cfg, &images, &b, &stop, &dev).unwrap();
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    train::<A>(&cfg, &images, &b, &resume, &dev).unwrap();
    let (ca, cb) = (Checkpoint::load(&a).unwrap(), Checkpoint::load(&b).unwrap());
    assert_eq!((ca.meta.step, cb.meta.step), (6, 6));
    let ma = named_params(&ca.model::<Flex>(false, &dev).unwrap());
    let mb = named_params(&cb.model::<Flex>(false, &dev).unwrap());
    let diff = ma
        .iter()
        .zip(&mb)
        .flat_map(|((_, ta), (_, tb))| ta.data.iter().zip(&tb.data))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "resumed weights differ by {diff}");
}

#[test]
fn loss_falls_and_bad_runs_fail_clearly() {
    let dev = Default::default();
    let data = Toy::TwoGaussians.sample(2000, &mut Rng::new(2));
    let mut cfg = small_cfg(150);
    cfg.checkpoint_every = 1000;
    let (out, _) = two_gaussian_run("fall", |_| {});

    // A huge learning rate without clipping diverges: a clear error naming the step.
    // Checkpointed at every step, it keeps the last step whose loss was finite: the loss is
    // read a step late, but always before a checkpoint is written.
    let mut wild = small_cfg(200);
    wild.lr = 1e6;
    wild.grad_clip = 0.0;
    wild.warmup = 0;
    wild.checkpoint_every = 1;
    let nan = tmpdir("nan");
    let err = train::<A>(&wild, &data, &nan, &TrainOptions::default(), &dev)
        .unwrap_err()
        .to_string();
    assert!(err.contains("learning rate"), "{err}");
    let bad_step: u64 = err
        .split("at step ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step in {err}"));
    let kept = Checkpoint::load(&nan).unwrap();
    assert_eq!(kept.meta.step, bad_step - 1, "{err}");
    assert!(kept.meta.last_loss.is_finite());
    assert!(kept
        .tensors
        .values()
        .all(|t| t.data.iter().all(|v| v.is_finite())));
    let rows = std::fs::read_to_string(nan.join("loss.csv")).unwrap();
    assert_eq!(rows.lines().count() as u64, bad_step, "{rows}");

    // Resuming with data of another dimension is refused.
    let three = crate::data::Dataset::new(vec![0.0; 30], 3);
    let err = train::<A>(
        &cfg,
        &three,
        &out,
        &TrainOptions {
            resume: true,
            ..Default::default()
        },
        &dev,
    )
    .unwrap_err();
    assert!(err.to_string().contains("3 dimensions"), "{err}");
}

#[test]
fn horizontal_flip_mirrors_every_row_of_every_channel() {
    // 2 channels × 2 rows × 3 columns.
    let mut img: Vec<f32> = (0..12).map(|v| v as f32).collect();
    super::hflip(&mut img, 3);
    assert_eq!(
        img,
        vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0, 11.0, 10.0, 9.0]
    );
    super::hflip(&mut img, 3);
    assert_eq!(img, (0..12).map(|v| v as f32).collect::<Vec<_>>());
}

#[test]
fn ema_warms_up_instead_of_keeping_the_initialisation() {
    // After one step the EMA is d·θ₀ + (1 − d)·θ₁ with d = min(decay, 2/11), not decay·θ₀.
    // θ₀ comes from a checkpoint (`init`, read back from its file) rather than from re-seeding the
    // backend: the backend's random generator is shared with the tests running beside this one.
    let dev = Default::default();
    let data = Toy::Moons.sample(200, &mut Rng::new(1));
    let cfg = small_cfg(1);
    let start = tmpdir("ema-warmup-start");
    train::<A>(&cfg, &data, &start, &TrainOptions::default(), &dev).unwrap();
    let out = tmpdir("ema-warmup");
    let opts = TrainOptions {
        init: Some(start.to_path_buf()),
        ..TrainOptions::default()
    };
    train::<A>(&cfg, &data, &out, &opts, &dev).unwrap();
    let theta0 = crate::train::Checkpoint::load(&start).unwrap();
    let ck = crate::train::Checkpoint::load(&out).unwrap();
    let d = 2.0 / 11.0;
    let (mut checked, mut moved) = (0, 0);
    for (key, t0) in theta0.tensors.iter().filter(|(k, _)| k.starts_with("ema.")) {
        let name = &key["ema.".len()..];
        let m = &ck.tensors[&format!("model.{name}")].data;
        let e = &ck.tensors[&format!("ema.{name}")].data;
        moved += usize::from(m != &t0.data);
        for ((a, b), c) in t0.data.iter().zip(m).zip(e) {
            let want = d * *a as f64 + (1.0 - d) * *b as f64;
            assert!((want - *c as f64).abs() < 1e-5, "{name}: {c} vs {want}");
            checked += 1;
        }
    }
    // Every trained tensor moved in the step (the fixed Fourier frequencies do not).
    assert!(checked > 100 && moved >= 4, "{moved} tensors moved");
}

#[test]
fn x0_and_edm_parametrisations_train_and_sample() {
    use crate::score::Output;
    for output in [Output::X0, Output::Edm] {
        let (out, _) = two_gaussian_run(&format!("param-{output:?}"), |c| c.output = output);
        let model = crate::app::Trained::<Flex>::load(&out, true, &Default::default()).unwrap();
        assert_eq!(model.meta.config.output, output);
        let x = samples(&out, crate::samplers::SamplerKind::Heun, 20, 200);
        assert!(
            x.iter().all(|v| v.is_finite() && v.abs() < 50.0),
            "{output:?}"
        );
    }
}

#[test]
fn the_documented_mnist_configuration_is_valid() {
    let c = TrainConfig::from_toml(
        include_str!("../../docs/mnist-cpu.toml"),
        std::path::Path::new("docs/mnist-cpu.toml"),
    )
    .unwrap();
    c.validate().unwrap();
    let u = c.unet.unwrap();
    assert_eq!((u.base, u.mult.clone(), c.batch), (16, vec![1, 2, 2], 32));
    // The other documented configurations parse and validate too.
    let mut parsed = std::collections::HashMap::new();
    for (name, text) in [
        ("mnist-gpu.toml", include_str!("../../docs/mnist-gpu.toml")),
        (
            "physics-cpu.toml",
            include_str!("../../docs/physics-cpu.toml"),
        ),
        (
            "physics-gpu.toml",
            include_str!("../../docs/physics-gpu.toml"),
        ),
        (
            "physics-best.toml",
            include_str!("../../docs/physics-best.toml"),
        ),
        (
            "physics-guide.toml",
            include_str!("../../docs/physics-guide.toml"),
        ),
    ] {
        let c = TrainConfig::from_toml(text, std::path::Path::new(name)).unwrap();
        c.validate().unwrap();
        assert!(c.unet.is_some(), "{name}");
        // The physics generators train on log-normal noise levels (docs/physics.md, fourth run).
        let lognormal = c.loss.times == crate::losses::TimeSampling::Lognormal;
        assert_eq!(lognormal, name.starts_with("physics"), "{name}");
        parsed.insert(name, c);
    }
    // The best generator and its guide (docs/physics-best.sh) differ only in width and length:
    // autoguidance needs the guide to share everything else with the model it guides.
    let [best, guide] =
        ["physics-best.toml", "physics-guide.toml"].map(|n| parsed.remove(n).unwrap());
    let (bu, gu) = (best.unet.clone().unwrap(), guide.unet.clone().unwrap());
    assert_eq!((best.steps, bu.base, bu.groups), (9745, 16, 8));
    assert_eq!((guide.steps, gu.base, gu.groups), (3000, 8, 4));
    assert_eq!(best.output, crate::score::Output::Edm);
    assert_eq!((best.lr_min_factor, guide.lr_min_factor), (0.5, 0.5));
    let same = |c: &TrainConfig| (c.output, c.lr, c.batch, c.loss.times, c.label_dropout);
    assert_eq!(same(&best), same(&guide));
    assert_eq!((bu.mult, bu.attn_levels), (gu.mult, gu.attn_levels));
}

#[test]
fn a_spent_time_budget_stops_the_run_checkpointed() {
    // A zero budget ends the run, checkpointed, after its first step.
    let dev = Default::default();
    let data = Toy::Moons.sample(200, &mut Rng::new(2));
    let out = tmpdir("budget");
    let opts = TrainOptions {
        minutes: Some(0.0),
        ..Default::default()
    };
    let s = train::<A>(&small_cfg(50), &data, &out, &opts, &dev).unwrap();
    assert_eq!(s.steps, 1);
    assert_eq!(Checkpoint::load(&out).unwrap().meta.step, 1);
}

#[test]
fn bf16_mixed_precision_keeps_the_loss_curve_and_f32_weights() {
    use crate::nn::Precision;
    // The MLP on 2-D data: the same run in f32 and in bf16 mixed precision.
    let mut runs = Vec::new();
    for precision in [Precision::F32, Precision::Bf16] {
        let (out, s) = two_gaussian_run(&format!("precision-{precision:?}"), |c| {
            c.precision = precision
        });
        let ck = Checkpoint::load(&out).unwrap();
        assert_eq!(ck.meta.config.precision, precision);
        runs.push((out, s.first_loss, s.last_loss));
    }
    let ((_, f0, f1), (_, b0, b1)) = (&runs[0], &runs[1]);
    assert!(
        (f1 - b1).abs() < 0.1 * f1 && (f0 - b0).abs() < 0.1 * f0,
        "f32 loss {f0} → {f1}, bf16 {b0} → {b1}"
    );

    // Sampling with bf16 weights follows the f32 sampler's trajectories up to bf16 rounding
    // (the same seed, deterministic DDIM).
    let out = &runs[0].0;
    let load = || crate::app::Trained::<Flex>::load(out, true, &Default::default()).unwrap();
    let sc = crate::samplers::SamplerConfig {
        steps: 20,
        ..crate::samplers::SamplerConfig::new(crate::samplers::SamplerKind::Ddim)
    };
    let draw = |m: crate::app::Trained<Flex>| {
        m.sample(&sc, 500, &mut Rng::new(3), &mut |_, _| {})
            .unwrap()
            .0
    };
    let (full, half) = (draw(load()), draw(load().with_precision(Precision::Bf16)));
    let n = full.len() as f64;
    let spread = (full.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n).sqrt();
    let diff = full
        .iter()
        .zip(&half)
        .map(|(a, b)| (a - b).abs() as f64)
        .sum::<f64>()
        / n;
    assert!(
        diff > 0.0 && diff < 0.01 * spread,
        "mean |f32 − bf16| {diff}, r.m.s. {spread}"
    );

    // A class-conditional U-Net with dropout and attention trains in bf16, and its
    // checkpoint (master weights, EMA) loads and samples in f32.
    let n = 32;
    let mut rng = Rng::new(4);
    let pixels: Vec<f32> = (0..n * 64)
        .map(|_| rng.uniform() as f32 * 2.0 - 1.0)
        .collect();
    let mut images = crate::data::Dataset::new(pixels, 64);
    images.labels = Some((0..n as u32).map(|i| i % 2).collect());
    let cfg = TrainConfig {
        steps: 6,
        batch: 8,
        checkpoint_every: 3,
        standardize: false,
        sample_grid: 0,
        precision: Precision::Bf16,
        unet: Some(crate::nn::UNetConfig {
            channels: 1,
            height: 8,
            width: 8,
            base: 8,
            mult: vec![1, 2],
            attn_levels: vec![1],
            dropout: 0.1,
            groups: 4,
            num_classes: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    let (out, dev) = (tmpdir("precision-unet"), Default::default());
    let s = train::<A>(&cfg, &images, &out, &TrainOptions::default(), &dev).unwrap();
    assert!(s.last_loss.is_finite());
    let x = samples(&out, crate::samplers::SamplerKind::Ddim, 4, 4);
    assert_eq!(x.len(), 4 * 64);
    assert!(x.iter().all(|v| v.is_finite()));
}

#[test]
fn lognormal_times_train_and_are_kept_in_the_checkpoint() {
    // The mode weights are decided at noise levels near the modes' separation (σ of a few
    // standardised units). Centred there (P_mean = 1), log-normal times learn them; centred far
    // below (P_mean = −4: σ ≈ 0.02, no step ever sees a large σ) they are not learnt, which
    // shows the trainer draws its times from the configured distribution.
    let mode_fraction = |p_mean: f64| {
        let (out, _) = two_gaussian_train(&format!("lognormal{p_mean}"), |c| {
            c.loss.times = crate::losses::TimeSampling::Lognormal;
            c.loss.p_mean = p_mean;
            c.steps = 2000;
            c.checkpoint_every = 2000;
        });
        let ck = Checkpoint::load(&out).unwrap();
        assert_eq!(
            ck.meta.config.loss.times,
            crate::losses::TimeSampling::Lognormal
        );
        assert_eq!(ck.meta.config.loss.p_mean, p_mean);
        // The fraction of samples in the (5, 5) mode, of weight 0.8 (the other is at (−5, −5)).
        let x = samples(&out, crate::samplers::SamplerKind::Heun, 20, 1000);
        x.chunks(2).filter(|p| p[0] + p[1] > 0.0).count() as f64 / 1000.0
    };
    let centred = mode_fraction(1.0);
    assert!(
        (centred - 0.8).abs() < 0.04,
        "fraction in the (5, 5) mode {centred}"
    );
    let low = mode_fraction(-4.0);
    assert!(
        (low - 0.8).abs() > 0.1,
        "σ never large, yet mode fraction {low}"
    );
}

#[test]
fn init_fine_tunes_from_a_checkpoint_with_a_fresh_schedule() {
    let (src, s0) = two_gaussian_run("init-src", |_| {});
    let data = Toy::TwoGaussians.sample(2000, &mut Rng::new(2));
    let run = |name: &str, edit: &dyn Fn(&mut TrainConfig)| {
        let mut cfg = small_cfg(20);
        cfg.checkpoint_every = 1000;
        edit(&mut cfg);
        let out = tmpdir(name);
        let opts = TrainOptions {
            init: Some(src.to_path_buf()),
            ..Default::default()
        };
        let r = train::<A>(&cfg, &data, &out, &opts, &Default::default());
        (out, r)
    };
    let (out, r) = run("init-ft", &|_| {});
    let s = r.unwrap();
    // It starts where the source run ended (not at a random network's loss) and counts from 0.
    assert!(
        s.first_loss < 0.5 * s0.first_loss && s.first_loss < 2.0 * s0.last_loss,
        "fine-tune first loss {} (source {} → {})",
        s.first_loss,
        s0.first_loss,
        s0.last_loss
    );
    assert_eq!(s.run_steps, 20);
    let ck = Checkpoint::load(&out).unwrap();
    assert_eq!(ck.meta.step, 20);
    assert_eq!(ck.meta.adam_steps, 20);
    // A different network or parametrisation is refused, naming what differs.
    let e = run("init-wide", &|c| c.model.hidden = 48)
        .1
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape") && e.contains("init-src"), "{e}");
    let e = run("init-x0", &|c| c.output = crate::score::Output::X0)
        .1
        .unwrap_err()
        .to_string();
    assert!(e.contains("output"), "{e}");
    let e = run("init-ve", &|c| c.sde = "ve".into())
        .1
        .unwrap_err()
        .to_string();
    assert!(e.contains("vp") && e.contains("ve"), "{e}");
    let e = run("init-sqrt", &|c| c.transform = crate::data::Transform::Sqrt)
        .1
        .unwrap_err()
        .to_string();
    assert!(e.contains("transform") && e.contains("sqrt"), "{e}");
}

#[test]
fn a_sqrt_transformed_run_samples_in_data_coordinates_and_refuses_likelihoods() {
    use crate::data::Transform;
    let (out, _) = two_gaussian_run("sqrt", |c| c.transform = Transform::Sqrt);
    let ck = Checkpoint::load(&out).unwrap();
    assert_eq!(ck.meta.standardizer.transform, Transform::Sqrt);
    // Samples come back through T⁻¹: on the data's scale, not the model's √ scale.
    let data = Toy::TwoGaussians.sample(2000, &mut Rng::new(2));
    let median_abs = |v: &[f32]| {
        let mut a: Vec<f32> = v.iter().map(|x| x.abs()).collect();
        a.sort_by(f32::total_cmp);
        a[a.len() / 2] as f64
    };
    let x = samples(&out, crate::samplers::SamplerKind::Ddpm, 100, 500);
    let (want, got) = (median_abs(&data.data), median_abs(&x));
    assert!(
        (got - want).abs() < 0.25 * want,
        "median |x|: samples {got}, data {want}"
    );
    let model = crate::app::Trained::<A>::load(&out, true, &Default::default()).unwrap();
    let e = crate::app::nll_of_points(
        &model,
        &data.data[..20],
        &out,
        crate::likelihood::Divergence::Exact,
        1e-3,
        64,
        &mut Rng::new(1),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sqrt") && e.contains("likelihood"), "{e}");
    let e = model
        .inner()
        .score_at(&data.data[..20], 0.5, &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sqrt") && e.contains("score"), "{e}");
}

#[test]
fn resume_refuses_other_data_and_accepts_checkpoints_without_a_fingerprint() {
    let dev = Default::default();
    let data = Toy::Moons.sample(300, &mut Rng::new(1));
    let cfg = small_cfg(10);
    let out = tmpdir("fingerprint");
    let stop = |n| TrainOptions {
        stop_after: Some(n),
        ..Default::default()
    };
    train::<A>(&cfg, &data, &out, &stop(5), &dev).unwrap();
    let recorded = Checkpoint::load(&out).unwrap().meta.data.unwrap();
    assert_eq!(recorded, data.fingerprint());
    assert_eq!((recorded.points, recorded.dim), (300, 2));
    let resume = TrainOptions {
        resume: true,
        stop_after: Some(10),
        ..Default::default()
    };
    // Other points, fewer points (a forgotten --first), other labels: refused, nothing written.
    let other = Toy::Moons.sample(300, &mut Rng::new(2));
    let mut fewer = data.clone();
    fewer.truncate(299);
    let mut labelled = data.clone();
    labelled.labels = Some(vec![0; 300]);
    for (name, d) in [
        ("other", &other),
        ("fewer", &fewer),
        ("labelled", &labelled),
    ] {
        let e = train::<A>(&cfg, d, &out, &resume, &dev)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("other data") && e.contains(&recorded.hash) && e.contains("--init"),
            "{name}: {e}"
        );
        assert_eq!(Checkpoint::load(&out).unwrap().meta.step, 5, "{name}");
    }
    // A checkpoint written before fingerprints were recorded resumes on any data of its dimension.
    let json = out.join("checkpoint.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("data");
    std::fs::write(&json, meta.to_string()).unwrap();
    let rest = train::<A>(&cfg, &other, &out, &resume, &dev).unwrap();
    assert_eq!(rest.steps, 10);
    // The same data resumes, and the fingerprint is written again.
    let to_the_end = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let same = train::<A>(&small_cfg(12), &other, &out, &to_the_end, &dev);
    assert!(same.is_ok(), "{:?}", same.err());
    assert_eq!(
        Checkpoint::load(&out).unwrap().meta.data,
        Some(other.fingerprint())
    );
}
