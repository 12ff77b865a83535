//! The books by example: the shipped programmes load, a voucher's life from application to
//! expiry, and every refusal's code.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use suanwang_billing::books::{ApplicationState, ClaimState};
use suanwang_billing::chart;
use suanwang_billing::rating::year_start_ms;
use suanwang_billing::{Books, Contract, LineKey, PoolFacts, Program, TenantFacts, Usage};

const HOUR_MS: u64 = 3_600_000;

fn now() -> i64 {
    year_start_ms(2026) + 100 * 86_400_000
}

fn programs_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/programs")
}

fn load(name: &str) -> Program {
    Program::from_toml(&std::fs::read_to_string(programs_dir().join(name)).unwrap()).unwrap()
}

fn pool(name: &str, domestic: bool) -> PoolFacts {
    PoolFacts { pool: name.into(), provider: format!("{name}-co"), city: "Hangzhou".into(), cards: 2_000, domestic }
}

fn tenant(id: i64, kind: &str, city: &str) -> TenantFacts {
    TenantFacts { id, kind: kind.into(), registration_city: city.into() }
}

fn usage(event: &str, job: i64, tenant: i64, pool: PoolFacts, card_ms: u64, price: u64) -> Usage {
    Usage {
        source: format!("agent:{}", pool.pool),
        event_id: event.into(),
        job,
        tenant,
        contract: format!("job:{job}"),
        pool,
        card_ms,
        price_fen_per_card_hour: price,
        at_ms: now(),
        run: None,
    }
}

fn job_contract(job: i64, tenant: i64) -> Contract {
    Contract { id: format!("job:{job}"), tenant, pool: None, term_days: 1, value_fen: None }
}

fn line(tenant: i64, job: i64, pool: &str) -> LineKey {
    LineKey { tenant, period: suanwang_billing::rating::period(now()), job, pool: pool.into() }
}

