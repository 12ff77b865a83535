//! The control plane's HTTP API, the only crate that knows HTTP.
//!
//! - [`jobs`], [`admin`], [`agent_api`]: handlers; each is a thin wrapper over a function the
//!   in-process agents call too, so `serve --demo` exercises the same paths as remote agents.
//! - [`apps`]: applications (job templates) and registered data sets.
//! - [`auth`]: bearer tokens, stored hashed; roles.
//! - [`committer`]: group commit of durable writes.
//! - [`scheduler`]: the scheduler task (rebuilt from the store on start).
//! - [`error`]: `{"error":{"code","message"}}` with 4xx for the caller's mistakes.
//! - [`ledger`]: the books (ledger and money rules) as a per-server copy kept equal to the
//!   store's history, and the raw ledger API.
//! - [`money`]: the biller (usage into charges), balances, invoices, payments and payouts,
//!   voucher programmes, applications, claims and redemptions.
//! - [`market_api`]: posted and spot prices, orders, the book, call auctions, contracts, quotes.
//! - [`metrics`]: Prometheus metrics at `/metrics`, and the middleware that times requests.
//! - [`dashboard`]: the web dashboard at `/ui/` (pages from the handlers above, sign-in by
//!   cookie, zh-CN and English), and simulations for planning.
//!
//! Every route is listed in [`openapi`]'s document, which a snapshot test keeps in step.

pub mod admin;
pub mod agent_api;
pub mod apps;
pub mod auth;
pub mod committer;
pub mod dashboard;
pub mod error;
pub mod jobs;
pub mod ledger;
pub mod market_api;
pub mod metrics;
pub mod money;
pub mod openapi;
pub mod scheduler;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use suanwang_agent::backend::Backend;
use suanwang_agent::protocol::{Heartbeat, LogChunk, Platform, PlatformError, StateReport, UsageReport, Work};
use suanwang_agent::run::AgentConfig;
use suanwang_model::federation::Federation;
use suanwang_store::model::{Principal, Role, Write};
use suanwang_store::store::Store;
use tokio::sync::{mpsc, watch};

use crate::auth::{Caller, TokenCache, hash_token};
use crate::committer::Committer;
use crate::error::ApiError;
use crate::state::{AppState, Inner, ServerConfig, now_ms};

/// Largest request body.
pub const BODY_MAX: usize = 1 << 20;

/// The API.
pub fn router(state: AppState) -> Router {
    // Uploaded traces may be larger than other bodies.
    let simulations = post(dashboard::sim::run)
        .layer(DefaultBodyLimit::max(dashboard::sim::UPLOAD_BYTES_MAX))
        .get(dashboard::sim::list);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/api/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/api/v1/jobs/{id}", get(jobs::show))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/v1/jobs/{id}/logs", get(jobs::logs))
        .route("/api/v1/jobs/{id}/explain", get(jobs::explain))
        .route("/api/v1/tenants", post(admin::create_tenant).get(admin::list_tenants))
        .route("/api/v1/tokens", post(admin::create_token))
        .route("/api/v1/pools", get(admin::list_pools))
        .route("/api/v1/pools/{name}", get(admin::show_pool))
        .route("/api/v1/pools/{name}/drain", post(admin::drain_pool))
        .route("/api/v1/pools/{name}/undrain", post(admin::undrain_pool))
        .route("/api/v1/apps", get(apps::list_apps))
        .route("/api/v1/apps/{name}", get(apps::show_app))
        .route("/api/v1/datasets", post(apps::register_dataset).get(apps::list_datasets))
        .route("/api/v1/ledger/accounts", post(ledger::open_account))
        .route("/api/v1/ledger/accounts/{id}", get(ledger::show_account))
        .route("/api/v1/ledger/transfers", post(ledger::transfer))
        .route("/api/v1/ledger/trial-balance", get(ledger::trial_balance))
        .route("/api/v1/ledger/entries", get(money::entries))
        .route("/api/v1/tenants/{id}/balance", get(money::balance))
        .route("/api/v1/tenants/{id}/payments", post(money::payment))
        .route("/api/v1/pools/{name}/earnings", get(money::earnings))
        .route("/api/v1/pools/{name}/payouts", post(money::payout))
        .route("/api/v1/invoices", get(money::invoices))
        .route("/api/v1/invoices/{tenant}/{period}", get(money::invoice))
        .route("/api/v1/programs", post(money::load_program).get(money::list_programs))
        .route("/api/v1/programs/{id}", get(money::show_program))
        .route("/api/v1/programs/{id}/expire", post(money::expire_program))
        .route("/api/v1/programs/{id}/applications", post(money::apply))
        .route("/api/v1/programs/{id}/claims", post(money::claim))
        .route("/api/v1/applications", get(money::list_applications))
        .route("/api/v1/applications/{id}/decision", post(money::decide))
        .route("/api/v1/claims", get(money::list_claims))
        .route("/api/v1/claims/{id}", get(money::show_claim))
        .route("/api/v1/claims/{id}/redemptions", post(money::redeem))
        .route("/api/v1/market/prices", get(market_api::prices))
        .route("/api/v1/market/orders", post(market_api::place_order))
        .route("/api/v1/market/orders/{id}/cancel", post(market_api::cancel_order))
        .route("/api/v1/market/book", get(market_api::book))
        .route("/api/v1/market/auctions", post(market_api::run_auction).get(market_api::auctions))
        .route("/api/v1/market/contracts", get(market_api::contracts))
        .route("/api/v1/quotes", post(market_api::quote))
        .route("/api/v1/sites", get(admin::list_sites))
        .route("/api/v1/links", get(admin::list_links))
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/audit/verify", get(admin::audit_verify))
        .route("/api/v1/simulations", simulations)
        .route("/api/v1/simulations/{id}", get(dashboard::sim::show))
        .route("/api/v1/agent/heartbeat", post(agent_api::http_heartbeat))
        .route("/api/v1/agent/work", get(agent_api::http_work))
        .route("/api/v1/agent/jobs/{id}/state", post(agent_api::http_state))
        .route("/api/v1/agent/jobs/{id}/logs", post(agent_api::http_log))
        .route("/api/v1/agent/usage", post(agent_api::http_usage))
        .merge(dashboard::routes())
        .fallback(dashboard::not_found)
        .layer(axum::middleware::map_response(json_path_errors))
        .layer(DefaultBodyLimit::max(BODY_MAX))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Liveness, and whether this server schedules (`leader`) or only serves the API (`standby`).
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Json<serde_json::Value> {
    let role = if state.leader.load(std::sync::atomic::Ordering::Relaxed) { "leader" } else { "standby" };
    Json(serde_json::json!({"status": "ok", "scheduler": role}))
}

