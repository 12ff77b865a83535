//! The job API: submit (idempotent by key), list, show, cancel, logs, explanation.

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use suanwang_model::catalog::AcceleratorSet;
use suanwang_model::federation::{Federation, PoolId};
use suanwang_model::job::{AcceleratorRequest, DatasetRef, JobSpec, LatencyRequirement, TaskSpec};
use suanwang_sched::job::Job;
use suanwang_store::model::{JobFilter, JobRecord, JobState, Outcome, PAGE_MAX, PoolChange, Role, Write};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::scheduler::SchedulerMsg;
use crate::state::{AppState, rfc3339};

/// Longest job name.
pub const NAME_MAX: usize = 128;
/// Most command arguments.
pub const ARGS_MAX: usize = 256;
/// Most bytes in all command arguments together.
pub const COMMAND_BYTES_MAX: usize = 64 * 1024;
/// Longest idempotency key.
pub const KEY_MAX: usize = 128;

/// A JSON body whose rejections become API errors.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(request, state).await.map(|Json(v)| Body(v)).map_err(ApiError::from)
    }
}

/// A data set reference by site name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetBody {
    /// The registered data set this came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Site.
    pub site: String,
    /// Bytes.
    pub size_bytes: u64,
}

/// A job's input data: a registered data set by name, or a site and size given inline. On
/// submission a name is looked up and stored as both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DatasetField {
    /// `"dataset": "corpus"`: registered with `POST /api/v1/datasets`.
    Named(String),
    /// `"dataset": {"site": …, "size_bytes": …}`.
    Given(DatasetBody),
}

impl<'de> Deserialize<'de> for DatasetField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // By hand rather than `untagged`, so a bad object keeps its precise error.
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(name) => Ok(DatasetField::Named(name)),
            other => serde_json::from_value(other).map(DatasetField::Given).map_err(serde::de::Error::custom),
        }
    }
}

/// A latency bound by site name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyBody {
    /// Site.
    pub site: String,
    /// Most one-way milliseconds.
    pub max_ms: f64,
}

fn one() -> u16 {
    1
}

fn whole() -> u16 {
    1000
}

/// `POST /api/v1/jobs`. The smallest body:
/// `{"name":"hello","command":["sh","-c","echo hello"],"accelerators":0,"cpu_milli":500,"memory_mib":256}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// A label (1–128 characters).
    pub name: String,
    /// Program and arguments (run by `local` pools).
    #[serde(default)]
    pub command: Vec<String>,
    /// Accelerators per task.
    #[serde(default)]
    pub accelerators: u8,
    /// Thousandths of each accelerator (below 1000 only with one).
    #[serde(default = "whole")]
    pub accelerator_milli: u16,
    /// Accepted accelerator models (empty: any).
    #[serde(default)]
    pub accelerator_models: Vec<String>,
    /// CPU per task, thousandths of a core.
    #[serde(default)]
    pub cpu_milli: u32,
    /// Memory per task.
    #[serde(default)]
    pub memory_mib: u32,
    /// Tasks in the gang.
    #[serde(default = "one")]
    pub tasks: u16,
    /// Priority.
    #[serde(default)]
    pub priority: i32,
    /// May be preempted.
    #[serde(default)]
    pub preemptible: bool,
    /// Run only in this pool.
    #[serde(default)]
    pub pool: Option<String>,
    /// The user's run-time estimate.
    #[serde(default)]
    pub estimate_s: Option<u64>,
    /// How long a simulated pool runs it.
    #[serde(default)]
    pub duration_s: Option<u64>,
    /// Input data: a registered data set's name, or `{"site","size_bytes"}`.
    #[serde(default)]
    pub dataset: Option<DatasetField>,
    /// Region the job must stay in.
    #[serde(default)]
    pub residency_region: Option<String>,
    /// Latency bound.
    #[serde(default)]
    pub latency: Option<LatencyBody>,
    /// Price ceiling.
    #[serde(default)]
    pub max_price_fen_per_card_hour: Option<i64>,
    /// Prefers green pools.
    #[serde(default)]
    pub green: bool,
    /// Operators submit for a tenant by name; tenants submit for themselves.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The application (template) the job was made from; with `"params"` on submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A market contract (`contract:ID`) the job runs under: it runs in the contract's pool and
    /// is rated at the contract's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
}

