//! Reading event images: the simulator's NPY files or the user's own (e.g. PILArNet crops
//! scaled to [0, 1]), with optional pixel labels.

use std::path::{Path, PathBuf};

use super::params::{label_legend, EVENT_CLASSES, PIXEL_CLASSES};
use super::segment::Labelled;
use crate::data::read_npy_array;
use crate::error::{Error, Result};

/// Square single-channel event images with optional pixel labels.
#[derive(Clone, Debug, PartialEq)]
pub struct EventImages {
    /// Image side.
    pub size: usize,
    /// N·size² pixel values in [0, 1].
    pub images: Vec<f32>,
    /// N·size² pixel labels (0 background, 1 track, 2 shower), when known.
    pub labels: Option<Vec<u8>>,
    /// The file the images came from.
    pub path: PathBuf,
}

impl EventImages {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.images.len() / (self.size * self.size).max(1)
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events `range` (clamped to what there is).
    pub fn slice(&self, range: std::ops::Range<usize>) -> EventImages {
        let s2 = self.size * self.size;
        let (a, b) = (range.start.min(self.len()), range.end.min(self.len()));
        EventImages {
            size: self.size,
            images: self.images[a * s2..b * s2].to_vec(),
            labels: self.labels.as_ref().map(|l| l[a * s2..b * s2].to_vec()),
            path: self.path.clone(),
        }
    }

    /// The images with their labels, or an error naming the file when it has none.
    pub fn labelled(&self) -> Result<Labelled<'_>> {
        let labels = self.labels.as_deref().ok_or_else(|| {
            Error::data(
                &self.path,
                "no pixel labels: give npy:<images>,<pixel labels> (the simulator writes <name>-pixels.npy)",
            )
        })?;
        Ok(Labelled {
            size: self.size,
            images: &self.images,
            labels,
        })
    }
}

/// Reads `images` (N×1×S×S or N×S×S; float in [0, 1] or uint8 scaled by 1/255) and, when given,
/// `labels` (N×S×S or N×1×S×S integers 0, 1, 2).
pub fn read_event_images(images: &Path, labels: Option<&Path>) -> Result<EventImages> {
    let a = read_npy_array(images)?;
    let (n, s) = square_events(&a.shape).ok_or_else(|| {
        Error::data(
            images,
            format!(
                "array of shape {:?}; expected square events N×1×S×S or N×S×S",
                a.shape
            ),
        )
    })?;
    let pixels: Vec<f32> = if a.is_u8 {
        a.data.iter().map(|v| v / 255.0).collect()
    } else {
        if let Some(v) = a.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(Error::data(
                images,
                format!("event pixel values must lie in [0, 1] (scale charge first); found {v}"),
            ));
        }
        a.data
    };
    let labels = match labels {
        Some(p) => {
            let l = read_npy_array(p)?;
            if square_events(&l.shape) != Some((n, s)) {
                return Err(Error::data(
                    p,
                    format!("labels of shape {:?} for {n} events of {s}×{s}", l.shape),
                ));
            }
            Some(named_labels(p, &l.data, "pixel label", &PIXEL_CLASSES)?)
        }
        None => None,
    };
    Ok(EventImages {
        size: s,
        images: pixels,
        labels,
        path: images.to_path_buf(),
    })
}

/// The event classes of `ev` from `<stem>-labels.npy` beside its images (as `physics simulate`
/// and `sample --class data` write them), if that file exists.
pub fn classes_beside(ev: &EventImages) -> Result<Option<Vec<u8>>> {
    let path = crate::data::sibling_npy(&ev.path, "labels");
    if !path.exists() {
        return Ok(None);
    }
    read_event_classes(&path, ev.len()).map(Some)
}

/// Reads the event classes of `n` events (a length-`n` array of integers 0 track, 1 shower,
/// 2 mixed, 3 background, as `physics simulate` and `sample --class data` write them).
pub fn read_event_classes(path: &Path, n: usize) -> Result<Vec<u8>> {
    let a = read_npy_array(path)?;
    if a.data.len() != n {
        return Err(Error::data(
            path,
            format!(
                "{} event classes (shape {:?}) for {n} events",
                a.data.len(),
                a.shape
            ),
        ));
    }
    named_labels(path, &a.data, "event class", &EVENT_CLASSES)
}

