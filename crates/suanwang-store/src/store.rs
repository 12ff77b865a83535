//! The store: batched writes with their audit entries, and reads.

use std::path::Path;

use crate::audit::{self, AuditEntry, Change, GENESIS, Verdict};
pub use crate::db::Leadership;

/// Most entries one call to [`Store::changes`] returns.
pub const CHANGES_MAX: u32 = 10_000;

/// The most ledger entries one [`Store::append_ledger`] takes.
pub const LEDGER_APPEND_MAX: usize = 100_000;

/// Rows per INSERT statement when appending ledger entries.
const LEDGER_ROWS_PER_INSERT: usize = 500;

/// The most ledger entries one read returns.
pub const LEDGER_PAGE_MAX: u32 = 100_000;

/// The most data sets a listing returns (and a tenant may register: see the server).
pub const DATASETS_MAX: u32 = 10_000;

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Audit sequence number (commit order).
    pub seq: i64,
    /// When.
    pub at_ms: i64,
    /// `job.submit`, `job.placed`, …, `pool.status`, `tenant.create`, …
    pub action: String,
    /// `job:42`, `pool:local`, …
    pub subject: String,
}
use crate::db::{Db, K, P, Tx, V};
use crate::error::StoreError;
use suanwang_model::job::TenantKind;
use suanwang_model::platform::{JobState, Role, TenantId};

use crate::model::{
    DatasetRecord, JobEvent, JobFilter, JobRecord, MeteredUsage, Outcome, PAGE_MAX, PoolChange, PoolStatus, Principal,
    RunPrice, TenantRecord, TokenRecord, Transition, UsageRecord, Write, WriteError,
};

/// The most writes in one batch.
pub const BATCH_MAX: usize = 4096;

/// The most bytes of log kept for one job; the chunk that would pass it is replaced by
/// [`log_cap_note`] and later chunks are dropped.
pub const LOG_BYTES_MAX: i64 = 8 << 20;

/// A job's history takes notes ([`Write::NoteJob`]) only while it has fewer lines than this: an
/// agent whose reasons keep changing cannot grow a tenant's job without bound.
pub const NOTED_HISTORY_MAX: i64 = 256;

/// The line that ends a log cut at [`LOG_BYTES_MAX`].
pub fn log_cap_note() -> String {
    format!("[suanwang: this job's log reached its limit of {} MiB; later output was not kept]\n", LOG_BYTES_MAX >> 20)
}

/// Audit entries read per step when verifying.
const VERIFY_PAGE: i64 = 10_000;

const JOB_COLUMNS: &str = "id, tenant_id, name, spec, state, pool, explanation, idempotency_key, created_ms, \
     updated_ms, allocation, placed_ms, started_ms, runs";
const JOB_KINDS: &[K] = &[K::I, K::I, K::T, K::T, K::T, K::OT, K::OT, K::OT, K::I, K::I, K::OT, K::OI, K::OI, K::I];

/// One write of a batch and who asked for it (recorded in the audit log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Who: `token:12`, `scheduler`, `agent:pool`, `bootstrap`.
    pub actor: String,
    /// What.
    pub write: Write,
}

