//! Raw replies (`fred::types::Value`) as bytes or elements. The error says what was
//! expected and what came; callers wrap it with the key or command it was about.

use bytes::Bytes;
use fred::types::Value;

/// A reply of an unexpected shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct ReplyError {
    /// What the caller expected.
    expected: &'static str,
    /// The kind of value that came instead.
    got: String,
}

/// A bulk or simple string (integers as their decimal text) as bytes; `None` for nil.
pub fn into_bytes(value: Value) -> Result<Option<Bytes>, ReplyError> {
    match value {
        Value::Null => Ok(None),
        Value::Bytes(bytes) => Ok(Some(bytes)),
        Value::String(text) => Ok(Some(text.into_inner())),
        Value::Integer(n) => Ok(Some(Bytes::from(n.to_string()))),
        other => Err(ReplyError {
            expected: "a string",
            got: other.kind().to_string(),
        }),
    }
}

/// An array reply as its elements; nil stands for an empty array.
pub fn into_array(value: Value) -> Result<Vec<Value>, ReplyError> {
    match value {
        Value::Array(values) => Ok(values),
        Value::Null => Ok(Vec::new()),
        other => Err(ReplyError {
            expected: "an array",
            got: other.kind().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_arrays() {
        assert_eq!(into_bytes(Value::Null).unwrap(), None);
        assert_eq!(
            into_bytes(Value::from("a")).unwrap(),
            Some(Bytes::from_static(b"a"))
        );
        assert_eq!(
            into_bytes(Value::Integer(12)).unwrap(),
            Some(Bytes::from_static(b"12"))
        );
        let err = into_bytes(Value::Array(vec![])).unwrap_err();
        assert_eq!(err.expected, "a string");
        assert_eq!(into_array(Value::Null).unwrap(), Vec::<Value>::new());
        assert_eq!(
            into_array(Value::Array(vec![Value::Null])).unwrap().len(),
            1
        );
        assert!(into_array(Value::from("x")).is_err());
    }
}
