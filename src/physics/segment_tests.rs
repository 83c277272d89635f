use super::*;
use crate::rng::Rng;
use crate::tensor::scalar;
use burn::backend::{Autodiff, Flex};

#[test]
fn weighted_cross_entropy_matches_hand_computation() {
    let dev = Default::default();
    // One event, 1×2 pixels... as [1, 3, 1, 2]: logits per class, pixel 0 true class 0 (w 0.5),
    // pixel 1 true class 2 (w 2).
    let logits = [1.0f32, -1.0, 0.0, 2.0, 0.5, 0.3];
    let target = [0.5f32, 0.0, 0.0, 0.0, 0.0, 2.0];
    let l = Tensor::<Flex, 1>::from_floats(logits.as_slice(), &dev).reshape([1, 3, 1, 2]);
    let t = Tensor::<Flex, 1>::from_floats(target.as_slice(), &dev).reshape([1, 3, 1, 2]);
    let got = scalar(weighted_cross_entropy(l, t));
    let lse = |a: f64, b: f64, c: f64| (a.exp() + b.exp() + c.exp()).ln();
    // Pixel 0 logits (1, 0, 0.5), pixel 1 logits (−1, 2, 0.3).
    let p0 = -(1.0 - lse(1.0, 0.0, 0.5));
    let p1 = -(0.3 - lse(-1.0, 2.0, 0.3));
    let expect = (0.5 * p0 + 2.0 * p1) / 2.5;
    assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
}

#[test]
fn class_weights_balance_the_classes() {
    let labels = [0u8, 0, 0, 0, 0, 0, 1, 1, 2, 0];
    let w = class_weights(&labels);
    // f = (0.7, 0.2, 0.1): each class carries f_c w_c = 1/3.
    for (f, wc) in [0.7, 0.2, 0.1].iter().zip(w) {
        assert!((f * wc - 1.0 / 3.0).abs() < 1e-12, "{w:?}");
    }
}

#[test]
fn dihedral_maps_are_the_eight_symmetries() {
    let src: Vec<u32> = (0..9).collect();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for k in 0..8 {
        dihedral(&src, 3, k, &mut out);
        let mut sorted = out.clone();
        sorted.sort();
        assert_eq!(sorted, src, "a permutation");
        assert_eq!(out[4], 4, "the centre stays");
        seen.push(out.clone());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8);
    dihedral(&src, 3, 1, &mut out);
    assert_eq!(out[..3], [2, 1, 0]);
}

/// 32×32 events of the same brightness everywhere: two straight lines (label 1) and three 3×3
/// blobs (label 2), so only shape tells the classes apart.
fn lines_and_blobs(n: usize, rng: &mut Rng) -> (Vec<f32>, Vec<u8>) {
    let s = 32;
    let mut images = vec![0.0f32; n * s * s];
    let mut labels = vec![0u8; n * s * s];
    for e in 0..n {
        let base = e * s * s;
        for _ in 0..2 {
            let (x0, y0) = (rng.below(s), rng.below(s));
            let (dx, dy) = [(1, 0), (0, 1), (1, 1), (1, -1)][rng.below(4)];
            for t in 0..20isize {
                let (x, y) = (x0 as isize + dx * t, y0 as isize + dy * t);
                if (0..s as isize).contains(&x) && (0..s as isize).contains(&y) {
                    let p = base + y as usize * s + x as usize;
                    images[p] = 0.5;
                    labels[p] = 1;
                }
            }
        }
        for _ in 0..3 {
            let (x0, y0) = (1 + rng.below(s - 2), 1 + rng.below(s - 2));
            for y in y0 - 1..=y0 + 1 {
                for x in x0 - 1..=x0 + 1 {
                    images[base + y * s + x] = 0.5;
                    labels[base + y * s + x] = 2;
                }
            }
        }
    }
    (images, labels)
}

