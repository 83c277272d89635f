//! U-Net score network for images in the DDPM++/NCSN++ style (Ho et al. 2020, App. B; Song et al.
//! 2021, App. H): residual blocks with time (and class) embedding, GroupNorm, SiLU, dropout,
//! self-attention at chosen resolutions, skip connections, strided-conv down- and
//! nearest-upsampling, and an ε head. Inputs of any size (odd sizes too: upsampling matches the
//! skip connection's size).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};

use super::group_norm::GroupNorm;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{backend::Backend, DType, Int, Tensor};

use super::{scaled_softmax, silu, to_dtype};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::score::EpsModel;

/// Architecture of [`UNet`], as in a TOML `[model]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UNetConfig {
    /// Image channels (1 grey, 3 RGB).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels at full resolution.
    pub base: usize,
    /// Channel multiplier per resolution level (one level per entry; each further level halves
    /// the resolution).
    pub mult: Vec<usize>,
    /// Residual blocks per level.
    pub res_blocks: usize,
    /// Levels (0 = full resolution) with self-attention after each residual block.
    pub attn_levels: Vec<usize>,
    /// Dropout in residual blocks.
    pub dropout: f64,
    /// GroupNorm groups (must divide every channel count).
    pub groups: usize,
    /// Number of classes for class conditioning (an extra "null" class is added for
    /// classifier-free guidance); 0 = unconditional.
    pub num_classes: usize,
    /// Standard deviation of the Fourier time-embedding frequencies (with
    /// `positional_time = false`).
    pub fourier_scale: f64,
    /// Embed time as DDPM's sinusoidal position of 1000·t (Ho et al. 2020; frequencies
    /// 10000^(−k/(K−1)), k < K = base/2), which resolves every noise level with few features;
    /// false = random Gaussian Fourier features of scale `fourier_scale` (Tancik et al. 2020),
    /// which alias noise levels when the U-Net has few of them.
    pub positional_time: bool,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig {
            channels: 1,
            height: 28,
            width: 28,
            base: 32,
            mult: vec![1, 2, 2],
            res_blocks: 1,
            attn_levels: vec![2],
            dropout: 0.1,
            groups: 8,
            num_classes: 0,
            fourier_scale: 16.0,
            positional_time: true,
        }
    }
}

