//! The training loop.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};

use super::budget::TimeBudget;
use super::checkpoint::{Checkpoint, CheckpointMeta, FORMAT_VERSION};
use super::params::{load_named, named_params};
use super::step_log::{StepLog, StepValues};
use super::{ema_update, lr_at, Adam, TrainConfig};
use crate::data::{Dataset, Standardizer};
use crate::error::{Error, Result};
use crate::losses::loss;
use crate::nn::{ScoreNet, WithLabels};
use crate::rng::Rng;
use crate::score::Parametrised;
use crate::tensor::from_rows;

/// How to run [`train`].
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the checkpoint in the output directory.
    pub resume: bool,
    /// Start a new run (step 0, fresh Adam state and learning-rate schedule) from the EMA
    /// weights of the checkpoint in this directory, with its standardisation and SDE: fine-tuning.
    pub init: Option<std::path::PathBuf>,
    /// Stop (after checkpointing) once this many total steps are done, before `steps`.
    pub stop_after: Option<u64>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Wall-clock budget of this run in minutes: after a few steps to measure the speed, the
    /// step count is set so that warm-up and cosine decay end on time (the count is printed and
    /// stored in the checkpoint's configuration); the run also stops, checkpointed, when the
    /// budget is spent.
    pub minutes: Option<f64>,
}

/// An objective added to the score-matching loss at every step (e.g. the physics term of
/// [`crate::physics::finetune::PhysicsTerm`]): given the network in the ε-parametrisation (with
/// its labels, for conditional models), the SDE and the batch, a scalar to add; it may draw
/// its own times and noise from `rng`.
pub trait AuxLoss<B: AutodiffBackend> {
    /// The extra loss on batch `x0: [n, d]`.
    fn loss(
        &self,
        model: &dyn crate::score::EpsModel<B>,
        sde: &dyn crate::sde::Sde,
        x0: Tensor<B, 2>,
        rng: &mut Rng,
    ) -> Tensor<B, 1>;
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Total steps completed.
    pub steps: u64,
    /// Steps run by this call (fewer than `steps` when it resumed a checkpoint).
    pub run_steps: u64,
    /// Mean loss over the first and the last 10% of the steps run now.
    pub first_loss: f64,
    /// Mean loss over the last 10%.
    pub last_loss: f64,
    /// Wall time of this run's steps, seconds.
    pub seconds: f64,
}

/// Largest pairwise distance in (a subsample of) the data: σ_max of Song & Ermon 2020.
/// The network with the output parametrisation of `cfg`, for the losses.
fn parametrised<'a, M>(
    net: &'a M,
    sde: &'a dyn crate::sde::Sde,
    cfg: &TrainConfig,
) -> Parametrised<'a, M> {
    Parametrised {
        net,
        sde,
        output: cfg.output,
        sigma_data: cfg.sigma_data,
    }
}

/// Mirrors a flattened C×H×W image left–right in place (every row of `width` pixels reversed).
fn hflip(image: &mut [f32], width: usize) {
    image.chunks_mut(width.max(1)).for_each(|row| row.reverse());
}

fn max_pairwise_distance(data: &[f32], dim: usize) -> f64 {
    let n = data.len() / dim;
    let stride = (n / 1000).max(1);
    let rows: Vec<&[f32]> = data.chunks(dim).step_by(stride).collect();
    let mut best = 0.0f64;
    for i in 0..rows.len() {
        for j in (i + 1)..rows.len() {
            let d: f64 = rows[i]
                .iter()
                .zip(rows[j])
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            best = best.max(d);
        }
    }
    best.sqrt()
}

/// Refuses to start a new run (`resume` false) in `out` when it already holds a checkpoint:
/// checked by [`train`], and by callers before they load the data.
pub fn check_output(out: &Path, resume: bool) -> Result<()> {
    if Checkpoint::exists(out) && !resume {
        return Err(Error::checkpoint(
            out,
            "already holds a checkpoint; pass --resume to continue it or choose another --out",
        ));
    }
    Ok(())
}

