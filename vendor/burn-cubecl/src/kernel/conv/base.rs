use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use burn_backend::ops::ConvOptions;
use burn_backend::DType;
use burn_std::Shape;
use cubek::convolution::{AcceleratedTileKind, components::ConvSetupError};

#[cfg(feature = "autotune")]
use crate::kernel::conv::{backward_weight::wgrad_autotune, dgrad_autotune};
use crate::{
    CubeRuntime,
    kernel::cast,
    kernel::conv::{
        backward_data::{fallback::conv_data_backward_fallback, implicit_gemm::*},
        backward_weight::{fallback::conv_weight_backward_fallback, implicit_gemm::*},
        forward::implicit_gemm::conv_gemm_simple_sync,
    },
    ops::{permute_nchw_to_nhwc, permute_nchw_to_nhwc_shape, permute_nhwc_to_nchw},
    tensor::CubeTensor,
};

use super::conv_direct;
#[cfg(feature = "autotune")]
use super::forward::conv_autotune;

/// The strategy to be used when launching a convolution kernel.
pub enum ConvStrategy {
    /// A simple direct convolution.
    Direct,
    #[cfg(feature = "autotune")]
    /// Using autotune to choose the best kernel based on runtime information.
    Autotune,
    /// Implicit GEMM implementation of convolution. Lower memory usage but requires CMMA and
    /// has constraints on tensor shape.
    ImplicitGemm,
    /// Implicit GEMM on MMA (PTX `mma`) tiles instead of CMMA ones (scoregen patch).
    ImplicitGemmMma,
}

/// The kernels [`ConvStrategy::default`] takes when autotune is disabled (scoregen patch; see
/// PATCHED.md). An implicit-GEMM choice falls back to the direct kernel (forward) or the
/// fallback kernels (gradients) for any convolution it cannot set up, so every choice runs
/// every convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultConvKernels {
    /// burn-cubecl's own choice without autotune: the direct kernel and the fallback gradients.
    Direct,
    /// Implicit GEMM on CMMA tiles ([`ConvStrategy::ImplicitGemm`]).
    ImplicitGemmCmma,
    /// Implicit GEMM on MMA tiles ([`ConvStrategy::ImplicitGemmMma`]).
    ImplicitGemmMma,
}

/// The three passes of a convolution, each with its own kernels (scoregen patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPass {
    /// The convolution itself.
    Forward,
    /// The gradient with respect to the weights.
    WeightGrad,
    /// The gradient with respect to the input.
    DataGrad,
}

static DEFAULT_KERNELS: [AtomicU8; 3] = [AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0)];

/// Sets the kernels [`ConvStrategy::for_pass`] takes from now on for every pass, process-wide,
/// when autotune is disabled (with autotune the default stays [`ConvStrategy::Autotune`]).
pub fn set_default_conv_kernels(kernels: DefaultConvKernels) {
    for pass in [ConvPass::Forward, ConvPass::WeightGrad, ConvPass::DataGrad] {
        set_default_conv_kernels_for(pass, kernels);
    }
}

/// Sets the kernels [`ConvStrategy::for_pass`] takes from now on for one pass.
pub fn set_default_conv_kernels_for(pass: ConvPass, kernels: DefaultConvKernels) {
    let code = match kernels {
        DefaultConvKernels::Direct => 0,
        DefaultConvKernels::ImplicitGemmCmma => 1,
        DefaultConvKernels::ImplicitGemmMma => 2,
    };
    DEFAULT_KERNELS[pass as usize].store(code, Ordering::Relaxed);
}

static GEMM_GUARD: AtomicBool = AtomicBool::new(true);

