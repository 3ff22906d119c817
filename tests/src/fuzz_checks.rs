//! Properties the fuzz targets check (fuzz/fuzz_targets/*), shared with the regression
//! tests that replay saved inputs (tests/fuzz_regressions.rs). Depends on
//! replication-core only, so the fuzz crate can include this file by path.
//!
//! Each check panics when a property fails; returning normally means the input was handled.

use replication_core::cdc::{CdcDecoder, CdcEvent, DecodeLimits};
use replication_core::merkle::{decode_member, encode_member};
use replication_core::{content_hash_hex, StreamId};

/// Field names the CDC input generator picks from (the last slot keeps the raw name).
const FIELDS: [&[u8]; 5] = [b"op", b"key", b"hash", b"data", b"meta"];
/// Decompressed-size cap used while fuzzing: small, so bombs are cheap to find.
const CAP: usize = 64 * 1024;

/// Splits fuzz input into `(field, value)` pairs: each pair is a selector byte (a known
/// field name, or the next bytes as a raw name), a length byte and that many value bytes;
/// the last value takes the rest.
pub fn cdc_fields(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while let [selector, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (name, tail) = match FIELDS.get(usize::from(*selector % 6)) {
            Some(name) => (name.to_vec(), tail),
            None => (tail[..len.min(8)].to_vec(), &tail[len.min(8)..]),
        };
        let len = len.min(tail.len());
        let value = if out.len() >= 6 {
            tail.to_vec()
        } else {
            tail[..len].to_vec()
        };
        let consumed = value.len();
        out.push((name, value));
        rest = &tail[consumed..];
    }
    out
}

/// The CDC decoder never panics; an accepted PUT has content within the cap whose
/// SHA-256 is the hash it claims; an accepted key is non-empty and within the id limits.
pub fn cdc_decode(data: &[u8]) {
    let mut decoder = CdcDecoder::new(DecodeLimits {
        max_decompressed_bytes: CAP,
        ..DecodeLimits::default()
    });
    let fields = cdc_fields(data);
    if let Ok(event) = decoder.decode(StreamId::new(1, 1), fields) {
        assert!(!event.key().is_empty(), "accepted an empty key");
        assert!(
            DecodeLimits::default()
                .object_ids
                .check_bounds(event.key())
                .is_ok(),
            "accepted a key over the id limits"
        );
        if let CdcEvent::Put(item) = event {
            assert!(
                item.content.len() <= CAP,
                "accepted {} bytes over the cap",
                item.content.len()
            );
            assert_eq!(
                content_hash_hex(&item.content),
                item.content_hash,
                "accepted content whose hash differs"
            );
        }
    }
}

/// The stream-id parser never panics, accepts only `<digits>-<digits>`, and what it
/// accepts prints back to an equal id.
pub fn stream_id(data: &[u8]) {
    if let Ok(id) = StreamId::from_bytes(data) {
        let text = std::str::from_utf8(data).expect("accepted non-UTF-8");
        let (ms, seq) = text.split_once('-').expect("accepted an id without '-'");
        assert!(
            ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit()),
            "accepted non-digits in {text:?}"
        );
        let again: StreamId = id.to_string().parse().expect("a printed id parses");
        assert_eq!(again, id);
    }
}

/// The children-member decoder never panics and round-trips what it accepts.
pub fn children_member(data: &[u8]) {
    if let Ok((segment, hash)) = decode_member(data) {
        assert_eq!(
            encode_member(&segment, &hash)
                .as_bytes()
                .to_ascii_lowercase(),
            data.to_ascii_lowercase()
        );
    }
}
