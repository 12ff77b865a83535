//! `fgd`: fragmentation gradient descent (ATC'23). Place where the node's fragmentation F grows
//! least: score = ⌊sigmoid((F_before − F_after) / 1000) × 100⌋. A fractional task tries every
//! device that fits and takes the best (lowest index on ties); whole-device tasks take the
//! lowest-index free devices.

use suanwang_model::job::TaskSpec;

use super::{Policy, PolicyContext, PolicyName, select_by_score, truncate_score};
use crate::cluster::{Assignment, Cluster, DeviceMask, NodeIdx, NodeState};
use crate::frag::FragMeter;

pub(super) struct FgdPolicy {
    meter: FragMeter,
}

impl FgdPolicy {
    pub(super) fn new(context: &PolicyContext) -> Self {
        FgdPolicy { meter: FragMeter::new(context.typical.clone(), context.nodes) }
    }
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// For each candidate device set of `task` on `node` (each distinct fitting device for a
/// fractional task, in index order; the default set otherwise), the fragmentation after placing.
pub(crate) fn candidates(
    meter: &mut FragMeter,
    node: &NodeState,
    task: &TaskSpec,
    mut visit: impl FnMut(DeviceMask, f64),
) {
    let request = task.accelerators();
    if !request.is_fractional() {
        let devices = node.default_devices(task).unwrap_or_default();
        visit(devices, meter.after(node, task, devices));
        return;
    }
    let free = node.device_free_milli();
    for (i, &f) in free.iter().enumerate() {
        // Devices with equal free share give equal results; the first of them stands for all.
        if f < request.milli_per_device() || free[..i].contains(&f) {
            continue;
        }
        let devices = DeviceMask::single(i);
        visit(devices, meter.after(node, task, devices));
    }
}

impl Policy for FgdPolicy {
    fn name(&self) -> PolicyName {
        PolicyName::Fgd
    }

    fn select(&mut self, cluster: &Cluster, order: &[NodeIdx], task: &TaskSpec) -> Option<Assignment> {
        let meter = &mut self.meter;
        select_by_score(cluster, order, task, |node, idx| {
            let before = meter.node(cluster, idx);
            let mut best: Option<(i64, DeviceMask)> = None;
            candidates(meter, node, task, |devices, after| {
                let score = truncate_score(sigmoid((before - after) / 1000.0) * 100.0);
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, devices));
                }
            });
            best.unwrap_or((0, DeviceMask::EMPTY))
        })
    }
}
