//! The scheduler: a queue ordered by a discipline, the running jobs, and every pool's state.
//!
//! A scheduling pass ([`Scheduler::schedule`]) walks the queue in order and starts what it can:
//! - **Gangs** are all or nothing: every task is placed in one pool, or none is (rolled back).
//! - Without **backfilling**, the pass stops at the first job that cannot start. With it, later
//!   jobs may start. The head keeps an EASY reservation when run-time estimates make one
//!   computable (its earliest start from running jobs' estimated ends, counted in the pool's
//!   accelerator thousandths); a later job may not delay that. Without estimates, backfilling is
//!   greedy.
//! - **Preemption** (`las` and `priority`): a job that cannot start may stop running preemptible
//!   jobs of lower rank in one of its pools, least important first, but only when a trial on a
//!   copy of the pool shows that it then fits.
//! - **Failover**: when a pool goes down, its running jobs return to the queue (counted) and
//!   nothing is placed there until it is back.
//!
//! A pass is cheap on long queues. A job shape that failed once in a pass fails for the rest of it
//! (placements only consume capacity), so every later job of that shape is skipped. The pass ends
//! once every shape in the queue has failed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use rustc_hash::{FxHashMap, FxHashSet};
use suanwang_model::catalog::AcceleratorId;
use suanwang_model::federation::{Federation, PoolId};
use suanwang_model::job::TaskSpec;
use suanwang_placement::cluster::{Assignment, Cluster, NodeIdx, NodeState};
use suanwang_placement::policy::{self, PolicyContext, PolicyName};
use suanwang_placement::profile::WorkloadProfile;

use crate::job::{Job, JobId, Status};
use crate::policy::{Discipline, QueuePolicy};
use crate::pools::{ChoiceConfig, PoolRuntime, estimate, explain, infeasible_reason, speed};

/// Limits.
pub mod limits {
    /// Jobs one scheduler may hold (queued, running or done).
    pub const JOBS_MAX: usize = 20_000_000;
    /// Preemption attempts in one scheduling pass.
    pub const PREEMPTION_ATTEMPTS_PER_PASS: usize = 4;
    /// Running jobs looked at per pool when choosing victims for one preemption.
    pub const VICTIM_CANDIDATES_PER_POOL: usize = 256;
}

/// The default [`SchedulerConfig::las_starvation_s`]: four hours (on Philly, 2–5 h all keep the
/// p99 JCT under `fifo+backfill`'s and the mean under 0.08× strict FIFO's; BENCHMARKS.md).
pub const LAS_STARVATION_S_DEFAULT: u64 = 4 * 3600;

/// How the scheduler behaves.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Queue discipline and backfilling.
    pub policy: QueuePolicy,
    /// Node placement inside a pool.
    pub node_policy: PolicyName,
    /// `las`: attained service (device-seconds) after which a job drops to the lower queue.
    pub las_threshold_device_s: u64,
    /// `las`: a job of the lower queue that has waited this long in all (over every time it was
    /// queued since it was submitted, or since its last promotion) is promoted, as Tiresias
    /// does: its attained service starts again from zero, so it queues with the new jobs (by its
    /// submission) and no new job preempts it until it has had the threshold's service again.
    /// Bounds the tail; 0 turns it off.
    pub las_starvation_s: u64,
    /// Pool choice.
    pub choice: ChoiceConfig,
    /// `drf`: tenant weights by tenant index (missing: 1).
    pub tenant_weights: Vec<f64>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            policy: QueuePolicy::DEFAULT,
            node_policy: PolicyName::BestFit,
            las_threshold_device_s: 3_600,
            las_starvation_s: LAS_STARVATION_S_DEFAULT,
            choice: ChoiceConfig::default(),
            tenant_weights: Vec::new(),
        }
    }
}

/// What the scheduler decided in a pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Start a job.
    Start {
        /// The job.
        job: JobId,
        /// Where.
        pool: PoolId,
        /// Why there, in words.
        explanation: String,
    },
    /// Stop a running job and put it back in the queue.
    Preempt {
        /// The job.
        job: JobId,
        /// The job it made room for.
        for_job: JobId,
    },
}

/// What the scheduler would do with a job in one pool (see [`Scheduler::quote`]).
#[derive(Clone, Debug, PartialEq)]
pub enum PoolQuote {
    /// It could never run there; why, in words.
    Never(String),
    /// It could run there, on cards of `model`, at `speed` times the reference.
    Runs {
        /// The model its cards would be (`None` for CPU-only work).
        model: Option<AcceleratorId>,
        /// Its speed there.
        speed: f64,
        /// Whether a pass now would start it there.
        now: bool,
        /// Why it would wait, when it would.
        waits: Option<String>,
    },
}

/// Why a job was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// No pool of the federation could ever run it.
    #[error("unschedulable: {0}")]
    Unschedulable(String),
    /// The scheduler holds its maximum number of jobs.
    #[error("the scheduler holds {} jobs, its limit", limits::JOBS_MAX)]
    Full,
    /// The tenant index is not one the scheduler knows.
    #[error("unknown tenant index {0}")]
    UnknownTenant(u32),
}

impl SubmitError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Unschedulable(_) => "unschedulable",
            SubmitError::Full => "limit_exceeded",
            SubmitError::UnknownTenant(_) => "unknown_reference",
        }
    }
}

/// Queue order: (primary, secondary, job id).
type Key = (i64, i64, u32);

/// A job in the scheduler. Laid out by hand: preemption planning reads the state, service and preemptibility of many
/// running jobs in a row, so those come first and share a cache line; the job itself comes last.
#[repr(C)]
struct Record {
    state: Status,
    /// Device-seconds of service received in finished runs.
    attained_device_s: u64,
    /// Seconds spent queued in earlier spells (not the current one).
    waited_s: u64,
    /// When the current spell in the queue began (while queued).
    queued_at_s: u64,
    /// Its entry in [`Scheduler::starving`], while it has one.
    starve_key: Option<(u64, u32)>,
    /// Devices the job holds while running (at least 1, so CPU-only jobs attain service too).
    devices: u64,
    shape: u32,
    /// `job.spec.preemptible`, next to the state.
    preemptible: bool,
    preemptions: u32,
    failovers: u32,
    /// Preempted in a pool that confirms stops, for this job, and not yet confirmed stopped:
    /// still running there, holding its resources, and never chosen as a victim again.
    stopping_for: Option<JobId>,
    /// Cancelled while running in a pool that confirms stops, not yet confirmed stopped: it
    /// holds its resources until then.
    cancelling: bool,
    /// Placed in its pool's own queue ([`PoolRuntime`]'s handoff), not on its nodes: its
    /// assignments are in the handoff's copy of the nodes, and it attains no service.
    handed: bool,
    key: Option<Key>,
    feasible: Vec<PoolId>,
    job: Job,
}

/// Per-pool bookkeeping next to the runtime.
struct PoolBook {
    /// Running jobs, oldest start first.
    running: BTreeSet<(u64, JobId)>,
    /// Jobs waiting in the pool's own queue, oldest first.
    handed: BTreeSet<(u64, JobId)>,
    /// Nodes by number of fully free devices (0..=16).
    free_hist: [u32; 17],
    /// Accepted-model lookup: the models present in the pool.
    models: Vec<AcceleratorId>,
}

/// Statistics of one job, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct JobCounters {
    /// Times the job was preempted.
    pub preemptions: u32,
    /// Times the job lost its pool and was rescheduled.
    pub failovers: u32,
}

