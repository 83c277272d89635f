//! `scoregen physics …`: the LArTPC simulator, the segmentation network and physics metrics.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;

use scoregen::physics::{self, SimConfig};

/// Physics subcommands.
#[derive(Subcommand, Debug)]
pub enum PhysicsCommand {
    /// Simulate LArTPC events: images N×1×S×S in [0, 1], event classes (-labels.npy) and pixel
    /// labels 0 background / 1 track / 2 shower (-pixels.npy).
    Simulate(SimulateArgs),
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Number of events.
    #[arg(long, default_value_t = 1000)]
    num: usize,
    /// Image side in pixels (3 mm pitch).
    #[arg(long)]
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
    let t0 = Instant::now();
    let ev = physics::simulate(&cfg, a.num, a.seed)?;
    let secs = t0.elapsed().as_secs_f64();
    let (classes, pixels) = ev.write(&a.out)?;
    let mut counts = [0usize; 4];
    for &c in &ev.classes {
        counts[c as usize] += 1;
    }
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
