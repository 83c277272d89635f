//! Process set-up for fast CPU runs: freed tensor buffers kept in the heap
//! ([`crate::allocator`]) and the work run on rayon's thread pool.
//!
//! The flex backend parallelises each tensor operation with rayon. Called from a thread outside
//! the pool (a program's main thread), every such operation is injected into the pool while the
//! caller sleeps on a futex until a worker wakes it: a few microseconds of system calls and
//! scheduling per operation, a quarter of a U-Net training step at batch 1 (`perf`: the
//! kernel's `try_to_wake_up`, `finish_task_switch`, `sched_yield`). Run from a worker, the
//! operation's parallel loop is a local job that the caller starts at once and the other
//! workers steal. Measured on the 2-core development machine (`scoregen bench`, BENCHMARKS.md):
//! U-Net training step 1.1× faster at batch 16 and 64, 1.3× at batch 1.

/// Stack of each of rayon's worker threads when [`run`] starts the pool: a program's main thread
/// usually has 8 MiB and rayon's default is 2 MiB, while the whole command now runs on a worker
/// (dropping a long autodiff graph recurses through its nodes). Only touched pages use memory.
const WORKER_STACK: usize = 16 << 20;

/// Runs `f` on one of rayon's worker threads and returns its result, after
/// [`crate::allocator::keep_freed_memory`] (which must precede the pool's first allocation).
/// Starts rayon's global pool with `WORKER_STACK` stacks unless it is already running (its
/// size still follows `RAYON_NUM_THREADS`). Programs call it once, around their whole body;
/// `scoregen`'s binary and benchmarks do.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    crate::allocator::keep_freed_memory();
    // An error only means the pool already exists; it is used as it is.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK)
        .build_global();
    rayon::scope(|_| f())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_on_a_worker_and_returns_the_result() {
        assert_eq!(rayon::current_thread_index(), None);
        let (inside, value) = super::run(|| (rayon::current_thread_index(), 6 * 7));
        assert!(inside.is_some(), "not on a worker thread");
        assert_eq!(value, 42);
    }
}