/// The scheduler.
pub struct Scheduler {
    config: SchedulerConfig,
    /// What fragmentation-aware node policies learn from (kept to rebuild a grown pool's).
    profile: WorkloadProfile,
    federation: Federation,
    pools: Vec<PoolRuntime>,
    books: Vec<PoolBook>,
    jobs: Vec<Record>,
    ordered: BTreeSet<Key>,
    by_tenant: Vec<BTreeSet<(u64, u32)>>,
    tenants: usize,
    usage: Vec<[u64; 3]>,
    capacity: [u64; 3],
    shapes: FxHashMap<(TaskSpec, u16, u32), u32>,
    /// Per shape: the task, the gang size and the feasible pools.
    shape_specs: Vec<(TaskSpec, u16, Vec<PoolId>)>,
    /// Per shape: which pools can never run it and why, in words (empty: none).
    shape_left_out: Vec<String>,
    shape_queued: Vec<u32>,
    shapes_queued_distinct: usize,
    feasibility_classes: HashMap<Vec<PoolId>, u32>,
    /// Per task shape: the task slots of every pool when empty.
    empty_slots: FxHashMap<TaskSpec, Vec<u64>>,
    /// Per pool: capacity held for tenants by contracts.
    holds: Vec<Vec<CapacityHold>>,
    /// The last `place` skipped a pool only because of others' holds.
    held_back: bool,
    /// Per job: its victims still stopping (it waits for them instead of choosing more).
    waiting_on_stops: FxHashMap<JobId, u32>,
    /// `las`: queued jobs of the lower queue by when their waiting would have begun had it been
    /// one spell (`queued_at_s − waited_s`): the first has waited longest.
    starving: BTreeSet<(u64, u32)>,
}

/// A pool's model grows to at most this many times its federation file's nodes
/// ([`Scheduler::set_pool_usable_nodes`]).
pub const GROWTH_FACTOR: usize = 2;

/// Accelerator capacity a contract holds in a pool for one tenant during a window: while it is
/// active, other tenants' jobs may not take the part of it the holder is not using.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapacityHold {
    /// The tenant it is held for.
    pub tenant: u32,
    /// How much, milli-cards.
    pub gpu_milli: u64,
    /// From (s).
    pub start_s: u64,
    /// Until (s, exclusive).
    pub end_s: u64,
}

impl Scheduler {
    /// A scheduler for a federation and `tenants` tenants (indices 0..tenants). `profile` is what
    /// fragmentation-aware node policies learn from (empty is fine for the others).
    pub fn new(federation: &Federation, tenants: usize, config: SchedulerConfig, profile: &WorkloadProfile) -> Self {
        let mut pools = Vec::new();
        let mut books = Vec::new();
        let mut capacity = [0u64; 3];
        for (id, pool) in federation.pools() {
            let cluster = Cluster::new(&pool.nodes).expect("a federation's nodes are validated");
            let context =
                PolicyContext { profile: profile.clone(), seed: u64::from(id.index() as u16), nodes: cluster.len() };
            let mut free_hist = [0u32; 17];
            for node in cluster.nodes() {
                free_hist[node.fully_free_devices().min(16)] += 1;
                capacity[1] += u64::from(node.cpu_milli_capacity());
                capacity[2] += u64::from(node.memory_mib_capacity());
            }
            capacity[0] += cluster.gpu_milli_capacity();
            let mut models: Vec<AcceleratorId> = pool.nodes.iter().filter_map(|n| n.accelerator).collect();
            models.sort();
            models.dedup();
            let order = (0..cluster.len() as u32).map(NodeIdx).collect();
            pools.push(PoolRuntime {
                id,
                cluster,
                healthy: true,
                accepting: true,
                confirms_stops: false,
                handoff: None,
                node_policy: policy::build(config.node_policy, &context),
                order,
            });
            books.push(PoolBook { running: BTreeSet::new(), handed: BTreeSet::new(), free_hist, models });
        }
        Scheduler {
            federation: federation.clone(),
            pools,
            books,
            jobs: Vec::new(),
            ordered: BTreeSet::new(),
            by_tenant: vec![BTreeSet::new(); tenants],
            tenants,
            usage: vec![[0; 3]; tenants],
            capacity,
            shapes: FxHashMap::default(),
            shape_specs: Vec::new(),
            shape_left_out: Vec::new(),
            shape_queued: Vec::new(),
            shapes_queued_distinct: 0,
            feasibility_classes: HashMap::new(),
            empty_slots: FxHashMap::default(),
            holds: vec![Vec::new(); federation.pool_count()],
            held_back: false,
            waiting_on_stops: FxHashMap::default(),
            starving: BTreeSet::new(),
            config,
            profile: profile.clone(),
        }
    }

    /// Replaces the capacity holds of a pool (contracts; see [`CapacityHold`]).
    pub fn set_holds(&mut self, pool: PoolId, holds: Vec<CapacityHold>) {
        if let Some(slot) = self.holds.get_mut(pool.index()) {
            *slot = holds;
        }
    }

    /// Milli-cards of `pool` held at `now` for tenants other than `tenant` and not in use by them:
    /// what a job of `tenant` may not take.
    pub fn held_for_others(&self, pool: PoolId, tenant: u32, now: u64) -> u64 {
        let holds = &self.holds[pool.index()];
        if holds.is_empty() {
            return 0;
        }
        let mut held: BTreeMap<u32, u64> = BTreeMap::new();
        for h in holds.iter().filter(|h| h.tenant != tenant && h.start_s <= now && now < h.end_s) {
            *held.entry(h.tenant).or_default() += h.gpu_milli;
        }
        if held.is_empty() {
            return 0;
        }
        let mut used: BTreeMap<u32, u64> = BTreeMap::new();
        for &(_, job) in &self.books[pool.index()].running {
            let t = self.jobs[job.index()].job.spec.tenant;
            if held.contains_key(&t) {
                *used.entry(t).or_default() += self.job_milli(job);
            }
        }
        held.iter().map(|(t, h)| h.saturating_sub(used.get(t).copied().unwrap_or(0))).sum()
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The federation it schedules.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// A pool's runtime state.
    pub fn pool(&self, id: PoolId) -> &PoolRuntime {
        &self.pools[id.index()]
    }

    /// A job's state.
    pub fn state(&self, id: JobId) -> &Status {
        &self.jobs[id.index()].state
    }

    /// A job as submitted.
    pub fn job(&self, id: JobId) -> &Job {
        &self.jobs[id.index()].job
    }

    /// A job's preemption and failover counts.
    pub fn counters(&self, id: JobId) -> JobCounters {
        let r = &self.jobs[id.index()];
        JobCounters { preemptions: r.preemptions, failovers: r.failovers }
    }

    /// Jobs waiting.
    pub fn queued(&self) -> usize {
        if self.config.policy.discipline == Discipline::Drf {
            self.by_tenant.iter().map(BTreeSet::len).sum()
        } else {
            self.ordered.len()
        }
    }

    /// Jobs running in a pool, and those waiting in its own queue.
    pub fn running_in(&self, pool: PoolId) -> impl Iterator<Item = JobId> + '_ {
        let book = &self.books[pool.index()];
        book.running.iter().chain(&book.handed).map(|&(_, id)| id)
    }

    /// Whether a job placed in a pool waits in the pool's own queue (see
    /// [`Scheduler::set_pool_handoff`]) rather than on its nodes.
    pub fn is_handed(&self, id: JobId) -> bool {
        self.jobs[id.index()].handed
    }

    /// A pool's own queue: milli-cards placed in it and its capacity (`None`: it has none).
    pub fn handoff_milli(&self, pool: PoolId) -> Option<(u64, u64)> {
        let (cluster, _) = self.pools[pool.index()].handoff.as_ref()?;
        Some((cluster.gpu_milli_allocated(), cluster.gpu_milli_capacity()))
    }

    /// Gives a pool its own queue of `pct` % of its nodes (0: none): when no pool has room for
    /// a job now, and a preemption cannot make any, the job may be placed in that queue, and the
    /// cluster starts it as soon as something there ends, without waiting for the platform to
    /// place it (Slurm and Kubernetes keep queues of their own). A handed job moves onto the
    /// nodes, in the order it was handed, as they free up; it is never a preemption victim, and
    /// the queue is not offered while contracts hold the pool's capacity for others. Only for a
    /// pool with nothing handed yet.
    pub fn set_pool_handoff(&mut self, pool: PoolId, pct: u16) {
        if !self.books[pool.index()].handed.is_empty() {
            return;
        }
        let nodes = &self.federation.pool(pool).nodes;
        let count = (nodes.len() * usize::from(pct)).div_ceil(100);
        let specs: Vec<_> = nodes.iter().cycle().take(if nodes.is_empty() { 0 } else { count }).cloned().collect();
        let handoff = (!specs.is_empty()).then(|| Cluster::new(&specs).ok()).flatten().map(|cluster| {
            let order = (0..cluster.len() as u32).map(NodeIdx).collect();
            (cluster, order)
        });
        self.pools[pool.index()].handoff = handoff;
    }

