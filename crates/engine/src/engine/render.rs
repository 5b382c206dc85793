//! Evaluating template expressions for one VU: slots, counters, randomness, clocks.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore};
use stampede_plan::template::Expr;

use super::cookies::Jar;

/// What an expression may read: the VU's slots, counters and cookies, and its random generator.
pub struct Env<'a> {
    pub slots: &'a [Bytes],
    pub rng: &'a mut SmallRng,
    pub vu: u64,
    pub iteration: u64,
    /// The VU's cookie jar, for `cookie("name")` (none: every cookie is empty).
    pub jar: Option<&'a Jar>,
}

impl Env<'_> {
    pub fn eval(&mut self, e: &Expr, out: &mut Vec<u8>) {
        match e {
            Expr::Slot(i) => {
                if let Some(b) = self.slots.get(*i) {
                    out.extend_from_slice(b);
                }
            }
            Expr::Vu => push_int(out, self.vu as i64),
            Expr::Iteration => push_int(out, self.iteration as i64),
            Expr::Uuid => push_uuid(out, self.rng),
            Expr::RandomInt(lo, hi) => {
                let (lo, hi) = if lo <= hi { (*lo, *hi) } else { (*hi, *lo) };
                push_int(out, self.rng.random_range(lo..=hi));
            }
            Expr::RandomChoice(options) => {
                if !options.is_empty() {
                    let i = self.rng.random_range(0..options.len());
                    out.extend_from_slice(&options[i]);
                }
            }
            Expr::Timestamp => push_int(out, unix_now().as_secs() as i64),
            Expr::TimestampMs => push_int(out, unix_now().as_millis() as i64),
            Expr::NowIso => push_iso(out, unix_now().as_millis() as i64),
            Expr::Cookie(name) => {
                if let Some(v) = self.jar.and_then(|j| j.value(name)) {
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
    }
}

pub fn unix_now() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

pub fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// A random (version 4) UUID, lower-case hyphenated.
fn push_uuid(out: &mut Vec<u8>, rng: &mut SmallRng) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(byte >> 4) as usize]);
        out.push(HEX[(byte & 15) as usize]);
    }
}

/// RFC 3339 UTC with milliseconds, from Unix milliseconds (civil-from-days, no time crate).
pub fn push_iso(out: &mut Vec<u8>, unix_ms: i64) {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// Howard Hinnant's days-to-civil algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn iso_dates() {
        let mut out = Vec::new();
        push_iso(&mut out, 0);
        assert_eq!(out, b"1970-01-01T00:00:00.000Z");
        out.clear();
        push_iso(&mut out, 1_767_876_780_123); // 2026-01-08T12:53:00.123Z
        assert_eq!(String::from_utf8(out).unwrap(), "2026-01-08T12:53:00.123Z");
    }

    #[test]
    fn uuid_shape_and_ranges() {
        let mut rng = SmallRng::seed_from_u64(1);
        let slots = [Bytes::from_static(b"abc")];
        let mut env = Env {
            slots: &slots,
            rng: &mut rng,
            vu: 7,
            iteration: 3,
            jar: None,
        };
        let mut out = Vec::new();
        env.eval(&Expr::Uuid, &mut out);
        let s = String::from_utf8(out.clone()).unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        for _ in 0..200 {
            out.clear();
            env.eval(&Expr::RandomInt(5, 7), &mut out);
            let v: i64 = std::str::from_utf8(&out).unwrap().parse().unwrap();
            assert!((5..=7).contains(&v));
        }
        out.clear();
        env.eval(&Expr::Slot(0), &mut out);
        env.eval(&Expr::Vu, &mut out);
        env.eval(&Expr::Iteration, &mut out);
        assert_eq!(out, b"abc73");
    }
}
