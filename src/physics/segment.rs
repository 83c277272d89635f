//! Training and applying SSNet: class-weighted pixel cross-entropy (weights inverse to each
//! class's pixel frequency, as SSNet weights its sparse foreground), Adam with warm-up + cosine
//! learning rate, the eight symmetries of the square as augmentation, per-class accuracy on
//! held-out events; saved as `ssnet.json` + `ssnet.safetensors`.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::{activation::log_softmax, backend::AutodiffBackend, backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::ssnet::{Ssnet, SsnetConfig, SSNET_CLASSES};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{from_rows, to_vec};
use crate::train::{load_network, read_json, save_network, Adam, LaggedLoss, TimeBudget};

const STEM: &str = "ssnet";

/// Training settings of SSNet.
#[derive(Clone, Debug)]
pub struct SsnetTraining {
    /// Adam steps.
    pub steps: u64,
    /// Events per batch.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Random seed (initialisation, batches, augmentation).
    pub seed: u64,
    /// Network sizes (`None`: [`SsnetConfig::for_size`]).
    pub config: Option<SsnetConfig>,
    /// Wall-clock budget in minutes: `steps` is replaced by the count that fits, measured over
    /// the first steps ([`TimeBudget`]).
    pub minutes: Option<f64>,
    /// Start from this SSNet (a directory of [`save_ssnet`]) instead of random weights, with a
    /// fresh Adam state and learning-rate schedule; its sizes must match `config`.
    pub init: Option<PathBuf>,
}

impl Default for SsnetTraining {
    fn default() -> Self {
        SsnetTraining {
            steps: 600,
            batch: 16,
            lr: 2e-3,
            seed: 0,
            config: None,
            minutes: None,
            init: None,
        }
    }
}

/// Per-class pixel accuracy of a segmentation against the true labels (NaN, `null` in JSON, for a
/// class with no pixels).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentationAccuracy {
    /// Fraction of true background pixels labelled background.
    #[serde(with = "crate::json_float::nan_as_null")]
    pub background: f64,
    /// Fraction of true track pixels labelled track.
    #[serde(with = "crate::json_float::nan_as_null")]
    pub track: f64,
    /// Fraction of true shower pixels labelled shower.
    #[serde(with = "crate::json_float::nan_as_null")]
    pub shower: f64,
    /// Accuracy over the non-zero pixels (true track/shower pixels, and background pixels whose
    /// value reaches the threshold).
    #[serde(with = "crate::json_float::nan_as_null")]
    pub nonzero: f64,
    /// True pixels per class.
    pub pixels: [usize; 3],
}

/// What `ssnet.json` records next to the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SsnetMeta {
    /// Network sizes.
    pub config: SsnetConfig,
    /// Pixels below this value are background whatever the network says.
    pub threshold: f64,
    /// Cross-entropy weight per class.
    pub class_weights: [f64; 3],
    /// Training steps taken.
    pub steps: u64,
    /// Events trained on.
    pub train_events: usize,
    /// Accuracy on held-out events, when some were held out.
    pub heldout: Option<SegmentationAccuracy>,
    /// The same with the logits averaged over the eight symmetries of the square
    /// ([`segment_with`] `symmetric`); absent in files written before it was measured.
    #[serde(default)]
    pub heldout_symmetric: Option<SegmentationAccuracy>,
}

/// Square images with one label per pixel.
#[derive(Clone, Copy, Debug)]
pub struct Labelled<'a> {
    /// Image side.
    pub size: usize,
    /// N·size² pixel values in [0, 1].
    pub images: &'a [f32],
    /// N·size² labels 0 background, 1 track, 2 shower.
    pub labels: &'a [u8],
}

