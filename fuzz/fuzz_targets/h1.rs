//! The HTTP/1.1 response parser (`stampede_engine::http::h1::parse`, which the app re-exports
//! as `stampede::http::h1::parse`) on arbitrary bytes: `head` never panics and reports a head no
//! longer than its input, which no shorter prefix completes; `Chunked` decodes a body the same
//! (body, bytes consumed, error, done) whether it is fed whole, a byte at a time or in pieces of
//! pseudo-random sizes.
//!
//! The first input byte chooses: bit 0, a response to HEAD; the rest seeds the piece sizes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stampede_engine::http::h1::parse::{head, Chunked, Framing, Malformed};

/// What decoding `input` gave: the body, then the bytes consumed or the error, and whether
/// the body ended.
type Decoded = (Vec<u8>, Result<usize, Malformed>, bool);

/// Feeds `input` to a fresh decoder in pieces of `next()` bytes (at least 1).
fn decode(input: &[u8], mut next: impl FnMut() -> usize) -> Decoded {
    let mut d = Chunked::default();
    let mut body = Vec::new();
    let mut at = 0;
    while at < input.len() && !d.is_done() {
        let n = next().clamp(1, input.len() - at);
        match d.feed(&input[at..at + n], &mut |b| body.extend_from_slice(b)) {
            Ok(used) => {
                assert!(used <= n, "consumed {used} of {n}");
                assert!(
                    used == n || d.is_done(),
                    "stopped early at {used} of {n} without the end"
                );
                at += used;
            }
            Err(e) => return (body, Err(e), false),
        }
    }
    (body, Ok(at), d.is_done())
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let head_request = control & 1 == 1;
    let mut spans = Vec::new();
    if let Ok(Some(h)) = head(input, head_request, &mut spans) {
        assert!(
            h.len >= 1 && h.len <= input.len(),
            "head of {} bytes in {}",
            h.len,
            input.len()
        );
        if head_request {
            assert_eq!(h.framing, Framing::Empty);
        }
        let mut again = Vec::new();
        assert!(
            !matches!(head(&input[..h.len - 1], head_request, &mut again), Ok(Some(_))),
            "a prefix of the head is already a head"
        );
        assert_eq!(head(&input[..h.len], head_request, &mut again), Ok(Some(h)));
    }

    let whole = decode(input, || usize::MAX);
    assert_eq!(decode(input, || 1), whole, "byte by byte");
    let mut state = u32::from(control >> 1) | 0x9e37_0000;
    let pieces = decode(input, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        1 + (state % 23) as usize
    });
    assert_eq!(pieces, whole, "in pieces");
});