/// Whether the implicit-GEMM kernels are kept to what was measured correct, convolution by
/// convolution against the CPU, on an H200 (scoregen patch, on unless switched off here;
/// scoregen's tests switch it off to print what the kernels alone compute,
/// tests/cuda_kernels.rs):
/// - weight gradients only with a multiple of 4 input channels (with 1, 2 or 3 they were wrong,
///   CMMA ones also varying from run to run); the direct / fallback kernels otherwise;
/// - in half precision, CMMA tiles for the forward pass (MMA returned infinities) and MMA tiles
///   for the weight gradient (CMMA was wrong for several shapes).
///
/// Not covered: the data gradient is right for every single convolution tested and wrong inside
/// a U-Net (a contiguous copy of its inputs did not change that and broke a kernel's setup), so
/// scoregen does not choose it.
pub fn set_conv_gemm_guard(on: bool) {
    GEMM_GUARD.store(on, Ordering::Relaxed);
}

fn guarded() -> bool {
    GEMM_GUARD.load(Ordering::Relaxed)
}

fn is_half(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16)
}

/// Runs `f` on f32 copies of half-precision tensors and casts its result back (scoregen patch):
/// the direct and fallback kernels accumulate in the element type, and a bf16 weight gradient
/// summed over a batch lost most of its digits (relative error 0.2 to 0.98 on an H200).
fn in_f32<R: CubeRuntime, E>(
    tensors: Vec<CubeTensor<R>>,
    f: impl FnOnce(Vec<CubeTensor<R>>) -> Result<CubeTensor<R>, E>,
) -> Result<CubeTensor<R>, E> {
    let dtype = tensors[0].dtype;
    if !is_half(dtype) {
        return f(tensors);
    }
    let wide = tensors.into_iter().map(|t| cast(t, DType::F32)).collect();
    Ok(cast(f(wide)?, dtype))
}

/// The kernels [`ConvStrategy::for_pass`] takes for `pass` when autotune is disabled.
pub fn default_conv_kernels(pass: ConvPass) -> DefaultConvKernels {
    match DEFAULT_KERNELS[pass as usize].load(Ordering::Relaxed) {
        1 => DefaultConvKernels::ImplicitGemmCmma,
        2 => DefaultConvKernels::ImplicitGemmMma,
        _ => DefaultConvKernels::Direct,
    }
}

impl ConvStrategy {
    /// The strategy of one pass: autotune when enabled, else the kernels chosen for the pass by
    /// `set_default_conv_kernels[_for]` (the more memory-conservative direct algorithm unless
    /// set).
    pub fn for_pass(pass: ConvPass) -> Self {
        // if autotune is enabled, default to autotune
        #[cfg(feature = "autotune")]
        return ConvStrategy::Autotune;

        #[cfg(not(feature = "autotune"))]
        match default_conv_kernels(pass) {
            DefaultConvKernels::Direct => ConvStrategy::Direct,
            DefaultConvKernels::ImplicitGemmCmma => ConvStrategy::ImplicitGemm,
            DefaultConvKernels::ImplicitGemmMma => ConvStrategy::ImplicitGemmMma,
        }
    }
}

impl Default for ConvStrategy {
    /// The forward pass's strategy ([`ConvStrategy::for_pass`]).
    fn default() -> Self {
        Self::for_pass(ConvPass::Forward)
    }
}

/// The accelerated tile kind of an implicit-GEMM strategy for `pass`: MMA for
/// `ImplicitGemmMma`, CMMA (upstream's `ImplicitGemm`) otherwise; in half precision under the
/// guard ([`set_conv_gemm_guard`]) CMMA for the forward pass and MMA for the weight gradient.
fn gemm_tiles(strategy: &ConvStrategy, dtype: DType, pass: ConvPass) -> AcceleratedTileKind {
    match (pass, is_half(dtype) && guarded()) {
        (ConvPass::Forward, true) => AcceleratedTileKind::Cmma,
        (ConvPass::WeightGrad, true) => AcceleratedTileKind::Mma,
        _ => match strategy {
            ConvStrategy::ImplicitGemmMma => AcceleratedTileKind::Mma,
            _ => AcceleratedTileKind::Cmma,
        },
    }
}

