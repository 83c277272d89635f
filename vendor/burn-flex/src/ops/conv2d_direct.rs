//! scoregen patch: a direct convolution micro-kernel for f32 on x86-64 with AVX2 and FMA.
//!
//! The shifted GEMMs of [`super::conv2d_shift`] compute Y'[C_out, q] = Σ_t W_t · X_p[C_in, q + off_t]
//! as one GEMM per kernel tap, each with an inner dimension of only C_in (32 in the U-Net's
//! first level): every tap reloads and re-stores the whole output, and the GEMM packs both
//! operands again. This kernel instead keeps a block of up to [`CO`] = 6 output channels × 16
//! consecutive output columns in twelve AVX registers (the shape of the GEMM micro-kernels)
//! while it runs over all C_in·k_h·k_w products (K = 288 for a 3×3 kernel over 32
//! channels), reading the input straight from the padded planes (two unaligned loads per tap
//! and channel) and the weights from a packed copy (one broadcast per output channel):
//!
//!   out[o, j] = Σ_c Σ_t w[o, c, t] · src[c·s_in + start + j + off_t],   0 ≤ j < len.
//!
//! The same kernel runs the input gradient of a stride-1 convolution, which is again such a
//! correlation (of the output gradient, offset by the largest tap offset, with the flipped and
//! transposed weights; see [`super::conv2d_shift`]).

use alloc::vec;
use alloc::vec::Vec;

/// Most output channels per block: 6 × 2 accumulators (16 columns) leave four of the sixteen
/// registers for the two input vectors and the broadcast weight, the shape of the GEMM
/// micro-kernels. (With 4 × 3 the compiler spilled an accumulator: a store-to-load round trip
/// on every step of its chain.)
const CO: usize = 6;
/// Widest block, in columns: a single output channel takes six vectors, so that six
/// independent accumulator chains hide the FMA latency.
const MAX_PX: usize = 48;

/// Whether this CPU runs the kernel (x86-64 with AVX2 and FMA; std caches the detection).
pub(crate) fn available() -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    {
        false
    }
}

/// The output-channel blocks `(first, count)`: blocks of [`CO`], with a short remainder
/// (1 or 2) merged with the block before it and split evenly (7 → 4 + 3, 8 → 4 + 4), since a
/// block of one or two channels keeps too few FMAs in flight.
fn blocks(cout: usize) -> Vec<(usize, usize)> {
    let (full, rest) = (cout / CO, cout % CO);
    let mut sizes = vec![CO; full];
    if (1..=2).contains(&rest) && full > 0 {
        sizes.pop();
        let merged = CO + rest;
        sizes.extend([merged.div_ceil(2), merged / 2]);
    } else if rest > 0 {
        sizes.push(rest);
    }
    let mut first = 0;
    sizes
        .into_iter()
        .map(|c| {
            first += c;
            (first - c, c)
        })
        .collect()
}

/// Weights `w(o, c, t)` for `cout` outputs, `cin` inputs and `taps` taps, packed in the order the
/// kernel reads them: for each block of [`blocks`], `[c][t][o]`.
pub(crate) fn pack(
    cout: usize,
    cin: usize,
    taps: usize,
    w: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(cout * cin * taps);
    for (o0, count) in blocks(cout) {
        for c in 0..cin {
            for t in 0..taps {
                out.extend((o0..o0 + count).map(|o| w(o, c, t)));
            }
        }
    }
    out
}

/// Where a correlation reads and writes: `src` holds `cin` planes of stride `s_in`, output
/// column j reads plane element `start + j + offs[t]`; `out` holds `cout` rows of stride `s_out`,
/// of which the first `len` columns are written.
pub(crate) struct Plan<'a> {
    pub(crate) cin: usize,
    pub(crate) s_in: usize,
    pub(crate) start: usize,
    pub(crate) offs: &'a [usize],
    pub(crate) cout: usize,
    pub(crate) s_out: usize,
    pub(crate) len: usize,
}

impl Plan<'_> {
    /// Elements of `src` the kernel may read: the last plane's columns up to the end of the
    /// last (partly used) block, plus the largest offset. Columns of the last block past `len`
    /// read whatever lies there; their results are dropped.
    pub(crate) fn src_needed(&self) -> usize {
        let max_off = self.offs.iter().copied().max().unwrap_or(0);
        (self.cin - 1) * self.s_in + self.start + self.len + MAX_PX + max_off
    }
}

