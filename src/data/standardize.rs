//! Per-dimension standardisation z = (T(x) − μ)/σ, stored with checkpoints, where T is an
//! optional element-wise intensity transform (the identity unless a config asks for one).

use serde::{Deserialize, Serialize};

use super::Dataset;
use crate::error::{Error, Result};

/// An element-wise, odd, strictly increasing map T applied to the data before standardisation,
/// for heavy-tailed, mostly-zero data such as detector images: the model then learns T(x) and
/// samples are mapped back with T⁻¹.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    /// T(x) = x.
    #[default]
    Identity,
    /// T(x) = sign(x)·√|x|, T⁻¹(y) = y·|y|: compresses bright values, and maps small ones
    /// (a sampler's residual haze) back to much smaller ones.
    Sqrt,
}

impl Transform {
    /// `identity` or `sqrt`, as configs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Transform::Identity => "identity",
            Transform::Sqrt => "sqrt",
        }
    }

    /// T(x).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Transform::Identity => x,
            Transform::Sqrt => x.signum() * x.abs().sqrt(),
        }
    }

    /// T⁻¹(y).
    pub fn invert(self, y: f64) -> f64 {
        match self {
            Transform::Identity => y,
            Transform::Sqrt => y * y.abs(),
        }
    }
}

/// Mean and standard deviation per dimension, of the data after [`Transform`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Per-dimension mean.
    pub mean: Vec<f64>,
    /// Per-dimension standard deviation (1 where the data are constant).
    pub std: Vec<f64>,
    /// The intensity transform applied first (checkpoints written before it existed: identity).
    #[serde(default)]
    pub transform: Transform,
}

impl Standardizer {
    /// Fits mean and std of `ds`.
    pub fn fit(ds: &Dataset) -> Self {
        Self::fit_with(ds, Transform::Identity)
    }

    /// Fits mean and std of T(`ds`).
    pub fn fit_with(ds: &Dataset, transform: Transform) -> Self {
        let (n, d) = (ds.len().max(1) as f64, ds.dim);
        let mut mean = vec![0.0; d];
        for row in ds.data.chunks(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += transform.apply(*v as f64) / n;
            }
        }
        let mut var = vec![0.0; d];
        for row in ds.data.chunks(d) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (transform.apply(*v as f64) - m).powi(2) / n;
            }
        }
        let std = var
            .into_iter()
            .map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 })
            .collect();
        Standardizer {
            mean,
            std,
            transform,
        }
    }

    /// The identity in d dimensions.
    pub fn identity(d: usize) -> Self {
        Self::identity_with(d, Transform::Identity)
    }

    /// T alone in d dimensions (no centring or scaling).
    pub fn identity_with(d: usize, transform: Transform) -> Self {
        Standardizer {
            mean: vec![0.0; d],
            std: vec![1.0; d],
            transform,
        }
    }

    /// Whether the map x → z is affine ([`Transform::Identity`]): likelihoods and scores in
    /// data coordinates are defined only then.
    pub fn is_affine(&self) -> bool {
        self.transform == Transform::Identity
    }

    /// Errors unless [`Self::is_affine`]: `what` (a likelihood, a score) in data coordinates of
    /// the model from `source` needs the Jacobian of x → z, singular at 0 for `sqrt`.
    pub fn require_affine(&self, what: &str, source: &std::path::Path) -> Result<()> {
        if self.is_affine() {
            return Ok(());
        }
        Err(Error::Unsupported(format!(
            "{}: the model was trained on the `{}` intensity transform of the data, whose \
             Jacobian is singular at 0, so its {what} in data coordinates is not defined; train \
             without `transform` for it",
            source.display(),
            self.transform.name()
        )))
    }

    /// (T(x) − μ)/σ, row-major.
    pub fn forward(&self, data: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        let t = self.transform;
        data.iter()
            .enumerate()
            .map(|(i, v)| ((t.apply(*v as f64) - self.mean[i % d]) / self.std[i % d]) as f32)
            .collect()
    }

    /// T⁻¹(μ + σz), row-major.
    pub fn inverse(&self, data: &[f32]) -> Vec<f32> {
        let d = self.mean.len();
        let t = self.transform;
        data.iter()
            .enumerate()
            .map(|(i, v)| t.invert(self.mean[i % d] + self.std[i % d] * *v as f64) as f32)
            .collect()
    }

    /// log|det ∂z/∂x| = −Σ log σ_j of the affine part: add to a log-density in z to get one in
    /// x when [`Self::is_affine`].
    pub fn log_det_jacobian(&self) -> f64 {
        -self.std.iter().map(|s| s.ln()).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqrt_transform_is_fitted_and_inverted() {
        // Rows of 2: (0, 4), (1, 16), (4, 0), (9, -4).
        let data = vec![0.0, 4.0, 1.0, 16.0, 4.0, 0.0, 9.0, -4.0];
        let ds = Dataset::new(data.clone(), 2);
        let st = Standardizer::fit_with(&ds, Transform::Sqrt);
        // T = (0, 2), (1, 4), (2, 0), (3, -2): means 1.5 and 1, variances 1.25 and 5.
        assert!((st.mean[0] - 1.5).abs() < 1e-12 && (st.mean[1] - 1.0).abs() < 1e-12);
        assert!((st.std[0] - 1.25f64.sqrt()).abs() < 1e-12);
        assert!((st.std[1] - 5f64.sqrt()).abs() < 1e-12);
        let z = st.forward(&data);
        assert!((z[1] - (1.0 / 5f64.sqrt()) as f32).abs() < 1e-6, "{z:?}");
        let back = st.inverse(&z);
        for (a, b) in back.iter().zip(&data) {
            assert!((a - b).abs() < 1e-4, "{back:?}");
        }
        assert!(!st.is_affine() && Standardizer::fit(&ds).is_affine());
        // A small value near zero in model space comes back squared.
        let haze = Standardizer::identity_with(1, Transform::Sqrt).inverse(&[0.05, -0.1]);
        assert!((haze[0] - 0.0025).abs() < 1e-7 && (haze[1] + 0.01).abs() < 1e-7);
    }

    #[test]
    fn checkpoints_without_a_transform_read_as_identity() {
        let st: Standardizer = serde_json::from_str(r#"{"mean":[0.5],"std":[2.0]}"#).unwrap();
        assert_eq!(st.transform, Transform::Identity);
        let sq: Standardizer =
            serde_json::from_str(r#"{"mean":[0.5],"std":[2.0],"transform":"sqrt"}"#).unwrap();
        assert_eq!(sq.transform, Transform::Sqrt);
        for t in [Transform::Identity, Transform::Sqrt] {
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.name())
            );
        }
    }
}
