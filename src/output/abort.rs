//! `abort_on_fail` thresholds as an output: evaluated on the phase so far after every interval
//! (once the rule's `delay` has passed), and the first failure stops the run as aborted.

use std::time::Duration;

use stampede_plan::Plan;

use super::{Flow, Output, PhaseView, StopReason};
use crate::analysis::evaluate;
use crate::recorder::Interval;
use crate::rundir::ThresholdSpec;

pub struct AbortRules {
    rules: Vec<(ThresholdSpec, Duration)>,
    fired: bool,
}

impl AbortRules {
    /// The plan's thresholds that have `abort_on_fail`.
    pub fn from_plan(plan: &Plan) -> AbortRules {
        AbortRules {
            rules: plan
                .thresholds
                .iter()
                .filter(|t| t.abort_on_fail)
                .map(|t| (crate::describe::threshold_spec(t), t.delay))
                .collect(),
            fired: false,
        }
    }
}

impl Output for AbortRules {
    fn interval(&mut self, _iv: &Interval, phase: &PhaseView) -> Flow {
        if self.fired {
            return Flow::Continue;
        }
        for (rule, delay) in &self.rules {
            if !rule.applies_to(phase.name) || phase.elapsed_s < delay.as_secs_f64() {
                continue;
            }
            let (value, passed) = evaluate(rule, phase.agg);
            if !passed {
                self.fired = true;
                return Flow::Stop(StopReason::Abort {
                    rule: rule.expr.clone(),
                    phase: phase.name.to_string(),
                    value,
                });
            }
        }
        Flow::Continue
    }
}
