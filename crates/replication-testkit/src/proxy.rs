//! A fault-injecting TCP proxy for one link (engine → peer Redis): pass, one-way latency,
//! blackhole, replies held, refuse, and cut (close every open connection), switchable at
//! any moment.
//! The tests' mesh harness puts one on every link; the benchmarks use it for WAN latency.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the link does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMode {
    /// Forward everything.
    Pass,
    /// One-way latency in each direction: bytes read at `t` are written at `t + d`. Bytes
    /// keep flowing meanwhile (a long pipe, not a slow one), so a round trip costs `2d`
    /// however many requests are in flight, as on a WAN link.
    Delay(Duration),
    /// Accept connections and bytes but forward nothing (a partition that times out).
    Blackhole,
    /// Forward requests to the server but hold its replies until the mode changes (a cut
    /// drops them): a command that ran whose reply was lost on the way back.
    HoldReplies,
    /// Refuse new connections (close them at once); open ones keep working.
    Refuse,
}

/// Chunks in flight per direction before the reading side waits: with 64 KB chunks,
/// up to 16 MB on the wire per direction, more than any bandwidth-delay product the
/// benchmarks need, still bounded.
const CHUNKS_IN_FLIGHT: usize = 256;

/// A running proxy from a loopback port to `upstream`.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<LinkMode>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding from a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(upstream, LinkMode::Pass).await
    }

    /// Starts forwarding to `upstream` in `mode` from the first byte (a WAN link exists
    /// before anyone connects through it).
    pub async fn start_with(upstream: SocketAddr, mode: LinkMode) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(mode);
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = connections.clone();
        let accept_task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *mode_rx.borrow() == LinkMode::Refuse {
                    drop(client);
                    continue;
                }
                let rx = mode_rx.clone();
                let handle = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_r, client_w) = client.into_split();
                    let (server_r, server_w) = server.into_split();
                    let up = pump(client_r, server_w, rx.clone(), Direction::Requests);
                    let down = pump(server_r, client_w, rx, Direction::Replies);
                    // When either direction ends, the connection is over.
                    tokio::select! { _ = up => {}, _ = down => {} }
                });
                let mut list = conns
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                list.retain(|h| !h.is_finished());
                list.push(handle);
            }
        });
        Ok(Self {
            addr,
            mode,
            connections,
            accept_task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:{port}` of the proxy.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Switches the link's behaviour.
    pub fn set(&self, mode: LinkMode) {
        self.mode.send_replace(mode);
    }

    /// Current behaviour.
    pub fn mode(&self) -> LinkMode {
        *self.mode.borrow()
    }

    /// Closes every open connection through the proxy (clients see a dropped connection).
    pub fn cut(&self) {
        let mut list = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for handle in list.drain(..) {
            handle.abort();
        }
    }

    /// A partition: drop open connections and blackhole new ones until [`heal`](Self::heal).
    pub fn partition(&self) {
        self.set(LinkMode::Blackhole);
        self.cut();
    }

    /// Back to forwarding everything.
    pub fn heal(&self) {
        self.set(LinkMode::Pass);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut();
    }
}

/// Which way a pump copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to server.
    Requests,
    /// Server to client.
    Replies,
}

/// Copies bytes one way. A reading half stamps each chunk with the time it arrived and
/// hands it on; the writing half holds it until the link mode lets it go (its latency
/// after the stamp, or the end of a blackhole), so latency does not serialise chunks.
async fn pump(
    from: OwnedReadHalf,
    to: OwnedWriteHalf,
    mode: watch::Receiver<LinkMode>,
    direction: Direction,
) {
    let (chunks, chunks_rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    // Both halves run to their end: what was read before the end of the input is still
    // delivered, and a failed write ends the reading half at its next chunk.
    tokio::join!(
        read_side(from, chunks),
        write_side(chunks_rx, to, mode, direction)
    );
}

async fn read_side(mut from: OwnedReadHalf, chunks: mpsc::Sender<(Instant, Vec<u8>)>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if chunks
            .send((Instant::now(), buf[..n].to_vec()))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn write_side(
    mut chunks: mpsc::Receiver<(Instant, Vec<u8>)>,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<LinkMode>,
    direction: Direction,
) {
    while let Some((read_at, chunk)) = chunks.recv().await {
        loop {
            let current = *mode.borrow_and_update();
            match current {
                LinkMode::Pass | LinkMode::Refuse => break,
                LinkMode::HoldReplies if direction == Direction::Requests => break,
                LinkMode::Delay(d) => {
                    tokio::time::sleep_until(read_at + d).await;
                    break;
                }
                // Hold the bytes until the link heals (or the connection is cut).
                LinkMode::Blackhole | LinkMode::HoldReplies => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn echo_server() -> SocketAddr {
        echo_server_counting().await.0
    }

    /// An echo server, and how many bytes it has received.
    async fn echo_server_counting() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        counted.fetch_add(n, Ordering::SeqCst);
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, received)
    }

    async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Option<Vec<u8>> {
        stream.write_all(msg).await.ok()?;
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf)
    }

    #[tokio::test]
    async fn passes_blackholes_heals_and_cuts() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut conn, b"hello").await.as_deref(),
            Some(&b"hello"[..])
        );
        proxy.set(LinkMode::Blackhole);
        assert_eq!(
            round_trip(&mut conn, b"lost?").await,
            None,
            "blackholed bytes must not arrive"
        );
        proxy.heal();
        // The held bytes arrive once healed.
        let mut held = [0u8; 5];
        conn.read_exact(&mut held).await.unwrap();
        assert_eq!(&held, b"lost?");
        proxy.cut();
        let mut buf = [0u8; 1];
        let after_cut = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .unwrap();
        assert!(
            matches!(after_cut, Ok(0) | Err(_)),
            "a cut connection is closed"
        );
        proxy.set(LinkMode::Refuse);
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut refused, b"x").await, None);
        proxy.heal();
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut fresh, b"again").await.as_deref(),
            Some(&b"again"[..])
        );
    }

    #[tokio::test]
    async fn held_replies_let_requests_through_and_drop_the_replies_at_a_cut() {
        let (server, received) = echo_server_counting().await;
        let proxy = FaultProxy::start(server).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        proxy.set(LinkMode::HoldReplies);
        assert_eq!(round_trip(&mut conn, b"ran").await, None, "reply held");
        assert_eq!(received.load(Ordering::SeqCst), 3, "the request arrived");
        proxy.heal();
        let mut echoed = [0u8; 3];
        conn.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ran", "held replies flow once healed");
        proxy.set(LinkMode::HoldReplies);
        assert_eq!(round_trip(&mut conn, b"cut").await, None);
        proxy.cut();
        proxy.heal();
        let mut buf = [0u8; 3];
        let after_cut = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .unwrap();
        assert!(
            matches!(after_cut, Ok(0) | Err(_)),
            "the held reply is dropped"
        );
        assert_eq!(received.load(Ordering::SeqCst), 6);
    }

    /// Latency applies in both directions (a round trip takes at least twice the one-way
    /// delay) and keeps every byte in order while many writes are in flight at once.
    #[tokio::test]
    async fn latency_delays_both_ways_and_keeps_pipelined_bytes_in_order() {
        let one_way = Duration::from_millis(30);
        let proxy = FaultProxy::start_with(echo_server().await, LinkMode::Delay(one_way))
            .await
            .unwrap();
        let conn = TcpStream::connect(proxy.addr()).await.unwrap();
        let (mut r, mut w) = conn.into_split();
        let expected: Vec<u8> = (0..200u32).flat_map(|i| i.to_le_bytes()).collect();
        let sent = expected.clone();
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            for chunk in sent.chunks(4) {
                w.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            w
        });
        let mut got = vec![0u8; expected.len()];
        r.read_exact(&mut got).await.unwrap();
        assert!(
            started.elapsed() >= one_way * 2,
            "a round trip is 2 × one way"
        );
        assert_eq!(got, expected);
        drop(writer.await.unwrap());
    }
}
