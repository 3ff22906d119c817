//! [`RedisPeer`]: the `PeerBackend` over a peer's Redis, with fred 10.
//!
//! Two connections per peer: the *stream* connection only ever runs `XREAD BLOCK` (with the
//! `XINFO` that follows it in the same pipeline), the
//! *query* connection runs everything else, so a long block never delays a ping or a
//! Merkle read. A third, the second stream connection ([`StreamLane::Second`]), is built
//! with them but connects only when a tailer first reads on it: across a slow link a
//! tailer keeps a second blocking read waiting at the peer while the first travels back.
//! Each reconnects by itself (fred's reconnect policy: exponential from
//! `reconnect_initial_delay` to `reconnect_max_delay`, with jitter, forever); a supervisor
//! restarts a connection task that fred gave up on. Calls go through the tower stacks of
//! [`crate::resilience`].

mod endpoint;
mod errors;
mod item_reads;
mod keys;
mod limits;
mod query;
mod reply;
mod status;
mod stream;

use crate::resilience::circuit::{CircuitBreaker, CircuitBreakerLayer, CircuitBreakerService};
use crate::resilience::{self, SharedStack};
use endpoint::Endpoint;
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::config::ReconnectPolicy;
use fred::types::Builder;
use futures::future::BoxFuture;
use limits::ReadLimits;
use query::{Query, QueryService, Reply};
use replication_core::merkle::Hash;
use replication_core::WireKeys;
use replication_core::{
    CheckedRead, ConnectionStatus, ItemRead, PeerBackend, PeerConfig, PeerError, PeerSettings,
    RawEntry, ReadRequest, Settings, StreamId, StreamInfo, StreamLane, Tombstone,
};
use status::{Link, StatusTracker};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stream::{StreamRead, StreamReply, StreamService};
use tower::ServiceExt;

/// A peer reached through its Redis.
pub struct RedisPeer {
    node_id: Arc<str>,
    redacted_url: String,
    query_client: Client,
    stream_client: Client,
    queries: Mutex<SharedStack<Query, Reply>>,
    stream: CircuitBreakerService<StreamService>,
    second_stream: SecondStream,
    breaker: CircuitBreaker,
    status: Arc<StatusTracker>,
    round_trips: Arc<AtomicU64>,
    command_timeout: Duration,
    /// Connection supervisors and event watchers, aborted on drop.
    supervisors: Vec<tokio::task::JoinHandle<()>>,
}

/// The second stream connection: its client and breaker-wrapped service are built with
/// the peer, its connection task and watchers are started by the first read on it, so a
/// peer whose tailer never pairs its reads (nearby, or idle) holds two connections, not
/// three.
struct SecondStream {
    client: Client,
    stream: CircuitBreakerService<StreamService>,
    settings: PeerSettings,
    /// Supervisor and watchers once started; aborted on drop.
    started: std::sync::OnceLock<Vec<tokio::task::JoinHandle<()>>>,
}

impl SecondStream {
    /// Starts connecting on first use, and waits up to `connect_timeout` for the
    /// connection, so the first paired read is not failed only for being first.
    async fn ready(&self, status: &Arc<StatusTracker>) {
        if status.is_closed() {
            return; // The call fails as closed; nothing to connect for.
        }
        self.started.get_or_init(|| {
            let mut tasks = status.watch(&self.client, Link::SecondStream);
            tasks.push(supervise(
                self.client.clone(),
                Arc::clone(status),
                &self.settings,
            ));
            tasks
        });
        if !self.client.is_connected() {
            let _ = tokio::time::timeout(
                self.settings.connect_timeout,
                self.client.wait_for_connect(),
            )
            .await;
        }
    }

    fn abort(&self) {
        for task in self.started.get().into_iter().flatten() {
            task.abort();
        }
    }
}

