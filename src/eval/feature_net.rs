//! Training, storing and applying the evaluation classifier ([`Classifier`]): cross-entropy with
//! Adam, warm-up + cosine learning rate, held-out accuracy; saved as `classifier.json` +
//! `classifier.safetensors` in a directory.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::{activation::log_softmax, backend::AutodiffBackend, backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::nn::{Classifier, ClassifierConfig};
use crate::rng::Rng;
use crate::tensor::{from_rows, to_vec};
use crate::train::{load_network, read_json, save_network, Adam, LaggedLoss};

/// File stem of `classifier.json` + `classifier.safetensors`.
const STEM: &str = "classifier";

/// Training settings of the evaluation classifier.
#[derive(Clone, Debug)]
pub struct ClassifierTraining {
    /// Adam steps.
    pub steps: u64,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Random seed (initialisation and batches).
    pub seed: u64,
}

impl Default for ClassifierTraining {
    fn default() -> Self {
        ClassifierTraining {
            steps: 1500,
            batch: 64,
            lr: 2e-3,
            seed: 0,
        }
    }
}

/// What `classifier.json` records next to the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifierMeta {
    /// Network sizes.
    pub config: ClassifierConfig,
    /// Class names.
    pub class_names: Vec<String>,
    /// Training steps taken.
    pub steps: u64,
    /// Images it was trained on.
    pub train_images: usize,
    /// Accuracy on the held-out images (NaN, `null` in the file, when none were held out).
    #[serde(with = "crate::json_float::nan_as_null")]
    pub heldout_accuracy: f64,
    /// Held-out images.
    pub heldout_images: usize,
}

fn labels_of(set: &ImageSet, what: &str) -> Result<Vec<u32>> {
    set.labels.clone().ok_or_else(|| {
        Error::config(
            what,
            "the evaluation classifier needs labelled images (e.g. idx:<images>,<labels>)",
        )
    })
}

/// Trains the classifier on `train` (labels required); `progress(step, loss)` is called for every
/// step, one step late (each loss is read once the next step is queued). Returns the trained
/// network (without autodiff).
pub fn train_classifier<B: AutodiffBackend>(
    train: &ImageSet,
    opts: &ClassifierTraining,
    device: &B::Device,
    progress: &mut dyn FnMut(u64, f64),
) -> Result<(Classifier<B::InnerBackend>, ClassifierConfig)> {
    let labels = labels_of(train, "--data")?;
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let cfg = ClassifierConfig::for_images(train.channels, train.height, train.width, classes);
    cfg.validate()?;
    if opts.batch == 0 || opts.steps == 0 {
        return Err(Error::config(
            "classifier",
            "steps and batch must be positive",
        ));
    }
    crate::nn::check_sizes(&[("classifier batch", opts.batch)], &[])?;
    let mut net = crate::nn::seeded::<B, _>(device, opts.seed, || cfg.init::<B>(device));
    let mut adam = Adam::<B::InnerBackend>::default();
    let mut rng = Rng::new(opts.seed);
    let (n, d) = (train.len(), train.image_size());
    let mut losses = LaggedLoss::new("classifier");
    for step in 1..=opts.steps {
        let idx: Vec<usize> = (0..opts.batch).map(|_| rng.below(n)).collect();
        let x: Vec<f32> = idx
            .iter()
            .flat_map(|&i| train.pixels[i * d..(i + 1) * d].iter().copied())
            .collect();
        let mut onehot = vec![0.0f32; opts.batch * classes];
        for (r, &i) in idx.iter().enumerate() {
            onehot[r * classes + labels[i] as usize] = 1.0;
        }
        let logp = log_softmax(net.logits(from_rows::<B>(x, opts.batch, d, device)), 1);
        let loss = (logp * from_rows::<B>(onehot, opts.batch, classes, device))
            .sum()
            .neg()
            .div_scalar(opts.batch as f64);
        let (next, loss) = adam.supervised_step(net, loss, (step, opts.steps), opts.lr);
        net = next;
        if let Some((s, lv)) = losses.push(step, loss)? {
            progress(s, lv);
        }
    }
    if let Some((s, lv)) = losses.finish()? {
        progress(s, lv);
    }
    Ok((net.valid(), cfg))
}

/// Applies `f` to `set` in batches of `batch` images and concatenates the rows.
fn batched<B: Backend>(
    pixels: &[f32],
    dim: usize,
    batch: usize,
    device: &B::Device,
    f: &dyn Fn(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Vec<f32> {
    pixels
        .chunks(dim * batch.max(1))
        .flat_map(|c| to_vec(f(from_rows::<B>(c.to_vec(), c.len() / dim, dim, device))))
        .collect()
}

/// Penultimate-layer features of flattened images (`[n·features]`, row-major).
pub fn features<B: Backend>(
    net: &Classifier<B>,
    pixels: &[f32],
    dim: usize,
    device: &B::Device,
) -> Vec<f32> {
    batched(pixels, dim, 256, device, &|x| net.features(x))
}

/// Predicted class of each flattened image.
pub fn predict<B: Backend>(
    net: &Classifier<B>,
    pixels: &[f32],
    dim: usize,
    device: &B::Device,
) -> Vec<u32> {
    let logits = batched(pixels, dim, 256, device, &|x| net.logits(x));
    let k = logits.len() / (pixels.len() / dim).max(1);
    logits
        .chunks(k.max(1))
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i as u32)
        })
        .collect()
}

/// Fraction of `set`'s images the classifier labels correctly (labels required).
pub fn accuracy<B: Backend>(
    net: &Classifier<B>,
    set: &ImageSet,
    device: &B::Device,
) -> Result<f64> {
    let labels = labels_of(set, "labels")?;
    let pred = predict(net, &set.pixels, set.image_size(), device);
    let right = pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
    Ok(right as f64 / labels.len().max(1) as f64)
}

/// Writes the classifier into `dir` (weights first, then the metadata, each atomically).
pub fn save_classifier<B: Backend>(
    dir: &Path,
    net: &Classifier<B>,
    meta: &ClassifierMeta,
) -> Result<()> {
    save_network(dir, STEM, "scoregen-classifier", net, meta)
}

/// Reads a classifier written by [`save_classifier`].
pub fn load_classifier<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(Classifier<B>, ClassifierMeta)> {
    let meta: ClassifierMeta = read_json(
        dir,
        &dir.join(format!("{STEM}.json")),
        "no classifier.json here (train one with `scoregen classifier --data <images> --out <dir>`)",
    )?;
    meta.config.validate()?;
    let net = load_network(dir, STEM, meta.config.skeleton::<B>(device))?;
    Ok((net, meta))
}
