//! Command-line arguments (clap). Help texts teach: each command says what it does, what its
//! inputs look like, and gives an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use suanwang_placement::policy::PolicyName;
use suanwang_sched::policy::QueuePolicy;

/// Suanwang (算网): federate compute pools into one compute-power network, schedule AI jobs
/// across them, and plan by simulation.
#[derive(Parser, Debug)]
#[command(name = "suanwang", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  suanwang federation show examples/federations/greater-bay-area.toml
  suanwang catalog
  suanwang simulate placement \\
      --nodes ../shared/traces/alibaba-gpu-v2023/openb_node_list_gpu_node.csv \\
      --tasks ../shared/traces/alibaba-gpu-v2023/openb_pod_list_default.csv \\
      --policy all --report placement.html";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect federation files (sites, links, pools).
    #[command(subcommand)]
    Federation(FederationCommand),
    /// List the accelerator catalog (models, memory, FP16 TFLOPS, software stack).
    Catalog(CatalogArgs),
    /// Replay traces against the scheduling core.
    #[command(subcommand)]
    Simulate(SimulateCommand),
    /// Work with job traces (convert between formats).
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Measure the platform's own speed.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Queue N synthetic Philly-shaped jobs against a federation and measure scheduling decisions
    /// per second in steady state (one job finishes, the scheduler makes a pass), with latency
    /// percentiles and peak memory.
    #[command(
        after_help = "Example:\n  suanwang bench scheduler --federation examples/federations/greater-bay-area.toml --jobs 200000"
    )]
    Scheduler(BenchSchedulerArgs),
}

#[derive(Args, Debug)]
pub struct BenchSchedulerArgs {
    /// The federation file (TOML).
    #[arg(long, value_name = "FILE")]
    pub federation: PathBuf,
    /// Jobs to queue (1..=10,000,000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub jobs: u64,
    /// Queue policy (default: the scheduler's default).
    #[arg(long, value_parser = |s: &str| s.parse::<QueuePolicy>().map_err(|e| e.to_string()))]
    pub policy: Option<QueuePolicy>,
    /// Completions to measure in steady state (default: a quarter of the jobs, at most 50,000).
    #[arg(long)]
    pub completions: Option<u64>,
    /// Seed for the synthetic jobs.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// Read a trace in any supported format and write it as Suanwang's JSONL (docs/trace-formats.md).
    #[command(
        after_help = "Example:\n  suanwang trace convert --trace ../shared/traces/philly/philly.csv --trace-format philly > philly.jsonl"
    )]
    Convert(ConvertArgs),
}

