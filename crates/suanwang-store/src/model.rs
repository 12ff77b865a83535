//! What the store keeps, and what a write can answer.

use suanwang_model::job::TenantKind;
use suanwang_model::platform::{JobState, Role, TenantId};

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRecord {
    /// Id.
    pub id: TenantId,
    /// Unique name.
    pub name: String,
    /// What kind of organisation.
    pub kind: TenantKind,
    /// City of registration.
    pub registration_city: String,
    /// When it was created (ms since 1970, UTC).
    pub created_ms: i64,
}

/// A token as operators see it (never the secret, never its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Id.
    pub id: i64,
    /// Role.
    pub role: Role,
    /// For tenant tokens.
    pub tenant_id: Option<TenantId>,
    /// For provider tokens.
    pub pool: Option<String>,
    /// For people.
    pub label: String,
    /// When issued (ms since 1970).
    pub created_ms: i64,
    /// When it stops working.
    pub expires_ms: Option<i64>,
    /// When it was revoked.
    pub revoked_ms: Option<i64>,
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's id.
    pub token_id: i64,
    /// Its role.
    pub role: Role,
    /// For tenant tokens, the tenant.
    pub tenant_id: Option<TenantId>,
    /// For pool (agent) tokens, the pool.
    pub pool: Option<String>,
    /// A label for people ("ci", "demo tenant").
    pub label: String,
    /// When the token stops working (ms since 1970); `None`: never.
    pub expires_ms: Option<i64>,
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// Id.
    pub id: i64,
    /// Owner.
    pub tenant_id: TenantId,
    /// Name.
    pub name: String,
    /// The job body as accepted (JSON of `suanwang_api::jobs::JobRequest`).
    pub spec: String,
    /// Current state.
    pub state: JobState,
    /// Pool, once placed.
    pub pool: Option<String>,
    /// Why that pool.
    pub explanation: Option<String>,
    /// The submitter's idempotency key.
    pub idempotency_key: Option<String>,
    /// When accepted.
    pub created_ms: i64,
    /// When it last changed.
    pub updated_ms: i64,
    /// What it holds in its pool while placed or running (JSON, written by the control plane).
    pub allocation: Option<String>,
    /// When it was placed, while placed or running.
    pub placed_ms: Option<i64>,
    /// When its current run started (by the agent's report, bounded by the control plane).
    pub started_ms: Option<i64>,
    /// Runs started so far (a run's metered usage is `platform`/`job-ID-run-N`).
    pub runs: i64,
}

/// One state change of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEvent {
    /// The new state.
    pub state: JobState,
    /// What happened.
    pub detail: String,
    /// When.
    pub at_ms: i64,
}

/// A pool's health as its agent reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// Reporting and usable.
    pub healthy: bool,
    /// Takes no new work.
    pub drained: bool,
    /// Last report (ms).
    pub last_seen_ms: i64,
}

/// How a transition treats the job's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolChange {
    /// Leave it.
    Keep,
    /// Place it there, holding `allocation` (JSON): the placement time is the commit's.
    Place {
        /// The pool.
        pool: String,
        /// What it holds there.
        allocation: String,
    },
    /// Clear it (back to the queue): pool, allocation and run times are forgotten.
    Clear,
}

/// A job's change of state (only from one of `from`), with what happens to its pool and run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The job.
    pub job_id: i64,
    /// Accepted current states.
    pub from: Vec<JobState>,
    /// The new state.
    pub to: JobState,
    /// What happens to its pool.
    pub pool: PoolChange,
    /// A new explanation, if any.
    pub explanation: Option<String>,
    /// What happened, for the job's history.
    pub detail: String,
    /// A run starts (the job becomes `running`) at this time: the run count goes up.
    pub started_ms: Option<i64>,
    /// The run ends: its metered usage, recorded in the same transaction (a conflicting
    /// event refuses the whole transition).
    pub usage: Option<MeteredUsage>,
}

