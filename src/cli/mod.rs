//! Command definitions and dispatch onto a backend chosen at run time.

/// Calls `commands::$f::<B>(device, args…)` (or `$m::$f::<B>` when a module is named, e.g.
/// `self::f` inside a command module) with the autodiff backend of the chosen device. Defined
/// before the command modules so that they can use it too.
macro_rules! on_device {
    ($spec:expr, $f:ident ( $($arg:expr),* )) => {
        on_device!($spec, commands::$f($($arg),*))
    };
    ($spec:expr, $m:ident :: $f:ident ( $($arg:expr),* )) => {
        match $spec {
            DeviceSpec::Cpu => $m::$f::<burn::backend::Autodiff<burn::backend::Flex>>(&Default::default(), $($arg),*),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => $m::$f::<burn::backend::Autodiff<burn::backend::Cuda>>(
                &burn::backend::cuda::CudaDevice::new(i), $($arg),*),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => unreachable!("check_available rejects CUDA without the feature"),
        }
    };
}

mod bench_command;
mod commands;
mod image_commands;
mod physics_commands;
mod physics_select;
mod physics_tables;
mod refine_command;
mod sample_command;
mod select_command;
mod ssnet_commands;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use scoregen::device::DeviceSpec;

/// clap's parser of a count that must be at least 1: `--num 0`, `--steps 0`, `--first 0` and the
/// like are refused while the command line is parsed, naming the option, instead of producing
/// empty outputs or figures over no items.
pub(crate) fn at_least_one() -> impl clap::builder::TypedValueParser<Value = usize> {
    |s: &str| match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of at least 1".to_string()),
    }
}

