//! The networks a checkpoint can hold, behind one module type.

use burn::module::Module;
use burn::tensor::{backend::Backend, IndexingUpdateOp, Int, Tensor, TensorData};

use super::{Guidance, MlpConfig, MlpScoreNet, UNet, UNetConfig};
use crate::error::{Error, Result};
use crate::score::EpsModel;

/// An MLP (low-dimensional data) or a U-Net (images; rows are flattened C×H×W images).
// One value per model: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ScoreNet<B: Backend> {
    /// MLP score network.
    Mlp(MlpScoreNet<B>),
    /// U-Net score network.
    UNet(UNet<B>),
}

impl<B: Backend> ScoreNet<B> {
    /// The U-Net when `unet` is given (its C·H·W must equal `dim`), else the MLP.
    pub fn init(
        mlp: &MlpConfig,
        unet: Option<&UNetConfig>,
        dim: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self> {
        let net = Self::skeleton(mlp, unet, dim, seed, device)?;
        Ok(super::seeded::<B, _>(device, seed, || {
            super::materialised(net)
        }))
    }

    /// [`ScoreNet::init`] with the weights not yet drawn, to load saved weights into.
    pub fn skeleton(
        mlp: &MlpConfig,
        unet: Option<&UNetConfig>,
        dim: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self> {
        match unet {
            Some(u) => {
                u.validate()?;
                if u.channels * u.height * u.width != dim {
                    return Err(Error::Shape(format!(
                        "the U-Net takes {}×{}×{} images ({} values) but the data have {dim} values per item",
                        u.channels,
                        u.height,
                        u.width,
                        u.channels * u.height * u.width
                    )));
                }
                Ok(ScoreNet::UNet(u.skeleton(seed, device)))
            }
            None => {
                mlp.validate()?;
                Ok(ScoreNet::Mlp(mlp.skeleton(dim, seed, device)))
            }
        }
    }
}

impl<B: Backend> EpsModel<B> for ScoreNet<B> {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            ScoreNet::Mlp(m) => m.eps(x, t),
            ScoreNet::UNet(u) => u.eps(x, t),
        }
    }
}

impl<B: Backend> ScoreNet<B> {
    /// Number of classes of a class-conditional network (0 = unconditional).
    pub fn num_classes(&self) -> usize {
        match self {
            ScoreNet::UNet(u) => u.num_classes(),
            ScoreNet::Mlp(_) => 0,
        }
    }

    fn eps_with(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 2>,
        labels: Option<Tensor<B, 1, Int>>,
    ) -> Tensor<B, 2> {
        match self {
            ScoreNet::Mlp(m) => m.eps(x, t),
            ScoreNet::UNet(u) => {
                let n = x.dims()[0];
                let [c, h, w] = u.image_shape();
                u.forward(x.reshape([n, c, h, w]), t, labels)
                    .reshape([n, c * h * w])
            }
        }
    }
}

/// A class-conditional network with one label per row (the label `num_classes` is the null
/// class of classifier-free guidance); used for training with label dropout.
pub struct WithLabels<'a, B: Backend> {
    /// The network.
    pub net: &'a ScoreNet<B>,
    /// `[n]` labels.
    pub labels: Tensor<B, 1, Int>,
}

impl<B: Backend> EpsModel<B> for WithLabels<'_, B> {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        self.net.eps_with(x, t, Some(self.labels.clone()))
    }
}

