//! GroupNorm (Wu & He 2018), optionally followed by SiLU, as one autodiff node on any backend,
//! written with the backend's own tensor operations: the GPU counterpart of `fused_norm` (which
//! is flex's hand-written kernel). The composed version records about a dozen operations, each
//! with its own backward, and its backward runs three full-size reductions and as many small
//! ones; this node's backward runs two full-size reductions (per image and channel) and one
//! element-wise pass that a fusing backend compiles into one kernel.
//!
//! With x̂ = (x − μ_g)·r_g, r_g = 1/√(σ²_g + ε) over the M = (C/G)·H·W values of a group, z =
//! γ_c·x̂ + β_c and y = z·σ(z) (SiLU) or y = z:
//!
//! - dz = dy·σ(z)·(1 + z·(1 − σ(z))) (SiLU) or dy;
//! - dβ_c = Σ_{n,p} dz, dγ_c = Σ_{n,p} dz·x̂;
//! - with g = γ_c·dz: dx = r_g·(g − mean_g(g) − x̂·mean_g(g·x̂)), where the group means come
//!   from the per-(image, channel) sums S = Σ_p dz and T = Σ_p dz·x̂ as Σ_{c∈g} γ_c·S / M and
//!   Σ_{c∈g} γ_c·T / M.
// Reached only through the CUDA backend ([`dispatch`]); the CPU build keeps it for its tests.
#![cfg_attr(not(feature = "cuda"), allow(dead_code))]

use burn::backend::Autodiff;
use burn::tensor::activation::sigmoid;
use burn::tensor::{backend::Backend, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};

use super::autodiff_node::record;

/// Groups and ε of one call.
#[derive(Clone, Copy, Debug)]
struct Geom {
    groups: usize,
    eps: f64,
    silu: bool,
}

/// The normalised input x̂ `[n, c, h·w]` and the statistics (μ, r) `[n, G, 1]`.
fn normalise<B: Backend>(x: Tensor<B, 4>, g: Geom) -> (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>) {
    let [n, c, h, w] = x.dims();
    let xg = x.reshape([n, g.groups, (c / g.groups) * h * w]);
    let mean = xg.clone().mean_dim(2);
    let centred = xg - mean.clone();
    let var = centred.clone().square().mean_dim(2);
    let r = var.add_scalar(g.eps).sqrt().recip();
    let xhat = (centred * r.clone()).reshape([n, c, h * w]);
    (xhat, mean, r)
}

/// z = γ·x̂ + β per channel, `[n, c, h·w]`.
fn affine<B: Backend>(
    xhat: Tensor<B, 3>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
) -> Tensor<B, 3> {
    let c = gamma.dims()[0];
    xhat * gamma.clone().reshape([1, c, 1]) + beta.clone().reshape([1, c, 1])
}

/// y = act(γ·x̂ + β) and the statistics (μ, r), on any backend without autodiff.
fn forward<B: Backend>(
    x: Tensor<B, 4>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    g: Geom,
) -> (Tensor<B, 4>, Tensor<B, 3>, Tensor<B, 3>) {
    let shape = x.dims();
    let (xhat, mean, r) = normalise(x, g);
    let z = affine(xhat, gamma, beta);
    let y = if g.silu { z.clone() * sigmoid(z) } else { z };
    (y.reshape(shape), mean, r)
}