/// Score-based generative modelling: train, sample, likelihood, plots.
#[derive(Parser, Debug)]
#[command(name = "scoregen", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a score model: an MLP on N×d points (CSV, NPY or toy:NAME), a U-Net on images
    /// (IDX, CIFAR-10, a PNG folder or N×C×H×W NPY).
    Train(TrainArgs),
    /// Draw samples from a trained model.
    Sample(Box<SampleArgs>),
    /// Average the weights of checkpoints of one network into a new checkpoint (a uniform
    /// "model soup", Wortsman et al. 2022: e.g. fine-tunes of one base model with different
    /// seeds); it samples and fine-tunes (`train --init`) like any checkpoint.
    Average(AverageArgs),
    /// Negative log-likelihood of data under a trained model (probability-flow ODE).
    Likelihood(LikelihoodArgs),
    /// Fill masked pixels of images with an unconditional image model (inpainting by
    /// conditional PC sampling, Song et al. 2021 App. I).
    Inpaint(InpaintArgs),
    /// Compare generated samples with real data (energy distance, MMD, sliced Wasserstein),
    /// each beside its real-vs-real noise floor.
    Eval(EvalArgs),
    /// Train the evaluation classifier on labelled images (its features give FID/KID and
    /// precision/recall; its predictions score class-conditional samples).
    Classifier(ClassifierArgs),
    /// Train a time-dependent discriminator between data and an image model's samples, for
    /// discriminator guidance (`sample --discriminator`; Kim et al. 2023).
    Discriminator(refine_command::DiscriminatorArgs),
    /// Keep an image model's samples by discriminator rejection sampling (Azadi et al. 2019):
    /// each with probability ∝ d/(1 − d) of a `scoregen discriminator` trained against them.
    Select(select_command::SelectArgs),
    /// Figures.
    #[command(subcommand)]
    Plot(PlotCommand),
    /// The LArTPC application: event simulator, segmentation network, physics metrics.
    #[command(subcommand)]
    Physics(physics_commands::PhysicsCommand),
    /// Print the default training configuration as TOML.
    Config,
    /// List the samplers and toy data sets.
    List,
    /// The end-to-end demo on the mixture of two Gaussians (no downloads, about 10 s on 2 cores after the build).
    Demo(DemoArgs),
    /// Throughput: training steps/s, forward passes and sampler NFE/s of the MLP and the MNIST
    /// U-Net, as JSON (compare with PyTorch through bench/torch_bench.py and bench/compare.py).
    Bench(bench_command::BenchArgs),
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// Data: a .csv or .npy file of N×d points, toy:NAME (see `scoregen list`), or images:
    /// idx:<images>[,<labels>], cifar:<dir>, png:<dir>, npy:<N×C×H×W>[,<labels>] (trains a U-Net).
    #[arg(long)]
    data: String,
    /// Use only the first N items of the data (e.g. 8000 of the MNIST test split for training).
    #[arg(long, value_parser = crate::cli::at_least_one())]
    first: Option<usize>,
    /// Train a class-conditional U-Net on the labels of the image data (with label dropout, for
    /// classifier-free guidance).
    #[arg(long)]
    class_conditional: bool,
    /// Output directory for checkpoints, loss.csv and loss.png.
    #[arg(long)]
    out: PathBuf,
    /// TOML configuration (see `scoregen config`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// SDE: ve, vp or subvp.
    #[arg(long)]
    sde: Option<String>,
    /// Objective: dsm, ncsn (VE), ddpm (VP) or ssm.
    #[arg(long)]
    loss: Option<String>,
    /// Likelihood weighting λ(t) = g(t)² for dsm/ssm.
    #[arg(long)]
    likelihood_weighting: bool,
    /// Training times for dsm/ssm: uniform in t, or lognormal (Karras et al. 2022's
    /// ln σ ~ N(p_mean, p_std²), −1.2 and 1.2 unless the config's [loss] says otherwise).
    #[arg(long)]
    times: Option<scoregen::losses::TimeSampling>,
    /// Optimisation steps.
    #[arg(long)]
    steps: Option<u64>,
    /// Batch size.
    #[arg(long, value_parser = crate::cli::at_least_one())]
    batch: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Points drawn from a toy data set.
    #[arg(long, default_value_t = 10_000, value_parser = crate::cli::at_least_one())]
    toy_samples: usize,
    /// Continue the checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Fine-tune: start a new run (step 0, fresh optimiser and learning-rate schedule) from the
    /// EMA weights, standardisation and SDE of the checkpoint in this directory.
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Wall-clock budget in minutes: the step count is set from the speed measured over the
    /// first steps so that warm-up and cosine decay end on time (printed; pass it as --steps
    /// to resume the same schedule); the run stops, checkpointed, when the budget is spent.
    #[arg(long)]
    minutes: Option<f64>,
    /// Training precision: f32, or bf16 mixed precision (bf16 convolutions and linear layers,
    /// f32 master weights, GroupNorm, softmax and loss), for GPUs with bf16 tensor cores.
    #[arg(long)]
    precision: Option<scoregen::nn::Precision>,
    /// Add the physics term of a LArTPC generator: SSNet (this directory) track/shower
    /// fractions of the denoised estimate must match the data's (for fine-tuning, with --init
    /// from a trained checkpoint).
    #[arg(long)]
    physics_ssnet: Option<PathBuf>,
    /// Weight λ of the physics term.
    #[arg(long, default_value_t = 1.0)]
    physics_weight: f64,
    /// What the physics term's fractions weight pixels by: `charge`, or `count` (soft counts of
    /// pixels above SSNet's label threshold, as the per-event pixel counts of `physics eval`).
    #[arg(long, value_enum, default_value_t = PhysicsMeasure::Charge, requires = "physics_ssnet")]
    physics_measure: PhysicsMeasure,
    /// How the physics term draws its diffusion times: `uniform` in t, or `loss` (the score
    /// loss's own distribution, e.g. its log-normal σ).
    #[arg(long, value_enum, default_value_t = PhysicsTimes::Uniform, requires = "physics_ssnet")]
    physics_times: PhysicsTimes,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// `scoregen train --physics-measure`: what the physics term's class fractions weight pixels by.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PhysicsMeasure {
    /// Pixel charge.
    Charge,
    /// Soft counts of pixels above SSNet's label threshold.
    Count,
}

/// `scoregen train --physics-times`: where the physics term draws its diffusion times.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PhysicsTimes {
    /// Uniform in t.
    Uniform,
    /// The score loss's own time distribution.
    Loss,
}

