//! The figures scoregen draws.

use std::path::Path;

use super::canvas::{viridis, Bounds, Canvas, Rgb};
use crate::error::{Error, Result};

/// What the score-field figure shows (all in data coordinates).
pub struct ScoreFieldData {
    /// The view.
    pub bounds: Bounds,
    /// Log-density on a `grid × grid` lattice over `bounds` (row 0 at the top), if known.
    pub log_density: Option<(usize, Vec<f64>)>,
    /// Arrow tails and score vectors.
    pub arrows: Vec<([f64; 2], [f64; 2])>,
    /// Samples (row-major 2-D).
    pub samples: Vec<f32>,
    /// Langevin trajectories, each a polyline of 2-D points.
    pub trajectories: Vec<Vec<[f64; 2]>>,
}

const WHITE: Rgb = [255, 255, 255];
const ARROW: Rgb = [20, 20, 20];
const SAMPLE: Rgb = [230, 60, 40];
const TRAJ: Rgb = [255, 140, 0];

fn sample_grid(grid: usize, vals: &[f64], u: f64, v: f64) -> f64 {
    // Bilinear interpolation at fractional lattice coordinates (u right, v down).
    let g = grid as f64 - 1.0;
    let (u, v) = ((u * g).clamp(0.0, g), (v * g).clamp(0.0, g));
    let (i0, j0) = (u.floor() as usize, v.floor() as usize);
    let (i1, j1) = ((i0 + 1).min(grid - 1), (j0 + 1).min(grid - 1));
    let (fu, fv) = (u - i0 as f64, v - j0 as f64);
    let at = |i: usize, j: usize| vals[j * grid + i];
    (at(i0, j0) * (1.0 - fu) + at(i1, j0) * fu) * (1.0 - fv)
        + (at(i0, j1) * (1.0 - fu) + at(i1, j1) * fu) * fv
}

/// The score vector field over density contours, with samples and Langevin trajectories
/// (the mixture-of-two-Gaussians figure of the reference slides / Song's blog).
pub fn score_field_figure(path: &Path, data: &ScoreFieldData, size: usize) -> Result<()> {
    let mut c = Canvas::new(size, size, data.bounds, WHITE);
    if let Some((grid, logp)) = &data.log_density {
        // Colour by density relative to its maximum, on a log scale clipped at e^-12.
        let max = logp
            .iter()
            .cloned()
            .filter(|v| v.is_finite())
            .fold(f64::MIN, f64::max);
        let rel: Vec<f64> = logp
            .iter()
            .map(|v| ((v - max).max(-12.0) + 12.0) / 12.0)
            .collect();
        let levels: Vec<f64> = (1..12).map(|k| k as f64 / 12.0).collect();
        let mut level_map = vec![0usize; size * size];
        for py in 0..size {
            for px in 0..size {
                let v = sample_grid(
                    *grid,
                    &rel,
                    (px as f64 + 0.5) / size as f64,
                    (py as f64 + 0.5) / size as f64,
                );
                let col = viridis(v);
                // Lighten so arrows and samples stay visible.
                let light = [
                    (col[0] as f64 * 0.55 + 255.0 * 0.45) as u8,
                    (col[1] as f64 * 0.55 + 255.0 * 0.45) as u8,
                    (col[2] as f64 * 0.55 + 255.0 * 0.45) as u8,
                ];
                c.put(px as i64, py as i64, light);
                level_map[py * size + px] = levels.iter().filter(|&&l| v >= l).count();
            }
        }
        // Contour lines where the level index changes between neighbours.
        for py in 0..size - 1 {
            for px in 0..size - 1 {
                let l = level_map[py * size + px];
                if l != level_map[py * size + px + 1] || l != level_map[(py + 1) * size + px] {
                    c.put(
                        px as i64,
                        py as i64,
                        viridis(l as f64 / 12.0).map(|v| (v as f64 * 0.6) as u8),
                    );
                }
            }
        }
    }
    for p in data.samples.chunks(2) {
        c.dot(p[0] as f64, p[1] as f64, 1.3, SAMPLE);
    }
    for tr in &data.trajectories {
        if let Some(first) = tr.first() {
            c.dot(first[0], first[1], 3.0, [40, 40, 40]);
        }
        for w in tr.windows(2) {
            c.line((w[0][0], w[0][1]), (w[1][0], w[1][1]), TRAJ, 1.2);
        }
        if let Some(last) = tr.last() {
            c.dot(last[0], last[1], 3.0, [160, 60, 0]);
        }
    }
    // Arrows: direction of the score, length ∝ |s|^(1/2) normalised to the grid spacing.
    let max_norm = data
        .arrows
        .iter()
        .map(|(_, s)| (s[0] * s[0] + s[1] * s[1]).sqrt())
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let n_side = (data.arrows.len() as f64).sqrt().max(1.0);
    let cell = (data.bounds.x1 - data.bounds.x0) / n_side;
    for (p, s) in &data.arrows {
        let norm = (s[0] * s[0] + s[1] * s[1]).sqrt();
        if norm < 1e-12 || !norm.is_finite() {
            continue;
        }
        let len = 0.9 * cell * (norm / max_norm).sqrt();
        let tip = (p[0] + s[0] / norm * len, p[1] + s[1] / norm * len);
        c.arrow((p[0], p[1]), tip, ARROW, 4.0);
    }
    c.save_png(path)
}