impl Transition {
    /// `job_id` goes from one of `from` to `to`, its pool kept, no run starting or ending.
    pub fn new(job_id: i64, from: &[JobState], to: JobState, detail: impl Into<String>) -> Self {
        Transition {
            job_id,
            from: from.to_vec(),
            to,
            pool: PoolChange::Keep,
            explanation: None,
            detail: detail.into(),
            started_ms: None,
            usage: None,
        }
    }
}

/// One run's usage as the platform metered it, recorded with the transition that ends the run
/// (source `platform`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeteredUsage {
    /// `job-ID-run-N`: a run is metered once.
    pub event_id: String,
    /// Where it ran.
    pub pool: String,
    /// Card-milliseconds (thousandths of cards × ms ÷ 1000), for invoices.
    pub card_ms: i64,
    /// Milliseconds the run held its allocation.
    pub run_ms: i64,
    /// The allocation's rate, milli-fen per hour.
    pub rate_millifen_per_hour: i64,
    /// What it ran under (`job:ID` or `contract:ID`).
    pub contract: String,
    /// Digest of the above: the same event id with another digest is a conflict.
    pub digest: String,
}

/// One change to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A new tenant.
    CreateTenant {
        /// Unique name.
        name: String,
        /// Kind.
        kind: TenantKind,
        /// City.
        registration_city: String,
    },
    /// A new token (only its hash is kept).
    CreateToken {
        /// SHA-256 of the token, hex.
        hash: String,
        /// Its role.
        role: Role,
        /// For tenant tokens.
        tenant_id: Option<TenantId>,
        /// For agent tokens.
        pool: Option<String>,
        /// For people.
        label: String,
        /// When it stops working (ms since 1970); `None`: never.
        expires_ms: Option<i64>,
    },
    /// A new job; with an idempotency key, a repeat returns the first job.
    SubmitJob {
        /// Owner.
        tenant_id: TenantId,
        /// Name.
        name: String,
        /// Body (JSON).
        spec: String,
        /// The caller's key.
        idempotency_key: Option<String>,
        /// Digest of the request body: the same key with another body is a conflict.
        request_digest: String,
    },
    /// A job changes state (only from one of `from`).
    Transition(Transition),
    /// A piece of a job's log (idempotent by sequence number).
    AppendLog {
        /// The job.
        job_id: i64,
        /// Sequence number from the agent.
        seq: i64,
        /// Text.
        chunk: String,
    },
    /// An agent's own measure of a run (evidence, never billed; idempotent by source and id).
    ReportUsage {
        /// Who reports (e.g. `agent:shaoguan-telecom`).
        source: String,
        /// The reporter's id for the event.
        event_id: String,
        /// The job.
        job_id: i64,
        /// The pool.
        pool: String,
        /// Accelerator-milliseconds.
        accelerator_ms: i64,
        /// Digest of the event: a known id with another digest is a conflict.
        digest: String,
    },
    /// A pool's health, drain flag and last report. `None` keeps what is stored (read and
    /// written in one transaction, so a heartbeat never undoes a drain made meanwhile); a pool
    /// with no row yet starts unhealthy, undrained, never seen.
    SetPoolStatus {
        /// Pool name.
        name: String,
        /// Healthy.
        healthy: Option<bool>,
        /// Drained.
        drained: Option<bool>,
        /// Report time.
        last_seen_ms: Option<i64>,
    },
    /// An operator sets a tenant's quotas (JSON, checked by the control plane).
    SetQuotas {
        /// The tenant.
        tenant_id: TenantId,
        /// The quotas, JSON.
        quotas: String,
    },
    /// A line in a job's history that changes nothing else (why it waits in its cluster): added
    /// only while the job is in one of `states`, and only when it differs from the newest line.
    NoteJob {
        /// The job.
        job_id: i64,
        /// States the job may be in.
        states: Vec<JobState>,
        /// The line.
        detail: String,
    },
    /// A token stops working now (its row stays, for the audit trail).
    RevokeToken {
        /// The token's id.
        token_id: i64,
    },
    /// A tenant registers a data set (names are unique per tenant; a data set never changes).
    RegisterDataset {
        /// Owner.
        tenant_id: TenantId,
        /// Name, unique for the tenant.
        name: String,
        /// Site where it is stored.
        site: String,
        /// Size.
        size_bytes: i64,
    },
}

