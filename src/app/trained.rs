//! A trained score model with its SDE and data standardisation.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::error::{Error, Result};
use crate::likelihood::{probability_flow_nll_observed, Divergence, Nll};
use crate::nn::{Guidance, Guided, Precision, ScoreNet};
use crate::rng::Rng;
use crate::samplers::{sample, Observer, SamplerConfig};
use crate::score::{
    Corrected, EpsModel, Interval, NeuralScore, ScoreCorrection, ScoreFn, SigmaInterval,
};
use crate::sde::Sde;
use crate::tensor::{from_rows, to_vec};
use crate::train::{Checkpoint, CheckpointMeta};

/// A network restored from a checkpoint (EMA weights by default), ready to sample.
pub struct Trained<B: Backend> {
    /// The network.
    pub net: ScoreNet<B>,
    /// The SDE it was trained with.
    pub sde: Box<dyn Sde>,
    /// Checkpoint metadata (config, standardisation, step).
    pub meta: CheckpointMeta,
    /// Device.
    pub device: B::Device,
    /// A term added to the network's score while sampling (discriminator guidance), if any.
    correction: Option<Box<dyn ScoreCorrection<B>>>,
    /// The guiding model of autoguidance, if any ([`Trained::with_guide`]).
    guide: Option<ScoreNet<B>>,
    /// Classifier-free guidance added to autoguidance ([`Trained::with_free_guidance`]).
    free_guidance: Guidance,
    /// The noise levels at which guidance applies (none: all).
    guidance_interval: Option<SigmaInterval>,
    /// The noise levels at which the classifier-free term of `free_guidance` applies (none:
    /// those of `guidance_interval`).
    free_guidance_interval: Option<SigmaInterval>,
}

impl<B: Backend> Trained<B> {
    /// Loads the checkpoint in `dir`.
    pub fn load(dir: &Path, ema: bool, device: &B::Device) -> Result<Self> {
        let ck = Checkpoint::load(dir)?;
        let net = ck.model::<B>(ema, device)?;
        let sde = ck.meta.sde.build()?;
        Ok(Trained {
            net,
            sde,
            meta: ck.meta,
            device: device.clone(),
            correction: None,
            guide: None,
            free_guidance: Guidance::default(),
            guidance_interval: None,
            free_guidance_interval: None,
        })
    }

