//! Paths of the object-id tree: ancestors, parents, child paths, id validity.

use super::SELF_SEGMENT;

/// An object id that cannot live in the path tree, or is over the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object id {id:?}: {problem}")]
pub struct ObjectIdError {
    /// The id (truncated to 128 chars, `...` appended when it was longer).
    pub id: String,
    /// What was wrong.
    pub problem: ObjectIdProblem,
}

impl ObjectIdError {
    pub(crate) fn new(id: &str, problem: ObjectIdProblem) -> Self {
        let mut shown: String = id.chars().take(128).collect();
        if shown.len() < id.len() {
            shown.push_str("...");
        }
        Self { id: shown, problem }
    }
}

/// What is wrong with an object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectIdProblem {
    /// The id is empty.
    Empty,
    /// A segment is empty (leading, trailing or doubled `.`).
    EmptySegment,
    /// Longer than `settings.limits.max_object_id_bytes`.
    TooLong {
        /// The id's length in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More segments than `settings.limits.max_object_id_segments`.
    TooDeep {
        /// The limit (counting stops there, so the id's own count is not given).
        limit: usize,
    },
}

impl ObjectIdProblem {
    /// A short stable label for metrics (`reason` label of rejected-entry counters).
    pub fn label(&self) -> &'static str {
        match self {
            ObjectIdProblem::Empty => "empty_key",
            ObjectIdProblem::EmptySegment => "invalid_key",
            ObjectIdProblem::TooLong { .. } => "key_too_long",
            ObjectIdProblem::TooDeep { .. } => "key_too_deep",
        }
    }
}

impl std::fmt::Display for ObjectIdProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectIdProblem::Empty => f.write_str("empty"),
            ObjectIdProblem::EmptySegment => {
                f.write_str("empty segment (leading, trailing or doubled '.')")
            }
            ObjectIdProblem::TooLong { bytes, limit } => write!(
                f,
                "{bytes} bytes, over the limit of {limit} (settings.limits.max_object_id_bytes)"
            ),
            ObjectIdProblem::TooDeep { limit } => write!(
                f,
                "more than {limit} segments (settings.limits.max_object_id_segments)"
            ),
        }
    }
}

/// Checks that `id` is non-empty and has no empty segment (no limits: see
/// [`ObjectIdLimits::check`](crate::ObjectIdLimits::check)).
pub fn validate_object_id(id: &str) -> Result<(), ObjectIdError> {
    if id.is_empty() {
        return Err(ObjectIdError::new(id, ObjectIdProblem::Empty));
    }
    if id.split('.').any(str::is_empty) {
        return Err(ObjectIdError::new(id, ObjectIdProblem::EmptySegment));
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
