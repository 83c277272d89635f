//! Statistics between two sets of feature vectors: Fréchet distance (FID, Heusel et al. 2017),
//! kernel distance (KID, Bińkowski et al. 2018) and k-NN precision/recall (Kynkäänniemi et al.
//! 2019).

use super::Points;
use crate::linalg::{symmetric_eigenvalues, symmetric_eigenvectors};
use crate::rng::Rng;

/// Mean of the rows of `x`, in f64.
fn mean_of(x: Points) -> Vec<f64> {
    let (n, d) = (x.len(), x.dim);
    let mut mean = vec![0.0; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(&x.data[i * d..(i + 1) * d]) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    mean
}

/// Mean and covariance (divisor n − 1) of the rows of `x`, in f64.
pub fn mean_cov(x: Points) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.len(), x.dim);
    let mean = mean_of(x);
    let mut cov = vec![0.0; d * d];
    let mut c = vec![0.0; d];
    for i in 0..n {
        for (k, cv) in c.iter_mut().enumerate() {
            *cv = x.data[i * d + k] as f64 - mean[k];
        }
        for a in 0..d {
            let ca = c[a];
            let row = &mut cov[a * d..(a + 1) * d];
            for (r, &cb) in row.iter_mut().zip(&c).skip(a) {
                *r += ca * cb;
            }
        }
    }
    let denom = (n.max(2) - 1) as f64;
    for a in 0..d {
        for b in a..d {
            let v = cov[a * d + b] / denom;
            cov[a * d + b] = v;
            cov[b * d + a] = v;
        }
    }
    (mean, cov)
}

/// The symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues
/// from rounding are clipped to 0).
pub fn sqrt_psd(a: &[f64], n: usize) -> Vec<f64> {
    let (vals, u) = symmetric_eigenvectors(a, n);
    // W = U·Λ^½, then A^½ = W Uᵀ (row-by-row dot products).
    let mut w = u.clone();
    for row in w.chunks_mut(n.max(1)) {
        for (v, &l) in row.iter_mut().zip(&vals) {
            *v *= l.max(0.0).sqrt();
        }
    }
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = dot64(&w[i * n..(i + 1) * n], &u[j * n..(j + 1) * n]);
        }
    }
    out
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                out[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    out
}

/// Σ √max(λ, 0) over the eigenvalues λ of the symmetric n × n matrix `a`.
fn trace_sqrt(a: &[f64], n: usize) -> f64 {
    symmetric_eigenvalues(a, n)
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum()
}

/// Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂):
/// ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½.
pub fn frechet_from_stats(m1: &[f64], c1: &[f64], m2: &[f64], c2: &[f64]) -> f64 {
    let d = m1.len();
    let dm: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    let tr = |c: &[f64]| (0..d).map(|i| c[i * d + i]).sum::<f64>();
    let s1 = sqrt_psd(c1, d);
    let inner = matmul(&matmul(&s1, c2, d), &s1, d);
    // Symmetrise against rounding before the eigen-decomposition.
    let sym: Vec<f64> = (0..d * d)
        .map(|k| 0.5 * (inner[k] + inner[(k % d) * d + k / d]))
        .collect();
    (dm + tr(c1) + tr(c2) - 2.0 * trace_sqrt(&sym, d)).max(0.0)
}

/// Rows of `x` minus their mean, divided by √(n − 1) (so that Σ = AᵀA), with the mean.
fn centred(x: Points) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.len(), x.dim);
    let mean = mean_of(x);
    let norm = ((n.max(2) - 1) as f64).sqrt();
    let a: Vec<f64> = x.data[..n * d]
        .iter()
        .enumerate()
        .map(|(k, &v)| (v as f64 - mean[k % d]) / norm)
        .collect();
    (a, mean)
}

/// Fréchet distance between Gaussians fitted to two feature sets (FID when the features are a
/// classifier's penultimate layer or Inception-v3's pool3).
///
/// With fewer samples than dimensions (2 000 images of 2 048 Inception features) it works in
/// sample space: with Σ₁ = AᵀA and Σ₂ = BᵀB (centred rows over √(n − 1)), the eigenvalues of
/// Σ₁^½ Σ₂ Σ₁^½ are the squared singular values of C = ABᵀ, so tr (Σ₁^½ Σ₂ Σ₁^½)^½ = ‖ABᵀ‖_*,
/// from an n × n eigenproblem instead of two d × d ones.
pub fn frechet_distance(x: Points, y: Points) -> f64 {
    let (n1, n2, d) = (x.len(), y.len(), x.dim);
    if n1.min(n2) >= d {
        let (m1, c1) = mean_cov(x);
        let (m2, c2) = mean_cov(y);
        return frechet_from_stats(&m1, &c1, &m2, &c2);
    }
    let (a, m1) = centred(x);
    let (b, m2) = centred(y);
    let dm: f64 = m1.iter().zip(&m2).map(|(p, q)| (p - q).powi(2)).sum();
    // ‖ABᵀ‖_* = ‖BAᵀ‖_*: put the smaller set first, so G = C Cᵀ is the smaller Gram matrix.
    let (small, k, large, n_large) = if n1 <= n2 {
        (&a, n1, &b, n2)
    } else {
        (&b, n2, &a, n1)
    };
    let c: Vec<f64> = (0..k)
        .flat_map(|i| (0..n_large).map(move |j| (i, j)))
        .map(|(i, j)| dot64(&small[i * d..(i + 1) * d], &large[j * d..(j + 1) * d]))
        .collect();
    let cr = |i: usize| &c[i * n_large..(i + 1) * n_large];
    let g: Vec<f64> = (0..k * k).map(|ij| dot64(cr(ij / k), cr(ij % k))).collect();
    let tr1 = dot64(&a, &a);
    let tr2 = dot64(&b, &b);
    (dm + tr1 + tr2 - 2.0 * trace_sqrt(&g, k)).max(0.0)
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum()
}

