//! Jobs: submit (idempotent by key; a job no pool could ever run is refused), list, show, cancel,
//! logs, explanation.

use serde_json::{Map, Value};
use suanwang_api::jobs::{
    DatasetBody, DatasetField, EventView, Explanation, JobDetail, JobPage, JobRequest, JobView, ListQuery, LogPage,
    LogQuery,
};
use suanwang_model::platform::{JobState, TenantId};
use suanwang_store::model::{JobFilter, JobRecord, Outcome, PAGE_MAX, PoolChange, Write};

use crate::Control;
use crate::access::{Action, Owner, Scope, may, require};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::Error;
use crate::metering::{Leave, RunEnd, leave};
use crate::scheduler::SchedulerMsg;

/// Longest idempotency key.
pub const KEY_MAX: usize = 128;

/// The most bytes of JSON one page of jobs or of output carries: a page ends early (and says
/// where to go on) rather than grow with what tenants stored. At least one item always comes.
pub const PAGE_BYTES_MAX: usize = 4 << 20;

/// How many of `sizes` (in order) fit in `budget` bytes: at least one when there is one.
fn fitting(sizes: impl IntoIterator<Item = usize>, budget: usize) -> usize {
    let mut used = 0usize;
    let mut count = 0;
    for size in sizes {
        used = used.saturating_add(size);
        if used > budget && count > 0 {
            break;
        }
        count += 1;
    }
    count
}

/// A submission: a job body, or an application (template) with parameters and fields over it.
#[derive(Clone, Debug, PartialEq)]
pub enum Submission {
    /// A whole job body.
    Job(Box<JobRequest>),
    /// `{"template": NAME, "params": {...}, ...fields}`.
    Template {
        /// The application's name.
        template: String,
        /// Its parameters (typed by the application).
        params: Map<String, Value>,
        /// Fields of a job body that override the template's.
        fields: Map<String, Value>,
    },
}

/// Reads a JSON body as a submission; a bad field is named (`error.field`).
pub fn parse_submission(body: Value) -> Result<Submission, Error> {
    let Value::Object(mut fields) = body else {
        return Err(Error::bad_request("invalid_body", "the body is not valid: expected a JSON object"));
    };
    let Some(template) = fields.remove("template") else {
        if fields.contains_key("params") {
            return Err(Error::bad_request("invalid_job", "\"params\" needs a \"template\"").at("params"));
        }
        return typed(Value::Object(fields)).map(|job| Submission::Job(Box::new(job)));
    };
    let template = template
        .as_str()
        .ok_or_else(|| Error::bad_request("invalid_job", "\"template\" must be an application's name").at("template"))?
        .to_owned();
    let params = match fields.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(Error::bad_request("invalid_job", "\"params\" must be an object").at("params")),
    };
    Ok(Submission::Template { template, params, fields })
}

/// A job body from JSON, with the field at fault named.
pub fn typed(body: Value) -> Result<JobRequest, Error> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let message = format!("the body is not valid: {e}");
        let error = Error::bad_request("invalid_body", message.clone());
        match field_of(&message) {
            Some(field) => error.at(field),
            None => error,
        }
    })
}

/// The top-level field a "the body is not valid: cpu_milli: invalid type…" message names.
pub fn field_of(message: &str) -> Option<String> {
    let rest = message.strip_prefix("the body is not valid: ")?;
    let (path, _) = rest.split_once(": ")?;
    let first = path.split(['.', '[']).next()?;
    (!first.is_empty() && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| first.to_owned())
}

/// A job as the API shows it.
pub fn view(job: &JobRecord) -> JobView {
    JobView {
        id: job.id,
        name: job.name.clone(),
        tenant_id: job.tenant_id.0,
        state: job.state,
        pool: job.pool.clone(),
        explanation: job.explanation.clone(),
        created_at: rfc3339(job.created_ms),
        updated_at: rfc3339(job.updated_ms),
        request: serde_json::from_str(&job.spec).ok(),
    }
}

fn check_key(key: Option<&str>) -> Result<(), Error> {
    if let Some(key) = key
        && (key.is_empty() || key.len() > KEY_MAX || !key.is_ascii() || key.contains('\0'))
    {
        return Err(Error::bad_request(
            "invalid_idempotency_key",
            format!("the Idempotency-Key must be 1 to {KEY_MAX} ASCII characters"),
        ));
    }
    Ok(())
}

