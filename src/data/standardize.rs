//! Per-dimension standardisation z = (x − μ)/σ, stored with checkpoints.

use serde::{Deserialize, Serialize};

use super::Dataset;

/// Mean and standard deviation per dimension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Per-dimension mean.
    pub mean: Vec<f64>,
    /// Per-dimension standard deviation (1 where the data are constant).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits mean and std of `ds`.
    pub fn fit(ds: &Dataset) -> Self {
        let (n, d) = (ds.len().max(1) as f64, ds.dim);
        let mut mean = vec![0.0; d];
        for row in ds.data.chunks(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64 / n;
            }
        }
        let mut var = vec![0.0; d];
        for row in ds.data.chunks(d) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (*v as f64 - m).powi(2) / n;
            }
        }
        let std = var
            .into_iter()
            .map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 })
            .collect();
        Standardizer { mean, std }
    }

    /// The identity transform in d dimensions.
    pub fn identity(d: usize) -> Self {
        Standardizer {
            mean: vec![0.0; d],
            std: vec![1.0; d],
        }
    }

    /// (x − μ)/σ, row-major.
    pub fn forward(&self, data: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        data.iter()
            .enumerate()
            .map(|(i, v)| ((*v as f64 - self.mean[i % d]) / self.std[i % d]) as f32)
            .collect()
    }

    /// μ + σz, row-major.
    pub fn inverse(&self, data: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        data.iter()
            .enumerate()
            .map(|(i, v)| (self.mean[i % d] + self.std[i % d] * *v as f64) as f32)
            .collect()
    }

    /// log|det ∂z/∂x| = −Σ log σ_j: add to a log-density in z to get one in x.
    pub fn log_det_jacobian(&self) -> f64 {
        -self.std.iter().map(|s| s.ln()).sum::<f64>()
    }
}
