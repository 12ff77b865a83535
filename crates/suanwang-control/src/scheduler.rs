//! The scheduler task: the same `Scheduler` the simulator drives, driven by the control plane's
//! clock.
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
//!
//! Each placement records what the job holds (the model of its cards, its resources, the tariff's
//! rate at the list or contract price); each preemption and failover meters the run it ends
//! ([`crate::metering`]). The task also answers quotes: the scheduler's own view of where a job
//! would run and whether it would start now.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use suanwang_api::jobs::JobRequest;
use suanwang_model::federation::{BackendKind, PoolId};
use suanwang_model::platform::JobState;
use suanwang_model::tariff::Allocation;
use suanwang_placement::profile::WorkloadProfile;
use suanwang_sched::job::{Job, JobId, Status};
use suanwang_sched::scheduler::{Decision, PoolQuote, Scheduler, SchedulerConfig};
use suanwang_store::model::{JobFilter, JobRecord, PoolChange, Transition, Write};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::Control;
use crate::error::Error;
use crate::fit::scheduler_job;
use crate::metering::{AllocationRecord, Leave, RunEnd, leave};

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
        /// Its body as stored.
        request: Box<JobRequest>,
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
    /// A job was cancelled (durably). On a cluster pool its cards stay held until its agent
    /// stops listing it.
    Cancelled {
        /// Store id.
        job_id: i64,
        /// When it was cancelled (the store's time, ms).
        at_ms: i64,
    },
    /// What a pool's agent says it runs (a heartbeat that could tell): jobs preempted or
    /// cancelled there before the agent's last fetch of its work (so it was told to stop them)
    /// and not listed have stopped, and their cards are free.
    AgentRuns {
        /// The pool.
        pool: PoolId,
        /// Store ids the agent runs.
        running: Vec<i64>,
        /// When the agent last fetched its work (ms), if it has.
        fetched_ms: Option<i64>,
    },
    /// A pool's agent reported its cluster's nodes: only `usable` of the pool's can take work.
    Nodes {
        /// The pool.
        pool: PoolId,
        /// Nodes of the pool's shape that can take work.
        usable: usize,
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
    /// What would become of a job in each pool now (changes nothing).
    Quote {
        /// The job.
        job: Box<Job>,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<(PoolId, PoolQuote)>>,
    },
}

/// Jobs in states the scheduler must know about after a restart.
const OPEN: [JobState; 4] = JobState::OPEN;

struct Task {
    ctl: Control,
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
    /// The card price of each active contract (`contract:ID`), for placements under it.
    contract_prices: HashMap<String, i64>,
    /// A job names a contract the task has not read yet (bought since the last sync): read the
    /// books before the next pass, so it is placed in the contract's hold and rated at its price.
    contracts_stale: bool,
    /// What a placement needs of each open job's body beyond the scheduler's job: its contract
    /// and time limit (released when the job ends).
    requests: HashMap<i64, JobRequest>,
    /// Jobs preempted or cancelled in a cluster pool whose agent has not confirmed the stop yet
    /// (store id → the pool, and when the platform decided, ms): they hold their cards.
    stopping: HashMap<i64, (PoolId, i64)>,
}

/// Runs the scheduler task until the mailbox closes: waits for the leader's role, then schedules
/// until the role is lost, and so on.
pub async fn run(ctl: Control, mut mailbox: mpsc::Receiver<SchedulerMsg>) {
    loop {
        let mut leadership = loop {
            match ctl.store.try_lead().await {
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
        ctl.leader.store(true, Ordering::Relaxed);
        let mut task = match Task::start(ctl.clone()).await {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(error = ?e, "cannot rebuild from the store");
                ctl.leader.store(false, Ordering::Relaxed);
                tokio::time::sleep(LEADER_RETRY).await;
                continue;
            }
        };
        let tick = ctl.config.tick;
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
            if task.contracts_stale {
                task.hold_contracts().await;
            }
            task.check_heartbeats().await;
            let waiting =
                task.started.elapsed() < ctl.config.startup_grace && task.last_seen.iter().any(Option::is_none);
            if !waiting {
                task.pass().await;
            }
        }
        ctl.leader.store(false, Ordering::Relaxed);
        ctl.metrics.publish(None);
    }
}

