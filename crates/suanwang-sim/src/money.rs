//! The money side of a queue simulation: the same books as the server (`suanwang-billing`) rate
//! every run's usage, and voucher programmes pay their share, so planners see cost, subsidy per
//! programme and budget left for a trace.
//!
//! How a run becomes money (the assumptions, also in docs/programs.md):
//! - **Calendar.** The trace is replayed as if it began on 1 January (China Standard Time) of the
//!   first programme's fiscal year: trace second `t` is `year_start + t`.
//! - **Tenants.** A trace tenant whose name matches a federation tenant is that tenant; the others
//!   take the federation's tenants' identities in turn (trace tenant `i` is tenant `i mod n`), or,
//!   in a federation without tenants, are enterprises registered nowhere (eligible for nothing that
//!   asks for a city).
//! - **Applications.** Every tenant applies to every programme when the trace starts; the
//!   administrators approve every eligible applicant.
//! - **Claims.** When a job finishes, its tenant claims for it (the job is the contract; one claim
//!   per contract) from the programme that would pay the most: the face value is the programme's
//!   ratio of the job's charges, capped by what is left of the budget and of the firm's cap (ties:
//!   the programme given first). The claim is then redeemed against each of the job's invoice
//!   lines. A programme whose year ended pays nothing more.

use std::collections::BTreeMap;

use suanwang_billing::books::ErrorKind;
use suanwang_billing::rating::year_start_ms;
use suanwang_billing::{Books, Contract, LineKey, PoolFacts, Program, RunMeter, TenantFacts, Usage};
use suanwang_ledger::split::split_floor;
use suanwang_model::federation::{Federation, PoolId};

use crate::queue::{QueueRun, RunUsage};

/// What one programme did over the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramOutcome {
    /// Id.
    pub program: String,
    /// Budget.
    pub budget_fen: u64,
    /// Paid in subsidies.
    pub paid_fen: u64,
    /// Still reserved by claims at the end.
    pub reserved_fen: u64,
    /// Neither paid nor reserved.
    pub left_fen: u64,
    /// Claims made.
    pub claims: u64,
    /// Tenants approved.
    pub approved: u64,
    /// Claims refused, by code (`exceeds_budget`, `program_expired`, …).
    pub refused: BTreeMap<String, u64>,
}

/// The money of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoneyReport {
    /// Charged for all usage.
    pub cost_fen: u64,
    /// Paid by programmes.
    pub subsidy_fen: u64,
    /// Paid by tenants: cost − subsidy.
    pub tenant_share_fen: u64,
    /// The platform's fee.
    pub platform_fee_fen: u64,
    /// Per programme, in the order given.
    pub programs: Vec<ProgramOutcome>,
    /// The ledger's debits equal its credits, posted and pending.
    pub balanced: bool,
}

/// A pool's facts for the money rules (its accelerator's origin, its cards, its city).
pub fn pool_facts(federation: &Federation, id: PoolId) -> PoolFacts {
    let pool = federation.pool(id);
    let catalog = federation.catalog();
    let (mut cards, mut domestic) = (0u32, false);
    for node in &pool.nodes {
        if let Some(model) = node.accelerator {
            cards += u32::from(node.accelerators);
            domestic |= catalog.get(model).domestic;
        }
    }
    PoolFacts {
        pool: pool.name.clone(),
        provider: pool.provider.clone(),
        city: federation.site(pool.site).city.clone(),
        cards,
        domestic,
    }
}

/// The card-milliseconds a run held (what an invoice line shows), as the server counts them.
pub fn card_ms(u: &RunUsage) -> u64 {
    u64::try_from(u128::from(u.allocation.card_milli) * u128::from(u.ms) / 1000).unwrap_or(u64::MAX)
}

/// The list price per card-hour of the model a run's cards were (0 for CPU-only runs).
fn list_price(federation: &Federation, u: &RunUsage) -> u64 {
    let prices = &federation.pool(u.pool).prices;
    u.allocation.model.and_then(|m| prices.card_hour_fen.get(&m)).map_or(0, |&p| u64::try_from(p).unwrap_or(0))
}

