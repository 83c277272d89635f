//! The CUDA backend against the flex CPU backend, on a GPU (built only with `--features cuda`;
//! each test says so and passes when no CUDA device can be initialised): every convolution
//! shape of the networks, forward and both gradients, with each choice of convolution kernels
//! (src/cuda_conv.rs: direct, implicit GEMM on CMMA or MMA tiles), in f32 and through bf16
//! casts as mixed precision runs them, as burn-cubecl's guard runs them (asserted) and without
//! it (printed, twice: a difference would be a race); a U-Net's parameter gradients with each
//! per-pass choice against the direct kernels; the U-Net's bf16 forward against its f32 one;
//! and the bf16 samplers of the benchmark, which must stay finite.
//!
//! Run on a GPU machine with `cargo test --release --features cuda --test cuda_kernels --
//! --nocapture --test-threads 1`: every case prints its relative errors before the test asserts.
#![cfg(feature = "cuda")]

use burn::backend::cuda::{Cuda, CudaDevice};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{FloatDType, Tensor, TensorData};
use scoregen::cuda_conv::{ConvKernels, CudaConv};
use scoregen::device::DeviceSpec;
use scoregen::nn::Precision;
use scoregen::tensor::to_vec;

/// The GPU, or `None` (and a message) when this machine has none.
fn gpu() -> Option<CudaDevice> {
    match DeviceSpec::Cuda(0).check_available() {
        Ok(()) => Some(CudaDevice::new(0)),
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

/// Deterministic values in [−1, 1).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// ‖a − b‖ / ‖b‖, infinite when `a` holds a non-finite value.
fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    if a.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}

/// One convolution: input [n, c, hw, hw], weight [o, c, k, k], stride, padding.
#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    c: usize,
    o: usize,
    hw: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

/// The convolutions of the benchmark and MNIST U-Nets, the LArTPC generator and SSNet, and
/// channel counts that are not multiples of 4 (RGB images, one-channel outputs):
/// (n, c, o, hw, k, stride, padding).
const CASES: [[usize; 7]; 17] = [
    [4, 1, 32, 28, 3, 1, 1],
    [4, 32, 1, 28, 3, 1, 1],
    [4, 2, 16, 28, 3, 1, 1],
    [4, 3, 32, 32, 3, 1, 1],
    [4, 32, 3, 32, 3, 1, 1],
    [4, 8, 8, 28, 3, 1, 1],
    [4, 128, 64, 7, 3, 1, 1],
    [4, 32, 32, 28, 3, 1, 1],
    [4, 32, 32, 28, 3, 2, 1],
    [4, 32, 64, 14, 3, 1, 1],
    [4, 64, 64, 7, 3, 1, 1],
    [4, 96, 64, 14, 3, 1, 1],
    [4, 64, 32, 14, 1, 1, 0],
    [64, 32, 32, 28, 3, 1, 1],
    [2, 16, 16, 64, 3, 1, 1],
    [2, 1, 16, 64, 3, 1, 1],
    [2, 16, 3, 64, 1, 1, 0],
];

/// y = conv(x, w) + b and, for the loss Σ y·r, its gradients: (y, ∂x, ∂w, ∂b), computed in
/// `dtype` (inputs cast to it, results cast back to f32); and last, how far tensors allocated
/// before the convolution moved from their value while it ran (zeros unless a kernel wrote out
/// of bounds, which on a network's full memory pool would corrupt live tensors).
fn conv_with_grads<A: AutodiffBackend>(
    case: Case,
    dtype: Option<FloatDType>,
    device: &A::Device,
) -> [Vec<f32>; 5] {
    let Case {
        n,
        c,
        o,
        hw,
        k,
        stride,
        pad,
    } = case;
    let t = |shape: Vec<usize>, seed: usize| {
        let len = shape.iter().product();
        Tensor::<A, 4>::from_data(TensorData::new(values(len, seed), shape), device)
    };
    // Freed buffers of every result's size (f32 and bf16) left holding large values: a kernel
    // that added to its output, or left part of it unwritten, would show here as it would
    // inside a network, where the memory pool hands out used buffers (a U-Net's GEMM data
    // gradients were wrong while the single convolutions here, on fresh memory, were right).
    let ho = (hw + 2 * pad - k) / stride + 1;
    let sizes = [n * o * ho * ho, n * c * hw * hw, o * c * k * k];
    for len in sizes {
        for len in [len, len.div_ceil(2)] {
            let poison = Tensor::<A, 1>::full([len], 1e4, device);
            drop(to_vec(poison));
        }
    }
    let canaries: Vec<Tensor<A, 1>> = sizes
        .iter()
        .flat_map(|&len| [len, len, len.div_ceil(2)])
        .map(|len| Tensor::<A, 1>::full([len], 7.0, device))
        .collect();
    let x = t(vec![n, c, hw, hw], 1).require_grad();
    let w = (t(vec![o, c, k, k], 2) * (1.0 / ((c * k * k) as f64).sqrt())).require_grad();
    let b = Tensor::<A, 1>::from_data(TensorData::new(values(o, 3), [o]), device).require_grad();
    let cast = |v: Tensor<A, 4>| match dtype {
        Some(dt) => v.cast(dt),
        None => v,
    };
    let bias = match dtype {
        Some(dt) => b.clone().cast(dt),
        None => b.clone(),
    };
    let opts = ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1);
    let y = conv2d(cast(x.clone()), cast(w.clone()), Some(bias), opts);
    let y = match dtype {
        Some(_) => y.cast(FloatDType::F32),
        None => y,
    };
    let out = y.dims();
    let r = t(out.to_vec(), 4);
    let grads = (y.clone() * r).sum().backward();
    let grad = |g: Option<Tensor<A::InnerBackend, 4>>| g.map(to_vec).unwrap_or_default();
    let results = [
        to_vec(y),
        grad(x.grad(&grads)),
        grad(w.grad(&grads)),
        b.grad(&grads).map(to_vec).unwrap_or_default(),
    ];
    let moved = canaries
        .into_iter()
        .flat_map(|t| to_vec(t.sub_scalar(7.0)))
        .collect();
    let [y, dx, dw, db] = results;
    [y, dx, dw, db, moved]
}

