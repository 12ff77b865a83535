//! The API's handlers: each reads the request (path, query, body, the caller), calls one
//! operation of the control plane, and writes its answer as JSON. Nothing else happens here.

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use suanwang_api::admin::{
    AuditQuery, AuditVerdict, AuditView, Health, LinkView, NewTenant, NewToken, PoolView, SiteView, TenantView,
    TokenView,
};
use suanwang_api::agent::{
    Ack, Heartbeat, LogBatch, LogChunk, StateReport, UsageRecorded, UsageReport, Work, WorkQuery,
};
use suanwang_api::apps::{DatasetView, NewDataset};
use suanwang_api::jobs::{Explanation, JobDetail, JobPage, JobView, ListQuery, LogPage, LogQuery};
use suanwang_api::ledger::{AccountView, NewAccount, NewTransfer, TransferApplied, TrialBalance};
use suanwang_api::market::{AuctionSummary, BookView, OrderBody, Prices, Quote, QuoteRequest};
use suanwang_api::money::{
    BalanceView, DecisionBody, EarningsView, EntriesPage, EntriesQuery, InvoiceQuery, InvoiceSummary, InvoiceView,
    Movement, NewApplication, NewClaim, NewRedemption, ProgramQuery, ProgramView, RedemptionView,
};
use suanwang_billing::Program;
use suanwang_billing::books::{Application, Claim};
use suanwang_billing::market::{AuctionRecord, BookOrder, MarketContract};
use suanwang_control::sims::{NewRun, RunView};
use suanwang_control::{Control, admin, agents, apps, books, jobs, market, money, sims};
use suanwang_formats::apps::App;

use crate::auth::Auth;
use crate::error::ApiError;

type Answer<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

/// A JSON body whose rejections become API errors.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<serde_json::Value>::from_request(request, state).await.map_err(ApiError::from)?;
        if !value.is_object() {
            let error = suanwang_control::error::Error::bad_request("invalid_body", "the body must be a JSON object");
            return Err(error.into());
        }
        if let Some((field, c)) = suanwang_api::text::first_bad_string(&value) {
            let error = suanwang_control::error::Error::bad_text(&field, &suanwang_api::text::TextError::Forbidden(c));
            return Err(error.into());
        }
        serde_path_to_error::deserialize(value).map(Body).map_err(|e| {
            let path = e.path().to_string();
            let message = if path == "." {
                format!("the body is not valid: {}", e.inner())
            } else {
                format!("the body is not valid: {path}: {}", e.inner())
            };
            let error = suanwang_control::error::Error::bad_request("invalid_body", message.clone());
            match jobs::field_of(&message) {
                Some(field) => error.at(field),
                None => error,
            }
            .into()
        })
    }
}

/// A query string whose rejections become API errors.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(v)| Q(v)).map_err(ApiError::from)
    }
}

fn created<T>(value: T, new: bool) -> Created<T> {
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(value)))
}

/// The `Idempotency-Key` header, if any.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => value.to_str().map(|k| Some(k.to_owned())).map_err(|_| {
            suanwang_control::error::Error::bad_request("invalid_idempotency_key", "the Idempotency-Key must be ASCII")
                .into()
        }),
    }
}

/// `GET /healthz`: liveness, and whether this server schedules.
pub async fn healthz(State(ctl): State<Control>) -> Json<Health> {
    let scheduler = if ctl.is_leader() { "leader" } else { "standby" };
    Json(Health { status: "ok".to_owned(), scheduler: scheduler.to_owned() })
}

/// `POST /api/v1/jobs`.
pub async fn submit(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(body): Body<serde_json::Value>,
) -> Created<JobView> {
    let key = idempotency_key(&headers)?;
    let submission = jobs::parse_submission(body)?;
    let (view, new) = jobs::submit(&ctl, &caller, submission, key).await?;
    created(view, new)
}

