//! Which convolution kernels the CUDA backend runs: `$SCOREGEN_CUDA_CONV`.
//!
//! scoregen builds burn's CUDA backend without autotune (BENCHMARKS.md, "GPU": autotune compiles
//! and times hundreds of candidate kernels before the first step), and without autotune
//! burn-cubecl 0.21 runs every convolution on a simple direct kernel and its gradients on
//! fallback kernels. The patched burn-cubecl (vendor/burn-cubecl/PATCHED.md) can take the
//! implicit-GEMM convolutions on tensor-core tiles instead, CMMA or MMA, for each pass on its
//! own, falling back to the direct kernels for a convolution they cannot set up.
//!
//! Measured on an H200 (BENCHMARKS.md, "GPU, second session" and "GPU, third session"): the
//! implicit-GEMM forward pass agrees with the direct one (first training loss within 5·10⁻⁶,
//! generated LArTPC events as on the CPU) and halves its time. Its gradients, convolution by
//! convolution against the CPU (tests/cuda_kernels.rs), are right except weight gradients with
//! fewer than 4 input channels, which burn-cubecl's guard sends to the fallback kernels
//! (vendor/burn-cubecl/PATCHED.md); but inside a U-Net the GEMM data gradient is wrong (first
//! gradient norm 641 788 instead of 4.71; 152 of 183 parameter gradients off), for a reason not
//! yet found, and the GEMM weight gradient has been checked there only through the gradient
//! norm and the first eight losses, not parameter by parameter. So the default, and what `mma`
//! and `cmma` mean, is the implicit GEMM forward with the fallback gradients; the GEMM
//! gradients stay reachable per pass (`weight=mma`, `data=mma`), with a warning
//! ([`CudaConv::caveat`]).

use crate::error::{Error, Result};

/// The environment variable that chooses the CUDA convolution kernels.
pub const CUDA_CONV_VAR: &str = "SCOREGEN_CUDA_CONV";

/// One pass's convolution kernels on the CUDA backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKernels {
    /// burn-cubecl's direct convolution (forward) or fallback kernels (gradients).
    Direct,
    /// Implicit GEMM on CMMA (`wmma`) tiles.
    Cmma,
    /// Implicit GEMM on MMA (PTX `mma`) tiles.
    Mma,
}

impl ConvKernels {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "direct" => Some(ConvKernels::Direct),
            "cmma" => Some(ConvKernels::Cmma),
            "mma" => Some(ConvKernels::Mma),
            _ => None,
        }
    }

    /// `direct`, `cmma` or `mma`.
    pub fn name(self) -> &'static str {
        match self {
            ConvKernels::Direct => "direct",
            ConvKernels::Cmma => "cmma",
            ConvKernels::Mma => "mma",
        }
    }
}

/// The CUDA backend's convolution kernels, chosen per pass: the convolution itself, its weight
/// gradient and its input (data) gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CudaConv {
    /// The convolution.
    pub forward: ConvKernels,
    /// The gradient with respect to the weights.
    pub weight: ConvKernels,
    /// The gradient with respect to the input.
    pub data: ConvKernels,
}

impl CudaConv {
    /// The same kernels for all three passes.
    pub fn all(kernels: ConvKernels) -> Self {
        CudaConv {
            forward: kernels,
            weight: kernels,
            data: kernels,
        }
    }

    /// The implicit GEMM forward on `kernels`' tiles with the fallback gradients: the
    /// measured-correct use of the GEMM kernels (see the module documentation).
    pub fn forward_only(kernels: ConvKernels) -> Self {
        CudaConv {
            forward: kernels,
            ..Self::all(ConvKernels::Direct)
        }
    }

    /// The choice a value of [`CUDA_CONV_VAR`] names: unset or empty (the default, `mma`),
    /// `direct` (every pass direct), `cmma` or `mma` (that forward pass, fallback gradients),
    /// or per pass, `forward=mma,weight=direct,data=mma` (a pass not named is direct).
    pub fn from_var(value: Option<&str>) -> Result<Self> {
        let bad = |why: String| Error::config(CUDA_CONV_VAR, why);
        let value = value.map(str::trim).unwrap_or("");
        if value.is_empty() {
            return Ok(Self::default());
        }
        if let Some(k) = ConvKernels::parse(value) {
            return Ok(Self::forward_only(k));
        }
        let mut conv = Self::all(ConvKernels::Direct);
        for item in value.split(',') {
            let (pass, kernels) = item.split_once('=').ok_or_else(|| {
                bad(format!(
                    "`{item}` is neither a convolution choice (direct, cmma, mma) nor pass=kernels"
                ))
            })?;
            let kernels = ConvKernels::parse(kernels.trim()).ok_or_else(|| {
                bad(format!(
                    "`{kernels}` is not a convolution choice (expected direct, cmma or mma)"
                ))
            })?;
            match pass.trim() {
                "forward" => conv.forward = kernels,
                "weight" => conv.weight = kernels,
                "data" => conv.data = kernels,
                other => {
                    return Err(bad(format!(
                        "`{other}` is not a convolution pass (expected forward, weight or data)"
                    )))
                }
            }
        }
        Ok(conv)
    }

