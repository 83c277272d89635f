//! End-to-end tests of image evaluation (the evaluation classifier, FID/KID, precision/recall,
//! class accuracy), per-class sampling to NPY, colourisation and horizontal flips.

mod common;

use common::*;

/// NPY header + bytes of a u8 array of the given shape.
fn npy_u8(shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn classifier_features_score_generated_images_against_the_real_floor() {
    let dir = tmp("eval-images");
    let data = bars_idx(&dir);
    let clf = dir.join("clf");
    let out = ok(&[
        "classifier",
        "--data",
        &data,
        "--first",
        "32",
        "--heldout",
        "8",
        "--steps",
        "40",
        "--batch",
        "16",
        "--out",
        s(&clf),
    ]);
    assert!(out.contains("held-out accuracy"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clf.join("classifier.json")).unwrap())
            .unwrap();
    assert_eq!(meta["config"]["classes"], 4);
    assert_eq!(meta["heldout_images"], 8);
    let acc = meta["heldout_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{meta}");

    // A class-conditional model; one sample of each class in turn, as N×C×H×W NPY + labels.
    let cfg = dir.join("unet.toml");
    std::fs::write(
        &cfg,
        "steps = 3\nbatch = 8\n[unet]\nbase = 8\nmult = [1, 2]\nattn_levels = []\ngroups = 4\n",
    )
    .unwrap();
    let run = dir.join("run");
    ok(&[
        "train",
        "--data",
        &data,
        "--out",
        s(&run),
        "--config",
        s(&cfg),
        "--class-conditional",
    ]);
    let fake = dir.join("fake.npy");
    ok(&[
        "sample",
        "--checkpoint",
        s(&run),
        "--num",
        "12",
        "--sampler",
        "ddim",
        "--steps",
        "3",
        "--class",
        "all",
        "--out",
        s(&fake),
    ]);
    let labels = dir.join("fake-labels.npy");
    let l = std::fs::read(&labels).unwrap();
    let n = l.len();
    // 12 float32 labels 0,1,2,3,0,… after the header.
    let vals: Vec<f32> = l[n - 48..]
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(vals, (0..12).map(|i| (i % 4) as f32).collect::<Vec<_>>());
    let header = String::from_utf8_lossy(&std::fs::read(&fake).unwrap()[..128]).to_string();
    assert!(header.contains("(12, 1, 8, 8)"), "{header}");

    // --class data: the training labels' proportions, recorded in the checkpoint. The first 34
    // bars have labels k mod 4: 9, 9, 8, 8 of classes 0–3.
    let run34 = dir.join("run34");
    ok(&[
        "train",
        "--data",
        &data,
        "--first",
        "34",
        "--out",
        s(&run34),
        "--config",
        s(&cfg),
        "--class-conditional",
    ]);
    let ckpt = run34.join("checkpoint.json");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ckpt).unwrap()).unwrap();
    assert_eq!(meta["class_counts"], serde_json::json!([9, 9, 8, 8]));
    let mix = dir.join("mix.npy");
    let sample_mix = [
        "sample",
        "--checkpoint",
        s(&run34),
        "--num",
        "34",
        "--sampler",
        "ddim",
        "--steps",
        "2",
        "--class",
        "data",
        "--out",
        s(&mix),
    ];
    ok(&sample_mix);
    let mixed = scoregen::data::read_npy_array(&dir.join("mix-labels.npy"))
        .unwrap()
        .data;
    let per_class: Vec<usize> = (0..4)
        .map(|k| mixed.iter().filter(|&&v| v == k as f32).count())
        .collect();
    assert_eq!(per_class, vec![9, 9, 8, 8], "{mixed:?}");
    // A checkpoint without the counts (written before they were recorded) is refused by name.
    let mut old = meta.clone();
    old.as_object_mut().unwrap().remove("class_counts");
    std::fs::write(&ckpt, serde_json::to_string(&old).unwrap()).unwrap();
    let e = fails(&sample_mix);
    assert!(e.contains("records no training items per class"), "{e}");
    assert!(e.contains("run34"), "{e}");

    let fake_spec = format!("npy:{},{}", s(&fake), s(&labels));
    let out = ok(&[
        "eval",
        "--real",
        &data,
        "--fake",
        &fake_spec,
        "--features",
        s(&clf),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["num_images"], 12);
    assert_eq!(v["feature_dim"], 128);
    for key in ["fid", "kid", "precision", "recall", "class_accuracy"] {
        for part in ["value", "real_vs_real"] {
            assert!(v[key][part].is_number(), "{key}.{part} missing: {v}");
        }
    }
    for key in ["precision", "recall", "class_accuracy"] {
        let p = v[key]["value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{key} = {p}");
    }
    // Without --json: a table with each figure beside its real-vs-real reference.
    let table = ok(&[
        "eval",
        "--real",
        &data,
        "--fake",
        &data,
        "--features",
        s(&clf),
    ]);
    assert!(
        table.contains("FID (classifier, 128-D)") && table.contains("real-vs-real"),
        "{table}"
    );

    let err = fails(&["eval", "--real", &data, "--fake", &fake_spec]);
    assert!(err.contains("--features"), "{err}");
    let err = fails(&[
        "eval",
        "--real",
        &data,
        "--fake",
        s(&fake),
        "--features",
        s(&clf),
    ]);
    assert!(err.contains("image data expected"), "{err}");
    let err = fails(&[
        "eval",
        "--real",
        &data,
        "--fake",
        &fake_spec,
        "--features",
        s(&dir),
    ]);
    assert!(err.contains("classifier.json"), "{err}");
    let unlabelled = format!("idx:{}", s(&dir.join("img.idx")));
    let err = fails(&[
        "classifier",
        "--data",
        &unlabelled,
        "--out",
        s(&dir.join("c2")),
    ]);
    // Refused before it starts (the message said "training …" first).
    assert!(
        err.contains("labelled") && !err.contains("training"),
        "{err}"
    );
    // The grey model refuses colourisation.
    let err = fails(&[
        "inpaint",
        "--checkpoint",
        s(&run),
        "--image",
        &data,
        "--mask",
        "colour",
        "--out",
        s(&dir.join("c.png")),
    ]);
    assert!(err.contains("RGB"), "{err}");
}

