//! Keeping passwords out of messages: fred and Redis should never echo one, but a message
//! built from a URL or a config dump could.

use replication_core::percent_decode;

/// `text` with every occurrence of `secret` replaced by `***`.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "***"),
        _ => text.to_owned(),
    }
}

/// `text` with the password of `raw_url` (as written and percent-decoded) replaced by `***`.
pub fn scrub_url_password(text: &str, raw_url: &str) -> String {
    let Some(written) = url_password(raw_url) else {
        return text.to_owned();
    };
    let scrubbed = scrub(text, Some(written));
    match percent_decode(written) {
        Some(decoded) => scrub(&scrubbed, Some(&decoded)),
        None => scrubbed,
    }
}

/// The password part of `scheme://user:password@host...`, as written.
fn url_password(raw_url: &str) -> Option<&str> {
    let (_, rest) = raw_url.split_once("://")?;
    // The user info ends at the last `@` before the host's path.
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_in_both_forms() {
        assert_eq!(scrub("pw=hunter2", Some("hunter2")), "pw=***");
        assert_eq!(scrub("pw=hunter2", Some("")), "pw=hunter2");
        assert_eq!(scrub("pw=hunter2", None), "pw=hunter2");
        assert_eq!(
            scrub_url_password("auth hunter2 failed", "redis://u:hunter2@h:1"),
            "auth *** failed"
        );
        assert_eq!(
            scrub_url_password("auth s@cret and s%40cret", "redis://u:s%40cret@h:1/0"),
            "auth *** and ***"
        );
        assert_eq!(
            scrub_url_password("auth :pw@ failed", "redis://:pw@h"),
            "auth :***@ failed"
        );
        assert_eq!(scrub_url_password("refused", "redis://h:1"), "refused");
        assert_eq!(scrub_url_password("refused", "not a url"), "refused");
    }
}
