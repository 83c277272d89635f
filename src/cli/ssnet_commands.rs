//! `scoregen physics ssnet train|apply`: the segmentation network SSNet that labels each pixel
//! of a LArTPC event background, track or shower (a U-Net, `scoregen::physics::ssnet`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Subcommand;

use scoregen::device::DeviceSpec;
use scoregen::physics;
use scoregen::physics::io::{load_event_images, EventImages};
use scoregen::physics::metrics;
use scoregen::physics::segment::{self, SsnetMeta, SsnetTraining, TrainedSsnet};
use scoregen::physics::ssnet::SsnetConfig;

/// SSNet subcommands.
#[derive(Subcommand, Debug)]
pub enum SsnetCommand {
    /// Train SSNet on events with pixel labels (e.g. from `physics simulate`).
    Train(SsnetTrainArgs),
    /// Label the pixels of events (writes N×S×S labels 0/1/2 and optionally a coloured grid).
    Apply(SsnetApplyArgs),
}

#[derive(clap::Args, Debug)]
pub struct SsnetTrainArgs {
    /// Events: npy:<images>[,<pixel labels>] (default labels: <stem>-pixels.npy beside them).
    #[arg(long)]
    data: String,
    /// Train on the first N events (default: all but the held-out ones).
    #[arg(long, value_parser = crate::cli::at_least_one())]
    first: Option<usize>,
    /// Events after the training ones to measure per-class accuracy on.
    #[arg(long, default_value_t = 200)]
    heldout: usize,
    /// Adam steps.
    #[arg(long, default_value_t = 600)]
    steps: u64,
    /// Events per batch.
    #[arg(long, default_value_t = 16, value_parser = crate::cli::at_least_one())]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Channels at full resolution (a multiple of 8) [default: 16, or the --init network's].
    #[arg(long, value_parser = crate::cli::at_least_one())]
    base: Option<usize>,
    /// Resolution levels (each halves the image; more levels see more context) [default: 4 for
    /// events of 64 pixels or more, else 3, or the --init network's].
    #[arg(long, value_parser = crate::cli::at_least_one())]
    levels: Option<usize>,
    /// Pixels below this value are background (the simulator's label threshold).
    #[arg(long, default_value_t = 0.02)]
    threshold: f64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Wall-clock budget in minutes: --steps is replaced by the count that fits, measured over
    /// the first steps, so that the learning-rate schedule ends on time.
    #[arg(long)]
    minutes: Option<f64>,
    /// Continue from this SSNet directory (its --base and --levels; fresh Adam state and
    /// learning-rate schedule), e.g. to train longer or on more events.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Output directory (ssnet.json + ssnet.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args, Debug)]
pub struct SsnetApplyArgs {
    /// Directory written by `physics ssnet train` (`--ssnet` as in `physics eval` works too).
    #[arg(long, visible_alias = "ssnet")]
    model: PathBuf,
    /// Events: npy:<images>[,<pixel labels>]; with labels, the accuracy is reported.
    #[arg(long)]
    data: String,
    /// Output NPY of pixel labels (N×S×S).
    #[arg(long)]
    out: PathBuf,
    /// Also draw the first 36 events coloured by the predicted labels.
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Also write the per-event observables to this CSV file: track pixels, shower pixels,
    /// zero-suppressed charge and the event class (from `<stem>-labels.npy` beside the events,
    /// when there), under a first line naming the SSNet. `physics select --real-observables`
    /// reads it, so a simulated reference is labelled once.
    #[arg(long)]
    observables: Option<PathBuf>,
    /// Average SSNet's logits over the eight rotations/reflections of each event (test-time
    /// augmentation: eight times the cost).
    #[arg(long)]
    symmetric: bool,
    /// Zero the pixels below SSNet's label threshold before labelling, as a readout with that
    /// threshold records them (a generator's sub-threshold haze then does not move the labels);
    /// the observable table records it, and `physics select --zero-suppress` expects it.
    #[arg(long)]
    zero_suppress: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Runs an SSNet subcommand.
pub fn run(cmd: &SsnetCommand) -> Result<()> {
    match cmd {
        SsnetCommand::Train(a) => on_device!(super::device(&a.device)?, self::ssnet_train(a)),
        SsnetCommand::Apply(a) => on_device!(super::device(&a.device)?, self::ssnet_apply(a)),
    }
}

fn print_accuracy(what: &str, acc: &segment::SegmentationAccuracy) {
    eprintln!(
        "{what}: non-zero pixels {:.2} %, background {:.2} %, track {:.2} %, shower {:.2} % ({} / {} / {} pixels)",
        100.0 * acc.nonzero,
        100.0 * acc.background,
        100.0 * acc.track,
        100.0 * acc.shower,
        acc.pixels[0],
        acc.pixels[1],
        acc.pixels[2]
    );
}

fn ssnet_train<B: AutodiffBackend>(device: &B::Device, a: &SsnetTrainArgs) -> Result<()> {
    let all = load_event_images(&a.data)?;
    let n = all.len();
    let first = a.first.unwrap_or(n.saturating_sub(a.heldout)).min(n);
    let train = all.slice(0..first);
    let heldout = all.slice(first..(first + a.heldout).min(n));
    if train.is_empty() {
        bail!(
            "--data {}: no training events (of {n}, {} held out)",
            a.data,
            a.heldout
        );
    }
    if let Some(m) = a.minutes.filter(|m| !(m.is_finite() && *m > 0.0)) {
        bail!("--minutes {m}: the time budget must be a positive number of minutes");
    }
    let opts = SsnetTraining {
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        // With --init and no sizes given, the network's own sizes.
        config: if a.init.is_some() && a.base.is_none() && a.levels.is_none() {
            None
        } else {
            let d = SsnetConfig::for_size(all.size);
            Some(SsnetConfig {
                base: a.base.unwrap_or(d.base),
                levels: a.levels.unwrap_or(d.levels),
                ..d
            })
        },
        minutes: a.minutes,
        init: a.init.clone(),
    };
    let steps_text = match a.minutes {
        Some(m) => format!("steps fitted to a {m}-minute budget"),
        None => format!("{} steps", a.steps),
    };
    eprintln!(
        "training SSNet on {} events of {}×{} ({} held out), {steps_text}, batch {}",
        train.len(),
        all.size,
        all.size,
        heldout.len(),
        a.batch
    );
    let t0 = Instant::now();
    let bar = indicatif::ProgressBar::new(a.steps);
    let every = if a.minutes.is_some() {
        250
    } else {
        (a.steps / 10).max(1)
    };
    let TrainedSsnet {
        net,
        config,
        class_weights,
        steps,
    } = segment::train_ssnet::<B>(
        train.labelled()?,
        &opts,
        device,
        &mut |step, loss, total, planned| {
            if let (Some(rate), Some(minutes)) = (planned, a.minutes) {
                // The time budget has timed the first steps and fixed the count that fits.
                bar.set_length(total);
                bar.suspend(|| {
                    eprintln!(
                        "{}",
                        scoregen::train::budget::plan_line(total, rate, minutes)
                    )
                });
            }
            bar.set_position(step);
            bar.set_message(format!("loss {loss:.4}"));
            // Without a terminal the bar is hidden: log a line every tenth of the run.
            if bar.is_hidden() && step % every == 0 {
                eprintln!("step {step}: loss {loss:.4}");
            }
        },
    )?;
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let score = |symmetric: bool| -> Result<Option<segment::SegmentationAccuracy>> {
        if heldout.is_empty() {
            return Ok(None);
        }
        let labelling = segment::Labelling {
            threshold: a.threshold,
            symmetric,
        };
        let pred = segment::segment_with(&net, &heldout.images, heldout.size, labelling, device);
        Ok(Some(segment::segmentation_accuracy(
            heldout.labelled()?,
            &pred,
            a.threshold,
        )?))
    };
    let (accuracy, accuracy_symmetric) = (score(false)?, score(true)?);
    let meta = SsnetMeta {
        config,
        threshold: a.threshold,
        class_weights,
        steps,
        train_events: train.len(),
        heldout: accuracy,
        heldout_symmetric: accuracy_symmetric,
    };
    segment::save_ssnet(&a.out, &net, &meta)?;
    eprintln!(
        "trained {steps} steps in {secs:.0} s; wrote {}",
        a.out.display()
    );
    if let Some(acc) = &accuracy {
        print_accuracy("held-out accuracy", acc);
    }
    if let Some(acc) = &accuracy_symmetric {
        print_accuracy(
            "held-out accuracy, 8 symmetries averaged (--symmetric)",
            acc,
        );
    }
    Ok(())
}

/// Events must have the size the SSNet in `dir` was built for.
pub(super) fn check_size(ev: &EventImages, meta: &SsnetMeta, dir: &std::path::Path) -> Result<()> {
    let n = meta.config.size;
    if ev.size != n {
        bail!(
            "{}: {s}×{s} events, but the SSNet in {} takes {n}×{n}",
            ev.path.display(),
            dir.display(),
            s = ev.size
        );
    }
    Ok(())
}

fn ssnet_apply<B: AutodiffBackend>(device: &B::Device, a: &SsnetApplyArgs) -> Result<()> {
    a.grid
        .as_deref()
        .map_or(Ok(()), scoregen::data::check_png_path)?;
    let (net, meta) = segment::load_ssnet::<B::InnerBackend>(&a.model, device)?;
    let mut ev: EventImages = load_event_images(&a.data)?;
    check_size(&ev, &meta, &a.model)?;
    if a.zero_suppress {
        super::physics_commands::zero_suppress_events(&mut ev, meta.threshold, "event");
    }
    let labelling = segment::Labelling {
        threshold: meta.threshold,
        symmetric: a.symmetric,
    };
    let pred = segment::segment_with(&net, &ev.images, ev.size, labelling, device);
    let labels: Vec<f32> = pred.iter().map(|&l| l as f32).collect();
    scoregen::data::write_npy_shaped(&a.out, &labels, &[ev.len(), ev.size, ev.size])?;
    eprintln!("labelled {} events; wrote {}", ev.len(), a.out.display());
    if ev.labels.is_some() {
        let acc = segment::segmentation_accuracy(ev.labelled()?, &pred, meta.threshold)?;
        print_accuracy("accuracy against the given labels", &acc);
    }
    if let Some(g) = &a.grid {
        let n = ev.len().min(36) * ev.size * ev.size;
        physics::figures::event_grid(g, &ev.images[..n], Some(&pred[..n]), ev.size)?;
        eprintln!("wrote {}", g.display());
    }
    if let Some(path) = &a.observables {
        let o = metrics::observables_with(
            segment::Labelled {
                size: ev.size,
                images: &ev.images,
                labels: &pred,
            },
            meta.threshold,
            metrics::Detail::PerEvent,
        )?;
        let classes = physics::io::classes_beside(&ev)?;
        let provenance = physics::table::Provenance::new(&a.model, a.symmetric, a.zero_suppress);
        physics::table::write_observable_table(path, &o, classes.as_deref(), &provenance)?;
        eprintln!(
            "observables of {} events{} → {}",
            ev.len(),
            if classes.is_some() {
                " with their classes"
            } else {
                ""
            },
            path.display()
        );
    }
    Ok(())
}
