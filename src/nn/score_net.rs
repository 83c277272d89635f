//! The networks a checkpoint can hold, behind one module type.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use super::{MlpConfig, MlpScoreNet, UNet, UNetConfig};
use crate::error::{Error, Result};
use crate::score::EpsModel;

/// An MLP (low-dimensional data) or a U-Net (images; rows are flattened C×H×W images).
// One value per model: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ScoreNet<B: Backend> {
    /// MLP score network.
    Mlp(MlpScoreNet<B>),
    /// U-Net score network.
    UNet(UNet<B>),
}

impl<B: Backend> ScoreNet<B> {
    /// The U-Net when `unet` is given (its C·H·W must equal `dim`), else the MLP.
    pub fn init(
        mlp: &MlpConfig,
        unet: Option<&UNetConfig>,
        dim: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self> {
        match unet {
            Some(u) => {
                u.validate()?;
                if u.channels * u.height * u.width != dim {
                    return Err(Error::Shape(format!(
                        "the U-Net takes {}×{}×{} images ({} values) but the data have {dim} values per item",
                        u.channels,
                        u.height,
                        u.width,
                        u.channels * u.height * u.width
                    )));
                }
                Ok(ScoreNet::UNet(u.init(seed, device)))
            }
            None => {
                mlp.validate()?;
                Ok(ScoreNet::Mlp(mlp.init(dim, seed, device)))
            }
        }
    }
}

impl<B: Backend> EpsModel<B> for ScoreNet<B> {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            ScoreNet::Mlp(m) => m.eps(x, t),
            ScoreNet::UNet(u) => u.eps(x, t),
        }
    }
}