#[test]
fn rgb_models_train_with_flips_and_colourise_grey_images() {
    let dir = tmp("colour");
    // 16 RGB 8×8 images: a red left half or a blue right half.
    let mut px = Vec::new();
    for k in 0..16 {
        for c in 0..3 {
            for _y in 0..8 {
                for x in 0..8 {
                    let on = if k % 2 == 0 {
                        x < 4 && c == 0
                    } else {
                        x >= 4 && c == 2
                    };
                    px.push(if on { 255u8 } else { 20 });
                }
            }
        }
    }
    let npy = dir.join("rgb.npy");
    std::fs::write(&npy, npy_u8(&[16, 3, 8, 8], &px)).unwrap();
    let cfg = dir.join("rgb.toml");
    std::fs::write(
        &cfg,
        "steps = 3\nbatch = 4\nhflip = true\n[unet]\nbase = 8\nmult = [1, 2]\nattn_levels = []\ngroups = 4\n",
    )
    .unwrap();
    let run = dir.join("run");
    let data = format!("npy:{}", s(&npy));
    ok(&[
        "train",
        "--data",
        &data,
        "--out",
        s(&run),
        "--config",
        s(&cfg),
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(meta["config"]["hflip"], true);
    assert_eq!(meta["config"]["unet"]["channels"], 3);
    let out = dir.join("colourised.png");
    ok(&[
        "inpaint",
        "--checkpoint",
        s(&run),
        "--image",
        &data,
        "--mask",
        "colour",
        "--num",
        "2",
        "--steps",
        "3",
        "--out",
        s(&out),
    ]);
    let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(&out).unwrap()))
        .read_info()
        .unwrap();
    // A 2×2 grid (2 grey inputs, 2 colourised) of 8×8 images at 2× with borders, in colour.
    assert_eq!((dec.info().width, dec.info().height), (38, 38));
    assert_eq!(dec.info().color_type, png::ColorType::Rgb);
}
