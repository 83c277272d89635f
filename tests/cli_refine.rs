//! End-to-end test of discriminator guidance: a discriminator trained between an image model's
//! training data and its samples, then used by `sample --discriminator`.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Trains a 4-step 8×8 U-Net on the bars in `dir` (with `extra` train arguments); returns the
/// data argument and the checkpoint directory.
fn tiny_model(dir: &Path, extra: &[&str]) -> (String, PathBuf) {
    let cfg = dir.join("unet.toml");
    std::fs::write(
        &cfg,
        "steps = 4\nbatch = 8\n[unet]\nbase = 8\nmult = [1, 2]\nattn_levels = []\ngroups = 4\n",
    )
    .unwrap();
    let data = bars_idx(dir);
    let model = dir.join("model");
    let mut args = vec![
        "train",
        "--data",
        &data,
        "--out",
        s(&model),
        "--config",
        s(&cfg),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    (data, model)
}

/// `scoregen sample` of `num` images of `model` with Heun in 3 steps, seed 4, into `out`, with
/// `extra` arguments; returns the bytes written.
fn sample(model: &Path, num: &str, out: &Path, extra: &[&str]) -> Vec<u8> {
    let mut args = vec![
        "sample",
        "--checkpoint",
        s(model),
        "--num",
        num,
        "--sampler",
        "heun",
        "--steps",
        "3",
        "--seed",
        "4",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    std::fs::read(out).unwrap()
}

#[test]
fn a_discriminator_trains_against_samples_and_guides_sampling() {
    let dir = tmp("refine");
    let (data, model) = tiny_model(&dir, &[]);
    let sample = |out: &Path, extra: &[&str]| sample(&model, "6", out, extra);
    let fakes = dir.join("fakes.npy");
    sample(&fakes, &[]);
    let fake_arg = format!("npy:{}", s(&fakes));
    let disc = dir.join("disc");
    let out = ok(&[
        "discriminator",
        "--checkpoint",
        s(&model),
        "--real",
        &data,
        "--fake",
        &fake_arg,
        "--base",
        "8",
        "--steps",
        "6",
        "--batch",
        "8",
        "--heldout",
        "0.25",
        "--out",
        s(&disc),
    ]);
    assert!(out.contains("held-out accuracy at σ in [0, 0.1)"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(disc.join("discriminator.json")).unwrap())
            .unwrap();
    // 40 images with a quarter held out; 6 samples with 2 held out (rounded).
    assert_eq!(
        (meta["real_images"].as_u64(), meta["fake_images"].as_u64()),
        (Some(30), Some(4))
    );
    let bands = meta["heldout"].as_array().unwrap();
    let states: u64 = bands.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!((bands.len(), states), (3, 10 + 2));
    assert!(disc.join("discriminator.safetensors").is_file());
    // Same seed: weight 0 reproduces the unguided samples, weight 2 changes them.
    // CSV keeps the raw values (an NPY of an image model is clamped to the pixel range).
    let plain = sample(&dir.join("plain.csv"), &[]);
    let off = sample(
        &dir.join("off.csv"),
        &["--discriminator", s(&disc), "--dg-weight", "0"],
    );
    let on = sample(
        &dir.join("on.csv"),
        &["--discriminator", s(&disc), "--dg-weight", "2"],
    );
    assert_eq!(plain, off);
    assert_ne!(plain, on);
    // Guidance restricted to the lowest noise levels changes the samples, and differently from
    // guidance at every level.
    let low = sample(
        &dir.join("low.csv"),
        &[
            "--discriminator",
            s(&disc),
            "--dg-weight",
            "2",
            "--dg-sigma-max",
            "0.05",
        ],
    );
    assert_ne!(low, plain);
    assert_ne!(low, on);
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&model),
        "--num",
        "2",
        "--discriminator",
        s(&disc),
        "--dg-sigma-max",
        "0",
        "--out",
        s(&dir.join("x.csv")),
    ]);
    assert!(err.contains("--dg-sigma-max 0"), "{err}");
    let rows = |b: &[u8]| String::from_utf8_lossy(b).lines().count();
    assert_eq!((rows(&plain), rows(&on)), (6, 6));
    // Errors name what is wrong.
    let mut small = vec![0u8, 0, 8, 3];
    for d in [3u32, 4, 4] {
        small.extend_from_slice(&d.to_be_bytes());
    }
    small.extend(std::iter::repeat_n(7u8, 48));
    let small_path = dir.join("small.idx");
    std::fs::write(&small_path, &small).unwrap();
    let small_arg = format!("idx:{}", s(&small_path));
    let err = fails(&[
        "discriminator",
        "--checkpoint",
        s(&model),
        "--real",
        &data,
        "--fake",
        &small_arg,
        "--out",
        s(&dir.join("d2")),
    ]);
    assert!(err.contains("small.idx") && err.contains("1×4×4"), "{err}");
    let err = fails(&[
        "discriminator",
        "--checkpoint",
        s(checkpoint()),
        "--real",
        &data,
        "--fake",
        &fake_arg,
        "--out",
        s(&dir.join("d3")),
    ]);
    assert!(err.contains("image model"), "{err}");
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&model),
        "--num",
        "2",
        "--discriminator",
        s(&dir.join("nothing")),
        "--out",
        s(&dir.join("x.npy")),
    ]);
    assert!(
        err.contains("nothing") && err.contains("scoregen discriminator"),
        "{err}"
    );
    let err = fails(&[
        "discriminator",
        "--checkpoint",
        s(&model),
        "--class-conditional",
        "--real",
        &data,
        "--fake",
        &fake_arg,
        "--out",
        s(&dir.join("d4")),
    ]);
    assert!(err.contains("unconditional model"), "{err}");
}

