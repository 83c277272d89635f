//! Checkpoint directories: `checkpoint.json` (config, step, SDE, standardisation, RNG state)
//! pointing at `weights-<step>.safetensors` (`model.*`, `ema.*`, `adam.m.*`, `adam.v.*`).
//! Both files are written atomically, the weights first, so a run killed at any moment leaves
//! the previous complete checkpoint or the new one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::params::{load_named, HostTensor};
use super::{atomic_write, safetensors, TrainConfig};
use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::nn::ScoreNet;
use crate::rng::Rng;
use crate::sde::SdeSpec;

/// Current checkpoint format version.
pub const FORMAT_VERSION: u32 = 1;

/// The JSON side of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Format version (1).
    pub format_version: u32,
    /// scoregen version that wrote it.
    pub scoregen_version: String,
    /// Completed optimisation steps.
    pub step: u64,
    /// The training configuration.
    pub config: TrainConfig,
    /// The resolved SDE (σ_max filled in).
    pub sde: SdeSpec,
    /// Data dimension.
    pub dim: usize,
    /// Data standardisation (the model works in standardised space).
    pub standardizer: Standardizer,
    /// RNG state after `step` steps.
    pub rng: Rng,
    /// Adam's update count.
    pub adam_steps: u64,
    /// Loss of the last step.
    pub last_loss: f64,
    /// The weights file, relative to the directory.
    pub weights_file: String,
    /// Training items per class of a class-conditional model (empty otherwise, and in
    /// checkpoints written before it was recorded); `scoregen sample --class data` samples in
    /// these proportions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_counts: Vec<u64>,
    /// The checkpoints this one is the average of ([`super::average_checkpoints`]; empty for a
    /// trained checkpoint). An average has no optimiser state and cannot be resumed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub averaged_from: Vec<String>,
    /// The training data's fingerprint (none in checkpoints written before it was recorded):
    /// `--resume` refuses other data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::data::DataFingerprint>,
}

/// A loaded checkpoint: metadata and all tensors.
pub struct Checkpoint {
    /// Metadata.
    pub meta: CheckpointMeta,
    /// Tensors by full name (`model.…`, `ema.…`, `adam.…`).
    pub tensors: HashMap<String, HostTensor>,
    /// Directory it came from.
    pub dir: PathBuf,
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

impl Checkpoint {
    /// Writes a checkpoint into `dir` and removes older weight files.
    pub fn save(
        dir: &Path,
        mut meta: CheckpointMeta,
        tensors: &[(String, HostTensor)],
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let wname = format!("weights-{:08}.safetensors", meta.step);
        meta.weights_file = wname.clone();
        let md = BTreeMap::from([
            ("format".to_string(), "scoregen".to_string()),
            ("step".to_string(), meta.step.to_string()),
        ]);
        safetensors::write(&dir.join(&wname), tensors, &md)?;
        let json =
            serde_json::to_vec_pretty(&meta).map_err(|e| Error::checkpoint(dir, e.to_string()))?;
        atomic_write(&meta_path(dir), &json)?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("weights-") && name.ends_with(".safetensors") && name != wname {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Whether `dir` holds a checkpoint.
    pub fn exists(dir: &Path) -> bool {
        meta_path(dir).is_file()
    }

    /// Reads and validates a checkpoint directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let meta = Self::load_meta(dir)?;
        let wp = dir.join(&meta.weights_file);
        let (tensors, md) = safetensors::read(&wp)?;
        Self::check_weights(meta, tensors, &md, dir)
    }

    /// Reads and validates only the metadata (`checkpoint.json`) of a checkpoint directory.
    pub fn load_meta(dir: &Path) -> Result<CheckpointMeta> {
        let mp = meta_path(dir);
        if !dir.is_dir() {
            return Err(Error::checkpoint(dir, "no such directory"));
        }
        let meta: CheckpointMeta = super::read_json(
            dir,
            &mp,
            "no checkpoint.json here (not a scoregen checkpoint directory?)",
        )?;
        if meta.format_version != FORMAT_VERSION {
            return Err(Error::checkpoint(
                &mp,
                format!(
                    "format version {} is not supported (expected {FORMAT_VERSION})",
                    meta.format_version
                ),
            ));
        }
        if meta.standardizer.mean.len() != meta.dim || meta.standardizer.std.len() != meta.dim {
            return Err(Error::checkpoint(
                &mp,
                "standardisation does not match the data dimension",
            ));
        }
        Ok(meta)
    }

    fn check_weights(
        meta: CheckpointMeta,
        tensors: HashMap<String, HostTensor>,
        md: &BTreeMap<String, String>,
        dir: &Path,
    ) -> Result<Self> {
        let wp = dir.join(&meta.weights_file);
        if md.get("step").map(String::as_str) != Some(meta.step.to_string().as_str()) {
            return Err(Error::checkpoint(
                &wp,
                format!(
                    "weights are not those of step {} named in checkpoint.json",
                    meta.step
                ),
            ));
        }
        if let Some((name, _)) = tensors
            .iter()
            .find(|(_, t)| t.data.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::checkpoint(
                &wp,
                format!("tensor `{name}` holds NaN or infinite values"),
            ));
        }
        Ok(Checkpoint {
            meta,
            tensors,
            dir: dir.to_path_buf(),
        })
    }

    /// Builds the network with the `model.` (or, with `ema`, the `ema.`) weights.
    pub fn model<B: Backend>(&self, ema: bool, device: &B::Device) -> Result<ScoreNet<B>> {
        let net =
            self.meta
                .config
                .network_skeleton::<B>(self.meta.dim, self.meta.config.seed, device)?;
        let prefix = if ema { "ema." } else { "model." };
        load_named(
            net,
            &self.tensors,
            prefix,
            &self.dir.join(&self.meta.weights_file),
        )
    }
}

/// Loads the network of the checkpoint in `dir` (EMA weights when `ema`).
pub fn load_model<B: Backend>(
    dir: &Path,
    ema: bool,
    device: &B::Device,
) -> Result<(ScoreNet<B>, CheckpointMeta)> {
    let ck = Checkpoint::load(dir)?;
    let m = ck.model::<B>(ema, device)?;
    Ok((m, ck.meta))
}
