//! `suanwang simulate queue` and `suanwang trace convert`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use suanwang_formats::trace::{Trace, TraceFormat, TraceOptions};
use suanwang_model::catalog::Catalog;
use suanwang_model::federation::{Federation, PoolId};
use suanwang_sched::policy::QueuePolicy;
use suanwang_sched::scheduler::SchedulerConfig;
use suanwang_sim::queue::{self, Outage, QueueRun, QueueSummary, Scenario};
use suanwang_sim::resolve::Resolved;
use suanwang_sim::stats::round2;

use crate::args::{ConvertArgs, Format, QueueArgs, TraceFormatArg, TraceInput};
use crate::error::CliError;
use crate::output::{Table, print};
use crate::{input, parallel};

/// Reads a trace as the flags say, reporting skipped lines on stderr.
pub fn load_trace(args: &TraceInput, catalog: &Catalog) -> Result<Trace, CliError> {
    let format = match args.trace_format {
        TraceFormatArg::Philly => TraceFormat::Philly,
        TraceFormatArg::Openb => TraceFormat::Openb,
        TraceFormatArg::Swf => TraceFormat::Swf,
        TraceFormatArg::Jsonl => TraceFormat::Jsonl,
    };
    let options = TraceOptions {
        skip_bad_lines: args.skip_bad_lines,
        max_devices_per_task: args.max_gpus_per_task,
        swf_processors_per_gpu: args.swf_processors_per_gpu,
    };
    let source = args.trace.display().to_string();
    let trace = suanwang_formats::trace::parse(format, &source, &input::read_text(&args.trace)?, catalog, options)?;
    if trace.skipped > 0 {
        eprintln!("skipped {} malformed lines; the first:", trace.skipped);
        for error in trace.skipped_examples.iter().take(5) {
            eprintln!("  {error}");
        }
    }
    Ok(trace)
}

pub fn convert(args: &ConvertArgs) -> Result<(), CliError> {
    let catalog = input::catalog(args.input.catalog.as_deref())?;
    let trace = load_trace(&args.input, &catalog)?;
    let text = suanwang_formats::trace::to_jsonl(&trace, &catalog);
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::input("output_unwritable", format!("{}: {e}", path.display())))?,
        None => print(&text)?,
    }
    eprintln!("{} jobs converted", trace.jobs.len());
    Ok(())
}

/// Turns trace jobs (with names) into scheduler jobs (with ids) for `federation`.
pub fn resolve(trace: &Trace, federation: &Federation, source: &str) -> Result<Resolved, CliError> {
    suanwang_sim::resolve::resolve(trace, federation, source).map_err(|e| CliError::input(e.code, e.message))
}

/// Weights by tenant index from `TENANT=WEIGHT` flags (others weigh 1).
fn tenant_weights(flags: &[String], tenants: &[String]) -> Result<Vec<f64>, CliError> {
    let mut weights = vec![1.0; tenants.len()];
    for flag in flags {
        let bad = || {
            CliError::input(
                "invalid_argument",
                format!("--tenant-weight {flag:?}: expected TENANT=WEIGHT with a positive weight"),
            )
        };
        let (name, weight) = flag.rsplit_once('=').ok_or_else(bad)?;
        let weight: f64 =
            weight.parse().ok().filter(|w: &f64| w.is_finite() && *w > 0.0 && *w <= 1e6).ok_or_else(bad)?;
        let index = tenants.iter().position(|t| t == name).ok_or_else(|| {
            let shown: Vec<&str> = tenants.iter().take(20).map(String::as_str).collect();
            CliError::input(
                "unknown_reference",
                format!("--tenant-weight: no tenant {name:?} in the trace; tenants are: {}", shown.join(", ")),
            )
        })?;
        weights[index] = weight;
    }
    Ok(weights)
}

