//! `PeerConnector`: how the engine gets a backend for a configured peer, so tests and other
//! transports can swap Redis out.

use replication_core::{PeerBackend, PeerConfig, PeerError, Settings};
use replication_peer::RedisPeer;
use std::sync::Arc;

/// Makes peer backends. Must return promptly: connecting happens in the background.
pub trait PeerConnector: Send + Sync + 'static {
    /// A backend for `peer`. Errors only for configuration it cannot use (bad URL, TLS
    /// files); an unreachable peer is not an error, it keeps reconnecting.
    fn connect(
        &self,
        peer: &PeerConfig,
        settings: &Settings,
    ) -> Result<Arc<dyn PeerBackend>, PeerError>;
}

/// The default: peers are Redis servers (fred).
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisConnector;

impl PeerConnector for RedisConnector {
    fn connect(
        &self,
        peer: &PeerConfig,
        settings: &Settings,
    ) -> Result<Arc<dyn PeerBackend>, PeerError> {
        Ok(Arc::new(RedisPeer::new(peer, settings)?))
    }
}

impl<F> PeerConnector for F
where
    F: Fn(&PeerConfig, &Settings) -> Result<Arc<dyn PeerBackend>, PeerError>
        + Send
        + Sync
        + 'static,
{
    fn connect(
        &self,
        peer: &PeerConfig,
        settings: &Settings,
    ) -> Result<Arc<dyn PeerBackend>, PeerError> {
        self(peer, settings)
    }
}
