//! `suanwang simulate placement`: load the openb CSVs, run every (policy, seed) pair on a pool of
//! threads, aggregate, print, and optionally write the HTML report.

use std::io::IsTerminal;
use std::time::Instant;

use serde::Serialize;
use suanwang_placement::cluster::Cluster;
use suanwang_placement::policy::PolicyName;
use suanwang_sim::placement::{
    self, Infeasible, InfeasibleTask, PolicyResult, ProtocolConfig, SeedRun, Trial, Workload,
};
use suanwang_sim::stats::round2;

use crate::args::{Format, PlacementArgs};
use crate::error::CliError;
use crate::output::{Table, print};
use crate::{input, parallel};

pub fn placement(args: &PlacementArgs) -> Result<(), CliError> {
    let catalog = input::catalog(args.catalog.as_deref())?;
    let config = ProtocolConfig::new(args.inflation)?;
    let nodes_source = args.nodes.display().to_string();
    let nodes = suanwang_formats::openb::parse_nodes(&nodes_source, &input::read_text(&args.nodes)?, &catalog)?;
    let tasks_source = args.tasks.display().to_string();
    let tasks = suanwang_formats::openb::parse_tasks(&tasks_source, &input::read_text(&args.tasks)?, &catalog)?;
    let task_count = tasks.len();
    let cluster =
        Cluster::new(&nodes).map_err(|e| CliError::input("invalid_cluster", format!("{nodes_source}: {e}")))?;
    let workload = Workload::new(tasks.into_iter().map(|t| (t.name, t.spec)).collect())?;
    // Tasks that fit no node are tried, fail and are counted (as the paper's simulator does);
    // only a workload with no task that fits at all is refused.
    let infeasible =
        workload.infeasible(&cluster).map_err(|e| CliError::input(e.code(), format!("{tasks_source}: {e}")))?;
    let policies = args.policy.as_ref().map_or_else(|| vec![PolicyName::DEFAULT], |list| list.0.clone());
    let seeds = &args.seeds.0;

    let started = Instant::now();
    let trials: Vec<Trial> =
        seeds.iter().map(|&seed| Trial::new(&cluster, &workload, seed, config)).collect::<Result<_, _>>()?;
    let runs = run_all(&cluster, &workload, &trials, &policies, args.threads);
    let results: Vec<PolicyResult> = runs.chunks(seeds.len()).map(placement::summarise).collect();
    let elapsed = started.elapsed();

    let context = RunContext {
        nodes_file: &nodes_source,
        tasks_file: &tasks_source,
        nodes: cluster.len(),
        gpus: cluster.gpu_milli_capacity() / 1000,
        tasks: task_count,
        inflation: config.inflation(),
        infeasible: &infeasible,
    };
    let text = match args.format {
        Format::Json => {
            let examples: Vec<InfeasibleJson> = infeasible.examples.iter().map(InfeasibleJson::from).collect();
            let wire: Vec<PolicyJson> = results
                .iter()
                .map(|r| PolicyJson {
                    tasks_infeasible: infeasible.tasks,
                    infeasible_examples: examples.clone(),
                    ..PolicyJson::from(r)
                })
                .collect();
            let json = if wire.len() == 1 {
                serde_json::to_string_pretty(&wire[0])
            } else {
                serde_json::to_string_pretty(&wire)
            };
            json.map_err(|e| CliError::internal("serialize", e.to_string()))? + "\n"
        }
        Format::Table => table(&context, &results),
    };
    print(&text)?;
    eprintln!(
        "{} × {} seeds in {:.1} s on {} threads",
        plural(policies.len(), "policy", "policies"),
        seeds.len(),
        elapsed.as_secs_f64(),
        parallel::threads(args.threads)
    );
    if let Some(path) = &args.report {
        let html = suanwang_report::placement_report(&context.title(), &context.notes(), &results);
        std::fs::write(path, html)
            .map_err(|e| CliError::input("report_unwritable", format!("{}: {e}", path.display())))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Runs every (policy, seed) pair, results grouped by policy in the order given, seeds in order.
fn run_all(
    cluster: &Cluster,
    workload: &Workload,
    trials: &[Trial],
    policies: &[PolicyName],
    requested_threads: Option<u16>,
) -> Vec<SeedRun> {
    let jobs: Vec<(PolicyName, &Trial)> =
        policies.iter().flat_map(|&policy| trials.iter().map(move |trial| (policy, trial))).collect();
    let progress = progress_bar(jobs.len() as u64);
    let runs = parallel::map(
        &jobs,
        parallel::threads(requested_threads),
        |&(policy, trial)| placement::run(cluster, workload, trial, policy),
        || progress.inc(1),
    );
    progress.finish_and_clear();
    runs
}

pub fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs, eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

struct RunContext<'a> {
    nodes_file: &'a str,
    tasks_file: &'a str,
    nodes: usize,
    gpus: u64,
    tasks: usize,
    inflation: f64,
    infeasible: &'a Infeasible,
}

impl RunContext<'_> {
    /// What to say about the tasks that fit no node (nothing when every task fits).
    fn notes(&self) -> Vec<String> {
        if self.infeasible.tasks == 0 {
            return Vec::new();
        }
        let examples: Vec<String> = self.infeasible.examples.iter().map(ToString::to_string).collect();
        vec![format!(
            "{} of {} tasks fit no node even in an empty cluster; tried, they fail and are counted (as in the paper's simulator). For example: {}.",
            self.infeasible.tasks,
            self.tasks,
            examples.join("; ")
        )]
    }

    fn title(&self) -> String {
        let file = |path: &str| path.rsplit('/').next().unwrap_or(path).to_owned();
        format!(
            "{} on {} ({} nodes, {} GPUs; {} tasks inflated to {}× capacity)",
            file(self.tasks_file),
            file(self.nodes_file),
            self.nodes,
            self.gpus,
            self.tasks,
            self.inflation
        )
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

fn table(context: &RunContext<'_>, results: &[PolicyResult]) -> String {
    let mut out = format!("{}\n", context.title());
    for note in context.notes() {
        out += &format!("{note}\n");
    }
    if let Some(first) = results.first() {
        out += &format!("seeds: {}\n\n", seeds_text(&first.seeds));
    }
    let mut table = Table::new(&[
        "policy",
        "unalloc%@100",
        "alloc%@90",
        "alloc%@130 mean",
        "frag ratio%@90",
        "failed tasks (median)",
        "of which fit no node",
    ]);
    for result in results {
        let s = &result.summary;
        let failed: Vec<f64> = result.per_seed.iter().map(|p| p.tasks_failed as f64).collect();
        table.row(vec![
            result.policy.as_str().to_owned(),
            cell(s.unallocated_pct_at_arrived_100),
            cell(s.allocated_pct_at_arrived_90),
            cell(s.allocated_pct_mean_at_arrived_130),
            cell(s.frag_ratio_pct_at_arrived_90),
            suanwang_sim::stats::median(&failed).map_or_else(|| "-".to_owned(), |m| format!("{m:.0}")),
            suanwang_sim::stats::median(&result.per_seed.iter().map(|p| p.tasks_infeasible as f64).collect::<Vec<_>>())
                .map_or_else(|| "-".to_owned(), |m| format!("{m:.0}")),
        ]);
    }
    out + &table.render()
}

fn seeds_text(seeds: &[u64]) -> String {
    let contiguous = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(first), Some(last)) if contiguous && seeds.len() > 2 => format!("{first}..{last}"),
        _ => seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
    }
}

