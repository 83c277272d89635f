//! Readout: collected charge after recombination, transverse diffusion smearing onto the pixel
//! grid, per-pixel track/shower labels, saturation and electronic noise.

use super::params::{BIRKS_A, BIRKS_K_CM_MEV, DIFFUSION_CM2_US, DRIFT_VELOCITY_CM_US};
use super::transport::{Deposit, Origin};
use crate::rng::Rng;

/// Collected fraction of ionisation after recombination, Birks' law
/// dQ/dx = A_B (dE/dx)/(1 + k_B dE/dx) (ICARUS 2004), so a deposit E yields E·A_B/(1 + k_B dE/dx)
/// MeV-equivalent of charge.
pub fn birks(dedx: f64) -> f64 {
    BIRKS_A / (1.0 + BIRKS_K_CM_MEV * dedx)
}

/// Transverse diffusion width √(2 D_T t) after drifting `drift_cm` at 500 V/cm, in cm.
pub fn diffusion_sigma(drift_cm: f64) -> f64 {
    (2.0 * DIFFUSION_CM2_US * drift_cm.max(0.0) / DRIFT_VELOCITY_CM_US).sqrt()
}

/// Standard normal CDF Φ(x) through erfc (Numerical Recipes' Chebyshev fit, |ε| < 1.2·10⁻⁷).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let erfc = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// Charge collected per pixel, split by origin, before saturation and noise.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeMap {
    /// Image side in pixels.
    pub size: usize,
    /// Track charge per pixel (row-major), MeV-equivalent.
    pub track: Vec<f64>,
    /// Shower charge per pixel, MeV-equivalent.
    pub shower: Vec<f64>,
}

impl ChargeMap {
    /// An empty map of `size`².
    pub fn new(size: usize) -> Self {
        ChargeMap {
            size,
            track: vec![0.0; size * size],
            shower: vec![0.0; size * size],
        }
    }

    /// Adds `deposits` (positions in cm, image origin at (0, 0)) with pitch `pitch` cm, each
    /// smeared by a Gaussian of width `sigma` cm integrated over the pixel cells.
    pub fn add(&mut self, deposits: &[Deposit], pitch: f64, sigma: f64) {
        let n = self.size as isize;
        let sp = sigma / pitch;
        let reach = (3.0 * sp).ceil() as isize;
        let mut wx = Vec::with_capacity(2 * reach as usize + 1);
        let mut wy = Vec::with_capacity(2 * reach as usize + 1);
        for d in deposits {
            let q = d.energy * birks(d.dedx);
            let (u, v) = (d.pos[0] / pitch, d.pos[1] / pitch);
            let (cu, cv) = (u.floor() as isize, v.floor() as isize);
            let target = match d.origin {
                Origin::Track => &mut self.track,
                Origin::Shower => &mut self.shower,
            };
            if sp < 0.05 {
                if (0..n).contains(&cu) && (0..n).contains(&cv) {
                    target[(cv * n + cu) as usize] += q;
                }
                continue;
            }
            cell_weights(u, cu, reach, sp, &mut wx);
            cell_weights(v, cv, reach, sp, &mut wy);
            for (j, wj) in wy.iter().enumerate() {
                let row = cv - reach + j as isize;
                if !(0..n).contains(&row) {
                    continue;
                }
                for (i, wi) in wx.iter().enumerate() {
                    let col = cu - reach + i as isize;
                    if (0..n).contains(&col) {
                        target[(row * n + col) as usize] += q * wi * wj;
                    }
                }
            }
        }
    }

    /// Pixel values charge/scale clipped to [0, 1] with Gaussian noise of s.d. `noise` (then
    /// clipped again), and labels 0 background, 1 track, 2 shower: the origin with more true
    /// charge where the total reaches `threshold` (in pixel units).
    pub fn readout(
        &self,
        scale: f64,
        noise: f64,
        threshold: f64,
        rng: &mut Rng,
    ) -> (Vec<f32>, Vec<u8>) {
        let mut image = Vec::with_capacity(self.track.len());
        let mut labels = Vec::with_capacity(self.track.len());
        for (&t, &s) in self.track.iter().zip(&self.shower) {
            let q = (t + s) / scale;
            let label = if q < threshold {
                0
            } else if t >= s {
                1
            } else {
                2
            };
            let noisy = if noise > 0.0 {
                q + noise * rng.normal()
            } else {
                q
            };
            image.push(noisy.clamp(0.0, 1.0) as f32);
            labels.push(label);
        }
        (image, labels)
    }
}

/// Fractions of a N(centre, sp²) falling in cells cell−reach ..= cell+reach (cell k covers
/// [k, k+1)).
fn cell_weights(centre: f64, cell: isize, reach: isize, sp: f64, out: &mut Vec<f64>) {
    out.clear();
    let mut prev = normal_cdf(((cell - reach) as f64 - centre) / sp);
    for k in cell - reach..=cell + reach {
        let next = normal_cdf(((k + 1) as f64 - centre) / sp);
        out.push(next - prev);
        prev = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_known_values() {
        // Φ(0) = 1/2, Φ(1) = 0.841344746, Φ(−1.96) = 0.0249978952 (tables).
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.0) - 0.841_344_746).abs() < 2e-7);
        assert!((normal_cdf(-1.96) - 0.024_997_895).abs() < 2e-7);
    }

    #[test]
    fn smearing_conserves_charge_and_has_the_diffusion_width() {
        let pitch = 0.3;
        let sigma = 0.45; // 1.5 pixels
        let dep = Deposit {
            pos: [32.3 * pitch, 20.6 * pitch, 0.0],
            energy: 10.0,
            dedx: 2.12,
            origin: Origin::Track,
        };
        let mut map = ChargeMap::new(64);
        map.add(&[dep], pitch, sigma);
        let q: f64 = map.track.iter().sum();
        let expect = 10.0 * birks(2.12);
        assert!((q - expect).abs() < 1e-3 * expect, "{q} vs {expect}");
        // Pixel-centre variance = σ² + 1/12 pixel² (cell integration).
        let (mut mx, mut vx) = (0.0, 0.0);
        for (k, &c) in map.track.iter().enumerate() {
            let x = (k % 64) as f64 + 0.5;
            mx += c * x / q;
            vx += c * x * x / q;
        }
        vx -= mx * mx;
        assert!((mx - 32.3).abs() < 1e-3, "{mx}");
        assert!((vx - (1.5f64.powi(2) + 1.0 / 12.0)).abs() < 0.01, "{vx}");
        assert!(map.shower.iter().all(|&s| s == 0.0));
    }

    #[test]
    fn readout_labels_by_majority_and_threshold_and_saturates() {
        let map = ChargeMap {
            size: 2,
            track: vec![0.0, 2.0, 0.5, 9.0],
            shower: vec![0.01, 3.0, 0.1, 0.0],
        };
        let (img, lab) = map.readout(3.0, 0.0, 0.02, &mut Rng::new(0));
        assert_eq!(lab, vec![0, 2, 1, 1]);
        assert_eq!(
            img,
            [0.01 / 3.0, 1.0, 0.2, 1.0]
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>()
        );
        // MIP recombination ≈ 0.70 (ICARUS: 0.8/(1 + 0.0699·2.12)).
        assert!((birks(2.12) - 0.697).abs() < 0.002);
        // 2.5 m drift: √(2·16.3e-6·1562.5) ≈ 0.226 cm.
        assert!((diffusion_sigma(250.0) - 0.2257).abs() < 1e-3);
    }
}
