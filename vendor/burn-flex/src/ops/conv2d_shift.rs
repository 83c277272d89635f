//! scoregen patch: stride-1 2-D convolutions without im2col ("shifted GEMMs").
//!
//! With each input channel zero-padded once into a plane of H_p × W_p (H_p = H + 2p_h,
//! W_p = W + 2p_w), output pixel (y, x) of kernel tap t = (i, j) reads plane element
//! (y + i·d_h)·W_p + x + j·d_w. Laying the output out in the padded width too
//! (q = y·W_p + x for q < O_h·W_p), every tap becomes one GEMM over a shifted, contiguous view
//! of the planes, with off_t = i·d_h·W_p + j·d_w and W_t the tap's [C_out, C_in] slice of the
//! weight (row stride C_in·k_h·k_w, column stride k_h·k_w):
//!
//! - forward:          Y'[C_out, q]           = Σ_t W_t · X_p[C_in, q + off_t]
//! - input gradient:   dX_p[C_in, q + off_t] += W_tᵀ · dY'[C_out, q]
//! - weight gradient:  dW_t                  += dY'[C_out, q] · X_p[C_in, q + off_t]ᵀ
//!
//! The columns x ≥ O_w of Y' are scratch: dropped from the output, and zero in dY' so that they
//! add nothing to either gradient. Compared with im2col this drops the k_h·k_w-fold copy of the
//! input (the GEMM packs its operands itself); the price is one padded copy of the input and of
//! the output gradient, and O_h·(W_p − O_w) scratch columns.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

use super::conv2d_direct as direct;
use super::conv2d_gemm::{ConvElem, Geom, Mat, gemm_strided, per_image, per_image_sum};
use super::conv2d_wgrad as wgrad;
use super::copy_rows_f32::copy_rows as copy_rows_f32;
use super::transpose_f32::transpose;

impl Geom {
    /// Width of a padded plane.
    fn wp(&self) -> usize {
        self.w + 2 * self.pw
    }
    /// Elements of a padded plane.
    fn plane(&self) -> usize {
        (self.h + 2 * self.ph) * self.wp()
    }
    /// One group's padded input, plus the slack that the last scratch columns read past it.
    fn padded_len(&self) -> usize {
        self.cin * self.plane() + (self.kw - 1) * self.dw
    }
    /// Columns of the output in the padded width.
    fn q(&self) -> usize {
        self.oh * self.wp()
    }
    fn taps(&self) -> usize {
        self.kh * self.kw
    }
    /// Offset of tap t in a padded plane.
    fn offset(&self, t: usize) -> usize {
        (t / self.kw) * self.dh * self.wp() + (t % self.kw) * self.dw
    }
}

/// Fewest input channels per group for the shifted GEMMs: with fewer, each tap's GEMM has an
/// inner dimension too short to pay for itself, and im2col's single GEMM (inner dimension
/// C_in·k_h·k_w) is faster (measured: 1 → 32 channels at 28×28 took 2.5 ms shifted, 2.0 ms with
/// im2col; 32 → 32 took 5.9 ms shifted, 7.0 ms with im2col).
const MIN_CHANNELS: usize = 8;

/// Whether the shifted-GEMM path handles this convolution: stride 1 in both directions, at
/// least [`MIN_CHANNELS`] input channels per group, and more than one image. A single image
/// runs its GEMMs on all threads, and there im2col's one long GEMM beats a split of each of
/// the k_h·k_w short ones (measured at batch 1 on 2 threads, U-Net training step 36 ms with
/// im2col, 42 ms shifted).
pub(crate) fn applies(g: &Geom) -> bool {
    g.sh == 1 && g.sw == 1 && g.cin >= MIN_CHANNELS && g.n > 1
}

/// Whether [`forward`] and [`x_backward`] handle this convolution: where [`applies`], and also
/// for a single image when the direct kernel runs (f32 on AVX2/FMA), which splits its
/// output-channel blocks over the threads instead of each tap's GEMM (measured in
/// vendor/burn-flex/PATCHED.md). For the weight gradient see [`applies_weight`].
pub(crate) fn applies_forward<T: ConvElem>(g: &Geom) -> bool {
    applies(g) || (g.sh == 1 && g.sw == 1 && g.cin >= MIN_CHANNELS && f32_direct::<T>())
}

