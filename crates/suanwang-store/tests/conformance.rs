//! One conformance suite for both engines (after quickwit's `metastore_test_suite!`): every test
//! runs on a fresh SQLite file, and on a fresh PostgreSQL schema when `SUANWANG_TEST_DATABASE_URL`
//! is set (`.ci/run` sets it; each test makes its own schema and drops it).

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

use std::sync::atomic::{AtomicU32, Ordering};

use suanwang_model::job::TenantKind;
use suanwang_model::platform::{JobState, Role, TenantId};
use suanwang_store::audit::Verdict;
use suanwang_store::model::{JobFilter, MeteredUsage, Outcome, PoolChange, Transition, Write, WriteError};
use suanwang_store::store::{Request, Store};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A store on a fresh SQLite file, and a closure that reopens it (for durability tests).
async fn sqlite() -> (Store, Reopen) {
    let dir = std::env::temp_dir().join(unique("suanwang_store"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("suanwang.db");
    (Store::open_sqlite(&path).await.unwrap(), Reopen::Sqlite(path))
}

async fn postgres() -> Option<(Store, Reopen)> {
    let Ok(url) = std::env::var("SUANWANG_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("SUANWANG_REQUIRE_POSTGRES").is_none(),
            "SUANWANG_REQUIRE_POSTGRES is set but SUANWANG_TEST_DATABASE_URL is not"
        );
        return None;
    };
    let schema = unique("sw_test");
    Some((Store::open_postgres(&url, Some(&schema)).await.unwrap(), Reopen::Postgres(url, schema)))
}

enum Reopen {
    Sqlite(std::path::PathBuf),
    Postgres(String, String),
}

impl Reopen {
    async fn open(&self) -> Store {
        match self {
            Reopen::Sqlite(path) => Store::open_sqlite(path).await.unwrap(),
            Reopen::Postgres(url, schema) => Store::open_postgres(url, Some(schema)).await.unwrap(),
        }
    }

    async fn clean_up(&self) {
        match self {
            Reopen::Sqlite(path) => {
                let _ = std::fs::remove_dir_all(path.parent().unwrap());
            }
            Reopen::Postgres(url, schema) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_engine {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, reopen) = super::sqlite().await;
                    super::$name(store, &reopen).await;
                    reopen.clean_up().await;
                }
            )*
        }
        mod postgres_engine {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((store, reopen)) = super::postgres().await else {
                        eprintln!("SKIPPED: set SUANWANG_TEST_DATABASE_URL to run the store suite on PostgreSQL");
                        return;
                    };
                    super::$name(store, &reopen).await;
                    reopen.clean_up().await;
                }
            )*
        }
    };
}

conformance!(
    tenants_and_tokens,
    submissions_are_idempotent_by_key,
    jobs_move_only_along_legal_transitions,
    lists_page_and_filter,
    logs_and_usage_are_idempotent,
    a_refused_write_does_not_spoil_its_batch,
    a_row_the_database_refuses_fails_alone,
    a_jobs_log_is_capped_with_a_note,
    everything_survives_reopening,
    the_audit_chain_verifies_and_names_tampering,
    rows_changed_behind_the_chain_are_found,
    a_cut_or_rewritten_chain_fails_against_its_exported_head,
    tokens_are_revoked_and_listed_and_quotas_kept,
    a_job_note_is_added_once_and_only_in_its_states,
    one_server_leads_at_a_time,
    data_sets_are_per_tenant_and_unique_by_name,
    ledger_entries_append_in_order_and_survive,
    ledger_commits_catch_up_on_other_writers,
    runs_are_metered_with_their_transitions,
);

fn req(write: Write) -> Request {
    Request { actor: "test".to_owned(), write }
}

async fn one(store: &Store, write: Write) -> Result<Outcome, WriteError> {
    store.write(&[req(write)], 1_000).await.unwrap().remove(0)
}

async fn new_tenant(store: &Store, name: &str) -> TenantId {
    match one(
        store,
        Write::CreateTenant {
            name: name.to_owned(),
            kind: TenantKind::Startup,
            registration_city: "Shenzhen".to_owned(),
        },
    )
    .await
    {
        Ok(Outcome::Tenant(t)) => t.id,
        other => panic!("{other:?}"),
    }
}

fn submit(tenant_id: TenantId, key: Option<&str>, body: &str) -> Write {
    Write::SubmitJob {
        tenant_id,
        name: "j".to_owned(),
        spec: body.to_owned(),
        idempotency_key: key.map(str::to_owned),
        request_digest: suanwang_store::audit::digest(body),
    }
}

