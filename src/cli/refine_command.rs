//! `scoregen discriminator`: trains the discriminator of discriminator guidance against a
//! model's samples; `sample --discriminator` uses it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;

use scoregen::app::Trained;
use scoregen::data;
use scoregen::nn::DiscriminatorConfig;
use scoregen::refine::{self, DiscriminatorGuidance, DiscriminatorMeta, DiscriminatorTraining};

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
    /// Use at most the first N data images.
    #[arg(long)]
    max_real: Option<usize>,
    /// Fraction of the data and of each sample file held out for the reported accuracy.
    #[arg(long, default_value_t = 0.1)]
    heldout: f64,
    /// Output directory (discriminator.json + discriminator.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Channels of the first stage (doubled twice); a multiple of 8.
    #[arg(long, default_value_t = 32)]
    base: usize,
    /// Adam steps.
    #[arg(long, default_value_t = 1500)]
    steps: u64,
    /// Batch size (half data, half samples).
    #[arg(long, default_value_t = 64)]
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
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Images of `spec` as the model's standardised rows, checked against its image shape.
fn load_as_model_input<B: burn::tensor::backend::Backend>(
    spec: &str,
    model: &Trained<B>,
    shape: [usize; 3],
) -> Result<Vec<f32>> {
    let set = data::load_images(spec)?;
    let got = [set.channels, set.height, set.width];
    if got != shape {
        bail!(
            "{spec}: images are {}×{}×{}, the model takes {}×{}×{}",
            got[0],
            got[1],
            got[2],
            shape[0],
            shape[1],
            shape[2]
        );
    }
    Ok(model.meta.standardizer.forward(&set.pixels))
}

/// The (C, H, W) of an image model, or an error for a point model.
fn image_shape<B: burn::tensor::backend::Backend>(
    model: &Trained<B>,
    dir: &Path,
) -> Result<[usize; 3]> {
    match &model.meta.config.unet {
        Some(u) => Ok([u.channels, u.height, u.width]),
        None => bail!(
            "{}: discriminator guidance needs an image model; this checkpoint holds {}-dimensional points",
            dir.display(),
            model.dim()
        ),
    }
}

/// Splits rows of `d` values into (train, held-out) with `frac` of them held out.
fn split(rows: Vec<f32>, d: usize, frac: f64) -> (Vec<f32>, Vec<f32>) {
    let n = rows.len() / d;
    let keep = n - ((n as f64 * frac).round() as usize).min(n.saturating_sub(1));
    let mut train = rows;
    let held = train.split_off(keep * d);
    (train, held)
}

pub fn discriminator<B: AutodiffBackend>(device: &B::Device, a: &DiscriminatorArgs) -> Result<()> {
    if !(0.0..1.0).contains(&a.heldout) {
        bail!("--heldout {}: must be a fraction in [0, 1)", a.heldout);
    }
    let model = Trained::<B::InnerBackend>::load(&a.checkpoint, true, device)?;
    let shape = image_shape(&model, &a.checkpoint)?;
    let d: usize = shape.iter().product();
    let mut real = load_as_model_input(&a.real, &model, shape)?;
    if let Some(m) = a.max_real {
        real.truncate(m * d);
    }
    let (real, real_held) = split(real, d, a.heldout);
    // Each sample file is split on its own, so that every file is represented in both parts.
    let (mut fake, mut fake_held) = (Vec::new(), Vec::new());
    for f in &a.fake {
        let (train, held) = split(load_as_model_input(f, &model, shape)?, d, a.heldout);
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
    };
    eprintln!(
        "training a discriminator on {} data images against {} samples ({} and {} held out), {} steps",
        real.len() / d,
        fake.len() / d,
        real_held.len() / d,
        fake_held.len() / d,
        a.steps
    );
    let bar = indicatif::ProgressBar::new(a.steps);
    let every = (a.steps / 20).max(1);
    let t = std::time::Instant::now();
    let (net, input_scale) = refine::train_discriminator::<B>(
        &cfg,
        model.sde.as_ref(),
        &real,
        &fake,
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
        &real_held,
        &fake_held,
        &opts,
        device,
    )?;
    let meta = DiscriminatorMeta {
        config: cfg,
        sde: model.meta.sde.clone(),
        input_scale,
        generator: a.checkpoint.display().to_string(),
        steps: a.steps,
        real_images: real.len() / d,
        fake_images: fake.len() / d,
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

/// `model` with discriminator guidance of weight `weight` by the discriminator in `dir`, which
/// must have been trained for the model's SDE, σ_d and image shape.
pub fn with_discriminator<B: AutodiffBackend>(
    model: Trained<B::InnerBackend>,
    dir: &Path,
    weight: f64,
    device: &B::Device,
) -> Result<Trained<B::InnerBackend>> {
    let (net, meta) = refine::load_discriminator::<B>(dir, device)
        .with_context(|| format!("--discriminator {}", dir.display()))?;
    let shape = image_shape(&model, dir)?;
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
    let sde = meta.sde.build()?;
    Ok(model.with_correction(Box::new(DiscriminatorGuidance::new(
        net,
        sde,
        meta.input_scale,
        weight,
    ))))
}
