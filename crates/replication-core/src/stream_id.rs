//! Redis stream entry ids (`<ms>-<seq>`): parsing, formatting, ordering, lag arithmetic.

use std::fmt;
use std::str::FromStr;

/// A stream entry id. Ordered numerically by `(ms, seq)`; `0-0` means "from the beginning".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// Milliseconds part (the writer's clock when appended).
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

/// A stream id that is not `<u64>-<u64>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {input:?}: {reason}")]
pub struct StreamIdError {
    /// The rejected text (truncated to 64 chars).
    pub input: String,
    /// What was wrong.
    pub reason: &'static str,
}

impl StreamId {
    /// The id before every entry.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id Redis can hold.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// Builds an id.
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The smallest id strictly greater than `self` (for exclusive range reads), or `None` at MAX.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// Milliseconds between `self` and a later id `newer` (0 when `newer` is not later).
    pub fn lag_ms(self, newer: StreamId) -> u64 {
        newer.ms.saturating_sub(self.ms)
    }

    /// Parses bytes as they come from Redis.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StreamIdError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.parse(),
            Err(_) => Err(StreamIdError {
                input: String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned(),
                reason: "not UTF-8",
            }),
        }
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| StreamIdError {
            input: s.chars().take(64).collect(),
            reason,
        };
        let (ms, seq) = s.split_once('-').ok_or_else(|| err("missing '-'"))?;
        // u64::from_str accepts a leading '+'; Redis never writes one, so refuse it.
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(err("parts must be decimal digits"));
        }
        let ms = ms.parse().map_err(|_| err("milliseconds overflow u64"))?;
        let seq = seq.parse().map_err(|_| err("sequence overflows u64"))?;
        Ok(StreamId { ms, seq })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn display_parse_round_trips(ms in any::<u64>(), seq in any::<u64>()) {
            let id = StreamId::new(ms, seq);
            prop_assert_eq!(id.to_string().parse::<StreamId>().unwrap(), id);
        }

        #[test]
        fn order_is_numeric_not_textual(a in any::<(u64, u64)>(), b in any::<(u64, u64)>()) {
            let (x, y) = (StreamId::new(a.0, a.1), StreamId::new(b.0, b.1));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        }

        #[test]
        fn order_is_total_and_transitive(a in any::<(u8, u8)>(), b in any::<(u8, u8)>(), c in any::<(u8, u8)>()) {
            let id = |p: (u8, u8)| StreamId::new(p.0.into(), p.1.into());
            let (x, y, z) = (id(a), id(b), id(c));
            prop_assert!(x < y || y < x || x == y);
            if x <= y && y <= z { prop_assert!(x <= z); }
        }

        #[test]
        fn next_is_the_immediate_successor(ms in any::<u64>(), seq in any::<u64>()) {
            let id = StreamId::new(ms, seq);
            if let Some(n) = id.next() { prop_assert!(n > id); }
            else { prop_assert_eq!(id, StreamId::MAX); }
        }

        #[test]
        fn garbage_never_parses_to_zero(s in "[^0-9]{0,8}") {
            prop_assert!(s.parse::<StreamId>().is_err());
        }
    }

    #[test]
    fn rejects_garbage_with_reason() {
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "a-1",
            "1-b",
            "+1-2",
            "1-2-3",
            "18446744073709551616-0",
        ] {
            let err = bad.parse::<StreamId>().unwrap_err();
            assert_eq!(err.input, bad);
        }
        assert!(StreamId::from_bytes(b"\xff-1").is_err());
    }

    #[test]
    fn ten_sorts_after_nine() {
        assert!("10-0".parse::<StreamId>().unwrap() > "9-0".parse::<StreamId>().unwrap());
        assert!("5-10".parse::<StreamId>().unwrap() > "5-9".parse::<StreamId>().unwrap());
    }

    #[test]
    fn lag_is_saturating() {
        assert_eq!(StreamId::new(100, 0).lag_ms(StreamId::new(150, 3)), 50);
        assert_eq!(StreamId::new(150, 0).lag_ms(StreamId::new(100, 3)), 0);
    }

    #[test]
    fn next_carries_into_ms() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
    }
}
