//! Metering from the platform's own record. When the scheduler places a job it writes down what
//! the job holds there (an [`AllocationRecord`]: the model its cards are, cards, CPU, memory, the
//! tariff's rate, the contract it runs under, its time limit). An agent reports when a run started
//! and ended; the platform takes those times only within its own record (never before the job was
//! placed, never after the report arrived) and bills the allocation for that time, at most the
//! time limit. Every transition out of a run (an end, a cancel, a preemption, a failover, a lost
//! job) goes through [`leave`], which records the run's usage with the transition itself, once.
//!
//! So no number an agent sends decides what a tenant pays: an agent can only say *when*, within
//! bounds; what and at what price is the platform's.

use serde::{Deserialize, Serialize};
use suanwang_api::jobs::{AllocationView, JobRequest};
use suanwang_model::federation::PoolId;
use suanwang_model::platform::JobState;
use suanwang_model::tariff::{self, Allocation};
use suanwang_store::audit::digest;
use suanwang_store::model::{JobRecord, MeteredUsage, Outcome, PoolChange, Transition, Write, WriteError};

use crate::Control;
use crate::committer::Failure;

/// What a placed job holds in its pool, stored with the job (JSON) while it is placed or runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationRecord {
    /// The model of its cards, by catalog name (absent for CPU-only work).
    pub model: Option<String>,
    /// Thousandths of a card, all tasks together.
    pub card_milli: u64,
    /// Thousandths of a core, all tasks together.
    pub cpu_milli: u64,
    /// Memory, all tasks together.
    pub memory_mib: u64,
    /// What it costs an hour (the tariff at the list or contract price), milli-fen.
    pub rate_millifen_per_hour: u64,
    /// `contract:ID` when it runs under a market contract, else `job:ID`.
    pub contract: String,
    /// The most one run is billed for, seconds.
    pub time_limit_s: u64,
}

impl AllocationRecord {
    /// What `job` holds in `pool` on `allocation`'s model, at the contract's card price if any.
    pub fn new(
        ctl: &Control,
        job_id: i64,
        request: &JobRequest,
        pool: PoolId,
        allocation: &Allocation,
        contract: Option<(String, i64)>,
    ) -> Self {
        let catalog = ctl.federation.catalog();
        let prices = &ctl.federation.pool(pool).prices;
        let card_price = contract.as_ref().map(|(_, price)| *price);
        AllocationRecord {
            model: allocation.model.map(|m| catalog.get(m).model.clone()),
            card_milli: allocation.card_milli,
            cpu_milli: allocation.cpu_milli,
            memory_mib: allocation.memory_mib,
            rate_millifen_per_hour: tariff::rate_millifen_per_hour(prices, allocation, card_price),
            contract: contract.map_or_else(|| format!("job:{job_id}"), |(id, _)| id),
            time_limit_s: request.time_limit_s.unwrap_or(ctl.config.time_limit_default.as_secs()),
        }
    }

    /// As the API shows it.
    pub fn view(&self) -> AllocationView {
        AllocationView {
            model: self.model.clone(),
            card_milli: self.card_milli,
            cpu_milli: self.cpu_milli,
            memory_mib: self.memory_mib,
            rate_millifen_per_hour: self.rate_millifen_per_hour,
            contract: self.contract.clone(),
        }
    }
}

/// A job's allocation as stored; for a job placed before the platform recorded allocations, the
/// one it would have had (its first accepted model in its pool, at the list price).
pub fn allocation_of(ctl: &Control, job: &JobRecord) -> Option<AllocationRecord> {
    if let Some(text) = &job.allocation {
        return serde_json::from_str(text).ok();
    }
    let pool_name = job.pool.as_deref()?;
    let (pool, _) = ctl.federation.pools().find(|(_, p)| p.name == pool_name)?;
    let request: JobRequest = serde_json::from_str(&job.spec).ok()?;
    let scheduled = crate::fit::scheduler_job(&ctl.federation, &ctl.adaptation, 0, &request, 0).ok()?;
    let model = ctl
        .federation
        .pool(pool)
        .nodes
        .iter()
        .filter_map(|n| n.accelerator)
        .find(|m| scheduled.spec.task.accepted_models().contains(*m));
    let allocation = Allocation::of(&scheduled.spec, model);
    Some(AllocationRecord::new(ctl, job.id, &request, pool, &allocation, None))
}

