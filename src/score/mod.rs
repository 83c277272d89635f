//! Score functions s(x, t) ≈ ∇x log p_t(x): the exact score of a Gaussian mixture, and
//! neural score models, behind one trait that every sampler, loss and likelihood speaks to.

mod correction;
mod gmm;
mod interval;
mod neural;
mod output;

pub use correction::{Corrected, ScoreCorrection};
pub use gmm::{GaussianMixture, GmmScore};
pub use interval::{Interval, SigmaInterval};
pub use neural::{EpsModel, NeuralScore};
pub use output::{eps_of, Output, Parametrised};

use burn::tensor::{backend::Backend, Tensor};

/// A time-dependent score function.
pub trait ScoreFn<B: Backend> {
    /// ∇x log p_t(x) for the rows of `x` (`[n, d]`) at times `t`: one shared time
    /// (`t.len() == 1`) or one per row (`t.len() == n`).
    fn score(&self, x: Tensor<B, 2>, t: &[f64]) -> Tensor<B, 2>;
}

/// One time per row of an `n`-row batch: a single time (`t.len() == 1`) is repeated, per-row
/// times are kept, as [`ScoreFn::score`] accepts either.
pub fn per_row_times(t: &[f64], n: usize) -> Vec<f64> {
    if t.len() == 1 {
        vec![t[0]; n]
    } else {
        t.to_vec()
    }
}

/// `[len(t), 1]` column of f(tᵢ); a single time broadcasts over the batch.
pub fn time_column<B: Backend>(
    t: &[f64],
    f: impl Fn(f64) -> f64,
    device: &B::Device,
) -> Tensor<B, 2> {
    let v: Vec<f64> = t.iter().map(|&ti| f(ti)).collect();
    crate::tensor::column(&v, device)
}
