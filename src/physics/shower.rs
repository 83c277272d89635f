//! Electromagnetic showers as a stochastic branching cascade (Rossi's approximation B made
//! Monte Carlo): electrons ionise at the minimum-ionising rate, scatter, and radiate
//! bremsstrahlung photons with the complete-screening spectrum; photons convert to e⁺e⁻ pairs
//! after an exponential path of mean 9/7 X₀ with the energy shared between the two, Compton
//! scatter at low energy with exact kinematics, and are absorbed below the cut-off. Every MeV
//! ends either in a deposit or in a particle leaving the region, so energy is conserved exactly.

use super::params::{ELECTRON_MASS_MEV, MIP_DEDX_MEV_CM, RADIATION_LENGTH_CM};
use super::transport::{
    advance, inside, rotate, scatter, scattering_angle, Deposit, Origin, State,
};
use crate::rng::Rng;

/// Mean free path of photons for pair conversion, 9/7 X₀ (PDG eq. 34.31).
const PAIR_LENGTH_CM: f64 = 9.0 / 7.0 * RADIATION_LENGTH_CM;
/// Photon energy below which Compton scattering replaces pair production, MeV.
const COMPTON_BELOW_MEV: f64 = 10.0;
/// Attenuation length of 1–10 MeV photons in liquid argon (μ/ρ ≈ 0.03–0.06 cm²/g), cm.
const COMPTON_LENGTH_CM: f64 = 15.0;
/// Absorption length of photons under the cut-off (photo-electric and Compton), cm.
const ABSORB_LENGTH_CM: f64 = 5.0;

/// A shower particle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShowerParticle {
    /// An electron or positron.
    Electron(State),
    /// A photon.
    Photon(State),
}

/// Transport settings of a cascade.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cascade {
    /// Electron step, cm.
    pub step: f64,
    /// Kinetic energy below which particles deposit what they have left where they are, MeV.
    pub cutoff: f64,
    /// The square of the image plane outside which particles are dropped.
    pub bounds: (f64, f64),
}

/// Bremsstrahlung photon-energy fraction y ∈ [y_min, 1] with the complete-screening spectrum
/// dN/dy ∝ (4/3 − 4/3 y + y²)/y (PDG eq. 34.29), by rejection from 1/y.
fn brems_fraction(y_min: f64, rng: &mut Rng) -> f64 {
    loop {
        let y = y_min.powf(1.0 - rng.uniform());
        let accept = (4.0 / 3.0 - 4.0 / 3.0 * y + y * y) / (4.0 / 3.0);
        if rng.uniform() < accept {
            return y;
        }
    }
}

/// Expected bremsstrahlung photons with y > y_min per radiation length:
/// ∫ (4/3 − 4/3 y + y²)/y dy = 4/3 ln(1/y_min) − 4/3 (1 − y_min) + (1 − y_min²)/2.
fn brems_rate(y_min: f64) -> f64 {
    4.0 / 3.0 * (1.0 / y_min).ln() - 4.0 / 3.0 * (1.0 - y_min) + 0.5 * (1.0 - y_min * y_min)
}

impl Cascade {
    /// Develops the shower of `first`, appending deposits; returns the energy carried out of
    /// `bounds` (MeV).
    pub fn develop(&self, first: ShowerParticle, rng: &mut Rng, out: &mut Vec<Deposit>) -> f64 {
        let mut stack = vec![first];
        let mut escaped = 0.0;
        while let Some(p) = stack.pop() {
            escaped += match p {
                ShowerParticle::Electron(s) => self.electron(s, rng, out, &mut stack),
                ShowerParticle::Photon(s) => self.photon(s, rng, out, &mut stack),
            };
        }
        escaped
    }

    fn deposit(&self, pos: [f64; 3], energy: f64, out: &mut Vec<Deposit>) {
        if energy > 0.0 {
            out.push(Deposit {
                pos,
                energy,
                dedx: MIP_DEDX_MEV_CM,
                origin: Origin::Shower,
            });
        }
    }

    fn electron(
        &self,
        mut s: State,
        rng: &mut Rng,
        out: &mut Vec<Deposit>,
        stack: &mut Vec<ShowerParticle>,
    ) -> f64 {
        loop {
            if !inside(s.pos, self.bounds) {
                return s.kinetic;
            }
            if s.kinetic <= self.cutoff {
                // Range of a ≤ 1 MeV electron is a few mm: one deposit half a step on.
                self.deposit(advance(s.pos, s.dir, 0.5 * self.step), s.kinetic, out);
                return 0.0;
            }
            let ds = self.step.min(s.kinetic / MIP_DEDX_MEV_CM);
            let de = MIP_DEDX_MEV_CM * ds;
            self.deposit(advance(s.pos, s.dir, 0.5 * ds), de, out);
            s.kinetic -= de;
            s.pos = advance(s.pos, s.dir, ds);
            let y_min = self.cutoff / s.kinetic;
            if y_min < 1.0 && rng.uniform() < brems_rate(y_min) * ds / RADIATION_LENGTH_CM {
                let k = brems_fraction(y_min, rng) * s.kinetic;
                s.kinetic -= k;
                // Photons leave within ~m/E of the electron direction.
                let gamma = (s.kinetic + ELECTRON_MASS_MEV) / ELECTRON_MASS_MEV;
                let dir = rotate(s.dir, (1.0 / gamma) * rng.normal().abs(), rng);
                stack.push(ShowerParticle::Photon(State {
                    pos: s.pos,
                    dir,
                    kinetic: k,
                }));
            }
            s.dir = scatter(
                s.dir,
                scattering_angle(s.kinetic.max(1e-3), ELECTRON_MASS_MEV, ds),
                rng,
            );
        }
    }

