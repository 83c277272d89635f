//! The training loop's record of its steps (`loss.csv`, the losses of the run), read from the
//! device one step late.
//!
//! Reading a loss waits for the device to finish the step that made it. Read at once, before
//! the backward pass is queued, it stalls the device twice a step (and a GPU most of all: it
//! idles while the host builds the next graph). [`StepLog::push`] instead keeps a step's values
//! on the device and reads them after the next step is queued, when the device has work
//! meanwhile; [`StepLog::flush`] reads the last one before a checkpoint, so a checkpoint is
//! never written after a step whose loss or gradient norm was not finite.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor};

use super::adam::GradNorm;
use crate::error::{Error, Result};
use crate::tensor::scalar;

/// One training step's values, still on the device.
pub struct StepValues<B: Backend> {
    /// The step number.
    pub step: u64,
    /// The loss `[1]`, detached from the graph.
    pub loss: Tensor<B, 1>,
    /// The gradient norm before clipping.
    pub grad_norm: GradNorm<B>,
    /// The learning rate of the step.
    pub lr: f64,
}

/// Steps read from the device, one step late, into `loss.csv` (`step,loss,lr,grad_norm`).
pub struct StepLog<B: Backend> {
    csv: File,
    path: PathBuf,
    pending: Option<StepValues<B>>,
    hint: String,
    /// The losses read in this run, in step order.
    pub losses: Vec<f64>,
    /// The last loss read (NaN before the first).
    pub last_loss: f64,
}

impl<B: Backend> StepLog<B> {
    /// A log appending to `out/loss.csv`, which keeps the rows of steps up to `resume_step`
    /// (the checkpoint resumed from) and no others. A step whose loss or gradient norm is not
    /// finite is a [`Error::Diverged`] naming it, followed by `hint` (what to do).
    pub fn open(out: &Path, resume_step: Option<u64>, hint: String) -> Result<Self> {
        let path = out.join("loss.csv");
        let mut keep = String::from("step,loss,lr,grad_norm\n");
        if let (Some(step), Ok(old)) = (resume_step, std::fs::read_to_string(&path)) {
            // Drop rows logged after the checkpoint we resume from.
            for line in old.lines().skip(1) {
                if line
                    .split(',')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| s <= step)
                {
                    keep.push_str(line);
                    keep.push('\n');
                }
            }
        }
        super::atomic_write(&path, keep.as_bytes())?;
        let csv = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(StepLog {
            csv,
            path,
            pending: None,
            hint,
            losses: Vec::new(),
            last_loss: f64::NAN,
        })
    }

    /// Keeps `values` on the device and reads the previous step's (the device has `values`'
    /// step queued while the host waits). Returns the step read, if any.
    pub fn push(&mut self, values: StepValues<B>) -> Result<Option<u64>> {
        match self.pending.replace(values) {
            Some(done) => self.read(done).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the step still on the device, if any.
    pub fn flush(&mut self) -> Result<Option<u64>> {
        match self.pending.take() {
            Some(done) => self.read(done).map(Some),
            None => Ok(None),
        }
    }

    /// Reads one step, checks it and writes its row.
    fn read(&mut self, v: StepValues<B>) -> Result<u64> {
        let loss = scalar(v.loss);
        let grad_norm = v.grad_norm.value();
        for (what, value) in [("loss", loss), ("gradient norm", grad_norm)] {
            if !value.is_finite() {
                return Err(Error::Diverged(format!(
                    "the {what} is {value} at step {}; {}",
                    v.step, self.hint
                )));
            }
        }
        writeln!(self.csv, "{},{loss},{},{grad_norm}", v.step, v.lr)
            .map_err(|e| Error::io(&self.path, e))?;
        self.losses.push(loss);
        self.last_loss = loss;
        Ok(v.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn values(step: u64, loss: f32) -> StepValues<Flex> {
        let dev = Default::default();
        StepValues {
            step,
            loss: Tensor::from_floats([loss], &dev),
            grad_norm: GradNorm::of(Tensor::from_floats([2.0 * loss], &dev)),
            lr: 0.5,
        }
    }

    #[test]
    fn steps_are_read_one_late_and_flushed() {
        let dir = crate::test_dir::TestDir::new("step-log");
        let open = |resume| StepLog::<Flex>::open(&dir, resume, "lower it".into()).unwrap();
        let mut log = open(None);
        assert_eq!(log.push(values(1, 3.0)).unwrap(), None);
        assert!(log.losses.is_empty() && log.last_loss.is_nan());
        assert_eq!(log.push(values(2, 2.0)).unwrap(), Some(1));
        assert_eq!(log.losses, vec![3.0]);
        assert_eq!(log.flush().unwrap(), Some(2));
        assert_eq!(log.flush().unwrap(), None);
        assert_eq!((log.losses.clone(), log.last_loss), (vec![3.0, 2.0], 2.0));
        let csv = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
        assert_eq!(csv, "step,loss,lr,grad_norm\n1,3,0.5,6\n2,2,0.5,4\n");

        // Resuming from step 1 keeps its row only; a non-finite value is reported, not logged.
        let mut log = open(Some(1));
        assert_eq!(log.push(values(2, f32::NAN)).unwrap(), None);
        let bad = log.flush().unwrap_err().to_string();
        assert!(bad.contains("the loss is NaN at step 2; lower it"), "{bad}");
        let mut inf = values(3, 1.0);
        inf.grad_norm = GradNorm::of(Tensor::from_floats([f32::INFINITY], &Default::default()));
        log.push(inf).unwrap();
        let bad = log.push(values(4, 1.0)).unwrap_err().to_string();
        assert!(bad.contains("the gradient norm is inf at step 3"), "{bad}");
        let csv = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
        assert_eq!(csv, "step,loss,lr,grad_norm\n1,3,0.5,6\n");
    }
}
