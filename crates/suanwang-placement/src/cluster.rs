//! Cluster state: per-node free CPU, memory and per-device free accelerator thousandths.

use suanwang_model::catalog::AcceleratorId;
use suanwang_model::federation::NodeSpec;
use suanwang_model::federation::limits::ACCELERATORS_PER_NODE_MAX;
use suanwang_model::job::{MILLI_PER_DEVICE, TaskSpec};

/// Devices one node can hold.
pub const MAX_DEVICES: usize = ACCELERATORS_PER_NODE_MAX as usize;

/// Affinity classes tracked per node for `gpu-clustering`: 0 is "fractional", k is "k whole devices".
pub const AFFINITY_CLASSES: usize = MAX_DEVICES + 1;

/// Position of a node in its [`Cluster`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIdx(pub u32);

impl NodeIdx {
    /// As a slice index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of device positions on one node (bit i = device i).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DeviceMask(pub u16);

impl DeviceMask {
    /// No device.
    pub const EMPTY: DeviceMask = DeviceMask(0);

    /// One device.
    pub fn single(device: usize) -> DeviceMask {
        DeviceMask(1 << device)
    }

    /// Device positions, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_DEVICES).filter(move |i| self.0 & (1 << i) != 0)
    }

    /// Number of devices.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// True when no device is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Where one task goes: a node and, if it needs accelerators, which devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Assignment {
    /// The node.
    pub node: NodeIdx,
    /// The devices; each gets the task's `milli_per_device`.
    pub devices: DeviceMask,
}

/// Why an allocation or release was refused. These are programming errors of a policy or a
/// driver: the cluster state is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The assignment does not fit the node's free resources or its model.
    #[error("task does not fit node {node}: {reason}")]
    DoesNotFit {
        /// The node.
        node: u32,
        /// Which resource is short.
        reason: &'static str,
    },
    /// A release would give back more than was taken.
    #[error("release on node {node} exceeds what was allocated: {reason}")]
    OverRelease {
        /// The node.
        node: u32,
        /// Which resource.
        reason: &'static str,
    },
    /// A node index out of range.
    #[error("no node {0}")]
    NoSuchNode(u32),
    /// A node spec was invalid.
    #[error("invalid node: {0}")]
    InvalidNode(String),
}

/// The state of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    cpu_milli_capacity: u32,
    memory_mib_capacity: u32,
    cpu_milli_free: u32,
    memory_mib_free: u32,
    model: Option<AcceleratorId>,
    devices: u8,
    device_free_milli: [u16; MAX_DEVICES],
    affinity: [u16; AFFINITY_CLASSES],
    generation: u32,
}

impl NodeState {
    /// An empty node with the spec's capacity.
    pub fn new(spec: &NodeSpec) -> Result<Self, ClusterError> {
        spec.validate().map_err(|e| ClusterError::InvalidNode(e.to_string()))?;
        let mut device_free_milli = [0; MAX_DEVICES];
        device_free_milli[..usize::from(spec.accelerators)].fill(MILLI_PER_DEVICE);
        Ok(NodeState {
            cpu_milli_capacity: spec.cpu_milli,
            memory_mib_capacity: spec.memory_mib,
            cpu_milli_free: spec.cpu_milli,
            memory_mib_free: spec.memory_mib,
            model: spec.accelerator,
            devices: spec.accelerators,
            device_free_milli,
            affinity: [0; AFFINITY_CLASSES],
            generation: 0,
        })
    }

    /// Free CPU in thousandths of a core.
    pub fn cpu_milli_free(&self) -> u32 {
        self.cpu_milli_free
    }

    /// CPU capacity.
    pub fn cpu_milli_capacity(&self) -> u32 {
        self.cpu_milli_capacity
    }

    /// Free memory.
    pub fn memory_mib_free(&self) -> u32 {
        self.memory_mib_free
    }

    /// Memory capacity.
    pub fn memory_mib_capacity(&self) -> u32 {
        self.memory_mib_capacity
    }

    /// The accelerator model, if any.
    pub fn model(&self) -> Option<AcceleratorId> {
        self.model
    }

    /// Number of devices.
    pub fn device_count(&self) -> usize {
        usize::from(self.devices)
    }

