//! `scoregen bench`: training and sampling throughput of the MLP and image U-Net, with the same
//! records as the PyTorch twin `bench/torch_bench.py`, so one table compares the two.
//!
//! Every figure is the median of `repeats` timed runs after `warmup` untimed ones; each run ends
//! with a device synchronisation, so asynchronous backends (CUDA) are timed to completion.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::Serialize;

use super::PeakRss;
use crate::error::{Error, Result};
use crate::losses::{loss, LossConfig, LossKind};
use crate::nn::{MlpConfig, Precision, UNetConfig};
use crate::rng::Rng;
use crate::samplers::{sample, SamplerConfig, SamplerKind};
use crate::score::{EpsModel, NeuralScore, Output};
use crate::sde::{Sde, SdeSpec};
use crate::tensor::{from_rows, randn, scalar, to_vec};
use crate::train::Adam;

/// What `scoregen bench` measures.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The image U-Net (the MNIST benchmark network: 28×28, base 32, mult [1, 2]).
    pub unet: UNetConfig,
    /// The U-Net's `model` name in the records: `unet` for [`bench_unet`], `unet-mnist` for
    /// [`mnist_unet`].
    pub unet_name: &'static str,
    /// The low-dimensional score MLP.
    pub mlp: MlpConfig,
    /// Data dimension of the MLP.
    pub mlp_dim: usize,
    /// Batch of the MLP measurements.
    pub mlp_batch: usize,
    /// Batches of the U-Net training and forward measurements.
    pub unet_batches: Vec<usize>,
    /// Batches of the U-Net sampler measurements.
    pub sample_batches: Vec<usize>,
    /// Samplers measured (steps each: `sample_steps`; `ode` is adaptive).
    pub samplers: Vec<SamplerKind>,
    /// Steps per sampler run.
    pub sample_steps: usize,
    /// RK45 tolerance (rtol = atol) of `ode`.
    pub ode_tol: f64,
    /// Untimed runs before the timed ones.
    pub warmup: usize,
    /// Timed runs (the median is reported).
    pub repeats: usize,
    /// Step counts of the NFE sweep (DDIM on the U-Net at `sweep_batch`): NFE/s and peak
    /// memory should not depend on the number of steps.
    pub nfe_sweep: Vec<usize>,
    /// Batch of the NFE sweep.
    pub sweep_batch: usize,
    /// Measure the MLP.
    pub run_mlp: bool,
    /// Measure the U-Net.
    pub run_unet: bool,
    /// `f32`, or `bf16`: training steps in mixed precision (`nn::autocast` of the f32 weights
    /// at every step), forward passes and samplers on bf16 weights.
    pub precision: Precision,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            unet: bench_unet(),
            unet_name: "unet",
            mlp: MlpConfig {
                hidden: 256,
                blocks: 3,
                fourier_features: 64,
                fourier_scale: 16.0,
            },
            mlp_dim: 2,
            mlp_batch: 4096,
            unet_batches: vec![1, 16, 64, 256],
            sample_batches: vec![1, 16, 64, 256],
            samplers: vec![
                SamplerKind::Ddpm,
                SamplerKind::Ddim,
                SamplerKind::Pc,
                SamplerKind::Ode,
            ],
            sample_steps: 10,
            ode_tol: 1e-3,
            warmup: 1,
            repeats: 5,
            nfe_sweep: vec![10, 100, 1000],
            sweep_batch: 1,
            run_mlp: true,
            run_unet: true,
            precision: Precision::F32,
        }
    }
}

/// The benchmark U-Net: MNIST-sized (1×28×28), base 32, mult [1, 2], one residual block per
/// level, attention only in the middle block, no dropout (651 057 parameters; about 73 GFLOP
/// per training step at batch 64).
pub fn bench_unet() -> UNetConfig {
    UNetConfig {
        base: 32,
        mult: vec![1, 2],
        attn_levels: vec![],
        dropout: 0.0,
        ..UNetConfig::default()
    }
}

/// The network `scoregen train` builds for MNIST by default ([`UNetConfig::default`]: base 32,
/// mult [1, 2, 2], self-attention at 7 × 7 and in the middle block) without dropout, so that it
/// matches `bench/torch_bench.py --unet mnist`.
pub fn mnist_unet() -> UNetConfig {
    UNetConfig {
        dropout: 0.0,
        ..UNetConfig::default()
    }
}