impl UNetConfig {
    /// Checks the sizes fit together.
    pub fn validate(&self) -> Result<()> {
        super::check_sizes(
            &[
                ("unet.channels", self.channels),
                ("unet.height", self.height),
                ("unet.width", self.width),
                ("unet.base", self.base),
                ("unet.groups", self.groups),
                ("unet.num_classes", self.num_classes),
            ],
            &[
                ("unet.mult (levels)", self.mult.len()),
                ("unet.res_blocks", self.res_blocks),
                ("unet.mult", self.mult.iter().copied().max().unwrap_or(0)),
            ],
        )?;
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err(Error::config(
                "unet.channels/height/width",
                "must be positive",
            ));
        }
        if self.mult.is_empty() || self.base == 0 || self.res_blocks == 0 {
            return Err(Error::config(
                "unet.mult/base/res_blocks",
                "need at least one level, block and channel",
            ));
        }
        for &m in &self.mult {
            let c = self.base * m;
            if c == 0 || self.groups == 0 || !c.is_multiple_of(self.groups) {
                return Err(Error::config(
                    "unet.groups",
                    format!("{} groups do not divide {c} channels", self.groups),
                ));
            }
        }
        if let Some(&l) = self.attn_levels.iter().find(|&&l| l >= self.mult.len()) {
            return Err(Error::config(
                "unet.attn_levels",
                format!("level {l} does not exist ({} levels)", self.mult.len()),
            ));
        }
        Error::require_positive("unet.fourier_scale", self.fourier_scale)?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("unet.dropout", "must be in [0, 1)"));
        }
        Ok(())
    }

    /// Builds the network: weights drawn from the backend's generator seeded with `seed`
    /// (see [`super::seeded`]), Fourier frequencies from `seed`.
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> UNet<B> {
        super::seeded::<B, _>(device, seed, || {
            super::materialised(self.skeleton(seed, device))
        })
    }

    /// The network with its weights not yet drawn (burn initialises parameters lazily), to
    /// load saved weights into ([`crate::train::params::load_named`]).
    pub fn skeleton<B: Backend>(&self, seed: u64, device: &B::Device) -> UNet<B> {
        let base = self.base;
        let temb_dim = 4 * base;
        let half = base / 2;
        let mut rng = Rng::new(seed ^ 0x5EED_0F0F);
        let k = half.max(1);
        let w: Vec<f32> = if self.positional_time {
            // sin(2π w t) = sin(1000 t · 10000^(−i/(k−1))).
            (0..k)
                .map(|i| {
                    let f = 10000f64.powf(-(i as f64) / (k.max(2) - 1) as f64);
                    (1000.0 * f / std::f64::consts::TAU) as f32
                })
                .collect()
        } else {
            rng.normal_vec(k)
                .iter()
                .map(|v| v * self.fourier_scale as f32)
                .collect()
        };
        let fourier_w =
            Param::from_tensor(crate::tensor::from_rows::<B>(w, 1, half.max(1), device))
                .set_require_grad(false);
        let res = |cin: usize, cout: usize| {
            ResBlock::new(cin, cout, temb_dim, self.groups, self.dropout, device)
        };
        let attn = |c: usize| AttnBlock::new(c, self.groups, device);
        let mut skips = vec![base];
        let mut ch = base;
        let mut down = Vec::new();
        for (level, &m) in self.mult.iter().enumerate() {
            let out = base * m;
            let mut blocks = Vec::new();
            let mut attns = Vec::new();
            for _ in 0..self.res_blocks {
                blocks.push(res(ch, out));
                if self.attn_levels.contains(&level) {
                    attns.push(attn(out));
                }
                ch = out;
                skips.push(ch);
            }
            let downsample = (level + 1 < self.mult.len()).then(|| {
                skips.push(ch);
                conv(ch, ch, 3, 2, device)
            });
            down.push(DownLevel {
                blocks,
                attns,
                downsample,
            });
        }
        let mid = (res(ch, ch), attn(ch), res(ch, ch));
        let mut up = Vec::new();
        for (level, &m) in self.mult.iter().enumerate().rev() {
            let out = base * m;
            let mut blocks = Vec::new();
            let mut attns = Vec::new();
            for _ in 0..=self.res_blocks {
                let skip = skips.pop().expect("one skip per down block");
                blocks.push(res(ch + skip, out));
                if self.attn_levels.contains(&level) {
                    attns.push(attn(out));
                }
                ch = out;
            }
            let upsample = (level > 0).then(|| conv(ch, ch, 3, 1, device));
            up.push(UpLevel {
                blocks,
                attns,
                upsample,
            });
        }
        UNet {
            fourier_w,
            temb1: LinearConfig::new(2 * half.max(1), temb_dim).init(device),
            temb2: LinearConfig::new(temb_dim, temb_dim).init(device),
            class_emb: (self.num_classes > 0)
                .then(|| EmbeddingConfig::new(self.num_classes + 1, temb_dim).init(device)),
            conv_in: conv(self.channels, base, 3, 1, device),
            down,
            mid_res1: mid.0,
            mid_attn: mid.1,
            mid_res2: mid.2,
            up,
            norm_out: GroupNorm::new(self.groups, ch, device),
            conv_out: conv(ch, self.channels, 3, 1, device),
            channels: self.channels,
            height: self.height,
            width: self.width,
            num_classes: self.num_classes,
        }
    }
}

/// A k×k convolution with "same" padding and the given stride.
pub(crate) fn conv<B: Backend>(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device)
}

/// GroupNorm → SiLU → conv → + time embedding → GroupNorm → SiLU → dropout → conv, plus a 1×1
/// shortcut when the channel count changes.
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    norm1: GroupNorm<B>,
    conv1: Conv2d<B>,
    temb: Linear<B>,
    norm2: GroupNorm<B>,
    dropout: Dropout,
    conv2: Conv2d<B>,
    shortcut: Option<Conv2d<B>>,
}