/// Whether [`weight_backward`] handles this convolution: where [`applies`], and also for a
/// single image when the direct weight-gradient kernel runs (f32 on AVX2/FMA, at least
/// [`wgrad::LANES`] outputs), which splits the taps over the threads. im2col's product for one
/// image, `[C_out, K]` over a reduction of all pixels, kept one thread busy: a batch-1
/// training step took as long on one thread as on two.
pub(crate) fn applies_weight<T: ConvElem>(g: &Geom) -> bool {
    applies(g) || (applies_forward::<T>(g) && wgrad_direct::<T>(g))
}

/// Whether [`weight_backward`] takes the direct kernel: f32 where it runs ([`f32_direct`]) and
/// at least one vector ([`wgrad::LANES`]) of outputs; with fewer, most lanes would be padding
/// and the shifted GEMMs are faster.
fn wgrad_direct<T: ConvElem>(g: &Geom) -> bool {
    f32_direct::<T>() && g.cout >= wgrad::LANES
}

/// Copies one group `x: [cin, h, w]` into the interior of `xp`, whose border stays as it was
/// (zero: scratch buffers start zeroed and only interiors are written).
fn pad<T: ConvElem>(x: &[T], g: &Geom, xp: &mut [T]) {
    let (wp, plane) = (g.wp(), g.plane());
    for (c, src) in x.chunks_exact(g.h * g.w).enumerate() {
        let dst = &mut xp[c * plane + g.ph * wp + g.pw..];
        copy_rows(src, g.w, (g.h, g.w), dst, wp);
    }
}

/// `rows × width` elements from rows `src_stride` apart into rows `dst_stride` apart: for f32
/// in vectors (`copy_rows_f32`), else one `copy_from_slice` per row.
fn copy_rows<T: ConvElem>(
    src: &[T],
    src_stride: usize,
    (rows, width): (usize, usize),
    dst: &mut [T],
    dst_stride: usize,
) {
    if core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>() {
        let (src, dst) = (bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst));
        return copy_rows_f32(src, src_stride, (rows, width), dst, dst_stride);
    }
    for r in 0..rows {
        dst[r * dst_stride..][..width].copy_from_slice(&src[r * src_stride..][..width]);
    }
}

/// The adjoint of [`pad`] on its image, `dx[c, y, x] = dxp[c·stride + (y + row0)·wp + x + p_w]`:
/// with `stride` = the plane and `row0` = p_h from padded planes, or from planes that start at
/// the first interior row. Writes every element of `dx` (which may start uninitialised).
fn crop<T: ConvElem>(
    dxp: &[T],
    g: &Geom,
    (stride, row0): (usize, usize),
    dx: &mut [MaybeUninit<T>],
) {
    let wp = g.wp();
    for (c, dst) in dx.chunks_exact_mut(g.h * g.w).enumerate() {
        for (y, row) in dst.chunks_exact_mut(g.w).enumerate() {
            write_copy(row, &dxp[c * stride + (y + row0) * wp + g.pw..][..g.w]);
        }
    }
}

/// `dy: [cout, oh·ow]` into the padded width, `dyp[c·stride + at + y·wp + x] = dy[c, y, x]`
/// (scratch columns and the `at` leading elements untouched, so zero).
fn widen<T: ConvElem>(dy: &[T], g: &Geom, (stride, at): (usize, usize), dyp: &mut [T]) {
    for (c, src) in dy.chunks_exact(g.p()).enumerate() {
        copy_rows(src, g.ow, (g.oh, g.ow), &mut dyp[c * stride + at..], g.wp());
    }
}

