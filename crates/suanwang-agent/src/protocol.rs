//! The agent API's wire types and the interface an agent talks to the platform through.

use serde::{Deserialize, Serialize};

/// An agent's periodic report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Whether the pool can run work.
    pub healthy: bool,
    /// The ids of the jobs the agent is running (at most 4096). A job the platform thinks runs
    /// here but is not listed was lost (the agent restarted) and is queued again.
    pub running: Vec<i64>,
    /// The agent cannot tell what runs (its cluster's controller is unreachable, and it has not
    /// listed its jobs since it started): the platform keeps its own record instead of queueing
    /// the jobs missing from `running` again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub running_unknown: bool,
    /// What the cluster says it has, for backends that can ask (Slurm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

/// A pool's capacity as its cluster reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Nodes.
    pub nodes: u64,
    /// Nodes that can take work (not down, drained or failing).
    pub nodes_usable: u64,
    /// CPUs on all nodes.
    pub cpus: u64,
    /// Memory on all nodes, MB.
    pub memory_mb: u64,
    /// GPUs on all nodes.
    pub gpus: u64,
    /// GPUs on usable nodes.
    pub gpus_usable: u64,
}

/// One job for the agent to start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The job id.
    pub id: i64,
    /// The job body as submitted (command, resources, `duration_s` for simulated pools, …).
    pub request: serde_json::Value,
    /// When the platform accepted it (ms since 1970): with the id, it names the job in a cluster
    /// that outlives the platform's store (a Slurm job is `sw-<id>-<created_ms>`).
    #[serde(default)]
    pub created_ms: i64,
}

/// A job the platform has running in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    /// The job id.
    pub id: i64,
    /// When the platform accepted it.
    pub created_ms: i64,
}

/// What the platform wants the agent to do now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Jobs placed in this pool and not started yet.
    pub start: Vec<WorkItem>,
    /// Jobs to stop (cancelled).
    pub stop: Vec<i64>,
    /// Jobs running in this pool by the platform's record (at most 1000): what an agent that
    /// restarted may find still running in its cluster and adopt.
    #[serde(default)]
    pub running: Vec<JobRef>,
}

/// A job's new state as the agent saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// It started.
    Running,
    /// It finished with success.
    Succeeded,
    /// It finished with failure.
    Failed,
}

/// A state report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateReport {
    /// The new state.
    pub state: RunState,
    /// What happened ("exit code 0", "killed by signal 9", …).
    pub detail: String,
}

/// A piece of a job's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogChunk {
    /// The agent's sequence number for this chunk (1, 2, …): a resend is stored once.
    pub seq: i64,
    /// Text (at most 64 KiB).
    pub chunk: String,
}

/// Usage of one run of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    /// The agent's id for this event: a resend is billed once.
    pub event_id: String,
    /// The job.
    pub job_id: i64,
    /// Accelerator-milliseconds used.
    pub accelerator_ms: i64,
}

/// Why a call to the platform failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformError {
    /// Stable code (from the platform's error body, or `unreachable`).
    pub code: String,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The platform as an agent sees it.
pub trait Platform: Send + Sync + 'static {
    /// Reports the pool's health.
    fn heartbeat(&self, heartbeat: Heartbeat) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// Fetches what to start and stop.
    fn work(&self) -> impl Future<Output = Result<Work, PlatformError>> + Send;
    /// Reports a job's state.
    fn report_state(&self, job_id: i64, report: StateReport) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// Sends a piece of a job's log.
    fn report_log(&self, job_id: i64, chunk: LogChunk) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// Reports usage.
    fn report_usage(&self, usage: UsageReport) -> impl Future<Output = Result<(), PlatformError>> + Send;
}
