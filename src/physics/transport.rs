//! Charged-particle transport in liquid argon, in 3-D with the image plane (x, y) and the drift
//! direction z: continuous energy loss from a residual-range law (Bragg peak), multiple Coulomb
//! scattering (Rossi–Greisen/Highland angle per step), and the energy deposits they leave.

use super::params::{RangeLaw, MIP_DEDX_MEV_CM, RADIATION_LENGTH_CM};
use crate::rng::Rng;

/// Who left a deposit: the pixel label it votes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A track-like particle (muon, pion, proton, cosmic muon).
    Track,
    /// A particle of an electromagnetic shower (electron, positron, photon-produced electron).
    Shower,
}

/// Energy deposited over one transport step, at the step's mid-point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deposit {
    /// Position (cm) in the image plane and along the drift.
    pub pos: [f64; 3],
    /// Deposited energy, MeV.
    pub energy: f64,
    /// Local stopping power dE/dx, MeV/cm (sets the recombination).
    pub dedx: f64,
    /// Track or shower.
    pub origin: Origin,
}

/// A moving particle's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    /// Position, cm.
    pub pos: [f64; 3],
    /// Unit direction.
    pub dir: [f64; 3],
    /// Kinetic energy, MeV.
    pub kinetic: f64,
}

/// A heavy charged particle species: rest mass and stopping-power law.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Species {
    /// Rest energy, MeV.
    pub mass: f64,
    /// Residual-range law dE/dx = A R^(−b).
    pub law: RangeLaw,
}

impl RangeLaw {
    /// Residual range R(T) = ((1 − b) T / A)^(1/(1 − b)) in cm, the inverse of the integrated
    /// law T(R) = A R^(1−b) / (1 − b).
    pub fn residual_range(&self, kinetic: f64) -> f64 {
        ((1.0 - self.b) * kinetic / self.a).powf(1.0 / (1.0 - self.b))
    }

    /// Stopping power at kinetic energy T: A R(T)^(−b), floored at the minimum-ionising
    /// 2.12 MeV/cm, in MeV/cm.
    pub fn dedx(&self, kinetic: f64) -> f64 {
        let r = self.residual_range(kinetic).max(1e-6);
        (self.a * r.powf(-self.b)).max(MIP_DEDX_MEV_CM)
    }
}

/// Projected r.m.s. multiple-scattering angle over a path `ds` (cm) for a singly charged
/// particle of kinetic energy `kinetic` and mass `mass` (MeV): θ₀ = 13.6 MeV/(βcp)·√(ds/X₀), the
/// Rossi–Greisen form of the Highland formula (PDG 2024, eq. 34.15) without its logarithmic
/// correction, so that variances add over steps.
pub fn scattering_angle(kinetic: f64, mass: f64, ds: f64) -> f64 {
    let p = (kinetic * (kinetic + 2.0 * mass)).sqrt();
    let beta = p / (kinetic + mass);
    13.6 / (beta * p).max(1e-9) * (ds / RADIATION_LENGTH_CM).sqrt()
}

