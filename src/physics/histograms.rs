//! Normalised histograms and the distances the LArTPC studies report between generated and
//! simulated events: squared error Σ(p−q)², its mean over bins, its root, and the symmetric
//! χ² = Σ(p−q)²/(p+q) (Imani et al. 2023; the reference slides' SSNet panels).

use serde::Serialize;

use crate::error::{Error, Result};

/// Equal-width bins over [lo, hi]; values outside fall into the edge bins, so mass a generator
/// puts out of range still counts against it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Binning {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Number of bins.
    pub bins: usize,
}

/// The most bins a histogram may have.
pub const MAX_BINS: usize = 1_000_000;

impl Binning {
    /// `bins` bins spanning the finite values of `reference` (one unit wide around a constant).
    pub fn spanning(reference: &[f64], bins: usize) -> Result<Self> {
        let finite = reference.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if bins == 0 || bins > MAX_BINS || !lo.is_finite() {
            return Err(Error::Shape(format!(
                "a histogram needs 1 to {MAX_BINS} bins and at least one finite value ({} values, \
                 {bins} bins)",
                reference.len()
            )));
        }
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        };
        Ok(Binning { lo, hi, bins })
    }

    /// Bin index of `v` (clamped to the edge bins).
    pub fn index(&self, v: f64) -> usize {
        let f = (v - self.lo) / (self.hi - self.lo) * self.bins as f64;
        (f.max(0.0) as usize).min(self.bins - 1)
    }

    /// The histogram of the finite values in `values`, normalised to sum 1 (all zeros when
    /// there are none).
    pub fn normalised(&self, values: &[f64]) -> Vec<f64> {
        let mut h = vec![0.0; self.bins];
        let mut n = 0usize;
        for &v in values.iter().filter(|v| v.is_finite()) {
            h[self.index(v)] += 1.0;
            n += 1;
        }
        if n > 0 {
            h.iter_mut().for_each(|c| *c /= n as f64);
        }
        h
    }
}

/// Distances between two normalised histograms p, q over the same bins.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HistogramDistance {
    /// Squared error Σᵢ (pᵢ − qᵢ)².
    pub squared_error: f64,
    /// Mean squared error Σᵢ (pᵢ − qᵢ)² / bins.
    pub mse: f64,
    /// Root mean squared error √MSE.
    pub rmse: f64,
    /// Symmetric χ² = Σᵢ (pᵢ − qᵢ)² / (pᵢ + qᵢ) over bins with pᵢ + qᵢ > 0; in [0, 2].
    pub chi2: f64,
}

impl HistogramDistance {
    /// The four distances between `p` and `q` (equal lengths).
    pub fn between(p: &[f64], q: &[f64]) -> Result<Self> {
        if p.len() != q.len() || p.is_empty() {
            return Err(Error::Shape(format!(
                "histograms of {} and {} bins",
                p.len(),
                q.len()
            )));
        }
        let mut se = 0.0;
        let mut chi2 = 0.0;
        for (a, b) in p.iter().zip(q) {
            let d2 = (a - b) * (a - b);
            se += d2;
            if a + b > 0.0 {
                chi2 += d2 / (a + b);
            }
        }
        let mse = se / p.len() as f64;
        Ok(HistogramDistance {
            squared_error: se,
            mse,
            rmse: mse.sqrt(),
            chi2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_hand_computed_values() {
        let p = [0.5, 0.5, 0.0];
        let q = [0.25, 0.5, 0.25];
        let d = HistogramDistance::between(&p, &q).unwrap();
        // (0.25² + 0 + 0.25²) = 0.125; χ² = 0.0625/0.75 + 0.0625/0.25 = 1/3.
        assert!((d.squared_error - 0.125).abs() < 1e-15);
        assert!((d.mse - 0.125 / 3.0).abs() < 1e-15);
        assert!((d.rmse - (0.125f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!((d.chi2 - 1.0 / 3.0).abs() < 1e-15);
        // Disjoint supports give the maximum χ² = 2.
        let d = HistogramDistance::between(&[1.0, 0.0], &[0.0, 1.0]).unwrap();
        assert!((d.chi2 - 2.0).abs() < 1e-15);
        assert!(HistogramDistance::between(&[1.0], &[0.5, 0.5]).is_err());
    }

    #[test]
    fn binning_spans_the_reference_and_clamps_outliers() {
        let b = Binning::spanning(&[0.0, 10.0, 5.0, f64::NAN], 10).unwrap();
        assert_eq!((b.lo, b.hi), (0.0, 10.0));
        assert_eq!(b.index(-3.0), 0);
        assert_eq!(b.index(10.0), 9);
        assert_eq!(b.index(99.0), 9);
        assert_eq!(b.index(4.99), 4);
        let h = b.normalised(&[1.0, 1.5, 9.5, 100.0]);
        assert_eq!(h[1], 0.5);
        assert_eq!(h[9], 0.5);
        assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(Binning::spanning(&[], 5).is_err());
        assert!(Binning::spanning(&[1.0], MAX_BINS).is_ok());
        let e = Binning::spanning(&[1.0], MAX_BINS + 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bins"), "{e}");
        let c = Binning::spanning(&[3.0, 3.0], 4).unwrap();
        assert_eq!(c.index(3.0), 2);
    }

    #[test]
    fn same_law_samples_give_a_small_chi2_that_shrinks_with_n() {
        // Two samples of N from one law: E[χ²] ≈ (bins − 1)/N (each bin's (p−q)²/(p+q) has
        // expectation ≈ 1/N for the symmetric statistic of two samples of N).
        let mut rng = crate::rng::Rng::new(1);
        let bins = 20;
        let chi2 = |n: usize, rng: &mut crate::rng::Rng| {
            let a: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let b: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let bin = Binning::spanning(&a, bins).unwrap();
            HistogramDistance::between(&bin.normalised(&a), &bin.normalised(&b))
                .unwrap()
                .chi2
        };
        let small = chi2(20_000, &mut rng);
        let expect = (bins - 1) as f64 / 20_000.0;
        assert!(
            small > 0.3 * expect && small < 3.0 * expect,
            "{small} vs {expect}"
        );
        let shifted: Vec<f64> = (0..20_000).map(|_| rng.normal() + 0.5).collect();
        let a: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
        let bin = Binning::spanning(&a, bins).unwrap();
        let d = HistogramDistance::between(&bin.normalised(&a), &bin.normalised(&shifted)).unwrap();
        assert!(d.chi2 > 20.0 * expect, "{}", d.chi2);
    }
}