impl<B: Backend> ResBlock<B> {
    fn new(
        cin: usize,
        cout: usize,
        temb_dim: usize,
        groups: usize,
        dropout: f64,
        device: &B::Device,
    ) -> Self {
        // Input channels (after concatenating a skip) may not be a multiple of `groups`.
        let g_in = (1..=groups)
            .rev()
            .find(|g| cin.is_multiple_of(*g))
            .unwrap_or(1);
        ResBlock {
            norm1: GroupNorm::new(g_in, cin, device),
            conv1: conv(cin, cout, 3, 1, device),
            temb: LinearConfig::new(temb_dim, cout).init(device),
            norm2: GroupNorm::new(groups, cout, device),
            dropout: DropoutConfig::new(dropout).init(),
            conv2: conv(cout, cout, 3, 1, device),
            shortcut: (cin != cout).then(|| conv(cin, cout, 1, 1, device)),
        }
    }

    fn forward(&self, x: Tensor<B, 4>, temb: Tensor<B, 2>) -> Tensor<B, 4> {
        let h = self.conv1.forward(self.norm1.forward_silu(x.clone()));
        let [n, c] = [h.dims()[0], h.dims()[1]];
        let h = h + self.temb.forward(silu(temb)).reshape([n, c, 1, 1]);
        let h = self.norm2.forward_silu(h);
        // The mask is drawn from the backend's shared generator, so under its lock.
        let h = self
            .conv2
            .forward(super::exclusive(|| self.dropout.forward(h)));
        match &self.shortcut {
            Some(s) => s.forward(x) + h,
            None => x + h,
        }
    }
}

/// Single-head self-attention over all pixels (Vaswani et al. 2017), with a residual connection.
#[derive(Module, Debug)]
pub struct AttnBlock<B: Backend> {
    norm: GroupNorm<B>,
    q: Linear<B>,
    k: Linear<B>,
    v: Linear<B>,
    proj: Linear<B>,
}

impl<B: Backend> AttnBlock<B> {
    fn new(c: usize, groups: usize, device: &B::Device) -> Self {
        let lin = || LinearConfig::new(c, c).init(device);
        AttnBlock {
            norm: GroupNorm::new(groups, c, device),
            q: lin(),
            k: lin(),
            v: lin(),
            proj: lin(),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let t = self
            .norm
            .forward(x.clone())
            .reshape([n, c, h * w])
            .swap_dims(1, 2);
        let (q, k, v) = (
            self.q.forward(t.clone()),
            self.k.forward(t.clone()),
            self.v.forward(t),
        );
        // The softmax runs in f32 under mixed precision, as PyTorch's autocast does.
        let logits = q.matmul(k.swap_dims(1, 2));
        let dtype = logits.dtype();
        let scores = to_dtype(
            scaled_softmax(to_dtype(logits, DType::F32), 1.0 / (c as f64).sqrt()),
            dtype,
        );
        let out = self
            .proj
            .forward(scores.matmul(v))
            .swap_dims(1, 2)
            .reshape([n, c, h, w]);
        x + out
    }
}

/// One resolution level of the encoder.
#[derive(Module, Debug)]
pub struct DownLevel<B: Backend> {
    blocks: Vec<ResBlock<B>>,
    attns: Vec<AttnBlock<B>>,
    downsample: Option<Conv2d<B>>,
}

/// One resolution level of the decoder.
#[derive(Module, Debug)]
pub struct UpLevel<B: Backend> {
    blocks: Vec<ResBlock<B>>,
    attns: Vec<AttnBlock<B>>,
    upsample: Option<Conv2d<B>>,
}

/// The U-Net.
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    fourier_w: Param<Tensor<B, 2>>,
    temb1: Linear<B>,
    temb2: Linear<B>,
    class_emb: Option<Embedding<B>>,
    conv_in: Conv2d<B>,
    down: Vec<DownLevel<B>>,
    mid_res1: ResBlock<B>,
    mid_attn: AttnBlock<B>,
    mid_res2: ResBlock<B>,
    up: Vec<UpLevel<B>>,
    norm_out: GroupNorm<B>,
    conv_out: Conv2d<B>,
    channels: usize,
    height: usize,
    width: usize,
    num_classes: usize,
}

