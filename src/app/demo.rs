//! `scoregen demo`: the whole journey on the mixture of two Gaussians of the reference slides
//! (⅕N((−5,−5), I) + ⅘N((5,5), I)), where every figure has a closed-form reference.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;

use super::loss_curve::plot_loss_curve;
use super::{exact_score_field, model_score_field, nll_of_points, FigureOptions, Trained};
use crate::data::{write_csv, Toy};
use crate::error::{Error, Result};
use crate::eval::{energy_distance, noise_floor, NoiseFloor, Points};
use crate::likelihood::Divergence;
use crate::rng::Rng;
use crate::samplers::{SamplerConfig, SamplerKind};
use crate::train::{train, TrainConfig, TrainOptions, TrainSummary};

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Output folder (`./scoregen-demo`).
    pub out: PathBuf,
    /// Training steps.
    pub steps: u64,
    /// Seed.
    pub seed: u64,
    /// Samples per sampler.
    pub samples: usize,
    /// Show a progress bar while training.
    pub progress: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            out: PathBuf::from("scoregen-demo"),
            steps: 2500,
            seed: 0,
            samples: 1000,
            progress: true,
        }
    }
}

/// One sampler's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SamplerResult {
    /// Sampler name.
    pub sampler: String,
    /// Energy distance to fresh samples of the truth.
    pub energy_distance: f64,
    /// Score evaluations.
    pub nfe: usize,
    /// Seconds.
    pub seconds: f64,
}

/// What the demo measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoReport {
    /// Training steps and seconds.
    pub train_steps: u64,
    /// Training wall time.
    pub train_seconds: f64,
    /// Loss at the start and end.
    pub loss_first: f64,
    /// Loss at the end.
    pub loss_last: f64,
    /// Per-sampler distances.
    pub samplers: Vec<SamplerResult>,
    /// Energy distance between two independent samples of the truth of the same size.
    pub noise_floor: NoiseFloor,
    /// Model NLL of held-out truth samples (nats/dim, probability-flow ODE, exact trace).
    pub model_nll: f64,
    /// Exact NLL of the same points under the true mixture (nats/dim).
    pub exact_nll: f64,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Held-out points for the likelihood comparison.
pub const NLL_POINTS: usize = 500;

fn secs(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Runs the demo on backend `B` (autodiff, for the likelihood).
pub fn run_demo<B: AutodiffBackend>(opts: &DemoOptions, device: &B::Device) -> Result<DemoReport> {
    let toy = Toy::TwoGaussians;
    let gmm = toy
        .mixture()
        .ok_or_else(|| Error::Unsupported("two-gaussians has a closed form".into()))?;
    let mut rng = Rng::new(opts.seed);
    let data = toy.sample(8000, &mut rng);
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let run = opts.out.join("run");
    if run.exists() {
        std::fs::remove_dir_all(&run).map_err(|e| Error::io(&run, e))?;
    }

    let mut cfg = TrainConfig {
        sde: "ve".into(),
        steps: opts.steps,
        batch: 256,
        seed: opts.seed,
        ..Default::default()
    };
    cfg.checkpoint_every = opts.steps;
    cfg.model.hidden = 64;
    cfg.model.blocks = 2;
    let summary: TrainSummary = train::<B>(
        &cfg,
        &data,
        &run,
        &TrainOptions {
            progress: opts.progress,
            ..Default::default()
        },
        device,
    )?;
    let model = Trained::<B>::load(&run, true, device)?;
    let sampler_model = model.inner();

    let mut files = vec![run.clone()];
    let floor = noise_floor(
        5,
        || {
            (
                gmm.sample(opts.samples, &mut rng),
                gmm.sample(opts.samples, &mut rng),
            )
        },
        2,
        energy_distance,
    );
    let mut results = Vec::new();
    for kind in [SamplerKind::AnnealedLangevin, SamplerKind::Pc] {
        // About 500 score evaluations each: 100 levels × 5 Langevin steps; 250 PC steps.
        let mut cfg = SamplerConfig::new(kind);
        match kind {
            SamplerKind::AnnealedLangevin => (cfg.steps, cfg.corrector_steps) = (100, 5),
            _ => cfg.steps = 250,
        }
        let t = std::time::Instant::now();
        let (x, nfe) = sampler_model.sample(&cfg, opts.samples, &mut rng, &mut |_, _| {})?;
        let seconds = secs(t);
        let truth = gmm.sample(opts.samples, &mut rng);
        let ed = energy_distance(Points::new(&x, 2), Points::new(&truth, 2));
        let f = opts.out.join(format!("samples-{}.csv", kind.name()));
        write_csv(&f, &x, 2)?;
        files.push(f);
        results.push(SamplerResult {
            sampler: kind.name().to_string(),
            energy_distance: ed,
            nfe,
            seconds,
        });
    }

    let held_out = gmm.sample(NLL_POINTS, &mut rng);
    let nll = nll_of_points(
        &model,
        &held_out,
        Path::new("held-out samples"),
        Divergence::Exact,
        1e-5,
        NLL_POINTS,
        &mut rng,
        &mut |_| {},
    )?;
    let exact: f64 = held_out
        .chunks(2)
        .map(|p| -gmm.log_pdf(&[p[0] as f64, p[1] as f64]))
        .sum::<f64>()
        / (2 * NLL_POINTS) as f64;

    let fig = FigureOptions {
        seed: opts.seed,
        ..Default::default()
    };
    let p = opts.out.join("score-field-model.png");
    model_score_field(&model, &p, &fig)?;
    files.push(p);
    let p = opts.out.join("score-field-exact.png");
    exact_score_field::<B::InnerBackend>(&gmm, &p, &fig, device)?;
    files.push(p);
    let p = opts.out.join("loss.png");
    plot_loss_curve(&run.join("loss.csv"), &p, "demo: training loss")?;
    files.push(p);

    Ok(DemoReport {
        train_steps: summary.steps,
        train_seconds: summary.seconds,
        loss_first: summary.first_loss,
        loss_last: summary.last_loss,
        samplers: results,
        noise_floor: floor,
        model_nll: nll.nats_per_dim(),
        exact_nll: exact,
        files,
    })
}
