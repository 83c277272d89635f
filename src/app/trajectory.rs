//! Snapshots of a sampler's states for a trajectory figure: how noise becomes an image, one row
//! per sample and one column per moment of the reverse process (the figures of Song et al. 2021,
//! Fig. 1, and of Ho et al. 2020, Fig. 6).
//!
//! The number of states a sampler reports is not known in advance (predictor–corrector reports
//! two per step, the adaptive ODE solver one per accepted step), so the recorder keeps every
//! `stride`-th state and doubles the stride whenever it holds `2·frames` of them, dropping every
//! other one: at most `2·frames` snapshots in memory, evenly spaced over the whole run, and only
//! the kept states are copied off the device.

use std::path::Path;

use crate::data::Standardizer;
use crate::error::{Error, Result};

/// Most frames (columns) of a trajectory figure.
pub const MAX_FRAMES: usize = 100;

/// Evenly spaced snapshots of the first `rows` samples' states.
#[derive(Clone, Debug)]
pub struct TrajectoryRecorder {
    frames: usize,
    stride: usize,
    seen: usize,
    /// (time, the first rows' values, row-major) of each kept state, in order.
    kept: Vec<(f64, Vec<f32>)>,
}

impl TrajectoryRecorder {
    /// A recorder for a figure of `frames` columns, the last of which will be the final sample;
    /// `frames` must lie in 2..=[`MAX_FRAMES`].
    pub fn new(frames: usize) -> Result<Self> {
        if !(2..=MAX_FRAMES).contains(&frames) {
            return Err(Error::config(
                "frames",
                format!("{frames}: a trajectory needs between 2 and {MAX_FRAMES} frames"),
            ));
        }
        Ok(TrajectoryRecorder {
            frames,
            stride: 1,
            seen: 0,
            kept: Vec::new(),
        })
    }

