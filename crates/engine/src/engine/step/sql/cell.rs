//! Values between templates and PostgreSQL without knowing their types in advance.
//!
//! Parameters go as text ([`TextParam`], the wire's text format), so the server parses `42` as
//! the `int4` the statement wants, `2026-01-01` as a date, and so on: bound by position, never
//! spliced into the statement. Results come back in the binary format; [`Cell`] turns the
//! common types into the text a check compares (`42`, `t`, `new`, a UUID, a timestamp), and
//! anything else into hex.

use std::error::Error;
use std::fmt::Write as _;

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, Format, FromSql, IsNull, ToSql, Type};

/// A rendered parameter, sent in the text format whatever the parameter's type.
#[derive(Debug)]
pub struct TextParam<'a>(pub &'a [u8]);

impl ToSql for TextParam<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A result value as text (`NULL` for a null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell(pub String);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, Box<dyn Error + Sync + Send>> {
        Ok(Cell(text_of(ty, raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Cell, Box<dyn Error + Sync + Send>> {
        Ok(Cell("NULL".into()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn int(raw: &[u8]) -> Option<i64> {
    Some(match raw.len() {
        2 => i16::from_be_bytes(raw.try_into().ok()?) as i64,
        4 => i32::from_be_bytes(raw.try_into().ok()?) as i64,
        8 => i64::from_be_bytes(raw.try_into().ok()?),
        _ => return None,
    })
}

/// The binary format of the common types, as PostgreSQL would print them.
pub fn text_of(ty: &Type, raw: &[u8]) -> String {
    let hex = || {
        raw.iter().fold(String::from("\\x"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    match *ty {
        Type::BOOL => (if raw.first() == Some(&1) { "t" } else { "f" }).into(),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => int(raw).map_or_else(hex, |v| v.to_string()),
        Type::FLOAT4 => raw
            .try_into()
            .map_or_else(|_| hex(), |b| f32::from_be_bytes(b).to_string()),
        Type::FLOAT8 => raw
            .try_into()
            .map_or_else(|_| hex(), |b| f64::from_be_bytes(b).to_string()),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::UNKNOWN => {
            String::from_utf8_lossy(raw).into_owned()
        }
        // JSONB: a version byte, then the text.
        Type::JSONB => String::from_utf8_lossy(raw.get(1..).unwrap_or_default()).into_owned(),
        Type::UUID if raw.len() == 16 => {
            let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        }
        Type::NUMERIC => numeric(raw).unwrap_or_else(hex),
        Type::DATE => int(raw).map_or_else(hex, |d| date(d + DAYS_1970_TO_2000)),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => int(raw).map_or_else(hex, |us| {
            let secs = us.div_euclid(1_000_000);
            let micros = us.rem_euclid(1_000_000);
            let days = secs.div_euclid(86_400) + DAYS_1970_TO_2000;
            let s = secs.rem_euclid(86_400);
            let mut out = format!("{} {:02}:{:02}:{:02}", date(days), s / 3600, s / 60 % 60, s % 60);
            if micros > 0 {
                out.push_str(format!(".{micros:06}").trim_end_matches('0'));
            }
            if *ty == Type::TIMESTAMPTZ {
                out.push_str("+00");
            }
            out
        }),
        _ => hex(),
    }
}

/// PostgreSQL's epoch (2000-01-01) in days since 1970-01-01.
const DAYS_1970_TO_2000: i64 = 10_957;

/// `YYYY-MM-DD` of days since 1970-01-01 (proleptic Gregorian; Howard Hinnant's algorithm).
fn date(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// NUMERIC's binary form: digit count, weight, sign, display scale, base-10000 digits.
fn numeric(raw: &[u8]) -> Option<String> {
    let u16_at = |i: usize| raw.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let ndigits = u16_at(0)? as usize;
    let weight = u16_at(2)? as i16 as i64;
    let sign = u16_at(4)?;
    let dscale = u16_at(6)? as usize;
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| u16_at(8 + 2 * i)).collect::<Option<_>>()?;
    let mut int_part = String::new();
    for w in 0..=weight.max(-1) {
        let d = usize::try_from(w)
            .ok()
            .and_then(|w| digits.get(w))
            .copied()
            .unwrap_or(0);
        if int_part.is_empty() {
            int_part = d.to_string();
        } else {
            let _ = write!(int_part, "{d:04}");
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut w = weight + 1;
    while frac.len() < dscale {
        let d = usize::try_from(w)
            .ok()
            .and_then(|w| digits.get(w))
            .copied()
            .unwrap_or(0);
        let _ = write!(frac, "{d:04}");
        w += 1;
    }
    frac.truncate(dscale);
    let neg = if sign == 0x4000 { "-" } else { "" };
    Some(if dscale > 0 {
        format!("{neg}{int_part}.{frac}")
    } else {
        format!("{neg}{int_part}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_print_as_postgresql_prints_them() {
        assert_eq!(text_of(&Type::INT4, &42i32.to_be_bytes()), "42");
        assert_eq!(text_of(&Type::INT8, &(-7i64).to_be_bytes()), "-7");
        assert_eq!(text_of(&Type::BOOL, &[1]), "t");
        assert_eq!(text_of(&Type::TEXT, b"new"), "new");
        assert_eq!(text_of(&Type::DATE, &0i32.to_be_bytes()), "2000-01-01");
        assert_eq!(text_of(&Type::DATE, &9466i32.to_be_bytes()), "2025-12-01");
        assert_eq!(
            text_of(&Type::TIMESTAMP, &1_500_000i64.to_be_bytes()),
            "2000-01-01 00:00:01.5"
        );
        // 1234.5600 (ndigits 2, weight 0, positive, dscale 4: 1234 | 5600)
        let n = [0, 2, 0, 0, 0, 0, 0, 4, 0x04, 0xD2, 0x15, 0xE0];
        assert_eq!(text_of(&Type::NUMERIC, &n), "1234.5600");
        // -0.05 (ndigits 1, weight -1, negative, dscale 2: 0500)
        let n = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 2, 0x01, 0xF4];
        assert_eq!(text_of(&Type::NUMERIC, &n), "-0.05");
        assert_eq!(text_of(&Type::BYTEA, &[0xde, 0xad]), "\\xdead");
    }
}
