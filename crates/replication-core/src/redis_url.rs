//! Redis URLs of peers and of the node store, parsed and checked in one place: one server
//! (`redis://`), a primary found through Sentinel (`redis-sentinel://`) or a Redis Cluster
//! (`redis-cluster://`), each also over TLS (`rediss…`). Errors never show a secret;
//! [`redact_url`] masks every secret a URL can carry (the user-info password and the
//! `sentinelPassword` parameter), and [`redact_urls_in`] masks URLs quoted inside any text
//! (re-exported from [`crate::config`]).
//!
//! The forms, as fred 10 reads them:
//! - `redis[s]://[user[:password]@]host[:port][/db]` (port 6379);
//! - `redis[s]-sentinel://[user[:password]@]sentinel-host[:port][/db]?sentinelServiceName=name
//!   [&node=host:port]…[&sentinelUsername=u][&sentinelPassword=p]`: the host and every
//!   `node` are Sentinels (port 26379); the credentials before `@` are the data servers',
//!   the `sentinel…` ones are the Sentinels' own (none by default);
//! - `redis[s]-cluster://[user[:password]@]host[:port][?node=host:port…]`: any known
//!   Cluster nodes (the rest are discovered); database 0 only.

use std::fmt;

/// The deployment a URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server, reached directly.
    Standalone {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// The primary a set of Sentinels currently names.
    Sentinel {
        /// Known Sentinels (at least one).
        sentinels: Vec<(String, u16)>,
        /// The monitored service (`sentinel monitor <name> …`).
        service_name: String,
        /// ACL user of the Sentinels themselves, if they require one.
        username: Option<String>,
        /// Password of the Sentinels themselves, if they require one.
        password: Option<String>,
    },
    /// A Redis Cluster.
    Cluster {
        /// Known nodes (at least one); the others are discovered.
        nodes: Vec<(String, u16)>,
    },
}

/// A parsed, checked Redis URL. `Debug` hides the passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Where the data servers are.
    pub topology: RedisTopology,
    /// `rediss…` schemes: TLS to every server (and Sentinel).
    pub tls: bool,
    /// ACL user of the data servers.
    pub username: Option<String>,
    /// Password of the data servers.
    pub password: Option<String>,
    /// Database to select (never set for a Cluster).
    pub database: Option<u8>,
}

impl RedisUrl {
    /// Parses and checks `raw`. The message says what is wrong and never holds a secret.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(raw).map_err(|e| format!("not a URL ({e}): {}", redact_url(raw)))?;
        let (kind, tls) = match url.scheme() {
            "redis" => (Kind::Standalone, false),
            "rediss" => (Kind::Standalone, true),
            "redis-sentinel" => (Kind::Sentinel, false),
            "rediss-sentinel" => (Kind::Sentinel, true),
            "redis-cluster" => (Kind::Cluster, false),
            "rediss-cluster" => (Kind::Cluster, true),
            other => {
                return Err(format!(
                    "scheme must be redis://, rediss://, redis-sentinel://, rediss-sentinel://, \
                     redis-cluster:// or rediss-cluster://, not {other}://"
                ))
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err("missing host".into()),
        };
        if host.is_empty() {
            return Err("missing host".into());
        }
        let port = url.port().unwrap_or(match kind {
            Kind::Sentinel => 26379,
            Kind::Standalone | Kind::Cluster => 6379,
        });
        let username = match url.username() {
            "" => None,
            user => Some(percent_decode(user).ok_or("the user name is badly percent-encoded")?),
        };
        let password = match url.password() {
            None | Some("") => None,
            Some(p) => Some(percent_decode(p).ok_or("the password is badly percent-encoded")?),
        };
        let database = match url.path().trim_start_matches('/') {
            "" => None,
            db => Some(
                db.parse::<u8>()
                    .map_err(|_| format!("database must be a number 0-255, not {db:?}"))?,
            ),
        };
        let query = Query::read(&url, kind)?;
        let mut hosts = vec![(host, port)];
        hosts.extend(query.nodes);
        let topology = match kind {
            Kind::Standalone => {
                let (host, port) = hosts.swap_remove(0);
                RedisTopology::Standalone { host, port }
            }
            Kind::Sentinel => RedisTopology::Sentinel {
                sentinels: hosts,
                service_name: query.service_name.ok_or(
                    "a redis-sentinel:// URL needs ?sentinelServiceName=<the monitored service>",
                )?,
                username: query.sentinel_username,
                password: query.sentinel_password,
            },
            Kind::Cluster => {
                if database.is_some_and(|db| db != 0) {
                    return Err(
                        "a Redis Cluster has only database 0: remove the /db from the URL".into(),
                    );
                }
                RedisTopology::Cluster { nodes: hosts }
            }
        };
        let database = if kind == Kind::Cluster {
            None
        } else {
            database
        };
        Ok(Self {
            topology,
            tls,
            username,
            password,
            database,
        })
    }

