//! Tenants, tokens, sites, links, pools and the audit log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use suanwang_model::job::TenantKind;
use suanwang_store::model::{Outcome, PAGE_MAX, Role, Write};

use crate::auth::{Caller, hash_token, new_token};
use crate::error::ApiError;
use crate::jobs::Body;
use crate::scheduler::SchedulerMsg;
use crate::state::{AppState, rfc3339};

/// `POST /api/v1/tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Unique name (1–64 characters: letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// `startup`, `sme`, `manufacturer`, `research-institute`, `university`, `government`, `enterprise`.
    #[serde(default = "enterprise")]
    pub kind: String,
    /// City of registration.
    #[serde(default)]
    pub registration_city: String,
}

fn enterprise() -> String {
    "enterprise".to_owned()
}

/// A tenant as the API shows it.
#[derive(Debug, Serialize)]
pub struct TenantView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// City.
    pub registration_city: String,
    /// When created (UTC).
    pub created_at: String,
}

/// Checks a name for tenants and labels.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `POST /api/v1/tenants` (operator).
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    caller.require(&[Role::Operator])?;
    if !valid_name(&body.name) {
        return Err(ApiError::bad_request("invalid_name", "a tenant name is 1 to 64 letters, digits, '-', '_' or '.'"));
    }
    if TenantKind::parse(&body.kind).is_none() {
        let kinds: Vec<&str> = TenantKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(ApiError::bad_request(
            "invalid_kind",
            format!("unknown tenant kind {:?}; kinds are {}", body.kind, kinds.join(", ")),
        ));
    }
    let write = Write::CreateTenant { name: body.name, kind: body.kind, registration_city: body.registration_city };
    match state.committer.write(caller.actor(), write).await? {
        Outcome::Tenant(t) => Ok((
            StatusCode::CREATED,
            Json(TenantView {
                id: t.id,
                name: t.name,
                kind: t.kind,
                registration_city: t.registration_city,
                created_at: rfc3339(t.created_ms),
            }),
        )),
        other => Err(ApiError::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// `GET /api/v1/tenants` (operator, auditor).
pub async fn list_tenants(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TenantView>>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    let tenants = state.store.tenants().await?;
    Ok(Json(
        tenants
            .into_iter()
            .map(|t| TenantView {
                id: t.id,
                name: t.name,
                kind: t.kind,
                registration_city: t.registration_city,
                created_at: rfc3339(t.created_ms),
            })
            .collect(),
    ))
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `operator`, `provider`, `tenant`, `program-admin` or `auditor`.
    pub role: String,
    /// For tenant tokens: the tenant's name.
    #[serde(default)]
    pub tenant: Option<String>,
    /// For provider (agent) tokens: the pool's name.
    #[serde(default)]
    pub pool: Option<String>,
    /// For programme-administrator tokens: the programme's id.
    #[serde(default)]
    pub program: Option<String>,
    /// A label for people.
    #[serde(default)]
    pub label: String,
    /// The token stops working this many seconds from now (1 to 10 years' worth); absent: never.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// The longest a token may be made to last (ten years), in seconds.
pub const TOKEN_TTL_MAX_S: u64 = 10 * 366 * 86_400;

/// A new token: shown once, never again.
#[derive(Debug, Serialize)]
pub struct TokenView {
    /// Id (in the audit log as `token:ID`).
    pub id: i64,
    /// The token itself.
    pub token: String,
    /// Role.
    pub role: &'static str,
    /// When it stops working (UTC), if ever.
    pub expires_at: Option<String>,
}

/// Creates a token and returns it (operators over the API; bootstrap and demo directly).
pub async fn issue_token(state: &AppState, actor: &str, body: NewToken) -> Result<TokenView, ApiError> {
    let role: Role = body.role.parse().map_err(|e| ApiError::bad_request("invalid_role", e))?;
    let tenant_id = match (role, &body.tenant) {
        (Role::Tenant, Some(name)) => Some(
            state
                .store
                .tenant_by_name(name)
                .await?
                .ok_or_else(|| ApiError::bad_request("unknown_tenant", format!("unknown tenant {name:?}")))?
                .id,
        ),
        (Role::Tenant, None) => {
            return Err(ApiError::bad_request("invalid_token_request", "a tenant token needs \"tenant\""));
        }
        (_, Some(_)) => return Err(ApiError::bad_request("invalid_token_request", "only tenant tokens name a tenant")),
        (_, None) => None,
    };
    let pool = match (role, &body.pool) {
        (Role::Provider, Some(name)) => {
            if !state.federation.pools().any(|(_, p)| &p.name == name) {
                return Err(ApiError::bad_request("unknown_pool", format!("unknown pool {name:?}")));
            }
            Some(name.clone())
        }
        (Role::Provider, None) => {
            return Err(ApiError::bad_request("invalid_token_request", "a provider token needs \"pool\""));
        }
        (_, Some(_)) => return Err(ApiError::bad_request("invalid_token_request", "only provider tokens name a pool")),
        (_, None) => None,
    };
    // A token's scope is one column: the pool of a provider token, the programme of a
    // programme administrator's.
    let pool = match (role, body.program) {
        (Role::ProgramAdmin, Some(id)) => {
            if state.ledger.read(&state.store, |books| books.program(&id).is_none()).await? {
                return Err(ApiError::bad_request("unknown_program", format!("unknown programme {id:?}")));
            }
            Some(id)
        }
        (Role::ProgramAdmin, None) => {
            return Err(ApiError::bad_request("invalid_token_request", "a program-admin token needs \"program\""));
        }
        (_, Some(_)) => {
            return Err(ApiError::bad_request("invalid_token_request", "only program-admin tokens name a program"));
        }
        (_, None) => pool,
    };
    if body.label.len() > 128 {
        return Err(ApiError::bad_request("invalid_token_request", "the label is at most 128 characters"));
    }
    let expires_ms = match body.ttl_seconds {
        None => None,
        Some(ttl @ 1..=TOKEN_TTL_MAX_S) => Some(crate::state::now_ms() + i64::try_from(ttl * 1000).unwrap_or(i64::MAX)),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_ttl",
                format!(
                    "ttl_seconds is 1 to {TOKEN_TTL_MAX_S} (ten years); leave it out for a token that never expires"
                ),
            ));
        }
    };
    let token = new_token();
    let write = Write::CreateToken { hash: hash_token(&token), role, tenant_id, pool, label: body.label, expires_ms };
    match state.committer.write(actor, write).await? {
        Outcome::Token(id) => Ok(TokenView { id, token, role: role.as_str(), expires_at: expires_ms.map(rfc3339) }),
        other => Err(ApiError::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// `POST /api/v1/tokens` (operator).
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    caller.require(&[Role::Operator])?;
    Ok((StatusCode::CREATED, Json(issue_token(&state, &caller.actor(), body).await?)))
}

/// A pool as the API shows it.
#[derive(Debug, Serialize)]
pub struct PoolView {
    /// Name.
    pub name: String,
    /// Site.
    pub site: String,
    /// `slurm`, `kubernetes`, `local`, `sim`.
    pub backend: &'static str,
    /// Provider.
    pub provider: String,
    /// Nodes.
    pub nodes: u64,
    /// Accelerator cards.
    pub cards: u64,
    /// Dense FP16 PFLOPS.
    pub pflops_fp16: f64,
    /// On-demand card-hour prices by model, fen.
    pub card_hour_fen: std::collections::BTreeMap<String, i64>,
    /// Its agent reports and it is usable.
    pub healthy: bool,
    /// Takes no new work.
    pub drained: bool,
    /// Last report (UTC), if any.
    pub last_seen_at: Option<String>,
    /// What the pool's cluster reports having (Slurm agents report it), when its agent does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<suanwang_agent::protocol::Capacity>,
}

async fn pool_views(state: &AppState) -> Result<Vec<PoolView>, ApiError> {
    let statuses = state.store.pool_statuses().await?;
    let capacity = state.federation.capacity();
    let catalog = state.federation.catalog();
    let reported = state.reported.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(state
        .federation
        .pools()
        .map(|(id, pool)| {
            let status = statuses.iter().find(|s| s.name == pool.name);
            let row = &capacity.by_pool[id.index()];
            PoolView {
                name: pool.name.clone(),
                site: state.federation.site(pool.site).name.clone(),
                backend: pool.backend.as_str(),
                provider: pool.provider.clone(),
                nodes: row.nodes,
                cards: row.cards,
                pflops_fp16: (row.pflops_fp16 * 10.0).round() / 10.0,
                card_hour_fen: pool
                    .prices
                    .card_hour_fen
                    .iter()
                    .map(|(m, f)| (catalog.get(*m).model.clone(), *f))
                    .collect(),
                healthy: status.is_some_and(|s| s.healthy),
                drained: status.is_some_and(|s| s.drained),
                last_seen_at: status.map(|s| rfc3339(s.last_seen_ms)),
                reported: reported.get(&pool.name).copied(),
            }
        })
        .collect())
}

/// `GET /api/v1/pools`.
pub async fn list_pools(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<PoolView>>, ApiError> {
    Ok(Json(pool_views(&state).await?))
}

/// `GET /api/v1/pools/{name}`.
pub async fn show_pool(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PoolView>, ApiError> {
    pool_views(&state)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("pool {name:?}")))
}

/// `POST /api/v1/pools/{name}/drain` (operator, or the pool's provider): no new work; running
/// jobs finish.
pub async fn drain_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PoolView>, ApiError> {
    set_drained(state, caller, name, true).await
}

/// `POST /api/v1/pools/{name}/undrain` (operator, or the pool's provider): takes new work again.
pub async fn undrain_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PoolView>, ApiError> {
    set_drained(state, caller, name, false).await
}

async fn set_drained(state: AppState, caller: Caller, name: String, drained: bool) -> Result<Json<PoolView>, ApiError> {
    let Some((id, _)) = state.federation.pools().find(|(_, p)| p.name == name) else {
        return Err(ApiError::not_found(format!("pool {name:?}")));
    };
    match caller.role() {
        Role::Operator => {}
        Role::Provider if caller.principal.pool.as_deref() == Some(name.as_str()) => {}
        _ => return Err(ApiError::forbidden("only an operator or the pool's provider can drain or undrain it")),
    }
    let current = state.store.pool_statuses().await?.into_iter().find(|s| s.name == name);
    let write = Write::SetPoolStatus {
        name: name.clone(),
        healthy: current.as_ref().is_some_and(|s| s.healthy),
        drained,
        last_seen_ms: current.map_or(0, |s| s.last_seen_ms),
    };
    state.committer.write(caller.actor(), write).await?;
    let _ = state.scheduler.try_send(SchedulerMsg::Drain { pool: id, drained });
    show_pool(State(state), caller, Path(name)).await
}

/// A site as the API shows it.
#[derive(Debug, Serialize)]
pub struct SiteView {
    /// Name.
    pub name: String,
    /// City.
    pub city: String,
    /// Residency region.
    pub region: String,
}

/// `GET /api/v1/sites`.
pub async fn list_sites(State(state): State<AppState>, _caller: Caller) -> Json<Vec<SiteView>> {
    Json(
        state
            .federation
            .sites()
            .iter()
            .map(|s| SiteView { name: s.name.clone(), city: s.city.clone(), region: s.region.clone() })
            .collect(),
    )
}

/// A link as the API shows it.
#[derive(Debug, Serialize)]
pub struct LinkView {
    /// The two sites.
    pub between: [String; 2],
    /// One-way latency.
    pub latency_ms: f64,
    /// Bandwidth.
    pub bandwidth_gbps: u32,
    /// Egress price.
    pub egress_fen_per_gib: i64,
}

/// `GET /api/v1/links`.
pub async fn list_links(State(state): State<AppState>, _caller: Caller) -> Json<Vec<LinkView>> {
    let site = |id: suanwang_model::federation::SiteId| state.federation.site(id).name.clone();
    Json(
        state
            .federation
            .network()
            .links()
            .iter()
            .map(|l| LinkView {
                between: [site(l.a), site(l.b)],
                latency_ms: f64::from(l.latency_us) / 1000.0,
                bandwidth_gbps: l.bandwidth_gbps,
                egress_fen_per_gib: l.egress_fen_per_gib,
            })
            .collect(),
    )
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries after this sequence number.
    pub after: Option<i64>,
    /// At most this many (1–1000, default 100).
    pub limit: Option<u32>,
}

/// An audit entry as the API shows it.
#[derive(Debug, Serialize)]
pub struct AuditView {
    /// Position in the chain.
    pub seq: i64,
    /// When (UTC).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// Digest before.
    pub before_digest: String,
    /// Digest after.
    pub after_digest: String,
    /// Previous hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// `GET /api/v1/audit` (operator, auditor).
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let entries = state.store.audit(query.after.unwrap_or(0), query.limit.unwrap_or(100).min(PAGE_MAX)).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                seq: e.seq,
                at: rfc3339(e.at_ms),
                actor: e.actor,
                action: e.action,
                subject: e.subject,
                before_digest: e.before_digest,
                after_digest: e.after_digest,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect(),
    ))
}

/// `GET /api/v1/audit/verify` (operator, auditor): walks the whole chain.
pub async fn audit_verify(State(state): State<AppState>, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    Ok(Json(match state.store.verify_audit().await? {
        suanwang_store::audit::Verdict::Intact { entries } => serde_json::json!({"intact": true, "entries": entries}),
        suanwang_store::audit::Verdict::Broken { seq, reason } => {
            serde_json::json!({"intact": false, "first_broken": seq, "reason": reason})
        }
    }))
}
