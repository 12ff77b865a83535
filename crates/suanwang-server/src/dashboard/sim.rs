//! Simulations for planning: a trace (uploaded, or picked from the server's trace directory) run
//! through the queue simulator on a federation (this platform's, or a built-in example) under a
//! queue policy. Runs are CPU work on a blocking thread, one at a time, and kept in memory (the
//! last [`RUNS_MAX`]); they change nothing on the platform.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Mutex;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use suanwang_formats::trace::{TraceFormat, TraceOptions};
use suanwang_model::federation::Federation;
use suanwang_report::queue::PolicySeries;
use suanwang_report::svg::{LineChart, Series};
use suanwang_sched::policy::QueuePolicy;
use suanwang_sched::scheduler::SchedulerConfig;
use suanwang_sim::queue::{self, Scenario};

use super::i18n::M;
use super::pages::{api_form, field, table};
use super::{Viewer, escape, ok, time, yuan};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::Body;
use crate::state::{AppState, now_ms};

/// Runs kept.
pub const RUNS_MAX: usize = 20;
/// The largest trace a run takes, bytes (uploaded or picked).
pub const TRACE_BYTES_MAX: usize = 64 << 20;
/// The largest upload (the request body), bytes.
pub const UPLOAD_BYTES_MAX: usize = 8 << 20;
/// The most jobs a run simulates.
pub const JOBS_MAX: usize = 200_000;

/// Built-in example federations (also in `examples/federations`).
const EXAMPLES: &[(&str, &str)] = &[
    ("greater-bay-area", include_str!("../../../../examples/federations/greater-bay-area.toml")),
    ("philly", include_str!("../../../../examples/federations/philly.toml")),
];

/// The runs so far and the one-at-a-time gate.
#[derive(Debug, Default)]
pub struct Simulations {
    runs: Mutex<VecDeque<RunView>>,
    next_id: Mutex<u64>,
    busy: tokio::sync::Mutex<()>,
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
    #[serde(skip)]
    series: Option<Box<PolicySeries>>,
}

