//! Metering from the platform's own record: the test is a pool's agent on a clock it moves by
//! hand. What a run is billed is the allocation the platform placed (cards, fractions, CPU and
//! memory, the model the job got) for the time the run held it, bounded by the platform's record
//! and the job's time limit; the agent only says when. Cancels and preemptions end runs too.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{Harness, fast, get, post, token, wall_ms};
use serde_json::{Value, json};
use suanwang_control::clock::{Clock, ManualClock};
use suanwang_control::config::ControlConfig;

const MIXED: &str = r#"
name = "metering"
[[site]]
name = "here"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.5
longitude_deg = 113.9

[[pool]]
name = "mixed"
site = "here"
provider = "a data centre"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800-SXM4-80GB" = 1200, "H20" = 600 }
cpu_core_hour_fen = 5
memory_gib_hour_fen = 1
[[pool.nodes]]
count = 1
accelerator = "A800-SXM4-80GB"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576
[[pool.nodes]]
count = 1
accelerator = "H20"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576

[[pool]]
name = "other"
site = "here"
provider = "another data centre"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800-SXM4-80GB" = 1500 }
[[pool.nodes]]
count = 1
accelerator = "A800-SXM4-80GB"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576
"#;

fn config(policy: &str) -> ControlConfig {
    ControlConfig {
        heartbeat_timeout: Duration::from_secs(1_000_000),
        cluster_failover_timeout: Duration::from_secs(1_000_000),
        policy: policy.parse().unwrap(),
        ..fast()
    }
}

struct Agent<'a> {
    h: &'a Harness,
    token: String,
}

