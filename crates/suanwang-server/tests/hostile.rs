//! Issue 15: what a hostile tenant or a faulty provider tried, each as a regression test. Every
//! attack gets a clear 4xx with a code and leaves every other tenant's work untouched, on SQLite
//! and (with `SUANWANG_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

mod common;

use axum::http::{Method, StatusCode};
use common::{HELLO, Harness, fast, get, post};
use serde_json::{Value, json};

async fn both_stores() -> Vec<Harness> {
    let mut harnesses = vec![Harness::new(fast()).await];
    harnesses.extend(Harness::postgres(fast()).await);
    harnesses
}

/// A NUL in a job's name or command once failed the whole group commit on PostgreSQL with 503,
/// and so other tenants' submissions in the same batch. Now every string with a control
/// character is refused at the door with 422 and the field, and valid work around it is all
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_with_the_field_and_spoil_nothing() {
    for h in both_stores().await {
        let mallory = h.tenant("mallory").await;
        let alice = h.tenant("alice").await;
        let refused: [(Value, &str); 7] = [
            (json!({"name": "a\u{0}b", "cpu_milli": 100}), "name"),
            (json!({"name": "j", "command": ["sh", "-c", "echo \u{0}"], "cpu_milli": 100}), "command[2]"),
            (json!({"name": "j", "env": {"K": "\u{1b}[2J"}, "cpu_milli": 100}), "env.K"),
            (json!({"name": "j", "residency_region": "CN\u{85}"}), "residency_region"),
            (json!({"name": "j", "latency": {"site": "here\u{0}", "max_ms": 5}}), "latency.site"),
            (json!({"name": "j\u{202E}gpj.exe", "cpu_milli": 100}), "name"),
            (json!({"name": "j", "dataset": {"site": "here", "size_bytes": 1, "name": "\u{7}"}}), "dataset.name"),
        ];
        for (body, field) in &refused {
            let (status, e) = post(&h, &mallory, "/api/v1/jobs", body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
            assert_eq!(
                (e["error"]["code"].as_str(), e["error"]["field"].as_str()),
                (Some("invalid_text"), Some(*field))
            );
        }
        for (path, body) in [
            ("/api/v1/tenants", json!({"name": "t2", "registration_city": "深圳\u{0}"})),
            ("/api/v1/tokens", json!({"role": "auditor", "label": "x\u{0}"})),
        ] {
            let (status, e) = post(&h, &h.operator, path, body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {e}");
        }
        for uri in ["/api/v1/jobs?tenant=%00", "/api/v1/pools/gpu%00", "/api/v1/jobs?state=%1b%5b2J"] {
            let (status, e) = h.call(Method::GET, uri, Some(&h.operator), None).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {e}");
            assert_eq!(e["error"]["code"], "invalid_text");
        }
        // Bad and good submissions at once, on a multi-threaded runtime, so that they share
        // group commits.
        let mut calls = Vec::new();
        for i in 0..81 {
            let (token, body) = if i % 4 == 0 && i / 4 < 21 {
                (
                    mallory.clone(),
                    json!({"name": format!("bad{i}\u{0}"), "command": ["x\u{0}"], "cpu_milli": 100}).to_string(),
                )
            } else {
                (alice.clone(), HELLO.replace("\"hello\"", &format!("\"good{i}\"")))
            };
            calls.push((token == mallory, tokio::spawn(submit(h.app.clone(), token, body))));
        }
        let (mut refused, mut accepted) = (0, 0);
        for (bad, call) in calls {
            let status = call.await.unwrap();
            if bad {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
                refused += 1;
            } else {
                assert_eq!(status, StatusCode::CREATED);
                accepted += 1;
            }
        }
        assert_eq!((refused, accepted), (21, 60));
        let (_, jobs) = get(&h, &h.operator, "/api/v1/jobs?limit=1000").await;
        assert_eq!(jobs["jobs"].as_array().unwrap().len(), 60, "only the good ones, all of them");
        h.audit_verifies().await;
    }
}

async fn submit(app: axum::Router, token: String, body: String) -> StatusCode {
    use tower::ServiceExt;
    let request = axum::http::Request::post("/api/v1/jobs")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    app.oneshot(request).await.unwrap().status()
}

/// `residency_region` had no limit and was copied into the explanation and the history: 100
/// requests made a 1.1 GB database. Every string now has a limit, and the body as a whole too.
#[tokio::test]
async fn long_strings_and_large_bodies_are_refused() {
    let h = Harness::new(fast()).await;
    let t = h.tenant("t").await;
    let long = "x".repeat(100_000);
    for body in [
        json!({"name": "j", "residency_region": long}),
        json!({"name": "j", "framework": long}),
        json!({"name": "j", "env": {"A": long}}),
        json!({"name": "j", "pool": long}),
    ] {
        let (status, e) = post(&h, &t, "/api/v1/jobs", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["error"]["code"], "too_long");
    }
    let huge = json!({"name": "j", "command": ["x".repeat(2 << 20)]});
    let (status, e) = post(&h, &t, "/api/v1/jobs", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(e["error"]["code"], "body_too_large");
}

/// One job listing returned 560 MB. Now a page of jobs ends at 4 MiB of JSON and says where to
/// go on; paging still reaches every job.
#[tokio::test]
async fn a_listing_is_bounded_in_bytes_and_pages_reach_everything() {
    let h = Harness::new(fast()).await;
    let t = h.tenant("t").await;
    let arg = "x".repeat(60_000);
    for i in 0..80 {
        let body = json!({"name": format!("big{i}"), "command": ["echo", arg], "cpu_milli": 100});
        let (status, e) = post(&h, &t, "/api/v1/jobs", body).await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
    }
    let (mut seen, mut after, mut pages) = (0, 0, 0);
    loop {
        let (status, page) = get(&h, &t, &format!("/api/v1/jobs?limit=1000&after={after}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.to_string().len() <= 4 << 20, "a page of {} bytes", page.to_string().len());
        seen += page["jobs"].as_array().unwrap().len();
        pages += 1;
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!((seen, pages), (80, 2), "4.8 MB of jobs in two pages");
}

/// One tenant filled the market's global book in 221 s, and then every other tenant got
/// `book_full`; one could hold the only simulation slot; nothing bounded a token's rate. Now
/// each tenant has quotas an operator can change, and each token a rate.
#[tokio::test]
async fn quotas_and_rates_keep_one_tenant_from_crowding_out_the_others() {
    let h = Harness::new(fast()).await;
    let (mallory_id, mallory) = common::tenant_with_default_quotas(&h, "mallory", "sme", "Shenzhen").await;
    let (_, alice) = common::tenant(&h, "alice", "sme", "Shenzhen").await;
    // Defaults, readable by the tenant itself; not by another tenant.
    let quotas_path = format!("/api/v1/tenants/{mallory_id}/quotas");
    let (status, q) = get(&h, &mallory, &quotas_path).await;
    assert_eq!(status, StatusCode::OK, "{q}");
    assert_eq!(q["requests_per_s"], 10);
    assert_eq!(get(&h, &alice, &quotas_path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(post(&h, &mallory, &quotas_path, json!({"datasets": 100_000})).await.0, StatusCode::FORBIDDEN);
    let (status, e) = post(&h, &h.operator, &quotas_path, json!({"requests_per_s": 0})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("requests_per_s")));
    let change = json!({"queued_jobs": 3, "open_orders": 2, "datasets": 1, "requests_per_s": 5});
    let (status, q) = post(&h, &h.operator, &quotas_path, change).await;
    assert_eq!(
        (status, q["queued_jobs"].as_u64(), q["running_simulations"].as_u64()),
        (StatusCode::OK, Some(3), Some(1))
    );

    // Queued jobs: the fourth waits for the others.
    for i in 0..4 {
        let (status, e) =
            post(&h, &mallory, "/api/v1/jobs", json!({"name": format!("j{i}"), "cpu_milli": 100, "pool": "gpu"})).await;
        if i < 3 {
            assert_eq!(status, StatusCode::CREATED, "{e}");
        } else {
            assert_eq!(
                (status, e["error"]["code"].as_str()),
                (StatusCode::TOO_MANY_REQUESTS, Some("quota_exceeded")),
                "{e}"
            );
        }
    }
    // Data sets.
    let dataset = |name: &str| json!({"name": name, "site": "here", "size_bytes": 1});
    assert_eq!(post(&h, &mallory, "/api/v1/datasets", dataset("a")).await.0, StatusCode::CREATED);
    let (status, e) = post(&h, &mallory, "/api/v1/datasets", dataset("b")).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("quota_exceeded")));

    // The book: two resting orders, not three; the other tenant still trades.
    let now_s = common::wall_ms() / 1000;
    let order = json!({"side": "buy", "model": "A800-SXM4-80GB", "region": "CN-GD", "start_s": now_s + 3_600,
                       "end_s": now_s + 7_200, "cards": 1, "limit_fen_per_card_hour": 100, "standing": true});
    let place = |token: String, key: String| {
        let body = order.to_string();
        let h = &h;
        async move {
            h.call_with(Method::POST, "/api/v1/market/orders", Some(&token), Some(&body), &[("idempotency-key", &key)])
                .await
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await; // mallory's rate refills
    for i in 0..3 {
        let (status, e) = place(mallory.clone(), format!("m{i}")).await;
        let want = if i < 2 { StatusCode::CREATED } else { StatusCode::TOO_MANY_REQUESTS };
        assert_eq!(status, want, "order {i}: {e}");
    }
    assert_eq!(place(alice.clone(), "a0".to_owned()).await.0, StatusCode::CREATED);

    // The rate: five a second, bursts of ten; then 429 with Retry-After, and alice is unaffected.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let mut limited = 0;
    for _ in 0..30 {
        let (status, e) = get(&h, &mallory, "/api/v1/jobs").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(e["error"]["code"], "rate_limited");
            limited += 1;
        }
    }
    assert!((15..=21).contains(&limited), "{limited} of 30 limited");
    for _ in 0..30 {
        assert_eq!(get(&h, &alice, "/api/v1/jobs").await.0, StatusCode::OK);
    }
    let request = axum::http::Request::get("/api/v1/jobs")
        .header("authorization", format!("Bearer {mallory}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(h.app.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    h.audit_verifies().await;
}

/// There was no way to revoke a token. Now operators list tokens (never the secret) and revoke
/// one; it stops working at once, and the revocation is in the audit chain.
#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoked() {
    let h = Harness::new(fast()).await;
    let leaked = h.tenant("t").await;
    let (status, page) = get(&h, &h.operator, "/api/v1/tokens").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed = page.to_string();
    assert!(!listed.contains(&leaked) && !listed.contains(&h.operator), "a secret was listed");
    let tokens = page["tokens"].as_array().unwrap();
    let id = tokens.iter().find(|t| t["role"] == "tenant").unwrap()["id"].as_i64().unwrap();
    assert_eq!(get(&h, &leaked, "/api/v1/tokens").await.0, StatusCode::FORBIDDEN);
    assert_eq!(post(&h, &leaked, &format!("/api/v1/tokens/{id}/revoke"), json!({})).await.0, StatusCode::FORBIDDEN);
    let (status, revoked) = post(&h, &h.operator, &format!("/api/v1/tokens/{id}/revoke"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, e) = get(&h, &leaked, "/api/v1/jobs").await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
    assert_eq!(post(&h, &h.operator, "/api/v1/tokens/999/revoke", json!({})).await.0, StatusCode::NOT_FOUND);
    // The platform never locks its operators out.
    let own = tokens.iter().find(|t| t["role"] == "operator").unwrap()["id"].as_i64().unwrap();
    let (status, e) = post(&h, &h.operator, &format!("/api/v1/tokens/{own}/revoke"), json!({})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("last_operator")));
    let (_, audit) = get(&h, &h.operator, "/api/v1/audit?limit=1000").await;
    assert!(audit.to_string().contains("token.revoke"), "{audit}");
    let (status, head) = get(&h, &h.operator, "/api/v1/audit/head").await;
    assert_eq!(status, StatusCode::OK);
    assert!(head["seq"].as_i64().unwrap() >= 3 && head["hash"].as_str().unwrap().len() == 64, "{head}");
    h.audit_verifies().await;
}

/// 405 and 414 answers had empty bodies. Every error is now the JSON error body, and every
/// answer carries the headers browsers need; cookies are Secure behind https.
#[tokio::test]
async fn every_error_is_json_and_pages_are_guarded() {
    let h = Harness::new(fast()).await;
    let cases: [(Method, String, StatusCode, &str); 4] = [
        (Method::DELETE, "/api/v1/jobs".to_owned(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (Method::PUT, "/healthz".to_owned(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (Method::GET, format!("/api/v1/jobs?state={}", "q".repeat(10_000)), StatusCode::URI_TOO_LONG, "uri_too_long"),
        (Method::GET, "/api/v1/nothing-here".to_owned(), StatusCode::NOT_FOUND, "not_found"),
    ];
    for (method, uri, status, code) in cases {
        let (got, e) = h.call(method.clone(), &uri, Some(&h.operator), None).await;
        assert_eq!(
            (got, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {}: {e}",
            &uri[..uri.len().min(40)]
        );
    }
    let page = |h: &Harness, path: &str| {
        let request = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        tower::ServiceExt::oneshot(h.app.clone(), request)
    };
    let response = page(&h, "/ui/signin").await.unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    // Behind https, the sign-in cookie is Secure.
    let secure = Harness::new(suanwang_control::config::ControlConfig {
        public_url: Some("https://compute.example.cn".to_owned()),
        ..fast()
    })
    .await;
    let request = axum::http::Request::post("/ui/signin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("token={}", secure.operator)))
        .unwrap();
    let response = tower::ServiceExt::oneshot(secure.app.clone(), request).await.unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("sw_token=") && cookie.ends_with("; Secure"), "{cookie}");
}