async fn new_job(store: &Store, tenant_id: TenantId) -> i64 {
    match one(store, submit(tenant_id, None, "{}")).await {
        Ok(Outcome::Job { job, created: true }) => job.id,
        other => panic!("{other:?}"),
    }
}

fn transition(job_id: i64, from: &[JobState], to: JobState) -> Write {
    Write::Transition(Transition::new(job_id, from, to, format!("to {to}")))
}

fn place(job_id: i64) -> Write {
    Write::Transition(Transition {
        pool: PoolChange::Place { pool: "p".to_owned(), allocation: "{\"card_milli\":8000}".to_owned() },
        ..Transition::new(job_id, &[JobState::Queued], JobState::Placed, "placed")
    })
}

fn start(job_id: i64, at_ms: i64) -> Write {
    Write::Transition(Transition {
        started_ms: Some(at_ms),
        ..Transition::new(job_id, &[JobState::Placed], JobState::Running, "started")
    })
}

fn end(job_id: i64, usage: MeteredUsage) -> Write {
    Write::Transition(Transition {
        usage: Some(usage),
        ..Transition::new(job_id, &[JobState::Running], JobState::Succeeded, "ended")
    })
}

fn metered(event_id: &str, card_ms: i64) -> MeteredUsage {
    MeteredUsage {
        event_id: event_id.to_owned(),
        pool: "p".to_owned(),
        card_ms,
        run_ms: 450_000,
        rate_millifen_per_hour: 6_400_000,
        contract: "job:1".to_owned(),
        digest: format!("{event_id} {card_ms}"),
    }
}

/// A run is metered from the platform's record: placement keeps the allocation, a start counts
/// the run, and its end records the usage with the transition (once; a conflicting event refuses
/// the whole transition, so a refused end changes nothing).
async fn runs_are_metered_with_their_transitions(store: Store, reopen: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let id = new_job(&store, tenant).await;
    let Ok(Outcome::Transitioned(placed)) = one(&store, place(id)).await else { panic!() };
    assert_eq!(
        (placed.allocation.as_deref(), placed.placed_ms, placed.runs),
        (Some("{\"card_milli\":8000}"), Some(1_000), 0)
    );
    let Ok(Outcome::Transitioned(running)) = one(&store, start(id, 900)).await else { panic!() };
    assert_eq!((running.started_ms, running.runs), (Some(900), 1));
    // Another job already used this event id with other figures: the end is refused whole.
    let other = new_job(&store, tenant).await;
    one(&store, place(other)).await.unwrap();
    one(&store, start(other, 950)).await.unwrap();
    one(&store, end(other, metered("shared", 5))).await.unwrap();
    assert_eq!(one(&store, end(id, metered("shared", 7))).await, Err(WriteError::UsageConflict("shared".to_owned())));
    assert_eq!(store.job(id).await.unwrap().unwrap().state, JobState::Running, "nothing changed");
    one(&store, end(id, metered(&format!("job-{id}-run-1"), 7))).await.unwrap();
    // Back to the queue forgets the placement but not the count of runs.
    let again = new_job(&store, tenant).await;
    one(&store, place(again)).await.unwrap();
    one(&store, start(again, 1)).await.unwrap();
    let requeue = Write::Transition(Transition {
        pool: PoolChange::Clear,
        ..Transition::new(again, &[JobState::Running], JobState::Queued, "lost")
    });
    let Ok(Outcome::Transitioned(queued)) = one(&store, requeue).await else { panic!() };
    assert_eq!(
        (queued.pool, queued.allocation, queued.placed_ms, queued.started_ms, queued.runs),
        (None, None, None, None, 1)
    );
    let reopened = reopen.open().await;
    assert_eq!(reopened.job_usage_ms(id).await.unwrap(), 7);
    assert_eq!(reopened.usage_page(None, 10).await.unwrap().len(), 2);
    assert!(matches!(reopened.verify_audit().await.unwrap(), Verdict::Intact { .. }));
    reopened.close().await;
}

