//! Training the discriminator of discriminator guidance (Kim et al. 2023, Eq. 6): binary cross
//! entropy between data (label 1) and a model's samples (label 0), both perturbed to x_t by the
//! model's SDE at noise levels ln σ ~ N(P_mean, P_std²); saved as `discriminator.json` +
//! `discriminator.safetensors` in a directory.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::activation::softplus;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use super::{discriminator_input, InputScale};
use crate::error::{Error, Result};
use crate::losses::{perturb, TimeSampler};
use crate::nn::{Discriminator, DiscriminatorConfig};
use crate::rng::Rng;
use crate::sde::{Sde, SdeSpec};
use crate::tensor::{from_rows, to_vec};
use crate::train::{load_network, read_json, save_network, Adam, LaggedLoss};

/// File stem of `discriminator.json` + `discriminator.safetensors`.
const STEM: &str = "discriminator";

/// Training settings.
#[derive(Clone, Debug)]
pub struct DiscriminatorTraining {
    /// Adam steps.
    pub steps: u64,
    /// Batch size (half data, half samples).
    pub batch: usize,
    /// Peak learning rate (warm-up + cosine).
    pub lr: f64,
    /// Random seed (initialisation, batches, noise).
    pub seed: u64,
    /// Mean of ln σ of the training noise levels.
    pub p_mean: f64,
    /// Standard deviation of ln σ.
    pub p_std: f64,
}

impl Default for DiscriminatorTraining {
    fn default() -> Self {
        DiscriminatorTraining {
            steps: 1500,
            batch: 64,
            lr: 1e-3,
            seed: 0,
            p_mean: -1.2,
            p_std: 1.2,
        }
    }
}

/// Held-out accuracy at noise levels σ in [lo, hi).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandAccuracy {
    /// Lower end of the band.
    pub sigma_lo: f64,
    /// Upper end of the band (none: unbounded).
    pub sigma_hi: Option<f64>,
    /// Fraction classified right (data as data, samples as samples).
    pub accuracy: f64,
    /// Held-out states in the band.
    pub count: usize,
}

/// What `discriminator.json` records next to the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiscriminatorMeta {
    /// Network sizes.
    pub config: DiscriminatorConfig,
    /// The SDE whose states it judges (the generator's).
    pub sde: SdeSpec,
    /// The standardisation of its input (the training data's pixel statistics).
    pub input_scale: InputScale,
    /// The generator checkpoint whose samples it was trained against.
    pub generator: String,
    /// Training steps taken.
    pub steps: u64,
    /// Mean of ln σ of the training noise levels.
    pub p_mean: f64,
    /// Standard deviation of ln σ.
    pub p_std: f64,
    /// The threshold below which it sees pixels as 0 ([`zero_suppress`]; none: raw images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_below: Option<f64>,
    /// Data images it was trained on.
    pub real_images: usize,
    /// Sample images it was trained on.
    pub fake_images: usize,
    /// Held-out accuracy per noise-level band.
    pub heldout: Vec<BandAccuracy>,
}

/// Zero suppression as a detector's readout does it: every pixel of `pixels` (the [−1, 1] image
/// coordinates of scoregen's loaders) whose [0, 1] value (p + 1)/2 lies below `threshold` is set
/// to the background −1. A discriminator trained on zero-suppressed images estimates the density
/// ratio of the suppressed images only, so it cannot tell samples apart by sub-threshold detail;
/// rejection sampling with it matches the law of what lies above the threshold.
pub fn zero_suppress(pixels: &mut [f32], threshold: f64) {
    for p in pixels {
        if (((*p as f64) + 1.0) / 2.0) < threshold {
            *p = -1.0;
        }
    }
}

/// Checks a zero-suppression threshold: a pixel value in (0, 1].
pub fn check_zero_below(threshold: f64) -> Result<()> {
    if threshold > 0.0 && threshold <= 1.0 {
        Ok(())
    } else {
        Err(Error::config(
            "zero_below",
            format!("{threshold}: must be a pixel value in (0, 1]"),
        ))
    }
}

