//! `scoregen sample`: a checkpoint's samples as CSV, NPY, a PNG grid or a folder of PNGs, with
//! an optional trajectory figure.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use super::SampleArgs;
use scoregen::app::trajectory::{write_trajectory_figure, TrajectoryRecorder, TRAJECTORY_ROWS};
use scoregen::app::Trained;
use scoregen::data::{self, write_csv, write_npy};
use scoregen::nn::Guidance;
use scoregen::rng::Rng;
use scoregen::samplers::{SamplerConfig, SamplerKind};
use scoregen::tensor::to_vec;

fn sampler_config(a: &SampleArgs) -> Result<SamplerConfig> {
    let mut c = SamplerConfig::new(SamplerKind::from_name(&a.sampler)?);
    if let Some(v) = a.steps {
        if c.kind == SamplerKind::Ode {
            eprintln!(
                "note: ode is the adaptive RK45 solver; --steps {v} is ignored (--tol sets its accuracy)"
            );
        }
        c.steps = v;
    }
    if let Some(v) = a.corrector_steps {
        c.corrector_steps = v;
    }
    if let Some(v) = a.snr {
        c.snr = v;
    }
    if let Some(v) = a.step_size {
        c.step_size = v;
    }
    if let Some(v) = a.eta {
        c.eta = v;
    }
    let churn = [
        ("--s-churn", a.s_churn, &mut c.heun.s_churn),
        ("--s-tmin", a.s_tmin, &mut c.heun.s_tmin),
        ("--s-tmax", a.s_tmax, &mut c.heun.s_tmax),
        ("--s-noise", a.s_noise, &mut c.heun.s_noise),
    ];
    for (flag, value, field) in churn {
        if let Some(v) = value {
            if c.kind != SamplerKind::Heun {
                bail!("{flag} applies to --sampler heun only (not {})", a.sampler);
            }
            *field = v;
        }
    }
    if let Some(v) = a.tol {
        c.rtol = v;
        c.atol = v;
    }
    c.denoise = !a.no_denoise;
    Ok(c)
}

fn write_points(path: &Path, x: &[f32], dim: usize) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => write_csv(path, x, dim)?,
        Some("npy") => write_npy(path, x, dim)?,
        _ => bail!("{}: output must end in .csv or .npy", path.display()),
    }
    Ok(())
}

/// A progress bar over a process in time t (sampling from T down to ε, the likelihood ODE from ε
/// up to T), positions 0..=1000 for the fraction done; drawn only on a terminal.
pub(super) fn time_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{percent:>3}}% of t [{{elapsed_precise}}]"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// A sampling run split into batches: `num` samples, at most `batch` at a time, of the given
/// classes (one per sample) with guidance weights `guidance`.
struct Batches<'a> {
    num: usize,
    batch: usize,
    classes: Option<&'a [usize]>,
    guidance: &'a Guidance,
}

