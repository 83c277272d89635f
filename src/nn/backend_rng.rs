//! One user at a time for the backend's random-number generator.
//!
//! burn's backends draw every random tensor (parameter initialisation, dropout masks) from one
//! process-wide generator that `Backend::seed` resets, and burn initialises parameters lazily,
//! at their first use. A seeded initialisation is therefore reproducible only if nothing else
//! draws between the seed and the last parameter's first use: another training in the same
//! process, or a concurrent test, would shift its stream. scoregen makes every draw inside
//! [`exclusive`], and its network constructors [`materialised`] every parameter before they
//! return, so `seed → build` is one uninterrupted sequence.

use std::cell::Cell;
use std::sync::{Mutex, PoisonError};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Bool, Int, Tensor};

static BACKEND_RNG: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread holds [`BACKEND_RNG`] (the lock is re-entrant per thread).
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` while no other thread draws from the backend's generator. Re-entrant: a nested
/// call on the same thread runs `f` directly.
pub fn exclusive<T>(f: impl FnOnce() -> T) -> T {
    if HELD.with(Cell::get) {
        return f();
    }
    let _guard = BACKEND_RNG.lock().unwrap_or_else(PoisonError::into_inner);
    /// Clears [`HELD`] before the guard unlocks, also when `f` panics.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            HELD.with(|h| h.set(false));
        }
    }
    HELD.with(|h| h.set(true));
    let _release = Release;
    f()
}

/// Seeds the backend's generator with `seed` and runs `f` (which draws from it) before anyone
/// else draws: the same seed gives the same draws whatever other threads do.
pub fn seeded<B: Backend, T>(device: &B::Device, seed: u64, f: impl FnOnce() -> T) -> T {
    exclusive(|| {
        B::seed(device, seed);
        f()
    })
}

/// `module` with every lazily initialised parameter drawn now (in field order), so that
/// its initial values do not depend on when it is first used.
pub fn materialised<B: Backend, M: Module<B>>(module: M) -> M {
    exclusive(|| module.visit(&mut Touch));
    module
}

/// Reads every parameter once, which initialises it.
struct Touch;

impl<B: Backend> ModuleVisitor<B> for Touch {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        let _ = param.val();
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        let _ = param.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{DiscriminatorConfig, UNetConfig};
    use crate::train::params::named_params;
    use burn::backend::{Autodiff, Flex};

    fn tiny_unet() -> UNetConfig {
        crate::nn::tiny_unet(8, 8, 0)
    }

    #[test]
    fn constructors_initialise_every_parameter() {
        let net = tiny_unet().init::<Flex>(3, &Default::default());
        let mut seen = 0;
        struct Count<'a>(&'a mut usize, bool);
        impl<B: Backend> ModuleVisitor<B> for Count<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
                *self.0 += 1;
                self.1 &= p.is_initialized();
            }
        }
        let mut count = Count(&mut seen, true);
        net.visit(&mut count);
        let all = count.1;
        assert!(
            seen > 20 && all,
            "{seen} parameters, all initialised: {all}"
        );
    }

    #[test]
    fn seeded_initialisation_ignores_concurrent_draws() {
        // A second thread keeps building unseeded networks and drawing dropout masks (both
        // take from the shared generator) while this one builds the same seeded network
        // again and again: every copy must be identical, and a different seed must differ.
        let dev = Default::default();
        let weights = |seed: u64| {
            named_params(&tiny_unet().init::<Flex>(seed, &dev))
                .into_iter()
                .flat_map(|(_, t)| t.data)
                .collect::<Vec<f32>>()
        };
        let reference = weights(11);
        assert_ne!(reference, weights(12), "the seed must matter");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let cfg = DiscriminatorConfig {
                    channels: 1,
                    height: 8,
                    width: 8,
                    base: 8,
                    classes: 0,
                };
                let unet = UNetConfig {
                    dropout: 0.5,
                    ..tiny_unet()
                }
                .init::<Autodiff<Flex>>(5, &dev);
                let x = Tensor::<Autodiff<Flex>, 4>::ones([2, 1, 8, 8], &dev);
                let t = Tensor::<Autodiff<Flex>, 2>::ones([2, 1], &dev);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = cfg.init::<Flex>(&dev);
                    let _ = unet.forward(x.clone(), t.clone(), None);
                }
            });
            let same: Vec<bool> = (0..6).map(|_| weights(11) == reference).collect();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(
                same.iter().all(|&s| s),
                "the seeded network changed in rounds {same:?}"
            );
        });
    }
}
