//! The CUDA backend against the flex CPU backend, on a GPU (built only with `--features cuda`;
//! each test says so and passes when no CUDA device can be initialised): every convolution
//! shape of the networks, forward and both gradients, with each choice of convolution kernels
//! (src/cuda_conv.rs: direct, implicit GEMM on CMMA or MMA tiles), in f32 and through bf16
//! casts as mixed precision runs them; the U-Net's bf16 forward against its f32 one; and the
//! bf16 samplers of the benchmark, which must stay finite. The implicit-GEMM gradients, which
//! no choice but an explicit per-pass one uses (they diverged training on an H200), are printed
//! for diagnosis and not asserted.
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

/// The convolutions of the benchmark and MNIST U-Nets, the LArTPC generator and SSNet:
/// (n, c, o, hw, k, stride, padding).
const CASES: [[usize; 7]; 9] = [
    [4, 1, 32, 28, 3, 1, 1],
    [4, 32, 32, 28, 3, 1, 1],
    [4, 32, 32, 28, 3, 2, 1],
    [4, 32, 64, 14, 3, 1, 1],
    [4, 64, 64, 7, 3, 1, 1],
    [4, 96, 64, 14, 3, 1, 1],
    [4, 64, 32, 14, 1, 1, 0],
    [64, 32, 32, 28, 3, 1, 1],
    [2, 16, 16, 64, 3, 1, 1],
];

/// y = conv(x, w) + b and, for the loss Σ y·r, its gradients: (y, ∂x, ∂w, ∂b), computed in
/// `dtype` (inputs cast to it, results cast back to f32).
fn conv_with_grads<A: AutodiffBackend>(
    case: Case,
    dtype: Option<FloatDType>,
    device: &A::Device,
) -> [Vec<f32>; 4] {
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
    [
        to_vec(y),
        grad(x.grad(&grads)),
        grad(w.grad(&grads)),
        b.grad(&grads).map(to_vec).unwrap_or_default(),
    ]
}

#[test]
fn convolutions_and_their_gradients_match_the_cpu_with_every_kernel_choice() {
    let Some(dev) = gpu() else { return };
    let cpu = Default::default();
    let mut failures = Vec::new();
    for [n, c, o, hw, k, stride, pad] in CASES {
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
                let got = conv_with_grads::<Autodiff<Cuda>>(case, dtype, &dev);
                let errs: Vec<f64> = got.iter().zip(&want).map(|(g, w)| rel(g, w)).collect();
                let name = format!(
                    "{case:?} {} {}",
                    kernels.name(),
                    if dtype.is_some() { "bf16" } else { "f32" }
                );
                println!(
                    "{name}: relative error y {:.1e}, dx {:.1e}, dw {:.1e}, db {:.1e}",
                    errs[0], errs[1], errs[2], errs[3]
                );
                // The forward pass of every choice; the gradients of the direct kernels, which
                // every choice uses (src/cuda_conv.rs).
                let asserted = if kernels == ConvKernels::Direct { 4 } else { 1 };
                if errs[..asserted].iter().any(|e| e.is_nan() || *e > tol) {
                    failures.push(name);
                }
            }
        }
    }
    CudaConv::from_env().expect("SCOREGEN_CUDA_CONV").apply();
    assert!(failures.is_empty(), "differ from the CPU: {failures:#?}");
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
