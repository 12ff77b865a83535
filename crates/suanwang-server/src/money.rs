//! Money over HTTP: usage rated into charges (the biller), invoices, payments in and payouts,
//! voucher programmes with their applications, claims and redemptions, and the ledger's history
//! for auditors. The rules are `suanwang-billing`'s; this module resolves names (tenants, jobs,
//! pools) into the facts the rules need, checks who may do what, and maps refusals to HTTP.
//!
//! Who may do what:
//! - operators: everything; auditors: read everything.
//! - a tenant: its own balance, invoices, applications and claims; applies, claims and redeems.
//! - a programme administrator (a `program-admin` token scoped to one programme): reads and
//!   decides its programme's applications, redeems and expires its claims.
//! - a provider: its pool's earnings.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use suanwang_billing::books::{Application, Claim, ErrorKind, Line, ProgramReport};
use suanwang_billing::rating::is_period;
use suanwang_billing::{Books, Contract, LineKey, MoneyError, PoolFacts, Program, TenantFacts, Usage, chart};
use suanwang_store::model::{JobState, Role, UsageRecord};
use suanwang_store::store::{LEDGER_PAGE_MAX, Store};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::Body;
use crate::state::{AppState, now_ms};

/// Longest idempotency key of a payment or payout.
const KEY_MAX: usize = 128;

impl From<MoneyError> for ApiError {
    fn from(e: MoneyError) -> Self {
        let status = match e.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.code, e.message)
    }
}

/// A pool's facts for the money rules, and its list price per card-hour (the cheapest of its
/// accelerator models; pools in the shipped federations have one).
pub fn pool_facts(state: &AppState, name: &str) -> Option<(PoolFacts, u64)> {
    let federation = &state.federation;
    let (_, pool) = federation.pools().find(|(_, p)| p.name == name)?;
    let catalog = federation.catalog();
    let mut cards = 0u32;
    let mut domestic = false;
    let mut price: Option<i64> = None;
    for node in &pool.nodes {
        if let Some(model) = node.accelerator {
            cards += u32::from(node.accelerators);
            domestic |= catalog.get(model).domestic;
            if let Some(p) = pool.prices.card_hour_fen.get(&model) {
                price = Some(price.map_or(*p, |q| q.min(*p)));
            }
        }
    }
    let facts = PoolFacts {
        pool: pool.name.clone(),
        provider: pool.provider.clone(),
        city: federation.site(pool.site).city.clone(),
        cards,
        domestic,
    };
    Some((facts, u64::try_from(price.unwrap_or(0)).unwrap_or(0)))
}

// ------------------------------------------------------------------------------------ the biller

/// Where the biller has read the usage table up to (per server, in memory: after a start it reads
/// from the beginning again, and the books' idempotency makes that harmless).
#[derive(Default)]
pub struct BillerState {
    cursor: tokio::sync::Mutex<Option<(i64, String, String)>>,
}

/// Rates every usage event recorded since the last call into charges; returns how many were new.
/// The leader calls it every `billing_interval`; tests call it directly.
pub async fn bill(state: &AppState) -> Result<usize, ApiError> {
    let mut cursor = state.biller.cursor.lock().await;
    let mut rated = 0;
    loop {
        let page = state.store.usage_page(cursor.clone(), LEDGER_PAGE_MAX).await?;
        let Some(last) = page.last() else { break };
        let next = (last.at_ms, last.source.clone(), last.event_id.clone());
        let known: Vec<bool> = state
            .ledger
            .read(&state.store, |books| page.iter().map(|u| books.is_rated(&u.source, &u.event_id)).collect())
            .await?;
        let mut usages = Vec::new();
        for (u, known) in page.iter().zip(known) {
            if !known {
                usages.push(usage_of(state, &state.store, u).await?);
            }
        }
        if !usages.is_empty() {
            let fee = state.config.platform_fee_bps;
            let now = now_ms();
            let results = state
                .ledger
                .write(&state.store, "biller", move |books| {
                    usages.into_iter().map(|u| books.rate(u, fee, now).map(|(_, new)| new)).collect::<Vec<_>>()
                })
                .await?;
            for r in results {
                match r {
                    Ok(true) => rated += 1,
                    Ok(false) => {}
                    // The store refuses conflicting usage, so this is a bug worth a log line, not a
                    // stuck biller.
                    Err(e) => tracing::error!(code = e.code, error = %e.message, "usage could not be rated"),
                }
            }
        }
        *cursor = Some(next);
    }
    Ok(rated)
}

