//! Exact likelihoods through the probability-flow ODE (Song et al. 2021, Sec. 4.3 and App. D.2):
//! log p_0(x0) = log p_T(x_T) + ∫_ε^T ∇·f̃(x_t, t) dt, f̃ = f − ½g²∇log p_t, integrated with RK45
//! jointly with x_t. The divergence is exact (d vector–Jacobian products) or the
//! Hutchinson–Skilling estimate E_v[vᵀ(∂f̃/∂x)v] with Rademacher or Gaussian probes held fixed
//! along the trajectory (Grathwohl et al. 2019).

use burn::tensor::{backend::AutodiffBackend, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::samplers::{rk45, Rk45Options};
use crate::score::ScoreFn;
use crate::sde::{prior_logp, Sde};
use crate::tensor::{rademacher, randn, to_vec};

/// How ∇·f̃ is computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Divergence {
    /// Exact trace of the Jacobian (d backward passes per evaluation).
    Exact,
    /// Hutchinson–Skilling with `probes` Rademacher vectors.
    Rademacher {
        /// Number of probe vectors.
        probes: usize,
    },
    /// Hutchinson–Skilling with `probes` Gaussian vectors.
    Gaussian {
        /// Number of probe vectors.
        probes: usize,
    },
}

/// Per-point negative log-likelihoods and the work it took.
#[derive(Clone, Debug)]
pub struct Nll {
    /// −log p(x) per point, in nats (summed over dimensions).
    pub per_point: Vec<f64>,
    /// Dimension d.
    pub dim: usize,
    /// Score evaluations (forward passes) of the ODE solve.
    pub nfe: usize,
}

impl Nll {
    /// Mean NLL in nats per dimension.
    pub fn nats_per_dim(&self) -> f64 {
        self.per_point.iter().sum::<f64>() / (self.per_point.len().max(1) * self.dim) as f64
    }
    /// Bits per dimension; `dequant_levels` = Some(256) adds ln 256 per dimension for 8-bit data
    /// scaled to [0, 1] with uniform dequantisation (MATH.md).
    pub fn bits_per_dim(&self, dequant_levels: Option<f64>) -> f64 {
        (self.nats_per_dim() + dequant_levels.map_or(0.0, f64::ln)) / std::f64::consts::LN_2
    }
}

/// Uniform dequantisation (Theis, van den Oord & Bethge 2016): integer data k ∈ {0, …, L−1} become
/// (k + u)/L with u ~ U(0, 1), continuous in [0, 1]. A model density p on that scale bounds the
/// discrete likelihood: −log P(k) ≤ E_u[−log p((k + u)/L)] + ln L per dimension, which is what
/// [`Nll::bits_per_dim`] with `Some(L)` reports. Errors name the first value that is not such an
/// integer.
pub fn dequantize(data: &[f32], levels: u32, rng: &mut Rng) -> Result<Vec<f32>> {
    let l = levels as f32;
    data.iter()
        .enumerate()
        .map(|(i, &k)| {
            if k.fract() != 0.0 || k < 0.0 || k >= l {
                return Err(Error::Shape(format!(
                    "value {k} at position {i} is not an integer in 0..{levels}"
                )));
            }
            Ok((k + rng.uniform() as f32) / l)
        })
        .collect()
}

/// Negative log-likelihood of each row of `x0` under the model defined by `score` and `sde`.
pub fn probability_flow_nll<B: AutodiffBackend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    x0: Tensor<B::InnerBackend, 2>,
    divergence: Divergence,
    opts: Rk45Options,
    rng: &mut Rng,
) -> Result<Nll> {
    probability_flow_nll_observed(score, sde, x0, divergence, opts, rng, &mut |_| {})
}

