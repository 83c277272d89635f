//! Mixed-precision training (Micikevicius et al. 2018, "Mixed Precision Training"; bf16 as in
//! Kalamkar et al. 2019): the optimiser keeps f32 master weights; each step the network runs on
//! a bf16 copy of its weights, and the gradients flow back through the casts to the f32
//! weights. As PyTorch's autocast, the numerically delicate parts stay in f32: the Fourier time
//! features, GroupNorm (with its affine parameters) and the attention softmax; the network's
//! output is returned in f32, so the loss is computed in f32. bf16 has f32's exponent range, so
//! no loss scaling is needed.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{backend::Backend, DType, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// The floating-point format the network computes in while training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Convolutions, linear layers and activations in bf16; f32 master weights, GroupNorm,
    /// softmax, time features and loss.
    Bf16,
}

impl Precision {
    /// The compute format, or `None` for plain f32.
    pub fn compute_dtype(self) -> Option<FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(FloatDType::BF16),
        }
    }

    /// `f32` or `bf16`, as in the TOML and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// `net` computing in this precision: its [`autocast`] copy for bf16, `net` itself for f32.
    pub fn apply<B: Backend, M: Module<B>>(self, net: M) -> M {
        match self.compute_dtype() {
            Some(dt) => autocast(net, dt),
            None => net,
        }
    }

    /// The network of one mixed-precision training step: an [`autocast`] copy of `net` for bf16,
    /// `None` for f32 (the step uses `net` itself, with no copy to drop before the update).
    pub fn step_copy<B: Backend, M: Module<B>>(self, net: &M) -> Option<M> {
        self.compute_dtype().map(|dt| autocast(net.clone(), dt))
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    /// Parses `f32` or `bf16`.
    fn from_str(s: &str) -> Result<Self, String> {
        [Precision::F32, Precision::Bf16]
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("`{s}` is not one of f32, bf16"))
    }
}

/// Parameters that stay in f32 under mixed precision: the fixed Fourier frequencies (their
/// bf16 rounding would shift the time features the f32 sampler later sees) and GroupNorm's
/// γ and β (GroupNorm runs in f32).
const KEEP_F32: [&str; 3] = ["fourier_w", "gamma", "beta"];

/// `net` with its float parameters cast to `dtype` (except those of `KEEP_F32`). Under
/// autodiff each cast is recorded, so gradients of a loss computed with the returned copy reach
/// the parameters of `net` (same ids) in their own format.
pub fn autocast<B: Backend, M: Module<B>>(net: M, dtype: FloatDType) -> M {
    net.map(&mut CastParams {
        dtype,
        path: Vec::new(),
    })
}

struct CastParams {
    dtype: FloatDType,
    path: Vec<String>,
}

impl<B: Backend> ModuleMapper<B> for CastParams {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let keep = self
            .path
            .last()
            .is_some_and(|n| KEEP_F32.contains(&n.as_str()));
        if keep {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.cast(self.dtype), mapper)
    }
}