impl fmt::Debug for RedisPeer {
    // Hand-written: the URL is shown redacted and fred's clients are left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPeer")
            .field("node_id", &self.node_id)
            .field("url", &self.redacted_url)
            .field("circuit", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl RedisPeer {
    /// Validates the peer's URL and TLS files and starts connecting in the background.
    /// Returns at once even when the peer is down; calls fail with a retriable error until
    /// it is connected. Must be called within a Tokio runtime.
    ///
    /// `settings.peer` tunes the connections and resilience layers; `settings.limits` and
    /// `settings.hot_path.max_content_bytes` bound what reads accept from the peer (taken
    /// once, here: a changed limit applies from the peer's next reconnect). Read sizes and
    /// block times come with each request.
    pub fn new(config: &PeerConfig, settings: &Settings) -> Result<RedisPeer, PeerError> {
        let limits = ReadLimits::from_settings(settings);
        let settings = &settings.peer;
        let peer: Arc<str> = Arc::from(config.node_id.as_str());
        let invalid = |message: String| PeerError::InvalidConfig {
            peer: peer.to_string(),
            message,
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(invalid(
                "RedisPeer::new must run inside a Tokio runtime".into(),
            ));
        }
        let endpoint = Endpoint::parse(config).map_err(invalid)?;
        let secret: Option<Arc<str>> = endpoint.password().map(Arc::from);
        let keys = WireKeys::new(&config.redis_prefix);
        let stream_slot = endpoint
            .url
            .is_cluster()
            .then(|| fred::util::redis_keyslot(keys.cdc().as_bytes()));
        let status = StatusTracker::new(&peer, endpoint.password().map(str::to_owned), stream_slot);
        let query_client = build_client(&endpoint, settings)
            .map_err(|e| invalid(replication_redis::scrub(e.details(), secret.as_deref())))?;
        let stream_client = build_client(&endpoint, settings)
            .map_err(|e| invalid(replication_redis::scrub(e.details(), secret.as_deref())))?;
        let second_stream_client = build_client(&endpoint, settings)
            .map_err(|e| invalid(replication_redis::scrub(e.details(), secret.as_deref())))?;
        let mut supervisors = status.watch(&query_client, Link::Query);
        supervisors.extend(status.watch(&stream_client, Link::Stream));
        supervisors.push(supervise(
            query_client.clone(),
            Arc::clone(&status),
            settings,
        ));
        supervisors.push(supervise(
            stream_client.clone(),
            Arc::clone(&status),
            settings,
        ));

        let breaker = CircuitBreaker::new(
            settings.circuit_failure_threshold,
            settings.circuit_open_for,
        );
        let round_trips = Arc::new(AtomicU64::new(0));
        let query_service = QueryService {
            client: query_client.clone(),
            keys: keys.clone(),
            peer: Arc::clone(&peer),
            secret: secret.clone(),
            status: Arc::clone(&status),
            round_trips: Arc::clone(&round_trips),
            limits,
        };
        let queries = resilience::query_stack(query_service, settings, breaker.clone());
        let stream_service = StreamService {
            client: stream_client.clone(),
            cdc_key: Arc::from(keys.cdc().as_str()),
            peer: Arc::clone(&peer),
            secret,
            status: Arc::clone(&status),
            link: Link::Stream,
            command_timeout: settings.command_timeout,
        };
        let second_stream_service = StreamService {
            client: second_stream_client.clone(),
            link: Link::SecondStream,
            ..stream_service.clone()
        };
        let guarded = |service: StreamService| {
            tower::Layer::layer(
                &CircuitBreakerLayer::new(breaker.clone())
                    .with_failure_predicate(resilience::is_peer_failure),
                service,
            )
        };
        let stream = guarded(stream_service);
        let second_stream = SecondStream {
            client: second_stream_client,
            stream: guarded(second_stream_service),
            settings: settings.clone(),
            started: std::sync::OnceLock::new(),
        };
        tracing::debug!(peer = %peer, url = %endpoint.redacted, "connecting to peer");
        Ok(RedisPeer {
            node_id: peer,
            redacted_url: endpoint.redacted,
            query_client,
            stream_client,
            queries: Mutex::new(queries),
            stream,
            second_stream,
            breaker,
            status,
            round_trips,
            command_timeout: settings.command_timeout,
            supervisors,
        })
    }

    /// The peer's circuit breaker (shared by its query and stream calls).
    pub fn circuit(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Network exchanges made on the query connection so far (a pipeline counts once).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The URL with its password masked.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Waits until both connections are up, or fails with the last connection error
    /// after `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.query_client.is_connected() && self.stream_client.is_connected() {
                return Ok(());
            }
            if self.status.is_closed() {
                return Err(PeerError::Closed {
                    peer: self.node_id.to_string(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                let link = if self.query_client.is_connected() {
                    Link::Stream
                } else {
                    Link::Query
                };
                return Err(self.status.not_connected(link));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs `query` through the shared stack. A call made while the query connection is
    /// down fails here, before the stack: it never reached the peer, so it counts neither
    /// against the circuit (which would then stay open long after the connection is back:
    /// a peer added while its first connect takes a second or two would sit out
    /// `circuit_open_for`) nor as a retry; fred's reconnect policy paces the reconnects.
    async fn query(&self, query: Query) -> Result<Reply, PeerError> {
        self.status
            .ready_for_call(&self.query_client, Link::Query)?;
        let operation = query.operation();
        let call = self.start_query(query);
        call.await.map_err(|e| {
            resilience::to_peer_error(&self.node_id, operation, self.command_timeout, e)
        })
    }

    /// Starts a call through the shared stack. A plain (non-async) function boxing the
    /// future, so the `Send` check of `async_trait` does not meet `Buffer`'s
    /// higher-ranked error bound.
    fn start_query(&self, query: Query) -> BoxFuture<'static, Result<Reply, tower::BoxError>> {
        let stack = self
            .queries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Box::pin(stack.oneshot(query))
    }

    /// Runs `read` through the stream breaker on `lane`'s connection; as [`Self::query`], a
    /// read made while that connection is down fails before it.
    async fn stream_read(
        &self,
        lane: StreamLane,
        read: StreamRead,
    ) -> Result<StreamReply, PeerError> {
        let (client, link, stream) = match lane {
            StreamLane::First => (&self.stream_client, Link::Stream, &self.stream),
            StreamLane::Second => {
                self.second_stream.ready(&self.status).await;
                (
                    &self.second_stream.client,
                    Link::SecondStream,
                    &self.second_stream.stream,
                )
            }
        };
        self.status.ready_for_call(client, link)?;
        let bound = read.request.block.unwrap_or_default() + self.command_timeout;
        stream
            .clone()
            .oneshot(read)
            .await
            .map_err(|e| resilience::to_peer_error(&self.node_id, "read_stream", bound, e))
    }

    fn unexpected(&self, operation: &str) -> PeerError {
        PeerError::Protocol {
            peer: self.node_id.to_string(),
            message: format!("{operation}: mismatched reply"),
        }
    }
}

fn build_client(
    endpoint: &Endpoint,
    settings: &PeerSettings,
) -> Result<Client, fred::error::Error> {
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1);
    let mut policy = ReconnectPolicy::new_exponential(
        0,
        ms(settings.reconnect_initial_delay),
        ms(settings.reconnect_max_delay),
        2,
    );
    policy.set_jitter(ms(settings.reconnect_initial_delay));
    let mut builder = Builder::from_config(endpoint.fred_config());
    builder
        .set_policy(policy)
        .with_connection_config(|c| {
            c.connection_timeout = settings.connect_timeout;
            c.internal_command_timeout = settings.command_timeout;
            // The retry layer owns retries; fred must not replay commands on reconnect.
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| {
            // Bounded by our own timeouts (layer or blocking-read bound).
            p.default_command_timeout = Duration::ZERO;
        });
    builder.build()
}

/// Runs the connection task of `client`, and starts it again if fred ever gives up (it
/// retries forever by policy, but a fatal error ends its task).
fn supervise(
    client: Client,
    status: Arc<StatusTracker>,
    settings: &PeerSettings,
) -> tokio::task::JoinHandle<()> {
    let mut backoff = replication_core::RetryPolicy::new(
        settings.reconnect_initial_delay,
        settings.reconnect_max_delay,
    )
    .backoff();
    let backoff_cap = settings.reconnect_max_delay;
    tokio::spawn(async move {
        loop {
            let task = client.connect();
            let ended = task.await;
            if status.is_closed() {
                return;
            }
            tracing::warn!(outcome = ?ended.map(|r| r.map_err(|e| e.kind().to_str())), "peer connection task ended; restarting");
            // Unbounded policy: a delay always comes.
            let delay = backoff.next_delay().unwrap_or(backoff_cap);
            tokio::time::sleep(delay).await;
        }
    })
}

#[async_trait::async_trait]
impl PeerBackend for RedisPeer {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn connection(&self) -> ConnectionStatus {
        ConnectionStatus {
            circuit_open: self.breaker.is_open(),
            ..self
                .status
                .snapshot(&self.query_client, &self.stream_client)
        }
    }

    async fn read_stream(&self, request: ReadRequest) -> Result<Vec<RawEntry>, PeerError> {
        let read = StreamRead {
            request,
            with_info: false,
        };
        Ok(self.stream_read(StreamLane::First, read).await?.0)
    }

    async fn read_stream_with_info(
        &self,
        request: ReadRequest,
    ) -> Result<(Vec<RawEntry>, Option<StreamInfo>), PeerError> {
        self.read_stream_with_info_on(StreamLane::First, request)
            .await
    }

    fn stream_lanes(&self) -> usize {
        2
    }

    async fn read_stream_with_info_on(
        &self,
        lane: StreamLane,
        request: ReadRequest,
    ) -> Result<(Vec<RawEntry>, Option<StreamInfo>), PeerError> {
        let (entries, info) = self
            .stream_read(
                lane,
                StreamRead {
                    request,
                    with_info: true,
                },
            )
            .await?;
        // Nothing read: the facts say nothing the caller needs (see the trait).
        Ok(match entries.is_empty() {
            true => (entries, None),
            false => (entries, info),
        })
    }

    async fn read_stream_checked(
        &self,
        after: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        match self.query(Query::ReadChecked { after, count }).await? {
            Reply::Checked(read) => Ok(read),
            _ => Err(self.unexpected("read_stream_checked")),
        }
    }

    async fn read_range_checked(
        &self,
        after: StreamId,
        until: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        match self
            .query(Query::ReadRange {
                after,
                until,
                count,
            })
            .await?
        {
            Reply::Checked(read) => Ok(read),
            _ => Err(self.unexpected("read_range_checked")),
        }
    }

    async fn stream_info(&self) -> Result<Option<StreamInfo>, PeerError> {
        match self.query(Query::StreamInfo).await? {
            Reply::StreamInfo(info) => Ok(info),
            _ => Err(self.unexpected("stream_info")),
        }
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        match self.query(Query::MerkleRoot).await? {
            Reply::MerkleRoot(root) => Ok(root),
            _ => Err(self.unexpected("get_merkle_root")),
        }
    }

    async fn merkle_children(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        match self.query(Query::MerkleChildren(Arc::from(paths))).await? {
            Reply::MerkleChildren(children) => Ok(children),
            _ => Err(self.unexpected("merkle_children")),
        }
    }

    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        match self.query(Query::Items(Arc::from(keys))).await? {
            Reply::Items(items) => Ok(items),
            _ => Err(self.unexpected("read_items")),
        }
    }

    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        match self.query(Query::ItemSizes(Arc::from(keys))).await? {
            Reply::ItemSizes(sizes) => Ok(Some(sizes)),
            _ => Err(self.unexpected("item_sizes")),
        }
    }

    async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, PeerError> {
        match self.query(Query::Exists(Arc::from(keys))).await? {
            Reply::Exists(exists) => Ok(exists),
            _ => Err(self.unexpected("exists_many")),
        }
    }

    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        match self.query(Query::Tombstones(Arc::from(keys))).await? {
            Reply::Tombstones(tombstones) => Ok(tombstones),
            _ => Err(self.unexpected("read_tombstones")),
        }
    }

    async fn ping(&self) -> Result<Duration, PeerError> {
        match self.query(Query::Ping).await? {
            Reply::Ping(rtt) => Ok(rtt),
            _ => Err(self.unexpected("ping")),
        }
    }

    async fn close(&self) {
        self.status.set_closed();
        let _ = self.query_client.quit().await;
        let _ = self.stream_client.quit().await;
        if self.second_stream.started.get().is_some() {
            let _ = self.second_stream.client.quit().await;
        }
    }
}

impl Drop for RedisPeer {
    fn drop(&mut self) {
        self.status.set_closed();
        for task in &self.supervisors {
            task.abort();
        }
        self.second_stream.abort();
        // Stop fred's connection tasks too; quitting needs async, so aborting the supervisor
        // above and dropping the last client handles lets fred close its sockets.
        let query = self.query_client.clone();
        let stream = self.stream_client.clone();
        let second = self
            .second_stream
            .started
            .get()
            .map(|_| self.second_stream.client.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = query.quit().await;
                let _ = stream.quit().await;
                if let Some(second) = second {
                    let _ = second.quit().await;
                }
            });
        }
    }
}
