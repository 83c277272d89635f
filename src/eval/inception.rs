//! Inception-v3 pool3 features for FID/KID comparable with papers: the network of the
//! TensorFlow FID reference (Heusel et al. 2017, "GANs trained by a two time-scale update rule
//! converge to a local Nash equilibrium"; Szegedy et al. 2016, "Rethinking the Inception
//! architecture") in the layout of pytorch-fid's `FIDInceptionV3`, with weights the user
//! supplies as safetensors (`pt_inception-2015-12-05` converted; tensor names as in its
//! PyTorch state dict, e.g. `Mixed_5b.branch1x1.conv.weight`).
//!
//! Every `BasicConv2d` (convolution without bias, batch norm with ε = 10⁻³, ReLU) is folded at
//! load time into one convolution with bias: w' = w·γ/√(σ² + ε), b' = β − μ·γ/√(σ² + ε).
//! Images go in as pytorch-fid feeds them: replicated to three channels when grey, bilinearly
//! resized to 299×299 (half-pixel centres, `align_corners = False`), values in [−1, 1].

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{activation::relu, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::tensor::to_vec;
use crate::train::{params::HostTensor, safetensors::read as read_safetensors};

/// Side of the square input of Inception-v3.
pub const INCEPTION_SIZE: usize = 299;
/// Dimension of the pool3 features.
pub const INCEPTION_DIM: usize = 2048;
/// Batch-norm ε of the reference network.
const BN_EPS: f32 = 1e-3;

/// One `BasicConv2d` with its batch norm folded in, followed by ReLU.
#[derive(Clone, Debug)]
struct Conv<B: Backend> {
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    stride: usize,
    padding: [usize; 2],
}

impl<B: Backend> Conv<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let opts = ConvOptions::new([self.stride; 2], self.padding, [1, 1], 1);
        relu(conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            opts,
        ))
    }
}

/// A source of named weights: returns the tensor `name`, which must have `shape`.
pub type WeightSource<'a> = dyn Fn(&str, &[usize]) -> Result<HostTensor> + 'a;

/// Reads tensors by name from a weight source, folding batch norms.
struct Loader<'a, B: Backend> {
    fetch: &'a WeightSource<'a>,
    device: &'a B::Device,
}

impl<B: Backend> Loader<'_, B> {
    /// `{name}.conv.weight` [out, in, kh, kw] and `{name}.bn.*` [out], folded.
    fn conv(
        &self,
        name: &str,
        cin: usize,
        cout: usize,
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
    ) -> Result<Conv<B>> {
        let w = (self.fetch)(
            &format!("{name}.conv.weight"),
            &[cout, cin, kernel[0], kernel[1]],
        )?;
        let bn = |p: &str| (self.fetch)(&format!("{name}.bn.{p}"), &[cout]);
        let (gamma, beta) = (bn("weight")?, bn("bias")?);
        let (mean, var) = (bn("running_mean")?, bn("running_var")?);
        let per = cin * kernel[0] * kernel[1];
        let mut weight = w.data;
        let mut bias = vec![0f32; cout];
        for o in 0..cout {
            let scale = gamma.data[o] / (var.data[o] + BN_EPS).sqrt();
            weight[o * per..(o + 1) * per]
                .iter_mut()
                .for_each(|v| *v *= scale);
            bias[o] = beta.data[o] - mean.data[o] * scale;
        }
        Ok(Conv {
            weight: Tensor::from_data(
                TensorData::new(weight, [cout, cin, kernel[0], kernel[1]]),
                self.device,
            ),
            bias: Tensor::from_data(TensorData::new(bias, [cout]), self.device),
            stride,
            padding,
        })
    }

    /// A 1×1 convolution.
    fn c1(&self, name: &str, cin: usize, cout: usize) -> Result<Conv<B>> {
        self.conv(name, cin, cout, [1, 1], 1, [0, 0])
    }
}

