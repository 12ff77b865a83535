//! `suanwang bench scheduler`: how fast the scheduler decides, on a big federation with a long
//! queue. This is a measurement, so it lives at the edge with the clock.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;
use suanwang_model::catalog::AcceleratorSet;
use suanwang_model::job::{AcceleratorRequest, JobSpec, TaskSpec};
use suanwang_placement::profile::WorkloadProfile;
use suanwang_sched::job::{Job, JobId};
use suanwang_sched::policy::QueuePolicy;
use suanwang_sched::scheduler::{Decision, Scheduler, SchedulerConfig};
use suanwang_sim::stats::{percentile, round2};

use crate::args::{BenchSchedulerArgs, Format};
use crate::error::CliError;
use crate::input;
use crate::output::{Table, print};

/// Philly's job sizes (GPUs) and how often each occurs (jobs, from philly.csv).
const PHILLY_SIZES: [(u32, u32); 10] =
    [(1, 76_627), (2, 1_818), (4, 1_870), (8, 1_643), (12, 7), (16, 199), (24, 7), (32, 67), (64, 6), (128, 3)];

/// Tenants the synthetic jobs come from (Philly's virtual clusters).
const TENANTS: u32 = 15;

#[derive(Serialize)]
struct BenchJson {
    policy: String,
    jobs: u64,
    pools: usize,
    cards: u64,
    submit_per_s: f64,
    fill_decisions: u64,
    fill_s: f64,
    completions: u64,
    decisions: u64,
    decisions_per_s: f64,
    decision_us_p50: f64,
    decision_us_p99: f64,
    pass_us_p99: f64,
    queued_at_end: usize,
    peak_rss_mib: Option<f64>,
}

fn synthetic_job(rng: &mut Pcg64Mcg, index: u64) -> JobSpec {
    let total: u32 = PHILLY_SIZES.iter().map(|s| s.1).sum();
    let mut pick = rng.random_range(0..total);
    let mut gpus = 1;
    for (size, weight) in PHILLY_SIZES {
        if pick < weight {
            gpus = size;
            break;
        }
        pick -= weight;
    }
    let (gang, per_task) = suanwang_formats::trace::split_gang(gpus, 8).unwrap_or((1, 1));
    let task = TaskSpec::new(
        4_000 * u32::from(per_task),
        32_768 * u32::from(per_task),
        AcceleratorRequest::whole(per_task).unwrap_or(AcceleratorRequest::NONE),
        AcceleratorSet::ANY,
    )
    .unwrap_or_else(|_| unreachable!("synthetic shapes are valid"));
    JobSpec {
        name: format!("bench-{index}"),
        tenant: rng.random_range(0..TENANTS),
        task,
        gang_size: gang,
        priority: 0,
        preemptible: true,
        dataset: None,
        residency_region: None,
        latency: None,
        price_fen_per_card_hour_max: None,
        deadline_unix_s: None,
        runtime_estimate_s: None,
        speeds: Vec::new(),
    }
}

/// The benchmark's own view of running jobs: O(1) insert, remove and random pick.
#[derive(Default)]
struct RunningSet {
    jobs: Vec<JobId>,
    position: std::collections::HashMap<JobId, usize>,
}

impl RunningSet {
    fn insert(&mut self, job: JobId) {
        self.position.insert(job, self.jobs.len());
        self.jobs.push(job);
    }

    fn remove(&mut self, job: JobId) {
        if let Some(index) = self.position.remove(&job) {
            self.jobs.swap_remove(index);
            if let Some(&moved) = self.jobs.get(index) {
                self.position.insert(moved, index);
            }
        }
    }
}

