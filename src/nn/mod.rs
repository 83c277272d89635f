//! Score networks.

mod autodiff_node;
mod backend_rng;
mod classifier;
mod discriminator;
mod flex_native;
mod fused_cat;
mod fused_norm;
mod fused_silu;
mod fused_softmax;
mod group_norm;
mod guidance;
mod mlp;
mod norm_node;
mod precision;
mod score_net;
mod unet;

pub use backend_rng::{exclusive, materialised, seeded};
/// The largest size (channels, widths, image sides, classes) a network configuration may name:
/// far above any real network, low enough that a corrupt file's sizes are refused before
/// anything is allocated or multiplied out.
pub const MAX_SIZE: usize = 1 << 16;

/// The largest count of levels or blocks a network configuration may name.
pub const MAX_COUNT: usize = 64;

/// Refuses sizes above [`MAX_SIZE`] and counts above [`MAX_COUNT`], naming the field.
pub(crate) fn check_sizes(sizes: &[(&str, usize)], counts: &[(&str, usize)]) -> crate::Result<()> {
    for (fields, max) in [(sizes, MAX_SIZE), (counts, MAX_COUNT)] {
        if let Some(&(field, v)) = fields.iter().find(|(_, v)| *v > max) {
            return Err(crate::Error::config(
                field,
                format!("{v} is more than the {max} allowed (a typo, or a corrupt file?)"),
            ));
        }
    }
    Ok(())
}

pub use classifier::{Classifier, ClassifierConfig};
pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use fused_silu::silu;
pub use fused_softmax::scaled_softmax;
pub use group_norm::GroupNorm;
pub use guidance::Guidance;
pub use mlp::{MlpConfig, MlpScoreNet};
pub use precision::{autocast, to_dtype, Precision};
pub use score_net::{Guided, ScoreNet, WithLabels};
pub(crate) use unet::conv;
#[cfg(test)]
pub(crate) use unet::tests::tiny as tiny_unet;
pub use unet::{UNet, UNetConfig};