#[test]
fn every_shipped_programme_loads_with_its_published_numbers() {
    let mut names: Vec<String> = std::fs::read_dir(programs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    for city in ["beijing", "shanghai", "hangzhou", "shenzhen", "henan", "chengdu"] {
        assert!(names.contains(&format!("{city}.toml")), "{city} is missing");
    }
    let mut books = Books::new();
    for n in &names {
        books.load_program(load(n), now()).unwrap();
    }
    let hz = load("hangzhou.toml");
    assert_eq!((hz.budget_fen, hz.firm_cap_fen), (25_000_000_000, Some(800_000_000)));
    assert_eq!((hz.ratio_bps("sme", true), hz.ratio_bps("sme", false)), (3_000, 2_000));
    let sz = load("shenzhen.toml");
    assert_eq!(
        (sz.budget_fen, sz.ratio_bps("startup", false), sz.ratio_bps("sme", false)),
        (50_000_000_000, 6_000, 5_000)
    );
    let bj = load("beijing.toml");
    assert_eq!((bj.firm_cap_fen, bj.max_term_days, bj.ratio_bps("sme", true)), (Some(200_000_000), Some(365), 2_000));
    let hn = load("henan.toml");
    assert_eq!((hn.budget_fen, hn.firm_cap_fen, hn.ratio_bps("sme", false)), (5_000_000_000, Some(100_000_000), 2_000));
    assert_eq!(
        hn.funding(),
        vec![("Henan province".into(), 2_500_000_000), ("City governments".into(), 2_500_000_000)]
    );
    assert_eq!(load("shanghai.toml").budget_fen, 60_000_000_000);
    assert_eq!(load("chengdu.toml").budget_fen, 1_000_000_000);
    // Funding put every budget in.
    let tb = books.ledger().trial_balance();
    assert!(tb.balances());
}

#[test]
fn a_voucher_from_application_to_expiry() {
    let mut books = Books::new();
    let hz = load("hangzhou.toml");
    books.load_program(hz, now()).unwrap();
    let a = books.apply("hangzhou-compute", tenant(7, "sme", "Hangzhou"), vec!["Own-Cloud".into()], now()).unwrap();
    assert_eq!(a.state, ApplicationState::Pending);
    // Not yet approved: no claim.
    let err = books.file_claim("hangzhou-compute", &job_contract(1, 7), 10_000, now()).unwrap_err();
    assert_eq!(err.code, "not_approved");
    books.decide(a.id, true, "ok", now()).unwrap();

    // Job 1 runs 10 card-hours at 33.33 yuan on domestic chips: 333.30 yuan.
    let p = pool("ascend-hz", true);
    let (charged, new) = books.rate(usage("e1", 1, 7, p.clone(), 10 * HOUR_MS, 3_333), 500, now()).unwrap();
    assert_eq!((charged, new), (33_330, true));
    // The same event again bills once; another payload under its id is refused.
    assert_eq!(books.rate(usage("e1", 1, 7, p.clone(), 10 * HOUR_MS, 3_333), 500, now()).unwrap(), (33_330, false));
    assert_eq!(
        books.rate(usage("e1", 1, 7, p.clone(), 11 * HOUR_MS, 3_333), 500, now()).unwrap_err().code,
        "usage_conflict"
    );
    // The provider is owed the charge less 5%; the platform keeps 5% (floor).
    let payable = books.ledger().account(chart::provider_payable("ascend-hz").id).unwrap();
    assert_eq!(payable.credit_balance_fen(), 33_330 - 1_666);

    let claim = books.file_claim("hangzhou-compute", &job_contract(1, 7), 50_000, now()).unwrap();
    // One claim per contract: the same claim again is the same claim; another is refused.
    assert_eq!(books.file_claim("hangzhou-compute", &job_contract(1, 7), 50_000, now()).unwrap().id, claim.id);
    assert_eq!(
        books.file_claim("hangzhou-compute", &job_contract(1, 7), 60_000, now()).unwrap_err().code,
        "claim_exists"
    );

    // Redeem against the line: 30% on domestic chips, floor: 9,999 fen.
    let (subsidy, c) = books.redeem(claim.id, &line(7, 1, "ascend-hz"), now()).unwrap();
    assert_eq!(subsidy, 9_999);
    assert_eq!(c.remaining_fen(), 50_000 - 9_999);
    let l = books.line(&line(7, 1, "ascend-hz")).unwrap();
    assert_eq!(l.subsidy_fen() + l.tenant_share_fen(), l.amount_fen);
    assert_eq!(books.redeem(claim.id, &line(7, 1, "ascend-hz"), now()).unwrap_err().code, "already_redeemed");
    // More usage on the line: only the increase is subsidised.
    books.rate(usage("e2", 1, 7, p.clone(), HOUR_MS, 3_333), 500, now()).unwrap();
    assert_eq!(books.redeem(claim.id, &line(7, 1, "ascend-hz"), now()).unwrap().0, 999);
    // No invoice line, no redemption.
    assert_eq!(books.redeem(claim.id, &line(7, 99, "ascend-hz"), now()).unwrap_err().code, "invoice_not_found");

    let report = books.report("hangzhou-compute").unwrap();
    assert_eq!((report.paid_fen, report.reserved_fen), (10_998, 50_000 - 10_998));
    assert_eq!(report.available_fen, 25_000_000_000 - 50_000);

    // Too early to expire; after the year, the rest returns to the budget.
    assert_eq!(books.expire_program("hangzhou-compute", now()).unwrap_err().code, "program_not_ended");
    let after = year_start_ms(2027);
    books.expire_program("hangzhou-compute", after).unwrap();
    assert_eq!(books.claim(claim.id).unwrap().state, ClaimState::Expired);
    let report = books.report("hangzhou-compute").unwrap();
    assert_eq!((report.paid_fen, report.reserved_fen, report.available_fen), (10_998, 0, 25_000_000_000 - 10_998));
    let budget = books.ledger().account(chart::program_budget("hangzhou-compute").id).unwrap();
    assert_eq!(budget.credit_balance_fen(), 25_000_000_000 - 10_998);
    assert_eq!(budget.debits_pending_fen, 0);
    assert_eq!(
        books.file_claim("hangzhou-compute", &job_contract(2, 7), 1, after).unwrap_err().code,
        "program_expired"
    );
    assert!(books.ledger().trial_balance().balances());

    // The history replays to the same books.
    let mut again = Books::new();
    let fresh = Books::new().lines().len();
    for l in &books.lines()[fresh..] {
        again.replay_line(l).unwrap();
    }
    assert_eq!(again.ledger(), books.ledger());
    assert_eq!(again.report("hangzhou-compute"), books.report("hangzhou-compute"));
}

#[test]
fn budget_cap_affiliation_stacking_and_eligibility_are_enforced() {
    let mut books = Books::new();
    let mut small = load("henan.toml");
    small.budget_fen = 100_000;
    books.load_program(small, now()).unwrap();
    // Eligibility.
    let big = PoolFacts { city: "Zhengzhou".into(), ..pool("zz", false) };
    let a = books.apply("henan-compute", tenant(1, "sme", "Zhengzhou"), vec!["zz-co".into()], now()).unwrap();
    books.decide(a.id, true, "", now()).unwrap();
    let b = books.apply("henan-compute", tenant(2, "sme", "Luoyang"), vec![], now()).unwrap();
    books.decide(b.id, true, "", now()).unwrap();
    assert_eq!(books.decide(b.id, false, "", now()).unwrap_err().code, "application_decided");
    // Budget: 1,000 yuan in all; firm cap 1 M yuan.
    books.file_claim("henan-compute", &job_contract(1, 1), 80_000, now()).unwrap();
    let e = books.file_claim("henan-compute", &job_contract(2, 2), 30_000, now()).unwrap_err();
    assert_eq!(e.code, "exceeds_budget");
    let before = books.ledger().trial_balance();
    assert_eq!(books.file_claim("henan-compute", &job_contract(3, 2), 0, now()).unwrap_err().code, "amount_invalid");
    assert_eq!(books.ledger().trial_balance(), before, "a refusal moves no money");
    // The buyer's own provider is not subsidised.
    books.rate(usage("u1", 1, 1, big.clone(), HOUR_MS, 100_000), 0, now()).unwrap();
    assert_eq!(books.redeem(1, &line(1, 1, "zz"), now()).unwrap_err().code, "provider_affiliated");
    // A small centre does not count.
    let tiny = PoolFacts { cards: 8, ..pool("tiny", false) };
    let c = Contract { pool: Some(tiny), ..job_contract(4, 2) };
    assert_eq!(books.file_claim("henan-compute", &c, 1_000, now()).unwrap_err().code, "pool_not_eligible");
    // A firm cap.
    let mut capped = load("hangzhou.toml");
    capped.firm_cap_fen = Some(5_000);
    books.load_program(capped, now()).unwrap();
    let h = books.apply("hangzhou-compute", tenant(3, "sme", "Hangzhou"), vec![], now()).unwrap();
    books.decide(h.id, true, "", now()).unwrap();
    books.file_claim("hangzhou-compute", &job_contract(10, 3), 4_000, now()).unwrap();
    assert_eq!(
        books.file_claim("hangzhou-compute", &job_contract(11, 3), 1_001, now()).unwrap_err().code,
        "exceeds_firm_cap"
    );
    // Not registered there.
    assert_eq!(
        books.apply("hangzhou-compute", tenant(4, "sme", "Beijing"), vec![], now()).unwrap_err().code,
        "not_eligible"
    );
    // Term.
    let bj = load("beijing.toml");
    books.load_program(bj, now()).unwrap();
    let j = books.apply("beijing-ai-compute", tenant(5, "enterprise", "Beijing"), vec![], now()).unwrap();
    books.decide(j.id, true, "", now()).unwrap();
    let long = Contract { term_days: 400, ..job_contract(20, 5) };
    assert_eq!(books.file_claim("beijing-ai-compute", &long, 1_000, now()).unwrap_err().code, "term_too_long");
    // Each claim ≤ 20% of a contract whose value is known.
    let valued = Contract { value_fen: Some(100_000), ..job_contract(21, 5) };
    assert_eq!(books.file_claim("beijing-ai-compute", &valued, 20_001, now()).unwrap_err().code, "claim_exceeds_ratio");
    books.file_claim("beijing-ai-compute", &valued, 20_000, now()).unwrap();
    assert_eq!(books.file_claim("nope", &job_contract(30, 5), 1, now()).unwrap_err().code, "program_not_found");
    assert!(books.ledger().trial_balance().balances());
}

#[test]
fn programmes_stack_only_when_both_allow_it() {
    let mut books = Books::new();
    books.load_program(load("shanghai.toml"), now()).unwrap();
    books.load_program(load("shanghai-district.toml"), now()).unwrap();
    let mut no_stack = load("shenzhen.toml");
    no_stack.eligibility.registration_cities = vec!["Shanghai".into()];
    books.load_program(no_stack, now()).unwrap();
    for p in ["shanghai-compute", "shanghai-district-compute", "shenzhen-training"] {
        let a = books.apply(p, tenant(1, "sme", "Shanghai"), vec![], now()).unwrap();
        books.decide(a.id, true, "", now()).unwrap();
    }
    let p = PoolFacts { city: "Shanghai".into(), ..pool("sh", false) };
    books.rate(usage("u", 1, 1, p.clone(), 10 * HOUR_MS, 10_000), 0, now()).unwrap();
    books.rate(usage("v", 2, 1, p, 10 * HOUR_MS, 10_000), 0, now()).unwrap();
    // One contract, one claim: so stacking means claims on *different* contracts cannot share a
    // line; here job 1's contract is claimed in the city programme and redeemed …
    let city = books.file_claim("shanghai-compute", &job_contract(1, 1), 1_000_000, now()).unwrap();
    assert_eq!(books.redeem(city.id, &line(1, 1, "sh"), now()).unwrap().0, 30_000);
    // … and a second programme's claim for the same contract is refused.
    assert_eq!(
        books.file_claim("shanghai-district-compute", &job_contract(1, 1), 1_000, now()).unwrap_err().code,
        "claim_exists"
    );
    let l = books.line(&line(1, 1, "sh")).unwrap();
    assert_eq!((l.subsidy_fen(), l.tenant_share_fen()), (30_000, 70_000));
}

#[test]
fn orders_clear_into_contracts_that_replay() {
    use suanwang_billing::market::{NewOrder, Owner};
    use suanwang_market::Side;
    let mut books = Books::new();
    let start = u64::try_from(now() / 1000).unwrap() + 86_400;
    let order = |owner: Owner, side, cards, limit, key: &str| NewOrder {
        owner,
        side,
        model: "A800".into(),
        region: "CN-GD".into(),
        start_s: start,
        end_s: start + 86_400,
        cards,
        limit_fen_per_card_hour: limit,
        all_or_none: false,
        standing: true,
        key: key.into(),
        pool_cards: Some(20),
    };
    let (sell, new) = books.place_order(order(Owner::Pool("gpu".into()), Side::Sell, 16, 1_000, "s1"), now()).unwrap();
    // The pool has 20 cards and offers 16 already: it cannot offer 5 more for an overlapping window.
    let mut later = order(Owner::Pool("gpu".into()), Side::Sell, 5, 1_000, "s2");
    later.start_s += 3_600;
    assert_eq!(books.place_order(later.clone(), now()).unwrap_err().code, "oversold");
    // Nor can it sell more than it has at all, but after the window it may.
    later.cards = 4;
    books.place_order(later.clone(), now()).unwrap();
    later.start_s = start + 86_400;
    later.end_s = start + 2 * 86_400;
    later.cards = 20;
    later.key = "s3".into();
    let (after_window, _) = books.place_order(later, now()).unwrap();
    books.cancel_order(&Owner::Pool("gpu".into()), after_window.id).unwrap();
    assert!(new);
    let (buy, _) = books.place_order(order(Owner::Tenant(7), Side::Buy, 8, 1_200, "b1"), now()).unwrap();
    // The same key again is the same order; with other fields, a conflict.
    assert_eq!(
        books.place_order(order(Owner::Tenant(7), Side::Buy, 8, 1_200, "b1"), now()).unwrap(),
        (buy.clone(), false)
    );
    let e = books.place_order(order(Owner::Tenant(7), Side::Buy, 9, 1_200, "b1"), now()).unwrap_err();
    assert_eq!(e.code, "idempotency_conflict");
    // Bad orders.
    let mut empty = order(Owner::Tenant(7), Side::Buy, 8, 1_200, "b2");
    empty.end_s = empty.start_s;
    assert_eq!(books.place_order(empty, now()).unwrap_err().code, "window_empty");
    let mut past = order(Owner::Tenant(7), Side::Buy, 8, 1_200, "b3");
    past.start_s = 1;
    assert_eq!(books.place_order(past, now()).unwrap_err().code, "window_past");
    assert_eq!(
        books.place_order(order(Owner::Tenant(7), Side::Buy, 0, 1_200, "b4"), now()).unwrap_err().code,
        "cards_invalid"
    );
    assert_eq!(
        books.place_order(order(Owner::Tenant(7), Side::Buy, 1, 0, "b5"), now()).unwrap_err().code,
        "price_invalid"
    );

    let cards = std::collections::BTreeMap::from([("gpu".to_owned(), 20)]);
    let s2 = books.book().find(|o| o.key == "s2").unwrap().id;
    books.cancel_order(&Owner::Pool("gpu".into()), s2).unwrap();
    let auction = books.run_auction(now(), &cards);
    assert_eq!(auction.contracts.len(), 1);
    let c = &books.contracts()[0];
    assert_eq!((c.tenant, c.pool.as_str(), c.cards, c.orders), (7, "gpu", 8, (buy.id, sell.id)));
    assert!((1_000..=1_200).contains(&c.price_fen_per_card_hour));
    assert_eq!(c.value_fen(), 8 * 24 * c.price_fen_per_card_hour as u64);
    assert_eq!(c.term_days(), 1);
    // The seller's 8 unsold cards stand; the filled buy left the book.
    let resting: Vec<_> = books.book().map(|o| (o.id, o.cards)).collect();
    assert_eq!(resting, vec![(sell.id, 8)]);
    assert_eq!(books.cancel_order(&Owner::Tenant(7), sell.id).unwrap_err().code, "order_not_found");
    books.cancel_order(&Owner::Pool("gpu".into()), sell.id).unwrap();
    assert_eq!(books.book().count(), 0);

    let mut again = Books::new();
    let fresh = Books::new().lines().len();
    for l in &books.lines()[fresh..] {
        again.replay_line(l).unwrap();
    }
    assert_eq!(again.contracts(), books.contracts());
    assert_eq!(again.book().count(), 0);
    assert_eq!(again.auctions(), books.auctions());
}
