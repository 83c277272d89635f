//! The patches of the vendored burn-flex (vendor/burn-flex/PATCHED.md): the convolution
//! (forward and all three gradients against the definition, for strides, paddings, dilations,
//! groups and kernel shapes the networks use and some they do not), the vectorisable
//! sigmoid behind SiLU, the element-wise kernels split over threads, and matrix products and
//! `linear` (GEMMs split over threads by output rows or columns, the bias accumulated in the
//! GEMM).

use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::module::{conv2d, linear};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use scoregen::tensor::to_vec;

type A = Autodiff<Flex>;

/// Deterministic values in [−1, 1).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

struct Case {
    x: [usize; 4],
    w: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

/// y[b, o, oy, ox] = bias[o] + Σ_{c in o's group, i, j} x[b, c, oy·s + i·d − p, …] w[o, c', i, j].
#[allow(clippy::type_complexity)]
fn reference(
    c: &Case,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    r: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, [usize; 2]) {
    let [n, cin, h, wd] = c.x;
    let [cout, cin_g, kh, kw] = c.w;
    let cout_g = cout / c.groups;
    let oh = (h + 2 * c.padding[0] - c.dilation[0] * (kh - 1) - 1) / c.stride[0] + 1;
    let ow = (wd + 2 * c.padding[1] - c.dilation[1] * (kw - 1) - 1) / c.stride[1] + 1;
    let mut y = vec![0f32; n * cout * oh * ow];
    let (mut dx, mut dw, mut db) = (vec![0f32; x.len()], vec![0f32; w.len()], vec![0f32; cout]);
    for b in 0..n {
        for o in 0..cout {
            let grp = o / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((b * cout + o) * oh + oy) * ow + ox;
                    let mut s = bias[o];
                    db[o] += r[yi];
                    for cc in 0..cin_g {
                        let ci = grp * cin_g + cc;
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy * c.stride[0] + i * c.dilation[0]) as isize
                                    - c.padding[0] as isize;
                                let ix = (ox * c.stride[1] + j * c.dilation[1]) as isize
                                    - c.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((b * cin + ci) * h + iy as usize) * wd + ix as usize;
                                let wi = ((o * cin_g + cc) * kh + i) * kw + j;
                                s += x[xi] * w[wi];
                                dx[xi] += r[yi] * w[wi];
                                dw[wi] += r[yi] * x[xi];
                            }
                        }
                    }
                    y[yi] = s;
                }
            }
        }
    }
    (y, dx, dw, db, [oh, ow])
}

fn close(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * scale, "{name}[{i}]: {g} vs {w}");
    }
}

