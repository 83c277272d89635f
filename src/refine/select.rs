//! Discriminator rejection sampling (Azadi et al. 2019, "Discriminator Rejection Sampling",
//! ICLR): a discriminator's logit ℓ(x) = log(d/(1 − d)) estimates log p_data(x)/p_model(x), so
//! keeping each of a model's samples with probability e^{ℓ(x) − M} turns samples of p_model into
//! samples of p_data when M ≥ max ℓ (rejection sampling with the envelope e^M·p_model; the
//! expected fraction kept is e^{−M}). A bound M below the largest logit, a quantile of the pool's
//! logits as Azadi et al.'s shift γ does, keeps more samples at the cost of exactness: samples
//! with ℓ ≥ M are all kept.

use burn::tensor::backend::Backend;

use super::train::{check_set, logits_of};
use super::{InputScale, Labelled};
use crate::error::{Error, Result};
use crate::nn::Discriminator;
use crate::rng::Rng;
use crate::sde::Sde;
use crate::tensor::to_vec;

/// Images judged per forward pass.
const CHUNK: usize = 256;

/// Most perturbations per image whose logits [`judge`] averages.
pub const MAX_DRAWS: usize = 1000;

/// The logit ℓ = log(d/(1 − d)) of every image of `set` (the generator's standardised rows),
/// perturbed by `sde` to the noise level σ = s(t)/m(t) = `sigma` and averaged over `draws`
/// perturbations (seeded by `seed`): the discriminator is trained on noised states, so a small σ
/// judges the clean image as the network learned to.
#[allow(clippy::too_many_arguments)]
pub fn judge<B: Backend>(
    net: &Discriminator<B>,
    sde: &dyn Sde,
    scale: InputScale,
    set: Labelled,
    sigma: f64,
    draws: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Vec<f32>> {
    Error::require_positive("noise level sigma", sigma)?;
    let top = sde.edm_sigma(sde.t_end());
    if sigma > top {
        return Err(Error::config(
            "noise level sigma",
            format!("{sigma} is above the SDE's largest noise level {top:.4}"),
        ));
    }
    if !(1..=MAX_DRAWS).contains(&draws) {
        return Err(Error::config(
            "draws",
            format!("{draws}: between 1 and {MAX_DRAWS} perturbations per image"),
        ));
    }
    let d = net.image_shape().iter().product::<usize>();
    let n = check_set(set, d, net.num_classes(), "samples to judge", 1)?;
    let t = sde.t_from_edm_sigma(sigma);
    let mut rng = Rng::new(seed);
    let mut sum = vec![0.0f64; n];
    let all: Vec<usize> = (0..n).collect();
    for _ in 0..draws {
        for idx in all.chunks(CHUNK) {
            let times = vec![t; idx.len()];
            let l = to_vec(logits_of(
                net, sde, scale, set, idx, &times, &mut rng, device,
            ));
            for (&i, v) in idx.iter().zip(l) {
                sum[i] += v as f64;
            }
        }
    }
    let logits: Vec<f32> = sum.iter().map(|s| (s / draws as f64) as f32).collect();
    match logits.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::config(
            "discriminator",
            format!("logit of image {i} is {} (a diverged network?)", logits[i]),
        )),
        None => Ok(logits),
    }
}

/// The bound M of the acceptance probability e^{ℓ − M}: the `quantile` of `logits` (linear
/// interpolation between order statistics; 1 is the largest logit, the exact rule).
pub fn logit_bound(logits: &[f32], quantile: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&quantile) {
        return Err(Error::config(
            "quantile",
            format!("{quantile}: must lie in [0, 1]"),
        ));
    }
    if logits.is_empty() || logits.iter().any(|v| !v.is_finite()) {
        return Err(Error::config("logits", "need finite logits, at least one"));
    }
    let mut s: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    s.sort_by(f64::total_cmp);
    let pos = quantile * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Ok(s[lo] + (pos - lo as f64) * (s[hi] - s[lo]))
}

/// Indices (ascending) of the samples kept: sample i with probability min(1, e^{ℓ_i − bound}).
pub fn rejection_sample(logits: &[f32], bound: f64, rng: &mut Rng) -> Vec<usize> {
    logits
        .iter()
        .enumerate()
        .filter(|&(_, &l)| rng.uniform() < (l as f64 - bound).exp())
        .map(|(i, _)| i)
        .collect()
}

