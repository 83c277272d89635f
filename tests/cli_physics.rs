//! End-to-end tests of the physics application: simulate events, train and apply SSNet, and
//! evaluate a "generated" set against simulated events.

mod common;

use common::*;

#[test]
fn simulate_segment_and_evaluate_events() {
    let dir = tmp("physics");
    let real = dir.join("real.npy");
    let out = bin()
        .args([
            "physics", "simulate", "--num", "160", "--size", "32", "--seed", "1",
        ])
        .args(["--out", s(&real), "--grid", s(&dir.join("grid.png"))])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("events/s"), "{log}");
    for f in ["real-labels.npy", "real-pixels.npy", "grid.png"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    // A "generator" that only makes showers: the histograms must see it.
    let fake = dir.join("showers.npy");
    ok(&[
        "physics",
        "simulate",
        "--num",
        "80",
        "--size",
        "32",
        "--seed",
        "2",
        "--class",
        "shower",
        "--out",
        s(&fake),
    ]);
    let ssnet = dir.join("ssnet");
    let data = format!("npy:{}", s(&real));
    // `physics ssnet train` on the simulated events, 40 held out; the options follow.
    let train = [
        "physics",
        "ssnet",
        "train",
        "--data",
        &data,
        "--heldout",
        "40",
    ];
    let meta_of = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("ssnet.json")).unwrap()).unwrap()
    };
    let first = [
        "--steps",
        "20",
        "--batch",
        "4",
        "--base",
        "8",
        "--out",
        s(&ssnet),
    ];
    ok(&[&train[..], &first].concat());
    let meta = meta_of(&ssnet);
    assert_eq!(meta["train_events"], 120);
    assert!(meta["heldout"]["nonzero"].as_f64().unwrap() > 0.0);
    assert!(meta["heldout_symmetric"]["nonzero"].as_f64().unwrap() > 0.0);
    // --init without --base/--levels continues with the network's own sizes (base 8 here, not
    // the default 16); a size that does not match is refused.
    let more = dir.join("ssnet-more");
    let init = [
        "--steps",
        "1",
        "--batch",
        "4",
        "--init",
        s(&ssnet),
        "--out",
        s(&more),
    ];
    ok(&[&train[..], &init].concat());
    assert_eq!(meta_of(&more)["config"], meta["config"]);
    // A time budget times the first steps and says the rate and the step count it fixed.
    // (Batch 1: steps fast enough to pass the timed ones within the budget on a busy machine.)
    let budget = [
        &train[..],
        &["--batch", "1"],
        &init[4..],
        &["--minutes", "0.1"],
    ]
    .concat();
    let o = run(&budget);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(
        log.contains("time budget: ")
            && log.contains(" steps/s, so ")
            && log.contains(" in 0.1 minutes"),
        "{log}"
    );
    let e = fails(&[&train[..], &init, &["--base", "16"]].concat());
    assert!(e.contains("cannot start"), "{e}");

    let pred = dir.join("pred.npy");
    let log = String::from_utf8_lossy(
        &bin()
            .args([
                "physics",
                "ssnet",
                "apply",
                "--model",
                s(&ssnet),
                "--data",
                &data,
            ])
            .args(["--out", s(&pred)])
            .output()
            .unwrap()
            .stderr,
    )
    .to_string();
    assert!(log.contains("accuracy against the given labels"), "{log}");
    // 160 events × 32 × 32 f32 labels + header.
    assert!(std::fs::metadata(&pred).unwrap().len() > 160 * 32 * 32 * 4);
    // With the logits averaged over the square's symmetries: same shape of output.
    let pred_sym = dir.join("pred-sym.npy");
    ok(&[
        "physics",
        "ssnet",
        "apply",
        "--model",
        s(&ssnet),
        "--data",
        &data,
        "--symmetric",
        "--out",
        s(&pred_sym),
    ]);
    assert_eq!(
        std::fs::metadata(&pred_sym).unwrap().len(),
        std::fs::metadata(&pred).unwrap().len()
    );
    let sym_eval = bin()
        .args(["physics", "eval", "--real", &data, "--fake"])
        .arg(format!("npy:{}", s(&fake)))
        .args(["--ssnet", s(&ssnet), "--symmetric", "--json"])
        .output()
        .unwrap();
    assert!(sym_eval.status.success());
    assert!(String::from_utf8_lossy(&sym_eval.stderr).contains("eight symmetries"));
    let v: serde_json::Value = serde_json::from_slice(&sym_eval.stdout).unwrap();
    assert_eq!(v["num_events"], 80);

    let plots = dir.join("plots");
    let json = ok(&[
        "physics",
        "eval",
        "--real",
        &data,
        "--fake",
        &format!("npy:{}", s(&fake)),
        "--ssnet",
        s(&ssnet),
        "--json",
        "--per-class",
        "--plots",
        s(&plots),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["num_events"], 80);
    // Per event class: every generated event is a shower-only one (showers-labels.npy).
    let per = v["per_class"].as_array().unwrap();
    let generated = |name: &str| {
        per.iter().find(|c| c["name"] == name).unwrap()["generated"]["events"]
            .as_u64()
            .unwrap()
    };
    assert_eq!((generated("shower"), generated("track")), (80, 0));
    let shower = per.iter().find(|c| c["name"] == "shower").unwrap();
    assert!(shower["figures"]["shower_pixels"]["value"]["chi2"]
        .as_f64()
        .is_some());
    let track = per.iter().find(|c| c["name"] == "track").unwrap();
    assert!(track["figures"].is_null() && track["real"]["events"].as_u64().unwrap() > 0);
    let table = ok(&eval_args(&data, s(&fake), s(&ssnet), &["--per-class"]));
    assert!(
        table.contains("per event class") && table.contains("too few events"),
        "{table}"
    );
    let unlabelled = dir.join("unlabelled.npy");
    std::fs::copy(&fake, &unlabelled).unwrap();
    let e = fails(&eval_args(
        &data,
        s(&unlabelled),
        s(&ssnet),
        &["--per-class"],
    ));
    assert!(e.contains("unlabelled-labels.npy"), "{e}");
    for h in [
        "track_pixels",
        "shower_pixels",
        "total_charge",
        "pixel_charge",
    ] {
        for k in ["squared_error", "mse", "rmse", "chi2"] {
            assert!(v[h]["value"][k].as_f64().is_some(), "{h}.{k}");
            assert!(v[h]["real_vs_real"][k].as_f64().is_some(), "{h}.{k} floor");
        }
    }
    assert!(v["ssnet_features"]["fid"]["value"].as_f64().is_some());
    for f in [
        "track_pixels.png",
        "real-events.png",
        "generated-events.png",
    ] {
        assert!(plots.join(f).exists(), "{f}");
    }

    // A generator on the events, then fine-tuned with the physics term (a copy, resumed).
    let cfg = dir.join("gen.toml");
    std::fs::write(
        &cfg,
        "steps = 3\nbatch = 4\nsample_grid = 0\n[loss]\ntimes = \"lognormal\"\n[unet]\nbase = 8\nmult = [1, 2]\nattn_levels = []\ngroups = 4\n",
    )
    .unwrap();
    let labelled = format!("{},{}", data, s(&dir.join("real-labels.npy")));
    let gen = dir.join("gen");
    ok(&[
        "train",
        "--data",
        &labelled,
        "--class-conditional",
        "--config",
        s(&cfg),
        "--out",
        s(&gen),
    ]);
    let tuned = dir.join("tuned");
    std::fs::create_dir_all(&tuned).unwrap();
    for f in std::fs::read_dir(&gen).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tuned.join(f.file_name().unwrap())).unwrap();
    }
    // Resumed with the physics term for 2 more steps each time: charge-weighted at uniform times
    // (the defaults), then count-weighted with SSNet's label threshold at the loss's log-normal σ.
    let tune = |steps: &str, extra: &[&str]| -> String {
        let train = [
            "train",
            "--data",
            &labelled,
            "--class-conditional",
            "--resume",
        ];
        let term = [
            "--steps",
            steps,
            "--physics-ssnet",
            s(&ssnet),
            "--out",
            s(&tuned),
        ];
        let o = run(&[&train[..], &term, extra].concat());
        let log = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{log}");
        log
    };
    let log = tune("5", &["--physics-weight", "10"]);
    assert!(
        log.contains("weight 10, Charge fractions, times Uniform")
            && log.contains("done: step 5, 2 steps run"),
        "{log}"
    );
    let log = tune(
        "7",
        &["--physics-measure", "count", "--physics-times", "loss"],
    );
    assert!(
        log.contains(
            "weight 1, Count(0.02) fractions, times Lognormal { p_mean: -1.2, p_std: 1.2 }"
        ) && log.contains("done: step 7, 2 steps run"),
        "{log}"
    );
    let e = fails(&["train", "--physics-measure", "count", "--out", s(&tuned)]);
    assert!(e.contains("--physics-ssnet"), "{e}");

    // Errors name what is wrong.
    let e = fails(&[
        "physics",
        "simulate",
        "--num",
        "2",
        "--class",
        "muon",
        "--out",
        s(&fake),
    ]);
    assert!(e.contains("--class muon"), "{e}");
    let small = dir.join("small.npy");
    ok(&[
        "physics",
        "simulate",
        "--num",
        "4",
        "--size",
        "16",
        "--out",
        s(&small),
    ]);
    let e = fails(&eval_args(&data, s(&small), s(&ssnet), &[]));
    assert!(e.contains("small.npy") && e.contains("32×32"), "{e}");
    let e = fails(&eval_args(&data, s(&small), s(&dir), &[]));
    assert!(e.contains("ssnet.json"), "{e}");
    let e = fails(&[
        "train",
        "--data",
        &format!("npy:{}", s(&small)),
        "--config",
        s(&cfg),
        "--physics-ssnet",
        s(&ssnet),
        "--out",
        s(&dir.join("g16")),
    ]);
    assert!(e.contains("SSNet takes 1×32×32"), "{e}");
}

/// `scoregen physics eval --real <real> --fake <fake> --ssnet <ssnet>` and `extra`.
fn eval_args<'a>(real: &'a str, fake: &'a str, ssnet: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let base = [
        "physics", "eval", "--real", real, "--fake", fake, "--ssnet", ssnet,
    ];
    [&base[..], extra].concat()
}
