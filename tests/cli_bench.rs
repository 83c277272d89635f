//! `scoregen bench`: the JSON it writes (the format `bench/compare.py` reads) and its errors.

mod common;

use common::*;

#[test]
fn bench_writes_json_records_for_both_networks() {
    let dir = tmp("bench");
    let json = dir.join("bench.json");
    ok(&[
        "bench",
        "--batches",
        "1",
        "--mlp-batch",
        "64",
        "--steps",
        "2",
        "--samplers",
        "ddim,pc",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--nfe-sweep",
        "2,3",
        "--json",
        s(&json),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["framework"], "scoregen");
    let recs = doc["records"].as_array().expect("records");
    // MLP: train + 2 samplers; U-Net: train + forward + 2 samplers + 2 sweep points.
    assert_eq!(recs.len(), 3 + 6, "{recs:?}");
    let find = |model: &str, what: &str, sampler: Option<&str>| {
        recs.iter()
            .find(|r| r["model"] == model && r["what"] == what && r["sampler"].as_str() == sampler)
            .unwrap_or_else(|| panic!("no {model} {what} {sampler:?}"))
    };
    let unet = find("unet", "train_step", None);
    assert_eq!(unet["params"], 651_057);
    assert_eq!(unet["batch"], 1);
    assert!(unet["median_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(find("mlp", "sample", Some("pc"))["nfe"], 4);
    assert_eq!(find("mlp", "sample", Some("ddim"))["batch"], 64);
    let sweep: Vec<u64> = recs
        .iter()
        .filter(|r| r["what"] == "sweep")
        .map(|r| r["nfe"].as_u64().unwrap())
        .collect();
    assert_eq!(sweep, vec![2, 3]);
    for r in recs {
        let nfe_rate = r["nfe_per_s"].as_f64();
        if let (Some(rate), Some(nfe)) = (nfe_rate, r["nfe"].as_f64()) {
            let expect = nfe * 1e3 / r["median_ms"].as_f64().unwrap();
            assert!((rate - expect).abs() < 1e-6 * expect, "{r}");
        }
    }
}

/// Also the default MNIST training network (`--unet mnist`: mult [1, 2, 2], attention at 7 × 7),
/// whose records are named `unet-mnist`.
#[test]
fn empty_sampler_and_sweep_lists_measure_only_the_network() {
    let dir = tmp("bench-net-only");
    let json = dir.join("bench.json");
    ok(&[
        "bench",
        "--unet",
        "mnist",
        "--suite",
        "unet",
        "--batches",
        "1",
        "--samplers",
        "",
        "--nfe-sweep",
        "",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--json",
        s(&json),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let recs = doc["records"].as_array().expect("records");
    let whats: Vec<&str> = recs.iter().map(|r| r["what"].as_str().unwrap()).collect();
    assert_eq!(whats, ["train_step", "forward"]);
    for r in recs {
        assert_eq!(r["model"], "unet-mnist");
        assert_eq!(r["params"], 1_112_817);
    }
}

#[test]
fn bench_rejects_bad_options() {
    assert!(fails(&["bench", "--suite", "gpu"]).contains("--suite"));
    assert!(fails(&["bench", "--unet", "big"]).contains("--unet"));
    assert!(fails(&["bench", "--samplers", "ddim,nope"]).contains("nope"));
    assert!(fails(&["bench", "--batches", "0"]).contains("--batches"));
    assert!(fails(&["bench", "--nfe-sweep", "10,x"]).contains("--nfe-sweep"));
}
