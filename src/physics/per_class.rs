//! The physics metrics per event class: the histograms of [`super::metrics`] computed on the
//! track-only, shower-only, mixed and background events separately, with the mean track-pixel
//! count, shower-pixel count and total charge of each class. A class-conditional generator is
//! asked for a class; this breakdown says which class's events go wrong and how (oversized
//! showers, tracks whose bends are labelled shower), where the pooled histograms only say that
//! something does.

use serde::Serialize;

use super::metrics::{compare_observables, observables, Observables, PhysicsComparison};
use super::params::{label_legend, EVENT_CLASSES};
use super::segment::Labelled;
use crate::error::{Error, Result};

/// Fewest events of a class in each set for its histograms to be compared.
pub const MIN_CLASS_EVENTS: usize = 4;

/// Mean per-event observables of a set of events.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassMeans {
    /// Number of events.
    pub events: usize,
    /// Mean track pixels per event.
    pub track_pixels: f64,
    /// Mean shower pixels per event.
    pub shower_pixels: f64,
    /// Mean zero-suppressed total charge per event.
    pub total_charge: f64,
}

impl ClassMeans {
    fn of(o: &Observables) -> Self {
        let n = o.track_pixels.len();
        let mean = |v: &[f64]| {
            if n == 0 {
                0.0
            } else {
                v.iter().sum::<f64>() / n as f64
            }
        };
        ClassMeans {
            events: n,
            track_pixels: mean(&o.track_pixels),
            shower_pixels: mean(&o.shower_pixels),
            total_charge: mean(&o.total_charge),
        }
    }
}

/// The physics figures of one event class.
#[derive(Clone, Debug, Serialize)]
pub struct ClassComparison {
    /// Class index (0 track, 1 shower, 2 mixed, 3 background).
    pub class: u8,
    /// Class name.
    pub name: &'static str,
    /// Means of the real events of the class (half B, the reference of every figure).
    pub real: ClassMeans,
    /// Means of the generated events of the class.
    pub generated: ClassMeans,
    /// Histograms of generated vs real half B beside real half A vs B, restricted to the class;
    /// absent when a set has fewer than [`MIN_CLASS_EVENTS`] events of it.
    pub figures: Option<PhysicsComparison>,
}

/// Labelled events with their event classes.
#[derive(Clone, Copy, Debug)]
pub struct ClassedEvents<'a> {
    /// Images and pixel labels.
    pub events: Labelled<'a>,
    /// One event class per event.
    pub classes: &'a [u8],
}

impl ClassedEvents<'_> {
    /// Images and pixel labels of the events of class `c`.
    fn select(&self, c: u8) -> (Vec<f32>, Vec<u8>) {
        let s2 = self.events.size * self.events.size;
        let (mut images, mut labels) = (vec![], vec![]);
        for k in (0..self.classes.len()).filter(|&k| self.classes[k] == c) {
            images.extend_from_slice(&self.events.images[k * s2..(k + 1) * s2]);
            labels.extend_from_slice(&self.events.labels[k * s2..(k + 1) * s2]);
        }
        (images, labels)
    }

    fn observables_of(&self, c: u8, threshold: f64) -> Result<Observables> {
        let (images, labels) = self.select(c);
        observables(
            Labelled {
                size: self.events.size,
                images: &images,
                labels: &labels,
            },
            threshold,
        )
    }
}

