//! `--start-at TIME|+DURATION`: the instant every share of a distributed run starts at.
//!
//! Every share is given the same absolute time (or a `+DURATION` turned into one where the
//! shares are started together, e.g. by `stampede k8s` when it writes the manifests), so their
//! seconds line up for `stampede merge`. A time already past is a share started late: within
//! [`LATE_OK`] it starts at once (its lateness is noted in `meta.json`); beyond that it is
//! refused, since its seconds would no longer line up with the other shares'.

use std::time::{Duration, SystemTime};

use crate::rundir::time::parse_rfc3339_ms;

/// How late a share may still start (a slow pod, a clock a little off).
pub const LATE_OK: Duration = Duration::from_secs(10);
/// How far ahead a start may be: further is a typo (a year), not a plan.
pub const AHEAD_MAX: Duration = Duration::from_secs(24 * 3600);

/// Parses `--start-at` against `now`: an RFC 3339 time (`2026-12-02T07:00:00Z`,
/// `2026-12-02T08:00:00.5+01:00`) or `+DURATION` (`+30s`, `+2m`).
pub fn parse_start_at(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let s = s.trim();
    let at = if let Some(d) = s.strip_prefix('+') {
        now + stampede_plan::parse_duration(d).map_err(|e| format!("`{s}`: {e}"))?
    } else {
        let ms = parse_rfc3339_ms(s).ok_or_else(|| {
            format!("`{s}` is neither an RFC 3339 time (e.g. 2026-12-02T07:00:00Z) nor +DURATION (e.g. +30s)")
        })?;
        let abs = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 {
            SystemTime::UNIX_EPOCH + abs
        } else {
            SystemTime::UNIX_EPOCH - abs
        }
    };
    match at.duration_since(now) {
        Ok(ahead) if ahead > AHEAD_MAX => Err(format!(
            "`{s}` is {:.0} h from now, more than {} h ahead",
            ahead.as_secs_f64() / 3600.0,
            AHEAD_MAX.as_secs() / 3600
        )),
        Ok(_) => Ok(at),
        Err(late) if late.duration() <= LATE_OK => Ok(at),
        Err(late) => Err(format!(
            "`{s}` was {:.0} s ago (a share may start at most {} s late, or its seconds no longer line up with the other shares'); give a later time or +DURATION",
            late.duration().as_secs_f64(),
            LATE_OK.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64)
    }

    #[test]
    fn rfc3339_reads_what_the_engine_writes() {
        for ms in [0i64, 951_782_400_000, 1_796_194_800_123, 1_709_164_800_000] {
            let mut out = Vec::new();
            crate::engine::push_iso(&mut out, ms);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
    }

    #[test]
    fn a_start_too_late_or_too_far_ahead_is_refused() {
        let now = at(1_796_194_800_000); // 2026-12-02T07:00:00Z
        assert_eq!(parse_start_at("+30s", now), Ok(at(1_796_194_830_000)));
        assert_eq!(parse_start_at("2026-12-02T07:00:05Z", now), Ok(at(1_796_194_805_000)));
        // 5 s late: starts (late) at once; 60 s late: refused.
        assert_eq!(parse_start_at("2026-12-02T06:59:55Z", now), Ok(at(1_796_194_795_000)));
        let e = parse_start_at("2026-12-02T06:59:00Z", now).unwrap_err();
        assert!(e.contains("60 s ago"), "{e}");
        let e = parse_start_at("2027-12-02T07:00:00Z", now).unwrap_err();
        assert!(e.contains("ahead"), "{e}");
        assert!(parse_start_at("+soon", now).is_err());
        assert!(parse_start_at("07:00", now).unwrap_err().contains("RFC 3339"));
    }
}