async fn tenants_and_tokens(store: Store, _: &Reopen) {
    let id = new_tenant(&store, "acme").await;
    assert_eq!(store.tenant_by_name("acme").await.unwrap().unwrap().id, id);
    assert_eq!(store.tenant(id).await.unwrap().unwrap().registration_city, "Shenzhen");
    let again = one(
        &store,
        Write::CreateTenant { name: "acme".to_owned(), kind: TenantKind::Sme, registration_city: "x".to_owned() },
    )
    .await;
    assert_eq!(again, Err(WriteError::Duplicate("tenant \"acme\"".to_owned())));
    assert_eq!(store.token_count().await.unwrap(), 0);
    let token = one(
        &store,
        Write::CreateToken {
            hash: "h1".to_owned(),
            role: Role::Tenant,
            tenant_id: Some(id),
            pool: None,
            label: "ci".to_owned(),
            expires_ms: None,
        },
    )
    .await;
    assert!(matches!(token, Ok(Outcome::Token(_))));
    let principal = store.principal("h1").await.unwrap().unwrap();
    assert_eq!((principal.role, principal.tenant_id, principal.label.as_str()), (Role::Tenant, Some(id), "ci"));
    assert_eq!(principal.expires_ms, None);
    let expiring = Write::CreateToken {
        hash: "h2".to_owned(),
        role: Role::Auditor,
        tenant_id: None,
        pool: None,
        label: "an hour".to_owned(),
        expires_ms: Some(1_795_338_800_000),
    };
    assert!(matches!(one(&store, expiring).await, Ok(Outcome::Token(_))));
    assert_eq!(store.principal("h2").await.unwrap().unwrap().expires_ms, Some(1_795_338_800_000));
    assert_eq!(store.principal("nope").await.unwrap(), None);
    assert_eq!(store.tenants().await.unwrap().len(), 1);
}

async fn submissions_are_idempotent_by_key(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let first = one(&store, submit(tenant, Some("k1"), "{\"a\":1}")).await.unwrap();
    let Outcome::Job { job, created: true } = first else { panic!("{first:?}") };
    let replay = one(&store, submit(tenant, Some("k1"), "{\"a\":1}")).await.unwrap();
    assert_eq!(replay, Outcome::Job { job: job.clone(), created: false });
    assert_eq!(
        one(&store, submit(tenant, Some("k1"), "{\"a\":2}")).await,
        Err(WriteError::IdempotencyConflict { job_id: job.id })
    );
    let other_tenant = new_tenant(&store, "u").await;
    assert!(
        matches!(one(&store, submit(other_tenant, Some("k1"), "{}")).await, Ok(Outcome::Job { created: true, .. })),
        "keys are per tenant"
    );
    let a = new_job(&store, tenant).await;
    let b = new_job(&store, tenant).await;
    assert_ne!(a, b, "without a key, every submission is new");
}

async fn jobs_move_only_along_legal_transitions(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let id = new_job(&store, tenant).await;
    let placed = Write::Transition(Transition {
        pool: PoolChange::Place { pool: "p1".to_owned(), allocation: "{}".to_owned() },
        explanation: Some("cheapest".to_owned()),
        ..Transition::new(id, &[JobState::Queued], JobState::Placed, "placed")
    });
    let Ok(Outcome::Transitioned(job)) = one(&store, placed).await else { panic!() };
    assert_eq!(
        (job.state, job.pool.as_deref(), job.explanation.as_deref()),
        (JobState::Placed, Some("p1"), Some("cheapest"))
    );
    one(&store, transition(id, &[JobState::Placed], JobState::Running)).await.unwrap();
    one(&store, transition(id, &[JobState::Running], JobState::Succeeded)).await.unwrap();
    assert_eq!(
        one(&store, transition(id, &[JobState::Succeeded], JobState::Running)).await,
        Err(WriteError::WrongState { job_id: id, state: JobState::Succeeded, to: JobState::Running })
    );
    assert_eq!(
        one(&store, transition(id, &[JobState::Queued], JobState::Cancelled)).await,
        Err(WriteError::WrongState { job_id: id, state: JobState::Succeeded, to: JobState::Cancelled }),
        "the expected state must match"
    );
    assert_eq!(
        one(&store, transition(999_999, &[JobState::Queued], JobState::Placed)).await,
        Err(WriteError::NotFound("job 999999".to_owned()))
    );
    let history: Vec<JobState> = store.job_events(id).await.unwrap().iter().map(|e| e.state).collect();
    assert_eq!(history, [JobState::Queued, JobState::Placed, JobState::Running, JobState::Succeeded]);
    assert_eq!(store.job_counts().await.unwrap(), vec![(JobState::Succeeded, 1)]);
}

