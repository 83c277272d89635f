//! Small bridges between host vectors and burn tensors.

use burn::tensor::{backend::Backend, ElementConversion, Tensor, TensorData};

use crate::rng::Rng;

/// A `[rows, cols]` tensor from a row-major host vector.
pub fn from_rows<B: Backend>(
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    debug_assert_eq!(data.len(), rows * cols);
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// A `[n, 1]` column tensor from f64 values.
pub fn column<B: Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 2> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    let n = v.len();
    from_rows(v, n, 1, device)
}

/// Refuses `rows × cols` f32 values (`what`, e.g. "1000 samples of 4096 values") that this
/// machine cannot allocate: an error instead of an abort when a count is mistyped. Probes with
/// a reservation that is released at once (no memory is touched).
pub fn check_allocatable(rows: usize, cols: usize, what: &str) -> crate::Result<()> {
    let too_big = |n: Option<usize>| {
        crate::Error::Shape(format!(
            "{what}: {} f32 values ({:.3e} bytes) cannot be allocated on this machine",
            n.map_or("more than usize::MAX".to_string(), |n| n.to_string()),
            rows as f64 * cols as f64 * 4.0
        ))
    };
    let n = rows.checked_mul(cols).ok_or_else(|| too_big(None))?;
    Vec::<f32>::new()
        .try_reserve_exact(n)
        .map_err(|_| too_big(Some(n)))
}

/// Copies a tensor's values to a host vector (row-major).
pub fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    let data = t.into_data().convert::<f32>();
    data.to_vec::<f32>()
        .expect("tensor data was converted to f32 just above")
}

/// A scalar tensor's value.
pub fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// A `[rows, cols]` tensor of standard normal draws from `rng`.
pub fn randn<B: Backend>(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    from_rows(rng.normal_vec(rows * cols), rows, cols, device)
}

/// A `[rows, cols]` tensor of Rademacher (±1) draws from `rng`.
pub fn rademacher<B: Backend>(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    from_rows(rng.rademacher_vec(rows * cols), rows, cols, device)
}

/// Per-row squared Euclidean norm, `[n, d] → [n, 1]`.
pub fn row_sq_norm<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    x.powi_scalar(2).sum_dim(1)
}
