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
//! 4. Minus a **model-scarcity penalty** (only when some tasks of the workload are pinned to
//!    models): a task that could run on other models too pays its milli-GPU, times the pressure
//!    (at most 1), for a node of a model whose free cards the pinned tasks are expected to need:
//!    the model's pinned share of the workload's demand × the free capacity, over the model's
//!    free cards, once that reaches `model_threshold`. This keeps a scarce model's cards for the
//!    tasks that can run nowhere else.

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
    /// A model's free cards are protected for the tasks pinned to it once their expected
    /// remaining demand reaches this share of them.
    pub model_threshold: f64,
}

impl Default for FragPlusConfig {
    fn default() -> Self {
        FragPlusConfig { quantum_milli: 200.0, scarcity_threshold: 0.2, model_threshold: 0.5 }
    }
}

/// Keys 1 and 2 share one `i64`: the FGD score (0..=100) above, the copies key below.
const SECONDARY_LIMIT: i64 = 1 << 40;

pub(super) struct FragPlusPolicy {
    config: FragPlusConfig,
    next_task: FragMeter,
    copies: FragMeter,
    gangs: GangScarcity,
    profile: WorkloadProfile,
}

impl FragPlusPolicy {
    pub(super) fn new(context: &PolicyContext, config: FragPlusConfig) -> Self {
        let typical = context.profile.typical();
        FragPlusPolicy {
            config,
            next_task: FragMeter::new(typical.clone(), FragMeasure::NextTask, context.nodes),
            copies: FragMeter::new(typical.clone(), FragMeasure::Copies, context.nodes),
            gangs: GangScarcity::new(&context.profile, context.nodes),
            profile: context.profile.clone(),
        }
    }
}

impl Policy for FragPlusPolicy {
    fn name(&self) -> PolicyName {
        PolicyName::FragPlus
    }

    fn select(&mut self, cluster: &Cluster, order: &[NodeIdx], task: &TaskSpec) -> Option<Assignment> {
        let FragPlusPolicy { config, next_task, copies, gangs, profile } = self;
        gangs.refresh(cluster);
        let scarce = gangs.scarce(cluster, config.scarcity_threshold);
        let models = model_pressure(profile, cluster, task, config.model_threshold);
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
                let model_penalty = node
                    .model()
                    .and_then(|m| models.get(m.index()).copied())
                    .map_or(0.0, |severity| severity * f64::from(task.accelerators().total_milli()));
                let gain = copies_before - copies.after(node, task, devices) - penalty - model_penalty;
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

/// Per model index, for a task that could run on other models too: how much the model's free
/// cards are needed by the tasks pinned to it (0 when not, or below `threshold`; at most 1). The
/// expected remaining pinned demand is the model's pinned share of the free capacity.
fn model_pressure(profile: &WorkloadProfile, cluster: &Cluster, task: &TaskSpec, threshold: f64) -> Vec<f64> {
    if !profile.has_pinned() || task.accelerators().count() == 0 {
        return Vec::new();
    }
    let mut free = vec![0.0f64; crate::profile::MODELS_MAX];
    for node in cluster.nodes() {
        if let Some(m) = node.model() {
            free[m.index()] += f64::from(node.gpu_milli_free());
        }
    }
    let free_total: f64 = free.iter().sum();
    let accepted = task.accepted_models().bits();
    free.iter()
        .enumerate()
        .map(|(m, &free_m)| {
            // A task that can run only here takes what it must.
            if accepted & !(1u128 << m) == 0 || free_m <= 0.0 {
                return 0.0;
            }
            let pressure = profile.pinned_share(m) * free_total / free_m;
            if pressure >= threshold { pressure.min(1.0) } else { 0.0 }
        })
        .collect()
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
    fn a_flexible_task_leaves_a_pinned_models_cards_to_the_tasks_pinned_to_it() {
        // A 16-card node of model A and a 1-card node of model B; 4% of the tasks are pinned to
        // B (too rare to be a typical shape, so FGD does not see them), the rest run anywhere.
        // The order puts B's node first: FGD takes it for a flexible task; frag-plus sees that
        // B's one card is expected to be needed (0.04 × 17 free cards over 1 = 0.68 ≥ 0.5) and
        // leaves it.
        let (a, b) = crate::cluster::tests::two_models();
        let cluster = Cluster::new(&[
            crate::cluster::tests::node_of(64_000, 16, a),
            crate::cluster::tests::node_of(64_000, 1, b),
        ])
        .unwrap();
        let mut only_b = suanwang_model::catalog::AcceleratorSet::NONE;
        only_b.insert(b);
        let pinned = crate::cluster::tests::task_on(4_000, 1, 1000, only_b);
        let flexible = task(4_000, 1, 1000);
        let tasks: Vec<TaskSpec> = std::iter::repeat_n(pinned, 4).chain(std::iter::repeat_n(flexible, 96)).collect();
        let context = PolicyContext { profile: WorkloadProfile::from_tasks(&tasks), seed: 0, nodes: cluster.len() };
        assert_eq!(context.profile.typical().shapes().len(), 1, "only the flexible shape is typical");
        assert!((context.profile.pinned_share(b.index()) - 0.04).abs() < 1e-9);
        assert_eq!(context.profile.pinned_share(a.index()), 0.0);
        let order = [NodeIdx(1), NodeIdx(0)];
        let fgd = super::super::build(PolicyName::Fgd, &context).select(&cluster, &order, &flexible).unwrap();
        assert_eq!(fgd.node, NodeIdx(1), "FGD fills B's card");
        let mut policy = FragPlusPolicy::new(&context, FragPlusConfig::default());
        assert_eq!(policy.select(&cluster, &order, &flexible).unwrap().node, NodeIdx(0));
        assert_eq!(policy.select(&cluster, &order, &pinned).unwrap().node, NodeIdx(1), "a pinned task takes its model");
        // A workload with nothing pinned: no such penalty.
        let unpinned = WorkloadProfile::from_tasks(&[flexible; 10]);
        assert!(!unpinned.has_pinned());
        assert!(model_pressure(&unpinned, &cluster, &flexible, 0.5).is_empty());
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
