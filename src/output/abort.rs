//! `abort_on_fail` thresholds as an output: evaluated on the phase so far after every interval
//! (once the rule's `delay` has passed), and the first failure stops the run as aborted. A share
//! of a distributed run with `--share-dir` judges every share's numbers together
//! ([`Peers`]), and stops too when another share has aborted.

use std::time::Duration;

use stampede_plan::Plan;

use super::peers::Peers;
use super::{Flow, Output, PhaseView, StopReason};
use crate::analysis::evaluate;
use crate::recorder::Interval;
use crate::rundir::ThresholdSpec;

pub struct AbortRules {
    rules: Vec<(ThresholdSpec, Duration)>,
    fired: bool,
    /// The other shares, when judged together.
    peers: Option<Peers>,
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
            peers: None,
        }
    }

    /// Judged on the merged numbers of every share (`run --share-dir`).
    pub fn across(mut self, peers: Peers) -> AbortRules {
        self.peers = Some(peers);
        self
    }
}

impl Output for AbortRules {
    fn interval(&mut self, iv: &Interval, phase: &PhaseView) -> Flow {
        if self.fired || self.rules.is_empty() {
            return Flow::Continue;
        }
        let (agg, across) = match &mut self.peers {
            None => (phase.agg, String::new()),
            Some(peers) => {
                peers.add(iv);
                peers.poll();
                if let Some(dir) = peers.aborted() {
                    self.fired = true;
                    return Flow::Stop(StopReason::Abort {
                        rule: format!("(the share in {} aborted)", dir.display()),
                        phase: phase.name.to_string(),
                        value: None,
                    });
                }
                let n = peers.shares();
                match peers.phase(phase.name, phase.agg.duration_s) {
                    Some(agg) => (agg, format!(" (all {n} shares)")),
                    None => (phase.agg, String::new()),
                }
            }
        };
        for (rule, delay) in &self.rules {
            if !rule.applies_to(phase.name) || phase.elapsed_s < delay.as_secs_f64() {
                continue;
            }
            let (value, passed) = evaluate(rule, agg);
            if !passed {
                self.fired = true;
                return Flow::Stop(StopReason::Abort {
                    rule: format!("{}{across}", rule.expr),
                    phase: phase.name.to_string(),
                    value,
                });
            }
        }
        Flow::Continue
    }
}
