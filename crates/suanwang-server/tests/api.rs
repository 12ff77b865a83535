//! The HTTP API in process (tower `oneshot`, no sockets): the smallest job runs end to end, keys
//! make submission idempotent, tenants are isolated, bad input gets a 4xx with a stable code, the
//! OpenAPI document matches its snapshot and every route, and the audit chain verifies.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{HELLO, Harness, fast};
use serde_json::json;
use suanwang_agent::backend::Backend;
use suanwang_control::config::ControlConfig as ServerConfig;

#[tokio::test]
async fn the_smallest_job_runs_and_its_output_is_kept() {
    let h = Harness::new(fast()).await;
    h.start_agents();
    let token = h.tenant("acme").await;
    let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(HELLO)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["state"], "queued");
    let id = job["id"].as_i64().unwrap();
    let done = h.wait_for_state(&token, id, "succeeded").await;
    assert_eq!(done["pool"], "local", "a CPU job runs in the free local pool: {done:#}");
    let states: Vec<&str> = done["history"].as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["queued", "placed", "running", "succeeded"]);
    let (status, logs) = h.call(Method::GET, &format!("/api/v1/jobs/{id}/logs"), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logs["chunks"][0][1], "hello\n");
    let (_, why) = h.call(Method::GET, &format!("/api/v1/jobs/{id}/explain"), Some(&token), None).await;
    assert!(why["explanation"].as_str().unwrap().contains("local"), "{why}");
    h.audit_verifies().await;
}

#[tokio::test]
async fn gpu_jobs_go_to_gpu_pools_and_a_pin_is_obeyed() {
    let h = Harness::new(fast()).await;
    h.start_agents();
    let token = h.tenant("acme").await;
    let body = json!({"name": "train", "accelerators": 8, "cpu_milli": 8000, "memory_mib": 65536, "duration_s": 0})
        .to_string();
    let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let done = h.wait_for_state(&token, job["id"].as_i64().unwrap(), "succeeded").await;
    assert_eq!(done["pool"], "gpu");
    let pinned =
        json!({"name": "pinned", "command": ["true"], "cpu_milli": 100, "pool": "gpu", "duration_s": 0}).to_string();
    let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&pinned)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let done = h.wait_for_state(&token, job["id"].as_i64().unwrap(), "succeeded").await;
    assert_eq!(done["pool"], "gpu", "pinned to the GPU pool though the local pool is cheaper");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_job_and_refuses_a_different_body() {
    let h = Harness::new(fast()).await;
    let token = h.tenant("acme").await;
    let key = [("idempotency-key", "order-42")];
    let (first, a) = h.call_with(Method::POST, "/api/v1/jobs", Some(&token), Some(HELLO), &key).await;
    let (again, b) = h.call_with(Method::POST, "/api/v1/jobs", Some(&token), Some(HELLO), &key).await;
    assert_eq!((first, again), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["id"], b["id"]);
    let other = HELLO.replace("hello\"]", "bye\"]");
    let (status, error) = h.call_with(Method::POST, "/api/v1/jobs", Some(&token), Some(&other), &key).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "idempotency_conflict");
    // Keys belong to tenants: another tenant's same key is its own job.
    let other_tenant = h.tenant("globex").await;
    let (status, c) = h.call_with(Method::POST, "/api/v1/jobs", Some(&other_tenant), Some(HELLO), &key).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(a["id"], c["id"]);
    let (_, page) = h.call(Method::GET, "/api/v1/jobs", Some(&token), None).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_tenant_never_sees_or_touches_another_tenants_jobs() {
    let h = Harness::new(fast()).await;
    let (acme, globex) = (h.tenant("acme").await, h.tenant("globex").await);
    let (_, job) = h.call(Method::POST, "/api/v1/jobs", Some(&acme), Some(HELLO)).await;
    let id = job["id"].as_i64().unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/v1/jobs/{id}")),
        (Method::POST, format!("/api/v1/jobs/{id}/cancel")),
        (Method::GET, format!("/api/v1/jobs/{id}/logs")),
        (Method::GET, format!("/api/v1/jobs/{id}/explain")),
        (Method::GET, "/api/v1/jobs/999999".to_owned()),
    ] {
        let (status, error) = h.call(method, &path, Some(&globex), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {error}");
        assert_eq!(error["error"]["code"], "not_found");
    }
    let (_, page) = h.call(Method::GET, "/api/v1/jobs", Some(&globex), None).await;
    assert_eq!(page["jobs"], json!([]));
    let (_, page) = h.call(Method::GET, "/api/v1/jobs", Some(&h.operator), None).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "operators see every tenant's jobs");
    let (status, job) = h.call(Method::POST, &format!("/api/v1/jobs/{id}/cancel"), Some(&acme), None).await;
    assert_eq!((status, job["state"].as_str()), (StatusCode::OK, Some("cancelled")));
    let (status, error) = h.call(Method::POST, &format!("/api/v1/jobs/{id}/cancel"), Some(&acme), None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")));
}

