//! `scoregen::runtime::run` in a process of its own (rayon's pool is not yet running): the work
//! runs on a worker thread whose stack is as deep as a main thread's.

/// Recursion `n` deep with a 1 KiB frame each (kept alive across the call), returning `n`.
fn depth(n: usize) -> usize {
    let frame = [n as u8; 1024];
    if n == 0 {
        return 0;
    }
    let below = depth(n - 1);
    std::hint::black_box(&frame);
    below + 1
}

#[test]
fn run_gives_the_work_a_worker_with_a_deep_stack() {
    // About 6 MiB of frames: more than rayon's default 2 MiB worker stack.
    let n = 6 * 1024;
    let (worker, reached) = scoregen::runtime::run(|| (rayon::current_thread_index(), depth(n)));
    assert!(worker.is_some(), "the work did not run on a rayon worker");
    assert_eq!(reached, n);
}