async fn usage_of(state: &AppState, store: &Store, u: &UsageRecord) -> Result<Usage, ApiError> {
    let job = store
        .job(u.job_id)
        .await?
        .ok_or_else(|| ApiError::unavailable(format!("usage for unknown job {}", u.job_id)))?;
    let (pool, mut price) = pool_facts(state, &u.pool).unwrap_or_else(|| {
        // A pool no longer in the federation: rate at 0 and keep the usage visible.
        (PoolFacts { pool: u.pool.clone(), provider: String::new(), city: String::new(), cards: 0, domestic: false }, 0)
    });
    // A job under a market contract is rated at the contract's price (on the contract's pool).
    let named: Option<String> = serde_json::from_str::<serde_json::Value>(&job.spec)
        .ok()
        .and_then(|spec| spec.get("contract").and_then(|c| c.as_str()).map(str::to_owned));
    let mut contract = format!("job:{}", u.job_id);
    if let Some(name) = named {
        let n: Option<u64> = name.strip_prefix("contract:").and_then(|n| n.parse().ok());
        let c = match n {
            Some(n) => state.ledger.read(&state.store, |books| books.contract(n).cloned()).await?,
            None => None,
        };
        if let Some(c) = c.filter(|c| c.pool == u.pool) {
            price = u64::try_from(c.price_fen_per_card_hour).unwrap_or(0);
            contract = name;
        }
    }
    Ok(Usage {
        source: u.source.clone(),
        event_id: u.event_id.clone(),
        job: u.job_id,
        tenant: job.tenant_id,
        pool,
        contract,
        card_ms: u64::try_from(u.accelerator_ms).unwrap_or(0),
        price_fen_per_card_hour: price,
        at_ms: u.at_ms,
    })
}

/// Ends the year of every programme whose year is over (the leader does it once a pass).
pub async fn expire_ended_programs(state: &AppState) -> Result<Vec<String>, ApiError> {
    let now = now_ms();
    let due: Vec<String> = state
        .ledger
        .read(&state.store, |books| {
            books
                .programs()
                .filter(|p| !p.expired && now >= suanwang_billing::rating::year_start_ms(p.program.fiscal_year + 1))
                .map(|p| p.program.id.clone())
                .collect()
        })
        .await?;
    for id in &due {
        let id = id.clone();
        state.ledger.write(&state.store, "biller", move |books| books.expire_program(&id, now)).await??;
    }
    Ok(due)
}

/// The biller task: while this server leads, rates new usage every `billing_interval` and ends
/// the year of programmes whose year is over.
pub async fn run_biller(state: AppState) {
    loop {
        tokio::time::sleep(state.config.billing_interval).await;
        if !state.leader.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = bill(&state).await {
            tracing::warn!(error = %e.message, "billing pass failed; the next one retries");
        }
        match expire_ended_programs(&state).await {
            Ok(ended) if !ended.is_empty() => tracing::info!(?ended, "programmes' years ended"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "cannot end programmes' years; the next pass retries"),
        }
    }
}

// ------------------------------------------------------------------------ balances and invoices

fn tenant_visible(caller: &Caller, tenant: i64) -> Result<(), ApiError> {
    let ok = caller.sees_everything() || (caller.role() == Role::Tenant && caller.principal.tenant_id == Some(tenant));
    if ok { Ok(()) } else { Err(ApiError::not_found(format!("tenant {tenant}"))) }
}

/// A tenant's money.
#[derive(Debug, Serialize)]
pub struct BalanceView {
    /// Tenant.
    pub tenant: i64,
    /// Paid in, plus subsidies, less charges (negative: owed).
    pub balance_fen: i128,
    /// Charged so far.
    pub charged_fen: u128,
    /// Paid in and subsidised so far.
    pub credited_fen: u128,
}

