//! The report's WebSocket section, shaped like the insurance seed's "WebSocket Connection
//! Test": per phase and WebSocket step, connections that opened out of those tried, message
//! latency, drops and reconnects, message loss, pushes and concurrent connections.

use super::document::{bullets, own, strong, text, title, Block};
use super::terminal::{count, ms, pct};
use crate::analysis::Summary;

/// No blocks when the run had no WebSocket step.
pub fn blocks(s: &Summary) -> Vec<Block> {
    let mut out = Vec::new();
    for p in &s.phases {
        for st in &p.steps {
            let Some(w) = &st.ws else { continue };
            if out.is_empty() {
                out.push(title(2, "WebSocket"));
            }
            out.push(super::document::heading(
                3,
                vec![text(&p.name), own(" · "), text(&st.name)],
            ));
            let attempts = w.connections + w.connect_failed;
            let mut items = vec![vec![
                strong("Successful connections"),
                own(format!(
                    ": {}/{} ({})",
                    count(w.connections),
                    count(attempts),
                    pct(1.0 - w.connect_failed_rate)
                )),
            ]];
            if let Some(c) = &w.connect_ms {
                items.push(vec![
                    strong("Connect time"),
                    own(format!(
                        ": avg {}, p95 {} (TCP, TLS and the upgrade)",
                        ms(c.avg),
                        ms(c.p95)
                    )),
                ]);
            }
            if let Some(l) = &st.latency_ms {
                items.push(vec![
                    strong("Message latency"),
                    own(format!(
                        ": avg {}, p50 {}, p95 {}, p99 {} over {} replies awaited",
                        ms(l.avg),
                        ms(l.p50),
                        ms(l.p95),
                        ms(l.p99),
                        count(st.requests)
                    )),
                ]);
            }
            let mut dropped = format!(": {}", count(w.dropped_connections));
            if w.dropped_connections > 0 {
                let codes: Vec<String> = w.close_codes.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
                dropped.push_str(&format!(
                    " (close codes {}), {} reconnected",
                    codes.join(", "),
                    count(w.reconnects)
                ));
                if let Some(r) = w.reconnect_ms_avg {
                    dropped.push_str(&format!(", in {} on average", ms(r)));
                }
            }
            items.push(vec![strong("Connections dropped"), own(dropped)]);
            items.push(vec![
                strong("Message loss"),
                own(format!(
                    ": {} ({} of the replies awaited got none in time)",
                    pct(w.lost_rate),
                    count(w.lost)
                )),
            ]);
            let mut messages = format!(
                ": {} sent, {} received, {} pushed by the server",
                count(w.messages_sent),
                count(w.messages_received),
                count(w.pushes)
            );
            if w.sequence_gaps + w.duplicates > 0 {
                messages.push_str(&format!(
                    "; {} sequence numbers missed, {} duplicates",
                    count(w.sequence_gaps),
                    count(w.duplicates)
                ));
            }
            items.push(vec![strong("Messages"), own(messages)]);
            if p.ws_open_max > 0 {
                items.push(vec![
                    strong("Concurrent connections"),
                    own(format!(": up to {} open at once", count(p.ws_open_max))),
                ]);
            }
            out.push(bullets(items));
        }
    }
    out
}
