//! Classifier-free guidance weights (Ho & Salimans 2022): one weight w for every class, or one
//! per class, so that classes that guidance over-draws (e.g. mixed detector events, whose
//! showers it inflates) can be sampled with less of it than the others.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The guidance weight of each class: ε̃ = (1 + w_c)·ε(x, c) − w_c·ε(x, ∅) for class c.
#[derive(Clone, Debug, PartialEq)]
pub enum Guidance {
    /// The same weight for every class.
    Uniform(f64),
    /// Weight `w[c]` for class c; as many weights as the model has classes.
    PerClass(Vec<f64>),
}

impl Default for Guidance {
    /// No guidance (w = 0).
    fn default() -> Self {
        Guidance::Uniform(0.0)
    }
}

impl Guidance {
    /// The weight of class `class` (0 for a class past the end of a per-class list, which
    /// [`Guidance::check`] refuses beforehand).
    pub fn weight(&self, class: usize) -> f64 {
        match self {
            Guidance::Uniform(w) => *w,
            Guidance::PerClass(ws) => ws.get(class).copied().unwrap_or(0.0),
        }
    }

    /// True when no class is guided, so the unconditional evaluation can be skipped.
    pub fn is_zero(&self) -> bool {
        match self {
            Guidance::Uniform(w) => *w == 0.0,
            Guidance::PerClass(ws) => ws.iter().all(|w| *w == 0.0),
        }
    }

    /// Refuses a per-class list whose length is not the model's `num_classes`.
    pub fn check(&self, num_classes: usize) -> Result<()> {
        self.check_as(num_classes, "guidance")
    }

    /// [`Guidance::check`] for the weights of the setting `field`, named in the error.
    pub fn check_as(&self, num_classes: usize, field: &str) -> Result<()> {
        match self {
            Guidance::PerClass(ws) if ws.len() != num_classes => Err(Error::config(
                field,
                format!(
                    "{} per-class weights given, but the model has {num_classes} classes \
                     (give one weight, or one per class)",
                    ws.len()
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl FromStr for Guidance {
    type Err = Error;

    /// `"1.5"` (every class) or `"2,2,0,2"` (one weight per class, in class order); each a
    /// finite number.
    fn from_str(s: &str) -> Result<Self> {
        let weights = s
            .split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<f64>()
                    .ok()
                    .filter(|w| w.is_finite())
                    .ok_or_else(|| {
                        Error::config(
                            "guidance",
                            format!("`{part}` is not a finite number (in `{s}`)"),
                        )
                    })
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(match weights.as_slice() {
            [w] => Guidance::Uniform(*w),
            _ => Guidance::PerClass(weights),
        })
    }
}

impl fmt::Display for Guidance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guidance::Uniform(w) => write!(f, "{w}"),
            Guidance::PerClass(ws) => {
                let parts: Vec<String> = ws.iter().map(|w| w.to_string()).collect();
                write!(f, "{}", parts.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_weight_or_one_per_class() {
        assert_eq!("1.5".parse::<Guidance>().unwrap(), Guidance::Uniform(1.5));
        let g: Guidance = "2, 2,0,1.5".parse().unwrap();
        assert_eq!(g, Guidance::PerClass(vec![2.0, 2.0, 0.0, 1.5]));
        assert_eq!(g.weight(2), 0.0);
        assert_eq!(g.weight(3), 1.5);
        assert_eq!(g.to_string(), "2,2,0,1.5");
        assert!(!g.is_zero());
        assert!(Guidance::PerClass(vec![0.0, 0.0]).is_zero());
        assert!(Guidance::default().is_zero());
        assert!(g.check(4).is_ok());
        let e = g.check(3).unwrap_err().to_string();
        assert!(e.contains("guidance") && e.contains("4 per-class") && e.contains("3 classes"));
        for bad in ["", "x", "1,,2", "nan", "1,inf"] {
            let e = bad.parse::<Guidance>().unwrap_err().to_string();
            assert!(
                e.contains("guidance") && e.contains("not a finite number"),
                "{bad}: {e}"
            );
        }
    }
}
