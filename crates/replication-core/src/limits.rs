//! Bounds on what peers and local clients may hand the engine, so that one bad input costs
//! a bounded amount of work and memory (`[settings.limits]`; the content cap itself is
//! `settings.hot_path.max_content_bytes`).
//!
//! Object ids bound every structure keyed by an id's ancestors: a node store keeps one
//! Merkle node per ancestor, each named by its full path, so an id of `n` segments and `L`
//! bytes costs `O(n * L)` there. With both bounded, a 16 KB `a.a.a...` id is refused in
//! microseconds instead of costing seconds (or, at 100 KB, gigabytes).

use crate::merkle::{validate_object_id, ObjectIdError, ObjectIdProblem};
use serde::{Deserialize, Serialize};

/// Bounds on object ids, checked wherever an id enters: CDC entries, Merkle children and
/// items read from a peer, local writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectIdLimits {
    /// Longest id, in bytes.
    pub max_bytes: usize,
    /// Most segments (`a.b.c` has 3).
    pub max_segments: usize,
}

impl ObjectIdLimits {
    /// 1 KiB: far above any sane id (`uk.nhs.patient.12345` is 20 bytes).
    pub const DEFAULT_MAX_BYTES: usize = 1024;
    /// 32 segments: far deeper than any sane hierarchy.
    pub const DEFAULT_MAX_SEGMENTS: usize = 32;

    /// Checks the bounds only (length, then segments), in time linear in the id's length
    /// and never more than `max_bytes` bytes looked at.
    pub fn check_bounds(&self, id: &str) -> Result<(), ObjectIdError> {
        if id.len() > self.max_bytes {
            return Err(ObjectIdError::new(
                id,
                ObjectIdProblem::TooLong {
                    bytes: id.len(),
                    limit: self.max_bytes,
                },
            ));
        }
        let segments = id.bytes().filter(|b| *b == b'.').count() + 1;
        if segments > self.max_segments {
            return Err(ObjectIdError::new(
                id,
                ObjectIdProblem::TooDeep {
                    limit: self.max_segments,
                },
            ));
        }
        Ok(())
    }

    /// Checks the bounds and that the id can live in the path tree
    /// ([`validate_object_id`]).
    pub fn check(&self, id: &str) -> Result<(), ObjectIdError> {
        self.check_bounds(id)?;
        validate_object_id(id)
    }
}

impl Default for ObjectIdLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_segments: Self::DEFAULT_MAX_SEGMENTS,
        }
    }
}

/// `[settings.limits]`: bounds on input from peers and local clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Longest object id accepted, in bytes. Default 1024.
    #[serde(default = "default_max_object_id_bytes")]
    pub max_object_id_bytes: usize,
    /// Most segments in an object id. Default 32.
    #[serde(default = "default_max_object_id_segments")]
    pub max_object_id_segments: usize,
    /// Most children one Merkle node of a peer may list; a larger set is refused as bad
    /// input (the repair cycle fails naming it) rather than read whole. Default 1000000.
    #[serde(default = "default_max_children_per_node")]
    pub max_children_per_node: usize,
}

impl LimitSettings {
    /// The object id bounds.
    pub fn object_ids(&self) -> ObjectIdLimits {
        ObjectIdLimits {
            max_bytes: self.max_object_id_bytes,
            max_segments: self.max_object_id_segments,
        }
    }

    /// Names the first unusable value.
    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        for (name, value) in [
            ("max_object_id_bytes", self.max_object_id_bytes),
            ("max_object_id_segments", self.max_object_id_segments),
            ("max_children_per_node", self.max_children_per_node),
        ] {
            if value == 0 {
                return Err(crate::ConfigError::new(
                    format!("settings.limits.{name}"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_object_id_bytes: default_max_object_id_bytes(),
            max_object_id_segments: default_max_object_id_segments(),
            max_children_per_node: default_max_children_per_node(),
        }
    }
}

fn default_max_object_id_bytes() -> usize {
    ObjectIdLimits::DEFAULT_MAX_BYTES
}
fn default_max_object_id_segments() -> usize {
    ObjectIdLimits::DEFAULT_MAX_SEGMENTS
}
fn default_max_children_per_node() -> usize {
    1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_over_the_limits_are_refused_naming_the_limit() {
        let limits = ObjectIdLimits::default();
        let long = "a.".repeat(8 * 1024) + "a";
        let err = limits.check(&long).unwrap_err();
        assert_eq!(
            err.problem,
            ObjectIdProblem::TooLong {
                bytes: long.len(),
                limit: 1024
            }
        );
        let shown = err.to_string();
        assert!(shown.contains("max_object_id_bytes"), "{shown}");
        assert!(shown.len() < 400, "the id is shown truncated: {shown}");
        let deep = vec!["a"; 33].join(".");
        let err = limits.check(&deep).unwrap_err();
        assert_eq!(err.problem, ObjectIdProblem::TooDeep { limit: 32 });
        assert!(err.to_string().contains("max_object_id_segments"));
        assert_eq!(err.problem.label(), "key_too_deep");
        // At the limits exactly: accepted.
        assert!(limits.check(&vec!["a"; 32].join(".")).is_ok());
        assert!(limits.check(&"x".repeat(1024)).is_ok());
        // Validity is checked too, bounds alone are not.
        assert!(limits.check("a..b").is_err());
        assert!(limits.check_bounds("a..b").is_ok());
    }

    #[test]
    fn settings_parse_with_defaults_and_unknown_names_are_refused() {
        let settings: crate::Settings =
            toml::from_str("[limits]\nmax_object_id_bytes = 64").unwrap();
        assert_eq!(
            settings.limits.object_ids(),
            ObjectIdLimits {
                max_bytes: 64,
                max_segments: 32
            }
        );
        let err = toml::from_str::<crate::Settings>("[limits]\nmax_id = 1").unwrap_err();
        assert!(err.to_string().contains("max_id"), "{err}");
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let settings = LimitSettings {
            max_object_id_segments: 0,
            ..LimitSettings::default()
        };
        assert_eq!(
            settings.validate().unwrap_err().field,
            "settings.limits.max_object_id_segments"
        );
    }
}
