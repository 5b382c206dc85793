//! `--start-at TIME|+DURATION`: the instant every share of a distributed run starts at.
//!
//! Every share is given the same absolute time (or a `+DURATION` turned into one where the
//! shares are started together, e.g. by `stampede k8s` when it writes the manifests), so their
//! seconds line up for `stampede merge`. A time already past is a share started late: within
//! [`LATE_OK`] it starts at once (its lateness is noted in `meta.json`); beyond that it is
//! refused, since its seconds would no longer line up with the other shares'.

use std::time::{Duration, SystemTime};

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

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as milliseconds since the Unix epoch (`t` or a
/// space for `T`, `z` for `Z`, as RFC 3339 allows).
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0;
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let frac = &s[i + 1..i + 1 + digits];
        ms = format!("{frac:0<3}")[..3].parse().ok()?;
        i += 1 + digits;
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(&tz[..1], "+" | "-") && &tz[3..4] == ":" => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if tz.starts_with('-') {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_min * 60;
    Some(secs * 1000 + ms)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's civil-to-days algorithm (the inverse of the engine's `civil_from_days`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64)
    }

    #[test]
    fn rfc3339_reads_like_the_engine_writes() {
        for ms in [0i64, 951_782_400_000, 1_796_194_800_123, 1_709_164_800_000] {
            let mut out = Vec::new();
            crate::engine::push_iso(&mut out, ms);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
        assert_eq!(
            parse_rfc3339_ms("2026-12-02T08:00:00.5+01:00"),
            parse_rfc3339_ms("2026-12-02T07:00:00.500Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2026-12-01T23:30:00-07:30"),
            parse_rfc3339_ms("2026-12-02T07:00:00Z")
        );
        for bad in [
            "2026-12-02",
            "2026-12-02T07:00:00",
            "2026-13-02T07:00:00Z",
            "2026-02-30T07:00:00Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T07:00:00.Z",
            "2026-12-02T07:00:00+0100",
            "tomorrow",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
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
