//! Which server holds the store's data (the primary Sentinel named, or the Cluster primary
//! owning the store's slot) and how often it changed, kept current from the write client's
//! connection events: [`NodeStore::connection`](crate::NodeStore::connection) reads it
//! without I/O, so that a failover shows in health.

use fred::clients::Client;
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface};
use fred::types::config::Server;
use replication_core::{ConnectionState, ConnectionStatus, ServingServer};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct Facts {
    serving: ServingServer,
    reconnects: u64,
    connected_once: bool,
}

/// The watch over one client; its tasks hold the client, so they end when this is dropped.
#[derive(Debug)]
pub(crate) struct ServerWatch {
    client: Client,
    /// The store's hash slot, when the store is on a Cluster.
    cluster_slot: Option<u16>,
    facts: Arc<Mutex<Facts>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerWatch {
    /// Starts following `client` (connected or not yet: its first connection counts too).
    pub(crate) fn new(client: &Client, cluster_slot: Option<u16>) -> Self {
        let facts = Arc::new(Mutex::new(Facts::default()));
        let mut tasks = Vec::new();
        let mut reconnects = client.reconnect_rx();
        let (watched, shared) = (client.clone(), Arc::clone(&facts));
        tasks.push(tokio::spawn(async move {
            while let Ok(server) = reconnects.recv().await {
                let serving = serving(&watched, cluster_slot, &server);
                let mut facts = lock(&shared);
                if facts.connected_once {
                    facts.reconnects += 1;
                }
                facts.connected_once = true;
                if let Some(server) = serving {
                    facts.serving.observe(server);
                }
            }
        }));
        if cluster_slot.is_some() {
            // A Cluster failover moves the slot without necessarily dropping a connection.
            let mut changes = client.cluster_change_rx();
            let (watched, shared) = (client.clone(), Arc::clone(&facts));
            tasks.push(tokio::spawn(async move {
                while changes.recv().await.is_ok() {
                    if let Some(server) = cluster_owner(&watched, cluster_slot) {
                        lock(&shared).serving.observe(server);
                    }
                }
            }));
        }
        Self {
            client: client.clone(),
            cluster_slot,
            facts,
            tasks,
        }
    }

    /// Records the server the client is on now, when no event told yet (the client was
    /// connected before the watch started).
    pub(crate) fn seed(&self) {
        let server = match self.cluster_slot {
            Some(_) => cluster_owner(&self.client, self.cluster_slot),
            None => self
                .client
                .active_connections()
                .first()
                .map(Server::to_string),
        };
        let mut facts = lock(&self.facts);
        facts.connected_once = true;
        if let (None, Some(server)) = (&facts.serving.server, server) {
            facts.serving.observe(server);
        }
    }

    /// The cached status (`closed`: the store was closed on purpose).
    pub(crate) fn status(&self, closed: bool) -> ConnectionStatus {
        let facts = lock(&self.facts);
        let state = if closed {
            ConnectionState::Closed
        } else if self.client.is_connected() {
            ConnectionState::Connected
        } else if facts.connected_once {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        };
        ConnectionStatus {
            state,
            reconnects: facts.reconnects,
            server: facts.serving.server.clone(),
            failovers: facts.serving.failovers,
            ..ConnectionStatus::default()
        }
    }
}

impl Drop for ServerWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The server holding the store's data after `client` (re)connected to `server`.
fn serving(client: &Client, cluster_slot: Option<u16>, server: &Server) -> Option<String> {
    match cluster_slot {
        Some(_) => cluster_owner(client, cluster_slot),
        None => Some(server.to_string()),
    }
}

/// The primary owning `slot` in `client`'s cached slot map.
fn cluster_owner(client: &Client, slot: Option<u16>) -> Option<String> {
    let routing = client.cached_cluster_state()?;
    routing.get_server(slot?).map(Server::to_string)
}

fn lock(facts: &Mutex<Facts>) -> MutexGuard<'_, Facts> {
    facts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
