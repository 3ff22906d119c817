//! The `meta` field of a PUT entry: JSON with content type, version, updated_at and trace context.

use serde::{Deserialize, Serialize};

/// Wire shape of `meta`. Unknown fields are ignored so that writers may add some.
#[derive(Debug, Deserialize)]
pub(crate) struct MetaIn<'a> {
    #[serde(default, borrow)]
    pub(crate) content_type: Option<std::borrow::Cow<'a, str>>,
    pub(crate) version: Option<u64>,
    pub(crate) updated_at: Option<i64>,
    #[serde(default)]
    pub(crate) trace_parent: Option<String>,
}

/// Writer side; field order is the wire order sync-engine uses.
#[derive(Serialize)]
pub(crate) struct MetaOut<'a> {
    pub(crate) content_type: &'a str,
    pub(crate) version: u64,
    pub(crate) updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace_parent: Option<&'a str>,
}
