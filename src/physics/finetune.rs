//! A physics term for fine-tuning a generator: SSNet's track and shower fractions of the denoised
//! estimate x̂₀ = (x_t − s(t) ε_θ)/m(t) (Tweedie) should match those of the data x₀, weighted by
//! charge or by (soft) pixel counts. Added to the score-matching loss through
//! [`crate::train::AuxLoss`].

use burn::module::Module;
use burn::tensor::{
    activation::relu, activation::sigmoid, activation::softmax, backend::AutodiffBackend, Tensor,
};

use super::ssnet::Ssnet;
use crate::losses::{perturb, TimeSampler};
use crate::rng::Rng;
use crate::score::{time_column, EpsModel};
use crate::sde::Sde;
use crate::train::AuxLoss;

/// Charge-weighted class fractions `[n, 3]` of events `pixels: [n, S²]` (values in [0, 1]):
/// f_c = Σ_p q_p P_c(p) / (Σ_p q_p + 10⁻⁶), q = relu(pixel), P = softmax of SSNet's logits.
pub fn charge_fractions<B: burn::tensor::backend::Backend>(
    net: &Ssnet<B>,
    pixels: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let q = relu(pixels.clone());
    weighted_fractions(net, pixels, q)
}

/// Σ_p w_p P_c(p) / (Σ_p w_p + 10⁻⁶) `[n, 3]` for pixel weights `w: [n, S²]`, P = softmax of
/// SSNet's logits on `pixels`.
fn weighted_fractions<B: burn::tensor::backend::Backend>(
    net: &Ssnet<B>,
    pixels: Tensor<B, 2>,
    w: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [n, s2] = pixels.dims();
    let probs = softmax(net.logits(pixels), 1).reshape([n, 3, s2]);
    let weighted = (probs * w.clone().reshape([n, 1, s2]))
        .sum_dim(2)
        .reshape([n, 3]);
    weighted / (w.sum_dim(1) + 1e-6)
}

/// Soft pixel-count class fractions `[n, 3]` of events `pixels: [n, S²]` (values in [0, 1]):
/// f_c = Σ_p w_p P_c(p) / (Σ_p w_p + 10⁻⁶) with the soft readout indicator
/// w_p = sigmoid((q_p − θ)/τ), θ the readout threshold and τ = θ/10 (an empty pixel weighs
/// sigmoid(−10) ≈ 4.5·10⁻⁵), P = softmax of SSNet's logits. A pixel counts once whatever its
/// charge above θ, as in the per-event track- and shower-pixel counts `physics eval` compares, so
/// brightening an event cannot lower the term.
pub fn count_fractions<B: burn::tensor::backend::Backend>(
    net: &Ssnet<B>,
    pixels: Tensor<B, 2>,
    threshold: f64,
) -> Tensor<B, 2> {
    let tau = threshold / 10.0;
    let w = sigmoid(pixels.clone().sub_scalar(threshold).div_scalar(tau));
    weighted_fractions(net, pixels, w)
}

/// What the physics term weights SSNet's class probabilities by.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Measure {
    /// Pixel charge ([`charge_fractions`]).
    #[default]
    Charge,
    /// Soft pixel counts above this readout threshold ([`count_fractions`]).
    Count(f64),
}

impl Measure {
    /// Class fractions `[n, 3]` of `pixels` under this measure.
    pub fn fractions<B: burn::tensor::backend::Backend>(
        self,
        net: &Ssnet<B>,
        pixels: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        match self {
            Measure::Charge => charge_fractions(net, pixels),
            Measure::Count(threshold) => count_fractions(net, pixels, threshold),
        }
    }
}

/// The physics term λ·E_t[m(t)² Σ_{c ∈ track, shower} (f_c(x̂₀) − f_c(x₀))²], f the class
/// fractions of its [`Measure`], t drawn by its [`TimeSampler`]; the weight m(t)² discounts high
/// noise levels, where x̂₀ is a blurred mean.
pub struct PhysicsTerm<B: AutodiffBackend> {
    /// SSNet, frozen (its parameters get no gradient).
    pub ssnet: Ssnet<B>,
    /// λ.
    pub weight: f64,
    /// Charge- or count-weighted fractions.
    pub measure: Measure,
    /// How the term draws its diffusion times (uniform in t unless [`Self::with_times`]).
    pub times: TimeSampler,
}

impl<B: AutodiffBackend> PhysicsTerm<B> {
    /// The term for a frozen copy of `ssnet`.
    pub fn new(ssnet: Ssnet<B>, weight: f64, measure: Measure) -> Self {
        PhysicsTerm {
            ssnet: ssnet.no_grad(),
            weight,
            measure,
            times: TimeSampler::Uniform,
        }
    }

    /// The term drawing its times from `times` (e.g. the score loss's own log-normal σ).
    pub fn with_times(self, times: TimeSampler) -> Self {
        PhysicsTerm { times, ..self }
    }

