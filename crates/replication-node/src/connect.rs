//! Opening clients to the node's Redis, failing clearly (with the URL redacted) when it is
//! unreachable.

use crate::{NodeError, NodeStoreConfig};
use fred::prelude::{Builder, Client, ClientLike, Config, ReconnectPolicy};
use replication_core::RedisTopology;
use replication_redis::{scrub, scrub_url_password};
use std::time::Duration;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected client. After the first connection, fred reconnects by itself (exponential
/// backoff, unbounded attempts) but never replays a command that a dropped connection cut
/// (`max_command_attempts = 1`): the call fails retriably and its one owner (the engine's
/// write or read loop, or whoever called the store) decides whether to try again. The
/// store's own retries only cover write conflicts. fred 10 still sends a `MULTI`/`EXEC`
/// block once more after reconnecting (its transaction loop allows one attempt beyond
/// the configured number); the commit's token check makes that resend a no-op that
/// reports whether the block landed (`writer::commit`).
///
/// The URL is checked first (`NodeStoreConfig::validate`), so that a malformed one fails
/// with our own redacted message; fred then reads the same forms (Sentinel and Cluster
/// included).
pub(crate) async fn connect(config: &NodeStoreConfig) -> Result<Client, NodeError> {
    let url = config.validate()?;
    // The Sentinels' own password sits in the query, where the URL scrub does not look.
    let sentinel_password = match &url.topology {
        RedisTopology::Sentinel { password, .. } => password.as_deref(),
        _ => None,
    };
    let fail = |error: fred::error::Error| NodeError::Connect {
        url: config.redacted_url(),
        source: Box::new(Redacted(scrub(
            &scrub_url_password(&error.to_string(), &config.redis_url),
            sentinel_password,
        ))),
    };
    let fred_config = Config::from_url(&config.redis_url).map_err(fail)?;
    let client = Builder::from_config(fred_config)
        .with_connection_config(|c| {
            c.connection_timeout = CONNECT_TIMEOUT;
            // The call's owner retries; fred must not replay a cut command as well.
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| p.default_command_timeout = config.command_timeout)
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 5_000, 2))
        .build()
        .map_err(fail)?;
    client.init().await.map_err(fail)?;
    Ok(client)
}

/// A client error message with any password taken out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Redacted(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_redis_fails_naming_the_redacted_url() {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let config = NodeStoreConfig::new("redis://user:hunter2@127.0.0.1:1");
        let error = connect(&config)
            .await
            .expect_err("nothing listens on port 1");
        let shown = format!("{error}: {:?}", std::error::Error::source(&error));
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