async fn lists_page_and_filter(store: Store, _: &Reopen) {
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let mut batch = Vec::new();
    for i in 0..25 {
        batch.push(req(submit(if i % 5 == 0 { b } else { a }, None, &format!("{{\"i\":{i}}}"))));
    }
    store.write(&batch, 5).await.unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.jobs(&JobFilter { tenant_id: Some(a), ..JobFilter::default() }, after, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        after = page.last().unwrap().id;
        seen.extend(page.into_iter().map(|j| j.tenant_id));
    }
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|&t| t == a));
    let first = store.jobs(&JobFilter::default(), 0, 1).await.unwrap()[0].id;
    one(&store, transition(first, &[JobState::Queued], JobState::Cancelled)).await.unwrap();
    let cancelled =
        store.jobs(&JobFilter { states: vec![JobState::Cancelled], ..JobFilter::default() }, 0, 100).await.unwrap();
    assert_eq!(cancelled.len(), 1);
    let open = store
        .jobs(&JobFilter { states: vec![JobState::Queued, JobState::Placed], ..JobFilter::default() }, 0, 100)
        .await
        .unwrap();
    assert_eq!(open.len(), 24);
    assert_eq!(store.jobs(&JobFilter::default(), 0, 0).await.unwrap().len(), 1, "a limit of 0 is raised to 1");
    let newest = JobFilter { newest_first: true, ..JobFilter::default() };
    let top: Vec<i64> = store.jobs(&newest, 0, 3).await.unwrap().iter().map(|j| j.id).collect();
    let all: Vec<i64> = store.jobs(&JobFilter::default(), 0, 1000).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(top, all.iter().rev().take(3).copied().collect::<Vec<_>>(), "newest first");
    let below: Vec<i64> = store.jobs(&newest, top[2], 2).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(below, all.iter().rev().skip(3).take(2).copied().collect::<Vec<_>>(), "pages go down");
}

async fn logs_and_usage_are_idempotent(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let id = new_job(&store, tenant).await;
    let log = |seq, chunk: &str| Write::AppendLog { job_id: id, seq, chunk: chunk.to_owned() };
    assert_eq!(one(&store, log(1, "hello\n")).await, Ok(Outcome::Logged { new: true }));
    assert_eq!(one(&store, log(1, "hello\n")).await, Ok(Outcome::Logged { new: false }));
    one(&store, log(2, "world\n")).await.unwrap();
    assert_eq!(store.job_logs(id, 0, 10).await.unwrap(), vec![(1, "hello\n".to_owned()), (2, "world\n".to_owned())]);
    assert_eq!(store.job_logs(id, 1, 10).await.unwrap().len(), 1);
    assert_eq!(store.job_logs_tail(id, 1).await.unwrap(), vec![(2, "world\n".to_owned())], "the last chunk");
    assert_eq!(store.job_logs_tail(id, 10).await.unwrap().len(), 2, "oldest first");
    let usage = |digest: &str| Write::ReportUsage {
        source: "agent:p".to_owned(),
        event_id: "e1".to_owned(),
        job_id: id,
        pool: "p".to_owned(),
        accelerator_ms: 3_600_000,
        digest: digest.to_owned(),
    };
    assert_eq!(one(&store, usage("d1")).await, Ok(Outcome::Usage { new: true }));
    assert_eq!(one(&store, usage("d1")).await, Ok(Outcome::Usage { new: false }), "a replay is recorded once");
    assert_eq!(one(&store, usage("d2")).await, Err(WriteError::UsageConflict("e1".to_owned())));
    assert_eq!(store.job_usage_ms(id).await.unwrap(), 0, "an agent's report is evidence, not usage");
    assert_eq!(store.job_reported_ms(id).await.unwrap(), Some(3_600_000), "kept once, beside the meter");
    assert_eq!(store.job_reported_ms(id + 1_000).await.unwrap(), None, "no reports: nothing to show");
    // Metered runs: recorded with the transition that ends each run.
    let mut runs = Vec::new();
    for (run, card_ms) in [(1, 3_600_000), (2, 1), (3, 1)] {
        let job = new_job(&store, tenant).await;
        one(&store, place(job)).await.unwrap();
        one(&store, start(job, 100)).await.unwrap();
        one(&store, end(job, metered(&format!("job-{job}-run-{run}"), card_ms))).await.unwrap();
        runs.push(job);
    }
    assert_eq!(store.job_usage_ms(runs[0]).await.unwrap(), 3_600_000);
    let all = store.usage_page(None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!((all[0].job_id, all[0].accelerator_ms), (runs[0], 3_600_000));
    assert_eq!(all[0].run.as_ref().map(|r| (r.run_ms, r.contract.as_str())), Some((450_000, "job:1")));
    let first = &all[0];
    let rest = store.usage_page(Some((first.at_ms, first.source.clone(), first.event_id.clone())), 10).await.unwrap();
    assert_eq!(rest, all[1..].to_vec());
    let last = &all[2];
    assert!(
        store.usage_page(Some((last.at_ms, last.source.clone(), last.event_id.clone())), 10).await.unwrap().is_empty()
    );
    let status = |healthy| Write::SetPoolStatus {
        name: "p".to_owned(),
        healthy: Some(healthy),
        drained: None,
        last_seen_ms: Some(7),
    };
    one(&store, status(true)).await.unwrap();
    one(&store, status(false)).await.unwrap();
    assert!(!store.pool_statuses().await.unwrap()[0].healthy);
    // A drain and a heartbeat each change only their own fields, whatever the order.
    let drain = Write::SetPoolStatus { name: "p".to_owned(), healthy: None, drained: Some(true), last_seen_ms: None };
    one(&store, drain).await.unwrap();
    one(&store, status(true)).await.unwrap();
    let p = &store.pool_statuses().await.unwrap()[0];
    assert_eq!((p.healthy, p.drained, p.last_seen_ms), (true, true, 7), "the heartbeat kept the drain");
    let fresh = Write::SetPoolStatus { name: "q".to_owned(), healthy: None, drained: Some(true), last_seen_ms: None };
    one(&store, fresh).await.unwrap();
    let q = store.pool_statuses().await.unwrap().into_iter().find(|s| s.name == "q").unwrap();
    assert_eq!((q.healthy, q.drained, q.last_seen_ms), (false, true, 0), "a pool drained before it reported");
}

async fn a_refused_write_does_not_spoil_its_batch(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let dup = Write::CreateTenant { name: "t".to_owned(), kind: TenantKind::Sme, registration_city: "x".to_owned() };
    let outcomes =
        store.write(&[req(submit(tenant, None, "{}")), req(dup), req(submit(tenant, None, "{}"))], 9).await.unwrap();
    assert!(outcomes[0].is_ok() && outcomes[1].is_err() && outcomes[2].is_ok());
    assert_eq!(store.jobs(&JobFilter::default(), 0, 100).await.unwrap().len(), 2);
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { entries: 3 }), "tenant + two jobs");
}

