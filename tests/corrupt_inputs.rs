//! Every reader of user files meets corrupted copies of a valid file (bytes flipped, cut short,
//! fields set to extreme values, garbage inserted; a fixed seed) and must answer with a value
//! or an error, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use burn::backend::{Autodiff, Flex};
use scoregen::data::{
    read_cifar, read_csv, read_idx, read_npy_array, read_png_file, write_csv, write_npy_shaped,
    Dataset, Toy,
};
use scoregen::nn::UNetConfig;
use scoregen::rng::Rng;
use scoregen::train::{safetensors, train, Checkpoint, TrainConfig, TrainOptions};

mod common;

/// One corrupted copy of `bytes`.
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.is_empty() {
        return b;
    }
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            // A 4- or 8-byte field (sizes, offsets, lengths) set to an extreme value.
            let w = if rng.below(2) == 0 { 4 } else { 8 };
            let i = rng.below(b.len().saturating_sub(w) + 1);
            let fill = [0xFF, 0x7F, 0x00][rng.below(3)];
            for v in b.iter_mut().skip(i).take(w) {
                *v = fill;
            }
        }
        3 => {
            let i = rng.below(b.len());
            let junk: Vec<u8> = (0..1 + rng.below(16))
                .map(|_| rng.below(256) as u8)
                .collect();
            b.splice(i..i, junk);
        }
        _ => {
            // A digit of a text header changed (JSON, NPY's dict).
            let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
            if let Some(&i) = digits.get(rng.below(digits.len().max(1))) {
                b[i] = b"0123456789"[rng.below(10)];
                if rng.below(2) == 0 {
                    b.splice(i..i, *b"99999999999");
                }
            }
        }
    }
    b
}

/// Writes `rounds` corrupted copies of the file at `path` and reads each with `read`, which
/// must not panic.
fn survives<T>(name: &str, path: &Path, rounds: usize, read: impl Fn(&Path) -> T) {
    let good = std::fs::read(path).unwrap();
    let mut rng = Rng::new(0xC0FF_EE00 ^ good.len() as u64);
    for round in 0..rounds {
        let bad = mutate(&good, &mut rng);
        std::fs::write(path, &bad).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| read(path)));
        assert!(
            r.is_ok(),
            "{name}: round {round} panicked on a corrupted file"
        );
    }
    std::fs::write(path, &good).unwrap();
}

#[test]
fn corrupted_data_files_are_errors_not_panics() {
    let dir = common::tmp("corrupt-data");
    // NPY (f32, N×C×H×W).
    let npy = dir.join("x.npy");
    let px: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32 / 24.0).collect();
    write_npy_shaped(&npy, &px, &[2, 1, 3, 4]).unwrap();
    survives("npy", &npy, 300, |p| {
        read_npy_array(p).map(|a| a.data.len())
    });
    // CSV, two columns.
    let csv = dir.join("x.csv");
    write_csv(&csv, &[0.5, -1.25, 3.0, 4e-3, 1e6, -0.0], 2).unwrap();
    survives("csv", &csv, 200, |p| read_csv(p).map(|d| d.len()));
    // IDX images.
    let idx = dir.join("img.idx");
    let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
    b.extend((0..24).map(|i| i as u8 * 10));
    std::fs::write(&idx, b).unwrap();
    survives("idx", &idx, 300, |p| read_idx(p, None).map(|s| s.len()));
    // One CIFAR-10 record (label + 3×32×32).
    let cifar = dir.join("test_batch.bin");
    let mut rec = vec![3u8];
    rec.extend((0..3 * 32 * 32).map(|i| (i % 251) as u8));
    std::fs::write(&cifar, rec).unwrap();
    survives("cifar", &cifar, 200, |p| read_cifar(p).map(|s| s.len()));
    // PNG, grey 5×4.
    let png_path = dir.join("a.png");
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, 5, 4);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[128u8; 20]).unwrap();
    }
    std::fs::write(&png_path, buf).unwrap();
    survives("png", &png_path, 300, |p| read_png_file(p).map(|s| s.len()));
}

