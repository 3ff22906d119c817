//! Loads the sync-engine 0.2.19 fixtures from `../shared/fixtures` for known-answer tests.

use std::path::PathBuf;

/// Directory holding the fixture dumps (beside the repository, as CI lays it out).
pub(crate) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/sync-engine-0.2.19")
}

/// Both dumps (no prefix, prefix `node-b:`), parsed.
pub(crate) fn all() -> Vec<serde_json::Value> {
    ["node-noprefix.json", "node-node-b.json"]
        .iter()
        .map(|name| {
            let path = dir().join(name);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "fixture {} is missing ({e}); the repository expects ../shared beside it",
                    path.display()
                )
            });
            serde_json::from_str(&text).expect("fixture is JSON")
        })
        .collect()
}