/// Issue 15: one tenant's unstorable bytes failed everyone's writes in the same group commit.
/// A row the database itself refuses (a foreign key to no tenant on both engines; a NUL in text
/// on PostgreSQL) is refused alone; the rest of its batch is written.
async fn a_row_the_database_refuses_fails_alone(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let logged = new_job(&store, tenant).await;
    let orphan = Write::RegisterDataset {
        tenant_id: TenantId(987_654),
        name: "d".to_owned(),
        site: "s".to_owned(),
        size_bytes: 1,
    };
    let mut batch = vec![req(submit(tenant, None, "{}")), req(orphan), req(submit(tenant, None, "{}"))];
    let nul = store.engine() == "postgresql";
    if nul {
        batch.push(req(Write::AppendLog { job_id: logged, seq: 1, chunk: "a\0b".to_owned() }));
    }
    batch.push(req(submit(tenant, None, "{}")));
    let outcomes = store.write(&batch, 9).await.unwrap();
    assert_eq!(outcomes.len(), batch.len());
    assert!(matches!(outcomes[1], Err(WriteError::Unstorable(_))), "{:?}", outcomes[1]);
    if nul {
        assert!(matches!(outcomes[3], Err(WriteError::Unstorable(_))), "{:?}", outcomes[3]);
    }
    let refused = outcomes.iter().filter(|o| o.is_err()).count();
    assert_eq!(refused, 1 + usize::from(nul), "{outcomes:?}");
    assert_eq!(store.jobs(&JobFilter::default(), 0, 100).await.unwrap().len(), 4);
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { entries: 5 }), "tenant + four jobs");
}

async fn a_jobs_log_is_capped_with_a_note(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let job = new_job(&store, tenant).await;
    let mib = "x".repeat(1 << 20);
    let cap = usize::try_from(suanwang_store::store::LOG_BYTES_MAX >> 20).unwrap();
    for seq in 1..=i64::try_from(cap + 3).unwrap() {
        let outcome = one(&store, Write::AppendLog { job_id: job, seq, chunk: mib.clone() }).await.unwrap();
        assert_eq!(outcome, Outcome::Logged { new: seq <= i64::try_from(cap).unwrap() }, "chunk {seq}");
    }
    let chunks = store.job_logs(job, 0, 1000).await.unwrap();
    assert_eq!(chunks.len(), cap, "the last whole MiB would reach the cap: the note takes its place");
    assert_eq!(chunks.last().map(|c| c.1.clone()), Some(suanwang_store::store::log_cap_note()));
    assert!(matches!(
        one(&store, Write::AppendLog { job_id: 999_999, seq: 1, chunk: "x".to_owned() }).await,
        Err(WriteError::NotFound(_))
    ));
}

