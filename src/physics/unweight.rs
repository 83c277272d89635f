//! Unweighting generated events to the simulation in SSNet's per-event observables: the
//! reweighting of a fast simulation to a detailed one (Andreassen & Nachman 2020, "Neural
//! networks for full phase-space reweighting and parameter tuning", DCTR) done in the three
//! observables `physics eval` histograms, followed by rejection sampling as in
//! [`crate::refine::rejection_sample_by_class`].
//!
//! Each event becomes a point u = (√track pixels, √shower pixels, √charge) (square roots
//! stabilise the variance of counts), standardised by the simulated events' spread. The density
//! ratio r(u) = p_sim(u)/p_gen(u) at a generated event is estimated from its k nearest
//! neighbours among both sets (itself left out): with k_s simulated and k_g generated
//! neighbours out of N_s and N_g,
//!
//! ```text
//!     ln r̂ = ln((k_s + ½)/N_s) − ln((k_g + ½)/N_g)
//! ```
//!
//! the k-nearest-neighbour density estimate of each set at the same radius (Loftsgaarden &
//! Quesenberry 1965), whose ratio needs no radius. Keeping each event with probability r̂/M then
//! gives events whose observables follow the simulation's law wherever r̂ ≤ M; the events
//! themselves are the generator's.

use super::metrics::Observables;
use crate::error::{Error, Result};

/// An event's observables as a point: (√track pixels, √shower pixels, √charge).
pub type Point = [f64; 3];

/// The points of a set of events' observables.
pub fn observable_points(o: &Observables) -> Vec<Point> {
    points(&o.track_pixels, &o.shower_pixels, &o.total_charge)
}

/// The points of events with these track pixels, shower pixels and charges (one per event).
pub fn points(track_pixels: &[f64], shower_pixels: &[f64], total_charge: &[f64]) -> Vec<Point> {
    track_pixels
        .iter()
        .zip(shower_pixels)
        .zip(total_charge)
        .map(|((&t, &s), &q)| [t.sqrt(), s.sqrt(), q.max(0.0).sqrt()])
        .collect()
}

/// ln r̂ = ln p_sim/p_gen at every generated point (module docs): `k` nearest neighbours among
/// `sim` and the other `gen` points, coordinates scaled by `sim`'s standard deviations.
pub fn knn_log_ratio(sim: &[Point], gen: &[Point], k: usize) -> Result<Vec<f32>> {
    if k == 0 || sim.is_empty() || gen.len() < 2 || k > sim.len() + gen.len() - 1 {
        return Err(Error::config(
            "neighbours",
            format!(
                "{k} neighbours among {} simulated and {} generated events: need 1 ≤ k < both sets' size together, and at least 2 generated events",
                sim.len(),
                gen.len()
            ),
        ));
    }
    if let Some(p) = sim
        .iter()
        .chain(gen)
        .find(|p| p.iter().any(|v| !v.is_finite()))
    {
        return Err(Error::config("observables", format!("not finite: {p:?}")));
    }
    let scale: Vec<f64> = (0..3)
        .map(|c| {
            let mean = sim.iter().map(|p| p[c]).sum::<f64>() / sim.len() as f64;
            let var = sim.iter().map(|p| (p[c] - mean).powi(2)).sum::<f64>() / sim.len() as f64;
            // A constant coordinate (e.g. no track pixels in any simulated event) is left as is.
            if var > 0.0 {
                var.sqrt().recip()
            } else {
                1.0
            }
        })
        .collect();
    let scaled = |ps: &[Point]| -> Vec<Point> {
        ps.iter()
            .map(|p| [p[0] * scale[0], p[1] * scale[1], p[2] * scale[2]])
            .collect()
    };
    let (s, g) = (scaled(sim), scaled(gen));
    let (ns, ng) = (s.len() as f64, (g.len() - 1) as f64);
    let dist2 = |a: &Point, b: &Point| (0..3).map(|c| (a[c] - b[c]).powi(2)).sum::<f64>();
    use rayon::prelude::*;
    Ok(g.par_iter()
        .enumerate()
        .map(|(i, p)| {
            // (squared distance, simulated?) to every other point; the k nearest.
            let mut d: Vec<(f64, bool)> = s
                .iter()
                .map(|q| (dist2(p, q), true))
                .chain(
                    g.iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .map(|(_, q)| (dist2(p, q), false)),
                )
                .collect();
            d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
            let ks = d[..k].iter().filter(|x| x.1).count() as f64;
            let kg = k as f64 - ks;
            (((ks + 0.5) / ns).ln() - ((kg + 0.5) / ng).ln()) as f32
        })
        .collect())
}

