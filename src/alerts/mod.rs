//! `stampede alerts PLAN|RUN_DIR`: Prometheus alerting rules from what the plan promises (its
//! thresholds) and what it watches (its monitors), so the team configures the alerts the test
//! report asks for from the same numbers the test judged (docs/alerts.md).
//!
//! Two groups: the system under test (`system.rs`, for the metric names of the system's own
//! exporters) and stampede's own series (`slo.rs`, what `--output prometheus-rw` pushes). The
//! rules are values serialized by serde-saphyr, never YAML written as text.

mod slo;
mod system;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use stampede_plan::{Monitor, Plan};
use stampede_rundir::summary::{ServerMetric, Summary};
use stampede_rundir::{RunDirError, ThresholdSpec};

/// A Prometheus rule file (`promtool check rules` format).
#[derive(Debug, Clone, Serialize)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// One alerting rule; `for` is a Prometheus duration (`2m`).
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// What the rules are written from: a plan, or a run directory (its plan and what it measured).
#[derive(Debug, Clone)]
pub struct Source {
    pub plan_name: String,
    pub plan_file: String,
    pub thresholds: Vec<ThresholdSpec>,
    pub monitors: Vec<Monitor>,
    pub run: Option<RunFacts>,
}

/// What a run measured, for the warning levels and the annotations.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// The run directory's name.
    pub id: String,
    pub started_at: String,
    pub summary: Summary,
}