/// A job as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Owner.
    pub tenant_id: i64,
    /// State.
    pub state: &'static str,
    /// Pool, once placed.
    pub pool: Option<String>,
    /// Why there.
    pub explanation: Option<String>,
    /// When accepted (UTC).
    pub created_at: String,
    /// When it last changed (UTC).
    pub updated_at: String,
    /// The body as submitted.
    pub request: serde_json::Value,
}

impl From<&JobRecord> for JobView {
    fn from(job: &JobRecord) -> Self {
        JobView {
            id: job.id,
            name: job.name.clone(),
            tenant_id: job.tenant_id,
            state: job.state.as_str(),
            pool: job.pool.clone(),
            explanation: job.explanation.clone(),
            created_at: rfc3339(job.created_ms),
            updated_at: rfc3339(job.updated_ms),
            request: serde_json::from_str(&job.spec).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Turns a validated body into what the scheduler needs (used on submit and on restart).
pub fn scheduler_job(
    federation: &Federation,
    tenant_id: i64,
    body: &SubmitJob,
    submit_s: u64,
) -> Result<Job, ApiError> {
    let invalid = |m: String| ApiError::bad_request("invalid_job", m);
    if body.name.trim().is_empty() || body.name.chars().count() > NAME_MAX {
        return Err(invalid(format!("name must be 1 to {NAME_MAX} characters")).at("name"));
    }
    if body.command.len() > ARGS_MAX || body.command.iter().map(String::len).sum::<usize>() > COMMAND_BYTES_MAX {
        return Err(invalid(format!("command must have at most {ARGS_MAX} arguments and {COMMAND_BYTES_MAX} bytes"))
            .at("command"));
    }
    let catalog = federation.catalog();
    let milli = if body.accelerators == 0 { 0 } else { body.accelerator_milli };
    let request =
        AcceleratorRequest::new(body.accelerators, milli).map_err(|e| invalid(e.to_string()).at("accelerators"))?;
    let models = if body.accelerator_models.is_empty() {
        AcceleratorSet::ANY
    } else {
        body.accelerator_models
            .iter()
            .map(|m| catalog.resolve(m))
            .collect::<Result<AcceleratorSet, _>>()
            .map_err(|e| invalid(e.to_string()).at("accelerator_models"))?
    };
    let task = TaskSpec::new(body.cpu_milli, body.memory_mib, request, models).map_err(|e| invalid(e.to_string()))?;
    let site = |name: &str| federation.site_id(name).ok_or_else(|| invalid(format!("unknown site {name:?}")));
    let dataset = match &body.dataset {
        None => None,
        Some(DatasetField::Given(d)) => Some(DatasetRef { site: site(&d.site)?, size_bytes: d.size_bytes }),
        Some(DatasetField::Named(name)) => {
            return Err(ApiError::bad_request("unknown_dataset", format!("data set {name:?} is not resolved")));
        }
    };
    let latency = match &body.latency {
        None => None,
        Some(l) if l.max_ms.is_finite() && (0.0..=10_000.0).contains(&l.max_ms) => {
            Some(LatencyRequirement { site: site(&l.site)?, latency_us_max: (l.max_ms * 1000.0).round() as u32 })
        }
        Some(_) => return Err(invalid("latency.max_ms must be between 0 and 10000".to_owned())),
    };
    let pool = body
        .pool
        .as_ref()
        .map(|name| {
            federation
                .pools()
                .find(|(_, p)| &p.name == name)
                .map(|(id, _)| id)
                .ok_or_else(|| ApiError::bad_request("unknown_pool", format!("unknown pool {name:?}")).at("pool"))
        })
        .transpose()?;
    let spec = JobSpec {
        name: body.name.clone(),
        tenant: u32::try_from(tenant_id).map_err(|_| invalid("tenant id out of range".to_owned()))?,
        task,
        gang_size: body.tasks,
        priority: body.priority,
        preemptible: body.preemptible,
        dataset,
        residency_region: body.residency_region.clone(),
        latency,
        price_fen_per_card_hour_max: body.max_price_fen_per_card_hour,
        deadline_unix_s: None,
        runtime_estimate_s: body.estimate_s,
    };
    spec.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(Job { spec, submit_s, green: body.green, oracle_duration_s: None, pool: pool.map(|p: PoolId| p) })
}

/// `POST /api/v1/jobs`.
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<serde_json::Value>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid_idempotency_key", "the Idempotency-Key must be ASCII"))?;
            if key.is_empty() || key.len() > KEY_MAX {
                return Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    format!("the Idempotency-Key must be 1 to {KEY_MAX} characters"),
                ));
            }
            Some(key.to_owned())
        }
    };
    let body = crate::apps::expand_template(&state, body)?;
    let mut body: SubmitJob = serde_path_to_error::deserialize(body).map_err(|e| {
        let message = format!("the body is not valid: {e}");
        let error = ApiError::bad_request("invalid_body", message.clone());
        match crate::error::field_of(&message) {
            Some(field) => error.at(field),
            None => error,
        }
    })?;
    let tenant_id = crate::apps::acting_tenant(&state, &caller, body.tenant.as_deref(), "invalid_job").await?;
    if let Some(DatasetField::Named(name)) = &body.dataset {
        let found = state.store.dataset(tenant_id, name).await?.ok_or_else(|| {
            ApiError::bad_request(
                "unknown_dataset",
                format!("no data set {name:?}; register it with POST /api/v1/datasets"),
            )
        })?;
        body.dataset = Some(DatasetField::Given(DatasetBody {
            name: Some(found.name),
            site: found.site,
            size_bytes: u64::try_from(found.size_bytes).unwrap_or(0),
        }));
    }
    let now = crate::state::now_ms();
    if let Some(contract) = body.contract.clone() {
        let c = crate::money::tenant_contract(&state, tenant_id, &contract).await?;
        let cards = u32::from(body.accelerators) * u32::from(body.tasks);
        if cards > c.cards {
            return Err(ApiError::bad_request(
                "exceeds_contract",
                format!("the job needs {cards} cards; {contract} has {}", c.cards),
            ));
        }
        let now_s = u64::try_from(now / 1000).unwrap_or(0);
        if now_s >= c.end_s {
            return Err(ApiError::conflict("contract_ended", format!("{contract}'s window has ended")));
        }
        if body.pool.as_ref().is_some_and(|p| p != &c.pool) {
            return Err(ApiError::bad_request("contract_pool_mismatch", format!("{contract} is for pool {}", c.pool)));
        }
        body.pool = Some(c.pool.clone());
    }
    let job = scheduler_job(&state.federation, tenant_id, &body, (now / 1000) as u64)?;
    // The stored body is the canonical JSON of what was accepted: its digest decides whether a
    // replayed key carries the same request.
    let canonical = serde_json::to_string(&body).map_err(|e| ApiError::bad_request("invalid_job", e.to_string()))?;
    let digest = suanwang_store::audit::digest(&canonical);
    let write = Write::SubmitJob {
        tenant_id,
        name: body.name.clone(),
        spec: canonical,
        idempotency_key: key,
        request_digest: digest,
    };
    match state.committer.write(caller.actor(), write).await? {
        Outcome::Job { job: record, created } => {
            if created {
                state.scheduler.try_send(SchedulerMsg::Submitted { job_id: record.id, job: Box::new(job) }).map_err(
                    |_| {
                        ApiError::unavailable(
                            "the scheduler is busy; the job is stored and will be scheduled when it catches up",
                        )
                    },
                )?;
            }
            Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(JobView::from(&record))))
        }
        other => Err(ApiError::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this state (comma-separated states allowed).
    pub state: Option<String>,
    /// Only this pool.
    pub pool: Option<String>,
    /// Only this tenant (operators and auditors).
    pub tenant: Option<String>,
    /// Ids above this (the previous page's `next_after`).
    pub after: Option<i64>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
    /// `asc` (default: oldest first, `after` pages up) or `desc` (newest first, `after` pages down).
    pub order: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Serialize)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// `GET /api/v1/jobs`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let newest_first = match query.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::bad_request("invalid_query", format!("order {other:?}: expected asc or desc")));
        }
    };
    let mut filter = JobFilter { pool: query.pool.clone(), newest_first, ..JobFilter::default() };
    if let Some(states) = &query.state {
        filter.states = states
            .split(',')
            .map(|s| s.trim().parse::<JobState>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request("invalid_query", e))?;
    }
    match caller.role() {
        Role::Tenant => filter.tenant_id = caller.principal.tenant_id,
        Role::Operator | Role::Auditor => {
            if let Some(name) = &query.tenant {
                filter.tenant_id = Some(
                    state
                        .store
                        .tenant_by_name(name)
                        .await?
                        .ok_or_else(|| ApiError::not_found(format!("tenant {name:?}")))?
                        .id,
                );
            }
        }
        Role::Provider => {
            filter.pool = Some(
                caller.principal.pool.clone().ok_or_else(|| ApiError::forbidden("this provider token has no pool"))?,
            );
        }
        Role::ProgramAdmin => return Err(ApiError::forbidden("a program-admin token cannot list jobs")),
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {PAGE_MAX}")));
    }
    let jobs = state.store.jobs(&filter, query.after.unwrap_or(0), limit).await?;
    let next_after = (jobs.len() == limit as usize).then(|| jobs.last().map(|j| j.id)).flatten();
    Ok(Json(JobPage { jobs: jobs.iter().map(JobView::from).collect(), next_after }))
}