/// Drops the scratch columns and adds the group's bias:
/// `y[c, y·ow + x] = yp[c, y·wp + x] + bias[c]`. Writes every element of `y` (which may start
/// uninitialised).
fn narrow<T: ConvElem>(yp: &[T], g: &Geom, bias: Option<&[T]>, y: &mut [MaybeUninit<T>]) {
    let (wp, q) = (g.wp(), g.q());
    for (c, dst) in y.chunks_exact_mut(g.p()).enumerate() {
        for (oy, row) in dst.chunks_exact_mut(g.ow).enumerate() {
            let src = &yp[c * q + oy * wp..][..g.ow];
            match bias {
                Some(b) => {
                    for (d, &v) in row.iter_mut().zip(src) {
                        let mut v = v;
                        v += b[c];
                        d.write(v);
                    }
                }
                None => {
                    write_copy(row, src);
                }
            }
        }
    }
}

/// `src` copied into `dst` (of the same length), which may be uninitialised (what
/// `<[MaybeUninit<T>]>::write_copy_of_slice` does from Rust 1.93).
fn write_copy<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    assert_eq!(dst.len(), src.len(), "write_copy: lengths differ");
    // SAFETY: both hold src.len() elements, MaybeUninit<T> has T's layout, and a fresh &mut
    // cannot overlap a & borrow.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), src.len()) };
}

/// Group `grp`'s slice of the bias.
fn group_bias<'a, T>(bias: Option<&'a [T]>, g: &Geom, grp: usize) -> Option<&'a [T]> {
    bias.map(|b| &b[grp * g.cout..][..g.cout])
}

/// `y` as f32 elements, where T is f32 (checked by [`f32_direct`], asserted here).
fn as_f32<T: ConvElem>(y: &mut [MaybeUninit<T>]) -> &mut [MaybeUninit<f32>] {
    assert!(f32_direct::<T>(), "conv2d_shift: not f32");
    // SAFETY: T is f32 (same size and alignment), and MaybeUninit<T> has T's layout.
    unsafe { core::slice::from_raw_parts_mut(y.as_mut_ptr().cast(), y.len()) }
}

/// Whether the direct kernels run: T is f32 and the CPU runs them ([`direct::available`]).
/// Forward and input-gradient passes take `conv2d_direct`, weight gradients with at least
/// [`wgrad::LANES`] outputs `conv2d_wgrad` (others stay shifted GEMMs).
fn f32_direct<T: ConvElem>() -> bool {
    core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>() && direct::available()
}

/// The offsets of every tap in a padded plane.
fn offsets(g: &Geom) -> Vec<usize> {
    (0..g.taps()).map(|t| g.offset(t)).collect()
}

/// Forward convolution of `xs: [n, C_in, h, w]` into `y: [n, C_out, oh, ow]` (bias added);
/// writes every element of `y`.
pub(crate) fn forward<T: ConvElem>(
    xs: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &Geom,
    y: &mut [MaybeUninit<T>],
) {
    if f32_direct::<T>() {
        let bias = bias.map(|b| bytemuck::cast_slice(b));
        let (xs, w) = (bytemuck::cast_slice(xs), bytemuck::cast_slice(w));
        return forward_direct(xs, w, bias, g, as_f32(y));
    }
    let (k, q, taps) = (g.k(), g.q(), g.taps());
    let padded = g.padded_len();
    per_image(
        g.n,
        (xs, g.in_len()),
        (y, g.out_len()),
        padded + g.cout * q,
        |xb, yb, s, threads| {
            let (xp, yp) = s.split_at_mut(padded);
            for grp in 0..g.groups {
                pad(&xb[grp * g.in_group()..][..g.in_group()], g, xp);
                let wg = &w[grp * g.cout * k..][..g.cout * k];
                for t in 0..taps {
                    let lhs = Mat {
                        ptr: wg[t..].as_ptr(),
                        rs: k as isize,
                        cs: taps as isize,
                    };
                    let rhs = Mat {
                        ptr: xp[g.offset(t)..].as_ptr(),
                        rs: g.plane() as isize,
                        cs: 1,
                    };
                    // SAFETY: yp is [cout, q]; W_t spans wg; the shifted view ends at `padded`.
                    unsafe {
                        gemm_strided(
                            [g.cout, q, g.cin],
                            (yp.as_mut_ptr(), q as isize, 1),
                            t > 0,
                            lhs,
                            rhs,
                            threads,
                        )
                    };
                }
                let bg = group_bias(bias, g, grp);
                narrow(yp, g, bg, &mut yb[grp * g.out_group()..][..g.out_group()]);
            }
        },
    );
}

