//! Wall-clock budgets for training loops: time a few steps, then fix the step count so that the
//! learning-rate schedule (warm-up, cosine decay) ends when the time does.

use std::time::Instant;

/// Steps timed (after [`WARM_STEPS`] untimed ones, which compile kernels on a GPU) before the
/// step count is fixed.
pub const TIMED_STEPS: u64 = 30;
/// Steps left out of the timing at the start of a run.
pub const WARM_STEPS: u64 = 5;
/// Fraction of the measured speed a budgeted run plans with: checkpoints, sample grids and
/// evaluations take time too.
const MARGIN: f64 = 0.9;

/// The total step count that fits a budget of `budget` seconds when `done` steps are done after
/// `elapsed` seconds and the run goes at `rate` steps/s (planning with 90 % of that speed);
/// at least one more step.
pub fn steps_within(done: u64, elapsed: f64, budget: f64, rate: f64) -> u64 {
    let left = ((budget - elapsed).max(0.0) * rate * MARGIN).floor() as u64;
    done + left.max(1)
}

/// The line a budgeted run prints once the timed steps have fixed its step count: the measured
/// rate and the `total` steps that fit in `minutes`.
pub fn plan_line(total: u64, rate: f64, minutes: f64) -> String {
    format!("time budget: {rate:.2} steps/s, so {total} steps in {minutes:.1} minutes")
}

/// What [`TimeBudget::after_step`] decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetCheck {
    /// Set once, after the timed steps: the total step count that fits and the measured steps/s.
    pub planned: Option<(u64, f64)>,
    /// The budget is spent: stop after this step.
    pub spent: bool,
}

/// A wall-clock budget for a training loop that starts at step `first_step` (0, or the step a
/// resumed run continues from).
#[derive(Debug)]
pub struct TimeBudget {
    seconds: f64,
    first_step: u64,
    clock: Instant,
    timed_from: Option<f64>,
}

impl TimeBudget {
    /// A budget of `minutes`, counted from now.
    pub fn new(minutes: f64, first_step: u64) -> Self {
        TimeBudget {
            seconds: minutes * 60.0,
            first_step,
            clock: Instant::now(),
            timed_from: None,
        }
    }

    /// The budget in minutes.
    pub fn minutes(&self) -> f64 {
        self.seconds / 60.0
    }

    /// Called after each step (numbered from `first_step + 1`).
    pub fn after_step(&mut self, step: u64) -> BudgetCheck {
        let elapsed = self.clock.elapsed().as_secs_f64();
        let mut planned = None;
        if step == self.first_step + WARM_STEPS {
            self.timed_from = Some(elapsed);
        } else if step == self.first_step + WARM_STEPS + TIMED_STEPS {
            if let Some(t0) = self.timed_from {
                let rate = TIMED_STEPS as f64 / (elapsed - t0).max(1e-9);
                planned = Some((steps_within(step, elapsed, self.seconds, rate), rate));
            }
        }
        BudgetCheck {
            planned,
            spent: elapsed >= self.seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_the_steps_that_fit_in_what_is_left() {
        // 10 done after 4 s of a 60 s budget at 5 steps/s: 56 s × 5 × 0.9 = 252 more.
        assert_eq!(steps_within(10, 4.0, 60.0, 5.0), 262);
        // A spent budget still plans one more step (the checkpointed last one).
        assert_eq!(steps_within(10, 70.0, 60.0, 5.0), 11);
    }

    #[test]
    fn a_zero_budget_is_spent_at_once_and_a_long_one_plans_after_the_timed_steps() {
        let mut none = TimeBudget::new(0.0, 0);
        assert!(none.after_step(1).spent);
        let mut long = TimeBudget::new(60.0, 100);
        for step in 101..100 + WARM_STEPS + TIMED_STEPS {
            assert_eq!(
                long.after_step(step),
                BudgetCheck {
                    planned: None,
                    spent: false
                }
            );
        }
        let (total, rate) = long
            .after_step(100 + WARM_STEPS + TIMED_STEPS)
            .planned
            .expect("planned after the timed steps");
        assert!(rate > 0.0);
        assert!(total > 100 + WARM_STEPS + TIMED_STEPS);
    }
}