    /// Whether the URL names a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, RedisTopology::Cluster { .. })
    }

    /// Whether the URL names a primary found through Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.topology, RedisTopology::Sentinel { .. })
    }
}

impl fmt::Debug for RedisTopology {
    // Hand-written: the Sentinels' password must not reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisTopology::Standalone { host, port } => write!(f, "Standalone({host}:{port})"),
            RedisTopology::Sentinel {
                sentinels,
                service_name,
                username,
                ..
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("service_name", service_name)
                .field("username", username)
                .finish_non_exhaustive(),
            RedisTopology::Cluster { nodes } => f.debug_tuple("Cluster").field(nodes).finish(),
        }
    }
}

impl fmt::Debug for RedisUrl {
    // Hand-written: no password may reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("topology", &self.topology)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standalone,
    Sentinel,
    Cluster,
}

/// The query parameters a URL of `kind` may carry.
#[derive(Default)]
struct Query {
    nodes: Vec<(String, u16)>,
    service_name: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
}

impl Query {
    fn read(url: &url::Url, kind: Kind) -> Result<Self, String> {
        let mut query = Query::default();
        for (name, value) in url.query_pairs() {
            let sentinel_only = |what: &str| {
                if kind == Kind::Sentinel {
                    Ok(())
                } else {
                    Err(format!("{what} needs a redis-sentinel:// URL"))
                }
            };
            match name.as_ref() {
                "node" => {
                    if kind == Kind::Standalone {
                        return Err(
                            "node= needs a redis-sentinel:// or redis-cluster:// URL".into()
                        );
                    }
                    query.nodes.push(host_port(&value)?);
                }
                "sentinelServiceName" => {
                    sentinel_only("sentinelServiceName")?;
                    if value.is_empty() {
                        return Err("sentinelServiceName must not be empty".into());
                    }
                    query.service_name = Some(value.into_owned());
                }
                "sentinelUsername" => {
                    sentinel_only("sentinelUsername")?;
                    query.sentinel_username = Some(value.into_owned());
                }
                "sentinelPassword" => {
                    sentinel_only("sentinelPassword")?;
                    query.sentinel_password = Some(value.into_owned());
                }
                // The name only: a misspelt parameter may still hold a secret.
                other => return Err(format!("unknown query parameter {other:?}")),
            }
        }
        Ok(query)
    }
}

