//! Guidance in a limited interval of noise levels (Kynkäänniemi et al. 2024, "Applying guidance
//! in a limited interval improves sample and distribution quality in diffusion models"): the
//! guided score where σ lies in (σ_lo, σ_hi], the unguided one elsewhere.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{backend::Backend, Tensor};

use super::{per_row_times, time_column, ScoreFn};
use crate::error::{Error, Result};
use crate::sde::Sde;

/// The noise levels σ_lo < σ ≤ σ_hi (EDM σ = s(t)/m(t) of the SDE's marginal
/// x_t = m(t)·x₀ + s(t)·z) at which guidance is applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SigmaInterval {
    /// Lower end σ_lo (excluded): ≥ 0 as parsed, −∞ in [`SigmaInterval::ALL`].
    pub lo: f64,
    /// Upper end σ_hi (included), > σ_lo; may be infinite.
    pub hi: f64,
}

impl SigmaInterval {
    /// Every noise level, σ = 0 included: guidance without a limit.
    pub const ALL: SigmaInterval = SigmaInterval {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
    };

    /// Whether `sigma` lies in (σ_lo, σ_hi].
    pub fn contains(&self, sigma: f64) -> bool {
        sigma > self.lo && sigma <= self.hi
    }
}

impl FromStr for SigmaInterval {
    type Err = Error;

    /// `"LO,HI"`, e.g. `"0.28,5.42"` or `"1,inf"`: 0 ≤ LO < HI.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::config(
                "guidance-interval",
                format!("`{s}`: {why} (expected LO,HI with 0 ≤ LO < HI, e.g. 0.28,5.42 or 1,inf)"),
            )
        };
        let (lo, hi) = s.split_once(',').ok_or_else(|| bad("not two numbers"))?;
        let num = |v: &str| v.trim().parse::<f64>().map_err(|_| bad("not a number"));
        let (lo, hi) = (num(lo)?, num(hi)?);
        if !(lo.is_finite() && lo >= 0.0) || hi.is_nan() || hi <= lo {
            return Err(bad("out of order or out of range"));
        }
        Ok(SigmaInterval { lo, hi })
    }
}

impl fmt::Display for SigmaInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.lo, self.hi)
    }
}

/// `guided` at the rows whose noise level σ(t) = s(t)/m(t) lies in `interval`, `unguided` at the
/// others; only the score needed is evaluated when every row is on one side.
pub struct Interval<'a, G, U> {
    /// The guided score.
    pub guided: &'a G,
    /// The unguided score.
    pub unguided: &'a U,
    /// The SDE that maps times to noise levels.
    pub sde: &'a dyn Sde,
    /// Where guidance applies.
    pub interval: SigmaInterval,
}

impl<B: Backend, G: ScoreFn<B>, U: ScoreFn<B>> ScoreFn<B> for Interval<'_, G, U> {
    fn score(&self, x: Tensor<B, 2>, t: &[f64]) -> Tensor<B, 2> {
        let times = per_row_times(t, x.dims()[0]);
        let inside = |t: f64| {
            self.interval
                .contains(self.sde.std(t) / self.sde.mean_factor(t))
        };
        let count = times.iter().filter(|&&t| inside(t)).count();
        if count == times.len() {
            return self.guided.score(x, t);
        }
        if count == 0 {
            return self.unguided.score(x, t);
        }
        let mask = time_column::<B>(&times, |t| f64::from(u8::from(inside(t))), &x.device());
        let g = self.guided.score(x.clone(), t);
        let u = self.unguided.score(x, t);
        u.clone() + (g - u) * mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sde::VpSde;
    use burn::backend::Flex;

    /// A score that is `value` everywhere.
    struct Constant(f32);

    impl ScoreFn<Flex> for Constant {
        fn score(&self, x: Tensor<Flex, 2>, _t: &[f64]) -> Tensor<Flex, 2> {
            x.zeros_like().add_scalar(self.0)
        }
    }

    #[test]
    fn guides_only_the_rows_whose_noise_level_is_inside() {
        let sde = VpSde::new(0.1, 20.0).unwrap();
        let sigma = |t: f64| sde.std(t) / sde.mean_factor(t);
        let interval: SigmaInterval = "0.5,2".parse().unwrap();
        // Times with σ below, inside and above the interval.
        let times = [0.05, 0.3, 0.9];
        let inside: Vec<bool> = times.iter().map(|&t| interval.contains(sigma(t))).collect();
        assert_eq!(inside, [false, true, false], "σ = {:?}", times.map(sigma));
        let score = Interval {
            guided: &Constant(1.0),
            unguided: &Constant(-1.0),
            sde: &sde,
            interval,
        };
        let x = Tensor::<Flex, 2>::zeros([3, 2], &Default::default());
        let rows = crate::tensor::to_vec(score.score(x.clone(), &times));
        assert_eq!(rows, [-1.0, -1.0, 1.0, 1.0, -1.0, -1.0]);
        let shared = |t: f64| crate::tensor::to_vec(score.score(x.clone(), &[t]));
        assert_eq!(shared(0.3), [1.0; 6]);
        assert_eq!(shared(0.9), [-1.0; 6]);
    }

    #[test]
    fn parses_lo_hi() {
        let i: SigmaInterval = " 0.28, 5.42".parse().unwrap();
        assert_eq!((i.lo, i.hi), (0.28, 5.42));
        assert!(i.contains(5.42) && !i.contains(0.28) && !i.contains(6.0));
        let open: SigmaInterval = "1,inf".parse().unwrap();
        assert!(open.contains(1e9) && !open.contains(1.0));
        assert_eq!(open.to_string(), "1,inf");
        for bad in ["", "1", "2,1", "1,1", "-1,2", "a,2", "nan,1", "1,nan"] {
            let e = bad.parse::<SigmaInterval>().unwrap_err().to_string();
            assert!(e.contains("guidance-interval"), "{bad}: {e}");
        }
    }
}
