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
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    engine: Arc<EngineCell>,
    prometheus: PrometheusHandle,
}

/// The router serving every endpoint. Serve it with connection info (`SocketAddr`): the
/// admin routes look at the client's address.
pub(crate) fn router(
    engine: Arc<EngineCell>,
    prometheus: PrometheusHandle,
    admin: AdminAccess,
) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/status.css", get(css))
        .route("/assets/status.js", get(js))
        .route("/status.json", get(status_json))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(AppState {
            engine: engine.clone(),
            prometheus,
        })
        .merge(admin::routes(engine, admin))
}

async fn index(State(app): State<AppState>) -> Response {
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

async fn status_json(State(app): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(app.engine.report().await),
    )
        .into_response()
}

async fn health(State(app): State<AppState>) -> Response {
    let health = app.engine.health().await;
    let status = if health.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

async fn ready(State(app): State<AppState>) -> Response {
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

async fn metrics(State(app): State<AppState>) -> Response {
    app.engine.publish_gauges().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
        .into_response()
}