/// `act(GroupNorm(x))` without autodiff, on any backend: `x: [n, c, h, w]`, `gamma`, `beta`:
/// `[c]`, `groups` divides `c`.
pub(crate) fn group_norm<B: Backend>(
    x: Tensor<B, 4>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Tensor<B, 4> {
    forward(x, gamma, beta, Geom { groups, eps, silu }).0
}

/// Everything the backward pass needs.
#[derive(Clone, Debug)]
struct Saved<B: Backend> {
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    /// μ per (image, group), `[n, G, 1]`.
    mean: Tensor<B, 3>,
    /// r per (image, group), `[n, G, 1]`.
    r: Tensor<B, 3>,
    g: Geom,
}

/// The autodiff node (parents x, γ, β).
#[derive(Debug)]
struct GroupNormNode;

impl<B: Backend> Backward<B, 3> for GroupNormNode {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Saved<B>, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy =
            Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let Saved {
            x,
            gamma,
            beta,
            mean,
            r,
            g,
        } = ops.state;
        let [n, c, h, w] = x.dims();
        let (groups, per, hw) = (g.groups, c / g.groups, h * w);
        // x̂ again from the saved statistics (element-wise; cheaper to recompute than to keep).
        let xhat = ((x.reshape([n, groups, per * hw]) - mean) * r.clone()).reshape([n, c, hw]);
        let dy = dy.reshape([n, c, hw]);
        let dz = if g.silu {
            let z = affine(xhat.clone(), &gamma, &beta);
            let s = sigmoid(z.clone());
            dy * s.clone() * (z * s.neg().add_scalar(1.0)).add_scalar(1.0)
        } else {
            dy
        };
        // The two full-size reductions: S = Σ_p dz and T = Σ_p dz·x̂ per (image, channel).
        let s = dz.clone().sum_dim(2);
        let t = (dz.clone() * xhat.clone()).sum_dim(2);
        let [px, pg, pb] = ops.parents;
        if let Some(node) = pb {
            let dbeta = s.clone().sum_dim(0).reshape([c]);
            grads.register::<B>(node.id, dbeta.into_primitive().tensor());
        }
        if let Some(node) = pg {
            let dgamma = t.clone().sum_dim(0).reshape([c]);
            grads.register::<B>(node.id, dgamma.into_primitive().tensor());
        }
        if let Some(node) = px {
            let m = (per * hw) as f64;
            let gm = gamma.clone().reshape([1, c, 1]);
            let group_mean = |v: Tensor<B, 3>| {
                (v * gm.clone())
                    .reshape([n, groups, per])
                    .sum_dim(2)
                    .div_scalar(m)
            };
            let (mean_g, mean_gx) = (group_mean(s), group_mean(t));
            let gdz = (dz * gm).reshape([n, groups, per * hw]);
            let xhat = xhat.reshape([n, groups, per * hw]);
            let dx = (gdz - mean_g - xhat * mean_gx) * r;
            grads.register::<B>(node.id, dx.reshape([n, c, h, w]).into_primitive().tensor());
        }
    }
}

/// `act(GroupNorm(x))` under autodiff as one [`GroupNormNode`], on any inner backend.
pub(crate) fn group_norm_autodiff<B: Backend>(
    x: Tensor<Autodiff<B>, 4>,
    gamma: Tensor<Autodiff<B>, 1>,
    beta: Tensor<Autodiff<B>, 1>,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Tensor<Autodiff<B>, 4> {
    let g = Geom { groups, eps, silu };
    let x = x.into_primitive().tensor();
    let gamma = gamma.into_primitive().tensor();
    let beta = beta.into_primitive().tensor();
    let xi = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(x.primitive.clone()));
    let gi = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(gamma.primitive.clone()));
    let bi = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(beta.primitive.clone()));
    let (y, mean, r) = forward(xi.clone(), &gi, &bi, g);
    let saved = || Saved {
        x: xi,
        gamma: gi,
        beta: bi,
        mean,
        r,
        g,
    };
    let y = y.into_primitive().tensor();
    record(GroupNormNode, [&x, &gamma, &beta], y, saved)
}

/// The environment variable that sends CUDA's GroupNorm back to the composed version
/// (`SCOREGEN_CUDA_NORM=composed`; anything else, or unset, takes this module's node): for
/// measuring one against the other.
pub const CUDA_NORM_VAR: &str = "SCOREGEN_CUDA_NORM";

/// Whether [`CUDA_NORM_VAR`] asks for the composed GroupNorm (read once per process).
#[cfg(feature = "cuda")]
fn composed_requested() -> bool {
    static COMPOSED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *COMPOSED.get_or_init(|| {
        std::env::var(CUDA_NORM_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("composed"))
    })
}

/// `act(GroupNorm(x))` as this module's operation where `B` is the CUDA backend, with or
/// without autodiff (unless [`CUDA_NORM_VAR`] says `composed`); `None` elsewhere (flex has
/// `fused_norm`, other backends compose it).
pub(crate) fn dispatch<B: Backend>(
    x: &Tensor<B, 4>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Option<Tensor<B, 4>> {
    #[cfg(feature = "cuda")]
    {
        use super::flex_native::cast;
        use burn::backend::Cuda;
        type A = Autodiff<Cuda>;
        if composed_requested() {
            return None;
        }
        if let (Some(x), Some(gm), Some(bt)) = (
            cast::<_, Tensor<A, 4>>(x.clone()),
            cast::<_, Tensor<A, 1>>(gamma.clone()),
            cast::<_, Tensor<A, 1>>(beta.clone()),
        ) {
            return cast(group_norm_autodiff(x, gm, bt, groups, eps, silu));
        }
        if let (Some(x), Some(gm), Some(bt)) = (
            cast::<_, Tensor<Cuda, 4>>(x.clone()),
            cast::<_, Tensor<Cuda, 1>>(gamma.clone()),
            cast::<_, Tensor<Cuda, 1>>(beta.clone()),
        ) {
            return cast(group_norm(x, &gm, &bt, groups, eps, silu));
        }
    }
    let _ = (x, gamma, beta, groups, eps, silu);
    None
}