/// Writes a grid of `cfg.sample_grid` DDIM samples of the EMA network (its own RNG stream, so the
/// training stream and exact resumption are unaffected).
fn sample_grid<B: burn::tensor::backend::Backend>(
    ema: &ScoreNet<B>,
    sde: &dyn crate::sde::Sde,
    shape: [usize; 3],
    cfg: &TrainConfig,
    step: u64,
    path: &Path,
    device: &B::Device,
) -> Result<()> {
    use crate::samplers::{sample, SamplerConfig, SamplerKind};
    let score = crate::score::NeuralScore {
        model: ema,
        sde,
        device: device.clone(),
        output: cfg.output,
        sigma_data: cfg.sigma_data,
    };
    let sc = SamplerConfig {
        steps: cfg.sample_steps.max(1),
        clip: Some((-1.0, 1.0)),
        ..SamplerConfig::new(SamplerKind::Ddim)
    };
    let mut rng = Rng::new(cfg.seed ^ step.rotate_left(32));
    let dim = shape.iter().product();
    let out = sample(
        &sc,
        &score,
        sde,
        cfg.sample_grid,
        dim,
        &mut rng,
        device,
        &mut |_, _| {},
    )?;
    crate::plot::image_grid(path, &crate::tensor::to_vec(out.x), shape, 2)
}

