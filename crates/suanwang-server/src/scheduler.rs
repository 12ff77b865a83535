//! The scheduler task: the same `Scheduler` the simulator drives, driven by the wall clock.
//!
//! One server schedules at a time (the leader: on PostgreSQL the holder of an advisory lock; on
//! SQLite the only server). The others serve the API and wait for the role. On taking it, the task
//! rebuilds its state from the store: queued and preempted jobs queue again; placed and running
//! jobs are put back in their pools (their agents still have them), so nothing runs twice.
//!
//! Then it waits for messages from this server's handlers (submissions, ends, heartbeats, drains)
//! or the next tick, makes a pass, and writes its decisions durably. Every second it also tails the
//! store's change feed (the audit log) and the pools' last reports, which is how it learns what
//! other servers accepted, and how it recovers from any message it missed. A pool whose agent has
//! not reported within the heartbeat timeout is unhealthy: its placed and running jobs go back to
//! the queue (failover).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use suanwang_model::federation::PoolId;
use suanwang_placement::profile::WorkloadProfile;
use suanwang_sched::job::{Job, JobId};
use suanwang_sched::scheduler::{Decision, Scheduler, SchedulerConfig};
use suanwang_store::model::{JobFilter, JobRecord, JobState, PoolChange, Write};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::jobs::{SubmitJob, scheduler_job};
use crate::state::{AppState, now_ms};

/// Messages the scheduler task may wait in its mailbox at once.
pub const MAILBOX_MAX: usize = 65_536;

/// How often a server that does not lead tries to take the role.
const LEADER_RETRY: Duration = Duration::from_secs(2);

/// How often the leader checks that it still holds the role, and tails the change feed.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What the scheduler task hears about.
#[derive(Debug)]
pub enum SchedulerMsg {
    /// A job was accepted (durably).
    Submitted {
        /// Store id.
        job_id: i64,
        /// What the scheduler needs.
        job: Box<Job>,
    },
    /// A job ended (finished or cancelled, durably).
    Ended {
        /// Store id.
        job_id: i64,
    },
    /// A running job was lost by its agent and is queued again (durably).
    Requeue {
        /// Store id.
        job_id: i64,
    },
    /// A pool's agent reported.
    Seen {
        /// The pool.
        pool: PoolId,
        /// Whether it says it is healthy.
        healthy: bool,
    },
    /// A pool was drained or undrained.
    Drain {
        /// The pool.
        pool: PoolId,
        /// Drained.
        drained: bool,
    },
}

/// Jobs in states the scheduler must know about after a restart.
const OPEN: [JobState; 4] = [JobState::Queued, JobState::Placed, JobState::Running, JobState::Preempted];

struct Task {
    state: AppState,
    scheduler: Scheduler,
    /// Store id → scheduler id, for the jobs the scheduler holds.
    ids: HashMap<i64, JobId>,
    store_ids: Vec<i64>,
    /// When each job was last placed by this task (ms): a change-feed requeue older than that is
    /// stale.
    placed_ms: HashMap<i64, i64>,
    /// Each pool's last report (ms), from this server's handlers or from the store.
    last_seen: Vec<Option<i64>>,
    started: Instant,
    started_ms: i64,
    /// The change feed has been read up to here.
    feed: i64,
}

fn now_s() -> u64 {
    (now_ms() / 1000) as u64
}

/// Runs the scheduler task until the mailbox closes: waits for the leader's role, then schedules
/// until the role is lost, and so on.
pub async fn run(state: AppState, mut mailbox: mpsc::Receiver<SchedulerMsg>) {
    loop {
        let mut leadership = loop {
            match state.store.try_lead().await {
                Ok(Some(leadership)) => break leadership,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot ask for the leader's role"),
            }
            // Not the leader: the store holds everything this server accepts, and the leader reads
            // it from there; messages meanwhile are dropped.
            let wait = tokio::time::sleep(LEADER_RETRY);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    m = mailbox.recv() => if m.is_none() { return },
                    () = &mut wait => break,
                }
            }
        };
        state.leader.store(true, Ordering::Relaxed);
        let mut task = match Task::start(state.clone()).await {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(error = ?e, "cannot rebuild from the store");
                state.leader.store(false, Ordering::Relaxed);
                tokio::time::sleep(LEADER_RETRY).await;
                continue;
            }
        };
        let tick = state.config.tick;
        let mut last_sync = Instant::now();
        task.publish();
        loop {
            let message = tokio::select! {
                m = mailbox.recv() => match m { Some(m) => Some(m), None => return },
                () = tokio::time::sleep(tick) => None,
            };
            if let Some(m) = message {
                task.handle(m);
                while let Ok(m) = mailbox.try_recv() {
                    task.handle(m);
                }
            }
            if last_sync.elapsed() >= SYNC_EVERY {
                last_sync = Instant::now();
                if !leadership.held().await {
                    tracing::warn!("lost the leader's role (the database connection that held it is gone)");
                    break;
                }
                task.sync().await;
                task.hold_contracts().await;
                task.publish();
            }
            task.check_heartbeats().await;
            let waiting =
                task.started.elapsed() < state.config.startup_grace && task.last_seen.iter().any(Option::is_none);
            if !waiting {
                task.pass().await;
            }
        }
        state.leader.store(false, Ordering::Relaxed);
        state.metrics.publish(None);
    }
}

