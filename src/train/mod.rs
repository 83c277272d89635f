//! Training: configuration, Adam with warm-up + cosine learning rate and global-norm clipping,
//! EMA of the weights, atomic safetensors checkpoints that resume exactly, loss logs.

mod adam;
mod average;
pub mod budget;
pub mod checkpoint;
pub mod class_mix;
mod config;
mod ema;
mod lagged_loss;
pub mod params;
pub mod safetensors;
mod schedule;
mod step_log;
mod trainer;

pub use adam::{Adam, GradNorm};
pub use average::average_checkpoints;
pub use budget::TimeBudget;
pub use checkpoint::{load_model, Checkpoint, CheckpointMeta};
pub use config::TrainConfig;
pub use ema::ema_update;
pub use lagged_loss::LaggedLoss;
pub use schedule::lr_at;
pub use trainer::{check_output, train, train_with, AuxLoss, TrainOptions, TrainSummary};

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes a network into `dir` as `<stem>.safetensors` (tagged `format`) and its metadata as
/// `<stem>.json`: weights first, then metadata, each atomically, so a reader that finds the JSON
/// finds complete weights.
pub fn save_network<B: burn::tensor::backend::Backend, M: burn::module::Module<B>>(
    dir: &Path,
    stem: &str,
    format: &str,
    net: &M,
    meta: &impl serde::Serialize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let md = std::collections::BTreeMap::from([("format".to_string(), format.to_string())]);
    safetensors::write(
        &dir.join(format!("{stem}.safetensors")),
        &params::named_params(net),
        &md,
    )?;
    let json =
        serde_json::to_vec_pretty(meta).map_err(|e| Error::checkpoint(dir, e.to_string()))?;
    atomic_write(&dir.join(format!("{stem}.json")), &json)
}

/// Loads `<stem>.safetensors` of `dir` into `init` (a freshly built network of the recorded
/// sizes); names and shapes must match.
pub fn load_network<B: burn::tensor::backend::Backend, M: burn::module::Module<B>>(
    dir: &Path,
    stem: &str,
    init: M,
) -> Result<M> {
    let wp = dir.join(format!("{stem}.safetensors"));
    let (tensors, _) = safetensors::read(&wp)?;
    let tensors = tensors.into_iter().collect();
    params::load_named(init, &tensors, "", &wp)
}

/// Reads the JSON metadata file `path` of the directory `dir`: a missing file is a checkpoint
/// error on `dir` saying `missing`, a malformed one names the file.
pub fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    path: &Path,
    missing: &str,
) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|_| Error::checkpoint(dir, missing))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::checkpoint(path, format!("corrupt metadata: {e}")))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
/// A reader sees the old file or the new one, never a partial write.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
