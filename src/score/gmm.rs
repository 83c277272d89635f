//! Gaussian mixtures and their exact score under every SDE (design/MATH.md, "Gaussian mixtures
//! stay Gaussian mixtures"): p_t = Σ_k w_k N(m μ_k, m²Σ_k + s²I).

use burn::tensor::{activation::softmax, backend::Backend, Tensor};

use super::{time_column, ScoreFn};
use crate::error::{Error, Result};
use crate::linalg::{cholesky, symmetric_eigen};
use crate::rng::Rng;
use crate::sde::{Sde, SdeSpec};
use crate::tensor::from_rows;

/// A mixture Σ_k w_k N(μ_k, Σ_k) in d dimensions with full covariances.
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    covs: Vec<Vec<f64>>,
    dim: usize,
    /// Per component: eigenvalues and eigenvectors of Σ_k (Σ_k = U Λ Uᵀ).
    eig: Vec<(Vec<f64>, Vec<f64>)>,
    chol: Vec<Vec<f64>>,
}

impl GaussianMixture {
    /// A mixture; weights are normalised, covariances (row-major d×d) must be symmetric
    /// positive semi-definite (a zero covariance is allowed: a point mass).
    pub fn new(weights: Vec<f64>, means: Vec<Vec<f64>>, covs: Vec<Vec<f64>>) -> Result<Self> {
        let k = weights.len();
        if k == 0 || means.len() != k || covs.len() != k {
            return Err(Error::Shape(format!(
                "mixture needs as many means and covariances as weights ({k}, {}, {})",
                means.len(),
                covs.len()
            )));
        }
        let dim = means[0].len();
        if means.iter().any(|m| m.len() != dim) || covs.iter().any(|c| c.len() != dim * dim) {
            return Err(Error::Shape(format!(
                "mixture means must be {dim}-vectors and covariances {dim}×{dim}"
            )));
        }
        let total: f64 = weights.iter().sum();
        if weights.iter().any(|w| w.is_nan() || *w < 0.0) || total.is_nan() || total <= 0.0 {
            return Err(Error::config(
                "weights",
                "mixture weights must be ≥ 0 with a positive sum",
            ));
        }
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let mut eig = Vec::with_capacity(k);
        let mut chol = Vec::with_capacity(k);
        for c in &covs {
            let (lam, u) = symmetric_eigen(c, dim);
            if lam.iter().any(|&l| l < -1e-9) {
                return Err(Error::config(
                    "covariance",
                    "mixture covariances must be positive semi-definite",
                ));
            }
            let lam: Vec<f64> = lam.into_iter().map(|l| l.max(0.0)).collect();
            // Sampling factor U sqrt(Λ) works for semi-definite matrices too.
            let mut f = vec![0.0; dim * dim];
            for i in 0..dim {
                for j in 0..dim {
                    f[i * dim + j] = u[i * dim + j] * lam[j].sqrt();
                }
            }
            chol.push(cholesky(c, dim).unwrap_or(f));
            eig.push((lam, u));
        }
        Ok(GaussianMixture {
            weights,
            means,
            covs,
            dim,
            eig,
            chol,
        })
    }

    /// A mixture with isotropic components N(μ_k, std_k² I).
    pub fn isotropic(weights: Vec<f64>, means: Vec<Vec<f64>>, stds: Vec<f64>) -> Result<Self> {
        let d = means.first().map_or(0, |m| m.len());
        let covs = stds
            .iter()
            .map(|s| {
                let mut c = vec![0.0; d * d];
                for i in 0..d {
                    c[i * d + i] = s * s;
                }
                c
            })
            .collect();
        Self::new(weights, means, covs)
    }