/// One measurement, in the JSON shape shared with `bench/torch_bench.py`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRecord {
    /// `scoregen` (or `pytorch`, `pytorch-compile` in the twin).
    pub framework: String,
    /// `cpu`, `cuda:0`, …
    pub device: String,
    /// `mlp` or `unet`.
    pub model: String,
    /// `train_step`, `forward`, `sample` or `sweep` (DDIM at growing step counts).
    pub what: String,
    /// `f32` or `bf16` (see [`BenchConfig::precision`]).
    pub precision: String,
    /// Sampler name for `sample`/`sweep`.
    pub sampler: Option<String>,
    /// Batch size.
    pub batch: usize,
    /// Sampler steps requested.
    pub steps: Option<usize>,
    /// Network evaluations per run (whole batch).
    pub nfe: Option<usize>,
    /// Median wall time of a run, ms.
    pub median_ms: f64,
    /// All timed runs, ms.
    pub runs_ms: Vec<f64>,
    /// Items (images or points) per second.
    pub items_per_s: f64,
    /// Runs (training steps, forward passes or whole sampler runs) per second.
    pub runs_per_s: f64,
    /// Batched network evaluations per second, for samplers.
    pub nfe_per_s: Option<f64>,
    /// Peak resident memory of the process during the timed runs, MiB (host memory).
    pub peak_mem_mib: Option<f64>,
    /// Parameters of the network.
    pub params: usize,
}

/// The median of `v` (the mean of the two middle values for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

fn sync<B: Backend>(device: &B::Device) -> Result<()> {
    B::sync(device).map_err(|e| Error::Unsupported(format!("device synchronisation failed: {e:?}")))
}

/// Times `run` (which returns the NFE of one run, 0 when not a sampler): `warmup` untimed, then
/// `repeats` timed runs; returns (times in ms, NFE of the last run, peak MiB).
fn time_runs(
    warmup: usize,
    repeats: usize,
    mut run: impl FnMut() -> Result<usize>,
) -> Result<(Vec<f64>, usize, Option<f64>)> {
    for _ in 0..warmup {
        run()?;
    }
    let window = PeakRss::start();
    let mut times = Vec::with_capacity(repeats);
    let mut nfe = 0;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        nfe = run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((times, nfe, window.peak_mib()))
}

/// Runs the benchmark on `device`, handing each record to `report` as soon as it is measured.
pub fn run_bench<AB: AutodiffBackend>(
    cfg: &BenchConfig,
    device: &AB::Device,
    device_name: &str,
    report: &mut dyn FnMut(&BenchRecord),
) -> Result<Vec<BenchRecord>> {
    cfg.unet.validate()?;
    cfg.mlp.validate()?;
    if cfg.repeats == 0 {
        return Err(Error::config("repeats", "must be at least 1"));
    }
    let sde = SdeSpec::default_for("vp")?.build()?;
    let mut out = Vec::new();
    let mut push = |r: BenchRecord| {
        report(&r);
        out.push(r);
    };
    let ctx = Ctx {
        cfg,
        device_name,
        sde: sde.as_ref(),
    };
    if cfg.run_mlp {
        let model = cfg.mlp.init::<AB>(cfg.mlp_dim, 0, device);
        let params = burn::module::Module::num_params(&model);
        let m = Measured {
            name: "mlp",
            dim: cfg.mlp_dim,
            params,
        };
        push(ctx.train::<AB, _>(&m, model.clone(), cfg.mlp_batch, device)?);
        let net = cfg.precision.apply(model.valid());
        for &kind in &cfg.samplers {
            push(ctx.sample::<AB::InnerBackend, _>(&m, &net, kind, cfg.mlp_batch, None, device)?);
        }
    }
    if cfg.run_unet {
        let model = cfg.unet.init::<AB>(0, device);
        let params = burn::module::Module::num_params(&model);
        let [c, h, w] = model.image_shape();
        let m = Measured {
            name: cfg.unet_name,
            dim: c * h * w,
            params,
        };
        for &b in &cfg.unet_batches {
            push(ctx.train::<AB, _>(&m, model.clone(), b, device)?);
        }
        let net = cfg.precision.apply(model.valid());
        for &b in &cfg.unet_batches {
            push(ctx.forward::<AB::InnerBackend, _>(&m, &net, b, device)?);
        }
        for &b in &cfg.sample_batches {
            for &kind in &cfg.samplers {
                push(ctx.sample::<AB::InnerBackend, _>(&m, &net, kind, b, None, device)?);
            }
        }
        for &steps in &cfg.nfe_sweep {
            push(ctx.sample::<AB::InnerBackend, _>(
                &m,
                &net,
                SamplerKind::Ddim,
                cfg.sweep_batch,
                Some(steps),
                device,
            )?);
        }
    }
    Ok(out)
}