impl<B: Backend> UNet<B> {
    /// ε_θ(x, t, y) for images `x: [n, C, H, W]`, times `t: [n, 1]` and optional class labels
    /// (`None`, or the label `num_classes`, is the unconditional "null" class).
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        t: Tensor<B, 2>,
        labels: Option<Tensor<B, 1, Int>>,
    ) -> Tensor<B, 4> {
        let n = x.dims()[0];
        // Under mixed precision (`precision::autocast`) the network computes in its weights'
        // format and answers in the input's.
        let (dtype, out_dtype) = (self.conv_in.weight.val().dtype(), x.dtype());
        let x = to_dtype(x, dtype);
        let emb = to_dtype(super::mlp::fourier_features(t, self.fourier_w.val()), dtype);
        let mut temb = self.temb2.forward(silu(self.temb1.forward(emb)));
        if let Some(ce) = &self.class_emb {
            let y = labels.unwrap_or_else(|| {
                Tensor::<B, 1, Int>::full([n], self.num_classes as i64, &temb.device())
            });
            let dim = temb.dims()[1];
            temb = temb + ce.forward(y.reshape([n, 1])).reshape([n, dim]);
        }
        let mut h = self.conv_in.forward(x);
        let mut skips = vec![h.clone()];
        for level in &self.down {
            for (i, b) in level.blocks.iter().enumerate() {
                h = b.forward(h, temb.clone());
                if let Some(a) = level.attns.get(i) {
                    h = a.forward(h);
                }
                skips.push(h.clone());
            }
            if let Some(d) = &level.downsample {
                h = d.forward(h);
                skips.push(h.clone());
            }
        }
        h = self.mid_res2.forward(
            self.mid_attn
                .forward(self.mid_res1.forward(h, temb.clone())),
            temb.clone(),
        );
        for level in &self.up {
            for (i, b) in level.blocks.iter().enumerate() {
                let skip = skips.pop().expect("one skip per decoder block");
                h = b.forward(super::fused_cat::cat_channels(h, skip), temb.clone());
                if let Some(a) = level.attns.get(i) {
                    h = a.forward(h);
                }
            }
            if let Some(u) = &level.upsample {
                let target = skips
                    .last()
                    .map(|s| [s.dims()[2], s.dims()[3]])
                    .unwrap_or([self.height, self.width]);
                h = u.forward(interpolate(
                    h,
                    target,
                    InterpolateOptions::new(InterpolateMode::Nearest),
                ));
            }
        }
        to_dtype(
            self.conv_out.forward(self.norm_out.forward_silu(h)),
            out_dtype,
        )
    }

    /// Number of classes (0 = unconditional).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Image shape (C, H, W).
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
}

impl<B: Backend> EpsModel<B> for UNet<B> {
    /// Rows of `x` are flattened C×H×W images; unconditional (null class).
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let [c, h, w] = self.image_shape();
        self.forward(x.reshape([n, c, h, w]), t, None)
            .reshape([n, c * h * w])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::optim::GradientsParams;

    type A = Autodiff<Flex>;

    /// A small U-Net with attention at its second level (also used by `precision`'s tests).
    pub(crate) fn tiny(h: usize, w: usize, classes: usize) -> UNetConfig {
        UNetConfig {
            channels: 1,
            height: h,
            width: w,
            base: 8,
            mult: vec![1, 2],
            res_blocks: 1,
            attn_levels: vec![1],
            dropout: 0.0,
            groups: 4,
            num_classes: classes,
            fourier_scale: 1.0,
            positional_time: true,
        }
    }