/// [`knn_log_ratio`] class by class: each generated event against the simulated events of its
/// class (`gen_classes`, `sim_classes`: one per point). A class with generated events but no
/// simulated ones, or fewer than 2 generated ones, is an error naming it.
pub fn knn_log_ratio_by_class(
    sim: (&[Point], &[u8]),
    gen: (&[Point], &[u8]),
    k: usize,
) -> Result<Vec<f32>> {
    for (what, (p, c)) in [("simulated", sim), ("generated", gen)] {
        if p.len() != c.len() {
            return Err(Error::Shape(format!(
                "{} classes for {} {what} events",
                c.len(),
                p.len()
            )));
        }
    }
    let mut out = vec![0.0f32; gen.0.len()];
    let classes = gen.1.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    for class in 0..classes as u8 {
        let members: Vec<usize> = (0..gen.0.len()).filter(|&i| gen.1[i] == class).collect();
        if members.is_empty() {
            continue;
        }
        let of_class: Vec<Point> = (0..sim.0.len())
            .filter(|&i| sim.1[i] == class)
            .map(|i| sim.0[i])
            .collect();
        let g: Vec<Point> = members.iter().map(|&i| gen.0[i]).collect();
        let k_here = k.min(of_class.len() + g.len().saturating_sub(1));
        let l = knn_log_ratio(&of_class, &g, k_here).map_err(|e| {
            Error::config(
                "event class",
                format!(
                    "class {class} ({} generated, {} simulated events): {e}",
                    g.len(),
                    of_class.len()
                ),
            )
        })?;
        for (&i, v) in members.iter().zip(l) {
            out[i] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refine::{logit_bound, rejection_sample, rejection_sample_by_class};
    use crate::rng::Rng;

    fn gaussian(n: usize, mean: Point, sd: Point, rng: &mut Rng) -> Vec<Point> {
        (0..n)
            .map(|_| {
                let z = rng.normal_vec(3);
                [0, 1, 2].map(|c| mean[c] + sd[c] * z[c] as f64)
            })
            .collect()
    }

    fn chi2_first_coordinate(a: &[Point], b: &[Point]) -> f64 {
        let bins = 20;
        let hist = |ps: &[Point]| {
            let mut h = vec![0.0; bins];
            for p in ps {
                let i = ((p[0] + 4.0) / 8.0 * bins as f64).clamp(0.0, bins as f64 - 1.0);
                h[i as usize] += 1.0 / ps.len() as f64;
            }
            h
        };
        let (p, q) = (hist(a), hist(b));
        p.iter()
            .zip(&q)
            .filter(|(x, y)| *x + *y > 0.0)
            .map(|(x, y)| (x - y).powi(2) / (x + y))
            .sum()
    }

    #[test]
    fn the_log_ratio_follows_the_exact_one_and_selection_reaches_the_simulated_law() {
        // Simulation N(0, I); generator N((0.8, 0, 0), diag(1.3, 1, 1)): exact
        // ln r = ln 1.3 − x²/2 + (x − 0.8)²/(2·1.3²).
        let mut rng = Rng::new(5);
        let sim = gaussian(4000, [0.0; 3], [1.0; 3], &mut rng);
        let gen = gaussian(4000, [0.8, 0.0, 0.0], [1.3, 1.0, 1.0], &mut rng);
        let l = knn_log_ratio(&sim, &gen, 64).unwrap();
        let exact: Vec<f64> = gen
            .iter()
            .map(|p| 1.3f64.ln() - p[0] * p[0] / 2.0 + (p[0] - 0.8).powi(2) / (2.0 * 1.69))
            .collect();
        let bulk: Vec<usize> = (0..gen.len()).filter(|&i| exact[i].abs() < 1.5).collect();
        let (mut sxy, mut sxx, mut syy, mut err) = (0.0, 0.0, 0.0, 0.0);
        let mx = bulk.iter().map(|&i| exact[i]).sum::<f64>() / bulk.len() as f64;
        let my = bulk.iter().map(|&i| l[i] as f64).sum::<f64>() / bulk.len() as f64;
        for &i in &bulk {
            let (x, y) = (exact[i] - mx, l[i] as f64 - my);
            sxy += x * y;
            sxx += x * x;
            syy += y * y;
            err += (l[i] as f64 - exact[i]).abs();
        }
        let corr = sxy / (sxx * syy).sqrt();
        let mae = err / bulk.len() as f64;
        assert!(
            corr > 0.85 && mae < 0.35,
            "correlation {corr}, mean |error| {mae}"
        );

        // Keeping events with probability r̂/M brings the generated law to the simulated one.
        let fresh = gaussian(4000, [0.0; 3], [1.0; 3], &mut rng);
        let floor = chi2_first_coordinate(&sim, &fresh);
        let before = chi2_first_coordinate(&gen, &fresh);
        let kept: Vec<Point> =
            rejection_sample(&l, logit_bound(&l, 0.99).unwrap(), &mut Rng::new(1))
                .into_iter()
                .map(|i| gen[i])
                .collect();
        let after = chi2_first_coordinate(&kept, &fresh);
        assert!(kept.len() > 800, "{} kept", kept.len());
        assert!(
            before > 0.1 && after < 0.2 * before && after < 4.0 * floor + 0.01,
            "χ² {before} → {after} ({} kept), floor {floor}",
            kept.len()
        );
    }

    #[test]
    fn classes_are_judged_against_their_own_simulated_events() {
        // Class 0 generated exactly as simulated, class 1 shifted: only class 1's ratios vary.
        let mut rng = Rng::new(9);
        let mut sim = gaussian(1500, [0.0; 3], [1.0; 3], &mut rng);
        sim.extend(gaussian(1500, [3.0, 0.0, 0.0], [1.0; 3], &mut rng));
        let sim_c: Vec<u8> = (0..3000).map(|i| u8::from(i >= 1500)).collect();
        let mut gen = gaussian(1000, [0.0; 3], [1.0; 3], &mut rng);
        gen.extend(gaussian(1000, [3.8, 0.0, 0.0], [1.0; 3], &mut rng));
        let gen_c: Vec<u8> = (0..2000).map(|i| u8::from(i >= 1000)).collect();
        let l = knn_log_ratio_by_class((&sim, &sim_c), (&gen, &gen_c), 64).unwrap();
        let spread = |r: std::ops::Range<usize>| {
            let v = &l[r];
            let m = v.iter().sum::<f32>() / v.len() as f32;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
        };
        // The exact ln r of class 1 has a standard deviation of 0.8 (slope 0.8 in x).
        let (s0, s1) = (spread(0..1000), spread(1000..2000));
        assert!(s0 < 0.45 && s1 > 0.6, "spreads {s0}, {s1}");
        // Within class 1 the events nearer the simulated mean (x = 3) are kept more often.
        let kept = rejection_sample_by_class(
            &l,
            &gen_c.iter().map(|&c| c as u32).collect::<Vec<_>>(),
            0.95,
            &mut Rng::new(2),
        )
        .unwrap();
        let mean_x = |idx: &[usize]| idx.iter().map(|&i| gen[i][0]).sum::<f64>() / idx.len() as f64;
        let kept1: Vec<usize> = kept.iter().copied().filter(|&i| i >= 1000).collect();
        assert!(mean_x(&kept1) < 3.5, "kept class-1 mean {}", mean_x(&kept1));

        // A class no simulated event has is named.
        let sim_only0 = vec![0u8; 3000];
        let err = knn_log_ratio_by_class((&sim, &sim_only0), (&gen, &gen_c), 64).unwrap_err();
        assert!(
            err.to_string()
                .contains("class 1 (1000 generated, 0 simulated"),
            "{err}"
        );
        let err = knn_log_ratio(&sim, &gen[..1], 1).unwrap_err();
        assert!(err.to_string().contains("at least 2 generated"), "{err}");
        let err = knn_log_ratio_by_class((&sim, &sim_c[..5]), (&gen, &gen_c), 64).unwrap_err();
        assert!(
            err.to_string().contains("5 classes for 3000 simulated"),
            "{err}"
        );
    }

    #[test]
    fn points_are_square_roots_of_the_observables() {
        let o = Observables {
            track_pixels: vec![4.0, 0.0],
            shower_pixels: vec![9.0, 16.0],
            total_charge: vec![2.25, 0.0],
            ..Default::default()
        };
        assert_eq!(
            observable_points(&o),
            vec![[2.0, 3.0, 1.5], [0.0, 4.0, 0.0]]
        );
    }
}
