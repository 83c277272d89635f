//! The figures scoregen draws.

use std::path::Path;

use super::axes::{framed_canvas, Labels, Scale};
use super::canvas::{viridis, Bounds, Rgb};
use super::text::text_width;
use crate::error::{Error, Result};

/// What the score-field figure shows (all in data coordinates).
pub struct ScoreFieldData {
    /// Title above the figure (empty: none).
    pub title: String,
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
    let labels = Labels {
        title: &data.title,
        x: "x1",
        y: "x2",
    };
    let mut c = framed_canvas(size, size, data.bounds, &labels, Scale::Linear);
    // The density fills the inside of the frame.
    let [x0, y0, x1, y1] = c.clip();
    let (w, h) = ((x1 - x0).max(1) as usize, (y1 - y0).max(1) as usize);
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
        let mut level_map = vec![0usize; w * h];
        for py in 0..h {
            for px in 0..w {
                let v = sample_grid(
                    *grid,
                    &rel,
                    (px as f64 + 0.5) / w as f64,
                    (py as f64 + 0.5) / h as f64,
                );
                let col = viridis(v);
                // Lighten so arrows and samples stay visible.
                let light = [
                    (col[0] as f64 * 0.55 + 255.0 * 0.45) as u8,
                    (col[1] as f64 * 0.55 + 255.0 * 0.45) as u8,
                    (col[2] as f64 * 0.55 + 255.0 * 0.45) as u8,
                ];
                c.put(x0 + px as i64, y0 + py as i64, light);
                level_map[py * w + px] = levels.iter().filter(|&&l| v >= l).count();
            }
        }
        // Contour lines where the level index changes between neighbours.
        for py in 0..h - 1 {
            for px in 0..w - 1 {
                let l = level_map[py * w + px];
                if l != level_map[py * w + px + 1] || l != level_map[(py + 1) * w + px] {
                    c.put(
                        x0 + px as i64,
                        y0 + py as i64,
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

/// A line plot of `y` against `x` (e.g. a loss curve against the step), on a log₁₀ y axis when
/// `log_y`, with a moving average drawn over the raw values, framed with `labels`, ticks and
/// grid lines. Non-finite (or, on a log axis, non-positive) points are skipped.
pub fn line_plot(
    path: &Path,
    x: &[f64],
    y: &[f64],
    log_y: bool,
    labels: &Labels,
    size: (usize, usize),
) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::Shape(format!(
            "line plot: {} x values for {} y values",
            x.len(),
            y.len()
        )));
    }
    let tf = |v: f64| if log_y { v.log10() } else { v };
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| (a, tf(b)))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    let span = |vals: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = vals.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        if lo < hi {
            (lo, hi)
        } else if lo <= hi {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        }
    };
    let (x0, x1) = span(&mut pts.iter().map(|p| p.0));
    let (lo, hi) = span(&mut pts.iter().map(|p| p.1));
    let pad = 0.05 * (hi - lo);
    let b = Bounds {
        x0,
        x1,
        y0: lo - pad,
        y1: hi + pad,
    };
    let scale = if log_y { Scale::Log10 } else { Scale::Linear };
    let mut c = framed_canvas(size.0, size.1, b, labels, scale);
    for w in pts.windows(2) {
        c.line(w[0], w[1], [170, 190, 230], 1.0);
    }
    let k = (pts.len() / 50).max(1);
    let smooth: Vec<(f64, f64)> = (0..pts.len())
        .map(|i| {
            let s = i.saturating_sub(k);
            let m = pts[s..=i].iter().map(|p| p.1).sum::<f64>() / (i - s + 1) as f64;
            (pts[i].0, m)
        })
        .collect();
    for w in smooth.windows(2) {
        c.line(w[0], w[1], [30, 60, 160], 2.0);
    }
    c.save_png(path)
}