/// The direct convolution, accumulated in f32 for half-precision tensors ([`in_f32`]).
fn direct<R: CubeRuntime, const N: usize>(
    input: CubeTensor<R>,
    weight: CubeTensor<R>,
    bias: Option<CubeTensor<R>>,
    options: ConvOptions<N>,
) -> Result<CubeTensor<R>, ConvSetupError> {
    let mut tensors = vec![input, weight];
    tensors.extend(bias);
    in_f32(tensors, |mut t| {
        let bias = (t.len() == 3).then(|| t.remove(2));
        let weight = t.remove(1);
        conv_direct::<R, N>(t.remove(0), weight, bias, options)
    })
}

/// The fallback weight gradient, accumulated in f32 for half precision ([`in_f32`]).
fn weight_fallback<R: CubeRuntime, const N: usize>(
    input: CubeTensor<R>,
    out_grad: CubeTensor<R>,
    weight_shape: Shape,
    options: ConvOptions<N>,
) -> Result<CubeTensor<R>, ConvSetupError> {
    in_f32(vec![input, out_grad], |mut t| {
        let out_grad = t.remove(1);
        conv_weight_backward_fallback::<R, N>(t.remove(0), out_grad, weight_shape, options)
    })
}

/// The fallback data gradient, accumulated in f32 for half precision ([`in_f32`]).
fn data_fallback<R: CubeRuntime, const N: usize>(
    out_grad: CubeTensor<R>,
    weights: CubeTensor<R>,
    in_shape: Shape,
    options: ConvOptions<N>,
) -> Result<CubeTensor<R>, ConvSetupError> {
    in_f32(vec![out_grad, weights], |mut t| {
        let weights = t.remove(1);
        conv_data_backward_fallback::<R, N>(t.remove(0), weights, in_shape, options)
    })
}

/// Performs an N-dimensional convolution with the given strategy
///
/// * `input` - The input feature map
/// * `weight` - The weights (filter) applied to each kernel
/// * `bias` - The bias added to each channel
/// * `options` - The options to use for the convolution
/// * `strategy` - The convolution algorithm to use. Autotune will pick the fastest available option.
pub fn conv_forward<R: CubeRuntime, const N: usize>(
    input: CubeTensor<R>,
    weight: CubeTensor<R>,
    bias: Option<CubeTensor<R>>,
    options: ConvOptions<N>,
    strategy: ConvStrategy,
) -> Result<CubeTensor<R>, ConvSetupError> {
    let input = permute_nchw_to_nhwc(input);
    let weight = permute_nchw_to_nhwc(weight);

    let out = conv_forward_nhwc(input, weight, bias, options, strategy)?;

    Ok(permute_nhwc_to_nchw(out))
}

/// Performs an N-dimensional convolution with the given strategy on NHWC inputs/outputs
///
/// * `input` - The input feature map
/// * `weight` - The weights (filter) applied to each kernel
/// * `bias` - The bias added to each channel
/// * `options` - The options to use for the convolution
/// * `strategy` - The convolution algorithm to use. Autotune will pick the fastest available option.
pub fn conv_forward_nhwc<R: CubeRuntime, const N: usize>(
    input: CubeTensor<R>,
    weight: CubeTensor<R>,
    bias: Option<CubeTensor<R>>,
    options: ConvOptions<N>,
    strategy: ConvStrategy,
) -> Result<CubeTensor<R>, ConvSetupError> {
    match strategy {
        ConvStrategy::Direct => direct::<R, N>(input, weight, bias, options),
        #[cfg(feature = "autotune")]
        ConvStrategy::Autotune => Ok(conv_autotune::<R, N>(input, weight, bias, options)),
        ConvStrategy::ImplicitGemm | ConvStrategy::ImplicitGemmMma => {
            let tiles = gemm_tiles(&strategy, input.dtype, ConvPass::Forward);
            if options.groups != 1 {
                direct::<R, N>(input, weight, bias, options)
            } else {
                conv_gemm_simple_sync::<R, N>(
                    input.clone(),
                    weight.clone(),
                    bias.clone(),
                    options.clone(),
                    tiles,
                )
                .or_else(|_| direct::<R, N>(input, weight, bias, options))
            }
        }
    }
}

