//! `best-fit`: prefer the node left with the least free CPU and GPU after placement.
//!
//! score = 100 × (1 − [0.5 × (free_cpu − req_cpu) / 128,000 + 0.5 × (free_gpu − req_gpu) / 8,000])

use suanwang_model::job::TaskSpec;

use super::{MAX_CPU_MILLI, MAX_GPU_MILLI, truncate_score};
use crate::cluster::{DeviceMask, NodeState};

pub(super) fn score(node: &NodeState, task: &TaskSpec) -> (i64, DeviceMask) {
    let cpu_left = f64::from(node.cpu_milli_free()) - f64::from(task.cpu_milli());
    let gpu_left = f64::from(node.gpu_milli_free()) - f64::from(task.accelerators().total_milli());
    let leftover = cpu_left / MAX_CPU_MILLI * 0.5 + gpu_left / MAX_GPU_MILLI * 0.5;
    let devices = node.default_devices(task).unwrap_or_default();
    (truncate_score((1.0 - leftover) * 100.0), devices)
}
