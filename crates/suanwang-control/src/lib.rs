//! The control plane: everything the platform does that is not HTTP. The server
//! (`suanwang-server`) puts HTTP in front of it; in-process agents and the dashboard call it
//! directly, so every path goes through the same operations and the same access policy.
//!
//! - [`access`]: the one access policy (role × action), asked by every operation.
//! - [`auth`]: tokens (hashed at rest) and the [`auth::Caller`] a token names.
//! - [`quota`]: request rates per token and quotas per tenant.
//! - [`jobs`]: submit (with [`fit`]: framework, models, speeds, and a refusal for a job no pool
//!   could ever run), list, show, cancel, logs, explanations.
//! - [`agents`]: the agent protocol: heartbeats, work, state (runs are metered by [`metering`]
//!   from the platform's own record), logs, usage evidence.
//! - [`admin`]: tenants, tokens, pools (drain), sites, links, the audit log.
//! - [`apps`]: applications (templates) and data sets.
//! - [`money`], [`market`], [`books`]: the biller, balances, invoices, programmes, vouchers; the
//!   market, auctions and quotes; the books kept equal to the store's history.
//! - [`scheduler`]: the scheduler task (the same `suanwang_sched::Scheduler` the simulator
//!   drives), leader election, failover; [`committer`]: group commit.
//! - [`metrics`], [`history`], [`sims`]: what operators watch and planners run.
//! - [`clock`]: the injected clock; [`config`]: settings; [`error`]: the one error type.

pub mod access;
pub mod admin;
pub mod agents;
pub mod apps;
pub mod auth;
pub mod books;
pub mod clock;
pub mod committer;
pub mod config;
pub mod error;
pub mod fit;
pub mod history;
pub mod jobs;
pub mod market;
pub mod metering;
pub mod metrics;
pub mod money;
pub mod quota;
pub mod scheduler;
pub mod sims;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use suanwang_agent::backend::Backend;
use suanwang_agent::protocol::{Platform, PlatformError};
use suanwang_agent::run::AgentConfig;
use suanwang_api::agent::{Capacity, Heartbeat, LogBatch, LogChunk, StateReport, UsageReport, Work, WorkQuery};
use suanwang_model::catalog::AdaptationMatrix;
use suanwang_model::federation::Federation;
use suanwang_model::platform::Role;
use suanwang_store::model::Write;
use suanwang_store::store::Store;
use tokio::sync::{mpsc, watch};

use crate::auth::{Caller, TokenCache, hash_token};
use crate::clock::{Clock, SystemClock};
use crate::committer::Committer;
use crate::config::ControlConfig;
use crate::error::Error;
use crate::scheduler::SchedulerMsg;

