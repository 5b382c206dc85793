//! One second's latency histogram, packed: its non-zero buckets as varint (index gap, count)
//! pairs. The findings' joint timeline keeps one per client second (windows, drift and the
//! findings merge any set of seconds later), and a full histogram per second is what made a
//! long run's report grow by ~300 MB per hour: a merged second of 20 endpoints has about a
//! thousand non-zero buckets of the 4,000 its range spans, each kept here in 2-3 bytes instead
//! of 8. Unpacked into an HdrHistogram, a packed second has exactly the counts it was packed
//! from, so every percentile, average and count merged from packed seconds is the one the full
//! histograms gave.

use crate::recorder::Hist;

/// HdrHistogram's layout at 3 significant digits and a lowest value of 1 (the run directory's
/// only one, see `stampede_rundir::hist`): 2,048 sub-buckets, the upper half of each bucket
/// doubling in width. Values below 2,048 are their own index.
const SUB_BITS: u32 = 11;
const HALF: u64 = 1 << (SUB_BITS - 1);

/// The bucket index of `v`: every value of one HdrHistogram bucket has the same index.
fn index_of(v: u64) -> usize {
    if v < 2 * HALF {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - (SUB_BITS - 1);
    (shift as u64 * HALF + (v >> shift)) as usize
}

/// The lowest value of the bucket at `index` (the inverse of [`index_of`] on lowest values).
fn value_of(index: usize) -> u64 {
    let i = index as u64;
    if i < 2 * HALF {
        return i;
    }
    let shift = i / HALF - 1;
    (i - shift * HALF) << shift
}

/// A packed histogram: empty, or varint pairs (gap from the previous bucket's index, count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed(Box<[u8]>);

impl Packed {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Its buckets as (lowest value, count), in value order.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut bytes = self.0.iter();
        let mut index = 0usize;
        std::iter::from_fn(move || {
            let gap = varint(&mut bytes)?;
            let count = varint(&mut bytes)?;
            index += gap as usize;
            Some((value_of(index), count))
        })
    }

    /// Adds its counts to `h` (an auto-resizing histogram widens to them; a fixed one drops
    /// a value beyond its range, as `Histogram::add` would have refused it).
    pub fn add_to(&self, h: &mut Hist) {
        for (value, count) in self.buckets() {
            let _ = h.record_n(value, count);
        }
    }

    /// A histogram's buckets packed.
    #[cfg(test)]
    pub fn of(h: &Hist) -> Packed {
        let mut p = Packer::default();
        p.add_hist(h);
        p.pack()
    }
}

fn varint<'a>(bytes: &mut impl Iterator<Item = &'a u8>) -> Option<u64> {
    let (mut v, mut shift) = (0u64, 0u32);
    loop {
        let b = *bytes.next()?;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Merges the buckets of one second (its steps') and packs them: a dense count per index,
/// reused from second to second, and the range touched, so packing walks only that range.
#[derive(Default)]
pub struct Packer {
    counts: Vec<u64>,
    low: usize,
    high: usize,
    bytes: Vec<u8>,
}

impl Packer {
    /// Adds buckets given as (any value of the bucket, count).
    pub fn add_buckets(&mut self, buckets: &[(u64, u64)]) {
        for &(v, n) in buckets {
            self.add(v, n);
        }
    }

    pub fn add_hist(&mut self, h: &Hist) {
        for v in h.iter_recorded() {
            self.add(v.value_iterated_to(), v.count_at_value());
        }
    }

    fn add(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        let i = index_of(value);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        if self.high == 0 {
            (self.low, self.high) = (i, i + 1);
        } else {
            self.low = self.low.min(i);
            self.high = self.high.max(i + 1);
        }
        self.counts[i] += count;
    }

    /// The merged buckets packed; the packer is empty again.
    pub fn pack(&mut self) -> Packed {
        self.bytes.clear();
        let mut last = 0usize;
        for i in self.low..self.high {
            let n = std::mem::take(&mut self.counts[i]);
            if n > 0 {
                put_varint(&mut self.bytes, (i - last) as u64);
                put_varint(&mut self.bytes, n);
                last = i;
            }
        }
        (self.low, self.high) = (0, 0);
        Packed(self.bytes.as_slice().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{new_growable, new_hist};

    #[test]
    fn indexes_follow_the_histogram_buckets() {
        let h = new_hist();
        for v in [
            0u64,
            1,
            2047,
            2048,
            2049,
            4095,
            4096,
            123_456,
            3_600_000_000,
            u64::MAX / 4,
        ] {
            let i = index_of(v);
            assert_eq!(value_of(i), h.lowest_equivalent(v), "v {v}");
            assert_eq!(index_of(h.lowest_equivalent(v)), i);
            assert_eq!(index_of(h.highest_equivalent(v)), i, "v {v}");
        }
        assert_eq!(index_of(h.highest_equivalent(2047) + 1), 2048);
    }

    /// Packed and unpacked, a merge of histograms has every count, percentile, mean, min and
    /// max of the histograms added.
    #[test]
    fn a_packed_merge_unpacks_to_the_histograms_added() {
        let (mut a, mut b) = (new_hist(), new_hist());
        for i in 0..5_000u64 {
            a.record(1 + i * 97 % 300_000).unwrap();
            b.record(20_000 + i * 31 % 7_000_000).unwrap();
        }
        let mut p = Packer::default();
        p.add_hist(&a);
        p.add_hist(&b);
        let packed = p.pack();
        let mut full = new_growable();
        full.add(&a).unwrap();
        full.add(&b).unwrap();
        let mut back = new_growable();
        packed.add_to(&mut back);
        assert_eq!(back.len(), full.len());
        for q in [0.0, 0.5, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(back.value_at_quantile(q), full.value_at_quantile(q), "q {q}");
        }
        assert_eq!(
            (back.min(), back.max(), back.mean()),
            (full.min(), full.max(), full.mean())
        );
        assert!(
            packed.0.len() < back.iter_recorded().count() * 4,
            "{} bytes",
            packed.0.len()
        );
        // The packer starts empty again.
        assert!(p.pack().is_empty());
        assert_eq!(Packed::of(&a).buckets().map(|b| b.1).sum::<u64>(), 5_000);
    }
}
