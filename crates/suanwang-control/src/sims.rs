//! Simulations for planning: a trace (uploaded, or picked from the server's trace directory) run
//! through the queue simulator on a federation (this platform's, or a built-in example) under a
//! queue policy. Runs are CPU work on a blocking thread, one at a time, and kept in memory (the
//! last [`RUNS_MAX`]); they change nothing on the platform.

use std::collections::VecDeque;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use suanwang_formats::trace::{TraceFormat, TraceOptions};
use suanwang_model::federation::Federation;
use suanwang_report::queue::PolicySeries;
use suanwang_sched::policy::QueuePolicy;
use suanwang_sched::scheduler::SchedulerConfig;
use suanwang_sim::queue::{self, Scenario};

use crate::Control;
use crate::access::{Action, require, scope};
use crate::auth::Caller;
use crate::error::{Error, Kind};

/// Runs kept.
pub const RUNS_MAX: usize = 20;
/// The largest trace a run takes, bytes (uploaded or picked).
pub const TRACE_BYTES_MAX: usize = 64 << 20;
/// The largest upload (the request body), bytes.
pub const UPLOAD_BYTES_MAX: usize = 8 << 20;
/// The most jobs a run simulates.
pub const JOBS_MAX: usize = 200_000;

/// Built-in example federations (also in `examples/federations`).
pub const EXAMPLES: &[(&str, &str)] = &[
    ("greater-bay-area", include_str!("../../../examples/federations/greater-bay-area.toml")),
    ("philly", include_str!("../../../examples/federations/philly.toml")),
];

/// Simulations that run at once on one server (each takes a core).
pub const SLOTS: usize = 2;

/// The runs so far, the slots, and how many each tenant is running (its quota bounds that, so
/// no tenant holds every slot).
#[derive(Debug)]
pub struct Simulations {
    runs: Mutex<VecDeque<RunView>>,
    next_id: Mutex<u64>,
    slots: tokio::sync::Semaphore,
    running: Mutex<std::collections::HashMap<i64, u32>>,
}

impl Default for Simulations {
    fn default() -> Self {
        Simulations {
            runs: Mutex::default(),
            next_id: Mutex::default(),
            slots: tokio::sync::Semaphore::new(SLOTS),
            running: Mutex::default(),
        }
    }
}

/// A tenant's place among the running simulations, given back when dropped.
struct Running<'a> {
    sims: &'a Simulations,
    tenant: Option<i64>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let (Some(tenant), Ok(mut running)) = (self.tenant, self.sims.running.lock())
            && let Some(n) = running.get_mut(&tenant)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&tenant);
            }
        }
    }
}

/// `POST /api/v1/simulations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    /// `this` (the platform's federation, the default) or a built-in example's name.
    #[serde(default)]
    pub federation: Option<String>,
    /// The trace's text (an upload), or…
    #[serde(default)]
    pub trace: Option<String>,
    /// …a file of the server's trace directory, by its relative path.
    #[serde(default)]
    pub trace_file: Option<String>,
    /// `philly`, `openb`, `swf` or `jsonl` (default: guessed from the file name, else `jsonl`).
    #[serde(default)]
    pub trace_format: Option<String>,
    /// A queue policy such as `drf+backfill` (the default).
    #[serde(default)]
    pub policy: Option<String>,
}

/// A finished run.
#[derive(Clone, Debug, Serialize)]
pub struct RunView {
    /// Id (in memory only).
    pub id: u64,
    /// When it ran (ms since 1970).
    pub at_ms: i64,
    /// Who ran it (`token:ID`).
    pub by: String,
    /// Federation.
    pub federation: String,
    /// Trace (file name or `upload`).
    pub trace: String,
    /// Policy.
    pub policy: String,
    /// Jobs in the trace.
    pub jobs: usize,
    /// Jobs that never fit.
    pub jobs_unschedulable: usize,
    /// Mean job completion time, hours.
    pub jct_h_mean: f64,
    /// 99th-percentile JCT, hours.
    pub jct_h_p99: f64,
    /// Mean queueing delay, hours.
    pub wait_h_mean: f64,
    /// Accelerator utilisation over the makespan, %.
    pub utilisation_pct: f64,
    /// Cost at the pools' prices, fen.
    pub cost_fen: i64,
    /// Wall time of the simulation, ms.
    pub elapsed_ms: u64,
    /// The run's series, for the report's charts.
    #[serde(skip)]
    pub series: Option<Box<PolicySeries>>,
}