/// The store.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Ok(Store { db: Db::sqlite(path).await? })
    }

    /// Connects to PostgreSQL and migrates; with `schema`, uses (and creates) that schema.
    pub async fn open_postgres(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        Ok(Store { db: Db::postgres(url, schema).await? })
    }

    /// Which engine.
    pub fn engine(&self) -> &'static str {
        if self.db.is_postgres() { "postgresql" } else { "sqlite" }
    }

    /// Tries to become the server that schedules; `None` while another server holds the role.
    /// See [`Leadership`].
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        self.db.try_lead().await
    }

    /// Closes all connections.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Applies a batch in one transaction. Each write either applies fully (with its audit
    /// entry) or is refused with a [`WriteError`] that changes nothing; the batch commits as a
    /// whole, so when this returns `Ok`, every applied write survives a crash. A write whose data
    /// the database refuses (a NUL in PostgreSQL text, a broken constraint) is found by writing
    /// the batch in halves and is refused alone ([`WriteError::Unstorable`]): one request's bad
    /// data never fails another's.
    pub async fn write(
        &self,
        requests: &[Request],
        now_ms: i64,
    ) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
        if requests.len() > BATCH_MAX {
            return Err(StoreError::Invalid(format!("a batch holds at most {BATCH_MAX} writes")));
        }
        match self.write_together(requests, now_ms).await {
            // One write's data spoiled the transaction: write the halves apart, so that only the
            // write at fault is refused (log2 of the batch extra transactions per bad write).
            Err(e) if e.is_data_error() => {
                if let [_] = requests {
                    return Ok(vec![Err(WriteError::Unstorable(e.to_string()))]);
                }
                let (first, second) = requests.split_at(requests.len() / 2);
                let mut outcomes = Box::pin(self.write(first, now_ms)).await?;
                outcomes.extend(Box::pin(self.write(second, now_ms)).await?);
                Ok(outcomes)
            }
            other => other,
        }
    }

    async fn write_together(
        &self,
        requests: &[Request],
        now_ms: i64,
    ) -> Result<Vec<Result<Outcome, WriteError>>, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.lock_for_writing().await?;
        let mut chain = Chain::load(&mut tx).await?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            outcomes.push(apply(&mut tx, &mut chain, request, now_ms).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Appends ledger entries durably, in order, in one transaction (all or none), with one audit
    /// entry for them.
    pub async fn append_ledger(&self, actor: &str, entries: &[String], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.lock_for_writing().await?;
        insert_ledger(&mut tx, actor, entries, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Commits ledger entries consistently with every other writer: under the store's write lock,
    /// reads the entries after `after_seq` (what other servers wrote since), hands them to `make`,
    /// appends the entries `make` returns, and commits. Returns the last sequence number and what
    /// `make` returned. With several servers, each catches up before it decides, so all agree.
    pub async fn ledger_commit<R>(
        &self,
        actor: &str,
        now_ms: i64,
        after_seq: i64,
        make: impl FnOnce(Vec<String>) -> (Vec<String>, R),
    ) -> Result<(i64, R), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.lock_for_writing().await?;
        let rows = tx
            .rows(
                "SELECT seq, entry FROM ledger_events WHERE seq > ? ORDER BY seq",
                vec![P::I(after_seq)],
                &[K::I, K::T],
            )
            .await?;
        let last = rows.last().map_or(after_seq, |r| r[0].i());
        let (entries, result) = make(rows.iter().map(|r| r[1].t()).collect());
        let last = insert_ledger(&mut tx, actor, &entries, now_ms).await?.unwrap_or(last);
        tx.commit().await?;
        Ok((last, result))
    }

    /// Ledger entries after `after_seq`, oldest first, at most `limit` (≤ [`LEDGER_PAGE_MAX`]).
    pub async fn ledger_entries(&self, after_seq: i64, limit: u32) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT seq, entry FROM ledger_events WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![P::I(after_seq), P::I(i64::from(limit.clamp(1, LEDGER_PAGE_MAX)))],
                &[K::I, K::T],
            )
            .await?;
        Ok(rows.iter().map(|r| (r[0].i(), r[1].t())).collect())
    }

    /// A tenant by name.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRecord>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT id, name, kind, registration_city, created_ms FROM tenants WHERE name = ?",
                vec![P::T(name.to_owned())],
                TENANT_KINDS,
            )
            .await?;
        rows.first().map(|r| tenant(r)).transpose()
    }

    /// A tenant by id.
    pub async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT id, name, kind, registration_city, created_ms FROM tenants WHERE id = ?",
                vec![P::I(id.0)],
                TENANT_KINDS,
            )
            .await?;
        rows.first().map(|r| tenant(r)).transpose()
    }

    /// Every tenant, by id.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let rows = self
            .db
            .rows("SELECT id, name, kind, registration_city, created_ms FROM tenants ORDER BY id", vec![], TENANT_KINDS)
            .await?;
        rows.iter().map(|r| tenant(r)).collect()
    }

    /// Registered data sets, by id: one tenant's, or everyone's.
    pub async fn datasets(&self, tenant_id: Option<TenantId>) -> Result<Vec<DatasetRecord>, StoreError> {
        let (filter, params) = match tenant_id {
            Some(id) => ("WHERE tenant_id = ?", vec![P::I(id.0)]),
            None => ("", vec![]),
        };
        let sql = format!(
            "SELECT id, tenant_id, name, site, size_bytes, created_ms FROM datasets {filter} ORDER BY id LIMIT {DATASETS_MAX}"
        );
        let rows = self.db.rows(&sql, params, DATASET_KINDS).await?;
        Ok(rows.iter().map(|r| dataset(r)).collect())
    }

    /// A tenant's data set by name.
    pub async fn dataset(&self, tenant_id: TenantId, name: &str) -> Result<Option<DatasetRecord>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT id, tenant_id, name, site, size_bytes, created_ms FROM datasets WHERE tenant_id = ? AND name = ?",
                vec![P::I(tenant_id.0), P::T(name.to_owned())],
                DATASET_KINDS,
            )
            .await?;
        Ok(rows.first().map(|r| dataset(r)))
    }

    /// Who holds the token with this hash (unless revoked).
    pub async fn principal(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT id, role, tenant_id, pool, label, expires_ms FROM tokens WHERE hash = ? AND revoked_ms IS NULL",
                vec![P::T(token_hash.to_owned())],
                &[K::I, K::T, K::OI, K::OT, K::T, K::OI],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(Principal {
                    token_id: r[0].i(),
                    role: r[1].t().parse::<Role>().map_err(StoreError::Invalid)?,
                    tenant_id: r[2].oi().map(TenantId),
                    pool: r[3].ot(),
                    label: r[4].t(),
                    expires_ms: r[5].oi(),
                })
            })
            .transpose()
    }

    /// Every token, oldest first (never the secret or its hash), at most [`PAGE_MAX`] after
    /// `after_id`.
    pub async fn tokens(&self, after_id: i64) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id > ? ORDER BY id LIMIT ?");
        let rows = self.db.rows(&sql, vec![P::I(after_id), P::I(i64::from(PAGE_MAX))], TOKEN_KINDS).await?;
        rows.iter().map(|r| token_record(r)).collect()
    }

    /// A tenant's quotas as an operator set them (JSON), if one did.
    pub async fn quotas(&self, tenant_id: TenantId) -> Result<Option<String>, StoreError> {
        let rows = self
            .db
            .rows("SELECT quotas FROM tenant_quotas WHERE tenant_id = ?", vec![P::I(tenant_id.0)], &[K::T])
            .await?;
        Ok(rows.first().map(|r| r[0].t()))
    }

    /// The job a tenant submitted with idempotency key `key`, if any.
    pub async fn job_by_key(&self, tenant_id: TenantId, key: &str) -> Result<Option<i64>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT id FROM jobs WHERE tenant_id = ? AND idempotency_key = ?",
                vec![P::I(tenant_id.0), P::T(key.to_owned())],
                &[K::I],
            )
            .await?;
        Ok(rows.first().map(|r| r[0].i()))
    }

    /// How many of a tenant's jobs are in `state`.
    pub async fn count_jobs(&self, tenant_id: TenantId, state: JobState) -> Result<i64, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT COUNT(*) FROM jobs WHERE tenant_id = ? AND state = ?",
                vec![P::I(tenant_id.0), P::T(state.as_str().to_owned())],
                &[K::I],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r[0].i()))
    }

    /// How many tokens exist (zero means the platform was never bootstrapped).
    pub async fn token_count(&self) -> Result<i64, StoreError> {
        Ok(self.db.rows("SELECT COUNT(*) FROM tokens", vec![], &[K::I]).await?.first().map_or(0, |r| r[0].i()))
    }

    /// A job.
    pub async fn job(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let rows = self.db.rows(&sql, vec![P::I(id)], JOB_KINDS).await?;
        rows.first().map(|r| job(r)).transpose()
    }

    /// Jobs matching `filter` with ids above `after_id`, oldest first, at most `limit`
    /// (capped at [`PAGE_MAX`]); with `filter.newest_first`, ids below `after_id` (0: any), newest
    /// first.
    pub async fn jobs(&self, filter: &JobFilter, after_id: i64, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let (mut sql, mut params) = if filter.newest_first {
            let below = if after_id <= 0 { i64::MAX } else { after_id };
            (format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id < ?"), vec![P::I(below)])
        } else {
            (format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id > ?"), vec![P::I(after_id)])
        };
        if let Some(tenant) = filter.tenant_id {
            sql += " AND tenant_id = ?";
            params.push(P::I(tenant.0));
        }
        if let Some(pool) = &filter.pool {
            sql += " AND pool = ?";
            params.push(P::T(pool.clone()));
        }
        if let Some(after) = filter.updated_after_ms {
            sql += " AND updated_ms > ?";
            params.push(P::I(after));
        }
        if !filter.states.is_empty() {
            sql += &format!(" AND state IN ({})", vec!["?"; filter.states.len()].join(", "));
            params.extend(filter.states.iter().map(|s| P::T(s.as_str().to_owned())));
        }
        sql += if filter.newest_first { " ORDER BY id DESC LIMIT ?" } else { " ORDER BY id LIMIT ?" };
        params.push(P::I(i64::from(limit.clamp(1, PAGE_MAX))));
        let rows = self.db.rows(&sql, params, JOB_KINDS).await?;
        rows.iter().map(|r| job(r)).collect()
    }

    /// How many jobs are in each state.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>, StoreError> {
        let rows = self
            .db
            .rows("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state", vec![], &[K::T, K::I])
            .await?;
        rows.iter().map(|r| Ok((r[0].t().parse::<JobState>().map_err(StoreError::Invalid)?, r[1].i()))).collect()
    }

    /// A job's history, oldest first.
    pub async fn job_events(&self, job_id: i64) -> Result<Vec<JobEvent>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT state, detail, at_ms FROM job_events WHERE job_id = ? ORDER BY id",
                vec![P::I(job_id)],
                &[K::T, K::T, K::I],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(JobEvent {
                    state: r[0].t().parse::<JobState>().map_err(StoreError::Invalid)?,
                    detail: r[1].t(),
                    at_ms: r[2].i(),
                })
            })
            .collect()
    }

    /// Log chunks of a job after `after_seq`, in order, at most `limit`.
    pub async fn job_logs(&self, job_id: i64, after_seq: i64, limit: u32) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT seq, chunk FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                vec![P::I(job_id), P::I(after_seq), P::I(i64::from(limit.clamp(1, PAGE_MAX)))],
                &[K::I, K::T],
            )
            .await?;
        Ok(rows.iter().map(|r| (r[0].i(), r[1].t())).collect())
    }

    /// A job's last `limit` log chunks (capped at [`PAGE_MAX`]), oldest first.
    pub async fn job_logs_tail(&self, job_id: i64, limit: u32) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT seq, chunk FROM job_logs WHERE job_id = ? ORDER BY seq DESC LIMIT ?",
                vec![P::I(job_id), P::I(i64::from(limit.clamp(1, PAGE_MAX)))],
                &[K::I, K::T],
            )
            .await?;
        Ok(rows.iter().rev().map(|r| (r[0].i(), r[1].t())).collect())
    }

    /// Card-milliseconds metered for a job (its runs; summed here, so no stored figure can
    /// overflow the database's sum).
    pub async fn job_usage_ms(&self, job_id: i64) -> Result<i64, StoreError> {
        Ok(self.job_card_ms("usage_events", job_id).await?.unwrap_or(0))
    }

    /// Card-milliseconds the pool's agent reported for a job (evidence, never billed), or `None`
    /// when it reported nothing.
    pub async fn job_reported_ms(&self, job_id: i64) -> Result<Option<i64>, StoreError> {
        self.job_card_ms("usage_reports", job_id).await
    }

    /// The sum of a job's `accelerator_ms` in `table` (at most 10,000 rows, saturating), or
    /// `None` without rows.
    async fn job_card_ms(&self, table: &'static str, job_id: i64) -> Result<Option<i64>, StoreError> {
        let rows = self
            .db
            .rows(
                &format!("SELECT accelerator_ms FROM {table} WHERE job_id = ? ORDER BY at_ms LIMIT 10000"),
                vec![P::I(job_id)],
                &[K::I],
            )
            .await?;
        Ok((!rows.is_empty()).then(|| rows.iter().fold(0i64, |total, r| total.saturating_add(r[0].i().max(0)))))
    }

    /// Usage events in the order they were recorded (by time, source and id), after the key
    /// `after` (none: from the start), at most `limit` (≤ [`LEDGER_PAGE_MAX`]).
    pub async fn usage_page(
        &self,
        after: Option<(i64, String, String)>,
        limit: u32,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let (t, s, e) = after.unwrap_or((i64::MIN, String::new(), String::new()));
        let rows = self
            .db
            .rows(
                "SELECT source, event_id, job_id, pool, accelerator_ms, at_ms, run_ms, rate_millifen_per_hour, \
                 contract FROM usage_events \
                 WHERE at_ms > ? OR (at_ms = ? AND source > ?) OR (at_ms = ? AND source = ? AND event_id > ?) \
                 ORDER BY at_ms, source, event_id LIMIT ?",
                vec![
                    P::I(t),
                    P::I(t),
                    P::T(s.clone()),
                    P::I(t),
                    P::T(s),
                    P::T(e),
                    P::I(i64::from(limit.clamp(1, LEDGER_PAGE_MAX))),
                ],
                &[K::T, K::T, K::I, K::T, K::I, K::I, K::OI, K::OI, K::OT],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| UsageRecord {
                source: r[0].t(),
                event_id: r[1].t(),
                job_id: r[2].i(),
                pool: r[3].t(),
                accelerator_ms: r[4].i(),
                at_ms: r[5].i(),
                run: match (r[6].oi(), r[7].oi(), r[8].ot()) {
                    (Some(run_ms), Some(rate_millifen_per_hour), Some(contract)) => {
                        Some(RunPrice { run_ms, rate_millifen_per_hour, contract })
                    }
                    _ => None,
                },
            })
            .collect())
    }

    /// Every pool's last reported status.
    pub async fn pool_statuses(&self) -> Result<Vec<PoolStatus>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT name, healthy, drained, last_seen_ms FROM pool_status ORDER BY name",
                vec![],
                &[K::T, K::I, K::I, K::I],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PoolStatus {
                name: r[0].t(),
                healthy: r[1].i() != 0,
                drained: r[2].i() != 0,
                last_seen_ms: r[3].i(),
            })
            .collect())
    }

    /// Audit entries after `after_seq`, in order, at most `limit`.
    pub async fn audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_page(after_seq, i64::from(limit.clamp(1, PAGE_MAX))).await
    }

    async fn audit_page(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT seq, at_ms, actor, action, subject, before_digest, after_digest, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![P::I(after_seq), P::I(limit)],
                &[K::I, K::I, K::T, K::T, K::T, K::T, K::T, K::T, K::T],
            )
            .await?;
        Ok(rows.iter().map(|r| audit_entry(r)).collect())
    }

    /// The newest audit entry's sequence number (0 when there is none).
    pub async fn audit_head(&self) -> Result<i64, StoreError> {
        let rows = self.db.rows("SELECT COALESCE(MAX(seq), 0) FROM audit", vec![], &[K::I]).await?;
        Ok(rows.first().map_or(0, |r| r[0].i()))
    }

    /// The change feed: `(seq, at_ms, action, subject)` of audit entries after `after_seq`, in
    /// commit order. A scheduler tails it to learn what other servers changed.
    pub async fn changes(&self, after_seq: i64, limit: u32) -> Result<Vec<ChangeEntry>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT seq, at_ms, action, subject FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![P::I(after_seq), P::I(i64::from(limit.clamp(1, CHANGES_MAX)))],
                &[K::I, K::I, K::T, K::T],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ChangeEntry { seq: r[0].i(), at_ms: r[1].i(), action: r[2].t(), subject: r[3].t() })
            .collect())
    }

    /// Checks the whole audit chain and names the first broken entry; then that the ledger,
    /// and every token, tenant and job as stored now, are what the chain last recorded of them
    /// (a token raised to operator, a job given to another tenant, behind the chain's back).
    pub async fn verify_audit(&self) -> Result<Verdict, StoreError> {
        let mut prev = GENESIS.to_owned();
        let mut next = 1;
        loop {
            let page = self.audit_page(next - 1, VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            if let Some(broken) = audit::check(&page, &mut prev, &mut next) {
                return Ok(broken);
            }
        }
        let entries = next - 1;
        if let Some(broken) = self.verify_rows(entries).await? {
            return Ok(broken);
        }
        self.verify_ledger(entries).await
    }

    /// The newest entry: its sequence number and hash (`(0, GENESIS)` when there is none).
    /// Exported and kept elsewhere, it lets [`Store::verify_since_head`] prove later that the
    /// chain still extends it: nothing was cut off the end or rewritten.
    pub async fn audit_head_hash(&self) -> Result<(i64, String), StoreError> {
        let rows = self.db.rows("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", vec![], &[K::I, K::T]).await?;
        Ok(rows.first().map_or_else(|| (0, GENESIS.to_owned()), |r| (r[0].i(), r[1].t())))
    }

    /// [`Store::verify_audit`], and that entry `seq` still has `hash`.
    pub async fn verify_since_head(&self, seq: i64, hash: &str) -> Result<Verdict, StoreError> {
        let verdict = self.verify_audit().await?;
        let Verdict::Intact { entries } = verdict else { return Ok(verdict) };
        if seq > entries {
            return Ok(Verdict::Broken {
                seq: entries,
                reason: format!(
                    "the chain ends at entry {entries}, but entry {seq} was exported as its head: entries were removed"
                ),
            });
        }
        if seq == 0 {
            return Ok(verdict);
        }
        let rows = self.db.rows("SELECT hash FROM audit WHERE seq = ?", vec![P::I(seq)], &[K::T]).await?;
        if rows.first().map(|r| r[0].t()).as_deref() != Some(hash) {
            return Ok(Verdict::Broken {
                seq,
                reason: format!("entry {seq} is not the one exported as the head: the chain was rewritten"),
            });
        }
        Ok(verdict)
    }

    /// The newest `after` digest the chain holds for each of `subjects` (of actions starting
    /// with `prefix`).
    async fn latest_digests(
        &self,
        subjects: &[String],
        prefix: &str,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut latest = std::collections::HashMap::new();
        for group in subjects.chunks(500) {
            let marks = vec!["?"; group.len()].join(", ");
            let sql = format!(
                "SELECT subject, after_digest FROM audit WHERE subject IN ({marks}) AND action LIKE ? ORDER BY seq"
            );
            let mut params: Vec<P> = group.iter().map(|s| P::T(s.clone())).collect();
            params.push(P::T(format!("{prefix}%")));
            for row in self.db.rows(&sql, params, &[K::T, K::T]).await? {
                latest.insert(row[0].t(), row[1].t());
            }
        }
        Ok(latest)
    }

    /// Every token, tenant and job against its newest audit entry.
    async fn verify_rows(&self, entries: i64) -> Result<Option<Verdict>, StoreError> {
        let broken = |what: String| Some(Verdict::Broken { seq: entries, reason: what });
        // Tokens.
        let mut after = 0;
        loop {
            let tokens = self.tokens(after).await?;
            let Some(last) = tokens.last() else { break };
            after = last.id;
            let subjects: Vec<String> = tokens.iter().map(|t| format!("token:{}", t.id)).collect();
            let latest = self.latest_digests(&subjects, "token.").await?;
            for (token, subject) in tokens.iter().zip(&subjects) {
                match latest.get(subject) {
                    None => return Ok(broken(format!("token {} is not in the audit chain", token.id))),
                    Some(d) if *d != token_digest(token) => {
                        return Ok(broken(format!("token {} was changed behind the audit chain", token.id)));
                    }
                    Some(_) => {}
                }
            }
        }
        // Tenants.
        let tenants = self.tenants().await?;
        let subjects: Vec<String> = tenants.iter().map(|t| format!("tenant:{}", t.id.0)).collect();
        let latest = self.latest_digests(&subjects, "tenant.").await?;
        for (tenant, subject) in tenants.iter().zip(&subjects) {
            if latest.get(subject) != Some(&tenant_digest(tenant)) {
                return Ok(broken(format!("tenant {} ({}) does not match the audit chain", tenant.id.0, tenant.name)));
            }
        }
        // Jobs, a page at a time.
        let mut after = 0;
        loop {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id > ? ORDER BY id LIMIT 1000");
            let rows = self.db.rows(&sql, vec![P::I(after)], JOB_KINDS).await?;
            let jobs: Vec<JobRecord> = rows.iter().map(|r| job(r)).collect::<Result<_, _>>()?;
            let Some(last) = jobs.last() else { break };
            after = last.id;
            let subjects: Vec<String> = jobs.iter().map(|j| format!("job:{}", j.id)).collect();
            let latest = self.latest_digests(&subjects, "job.").await?;
            for (job, subject) in jobs.iter().zip(&subjects) {
                if latest.get(subject) != Some(&job_digest(job)) {
                    return Ok(broken(format!(
                        "job {} does not match the audit chain (its owner, state or body was changed)",
                        job.id
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Checks that the `ledger.commit` audit entries cover every ledger line exactly once, in
    /// order, and that each one's digest matches the lines it covers.
    async fn verify_ledger(&self, entries: i64) -> Result<Verdict, StoreError> {
        let commits = self
            .db
            .rows(
                "SELECT seq, subject, after_digest FROM audit WHERE action = 'ledger.commit' ORDER BY seq",
                vec![],
                &[K::I, K::T, K::T],
            )
            .await?;
        let mut expected_first = 1;
        for row in &commits {
            let seq = row[0].i();
            let range = row[1].t();
            let Some((first, last)) = range
                .strip_prefix("ledger:")
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
            else {
                return Ok(Verdict::Broken { seq, reason: format!("ledger entry range {range:?} is not FIRST-LAST") });
            };
            if first < expected_first || last < first {
                return Ok(Verdict::Broken {
                    seq,
                    reason: format!("ledger entries {first}-{last} overlap or run backwards"),
                });
            }
            let lines = self
                .db
                .rows(
                    "SELECT entry FROM ledger_events WHERE seq >= ? AND seq <= ? ORDER BY seq",
                    vec![P::I(first), P::I(last)],
                    &[K::T],
                )
                .await?;
            let text: Vec<String> = lines.iter().map(|r| r[0].t()).collect();
            if audit::digest(&text.join("\n")) != row[2].t() {
                return Ok(Verdict::Broken {
                    seq,
                    reason: format!("ledger entries {first}-{last} do not match their digest"),
                });
            }
            expected_first = last + 1;
        }
        let stored = self.db.rows("SELECT COALESCE(MAX(seq), 0) FROM ledger_events", vec![], &[K::I]).await?;
        if stored[0][0].i() >= expected_first {
            return Ok(Verdict::Broken {
                seq: entries,
                reason: format!("ledger entries after {} are not in the audit chain", expected_first - 1),
            });
        }
        Ok(Verdict::Intact { entries })
    }

    /// For tests of tamper detection only: overwrites a ledger line behind the chain's back.
    #[doc(hidden)]
    pub async fn tamper_with_ledger_entry(&self, seq: i64, entry: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.exec("UPDATE ledger_events SET entry = ? WHERE seq = ?", vec![P::T(entry.to_owned()), P::I(seq)]).await?;
        tx.commit().await
    }

    /// For tests of tamper detection only: runs SQL behind the chain's back (`?` binds text).
    #[doc(hidden)]
    pub async fn tamper(&self, sql: &str, texts: &[&str]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.exec(sql, texts.iter().map(|t| P::T((*t).to_owned())).collect()).await?;
        tx.commit().await
    }

    /// For tests of tamper detection only: overwrites an audit entry's actor behind the chain's back.
    #[doc(hidden)]
    pub async fn tamper_with_audit_entry(&self, seq: i64, actor: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.exec("UPDATE audit SET actor = ? WHERE seq = ?", vec![P::T(actor.to_owned()), P::I(seq)]).await?;
        tx.commit().await
    }
}

const TENANT_KINDS: &[K] = &[K::I, K::T, K::T, K::T, K::I];

const DATASET_KINDS: &[K] = &[K::I, K::I, K::T, K::T, K::I, K::I];

fn dataset(r: &[V]) -> DatasetRecord {
    DatasetRecord {
        id: r[0].i(),
        tenant_id: TenantId(r[1].i()),
        name: r[2].t(),
        site: r[3].t(),
        size_bytes: r[4].i(),
        created_ms: r[5].i(),
    }
}

fn tenant(r: &[V]) -> Result<TenantRecord, StoreError> {
    let kind = r[2].t();
    Ok(TenantRecord {
        id: TenantId(r[0].i()),
        name: r[1].t(),
        kind: TenantKind::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("unknown tenant kind {kind:?}")))?,
        registration_city: r[3].t(),
        created_ms: r[4].i(),
    })
}

fn job(r: &[V]) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        id: r[0].i(),
        tenant_id: TenantId(r[1].i()),
        name: r[2].t(),
        spec: r[3].t(),
        state: r[4].t().parse::<JobState>().map_err(StoreError::Invalid)?,
        pool: r[5].ot(),
        explanation: r[6].ot(),
        idempotency_key: r[7].ot(),
        created_ms: r[8].i(),
        updated_ms: r[9].i(),
        allocation: r[10].ot(),
        placed_ms: r[11].oi(),
        started_ms: r[12].oi(),
        runs: r[13].i(),
    })
}

fn audit_entry(r: &[V]) -> AuditEntry {
    AuditEntry {
        seq: r[0].i(),
        at_ms: r[1].i(),
        actor: r[2].t(),
        action: r[3].t(),
        subject: r[4].t(),
        before_digest: r[5].t(),
        after_digest: r[6].t(),
        prev_hash: r[7].t(),
        hash: r[8].t(),
    }
}

/// The end of the audit chain inside a write transaction.
struct Chain {
    last_seq: i64,
    last_hash: String,
}

impl Chain {
    async fn load(tx: &mut Tx) -> Result<Self, StoreError> {
        let rows = tx.rows("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", vec![], &[K::I, K::T]).await?;
        Ok(match rows.first() {
            Some(r) => Chain { last_seq: r[0].i(), last_hash: r[1].t() },
            None => Chain { last_seq: 0, last_hash: GENESIS.to_owned() },
        })
    }

    async fn append(&mut self, tx: &mut Tx, change: Change<'_>) -> Result<(), StoreError> {
        let seq = self.last_seq + 1;
        let hash = audit::entry_hash(&self.last_hash, seq, &change);
        tx.exec(
            "INSERT INTO audit (seq, at_ms, actor, action, subject, before_digest, after_digest, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                P::I(seq),
                P::I(change.at_ms),
                P::T(change.actor.to_owned()),
                P::T(change.action.to_owned()),
                P::T(change.subject.to_owned()),
                P::T(change.before.to_owned()),
                P::T(change.after.to_owned()),
                P::T(self.last_hash.clone()),
                P::T(hash.clone()),
            ],
        )
        .await?;
        self.last_seq = seq;
        self.last_hash = hash;
        Ok(())
    }
}

/// Inserts ledger entries and one audit entry `ledger.commit` for them (subject
/// `ledger:FIRST-LAST`, after-digest = the digest of the lines joined by newlines); returns the last
/// sequence number inserted (`None` when there is nothing to insert).
async fn insert_ledger(tx: &mut Tx, actor: &str, entries: &[String], now_ms: i64) -> Result<Option<i64>, StoreError> {
    if entries.is_empty() {
        return Ok(None);
    }
    if entries.len() > LEDGER_APPEND_MAX {
        return Err(StoreError::Invalid(format!("at most {LEDGER_APPEND_MAX} ledger entries at once")));
    }
    // Under the write lock nobody else inserts: the new lines are the ones above the old maximum.
    let before = tx.rows("SELECT COALESCE(MAX(seq), 0) FROM ledger_events", vec![], &[K::I]).await?[0][0].i();
    for chunk in entries.chunks(LEDGER_ROWS_PER_INSERT) {
        let sql = format!("INSERT INTO ledger_events (entry) VALUES {}", vec!["(?)"; chunk.len()].join(", "));
        tx.exec(&sql, chunk.iter().map(|e| P::T(e.clone())).collect()).await?;
    }
    let range = tx
        .rows("SELECT MIN(seq), MAX(seq) FROM ledger_events WHERE seq > ?", vec![P::I(before)], &[K::I, K::I])
        .await?;
    let (first, last) = (range[0][0].i(), range[0][1].i());
    let mut chain = Chain::load(tx).await?;
    let after = audit::digest(&entries.join("\n"));
    chain
        .append(
            tx,
            Change {
                at_ms: now_ms,
                actor,
                action: "ledger.commit",
                subject: &format!("ledger:{first}-{last}"),
                before: "-",
                after: &after,
            },
        )
        .await?;
    Ok(Some(last))
}

const TOKEN_COLUMNS: &str = "id, role, tenant_id, pool, label, created_ms, expires_ms, revoked_ms";
const TOKEN_KINDS: &[K] = &[K::I, K::T, K::OI, K::OT, K::T, K::I, K::OI, K::OI];

fn token_record(r: &[V]) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: r[0].i(),
        role: r[1].t().parse::<Role>().map_err(StoreError::Invalid)?,
        tenant_id: r[2].oi().map(TenantId),
        pool: r[3].ot(),
        label: r[4].t(),
        created_ms: r[5].i(),
        expires_ms: r[6].oi(),
        revoked_ms: r[7].oi(),
    })
}

