//! Response bodies sent with a `Content-Encoding` (gzip, deflate, br, zstd), decoded for checks and
//! captures into a buffer the VU reuses, keeping at most `max_body` bytes. The rest is decoded
//! only to be counted (the decoded size sits beside the bytes received in the summary), through
//! a small buffer on the stack, so a large or hostile body costs CPU but never memory.

use std::io::Read;

/// A content coding we decode. `identity` and codings we do not know are left as they are
/// (the checks then see the body as it came).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// `deflate` is zlib-wrapped (RFC 9110 §8.4.1.2); some servers send raw deflate, which is
    /// tried when the zlib header is missing.
    Deflate,
    Brotli,
    /// RFC 8878, by `ruzstd` (pure Rust, one small dependency): the first frame of the body.
    Zstd,
}

/// What `Accept-Encoding` offers unless the plan sets its own.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

impl Coding {
    /// Its `Content-Encoding` name.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// The coding of a `Content-Encoding` value. `None` for identity, for a coding we do not
    /// know, and for several codings stacked (`gzip, br`), which no server sends unasked.
    pub fn from_header(value: &[u8]) -> Option<Coding> {
        let v = std::str::from_utf8(value).ok()?.trim();
        if v.contains(',') {
            return None;
        }
        match v.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }
}

/// The body does not decode as its `Content-Encoding` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the body is not valid {} data", .0.name())]
pub struct DecodeError(pub Coding);

/// Decodes `input` into `out` (cleared first), keeping at most `max` bytes, and returns the
/// whole decoded length. `complete` is false when `input` is only the first `max_body` bytes of
/// a longer body: its end is then cut, and that is not an error.
pub fn decode(coding: Coding, input: &[u8], complete: bool, max: usize, out: &mut Vec<u8>) -> Result<u64, DecodeError> {
    let r = match coding {
        Coding::Gzip => drain(flate2::read::GzDecoder::new(input), max, out),
        Coding::Deflate => match drain(flate2::read::ZlibDecoder::new(input), max, out) {
            Err(_) if out.is_empty() => drain(flate2::read::DeflateDecoder::new(input), max, out),
            r => r,
        },
        Coding::Brotli => drain(brotli_decompressor::Decompressor::new(input, 4096), max, out),
        Coding::Zstd => match ruzstd::decoding::StreamingDecoder::new(input) {
            Ok(d) => drain(d, max, out),
            Err(_) => {
                out.clear();
                Err(0)
            }
        },
    };
    match r {
        Ok(n) => Ok(n),
        Err(n) if !complete => Ok(n),
        Err(_) => Err(DecodeError(coding)),
    }
}

/// Reads `r` to its end: the first `max` bytes into `out`, the rest counted. `Err` carries what
/// was decoded before the stream failed.
fn drain(mut r: impl Read, max: usize, out: &mut Vec<u8>) -> Result<u64, u64> {
    const STEP: usize = 16 * 1024;
    out.clear();
    let mut total = 0u64;
    let mut scratch = [0u8; 4096];
    loop {
        let got = if out.len() < max {
            let start = out.len();
            out.resize(start + (max - start).min(STEP), 0);
            let got = r.read(&mut out[start..]);
            out.truncate(start + *got.as_ref().unwrap_or(&0));
            got
        } else {
            r.read(&mut scratch)
        };
        match got {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings_by_header() {
        assert_eq!(Coding::from_header(b"gzip"), Some(Coding::Gzip));
        assert_eq!(Coding::from_header(b" X-Gzip "), Some(Coding::Gzip));
        assert_eq!(Coding::from_header(b"br"), Some(Coding::Brotli));
        assert_eq!(Coding::from_header(b"deflate"), Some(Coding::Deflate));
        assert_eq!(Coding::from_header(b"identity"), None);
        assert_eq!(Coding::from_header(b"gzip, br"), None);
        assert_eq!(Coding::from_header(b"zstd"), Some(Coding::Zstd));
        assert_eq!(Coding::from_header(b"compress"), None);
    }

    #[test]
    fn keeps_max_bytes_and_counts_the_rest() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gzip(&data);
        let mut out = Vec::new();
        assert_eq!(decode(Coding::Gzip, &z, true, 1000, &mut out), Ok(data.len() as u64));
        assert_eq!(out, &data[..1000]);
        assert_eq!(
            decode(Coding::Gzip, &z, true, usize::MAX, &mut out),
            Ok(data.len() as u64)
        );
        assert_eq!(out, data);
    }

    #[test]
    fn a_cut_body_decodes_its_start_and_a_corrupt_one_fails() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{},", i.wrapping_mul(2_654_435_761)).into_bytes())
            .collect();
        let z = gzip(&data);
        let mut out = Vec::new();
        let n = decode(Coding::Gzip, &z[..z.len() / 2], false, 1 << 20, &mut out).unwrap();
        assert!(n > 0 && data.starts_with(&out), "{n}");
        assert_eq!(
            decode(Coding::Gzip, b"not gzip at all", true, 1 << 20, &mut out),
            Err(DecodeError(Coding::Gzip))
        );
    }

    #[test]
    fn zstd_round_trip_and_a_corrupt_one() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let z = ruzstd::encoding::compress_to_vec(&data[..], ruzstd::encoding::CompressionLevel::Fastest);
        let mut out = Vec::new();
        assert_eq!(decode(Coding::Zstd, &z, true, 100, &mut out), Ok(data.len() as u64));
        assert_eq!(out, &data[..100]);
        assert_eq!(
            decode(Coding::Zstd, b"\x28\xb5\x2f\xfd garbage", true, 100, &mut out),
            Err(DecodeError(Coding::Zstd))
        );
    }

    #[test]
    fn deflate_zlib_or_raw() {
        let data = b"deflated body".repeat(20);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let zlib = z.finish().unwrap();
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(&data).unwrap();
        let raw = r.finish().unwrap();
        let mut out = Vec::new();
        for input in [zlib, raw] {
            assert_eq!(
                decode(Coding::Deflate, &input, true, 1 << 20, &mut out),
                Ok(data.len() as u64)
            );
            assert_eq!(out, data);
        }
    }
}
