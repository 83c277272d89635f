//! Image data sets: MNIST-style IDX (gzip or raw), CIFAR-10 binary batches, folders of PNG
//! images (labels from sub-folder names), and NPY arrays N×C×H×W. Pixels are scaled to [−1, 1].

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{read_npy_array, Dataset};
use crate::error::{Error, Result};

/// Images in [−1, 1], channel-first, with optional integer labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    /// N·C·H·W values, row-major (image, channel, row, column).
    pub pixels: Vec<f32>,
    /// One label per image, if the source has them.
    pub labels: Option<Vec<u32>>,
    /// Channels C.
    pub channels: usize,
    /// Height H.
    pub height: usize,
    /// Width W.
    pub width: usize,
    /// Class names (sub-folder names for PNG folders; digits otherwise).
    pub class_names: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_size().max(1)
    }
    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }
    /// C·H·W.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// The images as flattened points (for the samplers and losses).
    pub fn to_dataset(&self) -> Dataset {
        Dataset {
            data: self.pixels.clone(),
            dim: self.image_size(),
            labels: self.labels.clone(),
        }
    }
    /// The images at `ids`, in that order (with their labels).
    pub fn select(&self, ids: &[usize]) -> ImageSet {
        let s = self.image_size();
        ImageSet {
            pixels: ids
                .iter()
                .flat_map(|&i| self.pixels[i * s..(i + 1) * s].iter().copied())
                .collect(),
            labels: self
                .labels
                .as_ref()
                .map(|l| ids.iter().map(|&i| l[i]).collect()),
            class_names: self.class_names.clone(),
            ..*self
        }
    }
    /// Images `range` (e.g. the first 8 000 for training, the rest held out).
    pub fn slice(&self, range: std::ops::Range<usize>) -> ImageSet {
        let s = self.image_size();
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        ImageSet {
            pixels: self.pixels[start * s..end * s].to_vec(),
            labels: self.labels.as_ref().map(|l| l[start..end].to_vec()),
            class_names: self.class_names.clone(),
            ..*self
        }
    }
}