/// When the run starts, by the agent's word `reported_ms` bounded by the record: not before the
/// job was placed (or accepted), not after `now_ms`.
pub fn start_of_run(job: &JobRecord, reported_ms: Option<i64>, now_ms: i64) -> i64 {
    let earliest = job.placed_ms.unwrap_or(job.created_ms).min(now_ms);
    reported_ms.unwrap_or(now_ms).clamp(earliest, now_ms)
}

/// How a run ended, for [`leave`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The agent says when (and, for a run the platform never saw start, when it started).
    Reported {
        /// When it ended, by the agent.
        at_ms: Option<i64>,
        /// When it started, by the agent.
        started_ms: Option<i64>,
    },
    /// At this time by the platform's clock (a cancel, a preemption: now; a pool gone silent:
    /// its last report).
    At(i64),
}

/// The usage of `job`'s current run ending `end`, by the platform's record; `None` when no run
/// was going (never started) or it held nothing billable for no time.
pub fn metered_run(job: &JobRecord, allocation: &AllocationRecord, end: RunEnd, now_ms: i64) -> Option<MeteredUsage> {
    let (end_ms, started_reported) = match end {
        RunEnd::Reported { at_ms, started_ms } => (at_ms.unwrap_or(now_ms), started_ms),
        RunEnd::At(at_ms) => (at_ms, None),
    };
    let started = match (job.state, job.started_ms) {
        // The agent's end report may say when the run started (a cluster's own record, more
        // exact than when the agent noticed the start); within the record, it decides.
        (JobState::Running, _) if started_reported.is_some() => start_of_run(job, started_reported, now_ms),
        (JobState::Running, Some(started)) => started,
        // Running since before the platform kept run starts: its start is unknown; bill from
        // the placement (the earliest it can have started).
        (JobState::Running, None) => job.placed_ms.unwrap_or(job.updated_ms),
        // Ended before the platform heard it start: only when the agent says when it started.
        (JobState::Placed, _) => start_of_run(job, Some(started_reported?), now_ms),
        _ => return None,
    };
    let end_ms = end_ms.clamp(started, now_ms.max(started));
    let limit_ms = i64::try_from(allocation.time_limit_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let run_ms = (end_ms - started).clamp(0, limit_ms);
    let card_ms = i64::try_from(u128::from(allocation.card_milli) * run_ms as u128 / 1000).unwrap_or(i64::MAX);
    let rate = i64::try_from(allocation.rate_millifen_per_hour).unwrap_or(i64::MAX);
    let run = job.runs.max(1);
    let pool = job.pool.clone()?;
    let event_id = format!("job-{}-run-{run}", job.id);
    let digest = digest(&format!("{event_id} {pool} {run_ms} {card_ms} {rate} {}", allocation.contract));
    Some(MeteredUsage {
        event_id,
        pool,
        card_ms,
        run_ms,
        rate_millifen_per_hour: rate,
        contract: allocation.contract.clone(),
        digest,
    })
}

/// A job leaves its state (one of `from`) for `to`: the run it had going, if any, is metered with
/// the transition. Reads the job, meters, writes; if the job moved in between (another server,
/// an agent's report), reads again (a few times) while it is still in one of `from`.
pub struct Leave<'a> {
    /// The job.
    pub job_id: i64,
    /// States it may leave.
    pub from: &'a [JobState],
    /// Where it goes.
    pub to: JobState,
    /// What becomes of its pool.
    pub pool: PoolChange,
    /// For its history.
    pub detail: String,
    /// How the run ended.
    pub end: RunEnd,
}