/// Step histograms (or spectra) drawn over each other, one colour per named series, on a shared
/// y axis from 0, framed with `labels`; bins are equally spaced over `x_range` (bin index when
/// `None`). A legend names the series.
pub fn overlay_histograms(
    path: &Path,
    series: &[(&str, &[f64], Rgb)],
    x_range: Option<(f64, f64)>,
    labels: &Labels,
    size: (usize, usize),
) -> Result<()> {
    let bins = series.iter().map(|(_, h, _)| h.len()).max().unwrap_or(0);
    if bins == 0 {
        return Err(Error::Shape("no histogram bins to draw".into()));
    }
    let (x0, x1) = match x_range {
        Some((a, b)) if a.is_finite() && b.is_finite() && a < b => (a, b),
        _ => (0.0, bins as f64),
    };
    let width = (x1 - x0) / bins as f64;
    let top = series
        .iter()
        .flat_map(|(_, h, _)| h.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let b = Bounds {
        x0,
        x1,
        y0: 0.0,
        y1: if top > 0.0 { 1.15 * top } else { 1.0 },
    };
    let mut c = framed_canvas(size.0, size.1, b, labels, Scale::Linear);
    for (_, h, colour) in series {
        let mut prev = 0.0;
        for (i, &v) in h.iter().enumerate() {
            let v = if v.is_finite() { v } else { 0.0 };
            let x = x0 + i as f64 * width;
            c.line((x, prev), (x, v), *colour, 2.0);
            c.line((x, v), (x + width, v), *colour, 2.0);
            prev = v;
        }
        let end = x0 + h.len() as f64 * width;
        c.line((end, prev), (end, 0.0), *colour, 2.0);
    }
    // Legend in the top right corner of the data area, one line per series.
    let (right, top_px) = c.to_px(x1, b.y1);
    let name_w = series
        .iter()
        .map(|(n, _, _)| text_width(n, 1))
        .max()
        .unwrap_or(0) as f64;
    for (k, (name, _, colour)) in series.iter().enumerate() {
        let y = top_px + 6.0 + 11.0 * k as f64;
        let x = right - 8.0 - name_w - 20.0;
        for dx in 0..14 {
            for dy in 2..5 {
                c.put((x as i64) + dx, (y as i64) + dy, *colour);
            }
        }
        c.text(x as i64 + 18, y as i64, name, [40, 40, 40], 1);
    }
    c.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_draws_density_arrows_and_samples_where_they_belong() {
        let dir = crate::test_dir::TestDir::new("plot");
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
            title: "gauss".into(),
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
        // Where the frame puts the data (the same frame the figure drew).
        let labels = Labels {
            title: "gauss",
            x: "x1",
            y: "x2",
        };
        let frame = framed_canvas(200, 200, bounds, &labels, Scale::Linear);
        let at = |x: f64, y: f64| {
            let (a, b) = frame.to_px(x, y);
            px(a as usize, b as usize)
        };
        let centre = at(0.0, 0.0);
        let corner = at(-1.95, -1.95);
        assert!(
            centre[1] > corner[1] && centre[2] < corner[2],
            "centre {centre:?} corner {corner:?}"
        );
        assert_eq!(at(-1.5, 1.5), SAMPLE);
        // Outside the frame: white margin, not density.
        assert_eq!(px(1, 100), [255, 255, 255]);
        let labels = Labels {
            title: "loss",
            x: "step",
            y: "loss",
        };
        let steps = [10.0, 20.0, 30.0, 40.0, 50.0];
        line_plot(
            &dir.join("l.png"),
            &steps,
            &[3.0, 2.0, 1.5, 1.2, 1.1],
            true,
            &labels,
            (300, 200),
        )
        .unwrap();
        assert!(line_plot(
            &dir.join("l.png"),
            &steps,
            &[1.0],
            true,
            &labels,
            (300, 200)
        )
        .is_err());
    }

    #[test]
    fn overlaid_histograms_draw_each_series_at_its_height() {
        let dir = crate::test_dir::TestDir::new("hist");
        let p = dir.join("h.png");
        let (red, blue): (Rgb, Rgb) = ([200, 0, 0], [0, 0, 200]);
        let labels = Labels {
            title: "counts",
            x: "pixels",
            y: "fraction",
        };
        let (w, h) = (300, 200);
        // Two bins over [10, 30]: red fills bin 0 to the top, blue sits at half height in bin 1.
        let series: [(&str, &[f64], Rgb); 2] =
            [("red", &[1.0, 0.0], red), ("blue", &[0.0, 0.5], blue)];
        overlay_histograms(&p, &series, Some((10.0, 30.0)), &labels, (w, h)).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(&p).unwrap()));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        r.next_frame(&mut buf).unwrap();
        let at = |x: usize, y: usize| -> Rgb {
            let k = (y * w + x) * 3;
            [buf[k], buf[k + 1], buf[k + 2]]
        };
        // Where the frame puts the data: y from 0 to 1.15 × the tallest bar.
        let frame = framed_canvas(
            w,
            h,
            Bounds {
                x0: 10.0,
                x1: 30.0,
                y0: 0.0,
                y1: 1.15,
            },
            &labels,
            Scale::Linear,
        );
        let (bin0, red_top) = frame.to_px(15.0, 1.0);
        let (bin1, blue_top) = frame.to_px(25.0, 0.5);
        let first_row = |colour: Rgb, x: f64, from: usize| {
            (from..h).find(|&y| (x as usize - 10..x as usize + 10).any(|x| at(x, y) == colour))
        };
        let found_red = first_row(red, bin0, 0).unwrap() as f64;
        assert!(
            (found_red - red_top).abs() <= 2.0,
            "{found_red} vs {red_top}"
        );
        // Below the legend (top right), the first blue is bin 1's top.
        let below_legend = (frame.to_px(30.0, 1.15).1 + 30.0) as usize;
        let found_blue = first_row(blue, bin1, below_legend).unwrap() as f64;
        assert!(
            (found_blue - blue_top).abs() <= 2.0,
            "{found_blue} vs {blue_top}"
        );
        // The legend swatches: red above blue, near the top right corner.
        let swatch =
            |colour: Rgb| (0..below_legend).find(|&y| (w / 2..w).any(|x| at(x, y) == colour));
        assert!(swatch(red).unwrap() < swatch(blue).unwrap());
        let empty: [(&str, &[f64], Rgb); 0] = [];
        assert!(overlay_histograms(&p, &empty, None, &labels, (10, 10)).is_err());
    }
}