/// axum answers a malformed path parameter (`/jobs/abc`) with plain text; make it our JSON error.
async fn json_path_errors(response: axum::response::Response) -> axum::response::Response {
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if plain && response.status() == StatusCode::BAD_REQUEST {
        return axum::response::IntoResponse::into_response(ApiError::bad_request(
            "invalid_path",
            "a path parameter is not valid (ids are whole numbers)",
        ));
    }
    response
}

/// The shared state, with the committer and the scheduler task started.
pub fn start(store: Store, federation: Federation, config: ServerConfig) -> AppState {
    let committer = Committer::start(store.clone(), now_ms);
    let (scheduler, mailbox) = mpsc::channel(scheduler::MAILBOX_MAX);
    let state = AppState(Arc::new(Inner {
        store,
        committer,
        federation,
        tokens: TokenCache::default(),
        scheduler,
        config,
        leader: std::sync::atomic::AtomicBool::new(false),
        metrics: metrics::Metrics::new(),
        ledger: ledger::LedgerState::default(),
        biller: money::BillerState::default(),
        history: dashboard::history::History::default(),
        simulations: dashboard::sim::Simulations::default(),
        reported: std::sync::Mutex::default(),
    }));
    tokio::spawn(scheduler::run(state.clone(), mailbox));
    tokio::spawn(money::run_biller(state.clone()));
    tokio::spawn(market_api::run_auctions(state.clone()));
    tokio::spawn(dashboard::history::run(state.clone()));
    state
}

/// An in-process agent's view of the platform: the same functions the HTTP handlers call.
pub struct InProcess {
    state: AppState,
    caller: Caller,
}

impl InProcess {
    /// The platform as `pool`'s agent sees it.
    pub fn new(state: AppState, pool: &str) -> Self {
        let principal = Principal {
            token_id: 0,
            role: Role::Provider,
            tenant_id: None,
            pool: Some(pool.to_owned()),
            label: format!("in-process agent of {pool}"),
            expires_ms: None,
        };
        InProcess { state, caller: Caller { principal } }
    }
}

fn platform_error(e: ApiError) -> PlatformError {
    PlatformError { code: e.code.to_owned(), message: e.message }
}

impl Platform for InProcess {
    async fn heartbeat(&self, heartbeat: Heartbeat) -> Result<(), PlatformError> {
        agent_api::heartbeat(&self.state, &self.caller, heartbeat).await.map_err(platform_error)
    }

    async fn work(&self) -> Result<Work, PlatformError> {
        agent_api::work(&self.state, &self.caller).await.map_err(platform_error)
    }

    async fn report_state(&self, job_id: i64, report: StateReport) -> Result<(), PlatformError> {
        agent_api::report_state(&self.state, &self.caller, job_id, report).await.map_err(platform_error)
    }

    async fn report_log(&self, job_id: i64, chunk: LogChunk) -> Result<(), PlatformError> {
        agent_api::report_log(&self.state, &self.caller, job_id, chunk).await.map_err(platform_error)
    }

    async fn report_usage(&self, usage: UsageReport) -> Result<(), PlatformError> {
        agent_api::report_usage(&self.state, &self.caller, usage).await.map(|_| ()).map_err(platform_error)
    }
}

/// Starts an in-process agent for every pool in `agents`.
pub fn start_agents(state: &AppState, agents: &[(String, Backend)], shutdown: &watch::Receiver<bool>) {
    for (pool, backend) in agents {
        let platform = Arc::new(InProcess::new(state.clone(), pool));
        let config = AgentConfig { backend: *backend, poll: scheduler::IN_PROCESS_POLL };
        tokio::spawn(suanwang_agent::run::run(platform, config, shutdown.clone()));
    }
}

/// Creates the operator token `token` unless the platform already has tokens.
pub async fn bootstrap(store: &Store, committer: &Committer, token: &str) -> Result<bool, String> {
    if store.token_count().await.map_err(|e| e.to_string())? > 0 {
        return Ok(false);
    }
    let write = Write::CreateToken {
        hash: hash_token(token),
        role: Role::Operator,
        tenant_id: None,
        pool: None,
        label: "bootstrap operator".to_owned(),
        expires_ms: None,
    };
    committer.write("bootstrap", write).await.map_err(|e| format!("{e:?}"))?;
    Ok(true)
}

/// Serves until SIGTERM or Ctrl-C, then stops accepting and lets in-flight requests finish.
pub async fn serve(state: AppState, listen: SocketAddr, shutdown: watch::Sender<bool>) -> Result<(), String> {
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
    axum::serve(listener, router(state)).with_graceful_shutdown(signal).await.map_err(|e| e.to_string())
}