/// Performs an N-dimensional convolution backwards pass with regard to weight, with the given strategy
///
/// * `input` - The input feature map
/// * `out_grad` - The output gradients
/// * `weight_shape` - The shape of the weights/weight gradients
/// * `options` - The options used for the convolution
/// * `strategy` - The convolution algorithm to use. Autotune will pick the fastest available option.
pub fn conv_weight_backward<R: CubeRuntime, const N: usize>(
    input: CubeTensor<R>,
    out_grad: CubeTensor<R>,
    weight_shape: Shape,
    options: ConvOptions<N>,
    strategy: ConvStrategy,
) -> Result<CubeTensor<R>, ConvSetupError> {
    let input = permute_nchw_to_nhwc(input);
    let out_grad = permute_nchw_to_nhwc(out_grad);
    let weight_shape = permute_nchw_to_nhwc_shape(weight_shape);

    let weight_grad = match strategy {
        ConvStrategy::Direct => weight_fallback::<R, N>(input, out_grad, weight_shape, options),
        #[cfg(feature = "autotune")]
        ConvStrategy::Autotune => Ok(wgrad_autotune::<R, N>(
            input,
            out_grad,
            weight_shape,
            options,
        )),
        ConvStrategy::ImplicitGemm | ConvStrategy::ImplicitGemmMma => {
            let tiles = gemm_tiles(&strategy, input.dtype, ConvPass::WeightGrad);
            let rank = input.meta.num_dims();
            let fits = !guarded() || input.meta.shape()[rank - 1] % 4 == 0;
            if options.groups != 1 || !fits {
                weight_fallback::<R, N>(input, out_grad, weight_shape, options)
            } else {
                wgrad_gemm_simple_sync::<R, N>(
                    input.clone(),
                    out_grad.clone(),
                    weight_shape.clone(),
                    options.clone(),
                    tiles,
                )
                .or_else(|_| weight_fallback::<R, N>(input, out_grad, weight_shape, options))
            }
        }
    }?;

    Ok(permute_nhwc_to_nchw(weight_grad))
}

/// Performs an N-dimensional convolution backwards data pass with the given strategy
///
/// * `input` - The input feature map
/// * `weight` - The weights (filter) applied to each kernel
/// * `in_shape` - The shape of the input to the layer
/// * `options` - The options to use for the convolution
/// * `strategy` - The convolution algorithm to use. Autotune will pick the fastest available option.
pub fn conv_data_backward<R: CubeRuntime, const N: usize>(
    out_grad: CubeTensor<R>,
    weights: CubeTensor<R>,
    in_shape: Shape,
    options: ConvOptions<N>,
    strategy: ConvStrategy,
) -> Result<CubeTensor<R>, ConvSetupError> {
    let out_grad = permute_nchw_to_nhwc(out_grad);
    let weights = permute_nchw_to_nhwc(weights);
    let in_shape = permute_nchw_to_nhwc_shape(in_shape);

    let weight_grad = match strategy {
        ConvStrategy::Direct => data_fallback::<R, N>(out_grad, weights, in_shape, options)?,
        #[cfg(feature = "autotune")]
        ConvStrategy::Autotune => dgrad_autotune::<R, N>(out_grad, weights, in_shape, options),
        ConvStrategy::ImplicitGemm | ConvStrategy::ImplicitGemmMma => {
            let tiles = gemm_tiles(&strategy, out_grad.dtype, ConvPass::DataGrad);
            if options.groups != 1 || options.stride.iter().any(|&s| s != 1) {
                data_fallback::<R, N>(out_grad, weights, in_shape, options)?
            } else {
                match dgrad_gemm_simple_sync::<R, N>(
                    out_grad.clone(),
                    weights.clone(),
                    in_shape.clone(),
                    options.clone(),
                    tiles,
                ) {
                    Ok(grad) => grad,
                    Err(_) => data_fallback::<R, N>(out_grad, weights, in_shape, options)?,
                }
            }
        }
    };

    Ok(permute_nhwc_to_nchw(weight_grad))
}