/// Rates `run`'s usage and applies `programs` (loaded in this order).
pub fn settle(
    federation: &Federation,
    tenant_names: &[String],
    run: &QueueRun,
    programs: &[Program],
    platform_fee_bps: u32,
) -> Result<MoneyReport, String> {
    let t0 = year_start_ms(programs.first().map_or(2026, |p| p.fiscal_year));
    let at = |s: u64| t0.saturating_add(i64::try_from(s).unwrap_or(i64::MAX / 2).saturating_mul(1000));
    let mut books = Books::new();
    for p in programs {
        books.load_program(p.clone(), t0).map_err(|e| format!("programme {}: {}", p.id, e.message))?;
    }
    let fed_tenants = federation.tenants();
    let tenants: Vec<TenantFacts> = tenant_names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let t = fed_tenants
                .iter()
                .find(|t| &t.name == name)
                .or_else(|| (!fed_tenants.is_empty()).then(|| &fed_tenants[i % fed_tenants.len()]));
            match t {
                Some(t) => TenantFacts {
                    id: i as i64 + 1,
                    kind: t.kind.as_str().to_owned(),
                    registration_city: t.registration_city.clone(),
                },
                None => {
                    TenantFacts { id: i as i64 + 1, kind: "enterprise".to_owned(), registration_city: String::new() }
                }
            }
        })
        .collect();
    let mut refused: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for p in programs {
        for t in &tenants {
            if let Ok(a) = books.apply(&p.id, t.clone(), Vec::new(), t0) {
                books.decide(a.id, true, "eligible", t0).map_err(|e| e.message)?;
            }
        }
    }
    let approved = |books: &Books, program: &str, tenant: i64| {
        books.applications().iter().any(|a| {
            a.program == program
                && a.tenant.id == tenant
                && a.state == suanwang_billing::books::ApplicationState::Approved
        })
    };
    let pools: Vec<PoolFacts> = federation.pools().map(|(id, _)| pool_facts(federation, id)).collect();

    // Jobs in the order they finished (then trace order), so money moves in time order.
    let mut order: Vec<usize> = (0..run.jobs.len()).filter(|&i| !run.jobs[i].usage.is_empty()).collect();
    order.sort_by_key(|&i| (run.jobs[i].usage.iter().map(|u| u.end_s).max().unwrap_or(0), i));
    for i in order {
        let job = &run.jobs[i];
        let tenant = &tenants[job.tenant as usize];
        let mut charged = 0u64;
        for (n, u) in job.usage.iter().enumerate() {
            let usage = Usage {
                source: "simulator".to_owned(),
                event_id: format!("{i}/{n}"),
                job: i as i64,
                tenant: tenant.id,
                pool: pools[u.pool.index()].clone(),
                contract: format!("job:{i}"),
                card_ms: card_ms(u),
                price_fen_per_card_hour: list_price(federation, u),
                at_ms: at(u.end_s),
                run: Some(RunMeter { ms: u.ms, rate_millifen_per_hour: u.rate_millifen_per_hour }),
            };
            charged += books.rate(usage, platform_fee_bps, at(u.end_s)).map_err(|e| e.message)?.0;
        }
        let Some(last) = job.usage.last() else { continue };
        let now = at(last.end_s);
        let pool = &pools[last.pool.index()];
        let mut lines: Vec<LineKey> = job
            .usage
            .iter()
            .map(|u| LineKey {
                tenant: tenant.id,
                period: suanwang_billing::rating::period(at(u.end_s)),
                job: i as i64,
                pool: pools[u.pool.index()].pool.clone(),
            })
            .collect();
        lines.sort();
        lines.dedup();
        let mut best: Option<(u64, &Program)> = None;
        for p in programs {
            if !approved(&books, &p.id, tenant.id) || p.ineligible_pool(pool).is_some() || charged == 0 {
                continue;
            }
            let ratio = p.ratio_bps(&tenant.kind, pool.domestic);
            let left = books.budget_left_fen(&p.id).min(books.cap_left_fen(&p.id, tenant.id).unwrap_or(u64::MAX));
            let face = split_floor(charged, ratio, left).share_fen;
            if face == 0 {
                let why = if left == 0 { "budget_or_cap_used_up" } else { "under_a_fen" };
                *refused.entry(p.id.clone()).or_default().entry(why.to_owned()).or_default() += 1;
            } else if best.is_none_or(|(f, _)| face > f) {
                best = Some((face, p));
            }
        }
        let Some((face, p)) = best else { continue };
        let contract = Contract {
            id: format!("job:{i}"),
            tenant: tenant.id,
            pool: Some(pool.clone()),
            term_days: 1,
            value_fen: None,
        };
        match books.file_claim(&p.id, &contract, face, now) {
            Ok(claim) => {
                for line in &lines {
                    match books.redeem(claim.id, line, now) {
                        Ok(_) => {}
                        Err(e) if e.kind == ErrorKind::Conflict => {
                            *refused.entry(p.id.clone()).or_default().entry(e.code.to_owned()).or_default() += 1;
                        }
                        Err(e) => return Err(e.message),
                    }
                }
            }
            Err(e) => {
                *refused.entry(p.id.clone()).or_default().entry(e.code.to_owned()).or_default() += 1;
            }
        }
    }

    let cost_fen: u64 = books.all_lines().map(|l| l.amount_fen).sum();
    let subsidy_fen: u64 = books.all_lines().map(|l| l.subsidy_fen()).sum();
    let platform_fee_fen = books
        .ledger()
        .account(suanwang_billing::chart::PLATFORM_FEE)
        .map_or(0, |a| u64::try_from(a.credits_posted_fen).unwrap_or(u64::MAX));
    let mut outcomes = Vec::new();
    for p in programs {
        let r = books.report(&p.id).ok_or("a loaded programme has no report")?;
        outcomes.push(ProgramOutcome {
            program: p.id.clone(),
            budget_fen: r.budget_fen,
            paid_fen: r.paid_fen,
            reserved_fen: r.reserved_fen,
            left_fen: r.available_fen,
            claims: r.claims,
            approved: r.applications.get("approved").copied().unwrap_or(0),
            refused: refused.remove(&p.id).unwrap_or_default(),
        });
    }
    Ok(MoneyReport {
        cost_fen,
        subsidy_fen,
        tenant_share_fen: cost_fen - subsidy_fen,
        platform_fee_fen,
        programs: outcomes,
        balanced: books.ledger().trial_balance().balances(),
    })
}
