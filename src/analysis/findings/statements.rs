//! How each SQL statement's latency changed while the database was short of something
//! (connections, locks), against the other seconds in which the statement ran: the lines the
//! database findings cite ("p95 of `insert` 45 → 380 ms"). Not a rule of its own.

use super::{Input, Sec};
use crate::recorder::{new_growable, Hist};
use crate::rundir::hist::record_buckets;

/// One statement's latency during a set of seconds and during the others, in µs.
pub(super) struct Change {
    pub name: String,
    pub p95_before_us: f64,
    pub p95_during_us: f64,
    pub avg_before_us: f64,
    pub avg_during_us: f64,
}

impl Change {
    /// How many times slower its p95 was meanwhile.
    pub fn ratio(&self) -> f64 {
        self.p95_during_us / self.p95_before_us.max(1.0)
    }
}

/// A statement whose p95 at least doubled meanwhile has slowed.
pub(super) const SLOWED: f64 = 2.0;

/// Every SQL statement that ran both during `during` and in other seconds, most slowed first.
/// Percentiles come from the seconds' merged buckets, never from averaged percentiles.
pub(super) fn changes(input: &Input<'_>, during: &[&Sec]) -> Vec<Change> {
    let n = input.statements.len();
    if n == 0 {
        return Vec::new();
    }
    let mine: std::collections::HashSet<*const Sec> = during.iter().map(|s| *s as *const Sec).collect();
    let mut hists: Vec<(Hist, Hist)> = (0..n).map(|_| (new_growable(), new_growable())).collect();
    for s in input.secs {
        let inside = mine.contains(&(s as *const Sec));
        for (i, b) in &s.sql {
            let (before, meanwhile) = &mut hists[*i];
            record_buckets(if inside { meanwhile } else { before }, b);
        }
    }
    let mut out: Vec<Change> = hists
        .into_iter()
        .zip(input.statements)
        .filter(|((b, d), _)| !b.is_empty() && !d.is_empty())
        .map(|((b, d), name)| Change {
            name: name.clone(),
            p95_before_us: b.value_at_quantile(0.95) as f64,
            p95_during_us: d.value_at_quantile(0.95) as f64,
            avg_before_us: b.mean(),
            avg_during_us: d.mean(),
        })
        .collect();
    out.sort_by(|a, b| b.ratio().total_cmp(&a.ratio()));
    out
}

/// The evidence lines for the `max` most slowed statements, e.g. "p95 of `insert lead` 45 →
/// 380 ms (avg 20 → 150 ms) while connections were exhausted".
pub(super) fn lines(changes: &[Change], meanwhile: &str, max: usize) -> Vec<String> {
    changes
        .iter()
        .take(max)
        .map(|c| {
            format!(
                "p95 of `{}` {} → {} (avg {} → {}) {meanwhile}",
                c.name,
                ms(c.p95_before_us),
                ms(c.p95_during_us),
                ms(c.avg_before_us),
                ms(c.avg_during_us)
            )
        })
        .collect()
}

/// Milliseconds with the digits a database latency needs (0.42 ms, 4.2 ms, 42 ms).
fn ms(us: f64) -> String {
    let v = us / 1000.0;
    if v < 1.0 {
        format!("{v:.2} ms")
    } else if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sec;
    use super::*;

    fn with_sql(mut s: Sec, stmts: &[(usize, u64, u64)]) -> Sec {
        s.sql = stmts.iter().map(|(i, ms, n)| (*i, vec![(ms * 1000, *n)])).collect();
        s
    }

    #[test]
    fn the_slowed_statement_comes_first_with_merged_percentiles() {
        let secs = vec![
            with_sql(sec(0.0, "low", 100, 5, &[]), &[(0, 45, 50), (1, 2, 50)]),
            with_sql(sec(1.0, "low", 100, 5, &[]), &[(0, 45, 50), (1, 2, 50)]),
            with_sql(sec(2.0, "high", 100, 5, &[]), &[(0, 380, 50), (1, 3, 50)]),
        ];
        let names = vec!["insert".to_string(), "select".to_string()];
        let server = Default::default();
        let mut input = super::super::tests::input(&secs, &server);
        input.statements = &names;
        let c = changes(&input, &[&secs[2]]);
        assert_eq!(c[0].name, "insert");
        assert!((c[0].p95_before_us - 45_000.0).abs() < 100.0, "{}", c[0].p95_before_us);
        assert!((c[0].p95_during_us - 380_000.0).abs() < 500.0, "{}", c[0].p95_during_us);
        assert!(c[0].ratio() > SLOWED && c[1].ratio() < SLOWED);
        let l = lines(&c, "while exhausted", 1);
        assert_eq!(
            l,
            ["p95 of `insert` 45 ms → 380 ms (avg 45 ms → 380 ms) while exhausted"]
        );
    }

    #[test]
    fn no_statements_no_lines() {
        let secs = vec![sec(0.0, "p", 10, 5, &[])];
        let server = Default::default();
        assert!(changes(&super::super::tests::input(&secs, &server), &[&secs[0]]).is_empty());
    }
}