/// Relative errors of (y, ∂x, ∂w, ∂b) against `want`, and the canaries' movement (0 or very
/// large).
fn errors(got: &[Vec<f32>; 5], want: &[Vec<f32>; 5]) -> Vec<f64> {
    got.iter().zip(want).map(|(g, w)| rel(g, w)).collect()
}

#[test]
fn convolutions_and_their_gradients_match_the_cpu_with_every_kernel_choice() {
    check_convolutions(&CASES);
}

/// The MNIST U-Net's other convolutions (base 32, mult [1, 2, 2]: skip concatenations into
/// 3 × 3 and 1 × 1 convolutions at every level), batch 8 as in the U-Net gradient test.
const UNET_CASES: [[usize; 7]; 10] = [
    [8, 64, 64, 14, 3, 1, 1],
    [8, 32, 64, 14, 1, 1, 0],
    [8, 128, 64, 7, 1, 1, 0],
    [8, 128, 64, 14, 3, 1, 1],
    [8, 128, 64, 14, 1, 1, 0],
    [8, 96, 64, 14, 1, 1, 0],
    [8, 96, 32, 28, 3, 1, 1],
    [8, 96, 32, 28, 1, 1, 0],
    [8, 64, 32, 28, 3, 1, 1],
    [8, 64, 32, 28, 1, 1, 0],
];

#[test]
fn convolutions_of_the_mnist_unet_match_the_cpu_with_every_kernel_choice() {
    check_convolutions(&UNET_CASES);
}

