//! Score networks.

mod mlp;
mod score_net;
mod unet;

pub use mlp::{MlpConfig, MlpScoreNet};
pub use score_net::{Guided, ScoreNet, WithLabels};
pub use unet::{UNet, UNetConfig};