/// Everything the control plane shares.
pub struct Inner {
    /// Persistence.
    pub store: Store,
    /// Durable, grouped writes.
    pub committer: Committer,
    /// Sites, links and pools.
    pub federation: Federation,
    /// Which frameworks run on which software stacks.
    pub adaptation: AdaptationMatrix,
    /// Remembered token lookups.
    pub tokens: TokenCache,
    /// Request budgets per token and remembered quotas.
    pub limits: quota::Limiter,
    /// The scheduler task's mailbox.
    pub scheduler: mpsc::Sender<SchedulerMsg>,
    /// Settings.
    pub config: ControlConfig,
    /// Whether this server's scheduler task holds the leader's role.
    pub leader: AtomicBool,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// The books (the ledger and the money rules' state).
    pub books: books::BooksState,
    /// Where the biller has read usage up to.
    pub biller: money::BillerState,
    /// Utilisation and queue samples for the dashboard.
    pub history: history::History,
    /// Simulation runs (in memory).
    pub simulations: sims::Simulations,
    /// The capacity each pool's agent last reported from its cluster (Slurm agents do), by pool
    /// name. In memory: the agent repeats it with every heartbeat.
    pub reported: std::sync::Mutex<std::collections::HashMap<String, Capacity>>,
    /// Why each pool cannot take work, as its agent last said, by pool name (in memory: the
    /// agent repeats it with every heartbeat).
    pub problems: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// When each pool's agent last fetched its work (ms), by pool name: a preempted job's stop is
    /// confirmed only by a heartbeat after a fetch that told the agent to stop it.
    pub work_fetched_ms: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Per pool, the version of its work that agents wait on.
    pub work_signals: agents::WorkSignals,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

/// A cheap handle to the control plane.
#[derive(Clone)]
pub struct Control(pub Arc<Inner>);

impl Deref for Control {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Control {
    /// Milliseconds since 1970, UTC, by the control plane's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Whether this server schedules (leads).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }
}

/// The control plane with its committer, scheduler task, biller, auctioneer and sampler started,
/// on the wall clock.
pub fn start(store: Store, federation: Federation, config: ControlConfig) -> Control {
    start_with_clock(store, federation, config, Arc::new(SystemClock))
}

/// [`start`] with another clock.
pub fn start_with_clock(store: Store, federation: Federation, config: ControlConfig, clock: Arc<dyn Clock>) -> Control {
    let committer = Committer::start(store.clone(), Arc::clone(&clock));
    let (scheduler, mailbox) = mpsc::channel(scheduler::MAILBOX_MAX);
    let pools = federation.pool_count();
    let control = Control(Arc::new(Inner {
        store,
        committer,
        federation,
        adaptation: suanwang_formats::catalog::builtin_adaptation(),
        tokens: TokenCache::default(),
        limits: quota::Limiter::default(),
        scheduler,
        config,
        leader: AtomicBool::new(false),
        metrics: metrics::Metrics::new(),
        books: books::BooksState::default(),
        biller: money::BillerState::default(),
        history: history::History::default(),
        simulations: sims::Simulations::default(),
        reported: std::sync::Mutex::default(),
        problems: std::sync::Mutex::default(),
        work_fetched_ms: std::sync::Mutex::default(),
        work_signals: agents::WorkSignals::new(pools),
        clock,
    }));
    tokio::spawn(scheduler::run(control.clone(), mailbox));
    tokio::spawn(money::run_biller(control.clone()));
    tokio::spawn(market::run_auctions(control.clone()));
    tokio::spawn(history::run(control.clone()));
    control
}

/// An in-process agent's view of the platform: the same operations the HTTP handlers call.
pub struct InProcess {
    control: Control,
    caller: Caller,
}

impl InProcess {
    /// The platform as `pool`'s agent sees it.
    pub fn new(control: Control, pool: &str) -> Self {
        InProcess { control, caller: Caller::agent_of(pool) }
    }
}

fn platform_error(e: Error) -> PlatformError {
    PlatformError { code: e.code.to_owned(), message: e.message }
}

impl Platform for InProcess {
    async fn heartbeat(&self, heartbeat: Heartbeat) -> Result<(), PlatformError> {
        agents::heartbeat(&self.control, &self.caller, heartbeat).await.map_err(platform_error)
    }

    async fn work(&self) -> Result<Work, PlatformError> {
        agents::work(&self.control, &self.caller, WorkQuery::default()).await.map_err(platform_error)
    }

    async fn report_state(&self, job_id: i64, report: StateReport) -> Result<(), PlatformError> {
        agents::report_state(&self.control, &self.caller, job_id, report).await.map_err(platform_error)
    }

    async fn report_log(&self, job_id: i64, chunk: LogChunk) -> Result<(), PlatformError> {
        agents::report_log(&self.control, &self.caller, job_id, chunk).await.map_err(platform_error)
    }

    async fn report_logs(&self, job_id: i64, chunks: Vec<LogChunk>) -> Result<(), PlatformError> {
        agents::report_logs(&self.control, &self.caller, job_id, LogBatch { chunks }).await.map_err(platform_error)
    }

    async fn report_usage(&self, usage: UsageReport) -> Result<(), PlatformError> {
        agents::report_usage(&self.control, &self.caller, usage).await.map(|_| ()).map_err(platform_error)
    }

    async fn wait_for_work(&self, after: u64, wait: std::time::Duration) -> Result<u64, PlatformError> {
        let query = WorkQuery { wait_s: Some(wait.as_secs().clamp(1, agents::WORK_WAIT_MAX_S)), after: Some(after) };
        agents::work(&self.control, &self.caller, query).await.map(|w| w.version).map_err(platform_error)
    }
}

/// Starts an in-process agent for every pool in `agents`.
pub fn start_agents(control: &Control, agents: &[(String, Backend)], shutdown: &watch::Receiver<bool>) {
    for (pool, backend) in agents {
        let platform = Arc::new(InProcess::new(control.clone(), pool));
        let config = AgentConfig {
            backend: *backend,
            poll: scheduler::IN_PROCESS_POLL,
            isolation: Arc::clone(&control.config.isolation),
        };
        tokio::spawn(suanwang_agent::run::run(platform, config, shutdown.clone()));
    }
}

/// Creates the operator token `token` unless the platform already has tokens.
pub async fn bootstrap(control: &Control, token: &str) -> Result<bool, Error> {
    if control.store.token_count().await? > 0 {
        return Ok(false);
    }
    let write = Write::CreateToken {
        hash: hash_token(token),
        role: Role::Operator,
        tenant_id: None,
        pool: None,
        label: "bootstrap operator".to_owned(),
        expires_ms: None,
    };
    control.committer.write("bootstrap", write).await?;
    Ok(true)
}
