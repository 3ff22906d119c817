//! Turns a peer's `redis_url` and TLS settings into fred connection settings: one server,
//! a primary found through Sentinel, or a Redis Cluster (see `replication_core::RedisUrl`).
//!
//! The URL is parsed by core rather than by fred so that every error we produce is ours and
//! redacted: no password appears in a message, not even for a malformed URL.

use fred::types::config::{ClusterDiscoveryPolicy, Config, Server, ServerConfig, TlsConfig};
use replication_core::config::redact_url;
use replication_core::{PeerConfig, PeerTlsConfig, RedisTopology, RedisUrl};
use std::path::Path;
use std::sync::Arc;

/// Where and how to connect, with the secrets kept out of `Debug`.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) url: RedisUrl,
    pub(crate) tls: Option<TlsConfig>,
    /// The URL with the passwords masked, for logs and errors.
    pub(crate) redacted: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.redacted)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Endpoint {
    /// Parses the peer's URL (any form `RedisUrl` accepts) and loads its TLS files.
    pub(crate) fn parse(peer: &PeerConfig) -> Result<Self, String> {
        let redacted = redact_url(&peer.redis_url);
        let url =
            RedisUrl::parse(&peer.redis_url).map_err(|e| format!("redis_url {redacted}: {e}"))?;
        if peer.tls.is_some() && !url.tls {
            return Err(format!(
                "redis_url {redacted}: TLS settings need a rediss:// (or rediss-sentinel://, rediss-cluster://) URL"
            ));
        }
        let tls = if url.tls {
            Some(tls_config(peer.tls.as_ref()).map_err(|e| format!("tls: {e}"))?)
        } else {
            None
        };
        Ok(Self { url, tls, redacted })
    }

    /// The data servers' password, the one secret fred could echo in an error.
    pub(crate) fn password(&self) -> Option<&str> {
        self.url.password.as_deref()
    }

    /// The fred client configuration (reconnect and timeouts are set by the caller).
    pub(crate) fn fred_config(&self) -> Config {
        let hosts = |list: &[(String, u16)]| -> Vec<Server> {
            list.iter()
                .map(|(host, port)| Server::new(host.as_str(), *port))
                .collect()
        };
        let server = match &self.url.topology {
            RedisTopology::Standalone { host, port } => {
                ServerConfig::new_centralized(host.clone(), *port)
            }
            RedisTopology::Sentinel {
                sentinels,
                service_name,
                username,
                password,
            } => ServerConfig::Sentinel {
                hosts: hosts(sentinels),
                service_name: service_name.clone(),
                username: username.clone(),
                password: password.clone(),
            },
            RedisTopology::Cluster { nodes } => ServerConfig::Clustered {
                hosts: hosts(nodes),
                policy: ClusterDiscoveryPolicy::default(),
            },
        };
        Config {
            // Keep retrying the first connection in the background instead of failing:
            // an unreachable peer must not block engine start.
            fail_fast: false,
            username: self.url.username.clone(),
            password: self.url.password.clone(),
            server,
            database: self.url.database,
            tls: self.tls.clone(),
            ..Config::default()
        }
    }
}

/// A rustls client config: the CA file (or system roots) and an optional client certificate.
fn tls_config(settings: Option<&PeerTlsConfig>) -> Result<TlsConfig, String> {
    use fred::rustls::pki_types::pem::PemObject;
    use fred::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use fred::rustls::{ClientConfig, RootCertStore};

    let mut roots = RootCertStore::empty();
    match settings.and_then(|s| s.ca_file.as_deref()) {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| file_error(ca, e))? {
                roots
                    .add(cert.map_err(|e| file_error(ca, e))?)
                    .map_err(|e| file_error(ca, e))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificates found", ca.display()));
            }
        }
        None => {
            let native = fred::rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A system store may hold certificates rustls cannot parse; skip those.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(fred::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match settings.map(|s| (&s.cert_file, &s.key_file)) {
        Some((Some(cert), Some(key))) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| file_error(cert, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_error(cert, e))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| e.to_string())?
        }
        Some((None, None)) | None => builder.with_no_client_auth(),
        Some(_) => return Err("cert_file and key_file go together".into()),
    };
    Ok(TlsConfig::from(config))
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Endpoint, String> {
        Endpoint::parse(&PeerConfig::new("b", url))
    }

    #[test]
    fn each_url_form_makes_its_server_config() {
        let e = parse("redis://alice:s%40cret@127.0.0.1:7000/3").unwrap();
        let config = e.fred_config();
        assert_eq!(
            config.server,
            ServerConfig::new_centralized("127.0.0.1", 7000)
        );
        assert_eq!(
            (
                config.username.as_deref(),
                config.password.as_deref(),
                config.database
            ),
            (Some("alice"), Some("s@cret"), Some(3))
        );
        assert!(e.tls.is_none());
        assert!(parse("rediss://h:6380").unwrap().tls.is_some());
        let e = parse(
            "redis-sentinel://:pw@s1:26379?sentinelServiceName=m&node=s2:26380&sentinelPassword=spw",
        )
        .unwrap();
        match e.fred_config().server {
            ServerConfig::Sentinel {
                hosts,
                service_name,
                password,
                ..
            } => {
                assert_eq!(
                    hosts,
                    vec![Server::new("s1", 26379), Server::new("s2", 26380)]
                );
                assert_eq!(service_name, "m");
                assert_eq!(password.as_deref(), Some("spw"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.password(), Some("pw"));
        let e = parse("redis-cluster://h1:7000?node=h2:7001").unwrap();
        assert!(e.fred_config().server.is_clustered());
        assert_eq!(e.fred_config().database, None);
    }

    #[test]
    fn errors_never_show_the_password() {
        for bad in [
            "http://u:hunter2@h",
            "redis://u:hunter2@h/999",
            "redis://u:hunter2@h/x",
            "redis://u:hunter2@[::1",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("hunter2"), "{err}");
        }
        let e = parse(
            "redis-sentinel://u:hunter2@h:1/2?sentinelServiceName=m&sentinelPassword=hunter2",
        )
        .unwrap();
        assert!(!format!("{e:?}").contains("hunter2"));
        let err = parse("redis-sentinel://u:hunter2@h:1?sentinelPassword=hunter2").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn tls_files_are_checked() {
        let mut peer = PeerConfig::new("b", "rediss://h:1");
        peer.tls = Some(PeerTlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        });
        assert!(Endpoint::parse(&peer)
            .unwrap_err()
            .contains("/nonexistent/ca.pem"));
        let mut plain = PeerConfig::new("b", "redis://h:1");
        plain.tls = Some(PeerTlsConfig::default());
        assert!(Endpoint::parse(&plain).is_err());
        let mut cluster = PeerConfig::new("b", "rediss-cluster://h:1");
        cluster.tls = Some(PeerTlsConfig::default());
        assert!(Endpoint::parse(&cluster).is_ok());
    }
}