#[test]
fn a_class_conditional_discriminator_guides_class_conditional_sampling() {
    let dir = tmp("refine-classes");
    let (data, model) = tiny_model(&dir, &["--class-conditional"]);
    let sample = |out: &Path, extra: &[&str]| sample(&model, "8", out, extra);
    // `--class all` writes fakes-labels.npy beside the samples.
    let fakes = dir.join("fakes.npy");
    sample(&fakes, &["--class", "all"]);
    let labels = dir.join("fakes-labels.npy");
    assert!(labels.is_file());
    let disc = dir.join("disc");
    let train_disc = |fake: &str| {
        run(&[
            "discriminator",
            "--checkpoint",
            s(&model),
            "--class-conditional",
            "--real",
            &data,
            "--fake",
            fake,
            "--base",
            "8",
            "--steps",
            "4",
            "--batch",
            "8",
            "--out",
            s(&disc),
        ])
    };
    let unlabelled = format!("npy:{}", s(&fakes));
    let o = train_disc(&unlabelled);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("fakes.npy") && err.contains("classes"),
        "{err}"
    );
    let o = train_disc(&format!("npy:{},{}", s(&fakes), s(&labels)));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(disc.join("discriminator.json")).unwrap())
            .unwrap();
    assert_eq!(meta["config"]["classes"].as_u64(), Some(4));
    // The noise levels default to the model's training distribution (ln σ ~ N(−1.2, 1.2²)).
    assert_eq!(
        (meta["p_mean"].as_f64(), meta["p_std"].as_f64()),
        (Some(-1.2), Some(1.2))
    );
    let plain = sample(&dir.join("plain.csv"), &["--class", "2"]);
    let guided = sample(
        &dir.join("guided.csv"),
        &[
            "--class",
            "2",
            "--discriminator",
            s(&disc),
            "--dg-weight",
            "3",
        ],
    );
    assert_ne!(plain, guided);
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&model),
        "--num",
        "2",
        "--discriminator",
        s(&disc),
        "--out",
        s(&dir.join("x.csv")),
    ]);
    assert!(err.contains("needs --class"), "{err}");
}
