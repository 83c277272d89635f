//! Additive corrections of a score function: s'(x, t) = s(x, t) + c(x, t). Discriminator
//! guidance (Kim et al. 2023) is one: c = w ∇x log(d/(1 − d)), which turns the score of a
//! model's distribution into the score of the data's where the discriminator d is optimal.

use burn::tensor::{backend::Backend, Tensor};

use super::ScoreFn;

/// A term added to a score function.
pub trait ScoreCorrection<B: Backend> {
    /// c(x, t) for the rows of `x` (`[n, d]`) at times `t` (one shared time or one per row),
    /// for class-conditional sampling of `classes` (row i of class `classes[i % len]`).
    fn correction(&self, x: Tensor<B, 2>, t: &[f64], classes: Option<&[usize]>) -> Tensor<B, 2>;
}

/// The score `base` plus the correction `correction`.
pub struct Corrected<'a, B: Backend, S> {
    /// The score being corrected.
    pub base: &'a S,
    /// What is added to it.
    pub correction: &'a dyn ScoreCorrection<B>,
    /// The classes being sampled, if class-conditional.
    pub classes: Option<&'a [usize]>,
}

impl<B: Backend, S: ScoreFn<B>> ScoreFn<B> for Corrected<'_, B, S> {
    fn score(&self, x: Tensor<B, 2>, t: &[f64]) -> Tensor<B, 2> {
        self.base.score(x.clone(), t) + self.correction.correction(x, t, self.classes)
    }
}
