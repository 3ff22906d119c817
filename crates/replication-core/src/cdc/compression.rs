//! The zstd framing rules of PROTOCOL.md: when content travels compressed and how it is recognised.

/// The zstd frame magic number, as it appears at the start of compressed `data`.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Content shorter than this travels raw (compression would not pay for its frame header).
pub(crate) const MIN_COMPRESS_LEN: usize = 64;

/// zstd level the writer uses.
pub(crate) const LEVEL: i32 = 3;

/// True when `data` starts with the zstd frame magic, i.e. a reader should try to decompress it.
pub fn is_zstd_frame(data: &[u8]) -> bool {
    data.starts_with(&ZSTD_MAGIC)
}
