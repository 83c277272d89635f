//! One function per command: read arguments, call the library, print results.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;

use super::{
    DemoArgs, EvalArgs, InpaintArgs, LikelihoodArgs, PhysicsMeasure, PhysicsTimes, ScoreFieldArgs,
    TrainArgs,
};
use scoregen::app::{self, FigureOptions, Trained};
use scoregen::data::{self, Toy, TOY_NAMES};
use scoregen::losses::{LossKind, TimeSampler};
use scoregen::nn::Precision;
use scoregen::rng::Rng;
use scoregen::samplers::SamplerKind;
use scoregen::train::{self, Checkpoint, TrainConfig, TrainOptions};

pub use super::image_commands::{
    classifier, eval_images, is_image_source, load_images_of_shape, require_image_model,
};
pub use super::sample_command::sample;
use super::sample_command::time_bar;

pub fn train<B: AutodiffBackend>(device: &B::Device, a: &TrainArgs) -> Result<()> {
    scoregen::train::check_output(&a.out, a.resume)?;
    let mut cfg = match (&a.config, &a.init) {
        (Some(p), _) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading config {}", p.display()))?;
            TrainConfig::from_toml(&text, p)?
        }
        // Resuming without --config continues the checkpoint's own configuration.
        (None, _) if a.resume && Checkpoint::exists(&a.out) => {
            Checkpoint::load_meta(&a.out)?.config
        }
        // Fine-tuning without --config keeps the initial checkpoint's configuration.
        (None, Some(dir)) => Checkpoint::load_meta(dir)?.config,
        (None, None) => TrainConfig::default(),
    };
    if let Some(s) = &a.sde {
        cfg.sde = s.clone();
    }
    if let Some(l) = &a.loss {
        cfg.loss.kind = LossKind::from_name(l)?;
    }
    if a.likelihood_weighting {
        cfg.loss.likelihood_weighting = true;
    }
    if let Some(t) = a.times {
        cfg.loss.times = t;
    }
    if let Some(v) = a.steps {
        cfg.steps = v;
    }
    if let Some(v) = a.batch {
        cfg.batch = v;
    }
    if let Some(v) = a.lr {
        cfg.lr = v;
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(p) = a.precision {
        cfg.precision = p;
    }
    cfg.validate()?;
    let mut ds = if is_image_source(&a.data) {
        let images = data::load_images(&a.data)?;
        let mut u = cfg.unet.clone().unwrap_or_default();
        (u.channels, u.height, u.width) = (images.channels, images.height, images.width);
        if a.class_conditional {
            if images.labels.is_none() {
                bail!("{}: --class-conditional needs labelled images", a.data);
            }
            u.num_classes = images.class_names.len();
        }
        cfg.unet = Some(u);
        cfg.standardize = false;
        images.to_dataset()
    } else {
        if a.class_conditional {
            bail!(
                "--class-conditional is for labelled image data (idx:, cifar:, png:, npy:), not {}",
                a.data
            );
        }
        data::load(&a.data, a.toy_samples, &mut Rng::new(cfg.seed ^ 0xDA7A))?
    };
    if let Some(n) = a.first {
        ds.truncate(n);
    }
    cfg.validate()?;
    let items = match &cfg.unet {
        Some(u) => format!(
            "{} images of {}×{}×{}",
            ds.len(),
            u.channels,
            u.height,
            u.width
        ),
        None => format!("{} points of dimension {}", ds.len(), ds.dim),
    };
    eprintln!(
        "training on {items} | sde {} | loss {:?}{} | {} steps, batch {}",
        cfg.sde,
        cfg.loss.kind,
        match cfg.loss.sampler() {
            TimeSampler::Uniform => String::new(),
            TimeSampler::Lognormal { p_mean, p_std } => format!(", ln σ ~ N({p_mean}, {p_std}²)"),
        },
        cfg.steps,
        cfg.batch
    );
    let params = cfg
        .network::<B::InnerBackend>(ds.dim, cfg.seed, device)?
        .num_params();
    eprintln!(
        "network: {} with {params} parameters",
        if cfg.unet.is_some() { "U-Net" } else { "MLP" }
    );
    if let Some(d) = &a.init {
        eprintln!(
            "fine-tuning from the EMA weights of {} (step 0, new schedule)",
            d.display()
        );
    }
    if cfg.precision == Precision::Bf16 {
        eprintln!("mixed precision: bf16 compute, f32 master weights, GroupNorm, softmax and loss");
    }
    if let Some(m) = a.minutes.filter(|m| !(m.is_finite() && *m > 0.0)) {
        bail!("--minutes {m}: the time budget must be a positive number of minutes");
    }
    let opts = TrainOptions {
        resume: a.resume,
        init: a.init.clone(),
        progress: true,
        minutes: a.minutes,
        ..Default::default()
    };
    let physics = match &a.physics_ssnet {
        Some(dir) => {
            let (net, meta) = scoregen::physics::segment::load_ssnet::<B>(dir, device)?;
            let u = cfg.unet.as_ref();
            if u.map(|u| (u.channels, u.height, u.width))
                != Some((1, meta.config.size, meta.config.size))
            {
                bail!(
                    "--physics-ssnet {}: SSNet takes 1×{s}×{s} events, the data are not of that shape",
                    dir.display(),
                    s = meta.config.size
                );
            }
            use scoregen::physics::finetune::{Measure, PhysicsTerm};
            let measure = match a.physics_measure {
                PhysicsMeasure::Count => Measure::Count(meta.threshold),
                PhysicsMeasure::Charge => Measure::Charge,
            };
            let times = match a.physics_times {
                PhysicsTimes::Loss => cfg.loss.sampler(),
                PhysicsTimes::Uniform => TimeSampler::Uniform,
            };
            eprintln!(
                "physics term: SSNet from {}, weight {}, {measure:?} fractions, times {times:?}",
                dir.display(),
                a.physics_weight
            );
            Some(PhysicsTerm::new(net, a.physics_weight, measure).with_times(times))
        }
        None => None,
    };
    let aux = physics.as_ref().map(|p| p as &dyn train::AuxLoss<B>);
    let s = train::train_with::<B>(&cfg, &ds, &a.out, &opts, aux, device)?;
    app::plot_loss_curve(
        &a.out.join("loss.csv"),
        &a.out.join("loss.png"),
        &loss_title(&a.out),
    )?;
    eprintln!(
        "done: step {}, {} steps run in {:.1} s ({:.2} steps/s) | loss {:.4} → {:.4} | checkpoint {}",
        s.steps,
        s.run_steps,
        s.seconds,
        (s.run_steps as f64) / s.seconds.max(1e-9),
        s.first_loss,
        s.last_loss,
        a.out.display()
    );
    Ok(())
}