impl Task {
    /// A fresh scheduler with every pool unhealthy until its agent reports, rebuilt from the store.
    async fn start(state: AppState) -> Result<Task, crate::error::ApiError> {
        let config = SchedulerConfig { policy: state.config.policy, ..SchedulerConfig::default() };
        let scheduler = Scheduler::new(&state.federation, 1, config, &WorkloadProfile::default());
        let pools = state.federation.pool_count();
        // Changes committed from here on are read again from the feed; applying one twice is
        // harmless.
        let feed = state.store.audit_head().await?;
        let mut task = Task {
            state,
            scheduler,
            ids: HashMap::new(),
            store_ids: Vec::new(),
            placed_ms: HashMap::new(),
            last_seen: vec![None; pools],
            started: Instant::now(),
            started_ms: now_ms(),
            feed,
        };
        for p in 0..pools {
            task.scheduler.set_pool_health(PoolId::from_index(p), false, now_s());
        }
        let rebuilding = Instant::now();
        task.rebuild().await?;
        tracing::info!(
            open_jobs = task.ids.len(),
            rebuild_ms = rebuilding.elapsed().as_millis() as u64,
            "this server leads; rebuilt its state from the store"
        );
        Ok(task)
    }

    /// Gives the scheduler the capacity market contracts hold (each a tenant's cards in a pool for
    /// a window), so other tenants' jobs leave it free.
    async fn hold_contracts(&mut self) {
        let now = now_s();
        let contracts = match self
            .state
            .ledger
            .read(&self.state.store, |books| {
                books.contracts().iter().filter(|c| c.end_s > now).cloned().collect::<Vec<_>>()
            })
            .await
        {
            Ok(c) => c,
            Err(e) => return tracing::warn!(error = %e.message, "cannot read the contracts"),
        };
        let mut holds: Vec<Vec<suanwang_sched::scheduler::CapacityHold>> =
            vec![Vec::new(); self.state.federation.pool_count()];
        for c in contracts {
            let (Some((id, _)), Ok(tenant)) =
                (self.state.federation.pools().find(|(_, p)| p.name == c.pool), u32::try_from(c.tenant))
            else {
                continue;
            };
            self.scheduler.ensure_tenants(tenant as usize + 1);
            holds[id.index()].push(suanwang_sched::scheduler::CapacityHold {
                tenant,
                gpu_milli: u64::from(c.cards) * 1000,
                start_s: c.start_s,
                end_s: c.end_s,
            });
        }
        for (i, h) in holds.into_iter().enumerate() {
            self.scheduler.set_holds(PoolId::from_index(i), h);
        }
    }

    /// Publishes the queue and each pool's use for `/metrics`.
    fn publish(&self) {
        let pools = (0..self.state.federation.pool_count())
            .map(|p| {
                let cluster = &self.scheduler.pool(PoolId::from_index(p)).cluster;
                let mut used = crate::metrics::PoolUse {
                    gpu_milli_capacity: cluster.gpu_milli_capacity(),
                    gpu_milli_allocated: cluster.gpu_milli_allocated(),
                    ..Default::default()
                };
                for node in cluster.nodes() {
                    used.cpu_milli_capacity += u64::from(node.cpu_milli_capacity());
                    used.cpu_milli_allocated += u64::from(node.cpu_milli_capacity() - node.cpu_milli_free());
                    used.memory_mib_capacity += u64::from(node.memory_mib_capacity());
                    used.memory_mib_allocated += u64::from(node.memory_mib_capacity() - node.memory_mib_free());
                }
                used
            })
            .collect();
        let view = crate::metrics::SchedulerView { queued: self.scheduler.queued() as u64, pools };
        self.state.metrics.publish(Some(view));
    }

