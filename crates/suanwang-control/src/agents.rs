//! The agent protocol: a pool's agent, with a provider token scoped to that pool, reports health,
//! pulls placed work, and reports state, logs and its own measure of usage. The same operations
//! serve in-process agents. Runs are metered here from the platform's record
//! ([`crate::metering`]): the agent says when, within bounds.

use std::collections::HashMap;
use std::time::Duration;

use suanwang_api::agent::{
    Heartbeat, JobRef, LogBatch, LogChunk, NODES_MAX, NodeReport, RunState, StateReport, UsageReport, Work, WorkItem,
    WorkQuery,
};
use suanwang_model::federation::{NodeSpec, PoolId};
use suanwang_model::platform::{JobState, TenantId};
use suanwang_store::model::{JobFilter, JobRecord, Outcome, PAGE_MAX, PoolChange, Transition, Write, WriteError};
use tokio::sync::watch;

use crate::Control;
use crate::access::{Action, Owner, may, require};
use crate::auth::Caller;
use crate::committer::Failure;
use crate::error::{Error, Kind};
use crate::metering::{Leave, RunEnd, leave, start_of_run};
use crate::scheduler::SchedulerMsg;

/// Most jobs handed to an agent per pull.
pub const WORK_MAX: u32 = 256;

/// How far back cancelled jobs are listed for agents to stop.
const STOP_WINDOW_MS: i64 = 10 * 60 * 1000;

/// Longest log chunk.
pub const LOG_CHUNK_MAX: usize = 64 * 1024;

/// Longest wait of a work request, seconds.
pub const WORK_WAIT_MAX_S: u64 = 30;

/// Most log chunks in one batch.
pub const LOG_BATCH_MAX: usize = 1024;

/// Per pool, a version that changes whenever the pool's work changes (a job placed, cancelled or
/// preempted there), so an agent waiting on `/agent/work` is answered at once. In memory: a
/// restarted server starts again at 1, and an agent with another figure is answered at once.
pub struct WorkSignals(Vec<watch::Sender<u64>>);

impl WorkSignals {
    /// Versions for `pools` pools.
    pub fn new(pools: usize) -> Self {
        WorkSignals((0..pools).map(|_| watch::Sender::new(1)).collect())
    }

