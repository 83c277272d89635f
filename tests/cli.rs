//! End-to-end tests of the `scoregen` binary: the documented command forms, every sampler on a
//! trained checkpoint, and clear errors (exit code ≠ 0, nothing overwritten) on bad input.

mod common;

use common::*;

#[test]
fn every_sampler_runs_on_a_trained_checkpoint() {
    let ck = checkpoint();
    assert!(ck.join("checkpoint.json").is_file() && ck.join("loss.png").is_file());
    let dir = tmp("samplers");
    for name in [
        "langevin",
        "annealed-langevin",
        "em",
        "reverse-diffusion",
        "ancestral",
        "pc",
        "pc-vp",
        "ode",
        "ddpm",
        "ddim",
        "heun",
        "dpmpp-2m",
    ] {
        let out = dir.join(format!("{name}.csv"));
        let steps = if name == "annealed-langevin" {
            "5"
        } else {
            "8"
        };
        let mut args = vec![
            "sample",
            "--checkpoint",
            s(ck),
            "--num",
            "16",
            "--sampler",
            name,
            "--out",
            s(&out),
        ];
        if name != "ode" {
            args.extend(["--steps", steps]);
        } else {
            args.extend(["--tol", "1e-3"]);
        }
        ok(&args);
        let rows = read_rows(&out);
        assert_eq!(rows.len(), 16, "{name}");
        assert!(
            rows.iter()
                .all(|r| r.len() == 3 && r.iter().all(|v| v.is_finite())),
            "{name}"
        );
    }
    let npy = dir.join("x.npy");
    ok(&[
        "sample",
        "--checkpoint",
        s(ck),
        "--num",
        "5",
        "--sampler",
        "ddim",
        "--steps",
        "4",
        "--out",
        s(&npy),
    ]);
    assert_eq!(std::fs::read(&npy).unwrap()[..6], *b"\x93NUMPY");
    // The adaptive ODE solver says that it ignores --steps.
    let o = common::run(&[
        "sample",
        "--checkpoint",
        s(ck),
        "--num",
        "4",
        "--sampler",
        "ode",
        "--steps",
        "5",
        "--tol",
        "1e-2",
        "--out",
        s(&dir.join("ode.csv")),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && e.contains("--steps 5 is ignored"),
        "{e}"
    );
    // Heun's stochastic churn, and its options refused for another sampler or out of range.
    let churned = dir.join("churn.csv");
    let churn_args = |sampler: &'static str, tmax: &'static str| {
        vec![
            "sample",
            "--checkpoint",
            s(ck),
            "--num",
            "16",
            "--steps",
            "8",
            "--sampler",
            sampler,
            "--s-churn",
            "10",
            "--s-tmin",
            "0.05",
            "--s-tmax",
            tmax,
            "--s-noise",
            "1.003",
            "--out",
            s(&churned),
        ]
    };
    ok(&churn_args("heun", "50"));
    let rows = read_rows(&churned);
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().flatten().all(|v| v.is_finite()));
    let err = fails(&churn_args("pc", "50"));
    assert!(err.contains("--s-churn") && err.contains("heun"), "{err}");
    let err = fails(&churn_args("heun", "0.01"));
    assert!(err.contains("s_tmax"), "{err}");
}

