//! The loss curve of a training run: `loss.csv` (step, loss, learning rate, gradient norm per
//! logged step, written by the trainer) read back and drawn as `loss.png`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::plot::{line_plot, Labels};

/// The (step, loss) columns of a `loss.csv`; rows that do not parse are skipped.
pub fn read_losses(path: &Path) -> Result<(Vec<f64>, Vec<f64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split(',');
            let step: f64 = cols.next()?.trim().parse().ok()?;
            let loss: f64 = cols.next()?.trim().parse().ok()?;
            Some((step, loss))
        })
        .unzip())
}

/// Draws the training loss of `loss_csv` against the step on a log axis, titled `title`, into
/// the PNG `out` (640×320).
pub fn plot_loss_curve(loss_csv: &Path, out: &Path, title: &str) -> Result<()> {
    let (steps, losses) = read_losses(loss_csv)?;
    if losses.is_empty() {
        return Err(Error::data(loss_csv, "no losses logged"));
    }
    let labels = Labels {
        title,
        x: "step",
        y: "loss",
    };
    line_plot(out, &steps, &losses, true, &labels, (640, 320))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_steps_and_losses_and_refuses_an_empty_log() {
        let dir = crate::test_dir::TestDir::new("losscurve");
        let csv = dir.join("loss.csv");
        std::fs::write(
            &csv,
            "step,loss,lr,grad_norm\n5,0.5,0.001,1\n10,0.25,0.001,1\nbad\n",
        )
        .unwrap();
        let (s, l) = read_losses(&csv).unwrap();
        assert_eq!(s, [5.0, 10.0]);
        assert_eq!(l, [0.5, 0.25]);
        plot_loss_curve(&csv, &dir.join("loss.png"), "run").unwrap();
        assert!(std::fs::metadata(dir.join("loss.png")).unwrap().len() > 100);
        std::fs::write(&csv, "step,loss,lr,grad_norm\n").unwrap();
        let e = plot_loss_curve(&csv, &dir.join("x.png"), "run")
            .unwrap_err()
            .to_string();
        assert!(e.contains("loss.csv") && e.contains("no losses"), "{e}");
    }
}
