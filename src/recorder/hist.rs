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

/// Encodes a histogram with bounds shrunk to its own largest value: a reader then allocates a
/// counts array sized to what was recorded (a few KB for a second of millisecond latencies)
/// instead of the full hour-long range, which is what makes reading a long run fast.
/// A histogram for merging into (aggregates, timelines): starts tiny and widens to what is
/// added, so thousands of them (one per second of a long run) stay small.
pub fn new_growable() -> Hist {
    let mut h = Histogram::new_with_bounds(1, 2, 3).expect("valid histogram bounds");
    h.auto(true);
    h
}

pub fn encode_hist(h: &Hist) -> String {
    let mut compact = match Histogram::<u64>::new_with_bounds(1, h.max().max(2), 3) {
        Ok(c) => c,
        Err(_) => return String::new(),
    };
    if compact.add(h).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    // Serializing into a Vec cannot fail on I/O; an error would be a bug in the encoder.
    if V2DeflateSerializer::new().serialize(&compact, &mut buf).is_err() {
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
    let mut h: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    if h.low() != 1 || h.sigfig() != 3 {
        return Err("histogram is not in microseconds with 3 significant digits".into());
    }
    // Stored bounds are only as wide as the values recorded: let merges widen them as needed
    // (a failed `add` would silently drop counts).
    h.auto(true);
    Ok(h)
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
    fn compact_histograms_merge_without_loss() {
        let mut small = new_hist();
        small.saturating_record(100);
        let mut big = new_hist();
        big.saturating_record(5_000_000);
        let mut a = decode_hist(&encode_hist(&small)).unwrap();
        let b = decode_hist(&encode_hist(&big)).unwrap();
        a.add(&b).unwrap();
        assert_eq!(a.len(), 2);
        assert!(a.max() >= 4_990_000);
        let mut full = new_hist();
        full.add(&a).unwrap();
        assert_eq!(full.len(), 2);
        assert!(decode_hist(&encode_hist(&new_hist())).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_hist("not base64!").is_err());
        assert!(decode_hist("AAAA").is_err());
    }
}
