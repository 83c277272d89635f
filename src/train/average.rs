//! Checkpoint averaging, the uniform "model soup" (Wortsman et al. 2022, "Model soups: averaging
//! weights of multiple fine-tuned models improves accuracy without increasing inference time"):
//! θ̄ = (1/K) Σ_k θ_k, element-wise, over the `model.` and the `ema.` weights of K checkpoints of
//! one network, typically fine-tunes of one base model that differ in their seeds. The soup costs
//! one network evaluation per step like each of its ingredients and averages out the run-to-run
//! scatter of short fine-tunes.
//!
//! The averaged checkpoint carries the first ingredient's metadata, no optimiser state and the
//! list of its ingredients ([`CheckpointMeta::averaged_from`]); it samples, evaluates and serves
//! as `train --init` like any checkpoint, but cannot be resumed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::checkpoint::{Checkpoint, CheckpointMeta};
use super::params::HostTensor;
use crate::error::{Error, Result};

/// Whether the tensor `name` is averaged: the `model.` and `ema.` weights (the optimiser's
/// `adam.` moments are dropped).
fn is_averaged(name: &str) -> bool {
    name.starts_with("model.") || name.starts_with("ema.")
}

/// The fields that must agree for weights to be averaged, as JSON, by name.
fn network_fields(meta: &CheckpointMeta) -> Result<Vec<(&'static str, serde_json::Value)>> {
    let c = &meta.config;
    let json = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| Error::Unsupported(format!("checkpoint metadata as JSON: {e}")))
    };
    Ok(vec![
        ("dim", serde_json::Value::from(meta.dim)),
        ("unet", json(serde_json::to_value(&c.unet))?),
        ("model", json(serde_json::to_value(&c.model))?),
        ("output", json(serde_json::to_value(c.output))?),
        ("sde", json(serde_json::to_value(&meta.sde))?),
        (
            "standardizer",
            json(serde_json::to_value(&meta.standardizer))?,
        ),
    ])
}

/// The averaged tensors of `cks` (all with the first one's `model.`/`ema.` names and shapes).
fn mean_tensors(cks: &[Checkpoint]) -> Result<Vec<(String, HostTensor)>> {
    let first = &cks[0];
    let mut names: Vec<&String> = first.tensors.keys().filter(|k| is_averaged(k)).collect();
    names.sort();
    let count = |t: &HashMap<String, HostTensor>| t.keys().filter(|k| is_averaged(k)).count();
    let mut out = Vec::with_capacity(names.len());
    for ck in &cks[1..] {
        if count(&ck.tensors) != names.len() {
            return Err(Error::checkpoint(
                &ck.dir,
                format!(
                    "has {} model/EMA tensors, {} has {}",
                    count(&ck.tensors),
                    first.dir.display(),
                    names.len()
                ),
            ));
        }
    }
    let k = cks.len() as f64;
    for name in names {
        let base = &first.tensors[name];
        let mut acc: Vec<f64> = base.data.iter().map(|&v| v as f64).collect();
        for ck in &cks[1..] {
            let t = match ck.tensors.get(name) {
                Some(t) if t.shape == base.shape => t,
                Some(t) => {
                    return Err(Error::checkpoint(
                        &ck.dir,
                        format!(
                            "tensor `{name}` has shape {:?}, in {} {:?}",
                            t.shape,
                            first.dir.display(),
                            base.shape
                        ),
                    ))
                }
                None => {
                    return Err(Error::checkpoint(
                        &ck.dir,
                        format!("has no tensor `{name}` (which {} has)", first.dir.display()),
                    ))
                }
            };
            acc.iter_mut()
                .zip(&t.data)
                .for_each(|(a, &v)| *a += v as f64);
        }
        let data = acc.into_iter().map(|a| (a / k) as f32).collect();
        out.push((
            name.clone(),
            HostTensor {
                shape: base.shape.clone(),
                data,
            },
        ));
    }
    Ok(out)
}