/// Each group's weights `w: [groups·C_out, C_in, k_h, k_w]` packed for the direct kernel: as
/// they are (C_out outputs from C_in inputs), or `flipped` for the input gradient (C_in outputs
/// from C_out inputs, taps reversed: w'[c, o, t] = w[o, c, T−1−t]).
fn pack_groups(isa: direct::Isa, w: &[f32], g: &Geom, flipped: bool) -> Vec<Vec<f32>> {
    let (k, taps) = (g.k(), g.taps());
    (0..g.groups)
        .map(|grp| {
            let wg = &w[grp * g.cout * k..][..g.cout * k];
            if flipped {
                direct::pack(isa, g.cin, g.cout, taps, |c, o, t| {
                    wg[o * k + c * taps + taps - 1 - t]
                })
            } else {
                direct::pack(isa, g.cout, g.cin, taps, |o, c, t| wg[o * k + c * taps + t])
            }
        })
        .collect()
}

/// [`forward`] with the direct kernel: Y'[o, q] = Σ_c Σ_t W[o, c, t] · X_p[c, q + off_t] + b[o],
/// of which the kernel stores only the output columns (x < O_w of each padded row) into `y`.
fn forward_direct(
    xs: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &Geom,
    y: &mut [MaybeUninit<f32>],
) {
    let q = g.q();
    let offs = offsets(g);
    let isa = direct::isa();
    let packed = pack_groups(isa, w, g, false);
    let plan = direct::Plan {
        cin: g.cin,
        s_in: g.plane(),
        start: 0,
        offs: &offs,
        cout: g.cout,
        s_out: g.p(),
        len: q,
        keep: direct::Keep {
            wp: g.wp(),
            lo: 0,
            width: g.ow,
        },
        bias: None,
    };
    let padded = plan.src_needed().max(g.padded_len());
    per_image(
        g.n,
        (xs, g.in_len()),
        (y, g.out_len()),
        padded,
        |xb, yb, xp, threads| {
            for (grp, wpk) in packed.iter().enumerate() {
                pad(&xb[grp * g.in_group()..][..g.in_group()], g, xp);
                let plan = direct::Plan {
                    bias: group_bias(bias, g, grp),
                    ..plan
                };
                let yg = &mut yb[grp * g.out_group()..][..g.out_group()];
                direct::correlate(isa, &plan, wpk, xp, yg, threads);
            }
        },
    );
}

/// Input gradient `dx: [n, C_in, h, w]` of the output gradient `dys: [n, C_out, oh, ow]`;
/// writes every element of `dx`.
pub(crate) fn x_backward<T: ConvElem>(dys: &[T], w: &[T], g: &Geom, dx: &mut [MaybeUninit<T>]) {
    if f32_direct::<T>() {
        let (dys, w) = (bytemuck::cast_slice(dys), bytemuck::cast_slice(w));
        return x_backward_direct(dys, w, g, as_f32(dx));
    }
    let (k, q, taps) = (g.k(), g.q(), g.taps());
    let padded = g.padded_len();
    per_image(
        g.n,
        (dys, g.out_len()),
        (dx, g.in_len()),
        g.cout * q + padded,
        |dyb, dxb, s, threads| {
            let (dyp, dxp) = s.split_at_mut(g.cout * q);
            for grp in 0..g.groups {
                widen(&dyb[grp * g.out_group()..][..g.out_group()], g, (q, 0), dyp);
                dxp.fill(T::default());
                let wg = &w[grp * g.cout * k..][..g.cout * k];
                for t in 0..taps {
                    let lhs = Mat {
                        ptr: wg[t..].as_ptr(),
                        rs: taps as isize,
                        cs: k as isize,
                    }; // W_tᵀ
                    let rhs = Mat {
                        ptr: dyp.as_ptr(),
                        rs: q as isize,
                        cs: 1,
                    };
                    let dst = dxp[g.offset(t)..].as_mut_ptr();
                    // SAFETY: the shifted [cin, q] destination ends at `padded`; dyp is [cout, q].
                    unsafe {
                        gemm_strided(
                            [g.cin, q, g.cout],
                            (dst, g.plane() as isize, 1),
                            true,
                            lhs,
                            rhs,
                            threads,
                        )
                    };
                }
                crop(
                    dxp,
                    g,
                    (g.plane(), g.ph),
                    &mut dxb[grp * g.in_group()..][..g.in_group()],
                );
            }
        },
    );
}

