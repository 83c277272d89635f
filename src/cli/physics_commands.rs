//! `scoregen physics …`: the LArTPC simulator, the segmentation network and physics metrics.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Subcommand;

use super::physics_select;
use scoregen::device::DeviceSpec;
use scoregen::physics::io::{load_event_images, EventImages};
use scoregen::physics::metrics;
use scoregen::physics::segment;
use scoregen::physics::{self, SimConfig};

/// Physics subcommands.
#[derive(Subcommand, Debug)]
pub enum PhysicsCommand {
    /// Simulate LArTPC events: images N×1×S×S in [0, 1], event classes (-labels.npy) and pixel
    /// labels 0 background / 1 track / 2 shower (-pixels.npy).
    Simulate(SimulateArgs),
    /// The segmentation network SSNet: train it on labelled events, or label events with it.
    #[command(subcommand)]
    Ssnet(super::ssnet_commands::SsnetCommand),
    /// Compare generated with simulated events: SSNet-labelled histograms (track pixels, shower
    /// pixels, total charge, pixel charge) by squared error, MSE, RMSE and χ², wavelet spectra of
    /// the showers, and FID/KID/precision/recall of SSNet features, each beside its
    /// real-vs-real floor.
    Eval(PhysicsEvalArgs),
    /// Keep the generated events whose SSNet observables (track pixels, shower pixels, charge)
    /// follow the simulated events' law: a k-nearest-neighbour density ratio, class by class,
    /// and rejection sampling (reweighting a fast simulation to a detailed one, then
    /// unweighting).
    Select(super::physics_select::PhysicsSelectArgs),
}

#[derive(clap::Args, Debug)]
pub struct PhysicsEvalArgs {
    /// Simulated (real) events: npy:<images>.
    #[arg(long)]
    real: String,
    /// Generated events: npy:<images> (N×1×S×S in [0, 1], as `scoregen sample` writes).
    #[arg(long)]
    fake: String,
    /// SSNet directory (`physics ssnet train`).
    #[arg(long)]
    ssnet: PathBuf,
    /// At most this many events per set (each real half and the generated set).
    #[arg(long, default_value_t = 2000, value_parser = crate::cli::at_least_one())]
    max_events: usize,
    /// Histogram bins.
    #[arg(long, default_value_t = 50, value_parser = crate::cli::at_least_one())]
    bins: usize,
    /// Random seed of the real split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Average SSNet's logits over the eight rotations/reflections of each event (test-time
    /// augmentation: eight times the labelling cost, a little more accurate).
    #[arg(long)]
    symmetric: bool,
    /// Also write histogram plots (real black, generated orange) and event grids here.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Also compare each event class on its own (track-only, shower-only, mixed, background):
    /// mean track pixels, shower pixels and total charge, and the histograms, per class. Reads
    /// the event classes from `<stem>-labels.npy` beside --real and --fake (`physics simulate`
    /// and `sample --class data` write them).
    #[arg(long)]
    per_class: bool,
    /// Zero the pixels below SSNet's label threshold in both sets before SSNet sees them, as a
    /// readout with that threshold records them: a generator's sub-threshold haze, which the
    /// histograms already ignore, then no longer moves SSNet's labels and features (FID).
    #[arg(long)]
    zero_suppress: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Number of events.
    #[arg(long, default_value_t = 1000, value_parser = crate::cli::at_least_one())]
    num: usize,
    /// Image side in pixels (3 mm pitch).
    #[arg(long, value_parser = crate::cli::at_least_one())]
    size: Option<usize>,
    /// Output NPY of images.
    #[arg(long)]
    out: PathBuf,
    /// Simulator settings as TOML (fields of `scoregen physics simulate --print-config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Gaussian electronic noise per pixel (pixel units).
    #[arg(long)]
    noise: Option<f64>,
    /// Probability of a cosmic-ray muon per event.
    #[arg(long)]
    cosmic_prob: Option<f64>,
    /// Only this event class: track, shower, mixed or background.
    #[arg(long)]
    class: Option<String>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also draw the first 36 events, coloured by label, to this PNG.
    #[arg(long)]
    grid: Option<PathBuf>,
}

/// Runs a physics subcommand.
pub fn run(cmd: &PhysicsCommand) -> Result<()> {
    match cmd {
        PhysicsCommand::Simulate(a) => simulate(a),
        PhysicsCommand::Ssnet(c) => super::ssnet_commands::run(c),
        PhysicsCommand::Eval(a) => on_device!(super::device(&a.device)?, self::physics_eval(a)),
        PhysicsCommand::Select(a) => {
            on_device!(super::device(&a.device)?, physics_select::physics_select(a))
        }
    }
}

