//! The queueing simulator: a discrete-event replay of a job trace against a federation, driving
//! the same [`Scheduler`] the server runs, with a virtual clock.
//!
//! Events are arrivals, completions, pool outages and recoveries, and scheduler wake-ups (a `las`
//! job crossing its threshold). After the events of one instant are applied (completions first,
//! then outages, then arrivals), the scheduler makes one pass and its decisions take effect:
//! - a started job completes after its remaining work divided by its speed on the accelerator it
//!   got;
//! - a preempted job keeps the work it has done (training checkpoints) and waits again;
//! - a job whose pool fails is rescheduled from the start (its work since the last start is lost).
//!
//! There is no randomness: the same trace, federation and configuration give the same result.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use suanwang_model::federation::{Federation, PoolId};
use suanwang_model::tariff::{self, Allocation};
use suanwang_sched::job::{Job, JobId, Status};
use suanwang_sched::pools::speed;
use suanwang_sched::scheduler::{Decision, Scheduler, SchedulerConfig, SubmitError};

use crate::stats::{mean, percentile};

/// The most points kept in a time series.
pub const SERIES_POINTS_MAX: usize = 1000;

/// A pool outage in a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The pool.
    pub pool: PoolId,
    /// When it goes down (seconds on the trace's clock).
    pub start_s: u64,
    /// How long it stays down.
    pub duration_s: u64,
}

/// One job to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct SimJob {
    /// The trace's id for it.
    pub name: String,
    /// What the scheduler is told.
    pub job: Job,
    /// Its true run time at speed 1 (the reference accelerator).
    pub duration_s: u64,
}

/// What to simulate besides the trace.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// The scheduler's configuration.
    pub scheduler: SchedulerConfig,
    /// Pool outages.
    pub outages: Vec<Outage>,
    /// Keep the scheduler's explanation of every start.
    pub explain: bool,
}

/// The fate of one job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutcome {
    /// The trace's id.
    pub name: String,
    /// Tenant index.
    pub tenant: u32,
    /// Submit time.
    pub submit_s: u64,
    /// First start, if it ever started.
    pub first_start_s: Option<u64>,
    /// Finish time, if it finished.
    pub end_s: Option<u64>,
    /// Pool of its last run.
    pub pool: Option<PoolId>,
    /// Times preempted.
    pub preemptions: u32,
    /// Times its pool failed under it.
    pub failovers: u32,
    /// What it cost, in fen: per pool and price, the floor of the exact cost (the billing rule,
    /// `suanwang_billing::rating`), summed.
    pub cost_fen: i64,
    /// Its runs' usage, as a pool's agent would report it.
    pub usage: Vec<RunUsage>,
    /// Accelerator energy, kWh (board power × PUE).
    pub energy_kwh: f64,
    /// Why it was rejected, if it was.
    pub rejected: Option<String>,
}

/// One run of a job, as usage: rated by `suanwang_billing` at the allocation's rate (the tariff,
/// `suanwang_model::tariff`), exactly as the server meters a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunUsage {
    /// Where it ran.
    pub pool: PoolId,
    /// When the run ended.
    pub end_s: u64,
    /// How long, in milliseconds.
    pub ms: u64,
    /// What it held.
    pub allocation: Allocation,
    /// The allocation's rate, milli-fen per hour.
    pub rate_millifen_per_hour: u64,
}

/// One explained start.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The trace's job id.
    pub job: String,
    /// When it started.
    pub start_s: u64,
    /// The scheduler's words.
    pub reason: String,
}

/// A sample of the federation's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Time.
    pub t_s: u64,
    /// Jobs waiting.
    pub queued: usize,
    /// Share of accelerator capacity allocated, %.
    pub utilization_pct: f64,
}

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct QueueRun {
    /// One per job, in trace order.
    pub jobs: Vec<JobOutcome>,
    /// Explanations (when asked for).
    pub explanations: Vec<Explanation>,
    /// Queue length and utilisation over time.
    pub series: Vec<Sample>,
    /// Per pool: accelerator milli-seconds used, and jobs started there.
    pub pool_use: Vec<(u128, u64)>,
    /// Accelerator capacity of every pool, milli-GPU.
    pub pool_capacity: Vec<u64>,
    /// When the last job finished.
    pub makespan_s: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    // Ordered: at one instant completions come first, then outages, then arrivals, then wake-ups.
    Completion { job: u32, epoch: u32 },
    PoolDown { pool: u16 },
    PoolUp { pool: u16 },
    Arrival { index: u32 },
    Wakeup,
}