/// `GET /api/v1/tenants/{id}/balance` (the tenant, operators, auditors).
pub async fn balance(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<i64>,
) -> Result<Json<BalanceView>, ApiError> {
    tenant_visible(&caller, tenant)?;
    state.store.tenant(tenant).await?.ok_or_else(|| ApiError::not_found(format!("tenant {tenant}")))?;
    let view = state
        .ledger
        .read(&state.store, |books| {
            let a = books.ledger().account(chart::tenant_cash(tenant).id);
            BalanceView {
                tenant,
                balance_fen: a.map_or(0, |a| a.credit_balance_fen()),
                charged_fen: a.map_or(0, |a| a.debits_posted_fen),
                credited_fen: a.map_or(0, |a| a.credits_posted_fen),
            }
        })
        .await?;
    Ok(Json(view))
}

/// Money moved in or out, idempotent by `key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Movement {
    /// Amount.
    pub amount_fen: u64,
    /// The caller's key: the same key again is the same movement.
    pub key: String,
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > KEY_MAX {
        return Err(ApiError::bad_request("invalid_key", format!("key: 1–{KEY_MAX} characters")));
    }
    Ok(())
}

/// `POST /api/v1/tenants/{id}/payments` (operator): money a tenant paid in.
pub async fn payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<i64>,
    Body(body): Body<Movement>,
) -> Result<Json<BalanceView>, ApiError> {
    caller.require(&[Role::Operator])?;
    check_key(&body.key)?;
    state.store.tenant(tenant).await?.ok_or_else(|| ApiError::not_found(format!("tenant {tenant}")))?;
    let now = now_ms();
    state
        .ledger
        .write(&state.store, &caller.actor(), move |books| books.top_up(tenant, body.amount_fen, &body.key, now))
        .await??;
    balance(State(state), caller, Path(tenant)).await
}

/// What a pool's provider has earned.
#[derive(Debug, Serialize)]
pub struct EarningsView {
    /// Pool.
    pub pool: String,
    /// Earned (charges less the platform's fee).
    pub earned_fen: u128,
    /// Paid out.
    pub paid_out_fen: u128,
    /// Owed.
    pub owed_fen: i128,
    /// The platform's fee, basis points.
    pub platform_fee_bps: u32,
}

fn pool_visible(state: &AppState, caller: &Caller, pool: &str) -> Result<(), ApiError> {
    let known = state.federation.pools().any(|(_, p)| p.name == pool);
    let may =
        caller.sees_everything() || (caller.role() == Role::Provider && caller.principal.pool.as_deref() == Some(pool));
    if known && may { Ok(()) } else { Err(ApiError::not_found(format!("pool {pool:?}"))) }
}

/// `GET /api/v1/pools/{name}/earnings` (its provider, operators, auditors).
pub async fn earnings(
    State(state): State<AppState>,
    caller: Caller,
    Path(pool): Path<String>,
) -> Result<Json<EarningsView>, ApiError> {
    pool_visible(&state, &caller, &pool)?;
    let fee = state.config.platform_fee_bps;
    let view = state
        .ledger
        .read(&state.store, |books| {
            let a = books.ledger().account(chart::provider_payable(&pool).id);
            EarningsView {
                pool: pool.clone(),
                earned_fen: a.map_or(0, |a| a.credits_posted_fen),
                paid_out_fen: a.map_or(0, |a| a.debits_posted_fen),
                owed_fen: a.map_or(0, |a| a.credit_balance_fen()),
                platform_fee_bps: fee,
            }
        })
        .await?;
    Ok(Json(view))
}

/// `POST /api/v1/pools/{name}/payouts` (operator): pays a provider, at most what it is owed.
pub async fn payout(
    State(state): State<AppState>,
    caller: Caller,
    Path(pool): Path<String>,
    Body(body): Body<Movement>,
) -> Result<Json<EarningsView>, ApiError> {
    caller.require(&[Role::Operator])?;
    pool_visible(&state, &caller, &pool)?;
    check_key(&body.key)?;
    let now = now_ms();
    let name = pool.clone();
    state
        .ledger
        .write(&state.store, &caller.actor(), move |books| books.payout(&name, body.amount_fen, &body.key, now))
        .await??;
    earnings(State(state), caller, Path(pool)).await
}