/// `x` in the float format `dtype`, the `dtype()` of another float tensor (no operation when
/// `x` already has it).
pub fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype {
        x
    } else {
        x.cast(FloatDType::from(dtype))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{UNet, UNetConfig};
    use crate::rng::Rng;
    use crate::train::params::{named_tensors, param_ids};
    use burn::backend::{Autodiff, Flex};
    use burn::optim::GradientsParams;
    use burn::tensor::{Int, TensorData};

    type A = Autodiff<Flex>;

    /// A class-conditional 8×8 U-Net with attention and Fourier time features.
    fn unet() -> UNet<A> {
        UNetConfig {
            fourier_scale: 16.0,
            positional_time: false,
            ..crate::nn::unet::tests::tiny(8, 8, 3)
        }
        .init::<A>(5, &Default::default())
    }

    fn normal<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<A, D> {
        let n = shape.iter().product();
        Tensor::from_data(
            TensorData::new(Rng::new(seed).normal_vec(n), shape),
            &Default::default(),
        )
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    #[test]
    fn autocast_casts_weights_to_bf16_but_keeps_time_features_and_group_norm_in_f32() {
        let net = autocast(unet(), FloatDType::BF16);
        let mut cast = 0;
        for (name, t, _) in named_tensors(&net) {
            let last = name.rsplit('.').next().unwrap_or(&name);
            let want = if KEEP_F32.contains(&last) {
                DType::F32
            } else {
                cast += 1;
                DType::BF16
            };
            assert_eq!(t.dtype(), want, "{name}");
        }
        assert!(cast > 20, "only {cast} parameters were cast");
    }

    #[test]
    fn bf16_forward_is_near_f32_and_its_gradients_reach_the_f32_weights() {
        let net = unet();
        let (x, r) = (normal([4, 1, 8, 8], 1), normal([4, 1, 8, 8], 2));
        let t = Tensor::<A, 2>::from_data(
            TensorData::new(vec![0.05f32, 0.3, 0.6, 0.95], [4, 1]),
            &Default::default(),
        );
        // Labels 0–2 and the null class 3.
        let y = Tensor::<A, 1, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2, 3], [4]),
            &Default::default(),
        );
        let full = net.forward(x.clone(), t.clone(), Some(y.clone()));
        let half = autocast(net.clone(), FloatDType::BF16).forward(x, t, Some(y));
        assert_eq!(half.dtype(), DType::F32, "the output comes back in f32");
        let (f, h) = (
            crate::tensor::to_vec(full.clone()),
            crate::tensor::to_vec(half.clone()),
        );
        let diff: Vec<f32> = f.iter().zip(&h).map(|(a, b)| a - b).collect();
        let rel = (dot(&diff, &diff) / dot(&f, &f)).sqrt();
        // bf16 keeps 8 significant bits (relative rounding 2⁻⁹ ≈ 0.002 per operation): the
        // outputs must differ (the network really ran in bf16) but only by rounding.
        assert!(rel > 1e-4 && rel < 0.03, "relative difference {rel}");

        let g_full = GradientsParams::from_grads((full * r.clone()).sum().backward(), &net);
        let g_half = GradientsParams::from_grads((half * r).sum().backward(), &net);
        let mut pairs = Vec::new();
        for (name, id) in param_ids(&net) {
            if name == "fourier_w" {
                continue;
            }
            let get = |g: &GradientsParams| -> Option<(DType, Vec<f32>)> {
                let t: Option<Tensor<Flex, 1>> = g
                    .get::<Flex, 1>(id)
                    .or_else(|| g.get::<Flex, 2>(id).map(|t| t.flatten(0, 1)))
                    .or_else(|| g.get::<Flex, 4>(id).map(|t| t.flatten(0, 3)));
                t.map(|t| (t.dtype(), crate::tensor::to_vec(t)))
            };
            let (Some((_, a)), Some((dt, b))) = (get(&g_full), get(&g_half)) else {
                panic!("no gradient for {name}");
            };
            assert_eq!(
                dt,
                DType::F32,
                "{name}: the master weight's gradient is f32"
            );
            pairs.push((name, a, b));
        }
        // Each gradient within 10 % of its f32 value, up to a floor of 10⁻³ of the largest
        // gradient (the attention key bias has a zero gradient in exact arithmetic: softmax
        // ignores a shift shared by all keys, so both runs give rounding noise there).
        let norm = |v: &[f32]| dot(v, v).sqrt();
        let largest = pairs.iter().map(|(_, a, _)| norm(a)).fold(0.0, f64::max);
        for (name, a, b) in &pairs {
            let d: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
            let (err, size) = (norm(&d), norm(a));
            assert!(
                err <= 0.1 * size + 1e-3 * largest,
                "{name}: bf16 gradient off by {err} (f32 gradient norm {size}, largest {largest})"
            );
        }
        let checked = pairs.len();
        assert!(checked > 20, "{checked} parameters checked");
    }

    #[test]
    fn precision_parses_and_round_trips() {
        assert_eq!("bf16".parse(), Ok(Precision::Bf16));
        assert_eq!("f32".parse(), Ok(Precision::F32));
        assert!("fp16".parse::<Precision>().unwrap_err().contains("fp16"));
        for p in [Precision::F32, Precision::Bf16] {
            assert_eq!(p.name().parse(), Ok(p));
        }
        assert_eq!(Precision::Bf16.compute_dtype(), Some(FloatDType::BF16));
        assert_eq!(Precision::F32.compute_dtype(), None);
    }
}