struct Live {
    id: Option<JobId>,
    /// Reference-seconds of work left.
    remaining: f64,
    epoch: u32,
    /// Current run: start, speed, pool, allocation, rate (milli-fen an hour) and power (W × PUE).
    run: Option<(u64, f64, PoolId, Allocation, u64, f64)>,
    usage: Vec<RunUsage>,
    energy_wh: f64,
}

/// Replays `jobs` (sorted by submit time) against `federation`, with `tenants` tenants.
pub fn run(federation: &Federation, tenants: usize, jobs: &[SimJob], scenario: &Scenario) -> QueueRun {
    let mut scheduler = Scheduler::new(
        federation,
        tenants,
        scenario.scheduler.clone(),
        &suanwang_placement::profile::WorkloadProfile::default(),
    );
    let mut heap: BinaryHeap<Reverse<(u64, Event)>> = BinaryHeap::new();
    for (index, job) in jobs.iter().enumerate() {
        heap.push(Reverse((job.job.submit_s, Event::Arrival { index: index as u32 })));
    }
    for outage in &scenario.outages {
        heap.push(Reverse((outage.start_s, Event::PoolDown { pool: outage.pool.index() as u16 })));
        heap.push(Reverse((
            outage.start_s.saturating_add(outage.duration_s),
            Event::PoolUp { pool: outage.pool.index() as u16 },
        )));
    }
    let mut live: Vec<Live> = jobs
        .iter()
        .map(|j| Live {
            id: None,
            remaining: j.duration_s as f64,
            epoch: 0,
            run: None,
            usage: Vec::new(),
            energy_wh: 0.0,
        })
        .collect();
    let mut by_id: Vec<usize> = Vec::with_capacity(jobs.len());
    let mut outcomes: Vec<JobOutcome> = jobs
        .iter()
        .map(|j| JobOutcome {
            name: j.name.clone(),
            tenant: j.job.spec.tenant,
            submit_s: j.job.submit_s,
            first_start_s: None,
            end_s: None,
            pool: None,
            preemptions: 0,
            failovers: 0,
            cost_fen: 0,
            usage: Vec::new(),
            energy_kwh: 0.0,
            rejected: None,
        })
        .collect();
    let pool_count = federation.pool_count();
    let mut pool_use = vec![(0u128, 0u64); pool_count];
    let pool_capacity: Vec<u64> =
        (0..pool_count).map(|p| scheduler.pool(PoolId::from_index(p)).cluster.gpu_milli_capacity()).collect();
    let capacity: u64 = pool_capacity.iter().sum();
    let mut explanations = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut pending_wakeup: Option<u64> = None;
    let mut makespan = 0;

    while let Some(Reverse((now, _))) = heap.peek().copied() {
        while let Some(Reverse((t, event))) = heap.peek().copied() {
            if t != now {
                break;
            }
            heap.pop();
            match event {
                Event::Completion { job, epoch } => {
                    let index = by_id[job as usize];
                    if live[index].epoch != epoch {
                        continue;
                    }
                    stop_run(&mut live[index], now, &mut pool_use, &scheduler, JobId(job));
                    live[index].remaining = 0.0;
                    scheduler.finish(JobId(job), now);
                    debug_assert!(outcomes[index].end_s.is_none(), "a job ends exactly once");
                    outcomes[index].end_s = Some(now);
                    makespan = makespan.max(now);
                }
                Event::PoolDown { pool } => {
                    let pool = PoolId::from_index(usize::from(pool));
                    let running: Vec<JobId> = scheduler.running_in(pool).collect();
                    for id in &running {
                        let index = by_id[id.index()];
                        stop_run(&mut live[index], now, &mut pool_use, &scheduler, *id);
                        live[index].remaining = jobs[index].duration_s as f64;
                        live[index].epoch += 1;
                    }
                    scheduler.set_pool_health(pool, false, now);
                }
                Event::PoolUp { pool } => {
                    scheduler.set_pool_health(PoolId::from_index(usize::from(pool)), true, now);
                }
                Event::Arrival { index } => {
                    let index = index as usize;
                    match scheduler.submit(jobs[index].job.clone(), now) {
                        Ok(id) => {
                            debug_assert_eq!(id.index(), by_id.len());
                            by_id.push(index);
                            live[index].id = Some(id);
                        }
                        Err(SubmitError::Unschedulable(reason)) => outcomes[index].rejected = Some(reason),
                        Err(other) => outcomes[index].rejected = Some(other.to_string()),
                    }
                }
                Event::Wakeup => {
                    if pending_wakeup == Some(now) {
                        pending_wakeup = None;
                    }
                }
            }
        }
        for decision in scheduler.schedule(now) {
            match decision {
                Decision::Start { job, pool, explanation } => {
                    let index = by_id[job.index()];
                    if !matches!(scheduler.state(job), Status::Running { .. }) {
                        continue;
                    }
                    let spec = &jobs[index].job.spec;
                    // A CPU-only job runs at the reference speed whatever cards its node has.
                    let model = scheduler.model_of_job(job).filter(|_| spec.task.accelerators().count() > 0);
                    let v = speed(federation.catalog(), spec, model, &scenario.scheduler.choice);
                    let pool_spec = federation.pool(pool);
                    let allocation = Allocation::of(spec, model);
                    let rate = tariff::rate_millifen_per_hour(&pool_spec.prices, &allocation, None);
                    let power = model.and_then(|m| federation.catalog().get(m).board_power_w).unwrap_or(0) as f64
                        * allocation.card_milli as f64
                        / 1000.0
                        * pool_spec.pue;
                    let l = &mut live[index];
                    l.epoch += 1;
                    l.run = Some((now, v, pool, allocation, rate, power));
                    let finish = now + (l.remaining / v).ceil() as u64;
                    heap.push(Reverse((finish, Event::Completion { job: job.0, epoch: l.epoch })));
                    outcomes[index].first_start_s.get_or_insert(now);
                    outcomes[index].pool = Some(pool);
                    pool_use[pool.index()].1 += 1;
                    if scenario.explain {
                        explanations.push(Explanation {
                            job: jobs[index].name.clone(),
                            start_s: now,
                            reason: explanation,
                        });
                    }
                }
                Decision::Preempt { job, .. } => {
                    let index = by_id[job.index()];
                    stop_run(&mut live[index], now, &mut pool_use, &scheduler, job);
                    live[index].epoch += 1;
                }
            }
        }
        if let Some(t) = scheduler.next_wakeup(now)
            && pending_wakeup.is_none_or(|p| t < p)
        {
            pending_wakeup = Some(t);
            heap.push(Reverse((t, Event::Wakeup)));
        }
        let allocated: u64 =
            (0..pool_count).map(|p| scheduler.pool(PoolId::from_index(p)).cluster.gpu_milli_allocated()).sum();
        let sample = Sample {
            t_s: now,
            queued: scheduler.queued(),
            utilization_pct: if capacity > 0 { allocated as f64 * 100.0 / capacity as f64 } else { 0.0 },
        };
        if samples.last().is_some_and(|s| s.t_s == now) {
            samples.pop();
        }
        samples.push(sample);
    }

    for (index, outcome) in outcomes.iter_mut().enumerate() {
        if let Some(id) = live[index].id {
            let counters = scheduler.counters(id);
            outcome.preemptions = counters.preemptions;
            outcome.failovers = counters.failovers;
        }
        outcome.usage = std::mem::take(&mut live[index].usage);
        outcome.cost_fen = cost_fen(&outcome.usage);
        outcome.energy_kwh = live[index].energy_wh / 1000.0;
    }
    QueueRun {
        jobs: outcomes,
        explanations,
        series: downsample(&samples),
        pool_use,
        pool_capacity,
        makespan_s: makespan,
    }
}