#[derive(clap::Args, Debug)]
struct SampleArgs {
    /// Checkpoint directory written by `scoregen train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 1000, value_parser = crate::cli::at_least_one())]
    num: usize,
    /// Sample at most this many at a time [default: all --num at once]: bounds the memory of
    /// large runs (the sampler's state and the network's activations grow with the batch) and
    /// prints one progress line per batch. Batches draw their noise in turn from the one
    /// --seed stream, so the first batch equals a run of --num <batch>.
    #[arg(long, value_parser = crate::cli::at_least_one())]
    batch: Option<usize>,
    /// Sampler (see `scoregen list`).
    #[arg(long, default_value = "pc")]
    sampler: String,
    /// Steps (noise levels for annealed-langevin); default depends on the sampler.
    #[arg(long, value_parser = crate::cli::at_least_one())]
    steps: Option<usize>,
    /// Langevin corrector steps (pc, pc-vp) or steps per level (annealed-langevin).
    #[arg(long)]
    corrector_steps: Option<usize>,
    /// Corrector signal-to-noise ratio.
    #[arg(long)]
    snr: Option<f64>,
    /// Langevin step size ε (0 = automatic for annealed-langevin).
    #[arg(long)]
    step_size: Option<f64>,
    /// DDIM η.
    #[arg(long)]
    eta: Option<f64>,
    /// heun: total churn S_churn of the stochastic sampler (Karras et al. 2022, Algorithm 2);
    /// 0 (the default) is the deterministic Algorithm 1.
    #[arg(long)]
    s_churn: Option<f64>,
    /// heun: churn only at EDM noise levels σ ≥ S_tmin [default: 0].
    #[arg(long)]
    s_tmin: Option<f64>,
    /// heun: churn only at EDM noise levels σ ≤ S_tmax [default: no limit].
    #[arg(long)]
    s_tmax: Option<f64>,
    /// heun: noise inflation S_noise of the churn [default: 1].
    #[arg(long)]
    s_noise: Option<f64>,
    /// ODE relative/absolute tolerance.
    #[arg(long)]
    tol: Option<f64>,
    /// Class to generate (class-conditional models): a class index, `all` to cycle through the
    /// classes equally, or `data` for the training data's class proportions (image .npy outputs
    /// then get a `<name>-labels.npy` beside them).
    #[arg(long)]
    class: Option<String>,
    /// Guidance weight w: classifier-free with --class (one weight, or one per class in class
    /// order, `2,2,0,2`: less guidance for a class it over-draws); autoguidance with
    /// --guide-with (with or without --class).
    #[arg(long, default_value = "0")]
    guidance: scoregen::nn::Guidance,
    /// Autoguidance (Karras et al. 2024): guide with this checkpoint, a weaker model of the same
    /// data (smaller, trained for fewer steps), instead of the model's unconditional
    /// prediction: D̃ = D + w·(D − D_guide), w from --guidance.
    #[arg(long, value_name = "CHECKPOINT")]
    guide_with: Option<PathBuf>,
    /// Classifier-free guidance added to autoguidance (--guide-with, --class): one weight v, or
    /// one per class; D̃ = D + w·(D − D_guide) + v·(D − D(∅)).
    #[arg(long, value_name = "V", requires_all = ["guide_with", "class"])]
    free_guidance: Option<scoregen::nn::Guidance>,
    /// Guidance (classifier-free or autoguidance, and --free-guidance's term unless
    /// --free-guidance-interval is given) only at EDM noise levels σ in (LO, HI] (Kynkäänniemi
    /// et al. 2024), e.g. `0.28,5.42` or `1,inf`; unguided steps elsewhere.
    #[arg(long, value_name = "LO,HI")]
    guidance_interval: Option<scoregen::score::SigmaInterval>,
    /// The classifier-free term of --free-guidance only at EDM noise levels σ in (LO, HI],
    /// independently of the autoguidance term (which --guidance-interval then limits alone).
    #[arg(long, value_name = "LO,HI", requires = "free_guidance")]
    free_guidance_interval: Option<scoregen::score::SigmaInterval>,
    /// Discriminator guidance (Kim et al. 2023): add w·∇x logit d(x_t, t) of the discriminator in
    /// this directory (`scoregen discriminator`) to the model's score.
    #[arg(long)]
    discriminator: Option<PathBuf>,
    /// Weight w of discriminator guidance (1 = the density-ratio correction of the paper).
    #[arg(long, default_value_t = 1.0, requires = "discriminator")]
    dg_weight: f64,
    /// Discriminator guidance only at EDM noise levels σ ≤ this (the last, detail-drawing steps).
    #[arg(long, requires = "discriminator")]
    dg_sigma_max: Option<f64>,
    /// Keep the last step's noise (no Tweedie denoising).
    #[arg(long)]
    no_denoise: bool,
    /// Image models: do not clamp DDIM's x̂0 to the pixel range [−1, 1] at each step.
    #[arg(long)]
    no_clip: bool,
    /// Network precision while sampling: f32, or bf16 (convolutions and linear layers on bf16
    /// copies of the weights; the sampler's state stays f32), for GPUs with bf16 tensor cores.
    #[arg(long, default_value = "f32")]
    precision: scoregen::nn::Precision,
    /// Use the raw weights instead of the EMA.
    #[arg(long)]
    no_ema: bool,
    /// Output .csv or .npy; for image models also .png (a sample grid) or a new folder (a path
    /// without extension): one PNG per image, in class sub-folders for class-conditional
    /// sampling (the input of external FID tools; `png:<folder>` reads it back). Image models
    /// write .npy as N×C×H×W in [0, 1] (readable as `npy:` image data).
    #[arg(long)]
    out: PathBuf,
    /// Image models: also write a trajectory figure (.png) here, one row per sample (the first
    /// 16) and one column per moment of the sampler's run, from the prior on the left to the
    /// final sample on the right (states clamped to the data range).
    #[arg(long)]
    trajectory: Option<PathBuf>,
    /// Columns of the trajectory figure (2–100).
    #[arg(long, default_value_t = 10, requires = "trajectory")]
    frames: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args, Debug)]
