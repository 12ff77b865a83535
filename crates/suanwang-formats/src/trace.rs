//! Job traces for the queueing simulator: the Microsoft Philly trace, the Alibaba openb task lists
//! read as a queue, the Standard Workload Format (SWF) of the Parallel Workloads Archive, and
//! Suanwang's own JSONL format (documented in `docs/trace-formats.md`), which
//! `suanwang trace convert` writes from the others.
//!
//! A [`Trace`] keeps names (tenants, sites, models resolved through the catalog) rather than
//! federation ids, so one trace can be replayed against any federation. Every importer sorts jobs
//! by submit time (stable by line) and makes submit times relative to the first job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use suanwang_model::catalog::{AcceleratorId, AcceleratorSet, Catalog};
use suanwang_model::error::ModelError;
use suanwang_model::job::{AcceleratorRequest, MILLI_PER_DEVICE, TaskSpec, limits as job_limits};

use crate::error::FormatError;

/// The most jobs one trace may hold.
pub const JOBS_MAX: usize = 10_000_000;

/// The most bad lines remembered when skipping them (all are counted).
pub const SKIPPED_REMEMBERED_MAX: usize = 20;

/// Trace formats Suanwang reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// `timestamp,duration,num_gpus,gpu_time,cluster` (Philly, as extracted by the Pollux artifact).
    Philly,
    /// An openb task list; creation and deletion times give arrival and duration.
    Openb,
    /// The Standard Workload Format of the Parallel Workloads Archive.
    Swf,
    /// Suanwang's JSON Lines job format.
    Jsonl,
}

impl TraceFormat {
    /// Parses `philly`, `openb`, `swf` or `jsonl`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "philly" => Some(TraceFormat::Philly),
            "openb" => Some(TraceFormat::Openb),
            "swf" => Some(TraceFormat::Swf),
            "jsonl" => Some(TraceFormat::Jsonl),
            _ => None,
        }
    }
}

/// How to read a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceOptions {
    /// Continue past malformed lines, counting them, instead of failing on the first.
    pub skip_bad_lines: bool,
    /// Jobs needing more accelerators than this are split into a gang of equal tasks of at most
    /// this many devices each (Philly and SWF; 8 = the common 8-GPU server).
    pub max_devices_per_task: u8,
    /// SWF only: processors per accelerator. 0 reads processors as CPU cores and the jobs ask for
    /// no accelerator; k > 0 asks for ⌈processors ÷ k⌉ whole accelerators and no CPU.
    pub swf_processors_per_gpu: u32,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions { skip_bad_lines: false, max_devices_per_task: 8, swf_processors_per_gpu: 0 }
    }
}

/// A data set a job reads, by site name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetByName {
    /// Site name in the federation.
    pub site: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// A latency bound to a site, by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyByName {
    /// Site name in the federation.
    pub site: String,
    /// Most one-way latency, in milliseconds (decimals allowed).
    pub max_ms: f64,
}

/// One job of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceJob {
    /// Unique within the trace.
    pub id: String,
    /// The submitting tenant's name.
    pub tenant: String,
    /// Seconds after the first job's submission.
    pub submit_s: u64,
    /// The true run time, known only to the simulator (schedulers never read it, except the
    /// oracle `sjf`).
    pub duration_s: u64,
    /// What the user said the run time would be, if anything.
    pub estimate_s: Option<u64>,
    /// Tasks that start together (1 for a single-node job).
    pub gang_size: u16,
    /// What each task needs.
    pub task: TaskSpec,
    /// Higher runs first under `priority`.
    pub priority: i32,
    /// May be stopped and requeued.
    pub preemptible: bool,
    /// Input data.
    pub dataset: Option<DatasetByName>,
    /// Region the job must stay in.
    pub residency_region: Option<String>,
    /// Latency bound to the job's users.
    pub latency: Option<LatencyByName>,
    /// Most the tenant pays per card-hour.
    pub price_fen_per_card_hour_max: Option<i64>,
    /// Deadline, seconds after the trace start.
    pub deadline_s: Option<u64>,
    /// Prefers green (low-carbon) pools.
    pub green: bool,
    /// The framework it runs (narrows accepted accelerators through the adaptation matrix).
    pub framework: Option<String>,
    /// Its own speed on some accepted models, thousandths of the reference (see
    /// `suanwang_model::job::JobSpec::speeds`).
    pub speeds: Vec<(AcceleratorId, u32)>,
    /// Line in the source file (1-based).
    pub line: u64,
}

