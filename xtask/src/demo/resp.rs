//! The demo's window into each node's Redis, independent of the code under demonstration:
//! the testkit's std-only RESP client, compiled in as a module rather than depended on, so
//! that xtask keeps its few dependencies (the testkit brings tokio and the core with it).

use anyhow::{bail, Context, Result};
use std::net::{Ipv4Addr, SocketAddr};

// The demo uses only part of the client; the rest is there for the tests.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../crates/replication-testkit/src/resp.rs"]
mod client;

pub(crate) use client::Reply;

/// Sends one command to `127.0.0.1:port` and reads its reply; an error reply is an error.
pub(crate) fn command(port: u16, args: &[&str]) -> Result<Reply> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match client::command_str(addr, args)
        .with_context(|| format!("redis on port {port}: {}", args.join(" ")))?
    {
        Reply::Error(error) => bail!("redis error: {error}"),
        reply => Ok(reply),
    }
}
