//! The terminal during a run: the live progress line (unless `--quiet`) and notices such as an
//! `abort_on_fail` stop, on stderr. The runner itself prints nothing.

use super::{Flow, Notice, Output, PhaseView};
use crate::recorder::Interval;
use crate::report::terminal::Progress;

pub struct Console {
    progress: Option<Progress>,
}

impl Console {
    /// `progress`: draw the live line; notices are printed either way.
    pub fn new(progress: bool) -> Console {
        Console {
            progress: progress.then(Progress::new),
        }
    }
}

impl Output for Console {
    fn interval(&mut self, iv: &Interval, phase: &PhaseView) -> Flow {
        let Some(p) = self.progress.as_mut() else {
            return Flow::Continue;
        };
        let window: u64 = iv.steps.iter().map(|s| s.requests).sum();
        let rps = if iv.dur > 0.0 { window as f64 / iv.dur } else { 0.0 };
        let all = phase.agg.merged(None);
        let p95 = (!all.latency.is_empty()).then(|| all.latency.value_at_quantile(0.95) as f64 / 1000.0);
        let error_rate = if all.requests > 0 {
            all.errors as f64 / all.requests as f64
        } else {
            0.0
        };
        p.update(
            phase.name,
            phase.elapsed_s,
            phase.planned_s,
            iv.vus,
            rps,
            p95,
            error_rate,
        );
        Flow::Continue
    }

    fn phase_end(&mut self, _phase: &PhaseView) {
        if let Some(p) = self.progress.as_mut() {
            p.finish();
        }
    }

    fn notice(&mut self, notice: &Notice) {
        if let Some(p) = self.progress.as_mut() {
            p.finish();
        }
        match notice {
            Notice::Aborting { rule, phase, value } => eprintln!(
                "aborting: threshold `{rule}` failed in phase {phase} (measured {:.3}) and has abort_on_fail",
                value.unwrap_or(f64::NAN)
            ),
        }
    }
}
