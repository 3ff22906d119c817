//! The HTTP endpoint: the status page (`/`, its assets, `/status.json`), `/health` (JSON),
//! `/ready` (200/503), `/metrics` (Prometheus text) and the admin routes (`admin.rs`).
//!
//! Handlers read the engine's cached state only; a slow or dead peer never slows them.

use crate::admin::{self, AdminAccess};
use crate::engine_cell::EngineCell;
use crate::page;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use replication_engine::SyncEngineRef;
use std::sync::Arc;

struct AppState<S: SyncEngineRef> {
    engine: Arc<EngineCell<S>>,
    prometheus: PrometheusHandle,
}

// Not derived: the derive would ask for `S: Clone`, and only the `Arc` is cloned.
impl<S: SyncEngineRef> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            prometheus: self.prometheus.clone(),
        }
    }
}

/// The router serving every endpoint. Serve it with connection info (`SocketAddr`): the
/// admin routes look at the client's address.
pub(crate) fn router<S: SyncEngineRef>(
    engine: Arc<EngineCell<S>>,
    prometheus: PrometheusHandle,
    admin: AdminAccess,
) -> Router {
    Router::new()
        .route("/", get(index::<S>))
        .route("/assets/status.css", get(css))
        .route("/assets/status.js", get(js))
        .route("/status.json", get(status_json::<S>))
        .route("/health", get(health::<S>))
        .route("/ready", get(ready::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(AppState {
            engine: engine.clone(),
            prometheus,
        })
        .merge(admin::routes(engine, admin))
}

async fn index<S: SyncEngineRef>(State(app): State<AppState<S>>) -> Response {
    let report = app.engine.report().await;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                page::CONTENT_SECURITY_POLICY,
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page::render(&report),
    )
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        page::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        page::JS,
    )
        .into_response()
}

async fn status_json<S: SyncEngineRef>(State(app): State<AppState<S>>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(app.engine.report().await),
    )
        .into_response()
}

async fn health<S: SyncEngineRef>(State(app): State<AppState<S>>) -> Response {
    let health = app.engine.health().await;
    let status = if health.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

async fn ready<S: SyncEngineRef>(State(app): State<AppState<S>>) -> Response {
    let health = app.engine.health().await;
    if health.ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: engine {}\n", health.state),
        )
            .into_response()
    }
}

async fn metrics<S: SyncEngineRef>(State(app): State<AppState<S>>) -> Response {
    app.engine.publish_gauges().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
        .into_response()
}