/// What runs cost by the billing rule: one meter per pool and rate, each charged the floor of
/// its exact cost.
pub fn cost_fen(usage: &[RunUsage]) -> i64 {
    let mut meters: std::collections::BTreeMap<(PoolId, u64), u64> = std::collections::BTreeMap::new();
    for u in usage {
        *meters.entry((u.pool, u.rate_millifen_per_hour)).or_default() += u.ms;
    }
    let total: u64 = meters.iter().map(|(&(_, rate), &ms)| suanwang_billing::rating::run_cost_fen(ms, rate)).sum();
    i64::try_from(total).unwrap_or(i64::MAX)
}

/// Ends the current run of a job: accrues its work, cost, energy and pool use.
fn stop_run(live: &mut Live, now: u64, pool_use: &mut [(u128, u64)], scheduler: &Scheduler, id: JobId) {
    let Some((start, v, pool, allocation, rate, power)) = live.run.take() else { return };
    let seconds = now.saturating_sub(start);
    live.remaining = (live.remaining - seconds as f64 * v).max(0.0);
    if seconds > 0 {
        live.usage.push(RunUsage {
            pool,
            end_s: now,
            ms: seconds.saturating_mul(1000),
            allocation,
            rate_millifen_per_hour: rate,
        });
    }
    live.energy_wh += power * seconds as f64 / 3600.0;
    let spec = &scheduler.job(id).spec;
    let milli = u128::from(spec.task.accelerators().total_milli()) * u128::from(spec.gang_size);
    pool_use[pool.index()].0 += milli * u128::from(seconds);
}

