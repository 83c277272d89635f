//! Adam (Kingma & Ba 2015) with global-norm gradient clipping (Pascanu et al. 2013); its state is
//! kept by parameter name so it can be stored in a safetensors checkpoint.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Tensor, TensorData};

use super::params::HostTensor;
use crate::tensor::{scalar, to_vec};

/// Adam optimiser state.
pub struct Adam<B: Backend> {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Number of updates taken (for bias correction).
    pub t: u64,
    state: HashMap<String, (Tensor<B, 1>, Tensor<B, 1>)>,
}

impl<B: Backend> Default for Adam<B> {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            state: HashMap::new(),
        }
    }
}

struct NormVisitor<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    acc: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for NormVisitor<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let s = g.powi_scalar(2).sum();
            self.acc = Some(match self.acc.take() {
                None => s,
                Some(a) => a + s,
            });
        }
    }
}

struct StepMapper<'a, B: AutodiffBackend> {
    adam: &'a mut Adam<B::InnerBackend>,
    grads: GradientsParams,
    path: Vec<String>,
    lr: f64,
    scale: f64,
}

impl<B: AutodiffBackend> ModuleMapper<B> for StepMapper<'_, B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.dims();
        let n: usize = shape.iter().product();
        let g = grad.reshape([n]).mul_scalar(self.scale);
        let name = self.path.join(".");
        let a = &mut *self.adam;
        let (m, v) = a
            .state
            .remove(&name)
            .unwrap_or_else(|| (g.zeros_like(), g.zeros_like()));
        let m = m.mul_scalar(a.beta1) + g.clone().mul_scalar(1.0 - a.beta1);
        let v = v.mul_scalar(a.beta2) + g.powi_scalar(2).mul_scalar(1.0 - a.beta2);
        let bc1 = 1.0 - a.beta1.powi(a.t as i32);
        let bc2 = 1.0 - a.beta2.powi(a.t as i32);
        let update =
            (m.clone().div_scalar(bc1)) / (v.clone().div_scalar(bc2).sqrt().add_scalar(a.eps));
        let new = tensor.inner().reshape([n]) - update.mul_scalar(self.lr);
        a.state.insert(name, (m, v));
        let out = Tensor::<B, D>::from_inner(new.reshape(shape)).require_grad();
        Param::from_mapped_value(id, out, mapper)
    }
}

impl<B: Backend> Adam<B> {
    /// One supervised training step (the evaluation classifier, SSNet): checks that `loss` is
    /// finite (else a [`Error::Diverged`] naming `what` and the step), back-propagates, and
    /// updates with the warm-up (first 5 %) + cosine learning rate peaking at `peak_lr`, with the
    /// gradient norm clipped at 1. Returns the model and the loss value.
    pub fn supervised_step<AB, M>(
        &mut self,
        model: M,
        loss: burn::tensor::Tensor<AB, 1>,
        (step, steps): (u64, u64),
        peak_lr: f64,
        what: &str,
    ) -> crate::error::Result<(M, f64)>
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let lv = crate::tensor::scalar(loss.clone());
        if !lv.is_finite() {
            return Err(crate::error::Error::Diverged(format!(
                "{what} loss is {lv} at step {step}; lower the learning rate"
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = super::lr_at(step, steps, peak_lr, steps / 20, 0.02);
        Ok((self.step(model, grads, lr, Some(1.0)).0, lv))
    }

    /// One Adam update of `model` with learning rate `lr`, after scaling the gradients so that
    /// their global L2 norm is at most `clip` (if given). Returns the model and the norm before
    /// clipping.
    pub fn step<AB, M>(
        &mut self,
        model: M,
        grads: GradientsParams,
        lr: f64,
        clip: Option<f64>,
    ) -> (M, f64)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut nv = NormVisitor::<AB> {
            grads: &grads,
            acc: None,
        };
        model.visit(&mut nv);
        let norm = nv.acc.map(|a| scalar(a).sqrt()).unwrap_or(0.0);
        let scale = match clip {
            Some(c) if norm > c && norm.is_finite() => c / norm,
            _ => 1.0,
        };
        self.t += 1;
        let mut mapper = StepMapper::<AB> {
            adam: self,
            grads,
            path: Vec::new(),
            lr,
            scale,
        };
        (model.map(&mut mapper), norm)
    }

    /// The moment estimates as named host tensors (`m.<param>`, `v.<param>`), sorted.
    pub fn state_tensors(&self) -> Vec<(String, HostTensor)> {
        let mut names: Vec<&String> = self.state.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let (m, v) = &self.state[name];
            let len = m.dims()[0];
            out.push((
                format!("m.{name}"),
                HostTensor {
                    shape: vec![len],
                    data: to_vec(m.clone()),
                },
            ));
            out.push((
                format!("v.{name}"),
                HostTensor {
                    shape: vec![len],
                    data: to_vec(v.clone()),
                },
            ));
        }
        out
    }

    /// Restores moment estimates saved by [`Adam::state_tensors`] (keys without their prefix).
    pub fn load_state(
        &mut self,
        t: u64,
        tensors: &HashMap<String, HostTensor>,
        prefix: &str,
        device: &B::Device,
    ) {
        self.t = t;
        self.state.clear();
        for (key, m) in tensors {
            let Some(name) = key.strip_prefix(&format!("{prefix}m.")) else {
                continue;
            };
            if let Some(v) = tensors.get(&format!("{prefix}v.{name}")) {
                let mk = Tensor::from_data(TensorData::new(m.data.clone(), [m.data.len()]), device);
                let vk = Tensor::from_data(TensorData::new(v.data.clone(), [v.data.len()]), device);
                self.state.insert(name.to_string(), (mk, vk));
            }
        }
    }
}
