//! The daemon's config file: the engine config plus the local store (`[node]`, or
//! `[sync_engine]`), `[http]` and `[admin]`.
//!
//! serde cannot combine `flatten` with `deny_unknown_fields`, so the file is split by hand:
//! the daemon's sections are taken out, and the rest must be exactly an engine config.
//! Every error names the file and the offending field.

use replication_engine::{redact_url, redact_urls_in};
use replication_engine::{ConfigError, ReplicationEngineConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `replicationd` reads from its config file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DaemonConfig {
    /// The engine's own configuration.
    pub(crate) engine: ReplicationEngineConfig,
    /// The local store.
    pub(crate) store: StoreSection,
    /// The HTTP endpoint.
    pub(crate) http: HttpSection,
    /// Who may use the admin routes.
    pub(crate) admin: AdminSection,
}

/// `[node]`: this node's own Redis.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSection {
    /// URL of the node's own Redis (required): `redis://host:port[/db]`, a Sentinel URL
    /// (`redis-sentinel://…?sentinelServiceName=…`) or a Cluster URL (`redis-cluster://…`,
    /// which needs a hash-tagged `redis_prefix`).
    pub(crate) redis_url: String,
    /// Prefix of every key this node writes. Default `""`.
    #[serde(default)]
    pub(crate) redis_prefix: String,
    /// Largest item content accepted, in bytes. Default 16 MiB.
    #[serde(default = "default_max_payload")]
    pub(crate) max_payload_bytes: usize,
    /// Approximate length the node's CDC stream is trimmed to. Default 100000.
    #[serde(default = "default_cdc_maxlen")]
    pub(crate) cdc_maxlen: u64,
}

impl std::fmt::Debug for NodeSection {
    // Hand-written so the password in `redis_url` never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSection")
            .field(
                "redis_url",
                &replication_engine::redact_url(&self.redis_url),
            )
            .field("redis_prefix", &self.redis_prefix)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("cdc_maxlen", &self.cdc_maxlen)
            .finish()
    }
}

/// The local store the engine replicates into: exactly one of the two sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreSection {
    /// `[node]`: our node store over this node's Redis.
    Node(NodeSection),
    /// `[sync_engine]`: a sync-engine instance run in this process (the `sync-engine`
    /// cargo feature; a build without it refuses the section at start).
    SyncEngine(SyncEngineSection),
}

/// `[sync_engine]`: sync-engine 0.2.x as the local store, on its Redis and SQL database.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncEngineSection {
    /// sync-engine's Redis (its L2 tier, CDC stream and Merkle copy), required.
    pub(crate) redis_url: String,
    /// sync-engine's key prefix. Default `""`.
    #[serde(default)]
    pub(crate) redis_prefix: String,
    /// sync-engine's SQL database (`sqlite:PATH?mode=rwc` or `mysql://...`), required.
    pub(crate) sql_url: String,
    /// sync-engine's write-ahead log (a SQLite file it writes while SQL is down), required.
    pub(crate) wal_path: PathBuf,
    /// Size of sync-engine's memory tier, in bytes. Default 256 MiB.
    #[serde(default = "default_l1_max_bytes")]
    pub(crate) l1_max_bytes: usize,
    /// Largest item content sync-engine accepts, in bytes. Default 16 MiB.
    #[serde(default = "default_max_payload")]
    pub(crate) max_payload_bytes: usize,
    /// Approximate length sync-engine's CDC stream is trimmed to. Default 100000.
    #[serde(default = "default_cdc_maxlen")]
    pub(crate) cdc_maxlen: u64,
}

impl std::fmt::Debug for SyncEngineSection {
    // Both URLs may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngineSection")
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("sql_url", &redact_url(&self.sql_url))
            .field("wal_path", &self.wal_path)
            .field("l1_max_bytes", &self.l1_max_bytes)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("cdc_maxlen", &self.cdc_maxlen)
            .finish()
    }
}

