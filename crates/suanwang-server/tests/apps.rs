//! Every built-in application submits with its defaults (and only its required parameters) and
//! runs to success on the Greater Bay Area model with simulated pools.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::http::StatusCode;
use common::{GREATER_BAY_AREA, Harness, fast, get, post};
use serde_json::{Map, Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_application_submits_and_runs() {
    let h = Harness::with_federation(GREATER_BAY_AREA, fast()).await;
    h.start_sim_agents();
    let t = h.tenant("acme").await;
    let (status, d) = post(
        &h,
        &t,
        "/api/v1/datasets",
        json!({"name": "corpus", "site": "shaoguan-hub", "size_bytes": 1_000_000_000_000u64}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let (_, apps) = get(&h, &t, "/api/v1/apps").await;
    let apps = apps.as_array().unwrap();
    assert!(apps.len() >= 4);
    let mut jobs = Vec::new();
    for app in apps {
        let mut params = Map::new();
        for p in app["param"].as_array().unwrap().iter().filter(|p| p["required"] == true) {
            let value = match (p["name"].as_str().unwrap(), p["type"].as_str().unwrap()) {
                ("dataset", _) => json!("corpus"),
                (_, "integer") => p["min"].clone(),
                (_, _) => json!("x"),
            };
            params.insert(p["name"].as_str().unwrap().to_owned(), value);
        }
        // Simulated pools run a job for its duration_s: one second here.
        let body = json!({"template": app["name"], "params": params, "duration_s": 1});
        let (status, job) = post(&h, &t, "/api/v1/jobs", body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {job}");
        jobs.push((app["name"].clone(), job["id"].as_i64().unwrap()));
    }
    for (app, id) in jobs {
        let job = h.wait_for_state(&t, id, "succeeded").await;
        assert_eq!(job["request"]["template"], app, "{job}");
        let command = job["request"]["command"].as_array().unwrap();
        assert!(command.iter().all(Value::is_string), "{app}: {job}");
    }
}
