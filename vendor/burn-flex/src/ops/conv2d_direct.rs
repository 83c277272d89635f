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
//!
//! On CPUs with AVX-512 (detected at run time) the same loop runs on 16-lane registers, and
//! with thirty-two of them a block holds up to [`CO_512`] = 12 output channels × 32 columns.
//! The environment variable `SCOREGEN_CPU_ISA=avx2` keeps the AVX2 kernel on such a CPU (for
//! comparisons and tests; it does not change the GEMMs). It is read once, at the first
//! convolution of the process.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// Which instruction set the kernel runs on; chosen once per convolution ([`isa`]) so that the
/// packing and the kernel agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 8 lanes, 16 registers: blocks of up to [`CO`] outputs × 16 columns.
    Avx2,
    /// 16 lanes, 32 registers: blocks of up to [`CO_512`] outputs × 32 columns.
    Avx512,
}

/// Most output channels per block: 6 × 2 accumulators (16 columns) leave four of the sixteen
/// registers for the two input vectors and the broadcast weight, the shape of the GEMM
/// micro-kernels. (With 4 × 3 the compiler spilled an accumulator: a store-to-load round trip
/// on every step of its chain.)
const CO: usize = 6;
/// Most output channels per AVX-512 block: 12 × 2 accumulators of 16 lanes, two input vectors
/// and the broadcast weight use 27 of the 32 registers.
const CO_512: usize = 12;
/// Widest block, in columns: a single output channel takes six vectors (48 or 96 columns), so
/// that six independent accumulator chains hide the FMA latency.
const MAX_PX: usize = 96;

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

/// The kernel for this CPU: AVX-512 where it has AVX-512F, unless `SCOREGEN_CPU_ISA=avx2`.
/// Only meaningful where [`available`]. The environment is read once per process: the row
/// copies ask for every channel of every image, and `std::env::var` (a lock and a scan of the
/// environment) was 1.5 % of a U-Net training step.
pub(crate) fn isa() -> Isa {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let capped =
                std::env::var("SCOREGEN_CPU_ISA").is_ok_and(|v| v.eq_ignore_ascii_case("avx2"));
            if !capped && std::is_x86_feature_detected!("avx512f") {
                Isa::Avx512
            } else {
                Isa::Avx2
            }
        })
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    Isa::Avx2
}

/// The output-channel blocks `(first, count)`. AVX2: blocks of [`CO`], with a short remainder
/// (1 or 2) merged with the block before it and split evenly (7 → 4 + 3, 8 → 4 + 4), since a
/// block of one or two channels keeps too few FMAs in flight. AVX-512: as few blocks of at most
/// [`CO_512`] as cover `cout`, sizes as equal as possible (32 → 11 + 11 + 10).
fn blocks(cout: usize, isa: Isa) -> Vec<(usize, usize)> {
    let sizes = match isa {
        Isa::Avx2 => {
            let (full, rest) = (cout / CO, cout % CO);
            let mut sizes = vec![CO; full];
            if (1..=2).contains(&rest) && full > 0 {
                sizes.pop();
                let merged = CO + rest;
                sizes.extend([merged.div_ceil(2), merged / 2]);
            } else if rest > 0 {
                sizes.push(rest);
            }
            sizes
        }
        Isa::Avx512 => {
            let n = cout.div_ceil(CO_512);
            (0..n)
                .map(|i| cout / n + usize::from(i < cout % n))
                .collect()
        }
    };
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
    isa: Isa,
    cout: usize,
    cin: usize,
    taps: usize,
    w: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let k = cin * taps;
    let mut out = vec![0.0; cout * k];
    for (o0, count) in blocks(cout, isa) {
        // Block `o0` starts at o0·k; within it, (c, t, o) with o fastest. Walking o outermost
        // reads each output's weights in order (for the plain layout).
        let dst = &mut out[o0 * k..][..count * k];
        for o in 0..count {
            let mut slots = dst.iter_mut().skip(o).step_by(count);
            for c in 0..cin {
                for t in 0..taps {
                    if let Some(d) = slots.next() {
                        *d = w(o0 + o, c, t);
                    }
                }
            }
        }
    }
    out
}

/// Where a correlation reads and writes: `src` holds `cin` planes of stride `s_in`, computed
/// column j (0 ≤ j < `len`) reads plane element `start + j + offs[t]`; `out` holds `cout` rows
/// of stride `s_out`, into which the computed columns go as `keep` says, each output row o
/// plus `bias[o]` when there is a bias.
pub(crate) struct Plan<'a> {
    pub(crate) cin: usize,
    pub(crate) s_in: usize,
    pub(crate) start: usize,
    pub(crate) offs: &'a [usize],
    pub(crate) cout: usize,
    pub(crate) s_out: usize,
    pub(crate) len: usize,
    pub(crate) keep: Keep,
    pub(crate) bias: Option<&'a [f32]>,
}

/// Which computed columns are output, and where: the columns run over rows of `wp` (padded
/// planes), of which columns `lo..lo + width` are kept, so that column j = r·wp + x with
/// lo ≤ x < lo + width goes to output element r·width + x − lo, and the others are dropped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keep {
    pub(crate) wp: usize,
    pub(crate) lo: usize,
    pub(crate) width: usize,
}

