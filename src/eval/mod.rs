//! Evaluation of generated samples against reference data.

mod compare;
mod distances;
mod moments;

pub use compare::{compare, Comparison, Figure};
pub use distances::{
    energy_distance, mmd_rbf, noise_floor, sliced_wasserstein, NoiseFloor, Points,
};
pub use moments::{mixture_fit, MixtureFit};