/// `POST /api/v1/job-arrays`.
pub async fn submit_array(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(body): Body<suanwang_api::jobs::JobArrayRequest>,
) -> Created<suanwang_api::jobs::JobArrayView> {
    let key = idempotency_key(&headers)?;
    let (view, new) = jobs::submit_array(&ctl, &caller, body, key).await?;
    created(view, new)
}

/// `GET /api/v1/jobs`.
pub async fn list_jobs(State(ctl): State<Control>, Auth(caller): Auth, Q(query): Q<ListQuery>) -> Answer<JobPage> {
    Ok(Json(jobs::list(&ctl, &caller, &query).await?))
}

/// `GET /api/v1/jobs/{id}`.
pub async fn show_job(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<i64>) -> Answer<JobDetail> {
    Ok(Json(jobs::show(&ctl, &caller, id).await?))
}

/// `POST /api/v1/jobs/{id}/cancel`.
pub async fn cancel_job(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<i64>) -> Answer<JobView> {
    Ok(Json(jobs::cancel(&ctl, &caller, id).await?))
}

/// `GET /api/v1/jobs/{id}/logs`.
pub async fn logs(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
    Q(query): Q<LogQuery>,
) -> Answer<LogPage> {
    Ok(Json(jobs::logs(&ctl, &caller, id, &query).await?))
}

/// `GET /api/v1/jobs/{id}/explain`.
pub async fn explain(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<i64>) -> Answer<Explanation> {
    Ok(Json(jobs::explain(&ctl, &caller, id).await?))
}

/// `POST /api/v1/tenants`.
pub async fn create_tenant(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Body(b): Body<NewTenant>,
) -> Created<TenantView> {
    created(admin::create_tenant(&ctl, &caller, b).await?, true)
}

