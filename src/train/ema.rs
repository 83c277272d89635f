//! Exponential moving average of the weights (Polyak & Juditsky 1992; used by every score model).

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::backend::Backend;

use super::params::{map_named, named_tensors};

/// θ_ema ← decay·θ_ema + (1 − decay)·θ, parameter by parameter (matched by name).
pub fn ema_update<B: Backend, M: Module<B>>(ema: M, model: &M, decay: f64) -> M {
    let src: HashMap<String, _> = named_tensors(model)
        .into_iter()
        .map(|(n, t, _)| (n, t))
        .collect();
    map_named(ema, &mut |name, cur, _| {
        src.get(name)
            .map(|p| cur.mul_scalar(decay) + p.clone().mul_scalar(1.0 - decay))
    })
}