    /// Dimension d.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Normalised weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// Component means.
    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }
    /// Component covariances (row-major).
    pub fn covs(&self) -> &[Vec<f64>] {
        &self.covs
    }

    /// The marginal p_t of the mixture under x_t = m·x0 + s·z: Σ_k w_k N(m μ_k, m²Σ_k + s²I).
    pub fn perturbed(&self, m: f64, s: f64) -> GaussianMixture {
        let d = self.dim;
        let means = self
            .means
            .iter()
            .map(|mu| mu.iter().map(|v| m * v).collect())
            .collect();
        let covs = self
            .covs
            .iter()
            .map(|c| {
                let mut c2: Vec<f64> = c.iter().map(|v| m * m * v).collect();
                for i in 0..d {
                    c2[i * d + i] += s * s;
                }
                c2
            })
            .collect();
        GaussianMixture::new(self.weights.clone(), means, covs)
            .expect("perturbing keeps a valid mixture")
    }

    /// `n` samples as row-major f32 rows, with the component each came from.
    pub fn sample_labelled(&self, n: usize, rng: &mut Rng) -> (Vec<f32>, Vec<usize>) {
        let d = self.dim;
        let mut out = Vec::with_capacity(n * d);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let u = rng.uniform();
            let mut acc = 0.0;
            let mut k = self.weights.len() - 1;
            for (j, w) in self.weights.iter().enumerate() {
                acc += w;
                if u < acc {
                    k = j;
                    break;
                }
            }
            let z: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
            let l = &self.chol[k];
            for i in 0..d {
                let v: f64 = self.means[k][i] + (0..d).map(|j| l[i * d + j] * z[j]).sum::<f64>();
                out.push(v as f32);
            }
            labels.push(k);
        }
        (out, labels)
    }

    /// `n` samples as row-major f32 rows.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Vec<f32> {
        self.sample_labelled(n, rng).0
    }

    /// Per-component log(w_k N(x; μ_k, Σ_k)) (−∞ outside a degenerate component's support).
    fn component_log_densities(&self, x: &[f64]) -> Vec<f64> {
        let d = self.dim;
        (0..self.weights.len())
            .map(|k| {
                let (lam, u) = &self.eig[k];
                let mut q = 0.0;
                let mut logdet = 0.0;
                for j in 0..d {
                    let y: f64 = (0..d)
                        .map(|i| (x[i] - self.means[k][i]) * u[i * d + j])
                        .sum();
                    q += y * y / lam[j];
                    logdet += lam[j].ln();
                }
                self.weights[k].ln() - 0.5 * (q + logdet + d as f64 * std::f64::consts::TAU.ln())
            })
            .collect()
    }

    /// log p(x) of one point, by log-sum-exp over components.
    pub fn log_pdf(&self, x: &[f64]) -> f64 {
        log_sum_exp(&self.component_log_densities(x))
    }

    /// ∇x log p(x) of one point (host, f64): −Σ_k r_k Σ_k⁻¹(x − μ_k).
    pub fn score_at(&self, x: &[f64]) -> Vec<f64> {
        let d = self.dim;
        let logs = self.component_log_densities(x);
        let lse = log_sum_exp(&logs);
        let mut g = vec![0.0; d];
        for (k, lk) in logs.iter().enumerate() {
            let r = (lk - lse).exp();
            let (lam, u) = &self.eig[k];
            for j in 0..d {
                let y: f64 = (0..d)
                    .map(|i| (x[i] - self.means[k][i]) * u[i * d + j])
                    .sum();
                let q = y / lam[j];
                for i in 0..d {
                    g[i] -= r * q * u[i * d + j];
                }
            }
        }
        g
    }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

struct ComponentTensors<B: Backend> {
    mean: Tensor<B, 2>,
    u: Tensor<B, 2>,
    ut: Tensor<B, 2>,
    lam: Tensor<B, 2>,
    log_w: f64,
}

/// The exact score of a Gaussian mixture pushed through an SDE, on device tensors:
/// ∇log p_t(x) = −Σ_k r_k(x) C_k⁻¹(x − a_k), a_k = m μ_k, C_k = m²Σ_k + s²I (MATH.md).
/// Differentiable in x, so the likelihood's divergence can be taken by autodiff.
pub struct GmmScore<B: Backend> {
    gmm: GaussianMixture,
    sde: Box<dyn Sde>,
    comps: Vec<ComponentTensors<B>>,
    device: B::Device,
}

impl<B: Backend> GmmScore<B> {
    /// The exact score of `gmm` under the SDE `spec`.
    pub fn new(gmm: GaussianMixture, spec: &SdeSpec, device: &B::Device) -> Result<Self> {
        let sde = spec.build()?;
        let d = gmm.dim;
        let comps = (0..gmm.weights.len())
            .map(|k| {
                let (lam, u) = &gmm.eig[k];
                let u32: Vec<f32> = u.iter().map(|&v| v as f32).collect();
                let mut ut = vec![0f32; d * d];
                for i in 0..d {
                    for j in 0..d {
                        ut[j * d + i] = u[i * d + j] as f32;
                    }
                }
                ComponentTensors {
                    mean: from_rows(
                        gmm.means[k].iter().map(|&v| v as f32).collect(),
                        1,
                        d,
                        device,
                    ),
                    u: from_rows(u32, d, d, device),
                    ut: from_rows(ut, d, d, device),
                    lam: from_rows(lam.iter().map(|&v| v as f32).collect(), 1, d, device),
                    log_w: gmm.weights[k].ln(),
                }
            })
            .collect();
        Ok(GmmScore {
            gmm,
            sde,
            comps,
            device: device.clone(),
        })
    }

    /// The mixture at time 0.
    pub fn mixture(&self) -> &GaussianMixture {
        &self.gmm
    }

    /// The SDE the mixture is pushed through.
    pub fn sde(&self) -> &dyn Sde {
        self.sde.as_ref()
    }
}

