//! Every physical constant and default of the LArTPC event simulator, in one place.
//!
//! Values are for liquid argon at 87 K in a 500 V/cm drift field (PDG 2024 "Atomic and nuclear
//! properties of materials: liquid argon"; ICARUS and ArgoNeuT calibrations) and for a
//! wire-plane-like readout with a 3 mm pitch, the voxel size of the public PILArNet images.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Radiation length of liquid argon, X₀ = 14.0 cm (PDG).
pub const RADIATION_LENGTH_CM: f64 = 14.0;
/// Critical energy of liquid argon for electrons, E_c ≈ 32.8 MeV (PDG, Rossi definition).
pub const CRITICAL_ENERGY_MEV: f64 = 32.8;
/// Energy loss of a minimum-ionising particle, ⟨dE/dx⟩ ≈ 2.12 MeV/cm (PDG).
pub const MIP_DEDX_MEV_CM: f64 = 2.12;
/// Electron rest energy, MeV.
pub const ELECTRON_MASS_MEV: f64 = 0.511;
/// Muon rest energy, MeV.
pub const MUON_MASS_MEV: f64 = 105.66;
/// Charged-pion rest energy, MeV.
pub const PION_MASS_MEV: f64 = 139.57;
/// Proton rest energy, MeV.
pub const PROTON_MASS_MEV: f64 = 938.27;
/// Birks recombination constant k/(ρ·ℰ) for 500 V/cm: 0.0486 (kV/cm)(g/cm²)/MeV ÷ (1.39 g/cm³
/// · 0.5 kV/cm) ≈ 0.0699 cm/MeV (ICARUS 2004).
pub const BIRKS_K_CM_MEV: f64 = 0.0486 / (1.39 * 0.5);
/// Birks normalisation A_B = 0.800 (ICARUS 2004): collected fraction at dE/dx → 0.
pub const BIRKS_A: f64 = 0.800;
/// Transverse electron diffusion coefficient D_T = 16.3 cm²/s (LArSoft's default simulation
/// value at 500 V/cm), in cm²/µs.
pub const DIFFUSION_CM2_US: f64 = 16.3e-6;
/// Electron drift velocity at 500 V/cm, 0.16 cm/µs.
pub const DRIFT_VELOCITY_CM_US: f64 = 0.16;

/// Residual-range parametrisation of the stopping power of a heavy charged particle,
/// dE/dx = A·R^(−b) (MeV/cm, R in cm), floored at the minimum-ionising value: the form used for
/// particle identification in LArTPCs (ArgoNeuT, MicroBooNE), which reproduces the Bragg peak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeLaw {
    /// Coefficient A (MeV/cm^(1−b)).
    pub a: f64,
    /// Exponent b.
    pub b: f64,
}

/// Muons (and, to this precision, charged pions): A = 8.0, b = 0.37.
pub const MUON_RANGE_LAW: RangeLaw = RangeLaw { a: 8.0, b: 0.37 };
/// Protons: A = 17.0, b = 0.42.
pub const PROTON_RANGE_LAW: RangeLaw = RangeLaw { a: 17.0, b: 0.42 };

/// Event classes the simulator draws from, in label order.
pub const EVENT_CLASSES: [&str; 4] = ["track", "shower", "mixed", "background"];
/// Pixel classes, in label order.
pub const PIXEL_CLASSES: [&str; 3] = ["background", "track", "shower"];

/// What each label of `names` means, for error messages: "0 track, 1 shower, …".
pub fn label_legend(names: &[&str]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Simulator settings: image geometry, readout, event mix and energy ranges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Image side in pixels.
    pub size: usize,
    /// Pixel pitch in cm (3 mm: PILArNet's voxel, MicroBooNE's wire pitch).
    pub pitch_cm: f64,
    /// Path-integration step in cm.
    pub step_cm: f64,
    /// Relative frequencies of the event classes track-only, shower-only, mixed, background-only.
    pub class_weights: [f64; 4],
    /// Probability that an event carries a cosmic-ray muon crossing the image.
    pub cosmic_prob: f64,
    /// Range of drift distances in cm; the diffusion width is √(2 D_T d / v_d).
    pub drift_cm: (f64, f64),
    /// Gaussian electronic noise per pixel, in units of the pixel scale (0 = none).
    pub noise: f64,
    /// MeV-equivalent collected charge that maps to pixel value 1 (pixels saturate at 1, like
    /// an ADC); a minimum-ionising track deposits about 0.45 MeV-equivalent per 3 mm pixel.
    pub charge_scale_mev: f64,
    /// Pixels whose true collected charge is below this fraction of `charge_scale_mev` are
    /// labelled background.
    pub label_threshold: f64,
    /// Muon kinetic energy range, MeV.
    pub muon_mev: (f64, f64),
    /// Proton kinetic energy range, MeV.
    pub proton_mev: (f64, f64),
    /// Charged-pion kinetic energy range, MeV.
    pub pion_mev: (f64, f64),
    /// Electron/photon shower energy range, MeV.
    pub shower_mev: (f64, f64),
    /// Kinetic energy below which a shower particle deposits what it has left on the spot, MeV.
    pub cutoff_mev: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            size: 64,
            pitch_cm: 0.3,
            step_cm: 0.1,
            class_weights: [0.3, 0.3, 0.3, 0.1],
            cosmic_prob: 0.2,
            drift_cm: (0.0, 250.0),
            noise: 0.0,
            charge_scale_mev: 3.0,
            label_threshold: 0.02,
            muon_mev: (50.0, 1000.0),
            proton_mev: (20.0, 250.0),
            pion_mev: (30.0, 400.0),
            shower_mev: (50.0, 600.0),
            cutoff_mev: 1.0,
        }
    }
}

impl SimConfig {
    /// Checks every setting, naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("size", self.size as f64),
            ("pitch_cm", self.pitch_cm),
            ("step_cm", self.step_cm),
            ("charge_scale_mev", self.charge_scale_mev),
            ("cutoff_mev", self.cutoff_mev),
        ];
        for (field, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::config(field, format!("must be positive, got {v}")));
            }
        }
        crate::nn::check_sizes(&[("size", self.size)], &[])?;
        if self.class_weights.iter().any(|w| w.is_nan() || *w < 0.0)
            || self.class_weights.iter().sum::<f64>() <= 0.0
        {
            return Err(Error::config(
                "class_weights",
                "need non-negative weights with a positive sum",
            ));
        }
        for (field, p) in [
            ("cosmic_prob", self.cosmic_prob),
            ("label_threshold", self.label_threshold),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::config(field, format!("must lie in [0, 1], got {p}")));
            }
        }
        if self.noise.is_nan() || self.noise < 0.0 {
            return Err(Error::config("noise", "must be non-negative"));
        }
        for (field, (lo, hi)) in [
            ("drift_cm", self.drift_cm),
            ("muon_mev", self.muon_mev),
            ("proton_mev", self.proton_mev),
            ("pion_mev", self.pion_mev),
            ("shower_mev", self.shower_mev),
        ] {
            if !(lo >= 0.0 && hi >= lo && hi.is_finite()) {
                return Err(Error::config(
                    field,
                    format!("need 0 ≤ low ≤ high, got ({lo}, {hi})"),
                ));
            }
        }
        Ok(())
    }

    /// Side of the image in cm.
    pub fn extent_cm(&self) -> f64 {
        self.size as f64 * self.pitch_cm
    }
}
