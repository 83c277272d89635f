//! Comparing generated images with real ones in the feature space of the evaluation classifier:
//! FID, KID, precision/recall and class accuracy, each beside its real-vs-real reference.

use burn::tensor::backend::Backend;
use serde::Serialize;

use super::{
    feature_net::{accuracy, features},
    frechet_distance, kernel_distance, precision_recall, Figure, Points,
};
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::nn::Classifier;
use crate::rng::Rng;

/// Image-quality figures of a generated set.
#[derive(Clone, Debug, Serialize)]
pub struct ImageComparison {
    /// Images per set (generated, and each real half).
    pub num_images: usize,
    /// Dimension of the feature space.
    pub feature_dim: usize,
    /// Fréchet distance of the classifier features.
    pub fid: Figure,
    /// Kernel distance (unbiased MMD², cubic kernel) of the classifier features.
    pub kid: Figure,
    /// k-NN precision (k = 3): generated images inside the real manifold.
    pub precision: Figure,
    /// k-NN recall (k = 3): real images inside the generated manifold.
    pub recall: Figure,
    /// Fraction of generated images the classifier assigns to their requested class (when the
    /// generated set has labels), beside its accuracy on real images.
    pub class_accuracy: Option<Figure>,
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

/// Splits `real` randomly into halves A and B of m images, takes m generated images, and reports
/// each statistic of (generated, B) beside the same statistic of (A, B). `max_images` caps m.
pub fn compare_images<B: Backend>(
    net: &Classifier<B>,
    net_shape: [usize; 3],
    real: &ImageSet,
    fake: &ImageSet,
    max_images: usize,
    rng: &mut Rng,
    device: &B::Device,
) -> Result<ImageComparison> {
    check_shape(real, fake, "real vs generated")?;
    if [real.channels, real.height, real.width] != net_shape {
        return Err(Error::Shape(format!(
            "the classifier takes {}×{}×{} images but the data are {}×{}×{}",
            net_shape[0], net_shape[1], net_shape[2], real.channels, real.height, real.width
        )));
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
    let dim = real.image_size();
    let feats = |s: &ImageSet| features(net, &s.pixels, dim, device);
    let (fa, fb, ff) = (feats(&a), feats(&b), feats(&f));
    let figs = feature_figures(&fa, &fb, &ff, m, rng);
    // Class accuracy of labelled generated images, beside the accuracy on real images.
    let acc = |s: &ImageSet| -> Result<Option<f64>> {
        s.labels
            .is_some()
            .then(|| accuracy(net, s, device))
            .transpose()
    };
    let class_accuracy = match acc(&f)? {
        Some(value) => Some(Figure {
            value,
            real_vs_real: acc(&b)?.unwrap_or(f64::NAN),
        }),
        None => None,
    };
    Ok(ImageComparison {
        num_images: m,
        feature_dim: fa.len() / m,
        fid: figs.fid,
        kid: figs.kid,
        precision: figs.precision,
        recall: figs.recall,
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

        let g = compare_images(&net, shape, &real, &good, 100, &mut Rng::new(1), &dev).unwrap();
        let b = compare_images(
            &net,
            shape,
            &real,
            &mode_dropped,
            100,
            &mut Rng::new(1),
            &dev,
        )
        .unwrap();
        assert_eq!(g.num_images, 100);
        assert!(g.class_accuracy.unwrap().value > 0.95);
        assert!(b.class_accuracy.unwrap().value < 0.05);
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
        let e = compare_images(&net, shape, &real, &wrong, 100, &mut Rng::new(1), &dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1×12×12") && e.contains("1×6×24"), "{e}");
    }
}