/// 3×3 average pooling, stride 1, padding 1, padded zeros not counted (TensorFlow's pool).
fn avg3<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false)
}

/// 3×3 max pooling with `stride` and `padding`.
fn max3<B: Backend>(x: Tensor<B, 4>, stride: usize, padding: usize) -> Tensor<B, 4> {
    max_pool2d(x, [3, 3], [stride; 2], [padding; 2], [1, 1], false)
}

/// InceptionA (FID variant): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1.
#[derive(Clone, Debug)]
struct BlockA<B: Backend> {
    b1: Conv<B>,
    b5: [Conv<B>; 2],
    b3: [Conv<B>; 3],
    pool: Conv<B>,
}

impl<B: Backend> BlockA<B> {
    fn load(l: &Loader<B>, name: &str, cin: usize, pool: usize) -> Result<Self> {
        let n = |s: &str| format!("{name}.{s}");
        Ok(BlockA {
            b1: l.c1(&n("branch1x1"), cin, 64)?,
            b5: [
                l.c1(&n("branch5x5_1"), cin, 48)?,
                l.conv(&n("branch5x5_2"), 48, 64, [5, 5], 1, [2, 2])?,
            ],
            b3: [
                l.c1(&n("branch3x3dbl_1"), cin, 64)?,
                l.conv(&n("branch3x3dbl_2"), 64, 96, [3, 3], 1, [1, 1])?,
                l.conv(&n("branch3x3dbl_3"), 96, 96, [3, 3], 1, [1, 1])?,
            ],
            pool: l.c1(&n("branch_pool"), cin, pool)?,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b5 = chain(&self.b5, x.clone());
        let b3 = chain(&self.b3, x.clone());
        let pool = self.pool.forward(avg3(x.clone()));
        Tensor::cat(vec![self.b1.forward(x), b5, b3, pool], 1)
    }
}

/// InceptionB (Mixed_6a, grid reduction): 3×3/2 | 1×1→3×3→3×3/2 | max-pool/2.
#[derive(Clone, Debug)]
struct BlockB<B: Backend> {
    b3: Conv<B>,
    dbl: [Conv<B>; 3],
}

impl<B: Backend> BlockB<B> {
    fn load(l: &Loader<B>, name: &str, cin: usize) -> Result<Self> {
        let n = |s: &str| format!("{name}.{s}");
        Ok(BlockB {
            b3: l.conv(&n("branch3x3"), cin, 384, [3, 3], 2, [0, 0])?,
            dbl: [
                l.c1(&n("branch3x3dbl_1"), cin, 64)?,
                l.conv(&n("branch3x3dbl_2"), 64, 96, [3, 3], 1, [1, 1])?,
                l.conv(&n("branch3x3dbl_3"), 96, 96, [3, 3], 2, [0, 0])?,
            ],
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b3 = self.b3.forward(x.clone());
        let dbl = chain(&self.dbl, x.clone());
        Tensor::cat(vec![b3, dbl, max3(x, 2, 0)], 1)
    }
}

/// InceptionC (FID variant): 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avg-pool→1×1.
#[derive(Clone, Debug)]
struct BlockC<B: Backend> {
    b1: Conv<B>,
    b7: [Conv<B>; 3],
    dbl: [Conv<B>; 5],
    pool: Conv<B>,
}

impl<B: Backend> BlockC<B> {
    fn load(l: &Loader<B>, name: &str, c7: usize) -> Result<Self> {
        let n = |s: &str| format!("{name}.{s}");
        let (row, col) = (([1, 7], [0, 3]), ([7, 1], [3, 0]));
        let k = |s: &str, cin, cout, (kernel, pad): ([usize; 2], [usize; 2])| {
            l.conv(&n(s), cin, cout, kernel, 1, pad)
        };
        Ok(BlockC {
            b1: l.c1(&n("branch1x1"), 768, 192)?,
            b7: [
                l.c1(&n("branch7x7_1"), 768, c7)?,
                k("branch7x7_2", c7, c7, row)?,
                k("branch7x7_3", c7, 192, col)?,
            ],
            dbl: [
                l.c1(&n("branch7x7dbl_1"), 768, c7)?,
                k("branch7x7dbl_2", c7, c7, col)?,
                k("branch7x7dbl_3", c7, c7, row)?,
                k("branch7x7dbl_4", c7, c7, col)?,
                k("branch7x7dbl_5", c7, 192, row)?,
            ],
            pool: l.c1(&n("branch_pool"), 768, 192)?,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b7 = chain(&self.b7, x.clone());
        let dbl = chain(&self.dbl, x.clone());
        let pool = self.pool.forward(avg3(x.clone()));
        Tensor::cat(vec![self.b1.forward(x), b7, dbl, pool], 1)
    }
}

/// InceptionD (Mixed_7a, grid reduction): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max-pool/2.
#[derive(Clone, Debug)]
struct BlockD<B: Backend> {
    b3: [Conv<B>; 2],
    b7: [Conv<B>; 4],
}

impl<B: Backend> BlockD<B> {
    fn load(l: &Loader<B>, name: &str) -> Result<Self> {
        let n = |s: &str| format!("{name}.{s}");
        Ok(BlockD {
            b3: [
                l.c1(&n("branch3x3_1"), 768, 192)?,
                l.conv(&n("branch3x3_2"), 192, 320, [3, 3], 2, [0, 0])?,
            ],
            b7: [
                l.c1(&n("branch7x7x3_1"), 768, 192)?,
                l.conv(&n("branch7x7x3_2"), 192, 192, [1, 7], 1, [0, 3])?,
                l.conv(&n("branch7x7x3_3"), 192, 192, [7, 1], 1, [3, 0])?,
                l.conv(&n("branch7x7x3_4"), 192, 192, [3, 3], 2, [0, 0])?,
            ],
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b3 = chain(&self.b3, x.clone());
        let b7 = chain(&self.b7, x.clone());
        Tensor::cat(vec![b3, b7, max3(x, 2, 0)], 1)
    }
}

/// InceptionE: 1×1 | 1×1→(1×3 ‖ 3×1) | 1×1→3×3→(1×3 ‖ 3×1) | pool→1×1, the pool being
/// average (Mixed_7b) or, in the FID network, max (Mixed_7c).
#[derive(Clone, Debug)]
struct BlockE<B: Backend> {
    b1: Conv<B>,
    b3: Conv<B>,
    b3_split: [Conv<B>; 2],
    dbl: [Conv<B>; 2],
    dbl_split: [Conv<B>; 2],
    pool: Conv<B>,
    max_pool: bool,
}

impl<B: Backend> BlockE<B> {
    fn load(l: &Loader<B>, name: &str, cin: usize, max_pool: bool) -> Result<Self> {
        let n = |s: &str| format!("{name}.{s}");
        let split = |a: &str, b: &str, cin: usize| -> Result<[Conv<B>; 2]> {
            Ok([
                l.conv(&n(a), cin, 384, [1, 3], 1, [0, 1])?,
                l.conv(&n(b), cin, 384, [3, 1], 1, [1, 0])?,
            ])
        };
        Ok(BlockE {
            b1: l.c1(&n("branch1x1"), cin, 320)?,
            b3: l.c1(&n("branch3x3_1"), cin, 384)?,
            b3_split: split("branch3x3_2a", "branch3x3_2b", 384)?,
            dbl: [
                l.c1(&n("branch3x3dbl_1"), cin, 448)?,
                l.conv(&n("branch3x3dbl_2"), 448, 384, [3, 3], 1, [1, 1])?,
            ],
            dbl_split: split("branch3x3dbl_3a", "branch3x3dbl_3b", 384)?,
            pool: l.c1(&n("branch_pool"), cin, 192)?,
            max_pool,
        })
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let both = |s: &[Conv<B>; 2], y: Tensor<B, 4>| {
            Tensor::cat(vec![s[0].forward(y.clone()), s[1].forward(y)], 1)
        };
        let b3 = both(&self.b3_split, self.b3.forward(x.clone()));
        let dbl = both(&self.dbl_split, chain(&self.dbl, x.clone()));
        let pooled = if self.max_pool {
            max3(x.clone(), 1, 1)
        } else {
            avg3(x.clone())
        };
        let pool = self.pool.forward(pooled);
        Tensor::cat(vec![self.b1.forward(x), b3, dbl, pool], 1)
    }
}

/// Applies `convs` in order.
fn chain<B: Backend>(convs: &[Conv<B>], x: Tensor<B, 4>) -> Tensor<B, 4> {
    convs.iter().fold(x, |y, c| c.forward(y))
}

/// The FID Inception-v3 up to its final average pool (2048 features per image).
#[derive(Clone, Debug)]
pub struct InceptionV3<B: Backend> {
    stem: [Conv<B>; 5],
    mixed_5: [BlockA<B>; 3],
    mixed_6a: BlockB<B>,
    mixed_6: [BlockC<B>; 4],
    mixed_7a: BlockD<B>,
    mixed_7: [BlockE<B>; 2],
}

impl<B: Backend> InceptionV3<B> {
    /// Loads pytorch-fid's Inception-v3 (`pt_inception-2015-12-05`) from a safetensors file.
    /// Missing tensors and wrong shapes are errors naming the tensor; extra tensors (the 1008-way
    /// `fc`, batch counters) are ignored.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        let (tensors, _) = read_safetensors(path)?;
        let fetch = |name: &str, shape: &[usize]| -> Result<HostTensor> {
            let t = tensors.get(name).ok_or_else(|| {
                Error::checkpoint(
                    path,
                    format!("tensor `{name}` is missing (not pytorch-fid's Inception-v3 weights?)"),
                )
            })?;
            if t.shape != shape {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "tensor `{name}` has shape {:?}, Inception-v3 needs {shape:?}",
                        t.shape
                    ),
                ));
            }
            Ok(t.clone())
        };
        Self::from_source(&fetch, device)
    }

    /// Builds the network from `fetch(name, shape)`, called once for every tensor of the state
    /// dict in module order (for weights that do not come from a file: tests, conversions).
    pub fn from_source(fetch: &WeightSource, device: &B::Device) -> Result<Self> {
        let l = Loader { fetch, device };
        let k3 = [3, 3];
        Ok(InceptionV3 {
            stem: [
                l.conv("Conv2d_1a_3x3", 3, 32, k3, 2, [0, 0])?,
                l.conv("Conv2d_2a_3x3", 32, 32, k3, 1, [0, 0])?,
                l.conv("Conv2d_2b_3x3", 32, 64, k3, 1, [1, 1])?,
                l.c1("Conv2d_3b_1x1", 64, 80)?,
                l.conv("Conv2d_4a_3x3", 80, 192, k3, 1, [0, 0])?,
            ],
            mixed_5: [
                BlockA::load(&l, "Mixed_5b", 192, 32)?,
                BlockA::load(&l, "Mixed_5c", 256, 64)?,
                BlockA::load(&l, "Mixed_5d", 288, 64)?,
            ],
            mixed_6a: BlockB::load(&l, "Mixed_6a", 288)?,
            mixed_6: [
                BlockC::load(&l, "Mixed_6b", 128)?,
                BlockC::load(&l, "Mixed_6c", 160)?,
                BlockC::load(&l, "Mixed_6d", 160)?,
                BlockC::load(&l, "Mixed_6e", 192)?,
            ],
            mixed_7a: BlockD::load(&l, "Mixed_7a")?,
            mixed_7: [
                BlockE::load(&l, "Mixed_7b", 1280, false)?,
                BlockE::load(&l, "Mixed_7c", 2048, true)?,
            ],
        })
    }

    /// Pool3 features [N, 2048] of images [N, 3, H, W] already scaled to [−1, 1] (any H, W ≥ 75;
    /// 299 for figures comparable with the literature).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let [s1a, s2a, s2b, s3b, s4a] = &self.stem;
        let x = max3(s2b.forward(s2a.forward(s1a.forward(x))), 2, 0);
        let mut x = max3(s4a.forward(s3b.forward(x)), 2, 0);
        for b in &self.mixed_5 {
            x = b.forward(x);
        }
        x = self.mixed_6a.forward(x);
        for b in &self.mixed_6 {
            x = b.forward(x);
        }
        x = self.mixed_7a.forward(x);
        for b in &self.mixed_7 {
            x = b.forward(x);
        }
        let [n, c, _, _] = x.dims();
        x.mean_dim(2).mean_dim(3).reshape([n, c])
    }
}

/// Bilinear resampling of one plane (h×w) to s×s as `F.interpolate(mode="bilinear",
/// align_corners=False)` does it: source coordinate (i + ½)·in/out − ½, clamped at 0.
fn resize_plane(src: &[f32], h: usize, w: usize, s: usize, out: &mut [f32]) {
    let taps = |len: usize| -> Vec<(usize, usize, f32)> {
        let scale = len as f32 / s as f32;
        (0..s)
            .map(|i| {
                let x = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (x as usize).min(len - 1);
                let i1 = (i0 + 1).min(len - 1);
                (i0, i1, x - i0 as f32)
            })
            .collect()
    };
    let (ty, tx) = (taps(h), taps(w));
    for (oy, &(y0, y1, fy)) in ty.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in tx.iter().enumerate() {
            let at = |y: usize, x: usize| src[y * w + x];
            let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
            let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
            out[oy * s + ox] = top * (1.0 - fy) + bottom * fy;
        }
    }
}

/// Turns `n` images C×H×W (values in [−1, 1], clamped) into the network's input N×3×S×S:
/// grey images are replicated to three channels, then each plane is resized to S×S.
pub fn prepare_images(pixels: &[f32], [c, h, w]: [usize; 3], size: usize) -> Result<Vec<f32>> {
    if c != 1 && c != 3 {
        return Err(Error::Shape(format!(
            "Inception-v3 takes grey or RGB images; these have {c} channels"
        )));
    }
    if h == 0 || w == 0 || !pixels.len().is_multiple_of(c * h * w) {
        return Err(Error::Shape(format!(
            "{} values are not a whole number of {c}×{h}×{w} images",
            pixels.len()
        )));
    }
    let plane = size * size;
    let mut out = vec![0f32; pixels.len() / (c * h * w) * 3 * plane];
    for (img, dst) in pixels.chunks(c * h * w).zip(out.chunks_mut(3 * plane)) {
        let clamped: Vec<f32> = img.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
        for ch in 0..3 {
            let src = &clamped[(ch % c) * h * w..(ch % c + 1) * h * w];
            resize_plane(src, h, w, size, &mut dst[ch * plane..(ch + 1) * plane]);
        }
    }
    Ok(out)
}

/// Pool3 features of `pixels` (row-major images C×H×W in [−1, 1]), `batch` images at a time;
/// row-major [N, 2048].
pub fn inception_features<B: Backend>(
    net: &InceptionV3<B>,
    pixels: &[f32],
    shape: [usize; 3],
    batch: usize,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let size = shape.iter().product::<usize>().max(1);
    let mut out = Vec::with_capacity(pixels.len() / size * INCEPTION_DIM);
    for chunk in pixels.chunks(batch.max(1) * size) {
        let n = chunk.len() / size;
        let input = prepare_images(chunk, shape, INCEPTION_SIZE)?;
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(input, [n, 3, INCEPTION_SIZE, INCEPTION_SIZE]),
            device,
        );
        out.extend(to_vec(net.forward(x)));
    }
    Ok(out)
}