/// Every pass of every case with every kernel choice, in f32 and bf16, against the CPU.
fn check_convolutions(cases: &[[usize; 7]]) {
    use burn_cubecl::kernel::conv::set_conv_gemm_guard;
    let Some(dev) = gpu() else { return };
    let cpu = Default::default();
    let mut failures = Vec::new();
    for &[n, c, o, hw, k, stride, pad] in cases {
        let case = Case {
            n,
            c,
            o,
            hw,
            k,
            stride,
            pad,
        };
        let want = conv_with_grads::<Autodiff<Flex>>(case, None, &cpu);
        for kernels in [ConvKernels::Direct, ConvKernels::Cmma, ConvKernels::Mma] {
            CudaConv::all(kernels).apply();
            for (dtype, tol) in [(None, 1e-2), (Some(FloatDType::BF16), 3e-2)] {
                let dname = if dtype.is_some() { "bf16" } else { "f32" };
                let name = format!("{case:?} {} {dname}", kernels.name());
                // What the kernels compute, without the guard that keeps the implicit GEMM to
                // the convolutions it gets right (printed twice: a difference between the two
                // runs would be a race, not a shape).
                if kernels != ConvKernels::Direct {
                    set_conv_gemm_guard(false);
                    let a = conv_with_grads::<Autodiff<Cuda>>(case, dtype, &dev);
                    let b = conv_with_grads::<Autodiff<Cuda>>(case, dtype, &dev);
                    set_conv_gemm_guard(true);
                    let (ea, eb) = (errors(&a, &want), errors(&b, &want));
                    println!(
                        "{name} unguarded: y {:.1e}/{:.1e}, dx {:.1e}/{:.1e}, dw {:.1e}/{:.1e}, \
                         canaries {:.0e}/{:.0e}",
                        ea[0], eb[0], ea[1], eb[1], ea[2], eb[2], ea[4], eb[4]
                    );
                }
                // What scoregen runs: every pass of every choice must match.
                let errs = errors(&conv_with_grads::<Autodiff<Cuda>>(case, dtype, &dev), &want);
                println!(
                    "{name}: relative error y {:.1e}, dx {:.1e}, dw {:.1e}, db {:.1e}, \
                     canaries {:.0e}",
                    errs[0], errs[1], errs[2], errs[3], errs[4]
                );
                if errs.iter().any(|e| e.is_nan() || *e > tol) {
                    failures.push(name);
                }
            }
        }
    }
    CudaConv::from_env().expect("SCOREGEN_CUDA_CONV").apply();
    assert!(failures.is_empty(), "differ from the CPU: {failures:#?}");
}

/// Collects every parameter's shape and gradient, in the module's order.
struct GradCollector<'a, B: AutodiffBackend> {
    grads: &'a burn::optim::GradientsParams,
    out: Vec<(Vec<usize>, Vec<f32>)>,
    _b: std::marker::PhantomData<B>,
}

/// Every parameter's shape and gradient (`grads` of a loss through `module`), in the module's
/// order.
fn param_grads<B: AutodiffBackend, M: burn::module::AutodiffModule<B>>(
    module: &M,
    grads: B::Gradients,
) -> Vec<(Vec<usize>, Vec<f32>)> {
    let grads = burn::optim::GradientsParams::from_grads(grads, module);
    let mut visitor = GradCollector::<B> {
        grads: &grads,
        out: Vec::new(),
        _b: std::marker::PhantomData,
    };
    module.visit(&mut visitor);
    visitor.out
}

impl<B: AutodiffBackend> burn::module::ModuleVisitor<B> for GradCollector<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let g = self.grads.get::<B::InnerBackend, D>(param.id);
        let shape = param.val().dims().to_vec();
        self.out.push((shape, g.map(to_vec).unwrap_or_default()));
    }
}

/// The MNIST U-Net's parameter shapes and gradients for Σ net(x, t)·r with the convolution
/// choice `conv`.
fn unet_gradients(conv: CudaConv, dev: &CudaDevice) -> Vec<(Vec<usize>, Vec<f32>)> {
    type A = Autodiff<Cuda>;
    conv.apply();
    let net = scoregen::app::bench::mnist_unet().init::<A>(0, dev);
    let n = 8;
    let x = Tensor::<A, 4>::from_data(TensorData::new(values(n * 784, 5), [n, 1, 28, 28]), dev);
    let t = Tensor::<A, 2>::from_data(TensorData::new(values(n, 6), [n, 1]), dev).abs();
    let y = net.forward(x, t, None);
    let r = Tensor::<A, 4>::from_data(TensorData::new(values(n * 784, 7), [n, 1, 28, 28]), dev);
    param_grads(&net, (y * r).sum().backward())
}

