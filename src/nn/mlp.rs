//! MLP score network for low-dimensional data: Gaussian Fourier time embedding
//! (Tancik et al. 2020; as in Song et al. 2021's NCSN++), SiLU residual blocks that receive the
//! time embedding, and an ε-prediction head (s_θ = −ε_θ/s(t)).

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Tensor};

use super::{silu, to_dtype};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::score::EpsModel;

/// Architecture of [`MlpScoreNet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpConfig {
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Number of residual blocks.
    pub blocks: usize,
    /// Number of Fourier features (half sines, half cosines).
    pub fourier_features: usize,
    /// Standard deviation of the Fourier frequencies (on t ∈ [0, 1]).
    pub fourier_scale: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden: 128,
            blocks: 3,
            fourier_features: 32,
            fourier_scale: 16.0,
        }
    }
}

impl MlpConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        super::check_sizes(
            &[
                ("model.hidden", self.hidden),
                ("model.fourier_features", self.fourier_features),
            ],
            &[("model.blocks", self.blocks)],
        )?;
        if self.hidden == 0 || self.blocks == 0 {
            return Err(Error::config("model.hidden/blocks", "must be positive"));
        }
        Error::require_positive("model.fourier_scale", self.fourier_scale)?;
        if self.fourier_features < 2 || !self.fourier_features.is_multiple_of(2) {
            return Err(Error::config(
                "model.fourier_features",
                "must be an even number ≥ 2",
            ));
        }
        Ok(())
    }

    /// Builds the network for d-dimensional data: weights drawn from the backend's generator
    /// seeded with `seed` (see [`super::seeded`]), frequencies from `seed`.
    pub fn init<B: Backend>(&self, dim: usize, seed: u64, device: &B::Device) -> MlpScoreNet<B> {
        super::seeded::<B, _>(device, seed, || {
            super::materialised(self.skeleton(dim, seed, device))
        })
    }

    /// The network with its weights not yet drawn (burn initialises parameters lazily), to
    /// load saved weights into ([`crate::train::params::load_named`]).
    pub fn skeleton<B: Backend>(
        &self,
        dim: usize,
        seed: u64,
        device: &B::Device,
    ) -> MlpScoreNet<B> {
        let h = self.hidden;
        let half = self.fourier_features / 2;
        let mut rng = Rng::new(seed ^ 0xF0F0_1234);
        let w: Vec<f32> = rng
            .normal_vec(half)
            .iter()
            .map(|v| v * self.fourier_scale as f32)
            .collect();
        let fourier_w = Param::from_tensor(crate::tensor::from_rows::<B>(w, 1, half, device))
            .set_require_grad(false);
        MlpScoreNet {
            fourier_w,
            time_embed: LinearConfig::new(self.fourier_features, h).init(device),
            input: LinearConfig::new(dim, h).init(device),
            blocks: (0..self.blocks)
                .map(|_| ResBlock {
                    fc1: LinearConfig::new(h, h).init(device),
                    temb: LinearConfig::new(h, h).init(device),
                    fc2: LinearConfig::new(h, h).init(device),
                })
                .collect(),
            output: LinearConfig::new(h, dim).init(device),
        }
    }
}

/// One residual block: h + fc2(silu(fc1(silu(h)) + temb(e))).
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    fc1: Linear<B>,
    temb: Linear<B>,
    fc2: Linear<B>,
}

/// The MLP score network.
#[derive(Module, Debug)]
pub struct MlpScoreNet<B: Backend> {
    fourier_w: Param<Tensor<B, 2>>,
    time_embed: Linear<B>,
    input: Linear<B>,
    blocks: Vec<ResBlock<B>>,
    output: Linear<B>,
}

/// Gaussian Fourier features [sin(2πWt), cos(2πWt)] of `t: [n, 1]` with frequencies
/// `w: [1, k]` (Tancik et al. 2020; the time embedding of NCSN++).
pub(crate) fn fourier_features<B: Backend>(t: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    let proj = t.matmul(w).mul_scalar(std::f64::consts::TAU);
    Tensor::cat(vec![proj.clone().sin(), proj.cos()], 1)
}

impl<B: Backend> EpsModel<B> for MlpScoreNet<B> {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        // Under mixed precision (`precision::autocast`) the network computes in its weights'
        // format and answers in the input's.
        let (dtype, out_dtype) = (self.input.weight.val().dtype(), x.dtype());
        let e = silu(
            self.time_embed
                .forward(to_dtype(fourier_features(t, self.fourier_w.val()), dtype)),
        );
        let mut h = self.input.forward(to_dtype(x, dtype));
        for b in &self.blocks {
            let r = b.fc1.forward(silu(h.clone())) + b.temb.forward(e.clone());
            h = h + b.fc2.forward(silu(r));
        }
        to_dtype(self.output.forward(silu(h)), out_dtype)
    }
}
