//! Dense symmetric linear algebra: Jacobi eigen-decomposition and Cholesky for the small
//! matrices of Gaussian mixtures (d ≲ 100), Householder + QL for the large covariance matrices of
//! feature statistics (d in the thousands).

mod householder;

pub use householder::{symmetric_eigenvalues, symmetric_eigenvectors};

/// Eigen-decomposition of a symmetric `d × d` matrix (row-major) by cyclic Jacobi rotations.
/// Returns (eigenvalues, eigenvectors as columns of a row-major matrix U), with A = U Λ Uᵀ.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut u = vec![0.0; d * d];
    for i in 0..d {
        u[i * d + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * d + j].powi(2))
            .sum();
        let scale: f64 = m.iter().map(|v| v * v).sum::<f64>().max(1e-300);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..d {
            for q in (p + 1)..d {
                let apq = m[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * d + q] - m[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let mkp = m[k * d + p];
                    let mkq = m[k * d + q];
                    m[k * d + p] = c * mkp - s * mkq;
                    m[k * d + q] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let mpk = m[p * d + k];
                    let mqk = m[q * d + k];
                    m[p * d + k] = c * mpk - s * mqk;
                    m[q * d + k] = s * mpk + c * mqk;
                }
                for k in 0..d {
                    let ukp = u[k * d + p];
                    let ukq = u[k * d + q];
                    u[k * d + p] = c * ukp - s * ukq;
                    u[k * d + q] = s * ukp + c * ukq;
                }
            }
        }
    }
    ((0..d).map(|i| m[i * d + i]).collect(), u)
}

/// Lower Cholesky factor L of a symmetric positive-definite matrix (A = L Lᵀ), or `None`.
pub fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_reconstructs_the_matrix_and_cholesky_factors_it() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, -0.2, 0.5, -0.2, 2.0];
        let (lam, u) = symmetric_eigen(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| u[i * 3 + k] * lam[k] * u[j * 3 + k]).sum();
                assert!((r - a[i * 3 + j]).abs() < 1e-12, "({i},{j}) {r}");
            }
        }
        let tr: f64 = lam.iter().sum();
        assert!((tr - 9.0).abs() < 1e-12);
        let l = cholesky(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((r - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
