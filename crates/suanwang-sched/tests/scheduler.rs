//! The scheduler's behaviours, one small scenario each.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

use suanwang_model::catalog::AcceleratorSet;
use suanwang_model::federation::{Federation, PoolId};
use suanwang_model::job::{AcceleratorRequest, DatasetRef, JobSpec, LatencyRequirement, TaskSpec};
use suanwang_placement::profile::WorkloadProfile;
use suanwang_sched::job::{Job, JobId, Status};
use suanwang_sched::policy::QueuePolicy;
use suanwang_sched::scheduler::{Decision, Scheduler, SchedulerConfig, SubmitError};

/// Two sites 5 ms apart in different regions; pool `a` (2 nodes × 8 GPUs, ¥10) at `sz`, pool `b`
/// (2 nodes × 8 GPUs, ¥12, 80% green) at `hk`.
const TWO_POOLS: &str = r#"
name = "t"
[[site]]
name = "sz"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.5
longitude_deg = 114.0
[[site]]
name = "hk"
city = "Hong Kong"
region = "HK"
latitude_deg = 22.3
longitude_deg = 114.2
[[link]]
between = ["sz", "hk"]
latency_ms = 5.0
bandwidth_gbps = 10
egress_fen_per_gib = 100
[[pool]]
name = "a"
site = "sz"
provider = "x"
backend = "sim"
pue = 1.5
green_share_pct = 0
card_hour_fen = { "A800" = 1000 }
[[pool.nodes]]
count = 2
accelerator = "A800"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576
[[pool]]
name = "b"
site = "hk"
provider = "y"
backend = "sim"
pue = 1.1
green_share_pct = 80
card_hour_fen = { "A800" = 1200 }
[[pool.nodes]]
count = 2
accelerator = "A800"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576
"#;

fn federation(text: &str) -> Federation {
    suanwang_formats::federation::parse("t.toml", text, &suanwang_formats::catalog::builtin()).unwrap()
}

/// `TWO_POOLS` without pool `b`.
fn one_pool() -> Federation {
    federation(&TWO_POOLS[..TWO_POOLS.rfind("[[pool]]").unwrap()])
}