/// Rejection sampling class by class, for a class-conditional discriminator (whose logits
/// estimate log p_data(x|y)/p_model(x|y), so that the mix of classes is the sampler's to keep):
/// within each class the bound is the `quantile` of that class's logits, and every class is then
/// cut to the smallest fraction kept in any class (its first accepted samples, in input order),
/// so that the kept samples have the classes of the input in the same proportions (up to
/// rounding). Returns the kept indices, ascending.
pub fn rejection_sample_by_class(
    logits: &[f32],
    labels: &[u32],
    quantile: f64,
    rng: &mut Rng,
) -> Result<Vec<usize>> {
    if labels.len() != logits.len() {
        return Err(Error::Shape(format!(
            "{} labels for {} logits",
            labels.len(),
            logits.len()
        )));
    }
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        per_class[y as usize].push(i);
    }
    let mut kept_by_class = Vec::new();
    for members in per_class.iter().filter(|m| !m.is_empty()) {
        let l: Vec<f32> = members.iter().map(|&i| logits[i]).collect();
        let bound = logit_bound(&l, quantile)?;
        let kept: Vec<usize> = rejection_sample(&l, bound, rng)
            .into_iter()
            .map(|j| members[j])
            .collect();
        kept_by_class.push((members.len(), kept));
    }
    let rate = kept_by_class
        .iter()
        .map(|(n, k)| k.len() as f64 / *n as f64)
        .fold(1.0, f64::min);
    let mut kept: Vec<usize> = kept_by_class
        .into_iter()
        .flat_map(|(n, k)| k.into_iter().take((rate * n as f64).round() as usize))
        .collect();
    kept.sort_unstable();
    Ok(kept)
}