impl Labelled<'_> {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.images.len() / (self.size * self.size).max(1)
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self) -> Result<()> {
        let s2 = self.size * self.size;
        if s2 == 0
            || self.images.len() != self.labels.len()
            || !self.images.len().is_multiple_of(s2)
        {
            return Err(Error::Shape(format!(
                "{} pixel values and {} labels do not make {}×{} events",
                self.images.len(),
                self.labels.len(),
                self.size,
                self.size
            )));
        }
        if let Some(l) = self.labels.iter().find(|&&l| l as usize >= SSNET_CLASSES) {
            return Err(Error::Shape(format!(
                "pixel label {l}; expected 0 background, 1 track, 2 shower"
            )));
        }
        Ok(())
    }
}

/// Class weights w_c = 1/(3 f_c) for pixel frequencies f_c (floored at 10⁻⁴), scaled so that
/// Σ_c f_c w_c = 1: every class carries the same total weight.
pub fn class_weights(labels: &[u8]) -> [f64; 3] {
    let mut count = [0usize; 3];
    for &l in labels {
        count[(l as usize).min(2)] += 1;
    }
    let n = labels.len().max(1) as f64;
    let f = count.map(|c| (c as f64 / n).max(1e-4));
    let w = f.map(|fc| 1.0 / (3.0 * fc));
    let norm: f64 = f.iter().zip(&w).map(|(a, b)| a * b).sum();
    w.map(|v| v / norm)
}

/// Weighted pixel cross-entropy −Σ t·log softmax(logits) / Σ t, where `target` `[n, 3, S, S]`
/// holds w_c at the true class of each pixel and 0 elsewhere (PyTorch's `CrossEntropyLoss`
/// with `weight`, mean reduction).
pub fn weighted_cross_entropy<B: Backend>(
    logits: Tensor<B, 4>,
    target: Tensor<B, 4>,
) -> Tensor<B, 1> {
    let total = target.clone().sum();
    (log_softmax(logits, 1) * target).sum().neg() / total
}

/// `src` (`size`², row-major) under symmetry k of the square (bit 0 flips x, bit 1 flips y,
/// bit 2 transposes).
pub fn dihedral<T: Copy>(src: &[T], size: usize, k: usize, out: &mut Vec<T>) {
    out.clear();
    for y in 0..size {
        for x in 0..size {
            let (mut sy, mut sx) = if k & 4 != 0 { (x, y) } else { (y, x) };
            if k & 1 != 0 {
                sx = size - 1 - sx;
            }
            if k & 2 != 0 {
                sy = size - 1 - sy;
            }
            out.push(src[sy * size + sx]);
        }
    }
}

/// What [`train_ssnet`] returns.
#[derive(Debug)]
pub struct TrainedSsnet<B: Backend> {
    /// The network, without autodiff.
    pub net: Ssnet<B>,
    /// Its sizes.
    pub config: SsnetConfig,
    /// Cross-entropy weight per class used.
    pub class_weights: [f64; 3],
    /// Steps taken (fewer than asked when a time budget was spent).
    pub steps: u64,
}

