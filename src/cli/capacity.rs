//! `stampede capacity`: the search for the load level where the SLO breaks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::host;
use super::run::{default_out, parse_duration_arg};
use super::{load_plan, parse_var, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK};
use crate::analysis::Capacity;
use crate::capacity::{conclude, search, Model, SearchOptions};
use crate::engine::Controls;
use crate::report::terminal::{render_capacity, render_capacity_step};
use crate::rundir::ThresholdSpec;
use crate::runner::{RunError, RunOutcome, RunnerOptions, Session};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModelArg {
    /// The load is a number of VUs, each looping over the scenario.
    Closed,
    /// The load is an arrival rate (iterations per second).
    Open,
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The plan file (YAML); its `phases` are not used and may be left out.
    plan: PathBuf,
    /// The scenario to load the system with.
    #[arg(long)]
    scenario: String,
    /// The SLO, comma-separated thresholds, e.g. "p95 < 500ms, error_rate < 5%".
    #[arg(long)]
    slo: String,
    /// Closed (VUs) or open (arrivals/s) load model.
    #[arg(long, value_enum, default_value_t = ModelArg::Closed)]
    model: ModelArg,
    /// The first load level (default: 1 VU, or 5 arrivals/s in the open model).
    #[arg(long, value_parser = parse_positive)]
    min: Option<f64>,
    /// Most VUs ever run (closed: the largest load level; open: the VU cap). Default 1000.
    #[arg(long, value_parser = parse_count)]
    max_vus: Option<u32>,
    /// Open model: the largest arrival rate ever run (per second). Default 10000.
    #[arg(long, value_parser = parse_positive)]
    max_rate: Option<f64>,
    /// Measured length of each step, after the warm-up; extended up to 3× until the p95 is stable.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration_arg)]
    step_duration: Duration,
    /// Discarded at the start of each step.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration_or_zero)]
    warmup: Duration,
    /// Length of the final ramp from the last level down to zero ("0s": none).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration_or_zero)]
    ramp_down: Duration,
    /// Safety margin of the recommendation: a fraction (0.2) or a percentage (20%).
    #[arg(long, default_value = "0.2", value_parser = parse_margin)]
    margin: f64,
    /// Print the result as JSON (the `capacity` object of the summary, plus `run_dir`).
    #[arg(long)]
    json: bool,
    /// The run directory to write (default: runs/<timestamp>-<plan name>-capacity).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Set a plan variable (overrides `vars:` and `${K}` from the environment).
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Load-generating threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Seed for the random choices of templates, think times and scenario mixes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No live progress.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    live: super::dashboard::LiveArgs,
}

fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number above 0")),
    }
}

fn parse_count(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("`{s}` is not a whole number above 0")),
    }
}

fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    stampede_plan::parse_duration(s)
}

fn parse_margin(s: &str) -> Result<f64, String> {
    let (v, scale) = match s.trim().strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (s.trim(), 1.0),
    };
    match v.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&(f / scale)) => Ok(f / scale),
        _ => Err(format!("`{s}` is not a margin between 0 and 1 (or 0% and 100%)")),
    }
}

fn invalid(msg: String) -> u8 {
    eprintln!("error: {msg}");
    EXIT_INVALID
}