    fn pool_id(&self, name: &str) -> Option<PoolId> {
        self.state.federation.pools().find(|(_, p)| p.name == name).map(|(id, _)| id)
    }

    fn is_running(&self, id: JobId) -> bool {
        matches!(self.scheduler.state(id), suanwang_sched::job::JobState::Running { .. })
    }

    /// Gives a job the scheduler has running back to the queue, as it was first accepted.
    fn requeue(&mut self, job_id: i64) {
        let Some(&id) = self.ids.get(&job_id) else { return };
        if !self.is_running(id) {
            return;
        }
        let job = self.scheduler.job(id).clone();
        self.scheduler.cancel(id, now_s());
        match self.scheduler.submit(job, now_s()) {
            Ok(new) => self.track(job_id, new),
            Err(e) => {
                self.ids.remove(&job_id);
                tracing::warn!(job_id, error = %e, "a job cannot be queued again");
            }
        }
    }

    /// Learns from the store what this server's messages did not say: jobs other servers accepted,
    /// changed or ended, and reports agents made to other servers.
    async fn sync(&mut self) {
        if let Ok(statuses) = self.state.store.pool_statuses().await {
            for status in statuses {
                let Some(pool) = self.pool_id(&status.name) else { continue };
                let fresh = now_ms() - status.last_seen_ms < self.state.config.heartbeat_timeout.as_millis() as i64;
                if fresh && status.last_seen_ms > self.last_seen[pool.index()].unwrap_or(0) {
                    self.seen(pool, status.healthy, status.last_seen_ms);
                }
                self.scheduler.set_pool_accepting(pool, !status.drained);
            }
        }
        loop {
            let changes = match self.state.store.changes(self.feed, suanwang_store::store::CHANGES_MAX).await {
                Ok(changes) => changes,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the change feed");
                    return;
                }
            };
            let Some(last) = changes.last() else { return };
            self.feed = last.seq;
            let full = changes.len() == suanwang_store::store::CHANGES_MAX as usize;
            for change in changes {
                let Some(job_id) = change.subject.strip_prefix("job:").and_then(|id| id.parse::<i64>().ok()) else {
                    continue;
                };
                let tracked = self.ids.get(&job_id).copied();
                match (change.action.as_str(), tracked) {
                    ("job.succeeded" | "job.failed" | "job.cancelled", Some(id)) => {
                        self.ids.remove(&job_id);
                        self.scheduler.cancel(id, now_s());
                    }
                    ("job.queued" | "job.preempted", Some(_))
                        if change.at_ms > self.placed_ms.get(&job_id).copied().unwrap_or(0) =>
                    {
                        self.requeue(job_id);
                    }
                    ("job.submit" | "job.queued" | "job.preempted" | "job.placed" | "job.running", None) => {
                        // Accepted or placed through another server (or a message was lost).
                        if let Ok(Some(record)) = self.state.store.job(job_id).await
                            && !record.state.is_terminal()
                        {
                            self.restore(record).await;
                        }
                    }
                    _ => {}
                }
            }
            if !full {
                return;
            }
        }
    }

    /// A pool's agent reported at `at_ms`. An agent that reports its pool unhealthy still holds
    /// its jobs (it lists what it lost in the heartbeat): the pool takes no new work, and nothing
    /// fails over until the agent itself goes silent.
    fn seen(&mut self, pool: PoolId, healthy: bool, at_ms: i64) {
        self.last_seen[pool.index()] = Some(at_ms);
        if self.scheduler.pool(pool).healthy != healthy {
            if healthy {
                self.scheduler.set_pool_health(pool, true, now_s());
            } else {
                self.scheduler.pause_pool(pool);
            }
        }
    }

    fn track(&mut self, store_id: i64, id: JobId) {
        self.ids.insert(store_id, id);
        if self.store_ids.len() <= id.index() {
            self.store_ids.resize(id.index() + 1, 0);
        }
        self.store_ids[id.index()] = store_id;
    }

    async fn rebuild(&mut self) -> Result<(), crate::error::ApiError> {
        for status in self.state.store.pool_statuses().await? {
            if let Some((id, _)) = self.state.federation.pools().find(|(_, p)| p.name == status.name) {
                self.scheduler.set_pool_accepting(id, !status.drained);
            }
        }
        let mut after = 0;
        loop {
            let page = self
                .state
                .store
                .jobs(&JobFilter { states: OPEN.to_vec(), ..JobFilter::default() }, after, 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for record in page {
                self.restore(record).await;
            }
        }
        Ok(())
    }

    async fn restore(&mut self, record: JobRecord) {
        let body: Result<SubmitJob, _> = serde_json::from_str(&record.spec);
        let job = body.map_err(|e| e.to_string()).and_then(|b| {
            scheduler_job(&self.state.federation, record.tenant_id, &b, (record.created_ms / 1000) as u64)
                .map_err(|e| e.message)
        });
        let job = match job {
            Ok(job) => job,
            Err(reason) => {
                self.transition(
                    record.id,
                    &OPEN,
                    JobState::Failed,
                    PoolChange::Keep,
                    None,
                    format!("cannot be scheduled after a restart: {reason}"),
                )
                .await;
                return;
            }
        };
        self.scheduler.ensure_tenants(record.tenant_id as usize + 1);
        let pool = record
            .pool
            .as_ref()
            .and_then(|name| self.state.federation.pools().find(|(_, p)| &p.name == name).map(|(id, _)| id));
        match (record.state, pool) {
            (JobState::Placed | JobState::Running, Some(pool)) => {
                // Its pool's agent still has it: account for it there, healthy or not. (If the
                // pool never reports, `check_heartbeats` fails the job over after the timeout.)
                match self.scheduler.restore_running(job, pool, now_s()) {
                    Ok(id) => self.track(record.id, id),
                    Err(e) => {
                        tracing::warn!(job_id = record.id, error = %e, "a job could not be restored in its pool");
                    }
                }
            }
            _ => {
                if record.state == JobState::Preempted {
                    self.transition(
                        record.id,
                        &[JobState::Preempted],
                        JobState::Queued,
                        PoolChange::Clear,
                        None,
                        "queued again after a restart".to_owned(),
                    )
                    .await;
                }
                match self.scheduler.submit(job, now_s()) {
                    Ok(id) => self.track(record.id, id),
                    Err(e) => {
                        self.transition(record.id, &OPEN, JobState::Failed, PoolChange::Keep, None, e.to_string()).await
                    }
                }
            }
        }
    }

    fn handle(&mut self, message: SchedulerMsg) {
        match message {
            SchedulerMsg::Submitted { job_id, job } => {
                if self.ids.contains_key(&job_id) {
                    return; // the change feed brought it first
                }
                self.scheduler.ensure_tenants(job.spec.tenant as usize + 1);
                match self.scheduler.submit(*job, now_s()) {
                    Ok(id) => self.track(job_id, id),
                    Err(e) => {
                        let state = self.state.clone();
                        tokio::spawn(async move {
                            let write = Write::Transition {
                                job_id,
                                from: vec![JobState::Queued],
                                to: JobState::Failed,
                                pool: PoolChange::Keep,
                                explanation: Some(e.to_string()),
                                detail: format!("unschedulable: {e}"),
                            };
                            let _ = state.committer.write("scheduler", write).await;
                        });
                    }
                }
            }
            SchedulerMsg::Ended { job_id } => {
                if let Some(id) = self.ids.remove(&job_id) {
                    self.scheduler.cancel(id, now_s());
                }
            }
            SchedulerMsg::Requeue { job_id } => self.requeue(job_id),
            SchedulerMsg::Seen { pool, healthy } => self.seen(pool, healthy, now_ms()),
            SchedulerMsg::Drain { pool, drained } => self.scheduler.set_pool_accepting(pool, !drained),
        }
    }

    fn fail_over(&self, victims: Vec<JobId>, pool: PoolId) {
        let name = self.state.federation.pool(pool).name.clone();
        for victim in victims {
            let job_id = self.store_ids[victim.index()];
            let state = self.state.clone();
            let detail = format!("failed over: pool {name} is unhealthy");
            tokio::spawn(async move {
                let write = Write::Transition {
                    job_id,
                    from: vec![JobState::Placed, JobState::Running],
                    to: JobState::Queued,
                    pool: PoolChange::Clear,
                    explanation: None,
                    detail,
                };
                let _ = state.committer.write("scheduler", write).await;
            });
        }
    }

    /// Pools whose agents went silent: unhealthy after the heartbeat timeout; their jobs fail
    /// over then too, except a cluster pool's (`slurm`, `kubernetes`), which wait for the
    /// cluster failover timeout (the cluster runs them without its agent).
    async fn check_heartbeats(&mut self) {
        let timeout = self.state.config.heartbeat_timeout.as_millis() as i64;
        for p in 0..self.last_seen.len() {
            let pool = PoolId::from_index(p);
            let silent_ms = now_ms() - self.last_seen[p].unwrap_or(self.started_ms);
            let healthy = self.scheduler.pool(pool).healthy;
            // An unhealthy pool may still hold jobs restored from the store at start.
            let holds_jobs = self.scheduler.running_in(pool).next().is_some();
            let failover = if self.state.federation.pool(pool).backend.runs_jobs_without_agent() {
                self.state.config.cluster_failover_timeout.as_millis() as i64
            } else {
                timeout
            };
            let name = || self.state.federation.pool(pool).name.clone();
            if (healthy || holds_jobs) && silent_ms > failover {
                tracing::warn!(pool = %name(), silent_s = silent_ms / 1000, "the pool stopped reporting; its jobs fail over");
                let victims = self.scheduler.set_pool_health(pool, false, now_s());
                // The pool is recorded unhealthy before its jobs are requeued, so whoever sees
                // a job failed over also sees why.
                if healthy {
                    self.record_unhealthy(name()).await;
                }
                self.fail_over(victims, pool);
            } else if healthy && silent_ms > timeout {
                tracing::warn!(
                    pool = %name(),
                    silent_s = silent_ms / 1000,
                    failover_s = failover / 1000,
                    "the cluster pool stopped reporting; no new work goes there, its jobs stay until the failover timeout"
                );
                self.scheduler.pause_pool(pool);
                self.record_unhealthy(name()).await;
            }
        }
    }

    /// Writes a pool down as unhealthy, keeping its drain flag and last report as they are.
    async fn record_unhealthy(&self, name: String) {
        let current =
            self.state.store.pool_statuses().await.ok().and_then(|all| all.into_iter().find(|s| s.name == name));
        let (drained, last_seen_ms) = current.map_or((false, 0), |s| (s.drained, s.last_seen_ms));
        let _ = self
            .state
            .committer
            .write("scheduler", Write::SetPoolStatus { name, healthy: false, drained, last_seen_ms })
            .await;
    }

    async fn pass(&mut self) {
        let decisions = self.scheduler.schedule(now_s());
        if decisions.is_empty() {
            return;
        }
        self.state.metrics.decisions.inc_by(decisions.len() as u64);
        let mut writes = JoinSet::new();
        for decision in decisions {
            match decision {
                Decision::Start { job, pool, explanation } => {
                    let job_id = self.store_ids[job.index()];
                    self.placed_ms.insert(job_id, now_ms());
                    let name = self.state.federation.pool(pool).name.clone();
                    let state = self.state.clone();
                    writes.spawn(async move {
                        let write = Write::Transition {
                            job_id,
                            from: vec![JobState::Queued],
                            to: JobState::Placed,
                            pool: PoolChange::Set(name.clone()),
                            explanation: Some(explanation),
                            detail: format!("placed in {name}"),
                        };
                        (job, state.committer.write("scheduler", write).await.is_ok())
                    });
                }
                Decision::Preempt { job, .. } => {
                    let job_id = self.store_ids[job.index()];
                    let state = self.state.clone();
                    writes.spawn(async move {
                        let write = Write::Transition {
                            job_id,
                            from: vec![JobState::Running],
                            to: JobState::Preempted,
                            pool: PoolChange::Keep,
                            explanation: None,
                            detail: "preempted".to_owned(),
                        };
                        (job, state.committer.write("scheduler", write).await.is_ok())
                    });
                }
            }
        }
        let mut refused = Vec::new();
        while let Some(result) = writes.join_next().await {
            if let Ok((job, false)) = result {
                refused.push(job);
            }
        }
        for job in refused {
            // The store did not have the job where the scheduler thought (it was cancelled, or
            // changed through another path meanwhile): forget it, and take it again as the store
            // has it now.
            let job_id = self.store_ids[job.index()];
            self.scheduler.cancel(job, now_s());
            if self.ids.get(&job_id) == Some(&job) {
                self.ids.remove(&job_id);
            }
            if let Ok(Some(record)) = self.state.store.job(job_id).await
                && !record.state.is_terminal()
                && !self.ids.contains_key(&job_id)
            {
                self.restore(record).await;
            }
        }
    }

    async fn transition(
        &self,
        job_id: i64,
        from: &[JobState],
        to: JobState,
        pool: PoolChange,
        explanation: Option<String>,
        detail: String,
    ) {
        let write = Write::Transition { job_id, from: from.to_vec(), to, pool, explanation, detail };
        if let Err(e) = self.state.committer.write("scheduler", write).await {
            tracing::warn!(job_id, error = ?e, "a transition was refused");
        }
    }
}

/// How long to wait between polls of an in-process agent.
pub const IN_PROCESS_POLL: Duration = Duration::from_millis(500);
