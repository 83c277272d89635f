//! Adaptive Runge–Kutta (Dormand & Prince 1980, RK5(4)7FM) and the probability-flow ODE sampler
//! (Song et al. 2021, Sec. 4.3): dx = [f(x,t) − ½g(t)²∇log p_t(x)] dt.

use burn::tensor::{backend::Backend, Tensor};

use super::{steps::denoise as tweedie_denoise, Observer, Sampled};
use crate::error::{Error, Result};
use crate::score::ScoreFn;
use crate::sde::Sde;
use crate::tensor::scalar;

/// Tolerances and limits of [`rk45`].
#[derive(Clone, Copy, Debug)]
pub struct Rk45Options {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Give up after this many function evaluations.
    pub max_nfe: usize,
}

impl Default for Rk45Options {
    fn default() -> Self {
        Rk45Options {
            rtol: 1e-5,
            atol: 1e-5,
            max_nfe: 100_000,
        }
    }
}

/// Work done by one [`rk45`] solve.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rk45Stats {
    /// Function evaluations.
    pub nfe: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
}

// Dormand–Prince tableau.
const C: [f64; 7] = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
const A: [[f64; 6]; 7] = [
    [0.0; 6],
    [0.2, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
// 5th-order weights are A[6]; error weights = b5 − b4.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Integrates dy/dt = f(t, y) from `t0` to `t1` (either direction) with the adaptive
/// Dormand–Prince RK45 method (FSAL, scipy's error norm and step control). `y` is any `[n, k]`
/// state; the error is the RMS over all entries of e/(atol + rtol·max(|y|, |y_new|)).
pub fn rk45<B: Backend>(
    f: &mut dyn FnMut(f64, Tensor<B, 2>) -> Tensor<B, 2>,
    mut y: Tensor<B, 2>,
    t0: f64,
    t1: f64,
    opts: Rk45Options,
    observe: Observer<B>,
) -> Result<(Tensor<B, 2>, Rk45Stats)> {
    let dir = (t1 - t0).signum();
    let span = (t1 - t0).abs();
    let mut stats = Rk45Stats::default();
    let mut t = t0;
    let mut k1 = f(t, y.clone());
    stats.nfe += 1;
    let mut h = 0.01 * span;
    let numel = (y.dims()[0] * y.dims()[1]).max(1) as f64;
    while (t1 - t) * dir > 1e-12 * span.max(1.0) {
        if stats.nfe > opts.max_nfe {
            return Err(Error::Unsupported(format!(
                "RK45 exceeded {} function evaluations at t = {t:.6} (rtol {}, atol {}); the score \
                 model may be too stiff — raise the tolerances",
                opts.max_nfe, opts.rtol, opts.atol
            )));
        }
        h = h.min((t1 - t).abs());
        let hs = h * dir;
        let mut ks = vec![k1.clone()];
        for i in 1..7 {
            let mut yi = y.clone();
            for (j, kj) in ks.iter().enumerate() {
                if A[i][j] != 0.0 {
                    yi = yi + kj.clone().mul_scalar(hs * A[i][j]);
                }
            }
            if i == 6 {
                // y5 (the 7th stage is evaluated at the new point: FSAL).
                let k7 = f(t + hs, yi.clone());
                stats.nfe += 1;
                ks.push(k7);
                let mut err = ks[0].clone().mul_scalar(E[0]);
                for (j, kj) in ks.iter().enumerate().skip(1) {
                    if E[j] != 0.0 {
                        err = err + kj.clone().mul_scalar(E[j]);
                    }
                }
                let scale = y
                    .clone()
                    .abs()
                    .max_pair(yi.clone().abs())
                    .mul_scalar(opts.rtol)
                    .add_scalar(opts.atol);
                let ratio = (err.mul_scalar(hs) / scale).powi_scalar(2).sum();
                let en = (scalar(ratio) / numel).sqrt();
                if en.is_nan() {
                    return Err(Error::Unsupported(format!(
                        "the ODE produced NaN at t = {t:.6}; the score model is not finite there"
                    )));
                }
                if en <= 1.0 {
                    t += hs;
                    y = yi;
                    k1 = ks.pop().expect("seven stages");
                    stats.accepted += 1;
                    observe(t, &y);
                    let fac = if en == 0.0 {
                        5.0
                    } else {
                        (0.9 * en.powf(-0.2)).clamp(0.2, 5.0)
                    };
                    h *= fac;
                } else {
                    stats.rejected += 1;
                    h *= (0.9 * en.powf(-0.2)).clamp(0.2, 1.0);
                }
                break;
            }
            let ki = f(t + C[i] * hs, yi);
            stats.nfe += 1;
            ks.push(ki);
        }
    }
    Ok((y, stats))
}

/// Probability-flow ODE sampler: integrates dx/dt = f(x,t) − ½g(t)²∇log p_t(x) from T to ε
/// with RK45, then optionally one Tweedie denoising step.
pub fn probability_flow<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    x: Tensor<B, 2>,
    opts: Rk45Options,
    denoise: bool,
    observe: Observer<B>,
) -> Result<Sampled<B>> {
    let mut f = |t: f64, x: Tensor<B, 2>| {
        let g2 = sde.diffusion(t).powi(2);
        let s = score.score(x.clone(), &[t]);
        x.mul_scalar(sde.drift_coef(t)) - s.mul_scalar(0.5 * g2)
    };
    let (mut x, stats) = rk45(&mut f, x, sde.t_end(), sde.t_min(), opts, observe)?;
    let mut nfe = stats.nfe;
    if denoise {
        x = tweedie_denoise(score, sde, x, sde.t_min());
        nfe += 1;
    }
    Ok(Sampled { x, nfe })
}