pub fn likelihood<B: AutodiffBackend>(device: &B::Device, a: &LikelihoodArgs) -> Result<()> {
    let model = Trained::<B>::load(&a.checkpoint, true, device)?;
    let mut rng = Rng::new(a.seed);
    let image_data = is_image_source(&a.data);
    let mut ds = if image_data {
        data::load_images(&a.data)?.to_dataset()
    } else {
        data::load(&a.data, a.toy_samples, &mut rng)?
    };
    if let Some(n) = a.first {
        ds.truncate(n);
    }
    if ds.dim != model.dim() {
        bail!(
            "{}: the data have {} dimensions but the model in {} was trained on {}",
            a.data,
            ds.dim,
            a.checkpoint.display(),
            model.dim()
        );
    }
    let div = app::default_divergence(ds.dim, a.hutchinson, a.gaussian_probes)?;
    let (points, levels) = if image_data {
        // 8-bit pixels k, scaled as in training to [−1, 1]: dequantise to (k + u)/128 − 1, whose
        // bins have width 1/128, so bits/dim of the pixels add log2(128) (MATH.md).
        let ints: Vec<f32> = ds
            .data
            .iter()
            .map(|v| ((v + 1.0) * 127.5).round())
            .collect();
        let deq = scoregen::likelihood::dequantize(&ints, 256, &mut rng)
            .with_context(|| a.data.clone())?;
        (
            deq.iter().map(|v| 2.0 * v - 1.0).collect::<Vec<f32>>(),
            Some(128.0),
        )
    } else {
        match a.dequantize {
            Some(l) => (
                scoregen::likelihood::dequantize(&ds.data, l, &mut rng)
                    .with_context(|| a.data.clone())?,
                Some(f64::from(l)),
            ),
            None => (ds.data.clone(), None),
        }
    };
    let t = std::time::Instant::now();
    // Thousands of network evaluations per image: show how far the ODE has come.
    let bar = time_bar("probability-flow ODE");
    let nll = app::nll_of_points(
        &model,
        &points,
        Path::new(&a.data),
        div,
        a.tol,
        2048,
        &mut rng,
        &mut |f| bar.set_position((f * 1000.0).round() as u64),
    )?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    if a.json {
        let obj = serde_json::json!({
            "nll_nats_per_dim": nll.nats_per_dim(),
            "bits_per_dim": nll.bits_per_dim(levels),
            "dequantize_levels": levels,
            "num_points": nll.per_point.len(),
            "dim": nll.dim,
            "divergence": div,
            "nfe": nll.nfe,
            "seconds": secs,
        });
        println!("{obj}");
    } else {
        println!(
            "NLL {:.4} nats/dim = {:.4} bits/dim over {} points ({:?} divergence, {} NFE, {:.1} s)",
            nll.nats_per_dim(),
            nll.bits_per_dim(levels),
            nll.per_point.len(),
            div,
            nll.nfe,
            secs
        );
    }
    Ok(())
}

