//! What the store keeps, and what a write can answer.

use std::fmt;
use std::str::FromStr;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Accepted, waiting to be placed.
    Queued,
    /// Assigned to a pool; its agent has not started it yet.
    Placed,
    /// Running in its pool.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully.
    Failed,
    /// Cancelled by its tenant or an operator.
    Cancelled,
    /// Stopped to make room; it will be queued again.
    Preempted,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Placed,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Preempted,
    ];

    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Placed => "placed",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Preempted => "preempted",
        }
    }

    /// A job in a terminal state never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    /// Whether `self → next` is a legal transition.
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Queued, Placed | Cancelled | Failed)
                | (Placed, Running | Queued | Cancelled | Failed | Succeeded)
                | (Running, Succeeded | Failed | Cancelled | Preempted | Queued)
                | (Preempted, Queued | Cancelled)
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s).ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything.
    Operator,
    /// Its own pools (agents use provider tokens scoped to one pool).
    Provider,
    /// Its own jobs.
    Tenant,
    /// Its own voucher programmes.
    ProgramAdmin,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [Role::Operator, Role::Provider, Role::Tenant, Role::ProgramAdmin, Role::Auditor];

    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Provider => "provider",
            Role::Tenant => "tenant",
            Role::ProgramAdmin => "program-admin",
            Role::Auditor => "auditor",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRecord {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `startup`, `sme`, …
    pub kind: String,
    /// City of registration.
    pub registration_city: String,
    /// When it was created (ms since 1970, UTC).
    pub created_ms: i64,
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's id.
    pub token_id: i64,
    /// Its role.
    pub role: Role,
    /// For tenant tokens, the tenant.
    pub tenant_id: Option<i64>,
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
    pub tenant_id: i64,
    /// Name.
    pub name: String,
    /// The job body as submitted (JSON).
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
    /// Set it.
    Set(String),
    /// Clear it (back to the queue).
    Clear,
}

/// One change to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A new tenant.
    CreateTenant {
        /// Unique name.
        name: String,
        /// Kind.
        kind: String,
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
        tenant_id: Option<i64>,
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
        tenant_id: i64,
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
    Transition {
        /// The job.
        job_id: i64,
        /// Accepted current states.
        from: Vec<JobState>,
        /// The new state.
        to: JobState,
        /// What happens to its pool.
        pool: PoolChange,
        /// A new explanation, if any.
        explanation: Option<String>,
        /// What happened, for the job's history.
        detail: String,
    },
    /// A piece of a job's log (idempotent by sequence number).
    AppendLog {
        /// The job.
        job_id: i64,
        /// Sequence number from the agent.
        seq: i64,
        /// Text.
        chunk: String,
    },
    /// Usage reported by an agent (idempotent by source and event id).
    RecordUsage {
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
    /// A pool's health.
    SetPoolStatus {
        /// Pool name.
        name: String,
        /// Healthy.
        healthy: bool,
        /// Drained.
        drained: bool,
        /// Report time.
        last_seen_ms: i64,
    },
    /// A tenant registers a data set (names are unique per tenant; a data set never changes).
    RegisterDataset {
        /// Owner.
        tenant_id: i64,
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
    pub tenant_id: i64,
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
}

impl WriteError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            WriteError::Duplicate(_) => "already_exists",
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
    pub tenant_id: Option<i64>,
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

/// A usage event as recorded.
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
}
