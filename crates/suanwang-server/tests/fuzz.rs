//! Property test over the job endpoints: random bodies (mutations of a valid job, random JSON,
//! random bytes), random paths, queries and headers, with random tokens. Whatever arrives, the
//! answer is never a 5xx, never a panic, and every error is the JSON error body with a code.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, fast};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A JSON value of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1e300)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The fields of a job body, each with a value of the right type most of the time.
fn job_field() -> impl Strategy<Value = (String, Value)> {
    let names = prop::sample::select(vec![
        "name",
        "command",
        "accelerators",
        "accelerator_milli",
        "accelerator_models",
        "cpu_milli",
        "memory_mib",
        "tasks",
        "priority",
        "preemptible",
        "pool",
        "estimate_s",
        "duration_s",
        "dataset",
        "residency_region",
        "latency",
        "max_price_fen_per_card_hour",
        "green",
        "tenant",
        "unknown_field",
    ]);
    let values = prop_oneof![
        3 => (0u64..5000).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec!["local", "gpu", "nowhere", "", "A800-SXM4-80GB", "here", "CN-GD"]).prop_map(Value::from),
        1 => Just(json!({"site": "here", "size_bytes": 1_000_000_000u64})),
        1 => Just(json!({"site": "there", "max_ms": 5.0})),
        1 => Just(json!({"site": "nowhere", "max_ms": -1.0})),
        1 => Just(json!(["sh", "-c", "true"])),
        1 => Just(json!("-")),
        1 => any_json(),
    ];
    (names.prop_map(str::to_owned), values)
}

#[derive(Debug, Clone)]
enum BodyKind {
    Job(Vec<(String, Value)>),
    Json(Value),
    Bytes(Vec<u8>),
}

fn body() -> impl Strategy<Value = BodyKind> {
    prop_oneof![
        4 => prop::collection::vec(job_field(), 0..4).prop_map(BodyKind::Job),
        1 => any_json().prop_map(BodyKind::Json),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(BodyKind::Bytes),
    ]
}

fn path() -> impl Strategy<Value = (Method, String)> {
    let id = prop_oneof![
        Just("1".to_owned()),
        Just("0".to_owned()),
        Just("-5".to_owned()),
        Just("99999999999999999999".to_owned()),
        "[a-z%0-9]{1,8}"
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?limit=0".to_owned()),
        Just("?limit=5000".to_owned()),
        Just("?state=queued,nope".to_owned()),
        Just("?after=-1&limit=1".to_owned()),
        "\\?[a-z]{1,6}=[a-z0-9%,]{0,8}",
    ];
    (prop::sample::select(vec!["submit", "list", "show", "cancel", "logs", "explain"]), id, query).prop_map(
        |(what, id, query)| match what {
            "submit" => (Method::POST, format!("/api/v1/jobs{query}")),
            "list" => (Method::GET, format!("/api/v1/jobs{query}")),
            "show" => (Method::GET, format!("/api/v1/jobs/{id}{query}")),
            "cancel" => (Method::POST, format!("/api/v1/jobs/{id}/cancel")),
            "logs" => (Method::GET, format!("/api/v1/jobs/{id}/logs{query}")),
            _ => (Method::GET, format!("/api/v1/jobs/{id}/explain{query}")),
        },
    )
}

#[test]
fn no_request_to_the_job_endpoints_gets_a_5xx_or_a_panic() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (h, tenant) = runtime.block_on(async {
        let h = Harness::new(fast()).await;
        let tenant = h.tenant("acme").await;
        (h, tenant)
    });
    let tokens = [Some(tenant.as_str()), Some(h.operator.as_str()), Some("sw_wrong"), None];
    let config = ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() };
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    proptest!(config, |(route in path(), body in body(), token in prop_oneof![9 => Just(0usize), 9 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize)], key in prop::option::of("[ -~]{0,140}"))| {
        let (method, uri) = route;
        let text = match &body {
            BodyKind::Job(fields) => {
                // A valid job with a few fields replaced (or, for "-", removed).
                let mut job: Value = serde_json::from_str(common::HELLO).unwrap();
                for (name, value) in fields {
                    if value == "-" {
                        job.as_object_mut().unwrap().remove(name);
                    } else {
                        job[name.as_str()] = value.clone();
                    }
                }
                Some(job.to_string())
            }
            BodyKind::Json(value) => Some(value.to_string()),
            BodyKind::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        };
        let headers: Vec<(&str, &str)> = key.as_deref().map(|k| ("idempotency-key", k)).into_iter().collect();
        let body = if method == Method::POST { text.as_deref() } else { None };
        let (status, answer) = runtime.block_on(h.call_with(method, &uri, tokens[token], body, &headers));
        *seen.lock().unwrap().entry(status.as_u16()).or_default() += 1;
        prop_assert!(!status.is_server_error(), "{uri}: {status} {answer}");
        if status.is_client_error() {
            prop_assert!(answer["error"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{uri}: {status} {answer}");
            prop_assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{uri}: {status} {answer}");
        } else {
            prop_assert!(status == StatusCode::OK || status == StatusCode::CREATED, "{uri}: {status}");
        }
    });
    // The generator reaches both sides: accepted jobs and each kind of refusal.
    let seen = seen.into_inner().unwrap();
    eprintln!("statuses over {} requests: {seen:?}", seen.values().sum::<u32>());
    for status in [200, 201, 400, 401, 404] {
        assert!(seen.contains_key(&status), "no {status} in {seen:?}");
    }
    runtime.block_on(h.audit_verifies());
}
