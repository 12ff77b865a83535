//! `fgd`: fragmentation gradient descent (ATC'23). Place where the node's fragmentation F grows
//! least: score = ⌊sigmoid((F_before − F_after) / 1000) × 100⌋. A fractional task tries every
//! device that fits and takes the best (lowest index on ties); whole-device tasks take the
//! lowest-index free devices.

use suanwang_model::job::TaskSpec;

use super::{Policy, PolicyContext, PolicyName, select_by_score, truncate_score};
use crate::cluster::{Assignment, Cluster, DeviceMask, NodeIdx, NodeState};
use crate::frag::{FragMeasure, FragMeter};

pub(super) struct FgdPolicy {
    meter: FragMeter,
}

impl FgdPolicy {
    pub(super) fn new(context: &PolicyContext) -> Self {
        FgdPolicy { meter: FragMeter::new(context.profile.typical().clone(), FragMeasure::NextTask, context.nodes) }
    }
}

/// FGD's integer score for a change of F.
pub(super) fn score(before: f64, after: f64) -> i64 {
    let sigmoid = 1.0 / (1.0 + (-(before - after) / 1000.0).exp());
    truncate_score(sigmoid * 100.0)
}

/// The device sets worth scoring for `task` on `node`, in index order: each distinct fitting
/// device for a fractional task (devices with equal free share give equal results, so the first
/// stands for all), the default set otherwise.
pub(super) fn device_candidates(node: &NodeState, task: &TaskSpec, mut visit: impl FnMut(DeviceMask)) {
    let request = task.accelerators();
    if !request.is_fractional() {
        visit(node.default_devices(task).unwrap_or_default());
        return;
    }
    let free = node.device_free_milli();
    for (i, &f) in free.iter().enumerate() {
        if f >= request.milli_per_device() && !free[..i].contains(&f) {
            visit(DeviceMask::single(i));
        }
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
            device_candidates(node, task, |devices| {
                let value = score(before, meter.after(node, task, devices));
                if best.is_none_or(|(b, _)| value > b) {
                    best = Some((value, devices));
                }
            });
            best.unwrap_or((0, DeviceMask::EMPTY))
        })
    }
}