fn spec(tenant: u32, gpus_per_task: u8, gang: u16) -> JobSpec {
    JobSpec {
        name: String::new(),
        tenant,
        task: TaskSpec::new(1000, 1024, AcceleratorRequest::whole(gpus_per_task).unwrap(), AcceleratorSet::ANY)
            .unwrap(),
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

fn job(spec: JobSpec, submit_s: u64) -> Job {
    Job { spec, submit_s, green: false, oracle_duration_s: None, pool: None }
}

fn scheduler(federation: &Federation, policy: &str) -> Scheduler {
    let config = SchedulerConfig { policy: policy.parse::<QueuePolicy>().unwrap(), ..SchedulerConfig::default() };
    Scheduler::new(federation, 3, config, &WorkloadProfile::default())
}

fn started(decisions: &[Decision]) -> Vec<u32> {
    decisions.iter().filter_map(|d| if let Decision::Start { job, .. } = d { Some(job.0) } else { None }).collect()
}

fn pool_of(s: &Scheduler, id: JobId) -> Option<PoolId> {
    if let Status::Running { pool, .. } = s.state(id) { Some(*pool) } else { None }
}

#[test]
fn fifo_waits_behind_its_head_and_backfilling_does_not() {
    let federation = one_pool();
    for (policy, expected) in [("fifo", vec![0]), ("fifo+backfill", vec![0, 2])] {
        let mut s = scheduler(&federation, policy);
        s.submit(job(spec(0, 1, 1), 0), 0).unwrap(); // 1 GPU: leaves no node fully free
        s.submit(job(spec(0, 8, 2), 1), 1).unwrap(); // 2 × 8 GPUs: needs both nodes empty
        s.submit(job(spec(0, 1, 1), 2), 2).unwrap();
        assert_eq!(started(&s.schedule(2)), expected, "{policy}");
    }
}

#[test]
fn a_gang_is_placed_whole_or_not_at_all() {
    let federation = one_pool();
    let mut s = scheduler(&federation, "fifo");
    s.submit(job(spec(0, 8, 3), 0), 0).unwrap_err(); // three 8-GPU tasks never fit two nodes
    let id = s.submit(job(spec(0, 4, 3), 0), 0).unwrap(); // three 4-GPU tasks fit (two share a node)
    s.submit(job(spec(0, 8, 1), 0), 0).unwrap();
    let decisions = s.schedule(0);
    assert_eq!(started(&decisions), vec![id.0]);
    let Status::Running { assignments, .. } = s.state(id) else { panic!("running") };
    assert_eq!(assignments.len(), 3);
    assert_eq!(
        s.pool(PoolId::from_index(0)).cluster.gpu_milli_allocated(),
        12_000,
        "the second job was not half placed"
    );
}

#[test]
fn las_preempts_a_job_that_has_had_its_share() {
    let federation = one_pool();
    let mut config = SchedulerConfig { policy: "las".parse().unwrap(), ..SchedulerConfig::default() };
    config.las_threshold_device_s = 100;
    let mut s = Scheduler::new(&federation, 1, config, &WorkloadProfile::default());
    let long = s.submit(job(spec(0, 8, 2), 0), 0).unwrap();
    assert_eq!(started(&s.schedule(0)), vec![long.0]);
    let newcomer = s.submit(job(spec(0, 8, 1), 5), 5).unwrap();
    assert_eq!(s.next_wakeup(5), Some(7), "16 GPUs pass 100 device-seconds after 7 s");
    let decisions = s.schedule(7);
    assert_eq!(decisions[0], Decision::Preempt { job: long, for_job: newcomer });
    assert_eq!(started(&decisions), vec![newcomer.0]);
    assert_eq!(s.counters(long).preemptions, 1);
    assert_eq!(*s.state(long), Status::Queued);
}

/// A job the lower queue starves is promoted after it has waited `las_starvation_s` in all (its
/// attained service starts again, as in Tiresias): it then preempts the job that had preempted
/// it. Without the bound it waits for ever behind newer jobs.
#[test]
fn las_promotes_a_job_that_waited_too_long() {
    for starvation_s in [50, 0] {
        let federation = one_pool();
        let mut config = SchedulerConfig { policy: "las".parse().unwrap(), ..SchedulerConfig::default() };
        config.las_threshold_device_s = 100;
        config.las_starvation_s = starvation_s;
        let mut s = Scheduler::new(&federation, 1, config, &WorkloadProfile::default());
        let long = s.submit(job(spec(0, 8, 2), 0), 0).unwrap();
        assert_eq!(started(&s.schedule(0)), vec![long.0]);
        let newcomer = s.submit(job(spec(0, 8, 1), 5), 5).unwrap();
        assert_eq!(started(&s.schedule(7)), vec![newcomer.0]);
        assert_eq!(*s.state(long), Status::Queued);
        if starvation_s == 0 {
            assert!(s.schedule(57).is_empty() && s.schedule(5_000).is_empty(), "starves without the bound");
            assert_eq!(*s.state(long), Status::Queued);
            continue;
        }
        // Queued at 7: it has waited 50 s at 57, when the scheduler wakes for it (after the
        // newcomer passes the threshold itself, at 20).
        assert_eq!(s.next_wakeup(8), Some(20));
        assert!(s.schedule(20).is_empty(), "two jobs of the lower queue: no preemption");
        assert_eq!(s.next_wakeup(21), Some(57));
        assert!(s.schedule(56).is_empty(), "not yet");
        let decisions = s.schedule(57);
        assert_eq!(decisions[0], Decision::Preempt { job: newcomer, for_job: long });
        assert_eq!(started(&decisions), vec![long.0]);
        assert_eq!(*s.state(newcomer), Status::Queued);
    }
}

/// On a cluster (Slurm, Kubernetes) a preempted job runs until its agent stops it: its cards
/// stay held, the job it made room for waits (choosing no further victims), and only a
/// confirmed stop frees the cards and queues the victim again. A failover or a cancel meanwhile
/// ends the wait too.
#[test]
fn a_preemption_on_a_cluster_waits_for_the_stop_to_be_confirmed() {
    let federation = one_pool();
    let mut config = SchedulerConfig { policy: "las".parse().unwrap(), ..SchedulerConfig::default() };
    config.las_threshold_device_s = 100;
    let mut s = Scheduler::new(&federation, 1, config, &WorkloadProfile::default());
    let pool = PoolId::from_index(0);
    s.set_pool_confirms_stops(pool, true);
    let long = s.submit(job(spec(0, 8, 2), 0), 0).unwrap();
    assert_eq!(started(&s.schedule(0)), vec![long.0]);
    let newcomer = s.submit(job(spec(0, 8, 1), 5), 5).unwrap();
    let decisions = s.schedule(7);
    assert_eq!(decisions, vec![Decision::Preempt { job: long, for_job: newcomer }], "no start yet");
    assert!(s.is_stopping(long) && matches!(s.state(long), Status::Running { .. }));
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 16_000, "the cards stay held");
    assert!(s.schedule(8).is_empty(), "waiting: no second preemption of the same job, no start");
    s.stopped(long, 9);
    assert_eq!(started(&s.schedule(9)), vec![newcomer.0]);
    assert_eq!(*s.state(long), Status::Queued);
    assert_eq!(s.counters(long).preemptions, 1);
    s.stopped(long, 10); // a repeat changes nothing
    assert_eq!(*s.state(long), Status::Queued);

    // A cancel on a cluster holds the cards until the stop is confirmed, then finishes the job.
    let done = s.submit(job(spec(0, 8, 1), 10), 10).unwrap();
    s.schedule(10);
    assert!(matches!(s.state(done), Status::Running { .. }));
    let held = s.pool(pool).cluster.gpu_milli_allocated();
    assert!(s.cancel_held(done, 11));
    assert!(s.is_stopping(done));
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), held, "held until confirmed");
    s.stopped(done, 12);
    assert_eq!(*s.state(done), Status::Finished { end_s: 12 });
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), held - 8_000);

    // A failover while a victim is stopping: the victim is queued, the waiter no longer waits.
    let federation = one_pool();
    let mut config = SchedulerConfig { policy: "las".parse().unwrap(), ..SchedulerConfig::default() };
    config.las_threshold_device_s = 100;
    let mut s = Scheduler::new(&federation, 1, config, &WorkloadProfile::default());
    s.set_pool_confirms_stops(pool, true);
    let long = s.submit(job(spec(0, 8, 2), 0), 0).unwrap();
    s.schedule(0);
    let newcomer = s.submit(job(spec(0, 8, 1), 5), 5).unwrap();
    s.schedule(7);
    assert_eq!(s.set_pool_health(pool, false, 8), vec![long]);
    assert!(!s.is_stopping(long));
    s.set_pool_health(pool, true, 9);
    let started_now = started(&s.schedule(9));
    assert!(started_now.contains(&newcomer.0), "{started_now:?}");
}