fn parse_outage(text: &str, federation: &Federation) -> Result<Outage, CliError> {
    let bad = || {
        CliError::input(
            "invalid_argument",
            format!("--outage {text:?}: expected POOL:START_S:DURATION_S, e.g. philly:864000:21600"),
        )
    };
    let mut parts = text.rsplitn(3, ':');
    let duration_s: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let start_s: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let name = parts.next().ok_or_else(bad)?;
    let pool = federation.pools().find(|(_, p)| p.name == name).map(|(id, _)| id).ok_or_else(|| {
        let known = federation.pools().map(|(_, p)| p.name.as_str()).collect::<Vec<_>>().join(", ");
        CliError::input("unknown_reference", format!("--outage: unknown pool {name:?}; pools are: {known}"))
    })?;
    Ok(Outage { pool, start_s, duration_s })
}

pub fn simulate(args: &QueueArgs) -> Result<(), CliError> {
    let catalog = input::catalog(args.input.catalog.as_deref())?;
    let federation_source = args.federation.display().to_string();
    let federation =
        suanwang_formats::federation::parse(&federation_source, &input::read_text(&args.federation)?, &catalog)?;
    if federation.pool_count() == 0 {
        return Err(CliError::input("empty_federation", format!("{federation_source}: the federation has no pools")));
    }
    let outages = args.outage.iter().map(|o| parse_outage(o, &federation)).collect::<Result<Vec<_>, _>>()?;
    let reference_tflops = match &args.reference_accelerator {
        None => None,
        Some(name) => {
            let id = catalog
                .resolve(name)
                .map_err(|e| CliError::input(e.code(), format!("--reference-accelerator: {e}")))?;
            Some(catalog.get(id).fp16_dense_tflops.ok_or_else(|| {
                CliError::input(
                    "invalid_argument",
                    format!("--reference-accelerator: {name} has no published FP16 figure"),
                )
            })?)
        }
    };
    let trace = load_trace(&args.input, &catalog)?;
    let resolved = resolve(&trace, &federation, &args.input.trace.display().to_string())?;
    let programs = match &args.programs {
        Some(dir) => load_programs(dir)?,
        None => Vec::new(),
    };
    let policies = args.policy.as_ref().map_or_else(|| vec![QueuePolicy::DEFAULT], |list| list.0.clone());
    let tenant_weights = tenant_weights(&args.tenant_weight, &resolved.tenants)?;
    let started = Instant::now();
    let scenarios: Vec<Scenario> = policies
        .iter()
        .map(|&policy| {
            let mut scheduler = SchedulerConfig {
                policy,
                node_policy: args.placement,
                las_threshold_device_s: args.las_threshold,
                las_starvation_s: args.las_starvation,
                tenant_weights: tenant_weights.clone(),
                ..SchedulerConfig::default()
            };
            scheduler.choice.reference_tflops = reference_tflops;
            Scenario { scheduler, outages: outages.clone(), explain: args.explain.is_some() }
        })
        .collect();
    let runs: Vec<QueueRun> = parallel::map(
        &scenarios,
        parallel::threads(args.threads),
        |scenario| queue::run(&federation, resolved.tenants.len(), &resolved.jobs, scenario),
        || {},
    );
    let elapsed = started.elapsed();
    // A job no pool can run fails with its reason and is counted; a trace of nothing else has
    // nothing to replay. (Whether a pool can run a job does not depend on the policy.)
    if let Some(run) = runs.first()
        && !resolved.jobs.is_empty()
        && run.jobs.iter().all(|o| o.rejected.is_some())
    {
        let example = run.jobs.iter().find_map(|o| o.rejected.as_ref().map(|r| format!("{}: {r}", o.name)));
        return Err(CliError::input(
            "no_runnable_job",
            format!(
                "{}: no pool of {} can run any of the {} jobs; for example {}",
                args.input.trace.display(),
                federation.name,
                resolved.jobs.len(),
                example.unwrap_or_default()
            ),
        ));
    }
    let mut results: Vec<PolicyJson> =
        policies.iter().zip(&runs).map(|(p, run)| PolicyJson::new(*p, run, &federation, &resolved)).collect();
    if args.programs.is_some() {
        for (result, run) in results.iter_mut().zip(&runs) {
            let report =
                suanwang_sim::money::settle(&federation, &resolved.tenants, run, &programs, args.platform_fee_bps)
                    .map_err(|e| CliError::internal("money", e))?;
            result.money = Some(MoneyJson::new(&report));
        }
    }
    let text = match args.format {
        Format::Json => {
            let json = if results.len() == 1 {
                serde_json::to_string_pretty(&results[0])
            } else {
                serde_json::to_string_pretty(&results)
            };
            json.map_err(|e| CliError::internal("serialize", e.to_string()))? + "\n"
        }
        Format::Table => table(&trace, &federation, &resolved, &results),
    };
    print(&text)?;
    eprintln!("{} policies over {} jobs in {:.1} s", policies.len(), resolved.jobs.len(), elapsed.as_secs_f64());
    if let Some(path) = &args.explain {
        let mut lines = String::new();
        for (policy, run) in policies.iter().zip(&runs) {
            for e in &run.explanations {
                let line =
                    ExplainJson { policy: policy.to_string(), job: &e.job, start_s: e.start_s, reason: &e.reason };
                lines += &serde_json::to_string(&line).map_err(|e| CliError::internal("serialize", e.to_string()))?;
                lines.push('\n');
            }
        }
        std::fs::write(path, lines)
            .map_err(|e| CliError::input("output_unwritable", format!("{}: {e}", path.display())))?;
        eprintln!("explanations written to {}", path.display());
    }
    if let Some(path) = &args.report {
        let series: Vec<suanwang_report::queue::PolicySeries> = policies
            .iter()
            .zip(&runs)
            .map(|(p, run)| suanwang_report::queue::PolicySeries::new(p.to_string(), run, &federation))
            .collect();
        let title = format!("{} on {}", args.input.trace.display(), federation.name);
        let html = suanwang_report::queue::queue_report(&title, &series);
        std::fs::write(path, html)
            .map_err(|e| CliError::input("report_unwritable", format!("{}: {e}", path.display())))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

#[derive(Serialize)]
struct ExplainJson<'a> {
    policy: String,
    job: &'a str,
    start_s: u64,
    reason: &'a str,
}

/// The JSON shape of one policy's queue simulation (documented in docs/simulate-queue.md).
#[derive(Serialize)]
struct PolicyJson {
    policy: String,
    summary: SummaryJson,
    pools: Vec<PoolJson>,
    tenants: Vec<TenantJson>,
    unschedulable: Vec<UnschedulableJson>,
    /// With `--programs`: cost, subsidy and budgets by the platform's money rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    money: Option<MoneyJson>,
}

#[derive(Serialize)]
struct MoneyJson {
    cost_fen: u64,
    subsidy_fen: u64,
    tenant_share_fen: u64,
    platform_fee_fen: u64,
    ledger_balanced: bool,
    programs: Vec<ProgramJson>,
}

#[derive(Serialize)]
struct ProgramJson {
    program: String,
    budget_fen: u64,
    paid_fen: u64,
    reserved_fen: u64,
    left_fen: u64,
    tenants_approved: u64,
    claims: u64,
    refused: BTreeMap<String, u64>,
}

impl MoneyJson {
    fn new(r: &suanwang_sim::money::MoneyReport) -> Self {
        MoneyJson {
            cost_fen: r.cost_fen,
            subsidy_fen: r.subsidy_fen,
            tenant_share_fen: r.tenant_share_fen,
            platform_fee_fen: r.platform_fee_fen,
            ledger_balanced: r.balanced,
            programs: r
                .programs
                .iter()
                .map(|p| ProgramJson {
                    program: p.program.clone(),
                    budget_fen: p.budget_fen,
                    paid_fen: p.paid_fen,
                    reserved_fen: p.reserved_fen,
                    left_fen: p.left_fen,
                    tenants_approved: p.approved,
                    claims: p.claims,
                    refused: p.refused.clone(),
                })
                .collect(),
        }
    }
}

/// Every programme file (`*.toml`) in `dir`, by file name.
fn load_programs(dir: &std::path::Path) -> Result<Vec<suanwang_billing::Program>, CliError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::input("programs_unreadable", format!("--programs {}: {e}", dir.display())))?;
    let mut paths: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(CliError::input(
            "programs_empty",
            format!("--programs {}: no *.toml programme files", dir.display()),
        ));
    }
    if paths.len() > 256 {
        return Err(CliError::input(
            "programs_too_many",
            format!("--programs {}: at most 256 programmes", dir.display()),
        ));
    }
    let mut programs: Vec<suanwang_billing::Program> = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::input("programs_unreadable", format!("{}: {e}", path.display())))?;
        let program = suanwang_billing::Program::from_toml(&text)
            .map_err(|e| CliError::input("invalid_program", format!("{}: {e}", path.display())))?;
        if programs.iter().any(|p| p.id == program.id) {
            return Err(CliError::input(
                "invalid_program",
                format!("{}: a second programme {}", path.display(), program.id),
            ));
        }
        programs.push(program);
    }
    Ok(programs)
}