/// A line plot of `y` against its index (e.g. a loss curve), log-scaled when `log_y`, with a
/// moving average drawn over the raw values.
pub fn line_plot(path: &Path, y: &[f64], log_y: bool, size: (usize, usize)) -> Result<()> {
    let tf = |v: f64| if log_y { v.max(1e-12).ln() } else { v };
    let vals: Vec<f64> = y.iter().map(|&v| tf(v)).filter(|v| v.is_finite()).collect();
    let (lo, hi) = vals
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let pad = 0.05 * (hi - lo);
    let b = Bounds {
        x0: 0.0,
        x1: vals.len().max(2) as f64 - 1.0,
        y0: lo - pad,
        y1: hi + pad,
    };
    let mut c = Canvas::new(size.0, size.1, b, WHITE);
    for k in 1..5 {
        let gy = b.y0 + (b.y1 - b.y0) * k as f64 / 5.0;
        c.line((b.x0, gy), (b.x1, gy), [225, 225, 225], 1.0);
    }
    for (i, w) in vals.windows(2).enumerate() {
        c.line(
            (i as f64, w[0]),
            (i as f64 + 1.0, w[1]),
            [170, 190, 230],
            1.0,
        );
    }
    let k = (vals.len() / 50).max(1);
    let smooth: Vec<f64> = (0..vals.len())
        .map(|i| {
            let s = i.saturating_sub(k);
            vals[s..=i].iter().sum::<f64>() / (i - s + 1) as f64
        })
        .collect();
    for (i, w) in smooth.windows(2).enumerate() {
        c.line((i as f64, w[0]), (i as f64 + 1.0, w[1]), [30, 60, 160], 2.0);
    }
    c.save_png(path)
}

