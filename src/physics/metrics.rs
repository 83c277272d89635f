//! Physics metrics of generated events (Imani et al. 2023; the reference slides): SSNet labels
//! every pixel of real and generated events, and normalised histograms of per-event
//! track-pixel count, shower-pixel count, zero-suppressed total charge and the pixel-charge
//! spectrum are compared by squared error, MSE, RMSE and χ², each beside the same figure between
//! two halves of the real events; so are the mean per-scale wavelet energy spectra of the showers, and the
//! FID/KID/precision/recall of SSNet's pooled features.

use burn::tensor::backend::Backend;
use serde::Serialize;

use super::histograms::{Binning, HistogramDistance};
use super::per_class::{compare_by_class, ClassComparison, ClassedEvents};
use super::segment::{segment_with, ssnet_features, Labelled, Labelling};
use super::ssnet::Ssnet;
use super::wavelet::{energy_spectrum, Wavelet};
use crate::error::{Error, Result};
use crate::eval::{feature_figures, FeatureFigures};
use crate::rng::Rng;

/// Per-event observables of a set of labelled events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observables {
    /// Track pixels per event.
    pub track_pixels: Vec<f64>,
    /// Shower pixels per event.
    pub shower_pixels: Vec<f64>,
    /// Zero-suppressed charge per event: the sum of the pixel values at or above the threshold
    /// (what a readout with that threshold records; sub-threshold haze of a generator, invisible
    /// to such a readout and to SSNet's labels, does not count).
    pub total_charge: Vec<f64>,
    /// Value of every pixel at or above the threshold.
    pub pixel_charge: Vec<f64>,
    /// Mean normalised wavelet energy spectrum of the shower pixels, per wavelet (events
    /// without shower pixels do not count); `None` when no event has any.
    pub shower_spectra: [Option<Vec<f64>>; 2],
}

/// The wavelets whose spectra are compared, in [`Observables::shower_spectra`] order.
pub const WAVELETS: [Wavelet; 2] = [Wavelet::Haar, Wavelet::Db4];

/// How much of [`Observables`] to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// The per-event values only (track pixels, shower pixels, total charge), what unweighting
    /// and the observable table read: `pixel_charge` stays empty and `shower_spectra` `None`,
    /// which saves the two wavelet transforms of every event with showers.
    PerEvent,
    /// Everything, the pixel-charge spectrum and the wavelet spectra included.
    Full,
}

/// Observables of `events` (labels from SSNet for generated events, or the simulator's).
pub fn observables(events: Labelled, threshold: f64) -> Result<Observables> {
    observables_with(events, threshold, Detail::Full)
}

/// Observables of `events` to the given [`Detail`].
pub fn observables_with(events: Labelled, threshold: f64, detail: Detail) -> Result<Observables> {
    let full = detail == Detail::Full;
    let s2 = events.size * events.size;
    let mut o = Observables::default();
    let mut spectra = [vec![], vec![]];
    let mut with_showers = 0usize;
    let mut shower_img = vec![0.0f64; s2];
    for k in 0..events.len() {
        let img = &events.images[k * s2..(k + 1) * s2];
        let lab = &events.labels[k * s2..(k + 1) * s2];
        o.track_pixels
            .push(lab.iter().filter(|&&l| l == 1).count() as f64);
        let showers = lab.iter().filter(|&&l| l == 2).count();
        o.shower_pixels.push(showers as f64);
        o.total_charge.push(
            img.iter()
                .map(|&v| v as f64)
                .filter(|&v| v >= threshold)
                .sum(),
        );
        if !full {
            continue;
        }
        o.pixel_charge
            .extend(img.iter().map(|&v| v as f64).filter(|&v| v >= threshold));
        if showers > 0 {
            with_showers += 1;
            for ((s, &v), &l) in shower_img.iter_mut().zip(img).zip(lab) {
                *s = if l == 2 { v as f64 } else { 0.0 };
            }
            for (w, acc) in WAVELETS.iter().zip(spectra.iter_mut()) {
                let e = energy_spectrum(*w, &shower_img, events.size)?;
                if acc.is_empty() {
                    *acc = vec![0.0; e.len()];
                }
                acc.iter_mut().zip(&e).for_each(|(a, v)| *a += v);
            }
        }
    }
    for (slot, acc) in o.shower_spectra.iter_mut().zip(spectra) {
        *slot = (with_showers > 0).then(|| acc.iter().map(|v| v / with_showers as f64).collect());
    }
    Ok(o)
}