/// [`x_backward`] with the direct kernel, as the correlation
/// dX_p[c, r] = Σ_o Σ_t W[o, c, T−1−t] · B[o, r + off_t] of B[o, s] = dY'[o, s − off_max] (zero
/// outside) with the flipped, transposed weights: tap T−1−t has offset off_max − off_t, so this
/// is the scatter dX_p[c, q + off_t] += Σ_o W[o, c, t] · dY'[o, q] read from the other side.
/// Only the h interior rows of dX_p are computed (from r₀ = p_h·wp on), and the kernel stores
/// only their interior columns, dX.
fn x_backward_direct(dys: &[f32], w: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
    let (q, taps) = (g.q(), g.taps());
    let offs = offsets(g);
    let max_off = offs[taps - 1];
    let isa = direct::isa();
    let packed = pack_groups(isa, w, g, true);
    let (start, len) = (g.ph * g.wp(), g.h * g.wp());
    let plan = direct::Plan {
        cin: g.cout,
        // Room for dY' after its offset, and for the reads of the last interior row.
        s_in: (max_off + q).max(start + len + max_off),
        start,
        offs: &offs,
        cout: g.cin,
        s_out: g.h * g.w,
        len,
        keep: direct::Keep {
            wp: g.wp(),
            lo: g.pw,
            width: g.w,
        },
        bias: None,
    };
    let b_len = plan.src_needed().max(g.cout * plan.s_in);
    per_image(
        g.n,
        (dys, g.out_len()),
        (dx, g.in_len()),
        b_len,
        |dyb, dxb, bp, threads| {
            for (grp, wpk) in packed.iter().enumerate() {
                let dyg = &dyb[grp * g.out_group()..][..g.out_group()];
                widen(dyg, g, (plan.s_in, max_off), bp);
                let dxg = &mut dxb[grp * g.in_group()..][..g.in_group()];
                direct::correlate(isa, &plan, wpk, bp, dxg, threads);
            }
        },
    );
}

/// Weight gradient `[groups·C_out, C_in, k_h, k_w]` of input `xs` and output gradient `dys`.
pub(crate) fn weight_backward<T: ConvElem>(xs: &[T], dys: &[T], g: &Geom) -> alloc::vec::Vec<T> {
    if wgrad_direct::<T>(g) {
        let mut dw = vec![T::default(); g.groups * g.cout * g.k()];
        let (xs, dys) = (bytemuck::cast_slice(xs), bytemuck::cast_slice(dys));
        weight_backward_direct(xs, dys, g, bytemuck::cast_slice_mut(&mut dw));
        return dw;
    }
    let (k, q, taps) = (g.k(), g.q(), g.taps());
    let padded = g.padded_len();
    let wlen = g.groups * g.cout * k;
    let scratch = padded + g.cout * q;
    let one = |b: usize, acc: &mut [T], s: &mut [T], threads: bool| {
        let (xp, dyp) = s.split_at_mut(padded);
        for grp in 0..g.groups {
            pad(
                &xs[b * g.in_len() + grp * g.in_group()..][..g.in_group()],
                g,
                xp,
            );
            widen(
                &dys[b * g.out_len() + grp * g.out_group()..][..g.out_group()],
                g,
                (q, 0),
                dyp,
            );
            let accg = &mut acc[grp * g.cout * k..][..g.cout * k];
            for t in 0..taps {
                let lhs = Mat {
                    ptr: dyp.as_ptr(),
                    rs: q as isize,
                    cs: 1,
                };
                let rhs = Mat {
                    ptr: xp[g.offset(t)..].as_ptr(),
                    rs: 1,
                    cs: g.plane() as isize,
                }; // [q, cin]
                let dst = (accg[t..].as_mut_ptr(), k as isize, taps as isize);
                // SAFETY: dW_t is [cout, cin] inside accg; the shifted view ends at `padded`.
                unsafe { gemm_strided([g.cout, g.cin, q], dst, true, lhs, rhs, threads) };
            }
        }
    };
    per_image_sum(g.n, wlen, scratch, one)
}

