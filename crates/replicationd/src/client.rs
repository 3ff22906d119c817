//! The CLI's side of the daemon's HTTP endpoint: one HTTP/1.1 request over a TCP socket,
//! typed replies. A handful of local requests do not justify an HTTP client crate.

use crate::status_model::StatusReport;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest wait to connect, and then for the whole answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A daemon's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Sends `method path` to the daemon at `addr`, with a bearer token when one is given.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<Reply> {
    let mut stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .context("timed out connecting")?
        .context("cannot connect")?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut response))
        .await
        .context("timed out waiting for the answer")??;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed HTTP status line")?;
    Ok(Reply {
        status,
        body: body.to_owned(),
    })
}

/// The daemon's status report.
pub(crate) async fn status(addr: SocketAddr) -> Result<StatusReport> {
    let reply = request(addr, "GET", "/status.json", None)
        .await
        .with_context(|| format!("no replicationd answering on {addr} (is it running?)"))?;
    if reply.status != 200 {
        bail!(
            "replicationd on {addr} answered {} to /status.json",
            reply.status
        );
    }
    serde_json::from_str(&reply.body)
        .with_context(|| format!("replicationd on {addr} sent a status this version cannot read"))
}