    /// Takes only `usable` of the pool's nodes for new work: its agent reports that only so many
    /// of the cluster's nodes can take work (the others are down or drained). The rest are
    /// cordoned, the emptiest first (a job still running on a node the cluster drained keeps its
    /// place in the model): nothing new is placed on them, and what runs there runs on. `None`, or
    /// as many as the pool has, takes every node.
    ///
    /// More usable nodes than the model has grow it: nodes like the federation file's (its node
    /// kinds in turn) are added, up to [`GROWTH_FACTOR`] times the file's count (a cluster that
    /// grew further needs its federation file changed: capacity and prices are the operator's to
    /// publish). The caller counts only reported nodes at least as large as the file's. Added
    /// nodes stay in the model when the count falls again (cordoned, like drained ones).
    pub fn set_pool_usable_nodes(&mut self, pool: PoolId, usable: Option<usize>) {
        if let Some(wanted) = usable {
            self.grow_pool(pool, wanted);
        }
        let runtime = &mut self.pools[pool.index()];
        let len = runtime.cluster.len();
        let usable = usable.unwrap_or(len).min(len);
        let mut by_emptiness: Vec<usize> = (0..len).collect();
        let nodes = runtime.cluster.nodes();
        by_emptiness.sort_by_key(|&i| {
            let node = &nodes[i];
            (std::cmp::Reverse(node.gpu_milli_free()), std::cmp::Reverse(node.cpu_milli_free()), std::cmp::Reverse(i))
        });
        let mut cordoned = vec![false; len];
        for &i in by_emptiness.iter().take(len - usable) {
            cordoned[i] = true;
        }
        runtime.order = (0..len).filter(|&i| !cordoned[i]).map(|i| NodeIdx(i as u32)).collect();
    }

    /// Grows a pool's model to `wanted` nodes (bounded; see [`Scheduler::set_pool_usable_nodes`]).
    fn grow_pool(&mut self, pool: PoolId, wanted: usize) {
        let declared = &self.federation.pool(pool).nodes;
        let runtime = &mut self.pools[pool.index()];
        let target = wanted.min(declared.len().saturating_mul(GROWTH_FACTOR));
        let before = runtime.cluster.len();
        if declared.is_empty() || target <= before {
            return;
        }
        let book = &mut self.books[pool.index()];
        for i in before..target {
            let Ok(idx) = runtime.cluster.push(&declared[i % declared.len()]) else { break };
            let node = runtime.cluster.node(idx);
            book.free_hist[node.fully_free_devices().min(16)] += 1;
            self.capacity[0] += u64::from(node.gpu_milli_capacity());
            self.capacity[1] += u64::from(node.cpu_milli_capacity());
            self.capacity[2] += u64::from(node.memory_mib_capacity());
        }
        // Per-node caches are sized by the node count: the policy starts afresh.
        let context = PolicyContext {
            profile: self.profile.clone(),
            seed: u64::from(pool.index() as u16),
            nodes: runtime.cluster.len(),
        };
        runtime.node_policy = policy::build(self.config.node_policy, &context);
    }

    /// How many nodes a pool's model has (the federation file's, more when it grew).
    pub fn pool_node_count(&self, pool: PoolId) -> usize {
        self.pools[pool.index()].cluster.len()
    }

    /// Whether new work may go on a node of a pool (see [`Scheduler::set_pool_usable_nodes`]).
    pub fn takes_work_on(&self, pool: PoolId, node: NodeIdx) -> bool {
        self.pools[pool.index()].order.contains(&node)
    }

    /// The accelerator model of the cards a running (or handed) job's first task got, if any.
    pub fn model_of_job(&self, id: JobId) -> Option<AcceleratorId> {
        let r = &self.jobs[id.index()];
        let Status::Running { pool, assignments, .. } = &r.state else { return None };
        let first = assignments.first()?;
        let runtime = &self.pools[pool.index()];
        match (&runtime.handoff, r.handed) {
            (Some((cluster, _)), true) => cluster.node(first.node).model(),
            _ => runtime.cluster.node(first.node).model(),
        }
    }

    /// Makes room for tenants `0..count` (a server learns of tenants as they are created).
    pub fn ensure_tenants(&mut self, count: usize) {
        if count > self.tenants {
            self.tenants = count;
            self.by_tenant.resize_with(count, BTreeSet::new);
            self.usage.resize(count, [0; 3]);
        }
    }

    /// Accepts a job that was already running in `pool` before a restart: places it there again
    /// (on whichever nodes fit, else in the pool's own queue, else on nodes the model grows by,
    /// within [`GROWTH_FACTOR`]) without queueing. `Err` when it fits none; the job is then left
    /// queued, and the caller should say so.
    pub fn restore_running(&mut self, job: Job, pool: PoolId, now: u64) -> Result<JobId, SubmitError> {
        let id = self.submit(job, now)?;
        if !self.jobs[id.index()].feasible.contains(&pool) {
            return Err(SubmitError::Unschedulable(format!(
                "job {} cannot run in pool {}",
                id.0,
                self.federation.pool(pool).name
            )));
        }
        if let Some(assignments) = self.place_gang(pool, id) {
            self.start(id, pool, assignments, now);
            return Ok(id);
        }
        // Placed beyond the nodes before the restart: it waits in the pool's own queue again.
        if let Some(assignments) = self.hand_into(pool, id) {
            self.start_handed(id, pool, assignments, now);
            return Ok(id);
        }
        // Running on nodes the model had grown by before the restart (the agent's next node
        // list says how many there are): grow it again, a node at a time, within the bound.
        loop {
            let len = self.pools[pool.index()].cluster.len();
            self.grow_pool(pool, len + 1);
            if self.pools[pool.index()].cluster.len() == len {
                break;
            }
            let runtime = &mut self.pools[pool.index()];
            runtime.order.push(NodeIdx(len as u32));
            if let Some(assignments) = self.place_gang(pool, id) {
                self.start(id, pool, assignments, now);
                return Ok(id);
            }
        }
        Err(SubmitError::Unschedulable(format!("job {} no longer fits pool {}", id.0, self.federation.pool(pool).name)))
    }

    /// Takes a queued job out of the queue for good (it was cancelled).
    pub fn cancel(&mut self, id: JobId, now: u64) {
        match self.jobs[id.index()].state {
            Status::Queued => {
                self.dequeue(id, now);
                self.jobs[id.index()].state = Status::Finished { end_s: now };
            }
            Status::Running { .. } => {
                self.clear_stopping(id);
                self.jobs[id.index()].cancelling = false;
                self.finish(id, now);
            }
            _ => {}
        }
    }

    /// Accepts a job into the queue, or says why no pool could ever run it.
    pub fn submit(&mut self, job: Job, now: u64) -> Result<JobId, SubmitError> {
        if self.jobs.len() >= limits::JOBS_MAX {
            return Err(SubmitError::Full);
        }
        if job.spec.tenant as usize >= self.tenants {
            return Err(SubmitError::UnknownTenant(job.spec.tenant));
        }
        let mut feasible = Vec::new();
        let mut reasons: Vec<(&str, String)> = Vec::new();
        let slots = self.empty_slots.entry(job.spec.task).or_insert_with(|| {
            self.federation.pools().map(|(_, pool)| crate::pools::empty_slots(pool, &job.spec.task)).collect()
        });
        for (id, pool) in self.federation.pools() {
            if job.pool.is_some_and(|pinned| pinned != id) {
                continue;
            }
            let known = slots[id.index()];
            match infeasible_reason(&self.federation, pool, &job.spec, |_, _| known) {
                None => feasible.push(id),
                Some(reason) => reasons.push((&pool.name, reason)),
            }
        }
        if feasible.is_empty() {
            reasons.truncate(5);
            return Err(SubmitError::Unschedulable(if reasons.is_empty() {
                "the federation has no pools".to_owned()
            } else {
                reasons.iter().map(|(pool, reason)| format!("{pool}: {reason}")).collect::<Vec<_>>().join("; ")
            }));
        }
        let classes = self.feasibility_classes.len() as u32;
        let class = *self.feasibility_classes.entry(feasible.clone()).or_insert(classes);
        let shapes = self.shapes.len() as u32;
        let shape = *self.shapes.entry((job.spec.task, job.spec.gang_size, class)).or_insert(shapes);
        if shape as usize == self.shape_queued.len() {
            self.shape_queued.push(0);
            self.shape_specs.push((job.spec.task, job.spec.gang_size, feasible.clone()));
            self.shape_left_out.push(crate::pools::left_out(&reasons));
        }
        let request = job.spec.task.accelerators();
        let devices = (u64::from(request.count()) * u64::from(job.spec.gang_size)).max(1);
        let id = JobId(self.jobs.len() as u32);
        let _ = now;
        self.jobs.push(Record {
            preemptible: job.spec.preemptible,
            job,
            state: Status::Queued,
            attained_device_s: 0,
            waited_s: 0,
            queued_at_s: now,
            starve_key: None,
            devices,
            preemptions: 0,
            failovers: 0,
            stopping_for: None,
            cancelling: false,
            handed: false,
            shape,
            feasible,
            key: None,
        });
        self.enqueue(id, now);
        Ok(id)
    }

