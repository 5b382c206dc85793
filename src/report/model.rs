//! The report model: everything a report says, computed once from a run directory's
//! [`Analysis`]. Every format (Markdown, HTML, JSON, JUnit) renders this model, so they can
//! never disagree; the JSON format is this model serialized (`stampede.report/v1`).

use crate::describe::SpecTerms;
use serde::Serialize;
use stampede_plan::CmpOp;

use super::terminal::{ms, pct};
use crate::analysis::series::{ServerSeries, Timeline};
use stampede_rundir::named_enum;

use crate::analysis::{Analysis, PhaseSummary, Summary, ThresholdResult, Verdict};
use crate::outcome::{classify, ErrorClass};
use crate::rundir::ThresholdSpec;

pub const REPORT_SCHEMA: &str = "stampede.report/v1";

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: String,
    pub title: String,
    /// When the run started (RFC 3339).
    pub date: String,
    pub target: Option<String>,
    pub plan: String,
    pub plan_file: String,
    pub environment: Environment,
    pub phases_run: Vec<String>,
    pub notes: Vec<String>,
    /// The plan's `about:`: objectives, test environment, software versions.
    #[serde(skip_serializing_if = "crate::rundir::About::is_empty")]
    pub about: crate::rundir::About,
    pub verdict: Verdict,
    pub verdict_label: String,
    /// Thresholds that failed, one line each with measured vs limit.
    pub failures: Vec<String>,
    pub conditions: Vec<String>,
    pub executive: Executive,
    pub sla: Vec<SlaRow>,
    pub phases: Vec<PhaseReport>,
    pub timeline: Timeline,
    /// Server-side series worth a chart beside the latency (from `monitors.jsonl`).
    #[serde(default)]
    pub server_series: Vec<ServerSeries>,
    /// The `stampede.summary/v1` summary this report was made from, unchanged.
    pub summary: Summary,
    /// Later runs compared with the one before them (`stampede report RUN --update LATER`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<super::update::Update>,
    /// A merged run's shares (`stampede merge`): segment, host, start, counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<crate::rundir::Generator>,
    /// The language Markdown and HTML are written in (`--lang`); JSON and JUnit stay English,
    /// the machine-read contract.
    #[serde(skip)]
    pub lang: super::lang::Lang,
}

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub tool_version: String,
    pub host: String,
    pub os: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub workers: usize,
    pub segment: String,
}

