//! Comparing a generated sample with real data, each figure beside its real-vs-real floor.

use serde::Serialize;

use super::{energy_distance, mmd_rbf, sliced_wasserstein, Points};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// A statistic between generated and real data, with the same statistic between two disjoint
/// halves of the real data (the noise floor at that sample size).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Figure {
    /// Generated vs real.
    pub value: f64,
    /// Real vs real.
    pub real_vs_real: f64,
}

/// Energy distance, MMD² and sliced Wasserstein of a comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Points per set used.
    pub num_points: usize,
    /// Dimension.
    pub dim: usize,
    /// Energy distance.
    pub energy_distance: Figure,
    /// Unbiased MMD² (RBF, median heuristic).
    pub mmd2_rbf: Figure,
    /// Sliced 2-Wasserstein (128 projections).
    pub sliced_wasserstein: Figure,
}

/// Splits `real` randomly into halves A and B of m points each, takes m generated points, and
/// reports stat(fake, B) beside stat(A, B). `max_points` caps m (the statistics are O(m²)).
pub fn compare(
    real: &[f32],
    fake: &[f32],
    dim: usize,
    max_points: usize,
    rng: &mut Rng,
) -> Result<Comparison> {
    let (nr, nf) = (real.len() / dim, fake.len() / dim);
    let m = (nr / 2).min(nf).min(max_points);
    if m < 2 {
        return Err(Error::Shape(format!(
            "need at least 4 real and 2 generated points, got {nr} and {nf}"
        )));
    }
    let idx = rng.permutation(nr);
    let take = |ids: &[usize], src: &[f32]| -> Vec<f32> {
        ids.iter()
            .flat_map(|&i| src[i * dim..(i + 1) * dim].iter().copied())
            .collect()
    };
    let a = take(&idx[..m], real);
    let b = take(&idx[m..2 * m], real);
    let f = fake[..m * dim].to_vec();
    let (pa, pb, pf) = (
        Points::new(&a, dim),
        Points::new(&b, dim),
        Points::new(&f, dim),
    );
    let mut r1 = rng.fork();
    let mut r2 = r1.clone();
    Ok(Comparison {
        num_points: m,
        dim,
        energy_distance: Figure {
            value: energy_distance(pf, pb),
            real_vs_real: energy_distance(pa, pb),
        },
        mmd2_rbf: Figure {
            value: mmd_rbf(pf, pb),
            real_vs_real: mmd_rbf(pa, pb),
        },
        sliced_wasserstein: Figure {
            value: sliced_wasserstein(pf, pb, 128, &mut r1),
            real_vs_real: sliced_wasserstein(pa, pb, 128, &mut r2),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_from_the_same_law_sits_at_the_floor_and_a_shift_does_not() {
        let mut rng = Rng::new(4);
        let real = rng.normal_vec(2 * 2000);
        let same = rng.normal_vec(2 * 1000);
        let shifted: Vec<f32> = rng.normal_vec(2 * 1000).iter().map(|v| v + 0.4).collect();
        let c = compare(&real, &same, 2, 1000, &mut rng).unwrap();
        assert!(
            c.energy_distance.value < 4.0 * c.energy_distance.real_vs_real + 1e-3,
            "{c:?}"
        );
        let s = compare(&real, &shifted, 2, 1000, &mut rng).unwrap();
        assert!(
            s.energy_distance.value > 5.0 * s.energy_distance.real_vs_real,
            "{s:?}"
        );
        assert!(s.mmd2_rbf.value > s.mmd2_rbf.real_vs_real && s.sliced_wasserstein.value > 0.2);
        assert!(compare(&real[..4], &same, 2, 10, &mut rng).is_err());
    }
}
