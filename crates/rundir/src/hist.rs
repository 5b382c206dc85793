//! Latency histograms: microseconds, 3 significant digits, mergeable, serialized as
//! HdrHistogram V2 + DEFLATE in base64 (readable by every HdrHistogram implementation).

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer};
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

/// An empty histogram that costs next to nothing (a few dozen bytes, against 16 KB zeroed for
/// the smallest one at 3 significant digits): what a step read from disk carries in its
/// `latency` and `service` fields, whose data is in its buckets. Those fields are never added
/// into (every merge starts from `StepInterval::empty` or `to_aggregate`); at 40 histograms a
/// second, allocating and zeroing full-size ones was a quarter of reading a long run.
pub fn placeholder() -> Hist {
    Histogram::new_with_bounds(1, 2, 0).expect("valid histogram bounds")
}

pub fn encode_hist(h: &Hist) -> String {
    let mut compact = match Histogram::<u64>::new_with_bounds(1, h.max().max(2), 3) {
        Ok(c) => c,
        Err(_) => return String::new(),
    };
    if compact.add(h).is_err() {
        return String::new();
    }
    CODEC.with(|c| c.borrow_mut().encode(&compact)).unwrap_or_default()
}

thread_local! {
    /// One codec per thread: a DEFLATE compressor or decompressor is tens to hundreds of KB of
    /// state to allocate and zero, which per histogram (one per step and second; 1.4 million to
    /// merge 10 shares of an hour with 20 steps) cost more than the work itself.
    static CODEC: std::cell::RefCell<Codec> = std::cell::RefCell::new(Codec::new());
}

/// HdrHistogram V2 + DEFLATE (the V2 payload zlib-compressed behind its cookie and length),
/// with the compression state and buffers reused. Byte for byte what `V2DeflateSerializer`
/// writes.
struct Codec {
    v2: hdrhistogram::serialization::V2Serializer,
    plain: Vec<u8>,
    packed: Vec<u8>,
    deflate: flate2::Compress,
    inflate: flate2::Decompress,
}

/// `V2_COMPRESSED_COOKIE` of the HdrHistogram format.
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// A histogram inflating to more than this is refused (a hostile or damaged file).
const INFLATED_MAX: usize = 64 << 20;

impl Codec {
    fn new() -> Codec {
        Codec {
            v2: hdrhistogram::serialization::V2Serializer::new(),
            plain: Vec::new(),
            packed: Vec::new(),
            deflate: flate2::Compress::new(flate2::Compression::default(), true),
            inflate: flate2::Decompress::new(true),
        }
    }

    fn encode(&mut self, h: &Hist) -> Option<String> {
        self.plain.clear();
        self.v2.serialize(h, &mut self.plain).ok()?;
        self.packed.clear();
        self.packed.extend_from_slice(&V2_DEFLATE_COOKIE.to_be_bytes());
        self.packed.extend_from_slice(&[0; 4]);
        self.deflate.reset();
        let start = self.deflate.total_in();
        loop {
            self.packed.reserve(self.plain.len() / 2 + 64);
            let done = (self.deflate.total_in() - start) as usize;
            let status = self
                .deflate
                .compress_vec(&self.plain[done..], &mut self.packed, flate2::FlushCompress::Finish)
                .ok()?;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        let len = (self.packed.len() - 8) as u32;
        self.packed[4..8].copy_from_slice(&len.to_be_bytes());
        Some(base64::engine::general_purpose::STANDARD.encode(&self.packed))
    }

    /// Inflates a stored histogram's payload (after its 8-byte cookie and length) into
    /// `self.plain`.
    fn inflate(&mut self, zlib: &[u8]) -> Result<(), String> {
        self.inflate.reset(true);
        self.plain.clear();
        loop {
            if self.plain.len() >= INFLATED_MAX {
                return Err("histogram does not inflate: larger than 64 MiB".into());
            }
            self.plain.reserve((zlib.len() * 4).max(4096));
            let done = self.inflate.total_in() as usize;
            let before = (self.inflate.total_out(), done);
            let status = self
                .inflate
                .decompress_vec(&zlib[done..], &mut self.plain, flate2::FlushDecompress::Finish)
                .map_err(|e| format!("histogram does not inflate: {e}"))?;
            match status {
                flate2::Status::StreamEnd => return Ok(()),
                _ if (self.inflate.total_out(), self.inflate.total_in() as usize) == before
                    && self.plain.len() < self.plain.capacity() =>
                {
                    return Err("histogram does not inflate: truncated".into())
                }
                _ => {}
            }
        }
    }
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

    /// The reused codec writes what the library's serializer writes, and reads it back, over
    /// many histograms in a row (its state is reset between them).
    #[test]
    fn the_reused_codec_writes_what_the_library_writes() {
        use hdrhistogram::serialization::V2DeflateSerializer;
        for n in [0u64, 1, 10, 1000, 50_000] {
            let mut h = new_hist();
            for v in 0..n {
                h.saturating_record(1 + v * 37 % 900_000);
            }
            let mut compact = Histogram::<u64>::new_with_bounds(1, h.max().max(2), 3).unwrap();
            compact.add(&h).unwrap();
            let mut lib = Vec::new();
            V2DeflateSerializer::new().serialize(&compact, &mut lib).unwrap();
            let ours = encode_hist(&h);
            assert_eq!(ours, base64::engine::general_purpose::STANDARD.encode(&lib), "n {n}");
            assert_eq!(decode_buckets(&ours).unwrap().iter().map(|b| b.1).sum::<u64>(), n);
        }
        let whole = base64::engine::general_purpose::STANDARD
            .decode(encode_hist(&new_hist()))
            .unwrap();
        let cut = base64::engine::general_purpose::STANDARD.encode(&whole[..whole.len() - 3]);
        assert!(decode_buckets(&cut).is_err(), "a truncated stream");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_hist("not base64!").is_err());
        assert!(decode_hist("AAAA").is_err());
    }
}

