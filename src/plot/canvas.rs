//! An RGB canvas with a world-coordinate view.

use std::path::Path;

use crate::error::Result;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// The world rectangle a canvas shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Left edge.
    pub x0: f64,
    /// Right edge.
    pub x1: f64,
    /// Bottom edge.
    pub y0: f64,
    /// Top edge.
    pub y1: f64,
}

impl Bounds {
    /// Bounds of 2-D points (row-major), padded by `pad` of the span on each side.
    pub fn of_points(data: &[f32], pad: f64) -> Self {
        let mut b = Bounds {
            x0: f64::MAX,
            x1: f64::MIN,
            y0: f64::MAX,
            y1: f64::MIN,
        };
        for p in data.chunks(2) {
            if p.len() == 2 && p[0].is_finite() && p[1].is_finite() {
                b.x0 = b.x0.min(p[0] as f64);
                b.x1 = b.x1.max(p[0] as f64);
                b.y0 = b.y0.min(p[1] as f64);
                b.y1 = b.y1.max(p[1] as f64);
            }
        }
        if b.x0 > b.x1 {
            return Bounds {
                x0: -1.0,
                x1: 1.0,
                y0: -1.0,
                y1: 1.0,
            };
        }
        let (dx, dy) = ((b.x1 - b.x0).max(1e-6) * pad, (b.y1 - b.y0).max(1e-6) * pad);
        Bounds {
            x0: b.x0 - dx,
            x1: b.x1 + dx,
            y0: b.y0 - dy,
            y1: b.y1 + dy,
        }
    }
}

/// A width × height RGB image showing `bounds`.
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The world rectangle shown.
    pub bounds: Bounds,
    pixels: Vec<Rgb>,
    /// Pixels outside [x0, x1) × [y0, y1) are left alone by [`Canvas::put`].
    clip: [i64; 4],
}

impl Canvas {
    /// A canvas filled with `bg`.
    pub fn new(width: usize, height: usize, bounds: Bounds, bg: Rgb) -> Self {
        Canvas {
            width,
            height,
            bounds,
            pixels: vec![bg; width * height],
            clip: [0, 0, width as i64, height as i64],
        }
    }

    /// World → pixel coordinates (y up).
    pub fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        let b = self.bounds;
        (
            (x - b.x0) / (b.x1 - b.x0) * self.width as f64,
            (b.y1 - y) / (b.y1 - b.y0) * self.height as f64,
        )
    }

    /// Pixel centre → world coordinates.
    pub fn to_world(&self, px: usize, py: usize) -> (f64, f64) {
        let b = self.bounds;
        (
            b.x0 + (px as f64 + 0.5) / self.width as f64 * (b.x1 - b.x0),
            b.y1 - (py as f64 + 0.5) / self.height as f64 * (b.y1 - b.y0),
        )
    }

    /// Restricts later drawing to the pixels [x0, x1) × [y0, y1) (clamped to the canvas).
    pub fn set_clip(&mut self, x0: i64, y0: i64, x1: i64, y1: i64) {
        let (w, h) = (self.width as i64, self.height as i64);
        self.clip = [
            x0.clamp(0, w),
            y0.clamp(0, h),
            x1.clamp(0, w),
            y1.clamp(0, h),
        ];
    }

    /// The pixel rectangle [x0, x1) × [y0, y1) that drawing is restricted to.
    pub fn clip(&self) -> [i64; 4] {
        self.clip
    }

    /// Sets one pixel (ignored outside the canvas and the clip rectangle).
    pub fn put(&mut self, px: i64, py: i64, c: Rgb) {
        let [x0, y0, x1, y1] = self.clip;
        if px >= x0 && py >= y0 && px < x1 && py < y1 {
            self.pixels[py as usize * self.width + px as usize] = c;
        }
    }

    /// Colour of a pixel.
    pub fn get(&self, px: usize, py: usize) -> Rgb {
        self.pixels[py * self.width + px]
    }

    /// A line between world points, `thick` pixels wide.
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb, thick: f64) {
        let (p, q) = (self.to_px(a.0, a.1), self.to_px(b.0, b.1));
        let n = ((q.0 - p.0).abs().max((q.1 - p.1).abs()) * 2.0)
            .ceil()
            .clamp(1.0, 20_000.0) as usize;
        let r = (thick / 2.0).max(0.5);
        for i in 0..=n {
            let f = i as f64 / n as f64;
            let (x, y) = (p.0 + f * (q.0 - p.0), p.1 + f * (q.1 - p.1));
            self.disc_px(x, y, r, c);
        }
    }

    fn disc_px(&mut self, x: f64, y: f64, r: f64, c: Rgb) {
        let ri = r.ceil() as i64;
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                if ((dx * dx + dy * dy) as f64) <= r * r + 0.25 {
                    self.put(x as i64 + dx, y as i64 + dy, c);
                }
            }
        }
    }

    /// A filled disc of pixel radius `r` at a world point.
    pub fn dot(&mut self, x: f64, y: f64, r: f64, c: Rgb) {
        let (px, py) = self.to_px(x, y);
        self.disc_px(px, py, r, c);
    }

    /// An arrow from `a` to `b` (world) with a head of `head` pixels.
    pub fn arrow(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb, head: f64) {
        self.line(a, b, c, 1.2);
        let (p, q) = (self.to_px(a.0, a.1), self.to_px(b.0, b.1));
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-9 {
            return;
        }
        let (ux, uy) = (dx / len, dy / len);
        for side in [-1.0, 1.0] {
            let (hx, hy) = (
                q.0 - head * (ux - side * 0.5 * uy),
                q.1 - head * (uy + side * 0.5 * ux),
            );
            let steps = (head * 2.0).ceil() as usize;
            for i in 0..=steps {
                let f = i as f64 / steps as f64;
                self.disc_px(q.0 + f * (hx - q.0), q.1 + f * (hy - q.1), 0.6, c);
            }
        }
    }

    /// Encodes the canvas as an 8-bit RGB PNG, written atomically.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let raw: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        crate::data::write_png(path, self.width, self.height, 3, &raw)
    }
}

/// The viridis colour map (Smith & van der Walt), 9 anchors, linear in between; `v` ∈ [0, 1].
pub fn viridis(v: f64) -> Rgb {
    const A: [[f64; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 44.0, 122.0],
        [59.0, 81.0, 139.0],
        [44.0, 113.0, 142.0],
        [33.0, 144.0, 141.0],
        [39.0, 173.0, 129.0],
        [92.0, 200.0, 99.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    } * 8.0;
    let i = (v.floor() as usize).min(7);
    let f = v - i as f64;
    let mix = |k: usize| (A[i][k] * (1.0 - f) + A[i + 1][k] * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}