    /// What would become of `job` in each pool now, changing nothing: whether it could ever run
    /// there (the same feasibility as [`submit`](Self::submit)) and, if it could, on which model,
    /// and whether a pass now would start it there: the pool is healthy and undrained, contracts'
    /// holds leave it room, the whole gang fits the nodes as they are now (tried and rolled
    /// back), and no queued job that could use the pool is ahead of it (with backfilling, later
    /// jobs may start around waiting ones, so only room counts).
    pub fn quote(&mut self, job: &Job, now: u64) -> Vec<(PoolId, PoolQuote)> {
        let spec = &job.spec;
        let slots = self.empty_slots.entry(spec.task).or_insert_with(|| {
            self.federation.pools().map(|(_, pool)| crate::pools::empty_slots(pool, &spec.task)).collect()
        });
        let slots = slots.clone();
        let mut out = Vec::new();
        let ids: Vec<PoolId> = self.federation.pools().map(|(id, _)| id).collect();
        for id in ids {
            if job.pool.is_some_and(|pinned| pinned != id) {
                out.push((id, PoolQuote::Never("the job names another pool".to_owned())));
                continue;
            }
            let pool = self.federation.pool(id);
            if let Some(reason) = infeasible_reason(&self.federation, pool, spec, |_, _| slots[id.index()]) {
                out.push((id, PoolQuote::Never(reason)));
                continue;
            }
            let accepted = spec.task.accepted_models();
            let first_model = self.books[id.index()].models.iter().copied().find(|m| accepted.contains(*m));
            let model = if spec.task.accelerators().count() == 0 { None } else { first_model };
            let runtime = &self.pools[id.index()];
            let need = spec.total_accelerator_milli();
            let free = runtime.cluster.gpu_milli_capacity() - runtime.cluster.gpu_milli_allocated();
            let waits = if !runtime.healthy {
                Some("the pool is not reporting or not healthy".to_owned())
            } else if !runtime.accepting {
                Some("the pool is drained".to_owned())
            } else if need > 0 && free.saturating_sub(self.held_for_others(id, spec.tenant, now)) < need {
                Some(if free >= need {
                    "its free cards are held for other tenants' contracts".to_owned()
                } else {
                    format!("{:.1} cards are free, it needs {:.1}", free as f64 / 1000.0, need as f64 / 1000.0)
                })
            } else if !self.quick_fit(id, &spec.task, spec.gang_size) || !self.fits_now(id, job) {
                Some("no nodes are free enough for it now".to_owned())
            } else if !self.config.policy.backfill && self.queued_could_use(id) {
                Some("jobs queued ahead of it could use the pool".to_owned())
            } else {
                None
            };
            let model = match (model, &waits) {
                (Some(_), None) => self.trial_model(id, job).or(model),
                _ => model,
            };
            let speed = speed(self.federation.catalog(), spec, model, &self.config.choice);
            out.push((id, PoolQuote::Runs { model, speed, now: waits.is_none(), waits }));
        }
        out
    }

    /// Whether every task of `job` fits `pool`'s nodes now (tried, then rolled back).
    fn fits_now(&mut self, pool: PoolId, job: &Job) -> bool {
        self.trial(pool, job).is_some()
    }

    /// The model of the cards a placement of `job` in `pool` now would get.
    fn trial_model(&mut self, pool: PoolId, job: &Job) -> Option<AcceleratorId> {
        self.trial(pool, job).flatten()
    }

    /// Places `job`'s gang in `pool` and takes it back: `Some(model of the first task)` if it fit.
    fn trial(&mut self, pool: PoolId, job: &Job) -> Option<Option<AcceleratorId>> {
        let task = job.spec.task;
        let mut placed: Vec<Assignment> = Vec::with_capacity(usize::from(job.spec.gang_size));
        let mut fits = true;
        for _ in 0..job.spec.gang_size {
            let runtime = &mut self.pools[pool.index()];
            match runtime.node_policy.select(&runtime.cluster, &runtime.order, &task) {
                Some(assignment) => {
                    self.allocate(pool, assignment, &task);
                    placed.push(assignment);
                }
                None => {
                    fits = false;
                    break;
                }
            }
        }
        let model = placed.first().and_then(|a| self.pools[pool.index()].cluster.node(a.node).model());
        for assignment in placed.into_iter().rev() {
            self.release(pool, assignment, &task);
        }
        fits.then_some(model)
    }

    /// Whether a queued job could use `pool`.
    fn queued_could_use(&self, pool: PoolId) -> bool {
        self.shape_specs
            .iter()
            .enumerate()
            .any(|(shape, (_, _, feasible))| self.shape_queued[shape] > 0 && feasible.contains(&pool))
    }

    /// A running job finished at `now`: its resources are released.
    pub fn finish(&mut self, id: JobId, now: u64) {
        if matches!(self.jobs[id.index()].state, Status::Running { .. }) {
            self.stop(id, now);
            self.jobs[id.index()].state = Status::Finished { end_s: now };
        }
    }

    /// Stops placing jobs on what a preemption in `pool` frees until the stop is confirmed (see
    /// [`PoolRuntime::confirms_stops`]).
    pub fn set_pool_confirms_stops(&mut self, pool: PoolId, confirms: bool) {
        self.pools[pool.index()].confirms_stops = confirms;
    }

    /// Whether `id` was preempted or cancelled and its stop is not confirmed yet.
    pub fn is_stopping(&self, id: JobId) -> bool {
        let r = &self.jobs[id.index()];
        r.stopping_for.is_some() || r.cancelling
    }

    /// A job was cancelled: a queued one leaves the queue; a running one in a pool that confirms
    /// stops keeps its resources until [`Scheduler::stopped`] (true), elsewhere it finishes now.
    pub fn cancel_held(&mut self, id: JobId, now: u64) -> bool {
        if let Status::Running { pool, .. } = &self.jobs[id.index()].state
            && self.pools[pool.index()].confirms_stops
        {
            self.clear_stopping(id);
            self.jobs[id.index()].cancelling = true;
            return true;
        }
        self.cancel(id, now);
        false
    }

    /// A job preempted or cancelled in a pool that confirms stops has stopped there: its
    /// resources are released, and a preempted job waits in the queue again (a cancelled one is
    /// finished). Anything else is left as it is (a repeat, or a job that was never stopping).
    pub fn stopped(&mut self, id: JobId, now: u64) {
        if std::mem::take(&mut self.jobs[id.index()].cancelling) {
            self.finish(id, now);
            return;
        }
        if self.clear_stopping(id) && matches!(self.jobs[id.index()].state, Status::Running { .. }) {
            self.stop(id, now);
            self.jobs[id.index()].state = Status::Queued;
            self.enqueue(id, now);
        }
    }

    /// Forgets that `id` was stopping (its stop was confirmed, or it left its pool otherwise);
    /// whether it was.
    fn clear_stopping(&mut self, id: JobId) -> bool {
        let Some(for_job) = self.jobs[id.index()].stopping_for.take() else { return false };
        if let Some(waiting) = self.waiting_on_stops.get_mut(&for_job) {
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 {
                self.waiting_on_stops.remove(&for_job);
            }
        }
        true
    }