/// An invoice's summary.
#[derive(Debug, Serialize)]
pub struct InvoiceSummary {
    /// Tenant.
    pub tenant: i64,
    /// `YYYY-MM` (China Standard Time).
    pub period: String,
    /// Charged.
    pub amount_fen: u64,
    /// Subsidised by vouchers.
    pub subsidy_fen: u64,
    /// The tenant's share: amount − subsidy.
    pub tenant_share_fen: u64,
}

/// `GET /api/v1/invoices?tenant=`: invoices (a tenant sees its own).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    /// Only this tenant's.
    pub tenant: Option<i64>,
}

/// `GET /api/v1/invoices`.
pub async fn invoices(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<InvoiceQuery>,
) -> Result<Json<Vec<InvoiceSummary>>, ApiError> {
    let tenant = match caller.role() {
        Role::Operator | Role::Auditor => query.tenant,
        Role::Tenant => caller.principal.tenant_id,
        _ => return Err(ApiError::forbidden("invoices are for tenants, operators and auditors")),
    };
    let list = state.ledger.read(&state.store, |books| books.invoices(tenant)).await?;
    Ok(Json(
        list.into_iter()
            .map(|(tenant, period, amount_fen, subsidy_fen)| InvoiceSummary {
                tenant,
                period,
                amount_fen,
                subsidy_fen,
                tenant_share_fen: amount_fen - subsidy_fen,
            })
            .collect(),
    ))
}

/// An invoice line as the API shows it.
#[derive(Debug, Serialize)]
pub struct LineView {
    /// The job.
    pub job: i64,
    /// Where it ran.
    pub pool: String,
    /// What it ran under.
    pub contract: String,
    /// Accelerator-hours.
    pub card_hours: f64,
    /// Charged.
    pub amount_fen: u64,
    /// Subsidised.
    pub subsidy_fen: u64,
    /// The tenant's share.
    pub tenant_share_fen: u64,
    /// Which programmes paid what.
    pub subsidies: Vec<serde_json::Value>,
}

fn line_view(l: &Line) -> LineView {
    LineView {
        job: l.key.job,
        pool: l.key.pool.clone(),
        contract: l.contract.clone(),
        card_hours: l.card_ms as f64 / 3_600_000.0,
        amount_fen: l.amount_fen,
        subsidy_fen: l.subsidy_fen(),
        tenant_share_fen: l.tenant_share_fen(),
        subsidies: l
            .subsidies
            .iter()
            .map(|s| serde_json::json!({"program": s.program, "claim": s.claim, "subsidy_fen": s.subsidy_fen}))
            .collect(),
    }
}

/// An invoice: a tenant's lines for a month.
#[derive(Debug, Serialize)]
pub struct InvoiceView {
    /// The totals.
    #[serde(flatten)]
    pub summary: InvoiceSummary,
    /// One line per job and pool.
    pub lines: Vec<LineView>,
}

/// `GET /api/v1/invoices/{tenant}/{period}`.
pub async fn invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, period)): Path<(i64, String)>,
) -> Result<Json<InvoiceView>, ApiError> {
    tenant_visible(&caller, tenant)?;
    if !is_period(&period) {
        return Err(ApiError::bad_request("invalid_period", format!("period {period:?}: expected YYYY-MM")));
    }
    let lines: Vec<LineView> = state
        .ledger
        .read(&state.store, |books| books.invoice(tenant, &period).into_iter().map(line_view).collect())
        .await?;
    if lines.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invoice_not_found",
            format!("tenant {tenant} has no invoice for {period}"),
        ));
    }
    let amount_fen = lines.iter().map(|l| l.amount_fen).sum();
    let subsidy_fen = lines.iter().map(|l| l.subsidy_fen).sum();
    Ok(Json(InvoiceView {
        summary: InvoiceSummary { tenant, period, amount_fen, subsidy_fen, tenant_share_fen: amount_fen - subsidy_fen },
        lines,
    }))
}

/// `GET /api/v1/ledger/entries?after=&limit=` (operators, auditors): the books' history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// After this sequence number.
    pub after: Option<i64>,
    /// At most this many (≤ 10,000).
    pub limit: Option<u32>,
}