/// Compares generated events `f` with real halves `a` and `b` class by class (every class that
/// occurs in any set, in class order); `threshold` zero-suppresses the charge, `bins` bins the
/// histograms over the real events of the class.
pub fn compare_by_class(
    a: ClassedEvents,
    b: ClassedEvents,
    f: ClassedEvents,
    threshold: f64,
    bins: usize,
) -> Result<Vec<ClassComparison>> {
    for (set, name) in [(&a, "real half A"), (&b, "real half B"), (&f, "generated")] {
        if set.classes.len() != set.events.len() {
            return Err(Error::Shape(format!(
                "{name}: {} event classes for {} events",
                set.classes.len(),
                set.events.len()
            )));
        }
        if let Some(c) = set
            .classes
            .iter()
            .find(|&&c| c as usize >= EVENT_CLASSES.len())
        {
            return Err(Error::Shape(format!(
                "{name}: event class {c}; expected {}",
                label_legend(&EVENT_CLASSES)
            )));
        }
    }
    let mut out = vec![];
    for (c, name) in EVENT_CLASSES.iter().enumerate() {
        let c = c as u8;
        if ![&a, &b, &f].iter().any(|s| s.classes.contains(&c)) {
            continue;
        }
        let (oa, ob, of) = (
            a.observables_of(c, threshold)?,
            b.observables_of(c, threshold)?,
            f.observables_of(c, threshold)?,
        );
        let enough = [&oa, &ob, &of]
            .iter()
            .all(|o| o.track_pixels.len() >= MIN_CLASS_EVENTS);
        out.push(ClassComparison {
            class: c,
            name,
            real: ClassMeans::of(&ob),
            generated: ClassMeans::of(&of),
            figures: if enough {
                Some(compare_observables(&oa, &ob, &of, bins)?)
            } else {
                None
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::{simulate, Events, SimConfig};

    fn classed(ev: &Events) -> ClassedEvents<'_> {
        ClassedEvents {
            events: Labelled {
                size: ev.size,
                images: &ev.images,
                labels: &ev.labels,
            },
            classes: &ev.classes,
        }
    }

    #[test]
    fn each_class_is_compared_with_its_own_events() {
        let cfg = SimConfig::default();
        let th = cfg.label_threshold;
        let (a, b, f) = (
            simulate(&cfg, 1200, 1).unwrap(),
            simulate(&cfg, 1200, 2).unwrap(),
            simulate(&cfg, 1200, 3).unwrap(),
        );
        let same = compare_by_class(classed(&a), classed(&b), classed(&f), th, 30).unwrap();
        let present: Vec<u8> = (0..4u8).filter(|c| b.classes.contains(c)).collect();
        assert_eq!(same.iter().map(|c| c.class).collect::<Vec<_>>(), present);
        for cc in &same {
            // The means are those of the class's own events.
            let ids: Vec<usize> = (0..f.len()).filter(|&k| f.classes[k] == cc.class).collect();
            assert_eq!(cc.generated.events, ids.len());
            let s2 = f.size * f.size;
            let showers: usize = ids
                .iter()
                .map(|&k| {
                    f.labels[k * s2..(k + 1) * s2]
                        .iter()
                        .filter(|&&l| l == 2)
                        .count()
                })
                .sum();
            let want = showers as f64 / ids.len() as f64;
            assert!((cc.generated.shower_pixels - want).abs() < 1e-9, "{cc:?}");
            // Independent draws of one simulation: every χ² near its floor.
            let figs = cc.figures.as_ref().unwrap();
            for h in [&figs.track_pixels, &figs.shower_pixels, &figs.total_charge] {
                assert!(
                    h.value.chi2 < 3.0 * h.real_vs_real.chi2 + 0.03,
                    "{} {h:?}",
                    cc.name
                );
            }
        }
        let track = same.iter().find(|c| c.class == 0).unwrap();
        let shower = same.iter().find(|c| c.class == 1).unwrap();
        // Track-only events have no shower pixels; shower-only ones have tracks only from
        // cosmic muons (a fifth of the events).
        assert!(track.real.track_pixels > 100.0 && track.real.shower_pixels == 0.0);
        assert!(
            shower.real.shower_pixels > 3.0 * shower.real.track_pixels,
            "{shower:?}"
        );

        // Generated events filed under the wrong classes (track ↔ shower): the pooled histograms
        // cannot see it, the per-class ones must.
        let swapped: Vec<u8> = f
            .classes
            .iter()
            .map(|&c| match c {
                0 => 1,
                1 => 0,
                c => c,
            })
            .collect();
        let wrong = ClassedEvents {
            classes: &swapped,
            ..classed(&f)
        };
        let bad = compare_by_class(classed(&a), classed(&b), wrong, th, 30).unwrap();
        let t = bad.iter().find(|c| c.class == 0).unwrap();
        let h = &t.figures.as_ref().unwrap().shower_pixels;
        assert!(h.value.chi2 > 10.0 * h.real_vs_real.chi2, "{h:?}");
        assert!(t.real.shower_pixels == 0.0 && t.generated.shower_pixels > 50.0);
    }

    #[test]
    fn rare_classes_get_means_without_histograms_and_bad_classes_are_errors() {
        let cfg = SimConfig {
            class_weights: [0.5, 0.5, 0.0, 0.0],
            ..SimConfig::default()
        };
        let ev = simulate(&cfg, 40, 5).unwrap();
        let mut few = ev.classes.clone();
        // Exactly two background events in the generated set.
        few.iter_mut().take(2).for_each(|c| *c = 3);
        let f = ClassedEvents {
            classes: &few,
            ..classed(&ev)
        };
        let out = compare_by_class(classed(&ev), classed(&ev), f, cfg.label_threshold, 10).unwrap();
        let bg = out.iter().find(|c| c.class == 3).unwrap();
        assert_eq!((bg.generated.events, bg.real.events), (2, 0));
        assert!(bg.figures.is_none());

        let short = &ev.classes[..39];
        let e = compare_by_class(
            classed(&ev),
            ClassedEvents {
                classes: short,
                ..classed(&ev)
            },
            classed(&ev),
            0.02,
            10,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("real half B") && e.contains("39"), "{e}");
        let mut seven = ev.classes.clone();
        seven[0] = 7;
        let e = compare_by_class(
            classed(&ev),
            classed(&ev),
            ClassedEvents {
                classes: &seven,
                ..classed(&ev)
            },
            0.02,
            10,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("generated") && e.contains("class 7"), "{e}");
    }
}
