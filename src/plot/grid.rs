//! Sample grids: images in [−1, 1] tiled into one PNG.

use std::path::Path;

use crate::error::{Error, Result};

/// Tiles `n` channel-first images (C = 1 or 3, values in [−1, 1]) into a near-square grid with a
/// 2-pixel border, `scale`× nearest-neighbour enlarged, and writes a PNG atomically.
pub fn image_grid(path: &Path, pixels: &[f32], shape: [usize; 3], scale: usize) -> Result<()> {
    let n = pixels.len() / shape.iter().product::<usize>().max(1);
    image_grid_columns(
        path,
        pixels,
        shape,
        scale,
        (n as f64).sqrt().ceil() as usize,
    )
}

/// [`image_grid`] with `cols` images per row (row-major: image k at row k / cols, column
/// k mod cols), e.g. one sample's trajectory per row.
pub fn image_grid_columns(
    path: &Path,
    pixels: &[f32],
    shape: [usize; 3],
    scale: usize,
    cols: usize,
) -> Result<()> {
    let [c, h, w] = shape;
    if c != 1 && c != 3 {
        return Err(Error::Shape(format!(
            "image grids need 1 or 3 channels, not {c}"
        )));
    }
    let size = c * h * w;
    let n = pixels.len() / size.max(1);
    if n == 0 {
        return Err(Error::Shape("no images to draw".into()));
    }
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let s = scale.max(1);
    let (tw, th) = (w * s + 2, h * s + 2);
    let (gw, gh) = (cols * tw + 2, rows * th + 2);
    let mut rgb = vec![40u8; gw * gh * 3];
    for k in 0..n {
        let (ox, oy) = (2 + (k % cols) * tw, 2 + (k / cols) * th);
        let img = &pixels[k * size..(k + 1) * size];
        for y in 0..h * s {
            for x in 0..w * s {
                for ch in 0..3 {
                    let src = if c == 1 { 0 } else { ch };
                    let v = img[src * h * w + (y / s) * w + x / s];
                    let byte = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                    rgb[((oy + y) * gw + ox + x) * 3 + ch] = byte;
                }
            }
        }
    }
    crate::data::write_png(path, gw, gh, 3, &rgb)
}