impl Task {
    /// A fresh scheduler with every pool unhealthy until its agent reports, rebuilt from the store.
    async fn start(ctl: Control) -> Result<Task, Error> {
        let config =
            SchedulerConfig { policy: ctl.config.policy, choice: ctl.config.choice, ..SchedulerConfig::default() };
        let mut scheduler = Scheduler::new(&ctl.federation, 1, config, &WorkloadProfile::default());
        // A cluster stops a preempted job when its agent gets to it: until the agent confirms,
        // the job's cards are not free (a job is never run twice at once).
        for (id, pool) in ctl.federation.pools() {
            if matches!(pool.backend, BackendKind::Slurm | BackendKind::Kubernetes) {
                scheduler.set_pool_confirms_stops(id, true);
            }
            // A cluster with a queue of its own gets work beyond its nodes when nowhere has room,
            // so it starts the next job the moment one ends (the federation file's `handoff_pct`).
            if ctl.config.cluster_queues {
                scheduler.set_pool_handoff(id, pool.handoff_pct);
            }
        }
        let pools = ctl.federation.pool_count();
        // Changes committed from here on are read again from the feed; applying one twice is
        // harmless.
        let feed = ctl.store.audit_head().await?;
        let started_ms = ctl.now_ms();
        let mut task = Task {
            ctl,
            scheduler,
            ids: HashMap::new(),
            store_ids: Vec::new(),
            placed_ms: HashMap::new(),
            last_seen: vec![None; pools],
            started: Instant::now(),
            started_ms,
            feed,
            contract_prices: HashMap::new(),
            contracts_stale: false,
            requests: HashMap::new(),
            stopping: HashMap::new(),
        };
        task.hold_contracts().await;
        let now = task.now_s();
        for p in 0..pools {
            task.scheduler.set_pool_health(PoolId::from_index(p), false, now);
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

    fn now_ms(&self) -> i64 {
        self.ctl.now_ms()
    }

    fn now_s(&self) -> u64 {
        u64::try_from(self.ctl.now_ms() / 1000).unwrap_or(0)
    }

    /// Gives the scheduler the capacity market contracts hold (each a tenant's cards in a pool for
    /// a window), so other tenants' jobs leave it free; and remembers their prices.
    async fn hold_contracts(&mut self) {
        let now = self.now_s();
        let contracts = match self
            .ctl
            .read_books(|books| books.contracts().iter().filter(|c| c.end_s > now).cloned().collect::<Vec<_>>())
            .await
        {
            Ok(c) => c,
            Err(e) => return tracing::warn!(error = %e.message, "cannot read the contracts"),
        };
        self.contract_prices =
            contracts.iter().map(|c| (format!("contract:{}", c.id), c.price_fen_per_card_hour)).collect();
        self.contracts_stale = false;
        let holds = crate::market::holds(&self.ctl.federation, &contracts);
        for hold in holds.iter().flatten() {
            self.scheduler.ensure_tenants(hold.tenant as usize + 1);
        }
        for (i, h) in holds.into_iter().enumerate() {
            self.scheduler.set_holds(PoolId::from_index(i), h);
        }
    }

    /// Publishes the queue and each pool's use for `/metrics`.
    fn publish(&self) {
        let pools = (0..self.ctl.federation.pool_count())
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
        self.ctl.metrics.publish(Some(view));
    }

    fn pool_id(&self, name: &str) -> Option<PoolId> {
        self.ctl.federation.pools().find(|(_, p)| p.name == name).map(|(id, _)| id)
    }

    fn is_running(&self, id: JobId) -> bool {
        matches!(self.scheduler.state(id), Status::Running { .. })
    }

    /// Gives a job the scheduler has running back to the queue, as it was first accepted.
    fn requeue(&mut self, job_id: i64) {
        let Some(&id) = self.ids.get(&job_id) else { return };
        // A job whose stop its agent has not confirmed keeps its cards until it does.
        if !self.is_running(id) || self.scheduler.is_stopping(id) {
            return;
        }
        let job = self.scheduler.job(id).clone();
        self.scheduler.cancel(id, self.now_s());
        match self.scheduler.submit(job, self.now_s()) {
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
        if let Ok(statuses) = self.ctl.store.pool_statuses().await {
            for status in statuses {
                let Some(pool) = self.pool_id(&status.name) else { continue };
                let fresh = self.now_ms() - status.last_seen_ms < self.ctl.config.heartbeat_timeout.as_millis() as i64;
                if fresh && status.last_seen_ms > self.last_seen[pool.index()].unwrap_or(0) {
                    self.seen(pool, status.healthy, status.last_seen_ms);
                }
                self.scheduler.set_pool_accepting(pool, !status.drained);
            }
        }
        loop {
            let changes = match self.ctl.store.changes(self.feed, suanwang_store::store::CHANGES_MAX).await {
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
                    // Already waiting for its agent to stop it (this server's own cancel, read
                    // back from the feed).
                    ("job.cancelled", Some(id)) if self.scheduler.is_stopping(id) => {}
                    // Cancelled through another server: on a cluster pool, held until stopped.
                    ("job.cancelled", Some(id))
                        if let Status::Running { pool, .. } = self.scheduler.state(id)
                            && self.scheduler.pool(*pool).confirms_stops =>
                    {
                        let pool = *pool;
                        self.requests.remove(&job_id);
                        if self.scheduler.cancel_held(id, self.now_s()) {
                            self.stopping.insert(job_id, (pool, change.at_ms));
                        }
                    }
                    ("job.succeeded" | "job.failed" | "job.cancelled", Some(id)) => {
                        self.ids.remove(&job_id);
                        self.requests.remove(&job_id);
                        self.stopping.remove(&job_id);
                        self.scheduler.cancel(id, self.now_s());
                    }
                    ("job.queued" | "job.preempted", Some(_))
                        if change.at_ms > self.placed_ms.get(&job_id).copied().unwrap_or(0) =>
                    {
                        self.requeue(job_id);
                    }
                    ("job.submit" | "job.queued" | "job.preempted" | "job.placed" | "job.running", None) => {
                        // Accepted or placed through another server (or a message was lost).
                        if let Ok(Some(record)) = self.ctl.store.job(job_id).await
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
                self.scheduler.set_pool_health(pool, true, self.now_s());
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

    async fn rebuild(&mut self) -> Result<(), Error> {
        for status in self.ctl.store.pool_statuses().await? {
            if let Some((id, _)) = self.ctl.federation.pools().find(|(_, p)| p.name == status.name) {
                self.scheduler.set_pool_accepting(id, !status.drained);
            }
        }
        let mut after = 0;
        loop {
            let page =
                self.ctl.store.jobs(&JobFilter { states: OPEN.to_vec(), ..JobFilter::default() }, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for record in page {
                self.restore(record).await;
            }
        }
        Ok(())
    }

    async fn restore(&mut self, record: JobRecord) {
        // Exactly what was stored (the platform's defaults were applied at submission).
        let job = serde_json::from_str::<JobRequest>(&record.spec).map_err(|e| e.to_string()).and_then(|body| {
            let tenant = crate::jobs::tenant_index(record.tenant_id).unwrap_or(u32::MAX);
            let job = scheduler_job(
                &self.ctl.federation,
                &self.ctl.adaptation,
                tenant,
                &body,
                (record.created_ms / 1000) as u64,
            )
            .map_err(|e| e.message)?;
            if body.contract.as_ref().is_some_and(|c| !self.contract_prices.contains_key(c)) {
                self.contracts_stale = true;
            }
            self.requests.insert(record.id, body);
            Ok(job)
        });
        let job = match job {
            Ok(job) => job,
            Err(reason) => {
                let failed = Leave {
                    job_id: record.id,
                    from: &OPEN,
                    to: JobState::Failed,
                    pool: PoolChange::Keep,
                    detail: format!("cannot be scheduled after a restart: {reason}"),
                    end: RunEnd::At(self.now_ms()),
                };
                if let Err(e) = leave(&self.ctl, "scheduler", failed).await {
                    tracing::warn!(job_id = record.id, error = ?e, "a job that cannot be scheduled could not be failed");
                }
                return;
            }
        };
        self.scheduler.ensure_tenants(job.spec.tenant as usize + 1);
        let pool = record.pool.as_deref().and_then(|name| self.pool_id(name));
        match (record.state, pool) {
            (JobState::Placed | JobState::Running, Some(pool)) => {
                // Its pool's agent still has it: account for it there, healthy or not. (If the
                // pool never reports, `check_heartbeats` fails the job over after the timeout.)
                match self.scheduler.restore_running(job, pool, self.now_s()) {
                    Ok(id) => self.track(record.id, id),
                    Err(e) => {
                        tracing::warn!(job_id = record.id, error = %e, "a job could not be restored in its pool");
                    }
                }
            }
            _ => match self.scheduler.submit(job, self.now_s()) {
                // A preempted job waits as preempted (its agent is told to stop it) until it is
                // placed again.
                Ok(id) => self.track(record.id, id),
                Err(e) => {
                    let failed = Leave {
                        job_id: record.id,
                        from: &OPEN,
                        to: JobState::Failed,
                        pool: PoolChange::Keep,
                        detail: e.to_string(),
                        end: RunEnd::At(self.now_ms()),
                    };
                    if let Err(e) = leave(&self.ctl, "scheduler", failed).await {
                        tracing::warn!(job_id = record.id, error = ?e, "an unschedulable job could not be failed");
                    }
                }
            },
        }
    }

    fn handle(&mut self, message: SchedulerMsg) {
        match message {
            SchedulerMsg::Submitted { job_id, job, request } => {
                if self.ids.contains_key(&job_id) {
                    return; // the change feed brought it first
                }
                if request.contract.as_ref().is_some_and(|c| !self.contract_prices.contains_key(c)) {
                    self.contracts_stale = true;
                }
                self.requests.insert(job_id, *request);
                self.scheduler.ensure_tenants(job.spec.tenant as usize + 1);
                match self.scheduler.submit(*job, self.now_s()) {
                    Ok(id) => self.track(job_id, id),
                    Err(e) => {
                        let ctl = self.ctl.clone();
                        tokio::spawn(async move {
                            let write = Write::Transition(Transition {
                                explanation: Some(e.to_string()),
                                ..Transition::new(
                                    job_id,
                                    &[JobState::Queued],
                                    JobState::Failed,
                                    format!("unschedulable: {e}"),
                                )
                            });
                            let _ = ctl.committer.write("scheduler", write).await;
                        });
                    }
                }
            }
            SchedulerMsg::Ended { job_id } => {
                self.requests.remove(&job_id);
                if let Some(id) = self.ids.remove(&job_id) {
                    self.scheduler.cancel(id, self.now_s());
                }
            }
            SchedulerMsg::Requeue { job_id } => self.requeue(job_id),
            SchedulerMsg::Cancelled { job_id, at_ms } => {
                self.requests.remove(&job_id);
                if let Some(&id) = self.ids.get(&job_id) {
                    let pool = match self.scheduler.state(id) {
                        Status::Running { pool, .. } => Some(*pool),
                        _ => None,
                    };
                    if let Some(pool) = pool {
                        // Its agent stops it now rather than at its next poll.
                        self.ctl.work_signals.bump(pool);
                    }
                    match pool {
                        Some(pool) if self.scheduler.cancel_held(id, self.now_s()) => {
                            self.stopping.insert(job_id, (pool, at_ms));
                        }
                        _ => {
                            self.ids.remove(&job_id);
                            self.scheduler.cancel(id, self.now_s());
                        }
                    }
                }
            }
            SchedulerMsg::AgentRuns { pool, running, fetched_ms } => {
                let Some(fetched_ms) = fetched_ms else { return };
                let running: std::collections::HashSet<i64> = running.into_iter().collect();
                let stopped: Vec<i64> = self
                    .stopping
                    .iter()
                    .filter(|(job_id, (p, decided_ms))| {
                        *p == pool && *decided_ms < fetched_ms && !running.contains(*job_id)
                    })
                    .map(|(job_id, _)| *job_id)
                    .collect();
                let now = self.now_s();
                for job_id in stopped {
                    self.stopping.remove(&job_id);
                    let Some(&id) = self.ids.get(&job_id) else { continue };
                    if self.scheduler.is_stopping(id) {
                        tracing::info!(job_id, "the agent stopped the job; its cards are free");
                        self.scheduler.stopped(id, now);
                    }
                    if matches!(self.scheduler.state(id), Status::Finished { .. }) {
                        self.ids.remove(&job_id);
                    }
                }
            }
            SchedulerMsg::Seen { pool, healthy } => self.seen(pool, healthy, self.now_ms()),
            SchedulerMsg::Nodes { pool, usable } => self.scheduler.set_pool_usable_nodes(pool, Some(usable)),
            SchedulerMsg::Drain { pool, drained } => self.scheduler.set_pool_accepting(pool, !drained),
            SchedulerMsg::Quote { job, reply } => {
                self.scheduler.ensure_tenants(job.spec.tenant as usize + 1);
                let now = self.now_s();
                let _ = reply.send(self.scheduler.quote(&job, now));
            }
        }
    }

    /// Gives a silent pool's jobs back to the queue; a run is metered until the pool's last
    /// report (after that nobody can tell it ran).
    fn fail_over(&self, victims: Vec<JobId>, pool: PoolId) {
        let name = self.ctl.federation.pool(pool).name.clone();
        let last_seen = self.last_seen[pool.index()].unwrap_or(self.started_ms);
        for victim in victims {
            let job_id = self.store_ids[victim.index()];
            let ctl = self.ctl.clone();
            let detail = format!("failed over: pool {name} is unhealthy");
            tokio::spawn(async move {
                let failover = Leave {
                    job_id,
                    from: &[JobState::Placed, JobState::Running],
                    to: JobState::Queued,
                    pool: PoolChange::Clear,
                    detail,
                    end: RunEnd::At(last_seen),
                };
                let _ = leave(&ctl, "scheduler", failover).await;
            });
        }
    }

    /// Pools whose agents went silent: unhealthy after the heartbeat timeout; their jobs fail
    /// over then too, except a cluster pool's (`slurm`, `kubernetes`), which wait for the
    /// cluster failover timeout (the cluster runs them without its agent).
    async fn check_heartbeats(&mut self) {
        let timeout = self.ctl.config.heartbeat_timeout.as_millis() as i64;
        for p in 0..self.last_seen.len() {
            let pool = PoolId::from_index(p);
            let silent_ms = self.now_ms() - self.last_seen[p].unwrap_or(self.started_ms);
            let healthy = self.scheduler.pool(pool).healthy;
            // An unhealthy pool may still hold jobs restored from the store at start.
            let holds_jobs = self.scheduler.running_in(pool).next().is_some();
            let failover = if self.ctl.federation.pool(pool).backend.runs_jobs_without_agent() {
                self.ctl.config.cluster_failover_timeout.as_millis() as i64
            } else {
                timeout
            };
            let name = || self.ctl.federation.pool(pool).name.clone();
            if (healthy || holds_jobs) && silent_ms > failover {
                tracing::warn!(pool = %name(), silent_s = silent_ms / 1000, "the pool stopped reporting; its jobs fail over");
                let victims = self.scheduler.set_pool_health(pool, false, self.now_s());
                // Stops waited for there are over: cancelled jobs finished, preempted ones queued.
                let ended: Vec<i64> = self.stopping.iter().filter(|(_, (p, _))| *p == pool).map(|(j, _)| *j).collect();
                for job_id in ended {
                    self.stopping.remove(&job_id);
                    if let Some(&id) = self.ids.get(&job_id)
                        && matches!(self.scheduler.state(id), Status::Finished { .. })
                    {
                        self.ids.remove(&job_id);
                    }
                }
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
        let write = Write::SetPoolStatus { name, healthy: Some(false), drained: None, last_seen_ms: None };
        let _ = self.ctl.committer.write("scheduler", write).await;
    }

    /// What a job starting in `pool` holds there, as the store keeps it.
    fn allocation(&self, job_id: i64, job: JobId, pool: PoolId) -> String {
        let model = self.scheduler.model_of_job(job);
        let spec = &self.scheduler.job(job).spec;
        let allocation = Allocation::of(spec, model);
        let request = self.requests.get(&job_id).cloned().unwrap_or_else(|| JobRequest::named(spec.name.clone()));
        let contract = request.contract.as_ref().and_then(|c| self.contract_prices.get(c).map(|p| (c.clone(), *p)));
        let record = AllocationRecord::new(&self.ctl, job_id, &request, pool, &allocation, contract);
        serde_json::to_string(&record).unwrap_or_default()
    }

    async fn pass(&mut self) {
        let now_s = self.now_s();
        let decisions = self.scheduler.schedule(now_s);
        if decisions.is_empty() {
            return;
        }
        self.ctl.metrics.decisions.inc_by(decisions.len() as u64);
        let mut writes = JoinSet::new();
        // Victims that keep their cards until their agent stops them.
        let mut holding = Vec::new();
        // Pools whose work changed: their agents are told once the writes are durable.
        let mut touched = std::collections::BTreeSet::new();
        for decision in decisions {
            match decision {
                Decision::Start { job, pool, explanation } => {
                    let job_id = self.store_ids[job.index()];
                    self.placed_ms.insert(job_id, self.now_ms());
                    let name = self.ctl.federation.pool(pool).name.clone();
                    let allocation = self.allocation(job_id, job, pool);
                    let ctl = self.ctl.clone();
                    writes.spawn(async move {
                        let write = Write::Transition(Transition {
                            pool: PoolChange::Place { pool: name.clone(), allocation },
                            explanation: Some(explanation),
                            ..Transition::new(
                                job_id,
                                &[JobState::Queued, JobState::Preempted],
                                JobState::Placed,
                                format!("placed in {name}"),
                            )
                        });
                        (job, ctl.committer.write("scheduler", write).await.is_ok())
                    });
                    touched.insert(pool);
                }
                Decision::Preempt { job, for_job } => {
                    let job_id = self.store_ids[job.index()];
                    let for_id = self.store_ids[for_job.index()];
                    if self.scheduler.is_stopping(job) {
                        holding.push(job);
                    }
                    if let Status::Running { pool, .. } = self.scheduler.state(job) {
                        touched.insert(*pool);
                    }
                    let ctl = self.ctl.clone();
                    let now = self.now_ms();
                    writes.spawn(async move {
                        let preempt = Leave {
                            job_id,
                            from: &[JobState::Running, JobState::Placed],
                            to: JobState::Preempted,
                            pool: PoolChange::Keep,
                            detail: format!("preempted for job {for_id}; its agent stops it"),
                            end: RunEnd::At(now),
                        };
                        (job, leave(&ctl, "scheduler", preempt).await.is_ok())
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
        for pool in touched {
            self.ctl.work_signals.bump(pool);
        }
        // Timed after the preemption is committed: only a work fetch after that lists the victim
        // in `stop`, so only a heartbeat after such a fetch may confirm its stop.
        let now_ms = self.now_ms();
        for job in holding {
            if !refused.contains(&job)
                && self.scheduler.is_stopping(job)
                && let Status::Running { pool, .. } = self.scheduler.state(job)
            {
                self.stopping.insert(self.store_ids[job.index()], (*pool, now_ms));
            }
        }
        for job in refused {
            // The store did not have the job where the scheduler thought (it was cancelled, or
            // changed through another path meanwhile): forget it, and take it again as the store
            // has it now.
            let job_id = self.store_ids[job.index()];
            self.scheduler.cancel(job, self.now_s());
            if self.ids.get(&job_id) == Some(&job) {
                self.ids.remove(&job_id);
            }
            if let Ok(Some(record)) = self.ctl.store.job(job_id).await
                && !record.state.is_terminal()
                && !self.ids.contains_key(&job_id)
            {
                self.restore(record).await;
            }
        }
    }
}

/// How long to wait between polls of an in-process agent.
pub const IN_PROCESS_POLL: Duration = Duration::from_millis(500);
