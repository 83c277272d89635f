//! Inception-v3 FID features against pytorch-fid itself: both sides build the network with the
//! same synthetic weights (bench/inception_fixture.py wrote the PyTorch features in
//! tests/fixtures/inception_pytorch_fid.json), and `scoregen eval --inception` reads them from a
//! safetensors file.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use common::*;
use scoregen::error::Result;
use scoregen::eval::{inception_features, InceptionV3, INCEPTION_DIM};
use scoregen::train::{params::HostTensor, safetensors};

/// FNV-1a hash of a tensor name (the seed of its values).
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01B3)
    })
}

/// `n` values in [0, 1) from splitmix64 started at `seed` (as bench/inception_fixture.py).
fn uniform(seed: u64, n: usize) -> Vec<f64> {
    (1..=n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f64 / (1u64 << 24) as f64
        })
        .collect()
}

/// The synthetic weights of bench/inception_fixture.py.
fn synthetic(name: &str, shape: &[usize]) -> Result<HostTensor> {
    let n: usize = shape.iter().product();
    let u = uniform(fnv1a(name), n);
    let f = |v: f64| -> f64 {
        if name.ends_with("conv.weight") {
            let fan_in: usize = shape[1..].iter().product();
            (2.0 * v - 1.0) * (6.0 / fan_in as f64).sqrt()
        } else if name.ends_with("bn.weight") {
            1.0 + 0.2 * (2.0 * v - 1.0)
        } else if name.ends_with("bn.running_var") {
            1.0 + 0.5 * v
        } else {
            0.1 * (2.0 * v - 1.0)
        }
    };
    Ok(HostTensor {
        shape: shape.to_vec(),
        data: u.into_iter().map(|v| f(v) as f32).collect(),
    })
}

/// Pixels in [−1, 1] of one deterministic C×H×W image.
fn image(seed: u64, c: usize, h: usize, w: usize) -> Vec<f32> {
    uniform(seed, c * h * w)
        .into_iter()
        .map(|u| (2.0 * u - 1.0) as f32)
        .collect()
}

fn fixture() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inception_pytorch_fid.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Largest |ours − theirs| relative to the largest |theirs|.
fn rel_err(ours: &[f32], theirs: &serde_json::Value) -> f64 {
    let theirs: Vec<f64> = theirs
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(
        scale > 1e-3,
        "reference features are all ~0: a useless fixture"
    );
    let worst = ours
        .iter()
        .zip(&theirs)
        .fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
    worst / scale
}

#[test]
fn pool3_features_match_pytorch_fid() {
    let dev = Default::default();
    let net = InceptionV3::<Flex>::from_source(&synthetic, &dev).unwrap();
    let want = fixture();

    // Grey 28×28 digits-sized images: channel replication and 28 → 299 upsampling.
    let grey: Vec<f32> = [image(1, 1, 28, 28), image(2, 1, 28, 28)].concat();
    let ours = inception_features(&net, &grey, [1, 28, 28], 2, &dev).unwrap();
    assert_eq!(ours.len(), 2 * INCEPTION_DIM);
    let e = rel_err(&ours, &want["grey_28x28"]);
    assert!(e < 2e-4, "grey: max error {e} of the feature scale");

    // An RGB 320×304 image: 320 → 299 and 304 → 299 downsampling.
    let rgb = image(3, 3, 320, 304);
    let ours = inception_features(&net, &rgb, [3, 320, 304], 1, &dev).unwrap();
    let e = rel_err(&ours, &want["rgb_320x304"]);
    assert!(e < 2e-4, "rgb: max error {e} of the feature scale");

    // Four-channel images are refused with their shape named.
    let err = inception_features(&net, &vec![0.0; 4 * 8 * 8], [4, 8, 8], 1, &dev).unwrap_err();
    assert!(err.to_string().contains("4 channels"), "{err}");
}

#[test]
fn weight_files_that_are_not_inception_are_refused_naming_the_tensor() {
    let dir = tmp("inception-bad");
    let p = dir.join("bad.safetensors");
    let meta = BTreeMap::new();
    let first = "Conv2d_1a_3x3.conv.weight".to_string();
    let wrong = synthetic(&first, &[32, 3, 5, 5]).unwrap();
    safetensors::write(&p, &[(first.clone(), wrong)], &meta).unwrap();
    let dev = Default::default();
    let e = InceptionV3::<Flex>::load(&p, &dev).unwrap_err().to_string();
    assert!(
        e.contains("Conv2d_1a_3x3.conv.weight") && e.contains("[32, 3, 3, 3]"),
        "{e}"
    );
    let right = synthetic(&first, &[32, 3, 3, 3]).unwrap();
    safetensors::write(&p, &[(first, right)], &meta).unwrap();
    let e = InceptionV3::<Flex>::load(&p, &dev).unwrap_err().to_string();
    assert!(
        e.contains("Conv2d_1a_3x3.bn.weight") && e.contains("missing"),
        "{e}"
    );
}

/// Writes the synthetic network as a safetensors file, in the layout pytorch-fid's weights
/// converted with `safetensors.torch.save_file(torch.load(...))` have.
fn write_synthetic_weights(path: &Path) {
    let seen = RefCell::new(Vec::new());
    let record = |name: &str, shape: &[usize]| -> Result<HostTensor> {
        let t = synthetic(name, shape)?;
        seen.borrow_mut().push((name.to_string(), t.clone()));
        Ok(t)
    };
    InceptionV3::<Flex>::from_source(&record, &Default::default()).unwrap();
    let mut tensors = seen.into_inner();
    // Extra tensors of the state dict that the features do not use.
    tensors.push((
        "fc.bias".into(),
        HostTensor {
            shape: vec![1008],
            data: vec![0.0; 1008],
        },
    ));
    safetensors::write(path, &tensors, &BTreeMap::new()).unwrap();
}

#[test]
fn eval_reports_inception_fid_beside_its_real_vs_real_floor() {
    let dir = tmp("inception-eval");
    let weights = dir.join("inception.safetensors");
    write_synthetic_weights(&weights);
    let data = bars_idx(&dir);
    let args = [
        "eval",
        "--real",
        &data,
        "--fake",
        &data,
        "--inception",
        s(&weights),
        "--max-points",
        "4",
    ];
    let out = ok(&[&args[..], &["--json"]].concat());
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["num_images"], 4, "{v}");
    assert!(
        v.get("fid").is_none(),
        "no classifier figures without --features: {v}"
    );
    let fid = &v["inception"]["fid"];
    let (value, floor) = (
        fid["value"].as_f64().unwrap(),
        fid["real_vs_real"].as_f64().unwrap(),
    );
    // The "generated" set is real data: its FID is of the order of the real-vs-real floor.
    assert!(value > 0.0 && floor > 0.0, "{v}");
    assert!(value < 10.0 * floor && floor < 10.0 * value, "{v}");
    for key in ["kid", "precision", "recall"] {
        assert!(v["inception"][key]["value"].is_number(), "{key}: {v}");
    }
    let table = ok(&args);
    assert!(table.contains("FID (Inception)"), "{table}");
    let err = fails(&[
        "eval",
        "--real",
        &data,
        "--fake",
        &data,
        "--inception",
        s(&dir.join("absent.safetensors")),
    ]);
    assert!(err.contains("absent.safetensors"), "{err}");
}
