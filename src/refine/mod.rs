//! Discriminator guidance (Kim et al. 2023, "Refining generative process with discriminator
//! guidance in score-based diffusion models", ICML, Eq. 7–8): a time-dependent discriminator
//! d(x_t, t) trained to tell noised data (label 1) from noised samples of a trained score model
//! (label 0) estimates the density ratio p_t^data/p_t^model = d/(1 − d) at every noise level, so
//!
//!   ∇x log p_t^data(x) = s_θ(x, t) + ∇x log(d(x, t)/(1 − d(x, t))),
//!
//! and sampling with s_θ + w·∇x logit d (w = 1 for the exact correction) moves samples towards the
//! data where the model falls short, without retraining the model. Both sides are perturbed by
//! the model's own SDE, in the model's standardised coordinates, so the correction adds to the
//! model's score like the score itself ([`crate::score::ScoreCorrection`]).
//!
//! The same discriminator also selects finished samples: discriminator rejection sampling
//! (Azadi et al. 2019) keeps each with probability ∝ d/(1 − d) at a low noise level ([`judge`],
//! [`rejection_sample`]).

mod guidance;
mod select;
mod train;

#[cfg(test)]
mod tests;

pub use guidance::{discriminator_input, DiscriminatorGuidance, InputScale};
pub use select::{judge, logit_bound, rejection_sample, rejection_sample_by_class, uniform_subset};
pub use train::{
    check_zero_below, heldout_accuracy, load_discriminator, save_discriminator,
    train_discriminator, zero_suppress, BandAccuracy, DiscriminatorMeta, DiscriminatorTraining,
    Labelled,
};
