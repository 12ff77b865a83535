//! `frag-plus`: Suanwang's own node-placement policy, and the default. It keeps FGD's decision and
//! corrects it where FGD cannot see: `docs/frag-plus.md` explains the idea and the evidence.
//!
//! A candidate (node, devices) is ranked by three keys, most significant first:
//!
//! 1. **FGD's integer score** (⌊sigmoid(ΔF / 1000) × 100⌋ over the typical shapes). Its coarse
//!    bins, with ties going to the first node in the run's order, pack like first-fit inside a
//!    class of equally good nodes; that consolidation is worth more than finer distinctions.
//! 2. Among equal FGD scores, the **copies measure**: the change of
//!    [`fragment_milli_copies`](crate::frag::TypicalShapes::fragment_milli_copies), which counts
//!    every copy of each typical shape a node can still host, limited by CPU as well as devices.
//!    FGD asks only whether *one* more task fits, so it does not see a node whose CPU will run
//!    out long before its GPUs (12-core GPU nodes filled with 18-core tasks), nor that a 470-milli
//!    share on a fresh GPU leaves 60 milli that two 470s cannot use. Quantised in steps of
//!    `quantum_milli` so that near-equal candidates still fall to the node order.
//! 3. Minus a **gang-scarcity penalty**: for each multi-device shape of the workload whose
//!    expected remaining arrivals reach `scarcity_threshold` × the nodes that can still host it,
//!    a candidate that would take away one of those hosts pays the shape's size in milli-GPU. This
//!    keeps the few nodes that can host the largest gangs (e.g. 8 GPUs with 120 cores) for them.

use suanwang_model::job::TaskSpec;

use super::fgd::{device_candidates, score as fgd_score};
use super::{Policy, PolicyContext, PolicyName, select_by_score};
use crate::cluster::{Assignment, Cluster, DeviceMask, NodeIdx};
use crate::frag::{FragMeasure, FragMeter};
use crate::profile::{GangShape, WorkloadProfile};

/// Tuning of `frag-plus`. The defaults sit in the middle of a plateau (see `docs/frag-plus.md`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FragPlusConfig {
    /// Step in which the copies measure is compared, in milli-GPU.
    pub quantum_milli: f64,
    /// A gang shape is protected once its expected remaining arrivals reach this share of its hosts.
    pub scarcity_threshold: f64,
}

impl Default for FragPlusConfig {
    fn default() -> Self {
        FragPlusConfig { quantum_milli: 200.0, scarcity_threshold: 0.2 }
    }
}

/// Keys 1 and 2 share one `i64`: the FGD score (0..=100) above, the copies key below.
const SECONDARY_LIMIT: i64 = 1 << 40;

pub(super) struct FragPlusPolicy {
    config: FragPlusConfig,
    next_task: FragMeter,
    copies: FragMeter,
    gangs: GangScarcity,
}

impl FragPlusPolicy {
    pub(super) fn new(context: &PolicyContext, config: FragPlusConfig) -> Self {
        let typical = context.profile.typical();
        FragPlusPolicy {
            config,
            next_task: FragMeter::new(typical.clone(), FragMeasure::NextTask, context.nodes),
            copies: FragMeter::new(typical.clone(), FragMeasure::Copies, context.nodes),
            gangs: GangScarcity::new(&context.profile, context.nodes),
        }
    }
}

impl Policy for FragPlusPolicy {
    fn name(&self) -> PolicyName {
        PolicyName::FragPlus
    }

    fn select(&mut self, cluster: &Cluster, order: &[NodeIdx], task: &TaskSpec) -> Option<Assignment> {
        let FragPlusPolicy { config, next_task, copies, gangs } = self;
        gangs.refresh(cluster);
        let scarce = gangs.scarce(cluster, config.scarcity_threshold);
        select_by_score(cluster, order, task, |node, idx| {
            let fgd_before = next_task.node(cluster, idx);
            let copies_before = copies.node(cluster, idx);
            let mut best: Option<(i64, DeviceMask)> = None;
            device_candidates(node, task, |devices| {
                let primary = fgd_score(fgd_before, next_task.after(node, task, devices));
                let penalty: f64 = scarce
                    .iter()
                    .filter(|(gang, _)| node.fits(&gang.task) && !node.fits_after(task, devices, &gang.task))
                    .map(|(gang, severity)| severity * f64::from(gang.task.accelerators().total_milli()))
                    .sum();
                let gain = copies_before - copies.after(node, task, devices) - penalty;
                let secondary =
                    ((gain / config.quantum_milli).round() as i64).clamp(-SECONDARY_LIMIT / 2, SECONDARY_LIMIT / 2 - 1);
                let value = primary * SECONDARY_LIMIT + secondary;
                if best.is_none_or(|(b, _)| value > b) {
                    best = Some((value, devices));
                }
            });
            best.unwrap_or((0, DeviceMask::EMPTY))
        })
    }
}