/// Phases as columns, key metrics as rows, the target beside each (the voice seed's table).
#[derive(Debug, Clone, Serialize)]
pub struct Executive {
    pub phases: Vec<String>,
    pub rows: Vec<ExecRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecRow {
    pub metric: String,
    /// One formatted cell per phase (with ✅/⚠️/❌ when a threshold judges it).
    pub cells: Vec<String>,
    /// The limits that apply, e.g. "< 500ms"; empty when no threshold exists.
    pub target: String,
}

named_enum! {
    /// How a threshold fared.
    pub enum Status {
        Pass = "pass",
        /// Passed, but within 10% of the limit.
        Near = "near",
        Fail = "fail",
    }
}

impl Status {
    pub fn icon(self) -> &'static str {
        match self {
            Status::Pass => "✅",
            Status::Near => "⚠️",
            Status::Fail => "❌",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Near => "within 10% of the limit",
            Status::Fail => "fail",
        }
    }
    pub fn of(t: &ThresholdResult) -> Status {
        if !t.passed {
            Status::Fail
        } else if t.near_limit {
            Status::Near
        } else {
            Status::Pass
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SlaRow {
    pub phase: String,
    pub expr: String,
    pub step: Option<String>,
    pub measured: String,
    pub target: String,
    pub status: Status,
}

named_enum! {
    /// A phase's one-word assessment.
    pub enum Rating {
        /// Every threshold passed, the closest at no more than half its limit.
        Excellent = "EXCELLENT",
        Good = "GOOD",
        /// Every threshold passed, one within 10% of its limit.
        AtTheLimit = "AT THE LIMIT",
        /// A latency threshold failed.
        Degradation = "DEGRADATION",
        /// Only other thresholds (error rate, throughput) failed.
        Failed = "FAILED",
        NoTargets = "NO TARGETS",
        NoData = "NO DATA",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub rating: Rating,
    pub assessment: String,
    /// Sentences from the numbers: scaling against the phase before, slowest endpoint, tail.
    pub observations: Vec<String>,
    pub errors: ErrorReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub total: u64,
    pub configuration: u64,
    pub load: u64,
    pub check: u64,
    pub other: u64,
    /// Per endpoint and kind, largest first.
    pub rows: Vec<ErrorRow>,
    /// A sentence on what the errors mean; empty when there are none.
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorRow {
    pub step: String,
    pub kind: String,
    pub class: ErrorClass,
    pub count: u64,
    /// Of the endpoint's requests.
    pub share: f64,
}

/// Formats a threshold's value in its metric's unit.
pub fn fmt_value(metric: &str, v: f64) -> String {
    match crate::describe::metric_named(metric) {
        Some(
            stampede_plan::Metric::ErrorRate | stampede_plan::Metric::WsLostRate | stampede_plan::Metric::ConnectFailed,
        ) => pct(v),
        Some(stampede_plan::Metric::Rps) => format!("{v:.1} req/s"),
        _ => ms(v),
    }
}

/// A threshold result's metric: as the summary stored it, else (a summary from before it did)
/// from the run's threshold specs.
fn metric_of(t: &ThresholdResult, specs: &[ThresholdSpec]) -> String {
    if !t.metric.is_empty() {
        return t.metric.clone();
    }
    specs
        .iter()
        .find(|s| s.expr == t.expr)
        .map(|s| s.metric.clone())
        .unwrap_or_else(|| "p95".into())
}

fn target_text(s: &ThresholdSpec) -> String {
    format!("{} {}", s.op, fmt_value(&s.metric, s.value))
}

fn executive(summary: &Summary, specs: &[ThresholdSpec]) -> Executive {
    type Pick = fn(&PhaseSummary) -> Option<f64>;
    let rows: [(&str, &str, Pick); 4] = [
        ("p95 latency", "p95", |p| p.latency_ms.as_ref().map(|l| l.p95)),
        ("avg latency", "avg", |p| p.latency_ms.as_ref().map(|l| l.avg)),
        ("throughput", "rps", |p| Some(p.rps)),
        ("error rate", "error_rate", |p| Some(p.error_rate)),
    ];
    let rows = rows
        .iter()
        .map(|(label, metric, pick)| {
            let cells = summary
                .phases
                .iter()
                .map(|p| {
                    let v = match pick(p) {
                        Some(v) => fmt_value(metric, v),
                        None => return "-".to_string(),
                    };
                    // Judge the cell by the whole-phase threshold on this metric, if any.
                    let judged = p.thresholds.iter().filter(|t| t.step.is_none()).find(|t| {
                        specs
                            .iter()
                            .any(|s| s.expr == t.expr && s.metric == *metric && s.step.is_none())
                    });
                    match judged {
                        Some(t) => format!("{v} {}", Status::of(t).icon()),
                        None => v,
                    }
                })
                .collect();
            let mut targets: Vec<String> = Vec::new();
            for s in specs.iter().filter(|s| s.metric == *metric && s.step.is_none()) {
                let t = match &s.phase {
                    Some(p) => format!("{} ({p})", target_text(s)),
                    None => target_text(s),
                };
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
            ExecRow {
                metric: (*label).into(),
                cells,
                target: targets.join(", "),
            }
        })
        .collect();
    Executive {
        phases: summary
            .phases
            .iter()
            .map(|p| format!("{} ({})", p.name, p.description))
            .collect(),
        rows,
    }
}

fn sla(summary: &Summary, specs: &[ThresholdSpec]) -> Vec<SlaRow> {
    let mut out = Vec::new();
    for p in &summary.phases {
        for t in &p.thresholds {
            let metric = metric_of(t, specs);
            let op = specs
                .iter()
                .find(|s| s.expr == t.expr)
                .map(|s| s.op.clone())
                .unwrap_or_default();
            out.push(SlaRow {
                phase: p.name.clone(),
                expr: t.expr.clone(),
                step: t.step.clone(),
                measured: t
                    .value
                    .map(|v| fmt_value(&metric, v))
                    .unwrap_or_else(|| "no data".into()),
                target: format!("{op} {}", fmt_value(&metric, t.limit)).trim().to_string(),
                status: Status::of(t),
            });
        }
    }
    out
}

/// How much of a limit is used: value/limit for upper bounds, limit/value for lower bounds.
fn usage(t: &ThresholdResult, spec: Option<&ThresholdSpec>) -> Option<f64> {
    let v = t.value?;
    let lower_bound = spec.is_some_and(|s| matches!(s.op(), Some(CmpOp::Gt | CmpOp::Ge)));
    let u = if lower_bound {
        if v > 0.0 {
            t.limit / v
        } else {
            f64::INFINITY
        }
    } else if t.limit > 0.0 {
        v / t.limit
    } else if v > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Some(u)
}

fn assess(p: &PhaseSummary, specs: &[ThresholdSpec], errors: &ErrorReport) -> (Rating, String) {
    if p.requests == 0 {
        return (Rating::NoData, "no requests were measured in this phase".into());
    }
    let worst = p
        .thresholds
        .iter()
        .filter_map(|t| {
            let spec = specs.iter().find(|s| s.expr == t.expr);
            usage(t, spec).map(|u| (t, spec, u))
        })
        .max_by(|a, b| a.2.total_cmp(&b.2));
    let dropped = if p.dropped_iterations > 0 {
        format!("; {} arrivals were dropped", p.dropped_iterations)
    } else {
        String::new()
    };
    let Some((t, spec, u)) = worst else {
        let lat = p.latency_ms.as_ref().map(|l| ms(l.p95)).unwrap_or_else(|| "-".into());
        return (
            Rating::NoTargets,
            format!(
                "p95 {lat}, error rate {}; no thresholds apply to this phase{dropped}",
                pct(p.error_rate)
            ),
        );
    };
    let metric = spec.map(|s| s.metric.clone()).unwrap_or_else(|| metric_of(t, specs));
    let what = match &t.step {
        Some(s) => format!("{metric} of {s}"),
        None => metric.clone(),
    };
    let measured = t.value.map(|v| fmt_value(&metric, v)).unwrap_or_default();
    let limit = spec.map(target_text).unwrap_or_else(|| fmt_value(&metric, t.limit));
    if !t.passed {
        // Every failed threshold, latency first: a latency failure is the load story, while an
        // error rate may be configuration (said so when it is).
        let mut failed: Vec<(&ThresholdResult, Option<&ThresholdSpec>, f64)> = p
            .thresholds
            .iter()
            .filter(|t| !t.passed)
            .map(|t| {
                let spec = specs.iter().find(|s| s.expr == t.expr);
                (t, spec, usage(t, spec).unwrap_or(f64::NAN))
            })
            .collect();
        let is_errors = |t: &ThresholdResult, s: Option<&ThresholdSpec>| {
            let metric = s.map_or_else(|| metric_of(t, specs), |s| s.metric.clone());
            crate::describe::metric_named(&metric) == Some(stampede_plan::Metric::ErrorRate)
        };
        failed.sort_by_key(|(t, s, _)| is_errors(t, *s));
        let latency_failed = failed.iter().any(|(t, s, _)| !is_errors(t, *s));
        let parts: Vec<String> = failed
            .iter()
            .map(|(t, spec, u)| {
                let metric = spec.map(|s| s.metric.clone()).unwrap_or_else(|| metric_of(t, specs));
                let what = match &t.step {
                    Some(s) => format!("{metric} of {s}"),
                    None => metric.clone(),
                };
                let measured = t.value.map(|v| fmt_value(&metric, v)).unwrap_or_default();
                let limit = spec.map(target_text).unwrap_or_else(|| fmt_value(&metric, t.limit));
                let factor = if u.is_finite() {
                    format!("{u:.1}× over target")
                } else {
                    "over target".into()
                };
                let note = if metric == "error_rate" && errors.total > 0 && errors.configuration * 2 > errors.total {
                    " — mostly configuration errors, not load (see Errors)"
                } else {
                    ""
                };
                format!("{what} {factor} ({measured}, target {limit}){note}")
            })
            .collect();
        let rating = if latency_failed {
            Rating::Degradation
        } else {
            Rating::Failed
        };
        // Only non-latency limits failed: say how latency fared, as the seed reports do when
        // their error rate is configuration (their "EXCELLENT" baseline with 46% errors).
        let latency_note = if latency_failed {
            String::new()
        } else {
            p.thresholds
                .iter()
                .filter_map(|t| {
                    let spec = specs.iter().find(|s| s.expr == t.expr);
                    if is_errors(t, spec) || spec.is_some_and(|s| s.metric == "rps") {
                        return None;
                    }
                    usage(t, spec).map(|u| (t, spec, u))
                })
                .max_by(|a, b| a.2.total_cmp(&b.2))
                .map(|(t, spec, u)| {
                    let metric = spec.map(|s| s.metric.clone()).unwrap_or_else(|| metric_of(t, specs));
                    let grade = if t.near_limit {
                        "at the limit"
                    } else if u <= 0.5 {
                        "excellent"
                    } else {
                        "good"
                    };
                    format!("latency {grade} ({metric} at {:.0}% of its limit); ", u * 100.0)
                })
                .unwrap_or_default()
        };
        return (rating, format!("{latency_note}{}{dropped}", parts.join("; ")));
    }
    let rating = if t.near_limit {
        Rating::AtTheLimit
    } else if u <= 0.5 {
        Rating::Excellent
    } else {
        Rating::Good
    };
    (
        rating,
        format!(
            "{what} at {:.0}% of its limit ({measured}, target {limit}); every threshold passed{dropped}",
            u * 100.0
        ),
    )
}

fn error_report(p: &PhaseSummary) -> ErrorReport {
    // Per endpoint in plan order, each endpoint's kinds largest first.
    let mut rows = Vec::new();
    for s in &p.steps {
        let first = rows.len();
        for (kind, n) in &s.errors_by_kind {
            rows.push(ErrorRow {
                step: s.name.clone(),
                kind: kind.clone(),
                class: classify(kind),
                count: *n,
                share: if s.requests > 0 {
                    *n as f64 / s.requests as f64
                } else {
                    0.0
                },
            });
        }
        rows[first..].sort_by_key(|r| std::cmp::Reverse(r.count));
    }
    let get = |c: ErrorClass| p.errors_by_class.get(c.as_str()).copied().unwrap_or(0);
    let (configuration, load, check, other) = (
        get(ErrorClass::Configuration),
        get(ErrorClass::Load),
        get(ErrorClass::Check),
        get(ErrorClass::Other),
    );
    let total = configuration + load + check + other;
    let explanation = if total == 0 {
        String::new()
    } else {
        let share = |n: u64| {
            let v = n as f64 / total as f64 * 100.0;
            if n < total && v >= 99.5 {
                ">99%".to_string()
            } else if n > 0 && v < 0.5 {
                "<1%".to_string()
            } else {
                format!("{v:.0}%")
            }
        };
        let mut parts = Vec::new();
        if configuration > 0 {
            let mut kinds: Vec<String> = rows
                .iter()
                .filter(|r| r.class == ErrorClass::Configuration)
                .map(|r| format!("{} on {}", r.kind, r.step))
                .collect();
            kinds.truncate(3);
            parts.push(format!(
                "{configuration} ({}) are configuration errors ({}): the system rejected requests it is not set up for (authentication, missing routes or dependencies), which says nothing about its capacity",
                share(configuration),
                kinds.join(", ")
            ));
        }
        if load > 0 {
            parts.push(format!(
                "{load} ({}) are load errors (timeouts, 5xx, resets): the system failed under the load",
                share(load)
            ));
        }
        if check > 0 {
            parts.push(format!("{check} ({}) are failed checks on responses", share(check)));
        }
        if other > 0 {
            parts.push(format!("{other} ({}) are other errors (e.g. protocol)", share(other)));
        }
        let lead = if configuration * 2 > total {
            "Mostly configuration, not performance: "
        } else if load * 2 > total {
            "Mostly load: "
        } else {
            ""
        };
        format!(
            "{lead}of {total} errors ({} of requests), {}.",
            pct(p.error_rate),
            parts.join("; ")
        )
    };
    ErrorReport {
        total,
        configuration,
        load,
        check,
        other,
        rows,
        explanation,
    }
}

/// The report of a run, from its analysis (see [`crate::analysis::analyze_dir`]).
pub fn build(analysis: Analysis) -> Report {
    let Analysis {
        meta,
        summary,
        timeline,
        server,
        seconds: _,
    } = analysis;
    let specs = &meta.thresholds;
    let phases = summary
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let errors = error_report(p);
            let (rating, assessment) = assess(p, specs, &errors);
            let before = summary.phases[..i].iter().rev().find(|b| b.requests > 0);
            PhaseReport {
                name: p.name.clone(),
                rating,
                assessment,
                observations: super::observe::observations(p, before),
                errors,
            }
        })
        .collect();
    let sla_rows = sla(&summary, specs);
    Report {
        schema: REPORT_SCHEMA.into(),
        title: format!("Load test report: {}", meta.name),
        date: meta.started_at.clone(),
        target: meta.target.clone(),
        plan: meta.name.clone(),
        plan_file: meta.plan_file.clone(),
        environment: Environment {
            tool_version: meta.tool_version.clone(),
            host: meta.host.clone(),
            os: meta.os.clone(),
            cores: meta.cores,
            memory_bytes: meta.memory_bytes,
            workers: meta.workers,
            segment: meta.segment.to_string(),
        },
        phases_run: summary.phases.iter().map(|p| p.name.clone()).collect(),
        notes: meta.notes.clone(),
        about: meta.about.clone(),
        verdict: summary.verdict,
        verdict_label: summary.verdict.label().into(),
        failures: sla_rows
            .iter()
            .filter(|r| r.status == Status::Fail)
            .map(|r| {
                let step = r.step.as_ref().map(|s| format!(" [{s}]")).unwrap_or_default();
                format!(
                    "{}: {}{step} failed (measured {}, target {})",
                    r.phase, r.expr, r.measured, r.target
                )
            })
            .collect(),
        // The run's notes (e.g. a --quick rehearsal) are conditions of the verdict too, but the
        // header already lists them: say each thing once.
        conditions: summary
            .conditions
            .iter()
            .filter(|c| !meta.notes.contains(c))
            .cloned()
            .collect(),
        executive: executive(&summary, specs),
        sla: sla_rows,
        phases,
        timeline,
        server_series: server,
        summary,
        updates: Vec::new(),
        generators: meta.generators.clone(),
        lang: super::lang::Lang::En,
    }
}

/// `16.0 GiB`.
pub fn memory(bytes: u64) -> String {
    if bytes == 0 {
        "unknown".into()
    } else {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}
