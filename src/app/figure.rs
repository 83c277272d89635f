//! The score-field figure: score vectors over density contours, samples, and annealed-Langevin
//! trajectories, for an exact mixture or a trained model.

use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};

use super::trained::{nll_of_points, Trained};
use crate::error::Result;
use crate::likelihood::Divergence;
use crate::plot::{score_field_figure, Bounds, ScoreFieldData};
use crate::rng::Rng;
use crate::samplers::{annealed_langevin, langevin, SamplerConfig, SamplerKind};
use crate::score::{GaussianMixture, GmmScore, ScoreFn};
use crate::sde::{prior_sample, SdeSpec};
use crate::tensor::{from_rows, to_vec};

/// Sizes of the figure.
#[derive(Clone, Debug)]
pub struct FigureOptions {
    /// Image side in pixels.
    pub size: usize,
    /// Arrows per side.
    pub arrows: usize,
    /// Density lattice per side (model densities cost one ODE solve per point).
    pub density_grid: usize,
    /// Number of samples drawn.
    pub samples: usize,
    /// Number of trajectories drawn.
    pub trajectories: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for FigureOptions {
    fn default() -> Self {
        FigureOptions {
            size: 640,
            arrows: 21,
            density_grid: 32,
            samples: 1000,
            trajectories: 6,
            seed: 0,
        }
    }
}

impl FigureOptions {
    /// Refuses sizes that cannot make a figure: a side of 16 to 8 192 pixels, at most 4 096
    /// density points and 1 000 arrows per side, at most 10 000 000 samples.
    pub fn check(&self) -> Result<()> {
        for (field, v, lo, hi) in [
            ("size", self.size, 16, 8192),
            ("density_grid", self.density_grid, 2, 4096),
            ("arrows", self.arrows, 2, 1000),
            ("samples", self.samples, 0, 10_000_000),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(crate::error::Error::config(
                    field,
                    format!("{v} is outside {lo}..={hi}"),
                ));
            }
        }
        Ok(())
    }
}

fn lattice(b: Bounds, n: usize) -> Vec<f32> {
    let mut pts = Vec::with_capacity(2 * n * n);
    for j in 0..n {
        for i in 0..n {
            let x = b.x0 + (b.x1 - b.x0) * (i as f64 + 0.5) / n as f64;
            let y = b.y1 - (b.y1 - b.y0) * (j as f64 + 0.5) / n as f64;
            pts.push(x as f32);
            pts.push(y as f32);
        }
    }
    pts
}

fn arrows_from(points: &[f32], scores: &[f32]) -> Vec<([f64; 2], [f64; 2])> {
    points
        .chunks(2)
        .zip(scores.chunks(2))
        .map(|(p, s)| ([p[0] as f64, p[1] as f64], [s[0] as f64, s[1] as f64]))
        .collect()
}

/// Starting points of the trajectories: `k` points on a circle at 40% of the view's half-size.
fn starts(b: Bounds, k: usize) -> Vec<f32> {
    let (cx, cy) = (0.5 * (b.x0 + b.x1), 0.5 * (b.y0 + b.y1));
    let (rx, ry) = (0.4 * (b.x1 - b.x0), 0.4 * (b.y1 - b.y0));
    (0..k)
        .flat_map(|i| {
            let a = std::f64::consts::TAU * (i as f64 + 0.25) / k as f64;
            [(cx + rx * a.cos()) as f32, (cy + ry * a.sin()) as f32]
        })
        .collect()
}

/// Langevin trajectories at time `t` (Song & Ermon 2019, Eq. 2) from `x0` (score coordinates),
/// mapped to data coordinates by `to_data`.
fn langevin_paths<B: Backend, S: ScoreFn<B>>(
    score: &S,
    t: f64,
    x0: Vec<f32>,
    eps: f64,
    steps: usize,
    rng: &mut Rng,
    device: &B::Device,
    to_data: &dyn Fn(&[f32]) -> Vec<f32>,
) -> Vec<Vec<[f64; 2]>> {
    let k = x0.len() / 2;
    let mut snaps = vec![to_data(&x0)];
    let x = from_rows::<B>(x0, k, 2, device);
    langevin(score, x, t, eps, steps, rng, &mut |_, x| {
        snaps.push(to_data(&to_vec(x.clone())))
    });
    (0..k)
        .map(|i| {
            snaps
                .iter()
                .map(|s| [s[2 * i] as f64, s[2 * i + 1] as f64])
                .collect()
        })
        .collect()
}

/// Mean per-coordinate variance of 2-D points.
fn mean_variance(p: &[f32]) -> f64 {
    let n = (p.len() / 2).max(1) as f64;
    (0..2)
        .map(|j| {
            let m = p.iter().skip(j).step_by(2).map(|&v| v as f64).sum::<f64>() / n;
            p.iter()
                .skip(j)
                .step_by(2)
                .map(|&v| (v as f64 - m).powi(2))
                .sum::<f64>()
                / n
        })
        .sum::<f64>()
        / 2.0
}