/// Trains SSNet on `data`; `progress(step, loss, total, planned)` is called for every step, one
/// step late (each loss is read once the next step is queued, the last after the loop),
/// `total` being the run's step count as it stands (with a time budget: `opts.steps` until the
/// budget has timed the first steps, then the count that fits, then the last step if the budget
/// ran out first) and `planned` the budget's measured steps/s on the one call after it fixed that
/// count.
pub fn train_ssnet<B: AutodiffBackend>(
    data: Labelled,
    opts: &SsnetTraining,
    device: &B::Device,
    progress: &mut dyn FnMut(u64, f64, u64, Option<f64>),
) -> Result<TrainedSsnet<B::InnerBackend>> {
    data.check()?;
    if data.is_empty() || opts.batch == 0 || opts.steps == 0 {
        return Err(Error::config(
            "ssnet",
            "needs events, and positive steps and batch",
        ));
    }
    crate::nn::check_sizes(&[("ssnet batch", opts.batch)], &[])?;
    let start = match &opts.init {
        Some(dir) => Some(load_ssnet::<B>(dir, device)?),
        None => None,
    };
    let cfg = match (&opts.config, &start) {
        (Some(c), _) => c.clone(),
        (None, Some((_, meta))) => meta.config.clone(),
        (None, None) => SsnetConfig::for_size(data.size),
    };
    cfg.validate()?;
    if let (Some(dir), Some((_, meta))) = (&opts.init, &start) {
        if meta.config != cfg {
            return Err(Error::config(
                "ssnet",
                format!(
                    "{}: SSNet of {:?} cannot start a training of {:?}",
                    dir.display(),
                    meta.config,
                    cfg
                ),
            ));
        }
    }
    if cfg.size != data.size {
        return Err(Error::Shape(format!(
            "SSNet for {0}×{0} events given {1}×{1} events",
            cfg.size, data.size
        )));
    }
    let weights = class_weights(data.labels);
    let mut net = match start {
        Some((net, _)) => net,
        None => crate::nn::seeded::<B, _>(device, opts.seed, || cfg.init::<B>(device)),
    };
    let mut adam = Adam::<B::InnerBackend>::default();
    let mut rng = Rng::new(opts.seed);
    let (s, s2, b) = (data.size, data.size * data.size, opts.batch);
    let (mut img, mut lab) = (Vec::with_capacity(s2), Vec::with_capacity(s2));
    let mut steps = opts.steps;
    let mut budget = opts.minutes.map(|m| TimeBudget::new(m, 0));
    let mut step = 0;
    let mut losses = LaggedLoss::new("SSNet");
    // The budget's plan, reported with the next loss read.
    let mut planned = None;
    while step < steps {
        step += 1;
        let mut x = Vec::with_capacity(b * s2);
        let mut t = vec![0.0f32; b * SSNET_CLASSES * s2];
        for r in 0..b {
            let i = rng.below(data.len());
            let k = rng.below(8);
            dihedral(&data.images[i * s2..(i + 1) * s2], s, k, &mut img);
            dihedral(&data.labels[i * s2..(i + 1) * s2], s, k, &mut lab);
            x.extend_from_slice(&img);
            for (p, &l) in lab.iter().enumerate() {
                t[(r * SSNET_CLASSES + l as usize) * s2 + p] = weights[l as usize] as f32;
            }
        }
        let target =
            Tensor::<B, 1>::from_floats(t.as_slice(), device).reshape([b, SSNET_CLASSES, s, s]);
        let loss = weighted_cross_entropy(net.logits(from_rows::<B>(x, b, s2, device)), target);
        let (next, loss) = adam.supervised_step(net, loss, (step, steps), opts.lr);
        net = next;
        if let Some(b) = budget.as_mut() {
            let check = b.after_step(step);
            if let Some((total, rate)) = check.planned {
                steps = total;
                planned = Some(rate);
            }
            if check.spent {
                steps = step;
            }
        }
        if let Some((s, lv)) = losses.push(step, loss)? {
            progress(s, lv, steps, planned.take());
        }
    }
    if let Some((s, lv)) = losses.finish()? {
        progress(s, lv, steps, planned.take());
    }
    Ok(TrainedSsnet {
        net: net.valid(),
        config: cfg,
        class_weights: weights,
        steps,
    })
}

/// Pixel labels SSNet assigns to `images` (N·S²): the most probable class, and background
/// wherever the pixel value is below `threshold`.
pub fn segment<B: Backend>(
    net: &Ssnet<B>,
    images: &[f32],
    size: usize,
    threshold: f64,
    device: &B::Device,
) -> Vec<u8> {
    let labelling = Labelling {
        threshold,
        symmetric: false,
    };
    segment_with(net, images, size, labelling, device)
}

/// How SSNet's logits become pixel labels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Labelling {
    /// Pixels below this value are background whatever the network says.
    pub threshold: f64,
    /// Average the logits over the eight symmetries of the square ([`segment_with`]).
    pub symmetric: bool,
}

