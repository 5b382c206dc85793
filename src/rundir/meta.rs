//! `meta.json`: what a run was. Written at the start (status `running`) and rewritten at the end.

use serde::{Deserialize, Serialize};
use stampede_plan::{CmpOp, Load, Metric, Plan, Threshold};

pub const RUN_SCHEMA: &str = "stampede.run/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    /// Ctrl-C.
    Interrupted,
    /// A threshold with `abort_on_fail` failed.
    Aborted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub schema: String,
    pub name: String,
    pub plan_file: String,
    pub tool_version: String,
    pub host: String,
    pub os: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    pub status: RunStatus,
    #[serde(default)]
    pub target: Option<String>,
    pub workers: usize,
    /// `i/N` of a distributed run.
    pub segment: String,
    pub phases: Vec<PhaseMeta>,
    pub steps: Vec<String>,
    pub thresholds: Vec<ThresholdSpec>,
    /// How this run departs from its plan (e.g. phases compressed by `--quick`).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The origins' names as resolved before the run, and how long each lookup took.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<Resolved>,
}

/// One origin's name lookup at the start of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolved {
    /// `host:port` as the plan names it.
    pub origin: String,
    pub addrs: Vec<String>,
    pub lookup_ms: f64,
}

/// A phase as configured (the measured side is in the intervals).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseMeta {
    pub name: String,
    /// closed | ramping_vus | open | ramping_rate | iterations
    pub model: String,
    /// One line, e.g. "30 VUs for 5m" or "50/s for 1m (max 200 VUs)".
    pub description: String,
    pub scenarios: Vec<String>,
    /// Configured length in seconds (without grace).
    pub planned_s: f64,
    /// Peak VUs (closed) or peak arrival rate per second (open).
    pub peak: f64,
}

/// A threshold as stored: enough to evaluate it again from the run directory alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdSpec {
    pub expr: String,
    /// avg | min | max | pNN | error_rate | rps
    pub metric: String,
    /// < | <= | > | >=
    pub op: String,
    /// ms for latency, a fraction for error_rate, per second for rps.
    pub value: f64,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub abort_on_fail: bool,
}

impl ThresholdSpec {
    pub fn from_plan(t: &Threshold) -> ThresholdSpec {
        ThresholdSpec {
            expr: t.expr.clone(),
            metric: match t.metric {
                Metric::Avg => "avg".into(),
                Metric::Min => "min".into(),
                Metric::Max => "max".into(),
                Metric::Percentile(q) => format!("p{q}"),
                Metric::ErrorRate => "error_rate".into(),
                Metric::Rps => "rps".into(),
            },
            op: match t.op {
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            }
            .into(),
            value: t.value,
            phase: t.scope.phase.clone(),
            step: t.scope.step.clone(),
            abort_on_fail: t.abort_on_fail,
        }
    }

    pub fn metric(&self) -> Option<Metric> {
        Some(match self.metric.as_str() {
            "avg" => Metric::Avg,
            "min" => Metric::Min,
            "max" => Metric::Max,
            "error_rate" => Metric::ErrorRate,
            "rps" => Metric::Rps,
            m => Metric::Percentile(m.strip_prefix('p')?.parse().ok()?),
        })
    }

    pub fn op(&self) -> Option<CmpOp> {
        Some(match self.op.as_str() {
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }

    /// Whether this threshold is evaluated for the phase named `phase`.
    pub fn applies_to(&self, phase: &str) -> bool {
        self.phase.as_deref().is_none_or(|p| p == phase)
    }
}

fn fmt_dur(s: f64) -> String {
    let s = s.round() as u64;
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

impl PhaseMeta {
    pub fn from_plan(plan: &Plan, index: usize) -> PhaseMeta {
        let p = &plan.phases[index];
        let scenarios = p
            .mix
            .iter()
            .map(|w| {
                let name = plan.scenarios[w.scenario].name.clone();
                if p.mix.len() > 1 {
                    format!("{name} (weight {})", w.weight)
                } else {
                    name
                }
            })
            .collect();
        let stages_text = |start: f64, stages: &[stampede_plan::Stage], unit: &str| {
            let mut s = format!("{start}{unit}");
            for st in stages {
                s.push_str(&format!(
                    " → {}{unit} over {}",
                    st.target,
                    fmt_dur(st.duration.as_secs_f64())
                ));
            }
            s
        };
        let (model, description, planned_s, peak) = match &p.load {
            Load::Closed { vus, duration } => (
                "closed",
                format!("{vus} VUs for {}", fmt_dur(duration.as_secs_f64())),
                duration.as_secs_f64(),
                *vus as f64,
            ),
            Load::RampingVus { start_vus, stages } => (
                "ramping_vus",
                format!("ramping VUs {}", stages_text(*start_vus as f64, stages, "")),
                stages.iter().map(|s| s.duration.as_secs_f64()).sum(),
                stages.iter().map(|s| s.target).fold(*start_vus as f64, f64::max),
            ),
            Load::Open {
                rate,
                duration,
                max_vus,
                ..
            } => (
                "open",
                format!("{rate}/s for {} (max {max_vus} VUs)", fmt_dur(duration.as_secs_f64())),
                duration.as_secs_f64(),
                *rate,
            ),
            Load::RampingRate {
                start_rate,
                stages,
                max_vus,
                ..
            } => (
                "ramping_rate",
                format!(
                    "ramping rate {} (max {max_vus} VUs)",
                    stages_text(*start_rate, stages, "/s")
                ),
                stages.iter().map(|s| s.duration.as_secs_f64()).sum(),
                stages.iter().map(|s| s.target).fold(*start_rate, f64::max),
            ),
            Load::Iterations {
                vus,
                iterations,
                max_duration,
            } => (
                "iterations",
                format!(
                    "{iterations} iterations on {vus} VUs (at most {})",
                    fmt_dur(max_duration.as_secs_f64())
                ),
                max_duration.as_secs_f64(),
                *vus as f64,
            ),
        };
        PhaseMeta {
            name: p.name.clone(),
            model: model.into(),
            description,
            scenarios,
            planned_s,
            peak,
        }
    }
}