/// `GET /api/v1/ledger/entries`.
pub async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<EntriesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    let page = state.store.ledger_entries(query.after.unwrap_or(0), query.limit.unwrap_or(1_000)).await?;
    let next = page.last().map(|(seq, _)| *seq);
    let entries: Vec<serde_json::Value> =
        page.into_iter().map(|(seq, entry)| serde_json::json!({"seq": seq, "entry": entry})).collect();
    Ok(Json(serde_json::json!({"entries": entries, "next_after": next})))
}

// ----------------------------------------------------------------------------------- programmes

fn admin_of(caller: &Caller, program: &str) -> bool {
    caller.role() == Role::Operator
        || (caller.role() == Role::ProgramAdmin && caller.principal.pool.as_deref() == Some(program))
}

fn reads_program(caller: &Caller, program: &str) -> bool {
    admin_of(caller, program) || caller.role() == Role::Auditor
}

/// A programme as the API shows it.
#[derive(Debug, Serialize)]
pub struct ProgramView {
    /// Its rules.
    pub program: Program,
    /// The year ended.
    pub expired: bool,
    /// Its figures (operators, auditors and its administrators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ProgramReport>,
}

fn program_view(books: &Books, caller: &Caller, id: &str) -> Option<ProgramView> {
    let p = books.program(id)?;
    Some(ProgramView {
        program: p.program.clone(),
        expired: p.expired,
        report: if reads_program(caller, id) { books.report(id) } else { None },
    })
}

/// `POST /api/v1/programs` (operator): loads a programme (JSON; `suanwang program load FILE`
/// reads the TOML) and funds its budget. The same programme again is 200.
pub async fn load_program(
    State(state): State<AppState>,
    caller: Caller,
    Body(program): Body<Program>,
) -> Result<(StatusCode, Json<ProgramView>), ApiError> {
    caller.require(&[Role::Operator])?;
    let id = program.id.clone();
    let now = now_ms();
    let (existed, view) = state
        .ledger
        .write(&state.store, &caller.actor(), {
            let caller = caller.clone();
            move |books| {
                let existed = books.program(&program.id).is_some();
                books.load_program(program, now).map(|()| (existed, program_view(books, &caller, &id)))
            }
        })
        .await??;
    let view = view.ok_or_else(|| ApiError::unavailable("the programme vanished"))?;
    Ok((if existed { StatusCode::OK } else { StatusCode::CREATED }, Json(view)))
}

/// `GET /api/v1/programs`: every programme (anyone signed in may read the rules).
pub async fn list_programs(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<ProgramView>>, ApiError> {
    let views = state
        .ledger
        .read(&state.store, |books| {
            let ids: Vec<String> = books.programs().map(|p| p.program.id.clone()).collect();
            ids.iter().filter_map(|id| program_view(books, &caller, id)).collect()
        })
        .await?;
    Ok(Json(views))
}

/// `GET /api/v1/programs/{id}`.
pub async fn show_program(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProgramView>, ApiError> {
    state
        .ledger
        .read(&state.store, |books| program_view(books, &caller, &id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "program_not_found", format!("no programme {id}")))
}

/// `POST /api/v1/programs/{id}/expire` (operator, its administrator): ends the year.
pub async fn expire_program(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProgramView>, ApiError> {
    if !admin_of(&caller, &id) {
        return Err(ApiError::forbidden("only the operator or the programme's administrator ends its year"));
    }
    let now = now_ms();
    let view = state
        .ledger
        .write(&state.store, &caller.actor(), {
            let caller = caller.clone();
            move |books| books.expire_program(&id, now).map(|()| program_view(books, &caller, &id))
        })
        .await??;
    view.map(Json).ok_or_else(|| ApiError::unavailable("the programme vanished"))
}

/// `POST /api/v1/programs/{id}/applications` (tenant).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// Provider organisations the tenant is affiliated with.
    #[serde(default)]
    pub affiliations: Vec<String>,
}

/// `POST /api/v1/programs/{id}/applications` (tenant): applies; applying again returns the first
/// application.
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    Path(program): Path<String>,
    Body(body): Body<NewApplication>,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    caller.require(&[Role::Tenant])?;
    let tenant_id = caller.principal.tenant_id.ok_or_else(|| ApiError::forbidden("the token names no tenant"))?;
    let t = state.store.tenant(tenant_id).await?.ok_or_else(|| ApiError::not_found(format!("tenant {tenant_id}")))?;
    let facts = TenantFacts { id: t.id, kind: t.kind, registration_city: t.registration_city };
    let now = now_ms();
    let (before, application) = state
        .ledger
        .write(&state.store, &caller.actor(), move |books| {
            let before = books.applications().len();
            books.apply(&program, facts, body.affiliations, now).map(|a| (before, a))
        })
        .await??;
    let status = if application.id as usize > before { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(application)))
}

