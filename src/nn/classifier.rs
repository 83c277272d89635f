//! The evaluation classifier: a small CNN trained on a data set's labels, whose penultimate
//! layer gives the features for FID/KID and precision/recall (in the spirit of the Inception
//! features of Heusel et al. 2017, but trained offline on the user's own data), and whose
//! predictions score class-conditional samples.
//!
//! conv3×3 → GN → SiLU, then three stride-2 stages (conv3×3 s2 → GN → SiLU → conv3×3 → GN → SiLU),
//! global average pooling, a linear feature layer with SiLU, and a linear head.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};

use super::group_norm::GroupNorm;
use burn::tensor::{backend::Backend, Tensor};

use super::silu;
use serde::{Deserialize, Serialize};

use super::unet::conv;
use crate::error::{Error, Result};
use burn::nn::conv::Conv2d;

/// Sizes of the evaluation classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of classes.
    pub classes: usize,
    /// Channels of the first stage (doubled at the second and third).
    pub base: usize,
    /// Dimension of the feature layer (the FID/KID feature space).
    pub features: usize,
}

impl ClassifierConfig {
    /// The default sizes for `channels`×`height`×`width` images in `classes` classes.
    pub fn for_images(channels: usize, height: usize, width: usize, classes: usize) -> Self {
        ClassifierConfig {
            channels,
            height,
            width,
            classes,
            base: 32,
            features: 128,
        }
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        super::check_sizes(
            &[
                ("classifier.channels", self.channels),
                ("classifier.height", self.height),
                ("classifier.width", self.width),
                ("classifier.base", self.base),
                ("classifier.classes", self.classes),
                ("classifier.features", self.features),
            ],
            &[],
        )?;
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err(Error::config("classifier", "image sizes must be positive"));
        }
        if self.classes < 2 {
            return Err(Error::config(
                "classifier.classes",
                format!("needs at least 2 classes, got {}", self.classes),
            ));
        }
        if self.base == 0 || !self.base.is_multiple_of(8) || self.features == 0 {
            return Err(Error::config(
                "classifier.base/features",
                "base must be a positive multiple of 8 and features positive",
            ));
        }
        Ok(())
    }

    /// Builds the network, every parameter drawn now from the backend's generator (seed it
    /// with [`crate::nn::seeded`] for a reproducible network).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Classifier<B> {
        crate::nn::materialised(self.skeleton(device))
    }

    /// The network with its weights not yet drawn (burn initialises parameters lazily), to
    /// load saved weights into ([`crate::train::params::load_named`]).
    pub fn skeleton<B: Backend>(&self, device: &B::Device) -> Classifier<B> {
        let b = self.base;
        let gn = |c: usize| GroupNorm::new(8, c, device);
        let widths = [b, b, 2 * b, 4 * b];
        let mut convs = vec![conv(self.channels, b, 3, 1, device)];
        let mut norms = vec![gn(b)];
        for w in widths.windows(2) {
            convs.push(conv(w[0], w[1], 3, 2, device));
            norms.push(gn(w[1]));
            convs.push(conv(w[1], w[1], 3, 1, device));
            norms.push(gn(w[1]));
        }
        Classifier {
            convs,
            norms,
            feature: LinearConfig::new(4 * b, self.features).init(device),
            head: LinearConfig::new(self.features, self.classes).init(device),
            shape: [self.channels, self.height, self.width],
        }
    }
}

/// The classifier network.
#[derive(Module, Debug)]
pub struct Classifier<B: Backend> {
    convs: Vec<Conv2d<B>>,
    norms: Vec<GroupNorm<B>>,
    feature: Linear<B>,
    head: Linear<B>,
    shape: [usize; 3],
}

impl<B: Backend> Classifier<B> {
    /// Penultimate features `[n, features]` of flattened images `[n, C·H·W]`.
    pub fn features(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let [c, h, w] = self.shape;
        let mut y = x.reshape([n, c, h, w]);
        for (cv, gn) in self.convs.iter().zip(&self.norms) {
            y = gn.forward_silu(cv.forward(y));
        }
        let [_, ch, hh, ww] = y.dims();
        let pooled = y.reshape([n, ch, hh * ww]).mean_dim(2).reshape([n, ch]);
        silu(self.feature.forward(pooled))
    }

    /// Class logits `[n, classes]` from features.
    pub fn logits_of(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head.forward(features)
    }

    /// Class logits `[n, classes]` of flattened images.
    pub fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.logits_of(self.features(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn shapes_fit_mnist_cifar_and_odd_sizes() {
        let dev = Default::default();
        for (c, h, w) in [(1, 28, 28), (3, 32, 32), (1, 13, 9)] {
            let cfg = ClassifierConfig::for_images(c, h, w, 10);
            cfg.validate().unwrap();
            let net = cfg.init::<Flex>(&dev);
            let x = Tensor::<Flex, 2>::zeros([3, c * h * w], &dev);
            assert_eq!(net.features(x.clone()).dims(), [3, 128]);
            assert_eq!(net.logits(x).dims(), [3, 10]);
        }
        assert!(ClassifierConfig::for_images(1, 28, 28, 1)
            .validate()
            .is_err());
    }
}