    /// The network computing in `precision` (bf16: its convolutions and linear layers on bf16
    /// copies of the weights, see `nn::autocast`; the sampler's state and arithmetic stay f32).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.net = precision.apply(self.net);
        self
    }

    /// Samples with `correction` added to the network's score (in standardised coordinates),
    /// e.g. discriminator guidance ([`crate::refine::DiscriminatorGuidance`]).
    pub fn with_correction(mut self, correction: Box<dyn ScoreCorrection<B>>) -> Self {
        self.correction = Some(correction);
        self
    }

    /// Guides sampling with `guide`, a weaker model of the same data (fewer parameters, fewer
    /// steps), instead of this network's unconditional prediction: autoguidance (Karras et al.
    /// 2024, "Guiding a diffusion model with a bad version of itself", Eq. 1),
    /// D̃ = D + w·(D − D_guide), the guidance weight w as for classifier-free guidance. The two
    /// must share the data dimension, image shape, classes, SDE, output parametrisation and
    /// data standardisation; a difference is refused naming `source` (the guide's checkpoint)
    /// and the field.
    pub fn with_guide(mut self, guide: Trained<B>, source: &Path) -> Result<Self> {
        let (a, b) = (&self.meta, &guide.meta);
        let fields = [
            ("dim", a.dim.to_string(), b.dim.to_string()),
            (
                "image shape",
                format!("{:?}", self.image_shape()),
                format!("{:?}", guide.image_shape()),
            ),
            (
                "classes",
                self.num_classes().to_string(),
                guide.num_classes().to_string(),
            ),
            ("sde", format!("{:?}", a.sde), format!("{:?}", b.sde)),
            (
                "output",
                format!("{:?}", a.config.output),
                format!("{:?}", b.config.output),
            ),
            (
                "sigma_data",
                a.config.sigma_data.to_string(),
                b.config.sigma_data.to_string(),
            ),
        ];
        for (field, mine, theirs) in fields {
            if mine != theirs {
                return Err(Error::checkpoint(
                    source,
                    format!(
                        "its `{field}` ({theirs}) differs from the sampled model's ({mine}): a \
                         guiding model must be a weaker model of the same data and SDE"
                    ),
                ));
            }
        }
        if a.standardizer != b.standardizer {
            return Err(Error::checkpoint(
                source,
                "its data standardisation (mean, standard deviation or intensity transform) \
                 differs from the sampled model's: a guiding model must be trained on the same \
                 data",
            ));
        }
        self.guide = Some(guide.net);
        Ok(self)
    }

    /// Adds classifier-free guidance with weights `free` to the autoguidance of
    /// [`Trained::with_guide`] in class-conditional sampling ([`Trained::sample_classes`]):
    /// D̃ = D + w·(D − D_guide) + v·(D − D(∅)) (see [`Guided`]). Errors if no guide is set or
    /// the model is unconditional.
    pub fn with_free_guidance(mut self, free: Guidance) -> Result<Self> {
        if self.guide.is_none() {
            return Err(Error::config(
                "free_guidance",
                "classifier-free guidance on top of autoguidance needs a guiding model \
                 (--guide-with); alone it is --guidance",
            ));
        }
        if self.net.num_classes() == 0 {
            return Err(Error::Unsupported(
                "classifier-free guidance needs a model trained with --class-conditional".into(),
            ));
        }
        free.check_as(self.net.num_classes(), "free_guidance")?;
        self.free_guidance = free;
        Ok(self)
    }

    /// Applies guidance (classifier-free or autoguidance) only at noise levels σ in `interval`,
    /// sampling unguided elsewhere (Kynkäänniemi et al. 2024).
    pub fn with_guidance_interval(mut self, interval: SigmaInterval) -> Self {
        self.guidance_interval = Some(interval);
        self
    }

    /// Applies the classifier-free term of [`Trained::with_free_guidance`] only at noise levels
    /// σ in `interval`, independently of the autoguidance term's interval
    /// ([`Trained::with_guidance_interval`], which otherwise limits both): e.g. the class's
    /// structure guided at high σ, the detail autoguided at low σ.
    pub fn with_free_guidance_interval(mut self, interval: SigmaInterval) -> Self {
        self.free_guidance_interval = Some(interval);
        self
    }

    /// Image shape (C, H, W) of an image model; none for a model of points.
    pub fn image_shape(&self) -> Option<[usize; 3]> {
        self.meta
            .config
            .unet
            .as_ref()
            .map(|u| [u.channels, u.height, u.width])
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        self.meta.dim
    }

    /// The score function in standardised coordinates.
    pub fn score(&self) -> NeuralScore<'_, B, ScoreNet<B>> {
        self.score_of(&self.net)
    }

    /// The score function of `model` (this network, or a wrapper of it) under this
    /// checkpoint's SDE and output parametrisation.
    fn score_of<'a, M: EpsModel<B>>(&'a self, model: &'a M) -> NeuralScore<'a, B, M> {
        NeuralScore {
            model,
            sde: self.sde.as_ref(),
            device: self.device.clone(),
            output: self.meta.config.output,
            sigma_data: self.meta.config.sigma_data,
        }
    }

    /// `n` samples in data coordinates (row-major) and the NFE. `observe` sees standardised states.
    pub fn sample(
        &self,
        cfg: &SamplerConfig,
        n: usize,
        rng: &mut Rng,
        observe: Observer<B>,
    ) -> Result<(Vec<f32>, usize)> {
        self.sample_with(&self.score(), cfg, n, None, rng, observe)
    }

    /// Runs the sampler with `score` (standardised space), plus the correction if one is set,
    /// and maps the result to data space.
    fn sample_with<S: ScoreFn<B>>(
        &self,
        score: &S,
        cfg: &SamplerConfig,
        n: usize,
        classes: Option<&[usize]>,
        rng: &mut Rng,
        observe: Observer<B>,
    ) -> Result<(Vec<f32>, usize)> {
        let (sde, d, dev) = (self.sde.as_ref(), self.dim(), &self.device);
        let out = match &self.correction {
            Some(c) => {
                let corrected = Corrected {
                    base: score,
                    correction: c.as_ref(),
                    classes,
                };
                sample(cfg, &corrected, sde, n, d, rng, dev, observe)?
            }
            None => sample(cfg, score, sde, n, d, rng, dev, observe)?,
        };
        let x = to_vec(out.x);
        let bad = x.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::Sampling(format!(
                "{bad} of the {} values are not finite after {:?} with {} steps; its step size, \
                 snr or η is too large for this model, or it needs more steps",
                x.len(),
                cfg.kind,
                cfg.effective_steps()
            )));
        }
        Ok((self.meta.standardizer.inverse(&x), out.nfe))
    }

    /// Class-conditional samples of `class` with classifier-free guidance weight `guidance`
    /// (Ho & Salimans 2022); errors for unconditional models or unknown classes.
    pub fn sample_class(
        &self,
        cfg: &SamplerConfig,
        n: usize,
        class: usize,
        guidance: f64,
        rng: &mut Rng,
        observe: Observer<B>,
    ) -> Result<(Vec<f32>, usize)> {
        self.sample_classes(
            cfg,
            &vec![class; n],
            &Guidance::Uniform(guidance),
            rng,
            observe,
        )
    }

    /// One class-conditional sample per entry of `classes` (sample i of class `classes[i]`),
    /// with classifier-free guidance weights `guidance` (one for all classes, or one per class).
    pub fn sample_classes(
        &self,
        cfg: &SamplerConfig,
        classes: &[usize],
        guidance: &Guidance,
        rng: &mut Rng,
        observe: Observer<B>,
    ) -> Result<(Vec<f32>, usize)> {
        let known = self.net.num_classes();
        if known == 0 {
            return Err(Error::Unsupported(
                "this model is unconditional; --class needs a model trained with --class-conditional".into(),
            ));
        }
        if let Some(&class) = classes.iter().find(|&&c| c >= known) {
            return Err(Error::config(
                "class",
                format!("class {class} does not exist (the model has {known})"),
            ));
        }
        guidance.check(known)?;
        let guided = Guided {
            net: &self.net,
            classes: classes.to_vec(),
            guidance: guidance.clone(),
            against: self.guide.as_ref(),
            free: self.free_guidance.clone(),
        };
        self.sample_guided_with(&guided, cfg, classes.len(), Some(classes), rng, observe)
    }

    /// `n` samples without classes, autoguided with weight `w` by the model of
    /// [`Trained::with_guide`] (w = 0: [`Trained::sample`]); errors for w ≠ 0 without one, and
    /// with [`Trained::with_free_guidance`] set (it needs classes).
    pub fn sample_guided(
        &self,
        cfg: &SamplerConfig,
        n: usize,
        w: f64,
        rng: &mut Rng,
        observe: Observer<B>,
    ) -> Result<(Vec<f32>, usize)> {
        if !self.free_guidance.is_zero() {
            return Err(Error::config(
                "free_guidance",
                "classifier-free guidance needs classes (--class)",
            ));
        }
        if w == 0.0 {
            return self.sample(cfg, n, rng, observe);
        }
        if self.guide.is_none() {
            return Err(Error::config(
                "guidance",
                "guidance without classes needs a guiding model (autoguidance, --guide-with); \
                 classifier-free guidance needs --class",
            ));
        }
        let guided = Guided {
            net: &self.net,
            classes: Vec::new(),
            guidance: Guidance::Uniform(w),
            against: self.guide.as_ref(),
            free: Guidance::default(),
        };
        self.sample_guided_with(&guided, cfg, n, None, rng, observe)
    }

    /// Samples `n` rows with `guided`, each of its two terms (w·(D − D_guide) or classifier-free
    /// w·(D − D(∅)), and the added v·(D − D(∅))) applied only inside its guidance interval, and
    /// everywhere without one; `classes` as for [`Trained::sample_classes`], none for
    /// unconditional samples. Each row's score is the one variant of `guided` that its noise
    /// level asks for, the only one evaluated when all rows share it (as samplers step them).
    fn sample_guided_with(
        &self,
        guided: &Guided<'_, B>,
        cfg: &SamplerConfig,
        n: usize,
        classes: Option<&[usize]>,
        rng: &mut Rng,
        observe: Observer<B>,
    ) -> Result<(Vec<f32>, usize)> {
        if self.guidance_interval.is_none() && self.free_guidance_interval.is_none() {
            return self.sample_with(&self.score_of(guided), cfg, n, classes, rng, observe);
        }
        let with = |w: bool, v: bool| Guided {
            guidance: if w {
                guided.guidance.clone()
            } else {
                Guidance::default()
            },
            free: if v {
                guided.free.clone()
            } else {
                Guidance::default()
            },
            ..guided.clone()
        };
        let [both, first, free, none] = [
            with(true, true),
            with(true, false),
            with(false, true),
            with(false, false),
        ];
        let [both, first, free, none] = [&both, &first, &free, &none].map(|g| self.score_of(g));
        let sde = self.sde.as_ref();
        let first_interval = self.guidance_interval.unwrap_or(SigmaInterval::ALL);
        let with_free = Interval {
            guided: &both,
            unguided: &free,
            sde,
            interval: first_interval,
        };
        let without_free = Interval {
            guided: &first,
            unguided: &none,
            sde,
            interval: first_interval,
        };
        let limited = Interval {
            guided: &with_free,
            unguided: &without_free,
            sde,
            interval: self
                .free_guidance_interval
                .or(self.guidance_interval)
                .unwrap_or(SigmaInterval::ALL),
        };
        self.sample_with(&limited, cfg, n, classes, rng, observe)
    }

    /// Number of classes of a class-conditional model (0 = unconditional).
    pub fn num_classes(&self) -> usize {
        self.net.num_classes()
    }

    /// ∇x log p(x) at time `t` for data-coordinate points (chain rule through the affine
    /// standardisation: ∇x = ∇z / σ). A model trained on a non-affine intensity transform
    /// ([`crate::data::Standardizer::is_affine`]) is refused with an error naming `source`.
    pub fn score_at(&self, points: &[f32], t: f64, source: &Path) -> Result<Vec<f32>> {
        self.meta.standardizer.require_affine("score", source)?;
        let d = self.dim();
        let z = self.meta.standardizer.forward(points);
        let n = z.len() / d;
        let s = to_vec(
            self.score()
                .score(from_rows::<B>(z, n, d, &self.device), &[t]),
        );
        Ok(s.iter()
            .enumerate()
            .map(|(i, v)| (*v as f64 / self.meta.standardizer.std[i % d]) as f32)
            .collect())
    }
}