impl Batches<'_> {
    /// Samples batch after batch, drawing the noise in turn from `rng`, with a progress bar on a
    /// terminal and, for several batches, one line per batch; `trajectory` records the first
    /// `rows` samples of the first batch.
    fn sample<B: Backend>(
        &self,
        model: &Trained<B>,
        cfg: &SamplerConfig,
        rng: &mut Rng,
        mut trajectory: Option<(&mut TrajectoryRecorder, usize)>,
    ) -> Result<Sampled> {
        let (num, batch) = (self.num, self.batch);
        let chunks = num.div_ceil(batch);
        let t = std::time::Instant::now();
        // How far the whole run has come: batches done plus the current batch's progress from
        // t = T to the end.
        let bar = time_bar(&format!("sampling {num} with {}", cfg.kind.name()));
        let (t_end, t_min) = (model.sde.t_end(), model.sde.t_min());
        let mut x = Vec::new();
        let mut nfes = Vec::with_capacity(chunks);
        for (i, start) in (0..num).step_by(batch).enumerate() {
            let n = batch.min(num - start);
            let mut observe = |t: f64, x: &Tensor<B, 2>| {
                let done = ((t_end - t) / (t_end - t_min)).clamp(0.0, 1.0);
                let overall = (i as f64 + done) / chunks as f64;
                bar.set_position(bar.position().max((overall * 1000.0).round() as u64));
                if let (0, Some((r, rows))) = (i, trajectory.as_mut()) {
                    r.offer(t, || to_vec(x.clone().narrow(0, 0, *rows)));
                }
            };
            let sampled = match self.classes {
                Some(c) => model.sample_classes(
                    cfg,
                    &c[start..start + n],
                    self.guidance,
                    rng,
                    &mut observe,
                ),
                None => model.sample_guided(cfg, n, self.guidance.weight(0), rng, &mut observe),
            };
            if sampled.is_err() {
                bar.finish_and_clear();
            }
            let (xs, nfe) = if chunks > 1 {
                sampled.with_context(|| format!("batch {} of {chunks}", i + 1))?
            } else {
                sampled?
            };
            x.extend(xs);
            nfes.push((nfe, n));
            if chunks > 1 {
                let elapsed = t.elapsed().as_secs_f64();
                let done = start + n;
                let line = format!(
                    "batch {} of {chunks}: {done} of {num} samples in {elapsed:.1} s, about {:.0} s left",
                    i + 1,
                    elapsed / done as f64 * (num - done) as f64
                );
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
        }
        bar.finish_and_clear();
        // Network evaluations per sample: one figure, or a range where the adaptive ODE solver
        // took a different number of steps for different batches.
        let (lo, hi) = nfes
            .iter()
            .fold((usize::MAX, 0), |(lo, hi), &(f, _)| (lo.min(f), hi.max(f)));
        Ok(Sampled {
            x,
            evaluations: nfes.iter().map(|&(f, n)| f * n).sum(),
            nfe: if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}–{hi}")
            },
        })
    }
}

/// What a batched run returns.
struct Sampled {
    /// The samples, in order (data space).
    x: Vec<f32>,
    /// Network evaluations over all samples.
    evaluations: usize,
    /// Network evaluations per sample, as printed ("49", or "38–44" across batches).
    nfe: String,
}