#[tokio::test]
async fn tokens_and_roles_are_checked() {
    let h = Harness::new(fast()).await;
    let tenant = h.tenant("acme").await;
    let (status, error) = h.call(Method::GET, "/api/v1/jobs", None, None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
    let (status, error) = h.call(Method::GET, "/api/v1/jobs", Some("sw_wrong"), None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
    let (status, error) = h.call(Method::POST, "/api/v1/tenants", Some(&tenant), Some(r#"{"name":"mine"}"#)).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (status, _) = h.call(Method::POST, "/api/v1/pools/gpu/drain", Some(&tenant), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = json!({"role": "auditor"}).to_string();
    let (_, auditor) = h.call(Method::POST, "/api/v1/tokens", Some(&h.operator), Some(&body)).await;
    let auditor = auditor["token"].as_str().unwrap();
    let (status, _) = h.call(Method::POST, "/api/v1/jobs", Some(auditor), Some(HELLO)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "auditors only read");
    let (status, entries) = h.call(Method::GET, "/api/v1/audit", Some(auditor), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(entries.as_array().unwrap().len() >= 3, "{entries}");
    let (status, _) = h.call(Method::GET, "/api/v1/audit", Some(&tenant), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A provider token is scoped to its pool.
    let body = json!({"role": "provider", "pool": "gpu"}).to_string();
    let (_, provider) = h.call(Method::POST, "/api/v1/tokens", Some(&h.operator), Some(&body)).await;
    let provider = provider["token"].as_str().unwrap();
    let (status, _) = h.call(Method::POST, "/api/v1/pools/local/drain", Some(provider), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, pool) = h.call(Method::POST, "/api/v1/pools/gpu/drain", Some(provider), None).await;
    assert_eq!((status, pool["drained"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, pool) = h.call(Method::POST, "/api/v1/pools/gpu/undrain", Some(provider), None).await;
    assert_eq!((status, pool["drained"].as_bool()), (StatusCode::OK, Some(false)));
    // Tokens are stored hashed: the token itself is nowhere in the database file.
    let bytes = std::fs::read(h.dir.join("suanwang.db")).unwrap();
    assert!(!bytes.windows(tenant.len()).any(|w| w == tenant.as_bytes()));
    h.audit_verifies().await;
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_stable_code() {
    let h = Harness::new(fast()).await;
    let token = h.tenant("acme").await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1 << 20));
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("malformed", "{\"name\":".to_owned(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("not an object", "[1,2]".to_owned(), StatusCode::BAD_REQUEST, "invalid_body"),
        ("wrong type", HELLO.replace("500", "\"lots\""), StatusCode::BAD_REQUEST, "invalid_body"),
        ("unknown field", HELLO.replace("}", ",\"gpus\":1}"), StatusCode::BAD_REQUEST, "invalid_body"),
        ("negative", HELLO.replace("500", "-500"), StatusCode::BAD_REQUEST, "invalid_body"),
        (
            "absurd accelerators",
            HELLO.replace("\"accelerators\":0", "\"accelerators\":200"),
            StatusCode::BAD_REQUEST,
            "invalid_job",
        ),
        ("absurd memory", HELLO.replace("256", "4000000000"), StatusCode::BAD_REQUEST, "invalid_job"),
        ("empty name", HELLO.replace("\"hello\"", "\"\""), StatusCode::BAD_REQUEST, "invalid_job"),
        ("unknown pool", HELLO.replace("}", ",\"pool\":\"nowhere\"}"), StatusCode::BAD_REQUEST, "unknown_pool"),
        (
            "unknown model",
            HELLO.replace("}", ",\"accelerator_models\":[\"Z9000\"]}"),
            StatusCode::BAD_REQUEST,
            "invalid_job",
        ),
        ("too big", big, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
    ];
    for (what, body, status, code) in cases {
        let (got, error) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body)).await;
        assert_eq!(got, status, "{what}: {error}");
        assert_eq!(error["error"]["code"], code, "{what}: {error}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    for (uri, code) in [
        ("/api/v1/jobs/abc", "invalid_path"),
        ("/api/v1/jobs?limit=0", "invalid_query"),
        ("/api/v1/jobs?state=sleeping", "invalid_query"),
        ("/api/v1/jobs?colour=red", "invalid_query"),
    ] {
        let (status, error) = h.call(Method::GET, uri, Some(&token), None).await;
        assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{uri}: {error}");
    }
    let (status, error) = h.call(Method::GET, "/api/v1/nothing", Some(&token), None).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, error) =
        h.call_with(Method::POST, "/api/v1/jobs", Some(&token), Some(HELLO), &[("idempotency-key", "")]).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key")));
    let (_, page) = h.call(Method::GET, "/api/v1/jobs", Some(&token), None).await;
    assert_eq!(page["jobs"], json!([]), "nothing bad was stored");
}

#[tokio::test]
async fn list_filters_and_pages() {
    let h = Harness::new(fast()).await;
    let token = h.tenant("acme").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = HELLO.replace("\"hello\"", &format!("\"job-{i}\""));
        let (_, job) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body)).await;
        ids.push(job["id"].as_i64().unwrap());
    }
    let (_, page) = h.call(Method::GET, "/api/v1/jobs?limit=2", Some(&token), None).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_i64().unwrap();
    let (_, rest) = h.call(Method::GET, &format!("/api/v1/jobs?limit=10&after={after}"), Some(&token), None).await;
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 3);
    assert!(rest["next_after"].is_null());
    h.call(Method::POST, &format!("/api/v1/jobs/{}/cancel", ids[0]), Some(&token), None).await;
    let (_, cancelled) = h.call(Method::GET, "/api/v1/jobs?state=cancelled", Some(&token), None).await;
    assert_eq!(cancelled["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["jobs"][0]["id"], ids[0]);
}

/// Only the GPU pool's agent runs, and only until a long job runs there: the job's id.
async fn run_a_long_job_then_silence_the_gpu_agent(h: &Harness, token: &str) -> i64 {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    suanwang_control::start_agents(&h.state, &[("gpu".to_owned(), Backend::Sim)], &stopped);
    let body = json!({"name": "long", "accelerators": 8, "duration_s": 3600}).to_string();
    let (_, job) = h.call(Method::POST, "/api/v1/jobs", Some(token), Some(&body)).await;
    let id = job["id"].as_i64().unwrap();
    h.wait_for_state(token, id, "running").await;
    stop.send(true).unwrap();
    id
}

#[tokio::test]
async fn a_pool_whose_agent_stops_reporting_fails_its_jobs_over() {
    let config = ServerConfig { heartbeat_timeout: Duration::from_millis(600), ..fast() };
    let h = Harness::new(config).await;
    let token = h.tenant("acme").await;
    let id = run_a_long_job_then_silence_the_gpu_agent(&h, &token).await;
    let job = h.wait_for_state(&token, id, "queued").await;
    assert!(job["pool"].is_null(), "{job:#}");
    let (_, pool) = h.call(Method::GET, "/api/v1/pools/gpu", Some(&token), None).await;
    assert_eq!(pool["healthy"], false);
    // The agent comes back: the job runs again.
    suanwang_control::start_agents(&h.state, &[("gpu".to_owned(), Backend::Sim)], &h.shutdown.subscribe());
    h.wait_for_state(&token, id, "running").await;
    h.audit_verifies().await;
}

#[tokio::test]
async fn a_cluster_pool_whose_agent_goes_silent_keeps_its_jobs_until_the_failover_timeout() {
    // The GPU pool is a Slurm cluster here: its jobs run on without the agent.
    let federation = common::FEDERATION.replace(r#"backend = "sim""#, r#"backend = "slurm""#);
    let config = ServerConfig {
        heartbeat_timeout: Duration::from_millis(600),
        cluster_failover_timeout: Duration::from_secs(4),
        ..fast()
    };
    let h = Harness::with_federation(&federation, config).await;
    let token = h.tenant("acme").await;
    let id = run_a_long_job_then_silence_the_gpu_agent(&h, &token).await;
    let silent = std::time::Instant::now();
    // After the heartbeat timeout the pool takes no new work, but the job stays where it runs.
    loop {
        let (_, pool) = h.call(Method::GET, "/api/v1/pools/gpu", Some(&token), None).await;
        if pool["healthy"] == false {
            break;
        }
        assert!(silent.elapsed() < Duration::from_secs(3), "the silent pool is still healthy: {pool:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, job) = h.call(Method::GET, &format!("/api/v1/jobs/{id}"), Some(&token), None).await;
    assert!(silent.elapsed() < Duration::from_secs(4), "too slow to tell the two timeouts apart");
    assert_eq!((job["state"].as_str(), job["pool"].as_str()), (Some("running"), Some("gpu")), "{job:#}");
    let second = json!({"name": "waits", "accelerators": 1, "duration_s": 60}).to_string();
    let (_, waits) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&second)).await;
    // After the cluster failover timeout, it fails over.
    let job = h.wait_for_state(&token, id, "queued").await;
    assert!(job["pool"].is_null(), "{job:#}");
    // (Counted from the agent's last heartbeat, up to a poll before it stopped.)
    let after = silent.elapsed();
    assert!(
        after >= Duration::from_secs(3),
        "failed over {after:?} after the agent stopped, before the cluster timeout"
    );
    let (_, waits) = h.call(Method::GET, &format!("/api/v1/jobs/{}", waits["id"]), Some(&token), None).await;
    assert_eq!(waits["state"], "queued", "nothing is placed in a silent pool: {waits:#}");
    // The agent comes back: the job runs again.
    suanwang_control::start_agents(&h.state, &[("gpu".to_owned(), Backend::Sim)], &h.shutdown.subscribe());
    h.wait_for_state(&token, id, "running").await;
    h.audit_verifies().await;
}

/// Runs a first server on `dir` in a runtime of its own, then drops that runtime: every task of
/// the first server stops where it is, as in a crash (its leader lock goes with it).
fn run_then_crash<T: Send + 'static>(
    dir: std::path::PathBuf,
    body: impl AsyncFnOnce(&Harness) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let out = runtime.block_on(async {
            let first = Harness::open(dir, fast()).await;
            let out = body(&first).await;
            std::mem::forget(first); // keep its files
            out
        });
        drop(runtime);
        out
    })
    .join()
    .unwrap()
}

async fn wait_for_metric(h: &Harness, line: &str) -> String {
    let mut text = String::new();
    for _ in 0..60 {
        let (_, body) = h.call(Method::GET, "/metrics", None, None).await;
        text = body.as_str().unwrap().to_owned();
        if text.contains(line) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {line:?} in\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_carries_on_from_the_store() {
    let dir = std::env::temp_dir().join(format!("suanwang_api_restart_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (token, id) = run_then_crash(dir.clone(), async |first| {
        let token = first.tenant("acme").await;
        let (_, job) = first.call(Method::POST, "/api/v1/jobs", Some(&token), Some(HELLO)).await;
        (token, job["id"].as_i64().unwrap())
    });
    let second = Harness::open(dir, fast()).await;
    wait_for_metric(&second, "suanwang_scheduler_leader 1").await;
    second.start_agents();
    second.wait_for_state(&token, id, "succeeded").await;
    let (_, page) = second.call(Method::GET, "/api/v1/jobs", Some(&token), None).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "nothing lost, nothing doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_puts_running_jobs_back_in_their_pools() {
    let dir = std::env::temp_dir().join(format!("suanwang_api_restart_running_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (token, id) = run_then_crash(dir.clone(), async |first| {
        let token = first.tenant("acme").await;
        first.start_agents();
        let body = json!({"name": "long", "accelerators": 8, "duration_s": 3600}).to_string();
        let (_, job) = first.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body)).await;
        let id = job["id"].as_i64().unwrap();
        first.wait_for_state(&token, id, "running").await;
        (token, id)
    });
    // No agent yet: the job still holds its cards in its pool, and is not queued again.
    let second = Harness::open(dir, fast()).await;
    let text = wait_for_metric(&second, "suanwang_pool_cards_allocated{pool=\"gpu\"} 8.0").await;
    assert!(text.contains("suanwang_queue_length 0"), "{text}");
    // The pool's agent comes back without the job (it restarted too): the job runs again, once.
    second.start_agents();
    let job = wait_for_second_run(&second, &token, id).await;
    assert_eq!(job["state"], "running", "{job:#}");
    second.audit_verifies().await;
}

/// Waits until job `id` has started running a second time; returns it.
async fn wait_for_second_run(h: &Harness, token: &str, id: i64) -> serde_json::Value {
    for _ in 0..200 {
        let (_, job) = h.call(Method::GET, &format!("/api/v1/jobs/{id}"), Some(token), None).await;
        if job["history"].as_array().unwrap().iter().filter(|e| e["state"] == "running").count() == 2 {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id}, which its agent lost, never ran again");
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot_and_the_router() {
    let h = Harness::new(fast()).await;
    let (status, document) = h.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    expect_test::expect_file!["../../../docs/openapi.json"]
        .assert_eq(&format!("{}\n", serde_json::to_string_pretty(&document).unwrap()));
    // Every `.route(...)` in the router is in the document, and every documented path is routed.
    let source = include_str!("../src/lib.rs");
    let routed: std::collections::BTreeSet<String> =
        source.split(".route(\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect();
    let documented: std::collections::BTreeSet<String> =
        document["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(routed, documented);
}

#[tokio::test]
async fn jobs_an_agent_lost_in_a_restart_are_queued_again() {
    let h = Harness::new(fast()).await;
    let token = h.tenant("acme").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    suanwang_control::start_agents(&h.state, &[("gpu".to_owned(), Backend::Sim)], &stopped);
    let body = json!({"name": "long", "accelerators": 8, "duration_s": 3600}).to_string();
    let (_, job) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body)).await;
    let id = job["id"].as_i64().unwrap();
    h.wait_for_state(&token, id, "running").await;
    // The agent restarts at once (well inside the heartbeat timeout): its new self runs nothing.
    stop.send(true).unwrap();
    suanwang_control::start_agents(&h.state, &[("gpu".to_owned(), Backend::Sim)], &h.shutdown.subscribe());
    let job = wait_for_second_run(&h, &token, id).await;
    let history = job["history"].as_array().unwrap();
    assert!(history.iter().any(|e| e["detail"].as_str().unwrap().contains("no longer runs it")), "{job:#}");
    h.audit_verifies().await;
}

#[tokio::test]
async fn metrics_report_requests_jobs_queue_and_pools() {
    let h = Harness::new(fast()).await;
    h.start_agents();
    let token = h.tenant("acme").await;
    let body = json!({"name": "long", "accelerators": 8, "cpu_milli": 8000, "memory_mib": 65536, "duration_s": 3600})
        .to_string();
    let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    h.wait_for_state(&token, job["id"].as_i64().unwrap(), "running").await;
    // The scheduler publishes its view once a second.
    let mut text = String::new();
    for _ in 0..60 {
        let (status, body) = h.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        text = body.as_str().unwrap().to_owned();
        if text.contains("suanwang_pool_cards_allocated{pool=\"gpu\"} 8.0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in [
        "suanwang_scheduler_leader 1",
        "suanwang_queue_length 0",
        "suanwang_jobs{state=\"running\"} 1",
        "suanwang_jobs{state=\"queued\"} 0",
        "suanwang_pool_healthy{pool=\"gpu\"} 1",
        "suanwang_pool_drained{pool=\"gpu\"} 0",
        "suanwang_pool_cards{pool=\"gpu\"} 16.0",
        "suanwang_pool_cards_allocated{pool=\"gpu\"} 8.0",
        "suanwang_pool_cpu_cores_allocated{pool=\"gpu\"} 8.0",
        "suanwang_pool_memory_mib_allocated{pool=\"gpu\"} 65536",
        "suanwang_http_requests_total{method=\"POST\",route=\"/api/v1/jobs\",status=\"201\"} 1",
        "suanwang_http_request_duration_seconds_count{route=\"/api/v1/jobs/{id}\"}",
        "suanwang_scheduler_decisions_total 1",
        "# EOF",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert!(!text.contains("acme"), "no tenant's name in the metrics");
}

#[tokio::test]
async fn a_job_from_a_template_expands_with_defaults_and_overrides() {
    let h = Harness::new(fast()).await;
    let token = h.tenant("acme").await;
    let (status, apps) = h.call(Method::GET, "/api/v1/apps", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = apps.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for wanted in ["fine-tune", "inference-endpoint", "batch-inference", "hpc-mpi"] {
        assert!(names.contains(&wanted), "{names:?}");
    }
    let (status, app) = h.call(Method::GET, "/api/v1/apps/fine-tune", Some(&token), None).await;
    assert_eq!((status, app["title_zh"].as_str()), (StatusCode::OK, Some("大模型微调")));
    let body = json!({"template": "fine-tune", "params": {"model": "qwen2-7b", "cards": 4}, "priority": 3}).to_string();
    let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let request = &job["request"];
    assert_eq!(job["name"], "fine-tune-qwen2-7b");
    assert_eq!((request["accelerators"].as_i64(), request["cpu_milli"].as_i64()), (Some(4), Some(48_000)));
    assert_eq!(request["estimate_s"], 24 * 3600, "the default of hours");
    assert_eq!(request["priority"], 3, "the body's own field overrides the template's");
    assert_eq!(request["template"], "fine-tune");
    assert!(request.get("params").is_none());
    for (body, code) in [
        (json!({"template": "no-such-app"}), "unknown_template"),
        (json!({"template": "fine-tune"}), "missing_param"),
        (json!({"template": "fine-tune", "params": {"model": "m", "cards": 99}}), "invalid_param"),
        (json!({"template": "fine-tune", "params": {"model": "m", "colour": 1}}), "unknown_param"),
        (json!({"name": "x", "params": {"model": "m"}}), "invalid_job"),
        (json!({"template": "fine-tune", "params": {"model": "m", "dataset": "nowhere"}}), "unknown_dataset"),
    ] {
        let (status, error) = h.call(Method::POST, "/api/v1/jobs", Some(&token), Some(&body.to_string())).await;
        assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}");
    }
}

#[tokio::test]
async fn data_sets_are_registered_per_tenant_and_placement_counts_them() {
    let h = Harness::new(fast()).await;
    let acme = h.tenant("acme").await;
    let other = h.tenant("other").await;
    let corpus = json!({"name": "corpus", "site": "there", "size_bytes": 2_000_000_000_000_u64}).to_string();
    let (status, dataset) = h.call(Method::POST, "/api/v1/datasets", Some(&acme), Some(&corpus)).await;
    assert_eq!(status, StatusCode::CREATED, "{dataset}");
    let (status, error) = h.call(Method::POST, "/api/v1/datasets", Some(&acme), Some(&corpus)).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_exists")));
    for (body, code) in [
        (json!({"name": "x", "site": "mars", "size_bytes": 1}), "unknown_site"),
        (json!({"name": "bad name", "site": "here", "size_bytes": 1}), "invalid_name"),
        (json!({"name": "x", "site": "here", "size_bytes": 1, "tenant": "other"}), "invalid_request"),
    ] {
        let (status, error) = h.call(Method::POST, "/api/v1/datasets", Some(&acme), Some(&body.to_string())).await;
        assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}");
    }
    let (_, mine) = h.call(Method::GET, "/api/v1/datasets", Some(&acme), None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (_, theirs) = h.call(Method::GET, "/api/v1/datasets", Some(&other), None).await;
    assert!(theirs.as_array().unwrap().is_empty(), "a tenant sees only its own data sets");
    // A job that names the data set carries its site and size, and placement weighs the transfer.
    let job = json!({"name": "reads-corpus", "command": ["true"], "cpu_milli": 500, "dataset": "corpus"}).to_string();
    let (status, submitted) = h.call(Method::POST, "/api/v1/jobs", Some(&acme), Some(&job)).await;
    assert_eq!(status, StatusCode::CREATED, "{submitted}");
    assert_eq!(
        submitted["request"]["dataset"],
        json!({"name": "corpus", "site": "there", "size_bytes": 2_000_000_000_000_u64})
    );
    // The other tenant cannot use acme's data set by name.
    let (status, error) = h.call(Method::POST, "/api/v1/jobs", Some(&other), Some(&job)).await;
    assert_eq!((status, error["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("unknown_dataset")));
    h.start_agents();
    let placed = h.wait_for_state(&acme, submitted["id"].as_i64().unwrap(), "succeeded").await;
    let (_, why) = h.call(Method::GET, &format!("/api/v1/jobs/{}/explain", placed["id"]), Some(&acme), None).await;
    // The free local pool still wins (its link has no egress charge), and the transfer is counted.
    assert_eq!(placed["pool"], "local");
    assert!(why["explanation"].as_str().unwrap().contains("2000 GB moved in"), "{why}");
    h.audit_verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_balances_refuses_bad_transfers_and_agrees_across_servers() {
    let a = Harness::new(fast()).await;
    let b = Harness::open(a.dir.clone(), fast()).await; // a second server on the same store
    let op = a.operator.clone();
    for (id, kind, limit) in
        [(101, "world", "none"), (102, "tenant-cash", "debits-within-credits"), (103, "provider-payable", "none")]
    {
        let (status, account) =
            post_as(&a, &op, "/api/v1/ledger/accounts", json!({"id": id, "kind": kind, "limit": limit})).await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
    }
    let (status, _) = post_as(
        &a,
        &op,
        "/api/v1/ledger/accounts",
        json!({"id": 102, "kind": "tenant-cash", "limit": "debits-within-credits"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "opening the same account again");
    let (status, _) = post_as(
        &a,
        &op,
        "/api/v1/ledger/transfers",
        json!({"id": 10, "kind": "single", "debit": 101, "credit": 102, "amount_fen": 100_000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The other server sees the top-up, and its own charge builds on it.
    let (status, _) = post_as(
        &b,
        &op,
        "/api/v1/ledger/transfers",
        json!({"id": 11, "kind": "single", "debit": 102, "credit": 103, "amount_fen": 30_000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, cash) = a.call(Method::GET, "/api/v1/ledger/accounts/102", Some(&op), None).await;
    assert_eq!(cash["balance_fen"], 70_000, "{cash}");
    // A hold, then a partial settlement.
    let (status, _) = post_as(
        &b,
        &op,
        "/api/v1/ledger/transfers",
        json!({"id": 12, "kind": "pending", "debit": 102, "credit": 103, "amount_fen": 50_000, "timeout_s": 3600}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post_as(
        &a,
        &op,
        "/api/v1/ledger/transfers",
        json!({"id": 13, "kind": "post", "pending_id": 12, "amount_fen": 20_000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Bad input: a 4xx with the ledger's code, and nothing changes.
    let (_, before) = a.call(Method::GET, "/api/v1/ledger/trial-balance", Some(&op), None).await;
    for (body, status, code) in [
        (
            json!({"id": 20, "kind": "single", "debit": 102, "credit": 103, "amount_fen": 1_000_000}),
            StatusCode::CONFLICT,
            "exceeds_credits",
        ),
        (
            json!({"id": 20, "kind": "single", "debit": 102, "credit": 103, "amount_fen": 1_000_000}),
            StatusCode::CONFLICT,
            "exceeds_credits",
        ),
        (
            json!({"id": 21, "kind": "single", "debit": 102, "credit": 103, "amount_fen": 0}),
            StatusCode::BAD_REQUEST,
            "amount_invalid",
        ),
        (
            json!({"id": 22, "kind": "single", "debit": 102, "credit": 103, "amount_fen": -5}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"id": 23, "kind": "single", "debit": 99, "credit": 103, "amount_fen": 5}),
            StatusCode::BAD_REQUEST,
            "debit_account_not_found",
        ),
        (json!({"id": 24, "kind": "post", "pending_id": 12}), StatusCode::CONFLICT, "pending_already_posted"),
        (
            json!({"id": 10, "kind": "single", "debit": 101, "credit": 102, "amount_fen": 5}),
            StatusCode::CONFLICT,
            "exists_with_different_fields",
        ),
        (json!({"id": 25, "kind": "teleport"}), StatusCode::BAD_REQUEST, "invalid_transfer"),
    ] {
        let (got, error) = post_as(&b, &op, "/api/v1/ledger/transfers", body.clone()).await;
        assert_eq!((got, error["error"]["code"].as_str()), (status, Some(code)), "{body}");
    }
    // Funding the account does not make the refused id succeed on retry.
    post_as(
        &a,
        &op,
        "/api/v1/ledger/transfers",
        json!({"id": 30, "kind": "single", "debit": 101, "credit": 102, "amount_fen": 5_000_000}),
    )
    .await;
    let (got, _) = post_as(
        &a,
        &op,
        "/api/v1/ledger/transfers",
        json!({"id": 20, "kind": "single", "debit": 102, "credit": 103, "amount_fen": 1_000_000}),
    )
    .await;
    assert_eq!(got, StatusCode::CONFLICT);
    let (status, total) = b.call(Method::GET, "/api/v1/ledger/trial-balance", Some(&op), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(total["posted"]["debits_fen"], total["posted"]["credits_fen"]);
    assert_eq!(total["pending"]["debits_fen"], total["pending"]["credits_fen"]);
    assert_eq!(total["posted"]["debits_fen"], 100_000 + 30_000 + 20_000 + 5_000_000, "{before} then {total}");
    assert_eq!(total["pending"]["debits_fen"], 0, "the rest of the hold was released");
    // Roles: a tenant may not see the ledger.
    let tenant = a.tenant("acme").await;
    let (status, _) = a.call(Method::GET, "/api/v1/ledger/trial-balance", Some(&tenant), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A restarted server rebuilds the same figures from the store.
    let c = Harness::open(a.dir.clone(), fast()).await;
    let (_, again) = c.call(Method::GET, "/api/v1/ledger/trial-balance", Some(&op), None).await;
    assert_eq!(again, total);
    std::mem::forget(b);
    std::mem::forget(c);
}

async fn post_as(h: &Harness, token: &str, path: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    h.call(Method::POST, path, Some(token), Some(&body.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_never_undo_a_drain() {
    let h = Harness::new(fast()).await;
    let body = json!({"role": "provider", "pool": "gpu"}).to_string();
    let (_, provider) = h.call(Method::POST, "/api/v1/tokens", Some(&h.operator), Some(&body)).await;
    let provider = provider["token"].as_str().unwrap().to_owned();
    let beat = json!({"healthy": true, "running": []}).to_string();
    let heartbeat = || h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat));
    for round in 0..30 {
        let verb = if round % 2 == 0 { "drain" } else { "undrain" };
        let path = format!("/api/v1/pools/gpu/{verb}");
        let (a, (status, _), b, c) =
            tokio::join!(heartbeat(), h.call(Method::POST, &path, Some(&h.operator), None), heartbeat(), heartbeat());
        assert_eq!((a.0, status, b.0, c.0), (StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::OK));
        assert_eq!(heartbeat().await.0, StatusCode::OK);
        let (_, pool) = h.call(Method::GET, "/api/v1/pools/gpu", Some(&h.operator), None).await;
        assert_eq!(pool["drained"].as_bool(), Some(round % 2 == 0), "round {round}: {pool}");
    }
}

/// Issue 16: preemption on a Slurm pool ran jobs twice (the platform counted the cards free and
/// placed again while Slurm still ran the preempted copy). Now the victim's cards stay held, and
/// the job it made room for waits, until the pool's agent no longer lists the victim as running.
#[tokio::test]
async fn a_preemption_on_a_cluster_pool_waits_for_the_agent_to_stop_the_victim() {
    // Without a queue of Slurm's own, so that "no room" shows as a preempted job.
    let federation = common::FEDERATION.replace(r#"backend = "sim""#, "backend = \"slurm\"\nhandoff_pct = 0");
    let config = ServerConfig { policy: "priority".parse().unwrap(), ..fast() };
    let h = Harness::with_federation(&federation, config).await;
    let tenant = h.tenant("acme").await;
    let body = json!({"role": "provider", "pool": "gpu"}).to_string();
    let (_, provider) = h.call(Method::POST, "/api/v1/tokens", Some(&h.operator), Some(&body)).await;
    let provider = provider["token"].as_str().unwrap().to_owned();
    let beat = |running: &[i64]| json!({"healthy": true, "running": running}).to_string();
    let heartbeat = async |running: &[i64]| {
        let (status, _) = h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat(running))).await;
        assert_eq!(status, StatusCode::OK);
    };
    heartbeat(&[]).await;
    let submit = async |name: &str, priority: i32, preemptible: bool| {
        let body = json!({"name": name, "command": ["train"], "accelerators": 8, "pool": "gpu",
                          "priority": priority, "preemptible": preemptible});
        let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&tenant), Some(&body.to_string())).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job["id"].as_i64().unwrap()
    };
    // Two low-priority jobs fill the pool's 16 cards and run.
    let low = [submit("low-a", 0, true).await, submit("low-b", 0, true).await];
    for &id in &low {
        h.wait_for_state(&tenant, id, "placed").await;
        let running = json!({"state": "running", "detail": "running in Slurm"}).to_string();
        let path = format!("/api/v1/agent/jobs/{id}/state");
        assert_eq!(h.call(Method::POST, &path, Some(&provider), Some(&running)).await.0, StatusCode::OK);
    }
    heartbeat(&low).await;
    // The agent fetches its work (nothing to stop yet).
    let (_, work) = h.call(Method::GET, "/api/v1/agent/work", Some(&provider), None).await;
    assert_eq!(work["stop"], json!([]), "{work}");
    // A high-priority job preempts one of them.
    let high = submit("high", 10, false).await;
    let victim = loop {
        heartbeat(&low).await;
        let mut found = None;
        for &id in &low {
            let (_, job) = h.call(Method::GET, &format!("/api/v1/jobs/{id}"), Some(&tenant), None).await;
            if job["state"] == "preempted" {
                found = Some(id);
            }
        }
        if let Some(id) = found {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Until the agent has fetched its work since the preemption (and so was told to stop the
    // victim), a heartbeat without the victim proves nothing: the agent may be about to start it
    // from an earlier fetch.
    let other = if victim == low[0] { low[1] } else { low[0] };
    for _ in 0..5 {
        heartbeat(&[other]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, waiting) = h.call(Method::GET, &format!("/api/v1/jobs/{high}"), Some(&tenant), None).await;
    assert_eq!(waiting["state"], "queued", "confirmed before the agent was told: {waiting:#}");
    let (_, work) = h.call(Method::GET, "/api/v1/agent/work", Some(&provider), None).await;
    assert!(work["stop"].as_array().unwrap().contains(&json!(victim)), "the agent is told to stop it: {work}");
    // While the agent still runs the victim, its cards are not free: the high job waits, and no
    // second victim is taken.
    // Longer than the scheduler's read of the change feed (1 s), which sees the same change.
    for _ in 0..25 {
        heartbeat(&low).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, waiting) = h.call(Method::GET, &format!("/api/v1/jobs/{high}"), Some(&tenant), None).await;
    assert_eq!(waiting["state"], "queued", "placed on cards Slurm still uses: {waiting:#}");
    let (_, other_job) = h.call(Method::GET, &format!("/api/v1/jobs/{other}"), Some(&tenant), None).await;
    assert_eq!(other_job["state"], "running", "a second victim: {other_job:#}");
    // The agent's Slurm job ended: its heartbeat no longer lists it. Now the high job starts.
    heartbeat(&[other]).await;
    h.wait_for_state(&tenant, high, "placed").await;
    let (_, victim_job) = h.call(Method::GET, &format!("/api/v1/jobs/{victim}"), Some(&tenant), None).await;
    assert_eq!(victim_job["state"], "preempted", "no room to run it again yet: {victim_job:#}");
    // A cancel on a cluster holds the cards too (a cancel the agent had not carried out used to
    // leave the job running on cards the platform counted free): the victim gets them only when
    // the agent, told to stop the cancelled job, no longer lists it.
    let path = format!("/api/v1/jobs/{other}/cancel");
    assert_eq!(h.call(Method::POST, &path, Some(&tenant), Some("{}")).await.0, StatusCode::OK);
    let (_, work) = h.call(Method::GET, "/api/v1/agent/work", Some(&provider), None).await;
    assert!(work["stop"].as_array().unwrap().contains(&json!(other)), "{work}");
    // Longer than the scheduler's read of the change feed (1 s), which sees the same change.
    for _ in 0..25 {
        heartbeat(&[other, high]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, victim_job) = h.call(Method::GET, &format!("/api/v1/jobs/{victim}"), Some(&tenant), None).await;
    assert_eq!(victim_job["state"], "preempted", "placed on cards a cancelled job still uses: {victim_job:#}");
    heartbeat(&[high]).await;
    h.wait_for_state(&tenant, victim, "placed").await;
    h.audit_verifies().await;
}

/// A Slurm pool gets a pool's worth of work beyond its cards, for Slurm's own queue (so Slurm
/// starts the next job the moment one ends); its agent, waiting on `/agent/work`, is answered as
/// soon as work is placed; and output arrives in batches, each piece stored once.
#[tokio::test]
async fn a_slurm_pool_gets_work_for_its_own_queue_and_its_agent_is_woken() {
    let federation = common::FEDERATION.replace(r#"backend = "sim""#, r#"backend = "slurm""#);
    let h = Harness::with_federation(&federation, fast()).await;
    let tenant = h.tenant("acme").await;
    let body = json!({"role": "provider", "pool": "gpu"}).to_string();
    let (_, provider) = h.call(Method::POST, "/api/v1/tokens", Some(&h.operator), Some(&body)).await;
    let provider = provider["token"].as_str().unwrap().to_owned();
    let beat = json!({"healthy": true, "running": []}).to_string();
    assert_eq!(h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat)).await.0, StatusCode::OK);
    let (_, work) = h.call(Method::GET, "/api/v1/agent/work", Some(&provider), None).await;
    let version = work["version"].as_u64().unwrap();

    // The agent waits; five 8-card jobs arrive for the pool's 16 cards.
    let wait = format!("/api/v1/agent/work?wait_s=20&after={version}");
    let started = std::time::Instant::now();
    let submit_all = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let body = json!({"name": format!("j{i}"), "command": ["train"], "accelerators": 8, "pool": "gpu"});
            let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&tenant), Some(&body.to_string())).await;
            assert_eq!(status, StatusCode::CREATED, "{job}");
            ids.push(job["id"].as_i64().unwrap());
        }
        ids
    };
    let ((status, woken), ids) = tokio::join!(h.call(Method::GET, &wait, Some(&provider), None), submit_all);
    assert_eq!(status, StatusCode::OK, "{woken}");
    assert!(started.elapsed() < Duration::from_secs(10), "answered when work was placed, not after 20 s");
    assert_ne!(woken["version"].as_u64().unwrap(), version);
    assert!(!woken["start"].as_array().unwrap().is_empty(), "{woken}");

    // Two on the cards, two in Slurm's queue, the fifth waits on the platform.
    for &id in &ids[..4] {
        h.wait_for_state(&tenant, id, "placed").await;
    }
    let (_, fifth) = h.call(Method::GET, &format!("/api/v1/jobs/{}", ids[4]), Some(&tenant), None).await;
    assert_eq!(fifth["state"], "queued", "{fifth:#}");
    let mut handed = 0;
    for &id in &ids[..4] {
        let (_, job) = h.call(Method::GET, &format!("/api/v1/jobs/{id}/explain"), Some(&tenant), None).await;
        if job.to_string().contains("own queue") {
            handed += 1;
        }
    }
    assert_eq!(handed, 2, "two wait in Slurm's own queue");

    // Nothing changes: a wait with the current version lasts its wait_s.
    let (_, now) = h.call(Method::GET, "/api/v1/agent/work", Some(&provider), None).await;
    let current = now["version"].as_u64().unwrap();
    let started = std::time::Instant::now();
    let path = format!("/api/v1/agent/work?wait_s=1&after={current}");
    let (status, same) = h.call(Method::GET, &path, Some(&provider), None).await;
    assert_eq!((status, same["version"].as_u64()), (StatusCode::OK, Some(current)));
    assert!(started.elapsed() >= Duration::from_millis(900));
    let (status, refused) = h.call(Method::GET, "/api/v1/agent/work?wait_s=31&after=1", Some(&provider), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));

    // Output in batches: each piece once, however often the batch is sent. (Agents show control
    // characters as U+FFFD; the platform refuses them like any text.)
    let path = format!("/api/v1/agent/jobs/{}/log-batches", ids[0]);
    let batch = json!({"chunks": [{"seq": 1, "chunk": "one\n"}, {"seq": 5, "chunk": "two\n"}, {"seq": 9, "chunk": "thr\u{fffd}ee\n"}]});
    for _ in 0..2 {
        let (status, answer) = h.call(Method::POST, &path, Some(&provider), Some(&batch.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (_, logs) = h.call(Method::GET, &format!("/api/v1/jobs/{}/logs", ids[0]), Some(&tenant), None).await;
    let text: String = logs["chunks"].as_array().unwrap().iter().map(|c| c[1].as_str().unwrap()).collect();
    assert_eq!(text, "one\ntwo\nthr\u{fffd}ee\n");
    let too_many: Vec<_> = (1..=1025).map(|i| json!({"seq": i, "chunk": "x\n"})).collect();
    let body = json!({ "chunks": too_many }).to_string();
    let (status, refused) = h.call(Method::POST, &path, Some(&provider), Some(&body)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_log")));
    let other = format!("/api/v1/agent/jobs/{}/log-batches", ids[4]);
    let (status, _) = h.call(Method::POST, &other, Some(&provider), Some(&batch.to_string())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a job not placed in the pool");
    h.audit_verifies().await;
}

/// An agent says why its pool cannot take work, and the pool's health shows it until the agent
/// stops saying so; what it says is text like any other.
#[tokio::test]
async fn an_agents_problem_shows_in_the_pools_health() {
    let h = Harness::with_federation(common::FEDERATION, fast()).await;
    let tenant = h.tenant("acme").await;
    let body = json!({"role": "provider", "pool": "gpu"}).to_string();
    let (_, provider) = h.call(Method::POST, "/api/v1/tokens", Some(&h.operator), Some(&body)).await;
    let provider = provider["token"].as_str().unwrap().to_owned();
    let beat =
        |problem: Option<&str>| json!({"healthy": problem.is_none(), "running": [], "problem": problem}).to_string();
    let said = "Slurm lists no node in partition gpux: check the agent's --slurm-partition";
    let (status, _) = h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat(Some(said)))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, pool) = h.call(Method::GET, "/api/v1/pools/gpu", Some(&tenant), None).await;
    assert_eq!((pool["healthy"].as_bool(), pool["problem"].as_str()), (Some(false), Some(said)), "{pool:#}");
    let (status, _) = h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat(None))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, pool) = h.call(Method::GET, "/api/v1/pools/gpu", Some(&tenant), None).await;
    assert!(pool.get("problem").is_none(), "{pool:#}");
    let long = "x".repeat(2000);
    let (status, refused) =
        h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat(Some(&long)))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("too_long")), "{refused}");
    let (status, refused) =
        h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat(Some("a\u{1b}[2Jb")))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_text")));
}

/// An agent that lists its cluster's nodes (Slurm's `sinfo`) decides how many of the pool's
/// nodes take new work: with one of two drained, one 8-card job runs and the other waits; when
/// the node is back, it runs; more nodes than declared, each as large as the declared ones, grow
/// the pool (to twice its nodes at most). A node list out of bounds is refused.
#[tokio::test]
async fn a_pool_takes_work_only_on_the_nodes_its_agent_says_are_usable() {
    use serde_json::Value;
    let federation = common::FEDERATION.replace(r#"backend = "sim""#, "backend = \"slurm\"\nhandoff_pct = 0");
    let h = Harness::with_federation(&federation, fast()).await;
    let tenant = h.tenant("acme").await;
    let body = json!({"role": "provider", "pool": "gpu"}).to_string();
    let (_, provider) = h.call(Method::POST, "/api/v1/tokens", Some(&h.operator), Some(&body)).await;
    let provider = provider["token"].as_str().unwrap().to_owned();
    let node = |name: &str, cards: u32, usable: bool| json!({"name": name, "cards": cards, "cpus": 64, "memory_mb": 512_000, "usable": usable});
    let heartbeat = async |nodes: Value| {
        let beat = json!({"healthy": true, "running": [], "nodes": nodes}).to_string();
        h.call(Method::POST, "/api/v1/agent/heartbeat", Some(&provider), Some(&beat)).await
    };
    assert_eq!(heartbeat(json!([node("a", 8, true), node("b", 8, false)])).await.0, StatusCode::OK);
    let submit = async |name: &str| {
        let body = json!({"name": name, "command": ["train"], "accelerators": 8, "pool": "gpu"});
        let (status, job) = h.call(Method::POST, "/api/v1/jobs", Some(&tenant), Some(&body.to_string())).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job["id"].as_i64().unwrap()
    };
    let (first, second) = (submit("first").await, submit("second").await);
    h.wait_for_state(&tenant, first, "placed").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, waiting) = h.call(Method::GET, &format!("/api/v1/jobs/{second}"), Some(&tenant), None).await;
    assert_eq!(waiting["state"], "queued", "one node is drained: {waiting:#}");
    // A node with fewer cards than the pool's nodes does not stand for one of them.
    assert_eq!(heartbeat(json!([node("a", 8, true), node("b", 4, true)])).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, waiting) = h.call(Method::GET, &format!("/api/v1/jobs/{second}"), Some(&tenant), None).await;
    assert_eq!(waiting["state"], "queued", "{waiting:#}");
    assert_eq!(heartbeat(json!([node("a", 8, true), node("b", 8, true)])).await.0, StatusCode::OK);
    h.wait_for_state(&tenant, second, "placed").await;
    // The cluster has more nodes than the file declares: the model grows, but only by nodes at
    // least as large as the declared ones (128 cores, 1 TiB), and to at most twice the file's.
    let (third, fourth) = (submit("third").await, submit("fourth").await);
    let small = |name: &str| json!({"name": name, "cards": 8, "cpus": 64, "memory_mb": 2_000_000, "usable": true});
    let big = |name: &str| json!({"name": name, "cards": 8, "cpus": 128, "memory_mb": 1_048_576, "usable": true});
    assert_eq!(heartbeat(json!([big("a"), big("b"), small("c"), small("d")])).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, waiting) = h.call(Method::GET, &format!("/api/v1/jobs/{third}"), Some(&tenant), None).await;
    assert_eq!(waiting["state"], "queued", "nodes smaller than the declared ones do not grow the model: {waiting:#}");
    let bigs: Vec<Value> = (0..9).map(|i| big(&format!("n{i}"))).collect();
    assert_eq!(heartbeat(Value::Array(bigs)).await.0, StatusCode::OK);
    h.wait_for_state(&tenant, third, "placed").await;
    h.wait_for_state(&tenant, fourth, "placed").await;
    let fifth = submit("fifth").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, waiting) = h.call(Method::GET, &format!("/api/v1/jobs/{fifth}"), Some(&tenant), None).await;
    assert_eq!(waiting["state"], "queued", "four nodes at most (twice the file's two): {waiting:#}");
    // Out of bounds: refused, with the field.
    let (status, refused) = heartbeat(json!([node("a", 65, true)])).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_heartbeat")));
    let (status, _) = heartbeat(json!([node("a\u{1b}[2J", 8, true)])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let many: Vec<Value> = (0..4097).map(|i| node(&format!("n{i}"), 8, true)).collect();
    let (status, _) = heartbeat(Value::Array(many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// An array: `size` ordinary jobs from one body, each told its index; a retried key returns the
/// same jobs; the whole array counts against the queued-jobs quota; bad arrays get a 4xx that
/// names the field.
#[tokio::test]
async fn a_job_array_makes_indexed_jobs_once_per_key() {
    let h = Harness::new(fast()).await;
    h.start_agents();
    let token = h.tenant("acme").await;
    let body = json!({"size": 3, "job": {"name": "sweep", "cpu_milli": 100, "memory_mib": 64,
        "command": ["sh", "-c", "echo index=$SUANWANG_ARRAY_INDEX of $SUANWANG_ARRAY_SIZE"]}})
    .to_string();
    let key = [("idempotency-key", "sweep-1")];
    let (status, array) = h.call_with(Method::POST, "/api/v1/job-arrays", Some(&token), Some(&body), &key).await;
    assert_eq!(status, StatusCode::CREATED, "{array}");
    assert_eq!(array["size"], 3);
    let ids: Vec<i64> = array["job_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    for (index, id) in ids.iter().enumerate() {
        let done = h.wait_for_state(&token, *id, "succeeded").await;
        assert_eq!(done["name"], format!("sweep[{index}]"));
        let (_, logs) = h.call(Method::GET, &format!("/api/v1/jobs/{id}/logs"), Some(&token), None).await;
        assert_eq!(logs["chunks"][0][1], format!("index={index} of 3\n"));
    }
    let (again, same) = h.call_with(Method::POST, "/api/v1/job-arrays", Some(&token), Some(&body), &key).await;
    assert_eq!((again, &same["job_ids"]), (StatusCode::OK, &array["job_ids"]), "a retry makes nothing new");

    for (bad, code, field) in [
        (json!({"size": 0, "job": {"name": "x", "command": ["true"]}}), "invalid_job", "size"),
        (json!({"size": 1001, "job": {"name": "x", "command": ["true"]}}), "invalid_job", "size"),
        (json!({"size": 2, "job": {"name": "x", "cpu_milli": "many"}}), "invalid_body", "job.cpu_milli"),
        (
            json!({"size": 2, "job": {"name": "x", "command": ["true"], "env": {"SUANWANG_ARRAY_INDEX": "7"}}}),
            "invalid_job",
            "job",
        ),
    ] {
        let (status, error) = h.call(Method::POST, "/api/v1/job-arrays", Some(&token), Some(&bad.to_string())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} {error}");
        assert_eq!(
            (error["error"]["code"].as_str(), error["error"]["field"].as_str()),
            (Some(code), Some(field)),
            "{bad}"
        );
    }
    let (status, error) =
        h.call(Method::POST, "/api/v1/job-arrays", Some(&token), Some(r#"{"size": 2, "job": {}, "more": 1}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    // More jobs than the quota lets wait: the array is refused whole.
    let (globex_id, globex) = common::tenant(&h, "globex", "sme", "Shenzhen").await;
    let quotas = format!("/api/v1/tenants/{globex_id}/quotas");
    let (status, _) = h.call(Method::POST, &quotas, Some(&h.operator), Some(r#"{"queued_jobs": 5}"#)).await;
    assert_eq!(status, StatusCode::OK);
    let big = json!({"size": 6, "job": {"name": "big", "command": ["true"]}}).to_string();
    let (status, error) = h.call(Method::POST, "/api/v1/job-arrays", Some(&globex), Some(&big)).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("quota_exceeded")),
        "{error}"
    );
    let (_, page) = h.call(Method::GET, "/api/v1/jobs", Some(&globex), None).await;
    assert!(page["jobs"].as_array().unwrap().is_empty(), "nothing made: {page}");
}
