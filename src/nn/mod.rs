//! Score networks.

mod backend_rng;
mod classifier;
mod discriminator;
mod flex_native;
mod fused_cat;
mod fused_norm;
mod fused_silu;
mod fused_softmax;
mod group_norm;
mod mlp;
mod precision;
mod score_net;
mod unet;

pub use backend_rng::{exclusive, materialised, seeded};
pub use classifier::{Classifier, ClassifierConfig};
pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use fused_silu::silu;
pub use fused_softmax::scaled_softmax;
pub use group_norm::GroupNorm;
pub use mlp::{MlpConfig, MlpScoreNet};
pub use precision::{autocast, to_dtype, Precision};
pub use score_net::{Guided, ScoreNet, WithLabels};
pub(crate) use unet::conv;
#[cfg(test)]
pub(crate) use unet::tests::tiny as tiny_unet;
pub use unet::{UNet, UNetConfig};