/// See [`Leave`]; refusals (the job is not in one of `from`) come back as the store's.
pub async fn leave(ctl: &Control, actor: &str, leave: Leave<'_>) -> Result<JobRecord, Failure> {
    let mut attempts = 0;
    loop {
        let job = match ctl.store.job(leave.job_id).await {
            Ok(Some(job)) => job,
            Ok(None) => return Err(Failure::Refused(WriteError::NotFound(format!("job {}", leave.job_id)))),
            Err(e) => return Err(Failure::Store(e.to_string())),
        };
        if !leave.from.contains(&job.state) {
            return Err(Failure::Refused(WriteError::WrongState { job_id: job.id, state: job.state, to: leave.to }));
        }
        let usage =
            allocation_of(ctl, &job).and_then(|allocation| metered_run(&job, &allocation, leave.end, ctl.now_ms()));
        let transition = Transition {
            pool: leave.pool.clone(),
            usage,
            ..Transition::new(job.id, &[job.state], leave.to, leave.detail.clone())
        };
        match ctl.committer.write(actor.to_owned(), Write::Transition(transition)).await {
            Ok(Outcome::Transitioned(record)) => return Ok(record),
            Ok(other) => return Err(Failure::Store(format!("unexpected write outcome {other:?}"))),
            Err(Failure::Refused(WriteError::WrongState { .. })) if attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use suanwang_model::platform::TenantId;

    use super::*;

    fn job(state: JobState, placed_ms: Option<i64>, started_ms: Option<i64>) -> JobRecord {
        JobRecord {
            id: 7,
            tenant_id: TenantId(2),
            name: "j".to_owned(),
            spec: "{}".to_owned(),
            state,
            pool: Some("p".to_owned()),
            explanation: None,
            idempotency_key: None,
            created_ms: 1_000,
            updated_ms: 2_000,
            allocation: None,
            placed_ms,
            started_ms,
            runs: 1,
        }
    }

    fn allocation() -> AllocationRecord {
        AllocationRecord {
            model: Some("A800-SXM4-80GB".to_owned()),
            card_milli: 500,
            cpu_milli: 0,
            memory_mib: 0,
            rate_millifen_per_hour: 600_000,
            contract: "job:7".to_owned(),
            time_limit_s: 3_600,
        }
    }

    fn run_ms(job: &JobRecord, end: RunEnd, now_ms: i64) -> Option<i64> {
        metered_run(job, &allocation(), end, now_ms).map(|u| u.run_ms)
    }

    #[test]
    fn an_agent_says_when_only_within_the_record() {
        let running = job(JobState::Running, Some(10_000), Some(20_000));
        let reported = |at| RunEnd::Reported { at_ms: at, started_ms: None };
        // As reported.
        assert_eq!(run_ms(&running, reported(Some(80_000)), 90_000), Some(60_000));
        // Not after the report arrived, not before the start.
        assert_eq!(run_ms(&running, reported(Some(i64::MAX)), 90_000), Some(70_000));
        assert_eq!(run_ms(&running, reported(Some(i64::MIN)), 90_000), Some(0));
        assert_eq!(run_ms(&running, reported(None), 90_000), Some(70_000));
        // At most the time limit.
        assert_eq!(run_ms(&running, reported(None), 20_000 + 86_400_000), Some(3_600_000));
        // A half card: card-ms are half the run's ms.
        let usage = metered_run(&running, &allocation(), reported(Some(80_000)), 90_000).unwrap();
        assert_eq!(
            (usage.card_ms, usage.event_id.as_str(), usage.rate_millifen_per_hour),
            (30_000, "job-7-run-1", 600_000)
        );
        // Starts: not before the placement, not after now.
        assert_eq!(start_of_run(&running, Some(0), 50_000), 10_000);
        assert_eq!(start_of_run(&running, Some(i64::MAX), 50_000), 50_000);
        assert_eq!(start_of_run(&running, Some(30_000), 50_000), 30_000);
    }

    #[test]
    fn no_run_no_usage() {
        let placed = job(JobState::Placed, Some(10_000), None);
        assert_eq!(run_ms(&placed, RunEnd::At(50_000), 50_000), None);
        assert_eq!(run_ms(&placed, RunEnd::Reported { at_ms: Some(40_000), started_ms: None }, 50_000), None);
        // An end that says when the run started: that start, within the record.
        let reported = RunEnd::Reported { at_ms: Some(60_000), started_ms: Some(25_000) };
        assert_eq!(run_ms(&job(JobState::Running, Some(10_000), Some(20_000)), reported, 90_000), Some(35_000));
        let before_placement = RunEnd::Reported { at_ms: Some(60_000), started_ms: Some(1) };
        assert_eq!(run_ms(&job(JobState::Running, Some(10_000), Some(20_000)), before_placement, 90_000), Some(50_000));
        // An end reported for a run the platform never saw start, with its start.
        assert_eq!(
            run_ms(&placed, RunEnd::Reported { at_ms: Some(40_000), started_ms: Some(15_000) }, 50_000),
            Some(25_000)
        );
        assert_eq!(run_ms(&job(JobState::Queued, None, None), RunEnd::At(50_000), 50_000), None);
        // A run since before starts were kept bills from the placement.
        assert_eq!(run_ms(&job(JobState::Running, Some(10_000), None), RunEnd::At(50_000), 50_000), Some(40_000));
    }
}
