//! Errors that come from configuration, not load.

use std::collections::BTreeMap;

use super::{fmt_t, phase_of, r3, Input, Rule};
use crate::analysis::{Finding, Priority};
use crate::outcome::{classify, ErrorClass};

/// Errors of a configuration class (401, 404, 424, refused connections, TLS…): they fail at any
/// load and distort the error rate, so they are told apart from load errors.
pub struct ConfigurationErrors;

impl Rule for ConfigurationErrors {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        let secs = input.secs;
        let mut by_kind: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        let mut total = 0u64;
        let mut requests = 0u64;
        for s in secs {
            requests += s.requests;
            for (k, n) in &s.kinds {
                if classify(k) == ErrorClass::Configuration && *n > 0 {
                    let e = by_kind.entry(k.clone()).or_insert((0, s.t));
                    e.0 += n;
                    total += n;
                }
            }
        }
        if total == 0 {
            return;
        }
        let first = by_kind.values().map(|v| v.1).fold(f64::INFINITY, f64::min);
        let evidence = by_kind
            .iter()
            .map(|(k, (n, t))| format!("{n} × {k} from {} on", fmt_t(*t)))
            .chain(std::iter::once(format!(
                "{total} of {requests} requests ({:.1}%) fail at any load",
                total as f64 * 100.0 / requests.max(1) as f64
            )))
            .collect();
        out.push(Finding {
            priority: Priority::High,
            title: "Errors from configuration, not load".into(),
            evidence,
            recommendation: "Fix these before reading the load results: an unsigned or wrongly signed request (401), a missing route (404), a dependency that is not set up (424), a refused connection or a certificate problem. They fail the same at one user as at a thousand and distort the error rate.".into(),
            phase: phase_of(secs, first),
            at_s: Some(r3(first)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::tests::{check, sec};
    use crate::analysis::findings::Samples;

    #[test]
    fn configuration_errors_are_told_apart_from_load_errors() {
        let secs = vec![
            sec(0.0, "a", 10, 5, &[("status_424", 3), ("status_503", 2)]),
            sec(1.0, "a", 10, 5, &[("status_401", 1), ("timeout", 4)]),
        ];
        let out = check(&ConfigurationErrors, &secs, &Samples::new());
        assert_eq!(out.len(), 1);
        let e = out[0].evidence.join(" | ");
        assert!(
            e.contains("3 × status_424 from t=0s") && e.contains("1 × status_401 from t=1s"),
            "{e}"
        );
        assert!(!e.contains("503") && !e.contains("timeout"), "{e}");
        assert!(e.contains("4 of 20 requests"), "{e}");
    }
}
