//! Event generation: a neutrino-like interaction vertex with tracks, showers or both, optional
//! cosmic-ray muons crossing the image, rendered to a pixel image with per-pixel labels.

use super::params::{
    SimConfig, MUON_MASS_MEV, MUON_RANGE_LAW, PION_MASS_MEV, PROTON_MASS_MEV, PROTON_RANGE_LAW,
};
use super::render::{diffusion_sigma, ChargeMap};
use super::shower::{Cascade, ShowerParticle};
use super::transport::{isotropic, transport_heavy, Deposit, Origin, Species, State};
use crate::rng::Rng;

/// Event class: what the vertex produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventClass {
    /// Tracks only (a muon or pion with protons).
    Track = 0,
    /// Showers only (an electron, or photons that convert after a gap).
    Shower = 1,
    /// Tracks and a shower from one vertex.
    Mixed = 2,
    /// No interaction: cosmic-ray muons (and noise) only.
    Background = 3,
}

impl EventClass {
    /// The class with label `k` (0..4).
    pub fn from_index(k: usize) -> Option<Self> {
        [
            EventClass::Track,
            EventClass::Shower,
            EventClass::Mixed,
            EventClass::Background,
        ]
        .get(k)
        .copied()
    }
}

/// One simulated event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What the vertex produced.
    pub class: EventClass,
    /// Pixel values in [0, 1], row-major `size`².
    pub image: Vec<f32>,
    /// Pixel labels: 0 background, 1 track, 2 shower.
    pub labels: Vec<u8>,
}

fn uniform_in(rng: &mut Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

/// Draws the event class from the configured weights.
fn draw_class(cfg: &SimConfig, rng: &mut Rng) -> EventClass {
    let total: f64 = cfg.class_weights.iter().sum();
    let mut u = rng.uniform() * total;
    for (k, w) in cfg.class_weights.iter().enumerate() {
        if u < *w {
            return EventClass::from_index(k).unwrap_or(EventClass::Track);
        }
        u -= w;
    }
    EventClass::Background
}

/// Simulates one event.
pub fn simulate_event(cfg: &SimConfig, rng: &mut Rng) -> Event {
    let class = draw_class(cfg, rng);
    let extent = cfg.extent_cm();
    // Particles are followed a little beyond the image so that charge diffused back in counts.
    let margin = 3.0 * cfg.pitch_cm;
    let bounds = (-margin, extent + margin);
    let vertex = [
        extent * (0.2 + 0.6 * rng.uniform()),
        extent * (0.2 + 0.6 * rng.uniform()),
        0.0,
    ];
    let mut dep: Vec<Deposit> = Vec::new();
    let heavy = |rng: &mut Rng, dep: &mut Vec<Deposit>, species: Species, range: (f64, f64)| {
        let kinetic = uniform_in(rng, range);
        let s = State {
            pos: vertex,
            dir: isotropic(rng),
            kinetic,
        };
        transport_heavy(species, s, cfg.step_cm, bounds, Origin::Track, rng, dep);
    };
    let muon = Species {
        mass: MUON_MASS_MEV,
        law: MUON_RANGE_LAW,
    };
    let pion = Species {
        mass: PION_MASS_MEV,
        law: MUON_RANGE_LAW,
    };
    let proton = Species {
        mass: PROTON_MASS_MEV,
        law: PROTON_RANGE_LAW,
    };
    let cascade = Cascade {
        step: cfg.step_cm,
        cutoff: cfg.cutoff_mev,
        bounds,
    };
    let tracks = |rng: &mut Rng, dep: &mut Vec<Deposit>, lepton: bool| {
        if lepton {
            if rng.uniform() < 0.7 {
                heavy(rng, dep, muon, cfg.muon_mev);
            } else {
                heavy(rng, dep, pion, cfg.pion_mev);
            }
        }
        let protons = if lepton {
            rng.below(3)
        } else {
            1 + rng.below(2)
        };
        for _ in 0..protons {
            heavy(rng, dep, proton, cfg.proton_mev);
        }
    };
    let showers = |rng: &mut Rng, dep: &mut Vec<Deposit>| {
        let e = uniform_in(rng, cfg.shower_mev);
        if rng.uniform() < 0.6 {
            let s = State {
                pos: vertex,
                dir: isotropic(rng),
                kinetic: e,
            };
            cascade.develop(ShowerParticle::Electron(s), rng, dep);
        } else {
            // A π⁰-like photon pair (or a single photon), converting away from the vertex.
            let pair = rng.uniform() < 0.5;
            let f = if pair { 0.2 + 0.6 * rng.uniform() } else { 1.0 };
            for share in [f, 1.0 - f] {
                if share > 0.0 {
                    let s = State {
                        pos: vertex,
                        dir: isotropic(rng),
                        kinetic: share * e,
                    };
                    cascade.develop(ShowerParticle::Photon(s), rng, dep);
                }
            }
        }
    };
    match class {
        EventClass::Track => tracks(rng, &mut dep, true),
        EventClass::Shower => showers(rng, &mut dep),
        EventClass::Mixed => {
            tracks(rng, &mut dep, false);
            showers(rng, &mut dep);
        }
        EventClass::Background => {}
    }
    let cosmics = match class {
        EventClass::Background => 1 + usize::from(rng.uniform() < cfg.cosmic_prob),
        _ => usize::from(rng.uniform() < cfg.cosmic_prob),
    };
    for _ in 0..cosmics {
        cosmic(cfg, bounds, muon, rng, &mut dep);
    }
    let mut map = ChargeMap::new(cfg.size);
    let drift = uniform_in(rng, cfg.drift_cm);
    map.add(&dep, cfg.pitch_cm, diffusion_sigma(drift));
    let (image, labels) = map.readout(cfg.charge_scale_mev, cfg.noise, cfg.label_threshold, rng);
    Event {
        class,
        image,
        labels,
    }
}

/// A cosmic-ray muon of 1–10 GeV entering through a random point of the image's edge, heading
/// inwards with a random slope.
fn cosmic(
    cfg: &SimConfig,
    bounds: (f64, f64),
    muon: Species,
    rng: &mut Rng,
    dep: &mut Vec<Deposit>,
) {
    let extent = cfg.extent_cm();
    let along = extent * (0.1 + 0.8 * rng.uniform());
    let (pos, inward) = match rng.below(4) {
        0 => ([along, 0.0, 0.0], 1.0),
        1 => ([along, extent, 0.0], 3.0),
        2 => ([0.0, along, 0.0], 0.0),
        _ => ([extent, along, 0.0], 2.0),
    };
    // Heading within ±60° of the inward normal; a small drift component.
    let angle = inward * std::f64::consts::FRAC_PI_2 + (rng.uniform() - 0.5) * 2.0944;
    let dz = 0.3 * (rng.uniform() - 0.5);
    let n = (1.0 + dz * dz).sqrt();
    let s = State {
        pos,
        dir: [angle.cos() / n, angle.sin() / n, dz / n],
        kinetic: 1000.0 * 10f64.powf(rng.uniform()),
    };
    transport_heavy(muon, s, cfg.step_cm, bounds, Origin::Track, rng, dep);
}
