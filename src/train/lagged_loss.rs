//! A supervised loop's losses (SSNet, the evaluation classifier, the discriminator), read from
//! the device one step late, as the trainer's [`super::step_log`] reads its steps.
//!
//! Reading a loss waits for the device to finish its step; read as soon as the step is queued,
//! the device then idles while the host builds the next step's graph. Read after the next step
//! is queued, it costs no idle time.

use burn::tensor::{backend::Backend, Tensor};

use crate::error::{Error, Result};
use crate::tensor::scalar;

/// The losses of a supervised loop, each read when the next step has been queued.
pub struct LaggedLoss<B: Backend> {
    what: &'static str,
    pending: Option<(u64, Tensor<B, 1>)>,
}

impl<B: Backend> LaggedLoss<B> {
    /// No loss pending; `what` names the network in a divergence error ("SSNet").
    pub fn new(what: &'static str) -> Self {
        LaggedLoss {
            what,
            pending: None,
        }
    }

    /// Keeps `step`'s loss `[1]` (detached) on the device and reads the previous step's:
    /// `Some((step, loss))`, or [`Error::Diverged`] naming that step when it is not finite.
    pub fn push(&mut self, step: u64, loss: Tensor<B, 1>) -> Result<Option<(u64, f64)>> {
        match self.pending.replace((step, loss)) {
            Some(done) => self.read(done).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the loss still pending, if any (after the last step).
    pub fn finish(&mut self) -> Result<Option<(u64, f64)>> {
        match self.pending.take() {
            Some(done) => self.read(done).map(Some),
            None => Ok(None),
        }
    }

    fn read(&self, (step, loss): (u64, Tensor<B, 1>)) -> Result<(u64, f64)> {
        let value = scalar(loss);
        if !value.is_finite() {
            return Err(Error::Diverged(format!(
                "{} loss is {value} at step {step}; lower the learning rate",
                self.what
            )));
        }
        Ok((step, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn loss(v: f32) -> Tensor<Flex, 1> {
        Tensor::from_floats([v], &Default::default())
    }

    #[test]
    fn losses_are_read_one_step_late_and_checked() {
        let mut lag = LaggedLoss::<Flex>::new("SSNet");
        assert_eq!(lag.finish().unwrap(), None);
        assert_eq!(lag.push(1, loss(0.5)).unwrap(), None);
        assert_eq!(lag.push(2, loss(0.25)).unwrap(), Some((1, 0.5)));
        assert_eq!(lag.finish().unwrap(), Some((2, 0.25)));
        assert_eq!(lag.finish().unwrap(), None);

        // A non-finite loss is reported when read, naming its step, after the next push or at
        // the end.
        assert_eq!(lag.push(3, loss(f32::NAN)).unwrap(), None);
        let bad = lag.push(4, loss(1.0)).unwrap_err().to_string();
        assert!(bad.contains("SSNet loss is NaN at step 3"), "{bad}");
        assert_eq!(lag.push(5, loss(f32::INFINITY)).unwrap(), Some((4, 1.0)));
        let bad = lag.finish().unwrap_err().to_string();
        assert!(bad.contains("SSNet loss is inf at step 5; lower"), "{bad}");
    }
}