/// A training step's gradients through a whole U-Net (one input channel, one output channel,
/// attention, skips), parameter by parameter, with implicit-GEMM kernels against the direct
/// ones. Asserted for the choices scoregen makes (the GEMM forward with the fallback
/// gradients); printed for the GEMM gradients, which an H200 got wrong here (152 of 183
/// parameters with every pass on GEMM) while every single convolution above was right.
#[test]
fn unet_gradients_with_the_gemm_kernels_match_the_direct_ones() {
    let Some(dev) = gpu() else { return };
    let want = unet_gradients(CudaConv::all(ConvKernels::Direct), &dev);
    // The reference itself: the same network and inputs again, the same gradients.
    let again = unet_gradients(CudaConv::all(ConvKernels::Direct), &dev);
    let drift = again
        .iter()
        .zip(&want)
        .map(|(g, w)| rel(&g.1, &w.1))
        .fold(0.0, f64::max);
    println!("U-Net gradients, direct twice: worst relative difference {drift:.1e}");
    assert!(
        drift < 1e-4,
        "the direct U-Net gradients are not reproducible: {drift}"
    );
    let gemm_weights = |k| CudaConv {
        weight: k,
        ..CudaConv::forward_only(k)
    };
    let choices = [
        (CudaConv::default(), true),
        (CudaConv::forward_only(ConvKernels::Cmma), true),
        (gemm_weights(ConvKernels::Mma), false),
        (gemm_weights(ConvKernels::Cmma), false),
        (CudaConv::all(ConvKernels::Mma), false),
    ];
    let mut failures = Vec::new();
    for (conv, asserted) in choices {
        let got = unet_gradients(conv, &dev);
        let errs: Vec<f64> = got
            .iter()
            .zip(&want)
            .map(|(g, w)| rel(&g.1, &w.1))
            .collect();
        let (worst, at) =
            errs.iter().enumerate().fold(
                (0.0f64, 0),
                |(m, j), (i, e)| if *e > m { (*e, i) } else { (m, j) },
            );
        let bad = errs.iter().filter(|e| **e > 1e-2).count();
        println!(
            "U-Net gradients, {}: worst relative error {worst:.1e} (parameter {at} of {}), \
             {bad} parameters above 1e-2",
            conv.name(),
            errs.len()
        );
        // Each wrong gradient with its place and shape: backpropagation runs from the last
        // parameter to the first, so the last wrong one is nearest the fault.
        for (i, e) in errs.iter().enumerate().filter(|(_, e)| **e > 1e-2) {
            println!("    parameter {i} {:?}: {e:.1e}", got[i].0);
        }
        if asserted && (worst.is_nan() || worst > 1e-2) {
            failures.push(conv.name());
        }
    }
    CudaConv::from_env().expect("SCOREGEN_CUDA_CONV").apply();
    assert!(failures.is_empty(), "U-Net gradients differ: {failures:?}");
}

/// GroupNorm (then SiLU or not) and the gradients of Σ y·r with respect to x, γ and β.
fn group_norm_with_grads<A: AutodiffBackend>(silu: bool, device: &A::Device) -> Vec<Vec<f32>> {
    let (n, c, h, w, groups) = (4, 32, 14, 14, 8);
    let len = n * c * h * w;
    let shifted: Vec<f32> = values(len, 8).iter().map(|v| 3.0 * v + 1.0).collect();
    let norm = scoregen::nn::GroupNorm::<A>::new(groups, c, device);
    let x =
        Tensor::<A, 4>::from_data(TensorData::new(shifted, [n, c, h, w]), device).require_grad();
    let y = if silu {
        norm.forward_silu(x.clone())
    } else {
        norm.forward(x.clone())
    };
    let r = Tensor::<A, 4>::from_data(TensorData::new(values(len, 9), [n, c, h, w]), device);
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).map(to_vec).unwrap_or_default();
    let mut out = vec![to_vec(y), dx];
    out.extend(param_grads(&norm, grads).into_iter().map(|(_, g)| g));
    out
}