pub fn score_field<B: AutodiffBackend>(device: &B::Device, a: &ScoreFieldArgs) -> Result<()> {
    let opts = FigureOptions {
        size: a.size,
        seed: a.seed,
        samples: a.samples,
        density_grid: a.density_grid.max(2),
        ..Default::default()
    };
    if let Some(ck) = &a.checkpoint {
        let model = Trained::<B>::load(ck, true, device)?;
        app::model_score_field(&model, &a.out, &opts)?;
    } else if let Some(name) = &a.toy {
        let toy = Toy::from_name(name)?;
        let Some(gmm) = toy.mixture() else {
            bail!("toy `{name}` has no closed-form density; train a model on it (scoregen train --data toy:{name}) and plot its --checkpoint");
        };
        app::exact_score_field::<B::InnerBackend>(&gmm, &a.out, &opts, device)?;
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

pub fn loss_plot(checkpoint: &Path, out: &Path) -> Result<()> {
    app::plot_loss_curve(&checkpoint.join("loss.csv"), out, &loss_title(checkpoint))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

pub fn list() {
    println!("samplers:");
    for (name, kind) in SamplerKind::ALL {
        let steps = kind.default_steps();
        let steps = if steps == 0 {
            "adaptive".to_string()
        } else {
            format!("{steps} steps")
        };
        println!("  {name:<18} ({steps} by default)");
    }
    println!("toy data (use as --data toy:NAME):");
    for name in TOY_NAMES {
        let closed = if Toy::from_name(name)
            .ok()
            .and_then(|t| t.mixture())
            .is_some()
        {
            " (closed-form density)"
        } else {
            ""
        };
        println!("  {name}{closed}");
    }
}

pub fn demo<B: AutodiffBackend>(device: &B::Device, a: &DemoArgs) -> Result<()> {
    let opts = app::DemoOptions {
        out: a.out.clone(),
        steps: a.steps,
        seed: a.seed,
        ..Default::default()
    };
    eprintln!("scoregen demo: mixture of two Gaussians ⅕N((−5,−5),I) + ⅘N((5,5),I), VE SDE, MLP, {} steps", a.steps);
    let t = std::time::Instant::now();
    let r = app::run_demo::<B>(&opts, device)?;
    println!(
        "training: {} steps in {:.1} s, loss {:.4} → {:.4}",
        r.train_steps, r.train_seconds, r.loss_first, r.loss_last
    );
    println!("samples vs truth (energy distance; noise floor {:.5} ± {:.5}, two truth samples of the same size):", r.noise_floor.mean, r.noise_floor.std);
    for s in &r.samplers {
        println!(
            "  {:<18} ED {:.5}  ({:.1}× floor)  {} NFE, {:.1} s",
            s.sampler,
            s.energy_distance,
            s.energy_distance / r.noise_floor.mean.max(1e-12),
            s.nfe,
            s.seconds
        );
    }
    println!(
        "likelihood of {} held-out points: model {:.4} nats/dim vs exact {:.4} nats/dim (difference {:+.4})",
        app::NLL_POINTS,
        r.model_nll,
        r.exact_nll,
        r.model_nll - r.exact_nll
    );
    println!("files:");
    for f in &r.files {
        println!("  {}", f.display());
    }
    println!("total {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    let mut rng = Rng::new(a.seed);
    let real = data::load(&a.real, a.toy_samples, &mut rng)?;
    let fake = data::load(&a.fake, a.toy_samples, &mut rng)?;
    if real.dim != fake.dim {
        bail!(
            "{} has {} dimensions but {} has {}",
            a.real,
            real.dim,
            a.fake,
            fake.dim
        );
    }
    let c = scoregen::eval::compare(&real.data, &fake.data, real.dim, a.max_points, &mut rng)?;
    if a.json {
        println!("{}", serde_json::to_string(&c)?);
    } else {
        println!(
            "{} points per set, dimension {} (real-vs-real: two disjoint halves of the real data)",
            c.num_points, c.dim
        );
        println!(
            "  {:<20} {:>12} {:>14}",
            "statistic", "generated", "real-vs-real"
        );
        for (name, f) in [
            ("energy distance", c.energy_distance),
            ("MMD² (RBF)", c.mmd2_rbf),
            ("sliced Wasserstein", c.sliced_wasserstein),
        ] {
            println!("  {name:<20} {:>12.5} {:>14.5}", f.value, f.real_vs_real);
        }
    }
    Ok(())
}

/// The known-pixel mask (1 = known) for one C×H×W image.
fn inpaint_mask(spec: &str, [c, h, w]: [usize; 3], rng: &mut Rng) -> Result<Vec<f32>> {
    let at = |f: &dyn Fn(usize, usize) -> bool| -> Vec<f32> {
        (0..c)
            .flat_map(|_| (0..h * w).map(|i| if f(i / w, i % w) { 1.0 } else { 0.0 }))
            .collect()
    };
    Ok(match spec {
        "half" => at(&|_, x| x < w / 2),
        "centre" | "center" => {
            at(&|y, x| !(y >= h / 4 && y < h - h / 4 && x >= w / 4 && x < w - w / 4))
        }
        s if s.starts_with("random:") => {
            let p: f64 = s[7..]
                .parse()
                .with_context(|| format!("--mask {s}: P must be a number"))?;
            if !(0.0..=1.0).contains(&p) {
                bail!("--mask {s}: P must lie in [0, 1]");
            }
            let keep: Vec<bool> = (0..h * w).map(|_| rng.uniform() >= p).collect();
            at(&|y, x| keep[y * w + x])
        }
        path => {
            if !Path::new(path).is_file() {
                bail!(
                    "--mask {path}: neither a named mask (half, centre, random:P, colour) nor a PNG file"
                );
            }
            let m = data::read_png_file(Path::new(path))?;
            if [m.height, m.width] != [h, w] {
                bail!(
                    "{path}: the mask is {}×{} but the images are {h}×{w}",
                    m.height,
                    m.width
                );
            }
            at(&|y, x| m.pixels[y * w + x] > 0.0)
        }
    })
}

pub fn inpaint<B: AutodiffBackend>(device: &B::Device, a: &InpaintArgs) -> Result<()> {
    use scoregen::tensor::{from_rows, to_vec};
    data::check_png_path(&a.out)?;
    let model = Trained::<B::InnerBackend>::load(&a.checkpoint, true, device)?;
    let shape = require_image_model(&model, &a.checkpoint, "inpaint")?;
    let images = load_images_of_shape(&a.image, shape)?;
    let n = a.num.min(images.len()).max(1);
    let size = images.image_size();
    let mut y = images.pixels[..n * size].to_vec();
    let mut rng = Rng::new(a.seed);
    let colour = matches!(a.mask.as_str(), "colour" | "color");
    let (basis, mask1) = if colour {
        if shape[0] != 3 {
            bail!(
                "--mask colour needs an RGB model; this one has {} channel(s)",
                shape[0]
            );
        }
        // Keep only the grey level: every pixel becomes the mean of its channels, and the
        // mask keeps the luminance coordinate of the colour basis.
        let hw = shape[1] * shape[2];
        for img in y.chunks_mut(size) {
            for p in 0..hw {
                let g = (img[p] + img[hw + p] + img[2 * hw + p]) / 3.0;
                [0, hw, 2 * hw].iter().for_each(|&o| img[o + p] = g);
            }
        }
        let m: Vec<f32> = (0..size).map(|i| if i < hw { 1.0 } else { 0.0 }).collect();
        (scoregen::samplers::Basis::Colour { pixels: hw }, m)
    } else {
        (
            scoregen::samplers::Basis::Identity,
            inpaint_mask(&a.mask, shape, &mut rng)?,
        )
    };
    let mask: Vec<f32> = (0..n).flat_map(|_| mask1.iter().copied()).collect();
    let out = scoregen::samplers::pc_inpaint(
        &model.score(),
        model.sde.as_ref(),
        basis,
        from_rows::<B::InnerBackend>(y.clone(), n, size, device),
        from_rows::<B::InnerBackend>(mask.clone(), n, size, device),
        a.steps,
        1,
        0.16,
        &mut rng,
        &mut |_, _| {},
    )?;
    let filled = to_vec(out.x);
    // Masked inputs with the missing pixels shown mid-grey, then the completions.
    let mut grid: Vec<f32> = if colour {
        y.clone()
    } else {
        y.iter()
            .zip(&mask)
            .map(|(v, m)| if *m > 0.5 { *v } else { 0.0 })
            .collect()
    };
    grid.extend(filled);
    scoregen::plot::image_grid(&a.out, &grid, shape, 2)?;
    eprintln!(
        "inpainted {n} images ({} NFE) → {}",
        out.nfe,
        a.out.display()
    );
    Ok(())
}

/// The loss plot's title: the run directory's name (a full path would not fit).
fn loss_title(run: &Path) -> String {
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| run.display().to_string());
    format!("training loss: {name}")
}
