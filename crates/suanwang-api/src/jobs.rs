//! Jobs on the wire: the job body a tenant submits (the one typed spec that the API, the store,
//! the agents and the CLI share) and what the API shows of a job.

use serde::{Deserialize, Serialize};
use suanwang_formats::trace::ModelChoice;
use suanwang_model::platform::JobState;

fn one() -> u16 {
    1
}

fn whole() -> u16 {
    1000
}

/// A data set given inline: a site and a size (and the registered name it came from, if any).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetBody {
    /// The registered data set this came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Site.
    pub site: String,
    /// Bytes.
    pub size_bytes: u64,
}

/// A job's input data: a registered data set by name, or a site and size given inline. On
/// submission a name is looked up and stored as both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DatasetField {
    /// `"dataset": "corpus"`: registered with `POST /api/v1/datasets`.
    Named(String),
    /// `"dataset": {"site": …, "size_bytes": …}`.
    Given(DatasetBody),
}

impl<'de> Deserialize<'de> for DatasetField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // By hand rather than `untagged`, so a bad object keeps its precise error.
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(name) => Ok(DatasetField::Named(name)),
            other => serde_json::from_value(other).map(DatasetField::Given).map_err(serde::de::Error::custom),
        }
    }
}

/// A latency bound by site name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyBody {
    /// Site.
    pub site: String,
    /// Most one-way milliseconds.
    pub max_ms: f64,
}

/// A job as submitted: `POST /api/v1/jobs`, and what the store keeps, the agents receive and the
/// CLI sends. The smallest body:
/// `{"name":"hello","command":["sh","-c","echo hello"],"cpu_milli":500,"memory_mib":256}`.
///
/// Its JSON keeps the field names and order of the first version, and the fields added since are
/// left out when unset, so a stored body reads back to the same bytes (its digest decides whether
/// a retried idempotency key carries the same request).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// A label (1–128 characters).
    pub name: String,
    /// Program and arguments (run by `local` and `slurm` pools).
    #[serde(default)]
    pub command: Vec<String>,
    /// Accelerators per task.
    #[serde(default)]
    pub accelerators: u8,
    /// Thousandths of each accelerator (below 1000 only with one).
    #[serde(default = "whole")]
    pub accelerator_milli: u16,
    /// Accepted accelerator models, each a name or `{"model", "speed"}` (empty: any that the
    /// framework runs on).
    #[serde(default)]
    pub accelerator_models: Vec<ModelChoice>,
    /// CPU per task, thousandths of a core.
    #[serde(default)]
    pub cpu_milli: u32,
    /// Memory per task.
    #[serde(default)]
    pub memory_mib: u32,
    /// Tasks in the gang.
    #[serde(default = "one")]
    pub tasks: u16,
    /// Priority.
    #[serde(default)]
    pub priority: i32,
    /// May be preempted.
    #[serde(default)]
    pub preemptible: bool,
    /// Run only in this pool.
    #[serde(default)]
    pub pool: Option<String>,
    /// The user's run-time estimate, seconds on the reference card.
    #[serde(default)]
    pub estimate_s: Option<u64>,
    /// How long a simulated pool runs it.
    #[serde(default)]
    pub duration_s: Option<u64>,
    /// Input data: a registered data set's name, or `{"site","size_bytes"}`.
    #[serde(default)]
    pub dataset: Option<DatasetField>,
    /// Region the job must stay in.
    #[serde(default)]
    pub residency_region: Option<String>,
    /// Latency bound.
    #[serde(default)]
    pub latency: Option<LatencyBody>,
    /// Price ceiling.
    #[serde(default)]
    pub max_price_fen_per_card_hour: Option<i64>,
    /// Prefers green pools.
    #[serde(default)]
    pub green: bool,
    /// Operators submit for a tenant by name; tenants submit for themselves.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The application (template) the job was made from; with `"params"` on submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A market contract (`contract:ID`) the job runs under: it runs in the contract's pool and
    /// is rated at the contract's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// The framework it runs (`pytorch`, `mindspore`, `cuda`, …): it runs only on cards whose
    /// software stack the framework supports (the adaptation matrix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The most seconds one run may take; the platform bills no run for longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_s: Option<u64>,
    /// Environment variables the job runs with (on `local` pools, beside `PATH`, `LANG`, `HOME`
    /// and `TMPDIR`; nothing of the agent's own environment reaches a job).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

