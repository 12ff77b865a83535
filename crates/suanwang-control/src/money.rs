//! Money: the biller (metered runs rated into charges), balances, payments in and payouts,
//! invoices, voucher programmes with their applications, claims and redemptions. The rules are
//! `suanwang-billing`'s; this module resolves names (tenants, jobs, pools) into the facts the rules
//! need and asks the access policy who may do what.

use suanwang_api::money::{
    BalanceView, DecisionBody, EarningsView, InvoiceSummary, InvoiceView, LineView, Movement, NewApplication, NewClaim,
    NewRedemption, ProgramView, RedemptionView, SubsidyView,
};
use suanwang_billing::books::{Application, Claim, Line};
use suanwang_billing::rating::is_period;
use suanwang_billing::{Books, Contract, LineKey, PoolFacts, Program, RunMeter, TenantFacts, Usage, chart};
use suanwang_model::platform::{JobState, TenantId};
use suanwang_store::model::UsageRecord;
use suanwang_store::store::LEDGER_PAGE_MAX;

use crate::Control;
use crate::access::{Action, Owner, may, require};
use crate::auth::Caller;
use crate::error::{Error, Kind};

/// Longest idempotency key of a payment or payout.
const KEY_MAX: usize = 128;

/// A pool's facts for the money rules (the simulator's, so both agree), or `None` for a pool
/// not in the federation.
pub fn pool_facts(ctl: &Control, name: &str) -> Option<PoolFacts> {
    let (id, _) = ctl.federation.pools().find(|(_, p)| p.name == name)?;
    Some(suanwang_sim::money::pool_facts(&ctl.federation, id))
}