fn sees(caller: &Caller, run: &RunView) -> bool {
    scope(caller.role(), Action::ReadAllSimulations) == crate::access::Scope::All || run.by == caller.actor()
}

/// Trace files under the server's trace directory (two levels, known extensions), relative.
pub fn trace_files(dir: Option<&FsPath>) -> Vec<String> {
    let Some(dir) = dir else { return Vec::new() };
    let mut out = Vec::new();
    let mut visit = |d: &FsPath, prefix: &str| -> Vec<(PathBuf, String)> {
        let mut subdirs = Vec::new();
        let Ok(entries) = std::fs::read_dir(d) else { return subdirs };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let path = e.path();
            if path.is_dir() {
                subdirs.push((path, rel));
            } else if guess_format(&name).is_some() {
                out.push(rel);
            }
        }
        subdirs
    };
    for (sub, rel) in visit(dir, "") {
        visit(&sub, &rel);
    }
    out.sort();
    out.truncate(500);
    out
}

/// The trace format a file's name suggests.
pub fn guess_format(name: &str) -> Option<TraceFormat> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".jsonl") {
        Some(TraceFormat::Jsonl)
    } else if lower.ends_with(".swf") {
        Some(TraceFormat::Swf)
    } else if lower.ends_with(".csv") && lower.contains("openb_pod") {
        Some(TraceFormat::Openb)
    } else if lower.ends_with(".csv") && lower.contains("philly") {
        Some(TraceFormat::Philly)
    } else {
        None
    }
}

fn invalid(code: &'static str, message: impl Into<String>, field: &'static str) -> Error {
    Error::bad_request(code, message).at(field)
}