/// A parsed trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Jobs sorted by submit time.
    pub jobs: Vec<TraceJob>,
    /// How many malformed lines were skipped (with `skip_bad_lines`).
    pub skipped: usize,
    /// The first skipped lines' errors.
    pub skipped_examples: Vec<FormatError>,
}

/// Parses a trace of the given format.
pub fn parse(
    format: TraceFormat,
    source: &str,
    text: &str,
    catalog: &Catalog,
    options: TraceOptions,
) -> Result<Trace, FormatError> {
    let mut reader = LineErrors::new(options.skip_bad_lines);
    let mut jobs = match format {
        TraceFormat::Philly => philly(source, text, options, &mut reader)?,
        TraceFormat::Openb => openb(source, text, catalog, &mut reader)?,
        TraceFormat::Swf => swf(source, text, options, &mut reader)?,
        TraceFormat::Jsonl => jsonl(source, text, catalog, &mut reader)?,
    };
    if jobs.is_empty() {
        return Err(FormatError::new(source, "empty_input", "the trace has no jobs"));
    }
    jobs.sort_by_key(|j| (j.submit_s, j.line));
    let first = jobs[0].submit_s;
    for job in &mut jobs {
        job.submit_s -= first;
        job.deadline_s = job.deadline_s.map(|d| d.saturating_sub(first));
    }
    let (skipped, skipped_examples) = (reader.skipped, reader.examples);
    Ok(Trace { jobs, skipped, skipped_examples })
}

/// Collects per-line errors: fails on the first, or counts them when skipping.
struct LineErrors {
    skip: bool,
    skipped: usize,
    examples: Vec<FormatError>,
}

impl LineErrors {
    fn new(skip: bool) -> Self {
        LineErrors { skip, skipped: 0, examples: Vec::new() }
    }

