//! Orthonormal 2-D discrete wavelet transforms (Mallat's pyramid with periodic extension):
//! Haar and Daubechies-4 (8 taps, 4 vanishing moments; Daubechies 1988, the `db4` of
//! PyWavelets), and per-scale energy spectra of images, used to compare the branching structure
//! of generated and simulated showers.

use serde::Serialize;

use crate::error::{Error, Result};

/// A wavelet family with its orthonormal low-pass decomposition filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Wavelet {
    /// Haar: h = (1, 1)/√2.
    Haar,
    /// Daubechies with 4 vanishing moments (8 taps).
    Db4,
}

const DB4: [f64; 8] = [
    -0.010_597_401_784_997_278,
    0.032_883_011_666_982_945,
    0.030_841_381_835_986_965,
    -0.187_034_811_718_881_14,
    -0.027_983_769_416_983_85,
    0.630_880_767_929_590_4,
    0.714_846_570_552_541_5,
    0.230_377_813_308_855_23,
];

impl Wavelet {
    /// Low-pass decomposition filter h.
    pub fn low_pass(&self) -> Vec<f64> {
        match self {
            Wavelet::Haar => vec![std::f64::consts::FRAC_1_SQRT_2; 2],
            Wavelet::Db4 => DB4.to_vec(),
        }
    }

    /// High-pass filter of the quadrature mirror pair, `g[k] = (−1)^k h[L−1−k]`.
    pub fn high_pass(&self) -> Vec<f64> {
        let h = self.low_pass();
        let l = h.len();
        (0..l)
            .map(|k| if k % 2 == 0 { 1.0 } else { -1.0 } * h[l - 1 - k])
            .collect()
    }

    /// Name as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Wavelet::Haar => "haar",
            Wavelet::Db4 => "db4",
        }
    }
}

/// One periodic analysis step along a strided line of even length n: a[i] = Σₖ h[k]
/// x[(2i + k) mod n], d[i] = Σₖ g[k] x[(2i + k) mod n].
fn analyse(x: &[f64], h: &[f64], g: &[f64], a: &mut [f64], d: &mut [f64]) {
    let n = x.len();
    for i in 0..n / 2 {
        let (mut sa, mut sd) = (0.0, 0.0);
        for k in 0..h.len() {
            let v = x[(2 * i + k) % n];
            sa += h[k] * v;
            sd += g[k] * v;
        }
        a[i] = sa;
        d[i] = sd;
    }
}

/// Inverse of [`analyse`] (the transpose of an orthogonal map).
fn synthesise(a: &[f64], d: &[f64], h: &[f64], g: &[f64], x: &mut [f64]) {
    let n = x.len();
    x.iter_mut().for_each(|v| *v = 0.0);
    for i in 0..n / 2 {
        for k in 0..h.len() {
            x[(2 * i + k) % n] += h[k] * a[i] + g[k] * d[i];
        }
    }
}

/// Applies one 1-D map to every row and then every column of the top-left `n`×`n` block of a
/// row-major `size`-wide image, storing the low half first (the usual LL|HL / LH|HH layout).
fn step_2d(img: &mut [f64], size: usize, n: usize, h: &[f64], g: &[f64], inverse: bool) {
    let half = n / 2;
    let mut line = vec![0.0; n];
    let mut out = vec![0.0; n];
    let lines =
        |img: &mut [f64], line: &mut [f64], out: &mut [f64], index: &dyn Fn(usize) -> usize| {
            for (j, v) in line.iter_mut().enumerate() {
                *v = img[index(j)];
            }
            if inverse {
                let (a, d) = line.split_at(half);
                synthesise(a, d, h, g, out);
            } else {
                let (a, d) = out.split_at_mut(half);
                analyse(line, h, g, a, d);
            }
            for (j, v) in out.iter().enumerate() {
                img[index(j)] = *v;
            }
        };
    // Analysis: rows then columns; synthesis undoes them in the opposite order.
    let order = if inverse {
        [false, true]
    } else {
        [true, false]
    };
    for rows in order {
        for r in 0..n {
            if rows {
                lines(img, &mut line, &mut out, &|j| r * size + j);
            } else {
                lines(img, &mut line, &mut out, &|j| j * size + r);
            }
        }
    }
}

/// Levels of the pyramid for a `size`-wide image: halve while the block has at least as many
/// samples as the filter has taps (and is even).
pub fn levels(wavelet: Wavelet, size: usize) -> usize {
    let taps = wavelet.low_pass().len();
    let mut n = size;
    let mut j = 0;
    while n >= taps.max(2) && n.is_multiple_of(2) {
        n /= 2;
        j += 1;
    }
    j
}

fn check_square(pixels: &[f64], size: usize, levels: usize) -> Result<()> {
    if pixels.len() != size * size || size == 0 || !size.is_multiple_of(1 << levels) {
        return Err(Error::Shape(format!(
            "wavelet transform of {} values as a {size}×{size} image with {levels} levels (the side must be divisible by 2^levels)",
            pixels.len()
        )));
    }
    Ok(())
}