impl RunFacts {
    /// The worst value a threshold measured over the phases it applies to, and that phase.
    pub fn measured(&self, t: &ThresholdSpec) -> Option<(f64, String)> {
        self.summary
            .phases
            .iter()
            .filter(|p| t.applies_to(&p.name))
            .flat_map(|p| {
                p.thresholds
                    .iter()
                    .filter(|r| r.expr == t.expr && r.step == t.step)
                    .filter_map(|r| r.value.map(|v| (v, p.name.clone())))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// The server series `name` over the run: its lowest min and highest max over the phases.
    pub fn server(&self, name: &str) -> Option<(f64, f64)> {
        let all: Vec<&ServerMetric> = self
            .summary
            .phases
            .iter()
            .flat_map(|p| p.server.iter().filter(|m| m.name == name))
            .collect();
        if all.is_empty() {
            return None;
        }
        let min = all.iter().map(|m| m.min).fold(f64::INFINITY, f64::min);
        let max = all.iter().map(|m| m.max).fold(f64::NEG_INFINITY, f64::max);
        Some((min, max))
    }

    /// Every server series name the run recorded for monitor `monitor` (without its prefix).
    pub fn series_of(&self, monitor: &str) -> Vec<String> {
        let prefix = format!("{monitor}.");
        let mut out: Vec<String> = self
            .summary
            .phases
            .iter()
            .flat_map(|p| p.server.iter())
            .filter_map(|m| m.name.strip_prefix(&prefix).map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("{0}: not a run directory stampede can read: {1}")]
    RunDir(String, #[source] RunDirError),
    #[error("{0}: the run's plan.json cannot be read: {1}")]
    PlanJson(String, String),
    #[error("{0}: nothing to alert on: the plan has no latency or error-rate threshold (avg, pNN, error_rate) and no monitor with a rule (postgres, redis, host, or a prometheus monitor with pool or cache families); add `thresholds:` or `monitors:` (docs/alerts.md)")]
    Nothing(String),
    #[error("the rules cannot be written as YAML: {0}")]
    Yaml(String),
}

/// The source of a plan file.
pub fn from_plan(plan: &Plan, file: &Path) -> Source {
    Source {
        plan_name: plan.name.clone(),
        plan_file: file.display().to_string(),
        thresholds: plan.thresholds.iter().map(crate::describe::threshold_spec).collect(),
        monitors: plan.monitors.clone(),
        run: None,
    }
}

/// The source of a run directory: its thresholds from `meta.json`, its monitors from
/// `plan.json`, what it measured from the analysis pass (the same as `stampede summary`).
pub fn from_run(dir: &Path) -> Result<Source, AlertsError> {
    let shown = dir.display().to_string();
    let analysis = crate::analysis::analyze_dir(dir).map_err(|e| AlertsError::RunDir(shown.clone(), e))?;
    let monitors = run_monitors(dir).map_err(|e| AlertsError::PlanJson(shown.clone(), e))?;
    let id = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| shown.clone());
    Ok(Source {
        plan_name: analysis.meta.name.clone(),
        plan_file: analysis.meta.plan_file.clone(),
        thresholds: analysis.meta.thresholds.clone(),
        monitors,
        run: Some(RunFacts {
            id,
            started_at: analysis.meta.started_at.clone(),
            summary: analysis.summary,
        }),
    })
}

/// The monitors of the run's plan: `plan.json`'s `monitors` read by the plan loader itself (a
/// plan of monitors only), so names and kinds are exactly what the run used.
fn run_monitors(dir: &Path) -> Result<Vec<Monitor>, String> {
    let text = match std::fs::read_to_string(dir.join("plan.json")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let plan: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let Some(monitors) = plan
        .get("monitors")
        .filter(|m| m.as_array().is_some_and(|a| !a.is_empty()))
    else {
        return Ok(Vec::new());
    };
    let src = serde_json::json!({ "monitors": monitors }).to_string();
    let env = |_: &str| None;
    let opts = stampede_plan::LoadOptions {
        vars: Vec::new(),
        env: &env,
    };
    stampede_plan::load_str(&src, "plan.json", dir, &opts)
        .map(|p| p.monitors)
        .map_err(|e| e.to_string())
}

/// The rules of a source, and notes on what got no rule and why (for stderr).
pub fn rules(src: &Source) -> Result<(RuleFile, Vec<String>), AlertsError> {
    let mut notes = Vec::new();
    let system = system::rules(src, &mut notes);
    let own = slo::rules(src, &mut notes);
    if system.is_empty() && own.is_empty() {
        return Err(AlertsError::Nothing(src.plan_file.clone()));
    }
    let mut groups = Vec::new();
    if !system.is_empty() {
        groups.push(Group {
            name: format!("{}: system under test", src.plan_name),
            rules: system,
        });
    }
    if !own.is_empty() {
        groups.push(Group {
            name: format!("{}: SLOs on stampede's series", src.plan_name),
            rules: own,
        });
    }
    Ok((RuleFile { groups }, notes))
}

/// The rule file as YAML.
pub fn to_yaml(file: &RuleFile) -> Result<String, AlertsError> {
    serde_saphyr::to_string(file).map_err(|e| AlertsError::Yaml(e.to_string()))
}

/// The severity of a rule, and its level.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Severity {
    Warning,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A rule with the common labels and annotations; `extra` labels scope it (phase, step, monitor).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rule(
    src: &Source,
    alert: &str,
    severity: Severity,
    expr: String,
    for_: &str,
    extra: &[(&str, &str)],
    summary: String,
    description: String,
) -> Rule {
    let mut labels = BTreeMap::from([("severity".to_string(), severity.as_str().to_string())]);
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    let mut annotations = BTreeMap::from([
        ("summary".to_string(), summary),
        ("description".to_string(), description),
        ("plan".to_string(), format!("{} ({})", src.plan_name, src.plan_file)),
    ]);
    if let Some(r) = &src.run {
        annotations.insert("run".to_string(), format!("{} (started {})", r.id, r.started_at));
    }
    Rule {
        alert: alert.to_string(),
        expr,
        for_: for_.to_string(),
        labels,
        annotations,
    }
}

/// A number as PromQL and people read it: at most 6 decimals, no trailing zeros.
pub(crate) fn num(x: f64) -> String {
    let r = (x * 1e6).round() / 1e6;
    format!("{r}")
}

/// A PromQL label matcher list `{k="v",…}` (empty when there are none), values escaped.
pub(crate) fn selector(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_selectors_are_promql() {
        assert_eq!(num(0.3), "0.3");
        assert_eq!(num(0.6 * 0.5), "0.3");
        assert_eq!(num(0.005), "0.005");
        assert_eq!(num(2.0), "2");
        assert_eq!(selector(&[]), "");
        assert_eq!(
            selector(&[("step".into(), "GET \"/a\\b\"".into())]),
            "{step=\"GET \\\"/a\\\\b\\\"\"}"
        );
    }
}
