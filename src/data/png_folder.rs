//! Images written as a folder of PNG files, one image per file: what external FID tools
//! (pytorch-fid, clean-fid, torch-fidelity) take, and what `png:<dir>` reads back, class
//! sub-folders becoming labels.

use std::path::Path;

use crate::error::{Error, Result};

/// Refuses a figure path that does not end in `.png` (any case): scoregen writes PNG only, and a
/// `figure.jpg` holding PNG bytes would mislead whatever opens it.
pub fn check_png_path(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(()),
        _ => Err(Error::Shape(format!(
            "{}: figures are written as PNG; the file name must end in .png",
            path.display()
        ))),
    }
}

/// Writes `width`×`height` 8-bit pixels, interleaved, `channels` 1 (grey) or 3 (RGB) per pixel,
/// as a PNG file, atomically (temporary file and rename).
pub fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    channels: usize,
    bytes: &[u8],
) -> Result<()> {
    check_png_path(path)?;
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        c => {
            return Err(Error::Shape(format!(
                "{}: PNG images need 1 or 3 channels, not {c}",
                path.display()
            )))
        }
    };
    if bytes.len() != width * height * channels {
        return Err(Error::Shape(format!(
            "{}: {} bytes for a {width}×{height} image of {channels} channels",
            path.display(),
            bytes.len()
        )));
    }
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, width as u32, height as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| Error::data(path, e.to_string()))?;
        w.write_image_data(bytes)
            .map_err(|e| Error::data(path, e.to_string()))?;
    }
    crate::train::atomic_write(path, &buf)
}

/// Errors unless `dir` is a folder images can be written to without mixing with others: one
/// that does not exist yet, or an empty one (stale files of an earlier run would otherwise
/// enter the evaluation of this one).
pub fn check_png_folder_target(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    match entries.next() {
        None => Ok(()),
        Some(_) => Err(Error::data(
            dir,
            "exists and is not empty; write the images to a new folder (files of an earlier run would mix with these)",
        )),
    }
}

/// Decimal digits of `n` (at least 1).
fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Writes `pixels` (N images of `shape` C×H×W, C = 1 or 3, values in [−1, 1], clamped) into
/// the new folder `dir`, one 8-bit PNG per image named by its index (`000000.png`, …, in sample
/// order). With `classes` = (class of each image, number of classes K) each image goes into the
/// sub-folder of its class, named by the class index zero-padded so that names sort as numbers
/// do, and every class gets its folder (empty if it has no images): `png:<dir>` then reads the
/// class indices back as labels. Returns the number of files written.
pub fn write_png_folder(
    dir: &Path,
    pixels: &[f32],
    shape: [usize; 3],
    classes: Option<(&[usize], usize)>,
) -> Result<usize> {
    let [c, h, w] = shape;
    let size = c * h * w;
    if c != 1 && c != 3 {
        return Err(Error::Shape(format!(
            "{}: PNG images need 1 or 3 channels, not {c}",
            dir.display()
        )));
    }
    if size == 0 || !pixels.len().is_multiple_of(size) {
        return Err(Error::Shape(format!(
            "{}: {} values are not a whole number of {c}×{h}×{w} images",
            dir.display(),
            pixels.len()
        )));
    }
    let n = pixels.len() / size;
    if let Some((labels, k)) = classes {
        if labels.len() != n {
            return Err(Error::Shape(format!(
                "{}: {} classes for {n} images",
                dir.display(),
                labels.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= k) {
            return Err(Error::Shape(format!(
                "{}: class {bad} of a model with {k} classes",
                dir.display()
            )));
        }
    }
    check_png_folder_target(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let class_dir = |k: usize, of: usize| dir.join(format!("{k:0width$}", width = digits(of - 1)));
    if let Some((_, k)) = classes {
        for class in 0..k {
            let d = class_dir(class, k);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
    }
    let name_width = digits(n.saturating_sub(1)).max(6);
    let mut bytes = vec![0u8; size];
    for (i, img) in pixels.chunks_exact(size).enumerate() {
        // Channel-first [−1, 1] to interleaved 8-bit.
        for ch in 0..c {
            for p in 0..h * w {
                let v = img[ch * h * w + p].clamp(-1.0, 1.0);
                bytes[p * c + ch] = ((v + 1.0) * 127.5).round() as u8;
            }
        }
        let folder = match classes {
            Some((labels, k)) => class_dir(labels[i], k),
            None => dir.to_path_buf(),
        };
        let path = folder.join(format!("{i:0name_width$}.png"));
        write_png(&path, w, h, c, &bytes)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::read_png_dir;
    use crate::test_dir::TestDir;

    #[test]
    fn a_written_folder_reads_back_as_the_same_images_and_classes() {
        // Five 2×3 RGB images with distinct values, classes 2, 0, 2, 11, 0 of 12.
        let shape = [3, 2, 3];
        let pixels: Vec<f32> = (0..5 * 18).map(|i| (i % 37) as f32 / 18.0 - 1.0).collect();
        let t = TestDir::new("png-folder-classes");
        let d = t.join("out");
        let classes = [2, 0, 2, 11, 0];
        assert_eq!(
            write_png_folder(&d, &pixels, shape, Some((&classes, 12))).unwrap(),
            5
        );
        // Every class has its folder, named so that they sort as numbers.
        assert!(d.join("00").is_dir() && d.join("05").is_dir() && d.join("11").is_dir());
        assert!(d.join("02").join("000002.png").is_file());
        let back = read_png_dir(&d).unwrap();
        assert_eq!((back.channels, back.height, back.width), (3, 2, 3));
        // Read back class by class, in index order within each class.
        let order = [1, 4, 0, 2, 3];
        assert_eq!(back.labels.unwrap(), vec![0, 0, 2, 2, 11]);
        for (j, &i) in order.iter().enumerate() {
            for p in 0..18 {
                let (a, b) = (back.pixels[j * 18 + p], pixels[i * 18 + p]);
                assert!(
                    (a - b).abs() <= 1.0 / 255.0 + 1e-6,
                    "image {i} value {p}: {a} {b}"
                );
            }
        }
        // The folder is not reused.
        let e = write_png_folder(&d, &pixels, shape, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not empty"), "{e}");
    }

    #[test]
    fn unlabelled_grey_images_keep_their_order_and_clamp() {
        let t = TestDir::new("png-folder-grey");
        let d = t.join("out");
        let pixels = vec![-2.0, -1.0, 0.0, 1.0, 0.5, 3.0, -0.5, 0.25];
        write_png_folder(&d, &pixels, [1, 2, 2], None).unwrap();
        let back = read_png_dir(&d).unwrap();
        assert!(back.labels.is_none());
        let want = [-1.0, -1.0, 0.0, 1.0, 0.5, 1.0, -0.5, 0.25];
        for (a, b) in back.pixels.iter().zip(want) {
            assert!((a - b).abs() <= 1.0 / 255.0 + 1e-6, "{a} {b}");
        }
    }

    #[test]
    fn bad_shapes_and_classes_are_errors() {
        let t = TestDir::new("png-folder-bad");
        let d = t.join("out");
        assert!(write_png_folder(&d, &[0.0; 8], [2, 2, 2], None).is_err());
        assert!(write_png_folder(&d, &[0.0; 7], [1, 2, 2], None).is_err());
        assert!(write_png_folder(&d, &[0.0; 8], [1, 2, 2], Some((&[0], 3))).is_err());
        assert!(write_png_folder(&d, &[0.0; 8], [1, 2, 2], Some((&[0, 3], 3))).is_err());
        // Nothing was created by the refused calls.
        assert!(!d.exists());
    }
}
