//! Histograms as V2 + DEFLATE, the encoding every HdrHistogram reader decodes.
//!
//! The `hdrhistogram` crate's `V2DeflateSerializer` builds a new zlib compressor for every
//! histogram (some hundreds of KB of zeroed state) at the default level. A load generator
//! writes a dozen interval histograms a second, so that set-up was most of its per-interval
//! CPU. This encoder keeps one zlib stream and resets it, at the fast level: the V2 body is
//! already run-length coded, so a higher level saves a few bytes a line at several times the
//! CPU. The output is byte-for-byte the same format (cookie, length, zlib stream); only the
//! deflate choices differ.
//!
//! Decoding inflates the whole zlib stream before reading the histogram, so its Adler-32
//! checksum is checked: a damaged log line is an error, never a different histogram.

use std::io::Read as _;

use flate2::{Compress, Compression, FlushCompress, Status};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};

use crate::recorder::HIGHEST_TRACKABLE_US;

/// `V2_COMPRESSED_COOKIE` of the HdrHistogram formats (0x1c849304 | 0x10).
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// A reusable V2 + DEFLATE encoder.
pub struct CompressedV2 {
    v2: V2Serializer,
    plain: Vec<u8>,
    zlib: Compress,
}

impl Default for CompressedV2 {
    fn default() -> Self {
        Self {
            v2: V2Serializer::new(),
            plain: Vec::with_capacity(4096),
            zlib: Compress::new(Compression::fast(), true),
        }
    }
}

impl std::fmt::Debug for CompressedV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompressedV2")
    }
}

impl CompressedV2 {
    /// Appends the encoding of `h` to `out`.
    pub fn encode(&mut self, h: &Histogram<u64>, out: &mut Vec<u8>) -> Result<(), String> {
        self.plain.clear();
        self.v2
            .serialize(h, &mut self.plain)
            .map_err(|e| format!("{e:?}"))?;
        state_highest_trackable(&mut self.plain);
        let start = out.len();
        out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        out.extend_from_slice(&[0; 4]); // the length, filled in below
        self.zlib.reset();
        out.reserve(self.plain.len() / 2 + 64);
        loop {
            let consumed = self.zlib.total_in() as usize;
            let status = self
                .zlib
                .compress_vec(&self.plain[consumed..], out, FlushCompress::Finish)
                .map_err(|e| e.to_string())?;
            match status {
                Status::StreamEnd => break,
                // Out of room in `out`: give it more and go on.
                Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
            }
        }
        let length = u32::try_from(out.len() - start - 8)
            .map_err(|_| "a compressed histogram over 4 GiB".to_string())?;
        out[start + 4..start + 8].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

/// Raises the highest trackable value in a V2 header (big-endian u64 at bytes 24..32,
/// after cookie, length, normalizing offset, digits and lowest value) to at least
/// [`HIGHEST_TRACKABLE_US`]: histograms start small and grow (see [`crate::recorder`]),
/// and a reader that decodes one sizes its histogram by this field, which must leave room
/// for what later merges add to it, as it always did.
fn state_highest_trackable(v2: &mut [u8]) {
    let field = &mut v2[24..32];
    let stated = u64::from_be_bytes(field.try_into().expect("eight bytes"));
    field.copy_from_slice(&stated.max(HIGHEST_TRACKABLE_US).to_be_bytes());
}

/// Reads a V2 histogram, compressed or not; a compressed one must inflate completely with
/// a good checksum.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, String> {
    let mut deserializer = Deserializer::new();
    let cookie = bytes
        .get(..4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    if cookie != Some(V2_COMPRESSED_COOKIE) {
        return deserializer
            .deserialize(&mut &bytes[..])
            .map_err(|e| e.to_string());
    }
    let length = bytes
        .get(4..8)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .ok_or("a compressed histogram shorter than its header")?;
    let stream = bytes
        .get(8..8 + length)
        .ok_or("a compressed histogram shorter than its stated length")?;
    let mut plain = Vec::with_capacity(length * 4);
    flate2::read::ZlibDecoder::new(stream)
        .read_to_end(&mut plain)
        .map_err(|e| format!("damaged compressed histogram: {e}"))?;
    deserializer
        .deserialize(&mut plain.as_slice())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

    use super::*;
    use crate::recorder::new_histogram;

    #[test]
    fn decodes_like_the_crates_own_encoding_and_is_reusable() {
        let mut enc = CompressedV2::default();
        for seed in 1..=3u64 {
            let mut h = new_histogram();
            for i in 0..10_000 * seed {
                h.record((i * 7_919 + seed) % 5_000_000 + 1).unwrap();
            }
            let mut ours = Vec::new();
            enc.encode(&h, &mut ours).unwrap();
            let mut theirs = Vec::new();
            V2DeflateSerializer::new()
                .serialize(&h, &mut theirs)
                .unwrap();
            assert_eq!(ours[..4], theirs[..4], "same cookie");
            for bytes in [&ours, &theirs] {
                let back: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .unwrap();
                // hdrhistogram's `==` walks the left side's counts: the original goes
                // left, as a decoded histogram has room for an hour (see the encoder).
                assert_eq!(h, back);
                assert_eq!(h, decode(bytes).unwrap());
            }
        }
    }

    #[test]
    fn a_small_histogram_decodes_with_room_for_an_hour() {
        let mut h = new_histogram();
        h.record(1_500_000).unwrap();
        assert!(
            h.high() < HIGHEST_TRACKABLE_US,
            "started small, grew to fit"
        );
        let mut bytes = Vec::new();
        CompressedV2::default().encode(&h, &mut bytes).unwrap();
        let mut back = decode(&bytes).unwrap();
        assert_eq!(h, back);
        assert!(back.high() >= HIGHEST_TRACKABLE_US, "{}", back.high());
        back.record(HIGHEST_TRACKABLE_US).unwrap();

        let mut grown = new_histogram();
        grown.record(10 * HIGHEST_TRACKABLE_US).unwrap();
        let mut bytes = Vec::new();
        CompressedV2::default().encode(&grown, &mut bytes).unwrap();
        assert_eq!(
            decode(&bytes).unwrap().high(),
            grown.high(),
            "never lowered"
        );
    }

    #[test]
    fn damage_anywhere_in_the_stream_is_an_error() {
        let mut h = new_histogram();
        for v in 1..=500u64 {
            h.record(v * 997).unwrap();
        }
        let mut bytes = Vec::new();
        CompressedV2::default().encode(&h, &mut bytes).unwrap();
        for at in 8..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x55;
            assert!(
                decode(&damaged).is_err(),
                "byte {at} damaged, still decoded"
            );
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "truncated");
    }
}