/// `host:port` or `[v6]:port` of a `node=` parameter (the port is required, as in fred).
fn host_port(text: &str) -> Result<(String, u16), String> {
    let bad = || format!("node={text:?} is not host:port");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Percent-decodes a URL user-info part (RFC 3986); `None` for bad escapes or non-UTF-8.
/// Also what secret scrubbing uses to find a password in its decoded form.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Query parameters whose value is no secret; every other value (`sentinelPassword`, and
/// any unknown parameter, which may be a misspelt one) is masked.
const PLAIN_PARAMETERS: [&str; 3] = ["node", "sentinelServiceName", "sentinelUsername"];

/// The URL with every secret (the user-info password, `sentinelPassword`, the value of any
/// unknown query parameter) replaced by `***`, safe to log or show.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Setting a password only fails for URLs that cannot have one, and this one has one.
                let _ = url.set_password(Some("***"));
            }
            let secret_query = url
                .query_pairs()
                .any(|(name, _)| !PLAIN_PARAMETERS.contains(&name.as_ref()));
            if secret_query {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(name, value)| {
                        let value = if PLAIN_PARAMETERS.contains(&name.as_ref()) {
                            value.into_owned()
                        } else {
                            "***".to_owned()
                        };
                        (name.into_owned(), value)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
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

/// Checks a Redis URL (scheme, hosts, database, Sentinel and Cluster parameters; see
/// [`RedisUrl`]). Messages never include a secret.
pub fn validate_redis_url(raw: &str) -> Result<(), String> {
    RedisUrl::parse(raw).map(|_| ())
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
    mask_parameter(&out, "sentinelPassword=")
}

/// `text` with the value after every `name` (up to `&`, a quote, a space or a line end)
/// masked: a Sentinel URL's own password sits in its query, not in its user info.
fn mask_parameter(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let (before, after) = rest.split_at(at + name.len());
        out.push_str(before);
        let end = after
            .find(['&', '"', '\'', '`', '\n', ' '])
            .unwrap_or(after.len());
        if end > 0 {
            out.push_str("***");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("s%40cret").as_deref(), Some("s@cret"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    fn parse(raw: &str) -> RedisUrl {
        RedisUrl::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn standalone_urls() {
        let url = parse("redis://alice:s%40cret@h:7000/3");
        assert_eq!(
            url.topology,
            RedisTopology::Standalone {
                host: "h".into(),
                port: 7000
            }
        );
        assert_eq!(
            (
                url.username.as_deref(),
                url.password.as_deref(),
                url.database,
                url.tls
            ),
            (Some("alice"), Some("s@cret"), Some(3), false)
        );
        let url = parse("rediss://[::1]");
        assert!(url.tls);
        assert_eq!(
            url.topology,
            RedisTopology::Standalone {
                host: "::1".into(),
                port: 6379
            }
        );
        let url = parse("redis://:only-pass@h:1");
        assert_eq!(
            (url.username, url.password.as_deref()),
            (None, Some("only-pass"))
        );
    }

    #[test]
    fn sentinel_urls() {
        let url = parse(
            "rediss-sentinel://u:pw@s1/2?sentinelServiceName=mymaster&node=s2:26380&node=[::1]:26381\
             &sentinelUsername=su&sentinelPassword=spw",
        );
        assert!(url.tls && url.is_sentinel() && !url.is_cluster());
        assert_eq!(url.database, Some(2));
        assert_eq!(url.password.as_deref(), Some("pw"));
        assert_eq!(
            url.topology,
            RedisTopology::Sentinel {
                sentinels: vec![
                    ("s1".into(), 26379),
                    ("s2".into(), 26380),
                    ("::1".into(), 26381)
                ],
                service_name: "mymaster".into(),
                username: Some("su".into()),
                password: Some("spw".into()),
            }
        );
        let err = RedisUrl::parse("redis-sentinel://s1:26379").unwrap_err();
        assert!(err.contains("sentinelServiceName"), "{err}");
    }

    #[test]
    fn cluster_urls() {
        let url = parse("redis-cluster://h1:7000?node=h2:7001");
        assert!(url.is_cluster());
        assert_eq!(
            url.topology,
            RedisTopology::Cluster {
                nodes: vec![("h1".into(), 7000), ("h2".into(), 7001)]
            }
        );
        assert_eq!(parse("redis-cluster://h1:7000/0").database, None);
        let err = RedisUrl::parse("redis-cluster://h1:7000/1").unwrap_err();
        assert!(err.contains("only database 0"), "{err}");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (bad, says) in [
            ("http://h:1", "scheme must be"),
            ("redis://h:1/x", "database must be"),
            ("redis://h:1/999", "database must be"),
            ("redis://h:1?node=h2:2", "node= needs"),
            ("redis-cluster://h:1?node=h2", "not host:port"),
            (
                "redis-cluster://h:1?sentinelServiceName=m",
                "needs a redis-sentinel",
            ),
            (
                "redis-sentinel://h?sentinelServiceName=",
                "must not be empty",
            ),
            (
                "redis-sentinel://h?sentinelServiceName=m&nodes=h:1",
                "unknown query parameter",
            ),
            ("nonsense", "not a URL"),
        ] {
            let err = RedisUrl::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_never_show() {
        for raw in [
            "redis://u:hunter2@h:1/notanumber",
            "redis://u:hunter2@[::1",
            "redis-sentinel://u:hunter2@h?sentinelServiceName=m&sentinelPassword=hunter2&x=1",
            "redis-sentinel://h?sentinelPassword=hunter2&bogus=hunter3",
        ] {
            if let Err(err) = RedisUrl::parse(raw) {
                assert!(!err.contains("hunter"), "{err}");
            }
            assert!(!redact_url(raw).contains("hunter"), "{}", redact_url(raw));
        }
        let url =
            parse("redis-sentinel://u:hunter2@h?sentinelServiceName=m&sentinelPassword=hunter2");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            redact_url("redis-sentinel://u:pw@h?sentinelServiceName=m&sentinelPassword=spw"),
            "redis-sentinel://u:***@h?sentinelServiceName=m&sentinelPassword=***"
        );
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }

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
        assert_eq!(
            redact_urls_in(r#"bad "redis-sentinel://h?sentinelPassword=hunter2&node=g:1" here"#),
            r#"bad "redis-sentinel://h?sentinelPassword=***&node=g:1" here"#
        );
        assert_eq!(redact_urls_in("ends with ://"), "ends with ://");
    }
}