async fn fetch_token(tx: &mut Tx, id: i64) -> Result<Option<TokenRecord>, StoreError> {
    let rows =
        tx.rows(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?"), vec![P::I(id)], TOKEN_KINDS).await?;
    rows.first().map(|r| token_record(r)).transpose()
}

/// What the audit chain records of a token: who got which role, never the token or its hash.
fn token_digest(t: &TokenRecord) -> String {
    let base = format!(
        "token {} {} {:?} {:?} {} {:?}",
        t.id,
        t.role.as_str(),
        t.tenant_id.map(|t| t.0),
        t.pool,
        t.label,
        t.expires_ms
    );
    audit::digest(&match t.revoked_ms {
        None => base,
        Some(at) => format!("{base} revoked {at}"),
    })
}

/// What the audit chain records of a tenant.
fn tenant_digest(t: &TenantRecord) -> String {
    audit::digest(&format!("tenant {} {} {} {}", t.id, t.name, t.kind.as_str(), t.registration_city))
}

fn job_digest(job: &JobRecord) -> String {
    audit::digest(&format!(
        "job {} tenant {} state {} pool {:?} spec {}",
        job.id, job.tenant_id, job.state, job.pool, job.spec
    ))
}

/// The digest of usage event `(source, event_id)` in `table`, if it was recorded.
async fn usage_digest(tx: &mut Tx, table: &str, source: &str, event_id: &str) -> Result<Option<String>, StoreError> {
    let rows = tx
        .rows(
            &format!("SELECT digest FROM {table} WHERE source = ? AND event_id = ?"),
            vec![P::T(source.to_owned()), P::T(event_id.to_owned())],
            &[K::T],
        )
        .await?;
    Ok(rows.first().map(|r| r[0].t()))
}

/// Records a run the platform metered (once: a known event with the same digest is left as it is).
async fn record_metered(
    tx: &mut Tx,
    chain: &mut Chain,
    actor: &str,
    job_id: i64,
    usage: &MeteredUsage,
    now: i64,
) -> Result<(), StoreError> {
    if usage_digest(tx, "usage_events", "platform", &usage.event_id).await?.is_some() {
        return Ok(());
    }
    tx.exec(
        "INSERT INTO usage_events (source, event_id, job_id, pool, accelerator_ms, digest, at_ms, run_ms, \
         rate_millifen_per_hour, contract) VALUES ('platform', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            P::T(usage.event_id.clone()),
            P::I(job_id),
            P::T(usage.pool.clone()),
            P::I(usage.card_ms),
            P::T(usage.digest.clone()),
            P::I(now),
            P::I(usage.run_ms),
            P::I(usage.rate_millifen_per_hour),
            P::T(usage.contract.clone()),
        ],
    )
    .await?;
    chain
        .append(
            tx,
            Change {
                at_ms: now,
                actor,
                action: "usage.record",
                subject: &format!("job:{job_id}"),
                before: "-",
                after: &usage.digest,
            },
        )
        .await
}

