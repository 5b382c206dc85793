//! A server metric's value for people: bytes in KiB/MiB/GiB, ratios and shares as percentages,
//! counts of connections or workers whole and spelled out, rates per second, seconds in the
//! unit that suits them ("12.4 GiB", "8 workers", "93.1%", "1.2k/s", "350 ms"), never a raw
//! float with its unit glued on.

/// `v` in `unit` (as `ServerMetric::unit` names it: `bytes`, `%`, `ratio`, `/s`, `s`,
/// `connections`, `workers`, or nothing).
pub fn quantity(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match unit {
        "bytes" => bytes(v),
        "%" => format!("{v:.1}%"),
        "ratio" => format!("{:.1}%", v * 100.0),
        "/s" => format!("{}/s", count(v)),
        "s" if v.abs() < 1.0 => format!("{:.0} ms", v * 1000.0),
        "s" => format!("{v:.1} s"),
        "connections" | "workers" => {
            let n = count(v);
            let one = (v - 1.0).abs() < 1e-9;
            format!("{n} {}", if one { unit.trim_end_matches('s') } else { unit })
        }
        _ => count(v),
    }
}

/// Binary multiples, one decimal: 25276502016 → "23.5 GiB".
fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i < UNITS.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{x:.0} B")
    } else {
        format!("{x:.1} {}", UNITS[i])
    }
}

/// A count or a plain value: whole numbers without decimals, thousands as k and M beyond
/// 10,000, small fractions with the digits they need.
fn count(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000_000.0 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 10_000.0 {
        format!("{:.1}k", v / 1e3)
    } else if (v - v.round()).abs() < 0.05 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::quantity;

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(quantity(25_276_502_016.0, "bytes"), "23.5 GiB");
        assert_eq!(quantity(512.0, "bytes"), "512 B");
        assert_eq!(quantity(8.0, "workers"), "8 workers");
        assert_eq!(quantity(1.0, "connections"), "1 connection");
        assert_eq!(quantity(93.14, "%"), "93.1%");
        assert_eq!(quantity(0.931, "ratio"), "93.1%");
        assert_eq!(quantity(12_345.0, "/s"), "12.3k/s");
        assert_eq!(quantity(0.35, "s"), "350 ms");
        assert_eq!(quantity(15.9, ""), "15.9");
        assert_eq!(quantity(0.25, ""), "0.25");
        assert_eq!(quantity(f64::NAN, ""), "-");
    }
}