/// The JSON shape of one policy's result (documented in docs/simulate-placement.md).
#[derive(Serialize)]
struct PolicyJson {
    policy: &'static str,
    seeds: Vec<u64>,
    /// Tasks of the workload (before inflation) that fit no node of the empty cluster.
    tasks_infeasible: u64,
    /// A few of them, of distinct shapes.
    infeasible_examples: Vec<InfeasibleJson>,
    buckets: Vec<BucketJson>,
    summary: SummaryJson,
    per_seed: Vec<SeedJson>,
}

#[derive(Clone, Serialize)]
struct InfeasibleJson {
    name: String,
    cpu_milli: u32,
    memory_mib: u32,
    gpus: u8,
    gpu_milli: u16,
    /// Whether it is pinned to some accelerator models.
    pinned: bool,
}

impl From<&InfeasibleTask> for InfeasibleJson {
    fn from(t: &InfeasibleTask) -> Self {
        let request = t.shape.accelerators();
        InfeasibleJson {
            name: t.name.clone(),
            cpu_milli: t.shape.cpu_milli(),
            memory_mib: t.shape.memory_mib(),
            gpus: request.count(),
            gpu_milli: request.milli_per_device(),
            pinned: !t.shape.accepted_models().is_any(),
        }
    }
}

#[derive(Serialize)]
struct BucketJson {
    arrived_pct: u32,
    allocated_pct: f64,
    unallocated_pct: f64,
    frag_amount_pct: f64,
    frag_ratio_pct: f64,
}

#[derive(Serialize)]
struct SummaryJson {
    unallocated_pct_at_arrived_100: Option<f64>,
    allocated_pct_at_arrived_90: Option<f64>,
    allocated_pct_mean_at_arrived_130: Option<f64>,
    frag_ratio_pct_at_arrived_90: Option<f64>,
}

#[derive(Serialize)]
struct SeedJson {
    seed: u64,
    unallocated_pct_at_arrived_100: Option<f64>,
    tasks_tried: u64,
    tasks_failed: u64,
    tasks_infeasible: u64,
}

impl From<&PolicyResult> for PolicyJson {
    fn from(result: &PolicyResult) -> Self {
        let s = &result.summary;
        PolicyJson {
            policy: result.policy.as_str(),
            seeds: result.seeds.clone(),
            tasks_infeasible: 0,
            infeasible_examples: Vec::new(),
            buckets: result
                .buckets
                .iter()
                .map(|b| BucketJson {
                    arrived_pct: b.arrived_pct,
                    allocated_pct: round2(b.allocated_pct),
                    unallocated_pct: round2(b.unallocated_pct()),
                    frag_amount_pct: round2(b.frag_amount_pct),
                    frag_ratio_pct: round2(b.frag_ratio_pct),
                })
                .collect(),
            summary: SummaryJson {
                unallocated_pct_at_arrived_100: s.unallocated_pct_at_arrived_100.map(round2),
                allocated_pct_at_arrived_90: s.allocated_pct_at_arrived_90.map(round2),
                allocated_pct_mean_at_arrived_130: s.allocated_pct_mean_at_arrived_130.map(round2),
                frag_ratio_pct_at_arrived_90: s.frag_ratio_pct_at_arrived_90.map(round2),
            },
            per_seed: result
                .per_seed
                .iter()
                .map(|p| SeedJson {
                    seed: p.seed,
                    unallocated_pct_at_arrived_100: p.unallocated_pct_at_arrived_100.map(round2),
                    tasks_tried: p.tasks_tried,
                    tasks_failed: p.tasks_failed,
                    tasks_infeasible: p.tasks_infeasible,
                })
                .collect(),
        }
    }
}