    /// Marks a pool up or down. Going down returns its running jobs to the queue (failover) and
    /// lists them.
    pub fn set_pool_health(&mut self, pool: PoolId, healthy: bool, now: u64) -> Vec<JobId> {
        self.pools[pool.index()].healthy = healthy;
        if healthy {
            return Vec::new();
        }
        let mut victims: Vec<JobId> = self.running_in(pool).collect();
        // Cancelled jobs waiting for their stop are finished, not failed over.
        for &id in &victims {
            if std::mem::take(&mut self.jobs[id.index()].cancelling) {
                self.finish(id, now);
            }
        }
        victims.retain(|&id| matches!(self.jobs[id.index()].state, Status::Running { .. }));
        for &id in &victims {
            self.clear_stopping(id);
            self.stop(id, now);
            self.jobs[id.index()].failovers += 1;
            self.jobs[id.index()].state = Status::Queued;
            self.enqueue(id, now);
        }
        victims
    }

    /// Marks a pool down while its jobs stay where they are: its agent still reports and holds
    /// them, but says the cluster cannot take work (its controller is unreachable, or every node
    /// is drained). Nothing new is placed there until it is marked healthy again.
    pub fn pause_pool(&mut self, pool: PoolId) {
        self.pools[pool.index()].healthy = false;
    }

    /// Stops (or resumes) placing new work in a pool; running jobs continue (a drain).
    pub fn set_pool_accepting(&mut self, pool: PoolId, accepting: bool) {
        self.pools[pool.index()].accepting = accepting;
    }

    /// When the scheduler next needs a pass although nothing else happens: the earliest time a
    /// running `las` job crosses into the lower queue while jobs are waiting.
    pub fn next_wakeup(&self, now: u64) -> Option<u64> {
        if self.config.policy.discipline != Discipline::Las || self.queued() == 0 {
            return None;
        }
        let threshold = self.config.las_threshold_device_s;
        let ages = self
            .starving
            .first()
            .filter(|_| self.config.las_starvation_s > 0)
            .map(|&(began, _)| began.saturating_add(self.config.las_starvation_s));
        self.books
            .iter()
            .flat_map(|b| b.running.iter())
            .filter_map(|&(_, id)| {
                let r = &self.jobs[id.index()];
                let Status::Running { started_s, .. } = r.state else { return None };
                (r.attained_device_s < threshold)
                    .then(|| started_s + (threshold - r.attained_device_s).div_ceil(r.devices))
            })
            .chain(ages)
            .filter(|&t| t > now)
            .min()
    }

    /// `las`: promotes the lower queue's jobs that have waited [`SchedulerConfig::las_starvation_s`]
    /// in all (see there).
    fn age(&mut self, now: u64) {
        let limit = self.config.las_starvation_s;
        if limit == 0 {
            return;
        }
        while let Some(&(began, raw)) = self.starving.first()
            && now.saturating_sub(began) >= limit
        {
            self.starving.pop_first();
            let id = JobId(raw);
            if let Some(key) = self.jobs[id.index()].key.take() {
                self.ordered.remove(&key);
            }
            let r = &mut self.jobs[id.index()];
            r.starve_key = None;
            // As Tiresias does: its attained service starts again, so it queues with the new
            // jobs (by its submission) and no new job preempts it until it has had the
            // threshold's service again; and its waiting too, so it may be promoted again.
            r.attained_device_s = 0;
            r.waited_s = 0;
            r.queued_at_s = now;
            let key = self.key(id);
            self.ordered.insert(key);
            self.jobs[id.index()].key = Some(key);
        }
    }

    /// One scheduling pass at `now`.
    pub fn schedule(&mut self, now: u64) -> Vec<Decision> {
        self.promote(now);
        self.age(now);
        let mut pass = Pass {
            decisions: Vec::new(),
            failed: FxHashSet::default(),
            reservation: None,
            preemption_attempts: 0,
            recheck: true,
        };
        if self.config.policy.discipline == Discipline::Drf {
            self.pass_drf(now, &mut pass);
        } else {
            self.pass_ordered(now, &mut pass);
        }
        pass.decisions
    }

    fn pass_ordered(&mut self, now: u64, pass: &mut Pass) {
        let backfill = self.config.policy.backfill;
        let mut cursor: Option<Key> = None;
        loop {
            if self.nothing_more_fits(pass) {
                break;
            }
            let next = match cursor {
                None => self.ordered.iter().next().copied(),
                Some(c) => self.ordered.range((Bound::Excluded(c), Bound::Unbounded)).next().copied(),
            };
            let Some(key) = next else { break };
            cursor = Some(key);
            let id = JobId(key.2);
            if !self.try_job(id, now, pass) && !backfill {
                break;
            }
        }
    }

    fn pass_drf(&mut self, now: u64, pass: &mut Pass) {
        let backfill = self.config.policy.backfill;
        let mut cursors: Vec<Option<(u64, u32)>> = vec![None; self.tenants];
        let mut exhausted = vec![false; self.tenants];
        loop {
            if self.nothing_more_fits(pass) {
                break;
            }
            let pick = (0..self.tenants)
                .filter(|&t| !exhausted[t])
                .map(|t| (self.share(t), t))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let Some((_, tenant)) = pick else { break };
            let next = match cursors[tenant] {
                None => self.by_tenant[tenant].iter().next().copied(),
                Some(c) => self.by_tenant[tenant].range((Bound::Excluded(c), Bound::Unbounded)).next().copied(),
            };
            let Some(entry) = next else {
                exhausted[tenant] = true;
                continue;
            };
            cursors[tenant] = Some(entry);
            if !self.try_job(JobId(entry.1), now, pass) && !backfill {
                exhausted[tenant] = true;
            }
        }
    }

    /// Whether the pass can stop: every queued shape has failed, or every shape that has not is
    /// hopeless (no healthy pool passes the quick fit check) and no preemption attempt is left to
    /// make room. Checked again only after something failed (starts only consume capacity).
    fn nothing_more_fits(&self, pass: &mut Pass) -> bool {
        if pass.failed.len() >= self.shapes_queued_distinct {
            return true;
        }
        if !pass.recheck {
            return false;
        }
        pass.recheck = false;
        if self.config.policy.discipline.preempts() && pass.preemption_attempts < limits::PREEMPTION_ATTEMPTS_PER_PASS {
            return false;
        }
        let hopeless = self.shape_specs.iter().enumerate().all(|(shape, (task, gang, feasible))| {
            self.shape_queued[shape] == 0
                || pass.failed.contains(&(shape as u32))
                || !feasible.iter().any(|&p| {
                    self.pools[p.index()].healthy
                        && (self.quick_fit(p, task, *gang) || self.handoff_room(p, task, *gang))
                })
        });
        if hopeless {
            pass.failed.extend((0..self.shape_specs.len() as u32).filter(|&s| self.shape_queued[s as usize] > 0));
        }
        hopeless
    }

