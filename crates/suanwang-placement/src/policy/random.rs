//! `random`: a uniformly random feasible node; a fractional task gets a random device that fits.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use suanwang_model::job::TaskSpec;

use super::{Policy, PolicyName};
use crate::cluster::{Assignment, Cluster, DeviceMask, NodeIdx};

/// Offsets the policy's stream from the simulator's, which is seeded with the same run seed.
const STREAM: u64 = 0x5157_414e_5241_4e44;

pub(super) struct RandomPolicy {
    rng: Pcg64Mcg,
    feasible: Vec<NodeIdx>,
}

impl RandomPolicy {
    pub(super) fn new(seed: u64) -> Self {
        RandomPolicy { rng: Pcg64Mcg::seed_from_u64(seed ^ STREAM), feasible: Vec::new() }
    }
}

impl Policy for RandomPolicy {
    fn name(&self) -> PolicyName {
        PolicyName::Random
    }

    fn select(&mut self, cluster: &Cluster, order: &[NodeIdx], task: &TaskSpec) -> Option<Assignment> {
        self.feasible.clear();
        self.feasible.extend(order.iter().copied().filter(|&idx| cluster.node(idx).fits(task)));
        if self.feasible.is_empty() {
            return None;
        }
        let idx = self.feasible[self.rng.random_range(0..self.feasible.len())];
        let node = cluster.node(idx);
        let request = task.accelerators();
        let devices = if request.is_fractional() {
            let fitting: Vec<usize> = node
                .device_free_milli()
                .iter()
                .enumerate()
                .filter(|(_, free)| **free >= request.milli_per_device())
                .map(|(i, _)| i)
                .collect();
            DeviceMask::single(fitting[self.rng.random_range(0..fitting.len())])
        } else {
            node.default_devices(task)?
        };
        Some(Assignment { node: idx, devices })
    }
}