pub fn sample<B: AutodiffBackend>(device: &B::Device, a: &SampleArgs) -> Result<()> {
    let mut cfg = sampler_config(a)?;
    let ext = a
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_string();
    // No extension: a folder of PNG files, one per image.
    let folder = a.out.extension().is_none();
    if !folder && !matches!(ext.as_str(), "csv" | "npy" | "png") {
        bail!(
            "{}: output must end in .csv, .npy or .png, or be a folder (no extension) for one PNG per image",
            a.out.display()
        );
    }
    if folder {
        data::check_png_folder_target(&a.out)?;
    }
    let mut model = Trained::<B::InnerBackend>::load(&a.checkpoint, !a.no_ema, device)?
        .with_precision(a.precision);
    if let Some(dir) = &a.discriminator {
        model = super::refine_command::with_discriminator::<B>(
            model,
            dir,
            a.dg_weight,
            a.dg_sigma_max,
            a.class.is_some(),
            device,
        )?;
    }
    if let Some(dir) = &a.guide_with {
        if a.guidance.is_zero() {
            bail!(
                "--guide-with {}: autoguidance needs a guidance weight (--guidance w, w ≠ 0)",
                dir.display()
            );
        }
        let guide =
            Trained::<B::InnerBackend>::load(dir, !a.no_ema, device)?.with_precision(a.precision);
        model = model.with_guide(guide, dir)?;
        if let Some(free) = &a.free_guidance {
            model = model
                .with_free_guidance(free.clone())
                .with_context(|| format!("--free-guidance {free}"))?;
        }
    }
    if let Some(interval) = a.guidance_interval {
        if a.guidance.is_zero() {
            bail!("--guidance-interval {interval}: there is no guidance to limit (--guidance w, w ≠ 0)");
        }
        model = model.with_guidance_interval(interval);
    }
    if let Some(interval) = a.free_guidance_interval {
        model = model.with_free_guidance_interval(interval);
    }
    let image_shape = model.image_shape();
    if image_shape.is_some() && !a.no_clip {
        cfg.clip = Some((-1.0, 1.0));
    }
    if (ext == "png" || folder) && image_shape.is_none() {
        bail!(
            "{}: PNG outputs (a grid or a folder) need an image model; this checkpoint holds {}-dimensional points (write .csv or .npy)",
            a.out.display(),
            model.dim()
        );
    }
    let t = std::time::Instant::now();
    let mut rng = Rng::new(a.seed);
    let classes: Option<Vec<usize>> = match a.class.as_deref() {
        None => None,
        Some("all") => {
            let k = model.num_classes().max(1);
            Some((0..a.num).map(|i| i % k).collect())
        }
        Some("data") => Some(
            scoregen::train::class_mix::proportional_classes(&model.meta.class_counts, a.num)
                .with_context(|| {
                    format!(
                        "--class data: {} records no training items per class (a class-conditional checkpoint written before they were recorded, or an unconditional one); use --class all or one class at a time",
                        a.checkpoint.display()
                    )
                })?,
        ),
        Some(c) => {
            let c: usize = c.parse().with_context(|| {
                format!("--class {c}: expected a class index, `all` or `data`")
            })?;
            Some(vec![c; a.num])
        }
    };
    if classes.is_none() && !a.guidance.is_zero() {
        if matches!(a.guidance, Guidance::PerClass(_)) {
            bail!(
                "--guidance {}: one weight per class needs --class",
                a.guidance
            );
        }
        if a.guide_with.is_none() {
            bail!(
                "--guidance {}: classifier-free guidance needs --class; without classes, \
                 guidance needs a guiding model (--guide-with, autoguidance)",
                a.guidance
            );
        }
    }
    let mut recorder = match (&a.trajectory, image_shape) {
        (None, _) => None,
        (Some(p), _) if data::check_png_path(p).is_err() => {
            bail!("--trajectory {}: the figure must end in .png", p.display())
        }
        (Some(p), None) => bail!(
            "--trajectory {}: trajectory figures are for image models; this checkpoint holds {}-dimensional points (see `scoregen plot score-field`)",
            p.display(),
            model.dim()
        ),
        (Some(_), Some(_)) => Some(TrajectoryRecorder::new(a.frames)?),
    };
    let batch = a.batch.unwrap_or(a.num).min(a.num);
    // The trajectory follows the first samples of the first batch.
    let rows = batch.min(TRAJECTORY_ROWS);
    let run = Batches {
        num: a.num,
        batch,
        classes: classes.as_deref(),
        guidance: &a.guidance,
    };
    let Sampled {
        x,
        evaluations,
        nfe,
    } = run.sample(&model, &cfg, &mut rng, recorder.as_mut().map(|r| (r, rows)))?;
    let secs = t.elapsed().as_secs_f64();
    if let (Some(path), Some(r), Some(shape)) = (&a.trajectory, recorder, image_shape) {
        let seen = r.seen();
        let times = write_trajectory_figure(path, r, &model.meta.standardizer, &x, rows, shape)?;
        let at: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
        eprintln!(
            "trajectory: {rows} samples × {} moments (of {seen} states) at t = {} → {}",
            times.len(),
            at.join(", "),
            path.display()
        );
    }
    match image_shape {
        Some(shape) if folder => {
            let k = model.num_classes();
            let labelled = classes.as_deref().map(|c| (c, k));
            data::write_png_folder(&a.out, &x, shape, labelled)?;
        }
        Some(shape) if ext == "png" => scoregen::plot::image_grid(&a.out, &x, shape, 2)?,
        Some([c, h, w]) if ext == "npy" => {
            let unit: Vec<f32> = x
                .iter()
                .map(|v| ((v + 1.0) / 2.0).clamp(0.0, 1.0))
                .collect();
            data::write_npy_shaped(&a.out, &unit, &[a.num, c, h, w])?;
            if let Some(classes) = &classes {
                let labels: Vec<f32> = classes.iter().map(|&k| k as f32).collect();
                let lp = data::sibling_npy(&a.out, "labels");
                data::write_npy_shaped(&lp, &labels, &[a.num])?;
                eprintln!(
                    "labels → {} (evaluate with --fake npy:{},{})",
                    lp.display(),
                    a.out.display(),
                    lp.display()
                );
            }
        }
        _ => write_points(&a.out, &x, model.dim())?,
    }
    eprintln!(
        "{} samples with {} ({} NFE each) in {:.2} s ({:.1} {} evaluations/s, {:.3} samples/s) → {}",
        a.num,
        cfg.kind.name(),
        nfe,
        secs,
        evaluations as f64 / secs.max(1e-9),
        if image_shape.is_some() { "image" } else { "point" },
        a.num as f64 / secs.max(1e-9),
        a.out.display()
    );
    Ok(())
}
