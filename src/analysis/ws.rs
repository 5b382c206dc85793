//! A WebSocket step's summary (`ws: { … }`) from its counters (kept on the step itself, its
//! named replies' included) and its `<step>:connect` attempts, recorded as a step of the phase.

use std::collections::BTreeMap;

use super::aggregate::{PhaseAgg, StepAgg};
use super::summary::{latency, r3, rate};
use crate::recorder::{Count, CLOSE_PREFIX};
use crate::rundir::summary::WsSummary;

/// `None` for a step that is not a WebSocket step (it has no WebSocket counters).
pub(super) fn summary(s: &StepAgg, agg: &PhaseAgg) -> Option<WsSummary> {
    let c = |k: Count| s.counters.get(&k.name()).copied().unwrap_or(0);
    let attempts = c(Count::WsConnects);
    if attempts == 0 {
        return None;
    }
    let connect_name = format!("{}:connect", s.name);
    let connect = agg.steps.iter().find(|x| x.name == connect_name);
    let (replies, lost) = (c(Count::WsAwaited), c(Count::WsLost));
    let failed = c(Count::WsConnectFailed);
    let reconnects = c(Count::WsReconnects);
    let close_codes: BTreeMap<String, u64> = s
        .counters
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(CLOSE_PREFIX)?.to_string(), *v)))
        .collect();
    Some(WsSummary {
        connections: attempts - failed,
        connect_failed: failed,
        connect_failed_rate: rate(failed, attempts),
        connect_ms: connect.and_then(|x| latency(&x.latency)),
        messages_sent: c(Count::WsSent),
        messages_received: c(Count::WsReceived),
        lost,
        lost_rate: rate(lost, replies),
        dropped_connections: c(Count::WsDropped),
        reconnects,
        reconnect_ms_avg: (reconnects > 0).then(|| r3(c(Count::WsReconnectMs) as f64 / reconnects as f64)),
        pushes: c(Count::WsPushes),
        sequence_gaps: c(Count::WsGaps),
        duplicates: c(Count::WsDuplicates),
        close_codes,
    })
}