#[test]
fn a_failed_pool_hands_its_jobs_to_another() {
    let federation = federation(TWO_POOLS);
    let mut s = scheduler(&federation, "fifo");
    let id = s.submit(job(spec(0, 8, 1), 0), 0).unwrap();
    s.schedule(0);
    assert_eq!(pool_of(&s, id), Some(PoolId::from_index(0)), "the cheaper pool first");
    assert_eq!(s.set_pool_health(PoolId::from_index(0), false, 10), vec![id]);
    assert_eq!(s.counters(id).failovers, 1);
    s.schedule(10);
    assert_eq!(pool_of(&s, id), Some(PoolId::from_index(1)), "failed over to the other pool");
    assert_eq!(s.pool(PoolId::from_index(0)).cluster.gpu_milli_allocated(), 0);
}

#[test]
fn constraints_reject_with_reasons() {
    let federation = federation(TWO_POOLS);
    let mut s = scheduler(&federation, "fifo");
    let mut abroad = spec(0, 1, 1);
    abroad.residency_region = Some("CN-SH".to_owned());
    let err = s.submit(job(abroad, 0), 0).unwrap_err();
    assert_eq!(err.code(), "unschedulable");
    assert!(err.to_string().contains("a: outside residency region CN-SH"), "{err}");
    let mut near = spec(0, 1, 1);
    near.latency = Some(LatencyRequirement { site: federation.site_id("sz").unwrap(), latency_us_max: 1000 });
    near.residency_region = None;
    let id = s.submit(job(near.clone(), 0), 0).unwrap();
    s.schedule(0);
    assert_eq!(pool_of(&s, id), Some(PoolId::from_index(0)), "hk is 5 ms away, over the bound");
    near.price_fen_per_card_hour_max = Some(500);
    assert!(s.submit(job(near, 0), 0).unwrap_err().to_string().contains("more than ¥5.00/card-hour"));
    assert_eq!(s.submit(job(spec(9, 1, 1), 0), 0), Err(SubmitError::UnknownTenant(9)));
}