struct LikelihoodArgs {
    /// Checkpoint directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Data: .csv, .npy or toy:NAME; or 8-bit images (idx:, cifar:, png:, npy:), which are
    /// uniformly dequantised and reported in bits/dim of the discrete pixels.
    #[arg(long)]
    data: String,
    /// Use only the first N items.
    #[arg(long, value_parser = crate::cli::at_least_one())]
    first: Option<usize>,
    /// Hutchinson–Skilling trace estimator with K Rademacher probes (default: exact trace up to 16-D).
    #[arg(long, value_parser = crate::cli::at_least_one())]
    hutchinson: Option<usize>,
    /// Gaussian instead of Rademacher probes for --hutchinson.
    #[arg(long, requires = "hutchinson")]
    gaussian_probes: bool,
    /// ODE tolerance (rtol = atol).
    #[arg(long, default_value_t = 1e-5)]
    tol: f64,
    /// Integer data with L levels (0..L−1): uniformly dequantise to (k + u)/L and report
    /// bits/dim of the discrete data (for models trained on that [0, 1] scale).
    #[arg(long)]
    dequantize: Option<u32>,
    /// Points drawn for toy:NAME data.
    #[arg(long, default_value_t = 1000, value_parser = crate::cli::at_least_one())]
    toy_samples: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Random seed (probes, toy data).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args, Debug)]
struct InpaintArgs {
    /// Image checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Images: idx:…, png:<dir>, npy:…, cifar:… (the first --num are used).
    #[arg(long)]
    image: String,
    /// Mask of known pixels: half (right half missing), centre (centre box missing),
    /// random:P (a fraction P missing), a PNG of the image size (white = known), or colour
    /// (RGB models: keep the grey level of each pixel, generate the colours).
    #[arg(long, default_value = "half")]
    mask: String,
    /// Number of images.
    #[arg(long, default_value_t = 8, value_parser = crate::cli::at_least_one())]
    num: usize,
    /// PC steps.
    #[arg(long, default_value_t = 500, value_parser = crate::cli::at_least_one())]
    steps: usize,
    /// Output PNG: a grid of the masked inputs (missing pixels grey) followed by their completions.
    #[arg(long)]
    out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args, Debug)]