    /// `Ok(Some(v))` for a good line, `Ok(None)` for a skipped one, `Err` otherwise.
    fn line<T>(&mut self, result: Result<T, FormatError>) -> Result<Option<T>, FormatError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) if self.skip => {
                self.skipped += 1;
                if self.examples.len() < SKIPPED_REMEMBERED_MAX {
                    self.examples.push(error);
                }
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

fn check_count(source: &str, jobs: usize, line: u64) -> Result<(), FormatError> {
    if jobs >= JOBS_MAX {
        return Err(FormatError::new(source, "limit_exceeded", format!("more than {JOBS_MAX} jobs")).at(line, None));
    }
    Ok(())
}

/// Splits `devices` whole accelerators into a gang of equal tasks of at most `max` devices: the
/// fewest tasks whose size divides the total (12 → 2 × 6; 128 → 16 × 8; 13 → 13 × 1).
pub fn split_gang(devices: u32, max: u8) -> Option<(u16, u8)> {
    let max = u32::from(max.max(1));
    if devices <= max {
        return Some((1, devices as u8));
    }
    let first = devices.div_ceil(max);
    (first..=devices)
        .find(|k| devices.is_multiple_of(*k))
        .and_then(|k| Some((u16::try_from(k).ok()?, (devices / k) as u8)))
}

fn whole_gpu_task(devices: u8, cpu_milli: u32, memory_mib: u32) -> Result<TaskSpec, String> {
    let request = AcceleratorRequest::whole(devices).map_err(|e| e.to_string())?;
    TaskSpec::new(cpu_milli, memory_mib, request, AcceleratorSet::ANY).map_err(|e| e.to_string())
}

fn base_job(
    id: String,
    tenant: String,
    submit_s: u64,
    duration_s: u64,
    task: TaskSpec,
    gang_size: u16,
    line: u64,
) -> TraceJob {
    TraceJob {
        id,
        tenant,
        submit_s,
        duration_s,
        estimate_s: None,
        gang_size,
        task,
        priority: 0,
        preemptible: true,
        dataset: None,
        residency_region: None,
        latency: None,
        price_fen_per_card_hour_max: None,
        deadline_s: None,
        green: false,
        framework: None,
        speeds: Vec::new(),
        line,
    }
}

/// `timestamp,duration,num_gpus,gpu_time,cluster`; the cluster is the tenant. Jobs are
/// preemptible (deep-learning training checkpoints) and carry no run-time estimate.
fn philly(
    source: &str,
    text: &str,
    options: TraceOptions,
    errors: &mut LineErrors,
) -> Result<Vec<TraceJob>, FormatError> {
    let mut records = csv_records(source, text, &["timestamp", "duration", "num_gpus", "cluster"])?;
    let mut jobs = Vec::new();
    while let Some((line, row)) = records.next_row()? {
        check_count(source, jobs.len(), line)?;
        let job = (|| {
            let submit_s = parse_timestamp(row.get("timestamp"))
                .ok_or_else(|| row.error("timestamp", "expected a time like 2017-10-09 07:01:55"))?;
            let duration_s = row.float_seconds("duration")?;
            let gpus: u32 = row.number("num_gpus")?;
            if gpus == 0 {
                return Err(row.error("num_gpus", "a Philly job needs at least one GPU"));
            }
            let (gang, per_task) = split_gang(gpus, options.max_devices_per_task)
                .ok_or_else(|| row.error("num_gpus", format!("{gpus} GPUs cannot be split into tasks")))?;
            let task = whole_gpu_task(per_task, 0, 0).map_err(|m| row.error("num_gpus", m))?;
            let tenant = row.get("cluster").to_owned();
            if tenant.is_empty() {
                return Err(row.error("cluster", "the cluster (tenant) is empty"));
            }
            Ok(base_job(format!("philly-{}", line - 1), tenant, submit_s, duration_s, task, gang, line))
        })();
        if let Some(job) = errors.line(job)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// An openb task list as a queue: `creation_time` is the arrival, `deletion_time − creation_time`
/// the duration; the tenant is the `qos` column (LS, BE, …) or `openb` without one.
fn openb(source: &str, text: &str, catalog: &Catalog, errors: &mut LineErrors) -> Result<Vec<TraceJob>, FormatError> {
    let mut records = csv_records(
        source,
        text,
        &["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "creation_time", "deletion_time"],
    )?;
    let mut jobs = Vec::new();
    while let Some((line, row)) = records.next_row()? {
        check_count(source, jobs.len(), line)?;
        let job = (|| {
            let cpu_milli: u32 = row.number("cpu_milli")?;
            let memory_mib: u32 = row.number("memory_mib")?;
            let count: u8 = row.number("num_gpu")?;
            let milli: u16 = row.number("gpu_milli")?;
            let request = AcceleratorRequest::new(count, milli).map_err(|e| row.error("gpu_milli", e.to_string()))?;
            let models = match row.optional("gpu_spec") {
                None | Some("") => AcceleratorSet::ANY,
                Some(spec) => spec
                    .split('|')
                    .map(|m| catalog.resolve(m.trim()))
                    .collect::<Result<AcceleratorSet, _>>()
                    .map_err(|e| row.error("gpu_spec", e.to_string()))?,
            };
            let task = TaskSpec::new(cpu_milli, memory_mib, request, models)
                .map_err(|e| row.error("cpu_milli", e.to_string()))?;
            let created: u64 = row.number("creation_time")?;
            let deleted: u64 = row.number("deletion_time")?;
            if deleted < created {
                return Err(row.error("deletion_time", format!("deleted ({deleted}) before created ({created})")));
            }
            let tenant = row.optional("qos").filter(|q| !q.is_empty()).unwrap_or("openb").to_owned();
            Ok(base_job(row.get("name").to_owned(), tenant, created, deleted - created, task, 1, line))
        })();
        if let Some(job) = errors.line(job)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// SWF: 18 whitespace-separated fields per job; lines starting with `;` are comments. Used: 1 job
/// number, 2 submit time, 4 run time, 5 allocated processors (8 requested processors when 5 is
/// missing), 9 requested time (the user's estimate), 12 user (the tenant). Jobs with a missing
/// (−1) run time or processor count are bad lines. Memory is not used (SWF's is per processor and
/// mostly missing).
fn swf(source: &str, text: &str, options: TraceOptions, errors: &mut LineErrors) -> Result<Vec<TraceJob>, FormatError> {
    let mut jobs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index as u64 + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') {
            continue;
        }
        check_count(source, jobs.len(), line)?;
        let job = (|| {
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            if fields.len() < 12 {
                return Err(FormatError::new(
                    source,
                    "malformed_trace",
                    format!("expected 18 fields, found {}", fields.len()),
                )
                .at(line, None));
            }
            let field = |n: usize| -> Result<i64, FormatError> {
                fields[n - 1].parse::<f64>().map(|v| v as i64).map_err(|_| {
                    FormatError::new(
                        source,
                        "invalid_value",
                        format!("field {n}: expected a number, found {:?}", fields[n - 1]),
                    )
                    .at(line, Some(n as u64))
                })
            };
            let submit = field(2)?;
            let run = field(4)?;
            let processors = match field(5)? {
                p if p > 0 => p,
                _ => field(8)?,
            };
            if submit < 0 || run < 0 || processors <= 0 {
                return Err(FormatError::new(
                    source,
                    "invalid_value",
                    "missing submit time, run time or processor count (−1)",
                )
                .at(line, None));
            }
            let estimate = field(9)?;
            let processors = u32::try_from(processors)
                .map_err(|_| FormatError::new(source, "invalid_value", "too many processors").at(line, Some(5)))?;
            let (gang, task) = if options.swf_processors_per_gpu == 0 {
                let cpu = processors.checked_mul(1000).ok_or_else(|| {
                    FormatError::new(source, "invalid_value", "too many processors").at(line, Some(5))
                })?;
                let task = TaskSpec::new(cpu, 0, AcceleratorRequest::NONE, AcceleratorSet::ANY)
                    .map_err(|e| FormatError::new(source, "invalid_value", e.to_string()).at(line, Some(5)))?;
                (1, task)
            } else {
                let gpus = processors.div_ceil(options.swf_processors_per_gpu);
                let (gang, per_task) = split_gang(gpus, options.max_devices_per_task).ok_or_else(|| {
                    FormatError::new(source, "invalid_value", "cannot split into tasks").at(line, Some(5))
                })?;
                let task = whole_gpu_task(per_task, 0, 0)
                    .map_err(|m| FormatError::new(source, "invalid_value", m).at(line, Some(5)))?;
                (gang, task)
            };
            let mut job = base_job(
                format!("swf-{}", fields[0]),
                format!("user-{}", fields[11]),
                submit as u64,
                run as u64,
                task,
                gang,
                line,
            );
            job.estimate_s = (estimate > 0).then_some(estimate as u64);
            job.preemptible = false;
            Ok(job)
        })();
        if let Some(job) = errors.line(job)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// An accepted accelerator model in a job line (and in the API's job body): a catalog name or
/// alias, or the same with the job's speed on it relative to the reference card
/// (`{"model": "Ascend-910B", "speed": 0.8}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelChoice {
    /// `"A800"`.
    Name(String),
    /// `{"model": "A800", "speed": 1.2}`.
    WithSpeed {
        /// Catalog name or alias.
        model: String,
        /// Speed relative to the reference card (0.001 to 100).
        speed: f64,
    },
}

impl ModelChoice {
    /// The model's name as given.
    pub fn model(&self) -> &str {
        match self {
            ModelChoice::Name(model) | ModelChoice::WithSpeed { model, .. } => model,
        }
    }
}

/// Accepted models (`ANY` when none are given) and the speeds given with them, in thousandths.
pub fn resolve_models(
    choices: &[ModelChoice],
    catalog: &Catalog,
) -> Result<(AcceleratorSet, Vec<(AcceleratorId, u32)>), ModelError> {
    if choices.is_empty() {
        return Ok((AcceleratorSet::ANY, Vec::new()));
    }
    let mut models = AcceleratorSet::NONE;
    let mut speeds = Vec::new();
    for choice in choices {
        let id = catalog.resolve(choice.model())?;
        models.insert(id);
        if let ModelChoice::WithSpeed { speed, .. } = choice {
            let milli = speed * 1000.0;
            let range = f64::from(job_limits::SPEED_MILLI_MIN)..=f64::from(job_limits::SPEED_MILLI_MAX);
            if !(milli.is_finite() && range.contains(&milli.round())) {
                return Err(ModelError::OutOfRange {
                    what: format!("the speed of {}", choice.model()),
                    expected: "between 0.001 and 100 (times the reference card)".to_owned(),
                    got: speed.to_string(),
                });
            }
            if speeds.iter().any(|(m, _)| *m == id) {
                return Err(ModelError::Duplicate { kind: "accelerator model", name: choice.model().to_owned() });
            }
            speeds.push((id, milli.round() as u32));
        }
    }
    Ok((models, speeds))
}

/// One line of Suanwang's JSONL trace format (the wire type; see `docs/trace-formats.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobLine {
    /// Unique id.
    pub id: String,
    /// Tenant name.
    pub tenant: String,
    /// Submit time, seconds.
    pub submit_s: u64,
    /// True run time, seconds (for simulation).
    pub duration_s: u64,
    /// The user's run-time estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_s: Option<u64>,
    /// Tasks in the gang.
    #[serde(default = "one")]
    pub tasks: u16,
    /// Accelerators per task (0 for CPU-only).
    #[serde(default)]
    pub gpus_per_task: u8,
    /// Thousandths of each accelerator (1000 = whole; < 1000 only with one accelerator).
    #[serde(default = "whole")]
    pub gpu_milli: u16,
    /// CPU per task.
    #[serde(default)]
    pub cpu_milli: u32,
    /// Memory per task.
    #[serde(default)]
    pub memory_mib: u32,
    /// Accepted accelerator models (catalog names or aliases, or `{"model", "speed"}`); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accelerators: Vec<ModelChoice>,
    /// Priority.
    #[serde(default)]
    pub priority: i32,
    /// Preemptible.
    #[serde(default)]
    pub preemptible: bool,
    /// Input data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetByName>,
    /// Residency region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency_region: Option<String>,
    /// Latency bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyByName>,
    /// Price bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_fen_per_card_hour_max: Option<i64>,
    /// Deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<u64>,
    /// Prefers green pools.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub green: bool,
    /// Framework (e.g. `pytorch`), checked against the adaptation matrix when simulating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
}

fn one() -> u16 {
    1
}

fn whole() -> u16 {
    MILLI_PER_DEVICE
}

fn jsonl(source: &str, text: &str, catalog: &Catalog, errors: &mut LineErrors) -> Result<Vec<TraceJob>, FormatError> {
    let mut jobs = Vec::new();
    let mut ids: BTreeMap<String, u64> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        check_count(source, jobs.len(), line)?;
        let job = (|| {
            let wire: JobLine = serde_json::from_str(raw).map_err(|e| {
                // serde_json appends " at line L column C"; we give the location ourselves.
                let text = e.to_string();
                let message = text.rfind(" at line ").map_or(text.as_str(), |cut| &text[..cut]).to_owned();
                FormatError::new(source, "malformed_trace", message).at(line, Some(e.column() as u64))
            })?;
            let invalid = |message: String| FormatError::new(source, "invalid_value", message).at(line, None);
            if let Some(first) = ids.get(&wire.id) {
                return Err(invalid(format!("job id {:?} was already used on line {first}", wire.id)));
            }
            let milli = if wire.gpus_per_task == 0 { 0 } else { wire.gpu_milli };
            let request = AcceleratorRequest::new(wire.gpus_per_task, milli).map_err(|e| invalid(e.to_string()))?;
            let (models, speeds) = resolve_models(&wire.accelerators, catalog).map_err(|e| invalid(e.to_string()))?;
            let task =
                TaskSpec::new(wire.cpu_milli, wire.memory_mib, request, models).map_err(|e| invalid(e.to_string()))?;
            if wire.tasks == 0 {
                return Err(invalid("tasks must be at least 1".to_owned()));
            }
            if let Some(latency) = &wire.latency
                && !(latency.max_ms.is_finite() && latency.max_ms >= 0.0)
            {
                return Err(invalid("latency.max_ms must be a non-negative number".to_owned()));
            }
            ids.insert(wire.id.clone(), line);
            Ok(TraceJob {
                id: wire.id,
                tenant: wire.tenant,
                submit_s: wire.submit_s,
                duration_s: wire.duration_s,
                estimate_s: wire.estimate_s,
                gang_size: wire.tasks,
                task,
                priority: wire.priority,
                preemptible: wire.preemptible,
                dataset: wire.dataset,
                residency_region: wire.residency_region,
                latency: wire.latency,
                price_fen_per_card_hour_max: wire.price_fen_per_card_hour_max,
                deadline_s: wire.deadline_s,
                green: wire.green,
                framework: wire.framework,
                speeds,
                line,
            })
        })();
        if let Some(job) = errors.line(job)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Writes a trace as JSONL (one job per line, in submit order).
pub fn to_jsonl(trace: &Trace, catalog: &Catalog) -> String {
    let mut out = String::new();
    for job in &trace.jobs {
        let request = job.task.accelerators();
        let models = job.task.accepted_models();
        let accelerators = if models.is_any() {
            Vec::new()
        } else {
            catalog
                .iter()
                .filter(|(id, _)| models.contains(*id))
                .map(|(id, a)| match job.speeds.iter().find(|(m, _)| *m == id) {
                    Some(&(_, milli)) => {
                        ModelChoice::WithSpeed { model: a.model.clone(), speed: f64::from(milli) / 1000.0 }
                    }
                    None => ModelChoice::Name(a.model.clone()),
                })
                .collect()
        };
        let wire = JobLine {
            id: job.id.clone(),
            tenant: job.tenant.clone(),
            submit_s: job.submit_s,
            duration_s: job.duration_s,
            estimate_s: job.estimate_s,
            tasks: job.gang_size,
            gpus_per_task: request.count(),
            gpu_milli: if request.count() == 0 { MILLI_PER_DEVICE } else { request.milli_per_device() },
            cpu_milli: job.task.cpu_milli(),
            memory_mib: job.task.memory_mib(),
            accelerators,
            priority: job.priority,
            preemptible: job.preemptible,
            dataset: job.dataset.clone(),
            residency_region: job.residency_region.clone(),
            latency: job.latency.clone(),
            price_fen_per_card_hour_max: job.price_fen_per_card_hour_max,
            deadline_s: job.deadline_s,
            green: job.green,
            framework: job.framework.clone(),
        };
        out += &serde_json::to_string(&wire).expect("a job line always serialises");
        out.push('\n');
    }
    out
}

/// Seconds since 1970 for `YYYY-MM-DD HH:MM:SS` (UTC; no time-zone handling needed for offsets).
fn parse_timestamp(text: &str) -> Option<u64> {
    let (date, time) = text.trim().split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hh)
        || !(0..60).contains(&mm)
        || !(0..=60).contains(&ss)
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// CSV records with columns found by header name.
struct Records<'a> {
    source: &'a str,
    headers: Vec<String>,
    records: csv::StringRecordsIntoIter<&'a [u8]>,
}

struct CsvRow<'a> {
    source: &'a str,
    headers: &'a [String],
    record: csv::StringRecord,
    line: u64,
}

fn csv_records<'a>(source: &'a str, text: &'a str, required: &[&str]) -> Result<Records<'a>, FormatError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FormatError::new(source, "malformed_csv", e.to_string()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    for name in required {
        if !headers.iter().any(|h| h == name) {
            return Err(FormatError::new(
                source,
                "malformed_csv",
                format!("missing column {name:?}; the header must name {}", required.join(",")),
            )
            .at(1, None));
        }
    }
    Ok(Records { source, headers, records: reader.into_records() })
}

impl<'a> Records<'a> {
    fn next_row(&mut self) -> Result<Option<(u64, CsvRow<'_>)>, FormatError> {
        let Some(record) = self.records.next() else { return Ok(None) };
        let record = record.map_err(|e| {
            let error = FormatError::new(self.source, "malformed_csv", e.to_string());
            match e.position() {
                Some(p) => error.at(p.line(), None),
                None => error,
            }
        })?;
        let line = record.position().map_or(0, |p| p.line());
        Ok(Some((line, CsvRow { source: self.source, headers: &self.headers, record, line })))
    }
}

impl CsvRow<'_> {
    fn index(&self, column: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == column)
    }

    fn get(&self, column: &str) -> &str {
        self.optional(column).unwrap_or("")
    }

    fn optional(&self, column: &str) -> Option<&str> {
        self.index(column).and_then(|i| self.record.get(i)).map(str::trim)
    }

    fn error(&self, column: &str, message: impl Into<String>) -> FormatError {
        FormatError::new(self.source, "invalid_value", message)
            .at(self.line, self.index(column).map(|i| i as u64 + 1))
            .field(column)
    }

    fn number<T: std::str::FromStr>(&self, column: &str) -> Result<T, FormatError> {
        let text = self.get(column);
        text.parse().map_err(|_| self.error(column, format!("expected a whole number, found {text:?}")))
    }

    /// Seconds written as a number, possibly with a fractional part (rounded).
    fn float_seconds(&self, column: &str) -> Result<u64, FormatError> {
        let text = self.get(column);
        match text.parse::<f64>() {
            Ok(v) if (0.0..1e12).contains(&v) => Ok(v.round() as u64),
            _ => Err(self.error(column, format!("expected a non-negative number of seconds, found {text:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::catalog::builtin;

    fn check(format: TraceFormat, text: &str, options: TraceOptions, expect: Expect) {
        let actual = match parse(format, "t", text, &builtin(), options) {
            Ok(trace) => {
                let mut lines: Vec<String> = trace
                    .jobs
                    .iter()
                    .map(|j| {
                        let r = j.task.accelerators();
                        format!(
                            "{} {} t={} d={} est={:?} {}x[{}x{} cpu{}] pre={}",
                            j.id,
                            j.tenant,
                            j.submit_s,
                            j.duration_s,
                            j.estimate_s,
                            j.gang_size,
                            r.count(),
                            r.milli_per_device(),
                            j.task.cpu_milli(),
                            j.preemptible
                        )
                    })
                    .collect();
                if trace.skipped > 0 {
                    lines.push(format!("skipped {}: {}", trace.skipped, trace.skipped_examples[0]));
                }
                lines.join("\n")
            }
            Err(e) => format!("error[{}]: {e}", e.code),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn philly() {
        let text = "timestamp,duration,num_gpus,gpu_time,cluster\n\
                    2017-10-09 07:01:55,66.0,1,66.0,11cb48\n\
                    2017-10-09 06:13:03,2951.0,12,35412.0,6214e9\n\
                    2017-10-09 06:13:03,10.0,128,1280.0,6214e9\n";
        check(
            TraceFormat::Philly,
            text,
            TraceOptions::default(),
            expect![[r#"
                philly-2 6214e9 t=0 d=2951 est=None 2x[6x1000 cpu0] pre=true
                philly-3 6214e9 t=0 d=10 est=None 16x[8x1000 cpu0] pre=true
                philly-1 11cb48 t=2932 d=66 est=None 1x[1x1000 cpu0] pre=true"#]],
        );
        check(
            TraceFormat::Philly,
            "timestamp,duration,num_gpus,gpu_time,cluster\n2017-13-09 07:01:55,66.0,1,66.0,a\n2017-10-09 07:01:55,x,1,66.0,a\n2017-10-09 07:01:55,5,1,5,a\n",
            TraceOptions { skip_bad_lines: true, ..TraceOptions::default() },
            expect![
                "philly-3 a t=0 d=5 est=None 1x[1x1000 cpu0] pre=true\nskipped 2: t:2:1 (timestamp): expected a time like 2017-10-09 07:01:55"
            ],
        );
        check(
            TraceFormat::Philly,
            "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,-3,1,66.0,a\n",
            TraceOptions::default(),
            expect![[
                r#"error[invalid_value]: t:2:2 (duration): expected a non-negative number of seconds, found "-3""#
            ]],
        );
    }

    #[test]
    fn swf() {
        let text = "; a comment\n\
                    1 0 5 100 16 -1 -1 16 200 -1 1 7 1 1 1 1 -1 -1\n\
                    2 30 0 50 -1 -1 -1 4 -1 -1 1 8 1 1 1 1 -1 -1\n\
                    3 40 0 -1 4 -1 -1 4 -1 -1 1 8 1 1 1 1 -1 -1\n";
        check(
            TraceFormat::Swf,
            text,
            TraceOptions { skip_bad_lines: true, ..TraceOptions::default() },
            expect![[r#"
                swf-1 user-7 t=0 d=100 est=Some(200) 1x[0x0 cpu16000] pre=false
                swf-2 user-8 t=30 d=50 est=None 1x[0x0 cpu4000] pre=false
                skipped 1: t:4: missing submit time, run time or processor count (−1)"#]],
        );
        check(
            TraceFormat::Swf,
            "1 0 5 100 16 -1 -1 16 200 -1 1 7 1 1 1 1 -1 -1\n",
            TraceOptions { swf_processors_per_gpu: 1, ..TraceOptions::default() },
            expect!["swf-1 user-7 t=0 d=100 est=Some(200) 2x[8x1000 cpu0] pre=false"],
        );
        check(
            TraceFormat::Swf,
            "1 0 5\n",
            TraceOptions::default(),
            expect!["error[malformed_trace]: t:1: expected 18 fields, found 3"],
        );
    }

    #[test]
    fn openb_as_a_queue() {
        let text = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
                    p0,12000,16384,1,1000,,LS,Running,100,700,100\n\
                    p1,6000,12288,1,460,T4,BE,Running,50,60,50\n";
        check(
            TraceFormat::Openb,
            text,
            TraceOptions::default(),
            expect![[r#"
                p1 BE t=0 d=10 est=None 1x[1x460 cpu6000] pre=true
                p0 LS t=50 d=600 est=None 1x[1x1000 cpu12000] pre=true"#]],
        );
        check(
            TraceFormat::Openb,
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1,1,1,1000\n",
            TraceOptions::default(),
            expect![[
                r#"error[malformed_csv]: t:1: missing column "creation_time"; the header must name name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time"#
            ]],
        );
    }

    #[test]
    fn jsonl_round_trips() {
        let text = r#"{"id":"a","tenant":"x","submit_s":10,"duration_s":60,"tasks":2,"gpus_per_task":8,"cpu_milli":64000,"accelerators":["A800"],"priority":3,"preemptible":true,"dataset":{"site":"sz","size_bytes":500000000000},"residency_region":"CN-GD","latency":{"site":"sz","max_ms":3.0},"green":true}
{"id":"b","tenant":"y","submit_s":5,"duration_s":1,"gpus_per_task":1,"gpu_milli":250,"estimate_s":30}
"#;
        let catalog = builtin();
        let trace = parse(TraceFormat::Jsonl, "t", text, &catalog, TraceOptions::default()).unwrap();
        assert_eq!(trace.jobs[0].id, "b");
        assert_eq!(trace.jobs[1].submit_s, 5);
        let again =
            parse(TraceFormat::Jsonl, "t", &to_jsonl(&trace, &catalog), &catalog, TraceOptions::default()).unwrap();
        let strip = |t: &Trace| t.jobs.iter().map(|j| TraceJob { line: 0, ..j.clone() }).collect::<Vec<_>>();
        assert_eq!(strip(&again), strip(&trace));
        check(
            TraceFormat::Jsonl,
            "{\"id\":\"a\",\"tenant\":\"x\",\"submit_s\":1,\"duration_s\":1,\"gpus\":3}\n",
            TraceOptions::default(),
            expect![
                "error[malformed_trace]: t:1:57: unknown field `gpus`, expected one of `id`, `tenant`, `submit_s`, `duration_s`, `estimate_s`, `tasks`, `gpus_per_task`, `gpu_milli`, `cpu_milli`, `memory_mib`, `accelerators`, `priority`, `preemptible`, `dataset`, `residency_region`, `latency`, `price_fen_per_card_hour_max`, `deadline_s`, `green`, `framework`"
            ],
        );
        check(
            TraceFormat::Jsonl,
            "{\"id\":\"a\",\"tenant\":\"x\",\"submit_s\":1,\"duration_s\":1,\"gpus_per_task\":1}\n{\"id\":\"a\",\"tenant\":\"x\",\"submit_s\":1,\"duration_s\":1,\"gpus_per_task\":1}\n",
            TraceOptions::default(),
            expect![[r#"error[invalid_value]: t:2: job id "a" was already used on line 1"#]],
        );
        check(
            TraceFormat::Jsonl,
            "\n\n",
            TraceOptions::default(),
            expect!["error[empty_input]: t: the trace has no jobs"],
        );
    }

    #[test]
    fn gangs_split_evenly() {
        assert_eq!(split_gang(1, 8), Some((1, 1)));
        assert_eq!(split_gang(8, 8), Some((1, 8)));
        assert_eq!(split_gang(12, 8), Some((2, 6)));
        assert_eq!(split_gang(128, 8), Some((16, 8)));
        assert_eq!(split_gang(13, 8), Some((13, 1)));
        assert_eq!(parse_timestamp("1970-01-02 00:00:01"), Some(86_401));
        assert_eq!(parse_timestamp("2017-10-09 07:01:55").map(|t| t % 86_400), Some(7 * 3600 + 60 + 55));
    }
}
