//! The replicated item and its content hash: what one key holds on a node.

use sha2::{Digest, Sha256};
use std::fmt;

/// How a node's content should be interpreted. Travels in CDC `meta.content_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// A JSON document (sync-engine keeps these as RedisJSON documents).
    Json,
    /// Opaque bytes.
    #[default]
    Binary,
}

impl ContentType {
    /// The wire name used in CDC meta (`"json"` / `"binary"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "json",
            ContentType::Binary => "binary",
        }
    }

    /// Parses a wire name; unknown names are treated as binary, because the
    /// content itself is opaque to replication and an unknown label must not stall a stream.
    pub fn from_wire(name: &str) -> Self {
        if name.eq_ignore_ascii_case("json") {
            ContentType::Json
        } else {
            ContentType::Binary
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item as the local store and the wire know it.
#[derive(Clone, PartialEq, Eq)]
pub struct SyncItem {
    /// Object id: UTF-8, segments separated by `.`.
    pub key: String,
    /// Uncompressed content bytes.
    pub content: Vec<u8>,
    /// Lowercase hex SHA-256 of `content`.
    pub content_hash: String,
    /// Monotonic per-key version assigned by the writing node.
    pub version: u64,
    /// Milliseconds since the Unix epoch, set by the writing node.
    pub updated_at: i64,
    /// How the content is to be interpreted.
    pub content_type: ContentType,
    /// W3C `traceparent` of the write, when it carried trace context.
    pub trace_parent: Option<String>,
}

impl SyncItem {
    /// Builds an item, computing its content hash.
    pub fn new(key: impl Into<String>, content: Vec<u8>, version: u64, updated_at: i64) -> Self {
        let content_hash = content_hash_hex(&content);
        Self {
            key: key.into(),
            content,
            content_hash,
            version,
            updated_at,
            content_type: ContentType::Binary,
            trace_parent: None,
        }
    }

    /// Sets the content type (builder style).
    pub fn with_content_type(mut self, content_type: ContentType) -> Self {
        self.content_type = content_type;
        self
    }

    /// The conflict-order stamp of this item.
    pub fn stamp(&self) -> crate::Stamp {
        crate::Stamp::put(self.version, self.updated_at, &self.content_hash)
    }
}

impl fmt::Debug for SyncItem {
    // Content can be large and sensitive: show its size, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncItem")
            .field("key", &self.key)
            .field("content_len", &self.content.len())
            .field("content_hash", &self.content_hash)
            .field("version", &self.version)
            .field("updated_at", &self.updated_at)
            .field("content_type", &self.content_type)
            .field("trace_parent", &self.trace_parent)
            .finish()
    }
}

/// Raw SHA-256 of content.
pub fn content_hash(content: &[u8]) -> [u8; 32] {
    Sha256::digest(content).into()
}

/// Lowercase hex SHA-256 of content, as carried in CDC `hash` and `SyncItem::content_hash`.
pub fn content_hash_hex(content: &[u8]) -> String {
    hash_to_hex(&content_hash(content))
}

/// Parses a 64-char hex hash into raw bytes (either case accepted).
///
/// Hand-rolled rather than `hex::decode_to_slice`: it runs several times per change on the
/// hot path (CDC verify, item checks, leaf hashes), so it is one table lookup per digit.
pub fn parse_hash_hex(hex_str: &str) -> Option<[u8; 32]> {
    let bytes: &[u8; 64] = hex_str.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    // Invalid digits map to 0xff; OR-ing every looked-up value catches any of them at once.
    let mut seen = 0u8;
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (high, low) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        seen |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    (seen & 0xf0 == 0).then_some(out)
}

/// Marks a byte that is not a hex digit in [`HEX_VALUE`].
const INVALID: u8 = 0xff;

/// The value of every byte as a hex digit, [`INVALID`] for non-digits.
const HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut c = 0;
    while c < 256 {
        if let Some(value) = nibble(c as u8) {
            table[c] = value;
        }
        c += 1;
    }
    table
};

/// The value of one hex digit.
const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of a raw 32-byte hash (a table lookup per nibble; `hex::encode` goes
/// through a `char` iterator and showed up on the hot path).
pub(crate) fn hash_to_hex(hash: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(64);
    for byte in hash {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0x0f)]);
    }
    // Only ASCII hex digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_digits() {
        let raw: [u8; 32] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let text = hash_to_hex(&raw);
        assert_eq!(text, hex::encode(raw));
        assert_eq!(parse_hash_hex(&text), Some(raw));
        assert_eq!(parse_hash_hex(&text.to_ascii_uppercase()), Some(raw));
        assert_eq!(parse_hash_hex(&text[..63]), None);
        let mut bad = text.clone();
        bad.replace_range(10..11, "g");
        assert_eq!(parse_hash_hex(&bad), None);
        assert_eq!(parse_hash_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn hash_of_empty_content_is_the_sha256_of_nothing() {
        assert_eq!(
            content_hash_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_hash_rejects_wrong_length_and_non_hex() {
        assert!(parse_hash_hex("abc").is_none());
        // Every byte value in every position of a digit pair: valid exactly for hex digits.
        for b in 0..=255u8 {
            let is_digit = b.is_ascii_hexdigit();
            for at in [0, 1, 62, 63] {
                let mut text = vec![b'0'; 64];
                text[at] = b;
                let Ok(text) = String::from_utf8(text) else {
                    continue;
                };
                let parsed = parse_hash_hex(&text);
                assert_eq!(parsed.is_some(), is_digit, "byte {b:#x} at {at}");
                if let Some(raw) = parsed {
                    let value = u8::from_str_radix(&(b as char).to_string(), 16).unwrap();
                    let expected = if at % 2 == 0 { value << 4 } else { value };
                    assert_eq!(raw[at / 2], expected);
                }
            }
        }
        assert!(parse_hash_hex(&"zz".repeat(32)).is_none());
        assert_eq!(parse_hash_hex(&"AB".repeat(32)), Some([0xab; 32]));
    }

    #[test]
    fn debug_hides_content_bytes() {
        let item = SyncItem::new("k", b"secret-bytes".to_vec(), 1, 2);
        let shown = format!("{item:?}");
        assert!(!shown.contains("secret"));
        assert!(shown.contains("content_len: 12"));
    }
}