/// Submits a job; `created` is false when `key` matched an earlier submission (which is returned).
pub async fn submit(
    ctl: &Control,
    caller: &Caller,
    submission: Submission,
    key: Option<String>,
) -> Result<(JobView, bool), Error> {
    require(caller, Action::SubmitJob)?;
    check_key(key.as_deref())?;
    let body = resolve(ctl, submission)?;
    submit_body(ctl, caller, body, key).await
}

/// Submits an array: `size` jobs from one body, job `i` named `<name>[i]` and run with
/// `SUANWANG_ARRAY_INDEX=i` and `SUANWANG_ARRAY_SIZE=size`. Each is an ordinary job (placed,
/// run, billed and cancelled on its own, as Slurm's array tasks are); the array counts against
/// the queued-jobs quota as a whole. With a key `K`, job `i` gets `K/i`: a retry after a
/// failure part-way returns the jobs already made and makes the rest. `created` is false when
/// every job was there already.
pub async fn submit_array(
    ctl: &Control,
    caller: &Caller,
    request: suanwang_api::jobs::JobArrayRequest,
    key: Option<String>,
) -> Result<(suanwang_api::jobs::JobArrayView, bool), Error> {
    use suanwang_api::jobs::ARRAY_SIZE_MAX;
    require(caller, Action::SubmitJob)?;
    check_key(key.as_deref())?;
    if key.as_ref().is_some_and(|k| k.len() + 5 > KEY_MAX) {
        return Err(Error::bad_request(
            "invalid_idempotency_key",
            format!("an array's Idempotency-Key is at most {} characters (each job's is KEY/INDEX)", KEY_MAX - 5),
        ));
    }
    if request.size == 0 || request.size > ARRAY_SIZE_MAX {
        return Err(Error::bad_request("invalid_job", format!("an array has 1 to {ARRAY_SIZE_MAX} jobs")).at("size"));
    }
    let body = resolve(ctl, parse_submission(request.job).map_err(|e| e.under("job"))?).map_err(|e| e.under("job"))?;
    if body.env.contains_key(ARRAY_INDEX) || body.env.contains_key(ARRAY_SIZE) {
        return Err(Error::bad_request(
            "invalid_job",
            format!("{ARRAY_INDEX} and {ARRAY_SIZE} are the platform's to set in an array"),
        )
        .at("job"));
    }
    // The whole array against the quota, unless it is a retry (its first job exists).
    let tenant_id = crate::apps::acting_tenant(ctl, caller, body.tenant.as_deref(), "invalid_job").await?;
    let retry = match &key {
        Some(key) => ctl.store.job_by_key(tenant_id, &format!("{key}/0")).await?.is_some(),
        None => false,
    };
    if !retry {
        let most = crate::quota::of(ctl, tenant_id).await?.queued_jobs;
        let queued = ctl.store.count_jobs(tenant_id, JobState::Queued).await?;
        if queued + i64::from(request.size) > i64::from(most) {
            return Err(crate::quota::exceeded("queued jobs", most));
        }
    }
    let mut job_ids = Vec::with_capacity(usize::from(request.size));
    let mut any_created = false;
    // Several at once, so that they share group commits.
    let indexes: Vec<u16> = (0..request.size).collect();
    for group in indexes.chunks(ARRAY_WRITES_AT_ONCE) {
        let submissions = group.iter().map(|&index| {
            let mut job = body.clone();
            job.name = format!("{}[{index}]", body.name);
            job.env.insert(ARRAY_INDEX.to_owned(), index.to_string());
            job.env.insert(ARRAY_SIZE.to_owned(), request.size.to_string());
            let key = key.as_ref().map(|k| format!("{k}/{index}"));
            submit_body(ctl, caller, job, key)
        });
        for done in futures_util::future::join_all(submissions).await {
            let (view, created) = done.map_err(|e| e.under("job"))?;
            any_created |= created;
            job_ids.push(view.id);
        }
    }
    Ok((suanwang_api::jobs::JobArrayView { size: request.size, job_ids }, any_created))
}

/// An array's jobs written at once (each waits for a group commit; together they share them).
const ARRAY_WRITES_AT_ONCE: usize = 64;

/// The variable that tells an array's job its index (0 to size − 1).
pub const ARRAY_INDEX: &str = "SUANWANG_ARRAY_INDEX";
/// The variable that tells an array's job the array's size.
pub const ARRAY_SIZE: &str = "SUANWANG_ARRAY_SIZE";

