//! A mesh node's own Redis: one server, a Sentinel-watched primary and replica, or a
//! Redis Cluster. Nodes behind Sentinel or on a Cluster are reached by their peers through
//! that deployment's URL (the deployment hands out its servers' real addresses, so no
//! fault proxy can sit on those links).

use replication_testkit::{RedisCluster, RedisServer, SentinelSet, TestkitError};
use std::net::SocketAddr;

/// Which deployment a node's Redis is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// One `redis-server`.
    #[default]
    Single,
    /// A primary, a replica and three Sentinels.
    Sentinel,
    /// Three primaries with a replica each; the node's prefix carries a hash tag.
    Cluster,
}

/// The running deployment of one node.
#[derive(Debug)]
pub enum NodeRedis {
    /// One server.
    Single(RedisServer),
    /// A Sentinel set.
    Sentinel(SentinelSet),
    /// A Cluster, with a key of the node's slot (to find the primary holding its data).
    Cluster {
        /// The cluster.
        cluster: RedisCluster,
        /// Any key under the node's prefix.
        slot_key: String,
    },
}

impl NodeRedis {
    /// Starts a deployment of `kind` for a node whose keys start with `prefix`.
    ///
    /// # Errors
    /// When redis-server is missing or the deployment does not form.
    pub fn start(kind: Backend, persistence: bool, prefix: &str) -> Result<Self, TestkitError> {
        Ok(match kind {
            Backend::Single => {
                Self::Single(RedisServer::builder().persistence(persistence).start()?)
            }
            Backend::Sentinel => Self::Sentinel(SentinelSet::start()?),
            Backend::Cluster => Self::Cluster {
                cluster: RedisCluster::start()?,
                slot_key: replication_core::WireKeys::new(prefix).write_token(),
            },
        })
    }

    /// The URL the node's store connects with (and, but for a single server, which peers
    /// read it through).
    pub fn url(&self) -> String {
        match self {
            Self::Single(server) => server.url(),
            Self::Sentinel(set) => set.url(),
            Self::Cluster { cluster, .. } => cluster.url(),
        }
    }

    /// Whether peers must read this node through [`url`](Self::url) rather than a proxy.
    pub fn is_ha(&self) -> bool {
        !matches!(self, Self::Single(_))
    }

    /// The server holding the node's data now (the current primary).
    ///
    /// # Errors
    /// When the deployment cannot say (no primary during a failover).
    pub fn holder(&self) -> Result<&RedisServer, TestkitError> {
        match self {
            Self::Single(server) => Ok(server),
            Self::Sentinel(set) => set.primary(),
            Self::Cluster { cluster, slot_key } => cluster.primary_for(slot_key),
        }
    }

    /// Address of the server holding the node's data.
    ///
    /// # Panics
    /// When no server holds it right now (a failover in progress).
    pub fn addr(&self) -> SocketAddr {
        self.holder()
            .expect("a server holds the node's data")
            .addr()
    }

    /// One command on the server holding the node's data.
    ///
    /// # Errors
    /// As [`RedisServer::command`], or when no server holds the data right now.
    pub fn command(&self, args: &[&str]) -> Result<String, TestkitError> {
        self.holder()?.command(args)
    }

    /// The single server.
    ///
    /// # Panics
    /// For a Sentinel set or a Cluster, whose servers fail over instead of restarting.
    pub fn single(&mut self) -> &mut RedisServer {
        match self {
            Self::Single(server) => server,
            other => panic!("not a single redis-server: {other:?}"),
        }
    }

    /// Kills the single server (SIGKILL).
    ///
    /// # Panics
    /// As [`single`](Self::single).
    pub fn kill(&mut self) {
        self.single().kill();
    }

    /// Restarts the single server.
    ///
    /// # Errors
    /// As [`RedisServer::restart`].
    ///
    /// # Panics
    /// As [`single`](Self::single).
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.single().restart()
    }

    /// The Sentinel set.
    ///
    /// # Panics
    /// For any other deployment.
    pub fn sentinel(&mut self) -> &mut SentinelSet {
        match self {
            Self::Sentinel(set) => set,
            other => panic!("not a Sentinel set: {other:?}"),
        }
    }

    /// The Cluster and the key of the node's slot.
    ///
    /// # Panics
    /// For any other deployment.
    pub fn cluster(&mut self) -> (&mut RedisCluster, &str) {
        match self {
            Self::Cluster { cluster, slot_key } => (cluster, slot_key),
            other => panic!("not a Cluster: {other:?}"),
        }
    }
}