/// Checks that `rows` holds whole images of `dim` values and at least `min` of them.
fn count_rows(rows: &[f32], dim: usize, what: &str, min: usize) -> Result<usize> {
    if dim == 0 || !rows.len().is_multiple_of(dim) {
        return Err(Error::Shape(format!(
            "{what}: {} values are not whole images of {dim}",
            rows.len()
        )));
    }
    let n = rows.len() / dim;
    if n < min {
        return Err(Error::config(
            what,
            format!("needs at least {min} images, got {n}"),
        ));
    }
    Ok(n)
}

/// Images (flattened rows) with their class labels, if any.
#[derive(Clone, Copy, Debug)]
pub struct Labelled<'a> {
    /// Flattened images, row-major.
    pub rows: &'a [f32],
    /// One class per image (needed by a class-conditional discriminator).
    pub labels: Option<&'a [u32]>,
}

/// Checks `set` against `net`'s shape and classes; returns its number of images.
pub(super) fn check_set(
    set: Labelled,
    d: usize,
    classes: usize,
    what: &str,
    min: usize,
) -> Result<usize> {
    let n = count_rows(set.rows, d, what, min)?;
    if classes > 0 {
        let labels = set.labels.ok_or_else(|| {
            Error::config(
                what,
                "a class-conditional discriminator needs class labels (e.g. npy:<images>,<labels>)",
            )
        })?;
        if labels.len() != n {
            return Err(Error::Shape(format!(
                "{what}: {} labels for {n} images",
                labels.len()
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= classes) {
            return Err(Error::config(
                what,
                format!("label {bad} is not one of the model's {classes} classes"),
            ));
        }
    }
    Ok(n)
}

/// The logits of `idx`'s rows of `set`, perturbed at `times`.
pub(super) fn logits_of<B: Backend>(
    net: &Discriminator<B>,
    sde: &dyn Sde,
    scale: InputScale,
    set: Labelled,
    idx: &[usize],
    times: &[f64],
    rng: &mut Rng,
    device: &B::Device,
) -> burn::tensor::Tensor<B, 2> {
    let d = net.image_shape().iter().product::<usize>();
    let x0: Vec<f32> = idx
        .iter()
        .flat_map(|&i| set.rows[i * d..(i + 1) * d].iter().copied())
        .collect();
    let classes: Option<Vec<usize>> = set
        .labels
        .filter(|_| net.num_classes() > 0)
        .map(|l| idx.iter().map(|&i| l[i] as usize).collect());
    let (x_t, _, _) = perturb(sde, from_rows::<B>(x0, idx.len(), d, device), times, rng);
    let (inp, c) = discriminator_input(sde, scale, x_t, times);
    net.logit(inp, c, classes.as_deref())
}

/// Trains a discriminator of `cfg`'s sizes between `real` and `fake` (flattened images in the
/// generator's standardised coordinates, row-major) for states of `sde`; `progress(step, loss)`
/// is called for every step, one step late (each loss is read once the next step is queued).
/// Returns the network without autodiff and the input standardisation (the statistics of
/// `real`) it was trained with.
pub fn train_discriminator<A: AutodiffBackend>(
    cfg: &DiscriminatorConfig,
    sde: &dyn Sde,
    real: Labelled,
    fake: Labelled,
    opts: &DiscriminatorTraining,
    device: &A::Device,
    progress: &mut dyn FnMut(u64, f64),
) -> Result<(Discriminator<A::InnerBackend>, InputScale)> {
    cfg.validate()?;
    let d = cfg.channels * cfg.height * cfg.width;
    let n_real = check_set(real, d, cfg.classes, "--real", 1)?;
    let n_fake = check_set(fake, d, cfg.classes, "--fake", 1)?;
    if opts.batch < 2 || opts.steps == 0 {
        return Err(Error::config(
            "discriminator",
            "steps must be positive and the batch at least 2",
        ));
    }
    crate::nn::check_sizes(&[("discriminator batch", opts.batch)], &[])?;
    let mut net = crate::nn::seeded::<A, _>(device, opts.seed, || cfg.init::<A>(device));
    let mut adam = Adam::<A::InnerBackend>::default();
    let mut rng = Rng::new(opts.seed);
    let times = TimeSampler::Lognormal {
        p_mean: opts.p_mean,
        p_std: opts.p_std,
    };
    let scale = InputScale::of(real.rows);
    let half = opts.batch / 2;
    let mut losses = LaggedLoss::new("discriminator");
    for step in 1..=opts.steps {
        let ir: Vec<usize> = (0..half).map(|_| rng.below(n_real)).collect();
        let iff: Vec<usize> = (0..half).map(|_| rng.below(n_fake)).collect();
        let tr = times.sample(sde, half, &mut rng);
        let tf = times.sample(sde, half, &mut rng);
        let lr = logits_of(&net, sde, scale, real, &ir, &tr, &mut rng, device);
        let lf = logits_of(&net, sde, scale, fake, &iff, &tf, &mut rng, device);
        // −log d(data) − log(1 − d(sample)) with d = sigmoid(logit).
        let loss = (softplus(lr.neg(), 1.0).mean() + softplus(lf, 1.0).mean()).reshape([1]);
        let (next, loss) = adam.supervised_step(net, loss, (step, opts.steps), opts.lr);
        net = next;
        if let Some((s, lv)) = losses.push(step, loss)? {
            progress(s, lv);
        }
    }
    if let Some((s, lv)) = losses.finish()? {
        progress(s, lv);
    }
    Ok((net.valid(), scale))
}

/// Held-out accuracy of `net` in the noise-level bands σ < 0.1, 0.1 ≤ σ < 1 and σ ≥ 1: each
/// held-out image perturbed once at a noise level drawn as in training (seeded by `seed`).
pub fn heldout_accuracy<B: Backend>(
    net: &Discriminator<B>,
    sde: &dyn Sde,
    scale: InputScale,
    real: Labelled,
    fake: Labelled,
    opts: &DiscriminatorTraining,
    device: &B::Device,
) -> Result<Vec<BandAccuracy>> {
    let d = net.image_shape().iter().product::<usize>();
    let bands = [(0.0, 0.1), (0.1, 1.0), (1.0, f64::INFINITY)];
    let mut right = [0usize; 3];
    let mut count = [0usize; 3];
    let mut rng = Rng::new(opts.seed ^ 0x5eed);
    let times = TimeSampler::Lognormal {
        p_mean: opts.p_mean,
        p_std: opts.p_std,
    };
    for (set, is_real) in [(real, true), (fake, false)] {
        let what = if is_real {
            "held-out data"
        } else {
            "held-out samples"
        };
        let n = check_set(set, d, net.num_classes(), what, 0)?;
        let all: Vec<usize> = (0..n).collect();
        for idx in all.chunks(256) {
            let t = times.sample(sde, idx.len(), &mut rng);
            let logits = to_vec(logits_of(net, sde, scale, set, idx, &t, &mut rng, device));
            for (l, &ti) in logits.iter().zip(&t) {
                let sigma = sde.edm_sigma(ti);
                let b = bands
                    .iter()
                    .position(|&(lo, hi)| sigma >= lo && sigma < hi)
                    .unwrap_or(2);
                count[b] += 1;
                right[b] += usize::from((*l > 0.0) == is_real);
            }
        }
    }
    Ok(bands
        .iter()
        .enumerate()
        .map(|(i, &(lo, hi))| BandAccuracy {
            sigma_lo: lo,
            sigma_hi: hi.is_finite().then_some(hi),
            accuracy: right[i] as f64 / count[i].max(1) as f64,
            count: count[i],
        })
        .collect())
}

/// Writes the discriminator into `dir` (weights first, then the metadata, each atomically).
pub fn save_discriminator<B: Backend>(
    dir: &Path,
    net: &Discriminator<B>,
    meta: &DiscriminatorMeta,
) -> Result<()> {
    save_network(dir, STEM, "scoregen-discriminator", net, meta)
}

/// Reads a discriminator written by [`save_discriminator`].
pub fn load_discriminator<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(Discriminator<B>, DiscriminatorMeta)> {
    let meta: DiscriminatorMeta = read_json(
        dir,
        &dir.join(format!("{STEM}.json")),
        "no discriminator.json here (train one with `scoregen discriminator --checkpoint <model> --real <data> --fake <samples> --out <dir>`)",
    )?;
    meta.config.validate()?;
    if let Some(t) = meta.zero_below {
        check_zero_below(t)?;
    }
    let net = load_network(dir, STEM, meta.config.skeleton::<B>(device))?;
    Ok((net, meta))
}
