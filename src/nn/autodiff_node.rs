//! Recording a hand-written autodiff node, the step every custom operation of this module
//! shares (`fused_norm`, `norm_node`, `fused_silu`, `fused_cat`, `fused_softmax`): the output,
//! computed without autodiff, becomes a node of the graph with `parents`, and the backward
//! pass's state is built only when some parent needs a gradient.

use burn::backend::Autodiff;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::ops::{Backward, OpsKind};

/// An autodiff float tensor's primitive (its inner value and graph node).
pub(super) type Primitive<B> = FloatTensor<Autodiff<B>>;

/// `out` as the result of `node` applied to `parents`, with `state()` kept for its backward pass
/// when the graph tracks it.
pub(super) fn record<B: Backend, T: Backward<B, N>, const N: usize, const D: usize>(
    node: T,
    parents: [&Primitive<B>; N],
    out: FloatTensor<B>,
    state: impl FnOnce() -> T::State,
) -> Tensor<Autodiff<B>, D> {
    let out = match node
        .prepare::<NoCheckpointing>(parents.map(|p| p.node.clone()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state(), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
