//! Two-sample distances for low-dimensional data (design/MATH.md, "Two-sample distances").

use crate::rng::Rng;

/// A set of points: row-major values and the dimension.
#[derive(Clone, Copy, Debug)]
pub struct Points<'a> {
    /// Row-major values, `n·d` of them.
    pub data: &'a [f32],
    /// Dimension d.
    pub dim: usize,
}

impl<'a> Points<'a> {
    /// Wraps row-major data of dimension `dim`.
    pub fn new(data: &'a [f32], dim: usize) -> Self {
        Points { data, dim }
    }
    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

fn dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn mean_dist(a: Points, b: Points, same: bool) -> f64 {
    let (n, m) = (a.len(), b.len());
    let mut s = 0.0;
    for i in 0..n {
        let ai = a.row(i);
        let start = if same { i + 1 } else { 0 };
        for j in start..m {
            s += dist(ai, b.row(j));
        }
    }
    if same {
        2.0 * s / (n * n) as f64
    } else {
        s / (n * m) as f64
    }
}

/// Energy distance ED(P,Q) = 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (Székely & Rizzo 2013), V-statistic
/// form: ≥ 0, and 0 only for identical samples. O(n²).
pub fn energy_distance(x: Points, y: Points) -> f64 {
    (2.0 * mean_dist(x, y, false) - mean_dist(x, x, true) - mean_dist(y, y, true)).max(0.0)
}

/// Unbiased MMD² with an RBF kernel k(a,b) = exp(−‖a−b‖²/(2h²)), h the median pairwise
/// distance of the pooled sample (median heuristic; Gretton et al. 2012).
pub fn mmd_rbf(x: Points, y: Points) -> f64 {
    let pooled: Vec<&[f32]> = (0..x.len())
        .map(|i| x.row(i))
        .chain((0..y.len()).map(|j| y.row(j)))
        .collect();
    // Median over at most 1000 points keeps this cheap.
    let stride = (pooled.len() / 1000).max(1);
    let sub: Vec<&[f32]> = pooled.iter().step_by(stride).copied().collect();
    let mut ds: Vec<f64> = Vec::new();
    for i in 0..sub.len() {
        for j in (i + 1)..sub.len() {
            ds.push(dist(sub[i], sub[j]));
        }
    }
    ds.sort_by(|a, b| a.total_cmp(b));
    let h = ds.get(ds.len() / 2).copied().unwrap_or(1.0).max(1e-12);
    let k = |a: &[f32], b: &[f32]| (-dist(a, b).powi(2) / (2.0 * h * h)).exp();
    let within = |p: Points| {
        let n = p.len();
        let mut s = 0.0;
        for i in 0..n {
            for j in (i + 1)..n {
                s += k(p.row(i), p.row(j));
            }
        }
        2.0 * s / (n * (n - 1)).max(1) as f64
    };
    let mut cross = 0.0;
    for i in 0..x.len() {
        for j in 0..y.len() {
            cross += k(x.row(i), y.row(j));
        }
    }
    within(x) + within(y) - 2.0 * cross / (x.len() * y.len()).max(1) as f64
}

fn quantiles(mut v: Vec<f64>, q: usize) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    (0..q)
        .map(|i| {
            let pos = (i as f64 + 0.5) / q as f64 * n as f64 - 0.5;
            let lo = pos.floor().clamp(0.0, (n - 1) as f64) as usize;
            let hi = (lo + 1).min(n - 1);
            let f = (pos - lo as f64).clamp(0.0, 1.0);
            v[lo] * (1.0 - f) + v[hi] * f
        })
        .collect()
}