/// Zero suppression as a readout with threshold `threshold` applies it: every non-zero pixel
/// below the threshold becomes 0 (the pixels at or above it keep their values, which the
/// histograms of [`observables`] already count alone).
pub fn zero_suppress(images: &mut [f32], threshold: f64) -> Suppressed {
    let mut s = Suppressed::default();
    for v in images.iter_mut().filter(|v| **v != 0.0) {
        s.nonzero += 1;
        if (*v as f64) < threshold {
            *v = 0.0;
            s.zeroed += 1;
        }
    }
    s
}

/// What [`zero_suppress`] did: the non-zero pixels it found, and how many of them it zeroed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// Non-zero pixels before suppression.
    pub nonzero: usize,
    /// Of those, the pixels below the threshold, now zero.
    pub zeroed: usize,
}

/// A histogram comparison: the distances of generated vs real, and of real vs real.
#[derive(Clone, Debug, Serialize)]
pub struct HistogramFigure {
    /// The bins (for spectra: one per wavelet scale, finest first, then the approximation).
    pub binning: Option<Binning>,
    /// Generated vs real half B.
    pub value: HistogramDistance,
    /// Real half A vs real half B.
    pub real_vs_real: HistogramDistance,
    /// The normalised histograms (real B, generated), for plots.
    pub real: Vec<f64>,
    /// Generated histogram.
    pub generated: Vec<f64>,
}

/// Every physics figure of a generated set.
#[derive(Clone, Debug, Serialize)]
pub struct PhysicsComparison {
    /// Events per set (generated, and each real half).
    pub num_events: usize,
    /// Per-event track-pixel count.
    pub track_pixels: HistogramFigure,
    /// Per-event shower-pixel count.
    pub shower_pixels: HistogramFigure,
    /// Per-event total charge.
    pub total_charge: HistogramFigure,
    /// Pixel-charge spectrum (pixels at or above the threshold).
    pub pixel_charge: HistogramFigure,
    /// Mean Haar energy spectrum of the showers (absent when a set has no shower pixels).
    pub wavelet_haar: Option<HistogramFigure>,
    /// Mean Daubechies-4 energy spectrum of the showers.
    pub wavelet_db4: Option<HistogramFigure>,
    /// FID, KID, precision/recall of SSNet's pooled deepest features.
    pub ssnet_features: Option<FeatureFigures>,
    /// The figures per event class, when the event classes are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_class: Option<Vec<ClassComparison>>,
}

impl PhysicsComparison {
    /// The largest generated-vs-real χ² over the four histograms (the target is ≤ 0.015).
    pub fn max_chi2(&self) -> f64 {
        [
            &self.track_pixels,
            &self.shower_pixels,
            &self.total_charge,
            &self.pixel_charge,
        ]
        .iter()
        .map(|h| h.value.chi2)
        .fold(0.0, f64::max)
    }
}

fn histogram_figure(a: &[f64], b: &[f64], f: &[f64], bins: usize) -> Result<HistogramFigure> {
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let binning = Binning::spanning(&all, bins)?;
    let (ha, hb, hf) = (
        binning.normalised(a),
        binning.normalised(b),
        binning.normalised(f),
    );
    Ok(HistogramFigure {
        binning: Some(binning),
        value: HistogramDistance::between(&hf, &hb)?,
        real_vs_real: HistogramDistance::between(&ha, &hb)?,
        real: hb,
        generated: hf,
    })
}

fn spectrum_figure(
    a: &Option<Vec<f64>>,
    b: &Option<Vec<f64>>,
    f: &Option<Vec<f64>>,
) -> Result<Option<HistogramFigure>> {
    let (Some(a), Some(b), Some(f)) = (a, b, f) else {
        return Ok(None);
    };
    Ok(Some(HistogramFigure {
        binning: None,
        value: HistogramDistance::between(f, b)?,
        real_vs_real: HistogramDistance::between(a, b)?,
        real: b.clone(),
        generated: f.clone(),
    }))
}

