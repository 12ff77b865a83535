//! The platform's HTTP edge, the only crate that knows HTTP: the router, the handlers (each a
//! thin call of one control-plane operation, `suanwang-control`), authentication from headers and
//! cookies, errors as JSON with statuses, `/metrics`, the OpenAPI document, and the web
//! dashboard. Everything the platform decides is decided in `suanwang-control`.
//!
//! - [`api`]: the API's handlers.
//! - [`auth`]: the caller of a request (bearer token, or the dashboard's cookie with CSRF).
//! - [`error`]: `{"error":{"code","message","field"}}`, and the one map of error kinds to statuses.
//! - [`listen`]: the socket: a connection cap, header and idle timeouts, graceful drain.
//! - [`metrics`]: `GET /metrics` and the middleware that times requests by route.
//! - [`dashboard`]: the web dashboard at `/ui/` (pages from the control plane's operations,
//!   sign-in by cookie, zh-CN and English).
//!
//! Every route is listed in [`openapi`]'s document, which a snapshot test keeps in step.

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod listen;
pub mod metrics;
pub mod openapi;

use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use suanwang_control::Control;
use suanwang_control::error::Error;
use tokio::sync::watch;

use crate::error::ApiError;

/// Largest request body.
pub const BODY_MAX: usize = 1 << 20;

/// The API.
pub fn router(ctl: Control) -> Router {
    // Uploaded traces may be larger than other bodies.
    let simulations = post(api::run_simulation)
        .layer(DefaultBodyLimit::max(suanwang_control::sims::UPLOAD_BYTES_MAX))
        .get(api::list_simulations);
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/api/v1/jobs", post(api::submit).get(api::list_jobs))
        .route("/api/v1/job-arrays", post(api::submit_array))
        .route("/api/v1/jobs/{id}", get(api::show_job))
        .route("/api/v1/jobs/{id}/cancel", post(api::cancel_job))
        .route("/api/v1/jobs/{id}/logs", get(api::logs))
        .route("/api/v1/jobs/{id}/explain", get(api::explain))
        .route("/api/v1/tenants", post(api::create_tenant).get(api::list_tenants))
        .route("/api/v1/tokens", post(api::create_token).get(api::list_tokens))
        .route("/api/v1/tokens/{id}/revoke", post(api::revoke_token))
        .route("/api/v1/tenants/{id}/quotas", get(api::show_quotas).post(api::set_quotas))
        .route("/api/v1/pools", get(api::list_pools))
        .route("/api/v1/pools/{name}", get(api::show_pool))
        .route("/api/v1/pools/{name}/drain", post(api::drain_pool))
        .route("/api/v1/pools/{name}/undrain", post(api::undrain_pool))
        .route("/api/v1/apps", get(api::list_apps))
        .route("/api/v1/apps/{name}", get(api::show_app))
        .route("/api/v1/datasets", post(api::register_dataset).get(api::list_datasets))
        .route("/api/v1/ledger/accounts", post(api::open_account))
        .route("/api/v1/ledger/accounts/{id}", get(api::show_account))
        .route("/api/v1/ledger/transfers", post(api::transfer))
        .route("/api/v1/ledger/trial-balance", get(api::trial_balance))
        .route("/api/v1/ledger/entries", get(api::entries))
        .route("/api/v1/tenants/{id}/balance", get(api::balance))
        .route("/api/v1/tenants/{id}/payments", post(api::payment))
        .route("/api/v1/pools/{name}/earnings", get(api::earnings))
        .route("/api/v1/pools/{name}/payouts", post(api::payout))
        .route("/api/v1/invoices", get(api::invoices))
        .route("/api/v1/invoices/{tenant}/{period}", get(api::invoice))
        .route("/api/v1/programs", post(api::load_program).get(api::list_programs))
        .route("/api/v1/programs/{id}", get(api::show_program))
        .route("/api/v1/programs/{id}/expire", post(api::expire_program))
        .route("/api/v1/programs/{id}/applications", post(api::apply))
        .route("/api/v1/programs/{id}/claims", post(api::claim))
        .route("/api/v1/applications", get(api::list_applications))
        .route("/api/v1/applications/{id}/decision", post(api::decide))
        .route("/api/v1/claims", get(api::list_claims))
        .route("/api/v1/claims/{id}", get(api::show_claim))
        .route("/api/v1/claims/{id}/redemptions", post(api::redeem))
        .route("/api/v1/market/prices", get(api::prices))
        .route("/api/v1/market/orders", post(api::place_order))
        .route("/api/v1/market/orders/{id}/cancel", post(api::cancel_order))
        .route("/api/v1/market/book", get(api::book))
        .route("/api/v1/market/auctions", post(api::run_auction).get(api::auctions))
        .route("/api/v1/market/contracts", get(api::contracts))
        .route("/api/v1/quotes", post(api::quote))
        .route("/api/v1/sites", get(api::list_sites))
        .route("/api/v1/links", get(api::list_links))
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/audit/verify", get(api::audit_verify))
        .route("/api/v1/audit/head", get(api::audit_head))
        .route("/api/v1/simulations", simulations)
        .route("/api/v1/simulations/{id}", get(api::show_simulation))
        .route("/api/v1/agent/heartbeat", post(api::heartbeat))
        .route("/api/v1/agent/work", get(api::work))
        .route("/api/v1/agent/jobs/{id}/state", post(api::report_state))
        .route("/api/v1/agent/jobs/{id}/logs", post(api::report_log))
        .route("/api/v1/agent/jobs/{id}/log-batches", post(api::report_logs))
        .route("/api/v1/agent/usage", post(api::report_usage))
        .merge(dashboard::routes())
        .fallback(dashboard::not_found)
        .layer(axum::middleware::map_response(json_path_errors))
        .layer(axum::middleware::from_fn(clean_uri))
        .layer(axum::middleware::from_fn_with_state(ctl.clone(), edge))
        .layer(DefaultBodyLimit::max(BODY_MAX))
        .layer(axum::middleware::from_fn_with_state(ctl.clone(), metrics::track))
        .with_state(ctl)
}

