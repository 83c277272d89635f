//! scoregen patch: the weight gradient of the stride-1 convolutions of `conv2d_shift` as a
//! direct AVX2/AVX-512 kernel, for f32 on x86-64 (where `conv2d_direct` runs).
//!
//! With the input zero-padded into planes of width W_p, output pixel (y, x) of tap t reads
//! padded position p = y·W_p + x + off_t, and the weight gradient is
//!
//!   dW[o, c, t] = Σ_images Σ_(y, x) dY[o, y, x] · X_p[c, y·W_p + x + off_t].
//!
//! As one GEMM per tap and image (the previous path), each call packs both operands again for
//! a small `[C_out, C_in]` result. Here both operands are laid out channel-last, dY as
//! `[pixel][C_out]` (padded to a multiple of 16 outputs) and X_p as `[position][C_in]`, so that
//! a tile of up to 12 input channels × 32 output channels of one tap (AVX2: 6 × 16) stays in
//! 24 vector accumulators (12) over all pixels of an image: per pixel, two vector loads of dY,
//! one broadcast of X_p per input channel and 24 FMAs, as the forward kernel of
//! `conv2d_direct`. The lanes run over output channels, so no horizontal sums are needed: each
//! tile adds its accumulators into dWᵀ `[tap][C_in][C_out]` once per image.

use super::conv2d_direct::Isa;

/// Output channels are padded to a multiple of this (one AVX-512 vector, two AVX2 vectors).
pub(crate) const LANES: usize = 16;

/// One image's operands of [`accumulate`]: `dy`, `[oh·ow][cout_p]` (zero for outputs past the
/// real ones), and `x`, `[position][cin]` over padded planes of width `wp`, read at position
/// y·wp + x + offs[t] for output pixel (y, x).
#[derive(Clone, Copy)]
pub(crate) struct Data<'a> {
    pub(crate) dy: &'a [f32],
    pub(crate) cout_p: usize,
    pub(crate) x: &'a [f32],
    pub(crate) cin: usize,
    pub(crate) wp: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    pub(crate) offs: &'a [usize],
}

impl Data<'_> {
    /// Elements of `x` read: up to the last output pixel shifted by the largest offset.
    pub(crate) fn x_needed(&self) -> usize {
        let max_off = self.offs.iter().copied().max().unwrap_or(0);
        ((self.oh - 1) * self.wp + self.ow + max_off) * self.cin
    }
}

/// `dwt[t, c, o] += Σ_(y, x) dy[y·ow + x, o] · x[y·wp + x + offs[t], c]` for one image
/// (`dwt`: `[taps][cin][cout_p]`).
///
/// # Panics
/// If the CPU lacks AVX2/FMA (see `conv2d_direct::available`), `cout_p` is not a multiple of
/// [`LANES`], or a slice is shorter than the data describe.
pub(crate) fn accumulate(isa: Isa, d: &Data, dwt: &mut [f32]) {
    assert!(
        super::conv2d_direct::available(),
        "conv2d_wgrad: the CPU lacks AVX2/FMA"
    );
    if d.oh == 0 || d.ow == 0 || d.cin == 0 || d.cout_p == 0 || d.offs.is_empty() {
        return;
    }
    assert!(d.cout_p % LANES == 0, "conv2d_wgrad: outputs not padded");
    assert!(
        d.dy.len() >= d.oh * d.ow * d.cout_p,
        "conv2d_wgrad: output gradient too short"
    );
    assert!(d.x.len() >= d.x_needed(), "conv2d_wgrad: input too short");
    assert!(
        dwt.len() >= d.offs.len() * d.cin * d.cout_p,
        "conv2d_wgrad: weight gradient too short"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX2 and FMA (asserted; AVX-512F where `isa` says so), and the
    // asserts bound every access: dy rows of cout_p, x up to `x_needed`, dwt [taps][cin][cout_p].
    unsafe {
        match isa {
            Isa::Avx2 => x86::avx2::run(d, dwt),
            Isa::Avx512 => x86::avx512::run(d, dwt),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (isa, dwt);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// One kernel per instruction set: tiles of up to `$cmax` input channels × 2 vectors of
    /// output channels for one tap.
    macro_rules! kernel {
        ($name:ident, $features:literal, $vec:ty, $lanes:literal, $zero:ident, $set1:ident,
         $load:ident, $add:ident, $fma:ident, $store:ident, $cmax:literal,
         [$($c:literal),*]) => {
            pub(super) mod $name {
                use super::super::Data;
                use core::arch::x86_64::*;

                type Tile = unsafe fn(&Data, usize, usize, usize, *mut f32);

                #[target_feature(enable = $features)]
                pub(in super::super) unsafe fn run(d: &Data, dwt: &mut [f32]) {
                    let dwt = dwt.as_mut_ptr();
                    for t in 0..d.offs.len() {
                        for c0 in (0..d.cin).step_by($cmax) {
                            let cs = (d.cin - c0).min($cmax);
                            for o0 in (0..d.cout_p).step_by(2 * $lanes) {
                                let two = d.cout_p - o0 >= 2 * $lanes;
                                unsafe { tile_for(cs, two)(d, t, c0, o0, dwt) };
                            }
                        }
                    }
                }

                fn tile_for(channels: usize, two: bool) -> Tile {
                    match (channels, two) {
                        $(($c, true) => tile::<$c, 2>, ($c, false) => tile::<$c, 1>,)*
                        (_, true) => tile::<$cmax, 2>,
                        (_, false) => tile::<$cmax, 1>,
                    }
                }

                /// Input channels c0..c0+C × output channels o0..o0+V·lanes of tap t.
                #[target_feature(enable = $features)]
                unsafe fn tile<const C: usize, const V: usize>(
                    d: &Data,
                    t: usize,
                    c0: usize,
                    o0: usize,
                    dwt: *mut f32,
                ) {
                    let mut acc = [[$zero(); V]; C];
                    for y in 0..d.oh {
                        let mut g = unsafe { d.dy.as_ptr().add(y * d.ow * d.cout_p + o0) };
                        let mut x =
                            unsafe { d.x.as_ptr().add((y * d.wp + d.offs[t]) * d.cin + c0) };
                        for _ in 0..d.ow {
                            let gv: [$vec; V] =
                                core::array::from_fn(|v| unsafe { $load(g.add($lanes * v)) });
                            for (c, a) in acc.iter_mut().enumerate() {
                                let b = $set1(unsafe { *x.add(c) });
                                for (av, &gv) in a.iter_mut().zip(&gv) {
                                    *av = $fma(b, gv, *av);
                                }
                            }
                            g = unsafe { g.add(d.cout_p) };
                            x = unsafe { x.add(d.cin) };
                        }
                    }
                    for (c, a) in acc.iter().enumerate() {
                        let row = unsafe { dwt.add((t * d.cin + c0 + c) * d.cout_p + o0) };
                        for (v, av) in a.iter().enumerate() {
                            let p = unsafe { row.add($lanes * v) };
                            unsafe { $store(p, $add($load(p), *av)) };
                        }
                    }
                }
            }
        };
    }

    kernel!(
        avx2,
        "avx2,fma",
        __m256,
        8,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_add_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps,
        6,
        [1, 2, 3, 4, 5]
    );
    kernel!(
        avx512,
        "avx512f,avx2,fma",
        __m512,
        16,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_add_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps,
        12,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    );
}
