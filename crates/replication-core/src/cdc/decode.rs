//! Decoding and verification of CDC entries. Every rejection names the entry and the reason.

use super::compression::is_zstd_frame;
use super::meta::MetaIn;
use super::{field, CdcEvent};
use crate::item::{content_hash, hash_to_hex, parse_hash_hex};
use crate::merkle::ObjectIdProblem;
use crate::tombstone_json::decode_tombstone_json;
use crate::{ContentType, ObjectIdLimits, StreamId, SyncItem};
use std::fmt;

/// Bounds the decoder enforces on untrusted input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest decompressed content accepted; larger entries are rejected (zstd bombs).
    pub max_decompressed_bytes: usize,
    /// Bounds on the entry's key (length and depth).
    pub object_ids: ObjectIdLimits,
}

impl DecodeLimits {
    /// 16 MiB: far above any sane item, far below what a bomb could make us allocate.
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 16 * 1024 * 1024;
    /// What an entry may carry besides its data: the key (bounded by the id limits), the
    /// hash, the op and the meta JSON (content type, version, time, trace context).
    pub const ENTRY_OVERHEAD_BYTES: usize = 64 * 1024;

    /// The most bytes one raw entry may hold, all fields counted: the content cap plus
    /// [`Self::ENTRY_OVERHEAD_BYTES`] and the key. A larger entry is rejected as
    /// [`RejectReason::EntryTooLarge`] as soon as it is read, before it is held any longer.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_decompressed_bytes
            .saturating_add(Self::ENTRY_OVERHEAD_BYTES)
            .saturating_add(self.object_ids.max_bytes)
    }

    /// Rejects an entry whose fields hold more than [`DecodeLimits::max_entry_bytes`], so
    /// that a reader can drop it as soon as it is read (the decoder applies the same rule).
    pub fn check_entry_size<F, V>(
        &self,
        entry_id: StreamId,
        fields: &[(F, V)],
    ) -> Result<(), CdcDecodeError>
    where
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let size = fields
            .iter()
            .map(|(name, value)| name.as_ref().len() + value.as_ref().len())
            .sum();
        if size <= self.max_entry_bytes() {
            return Ok(());
        }
        let key = fields
            .iter()
            .find(|(name, _)| name.as_ref() == field::KEY.as_bytes())
            .map(|(_, value)| value.as_ref());
        Err(oversized(self, entry_id, size, key))
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: Self::DEFAULT_MAX_DECOMPRESSED_BYTES,
            object_ids: ObjectIdLimits::default(),
        }
    }
}

/// Why an entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// A mandatory field is absent.
    MissingField(&'static str),
    /// `op` is not PUT, DEL or DELETE.
    UnknownOp(String),
    /// A text field holds bytes that are not UTF-8.
    NotUtf8(&'static str),
    /// The key is empty.
    EmptyKey,
    /// The key is longer or deeper than the configured limits.
    KeyOverLimit(ObjectIdProblem),
    /// `hash` is not 64 hex characters.
    MalformedHash,
    /// `meta` is not valid JSON of the expected shape.
    InvalidMeta(String),
    /// `data` looked compressed, did not decompress, and its raw bytes do not match `hash`.
    Undecodable(String),
    /// The entry's fields together hold more than [`DecodeLimits::max_entry_bytes`].
    EntryTooLarge {
        /// Bytes in the entry's field names and values.
        size: usize,
        /// The cap in bytes.
        limit: usize,
    },
    /// The decompressed content would exceed the configured cap.
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The content's SHA-256 differs from `hash`.
    HashMismatch {
        /// The hash the entry claims.
        expected: String,
        /// The hash of the content we decoded.
        actual: String,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::MissingField(name) => write!(f, "missing field `{name}`"),
            RejectReason::UnknownOp(op) => write!(f, "unknown op {op:?}"),
            RejectReason::NotUtf8(name) => write!(f, "field `{name}` is not UTF-8"),
            RejectReason::EmptyKey => f.write_str("empty key"),
            RejectReason::KeyOverLimit(problem) => write!(f, "key: {problem}"),
            RejectReason::MalformedHash => f.write_str("field `hash` is not 64 hex characters"),
            RejectReason::InvalidMeta(why) => write!(f, "invalid meta: {why}"),
            RejectReason::Undecodable(why) => write!(f, "undecodable data: {why}"),
            RejectReason::EntryTooLarge { size, limit } => write!(
                f,
                "entry holds {size} bytes, over the {limit}-byte cap \
                 (settings.hot_path.max_content_bytes plus room for key and meta)"
            ),
            RejectReason::TooLarge { limit } => {
                write!(f, "decompressed content exceeds the {limit}-byte cap")
            }
            RejectReason::HashMismatch { expected, actual } => {
                write!(
                    f,
                    "hash mismatch: entry says {expected}, content is {actual}"
                )
            }
        }
    }
}