    /// The pool's work changed.
    pub fn bump(&self, pool: PoolId) {
        if let Some(sender) = self.0.get(pool.index()) {
            sender.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    fn subscribe(&self, pool: PoolId) -> Option<watch::Receiver<u64>> {
        self.0.get(pool.index()).map(watch::Sender::subscribe)
    }
}

/// Longest detail of a state report.
pub const DETAIL_MAX: usize = 1024;

/// The pool an agent token speaks for.
fn agent_pool(ctl: &Control, caller: &Caller) -> Result<(PoolId, String), Error> {
    require(caller, Action::Agent)?;
    let name = caller.pool().ok_or_else(|| Error::forbidden("this provider token is not scoped to a pool"))?.to_owned();
    let id = ctl
        .federation
        .pools()
        .find(|(_, p)| p.name == name)
        .map(|(id, _)| id)
        .ok_or_else(|| Error::not_found(format!("pool {name:?}")))?;
    Ok((id, name))
}

/// Records a heartbeat; jobs running here by the platform's books but not by the agent's were lost
/// (the agent restarted) and are queued again, their run metered until the agent's previous
/// report, unless the agent says it cannot tell. A pool reported unhealthy takes no new work; its
/// jobs stay (see the scheduler's `seen`).
pub async fn heartbeat(ctl: &Control, caller: &Caller, beat: Heartbeat) -> Result<(), Error> {
    let (id, name) = agent_pool(ctl, caller)?;
    if beat.running.len() > suanwang_agent::run::RUNNING_MAX {
        return Err(Error::bad_request(
            "invalid_heartbeat",
            format!("an agent runs at most {} jobs", suanwang_agent::run::RUNNING_MAX),
        ));
    }
    if let Some(problem) = &beat.problem {
        Error::check_text("problem", problem, suanwang_api::text::TextKind::Line, DETAIL_MAX)?;
    }
    if let Some(nodes) = &beat.nodes {
        check_nodes(nodes)?;
        let usable = usable_nodes(&ctl.federation.pool(id).nodes, nodes);
        let _ = ctl.scheduler.try_send(SchedulerMsg::Nodes { pool: id, usable });
    }
    if let Some(capacity) = beat.capacity
        && let Ok(mut reported) = ctl.reported.lock()
    {
        reported.insert(name.clone(), capacity);
    }
    if let Ok(mut problems) = ctl.problems.lock() {
        match &beat.problem {
            Some(problem) => problems.insert(name.clone(), problem.clone()),
            None => problems.remove(&name),
        };
    }
    let previous = ctl.store.pool_statuses().await?.into_iter().find(|s| s.name == name);
    let now = ctl.now_ms();
    // An agent that cannot tell what runs (its cluster is unreachable) loses nothing by saying so.
    let running = if beat.running_unknown {
        Vec::new()
    } else {
        ctl.store
            .jobs(
                &JobFilter { pool: Some(name.clone()), states: vec![JobState::Running], ..JobFilter::default() },
                0,
                PAGE_MAX,
            )
            .await?
    };
    // Jobs preempted or cancelled here that the agent no longer runs have stopped: the
    // scheduler frees their cards (only for stops decided before the agent's last fetch of its
    // work: until the agent has been told, not listing a job proves nothing).
    if !beat.running_unknown {
        let fetched_ms = ctl.work_fetched_ms.lock().ok().and_then(|f| f.get(&name).copied());
        let _ = ctl.scheduler.try_send(SchedulerMsg::AgentRuns { pool: id, running: beat.running.clone(), fetched_ms });
    }
    let last_seen = previous.as_ref().map_or(now, |s| s.last_seen_ms.min(now));
    for job in running.into_iter().filter(|j| !beat.running.contains(&j.id)) {
        let lost = Leave {
            job_id: job.id,
            from: &[JobState::Running],
            to: JobState::Queued,
            pool: PoolChange::Clear,
            detail: format!("queued again: the agent of {name} no longer runs it"),
            end: RunEnd::At(last_seen),
        };
        if leave(ctl, &format!("agent:{name}"), lost).await.is_ok() {
            let _ = ctl.scheduler.try_send(SchedulerMsg::Requeue { job_id: job.id });
        }
    }
    // The drain flag is the operator's: the heartbeat leaves it as stored.
    ctl.committer
        .write(
            format!("agent:{name}"),
            Write::SetPoolStatus { name, healthy: Some(beat.healthy), drained: None, last_seen_ms: Some(now) },
        )
        .await?;
    ctl.scheduler
        .try_send(SchedulerMsg::Seen { pool: id, healthy: beat.healthy })
        .map_err(|_| Error::unavailable("the scheduler is busy"))?;
    Ok(())
}

/// Bounds on a heartbeat's node list (the agent's word, never trusted unbounded).
fn check_nodes(nodes: &[NodeReport]) -> Result<(), Error> {
    if nodes.len() > NODES_MAX {
        return Err(
            Error::bad_request("invalid_heartbeat", format!("a heartbeat lists at most {NODES_MAX} nodes")).at("nodes")
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        Error::check_text(&format!("nodes[{i}].name"), &node.name, suanwang_api::text::TextKind::Line, 128)?;
        let bad = |what: &str| {
            Err(Error::bad_request("invalid_heartbeat", format!("node {}: {what}", node.name))
                .at(format!("nodes[{i}]")))
        };
        if node.cards > 64 {
            return bad("at most 64 cards");
        }
        if node.cpus > 65_536 {
            return bad("at most 65,536 CPUs");
        }
        if node.memory_mb > 1 << 40 {
            return bad("at most 2^40 MB of memory");
        }
    }
    Ok(())
}

/// How many nodes of the pool's model the reported ones stand for. Of the declared nodes: the
/// usable reported nodes with at least as many cards as the pool's smallest card node (any
/// usable node for a pool without cards), at most the declared count. Beyond them (the model
/// grows, [`suanwang_sched::scheduler::Scheduler::set_pool_usable_nodes`]): only when more usable
/// nodes than declared are each at least as large as every declared kind in cards, CPUs and
/// memory (Slurm's MB taken as MiB), so that a node added to the model never promises more than
/// the cluster has.
pub fn usable_nodes(declared: &[NodeSpec], reported: &[NodeReport]) -> usize {
    let cards = declared.iter().map(|n| u32::from(n.accelerators)).filter(|&c| c > 0).min().unwrap_or(0);
    let usable = reported.iter().filter(|n| n.usable && n.cards >= cards).count();
    let covers = |n: &NodeReport| {
        declared.iter().all(|d| {
            n.cards >= u32::from(d.accelerators)
                && u64::from(n.cpus) * 1000 >= u64::from(d.cpu_milli)
                && n.memory_mb >= u64::from(d.memory_mib)
        })
    };
    let full = reported.iter().filter(|n| n.usable && covers(n)).count();
    if full > declared.len() { full } else { usable.min(declared.len()) }
}

/// What the agent should start and stop. With `wait_s`, while the pool's work version is still
/// `after`, the answer waits (up to `wait_s`) until it changes. A waited answer does not count as
/// telling the agent (see [`Inner::work_fetched_ms`](crate::Inner)): the agent may have given up
/// on it.
pub async fn work(ctl: &Control, caller: &Caller, query: WorkQuery) -> Result<Work, Error> {
    let (id, name) = agent_pool(ctl, caller)?;
    let Some(wait_s) = query.wait_s.filter(|&w| w > 0) else { return work_now(ctl, id, name, true).await };
    if wait_s > WORK_WAIT_MAX_S {
        return Err(Error::bad_request("invalid_query", format!("wait_s is at most {WORK_WAIT_MAX_S}")).at("wait_s"));
    }
    let Some(mut version) = ctl.work_signals.subscribe(id) else { return work_now(ctl, id, name, false).await };
    if query.after.is_some_and(|after| after == *version.borrow_and_update()) {
        let _ = tokio::time::timeout(Duration::from_secs(wait_s), version.changed()).await;
    }
    work_now(ctl, id, name, false).await
}

async fn work_now(ctl: &Control, id: PoolId, name: String, told: bool) -> Result<Work, Error> {
    let version = ctl.work_signals.subscribe(id).map_or(0, |v| *v.borrow());
    // Taken before reading: a job preempted after this instant may be missing from this answer's
    // `stop` list, and is not counted as told.
    let fetched_ms = ctl.now_ms();
    let placed = ctl
        .store
        .jobs(
            &JobFilter { pool: Some(name.clone()), states: vec![JobState::Placed], ..JobFilter::default() },
            0,
            WORK_MAX,
        )
        .await?;
    let running = ctl
        .store
        .jobs(
            &JobFilter { pool: Some(name.clone()), states: vec![JobState::Running], ..JobFilter::default() },
            0,
            PAGE_MAX,
        )
        .await?;
    // Stop what was cancelled or preempted here (a preempted job keeps its pool until it is
    // placed again).
    let cancelled = ctl
        .store
        .jobs(
            &JobFilter {
                pool: Some(name.clone()),
                states: vec![JobState::Cancelled, JobState::Preempted],
                updated_after_ms: Some(ctl.now_ms() - STOP_WINDOW_MS),
                ..JobFilter::default()
            },
            0,
            WORK_MAX,
        )
        .await?;
    let mut start = Vec::with_capacity(placed.len());
    // Tenant names, read once per answer for the tenants with work here.
    let mut tenants: HashMap<TenantId, Option<String>> = HashMap::new();
    for job in placed {
        let Ok(request) = serde_json::from_str(&job.spec) else {
            tracing::error!(job_id = job.id, "a stored job body does not read; it is not handed out");
            continue;
        };
        let model = crate::metering::allocation_of(ctl, &job).and_then(|a| a.model);
        let tenant = match tenants.get(&job.tenant_id) {
            Some(name) => name.clone(),
            None => {
                let name = ctl.store.tenant(job.tenant_id).await?.map(|t| t.name);
                tenants.insert(job.tenant_id, name.clone());
                name
            }
        };
        start.push(WorkItem { id: job.id, request, created_ms: job.created_ms, model, tenant });
    }
    if told && let Ok(mut fetched) = ctl.work_fetched_ms.lock() {
        fetched.insert(name, fetched_ms);
    }
    Ok(Work {
        start,
        stop: cancelled.into_iter().map(|j| j.id).collect(),
        running: running.into_iter().map(|j| JobRef { id: j.id, created_ms: j.created_ms }).collect(),
        version,
    })
}

/// A job of the agent's pool, or "unknown job".
async fn pool_job(ctl: &Control, caller: &Caller, job_id: i64) -> Result<(String, JobRecord), Error> {
    let (_, name) = agent_pool(ctl, caller)?;
    let unknown = || Error::new(Kind::NotFound, "unknown_job", format!("job {job_id} is not placed in pool {name}"));
    let job = ctl.store.job(job_id).await?.ok_or_else(unknown)?;
    if !may(caller, Action::Agent, Owner::pool(job.pool.as_deref().unwrap_or_default())) {
        return Err(unknown());
    }
    Ok((name, job))
}

/// A job's state from its agent. A start is recorded at the agent's time within the record; an
/// end meters the run.
pub async fn report_state(ctl: &Control, caller: &Caller, job_id: i64, report: StateReport) -> Result<(), Error> {
    let (name, job) = pool_job(ctl, caller, job_id).await?;
    Error::check_text("detail", &report.detail, suanwang_api::text::TextKind::Lines, DETAIL_MAX)?;
    let actor = format!("agent:{name}");
    if report.state == RunState::Pending {
        // Why it waits in the cluster: a line in its history while it is placed here.
        let note = Write::NoteJob {
            job_id,
            states: vec![JobState::Placed],
            detail: format!("waiting in {name}: {}", report.detail),
        };
        return match ctl.committer.write(actor, note).await {
            Ok(_) | Err(Failure::Refused(WriteError::WrongState { .. })) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let to = match report.state {
        RunState::Pending => return Ok(()), // noted above
        RunState::Running => JobState::Running,
        RunState::Succeeded => JobState::Succeeded,
        RunState::Failed => JobState::Failed,
    };
    let outcome = match report.state {
        RunState::Running => {
            let started = start_of_run(&job, report.at_ms, ctl.now_ms());
            let transition = Transition {
                started_ms: Some(started),
                ..Transition::new(job_id, &[JobState::Placed], JobState::Running, report.detail)
            };
            ctl.committer.write(actor, Write::Transition(transition)).await.map(|_| ())
        }
        RunState::Succeeded | RunState::Failed | RunState::Pending => {
            let end = Leave {
                job_id,
                from: &[JobState::Running, JobState::Placed],
                to,
                pool: PoolChange::Keep,
                detail: report.detail,
                end: RunEnd::Reported { at_ms: report.at_ms, started_ms: report.started_ms },
            };
            leave(ctl, &actor, end).await.map(|_| ())
        }
    };
    match outcome {
        Ok(()) => {}
        // A repeat (the agent retried after a lost answer) is not an error.
        Err(Failure::Refused(WriteError::WrongState { state: now, .. })) if now == to => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if to.is_terminal() {
        let _ = ctl.scheduler.try_send(SchedulerMsg::Ended { job_id });
    }
    Ok(())
}

/// A piece of a job's log from its agent.
pub async fn report_log(ctl: &Control, caller: &Caller, job_id: i64, chunk: LogChunk) -> Result<(), Error> {
    report_logs(ctl, caller, job_id, LogBatch { chunks: vec![chunk] }).await
}

/// Consecutive pieces of a job's log from its agent, written together (each is stored once by its
/// `seq`, as one piece would be). All are checked before any is written.
pub async fn report_logs(ctl: &Control, caller: &Caller, job_id: i64, batch: LogBatch) -> Result<(), Error> {
    let (name, _) = pool_job(ctl, caller, job_id).await?;
    if batch.chunks.len() > LOG_BATCH_MAX {
        return Err(Error::bad_request("invalid_log", format!("a batch has at most {LOG_BATCH_MAX} chunks")));
    }
    if let Some(i) = batch.chunks.iter().position(|c| c.chunk.len() > LOG_CHUNK_MAX || c.seq < 1) {
        return Err(Error::bad_request(
            "invalid_log",
            format!("a chunk has seq ≥ 1 and at most {LOG_CHUNK_MAX} bytes"),
        )
        .at(format!("chunks[{i}]")));
    }
    let actor = format!("agent:{name}");
    // Queued at once, so the committer writes them in one transaction.
    let mut writes = tokio::task::JoinSet::new();
    for chunk in batch.chunks {
        // A job prints what it likes: control characters (NUL cannot be stored in PostgreSQL,
        // escape sequences would reach terminals) are shown as U+FFFD rather than refused.
        let text = match suanwang_api::text::forbidden_char(&chunk.chunk, suanwang_api::text::TextKind::Lines) {
            None => chunk.chunk,
            Some(_) => chunk
                .chunk
                .chars()
                .map(|c| if c.is_control() && !matches!(c, '\t' | '\n' | '\r') { '\u{fffd}' } else { c })
                .collect(),
        };
        let (committer, actor) = (ctl.committer.clone(), actor.clone());
        writes.spawn(
            async move { committer.write(actor, Write::AppendLog { job_id, seq: chunk.seq, chunk: text }).await },
        );
    }
    let mut outcome = Ok(());
    while let Some(result) = writes.join_next().await {
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => outcome = Err(e.into()),
            Err(_) => outcome = Err(Error::unavailable("a log write stopped; try again")),
        }
    }
    outcome
}

/// The agent's own measure of a run: evidence, kept once per event id, never billed. A figure
/// no run of the job could reach (more than its allocation for as long as it has existed) is
/// refused.
pub async fn report_usage(ctl: &Control, caller: &Caller, usage: UsageReport) -> Result<bool, Error> {
    let (name, job) = pool_job(ctl, caller, usage.job_id).await?;
    if usage.event_id.is_empty() {
        return Err(Error::bad_request("invalid_usage", "usage needs an event_id of 1–128 characters").at("event_id"));
    }
    Error::check_text("event_id", &usage.event_id, suanwang_api::text::TextKind::Line, 128)?;
    if usage.accelerator_ms < 0 {
        return Err(Error::bad_request("invalid_usage", "accelerator_ms must be 0 or more").at("accelerator_ms"));
    }
    let card_milli = crate::metering::allocation_of(ctl, &job).map_or(16_000 * 4_096, |a| a.card_milli.max(1000));
    let lived_ms = u128::try_from((ctl.now_ms() - job.created_ms).max(0)).unwrap_or(0);
    let most = u128::from(card_milli) * lived_ms / 1000 + 60_000 * u128::from(card_milli) / 1000;
    if u128::try_from(usage.accelerator_ms).unwrap_or(u128::MAX) > most {
        return Err(Error::unprocessable(
            "usage_out_of_bounds",
            format!(
                "job {} could have used at most {} card-ms since it was accepted; the report says {}",
                job.id, most, usage.accelerator_ms
            ),
        )
        .at("accelerator_ms"));
    }
    let digest = suanwang_store::audit::digest(&format!("{} {} {}", usage.job_id, name, usage.accelerator_ms));
    let write = Write::ReportUsage {
        source: format!("agent:{name}"),
        event_id: usage.event_id,
        job_id: usage.job_id,
        pool: name.clone(),
        accelerator_ms: usage.accelerator_ms,
        digest,
    };
    match ctl.committer.write(format!("agent:{name}"), write).await? {
        Outcome::Usage { new } => Ok(new),
        other => Err(Error::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}