    #[test]
    fn each_image_is_denoised_independently_of_its_batch() {
        // Row k of a batch must equal the network applied to image k alone (no statistic may
        // mix images), for the sizes and depths the image and physics configurations use.
        let dev = Default::default();
        for (size, mult) in [(16, vec![1, 2, 2, 2]), (12, vec![1, 2])] {
            let cfg = UNetConfig {
                mult,
                attn_levels: vec![],
                ..tiny(size, size, 4)
            };
            let net = cfg.init::<Flex>(0, &dev);
            let mut rng = Rng::new(9);
            let n = 4;
            let px = rng.normal_vec(n * size * size);
            let x = crate::tensor::from_rows::<Flex>(px.clone(), n, size * size, &dev)
                .reshape([n, 1, size, size]);
            let t = crate::tensor::column::<Flex>(&[0.9; 4], &dev);
            let y = Tensor::<Flex, 1, Int>::from_ints([1, 1, 1, 1], &dev);
            let all = crate::tensor::to_vec(net.forward(x, t, Some(y)));
            for k in 0..n {
                let xk = crate::tensor::from_rows::<Flex>(
                    px[k * size * size..(k + 1) * size * size].to_vec(),
                    1,
                    size * size,
                    &dev,
                )
                .reshape([1, 1, size, size]);
                let tk = crate::tensor::column::<Flex>(&[0.9], &dev);
                let yk = Tensor::<Flex, 1, Int>::from_ints([1], &dev);
                let one = crate::tensor::to_vec(net.forward(xk, tk, Some(yk)));
                let row = &all[k * size * size..(k + 1) * size * size];
                let err = one
                    .iter()
                    .zip(row)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    err < 1e-4,
                    "size {size}, image {k}: batch vs alone differ by {err}"
                );
            }
        }
    }

    #[test]
    fn output_has_the_input_shape_for_even_and_odd_sizes() {
        let dev = Default::default();
        for (h, w) in [(8, 8), (7, 9), (28, 28)] {
            let net = tiny(h, w, 3).init::<Flex>(0, &dev);
            let x = Tensor::<Flex, 4>::ones([2, 1, h, w], &dev);
            let t = crate::tensor::column::<Flex>(&[0.3, 0.7], &dev);
            let y = Tensor::<Flex, 1, Int>::from_ints([0, 2], &dev);
            let out = net.forward(x, t, Some(y));
            assert_eq!(out.dims(), [2, 1, h, w]);
            assert!(crate::tensor::to_vec(out).iter().all(|v| v.is_finite()));
        }
        let net = UNetConfig::default().init::<Flex>(0, &dev);
        assert!(net.num_params() > 100_000, "{}", net.num_params());
        assert!(UNetConfig {
            groups: 5,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(UNetConfig {
            attn_levels: vec![7],
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn every_trainable_parameter_gets_a_gradient_and_dsm_training_lowers_the_loss() {
        let dev = Default::default();
        let mut net = tiny(8, 8, 0).init::<A>(1, &dev);
        let sde = crate::sde::SdeSpec::default_for("vp")
            .unwrap()
            .build()
            .unwrap();
        let mut rng = Rng::new(2);
        // Data: one fixed 8×8 pattern with small noise — easy to learn.
        let pattern: Vec<f32> = (0..64)
            .map(|i| if (i / 8 + i % 8) % 2 == 0 { 0.8 } else { -0.8 })
            .collect();
        let batch = |rng: &mut Rng| {
            let v: Vec<f32> = (0..16)
                .flat_map(|_| {
                    pattern
                        .iter()
                        .map(|p| p + 0.05 * rng.normal() as f32)
                        .collect::<Vec<_>>()
                })
                .collect();
            crate::tensor::from_rows::<A>(v, 16, 64, &dev)
        };
        let dsm = |net: &UNet<A>, rng: &mut Rng| {
            let x = batch(rng);
            crate::losses::dsm_loss(
                net,
                sde.as_ref(),
                x,
                false,
                crate::losses::TimeSampler::Uniform,
                rng,
            )
        };
        let l = dsm(&net, &mut rng);
        let grads = GradientsParams::from_grads(l.backward(), &net);
        for (name, id) in crate::train::params::param_ids(&net) {
            if name == "fourier_w" {
                continue;
            }
            let has = grads.get::<Flex, 1>(id).is_some()
                || grads.get::<Flex, 2>(id).is_some()
                || grads.get::<Flex, 4>(id).is_some();
            assert!(has, "no gradient for {name}");
        }
        let mut adam = crate::train::Adam::default();
        let mut first = 0.0;
        let mut last = 0.0;
        for step in 0..60 {
            let l = dsm(&net, &mut rng);
            let v = crate::tensor::scalar(l.clone());
            if step < 10 {
                first += v / 10.0;
            }
            if step >= 50 {
                last += v / 10.0;
            }
            let g = GradientsParams::from_grads(l.backward(), &net);
            net = adam.step(net, g, 3e-3, Some(1.0)).0;
        }
        assert!(last < 0.7 * first, "loss {first} → {last}");
    }
}
