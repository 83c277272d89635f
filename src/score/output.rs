//! What a network's raw output F means, and its conversion to the noise prediction ε̂ that the
//! losses and samplers use (x_t = m(t)·x₀ + s(t)·ε):
//!
//! - `eps`: ε̂ = F(x_t, t) (Ho et al. 2020).
//! - `x0`: F predicts x₀; ε̂ = (x_t − m F)/s.
//! - `edm`: the preconditioning of Karras et al. 2022 (Table 1) in the scaled variable
//!   x̃ = x_t/m with noise level σ = s/m: D = c_skip x̃ + c_out F(c_in x̃, t),
//!   c_in = 1/√(σ² + σ_d²), c_skip = σ_d²/(σ² + σ_d²), c_out = σσ_d/√(σ² + σ_d²); then
//!   ε̂ = (x̃ − D)/σ = x_t·σ/(m(σ² + σ_d²)) − F·σ_d/√(σ² + σ_d²).
//!   The network sees unit-variance inputs at every noise level when the data have std σ_d.
//!
//! With ε̂ the σ²-weighted DSM loss is ‖ε̂ − ε‖² = ‖D − x₀‖²/σ² for every parametrisation; the
//! parametrisation changes what the network has to represent, not the objective's minimiser.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use super::{time_column, EpsModel};
use crate::sde::Sde;

/// The meaning of a score network's output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Noise prediction ε.
    #[default]
    Eps,
    /// Clean-data prediction x₀.
    X0,
    /// EDM preconditioning (Karras et al. 2022).
    Edm,
}

/// ε̂(x, t) of a network whose output means `output`; `times` are the rows' times (host
/// copies of `t`).
pub fn eps_of<B: Backend, M: EpsModel<B>>(
    model: &M,
    sde: &dyn Sde,
    output: Output,
    sigma_data: f64,
    x: Tensor<B, 2>,
    t: Tensor<B, 2>,
    times: &[f64],
) -> Tensor<B, 2> {
    let dev = x.device();
    let col = |f: &dyn Fn(f64) -> f64| time_column::<B>(times, f, &dev);
    match output {
        Output::Eps => model.eps(x, t),
        Output::X0 => {
            let m = col(&|v| sde.mean_factor(v));
            let inv_s = col(&|v| 1.0 / sde.std(v));
            (x.clone() - model.eps(x, t) * m) * inv_s
        }
        Output::Edm => {
            let sd2 = sigma_data * sigma_data;
            let sigma = |v: f64| sde.std(v) / sde.mean_factor(v);
            let c_in = col(&|v| 1.0 / (sde.mean_factor(v) * (sigma(v).powi(2) + sd2).sqrt()));
            let a = col(&|v| sigma(v) / (sde.mean_factor(v) * (sigma(v).powi(2) + sd2)));
            let b = col(&|v| sigma_data / (sigma(v).powi(2) + sd2).sqrt());
            let f = model.eps(x.clone() * c_in, t);
            x * a - f * b
        }
    }
}

/// An [`EpsModel`] whose raw network output means `output` (for the losses).
pub struct Parametrised<'a, M> {
    /// The network.
    pub net: &'a M,
    /// The SDE of x_t = m x₀ + s ε.
    pub sde: &'a dyn Sde,
    /// What the network outputs.
    pub output: Output,
    /// σ_d of the EDM preconditioning.
    pub sigma_data: f64,
}

impl<B: Backend, M: EpsModel<B>> EpsModel<B> for Parametrised<'_, M> {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        if self.output == Output::Eps {
            return self.net.eps(x, t);
        }
        // The losses know their times only as a column: one read-back per training step.
        let times: Vec<f64> = crate::tensor::to_vec(t.clone())
            .into_iter()
            .map(f64::from)
            .collect();
        eps_of(
            self.net,
            self.sde,
            self.output,
            self.sigma_data,
            x,
            t,
            &times,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::sde::SdeSpec;
    use crate::tensor::{from_rows, to_vec};
    use burn::backend::Flex;
    use std::cell::RefCell;

    /// A stand-in network that returns the output an ideal network of each parametrisation
    /// would give for known (x₀, ε), and records the input it was given.
    struct Oracle<'a> {
        x0: Tensor<Flex, 2>,
        z: Tensor<Flex, 2>,
        sde: &'a dyn Sde,
        t: f64,
        output: Output,
        sigma_data: f64,
        seen: RefCell<Vec<f32>>,
    }

    impl EpsModel<Flex> for Oracle<'_> {
        fn eps(&self, x: Tensor<Flex, 2>, _t: Tensor<Flex, 2>) -> Tensor<Flex, 2> {
            *self.seen.borrow_mut() = to_vec(x.clone());
            let (m, s) = (self.sde.mean_factor(self.t), self.sde.std(self.t));
            match self.output {
                Output::Eps => self.z.clone(),
                Output::X0 => self.x0.clone(),
                Output::Edm => {
                    // F = (x₀ − c_skip x̃)/c_out.
                    let (sigma, sd2) = (s / m, self.sigma_data.powi(2));
                    let c_skip = sd2 / (sigma * sigma + sd2);
                    let c_out = sigma * self.sigma_data / (sigma * sigma + sd2).sqrt();
                    let xt = self.x0.clone().mul_scalar(m) + self.z.clone().mul_scalar(s);
                    (self.x0.clone() - xt.mul_scalar(c_skip / m)).div_scalar(c_out)
                }
            }
        }
    }

    #[test]
    fn ideal_outputs_of_every_parametrisation_give_the_true_noise() {
        let dev = Default::default();
        let (n, d, sigma_data) = (2000, 3, 0.5);
        let mut rng = Rng::new(9);
        for spec in ["vp", "subvp", "ve"] {
            let sde = SdeSpec::default_for(spec).unwrap().build().unwrap();
            for t in [0.01, 0.3, 0.9] {
                let x0 = from_rows::<Flex>(
                    rng.normal_vec(n * d)
                        .iter()
                        .map(|v| v * sigma_data as f32)
                        .collect(),
                    n,
                    d,
                    &dev,
                );
                let z = from_rows::<Flex>(rng.normal_vec(n * d), n, d, &dev);
                let (m, s) = (sde.mean_factor(t), sde.std(t));
                let xt = x0.clone().mul_scalar(m) + z.clone().mul_scalar(s);
                for output in [Output::Eps, Output::X0, Output::Edm] {
                    let oracle = Oracle {
                        x0: x0.clone(),
                        z: z.clone(),
                        sde: sde.as_ref(),
                        t,
                        output,
                        sigma_data,
                        seen: RefCell::new(Vec::new()),
                    };
                    let p = Parametrised {
                        net: &oracle,
                        sde: sde.as_ref(),
                        output,
                        sigma_data,
                    };
                    let tc = Tensor::<Flex, 2>::full([n, 1], t, &dev);
                    let err = to_vec((p.eps(xt.clone(), tc) - z.clone()).abs().max());
                    assert!(
                        err[0] < 2e-3,
                        "{spec} t={t} {output:?}: max error {}",
                        err[0]
                    );
                    if output == Output::Edm {
                        // c_in makes the network's input unit-variance at every noise level.
                        let seen = oracle.seen.borrow();
                        let var = seen.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
                            / seen.len() as f64;
                        assert!(
                            (var - 1.0).abs() < 0.06,
                            "{spec} t={t}: input variance {var}"
                        );
                    }
                }
            }
        }
    }
}