/// Peak resident memory of this process, from /proc (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn scheduler(args: &BenchSchedulerArgs) -> Result<(), CliError> {
    let catalog = input::catalog(args.catalog.as_deref())?;
    let source = args.federation.display().to_string();
    let federation = suanwang_formats::federation::parse(&source, &input::read_text(&args.federation)?, &catalog)?;
    if federation.pool_count() == 0 {
        return Err(CliError::input("empty_federation", format!("{source}: the federation has no pools")));
    }
    let policy = args.policy.unwrap_or(QueuePolicy::DEFAULT);
    let config = SchedulerConfig { policy, ..SchedulerConfig::default() };
    let mut scheduler = Scheduler::new(&federation, TENANTS as usize, config, &WorkloadProfile::default());
    let mut rng = Pcg64Mcg::seed_from_u64(args.seed);
    let specs: Vec<JobSpec> = (0..args.jobs).map(|i| synthetic_job(&mut rng, i)).collect();

    let started = Instant::now();
    for spec in specs {
        scheduler
            .submit(Job { spec, submit_s: 0, green: false, oracle_duration_s: None, pool: None }, 0)
            .map_err(|e| CliError::input(e.code(), format!("a synthetic job does not fit {}: {e}", federation.name)))?;
    }
    let submit_s = started.elapsed().as_secs_f64();

    let mut running = RunningSet::default();
    let apply = |decisions: Vec<Decision>, running: &mut RunningSet| -> u64 {
        let mut starts = 0;
        for decision in decisions {
            match decision {
                Decision::Start { job, .. } => {
                    running.insert(job);
                    starts += 1;
                }
                Decision::Preempt { job, .. } => running.remove(job),
            }
        }
        starts
    };
    let fill_started = Instant::now();
    let fill_decisions = apply(scheduler.schedule(0), &mut running);
    let fill_s = fill_started.elapsed().as_secs_f64();

    let completions = args.completions.unwrap_or((args.jobs / 4).min(50_000));
    let mut per_decision_us = Vec::new();
    let mut pass_us = Vec::new();
    let (mut decisions, mut busy_s) = (0u64, 0.0);
    let mut now = 0;
    for _ in 0..completions {
        if running.jobs.is_empty() {
            break;
        }
        now += 1;
        let victim = running.jobs[rng.random_range(0..running.jobs.len())];
        running.remove(victim);
        scheduler.finish(victim, now);
        let pass = Instant::now();
        let made_decisions = scheduler.schedule(now);
        let elapsed = pass.elapsed().as_secs_f64();
        let made = apply(made_decisions, &mut running);
        busy_s += elapsed;
        decisions += made;
        pass_us.push(elapsed * 1e6);
        if made > 0 {
            per_decision_us.push(elapsed * 1e6 / made as f64);
        }
    }
    let result = BenchJson {
        policy: policy.to_string(),
        jobs: args.jobs,
        pools: federation.pool_count(),
        cards: federation.capacity().total.cards,
        submit_per_s: round2(args.jobs as f64 / submit_s.max(1e-9)),
        fill_decisions,
        fill_s: round2(fill_s),
        completions,
        decisions,
        decisions_per_s: round2(decisions as f64 / busy_s.max(1e-9)),
        decision_us_p50: round2(percentile(&per_decision_us, 50.0).unwrap_or(0.0)),
        decision_us_p99: round2(percentile(&per_decision_us, 99.0).unwrap_or(0.0)),
        pass_us_p99: round2(percentile(&pass_us, 99.0).unwrap_or(0.0)),
        queued_at_end: scheduler.queued(),
        peak_rss_mib: peak_rss_mib().map(round2),
    };
    let text = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&result).map_err(|e| CliError::internal("serialize", e.to_string()))? + "\n"
        }
        Format::Table => {
            let mut table = Table::new(&["measure", "value"]);
            let rows: [(&str, String); 12] = [
                ("policy", result.policy.clone()),
                ("federation", format!("{} pools, {} cards", result.pools, result.cards)),
                ("jobs queued", result.jobs.to_string()),
                ("submissions/s", format!("{:.0}", result.submit_per_s)),
                ("first pass (fill)", format!("{} starts in {:.2} s", result.fill_decisions, result.fill_s)),
                ("steady state", format!("{} completions, {} decisions", result.completions, result.decisions)),
                ("decisions/s", format!("{:.0}", result.decisions_per_s)),
                ("decision µs p50", format!("{:.1}", result.decision_us_p50)),
                ("decision µs p99", format!("{:.1}", result.decision_us_p99)),
                ("pass µs p99", format!("{:.1}", result.pass_us_p99)),
                ("still queued", result.queued_at_end.to_string()),
                ("peak RSS MiB", result.peak_rss_mib.map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0}"))),
            ];
            for (k, v) in rows {
                table.row(vec![k.to_owned(), v]);
            }
            table.render()
        }
    };
    print(&text)
}
