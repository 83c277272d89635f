//! scoregen patch: 2-D convolution (f32, f64, f16; any stride, padding, dilation and groups),
//! forward and all three backward passes, as one im2col and one GEMM per image and group, in
//! NCHW.
//!
//! Per image b with K = C_in·k_h·k_w and P = H_out·W_out, and col_b the [K, P] im2col matrix
//! (row (c, i, j) holds x[b, c, y·s_h + i − p_h, x·s_w + j − p_w] for every output pixel):
//!
//! - forward:          Y_b[C_out, P] = W[C_out, K] · col_b  (+ bias)
//! - weight gradient:  dW[C_out, K]  = Σ_b dY_b · col_bᵀ
//! - input gradient:   dx_b = col2im(Wᵀ · dY_b), col2im the adjoint of im2col
//! - bias gradient:    db[c]         = Σ_b Σ_p dY_b[c, p]
//!
//! The weight is used in its own [C_out, C_in, k_h, k_w] layout (no reordering), the outputs
//! are written in place by the GEMM, and the im2col rows are contiguous copies of input rows
//! for stride 1. Images run in parallel (one im2col buffer per worker); a single image uses the
//! GEMM's own threads. burn's default backward instead runs a transposed convolution for dx
//! and a convolution over the batch-transposed input for dW, each with extra layout copies.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape, f16};

use crate::{FlexTensor, Layout};

/// Sizes of one convolution; `cin`/`cout` are per group.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub(crate) n: usize,
    pub(crate) groups: usize,
    pub(crate) cin: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) cout: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) sh: usize,
    pub(crate) sw: usize,
    pub(crate) ph: usize,
    pub(crate) pw: usize,
    pub(crate) dh: usize,
    pub(crate) dw: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
}

