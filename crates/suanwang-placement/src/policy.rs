//! Placement policies: the [`Policy`] trait, the registry of named policies, and the shared
//! filter → score → pick loop.
//!
//! **Tie rule.** A run fixes one node order (a permutation drawn once from the run's seed). Every
//! scoring policy walks the nodes in that order and keeps a node only if its score is strictly
//! higher than the best so far, so a tie goes to the node that comes first in the order. This is
//! the rule of the FGD paper's simulator, and it makes every placement deterministic.

use std::fmt;
use std::str::FromStr;

use suanwang_model::job::TaskSpec;

use crate::cluster::{Assignment, Cluster, DeviceMask, NodeIdx, NodeState};
use crate::profile::WorkloadProfile;

mod best_fit;
mod dot_product;
mod fgd;
mod frag_plus;
mod gpu_clustering;
mod gpu_packing;
mod random;

pub use frag_plus::FragPlusConfig;

/// Chooses a node (and devices) for one task at a time.
pub trait Policy: Send + Sync {
    /// The policy's registered name.
    fn name(&self) -> PolicyName;

    /// Picks where `task` goes, walking `order` (every node exactly once), or `None` when no node
    /// fits. Does not change the cluster: the caller allocates the assignment.
    fn select(&mut self, cluster: &Cluster, order: &[NodeIdx], task: &TaskSpec) -> Option<Assignment>;
}

/// Every policy Suanwang knows, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyName {
    /// A uniformly random feasible node (a baseline).
    Random,
    /// Tetris-style alignment of request and free vectors (a baseline).
    DotProduct,
    /// Keep tasks of the same GPU size together (a baseline).
    GpuClustering,
    /// Fill partly used GPUs, then partly used nodes, then empty ones (a baseline).
    GpuPacking,
    /// Least leftover CPU and GPU (a baseline).
    BestFit,
    /// Fragmentation gradient descent, the ATC'23 paper's policy (a baseline).
    Fgd,
    /// Suanwang's own, the default: FGD's score, refined by a CPU-aware copies measure and gang scarcity.
    FragPlus,
}

impl PolicyName {
    /// Every policy, baselines first, in the order reports list them.
    pub const ALL: [PolicyName; 7] = [
        PolicyName::Random,
        PolicyName::DotProduct,
        PolicyName::GpuClustering,
        PolicyName::GpuPacking,
        PolicyName::BestFit,
        PolicyName::Fgd,
        PolicyName::FragPlus,
    ];

    /// The policy used when none is named: the project's best.
    pub const DEFAULT: PolicyName = PolicyName::FragPlus;

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::Random => "random",
            PolicyName::DotProduct => "dot-product",
            PolicyName::GpuClustering => "gpu-clustering",
            PolicyName::GpuPacking => "gpu-packing",
            PolicyName::BestFit => "best-fit",
            PolicyName::Fgd => "fgd",
            PolicyName::FragPlus => "frag-plus",
        }
    }

    /// The name of the same policy in the FGD paper's published result files, for baselines.
    pub fn paper_name(self) -> Option<&'static str> {
        match self {
            PolicyName::Random => Some("01-Random"),
            PolicyName::DotProduct => Some("02-DotProd"),
            PolicyName::GpuClustering => Some("03-GpuClustering"),
            PolicyName::GpuPacking => Some("04-GpuPacking"),
            PolicyName::BestFit => Some("05-BestFit"),
            PolicyName::Fgd => Some("06-FGD"),
            PolicyName::FragPlus => None,
        }
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy name nobody registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {name:?}; known policies: {}", known_names())]
pub struct UnknownPolicy {
    /// What was asked for.
    pub name: String,
}

fn known_names() -> String {
    PolicyName::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

impl FromStr for PolicyName {
    type Err = UnknownPolicy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
        PolicyName::ALL
            .into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| UnknownPolicy { name: name.to_owned() })
    }
}

/// What policies may know besides the cluster: a profile of the workload (for the
/// fragmentation-aware ones) and the run's seed (for `random`).
#[derive(Clone, Debug)]
pub struct PolicyContext {
    /// What the workload looks like, e.g. [`WorkloadProfile::from_tasks`] over the task list.
    pub profile: WorkloadProfile,
    /// Seed of the run; `random` draws from a generator seeded with it.
    pub seed: u64,
    /// Number of nodes in the cluster (for per-node caches).
    pub nodes: usize,
}

/// Builds a policy by name.
pub fn build(name: PolicyName, context: &PolicyContext) -> Box<dyn Policy> {
    match name {
        PolicyName::Random => Box::new(random::RandomPolicy::new(context.seed)),
        PolicyName::DotProduct => Box::new(ScoredPolicy { name, scorer: dot_product::score }),
        PolicyName::GpuClustering => Box::new(ScoredPolicy { name, scorer: gpu_clustering::score }),
        PolicyName::GpuPacking => Box::new(ScoredPolicy { name, scorer: gpu_packing::score }),
        PolicyName::BestFit => Box::new(ScoredPolicy { name, scorer: best_fit::score }),
        PolicyName::Fgd => Box::new(fgd::FgdPolicy::new(context)),
        PolicyName::FragPlus => Box::new(frag_plus::FragPlusPolicy::new(context, FragPlusConfig::default())),
    }
}

/// A policy that is a pure function of one node's state and the task.
struct ScoredPolicy {
    name: PolicyName,
    scorer: fn(&NodeState, &TaskSpec) -> (i64, DeviceMask),
}

impl Policy for ScoredPolicy {
    fn name(&self) -> PolicyName {
        self.name
    }

    fn select(&mut self, cluster: &Cluster, order: &[NodeIdx], task: &TaskSpec) -> Option<Assignment> {
        let scorer = self.scorer;
        select_by_score(cluster, order, task, |node, _| scorer(node, task))
    }
}

/// The shared loop: among nodes that fit, in `order`, the highest score wins; ties go to the
/// earlier node.
pub fn select_by_score(
    cluster: &Cluster,
    order: &[NodeIdx],
    task: &TaskSpec,
    mut score: impl FnMut(&NodeState, NodeIdx) -> (i64, DeviceMask),
) -> Option<Assignment> {
    let mut best: Option<(i64, Assignment)> = None;
    for &idx in order {
        let node = cluster.node(idx);
        if !node.fits(task) {
            continue;
        }
        let (value, devices) = score(node, idx);
        if best.is_none_or(|(b, _)| value > b) {
            best = Some((value, Assignment { node: idx, devices }));
        }
    }
    best.map(|(_, assignment)| assignment)
}

/// The constants the baselines normalise by (the paper's, not computed from the cluster).
pub(crate) const MAX_CPU_MILLI: f64 = 128_000.0;
pub(crate) const MAX_GPU_MILLI: f64 = 8_000.0;

/// The scores the paper's baselines give are integers in 0..=100, truncated toward zero.
pub(crate) fn truncate_score(value: f64) -> i64 {
    value as i64
}

#[cfg(test)]
mod tests;
