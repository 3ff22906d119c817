//! Free loopback ports for the servers tests start (redis-server, a daemon's HTTP
//! endpoint): bound, read and released, so a parallel test may still take one first.

use std::net::{Ipv4Addr, TcpListener};

/// A loopback port nothing listens on right now.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
