//! Cached connection facts of a Redis peer, kept current from fred's connection events
//! and from call outcomes, read by health checks without I/O: among them the server
//! holding the peer's stream (the primary Sentinel named, or the Cluster primary owning
//! the stream's slot) and how often it changed (failovers).

use fred::clients::Client;
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface};
use fred::types::config::Server;
use replication_core::{ConnectionState, ConnectionStatus, PeerError, ServingServer};
use replication_redis::{scrub, Failure};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
struct Facts {
    last_error: Option<String>,
    last_error_is_auth: bool,
    last_success_ms: Option<i64>,
    reconnects: u64,
    /// Per client: connected at least once (so the next connect is a *re*connect).
    connected_once: [bool; 3],
    /// The server holding the stream, and how often it changed.
    serving: ServingServer,
}

/// Shared, cheaply readable connection state of one peer (both connections).
#[derive(Debug)]
pub(crate) struct StatusTracker {
    peer: String,
    secret: Option<String>,
    /// The stream key's hash slot, for a Cluster peer.
    stream_slot: Option<u16>,
    closed: AtomicBool,
    facts: Mutex<Facts>,
}

/// Which of the peer's two connections an event is about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Link {
    Query = 0,
    Stream = 1,
    /// The second stream connection, only ever up beside a tailer's paired reads; the
    /// server it reached is not followed (the first stream connection's is the one
    /// failovers are counted on).
    SecondStream = 2,
}

impl StatusTracker {
    /// `stream_slot`: the hash slot of the peer's stream key when the peer is a Cluster.
    pub(crate) fn new(peer: &str, secret: Option<String>, stream_slot: Option<u16>) -> Arc<Self> {
        Arc::new(Self {
            peer: peer.to_owned(),
            secret,
            stream_slot,
            closed: AtomicBool::new(false),
            facts: Mutex::new(Facts::default()),
        })
    }

    /// Follows a client's connection and error events. The tasks hold the client (to read
    /// its slot map), so the caller aborts the returned handles when it drops the peer.
    pub(crate) fn watch(
        self: &Arc<Self>,
        client: &Client,
        link: Link,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let this = Arc::clone(self);
        let mut reconnects = client.reconnect_rx();
        let watched = client.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok(server) = reconnects.recv().await {
                let serving = this.serving(&watched, &server);
                let mut facts = this.facts();
                if facts.connected_once[link as usize] {
                    facts.reconnects += 1;
                }
                facts.connected_once[link as usize] = true;
                // The stream connection is the one whose server matters to the tailer.
                if let (Link::Stream, Some(server)) = (link, serving) {
                    facts.serving.observe(server);
                }
            }
        }));
        if matches!(link, Link::Stream) && self.stream_slot.is_some() {
            // A Cluster failover moves the slot without a reconnect of every connection.
            let this = Arc::clone(self);
            let mut changes = client.cluster_change_rx();
            let watched = client.clone();
            tasks.push(tokio::spawn(async move {
                while changes.recv().await.is_ok() {
                    if let Some(server) = this.cluster_owner(&watched) {
                        this.facts().serving.observe(server);
                    }
                }
            }));
        }
        let this = Arc::clone(self);
        let mut errors = client.error_rx();
        tasks.push(tokio::spawn(async move {
            while let Ok((error, _server)) = errors.recv().await {
                let mut facts = this.facts();
                facts.last_error_is_auth = Failure::of(&error) == Failure::Auth;
                facts.last_error = Some(scrub(
                    &format!("{link:?} connection: {}", error.details()),
                    this.secret.as_deref(),
                ));
            }
        }));
        tasks
    }

    /// The server holding the stream after `client` (re)connected to `server`.
    fn serving(&self, client: &Client, server: &Server) -> Option<String> {
        match self.stream_slot {
            Some(_) => self.cluster_owner(client),
            None => Some(server.to_string()),
        }
    }

    /// The Cluster primary owning the stream's slot in `client`'s cached slot map.
    fn cluster_owner(&self, client: &Client) -> Option<String> {
        let slot = self.stream_slot?;
        let routing = client.cached_cluster_state()?;
        routing.get_server(slot).map(Server::to_string)
    }

    pub(crate) fn set_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn record_success(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.facts().last_success_ms = Some(now);
    }

    pub(crate) fn record_error(&self, error: &PeerError) {
        if error.is_retriable() || matches!(error, PeerError::Auth { .. }) {
            let mut facts = self.facts();
            facts.last_error_is_auth = matches!(error, PeerError::Auth { .. });
            facts.last_error = Some(scrub(&error.to_string(), self.secret.as_deref()));
        }
    }

    /// The error for a call attempted while `client` is not connected: the last connection
    /// error when there is one (so a wrong password reads as an auth failure).
    /// Fails fast, before a call: closed on purpose, or the link's connection is down. fred
    /// would otherwise park the command until it reconnects; failing now lets the retry
    /// layer and the caller's backoff decide when to try again.
    pub(crate) fn ready_for_call(&self, client: &Client, link: Link) -> Result<(), PeerError> {
        if self.is_closed() {
            return Err(PeerError::Closed {
                peer: self.peer.to_string(),
            });
        }
        if !client.is_connected() {
            return Err(self.not_connected(link));
        }
        Ok(())
    }

    pub(crate) fn not_connected(&self, link: Link) -> PeerError {
        let facts = self.facts();
        let peer = self.peer.clone();
        let last = facts.last_error.clone();
        if facts.last_error_is_auth {
            return PeerError::Auth {
                peer,
                message: last.unwrap_or_default(),
            };
        }
        let message = match last {
            Some(last) => format!("{link:?} connection not established (last error: {last})"),
            None => format!("{link:?} connection not established yet"),
        };
        PeerError::Connection { peer, message }
    }

    /// The cached status; `query` and `stream` are the two clients.
    pub(crate) fn snapshot(&self, query: &Client, stream: &Client) -> ConnectionStatus {
        let facts = self.facts();
        let state = if self.is_closed() {
            ConnectionState::Closed
        } else if query.is_connected() && stream.is_connected() {
            ConnectionState::Connected
        } else if facts.connected_once.iter().any(|c| *c) {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        };
        ConnectionStatus {
            state,
            last_error: facts.last_error.clone(),
            last_success_ms: facts.last_success_ms,
            reconnects: facts.reconnects,
            circuit_open: false,
            server: facts.serving.server.clone(),
            failovers: facts.serving.failovers,
        }
    }

    fn facts(&self) -> MutexGuard<'_, Facts> {
        self.facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
