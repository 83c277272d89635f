//! Named access to a module's float parameters ("blocks.0.fc1.weight"), for checkpoints, the
//! optimiser state and EMA.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::error::{Error, Result};

/// A named parameter's shape and values, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn joined(&self) -> String {
        self.0.join(".")
    }
}

/// A float parameter with its dotted name, id, flattened value and shape.
struct Named<B: Backend> {
    name: String,
    id: burn::module::ParamId,
    flat: Tensor<B, 1>,
    shape: Vec<usize>,
}

struct Collector<B: Backend> {
    path: Path,
    out: Vec<Named<B>>,
}

impl<B: Backend> ModuleVisitor<B> for Collector<B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let n: usize = shape.iter().product();
        self.out.push(Named {
            name: self.path.joined(),
            id: param.id,
            flat: t.reshape([n]),
            shape,
        });
    }
}

/// Names and shapes of the float parameters, without initialising lazy ones.
struct Shapes {
    path: Path,
    out: Vec<(String, Vec<usize>)>,
}

impl<B: Backend> ModuleVisitor<B> for Shapes {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.out
            .push((self.path.joined(), param.lazy_shape().dims::<D>().to_vec()));
    }
}

fn collect<B: Backend, M: Module<B>>(module: &M) -> Vec<Named<B>> {
    let mut c = Collector {
        path: Path::default(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// The float parameters of `module` as flattened device tensors with their names and shapes,
/// in module order.
pub fn named_tensors<B: Backend, M: Module<B>>(
    module: &M,
) -> Vec<(String, Tensor<B, 1>, Vec<usize>)> {
    collect(module)
        .into_iter()
        .map(|p| (p.name, p.flat, p.shape))
        .collect()
}

/// The float parameters of `module` copied to the host.
pub fn named_params<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, HostTensor)> {
    named_tensors(module)
        .into_iter()
        .map(|(name, t, shape)| {
            (
                name,
                HostTensor {
                    shape,
                    data: crate::tensor::to_vec(t),
                },
            )
        })
        .collect()
}

/// A function of (name, flattened value, shape) returning a new flattened value or `None`.
pub type ParamFn<'a, B> = &'a mut dyn FnMut(&str, Tensor<B, 1>, &[usize]) -> Option<Tensor<B, 1>>;

/// Replaces each float parameter by `f(name, current)`; `f` returns the new flattened values
/// (or `None` to keep the parameter). Gradients requirement is kept.
pub fn map_named<B: Backend, M: Module<B>>(module: M, f: ParamFn<'_, B>) -> M {
    struct Mapper<'a, B: Backend> {
        path: Path,
        f: ParamFn<'a, B>,
    }
    impl<B: Backend> ModuleMapper<B> for Mapper<'_, B> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.enter(name);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.dims();
            let n: usize = shape.iter().product();
            let req = tensor.is_require_grad();
            let name = self.path.joined();
            let tensor = match (self.f)(&name, tensor.clone().reshape([n]), &shape) {
                Some(flat) => {
                    let t = flat.reshape(shape);
                    if req {
                        t.require_grad()
                    } else {
                        t
                    }
                }
                None => tensor,
            };
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    let mut m = Mapper {
        path: Path::default(),
        f,
    };
    module.map(&mut m)
}

/// Loads parameters by name from `values`; every parameter must be present with its shape.
/// `context` names the file in errors.
pub fn load_named<B: Backend, M: Module<B>>(
    module: M,
    values: &HashMap<String, HostTensor>,
    prefix: &str,
    context: &std::path::Path,
) -> Result<M> {
    // Names and shapes first, before any parameter is drawn: a corrupt configuration of
    // enormous sizes is reported instead of allocated.
    let mut shapes = Shapes {
        path: Path::default(),
        out: Vec::new(),
    };
    module.visit(&mut shapes);
    let problems: Vec<String> = shapes
        .out
        .iter()
        .filter_map(|(name, shape)| {
            let key = format!("{prefix}{name}");
            match values.get(&key) {
                None => Some(format!("tensor `{key}` is missing")),
                Some(h) if &h.shape != shape => Some(format!(
                    "tensor `{key}` has shape {:?}, the model needs {shape:?}",
                    h.shape
                )),
                Some(_) => None,
            }
        })
        .collect();
    if !problems.is_empty() {
        return Err(Error::checkpoint(context, problems.join("; ")));
    }
    // Every name and shape is known to match. Taking a lazy parameter draws its initial value
    // (then replaced), so under the backend generator's lock like every draw.
    Ok(crate::nn::exclusive(|| {
        map_named(module, &mut |name, cur, _| {
            values.get(&format!("{prefix}{name}")).map(|h| {
                Tensor::from_data(
                    TensorData::new(h.data.clone(), [h.data.len()]),
                    &cur.device(),
                )
            })
        })
    }))
}

/// The parameter ids of `module` by name (to look gradients up).
pub fn param_ids<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, burn::module::ParamId)> {
    collect(module)
        .into_iter()
        .map(|p| (p.name, p.id))
        .collect()
}
