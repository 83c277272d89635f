//! Low-dimensional data sets: CSV and NPY files of N×d points, built-in toy distributions, and
//! per-dimension standardisation.

mod csv;
mod images;
mod npy;
mod png_folder;
mod standardize;
mod toy;

pub use csv::{read_csv, write_csv};
pub use images::{
    load_images, read_cifar, read_idx, read_npy_images, read_png_dir, read_png_file, ImageSet,
};
pub use npy::{
    read_npy, read_npy_array, sibling_npy, write_npy, write_npy_shaped, write_npy_subset, NpyArray,
};
pub use png_folder::{check_png_folder_target, check_png_path, write_png, write_png_folder};
pub use standardize::{Standardizer, Transform};
pub use toy::{Toy, TOY_NAMES};

/// Bytes of an array of `shape` with `width`-byte elements, or `None` when a (corrupt) header's
/// sizes overflow `usize`.
pub(crate) fn byte_len(shape: &[usize], width: usize) -> Option<usize> {
    shape.iter().try_fold(width, |n, &d| n.checked_mul(d))
}

use std::path::Path;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// What a checkpoint records of its training data ([`Dataset::fingerprint`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataFingerprint {
    /// Number of points (images).
    pub points: u64,
    /// Values per point.
    pub dim: u64,
    /// FNV-1a hash of the values' and labels' bits, 16 hex digits.
    pub hash: String,
}

/// An in-memory data set of `n` points of dimension `dim`, row-major f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Row-major values.
    pub data: Vec<f32>,
    /// Dimension d.
    pub dim: usize,
    /// One class label per point, if the source has them.
    pub labels: Option<Vec<u32>>,
}

impl Dataset {
    /// Unlabelled points.
    pub fn new(data: Vec<f32>, dim: usize) -> Self {
        Dataset {
            data,
            dim,
            labels: None,
        }
    }
    /// A fingerprint of the points and labels (FNV-1a over their bit patterns): equal for the
    /// same data, different (up to hash collisions) for other data, other `--first` counts or
    /// other labels. A resumed training run checks it against its checkpoint's.
    pub fn fingerprint(&self) -> DataFingerprint {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |w: u32| {
            h ^= u64::from(w);
            h = h.wrapping_mul(PRIME);
        };
        self.data.iter().for_each(|v| mix(v.to_bits()));
        if let Some(l) = &self.labels {
            mix(u32::MAX);
            l.iter().for_each(|&k| mix(k));
        }
        DataFingerprint {
            points: self.len() as u64,
            dim: self.dim as u64,
            hash: format!("{h:016x}"),
        }
    }
    /// Keeps only the first `n` points (and labels).
    pub fn truncate(&mut self, n: usize) {
        self.data.truncate(n.min(self.len()) * self.dim);
        if let Some(l) = &mut self.labels {
            l.truncate(n);
        }
    }
    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    /// Whether it has no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    /// Rows at `idx`, concatenated.
    pub fn gather(&self, idx: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            out.extend_from_slice(self.row(i));
        }
        out
    }
    /// Checks every value is finite; names the first bad row/column.
    pub fn check_finite(&self, source: &Path) -> Result<()> {
        if let Some(pos) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                source,
                format!(
                    "non-finite value {} at row {}, column {}",
                    self.data[pos],
                    pos / self.dim + 1,
                    pos % self.dim + 1
                ),
            ));
        }
        Ok(())
    }
}

/// Where data come from: `toy:NAME`, a `.csv` or a `.npy` file.
pub fn load(spec: &str, toy_samples: usize, rng: &mut Rng) -> Result<Dataset> {
    if let Some(name) = spec.strip_prefix("toy:") {
        let toy = Toy::from_name(name)?;
        return Ok(toy.sample(toy_samples, rng));
    }
    let path = Path::new(spec);
    let ds = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") | Some("txt") => read_csv(path)?,
        Some("npy") => read_npy(path)?,
        _ => {
            return Err(Error::data(
                path,
                "unknown data format: expected a .csv or .npy file, or toy:NAME (".to_string()
                    + &TOY_NAMES.join(", ")
                    + ")",
            ))
        }
    };
    if ds.is_empty() {
        return Err(Error::data(path, "no data points"));
    }
    ds.check_finite(path)?;
    Ok(ds)
}
