//! Training configuration (TOML), with defaults that work for ordinary low-dimensional data.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::losses::{LossConfig, LossKind};
use crate::nn::{MlpConfig, Precision, ScoreNet, UNetConfig};
use crate::sde::SdeSpec;

/// Everything that defines a training run. `scoregen config` prints the defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Random seed (initialisation, batches, noise).
    pub seed: u64,
    /// Optimisation steps.
    pub steps: u64,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate (Adam).
    pub lr: f64,
    /// Linear warm-up steps (capped at a tenth of `steps`).
    pub warmup: u64,
    /// Final learning rate of the cosine schedule, as a fraction of `lr`.
    pub lr_min_factor: f64,
    /// Global gradient-norm clipping threshold (0 disables).
    pub grad_clip: f64,
    /// EMA decay of the weights (warmed up as min(decay, (1 + step)/(10 + step))).
    pub ema_decay: f64,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// Standardise each data dimension to zero mean and unit variance.
    pub standardize: bool,
    /// Element-wise intensity transform applied before standardisation and inverted on
    /// samples: `identity` (default) or `sqrt` (sign(x)·√|x|, for heavy-tailed, mostly-zero
    /// images such as detector events). Likelihoods need `identity`.
    pub transform: crate::data::Transform,
    /// SDE: `ve`, `vp` or `subvp`.
    pub sde: String,
    /// VE σ_min.
    pub sigma_min: f64,
    /// VE σ_max; absent = the largest pairwise distance of the (standardised) data
    /// (Song & Ermon 2020, Technique 1).
    pub sigma_max: Option<f64>,
    /// VP/sub-VP β_min.
    pub beta_min: f64,
    /// VP/sub-VP β_max.
    pub beta_max: f64,
    /// The objective.
    pub loss: LossConfig,
    /// The MLP (used for low-dimensional data).
    pub model: MlpConfig,
    /// Probability of replacing a label by the null class while training a class-conditional
    /// model (for classifier-free guidance; Ho & Salimans 2022).
    pub label_dropout: f64,
    /// Image models: images in the sample grid written at every checkpoint (0 = none).
    pub sample_grid: usize,
    /// Image models: DDIM steps of that grid.
    pub sample_steps: usize,
    /// What the network outputs: `eps` (noise), `x0` (clean data) or `edm` (Karras et al.
    /// 2022 preconditioning); see `score::Output`.
    pub output: crate::score::Output,
    /// σ_d, the data standard deviation assumed by the `edm` preconditioning.
    pub sigma_data: f64,
    /// Image models: flip each training image left–right with probability ½ (augmentation for
    /// data sets whose mirror images are equally likely, e.g. CIFAR-10; not digits).
    pub hflip: bool,
    /// Training precision: `f32`, or `bf16` mixed precision (f32 master weights and loss, the
    /// network's convolutions and linear layers in bf16; see `nn::Precision`). bf16 pays off
    /// on GPUs with bf16 tensor cores; the CPU backend emulates it through f32 and is slower.
    pub precision: Precision,
    /// A U-Net instead of the MLP (a `[unet]` table; set automatically for image data).
    pub unet: Option<UNetConfig>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            steps: 4000,
            batch: 512,
            lr: 2e-3,
            warmup: 100,
            lr_min_factor: 0.02,
            grad_clip: 1.0,
            ema_decay: 0.995,
            checkpoint_every: 500,
            standardize: true,
            transform: crate::data::Transform::Identity,
            sde: "vp".into(),
            sigma_min: 0.01,
            sigma_max: None,
            beta_min: 0.1,
            beta_max: 20.0,
            loss: LossConfig::default(),
            model: MlpConfig::default(),
            label_dropout: 0.1,
            sample_grid: 16,
            sample_steps: 50,
            output: crate::score::Output::Eps,
            sigma_data: 0.5,
            hflip: false,
            precision: Precision::F32,
            unet: None,
        }
    }
}