#[derive(Serialize)]
struct SummaryJson {
    jobs: usize,
    jobs_unschedulable: usize,
    jct_s_mean: f64,
    jct_s_p50: f64,
    jct_s_p99: f64,
    queue_s_mean: f64,
    queue_s_p50: f64,
    makespan_s: u64,
    utilization_pct: f64,
    cost_fen_total: i64,
    energy_kwh_total: f64,
    jobs_preempted: usize,
    preemptions_per_job: f64,
    jobs_failed_over: usize,
    /// The mean duration: the mean JCT if no job ever waited (a lower bound).
    duration_s_mean: f64,
}

#[derive(Serialize)]
struct PoolJson {
    pool: String,
    jobs_started: u64,
    gpu_hours: f64,
    utilization_pct: f64,
}

#[derive(Serialize)]
struct TenantJson {
    tenant: String,
    jobs: usize,
    jct_s_mean: f64,
    queue_s_mean: f64,
    cost_fen: i64,
}

#[derive(Serialize)]
struct UnschedulableJson {
    job: String,
    reason: String,
}

impl SummaryJson {
    fn new(s: &QueueSummary, duration_s_mean: f64) -> Self {
        SummaryJson {
            jobs: s.jobs,
            jobs_unschedulable: s.jobs_unschedulable,
            jct_s_mean: round2(s.jct_s_mean),
            jct_s_p50: round2(s.jct_s_p50),
            jct_s_p99: round2(s.jct_s_p99),
            queue_s_mean: round2(s.queue_s_mean),
            queue_s_p50: round2(s.queue_s_p50),
            makespan_s: s.makespan_s,
            utilization_pct: round2(s.utilization_pct),
            cost_fen_total: s.cost_fen_total,
            energy_kwh_total: round2(s.energy_kwh_total),
            jobs_preempted: s.jobs_preempted,
            preemptions_per_job: if s.jobs == 0 {
                0.0
            } else {
                (s.preemptions_total as f64 / s.jobs as f64 * 10_000.0).round() / 10_000.0
            },
            jobs_failed_over: s.jobs_failed_over,
            duration_s_mean: round2(duration_s_mean),
        }
    }
}

