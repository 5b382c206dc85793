//! The latest sample of each monitor, shared with live outputs (the dashboard shows the
//! server's numbers beside the client's). The monitors' writer task updates it as it writes
//! `monitors.jsonl`; a reader takes a copy once per second.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{MonitorRecord, RecordSink};

/// Each monitor's latest record as of a time. A failure keeps the last series and adds the
/// error; the next sample clears it.
#[derive(Debug, Default, Clone)]
pub struct MonitorState {
    latest: BTreeMap<String, MonitorRecord>,
}

impl MonitorState {
    pub fn apply(&mut self, rec: &MonitorRecord) {
        match self.latest.get_mut(&rec.monitor) {
            Some(held) if rec.error.is_some() && rec.series.is_empty() => held.error = rec.error.clone(),
            _ => {
                self.latest.insert(rec.monitor.clone(), rec.clone());
            }
        }
    }

    pub fn records(&self) -> Vec<MonitorRecord> {
        self.latest.values().cloned().collect()
    }
}

/// A [`MonitorState`] shared between the monitors' writer and the runner's task.
#[derive(Debug, Default, Clone)]
pub struct Latest(Arc<Mutex<MonitorState>>);

impl Latest {
    pub fn apply(&self, rec: &MonitorRecord) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).apply(rec);
    }

    pub fn records(&self) -> Vec<MonitorRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).records()
    }
}

/// A sink that writes to `sink` and keeps the latest record in `latest`.
pub struct Tee<S> {
    pub sink: S,
    pub latest: Latest,
}

impl<S: RecordSink> RecordSink for Tee<S> {
    fn write(&mut self, rec: &MonitorRecord) {
        self.sink.write(rec);
        self.latest.apply(rec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: f64, v: Option<f64>, error: Option<&str>) -> MonitorRecord {
        MonitorRecord {
            t,
            monitor: "db".into(),
            series: v.map(|v| [("in_use".to_string(), v)].into()).unwrap_or_default(),
            error: error.map(String::from),
        }
    }

    #[test]
    fn a_failure_keeps_the_last_values_and_a_sample_clears_it() {
        let mut s = MonitorState::default();
        s.apply(&rec(1.0, Some(3.0), None));
        s.apply(&rec(2.0, None, Some("refused")));
        let r = &s.records()[0];
        assert_eq!(
            (r.t, r.series["in_use"], r.error.as_deref()),
            (1.0, 3.0, Some("refused"))
        );
        s.apply(&rec(3.0, Some(4.0), None));
        let r = &s.records()[0];
        assert_eq!((r.t, r.series["in_use"], r.error.as_deref()), (3.0, 4.0, None));
    }
}
