//! Invariants of the scheduler over random sequences of submissions, completions, pool outages
//! and passes, for every policy and with or without clusters' own queues: no pool is
//! over-committed (its allocation is exactly its running jobs', its own queue's exactly its handed
//! jobs'), a gang is placed whole or not at all, and residency and latency bounds always hold.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

use proptest::prelude::*;
use suanwang_model::catalog::AcceleratorSet;
use suanwang_model::federation::{Federation, PoolId};
use suanwang_model::job::{AcceleratorRequest, JobSpec, LatencyRequirement, TaskSpec};
use suanwang_placement::profile::WorkloadProfile;
use suanwang_sched::job::{Job, JobId, Status};
use suanwang_sched::policy::QueuePolicy;
use suanwang_sched::scheduler::{Decision, Scheduler, SchedulerConfig};

const FEDERATION: &str = r#"
name = "p"
[[site]]
name = "sz"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.5
longitude_deg = 114.0
[[site]]
name = "sg"
city = "Shaoguan"
region = "CN-GD"
latitude_deg = 24.8
longitude_deg = 113.6
[[site]]
name = "hk"
city = "Hong Kong"
region = "HK"
latitude_deg = 22.3
longitude_deg = 114.2
[[link]]
between = ["sz", "sg"]
latency_ms = 3.0
bandwidth_gbps = 100
[[link]]
between = ["sz", "hk"]
latency_ms = 1.0
bandwidth_gbps = 10
[[pool]]
name = "sz"
site = "sz"
provider = "x"
backend = "sim"
pue = 1.3
card_hour_fen = { "A800" = 1000 }
[[pool.nodes]]
count = 3
accelerator = "A800"
accelerators_per_node = 8
cpu_milli = 64000
memory_mib = 524288
[[pool]]
name = "sg"
site = "sg"
provider = "y"
backend = "sim"
pue = 1.2
green_share_pct = 50
card_hour_fen = { "910B" = 800 }
[[pool.nodes]]
count = 2
accelerator = "910B"
accelerators_per_node = 8
cpu_milli = 192000
memory_mib = 1048576
[[pool]]
name = "hk"
site = "hk"
provider = "z"
backend = "sim"
pue = 1.5
card_hour_fen = { "H100" = 2000 }
[[pool.nodes]]
count = 2
accelerator = "H100"
accelerators_per_node = 4
cpu_milli = 64000
memory_mib = 524288
"#;

#[derive(Clone, Debug)]
enum Op {
    Submit {
        tenant: u32,
        gpus: u8,
        milli: u16,
        gang: u16,
        cpu: u32,
        residency: bool,
        latency_ms: Option<u32>,
        estimate: Option<u64>,
        preemptible: bool,
        priority: i32,
    },
    Finish(usize),
    Down(usize),
    Up(usize),
    /// The pool's agent reports this many usable nodes (`None`: all).
    Usable(usize, Option<usize>),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..3, prop_oneof![Just(0u8), Just(1), Just(2), Just(4), Just(8)], prop_oneof![Just(1000u16), 100u16..1000], 1u16..=3, 0u32..=64_000, any::<bool>(), prop::option::of(0u32..=5), prop::option::of(1u64..=500), any::<bool>(), -2i32..=2)
            .prop_map(|(tenant, gpus, milli, gang, cpu, residency, latency_ms, estimate, preemptible, priority)| Op::Submit { tenant, gpus, milli, gang, cpu, residency, latency_ms, estimate, preemptible, priority }),
        2 => (0usize..64).prop_map(Op::Finish),
        1 => (0usize..3).prop_map(Op::Down),
        1 => (0usize..3).prop_map(Op::Up),
        1 => (0usize..3, prop::option::of(0usize..=8)).prop_map(|(p, n)| Op::Usable(p, n)),
        3 => (1u64..=300).prop_map(Op::Advance),
    ]
}

fn spec(federation: &Federation, op: &Op) -> Option<JobSpec> {
    let Op::Submit { tenant, gpus, milli, gang, cpu, residency, latency_ms, estimate, preemptible, priority } = *op
    else {
        return None;
    };
    let request = match gpus {
        0 => AcceleratorRequest::NONE,
        1 => AcceleratorRequest::new(1, milli).ok()?,
        n => AcceleratorRequest::whole(n).ok()?,
    };
    let gang = if request.is_fractional() { 1 } else { gang };
    let task = TaskSpec::new(cpu.max(1), 1024, request, AcceleratorSet::ANY).ok()?;
    Some(JobSpec {
        name: String::new(),
        tenant,
        task,
        gang_size: gang,
        priority,
        preemptible,
        dataset: None,
        residency_region: residency.then(|| "CN-GD".to_owned()),
        latency: latency_ms
            .map(|ms| LatencyRequirement { site: federation.site_id("sz").unwrap(), latency_us_max: ms * 1000 }),
        price_fen_per_card_hour_max: None,
        deadline_unix_s: None,
        runtime_estimate_s: estimate,
        speeds: Vec::new(),
    })
}

