//! Learning-rate schedule: linear warm-up, then cosine annealing (Loshchilov & Hutter 2017).

/// Learning rate at 1-based `step` of `total`: linear warm-up over `warmup` steps to `base`, then
/// cosine decay to `base·min_factor` at `total`.
pub fn lr_at(step: u64, total: u64, base: f64, warmup: u64, min_factor: f64) -> f64 {
    let floor = base * min_factor;
    if warmup > 0 && step <= warmup {
        return base * step as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step.saturating_sub(warmup)) as f64 / span).clamp(0.0, 1.0);
    floor + (base - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        assert!((lr_at(5, 100, 1.0, 10, 0.0) - 0.5).abs() < 1e-12);
        assert!((lr_at(10, 100, 1.0, 10, 0.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(55, 100, 1.0, 10, 0.0) - 0.5).abs() < 1e-12);
        assert!((lr_at(100, 100, 1.0, 10, 0.1) - 0.1).abs() < 1e-12);
        assert!(
            (1..100).all(|s| lr_at(s + 11, 100, 1.0, 10, 0.0) <= lr_at(s + 10, 100, 1.0, 10, 0.0))
        );
    }
}
