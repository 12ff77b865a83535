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