/// The `levels`-level 2-D transform of a square `size`×`size` image, in place layout: after the
/// transform the top-left (size/2^J)² block holds the approximation, and the three other
/// quadrants of each level j's block hold its details.
pub fn dwt2(wavelet: Wavelet, pixels: &[f64], size: usize, levels: usize) -> Result<Vec<f64>> {
    check_square(pixels, size, levels)?;
    let (h, g) = (wavelet.low_pass(), wavelet.high_pass());
    let mut img = pixels.to_vec();
    let mut n = size;
    for _ in 0..levels {
        step_2d(&mut img, size, n, &h, &g, false);
        n /= 2;
    }
    Ok(img)
}

/// Inverse of [`dwt2`].
pub fn idwt2(wavelet: Wavelet, coeffs: &[f64], size: usize, levels: usize) -> Result<Vec<f64>> {
    check_square(coeffs, size, levels)?;
    let (h, g) = (wavelet.low_pass(), wavelet.high_pass());
    let mut img = coeffs.to_vec();
    for j in (0..levels).rev() {
        step_2d(&mut img, size, size >> j, &h, &g, true);
    }
    Ok(img)
}

/// Energy per scale of an image, normalised to sum 1: entry j < J is the detail energy of level
/// j + 1 (finest first: structure on 2^(j+1)-pixel scales), entry J the approximation's.
/// An image with no energy gives all zeros.
pub fn energy_spectrum(wavelet: Wavelet, pixels: &[f64], size: usize) -> Result<Vec<f64>> {
    let levels = levels(wavelet, size);
    let c = dwt2(wavelet, pixels, size, levels)?;
    let mut e = vec![0.0; levels + 1];
    for y in 0..size {
        for x in 0..size {
            // Level of (x, y): the first j with max(x, y) ≥ size/2^(j+1).
            let m = x.max(y);
            let mut j = 0;
            while j < levels && m < size >> (j + 1) {
                j += 1;
            }
            e[j] += c[y * size + x].powi(2);
        }
    }
    let total: f64 = e.iter().sum();
    if total > 0.0 {
        e.iter_mut().for_each(|v| *v /= total);
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn filters_are_orthonormal_with_vanishing_moments() {
        for (w, moments) in [(Wavelet::Haar, 1), (Wavelet::Db4, 4)] {
            let (h, g) = (w.low_pass(), w.high_pass());
            let l = h.len();
            // Σ h = √2, and h is orthonormal to its even shifts.
            assert!((h.iter().sum::<f64>() - 2f64.sqrt()).abs() < 1e-12, "{w:?}");
            for shift in (0..l).step_by(2) {
                let dot: f64 = (0..l - shift).map(|k| h[k] * h[k + shift]).sum();
                let expect = if shift == 0 { 1.0 } else { 0.0 };
                assert!((dot - expect).abs() < 1e-12, "{w:?} shift {shift}: {dot}");
            }
            // Σ k^m g[k] = 0 for m < number of vanishing moments.
            for m in 0..moments {
                let s: f64 = g
                    .iter()
                    .enumerate()
                    .map(|(k, v)| (k as f64).powi(m) * v)
                    .sum();
                assert!(s.abs() < 1e-9, "{w:?} moment {m}: {s}");
            }
        }
    }

    #[test]
    fn transform_preserves_energy_and_inverts() {
        let mut rng = Rng::new(4);
        let img: Vec<f64> = (0..64 * 64).map(|_| rng.normal()).collect();
        for w in [Wavelet::Haar, Wavelet::Db4] {
            let j = levels(w, 64);
            let c = dwt2(w, &img, 64, j).unwrap();
            let e0: f64 = img.iter().map(|v| v * v).sum();
            let e1: f64 = c.iter().map(|v| v * v).sum();
            assert!((e0 - e1).abs() < 1e-9 * e0, "{w:?}: Parseval {e0} vs {e1}");
            let back = idwt2(w, &c, 64, j).unwrap();
            let err = img
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-10, "{w:?}: reconstruction error {err}");
        }
        assert_eq!(levels(Wavelet::Haar, 64), 6);
        assert_eq!(levels(Wavelet::Db4, 64), 4);
        assert!(dwt2(Wavelet::Haar, &img, 63, 1).is_err());
    }

    #[test]
    fn spectra_put_energy_at_the_right_scale() {
        let s = 64;
        // A constant image is all approximation.
        let flat = vec![1.0; s * s];
        let e = energy_spectrum(Wavelet::Haar, &flat, s).unwrap();
        assert!((e[6] - 1.0).abs() < 1e-12, "{e:?}");
        // A pixel checkerboard is all finest-scale detail (Haar HH at level 1).
        let checker: Vec<f64> = (0..s * s)
            .map(|p| if (p / s + p % s) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let e = energy_spectrum(Wavelet::Haar, &checker, s).unwrap();
        assert!((e[0] - 1.0).abs() < 1e-12, "{e:?}");
        // Smooth stripes of period 16 sit at the 8–16-pixel scales under db4.
        let stripes: Vec<f64> = (0..s * s)
            .map(|p| (std::f64::consts::TAU * (p % s) as f64 / 16.0).sin())
            .collect();
        let e = energy_spectrum(Wavelet::Db4, &stripes, s).unwrap();
        assert!(e[2] + e[3] > 0.9, "{e:?}");
        assert!((e.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(
            energy_spectrum(Wavelet::Db4, &vec![0.0; s * s], s).unwrap(),
            vec![0.0; 5]
        );
    }
}