/// Checks a checkpoint of `cfg` trained on `data`, and corrupted copies of its files.
fn corrupt_checkpoint(name: &str, cfg: &TrainConfig, data: &Dataset) {
    let dir = common::tmp(name);
    let dev = Default::default();
    train::<Autodiff<Flex>>(cfg, data, &dir, &TrainOptions::default(), &dev).unwrap();
    let load = |d: &Path| {
        Checkpoint::load(d).and_then(|c| c.model::<Flex>(true, &Default::default()).map(|_| ()))
    };
    load(&dir).unwrap();
    let weights = Checkpoint::load(&dir).unwrap().meta.weights_file.clone();
    survives("safetensors", &dir.join(&weights), 300, |p| {
        safetensors::read(p).map(|(t, _)| t.len())
    });
    survives("checkpoint weights", &dir.join(&weights), 100, |_| {
        load(&dir)
    });
    survives(
        "checkpoint.json",
        &dir.join("checkpoint.json"),
        2000,
        |_| load(&dir),
    );
}

#[test]
fn corrupted_checkpoints_are_errors_not_panics() {
    let points = Toy::Moons.sample(64, &mut Rng::new(1));
    corrupt_checkpoint("corrupt-mlp", &common::tiny_point_config(2), &points);
    // A U-Net of 8×8 images (its configuration has more sizes to corrupt).
    let mut rng = Rng::new(2);
    let images = Dataset::new((0..16 * 64).map(|_| rng.uniform() as f32).collect(), 64);
    let mut cfg = common::tiny_point_config(1);
    cfg.standardize = false;
    cfg.sample_grid = 0;
    cfg.unet = Some(UNetConfig {
        channels: 1,
        height: 8,
        width: 8,
        base: 8,
        mult: vec![1, 2],
        attn_levels: vec![1],
        groups: 4,
        num_classes: 0,
        ..Default::default()
    });
    corrupt_checkpoint("corrupt-unet", &cfg, &images);
}

#[test]
fn corrupted_ssnet_and_classifier_directories_are_errors_not_panics() {
    let dir = common::tmp("corrupt-nets");
    let p = |name: &str| dir.join(name).to_string_lossy().to_string();
    let ev = p("ev.npy");
    common::ok(&[
        "physics", "simulate", "--num", "12", "--size", "16", "--out", &ev,
    ]);
    let (ssnet, classifier) = (dir.join("ssnet"), dir.join("classifier"));
    common::ok(&[
        "physics",
        "ssnet",
        "train",
        "--data",
        &format!("npy:{ev},{}", p("ev-pixels.npy")),
        "--heldout",
        "2",
        "--steps",
        "1",
        "--base",
        "8",
        "--levels",
        "2",
        "--out",
        &ssnet.to_string_lossy(),
    ]);
    common::ok(&[
        "classifier",
        "--data",
        &format!("npy:{ev},{}", p("ev-labels.npy")),
        "--heldout",
        "2",
        "--steps",
        "1",
        "--out",
        &classifier.to_string_lossy(),
    ]);
    let dev = Default::default();
    let load_ssnet = |_: &Path| scoregen::physics::segment::load_ssnet::<Flex>(&ssnet, &dev);
    let load_classifier = |_: &Path| scoregen::eval::load_classifier::<Flex>(&classifier, &dev);
    load_ssnet(&ssnet).unwrap();
    // Trained without --first, the classifier has no held-out images and records its accuracy
    // as NaN (`null`), which has to load too.
    let (_, meta) = load_classifier(&classifier).unwrap();
    assert!(meta.heldout_accuracy.is_nan() && meta.heldout_images == 0);
    for (file, rounds) in [("ssnet.json", 1000), ("ssnet.safetensors", 100)] {
        survives(file, &ssnet.join(file), rounds, load_ssnet);
    }
    for (file, rounds) in [("classifier.json", 1000), ("classifier.safetensors", 100)] {
        survives(file, &classifier.join(file), rounds, load_classifier);
    }
}