    /// Free thousandths of each device, by device position.
    pub fn device_free_milli(&self) -> &[u16] {
        &self.device_free_milli[..usize::from(self.devices)]
    }

    /// Free accelerator thousandths on the whole node.
    pub fn gpu_milli_free(&self) -> u32 {
        self.device_free_milli().iter().map(|&m| u32::from(m)).sum()
    }

    /// Accelerator capacity of the node in thousandths.
    pub fn gpu_milli_capacity(&self) -> u32 {
        u32::from(self.devices) * u32::from(MILLI_PER_DEVICE)
    }

    /// Devices nobody uses.
    pub fn fully_free_devices(&self) -> usize {
        self.device_free_milli().iter().filter(|&&m| m == MILLI_PER_DEVICE).count()
    }

    /// How many tasks of each affinity class run here (index 0: fractional; k: k whole devices).
    pub fn affinity(&self) -> &[u16; AFFINITY_CLASSES] {
        &self.affinity
    }

    /// Bumped on every change; lets policies cache per-node results.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Whether the node can take `task` now: enough free CPU and memory, an accepted model, and
    /// `count` devices each with at least `milli_per_device` free.
    pub fn fits(&self, task: &TaskSpec) -> bool {
        if self.cpu_milli_free < task.cpu_milli() || self.memory_mib_free < task.memory_mib() {
            return false;
        }
        let request = task.accelerators();
        if request.count() == 0 {
            return true;
        }
        let Some(model) = self.model else { return false };
        if !task.accepted_models().contains(model) {
            return false;
        }
        let need = request.milli_per_device();
        self.device_free_milli().iter().filter(|&&m| m >= need).count() >= usize::from(request.count())
    }

    /// Whether the node's model is acceptable to a task that needs accelerators (ignores free
    /// resources). CPU-only tasks accept every node.
    pub fn accessible(&self, task: &TaskSpec) -> bool {
        task.accelerators().count() == 0 || self.model.is_some_and(|m| task.accepted_models().contains(m))
    }

    /// The lowest-index devices with at least `milli` free, `count` of them (or `None`).
    pub fn lowest_devices_with(&self, count: u8, milli: u16) -> Option<DeviceMask> {
        let mut mask = 0u16;
        let mut taken = 0;
        for (i, &free) in self.device_free_milli().iter().enumerate() {
            if taken == count {
                break;
            }
            if free >= milli {
                mask |= 1 << i;
                taken += 1;
            }
        }
        (taken == count).then_some(DeviceMask(mask))
    }