/// [`weight_backward`] with the direct kernel (`conv2d_wgrad`): per image and group, the input
/// is padded channel-last into `[position][C_in]` and the output gradient transposed into
/// `[pixel][C_out]` (outputs padded to a multiple of [`wgrad::LANES`] with zeros), and the
/// kernel accumulates dWᵀ `[tap][C_in][C_out]`. The images are split over the threads, each
/// with its own partial dWᵀ; the sum is transposed into `dw` at the end.
fn weight_backward_direct(xs: &[f32], dys: &[f32], g: &Geom, dw: &mut [f32]) {
    let isa = direct::isa();
    let offs = offsets(g);
    let cout_p = g.cout.next_multiple_of(wgrad::LANES);
    let (taps, plane, p) = (g.taps(), g.plane(), g.p());
    let shape = wgrad::Data {
        dy: &[],
        cout_p,
        x: &[],
        cin: g.cin,
        wp: g.wp(),
        oh: g.oh,
        ow: g.ow,
        offs: &offs,
    };
    // Both multiples of 16 floats, so that with the scratch aligned to 64 bytes the output
    // gradient's rows are too (its vector loads do not split cache lines).
    let x_len = shape.x_needed().max(plane * g.cin).next_multiple_of(16);
    let dy_len = p * cout_p;
    let per_group = taps * g.cin * cout_p;
    let scratch = x_len + dy_len + 16;
    let one = |b: usize, acc: &mut [f32], s: &mut [f32], threads: bool| {
        let skip = s.as_ptr().align_offset(64);
        let (xt, dyt) = s[skip..].split_at_mut(x_len);
        let (wp, pw, ph) = (g.wp(), g.pw, g.ph);
        for grp in 0..g.groups {
            // Interiors only: the border positions and padded outputs stay zero.
            let xg = &xs[b * g.in_len() + grp * g.in_group()..][..g.in_group()];
            let hw = g.h * g.w;
            for y in 0..g.h {
                let at = ((y + ph) * wp + pw) * g.cin;
                transpose(&xg[y * g.w..], hw, (g.cin, g.w), &mut xt[at..], g.cin);
            }
            let dyg = &dys[b * g.out_len() + grp * g.out_group()..][..g.out_group()];
            transpose(dyg, p, (g.cout, p), dyt, cout_p);
            let data = wgrad::Data {
                dy: dyt,
                x: xt,
                ..shape
            };
            let accg = &mut acc[grp * per_group..][..per_group];
            // A single image: its taps (disjoint slices of dWᵀ) over the threads.
            #[cfg(feature = "rayon")]
            if threads && offs.len() > 1 {
                use rayon::prelude::*;
                accg.par_chunks_mut(g.cin * cout_p)
                    .zip(offs.par_iter())
                    .for_each(|(dwt, off)| {
                        let tap = wgrad::Data {
                            offs: core::slice::from_ref(off),
                            ..data
                        };
                        wgrad::accumulate(isa, &tap, dwt);
                    });
                continue;
            }
            #[cfg(not(feature = "rayon"))]
            let _ = threads;
            wgrad::accumulate(isa, &data, accg);
        }
    };
    let total = per_image_sum(g.n, g.groups * per_group, scratch, one);
    // dW[grp·cout + o, c, t] = dWᵀ[grp][t][c][o].
    let k = g.k();
    for grp in 0..g.groups {
        let src = &total[grp * per_group..][..per_group];
        for o in 0..g.cout {
            let dst = &mut dw[(grp * g.cout + o) * k..][..k];
            for c in 0..g.cin {
                for t in 0..taps {
                    dst[c * taps + t] = src[(t * g.cin + c) * cout_p + o];
                }
            }
        }
    }
}
