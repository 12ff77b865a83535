//! The agent API: a pool's agent, with a provider token scoped to that pool, reports health, pulls
//! placed work, and reports state, logs and usage. The same functions serve in-process agents.

use axum::Json;
use axum::extract::{Path, State};
use suanwang_agent::protocol::{Heartbeat, JobRef, LogChunk, RunState, StateReport, UsageReport, Work, WorkItem};
use suanwang_model::federation::PoolId;
use suanwang_store::model::{JobFilter, JobState, Outcome, PAGE_MAX, PoolChange, Role, Write};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::Body;
use crate::scheduler::SchedulerMsg;
use crate::state::{AppState, now_ms};

/// Most jobs handed to an agent per pull.
pub const WORK_MAX: u32 = 256;

/// How far back cancelled jobs are listed for agents to stop.
const STOP_WINDOW_MS: i64 = 10 * 60 * 1000;

/// Longest log chunk.
pub const LOG_CHUNK_MAX: usize = 64 * 1024;

/// The pool an agent token speaks for.
fn agent_pool(state: &AppState, caller: &Caller) -> Result<(PoolId, String), ApiError> {
    caller.require(&[Role::Provider])?;
    let name = caller
        .principal
        .pool
        .clone()
        .ok_or_else(|| ApiError::forbidden("this provider token is not scoped to a pool"))?;
    let id = state
        .federation
        .pools()
        .find(|(_, p)| p.name == name)
        .map(|(id, _)| id)
        .ok_or_else(|| ApiError::not_found(format!("pool {name:?}")))?;
    Ok((id, name))
}

/// Records a heartbeat; jobs running here by the platform's books but not by the agent's were lost
/// (the agent restarted) and are queued again, unless the agent says it cannot tell. A pool
/// reported unhealthy takes no new work; its jobs stay (see the scheduler's `seen`).
pub async fn heartbeat(state: &AppState, caller: &Caller, beat: Heartbeat) -> Result<(), ApiError> {
    let (id, name) = agent_pool(state, caller)?;
    if beat.running.len() > suanwang_agent::run::RUNNING_MAX {
        return Err(ApiError::bad_request(
            "invalid_heartbeat",
            format!("an agent runs at most {} jobs", suanwang_agent::run::RUNNING_MAX),
        ));
    }
    if let Some(capacity) = beat.capacity
        && let Ok(mut reported) = state.reported.lock()
    {
        reported.insert(name.clone(), capacity);
    }
    // An agent that cannot tell what runs (its cluster is unreachable) loses nothing by saying so.
    let running = if beat.running_unknown {
        Vec::new()
    } else {
        state
            .store
            .jobs(
                &JobFilter { pool: Some(name.clone()), states: vec![JobState::Running], ..JobFilter::default() },
                0,
                PAGE_MAX,
            )
            .await?
    };
    for job in running.into_iter().filter(|j| !beat.running.contains(&j.id)) {
        let write = Write::Transition {
            job_id: job.id,
            from: vec![JobState::Running],
            to: JobState::Queued,
            pool: PoolChange::Clear,
            explanation: None,
            detail: format!("queued again: the agent of {name} no longer runs it"),
        };
        if state.committer.write(format!("agent:{name}"), write).await.is_ok() {
            let _ = state.scheduler.try_send(SchedulerMsg::Requeue { job_id: job.id });
        }
    }
    let drained = state.store.pool_statuses().await?.into_iter().find(|s| s.name == name).is_some_and(|s| s.drained);
    state
        .committer
        .write(
            format!("agent:{name}"),
            Write::SetPoolStatus { name, healthy: beat.healthy, drained, last_seen_ms: now_ms() },
        )
        .await?;
    state
        .scheduler
        .try_send(SchedulerMsg::Seen { pool: id, healthy: beat.healthy })
        .map_err(|_| ApiError::unavailable("the scheduler is busy"))?;
    Ok(())
}

/// What the agent should start and stop.
pub async fn work(state: &AppState, caller: &Caller) -> Result<Work, ApiError> {
    let (_, name) = agent_pool(state, caller)?;
    let placed = state
        .store
        .jobs(
            &JobFilter { pool: Some(name.clone()), states: vec![JobState::Placed], ..JobFilter::default() },
            0,
            WORK_MAX,
        )
        .await?;
    let running = state
        .store
        .jobs(
            &JobFilter { pool: Some(name.clone()), states: vec![JobState::Running], ..JobFilter::default() },
            0,
            PAGE_MAX,
        )
        .await?;
    let cancelled = state
        .store
        .jobs(
            &JobFilter {
                pool: Some(name),
                states: vec![JobState::Cancelled],
                updated_after_ms: Some(now_ms() - STOP_WINDOW_MS),
                ..JobFilter::default()
            },
            0,
            WORK_MAX,
        )
        .await?;
    Ok(Work {
        start: placed
            .into_iter()
            .map(|j| WorkItem {
                id: j.id,
                request: serde_json::from_str(&j.spec).unwrap_or_default(),
                created_ms: j.created_ms,
            })
            .collect(),
        stop: cancelled.into_iter().map(|j| j.id).collect(),
        running: running.into_iter().map(|j| JobRef { id: j.id, created_ms: j.created_ms }).collect(),
    })
}