#[test]
fn drf_serves_the_tenant_with_the_smaller_share() {
    let federation = one_pool();
    let mut s = scheduler(&federation, "drf");
    let first: Vec<JobId> = (0..2).map(|i| s.submit(job(spec(0, 8, 1), i), i).unwrap()).collect();
    s.schedule(1);
    let waiting_a = s.submit(job(spec(0, 8, 1), 2), 2).unwrap();
    let waiting_b = s.submit(job(spec(1, 8, 1), 3), 3).unwrap();
    s.finish(first[0], 10);
    assert_eq!(started(&s.schedule(10)), vec![waiting_b.0], "tenant 1 holds nothing, tenant 0 holds half");
    assert_eq!(*s.state(waiting_a), Status::Queued);
}

#[test]
fn drf_weights_set_the_split() {
    let federation = one_pool();
    for (weights, expected) in [(vec![], (8, 8)), (vec![3.0, 1.0], (12, 4))] {
        let config = SchedulerConfig {
            policy: "drf".parse().unwrap(),
            tenant_weights: weights.clone(),
            ..SchedulerConfig::default()
        };
        let mut s = Scheduler::new(&federation, 2, config, &WorkloadProfile::default());
        for i in 0..20 {
            s.submit(job(spec(0, 1, 1), i), i).unwrap();
            s.submit(job(spec(1, 1, 1), i), i).unwrap();
        }
        let started: Vec<u32> = started(&s.schedule(20));
        let tenant0 = started.iter().filter(|&&id| s.job(JobId(id)).spec.tenant == 0).count();
        assert_eq!((tenant0, started.len() - tenant0), expected, "weights {weights:?}");
    }
}

#[test]
fn easy_backfilling_keeps_the_heads_reservation() {
    let federation = one_pool();
    let with_estimate = |gpus, gang, estimate| {
        let mut s = spec(0, gpus, gang);
        s.runtime_estimate_s = Some(estimate);
        s
    };
    let mut s = scheduler(&federation, "fifo+backfill");
    s.submit(job(with_estimate(8, 1, 100), 0), 0).unwrap();
    s.schedule(0);
    s.submit(job(with_estimate(8, 2, 100), 1), 1).unwrap(); // head: needs both nodes, reserved at t=100
    let too_long = s.submit(job(with_estimate(8, 1, 500), 2), 2).unwrap();
    let short = s.submit(job(with_estimate(8, 1, 50), 3), 3).unwrap();
    assert_eq!(started(&s.schedule(3)), vec![short.0], "the 500 s job would delay the head; the 50 s job does not");
    assert_eq!(*s.state(too_long), Status::Queued);
}