#[test]
fn conv2d_forward_and_gradients_match_the_definition() {
    let cases = [
        // U-Net 3×3 "same" convolution, a 1×1 shortcut, the stride-2 downsampling.
        Case {
            x: [3, 4, 7, 6],
            w: [5, 4, 3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [2, 12, 5, 5],
            w: [3, 12, 1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [2, 3, 8, 7],
            w: [4, 3, 3, 3],
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        // A single image (the GEMM's own threads), asymmetric kernel, stride and padding.
        Case {
            x: [1, 2, 9, 6],
            w: [3, 2, 3, 2],
            stride: [2, 1],
            padding: [2, 0],
            dilation: [1, 1],
            groups: 1,
        },
        // Dilation and groups.
        Case {
            x: [2, 4, 9, 9],
            w: [4, 4, 3, 3],
            stride: [1, 1],
            padding: [2, 2],
            dilation: [2, 2],
            groups: 1,
        },
        Case {
            x: [3, 6, 6, 5],
            w: [4, 3, 3, 3],
            stride: [1, 2],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 2,
        },
        // Stride 1 with ≥ 8 input channels per group and several images (the shifted-GEMM
        // path; the cases above with fewer channels and single images take im2col): groups
        // with unequal padding and an asymmetric kernel, dilation (also for a single image,
        // through im2col), and a "valid" convolution without padding.
        Case {
            x: [2, 16, 5, 7],
            w: [6, 8, 3, 2],
            stride: [1, 1],
            padding: [0, 1],
            dilation: [1, 1],
            groups: 2,
        },
        Case {
            x: [1, 8, 6, 5],
            w: [2, 8, 2, 3],
            stride: [1, 1],
            padding: [1, 2],
            dilation: [2, 1],
            groups: 1,
        },
        Case {
            x: [2, 8, 6, 5],
            w: [2, 8, 2, 3],
            stride: [1, 1],
            padding: [1, 2],
            dilation: [2, 1],
            groups: 1,
        },
        Case {
            x: [3, 9, 6, 6],
            w: [3, 9, 3, 3],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        },
        // Larger planes for the f32 direct kernel. AVX2 blocks of up to 6 outputs × 16 columns,
        // one output × 48: every block size (8 = 4 + 4 outputs; 9 = 6 + 3 inputs for the input
        // gradient; 5; 10 = 6 + 4 per group; 1 output; 13 = 6 + 4 + 3 inputs). AVX-512 blocks
        // of up to 12 outputs × 32 columns (2 or 3 outputs × 64, one × 96): 13 = 7 + 6, 3 and 2
        // outputs above. Padded-width outputs that end in a partial block (11·15 = 10·16 + 5 =
        // 5·32 + 5), with dilation and uneven padding.
        // A single image: the direct kernel's output-channel blocks and column ranges split
        // over threads.
        Case {
            x: [1, 16, 10, 12],
            w: [9, 16, 3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [2, 13, 7, 9],
            w: [1, 13, 3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [2, 9, 11, 13],
            w: [8, 9, 3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [3, 8, 12, 10],
            w: [5, 8, 3, 3],
            stride: [1, 1],
            padding: [2, 1],
            dilation: [2, 1],
            groups: 1,
        },
        Case {
            x: [2, 20, 9, 8],
            w: [10, 10, 5, 3],
            stride: [1, 1],
            padding: [2, 1],
            dilation: [1, 1],
            groups: 2,
        },
        // Weight gradients with ≥ 16 outputs per group take the direct weight-gradient kernel
        // (outputs padded to multiples of 16; tiles of up to 12 inputs × 32 outputs on
        // AVX-512, 6 × 16 on AVX2): 37 outputs = 32 + 16 (5 of them padding) from 13 inputs
        // (12 + 1; 6 + 6 + 1) over three images; two groups of 16 with dilation, an
        // asymmetric kernel and uneven padding; a 1×1 kernel.
        Case {
            x: [3, 13, 7, 9],
            w: [37, 13, 3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [2, 20, 8, 9],
            w: [32, 10, 2, 3],
            stride: [1, 1],
            padding: [1, 2],
            dilation: [2, 1],
            groups: 2,
        },
        Case {
            x: [2, 8, 5, 6],
            w: [16, 8, 1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        },
        // A single image: the direct weight gradient with its taps split over the threads
        // (im2col for one image before), also with groups, dilation and an asymmetric kernel.
        Case {
            x: [1, 12, 9, 10],
            w: [20, 12, 3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [1, 16, 7, 8],
            w: [32, 8, 2, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 2],
            groups: 2,
        },
    ];
    // The direct kernel on this CPU (AVX-512 where it has it), then capped at AVX2 so that both
    // kernels are checked on an AVX-512 machine. The cap is read once per process, so the AVX2
    // pass is this test again in a child process with `SCOREGEN_CPU_ISA=avx2`.
    let capped = std::env::var("SCOREGEN_CPU_ISA").is_ok_and(|v| v == "avx2");
    check_cases(&cases, if capped { "avx2" } else { "native" });
    if !capped {
        let exe = std::env::current_exe().expect("the test binary's path");
        let test = "conv2d_forward_and_gradients_match_the_definition";
        let out = std::process::Command::new(exe)
            .args(["--exact", test, "--test-threads", "1"])
            .env("SCOREGEN_CPU_ISA", "avx2")
            .output()
            .expect("the test binary runs again");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && log.contains("1 passed"),
            "the AVX2 pass failed:\n{log}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every case's output and three gradients against [`reference`].
fn check_cases(cases: &[Case], isa: &str) {
    let dev = Default::default();
    for (k, c) in cases.iter().enumerate() {
        let nx: usize = c.x.iter().product();
        let nw: usize = c.w.iter().product();
        let (xv, wv, bv) = (values(nx, 1 + k), values(nw, 2 + k), values(c.w[0], 3 + k));
        let x = Tensor::<A, 4>::from_data(TensorData::new(xv.clone(), c.x), &dev).require_grad();
        let w = Tensor::<A, 4>::from_data(TensorData::new(wv.clone(), c.w), &dev).require_grad();
        let b =
            Tensor::<A, 1>::from_data(TensorData::new(bv.clone(), [c.w[0]]), &dev).require_grad();
        let opts = ConvOptions::new(c.stride, c.padding, c.dilation, c.groups);
        let y = conv2d(x.clone(), w.clone(), Some(b.clone()), opts);
        let dims = y.dims();
        let rv = values(dims.iter().product(), 4 + k);
        let (want_y, want_dx, want_dw, want_db, [oh, ow]) = reference(c, &xv, &wv, &bv, &rv);
        assert_eq!(
            dims,
            [c.x[0], c.w[0], oh, ow],
            "{isa} case {k}: output shape"
        );
        let r = Tensor::<A, 4>::from_data(TensorData::new(rv, dims), &dev);
        let grads = (y.clone() * r).sum().backward();
        let vec = |t: Tensor<Flex, 4>| t.into_data().to_vec::<f32>().unwrap();
        close(
            &format!("{isa} case {k} y"),
            &y.into_data().to_vec::<f32>().unwrap(),
            &want_y,
        );
        close(
            &format!("{isa} case {k} dx"),
            &vec(x.grad(&grads).unwrap()),
            &want_dx,
        );
        close(
            &format!("{isa} case {k} dw"),
            &vec(w.grad(&grads).unwrap()),
            &want_dw,
        );
        let db = b.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        close(&format!("{isa} case {k} db"), &db, &want_db);
    }
}

#[test]
fn sigmoid_and_silu_match_the_f64_definition() {
    let xs: Vec<f32> = (0..200_000)
        .map(|i| -100.0 + i as f32 * 0.001_003)
        .collect();
    let n = xs.len();
    let x = Tensor::<A, 1>::from_data(TensorData::new(xs.clone(), [n]), &Default::default())
        .require_grad();
    let s = sigmoid(x.clone()).into_data().to_vec::<f32>().unwrap();
    let y = silu(x.clone());
    let grads = y.clone().sum().backward();
    let dy = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    let y = y.into_data().to_vec::<f32>().unwrap();
    for (i, &xv) in xs.iter().enumerate() {
        let x64 = xv as f64;
        let sig = 1.0 / (1.0 + (-x64).exp());
        if sig > 1e-30 {
            assert!(
                ((s[i] as f64 - sig) / sig).abs() < 5e-7,
                "σ({xv}) = {} vs {sig}",
                s[i]
            );
        }
        let silu64 = x64 * sig;
        assert!(
            (y[i] as f64 - silu64).abs() <= 5e-7 * silu64.abs().max(1e-6),
            "silu({xv})"
        );
        let dsilu = sig * (1.0 + x64 * (1.0 - sig));
        assert!(
            (dy[i] as f64 - dsilu).abs() < 1e-5,
            "silu'({xv}) = {} vs {dsilu}",
            dy[i]
        );
    }
    let special = Tensor::<Flex, 1>::from_floats(
        [f32::NAN, f32::INFINITY, f32::NEG_INFINITY],
        &Default::default(),
    );
    let v = sigmoid(special).into_data().to_vec::<f32>().unwrap();
    assert!(v[0].is_nan(), "NaN must propagate");
    assert_eq!(v[1], 1.0);
    assert!(v[2] < 1e-37);
}

/// Element-wise unary, binary, broadcast and scalar kernels on tensors large enough to be split
/// over threads (≥ 32 Ki elements, sizes that are no multiple of the chunk), in place (unique
/// tensors) and allocating (shared tensors, offset views; a shared tensor's broadcast is copied
/// and applied chunk by chunk), run in a 4-thread pool so the parallel path is taken on any
/// machine: every element must equal the serial per-element result.
/// Runs `f` in a 4-thread rayon pool, so that the parallel paths are taken on any machine.
fn in_four_threads(f: impl FnOnce() + Send) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("a 4-thread pool");
    pool.install(f);
}

#[test]
fn large_element_wise_ops_match_per_element_results() {
    in_four_threads(|| {
        let dev = Default::default();
        let (rows, cols) = (3001, 37);
        let n = rows * cols;
        let av = values(n, 1);
        let bv: Vec<f32> = values(n, 2).iter().map(|v| v + 1.5).collect();
        let a = || Tensor::<Flex, 2>::from_data(TensorData::new(av.clone(), [rows, cols]), &dev);
        let b = || Tensor::<Flex, 2>::from_data(TensorData::new(bv.clone(), [rows, cols]), &dev);
        let check = |name: &str, t: Tensor<Flex, 2>, f: &dyn Fn(usize) -> f32| {
            let got = t.into_data().to_vec::<f32>().unwrap();
            assert_eq!(got.len(), n, "{name}: length");
            for (i, g) in got.iter().enumerate() {
                let w = f(i);
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{name}[{i}]: {g} vs {w}"
                );
            }
        };
        // Unary: in place (unique), allocating (shared), on an offset view.
        check("exp in place", a().exp(), &|i| av[i].exp());
        let shared = a();
        check("exp shared", shared.clone().exp(), &|i| av[i].exp());
        check("sigmoid shared", sigmoid(shared.clone()), &|i| {
            1.0 / (1.0 + (-av[i]).exp())
        });
        let wide = Tensor::<Flex, 2>::from_data(
            TensorData::new(values(n + cols, 3), [rows + 1, cols]),
            &dev,
        );
        let wv = values(n + cols, 3);
        check(
            "exp of a slice",
            wide.slice([1..rows + 1, 0..cols]).exp(),
            &|i| wv[i + cols].exp(),
        );
        // Same-shape binary ops with a strided view (every row of a [rows, 2·cols] tensor cut
        // to its first cols columns) on either side: copied contiguous, then the SIMD kernel.
        let twice = values(2 * n, 5);
        let halves = || {
            Tensor::<Flex, 2>::from_data(TensorData::new(twice.clone(), [rows, 2 * cols]), &dev)
                .slice([0..rows, 0..cols])
        };
        let half = |i: usize| twice[(i / cols) * 2 * cols + i % cols];
        check("view + tensor", halves() + b(), &|i| half(i) + bv[i]);
        check("tensor - view", b() - halves(), &|i| bv[i] - half(i));
        check("view * view", halves() * halves(), &|i| half(i) * half(i));
        // Binary with a SIMD kernel: in place and allocating.
        check("add in place", a() + b(), &|i| av[i] + bv[i]);
        check("sub in place", a() - b(), &|i| av[i] - bv[i]);
        check("mul shared", shared.clone() * b(), &|i| av[i] * bv[i]);
        check("div shared", shared.clone() / b(), &|i| av[i] / bv[i]);
        // Binary without one (the generic kernel): in place and allocating.
        check("powf in place", b().powf(a()), &|i| bv[i].powf(av[i]));
        let bs = b();
        check("powf shared", bs.clone().powf(a()), &|i| bv[i].powf(av[i]));
        // Broadcasts: one row shared by all rows, one scalar per row.
        let row: Vec<f32> = (0..cols).map(|j| j as f32 * 0.25 - 3.0).collect();
        let rt = Tensor::<Flex, 2>::from_data(TensorData::new(row.clone(), [1, cols]), &dev);
        check("row add", a() + rt.clone(), &|i| av[i] + row[i % cols]);
        check("row mul shared", shared.clone() * rt.clone(), &|i| {
            av[i] * row[i % cols]
        });
        check("row sub shared", shared.clone() - rt, &|i| {
            av[i] - row[i % cols]
        });
        let per: Vec<f32> = (0..rows).map(|r| r as f32 * 0.01 + 0.5).collect();
        let pt = Tensor::<Flex, 2>::from_data(TensorData::new(per.clone(), [rows, 1]), &dev);
        check("per-row sub", a() - pt.clone(), &|i| av[i] - per[i / cols]);
        check("per-row div shared", shared.clone() / pt.clone(), &|i| {
            av[i] / per[i / cols]
        });
        check("per-row mul shared", shared.clone() * pt, &|i| {
            av[i] * per[i / cols]
        });
        // Scalars: in place and allocating.
        check(
            "scalar in place",
            a().mul_scalar(3.0).add_scalar(1.0),
            &|i| av[i] * 3.0 + 1.0,
        );
        check("scalar shared", shared.clone().sub_scalar(0.5), &|i| {
            av[i] - 0.5
        });
        drop(shared);
    });
}

/// x·W (+ b) in f64 from row-major x `[m, k]`, W `[k, n]`.
fn product(x: &[f32], w: &[f32], b: Option<&[f32]>, (m, k, n): (usize, usize, usize)) -> Vec<f32> {
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k)
                .map(|l| x[i * k + l] as f64 * w[l * n + j] as f64)
                .sum();
            y[i * n + j] = (dot + b.map_or(0.0, |b| b[j] as f64)) as f32;
        }
    }
    y
}

/// `[rows, cols]` transposed, row-major.
fn transposed(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| v[(i % rows) * cols + i / rows])
        .collect()
}

/// Matrix products large enough to be split over the threads of a 4-thread pool (by rows when
/// m ≥ n, by columns otherwise), with transposed (strided) operands, batched (one GEMM per
/// matrix split over threads, and many small ones in parallel), and `linear` with its bias
/// accumulated in the GEMM (rank 2 and 3, a transposed input, no bias, a small one), its
/// gradients through autodiff included: all against the f64 definition.
#[test]
fn matmuls_and_linear_match_the_definition() {
    in_four_threads(|| {
        let dev = Default::default();
        let t = |v: &[f32], shape: Vec<usize>| {
            Tensor::<Flex, 2>::from_data(TensorData::new(v.to_vec(), shape), &dev)
        };
        for (m, k, n) in [(530, 70, 300), (300, 70, 530), (5, 7, 3)] {
            let (x, w) = (values(m * k, 1), values(k * n, 2));
            let want = product(&x, &w, None, (m, k, n));
            let name = format!("{m}x{k}x{n}");
            close(
                &name,
                &to_vec(t(&x, vec![m, k]).matmul(t(&w, vec![k, n]))),
                &want,
            );
            let xt = t(&transposed(&x, m, k), vec![k, m]).transpose();
            let wt = t(&transposed(&w, k, n), vec![n, k]).transpose();
            close(
                &format!("{name} xᵀᵀ·Wᵀᵀ"),
                &to_vec(xt.clone().matmul(wt.clone())),
                &want,
            );
            // linear: bias accumulated in the GEMM; a transposed input; no bias.
            let b = values(n, 3);
            let with_b = product(&x, &w, Some(&b), (m, k, n));
            let wl = Tensor::<Flex, 2>::from_data(TensorData::new(w.clone(), [k, n]), &dev);
            let bl = Tensor::<Flex, 1>::from_data(TensorData::new(b.clone(), [n]), &dev);
            let lin =
                |x: Tensor<Flex, 2>, b: Option<Tensor<Flex, 1>>| to_vec(linear(x, wl.clone(), b));
            close(
                &format!("{name} linear"),
                &lin(t(&x, vec![m, k]), Some(bl.clone())),
                &with_b,
            );
            close(
                &format!("{name} linear xᵀᵀ"),
                &lin(xt, Some(bl.clone())),
                &with_b,
            );
            close(
                &format!("{name} linear, no bias"),
                &lin(t(&x, vec![m, k]), None),
                &want,
            );
        }
        // Batched: two large matrices (each split over threads), eight small ones in parallel.
        for (batch, m, k, n) in [(2, 300, 70, 530), (8, 64, 64, 64)] {
            let (x, w) = (values(batch * m * k, 4), values(batch * k * n, 5));
            let xb = Tensor::<Flex, 3>::from_data(TensorData::new(x.clone(), [batch, m, k]), &dev);
            let wb = Tensor::<Flex, 3>::from_data(TensorData::new(w.clone(), [batch, k, n]), &dev);
            let y = to_vec(xb.matmul(wb));
            for i in 0..batch {
                let want = product(
                    &x[i * m * k..][..m * k],
                    &w[i * k * n..][..k * n],
                    None,
                    (m, k, n),
                );
                close(
                    &format!("batch {i} of {batch}x{m}x{k}x{n}"),
                    &y[i * m * n..][..m * n],
                    &want,
                );
            }
        }
        // linear on a rank-3 input under autodiff: output, and dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ dy.
        let (d0, d1, k, n) = (3, 177, 70, 90);
        let m = d0 * d1;
        let (x, w, b, dy) = (
            values(m * k, 6),
            values(k * n, 7),
            values(n, 8),
            values(m * n, 9),
        );
        let xa =
            Tensor::<A, 3>::from_data(TensorData::new(x.clone(), [d0, d1, k]), &dev).require_grad();
        let wa = Tensor::<A, 2>::from_data(TensorData::new(w.clone(), [k, n]), &dev).require_grad();
        let ba = Tensor::<A, 1>::from_data(TensorData::new(b.clone(), [n]), &dev).require_grad();
        let dya = Tensor::<A, 3>::from_data(TensorData::new(dy.clone(), [d0, d1, n]), &dev);
        let y = linear(xa.clone(), wa.clone(), Some(ba.clone()));
        close(
            "linear rank 3",
            &to_vec(y.clone()),
            &product(&x, &w, Some(&b), (m, k, n)),
        );
        // A strided rank-3 input (dims swapped): the batched product reads it in place.
        let xt: Vec<f32> = (0..m * k)
            .map(|e| {
                let (j, i, l) = (e / (d0 * k), (e / k) % d0, e % k);
                x[(i * d1 + j) * k + l]
            })
            .collect();
        let swapped =
            Tensor::<Flex, 3>::from_data(TensorData::new(xt, [d1, d0, k]), &dev).swap_dims(0, 1);
        let wf = Tensor::<Flex, 2>::from_data(TensorData::new(w.clone(), [k, n]), &dev);
        let bf = Tensor::<Flex, 1>::from_data(TensorData::new(b.clone(), [n]), &dev);
        close(
            "linear of a strided rank-3 input",
            &to_vec(linear(swapped, wf, Some(bf))),
            &product(&x, &w, Some(&b), (m, k, n)),
        );
        let grads = (y * dya).sum().backward();
        let wt = transposed(&w, k, n);
        close(
            "linear dx",
            &to_vec(xa.grad(&grads).expect("dx")),
            &product(&dy, &wt, None, (m, n, k)),
        );
        close(
            "linear dW",
            &to_vec(wa.grad(&grads).expect("dW")),
            &product(&transposed(&x, m, k), &dy, None, (k, m, n)),
        );
        let want_db: Vec<f32> = (0..n)
            .map(|j| (0..m).map(|i| dy[i * n + j] as f64).sum::<f64>() as f32)
            .collect();
        close("linear db", &to_vec(ba.grad(&grads).expect("db")), &want_db);
    });
}
