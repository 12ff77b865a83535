//! How the control plane behaves: timeouts, intervals, the queue policy, and the defaults a job
//! gets where its body is silent.

use std::time::Duration;

use suanwang_sched::pools::ChoiceConfig;

/// Dense FP16 TFLOPS of the reference card that estimates and speeds are measured against: an
/// A100/A800-class card, the most common training card in the region's pools.
pub const REFERENCE_TFLOPS: f64 = 312.0;

/// How the control plane behaves.
#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// A pool whose agent has not reported for this long is unhealthy: nothing new is placed
    /// there. The jobs of a pool whose agent runs them itself (`local`, `sim`) fail over now.
    pub heartbeat_timeout: Duration,
    /// The jobs of a cluster pool (`slurm`, `kubernetes`) fail over only after its agent has been
    /// silent this long: the cluster runs them without the agent, so a restarted or cut-off
    /// agent finds them there rather than have them run twice.
    pub cluster_failover_timeout: Duration,
    /// Time between scheduling passes when nothing else wakes the scheduler.
    pub tick: Duration,
    /// The queue policy.
    pub policy: suanwang_sched::policy::QueuePolicy,
    /// Pool choice: the reference card for speeds (a job's estimate is on it), the default
    /// run time for jobs without an estimate, green preference.
    pub choice: ChoiceConfig,
    /// The framework a job that needs cards is taken to run when it names neither a framework
    /// nor accelerator models nor a pool (`None`: any card will do).
    pub default_framework: Option<String>,
    /// The time limit of a run when the job gives none (the platform bills no run for longer).
    pub time_limit_default: Duration,
    /// After a start, the scheduler waits this long for every pool's agent to report before it
    /// places work, so the first jobs are not all sent to whichever pool reported first.
    pub startup_grace: Duration,
    /// Applications (job templates) a body may name with `"template"`.
    pub apps: suanwang_formats::apps::AppCatalog,
    /// The platform's fee on each charge, in basis points (the provider is paid the rest).
    pub platform_fee_bps: u32,
    /// How often the leader rates new usage into charges.
    pub billing_interval: Duration,
    /// How often the leader runs a call auction (published at `/api/v1/market/prices`).
    pub auction_interval: Duration,
    /// How often the dashboard's history samples utilisation and the queue.
    pub sample_interval: Duration,
    /// Trace files the simulations page offers (`serve --traces DIR`).
    pub traces_dir: Option<std::path::PathBuf>,
    /// Where users reach the server (`serve --public-url`); when it is `https://…`, cookies are
    /// `Secure`.
    pub public_url: Option<String>,
    /// How the in-process agents of `local` pools isolate jobs (`serve --demo`).
    pub isolation: std::sync::Arc<suanwang_agent::sandbox::Isolation>,
    /// Whether pools get queues of their own (the federation's `handoff_pct`). Off when every
    /// pool's agent runs in process and simulates (`serve --demo`): a simulated cluster would
    /// run its queue's jobs at once, beyond its cards.
    pub cluster_queues: bool,
}

/// The longest time limit a job may ask for: a year.
pub const TIME_LIMIT_MAX_S: u64 = 366 * 86_400;

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            heartbeat_timeout: Duration::from_secs(30),
            cluster_failover_timeout: Duration::from_secs(600),
            tick: Duration::from_millis(200),
            policy: "drf+backfill".parse().unwrap_or(suanwang_sched::policy::QueuePolicy::DEFAULT),
            choice: ChoiceConfig { reference_tflops: Some(REFERENCE_TFLOPS), ..ChoiceConfig::default() },
            default_framework: Some("cuda".to_owned()),
            time_limit_default: Duration::from_secs(7 * 86_400),
            startup_grace: Duration::from_secs(3),
            apps: suanwang_formats::apps::builtin(),
            platform_fee_bps: 500,
            billing_interval: Duration::from_secs(1),
            auction_interval: Duration::from_secs(15 * 60),
            sample_interval: Duration::from_secs(60),
            traces_dir: None,
            public_url: None,
            isolation: std::sync::Arc::new(suanwang_agent::sandbox::Isolation::basic()),
            cluster_queues: true,
        }
    }
}