/// GroupNorm on CUDA (one autodiff node with a closed-form backward, src/nn/norm_node.rs,
/// unless `SCOREGEN_CUDA_NORM=composed`) against the CPU's fused kernel: output and the
/// gradients of x, γ and β.
#[test]
fn group_norm_on_cuda_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let cpu = Default::default();
    for silu in [false, true] {
        let want = group_norm_with_grads::<Autodiff<Flex>>(silu, &cpu);
        let got = group_norm_with_grads::<Autodiff<Cuda>>(silu, &dev);
        let errs: Vec<f64> = got.iter().zip(&want).map(|(g, w)| rel(g, w)).collect();
        let shown: Vec<String> = errs.iter().map(|e| format!("{e:.1e}")).collect();
        println!("GroupNorm, SiLU {silu}: relative error y, dx, dγ, dβ {shown:?}");
        assert_eq!(errs.len(), 4);
        assert!(
            errs.iter().all(|e| *e < 1e-4),
            "GroupNorm differs: {errs:?}"
        );
    }
}

#[test]
fn the_unet_forward_in_bf16_follows_the_f32_one() {
    let Some(dev) = gpu() else { return };
    type B = Cuda;
    let net = scoregen::app::bench::bench_unet().init::<B>(0, &dev);
    let bf16 = Precision::Bf16.apply(net.clone());
    let n = 8;
    let x = Tensor::<B, 4>::from_data(TensorData::new(values(n * 784, 5), [n, 1, 28, 28]), &dev);
    let mut worst = 0.0f64;
    for t in [1e-3, 0.1, 0.5, 1.0] {
        let tt = Tensor::<B, 2>::full([n, 1], t, &dev);
        let a = to_vec(net.forward(x.clone(), tt.clone(), None));
        let b = to_vec(bf16.forward(x.clone(), tt, None));
        let e = rel(&b, &a);
        println!("U-Net at t = {t}: bf16 against f32, relative error {e:.2e}");
        worst = worst.max(e);
    }
    assert!(worst < 5e-2, "bf16 U-Net differs from f32 by {worst}");
    // The same evaluation repeated, as a sampler repeats it: every answer finite and equal to
    // the first (a buffer reused across dtypes would show here).
    let tt = Tensor::<B, 2>::full([n, 1], 0.5, &dev);
    let first = to_vec(bf16.forward(x.clone(), tt.clone(), None));
    for i in 1..20 {
        let again = to_vec(bf16.forward(x.clone(), tt.clone(), None));
        let e = rel(&again, &first);
        assert!(
            e < 1e-6,
            "bf16 evaluation {i} differs from the first by {e}"
        );
    }
}

#[test]
fn the_bf16_samplers_stay_finite() {
    use scoregen::app::bench::{run_bench, BenchConfig};
    use scoregen::samplers::SamplerKind;
    let Some(dev) = gpu() else { return };
    for kind in [SamplerKind::Ddpm, SamplerKind::Ddim, SamplerKind::Pc] {
        for precision in [Precision::F32, Precision::Bf16] {
            let cfg = BenchConfig {
                run_mlp: false,
                unet_batches: vec![],
                sample_batches: vec![16],
                samplers: vec![kind],
                nfe_sweep: vec![],
                warmup: 0,
                repeats: 1,
                precision,
                ..BenchConfig::default()
            };
            let r = run_bench::<Autodiff<Cuda>>(&cfg, &dev, "cuda", &mut |_| {});
            println!(
                "{kind:?} {}: {:?}",
                precision.name(),
                r.as_ref().map(|_| "finite")
            );
            assert!(r.is_ok(), "{kind:?} in {}: {:?}", precision.name(), r.err());
        }
    }
}
