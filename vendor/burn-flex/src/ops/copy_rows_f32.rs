//! scoregen patch: copies of short f32 rows between strided 2-D layouts (the convolutions'
//! padded planes, whose rows are 7 to 28 elements), in AVX-512 or AVX2 vectors with masked
//! loads and stores for each row's last, partial vector. `copy_from_slice` per row calls
//! `memcpy` once per row, whose fixed cost is most of the work at these lengths. The vector
//! width follows `conv2d_direct::isa` (so `SCOREGEN_CPU_ISA=avx2` tests the AVX2 copy).

/// `dst[r·dst_stride + j] = src[r·src_stride + j]` for `r < rows`, `j < width`.
///
/// # Panics
/// If `src` or `dst` is shorter than the rows need.
pub(crate) fn copy_rows(
    src: &[f32],
    src_stride: usize,
    (rows, width): (usize, usize),
    dst: &mut [f32],
    dst_stride: usize,
) {
    if rows == 0 || width == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * src_stride + width,
        "copy_rows: source too short"
    );
    assert!(
        dst.len() >= (rows - 1) * dst_stride + width,
        "copy_rows: destination too short"
    );
    #[cfg(target_arch = "x86_64")]
    if super::conv2d_direct::available() {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        let shape = (rows, width);
        // SAFETY: the CPU has AVX2 (`available`; AVX-512F where `isa` says so), and every
        // access is inside the rows asserted above (partial vectors are masked loads/stores).
        unsafe {
            use super::conv2d_direct::Isa;
            match super::conv2d_direct::isa() {
                Isa::Avx512 => x86::avx512(s, src_stride, shape, d, dst_stride),
                Isa::Avx2 => x86::avx2(s, src_stride, shape, d, dst_stride),
            }
        }
        return;
    }
    for r in 0..rows {
        dst[r * dst_stride..][..width].copy_from_slice(&src[r * src_stride..][..width]);
    }
}

/// The per-instruction-set copies, also used by `conv2d_direct` for its partial blocks.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use core::arch::x86_64::*;

    /// [`super::copy_rows`] in 16-lane vectors.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn avx512(
        s: *const f32,
        ss: usize,
        (rows, width): (usize, usize),
        d: *mut f32,
        ds: usize,
    ) {
        let (full, tail) = (width / 16 * 16, width % 16);
        let mask = ((1u32 << tail) - 1) as u16;
        for r in 0..rows {
            // SAFETY: columns below `width` of row r (the caller's bounds).
            unsafe {
                let (s, d) = (s.add(r * ss), d.add(r * ds));
                for j in (0..full).step_by(16) {
                    _mm512_storeu_ps(d.add(j), _mm512_loadu_ps(s.add(j)));
                }
                if tail > 0 {
                    let v = _mm512_maskz_loadu_ps(mask, s.add(full));
                    _mm512_mask_storeu_ps(d.add(full), mask, v);
                }
            }
        }
    }

    /// [`super::copy_rows`] in 8-lane vectors.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn avx2(
        s: *const f32,
        ss: usize,
        (rows, width): (usize, usize),
        d: *mut f32,
        ds: usize,
    ) {
        let (full, tail) = (width / 8 * 8, width % 8);
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail as i32), lanes);
        for r in 0..rows {
            // SAFETY: columns below `width` of row r (the caller's bounds).
            unsafe {
                let (s, d) = (s.add(r * ss), d.add(r * ds));
                for j in (0..full).step_by(8) {
                    _mm256_storeu_ps(d.add(j), _mm256_loadu_ps(s.add(j)));
                }
                if tail > 0 {
                    let v = _mm256_maskload_ps(s.add(full), mask);
                    _mm256_maskstore_ps(d.add(full), mask, v);
                }
            }
        }
    }
}
