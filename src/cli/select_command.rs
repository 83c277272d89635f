//! `scoregen select`: discriminator rejection sampling (Azadi et al. 2019) of an image model's
//! finished samples with the discriminator `scoregen discriminator` trained against them.

use std::path::PathBuf;

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;

use super::image_commands::{load_images_of_shape, require_image_model};
use super::refine_command::{discriminator_rows, load_for_model};
use scoregen::app::Trained;
use scoregen::data;
use scoregen::refine::{self, Labelled};
use scoregen::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct SelectArgs {
    /// The image model (checkpoint directory) that made the samples.
    #[arg(long)]
    checkpoint: PathBuf,
    /// A discriminator trained against the model's samples (`scoregen discriminator`); judge
    /// samples it did not see in training. Repeat for an ensemble: their logits are averaged.
    #[arg(long, required = true)]
    discriminator: Vec<PathBuf>,
    /// The samples to select from (npy: as `scoregen sample` writes them, with
    /// `,<labels>` for a class-conditional discriminator); repeat for several files.
    #[arg(long, required = true)]
    fake: Vec<String>,
    /// Output .npy of the kept images (N×C×H×W in [0, 1]); their classes go to
    /// `<name>-labels.npy` beside it when the inputs have labels.
    #[arg(long)]
    out: PathBuf,
    /// The bound M of the acceptance probability e^{ℓ − M} as a quantile of the samples'
    /// logits: 1 (the largest) is exact rejection sampling for an exact discriminator; lower
    /// keeps more samples, all those with ℓ ≥ M. A class-conditional discriminator selects class
    /// by class (a bound per class) and keeps the samples' mix of classes.
    #[arg(long, default_value_t = 1.0)]
    quantile: f64,
    /// Noise level σ at which the discriminator judges each sample (it was trained on noised
    /// states; its held-out accuracy below σ = 0.1 is in discriminator.json).
    #[arg(long, default_value_t = 0.05)]
    sigma: f64,
    /// Perturbations per sample whose logits are averaged.
    #[arg(long, default_value_t = 4, value_parser = crate::cli::at_least_one())]
    draws: usize,
    /// Keep at most N samples (a uniform subset of those accepted, in input order).
    #[arg(long, value_parser = crate::cli::at_least_one())]
    num: Option<usize>,
    /// Random seed (perturbations and acceptance draws).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn select<B: AutodiffBackend>(device: &B::Device, a: &SelectArgs) -> Result<()> {
    if a.out.extension().and_then(|e| e.to_str()) != Some("npy") {
        bail!("{}: output must end in .npy", a.out.display());
    }
    let model = Trained::<B::InnerBackend>::load(&a.checkpoint, true, device)?;
    let shape = require_image_model(&model, &a.checkpoint, "discriminator rejection sampling")?;
    let mut discs = Vec::new();
    for dir in &a.discriminator {
        discs.push(load_for_model::<_, B::InnerBackend>(&model, dir, device)?);
    }
    let conditional = discs.iter().any(|(net, _)| net.num_classes() > 0);
    let (mut pixels, mut per_file) = (Vec::new(), Vec::new());
    for f in &a.fake {
        let set = load_images_of_shape(f, shape)?;
        pixels.extend(set.pixels);
        per_file.push((f, set.labels));
    }
    // Labels for all files or for none.
    let labels: Option<Vec<u32>> = match per_file.iter().find(|(_, l)| l.is_none()) {
        None => Some(per_file.into_iter().flat_map(|(_, l)| l.unwrap_or_default()).collect()),
        Some((f, _)) if conditional => bail!(
            "{f}: a class-conditional discriminator needs the samples' classes (npy:<images>,<labels>)"
        ),
        Some((f, _)) if per_file.iter().any(|(_, l)| l.is_some()) => {
            bail!("{f}: has no labels, other --fake files have")
        }
        Some(_) => None,
    };
    let d: usize = shape.iter().product();
    let n = pixels.len() / d;
    // The ensemble's logit: the mean of the discriminators' logits.
    let mut logits = vec![0.0f32; n];
    for (net, meta) in &discs {
        let rows = discriminator_rows(&model, pixels.clone(), meta.zero_below);
        let l = refine::judge(
            net,
            model.sde.as_ref(),
            meta.input_scale,
            Labelled {
                rows: &rows,
                labels: labels.as_deref(),
            },
            a.sigma,
            a.draws,
            a.seed,
            device,
        )?;
        for (sum, v) in logits.iter_mut().zip(l) {
            *sum += v / discs.len() as f32;
        }
    }
    let mut rng = Rng::new(a.seed ^ 0xd125);
    let (mut kept, bound) = match &labels {
        // Its logits compare each image with the data of its class: select class by class.
        Some(l) if conditional => (
            refine::rejection_sample_by_class(&logits, l, a.quantile, &mut rng)?,
            "per class".to_string(),
        ),
        _ => {
            let bound = refine::logit_bound(&logits, a.quantile)?;
            (
                refine::rejection_sample(&logits, bound, &mut rng),
                format!("{bound:.3}"),
            )
        }
    };
    if let Some(m) = a.num {
        kept = refine::uniform_subset(&kept, m, &mut rng);
    }
    if kept.is_empty() {
        bail!("no sample kept of {n} (bound {bound}); a lower --quantile keeps more");
    }
    let k = kept.len();
    let classes: Option<Vec<f32>> = labels.map(|l| l.iter().map(|&c| c as f32).collect());
    let to_unit = |v: f32| ((v + 1.0) / 2.0).clamp(0.0, 1.0);
    if let Some(lp) =
        data::write_npy_subset(&a.out, &pixels, &shape, &kept, to_unit, classes.as_deref())?
    {
        eprintln!("labels → {}", lp.display());
    }
    let mean = logits.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    println!(
        "kept {k} of {n} samples ({:.1} %) → {}; logit bound {bound} (quantile {}), mean logit {mean:.3}, σ = {}, {} draws",
        100.0 * k as f64 / n as f64,
        a.out.display(),
        a.quantile,
        a.sigma,
        a.draws
    );
    Ok(())
}