impl<B: AutodiffBackend> Trained<B> {
    /// The same model on the inner backend (no autodiff graph), for sampling.
    pub fn inner(&self) -> Trained<B::InnerBackend> {
        Trained {
            net: self.net.valid(),
            sde: self.meta.sde.build().expect("built before"),
            meta: self.meta.clone(),
            device: self.device.clone(),
            correction: None,
            guide: None,
            free_guidance: Guidance::default(),
            guidance_interval: None,
            free_guidance_interval: None,
        }
    }
}

/// NLL (nats, per point, data coordinates) of `points` under a checkpoint's model, in chunks of
/// `chunk` points. The model is loaded on the autodiff backend for the divergence. `progress`
/// hears the fraction of the work done, in [0, 1] (chunks done plus the current chunk's ODE time).
#[allow(clippy::too_many_arguments)]
pub fn nll_of_points<B: AutodiffBackend>(
    model: &Trained<B>,
    points: &[f32],
    source: &Path,
    divergence: Divergence,
    rtol: f64,
    chunk: usize,
    rng: &mut Rng,
    progress: &mut dyn FnMut(f64),
) -> Result<Nll> {
    let d = model.dim();
    if !points.len().is_multiple_of(d) {
        return Err(Error::Shape(format!(
            "{}: data are not rows of {d} values",
            source.display()
        )));
    }
    model
        .meta
        .standardizer
        .require_affine("likelihood", source)?;
    let z = model.meta.standardizer.forward(points);
    let log_det = model.meta.standardizer.log_det_jacobian();
    let mut per_point = Vec::with_capacity(points.len() / d);
    let mut nfe = 0;
    let opts = crate::samplers::Rk45Options {
        rtol,
        atol: rtol,
        ..Default::default()
    };
    let blocks = z.len().div_ceil(chunk.max(1) * d).max(1);
    let (t0, t1) = (model.sde.t_min(), model.sde.t_end());
    for (b, block) in z.chunks(chunk.max(1) * d).enumerate() {
        let n = block.len() / d;
        let x = from_rows::<B::InnerBackend>(block.to_vec(), n, d, &model.device);
        let mut along = |t: f64| {
            let f = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
            progress((b as f64 + f) / blocks as f64)
        };
        let nll = probability_flow_nll_observed(
            &model.score(),
            model.sde.as_ref(),
            x,
            divergence,
            opts,
            rng,
            &mut along,
        )?;
        nfe += nll.nfe;
        // log p_x(x) = log p_z(z) + log|det ∂z/∂x|.
        per_point.extend(nll.per_point.iter().map(|v| v - log_det));
    }
    Ok(Nll {
        per_point,
        dim: d,
        nfe,
    })
}