    /// The device with the least free thousandths that still has `milli` free (lowest index on
    /// ties), for a fractional task.
    pub fn tightest_device_with(&self, milli: u16) -> Option<usize> {
        let mut best: Option<(u16, usize)> = None;
        for (i, &free) in self.device_free_milli().iter().enumerate() {
            if free >= milli && best.is_none_or(|(b, _)| free < b) {
                best = Some((free, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// The default device choice for `task` on this node: whole-device tasks take the
    /// lowest-index fully free devices; a fractional task the tightest device that fits.
    pub fn default_devices(&self, task: &TaskSpec) -> Option<DeviceMask> {
        let request = task.accelerators();
        if request.count() == 0 {
            Some(DeviceMask::EMPTY)
        } else if request.is_fractional() {
            self.tightest_device_with(request.milli_per_device()).map(DeviceMask::single)
        } else {
            self.lowest_devices_with(request.count(), request.milli_per_device())
        }
    }

    /// Whether `other` would still fit after `task` took `devices` here (for policies that look
    /// one placement ahead). `task` must fit with `devices`.
    pub fn fits_after(&self, task: &TaskSpec, devices: DeviceMask, other: &TaskSpec) -> bool {
        let cpu_left = self.cpu_milli_free.saturating_sub(task.cpu_milli());
        let memory_left = self.memory_mib_free.saturating_sub(task.memory_mib());
        if cpu_left < other.cpu_milli() || memory_left < other.memory_mib() {
            return false;
        }
        let request = other.accelerators();
        if request.count() == 0 {
            return true;
        }
        if !self.accessible(other) {
            return false;
        }
        let taken = task.accelerators().milli_per_device();
        let fitting = (0..self.device_count())
            .filter(|&i| {
                let free = self.device_free_milli[i];
                let free = if devices.0 & (1 << i) != 0 { free.saturating_sub(taken) } else { free };
                free >= request.milli_per_device()
            })
            .count();
        fitting >= usize::from(request.count())
    }

    /// This node as it would be if `task` gave back `devices` (for what-if planning, such as
    /// choosing preemption victims); refuses what [`Cluster::release`] would refuse.
    pub fn released(&self, devices: DeviceMask, task: &TaskSpec) -> Result<NodeState, ClusterError> {
        let mut node = self.clone();
        node.give_back(0, devices, task)?;
        Ok(node)
    }

    /// Returns a task's resources to this node, or changes nothing and says why.
    fn give_back(&mut self, node_number: u32, devices: DeviceMask, task: &TaskSpec) -> Result<(), ClusterError> {
        let over = |reason| Err(ClusterError::OverRelease { node: node_number, reason });
        if self.cpu_milli_free + task.cpu_milli() > self.cpu_milli_capacity {
            return over("cpu");
        }
        if self.memory_mib_free + task.memory_mib() > self.memory_mib_capacity {
            return over("memory");
        }
        let milli = task.accelerators().milli_per_device();
        if devices.len() != u32::from(task.accelerators().count()) {
            return over("wrong number of devices");
        }
        for device in devices.iter() {
            if device >= self.device_count() || self.device_free_milli[device] + milli > MILLI_PER_DEVICE {
                return over("device share");
            }
        }
        let class = affinity_class(task);
        if class.is_some_and(|c| self.affinity[c] == 0) {
            return over("affinity count");
        }
        self.cpu_milli_free += task.cpu_milli();
        self.memory_mib_free += task.memory_mib();
        for device in devices.iter() {
            self.device_free_milli[device] += milli;
        }
        if let Some(class) = class {
            self.affinity[class] -= 1;
        }
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    fn check_assignment(&self, node: u32, task: &TaskSpec, devices: DeviceMask) -> Result<(), ClusterError> {
        let fail = |reason| Err(ClusterError::DoesNotFit { node, reason });
        if self.cpu_milli_free < task.cpu_milli() {
            return fail("cpu");
        }
        if self.memory_mib_free < task.memory_mib() {
            return fail("memory");
        }
        let request = task.accelerators();
        if devices.len() != u32::from(request.count()) {
            return fail("wrong number of devices");
        }
        if request.count() > 0 && !self.accessible(task) {
            return fail("accelerator model not accepted");
        }
        for device in devices.iter() {
            if device >= self.device_count() {
                return fail("no such device");
            }
            if self.device_free_milli[device] < request.milli_per_device() {
                return fail("device share");
            }
        }
        Ok(())
    }
}

fn affinity_class(task: &TaskSpec) -> Option<usize> {
    let request = task.accelerators();
    match request.count() {
        0 => None,
        _ if request.is_fractional() => Some(0),
        count => Some(usize::from(count)),
    }
}

/// Every node of one cluster, with running totals.
#[derive(Clone, Debug)]
pub struct Cluster {
    nodes: Vec<NodeState>,
    gpu_milli_capacity: u64,
    gpu_milli_allocated: u64,
}

impl Cluster {
    /// A cluster of empty nodes (possibly none: a pool whose nodes are not known yet).
    pub fn new(specs: &[NodeSpec]) -> Result<Self, ClusterError> {
        let nodes = specs.iter().map(NodeState::new).collect::<Result<Vec<_>, _>>()?;
        let gpu_milli_capacity = nodes.iter().map(|n| u64::from(n.gpu_milli_capacity())).sum();
        Ok(Cluster { nodes, gpu_milli_capacity, gpu_milli_allocated: 0 })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Adds an empty node (a cluster that grew); its index is the old [`Cluster::len`].
    pub fn push(&mut self, spec: &NodeSpec) -> Result<NodeIdx, ClusterError> {
        let node = NodeState::new(spec)?;
        self.gpu_milli_capacity += u64::from(node.gpu_milli_capacity());
        self.nodes.push(node);
        Ok(NodeIdx(u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)))
    }

    /// True when the cluster has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// One node.
    pub fn node(&self, idx: NodeIdx) -> &NodeState {
        &self.nodes[idx.index()]
    }

    /// All nodes, by index.
    pub fn nodes(&self) -> &[NodeState] {
        &self.nodes
    }

    /// Accelerator capacity of the whole cluster in thousandths.
    pub fn gpu_milli_capacity(&self) -> u64 {
        self.gpu_milli_capacity
    }

    /// Accelerator thousandths allocated to tasks.
    pub fn gpu_milli_allocated(&self) -> u64 {
        self.gpu_milli_allocated
    }

    /// Takes the task's resources on the assignment's node and devices, or changes nothing and
    /// says why it cannot.
    pub fn allocate(&mut self, assignment: Assignment, task: &TaskSpec) -> Result<(), ClusterError> {
        let node_number = assignment.node.0;
        let node = self.nodes.get_mut(assignment.node.index()).ok_or(ClusterError::NoSuchNode(node_number))?;
        node.check_assignment(node_number, task, assignment.devices)?;
        let milli = task.accelerators().milli_per_device();
        node.cpu_milli_free -= task.cpu_milli();
        node.memory_mib_free -= task.memory_mib();
        for device in assignment.devices.iter() {
            node.device_free_milli[device] -= milli;
        }
        if let Some(class) = affinity_class(task) {
            node.affinity[class] = node.affinity[class].saturating_add(1);
        }
        node.generation = node.generation.wrapping_add(1);
        self.gpu_milli_allocated += u64::from(task.accelerators().total_milli());
        Ok(())
    }

    /// Gives back what [`allocate`](Self::allocate) took for the same assignment and task.
    pub fn release(&mut self, assignment: Assignment, task: &TaskSpec) -> Result<(), ClusterError> {
        let node_number = assignment.node.0;
        let node = self.nodes.get_mut(assignment.node.index()).ok_or(ClusterError::NoSuchNode(node_number))?;
        node.give_back(node_number, assignment.devices, task)?;
        self.gpu_milli_allocated -= u64::from(task.accelerators().total_milli());
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use suanwang_model::catalog::{AcceleratorSet, Catalog};
    use suanwang_model::job::AcceleratorRequest;

    /// The model of [`node`]'s cards.
    pub(crate) fn model() -> AcceleratorId {
        two_models().0
    }

    /// Two models of one catalog, `A` and `B`.
    pub(crate) fn two_models() -> (AcceleratorId, AcceleratorId) {
        thread_local! {
            static CATALOG: Catalog = Catalog::new(["A", "B"].iter().map(|name| suanwang_model::catalog::Accelerator {
                model: (*name).to_owned(),
                aliases: vec![],
                vendor: "t".to_owned(),
                memory_gib: Some(16),
                fp16_dense_tflops: None,
                bf16_dense_tflops: None,
                domestic: false,
                software_stack: "CUDA".to_owned(),
                board_power_w: None,
                note: String::new(),
            }).collect())
            .unwrap();
        }
        CATALOG.with(|c| (c.lookup("A").unwrap(), c.lookup("B").unwrap()))
    }

    pub(crate) fn node_of(cpu_milli: u32, gpus: u8, model: AcceleratorId) -> NodeSpec {
        NodeSpec { name: "n".to_owned(), cpu_milli, memory_mib: 1 << 20, accelerator: Some(model), accelerators: gpus }
    }

    pub(crate) fn task_on(cpu_milli: u32, count: u8, milli: u16, models: AcceleratorSet) -> TaskSpec {
        TaskSpec::new(cpu_milli, 1024, AcceleratorRequest::new(count, milli).unwrap(), models).unwrap()
    }

    pub(crate) fn node(cpu_milli: u32, gpus: u8) -> NodeSpec {
        NodeSpec {
            name: "n".to_owned(),
            cpu_milli,
            memory_mib: 1 << 20,
            accelerator: (gpus > 0).then(model),
            accelerators: gpus,
        }
    }

    pub(crate) fn task(cpu_milli: u32, count: u8, milli: u16) -> TaskSpec {
        TaskSpec::new(cpu_milli, 1024, AcceleratorRequest::new(count, milli).unwrap(), AcceleratorSet::ANY).unwrap()
    }

    #[test]
    fn allocate_then_release_restores_the_node() {
        let mut cluster = Cluster::new(&[node(16_000, 4)]).unwrap();
        let before = cluster.node(NodeIdx(0)).clone();
        let t = task(4_000, 1, 300);
        let a = Assignment { node: NodeIdx(0), devices: DeviceMask::single(2) };
        cluster.allocate(a, &t).unwrap();
        assert_eq!(cluster.node(NodeIdx(0)).device_free_milli(), &[1000, 1000, 700, 1000]);
        assert_eq!(cluster.gpu_milli_allocated(), 300);
        assert_eq!(cluster.node(NodeIdx(0)).affinity()[0], 1);
        cluster.release(a, &t).unwrap();
        let after = cluster.node(NodeIdx(0));
        assert_eq!(after.device_free_milli(), before.device_free_milli());
        assert_eq!(after.cpu_milli_free(), before.cpu_milli_free());
        assert_eq!(cluster.gpu_milli_allocated(), 0);
        assert!(cluster.release(a, &t).is_err(), "a second release must be refused");
    }

    #[test]
    fn over_allocation_is_refused_and_changes_nothing() {
        let mut cluster = Cluster::new(&[node(16_000, 2)]).unwrap();
        let half = task(1_000, 1, 600);
        cluster.allocate(Assignment { node: NodeIdx(0), devices: DeviceMask::single(0) }, &half).unwrap();
        let snapshot = cluster.node(NodeIdx(0)).clone();
        let err = cluster.allocate(Assignment { node: NodeIdx(0), devices: DeviceMask::single(0) }, &half);
        assert_eq!(err, Err(ClusterError::DoesNotFit { node: 0, reason: "device share" }));
        let err = cluster.allocate(Assignment { node: NodeIdx(0), devices: DeviceMask(0b11) }, &task(1_000, 2, 1000));
        assert!(err.is_err());
        let err = cluster.allocate(Assignment { node: NodeIdx(0), devices: DeviceMask::EMPTY }, &task(20_000, 0, 0));
        assert_eq!(err, Err(ClusterError::DoesNotFit { node: 0, reason: "cpu" }));
        assert_eq!(cluster.node(NodeIdx(0)), &snapshot);
    }

    #[test]
    fn device_choice_rules() {
        let mut cluster = Cluster::new(&[node(64_000, 4)]).unwrap();
        cluster.allocate(Assignment { node: NodeIdx(0), devices: DeviceMask::single(1) }, &task(0, 1, 500)).unwrap();
        cluster.allocate(Assignment { node: NodeIdx(0), devices: DeviceMask::single(3) }, &task(0, 1, 200)).unwrap();
        let n = cluster.node(NodeIdx(0));
        assert_eq!(n.device_free_milli(), &[1000, 500, 1000, 800]);
        assert_eq!(n.tightest_device_with(400), Some(1));
        assert_eq!(n.tightest_device_with(600), Some(3));
        assert_eq!(n.tightest_device_with(900), Some(0));
        assert_eq!(n.lowest_devices_with(2, 1000), Some(DeviceMask(0b101)));
        assert_eq!(n.lowest_devices_with(3, 1000), None);
        assert!(n.fits(&task(0, 2, 1000)));
        assert!(!n.fits(&task(0, 3, 1000)));
        assert_eq!(n.fully_free_devices(), 2);
        assert_eq!(n.gpu_milli_free(), 3300);
    }

    #[test]
    fn fits_after_looks_one_placement_ahead() {
        let cluster = Cluster::new(&[node(16_000, 2)]).unwrap();
        let n = cluster.node(NodeIdx(0));
        let gang = task(8_000, 2, 1000);
        assert!(n.fits_after(&task(8_000, 0, 0), DeviceMask::EMPTY, &gang));
        assert!(!n.fits_after(&task(9_000, 0, 0), DeviceMask::EMPTY, &gang), "cpu");
        assert!(!n.fits_after(&task(1_000, 1, 100), DeviceMask::single(1), &gang), "a device is no longer whole");
        assert!(n.fits_after(&task(1_000, 1, 100), DeviceMask::single(1), &task(1_000, 1, 900)));
    }

    #[test]
    fn an_empty_cluster_has_no_capacity() {
        let cluster = Cluster::new(&[]).unwrap();
        assert!(cluster.is_empty());
        assert_eq!(cluster.gpu_milli_capacity(), 0);
    }
}