/// Kernel inception distance: the unbiased MMD² with the cubic polynomial kernel
/// k(x, y) = (xᵀy/d + 1)³, averaged over `subsets` random subsets of `subset_size` points of
/// each set (Bińkowski et al. 2018, as in their reference code).
pub fn kernel_distance(
    x: Points,
    y: Points,
    subsets: usize,
    subset_size: usize,
    rng: &mut Rng,
) -> f64 {
    let d = x.dim as f64;
    let m = subset_size.min(x.len()).min(y.len());
    if m < 2 {
        return f64::NAN;
    }
    let k = |a: &[f32], b: &[f32]| (dot(a, b) / d + 1.0).powi(3);
    let mut total = 0.0;
    for _ in 0..subsets.max(1) {
        // Subsets without replacement: a repeated point would enter k(x, x) terms and bias
        // the unbiased estimator upwards.
        let ix = rng.distinct(x.len(), m);
        let iy = rng.distinct(y.len(), m);
        let (mut kxx, mut kyy, mut kxy) = (0.0, 0.0, 0.0);
        for a in 0..m {
            for b in 0..m {
                kxy += k(x.row(ix[a]), y.row(iy[b]));
                if a != b {
                    kxx += k(x.row(ix[a]), x.row(ix[b]));
                    kyy += k(y.row(iy[a]), y.row(iy[b]));
                }
            }
        }
        let mf = m as f64;
        total += (kxx + kyy) / (mf * (mf - 1.0)) - 2.0 * kxy / (mf * mf);
    }
    total / subsets.max(1) as f64
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum()
}

/// Squared distance of every point of `p` to its k-th nearest other point of `p`.
fn knn_radii(p: Points, k: usize) -> Vec<f64> {
    let n = p.len();
    (0..n)
        .map(|i| {
            let mut d: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| sq_dist(p.row(i), p.row(j)))
                .collect();
            let kk = k.min(d.len()).max(1) - 1;
            d.select_nth_unstable_by(kk, |a, b| a.total_cmp(b));
            d[kk]
        })
        .collect()
}

/// Fraction of `queries` inside the k-NN manifold of `support` (the union of balls around each
/// support point reaching its k-th nearest neighbour).
fn coverage(queries: Points, support: Points, radii: &[f64]) -> f64 {
    let inside = (0..queries.len())
        .filter(|&i| {
            (0..support.len()).any(|j| sq_dist(queries.row(i), support.row(j)) <= radii[j])
        })
        .count();
    inside as f64 / queries.len().max(1) as f64
}