/// Finds a job the caller may see; everyone else's is "not found".
pub async fn visible_job(state: &AppState, caller: &Caller, id: i64) -> Result<JobRecord, ApiError> {
    let job = state.store.job(id).await?.ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    let visible = match caller.role() {
        Role::Operator | Role::Auditor => true,
        Role::Tenant => caller.principal.tenant_id == Some(job.tenant_id),
        Role::Provider => caller.principal.pool.is_some() && caller.principal.pool == job.pool,
        Role::ProgramAdmin => false,
    };
    if visible { Ok(job) } else { Err(ApiError::not_found(format!("job {id}"))) }
}

/// One step of a job's history.
#[derive(Debug, Serialize)]
pub struct EventView {
    /// State.
    pub state: &'static str,
    /// What happened.
    pub detail: String,
    /// When (UTC).
    pub at: String,
}

/// A job with its history.
#[derive(Debug, Serialize)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub job: JobView,
    /// Its states, oldest first.
    pub history: Vec<EventView>,
    /// Accelerator-seconds its pool reported.
    pub usage_accelerator_s: f64,
}

/// `GET /api/v1/jobs/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<JobDetail>, ApiError> {
    let job = visible_job(&state, &caller, id).await?;
    let history = state
        .store
        .job_events(id)
        .await?
        .into_iter()
        .map(|e| EventView { state: e.state.as_str(), detail: e.detail, at: rfc3339(e.at_ms) })
        .collect();
    let usage_ms = state.store.job_usage_ms(id).await?;
    Ok(Json(JobDetail { job: JobView::from(&job), history, usage_accelerator_s: usage_ms as f64 / 1000.0 }))
}

