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
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    engine: Arc<EngineCell>,
    prometheus: PrometheusHandle,
}

/// The router serving the three endpoints.
pub(crate) fn router(engine: Arc<EngineCell>, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(AppState { engine, prometheus })
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