/// Guidance of a network's prediction against a second one, with one weight per class:
/// ε̃ = ε(x, t, c) + w_c·(ε(x, t, c) − ε_g(x, t, c)), where ε_g is
/// - the same network's unconditional prediction ε(x, t, ∅) (`against: None`): classifier-free
///   guidance (Ho & Salimans 2022, Eq. 6), ε̃ = (1 + w)·ε(x, t, c) − w·ε(x, t, ∅);
/// - a weaker model of the same data (`against: Some`), with the same class: autoguidance
///   (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself", Eq. 1).
///
/// Both at once: with `against: Some` and classifier-free weights `free`,
/// ε̃ = ε(x, t, c) + w_c·(ε(x, t, c) − ε_g(x, t, c)) + v_c·(ε(x, t, c) − ε(x, t, ∅)).
///
/// w = 0 is plain (conditional) sampling. The networks' raw outputs are combined; with a shared
/// output parametrisation (ε, x₀ or EDM, all affine in the output) this is the same combination
/// of their denoisers and scores.
#[derive(Clone)]
pub struct Guided<'a, B: Backend> {
    /// The network that is sampled.
    pub net: &'a ScoreNet<B>,
    /// The requested class of each row (row i uses `classes[i % classes.len()]`); empty for
    /// unconditional rows (no label; autoguidance only, weight `guidance.weight(0)`).
    pub classes: Vec<usize>,
    /// The guidance weight w of each class.
    pub guidance: Guidance,
    /// The guiding model of autoguidance; none for classifier-free guidance.
    pub against: Option<&'a ScoreNet<B>>,
    /// Classifier-free guidance weights v_c added to autoguidance (zero: none; rows without a
    /// class take none).
    pub free: Guidance,
}

impl<B: Backend> Guided<'_, B> {
    /// The guiding prediction on rows with labels `labels` (none: unconditional rows): of
    /// `against`, or the network's unconditional prediction ε(x, t, ∅) for none.
    fn guiding(
        &self,
        against: Option<&ScoreNet<B>>,
        x: Tensor<B, 2>,
        t: Tensor<B, 2>,
        labels: Option<Tensor<B, 1, Int>>,
    ) -> Tensor<B, 2> {
        match against {
            Some(g) => g.eps_with(x, t, labels),
            None => {
                let m = x.dims()[0];
                let null = self.net.num_classes() as i64;
                let null = Tensor::<B, 1, Int>::full([m], null, &x.device());
                self.net.eps_with(x, t, Some(null))
            }
        }
    }

    /// `out` + w_i·(ε_c − ε_g) on every row i whose class has a weight w_i ≠ 0 under
    /// `guidance`, ε_g from [`Guided::guiding`] with `against`, evaluated on those rows only.
    #[allow(clippy::too_many_arguments)]
    fn add_term(
        &self,
        out: Tensor<B, 2>,
        e_c: &Tensor<B, 2>,
        (x, t): (&Tensor<B, 2>, &Tensor<B, 2>),
        cond: &Option<Tensor<B, 1, Int>>,
        classes: &[usize],
        guidance: &Guidance,
        against: Option<&ScoreNet<B>>,
    ) -> Tensor<B, 2> {
        if guidance.is_zero() {
            return out;
        }
        if let Guidance::Uniform(w) = guidance {
            let e_g = self.guiding(against, x.clone(), t.clone(), cond.clone());
            return out + (e_c.clone() - e_g).mul_scalar(*w);
        }
        let (rows, w): (Vec<i64>, Vec<f32>) = classes
            .iter()
            .enumerate()
            .map(|(i, &c)| (i as i64, guidance.weight(c) as f32))
            .filter(|(_, w)| *w != 0.0)
            .unzip();
        let (n, m) = (classes.len(), rows.len());
        if m == 0 {
            return out;
        }
        let dev = x.device();
        let w = Tensor::<B, 2>::from_data(TensorData::new(w, [m, 1]), &dev);
        if m == n {
            let e_g = self.guiding(against, x.clone(), t.clone(), cond.clone());
            return out + (e_c.clone() - e_g) * w;
        }
        let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [m]), &dev);
        let pick = |v: &Tensor<B, 2>| v.clone().select(0, rows.clone());
        let labels = cond.clone().map(|c| c.select(0, rows.clone()));
        let e_g = self.guiding(against, pick(x), pick(t), labels);
        let step = (pick(e_c) - e_g) * w;
        out.select_assign(0, rows, step, IndexingUpdateOp::Add)
    }
}