async fn everything_survives_reopening(store: Store, reopen: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let id = new_job(&store, tenant).await;
    store.close().await;
    let again = reopen.open().await;
    assert_eq!(again.job(id).await.unwrap().unwrap().state, JobState::Queued);
    assert_eq!(again.tenant_by_name("t").await.unwrap().unwrap().id, tenant);
    assert!(matches!(again.verify_audit().await.unwrap(), Verdict::Intact { entries: 2 }));
    let next = new_job(&again, tenant).await;
    assert!(next > id, "ids keep increasing after a reopen");
}

async fn the_audit_chain_verifies_and_names_tampering(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    for _ in 0..30 {
        let id = new_job(&store, tenant).await;
        one(&store, transition(id, &[JobState::Queued], JobState::Cancelled)).await.unwrap();
    }
    assert_eq!(store.verify_audit().await.unwrap(), Verdict::Intact { entries: 61 });
    let entries = store.audit(0, 5).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(entries[1].action, "job.submit");
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    store.tamper_with_audit_entry(17, "mallory").await.unwrap();
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Broken { seq: 17, .. }));
}

/// On PostgreSQL one server at a time holds the scheduler's role; when it goes, another takes it.
/// SQLite has one process per file, which always leads.
/// Issue 15: a tenant raised to operator, or a job handed to another tenant, by editing the
/// tables directly used to pass `audit verify`.
async fn rows_changed_behind_the_chain_are_found(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let other = new_tenant(&store, "u").await;
    let job = new_job(&store, tenant).await;
    let token = Write::CreateToken {
        hash: "h1".to_owned(),
        role: Role::Tenant,
        tenant_id: Some(tenant),
        pool: None,
        label: "ci".to_owned(),
        expires_ms: None,
    };
    let Outcome::Token(token_id) = one(&store, token).await.unwrap() else { panic!() };
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { .. }));
    let id = token_id.to_string();
    store.tamper("UPDATE tokens SET role = 'operator' WHERE id = CAST(? AS BIGINT)", &[&id]).await.unwrap();
    let Verdict::Broken { reason, .. } = store.verify_audit().await.unwrap() else { panic!("escalation passed") };
    assert!(reason.contains(&format!("token {token_id}")), "{reason}");
    store.tamper("UPDATE tokens SET role = 'tenant' WHERE id = CAST(? AS BIGINT)", &[&id]).await.unwrap();
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { .. }));
    let owner = other.0.to_string();
    store.tamper("UPDATE jobs SET tenant_id = CAST(? AS BIGINT)", &[&owner]).await.unwrap();
    let Verdict::Broken { reason, .. } = store.verify_audit().await.unwrap() else { panic!("a stolen job passed") };
    assert!(reason.contains(&format!("job {job}")), "{reason}");
    store.tamper("UPDATE jobs SET tenant_id = CAST(? AS BIGINT)", &[&tenant.0.to_string()]).await.unwrap();
    store
        .tamper("INSERT INTO tokens (hash, role, label, created_ms) VALUES ('h2', 'operator', 'backdoor', 1)", &[])
        .await
        .unwrap();
    let Verdict::Broken { reason, .. } = store.verify_audit().await.unwrap() else { panic!("a backdoor passed") };
    assert!(reason.contains("is not in the audit chain"), "{reason}");
}

