//! Per-layer convolution benchmark (run with `cargo bench --bench conv_layers`): forward and
//! backward (input + weight + bias gradients through autodiff) of the 3×3 convolutions of the
//! MNIST U-Net at batch 16 on the flex CPU backend, best of 7 runs after one warm-up, in ms and
//! GFLOP/s (2 FLOP per multiply-add; backward counts twice the forward's work). Set
//! `RAYON_NUM_THREADS=1` for single-thread figures. The im2col path and the shifted-GEMM path of
//! the vendored flex patch (vendor/burn-flex/PATCHED.md) are chosen by channel count.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{module::conv2d, ops::ConvOptions, Distribution, Tensor};

type A = Autodiff<Flex>;

/// Best of `runs` timings of `f`, in seconds (after one untimed call).
fn best(runs: usize, mut f: impl FnMut() -> (f64, f64)) -> (f64, f64) {
    f();
    (0..runs)
        .map(|_| f())
        .fold((f64::MAX, f64::MAX), |(a, b), (x, y)| (a.min(x), b.min(y)))
}

fn main() {
    // As the scoregen binary runs: on rayon's pool, freed buffers kept (`scoregen::runtime`).
    scoregen::runtime::run(bench);
}

fn bench() {
    let dev = Default::default();
    let n = 16;
    println!("3×3 convolutions, stride 1, padding 1, batch {n}; flex CPU backend");
    // (input channels, output channels, side): the U-Net's input layer, its 28×28, 14×14 and
    // 7×7 blocks, and its output layer.
    for (ci, co, hw) in [
        (1usize, 32usize, 28usize),
        (32, 32, 28),
        (64, 64, 14),
        (64, 64, 7),
        (32, 1, 28),
    ] {
        let x = Tensor::<A, 4>::random([n, ci, hw, hw], Distribution::Normal(0.0, 1.0), &dev)
            .require_grad();
        let w = Tensor::<A, 4>::random([co, ci, 3, 3], Distribution::Normal(0.0, 1.0), &dev)
            .require_grad();
        let b = Tensor::<A, 1>::random([co], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let (fwd, bwd) = best(7, || {
            let t = Instant::now();
            let y = conv2d(x.clone(), w.clone(), Some(b.clone()), opts.clone());
            let _ = y.clone().inner().into_data();
            let forward = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let grads = y.sum().backward();
            let dx = x.grad(&grads).map(|g| g.into_data());
            let dw = w.grad(&grads).map(|g| g.into_data());
            assert!(dx.is_some() && dw.is_some(), "gradients missing");
            (forward, t.elapsed().as_secs_f64())
        });
        let flop = 2.0 * (n * ci * co * 9 * hw * hw) as f64;
        println!(
            "{ci:>3} → {co:<3} {hw:>2}×{hw:<2}  forward {:7.2} ms ({:5.1} GFLOP/s)  backward {:7.2} ms ({:5.1} GFLOP/s)",
            fwd * 1e3,
            flop / fwd / 1e9,
            bwd * 1e3,
            2.0 * flop / bwd / 1e9
        );
    }
}
