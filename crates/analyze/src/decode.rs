//! Decoding one interval's histogram payload into `(bucket index, count)` pairs, reusing
//! buffers.
//!
//! Why it exists: a two-hour, sixteen-shard run holds over half a million interval histograms.
//! The `hdrhistogram` crate's deserializer allocates (and zeroes) a full histogram for each,
//! about 180 KB at surge's range, and adding it to a total then walks every bucket; that would
//! dominate the report's time. This decoder keeps its base64, inflate and pair buffers
//! between calls and yields only the non-zero buckets with the [`Layout`] they were encoded
//! in, so the caller can add counts by index (see [`crate::counts`]) — the same result as
//! `Histogram::add`. It reads the V2 encoding (cookie `0x1c849313`) and its DEFLATE-compressed
//! form (`0x1c849314`), the forms every HdrHistogram implementation writes into interval logs.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zlib_rs::{Inflate, InflateFlush, Status};

const V2_COOKIE_BASE: u32 = 0x1c84_9303;
const V2_COMPRESSED_COOKIE_BASE: u32 = 0x1c84_9304;
/// V2 header after the cookie: payload length, normalizing offset, digits, low, high, ratio.
const V2_HEADER_LEN: usize = 4 + 4 + 4 + 8 + 8 + 8;
/// zlib's default (and largest) window.
const WINDOW_BITS: u8 = 15;

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The bucket layout of an HdrHistogram: what a counts index means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    unit_magnitude: u32,
    half_count_magnitude: u32,
    half_count: u64,
}

impl Layout {
    /// surge's histograms: lowest discernible value 1 µs, 3 significant digits.
    pub const SURGE: Layout = Layout {
        unit_magnitude: 0,
        half_count_magnitude: 10,
        half_count: 1024,
    };

    /// The layout of a histogram with this lowest discernible value and precision.
    pub fn new(low: u64, digits: u32) -> Result<Layout, String> {
        if low == 0 || digits > 5 {
            return Err(format!(
                "invalid histogram parameters (lowest {low}, digits {digits})"
            ));
        }
        let unit_magnitude = 63 - low.leading_zeros();
        let largest = 2 * 10u64.pow(digits);
        let count_magnitude = 64 - (largest - 1).leading_zeros();
        if unit_magnitude + count_magnitude > 63 {
            return Err("histogram parameters exceed 64-bit values".to_string());
        }
        Ok(Layout {
            unit_magnitude,
            half_count_magnitude: count_magnitude - 1,
            half_count: 1 << (count_magnitude - 1),
        })
    }

    /// HdrHistogram's `valueFromIndex`: the lowest value of bucket `index`, if it fits u64.
    pub fn value(&self, index: usize) -> Option<u64> {
        let index = index as u64;
        let mut bucket = (index >> self.half_count_magnitude) as i64 - 1;
        let mut sub = (index & (self.half_count - 1)) + self.half_count;
        if bucket < 0 {
            sub -= self.half_count;
            bucket = 0;
        }
        let shift = bucket as u32 + self.unit_magnitude;
        (shift < 64 && u128::from(sub) << shift <= u128::from(u64::MAX)).then(|| sub << shift)
    }

    /// HdrHistogram's `countsArrayIndex`: the bucket holding `value`.
    pub fn index(&self, value: u64) -> usize {
        let sub_bucket_mask = ((self.half_count << 1) - 1) << self.unit_magnitude;
        let base = 64 - self.unit_magnitude - self.half_count_magnitude - 1;
        let bucket = u64::from(base - (value | sub_bucket_mask).leading_zeros());
        let sub = value >> (bucket as u32 + self.unit_magnitude);
        (((bucket + 1) << self.half_count_magnitude) + sub - self.half_count) as usize
    }
}

/// One decoded payload: its layout and its non-zero buckets in ascending index order.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub layout: Layout,
    pub pairs: &'a [(usize, u64)],
}