    /// Tries to start one queued job (with backfilling and preemption rules); true if it started.
    fn try_job(&mut self, id: JobId, now: u64, pass: &mut Pass) -> bool {
        let shape = self.jobs[id.index()].shape;
        if pass.failed.contains(&shape) {
            return false;
        }
        if let Some(reservation) = &pass.reservation
            && !self.respects(id, now, reservation)
        {
            return false;
        }
        if let Some((pool, assignments, explanation)) = self.place(id, now) {
            self.start(id, pool, assignments, now);
            if let Some(reservation) = &mut pass.reservation
                && reservation.pool == pool
                && !ends_before(self, id, now, reservation.shadow_s)
            {
                reservation.extra_milli -= self.job_milli(id) as i64;
            }
            pass.decisions.push(Decision::Start { job: id, pool, explanation });
            return true;
        }
        // A job whose victims are still stopping waits for them rather than choosing more.
        if self.config.policy.discipline.preempts()
            && pass.preemption_attempts < limits::PREEMPTION_ATTEMPTS_PER_PASS
            && !self.waiting_on_stops.contains_key(&id)
        {
            pass.preemption_attempts += 1;
            if let Some(victims) = self.preemption_plan(id, now) {
                let mut stopping = 0;
                for victim in victims {
                    let confirms = match &self.jobs[victim.index()].state {
                        Status::Running { pool, .. } => self.pools[pool.index()].confirms_stops,
                        _ => false,
                    };
                    if confirms {
                        // It holds its resources until its stop is confirmed (`stopped`).
                        let r = &mut self.jobs[victim.index()];
                        r.preemptions += 1;
                        r.stopping_for = Some(id);
                        stopping += 1;
                    } else {
                        self.stop(victim, now);
                        let r = &mut self.jobs[victim.index()];
                        r.preemptions += 1;
                        r.state = Status::Queued;
                        self.enqueue(victim, now);
                    }
                    pass.decisions.push(Decision::Preempt { job: victim, for_job: id });
                }
                if stopping > 0 {
                    *self.waiting_on_stops.entry(id).or_insert(0) += stopping;
                } else if let Some((pool, assignments, explanation)) = self.place(id, now) {
                    self.start(id, pool, assignments, now);
                    pass.decisions.push(Decision::Start { job: id, pool, explanation });
                    return true;
                }
            }
        }
        // Nowhere to start now and no preemption to make room (tried, where the discipline
        // preempts): a cluster's own queue may take it.
        let preemption_tried = !self.config.policy.discipline.preempts()
            || pass.preemption_attempts < limits::PREEMPTION_ATTEMPTS_PER_PASS;
        if preemption_tried
            && !self.waiting_on_stops.contains_key(&id)
            && let Some((pool, assignments, explanation)) = self.hand_off(id, now)
        {
            self.start_handed(id, pool, assignments, now);
            pass.decisions.push(Decision::Start { job: id, pool, explanation });
            return true;
        }
        // With holds, the same shape may fit for another tenant: do not rule the shape out.
        if self.holds.iter().all(Vec::is_empty) {
            pass.failed.insert(shape);
        }
        pass.recheck = true;
        // A job kept out only by contracts' holds gets no backfill reservation: the holds, not
        // running jobs, decide when it can start, and others may use the unheld capacity.
        if self.config.policy.backfill && pass.reservation.is_none() && !self.held_back {
            pass.reservation = self.reservation_for(id, now);
        }
        false
    }

