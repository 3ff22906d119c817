//! Paths of the object-id tree: ancestors, parents, child paths, id validity.

use super::SELF_SEGMENT;

/// An object id that cannot live in the path tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object id {id:?}: {reason}")]
pub struct ObjectIdError {
    /// The id (truncated to 128 chars).
    pub id: String,
    /// What was wrong.
    pub reason: &'static str,
}

/// Checks that `id` is non-empty and has no empty segment.
pub fn validate_object_id(id: &str) -> Result<(), ObjectIdError> {
    let err = |reason| ObjectIdError {
        id: id.chars().take(128).collect(),
        reason,
    };
    if id.is_empty() {
        return Err(err("empty"));
    }
    if id.split('.').any(str::is_empty) {
        return Err(err("empty segment (leading, trailing or doubled '.')"));
    }
    Ok(())
}

/// The interior nodes above `id`, root first: `a.b.c` gives ``, `a`, `a.b`.
pub fn ancestors(id: &str) -> impl Iterator<Item = &str> {
    std::iter::once("").chain(id.match_indices('.').map(move |(i, _)| &id[..i]))
}

/// `(parent path, last segment)` of `id`: `a.b.c` gives (`a.b`, `c`); `flat` gives (``, `flat`).
pub fn parent_and_segment(id: &str) -> (&str, &str) {
    match id.rsplit_once('.') {
        Some((parent, segment)) => (parent, segment),
        None => ("", id),
    }
}

/// The path of child `segment` under `parent`. The self segment names the parent itself.
pub fn child_path(parent: &str, segment: &str) -> String {
    if segment == SELF_SEGMENT {
        parent.to_owned()
    } else if parent.is_empty() {
        segment.to_owned()
    } else {
        format!("{parent}.{segment}")
    }
}