/// `POST /api/v1/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<JobView>, ApiError> {
    caller.require(&[Role::Tenant, Role::Operator])?;
    let job = visible_job(&state, &caller, id).await?;
    let write = Write::Transition {
        job_id: job.id,
        from: vec![JobState::Queued, JobState::Placed, JobState::Running, JobState::Preempted],
        to: JobState::Cancelled,
        pool: PoolChange::Keep,
        explanation: None,
        detail: format!("cancelled by {}", caller.actor()),
    };
    match state.committer.write(caller.actor(), write).await? {
        Outcome::Transitioned(record) => {
            let _ = state.scheduler.try_send(SchedulerMsg::Ended { job_id: record.id });
            Ok(Json(JobView::from(&record)))
        }
        other => Err(ApiError::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// Query of `GET /api/v1/jobs/{id}/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Chunks after this sequence number.
    pub after: Option<i64>,
    /// At most this many chunks (1–1000, default 1000).
    pub limit: Option<u32>,
    /// Instead: the last this many chunks (1–1000), oldest first.
    #[serde(default)]
    pub tail: Option<u32>,
}

/// A page of log chunks.
#[derive(Debug, Serialize)]
pub struct LogPage {
    /// `[seq, text]` in order.
    pub chunks: Vec<(i64, String)>,
    /// Pass as `after` for more.
    pub next_after: i64,
}

/// `GET /api/v1/jobs/{id}/logs`.
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LogPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    visible_job(&state, &caller, id).await?;
    let after = query.after.unwrap_or(0);
    let chunks = match query.tail {
        Some(tail) if query.after.is_some() => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("give either after or tail (tail={tail} reads the last chunks)"),
            ));
        }
        Some(tail) => state.store.job_logs_tail(id, tail).await?,
        None => state.store.job_logs(id, after, query.limit.unwrap_or(PAGE_MAX)).await?,
    };
    let next_after = chunks.last().map_or(after, |c| c.0);
    Ok(Json(LogPage { chunks, next_after }))
}

/// Where a job went and why.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// Job.
    pub id: i64,
    /// State.
    pub state: &'static str,
    /// Pool, once placed.
    pub pool: Option<String>,
    /// The scheduler's words.
    pub explanation: Option<String>,
}

/// `GET /api/v1/jobs/{id}/explain`.
pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Explanation>, ApiError> {
    let job = visible_job(&state, &caller, id).await?;
    Ok(Json(Explanation { id: job.id, state: job.state.as_str(), pool: job.pool, explanation: job.explanation }))
}