#[test]
fn pool_choice_weighs_price_data_and_green() {
    let federation = federation(TWO_POOLS);
    let hk = federation.site_id("hk").unwrap();
    let mut s = scheduler(&federation, "fifo");
    let plain = s.submit(job(spec(0, 1, 1), 0), 0).unwrap();
    let mut data_there = spec(0, 1, 1);
    data_there.dataset = Some(DatasetRef { site: hk, size_bytes: 500_000_000_000 });
    let data = s.submit(job(data_there, 0), 0).unwrap();
    let green = s.submit(Job { green: true, ..job(spec(0, 8, 1), 0) }, 0).unwrap();
    let decisions = s.schedule(0);
    let explanation = |id: JobId| {
        decisions.iter().find_map(|d| match d {
            Decision::Start { job, explanation, .. } if *job == id => Some(explanation.clone()),
            _ => None,
        })
    };
    assert_eq!(pool_of(&s, plain), Some(PoolId::from_index(0)), "¥10 beats ¥12");
    assert!(explanation(plain).unwrap().starts_with("a: cheapest of 2 pools"), "{:?}", explanation(plain));
    assert_eq!(pool_of(&s, data), Some(PoolId::from_index(1)), "500 GB at hk: moving it costs more than ¥2/h");
    assert!(explanation(data).unwrap().contains("data already here"));
    assert_eq!(pool_of(&s, green), Some(PoolId::from_index(1)), "¥12 is within 25% of ¥10, and 80% green");
    let why = explanation(green).unwrap();
    assert!(why.starts_with("b: least carbon of 2 pools") && why.contains("80% green power"), "{why}");
}

#[test]
fn a_contract_holds_capacity_for_its_tenant() {
    use suanwang_sched::scheduler::CapacityHold;
    let federation = one_pool(); // 16 cards
    let mut s = scheduler(&federation, "drf");
    let pool = PoolId::from_index(0);
    // Tenant 1 holds 8 cards from t = 10 to t = 100.
    s.set_holds(pool, vec![CapacityHold { tenant: 1, gpu_milli: 8_000, start_s: 10, end_s: 100 }]);
    // Before the window nothing is held: tenant 0 may take the whole pool.
    let early = s.submit(job(spec(0, 8, 2), 0), 0).unwrap();
    assert_eq!(started(&s.schedule(0)), vec![early.0]);
    s.finish(early, 5);
    // In the window, tenant 0 gets only the unheld half.
    let half = s.submit(job(spec(0, 8, 1), 20), 20).unwrap();
    let more = s.submit(job(spec(0, 8, 1), 20), 20).unwrap();
    assert_eq!(started(&s.schedule(20)), vec![half.0]);
    assert_eq!(started(&s.schedule(21)), Vec::<u32>::new(), "the held half stays free");
    // The holder gets its 8 cards.
    let held = s.submit(job(spec(1, 8, 1), 22), 22).unwrap();
    assert_eq!(started(&s.schedule(22)), vec![held.0]);
    // After the window the capacity is everyone's again.
    s.finish(held, 100);
    assert_eq!(started(&s.schedule(100)), vec![more.0]);
}

