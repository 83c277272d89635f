//! Commands on image data sets: the evaluation classifier and image-quality evaluation.

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;

use super::{ClassifierArgs, EvalArgs};
use scoregen::data;
use scoregen::eval::{self, ClassifierMeta, ClassifierTraining, Figure};
use scoregen::rng::Rng;

/// The (C, H, W) of the image model `model` loaded from `dir`, or an error saying that `what`
/// needs an image model.
pub fn require_image_model<B: burn::tensor::backend::Backend>(
    model: &scoregen::app::Trained<B>,
    dir: &std::path::Path,
    what: &str,
) -> Result<[usize; 3]> {
    match model.image_shape() {
        Some(shape) => Ok(shape),
        None => bail!(
            "{}: {what} needs an image model (this one holds {}-dimensional points)",
            dir.display(),
            model.dim()
        ),
    }
}

/// The images of `spec`, which must have the model's image shape.
pub fn load_images_of_shape(spec: &str, shape: [usize; 3]) -> Result<data::ImageSet> {
    let set = data::load_images(spec)?;
    let got = [set.channels, set.height, set.width];
    if got != shape {
        bail!(
            "{spec}: images are {}×{}×{} but the model takes {}×{}×{}",
            got[0],
            got[1],
            got[2],
            shape[0],
            shape[1],
            shape[2]
        );
    }
    Ok(set)
}

/// Whether a data argument names an image source (`idx:`, `cifar:`, `png:`, `npy:`).
pub fn is_image_source(spec: &str) -> bool {
    ["idx:", "cifar:", "png:", "npy:"]
        .iter()
        .any(|p| spec.starts_with(p))
}

pub fn classifier<B: AutodiffBackend>(device: &B::Device, a: &ClassifierArgs) -> Result<()> {
    if !is_image_source(&a.data) {
        bail!(
            "--data {}: the classifier needs labelled images (idx:, cifar:, png:, npy:)",
            a.data
        );
    }
    let all = data::load_images(&a.data)?;
    if all.labels.is_none() {
        bail!(
            "--data {}: the evaluation classifier needs labelled images (idx:<images>,<labels>, npy:<images>,<labels>, cifar:, or png:<dir> with one sub-folder per class)",
            a.data
        );
    }
    let first = a.first.unwrap_or(all.len()).min(all.len());
    let train = all.slice(0..first);
    let heldout = all.slice(first..(first + a.heldout).min(all.len()));
    let opts = ClassifierTraining {
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
    };
    eprintln!(
        "training the evaluation classifier on {} images ({} held out), {} steps",
        train.len(),
        heldout.len(),
        a.steps
    );
    let bar = indicatif::ProgressBar::new(a.steps);
    let t = std::time::Instant::now();
    let (net, cfg) = eval::train_classifier::<B>(&train, &opts, device, &mut |step, loss| {
        bar.set_position(step);
        if step % 10 == 0 {
            bar.set_message(format!("loss {loss:.4}"));
        }
    })?;
    bar.finish_and_clear();
    let acc = if heldout.is_empty() {
        f64::NAN
    } else {
        eval::accuracy(&net, &heldout, device)?
    };
    let meta = ClassifierMeta {
        config: cfg,
        class_names: all.class_names.clone(),
        steps: a.steps,
        train_images: train.len(),
        heldout_accuracy: acc,
        heldout_images: heldout.len(),
    };
    eval::save_classifier(&a.out, &net, &meta)?;
    let measured = if heldout.is_empty() {
        "no held-out images (--first N holds out the images after the first N)".to_string()
    } else {
        format!("held-out accuracy {acc:.4} on {} images", heldout.len())
    };
    println!(
        "classifier: {} steps in {:.1} s; {measured} → {}",
        a.steps,
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

pub fn eval_images<B: AutodiffBackend>(device: &B::Device, a: &EvalArgs) -> Result<()> {
    if a.features.is_none() && a.inception.is_none() {
        bail!(
            "--real {} is image data: pass --features <dir> with an evaluation classifier \
             (train one with `scoregen classifier --data {} --out <dir>`) and/or --inception \
             <weights.safetensors>",
            a.real,
            a.real
        );
    }
    if !is_image_source(&a.fake) {
        bail!("--fake {}: image data expected (npy:<N×C×H×W>[,<labels>], png:<dir>, …) when --real is images", a.fake);
    }
    let classifier = match &a.features {
        Some(dir) => Some(
            eval::load_classifier::<B::InnerBackend>(dir, device)
                .with_context(|| format!("loading the classifier in {}", dir.display()))?,
        ),
        None => None,
    };
    let inception = match &a.inception {
        Some(path) => Some(
            eval::InceptionV3::<B::InnerBackend>::load(path, device)
                .with_context(|| format!("loading Inception-v3 from {}", path.display()))?,
        ),
        None => None,
    };
    let real = data::load_images(&a.real)?;
    let fake = data::load_images(&a.fake)?;
    let nets = eval::FeatureNets {
        classifier: classifier.as_ref().map(|(net, meta)| {
            let c = &meta.config;
            (net, [c.channels, c.height, c.width])
        }),
        inception: inception.as_ref(),
    };
    let mut rng = Rng::new(a.seed);
    let c = eval::compare_images(&nets, &real, &fake, a.max_points, &mut rng, device)?;
    if a.json {
        println!("{}", serde_json::to_string(&c)?);
        return Ok(());
    }
    println!(
        "{} images per set (real-vs-real: two disjoint halves of the real data)",
        c.num_images
    );
    println!(
        "  {:<24} {:>12} {:>14}",
        "statistic", "generated", "real-vs-real"
    );
    let mut rows: Vec<(String, Figure)> = Vec::new();
    let mut add = |space: &str, f: &eval::FeatureFigures| {
        rows.push((format!("FID ({space})"), f.fid));
        rows.push((format!("KID ({space})"), f.kid));
        rows.push((format!("precision ({space})"), f.precision));
        rows.push((format!("recall ({space})"), f.recall));
    };
    if let Some(k) = &c.classifier {
        add(&format!("classifier, {}-D", k.feature_dim), &k.figures);
    }
    if let Some(f) = &c.inception {
        add("Inception", f);
    }
    if let Some(f) = c.classifier.as_ref().and_then(|k| k.class_accuracy) {
        rows.push(("class accuracy".into(), f));
    }
    for (name, f) in rows {
        println!("  {name:<24} {:>12.5} {:>14.5}", f.value, f.real_vs_real);
    }
    Ok(())
}
