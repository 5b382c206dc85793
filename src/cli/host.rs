//! Facts about this machine for run metadata.

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let mut out = Vec::new();
    crate::engine::push_iso(&mut out, crate::engine::schedule::unix_ms());
    String::from_utf8(out).unwrap_or_default()
}

/// Now as `YYYYmmdd-HHMMSS` (UTC), for run directory names.
pub fn now_compact() -> String {
    let iso = now_rfc3339();
    // 2026-11-25T09:30:00.000Z → 20261125-093000
    let digits: String = iso.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 14 {
        format!("{}-{}", &digits[..8], &digits[8..14])
    } else {
        digits
    }
}
