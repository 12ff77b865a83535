//! The money invariants of issue 5, over random sequences of operations with restarts (the books
//! rebuilt from their stored history) in between: the ledger balances, no limit breaks, a
//! programme never pays past its budget, a firm never past its cap, a voucher never past its face
//! value, one claim per contract, usage bills once, and subsidy + tenant share = line; a refused
//! command moves no money.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use suanwang_billing::books::ClaimState;
use suanwang_billing::program::{Eligibility, Expiry, RatioRule, Subsidy};
use suanwang_billing::rating::{cost_fen, run_cost_fen, year_start_ms};
use suanwang_billing::{Books, Contract, LineKey, PoolFacts, Program, RunMeter, TenantFacts, Usage, chart};

#[derive(Clone, Debug)]
enum Op {
    Rate { event: u8, job: u8, pool: u8, card_ms: u64, price: u64 },
    Apply { program: u8, tenant: u8 },
    Decide { application: u8, approve: bool },
    Claim { program: u8, job: u8, face: u64 },
    Redeem { claim: u8, job: u8, pool: u8 },
    TopUp { tenant: u8, amount: u64 },
    Payout { pool: u8, amount: u64 },
    Expire { program: u8 },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        9 => (0u8..24, 0u8..6, 0u8..3, 0u64..20_000_000, 0u64..50_000)
            .prop_map(|(event, job, pool, card_ms, price)| Op::Rate { event, job, pool, card_ms, price }),
        4 => (0u8..2, 1u8..4).prop_map(|(program, tenant)| Op::Apply { program, tenant }),
        5 => (any::<u8>(), prop_oneof![3 => Just(true), 1 => Just(false)])
            .prop_map(|(application, approve)| Op::Decide { application, approve }),
        8 => (0u8..2, 0u8..6, 0u64..60_000).prop_map(|(program, job, face)| Op::Claim { program, job, face }),
        10 => (any::<u8>(), 0u8..6, 0u8..3).prop_map(|(claim, job, pool)| Op::Redeem { claim, job, pool }),
        1 => (1u8..4, 0u64..100_000).prop_map(|(tenant, amount)| Op::TopUp { tenant, amount }),
        1 => (0u8..3, 0u64..50_000).prop_map(|(pool, amount)| Op::Payout { pool, amount }),
        1 => (0u8..2).prop_map(|program| Op::Expire { program }),
        1 => Just(Op::Restart),
    ]
}

fn programs() -> [Program; 2] {
    let base = Program {
        id: "p0".into(),
        name: "P0".into(),
        issuer: "City".into(),
        fiscal_year: 2026,
        budget_fen: 150_000,
        funders: Vec::new(),
        eligibility: Eligibility::default(),
        subsidy: Subsidy {
            default_ratio_bps: 2_000,
            rules: vec![RatioRule { domestic_accelerator: Some(true), tenant_kinds: Vec::new(), ratio_bps: 3_000 }],
        },
        firm_cap_fen: Some(60_000),
        max_term_days: Some(365),
        stacking: true,
        expiry: Expiry::Budget,
        source: String::new(),
    };
    let other = Program {
        id: "p1".into(),
        budget_fen: 90_000,
        firm_cap_fen: None,
        stacking: false,
        expiry: Expiry::Breakage,
        subsidy: Subsidy { default_ratio_bps: 6_000, rules: Vec::new() },
        ..base.clone()
    };
    [base, other]
}

fn pool(i: u8) -> PoolFacts {
    PoolFacts { pool: format!("pool{i}"), provider: format!("co{i}"), city: "X".into(), cards: 100, domestic: i == 0 }
}

/// The rate of a metered run: a function of the job alone, so a retried event is the same event.
fn run_rate(job: i64) -> u64 {
    u64::try_from(job).unwrap_or(0) * 37_000 + 1_000
}

fn tenant_of(job: u8) -> i64 {
    i64::from(job % 3) + 1
}

/// An accepted usage event: job, pool, ms, price, and whether it is a metered run.
type Accepted = (i64, String, u64, u64, bool);