#[derive(Args, Debug)]
pub struct TraceInput {
    /// The trace file.
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// Its format.
    #[arg(long, value_enum)]
    pub trace_format: TraceFormatArg,
    /// Continue past malformed lines (they are counted and the first few shown) instead of failing.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Split jobs needing more accelerators than this into gangs of equal tasks (Philly, SWF).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub max_gpus_per_task: u8,
    /// SWF: processors per accelerator; 0 reads processors as CPU cores.
    #[arg(long, default_value_t = 0)]
    pub swf_processors_per_gpu: u32,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub input: TraceInput,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TraceFormatArg {
    /// timestamp,duration,num_gpus,gpu_time,cluster
    Philly,
    /// an openb task list (creation and deletion times)
    Openb,
    /// Standard Workload Format (Parallel Workloads Archive)
    Swf,
    /// Suanwang's JSON Lines
    Jsonl,
}

#[derive(Subcommand, Debug)]
pub enum FederationCommand {
    /// Print a federation's pools, and its cards and PFLOPS by site and by accelerator.
    ///
    /// The file format is documented in docs/federation-format.md.
    Show(FederationShowArgs),
}

#[derive(Args, Debug)]
pub struct FederationShowArgs {
    /// The federation file (TOML).
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Show this catalog file instead of the built-in one (checks it, too).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum SimulateCommand {
    /// Replay a task list against a node list with the FGD paper's protocol (ATC'23).
    ///
    /// Tasks are sorted by name, shuffled and inflated until they ask for --inflation times the
    /// cluster's GPUs; each is tried once and never leaves. After every task the allocated share
    /// and the fragmentation are recorded against the arrived share; per seed, records are
    /// bucketed by whole arrived%, and each bucket reports the median over the seeds.
    ///
    /// Inputs are the openb CSVs of the Alibaba GPU trace 2023 (see ../shared/traces/README.md).
    #[command(after_help = PLACEMENT_EXAMPLES)]
    Placement(PlacementArgs),
    /// Replay a job trace over time against a federation: queues, fair share, gangs, preemption,
    /// failover, and pool choice by price, latency, data and energy.
    ///
    /// A discrete-event simulation with a virtual clock drives the same scheduler the server runs.
    /// Policies are a discipline (fifo, priority, sjf, las, drf) with or without +backfill; sjf
    /// reads true durations and is an oracle bound, the others never do. Without --policy the
    /// default (las+backfill) runs.
    #[command(after_help = QUEUE_EXAMPLES)]
    Queue(QueueArgs),
}

const QUEUE_EXAMPLES: &str = "\
Examples:
  # Every policy on the whole Philly trace, 624 GPUs:
  suanwang simulate queue --trace ../shared/traces/philly/philly.csv --trace-format philly \\
      --federation examples/federations/philly.toml --policy all
  # The default policy with an outage of the pool from day 10 for 6 hours, and explanations:
  suanwang simulate queue --trace T.csv --trace-format philly --federation F.toml \\
      --outage philly:864000:21600 --explain why.jsonl --format json";

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[command(flatten)]
    pub input: TraceInput,
    /// The federation file (TOML).
    #[arg(long, value_name = "FILE")]
    pub federation: PathBuf,
    /// Queue policies, comma-separated, or `all`: DISCIPLINE[+backfill] with DISCIPLINE one of
    /// fifo, priority, sjf, las, drf.
    #[arg(long, value_name = "NAME[,NAME…]", value_parser = parse_queue_policies)]
    pub policy: Option<QueuePolicyList>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write a self-contained HTML report with plots to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Write why each job went where it did, one JSON object per start.
    #[arg(long, value_name = "FILE.jsonl")]
    pub explain: Option<PathBuf>,
    /// Take a pool down: POOL:START_S:DURATION_S (repeatable). Its jobs fail over.
    #[arg(long, value_name = "POOL:START:DURATION")]
    pub outage: Vec<String>,
    /// Node placement inside a pool.
    #[arg(long, default_value = "best-fit", value_parser = |s: &str| s.parse::<PolicyName>().map_err(|e| e.to_string()))]
    pub placement: PolicyName,
    /// las: device-seconds of service after which a job drops to the lower queue.
    #[arg(long, default_value_t = 3600)]
    pub las_threshold: u64,
    /// drf: a tenant's weight, TENANT=WEIGHT (repeatable; others weigh 1). A tenant of weight 2
    /// may hold twice the dominant share of one of weight 1.
    #[arg(long, value_name = "TENANT=WEIGHT")]
    pub tenant_weight: Vec<String>,
    /// The accelerator the trace's durations were measured on; jobs run faster or slower
    /// elsewhere by FP16 TFLOPS. Without it, every accelerator runs jobs at trace speed.
    #[arg(long, value_name = "MODEL")]
    pub reference_accelerator: Option<String>,
    /// Worker threads for several policies (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
}

/// Queue policies named on the command line.
#[derive(Clone, Debug)]
pub struct QueuePolicyList(pub Vec<QueuePolicy>);

fn parse_queue_policies(text: &str) -> Result<QueuePolicyList, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(QueuePolicyList(QueuePolicy::all()));
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        let policy: QueuePolicy =
            part.parse().map_err(|e: suanwang_sched::policy::UnknownQueuePolicy| e.to_string())?;
        if !out.contains(&policy) {
            out.push(policy);
        }
    }
    Ok(QueuePolicyList(out))
}