    /// m(t)²-weighted squared track/shower fraction differences, per event `[n, 1]`, between
    /// denoised estimates and data (both in the model's [−1, 1] pixel scale).
    pub fn mismatch(&self, x0_hat: Tensor<B, 2>, x0: Tensor<B, 2>) -> Tensor<B, 2> {
        let to_pixels = |x: Tensor<B, 2>| x.add_scalar(1.0).mul_scalar(0.5);
        let f_hat = self.measure.fractions(&self.ssnet, to_pixels(x0_hat));
        let f = self.measure.fractions(&self.ssnet, to_pixels(x0)).detach();
        let n = f.dims()[0];
        (f_hat - f).slice([0..n, 1..3]).powi_scalar(2).sum_dim(1)
    }
}

impl<B: AutodiffBackend> AuxLoss<B> for PhysicsTerm<B> {
    fn loss(
        &self,
        model: &dyn EpsModel<B>,
        sde: &dyn Sde,
        x0: Tensor<B, 2>,
        rng: &mut Rng,
    ) -> Tensor<B, 1> {
        let n = x0.dims()[0];
        let device = x0.device();
        let times = self.times.sample(sde, n, rng);
        let (xt, _, t_col) = perturb(sde, x0.clone(), &times, rng);
        let eps = model.eps(xt.clone(), t_col);
        let std = time_column::<B>(&times, |t| sde.std(t), &device);
        let mean = time_column::<B>(&times, |t| sde.mean_factor(t), &device);
        let x0_hat = (xt - eps * std) / mean.clone();
        (self.mismatch(x0_hat, x0) * mean.powi_scalar(2))
            .mean()
            .mul_scalar(self.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::ssnet::SsnetConfig;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::activation;

    type A = Autodiff<Flex>;

    /// An untrained SSNet for 8×8 events with weights from a fixed seed (burn's initialisers
    /// draw from the backend's global RNG, which tests running in parallel share): each weight
    /// array N(0, 1/fan-in), each random vector (conv biases) N(0, 0.1²), constant vectors
    /// (GroupNorm scales and shifts) kept.
    fn tiny_ssnet<B: burn::tensor::backend::Backend>(dev: &B::Device) -> Ssnet<B> {
        let net = SsnetConfig {
            size: 8,
            base: 8,
            levels: 2,
        }
        .init::<B>(dev);
        let mut rng = Rng::new(11);
        crate::train::params::map_named(net, &mut |_, flat, shape| {
            let v = crate::tensor::to_vec(flat);
            let scale = match shape {
                [_] if v.iter().all(|&x| x == v[0]) => return None,
                [_] => 0.1,
                [_, rest @ ..] => 1.0 / (rest.iter().product::<usize>() as f64).sqrt(),
                [] => return None,
            };
            let n = v.len();
            Some(
                crate::tensor::randn::<B>(&mut rng, 1, n, dev)
                    .reshape([n])
                    .mul_scalar(scale),
            )
        })
    }

    #[test]
    fn fractions_are_charge_weighted_class_probabilities() {
        let dev = Default::default();
        let net = tiny_ssnet::<Flex>(&dev);
        let mut rng = Rng::new(1);
        let px: Vec<f32> = (0..2 * 64).map(|_| rng.uniform() as f32).collect();
        let x = crate::tensor::from_rows::<Flex>(px.clone(), 2, 64, &dev);
        let f = crate::tensor::to_vec(charge_fractions(&net, x.clone()));
        let p = crate::tensor::to_vec(activation::softmax(net.logits(x), 1));
        for e in 0..2 {
            let q: f64 = px[e * 64..(e + 1) * 64].iter().map(|&v| v as f64).sum();
            for c in 0..3 {
                let num: f64 = (0..64)
                    .map(|k| px[e * 64 + k] as f64 * p[(e * 3 + c) * 64 + k] as f64)
                    .sum();
                assert!((f[e * 3 + c] as f64 - num / (q + 1e-6)).abs() < 1e-5);
            }
            let total: f32 = f[e * 3..e * 3 + 3].iter().sum();
            assert!((total - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn count_fractions_are_hard_counts_away_from_the_threshold() {
        let dev = Default::default();
        let net = tiny_ssnet::<Flex>(&dev);
        let mut rng = Rng::new(3);
        // Empty pixels, or lit well above the 0.02 threshold.
        let px: Vec<f32> = (0..2 * 64)
            .map(|_| {
                let u = rng.uniform();
                if u < 0.6 {
                    0.0
                } else {
                    (0.1 + u) as f32 / 1.6
                }
            })
            .collect();
        let x = crate::tensor::from_rows::<Flex>(px.clone(), 2, 64, &dev);
        let f = crate::tensor::to_vec(count_fractions(&net, x.clone(), 0.02));
        let fc = crate::tensor::to_vec(charge_fractions(&net, x.clone()));
        let p = crate::tensor::to_vec(activation::softmax(net.logits(x), 1));
        let mut differs = 0.0f64;
        for e in 0..2 {
            let lit: Vec<usize> = (0..64).filter(|&k| px[e * 64 + k] > 0.0).collect();
            for c in 0..3 {
                let hard = lit
                    .iter()
                    .map(|&k| p[(e * 3 + c) * 64 + k] as f64)
                    .sum::<f64>()
                    / lit.len() as f64;
                let got = f[e * 3 + c] as f64;
                assert!(
                    (got - hard).abs() < 1e-3,
                    "event {e} class {c}: {got} vs {hard}"
                );
                differs += (got - fc[e * 3 + c] as f64).abs();
            }
        }
        // Charge weighting is a different measure on the same events.
        assert!(differs > 1e-3, "{differs}");
    }

    #[test]
    fn mismatch_vanishes_at_the_data_and_its_gradient_is_finite_difference() {
        let dev = Default::default();
        for (measure, h) in [(Measure::Charge, 1e-2f32), (Measure::Count(0.02), 1e-3)] {
            let net = tiny_ssnet::<A>(&dev);
            let term = PhysicsTerm::new(net, 1.0, measure);
            let mut rng = Rng::new(2);
            let x0: Vec<f32> = (0..64).map(|_| 2.0 * rng.uniform() as f32 - 1.0).collect();
            let t = |v: Vec<f32>| crate::tensor::from_rows::<A>(v, 1, 64, &dev);
            let zero = crate::tensor::scalar(term.mismatch(t(x0.clone()), t(x0.clone())).sum());
            assert!(zero.abs() < 1e-12, "{measure:?}: {zero}");
            // d mismatch / d x̂₀[k] against central differences.
            let mut xh = x0.clone();
            for (i, v) in xh.iter_mut().enumerate() {
                *v = (*v + 0.3 * ((i % 5) as f32 - 2.0)).clamp(-1.0, 1.0);
            }
            let xt = t(xh.clone()).require_grad();
            let m = term.mismatch(xt.clone(), t(x0.clone())).sum();
            assert!(crate::tensor::scalar(m.clone()) > 1e-6, "{measure:?}");
            let g = crate::tensor::to_vec(xt.grad(&m.backward()).unwrap());
            let f = |v: Vec<f32>| crate::tensor::scalar(term.mismatch(t(v), t(x0.clone())).sum());
            for k in [3, 17, 40] {
                let (mut up, mut dn) = (xh.clone(), xh.clone());
                up[k] += h;
                dn[k] -= h;
                let fd = (f(up) - f(dn)) / (2.0 * h as f64);
                assert!(
                    (g[k] as f64 - fd).abs() < 2e-3 + 0.05 * fd.abs(),
                    "{measure:?} k {k}: {} vs {fd}",
                    g[k]
                );
            }
        }
    }

    /// ε ≡ 0, so x̂₀ = x_t/m(t) = x₀ + (s(t)/m(t)) z: the further t, the noisier the estimate.
    struct ZeroEps;

    impl EpsModel<A> for ZeroEps {
        fn eps(&self, x: Tensor<A, 2>, _t: Tensor<A, 2>) -> Tensor<A, 2> {
            x.zeros_like()
        }
    }

    #[test]
    fn the_term_draws_its_times_from_its_sampler() {
        let dev = Default::default();
        let net = tiny_ssnet::<A>(&dev);
        let sde = crate::sde::SdeSpec::default_for("vp")
            .unwrap()
            .build()
            .unwrap();
        let mut rng = Rng::new(3);
        let x0: Vec<f32> = (0..16 * 64)
            .map(|i| if i % 7 < 2 { 0.6 } else { -1.0 })
            .collect();
        let x0 = crate::tensor::from_rows::<A>(x0, 16, 64, &dev);
        let term = PhysicsTerm::new(net, 1.0, Measure::Count(0.02));
        let mean_loss = |term: &PhysicsTerm<A>, rng: &mut Rng| {
            (0..4)
                .map(|_| crate::tensor::scalar(term.loss(&ZeroEps, sde.as_ref(), x0.clone(), rng)))
                .sum::<f64>()
                / 4.0
        };
        let uniform = mean_loss(&term, &mut rng);
        // ln σ ≈ −9: σ at the SDE's smallest, x̂₀ ≈ x₀, the term ≈ 0.
        let low = term.with_times(TimeSampler::Lognormal {
            p_mean: -9.0,
            p_std: 0.1,
        });
        let near = mean_loss(&low, &mut rng);
        assert!(uniform > 1e-4, "{uniform}");
        assert!(near < 0.05 * uniform, "{near} vs {uniform}");
    }
}
