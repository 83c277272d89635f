//! Keeping freed tensor buffers in the process's heap.
//!
//! Every tensor operation of the CPU backend allocates its output, and most buffers of an image
//! model are larger than glibc's default `mmap` threshold (128 KiB, raised dynamically only up to
//! the size of the largest buffer freed so far). Each such buffer is then mapped fresh from the
//! kernel and unmapped when freed, so every operation pays page faults and the kernel's zeroing
//! of its pages: measured on the LArTPC generator (`scoregen sample`, 64 events of 64×64, DDIM
//! 5 steps, one thread), 3.1 s of system time out of 13.5 s. With the thresholds below the same
//! run took 8.2 s (1.0 s system), at the price of a peak resident size that is not handed back
//! to the system until the process exits.

/// Largest allocation glibc serves from its heap instead of `mmap` (its maximum on 64-bit
/// targets, 32 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Raises glibc's `mmap` and trim thresholds (`mallopt(3)`: `M_MMAP_THRESHOLD`,
/// `M_TRIM_THRESHOLD`) so that freed tensor buffers are reused instead of returned to the kernel,
/// and keeps every thread on the main heap (`M_ARENA_MAX` = 1). A thread's own arena is a
/// mapped heap of at most 64 MiB, so an image model's buffers allocated on rayon's threads
/// (the `scoregen` command runs there) outgrow it and are mapped one by one again: 37 000 page
/// faults per U-Net training step at batch 64, none with one arena.
/// Call once at start-up, before other threads allocate. Returns whether the settings took
/// effect; on other platforms it does nothing and returns false.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters (thread-safe in glibc), and both
        // values are within its documented ranges.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
                && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_thresholds() {
        let applied = super::keep_freed_memory();
        assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Allocations keep working (above and below the threshold) after the change.
        let big = vec![1u8; 40 << 20];
        let small = vec![2u8; 1 << 20];
        assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 40 << 20);
        assert_eq!(small[12345], 2);
    }
}
