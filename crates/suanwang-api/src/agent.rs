//! The agent protocol's wire types: what a pool's agent sends (heartbeats, state, logs, usage
//! evidence) and receives (work).

use serde::{Deserialize, Serialize};

use crate::jobs::JobRequest;

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
    /// Why the pool cannot take work, in the agent's words (at most 1,024 characters), for the
    /// pool's health: a wrong partition, a controller that does not answer, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The cluster's nodes (at most [`NODES_MAX`]), when the agent can list them: sent when they
    /// change and every minute, absent otherwise (the platform keeps the last list). The
    /// scheduler places against the usable ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeReport>>,
}

/// Nodes one heartbeat may list.
pub const NODES_MAX: usize = 4096;

/// One node of a cluster, as its agent reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeReport {
    /// Its name in the cluster (at most 128 characters).
    pub name: String,
    /// Accelerator cards of the pool's model (at most 64).
    pub cards: u32,
    /// CPUs (at most 65,536).
    pub cpus: u32,
    /// Memory, MB (at most 2^40).
    pub memory_mb: u64,
    /// Whether it can take work (not down, drained or failing).
    pub usable: bool,
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
    /// The job body as accepted (command, resources, `duration_s` for simulated pools, …).
    pub request: JobRequest,
    /// When the platform accepted it (ms since 1970): with the id, it names the job in a cluster
    /// that outlives the platform's store (a Slurm job is `sw-<id>-<created_ms>`).
    #[serde(default)]
    pub created_ms: i64,
    /// The accelerator model the platform placed it on (absent for CPU-only work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The name of the tenant that submitted it: a cluster maps it to its own account or user
    /// (a Slurm pool's site file). Absent when the platform could not read the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
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
    /// The pool's work version on the answering server: it changes whenever work is placed in,
    /// cancelled in or preempted from the pool. An agent that passes it back as `after` with
    /// `wait_s` is answered as soon as it changes.
    #[serde(default)]
    pub version: u64,
}

/// `GET /api/v1/agent/work` query: wait for new work instead of answering at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkQuery {
    /// Seconds to wait, at most 30, while the pool's work version is still `after`.
    #[serde(default)]
    pub wait_s: Option<u64>,
    /// The version the agent last saw.
    #[serde(default)]
    pub after: Option<u64>,
}

/// Several consecutive pieces of one job's output, in one request (at most 1,024).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    /// The pieces, each numbered as a [`LogChunk`] is.
    pub chunks: Vec<LogChunk>,
}

/// A job's new state as the agent saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// It waits in the cluster (placed, not started): `detail` says why, in the cluster's words.
    /// A line in the job's history; the state does not change.
    Pending,
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
    /// When it happened by the agent's clock (ms since 1970): a start, or an end. The platform
    /// meters the run from these, bounded by its own record (never before the job was placed,
    /// never after the report arrived); absent: when the report arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
    /// For an end reported for a job the platform never saw start: when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
}

impl StateReport {
    /// A report of `state` happening now (the platform takes the arrival time).
    pub fn now(state: RunState, detail: impl Into<String>) -> Self {
        StateReport { state, detail: detail.into(), at_ms: None, started_ms: None }
    }
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

/// The agent's own measure of one run of a job: evidence kept beside the platform's meter (the
/// platform bills its own record of the run, never this figure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    /// The agent's id for this event: a resend is recorded once.
    pub event_id: String,
    /// The job.
    pub job_id: i64,
    /// Accelerator-milliseconds the agent measured.
    pub accelerator_ms: i64,
}

/// The answer to a usage report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecorded {
    /// False for a resent event.
    pub recorded: bool,
}

/// The answer to heartbeats, state and log reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Always true.
    pub ok: bool,
}