/// Runs the correlation of [`Plan`] with weights packed by [`pack`], its output-channel
/// blocks split over rayon's threads when `parallel` (a single image: nothing else to split).
///
/// # Panics
/// If [`available`] is false, or a slice is shorter than the plan needs.
pub(crate) fn correlate(plan: &Plan, packed: &[f32], src: &[f32], out: &mut [f32], parallel: bool) {
    assert!(available(), "conv2d_direct: the CPU lacks AVX2/FMA");
    assert!(
        plan.cin > 0 && !plan.offs.is_empty(),
        "conv2d_direct: empty kernel"
    );
    assert!(
        src.len() >= plan.src_needed(),
        "conv2d_direct: input too short"
    );
    let k = plan.cin * plan.offs.len();
    assert!(
        packed.len() >= plan.cout * k,
        "conv2d_direct: weights too short"
    );
    assert!(
        plan.cout == 0 || out.len() >= (plan.cout - 1) * plan.s_out + plan.len,
        "conv2d_direct: output too short"
    );
    // Each block's rows of `out`, as disjoint slices.
    let mut parts = Vec::new();
    let mut rest = out;
    for (o0, count) in blocks(plan.cout) {
        let (rows, tail) = rest.split_at_mut((count * plan.s_out).min(rest.len()));
        parts.push((&packed[o0 * k..][..count * k], count, rows));
        rest = tail;
    }
    let run = |(w, count, y): (&[f32], usize, &mut [f32])| {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA (asserted), and the asserts above bound every read
        // and write the kernels make (see `Plan::src_needed`; full blocks write inside `len`,
        // the last one goes through a local buffer).
        unsafe {
            x86::rows(plan, count, w, src, y)
        }
    };
    #[cfg(feature = "rayon")]
    if parallel {
        use rayon::prelude::*;
        parts.into_par_iter().for_each(run);
        return;
    }
    let _ = parallel;
    parts.into_iter().for_each(run);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MAX_PX, Plan};
    use core::arch::x86_64::*;

    /// All `len` columns of `count` ≤ 6 output rows `y` (row stride `plan.s_out`), from their
    /// packed weights `w`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows(plan: &Plan, count: usize, w: &[f32], src: &[f32], y: &mut [f32]) {
        let block = match count {
            1 => block::<1, 6>,
            2 => block::<2, 2>,
            3 => block::<3, 2>,
            4 => block::<4, 2>,
            5 => block::<5, 2>,
            _ => block::<6, 2>,
        };
        let px = if count == 1 { 48 } else { 16 };
        let x = unsafe { src.as_ptr().add(plan.start) };
        for j in (0..plan.len).step_by(px) {
            unsafe {
                block(
                    plan,
                    x.add(j),
                    w.as_ptr(),
                    y.as_mut_ptr().add(j),
                    plan.len - j,
                )
            };
        }
    }

    /// One block of `C` outputs × `V` vectors of 8 columns; only the first `min(rest, 8·V)`
    /// columns of each output row are stored.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const C: usize, const V: usize>(
        plan: &Plan,
        x: *const f32,
        mut w: *const f32,
        y: *mut f32,
        rest: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); V]; C];
        for c in 0..plan.cin {
            let xc = unsafe { x.add(c * plan.s_in) };
            for &off in plan.offs {
                let p = unsafe { xc.add(off) };
                let xv: [__m256; V] =
                    core::array::from_fn(|v| unsafe { _mm256_loadu_ps(p.add(8 * v)) });
                for a in acc.iter_mut() {
                    let b = unsafe { _mm256_broadcast_ss(&*w) };
                    for (av, &xv) in a.iter_mut().zip(&xv) {
                        *av = _mm256_fmadd_ps(b, xv, *av);
                    }
                    w = unsafe { w.add(1) };
                }
            }
        }
        for (o, a) in acc.iter().enumerate() {
            let row = unsafe { y.add(o * plan.s_out) };
            if rest >= 8 * V {
                for (v, av) in a.iter().enumerate() {
                    unsafe { _mm256_storeu_ps(row.add(8 * v), *av) };
                }
            } else {
                let mut tmp = [0.0f32; MAX_PX];
                for (v, av) in a.iter().enumerate() {
                    unsafe { _mm256_storeu_ps(tmp.as_mut_ptr().add(8 * v), *av) };
                }
                unsafe { core::ptr::copy_nonoverlapping(tmp.as_ptr(), row, rest) };
            }
        }
    }
}