/// The simulator settings of `--config` with the flags applied.
fn sim_config(a: &SimulateArgs) -> Result<SimConfig> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("{}: bad simulator settings", p.display()))?
        }
        None => SimConfig::default(),
    };
    if let Some(s) = a.size {
        cfg.size = s;
    }
    if let Some(n) = a.noise {
        cfg.noise = n;
    }
    if let Some(p) = a.cosmic_prob {
        cfg.cosmic_prob = p;
    }
    if let Some(name) = &a.class {
        let k = physics::params::EVENT_CLASSES
            .iter()
            .position(|c| c == name)
            .with_context(|| {
                format!(
                    "--class {name}: expected one of {}",
                    physics::params::EVENT_CLASSES.join(", ")
                )
            })?;
        cfg.class_weights = [0.0; 4];
        cfg.class_weights[k] = 1.0;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn simulate(a: &SimulateArgs) -> Result<()> {
    let cfg = sim_config(a)?;
    a.grid
        .as_deref()
        .map_or(Ok(()), scoregen::data::check_png_path)?;
    let t0 = Instant::now();
    let ev = physics::simulate(&cfg, a.num, a.seed)?;
    let secs = t0.elapsed().as_secs_f64();
    let (classes, pixels) = ev.write(&a.out)?;
    let counts =
        scoregen::train::class_mix::class_counts(&ev.classes, physics::params::EVENT_CLASSES.len());
    eprintln!(
        "simulated {} events of {}×{} in {secs:.2} s ({:.0} events/s, one core); classes {}",
        ev.len(),
        cfg.size,
        cfg.size,
        ev.len() as f64 / secs.max(1e-9),
        physics::params::EVENT_CLASSES
            .iter()
            .zip(counts)
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "wrote {}, {} (event classes), {} (pixel labels)",
        a.out.display(),
        classes.display(),
        pixels.display()
    );
    if let Some(g) = &a.grid {
        let n = ev.len().min(36) * cfg.size * cfg.size;
        physics::figures::event_grid(g, &ev.images[..n], Some(&ev.labels[..n]), cfg.size)?;
        eprintln!("wrote {}", g.display());
    }
    Ok(())
}

/// Zeroes the pixels of `ev` below `threshold` (`metrics::zero_suppress`), saying how many of the
/// `name` events' non-zero pixels that was.
pub(super) fn zero_suppress_events(ev: &mut EventImages, threshold: f64, name: &str) {
    let s = metrics::zero_suppress(&mut ev.images, threshold);
    eprintln!(
        "zero-suppressed below {threshold}: {} of the {} non-zero {name} pixels ({:.1} per event)",
        s.zeroed,
        s.nonzero,
        s.zeroed as f64 / ev.len().max(1) as f64
    );
}

fn physics_eval<B: AutodiffBackend>(device: &B::Device, a: &PhysicsEvalArgs) -> Result<()> {
    let (net, meta) = segment::load_ssnet::<B::InnerBackend>(&a.ssnet, device)?;
    let mut real = load_event_images(&a.real)?;
    let mut fake = load_event_images(&a.fake)?;
    for ev in [&real, &fake] {
        super::ssnet_commands::check_size(ev, &meta, &a.ssnet)?;
    }
    if a.zero_suppress {
        zero_suppress_events(&mut real, meta.threshold, "simulated");
        zero_suppress_events(&mut fake, meta.threshold, "generated");
    }
    let mut rng = scoregen::rng::Rng::new(a.seed);
    let labelling = segment::Labelling {
        threshold: meta.threshold,
        symmetric: a.symmetric,
    };
    if a.symmetric {
        eprintln!("SSNet logits averaged over the eight symmetries of the square");
    }
    let classes = if a.per_class {
        let read = |ev: &EventImages| {
            physics::io::read_event_classes(
                &scoregen::data::sibling_npy(&ev.path, "labels"),
                ev.len(),
            )
            .with_context(|| {
                format!(
                    "--per-class reads the event classes of {} from <stem>-labels.npy beside it",
                    ev.path.display()
                )
            })
        };
        Some((read(&real)?, read(&fake)?))
    } else {
        None
    };
    let cmp = metrics::compare_events(
        &net,
        labelling,
        real.size,
        &real.images,
        &fake.images,
        classes.as_ref().map(|(r, f)| (r.as_slice(), f.as_slice())),
        a.max_events,
        a.bins,
        &mut rng,
        device,
    )?;
    if let Some(dir) = &a.plots {
        write_plots(dir, &cmp, &net, labelling, &real, &fake, device)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
        return Ok(());
    }
    println!(
        "{} events per set; generated vs simulated, with simulated vs simulated in brackets",
        cmp.num_events
    );
    println!(
        "{:<22} {:>24} {:>24} {:>24} {:>24}",
        "histogram", "squared error", "MSE", "RMSE", "chi2"
    );
    let pair = |v: f64, f: f64| format!("{v:.3e} [{f:.3e}]");
    for (name, h) in named_figures(&cmp) {
        println!(
            "{name:<22} {:>24} {:>24} {:>24} {:>24}",
            pair(h.value.squared_error, h.real_vs_real.squared_error),
            pair(h.value.mse, h.real_vs_real.mse),
            pair(h.value.rmse, h.real_vs_real.rmse),
            pair(h.value.chi2, h.real_vs_real.chi2)
        );
    }
    if let Some(f) = &cmp.ssnet_features {
        println!(
            "SSNet features: FID {:.4} [{:.4}], KID {:.5} [{:.5}], precision {:.3} [{:.3}], recall {:.3} [{:.3}]",
            f.fid.value,
            f.fid.real_vs_real,
            f.kid.value,
            f.kid.real_vs_real,
            f.precision.value,
            f.precision.real_vs_real,
            f.recall.value,
            f.recall.real_vs_real
        );
    }
    if let Some(per) = &cmp.per_class {
        super::physics_tables::print_per_class(per);
    }
    Ok(())
}

/// The histogram figures with their names (file stems of the plots).
fn named_figures(c: &metrics::PhysicsComparison) -> Vec<(&'static str, &metrics::HistogramFigure)> {
    let mut v = vec![
        ("track_pixels", &c.track_pixels),
        ("shower_pixels", &c.shower_pixels),
        ("total_charge", &c.total_charge),
        ("pixel_charge", &c.pixel_charge),
    ];
    if let Some(h) = &c.wavelet_haar {
        v.push(("wavelet_haar", h));
    }
    if let Some(h) = &c.wavelet_db4 {
        v.push(("wavelet_db4", h));
    }
    v
}

/// A distance with three significant digits (0.971, 0.0171, 3.4e-4).
fn three_digits(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.1e}")
    } else if v.abs() < 0.1 {
        format!("{v:.4}")
    } else {
        format!("{v:.3}")
    }
}