struct Model {
    /// Accepted usage by (source, event).
    usage: HashMap<(String, String), Accepted>,
    now: i64,
}

fn check(books: &Books, model: &Model) -> Result<(), TestCaseError> {
    let ledger = books.ledger();
    prop_assert!(ledger.trial_balance().balances());
    for a in ledger.accounts() {
        prop_assert!(a.within_limit(), "account {:?} breaks its limit", a);
    }
    for p in programs() {
        let Some(r) = books.report(&p.id) else { continue };
        prop_assert!(r.paid_fen + r.reserved_fen + r.breakage_fen <= p.budget_fen);
        let b = ledger.account(chart::program_budget(&p.id).id).unwrap();
        prop_assert_eq!(b.credits_posted_fen, u128::from(p.budget_fen));
        prop_assert_eq!(b.debits_posted_fen, u128::from(r.paid_fen + r.breakage_fen));
        prop_assert_eq!(b.debits_pending_fen, u128::from(r.reserved_fen));
        for f in &r.firms {
            if let Some(cap) = f.cap_fen {
                prop_assert!(f.reserved_fen + f.redeemed_fen <= cap, "firm {} past its cap", f.tenant);
            }
        }
    }
    let mut contracts = HashSet::new();
    for c in books.claims() {
        prop_assert!(contracts.insert(c.contract.clone()), "two claims for {}", c.contract);
        prop_assert!(c.redeemed_fen <= c.face_fen);
        let v = ledger.account(chart::voucher(c.id).id).unwrap();
        prop_assert_eq!(v.credits_posted_fen, u128::from(c.redeemed_fen));
        prop_assert_eq!(v.debits_posted_fen, u128::from(c.redeemed_fen));
        if c.state != ClaimState::Open {
            prop_assert_eq!(v.credits_pending_fen, 0);
        }
    }
    // Usage bills once: each meter is charged the floor of its exact cost.
    // Metered runs (even jobs here) at the job's rate, the rest as card-ms at the price.
    let mut meters: BTreeMap<(i64, String, u64, bool), u64> = BTreeMap::new();
    for (job, pool, ms, price, run) in model.usage.values() {
        let price = if *run { run_rate(*job) } else { *price };
        *meters.entry((*job, pool.clone(), price, *run)).or_default() += ms;
    }
    let expected: u64 = meters
        .iter()
        .map(|((_, _, price, run), ms)| if *run { run_cost_fen(*ms, *price) } else { cost_fen(*ms, *price) })
        .sum();
    let billed: u64 = books.all_lines().map(|l| l.amount_fen).sum();
    prop_assert_eq!(billed, expected);
    for l in books.all_lines() {
        prop_assert!(l.subsidy_fen() <= l.amount_fen);
        prop_assert_eq!(l.subsidy_fen() + l.tenant_share_fen(), l.amount_fen);
    }
    Ok(())
}