impl JobRequest {
    /// A request with every optional field unset.
    pub fn named(name: impl Into<String>) -> Self {
        JobRequest {
            name: name.into(),
            command: Vec::new(),
            accelerators: 0,
            accelerator_milli: whole(),
            accelerator_models: Vec::new(),
            cpu_milli: 0,
            memory_mib: 0,
            tasks: 1,
            priority: 0,
            preemptible: false,
            pool: None,
            estimate_s: None,
            duration_s: None,
            dataset: None,
            residency_region: None,
            latency: None,
            max_price_fen_per_card_hour: None,
            green: false,
            tenant: None,
            template: None,
            contract: None,
            framework: None,
            time_limit_s: None,
            env: std::collections::BTreeMap::new(),
        }
    }
}

/// A job as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Owner.
    pub tenant_id: i64,
    /// State.
    #[serde(with = "crate::names::job_state")]
    pub state: JobState,
    /// Pool, once placed.
    pub pool: Option<String>,
    /// Why there.
    pub explanation: Option<String>,
    /// When accepted (UTC).
    pub created_at: String,
    /// When it last changed (UTC).
    pub updated_at: String,
    /// The body as accepted (`null` only if the stored body cannot be read).
    pub request: Option<JobRequest>,
}

/// Most jobs in one array (`POST /api/v1/job-arrays`), as Slurm's default `MaxArraySize`.
pub const ARRAY_SIZE_MAX: u16 = 1000;

/// `POST /api/v1/job-arrays`: `size` copies of one job, told apart by their index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobArrayRequest {
    /// How many jobs (1 to [`ARRAY_SIZE_MAX`]).
    pub size: u16,
    /// The job, as `POST /api/v1/jobs` takes it (a body, or a template with parameters).
    pub job: serde_json::Value,
}

/// The jobs an array made, in index order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobArrayView {
    /// How many.
    pub size: u16,
    /// Their ids: `job_ids[i]` runs with `SUANWANG_ARRAY_INDEX=i`.
    pub job_ids: Vec<i64>,
}

/// Query of `GET /api/v1/jobs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this state (comma-separated states allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Only this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Only this tenant (operators and auditors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Ids above this (the previous page's `next_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size (1–1000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `asc` (default: oldest first, `after` pages up) or `desc` (newest first, `after` pages down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// A page of jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// One step of a job's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// State.
    #[serde(with = "crate::names::job_state")]
    pub state: JobState,
    /// What happened.
    pub detail: String,
    /// When (UTC).
    pub at: String,
}

/// What a placed job holds in its pool, and what that costs an hour (the tariff).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationView {
    /// The model of its cards (absent for CPU-only work).
    pub model: Option<String>,
    /// Thousandths of a card, all tasks together.
    pub card_milli: u64,
    /// Thousandths of a core, all tasks together.
    pub cpu_milli: u64,
    /// Memory, all tasks together.
    pub memory_mib: u64,
    /// What it costs an hour, milli-fen.
    pub rate_millifen_per_hour: u64,
    /// The contract it runs under (`contract:ID`), or `job:ID` for on-demand work.
    pub contract: String,
}

/// A job with its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub job: JobView,
    /// Its states, oldest first.
    pub history: Vec<EventView>,
    /// Card-seconds the platform metered for its runs so far.
    pub usage_accelerator_s: f64,
    /// Card-seconds the pool's agent reported (evidence beside the meter; absent when it reported
    /// nothing). Never billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_accelerator_s: Option<f64>,
    /// What it holds, while placed or running (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<AllocationView>,
}

/// Query of `GET /api/v1/jobs/{id}/logs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Chunks after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many chunks (1–1000, default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Instead: the last this many chunks (1–1000), oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
}

/// A page of log chunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// `[seq, text]` in order.
    pub chunks: Vec<(i64, String)>,
    /// Pass as `after` for more.
    pub next_after: i64,
}

/// Where a job went and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// Job.
    pub id: i64,
    /// State.
    #[serde(with = "crate::names::job_state")]
    pub state: JobState,
    /// Pool, once placed.
    pub pool: Option<String>,
    /// The scheduler's words.
    pub explanation: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_the_first_version_reads_back_to_the_same_bytes() {
        let stored = r#"{"name":"train8","command":[],"accelerators":8,"accelerator_milli":1000,"accelerator_models":["A800",{"model":"Ascend-910B","speed":0.8}],"cpu_milli":0,"memory_mib":0,"tasks":1,"priority":0,"preemptible":false,"pool":null,"estimate_s":3600,"duration_s":12,"dataset":null,"residency_region":null,"latency":null,"max_price_fen_per_card_hour":null,"green":false,"tenant":null}"#;
        let request: JobRequest = serde_json::from_str(stored).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(serde_json::to_string(&request).ok().as_deref(), Some(stored));
        let smallest: JobRequest =
            serde_json::from_str(r#"{"name":"hello","cpu_milli":500}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(smallest, JobRequest { cpu_milli: 500, ..JobRequest::named("hello") });
    }
}