    fn photon(
        &self,
        s: State,
        rng: &mut Rng,
        out: &mut Vec<Deposit>,
        stack: &mut Vec<ShowerParticle>,
    ) -> f64 {
        let e = s.kinetic;
        let length = if e <= self.cutoff {
            ABSORB_LENGTH_CM
        } else if e < COMPTON_BELOW_MEV {
            COMPTON_LENGTH_CM
        } else {
            PAIR_LENGTH_CM
        };
        let pos = advance(s.pos, s.dir, -length * (1.0 - rng.uniform()).ln());
        if !inside(pos, self.bounds) {
            return e;
        }
        if e <= self.cutoff {
            self.deposit(pos, e, out);
        } else if e < COMPTON_BELOW_MEV {
            // Compton: electron energy uniform up to the edge 2ε/(1 + 2ε)·E; the photon keeps
            // E' = E − T at cos θ = 1 − (E/E' − 1)/ε, the electron at cot φ = (1 + ε) tan(θ/2).
            let eps = e / ELECTRON_MASS_MEV;
            let t = rng.uniform() * 2.0 * eps / (1.0 + 2.0 * eps) * e;
            let e_out = e - t;
            let cos_t = (1.0 - (e / e_out - 1.0) / eps).clamp(-1.0, 1.0);
            let theta = cos_t.acos();
            let phi = (1.0 / ((1.0 + eps) * (0.5 * theta).tan()).max(1e-12)).atan();
            stack.push(ShowerParticle::Photon(State {
                pos,
                dir: rotate(s.dir, theta, rng),
                kinetic: e_out,
            }));
            stack.push(ShowerParticle::Electron(State {
                pos,
                dir: rotate(s.dir, phi, rng),
                kinetic: t,
            }));
        } else {
            // Pair production: 2 m_e goes into rest mass, deposited with the annihilation of
            // the positron; the rest is shared uniformly (Bethe–Heitler at high energy is
            // nearly flat in the fraction).
            let kin = e - 2.0 * ELECTRON_MASS_MEV;
            let f = rng.uniform();
            self.deposit(pos, 2.0 * ELECTRON_MASS_MEV, out);
            let gamma = e / ELECTRON_MASS_MEV;
            for share in [f, 1.0 - f] {
                stack.push(ShowerParticle::Electron(State {
                    pos,
                    dir: rotate(s.dir, rng.normal().abs() / gamma, rng),
                    kinetic: share * kin,
                }));
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cascade() -> Cascade {
        Cascade {
            step: 0.1,
            cutoff: 1.0,
            bounds: (-1e9, 1e9),
        }
    }

    fn electron(e: f64) -> ShowerParticle {
        ShowerParticle::Electron(State {
            pos: [0.0; 3],
            dir: [1.0, 0.0, 0.0],
            kinetic: e,
        })
    }

    #[test]
    fn brems_spectrum_carries_one_radiation_length_of_energy() {
        // ∫ y dN/dy over (0, 1] = 4/3 − 2/3 + 1/3 = 1: an electron radiates its energy per X₀.
        let y_min: f64 = 1e-4;
        let mut rng = Rng::new(5);
        let n = 200_000;
        let mean_y = (0..n).map(|_| brems_fraction(y_min, &mut rng)).sum::<f64>() / n as f64;
        let expect = (4.0 / 3.0 * (1.0 - y_min) - 2.0 / 3.0 * (1.0 - y_min * y_min)
            + (1.0 - y_min.powi(3)) / 3.0)
            / brems_rate(y_min);
        assert!((mean_y / expect - 1.0).abs() < 0.03, "{mean_y} vs {expect}");
    }

    #[test]
    fn energy_is_conserved_exactly() {
        let mut rng = Rng::new(11);
        for (e, bounds) in [(300.0, (-1e9, 1e9)), (300.0, (-5.0, 5.0))] {
            let c = Cascade {
                bounds,
                ..cascade()
            };
            let mut dep = Vec::new();
            let escaped = c.develop(electron(e), &mut rng, &mut dep);
            let total: f64 = dep.iter().map(|d| d.energy).sum::<f64>() + escaped;
            assert!((total - e).abs() < 1e-9, "{total} vs {e}");
            assert!(dep.iter().all(|d| d.origin == Origin::Shower));
        }
    }

    /// Energy-weighted mean depth along the initial direction, in X₀.
    fn mean_depth(e: f64, n: usize, rng: &mut Rng) -> f64 {
        let mut sum = 0.0;
        for _ in 0..n {
            let mut dep = Vec::new();
            cascade().develop(electron(e), rng, &mut dep);
            sum += dep.iter().map(|d| d.energy * d.pos[0]).sum::<f64>() / e;
        }
        sum / n as f64 / RADIATION_LENGTH_CM
    }

    #[test]
    fn shower_depth_grows_with_log_energy() {
        // Rossi approximation B / PDG eq. 34.36: t_max = ln(E/E_c) − 0.5 for electrons, so
        // the profile (and its mean) moves by ln 10 X₀ per decade of energy.
        let mut rng = Rng::new(2);
        let low = mean_depth(100.0, 150, &mut rng);
        let high = mean_depth(1000.0, 60, &mut rng);
        let shift = high - low;
        let expect = 10f64.ln();
        assert!(
            (shift / expect - 1.0).abs() < 0.3,
            "mean depth {low:.2} → {high:.2} X₀, shift {shift:.2} vs ln 10 = {expect:.2}"
        );
    }
}