fn check(s: &Scheduler, ids: &[JobId], federation: &Federation) {
    let mut allocated = vec![0u64; federation.pool_count()];
    let mut handed = vec![0u64; federation.pool_count()];
    for &id in ids {
        let spec = &s.job(id).spec;
        match s.state(id) {
            Status::Running { pool, assignments, .. } => {
                assert_eq!(assignments.len(), usize::from(spec.gang_size), "a gang runs whole");
                let milli = u64::from(spec.task.accelerators().total_milli()) * u64::from(spec.gang_size);
                let model = s.model_of_job(id);
                assert!(model.is_some() || spec.task.accelerators().count() == 0, "cards have a model");
                if s.is_handed(id) {
                    handed[pool.index()] += milli;
                } else {
                    allocated[pool.index()] += milli;
                }
                let site = federation.pool(*pool).site;
                if let Some(region) = &spec.residency_region {
                    assert_eq!(&federation.site(site).region, region, "residency holds");
                }
                if let Some(latency) = spec.latency {
                    let route = federation.network().route(latency.site, site).unwrap();
                    assert!(route.latency_us <= latency.latency_us_max, "latency bound holds");
                }
                assert!(s.pool(*pool).healthy, "nothing runs in a pool that is down");
            }
            Status::Queued | Status::Finished { .. } | Status::Rejected { .. } => {}
        }
    }
    for (index, &expected) in handed.iter().enumerate() {
        match s.handoff_milli(PoolId::from_index(index)) {
            Some((queued, capacity)) => {
                assert_eq!(queued, expected, "a pool's own queue holds exactly its handed jobs");
                assert!(queued <= capacity);
            }
            None => assert_eq!(expected, 0, "only a pool with its own queue takes handed jobs"),
        }
    }
    for (index, &expected) in allocated.iter().enumerate() {
        let cluster = &s.pool(PoolId::from_index(index)).cluster;
        assert_eq!(cluster.gpu_milli_allocated(), expected, "a pool holds exactly its running jobs");
        let free: u64 = cluster.nodes().iter().map(|n| u64::from(n.gpu_milli_free())).sum();
        assert_eq!(free + expected, cluster.gpu_milli_capacity(), "allocated + free = capacity");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_scheduler_keeps_every_invariant(ops in prop::collection::vec(op(), 1..120), policy in 0usize..10, handoff_pct in prop_oneof![Just(0u16), Just(50), Just(100), Just(200)]) {
        let federation = suanwang_formats::federation::parse("p.toml", FEDERATION, &suanwang_formats::catalog::builtin()).unwrap();
        let policy: QueuePolicy = QueuePolicy::all()[policy];
        let config = SchedulerConfig { policy, las_threshold_device_s: 200, ..SchedulerConfig::default() };
        let mut s = Scheduler::new(&federation, 3, config, &WorkloadProfile::default());
        // Clusters with queues of their own: work may be placed beyond the nodes, into them.
        for p in 0..federation.pool_count() {
            s.set_pool_handoff(PoolId::from_index(p), handoff_pct);
        }
        let mut ids = Vec::new();
        let mut now = 0u64;
        for op in &ops {
            match op {
                Op::Submit { .. } => {
                    if let Some(spec) = spec(&federation, op)
                        && let Ok(id) = s.submit(Job { spec, submit_s: now, green: now.is_multiple_of(2), oracle_duration_s: Some(now % 97), pool: None }, now)
                    {
                        ids.push(id);
                    }
                }
                Op::Finish(k) => {
                    let running: Vec<JobId> = ids.iter().copied().filter(|&id| matches!(s.state(id), Status::Running { .. })).collect();
                    if !running.is_empty() {
                        s.finish(running[k % running.len()], now);
                    }
                }
                Op::Down(p) => {
                    let victims = s.set_pool_health(PoolId::from_index(*p), false, now);
                    prop_assert!(victims.iter().all(|&v| *s.state(v) == Status::Queued));
                }
                Op::Up(p) => {
                    s.set_pool_health(PoolId::from_index(*p), true, now);
                }
                Op::Usable(p, n) => s.set_pool_usable_nodes(PoolId::from_index(*p), *n),
                Op::Advance(dt) => now += dt,
            }
            for decision in s.schedule(now) {
                // Nothing new goes on a node the cluster says cannot take work.
                if let Decision::Start { job, pool, .. } = decision
                    && !s.is_handed(job)
                    && let Status::Running { assignments, .. } = s.state(job)
                {
                    for a in assignments {
                        prop_assert!(s.takes_work_on(pool, a.node), "job {job:?} started on a cordoned node");
                    }
                }
            }
            check(&s, &ids, &federation);
        }
    }
}