/// Keeps at most [`SERIES_POINTS_MAX`] samples, evenly spaced in time (the last sample at or
/// before each grid point).
fn downsample(samples: &[Sample]) -> Vec<Sample> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else { return Vec::new() };
    if samples.len() <= SERIES_POINTS_MAX {
        return samples.to_vec();
    }
    let span = (last.t_s - first.t_s).max(1);
    let mut out = Vec::with_capacity(SERIES_POINTS_MAX);
    let mut i = 0;
    for k in 0..SERIES_POINTS_MAX {
        let t = first.t_s + span * k as u64 / (SERIES_POINTS_MAX as u64 - 1);
        while i + 1 < samples.len() && samples[i + 1].t_s <= t {
            i += 1;
        }
        out.push(Sample { t_s: t, ..samples[i] });
    }
    out
}

/// Summary statistics of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSummary {
    /// Jobs that finished.
    pub jobs: usize,
    /// Jobs rejected as unschedulable.
    pub jobs_unschedulable: usize,
    /// Job completion time (finish − submit): mean, median, 99th percentile, seconds.
    pub jct_s_mean: f64,
    /// Median JCT.
    pub jct_s_p50: f64,
    /// 99th-percentile JCT.
    pub jct_s_p99: f64,
    /// Queueing delay (first start − submit): mean.
    pub queue_s_mean: f64,
    /// Median queueing delay.
    pub queue_s_p50: f64,
    /// Last finish − first submit.
    pub makespan_s: u64,
    /// Accelerator capacity used over the makespan, %.
    pub utilization_pct: f64,
    /// Total cost, fen.
    pub cost_fen_total: i64,
    /// Total accelerator energy, kWh.
    pub energy_kwh_total: f64,
    /// Jobs preempted at least once.
    pub jobs_preempted: usize,
    /// Preemptions in all.
    pub preemptions_total: u64,
    /// Jobs that lost their pool at least once.
    pub jobs_failed_over: usize,
}

