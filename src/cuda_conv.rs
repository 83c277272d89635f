//! Which convolution kernels the CUDA backend runs: `$SCOREGEN_CUDA_CONV`.
//!
//! scoregen builds burn's CUDA backend without autotune (BENCHMARKS.md, "GPU": autotune compiles
//! and times hundreds of candidate kernels before the first step), and without autotune
//! burn-cubecl 0.21 runs every convolution on a simple direct kernel and its gradients on
//! fallback kernels. The patched burn-cubecl (vendor/burn-cubecl/PATCHED.md) can take the
//! implicit-GEMM convolutions on tensor-core tiles instead, CMMA or MMA, falling back to the
//! direct kernels for a convolution they cannot set up.

use crate::error::{Error, Result};

/// The environment variable that chooses the CUDA convolution kernels.
pub const CUDA_CONV_VAR: &str = "SCOREGEN_CUDA_CONV";

/// The CUDA backend's convolution kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CudaConv {
    /// burn-cubecl's direct convolution and fallback gradients (the default).
    Direct,
    /// Implicit GEMM on CMMA (`wmma`) tiles.
    Cmma,
    /// Implicit GEMM on MMA (PTX `mma`) tiles.
    Mma,
}

impl CudaConv {
    /// The choice a value of [`CUDA_CONV_VAR`] names (unset or empty: [`CudaConv::Direct`]).
    pub fn from_var(value: Option<&str>) -> Result<Self> {
        match value.map(str::trim) {
            None | Some("") | Some("direct") => Ok(CudaConv::Direct),
            Some("cmma") => Ok(CudaConv::Cmma),
            Some("mma") => Ok(CudaConv::Mma),
            Some(other) => Err(Error::config(
                CUDA_CONV_VAR,
                format!("`{other}` is not a convolution choice (expected direct, cmma or mma)"),
            )),
        }
    }

    /// The choice [`CUDA_CONV_VAR`] names in this process's environment.
    pub fn from_env() -> Result<Self> {
        Self::from_var(std::env::var(CUDA_CONV_VAR).ok().as_deref())
    }
}

/// Sets burn-cubecl's default convolution kernels from [`CUDA_CONV_VAR`], before the first CUDA
/// device is created.
#[cfg(feature = "cuda")]
pub fn configure_cuda_conv() -> Result<CudaConv> {
    use burn_cubecl::kernel::conv::{set_default_conv_kernels, DefaultConvKernels};
    let choice = CudaConv::from_env()?;
    set_default_conv_kernels(match choice {
        CudaConv::Direct => DefaultConvKernels::Direct,
        CudaConv::Cmma => DefaultConvKernels::ImplicitGemmCmma,
        CudaConv::Mma => DefaultConvKernels::ImplicitGemmMma,
    });
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_the_kernels_and_refuses_anything_else() {
        assert_eq!(CudaConv::from_var(None).unwrap(), CudaConv::Direct);
        assert_eq!(CudaConv::from_var(Some("")).unwrap(), CudaConv::Direct);
        assert_eq!(
            CudaConv::from_var(Some("direct")).unwrap(),
            CudaConv::Direct
        );
        assert_eq!(CudaConv::from_var(Some(" cmma ")).unwrap(), CudaConv::Cmma);
        assert_eq!(CudaConv::from_var(Some("mma")).unwrap(), CudaConv::Mma);
        let err = CudaConv::from_var(Some("gemm")).unwrap_err().to_string();
        assert!(err.contains(CUDA_CONV_VAR) && err.contains("gemm"), "{err}");
    }
}
