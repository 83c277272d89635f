//! Element-wise loops split over rayon's threads (scoregen patch).
//!
//! burn-flex runs its unary, binary and scalar element-wise kernels on one thread, so on a
//! multi-core CPU every activation, residual add and normalisation pass of a network stays
//! serial while the GEMMs around it use all cores. These helpers cut a flat buffer into
//! contiguous chunks and run a kernel on each chunk in parallel when the buffer is large
//! enough to repay the task dispatch; below [`ELEMENTWISE_PARALLEL_THRESHOLD`] elements (or
//! without the `rayon` feature) the kernel runs once over the whole buffer, exactly as before.

use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// Smallest buffer (in elements) whose element-wise loop is split over threads: 32 Ki f32 is
/// 128 KiB, some tens of microseconds of memory traffic, against a few microseconds of rayon
/// dispatch.
pub(crate) const ELEMENTWISE_PARALLEL_THRESHOLD: usize = 32 * 1024;

/// Elements per chunk for a buffer of `n` elements whose chunks must start at multiples of
/// `align`: about four chunks per thread (for load balance), at least 16 Ki elements.
#[cfg(feature = "rayon")]
fn chunk_len(n: usize, align: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let target = n.div_ceil(4 * threads).max(16 * 1024);
    target.div_ceil(align) * align
}

/// Runs `kernel(offset, chunk)` over consecutive chunks of `dst` covering it exactly, in
/// parallel for large buffers. Every chunk starts at a multiple of `align` (≥ 1), so a kernel
/// that walks rows of `align` elements never sees a split row; `offset` is the chunk's
/// position in `dst`, for indexing other buffers of the same layout.
pub(crate) fn for_each_chunk<T, K>(dst: &mut [T], align: usize, kernel: K)
where
    T: Send,
    K: Fn(usize, &mut [T]) + Sync,
{
    let align = align.max(1);
    #[cfg(feature = "rayon")]
    if dst.len() >= ELEMENTWISE_PARALLEL_THRESHOLD && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        let chunk = chunk_len(dst.len(), align);
        dst.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| vectorised(|| kernel(i * chunk, c)));
        return;
    }
    let _ = align;
    vectorised(|| kernel(0, dst));
}

/// Runs `f` in a copy compiled for the widest vector instructions this CPU has (x86-64:
/// AVX-512F, else AVX2 + FMA, detected at run time; elsewhere, or without `std`, as it is).
///
/// The crate is compiled for baseline x86-64 (SSE2), so an element loop around an inlined
/// closure (`sigmoid_f32`, SiLU's and other gradients, scalar operations) ran on 4-lane
/// registers even on AVX-512 CPUs. `f` is inlined into the chosen copy and vectorised for its
/// instruction set. Without fast-math the compiler neither contracts nor reorders floating-point
/// operations, so every copy computes bit-identical results; only the register width differs.
#[inline(always)]
pub(crate) fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU has every feature `avx512` is compiled for (AVX-512 CPUs have
            // AVX2 and FMA).
            return unsafe { avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// `op` applied in place to every element of `dst`.
pub(crate) fn map_inplace<T, Op>(dst: &mut [T], op: Op)
where
    T: Copy + Send,
    Op: Fn(T) -> T + Sync,
{
    for_each_chunk(dst, 1, |_, c| {
        for x in c.iter_mut() {
            *x = op(*x);
        }
    });
}

/// `dst[i] = op(dst[i], rhs[i])` for every element (`rhs` at least as long as `dst`).
pub(crate) fn zip_inplace<T, R, Op>(dst: &mut [T], rhs: &[R], op: Op)
where
    T: Copy + Send,
    R: Copy + Sync,
    Op: Fn(T, R) -> T + Sync,
{
    let rhs = &rhs[..dst.len()];
    for_each_chunk(dst, 1, |off, c| {
        let len = c.len();
        for (x, &r) in c.iter_mut().zip(&rhs[off..off + len]) {
            *x = op(*x, r);
        }
    });
}

/// A new vector of `n` elements written chunk by chunk by `fill(offset, chunk)`, which must
/// write every element of its chunk.
fn collect_with<R, F>(n: usize, fill: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, &mut [MaybeUninit<R>]) + Sync,
{
    let mut out = Vec::with_capacity(n);
    for_each_chunk(&mut out.spare_capacity_mut()[..n], 1, fill);
    // SAFETY: the callers below write every element of every chunk, and the chunks cover
    // 0..n exactly (`for_each_chunk`).
    unsafe { out.set_len(n) };
    out
}

/// `src.map(op)` into a new vector.
pub(crate) fn map_collect<E, R, Op>(src: &[E], op: Op) -> Vec<R>
where
    E: Copy + Sync,
    R: Send,
    Op: Fn(E) -> R + Sync,
{
    collect_with(src.len(), |off, c| {
        let len = c.len();
        for (o, &x) in c.iter_mut().zip(&src[off..off + len]) {
            o.write(op(x));
        }
    })
}

/// `lhs.zip(rhs).map(op)` into a new vector (`rhs` at least as long as `lhs`).
pub(crate) fn zip_collect<E, F, R, Op>(lhs: &[E], rhs: &[F], op: Op) -> Vec<R>
where
    E: Copy + Sync,
    F: Copy + Sync,
    R: Send,
    Op: Fn(E, F) -> R + Sync,
{
    let rhs = &rhs[..lhs.len()];
    collect_with(lhs.len(), |off, c| {
        let l = &lhs[off..off + c.len()];
        let r = &rhs[off..off + c.len()];
        for ((o, &a), &b) in c.iter_mut().zip(l).zip(r) {
            o.write(op(a, b));
        }
    })
}