#[test]
fn ssnet_learns_shapes_not_brightness() {
    let dev = Default::default();
    let mut rng = Rng::new(3);
    let (train_x, train_y) = lines_and_blobs(200, &mut rng);
    let (test_x, test_y) = lines_and_blobs(40, &mut rng);
    let threshold = 0.02;
    let opts = SsnetTraining {
        steps: 150,
        batch: 8,
        lr: 3e-3,
        seed: 0,
        config: Some(SsnetConfig {
            size: 32,
            base: 8,
            levels: 3,
        }),
        minutes: None,
        init: None,
    };
    let mut losses = Vec::new();
    let data = Labelled {
        size: 32,
        images: &train_x,
        labels: &train_y,
    };
    let net = train_ssnet::<Autodiff<Flex>>(data, &opts, &dev, &mut |step, l, total, _| {
        assert_eq!((step, total), (losses.len() as u64 + 1, 150));
        losses.push(l)
    })
    .unwrap()
    .net;
    let early: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let late: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    assert!(late < 0.6 * early, "loss {early} → {late}");
    let pred = segment(&net, &test_x, 32, threshold, &dev);
    let truth = Labelled {
        size: 32,
        images: &test_x,
        labels: &test_y,
    };
    let acc = segmentation_accuracy(truth, &pred, threshold).unwrap();
    // Brightness alone cannot beat the commoner class's share of the lit pixels; shape can.
    let [_, t, s] = acc.pixels;
    let baseline = t.max(s) as f64 / (t + s) as f64;
    assert!(
        acc.nonzero > 0.9 && acc.nonzero > baseline + 0.2,
        "{acc:?} vs baseline {baseline}"
    );
    assert!(acc.track > 0.85 && acc.shower > 0.85, "{acc:?}");
    assert_eq!(
        acc.background, 1.0,
        "below-threshold pixels are background: {acc:?}"
    );
    // Save, load and segment again identically.
    let dir = crate::test_dir::TestDir::new("ssnet");
    let meta = SsnetMeta {
        config: SsnetConfig {
            size: 32,
            base: 8,
            levels: 3,
        },
        threshold,
        class_weights: [1.0; 3],
        steps: 120,
        train_events: 200,
        heldout: Some(acc),
        heldout_symmetric: None,
    };
    save_ssnet(&dir, &net, &meta).unwrap();
    let (back, m) = load_ssnet::<Flex>(&dir, &dev).unwrap();
    assert_eq!(segment(&back, &test_x, 32, m.threshold, &dev), pred);
    // --init continues from the saved weights: a step at learning rate 0 changes nothing, while a
    // fresh start (same seed) is far from the trained net.
    let data = Labelled {
        size: 32,
        images: &train_x,
        labels: &train_y,
    };
    let cont = SsnetTraining {
        steps: 1,
        lr: 0.0,
        init: Some(dir.to_path_buf()),
        config: None,
        ..opts.clone()
    };
    let again = train_ssnet::<Autodiff<Flex>>(data, &cont, &dev, &mut |_, _, _, _| {}).unwrap();
    assert_eq!(again.config, m.config);
    assert_eq!(segment(&again.net, &test_x, 32, threshold, &dev), pred);
    let fresh = SsnetTraining {
        init: None,
        ..cont.clone()
    };
    let fresh = train_ssnet::<Autodiff<Flex>>(data, &fresh, &dev, &mut |_, _, _, _| {}).unwrap();
    assert_ne!(segment(&fresh.net, &test_x, 32, threshold, &dev), pred);
    // A spent time budget ends the run after its first step, and the progress callback is told.
    let quick = SsnetTraining {
        steps: 1000,
        minutes: Some(1e-9),
        init: None,
        config: Some(m.config.clone()),
        ..cont.clone()
    };
    let mut seen = Vec::new();
    let run =
        train_ssnet::<Autodiff<Flex>>(data, &quick, &dev, &mut |s, _, t, _| seen.push((s, t)))
            .unwrap();
    assert_eq!((run.steps, seen), (1, vec![(1, 1)]));
    let wider = SsnetTraining {
        config: Some(SsnetConfig {
            base: 16,
            ..m.config.clone()
        }),
        ..cont
    };
    let err = train_ssnet::<Autodiff<Flex>>(data, &wider, &dev, &mut |_, _, _, _| {}).unwrap_err();
    assert!(err.to_string().contains("cannot start"), "{err}");
    // A learning rate that overflows the weights is a divergence naming the step, reported
    // with the losses before it.
    let wild = SsnetTraining {
        steps: 5,
        lr: 1e36,
        minutes: None,
        init: None,
        config: Some(m.config.clone()),
        ..opts.clone()
    };
    let mut seen = Vec::new();
    let err = train_ssnet::<Autodiff<Flex>>(data, &wild, &dev, &mut |s, l, _, _| seen.push((s, l)))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let first_bad = seen.len() + 1;
    assert!(
        err.contains("SSNet loss is") && err.contains(&format!("at step {first_bad};")),
        "{err} after {seen:?}"
    );
    assert!(
        seen.iter().all(|&(_, l)| l.is_finite()) && first_bad <= 5,
        "{seen:?}"
    );
    std::fs::remove_dir_all(&*dir).unwrap();
    let missing = load_ssnet::<Flex>(&dir, &dev).unwrap_err().to_string();
    assert!(missing.contains("ssnet.json"), "{missing}");
}
