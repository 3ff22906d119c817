//! Redis URLs in configuration: checking their shape and showing them without the
//! password, alone or inside any text (re-exported from [`crate::config`]).

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

/// `text` with the user info of every URL in it (`scheme://user:password@`) masked as
/// `scheme://***@`, for messages that may quote configuration (a parser's error naming a
/// value). Conservative: from `://` to the last `@` before the next quote or line end is
/// masked (or before the next `://`), so a password holding `/`, `@` or spaces does not
/// escape.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The span ends at a quote, a line end or the next URL.
        let span_end = after
            .find(['"', '\'', '`', '\n'])
            .unwrap_or(after.len())
            .min(after.find("://").unwrap_or(after.len()));
        match after[..span_end].rfind('@') {
            Some(user_end) => {
                out.push_str("***");
                rest = &after[user_end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_inside_text_lose_their_user_info() {
        assert_eq!(
            redact_urls_in(
                r#"invalid type: string "redis://alice:hunter2@h:1/0", expected a boolean"#
            ),
            r#"invalid type: string "redis://***@h:1/0", expected a boolean"#
        );
        assert_eq!(
            redact_urls_in("a rediss://u:p@h b redis://:x y@z c"),
            "a rediss://***@h b redis://***@z c"
        );
        assert_eq!(
            redact_urls_in("redis://h:1 and no secret"),
            "redis://h:1 and no secret"
        );
        assert_eq!(redact_urls_in("`redis://u:p/w@h`"), "`redis://***@h`");
        assert_eq!(redact_urls_in("no url at all"), "no url at all");
        assert_eq!(redact_urls_in("ends with ://"), "ends with ://");
    }
}
