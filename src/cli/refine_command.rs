//! `scoregen discriminator`: trains the discriminator of discriminator guidance against a
//! model's samples; `sample --discriminator` uses it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};

use super::image_commands::{load_images_of_shape, require_image_model};
use scoregen::app::Trained;
use scoregen::nn::{Discriminator, DiscriminatorConfig};
use scoregen::refine::{
    self, DiscriminatorGuidance, DiscriminatorMeta, DiscriminatorTraining, Labelled,
};

#[derive(clap::Args, Debug)]
pub struct DiscriminatorArgs {
    /// The image model (checkpoint directory) whose samples are to be refined.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Data images (the model's training data): idx:, cifar:, png: or npy: (labels ignored).
    #[arg(long)]
    real: String,
    /// The model's samples (npy: as `scoregen sample` writes them); repeat for several files.
    #[arg(long, required = true)]
    fake: Vec<String>,
    /// A class-conditional discriminator d(x_t, t, y) of the model's classes: --real and --fake
    /// need labels (`npy:<images>,<labels>`; `sample --class …` writes `<name>-labels.npy`).
    #[arg(long)]
    class_conditional: bool,
    /// Use at most the first N data images.
    #[arg(long, value_parser = crate::cli::at_least_one())]
    max_real: Option<usize>,
    /// Fraction of the data and of each sample file held out for the reported accuracy.
    #[arg(long, default_value_t = 0.1)]
    heldout: f64,
    /// Output directory (discriminator.json + discriminator.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Channels of the first stage (doubled twice); a multiple of 8.
    #[arg(long, default_value_t = 32, value_parser = crate::cli::at_least_one())]
    base: usize,
    /// Adam steps.
    #[arg(long, default_value_t = 1500)]
    steps: u64,
    /// Batch size (half data, half samples).
    #[arg(long, default_value_t = 64, value_parser = crate::cli::at_least_one())]
    batch: usize,
    /// Peak learning rate (warm-up, then cosine).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Mean of ln σ of the training noise levels [default: the model's loss.p_mean].
    #[arg(long, allow_hyphen_values = true)]
    p_mean: Option<f64>,
    /// Standard deviation of ln σ [default: the model's loss.p_std].
    #[arg(long)]
    p_std: Option<f64>,
    /// Judge zero-suppressed images: pixels below this value (in the images' [0, 1] units) count
    /// as 0 on both sides, as a detector reads out above a threshold (0.02 for `physics simulate`
    /// events), so that sub-threshold detail cannot tell samples from data. Such a discriminator
    /// selects samples (`scoregen select`); it does not guide sampling.
    #[arg(long)]
    zero_below: Option<f64>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Images (the model's standardised rows) and, for a class-conditional discriminator, their
/// class labels.
struct Part {
    rows: Vec<f32>,
    labels: Option<Vec<u32>>,
}

impl Part {
    /// The first `n` images.
    fn truncate(&mut self, n: usize, d: usize) {
        self.rows.truncate(n * d);
        if let Some(l) = &mut self.labels {
            l.truncate(n);
        }
    }

    /// Splits off the last `frac` of the images (at least one kept): (train, held-out).
    fn split(mut self, d: usize, frac: f64) -> (Part, Part) {
        let n = self.rows.len() / d;
        let keep = n - ((n as f64 * frac).round() as usize).min(n.saturating_sub(1));
        let held = Part {
            rows: self.rows.split_off(keep * d),
            labels: self.labels.as_mut().map(|l| l.split_off(keep)),
        };
        (self, held)
    }

    /// Appends `other`.
    fn extend(&mut self, other: Part) {
        self.rows.extend(other.rows);
        if let (Some(l), Some(o)) = (&mut self.labels, other.labels) {
            l.extend(o);
        }
    }

    fn labelled(&self) -> Labelled<'_> {
        Labelled {
            rows: &self.rows,
            labels: self.labels.as_deref(),
        }
    }
}

/// Images (pixels in [−1, 1]) as a discriminator sees them: zero-suppressed below its
/// threshold, if it has one, then in the model's standardised coordinates.
pub fn discriminator_rows<B: Backend>(
    model: &Trained<B>,
    mut pixels: Vec<f32>,
    zero_below: Option<f64>,
) -> Vec<f32> {
    if let Some(t) = zero_below {
        refine::zero_suppress(&mut pixels, t);
    }
    model.meta.standardizer.forward(&pixels)
}

/// Images of `spec` as a discriminator with threshold `zero_below` sees them
/// ([`discriminator_rows`]), checked against the model's image shape, with their labels when
/// `conditional`.
fn load_as_model_input<B: Backend>(
    spec: &str,
    model: &Trained<B>,
    shape: [usize; 3],
    conditional: bool,
    zero_below: Option<f64>,
) -> Result<Part> {
    let set = load_images_of_shape(spec, shape)?;
    if conditional && set.labels.is_none() {
        bail!("{spec}: --class-conditional needs the images' classes (npy:<images>,<labels>)");
    }
    Ok(Part {
        rows: discriminator_rows(model, set.pixels, zero_below),
        labels: if conditional { set.labels } else { None },
    })
}

pub fn discriminator<B: AutodiffBackend>(device: &B::Device, a: &DiscriminatorArgs) -> Result<()> {
    if !(0.0..1.0).contains(&a.heldout) {
        bail!("--heldout {}: must be a fraction in [0, 1)", a.heldout);
    }
    let model = Trained::<B::InnerBackend>::load(&a.checkpoint, true, device)?;
    let shape = require_image_model(&model, &a.checkpoint, "discriminator guidance")?;
    let d: usize = shape.iter().product();
    let classes = if a.class_conditional {
        match model.num_classes() {
            0 => bail!(
                "--class-conditional: {} is an unconditional model",
                a.checkpoint.display()
            ),
            k => k,
        }
    } else {
        0
    };
    let conditional = classes > 0;
    if let Some(t) = a.zero_below {
        refine::check_zero_below(t).context("--zero-below")?;
    }
    let mut real = load_as_model_input(&a.real, &model, shape, conditional, a.zero_below)?;
    if let Some(m) = a.max_real {
        real.truncate(m, d);
    }
    let (real, real_held) = real.split(d, a.heldout);
    // Each sample file is split on its own, so that every file is represented in both parts.
    let empty = || Part {
        rows: Vec::new(),
        labels: conditional.then(Vec::new),
    };
    let (mut fake, mut fake_held) = (empty(), empty());
    for f in &a.fake {
        let (train, held) =
            load_as_model_input(f, &model, shape, conditional, a.zero_below)?.split(d, a.heldout);
        fake.extend(train);
        fake_held.extend(held);
    }
    let loss = &model.meta.config.loss;
    let opts = DiscriminatorTraining {
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        p_mean: a.p_mean.unwrap_or(loss.p_mean),
        p_std: a.p_std.unwrap_or(loss.p_std),
    };
    let cfg = DiscriminatorConfig {
        channels: shape[0],
        height: shape[1],
        width: shape[2],
        base: a.base,
        classes,
    };
    eprintln!(
        "training a discriminator on {} data images against {} samples ({} and {} held out), {} steps",
        real.rows.len() / d,
        fake.rows.len() / d,
        real_held.rows.len() / d,
        fake_held.rows.len() / d,
        a.steps
    );
    let bar = indicatif::ProgressBar::new(a.steps);
    let every = (a.steps / 20).max(1);
    let t = std::time::Instant::now();
    let (net, input_scale) = refine::train_discriminator::<B>(
        &cfg,
        model.sde.as_ref(),
        real.labelled(),
        fake.labelled(),
        &opts,
        device,
        &mut |step, loss| {
            bar.set_position(step);
            if step % 10 == 0 {
                bar.set_message(format!("loss {loss:.4}"));
            }
            // Without a terminal the bar is hidden: log a line every twentieth of the run.
            if bar.is_hidden() && step % every == 0 {
                eprintln!("step {step}: loss {loss:.4} (ln 4 = 1.386 is chance)");
            }
        },
    )?;
    bar.finish_and_clear();
    let heldout = refine::heldout_accuracy(
        &net,
        model.sde.as_ref(),
        input_scale,
        real_held.labelled(),
        fake_held.labelled(),
        &opts,
        device,
    )?;
    let meta = DiscriminatorMeta {
        config: cfg,
        sde: model.meta.sde.clone(),
        input_scale,
        generator: a.checkpoint.display().to_string(),
        steps: a.steps,
        p_mean: opts.p_mean,
        p_std: opts.p_std,
        zero_below: a.zero_below,
        real_images: real.rows.len() / d,
        fake_images: fake.rows.len() / d,
        heldout: heldout.clone(),
    };
    refine::save_discriminator(&a.out, &net, &meta)?;
    println!(
        "discriminator: {} steps in {:.1} s → {}",
        a.steps,
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    for b in &heldout {
        let hi = b.sigma_hi.map_or("∞".to_string(), |v| v.to_string());
        println!(
            "  held-out accuracy at σ in [{}, {hi}): {:.3} ({} states)",
            b.sigma_lo, b.accuracy, b.count
        );
    }
    Ok(())
}

/// The discriminator in `dir` with its metadata, checked against `model`: trained for the
/// model's SDE, image shape and classes.
pub fn load_for_model<M: Backend, D: Backend>(
    model: &Trained<M>,
    dir: &Path,
    device: &D::Device,
) -> Result<(Discriminator<D>, DiscriminatorMeta)> {
    let (net, meta) = refine::load_discriminator::<D>(dir, device)
        .with_context(|| format!("--discriminator {}", dir.display()))?;
    let Some(shape) = model.image_shape() else {
        bail!(
            "--discriminator {}: a discriminator judges images, but the model holds {}-dimensional points",
            dir.display(),
            model.dim()
        );
    };
    if net.image_shape() != shape {
        bail!(
            "--discriminator {}: it judges {:?} images, the model makes {:?}",
            dir.display(),
            net.image_shape(),
            shape
        );
    }
    if meta.sde != model.meta.sde {
        bail!(
            "--discriminator {}: trained for the states of another SDE ({:?}) than the model's ({:?})",
            dir.display(),
            meta.sde,
            model.meta.sde
        );
    }
    if net.num_classes() > 0 && net.num_classes() != model.num_classes() {
        bail!(
            "--discriminator {}: it is conditional on {} classes, the model has {}",
            dir.display(),
            net.num_classes(),
            model.num_classes()
        );
    }
    Ok((net, meta))
}

/// `model` with discriminator guidance of weight `weight` by the discriminator in `dir` (see
/// [`load_for_model`]); a class-conditional one needs class-conditional sampling (`by_class`).
pub fn with_discriminator<B: AutodiffBackend>(
    model: Trained<B::InnerBackend>,
    dir: &Path,
    weight: f64,
    sigma_max: Option<f64>,
    by_class: bool,
    device: &B::Device,
) -> Result<Trained<B::InnerBackend>> {
    let (net, meta) = load_for_model::<_, B>(&model, dir, device)?;
    if let Some(t) = meta.zero_below {
        bail!(
            "--discriminator {}: it judges zero-suppressed images (--zero-below {t}), whose gradient says nothing below the threshold; use it with `scoregen select`",
            dir.display()
        );
    }
    if net.num_classes() > 0 && !by_class {
        bail!(
            "--discriminator {}: a class-conditional discriminator needs --class",
            dir.display()
        );
    }
    let sde = meta.sde.build()?;
    let mut guidance = DiscriminatorGuidance::new(net, sde, meta.input_scale, weight);
    if let Some(max) = sigma_max {
        if max.is_nan() || max <= 0.0 {
            bail!("--dg-sigma-max {max}: must be a positive noise level");
        }
        guidance = guidance.up_to_sigma(max);
    }
    Ok(model.with_correction(Box::new(guidance)))
}
