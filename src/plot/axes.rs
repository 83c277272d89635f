//! Framed plots: a title, a box around the data area, grid lines and tick values at "nice"
//! numbers (1, 2 or 5 × 10ᵏ, Heckbert's "Nice numbers for graph labels", Graphics Gems 1990),
//! and axis names, drawn with the built-in font. The canvas's world coordinates are the data's,
//! so the plot itself is drawn with ordinary [`Canvas`] calls afterwards.

use super::canvas::{Bounds, Canvas, Rgb};
use super::text::{text_height, text_width};

const INK: Rgb = [40, 40, 40];
const GRID: Rgb = [228, 228, 228];
const GAP: usize = 4;
const TICK: usize = 4;

/// What the frame says: a title above, the x axis's name below, the y axis's name on the left.
#[derive(Clone, Copy, Debug, Default)]
pub struct Labels<'a> {
    /// Title (drawn twice the size of the rest; empty: none).
    pub title: &'a str,
    /// Name of the x axis.
    pub x: &'a str,
    /// Name of the y axis.
    pub y: &'a str,
}

/// How tick values are written: plain numbers, or 10^v for an axis that holds log₁₀ values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Values as they are.
    Linear,
    /// The axis holds log₁₀ of the values; ticks are labelled with the values.
    Log10,
}

/// Tick positions at 1, 2 or 5 × 10ᵏ spaced so that about `target` fall in [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return if lo.is_finite() { vec![lo] } else { vec![] };
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm < 1.5 {
            1.0
        } else if norm < 3.5 {
            2.0
        } else if norm < 7.5 {
            5.0
        } else {
            10.0
        };
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            if v.abs() < step * 1e-9 {
                0.0
            } else {
                v
            }
        })
        .collect()
}

/// A tick value written compactly for ticks `step` apart: decimals as the step needs them,
/// exponent notation for very large or small values.
pub fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        // 2.0e-4 → 2e-4
        return s.replace(".0e", "e");
    }
    let decimals = if step > 0.0 && step.is_finite() {
        (-(step.log10() + 1e-9).floor()).clamp(0.0, 6.0) as usize
    } else {
        3
    };
    format!("{v:.decimals$}")
}

/// 10ᵏ written plainly from 0.001 to 10000, as 1eK beyond.
fn decade_label(k: i64) -> String {
    match k {
        -3 => "0.001".into(),
        -2 => "0.01".into(),
        -1 => "0.1".into(),
        0..=4 => format!("{}", 10i64.pow(k as u32)),
        _ => format!("1e{k}"),
    }
}

/// Ticks and their labels along one axis of data range [lo, hi].
fn axis_ticks(lo: f64, hi: f64, target: usize, scale: Scale) -> Vec<(f64, String)> {
    match scale {
        Scale::Log10 if hi - lo >= 1.0 => {
            // Whole decades, thinned so that about `target` remain.
            let (a, b) = ((lo - 1e-9).ceil() as i64, (hi + 1e-9).floor() as i64);
            let every = (((b - a) as usize / target.max(1)) + 1) as i64;
            (a..=b)
                .filter(|k| k.rem_euclid(every) == 0)
                .map(|k| (k as f64, decade_label(k)))
                .collect()
        }
        // Within one decade: nice values, placed at their log₁₀.
        Scale::Log10 => labelled_nice_ticks(10f64.powf(lo), 10f64.powf(hi), target)
            .into_iter()
            .filter(|&(v, _)| v > 0.0)
            .map(|(v, s)| (v.log10(), s))
            .collect(),
        Scale::Linear => labelled_nice_ticks(lo, hi, target),
    }
}

/// [`nice_ticks`] in [lo, hi], each with its label written for the ticks' spacing.
fn labelled_nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<(f64, String)> {
    let ticks = nice_ticks(lo, hi, target);
    let step = ticks
        .windows(2)
        .map(|w| w[1] - w[0])
        .next()
        .unwrap_or(hi - lo);
    ticks
        .into_iter()
        .map(|v| (v, tick_label(v, step)))
        .collect()
}