impl PolicyJson {
    fn new(policy: QueuePolicy, run: &QueueRun, federation: &Federation, resolved: &Resolved) -> Self {
        let used: u128 = run.pool_use.iter().map(|u| u.0).sum();
        let capacity: u64 = run.pool_capacity.iter().sum();
        let summary = queue::summarise(&run.jobs, run.makespan_s, used, capacity);
        let pools = federation
            .pools()
            .map(|(id, pool)| {
                let (milli_s, started) = run.pool_use[id.index()];
                let capacity = run.pool_capacity[id.index()];
                PoolJson {
                    pool: pool.name.clone(),
                    jobs_started: started,
                    gpu_hours: round2(milli_s as f64 / 1000.0 / 3600.0),
                    utilization_pct: if capacity == 0 || run.makespan_s == 0 {
                        0.0
                    } else {
                        round2(milli_s as f64 * 100.0 / (capacity as f64 * run.makespan_s as f64))
                    },
                }
            })
            .collect();
        let tenants = resolved
            .tenants
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mine: Vec<_> = run.jobs.iter().filter(|o| o.tenant as usize == i).collect();
                let s = queue::summarise(mine.iter().copied(), run.makespan_s, 0, 0);
                TenantJson {
                    tenant: name.clone(),
                    jobs: s.jobs,
                    jct_s_mean: round2(s.jct_s_mean),
                    queue_s_mean: round2(s.queue_s_mean),
                    cost_fen: s.cost_fen_total,
                }
            })
            .collect();
        let unschedulable = run
            .jobs
            .iter()
            .filter_map(|o| o.rejected.as_ref().map(|r| UnschedulableJson { job: o.name.clone(), reason: r.clone() }))
            .take(20)
            .collect();
        let _ = PoolId::from_index(0);
        PolicyJson {
            policy: policy.to_string(),
            summary: SummaryJson::new(&summary, resolved.duration_s_mean),
            pools,
            tenants,
            unschedulable,
            money: None,
        }
    }
}