fn restart(books: &Books) -> Books {
    let mut again = Books::new();
    let fresh = Books::new().lines().len();
    for line in &books.lines()[fresh..] {
        again.replay_line(line).unwrap();
    }
    again
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn money_invariants_hold_after_every_operation(ops in proptest::collection::vec(op(), 1..120)) {
        let mut books = Books::new();
        let mut model = Model { usage: HashMap::new(), now: year_start_ms(2026) + 86_400_000 };
        for p in programs() {
            books.load_program(p, model.now).unwrap();
        }
        // Tenants 1 and 2 start approved in both programmes; tenant 3 must apply.
        for (p, t) in [("p0", 1), ("p0", 2), ("p1", 1), ("p1", 2)] {
            let tenant = TenantFacts { id: t, kind: "sme".into(), registration_city: "X".into() };
            let a = books.apply(p, tenant, vec!["co2".into()], model.now).unwrap();
            books.decide(a.id, true, "", model.now).unwrap();
        }
        for op in ops {
            let before = books.ledger().trial_balance();
            let accounts_before: Vec<_> = books.ledger().accounts().copied().collect();
            let now = model.now;
            let result = match op.clone() {
                Op::Rate { event, job, pool: p, card_ms, price } => {
                    let usage = Usage {
                        source: format!("agent:pool{p}"),
                        event_id: format!("e{event}"),
                        job: i64::from(job),
                        tenant: tenant_of(job),
                        pool: pool(p),
                        contract: format!("job:{job}"),
                        card_ms,
                        price_fen_per_card_hour: price,
                        at_ms: now,
                        run: (job % 2 == 0)
                            .then(|| RunMeter { ms: card_ms, rate_millifen_per_hour: run_rate(i64::from(job)) }),
                    };
                    let key = (usage.source.clone(), usage.event_id.clone());
                    let known = model.usage.get(&key).cloned();
                    let events_before = books.ledger().events().len();
                    let r = books.rate(usage, 500, now);
                    match (&known, &r) {
                        (None, Ok((_, new))) => {
                            prop_assert!(*new);
                            model.usage.insert(key, (i64::from(job), format!("pool{p}"), card_ms, price, job % 2 == 0));
                        }
                        (Some((j, pl, ms, _, _)), r) => {
                            let same = *j == i64::from(job) && *pl == format!("pool{p}") && *ms == card_ms;
                            prop_assert_eq!(r.is_ok(), same, "a retry is accepted exactly when it is the same event");
                            prop_assert_eq!(books.ledger().events().len(), events_before, "a retry moves nothing");
                        }
                        (None, Err(e)) => prop_assert!(false, "new usage refused: {e}"),
                    }
                    r.map(|_| ())
                }
                Op::Apply { program, tenant } => books
                    .apply(&format!("p{program}"), TenantFacts { id: i64::from(tenant), kind: "sme".into(), registration_city: "X".into() }, vec!["co2".into()], now)
                    .map(|_| ()),
                Op::Decide { application, approve } => {
                    // Mostly an application that exists; now and then one that does not.
                    let n = books.applications().len() as u64;
                    let id = if n == 0 || application == 255 { 99 } else { u64::from(application) % n + 1 };
                    books.decide(id, approve, "", now).map(|_| ())
                }
                Op::Claim { program, job, face } => {
                    let contract = Contract { id: format!("job:{job}"), tenant: tenant_of(job), pool: None, term_days: 1, value_fen: None };
                    books.file_claim(&format!("p{program}"), &contract, face, now).map(|_| ())
                }
                Op::Redeem { claim, job, pool: p } => {
                    // Mostly a line of the claim's own contract; now and then another job's.
                    let n = books.claims().len() as u64;
                    let claim = if n == 0 { 99 } else { u64::from(claim) % n + 1 };
                    let job = match books.claim(claim) {
                        Some(c) if p != 2 || job % 2 == 0 => c.contract[4..].parse::<u8>().unwrap(),
                        _ => job,
                    };
                    let key = LineKey { tenant: tenant_of(job), period: suanwang_billing::rating::period(now), job: i64::from(job), pool: format!("pool{p}") };
                    books.redeem(claim, &key, now).map(|_| ())
                }
                Op::TopUp { tenant, amount } => books.top_up(i64::from(tenant), amount, &format!("k{amount}"), now),
                Op::Payout { pool: p, amount } => books.payout(&format!("pool{p}"), amount, &format!("k{amount}"), now),
                Op::Expire { program } => {
                    model.now = model.now.max(year_start_ms(2027));
                    books.expire_program(&format!("p{program}"), model.now)
                }
                Op::Restart => {
                    let again = restart(&books);
                    prop_assert_eq!(again.ledger(), books.ledger());
                    prop_assert_eq!(again.claims(), books.claims());
                    books = again;
                    Ok(())
                }
            };
            if let Err(e) = &result {
                prop_assert_eq!(books.ledger().trial_balance(), before, "refused {:?} ({}) moved money", op, e.code);
                let after: Vec<_> = books.ledger().accounts().copied().collect();
                prop_assert_eq!(after, accounts_before, "refused {:?} changed the accounts", op);
            }
            check(&books, &model)?;
        }
    }
}
