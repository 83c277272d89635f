//! Comparing generated images with real ones in the feature space of the evaluation classifier:
//! FID, KID, precision/recall and class accuracy, each beside its real-vs-real reference.

use burn::tensor::backend::Backend;
use serde::Serialize;

use super::{
    feature_net::{accuracy, features},
    frechet_distance,
    inception::{inception_features, InceptionV3},
    kernel_distance, precision_recall, Figure, Points,
};
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::nn::Classifier;
use crate::rng::Rng;

/// Image-quality figures of a generated set, in the feature space of each network given.
#[derive(Clone, Debug, Serialize)]
pub struct ImageComparison {
    /// Images per set (generated, and each real half).
    pub num_images: usize,
    /// Figures in the evaluation classifier's feature space (flattened into the JSON object).
    #[serde(flatten)]
    pub classifier: Option<ClassifierFigures>,
    /// FID/KID/precision/recall of Inception-v3 pool3 features (2048-D), comparable with
    /// published figures when the weights are pytorch-fid's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inception: Option<FeatureFigures>,
}

/// Figures in the feature space of the evaluation classifier.
#[derive(Clone, Debug, Serialize)]
pub struct ClassifierFigures {
    /// Dimension of the feature space.
    pub feature_dim: usize,
    /// FID, KID, precision and recall of the classifier features.
    #[serde(flatten)]
    pub figures: FeatureFigures,
    /// Fraction of generated images the classifier assigns to their requested class (when the
    /// generated set has labels), beside its accuracy on real images.
    pub class_accuracy: Option<Figure>,
}

/// The networks whose features compare image sets (at least one).
pub struct FeatureNets<'a, B: Backend> {
    /// The evaluation classifier and the C×H×W shape it takes.
    pub classifier: Option<(&'a Classifier<B>, [usize; 3])>,
    /// Inception-v3 for pool3 features.
    pub inception: Option<&'a InceptionV3<B>>,
}

/// FID, KID and k-NN precision/recall of generated features against real ones.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FeatureFigures {
    /// Fréchet distance.
    pub fid: Figure,
    /// Kernel distance (unbiased MMD², cubic kernel).
    pub kid: Figure,
    /// k-NN precision (k = 3).
    pub precision: Figure,
    /// k-NN recall (k = 3).
    pub recall: Figure,
}

/// The feature-space figures of `m` generated feature rows `ff` against real half `fb`, each
/// beside the same figure of real half `fa` against `fb` (row-major, equal row counts m).
pub fn feature_figures(
    fa: &[f32],
    fb: &[f32],
    ff: &[f32],
    m: usize,
    rng: &mut Rng,
) -> FeatureFigures {
    let k = fa.len() / m.max(1);
    let (pa, pb, pf) = (Points::new(fa, k), Points::new(fb, k), Points::new(ff, k));
    let mut r1 = rng.fork();
    let mut r2 = r1.clone();
    let kid_size = m.min(1000);
    let (p_fake, r_fake) = precision_recall(pb, pf, 3);
    let (p_real, r_real) = precision_recall(pb, pa, 3);
    FeatureFigures {
        fid: Figure {
            value: frechet_distance(pf, pb),
            real_vs_real: frechet_distance(pa, pb),
        },
        kid: Figure {
            value: kernel_distance(pf, pb, 10, kid_size, &mut r1),
            real_vs_real: kernel_distance(pa, pb, 10, kid_size, &mut r2),
        },
        precision: Figure {
            value: p_fake,
            real_vs_real: p_real,
        },
        recall: Figure {
            value: r_fake,
            real_vs_real: r_real,
        },
    }
}

fn check_shape(a: &ImageSet, b: &ImageSet, what: &str) -> Result<()> {
    if [a.channels, a.height, a.width] != [b.channels, b.height, b.width] {
        return Err(Error::Shape(format!(
            "{what}: {}×{}×{} images against {}×{}×{}",
            a.channels, a.height, a.width, b.channels, b.height, b.width
        )));
    }
    Ok(())
}

/// Images per Inception-v3 forward pass.
const INCEPTION_BATCH: usize = 16;

/// Splits `real` randomly into halves A and B of m images, takes m generated images, and reports
/// each statistic of (generated, B) beside the same statistic of (A, B), in the feature space of
/// each network of `nets`. `max_images` caps m.
pub fn compare_images<B: Backend>(
    nets: &FeatureNets<B>,
    real: &ImageSet,
    fake: &ImageSet,
    max_images: usize,
    rng: &mut Rng,
    device: &B::Device,
) -> Result<ImageComparison> {
    check_shape(real, fake, "real vs generated")?;
    if let Some((_, net_shape)) = nets.classifier {
        if [real.channels, real.height, real.width] != net_shape {
            return Err(Error::Shape(format!(
                "the classifier takes {}×{}×{} images but the data are {}×{}×{}",
                net_shape[0], net_shape[1], net_shape[2], real.channels, real.height, real.width
            )));
        }
    }
    if nets.classifier.is_none() && nets.inception.is_none() {
        return Err(Error::config(
            "features",
            "image comparison needs the evaluation classifier or Inception-v3 weights",
        ));
    }
    let m = (real.len() / 2).min(fake.len()).min(max_images);
    if m < 4 {
        return Err(Error::Shape(format!(
            "need at least 8 real and 4 generated images, got {} and {}",
            real.len(),
            fake.len()
        )));
    }
    let idx = rng.permutation(real.len());
    let a = real.select(&idx[..m]);
    let b = real.select(&idx[m..2 * m]);
    let f = fake.slice(0..m);
    let classifier = match nets.classifier {
        Some((net, _)) => Some(classifier_figures(net, [&a, &b, &f], m, rng, device)?),
        None => None,
    };
    let inception = match nets.inception {
        Some(net) => {
            let shape = [real.channels, real.height, real.width];
            let feats =
                |s: &ImageSet| inception_features(net, &s.pixels, shape, INCEPTION_BATCH, device);
            let (fa, fb, ff) = (feats(&a)?, feats(&b)?, feats(&f)?);
            Some(feature_figures(&fa, &fb, &ff, m, rng))
        }
        None => None,
    };
    Ok(ImageComparison {
        num_images: m,
        classifier,
        inception,
    })
}

