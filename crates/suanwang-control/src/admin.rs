//! Tenants, tokens, pools (and draining them), sites, links and the audit log.

use suanwang_api::admin::{
    AuditHead, AuditQuery, AuditVerdict, AuditView, LinkView, NewTenant, NewToken, PoolView, SiteView, TenantView,
    TokenInfo, TokenPage, TokenView,
};
use suanwang_model::job::TenantKind;
use suanwang_model::platform::Role;
use suanwang_store::model::{Outcome, PAGE_MAX, TenantRecord, Write};

use crate::Control;
use crate::access::{Action, Owner, may, require};
use crate::auth::{Caller, hash_token, new_token};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::scheduler::SchedulerMsg;

/// The longest a token may be made to last (ten years), in seconds.
pub const TOKEN_TTL_MAX_S: u64 = 10 * 366 * 86_400;

/// Longest token label and registration city.
pub const LABEL_MAX: usize = 128;

/// Checks a name for tenants and labels.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A tenant as the API shows it.
pub fn tenant_view(t: TenantRecord) -> TenantView {
    TenantView {
        id: t.id.0,
        name: t.name,
        kind: t.kind.as_str().to_owned(),
        registration_city: t.registration_city,
        created_at: rfc3339(t.created_ms),
    }
}

/// Creates a tenant (operator).
pub async fn create_tenant(ctl: &Control, caller: &Caller, body: NewTenant) -> Result<TenantView, Error> {
    require(caller, Action::CreateTenant)?;
    if !valid_name(&body.name) {
        return Err(
            Error::bad_request("invalid_name", "a tenant name is 1 to 64 letters, digits, '-', '_' or '.'").at("name")
        );
    }
    let Some(kind) = TenantKind::parse(&body.kind) else {
        let kinds: Vec<&str> = TenantKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(Error::bad_request(
            "invalid_kind",
            format!("unknown tenant kind {:?}; kinds are {}", body.kind, kinds.join(", ")),
        )
        .at("kind"));
    };
    if body.registration_city.len() > LABEL_MAX || body.registration_city.contains('\0') {
        return Err(Error::bad_request("invalid_city", format!("the city is at most {LABEL_MAX} characters"))
            .at("registration_city"));
    }
    let write = Write::CreateTenant { name: body.name, kind, registration_city: body.registration_city };
    match ctl.committer.write(caller.actor(), write).await? {
        Outcome::Tenant(t) => Ok(tenant_view(t)),
        other => Err(Error::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// Every tenant (operators, auditors).
pub async fn list_tenants(ctl: &Control, caller: &Caller) -> Result<Vec<TenantView>, Error> {
    require(caller, Action::ReadTenants)?;
    Ok(ctl.store.tenants().await?.into_iter().map(tenant_view).collect())
}

/// Creates a token and returns it: operators over the API, `bootstrap` and the demo directly
/// (`actor` is who the audit log names).
pub async fn issue_token(ctl: &Control, actor: &str, body: NewToken) -> Result<TokenView, Error> {
    let role: Role = body.role.parse().map_err(|e| Error::bad_request("invalid_role", e).at("role"))?;
    let tenant_id = match (role, &body.tenant) {
        (Role::Tenant, Some(name)) => Some(
            ctl.store
                .tenant_by_name(name)
                .await?
                .ok_or_else(|| Error::bad_request("unknown_tenant", format!("unknown tenant {name:?}")).at("tenant"))?
                .id,
        ),
        (Role::Tenant, None) => {
            return Err(Error::bad_request("invalid_token_request", "a tenant token needs \"tenant\"").at("tenant"));
        }
        (_, Some(_)) => {
            return Err(Error::bad_request("invalid_token_request", "only tenant tokens name a tenant").at("tenant"));
        }
        (_, None) => None,
    };
    let pool = match (role, &body.pool) {
        (Role::Provider, Some(name)) => {
            if !ctl.federation.pools().any(|(_, p)| &p.name == name) {
                return Err(Error::bad_request("unknown_pool", format!("unknown pool {name:?}")).at("pool"));
            }
            Some(name.clone())
        }
        (Role::Provider, None) => {
            return Err(Error::bad_request("invalid_token_request", "a provider token needs \"pool\"").at("pool"));
        }
        (_, Some(_)) => {
            return Err(Error::bad_request("invalid_token_request", "only provider tokens name a pool").at("pool"));
        }
        (_, None) => None,
    };
    // A token's scope is one column: the pool of a provider token, the programme of a
    // programme administrator's.
    let pool = match (role, body.program) {
        (Role::ProgramAdmin, Some(id)) => {
            if ctl.read_books(|books| books.program(&id).is_none()).await? {
                return Err(Error::bad_request("unknown_program", format!("unknown programme {id:?}")).at("program"));
            }
            Some(id)
        }
        (Role::ProgramAdmin, None) => {
            return Err(
                Error::bad_request("invalid_token_request", "a program-admin token needs \"program\"").at("program")
            );
        }
        (_, Some(_)) => {
            return Err(
                Error::bad_request("invalid_token_request", "only program-admin tokens name a program").at("program")
            );
        }
        (_, None) => pool,
    };
    if body.label.len() > LABEL_MAX || body.label.contains('\0') {
        return Err(Error::bad_request(
            "invalid_token_request",
            format!("the label is at most {LABEL_MAX} characters"),
        )
        .at("label"));
    }
    let expires_ms = match body.ttl_seconds {
        None => None,
        Some(ttl @ 1..=TOKEN_TTL_MAX_S) => Some(ctl.now_ms() + i64::try_from(ttl * 1000).unwrap_or(i64::MAX)),
        Some(_) => {
            return Err(Error::bad_request(
                "invalid_ttl",
                format!(
                    "ttl_seconds is 1 to {TOKEN_TTL_MAX_S} (ten years); leave it out for a token that never expires"
                ),
            )
            .at("ttl_seconds"));
        }
    };
    let token = new_token();
    let write = Write::CreateToken { hash: hash_token(&token), role, tenant_id, pool, label: body.label, expires_ms };
    match ctl.committer.write(actor, write).await? {
        Outcome::Token(id) => Ok(TokenView { id, token, role, expires_at: expires_ms.map(rfc3339) }),
        other => Err(Error::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// Creates a token (operators).
pub async fn create_token(ctl: &Control, caller: &Caller, body: NewToken) -> Result<TokenView, Error> {
    require(caller, Action::CreateToken)?;
    issue_token(ctl, &caller.actor(), body).await
}

/// Every pool with its capacity, prices and health.
pub async fn list_pools(ctl: &Control, caller: &Caller) -> Result<Vec<PoolView>, Error> {
    require(caller, Action::ReadCatalogue)?;
    let statuses = ctl.store.pool_statuses().await?;
    let capacity = ctl.federation.capacity();
    let catalog = ctl.federation.catalog();
    let reported = ctl.reported.lock().map(|r| r.clone()).unwrap_or_default();
    let problems = ctl.problems.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(ctl
        .federation
        .pools()
        .map(|(id, pool)| {
            let status = statuses.iter().find(|s| s.name == pool.name);
            let row = &capacity.by_pool[id.index()];
            PoolView {
                name: pool.name.clone(),
                site: ctl.federation.site(pool.site).name.clone(),
                backend: pool.backend.as_str().to_owned(),
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
                problem: problems.get(&pool.name).cloned(),
            }
        })
        .collect())
}

/// One pool.
pub async fn show_pool(ctl: &Control, caller: &Caller, name: &str) -> Result<PoolView, Error> {
    list_pools(ctl, caller)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::not_found(format!("pool {name:?}")))
}

/// Drains (no new work; running jobs finish) or undrains a pool: operators, or the pool's
/// provider.
pub async fn set_drained(ctl: &Control, caller: &Caller, name: &str, drained: bool) -> Result<PoolView, Error> {
    require(caller, Action::DrainPool)?;
    let Some((id, _)) = ctl.federation.pools().find(|(_, p)| p.name == name) else {
        return Err(Error::not_found(format!("pool {name:?}")));
    };
    if !may(caller, Action::DrainPool, Owner::pool(name)) {
        return Err(Error::forbidden("only an operator or the pool's provider can drain or undrain it"));
    }
    // Only the flag: health and the last report stay as stored (a heartbeat may land meanwhile).
    let write =
        Write::SetPoolStatus { name: name.to_owned(), healthy: None, drained: Some(drained), last_seen_ms: None };
    ctl.committer.write(caller.actor(), write).await?;
    let _ = ctl.scheduler.try_send(SchedulerMsg::Drain { pool: id, drained });
    show_pool(ctl, caller, name).await
}

/// The federation's sites.
pub fn list_sites(ctl: &Control, caller: &Caller) -> Result<Vec<SiteView>, Error> {
    require(caller, Action::ReadCatalogue)?;
    Ok(ctl
        .federation
        .sites()
        .iter()
        .map(|s| SiteView { name: s.name.clone(), city: s.city.clone(), region: s.region.clone() })
        .collect())
}

/// The links between sites.
pub fn list_links(ctl: &Control, caller: &Caller) -> Result<Vec<LinkView>, Error> {
    require(caller, Action::ReadCatalogue)?;
    let site = |id: suanwang_model::federation::SiteId| ctl.federation.site(id).name.clone();
    Ok(ctl
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
        .collect())
}

/// A page of the audit log (operators, auditors).
pub async fn audit(ctl: &Control, caller: &Caller, query: &AuditQuery) -> Result<Vec<AuditView>, Error> {
    require(caller, Action::ReadAudit)?;
    let entries = ctl.store.audit(query.after.unwrap_or(0), query.limit.unwrap_or(100).min(PAGE_MAX)).await?;
    Ok(entries
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
        .collect())
}

/// Walks the whole audit chain (operators, auditors).
pub async fn audit_verify(ctl: &Control, caller: &Caller) -> Result<AuditVerdict, Error> {
    require(caller, Action::ReadAudit)?;
    Ok(match ctl.store.verify_audit().await? {
        suanwang_store::audit::Verdict::Intact { entries } => {
            AuditVerdict { intact: true, entries: Some(entries), first_broken: None, reason: None }
        }
        suanwang_store::audit::Verdict::Broken { seq, reason } => {
            AuditVerdict { intact: false, entries: None, first_broken: Some(seq), reason: Some(reason) }
        }
    })
}

/// Every token (operators, auditors), a page at a time: never the secret.
pub async fn list_tokens(ctl: &Control, caller: &Caller, after: Option<i64>) -> Result<TokenPage, Error> {
    require(caller, Action::ReadTokens)?;
    let tokens = ctl.store.tokens(after.unwrap_or(0).max(0)).await?;
    let full = tokens.len() >= usize::try_from(PAGE_MAX).unwrap_or(usize::MAX);
    let next_after = if full { tokens.last().map(|t| t.id) } else { None };
    let tokens = tokens
        .into_iter()
        .map(|t| TokenInfo {
            id: t.id,
            role: t.role,
            tenant_id: t.tenant_id.map(|t| t.0),
            scope: t.pool,
            label: t.label,
            created_at: rfc3339(t.created_ms),
            expires_at: t.expires_ms.map(rfc3339),
            revoked_at: t.revoked_ms.map(rfc3339),
        })
        .collect();
    Ok(TokenPage { tokens, next_after })
}

/// Revokes a token (operators): it stops working on this server at once and on others within
/// the token cache's ten seconds. Revoking one's own token is allowed (it is how an operator
/// retires a leaked one); revoking a revoked token is a no-op.
pub async fn revoke_token(ctl: &Control, caller: &Caller, id: i64) -> Result<TokenInfo, Error> {
    require(caller, Action::RevokeToken)?;
    // The platform never locks its operators out: the last working operator token stays.
    let mut operators = Vec::new();
    let mut after = 0;
    loop {
        let page = ctl.store.tokens(after).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let now = ctl.now_ms();
        operators.extend(
            page.iter()
                .filter(|t| t.role == Role::Operator && t.revoked_ms.is_none() && t.expires_ms.is_none_or(|e| e > now))
                .map(|t| t.id),
        );
    }
    if operators == [id] {
        return Err(Error::conflict(
            "last_operator",
            "this is the last working operator token; issue another before revoking it",
        ));
    }
    match ctl.committer.write(caller.actor(), Write::RevokeToken { token_id: id }).await? {
        Outcome::Revoked(_) => {}
        other => return Err(Error::unavailable(format!("unexpected write outcome {other:?}"))),
    }
    ctl.tokens.clear();
    let page = list_tokens(ctl, caller, Some(id - 1)).await?;
    page.tokens.into_iter().find(|t| t.id == id).ok_or_else(|| Error::not_found(format!("token {id}")))
}

/// The newest audit entry, to export and later check the chain against (`audit verify
/// --since-head`).
pub async fn audit_head(ctl: &Control, caller: &Caller) -> Result<AuditHead, Error> {
    require(caller, Action::ReadAudit)?;
    let (seq, hash) = ctl.store.audit_head_hash().await?;
    Ok(AuditHead { seq, hash })
}
