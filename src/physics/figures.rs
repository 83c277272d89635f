//! Event displays: grids of events coloured by pixel label (track orange, shower blue), with
//! brightness √value so that minimum-ionising tracks stay visible beside shower cores.

use std::path::Path;

use crate::error::{Error, Result};
use crate::plot::image_grid;

/// Label colours (RGB in [0, 1]): background grey, track orange, shower blue.
const COLOURS: [[f32; 3]; 3] = [[0.85, 0.85, 0.85], [1.0, 0.55, 0.1], [0.2, 0.6, 1.0]];

/// Writes a PNG grid of `images` (N·S² values in [0, 1]), coloured by `labels` when given (for
/// generated events, the labels SSNet assigns).
pub fn event_grid(path: &Path, images: &[f32], labels: Option<&[u8]>, size: usize) -> Result<()> {
    let s2 = size * size;
    if s2 == 0
        || !images.len().is_multiple_of(s2)
        || labels.is_some_and(|l| l.len() != images.len())
    {
        return Err(Error::Shape(format!(
            "event grid: {} pixel values and {:?} labels for {size}×{size} events",
            images.len(),
            labels.map(|l| l.len())
        )));
    }
    let n = images.len() / s2;
    let mut rgb = vec![0f32; 3 * images.len()];
    for k in 0..n {
        for p in 0..s2 {
            let v = images[k * s2 + p].clamp(0.0, 1.0).sqrt();
            let c = COLOURS[labels.map_or(0, |l| l[k * s2 + p] as usize).min(2)];
            for ch in 0..3 {
                rgb[(3 * k + ch) * s2 + p] = 2.0 * v * c[ch] - 1.0;
            }
        }
    }
    image_grid(path, &rgb, [3, size, size], 3)
}