/// Title, x-axis and y-axis names of each histogram figure.
fn figure_axes(name: &str) -> (&'static str, &'static str, &'static str) {
    match name {
        "track_pixels" => (
            "track pixels",
            "track pixels per event",
            "fraction of events",
        ),
        "shower_pixels" => (
            "shower pixels",
            "shower pixels per event",
            "fraction of events",
        ),
        "total_charge" => (
            "total charge",
            "charge per event (pixels >= threshold)",
            "fraction of events",
        ),
        "pixel_charge" => (
            "pixel charge",
            "charge per pixel (>= threshold)",
            "fraction of pixels",
        ),
        "wavelet_haar" => (
            "Haar wavelets",
            "scale (finest first; last: approximation)",
            "energy fraction",
        ),
        "wavelet_db4" => (
            "Db4 wavelets",
            "scale (finest first; last: approximation)",
            "energy fraction",
        ),
        _ => ("", "", ""),
    }
}

fn write_plots<B: burn::tensor::backend::Backend>(
    dir: &std::path::Path,
    cmp: &metrics::PhysicsComparison,
    net: &scoregen::physics::ssnet::Ssnet<B>,
    labelling: segment::Labelling,
    real: &EventImages,
    fake: &EventImages,
    device: &B::Device,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    for (name, h) in named_figures(cmp) {
        let series: [(&str, &[f64], scoregen::plot::Rgb); 2] = [
            ("simulated", &h.real, [20, 20, 20]),
            ("generated", &h.generated, [240, 120, 20]),
        ];
        let (short, x, y) = figure_axes(name);
        let title = format!(
            "{short}: χ² {} [{}]",
            three_digits(h.value.chi2),
            three_digits(h.real_vs_real.chi2)
        );
        let labels = scoregen::plot::Labels {
            title: &title,
            x,
            y,
        };
        let range = h.binning.as_ref().map(|b| (b.lo, b.hi));
        scoregen::plot::overlay_histograms(
            &dir.join(format!("{name}.png")),
            &series,
            range,
            &labels,
            (480, 300),
        )?;
    }
    for (name, ev) in [("real", real), ("generated", fake)] {
        let n = ev.len().min(36) * ev.size * ev.size;
        let labels = segment::segment_with(net, &ev.images[..n], ev.size, labelling, device);
        physics::figures::event_grid(
            &dir.join(format!("{name}-events.png")),
            &ev.images[..n],
            Some(&labels),
            ev.size,
        )?;
    }
    eprintln!("wrote plots to {}", dir.display());
    Ok(())
}
