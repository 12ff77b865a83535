//! `dot-product` (Tetris): prefer the node whose free vector is least aligned with the request.
//!
//! score = 100 × (1 − [(free_cpu/128,000)(req_cpu/128,000) + (free_gpu/8,000)(req_gpu/8,000)] / 2)

use suanwang_model::job::TaskSpec;

use super::{MAX_CPU_MILLI, MAX_GPU_MILLI, truncate_score};
use crate::cluster::{DeviceMask, NodeState};

pub(super) fn score(node: &NodeState, task: &TaskSpec) -> (i64, DeviceMask) {
    let cpu = f64::from(node.cpu_milli_free()) / MAX_CPU_MILLI * (f64::from(task.cpu_milli()) / MAX_CPU_MILLI);
    let gpu = f64::from(node.gpu_milli_free()) / MAX_GPU_MILLI
        * (f64::from(task.accelerators().total_milli()) / MAX_GPU_MILLI);
    let devices = node.default_devices(task).unwrap_or_default();
    (truncate_score(100.0 * (1.0 - (cpu + gpu) / 2.0)), devices)
}