/// A registered data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetRecord {
    /// Id.
    pub id: i64,
    /// Owner.
    pub tenant_id: TenantId,
    /// Name, unique for the tenant.
    pub name: String,
    /// Site where it is stored.
    pub site: String,
    /// Size.
    pub size_bytes: i64,
    /// When it was registered (ms since 1970, UTC).
    pub created_ms: i64,
}

/// What a successful write produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new tenant.
    Tenant(TenantRecord),
    /// The new token's id.
    Token(i64),
    /// The job (`created` is false when an idempotency key matched an earlier submission).
    Job {
        /// The job.
        job: JobRecord,
        /// New, or a replay.
        created: bool,
    },
    /// The job after the transition.
    Transitioned(JobRecord),
    /// `new` is false for a repeated sequence number.
    Logged {
        /// Stored now.
        new: bool,
    },
    /// `new` is false for a repeated event.
    Usage {
        /// Stored now.
        new: bool,
    },
    /// Pool status stored.
    PoolStatus,
    /// Quotas set.
    Quotas,
    /// The token revoked (`false`: it already was).
    Revoked(bool),
    /// A job's history line (`false`: the same as the newest, not repeated).
    Noted(bool),
    /// The new data set.
    Dataset(DatasetRecord),
}

/// Why one write of a batch was refused (the others still apply).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A name is taken.
    #[error("{0} already exists")]
    Duplicate(String),
    /// The idempotency key was used with another body.
    #[error("the idempotency key was already used for job {job_id} with a different body")]
    IdempotencyConflict {
        /// The first job.
        job_id: i64,
    },
    /// No such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// The job is not in a state this change starts from.
    #[error("job {job_id} is {state}; it cannot become {to}")]
    WrongState {
        /// The job.
        job_id: i64,
        /// Its state.
        state: JobState,
        /// The refused target.
        to: JobState,
    },
    /// A usage event id was reused with another payload.
    #[error("usage event {0} was already recorded with a different payload")]
    UsageConflict(String),
    /// The database refused this write's data (a constraint or a value it cannot store); the
    /// rest of its batch was written without it.
    #[error("the database cannot store this: {0}")]
    Unstorable(String),
}

impl WriteError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            WriteError::Duplicate(_) => "already_exists",
            WriteError::Unstorable(_) => "unstorable",
            WriteError::IdempotencyConflict { .. } => "idempotency_conflict",
            WriteError::NotFound(_) => "not_found",
            WriteError::WrongState { .. } => "invalid_state",
            WriteError::UsageConflict(_) => "usage_conflict",
        }
    }
}

/// Which jobs to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this tenant's.
    pub tenant_id: Option<TenantId>,
    /// Only these states (empty: all).
    pub states: Vec<JobState>,
    /// Only this pool's.
    pub pool: Option<String>,
    /// Only jobs changed after this time (ms).
    pub updated_after_ms: Option<i64>,
    /// Newest first: pages go down from the cursor (ids below it; 0 means from the newest).
    pub newest_first: bool,
}

/// The most rows one list call returns.
pub const PAGE_MAX: u32 = 1000;

/// A usage event as recorded: a run the platform metered, or (recorded before it did) usage an
/// agent reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord {
    /// Who reported it.
    pub source: String,
    /// The reporter's id for it.
    pub event_id: String,
    /// The job.
    pub job_id: i64,
    /// The pool.
    pub pool: String,
    /// Accelerator-milliseconds.
    pub accelerator_ms: i64,
    /// When it was recorded (ms).
    pub at_ms: i64,
    /// How a metered run is priced (absent in usage agents reported before the platform
    /// metered runs itself).
    pub run: Option<RunPrice>,
}

/// How a metered run is priced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPrice {
    /// Milliseconds the run held its allocation.
    pub run_ms: i64,
    /// The allocation's rate, milli-fen per hour.
    pub rate_millifen_per_hour: i64,
    /// What it ran under (`job:ID` or `contract:ID`).
    pub contract: String,
}
