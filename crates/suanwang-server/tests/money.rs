//! Money through the API, in process: usage reported by an agent is rated into an invoice and
//! the provider's earnings; a voucher programme is loaded, applied to, decided, claimed and
//! redeemed; bad input gets a 4xx with a stable code and moves no money; concurrent claims on two
//! servers never take a programme past its budget; a restart keeps every figure.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Harness, fast, get, post, program, run_as_agent, tenant, this_year, token, wall_ms};
use serde_json::{Value, json};
use suanwang_control::clock::ManualClock;

/// A server for tests that move its clock by hand: agents are not timed out meanwhile.
fn metered() -> suanwang_control::config::ControlConfig {
    suanwang_control::config::ControlConfig { heartbeat_timeout: Duration::from_secs(1_000_000), ..fast() }
}

async fn submit(h: &Harness, token: &str) -> i64 {
    let body = json!({"name": "train", "command": ["train"], "accelerators": 8, "duration_s": 1});
    let (status, job) = post(h, token, "/api/v1/jobs", body).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    job["id"].as_i64().unwrap()
}

async fn trial_balance(h: &Harness) -> Value {
    let (status, total) = get(h, &h.operator, "/api/v1/ledger/trial-balance").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total["posted"]["debits_fen"], total["posted"]["credits_fen"], "{total}");
    assert_eq!(total["pending"]["debits_fen"], total["pending"]["credits_fen"], "{total}");
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_billed_once_and_a_voucher_pays_its_share() {
    // The test is the gpu pool's agent, on a clock it moves: a run of 1 h 15 min on 8 cards is
    // 10 card-hours, metered by the platform from its own record.
    let clock = Arc::new(ManualClock::at(wall_ms()));
    let h = Harness::with_clock(metered(), clock.clone()).await;
    let op = h.operator.clone();
    let (status, p) =
        post(&h, &op, "/api/v1/programs", program("sz-test", this_year(), 10_000_000, Some(50_000))).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (status, _) =
        post(&h, &op, "/api/v1/programs", program("sz-test", this_year(), 10_000_000, Some(50_000))).await;
    assert_eq!(status, StatusCode::OK, "the same programme again");
    let (status, e) = post(&h, &op, "/api/v1/programs", program("sz-test", this_year(), 1, None)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("program_exists")));
    let admin = token(&h, json!({"role": "program-admin", "program": "sz-test"})).await;
    let (tid, t) = tenant(&h, "acme", "startup", "Shenzhen").await;
    let (_, other) = tenant(&h, "globex", "sme", "Shenzhen").await;

    // A job runs on the GPU pool for 1 h 15 min; its agent's own measure is only evidence.
    let job = submit(&h, &t).await;
    let agent = token(&h, json!({"role": "provider", "pool": "gpu"})).await;
    run_as_agent(&h, &clock, &agent, job, 4_500_000).await;
    let done = h.wait_for_state(&t, job, "succeeded").await;
    assert_eq!(done["pool"], "gpu");
    assert_eq!(done["usage_accelerator_s"], 36_000.0, "{done}");
    // The agent says 8⅓ card-hours; it is kept (once) beside the meter's 10, and not billed.
    let usage = json!({"job_id": job, "event_id": "long-run-1", "accelerator_ms": 30_000_000});
    for recorded in [true, false] {
        let (status, r) = post(&h, &agent, "/api/v1/agent/usage", usage.clone()).await;
        assert_eq!((status, r["recorded"].as_bool()), (StatusCode::OK, Some(recorded)), "{r}");
    }
    let (_, shown) = get(&h, &t, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(
        (shown["usage_accelerator_s"].as_f64(), shown["reported_accelerator_s"].as_f64()),
        (Some(36_000.0), Some(30_000.0))
    );
    // A figure no run of the job could reach is refused, and no report is billed.
    let absurd = json!({"job_id": job, "event_id": "absurd", "accelerator_ms": i64::MAX});
    let (status, e) = post(&h, &agent, "/api/v1/agent/usage", absurd).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("usage_out_of_bounds")));
    suanwang_control::money::bill(&h.state).await.unwrap();
    assert_eq!(suanwang_control::money::bill(&h.state).await.unwrap(), 0, "billing again rates nothing");
    let (status, list) = get(&h, &t, "/api/v1/invoices").await;
    assert_eq!(status, StatusCode::OK);
    let period = list[0]["period"].as_str().unwrap().to_owned();
    let (status, invoice) = get(&h, &t, &format!("/api/v1/invoices/{tid}/{period}")).await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    let line = &invoice["lines"][0];
    let amount = line["amount_fen"].as_u64().unwrap();
    // 10 card-hours at 12.00 yuan, exactly.
    assert_eq!(amount, 12_000, "{invoice}");
    // The provider is owed the charges less the 5% fee; the tenant owes them.
    let (_, earnings) = get(&h, &agent, "/api/v1/pools/gpu/earnings").await;
    let fee = amount * 500 / 10_000;
    assert_eq!(earnings["owed_fen"].as_u64().unwrap(), amount - fee, "{earnings}");
    let (_, balance) = get(&h, &t, &format!("/api/v1/tenants/{tid}/balance")).await;
    assert_eq!(balance["balance_fen"].as_i64().unwrap(), -(amount as i64));
    // Other people's money is not found.
    assert_eq!(get(&h, &other, &format!("/api/v1/invoices/{tid}/{period}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&h, &other, &format!("/api/v1/tenants/{tid}/balance")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&h, &t, "/api/v1/pools/gpu/earnings").await.0, StatusCode::FORBIDDEN, "a tenant reads no earnings");

    // Apply, decide, claim, redeem.
    let (status, a) = post(&h, &t, "/api/v1/programs/sz-test/applications", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let (status, _) =
        post(&h, &t, &format!("/api/v1/applications/{}/decision", a["id"]), json!({"approve": true})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a tenant does not decide");
    let (status, a) =
        post(&h, &admin, &format!("/api/v1/applications/{}/decision", a["id"]), json!({"approve": true})).await;
    assert_eq!((status, a["state"].as_str()), (StatusCode::OK, Some("approved")), "{a}");
    let claim_body = json!({"contract": format!("job:{job}"), "amount_fen": 40_000});
    let (status, claim) = post(&h, &t, "/api/v1/programs/sz-test/claims", claim_body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let (status, again) = post(&h, &t, "/api/v1/programs/sz-test/claims", claim_body).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &claim["id"]), "the same claim again");
    let redeem = json!({"period": period, "job": job});
    let (status, r) = post(&h, &t, &format!("/api/v1/claims/{}/redemptions", claim["id"]), redeem.clone()).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    // A start-up gets 60%, floored to the fen.
    assert_eq!(r["subsidy_fen"].as_u64().unwrap(), amount * 6_000 / 10_000);
    let (_, invoice) = get(&h, &t, &format!("/api/v1/invoices/{tid}/{period}")).await;
    let line = &invoice["lines"][0];
    assert_eq!(
        line["subsidy_fen"].as_u64().unwrap() + line["tenant_share_fen"].as_u64().unwrap(),
        line["amount_fen"].as_u64().unwrap()
    );
    let (_, report) = get(&h, &admin, "/api/v1/programs/sz-test").await;
    assert_eq!(report["report"]["paid_fen"], r["subsidy_fen"], "{report}");
    assert_eq!(report["report"]["firms"][0]["tenant"], tid);
    let (_, public) = get(&h, &other, "/api/v1/programs/sz-test").await;
    assert!(public.get("report").is_none(), "a tenant sees the rules, not the figures");

    // Bad input: a 4xx with a stable code, and the ledger unchanged.
    let before = trial_balance(&h).await;
    let other_job = submit(&h, &other).await;
    let expired = program("old", this_year() - 1, 1_000, None);
    assert_eq!(post(&h, &op, "/api/v1/programs", expired).await.0, StatusCode::CREATED);
    let after_load = trial_balance(&h).await;
    // The leader ends a programme whose year is over.
    assert_eq!(suanwang_control::money::expire_ended_programs(&h.state).await.unwrap(), vec!["old".to_owned()]);
    let (_, old) = get(&h, &op, "/api/v1/programs/old").await;
    assert_eq!(old["expired"], true);
    for (who, path, body, status, code) in [
        (
            &t,
            "/api/v1/programs/sz-test/claims".to_owned(),
            json!({"contract": format!("job:{other_job}"), "amount_fen": 1}),
            404,
            "contract_not_found",
        ),
        (
            &t,
            "/api/v1/programs/sz-test/claims".to_owned(),
            json!({"contract": format!("job:{job}"), "amount_fen": 1}),
            409,
            "claim_exists",
        ),
        (
            &other,
            "/api/v1/programs/sz-test/claims".to_owned(),
            json!({"contract": format!("job:{other_job}"), "amount_fen": 1}),
            409,
            "not_approved",
        ),
        (
            &t,
            "/api/v1/programs/nope/claims".to_owned(),
            json!({"contract": format!("job:{job}"), "amount_fen": 1}),
            404,
            "program_not_found",
        ),
        (&t, "/api/v1/programs/old/applications".to_owned(), json!({}), 409, "program_expired"),
        (
            &t,
            format!("/api/v1/claims/{}/redemptions", claim["id"]),
            json!({"period": "2001-01", "job": job}),
            404,
            "invoice_not_found",
        ),
        (
            &t,
            format!("/api/v1/claims/{}/redemptions", claim["id"]),
            json!({"period": "2001-13", "job": job}),
            400,
            "invalid_period",
        ),
        (&t, format!("/api/v1/claims/{}/redemptions", claim["id"]), redeem.clone(), 409, "already_redeemed"),
        (&t, "/api/v1/claims/999/redemptions".to_owned(), redeem.clone(), 404, "claim_not_found"),
        (&op, format!("/api/v1/tenants/{tid}/payments"), json!({"amount_fen": 0, "key": "k"}), 400, "amount_invalid"),
        (&op, format!("/api/v1/tenants/{tid}/payments"), json!({"amount_fen": -5, "key": "k"}), 400, "invalid_body"),
        (
            &op,
            "/api/v1/pools/gpu/payouts".to_owned(),
            json!({"amount_fen": 99_999_999, "key": "k"}),
            409,
            "exceeds_payable",
        ),
        (&op, "/api/v1/ledger/accounts".to_owned(), json!({"id": 2, "kind": "world"}), 400, "id_reserved"),
        (
            &op,
            "/api/v1/programs".to_owned(),
            json!({"id": "Bad Id", "name": "x", "issuer": "x", "fiscal_year": 2026, "budget_fen": 1, "subsidy": {"default_ratio_bps": 1}}),
            400,
            "invalid_program",
        ),
    ] {
        let (got, e) = post(&h, who, &path, body.clone()).await;
        assert_eq!((got.as_u16(), e["error"]["code"].as_str()), (status, Some(code)), "{path} {body}: {e}");
    }
    assert_eq!(trial_balance(&h).await, after_load, "refusals moved no money (before the old programme: {before})");

    // Money in and out.
    let (status, b) =
        post(&h, &op, &format!("/api/v1/tenants/{tid}/payments"), json!({"amount_fen": 100_000, "key": "wire-1"}))
            .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    post(&h, &op, &format!("/api/v1/tenants/{tid}/payments"), json!({"amount_fen": 100_000, "key": "wire-1"})).await;
    let (_, b) = get(&h, &t, &format!("/api/v1/tenants/{tid}/balance")).await;
    assert_eq!(
        b["credited_fen"].as_u64().unwrap(),
        100_000 + r["subsidy_fen"].as_u64().unwrap(),
        "a payment counts once"
    );
    let (status, e) = post(&h, &op, "/api/v1/pools/gpu/payouts", json!({"amount_fen": 1_000, "key": "p1"})).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["paid_out_fen"], 1_000);
    let total = trial_balance(&h).await;

    // The history for auditors, and a restart that keeps every figure.
    let auditor = token(&h, json!({"role": "auditor"})).await;
    let (status, entries) = get(&h, &auditor, "/api/v1/ledger/entries?limit=5").await;
    assert_eq!((status, entries["entries"].as_array().unwrap().len()), (StatusCode::OK, 5));
    h.audit_verifies().await;
    let again = Harness::open(h.dir.clone(), metered()).await;
    assert_eq!(trial_balance(&again).await, total);
    let (_, report2) = get(&again, &op, "/api/v1/programs/sz-test").await;
    assert_eq!(report2["report"]["paid_fen"], r["subsidy_fen"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_on_two_servers_never_pass_the_budget() {
    let a = Harness::new(fast()).await;
    let b = Harness::open(a.dir.clone(), fast()).await;
    let op = a.operator.clone();
    // Room for exactly ten claims of 1,000 fen.
    assert_eq!(
        post(&a, &op, "/api/v1/programs", program("tight", this_year(), 10_000, None)).await.0,
        StatusCode::CREATED
    );
    let (_, t) = tenant(&a, "acme", "sme", "Shenzhen").await;
    let (_, app) = post(&a, &t, "/api/v1/programs/tight/applications", json!({})).await;
    post(&a, &op, &format!("/api/v1/applications/{}/decision", app["id"]), json!({"approve": true})).await;
    let mut jobs = Vec::new();
    for _ in 0..24 {
        jobs.push(submit(&a, &t).await);
    }
    let mut tasks = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let (server, token) = (if i % 2 == 0 { a.app.clone() } else { b.app.clone() }, t.clone());
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let body = json!({"contract": format!("job:{job}"), "amount_fen": 1_000}).to_string();
            let request = axum::http::Request::post("/api/v1/programs/tight/claims")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let response = server.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }));
    }
    let mut granted = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => granted += 1,
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "exceeds_budget", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(granted, 10, "exactly the budget's worth of claims");
    let (_, report) = get(&b, &op, "/api/v1/programs/tight").await;
    assert_eq!(
        (report["report"]["reserved_fen"].as_u64(), report["report"]["available_fen"].as_u64()),
        (Some(10_000), Some(0))
    );
    trial_balance(&a).await;
    a.audit_verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_clear_into_contracts_that_jobs_run_under() {
    let clock = Arc::new(ManualClock::at(wall_ms()));
    let h = Harness::with_clock(metered(), clock.clone()).await;
    let op = h.operator.clone();
    let (tid, t) = tenant(&h, "acme", "sme", "Shenzhen").await;
    let (_, other) = tenant(&h, "globex", "sme", "Shenzhen").await;
    let seller = token(&h, json!({"role": "provider", "pool": "gpu"})).await;
    // The pool is healthy from the start, so a job is placed the moment it arrives: a contract
    // bought a moment before must already be known to the scheduler then.
    let beat = json!({"healthy": true, "running": []});
    assert_eq!(post(&h, &seller, "/api/v1/agent/heartbeat", beat).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let now_s = u64::try_from(wall_ms() / 1000).unwrap();
    let (start, end) = (now_s + 3_600, now_s + 3_600 + 86_400);
    let order = |side: &str, cards: u32, limit: i64| {
        json!({"side": side, "model": "A800-SXM4-80GB", "region": "CN-GD", "start_s": start, "end_s": end,
               "cards": cards, "limit_fen_per_card_hour": limit})
    };
    let place = |token: String, key: &'static str, body: Value| {
        let h = &h;
        async move {
            h.call_with(
                Method::POST,
                "/api/v1/market/orders",
                Some(&token),
                Some(&body.to_string()),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let (status, sell) = place(seller.clone(), "s1", order("sell", 16, 1_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{sell}");
    let (status, buy) = place(t.clone(), "b1", order("buy", 8, 1_500)).await;
    assert_eq!(status, StatusCode::CREATED, "{buy}");
    let (status, again) = place(t.clone(), "b1", order("buy", 8, 1_500)).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &buy["id"]), "the same key is the same order");
    // Bad orders: a 4xx with a stable code.
    let mut empty = order("buy", 8, 1_500);
    empty["end_s"] = json!(start);
    for (token, key, body, status, code) in [
        (t.clone(), "b1", order("buy", 9, 1_500), 409, "idempotency_conflict"),
        (t.clone(), "b2", empty, 400, "window_empty"),
        (t.clone(), "b3", order("buy", 8, 0), 400, "price_invalid"),
        (t.clone(), "b4", order("sell", 8, 1_000), 400, "invalid_order"),
        (seller.clone(), "s2", order("sell", 999, 1_000), 400, "cards_invalid"),
        // The pool has 16 cards and offers them all already: it cannot promise a 17th.
        (seller.clone(), "s3", order("sell", 1, 900), 409, "oversold"),
        (op.clone(), "o1", order("buy", 8, 1_000), 403, "forbidden"),
    ] {
        let (got, e) = place(token, key, body.clone()).await;
        assert_eq!((got.as_u16(), e["error"]["code"].as_str()), (status, Some(code)), "{body}: {e}");
    }
    let (status, e) = post(&h, &t, "/api/v1/market/orders", order("buy", 1, 1_000)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("idempotency_key_required")));

    // The book's depth is public; owners are not.
    let (_, book) = get(&h, &other, "/api/v1/market/book").await;
    assert_eq!(book["depth"][0]["buys"][0]["cards"], 8, "{book}");
    assert_eq!(book["depth"][0]["sells"][0]["price_fen_per_card_hour"], 1_000);
    assert_eq!(book["mine"].as_array().unwrap().len(), 0);
    let (_, book) = get(&h, &t, "/api/v1/market/book").await;
    assert_eq!(book["mine"][0]["id"], buy["id"]);

    // An auction makes one contract at the uniform price.
    assert_eq!(post(&h, &t, "/api/v1/market/auctions", json!({})).await.0, StatusCode::FORBIDDEN);
    let (status, auction) = post(&h, &op, "/api/v1/market/auctions", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{auction}");
    assert_eq!(auction["contracts"].as_array().unwrap().len(), 1, "{auction}");
    let (_, contracts) = get(&h, &t, "/api/v1/market/contracts").await;
    let contract = &contracts[0];
    assert_eq!(
        (contract["tenant"].as_i64(), contract["pool"].as_str(), contract["cards"].as_u64()),
        (Some(tid), Some("gpu"), Some(8))
    );
    let price = contract["price_fen_per_card_hour"].as_u64().unwrap();
    assert!((1_000..=1_500).contains(&price));
    assert_eq!(get(&h, &other, "/api/v1/market/contracts").await.1.as_array().unwrap().len(), 0);
    let (_, history) = get(&h, &other, "/api/v1/market/auctions").await;
    assert_eq!(history[0]["cards"], 8);

    // Prices and quotes.
    let (_, prices) = get(&h, &t, "/api/v1/market/prices").await;
    let gpu = prices["pools"].as_array().unwrap().iter().find(|p| p["pool"] == "gpu").unwrap().clone();
    assert_eq!(
        (gpu["list_fen_per_card_hour"].as_u64(), gpu["region"].as_str()),
        (Some(1_200), Some("CN-GD")),
        "{prices}"
    );
    assert_eq!(prices["last_clearing"][0][4].as_u64(), Some(price));
    let (status, quote) = post(&h, &t, "/api/v1/quotes", json!({"accelerators": 8, "duration_s": 3600})).await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let best = &quote["options"][0];
    assert_eq!((best["pool"].as_str(), best["cost_fen"].as_u64()), (Some("gpu"), Some(9_600)), "{quote}");
    assert_eq!(quote["absent"][0]["pool"], "local", "{quote}");
    let (status, e) = post(&h, &t, "/api/v1/quotes", json!({"accelerators": 0, "duration_s": 3600})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_quote")));

    // A job under the contract runs in its pool and is rated at its price.
    let id = format!("contract:{}", contract["id"]);
    let body = json!({"name": "reserved", "command": ["train"], "accelerators": 8, "duration_s": 1, "contract": id});
    let (status, job) = post(&h, &t, "/api/v1/jobs", body).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job_id = job["id"].as_i64().unwrap();
    let bad = json!({"name": "x", "command": ["x"], "accelerators": 8, "tasks": 2, "contract": id});
    assert_eq!(post(&h, &t, "/api/v1/jobs", bad).await.1["error"]["code"], "exceeds_contract");
    let theirs = json!({"name": "x", "command": ["x"], "accelerators": 1, "contract": id});
    assert_eq!(post(&h, &other, "/api/v1/jobs", theirs).await.1["error"]["code"], "contract_not_found");
    let agent = token(&h, json!({"role": "provider", "pool": "gpu"})).await;
    run_as_agent(&h, &clock, &agent, job_id, 4_500_000).await;
    h.wait_for_state(&t, job_id, "succeeded").await;
    suanwang_control::money::bill(&h.state).await.unwrap();
    let (_, list) = get(&h, &t, "/api/v1/invoices").await;
    let period = list[0]["period"].as_str().unwrap().to_owned();
    let (_, invoice) = get(&h, &t, &format!("/api/v1/invoices/{tid}/{period}")).await;
    let line = &invoice["lines"][0];
    assert_eq!(line["contract"].as_str(), Some(id.as_str()), "{invoice}");
    let amount = line["amount_fen"].as_u64().unwrap();
    assert_eq!(amount, 10 * price, "10 card-hours at the contract's price: {invoice}");

    // A claim for the contract knows its value: at most the ratio of it.
    let program = program("contract-test", this_year(), 100_000_000, None);
    assert_eq!(post(&h, &op, "/api/v1/programs", program).await.0, StatusCode::CREATED);
    let (_, a) = post(&h, &t, "/api/v1/programs/contract-test/applications", json!({})).await;
    post(&h, &op, &format!("/api/v1/applications/{}/decision", a["id"]), json!({"approve": true})).await;
    let value = 8 * 24 * price; // 8 cards for a day
    let too_much = json!({"contract": id, "amount_fen": value * 2 / 10 + 1});
    let (status, e) = post(&h, &t, "/api/v1/programs/contract-test/claims", too_much).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("claim_exceeds_ratio")), "{e}");
    let (status, claim) =
        post(&h, &t, "/api/v1/programs/contract-test/claims", json!({"contract": id, "amount_fen": value / 10})).await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    let (status, r) =
        post(&h, &t, &format!("/api/v1/claims/{}/redemptions", claim["id"]), json!({"period": period, "job": job_id}))
            .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["subsidy_fen"].as_u64().unwrap(), amount * 2_000 / 10_000);
    trial_balance(&h).await;
    h.audit_verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_keeps_a_contracts_cards_for_its_tenant() {
    let h = Harness::new(fast()).await;
    h.start_agents();
    let op = h.operator.clone();
    let (_, t) = tenant(&h, "acme", "sme", "Shenzhen").await;
    let (_, other) = tenant(&h, "globex", "sme", "Shenzhen").await;
    let seller = token(&h, json!({"role": "provider", "pool": "gpu"})).await;
    let now_s = u64::try_from(wall_ms() / 1000).unwrap();
    let order = |side: &str| {
        json!({"side": side, "model": "A800-SXM4-80GB", "region": "CN-GD", "start_s": now_s + 1,
               "end_s": now_s + 86_400, "cards": 8, "limit_fen_per_card_hour": 1_000})
    };
    for (token, key, side) in [(&seller, "s", "sell"), (&t, "b", "buy")] {
        let (status, o) = h
            .call_with(
                Method::POST,
                "/api/v1/market/orders",
                Some(token),
                Some(&order(side).to_string()),
                &[("idempotency-key", key)],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{o}");
    }
    let (_, auction) = post(&h, &op, "/api/v1/market/auctions", json!({})).await;
    assert_eq!(auction["contracts"].as_array().unwrap().len(), 1);
    // Once the window is open (and the scheduler has read the contract), globex cannot take the
    // whole GPU pool, only the unheld half.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let whole =
        json!({"name": "whole", "command": ["x"], "accelerators": 8, "tasks": 2, "pool": "gpu", "duration_s": 30});
    let (_, whole) = post(&h, &other, "/api/v1/jobs", whole).await;
    let half = json!({"name": "half", "command": ["x"], "accelerators": 8, "pool": "gpu", "duration_s": 1});
    let (_, half) = post(&h, &other, "/api/v1/jobs", half).await;
    h.wait_for_state(&other, half["id"].as_i64().unwrap(), "succeeded").await;
    let (_, w) = get(&h, &other, &format!("/api/v1/jobs/{}", whole["id"])).await;
    assert_eq!(w["state"], "queued", "the contract's 8 cards stay free: {w}");
    // The holder's job under the contract runs.
    let mine = json!({"name": "mine", "command": ["x"], "accelerators": 8, "duration_s": 1,
                      "contract": format!("contract:{}", auction["contracts"][0]["id"])});
    let (status, mine) = post(&h, &t, "/api/v1/jobs", mine).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    h.wait_for_state(&t, mine["id"].as_i64().unwrap(), "succeeded").await;
}