/// Averages the checkpoints in `dirs` (at least two, of one network) into a new checkpoint
/// directory `out` and returns its metadata. Errors name the checkpoint and the field or tensor
/// that differs.
pub fn average_checkpoints(dirs: &[PathBuf], out: &Path) -> Result<CheckpointMeta> {
    if dirs.len() < 2 {
        return Err(Error::config(
            "checkpoints",
            format!(
                "averaging needs at least two checkpoints, {} given",
                dirs.len()
            ),
        ));
    }
    if Checkpoint::exists(out) {
        return Err(Error::checkpoint(
            out,
            "already holds a checkpoint; choose another --out",
        ));
    }
    let cks = dirs
        .iter()
        .map(|d| Checkpoint::load(d))
        .collect::<Result<Vec<_>>>()?;
    let reference = network_fields(&cks[0].meta)?;
    for ck in &cks[1..] {
        for ((field, a), (_, b)) in reference.iter().zip(network_fields(&ck.meta)?) {
            if *a != b {
                return Err(Error::checkpoint(
                    &ck.dir,
                    format!(
                        "its `{field}` ({b}) differs from that of {} ({a}): only checkpoints of \
                         one network can be averaged",
                        cks[0].dir.display()
                    ),
                ));
            }
        }
    }
    let tensors = mean_tensors(&cks)?;
    let mut meta = cks[0].meta.clone();
    meta.adam_steps = 0;
    meta.averaged_from = dirs.iter().map(|d| d.display().to_string()).collect();
    Checkpoint::save(out, meta.clone(), &tensors)?;
    Checkpoint::load_meta(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Toy;
    use crate::rng::Rng;
    use crate::train::{train, TrainConfig, TrainOptions};
    use burn::backend::{Autodiff, Flex};

    type A = Autodiff<Flex>;

    /// A 20-step MLP checkpoint on two Gaussians, seed `seed`, `hidden` units.
    fn checkpoint(dir: &Path, seed: u64, hidden: usize) {
        let mut cfg = TrainConfig {
            steps: 20,
            batch: 32,
            seed,
            ..Default::default()
        };
        cfg.model.hidden = hidden;
        cfg.model.blocks = 1;
        let data = Toy::TwoGaussians.sample(256, &mut Rng::new(1));
        train::<A>(
            &cfg,
            &data,
            dir,
            &TrainOptions::default(),
            &Default::default(),
        )
        .unwrap();
    }

    #[test]
    fn the_soup_holds_the_mean_of_its_ingredients_and_cannot_be_resumed() {
        let root = crate::test_dir::TestDir::new("average");
        let (a, b, c, soup) = (
            root.join("a"),
            root.join("b"),
            root.join("c"),
            root.join("soup"),
        );
        checkpoint(&a, 1, 16);
        checkpoint(&b, 2, 16);
        checkpoint(&c, 3, 16);
        let dirs = [a.clone(), b.clone(), c.clone()];
        let meta = average_checkpoints(&dirs, &soup).unwrap();
        assert_eq!(meta.averaged_from.len(), 3);
        assert_eq!(meta.adam_steps, 0);
        let got = Checkpoint::load(&soup).unwrap();
        let ins: Vec<Checkpoint> = dirs.iter().map(|d| Checkpoint::load(d).unwrap()).collect();
        let mut checked = 0;
        for (name, t) in &ins[0].tensors {
            if name.starts_with("adam.") {
                assert!(!got.tensors.contains_key(name), "{name} kept");
                continue;
            }
            let s = &got.tensors[name];
            assert_eq!(s.shape, t.shape);
            for i in 0..t.data.len() {
                let mean = ins
                    .iter()
                    .map(|c| c.tensors[name].data[i] as f64)
                    .sum::<f64>()
                    / 3.0;
                assert!((s.data[i] as f64 - mean).abs() < 1e-6, "{name}[{i}]");
            }
            checked += 1;
        }
        assert!(checked > 4, "only {checked} tensors compared");
        // The seeds made different networks, so the mean is none of them.
        let mut ema: Vec<&String> = got
            .tensors
            .keys()
            .filter(|k| k.starts_with("ema."))
            .collect();
        ema.sort();
        let differs = |ck: &Checkpoint| {
            ema.iter()
                .any(|w| ck.tensors[*w].data != got.tensors[*w].data)
        };
        assert!(ins.iter().all(differs), "the soup equals an ingredient");
        // It loads as a network, and training refuses to resume it.
        got.model::<Flex>(true, &Default::default()).unwrap();
        let mut cfg = got.meta.config.clone();
        cfg.steps = 30;
        let data = Toy::TwoGaussians.sample(256, &mut Rng::new(1));
        let opts = TrainOptions {
            resume: true,
            ..Default::default()
        };
        let err = train::<A>(&cfg, &data, &soup, &opts, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("average of 3") && err.contains("--init"),
            "{err}"
        );
        // A second average into the same directory is refused.
        let err = average_checkpoints(&dirs, &soup).unwrap_err().to_string();
        assert!(err.contains("already holds"), "{err}");
    }

    #[test]
    fn different_networks_or_a_single_checkpoint_are_refused_by_name() {
        let root = crate::test_dir::TestDir::new("average-bad");
        let (a, b) = (root.join("a"), root.join("b"));
        checkpoint(&a, 1, 16);
        checkpoint(&b, 2, 24);
        let err = average_checkpoints(&[a.clone(), b.clone()], &root.join("soup"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`model`") && err.contains(&*b.display().to_string()),
            "{err}"
        );
        assert!(!Checkpoint::exists(&root.join("soup")));
        let err = average_checkpoints(&[a], &root.join("soup"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least two"), "{err}");
    }
}