impl RejectReason {
    /// A short stable label for metrics (`reason` label of rejected-entry counters).
    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::MissingField(_) => "missing_field",
            RejectReason::UnknownOp(_) => "unknown_op",
            RejectReason::NotUtf8(_) => "not_utf8",
            RejectReason::EmptyKey => "empty_key",
            RejectReason::KeyOverLimit(problem) => problem.label(),
            RejectReason::MalformedHash => "malformed_hash",
            RejectReason::InvalidMeta(_) => "invalid_meta",
            RejectReason::Undecodable(_) => "undecodable",
            RejectReason::EntryTooLarge { .. } | RejectReason::TooLarge { .. } => "too_large",
            RejectReason::HashMismatch { .. } => "hash_mismatch",
        }
    }
}

/// A CDC entry that is bad input: never applied, counted, and skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rejected CDC entry {entry_id} (key {key:?}): {reason}")]
pub struct CdcDecodeError {
    /// Stream id of the entry.
    pub entry_id: StreamId,
    /// The key, when it could be read.
    pub key: Option<String>,
    /// Why it was rejected.
    pub reason: RejectReason,
}

/// Decodes CDC entries, reusing one zstd decompression context across entries
/// (a fresh context per entry costs several times the decode itself).
pub struct CdcDecoder {
    limits: DecodeLimits,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl fmt::Debug for CdcDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CdcDecoder")
            .field("limits", &self.limits)
            .finish()
    }
}

