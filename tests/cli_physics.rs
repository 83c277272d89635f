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
    let fake_npy = format!("npy:{}", s(&fake));
    // `physics eval --symmetric --json` and `extra`, its output whatever the exit status.
    let eval_json = |extra: &[&str]| {
        let o = run(&eval_args(
            &data,
            &fake_npy,
            s(&ssnet),
            &[&["--symmetric", "--json"], extra].concat(),
        ));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (String::from_utf8_lossy(&o.stderr).to_string(), json)
    };
    let (err, v) = eval_json(&[]);
    assert!(err.contains("eight symmetries"), "{err}");
    assert_eq!(v["num_events"], 80);
    // Zero suppression at SSNet's threshold zeroes the simulator's sub-threshold pixels in both
    // sets and leaves the charge histograms, which count only pixels above it, as they were.
    let (err, zs) = eval_json(&["--zero-suppress"]);
    assert!(
        err.contains("simulated pixels") && err.contains("generated pixels"),
        "{err}"
    );
    for h in ["total_charge", "pixel_charge"] {
        assert_eq!(zs[h], v[h], "{h}");
    }

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

#[test]
fn select_drops_generated_events_whose_observables_the_simulation_lacks() {
    use scoregen::data::{read_npy_array, write_npy_shaped};
    let dir = tmp("physics-select");
    let sim = |name: &str, num: &str, seed: &str| {
        let out = dir.join(name);
        ok(&[
            "physics",
            "simulate",
            "--num",
            num,
            "--size",
            "32",
            "--seed",
            seed,
            "--out",
            s(&out),
        ]);
        out
    };
    let real = sim("real.npy", "200", "1");
    let ssnet = dir.join("ssnet");
    ok(&[
        "physics",
        "ssnet",
        "train",
        "--data",
        &format!("npy:{}", s(&real)),
        "--heldout",
        "20",
        "--steps",
        "20",
        "--batch",
        "4",
        "--base",
        "8",
        "--out",
        s(&ssnet),
    ]);
    // A "generator" whose first 60 of 180 events have every pixel lit (at least 0.1): more lit
    // pixels and charge than any simulated event has.
    let pool = sim("pool.npy", "180", "3");
    let mut a = read_npy_array(&pool).unwrap();
    let d = 32 * 32;
    for v in &mut a.data[..60 * d] {
        *v = v.max(0.1);
    }
    let bright: Vec<bool> = (0..180).map(|i| i < 60).collect();
    let in_pool = 60;
    let fake = dir.join("fake.npy");
    write_npy_shaped(&fake, &a.data, &a.shape).unwrap();
    std::fs::copy(dir.join("pool-labels.npy"), dir.join("fake-labels.npy")).unwrap();
    let kept = dir.join("kept.npy");
    let select = |real: &std::path::Path| {
        vec![
            "physics".to_string(),
            "select".into(),
            "--real".into(),
            format!("npy:{}", s(real)),
            "--fake".into(),
            format!("npy:{}", s(&fake)),
            "--ssnet".into(),
            s(&ssnet).into(),
            "--neighbours".into(),
            "8".into(),
            "--quantile".into(),
            "0.9".into(),
            "--out".into(),
            s(&kept).into(),
        ]
    };
    let args = select(&real);
    let out = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("per class"), "{out}");
    let k = read_npy_array(&kept).unwrap();
    let n = k.shape[0];
    assert_eq!(k.shape[1..], [1, 32, 32]);
    let classes = read_npy_array(&dir.join("kept-labels.npy")).unwrap();
    assert_eq!(classes.shape, vec![n]);
    // Which pool events were kept: each kept image is one of the pool's, in the pool's order
    // (matched in order, as some events are identical, e.g. empty windows).
    let mut next = 0;
    let kept_idx: Vec<usize> = (0..n)
        .map(|j| {
            let i = (next..180)
                .find(|&i| a.data[i * d..(i + 1) * d] == k.data[j * d..(j + 1) * d])
                .expect("kept events are pool events, in order");
            next = i + 1;
            i
        })
        .collect();
    let kept_bright = kept_idx.iter().filter(|&&i| bright[i]).count();
    assert!(
        n >= 40 && kept_bright as f64 / (n as f64) < 0.25 * in_pool as f64 / 180.0,
        "{kept_bright} of {n} kept events are bright ones ({in_pool} of 180 in the pool)"
    );
    // Generated events with classes need the simulated events' classes too.
    let bare = dir.join("bare.npy");
    std::fs::copy(&real, &bare).unwrap();
    std::fs::copy(dir.join("real-pixels.npy"), dir.join("bare-pixels.npy")).unwrap();
    let args = select(&bare);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("bare-labels.npy not found"), "{e}");
    // The simulated events' observables, tabled once by `ssnet apply --observables`, select the
    // same events as labelling them again.
    let tabled_with = |events: &std::path::Path, table: &std::path::Path, extra: &[&str]| {
        let data = format!("npy:{}", s(events));
        let predicted = dir.join("predicted.npy");
        let mut args = vec!["physics", "ssnet", "apply", "--ssnet", s(&ssnet), "--data"];
        args.extend([&data, "--out", s(&predicted), "--observables", s(table)]);
        args.extend(extra);
        let o = common::run(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    };
    let tabled =
        |events: &std::path::Path, table: &std::path::Path| tabled_with(events, table, &[]);
    let table = dir.join("real-observables.csv");
    let said = tabled(&real, &table);
    assert!(
        said.contains("observables of 200 events with their classes"),
        "{said}"
    );
    let t = scoregen::physics::table::read_observable_table(&table).unwrap();
    let real_classes = read_npy_array(&dir.join("real-labels.npy")).unwrap().data;
    let t_classes: Vec<f32> = t.classes.unwrap().iter().map(|&c| c as f32).collect();
    assert_eq!((t.track_pixels.len(), t_classes), (200, real_classes));
    let from_table = |table: &std::path::Path, extra: &[&str]| {
        let mut args = select(&real);
        let at = args.iter().position(|a| a == "--real").unwrap();
        args[at] = "--real-observables".into();
        args[at + 1] = s(table).into();
        let out = args.iter().position(|a| a == s(&kept)).unwrap();
        args[out] = s(&dir.join("kept2.npy")).into();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let args = from_table(&table, &[]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(read_npy_array(&dir.join("kept2.npy")).unwrap().data, k.data);
    let kept2_classes = read_npy_array(&dir.join("kept2-labels.npy")).unwrap();
    assert_eq!(kept2_classes.data, classes.data);
    // A table labelled otherwise, or without the classes the generated events have, is refused.
    let args = from_table(&table, &["--symmetric"]);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("symmetric = false") && e.contains("labelled alike"),
        "{e}"
    );
    // So must zero suppression; a table labelled on zero-suppressed events selects with it, and
    // the kept events are written zero-suppressed (no pixel between 0 and SSNet's threshold).
    let args = from_table(&table, &["--zero-suppress"]);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("zero_suppressed = false") && e.contains("zero_suppressed = true"),
        "{e}"
    );
    let zs_table = dir.join("zs-observables.csv");
    let said = tabled_with(&real, &zs_table, &["--zero-suppress"]);
    assert!(said.contains("zero-suppressed below"), "{said}");
    let args = from_table(&zs_table, &["--zero-suppress"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let threshold =
        scoregen::physics::segment::load_ssnet::<burn::backend::Flex>(&ssnet, &Default::default())
            .unwrap()
            .1
            .threshold as f32;
    let zs_kept = read_npy_array(&dir.join("kept2.npy")).unwrap();
    assert!(!zs_kept.data.is_empty());
    assert!(zs_kept.data.iter().all(|&v| v == 0.0 || v >= threshold));
    let bare_table = dir.join("bare-observables.csv");
    let said = tabled(&bare, &bare_table);
    assert!(!said.contains("with their classes"), "{said}");
    let args = from_table(&bare_table, &[]);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("has no event classes"), "{e}");
    // With --max-real, only the simulated events used are zero-suppressed and counted.
    let mut args = select(&real);
    args.extend(["--max-real", "50", "--zero-suppress"].map(String::from));
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    let sim = read_npy_array(&real).unwrap();
    let lit = sim.data[..50 * d].iter().filter(|&&v| v != 0.0).count();
    assert!(
        said.contains(&format!("of the {lit} non-zero simulated pixels")),
        "{lit}: {said}"
    );
}