/// A pool with a queue of its own (Slurm, Kubernetes) takes work beyond its nodes when nowhere
/// has room, so the cluster starts it the moment something ends; handed jobs move onto the nodes
/// in the order they were handed, and go back to the queue when the pool fails.
#[test]
fn a_cluster_with_its_own_queue_takes_a_pools_worth_more() {
    let federation = one_pool();
    let mut s = scheduler(&federation, "fifo+backfill");
    let pool = PoolId::from_index(0);
    s.set_pool_handoff(pool, 50); // one node's worth of two
    let ids: Vec<JobId> = (0..30).map(|_| s.submit(job(spec(0, 1, 1), 0), 0).unwrap()).collect();
    let started_now = started(&s.schedule(0));
    assert_eq!(started_now.len(), 24, "16 on the nodes and 8 in the cluster's queue");
    let handed: Vec<JobId> = ids.iter().copied().filter(|&id| s.is_handed(id)).collect();
    assert_eq!(handed, ids[16..24], "the later ones wait in the cluster's queue");
    assert_eq!(s.handoff_milli(pool), Some((8_000, 8_000)));
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 16_000);
    assert_eq!(s.queued(), 6);

    // Two end: the two oldest handed jobs move onto the nodes, two more are handed.
    s.finish(ids[0], 10);
    s.finish(ids[1], 10);
    assert_eq!(started(&s.schedule(10)), vec![ids[24].0, ids[25].0]);
    assert!(!s.is_handed(ids[16]) && !s.is_handed(ids[17]) && s.is_handed(ids[18]));
    assert!(matches!(s.state(ids[16]), Status::Running { started_s: 10, .. }));
    assert_eq!(s.handoff_milli(pool), Some((8_000, 8_000)));
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 16_000);

    // A queue deeper than the pool: handed jobs sit on copies of nodes the pool has fewer of.
    let mut deep = scheduler(&federation, "fifo");
    deep.set_pool_handoff(pool, 200);
    let eights: Vec<JobId> = (0..6).map(|_| deep.submit(job(spec(0, 8, 1), 0), 0).unwrap()).collect();
    assert_eq!(started(&deep.schedule(0)).len(), 6);
    for &id in &eights {
        assert!(deep.model_of_job(id).is_some(), "job {id:?}: every card has a model");
    }

    // The pool fails: running and handed jobs alike return to the queue.
    let victims = s.set_pool_health(pool, false, 20);
    assert_eq!(victims.len(), 24);
    assert_eq!(s.handoff_milli(pool), Some((0, 8_000)));
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 0);
}

/// A job that can preempt does so rather than wait in a cluster's queue behind the jobs it
/// outranks.
#[test]
fn preemption_comes_before_a_clusters_own_queue() {
    let federation = one_pool();
    let mut s = scheduler(&federation, "priority");
    let pool = PoolId::from_index(0);
    s.set_pool_handoff(pool, 100);
    let low = s.submit(job(spec(0, 8, 2), 0), 0).unwrap();
    s.schedule(0);
    let mut urgent = spec(0, 8, 1);
    urgent.priority = 10;
    let urgent = s.submit(job(urgent, 1), 1).unwrap();
    let decisions = s.schedule(1);
    assert!(decisions.contains(&Decision::Preempt { job: low, for_job: urgent }), "{decisions:?}");
    assert!(!s.is_handed(urgent));
}

/// A job cancelled while it waits in a cluster's own queue keeps its place there until the
/// cluster confirms the stop, and is never moved onto the nodes meanwhile.
#[test]
fn a_cancelled_job_in_a_clusters_queue_is_not_moved_onto_the_nodes() {
    let federation = one_pool();
    let mut s = scheduler(&federation, "fifo");
    let pool = PoolId::from_index(0);
    s.set_pool_confirms_stops(pool, true);
    s.set_pool_handoff(pool, 50);
    let ids: Vec<JobId> = (0..3).map(|_| s.submit(job(spec(0, 8, 1), 0), 0).unwrap()).collect();
    s.schedule(0);
    assert!(s.is_handed(ids[2]));
    assert!(s.cancel_held(ids[2], 1), "held until the cluster confirms");
    s.finish(ids[0], 2);
    s.schedule(2);
    assert!(s.is_handed(ids[2]), "a cancelled job is not moved onto the freed node");
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 8_000);
    s.stopped(ids[2], 3);
    assert_eq!(*s.state(ids[2]), Status::Finished { end_s: 3 });
    assert_eq!(s.handoff_milli(pool), Some((0, 8_000)));
}