async fn pool_job(state: &AppState, caller: &Caller, job_id: i64) -> Result<String, ApiError> {
    let (_, name) = agent_pool(state, caller)?;
    let job = state.store.job(job_id).await?.ok_or_else(|| ApiError::not_found(format!("job {job_id}")))?;
    if job.pool.as_deref() != Some(name.as_str()) {
        return Err(ApiError::not_found(format!("job {job_id}")));
    }
    Ok(name)
}

/// A job's state from its agent.
pub async fn report_state(state: &AppState, caller: &Caller, job_id: i64, report: StateReport) -> Result<(), ApiError> {
    let name = pool_job(state, caller, job_id).await?;
    if report.detail.len() > 1024 {
        return Err(ApiError::bad_request("invalid_report", "detail is at most 1024 bytes"));
    }
    let (from, to) = match report.state {
        RunState::Running => (vec![JobState::Placed], JobState::Running),
        RunState::Succeeded => (vec![JobState::Running, JobState::Placed], JobState::Succeeded),
        RunState::Failed => (vec![JobState::Running, JobState::Placed], JobState::Failed),
    };
    let write =
        Write::Transition { job_id, from, to, pool: PoolChange::Keep, explanation: None, detail: report.detail };
    match state.committer.write(format!("agent:{name}"), write).await {
        Ok(_) => {}
        // A repeat (the agent retried after a lost answer) is not an error.
        Err(crate::committer::Failure::Refused(suanwang_store::model::WriteError::WrongState {
            state: now, ..
        })) if now == to => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if to.is_terminal() {
        let _ = state.scheduler.try_send(SchedulerMsg::Ended { job_id });
    }
    Ok(())
}

/// A piece of a job's log from its agent.
pub async fn report_log(state: &AppState, caller: &Caller, job_id: i64, chunk: LogChunk) -> Result<(), ApiError> {
    let name = pool_job(state, caller, job_id).await?;
    if chunk.chunk.len() > LOG_CHUNK_MAX || chunk.seq < 1 {
        return Err(ApiError::bad_request(
            "invalid_log",
            format!("a chunk has seq ≥ 1 and at most {LOG_CHUNK_MAX} bytes"),
        ));
    }
    state
        .committer
        .write(format!("agent:{name}"), Write::AppendLog { job_id, seq: chunk.seq, chunk: chunk.chunk })
        .await?;
    Ok(())
}

/// Usage from an agent; a repeated event id with the same payload is recorded once.
pub async fn report_usage(state: &AppState, caller: &Caller, usage: UsageReport) -> Result<bool, ApiError> {
    let name = pool_job(state, caller, usage.job_id).await?;
    if usage.accelerator_ms < 0 || usage.event_id.is_empty() || usage.event_id.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_usage",
            "usage needs an event_id (1–128 characters) and accelerator_ms ≥ 0",
        ));
    }
    let digest = suanwang_store::audit::digest(&format!("{} {} {}", usage.job_id, name, usage.accelerator_ms));
    let write = Write::RecordUsage {
        source: format!("agent:{name}"),
        event_id: usage.event_id,
        job_id: usage.job_id,
        pool: name.clone(),
        accelerator_ms: usage.accelerator_ms,
        digest,
    };
    match state.committer.write(format!("agent:{name}"), write).await? {
        Outcome::Usage { new } => Ok(new),
        other => Err(ApiError::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// `POST /api/v1/agent/heartbeat`.
pub async fn http_heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    Body(beat): Body<Heartbeat>,
) -> Result<Json<serde_json::Value>, ApiError> {
    heartbeat(&state, &caller, beat).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

/// `GET /api/v1/agent/work`.
pub async fn http_work(State(state): State<AppState>, caller: Caller) -> Result<Json<Work>, ApiError> {
    Ok(Json(work(&state, &caller).await?))
}

/// `POST /api/v1/agent/jobs/{id}/state`.
pub async fn http_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(report): Body<StateReport>,
) -> Result<Json<serde_json::Value>, ApiError> {
    report_state(&state, &caller, id, report).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

/// `POST /api/v1/agent/jobs/{id}/logs`.
pub async fn http_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(chunk): Body<LogChunk>,
) -> Result<Json<serde_json::Value>, ApiError> {
    report_log(&state, &caller, id, chunk).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}

/// `POST /api/v1/agent/usage`.
pub async fn http_usage(
    State(state): State<AppState>,
    caller: Caller,
    Body(usage): Body<UsageReport>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let new = report_usage(&state, &caller, usage).await?;
    Ok(Json(serde_json::json!({"recorded": new})))
}