impl Agent<'_> {
    async fn beat(&self, running: &[i64]) {
        let (status, r) =
            post(self.h, &self.token, "/api/v1/agent/heartbeat", json!({"healthy": true, "running": running})).await;
        assert_eq!(status, StatusCode::OK, "{r}");
    }

    async fn work(&self) -> Value {
        let (status, work) = get(self.h, &self.token, "/api/v1/agent/work").await;
        assert_eq!(status, StatusCode::OK, "{work}");
        work
    }

    /// Waits until `job` is in this pool's work to start.
    async fn placed(&self, job: i64) -> Value {
        for _ in 0..400 {
            self.beat(&[]).await;
            let work = self.work().await;
            if let Some(item) = work["start"].as_array().unwrap().iter().find(|w| w["id"] == job) {
                return item.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("job {job} was never placed here");
    }

    async fn report(&self, job: i64, body: Value) -> (StatusCode, Value) {
        post(self.h, &self.token, &format!("/api/v1/agent/jobs/{job}/state"), body).await
    }
}

async fn submit(h: &Harness, token: &str, body: Value) -> i64 {
    let (status, job) = post(h, token, "/api/v1/jobs", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}: {job}");
    job["id"].as_i64().unwrap()
}

/// The invoice line of `job` (rated by the biller first).
async fn billed(h: &Harness, tenant: &str, job: i64) -> Value {
    suanwang_control::money::bill(&h.state).await.unwrap();
    let (_, list) = get(h, tenant, "/api/v1/invoices").await;
    for invoice in list.as_array().unwrap() {
        let path = format!("/api/v1/invoices/{}/{}", invoice["tenant"], invoice["period"].as_str().unwrap());
        let (_, inv) = get(h, tenant, &path).await;
        if let Some(line) = inv["lines"].as_array().unwrap().iter().find(|l| l["job"] == job) {
            return line.clone();
        }
    }
    panic!("job {job} is on no invoice: {list}");
}

/// Runs `job` for `run_ms` by the clock and ends it.
async fn run(agent: &Agent<'_>, clock: &ManualClock, job: i64, run_ms: i64) -> Value {
    let item = agent.placed(job).await;
    let start = clock.now_ms();
    assert_eq!(
        agent.report(job, json!({"state": "running", "detail": "started", "at_ms": start})).await.0,
        StatusCode::OK
    );
    clock.advance(run_ms);
    agent.beat(&[job]).await;
    let end = json!({"state": "succeeded", "detail": "exit code 0", "at_ms": start + run_ms});
    assert_eq!(agent.report(job, end.clone()).await.0, StatusCode::OK);
    assert_eq!(agent.report(job, end).await.0, StatusCode::OK, "a retried end is not an error");
    item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_billed_for_what_the_platform_placed() {
    let clock = Arc::new(ManualClock::at(wall_ms()));
    let h = Harness::with_federation_and_clock(MIXED, config("fifo+backfill"), clock.clone()).await;
    let t = h.tenant("acme").await;
    let agent = Agent { h: &h, token: token(&h, json!({"role": "provider", "pool": "mixed"})).await };
    let hour = 3_600_000;

    // Half an H20 for an hour: half its price.
    let half = submit(&h, &t, json!({"name": "half", "accelerators": 1, "accelerator_milli": 500, "accelerator_models": ["H20"], "duration_s": 1})).await;
    let item = run(&agent, &clock, half, hour).await;
    assert_eq!(item["model"], "H20", "{item}");
    let line = billed(&h, &t, half).await;
    assert_eq!((line["amount_fen"].as_u64(), line["card_hours"].as_f64()), (Some(300), Some(0.5)), "{line}");

    // CPU only: 4 cores × ¥0.05 + 8 GiB × ¥0.01, for an hour.
    let cpu =
        submit(&h, &t, json!({"name": "cpu", "cpu_milli": 4000, "memory_mib": 8192, "pool": "mixed", "duration_s": 1}))
            .await;
    run(&agent, &clock, cpu, hour).await;
    assert_eq!(billed(&h, &t, cpu).await["amount_fen"], 28);

    // Two models in one pool: each job pays for the model it got.
    let a800 =
        submit(&h, &t, json!({"name": "a800", "accelerators": 8, "accelerator_models": ["A800"], "duration_s": 1}))
            .await;
    assert_eq!(run(&agent, &clock, a800, hour).await["model"], "A800-SXM4-80GB");
    assert_eq!(billed(&h, &t, a800).await["amount_fen"], 9_600);
    let h20 =
        submit(&h, &t, json!({"name": "h20", "accelerators": 8, "accelerator_models": ["H20"], "duration_s": 1})).await;
    run(&agent, &clock, h20, hour).await;
    assert_eq!(billed(&h, &t, h20).await["amount_fen"], 4_800);

    // At most the time limit, whatever the agent says.
    let limited = submit(&h, &t, json!({"name": "limited", "accelerators": 8, "accelerator_models": ["A800"], "time_limit_s": 600, "duration_s": 1})).await;
    run(&agent, &clock, limited, hour).await;
    assert_eq!(billed(&h, &t, limited).await["amount_fen"], 1_600, "10 minutes of 8 cards at ¥12");

    // An agent's times outside the record are bounded by it: a start before the placement, an
    // end after the report.
    let bounded =
        submit(&h, &t, json!({"name": "bounded", "accelerators": 8, "accelerator_models": ["A800"], "duration_s": 1}))
            .await;
    agent.placed(bounded).await;
    let placed_at = clock.now_ms();
    let early = json!({"state": "running", "detail": "started", "at_ms": placed_at - 86_400_000});
    assert_eq!(agent.report(bounded, early).await.0, StatusCode::OK);
    clock.advance(hour);
    agent.beat(&[bounded]).await;
    let late = json!({"state": "succeeded", "detail": "done", "at_ms": i64::MAX});
    assert_eq!(agent.report(bounded, late).await.0, StatusCode::OK);
    assert_eq!(billed(&h, &t, bounded).await["amount_fen"], 9_600, "one hour, from the placement to the report");

    // Cancelling a running job ends its run then.
    let cancelled = submit(
        &h,
        &t,
        json!({"name": "cancelled", "accelerators": 8, "accelerator_models": ["A800"], "duration_s": 1}),
    )
    .await;
    agent.placed(cancelled).await;
    let start = clock.now_ms();
    agent.report(cancelled, json!({"state": "running", "detail": "started", "at_ms": start})).await;
    clock.advance(hour / 2);
    let (status, _) = post(&h, &t, &format!("/api/v1/jobs/{cancelled}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(agent.work().await["stop"].as_array().unwrap().contains(&json!(cancelled)), "the agent is told to stop it");
    assert_eq!(billed(&h, &t, cancelled).await["amount_fen"], 4_800, "half an hour");

    // What an agent may not report: other pools' jobs, unknown jobs, absurd figures.
    let elsewhere = Agent { h: &h, token: token(&h, json!({"role": "provider", "pool": "other"})).await };
    for (job, path) in [(a800, "state"), (999_999, "state")] {
        let (status, e) = elsewhere.report(job, json!({"state": "failed", "detail": "x"})).await;
        assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_job")), "{path}: {e}");
    }
    let foreign = json!({"event_id": "x", "job_id": a800, "accelerator_ms": 1});
    let (status, e) = post(&h, &elsewhere.token, "/api/v1/agent/usage", foreign).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_job")));
    let negative = json!({"event_id": "y", "job_id": a800, "accelerator_ms": -5});
    let (status, e) = post(&h, &agent.token, "/api/v1/agent/usage", negative).await;
    assert_eq!((status, e["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("accelerator_ms")));
    let (status, page) = get(&h, &t, &format!("/api/v1/jobs/{a800}")).await;
    assert_eq!((status, page["usage_accelerator_s"].as_f64()), (StatusCode::OK, Some(28_800.0)), "{page}");
    h.audit_verifies().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preempted_run_is_billed_until_it_is_preempted_and_its_agent_stops_it() {
    let clock = Arc::new(ManualClock::at(wall_ms()));
    let h = Harness::with_federation_and_clock(MIXED, config("priority"), clock.clone()).await;
    let t = h.tenant("acme").await;
    let agent = Agent { h: &h, token: token(&h, json!({"role": "provider", "pool": "other"})).await };
    let low = submit(
        &h,
        &t,
        json!({"name": "low", "accelerators": 8, "pool": "other", "preemptible": true, "duration_s": 1}),
    )
    .await;
    agent.placed(low).await;
    let start = clock.now_ms();
    agent.report(low, json!({"state": "running", "detail": "started", "at_ms": start})).await;
    clock.advance(1_800_000);
    agent.beat(&[low]).await;
    let high =
        submit(&h, &t, json!({"name": "high", "accelerators": 8, "pool": "other", "priority": 10, "duration_s": 1}))
            .await;
    // Until the scheduler has preempted `low`, the agent still runs it (a heartbeat without it
    // before then would mean it was lost, not stopped).
    for _ in 0..400 {
        let (_, job) = get(&h, &t, &format!("/api/v1/jobs/{low}")).await;
        if job["state"] == "preempted" {
            break;
        }
        agent.beat(&[low]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let item = agent.placed(high).await;
    assert_eq!(item["id"], high);
    let (_, job) = get(&h, &t, &format!("/api/v1/jobs/{low}")).await;
    assert_eq!(job["state"], "preempted", "{job}");
    let work = agent.work().await;
    assert!(work["stop"].as_array().unwrap().contains(&json!(low)), "the agent is told to stop it: {work}");
    // Half an hour of 8 cards at ¥15.
    assert_eq!(billed(&h, &t, low).await["amount_fen"], 6_000);
    // The agent's late end of the stopped run changes nothing.
    let (status, e) = agent.report(low, json!({"state": "succeeded", "detail": "exit code 0"})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")), "{e}");
    assert_eq!(billed(&h, &t, low).await["amount_fen"], 6_000);
}