/// Issue 15: deleting the newest entries, or editing one and recomputing the later hashes, is
/// invisible to the chain alone; against a head exported earlier it is not.
async fn a_cut_or_rewritten_chain_fails_against_its_exported_head(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    for _ in 0..5 {
        new_job(&store, tenant).await;
    }
    let (seq, hash) = store.audit_head_hash().await.unwrap();
    assert_eq!(seq, 6);
    assert!(matches!(store.verify_since_head(seq, &hash).await.unwrap(), Verdict::Intact { entries: 6 }));
    new_job(&store, tenant).await;
    assert!(
        matches!(store.verify_since_head(seq, &hash).await.unwrap(), Verdict::Intact { entries: 7 }),
        "growth is fine"
    );
    // Rewrite entry 3's actor and recompute every later hash: the chain alone still verifies.
    let entries = store.audit(0, 100).await.unwrap();
    let mut prev = entries[1].hash.clone();
    for entry in &entries[2..] {
        let mut change = entry.change();
        if entry.seq == 3 {
            change.actor = "someone-else";
        }
        let new_hash = suanwang_store::audit::entry_hash(&prev, entry.seq, &change);
        let seq = entry.seq.to_string();
        store
            .tamper(
                "UPDATE audit SET actor = ?, prev_hash = ?, hash = ? WHERE seq = CAST(? AS BIGINT)",
                &[change.actor, &prev, &new_hash, &seq],
            )
            .await
            .unwrap();
        prev = new_hash;
    }
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { .. }), "a consistent rewrite");
    let Verdict::Broken { reason, .. } = store.verify_since_head(seq, &hash).await.unwrap() else {
        panic!("rewrite passed")
    };
    assert!(reason.contains("rewritten"), "{reason}");
    // Cut the newest entries off.
    let (seq, hash) = store.audit_head_hash().await.unwrap();
    store.tamper("DELETE FROM audit WHERE seq > 5", &[]).await.unwrap();
    store.tamper("DELETE FROM jobs WHERE id > 4", &[]).await.unwrap();
    let Verdict::Broken { reason, .. } = store.verify_since_head(seq, &hash).await.unwrap() else {
        panic!("a cut passed")
    };
    assert!(reason.contains("removed"), "{reason}");
}

async fn a_job_note_is_added_once_and_only_in_its_states(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let job = new_job(&store, tenant).await;
    let note = |detail: &str, states: &[JobState]| Write::NoteJob {
        job_id: job,
        states: states.to_vec(),
        detail: detail.to_owned(),
    };
    let queued = [JobState::Queued];
    assert_eq!(one(&store, note("waits: Resources", &queued)).await.unwrap(), Outcome::Noted(true));
    assert_eq!(one(&store, note("waits: Resources", &queued)).await.unwrap(), Outcome::Noted(false), "not repeated");
    assert_eq!(one(&store, note("waits: Priority", &queued)).await.unwrap(), Outcome::Noted(true));
    assert!(one(&store, note("x", &[JobState::Running])).await.is_err(), "only in its states");
    assert!(
        one(&store, Write::NoteJob { job_id: 999, states: queued.to_vec(), detail: "x".to_owned() }).await.is_err()
    );
    let events = store.job_events(job).await.unwrap();
    let details: Vec<&str> = events.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(details, ["submitted", "waits: Resources", "waits: Priority"]);
    assert_eq!(store.job(job).await.unwrap().unwrap().state, JobState::Queued, "nothing else changes");
    // Reasons that keep changing stop at the history's bound.
    for i in 0..suanwang_store::store::NOTED_HISTORY_MAX + 10 {
        one(&store, note(&format!("waits: {i}"), &queued)).await.unwrap();
    }
    let lines = store.job_events(job).await.unwrap().len();
    assert_eq!(lines, usize::try_from(suanwang_store::store::NOTED_HISTORY_MAX).unwrap());
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { .. }));
}

async fn tokens_are_revoked_and_listed_and_quotas_kept(store: Store, _: &Reopen) {
    let tenant = new_tenant(&store, "t").await;
    let token = Write::CreateToken {
        hash: "h".to_owned(),
        role: Role::Tenant,
        tenant_id: Some(tenant),
        pool: None,
        label: "ci".to_owned(),
        expires_ms: None,
    };
    let Outcome::Token(id) = one(&store, token).await.unwrap() else { panic!() };
    assert!(store.principal("h").await.unwrap().is_some());
    assert_eq!(one(&store, Write::RevokeToken { token_id: id }).await.unwrap(), Outcome::Revoked(true));
    assert_eq!(one(&store, Write::RevokeToken { token_id: id }).await.unwrap(), Outcome::Revoked(false));
    assert!(one(&store, Write::RevokeToken { token_id: 999 }).await.is_err());
    assert!(store.principal("h").await.unwrap().is_none());
    let listed = store.tokens(0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_ms, Some(1_000));
    assert_eq!(store.quotas(tenant).await.unwrap(), None);
    one(&store, Write::SetQuotas { tenant_id: tenant, quotas: "{\"datasets\":3}".to_owned() }).await.unwrap();
    assert_eq!(store.quotas(tenant).await.unwrap().as_deref(), Some("{\"datasets\":3}"));
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { .. }));
}

