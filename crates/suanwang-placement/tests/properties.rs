//! Invariants of the placement engine over random clusters and random task streams, for every
//! policy: what a policy picks always fits, nothing is ever over-allocated, allocated + free =
//! capacity, a task that fits somewhere is never refused, and the same seed gives the same run.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

use proptest::prelude::*;
use suanwang_model::catalog::{Accelerator, AcceleratorSet, Catalog};
use suanwang_model::federation::NodeSpec;
use suanwang_model::job::{AcceleratorRequest, MILLI_PER_DEVICE, TaskSpec};
use suanwang_placement::cluster::{Cluster, NodeIdx};
use suanwang_placement::policy::{self, PolicyContext, PolicyName};
use suanwang_placement::profile::WorkloadProfile;

fn catalog() -> Catalog {
    let accelerator = |model: &str| Accelerator {
        model: model.to_owned(),
        aliases: vec![],
        vendor: "test".to_owned(),
        memory_gib: Some(32),
        fp16_dense_tflops: Some(100.0),
        bf16_dense_tflops: None,
        domestic: false,
        software_stack: "CUDA".to_owned(),
        board_power_w: None,
        note: String::new(),
    };
    Catalog::new(vec![accelerator("A"), accelerator("B")]).unwrap()
}

fn node_strategy() -> impl Strategy<Value = (u32, u32, u8, bool)> {
    (prop_oneof![Just(8_000u32), Just(32_000), Just(96_000), Just(128_000)], 1u32..=8, 0u8..=8, any::<bool>())
}

fn task_strategy() -> impl Strategy<Value = (u32, u32, u8, u16, u8)> {
    (
        prop_oneof![Just(0u32), 1_000u32..=16_000, Just(88_000)],
        0u32..=64,
        prop_oneof![Just(0u8), Just(1), Just(1), Just(2), Just(8)],
        prop_oneof![Just(1000u16), 50u16..=999],
        0u8..=2,
    )
}

fn build(nodes: &[(u32, u32, u8, bool)], tasks: &[(u32, u32, u8, u16, u8)]) -> (Cluster, Vec<TaskSpec>) {
    let catalog = catalog();
    let (a, b) = (catalog.lookup("A").unwrap(), catalog.lookup("B").unwrap());
    let specs: Vec<NodeSpec> = nodes
        .iter()
        .enumerate()
        .map(|(i, &(cpu, memory_gib, gpus, model_b))| NodeSpec {
            name: format!("n{i}"),
            cpu_milli: cpu,
            memory_mib: memory_gib * 16 * 1024,
            accelerator: (gpus > 0).then_some(if model_b { b } else { a }),
            accelerators: gpus,
        })
        .collect();
    let tasks = tasks
        .iter()
        .map(|&(cpu, memory_gib, count, milli, models)| {
            let request = match count {
                0 => AcceleratorRequest::NONE,
                1 => AcceleratorRequest::new(1, milli).unwrap(),
                n => AcceleratorRequest::whole(n).unwrap(),
            };
            let accepted = match models {
                0 => AcceleratorSet::ANY,
                1 => [a].into_iter().collect(),
                _ => [b].into_iter().collect(),
            };
            TaskSpec::new(cpu.max(1), memory_gib * 1024, request, accepted).unwrap()
        })
        .collect();
    (Cluster::new(&specs).unwrap(), tasks)
}

/// Runs one policy over the tasks, checking every invariant after each step; returns the choices.
fn run(policy_name: PolicyName, cluster: &Cluster, tasks: &[TaskSpec], seed: u64) -> Vec<Option<(u32, u16)>> {
    let mut cluster = cluster.clone();
    let capacity: u64 = cluster.gpu_milli_capacity();
    let context = PolicyContext { profile: WorkloadProfile::from_tasks(tasks), seed, nodes: cluster.len() };
    let mut policy = policy::build(policy_name, &context);
    let mut order: Vec<NodeIdx> = (0..cluster.len() as u32).map(NodeIdx).collect();
    order.reverse();
    let mut choices = Vec::new();
    for task in tasks {
        let fits_somewhere = cluster.nodes().iter().any(|n| n.fits(task));
        let choice = policy.select(&cluster, &order, task);
        assert_eq!(choice.is_some(), fits_somewhere, "{policy_name} must place a task exactly when some node fits it");
        if let Some(assignment) = choice {
            assert!(cluster.node(assignment.node).fits(task), "{policy_name} chose a node that does not fit");
            cluster.allocate(assignment, task).expect("a chosen assignment must be allocatable");
        }
        let free: u64 = cluster.nodes().iter().map(|n| u64::from(n.gpu_milli_free())).sum();
        assert_eq!(free + cluster.gpu_milli_allocated(), capacity, "allocated + free = capacity");
        for node in cluster.nodes() {
            assert!(node.device_free_milli().iter().all(|&m| m <= MILLI_PER_DEVICE));
            assert!(node.cpu_milli_free() <= node.cpu_milli_capacity());
            assert!(node.memory_mib_free() <= node.memory_mib_capacity());
        }
        choices.push(choice.map(|a| (a.node.0, a.devices.0)));
    }
    choices
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_policy_keeps_the_cluster_consistent(
        nodes in prop::collection::vec(node_strategy(), 1..12),
        tasks in prop::collection::vec(task_strategy(), 1..80),
        seed in any::<u64>(),
    ) {
        let (cluster, tasks) = build(&nodes, &tasks);
        for name in PolicyName::ALL {
            let first = run(name, &cluster, &tasks, seed);
            let second = run(name, &cluster, &tasks, seed);
            prop_assert_eq!(first, second, "{} is not deterministic", name);
        }
    }

    #[test]
    fn release_undoes_allocate(
        nodes in prop::collection::vec(node_strategy(), 1..6),
        tasks in prop::collection::vec(task_strategy(), 1..40),
    ) {
        let (empty, tasks) = build(&nodes, &tasks);
        let mut cluster = empty.clone();
        let context = PolicyContext { profile: WorkloadProfile::from_tasks(&tasks), seed: 7, nodes: cluster.len() };
        let mut policy = policy::build(PolicyName::BestFit, &context);
        let order: Vec<NodeIdx> = (0..cluster.len() as u32).map(NodeIdx).collect();
        let mut placed = Vec::new();
        for task in &tasks {
            if let Some(a) = policy.select(&cluster, &order, task) {
                cluster.allocate(a, task).unwrap();
                placed.push((a, *task));
            }
        }
        for (a, task) in placed.iter().rev() {
            cluster.release(*a, task).unwrap();
        }
        prop_assert_eq!(cluster.gpu_milli_allocated(), 0);
        for (after, before) in cluster.nodes().iter().zip(empty.nodes()) {
            prop_assert_eq!(after.device_free_milli(), before.device_free_milli());
            prop_assert_eq!(after.cpu_milli_free(), before.cpu_milli_free());
            prop_assert_eq!(after.memory_mib_free(), before.memory_mib_free());
            prop_assert_eq!(after.affinity(), before.affinity());
        }
    }
}
