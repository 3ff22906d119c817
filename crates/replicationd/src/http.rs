//! The HTTP endpoint: `/health` (JSON), `/ready` (200/503) and `/metrics` (Prometheus text).
//!
//! Handlers read the engine's cached health only; a slow or dead peer never slows them.

use crate::engine_cell::EngineCell;
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

/// The router serving the three endpoints.
pub(crate) fn router<S: SyncEngineRef>(
    engine: Arc<EngineCell<S>>,
    prometheus: PrometheusHandle,
) -> Router {
    Router::new()
        .route("/health", get(health::<S>))
        .route("/ready", get(ready::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(AppState { engine, prometheus })
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
