//! Seeded, serialisable random numbers (xoshiro256++, Blackman & Vigna 2019).
//!
//! All randomness in scoregen is drawn on the host from this generator and uploaded, so a run is
//! reproducible from its seed on any backend, and the generator state can be stored in a
//! checkpoint to resume training exactly.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Normal draws per independent stream of [`Rng::normal_vec`]: larger draws are split into
/// blocks of this many values, each from its own stream, generated in parallel.
pub const NORMAL_BLOCK: usize = 1 << 16;

/// xoshiro256++ pseudo-random generator with Gaussian and Rademacher helpers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded through SplitMix64, as the xoshiro authors recommend.
    pub fn new(seed: u64) -> Self {
        let mut st = seed;
        let s = [
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
        ];
        Rng { s }
    }

    /// An independent stream derived from this generator (advances `self`).
    pub fn fork(&mut self) -> Self {
        Rng::new(self.next_u64())
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (n > 0), by Lemire's multiply-shift (bias < 2⁻⁶⁴·n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal draw (Box–Muller; one of the pair is discarded to keep the state small).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `n` standard normal draws as f32 (Box–Muller, both of each pair).
    ///
    /// Up to [`NORMAL_BLOCK`] values come from this stream. A larger draw (the noise of a
    /// sampler step over a batch of images: about 18 ns a value on one core) takes one seed per
    /// block of [`NORMAL_BLOCK`] values from this stream and fills the blocks from their own
    /// streams on rayon's threads, so that it is the same for any number of threads and costs
    /// the host a fraction of the time while a GPU runs the previous step.
    pub fn normal_vec(&mut self, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; n];
        if n <= NORMAL_BLOCK {
            self.fill_normal(&mut out);
        } else {
            let seeds: Vec<u64> = (0..n.div_ceil(NORMAL_BLOCK))
                .map(|_| self.next_u64())
                .collect();
            out.par_chunks_mut(NORMAL_BLOCK)
                .zip(seeds)
                .for_each(|(block, seed)| Rng::new(seed).fill_normal(block));
        }
        out
    }

    /// Fills `out` with standard normal draws from this stream.
    fn fill_normal(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let u1 = 1.0 - self.uniform();
            let u2 = self.uniform();
            let r = (-2.0 * u1.ln()).sqrt();
            let a = std::f64::consts::TAU * u2;
            pair[0] = (r * a.cos()) as f32;
            if let Some(second) = pair.get_mut(1) {
                *second = (r * a.sin()) as f32;
            }
        }
    }

    /// `n` Rademacher draws (±1 with probability ½ each) as f32.
    pub fn rademacher_vec(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut bits = self.next_u64();
            for _ in 0..64 {
                if out.len() == n {
                    break;
                }
                out.push(if bits & 1 == 1 { 1.0 } else { -1.0 });
                bits >>= 1;
            }
        }
        out
    }

    /// A uniformly random permutation of 0..n (Fisher–Yates, from the back).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            idx.swap(i, self.below(i + 1));
        }
        idx
    }

    /// `m` distinct indices below `n`, uniformly (a partial Fisher–Yates shuffle: only m draws).
    pub fn distinct(&mut self, n: usize, m: usize) -> Vec<usize> {
        let m = m.min(n);
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..m {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(m);
        idx
    }

    /// `n` uniform draws in [lo, hi) as f64.
    pub fn uniform_vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| lo + (hi - lo) * self.uniform()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_moments_match_standard_normal() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let v = rng.normal_vec(n);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = v.iter().map(|&x| (x as f64 - mean).powi(4)).sum::<f64>() / n as f64;
        // Standard errors: mean 1/sqrt(n) = 0.0022, var sqrt(2/n) = 0.0032, 4th moment sqrt(96/n) = 0.022.
        assert!(mean.abs() < 0.011, "mean {mean}");
        assert!((var - 1.0).abs() < 0.016, "var {var}");
        assert!((kurt - 3.0).abs() < 0.11, "kurtosis {kurt}");
    }

    #[test]
    fn large_normal_draws_are_independent_blocks_whatever_the_threads() {
        let n = 3 * NORMAL_BLOCK + 1_001;
        let draw = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut rng = Rng::new(5);
            let v = pool.install(|| rng.normal_vec(n));
            (v, rng)
        };
        let (one, after) = draw(1);
        let (four, _) = draw(4);
        assert_eq!(one, four);
        // Each block is the stream of one seed taken from the generator, which moved on by
        // one draw per block.
        let mut rng = Rng::new(5);
        let seeds: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(rng, after);
        let last = Rng::new(seeds[3]).normal_vec(1_001);
        assert_eq!(&one[3 * NORMAL_BLOCK..], &last[..]);
        // A draw of one block or less is this stream itself.
        assert_eq!(
            Rng::new(seeds[1]).normal_vec(NORMAL_BLOCK),
            one[NORMAL_BLOCK..2 * NORMAL_BLOCK]
        );
        // Neighbouring blocks are uncorrelated (standard error 1/256).
        let (a, b) = (&one[..NORMAL_BLOCK], &one[NORMAL_BLOCK..2 * NORMAL_BLOCK]);
        let r = a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>() / NORMAL_BLOCK as f64;
        assert!(r.abs() < 0.016, "correlation {r}");
    }

    #[test]
    fn state_roundtrip_resumes_the_same_stream() {
        let mut a = Rng::new(3);
        a.normal_vec(11);
        let json = serde_json::to_string(&a).unwrap();
        let mut b: Rng = serde_json::from_str(&json).unwrap();
        assert_eq!(a.normal_vec(5), b.normal_vec(5));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn below_and_rademacher_are_balanced() {
        let mut rng = Rng::new(9);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[rng.below(5)] += 1;
        }
        // Each count ~ Binomial(50000, 0.2): sd = 89.
        for c in counts {
            assert!((c as f64 - 10_000.0).abs() < 450.0, "{counts:?}");
        }
        let r = rng.rademacher_vec(10_000);
        let s: f32 = r.iter().sum();
        assert!(s.abs() < 500.0 && r.iter().all(|&x| x == 1.0 || x == -1.0));
    }
}