/// Summarises the jobs in `outcomes` (all of them, or one pool's or tenant's).
pub fn summarise<'a>(
    outcomes: impl IntoIterator<Item = &'a JobOutcome>,
    makespan_s: u64,
    used_milli_s: u128,
    capacity_milli: u64,
) -> QueueSummary {
    let outcomes: Vec<&JobOutcome> = outcomes.into_iter().collect();
    let finished: Vec<&&JobOutcome> = outcomes.iter().filter(|o| o.end_s.is_some()).collect();
    let jct: Vec<f64> = finished.iter().map(|o| (o.end_s.unwrap_or(0) - o.submit_s) as f64).collect();
    let queue: Vec<f64> = finished.iter().filter_map(|o| o.first_start_s.map(|s| (s - o.submit_s) as f64)).collect();
    let utilization = if makespan_s > 0 && capacity_milli > 0 {
        used_milli_s as f64 * 100.0 / (capacity_milli as f64 * makespan_s as f64)
    } else {
        0.0
    };
    QueueSummary {
        jobs: finished.len(),
        jobs_unschedulable: outcomes.iter().filter(|o| o.rejected.is_some()).count(),
        jct_s_mean: mean(&jct).unwrap_or(0.0),
        jct_s_p50: percentile(&jct, 50.0).unwrap_or(0.0),
        jct_s_p99: percentile(&jct, 99.0).unwrap_or(0.0),
        queue_s_mean: mean(&queue).unwrap_or(0.0),
        queue_s_p50: percentile(&queue, 50.0).unwrap_or(0.0),
        makespan_s,
        utilization_pct: utilization,
        cost_fen_total: outcomes.iter().map(|o| o.cost_fen).sum(),
        energy_kwh_total: outcomes.iter().map(|o| o.energy_kwh).sum(),
        jobs_preempted: outcomes.iter().filter(|o| o.preemptions > 0).count(),
        preemptions_total: outcomes.iter().map(|o| u64::from(o.preemptions)).sum(),
        jobs_failed_over: outcomes.iter().filter(|o| o.failovers > 0).count(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use suanwang_model::catalog::AcceleratorSet;
    use suanwang_model::job::{AcceleratorRequest, JobSpec, TaskSpec};
    use suanwang_sched::policy::QueuePolicy;

    use super::*;

    const FEDERATION: &str = r#"
name = "q"
[[site]]
name = "a"
city = "A"
region = "R"
latitude_deg = 0.0
longitude_deg = 0.0
[[pool]]
name = "one"
site = "a"
provider = "x"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800" = 1000 }
[[pool.nodes]]
count = 3
accelerator = "A800"
accelerators_per_node = 8
cpu_milli = 64000
memory_mib = 524288
[[pool]]
name = "two"
site = "a"
provider = "y"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800" = 1200 }
[[pool.nodes]]
count = 2
accelerator = "A800"
accelerators_per_node = 8
cpu_milli = 64000
memory_mib = 524288
"#;

    fn federation() -> Federation {
        suanwang_formats::federation::parse("q.toml", FEDERATION, &suanwang_formats::catalog::builtin()).expect("valid")
    }

    fn jobs(shapes: &[(u64, u64, u8, u16, u32)]) -> Vec<SimJob> {
        let mut jobs: Vec<SimJob> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(submit, duration, gpus, gang, tenant))| {
                let request =
                    if gpus == 0 { AcceleratorRequest::NONE } else { AcceleratorRequest::whole(gpus).expect("≤ 8") };
                let spec = JobSpec {
                    name: format!("j{i}"),
                    tenant,
                    task: TaskSpec::new(1000, 1024, request, AcceleratorSet::ANY).expect("valid"),
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
                };
                SimJob {
                    name: format!("j{i}"),
                    job: Job { spec, submit_s: submit, green: false, oracle_duration_s: Some(duration), pool: None },
                    duration_s: duration,
                }
            })
            .collect();
        jobs.sort_by_key(|j| j.job.submit_s);
        jobs
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn every_job_ends_exactly_once_and_never_early(
            shapes in prop::collection::vec((0u64..2000, 1u64..500, prop_oneof![Just(0u8), Just(1), Just(2), Just(8)], 1u16..=3, 0u32..2), 1..60),
            outage in prop::option::of((0u64..2000, 1u64..800)),
            policy in 0usize..10,
        ) {
            let federation = federation();
            let jobs = jobs(&shapes);
            let outages = outage.map(|(start_s, duration_s)| Outage { pool: PoolId::from_index(0), start_s, duration_s }).into_iter().collect();
            let scheduler = SchedulerConfig { policy: QueuePolicy::all()[policy], las_threshold_device_s: 300, ..SchedulerConfig::default() };
            let scenario = Scenario { scheduler, outages, explain: true };
            let run = run(&federation, 2, &jobs, &scenario);
            for (outcome, job) in run.jobs.iter().zip(&jobs) {
                if outcome.rejected.is_some() {
                    continue;
                }
                let end = outcome.end_s.expect("every accepted job finishes");
                let start = outcome.first_start_s.expect("and started");
                prop_assert!(job.job.submit_s <= start && start <= end);
                prop_assert!(end - start >= job.duration_s, "no job finishes faster than its duration (speed 1)");
            }
            let used: u128 = run.pool_use.iter().map(|u| u.0).sum();
            let summary = summarise(&run.jobs, run.makespan_s, used, run.pool_capacity.iter().sum());
            prop_assert!(summary.utilization_pct <= 100.0 + 1e-9);
            prop_assert!(run.series.iter().all(|s| s.utilization_pct <= 100.0 + 1e-9));
            let again = super::run(&federation, 2, &jobs, &scenario);
            prop_assert_eq!(again.jobs, run.jobs, "deterministic");
        }
    }
}
