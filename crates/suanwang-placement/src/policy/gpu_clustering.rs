//! `gpu-clustering`: keep tasks of one GPU size ("fractional", "1 GPU", "2 GPUs", …) together.
//!
//! With u = 25 × (8,000 − free GPU) / 8,000: a node holding only this size scores 75 + u; holding
//! it among others 50 + u; holding nothing 25 + u; holding only other sizes u. CPU-only tasks 0.

use suanwang_model::job::TaskSpec;

use crate::cluster::{DeviceMask, NodeState};

pub(super) fn score(node: &NodeState, task: &TaskSpec) -> (i64, DeviceMask) {
    let request = task.accelerators();
    if request.count() == 0 {
        return (0, DeviceMask::EMPTY);
    }
    let class = if request.is_fractional() { 0 } else { usize::from(request.count()) };
    let affinity = node.affinity();
    let classes_present = affinity.iter().filter(|&&n| n > 0).count();
    let used = 25 * (8_000 - i64::from(node.gpu_milli_free())) / 8_000;
    let base = match (affinity[class] > 0, classes_present) {
        (true, 1) => 75,
        (true, _) => 50,
        (false, 0) => 25,
        (false, _) => 0,
    };
    (base + used, node.default_devices(task).unwrap_or_default())
}