fn hours(seconds: f64) -> String {
    format!("{:.2}", seconds / 3600.0)
}

fn table(trace: &Trace, federation: &Federation, resolved: &Resolved, results: &[PolicyJson]) -> String {
    let capacity: u64 = federation.capacity().total.cards;
    let mut out = format!(
        "{} jobs from {} tenants on {} ({} pools, {} cards); no-queueing lower bound (mean duration): {} h\n\n",
        trace.jobs.len(),
        resolved.tenants.len(),
        federation.name,
        federation.pool_count(),
        capacity,
        hours(resolved.duration_s_mean)
    );
    let mut table = Table::new(&[
        "policy",
        "jobs",
        "JCT mean h",
        "JCT p50 h",
        "JCT p99 h",
        "queue mean h",
        "preempt/job",
        "failed over",
        "util %",
        "cost ¥",
        "unschedulable",
    ]);
    for r in results {
        let s = &r.summary;
        table.row(vec![
            r.policy.clone(),
            s.jobs.to_string(),
            hours(s.jct_s_mean),
            hours(s.jct_s_p50),
            hours(s.jct_s_p99),
            hours(s.queue_s_mean),
            format!("{:.3}", s.preemptions_per_job),
            s.jobs_failed_over.to_string(),
            format!("{:.1}", s.utilization_pct),
            format!("{:.2}", s.cost_fen_total as f64 / 100.0),
            s.jobs_unschedulable.to_string(),
        ]);
    }
    out += &table.render();
    for r in results {
        let Some(m) = &r.money else { continue };
        let yuan = |fen: u64| format!("{:.2}", fen as f64 / 100.0);
        out += &format!(
            "\n{}: cost ¥{}, subsidy ¥{}, tenants pay ¥{}, platform fee ¥{}; ledger {}\n",
            r.policy,
            yuan(m.cost_fen),
            yuan(m.subsidy_fen),
            yuan(m.tenant_share_fen),
            yuan(m.platform_fee_fen),
            if m.ledger_balanced { "balances" } else { "DOES NOT BALANCE" }
        );
        let mut t =
            Table::new(&["programme", "approved", "claims", "paid ¥", "reserved ¥", "budget left ¥", "refused"]);
        for p in &m.programs {
            let refused: Vec<String> = p.refused.iter().map(|(code, n)| format!("{code} {n}")).collect();
            t.row(vec![
                p.program.clone(),
                p.tenants_approved.to_string(),
                p.claims.to_string(),
                yuan(p.paid_fen),
                yuan(p.reserved_fen),
                yuan(p.left_fen),
                refused.join(", "),
            ]);
        }
        out += &t.render();
    }
    if let Some(fifo) = results.iter().find(|r| r.policy == "fifo") {
        out += "\nmean JCT relative to fifo: ";
        out += &results
            .iter()
            .map(|r| format!("{} {:.2}×", r.policy, r.summary.jct_s_mean / fifo.summary.jct_s_mean.max(1e-9)))
            .collect::<Vec<_>>()
            .join(", ");
        out.push('\n');
    }
    out
}