/// Reusable decoder; one per reading thread.
pub struct PayloadDecoder {
    raw: Vec<u8>,
    /// Inflate output; its length is the buffer size, `inflated` the bytes in use.
    out: Vec<u8>,
    inflated: usize,
    inflater: Inflate,
    pairs: Vec<(usize, u64)>,
}

impl Default for PayloadDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PayloadDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadDecoder").finish_non_exhaustive()
    }
}

impl PayloadDecoder {
    pub fn new() -> PayloadDecoder {
        PayloadDecoder {
            raw: Vec::with_capacity(4096),
            out: vec![0; 16 * 1024],
            inflated: 0,
            inflater: Inflate::new(true, WINDOW_BITS),
            pairs: Vec::with_capacity(4096),
        }
    }

    /// Decode base64 text of a V2 (compressed or not) histogram into its non-zero buckets.
    pub fn decode(&mut self, base64_text: &str) -> Result<Decoded<'_>, String> {
        self.raw.clear();
        B64.decode_vec(base64_text.trim(), &mut self.raw)
            .map_err(|e| format!("bad base64: {e}"))?;
        let cookie = read_u32(&self.raw, 0).ok_or("payload shorter than its cookie")?;
        let body = match cookie & !0xf0 {
            V2_COMPRESSED_COOKIE_BASE => {
                let len = read_u32(&self.raw, 4).ok_or("compressed payload without length")?;
                let end = 8usize.saturating_add(len as usize).min(self.raw.len());
                self.inflate(end)?;
                let body = &self.out[..self.inflated];
                let inner = read_u32(body, 0).ok_or("empty compressed payload")?;
                if inner & !0xf0 != V2_COOKIE_BASE {
                    return Err(format!("unknown inner cookie {inner:#010x}"));
                }
                &body[4..]
            }
            V2_COOKIE_BASE => &self.raw[4..],
            _ => return Err(format!("unknown histogram cookie {cookie:#010x} (not V2)")),
        };
        let layout = decode_v2_body(body, &mut self.pairs)?;
        Ok(Decoded {
            layout,
            pairs: &self.pairs,
        })
    }

    /// Inflate `raw[8..end]` into `out`, growing it when a payload is larger than any before.
    fn inflate(&mut self, end: usize) -> Result<(), String> {
        let input = &self.raw[8..end];
        self.inflater.reset(true);
        loop {
            let read = self.inflater.total_in() as usize;
            let written = self.inflater.total_out() as usize;
            let status = self
                .inflater
                .decompress(
                    &input[read..],
                    &mut self.out[written..],
                    InflateFlush::Finish,
                )
                .map_err(|e| format!("bad compressed payload ({})", e.as_str()))?;
            let written = self.inflater.total_out() as usize;
            if status == Status::StreamEnd {
                self.inflated = written;
                return Ok(());
            }
            if written < self.out.len() {
                return Err("compressed payload ends early (truncated?)".to_string());
            }
            let len = self.out.len() * 2;
            self.out.resize(len, 0);
        }
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn decode_v2_body(body: &[u8], pairs: &mut Vec<(usize, u64)>) -> Result<Layout, String> {
    if body.len() < V2_HEADER_LEN {
        return Err("histogram header truncated".to_string());
    }
    let payload_len = read_u32(body, 0).unwrap_or(0) as usize;
    let normalizing = read_u32(body, 4).unwrap_or(0);
    let digits = read_u32(body, 8).unwrap_or(0);
    let low = read_u64(body, 12).unwrap_or(0);
    let ratio = f64::from_bits(read_u64(body, 28).unwrap_or(0));
    if normalizing != 0 {
        return Err("normalizing index offset is not supported".to_string());
    }
    if ratio != 1.0 {
        return Err("double histograms (conversion ratio ≠ 1) are not supported".to_string());
    }
    let layout = Layout::new(low, digits)?;
    let counts = body
        .get(V2_HEADER_LEN..V2_HEADER_LEN + payload_len)
        .ok_or("histogram counts truncated")?;
    pairs.clear();
    let mut index: usize = 0;
    let mut at = 0;
    while at < counts.len() {
        // One-byte values (small counts, short zero runs) are the common case.
        let b = counts[at];
        let zz = if b & 0x80 == 0 {
            at += 1;
            u64::from(b)
        } else {
            let (v, used) = read_varint(&counts[at..]).ok_or("histogram counts truncated")?;
            at += used;
            v
        };
        let n = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        if n < 0 {
            index = index.saturating_add(n.unsigned_abs() as usize);
        } else {
            if n > 0 {
                pairs.push((index, n as u64));
            }
            index += 1;
        }
    }
    if let Some(&(last, _)) = pairs.last() {
        layout
            .value(last)
            .ok_or("histogram counts extend beyond 64-bit values")?;
    }
    Ok(layout)
}

/// HdrHistogram's LEB128 variant: at most 9 bytes, the ninth contributing all 8 bits.
fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *b.get(i)?;
        if i == 8 {
            return Some((value | (u64::from(byte) << 56), 9));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use surge_record::hlog::{decode_histogram, encode_histogram};

    fn rebuild(d: Decoded<'_>) -> Histogram<u64> {
        let mut h = surge_record::new_histogram();
        for &(i, n) in d.pairs {
            h.record_n(d.layout.value(i).unwrap(), n).unwrap();
        }
        h
    }

    #[test]
    fn layout_matches_hdrhistogram() {
        assert_eq!(Layout::new(1, 3).unwrap(), Layout::SURGE);
        let l = Layout::SURGE;
        let h = surge_record::new_histogram();
        for v in [
            0u64,
            1,
            1023,
            1024,
            2047,
            2048,
            2049,
            4095,
            1_000_000,
            3_600_000_000,
            u64::MAX / 4,
        ] {
            let i = l.index(v);
            let low = l.value(i).unwrap();
            assert_eq!(low, h.lowest_equivalent(v), "value {v}");
            assert_eq!(l.index(low), i);
        }
        for i in [0usize, 1, 2047, 2048, 5000, 22_000] {
            assert_eq!(l.index(l.value(i).unwrap()), i);
        }
    }

    #[test]
    fn matches_the_crate_deserializer() {
        let mut h = surge_record::new_histogram();
        let mut s = 7u64;
        for _ in 0..20_000 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            h.record(1 + (s >> 20) % 30_000_000).unwrap();
        }
        h.record(5 * 3_600_000_000).unwrap(); // auto-resized beyond 1 h
        let text = encode_histogram(&h).unwrap();
        let mut d = PayloadDecoder::new();
        let ours = rebuild(d.decode(&text).unwrap());
        let theirs = decode_histogram(&text).unwrap();
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours.max(), theirs.max());
        assert_eq!(ours.min(), theirs.min());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                ours.value_at_quantile(q),
                theirs.value_at_quantile(q),
                "q={q}"
            );
        }
        // Reusable, and other layouts come with their own meaning.
        let mut small = Histogram::<u64>::new_with_bounds(1000, 10_000_000, 2).unwrap();
        small.record_n(123_456, 3).unwrap();
        let decoded = d.decode(&encode_histogram(&small).unwrap()).unwrap();
        assert_ne!(decoded.layout, Layout::SURGE);
        assert_eq!(decoded.pairs.len(), 1);
        assert_eq!(decoded.pairs[0].1, 3);
        let v = decoded.layout.value(decoded.pairs[0].0).unwrap();
        assert!(small.equivalent(v, 123_456));
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let h = {
            let mut h = surge_record::new_histogram();
            h.record(1000).unwrap();
            encode_histogram(&h).unwrap()
        };
        let mut d = PayloadDecoder::new();
        for bad in [
            "",
            "!!!",
            "AAAA",
            &h[..h.len() / 2],
            &h[..12],
            "HISTFAAAACZ4nJNpmSzMwMDAxgABzFCa",
        ] {
            assert!(d.decode(bad).is_err(), "{bad:?}");
        }
        assert!(d.decode(&h).is_ok());
    }
}