/// Trains a score model (the MLP, or the U-Net when `cfg.unet` is set) on `data`, writing
/// checkpoints, `loss.csv` and, for image models, sample grids into `out`.
pub fn train<B: AutodiffBackend>(
    cfg: &TrainConfig,
    data: &Dataset,
    out: &Path,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary> {
    train_with::<B>(cfg, data, out, opts, None, device)
}

/// The checkpoint in `dir`, refused when its items have another dimension than the data's.
fn load_for_dim(dir: &Path, dim: usize) -> Result<Checkpoint> {
    let ck = Checkpoint::load(dir)?;
    if ck.meta.dim != dim {
        return Err(Error::Shape(format!(
            "the data have {dim} dimensions but the checkpoint in {} was trained on {}",
            dir.display(),
            ck.meta.dim
        )));
    }
    Ok(ck)
}

/// [`train`] with an extra objective added to the loss at every step.
pub fn train_with<B: AutodiffBackend>(
    cfg: &TrainConfig,
    data: &Dataset,
    out: &Path,
    opts: &TrainOptions,
    aux: Option<&dyn AuxLoss<B>>,
    device: &B::Device,
) -> Result<TrainSummary> {
    cfg.validate()?;
    // A time budget rewrites `steps` once the speed is known.
    let mut cfg = cfg.clone();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let dim = data.dim;

    let fingerprint = data.fingerprint();
    let resumed = if opts.resume && Checkpoint::exists(out) {
        let ck = load_for_dim(out, dim)?;
        if let Some(was) = ck.meta.data.as_ref().filter(|was| **was != fingerprint) {
            return Err(Error::checkpoint(
                out,
                format!(
                    "was trained on other data ({} points of {} values, fingerprint {}) than these \
                     ({} points of {} values, fingerprint {}); resume with the same --data and \
                     --first, or start a new run from its weights with --init",
                    was.points,
                    was.dim,
                    was.hash,
                    fingerprint.points,
                    fingerprint.dim,
                    fingerprint.hash
                ),
            ));
        }
        if !ck.meta.averaged_from.is_empty() {
            return Err(Error::checkpoint(
                out,
                format!(
                    "is an average of {} checkpoints (scoregen average) without optimiser state; \
                     fine-tune it with --init instead of resuming it",
                    ck.meta.averaged_from.len()
                ),
            ));
        }
        Some(ck)
    } else {
        check_output(out, opts.resume)?;
        None
    };
    // Fine-tuning: a new run from another checkpoint's weights (a resumed run takes precedence).
    let init = match (&resumed, &opts.init) {
        (None, Some(dir)) => Some((dir.as_path(), load_for_dim(dir, dim)?)),
        _ => None,
    };

    // A resumed or fine-tuned run keeps its checkpoint's data space.
    let inherited = match (&resumed, &init) {
        (Some(ck), _) => Some((out, ck.meta.standardizer.transform)),
        (None, Some((dir, m))) => Some((*dir, m.meta.standardizer.transform)),
        (None, None) => None,
    };
    if let Some((dir, transform)) = inherited.filter(|(_, t)| *t != cfg.transform) {
        return Err(Error::config(
            "transform",
            format!(
                "the checkpoint in {} was trained on the `{}` transform of the data and this \
                 config asks for `{}`; a run cannot change its data space",
                dir.display(),
                transform.name(),
                cfg.transform.name()
            ),
        ));
    }
    let (standardizer, sde_spec, mut rng, start, mut model, mut ema, mut adam) =
        match (&resumed, &init) {
            (Some(ck), _) => {
                let m = &ck.meta;
                let wpath = out.join(&m.weights_file);
                let model: ScoreNet<B> = load_named(
                    cfg.network_skeleton::<B>(dim, m.config.seed, device)?,
                    &ck.tensors,
                    "model.",
                    &wpath,
                )?;
                let ema = load_named(
                    cfg.network_skeleton::<B::InnerBackend>(dim, m.config.seed, device)?,
                    &ck.tensors,
                    "ema.",
                    &wpath,
                )?;
                let mut adam = Adam::<B::InnerBackend>::default();
                adam.load_state(m.adam_steps, &ck.tensors, "adam.", device);
                (
                    m.standardizer.clone(),
                    m.sde.clone(),
                    m.rng.clone(),
                    m.step,
                    model,
                    ema,
                    adam,
                )
            }
            (None, Some((dir, ck))) => {
                let m = &ck.meta;
                if m.config.sde != cfg.sde {
                    return Err(Error::config(
                        "sde",
                        format!(
                        "the --init checkpoint in {} was trained on the {} SDE, this configuration \
                         says {}",
                        dir.display(),
                        m.config.sde,
                        cfg.sde
                    ),
                    ));
                }
                if m.config.output != cfg.output {
                    return Err(Error::config(
                        "output",
                        format!(
                            "the --init checkpoint in {} outputs {:?}, this configuration {:?}",
                            dir.display(),
                            m.config.output,
                            cfg.output
                        ),
                    ));
                }
                let wpath = dir.join(&m.weights_file);
                let model: ScoreNet<B> = load_named(
                    cfg.network_skeleton::<B>(dim, cfg.seed, device)?,
                    &ck.tensors,
                    "ema.",
                    &wpath,
                )?;
                let ema = model.valid();
                (
                    m.standardizer.clone(),
                    m.sde.clone(),
                    Rng::new(cfg.seed),
                    0,
                    model,
                    ema,
                    Adam::default(),
                )
            }
            (None, None) => {
                let st = if cfg.standardize {
                    Standardizer::fit_with(data, cfg.transform)
                } else {
                    Standardizer::identity_with(dim, cfg.transform)
                };
                let z = st.forward(&data.data);
                let spec = cfg.sde_spec(max_pairwise_distance(&z, dim))?;
                let model = cfg.network::<B>(dim, cfg.seed, device)?;
                let ema = model.valid();
                (st, spec, Rng::new(cfg.seed), 0, model, ema, Adam::default())
            }
        };
    let sde = sde_spec.build()?;
    cfg.loss.validate(sde.as_ref())?;
    let z = standardizer.forward(&data.data);
    let classes = model.num_classes();
    if classes > 0 {
        match &data.labels {
            None => {
                return Err(Error::config(
                    "unet.num_classes",
                    "a class-conditional model needs labelled data (e.g. idx:<images>,<labels>)",
                ))
            }
            Some(l) if l.len() != data.len() => {
                return Err(Error::Shape(format!(
                    "{} labels for {} items",
                    l.len(),
                    data.len()
                )))
            }
            Some(l) => {
                if let Some(bad) = l.iter().find(|&&v| v as usize >= classes) {
                    return Err(Error::config(
                        "unet.num_classes",
                        format!("label {bad} is ≥ the {classes} classes of the model"),
                    ));
                }
            }
        }
    }
    let class_counts = match &data.labels {
        Some(l) if classes > 0 => super::class_mix::class_counts(l, classes),
        _ => Vec::new(),
    };
    let n = data.len();
    let mut log = StepLog::<B::InnerBackend>::open(
        out,
        resumed.as_ref().map(|c| c.meta.step),
        format!(
            "lower the learning rate (lr = {}) or the gradient clip (grad_clip = {}); the last \
             good checkpoint in {} is kept",
            cfg.lr,
            cfg.grad_clip,
            out.display()
        ),
    )?;

    if resumed.is_some() && start >= cfg.steps {
        return Err(Error::config(
            "steps",
            format!(
                "the checkpoint in {} is already at step {start} of its {} steps; pass a larger \
                 total (--steps) to train further",
                out.display(),
                cfg.steps
            ),
        ));
    }
    let mut end = opts.stop_after.map_or(cfg.steps, |s| s.min(cfg.steps));
    let mut warmup = cfg.warmup.min(cfg.steps / 10);
    let mut budget = opts.minutes.map(|m| TimeBudget::new(m, start));
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(cfg.steps);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {per_sec} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_position(start);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let clock = std::time::Instant::now();
    let save = |cfg: &TrainConfig,
                step: u64,
                model: &ScoreNet<B>,
                ema: &ScoreNet<B::InnerBackend>,
                adam: &Adam<B::InnerBackend>,
                rng: &Rng,
                last: f64| {
        let mut tensors: Vec<_> = named_params(model)
            .into_iter()
            .map(|(k, v)| (format!("model.{k}"), v))
            .collect();
        tensors.extend(
            named_params(ema)
                .into_iter()
                .map(|(k, v)| (format!("ema.{k}"), v)),
        );
        tensors.extend(
            adam.state_tensors()
                .into_iter()
                .map(|(k, v)| (format!("adam.{k}"), v)),
        );
        let meta = CheckpointMeta {
            format_version: FORMAT_VERSION,
            scoregen_version: env!("CARGO_PKG_VERSION").to_string(),
            step,
            config: cfg.clone(),
            sde: sde_spec.clone(),
            dim,
            standardizer: standardizer.clone(),
            rng: rng.clone(),
            adam_steps: adam.t,
            last_loss: last,
            weights_file: String::new(),
            class_counts: class_counts.clone(),
            averaged_from: Vec::new(),
            data: Some(fingerprint.clone()),
        };
        Checkpoint::save(out, meta, &tensors)
    };

    // The configured score-matching loss, plus the extra objective when there is one.
    let loss_cfg = cfg.loss.clone();
    let objective = |m: &dyn crate::score::EpsModel<B>, x0: Tensor<B, 2>, rng: &mut Rng| {
        let l = loss(&loss_cfg, &m, sde.as_ref(), x0.clone(), rng)?;
        Ok::<_, Error>(match aux {
            Some(a) => l + a.loss(m, sde.as_ref(), x0, rng),
            None => l,
        })
    };
    let dropout = cfg.unet.as_ref().is_some_and(|u| u.dropout > 0.0);
    let mut step = start;
    while step < end {
        step += 1;
        let idx: Vec<usize> = (0..cfg.batch).map(|_| rng.below(n)).collect();
        let mut xb = Vec::with_capacity(cfg.batch * dim);
        for &i in &idx {
            let start = xb.len();
            xb.extend_from_slice(&z[i * dim..(i + 1) * dim]);
            if let (true, Some(u)) = (cfg.hflip, &cfg.unet) {
                if rng.uniform() < 0.5 {
                    hflip(&mut xb[start..], u.width);
                }
            }
        }
        let x0 = from_rows::<B>(xb, cfg.batch, dim, device);
        // Mixed precision: this step's network is a cast copy of the f32 master weights.
        let cast = cfg.precision.step_copy(&model);
        let net = cast.as_ref().unwrap_or(&model);
        let forward = || match &data.labels {
            Some(labels) if classes > 0 => {
                // Label dropout: the null class `classes` with probability `label_dropout`.
                let y: Vec<i64> = idx
                    .iter()
                    .map(|&i| {
                        if rng.uniform() < cfg.label_dropout {
                            classes as i64
                        } else {
                            labels[i] as i64
                        }
                    })
                    .collect();
                let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [cfg.batch]), device);
                let labelled = WithLabels { net, labels: y };
                objective(&parametrised(&labelled, sde.as_ref(), &cfg), x0, &mut rng)
            }
            _ => objective(&parametrised(net, sde.as_ref(), &cfg), x0, &mut rng),
        };
        // Dropout masks come from the backend's generator, which a checkpoint cannot hold:
        // seeded from (seed, step) they are the same whether or not the run was resumed.
        let l = if dropout {
            crate::nn::seeded::<B, _>(device, step_seed(cfg.seed, step), forward)?
        } else {
            forward()?
        };
        drop(cast);
        let value = l.clone().inner();
        let grads = GradientsParams::from_grads(l.backward(), &model);
        let lr = lr_at(step, cfg.steps, cfg.lr, warmup, cfg.lr_min_factor);
        let clip = (cfg.grad_clip > 0.0).then_some(cfg.grad_clip);
        let (m, gnorm) = adam.step(model, grads, lr, clip);
        model = m;
        // EMA warm-up (as TensorFlow's ExponentialMovingAverage with num_updates): early on
        // the average would otherwise stay mostly the random initialisation.
        let decay = cfg
            .ema_decay
            .min((1.0 + step as f64) / (10.0 + step as f64));
        ema = ema_update(ema, &model.valid(), decay);
        // Read a step later: the device has this step queued while the host waits.
        let read = log
            .push(StepValues {
                step,
                loss: value,
                grad_norm: gnorm,
                lr,
            })
            .inspect_err(|_| bar.abandon())?;
        bar.inc(1);
        if read.is_some_and(|s| s % 10 == 0) {
            bar.set_message(format!("loss {:.4}", log.last_loss));
        }
        if let Some(b) = budget.as_mut() {
            let check = b.after_step(step);
            if let Some((total, rate)) = check.planned {
                cfg.steps = total;
                end = opts.stop_after.map_or(total, |s| s.min(total));
                warmup = cfg.warmup.min(total / 10);
                bar.set_length(total);
                let minutes = b.minutes();
                bar.suspend(|| eprintln!("{}", super::budget::plan_line(total, rate, minutes)));
            }
            if check.spent {
                end = step;
            }
        }
        if step % cfg.checkpoint_every == 0 || step == end {
            log.flush().inspect_err(|_| bar.abandon())?;
            save(&cfg, step, &model, &ema, &adam, &rng, log.last_loss)?;
            if let (Some(u), true) = (&cfg.unet, cfg.sample_grid > 0) {
                let path = out.join(format!("samples-{step:08}.png"));
                sample_grid(
                    &ema,
                    sde.as_ref(),
                    [u.channels, u.height, u.width],
                    &cfg,
                    step,
                    &path,
                    device,
                )?;
            }
        }
    }
    log.flush()?;
    bar.finish_and_clear();
    let (losses, last_loss) = (&log.losses, log.last_loss);
    let k = (losses.len() / 10).max(1);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(TrainSummary {
        steps: end.max(start),
        run_steps: end.saturating_sub(start),
        first_loss: mean(&losses[..k.min(losses.len())]),
        last_loss: if losses.is_empty() {
            last_loss
        } else {
            mean(&losses[losses.len().saturating_sub(k)..])
        },
        seconds: clock.elapsed().as_secs_f64(),
    })
}

/// The backend seed of training step `step`'s dropout masks.
fn step_seed(seed: u64, step: u64) -> u64 {
    Rng::new(seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

#[cfg(test)]
#[path = "trainer_tests.rs"]
mod tests;