/// Tracks, for each gang shape, how many nodes can host one copy now; updated from the nodes whose
/// generation changed since the last call.
struct GangScarcity {
    gangs: Vec<GangShape>,
    gpu_milli_per_task_mean: f64,
    /// Nodes that can host each gang shape now.
    hosts: Vec<u32>,
    /// Per node: the generation last seen and which gang shapes it could host then.
    seen: Vec<Option<(u32, Vec<bool>)>>,
}

impl GangScarcity {
    fn new(profile: &WorkloadProfile, nodes: usize) -> Self {
        GangScarcity {
            gangs: profile.gangs().to_vec(),
            gpu_milli_per_task_mean: profile.gpu_milli_per_task_mean(),
            hosts: vec![0; profile.gangs().len()],
            seen: vec![None; nodes],
        }
    }

    fn refresh(&mut self, cluster: &Cluster) {
        if self.gangs.is_empty() {
            return;
        }
        for (node, seen) in cluster.nodes().iter().zip(&mut self.seen) {
            if seen.as_ref().is_some_and(|(generation, _)| *generation == node.generation()) {
                continue;
            }
            let now: Vec<bool> = self.gangs.iter().map(|gang| node.fits(&gang.task)).collect();
            let before = seen.take().map(|(_, hosted)| hosted);
            for (s, &hosts_now) in now.iter().enumerate() {
                let hosted_before = before.as_ref().is_some_and(|b| b[s]);
                match (hosted_before, hosts_now) {
                    (false, true) => self.hosts[s] += 1,
                    (true, false) => self.hosts[s] -= 1,
                    _ => {}
                }
            }
            *seen = Some((node.generation(), now));
        }
    }

    /// Gang shapes whose expected remaining arrivals reach `threshold` × their hosts, with a
    /// severity in (0, 1]: expected arrivals over hosts, capped at 1. Remaining arrivals are
    /// estimated as the free accelerator capacity over the mean request per task.
    fn scarce(&self, cluster: &Cluster, threshold: f64) -> Vec<(GangShape, f64)> {
        let free_milli = (cluster.gpu_milli_capacity() - cluster.gpu_milli_allocated()) as f64;
        let remaining_tasks = free_milli / self.gpu_milli_per_task_mean.max(1.0);
        self.gangs
            .iter()
            .zip(&self.hosts)
            .filter_map(|(gang, &hosts)| {
                let pressure = gang.share * remaining_tasks / f64::from(hosts.max(1));
                (hosts > 0 && pressure >= threshold).then_some((*gang, pressure.min(1.0)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::tests::{node, task};

    #[test]
    fn gang_hosts_follow_the_cluster() {
        let mut cluster = Cluster::new(&[node(128_000, 8), node(96_000, 8), node(96_000, 2)]).unwrap();
        let big = task(120_000, 8, 1000);
        let profile = WorkloadProfile::from_tasks(&[big, task(1_000, 1, 1000), task(1_000, 1, 1000)]);
        let mut gangs = GangScarcity::new(&profile, cluster.len());
        gangs.refresh(&cluster);
        assert_eq!(gangs.hosts, vec![1], "only the 128-core node can host 120 cores");
        // One third of tasks is the gang; 24 free GPUs over a mean of 3.33 GPUs per task = 7.2
        // tasks; 2.4 gangs expected for one host: scarce, severity capped at 1.
        let scarce = gangs.scarce(&cluster, 0.2);
        assert_eq!(scarce.len(), 1);
        assert_eq!(scarce[0].1, 1.0);
        cluster
            .allocate(Assignment { node: NodeIdx(0), devices: DeviceMask::single(0) }, &task(1_000, 1, 1000))
            .unwrap();
        gangs.refresh(&cluster);
        assert_eq!(gangs.hosts, vec![0]);
        assert!(gangs.scarce(&cluster, 0.2).is_empty(), "nothing left to protect");
    }

    #[test]
    fn frag_plus_keeps_the_only_gang_host_free_where_fgd_does_not() {
        // Node 0 (128 cores) is the only node that can host the 120-core gang, and it comes first
        // in the order. The gang is 5% of tasks, too rare to be a typical shape, so FGD's scores
        // tie and FGD takes node 0; frag-plus sees the gang is scarce and uses node 1.
        let cluster = Cluster::new(&[node(128_000, 8), node(64_000, 8)]).unwrap();
        let gang = task(120_000, 8, 1000);
        let small = task(4_000, 1, 1000);
        let mut tasks = vec![gang; 5];
        tasks.extend(std::iter::repeat_n(small, 95));
        let context = PolicyContext { profile: WorkloadProfile::from_tasks(&tasks), seed: 0, nodes: cluster.len() };
        assert_eq!(context.profile.typical().shapes().len(), 1, "only the small shape is typical");
        let order = [NodeIdx(0), NodeIdx(1)];
        let fgd = super::super::build(PolicyName::Fgd, &context).select(&cluster, &order, &small).unwrap();
        assert_eq!(fgd.node, NodeIdx(0));
        let mut policy = FragPlusPolicy::new(&context, FragPlusConfig::default());
        assert_eq!(policy.select(&cluster, &order, &small).unwrap().node, NodeIdx(1));
    }
}
