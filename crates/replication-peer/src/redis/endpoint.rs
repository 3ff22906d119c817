//! Turns a peer's `redis_url` and TLS settings into fred connection settings.
//!
//! The URL is parsed here rather than by fred so that every error we produce is ours and
//! redacted: the password never appears in a message, not even for a malformed URL.

use fred::types::config::{Config, ServerConfig, TlsConfig};
use replication_core::config::redact_url;
use replication_core::{PeerConfig, PeerTlsConfig};
use replication_redis::percent_decode;
use std::path::Path;
use std::sync::Arc;

/// Where and how to connect, with the secret kept out of `Debug`.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) database: Option<u8>,
    pub(crate) tls: Option<TlsConfig>,
    /// The URL with the password masked, for logs and errors.
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
    /// Parses `redis://` / `rediss://` URLs with optional `user:password@` and `/db`.
    pub(crate) fn parse(peer: &PeerConfig) -> Result<Self, String> {
        let redacted = redact_url(&peer.redis_url);
        let url =
            url::Url::parse(&peer.redis_url).map_err(|e| format!("redis_url {redacted}: {e}"))?;
        let tls = match url.scheme() {
            "redis" => {
                if peer.tls.is_some() {
                    return Err(format!(
                        "redis_url {redacted}: TLS settings need a rediss:// URL"
                    ));
                }
                false
            }
            "rediss" => true,
            other => {
                return Err(format!(
                    "redis_url {redacted}: scheme {other:?} is not redis or rediss"
                ))
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(format!("redis_url {redacted}: no host")),
        };
        let port = url.port().unwrap_or(6379);
        let username = match url.username() {
            "" => None,
            user => Some(
                percent_decode(user)
                    .ok_or_else(|| format!("redis_url {redacted}: bad user encoding"))?,
            ),
        };
        let password = match url.password() {
            None => None,
            Some(p) => Some(
                percent_decode(p)
                    .ok_or_else(|| format!("redis_url {redacted}: bad password encoding"))?,
            ),
        };
        let database = match url.path().trim_start_matches('/') {
            "" => None,
            db => Some(
                db.parse::<u8>()
                    .map_err(|_| format!("redis_url {redacted}: database {db:?} is not 0-255"))?,
            ),
        };
        let tls = if tls {
            Some(tls_config(peer.tls.as_ref()).map_err(|e| format!("tls: {e}"))?)
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            username,
            password,
            database,
            tls,
            redacted,
        })
    }

    /// The fred client configuration (reconnect and timeouts are set by the caller).
    pub(crate) fn fred_config(&self) -> Config {
        Config {
            // Keep retrying the first connection in the background instead of failing:
            // an unreachable peer must not block engine start.
            fail_fast: false,
            username: self.username.clone(),
            password: self.password.clone(),
            server: ServerConfig::new_centralized(self.host.clone(), self.port),
            database: self.database,
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
    fn parses_all_url_forms() {
        let e = parse("redis://127.0.0.1:7000").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.database),
            ("127.0.0.1", 7000, None)
        );
        assert!(e.username.is_none() && e.password.is_none() && e.tls.is_none());
        let e = parse("redis://alice:s%40cret@h/3").unwrap();
        assert_eq!(
            (
                e.username.as_deref(),
                e.password.as_deref(),
                e.port,
                e.database
            ),
            (Some("alice"), Some("s@cret"), 6379, Some(3))
        );
        let e = parse("redis://:only-pass@h:1").unwrap();
        assert_eq!(
            (e.username, e.password.as_deref()),
            (None, Some("only-pass"))
        );
        let e = parse("rediss://h:6380").unwrap();
        assert!(e.tls.is_some());
        let e = parse("redis://[::1]:6379").unwrap();
        assert_eq!(e.host, "::1");
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
        let e = parse("redis://u:hunter2@h:1/2").unwrap();
        assert!(!format!("{e:?}").contains("hunter2"));
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
    }
}