struct EvalArgs {
    /// Real data: .csv, .npy or toy:NAME; or images (idx:, cifar:, png:, npy:), compared in the
    /// feature space of `--features`.
    #[arg(long)]
    real: String,
    /// Generated samples: .csv or .npy; for images npy:<N×C×H×W>[,<labels.npy>] (labels give
    /// the class accuracy), png:<dir>, ….
    #[arg(long)]
    fake: String,
    /// Evaluation classifier directory (from `scoregen classifier`), for image data.
    #[arg(long)]
    features: Option<PathBuf>,
    /// Inception-v3 weights (pytorch-fid's pt_inception-2015-12-05 as safetensors) for FID/KID
    /// comparable with papers, for image data; with or without --features.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// cpu, cuda or cuda:N (image features).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// At most this many points per set (the statistics cost O(n²)).
    #[arg(long, default_value_t = 2000, value_parser = crate::cli::at_least_one())]
    max_points: usize,
    /// Points drawn for toy:NAME data (real or generated, e.g. a known distribution as a baseline).
    #[arg(long, default_value_t = 10_000, value_parser = crate::cli::at_least_one())]
    toy_samples: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Random seed (split, projections, toy data).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
struct ClassifierArgs {
    /// Labelled images: idx:<images>,<labels>, cifar:<dir>, png:<dir> (sub-folders),
    /// npy:<images>,<labels>.
    #[arg(long)]
    data: String,
    /// Train on the first N images; up to --heldout of the rest measure the accuracy.
    #[arg(long, value_parser = crate::cli::at_least_one())]
    first: Option<usize>,
    /// Held-out images for the reported accuracy.
    #[arg(long, default_value_t = 2000)]
    heldout: usize,
    /// Output directory (classifier.json + classifier.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Adam steps.
    #[arg(long, default_value_t = 1500)]
    steps: u64,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = crate::cli::at_least_one())]
    batch: usize,
    /// Peak learning rate (warm-up, then cosine).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Subcommand, Debug)]
enum PlotCommand {
    /// Score vector field over density contours, with samples and Langevin trajectories.
    ScoreField(ScoreFieldArgs),
    /// Loss curve of a training run (from its loss.csv).
    Loss {
        /// Checkpoint directory.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct ScoreFieldArgs {
    /// A trained 2-D model.
    #[arg(long, conflicts_with = "toy", required_unless_present = "toy")]
    checkpoint: Option<PathBuf>,
    /// A toy with a closed-form density (two-gaussians, 8gaussians).
    #[arg(long)]
    toy: Option<String>,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// Image side in pixels.
    #[arg(long, default_value_t = 640, value_parser = crate::cli::at_least_one())]
    size: usize,
    /// Samples drawn (annealed Langevin).
    #[arg(long, default_value_t = 1000, value_parser = crate::cli::at_least_one())]
    samples: usize,
    /// Density lattice per side (a trained model needs one ODE solve per point).
    #[arg(long, default_value_t = 32, value_parser = crate::cli::at_least_one())]
    density_grid: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args, Debug)]
struct AverageArgs {
    /// The checkpoint directories to average (at least two, of one network).
    #[arg(required = true, num_args = 2..)]
    checkpoints: Vec<PathBuf>,
    /// Directory for the averaged checkpoint (must not hold one).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "scoregen-demo")]
    out: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = 2500)]
    steps: u64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn device(s: &str) -> Result<DeviceSpec> {
    let d: DeviceSpec = s.parse()?;
    d.check_available()?;
    Ok(d)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => on_device!(device(&a.device)?, train(&a)),
        Command::Sample(a) => on_device!(device(&a.device)?, sample(&a)),
        Command::Average(a) => {
            let meta = scoregen::train::average_checkpoints(&a.checkpoints, &a.out)?;
            eprintln!(
                "averaged {} checkpoints (model and EMA weights) → {} (step {} of the first)",
                meta.averaged_from.len(),
                a.out.display(),
                meta.step
            );
            Ok(())
        }
        Command::Likelihood(a) => on_device!(device(&a.device)?, likelihood(&a)),
        Command::Inpaint(a) => on_device!(device(&a.device)?, inpaint(&a)),
        Command::Eval(a) if commands::is_image_source(&a.real) => {
            on_device!(device(&a.device)?, eval_images(&a))
        }
        Command::Eval(a) => commands::eval(&a),
        Command::Classifier(a) => on_device!(device(&a.device)?, classifier(&a)),
        Command::Discriminator(a) => {
            on_device!(device(&a.device)?, refine_command::discriminator(&a))
        }
        Command::Select(a) => on_device!(device(&a.device)?, select_command::select(&a)),
        Command::Plot(PlotCommand::ScoreField(a)) => {
            on_device!(device(&a.device)?, score_field(&a))
        }
        Command::Plot(PlotCommand::Loss { checkpoint, out }) => {
            commands::loss_plot(&checkpoint, &out)
        }
        Command::Physics(p) => physics_commands::run(&p),
        Command::Config => {
            print!("{}", scoregen::train::TrainConfig::default().to_toml());
            Ok(())
        }
        Command::List => {
            commands::list();
            Ok(())
        }
        Command::Demo(a) => on_device!(device(&a.device)?, demo(&a)),
        Command::Bench(a) => on_device!(device(&a.device)?, bench_command::bench(&a)),
    }
}
