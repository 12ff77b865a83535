//! GPU fragmentation against a workload's typical task shapes (Weng et al., "Beware of
//! Fragmentation", USENIX ATC'23).
//!
//! For one node and one task shape t, the *fragment* is the free accelerator thousandths t could
//! not use: all of them when t needs no accelerator, cannot use the node's model, lacks CPU, or
//! cannot fit its devices; otherwise the free thousandths of the devices with less free than t's
//! share. A node's fragmentation F is the probability-weighted sum over the typical shapes, and a
//! cluster's is the sum over nodes.

use rustc_hash::FxHashMap;
use suanwang_model::catalog::{AcceleratorId, AcceleratorSet};
use suanwang_model::job::TaskSpec;

use crate::cluster::{Cluster, DeviceMask, MAX_DEVICES, NodeIdx, NodeState};

/// Share of all tasks the typical shapes cover (the paper's choice).
pub const TYPICAL_COVERAGE: f64 = 0.95;

/// The most typical shapes kept, whatever the coverage.
pub const TYPICAL_SHAPES_MAX: usize = 4096;

/// Entries kept in a [`FragMeter`]'s memo before it is cleared.
pub const MEMO_ENTRIES_MAX: usize = 1 << 21;

/// One typical task shape and its share of the workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TypicalShape {
    /// CPU per task.
    pub cpu_milli: u32,
    /// Devices per task (0 for CPU-only).
    pub devices: u8,
    /// Thousandths of each device.
    pub milli_per_device: u16,
    /// Accepted accelerator models.
    pub models: AcceleratorSet,
    /// Share of the typical shapes (they sum to 1).
    pub probability: f64,
}

/// The most frequent task shapes of a workload, covering a given share of its tasks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypicalShapes {
    shapes: Vec<TypicalShape>,
}

/// Sort key matching the reference simulator: by CPU, then share, then device count, then models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ShapeKey {
    cpu_milli: u32,
    milli_per_device: u16,
    devices: u8,
    models: u128,
}

impl TypicalShapes {
    /// Counts the distinct (CPU, devices, share, models) shapes of `tasks` (memory plays no part),
    /// sorts them by frequency (ties by shape, larger first), keeps the most frequent until they
    /// cover at least `coverage` of the tasks, and renormalises their shares to sum to 1.
    pub fn from_tasks<'a>(tasks: impl IntoIterator<Item = &'a TaskSpec>, coverage: f64) -> Self {
        let mut counts: FxHashMap<ShapeKey, u64> = FxHashMap::default();
        let mut total = 0u64;
        for task in tasks {
            let request = task.accelerators();
            let models = task.accepted_models();
            let key = ShapeKey {
                cpu_milli: task.cpu_milli(),
                milli_per_device: request.milli_per_device(),
                devices: request.count(),
                models: models.bits(),
            };
            *counts.entry(key).or_default() += 1;
            total += 1;
        }
        let mut sorted: Vec<(ShapeKey, u64)> = counts.into_iter().collect();
        sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
        let expected = coverage * total as f64;
        let mut covered = 0.0;
        let mut kept = Vec::new();
        for (key, count) in sorted {
            if covered >= expected || kept.len() == TYPICAL_SHAPES_MAX {
                break;
            }
            covered += count as f64;
            kept.push((key, count));
        }
        let kept_total: u64 = kept.iter().map(|(_, c)| c).sum();
        let shapes = kept
            .into_iter()
            .map(|(key, count)| TypicalShape {
                cpu_milli: key.cpu_milli,
                devices: key.devices,
                milli_per_device: key.milli_per_device,
                models: AcceleratorSet::from_bits(key.models),
                probability: count as f64 / kept_total as f64,
            })
            .collect();
        TypicalShapes { shapes }
    }

    /// The shapes, most frequent first.
    pub fn shapes(&self) -> &[TypicalShape] {
        &self.shapes
    }

    /// F for a node in the given state: Σ over shapes of probability × fragment.
    pub fn fragment_milli(&self, model: Option<AcceleratorId>, cpu_milli_free: u32, device_free: &[u16]) -> f64 {
        let free_total: u32 = device_free.iter().map(|&m| u32::from(m)).sum();
        if free_total == 0 {
            return 0.0;
        }
        let mut fragment = 0.0;
        for shape in &self.shapes {
            let unusable = if shape.devices == 0
                || cpu_milli_free < shape.cpu_milli
                || !model.is_some_and(|m| shape.models.contains(m))
            {
                free_total
            } else {
                let mut fitting = 0u8;
                let mut below = 0u32;
                for &free in device_free {
                    if free >= shape.milli_per_device {
                        fitting += 1;
                    } else {
                        below += u32::from(free);
                    }
                }
                if fitting >= shape.devices { below } else { free_total }
            };
            fragment += shape.probability * f64::from(unusable);
        }
        fragment
    }
}

/// Computes F for nodes, remembering results by node state (many nodes share a state, and a
/// placement changes one node at a time).
#[derive(Clone, Debug)]
pub struct FragMeter {
    typical: TypicalShapes,
    memo: FxHashMap<StateKey, f64>,
    /// Per node: the generation F was computed at, and F.
    by_node: Vec<Option<(u32, f64)>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct StateKey {
    model: u16,
    cpu_milli_free: u32,
    /// Free thousandths per device, largest first; fragmentation does not depend on positions.
    device_free: [u16; MAX_DEVICES],
}

impl FragMeter {
    /// A meter for one cluster of `nodes` nodes.
    pub fn new(typical: TypicalShapes, nodes: usize) -> Self {
        FragMeter { typical, memo: FxHashMap::default(), by_node: vec![None; nodes] }
    }

    /// The typical shapes measured against.
    pub fn typical(&self) -> &TypicalShapes {
        &self.typical
    }

    /// F of a node as it is now.
    pub fn node(&mut self, cluster: &Cluster, idx: NodeIdx) -> f64 {
        let node = cluster.node(idx);
        if let Some((generation, fragment)) = self.by_node[idx.index()]
            && generation == node.generation()
        {
            return fragment;
        }
        let fragment = self.state(node.model(), node.cpu_milli_free(), node.device_free_milli());
        self.by_node[idx.index()] = Some((node.generation(), fragment));
        fragment
    }

    /// F of a node as it would be after `task` took `devices` on it.
    pub fn after(&mut self, node: &NodeState, task: &TaskSpec, devices: DeviceMask) -> f64 {
        let mut device_free = [0u16; MAX_DEVICES];
        let n = node.device_count();
        device_free[..n].copy_from_slice(node.device_free_milli());
        let milli = task.accelerators().milli_per_device();
        for device in devices.iter() {
            device_free[device] -= milli;
        }
        self.state(node.model(), node.cpu_milli_free() - task.cpu_milli(), &device_free[..n])
    }

    /// F of an arbitrary node state.
    pub fn state(&mut self, model: Option<AcceleratorId>, cpu_milli_free: u32, device_free: &[u16]) -> f64 {
        let mut key = StateKey {
            model: model.map_or(u16::MAX, |m| m.index() as u16),
            cpu_milli_free,
            device_free: [0; MAX_DEVICES],
        };
        key.device_free[..device_free.len()].copy_from_slice(device_free);
        key.device_free[..device_free.len()].sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&fragment) = self.memo.get(&key) {
            return fragment;
        }
        let fragment = self.typical.fragment_milli(model, cpu_milli_free, device_free);
        if self.memo.len() >= MEMO_ENTRIES_MAX {
            self.memo.clear();
        }
        self.memo.insert(key, fragment);
        fragment
    }
}
