//! Entries over the entry cap are rejected the moment they are read, before they travel
//! through the prefetch channel and wait for decoding: what a read holds from then on is
//! bounded by what the decoder would accept.
//!
//! A Redis reply arrives as one buffer and every field value is a slice of it, so dropping
//! an oversized entry alone would free nothing: the others still pin the buffer. When a
//! read held an oversized entry, the kept entries' fields are copied out, so the buffer is
//! freed with the reply.

use bytes::Bytes;
use replication_core::{CdcDecodeError, DecodeLimits, RawEntry};

/// One entry of a read: still encoded, or already rejected.
#[derive(Debug)]
pub(super) enum Screened {
    Raw(RawEntry),
    Rejected(CdcDecodeError),
}

/// Rejects entries over `limits.max_entry_bytes()`; returns every entry in order and the
/// bytes of the read as it came (for the adaptive read size).
pub(super) fn screen(entries: Vec<RawEntry>, limits: &DecodeLimits) -> (Vec<Screened>, usize) {
    let read_bytes = entries.iter().map(entry_bytes).sum();
    let mut rejected_any = false;
    let screened: Vec<Screened> = entries
        .into_iter()
        .map(
            |entry| match limits.check_entry_size(entry.id, &entry.fields) {
                Ok(()) => Screened::Raw(entry),
                Err(rejected) => {
                    rejected_any = true;
                    Screened::Rejected(rejected)
                }
            },
        )
        .collect();
    if !rejected_any {
        return (screened, read_bytes);
    }
    let detached = screened
        .into_iter()
        .map(|screened| match screened {
            Screened::Raw(entry) => Screened::Raw(detach(entry)),
            rejected => rejected,
        })
        .collect();
    (detached, read_bytes)
}

fn entry_bytes(entry: &RawEntry) -> usize {
    entry
        .fields
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum()
}

/// The entry with its fields in buffers of their own.
fn detach(entry: RawEntry) -> RawEntry {
    RawEntry {
        id: entry.id,
        fields: entry
            .fields
            .into_iter()
            .map(|(name, value)| {
                (
                    Bytes::copy_from_slice(&name),
                    Bytes::copy_from_slice(&value),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_core::{RejectReason, StreamId};

    /// Entries whose fields are slices of one buffer, as a Redis reply gives them.
    fn reply(sizes: &[usize]) -> (Bytes, Vec<RawEntry>) {
        let total: usize = sizes.iter().map(|s| s + 3).sum();
        let buffer = Bytes::from(vec![b'x'; total]);
        let mut at = 0;
        let entries = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let key = buffer.slice(at..at + 3);
                let data = buffer.slice(at + 3..at + 3 + size);
                at += 3 + size;
                RawEntry {
                    id: StreamId::new(1, i as u64),
                    fields: vec![
                        (Bytes::from_static(b"key"), key),
                        (Bytes::from_static(b"data"), data),
                    ],
                }
            })
            .collect();
        (buffer, entries)
    }

    fn points_into(buffer: &Bytes, value: &Bytes) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&value.as_ptr())
    }

    #[test]
    fn an_oversized_entry_is_rejected_and_the_reply_buffer_let_go() {
        let limits = DecodeLimits {
            max_decompressed_bytes: 1_000,
            ..DecodeLimits::default()
        };
        let (buffer, entries) = reply(&[10, limits.max_entry_bytes() + 1, 20]);
        let (screened, bytes) = screen(entries, &limits);
        assert_eq!(bytes, buffer.len() + 3 * "keydata".len());
        assert_eq!(screened.len(), 3);
        match &screened[1] {
            Screened::Rejected(e) => {
                assert!(matches!(e.reason, RejectReason::EntryTooLarge { .. }));
                assert_eq!(e.entry_id, StreamId::new(1, 1));
                assert_eq!(e.key.as_deref(), Some("xxx"));
            }
            other => panic!("{other:?}"),
        }
        for kept in [&screened[0], &screened[2]] {
            let Screened::Raw(entry) = kept else {
                panic!("{kept:?}")
            };
            assert!(entry.fields.iter().all(|(_, v)| !points_into(&buffer, v)));
        }
    }

    #[test]
    fn a_read_within_the_cap_is_kept_as_it_came() {
        let (buffer, entries) = reply(&[10, 20]);
        let (screened, _) = screen(entries, &DecodeLimits::default());
        for kept in &screened {
            let Screened::Raw(entry) = kept else {
                panic!("{kept:?}")
            };
            assert!(
                points_into(&buffer, &entry.fields[1].1),
                "no copy when none is rejected"
            );
        }
    }
}
