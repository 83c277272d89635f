//! # scoregen
//!
//! Score-based generative modelling (Song & Ermon 2019; Ho et al. 2020; Song et al. 2021) on
//! burn: SDEs, score functions, training objectives, every standard sampler, exact likelihoods
//! through the probability-flow ODE, training with checkpoints, evaluation and plots. Code is
//! generic over `B: Backend`: the `flex` CPU backend by default, CUDA behind the `cuda` feature.

#![warn(missing_docs)]
// Samplers mirror the papers' signatures (score, SDE, x, schedule options, rng, observer).
#![allow(clippy::too_many_arguments)]

pub mod app;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod likelihood;
pub mod linalg;
pub mod losses;
pub mod nn;
pub mod plot;
pub mod rng;
pub mod samplers;
pub mod score;
pub mod sde;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
