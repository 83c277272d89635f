//! Inverse problems by conditional sampling of an unconditional model (Song et al. 2021, App. I.2;
//! score_sde_pytorch's `get_pc_inpainter`): predictor–corrector sampling in which, after every
//! step, the known entries are replaced by a sample of the forward process from the data,
//! m(t)·y + s(t)·z. Inpainting, imputation of missing coordinates and colourisation (in a
//! decorrelated colour basis) are all this with different masks.

use burn::tensor::{backend::Backend, Tensor};

use super::{grid::sde_grid, steps::langevin_corrector_step, Observer, Predictor, Sampled};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::score::ScoreFn;
use crate::sde::{prior_sample, Sde};
use crate::tensor::randn;

/// The coordinates the mask applies to: the data's own, or an orthonormal colour basis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The mask selects data entries (pixels): inpainting, imputation.
    Identity,
    /// Rows are 3×`pixels` RGB images and the mask selects coordinates of the orthonormal
    /// colour basis (1,1,1)/√3 (luminance), (1,−1,0)/√2, (1,1,−2)/√6 at every pixel:
    /// colourisation keeps the first (Song et al. 2021, App. I.2, "decoupled" colour space).
    Colour {
        /// H·W.
        pixels: usize,
    },
}

const COLOUR: [[f32; 3]; 3] = [
    [0.577_350_26, 0.577_350_26, 0.577_350_26],
    [
        std::f32::consts::FRAC_1_SQRT_2,
        -std::f32::consts::FRAC_1_SQRT_2,
        0.0,
    ],
    [0.408_248_3, 0.408_248_3, -0.816_496_6],
];

impl Basis {
    fn mix<B: Backend>(
        x: Tensor<B, 2>,
        pixels: usize,
        m: impl Fn(usize, usize) -> f32,
    ) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let c: Vec<Tensor<B, 2>> = (0..3)
            .map(|i| x.clone().slice([0..n, i * pixels..(i + 1) * pixels]))
            .collect();
        let out: Vec<Tensor<B, 2>> = (0..3)
            .map(|j| {
                c[0].clone().mul_scalar(m(j, 0))
                    + c[1].clone().mul_scalar(m(j, 1))
                    + c[2].clone().mul_scalar(m(j, 2))
            })
            .collect();
        Tensor::cat(out, 1)
    }
    /// Data coordinates → basis coordinates.
    pub fn forward<B: Backend>(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match *self {
            Basis::Identity => x,
            Basis::Colour { pixels } => Self::mix(x, pixels, |j, i| COLOUR[j][i]),
        }
    }
    /// Basis coordinates → data coordinates (the transpose: the basis is orthonormal).
    pub fn inverse<B: Backend>(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match *self {
            Basis::Identity => x,
            Basis::Colour { pixels } => Self::mix(x, pixels, |j, i| COLOUR[i][j]),
        }
    }
}