/// `data` (read from `path`) as labels 0..`names.len()`, or an error naming the file, the first
/// value that is not one of them, and what each label means.
fn named_labels(path: &Path, data: &[f32], what: &str, names: &[&str]) -> Result<Vec<u8>> {
    if let Some(v) = data
        .iter()
        .find(|v| v.fract() != 0.0 || !(0.0..names.len() as f32).contains(*v))
    {
        return Err(Error::data(
            path,
            format!("{what} {v}; expected {}", label_legend(names)),
        ));
    }
    Ok(data.iter().map(|&v| v as u8).collect())
}

fn square_events(shape: &[usize]) -> Option<(usize, usize)> {
    match shape {
        [n, h, w] | [n, 1, h, w] if h == w && *h > 0 => Some((*n, *h)),
        _ => None,
    }
}

/// Parses `npy:<images>[,<pixel labels>]` (or a bare path); with no labels named, the
/// simulator's `<stem>-pixels.npy` beside the images is used when it exists.
pub fn load_event_images(spec: &str) -> Result<EventImages> {
    let rest = spec.strip_prefix("npy:").unwrap_or(spec);
    let mut parts = rest.splitn(2, ',');
    let images = PathBuf::from(parts.next().unwrap_or_default());
    let labels = match parts.next() {
        Some(l) => Some(PathBuf::from(l)),
        None => Some(crate::data::sibling_npy(&images, "pixels")).filter(|p| p.exists()),
    };
    read_event_images(&images, labels.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::write_npy_shaped;

    #[test]
    fn reads_simulated_events_and_rejects_bad_files() {
        let dir = crate::test_dir::TestDir::new("physio");
        let cfg = crate::physics::SimConfig {
            size: 16,
            ..Default::default()
        };
        let ev = crate::physics::simulate(&cfg, 5, 0).unwrap();
        let path = dir.join("ev.npy");
        ev.write(&path).unwrap();
        let back = load_event_images(&format!("npy:{}", path.display())).unwrap();
        assert_eq!(back.size, 16);
        assert_eq!(back.images, ev.images);
        assert_eq!(back.labels.as_deref(), Some(ev.labels.as_slice()));
        assert_eq!(back.slice(1..3).len(), 2);

        let bad = dir.join("bad.npy");
        write_npy_shaped(&bad, &[0.5; 2 * 4 * 5], &[2, 4, 5]).unwrap();
        let e = load_event_images(bad.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.npy") && e.contains("square"), "{e}");
        write_npy_shaped(&bad, &[2.0; 2 * 4 * 4], &[2, 4, 4]).unwrap();
        let e = load_event_images(bad.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("[0, 1]"), "{e}");
        let lab = dir.join("lab.npy");
        write_npy_shaped(&lab, &[3.0; 5 * 16 * 16], &[5, 16, 16]).unwrap();
        let spec = format!("npy:{},{}", path.display(), lab.display());
        let e = load_event_images(&spec).unwrap_err().to_string();
        assert!(e.contains("lab.npy") && e.contains("pixel label 3"), "{e}");
        let unl = dir.join("plain.npy");
        write_npy_shaped(&unl, &ev.images, &[5, 16, 16]).unwrap();
        let plain = load_event_images(unl.to_str().unwrap()).unwrap();
        assert!(plain
            .labelled()
            .unwrap_err()
            .to_string()
            .contains("no pixel labels"));
    }

    #[test]
    fn reads_event_classes_and_names_the_file_when_they_do_not_fit() {
        let dir = crate::test_dir::TestDir::new("physio-classes");
        let p = dir.join("c.npy");
        write_npy_shaped(&p, &[0.0, 1.0, 2.0, 3.0, 1.0], &[5]).unwrap();
        assert_eq!(read_event_classes(&p, 5).unwrap(), vec![0, 1, 2, 3, 1]);
        let e = read_event_classes(&p, 6).unwrap_err().to_string();
        assert!(
            e.contains("c.npy") && e.contains("5 event classes") && e.contains("6"),
            "{e}"
        );
        write_npy_shaped(&p, &[0.0, 1.5], &[2]).unwrap();
        let e = read_event_classes(&p, 2).unwrap_err().to_string();
        assert!(e.contains("c.npy") && e.contains("1.5"), "{e}");
        assert!(
            e.contains("expected 0 track, 1 shower, 2 mixed, 3 background"),
            "{e}"
        );
    }
}
