//! The time-dependent discriminator of discriminator guidance (Kim et al. 2023, "Refining
//! generative process with discriminator guidance in score-based diffusion models", ICML): a
//! small CNN d(x_t, σ) that tells noised data from noised samples of a score model, whose
//! logit's input gradient corrects the model's score (see `refine`).
//!
//! It sees the EDM-scaled input c_in·x_t (unit variance at every noise level) and the noise
//! level as c_noise = ln σ / 4 (Karras et al. 2022, Table 1), embedded with fixed sinusoids and
//! added as a per-channel bias after each stage's downsampling convolution: a 3×3 stem, three
//! stages of conv3×3 stride 2 + time bias, then a pre-activation residual step
//! h + conv3×3(SiLU(GN(h))), global average pooling of SiLU(h) and a linear logit. The identity
//! paths keep the absolute intensity that a GroupNorm alone would normalise away (a total
//! charge, a brightness), and the pooling makes the logit a mean of local "realness" scores, so
//! its gradient points at the pixels that give a sample away.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::group_norm::GroupNorm;
use super::mlp::fourier_features;
use super::silu;
use super::unet::conv;
use crate::error::{Error, Result};

/// Frequencies of the sinusoidal noise-level embedding (on c_noise = ln σ / 4 ∈ about [−1.6, 1.1]).
const FREQUENCIES: [f32; 6] = [0.0625, 0.125, 0.25, 0.5, 1.0, 2.0];

/// Sizes of the discriminator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscriminatorConfig {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels of the first stage (doubled at the second and third); a multiple of 8.
    pub base: usize,
    /// Classes of a class-conditional discriminator d(x_t, t, y) (0: unconditional). A
    /// conditional one judges an image against the data of its class, so it can tell, e.g., a
    /// track-only event with a shower in it from data, which an unconditional one cannot when
    /// other classes contain showers.
    #[serde(default)]
    pub classes: usize,
}

impl DiscriminatorConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        super::check_sizes(
            &[
                ("discriminator.channels", self.channels),
                ("discriminator.height", self.height),
                ("discriminator.width", self.width),
                ("discriminator.base", self.base),
                ("discriminator.classes", self.classes),
            ],
            &[],
        )?;
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err(Error::config(
                "discriminator",
                "image sizes must be positive",
            ));
        }
        if self.base == 0 || !self.base.is_multiple_of(8) {
            return Err(Error::config(
                "discriminator.base",
                format!("must be a positive multiple of 8, not {}", self.base),
            ));
        }
        Ok(())
    }

    /// Builds the network, every parameter drawn now from the backend's generator (seed it
    /// with [`crate::nn::seeded`] for a reproducible network).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Discriminator<B> {
        crate::nn::materialised(self.skeleton(device))
    }

    /// The network with its weights not yet drawn (burn initialises parameters lazily), to
    /// load saved weights into ([`crate::train::params::load_named`]).
    pub fn skeleton<B: Backend>(&self, device: &B::Device) -> Discriminator<B> {
        let b = self.base;
        let temb = 4 * b;
        let widths = [b, b, 2 * b, 4 * b];
        let mut down = Vec::new();
        let mut norms = Vec::new();
        let mut convs = Vec::new();
        let mut time_bias = Vec::new();
        for w in widths.windows(2) {
            down.push(conv(w[0], w[1], 3, 2, device));
            time_bias.push(LinearConfig::new(temb, w[1]).init(device));
            norms.push(GroupNorm::new(8, w[1], device));
            convs.push(conv(w[1], w[1], 3, 1, device));
        }
        Discriminator {
            time_embed: LinearConfig::new(2 * FREQUENCIES.len() + 1, temb).init(device),
            // One more row for the "no class" label of unconditional calls.
            class_emb: (self.classes > 0)
                .then(|| EmbeddingConfig::new(self.classes + 1, temb).init(device)),
            stem: conv(self.channels, b, 3, 1, device),
            down,
            norms,
            convs,
            time_bias,
            head: LinearConfig::new(4 * b, 1).init(device),
            shape: [self.channels, self.height, self.width],
        }
    }
}

