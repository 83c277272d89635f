//! End-to-end test of autoguidance (`sample --guide-with`, Karras et al. 2024): an image model
//! guided by a weaker model of the same data, with and without classes, and of guidance limited
//! to an interval of noise levels (`--guidance-interval`, Kynkäänniemi et al. 2024), with
//! classifier-free guidance on top (`--free-guidance`) in an interval of its own.

mod common;

use std::path::Path;

use common::*;

/// A U-Net on the bars images: `base` channels, `steps` steps, class-conditional or not.
fn train(dir: &Path, data: &str, name: &str, base: usize, steps: u64, classes: bool) -> String {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "steps = {steps}\nbatch = 8\n[unet]\nbase = {base}\nmult = [1, 2]\nattn_levels = []\ngroups = 4\n"
        ),
    )
    .unwrap();
    let out = dir.join(name);
    let mut args = vec![
        "train",
        "--data",
        data,
        "--out",
        s(&out),
        "--config",
        s(&cfg),
        "--seed",
        "7",
    ];
    if classes {
        args.push("--class-conditional");
    }
    ok(&args);
    s(&out).to_string()
}

/// Largest absolute difference between two sample sets.
fn gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn autoguidance_guides_with_a_weaker_model_of_the_same_data() {
    let dir = tmp("autoguidance");
    let data = bars_idx(&dir);
    let cond = train(&dir, &data, "cond", 8, 6, true);
    let weak = train(&dir, &data, "weak", 4, 2, true);
    let plain = train(&dir, &data, "plain", 8, 6, false);
    let plain_weak = train(&dir, &data, "plain-weak", 4, 2, false);
    // Three DDIM samples from `checkpoint` (seed 3) with `extra` arguments, read back.
    let sample = |checkpoint: &str, name: &str, extra: &[&str]| {
        let out = dir.join(format!("{name}.npy"));
        let mut args = vec![
            "sample",
            "--checkpoint",
            checkpoint,
            "--num",
            "3",
            "--sampler",
            "ddim",
            "--steps",
            "3",
            "--seed",
            "3",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        ok(&args);
        scoregen::data::read_npy_array(&out).unwrap().data
    };

    // Class-conditional: the guide sees the same class.
    let class2 = ["--class", "2"];
    let unguided = sample(&cond, "unguided", &class2);
    let cfg = sample(&cond, "cfg", &["--class", "2", "--guidance", "2"]);
    let auto = sample(
        &cond,
        "auto",
        &["--class", "2", "--guidance", "2", "--guide-with", &weak],
    );
    let per_class = sample(
        &cond,
        "auto-list",
        &[
            "--class",
            "2",
            "--guidance",
            "0,0,2,0",
            "--guide-with",
            &weak,
        ],
    );
    let by_itself = sample(
        &cond,
        "self",
        &["--class", "2", "--guidance", "2", "--guide-with", &cond],
    );
    assert!(gap(&auto, &unguided) > 1e-2, "{}", gap(&auto, &unguided));
    assert!(gap(&auto, &cfg) > 1e-2, "not CFG: {}", gap(&auto, &cfg));
    assert!(gap(&auto, &per_class) < 1e-4, "{}", gap(&auto, &per_class));
    // Guided by itself, D + w(D − D) = D: the unguided samples.
    assert!(
        gap(&by_itself, &unguided) < 1e-4,
        "{}",
        gap(&by_itself, &unguided)
    );

    // Classifier-free guidance on top of autoguidance (--free-guidance v): v = 0 is
    // autoguidance alone; guided by itself, D + w(D − D) + v(D − D(∅)) is CFG with weight v.
    let with_free = |name: &str, guide: &str, v: &str, extra: &[&str]| {
        let mut args = vec![
            "--class",
            "2",
            "--guidance",
            "2",
            "--guide-with",
            guide,
            "--free-guidance",
            v,
        ];
        args.extend_from_slice(extra);
        sample(&cond, name, &args)
    };
    assert_eq!(with_free("free0", &weak, "0", &[]), auto);
    assert_eq!(with_free("free-self", &cond, "2", &[]), cfg);
    let both = with_free("free", &weak, "1", &[]);
    assert!(gap(&both, &auto) > 1e-2 && gap(&both, &cfg) > 1e-2);
    assert_eq!(with_free("free-list", &weak, "0,0,1,5", &[]), both);

    // A guidance interval (EDM σ): all of the run is the guided run, none of it the unguided
    // one; σ ∈ (0.5, 5] holds only the last of DDIM's three steps (σ ≈ 157, 9.6, 1.4).
    let interval = |name: &str, extra: &[&str], range: &str| {
        let mut args = vec![
            "--class",
            "2",
            "--guidance",
            "2",
            "--guidance-interval",
            range,
        ];
        args.extend_from_slice(extra);
        sample(&cond, name, &args)
    };
    let auto_guide = ["--guide-with", weak.as_str()];
    assert_eq!(interval("all", &auto_guide, "0,inf"), auto);
    assert_eq!(interval("cfg-all", &[], "0,inf"), cfg);
    assert_eq!(interval("none", &auto_guide, "1000,2000"), unguided);
    let last = interval("last", &auto_guide, "0.5,5");
    assert!(gap(&last, &auto) > 1e-3 && gap(&last, &unguided) > 1e-3);

    // The classifier-free term in an interval of its own (--free-guidance-interval): over every
    // σ it is --free-guidance without one, over none autoguidance alone, the same interval as
    // --guidance-interval is that shared interval, and with autoguidance nowhere and the
    // classifier-free term everywhere the run is classifier-free guidance with weight v.
    let free_interval = |name: &str, extra: &[&str]| with_free(name, &weak, "1", extra);
    assert_eq!(
        free_interval("fi-all", &["--free-guidance-interval", "0,inf"]),
        both
    );
    assert_eq!(
        free_interval("fi-none", &["--free-guidance-interval", "1000,2000"]),
        auto
    );
    let shared = free_interval("fi-shared", &["--guidance-interval", "0.5,5"]);
    assert!(gap(&shared, &both) > 1e-3 && gap(&shared, &unguided) > 1e-3);
    let same = [
        "--guidance-interval",
        "0.5,5",
        "--free-guidance-interval",
        "0.5,5",
    ];
    assert_eq!(free_interval("fi-same", &same), shared);
    let swapped = [
        "--guidance-interval",
        "1000,2000",
        "--free-guidance-interval",
        "0,inf",
    ];
    let cfg1 = sample(&cond, "cfg1", &["--class", "2", "--guidance", "1"]);
    let only_free = free_interval("fi-only", &swapped);
    assert!(gap(&only_free, &cfg1) < 1e-5, "{}", gap(&only_free, &cfg1));
    assert!(gap(&only_free, &auto) > 1e-2);

    // Unconditional: autoguidance needs no classes.
    let plain_unguided = sample(&plain, "plain-unguided", &[]);
    let plain_auto = sample(
        &plain,
        "plain-auto",
        &["--guidance", "1.5", "--guide-with", &plain_weak],
    );
    let plain_self = sample(
        &plain,
        "plain-self",
        &["--guidance", "1.5", "--guide-with", &plain],
    );
    assert!(gap(&plain_auto, &plain_unguided) > 1e-2);
    assert!(gap(&plain_self, &plain_unguided) < 1e-4);

    // Refusals: a guide of other classes, guidance without classes or guide, a per-class list
    // without classes, a guide without a weight.
    let refused = |extra: &[&str]| {
        let out = dir.join("refused.npy");
        let mut args = vec!["sample", "--checkpoint", "", "--num", "2", "--out", s(&out)];
        args.extend_from_slice(extra);
        let checkpoint = if extra.contains(&"--class") {
            &cond
        } else {
            &plain
        };
        args[2] = checkpoint.as_str();
        fails(&args)
    };
    let e = refused(&["--class", "2", "--guidance", "1", "--guide-with", &plain]);
    assert!(e.contains("plain") && e.contains("`classes` (0)"), "{e}");
    let e = refused(&["--guidance", "1"]);
    assert!(e.contains("--class") && e.contains("--guide-with"), "{e}");
    let e = refused(&["--guidance", "1,2", "--guide-with", &plain_weak]);
    assert!(e.contains("per class needs --class"), "{e}");
    let e = refused(&["--guide-with", &plain_weak]);
    assert!(e.contains("needs a guidance weight"), "{e}");
    let e = refused(&["--guidance-interval", "1,2"]);
    assert!(e.contains("no guidance to limit"), "{e}");
    let e = refused(&[
        "--guidance",
        "1",
        "--guide-with",
        &plain_weak,
        "--guidance-interval",
        "2,1",
    ]);
    assert!(e.contains("guidance-interval") && e.contains("2,1"), "{e}");
    // --free-guidance needs both a guide and classes, and one weight per class.
    let e = refused(&["--class", "2", "--free-guidance", "1"]);
    assert!(e.contains("--guide-with"), "{e}");
    let e = refused(&[
        "--guidance",
        "1",
        "--guide-with",
        &plain_weak,
        "--free-guidance",
        "1",
    ]);
    assert!(e.contains("--class"), "{e}");
    let autoguided = |extra: &[&str]| {
        let mut args = vec![
            "--class",
            "2",
            "--guidance",
            "1",
            "--guide-with",
            weak.as_str(),
        ];
        args.extend_from_slice(extra);
        refused(&args)
    };
    let e = autoguided(&["--free-guidance", "1,2"]);
    assert!(
        e.contains("--free-guidance 1,2") && e.contains("free_guidance") && e.contains("4 classes"),
        "{e}"
    );
    // --free-guidance-interval limits --free-guidance's term: alone it is refused.
    let e = autoguided(&["--free-guidance-interval", "0,1"]);
    assert!(e.contains("--free-guidance <V>"), "{e}");
}
