//! Built-in 2-D toy distributions.

use super::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::score::GaussianMixture;

/// Names accepted by `toy:NAME`.
pub const TOY_NAMES: [&str; 6] = [
    "two-gaussians",
    "8gaussians",
    "moons",
    "swissroll",
    "checkerboard",
    "rings",
];

/// A toy distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toy {
    /// The mixture of two Gaussians of the reference slides and Song & Ermon 2019 (Fig. 3):
    /// ⅕N((−5,−5), I) + ⅘N((5,5), I).
    TwoGaussians,
    /// Eight Gaussians (std 0.1) on the circle of radius 2.
    EightGaussians,
    /// Two interleaved half circles with Gaussian noise (std 0.1).
    Moons,
    /// The 2-D swiss roll (scikit-learn style, scaled by 1/5), noise std 0.1.
    SwissRoll,
    /// A 4×4 checkerboard on [−2, 2]² (uniform on the dark squares).
    Checkerboard,
    /// Three concentric rings of radii 0.5, 1.25, 2 with noise std 0.05.
    Rings,
}

impl Toy {
    /// Looks a toy up by name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "two-gaussians" | "2gaussians" | "mixture" => Toy::TwoGaussians,
            "8gaussians" | "eight-gaussians" => Toy::EightGaussians,
            "moons" | "two-moons" => Toy::Moons,
            "swissroll" | "swiss-roll" => Toy::SwissRoll,
            "checkerboard" => Toy::Checkerboard,
            "rings" => Toy::Rings,
            other => {
                return Err(Error::config(
                    "toy",
                    format!(
                        "unknown toy `{other}`; expected one of {}",
                        TOY_NAMES.join(", ")
                    ),
                ))
            }
        })
    }

    /// The closed-form density, for the toys that are Gaussian mixtures.
    pub fn mixture(self) -> Option<GaussianMixture> {
        match self {
            Toy::TwoGaussians => GaussianMixture::isotropic(
                vec![0.2, 0.8],
                vec![vec![-5.0, -5.0], vec![5.0, 5.0]],
                vec![1.0, 1.0],
            )
            .ok(),
            Toy::EightGaussians => {
                let means = (0..8)
                    .map(|k| {
                        let a = std::f64::consts::TAU * k as f64 / 8.0;
                        vec![2.0 * a.cos(), 2.0 * a.sin()]
                    })
                    .collect();
                GaussianMixture::isotropic(vec![1.0; 8], means, vec![0.1; 8]).ok()
            }
            _ => None,
        }
    }

    /// `n` samples.
    pub fn sample(self, n: usize, rng: &mut Rng) -> Dataset {
        if let Some(g) = self.mixture() {
            return Dataset::new(g.sample(n, rng), 2);
        }
        let mut data = Vec::with_capacity(2 * n);
        for i in 0..n {
            let (x, y) = match self {
                Toy::Moons => {
                    let a = std::f64::consts::PI * rng.uniform();
                    if i % 2 == 0 {
                        (a.cos(), a.sin())
                    } else {
                        (1.0 - a.cos(), 0.5 - a.sin())
                    }
                }
                Toy::SwissRoll => {
                    let t = 1.5 * std::f64::consts::PI * (1.0 + 2.0 * rng.uniform());
                    (t * t.cos() / 5.0, t * t.sin() / 5.0)
                }
                Toy::Checkerboard => loop {
                    let (x, y) = (4.0 * rng.uniform() - 2.0, 4.0 * rng.uniform() - 2.0);
                    if ((x + 2.0).floor() as i64 + (y + 2.0).floor() as i64) % 2 == 0 {
                        break (x, y);
                    }
                },
                Toy::Rings => {
                    let r = [0.5, 1.25, 2.0][rng.below(3)];
                    let a = std::f64::consts::TAU * rng.uniform();
                    (r * a.cos(), r * a.sin())
                }
                Toy::TwoGaussians | Toy::EightGaussians => unreachable!("mixtures handled above"),
            };
            let noise = match self {
                Toy::Rings => 0.05,
                Toy::Checkerboard => 0.0,
                _ => 0.1,
            };
            data.push((x + noise * rng.normal()) as f32);
            data.push((y + noise * rng.normal()) as f32);
        }
        Dataset::new(data, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toys_have_their_documented_shape() {
        let mut rng = Rng::new(1);
        for name in TOY_NAMES {
            let ds = Toy::from_name(name).unwrap().sample(2000, &mut rng);
            assert_eq!((ds.len(), ds.dim), (2000, 2));
            assert!(ds.data.iter().all(|v| v.is_finite()));
        }
        // Two Gaussians: 20% of the mass near (−5,−5).
        let ds = Toy::TwoGaussians.sample(10_000, &mut rng);
        let left = ds.data.chunks(2).filter(|p| p[0] < 0.0).count() as f64 / 10_000.0;
        assert!((left - 0.2).abs() < 0.02, "{left}");
        // Rings: radii cluster at 0.5, 1.25, 2.
        let ds = Toy::Rings.sample(3000, &mut rng);
        assert!(ds.data.chunks(2).all(|p| {
            let r = ((p[0] * p[0] + p[1] * p[1]) as f64).sqrt();
            [0.5, 1.25, 2.0].iter().any(|c| (r - c).abs() < 0.3)
        }));
        // Checkerboard: never on a light square.
        let ds = Toy::Checkerboard.sample(3000, &mut rng);
        assert!(ds
            .data
            .chunks(2)
            .all(|p| ((p[0] + 2.0).floor() as i64 + (p[1] + 2.0).floor() as i64) % 2 == 0));
        assert!(Toy::from_name("nope").is_err());
    }
}
