//! Durations (`500ms`, `2s`, `1m30s`, `1h`, `250us`), sizes (`64KiB`, `1MiB`) and rates
//! (`50`, `50/s`, `3000/m`).

use std::time::Duration;

/// Parses a duration: one or more `<number><unit>` parts, units `us`/`µs`, `ms`, `s`, `m`, `h`.
/// A bare number is refused: units are never guessed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!("`{t}` is not a duration (expected e.g. 500ms, 30s, 2m, 1h30m)"));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("`{t}` is not a duration"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_end].trim();
        rest = &rest[unit_end..];
        let secs = match unit {
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "" => return Err(format!("`{t}` has no unit (write e.g. `{t}s` or `{t}ms`)")),
            u => return Err(format!("`{u}` is not a duration unit (use us, ms, s, m, h)")),
        };
        total += secs;
    }
    if !total.is_finite() || total > 365.0 * 86400.0 {
        return Err(format!("`{t}` is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Parses a byte size: a number with an optional unit B, KB, KiB, MB, MiB, GB, GiB.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let n: f64 = t[..end]
        .parse()
        .map_err(|_| format!("`{t}` is not a size (e.g. 64KiB, 1MiB)"))?;
    let mult = match t[end..].trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => return Err(format!("`{u}` is not a size unit (use B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    let v = n * mult;
    if !(0.0..=1e12).contains(&v) {
        return Err(format!("`{t}` is out of range"));
    }
    Ok(v as usize)
}

/// Parses an arrival rate per second: `50`, `50/s`, `3000/m`, `7200/h`. The number must be
/// finite (`NaN` and `inf`, which Rust's float parser takes, are refused); its range is the
/// caller's to check.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (n, per) = match t.split_once('/') {
        Some((n, u)) => (
            n.trim(),
            match u.trim() {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                u => return Err(format!("`/{u}` is not a rate unit (use /s, /m, /h)")),
            },
        ),
        None => (t, 1.0),
    };
    let v: f64 = n
        .parse()
        .map_err(|_| format!("`{t}` is not a rate (e.g. 50, 50/s, 3000/m)"))?;
    if !v.is_finite() {
        return Err(format!(
            "`{t}` is not a rate: a rate is a finite number (e.g. 50, 50/s, 3000/m)"
        ));
    }
    Ok(v / per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999h").is_err());
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("1 parsec").is_err());
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert_eq!(parse_rate("3000/m").unwrap(), 50.0);
        assert!(parse_rate("5/y").is_err());
    }
}
