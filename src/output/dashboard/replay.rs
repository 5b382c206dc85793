//! `stampede dashboard RUN_DIR`: a finished run's intervals (streamed from `intervals.jsonl` by
//! the run directory reader) and monitor records fed through the live [`EventBuilder`], with
//! the phase aggregates the runner would have held, so the page shows what it showed live.

use std::path::Path;
use std::time::Duration;

use super::event::EventBuilder;
use super::hub::Hub;
use super::summary_json;
use crate::analysis::PhaseAgg;
use crate::monitor::latest::MonitorState;
use crate::output::PhaseView;
use crate::rundir::{read_meta, read_monitors, Intervals, RunDirError};

/// What a replay sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub events: u64,
    /// Unreadable lines of `intervals.jsonl` passed over (a torn last line after `kill -9`).
    pub skipped: usize,
}

/// Checks that `dir` is a run directory the replay can read, before anything is served.
pub fn check(dir: &Path) -> Result<(), RunDirError> {
    read_meta(dir).map(|_| ())
}

/// Publishes every event of the run in `dir` to `hub`, then its summary (findings, thresholds)
/// as the final `summary` event. `speed`: `None` sends everything at once; `Some(f)` paces the
/// events at `f` times the run's own pace (1 = as it ran).
pub async fn replay(dir: &Path, hub: &Hub, speed: Option<f64>) -> Result<Replayed, RunDirError> {
    let meta = read_meta(dir)?;
    let (mut records, _) = read_monitors(dir)?;
    records.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut records = records.into_iter().peekable();
    let mut monitors = MonitorState::default();
    let mut builder = EventBuilder::new();
    let mut intervals = Intervals::open(dir)?;
    let mut current: Option<(usize, f64, PhaseAgg)> = None;
    let mut sent = 0;
    while let Some(iv) = intervals.next_interval()? {
        if current.as_ref().is_none_or(|(_, _, agg)| agg.name != iv.phase) {
            let index = meta.phases.iter().position(|p| p.name == iv.phase).unwrap_or(0);
            let planned = meta.phases.get(index).map_or(0.0, |p| p.planned_s);
            current = Some((index, planned, PhaseAgg::new(&iv.phase)));
        }
        let Some((index, planned_s, agg)) = current.as_mut() else {
            continue;
        };
        agg.add(&iv);
        let end = iv.t + iv.dur;
        while let Some(r) = records.next_if(|r| r.t <= end) {
            monitors.apply(&r);
        }
        let view = PhaseView {
            index: *index,
            name: &agg.name,
            planned_s: *planned_s,
            elapsed_s: end - agg.start_t,
            agg,
        };
        let ev = builder.event(&iv, &view, &monitors.records());
        if let Ok(json) = serde_json::to_string(&ev) {
            hub.publish(&json);
            sent += 1;
        }
        if let Some(f) = speed {
            tokio::time::sleep(Duration::from_secs_f64((iv.dur / f).clamp(0.0, 60.0))).await;
        }
    }
    let dir = dir.to_path_buf();
    let summary = tokio::task::spawn_blocking(move || crate::analysis::summarize_dir(&dir)).await;
    if let Ok(Ok(s)) = summary {
        hub.publish_summary(&summary_json(&s, None, true), true);
    }
    Ok(Replayed {
        events: sent,
        skipped: intervals.skipped.len(),
    })
}
