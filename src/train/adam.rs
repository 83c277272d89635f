//! Adam (Kingma & Ba 2015) with global-norm gradient clipping (Pascanu et al. 2013); its state is
//! kept by parameter name so it can be stored in a safetensors checkpoint.
//!
//! A step never waits for the device: the gradient norm and the clipping factor stay tensors
//! (as `torch.nn.utils.clip_grad_norm_` does), so the host queues the whole update and reads the
//! norm only when a caller asks for it ([`GradNorm::value`]).

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

/// The global L2 norm of one step's gradients, before clipping, as a one-element device tensor
/// (`None` when the model had no gradients).
pub struct GradNorm<B: Backend>(Option<Tensor<B, 1>>);

impl<B: Backend> GradNorm<B> {
    /// A norm computed elsewhere (tests).
    #[cfg(test)]
    pub(crate) fn of(norm: Tensor<B, 1>) -> Self {
        GradNorm(Some(norm))
    }

    /// The norm on the host (0 without gradients); this waits for the device.
    pub fn value(self) -> f64 {
        self.0.map_or(0.0, scalar)
    }
}

struct StepMapper<'a, B: AutodiffBackend> {
    adam: &'a mut Adam<B::InnerBackend>,
    grads: GradientsParams,
    path: Vec<String>,
    lr: f64,
    /// The clipping factor `[1]`, when clipping is on.
    scale: Option<Tensor<B::InnerBackend, 1>>,
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
        let g = grad.reshape([n]);
        let g = match &self.scale {
            Some(s) => g * s.clone(),
            None => g,
        };
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
    /// One supervised training step (the evaluation classifier, SSNet, the discriminator):
    /// back-propagates `loss` and updates with the warm-up (first 5 %) + cosine learning rate
    /// peaking at `peak_lr`, with the gradient norm clipped at 1. Returns the model and the
    /// loss, detached and still on the device (nothing here waits for it: read it with
    /// [`super::LaggedLoss`] once the next step is queued).
    pub fn supervised_step<AB, M>(
        &mut self,
        model: M,
        loss: burn::tensor::Tensor<AB, 1>,
        (step, steps): (u64, u64),
        peak_lr: f64,
    ) -> (M, burn::tensor::Tensor<B, 1>)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let value = loss.clone().inner();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = super::lr_at(step, steps, peak_lr, steps / 20, 0.02);
        let (model, _) = self.step(model, grads, lr, Some(1.0));
        (model, value)
    }

    /// One Adam update of `model` with learning rate `lr`, after scaling the gradients by
    /// `clip / max(‖g‖, clip)` so that their global L2 norm ‖g‖ is at most `clip` (if given).
    /// Returns the model and ‖g‖ before clipping. Nothing here waits for the device. A
    /// non-finite norm leaves non-finite parameters, which the next loss shows.
    pub fn step<AB, M>(
        &mut self,
        model: M,
        grads: GradientsParams,
        lr: f64,
        clip: Option<f64>,
    ) -> (M, GradNorm<AB::InnerBackend>)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut nv = NormVisitor::<AB> {
            grads: &grads,
            acc: None,
        };
        model.visit(&mut nv);
        let norm = nv.acc.map(|a| a.sqrt());
        let scale = match (clip, &norm) {
            (Some(c), Some(n)) => Some(n.clone().clamp_min(c).recip().mul_scalar(c)),
            _ => None,
        };
        self.t += 1;
        let mut mapper = StepMapper::<AB> {
            adam: self,
            grads,
            path: Vec::new(),
            lr,
            scale,
        };
        (model.map(&mut mapper), GradNorm(norm))
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};

    type A = Autodiff<Flex>;

    /// The first moment after one step on `x·w` with input x = (3, 4) (gradient (3, 4), norm
    /// 5), and the norm the step reports.
    fn first_moment(clip: Option<f64>) -> (Vec<f32>, f64) {
        let dev = Default::default();
        let lin: Linear<A> = LinearConfig::new(2, 1).with_bias(false).init(&dev);
        let x = Tensor::<A, 2>::from_floats([[3.0, 4.0]], &dev);
        let grads = GradientsParams::from_grads(lin.forward(x).sum().backward(), &lin);
        let mut adam = Adam::<Flex>::default();
        let (_, norm) = adam.step(lin, grads, 1e-3, clip);
        let m = adam.state_tensors().remove(0);
        assert!(m.0.starts_with("m."), "{}", m.0);
        (m.1.data, norm.value())
    }

    #[test]
    fn gradients_are_clipped_to_the_global_norm_on_the_device() {
        let close = |a: &[f32], b: [f32; 2]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        // m = (1 − β1)·g·min(1, clip/‖g‖).
        let (m, norm) = first_moment(None);
        assert!(
            (norm - 5.0).abs() < 1e-6 && close(&m, [0.3, 0.4]),
            "{m:?} {norm}"
        );
        let (m, norm) = first_moment(Some(10.0));
        assert!((norm - 5.0).abs() < 1e-6 && close(&m, [0.3, 0.4]), "{m:?}");
        let (m, norm) = first_moment(Some(1.0));
        assert!(
            (norm - 5.0).abs() < 1e-6 && close(&m, [0.06, 0.08]),
            "{m:?}"
        );
        let (m, _) = first_moment(Some(2.5));
        assert!(close(&m, [0.15, 0.2]), "{m:?}");
    }
}