#[test]
fn likelihood_prints_json_and_checks_dimensions() {
    let ck = checkpoint();
    let dir = tmp("lik");
    let data = dir.join("d.csv");
    std::fs::write(&data, "0.5,0.1,1.0\n-0.2,0.9,2.0\n1.0,0.0,0.0\n").unwrap();
    let out = ok(&[
        "likelihood",
        "--checkpoint",
        s(ck),
        "--data",
        s(&data),
        "--json",
        "--tol",
        "1e-4",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["num_points"], 3);
    let (nats, bits) = (
        v["nll_nats_per_dim"].as_f64().unwrap(),
        v["bits_per_dim"].as_f64().unwrap(),
    );
    assert!(nats.is_finite() && (bits - nats / std::f64::consts::LN_2).abs() < 1e-9);
    let out = ok(&[
        "likelihood",
        "--checkpoint",
        s(ck),
        "--data",
        s(&data),
        "--hutchinson",
        "2",
        "--json",
        "--tol",
        "1e-4",
    ]);
    assert!(out.contains("rademacher"));
    let out = ok(&[
        "likelihood",
        "--checkpoint",
        s(ck),
        "--data",
        s(&data),
        "--hutchinson",
        "2",
        "--gaussian-probes",
        "--json",
        "--tol",
        "1e-4",
    ]);
    assert!(out.contains("gaussian"), "{out}");
    // Integer data with 4 levels: dequantised, and the discrete bits/dim add log2(4) = 2.
    let ints = dir.join("ints.csv");
    std::fs::write(&ints, "0,1,3\n2,2,1\n").unwrap();
    let out = ok(&[
        "likelihood",
        "--checkpoint",
        s(ck),
        "--data",
        s(&ints),
        "--dequantize",
        "4",
        "--json",
        "--tol",
        "1e-4",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let (nats, bits) = (
        v["nll_nats_per_dim"].as_f64().unwrap(),
        v["bits_per_dim"].as_f64().unwrap(),
    );
    assert!(
        (bits - (nats / std::f64::consts::LN_2 + 2.0)).abs() < 1e-9,
        "{v}"
    );
    let err = fails(&[
        "likelihood",
        "--checkpoint",
        s(ck),
        "--data",
        s(&data),
        "--dequantize",
        "4",
    ]);
    assert!(err.contains("not an integer"), "{err}");
    let two = dir.join("two.csv");
    std::fs::write(&two, "1,2\n3,4\n").unwrap();
    let err = fails(&["likelihood", "--checkpoint", s(ck), "--data", s(&two)]);
    assert!(err.contains("2 dimensions") && err.contains("3"), "{err}");
}

#[test]
fn bad_input_gets_a_clear_error_and_nothing_is_overwritten() {
    let ck = checkpoint();
    let dir = tmp("bad");
    let err = fails(&[
        "train",
        "--data",
        s(&dir.join("missing.csv")),
        "--out",
        s(&dir.join("o")),
    ]);
    assert!(err.contains("missing.csv"), "{err}");
    let ragged = dir.join("ragged.csv");
    std::fs::write(&ragged, "1,2\n3,4\n5\n").unwrap();
    let err = fails(&["train", "--data", s(&ragged), "--out", s(&dir.join("o"))]);
    assert!(
        err.contains("ragged.csv") && err.contains("line 3"),
        "{err}"
    );
    let text = dir.join("text.csv");
    std::fs::write(&text, "1,2\n3,x\n").unwrap();
    let err = fails(&["train", "--data", s(&text), "--out", s(&dir.join("o"))]);
    assert!(err.contains("line 2") && err.contains("`x`"), "{err}");
    let nan = dir.join("nan.csv");
    std::fs::write(&nan, "1,2\nNaN,4\n").unwrap();
    let err = fails(&["train", "--data", s(&nan), "--out", s(&dir.join("o"))]);
    assert!(err.contains("non-finite") && err.contains("row 2"), "{err}");
    // A new run into a checkpoint's folder is refused before the data is read or announced.
    let err = fails(&["train", "--data", s(&nan), "--out", s(ck)]);
    assert!(
        err.contains("already holds") && !err.contains("training on") && !err.contains("nan.csv"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--data",
        "toy:moons",
        "--minutes=0",
        "--out",
        s(&dir.join("o")),
    ]);
    assert!(
        err.contains("--minutes") && err.contains("positive"),
        "{err}"
    );

    // Unknown sampler: the existing output is left alone.
    let out = dir.join("keep.csv");
    std::fs::write(&out, "precious\n").unwrap();
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(ck),
        "--num",
        "4",
        "--sampler",
        "magic",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("magic") && err.contains("annealed-langevin"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious\n");

    // Truncated and corrupt checkpoints.
    let broken = dir.join("broken");
    copy_checkpoint(ck, &broken);
    let weights = std::fs::read_dir(&broken)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
        .unwrap()
        .path();
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&broken),
        "--num",
        "4",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("truncated"), "{err}");
    std::fs::write(broken.join("checkpoint.json"), "{ not json").unwrap();
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&broken),
        "--num",
        "4",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("corrupt") && err.contains("checkpoint.json"),
        "{err}"
    );
    let err = fails(&[
        "sample",
        "--checkpoint",
        s(&dir),
        "--num",
        "4",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("not a scoregen checkpoint"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious\n");

    // Training that diverges names the step and keeps nothing half-written.
    let cfg = dir.join("wild.toml");
    std::fs::write(&cfg, "steps = 50\nbatch = 32\nlr = 1e9\ngrad_clip = 0.0\nwarmup = 0\n[model]\nhidden = 16\nblocks = 1\n").unwrap();
    let err = fails(&[
        "train",
        "--data",
        "toy:moons",
        "--toy-samples",
        "200",
        "--out",
        s(&dir.join("wild")),
        "--config",
        s(&cfg),
    ]);
    assert!(err.contains("diverged") && err.contains("step"), "{err}");

    let bad_cfg = dir.join("typo.toml");
    std::fs::write(&bad_cfg, "stepz = 5\n").unwrap();
    let err = fails(&[
        "train",
        "--data",
        "toy:moons",
        "--out",
        s(&dir.join("t")),
        "--config",
        s(&bad_cfg),
    ]);
    assert!(err.contains("stepz") && err.contains("typo.toml"), "{err}");
    #[cfg(not(feature = "cuda"))]
    {
        let err = fails(&[
            "sample",
            "--checkpoint",
            s(ck),
            "--out",
            s(&out),
            "--device",
            "cuda",
        ]);
        assert!(err.contains("--features cuda"), "{err}");
    }
}

#[test]
fn config_plot_eval_and_list_commands_work() {
    let toml_text = ok(&["config"]);
    assert!(toml_text.contains("steps = ") && toml_text.contains("[model]"));
    let parsed: toml::Value = toml::from_str(&toml_text).unwrap();
    assert_eq!(parsed["sde"].as_str(), Some("vp"));
    // Resuming without --config keeps the run's own settings; --steps extends it.
    let resumed = tmp("resume");
    copy_checkpoint(checkpoint(), &resumed);
    let points = checkpoint().parent().unwrap().join("points.csv");
    ok(&[
        "train",
        "--data",
        s(&points),
        "--out",
        s(&resumed),
        "--resume",
        "--steps",
        "45",
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resumed.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(
        (
            meta["step"].as_u64(),
            meta["config"]["model"]["hidden"].as_u64()
        ),
        (Some(45), Some(32))
    );
    let listing = ok(&["list"]);
    assert!(listing.contains("dpmpp-2m") && listing.contains("swissroll"));

    let dir = tmp("plots");
    let png = dir.join("f.png");
    ok(&[
        "plot",
        "score-field",
        "--toy",
        "two-gaussians",
        "--out",
        s(&png),
        "--size",
        "200",
        "--samples",
        "100",
    ]);
    assert_eq!(std::fs::read(&png).unwrap()[1..4], *b"PNG");
    let err = fails(&["plot", "score-field", "--toy", "moons", "--out", s(&png)]);
    assert!(err.contains("no closed-form density"), "{err}");
    let model_png = dir.join("m.png");
    let model_dir = tmp("plots-model");
    let two_d = model_dir.join("run");
    ok(&[
        "train",
        "--data",
        "toy:8gaussians",
        "--toy-samples",
        "500",
        "--out",
        s(&two_d),
        "--steps",
        "20",
        "--batch",
        "64",
    ]);
    ok(&[
        "plot",
        "score-field",
        "--checkpoint",
        s(&two_d),
        "--out",
        s(&model_png),
        "--size",
        "160",
        "--samples",
        "100",
        "--density-grid",
        "8",
    ]);
    assert!(std::fs::metadata(&model_png).unwrap().len() > 1000);
    ok(&[
        "plot",
        "loss",
        "--checkpoint",
        s(&two_d),
        "--out",
        s(&dir.join("loss.png")),
    ]);

    let fake = dir.join("fake.csv");
    let mut csv = String::new();
    for i in 0..400 {
        csv.push_str(&format!(
            "{},{}\n",
            (i % 20) as f64 * 0.1,
            (i / 20) as f64 * 0.1
        ));
    }
    std::fs::write(&fake, csv).unwrap();
    let out = ok(&[
        "eval",
        "--real",
        "toy:moons",
        "--fake",
        s(&fake),
        "--json",
        "--max-points",
        "300",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let ed = &v["energy_distance"];
    assert!(ed["value"].as_f64().unwrap() > ed["real_vs_real"].as_f64().unwrap());
    // A known distribution as the generated set (it used to be drawn with 0 points): another
    // draw of the same one is far closer than a different one.
    let toy_ed = |fake: &str| {
        let out = ok(&[
            "eval",
            "--real",
            "toy:moons",
            "--fake",
            fake,
            "--json",
            "--max-points",
            "300",
            "--toy-samples",
            "600",
        ]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["num_points"].as_u64(), Some(300), "{v}");
        v["energy_distance"]["value"].as_f64().unwrap()
    };
    let (same, other) = (toy_ed("toy:moons"), toy_ed("toy:swissroll"));
    assert!(other > 10.0 * same.max(1e-6), "{same} {other}");
}

#[test]
fn average_makes_a_checkpoint_that_samples_and_refuses_resume() {
    let dir = tmp("average");
    let copy = dir.join("copy");
    copy_checkpoint(checkpoint(), &copy);
    let soup = dir.join("soup");
    ok(&["average", s(checkpoint()), s(&copy), "--out", s(&soup)]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(soup.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(meta["averaged_from"].as_array().map(Vec::len), Some(2));
    let out = dir.join("x.csv");
    ok(&[
        "sample",
        "--checkpoint",
        s(&soup),
        "--num",
        "8",
        "--sampler",
        "ddim",
        "--steps",
        "5",
        "--out",
        s(&out),
    ]);
    assert_eq!(read_rows(&out).len(), 8);
    let points = checkpoint().parent().unwrap().join("points.csv");
    let err = fails(&[
        "train",
        "--data",
        s(&points),
        "--out",
        s(&soup),
        "--resume",
        "--steps",
        "45",
    ]);
    assert!(
        err.contains("average of 2") && err.contains("--init"),
        "{err}"
    );
    let err = fails(&["average", s(checkpoint()), "--out", s(&dir.join("one"))]);
    assert!(err.contains("2 values required"), "{err}");
    let err = fails(&["average", s(checkpoint()), s(&copy), "--out", s(&soup)]);
    assert!(err.contains("already holds"), "{err}");
}
