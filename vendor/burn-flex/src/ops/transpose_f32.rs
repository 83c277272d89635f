//! scoregen patch: a blocked f32 transpose in 8 × 8 AVX tiles, for the channel-last operands
//! of `conv2d_wgrad` (planes `[C][pixels]` into `[pixel][C]`). Element by element, each output
//! row gathers one value from every plane; in tiles, eight rows of eight are loaded, transposed
//! in registers (unpack, shuffle, lane permute) and stored as eight rows of eight.

/// `dst[j·dst_stride + i] = src[i·src_stride + j]` for `i < rows`, `j < cols`.
///
/// With AVX (x86-64, detected at run time) the `rows × cols` rectangle is covered by 8 × 8
/// tiles, the last tile of a row or column moved back to overlap its neighbour (it writes the
/// same values again) when the size is not a multiple of 8; sizes below 8 go element by
/// element.
///
/// # Panics
/// If `src` or `dst` is shorter than the rectangle needs.
pub(crate) fn transpose(
    src: &[f32],
    src_stride: usize,
    (rows, cols): (usize, usize),
    dst: &mut [f32],
    dst_stride: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * src_stride + cols,
        "transpose: source too short"
    );
    assert!(
        dst.len() >= (cols - 1) * dst_stride + rows,
        "transpose: destination too short"
    );
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if rows >= 8 && cols >= 8 && std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, and every tile lies inside the rectangle (rows, cols ≥ 8)
        // whose extent in both slices is asserted above.
        unsafe { avx::tiles(src, src_stride, (rows, cols), dst, dst_stride) };
        return;
    }
    for i in 0..rows {
        for j in 0..cols {
            dst[j * dst_stride + i] = src[i * src_stride + j];
        }
    }
}

/// Tile origins along a side of `n ≥ 8`: 0, 8, 16, … and, if n is not a multiple of 8, n − 8.
fn starts(n: usize) -> impl Iterator<Item = usize> {
    (0..n / 8)
        .map(|b| 8 * b)
        .chain((n % 8 != 0).then_some(n - 8))
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx {
    use core::arch::x86_64::*;

    /// Every tile of [`super::transpose`]'s rectangle (rows, cols ≥ 8).
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn tiles(
        src: &[f32],
        ss: usize,
        (rows, cols): (usize, usize),
        dst: &mut [f32],
        ds: usize,
    ) {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        for i in super::starts(rows) {
            for j in super::starts(cols) {
                // SAFETY: i + 8 ≤ rows and j + 8 ≤ cols (see `starts`).
                unsafe { tile(s.add(i * ss + j), ss, d.add(j * ds + i), ds) };
            }
        }
    }

    /// One 8 × 8 tile: the eight rows of `s` (stride `ss`) into the eight columns of `d`.
    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn tile(s: *const f32, ss: usize, d: *mut f32, ds: usize) {
        let r: [__m256; 8] = core::array::from_fn(|k| unsafe { _mm256_loadu_ps(s.add(k * ss)) });
        // Pairs of rows interleaved: (a0 b0 a1 b1 | a4 b4 a5 b5), (a2 b2 a3 b3 | a6 b6 a7 b7).
        let t: [__m256; 8] = core::array::from_fn(|k| {
            let (a, b) = (r[2 * (k / 2)], r[2 * (k / 2) + 1]);
            if k % 2 == 0 {
                _mm256_unpacklo_ps(a, b)
            } else {
                _mm256_unpackhi_ps(a, b)
            }
        });
        // Quads of rows: column c of rows 0..4 in the low half of u[c], 4..8 of the next.
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for k in 0..4 {
            let lo = _mm256_permute2f128_ps::<0x20>(u[k], u[k + 4]);
            let hi = _mm256_permute2f128_ps::<0x31>(u[k], u[k + 4]);
            unsafe {
                _mm256_storeu_ps(d.add(k * ds), lo);
                _mm256_storeu_ps(d.add((k + 4) * ds), hi);
            }
        }
    }
}
