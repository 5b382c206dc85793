//! PostgreSQL sessions waiting on locks (the postgres monitor's `waiting`) while statements
//! slowed: which statements queued behind the locks, and by how much.

use super::statements::{self, SLOWED};
use super::{fmt_t, impact, phase_of, r3, secs_at, Input, Rule, MIN_SATURATED_SAMPLES};
use crate::analysis::{Finding, Priority};

/// Sessions waiting on a lock in at least [`MIN_SATURATED_SAMPLES`] samples, while a
/// statement's p95 at least doubled or a latency threshold was crossed, or deadlocks were
/// reported. Waits that cost the client nothing are not a finding.
pub struct LockWaits;

impl Rule for LockWaits {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        for (key, pts) in input.server {
            let Some(monitor) = key.strip_suffix(".waiting") else {
                continue;
            };
            // Only a PostgreSQL monitor reports `waiting` beside its connections.
            if !input.server.contains_key(&format!("{monitor}.connections_in_use")) {
                continue;
            }
            let waits: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.1 >= 1.0).collect();
            if waits.len() < MIN_SATURATED_SAMPLES {
                continue;
            }
            let during = secs_at(input.secs, waits.iter().map(|p| p.0));
            if during.is_empty() {
                continue;
            }
            let changes = statements::changes(input, &during);
            let im = impact(input, &during);
            let deadlocks: u64 = during.iter().filter_map(|s| s.kinds.get("sql_40P01")).sum();
            let lock_timeouts: u64 = during.iter().filter_map(|s| s.kinds.get("sql_55P03")).sum();
            let slowed = changes.iter().any(|c| c.ratio() >= SLOWED);
            if !slowed && im.threshold.is_none() && deadlocks == 0 {
                continue;
            }
            let (first, last) = (waits[0].0, waits[waits.len() - 1].0);
            let most = waits.iter().map(|p| p.1).fold(0.0, f64::max);
            let phase = phase_of(input.secs, first);
            let in_phase = phase.as_ref().map(|p| format!(" (phase {p})")).unwrap_or_default();
            let mut evidence = vec![format!(
                "up to {most} sessions waiting on a lock ({key}) in {} samples from {} to {}{in_phase}",
                waits.len(),
                fmt_t(first),
                fmt_t(last)
            )];
            evidence.extend(statements::lines(&changes, "while sessions waited on locks", 6));
            if changes.is_empty() {
                evidence.extend(im.latency_line("while sessions waited on locks"));
            }
            if deadlocks > 0 {
                evidence.push(format!(
                    "{deadlocks} statements ended in a deadlock (sql_40P01) meanwhile"
                ));
            }
            if lock_timeouts > 0 {
                evidence.push(format!(
                    "{lock_timeouts} statements gave up waiting (sql_55P03 lock_timeout)"
                ));
            }
            let priority = if im.threshold.is_some() || deadlocks > 0 {
                Priority::Critical
            } else {
                Priority::High
            };
            out.push(Finding {
                priority,
                title: "PostgreSQL lock contention".into(),
                evidence,
                recommendation: "Statements queue behind each other's row locks: keep transactions short (no slow work between the first write and COMMIT), update hot rows in one order (deadlocks), spread writes over more rows (a sharded counter), and set `lock_timeout` so a waiter fails fast instead of piling up. pg_locks joined to pg_stat_activity names the blocking statement.".into(),
                phase,
                at_s: Some(r3(first)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{input, sec};
    use super::super::{Samples, Sec};
    use super::*;

    fn secs(during_ms: u64) -> Vec<Sec> {
        (0..6)
            .map(|i| {
                let ms = if i >= 3 { during_ms } else { 5 };
                let mut s = sec(i as f64, if i >= 3 { "high" } else { "low" }, 50, ms, &[]);
                s.sql = vec![(0, vec![(ms * 1000, 50)])];
                s
            })
            .collect()
    }

    fn waiting(from: usize) -> Samples {
        let mut tl = Samples::new();
        tl.insert(
            "pg.connections_in_use".into(),
            (0..6).map(|i| (i as f64 + 0.5, 5.0)).collect(),
        );
        tl.insert(
            "pg.waiting".into(),
            (0..6)
                .map(|i| (i as f64 + 0.5, if i >= from { 4.0 } else { 0.0 }))
                .collect(),
        );
        tl
    }

    fn run(secs: &[Sec], server: &Samples) -> Vec<Finding> {
        let names = vec!["update counter".to_string()];
        let mut i = input(secs, server);
        i.statements = &names;
        let mut out = Vec::new();
        LockWaits.check(&i, &mut out);
        out
    }

    #[test]
    fn waits_that_slowed_a_statement_are_a_finding_naming_it() {
        let (s, tl) = (secs(60), waiting(3));
        let f = run(&s, &tl);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].phase.as_deref(), Some("high"));
        assert!(
            f[0].evidence[0].contains("up to 4 sessions waiting"),
            "{:?}",
            f[0].evidence
        );
        assert!(
            f[0].evidence[1].starts_with("p95 of `update counter` 5.0 ms → 60 ms"),
            "{:?}",
            f[0].evidence
        );
    }

    #[test]
    fn waits_that_cost_nothing_are_not() {
        assert!(run(&secs(5), &waiting(3)).is_empty());
        assert!(run(&secs(60), &waiting(6)).is_empty(), "no waits");
    }
}