impl<B: Backend> ScoreFn<B> for GmmScore<B> {
    fn score(&self, x: Tensor<B, 2>, t: &[f64]) -> Tensor<B, 2> {
        let d = self.gmm.dim;
        let m = time_column::<B>(t, |ti| self.sde.mean_factor(ti), &self.device);
        let m2 = m.clone().powi_scalar(2);
        let s2 = time_column::<B>(t, |ti| self.sde.std(ti).powi(2), &self.device);
        let mut logs = Vec::with_capacity(self.comps.len());
        let mut grads = Vec::with_capacity(self.comps.len());
        for c in &self.comps {
            let diff = x.clone() - m.clone() * c.mean.clone();
            let y = diff.matmul(c.u.clone());
            let denom = m2.clone() * c.lam.clone() + s2.clone();
            let q = y.clone() / denom.clone();
            let logp = (y * q.clone()).sum_dim(1).mul_scalar(-0.5)
                - denom.log().sum_dim(1).mul_scalar(0.5)
                + (c.log_w - 0.5 * d as f64 * std::f64::consts::TAU.ln());
            logs.push(logp);
            grads.push(q.matmul(c.ut.clone()).neg());
        }
        let r = softmax(Tensor::cat(logs, 1), 1);
        let mut out: Option<Tensor<B, 2>> = None;
        for (k, g) in grads.into_iter().enumerate() {
            let term = r.clone().narrow(1, k, 1) * g;
            out = Some(match out {
                None => term,
                Some(acc) => acc + term,
            });
        }
        out.expect("a mixture has at least one component")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn device_score_matches_host_score_and_finite_differences_of_log_pdf() {
        let gmm = GaussianMixture::new(
            vec![0.3, 0.7],
            vec![vec![-1.0, 0.5], vec![2.0, -1.0]],
            vec![vec![0.5, 0.2, 0.2, 0.3], vec![1.0, -0.3, -0.3, 0.8]],
        )
        .unwrap();
        let dev = Default::default();
        for spec in ["ve", "vp", "subvp"] {
            let spec = SdeSpec::default_for(spec).unwrap();
            let score = GmmScore::<Flex>::new(gmm.clone(), &spec, &dev).unwrap();
            let sde = spec.build().unwrap();
            for &t in &[0.001, 0.1, 0.5] {
                let pt = gmm.perturbed(sde.mean_factor(t), sde.std(t));
                let pts = [[0.3, 0.1], [-1.2, 0.8], [2.5, -0.4]];
                let x: Vec<f32> = pts.iter().flatten().map(|&v| v as f32).collect();
                let s = crate::tensor::to_vec(score.score(from_rows::<Flex>(x, 3, 2, &dev), &[t]));
                for (i, p) in pts.iter().enumerate() {
                    let host = pt.score_at(p);
                    let h = 1e-5;
                    for j in 0..2 {
                        let mut a = p.to_vec();
                        let mut b = p.to_vec();
                        a[j] += h;
                        b[j] -= h;
                        let fd = (pt.log_pdf(&a) - pt.log_pdf(&b)) / (2.0 * h);
                        assert!(
                            (fd - host[j]).abs() < 1e-5 * (1.0 + fd.abs()),
                            "fd {fd} host {}",
                            host[j]
                        );
                        let dv = s[i * 2 + j] as f64;
                        assert!(
                            (dv - host[j]).abs() < 2e-3 * (1.0 + host[j].abs()),
                            "t={t} dev {dv} host {}",
                            host[j]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn samples_have_the_mixture_moments() {
        let gmm = GaussianMixture::new(
            vec![0.25, 0.75],
            vec![vec![-3.0, 0.0], vec![3.0, 1.0]],
            vec![vec![1.0, 0.5, 0.5, 1.0], vec![0.25, 0.0, 0.0, 2.0]],
        )
        .unwrap();
        let mut rng = Rng::new(5);
        let n = 40_000;
        let (x, lab) = gmm.sample_labelled(n, &mut rng);
        let frac = lab.iter().filter(|&&k| k == 0).count() as f64 / n as f64;
        assert!((frac - 0.25).abs() < 0.01);
        let pts: Vec<[f64; 2]> = x
            .chunks(2)
            .zip(&lab)
            .filter(|(_, &k)| k == 0)
            .map(|(c, _)| [c[0] as f64, c[1] as f64])
            .collect();
        let cov01 = pts.iter().map(|p| (p[0] + 3.0) * p[1]).sum::<f64>() / pts.len() as f64;
        assert!((cov01 - 0.5).abs() < 0.05, "{cov01}");
        assert!(GaussianMixture::new(vec![1.0], vec![vec![0.0]], vec![vec![-1.0]]).is_err());
    }
}