impl SyncEngineSection {
    fn validate(&self) -> Result<(), ConfigError> {
        replication_engine::validate_redis_url(&self.redis_url)
            .map_err(|why| ConfigError::new("sync_engine.redis_url", why))?;
        if !(self.sql_url.starts_with("sqlite:") || self.sql_url.starts_with("mysql://")) {
            return Err(ConfigError::new(
                "sync_engine.sql_url",
                format!(
                    "must start with sqlite: or mysql://, not {}",
                    redact_url(&self.sql_url)
                ),
            ));
        }
        if self.wal_path.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "sync_engine.wal_path",
                "must not be empty",
            ));
        }
        for (field, value) in [
            ("sync_engine.l1_max_bytes", self.l1_max_bytes),
            ("sync_engine.max_payload_bytes", self.max_payload_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field, "must be positive"));
            }
        }
        Ok(())
    }
}

/// `[http]`: health, readiness and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSection {
    /// Address to listen on. Default `127.0.0.1:9464`.
    #[serde(default = "default_listen")]
    pub(crate) listen: SocketAddr,
}

/// `[admin]`: the runtime controls (`/admin/...` on the HTTP listener).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminSection {
    /// Accept admin requests from other hosts too. Default false: loopback clients only.
    /// Requires a token.
    #[serde(default)]
    pub(crate) allow_remote: bool,
    /// File holding the bearer token admin requests must carry (surrounding whitespace
    /// ignored). `REPLICATIOND_ADMIN_TOKEN`, when set, takes its place. Default: none.
    #[serde(default)]
    pub(crate) token_file: Option<PathBuf>,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn default_max_payload() -> usize {
    16 * 1024 * 1024
}
fn default_cdc_maxlen() -> u64 {
    100_000
}
fn default_l1_max_bytes() -> usize {
    256 * 1024 * 1024
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a field of the wrong type or name.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the field.
        message: String,
    },
    /// A value is not acceptable.
    #[error("config file {path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Names the field.
        source: ConfigError,
    },
}

/// The file as written: the engine's four top-level fields plus the daemon's sections.
/// Parsing it in one piece keeps toml's positions, so every error names its line and key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonFile {
    local_node_id: String,
    #[serde(default)]
    peers: Vec<replication_engine::PeerConfig>,
    #[serde(default)]
    settings: replication_engine::Settings,
    #[serde(default)]
    cursor: replication_engine::CursorConfig,
    node: Option<NodeSection>,
    sync_engine: Option<SyncEngineSection>,
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    admin: AdminSection,
}

impl DaemonConfig {
    /// Reads, parses and validates `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, DaemonConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| DaemonConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ParseError::Syntax(message) => DaemonConfigError::Parse {
                path: path.into(),
                message,
            },
            ParseError::Invalid(source) => DaemonConfigError::Invalid {
                path: path.into(),
                source,
            },
        })
    }

    fn parse(text: &str) -> Result<Self, ParseError> {
        let file: DaemonFile =
            toml::from_str(text).map_err(|e| ParseError::Syntax(one_line(text, &e)))?;
        let engine = ReplicationEngineConfig {
            local_node_id: file.local_node_id,
            peers: file.peers,
            settings: file.settings,
            cursor: file.cursor,
        };
        engine.validate().map_err(ParseError::Invalid)?;
        let store = match (file.node, file.sync_engine) {
            (Some(node), None) => {
                replication_engine::validate_redis_url(&node.redis_url)
                    .map_err(|why| ParseError::Invalid(ConfigError::new("node.redis_url", why)))?;
                // The store's own rules (a Cluster needs a hash-tagged prefix), checked here
                // too so that `check-config` reports them before anything connects.
                let checked = replication_node::NodeStoreConfig::new(node.redis_url.clone())
                    .with_prefix(node.redis_prefix.clone());
                if let Err(replication_node::NodeError::Config { field, message }) =
                    checked.validate()
                {
                    return Err(ParseError::Invalid(ConfigError::new(
                        format!("node.{field}"),
                        message,
                    )));
                }
                if node.max_payload_bytes == 0 {
                    return Err(ParseError::Invalid(ConfigError::new(
                        "node.max_payload_bytes",
                        "must be positive",
                    )));
                }
                StoreSection::Node(node)
            }
            (None, Some(sync_engine)) => {
                sync_engine.validate().map_err(ParseError::Invalid)?;
                StoreSection::SyncEngine(sync_engine)
            }
            (node, _) => {
                return Err(ParseError::Invalid(ConfigError::new(
                    if node.is_some() {
                        "sync_engine"
                    } else {
                        "node"
                    },
                    "the local store is exactly one of [node] (this node's Redis) or \
                     [sync_engine] (sync-engine in this process)",
                )))
            }
        };
        Ok(Self {
            engine,
            store,
            http: file.http,
            admin: file.admin,
        })
    }
}