async fn fetch_job(tx: &mut Tx, id: i64) -> Result<Option<JobRecord>, StoreError> {
    let rows = tx.rows(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"), vec![P::I(id)], JOB_KINDS).await?;
    rows.first().map(|r| job(r)).transpose()
}

async fn apply(
    tx: &mut Tx,
    chain: &mut Chain,
    request: &Request,
    now: i64,
) -> Result<Result<Outcome, WriteError>, StoreError> {
    let actor = request.actor.as_str();
    Ok(match &request.write {
        Write::CreateTenant { name, kind, registration_city } => {
            if !tx.rows("SELECT id FROM tenants WHERE name = ?", vec![P::T(name.clone())], &[K::I]).await?.is_empty() {
                return Ok(Err(WriteError::Duplicate(format!("tenant {name:?}"))));
            }
            let rows = tx
                .rows(
                    "INSERT INTO tenants (name, kind, registration_city, created_ms) VALUES (?, ?, ?, ?) RETURNING id",
                    vec![
                        P::T(name.clone()),
                        P::T(kind.as_str().to_owned()),
                        P::T(registration_city.clone()),
                        P::I(now),
                    ],
                    &[K::I],
                )
                .await?;
            let record = TenantRecord {
                id: TenantId(rows[0][0].i()),
                name: name.clone(),
                kind: *kind,
                registration_city: registration_city.clone(),
                created_ms: now,
            };
            let after = tenant_digest(&record);
            chain
                .append(
                    tx,
                    Change {
                        at_ms: now,
                        actor,
                        action: "tenant.create",
                        subject: &format!("tenant:{}", record.id),
                        before: "-",
                        after: &after,
                    },
                )
                .await?;
            Ok(Outcome::Tenant(record))
        }
        Write::RegisterDataset { tenant_id, name, site, size_bytes } => {
            let existing = tx
                .rows(
                    "SELECT id FROM datasets WHERE tenant_id = ? AND name = ?",
                    vec![P::I(tenant_id.0), P::T(name.clone())],
                    &[K::I],
                )
                .await?;
            if !existing.is_empty() {
                return Ok(Err(WriteError::Duplicate(format!("data set {name:?}"))));
            }
            let rows = tx
                .rows(
                    "INSERT INTO datasets (tenant_id, name, site, size_bytes, created_ms) VALUES (?, ?, ?, ?, ?) RETURNING id",
                    vec![P::I(tenant_id.0), P::T(name.clone()), P::T(site.clone()), P::I(*size_bytes), P::I(now)],
                    &[K::I],
                )
                .await?;
            let record = DatasetRecord {
                id: rows[0][0].i(),
                tenant_id: *tenant_id,
                name: name.clone(),
                site: site.clone(),
                size_bytes: *size_bytes,
                created_ms: now,
            };
            let after = audit::digest(&format!(
                "dataset {} {} {} {} {}",
                record.id, record.tenant_id, record.name, record.site, record.size_bytes
            ));
            chain
                .append(
                    tx,
                    Change {
                        at_ms: now,
                        actor,
                        action: "dataset.register",
                        subject: &format!("dataset:{}", record.id),
                        before: "-",
                        after: &after,
                    },
                )
                .await?;
            Ok(Outcome::Dataset(record))
        }
        Write::CreateToken { hash, role, tenant_id, pool, label, expires_ms } => {
            if !tx.rows("SELECT id FROM tokens WHERE hash = ?", vec![P::T(hash.clone())], &[K::I]).await?.is_empty() {
                return Ok(Err(WriteError::Duplicate("token".to_owned())));
            }
            let rows = tx
                .rows(
                    "INSERT INTO tokens (hash, role, tenant_id, pool, label, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    vec![P::T(hash.clone()), P::T(role.as_str().to_owned()), P::OI(tenant_id.map(|t| t.0)), P::OT(pool.clone()), P::T(label.clone()), P::I(now), P::OI(*expires_ms)],
                    &[K::I],
                )
                .await?;
            let id = rows[0][0].i();
            let after = token_digest(&TokenRecord {
                id,
                role: *role,
                tenant_id: *tenant_id,
                pool: pool.clone(),
                label: label.clone(),
                created_ms: now,
                expires_ms: *expires_ms,
                revoked_ms: None,
            });
            chain
                .append(
                    tx,
                    Change {
                        at_ms: now,
                        actor,
                        action: "token.create",
                        subject: &format!("token:{id}"),
                        before: "-",
                        after: &after,
                    },
                )
                .await?;
            Ok(Outcome::Token(id))
        }
        Write::SubmitJob { tenant_id, name, spec, idempotency_key, request_digest } => {
            if let Some(key) = idempotency_key {
                let rows = tx
                    .rows(
                        &format!(
                            "SELECT {JOB_COLUMNS}, request_digest FROM jobs WHERE tenant_id = ? AND idempotency_key = ?"
                        ),
                        vec![P::I(tenant_id.0), P::T(key.clone())],
                        &[JOB_KINDS, &[K::T]].concat(),
                    )
                    .await?;
                if let Some(r) = rows.first() {
                    let existing = job(r)?;
                    if r[JOB_KINDS.len()].t() != *request_digest {
                        return Ok(Err(WriteError::IdempotencyConflict { job_id: existing.id }));
                    }
                    return Ok(Ok(Outcome::Job { job: existing, created: false }));
                }
            }
            let rows = tx
                .rows(
                    "INSERT INTO jobs (tenant_id, name, spec, state, idempotency_key, request_digest, created_ms, updated_ms) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING id",
                    vec![P::I(tenant_id.0), P::T(name.clone()), P::T(spec.clone()), P::OT(idempotency_key.clone()), P::T(request_digest.clone()), P::I(now), P::I(now)],
                    &[K::I],
                )
                .await?;
            let record = JobRecord {
                id: rows[0][0].i(),
                tenant_id: *tenant_id,
                name: name.clone(),
                spec: spec.clone(),
                state: JobState::Queued,
                pool: None,
                explanation: None,
                idempotency_key: idempotency_key.clone(),
                created_ms: now,
                updated_ms: now,
                allocation: None,
                placed_ms: None,
                started_ms: None,
                runs: 0,
            };
            tx.exec(
                "INSERT INTO job_events (job_id, state, detail, at_ms) VALUES (?, 'queued', 'submitted', ?)",
                vec![P::I(record.id), P::I(now)],
            )
            .await?;
            chain
                .append(
                    tx,
                    Change {
                        at_ms: now,
                        actor,
                        action: "job.submit",
                        subject: &format!("job:{}", record.id),
                        before: "-",
                        after: &job_digest(&record),
                    },
                )
                .await?;
            Ok(Outcome::Job { job: record, created: true })
        }
        Write::Transition(Transition { job_id, from, to, pool, explanation, detail, started_ms, usage }) => {
            let Some(before) = fetch_job(tx, *job_id).await? else {
                return Ok(Err(WriteError::NotFound(format!("job {job_id}"))));
            };
            if !from.contains(&before.state) || !before.state.can_become(*to) {
                return Ok(Err(WriteError::WrongState { job_id: *job_id, state: before.state, to: *to }));
            }
            // A metered run is checked before anything changes, so a conflict refuses it all.
            if let Some(usage) = usage
                && let Some(existing) = usage_digest(tx, "usage_events", "platform", &usage.event_id).await?
                && existing != usage.digest
            {
                return Ok(Err(WriteError::UsageConflict(usage.event_id.clone())));
            }
            let mut after = before.clone();
            after.state = *to;
            after.updated_ms = now;
            match pool {
                PoolChange::Keep => {}
                PoolChange::Place { pool, allocation } => {
                    after.pool = Some(pool.clone());
                    after.allocation = Some(allocation.clone());
                    after.placed_ms = Some(now);
                    after.started_ms = None;
                }
                PoolChange::Clear => {
                    after.pool = None;
                    after.allocation = None;
                    after.placed_ms = None;
                    after.started_ms = None;
                }
            }
            if let Some(at) = started_ms {
                after.started_ms = Some(*at);
                after.runs = before.runs.saturating_add(1);
            }
            if let Some(explanation) = explanation {
                after.explanation = Some(explanation.clone());
            }
            tx.exec(
                "UPDATE jobs SET state = ?, pool = ?, explanation = ?, updated_ms = ?, allocation = ?, placed_ms = ?, \
                 started_ms = ?, runs = ? WHERE id = ?",
                vec![
                    P::T(to.as_str().to_owned()),
                    P::OT(after.pool.clone()),
                    P::OT(after.explanation.clone()),
                    P::I(now),
                    P::OT(after.allocation.clone()),
                    P::OI(after.placed_ms),
                    P::OI(after.started_ms),
                    P::I(after.runs),
                    P::I(*job_id),
                ],
            )
            .await?;
            tx.exec(
                "INSERT INTO job_events (job_id, state, detail, at_ms) VALUES (?, ?, ?, ?)",
                vec![P::I(*job_id), P::T(to.as_str().to_owned()), P::T(detail.clone()), P::I(now)],
            )
            .await?;
            let (action, subject) = (format!("job.{}", to.as_str()), format!("job:{job_id}"));
            let (before_digest, after_digest) = (job_digest(&before), job_digest(&after));
            let change = Change {
                at_ms: now,
                actor,
                action: &action,
                subject: &subject,
                before: &before_digest,
                after: &after_digest,
            };
            chain.append(tx, change).await?;
            if let Some(usage) = usage {
                record_metered(tx, chain, actor, *job_id, usage, now).await?;
            }
            Ok(Outcome::Transitioned(after))
        }
        Write::AppendLog { job_id, seq, chunk } => {
            let used = tx
                .rows("SELECT log_bytes FROM jobs WHERE id = ?", vec![P::I(*job_id)], &[K::I])
                .await?
                .first()
                .map(|r| r[0].i());
            let Some(used) = used else { return Ok(Err(WriteError::NotFound(format!("job {job_id}")))) };
            if used >= LOG_BYTES_MAX {
                return Ok(Ok(Outcome::Logged { new: false }));
            }
            let length = i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            let (text, used) = if used.saturating_add(length) >= LOG_BYTES_MAX {
                (log_cap_note(), LOG_BYTES_MAX)
            } else {
                (chunk.clone(), used + length)
            };
            let inserted = tx
                .exec(
                    "INSERT INTO job_logs (job_id, seq, chunk) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    vec![P::I(*job_id), P::I(*seq), P::T(text)],
                )
                .await?;
            if inserted > 0 {
                tx.exec("UPDATE jobs SET log_bytes = ? WHERE id = ?", vec![P::I(used), P::I(*job_id)]).await?;
            }
            Ok(Outcome::Logged { new: inserted > 0 })
        }
        Write::ReportUsage { source, event_id, job_id, pool, accelerator_ms, digest } => {
            if let Some(existing) = usage_digest(tx, "usage_reports", source, event_id).await? {
                return Ok(if existing == *digest {
                    Ok(Outcome::Usage { new: false })
                } else {
                    Err(WriteError::UsageConflict(event_id.clone()))
                });
            }
            tx.exec(
                "INSERT INTO usage_reports (source, event_id, job_id, pool, accelerator_ms, digest, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                vec![P::T(source.clone()), P::T(event_id.clone()), P::I(*job_id), P::T(pool.clone()), P::I(*accelerator_ms), P::T(digest.clone()), P::I(now)],
            )
            .await?;
            chain
                .append(
                    tx,
                    Change {
                        at_ms: now,
                        actor,
                        action: "usage.report",
                        subject: &format!("job:{job_id}"),
                        before: "-",
                        after: digest,
                    },
                )
                .await?;
            Ok(Outcome::Usage { new: true })
        }
        Write::SetQuotas { tenant_id, quotas } => {
            let before = tx
                .rows("SELECT quotas FROM tenant_quotas WHERE tenant_id = ?", vec![P::I(tenant_id.0)], &[K::T])
                .await?
                .first()
                .map_or_else(|| "-".to_owned(), |r| audit::digest(&r[0].t()));
            tx.exec(
                "INSERT INTO tenant_quotas (tenant_id, quotas) VALUES (?, ?) ON CONFLICT (tenant_id) DO UPDATE SET quotas = excluded.quotas",
                vec![P::I(tenant_id.0), P::T(quotas.clone())],
            )
            .await?;
            let (subject, after) = (format!("quotas:{}", tenant_id.0), audit::digest(quotas));
            let change =
                Change { at_ms: now, actor, action: "quotas.set", subject: &subject, before: &before, after: &after };
            chain.append(tx, change).await?;
            Ok(Outcome::Quotas)
        }
        Write::NoteJob { job_id, states, detail } => {
            let Some(job) = fetch_job(tx, *job_id).await? else {
                return Ok(Err(WriteError::NotFound(format!("job {job_id}"))));
            };
            if !states.contains(&job.state) {
                return Ok(Err(WriteError::WrongState { job_id: *job_id, state: job.state, to: job.state }));
            }
            let newest = tx
                .rows(
                    "SELECT detail, (SELECT COUNT(*) FROM job_events WHERE job_id = ?) FROM job_events \
                     WHERE job_id = ? ORDER BY id DESC LIMIT 1",
                    vec![P::I(*job_id), P::I(*job_id)],
                    &[K::T, K::I],
                )
                .await?;
            if newest.first().is_some_and(|r| r[0].t() == *detail || r[1].i() >= NOTED_HISTORY_MAX) {
                return Ok(Ok(Outcome::Noted(false)));
            }
            tx.exec(
                "INSERT INTO job_events (job_id, state, detail, at_ms) VALUES (?, ?, ?, ?)",
                vec![P::I(*job_id), P::T(job.state.as_str().to_owned()), P::T(detail.clone()), P::I(now)],
            )
            .await?;
            Ok(Outcome::Noted(true))
        }
        Write::RevokeToken { token_id } => {
            let Some(before) = fetch_token(tx, *token_id).await? else {
                return Ok(Err(WriteError::NotFound(format!("token {token_id}"))));
            };
            if before.revoked_ms.is_some() {
                return Ok(Ok(Outcome::Revoked(false)));
            }
            tx.exec("UPDATE tokens SET revoked_ms = ? WHERE id = ?", vec![P::I(now), P::I(*token_id)]).await?;
            let after = TokenRecord { revoked_ms: Some(now), ..before.clone() };
            let (subject, before, after) = (format!("token:{token_id}"), token_digest(&before), token_digest(&after));
            let change =
                Change { at_ms: now, actor, action: "token.revoke", subject: &subject, before: &before, after: &after };
            chain.append(tx, change).await?;
            Ok(Outcome::Revoked(true))
        }
        Write::SetPoolStatus { name, healthy, drained, last_seen_ms } => {
            let rows = tx
                .rows(
                    "SELECT healthy, drained, last_seen_ms FROM pool_status WHERE name = ?",
                    vec![P::T(name.clone())],
                    &[K::I, K::I, K::I],
                )
                .await?;
            let stored = rows.first().map(|r| (r[0].i() != 0, r[1].i() != 0, r[2].i()));
            let before = stored.map(|(h, d, _)| (h, d));
            let (was_healthy, was_drained, was_seen) = stored.unwrap_or((false, false, 0));
            let (healthy, drained) = (healthy.unwrap_or(was_healthy), drained.unwrap_or(was_drained));
            let last_seen_ms = last_seen_ms.unwrap_or(was_seen);
            tx.exec(
                "INSERT INTO pool_status (name, healthy, drained, last_seen_ms) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET healthy = excluded.healthy, drained = excluded.drained, last_seen_ms = excluded.last_seen_ms",
                vec![P::T(name.clone()), P::I(i64::from(healthy)), P::I(i64::from(drained)), P::I(last_seen_ms)],
            )
            .await?;
            // Heartbeats are not state changes; health and drain flips are.
            if before != Some((healthy, drained)) {
                let show = |s: Option<(bool, bool)>| {
                    s.map_or("-".to_owned(), |(h, d)| audit::digest(&format!("pool {name} healthy {h} drained {d}")))
                };
                let (subject, before, after) = (format!("pool:{name}"), show(before), show(Some((healthy, drained))));
                let change = Change {
                    at_ms: now,
                    actor,
                    action: "pool.status",
                    subject: &subject,
                    before: &before,
                    after: &after,
                };
                chain.append(tx, change).await?;
            }
            Ok(Outcome::PoolStatus)
        }
    })
}