/// Compares the observables of generated events `f` with real halves `a` and `b` (binning over
/// the real events, `bins` bins).
pub fn compare_observables(
    a: &Observables,
    b: &Observables,
    f: &Observables,
    bins: usize,
) -> Result<PhysicsComparison> {
    Ok(PhysicsComparison {
        num_events: f.track_pixels.len(),
        track_pixels: histogram_figure(&a.track_pixels, &b.track_pixels, &f.track_pixels, bins)?,
        shower_pixels: histogram_figure(
            &a.shower_pixels,
            &b.shower_pixels,
            &f.shower_pixels,
            bins,
        )?,
        total_charge: histogram_figure(&a.total_charge, &b.total_charge, &f.total_charge, bins)?,
        pixel_charge: histogram_figure(&a.pixel_charge, &b.pixel_charge, &f.pixel_charge, bins)?,
        wavelet_haar: spectrum_figure(
            &a.shower_spectra[0],
            &b.shower_spectra[0],
            &f.shower_spectra[0],
        )?,
        wavelet_db4: spectrum_figure(
            &a.shower_spectra[1],
            &b.shower_spectra[1],
            &f.shower_spectra[1],
        )?,
        ssnet_features: None,
        per_class: None,
    })
}

/// Labels `real` and `fake` (N·S² pixel values) with SSNet, splits the real events randomly into
/// halves A and B of m events, takes m generated events (m ≤ `max_events`), and reports every
/// figure of (generated, B) beside (A, B). With `classes` (one event class per real and per
/// generated event) it also breaks the figures down by event class
/// ([`PhysicsComparison::per_class`]).
pub fn compare_events<B: Backend>(
    net: &Ssnet<B>,
    labelling: Labelling,
    size: usize,
    real: &[f32],
    fake: &[f32],
    classes: Option<(&[u8], &[u8])>,
    max_events: usize,
    bins: usize,
    rng: &mut Rng,
    device: &B::Device,
) -> Result<PhysicsComparison> {
    let s2 = size * size;
    let (nr, nf) = (real.len() / s2.max(1), fake.len() / s2.max(1));
    let m = (nr / 2).min(nf).min(max_events);
    if m < 4 {
        return Err(Error::Shape(format!(
            "need at least 8 real and 4 generated events, got {nr} and {nf}"
        )));
    }
    if let Some((rc, fc)) = classes {
        if rc.len() != nr || fc.len() != nf {
            return Err(Error::Shape(format!(
                "{} and {} event classes for {nr} real and {nf} generated events",
                rc.len(),
                fc.len()
            )));
        }
    }
    let idx = rng.permutation(nr);
    let pick = |ids: &[usize]| -> Vec<f32> {
        ids.iter()
            .flat_map(|&i| real[i * s2..(i + 1) * s2].iter().copied())
            .collect()
    };
    let (ia, ib) = (pick(&idx[..m]), pick(&idx[m..2 * m]));
    let iff = fake[..m * s2].to_vec();
    let label = |images: &[f32]| segment_with(net, images, size, labelling, device);
    let (la, lb, lf) = (label(&ia), label(&ib), label(&iff));
    let set = |images, labels| Labelled {
        size,
        images,
        labels,
    };
    let (sa, sb, sf) = (set(&ia, &la), set(&ib, &lb), set(&iff, &lf));
    let obs = |l: Labelled| observables(l, labelling.threshold);
    let mut out = compare_observables(&obs(sa)?, &obs(sb)?, &obs(sf)?, bins)?;
    if let Some((rc, fc)) = classes {
        let (ca, cb): (Vec<u8>, Vec<u8>) = (
            idx[..m].iter().map(|&i| rc[i]).collect(),
            idx[m..2 * m].iter().map(|&i| rc[i]).collect(),
        );
        let classed = |events, classes| ClassedEvents { events, classes };
        out.per_class = Some(compare_by_class(
            classed(sa, &ca),
            classed(sb, &cb),
            classed(sf, &fc[..m]),
            labelling.threshold,
            bins,
        )?);
    }
    let feats = |images: &[f32]| ssnet_features(net, images, size, device);
    out.ssnet_features = Some(feature_figures(
        &feats(&ia),
        &feats(&ib),
        &feats(&iff),
        m,
        rng,
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::{simulate, SimConfig};

    fn obs(cfg: &SimConfig, n: usize, seed: u64) -> Observables {
        let ev = simulate(cfg, n, seed).unwrap();
        let l = Labelled {
            size: ev.size,
            images: &ev.images,
            labels: &ev.labels,
        };
        observables(l, cfg.label_threshold).unwrap()
    }

    #[test]
    fn observables_count_what_the_labels_say() {
        let images = [0.0f32, 0.5, 0.3, 0.01, 0.2, 0.0, 0.9, 0.1];
        let labels = [0u8, 1, 2, 0, 2, 0, 2, 1];
        let o = observables(
            Labelled {
                size: 2,
                images: &images,
                labels: &labels,
            },
            0.02,
        )
        .unwrap();
        assert_eq!(o.track_pixels, vec![1.0, 1.0]);
        assert_eq!(o.shower_pixels, vec![1.0, 2.0]);
        // The 0.01 pixel is below the threshold: zero-suppressed.
        assert!((o.total_charge[0] - 0.8).abs() < 1e-6 && (o.total_charge[1] - 1.2).abs() < 1e-6);
        assert_eq!(o.pixel_charge.len(), 5);
        let haar = o.shower_spectra[0].as_ref().unwrap();
        assert!((haar.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn zero_suppression_zeroes_exactly_the_non_zero_pixels_below_the_threshold() {
        let mut px = [0.0f32, 0.001, 0.0199, 0.0201, 0.5, 1.0, 0.019];
        let s = zero_suppress(&mut px, 0.02);
        assert_eq!((s.zeroed, s.nonzero), (3, 6));
        assert_eq!(px, [0.0, 0.0, 0.0, 0.0201, 0.5, 1.0, 0.0]);
        // Idempotent, and what it removes the per-event observables never counted.
        let cfg = SimConfig::default();
        let mut ev = simulate(&cfg, 12, 5).unwrap();
        let o = |images: &[f32]| {
            let l = Labelled {
                size: ev.size,
                images,
                labels: &ev.labels,
            };
            observables(l, cfg.label_threshold).unwrap()
        };
        let before = o(&ev.images);
        let mut images = std::mem::take(&mut ev.images);
        assert!(zero_suppress(&mut images, cfg.label_threshold).zeroed > 0);
        assert_eq!(zero_suppress(&mut images, cfg.label_threshold).zeroed, 0);
        assert_eq!(o(&images), before);
    }

    #[test]
    fn per_event_detail_gives_the_full_per_event_values_and_nothing_else() {
        let cfg = SimConfig::default();
        let ev = simulate(&cfg, 24, 7).unwrap();
        let l = || Labelled {
            size: ev.size,
            images: &ev.images,
            labels: &ev.labels,
        };
        let full = observables_with(l(), cfg.label_threshold, Detail::Full).unwrap();
        let light = observables_with(l(), cfg.label_threshold, Detail::PerEvent).unwrap();
        assert!(full.shower_pixels.iter().any(|&s| s > 0.0) && full.shower_spectra[1].is_some());
        assert_eq!(light.track_pixels, full.track_pixels);
        assert_eq!(light.shower_pixels, full.shower_pixels);
        assert_eq!(light.total_charge, full.total_charge);
        assert!(light.pixel_charge.is_empty() && !full.pixel_charge.is_empty());
        assert_eq!(light.shower_spectra, [None, None]);
    }

    #[test]
    fn same_simulation_sits_at_the_floor_and_changed_physics_does_not() {
        let cfg = SimConfig::default();
        let (a, b) = (obs(&cfg, 2000, 1), obs(&cfg, 2000, 2));
        let same = compare_observables(&a, &b, &obs(&cfg, 2000, 3), 50).unwrap();
        // Independent draws of one simulation: every χ² is a noise floor of order (filled bins)/N.
        for h in [
            &same.track_pixels,
            &same.shower_pixels,
            &same.total_charge,
            &same.pixel_charge,
        ] {
            assert!(h.value.chi2 < 3.0 * h.real_vs_real.chi2 + 0.02, "{h:?}");
        }
        // Showers only, and 30 % less charge (a mis-calibrated generator): far above the floor.
        let showers = SimConfig {
            class_weights: [0.0, 1.0, 0.0, 0.0],
            ..cfg.clone()
        };
        let dim = SimConfig {
            charge_scale_mev: 3.0 / 0.7,
            ..cfg.clone()
        };
        let s = compare_observables(&a, &b, &obs(&showers, 2000, 3), 50).unwrap();
        let d = compare_observables(&a, &b, &obs(&dim, 2000, 3), 50).unwrap();
        assert!(
            s.track_pixels.value.chi2 > 5.0 * s.track_pixels.real_vs_real.chi2,
            "{:?}",
            s.track_pixels
        );
        assert!(
            d.pixel_charge.value.chi2 > 5.0 * d.pixel_charge.real_vs_real.chi2,
            "{:?}",
            d.pixel_charge
        );
        assert!(
            d.total_charge.value.chi2 > 2.0 * d.total_charge.real_vs_real.chi2,
            "{:?}",
            d.total_charge
        );
        assert!(s.max_chi2() > same.max_chi2());
        // Wavelet spectra: present for both and a proper distribution.
        let haar = same.wavelet_haar.unwrap();
        assert!((haar.real.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn per_class_figures_follow_the_real_split_and_the_generated_classes() {
        use burn::backend::Flex;
        let dev = Default::default();
        let net = crate::physics::ssnet::SsnetConfig {
            size: 8,
            base: 8,
            levels: 2,
        }
        .init::<Flex>(&dev);
        // 8×8 events whose brightness is set by their class: class k fills every pixel with
        // 0.1 + 0.3 k, so a class's mean total charge is 64 (0.1 + 0.3 k) exactly when every
        // event the breakdown files under class k is one of class k.
        let events = |classes: &[u8]| -> Vec<f32> {
            classes
                .iter()
                .flat_map(|&c| std::iter::repeat_n(0.1 + 0.3 * c as f32, 64))
                .collect()
        };
        let mut rng = Rng::new(3);
        let rc: Vec<u8> = (0..60).map(|_| (rng.uniform() * 3.0) as u8).collect();
        let fc: Vec<u8> = (0..25).map(|k| (k % 3) as u8).collect();
        let labelling = Labelling {
            threshold: 0.02,
            symmetric: false,
        };
        let mut rng = Rng::new(4);
        let (real, fake) = (events(&rc), events(&fc));
        let cmp = compare_events(
            &net,
            labelling,
            8,
            &real,
            &fake,
            Some((&rc, &fc)),
            20,
            10,
            &mut rng,
            &dev,
        )
        .unwrap();
        let per = cmp.per_class.unwrap();
        assert_eq!(per.len(), 3);
        let (mut real_n, mut fake_n) = (0, 0);
        for c in &per {
            let want = 64.0 * (0.1 + 0.3 * c.class as f64);
            for m in [&c.real, &c.generated] {
                assert!((m.total_charge - want).abs() < 1e-3, "{c:?}");
            }
            real_n += c.real.events;
            fake_n += c.generated.events;
        }
        // Half B has 20 events; the first 20 generated events are 7, 7 and 6 of classes 0, 1, 2.
        assert_eq!((real_n, fake_n), (20, 20));
        assert_eq!(
            per.iter().map(|c| c.generated.events).collect::<Vec<_>>(),
            vec![7, 7, 6]
        );
        let e = compare_events(
            &net,
            labelling,
            8,
            &real,
            &fake,
            Some((&rc[..59], &fc)),
            20,
            10,
            &mut Rng::new(4),
            &dev,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("59") && e.contains("60 real"), "{e}");
    }
}