fn sees(caller: &Caller, run: &RunView) -> bool {
    caller.sees_everything() || run.by == caller.actor()
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

fn guess_format(name: &str) -> Option<TraceFormat> {
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

fn invalid(code: &'static str, message: impl Into<String>, field: &'static str) -> ApiError {
    ApiError::bad_request(code, message).at(field)
}

/// `POST /api/v1/simulations` (anyone signed in): runs and answers the run's summary.
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewRun>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let federation_name = body.federation.clone().unwrap_or_else(|| "this".to_owned());
    let federation: Federation = if federation_name == "this" {
        state.federation.clone()
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
            .map_err(|e| ApiError::unavailable(format!("the built-in federation does not parse: {e}")))?
    };
    let policy: QueuePolicy =
        body.policy.as_deref().unwrap_or("drf+backfill").parse().map_err(
            |e: suanwang_sched::policy::UnknownQueuePolicy| invalid("invalid_policy", e.to_string(), "policy"),
        )?;
    let (label, text, guessed) = match (&body.trace, &body.trace_file) {
        (Some(text), None) => ("upload".to_owned(), text.clone(), None),
        (None, Some(file)) => {
            let dir = state.config.traces_dir.as_deref();
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
                .map_err(|e| ApiError::unavailable(format!("cannot read {file}: {e}")))?;
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
    let Ok(_gate) = state.simulations.busy.try_lock() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "a simulation is running; try again when it ends",
        ));
    };
    let by = caller.actor();
    let work = tokio::task::spawn_blocking(move || -> Result<RunView, ApiError> {
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
            at_ms: now_ms(),
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
    let mut view = work.await.map_err(|e| ApiError::unavailable(format!("the simulation stopped: {e}")))??;
    let mut runs = state.simulations.runs.lock().map_err(|_| ApiError::unavailable("simulations are unavailable"))?;
    let mut next =
        state.simulations.next_id.lock().map_err(|_| ApiError::unavailable("simulations are unavailable"))?;
    *next += 1;
    view.id = *next;
    if runs.len() >= RUNS_MAX {
        runs.pop_front();
    }
    runs.push_back(view.clone());
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/simulations`: your runs (everyone's for operators and auditors), newest first.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<RunView>>, ApiError> {
    let runs = state.simulations.runs.lock().map_err(|_| ApiError::unavailable("simulations are unavailable"))?;
    Ok(Json(runs.iter().rev().filter(|r| sees(&caller, r)).cloned().collect()))
}

/// `GET /api/v1/simulations/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<RunView>, ApiError> {
    let runs = state.simulations.runs.lock().map_err(|_| ApiError::unavailable("simulations are unavailable"))?;
    runs.iter()
        .find(|r| r.id == id && sees(&caller, r))
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("simulation {id}")))
}

/// `GET /ui/simulations`: the form, the runs, and the newest run's report.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Response> {
    let runs = ok(&viewer, list(State(state.clone()), viewer.caller.clone()).await)?;
    let files = trace_files(state.config.traces_dir.as_deref());
    let f = "sim";
    let mut federations =
        format!("<option value=\"this\">{} ({})</option>", viewer.t(M::ThisFederation), escape(&state.federation.name));
    for (name, _) in EXAMPLES {
        let _ = write!(federations, "<option>{name}</option>");
    }
    let mut traces = format!("<option value=\"\">{}</option>", viewer.t(M::UploadedFile));
    for file in &files {
        let _ = write!(traces, "<option>{}</option>", escape(file));
    }
    let mut formats = String::from("<option value=\"\">auto</option>");
    for name in ["jsonl", "philly", "openb", "swf"] {
        let _ = write!(formats, "<option>{name}</option>");
    }
    let select = |name: &str, label: &str, options: &str| {
        format!(
            "<div class=\"field\"><label for=\"{f}-{name}\">{}</label><select id=\"{f}-{name}\" name=\"{name}\" aria-describedby=\"{f}-{name}-error\">{options}</select>\
             <span class=\"field-error\" id=\"{f}-{name}-error\" data-field=\"{name}\"></span></div>",
            escape(label)
        )
    };
    let mut fields = select("federation", viewer.t(M::Federation), &federations);
    fields += &select("trace_file", viewer.t(M::Trace), &traces);
    fields += &format!(
        "<div class=\"field\"><label for=\"{f}-upload\">{}</label><input id=\"{f}-upload\" type=\"file\" data-file-into=\"trace\" \
         accept=\".jsonl,.csv,.swf,.txt\" aria-describedby=\"{f}-trace-error\"><span class=\"field-error\" id=\"{f}-trace-error\" data-field=\"trace\"></span></div>",
        viewer.t(M::UploadTrace)
    );
    fields += &select("trace_format", viewer.t(M::TraceFormat), &formats);
    fields += &field(f, "policy", viewer.t(M::Policy), "text", "drf+backfill", "");
    let form = api_form(f, "POST", "/api/v1/simulations", "go:/ui/simulations?run={id}", &fields, viewer.t(M::Run));

    let mut rows = String::new();
    for r in &runs {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/ui/simulations?run={id}\">{id}</a></td><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}%</td><td>{}</td></tr>",
            time(r.at_ms),
            escape(&r.trace),
            escape(&r.federation),
            escape(&r.policy),
            r.jobs,
            r.jct_h_mean,
            r.jct_h_p99,
            r.wait_h_mean,
            r.utilisation_pct,
            yuan(i128::from(r.cost_fen)),
            id = r.id,
        );
    }
    let chosen =
        query.ok().and_then(|q| q.0.run).and_then(|id| runs.iter().find(|r| r.id == id)).or_else(|| runs.first());
    let report = chosen.map(|r| report(r, &viewer)).unwrap_or_default();
    let runs_table = table(
        &viewer,
        &[
            M::Id,
            M::Time,
            M::Trace,
            M::Federation,
            M::Policy,
            M::Jobs,
            M::MeanJct,
            M::P99Jct,
            M::MeanWait,
            M::Utilisation,
            M::Cost,
        ],
        &rows,
        M::NoRuns,
    );
    let body = format!(
        "<p>{intro}</p>{form}<section aria-labelledby=\"h-runs\"><h2 id=\"h-runs\">{runs_h}</h2>{runs_table}</section>{report}",
        intro = viewer.t(M::SimIntro),
        runs_h = viewer.t(M::Runs),
    );
    Ok(viewer.page(M::Simulations, &body))
}

/// Query of `GET /ui/simulations`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    run: Option<u64>,
}

fn report(run: &RunView, viewer: &Viewer) -> String {
    let Some(s) = &run.series else { return String::new() };
    let one = |points: &Vec<(f64, f64)>| vec![Series { name: run.policy.clone(), points: points.clone() }];
    let hours = if viewer.lang == super::i18n::Lang::Zh { "小时" } else { "hours" };
    let charts = [
        LineChart::new(viewer.t(M::JctCdf), "JCT (s, log)", viewer.t(M::JobsFinishedWithin), one(&s.jct_cdf)).log_x(),
        LineChart::new(viewer.t(M::QueueOverTime), hours, viewer.t(M::JobsWaiting), one(&s.queue)),
        LineChart::new(viewer.t(M::UtilisationOverTime), hours, viewer.t(M::PercentAllocated), one(&s.utilization)),
    ];
    let mut pools = String::new();
    for (name, card_hours, util, started) in &s.pools {
        let _ = write!(
            pools,
            "<tr><th scope=\"row\">{}</th><td>{started}</td><td>{card_hours:.1}</td><td>{util:.1}%</td></tr>",
            escape(name)
        );
    }
    let pools = table(viewer, &[M::Pool, M::Jobs, M::CardHours, M::Utilisation], &pools, M::Nothing);
    format!(
        "<section aria-labelledby=\"h-report\" id=\"report\"><h2 id=\"h-report\">{} {} · {} · {}</h2>{}{pools}</section>",
        viewer.t(M::Report),
        run.id,
        escape(&run.trace),
        escape(&run.policy),
        charts.iter().map(|c| format!("<figure>{}</figure>", c.render())).collect::<String>(),
    )
}