/// `GET /api/v1/applications?program=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramQuery {
    /// Only this programme's.
    pub program: Option<String>,
}

fn sees_record(caller: &Caller, program: &str, tenant: i64) -> bool {
    reads_program(caller, program) || (caller.role() == Role::Tenant && caller.principal.tenant_id == Some(tenant))
}

/// `GET /api/v1/applications`: the applications the caller may see.
pub async fn list_applications(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ProgramQuery>,
) -> Result<Json<Vec<Application>>, ApiError> {
    let list = state
        .ledger
        .read(&state.store, |books| {
            books
                .applications()
                .iter()
                .filter(|a| query.program.as_ref().is_none_or(|p| *p == a.program))
                .filter(|a| sees_record(&caller, &a.program, a.tenant.id))
                .cloned()
                .collect()
        })
        .await?;
    Ok(Json(list))
}

/// `POST /api/v1/applications/{id}/decision`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Approve (true) or reject (false).
    pub approve: bool,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/applications/{id}/decision` (its programme's administrator, operator).
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(body): Body<Decision>,
) -> Result<Json<Application>, ApiError> {
    let program = state.ledger.read(&state.store, |books| books.application(id).map(|a| a.program.clone())).await?;
    let program = program
        .filter(|p| sees_record(&caller, p, -1))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "application_not_found", format!("no application {id}")))?;
    if !admin_of(&caller, &program) {
        return Err(ApiError::forbidden("only the programme's administrator or the operator decides"));
    }
    let now = now_ms();
    let a = state
        .ledger
        .write(&state.store, &caller.actor(), move |books| books.decide(id, body.approve, &body.reason, now))
        .await??;
    Ok(Json(a))
}

/// `POST /api/v1/programs/{id}/claims` (tenant).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClaim {
    /// `job:ID`: an on-demand job the tenant ordered through the platform.
    pub contract: String,
    /// The voucher's face value.
    pub amount_fen: u64,
}

/// A market contract (`contract:ID`) of the tenant's, or `contract_not_found`.
pub async fn tenant_contract(
    state: &AppState,
    tenant: i64,
    id: &str,
) -> Result<suanwang_billing::market::MarketContract, ApiError> {
    let not_found =
        || ApiError::new(StatusCode::NOT_FOUND, "contract_not_found", format!("no contract {id:?} of yours"));
    let n: u64 = id.strip_prefix("contract:").and_then(|n| n.parse().ok()).ok_or_else(not_found)?;
    state
        .ledger
        .read(&state.store, |books| books.contract(n).cloned())
        .await?
        .filter(|c| c.tenant == tenant)
        .ok_or_else(not_found)
}

async fn resolve_contract(state: &AppState, tenant: i64, id: &str) -> Result<Contract, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "contract_not_found",
            format!(
                "no contract {id:?} of yours (contracts are contract:ID from the market, or job:ID for on-demand jobs)"
            ),
        )
    };
    if id.starts_with("contract:") {
        let c = tenant_contract(state, tenant, id).await?;
        let pool = pool_facts(state, &c.pool).map(|(facts, _)| facts);
        return Ok(Contract {
            id: id.to_owned(),
            tenant,
            pool,
            term_days: c.term_days(),
            value_fen: Some(c.value_fen()),
        });
    }
    let job_id: i64 = id.strip_prefix("job:").and_then(|n| n.parse().ok()).ok_or_else(not_found)?;
    let job = state.store.job(job_id).await?.filter(|j| j.tenant_id == tenant).ok_or_else(not_found)?;
    let pool = job.pool.as_deref().and_then(|p| pool_facts(state, p)).map(|(facts, _)| facts);
    // An on-demand job is a contract for as long as it runs: one day counts for the term.
    Ok(Contract { id: id.to_owned(), tenant, pool, term_days: 1, value_fen: None })
}

/// `POST /api/v1/programs/{id}/claims` (tenant): reserves the voucher's value from the budget
/// and the firm's cap. The same claim again returns the first.
pub async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    Path(program): Path<String>,
    Body(body): Body<NewClaim>,
) -> Result<(StatusCode, Json<Claim>), ApiError> {
    caller.require(&[Role::Tenant])?;
    let tenant = caller.principal.tenant_id.ok_or_else(|| ApiError::forbidden("the token names no tenant"))?;
    let contract = resolve_contract(&state, tenant, &body.contract).await?;
    let now = now_ms();
    let (before, claim) = state
        .ledger
        .write(&state.store, &caller.actor(), move |books| {
            let before = books.claims().len();
            books.file_claim(&program, &contract, body.amount_fen, now).map(|c| (before, c))
        })
        .await??;
    let status = if claim.id as usize > before { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(claim)))
}

/// `GET /api/v1/claims?program=`: the claims the caller may see.
pub async fn list_claims(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ProgramQuery>,
) -> Result<Json<Vec<Claim>>, ApiError> {
    let list = state
        .ledger
        .read(&state.store, |books| {
            books
                .claims()
                .iter()
                .filter(|c| query.program.as_ref().is_none_or(|p| *p == c.program))
                .filter(|c| sees_record(&caller, &c.program, c.tenant))
                .cloned()
                .collect()
        })
        .await?;
    Ok(Json(list))
}

fn claim_not_found(id: u64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "claim_not_found", format!("no claim {id}"))
}

/// `GET /api/v1/claims/{id}`.
pub async fn show_claim(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Claim>, ApiError> {
    state
        .ledger
        .read(&state.store, |books| books.claim(id).filter(|c| sees_record(&caller, &c.program, c.tenant)).cloned())
        .await?
        .map(Json)
        .ok_or_else(|| claim_not_found(id))
}

/// `POST /api/v1/claims/{id}/redemptions`: the invoice line to redeem against.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRedemption {
    /// The invoice's period, `YYYY-MM`.
    pub period: String,
    /// The line's job.
    pub job: i64,
    /// The line's pool (default: the job's pool).
    #[serde(default)]
    pub pool: Option<String>,
}

/// What a redemption paid.
#[derive(Debug, Serialize)]
pub struct RedemptionView {
    /// Paid to the tenant from the programme's budget.
    pub subsidy_fen: u64,
    /// The claim after it.
    pub claim: Claim,
}

/// `POST /api/v1/claims/{id}/redemptions` (the claim's tenant, its programme's administrator,
/// operator): redeems the claim against an invoice line of its contract. Proof of delivery is the
/// platform's own: the line's usage was metered and the job succeeded.
pub async fn redeem(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Body(body): Body<NewRedemption>,
) -> Result<Json<RedemptionView>, ApiError> {
    if !is_period(&body.period) {
        return Err(ApiError::bad_request("invalid_period", format!("period {:?}: expected YYYY-MM", body.period)));
    }
    let claim = state
        .ledger
        .read(&state.store, |books| books.claim(id).filter(|c| sees_record(&caller, &c.program, c.tenant)).cloned())
        .await?
        .ok_or_else(|| claim_not_found(id))?;
    if caller.role() == Role::Auditor {
        return Err(ApiError::forbidden("auditors change nothing"));
    }
    let job = state.store.job(body.job).await?.filter(|j| j.tenant_id == claim.tenant).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "invoice_not_found", format!("no invoice line for job {}", body.job))
    })?;
    if job.state != JobState::Succeeded {
        return Err(ApiError::conflict(
            "not_delivered",
            format!(
                "job {} is {}; a redemption needs proof of delivery (the job succeeded)",
                job.id,
                job.state.as_str()
            ),
        ));
    }
    let pool = body.pool.or(job.pool).unwrap_or_default();
    let key = LineKey { tenant: claim.tenant, period: body.period, job: body.job, pool };
    let now = now_ms();
    let (subsidy_fen, claim) =
        state.ledger.write(&state.store, &caller.actor(), move |books| books.redeem(id, &key, now)).await??;
    Ok(Json(RedemptionView { subsidy_fen, claim }))
}