/// The classifier-space figures of generated set f against real half b, beside real half a.
fn classifier_figures<B: Backend>(
    net: &Classifier<B>,
    [a, b, f]: [&ImageSet; 3],
    m: usize,
    rng: &mut Rng,
    device: &B::Device,
) -> Result<ClassifierFigures> {
    let dim = a.image_size();
    let feats = |s: &ImageSet| features(net, &s.pixels, dim, device);
    let (fa, fb, ff) = (feats(a), feats(b), feats(f));
    // Class accuracy of labelled generated images, beside the accuracy on real images.
    let acc = |s: &ImageSet| -> Result<Option<f64>> {
        s.labels
            .is_some()
            .then(|| accuracy(net, s, device))
            .transpose()
    };
    let class_accuracy = match acc(f)? {
        Some(value) => Some(Figure {
            value,
            real_vs_real: acc(b)?.unwrap_or(f64::NAN),
        }),
        None => None,
    };
    Ok(ClassifierFigures {
        feature_dim: fa.len() / m,
        figures: feature_figures(&fa, &fb, &ff, m, rng),
        class_accuracy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{train_classifier, ClassifierTraining};
    use burn::backend::{Autodiff, Flex};

    /// 12×12 images of a horizontal (class 0) or vertical (class 1) bar at a random position,
    /// with pixel noise.
    fn bars(n: usize, rng: &mut Rng) -> ImageSet {
        let s = 12;
        let mut pixels = Vec::with_capacity(n * s * s);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = (i % 2) as u32;
            let pos = 2 + rng.below(s - 4);
            for y in 0..s {
                for x in 0..s {
                    let on = if class == 0 { y == pos } else { x == pos };
                    let v = if on { 1.0 } else { -1.0 };
                    pixels.push(v + 0.1 * rng.normal() as f32);
                }
            }
            labels.push(class);
        }
        ImageSet {
            pixels,
            labels: Some(labels),
            channels: 1,
            height: s,
            width: s,
            class_names: vec!["horizontal".into(), "vertical".into()],
        }
    }

    #[test]
    fn a_trained_classifier_scores_good_and_bad_generated_sets_apart() {
        let dev = Default::default();
        let mut rng = Rng::new(5);
        let train = bars(400, &mut rng);
        let opts = ClassifierTraining {
            steps: 60,
            batch: 32,
            lr: 3e-3,
            seed: 1,
        };
        let (net, cfg) =
            train_classifier::<Autodiff<Flex>>(&train, &opts, &dev, &mut |_, _| {}).unwrap();
        let real = bars(200, &mut rng);
        let acc = accuracy(&net, &real, &dev).unwrap();
        assert!(acc > 0.95, "held-out accuracy {acc}");
        let shape = [cfg.channels, cfg.height, cfg.width];

        // A "generated" set from the real law, and one with only horizontal bars.
        let good = bars(100, &mut rng);
        let keep: Vec<usize> = (0..200).filter(|i| i % 2 == 0).collect();
        let mut mode_dropped = bars(200, &mut rng).select(&keep);
        // Request "vertical" for all of them: the classifier must disagree.
        mode_dropped.labels = Some(vec![1; keep.len()]);

        let nets = FeatureNets {
            classifier: Some((&net, shape)),
            inception: None,
        };
        let g = compare_images(&nets, &real, &good, 100, &mut Rng::new(1), &dev).unwrap();
        assert_eq!(g.num_images, 100);
        let g = g.classifier.unwrap();
        let b = compare_images(&nets, &real, &mode_dropped, 100, &mut Rng::new(1), &dev)
            .unwrap()
            .classifier
            .unwrap();
        assert!(g.class_accuracy.unwrap().value > 0.95);
        assert!(b.class_accuracy.unwrap().value < 0.05);
        let (g, b) = (g.figures, b.figures);
        assert!(
            b.fid.value > 3.0 * g.fid.value.max(g.fid.real_vs_real),
            "FID good {:?} bad {:?}",
            g.fid,
            b.fid
        );
        assert!(b.kid.value > 3.0 * g.kid.value.abs().max(g.kid.real_vs_real.abs()));
        assert!((b.recall.value - 0.5).abs() < 0.2, "recall {:?}", b.recall);
        assert!(g.recall.value > 0.7 && g.precision.value > 0.7, "{g:?}");

        // Shape mismatches are errors naming both shapes.
        let wrong = ImageSet {
            height: 6,
            width: 24,
            ..good.clone()
        };
        let e = compare_images(&nets, &real, &wrong, 100, &mut Rng::new(1), &dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1×12×12") && e.contains("1×6×24"), "{e}");
    }
}