enum ParseError {
    Syntax(String),
    Invalid(ConfigError),
}

/// toml's error as one line: position, message, and the key of the offending line. Never
/// the line itself, nor a URL's password: the line may hold a `redis_url`, and the parser
/// quotes values it cannot use.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = redact_urls_in(e.message().trim());
    match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            match line.split_once('=') {
                Some((key, _)) => {
                    let key = redact_urls_in(key.trim());
                    format!("line {line_no}: {message} (at key `{key}`)")
                }
                None => format!("line {line_no}: {message}"),
            }
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
local_node_id = "a"
[[peers]]
node_id = "b"
redis_url = "redis://127.0.0.1:7001"
[node]
redis_url = "redis://127.0.0.1:7000"
redis_prefix = "a:"
[http]
listen = "127.0.0.1:9001"
[cursor]
sqlite_path = "/tmp/a.db"
"#;

    fn parse_err(text: &str) -> String {
        match DaemonConfig::parse(text) {
            Ok(_) => panic!("config should be refused"),
            Err(ParseError::Syntax(m)) => m,
            Err(ParseError::Invalid(e)) => e.to_string(),
        }
    }

    #[test]
    fn full_file_parses() {
        let config = DaemonConfig::parse(GOOD).unwrap_or_else(|_| panic!("good config"));
        let StoreSection::Node(node) = &config.store else {
            panic!("[node] selects the node store");
        };
        assert_eq!(node.redis_prefix, "a:");
        assert_eq!(config.http.listen.port(), 9001);
        assert_eq!(config.engine.peers[0].node_id, "b");
    }

    #[test]
    fn errors_never_show_a_password() {
        let with_password = GOOD.replace(
            "redis://127.0.0.1:7001",
            "redis://alice:hunter2@127.0.0.1:7001",
        );
        let cases = [
            // A syntax error on the line of the URL.
            with_password.replace(
                "redis_url = \"redis://alice:hunter2@127.0.0.1:7001\"",
                "redis_url = \"redis://alice:hunter2@127.0.0.1:7001\" oops",
            ),
            // The URL under a misspelt key.
            with_password.replace(
                "redis_url = \"redis://alice",
                "redis_urll = \"redis://alice",
            ),
            // The URL in a field of another type: serde quotes the value.
            with_password.replace(
                "redis_url = \"redis://alice:hunter2@127.0.0.1:7001\"",
                "redis_url = \"redis://h:1\"\nenabled = \"redis://alice:hunter2@127.0.0.1:7001\"",
            ),
            // A bad field right after the URL.
            with_password.replace(
                "redis_url = \"redis://alice:hunter2@127.0.0.1:7001\"",
                "redis_url = \"redis://alice:hunter2@127.0.0.1:7001\"\nenabled = 3",
            ),
            // The node's own URL, invalid.
            with_password.replace("redis://127.0.0.1:7000", "redis://bob:hunter2@[::1"),
        ];
        for bad in cases {
            let err = parse_err(&bad);
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("line") || err.contains("redis_url"), "{err}");
        }
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let text = GOOD
            .replace(
                "redis://127.0.0.1:7000",
                "redis://bob:hunter2@127.0.0.1:7000",
            )
            .replace(
                "redis://127.0.0.1:7001",
                "redis://alice:hunter2@127.0.0.1:7001",
            );
        let config = DaemonConfig::parse(&text).unwrap_or_else(|_| panic!("valid config"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:7000"), "{shown}");
    }

    #[test]
    fn errors_name_the_field() {
        assert!(parse_err(&GOOD.replace("[http]", "[http]\nport = 3")).contains("port"));
        assert!(
            parse_err(&GOOD.replace("redis_prefix = \"a:\"", "prefix = \"a:\"")).contains("prefix")
        );
        assert!(parse_err(
            &GOOD.replace("local_node_id = \"a\"", "local_node_id = \"a\"\nbogus = 1")
        )
        .contains("bogus"));
        assert!(
            parse_err(&GOOD.replace("redis://127.0.0.1:7001", "http://x"))
                .contains("peers[0].redis_url")
        );
        assert!(
            parse_err(&GOOD.replace("redis://127.0.0.1:7000", "nope")).contains("node.redis_url")
        );
        assert!(parse_err(&GOOD.replace("127.0.0.1:9001", "not-an-address")).contains("listen"));
        assert!(parse_err("local_node_id = \"a\"").contains("node"));
        assert!(parse_err(&format!("{GOOD}[admin]\ntoken = \"x\"\n")).contains("token"));
    }

    #[test]
    fn admin_defaults_to_loopback_without_token() {
        let config = DaemonConfig::parse(GOOD).unwrap_or_else(|_| panic!("good config"));
        assert_eq!(config.admin, AdminSection::default());
        assert!(!config.admin.allow_remote);
        let text = format!("{GOOD}[admin]\nallow_remote = true\ntoken_file = \"/etc/t\"\n");
        let config = DaemonConfig::parse(&text).unwrap_or_else(|_| panic!("good config"));
        assert!(config.admin.allow_remote);
        assert_eq!(config.admin.token_file, Some(PathBuf::from("/etc/t")));
    }

    const SYNC_ENGINE: &str = r#"
local_node_id = "a"
[sync_engine]
redis_url = "redis://:hunter2@127.0.0.1:7000"
redis_prefix = "a:"
sql_url = "mysql://app:s3cret@db.local/sync"
wal_path = "/var/lib/a/wal.db"
"#;

    #[test]
    fn sync_engine_section_selects_sync_engine_with_defaults() {
        let config = DaemonConfig::parse(SYNC_ENGINE).unwrap_or_else(|_| panic!("good config"));
        let StoreSection::SyncEngine(section) = &config.store else {
            panic!("[sync_engine] selects sync-engine");
        };
        assert_eq!(section.redis_prefix, "a:");
        assert_eq!(section.wal_path, PathBuf::from("/var/lib/a/wal.db"));
        assert_eq!(section.l1_max_bytes, 256 * 1024 * 1024);
        assert_eq!(section.cdc_maxlen, 100_000);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn sync_engine_section_errors_name_the_field() {
        assert!(parse_err(&SYNC_ENGINE.replace("mysql://", "postgres://"))
            .contains("sync_engine.sql_url"));
        assert!(!parse_err(&SYNC_ENGINE.replace("mysql://", "postgres://")).contains("s3cret"));
        assert!(parse_err(&SYNC_ENGINE.replace("redis://", "http://"))
            .contains("sync_engine.redis_url"));
        assert!(
            parse_err(&SYNC_ENGINE.replace("wal_path = \"/var/lib/a/wal.db\"", ""))
                .contains("wal_path")
        );
        assert!(parse_err(&format!("{SYNC_ENGINE}l1_max_bytes = 0\n"))
            .contains("sync_engine.l1_max_bytes"));
        assert!(parse_err(&format!("{SYNC_ENGINE}bogus = 1\n")).contains("bogus"));
        let both = format!("{SYNC_ENGINE}[node]\nredis_url = \"redis://127.0.0.1:1\"\n");
        assert!(
            parse_err(&both).contains("exactly one of [node]"),
            "{}",
            parse_err(&both)
        );
    }

    #[test]
    fn sentinel_and_cluster_urls_are_checked_before_connecting() {
        let sentinel = GOOD.replace(
            "redis://127.0.0.1:7001",
            "redis-sentinel://127.0.0.1:26379?sentinelServiceName=b&node=127.0.0.1:26380",
        );
        assert!(DaemonConfig::parse(&sentinel).is_ok());
        let unnamed = GOOD.replace("redis://127.0.0.1:7001", "redis-sentinel://127.0.0.1:26379");
        assert!(parse_err(&unnamed).contains("sentinelServiceName"));
        let cluster = GOOD.replace("redis://127.0.0.1:7000", "redis-cluster://127.0.0.1:7000");
        let error = parse_err(&cluster);
        assert!(
            error.contains("node.redis_prefix") && error.contains("hash tag"),
            "{error}"
        );
        let tagged = cluster.replace("redis_prefix = \"a:\"", "redis_prefix = \"{a}:\"");
        assert!(DaemonConfig::parse(&tagged).is_ok());
    }
}
