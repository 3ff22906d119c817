//! ACL authentication and TLS against real redis-servers; secrets never shown.
#![allow(clippy::unwrap_used)] // Tests and their helpers: a panic is the failure report.

mod common;

use common::*;
use replication_core::{ConnectionState, PeerBackend, PeerError, PeerTlsConfig};
use replication_peer::RedisPeer;
use replication_testkit::{eventually_some_async, RedisServer};
use std::time::Duration;

fn acl_server() -> RedisServer {
    RedisServer::builder()
        .arg("--user")
        .arg("alice")
        .arg("on")
        .arg(">s3cret-pw")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .start()
        .unwrap()
}

#[tokio::test]
async fn acl_user_with_password_works() {
    let server = acl_server();
    let url = format!("redis://alice:s3cret-pw@127.0.0.1:{}/0", server.port());
    let peer = connected_peer(&peer_config(&url, "")).await;
    peer.ping().await.unwrap();
    assert_eq!(peer.get_merkle_root().await.unwrap(), None);
    assert!(!format!("{peer:?}").contains("s3cret-pw"));
    assert!(!peer.redacted_url().contains("s3cret-pw"));
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_auth_error_without_the_password() {
    let server = acl_server();
    let url = format!("redis://alice:wrong-pw-123@127.0.0.1:{}", server.port());
    let peer = RedisPeer::new(&peer_config(&url, ""), &settings()).unwrap();
    let err = eventually_some_async("the server refuses the password", || async {
        match peer.ping().await {
            Err(e @ PeerError::Auth { .. }) => Some(e),
            Err(_) => None,
            other => panic!("expected an auth error, got {other:?}"),
        }
    })
    .await;
    let text = err.to_string();
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains("wrong-pw-123"), "{text}");
    let status = peer.connection();
    assert_ne!(status.state, ConnectionState::Connected);
    assert!(!status
        .last_error
        .unwrap_or_default()
        .contains("wrong-pw-123"));
    assert!(!format!("{peer:?}").contains("wrong-pw-123"));
}

#[tokio::test]
async fn new_returns_at_once_for_a_peer_that_is_down() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let peer = RedisPeer::new(
        &peer_config(&format!("redis://127.0.0.1:{port}"), ""),
        &settings(),
    )
    .unwrap();
    let err = peer.ping().await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert_ne!(peer.connection().state, ConnectionState::Connected);
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[tokio::test]
async fn tls_peer_with_a_private_ca_works() {
    let pki = Pki::new();
    let server = RedisServer::builder()
        .tls()
        .arg("--tls-cert-file")
        .arg(pki.path("server.pem"))
        .arg("--tls-key-file")
        .arg(pki.path("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(pki.path("ca.pem"))
        .arg("--tls-auth-clients")
        .arg("no")
        .start()
        .unwrap();
    assert!(server.url().starts_with("rediss://"));
    let mut config = peer_config(&server.url(), "");
    config.tls = Some(PeerTlsConfig {
        ca_file: Some(pki.path("ca.pem").into()),
        ..PeerTlsConfig::default()
    });
    let peer = connected_peer(&config).await;
    peer.ping().await.unwrap();
    assert_eq!(
        peer.read_items(&["x".into()]).await.unwrap(),
        vec![replication_core::ItemRead::Absent]
    );

    // Without our CA the server is not trusted: never connected.
    let untrusted = RedisPeer::new(&peer_config(&server.url(), ""), &settings()).unwrap();
    assert!(untrusted
        .wait_connected(Duration::from_millis(500))
        .await
        .is_err());
}
