//! `GET /metrics` and the middleware that counts and times every request by its route's
//! template (`/api/v1/jobs/{id}`, never a raw path, so the number of series stays bounded). The
//! figures themselves are the control plane's (`suanwang_control::metrics`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use suanwang_control::Control;

use crate::error::ApiError;

/// Middleware: counts and times every request by its route's template.
pub async fn track(State(ctl): State<Control>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    ctl.metrics.observe(&method, &route, status, elapsed.as_secs_f64());
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(target: "suanwang::http", %method, %route, status, micros, "request");
    response
}

/// `GET /metrics`.
pub async fn render(State(ctl): State<Control>) -> Result<Response, ApiError> {
    let body = suanwang_control::metrics::render(&ctl).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
        .into_response())
}
