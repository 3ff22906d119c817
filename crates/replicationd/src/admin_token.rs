//! The admin bearer token: where it comes from (the environment, else `[admin] token_file`)
//! and how a presented one is checked. The daemon and the CLI find it the same way, so an
//! operator who can read the daemon's config can use its controls.

use crate::config::AdminSection;
use anyhow::{Context, Result};

/// Environment variable that holds the token; it takes the place of `token_file`.
pub(crate) const TOKEN_ENV: &str = "REPLICATIOND_ADMIN_TOKEN";

/// The token admin requests must carry, if any is configured. An empty value counts as none.
pub(crate) fn resolve(admin: &AdminSection) -> Result<Option<String>> {
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        if !token.trim().is_empty() {
            return Ok(Some(token.trim().to_owned()));
        }
    }
    match &admin.token_file {
        None => Ok(None),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
            let token = text.trim();
            anyhow::ensure!(
                !token.is_empty(),
                "the admin token file {} is empty",
                path.display()
            );
            Ok(Some(token.to_owned()))
        }
    }
}

/// Compares a presented token with the expected one in time that does not depend on where
/// they first differ, so the token cannot be guessed byte by byte from response times.
pub(crate) fn matches(expected: &str, presented: &str) -> bool {
    let (a, b) = (expected.as_bytes(), presented.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for (i, byte) in a.iter().enumerate() {
        diff |= byte ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        assert!(matches("s3cret", "s3cret"));
        assert!(!matches("s3cret", "s3cre"));
        assert!(!matches("s3cret", "s3cret!"));
        assert!(!matches("s3cret", "S3cret"));
        assert!(!matches("s3cret", ""));
    }

    #[test]
    fn a_token_file_is_read_and_trimmed_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc\n").expect("write token");
        let admin = AdminSection {
            allow_remote: false,
            token_file: Some(path.clone()),
        };
        // The environment is the process's: only assert when the test runner leaves it unset.
        if std::env::var(TOKEN_ENV).is_err() {
            assert_eq!(resolve(&admin).expect("readable"), Some("abc".into()));
            std::fs::write(&path, "\n").expect("write token");
            let err = resolve(&admin).expect_err("empty").to_string();
            assert!(err.contains("is empty"), "{err}");
            assert_eq!(resolve(&AdminSection::default()).expect("none"), None);
        }
        let missing = AdminSection {
            allow_remote: false,
            token_file: Some(dir.path().join("nope")),
        };
        if std::env::var(TOKEN_ENV).is_err() {
            let err = format!("{:#}", resolve(&missing).expect_err("missing"));
            assert!(err.contains("cannot read the admin token file"), "{err}");
        }
    }
}
