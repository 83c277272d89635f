//! `scoregen physics select`: unweighting generated events to the simulation in SSNet's
//! per-event observables (track pixels, shower pixels, charge), class by class
//! (`scoregen::physics::unweight`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;

use scoregen::physics::io::{classes_beside, load_event_images, EventImages};
use scoregen::physics::segment::{self, Labelled, Labelling};
use scoregen::physics::{metrics, table, unweight};
use scoregen::refine;
use scoregen::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct PhysicsSelectArgs {
    /// Simulated events to match: npy:<images> (their classes from `<stem>-labels.npy` beside
    /// them when the generated events have classes).
    #[arg(long, required_unless_present = "real_observables")]
    real: Option<String>,
    /// Instead of --real: the simulated events' observables as `physics ssnet apply
    /// --observables` wrote them with the same --ssnet (and --symmetric), so that the reference
    /// is labelled once for many selections.
    #[arg(long, conflicts_with = "real")]
    real_observables: Option<PathBuf>,
    /// Generated events to select from: npy:<images> (as `scoregen sample` writes them); with
    /// `<stem>-labels.npy` beside them (`sample --class data` writes it) each event is judged
    /// against the simulated events of its class and the mix of classes is kept.
    #[arg(long)]
    fake: String,
    /// SSNet directory (`physics ssnet train`) that labels both sets. To keep the comparison
    /// honest, evaluate the kept events with a different SSNet.
    #[arg(long)]
    ssnet: PathBuf,
    /// Output .npy of the kept events (N×1×S×S in [0, 1]); their classes go to
    /// `<stem>-labels.npy` beside it.
    #[arg(long)]
    out: PathBuf,
    /// Use at most this many simulated events (the first ones).
    #[arg(long, default_value_t = 10000, value_parser = crate::cli::at_least_one())]
    max_real: usize,
    /// Neighbours k of the density-ratio estimate (more: smoother and less noisy, coarser).
    #[arg(long, default_value_t = 64, value_parser = crate::cli::at_least_one())]
    neighbours: usize,
    /// The bound M of the acceptance probability r̂/M as a quantile of the estimated log
    /// ratios (per class): 1 (the largest) is exact; lower keeps more events, all those whose
    /// ratio is above the bound.
    #[arg(long, default_value_t = 0.95)]
    quantile: f64,
    /// Keep at most N events (a uniform subset of those accepted).
    #[arg(long, value_parser = crate::cli::at_least_one())]
    num: Option<usize>,
    /// Average SSNet's logits over the eight rotations/reflections of each event.
    #[arg(long)]
    symmetric: bool,
    /// Zero the pixels below SSNet's label threshold in both sets before SSNet labels them, as
    /// a readout with that threshold records them; the kept events are written zero-suppressed.
    /// A --real-observables table must have been written with `ssnet apply --zero-suppress`.
    #[arg(long)]
    zero_suppress: bool,
    /// Random seed of the acceptance draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn physics_select<B: AutodiffBackend>(device: &B::Device, a: &PhysicsSelectArgs) -> Result<()> {
    if a.out.extension().and_then(|e| e.to_str()) != Some("npy") {
        bail!("{}: output must end in .npy", a.out.display());
    }
    let (net, meta) = segment::load_ssnet::<B::InnerBackend>(&a.ssnet, device)?;
    let mut fake = load_event_images(&a.fake)?;
    super::ssnet_commands::check_size(&fake, &meta, &a.ssnet)?;
    if a.zero_suppress {
        super::physics_commands::zero_suppress_events(&mut fake, meta.threshold, "generated");
    }
    let fake_classes = classes_beside(&fake)?;
    let labelling = Labelling {
        threshold: meta.threshold,
        symmetric: a.symmetric,
    };
    let points = |ev: &EventImages| -> Result<Vec<unweight::Point>> {
        let labels = segment::segment_with(&net, &ev.images, ev.size, labelling, device);
        let o = metrics::observables_with(
            Labelled {
                size: ev.size,
                images: &ev.images,
                labels: &labels,
            },
            meta.threshold,
            metrics::Detail::PerEvent,
        )?;
        Ok(unweight::observable_points(&o))
    };
    let (rp, real_classes) = match (&a.real, &a.real_observables) {
        (Some(spec), _) => simulated_points(spec, a, fake_classes.is_some(), &meta, points)?,
        (None, Some(path)) => tabled_points(path, a, fake_classes.is_some())?,
        (None, None) => bail!("--real or --real-observables names the simulated events"),
    };
    let fp = points(&fake)?;
    let mut rng = Rng::new(a.seed);
    let (log_ratio, mut kept) = match (&real_classes, &fake_classes) {
        (Some(rc), Some(fc)) => {
            let l = unweight::knn_log_ratio_by_class((&rp, rc), (&fp, fc), a.neighbours)?;
            let c32: Vec<u32> = fc.iter().map(|&c| c as u32).collect();
            let kept = refine::rejection_sample_by_class(&l, &c32, a.quantile, &mut rng)?;
            (l, kept)
        }
        _ => {
            let l = unweight::knn_log_ratio(&rp, &fp, a.neighbours)?;
            let bound = refine::logit_bound(&l, a.quantile)?;
            let kept = refine::rejection_sample(&l, bound, &mut rng);
            (l, kept)
        }
    };
    if let Some(m) = a.num {
        kept = refine::uniform_subset(&kept, m, &mut rng);
    }
    let n = fake.len();
    if kept.is_empty() {
        bail!("no event kept of {n}; a lower --quantile keeps more");
    }
    let k = kept.len();
    let classes: Option<Vec<f32>> = fake_classes
        .as_ref()
        .map(|fc| fc.iter().map(|&c| c as f32).collect());
    let shape = [1, fake.size, fake.size];
    if let Some(path) = scoregen::data::write_npy_subset(
        &a.out,
        &fake.images,
        &shape,
        &kept,
        |v| v,
        classes.as_deref(),
    )? {
        eprintln!("classes → {}", path.display());
    }
    let mean = log_ratio.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    println!(
        "kept {k} of {n} events ({:.1} %) → {}; {} (quantile {}, {} neighbours, {} simulated events), mean log ratio {mean:.3}",
        100.0 * k as f64 / n as f64,
        a.out.display(),
        if fake_classes.is_some() { "per class" } else { "one class" },
        a.quantile,
        a.neighbours,
        rp.len()
    );
    Ok(())
}

