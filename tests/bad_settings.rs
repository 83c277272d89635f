//! Out-of-range settings (zero, negative, NaN, infinite, huge) in a training configuration or
//! a sampler's options are refused with an error or give a finite result; never a panic, and
//! never a run that reports success with non-finite numbers.

use std::panic::{catch_unwind, AssertUnwindSafe};

use burn::backend::{Autodiff, Flex};
use scoregen::app::Trained;
use scoregen::data::Toy;
use scoregen::rng::Rng;
use scoregen::samplers::{SamplerConfig, SamplerKind};
use scoregen::train::{train, TrainConfig, TrainOptions};

mod common;

const BAD: [f64; 6] = [0.0, -1.0, f64::NAN, f64::INFINITY, -f64::INFINITY, 1e300];

fn base() -> TrainConfig {
    common::tiny_point_config(3)
}

type Edit = (&'static str, fn(&mut TrainConfig, f64));

#[test]
fn bad_training_settings_are_refused_or_harmless() {
    let data = Toy::Moons.sample(32, &mut Rng::new(1));
    let edits: [Edit; 16] = [
        ("lr", |c, v| c.lr = v),
        ("lr_min_factor", |c, v| c.lr_min_factor = v),
        ("grad_clip", |c, v| c.grad_clip = v),
        ("ema_decay", |c, v| c.ema_decay = v),
        ("sigma_min", |c, v| c.sigma_min = v),
        ("sigma_max", |c, v| c.sigma_max = Some(v)),
        ("beta_min (vp)", |c, v| {
            c.sde = "vp".into();
            c.beta_min = v
        }),
        ("beta_max (subvp)", |c, v| {
            c.sde = "subvp".into();
            c.beta_max = v
        }),
        ("label_dropout", |c, v| c.label_dropout = v),
        ("sigma_data", |c, v| c.sigma_data = v),
        ("loss.p_std", |c, v| {
            c.loss.times = scoregen::losses::TimeSampling::Lognormal;
            c.loss.p_std = v
        }),
        ("loss.p_mean", |c, v| {
            c.loss.times = scoregen::losses::TimeSampling::Lognormal;
            c.loss.p_mean = v
        }),
        ("loss.ssm_h", |c, v| {
            c.loss.kind = scoregen::losses::LossKind::Ssm;
            c.loss.ssm_h = v
        }),
        ("model.fourier_scale", |c, v| c.model.fourier_scale = v),
        ("steps", |c, _| c.steps = 0),
        ("batch", |c, _| c.batch = 0),
    ];
    let dev = Default::default();
    let mut failures = Vec::new();
    for (name, edit) in edits {
        for v in BAD {
            let mut cfg = base();
            edit(&mut cfg, v);
            let out = common::tmp("bad-settings");
            let r = catch_unwind(AssertUnwindSafe(|| {
                train::<Autodiff<Flex>>(&cfg, &data, &out, &TrainOptions::default(), &dev)
            }));
            match r {
                Err(_) => failures.push(format!("{name} = {v}: panicked")),
                Ok(Ok(s)) if !(s.last_loss.is_finite() && s.first_loss.is_finite()) => {
                    failures.push(format!("{name} = {v}: succeeded with loss {}", s.last_loss))
                }
                Ok(Ok(_)) => {
                    // Accepted: the checkpoint must sample finite values.
                    let m = match Trained::<Flex>::load(&out, true, &dev) {
                        Ok(m) => m,
                        Err(e) => {
                            failures.push(format!("{name} = {v}: accepted, then unloadable: {e}"));
                            continue;
                        }
                    };
                    let sc = SamplerConfig {
                        steps: 5,
                        ..SamplerConfig::new(SamplerKind::Ddim)
                    };
                    let x = m.sample(&sc, 4, &mut Rng::new(3), &mut |_, _| {});
                    if let Ok((x, _)) = x {
                        if !x.iter().all(|v| v.is_finite()) {
                            failures.push(format!("{name} = {v}: non-finite samples"));
                        }
                    }
                }
                Ok(Err(_)) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A 3-step model of `sde` in a fresh directory.
fn tiny_model(name: &str, sde: &str, beta_max: f64) -> common::TmpDir {
    let mut cfg = base();
    cfg.sde = sde.into();
    cfg.beta_max = beta_max;
    let out = common::tmp(name);
    let data = Toy::Moons.sample(32, &mut Rng::new(1));
    train::<Autodiff<Flex>>(
        &cfg,
        &data,
        &out,
        &TrainOptions::default(),
        &Default::default(),
    )
    .unwrap();
    out
}

type SamplerEdit = (&'static str, fn(&mut SamplerConfig, f64));

#[test]
fn bad_sampler_settings_are_refused_or_harmless() {
    let edits: [SamplerEdit; 10] = [
        ("snr", |c, v| c.snr = v),
        ("step_size", |c, v| c.step_size = v),
        ("eta", |c, v| c.eta = v),
        ("rtol", |c, v| c.rtol = v),
        ("atol", |c, v| c.atol = v),
        ("s_churn", |c, v| c.heun.s_churn = v),
        ("s_tmin", |c, v| c.heun.s_tmin = v),
        ("s_tmax", |c, v| c.heun.s_tmax = v),
        ("s_noise", |c, v| c.heun.s_noise = v),
        ("clip", |c, v| c.clip = Some((v, 1.0))),
    ];
    let mut failures = Vec::new();
    for sde in ["ve", "vp"] {
        let out = tiny_model(&format!("sampler-settings-{sde}"), sde, 20.0);
        let model = Trained::<Flex>::load(&out, true, &Default::default()).unwrap();
        for (kind_name, kind) in SamplerKind::ALL {
            for (name, edit) in edits {
                for v in BAD {
                    let mut sc = SamplerConfig {
                        steps: 4,
                        corrector_steps: 1,
                        ..SamplerConfig::new(kind)
                    };
                    edit(&mut sc, v);
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        model.sample(&sc, 4, &mut Rng::new(3), &mut |_, _| {})
                    }));
                    let what = format!("{sde} {kind_name} {name} = {v}");
                    match r {
                        Err(_) => failures.push(format!("{what}: panicked")),
                        Ok(Ok((x, _))) if !x.iter().all(|v| v.is_finite()) => {
                            failures.push(format!("{what}: non-finite samples"))
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_largest_accepted_beta_still_samples_finite_values() {
    // (β_min + β_max)/2 at the limit (β_min = 0.1), for both SDEs that use β; just above it is
    // refused.
    let limit = 2.0 * scoregen::sde::MAX_BETA_INTEGRAL - 0.1;
    for sde in ["vp", "subvp"] {
        let out = tiny_model(&format!("largest-beta-{sde}"), sde, limit);
        let model = Trained::<Flex>::load(&out, true, &Default::default()).unwrap();
        for (kind_name, kind) in SamplerKind::ALL {
            let sc = SamplerConfig {
                steps: 4,
                ..SamplerConfig::new(kind)
            };
            match model.sample(&sc, 4, &mut Rng::new(3), &mut |_, _| {}) {
                Ok((x, _)) => assert!(x.iter().all(|v| v.is_finite())),
                // Samplers that do not support the SDE say so; none may diverge.
                Err(e) => assert!(
                    !matches!(e, scoregen::Error::Sampling(_)),
                    "{sde} {kind_name} at β_max = {limit}: {e}"
                ),
            }
        }
        let mut cfg = base();
        cfg.sde = sde.into();
        cfg.beta_max = limit + 1.0;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("beta_max"), "{e}");
    }
}

/// Runs scoregen with `args`, which must stop with an ordinary error (exit code 1, no panic,
/// no abort) whose message contains `needle`.
fn refused(args: &[&str], needle: &str) {
    let o = common::run(args);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1) && e.contains(needle) && !e.contains("panicked"),
        "scoregen {args:?}: {:?}\n{e}",
        o.status
    );
}

#[test]
fn counts_too_large_for_memory_are_errors_not_aborts() {
    let dir = common::tmp("huge-counts");
    let p = |name: &str| dir.join(name).to_string_lossy().to_string();
    let huge = "99999999999999";
    let model = tiny_model("huge-counts-model", "ve", 20.0);
    let m = model.to_string_lossy().to_string();
    let out = p("x.npy");
    refused(
        &["sample", "--checkpoint", &m, "--num", huge, "--out", &out],
        "cannot be allocated",
    );
    refused(
        &[
            "sample",
            "--checkpoint",
            &m,
            "--num",
            "3",
            "--steps",
            huge,
            "--out",
            &out,
        ],
        "at most 1000000",
    );
    refused(
        &[
            "physics", "simulate", "--num", huge, "--size", "16", "--out", &out,
        ],
        "cannot be allocated",
    );
    refused(
        &[
            "physics", "simulate", "--num", "2", "--size", huge, "--out", &out,
        ],
        "size",
    );
    refused(
        &[
            "train",
            "--data",
            "toy:moons",
            "--batch",
            huge,
            "--out",
            &p("t"),
        ],
        "batch",
    );
    refused(
        &[
            "likelihood",
            "--checkpoint",
            &m,
            "--data",
            "toy:moons",
            "--hutchinson",
            huge,
        ],
        "hutchinson",
    );
    let png = p("f.png");
    for (flag, field) in [("--size", "size"), ("--density-grid", "density_grid")] {
        refused(
            &[
                "plot",
                "score-field",
                "--checkpoint",
                &m,
                flag,
                huge,
                "--out",
                &png,
            ],
            field,
        );
    }
    let ev = p("ev.npy");
    common::ok(&[
        "physics", "simulate", "--num", "12", "--size", "16", "--out", &ev,
    ]);
    let classes = format!("npy:{ev},{}", p("ev-labels.npy"));
    let pixels = format!("npy:{ev},{}", p("ev-pixels.npy"));
    let tiny_unet = p("tiny.toml");
    std::fs::write(
        &tiny_unet,
        "steps = 2\nbatch = 4\ncheckpoint_every = 2\nsample_grid = 0\n[unet]\nchannels = 1\n\
         height = 16\nwidth = 16\nbase = 8\nmult = [1, 2]\nattn_levels = []\ngroups = 4\n",
    )
    .unwrap();
    let im = p("im");
    common::ok(&[
        "train",
        "--data",
        &format!("npy:{ev}"),
        "--config",
        &tiny_unet,
        "--out",
        &im,
    ]);
    refused(
        &[
            "inpaint",
            "--checkpoint",
            &im,
            "--image",
            &format!("npy:{ev}"),
            "--mask",
            "half",
            "--num",
            "2",
            "--steps",
            huge,
            "--out",
            &p("ip.png"),
        ],
        "steps",
    );
    refused(
        &[
            "classifier",
            "--data",
            &classes,
            "--batch",
            huge,
            "--out",
            &p("c"),
        ],
        "batch",
    );
    refused(
        &[
            "physics",
            "ssnet",
            "train",
            "--data",
            &pixels,
            "--heldout",
            "2",
            "--batch",
            huge,
            "--out",
            &p("s"),
        ],
        "batch",
    );
}

#[test]
fn zero_counts_are_refused_naming_the_option() {
    let dir = common::tmp("zero-counts");
    let model = tiny_model("zero-counts-model", "ve", 20.0);
    let m = model.to_string_lossy().to_string();
    let out = dir.join("x.npy").to_string_lossy().to_string();
    let cases: [(&[&str], &str); 6] = [
        (
            &["sample", "--checkpoint", &m, "--num", "0", "--out", &out],
            "--num",
        ),
        (
            &["sample", "--checkpoint", &m, "--steps", "0", "--out", &out],
            "--steps",
        ),
        (
            &[
                "likelihood",
                "--checkpoint",
                &m,
                "--data",
                "toy:moons",
                "--first",
                "0",
            ],
            "--first",
        ),
        (
            &["physics", "simulate", "--num", "0", "--out", &out],
            "--num",
        ),
        (
            &[
                "train",
                "--data",
                "toy:moons",
                "--first",
                "0",
                "--out",
                &out,
            ],
            "--first",
        ),
        (
            &[
                "eval",
                "--real",
                "toy:moons",
                "--fake",
                "toy:moons",
                "--max-points",
                "0",
            ],
            "--max-points",
        ),
    ];
    for (args, option) in cases {
        let o = common::run(args);
        let e = String::from_utf8_lossy(&o.stderr);
        // clap's usage error (exit code 2), naming the option and the value.
        assert!(
            o.status.code() == Some(2)
                && e.contains(option)
                && e.contains("'0'")
                && e.contains("must be at least 1"),
            "scoregen {args:?}: {:?}\n{e}",
            o.status
        );
    }
    // Nothing was written.
    assert!(!std::path::Path::new(&out).exists());
}

#[test]
fn figures_not_named_png_are_refused_before_anything_is_written() {
    let dir = common::tmp("figure-names");
    let path = |name: &str| dir.join(name).to_string_lossy().to_string();
    let (events, jpg, upper) = (path("ev.npy"), path("f.jpg"), path("F.PNG"));
    let cases: [&[&str]; 3] = [
        &[
            "plot",
            "score-field",
            "--toy",
            "two-gaussians",
            "--out",
            &jpg,
        ],
        &[
            "physics", "simulate", "--num", "4", "--out", &events, "--grid", &jpg,
        ],
        &[
            "physics",
            "simulate",
            "--num",
            "4",
            "--out",
            &events,
            "--grid",
            &path("grid"),
        ],
    ];
    for args in cases {
        refused(args, "must end in .png");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "something was written"
    );
    // Upper case is a PNG name too.
    let o = common::run(&[
        "plot",
        "score-field",
        "--toy",
        "two-gaussians",
        "--out",
        &upper,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&upper).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
}

#[test]
fn likelihood_progress_runs_from_zero_to_one_over_the_chunks() {
    let model = tiny_model("nll-progress-model", "vp", 20.0);
    let model = Trained::<Autodiff<Flex>>::load(&model, true, &Default::default()).unwrap();
    let points = Toy::Moons.sample(20, &mut Rng::new(2)).data;
    let mut seen = Vec::new();
    let nll = scoregen::app::nll_of_points(
        &model,
        &points,
        std::path::Path::new("moons"),
        scoregen::likelihood::Divergence::Exact,
        1e-3,
        8, // three chunks: 8, 8 and 4 points
        &mut Rng::new(1),
        &mut |f| seen.push(f),
    )
    .unwrap();
    assert_eq!(nll.per_point.len(), 20);
    assert!(seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
    assert!(seen.iter().all(|f| (0.0..=1.0).contains(f)), "{seen:?}");
    // Each chunk ends its third: 1/3, 2/3 and 1 are reached.
    for third in [1.0 / 3.0, 2.0 / 3.0, 1.0] {
        assert!(
            seen.iter().any(|f| (f - third).abs() < 1e-9),
            "{third}: {seen:?}"
        );
    }
}