/// Fills the entries of `y` where `mask` is 0, keeping those where it is 1 (`[n, d]` each); the
/// mask applies to the coordinates of `basis` (pixels, or a decorrelated colour space).
pub fn pc_inpaint<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    basis: Basis,
    y: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    steps: usize,
    corrector_steps: usize,
    snr: f64,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Result<Sampled<B>> {
    let [n, d] = y.dims();
    if steps == 0 {
        return Err(Error::config("steps", "must be at least 1"));
    }
    super::registry::check_steps_and_snr(steps, corrector_steps, snr)?;
    if mask.dims() != [n, d] {
        return Err(Error::Shape(format!(
            "mask is {:?} but the data are {:?}",
            mask.dims(),
            [n, d]
        )));
    }
    if let Basis::Colour { pixels } = basis {
        if d != 3 * pixels {
            return Err(Error::Shape(format!(
                "colourisation needs RGB rows of 3×{pixels} values, got {d}"
            )));
        }
    }
    let device = y.device();
    let keep = mask.clone();
    let free = mask.neg().add_scalar(1.0);
    let yb = basis.forward(y);
    // The noise is drawn in basis coordinates: an orthonormal change keeps it N(0, I).
    let replace = |x: Tensor<B, 2>, t: f64, rng: &mut Rng| {
        let known = yb.clone().mul_scalar(sde.mean_factor(t))
            + randn::<B>(rng, n, d, &device).mul_scalar(sde.std(t));
        basis.inverse(basis.forward(x) * free.clone() + known * keep.clone())
    };
    let (times, dt) = sde_grid(sde, steps);
    let mut x = prior_sample(sde, rng, n, d, &device);
    let mut x_mean = x.clone();
    let mut nfe = 0;
    for &t in &times {
        let alpha = sde.corrector_alpha(t, dt);
        for _ in 0..corrector_steps {
            x = langevin_corrector_step(score, x, t, snr, alpha, rng).0;
            x = replace(x, t, rng);
            nfe += 1;
        }
        let (xn, xm) = Predictor::ReverseDiffusion.step(score, sde, x, t, dt, rng)?;
        nfe += 1;
        x = replace(xn, (t - dt).max(sde.t_min()), rng);
        x_mean = xm;
        observe(t, &x);
    }
    // The known entries are returned exactly.
    Ok(Sampled {
        x: basis.inverse(basis.forward(x_mean) * free + yb * keep),
        nfe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{GaussianMixture, GmmScore};
    use crate::sde::SdeSpec;
    use crate::tensor::{from_rows, to_vec};
    use burn::backend::Flex;

    #[test]
    fn inpainting_picks_the_mode_the_known_coordinate_implies_and_keeps_it() {
        // ½N((−2,−2), 0.3I) + ½N((2,2), 0.3I): knowing x₁ = +2 (or −2) selects the component, so
        // the missing x₂ has conditional mean ±2 and variance 0.3 (posterior weight of the other
        // component e^{−13} ≈ 0).
        let gmm = GaussianMixture::isotropic(
            vec![0.5, 0.5],
            vec![vec![-2.0, -2.0], vec![2.0, 2.0]],
            vec![0.3f64.sqrt(); 2],
        )
        .unwrap();
        let dev = Default::default();
        for spec in [
            SdeSpec::default_for("vp").unwrap(),
            SdeSpec::Ve {
                sigma_min: 0.01,
                sigma_max: 20.0,
            },
        ] {
            let sde = spec.build().unwrap();
            let score = GmmScore::<Flex>::new(gmm.clone(), &spec, &dev).unwrap();
            let n = 1000;
            let known: Vec<f32> = (0..n)
                .flat_map(|i| [if i % 2 == 0 { 2.0 } else { -2.0 }, 0.0])
                .collect();
            let mask: Vec<f32> = (0..n).flat_map(|_| [1.0, 0.0]).collect();
            let mut rng = Rng::new(3);
            let out = pc_inpaint(
                &score,
                sde.as_ref(),
                Basis::Identity,
                from_rows::<Flex>(known, n, 2, &dev),
                from_rows::<Flex>(mask, n, 2, &dev),
                300,
                1,
                0.16,
                &mut rng,
                &mut |_, _| {},
            )
            .unwrap();
            let x = to_vec(out.x);
            for sign in [1.0f64, -1.0] {
                let x2: Vec<f64> = x
                    .chunks(2)
                    .filter(|p| (p[0] as f64 - 2.0 * sign).abs() < 1e-6)
                    .map(|p| p[1] as f64)
                    .collect();
                assert_eq!(
                    x2.len(),
                    n / 2,
                    "{spec:?}: the known coordinate must be kept exactly"
                );
                let mean = x2.iter().sum::<f64>() / x2.len() as f64;
                let var = x2.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x2.len() as f64;
                // SE of the mean is sqrt(0.3/500) = 0.025; of the variance 0.3·sqrt(2/500) = 0.019.
                assert!(
                    (mean - 2.0 * sign).abs() < 0.12,
                    "{spec:?}: conditional mean {mean}"
                );
                assert!(
                    (var - 0.3).abs() < 0.09,
                    "{spec:?}: conditional variance {var}"
                );
            }
            assert_eq!(out.nfe, 600);
        }
    }

    #[test]
    fn colourisation_keeps_the_luminance_and_recovers_the_colour_it_implies() {
        // One RGB pixel from ½N((2.5,2,1.5), 0.3I) + ½N(−(2.5,2,1.5), 0.3I): the grey levels
        // are ±2, 12σ apart along (1,1,1)/√3, so the grey level picks the component; the colour
        // then has mean ±(2.5,2,1.5) and per-channel variance 0.3·(1 − 1/3) = 0.2 (the free
        // plane). (Replacement is accurate here because luminance and colour are independent
        // within a component and the luminance separates the components far more than the
        // colour does; with strongly separated colours it can commit to the wrong component
        // early, the known limitation of the replacement method.)
        let gmm = GaussianMixture::isotropic(
            vec![0.5, 0.5],
            vec![vec![2.5, 2.0, 1.5], vec![-2.5, -2.0, -1.5]],
            vec![0.3f64.sqrt(); 2],
        )
        .unwrap();
        let dev = Default::default();
        let spec = SdeSpec::default_for("vp").unwrap();
        let sde = spec.build().unwrap();
        let score = GmmScore::<Flex>::new(gmm, &spec, &dev).unwrap();
        let n = 1000;
        let grey: Vec<f32> = (0..n)
            .flat_map(|i| [if i % 2 == 0 { 2.0 } else { -2.0 }; 3])
            .collect();
        let mask: Vec<f32> = (0..n).flat_map(|_| [1.0, 0.0, 0.0]).collect();
        let basis = Basis::Colour { pixels: 1 };
        // The basis is orthonormal: forward then inverse is the identity.
        let probe = from_rows::<Flex>(vec![0.3, -1.2, 2.0], 1, 3, &dev);
        let back = to_vec(basis.inverse(basis.forward(probe)));
        assert!(back
            .iter()
            .zip([0.3, -1.2, 2.0])
            .all(|(a, b)| (a - b).abs() < 1e-6));
        let out = pc_inpaint(
            &score,
            sde.as_ref(),
            basis,
            from_rows::<Flex>(grey, n, 3, &dev),
            from_rows::<Flex>(mask, n, 3, &dev),
            300,
            1,
            0.16,
            &mut Rng::new(4),
            &mut |_, _| {},
        )
        .unwrap();
        let x = to_vec(out.x);
        for (parity, sign) in [(0, 1.0f64), (1, -1.0)] {
            let rows: Vec<&[f32]> = x.chunks(3).skip(parity).step_by(2).collect();
            for (c, want) in [2.5, 2.0, 1.5].iter().enumerate() {
                let v: Vec<f64> = rows.iter().map(|r| r[c] as f64).collect();
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / v.len() as f64;
                assert!((mean - sign * want).abs() < 0.1, "channel {c}: mean {mean}");
                assert!((var - 0.2).abs() < 0.06, "channel {c}: variance {var}");
            }
            for r in &rows {
                let lum = (r[0] + r[1] + r[2]) / 3.0;
                assert!(
                    (lum as f64 - 2.0 * sign).abs() < 1e-5,
                    "grey level {lum} not kept"
                );
            }
        }
        assert!(pc_inpaint(
            &score,
            sde.as_ref(),
            Basis::Colour { pixels: 2 },
            from_rows::<Flex>(vec![0.0; 3], 1, 3, &dev),
            from_rows::<Flex>(vec![1.0; 3], 1, 3, &dev),
            3,
            0,
            0.16,
            &mut Rng::new(4),
            &mut |_, _| {},
        )
        .is_err());
    }
}