    /// The choice [`CUDA_CONV_VAR`] names in this process's environment.
    pub fn from_env() -> Result<Self> {
        Self::from_var(std::env::var(CUDA_CONV_VAR).ok().as_deref())
    }

    /// `direct`, `mma` or `cmma` where one word names the choice, else
    /// `forward=…,weight=…,data=…` (the variable's syntax).
    pub fn name(self) -> String {
        if self == Self::forward_only(self.forward) {
            self.forward.name().to_string()
        } else {
            format!(
                "forward={},weight={},data={}",
                self.forward.name(),
                self.weight.name(),
                self.data.name()
            )
        }
    }

    /// What is known to be wrong or unverified about this choice, for a warning: `None` for
    /// the choices scoregen makes itself (GEMM forward, fallback gradients).
    pub fn caveat(self) -> Option<String> {
        let gemm = |k: ConvKernels| k != ConvKernels::Direct;
        match (gemm(self.weight), gemm(self.data)) {
            (_, true) => Some(format!(
                "{CUDA_CONV_VAR}: the implicit-GEMM data gradient gave wrong U-Net gradients on \
                 an H200 (BENCHMARKS.md); use it only to diagnose"
            )),
            (true, false) => Some(format!(
                "{CUDA_CONV_VAR}: the implicit-GEMM weight gradient is not yet verified \
                 parameter by parameter in a whole network (tests/cuda_kernels.rs)"
            )),
            (false, false) => None,
        }
    }

    /// Makes this choice burn-cubecl's, process-wide, from the next convolution on.
    #[cfg(feature = "cuda")]
    pub fn apply(self) {
        use burn_cubecl::kernel::conv::{
            set_default_conv_kernels_for, ConvPass, DefaultConvKernels,
        };
        let kernels = |k: ConvKernels| match k {
            ConvKernels::Direct => DefaultConvKernels::Direct,
            ConvKernels::Cmma => DefaultConvKernels::ImplicitGemmCmma,
            ConvKernels::Mma => DefaultConvKernels::ImplicitGemmMma,
        };
        set_default_conv_kernels_for(ConvPass::Forward, kernels(self.forward));
        set_default_conv_kernels_for(ConvPass::WeightGrad, kernels(self.weight));
        set_default_conv_kernels_for(ConvPass::DataGrad, kernels(self.data));
    }
}

impl Default for CudaConv {
    /// The MMA forward with the fallback gradients.
    fn default() -> Self {
        Self::forward_only(ConvKernels::Mma)
    }
}

/// Sets burn-cubecl's convolution kernels from [`CUDA_CONV_VAR`], before the first CUDA device
/// is created.
#[cfg(feature = "cuda")]
pub fn configure_cuda_conv() -> Result<CudaConv> {
    let choice = CudaConv::from_env()?;
    if let Some(caveat) = choice.caveat() {
        eprintln!("warning: {caveat}");
    }
    choice.apply();
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_the_kernels_per_pass_and_refuses_anything_else() {
        let (direct, mma, cmma) = (ConvKernels::Direct, ConvKernels::Mma, ConvKernels::Cmma);
        let parse = |v| CudaConv::from_var(v).unwrap();
        assert_eq!(parse(None), CudaConv::forward_only(mma));
        assert_eq!(parse(Some("")), CudaConv::default());
        assert_eq!(parse(Some("direct")), CudaConv::all(direct));
        assert_eq!(parse(Some(" cmma ")), CudaConv::forward_only(cmma));
        // `mma`: the GEMM forward only; the gradients stay on the fallback kernels.
        let one = parse(Some("mma"));
        assert_eq!((one.forward, one.weight, one.data), (mma, direct, direct));
        assert_eq!(one.name(), "mma");
        assert_eq!(CudaConv::all(direct).name(), "direct");
        let mixed = parse(Some("forward=mma, data=cmma"));
        assert_eq!(
            (mixed.forward, mixed.weight, mixed.data),
            (mma, direct, cmma)
        );
        assert_eq!(mixed.name(), "forward=mma,weight=direct,data=cmma");
        let every = CudaConv::all(mma);
        assert_eq!(every.name(), "forward=mma,weight=mma,data=mma");
        for c in [mixed, every, one] {
            assert_eq!(CudaConv::from_var(Some(&c.name())).unwrap(), c);
        }
        // Only the GEMM gradients carry a warning, the data gradient's the stronger one.
        assert_eq!(one.caveat(), None);
        assert_eq!(CudaConv::all(direct).caveat(), None);
        assert!(every.caveat().unwrap().contains("data gradient"));
        let weights = parse(Some("forward=mma,weight=mma"));
        assert!(weights.caveat().unwrap().contains("weight gradient"));
        for (bad, names) in [
            ("gemm", "gemm"),
            ("forward=gemm", "gemm"),
            ("backward=mma", "backward"),
        ] {
            let err = CudaConv::from_var(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(CUDA_CONV_VAR) && err.contains(names), "{err}");
        }
    }
}