/// A pool whose agent reports fewer usable nodes than the federation declares (nodes drained
/// in the cluster) takes new work only on that many; a job already on a node that is taken out
/// runs on; when the nodes come back, so does the capacity.
#[test]
fn a_pool_places_only_on_the_nodes_its_cluster_says_can_take_work() {
    let federation = one_pool(); // two nodes of 8 cards
    let mut s = scheduler(&federation, "fifo+backfill");
    let pool = PoolId::from_index(0);
    let first = s.submit(job(spec(0, 4, 1), 0), 0).unwrap();
    assert_eq!(started(&s.schedule(0)), vec![first.0]);
    let Status::Running { assignments, .. } = s.state(first).clone() else { panic!("first runs") };
    // One node is drained: the emptier one (not the one `first` runs on) is taken out.
    s.set_pool_usable_nodes(pool, Some(1));
    assert!(s.takes_work_on(pool, assignments[0].node), "the busy node stays");
    let eights: Vec<JobId> = (0..2).map(|_| s.submit(job(spec(0, 8, 1), 1), 1).unwrap()).collect();
    let fours: Vec<JobId> = (0..2).map(|_| s.submit(job(spec(0, 4, 1), 1), 1).unwrap()).collect();
    assert_eq!(started(&s.schedule(1)), vec![fours[0].0], "only the usable node's four free cards");
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 8_000);
    // Every node is drained: nothing new starts, what runs runs on.
    s.set_pool_usable_nodes(pool, Some(0));
    s.finish(first, 2);
    assert!(started(&s.schedule(2)).is_empty());
    assert!(matches!(s.state(fours[0]), Status::Running { .. }));
    // Back: both nodes take work again.
    s.set_pool_usable_nodes(pool, None);
    let now_started = started(&s.schedule(3));
    assert_eq!(now_started, vec![eights[0].0, fours[1].0], "{now_started:?}");
    // More than the pool declares grows its model with nodes like the file's, to at most twice
    // the file's count.
    s.set_pool_usable_nodes(pool, Some(10));
    assert_eq!(s.pool_node_count(pool), 4, "at most twice the federation's two nodes");
    assert!((0..4).all(|n| s.takes_work_on(pool, suanwang_placement::cluster::NodeIdx(n))));
    assert_eq!(s.pool(pool).cluster.gpu_milli_capacity(), 32_000);
    let more: Vec<JobId> = (0..3).map(|_| s.submit(job(spec(0, 8, 1), 4), 4).unwrap()).collect();
    let now_started = started(&s.schedule(4));
    assert_eq!(now_started, vec![eights[1].0, more[0].0], "the grown nodes take work: {now_started:?}");
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 32_000, "all four nodes' cards: the third eight waits");
    // Fewer again: the added nodes stay in the model, cordoned like drained ones, and what runs
    // on them runs on.
    s.set_pool_usable_nodes(pool, Some(2));
    assert_eq!(s.pool_node_count(pool), 4);
    assert_eq!((0..4).filter(|&n| s.takes_work_on(pool, suanwang_placement::cluster::NodeIdx(n))).count(), 2);
    for id in [fours[0], eights[0], fours[1], eights[1], more[0]] {
        assert!(matches!(s.state(id), Status::Running { .. }), "{id:?} runs on");
    }
}

/// After a restart, jobs that ran on nodes the model had grown by are placed on nodes it grows
/// by again (within twice the federation's), never left queued while they still run.
#[test]
fn a_restart_restores_jobs_that_ran_on_grown_nodes() {
    let federation = one_pool(); // two nodes of 8 cards
    let mut s = scheduler(&federation, "fifo+backfill");
    let pool = PoolId::from_index(0);
    let restored: Vec<_> = (0..4).map(|_| s.restore_running(job(spec(0, 8, 1), 0), pool, 0)).collect();
    assert!(restored.iter().all(Result::is_ok), "{restored:?}");
    assert_eq!(s.pool_node_count(pool), 4);
    assert_eq!(s.pool(pool).cluster.gpu_milli_allocated(), 32_000);
    assert!(s.restore_running(job(spec(0, 8, 1), 0), pool, 0).is_err(), "past twice the file's nodes");
    assert_eq!(s.pool_node_count(pool), 4);
}