/// The network being measured.
struct Measured {
    name: &'static str,
    dim: usize,
    params: usize,
}

/// What every measurement shares.
struct Ctx<'a> {
    cfg: &'a BenchConfig,
    device_name: &'a str,
    sde: &'a dyn Sde,
}

impl Ctx<'_> {
    fn record(
        &self,
        m: &Measured,
        what: &str,
        batch: usize,
        (runs_ms, nfe, peak): (Vec<f64>, usize, Option<f64>),
        sampler: Option<(SamplerKind, usize)>,
    ) -> BenchRecord {
        let med = median(&runs_ms);
        BenchRecord {
            framework: "scoregen".into(),
            device: self.device_name.into(),
            model: m.name.into(),
            what: what.into(),
            precision: self.cfg.precision.name().into(),
            sampler: sampler.map(|(k, _)| k.name().to_string()),
            batch,
            steps: sampler.map(|(_, s)| s),
            nfe: sampler.map(|_| nfe),
            median_ms: med,
            runs_ms,
            items_per_s: batch as f64 * 1e3 / med,
            runs_per_s: 1e3 / med,
            nfe_per_s: sampler.map(|_| nfe as f64 * 1e3 / med),
            peak_mem_mib: peak,
            params: m.params,
        }
    }

    /// One training step: DDPM ε-loss (Ho et al. 2020, Algorithm 1) on standard-normal data,
    /// backward, global-norm clipping at 1 and Adam.
    fn train<AB, M>(
        &self,
        m: &Measured,
        model: M,
        batch: usize,
        device: &AB::Device,
    ) -> Result<BenchRecord>
    where
        AB: AutodiffBackend,
        M: AutodiffModule<AB> + EpsModel<AB>,
    {
        let mut rng = Rng::new(1);
        let data = rng.normal_vec(batch * m.dim);
        let loss_cfg = LossConfig {
            kind: LossKind::Ddpm,
            ..LossConfig::default()
        };
        let mut adam = Adam::default();
        // The model moves through each step as in the trainer (a clone would keep the old
        // parameters alive and stop the optimiser updating them in place).
        let mut slot = Some(model);
        let timed = time_runs(self.cfg.warmup, self.cfg.repeats, || {
            let model = slot.take().expect("the model is put back after every step");
            let x0 = from_rows::<AB>(data.clone(), batch, m.dim, device);
            // Mixed precision as in the trainer: a cast copy of the weights for this step.
            let cast = self.cfg.precision.step_copy(&model);
            let l = loss(
                &loss_cfg,
                cast.as_ref().unwrap_or(&model),
                self.sde,
                x0,
                &mut rng,
            )?;
            drop(cast);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            slot = Some(adam.step(model, grads, 2e-4, Some(1.0)).0);
            sync::<AB>(device)?;
            Ok(0)
        })?;
        Ok(self.record(m, "train_step", batch, timed, None))
    }

    /// One forward pass of the network without gradients.
    fn forward<B: Backend, M: EpsModel<B>>(
        &self,
        m: &Measured,
        net: &M,
        batch: usize,
        device: &B::Device,
    ) -> Result<BenchRecord> {
        let mut rng = Rng::new(2);
        let timed = time_runs(self.cfg.warmup, self.cfg.repeats, || {
            let x = randn::<B>(&mut rng, batch, m.dim, device);
            let t = from_rows::<B>(vec![0.5; batch], batch, 1, device);
            let y = net.eps(x, t);
            let _ = scalar(y.sum());
            Ok(0)
        })?;
        Ok(self.record(m, "forward", batch, timed, None))
    }

    /// One whole sampler run from the prior (no final denoising step).
    fn sample<B: Backend, M: EpsModel<B>>(
        &self,
        m: &Measured,
        net: &M,
        kind: SamplerKind,
        batch: usize,
        sweep_steps: Option<usize>,
        device: &B::Device,
    ) -> Result<BenchRecord> {
        let score = NeuralScore {
            model: net,
            sde: self.sde,
            device: device.clone(),
            output: Output::Eps,
            sigma_data: 0.5,
        };
        let mut sc = SamplerConfig::new(kind);
        sc.steps = sweep_steps.unwrap_or(self.cfg.sample_steps);
        sc.rtol = self.cfg.ode_tol;
        sc.atol = self.cfg.ode_tol;
        sc.denoise = false;
        let mut rng = Rng::new(3);
        // The sweep is one run per step count: its point is NFE/s against the step count.
        let (warmup, repeats) = match sweep_steps {
            Some(_) => (1.min(self.cfg.warmup), 1),
            None => (self.cfg.warmup, self.cfg.repeats),
        };
        let timed = time_runs(warmup, repeats, || {
            let out = sample(
                &sc,
                &score,
                self.sde,
                batch,
                m.dim,
                &mut rng,
                device,
                &mut |_, _| {},
            )?;
            let nfe = out.nfe;
            let v = to_vec(out.x);
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::Unsupported(format!(
                    "{} produced non-finite samples in the benchmark",
                    kind.name()
                )));
            }
            Ok(nfe)
        })?;
        let what = if sweep_steps.is_some() {
            "sweep"
        } else {
            "sample"
        };
        Ok(self.record(m, what, batch, timed, Some((kind, sc.steps))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn bench_unet_has_the_documented_size() {
        let net = bench_unet().init::<Flex>(0, &Default::default());
        assert_eq!(burn::module::Module::num_params(&net), 651_057);
    }

    /// A tiny configuration end to end: every record is there, consistent and finite.
    #[test]
    fn tiny_bench_reports_every_measurement() {
        let cfg = BenchConfig {
            unet: UNetConfig {
                height: 8,
                width: 8,
                base: 8,
                mult: vec![1, 2],
                groups: 4,
                ..bench_unet()
            },
            mlp: MlpConfig {
                hidden: 16,
                blocks: 1,
                ..MlpConfig::default()
            },
            mlp_batch: 32,
            unet_batches: vec![2],
            sample_batches: vec![2],
            sample_steps: 3,
            repeats: 2,
            warmup: 0,
            nfe_sweep: vec![2, 4],
            ..BenchConfig::default()
        };
        let mut seen = 0;
        let recs =
            run_bench::<Autodiff<Flex>>(&cfg, &Default::default(), "cpu", &mut |_| seen += 1)
                .expect("bench runs");
        // MLP: train + 4 samplers; U-Net: train + forward + 4 samplers + 2 sweep points.
        assert_eq!(recs.len(), 5 + 8);
        assert_eq!(seen, recs.len());
        for r in &recs {
            assert!(r.median_ms > 0.0 && r.items_per_s.is_finite(), "{r:?}");
            assert_eq!(r.runs_ms.len(), if r.what == "sweep" { 1 } else { 2 });
            let ratio = r.items_per_s / (r.batch as f64 * r.runs_per_s);
            assert!((ratio - 1.0).abs() < 1e-9);
        }
        let nfe = |what: &str, s: &str| {
            recs.iter()
                .find(|r| r.model == "unet" && r.what == what && r.sampler.as_deref() == Some(s))
                .and_then(|r| r.nfe)
        };
        assert_eq!(nfe("sample", "ddim"), Some(3));
        assert_eq!(nfe("sample", "ddpm"), Some(3));
        assert_eq!(nfe("sample", "pc"), Some(6));
        assert!(nfe("sample", "ode").is_some_and(|n| n >= 7));
        let sweep: Vec<usize> = recs
            .iter()
            .filter(|r| r.what == "sweep")
            .filter_map(|r| r.nfe)
            .collect();
        assert_eq!(sweep, vec![2, 4]);
        let json = serde_json::to_string(&recs[0]).expect("serialises");
        assert!(json.contains("\"framework\":\"scoregen\""));
        assert!(json.contains("\"precision\":\"f32\""));

        // The U-Net in bf16 mixed precision: the same measurements, labelled bf16, finite.
        let bf16 = BenchConfig {
            precision: Precision::Bf16,
            run_mlp: false,
            nfe_sweep: vec![],
            ..cfg
        };
        let recs = run_bench::<Autodiff<Flex>>(&bf16, &Default::default(), "cpu", &mut |_| {})
            .expect("bf16 bench runs");
        assert_eq!(recs.len(), 1 + 1 + 4);
        assert!(recs
            .iter()
            .all(|r| r.precision == "bf16" && r.median_ms > 0.0));
    }
}
