//! Score networks.

mod mlp;

pub use mlp::{MlpConfig, MlpScoreNet};
