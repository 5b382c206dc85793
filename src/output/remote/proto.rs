//! The few protobuf wire rules that Prometheus remote write and OTLP need, written by hand: the
//! two message sets are small and fixed, and a code generator (prost + protoc) would cost the
//! build more than the encoders below. Only encoding: stampede never reads these messages.
//!
//! Messages are written inside out: a nested message is encoded into its own buffer, then
//! written as a length-delimited field of its parent ([`Writer::message`]). Fields with their
//! default value (0, empty) are left out, as proto3 does.

/// Appends protobuf fields to a byte buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    fn key(&mut self, field: u32, wire: u64) {
        self.varint_raw((u64::from(field) << 3) | wire);
    }

    fn varint_raw(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// `uint32`, `uint64`, `int64` (non-negative here), `bool`, enums.
    pub fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, VARINT);
            self.varint_raw(v);
        }
    }

    /// `int64` that may be negative (two's complement, ten bytes when negative).
    pub fn int64(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }

    /// `sint32` / `sint64` (zigzag).
    pub fn sint(&mut self, field: u32, v: i64) {
        self.uint(field, ((v << 1) ^ (v >> 63)) as u64);
    }

    /// `double`.
    pub fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A `double` written even when 0 (an `optional` field, or one inside a `oneof`, where
    /// presence is the meaning).
    pub fn double_always(&mut self, field: u32, v: f64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `fixed64`.
    pub fn fixed64(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A `fixed64` / `sfixed64` written even when 0 (inside a `oneof`).
    pub fn fixed64_always(&mut self, field: u32, v: u64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `string` written even when empty (inside a `oneof`).
    pub fn bytes_always(&mut self, field: u32, v: &[u8]) {
        self.key(field, LEN);
        self.varint_raw(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// `string` / `bytes`.
    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        if !v.is_empty() {
            self.key(field, LEN);
            self.varint_raw(v.len() as u64);
            self.buf.extend_from_slice(v);
        }
    }

    /// A length-delimited field whose bytes are `parts` one after another (a message from
    /// pieces already encoded, e.g. a series' cached labels and this second's sample).
    pub fn concat(&mut self, field: u32, parts: &[&[u8]]) {
        self.key(field, LEN);
        self.varint_raw(parts.iter().map(|p| p.len() as u64).sum());
        for p in parts {
            self.buf.extend_from_slice(p);
        }
    }

    /// The head of a length-delimited field whose `len` bytes the caller writes next: for a
    /// message whose size is known before it is written (no scratch buffer, no second copy).
    pub fn len_field(&mut self, field: u32, len: usize) {
        self.key(field, LEN);
        self.varint_raw(len as u64);
    }

    /// A nested message, written even when empty (its presence may matter).
    pub fn message(&mut self, field: u32, m: &Writer) {
        self.key(field, LEN);
        self.varint_raw(m.buf.len() as u64);
        self.buf.extend_from_slice(&m.buf);
    }

    /// A nested message built by `f` into a fresh writer.
    pub fn nested(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        let mut m = Writer::new();
        f(&mut m);
        self.message(field, &m);
    }

    /// `repeated uint64` / `repeated fixed64`-free packed varints.
    pub fn packed_uint(&mut self, field: u32, vs: impl IntoIterator<Item = u64>) {
        let mut m = Writer::new();
        for v in vs {
            m.varint_raw(v);
        }
        if !m.buf.is_empty() {
            self.message(field, &m);
        }
    }

    /// `repeated sint64`, packed.
    pub fn packed_sint(&mut self, field: u32, vs: impl IntoIterator<Item = i64>) {
        self.packed_uint(field, vs.into_iter().map(|v| ((v << 1) ^ (v >> 63)) as u64));
    }
}

/// The bytes `v` takes as a varint.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The bytes a field of `field` takes with a value of `len` bytes (key, length, value).
pub fn len_field_size(field: u32, len: usize) -> usize {
    varint_len(u64::from(field) << 3) + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_encoded_as_protobuf_specifies() {
        let mut w = Writer::new();
        w.uint(1, 150);
        assert_eq!(w.buf, [0x08, 0x96, 0x01]);
        let mut w = Writer::new();
        w.bytes(2, b"testing");
        assert_eq!(w.buf, [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
        let mut w = Writer::new();
        w.sint(1, -1);
        w.sint(1, 1);
        assert_eq!(w.buf, [0x08, 0x01, 0x08, 0x02]);
        let mut w = Writer::new();
        w.double(1, 1.0);
        assert_eq!(w.buf, [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
        let mut w = Writer::new();
        w.int64(2, -1);
        assert_eq!(w.buf.len(), 11);
        let mut w = Writer::new();
        w.packed_uint(4, [3, 270]);
        assert_eq!(w.buf, [0x22, 0x03, 0x03, 0x8e, 0x02]);
        let mut w = Writer::new();
        w.uint(3, 0);
        w.bytes(3, b"");
        assert!(w.buf.is_empty(), "defaults are left out");
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut w = Writer::new();
            w.varint_raw(v);
            assert_eq!(varint_len(v), w.buf.len(), "{v}");
        }
        let mut w = Writer::new();
        w.len_field(2, 300);
        assert_eq!(len_field_size(2, 300), w.buf.len() + 300);
    }
}