/// [`segment`] as `labelling` says: from the logits averaged over the eight symmetries of the
/// square when `labelling.symmetric` ([`Ssnet::symmetric_logits`], eight times the cost).
pub fn segment_with<B: Backend>(
    net: &Ssnet<B>,
    images: &[f32],
    size: usize,
    labelling: Labelling,
    device: &B::Device,
) -> Vec<u8> {
    let Labelling {
        threshold,
        symmetric,
    } = labelling;
    let s2 = size * size;
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(64 * s2.max(1)) {
        let n = chunk.len() / s2;
        let x = from_rows::<B>(chunk.to_vec(), n, s2, device);
        let logits = to_vec(if symmetric {
            net.symmetric_logits(x)
        } else {
            net.logits(x)
        });
        for e in 0..n {
            for p in 0..s2 {
                let v = chunk[e * s2 + p];
                let best = (0..SSNET_CLASSES)
                    .max_by(|&a, &c| {
                        logits[(e * SSNET_CLASSES + a) * s2 + p]
                            .total_cmp(&logits[(e * SSNET_CLASSES + c) * s2 + p])
                    })
                    .unwrap_or(0);
                out.push(if (v as f64) < threshold {
                    0
                } else {
                    best as u8
                });
            }
        }
    }
    out
}

/// Globally pooled deepest SSNet features of `images` (`[N·features]`, row-major).
pub fn ssnet_features<B: Backend>(
    net: &Ssnet<B>,
    images: &[f32],
    size: usize,
    device: &B::Device,
) -> Vec<f32> {
    let s2 = size * size;
    images
        .chunks(64 * s2.max(1))
        .flat_map(|c| to_vec(net.features(from_rows::<B>(c.to_vec(), c.len() / s2, s2, device))))
        .collect()
}

/// Per-class accuracy of `predicted` against `truth`.
pub fn segmentation_accuracy(
    truth: Labelled,
    predicted: &[u8],
    threshold: f64,
) -> Result<SegmentationAccuracy> {
    truth.check()?;
    if predicted.len() != truth.labels.len() {
        return Err(Error::Shape(format!(
            "{} predicted labels for {} pixels",
            predicted.len(),
            truth.labels.len()
        )));
    }
    let mut right = [0usize; 3];
    let mut total = [0usize; 3];
    let (mut nz_right, mut nz) = (0usize, 0usize);
    for ((&t, &p), &v) in truth.labels.iter().zip(predicted).zip(truth.images) {
        total[t as usize] += 1;
        right[t as usize] += usize::from(t == p);
        if t != 0 || v as f64 >= threshold {
            nz += 1;
            nz_right += usize::from(t == p);
        }
    }
    let frac = |a: usize, b: usize| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    Ok(SegmentationAccuracy {
        background: frac(right[0], total[0]),
        track: frac(right[1], total[1]),
        shower: frac(right[2], total[2]),
        nonzero: frac(nz_right, nz),
        pixels: total,
    })
}

/// Writes SSNet into `dir` (weights first, then the metadata, each atomically).
pub fn save_ssnet<B: Backend>(dir: &Path, net: &Ssnet<B>, meta: &SsnetMeta) -> Result<()> {
    save_network(dir, STEM, "scoregen-ssnet", net, meta)
}

/// Reads SSNet written by [`save_ssnet`].
pub fn load_ssnet<B: Backend>(dir: &Path, device: &B::Device) -> Result<(Ssnet<B>, SsnetMeta)> {
    let meta: SsnetMeta = read_json(
        dir,
        &dir.join(format!("{STEM}.json")),
        "no ssnet.json here (train one with `scoregen physics ssnet train --data <events.npy> --out <dir>`)",
    )?;
    meta.config.validate()?;
    let net = load_network(dir, STEM, meta.config.skeleton::<B>(device))?;
    Ok((net, meta))
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
