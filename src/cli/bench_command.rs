//! `scoregen bench`: throughput of the MLP and the MNIST U-Net, as a table on stderr and JSON
//! (one object: `{"records": [...]}`) on stdout or in a file; `bench/torch_bench.py` writes the
//! same for PyTorch and `bench/compare.py` prints the two side by side.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;

use scoregen::app::bench::{bench_unet, mnist_unet, run_bench, BenchConfig, BenchRecord};
use scoregen::cuda_conv::CudaConv;
use scoregen::device::DeviceSpec;
use scoregen::nn::Precision;
use scoregen::samplers::SamplerKind;

/// Options of `scoregen bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure: mlp, unet or all.
    #[arg(long, default_value = "all")]
    suite: String,
    /// Which U-Net: `bench` (base 32, mult [1, 2], attention in the middle block only; records
    /// named `unet`) or `mnist` (the default training network: mult [1, 2, 2], attention also at
    /// 7 × 7, no dropout; records named `unet-mnist`).
    #[arg(long, default_value = "bench")]
    unet: String,
    /// U-Net batches for training and forward passes.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    batches: Vec<usize>,
    /// U-Net batches for the samplers (default: --batches).
    #[arg(long, value_delimiter = ',')]
    sample_batches: Option<Vec<usize>>,
    /// MLP batch (2-D data).
    #[arg(long, default_value_t = 4096, value_parser = crate::cli::at_least_one())]
    mlp_batch: usize,
    /// Samplers measured; empty (`--samplers ''`) to skip sampling.
    #[arg(long, value_delimiter = ',', default_value = "ddpm,ddim,pc,ode")]
    samplers: Vec<String>,
    /// Steps per sampler run (`ode` is adaptive, with rtol = atol = --ode-tol).
    #[arg(long, default_value_t = 10, value_parser = crate::cli::at_least_one())]
    steps: usize,
    /// RK45 tolerance of `ode`.
    #[arg(long, default_value_t = 1e-3)]
    ode_tol: f64,
    /// DDIM step counts of the NFE sweep (NFE/s and peak memory against the number of steps);
    /// empty (`--nfe-sweep ''`) to skip.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    nfe_sweep: Vec<String>,
    /// Batch of the NFE sweep.
    #[arg(long, default_value_t = 1, value_parser = crate::cli::at_least_one())]
    sweep_batch: usize,
    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = crate::cli::at_least_one())]
    repeats: usize,
    /// f32, or bf16: training steps in mixed precision (bf16 compute, f32 master weights),
    /// forward passes and samplers on bf16 weights (for GPUs with bf16 tensor cores; the CPU
    /// backend emulates bf16 through f32).
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Write the JSON here instead of stdout.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
}

impl BenchArgs {
    fn config(&self) -> Result<BenchConfig> {
        let (run_mlp, run_unet) = match self.suite.as_str() {
            "all" => (true, true),
            "mlp" => (true, false),
            "unet" => (false, true),
            other => anyhow::bail!("--suite: `{other}` is not one of mlp, unet, all"),
        };
        let (unet, unet_name) = match self.unet.as_str() {
            "bench" => (bench_unet(), "unet"),
            "mnist" => (mnist_unet(), "unet-mnist"),
            other => anyhow::bail!("--unet: `{other}` is not one of bench, mnist"),
        };
        let samplers = self
            .samplers
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| SamplerKind::from_name(s.trim()))
            .collect::<scoregen::Result<Vec<_>>>()?;
        let nfe_sweep = self
            .nfe_sweep
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("--nfe-sweep: `{s}` is not a positive step count"))
            })
            .collect::<Result<Vec<_>>>()?;
        let positive = |name: &str, v: &[usize]| -> Result<()> {
            anyhow::ensure!(
                !v.is_empty() && v.iter().all(|&b| b > 0),
                "--{name}: batches must be positive"
            );
            Ok(())
        };
        positive("batches", &self.batches)?;
        let sample_batches = self
            .sample_batches
            .clone()
            .unwrap_or_else(|| self.batches.clone());
        positive("sample-batches", &sample_batches)?;
        positive("mlp-batch", &[self.mlp_batch])?;
        positive("sweep-batch", &[self.sweep_batch])?;
        anyhow::ensure!(self.steps > 0, "--steps must be at least 1");
        anyhow::ensure!(self.repeats > 0, "--repeats must be at least 1");
        anyhow::ensure!(
            self.ode_tol > 0.0 && self.ode_tol.is_finite(),
            "--ode-tol must be positive"
        );
        Ok(BenchConfig {
            unet,
            unet_name,
            mlp_batch: self.mlp_batch,
            unet_batches: self.batches.clone(),
            sample_batches,
            samplers,
            sample_steps: self.steps,
            ode_tol: self.ode_tol,
            warmup: self.warmup,
            repeats: self.repeats,
            nfe_sweep,
            sweep_batch: self.sweep_batch,
            run_mlp,
            run_unet,
            precision: self.precision,
            ..BenchConfig::default()
        })
    }
}

fn row(r: &BenchRecord) -> String {
    let what = match &r.sampler {
        Some(s) => format!("{} {s} ({} NFE)", r.what, r.nfe.unwrap_or(0)),
        None => r.what.clone(),
    };
    let nfe = r
        .nfe_per_s
        .map(|v| format!("{v:9.2} NFE/s"))
        .unwrap_or_default();
    let mem = r
        .peak_mem_mib
        .map(|m| format!("  peak {m:.0} MiB"))
        .unwrap_or_default();
    format!(
        "{:<5} {:<26} batch {:>5}  {:>10.2} ms  {:>10.2} items/s{nfe}{mem}",
        r.model, what, r.batch, r.median_ms, r.items_per_s
    )
}

/// Runs `scoregen bench` on the backend of the chosen device.
pub fn bench<AB: AutodiffBackend>(device: &AB::Device, args: &BenchArgs) -> Result<()> {
    let cfg = args.config()?;
    // On CUDA the convolution kernels are part of what is measured (src/cuda_conv.rs).
    let device_name = match args.device.parse::<DeviceSpec>()? {
        DeviceSpec::Cpu => args.device.clone(),
        DeviceSpec::Cuda(_) => {
            let conv = CudaConv::from_env()?;
            format!("{} (convolutions: {})", args.device, conv.name())
        }
    };
    eprintln!(
        "scoregen {} bench on {} in {} (median of {} runs after {} warm-up)",
        env!("CARGO_PKG_VERSION"),
        device_name,
        cfg.precision.name(),
        cfg.repeats,
        cfg.warmup
    );
    let records = run_bench::<AB>(&cfg, device, &device_name, &mut |r| eprintln!("{}", row(r)))?;
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "framework": "scoregen",
        "version": env!("CARGO_PKG_VERSION"),
        "device": device_name,
        "precision": cfg.precision.name(),
        "records": records,
    }))?;
    match &args.json {
        Some(path) => std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}
