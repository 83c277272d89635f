//! Score networks.

mod mlp;
mod unet;

pub use mlp::{MlpConfig, MlpScoreNet};
pub use unet::{UNet, UNetConfig};