/// The non-zero buckets of a histogram as `(value, count)`, value at the bucket's low end.
pub type Buckets = Vec<(u64, u64)>;

/// Decodes a stored histogram (HdrHistogram V2 + DEFLATE, base64) into its non-zero buckets,
/// without building a histogram. Merging the buckets into an aggregate costs one `record_n`
/// per non-zero bucket instead of a walk over every bucket of the range, which is what keeps
/// reading a long run fast.
pub fn decode_buckets(s: &str) -> Result<Buckets, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    if bytes.len() < 8 {
        return Err("histogram is truncated".into());
    }
    CODEC.with(|c| {
        let mut c = c.borrow_mut();
        c.inflate(&bytes[8..])?;
        buckets_of(&c.plain)
    })
}

/// The non-zero buckets of an inflated V2 payload.
fn buckets_of(payload: &[u8]) -> Result<Buckets, String> {
    let be32 = |i: usize| {
        payload
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let be64 = |i: usize| {
        payload
            .get(i..i + 8)
            .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    };
    let (Some(len), Some(offset), Some(sigfig), Some(low)) = (be32(4), be32(8), be32(12), be64(16)) else {
        return Err("histogram header is truncated".into());
    };
    if offset != 0 || low != 1 || sigfig != 3 {
        return Err("histogram is not in microseconds with 3 significant digits".into());
    }
    let counts = payload
        .get(40..40 + len as usize)
        .ok_or("histogram payload is truncated")?;
    // Bucket layout for lowest 1 and 3 significant digits: 2048 sub-buckets, half of 1024.
    const HALF_MAG: u32 = 10;
    const HALF: u64 = 1 << HALF_MAG;
    let value_at = |index: u64| -> u64 {
        let bucket = (index >> HALF_MAG) as i64 - 1;
        let mut sub = (index & (HALF - 1)) + HALF;
        let bucket = if bucket < 0 {
            sub -= HALF;
            0
        } else {
            bucket as u32
        };
        sub << bucket
    };
    let mut buckets = Vec::new();
    let (mut i, mut index) = (0usize, 0u64);
    while i < counts.len() {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = *counts.get(i).ok_or("histogram varint is truncated")?;
            i += 1;
            // The 9th byte of a V2 varint carries 8 bits.
            if shift == 56 {
                v |= (b as u64) << 56;
                break;
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let n = ((v >> 1) as i64) ^ -((v & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs());
        } else {
            if n > 0 {
                buckets.push((value_at(index), n as u64));
            }
            index += 1;
        }
    }
    Ok(buckets)
}

/// Adds buckets to a histogram. `record_n` (not `saturating_record_n`, which clamps instead
/// of growing) so a growable histogram widens to take them.
pub fn record_buckets(into: &mut Hist, buckets: &[(u64, u64)]) {
    // Widen once to the largest bucket (buckets are in value order) rather than step by step.
    // (A zero count widens without counting; `top` is among the buckets, so min and max stay
    // right.)
    if let Some(&(top, _)) = buckets.last() {
        if top > into.high() {
            let _ = into.record_n(top, 0);
        }
    }
    for &(v, c) in buckets {
        if into.record_n(v, c).is_err() {
            into.saturating_record_n(v, c);
        }
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn buckets_decode_like_the_library() {
        let mut h = new_hist();
        let mut x: u64 = 88172645463325252;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            h.saturating_record(1 + x % 3_000_000);
        }
        h.saturating_record_n(5, 1_000_000);
        let enc = encode_hist(&h);
        let lib = decode_hist(&enc).unwrap();
        let buckets = decode_buckets(&enc).unwrap();
        let mut mine = new_growable();
        record_buckets(&mut mine, &buckets);
        assert_eq!(mine.len(), lib.len());
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), h.len());
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(mine.value_at_quantile(q), lib.value_at_quantile(q), "q {q}");
        }
        assert_eq!(mine.max(), lib.max());
        assert!(decode_buckets("").unwrap().is_empty());
        assert!(decode_buckets("AAAA").is_err());
        assert!(decode_buckets("not base64").is_err());
    }
}