    /// Chooses a pool and places every task there, or changes nothing.
    fn place(&mut self, id: JobId, now: u64) -> Option<(PoolId, Vec<Assignment>, String)> {
        let record = &self.jobs[id.index()];
        let spec = &record.job.spec;
        let green = record.job.green;
        let request = spec.task.accelerators();
        // (cost, carbon, free capacity, pool)
        let mut candidates: Vec<(f64, f64, u64, PoolId)> = Vec::new();
        self.held_back = false;
        for &pool_id in &record.feasible {
            let runtime = &self.pools[pool_id.index()];
            if !runtime.healthy || !runtime.accepting || !self.quick_fit(pool_id, &spec.task, spec.gang_size) {
                continue;
            }
            let need = u64::from(request.total_milli()) * u64::from(spec.gang_size);
            let free = runtime.cluster.gpu_milli_capacity() - runtime.cluster.gpu_milli_allocated();
            if need > 0 && free.saturating_sub(self.held_for_others(pool_id, spec.tenant, now)) < need {
                self.held_back = true;
                continue;
            }
            let model =
                self.books[pool_id.index()].models.iter().copied().find(|m| spec.task.accepted_models().contains(*m));
            let model = if request.count() == 0 { None } else { model };
            let pool = self.federation.pool(pool_id);
            let estimate = estimate(&self.federation, pool, spec, model, &self.config.choice);
            let free = runtime.cluster.gpu_milli_capacity() - runtime.cluster.gpu_milli_allocated();
            candidates.push((estimate.total_fen, estimate.carbon_kg, free, pool_id));
        }
        let by_cost = |a: &(f64, f64, u64, PoolId), b: &(f64, f64, u64, PoolId)| {
            a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3))
        };
        candidates.sort_by(by_cost);
        let green_premium = green.then_some(self.config.choice.green_premium_pct);
        if let (Some(premium), Some(cheapest)) = (green_premium, candidates.first().map(|c| c.0)) {
            // Within the premium: least carbon first; the rest stay by cost after them.
            let limit = cheapest * (1.0 + premium / 100.0);
            let split = candidates.partition_point(|c| c.0 <= limit);
            candidates[..split].sort_by(|a, b| a.1.total_cmp(&b.1).then(by_cost(a, b)));
        }
        let feasible = record.feasible.len();
        let count = candidates.len();
        for (_, _, _, pool_id) in candidates {
            if let Some(assignments) = self.place_gang(pool_id, id) {
                let spec = &self.jobs[id.index()].job.spec;
                let model = assignments.first().and_then(|a| self.pools[pool_id.index()].cluster.node(a.node).model());
                let pool = self.federation.pool(pool_id);
                let est = estimate(&self.federation, pool, spec, model, &self.config.choice);
                let mut explanation = format!(
                    "{}: {}",
                    pool.name,
                    explain(&self.federation, pool, spec, &est, feasible, count, green_premium)
                );
                let left_out = &self.shape_left_out[self.jobs[id.index()].shape as usize];
                if !left_out.is_empty() {
                    explanation.push_str("; ");
                    explanation.push_str(left_out);
                }
                return Some((pool_id, assignments, explanation));
            }
        }
        None
    }

    /// Places every task of `id` in the own queue of its cheapest feasible pool that has one
    /// with room (healthy, accepting, no contract holding capacity for others), or changes
    /// nothing.
    fn hand_off(&mut self, id: JobId, now: u64) -> Option<(PoolId, Vec<Assignment>, String)> {
        let record = &self.jobs[id.index()];
        let spec = &record.job.spec;
        let mut candidates: Vec<(f64, PoolId)> = Vec::new();
        for &pool_id in &record.feasible {
            let runtime = &self.pools[pool_id.index()];
            if !runtime.healthy
                || !runtime.accepting
                || !self.handoff_room(pool_id, &spec.task, spec.gang_size)
                || self.held_for_others(pool_id, spec.tenant, now) > 0
            {
                continue;
            }
            let model =
                self.books[pool_id.index()].models.iter().copied().find(|m| spec.task.accepted_models().contains(*m));
            let model = if spec.task.accelerators().count() == 0 { None } else { model };
            let pool = self.federation.pool(pool_id);
            candidates.push((estimate(&self.federation, pool, spec, model, &self.config.choice).total_fen, pool_id));
        }
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (_, pool_id) in candidates {
            if let Some(placed) = self.hand_into(pool_id, id) {
                let name = &self.federation.pool(pool_id).name;
                let explanation = format!(
                    "{name}: no pool has room for it now, so it waits in {name}'s own queue, which starts it as soon as something there ends"
                );
                return Some((pool_id, placed, explanation));
            }
        }
        None
    }

    /// Places every task of `id` in `pool`'s own queue, or changes nothing.
    fn hand_into(&mut self, pool: PoolId, id: JobId) -> Option<Vec<Assignment>> {
        let task = self.jobs[id.index()].job.spec.task;
        let gang = self.jobs[id.index()].job.spec.gang_size;
        let runtime = &mut self.pools[pool.index()];
        let (cluster, order) = runtime.handoff.as_mut()?;
        let mut placed: Vec<Assignment> = Vec::with_capacity(usize::from(gang));
        for _ in 0..gang {
            match runtime.node_policy.select(cluster, order, &task) {
                Some(assignment) => {
                    cluster.allocate(assignment, &task).expect("node policies only return assignments that fit");
                    placed.push(assignment);
                }
                None => break,
            }
        }
        if placed.len() == usize::from(gang) {
            return Some(placed);
        }
        for assignment in placed.into_iter().rev() {
            cluster.release(assignment, &task).expect("just allocated");
        }
        None
    }

    /// Starts `id` as handed to `pool`'s own queue.
    fn start_handed(&mut self, id: JobId, pool: PoolId, assignments: Vec<Assignment>, now: u64) {
        self.start(id, pool, assignments, now);
        self.jobs[id.index()].handed = true;
        let key = (now, id);
        let book = &mut self.books[pool.index()];
        book.running.remove(&key);
        book.handed.insert(key);
    }

    /// Whether a pool's own queue has room for a gang of `task` (a necessary condition).
    fn handoff_room(&self, pool: PoolId, task: &TaskSpec, gang: u16) -> bool {
        let Some((cluster, _)) = &self.pools[pool.index()].handoff else { return false };
        let free_milli = cluster.gpu_milli_capacity() - cluster.gpu_milli_allocated();
        u64::from(task.accelerators().total_milli()) * u64::from(gang) <= free_milli
    }

    /// Moves jobs waiting in pools' own queues onto the nodes, oldest first, as far as they fit
    /// now: the cluster starts them before anything placed later. Not while a job waits for
    /// its victims to stop (the room their stop makes is its).
    fn promote(&mut self, now: u64) {
        if !self.waiting_on_stops.is_empty() {
            return;
        }
        for p in 0..self.pools.len() {
            if self.books[p].handed.is_empty() {
                continue;
            }
            let pool = PoolId::from_index(p);
            let waiting: Vec<(u64, JobId)> = self.books[p].handed.iter().copied().collect();
            for (handed_s, id) in waiting {
                if self.is_stopping(id) {
                    continue; // cancelled: it leaves the queue when its stop is confirmed
                }
                let spec = &self.jobs[id.index()].job.spec;
                let (task, gang) = (spec.task, spec.gang_size);
                if !self.quick_fit(pool, &task, gang) {
                    continue;
                }
                let Some(assignments) = self.place_gang(pool, id) else { continue };
                let Status::Running { assignments: queued, .. } = std::mem::replace(
                    &mut self.jobs[id.index()].state,
                    Status::Running { pool, assignments, started_s: now },
                ) else {
                    unreachable!("a handed job is running in its pool")
                };
                if let Some((cluster, _)) = self.pools[p].handoff.as_mut() {
                    for assignment in queued.into_iter().rev() {
                        cluster.release(assignment, &task).expect("a handed job's place is released once");
                    }
                }
                self.jobs[id.index()].handed = false;
                self.books[p].handed.remove(&(handed_s, id));
                self.books[p].running.insert((now, id));
            }
        }
    }

    /// Necessary condition for a gang to fit a pool now: enough fully free (or, for fractional
    /// tasks, any) devices on whole nodes, and enough free accelerator capacity.
    fn quick_fit(&self, pool: PoolId, task: &TaskSpec, gang: u16) -> bool {
        let request = task.accelerators();
        let cluster = &self.pools[pool.index()].cluster;
        let free_milli = cluster.gpu_milli_capacity() - cluster.gpu_milli_allocated();
        if u64::from(request.total_milli()) * u64::from(gang) > free_milli {
            return false;
        }
        if request.count() == 0 || request.is_fractional() {
            return true;
        }
        let per_task = usize::from(request.count());
        let hosts: u64 = self.books[pool.index()]
            .free_hist
            .iter()
            .enumerate()
            .map(|(free, &n)| u64::from(n) * (free / per_task) as u64)
            .sum();
        hosts >= u64::from(gang)
    }

    fn place_gang(&mut self, pool_id: PoolId, id: JobId) -> Option<Vec<Assignment>> {
        let task = self.jobs[id.index()].job.spec.task;
        let gang = self.jobs[id.index()].job.spec.gang_size;
        let mut placed: Vec<Assignment> = Vec::with_capacity(usize::from(gang));
        for _ in 0..gang {
            let runtime = &mut self.pools[pool_id.index()];
            match runtime.node_policy.select(&runtime.cluster, &runtime.order, &task) {
                Some(assignment) => {
                    self.allocate(pool_id, assignment, &task);
                    placed.push(assignment);
                }
                None => {
                    for assignment in placed.into_iter().rev() {
                        self.release(pool_id, assignment, &task);
                    }
                    return None;
                }
            }
        }
        Some(placed)
    }

    fn allocate(&mut self, pool: PoolId, assignment: Assignment, task: &TaskSpec) {
        let runtime = &mut self.pools[pool.index()];
        let before = runtime.cluster.node(assignment.node).fully_free_devices().min(16);
        runtime.cluster.allocate(assignment, task).expect("node policies only return assignments that fit");
        let after = runtime.cluster.node(assignment.node).fully_free_devices().min(16);
        let hist = &mut self.books[pool.index()].free_hist;
        hist[before] -= 1;
        hist[after] += 1;
    }

    fn release(&mut self, pool: PoolId, assignment: Assignment, task: &TaskSpec) {
        let runtime = &mut self.pools[pool.index()];
        let before = runtime.cluster.node(assignment.node).fully_free_devices().min(16);
        runtime.cluster.release(assignment, task).expect("a running task's resources are released once");
        let after = runtime.cluster.node(assignment.node).fully_free_devices().min(16);
        let hist = &mut self.books[pool.index()].free_hist;
        hist[before] -= 1;
        hist[after] += 1;
    }

    fn start(&mut self, id: JobId, pool: PoolId, assignments: Vec<Assignment>, now: u64) {
        self.dequeue(id, now);
        let usage = self.resources(id);
        let tenant = self.jobs[id.index()].job.spec.tenant as usize;
        for (u, add) in self.usage[tenant].iter_mut().zip(usage) {
            *u += add;
        }
        self.books[pool.index()].running.insert((now, id));
        self.jobs[id.index()].state = Status::Running { pool, assignments, started_s: now };
    }

    /// Stops a running job: releases its resources and accrues its service. The caller sets the
    /// next state.
    fn stop(&mut self, id: JobId, now: u64) {
        let Status::Running { pool, assignments, started_s } =
            std::mem::replace(&mut self.jobs[id.index()].state, Status::Queued)
        else {
            return;
        };
        let task = self.jobs[id.index()].job.spec.task;
        let handed = std::mem::take(&mut self.jobs[id.index()].handed);
        if handed {
            // It waited in the pool's own queue: it held a place there, and attained nothing.
            if let Some((cluster, _)) = self.pools[pool.index()].handoff.as_mut() {
                for assignment in assignments.into_iter().rev() {
                    cluster.release(assignment, &task).expect("a handed job's place is released once");
                }
            }
            self.books[pool.index()].handed.remove(&(started_s, id));
        } else {
            for assignment in assignments.into_iter().rev() {
                self.release(pool, assignment, &task);
            }
            self.books[pool.index()].running.remove(&(started_s, id));
        }
        let usage = self.resources(id);
        let tenant = self.jobs[id.index()].job.spec.tenant as usize;
        for (u, sub) in self.usage[tenant].iter_mut().zip(usage) {
            *u -= sub;
        }
        if !handed {
            let r = &mut self.jobs[id.index()];
            r.attained_device_s += r.devices * now.saturating_sub(started_s);
        }
    }

    fn resources(&self, id: JobId) -> [u64; 3] {
        let spec = &self.jobs[id.index()].job.spec;
        let gang = u64::from(spec.gang_size);
        [
            u64::from(spec.task.accelerators().total_milli()) * gang,
            u64::from(spec.task.cpu_milli()) * gang,
            u64::from(spec.task.memory_mib()) * gang,
        ]
    }

    fn job_milli(&self, id: JobId) -> u64 {
        self.resources(id)[0]
    }

    /// Weighted dominant share of a tenant.
    fn share(&self, tenant: usize) -> f64 {
        let dominant = (0..3)
            .filter(|&r| self.capacity[r] > 0)
            .map(|r| self.usage[tenant][r] as f64 / self.capacity[r] as f64)
            .fold(0.0, f64::max);
        let weight = self.config.tenant_weights.get(tenant).copied().filter(|w| *w > 0.0).unwrap_or(1.0);
        dominant / weight
    }

    /// A job's rank for preemption and LAS ordering: lower is more important.
    fn rank(&self, id: JobId, now: u64) -> i64 {
        let r = &self.jobs[id.index()];
        match self.config.policy.discipline {
            Discipline::Las => i64::from(self.attained(id, now) >= self.config.las_threshold_device_s),
            Discipline::Priority => -i64::from(r.job.spec.priority),
            _ => 0,
        }
    }

    fn attained(&self, id: JobId, now: u64) -> u64 {
        let r = &self.jobs[id.index()];
        match r.state {
            Status::Running { started_s, .. } => r.attained_device_s + r.devices * now.saturating_sub(started_s),
            _ => r.attained_device_s,
        }
    }

    fn key(&self, id: JobId) -> Key {
        let r = &self.jobs[id.index()];
        let submit = r.job.submit_s as i64;
        match self.config.policy.discipline {
            Discipline::Fifo | Discipline::Drf => (submit, 0, id.0),
            Discipline::Priority => (-i64::from(r.job.spec.priority), submit, id.0),
            Discipline::Sjf => (r.job.oracle_duration_s.unwrap_or(u64::MAX / 2) as i64, submit, id.0),
            Discipline::Las => (i64::from(r.attained_device_s >= self.config.las_threshold_device_s), submit, id.0),
        }
    }

    fn enqueue(&mut self, id: JobId, now: u64) {
        self.jobs[id.index()].queued_at_s = now;
        if self.config.policy.discipline == Discipline::Las && self.config.las_starvation_s > 0 {
            let r = &mut self.jobs[id.index()];
            if r.attained_device_s >= self.config.las_threshold_device_s {
                let key = (now.saturating_sub(r.waited_s), id.0);
                r.starve_key = Some(key);
                self.starving.insert(key);
            }
        }
        let shape = self.jobs[id.index()].shape as usize;
        if self.shape_queued[shape] == 0 {
            self.shapes_queued_distinct += 1;
        }
        self.shape_queued[shape] += 1;
        if self.config.policy.discipline == Discipline::Drf {
            let r = &self.jobs[id.index()];
            self.by_tenant[r.job.spec.tenant as usize].insert((r.job.submit_s, id.0));
        } else {
            let key = self.key(id);
            self.ordered.insert(key);
            self.jobs[id.index()].key = Some(key);
        }
    }

    fn dequeue(&mut self, id: JobId, now: u64) {
        let r = &mut self.jobs[id.index()];
        r.waited_s += now.saturating_sub(r.queued_at_s);
        if let Some(key) = r.starve_key.take() {
            self.starving.remove(&key);
        }
        let shape = self.jobs[id.index()].shape as usize;
        self.shape_queued[shape] -= 1;
        if self.shape_queued[shape] == 0 {
            self.shapes_queued_distinct -= 1;
        }
        if self.config.policy.discipline == Discipline::Drf {
            let r = &self.jobs[id.index()];
            self.by_tenant[r.job.spec.tenant as usize].remove(&(r.job.submit_s, id.0));
        } else if let Some(key) = self.jobs[id.index()].key.take() {
            self.ordered.remove(&key);
        }
    }

    /// Victims whose preemption lets `id` start in one of its pools; `None` when there are none.
    /// Candidates are running preemptible jobs of lower rank, longest-running first (for `las` they
    /// have received the most service); a trial on a copy of the pool adds them one at a time
    /// until the gang's task slots suffice.
    fn preemption_plan(&self, id: JobId, now: u64) -> Option<Vec<JobId>> {
        let rank = self.rank(id, now);
        if self.config.policy.discipline == Discipline::Las && rank >= 1 {
            return None; // the lower queue outranks nobody
        }
        let task = self.jobs[id.index()].job.spec.task;
        let gang = u64::from(self.jobs[id.index()].job.spec.gang_size);
        for &pool in &self.jobs[id.index()].feasible {
            if !self.pools[pool.index()].healthy {
                continue;
            }
            // Touched nodes as they would be; slots counts the job's task slots over the pool.
            // A single task failed to fit anywhere, so its count starts at zero without a scan.
            let mut touched: Vec<(NodeIdx, NodeState)> = Vec::new();
            let mut slots: Option<u64> = None;
            let mut chosen = Vec::new();
            let candidates = self.books[pool.index()]
                .running
                .iter()
                .take(limits::VICTIM_CANDIDATES_PER_POOL)
                .map(|&(_, v)| v)
                .filter(|&v| {
                    let r = &self.jobs[v.index()];
                    r.preemptible && r.stopping_for.is_none() && !r.cancelling && self.rank(v, now) > rank
                });
            let cluster = &self.pools[pool.index()].cluster;
            for victim in candidates {
                let total = slots.get_or_insert_with(|| {
                    if gang == 1 {
                        0
                    } else {
                        cluster.nodes().iter().fold(0u64, |t, n| t.saturating_add(task_slots(n, &task)))
                    }
                });
                let Status::Running { assignments, .. } = &self.jobs[victim.index()].state else { continue };
                let victim_task = self.jobs[victim.index()].job.spec.task;
                for &a in assignments {
                    let position = touched.iter().position(|(n, _)| *n == a.node).unwrap_or_else(|| {
                        touched.push((a.node, cluster.node(a.node).clone()));
                        touched.len() - 1
                    });
                    let node = &mut touched[position].1;
                    let before = task_slots(node, &task);
                    *node = node.released(a.devices, &victim_task).ok()?;
                    *total = total.saturating_sub(before).saturating_add(task_slots(node, &task));
                }
                chosen.push(victim);
                if *total >= gang {
                    return Some(chosen);
                }
            }
        }
        None
    }

    /// EASY reservation for a blocked job: in its best pool, the time at which running jobs'
    /// estimated ends free enough accelerator capacity, and what is left over then. `None` when a
    /// running job there has no estimate.
    fn reservation_for(&self, id: JobId, now: u64) -> Option<Reservation> {
        let need = self.job_milli(id) as i64;
        let mut best: Option<Reservation> = None;
        for &pool in &self.jobs[id.index()].feasible {
            let runtime = &self.pools[pool.index()];
            if !runtime.healthy {
                continue;
            }
            let mut free = (runtime.cluster.gpu_milli_capacity() - runtime.cluster.gpu_milli_allocated()) as i64;
            let mut ends = Vec::new();
            for &(_, r) in &self.books[pool.index()].running {
                ends.push((self.estimated_end(r, now)?, self.job_milli(r) as i64));
            }
            ends.sort();
            let mut shadow = now;
            for (end, milli) in ends {
                if free >= need {
                    break;
                }
                free += milli;
                shadow = end;
            }
            if free < need {
                continue;
            }
            if best.as_ref().is_none_or(|b| shadow < b.shadow_s) {
                best = Some(Reservation { pool, shadow_s: shadow, extra_milli: free - need });
            }
        }
        best
    }

    fn estimated_end(&self, id: JobId, now: u64) -> Option<u64> {
        let r = &self.jobs[id.index()];
        let Status::Running { pool, assignments, started_s } = &r.state else { return None };
        let estimate = r.job.spec.runtime_estimate_s?;
        let model = assignments
            .first()
            .and_then(|a| self.pools[pool.index()].cluster.node(a.node).model())
            .filter(|_| r.job.spec.task.accelerators().count() > 0);
        let runtime = estimate as f64 / speed(self.federation.catalog(), &r.job.spec, model, &self.config.choice);
        Some((*started_s + runtime.ceil() as u64).max(now))
    }

    /// Whether starting `id` now keeps the reservation: it ends before the shadow time, or fits in
    /// what is left over then, or (by its estimate) cannot use the reserved pool anyway.
    fn respects(&self, id: JobId, now: u64, reservation: &Reservation) -> bool {
        if !self.jobs[id.index()].feasible.contains(&reservation.pool) {
            return true;
        }
        ends_before(self, id, now, reservation.shadow_s) || self.job_milli(id) as i64 <= reservation.extra_milli
    }
}