/// The longest URI answered (longer ones get 414 with the JSON error).
pub const URI_MAX: usize = 8 * 1024;

/// What every answer gets at the edge: the JSON error body where axum or a layer answered an
/// API path with an empty or plain-text error (405, 413, 414, …); `nosniff`, `X-Frame-Options`,
/// a referrer policy and, for pages, a content security policy; `Secure` cookies when the
/// server's public URL is https.
async fn edge(
    axum::extract::State(ctl): axum::extract::State<Control>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = if request.uri().to_string().len() > URI_MAX {
        let error = Error::new(
            suanwang_control::error::Kind::Invalid,
            "uri_too_long",
            format!("the URI is longer than {URI_MAX} bytes"),
        );
        let mut response = axum::response::IntoResponse::into_response(ApiError(error));
        *response.status_mut() = StatusCode::URI_TOO_LONG;
        response
    } else {
        next.run(request).await
    };
    let status = response.status();
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let html = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !json && !html && (status.is_client_error() || status.is_server_error()) {
        let (code, message) = match status {
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this path does not take that method"),
            StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the request body is larger than the limit"),
            StatusCode::URI_TOO_LONG => ("uri_too_long", "the URI is too long"),
            StatusCode::NOT_FOUND => ("not_found", "no such path"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send the body as JSON"),
            s if s.is_server_error() => ("internal", "the server failed; try again"),
            _ => ("bad_request", "the request is not valid"),
        };
        let kind = if status.is_server_error() {
            suanwang_control::error::Kind::Internal
        } else {
            suanwang_control::error::Kind::Invalid
        };
        let mut replaced = axum::response::IntoResponse::into_response(ApiError(Error::new(kind, code, message)));
        *replaced.status_mut() = status;
        for name in [header::ALLOW, header::RETRY_AFTER] {
            if let Some(value) = response.headers().get(&name) {
                replaced.headers_mut().insert(name, value.clone());
            }
        }
        response = replaced;
    }
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html")) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
    if ctl.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://")) {
        let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            let secure =
                cookie.to_str().map(|c| format!("{c}; Secure")).ok().and_then(|c| HeaderValue::from_str(&c).ok());
            headers.append(header::SET_COOKIE, secure.unwrap_or(cookie));
        }
    }
    response
}

/// Refuses a URI whose path or query carries an encoded control character (`%00`, …) before any
/// handler or store sees it (`suanwang_api::text`).
async fn clean_uri(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let uri = request.uri();
    let clean =
        suanwang_api::text::uri_is_clean(uri.path()) && uri.query().is_none_or(suanwang_api::text::uri_is_clean);
    if !clean {
        let field = if suanwang_api::text::uri_is_clean(uri.path()) { "query" } else { "path" };
        let error = Error::bad_text(field, &suanwang_api::text::TextError::Forbidden('\0'));
        let error = Error { message: format!("the {field} holds an encoded control character"), ..error };
        return axum::response::IntoResponse::into_response(ApiError(error));
    }
    next.run(request).await
}

/// axum answers a malformed path parameter (`/jobs/abc`) with plain text; make it our JSON error.
async fn json_path_errors(response: axum::response::Response) -> axum::response::Response {
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if plain && response.status() == StatusCode::BAD_REQUEST {
        return axum::response::IntoResponse::into_response(ApiError(Error::bad_request(
            "invalid_path",
            "a path parameter is not valid (ids are whole numbers)",
        )));
    }
    response
}

/// Serves until SIGTERM or Ctrl-C, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    ctl: Control,
    listen: SocketAddr,
    limits: listen::Limits,
    shutdown: watch::Sender<bool>,
) -> Result<(), String> {
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let signal = async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        tracing::info!("shutting down: finishing requests in flight");
        let _ = shutdown.send(true);
    };
    listen::serve(listener, router(ctl), limits, signal).await;
    Ok(())
}