async fn one_server_leads_at_a_time(store: Store, reopen: &Reopen) {
    let mut first = store.try_lead().await.unwrap().expect("the first server leads");
    assert!(first.held().await);
    // Another server on the same database (another process, as far as the locks can tell).
    let other = reopen.open().await;
    assert!(other.try_lead().await.unwrap().is_none(), "a second leader while the first lives");
    drop(first);
    let mut second = None;
    for _ in 0..50 {
        second = other.try_lead().await.unwrap();
        if second.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(second.expect("the role passes on when its holder goes").held().await);
    other.close().await;
}

async fn data_sets_are_per_tenant_and_unique_by_name(store: Store, reopen: &Reopen) {
    let (a, b) = (new_tenant(&store, "a").await, new_tenant(&store, "b").await);
    let register = |tenant_id: TenantId, name: &str, size_bytes: i64| Write::RegisterDataset {
        tenant_id,
        name: name.to_owned(),
        site: "shaoguan-hub".to_owned(),
        size_bytes,
    };
    let Ok(Outcome::Dataset(first)) = one(&store, register(a, "corpus", 1 << 40)).await else { panic!() };
    assert_eq!((first.tenant_id, first.name.as_str(), first.size_bytes), (a, "corpus", 1 << 40));
    assert!(matches!(one(&store, register(a, "corpus", 5)).await, Err(WriteError::Duplicate(_))));
    // Another tenant may use the same name.
    assert!(matches!(one(&store, register(b, "corpus", 7)).await, Ok(Outcome::Dataset(_))));
    let reopened = reopen.open().await;
    assert_eq!(reopened.dataset(a, "corpus").await.unwrap(), Some(first.clone()));
    assert_eq!(reopened.dataset(a, "missing").await.unwrap(), None);
    assert_eq!(reopened.datasets(Some(a)).await.unwrap(), vec![first]);
    assert_eq!(reopened.datasets(None).await.unwrap().len(), 2);
    assert!(matches!(reopened.verify_audit().await.unwrap(), Verdict::Intact { .. }));
    reopened.close().await;
}

async fn ledger_entries_append_in_order_and_survive(store: Store, reopen: &Reopen) {
    let first: Vec<String> = (0..1_234).map(|i| format!("entry {i}")).collect();
    store.append_ledger("test", &first, 1_000).await.unwrap();
    store.append_ledger("test", &["last".to_owned()], 1_000).await.unwrap();
    store.append_ledger("test", &[], 1_000).await.unwrap();
    let reopened = reopen.open().await;
    let mut read = Vec::new();
    let mut after = 0;
    loop {
        let page = reopened.ledger_entries(after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.0;
        read.extend(page.into_iter().map(|(_, e)| e));
    }
    assert_eq!(read.len(), 1_235);
    assert_eq!(read[..1_234], first[..]);
    assert_eq!(read[1_234], "last");
    reopened.close().await;
}

async fn ledger_commits_catch_up_on_other_writers(store: Store, reopen: &Reopen) {
    // Two servers on one database, each remembering the last entry it has seen.
    let other = reopen.open().await;
    let (seq_a, seen) = store
        .ledger_commit("test", 1_000, 0, |caught_up| (vec!["a1".to_owned(), "a2".to_owned()], caught_up))
        .await
        .unwrap();
    assert!(seen.is_empty());
    let (seq_b, seen) =
        other.ledger_commit("test", 1_000, 0, |caught_up| (vec!["b1".to_owned()], caught_up)).await.unwrap();
    assert_eq!(seen, ["a1", "a2"], "the second writer first sees what the first wrote");
    assert!(seq_b > seq_a);
    let (seq_a2, seen) = store.ledger_commit("test", 1_000, seq_a, |caught_up| (vec![], caught_up)).await.unwrap();
    assert_eq!((seen, seq_a2), (vec!["b1".to_owned()], seq_b));
    let all: Vec<String> = store.ledger_entries(0, 100).await.unwrap().into_iter().map(|(_, e)| e).collect();
    assert_eq!(all, ["a1", "a2", "b1"]);
    // Each commit is one audit entry with the digest of its lines: a changed line is caught.
    assert!(matches!(store.verify_audit().await.unwrap(), Verdict::Intact { entries: 2 }));
    store.tamper_with_ledger_entry(seq_b, "b1 but more").await.unwrap();
    match store.verify_audit().await.unwrap() {
        Verdict::Broken { seq, reason } => assert_eq!((seq, reason.contains("do not match")), (2, true), "{reason}"),
        intact => panic!("tampering went unnoticed: {intact:?}"),
    }
    other.close().await;
}