/// The discriminator network.
#[derive(Module, Debug)]
pub struct Discriminator<B: Backend> {
    time_embed: Linear<B>,
    class_emb: Option<Embedding<B>>,
    stem: Conv2d<B>,
    down: Vec<Conv2d<B>>,
    norms: Vec<GroupNorm<B>>,
    convs: Vec<Conv2d<B>>,
    time_bias: Vec<Linear<B>>,
    head: Linear<B>,
    shape: [usize; 3],
}

impl<B: Backend> Discriminator<B> {
    /// Logits `[n, 1]` (positive: "data") of flattened scaled inputs `x: [n, C·H·W]` at noise
    /// levels `c_noise: [n, 1]` (ln σ / 4), for a conditional network of the classes `labels`
    /// (row i of class `labels[i % len]`; none, or an unconditional network: no class).
    pub fn logit(
        &self,
        x: Tensor<B, 2>,
        c_noise: Tensor<B, 2>,
        labels: Option<&[usize]>,
    ) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let [c, h, w] = self.shape;
        let dev = x.device();
        let freqs = Tensor::<B, 1>::from_floats(FREQUENCIES, &dev).reshape([1, FREQUENCIES.len()]);
        let emb = Tensor::cat(vec![fourier_features(c_noise.clone(), freqs), c_noise], 1);
        let mut temb = self.time_embed.forward(emb);
        if let Some(ce) = &self.class_emb {
            let null = ce.weight.dims()[0] - 1;
            let ids: Vec<i64> = (0..n)
                .map(|i| match labels {
                    Some(l) if !l.is_empty() => l[i % l.len()].min(null) as i64,
                    _ => null as i64,
                })
                .collect();
            let y = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, 1]), &dev);
            let dim = temb.dims()[1];
            temb = temb + ce.forward(y).reshape([n, dim]);
        }
        let temb = silu(temb);
        let mut y = self.stem.forward(x.reshape([n, c, h, w]));
        for (((down, bias), norm), cv) in self
            .down
            .iter()
            .zip(&self.time_bias)
            .zip(&self.norms)
            .zip(&self.convs)
        {
            let h = down.forward(silu(y));
            let ch = h.dims()[1];
            let h = h + bias.forward(temb.clone()).reshape([n, ch, 1, 1]);
            y = h.clone() + cv.forward(norm.forward_silu(h));
        }
        let [_, ch, hh, ww] = y.dims();
        let pooled = silu(y)
            .reshape([n, ch, hh * ww])
            .mean_dim(2)
            .reshape([n, ch]);
        self.head.forward(pooled)
    }

    /// Number of classes of a conditional network (0: unconditional).
    pub fn num_classes(&self) -> usize {
        self.class_emb
            .as_ref()
            .map_or(0, |ce| ce.weight.dims()[0] - 1)
    }

    /// Image shape (C, H, W) the network takes.
    pub fn image_shape(&self) -> [usize; 3] {
        self.shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn one_logit_per_image_for_even_and_odd_sizes_and_bad_sizes_refused() {
        let dev = Default::default();
        for (c, h, w) in [(1, 16, 16), (3, 13, 9)] {
            let cfg = DiscriminatorConfig {
                channels: c,
                height: h,
                width: w,
                base: 8,
                classes: 0,
            };
            cfg.validate().unwrap();
            let net = cfg.init::<Flex>(&dev);
            let x = Tensor::<Flex, 2>::ones([3, c * h * w], &dev);
            let s = Tensor::<Flex, 2>::from_floats([[-1.0], [0.0], [1.0]], &dev);
            let l = net.logit(x, s, None);
            assert_eq!(l.dims(), [3, 1]);
            // The noise level reaches the logit: one image at three noise levels, three logits.
            let v = crate::tensor::to_vec(l);
            assert!(
                (v[0] - v[1]).abs() > 1e-6 && (v[1] - v[2]).abs() > 1e-6,
                "{v:?}"
            );
        }
        let bad = DiscriminatorConfig {
            channels: 1,
            height: 8,
            width: 8,
            base: 12,
            classes: 0,
        };
        assert!(bad.validate().unwrap_err().to_string().contains("base"));
    }
}
