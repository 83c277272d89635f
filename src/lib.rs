//! # scoregen
//!
//! Score-based generative modelling (Song & Ermon 2019; Ho et al. 2020; Song et al. 2021) on
//! burn: SDEs, score functions, training objectives, every standard sampler, exact likelihoods
//! through the probability-flow ODE, training with checkpoints, evaluation and plots. Code is
//! generic over `B: Backend`: the `flex` CPU backend by default, CUDA behind the `cuda` feature.
//!
//! Sampling a Gaussian mixture with its exact score, no network needed:
//!
//! ```
//! use burn::backend::Flex;
//! use scoregen::{rng::Rng, samplers::{sample, SamplerConfig, SamplerKind}};
//! use scoregen::score::{GaussianMixture, GmmScore};
//! use scoregen::sde::{Sde, SdeSpec};
//!
//! let gmm = GaussianMixture::isotropic(vec![0.5, 0.5], vec![vec![-2.0], vec![2.0]], vec![0.5, 0.5]).unwrap();
//! let spec = SdeSpec::default_for("vp").unwrap();
//! let sde = spec.build().unwrap();
//! // VP marginals preserve variance: m(t)² + s(t)² = 1.
//! assert!((sde.mean_factor(0.3).powi(2) + sde.std(0.3).powi(2) - 1.0).abs() < 1e-12);
//! let score = GmmScore::<Flex>::new(gmm, &spec, &Default::default()).unwrap();
//! let cfg = SamplerConfig { steps: 50, ..SamplerConfig::new(SamplerKind::Heun) };
//! let out = sample(&cfg, &score, sde.as_ref(), 4000, 1, &mut Rng::new(0), &Default::default(), &mut |_, _| {}).unwrap();
//! let x = scoregen::tensor::to_vec(out.x);
//! let right = x.iter().filter(|&&v| v > 0.0).count() as f64 / x.len() as f64;
//! assert!((right - 0.5).abs() < 0.04, "{right}");
//! assert_eq!(out.nfe, 99);
//! ```

#![warn(missing_docs)]
// Samplers mirror the papers' signatures (score, SDE, x, schedule options, rng, observer).
#![allow(clippy::too_many_arguments)]

pub mod allocator;
pub mod app;
pub mod cuda_conv;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
mod json_float;
pub mod kernel_cache;
pub mod likelihood;
pub mod linalg;
pub mod losses;
pub mod nn;
pub mod physics;
pub mod plot;
pub mod refine;
pub mod rng;
pub mod runtime;
pub mod samplers;
pub mod score;
pub mod sde;
pub mod tensor;
#[cfg(test)]
pub(crate) mod test_dir;
pub mod train;

pub use error::{Error, Result};