/// A `width`×`height` white canvas whose inner rectangle shows `data`, with the frame, grid,
/// ticks and `labels` drawn around it; the y axis's ticks follow `y_scale`. Later drawing is
/// clipped to the inside of the frame ([`Canvas::clip`] gives that rectangle).
pub fn framed_canvas(
    width: usize,
    height: usize,
    data: Bounds,
    labels: &Labels,
    y_scale: Scale,
) -> Canvas {
    let xt = axis_ticks(data.x0, data.x1, (width / 110).clamp(2, 8), Scale::Linear);
    let yt = axis_ticks(data.y0, data.y1, (height / 60).clamp(2, 6), y_scale);
    let ytw = yt.iter().map(|(_, s)| text_width(s, 1)).max().unwrap_or(0);
    let h1 = text_height(1);
    let left = GAP + if labels.y.is_empty() { 0 } else { h1 + GAP } + ytw + GAP + TICK;
    let bottom = TICK + GAP + h1 + if labels.x.is_empty() { 0 } else { GAP + h1 } + GAP;
    let top = if labels.title.is_empty() {
        GAP * 2
    } else {
        GAP + text_height(2) + GAP * 2
    };
    let right = 2 * GAP + xt.last().map_or(0, |(_, s)| text_width(s, 1) / 2);
    let inner_w = width.saturating_sub(left + right).max(1) as f64;
    let inner_h = height.saturating_sub(top + bottom).max(1) as f64;
    let sx = (data.x1 - data.x0) / inner_w;
    let sy = (data.y1 - data.y0) / inner_h;
    let world = Bounds {
        x0: data.x0 - left as f64 * sx,
        x1: data.x1 + right as f64 * sx,
        y0: data.y0 - bottom as f64 * sy,
        y1: data.y1 + top as f64 * sy,
    };
    let mut c = Canvas::new(width, height, world, [255, 255, 255]);
    let (l, t) = (left as i64, top as i64);
    let r = (width.saturating_sub(right) as i64).max(l + 1);
    let b = (height.saturating_sub(bottom) as i64).max(t + 1);
    for (v, _) in &yt {
        c.line((data.x0, *v), (data.x1, *v), GRID, 1.0);
    }
    for (v, _) in &xt {
        c.line((*v, data.y0), (*v, data.y1), GRID, 1.0);
    }
    for x in l..=r {
        c.put(x, t, INK);
        c.put(x, b, INK);
    }
    for y in t..=b {
        c.put(l, y, INK);
        c.put(r, y, INK);
    }
    for (v, s) in &yt {
        let py = c.to_px(data.x0, *v).1.round() as i64;
        for k in 1..=TICK as i64 {
            c.put(l - k, py, INK);
        }
        let w = text_width(s, 1) as i64;
        c.text(
            l - TICK as i64 - GAP as i64 - w,
            py - h1 as i64 / 2,
            s,
            INK,
            1,
        );
    }
    for (v, s) in &xt {
        let px = c.to_px(*v, data.y0).0.round() as i64;
        for k in 1..=TICK as i64 {
            c.put(px, b + k, INK);
        }
        let w = text_width(s, 1) as i64;
        c.text(px - w / 2, b + (TICK + GAP) as i64, s, INK, 1);
    }
    if !labels.x.is_empty() {
        let w = text_width(labels.x, 1) as i64;
        let y = height as i64 - GAP as i64 - h1 as i64;
        c.text((l + r) / 2 - w / 2, y, labels.x, INK, 1);
    }
    if !labels.y.is_empty() {
        let w = text_width(labels.y, 1) as i64;
        c.text_vertical(GAP as i64, (t + b) / 2 - w / 2, labels.y, INK, 1);
    }
    if !labels.title.is_empty() {
        let w = text_width(labels.title, 2) as i64;
        c.text((width as i64 - w) / 2, GAP as i64, labels.title, INK, 2);
    }
    c.set_clip(l + 1, t + 1, r, b);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_numbers_inside_the_range() {
        let t = nice_ticks(0.0, 1.0, 5);
        let want = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), want.len());
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        assert_eq!(nice_ticks(3.0, 97.0, 4), vec![20.0, 40.0, 60.0, 80.0]);
        assert_eq!(nice_ticks(-7.0, 12.0, 4), vec![-5.0, 0.0, 5.0, 10.0]);
        assert_eq!(
            nice_ticks(0.0, 4000.0, 5),
            vec![0.0, 1000.0, 2000.0, 3000.0, 4000.0]
        );
        assert_eq!(nice_ticks(2.0, 2.0, 5), vec![2.0]);
        assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
    }

    #[test]
    fn tick_labels_carry_the_decimals_the_step_needs() {
        assert_eq!(tick_label(0.6000000000000001, 0.2), "0.6");
        assert_eq!(tick_label(0.3, 0.1), "0.3");
        assert_eq!(tick_label(2000.0, 1000.0), "2000");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(0.0, 0.1), "0");
        assert_eq!(tick_label(1e-4, 1e-4), "1e-4");
        assert_eq!(tick_label(2.5e6, 1e6), "2.5e6");
        assert_eq!(tick_label(-3.0, 1.0), "-3");
    }

    #[test]
    fn log_axes_tick_whole_decades_or_values_within_one() {
        let t = axis_ticks(-4.2, 0.5, 5, Scale::Log10);
        let labels: Vec<&str> = t.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(labels, ["1e-4", "0.001", "0.01", "0.1", "1"]);
        assert_eq!(t[0].0, -4.0);
        // Many decades are thinned to about the target count.
        let t = axis_ticks(-12.0, 0.0, 4, Scale::Log10);
        assert!((3..=5).contains(&t.len()), "{t:?}");
        // Within one decade (0.02 … 0.09): linear ticks placed at their log₁₀.
        let t = axis_ticks(0.02f64.log10(), 0.09f64.log10(), 4, Scale::Log10);
        assert!(t.len() >= 3, "{t:?}");
        for (pos, s) in &t {
            let v: f64 = s.parse().unwrap();
            assert!((pos - v.log10()).abs() < 1e-12, "{s} at {pos}");
        }
    }

    #[test]
    fn the_frame_maps_the_data_inside_its_box() {
        let data = Bounds {
            x0: 0.0,
            x1: 10.0,
            y0: -1.0,
            y1: 1.0,
        };
        let labels = Labels {
            title: "loss",
            x: "step",
            y: "value",
        };
        let c = framed_canvas(300, 200, data, &labels, Scale::Linear);
        let (l, t) = c.to_px(data.x0, data.y1);
        let (r, b) = c.to_px(data.x1, data.y0);
        // Margins leave room for the title above and two lines of text below.
        assert!(
            l > 20.0 && t > 20.0 && r < 295.0 && b < 180.0,
            "{l} {t} {r} {b}"
        );
        // The box is drawn on the data rectangle's edges.
        let ink = [40, 40, 40];
        assert_eq!(c.get(l.round() as usize, 100), ink);
        assert_eq!(c.get(150, b.round() as usize), ink);
        // Text was drawn: the title's row holds ink, the inside stays white off the grid.
        assert!((0..300).any(|x| c.get(x, 8) == ink));
        let mid = c.to_px(5.5, 0.55);
        assert_eq!(c.get(mid.0 as usize, mid.1 as usize), [255, 255, 255]);
        // Drawing afterwards stays inside the frame.
        let mut c = c;
        let [x0, y0, x1, y1] = c.clip();
        assert_eq!(
            [x0, y0, x1, y1],
            [
                l.round() as i64 + 1,
                t.round() as i64 + 1,
                r.round() as i64,
                b.round() as i64
            ]
        );
        c.put(x0 - 1, y0 + 5, [255, 0, 0]);
        c.put(x0, y0 + 5, [255, 0, 0]);
        assert_eq!(c.get(x0 as usize - 1, y0 as usize + 5), ink);
        assert_eq!(c.get(x0 as usize, y0 as usize + 5), [255, 0, 0]);
    }
}