impl TrainConfig {
    /// Parses TOML; unknown keys are errors that name the key.
    pub fn from_toml(text: &str, source: &std::path::Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::data(source, format!("invalid config: {e}")))
    }

    /// The defaults as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::config("steps", "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(Error::config("batch", "must be at least 1"));
        }
        crate::nn::check_sizes(&[("batch", self.batch)], &[])?;
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config(
                "lr",
                format!("must be positive, got {}", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::config(
                "ema_decay",
                format!("must be in [0, 1), got {}", self.ema_decay),
            ));
        }
        if !(self.grad_clip >= 0.0 && self.grad_clip.is_finite()) {
            return Err(Error::config(
                "grad_clip",
                format!(
                    "must be ≥ 0 and finite (0 turns clipping off), got {}",
                    self.grad_clip
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.lr_min_factor) {
            return Err(Error::config(
                "lr_min_factor",
                format!("must be in [0, 1], got {}", self.lr_min_factor),
            ));
        }
        // Settings the chosen SDE does not use are still written to checkpoint.json, which
        // cannot hold NaN or ∞.
        for (field, v) in [
            ("sigma_min", self.sigma_min),
            ("sigma_max", self.sigma_max.unwrap_or(1.0)),
            ("beta_min", self.beta_min),
            ("beta_max", self.beta_max),
        ] {
            if !v.is_finite() {
                return Err(Error::config(field, format!("must be finite, got {v}")));
            }
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return Err(Error::config("label_dropout", "must be in [0, 1)"));
        }
        if !(self.sigma_data > 0.0 && self.sigma_data.is_finite()) {
            return Err(Error::config(
                "sigma_data",
                format!("must be positive, got {}", self.sigma_data),
            ));
        }
        if self.checkpoint_every == 0 {
            return Err(Error::config("checkpoint_every", "must be at least 1"));
        }
        self.model.validate()?;
        if let Some(u) = &self.unet {
            u.validate()?;
        }
        self.sde_spec(1.0)?;
        self.loss.check_params()?;
        if self.loss.kind == LossKind::Ncsn && self.sde != "ve" {
            return Err(Error::config("loss", "ncsn needs --sde ve"));
        }
        if self.loss.kind == LossKind::Ddpm && self.sde != "vp" {
            return Err(Error::config("loss", "ddpm needs --sde vp"));
        }
        Ok(())
    }

    /// Builds the configured network for `dim`-dimensional items with initialisation `seed`.
    pub fn network<B: burn::tensor::backend::Backend>(
        &self,
        dim: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<ScoreNet<B>> {
        ScoreNet::init(&self.model, self.unet.as_ref(), dim, seed, device)
    }

    /// [`TrainConfig::network`] with its weights not yet drawn, to load saved weights into.
    pub fn network_skeleton<B: burn::tensor::backend::Backend>(
        &self,
        dim: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<ScoreNet<B>> {
        ScoreNet::skeleton(&self.model, self.unet.as_ref(), dim, seed, device)
    }

    /// The SDE, with `auto_sigma_max` used for VE when `sigma_max` is not set.
    pub fn sde_spec(&self, auto_sigma_max: f64) -> Result<SdeSpec> {
        let spec = match self.sde.as_str() {
            "ve" => SdeSpec::Ve {
                sigma_min: self.sigma_min,
                sigma_max: self
                    .sigma_max
                    .unwrap_or(auto_sigma_max.max(self.sigma_min * 10.0)),
            },
            "vp" => SdeSpec::Vp {
                beta_min: self.beta_min,
                beta_max: self.beta_max,
            },
            "subvp" | "sub-vp" => SdeSpec::Subvp {
                beta_min: self.beta_min,
                beta_max: self.beta_max,
            },
            other => {
                return Err(Error::config(
                    "sde",
                    format!("unknown SDE `{other}` (expected ve, vp or subvp)"),
                ))
            }
        };
        spec.build()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_roundtrip_and_unknown_keys_are_named() {
        let c = TrainConfig::default();
        let back = TrainConfig::from_toml(&c.to_toml(), "x.toml".as_ref()).unwrap();
        assert_eq!(back, c);
        let e = TrainConfig::from_toml("stepz = 3", "x.toml".as_ref())
            .unwrap_err()
            .to_string();
        assert!(e.contains("stepz") && e.contains("x.toml"), "{e}");
        let c = TrainConfig::from_toml("steps = 10\n[loss]\nkind = \"ncsn\"\n", "x.toml".as_ref())
            .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("ve"));
        assert!(TrainConfig {
            lr: -1.0,
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn lognormal_times_are_read_and_checked() {
        let c = TrainConfig::from_toml(
            "[loss]\ntimes = \"lognormal\"\np_mean = -1.0\n",
            "x.toml".as_ref(),
        )
        .unwrap();
        assert_eq!(c.loss.times, crate::losses::TimeSampling::Lognormal);
        assert_eq!((c.loss.p_mean, c.loss.p_std), (-1.0, 1.2));
        c.validate().unwrap();
        let bad = TrainConfig::from_toml("[loss]\np_std = 0.0\n", "x.toml".as_ref()).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("p_std"));
        let e = TrainConfig::from_toml("[loss]\ntimes = \"beta\"\n", "x.toml".as_ref())
            .unwrap_err()
            .to_string();
        assert!(e.contains("beta") && e.contains("x.toml"), "{e}");
    }
}
