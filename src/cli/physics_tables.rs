//! Text tables of `scoregen physics eval`.

use scoregen::physics::metrics::HistogramFigure;
use scoregen::physics::per_class::ClassComparison;

/// The per-class table: means generated [simulated] and the χ² of the four histograms with
/// their floors.
pub(super) fn print_per_class(per: &[ClassComparison]) {
    println!(
        "per event class: events, mean track pixels, shower pixels and total charge, generated [simulated]; chi2 [floor]"
    );
    println!(
        "{:<11} {:>11} {:>15} {:>15} {:>15} {:>16} {:>16} {:>16} {:>16}",
        "class",
        "events",
        "track px",
        "shower px",
        "charge",
        "chi2 track",
        "chi2 shower",
        "chi2 charge",
        "chi2 pixel"
    );
    for c in per {
        let (g, r) = (&c.generated, &c.real);
        let mean = |x: f64, y: f64| format!("{x:.1} [{y:.1}]");
        let chi = |h: &HistogramFigure| format!("{:.4} [{:.4}]", h.value.chi2, h.real_vs_real.chi2);
        let figs = c.figures.as_ref().map_or_else(
            || vec!["too few events".to_string()],
            |f| {
                [
                    &f.track_pixels,
                    &f.shower_pixels,
                    &f.total_charge,
                    &f.pixel_charge,
                ]
                .map(chi)
                .to_vec()
            },
        );
        println!(
            "{:<11} {:>11} {:>15} {:>15} {:>15} {}",
            c.name,
            format!("{} [{}]", g.events, r.events),
            mean(g.track_pixels, r.track_pixels),
            mean(g.shower_pixels, r.shower_pixels),
            mean(g.total_charge, r.total_charge),
            figs.iter()
                .map(|s| format!("{s:>16}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