/// A submission as one job body: a template expanded with its parameters and fields.
fn resolve(ctl: &Control, submission: Submission) -> Result<JobRequest, Error> {
    Ok(match submission {
        Submission::Job(job) => *job,
        Submission::Template { template, params, fields } => {
            let app = ctl.config.apps.get(&template).ok_or_else(|| {
                Error::bad_request(
                    "unknown_template",
                    format!("unknown application {template:?}; GET /api/v1/apps lists them"),
                )
                .at("template")
            })?;
            let mut job = app.expand(&params).map_err(|e| Error::bad_request(e.code(), e.to_string()).at("params"))?;
            job.extend(fields);
            job.insert("template".to_owned(), Value::from(template));
            typed(Value::Object(job))?
        }
    })
}

/// Submits a resolved job body (see [`submit`]).
async fn submit_body(
    ctl: &Control,
    caller: &Caller,
    mut body: JobRequest,
    key: Option<String>,
) -> Result<(JobView, bool), Error> {
    crate::fit::check_limits(&body)?;
    let tenant_id = crate::apps::acting_tenant(ctl, caller, body.tenant.as_deref(), "invalid_job").await?;
    // A retried key is answered whatever the queue holds now; a new job counts against the quota.
    let replay = match &key {
        Some(key) => ctl.store.job_by_key(tenant_id, key).await?.is_some(),
        None => false,
    };
    if !replay {
        let most = crate::quota::of(ctl, tenant_id).await?.queued_jobs;
        if ctl.store.count_jobs(tenant_id, JobState::Queued).await? >= i64::from(most) {
            return Err(crate::quota::exceeded("queued jobs", most));
        }
    }
    if let Some(DatasetField::Named(name)) = &body.dataset {
        let found = ctl.store.dataset(tenant_id, name).await?.ok_or_else(|| {
            Error::bad_request(
                "unknown_dataset",
                format!("no data set {name:?}; register it with POST /api/v1/datasets"),
            )
            .at("dataset")
        })?;
        body.dataset = Some(DatasetField::Given(DatasetBody {
            name: Some(found.name),
            site: found.site,
            size_bytes: u64::try_from(found.size_bytes).unwrap_or(0),
        }));
    }
    let now = ctl.now_ms();
    if let Some(contract) = body.contract.clone() {
        let c = crate::money::tenant_contract(ctl, tenant_id, &contract).await?;
        let cards = u32::from(body.accelerators) * u32::from(body.tasks);
        if cards > c.cards {
            return Err(Error::bad_request(
                "exceeds_contract",
                format!("the job needs {cards} cards; {contract} has {}", c.cards),
            )
            .at("contract"));
        }
        let now_s = u64::try_from(now / 1000).unwrap_or(0);
        if now_s >= c.end_s {
            return Err(Error::conflict("contract_ended", format!("{contract}'s window has ended")).at("contract"));
        }
        if body.pool.as_ref().is_some_and(|p| p != &c.pool) {
            return Err(
                Error::bad_request("contract_pool_mismatch", format!("{contract} is for pool {}", c.pool)).at("pool")
            );
        }
        body.pool = Some(c.pool.clone());
    }
    // The digest of the request as the tenant sent it (templates, data sets and contracts
    // resolved) decides whether a replayed key carries the same request; the platform's
    // defaults are applied after it, and stored.
    let canonical = serde_json::to_string(&body).map_err(|e| Error::bad_request("invalid_job", e.to_string()))?;
    let digest = suanwang_store::audit::digest(&canonical);
    let body = crate::fit::with_defaults(body, &ctl.config);
    let tenant_index =
        u32::try_from(tenant_id.0).map_err(|_| Error::bad_request("invalid_job", "tenant id out of range"))?;
    let job = crate::fit::scheduler_job(&ctl.federation, &ctl.adaptation, tenant_index, &body, (now / 1000) as u64)?;
    if let Some(refusal) = crate::fit::unschedulable(&ctl.federation, &job) {
        return Err(refusal);
    }
    let spec = serde_json::to_string(&body).map_err(|e| Error::bad_request("invalid_job", e.to_string()))?;
    let write =
        Write::SubmitJob { tenant_id, name: body.name.clone(), spec, idempotency_key: key, request_digest: digest };
    match ctl.committer.write(caller.actor(), write).await? {
        Outcome::Job { job: record, created } => {
            if created {
                let submitted =
                    SchedulerMsg::Submitted { job_id: record.id, job: Box::new(job), request: Box::new(body) };
                ctl.scheduler.try_send(submitted).map_err(|_| {
                    Error::unavailable(
                        "the scheduler is busy; the job is stored and will be scheduled when it catches up",
                    )
                })?;
            }
            Ok((view(&record), created))
        }
        other => Err(Error::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// A page of the jobs the caller may see.
pub async fn list(ctl: &Control, caller: &Caller, query: &ListQuery) -> Result<JobPage, Error> {
    let scope = require(caller, Action::ReadJobs)?;
    let newest_first = match query.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(
                Error::bad_request("invalid_query", format!("order {other:?}: expected asc or desc")).at("order")
            );
        }
    };
    let mut filter = JobFilter { pool: query.pool.clone(), newest_first, ..JobFilter::default() };
    if let Some(states) = &query.state {
        filter.states = states
            .split(',')
            .take(JobState::ALL.len())
            .map(|s| s.trim().parse::<JobState>())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::bad_request("invalid_query", e).at("state"))?;
    }
    match scope {
        Scope::All => {
            if let Some(name) = &query.tenant {
                filter.tenant_id = Some(
                    ctl.store
                        .tenant_by_name(name)
                        .await?
                        .ok_or_else(|| Error::not_found(format!("tenant {name:?}")))?
                        .id,
                );
            }
        }
        Scope::Own => {
            filter.tenant_id = caller.tenant();
            if let Some(pool) = caller.pool() {
                filter.pool = Some(pool.to_owned());
            }
            if filter.tenant_id.is_none() && filter.pool.is_none() {
                return Err(Error::forbidden("this token names no tenant or pool"));
            }
        }
        Scope::None => return Err(Error::forbidden("this token cannot read jobs")),
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(Error::bad_request("invalid_query", format!("limit must be 1 to {PAGE_MAX}")).at("limit"));
    }
    let jobs = ctl.store.jobs(&filter, query.after.unwrap_or(0), limit).await?;
    let full = jobs.len() == limit as usize;
    let mut views: Vec<JobView> = jobs.iter().map(view).collect();
    let fit = fitting(views.iter().map(|v| serde_json::to_vec(v).map_or(0, |b| b.len())), PAGE_BYTES_MAX);
    let cut = fit < views.len();
    views.truncate(fit);
    let next_after = if full || cut { views.last().map(|j| j.id) } else { None };
    Ok(JobPage { jobs: views, next_after })
}