/// Unit vectors u, v completing `d` to an orthonormal frame.
fn frame(d: [f64; 3]) -> ([f64; 3], [f64; 3]) {
    let a = if d[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 1.0, 0.0]
    };
    let u = normalise(cross(d, a));
    (u, cross(d, u))
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn normalise(a: [f64; 3]) -> [f64; 3] {
    let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

/// `d` turned by the polar angle `theta` about a uniformly random azimuth.
pub fn rotate(d: [f64; 3], theta: f64, rng: &mut Rng) -> [f64; 3] {
    let (u, v) = frame(d);
    let phi = std::f64::consts::TAU * rng.uniform();
    let (s, c) = theta.sin_cos();
    let (sp, cp) = phi.sin_cos();
    normalise([
        c * d[0] + s * (cp * u[0] + sp * v[0]),
        c * d[1] + s * (cp * u[1] + sp * v[1]),
        c * d[2] + s * (cp * u[2] + sp * v[2]),
    ])
}

/// `d` deflected by two independent projected angles N(0, θ₀²) in perpendicular planes (the
/// small-angle Gaussian approximation of multiple scattering).
pub fn scatter(d: [f64; 3], theta0: f64, rng: &mut Rng) -> [f64; 3] {
    let (u, v) = frame(d);
    let (a, b) = (theta0 * rng.normal(), theta0 * rng.normal());
    normalise([
        d[0] + a * u[0] + b * v[0],
        d[1] + a * u[1] + b * v[1],
        d[2] + a * u[2] + b * v[2],
    ])
}

/// A uniformly random direction on the sphere.
pub fn isotropic(rng: &mut Rng) -> [f64; 3] {
    let z = 2.0 * rng.uniform() - 1.0;
    let phi = std::f64::consts::TAU * rng.uniform();
    let r = (1.0 - z * z).sqrt();
    [r * phi.cos(), r * phi.sin(), z]
}

/// Moves `pos` by `len` along `dir`.
pub fn advance(pos: [f64; 3], dir: [f64; 3], len: f64) -> [f64; 3] {
    [
        pos[0] + len * dir[0],
        pos[1] + len * dir[1],
        pos[2] + len * dir[2],
    ]
}

/// Transports a heavy charged particle in steps of `step` cm until it stops (its last steps
/// climb the Bragg peak) or leaves the square [lo, hi]² of the image plane, appending one
/// deposit per step. Returns the kinetic energy it carried out (0 when it stopped inside).
pub fn transport_heavy(
    species: Species,
    mut s: State,
    step: f64,
    bounds: (f64, f64),
    origin: Origin,
    rng: &mut Rng,
    out: &mut Vec<Deposit>,
) -> f64 {
    while s.kinetic > 0.0 {
        if !inside(s.pos, bounds) {
            return s.kinetic;
        }
        let dedx = species.law.dedx(s.kinetic);
        let (ds, de) = if dedx * step >= s.kinetic {
            (s.kinetic / dedx, s.kinetic)
        } else {
            (step, dedx * step)
        };
        let theta0 = scattering_angle(s.kinetic, species.mass, ds);
        out.push(Deposit {
            pos: advance(s.pos, s.dir, 0.5 * ds),
            energy: de,
            dedx,
            origin,
        });
        s.pos = advance(s.pos, s.dir, ds);
        s.kinetic -= de;
        s.dir = scatter(s.dir, theta0, rng);
    }
    0.0
}

/// Whether `pos` lies in the square [lo, hi]² of the image plane.
pub fn inside(pos: [f64; 3], (lo, hi): (f64, f64)) -> bool {
    pos[0] >= lo && pos[0] <= hi && pos[1] >= lo && pos[1] <= hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::params::{
        MUON_MASS_MEV, MUON_RANGE_LAW, PROTON_MASS_MEV, PROTON_RANGE_LAW,
    };

    const FREE: (f64, f64) = (-1e9, 1e9);

    #[test]
    fn range_law_inverts_its_integral() {
        // T(R) = A R^(1−b)/(1−b) inverts R(T); a 100 MeV proton stops within a few cm of
        // argon (order 8 cm), a muon of the same energy goes further.
        let law = PROTON_RANGE_LAW;
        let r = law.residual_range(100.0);
        assert!((5.0..12.0).contains(&r), "{r}");
        assert!(MUON_RANGE_LAW.residual_range(100.0) > 3.0 * r);
        let t = law.a * r.powf(1.0 - law.b) / (1.0 - law.b);
        assert!((t - 100.0).abs() < 1e-9);
    }

    #[test]
    fn stopping_proton_deposits_all_its_energy_with_a_bragg_peak() {
        let p = Species {
            mass: PROTON_MASS_MEV,
            law: PROTON_RANGE_LAW,
        };
        let s = State {
            pos: [0.0; 3],
            dir: [1.0, 0.0, 0.0],
            kinetic: 150.0,
        };
        let mut dep = Vec::new();
        let left = transport_heavy(p, s, 0.1, FREE, Origin::Track, &mut Rng::new(1), &mut dep);
        assert_eq!(left, 0.0);
        let total: f64 = dep.iter().map(|d| d.energy).sum();
        assert!((total - 150.0).abs() < 1e-9, "{total}");
        // Path length = residual range of 150 MeV (steps end exactly when T = 0).
        let path: f64 = dep.iter().map(|d| d.energy / d.dedx).sum();
        assert!(
            (path - PROTON_RANGE_LAW.residual_range(150.0)).abs() < 0.2,
            "{path}"
        );
        // dE/dx over the last 0.5 cm is several times that over the first 0.5 cm.
        let first = dep[..5].iter().map(|d| d.dedx).sum::<f64>();
        let last = dep[dep.len() - 5..].iter().map(|d| d.dedx).sum::<f64>();
        assert!(last > 4.0 * first, "first {first} last {last}");
    }

    #[test]
    fn multiple_scattering_matches_rossi_greisen() {
        // A 10 GeV muon loses < 1 % over 10 cm: the projected angle after L has r.m.s.
        // 13.6/(βp)·√(L/X₀).
        let mu = Species {
            mass: MUON_MASS_MEV,
            law: MUON_RANGE_LAW,
        };
        let (t, len) = (10_000.0, 10.0);
        let mut rng = Rng::new(7);
        let mut sum2 = 0.0;
        let n = 400;
        for _ in 0..n {
            let mut dep = Vec::new();
            let s = State {
                pos: [0.0; 3],
                dir: [1.0, 0.0, 0.0],
                kinetic: t,
            };
            transport_heavy(mu, s, 0.1, (-1.0, len), Origin::Track, &mut rng, &mut dep);
            let a = &dep[dep.len() - 1];
            let b = &dep[dep.len() - 2];
            let angle = (a.pos[1] - b.pos[1]).atan2(a.pos[0] - b.pos[0]);
            sum2 += angle * angle;
        }
        let rms = (sum2 / n as f64).sqrt();
        let expect = scattering_angle(t, MUON_MASS_MEV, len);
        // 400 draws: the r.m.s. has a relative standard error of 1/√(2·400) = 3.5 %.
        assert!(
            (rms / expect - 1.0).abs() < 0.12,
            "rms {rms} expected {expect}"
        );
    }

    #[test]
    fn directions_stay_unit_and_isotropic_is_uniform() {
        let mut rng = Rng::new(3);
        let mut mean = [0.0; 3];
        for _ in 0..20_000 {
            let d = isotropic(&mut rng);
            let r = rotate(scatter(d, 0.3, &mut rng), 1.0, &mut rng);
            assert!(((r[0] * r[0] + r[1] * r[1] + r[2] * r[2]) - 1.0).abs() < 1e-12);
            for k in 0..3 {
                mean[k] += d[k] / 20_000.0;
            }
        }
        // Each component of a uniform direction has variance 1/3: mean within 4σ.
        for m in mean {
            assert!(m.abs() < 4.0 * (1.0f64 / 3.0 / 20_000.0).sqrt(), "{mean:?}");
        }
    }
}