/// Improved precision and recall (Kynkäänniemi et al. 2019) with k nearest neighbours: precision
/// is the fraction of generated points inside the real manifold, recall the fraction of real
/// points inside the generated one.
pub fn precision_recall(real: Points, fake: Points, k: usize) -> (f64, f64) {
    let rr = knn_radii(real, k);
    let rf = knn_radii(fake, k);
    (coverage(fake, real, &rr), coverage(real, fake, &rf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random rotation of R^d (Gram–Schmidt of a Gaussian matrix), row-major.
    fn rotation(d: usize, rng: &mut Rng) -> Vec<f64> {
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < d {
            let mut v: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
            for u in &q {
                let p: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            q.push(v.iter().map(|a| a / norm).collect());
        }
        q.concat()
    }

    #[test]
    fn frechet_distance_matches_the_closed_form_for_rotated_diagonal_covariances() {
        // With Σ₁ = R diag(a) Rᵀ and Σ₂ = R diag(b) Rᵀ, the distance is ‖Δμ‖² + Σ(√a − √b)².
        let d = 6;
        let mut rng = Rng::new(1);
        let r = rotation(d, &mut rng);
        let a = [1.0, 2.0, 0.5, 3.0, 0.1, 1.5];
        let b = [2.0, 0.5, 0.5, 1.0, 0.4, 4.0];
        let cov = |diag: &[f64]| -> Vec<f64> {
            let mut c = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..d {
                    c[i * d + j] = (0..d).map(|k| r[i * d + k] * diag[k] * r[j * d + k]).sum();
                }
            }
            c
        };
        let m1 = vec![0.3; d];
        let m2: Vec<f64> = (0..d).map(|i| i as f64 * 0.2).collect();
        let want: f64 = m1
            .iter()
            .zip(&m2)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            + a.iter()
                .zip(&b)
                .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
                .sum::<f64>();
        let got = frechet_from_stats(&m1, &cov(&a), &m2, &cov(&b));
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        // The square root squares back.
        let c = cov(&a);
        let s = sqrt_psd(&c, d);
        let s2 = matmul(&s, &s, d);
        assert!(s2.iter().zip(&c).all(|(x, y)| (x - y).abs() < 1e-10));
    }

    fn gaussian(n: usize, d: usize, shift: f32, scale: f32, rng: &mut Rng) -> Vec<f32> {
        (0..n * d)
            .map(|_| rng.normal() as f32 * scale + shift)
            .collect()
    }

    #[test]
    fn sample_space_frechet_equals_the_covariance_formula() {
        // Fewer samples than dimensions (rank-deficient covariances), both orders of n1, n2.
        let d = 40;
        let mut rng = Rng::new(7);
        for (n1, n2) in [(12, 30), (25, 9), (2, 2)] {
            let x = gaussian(n1, d, 0.1, 1.0, &mut rng);
            let y = gaussian(n2, d, -0.2, 2.0, &mut rng);
            let (px, py) = (Points::new(&x, d), Points::new(&y, d));
            let (m1, c1) = mean_cov(px);
            let (m2, c2) = mean_cov(py);
            let want = frechet_from_stats(&m1, &c1, &m2, &c2);
            let got = frechet_distance(px, py);
            // The covariance route takes square roots of rounding-level eigenvalues of the
            // rank-deficient matrices (√1e-15 each), so agreement is to ~1e-8, not 1e-15.
            assert!(
                (got - want).abs() < 1e-7 * want.max(1.0),
                "n1 {n1} n2 {n2}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn sample_statistics_separate_equal_from_different_distributions() {
        let (n, d) = (600, 8);
        let mut rng = Rng::new(2);
        let x = gaussian(n, d, 0.0, 1.0, &mut rng);
        let y = gaussian(n, d, 0.0, 1.0, &mut rng);
        let z = gaussian(n, d, 0.5, 1.0, &mut rng);
        let (px, py, pz) = (Points::new(&x, d), Points::new(&y, d), Points::new(&z, d));
        // FID of the sample estimates: ≈ 0 (bias ~ d²/n) vs ≈ ‖Δμ‖² = 2.
        let same = frechet_distance(px, py);
        let diff = frechet_distance(px, pz);
        assert!(same < 0.25, "same {same}");
        assert!((diff - 2.0).abs() < 0.4, "shifted {diff}");
        // KID is unbiased: ≈ 0 for equal laws, clearly positive for different ones.
        // Subsets as large as the sets (every point once): duplicates would bias this up.
        let kid_full = kernel_distance(px, py, 3, n, &mut rng);
        assert!(kid_full.abs() < 0.01, "KID of whole sets {kid_full}");
        let kid_same = kernel_distance(px, py, 5, 300, &mut rng);
        let kid_diff = kernel_distance(px, pz, 5, 300, &mut rng);
        assert!(kid_same.abs() < 0.05, "KID same {kid_same}");
        assert!(kid_diff > 0.15, "KID shifted {kid_diff}");
    }

    #[test]
    fn precision_and_recall_see_mode_dropping_and_disjoint_sets() {
        let (n, d) = (400, 2);
        let mut rng = Rng::new(3);
        // Real: two well-separated blobs; fake A: the same law; fake B: only the first blob;
        // fake C: far away.
        let blob = |c: f32, rng: &mut Rng| gaussian(1, d, c, 0.3, rng);
        let real: Vec<f32> = (0..n)
            .flat_map(|i| blob(if i % 2 == 0 { -3.0 } else { 3.0 }, &mut rng))
            .collect();
        let same: Vec<f32> = (0..n)
            .flat_map(|i| blob(if i % 2 == 0 { -3.0 } else { 3.0 }, &mut rng))
            .collect();
        let one: Vec<f32> = (0..n).flat_map(|_| blob(-3.0, &mut rng)).collect();
        let far: Vec<f32> = (0..n).flat_map(|_| blob(30.0, &mut rng)).collect();
        let pr = |f: &[f32]| precision_recall(Points::new(&real, d), Points::new(f, d), 3);
        let (p, r) = pr(&same);
        assert!(p > 0.85 && r > 0.85, "same law: {p} {r}");
        let (p, r) = pr(&one);
        assert!(p > 0.85 && (r - 0.5).abs() < 0.08, "one mode: {p} {r}");
        let (p, r) = pr(&far);
        assert!(p == 0.0 && r == 0.0, "disjoint: {p} {r}");
    }
}