const PLACEMENT_EXAMPLES: &str = "\
Examples:
  # The project's default policy, ten seeds, a table:
  suanwang simulate placement --nodes openb_node_list_gpu_node.csv --tasks openb_pod_list_default.csv
  # Every policy, JSON for scripts, and an HTML report with plots:
  suanwang simulate placement --nodes N.csv --tasks T.csv --policy all --format json --report out.html
  # Two baselines on three seeds:
  suanwang simulate placement --nodes N.csv --tasks T.csv --policy best-fit,fgd --seeds 42..44";

#[derive(Args, Debug)]
pub struct PlacementArgs {
    /// Node list CSV: sn,cpu_milli,memory_mib,gpu,model.
    #[arg(long, value_name = "FILE")]
    pub nodes: PathBuf,
    /// Task list CSV: name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,…].
    #[arg(long, value_name = "FILE")]
    pub tasks: PathBuf,
    /// Policies to compare, comma-separated, or `all`: random, dot-product, gpu-clustering,
    /// gpu-packing, best-fit, fgd (the paper's baselines) and frag-plus (ours, the default).
    #[arg(long, value_name = "NAME[,NAME…]", value_parser = parse_policies)]
    pub policy: Option<PolicyList>,
    /// Seeds: `42..51` (inclusive), `7`, or a list like `1,2,5..8`.
    #[arg(long, value_name = "SEEDS", default_value = "42..51", value_parser = parse_seeds)]
    pub seeds: SeedList,
    /// Inflate the task list until it asks for this many times the cluster's GPUs.
    #[arg(long, default_value_t = 1.3)]
    pub inflation: f64,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write a self-contained HTML report with plots to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Worker threads (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Policies named on the command line, without repeats, in the order given.
#[derive(Clone, Debug)]
pub struct PolicyList(pub Vec<PolicyName>);

/// Seeds named on the command line.
#[derive(Clone, Debug)]
pub struct SeedList(pub Vec<u64>);

/// Most seeds one command may run.
pub const SEEDS_MAX: usize = 10_000;

fn parse_policies(text: &str) -> Result<PolicyList, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(PolicyList(PolicyName::ALL.to_vec()));
    }
    let mut names = Vec::new();
    for part in text.split(',') {
        let name: PolicyName = part.parse().map_err(|e: suanwang_placement::policy::UnknownPolicy| e.to_string())?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(PolicyList(names))
}

fn parse_seeds(text: &str) -> Result<SeedList, String> {
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("{s:?} is not a seed (a whole number)"));
        match part.split_once("..") {
            Some((first, last)) => {
                let last = last.strip_prefix('=').unwrap_or(last);
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    return Err(format!("the range {part} is reversed; write {last}..{first}"));
                }
                if last - first >= SEEDS_MAX as u64 {
                    return Err(format!("at most {SEEDS_MAX} seeds"));
                }
                seeds.extend(first..=last);
            }
            None => seeds.push(number(part)?),
        }
        if seeds.len() > SEEDS_MAX {
            return Err(format!("at most {SEEDS_MAX} seeds"));
        }
    }
    Ok(SeedList(seeds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        assert_eq!(parse_seeds("42..51").unwrap().0, (42..=51).collect::<Vec<_>>());
        assert_eq!(parse_seeds("7").unwrap().0, vec![7]);
        assert_eq!(parse_seeds("1,2,5..=6").unwrap().0, vec![1, 2, 5, 6]);
        assert_eq!(parse_seeds("51..42").unwrap_err(), "the range 51..42 is reversed; write 42..51");
        assert!(parse_seeds("a..3").is_err());
        assert!(parse_seeds("0..100000").is_err());
    }

    #[test]
    fn policies() {
        assert_eq!(parse_policies("all").unwrap().0.len(), PolicyName::ALL.len());
        assert_eq!(parse_policies("fgd,best-fit,fgd").unwrap().0, vec![PolicyName::Fgd, PolicyName::BestFit]);
        assert!(parse_policies("fgd,worst").unwrap_err().contains("unknown policy \"worst\""));
    }
}