/// Whose a job is, for the access policy.
pub fn owner(job: &JobRecord) -> Owner<'_> {
    Owner { tenant: Some(job.tenant_id), pool: job.pool.as_deref(), program: None }
}

/// A job the caller may do `action` on; anyone else's is "not found".
pub async fn visible_job(ctl: &Control, caller: &Caller, id: i64, action: Action) -> Result<JobRecord, Error> {
    require(caller, action)?;
    let job = ctl.store.job(id).await?.ok_or_else(|| Error::not_found(format!("job {id}")))?;
    if may(caller, action, owner(&job)) { Ok(job) } else { Err(Error::not_found(format!("job {id}"))) }
}

/// A job with its history, what it holds, and what was metered for it.
pub async fn show(ctl: &Control, caller: &Caller, id: i64) -> Result<JobDetail, Error> {
    let job = visible_job(ctl, caller, id, Action::ReadJobs).await?;
    let history = ctl
        .store
        .job_events(id)
        .await?
        .into_iter()
        .map(|e| EventView { state: e.state, detail: e.detail, at: rfc3339(e.at_ms) })
        .collect();
    let usage_ms = ctl.store.job_usage_ms(id).await?;
    let reported_ms = ctl.store.job_reported_ms(id).await?;
    let allocation = match job.state {
        JobState::Placed | JobState::Running => crate::metering::allocation_of(ctl, &job).map(|a| a.view()),
        _ => None,
    };
    Ok(JobDetail {
        job: view(&job),
        history,
        usage_accelerator_s: usage_ms as f64 / 1000.0,
        reported_accelerator_s: reported_ms.map(|ms| ms as f64 / 1000.0),
        allocation,
    })
}