impl CdcDecoder {
    /// A decoder enforcing `limits`.
    ///
    /// # Panics
    /// Only if zstd cannot allocate a decompression context (out of memory).
    pub fn new(limits: DecodeLimits) -> Self {
        let decompressor = zstd::bulk::Decompressor::new()
            .expect("allocating a zstd decompression context only fails when out of memory");
        Self {
            limits,
            decompressor,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> DecodeLimits {
        self.limits
    }

    /// Decodes one entry from its `(field, value)` pairs as Redis returns them.
    pub fn decode<F, V>(
        &mut self,
        entry_id: StreamId,
        fields: impl IntoIterator<Item = (F, V)>,
    ) -> Result<CdcEvent, CdcDecodeError>
    where
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut raw = RawEntry::default();
        let mut size = 0usize;
        for (name, value) in fields {
            size += name.as_ref().len() + value.as_ref().len();
            raw.set(name.as_ref(), value);
        }
        if size > self.limits.max_entry_bytes() {
            let key = raw.key.as_ref().map(AsRef::as_ref);
            return Err(oversized(&self.limits, entry_id, size, key));
        }
        let reject = |key: Option<&str>, reason| CdcDecodeError {
            entry_id,
            key: key.map(str::to_owned),
            reason,
        };
        let op = raw
            .op
            .ok_or_else(|| reject(None, RejectReason::MissingField(field::OP)))?;
        let key_bytes = raw
            .key
            .ok_or_else(|| reject(None, RejectReason::MissingField(field::KEY)))?;
        let key = std::str::from_utf8(key_bytes.as_ref())
            .map_err(|_| reject(None, RejectReason::NotUtf8(field::KEY)))?;
        if key.is_empty() {
            return Err(reject(None, RejectReason::EmptyKey));
        }
        // Before anything else looks at the key: later stages (and the store) do work that
        // grows with its length and depth.
        if let Err(e) = self.limits.object_ids.check_bounds(key) {
            return Err(reject(Some(&e.id), RejectReason::KeyOverLimit(e.problem)));
        }
        let op = op.as_ref();
        if op.eq_ignore_ascii_case(b"DEL") || op.eq_ignore_ascii_case(b"DELETE") {
            // A stamp that does not parse is bad input like a PUT's bad meta: guessing it
            // absent would judge the delete by weaker evidence than its writer gave.
            let stamp = match raw.meta {
                None => None,
                Some(meta) => Some(
                    decode_tombstone_json(meta.as_ref())
                        .map_err(|e| reject(Some(key), RejectReason::InvalidMeta(e.reason)))?,
                ),
            };
            return Ok(CdcEvent::Delete {
                key: key.to_owned(),
                stamp,
            });
        }
        if !op.eq_ignore_ascii_case(b"PUT") {
            let shown = String::from_utf8_lossy(&op[..op.len().min(32)]).into_owned();
            return Err(reject(Some(key), RejectReason::UnknownOp(shown)));
        }
        let hash = raw
            .hash
            .ok_or_else(|| reject(Some(key), RejectReason::MissingField(field::HASH)))?;
        let data = raw
            .data
            .ok_or_else(|| reject(Some(key), RejectReason::MissingField(field::DATA)))?;
        let meta = raw
            .meta
            .ok_or_else(|| reject(Some(key), RejectReason::MissingField(field::META)))?;

        let expected = std::str::from_utf8(hash.as_ref())
            .ok()
            .and_then(parse_hash_hex)
            .ok_or_else(|| reject(Some(key), RejectReason::MalformedHash))?;
        let meta: MetaIn<'_> = serde_json::from_slice(meta.as_ref())
            .map_err(|e| reject(Some(key), RejectReason::InvalidMeta(e.to_string())))?;
        let version = meta.version.ok_or_else(|| {
            reject(
                Some(key),
                RejectReason::InvalidMeta("missing `version`".into()),
            )
        })?;
        let updated_at = meta.updated_at.ok_or_else(|| {
            reject(
                Some(key),
                RejectReason::InvalidMeta("missing `updated_at`".into()),
            )
        })?;

        let content = self
            .content(data.as_ref(), &expected)
            .map_err(|reason| reject(Some(key), reason))?;
        Ok(CdcEvent::Put(SyncItem {
            key: key.to_owned(),
            content,
            content_hash: hash_to_hex(&expected),
            version,
            updated_at,
            content_type: meta
                .content_type
                .as_deref()
                .map_or(ContentType::Binary, ContentType::from_wire),
            trace_parent: meta.trace_parent,
        }))
    }

    /// Recovers the content whose hash is `expected` from `data`.
    ///
    /// Content that genuinely begins with the zstd magic travels raw yet looks compressed,
    /// so when decompression fails or yields the wrong hash, the raw bytes get a chance too.
    fn content(&mut self, data: &[u8], expected: &[u8; 32]) -> Result<Vec<u8>, RejectReason> {
        // The cap bounds what we accept, not only what we decompress: raw content and a
        // frame larger than the cap are refused before any work.
        let limit = self.limits.max_decompressed_bytes;
        if data.len() > limit {
            return Err(RejectReason::TooLarge { limit });
        }
        if !is_zstd_frame(data) {
            return verify(data.to_vec(), expected);
        }
        let decompressed = self.decompress(data);
        if let Ok(content) = &decompressed {
            if &content_hash(content) == expected {
                return decompressed;
            }
        }
        if &content_hash(data) == expected {
            return Ok(data.to_vec());
        }
        match decompressed {
            Ok(content) => verify(content, expected),
            Err(reason) => Err(reason),
        }
    }

    fn decompress(&mut self, data: &[u8]) -> Result<Vec<u8>, RejectReason> {
        let limit = self.limits.max_decompressed_bytes;
        // The frame header usually states the size: refuse bombs before allocating,
        // and allocate exactly what is needed otherwise.
        let declared = zstd::zstd_safe::get_frame_content_size(data).ok().flatten();
        if let Some(size) = declared {
            if size > limit as u64 {
                return Err(RejectReason::TooLarge { limit });
            }
            // `size` fits: it is at most `limit`, a usize.
            if let Ok(content) = self.decompressor.decompress(data, size as usize) {
                return Ok(content);
            }
        }
        // Unknown size, or more frames than the header told: bounded by the cap.
        match self.decompressor.decompress(data, limit) {
            Ok(content) => Ok(content),
            Err(e) if e.to_string().contains("Destination buffer is too small") => {
                Err(RejectReason::TooLarge { limit })
            }
            Err(e) => Err(RejectReason::Undecodable(e.to_string())),
        }
    }
}

impl Default for CdcDecoder {
    fn default() -> Self {
        Self::new(DecodeLimits::default())
    }
}

/// The rejection of an entry over [`DecodeLimits::max_entry_bytes`], naming its key (as
/// much of it as is shown in errors) when it is text.
fn oversized(
    limits: &DecodeLimits,
    entry_id: StreamId,
    size: usize,
    key: Option<&[u8]>,
) -> CdcDecodeError {
    let key = key
        .and_then(|k| std::str::from_utf8(k).ok())
        .map(|k| k.chars().take(128).collect());
    CdcDecodeError {
        entry_id,
        key,
        reason: RejectReason::EntryTooLarge {
            size,
            limit: limits.max_entry_bytes(),
        },
    }
}

fn verify(content: Vec<u8>, expected: &[u8; 32]) -> Result<Vec<u8>, RejectReason> {
    let actual = content_hash(&content);
    if &actual == expected {
        Ok(content)
    } else {
        Err(RejectReason::HashMismatch {
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        })
    }
}

/// The fields of one entry, by name; later duplicates are ignored, unknown names skipped.
struct RawEntry<V> {
    op: Option<V>,
    key: Option<V>,
    hash: Option<V>,
    data: Option<V>,
    meta: Option<V>,
}

impl<V> Default for RawEntry<V> {
    fn default() -> Self {
        Self {
            op: None,
            key: None,
            hash: None,
            data: None,
            meta: None,
        }
    }
}

impl<V> RawEntry<V> {
    fn set(&mut self, name: &[u8], value: V) {
        let slot = match name {
            b"op" => &mut self.op,
            b"key" => &mut self.key,
            b"hash" => &mut self.hash,
            b"data" => &mut self.data,
            b"meta" => &mut self.meta,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
}
