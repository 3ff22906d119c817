//! Config tests: the brief's example, defaults, unknown fields and durations named, every
//! validation error naming its field, passwords never shown.

use super::*;

fn parse(text: &str) -> Result<ReplicationEngineConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

const BRIEF_EXAMPLE: &str = r#"
local_node_id = "uk.node.london-1"
[[peers]]
node_id = "uk.node.manchester-1"
redis_url = "redis://127.0.0.1:6379"
redis_prefix = "node-b:"
enabled = true
[settings.hot_path]
enabled = true
batch_size = 100
block_timeout = "5s"
[settings.cold_path]
enabled = true
interval = "60s"
max_items_per_cycle = 1000
[cursor]
sqlite_path = "replication_cursors.db"
"#;

#[test]
fn brief_example_parses_and_validates() {
    let config = parse(BRIEF_EXAMPLE).unwrap();
    config.validate().unwrap();
    assert_eq!(config.peers[0].redis_prefix, "node-b:");
    assert_eq!(
        config.settings.hot_path.block_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(config.settings.cold_path.interval, Duration::from_secs(60));
}

#[test]
fn only_local_node_id_is_required() {
    let config = parse("local_node_id = \"a\"").unwrap();
    config.validate().unwrap();
    assert_eq!(config, ReplicationEngineConfig::new("a"));
    assert!(parse("").unwrap_err().contains("local_node_id"));
}

#[test]
fn unknown_fields_are_named() {
    let err = parse("local_node_id = \"a\"\nbogus = 1").unwrap_err();
    assert!(err.contains("bogus"), "{err}");
    let err = parse("local_node_id = \"a\"\n[settings.hot_path]\nbatchsize = 3").unwrap_err();
    assert!(err.contains("batchsize"), "{err}");
    let err = parse(
        "local_node_id = \"a\"\n[[peers]]\nnode_id=\"b\"\nredis_url=\"redis://h\"\nprefix=\"x\"",
    )
    .unwrap_err();
    assert!(err.contains("prefix"), "{err}");
}

#[test]
fn bad_durations_are_named() {
    let err =
        parse("local_node_id = \"a\"\n[settings.cold_path]\ninterval = \"soon\"").unwrap_err();
    assert!(err.contains("interval"), "{err}");
}

fn invalid(edit: impl FnOnce(&mut ReplicationEngineConfig)) -> ConfigError {
    let mut config = parse(BRIEF_EXAMPLE).unwrap();
    edit(&mut config);
    config.validate().unwrap_err()
}

#[test]
fn validation_errors_name_the_field() {
    assert_eq!(
        invalid(|c| c.local_node_id = " ".into()).field,
        "local_node_id"
    );
    assert_eq!(
        invalid(|c| c.peers[0].node_id.clear()).field,
        "peers[0].node_id"
    );
    assert_eq!(
        invalid(|c| c.peers[0].node_id = c.local_node_id.clone()).field,
        "peers[0].node_id"
    );
    let dup = invalid(|c| c.peers.push(c.peers[0].clone()));
    assert_eq!(dup.field, "peers[1].node_id");
    assert!(dup.message.contains("duplicate"));
    assert_eq!(
        invalid(|c| c.peers[0].redis_url = "http://h:1".into()).field,
        "peers[0].redis_url"
    );
    assert_eq!(
        invalid(|c| c.peers[0].redis_url = "redis://h:1/x".into()).field,
        "peers[0].redis_url"
    );
    assert_eq!(
        invalid(|c| c.peers[0].redis_url = "nonsense".into()).field,
        "peers[0].redis_url"
    );
    assert_eq!(
        invalid(|c| c.settings.hot_path.batch_size = 0).field,
        "settings.hot_path.batch_size"
    );
    assert_eq!(
        invalid(|c| c.settings.cold_path.interval = Duration::ZERO).field,
        "settings.cold_path.interval"
    );
    assert_eq!(
        invalid(|c| c.settings.cold_path.max_items_per_cycle = 0).field,
        "settings.cold_path.max_items_per_cycle"
    );
    assert_eq!(
        invalid(|c| c.settings.peer.circuit_failure_threshold = 0).field,
        "settings.peer.circuit_failure_threshold"
    );
    assert_eq!(
        invalid(|c| c.cursor.sqlite_path = PathBuf::new()).field,
        "cursor.sqlite_path"
    );
    let tls = invalid(|c| c.peers[0].tls = Some(PeerTlsConfig::default()));
    assert_eq!(tls.field, "peers[0].tls");
}

#[test]
fn passwords_never_show() {
    let mut peer = PeerConfig::new("b", "rediss://user:hunter2@host:6380/2");
    peer.redis_prefix = "p:".into();
    assert!(!format!("{peer:?}").contains("hunter2"));
    assert_eq!(peer.redacted_url(), "rediss://user:***@host:6380/2");
    assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    assert!(!redact_url("redis://u:hunter2@[bad").contains("hunter2"));
    let err = validate_redis_url("redis://u:hunter2@h:1/notanumber").unwrap_err();
    assert!(!err.contains("hunter2"));
    let err = validate_redis_url("redis://u:hunter2@[::1").unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
}