/// The cheapest list price per card-hour of a pool's models (how usage agents reported before
/// the platform metered runs was priced).
fn cheapest_list_price(ctl: &Control, name: &str) -> u64 {
    let Some((_, pool)) = ctl.federation.pools().find(|(_, p)| p.name == name) else { return 0 };
    pool.prices.card_hour_fen.values().min().map_or(0, |&p| u64::try_from(p).unwrap_or(0))
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
pub async fn bill(ctl: &Control) -> Result<usize, Error> {
    let mut cursor = ctl.biller.cursor.lock().await;
    let mut rated = 0;
    loop {
        let page = ctl.store.usage_page(cursor.clone(), LEDGER_PAGE_MAX).await?;
        let Some(last) = page.last() else { break };
        let next = (last.at_ms, last.source.clone(), last.event_id.clone());
        let known: Vec<bool> =
            ctl.read_books(|books| page.iter().map(|u| books.is_rated(&u.source, &u.event_id)).collect()).await?;
        let mut usages = Vec::new();
        for (u, known) in page.iter().zip(known) {
            if !known {
                usages.push(usage_of(ctl, u).await?);
            }
        }
        if !usages.is_empty() {
            let fee = ctl.config.platform_fee_bps;
            let now = ctl.now_ms();
            let results = ctl
                .write_books("biller", move |books| {
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

async fn usage_of(ctl: &Control, u: &UsageRecord) -> Result<Usage, Error> {
    let job = ctl
        .store
        .job(u.job_id)
        .await?
        .ok_or_else(|| Error::unavailable(format!("usage for unknown job {}", u.job_id)))?;
    // A pool no longer in the federation: its facts are the name alone.
    let pool = pool_facts(ctl, &u.pool).unwrap_or_else(|| PoolFacts {
        pool: u.pool.clone(),
        provider: String::new(),
        city: String::new(),
        cards: 0,
        domestic: false,
    });
    let card_ms = u64::try_from(u.accelerator_ms).unwrap_or(0);
    if let Some(run) = &u.run {
        // A metered run: its time at the rate the platform recorded at placement.
        return Ok(Usage {
            source: u.source.clone(),
            event_id: u.event_id.clone(),
            job: u.job_id,
            tenant: job.tenant_id.0,
            pool,
            contract: run.contract.clone(),
            card_ms,
            price_fen_per_card_hour: 0,
            at_ms: u.at_ms,
            run: Some(RunMeter {
                ms: u64::try_from(run.run_ms).unwrap_or(0),
                rate_millifen_per_hour: u64::try_from(run.rate_millifen_per_hour).unwrap_or(0),
            }),
        });
    }
    // Reported by an agent before the platform metered runs itself: card-ms at the contract's
    // price, or the pool's cheapest list price, as it was rated then.
    let mut price = cheapest_list_price(ctl, &u.pool);
    let named: Option<String> =
        serde_json::from_str::<suanwang_api::jobs::JobRequest>(&job.spec).ok().and_then(|r| r.contract);
    let mut contract = format!("job:{}", u.job_id);
    if let Some(name) = named {
        let n: Option<u64> = name.strip_prefix("contract:").and_then(|n| n.parse().ok());
        let c = match n {
            Some(n) => ctl.read_books(|books| books.contract(n).cloned()).await?,
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
        tenant: job.tenant_id.0,
        pool,
        contract,
        card_ms,
        price_fen_per_card_hour: price,
        at_ms: u.at_ms,
        run: None,
    })
}

/// Ends the year of every programme whose year is over (the leader does it once a pass).
pub async fn expire_ended_programs(ctl: &Control) -> Result<Vec<String>, Error> {
    let now = ctl.now_ms();
    let due: Vec<String> = ctl
        .read_books(|books| {
            books
                .programs()
                .filter(|p| !p.expired && now >= suanwang_billing::rating::year_start_ms(p.program.fiscal_year + 1))
                .map(|p| p.program.id.clone())
                .collect()
        })
        .await?;
    for id in &due {
        let id = id.clone();
        ctl.write_books("biller", move |books| books.expire_program(&id, now)).await??;
    }
    Ok(due)
}

/// The biller task: while this server leads, rates new usage every `billing_interval` and ends
/// the year of programmes whose year is over.
pub async fn run_biller(ctl: Control) {
    loop {
        tokio::time::sleep(ctl.config.billing_interval).await;
        if !ctl.is_leader() {
            continue;
        }
        if let Err(e) = bill(&ctl).await {
            tracing::warn!(error = %e.message, "billing pass failed; the next one retries");
        }
        match expire_ended_programs(&ctl).await {
            Ok(ended) if !ended.is_empty() => tracing::info!(?ended, "programmes' years ended"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "cannot end programmes' years; the next pass retries"),
        }
    }
}

// ------------------------------------------------------------------------ balances and invoices

fn tenant_visible(caller: &Caller, action: Action, tenant: i64) -> Result<(), Error> {
    require(caller, action)?;
    if may(caller, action, Owner::tenant(TenantId(tenant))) {
        Ok(())
    } else {
        Err(Error::not_found(format!("tenant {tenant}")))
    }
}

/// A tenant's money (the tenant, operators, auditors).
pub async fn balance(ctl: &Control, caller: &Caller, tenant: i64) -> Result<BalanceView, Error> {
    tenant_visible(caller, Action::ReadTenantMoney, tenant)?;
    ctl.store.tenant(TenantId(tenant)).await?.ok_or_else(|| Error::not_found(format!("tenant {tenant}")))?;
    ctl.read_books(|books| {
        let a = books.ledger().account(chart::tenant_cash(tenant).id);
        BalanceView {
            tenant,
            balance_fen: a.map_or(0, |a| a.credit_balance_fen()),
            charged_fen: a.map_or(0, |a| a.debits_posted_fen),
            credited_fen: a.map_or(0, |a| a.credits_posted_fen),
        }
    })
    .await
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > KEY_MAX || key.contains('\0') {
        return Err(Error::bad_request("invalid_key", format!("key: 1–{KEY_MAX} characters")).at("key"));
    }
    Ok(())
}

/// Records money a tenant paid in (operators).
pub async fn payment(ctl: &Control, caller: &Caller, tenant: i64, body: Movement) -> Result<BalanceView, Error> {
    require(caller, Action::Pay)?;
    check_key(&body.key)?;
    ctl.store.tenant(TenantId(tenant)).await?.ok_or_else(|| Error::not_found(format!("tenant {tenant}")))?;
    let now = ctl.now_ms();
    ctl.write_books(&caller.actor(), move |books| books.top_up(tenant, body.amount_fen, &body.key, now)).await??;
    balance(ctl, caller, tenant).await
}

fn pool_visible(ctl: &Control, caller: &Caller, action: Action, pool: &str) -> Result<(), Error> {
    require(caller, action)?;
    let known = ctl.federation.pools().any(|(_, p)| p.name == pool);
    if known && may(caller, action, Owner::pool(pool)) {
        Ok(())
    } else {
        Err(Error::not_found(format!("pool {pool:?}")))
    }
}

/// What a pool's provider has earned (its provider, operators, auditors).
pub async fn earnings(ctl: &Control, caller: &Caller, pool: &str) -> Result<EarningsView, Error> {
    pool_visible(ctl, caller, Action::ReadEarnings, pool)?;
    let fee = ctl.config.platform_fee_bps;
    ctl.read_books(|books| {
        let a = books.ledger().account(chart::provider_payable(pool).id);
        EarningsView {
            pool: pool.to_owned(),
            earned_fen: a.map_or(0, |a| a.credits_posted_fen),
            paid_out_fen: a.map_or(0, |a| a.debits_posted_fen),
            owed_fen: a.map_or(0, |a| a.credit_balance_fen()),
            platform_fee_bps: fee,
        }
    })
    .await
}

/// Pays a provider, at most what it is owed (operators).
pub async fn payout(ctl: &Control, caller: &Caller, pool: &str, body: Movement) -> Result<EarningsView, Error> {
    pool_visible(ctl, caller, Action::Payout, pool)?;
    check_key(&body.key)?;
    let now = ctl.now_ms();
    let name = pool.to_owned();
    ctl.write_books(&caller.actor(), move |books| books.payout(&name, body.amount_fen, &body.key, now)).await??;
    earnings(ctl, caller, pool).await
}

/// Invoices (a tenant sees its own; operators and auditors anyone's, or `tenant`'s).
pub async fn invoices(ctl: &Control, caller: &Caller, tenant: Option<i64>) -> Result<Vec<InvoiceSummary>, Error> {
    let scope = require(caller, Action::ReadTenantMoney)?;
    let tenant = match scope {
        crate::access::Scope::All => tenant,
        _ => Some(caller.tenant().ok_or_else(|| Error::forbidden("this token names no tenant"))?.0),
    };
    let list = ctl.read_books(|books| books.invoices(tenant)).await?;
    Ok(list
        .into_iter()
        .map(|(tenant, period, amount_fen, subsidy_fen)| InvoiceSummary {
            tenant,
            period,
            amount_fen,
            subsidy_fen,
            tenant_share_fen: amount_fen - subsidy_fen,
        })
        .collect())
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
            .map(|s| SubsidyView { program: s.program.clone(), claim: s.claim, subsidy_fen: s.subsidy_fen })
            .collect(),
    }
}

/// A tenant's invoice for a month.
pub async fn invoice(ctl: &Control, caller: &Caller, tenant: i64, period: &str) -> Result<InvoiceView, Error> {
    tenant_visible(caller, Action::ReadTenantMoney, tenant)?;
    if !is_period(period) {
        return Err(Error::bad_request("invalid_period", format!("period {period:?}: expected YYYY-MM")).at("period"));
    }
    let lines: Vec<LineView> =
        ctl.read_books(|books| books.invoice(tenant, period).into_iter().map(line_view).collect()).await?;
    if lines.is_empty() {
        return Err(Error::new(
            Kind::NotFound,
            "invoice_not_found",
            format!("tenant {tenant} has no invoice for {period}"),
        ));
    }
    let amount_fen = lines.iter().map(|l| l.amount_fen).sum();
    let subsidy_fen = lines.iter().map(|l| l.subsidy_fen).sum();
    Ok(InvoiceView {
        summary: InvoiceSummary {
            tenant,
            period: period.to_owned(),
            amount_fen,
            subsidy_fen,
            tenant_share_fen: amount_fen - subsidy_fen,
        },
        lines,
    })
}

// ----------------------------------------------------------------------------------- programmes

fn program_view(books: &Books, caller: &Caller, id: &str) -> Option<ProgramView> {
    let p = books.program(id)?;
    Some(ProgramView {
        program: p.program.clone(),
        expired: p.expired,
        report: if may(caller, Action::ReadProgramReport, Owner::program(id)) { books.report(id) } else { None },
    })
}

/// Loads a programme and funds its budget (operators); `created` is false for the same
/// programme again.
pub async fn load_program(ctl: &Control, caller: &Caller, program: Program) -> Result<(ProgramView, bool), Error> {
    require(caller, Action::LoadProgram)?;
    let id = program.id.clone();
    let now = ctl.now_ms();
    let (existed, view) = ctl
        .write_books(&caller.actor(), {
            let caller = caller.clone();
            move |books| {
                let existed = books.program(&program.id).is_some();
                books.load_program(program, now).map(|()| (existed, program_view(books, &caller, &id)))
            }
        })
        .await??;
    let view = view.ok_or_else(|| Error::unavailable("the programme vanished"))?;
    Ok((view, !existed))
}

/// Every programme (anyone signed in may read the rules; the figures are for its readers).
pub async fn list_programs(ctl: &Control, caller: &Caller) -> Result<Vec<ProgramView>, Error> {
    require(caller, Action::ReadCatalogue)?;
    ctl.read_books(|books| {
        let ids: Vec<String> = books.programs().map(|p| p.program.id.clone()).collect();
        ids.iter().filter_map(|id| program_view(books, caller, id)).collect()
    })
    .await
}

fn program_not_found(id: &str) -> Error {
    Error::new(Kind::NotFound, "program_not_found", format!("no programme {id}"))
}

/// One programme.
pub async fn show_program(ctl: &Control, caller: &Caller, id: &str) -> Result<ProgramView, Error> {
    require(caller, Action::ReadCatalogue)?;
    ctl.read_books(|books| program_view(books, caller, id)).await?.ok_or_else(|| program_not_found(id))
}

/// Ends a programme's year (operators, its administrator).
pub async fn expire_program(ctl: &Control, caller: &Caller, id: &str) -> Result<ProgramView, Error> {
    require(caller, Action::ExpireProgram)?;
    if !may(caller, Action::ExpireProgram, Owner::program(id)) {
        return Err(Error::forbidden("only the operator or the programme's administrator ends its year"));
    }
    let now = ctl.now_ms();
    let id = id.to_owned();
    let view = ctl
        .write_books(&caller.actor(), {
            let caller = caller.clone();
            move |books| books.expire_program(&id, now).map(|()| program_view(books, &caller, &id))
        })
        .await??;
    view.ok_or_else(|| Error::unavailable("the programme vanished"))
}

/// A tenant applies; applying again returns the first application (`created` false).
pub async fn apply(
    ctl: &Control,
    caller: &Caller,
    program: &str,
    body: NewApplication,
) -> Result<(Application, bool), Error> {
    require(caller, Action::ApplyAndClaim)?;
    let tenant_id = caller.tenant().ok_or_else(|| Error::forbidden("the token names no tenant"))?;
    let t = ctl.store.tenant(tenant_id).await?.ok_or_else(|| Error::not_found(format!("tenant {tenant_id}")))?;
    let facts = TenantFacts { id: t.id.0, kind: t.kind.as_str().to_owned(), registration_city: t.registration_city };
    if body.affiliations.len() > 100 || body.affiliations.iter().any(|a| a.len() > 200) {
        return Err(
            Error::bad_request("invalid_application", "at most 100 affiliations of 200 characters").at("affiliations")
        );
    }
    let now = ctl.now_ms();
    let program = program.to_owned();
    let (before, application) = ctl
        .write_books(&caller.actor(), move |books| {
            let before = books.applications().len();
            books.apply(&program, facts, body.affiliations, now).map(|a| (before, a))
        })
        .await??;
    let created = application.id as usize > before;
    Ok((application, created))
}

fn sees_record(caller: &Caller, program: &str, tenant: i64) -> bool {
    may(caller, Action::ReadVouchers, Owner { tenant: Some(TenantId(tenant)), pool: None, program: Some(program) })
}

/// The applications the caller may see.
pub async fn list_applications(
    ctl: &Control,
    caller: &Caller,
    program: Option<&str>,
) -> Result<Vec<Application>, Error> {
    require(caller, Action::ReadVouchers)?;
    ctl.read_books(|books| {
        books
            .applications()
            .iter()
            .filter(|a| program.is_none_or(|p| p == a.program))
            .filter(|a| sees_record(caller, &a.program, a.tenant.id))
            .cloned()
            .collect()
    })
    .await
}

/// Approves or rejects an application (its programme's administrator, operators).
pub async fn decide(ctl: &Control, caller: &Caller, id: u64, body: DecisionBody) -> Result<Application, Error> {
    require(caller, Action::Decide)?;
    let program = ctl.read_books(|books| books.application(id).map(|a| a.program.clone())).await?;
    let program = program
        .filter(|p| sees_record(caller, p, -1))
        .ok_or_else(|| Error::new(Kind::NotFound, "application_not_found", format!("no application {id}")))?;
    if !may(caller, Action::Decide, Owner::program(&program)) {
        return Err(Error::forbidden("only the programme's administrator or the operator decides"));
    }
    if body.reason.len() > 1_000 {
        return Err(Error::bad_request("invalid_decision", "the reason is at most 1,000 characters").at("reason"));
    }
    let now = ctl.now_ms();
    ctl.write_books(&caller.actor(), move |books| books.decide(id, body.approve, &body.reason, now))
        .await?
        .map_err(Error::from)
}

/// A market contract (`contract:ID`) of the tenant's, or `contract_not_found`.
pub async fn tenant_contract(
    ctl: &Control,
    tenant: TenantId,
    id: &str,
) -> Result<suanwang_billing::market::MarketContract, Error> {
    let not_found = || Error::new(Kind::NotFound, "contract_not_found", format!("no contract {id:?} of yours"));
    let n: u64 = id.strip_prefix("contract:").and_then(|n| n.parse().ok()).ok_or_else(not_found)?;
    ctl.read_books(|books| books.contract(n).cloned()).await?.filter(|c| c.tenant == tenant.0).ok_or_else(not_found)
}

async fn resolve_contract(ctl: &Control, tenant: TenantId, id: &str) -> Result<Contract, Error> {
    let not_found = || {
        Error::new(
            Kind::NotFound,
            "contract_not_found",
            format!(
                "no contract {id:?} of yours (contracts are contract:ID from the market, or job:ID for on-demand jobs)"
            ),
        )
    };
    if id.starts_with("contract:") {
        let c = tenant_contract(ctl, tenant, id).await?;
        let pool = pool_facts(ctl, &c.pool);
        return Ok(Contract {
            id: id.to_owned(),
            tenant: tenant.0,
            pool,
            term_days: c.term_days(),
            value_fen: Some(c.value_fen()),
        });
    }
    let job_id: i64 = id.strip_prefix("job:").and_then(|n| n.parse().ok()).ok_or_else(not_found)?;
    let job = ctl.store.job(job_id).await?.filter(|j| j.tenant_id == tenant).ok_or_else(not_found)?;
    let pool = job.pool.as_deref().and_then(|p| pool_facts(ctl, p));
    // An on-demand job is a contract for as long as it runs: one day counts for the term.
    Ok(Contract { id: id.to_owned(), tenant: tenant.0, pool, term_days: 1, value_fen: None })
}

/// A tenant claims a voucher: reserves its value from the budget and the firm's cap. The same
/// claim again returns the first (`created` false).
pub async fn claim(ctl: &Control, caller: &Caller, program: &str, body: NewClaim) -> Result<(Claim, bool), Error> {
    require(caller, Action::ApplyAndClaim)?;
    let tenant = caller.tenant().ok_or_else(|| Error::forbidden("the token names no tenant"))?;
    let contract = resolve_contract(ctl, tenant, &body.contract).await.map_err(|e| e.at("contract"))?;
    let now = ctl.now_ms();
    let program = program.to_owned();
    let (before, claim) = ctl
        .write_books(&caller.actor(), move |books| {
            let before = books.claims().len();
            books.file_claim(&program, &contract, body.amount_fen, now).map(|c| (before, c))
        })
        .await??;
    let created = claim.id as usize > before;
    Ok((claim, created))
}

/// The claims the caller may see.
pub async fn list_claims(ctl: &Control, caller: &Caller, program: Option<&str>) -> Result<Vec<Claim>, Error> {
    require(caller, Action::ReadVouchers)?;
    ctl.read_books(|books| {
        books
            .claims()
            .iter()
            .filter(|c| program.is_none_or(|p| p == c.program))
            .filter(|c| sees_record(caller, &c.program, c.tenant))
            .cloned()
            .collect()
    })
    .await
}

fn claim_not_found(id: u64) -> Error {
    Error::new(Kind::NotFound, "claim_not_found", format!("no claim {id}"))
}

/// One claim.
pub async fn show_claim(ctl: &Control, caller: &Caller, id: u64) -> Result<Claim, Error> {
    require(caller, Action::ReadVouchers)?;
    ctl.read_books(|books| books.claim(id).filter(|c| sees_record(caller, &c.program, c.tenant)).cloned())
        .await?
        .ok_or_else(|| claim_not_found(id))
}

/// Redeems a claim against an invoice line of its contract (the claim's tenant, its programme's
/// administrator, operators). Proof of delivery is the platform's own: the line's usage was
/// metered and the job succeeded.
pub async fn redeem(ctl: &Control, caller: &Caller, id: u64, body: NewRedemption) -> Result<RedemptionView, Error> {
    require(caller, Action::Redeem)?;
    if !is_period(&body.period) {
        return Err(
            Error::bad_request("invalid_period", format!("period {:?}: expected YYYY-MM", body.period)).at("period")
        );
    }
    let claim = ctl
        .read_books(|books| books.claim(id).filter(|c| sees_record(caller, &c.program, c.tenant)).cloned())
        .await?
        .ok_or_else(|| claim_not_found(id))?;
    let owner = Owner { tenant: Some(TenantId(claim.tenant)), pool: None, program: Some(&claim.program) };
    if !may(caller, Action::Redeem, owner) {
        return Err(Error::forbidden("only the claim's tenant, its programme's administrator or the operator redeems"));
    }
    let job = ctl.store.job(body.job).await?.filter(|j| j.tenant_id.0 == claim.tenant).ok_or_else(|| {
        Error::new(Kind::NotFound, "invoice_not_found", format!("no invoice line for job {}", body.job)).at("job")
    })?;
    if job.state != JobState::Succeeded {
        return Err(Error::conflict(
            "not_delivered",
            format!(
                "job {} is {}; a redemption needs proof of delivery (the job succeeded)",
                job.id,
                job.state.as_str()
            ),
        )
        .at("job"));
    }
    let pool = body.pool.or(job.pool).unwrap_or_default();
    let key = LineKey { tenant: claim.tenant, period: body.period, job: body.job, pool };
    let now = ctl.now_ms();
    let (subsidy_fen, claim) = ctl.write_books(&caller.actor(), move |books| books.redeem(id, &key, now)).await??;
    Ok(RedemptionView { subsidy_fen, claim })
}
