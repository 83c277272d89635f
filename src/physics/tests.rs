use super::params::SimConfig;
use super::*;

fn cfg() -> SimConfig {
    SimConfig {
        cosmic_prob: 0.0,
        ..SimConfig::default()
    }
}

#[test]
fn simulation_is_reproducible_and_prefix_stable() {
    let a = simulate(&cfg(), 12, 4).unwrap();
    let b = simulate(&cfg(), 20, 4).unwrap();
    let s2 = 64 * 64;
    assert_eq!(a.images[..], b.images[..12 * s2]);
    assert_eq!(a.labels[..], b.labels[..12 * s2]);
    assert_ne!(simulate(&cfg(), 12, 5).unwrap().images, a.images);
}

#[test]
fn labels_follow_the_event_class_and_the_charge() {
    let c = cfg();
    let ev = simulate(&c, 200, 1).unwrap();
    let s2 = 64 * 64;
    let mut counts = [0usize; 4];
    for k in 0..ev.len() {
        let img = &ev.images[k * s2..(k + 1) * s2];
        let lab = &ev.labels[k * s2..(k + 1) * s2];
        let tracks = lab.iter().filter(|&&l| l == 1).count();
        let showers = lab.iter().filter(|&&l| l == 2).count();
        let class = ev.classes[k] as usize;
        counts[class] += 1;
        // Without noise, a pixel is foreground exactly when its value reaches the threshold.
        for (v, l) in img.iter().zip(lab) {
            assert!((0.0..=1.0).contains(v));
            assert_eq!(*l > 0, *v as f64 >= c.label_threshold - 1e-6, "{v} {l}");
        }
        match class {
            0 => assert!(
                showers == 0 && tracks > 0,
                "track event {k}: {tracks}/{showers}"
            ),
            1 => assert_eq!(tracks, 0, "shower event {k}"),
            // Background events always carry one cosmic muon.
            3 => assert!(showers == 0 && tracks > 0, "background event {k}"),
            _ => {}
        }
    }
    // Class frequencies follow the weights 0.3/0.3/0.3/0.1 (binomial s.d. ≈ 6.5 of 200).
    for (k, w) in c.class_weights.iter().enumerate() {
        let expect = w * 200.0;
        assert!(
            (counts[k] as f64 - expect).abs() < 4.0 * (expect * (1.0 - w)).sqrt(),
            "{counts:?}"
        );
    }
}

/// 8-connected components of the pixels where `lit` holds.
fn components(lit: &[bool], size: usize) -> usize {
    let mut seen = vec![false; lit.len()];
    let mut count = 0;
    for start in 0..lit.len() {
        if !lit[start] || seen[start] {
            continue;
        }
        count += 1;
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(p) = stack.pop() {
            let (y, x) = ((p / size) as isize, (p % size) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (yy, xx) = (y + dy, x + dx);
                    if (0..size as isize).contains(&yy) && (0..size as isize).contains(&xx) {
                        let q = yy as usize * size + xx as usize;
                        if lit[q] && !seen[q] {
                            seen[q] = true;
                            stack.push(q);
                        }
                    }
                }
            }
        }
    }
    count
}

#[test]
fn showers_branch_into_more_pieces_than_tracks() {
    // Tracks leave one connected figure from the vertex; a shower's photons travel ~9/7 X₀
    // before converting, so its charge falls into separate clusters.
    let ev = simulate(&cfg(), 300, 9).unwrap();
    let s2 = 64 * 64;
    let mut sum = [0.0f64; 2];
    let mut n = [0usize; 2];
    for k in 0..ev.len() {
        let class = ev.classes[k] as usize;
        if class < 2 {
            let lit: Vec<bool> = ev.labels[k * s2..(k + 1) * s2]
                .iter()
                .map(|&l| l > 0)
                .collect();
            sum[class] += components(&lit, 64) as f64;
            n[class] += 1;
        }
    }
    let (t, s) = (sum[0] / n[0] as f64, sum[1] / n[1] as f64);
    assert!(t < 1.3, "track events have {t} clusters on average");
    assert!(s > t + 0.4, "shower {s} vs track {t} clusters per event");
}

#[test]
fn background_events_carry_cosmics_and_noise_is_added() {
    let c = SimConfig {
        class_weights: [0.0, 0.0, 0.0, 1.0],
        noise: 0.01,
        ..SimConfig::default()
    };
    let ev = simulate(&c, 20, 3).unwrap();
    let s2 = 64 * 64;
    for k in 0..ev.len() {
        let lab = &ev.labels[k * s2..(k + 1) * s2];
        assert!(lab.contains(&1), "a cosmic in event {k}");
        assert!(lab.iter().all(|&l| l != 2));
    }
    let bg: Vec<f32> = ev
        .images
        .iter()
        .zip(&ev.labels)
        .filter(|(_, &l)| l == 0)
        .map(|(&v, _)| v)
        .collect();
    // Clipped N(0, 0.01²) has mean 0.01/√(2π) ≈ 0.004 on true-zero pixels.
    let mean = bg.iter().map(|&v| v as f64).sum::<f64>() / bg.len() as f64;
    assert!(
        (mean - 0.01 / (2.0 * std::f64::consts::PI).sqrt()).abs() < 0.001,
        "{mean}"
    );
}

#[test]
fn bad_config_is_named() {
    let c = SimConfig {
        pitch_cm: -1.0,
        ..SimConfig::default()
    };
    let e = simulate(&c, 1, 0).unwrap_err().to_string();
    assert!(e.contains("pitch_cm"), "{e}");
    let c = SimConfig {
        class_weights: [0.0; 4],
        ..SimConfig::default()
    };
    assert!(simulate(&c, 1, 0)
        .unwrap_err()
        .to_string()
        .contains("class_weights"));
}
