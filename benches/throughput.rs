//! Throughput benchmark (run with `cargo bench --bench throughput`): MLP training steps/s and
//! sampler NFE/s at batch 1k and 10k on the flex CPU backend, the host's normal draws/s, and the
//! per-event cost of SSNet's labels and of the physics observables. Warm-up excluded, median of
//! repeats. Prints a table and, with `--json`, one JSON object per line.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;

use scoregen::app::bench::median;
use scoregen::losses::{loss, LossConfig};
use scoregen::nn::MlpConfig;
use scoregen::rng::Rng;
use scoregen::samplers::{sample, SamplerConfig, SamplerKind};
use scoregen::score::NeuralScore;
use scoregen::sde::SdeSpec;
use scoregen::tensor::{from_rows, scalar, to_vec};
use scoregen::train::Adam;

type A = Autodiff<Flex>;

fn main() {
    // As the scoregen binary runs: on rayon's pool, freed buffers kept (`scoregen::runtime`).
    scoregen::runtime::run(bench);
}

fn bench() {
    let json = std::env::args().any(|a| a == "--json");
    let dev = Default::default();
    let sde_spec = SdeSpec::default_for("vp").expect("vp");
    let sde = sde_spec.build().expect("vp");
    let cfg = MlpConfig::default();
    let dim = 2;
    let mut rng = Rng::new(0);
    println!(
        "MLP {}×{} blocks, Fourier {}, d = {dim}; flex CPU backend",
        cfg.hidden, cfg.blocks, cfg.fourier_features
    );
    for batch in [1_000usize, 10_000] {
        let mut model = cfg.init::<A>(dim, 0, &dev);
        let mut adam = Adam::default();
        let data = rng.normal_vec(batch * dim);
        let mut times = Vec::new();
        for i in 0..13 {
            let t = Instant::now();
            let x0 = from_rows::<A>(data.clone(), batch, dim, &dev);
            let l = loss(&LossConfig::default(), &model, sde.as_ref(), x0, &mut rng).expect("loss");
            let _ = scalar(l.clone());
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = adam.step(model, grads, 1e-3, Some(1.0)).0;
            if i >= 3 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        let s = median(&times);
        report(json, "train_step", batch, 1.0 / s, "steps/s", s);

        let net = model.valid();
        let score = NeuralScore {
            model: &net,
            sde: sde.as_ref(),
            device: dev,
            output: scoregen::score::Output::Eps,
            sigma_data: 0.5,
        };
        for kind in [SamplerKind::Em, SamplerKind::Pc, SamplerKind::Heun] {
            let mut sc = SamplerConfig::new(kind);
            sc.steps = 20;
            let mut rates = Vec::new();
            for i in 0..4 {
                let t = Instant::now();
                let out = sample(
                    &sc,
                    &score,
                    sde.as_ref(),
                    batch,
                    dim,
                    &mut rng,
                    &dev,
                    &mut |_, _| {},
                )
                .expect("sample");
                let _ = to_vec(out.x);
                if i >= 1 {
                    rates.push(out.nfe as f64 / t.elapsed().as_secs_f64());
                }
            }
            let r = median(&rates);
            report(
                json,
                &format!("sample_{}", kind.name()),
                batch,
                r,
                "NFE/s",
                1.0 / r,
            );
        }
    }

    // The host's Gaussian noise (every stochastic sampler step draws batch × dimension values;
    // a GPU waits on it when it outruns the host).
    for n in [50_000usize, 1_000_000, 4_000_000] {
        let s = median_secs(8, 2, &mut || {
            std::hint::black_box(rng.normal_vec(n));
        });
        report(json, "normal_draws", n, n as f64 / s, "values/s", s);
    }
    physics_observables(json);
}

/// What `physics select` and `physics ssnet apply --observables` spend per event: SSNet's
/// labels (default 64×64 network, weights as drawn: the cost does not depend on them), then the
/// per-event observables, with and without the wavelet spectra they do not read.
fn physics_observables(json: bool) {
    use scoregen::physics::metrics::{observables_with, Detail};
    use scoregen::physics::segment::{segment_with, Labelled, Labelling};
    use scoregen::physics::ssnet::SsnetConfig;
    use scoregen::physics::{simulate, SimConfig};

    let n = 500;
    let cfg = SimConfig::default();
    let ev = simulate(&cfg, n, 3).expect("simulate");
    let dev = Default::default();
    let net = SsnetConfig::for_size(ev.size).init::<Flex>(&dev);
    let labelling = Labelling {
        threshold: cfg.label_threshold,
        symmetric: false,
    };
    let s = median_secs(4, 1, &mut || {
        std::hint::black_box(segment_with(&net, &ev.images, ev.size, labelling, &dev));
    });
    report(json, "ssnet_labels_64px", n, n as f64 / s, "events/s", s);
    for (name, detail) in [
        ("observables_full", Detail::Full),
        ("observables_per_event", Detail::PerEvent),
    ] {
        let s = median_secs(4, 1, &mut || {
            let l = Labelled {
                size: ev.size,
                images: &ev.images,
                labels: &ev.labels,
            };
            let o = observables_with(l, cfg.label_threshold, detail).expect("observables");
            std::hint::black_box(o);
        });
        report(json, name, n, n as f64 / s, "events/s", s);
    }
}

/// Median seconds of `f` over `runs` calls, the first `warmup` of them not counted.
fn median_secs(runs: usize, warmup: usize, f: &mut dyn FnMut()) -> f64 {
    let times: Vec<f64> = (0..runs)
        .filter_map(|i| {
            let t = Instant::now();
            f();
            (i >= warmup).then(|| t.elapsed().as_secs_f64())
        })
        .collect();
    median(&times)
}

fn report(json: bool, what: &str, batch: usize, rate: f64, unit: &str, secs: f64) {
    if json {
        println!("{{\"bench\":\"{what}\",\"batch\":{batch},\"rate\":{rate:.3},\"unit\":\"{unit}\",\"seconds\":{secs:.6}}}");
    } else {
        println!(
            "{what:<22} batch {batch:>6}: {rate:>10.1} {unit:<8} ({:.2} ms each)",
            secs * 1e3
        );
    }
}
