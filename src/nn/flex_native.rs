//! Direct access to the flex CPU backend's tensors for scoregen's fused operations
//! (`fused_norm`, `fused_silu`, `fused_softmax`, `fused_cat`): a run-time type check that tells
//! flex (with or without autodiff) from other backends, f32 slices of its tensors, outputs
//! written without a zero-fill, a parallel runner over pieces of a buffer, and copies of a
//! kernel compiled for the widest SIMD level the CPU has.

use std::any::Any;

use burn::tensor::{DType, TensorData};
use burn_flex::FlexTensor;

/// `t` as a `U` when `T` is `U` (a run-time type check, no conversion).
pub(super) fn cast<T: 'static, U: 'static>(t: T) -> Option<U> {
    try_cast(t).ok()
}

/// `t` as a `U` when `T` is `U`, else `t` back unchanged.
pub(super) fn try_cast<T: 'static, U: 'static>(t: T) -> Result<U, T> {
    match (Box::new(t) as Box<dyn Any>).downcast::<U>() {
        Ok(u) => Ok(*u),
        Err(t) => Err(*t
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("it was a T"))),
    }
}

/// The values of `t`, writable in place, when it holds f32, is contiguous and its buffer is not
/// shared with another tensor.
pub(super) fn unique_values(t: &mut FlexTensor) -> Option<&mut [f32]> {
    let (start, end) = t.layout().contiguous_offsets()?;
    if t.dtype() != DType::F32 {
        return None;
    }
    Some(&mut t.try_storage_mut::<f32>()?[start..end])
}

/// `t` made contiguous (no copy when it already is), if it holds f32.
pub(super) fn f32_values(t: FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| t.to_contiguous())
}

/// The values of a contiguous f32 tensor (see [`f32_values`]).
///
/// # Panics
/// If `t` is not contiguous (its buffer would be read in storage order, not the tensor's).
pub(super) fn slice(t: &FlexTensor) -> &[f32] {
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("slice: a contiguous tensor");
    &t.storage::<f32>()[start..end]
}

/// `src` copied into `dst` (of the same length), which may be uninitialised (what
/// `<[MaybeUninit<T>]>::write_copy_of_slice` does from Rust 1.93, above this crate's MSRV).
///
/// # Panics
/// If the lengths differ.
pub(super) fn write_copy(dst: &mut [std::mem::MaybeUninit<f32>], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "write_copy: lengths differ");
    // SAFETY: both hold src.len() elements, MaybeUninit<f32> has f32's layout, and a fresh
    // &mut cannot overlap a & borrow.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), src.len()) };
}

/// A vector of `len` f32 that `fill` writes every element of (no zero-fill first).
///
/// `fill` must write all `len` elements of the slice it is given.
pub(super) fn written(
    len: usize,
    fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` elements (the contract above, kept by its callers).
    unsafe { v.set_len(len) };
    v
}

/// `t` as a contiguous tensor whose buffer is not shared (no copy when it already is one), so
/// that a backward pass can write its result in place.
pub(super) fn owned_contiguous(t: FlexTensor) -> FlexTensor {
    let t = if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    };
    if t.is_unique() {
        return t;
    }
    flex(slice(&t).to_vec(), t.layout().shape().clone())
}

/// Smallest tensor (elements) split over threads, and the least elements per piece.
const PARALLEL_MIN: usize = 32 * 1024;

/// `kernel(offset, piece)` over consecutive pieces covering `dst`, each a whole number of
/// `unit`-element runs (rows; 1 for element-wise kernels), on rayon's threads when `dst` is
/// large (about four pieces per thread).
pub(super) fn run_pieces<T: Send>(
    dst: &mut [T],
    unit: usize,
    kernel: impl Fn(usize, &mut [T]) + Sync,
) {
    use rayon::prelude::*;
    let n = dst.len();
    let threads = rayon::current_num_threads();
    if n < PARALLEL_MIN || threads < 2 {
        return kernel(0, dst);
    }
    let chunk = n.div_ceil(4 * threads).max(PARALLEL_MIN / 2).div_ceil(unit) * unit;
    dst.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| kernel(i * chunk, c));
}

/// A contiguous flex tensor of `shape` holding `values`.
pub(super) fn flex(values: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The instruction set the fused kernels are compiled for, chosen at run time: scoregen itself
/// is built for baseline x86-64 (SSE2), so their loops vectorise to 4 lanes unless a copy
/// compiled with AVX2/FMA or AVX-512 runs them.
#[derive(Clone, Copy)]
pub(super) enum Simd {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    /// Every level, widest last.
    pub(super) const ALL: &[Simd] = &[
        Simd::Baseline,
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2,
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512,
    ];

    /// Whether this CPU runs the level's copy.
    pub(super) fn supported(self) -> bool {
        match self {
            Simd::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => std::is_x86_feature_detected!("avx512f"),
        }
    }
}

/// The widest level this CPU runs.
pub(super) fn simd() -> Simd {
    let supported = Simd::ALL.iter().rev().find(|l| l.supported());
    supported.copied().unwrap_or(Simd::Baseline)
}

/// `$name` run by a copy of `$body` compiled for the [`Simd`] level (the body is inlined into
/// each copy, so each is vectorised for its instruction set).
macro_rules! dispatch {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        fn $name(level: $crate::nn::flex_native::Simd, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            match level {
                $crate::nn::flex_native::Simd::Baseline => $body($($arg),*),
                // SAFETY: `simd()` chose these levels only where the CPU has the features.
                #[cfg(target_arch = "x86_64")]
                $crate::nn::flex_native::Simd::Avx2 => unsafe { avx2($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::nn::flex_native::Simd::Avx512 => unsafe { avx512($($arg),*) },
            }
        }
    };
}
pub(super) use dispatch;

/// y = f(x) and the gradient of Σ w·y (of Σ y without a weight: then dy is a broadcast view of
/// one value) with respect to x, on autodiff flex: the fused operations' tests compare both
/// with burn's composed versions.
#[cfg(test)]
pub(super) fn value_and_grad<const D: usize>(
    x: burn::tensor::Tensor<burn::backend::Autodiff<burn::backend::Flex>, D>,
    f: impl Fn(
        burn::tensor::Tensor<burn::backend::Autodiff<burn::backend::Flex>, D>,
    ) -> burn::tensor::Tensor<burn::backend::Autodiff<burn::backend::Flex>, D>,
    w: Option<burn::tensor::Tensor<burn::backend::Autodiff<burn::backend::Flex>, D>>,
) -> (Vec<f32>, Vec<f32>) {
    use crate::tensor::to_vec;
    let x = x.require_grad();
    let y = f(x.clone());
    let loss = match w {
        Some(w) => (y.clone() * w).sum(),
        None => y.clone().sum(),
    };
    let grads = loss.backward();
    (to_vec(y), to_vec(x.grad(&grads).expect("x has a gradient")))
}
