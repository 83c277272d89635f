//! The particle-physics application: a fast generative surrogate for liquid-argon TPC images
//! (Imani, Aeron & Wongjirad 2023, arXiv:2307.13687). A seeded event simulator (tracks with
//! multiple scattering and Bragg peaks, electromagnetic showers, cosmic muons, diffusion,
//! noise) provides ground truth with per-pixel labels; a segmentation network (SSNet) labels
//! pixels track/shower; histogram and wavelet metrics compare generated with simulated events.

pub mod event;
pub mod figures;
pub mod finetune;
pub mod histograms;
pub mod io;
pub mod metrics;
pub mod params;
pub mod per_class;
pub mod render;
pub mod segment;
pub mod shower;
pub mod ssnet;
pub mod table;
pub mod transport;
pub mod unweight;
pub mod wavelet;

use std::path::{Path, PathBuf};

use crate::data::write_npy_shaped;
use crate::error::Result;
use crate::rng::Rng;

pub use event::{simulate_event, Event, EventClass};
pub use params::SimConfig;

/// A batch of events: images, event classes and pixel labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Events {
    /// Image side in pixels.
    pub size: usize,
    /// N·size² pixel values in [0, 1].
    pub images: Vec<f32>,
    /// Event class per event (see [`params::EVENT_CLASSES`]).
    pub classes: Vec<u8>,
    /// N·size² pixel labels (see [`params::PIXEL_CLASSES`]).
    pub labels: Vec<u8>,
}

impl Events {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Writes `<out>` (N×1×S×S images), `<out stem>-labels.npy` (event classes, the label file
    /// `train --data npy:<images>,<labels>` reads) and `<out stem>-pixels.npy` (N×S×S pixel
    /// labels); returns the two extra paths.
    pub fn write(&self, out: &Path) -> Result<(PathBuf, PathBuf)> {
        let (n, s) = (self.len(), self.size);
        write_npy_shaped(out, &self.images, &[n, 1, s, s])?;
        let classes = crate::data::sibling_npy(out, "labels");
        let classes_f: Vec<f32> = self.classes.iter().map(|&c| c as f32).collect();
        write_npy_shaped(&classes, &classes_f, &[n])?;
        let pixels = crate::data::sibling_npy(out, "pixels");
        let labels_f: Vec<f32> = self.labels.iter().map(|&c| c as f32).collect();
        write_npy_shaped(&pixels, &labels_f, &[n, s, s])?;
        Ok((classes, pixels))
    }
}

/// Simulates `num` events from `seed` (event k uses its own stream, so a run is reproducible
/// and any prefix of a larger run is the smaller run).
pub fn simulate(cfg: &SimConfig, num: usize, seed: u64) -> Result<Events> {
    cfg.validate()?;
    let s2 = cfg.size * cfg.size;
    crate::tensor::check_allocatable(num, 2 * s2, &format!("{num} events of {s2} pixels"))?;
    let mut master = Rng::new(seed);
    let mut out = Events {
        size: cfg.size,
        images: Vec::with_capacity(num * s2),
        classes: Vec::with_capacity(num),
        labels: Vec::with_capacity(num * s2),
    };
    for _ in 0..num {
        let mut rng = master.fork();
        let e = simulate_event(cfg, &mut rng);
        out.images.extend_from_slice(&e.image);
        out.labels.extend_from_slice(&e.labels);
        out.classes.push(e.class as u8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