/// Runs a simulation (anyone signed in) and answers the run's summary.
pub async fn run(ctl: &Control, caller: &Caller, body: NewRun) -> Result<RunView, Error> {
    require(caller, Action::Simulate)?;
    let federation_name = body.federation.clone().unwrap_or_else(|| "this".to_owned());
    let federation: Federation = if federation_name == "this" {
        ctl.federation.clone()
    } else {
        let (_, text) = EXAMPLES.iter().find(|(n, _)| *n == federation_name).ok_or_else(|| {
            let names: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
            invalid(
                "unknown_federation",
                format!("no federation {federation_name:?}; choose this or one of {}", names.join(", ")),
                "federation",
            )
        })?;
        suanwang_formats::federation::parse(&federation_name, text, &suanwang_formats::catalog::builtin())
            .map_err(|e| Error::unavailable(format!("the built-in federation does not parse: {e}")))?
    };
    let policy: QueuePolicy =
        body.policy.as_deref().unwrap_or("drf+backfill").parse().map_err(
            |e: suanwang_sched::policy::UnknownQueuePolicy| invalid("invalid_policy", e.to_string(), "policy"),
        )?;
    let (label, text, guessed) = match (&body.trace, &body.trace_file) {
        (Some(text), None) => ("upload".to_owned(), text.clone(), None),
        (None, Some(file)) => {
            let dir = ctl.config.traces_dir.as_deref();
            if !trace_files(dir).contains(file) {
                return Err(invalid(
                    "unknown_trace",
                    format!("no trace {file:?} in the server's trace directory"),
                    "trace_file",
                ));
            }
            let path = dir.map(|d| d.join(file)).unwrap_or_default();
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
            if size > TRACE_BYTES_MAX as u64 {
                return Err(invalid(
                    "trace_too_large",
                    format!("{file} is larger than {} MiB", TRACE_BYTES_MAX >> 20),
                    "trace_file",
                ));
            }
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| Error::unavailable(format!("cannot read {file}: {e}")))?;
            (file.clone(), text, guess_format(file))
        }
        _ => {
            return Err(invalid("invalid_trace", "give either trace (the text of a trace) or trace_file", "trace"));
        }
    };
    let format = match body.trace_format.as_deref() {
        Some(name) => TraceFormat::parse(name).ok_or_else(|| {
            invalid(
                "invalid_trace_format",
                format!("unknown trace format {name:?}: philly, openb, swf or jsonl"),
                "trace_format",
            )
        })?,
        None => guessed.unwrap_or(TraceFormat::Jsonl),
    };
    let tenant = caller.principal.tenant_id;
    let most = match tenant {
        Some(tenant) => Some(crate::quota::of(ctl, tenant).await?.running_simulations),
        None => None,
    };
    let _place = {
        let mut running =
            ctl.simulations.running.lock().map_err(|_| Error::unavailable("simulations are unavailable"))?;
        if let (Some(tenant), Some(most)) = (tenant, most) {
            let mine = running.entry(tenant.0).or_insert(0);
            if *mine >= most {
                return Err(crate::quota::exceeded("running simulations", most));
            }
            *mine += 1;
        }
        Running { sims: &ctl.simulations, tenant: tenant.map(|t| t.0) }
    };
    let Ok(_slot) = ctl.simulations.slots.try_acquire() else {
        return Err(Error::new(
            Kind::TooMany,
            "busy",
            format!("{SLOTS} simulations are running; try again when one ends"),
        ));
    };
    let by = caller.actor();
    let at_ms = ctl.now_ms();
    let work = tokio::task::spawn_blocking(move || -> Result<RunView, Error> {
        let started = std::time::Instant::now();
        let catalog = federation.catalog().clone();
        let trace = suanwang_formats::trace::parse(format, &label, &text, &catalog, TraceOptions::default())
            .map_err(|e| invalid(e.code, e.to_string(), "trace"))?;
        if trace.jobs.is_empty() || trace.jobs.len() > JOBS_MAX {
            return Err(invalid(
                "invalid_trace",
                format!("a trace has 1 to {JOBS_MAX} jobs; this one has {}", trace.jobs.len()),
                "trace",
            ));
        }
        let resolved = suanwang_sim::resolve::resolve(&trace, &federation, &label)
            .map_err(|e| invalid(e.code, e.message, "trace"))?;
        let scenario =
            Scenario { scheduler: SchedulerConfig { policy, ..SchedulerConfig::default() }, ..Scenario::default() };
        let run = queue::run(&federation, resolved.tenants.len(), &resolved.jobs, &scenario);
        let used: u128 = run.pool_use.iter().map(|u| u.0).sum();
        let summary = queue::summarise(&run.jobs, run.makespan_s, used, run.pool_capacity.iter().sum());
        let series = PolicySeries::new(policy.to_string(), &run, &federation);
        Ok(RunView {
            id: 0,
            at_ms,
            by,
            federation: federation.name.clone(),
            trace: label,
            policy: policy.to_string(),
            jobs: resolved.jobs.len(),
            jobs_unschedulable: summary.jobs_unschedulable,
            jct_h_mean: summary.jct_s_mean / 3600.0,
            jct_h_p99: summary.jct_s_p99 / 3600.0,
            wait_h_mean: summary.queue_s_mean / 3600.0,
            utilisation_pct: summary.utilization_pct,
            cost_fen: summary.cost_fen_total,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            series: Some(Box::new(series)),
        })
    });
    let mut view = work.await.map_err(|e| Error::unavailable(format!("the simulation stopped: {e}")))??;
    let mut runs = ctl.simulations.runs.lock().map_err(|_| Error::unavailable("simulations are unavailable"))?;
    let mut next = ctl.simulations.next_id.lock().map_err(|_| Error::unavailable("simulations are unavailable"))?;
    *next += 1;
    view.id = *next;
    if runs.len() >= RUNS_MAX {
        runs.pop_front();
    }
    runs.push_back(view.clone());
    Ok(view)
}

/// Your runs (everyone's for operators and auditors), newest first.
pub fn list(ctl: &Control, caller: &Caller) -> Result<Vec<RunView>, Error> {
    require(caller, Action::Simulate)?;
    let runs = ctl.simulations.runs.lock().map_err(|_| Error::unavailable("simulations are unavailable"))?;
    Ok(runs.iter().rev().filter(|r| sees(caller, r)).cloned().collect())
}

/// One run.
pub fn show(ctl: &Control, caller: &Caller, id: u64) -> Result<RunView, Error> {
    require(caller, Action::Simulate)?;
    let runs = ctl.simulations.runs.lock().map_err(|_| Error::unavailable("simulations are unavailable"))?;
    runs.iter()
        .find(|r| r.id == id && sees(caller, r))
        .cloned()
        .ok_or_else(|| Error::not_found(format!("simulation {id}")))
}