pub fn capacity(a: CapacityArgs) -> u8 {
    let plan = match load_plan(&a.plan, &a.vars) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(scenario_index) = plan.scenarios.iter().position(|s| s.name == a.scenario) else {
        let names: Vec<_> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
        return invalid(format!(
            "--scenario {}: the plan has no such scenario (it has: {})",
            a.scenario,
            names.join(", ")
        ));
    };
    let slo: Vec<ThresholdSpec> = match stampede_plan::parse_thresholds(&a.slo) {
        Ok(v) => v.iter().map(crate::describe::threshold_spec).collect(),
        Err(e) => return invalid(format!("--slo: {e}")),
    };
    let model = match a.model {
        ModelArg::Closed => Model::Closed,
        ModelArg::Open => Model::Open,
    };
    let max_vus = a.max_vus.unwrap_or(1000);
    let max = match model {
        Model::Closed => {
            if a.max_rate.is_some() {
                return invalid("--max-rate applies to --model open; the closed model is capped by --max-vus".into());
            }
            max_vus as f64
        }
        Model::Open => a.max_rate.unwrap_or(10_000.0),
    };
    let min = a.min.unwrap_or(match model {
        Model::Closed => 1.0,
        Model::Open => 5.0,
    });
    if min > max {
        return invalid(format!(
            "--min {min} is above the maximum load ({max} {})",
            model.unit()
        ));
    }
    if model == Model::Closed && min.fract() != 0.0 {
        return invalid(format!("--min {min}: the closed model runs whole VUs"));
    }
    let opts = SearchOptions {
        model,
        scenario: a.scenario.clone(),
        scenario_index,
        slo,
        min,
        max,
        max_vus,
        step_duration: a.step_duration,
        warmup: a.warmup,
        ramp_down: a.ramp_down,
        growth: 2.0,
        margin: a.margin,
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| default_out(&format!("{}-capacity", plan.name)));
    let runner = RunnerOptions {
        plan_file: a.plan.display().to_string(),
        phases: Vec::new(),
        out,
        workers: a.workers.unwrap_or_else(host::cores).max(1),
        segment: crate::rundir::Segment::WHOLE,
        start_at: None,
        plan_sha256: None,
        share_dir: None,
        seed: a.seed,
        progress: !a.quiet && !a.json,
        notes: vec![format!(
            "capacity search ({} model, scenario {}, SLO {}): one phase per load level; levels past the breaking point fail the SLO by design",
            model.as_str(),
            a.scenario,
            a.slo
        )],
        http_debug: None,
        note: None,
        remote: a.live.outputs.clone(),
    };
    let verbose = !a.quiet && !a.json;
    let dash = match a.live.open_dashboard() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let run = |controls: Controls, host| async move {
        let interrupted = controls.stop.clone();
        let serving = dash.and_then(super::dashboard::LiveDashboard::serve);
        let result = async {
            let mut session = Session::create(plan, &runner, host, controls, host::now_rfc3339)?;
            session.add_remote_outputs(&runner);
            if let Some(s) = &serving {
                // The number of levels is the search's to find: findings after each of them.
                s.attach(&mut session, None);
            }
            session.set_thresholds(opts.slo.clone())?;
            let searched = search(&mut session, &opts, |row| {
                if verbose {
                    eprintln!("{}", render_capacity_step(row));
                }
            })
            .await
            .map_err(|crate::capacity::SearchError::Run(e)| e)?;
            let cap = conclude(&opts, &searched);
            session.write_json("capacity.json", &cap)?;
            let outcome = session.finish().await?;
            Ok::<_, RunError>((cap, outcome))
        }
        .await;
        (result, interrupted.is_cancelled(), serving)
    };
    let json = a.json;
    let then = |(result, interrupted, serving): (
        Result<(Capacity, RunOutcome), RunError>,
        bool,
        Option<super::dashboard::Serving>,
    )| async move {
        if let (Some(s), Ok((_, outcome))) = (&serving, &result) {
            s.publish_final(&outcome.summary);
        }
        let code = show(json, result, interrupted);
        if let Some(s) = serving {
            s.end(code != EXIT_INVALID).await;
        }
        code
    };
    match super::live::with_run_runtime_then("finishing requests in flight and keeping what was measured", run, then) {
        Ok(code) => code,
        Err(code) => code,
    }
}

/// Prints the search's outcome (the table or JSON, the paths) and gives the exit code.
fn show(json: bool, result: Result<(Capacity, RunOutcome), RunError>, interrupted: bool) -> u8 {
    match result {
        // The environment (an `--out` that exists, is read-only or full): exit 2, as for `run`.
        Err(e) => invalid(e.to_string()),
        Ok((cap, outcome)) => {
            // The report gains its Capacity section from capacity.json.
            let reports = super::live::write_reports(&outcome, crate::report::lang::Lang::En);
            if json {
                let mut v = match serde_json::to_value(&cap) {
                    Ok(v) => v,
                    Err(e) => return invalid(format!("the capacity result cannot be written as JSON: {e}")),
                };
                if let Some(o) = v.as_object_mut() {
                    o.insert("run_dir".into(), outcome.dir.display().to_string().into());
                }
                outln!("{v:#}");
            } else {
                out!("{}", render_capacity(&cap));
                outln!("run directory: {}", outcome.dir.display());
                outln!("capacity: {}", outcome.dir.join("capacity.json").display());
                if let Some((md, html)) = &reports {
                    outln!("report: {}", md.display());
                    outln!("report: {}", html.display());
                }
            }
            if super::live::incomplete(&outcome) {
                EXIT_INVALID
            } else if interrupted {
                EXIT_INTERRUPTED
            } else {
                EXIT_OK
            }
        }
    }
}
