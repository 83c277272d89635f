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

/// Fills the entries of `y` where `mask` is 0, keeping those where it is 1 (`[n, d]` each).
pub fn pc_inpaint<B: Backend, S: ScoreFn<B>>(
    score: &S,
    sde: &dyn Sde,
    y: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    steps: usize,
    corrector_steps: usize,
    snr: f64,
    rng: &mut Rng,
    observe: Observer<B>,
) -> Result<Sampled<B>> {
    let [n, d] = y.dims();
    if mask.dims() != [n, d] {
        return Err(Error::Shape(format!(
            "mask is {:?} but the data are {:?}",
            mask.dims(),
            [n, d]
        )));
    }
    let device = y.device();
    let keep = mask.clone();
    let free = mask.neg().add_scalar(1.0);
    let replace = |x: Tensor<B, 2>, t: f64, rng: &mut Rng| {
        let known = y.clone().mul_scalar(sde.mean_factor(t))
            + randn::<B>(rng, n, d, &device).mul_scalar(sde.std(t));
        x * free.clone() + known * keep.clone()
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
        x: x_mean * free + y * keep,
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
}