/// At most `m` of the indices `kept` (ascending), a uniform subset, whatever the order of the
/// input (a file sorted by class keeps its mix); all of them when there are no more than `m`.
pub fn uniform_subset(kept: &[usize], m: usize, rng: &mut Rng) -> Vec<usize> {
    if kept.len() <= m {
        return kept.to_vec();
    }
    let mut pick: Vec<usize> = rng
        .distinct(kept.len(), m)
        .iter()
        .map(|&j| kept[j])
        .collect();
    pick.sort_unstable();
    pick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_logits_turn_model_samples_into_data_samples() {
        // Model N(0, 1), data N(μ, 1): log p_data/p_model = μx − μ²/2 exactly. With the pool's
        // largest logit as bound the kept samples are N(μ, 1) and the fraction kept is
        // E[e^{ℓ − M}] = e^{−M}.
        let mu = 0.8;
        let mut rng = Rng::new(3);
        let x: Vec<f64> = (0..200_000).map(|_| rng.normal()).collect();
        let logits: Vec<f32> = x.iter().map(|v| (mu * v - mu * mu / 2.0) as f32).collect();
        let bound = logit_bound(&logits, 1.0).unwrap();
        let kept = rejection_sample(&logits, bound, &mut rng);
        let k = kept.len() as f64;
        let expect = 200_000.0 * (-bound).exp();
        assert!(
            (k - expect).abs() < 4.0 * expect.sqrt(),
            "{k} kept, {expect} expected"
        );
        let mean = kept.iter().map(|&i| x[i]).sum::<f64>() / k;
        let var = kept.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / k;
        assert!(
            (mean - mu).abs() < 4.0 / k.sqrt(),
            "kept mean {mean} (k = {k})"
        );
        assert!((var - 1.0).abs() < 0.1, "kept variance {var}");
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        // A lower bound keeps more, and everything above it, moving the mean less far.
        let b90 = logit_bound(&logits, 0.9).unwrap();
        let kept90 = rejection_sample(&logits, b90, &mut rng);
        let m90 = kept90.iter().map(|&i| x[i]).sum::<f64>() / kept90.len() as f64;
        assert!(
            kept90.len() as f64 > 5.0 * k,
            "{} against {k}",
            kept90.len()
        );
        assert!(
            m90 > 0.3 && m90 < mean - 0.1,
            "mean {m90} with the 0.9 quantile"
        );
        let above: Vec<usize> = (0..x.len()).filter(|&i| logits[i] as f64 >= b90).collect();
        assert!(above.iter().all(|i| kept90.binary_search(i).is_ok()));
        // The smallest logit as bound keeps everything.
        let b0 = logit_bound(&logits, 0.0).unwrap();
        assert_eq!(rejection_sample(&logits, b0, &mut rng).len(), x.len());
    }

    #[test]
    fn class_by_class_rejection_keeps_the_class_mix_and_moves_each_class() {
        // Class 0 (60 %): model N(0, 1), data N(0.8, 1); class 1 (40 %): model N(0, 1), data
        // N(−0.4, 1), the logits exact up to an offset of +1 on class 1 (a discriminator biased
        // towards one class: then E_model[e^ℓ | y] ≠ 1). One bound for all classes keeps class 1
        // e times as often; class by class the offset cancels, the kept mix stays 60/40 and each
        // class moves to its data mean.
        let mut rng = Rng::new(8);
        let n = 100_000;
        let labels: Vec<u32> = (0..n).map(|i| u32::from(i % 5 >= 3)).collect();
        let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mus = [0.8, -0.4];
        let logits: Vec<f32> = x
            .iter()
            .zip(&labels)
            .map(|(v, &y)| {
                let mu = mus[y as usize];
                (mu * v - mu * mu / 2.0 + f64::from(y)) as f32
            })
            .collect();
        let kept = rejection_sample_by_class(&logits, &labels, 0.999, &mut rng).unwrap();
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        let of = |c: u32| -> Vec<f64> {
            kept.iter()
                .filter(|&&i| labels[i] == c)
                .map(|&i| x[i])
                .collect()
        };
        let (k0, k1) = (of(0), of(1));
        let share = k0.len() as f64 / kept.len() as f64;
        assert!((share - 0.6).abs() < 0.002, "class 0 share {share}");
        for (k, mu) in [(&k0, 0.8), (&k1, -0.4)] {
            let m = k.iter().sum::<f64>() / k.len() as f64;
            assert!(
                (m - mu).abs() < 0.1,
                "kept mean {m}, data mean {mu} ({} kept)",
                k.len()
            );
        }
        let one = logit_bound(&logits, 0.999).unwrap();
        let pooled = rejection_sample(&logits, one, &mut rng);
        let pooled0 = pooled.iter().filter(|&&i| labels[i] == 0).count() as f64;
        assert!(
            (pooled0 / pooled.len() as f64 - 0.6).abs() > 0.05,
            "one bound for all classes keeps the mix too: {}",
            pooled0 / pooled.len() as f64
        );
        assert!(rejection_sample_by_class(&logits, &labels[1..], 1.0, &mut rng).is_err());
    }

    #[test]
    fn the_bound_is_a_quantile_and_bad_values_are_refused() {
        let l = [3.0f32, -1.0, 2.0, 0.0, 1.0];
        assert_eq!(logit_bound(&l, 1.0).unwrap(), 3.0);
        assert_eq!(logit_bound(&l, 0.0).unwrap(), -1.0);
        assert_eq!(logit_bound(&l, 0.5).unwrap(), 1.0);
        assert!((logit_bound(&l, 0.625).unwrap() - 1.5).abs() < 1e-12);
        for q in [-0.1, 1.5, f64::NAN] {
            assert!(logit_bound(&l, q).is_err(), "{q}");
        }
        assert!(logit_bound(&[], 1.0).is_err());
        assert!(logit_bound(&[1.0, f32::NAN], 1.0).is_err());
    }

    #[test]
    fn a_subset_is_uniform_over_the_kept_indices_and_ascending() {
        let kept: Vec<usize> = (0..40).map(|i| 3 * i + 1).collect();
        assert_eq!(uniform_subset(&kept, 40, &mut Rng::new(0)), kept);
        let mut hits = vec![0usize; 40];
        for seed in 0..400 {
            let pick = uniform_subset(&kept, 10, &mut Rng::new(seed));
            assert_eq!(pick.len(), 10);
            assert!(pick.windows(2).all(|w| w[0] < w[1]), "{pick:?}");
            for p in pick {
                hits[kept.iter().position(|&k| k == p).unwrap()] += 1;
            }
        }
        // Each index is picked with probability 1/4: 100 of 400 times, give or take 3 sd.
        assert!(hits.iter().all(|&h| (70..=130).contains(&h)), "{hits:?}");
    }
}