/// Cancels a job; a run it had going is metered until now.
pub async fn cancel(ctl: &Control, caller: &Caller, id: i64) -> Result<JobView, Error> {
    let job = visible_job(ctl, caller, id, Action::CancelJob).await?;
    let record = leave(
        ctl,
        &caller.actor(),
        Leave {
            job_id: job.id,
            from: &[JobState::Queued, JobState::Placed, JobState::Running, JobState::Preempted],
            to: JobState::Cancelled,
            pool: PoolChange::Keep,
            detail: format!("cancelled by {}", caller.actor()),
            end: RunEnd::At(ctl.now_ms()),
        },
    )
    .await?;
    let _ = ctl.scheduler.try_send(SchedulerMsg::Cancelled { job_id: record.id, at_ms: record.updated_ms });
    Ok(view(&record))
}

/// A job's output, a page after a sequence number or the last chunks.
pub async fn logs(ctl: &Control, caller: &Caller, id: i64, query: &LogQuery) -> Result<LogPage, Error> {
    visible_job(ctl, caller, id, Action::ReadJobs).await?;
    let after = query.after.unwrap_or(0);
    let chunks = match query.tail {
        Some(tail) if query.after.is_some() => {
            return Err(Error::bad_request(
                "invalid_query",
                format!("give either after or tail (tail={tail} reads the last chunks)"),
            ));
        }
        Some(tail) => {
            // The newest chunks that fit.
            let mut chunks = ctl.store.job_logs_tail(id, tail).await?;
            let fit = fitting(chunks.iter().rev().map(|c| c.1.len() + 32), PAGE_BYTES_MAX);
            chunks.drain(..chunks.len() - fit);
            chunks
        }
        None => {
            let mut chunks = ctl.store.job_logs(id, after, query.limit.unwrap_or(PAGE_MAX)).await?;
            chunks.truncate(fitting(chunks.iter().map(|c| c.1.len() + 32), PAGE_BYTES_MAX));
            chunks
        }
    };
    let next_after = chunks.last().map_or(after, |c| c.0);
    Ok(LogPage { chunks, next_after })
}

/// Where a job went and why.
pub async fn explain(ctl: &Control, caller: &Caller, id: i64) -> Result<Explanation, Error> {
    let job = visible_job(ctl, caller, id, Action::ReadJobs).await?;
    Ok(Explanation { id: job.id, state: job.state, pool: job.pool, explanation: job.explanation })
}

/// The scheduler's tenant index of a tenant id.
pub fn tenant_index(tenant: TenantId) -> Option<u32> {
    u32::try_from(tenant.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_ends_at_its_byte_budget_but_never_empty() {
        assert_eq!(fitting([10, 10, 10], 25), 2);
        assert_eq!(fitting([10, 10, 10], 30), 3);
        assert_eq!(fitting([100, 1], 25), 1, "one item always comes");
        assert_eq!(fitting([], 25), 0);
        assert_eq!(fitting([usize::MAX, usize::MAX], 25), 1);
    }

    #[test]
    fn a_body_error_names_its_field() {
        let m = "the body is not valid: cpu_milli: invalid type: string \"x\", expected u32 at line 1 column 9";
        assert_eq!(field_of(m).as_deref(), Some("cpu_milli"));
        assert_eq!(field_of("the body is not valid: latency.max_ms: bad").as_deref(), Some("latency"));
        assert_eq!(field_of("the body is not valid: expected value at line 1 column 1"), None);
    }

    #[test]
    fn submissions_are_jobs_or_templates() {
        let job = parse_submission(serde_json::json!({"name": "j", "cpu_milli": 1})).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(job, Submission::Job(_)));
        let template =
            parse_submission(serde_json::json!({"template": "fine-tune", "params": {"model": "m"}, "priority": 3}))
                .unwrap_or_else(|e| panic!("{e}"));
        let Submission::Template { template, params, fields } = template else { panic!("a template") };
        assert_eq!((template.as_str(), params.len(), fields.len()), ("fine-tune", 1, 1));
        let bad = parse_submission(serde_json::json!({"name": "j", "cpu_milli": "x"})).unwrap_err();
        assert_eq!((bad.code, bad.field.as_deref()), ("invalid_body", Some("cpu_milli")));
        assert_eq!(parse_submission(serde_json::json!({"params": {}})).unwrap_err().field.as_deref(), Some("params"));
    }
}