/// Step histograms (or spectra) drawn over each other, one colour per series, on a shared
/// y axis from 0; bins are equally spaced along x.
pub fn overlay_histograms(
    path: &Path,
    series: &[(&[f64], Rgb)],
    size: (usize, usize),
) -> Result<()> {
    let bins = series.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    if bins == 0 {
        return Err(Error::Shape("no histogram bins to draw".into()));
    }
    let top = series
        .iter()
        .flat_map(|(h, _)| h.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let b = Bounds {
        x0: 0.0,
        x1: bins as f64,
        y0: 0.0,
        y1: if top > 0.0 { 1.05 * top } else { 1.0 },
    };
    let mut c = Canvas::new(size.0, size.1, b, WHITE);
    for k in 1..5 {
        let gy = b.y1 * k as f64 / 5.0;
        c.line((b.x0, gy), (b.x1, gy), [225, 225, 225], 1.0);
    }
    for (h, colour) in series {
        let mut prev = 0.0;
        for (i, &v) in h.iter().enumerate() {
            let v = if v.is_finite() { v } else { 0.0 };
            let x = i as f64;
            c.line((x, prev), (x, v), *colour, 2.0);
            c.line((x, v), (x + 1.0, v), *colour, 2.0);
            prev = v;
        }
        c.line((h.len() as f64, prev), (h.len() as f64, 0.0), *colour, 2.0);
    }
    c.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_draws_density_arrows_and_samples_where_they_belong() {
        let dir = std::env::temp_dir().join(format!("scoregen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bounds = Bounds {
            x0: -2.0,
            x1: 2.0,
            y0: -2.0,
            y1: 2.0,
        };
        let grid = 21;
        let logp: Vec<f64> = (0..grid * grid)
            .map(|k| {
                let (i, j) = (k % grid, k / grid);
                let (x, y) = (-2.0 + 4.0 * i as f64 / 20.0, 2.0 - 4.0 * j as f64 / 20.0);
                -0.5 * (x * x + y * y)
            })
            .collect();
        let data = ScoreFieldData {
            bounds,
            log_density: Some((grid, logp)),
            arrows: vec![([1.0, 1.0], [-1.0, -1.0])],
            samples: vec![-1.5, 1.5],
            trajectories: vec![vec![[1.5, -1.5], [1.0, -1.0]]],
        };
        let p = dir.join("f.png");
        score_field_figure(&p, &data, 200).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Decode and check: the centre is the densest colour (yellow-ish), the sample is red.
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        r.next_frame(&mut buf).unwrap();
        let px = |x: usize, y: usize| {
            [
                buf[(y * 200 + x) * 3],
                buf[(y * 200 + x) * 3 + 1],
                buf[(y * 200 + x) * 3 + 2],
            ]
        };
        let centre = px(100, 100);
        let corner = px(2, 198);
        assert!(
            centre[1] > corner[1] && centre[2] < corner[2],
            "centre {centre:?} corner {corner:?}"
        );
        assert_eq!(px(25, 25), SAMPLE);
        line_plot(
            &dir.join("l.png"),
            &[3.0, 2.0, 1.5, 1.2, 1.1],
            true,
            (100, 60),
        )
        .unwrap();
    }

    #[test]
    fn overlaid_histograms_draw_each_series_at_its_height() {
        let dir = std::env::temp_dir().join(format!("scoregen-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("h.png");
        let (red, blue): (Rgb, Rgb) = ([200, 0, 0], [0, 0, 200]);
        // Two bins: red fills bin 0 to the top, blue sits at half height in bin 1.
        overlay_histograms(&p, &[(&[1.0, 0.0], red), (&[0.0, 0.5], blue)], (100, 100)).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(&p).unwrap()));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        r.next_frame(&mut buf).unwrap();
        let rows_with = |colour: Rgb, x0: usize, x1: usize| -> Vec<usize> {
            (0..100)
                .filter(|&y| {
                    (x0..x1).any(|x| buf[(y * 100 + x) * 3..(y * 100 + x) * 3 + 3] == colour)
                })
                .collect()
        };
        // y axis: 0 at the bottom, 1.05 at the top: the red top near row 100·(1 − 1/1.05) ≈ 5,
        // the blue top near row 100·(1 − 0.5/1.05) ≈ 52.
        let red_top = rows_with(red, 10, 40)[0];
        let blue_top = rows_with(blue, 60, 90)[0];
        assert!((3..=8).contains(&red_top), "{red_top}");
        assert!((49..=55).contains(&blue_top), "{blue_top}");
        assert!(overlay_histograms(&p, &[], (10, 10)).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
