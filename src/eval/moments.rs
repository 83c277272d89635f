//! Per-component moments of samples from a Gaussian mixture (hard assignment by posterior).

use crate::score::GaussianMixture;

/// Weights, means and covariances of samples assigned to the mixture's components.
#[derive(Clone, Debug)]
pub struct MixtureFit {
    /// Fraction of samples per component.
    pub weights: Vec<f64>,
    /// Sample mean per component.
    pub means: Vec<Vec<f64>>,
    /// Sample covariance per component (row-major).
    pub covs: Vec<Vec<f64>>,
}

/// Assigns each sample to its most probable component of `gmm` and returns the moments.
pub fn mixture_fit(gmm: &GaussianMixture, x: &[f32]) -> MixtureFit {
    let d = gmm.dim();
    let k = gmm.weights().len();
    let mut groups: Vec<Vec<Vec<f64>>> = vec![Vec::new(); k];
    for row in x.chunks(d) {
        let p: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        let best = (0..k)
            .map(|j| {
                let one = GaussianMixture::new(
                    vec![1.0],
                    vec![gmm.means()[j].clone()],
                    vec![gmm.covs()[j].clone()],
                )
                .expect("component of a valid mixture");
                (j, gmm.weights()[j].ln() + one.log_pdf(&p))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(j, _)| j);
        groups[best].push(p);
    }
    let n = (x.len() / d).max(1) as f64;
    let mut fit = MixtureFit {
        weights: vec![],
        means: vec![],
        covs: vec![],
    };
    for g in &groups {
        fit.weights.push(g.len() as f64 / n);
        let c = g.len().max(1) as f64;
        let mean: Vec<f64> = (0..d)
            .map(|i| g.iter().map(|p| p[i]).sum::<f64>() / c)
            .collect();
        let mut cov = vec![0.0; d * d];
        for p in g {
            for i in 0..d {
                for j in 0..d {
                    cov[i * d + j] += (p[i] - mean[i]) * (p[j] - mean[j]) / (c - 1.0).max(1.0);
                }
            }
        }
        fit.means.push(mean);
        fit.covs.push(cov);
    }
    fit
}
