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

/// `scoregen discriminator` for `model` between `data` and `fake` into `out`, a small network
/// unless `extra` says otherwise.
fn disc_args<'a>(
    model: &'a Path,
    data: &'a str,
    fake: &'a str,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "discriminator",
        "--checkpoint",
        s(model),
        "--real",
        data,
        "--fake",
        fake,
        "--out",
        s(out),
        "--base",
        "8",
        "--batch",
        "8",
    ];
    args.extend_from_slice(extra);
    args
}

/// `scoregen select` of the samples `fake` of `model` by the discriminator `disc` into `out`.
fn select_args<'a>(
    model: &'a Path,
    disc: &'a Path,
    fake: &'a str,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "select",
        "--checkpoint",
        s(model),
        "--discriminator",
        s(disc),
        "--fake",
        fake,
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

/// `scoregen sample` of two images of `model` guided by `disc` into `out`.
fn guided_args<'a>(model: &'a Path, disc: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "sample",
        "--checkpoint",
        s(model),
        "--num",
        "2",
        "--discriminator",
        s(disc),
        "--out",
        s(out),
    ]
}

/// The values of an NPY file.
fn read_npy_f32(p: &Path) -> Vec<f32> {
    scoregen::data::read_npy_array(p).unwrap().data
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
    let out = ok(&disc_args(
        &model,
        &data,
        &fake_arg,
        &disc,
        &["--steps", "6", "--heldout", "0.25"],
    ));
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
    let d2 = dir.join("d2");
    let err = fails(&disc_args(&model, &data, &small_arg, &d2, &[]));
    assert!(err.contains("small.idx") && err.contains("1×4×4"), "{err}");
    let d3 = dir.join("d3");
    let err = fails(&disc_args(checkpoint(), &data, &fake_arg, &d3, &[]));
    assert!(err.contains("image model"), "{err}");
    let (nothing, x) = (dir.join("nothing"), dir.join("x.npy"));
    let err = fails(&guided_args(&model, &nothing, &x));
    assert!(
        err.contains("nothing") && err.contains("scoregen discriminator"),
        "{err}"
    );
    let d4 = dir.join("d4");
    let err = fails(&disc_args(
        &model,
        &data,
        &fake_arg,
        &d4,
        &["--class-conditional"],
    ));
    assert!(err.contains("unconditional model"), "{err}");
    // Rejection sampling with the discriminator: the kept images are some of the samples.
    let fake_px = read_npy_f32(&fakes);
    let select = |out: &Path, extra: &[&str]| {
        let said = ok(&select_args(&model, &disc, &fake_arg, out, extra));
        (said, read_npy_f32(out))
    };
    // The smallest logit as bound keeps every sample.
    let (said, all) = select(&dir.join("all.npy"), &["--quantile", "0"]);
    assert!(said.contains("kept 6 of 6"), "{said}");
    assert_eq!(all.len(), fake_px.len());
    assert!(all.iter().zip(&fake_px).all(|(a, b)| (a - b).abs() < 1e-6));
    let (said, two) = select(&dir.join("two.npy"), &["--quantile", "0", "--num", "2"]);
    assert!(said.contains("kept 2 of 6"), "{said}");
    assert_eq!(two.len(), 2 * 64);
    // Two of the samples, in input order.
    let at = |img: &[f32]| fake_px.chunks(64).position(|f| f == img).unwrap();
    assert!(at(&two[..64]) < at(&two[64..]));
    // The exact rule keeps the sample of the largest logit and perhaps others, each one of the
    // samples; the same seed keeps the same.
    let (_, some) = select(&dir.join("some.npy"), &["--seed", "3"]);
    assert!(!some.is_empty() && some.len() <= fake_px.len());
    for img in some.chunks(64) {
        assert!(fake_px.chunks(64).any(|f| f == img));
    }
    assert_eq!(select(&dir.join("some2.npy"), &["--seed", "3"]).1, some);
    // An ensemble averages its members' logits: the same discriminator twice selects as once.
    let twice = select(
        &dir.join("twice.npy"),
        &["--seed", "3", "--discriminator", s(&disc)],
    )
    .1;
    assert_eq!(twice, some);
    assert!(!dir.join("some-labels.npy").exists());
    for (arg, val) in [
        ("--quantile", "1.5"),
        ("--sigma", "0"),
        ("--sigma", "1e300"),
        ("--draws", "0"),
        ("--draws", "5000"),
        ("--num", "0"),
    ] {
        let bad = dir.join("bad.npy");
        let err = fails(&select_args(&model, &disc, &fake_arg, &bad, &[arg, val]));
        assert!(
            err.contains(&arg[2..]) || err.contains(val),
            "{arg} {val}: {err}"
        );
    }
    // A discriminator of zero-suppressed images selects but does not guide.
    let zdisc = dir.join("zdisc");
    ok(&disc_args(
        &model,
        &data,
        &fake_arg,
        &zdisc,
        &["--steps", "2", "--zero-below", "0.3"],
    ));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(zdisc.join("discriminator.json")).unwrap())
            .unwrap();
    assert_eq!(meta["zero_below"].as_f64(), Some(0.3));
    let z0 = dir.join("z0");
    let err = fails(&disc_args(
        &model,
        &data,
        &fake_arg,
        &z0,
        &["--zero-below", "0"],
    ));
    assert!(
        err.contains("--zero-below") && err.contains("(0, 1]"),
        "{err}"
    );
    // A damaged threshold in discriminator.json is refused when loading.
    let bad = dir.join("zbad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(
        zdisc.join("discriminator.safetensors"),
        bad.join("discriminator.safetensors"),
    )
    .unwrap();
    let text = std::fs::read_to_string(zdisc.join("discriminator.json")).unwrap();
    std::fs::write(
        bad.join("discriminator.json"),
        text.replace("\"zero_below\": 0.3", "\"zero_below\": 5.0"),
    )
    .unwrap();
    let zb = dir.join("zb.npy");
    let err = fails(&select_args(&model, &bad, &fake_arg, &zb, &[]));
    assert!(err.contains("zero_below") && err.contains("5"), "{err}");
    let x = dir.join("x.npy");
    let err = fails(&guided_args(&model, &zdisc, &x));
    assert!(err.contains("zero-suppressed"), "{err}");
    let z = dir.join("z.npy");
    let said = ok(&select_args(
        &model,
        &zdisc,
        &fake_arg,
        &z,
        &["--quantile", "0"],
    ));
    assert!(said.contains("kept 6 of 6"), "{said}");
    // Members of an ensemble each see the images as they were trained to (raw, suppressed).
    let both = dir.join("both.npy");
    let extra = ["--discriminator", s(&disc), "--quantile", "0"];
    let said = ok(&select_args(&model, &zdisc, &fake_arg, &both, &extra));
    assert!(said.contains("kept 6 of 6"), "{said}");
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
        run(&disc_args(
            &model,
            &data,
            fake,
            &disc,
            &["--class-conditional", "--steps", "4"],
        ))
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
    let x = dir.join("x.csv");
    let err = fails(&guided_args(&model, &disc, &x));
    assert!(err.contains("needs --class"), "{err}");
}