/// Langevin step ε relative to the data variance, and steps, of the drawn trajectories.
const PATH_EPS: f64 = 2e-3;
const PATH_STEPS: usize = 250;

/// The figure for an exact Gaussian mixture (2-D): exact log-density, exact scores, and
/// annealed Langevin with the exact score under a VE SDE.
pub fn exact_score_field<B: Backend>(
    gmm: &GaussianMixture,
    path: &Path,
    opts: &FigureOptions,
    device: &B::Device,
) -> Result<()> {
    opts.check()?;
    let mut rng = Rng::new(opts.seed);
    let reference = gmm.sample(4000, &mut rng);
    let bounds = Bounds::of_points(&reference, 0.12);
    let grid = lattice(bounds, opts.density_grid.max(64));
    let logp: Vec<f64> = grid
        .chunks(2)
        .map(|p| gmm.log_pdf(&[p[0] as f64, p[1] as f64]))
        .collect();
    let arrow_pts = lattice(bounds, opts.arrows);
    let scores: Vec<f32> = arrow_pts
        .chunks(2)
        .flat_map(|p| {
            gmm.score_at(&[p[0] as f64, p[1] as f64])
                .into_iter()
                .map(|v| v as f32)
        })
        .collect();
    let span = ((bounds.x1 - bounds.x0).powi(2) + (bounds.y1 - bounds.y0).powi(2)).sqrt();
    let spec = SdeSpec::Ve {
        sigma_min: 0.01,
        sigma_max: span,
    };
    let score = GmmScore::<B>::new(gmm.clone(), &spec, device)?;
    let sde = spec.build()?;
    let x = prior_sample(sde.as_ref(), &mut rng, opts.samples, 2, device);
    let cfg = SamplerConfig::new(SamplerKind::AnnealedLangevin);
    let out = annealed_langevin(
        &score,
        sde.as_ref(),
        x,
        100,
        cfg.corrector_steps,
        0.0,
        true,
        &mut rng,
        &mut |_, _| {},
    );
    let samples = to_vec(out.x);
    let eps = PATH_EPS * mean_variance(&reference);
    let paths = langevin_paths(
        &score,
        sde.t_min(),
        starts(bounds, opts.trajectories),
        eps,
        PATH_STEPS,
        &mut rng,
        device,
        &|v| v.to_vec(),
    );
    let data = ScoreFieldData {
        title: "closed-form score and density".into(),
        bounds,
        log_density: Some((opts.density_grid.max(64), logp)),
        arrows: arrows_from(&arrow_pts, &scores),
        samples,
        trajectories: paths,
    };
    score_field_figure(path, &data, opts.size)
}

/// The figure for a trained 2-D model: its log-density by the probability-flow ODE on a lattice,
/// its score at t = ε, and its annealed-Langevin samples and trajectories.
pub fn model_score_field<B: AutodiffBackend>(
    model: &Trained<B>,
    path: &Path,
    opts: &FigureOptions,
) -> Result<()> {
    opts.check()?;
    if model.dim() != 2 {
        return Err(crate::error::Error::Shape(format!(
            "score-field plots need 2-D data; this model has {} dimensions",
            model.dim()
        )));
    }
    let mut rng = Rng::new(opts.seed);
    let mut cfg = SamplerConfig::new(SamplerKind::AnnealedLangevin);
    cfg.steps = 100;
    let st = model.meta.standardizer.clone();
    let inner = model.inner();
    let (samples, _) = inner.sample(&cfg, opts.samples, &mut rng, &mut |_, _| {})?;
    let bounds = Bounds::of_points(&samples, 0.12);
    let grid = lattice(bounds, opts.density_grid);
    let nll = nll_of_points(
        model,
        &grid,
        path,
        Divergence::Exact,
        1e-3,
        4096,
        &mut rng,
        &mut |_| {},
    )?;
    let logp: Vec<f64> = nll.per_point.iter().map(|v| -v).collect();
    let arrow_pts = lattice(bounds, opts.arrows);
    let scores = inner.score_at(&arrow_pts, model.sde.t_min(), path)?;
    let data = ScoreFieldData {
        title: "model score and density".into(),
        bounds,
        log_density: Some((opts.density_grid, logp)),
        arrows: arrows_from(&arrow_pts, &scores),
        samples,
        trajectories: langevin_paths(
            &inner.score(),
            model.sde.t_min(),
            st.forward(&starts(bounds, opts.trajectories)),
            PATH_EPS,
            PATH_STEPS,
            &mut rng,
            &model.device,
            &|v| st.inverse(v),
        ),
    };
    score_field_figure(path, &data, opts.size)
}