/// `GET /api/v1/tenants`.
pub async fn list_tenants(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<TenantView>> {
    Ok(Json(admin::list_tenants(&ctl, &caller).await?))
}

/// `POST /api/v1/tokens`.
pub async fn create_token(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Body(b): Body<NewToken>,
) -> Created<TokenView> {
    created(admin::create_token(&ctl, &caller, b).await?, true)
}

/// `GET /api/v1/tokens`: every token, never the secret (operators, auditors).
pub async fn list_tokens(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Q(q): Q<suanwang_api::admin::TokenQuery>,
) -> Answer<suanwang_api::admin::TokenPage> {
    Ok(Json(admin::list_tokens(&ctl, &caller, q.after).await?))
}

/// `POST /api/v1/tokens/{id}/revoke` (operators).
pub async fn revoke_token(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
) -> Answer<suanwang_api::admin::TokenInfo> {
    Ok(Json(admin::revoke_token(&ctl, &caller, id).await?))
}

/// `GET /api/v1/tenants/{id}/quotas`.
pub async fn show_quotas(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
) -> Answer<suanwang_api::admin::Quotas> {
    Ok(Json(suanwang_control::quota::show(&ctl, &caller, suanwang_model::platform::TenantId(id)).await?))
}

/// `POST /api/v1/tenants/{id}/quotas` (operators): fields left out keep their value.
pub async fn set_quotas(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
    Body(b): Body<suanwang_api::admin::QuotaChange>,
) -> Answer<suanwang_api::admin::Quotas> {
    Ok(Json(suanwang_control::quota::set(&ctl, &caller, suanwang_model::platform::TenantId(id), b).await?))
}

/// `GET /api/v1/audit/head`: the newest entry's sequence number and hash.
pub async fn audit_head(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<suanwang_api::admin::AuditHead> {
    Ok(Json(admin::audit_head(&ctl, &caller).await?))
}

/// `GET /api/v1/pools`.
pub async fn list_pools(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<PoolView>> {
    Ok(Json(admin::list_pools(&ctl, &caller).await?))
}

/// `GET /api/v1/pools/{name}`.
pub async fn show_pool(State(ctl): State<Control>, Auth(caller): Auth, Path(name): Path<String>) -> Answer<PoolView> {
    Ok(Json(admin::show_pool(&ctl, &caller, &name).await?))
}

/// `POST /api/v1/pools/{name}/drain`.
pub async fn drain_pool(State(ctl): State<Control>, Auth(caller): Auth, Path(name): Path<String>) -> Answer<PoolView> {
    Ok(Json(admin::set_drained(&ctl, &caller, &name, true).await?))
}

/// `POST /api/v1/pools/{name}/undrain`.
pub async fn undrain_pool(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Answer<PoolView> {
    Ok(Json(admin::set_drained(&ctl, &caller, &name, false).await?))
}

/// `GET /api/v1/sites`.
pub async fn list_sites(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<SiteView>> {
    Ok(Json(admin::list_sites(&ctl, &caller)?))
}

/// `GET /api/v1/links`.
pub async fn list_links(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<LinkView>> {
    Ok(Json(admin::list_links(&ctl, &caller)?))
}

/// `GET /api/v1/audit`.
pub async fn audit(State(ctl): State<Control>, Auth(caller): Auth, Q(query): Q<AuditQuery>) -> Answer<Vec<AuditView>> {
    Ok(Json(admin::audit(&ctl, &caller, &query).await?))
}

/// `GET /api/v1/audit/verify`.
pub async fn audit_verify(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<AuditVerdict> {
    Ok(Json(admin::audit_verify(&ctl, &caller).await?))
}

/// `GET /api/v1/apps`.
pub async fn list_apps(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<App>> {
    Ok(Json(apps::list_apps(&ctl, &caller)?))
}

/// `GET /api/v1/apps/{name}`.
pub async fn show_app(State(ctl): State<Control>, Auth(caller): Auth, Path(name): Path<String>) -> Answer<App> {
    Ok(Json(apps::show_app(&ctl, &caller, &name)?))
}

/// `POST /api/v1/datasets`.
pub async fn register_dataset(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Body(b): Body<NewDataset>,
) -> Created<DatasetView> {
    created(apps::register_dataset(&ctl, &caller, b).await?, true)
}

/// `GET /api/v1/datasets`.
pub async fn list_datasets(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<DatasetView>> {
    Ok(Json(apps::list_datasets(&ctl, &caller).await?))
}

/// `POST /api/v1/ledger/accounts`.
pub async fn open_account(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Body(b): Body<NewAccount>,
) -> Created<AccountView> {
    let (view, new) = books::open_account(&ctl, &caller, b).await?;
    created(view, new)
}

/// `GET /api/v1/ledger/accounts/{id}`.
pub async fn show_account(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<u64>) -> Answer<AccountView> {
    Ok(Json(books::show_account(&ctl, &caller, id).await?))
}

/// `POST /api/v1/ledger/transfers`.
pub async fn transfer(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Body(b): Body<NewTransfer>,
) -> Answer<TransferApplied> {
    Ok(Json(books::transfer(&ctl, &caller, b).await?))
}

/// `GET /api/v1/ledger/trial-balance`.
pub async fn trial_balance(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<TrialBalance> {
    Ok(Json(books::trial_balance(&ctl, &caller).await?))
}

/// `GET /api/v1/ledger/entries`.
pub async fn entries(State(ctl): State<Control>, Auth(caller): Auth, Q(query): Q<EntriesQuery>) -> Answer<EntriesPage> {
    Ok(Json(books::entries(&ctl, &caller, &query).await?))
}

/// `GET /api/v1/tenants/{id}/balance`.
pub async fn balance(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<i64>) -> Answer<BalanceView> {
    Ok(Json(money::balance(&ctl, &caller, id).await?))
}

/// `POST /api/v1/tenants/{id}/payments`.
pub async fn payment(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
    Body(b): Body<Movement>,
) -> Answer<BalanceView> {
    Ok(Json(money::payment(&ctl, &caller, id, b).await?))
}

/// `GET /api/v1/pools/{name}/earnings`.
pub async fn earnings(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(pool): Path<String>,
) -> Answer<EarningsView> {
    Ok(Json(money::earnings(&ctl, &caller, &pool).await?))
}

/// `POST /api/v1/pools/{name}/payouts`.
pub async fn payout(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(pool): Path<String>,
    Body(b): Body<Movement>,
) -> Answer<EarningsView> {
    Ok(Json(money::payout(&ctl, &caller, &pool, b).await?))
}

/// `GET /api/v1/invoices`.
pub async fn invoices(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Q(query): Q<InvoiceQuery>,
) -> Answer<Vec<InvoiceSummary>> {
    Ok(Json(money::invoices(&ctl, &caller, query.tenant).await?))
}

/// `GET /api/v1/invoices/{tenant}/{period}`.
pub async fn invoice(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path((tenant, period)): Path<(i64, String)>,
) -> Answer<InvoiceView> {
    Ok(Json(money::invoice(&ctl, &caller, tenant, &period).await?))
}

/// `POST /api/v1/programs`.
pub async fn load_program(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Body(b): Body<Program>,
) -> Created<ProgramView> {
    let (view, new) = money::load_program(&ctl, &caller, b).await?;
    created(view, new)
}

/// `GET /api/v1/programs`.
pub async fn list_programs(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<ProgramView>> {
    Ok(Json(money::list_programs(&ctl, &caller).await?))
}

/// `GET /api/v1/programs/{id}`.
pub async fn show_program(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Answer<ProgramView> {
    Ok(Json(money::show_program(&ctl, &caller, &id).await?))
}

/// `POST /api/v1/programs/{id}/expire`.
pub async fn expire_program(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Answer<ProgramView> {
    Ok(Json(money::expire_program(&ctl, &caller, &id).await?))
}

/// `POST /api/v1/programs/{id}/applications`.
pub async fn apply(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(program): Path<String>,
    Body(b): Body<NewApplication>,
) -> Created<Application> {
    let (application, new) = money::apply(&ctl, &caller, &program, b).await?;
    created(application, new)
}

/// `GET /api/v1/applications`.
pub async fn list_applications(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Q(query): Q<ProgramQuery>,
) -> Answer<Vec<Application>> {
    Ok(Json(money::list_applications(&ctl, &caller, query.program.as_deref()).await?))
}

/// `POST /api/v1/applications/{id}/decision`.
pub async fn decide(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<u64>,
    Body(b): Body<DecisionBody>,
) -> Answer<Application> {
    Ok(Json(money::decide(&ctl, &caller, id, b).await?))
}

/// `POST /api/v1/programs/{id}/claims`.
pub async fn claim(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(program): Path<String>,
    Body(b): Body<NewClaim>,
) -> Created<Claim> {
    let (claim, new) = money::claim(&ctl, &caller, &program, b).await?;
    created(claim, new)
}

/// `GET /api/v1/claims`.
pub async fn list_claims(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Q(query): Q<ProgramQuery>,
) -> Answer<Vec<Claim>> {
    Ok(Json(money::list_claims(&ctl, &caller, query.program.as_deref()).await?))
}

/// `GET /api/v1/claims/{id}`.
pub async fn show_claim(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<u64>) -> Answer<Claim> {
    Ok(Json(money::show_claim(&ctl, &caller, id).await?))
}

/// `POST /api/v1/claims/{id}/redemptions`.
pub async fn redeem(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<u64>,
    Body(b): Body<NewRedemption>,
) -> Answer<RedemptionView> {
    Ok(Json(money::redeem(&ctl, &caller, id, b).await?))
}

/// `GET /api/v1/market/prices`.
pub async fn prices(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Prices> {
    Ok(Json(market::prices(&ctl, &caller).await?))
}

/// `POST /api/v1/market/orders`.
pub async fn place_order(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(b): Body<OrderBody>,
) -> Created<BookOrder> {
    let key = idempotency_key(&headers)?;
    let (order, new) = market::place_order(&ctl, &caller, key.as_deref(), b).await?;
    created(order, new)
}

/// `POST /api/v1/market/orders/{id}/cancel`.
pub async fn cancel_order(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<u64>) -> Answer<BookOrder> {
    Ok(Json(market::cancel_order(&ctl, &caller, id).await?))
}

/// `GET /api/v1/market/book`.
pub async fn book(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<BookView> {
    Ok(Json(market::book(&ctl, &caller).await?))
}

/// `POST /api/v1/market/auctions`.
pub async fn run_auction(State(ctl): State<Control>, Auth(caller): Auth) -> Created<AuctionRecord> {
    created(market::run_auction(&ctl, &caller).await?, true)
}

/// `GET /api/v1/market/auctions`.
pub async fn auctions(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<AuctionSummary>> {
    Ok(Json(market::auctions(&ctl, &caller).await?))
}

/// `GET /api/v1/market/contracts`.
pub async fn contracts(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<MarketContract>> {
    Ok(Json(market::contracts(&ctl, &caller).await?))
}

/// `POST /api/v1/quotes`.
pub async fn quote(State(ctl): State<Control>, Auth(caller): Auth, Body(b): Body<QuoteRequest>) -> Answer<Quote> {
    Ok(Json(market::quote(&ctl, &caller, b).await?))
}

/// `POST /api/v1/simulations`.
pub async fn run_simulation(State(ctl): State<Control>, Auth(caller): Auth, Body(b): Body<NewRun>) -> Created<RunView> {
    created(sims::run(&ctl, &caller, b).await?, true)
}

/// `GET /api/v1/simulations`.
pub async fn list_simulations(State(ctl): State<Control>, Auth(caller): Auth) -> Answer<Vec<RunView>> {
    Ok(Json(sims::list(&ctl, &caller)?))
}

/// `GET /api/v1/simulations/{id}`.
pub async fn show_simulation(State(ctl): State<Control>, Auth(caller): Auth, Path(id): Path<u64>) -> Answer<RunView> {
    Ok(Json(sims::show(&ctl, &caller, id)?))
}

/// `POST /api/v1/agent/heartbeat`.
pub async fn heartbeat(State(ctl): State<Control>, Auth(caller): Auth, Body(b): Body<Heartbeat>) -> Answer<Ack> {
    agents::heartbeat(&ctl, &caller, b).await?;
    Ok(Json(Ack { ok: true }))
}

/// `GET /api/v1/agent/work`.
pub async fn work(State(ctl): State<Control>, Auth(caller): Auth, Query(q): Query<WorkQuery>) -> Answer<Work> {
    Ok(Json(agents::work(&ctl, &caller, q).await?))
}

/// `POST /api/v1/agent/jobs/{id}/state`.
pub async fn report_state(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
    Body(b): Body<StateReport>,
) -> Answer<Ack> {
    agents::report_state(&ctl, &caller, id, b).await?;
    Ok(Json(Ack { ok: true }))
}

/// `POST /api/v1/agent/jobs/{id}/logs`.
pub async fn report_log(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
    Body(b): Body<LogChunk>,
) -> Answer<Ack> {
    agents::report_log(&ctl, &caller, id, b).await?;
    Ok(Json(Ack { ok: true }))
}

/// `POST /api/v1/agent/jobs/{id}/log-batches`.
pub async fn report_logs(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Path(id): Path<i64>,
    Body(b): Body<LogBatch>,
) -> Answer<Ack> {
    agents::report_logs(&ctl, &caller, id, b).await?;
    Ok(Json(Ack { ok: true }))
}

/// `POST /api/v1/agent/usage`.
pub async fn report_usage(
    State(ctl): State<Control>,
    Auth(caller): Auth,
    Body(b): Body<UsageReport>,
) -> Answer<UsageRecorded> {
    Ok(Json(UsageRecorded { recorded: agents::report_usage(&ctl, &caller, b).await? }))
}
