//! Fit through the API, on the Greater Bay Area model (NVIDIA, Ascend, Cambricon and Hygon cards):
//! a job's framework and models decide where it may run, a job no pool could ever run is refused
//! at submit with the reason and the field, and quotes are the scheduler's own answer.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::http::StatusCode;
use common::{GREATER_BAY_AREA, Harness, fast, get, post};
use serde_json::{Value, json};

/// The software stack of the cards a job was placed on.
fn stack_of(h: &Harness, job: &Value) -> String {
    let pool = job["pool"].as_str().unwrap();
    let (_, pool) = h.state.federation.pools().find(|(_, p)| p.name == pool).unwrap();
    let catalog = h.state.federation.catalog();
    let model = pool.nodes.iter().find_map(|n| n.accelerator).unwrap();
    catalog.get(model).software_stack.clone()
}

async fn placed(h: &Harness, token: &str, body: Value) -> Value {
    let (status, job) = post(h, token, "/api/v1/jobs", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}: {job}");
    let id = job["id"].as_i64().unwrap();
    for _ in 0..200 {
        let (_, job) = get(h, token, &format!("/api/v1/jobs/{id}")).await;
        if job["pool"].is_string() {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("job {id} was never placed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_framework_decides_which_cards_a_job_may_use() {
    let h = Harness::with_federation(GREATER_BAY_AREA, fast()).await;
    h.start_sim_agents();
    let t = h.tenant("acme").await;
    // A plain card job is CUDA code: never Ascend, MLU or DCU.
    let plain = placed(&h, &t, json!({"name": "plain", "accelerators": 8, "duration_s": 30, "estimate_s": 3600})).await;
    assert_eq!(stack_of(&h, &plain), "CUDA", "{plain}");
    assert_eq!(plain["request"]["framework"], "cuda", "the default is written down: {plain}");
    // JAX and hand-written CUDA run only on NVIDIA; the explanation says what was left out and why.
    for framework in ["jax", "cuda"] {
        let job =
            placed(&h, &t, json!({"name": framework, "accelerators": 8, "framework": framework, "duration_s": 30}))
                .await;
        assert_eq!(stack_of(&h, &job), "CUDA", "{job}");
        let why = job["explanation"].as_str().unwrap();
        assert!(why.contains("left out") && why.contains("no accepted card (it has Ascend-910B)"), "{why}");
    }
    // MindSpore may use Ascend; with a pool pinned, the tenant chose the cards.
    let ms = placed(&h, &t, json!({"name": "ms", "accelerators": 8, "framework": "mindspore", "duration_s": 30})).await;
    assert!(["CANN", "CUDA"].contains(&stack_of(&h, &ms).as_str()), "{ms}");
    let pinned =
        placed(&h, &t, json!({"name": "mlu", "accelerators": 8, "pool": "jiangmen-mlu", "duration_s": 30})).await;
    assert_eq!(pinned["pool"], "jiangmen-mlu");
    // The job's own speed on a model counts: three times faster on H100 makes the H100 pools
    // the cheapest per unit of work.
    let fast_h100 = json!({"name": "h100", "accelerators": 8, "estimate_s": 36_000, "duration_s": 30,
        "accelerator_models": [{"model": "H100", "speed": 3.0}, "A800"]});
    let job = placed(&h, &t, fast_h100).await;
    assert!(job["pool"] == "hengqin-h100", "{job}");
    h.audit_verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_no_pool_could_ever_run_is_refused_with_the_reason() {
    let h = Harness::with_federation(GREATER_BAY_AREA, fast()).await;
    let t = h.tenant("acme").await;
    for (body, field, phrase) in [
        (json!({"name": "j", "accelerators": 16}), "accelerators", "no node with cards it accepts has more than 8"),
        (
            json!({"name": "j", "accelerators": 1, "residency_region": "CN-BJ"}),
            "residency_region",
            "no pool is in region",
        ),
        (
            json!({"name": "j", "accelerators": 1, "max_price_fen_per_card_hour": 10}),
            "max_price_fen_per_card_hour",
            "below every price",
        ),
        (
            json!({"name": "j", "accelerators": 1, "framework": "tensorflow", "accelerator_models": ["Ascend-910B"]}),
            "framework",
            "runs tensorflow",
        ),
        (json!({"name": "j", "accelerators": 8, "tasks": 4000}), "tasks", "no pool has room for 4000 tasks"),
        (
            json!({"name": "j", "accelerators": 1, "accelerator_models": ["A800"], "pool": "zhongshan-inference"}),
            "pool",
            "no pool has cards it accepts",
        ),
    ] {
        let (status, e) = post(&h, &t, "/api/v1/jobs", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(
            (e["error"]["code"].as_str(), e["error"]["field"].as_str()),
            (Some("unschedulable"), Some(field)),
            "{e}"
        );
        assert!(e["error"]["message"].as_str().unwrap().contains(phrase), "{body}: {e}");
    }
    for (body, status, code, field) in [
        (json!({"name": "j", "accelerators": 1, "framework": "fortran"}), 400, "unknown_framework", "framework"),
        (
            json!({"name": "j", "accelerators": 1, "accelerator_models": [{"model": "A800", "speed": -1}]}),
            400,
            "invalid_job",
            "accelerator_models",
        ),
        (
            json!({"name": "j", "accelerators": 1, "residency_region": "x".repeat(300)}),
            400,
            "too_long",
            "residency_region",
        ),
        (json!({"name": "j\u{0}", "accelerators": 1}), 422, "invalid_text", "name"),
    ] {
        let (got, e) = post(&h, &t, "/api/v1/jobs", body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {e}");
        assert_eq!((e["error"]["code"].as_str(), e["error"]["field"].as_str()), (Some(code), Some(field)), "{e}");
    }
    let (_, jobs) = get(&h, &t, "/api/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "nothing refused was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_are_the_schedulers_answer() {
    let h = Harness::with_federation(GREATER_BAY_AREA, fast()).await;
    h.start_sim_agents();
    let t = h.tenant("acme").await;
    // Wait for the leader to know every pool.
    for _ in 0..200 {
        let (_, q) = post(&h, &t, "/api/v1/quotes", json!({"accelerators": 8, "duration_s": 3600})).await;
        if q["options"].as_array().is_some_and(|o| !o.is_empty() && o.iter().all(|o| o["expected_start"] == "now")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, q) = post(&h, &t, "/api/v1/quotes", json!({"accelerators": 8, "duration_s": 3600})).await;
    assert_eq!(status, StatusCode::OK, "{q}");
    let options = q["options"].as_array().unwrap();
    let absent = q["absent"].as_array().unwrap();
    // The T4 pool has 4-card nodes: it cannot run 8 cards per task, and is not quoted.
    assert!(options.iter().all(|o| o["pool"] != "zhongshan-inference"), "{q}");
    let t4 = absent.iter().find(|a| a["pool"] == "zhongshan-inference").unwrap();
    assert_eq!(
        t4["reason"],
        "no node holds one task even when empty (its nodes have at most 4 cards, 64 cores, 256 GiB)"
    );
    // CUDA by default: Ascend pools are absent with their reason.
    assert!(
        absent.iter().any(|a| a["pool"] == "qianhai-ascend" && a["reason"] == "no accepted card (it has Ascend-910B)")
    );
    // Cheapest per unit of work first: cost = the expected run on that model × its rate.
    let costs: Vec<u64> = options.iter().map(|o| o["cost_fen"].as_u64().unwrap()).collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1]), "{costs:?}");
    for o in options {
        let run = o["expected_run_s"].as_u64().unwrap();
        let rate_fen = 8 * o["list_fen_per_card_hour"].as_u64().unwrap();
        assert_eq!(o["cost_fen"].as_u64().unwrap(), rate_fen * run / 3600, "{o}");
    }
    let h100 = options.iter().find(|o| o["model"] == "H100-SXM5-80GB").unwrap();
    assert!(h100["expected_run_s"].as_u64().unwrap() < 1_200, "an H100 runs an A100-hour in about 19 min: {h100}");
    // A drained pool would not start it now.
    let cheapest = options[0]["pool"].as_str().unwrap().to_owned();
    post(&h, &h.operator, &format!("/api/v1/pools/{cheapest}/drain"), json!({})).await;
    let mut drained = Value::Null;
    for _ in 0..100 {
        let (_, q) = post(&h, &t, "/api/v1/quotes", json!({"accelerators": 8, "duration_s": 3600})).await;
        drained = q["options"].as_array().unwrap().iter().find(|o| o["pool"] == cheapest.as_str()).unwrap().clone();
        if drained["expected_start"] == "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(drained["expected_start"], "queued", "{drained}");
    // 16 cards per task: no pool has such nodes; nothing is quoted, every pool says why.
    let (_, big) = post(&h, &t, "/api/v1/quotes", json!({"accelerators": 16, "duration_s": 3600})).await;
    assert!(big["options"].as_array().unwrap().is_empty(), "{big}");
    assert_eq!(big["absent"].as_array().unwrap().len(), 18);
    // More cards per task than a node can ever have is a bad request.
    let (status, e) = post(&h, &t, "/api/v1/quotes", json!({"accelerators": 64, "duration_s": 3600})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("accelerators")), "{e}");
}
