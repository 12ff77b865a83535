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
use suanwang_model::job::{MILLI_PER_DEVICE, TaskSpec};

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

    /// F for a node in the given state: Σ over shapes of probability × fragment (the FGD measure:
    /// what the *next* task of each shape could not use).
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

    /// Like [`fragment_milli`](Self::fragment_milli), but a shape's usable share is what as many
    /// copies of it as the node can still host would use: copies are limited by CPU as well as by
    /// devices (k whole free devices per copy, or ⌊free / share⌋ copies per device). It sees that a
    /// node whose CPU will run out before its GPUs do strands those GPUs, and that a fresh GPU
    /// given to a 470-milli task leaves 60 milli nobody of that shape can use.
    pub fn fragment_milli_copies(&self, model: Option<AcceleratorId>, cpu_milli_free: u32, device_free: &[u16]) -> f64 {
        let free_total: u32 = device_free.iter().map(|&m| u32::from(m)).sum();
        if free_total == 0 {
            return 0.0;
        }
        let mut fragment = 0.0;
        for shape in &self.shapes {
            let usable = if shape.devices == 0 || !model.is_some_and(|m| shape.models.contains(m)) {
                0
            } else {
                let gpu_copies = if shape.milli_per_device < MILLI_PER_DEVICE {
                    device_free.iter().map(|&f| u32::from(f / shape.milli_per_device)).sum::<u32>()
                } else {
                    device_free.iter().filter(|&&f| f == MILLI_PER_DEVICE).count() as u32 / u32::from(shape.devices)
                };
                let cpu_copies = cpu_milli_free.checked_div(shape.cpu_milli).unwrap_or(u32::MAX);
                gpu_copies.min(cpu_copies) * u32::from(shape.devices) * u32::from(shape.milli_per_device)
            };
            fragment += shape.probability * f64::from(free_total - usable);
        }
        fragment
    }
}

/// Which fragmentation measure a [`FragMeter`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragMeasure {
    /// [`TypicalShapes::fragment_milli`]: the FGD paper's measure.
    NextTask,
    /// [`TypicalShapes::fragment_milli_copies`]: counts every copy a node can still host.
    Copies,
}

/// Computes F for nodes, remembering results by node state (many nodes share a state, and a
/// placement changes one node at a time).
#[derive(Clone, Debug)]
pub struct FragMeter {
    typical: TypicalShapes,
    measure: FragMeasure,
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
    pub fn new(typical: TypicalShapes, measure: FragMeasure, nodes: usize) -> Self {
        FragMeter { typical, measure, memo: FxHashMap::default(), by_node: vec![None; nodes] }
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
        let fragment = match self.measure {
            FragMeasure::NextTask => self.typical.fragment_milli(model, cpu_milli_free, device_free),
            FragMeasure::Copies => self.typical.fragment_milli_copies(model, cpu_milli_free, device_free),
        };
        if self.memo.len() >= MEMO_ENTRIES_MAX {
            self.memo.clear();
        }
        self.memo.insert(key, fragment);
        fragment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::tests::{model, task};

    fn shapes(list: &[(u32, u8, u16, u32)]) -> TypicalShapes {
        let tasks: Vec<TaskSpec> = list
            .iter()
            .flat_map(|&(cpu, count, milli, times)| std::iter::repeat_n(task(cpu, count, milli), times as usize))
            .collect();
        TypicalShapes::from_tasks(&tasks, 1.0)
    }

    #[test]
    fn typical_shapes_keep_the_most_frequent_until_covered() {
        let tasks: Vec<TaskSpec> = [(1, 50), (2, 30), (3, 15), (4, 5)]
            .iter()
            .flat_map(|&(cpu, n)| std::iter::repeat_n(task(cpu * 1000, 1, 1000), n))
            .collect();
        let typical = TypicalShapes::from_tasks(&tasks, 0.95);
        let cpus: Vec<u32> = typical.shapes().iter().map(|s| s.cpu_milli).collect();
        assert_eq!(cpus, vec![1000, 2000, 3000], "50+30+15 = 95 covers 95%");
        let total: f64 = typical.shapes().iter().map(|s| s.probability).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((typical.shapes()[0].probability - 50.0 / 95.0).abs() < 1e-12);
    }

    #[test]
    fn next_task_fragment_follows_the_paper() {
        // One shape: 1 CPU core, half a GPU. Devices free: 1000, 400 (400 < 500 is fragment).
        let typical = shapes(&[(1000, 1, 500, 1)]);
        assert_eq!(typical.fragment_milli(Some(model()), 8000, &[1000, 400]), 400.0);
        // CPU short: every free milli is fragment.
        assert_eq!(typical.fragment_milli(Some(model()), 500, &[1000, 400]), 1400.0);
        // A CPU-only shape counts all free GPU as fragment.
        let cpu_only = shapes(&[(1000, 0, 0, 1)]);
        assert_eq!(cpu_only.fragment_milli(Some(model()), 8000, &[1000, 400]), 1400.0);
        // Nothing free, no fragment.
        assert_eq!(typical.fragment_milli(Some(model()), 8000, &[0, 0]), 0.0);
        // No accelerator model: all of it.
        assert_eq!(typical.fragment_milli(None, 8000, &[1000]), 1000.0);
    }

    #[test]
    fn copies_fragment_counts_every_copy_cpu_allows() {
        // 470-milli shape: a fresh GPU hosts two copies and strands 60.
        let typical = shapes(&[(1000, 1, 470, 1)]);
        assert_eq!(typical.fragment_milli_copies(Some(model()), 64_000, &[1000]), 60.0);
        assert_eq!(typical.fragment_milli(Some(model()), 64_000, &[1000]), 0.0);
        // Whole-GPU shape needing 12 cores on a node with 8 free GPUs but 30 cores: 2 copies.
        let typical = shapes(&[(12_000, 1, 1000, 1)]);
        let free = [1000; 8];
        assert_eq!(typical.fragment_milli_copies(Some(model()), 30_000, &free), 6000.0);
        assert_eq!(typical.fragment_milli(Some(model()), 30_000, &free), 0.0);
        // A 2-GPU shape on 3 free GPUs: one copy, one GPU stranded.
        let typical = shapes(&[(1000, 2, 1000, 1)]);
        assert_eq!(typical.fragment_milli_copies(Some(model()), 30_000, &[1000, 1000, 1000]), 1000.0);
    }

    #[test]
    fn the_meter_caches_by_generation_and_state() {
        let typical = shapes(&[(1000, 1, 500, 1)]);
        let mut cluster = Cluster::new(&[crate::cluster::tests::node(8000, 2)]).unwrap();
        let mut meter = FragMeter::new(typical, FragMeasure::NextTask, 1);
        assert_eq!(meter.node(&cluster, NodeIdx(0)), 0.0);
        let t = task(1000, 1, 600);
        let a = crate::cluster::Assignment { node: NodeIdx(0), devices: DeviceMask::single(1) };
        assert_eq!(meter.after(cluster.node(NodeIdx(0)), &t, a.devices), 400.0);
        cluster.allocate(a, &t).unwrap();
        assert_eq!(meter.node(&cluster, NodeIdx(0)), 400.0, "a changed node is measured again");
    }
}
