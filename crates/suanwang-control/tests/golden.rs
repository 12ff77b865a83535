//! A history written by an earlier version of the platform reads back the same: the SQLite
//! database `golden/history-9d96371.sqlite` was made by the binary of commit 9d96371 with
//! `scripts/golden-history.sh` (jobs of every shape, usage, invoices, a voucher programme with an
//! application, a claim and a redemption, market orders, an auction and a contract, a payment).
//! `golden/history-9d96371.seen.txt` is what that version's API answered about it.
//!
//! Opened by today's code, the database migrates, every stored job body reads as today's typed
//! job request and writes back to the same bytes (so the idempotency digests still match), the
//! books replay to the same balances, invoices, claims, contracts and programme figures, and the
//! open job is put back in its pool.

#![allow(clippy::unwrap_used, reason = "a test that cannot read its fixture should fail loudly")]

use std::time::Duration;

use serde_json::Value;
use suanwang_api::jobs::{JobRequest, ListQuery};
use suanwang_control::auth::Caller;
use suanwang_control::config::ControlConfig;
use suanwang_model::platform::{JobState, Role};
use suanwang_store::model::{JobFilter, Principal};
use suanwang_store::store::Store;

/// The federation `serve --demo` ran: the Greater Bay Area model and a `local` pool.
fn demo_federation() -> suanwang_model::federation::Federation {
    let text = format!(
        "{}\n[[site]]\nname = \"this-machine\"\ncity = \"Shenzhen\"\nregion = \"CN-GD\"\nlatitude_deg = 22.53\n\
         longitude_deg = 113.9\n\n[[pool]]\nname = \"local\"\nsite = \"this-machine\"\nprovider = \"this machine\"\n\
         backend = \"local\"\npue = 1.0\ncard_hour_fen = {{}}\n\n[[pool.nodes]]\ncount = 1\naccelerators_per_node = 0\n\
         cpu_milli = 2000\nmemory_mib = 8192\n",
        include_str!("../../../examples/federations/greater-bay-area.toml")
    );
    suanwang_formats::federation::parse("demo", &text, &suanwang_formats::catalog::builtin()).unwrap()
}

/// What the earlier version answered, by path.
fn seen() -> Vec<(String, Value)> {
    include_str!("golden/history-9d96371.seen.txt")
        .split("== ")
        .skip(1)
        .map(|block| {
            let (path, body) = block.split_once('\n').unwrap();
            (path.to_owned(), serde_json::from_str(body.trim()).unwrap())
        })
        .collect()
}

fn answered(path: &str) -> Value {
    seen().into_iter().find(|(p, _)| p == path).map(|(_, v)| v).unwrap()
}

fn operator() -> Caller {
    Caller {
        principal: Principal {
            token_id: 1,
            role: Role::Operator,
            tenant_id: None,
            pool: None,
            label: "golden".to_owned(),
            expires_ms: None,
        },
    }
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_written_by_the_earlier_version_reads_back_the_same() {
    let dir = std::env::temp_dir().join(format!("suanwang_golden_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("suanwang.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/history-9d96371.sqlite"), &path).unwrap();
    let store = Store::open_sqlite(&path).await.unwrap();

    // Every stored body is today's typed request, and writes back to the same bytes.
    let all = store.jobs(&JobFilter::default(), 0, 1000).await.unwrap();
    assert_eq!(all.len(), 10);
    for job in &all {
        let request: JobRequest = serde_json::from_str(&job.spec).unwrap_or_else(|e| panic!("job {}: {e}", job.id));
        assert_eq!(serde_json::to_string(&request).unwrap(), job.spec, "job {}", job.id);
    }

    let config = ControlConfig { startup_grace: Duration::from_secs(3600), ..ControlConfig::default() };
    let ctl = suanwang_control::start(store.clone(), demo_federation(), config);
    let op = operator();

    // The jobs as the earlier version showed them.
    let page = suanwang_control::jobs::list(&ctl, &op, &ListQuery { limit: Some(1000), ..ListQuery::default() })
        .await
        .unwrap();
    let before = answered("/api/v1/jobs?limit=1000");
    for (now, then) in page.jobs.iter().zip(before["jobs"].as_array().unwrap()) {
        let now = json(now);
        for field in ["id", "name", "tenant_id", "state", "pool", "explanation", "created_at", "updated_at", "request"]
        {
            assert_eq!(now[field], then[field], "job {} {field}", then["id"]);
        }
    }

    // The books replay to the same money.
    assert_eq!(
        json(&suanwang_control::books::trial_balance(&ctl, &op).await.unwrap()),
        answered("/api/v1/ledger/trial-balance")
    );
    assert_eq!(json(&suanwang_control::money::invoices(&ctl, &op, None).await.unwrap()), answered("/api/v1/invoices"));
    assert_eq!(
        json(&suanwang_control::money::balance(&ctl, &op, 2).await.unwrap()),
        answered("/api/v1/tenants/2/balance")
    );
    assert_eq!(json(&suanwang_control::money::list_claims(&ctl, &op, None).await.unwrap()), answered("/api/v1/claims"));
    assert_eq!(
        json(&suanwang_control::market::contracts(&ctl, &op).await.unwrap()),
        answered("/api/v1/market/contracts")
    );
    assert_eq!(
        json(&suanwang_control::money::show_program(&ctl, &op, "shenzhen-training").await.unwrap()),
        answered("/api/v1/programs/shenzhen-training")
    );
    // Nothing the earlier version rated is rated again.
    assert_eq!(suanwang_control::money::bill(&ctl).await.unwrap(), 0);

    // The open job is put back in its pool, not failed or queued again.
    for _ in 0..200 {
        if ctl.is_leader() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let long = store.job(8).await.unwrap().unwrap();
    assert_eq!((long.state, long.pool.as_deref()), (JobState::Running, Some("zhongshan-inference")));
    let metrics = ctl.metrics.view.lock().unwrap().clone().unwrap();
    let pool = ctl.federation.pools().find(|(_, p)| p.name == "zhongshan-inference").unwrap().0;
    assert_eq!(metrics.pools[pool.index()].gpu_milli_allocated, 2_000, "its two cards are held");
    assert!(matches!(store.verify_audit().await.unwrap(), suanwang_store::audit::Verdict::Intact { .. }));
    let _ = std::fs::remove_dir_all(&dir);
}
