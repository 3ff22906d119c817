//! A fault-injecting TCP proxy for one link (engine → peer Redis): pass, delay, blackhole,
//! refuse, and cut (close every open connection), switchable at any moment by a test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the link does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMode {
    /// Forward everything.
    Pass,
    /// Forward each chunk after this delay.
    Delay(Duration),
    /// Accept connections and bytes but forward nothing (a partition that times out).
    Blackhole,
    /// Refuse new connections (close them at once); open ones keep working.
    Refuse,
}

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
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(LinkMode::Pass);
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
                    let up = pump(client_r, server_w, rx.clone());
                    let down = pump(server_r, client_w, rx);
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

/// Copies bytes one way, applying the link mode to each chunk.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<LinkMode>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            let current = *mode.borrow_and_update();
            match current {
                LinkMode::Pass | LinkMode::Refuse => break,
                LinkMode::Delay(d) => {
                    tokio::time::sleep(d).await;
                    break;
                }
                // Hold the bytes until the link heals (or the connection is cut).
                LinkMode::Blackhole => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
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
}