/// [`probability_flow_nll`], calling `progress` with the time t of every accepted ODE step (from
/// t_min up to the SDE's end), e.g. for a progress bar: an image's likelihood takes thousands of
/// network evaluations.
pub fn probability_flow_nll_observed<B: AutodiffBackend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    x0: Tensor<B::InnerBackend, 2>,
    divergence: Divergence,
    opts: Rk45Options,
    rng: &mut Rng,
    progress: &mut dyn FnMut(f64),
) -> Result<Nll> {
    let [n, d] = x0.dims();
    let device = x0.device();
    let probes: Vec<Tensor<B::InnerBackend, 2>> = match divergence {
        Divergence::Exact => Vec::new(),
        Divergence::Rademacher { probes } => (0..probes.max(1))
            .map(|_| rademacher(rng, n, d, &device))
            .collect(),
        Divergence::Gaussian { probes } => (0..probes.max(1))
            .map(|_| randn(rng, n, d, &device))
            .collect(),
    };
    let mut nfe = 0usize;
    let passes = match divergence {
        Divergence::Exact => d,
        _ => probes.len(),
    };
    let mut f = |t: f64, y: Tensor<B::InnerBackend, 2>| -> Tensor<B::InnerBackend, 2> {
        let x = y.narrow(1, 0, d);
        let a = sde.drift_coef(t);
        let half_g2 = 0.5 * sde.diffusion(t).powi(2);
        // One forward + backward per pass (column i of the Jacobian, or one probe); every
        // graph is consumed by its backward pass, and the first pass also gives the drift.
        let mut drift = None;
        let mut div_s = Tensor::<B::InnerBackend, 2>::zeros([n, 1], &x.device());
        #[allow(clippy::needless_range_loop)] // k indexes Jacobian columns or probes
        for k in 0..passes {
            let xg = Tensor::<B, 2>::from_inner(x.clone()).require_grad();
            let s = score.score(xg.clone(), &[t]);
            nfe += 1;
            if drift.is_none() {
                drift = Some(x.clone().mul_scalar(a) - s.clone().inner().mul_scalar(half_g2));
            }
            let target = match divergence {
                Divergence::Exact => s.narrow(1, k, 1).sum(),
                _ => (s * Tensor::<B, 2>::from_inner(probes[k].clone())).sum(),
            };
            let grads = target.backward();
            if let Some(g) = xg.grad(&grads) {
                div_s = div_s
                    + match divergence {
                        Divergence::Exact => g.narrow(1, k, 1),
                        _ => (g * probes[k].clone()).sum_dim(1),
                    };
            }
        }
        if divergence != Divergence::Exact {
            div_s = div_s.div_scalar(passes as f64);
        }
        // ∇·f̃ = d·a − ½g²∇·s.
        let div = div_s.mul_scalar(-half_g2).add_scalar(a * d as f64);
        let drift = drift.unwrap_or_else(|| x.clone().mul_scalar(a));
        Tensor::cat(vec![drift, div], 1)
    };
    let y0 = Tensor::cat(vec![x0, Tensor::zeros([n, 1], &device)], 1);
    let (y, _) = rk45(&mut f, y0, sde.t_min(), sde.t_end(), opts, &mut |t, _| {
        progress(t)
    })?;
    let x_t = y.clone().narrow(1, 0, d);
    let delta = to_vec(y.narrow(1, d, 1));
    let prior = to_vec(prior_logp(sde, x_t));
    let per_point: Vec<f64> = prior
        .iter()
        .zip(&delta)
        .map(|(p, dl)| -(*p as f64 + *dl as f64))
        .collect();
    if per_point.iter().any(|v| !v.is_finite()) {
        return Err(Error::Unsupported(
            "the likelihood ODE produced a non-finite value".into(),
        ));
    }
    Ok(Nll {
        per_point,
        dim: d,
        nfe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{GaussianMixture, GmmScore};
    use crate::sde::SdeSpec;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;

    fn gaussian() -> GaussianMixture {
        GaussianMixture::new(
            vec![1.0],
            vec![vec![0.5, -1.0]],
            vec![vec![0.8, 0.3, 0.3, 0.5]],
        )
        .unwrap()
    }

    fn run(spec: &SdeSpec, div: Divergence, n: usize, seed: u64) -> (Nll, Vec<f64>) {
        let dev = Default::default();
        let g = gaussian();
        let score = GmmScore::<B>::new(g.clone(), spec, &dev).unwrap();
        let mut rng = Rng::new(seed);
        let x = g.sample(n, &mut rng);
        let exact: Vec<f64> = x
            .chunks(2)
            .map(|p| -g.log_pdf(&[p[0] as f64, p[1] as f64]))
            .collect();
        let xt = crate::tensor::from_rows::<Flex>(x, n, 2, &dev);
        let opts = Rk45Options {
            rtol: 1e-6,
            atol: 1e-6,
            ..Default::default()
        };
        let nll = probability_flow_nll(&score, score.sde(), xt, div, opts, &mut rng).unwrap();
        (nll, exact)
    }

    #[test]
    fn the_observed_nll_reports_increasing_times_up_to_the_end_and_the_same_result() {
        let dev = Default::default();
        let spec = SdeSpec::default_for("vp").unwrap();
        let score = GmmScore::<B>::new(gaussian(), &spec, &dev).unwrap();
        let x = gaussian().sample(16, &mut Rng::new(3));
        let opts = Rk45Options {
            rtol: 1e-5,
            atol: 1e-5,
            ..Default::default()
        };
        let sde = score.sde();
        let xt = || crate::tensor::from_rows::<Flex>(x.clone(), 16, 2, &dev);
        let div = Divergence::Rademacher { probes: 2 };
        let plain = probability_flow_nll(&score, sde, xt(), div, opts, &mut Rng::new(5)).unwrap();
        let mut times = Vec::new();
        let seen = probability_flow_nll_observed(
            &score,
            sde,
            xt(),
            div,
            opts,
            &mut Rng::new(5),
            &mut |t| times.push(t),
        )
        .unwrap();
        assert_eq!(plain.per_point, seen.per_point);
        assert!(times.len() > 3, "{times:?}");
        assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
        assert!(times[0] > sde.t_min(), "{times:?}");
        assert!(
            (times[times.len() - 1] - sde.t_end()).abs() < 1e-9,
            "{times:?}"
        );
    }

    #[test]
    fn exact_trace_nll_matches_the_analytic_gaussian_nll() {
        for spec in [
            SdeSpec::Ve {
                sigma_min: 0.01,
                sigma_max: 50.0,
            },
            SdeSpec::default_for("vp").unwrap(),
            SdeSpec::default_for("subvp").unwrap(),
        ] {
            let (nll, exact) = run(&spec, Divergence::Exact, 64, 1);
            let exact_mean = exact.iter().sum::<f64>() / (64.0 * 2.0);
            let diff = (nll.nats_per_dim() - exact_mean).abs();
            assert!(
                diff < 0.01,
                "{spec:?}: model {} vs exact {exact_mean} nats/dim",
                nll.nats_per_dim()
            );
            // Point by point, too (the prior mismatch log p_T − log N(0, σ_T²I) varies per point).
            for (a, b) in nll.per_point.iter().zip(&exact) {
                assert!((a - b).abs() / 2.0 < 0.03, "{spec:?}: point {a} vs {b}");
            }
            assert!(
                (nll.bits_per_dim(None) - nll.nats_per_dim() / std::f64::consts::LN_2).abs()
                    < 1e-12
            );
        }
    }

    #[test]
    fn dequantisation_stays_in_its_bin_and_rejects_non_integers() {
        let mut rng = Rng::new(1);
        let x = dequantize(&[0.0, 255.0, 17.0], 256, &mut rng).unwrap();
        for (v, k) in x.iter().zip([0.0f32, 255.0, 17.0]) {
            assert!(*v >= k / 256.0 && *v < (k + 1.0) / 256.0);
        }
        assert!(
            dequantize(&[1.5], 256, &mut rng).is_err()
                && dequantize(&[256.0], 256, &mut rng).is_err()
        );
        // The uniform density on [0, 1]^d has NLL 0, so 8-bit data cost exactly 8 bits/dim.
        let nll = Nll {
            per_point: vec![0.0; 4],
            dim: 3,
            nfe: 0,
        };
        assert!((nll.bits_per_dim(Some(256.0)) - 8.0).abs() < 1e-12);
    }

    #[test]
    fn hutchinson_estimate_agrees_within_its_confidence_interval() {
        let spec = SdeSpec::default_for("vp").unwrap();
        for div in [
            Divergence::Rademacher { probes: 1 },
            Divergence::Gaussian { probes: 2 },
        ] {
            let (nll, exact) = run(&spec, div, 200, 2);
            let diffs: Vec<f64> = nll
                .per_point
                .iter()
                .zip(&exact)
                .map(|(a, b)| a - b)
                .collect();
            let n = diffs.len() as f64;
            let mean = diffs.iter().sum::<f64>() / n;
            let sd = (diffs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            // The estimator is unbiased: the mean error lies within 4 standard errors (+ ODE error).
            assert!(
                mean.abs() < 4.0 * sd / n.sqrt() + 0.02,
                "{div:?}: mean diff {mean}, sd {sd}"
            );
            assert!(sd > 0.0, "{div:?}: a stochastic estimate must vary");
        }
    }
}
