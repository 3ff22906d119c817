//! The admin routes: `POST /admin/peers/{id}/pause`, `.../resume` and `.../repair`.
//!
//! They share the HTTP listener with the read-only routes but answer only clients on a
//! loopback address unless `[admin] allow_remote` is set (which needs a token), and, when a
//! token is configured, only requests that carry it as `Authorization: Bearer <token>`.

use crate::admin_token;
use crate::engine_cell::{Control, EngineCell};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use replication_engine::{ControlError, SyncEngineRef};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// Who may use the admin routes.
#[derive(Clone, Debug)]
pub(crate) struct AdminAccess {
    /// Accept clients that are not on loopback.
    pub(crate) allow_remote: bool,
    /// The token requests must carry, if any.
    pub(crate) token: Option<String>,
}

struct AdminState<S: SyncEngineRef> {
    engine: Arc<EngineCell<S>>,
    access: Arc<AdminAccess>,
}

// Not derived: the derive would ask for `S: Clone`, and only the `Arc`s are cloned.
impl<S: SyncEngineRef> Clone for AdminState<S> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            access: self.access.clone(),
        }
    }
}

/// What a control request did, as JSON.
#[derive(Debug, Serialize)]
struct ControlReply<'a> {
    peer: &'a str,
    action: &'static str,
    /// False when the peer already was in the asked-for state.
    changed: bool,
}

/// A refusal, as JSON.
#[derive(Debug, Serialize)]
struct ErrorReply {
    error: String,
}

/// The admin routes, to be merged into the main router.
pub(crate) fn routes<S: SyncEngineRef>(engine: Arc<EngineCell<S>>, access: AdminAccess) -> Router {
    Router::new()
        .route("/admin/peers/{peer}/pause", post(pause::<S>))
        .route("/admin/peers/{peer}/resume", post(resume::<S>))
        .route("/admin/peers/{peer}/repair", post(repair::<S>))
        .with_state(AdminState {
            engine,
            access: Arc::new(access),
        })
}

async fn pause<S: SyncEngineRef>(
    state: State<AdminState<S>>,
    client: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    peer: Path<String>,
) -> Response {
    control(state, client, headers, peer, Control::Pause).await
}

async fn resume<S: SyncEngineRef>(
    state: State<AdminState<S>>,
    client: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    peer: Path<String>,
) -> Response {
    control(state, client, headers, peer, Control::Resume).await
}

async fn repair<S: SyncEngineRef>(
    state: State<AdminState<S>>,
    client: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    peer: Path<String>,
) -> Response {
    control(state, client, headers, peer, Control::Repair).await
}

async fn control<S: SyncEngineRef>(
    State(state): State<AdminState<S>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(peer): Path<String>,
    control: Control,
) -> Response {
    if let Err(refusal) = authorize(&state.access, client, &headers) {
        return refusal.into_response();
    }
    let action = match control {
        Control::Pause => "pause",
        Control::Resume => "resume",
        Control::Repair => "repair",
    };
    match state.engine.control(&peer, control).await {
        Ok(changed) => {
            let status = if control == Control::Repair {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            tracing::info!(%peer, action, changed, %client, "admin request");
            let reply = ControlReply {
                peer: &peer,
                action,
                changed,
            };
            (status, Json(reply)).into_response()
        }
        Err(e) => {
            let status = match e {
                ControlError::UnknownPeer { .. } => StatusCode::NOT_FOUND,
                ControlError::PeerDisabled { .. } | ControlError::PeerPaused { .. } => {
                    StatusCode::CONFLICT
                }
            };
            refuse(status, e.to_string())
        }
    }
}

/// Why an admin request was turned away before it reached the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    NotLoopback,
    NoToken,
    WrongToken,
}

impl Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotLoopback => refuse(
                StatusCode::FORBIDDEN,
                "admin requests are accepted from loopback only ([admin] allow_remote = false)"
                    .into(),
            ),
            Refusal::NoToken => unauthorized("this daemon requires an admin token"),
            Refusal::WrongToken => unauthorized("the admin token is wrong"),
        }
    }
}

/// Checks where the request comes from and the token it carries.
fn authorize(access: &AdminAccess, client: SocketAddr, headers: &HeaderMap) -> Result<(), Refusal> {
    if !access.allow_remote && !client.ip().is_loopback() {
        tracing::warn!(%client, "admin request from a non-loopback address refused");
        return Err(Refusal::NotLoopback);
    }
    let Some(expected) = &access.token else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if admin_token::matches(expected, token.trim()) => Ok(()),
        Some(_) => {
            tracing::warn!(%client, "admin request with a wrong token refused");
            Err(Refusal::WrongToken)
        }
        None => Err(Refusal::NoToken),
    }
}

fn unauthorized(why: &str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, why.to_owned());
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

fn refuse(status: StatusCode, error: String) -> Response {
    (status, Json(ErrorReply { error })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allow_remote: bool, token: Option<&str>) -> AdminAccess {
        AdminAccess {
            allow_remote,
            token: token.map(str::to_owned),
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Bearer {token}");
        headers.insert(
            header::AUTHORIZATION,
            value.parse().expect("a valid header value"),
        );
        headers
    }

    #[test]
    fn only_loopback_clients_unless_remote_access_is_allowed() {
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("address");
        let local6: SocketAddr = "[::1]:5000".parse().expect("address");
        let remote: SocketAddr = "192.0.2.7:5000".parse().expect("address");
        let none = HeaderMap::new();
        assert_eq!(authorize(&access(false, None), local, &none), Ok(()));
        assert_eq!(authorize(&access(false, None), local6, &none), Ok(()));
        assert_eq!(
            authorize(&access(false, None), remote, &none),
            Err(Refusal::NotLoopback)
        );
        assert_eq!(
            authorize(&access(true, Some("t")), remote, &bearer("t")),
            Ok(())
        );
    }

    #[test]
    fn a_configured_token_must_be_presented_exactly() {
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("address");
        let guarded = access(false, Some("s3cret"));
        assert_eq!(
            authorize(&guarded, local, &HeaderMap::new()),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            authorize(&guarded, local, &bearer("guess")),
            Err(Refusal::WrongToken)
        );
        assert_eq!(authorize(&guarded, local, &bearer("s3cret")), Ok(()));
    }
}