/// Simulated points and classes: at most --max-real events of `spec`, labelled by `points`;
/// their classes (from `<stem>-labels.npy` beside them) when `need_classes`.
fn simulated_points(
    spec: &str,
    a: &PhysicsSelectArgs,
    need_classes: bool,
    meta: &segment::SsnetMeta,
    points: impl Fn(&EventImages) -> Result<Vec<unweight::Point>>,
) -> Result<(Vec<unweight::Point>, Option<Vec<u8>>)> {
    let real = load_event_images(spec)?;
    super::ssnet_commands::check_size(&real, meta, &a.ssnet)?;
    let classes = match need_classes {
        true => Some(classes_beside(&real)?.with_context(|| {
            format!(
                "the generated events have classes, so the simulated events need theirs: {} not found",
                scoregen::data::sibling_npy(&real.path, "labels").display()
            )
        })?),
        false => None,
    };
    let mut real = real.slice(0..a.max_real);
    if a.zero_suppress {
        super::physics_commands::zero_suppress_events(&mut real, meta.threshold, "simulated");
    }
    let classes = classes.map(|mut c| {
        c.truncate(real.len());
        c
    });
    Ok((points(&real)?, classes))
}

/// Simulated points and classes from a table of observables (at most --max-real events),
/// which must come from the same SSNet and labelling as this run's.
fn tabled_points(
    path: &Path,
    a: &PhysicsSelectArgs,
    need_classes: bool,
) -> Result<(Vec<unweight::Point>, Option<Vec<u8>>)> {
    let mut t = table::read_observable_table(path)?;
    let here = table::Provenance::new(&a.ssnet, a.symmetric, a.zero_suppress);
    if t.provenance != here {
        bail!(
            "{}: labelled by {}, but this selection labels with {}; both sets must be labelled alike: rewrite it with `physics ssnet apply --ssnet {} --observables …` (and --symmetric / --zero-suppress as here)",
            path.display(),
            t.provenance.describe(),
            here.describe(),
            a.ssnet.display()
        );
    }
    if need_classes && t.classes.is_none() {
        bail!(
            "{}: has no event classes (it was written from events without <stem>-labels.npy beside them)",
            path.display()
        );
    }
    t.truncate(a.max_real);
    let points = unweight::points(&t.track_pixels, &t.shower_pixels, &t.total_charge);
    Ok((points, if need_classes { t.classes } else { None }))
}