    /// Offers the sampler's next state at time `t`; `values` is called (and the state copied)
    /// only when this state is kept.
    pub fn offer(&mut self, t: f64, values: impl FnOnce() -> Vec<f32>) {
        if self.seen.is_multiple_of(self.stride) {
            self.kept.push((t, values()));
            if self.kept.len() == 2 * self.frames {
                // Keep the states at multiples of the doubled stride.
                let mut i = 0;
                self.kept.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }

    /// States offered so far.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The figure's columns: `frames − 1` kept states evenly spaced from the first to the last
    /// kept one (fewer when fewer were kept), then `last`, the final samples (after the
    /// sampler's last denoising step). Each column is (time, values); `last` gets time 0.
    pub fn columns(self, last: Vec<f32>) -> Vec<(f64, Vec<f32>)> {
        let n = self.kept.len();
        let want = (self.frames - 1).min(n);
        let mut cols: Vec<(f64, Vec<f32>)> = Vec::with_capacity(want + 1);
        let mut kept: Vec<Option<(f64, Vec<f32>)>> = self.kept.into_iter().map(Some).collect();
        for j in 0..want {
            // Indices 0 … n − 1 at even spacing (both ends included when want ≥ 2).
            let i = if want == 1 {
                0
            } else {
                j * (n - 1) / (want - 1)
            };
            if let Some(c) = kept[i].take() {
                cols.push(c);
            }
        }
        cols.push((0.0, last));
        cols
    }
}

/// Rows (samples) of a trajectory figure: the first this many samples.
pub const TRAJECTORY_ROWS: usize = 16;

/// Writes the trajectory figure of `recorder` (standardised states of the first `rows` samples)
/// to `path`: one row per sample, from the earliest kept state on the left to `last` (the
/// first `rows` final samples, data coordinates) on the right, states mapped to data
/// coordinates by `standardizer` and shown as images of `shape` clamped to [−1, 1]. Returns the
/// diffusion time of each column, left to right (the last, the final samples, at 0).
pub fn write_trajectory_figure(
    path: &Path,
    recorder: TrajectoryRecorder,
    standardizer: &Standardizer,
    last: &[f32],
    rows: usize,
    shape: [usize; 3],
) -> Result<Vec<f64>> {
    let size: usize = shape.iter().product();
    let last = last.get(..rows * size).ok_or_else(|| {
        Error::Shape(format!(
            "trajectory: {} final values, fewer than {rows} images of {size}",
            last.len()
        ))
    })?;
    let cols = recorder.columns(last.to_vec());
    let n = cols.len();
    let times = cols.iter().map(|(t, _)| *t).collect();
    // Every column but the last holds standardised states.
    let data: Vec<Vec<f32>> = cols
        .into_iter()
        .enumerate()
        .map(|(j, (_, v))| {
            if j + 1 < n {
                standardizer.inverse(&v)
            } else {
                v
            }
        })
        .collect();
    let pixels = interleave(&data, rows, size)?;
    crate::plot::image_grid_columns(path, &pixels, shape, 2, n)?;
    Ok(times)
}

/// Interleaves `columns` (each `rows` images of `size` values, row-major) into the row-major
/// order of a figure with one row per image and one column per entry: image i of column j
/// lands at position i·columns + j.
pub fn interleave(columns: &[Vec<f32>], rows: usize, size: usize) -> Result<Vec<f32>> {
    if let Some(c) = columns.iter().find(|c| c.len() != rows * size) {
        return Err(Error::Shape(format!(
            "trajectory column of {} values, expected {rows} images of {size}",
            c.len()
        )));
    }
    let mut out = Vec::with_capacity(columns.len() * rows * size);
    for i in 0..rows {
        for c in columns {
            out.extend_from_slice(&c[i * size..(i + 1) * size]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers states 0, 1, …, n − 1 (each a one-value "image" holding its index).
    fn record(frames: usize, n: usize) -> TrajectoryRecorder {
        let mut r = TrajectoryRecorder::new(frames).unwrap();
        for k in 0..n {
            r.offer(1.0 - k as f64 / n as f64, || vec![k as f32]);
        }
        r
    }

    fn indices(cols: &[(f64, Vec<f32>)]) -> Vec<f32> {
        cols.iter().map(|(_, v)| v[0]).collect()
    }

    #[test]
    fn kept_states_are_evenly_spaced_whatever_the_number_offered() {
        // 1 000 states, 5 columns: 4 spread from the first to a late state, then the final one.
        let r = record(5, 1000);
        assert_eq!(r.seen(), 1000);
        assert!(r.kept.len() < 10 && r.kept.len() >= 5, "{}", r.kept.len());
        let stride = r.stride;
        let cols = r.columns(vec![-1.0]);
        let idx = indices(&cols);
        assert_eq!(idx.len(), 5);
        assert_eq!(idx[0], 0.0);
        assert_eq!(idx[4], -1.0);
        // Evenly spaced multiples of the stride, the last within one stride of the end.
        let gaps: Vec<f32> = idx[..4].windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g > 0.0 && g % stride as f32 == 0.0),
            "{idx:?}"
        );
        assert!(
            gaps.iter().all(|g| (g - gaps[0]).abs() <= stride as f32),
            "{idx:?}"
        );
        assert!(idx[3] >= (1000 - stride) as f32, "{idx:?} stride {stride}");
        // Times decrease with the index offered.
        assert!(cols[..4].windows(2).all(|w| w[1].0 < w[0].0));
    }

    #[test]
    fn short_runs_keep_every_state() {
        let cols = record(10, 3).columns(vec![9.0]);
        assert_eq!(indices(&cols), vec![0.0, 1.0, 2.0, 9.0]);
        // Exactly as many states as columns before the last: each kept once.
        let cols = record(4, 3).columns(vec![9.0]);
        assert_eq!(indices(&cols), vec![0.0, 1.0, 2.0, 9.0]);
    }

    #[test]
    fn only_kept_states_are_copied() {
        let mut r = TrajectoryRecorder::new(3).unwrap();
        let mut copies = 0;
        for k in 0..64 {
            r.offer(0.0, || {
                copies += 1;
                vec![k as f32]
            });
        }
        // A stride that doubles from 1 copies about 2·frames·log2(n / frames) states, not 64.
        assert!(copies < 30, "{copies}");
    }

    #[test]
    fn frame_counts_outside_the_range_are_refused() {
        for bad in [0, 1, MAX_FRAMES + 1] {
            let e = TrajectoryRecorder::new(bad).unwrap_err().to_string();
            assert!(e.contains("frames"), "{e}");
        }
    }

    #[test]
    fn interleaving_puts_one_sample_per_row() {
        // Two columns of three 2-value images.
        let a = vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0];
        let b = vec![10.0, 10.0, 11.0, 11.0, 12.0, 12.0];
        let out = interleave(&[a, b], 3, 2).unwrap();
        assert_eq!(
            out,
            vec![0.0, 0.0, 10.0, 10.0, 1.0, 1.0, 11.0, 11.0, 2.0, 2.0, 12.0, 12.0]
        );
        assert!(interleave(&[vec![0.0; 5]], 3, 2).is_err());
    }
}
