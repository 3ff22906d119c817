//! Redis URLs in configuration: checking their shape and showing them without the
//! password (re-exported from [`crate::config`]).

/// Checks scheme, host and db of a Redis URL. Messages never include the password.
pub fn validate_redis_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e}): {}", redact_url(raw)))?;
    match url.scheme() {
        "redis" | "rediss" => {}
        other => {
            return Err(format!(
                "scheme must be redis:// or rediss://, not {other}://"
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("missing host".into());
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u32>().is_err() {
        return Err(format!("database must be a number, not {path:?}"));
    }
    Ok(())
}

/// The URL with its password (if any) replaced by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Setting a password only fails for URLs that cannot have one, and this one has one.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        // Unparseable: show only the scheme, since the rest may hold a secret.
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://<unparseable>"),
            None => "<unparseable>".to_owned(),
        },
    }
}