fn ends_before(scheduler: &Scheduler, id: JobId, now: u64, shadow: u64) -> bool {
    scheduler.jobs[id.index()].job.spec.runtime_estimate_s.is_some_and(|e| now + e <= shadow)
}

struct Pass {
    decisions: Vec<Decision>,
    failed: FxHashSet<u32>,
    reservation: Option<Reservation>,
    preemption_attempts: usize,
    /// Something failed since the last hopelessness check.
    recheck: bool,
}

struct Reservation {
    pool: PoolId,
    shadow_s: u64,
    extra_milli: i64,
}

/// How many copies of `task` a node could host now (whole-device tasks need fully free devices;
/// CPU, memory and the model count too). Copies of one shape on one node never conflict beyond
/// these counts, so a gang fits a cluster exactly when the nodes' copies add up to its size.
fn task_slots(node: &NodeState, task: &TaskSpec) -> u64 {
    if !node.accessible(task) {
        return 0;
    }
    let request = task.accelerators();
    let by = |free: u32, need: u32| free.checked_div(need).map_or(u64::MAX, u64::from);
    let devices = match request.count() {
        0 => u64::MAX,
        _ if request.is_fractional() => {
            node.device_free_milli().iter().map(|&f| u64::from(f / request.milli_per_device())).sum::<u64>()
        }
        count => (node.fully_free_devices() / usize::from(count)) as u64,
    };
    devices.min(by(node.cpu_milli_free(), task.cpu_milli())).min(by(node.memory_mib_free(), task.memory_mib()))
}