impl<B: Backend> EpsModel<B> for Guided<'_, B> {
    fn eps(&self, x: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let dev = x.device();
        let k = self.classes.len().max(1);
        let classes: Vec<usize> = (0..n)
            .map(|i| self.classes.get(i % k).copied().unwrap_or(0))
            .collect();
        let cond = (!self.classes.is_empty()).then(|| {
            let labels: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
            Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &dev)
        });
        let e_c = self.net.eps_with(x.clone(), t.clone(), cond.clone());
        let xt = (&x, &t);
        let out = self.add_term(
            e_c.clone(),
            &e_c,
            xt,
            &cond,
            &classes,
            &self.guidance,
            self.against,
        );
        if cond.is_none() {
            return out;
        }
        self.add_term(out, &e_c, xt, &cond, &classes, &self.free, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::UNetConfig;
    use crate::rng::Rng;
    use burn::backend::Flex;

    #[test]
    fn guidance_combines_conditional_and_unconditional_predictions() {
        let dev = Default::default();
        let cfg = UNetConfig {
            height: 6,
            width: 6,
            base: 8,
            mult: vec![1, 2],
            attn_levels: vec![],
            groups: 4,
            num_classes: 3,
            dropout: 0.0,
            ..Default::default()
        };
        let net = ScoreNet::<Flex>::init(&MlpConfig::default(), Some(&cfg), 36, 0, &dev).unwrap();
        assert_eq!(net.num_classes(), 3);
        let x = crate::tensor::from_rows::<Flex>(Rng::new(1).normal_vec(2 * 36), 2, 36, &dev);
        let t = crate::tensor::column::<Flex>(&[0.5, 0.5], &dev);
        let eps = |m: &dyn Fn(Tensor<Flex, 2>, Tensor<Flex, 2>) -> Tensor<Flex, 2>| {
            crate::tensor::to_vec(m(x.clone(), t.clone()))
        };
        let c1 = eps(&|x, t| {
            Guided {
                net: &net,
                classes: vec![1],
                guidance: Guidance::Uniform(0.0),
                against: None,
                free: Guidance::default(),
            }
            .eps(x, t)
        });
        let c2 = eps(&|x, t| {
            Guided {
                net: &net,
                classes: vec![2],
                guidance: Guidance::Uniform(0.0),
                against: None,
                free: Guidance::default(),
            }
            .eps(x, t)
        });
        let un = eps(&|x, t| net.eps(x, t));
        let g = eps(&|x, t| {
            Guided {
                net: &net,
                classes: vec![1],
                guidance: Guidance::Uniform(2.0),
                against: None,
                free: Guidance::default(),
            }
            .eps(x, t)
        });
        assert!(
            c1.iter().zip(&c2).any(|(a, b)| (a - b).abs() > 1e-4),
            "the label must matter"
        );
        for i in 0..c1.len() {
            assert!((g[i] - (3.0 * c1[i] - 2.0 * un[i])).abs() < 1e-4);
        }
        // Per-class weights: row 0 asks for class 1 (w = 2), row 1 for class 2 (w = 0.5).
        let rows = |guidance: Guidance| {
            eps(&|x, t| {
                Guided {
                    net: &net,
                    classes: vec![1, 2],
                    guidance: guidance.clone(),
                    against: None,
                    free: Guidance::default(),
                }
                .eps(x, t)
            })
        };
        let c12 = rows(Guidance::Uniform(0.0));
        for weights in [
            vec![0.0, 2.0, 0.5],
            vec![0.0, 0.0, 0.5],
            vec![0.0, 2.0, 0.0],
        ] {
            let g12 = rows(Guidance::PerClass(weights.clone()));
            for i in 0..c12.len() {
                let w = weights[1 + i / 36] as f32;
                let want = (1.0 + w) * c12[i] - w * un[i];
                assert!(
                    (g12[i] - want).abs() < 1e-4,
                    "{weights:?}, {i}: {} against {want}",
                    g12[i]
                );
            }
        }
        let labels = Tensor::<Flex, 1, Int>::from_ints([1, 1], &dev);
        let wl = crate::tensor::to_vec(WithLabels { net: &net, labels }.eps(x.clone(), t.clone()));
        assert!(wl.iter().zip(&c1).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    /// A class-conditional U-Net (3 classes, 6×6), a smaller one to guide it, and three rows
    /// with their times.
    fn good_and_bad() -> (
        ScoreNet<Flex>,
        ScoreNet<Flex>,
        Tensor<Flex, 2>,
        Tensor<Flex, 2>,
    ) {
        let dev = Default::default();
        let cfg = |base| UNetConfig {
            height: 6,
            width: 6,
            base,
            mult: vec![1, 2],
            attn_levels: vec![],
            groups: 4,
            num_classes: 3,
            dropout: 0.0,
            ..Default::default()
        };
        let mlp = MlpConfig::default();
        let good = ScoreNet::<Flex>::init(&mlp, Some(&cfg(8)), 36, 0, &dev).unwrap();
        let bad = ScoreNet::<Flex>::init(&mlp, Some(&cfg(4)), 36, 5, &dev).unwrap();
        let x = crate::tensor::from_rows::<Flex>(Rng::new(2).normal_vec(3 * 36), 3, 36, &dev);
        let t = crate::tensor::column::<Flex>(&[0.3, 0.5, 0.7], &dev);
        (good, bad, x, t)
    }

    /// The guided prediction of `net` at `(x, t)` as a vector.
    fn guided_eps(
        net: &ScoreNet<Flex>,
        (x, t): (&Tensor<Flex, 2>, &Tensor<Flex, 2>),
        classes: Vec<usize>,
        guidance: Guidance,
        against: Option<&ScoreNet<Flex>>,
        free: Guidance,
    ) -> Vec<f32> {
        let guided = Guided {
            net,
            classes,
            guidance,
            against,
            free,
        };
        crate::tensor::to_vec(guided.eps(x.clone(), t.clone()))
    }

    #[test]
    fn autoguidance_steps_away_from_the_guiding_model_with_the_same_class() {
        let dev = Default::default();
        let (good, bad, x, t) = good_and_bad();
        let classes = vec![1, 2, 0];
        let direct = |net: &ScoreNet<Flex>, labels: Option<[i64; 3]>| {
            let labels = labels.map(|l| Tensor::<Flex, 1, Int>::from_ints(l, &dev));
            crate::tensor::to_vec(net.eps_with(x.clone(), t.clone(), labels))
        };
        let (g, b) = (
            direct(&good, Some([1, 2, 0])),
            direct(&bad, Some([1, 2, 0])),
        );
        let null = direct(&good, Some([3, 3, 3]));
        assert!(b.iter().zip(&null).any(|(a, b)| (a - b).abs() > 1e-3));
        let guided = |classes: Vec<usize>, guidance: Guidance, against| {
            let free = Guidance::default();
            guided_eps(&good, (&x, &t), classes, guidance, against, free)
        };
        for weights in [
            vec![2.0, 2.0, 2.0],
            vec![0.0, 1.5, 0.5],
            vec![3.0, 0.0, 0.0],
        ] {
            let out = guided(
                classes.clone(),
                Guidance::PerClass(weights.clone()),
                Some(&bad),
            );
            let uniform = guided(classes.clone(), Guidance::Uniform(weights[0]), Some(&bad));
            for i in 0..out.len() {
                let w = weights[classes[i / 36]] as f32;
                let want = g[i] + w * (g[i] - b[i]);
                assert!((out[i] - want).abs() < 1e-4, "{weights:?}, {i}");
                let w0 = weights[0] as f32;
                assert!((uniform[i] - (g[i] + w0 * (g[i] - b[i]))).abs() < 1e-4);
            }
        }
        // The guide sees the requested class: guiding with the bad network's class-0
        // prediction instead gives another answer.
        let b0 = direct(&bad, Some([0, 0, 0]));
        let out = guided(classes.clone(), Guidance::Uniform(1.0), Some(&bad));
        let wrong: Vec<f32> = (0..g.len()).map(|i| 2.0 * g[i] - b0[i]).collect();
        assert!(out.iter().zip(&wrong).any(|(a, b)| (a - b).abs() > 1e-4));
        // Unconditional rows (no classes): no labels for either network.
        let (gu, bu) = (direct(&good, None), direct(&bad, None));
        let out = guided(vec![], Guidance::Uniform(2.0), Some(&bad));
        for i in 0..out.len() {
            assert!((out[i] - (3.0 * gu[i] - 2.0 * bu[i])).abs() < 1e-4);
        }
        assert_eq!(guided(vec![], Guidance::Uniform(0.0), Some(&bad)), gu);
    }

    #[test]
    fn autoguidance_and_classifier_free_guidance_add_up() {
        let dev = Default::default();
        let (good, bad, x, t) = good_and_bad();
        let classes = vec![1, 2, 0];
        let direct = |net: &ScoreNet<Flex>, labels: [i64; 3]| {
            let labels = Tensor::<Flex, 1, Int>::from_ints(labels, &dev);
            crate::tensor::to_vec(net.eps_with(x.clone(), t.clone(), Some(labels)))
        };
        let (g, b, null) = (
            direct(&good, [1, 2, 0]),
            direct(&bad, [1, 2, 0]),
            direct(&good, [3, 3, 3]),
        );
        let guided = |classes: Vec<usize>, guidance: Guidance, against, free: Guidance| {
            guided_eps(&good, (&x, &t), classes, guidance, against, free)
        };
        for (auto, free) in [
            (vec![1.0, 1.0, 1.0], vec![0.5, 0.5, 0.5]),
            (vec![0.0, 1.5, 0.5], vec![2.0, 0.0, 0.5]),
            (vec![0.0, 0.0, 0.0], vec![0.0, 0.0, 2.0]),
            (vec![0.7, 0.0, 0.0], vec![0.0, 0.0, 0.0]),
        ] {
            let per = |w: &Vec<f64>| Guidance::PerClass(w.clone());
            let out = guided(classes.clone(), per(&auto), Some(&bad), per(&free));
            for i in 0..out.len() {
                let c = classes[i / 36];
                let (w, v) = (auto[c] as f32, free[c] as f32);
                let want = g[i] + w * (g[i] - b[i]) + v * (g[i] - null[i]);
                assert!(
                    (out[i] - want).abs() < 1e-4,
                    "{auto:?} {free:?}, {i}: {} against {want}",
                    out[i]
                );
            }
        }
        // Uniform weights, and both terms against the null class: their weights add.
        let both = guided(
            classes.clone(),
            Guidance::Uniform(1.0),
            Some(&bad),
            Guidance::Uniform(0.5),
        );
        let cfg2 = guided(
            classes.clone(),
            Guidance::Uniform(2.0),
            None,
            Guidance::Uniform(1.0),
        );
        for i in 0..g.len() {
            let want = g[i] + (g[i] - b[i]) + 0.5 * (g[i] - null[i]);
            assert!((both[i] - want).abs() < 1e-4, "{i}");
            assert!(
                (cfg2[i] - (g[i] + 3.0 * (g[i] - null[i]))).abs() < 1e-4,
                "{i}"
            );
        }
        // Rows without a class have no classifier-free term.
        let auto_only = guided(
            vec![],
            Guidance::Uniform(1.0),
            Some(&bad),
            Guidance::default(),
        );
        let with_free = guided(
            vec![],
            Guidance::Uniform(1.0),
            Some(&bad),
            Guidance::Uniform(3.0),
        );
        assert_eq!(auto_only, with_free);
    }
}