fn scale_u8(v: u8) -> f32 {
    v as f32 / 127.5 - 1.0
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file (big-endian magic 0x0000_08dd with u8 data and dd dimensions).
fn parse_idx(path: &Path, expect_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let b = read_maybe_gz(path)?;
    if b.len() < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0x08 {
        return Err(Error::data(
            path,
            "not an IDX file of unsigned bytes (magic 0x000008..)",
        ));
    }
    let nd = b[3] as usize;
    if nd != expect_dims {
        return Err(Error::data(
            path,
            format!("IDX file has {nd} dimensions, expected {expect_dims}"),
        ));
    }
    let head = 4 + 4 * nd;
    if b.len() < head {
        return Err(Error::data(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| u32::from_be_bytes(b[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let need = super::byte_len(&dims, 1).ok_or_else(|| {
        Error::data(
            path,
            format!("IDX dimensions {dims:?} are too large (corrupt header?)"),
        )
    })?;
    if b.len() - head != need {
        return Err(Error::data(
            path,
            format!(
                "IDX data is {} bytes, dimensions {dims:?} need {need} (truncated?)",
                b.len() - head
            ),
        ));
    }
    Ok((dims, b[head..].to_vec()))
}

/// MNIST-style IDX images (N×H×W, magic 2051) with optional labels (N, magic 2049).
pub fn read_idx(images: &Path, labels: Option<&Path>) -> Result<ImageSet> {
    let (dims, data) = parse_idx(images, 3)?;
    let labels = match labels {
        Some(p) => {
            let (ld, l) = parse_idx(p, 1)?;
            if ld[0] != dims[0] {
                return Err(Error::data(
                    p,
                    format!(
                        "{} labels for {} images in {}",
                        ld[0],
                        dims[0],
                        images.display()
                    ),
                ));
            }
            Some(l.into_iter().map(u32::from).collect::<Vec<_>>())
        }
        None => None,
    };
    let classes = labels
        .as_ref()
        .map_or(0, |l| l.iter().max().map_or(0, |m| *m as usize + 1));
    Ok(ImageSet {
        pixels: data.into_iter().map(scale_u8).collect(),
        labels,
        channels: 1,
        height: dims[1],
        width: dims[2],
        class_names: (0..classes).map(|c| c.to_string()).collect(),
    })
}

/// CIFAR-10 binary batches: a `.bin` file, or a folder with `data_batch_1.bin` … `data_batch_5.bin`
/// (records of one label byte and 3×32×32 channel-first pixels).
pub fn read_cifar(path: &Path) -> Result<ImageSet> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let f: Vec<PathBuf> = (1..=5)
            .map(|i| path.join(format!("data_batch_{i}.bin")))
            .filter(|p| p.is_file())
            .collect();
        if f.is_empty() {
            return Err(Error::data(
                path,
                "no data_batch_N.bin files in this folder",
            ));
        }
        f
    } else {
        vec![path.to_path_buf()]
    };
    const REC: usize = 1 + 3 * 32 * 32;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in files {
        let b = std::fs::read(&f).map_err(|e| Error::io(&f, e))?;
        if b.is_empty() || b.len() % REC != 0 {
            return Err(Error::data(
                &f,
                format!(
                    "{} bytes is not a whole number of {REC}-byte CIFAR-10 records (truncated?)",
                    b.len()
                ),
            ));
        }
        for rec in b.chunks_exact(REC) {
            if rec[0] > 9 {
                return Err(Error::data(
                    &f,
                    format!("label {} out of range 0..9 (not a CIFAR-10 batch?)", rec[0]),
                ));
            }
            labels.push(rec[0] as u32);
            pixels.extend(rec[1..].iter().map(|&v| scale_u8(v)));
        }
    }
    let names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];
    Ok(ImageSet {
        pixels,
        labels: Some(labels),
        channels: 3,
        height: 32,
        width: 32,
        class_names: names.iter().map(|s| s.to_string()).collect(),
    })
}

/// Decodes one 8-bit PNG as (channels, height, width, bytes); alpha is dropped.
fn decode_png(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec
        .read_info()
        .map_err(|e| Error::data(path, format!("corrupt PNG: {e}")))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| Error::data(path, format!("corrupt PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let (src_c, keep) = match info.color_type {
        png::ColorType::Grayscale => (1, 1),
        png::ColorType::GrayscaleAlpha => (2, 1),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::Rgba => (4, 3),
        png::ColorType::Indexed => (3, 3),
    };
    let mut chw = vec![0u8; keep * h * w];
    for y in 0..h {
        for x in 0..w {
            for c in 0..keep {
                chw[c * h * w + y * w + x] = buf[(y * w + x) * src_c + c];
            }
        }
    }
    Ok((keep, h, w, chw))
}

/// One PNG image file as an [`ImageSet`] of size 1.
pub fn read_png_file(path: &Path) -> Result<ImageSet> {
    let (channels, height, width, chw) = decode_png(path)?;
    Ok(ImageSet {
        pixels: chw.into_iter().map(scale_u8).collect(),
        labels: None,
        channels,
        height,
        width,
        class_names: Vec::new(),
    })
}

/// A folder of PNG images, all of one size and channel count. Images directly in the folder are
/// unlabelled; images in sub-folders are labelled by sub-folder (sorted by name).
pub fn read_png_dir(dir: &Path) -> Result<ImageSet> {
    let list = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| Error::io(d, e))?
            .flatten()
            .map(|e| e.path())
            .collect();
        v.sort();
        Ok(v)
    };
    let entries = list(dir)?;
    let subdirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let is_png = |p: &PathBuf| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    };
    let mut items: Vec<(PathBuf, Option<u32>)> = Vec::new();
    let mut class_names = Vec::new();
    if subdirs.is_empty() {
        items.extend(
            entries
                .iter()
                .filter(|p| is_png(p))
                .map(|p| (p.clone(), None)),
        );
    } else {
        for (k, sd) in subdirs.iter().enumerate() {
            class_names.push(
                sd.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
            );
            items.extend(
                list(sd)?
                    .into_iter()
                    .filter(is_png)
                    .map(|p| (p, Some(k as u32))),
            );
        }
    }
    if items.is_empty() {
        return Err(Error::data(
            dir,
            "no .png images here or in its sub-folders",
        ));
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut shape: Option<(usize, usize, usize, PathBuf)> = None;
    for (p, label) in &items {
        let (c, h, w, chw) = decode_png(p)?;
        match &shape {
            None => shape = Some((c, h, w, p.clone())),
            Some((c0, h0, w0, first)) if (c, h, w) != (*c0, *h0, *w0) => {
                return Err(Error::data(
                    p,
                    format!("is {c}×{h}×{w} (channels×height×width) but {} is {c0}×{h0}×{w0}; all images must match", first.display()),
                ))
            }
            _ => {}
        }
        pixels.extend(chw.into_iter().map(scale_u8));
        if let Some(l) = label {
            labels.push(*l);
        }
    }
    let (channels, height, width, _) = shape.expect("at least one image");
    let labels = (!class_names.is_empty()).then_some(labels);
    Ok(ImageSet {
        pixels,
        labels,
        channels,
        height,
        width,
        class_names,
    })
}

/// An NPY array N×C×H×W (or N×H×W, one channel): uint8 in 0..255, or float in [0, 1].
pub fn read_npy_images(path: &Path, labels: Option<&Path>) -> Result<ImageSet> {
    let a = read_npy_array(path)?;
    let (c, h, w) = match a.shape.as_slice() {
        [_, h, w] => (1, *h, *w),
        [_, c, h, w] => (*c, *h, *w),
        other => {
            return Err(Error::data(
                path,
                format!("array of shape {other:?}; expected N×C×H×W or N×H×W images"),
            ))
        }
    };
    if !a.is_u8 {
        if let Some(v) = a.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(Error::data(
                path,
                format!("float images must lie in [0, 1]; found {v}"),
            ));
        }
    }
    let pixels = a
        .data
        .iter()
        .map(|&v| {
            if a.is_u8 {
                v / 127.5 - 1.0
            } else {
                2.0 * v - 1.0
            }
        })
        .collect();
    let n = a.shape[0];
    let labels = match labels {
        Some(p) => {
            let l = read_npy_array(p)?;
            if l.data.len() != n || l.data.iter().any(|v| v.fract() != 0.0 || *v < 0.0) {
                return Err(Error::data(
                    p,
                    format!(
                        "need {n} non-negative integer labels, found {} values",
                        l.data.len()
                    ),
                ));
            }
            Some(l.data.iter().map(|&v| v as u32).collect::<Vec<_>>())
        }
        None => None,
    };
    let classes = labels
        .as_ref()
        .map_or(0, |l| l.iter().max().map_or(0, |m| *m as usize + 1));
    Ok(ImageSet {
        pixels,
        labels,
        channels: c,
        height: h,
        width: w,
        class_names: (0..classes).map(|k| k.to_string()).collect(),
    })
}

/// Loads `idx:<images>[,<labels>]`, `cifar:<dir|file.bin>`, `png:<dir>` or `npy:<images>[,<labels>]`.
pub fn load_images(spec: &str) -> Result<ImageSet> {
    let (kind, rest) = spec.split_once(':').ok_or_else(|| {
        Error::config(
            "data",
            format!("`{spec}`: expected idx:, cifar:, png: or npy: followed by a path"),
        )
    })?;
    let mut parts = rest.splitn(2, ',');
    let first = Path::new(parts.next().unwrap_or_default());
    let second = parts.next().map(Path::new);
    let set = match kind {
        "idx" => read_idx(first, second)?,
        "cifar" => read_cifar(first)?,
        "png" => read_png_dir(first)?,
        "npy" => read_npy_images(first, second)?,
        other => {
            return Err(Error::config(
                "data",
                format!("unknown image source `{other}:` (expected idx, cifar, png or npy)"),
            ))
        }
    };
    if set.is_empty() {
        return Err(Error::data(first, "no images"));
    }
    Ok(set)
}

#[cfg(test)]
#[path = "images_tests.rs"]
mod tests;