/// Sliced 2-Wasserstein distance: sqrt of the mean over `projections` random directions of the
/// squared W2 between the 1-D projections (Bonneel et al. 2015), with a seeded `rng`.
pub fn sliced_wasserstein(x: Points, y: Points, projections: usize, rng: &mut Rng) -> f64 {
    let d = x.dim;
    let q = x.len().max(y.len());
    let mut total = 0.0;
    for _ in 0..projections {
        let mut dir: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        dir.iter_mut().for_each(|v| *v /= norm);
        let proj = |p: Points| -> Vec<f64> {
            (0..p.len())
                .map(|i| p.row(i).iter().zip(&dir).map(|(a, b)| *a as f64 * b).sum())
                .collect()
        };
        let (qa, qb) = (quantiles(proj(x), q), quantiles(proj(y), q));
        total += qa
            .iter()
            .zip(&qb)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / q as f64;
    }
    (total / projections as f64).sqrt()
}

/// The two-sample noise floor of a statistic: its mean and standard deviation between
/// independent samples of the reference distribution of the given sizes.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct NoiseFloor {
    /// Mean of the statistic between independent reference samples.
    pub mean: f64,
    /// Standard deviation across repeats.
    pub std: f64,
}

impl NoiseFloor {
    /// A generous acceptance threshold: max(3·mean, mean + 6·std).
    pub fn threshold(&self) -> f64 {
        (3.0 * self.mean).max(self.mean + 6.0 * self.std)
    }
}

/// Estimates the noise floor of `stat` from `repeats` pairs of reference samples drawn by `draw`.
pub fn noise_floor(
    repeats: usize,
    mut draw: impl FnMut() -> (Vec<f32>, Vec<f32>),
    dim: usize,
    stat: impl Fn(Points, Points) -> f64,
) -> NoiseFloor {
    let vals: Vec<f64> = (0..repeats)
        .map(|_| {
            let (a, b) = draw();
            stat(Points::new(&a, dim), Points::new(&b, dim))
        })
        .collect();
    let mean = vals.iter().sum::<f64>() / repeats as f64;
    let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (repeats.max(2) - 1) as f64;
    NoiseFloor {
        mean,
        std: var.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauss(n: usize, d: usize, shift: f32, rng: &mut Rng) -> Vec<f32> {
        rng.normal_vec(n * d)
            .into_iter()
            .map(|v| v + shift)
            .collect()
    }

    #[test]
    fn distances_separate_shifted_samples_from_the_noise_floor() {
        let mut rng = Rng::new(1);
        let (a, b, c) = (
            gauss(500, 2, 0.0, &mut rng),
            gauss(500, 2, 0.0, &mut rng),
            gauss(500, 2, 0.5, &mut rng),
        );
        let (pa, pb, pc) = (Points::new(&a, 2), Points::new(&b, 2), Points::new(&c, 2));
        // ED of N(0,I) vs N(μ,I) in 2-D for ‖μ‖ = 0.5·√2 ≈ 0.71 is ≈ 0.2 (population value).
        let same = energy_distance(pa, pb);
        let diff = energy_distance(pa, pc);
        assert!(same < 0.03 && diff > 0.12, "same {same} diff {diff}");
        assert!(mmd_rbf(pa, pb).abs() < 0.01 && mmd_rbf(pa, pc) > 0.03);
        let sw_same = sliced_wasserstein(pa, pb, 64, &mut rng);
        let sw_diff = sliced_wasserstein(pa, pc, 64, &mut rng);
        // Sliced W2 of a pure shift μ: sqrt(E_θ (θ·μ)²) = ‖μ‖/√d = 0.5.
        assert!(
            sw_same < 0.15 && (sw_diff - 0.5).abs() < 0.12,
            "{sw_same} {sw_diff}"
        );
        assert!(energy_distance(pa, pa) < 1e-12);
    }

    #[test]
    fn noise_floor_threshold_covers_independent_samples() {
        let mut rng = Rng::new(2);
        let floor = noise_floor(
            8,
            || (gauss(300, 2, 0.0, &mut rng), gauss(300, 2, 0.0, &mut rng)),
            2,
            energy_distance,
        );
        assert!(floor.mean > 0.0 && floor.mean < 0.02);
        let (a, b) = (gauss(300, 2, 0.0, &mut rng), gauss(300, 2, 0.0, &mut rng));
        assert!(energy_distance(Points::new(&a, 2), Points::new(&b, 2)) < floor.threshold());
    }
}
