//! `gpu-packing`: fill partly used GPUs first, then fully free GPUs on partly used nodes, then
//! empty nodes (fewest GPUs first). CPU-only tasks score 0 everywhere, so the node order decides.

use suanwang_model::job::{MILLI_PER_DEVICE, TaskSpec};

use crate::cluster::{DeviceMask, MAX_DEVICES, NodeState};

pub(super) fn score(node: &NodeState, task: &TaskSpec) -> (i64, DeviceMask) {
    let request = task.accelerators();
    if request.count() == 0 {
        return (0, DeviceMask::EMPTY);
    }
    let devices = node.default_devices(task).unwrap_or_default();
    let fully_free = node.fully_free_devices() as i64;
    if fully_free == node.device_count() as i64 {
        return ((33 - fully_free).max(fully_free), devices);
    }
    // The devices packing would use: least free first (stable, so lower index on ties).
    let free = node.device_free_milli();
    let mut by_free: [usize; MAX_DEVICES] = std::array::from_fn(|i| i);
    let by_free = &mut by_free[..free.len()];
    by_free.sort_by_key(|&i| free[i]);
    let mut still_needed = request.count();
    let mut fully_free_used = 0i64;
    let mut shared_free_pct = 0i64;
    for &i in by_free.iter() {
        if still_needed == 0 {
            break;
        }
        if free[i] >= request.milli_per_device() {
            still_needed -= 1;
            if free[i] == MILLI_PER_DEVICE {
                fully_free_used += 1;
            }
            shared_free_pct += i64::from(free[i]) * 100 / i64::from(MILLI_PER_DEVICE);
        }
    }
    if fully_free_used > 0 {
        ((50 - fully_free_used).max(33), devices)
    } else {
        ((100 - shared_free_pct / 10).max(50), devices)
    }
}