impl Geom {
    fn new(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Self {
        let [n, cin, h, w] = [x[0], x[1], x[2], x[3]];
        let [cout, cin_g, kh, kw] = [weight[0], weight[1], weight[2], weight[3]];
        let groups = options.groups;
        assert!(
            groups > 0 && cin == cin_g * groups && cout % groups == 0,
            "conv2d: {cin} input and {cout} output channels do not fit {groups} groups of {cin_g}"
        );
        let [sh, sw] = options.stride;
        let [ph, pw] = options.padding;
        let [dh, dw] = options.dilation;
        let (ekh, ekw) = (dh * (kh - 1) + 1, dw * (kw - 1) + 1);
        assert!(
            h + 2 * ph >= ekh && w + 2 * pw >= ekw,
            "conv2d: kernel {kh}×{kw} (dilation {dh}, {dw}) larger than padded input {h}×{w}"
        );
        Geom {
            n,
            groups,
            cin: cin_g,
            h,
            w,
            cout: cout / groups,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            dh,
            dw,
            oh: (h + 2 * ph - ekh) / sh + 1,
            ow: (w + 2 * pw - ekw) / sw + 1,
        }
    }
    pub(crate) fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    pub(crate) fn p(&self) -> usize {
        self.oh * self.ow
    }
    /// One image of the input, all groups.
    pub(crate) fn in_len(&self) -> usize {
        self.groups * self.cin * self.h * self.w
    }
    /// One image of the output, all groups.
    pub(crate) fn out_len(&self) -> usize {
        self.groups * self.cout * self.p()
    }
    /// One group's part of an input image.
    pub(crate) fn in_group(&self) -> usize {
        self.cin * self.h * self.w
    }
    /// One group's part of an output image.
    pub(crate) fn out_group(&self) -> usize {
        self.cout * self.p()
    }
}

/// Element types of the patched path (those `gemm` multiplies natively).
pub(crate) trait ConvElem:
    bytemuck::Pod + burn_backend::Element + Copy + Default + core::ops::AddAssign + Send + Sync + 'static
{
    /// 1 of the type (the GEMM's scale factors).
    const ONE: Self;
}
impl ConvElem for f32 {
    const ONE: Self = 1.0;
}
impl ConvElem for f64 {
    const ONE: Self = 1.0;
}
impl ConvElem for f16 {
    const ONE: Self = f16::ONE;
}

/// The range [lo, hi) of output columns whose input column ox·s + j − p lies in [0, w).
fn valid_cols(ow: usize, w: usize, s: usize, j: usize, p: usize) -> (usize, usize) {
    // ox·s + j ≥ p  ⇔  ox ≥ ceil((p − j)/s);  ox·s + j − p ≤ w − 1  ⇔  ox ≤ (w − 1 + p − j)/s.
    let lo = if p > j { (p - j).div_ceil(s) } else { 0 }.min(ow);
    let hi = if w + p > j {
        ((w - 1 + p - j) / s + 1).min(ow)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// im2col of one image `x: [cin, h, w]` into `col: [K, P]`.
fn im2col<T: ConvElem>(x: &[T], g: &Geom, col: &mut [T]) {
    let p = g.p();
    for c in 0..g.cin {
        let plane = &x[c * g.h * g.w..][..g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * p..][..p];
                let (lo, hi) = valid_cols(g.ow, g.w, g.sw, j * g.dw, g.pw);
                for oy in 0..g.oh {
                    let dst = &mut row[oy * g.ow..][..g.ow];
                    let iy = oy * g.sh + i * g.dh;
                    if iy < g.ph || iy - g.ph >= g.h {
                        dst.fill(T::default());
                        continue;
                    }
                    let src = &plane[(iy - g.ph) * g.w..][..g.w];
                    dst[..lo].fill(T::default());
                    dst[hi..].fill(T::default());
                    if g.sw == 1 {
                        let start = lo + j * g.dw - g.pw;
                        dst[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate().take(hi).skip(lo) {
                            *d = src[ox * g.sw + j * g.dw - g.pw];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds `col: [K, P]` into the image `dx: [cin, h, w]`.
fn col2im<T: ConvElem>(col: &[T], g: &Geom, dx: &mut [T]) {
    let p = g.p();
    for c in 0..g.cin {
        let plane = &mut dx[c * g.h * g.w..][..g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((c * g.kh + i) * g.kw + j) * p..][..p];
                let (lo, hi) = valid_cols(g.ow, g.w, g.sw, j * g.dw, g.pw);
                for oy in 0..g.oh {
                    let iy = oy * g.sh + i * g.dh;
                    if iy < g.ph || iy - g.ph >= g.h {
                        continue;
                    }
                    let src = &row[oy * g.ow..][..g.ow];
                    let dst = &mut plane[(iy - g.ph) * g.w..][..g.w];
                    if g.sw == 1 {
                        let start = lo + j * g.dw - g.pw;
                        for (d, s) in dst[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    } else {
                        for (ox, s) in src.iter().enumerate().take(hi).skip(lo) {
                            dst[ox * g.sw + j * g.dw - g.pw] += *s;
                        }
                    }
                }
            }
        }
    }
}

/// A row-major matrix operand: pointer, row stride, column stride.
#[derive(Clone, Copy)]
pub(crate) struct Mat<T> {
    pub(crate) ptr: *const T,
    pub(crate) rs: isize,
    pub(crate) cs: isize,
}

/// dst[m, n] (row stride `dst_rs`, column stride 1) = (accumulate ? dst : 0) + lhs · rhs.
///
/// # Safety
/// The pointers must cover the matrices their strides describe.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<T: ConvElem>(
    mnk: [usize; 3],
    dst: *mut T,
    dst_rs: isize,
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    threads: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_strided(mnk, (dst, dst_rs, 1), accumulate, lhs, rhs, threads) }
}

/// dst[m, n] (row stride `dst.1`, column stride `dst.2`) = (accumulate ? dst : 0) + lhs · rhs.
///
/// # Safety
/// The pointers must cover the matrices their strides describe.
pub(crate) unsafe fn gemm_strided<T: ConvElem>(
    [m, n, k]: [usize; 3],
    (dst, dst_rs, dst_cs): (*mut T, isize, isize),
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    threads: bool,
) {
    #[cfg(feature = "rayon")]
    let par = if threads {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    #[cfg(not(feature = "rayon"))]
    let par = {
        let _ = threads;
        gemm::Parallelism::None
    };
    unsafe {
        gemm::gemm(
            m, n, k, dst, dst_cs, dst_rs, accumulate, lhs.ptr, lhs.cs, lhs.rs, rhs.ptr, rhs.cs, rhs.rs,
            T::ONE, T::ONE, false, false, false, par,
        );
    }
}

/// Runs `f(input_b, output_b, scratch, threads)` for every image, in parallel over images when
/// there are several (one scratch buffer of `scratch_len` per worker); `threads` is true when
/// the GEMM inside should use threads itself (a single image).
pub(crate) fn per_image<T: ConvElem, O: Send>(
    n: usize,
    (input, in_len): (&[T], usize),
    (output, out_len): (&mut [O], usize),
    scratch_len: usize,
    f: impl Fn(&[T], &mut [O], &mut [T], bool) + Send + Sync,
) {
    #[cfg(feature = "rayon")]
    if n > 1 {
        use rayon::prelude::*;
        // One contiguous run of images per thread, each with one zeroed scratch buffer
        // (`for_each_init` made and zeroed a new one for every split of the work).
        let per = n.div_ceil(rayon::current_num_threads().clamp(1, n));
        output
            .par_chunks_mut(out_len * per)
            .zip(input.par_chunks(in_len * per))
            .for_each(|(outs, inps)| {
                let mut scratch = vec![T::default(); scratch_len];
                for (out, inp) in outs.chunks_mut(out_len).zip(inps.chunks(in_len)) {
                    f(inp, out, &mut scratch, false);
                }
            });
        return;
    }
    let mut scratch = vec![T::default(); scratch_len];
    for (out, inp) in output.chunks_mut(out_len).zip(input.chunks(in_len)) {
        f(inp, out, &mut scratch, n == 1);
    }
}

/// Σ over images of what `one(b, acc, scratch, threads)` adds to `acc` (`acc_len` elements) for
/// image b: in parallel over images when there are several, one contiguous run of images per
/// thread with its own accumulator and one zeroed scratch buffer of `scratch_len` (a fold over
/// rayon's splits made and zeroed new ones for every split), the accumulators summed at the
/// end; `threads` as in [`per_image`].
pub(crate) fn per_image_sum<T: ConvElem>(
    n: usize,
    acc_len: usize,
    scratch_len: usize,
    one: impl Fn(usize, &mut [T], &mut [T], bool) + Sync,
) -> Vec<T> {
    let run = |images: core::ops::Range<usize>, threads: bool| {
        let (mut acc, mut scratch) = (vec![T::default(); acc_len], vec![T::default(); scratch_len]);
        images.for_each(|b| one(b, &mut acc, &mut scratch, threads));
        acc
    };
    #[cfg(feature = "rayon")]
    if n > 1 {
        use rayon::prelude::*;
        let tasks = rayon::current_num_threads().clamp(1, n);
        let partials: Vec<Vec<T>> = (0..tasks)
            .into_par_iter()
            .map(|t| run(t * n / tasks..(t + 1) * n / tasks, false))
            .collect();
        let mut partials = partials.into_iter();
        let mut total = partials
            .next()
            .unwrap_or_else(|| vec![T::default(); acc_len]);
        for p in partials {
            total.iter_mut().zip(&p).for_each(|(u, v)| *u += *v);
        }
        return total;
    }
    run(0..n, n == 1)
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

/// A vector of `len` elements that `fill` writes every one of (no zero-fill first).
fn written<T: ConvElem>(len: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` elements (the contract of its callers above).
    unsafe { v.set_len(len) };
    v
}

fn tensor<T: ConvElem>(data: Vec<T>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::from(shape)),
        T::dtype(),
    )
}

/// Forward convolution.
pub(crate) fn conv2d<T: ConvElem>(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let g = Geom::new(&dims(&x), &dims(&weight), options);
    let (k, p) = (g.k(), g.p());
    let w: &[T] = weight.storage();
    let bias = bias.map(|b| b.to_contiguous());
    let b: Option<&[T]> = bias.as_ref().map(|b| b.storage());
    if super::conv2d_shift::applies_forward::<T>(&g) {
        let y = written(g.n * g.out_len(), |y| {
            super::conv2d_shift::forward(x.storage(), w, b, &g, y)
        });
        return tensor(y, vec![g.n, g.groups * g.cout, g.oh, g.ow]);
    }
    let mut y = vec![T::default(); g.n * g.out_len()];
    per_image(
        g.n,
        (x.storage(), g.in_len()),
        (&mut y, g.out_len()),
        k * p,
        |xb, yb, col, threads| {
            for grp in 0..g.groups {
                im2col(&xb[grp * g.in_group()..][..g.in_group()], &g, col);
                let wg = &w[grp * g.cout * k..][..g.cout * k];
                let yg = &mut yb[grp * g.out_group()..][..g.out_group()];
                let lhs = Mat { ptr: wg.as_ptr(), rs: k as isize, cs: 1 };
                let rhs = Mat { ptr: col.as_ptr(), rs: p as isize, cs: 1 };
                // SAFETY: yg is [cout, p], wg is [cout, k], col is [k, p], all row-major.
                unsafe { gemm([g.cout, p, k], yg.as_mut_ptr(), p as isize, false, lhs, rhs, threads) };
            }
            if let Some(b) = b {
                for (row, &bc) in yb.chunks_mut(p).zip(b) {
                    row.iter_mut().for_each(|v| *v += bc);
                }
            }
        },
    );
    tensor(y, vec![g.n, g.groups * g.cout, g.oh, g.ow])
}

/// Gradient of the input: dx_b = col2im(Wᵀ · dY_b), per group.
pub(crate) fn conv2d_x_backward<T: ConvElem>(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let (weight, dy) = (weight.to_contiguous(), output_grad.to_contiguous());
    let xshape = dims(&x);
    let g = Geom::new(&xshape, &dims(&weight), options);
    assert_eq!(
        dims(&dy),
        [g.n, g.groups * g.cout, g.oh, g.ow],
        "conv2d backward: output gradient shape"
    );
    let (k, p) = (g.k(), g.p());
    let w: &[T] = weight.storage();
    if super::conv2d_shift::applies_forward::<T>(&g) {
        let dx = written(g.n * g.in_len(), |dx| {
            super::conv2d_shift::x_backward(dy.storage(), w, &g, dx)
        });
        return tensor(dx, xshape);
    }
    let mut dx = vec![T::default(); g.n * g.in_len()];
    per_image(
        g.n,
        (dy.storage(), g.out_len()),
        (&mut dx, g.in_len()),
        k * p,
        |dyb, dxb, dcol, threads| {
            for grp in 0..g.groups {
                let wg = &w[grp * g.cout * k..][..g.cout * k];
                let dyg = &dyb[grp * g.out_group()..][..g.out_group()];
                let lhs = Mat { ptr: wg.as_ptr(), rs: 1, cs: k as isize }; // Wᵀ: [k, cout]
                let rhs = Mat { ptr: dyg.as_ptr(), rs: p as isize, cs: 1 };
                // SAFETY: dcol is [k, p]; wg is [cout, k]; dyg is [cout, p].
                unsafe { gemm([k, p, g.cout], dcol.as_mut_ptr(), p as isize, false, lhs, rhs, threads) };
                col2im(dcol, &g, &mut dxb[grp * g.in_group()..][..g.in_group()]);
            }
        },
    );
    tensor(dx, xshape)
}

/// Gradient of the weight: dW_g = Σ_b dY_{b,g} · col_{b,g}ᵀ.
pub(crate) fn conv2d_weight_backward<T: ConvElem>(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
    let wshape = dims(&weight);
    let g = Geom::new(&dims(&x), &wshape, options);
    let (k, p) = (g.k(), g.p());
    let (xs, dys): (&[T], &[T]) = (x.storage(), dy.storage());
    if super::conv2d_shift::applies_weight::<T>(&g) {
        return tensor(super::conv2d_shift::weight_backward(xs, dys, &g), wshape);
    }
    let wlen = g.groups * g.cout * k;
    let one = |b: usize, acc: &mut [T], col: &mut [T], threads: bool| {
        for grp in 0..g.groups {
            im2col(&xs[b * g.in_len() + grp * g.in_group()..][..g.in_group()], &g, col);
            let dyg = &dys[b * g.out_len() + grp * g.out_group()..][..g.out_group()];
            let accg = &mut acc[grp * g.cout * k..][..g.cout * k];
            let lhs = Mat { ptr: dyg.as_ptr(), rs: p as isize, cs: 1 };
            let rhs = Mat { ptr: col.as_ptr(), rs: 1, cs: p as isize }; // colᵀ: [p, k]
            // SAFETY: accg is [cout, k]; dyg is [cout, p]; col is [k, p].
            unsafe { gemm([g.cout, k, p], accg.as_mut_ptr(), k as isize, true, lhs, rhs, threads) };
        }
    };
    let dw = per_image_sum(g.n, wlen, k * p, one);
    tensor(dw, wshape)
}

/// Gradient of the bias: the sum of dY over images and pixels, per output channel.
pub(crate) fn conv2d_bias_backward<T: ConvElem>(bias: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
    let dy = output_grad.to_contiguous();
    let d = dims(&dy);
    let (n, c, p) = (d[0], d[1], d[2] * d[3]);
    let data: &[T] = &dy.storage::<T>()[dy.layout().start_offset()..];
    let mut db = vec![T::default(); c];
    // Each row summed into 16 independent partial sums (scoregen patch: one serial chain of
    // dependent additions ran at one element per FP-add latency), channels over the threads.
    let channel = |ch: usize, acc: &mut T| {
        let mut lanes = [T::default(); 16];
        for b in 0..n {
            let (body, tail) = data[(b * c + ch) * p..][..p].as_chunks::<16>();
            for chunk in body {
                for (l, v) in lanes.iter_mut().zip(chunk) {
                    *l += *v;
                }
            }
            tail.iter().for_each(|v| *acc += *v);
        }
        lanes.iter().for_each(|v| *acc += *v);
    };
    #[cfg(feature = "rayon")]
    if n * c * p >= 64 * 1024 {
        use rayon::prelude::*;
        db.par_iter_mut()
            .enumerate()
            .for_each(|(ch, acc)| super::par::vectorised(|| channel(ch, acc)));
        return tensor(db, dims(&bias));
    }
    db.iter_mut()
        .enumerate()
        .for_each(|(ch, acc)| super::par::vectorised(|| channel(ch, acc)));
    tensor(db, dims(&bias))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution, the definition.
    fn naive(x: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
        let mut y = vec![0.0f32; g.n * g.out_len()];
        for b in 0..g.n {
            for co in 0..g.cout {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = 0.0f32;
                        for c in 0..g.cin {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let (iy, ix) = (oy * g.sh + i, ox * g.sw + j);
                                    if iy < g.ph || ix < g.pw {
                                        continue;
                                    }
                                    let (iy, ix) = (iy - g.ph, ix - g.pw);
                                    if iy >= g.h || ix >= g.w {
                                        continue;
                                    }
                                    s += x[((b * g.cin + c) * g.h + iy) * g.w + ix]
                                        * w[((co * g.cin + c) * g.kh + i) * g.kw + j];
                                }
                            }
                        }
                        y[((b * g.cout + co) * g.oh + oy) * g.ow + ox] = s;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn im2col_matches_the_direct_convolution_and_col2im_is_its_adjoint() {
        for &(h, w, kh, kw, s, p) in &[
            (7usize, 5usize, 3usize, 3usize, 1usize, 1usize),
            (8, 8, 3, 3, 2, 1),
            (6, 9, 1, 1, 1, 0),
            (5, 5, 3, 2, 2, 0),
            (4, 4, 3, 3, 3, 2),
        ] {
            let opts = ConvOptions::new([s, s], [p, p], [1, 1], 1);
            let g = Geom::new(&[2, 3, h, w], &[4, 3, kh, kw], &opts);
            assert_eq!(g.groups, 1);
            let x: Vec<f32> = (0..g.n * g.in_len()).map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0).collect();
            let wt: Vec<f32> = (0..4 * g.k()).map(|i| ((i * 53 % 97) as f32) / 48.0 - 1.0).collect();
            let want = naive(&x, &wt, &g);
            let mut col = vec![0.0f32; g.k() * g.p()];
            for b in 0..g.n {
                im2col(&x[b * g.in_len()..][..g.in_len()], &g, &mut col);
                for co in 0..g.cout {
                    for q in 0..g.p() {
                        let v: f32 = (0..g.k()).map(|r| wt[co * g.k() + r] * col[r * g.p() + q]).sum();
                        let e = want[(b * g.cout + co) * g.p() + q];
                        assert!((v - e).abs() < 1e-4, "{h}×{w} k{kh}×{kw} s{s} p{p}: {v} vs {e}");
                    }
                }
                // <im2col(x), c> = <x, col2im(c)> for an arbitrary c.
                let c: Vec<f32> = (0..col.len()).map(|i| ((i * 29 % 83) as f32) / 41.0 - 1.0).collect();
                let mut back = vec![0.0f32; g.in_len()];
                col2im(&c, &g, &mut back);
                let lhs: f32 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
                let rhs: f32 = x[b * g.in_len()..][..g.in_len()].iter().zip(&back).map(|(a, b)| a * b).sum();
                assert!((lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
            }
        }
    }
}