impl Keep {
    /// Whether computed column j is output element j.
    fn is_identity(&self) -> bool {
        self.lo == 0 && self.width == self.wp
    }

    /// Output elements that the first `len` computed columns fill.
    fn kept(&self, len: usize) -> usize {
        let part = (len % self.wp).saturating_sub(self.lo).min(self.width);
        len / self.wp * self.width + part
    }
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

/// Runs the correlation of [`Plan`] with weights packed by [`pack`] for the same `isa`,
/// writing every output element that `plan.keep` maps a column to (`out` may start
/// uninitialised). When `parallel` (a single image: nothing else to split), the output-channel
/// blocks, each cut into column ranges so that every thread gets several pieces, are split
/// over rayon's threads.
///
/// # Panics
/// If [`available`] is false, or a slice is shorter than the plan needs.
pub(crate) fn correlate(
    isa: Isa,
    plan: &Plan,
    packed: &[f32],
    src: &[f32],
    out: &mut [MaybeUninit<f32>],
    parallel: bool,
) {
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
        plan.cout == 0 || out.len() >= (plan.cout - 1) * plan.s_out + plan.keep.kept(plan.len),
        "conv2d_direct: output too short"
    );
    assert!(
        plan.keep.lo + plan.keep.width <= plan.keep.wp,
        "conv2d_direct: kept columns outside the row"
    );
    assert!(
        plan.bias.is_none_or(|b| b.len() >= plan.cout),
        "conv2d_direct: bias too short"
    );
    if plan.len == 0 {
        return;
    }
    let blocks = blocks(plan.cout, isa);
    let chunk = if parallel {
        column_chunk(plan.len, blocks.len())
    } else {
        plan.len
    };
    let pieces: Vec<(usize, usize, usize)> = blocks
        .iter()
        .flat_map(|&(o0, count)| (0..plan.len).step_by(chunk).map(move |j0| (o0, count, j0)))
        .collect();
    let y = OutPtr(out.as_mut_ptr().cast());
    let run = |&(o0, count, j0): &(usize, usize, usize)| {
        let cols = (j0, (j0 + chunk).min(plan.len));
        let w = &packed[o0 * k..][..count * k];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA (asserted; AVX-512F where `isa` says so), and the
        // asserts above bound every read and write the kernels make (see `Plan::src_needed`;
        // blocks write only the outputs of columns inside `len`, through `Keep`). Pieces write
        // disjoint rows or the outputs of disjoint column ranges of `out`.
        unsafe {
            let rows = y.get().add(o0 * plan.s_out);
            match isa {
                Isa::Avx2 => x86::avx2::rows(plan, (o0, count), w, src, rows, cols),
                Isa::Avx512 => x86::avx512::rows(plan, (o0, count), w, src, rows, cols),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (w, cols, &y);
    };
    #[cfg(feature = "rayon")]
    if parallel {
        use rayon::prelude::*;
        pieces.par_iter().for_each(run);
        return;
    }
    pieces.iter().for_each(run);
}

/// Columns per piece when one image's correlation is split over the threads: each of the
/// `blocks` output-channel blocks is cut so that there are about three pieces per thread, in
/// multiples of 32 columns (whole blocks of the kernel).
fn column_chunk(len: usize, blocks: usize) -> usize {
    #[cfg(feature = "rayon")]
    let threads = rayon::current_num_threads();
    #[cfg(not(feature = "rayon"))]
    let threads = 1;
    let per_block = (3 * threads).div_ceil(blocks.max(1));
    len.div_ceil(per_block).next_multiple_of(32).max(32)
}

/// The output buffer shared by the pieces of [`correlate`], which write disjoint parts of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: the pieces that share it write disjoint elements (see `correlate`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// Where a block's results go: output rows from `y` (stride `Plan::s_out`), its first
    /// column `j`, the columns left in its range `rest`, and its outputs' biases.
    #[derive(Clone, Copy)]
    pub(super) struct Out {
        pub(super) y: *mut f32,
        pub(super) j: usize,
        pub(super) rest: usize,
        pub(super) bias: Option<*const f32>,
    }

    /// One kernel per instruction set: `rows` runs the columns `cols` of `count` output rows
    /// `y` (row stride `plan.s_out`) in blocks of C outputs × V vectors (C and V from the
    /// table), from their packed weights `w`.
    macro_rules! kernel {
        ($name:ident, $features:literal, $vec:ty, $lanes:literal, $zero:ident, $set1:ident,
         $load:ident, $add:ident, $fma:ident, $store:ident, $copy:path,
         [$($p:pat => ($c:literal, $v:literal)),*]) => {
            pub(super) mod $name {
                use super::super::{MAX_PX, Plan};
                use super::Out;
                use core::arch::x86_64::*;

                type Block = unsafe fn(&Plan, *const f32, *const f32, Out);

                #[target_feature(enable = $features)]
                pub(in super::super) unsafe fn rows(
                    plan: &Plan,
                    (o0, count): (usize, usize),
                    w: &[f32],
                    src: &[f32],
                    y: *mut f32,
                    (j0, j1): (usize, usize),
                ) {
                    let (block, px): (Block, usize) = match count {
                        $($p => (block::<$c, $v>, $lanes * $v),)*
                    };
                    let x = unsafe { src.as_ptr().add(plan.start) };
                    let bias = plan.bias.map(|b| unsafe { b.as_ptr().add(o0) });
                    for j in (j0..j1).step_by(px) {
                        let out = Out { y, j, rest: j1 - j, bias };
                        unsafe { block(plan, x.add(j), w.as_ptr(), out) };
                    }
                }

                /// One block of `C` outputs × `V` vectors, columns `out.j..`; only the
                /// first `min(out.rest, lanes·V)` columns are output.
                #[target_feature(enable = $features)]
                unsafe fn block<const C: usize, const V: usize>(
                    plan: &Plan,
                    x: *const f32,
                    mut w: *const f32,
                    out: Out,
                ) {
                    let mut acc = [[$zero(); V]; C];
                    for c in 0..plan.cin {
                        let xc = unsafe { x.add(c * plan.s_in) };
                        for &off in plan.offs {
                            let p = unsafe { xc.add(off) };
                            let xv: [$vec; V] =
                                core::array::from_fn(|v| unsafe { $load(p.add($lanes * v)) });
                            for a in acc.iter_mut() {
                                let b = $set1(unsafe { *w });
                                for (av, &xv) in a.iter_mut().zip(&xv) {
                                    *av = $fma(b, xv, *av);
                                }
                                w = unsafe { w.add(1) };
                            }
                        }
                    }
                    if let Some(b) = out.bias {
                        for (o, a) in acc.iter_mut().enumerate() {
                            let bv = $set1(unsafe { *b.add(o) });
                            a.iter_mut().for_each(|av| *av = $add(*av, bv));
                        }
                    }
                    // Every loop over `acc` is unrolled (constant bounds, no calls), so that
                    // the accumulators stay in registers: a loop that indexes them at run time
                    // would keep a copy in memory, stored on every step of the loop above.
                    let n = out.rest.min($lanes * V);
                    if plan.keep.is_identity() && n == $lanes * V {
                        for (o, a) in acc.iter().enumerate() {
                            let row = unsafe { out.y.add(o * plan.s_out + out.j) };
                            for (v, av) in a.iter().enumerate() {
                                unsafe { $store(row.add($lanes * v), *av) };
                            }
                        }
                        return;
                    }
                    // Left uninitialised: the copies below read only the columns written here.
                    let mut tmp = [[core::mem::MaybeUninit::<f32>::uninit(); MAX_PX]; C];
                    for (t, a) in tmp.iter_mut().zip(&acc) {
                        for (v, av) in a.iter().enumerate() {
                            unsafe { $store(t.as_mut_ptr().add($lanes * v).cast(), *av) };
                        }
                    }
                    let keep = plan.keep;
                    let (r0, x0) = (out.j / keep.wp, out.j % keep.wp);
                    for (o, t) in tmp.iter().enumerate() {
                        let row = unsafe { out.y.add(o * plan.s_out) };
                        let (mut c, mut r, mut x) = (0, r0, x0);
                        while c < n {
                            // Columns c.. are x.. of padded row r, until its end.
                            let run = (n - c).min(keep.wp - x);
                            let (a, b) = (x.max(keep.lo), (x + run).min(keep.lo + keep.width));
                            if a < b {
                                let src = unsafe { t.as_ptr().add(c + a - x).cast::<f32>() };
                                let dst = unsafe { row.add(r * keep.width + a - keep.lo) };
                                // SAFETY: one row of b − a columns, inside `tmp` and
                                // inside the output row (the caller's bounds).
                                unsafe { $copy(src, 0, (1, b - a), dst, 0) };
                            }
                            (c, r, x) = (c + run, r + 1, 0);
                        }
                    }
                }
            }
        };
    }

    kernel!(avx2, "avx2,fma", __m256, 8, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps,
        _mm256_add_ps, _mm256_fmadd_ps, _mm256_storeu_ps,
        crate::ops::copy_rows_f32::x86::avx2,
        [1 => (1, 6), 2 => (2, 2), 3 => (3, 2), 4 => (4, 2), 5 => (5, 2), _ => (6, 2)]);
    kernel!(avx512, "avx512f,avx2,fma", __m512, 16, _mm512_setzero_ps, _mm512_set1_ps,
        _mm512_loadu_ps, _mm512_add_ps, _mm512_fmadd_ps, _mm512_storeu_ps,
        crate::ops::copy_rows_f32::x86::avx512,
        [1 => (1, 6), 2 => (2, 4), 3 => (3, 4), 4 => (4, 2), 5 => (5, 2), 6 => (6, 2),
         7 => (7, 2), 8 => (8, 2), 9 => (9, 2), 10 => (10, 2), 11 => (11, 2), _ => (12, 2)]);
}
