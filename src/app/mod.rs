//! Workflows behind the CLI commands: a trained model loaded from a checkpoint, sampling and
//! likelihoods in data coordinates, the score-field figure, the demo and the throughput benchmark.

pub mod bench;
mod demo;
mod figure;
mod loss_curve;
mod peak_memory;
mod trained;
pub mod trajectory;

pub use demo::{run_demo, DemoOptions, DemoReport, SamplerResult, NLL_POINTS};
pub use figure::{exact_score_field, model_score_field, FigureOptions};
pub use loss_curve::{plot_loss_curve, read_losses};
pub use peak_memory::PeakRss;
pub use trained::{nll_of_points, Trained};

use crate::error::{Error, Result};
use crate::likelihood::Divergence;

/// The most Hutchinson–Skilling probes per likelihood evaluation.
pub const MAX_PROBES: usize = 10_000;

/// The divergence for `hutchinson` probes (Gaussian or Rademacher), or when the user does not
/// choose: exact up to 16 dimensions, else one Rademacher probe.
pub fn default_divergence(
    dim: usize,
    hutchinson: Option<usize>,
    gaussian: bool,
) -> Result<Divergence> {
    match hutchinson {
        Some(0) => Err(Error::config("hutchinson", "needs at least one probe")),
        Some(k) if k > MAX_PROBES => Err(Error::config(
            "hutchinson",
            format!("{k} probes: at most {MAX_PROBES} (the estimate's variance falls as 1/K)"),
        )),
        Some(k) if gaussian => Ok(Divergence::Gaussian { probes: k }),
        Some(k) => Ok(Divergence::Rademacher { probes: k }),
        None if dim <= 16 => Ok(Divergence::Exact),
        None => Ok(Divergence::Rademacher { probes: 1 }),
    }
}
