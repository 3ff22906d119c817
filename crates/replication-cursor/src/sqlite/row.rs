//! How a [`Cursor`] is laid out in a row of the `cursors` table.
//!
//! SQLite integers are signed 64-bit, so the u64 values (stream id parts, the
//! `entries-added` counter) are stored as decimal text: exact up to `u64::MAX`, and what
//! an operator reading the file with `sqlite3` expects to see (`1700000000000-3`).

use replication_core::{Cursor, StreamId};

/// A row's column values, ready to bind or just read.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CursorRow {
    pub(super) peer_id: String,
    pub(super) stream_id: String,
    pub(super) entries_added: Option<String>,
    pub(super) updated_at_ms: i64,
}

/// A stored row that does not decode to a cursor.
#[derive(Debug, thiserror::Error)]
pub(super) enum BadRow {
    /// The stream id column is not `<u64>-<u64>`.
    #[error("stream_id {0:?} is not a stream id")]
    StreamId(String),
    /// The entries-added column is not a decimal u64.
    #[error("entries_added {0:?} is not a decimal u64")]
    EntriesAdded(String),
}

impl CursorRow {
    /// The row that stores `cursor`.
    pub(super) fn from_cursor(cursor: &Cursor) -> Self {
        Self {
            peer_id: cursor.peer_id.clone(),
            stream_id: cursor.stream_id.to_string(),
            entries_added: cursor.entries_added.map(|n| n.to_string()),
            updated_at_ms: cursor.updated_at_ms,
        }
    }

    /// The cursor this row stores.
    pub(super) fn into_cursor(self) -> Result<Cursor, BadRow> {
        let stream_id = self
            .stream_id
            .parse::<StreamId>()
            .map_err(|_| BadRow::StreamId(self.stream_id.clone()))?;
        let entries_added = match self.entries_added {
            None => None,
            // u64::from_str accepts a leading '+', which this crate never writes.
            Some(text) if text.starts_with('+') => return Err(BadRow::EntriesAdded(text)),
            Some(text) => Some(
                text.parse::<u64>()
                    .map_err(|_| BadRow::EntriesAdded(text))?,
            ),
        };
        Ok(Cursor {
            peer_id: self.peer_id,
            stream_id,
            entries_added,
            updated_at_ms: self.updated_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_round_trip() {
        let cursor = Cursor {
            peer_id: "p".into(),
            stream_id: StreamId::MAX,
            entries_added: Some(u64::MAX),
            updated_at_ms: i64::MIN,
        };
        let row = CursorRow::from_cursor(&cursor);
        assert_eq!(row.stream_id, "18446744073709551615-18446744073709551615");
        assert_eq!(row.entries_added.as_deref(), Some("18446744073709551615"));
        assert_eq!(row.into_cursor().unwrap(), cursor);
    }

    #[test]
    fn malformed_values_are_rejected() {
        let row = |stream_id: &str, entries_added: Option<&str>| CursorRow {
            peer_id: "p".into(),
            stream_id: stream_id.into(),
            entries_added: entries_added.map(Into::into),
            updated_at_ms: 0,
        };
        assert!(matches!(
            row("12", None).into_cursor(),
            Err(BadRow::StreamId(_))
        ));
        assert!(matches!(
            row("1-2", Some("-1")).into_cursor(),
            Err(BadRow::EntriesAdded(_))
        ));
        assert!(matches!(
            row("1-2", Some("+1")).into_cursor(),
            Err(BadRow::EntriesAdded(_))
        ));
        assert!(matches!(
            row("1-2", Some("18446744073709551616")).into_cursor(),
            Err(BadRow::EntriesAdded(_))
        ));
        assert_eq!(
            row("1-2", None).into_cursor().unwrap().stream_id,
            StreamId::new(1, 2)
        );
    }
}
