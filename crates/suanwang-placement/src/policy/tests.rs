//! Data-driven checks of each policy's score on small hand-made nodes.

use super::*;
use crate::cluster::tests::{node, task};

/// Builds a one-node cluster, applies `placed` (task, devices) allocations, and returns the
/// policy's score for `task` there via a two-node tie-free check.
fn score_after(policy: PolicyName, gpus: u8, cpu_milli: u32, placed: &[(TaskSpec, u16)], probe: TaskSpec) -> i64 {
    let mut cluster = Cluster::new(&[node(cpu_milli, gpus)]).unwrap();
    for (t, mask) in placed {
        cluster.allocate(Assignment { node: NodeIdx(0), devices: DeviceMask(*mask) }, t).unwrap();
    }
    let scorer = match policy {
        PolicyName::BestFit => best_fit::score,
        PolicyName::DotProduct => dot_product::score,
        PolicyName::GpuPacking => gpu_packing::score,
        PolicyName::GpuClustering => gpu_clustering::score,
        other => panic!("{other} is not a pure scorer"),
    };
    scorer(cluster.node(NodeIdx(0)), &probe).0
}

#[test]
fn best_fit_scores() {
    // Empty 8-GPU, 96-core node; a 1-GPU 8-core task: leftover 0.5×88/128 + 0.5×7000/8000 = 0.78125.
    assert_eq!(score_after(PolicyName::BestFit, 8, 96_000, &[], task(8_000, 1, 1000)), 21);
    // A full node after the task scores 100.
    assert_eq!(score_after(PolicyName::BestFit, 1, 8_000, &[], task(8_000, 1, 1000)), 100);
}

#[test]
fn dot_product_scores() {
    // (96/128)(8/128) + (8000/8000)(1000/8000) = 0.046875 + 0.125 → 100 × (1 − 0.0859375) = 91.4
    assert_eq!(score_after(PolicyName::DotProduct, 8, 96_000, &[], task(8_000, 1, 1000)), 91);
}

#[test]
fn gpu_packing_scores() {
    let whole = task(1_000, 1, 1000);
    // Empty node: max(33 − free, free).
    assert_eq!(score_after(PolicyName::GpuPacking, 8, 96_000, &[], whole), 25);
    assert_eq!(score_after(PolicyName::GpuPacking, 2, 96_000, &[], whole), 31);
    // Partly used node, the task needs a fully free GPU: max(50 − 1, 33).
    let used = [(task(1_000, 1, 300), 0b1)];
    assert_eq!(score_after(PolicyName::GpuPacking, 8, 96_000, &used, whole), 49);
    // A share fits on the used GPU (700 free → 70 → 100 − 7).
    assert_eq!(score_after(PolicyName::GpuPacking, 8, 96_000, &used, task(1_000, 1, 500)), 93);
    // CPU-only tasks score 0.
    assert_eq!(score_after(PolicyName::GpuPacking, 8, 96_000, &used, task(1_000, 0, 0)), 0);
}

#[test]
fn gpu_clustering_scores() {
    let share = task(1_000, 1, 500);
    assert_eq!(score_after(PolicyName::GpuClustering, 8, 96_000, &[], share), 25);
    let shared = [(task(1_000, 1, 500), 0b1)];
    // Only shared tasks there: 75 + 25 × 500 / 8000 = 75 + 1.
    assert_eq!(score_after(PolicyName::GpuClustering, 8, 96_000, &shared, share), 76);
    // A 1-GPU task on that node: only other affinities → u.
    assert_eq!(score_after(PolicyName::GpuClustering, 8, 96_000, &shared, task(1_000, 1, 1000)), 1);
    let mixed = [(task(1_000, 1, 500), 0b1), (task(1_000, 2, 1000), 0b110)];
    // 50 + 25 × 2500 / 8000.
    assert_eq!(score_after(PolicyName::GpuClustering, 8, 96_000, &mixed, share), 57);
}

#[test]
fn ties_go_to_the_first_node_in_the_order() {
    let cluster = Cluster::new(&[node(96_000, 8), node(96_000, 8), node(96_000, 8)]).unwrap();
    let context = PolicyContext { profile: WorkloadProfile::default(), seed: 1, nodes: cluster.len() };
    for name in PolicyName::ALL.into_iter().filter(|&p| p != PolicyName::Random) {
        let mut policy = build(name, &context);
        let order = [NodeIdx(2), NodeIdx(0), NodeIdx(1)];
        let chosen = policy.select(&cluster, &order, &task(1_000, 1, 1000)).unwrap();
        assert_eq!(chosen.node, NodeIdx(2), "{name}");
    }
}

#[test]
fn no_policy_places_where_nothing_fits() {
    let cluster = Cluster::new(&[node(8_000, 1)]).unwrap();
    let context = PolicyContext { profile: WorkloadProfile::default(), seed: 1, nodes: 1 };
    for name in PolicyName::ALL {
        let mut policy = build(name, &context);
        assert_eq!(policy.select(&cluster, &[NodeIdx(0)], &task(9_000, 0, 0)), None, "{name}");
        assert_eq!(policy.select(&cluster, &[NodeIdx(0)], &task(1_000, 2, 1000)), None, "{name}");
    }
}

#[test]
fn names_round_trip_and_unknown_names_list_the_known_ones() {
    for name in PolicyName::ALL {
        assert_eq!(name.as_str().parse::<PolicyName>(), Ok(name));
    }
    assert_eq!("BEST_FIT".parse::<PolicyName>(), Ok(PolicyName::BestFit));
    let err = "worst-fit".parse::<PolicyName>().unwrap_err();
    assert!(err.to_string().contains("known policies: random, dot-product"), "{err}");
}
