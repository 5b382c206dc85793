//! Latency histograms: microseconds, 3 significant digits, mergeable, serialized as
//! HdrHistogram V2 + DEFLATE in base64 (readable by every HdrHistogram implementation).

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

pub type Hist = Histogram<u64>;

/// Highest trackable value: 1 hour in µs. Longer samples saturate at this value.
const HIGHEST_US: u64 = 3_600_000_000;

pub fn new_hist() -> Hist {
    // The bounds are constants that `new_with_bounds` accepts, so this cannot fail.
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

pub fn encode_hist(h: &Hist) -> String {
    let mut buf = Vec::new();
    // Serializing into a Vec cannot fail on I/O; an error would be a bug in the encoder.
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode_hist(s: &str) -> Result<Hist, String> {
    if s.is_empty() {
        return Ok(new_hist());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let h: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    // Re-home into our bounds so `add` never fails on merge.
    let mut out = new_hist();
    out.add(&h).map_err(|e| format!("histogram out of range: {e:?}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_keeps_counts_and_percentiles() {
        let mut h = new_hist();
        for v in 1..=10_000u64 {
            h.saturating_record(v * 10);
        }
        let back = decode_hist(&encode_hist(&h)).unwrap();
        assert_eq!(back.len(), 10_000);
        assert_eq!(back.value_at_quantile(0.95), h.value_at_quantile(0.95));
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_hist("not base64!").is_err());
        assert!(decode_hist("AAAA").is_err());
    }
}
