//! What a policy may learn about a workload before placing it: the same information the FGD paper
//! gives its policy (the task list as a whole, not the order tasks will arrive in).

use rustc_hash::FxHashMap;
use suanwang_model::job::TaskSpec;

use crate::frag::{TYPICAL_COVERAGE, TypicalShapes};

/// Gang shapes (tasks needing two or more whole devices) tracked, most frequent first.
pub const GANG_SHAPES_MAX: usize = 256;

/// A distinct multi-device task shape and its share of the workload's tasks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GangShape {
    /// The shape (CPU, memory, devices, accepted models).
    pub task: TaskSpec,
    /// Its share of all tasks (0..=1).
    pub share: f64,
}

/// Accelerator models a catalog may hold (an `AcceleratorSet` is 128 bits).
pub const MODELS_MAX: usize = 128;

/// A summary of a workload for placement policies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadProfile {
    typical: TypicalShapes,
    gangs: Vec<GangShape>,
    gpu_milli_per_task_mean: f64,
    /// Per model index: the share of the workload's accelerator demand that can run only on a
    /// few models including it (pinned tasks' milli-GPU, split evenly over their models).
    pinned_share: Vec<f64>,
}

impl WorkloadProfile {
    /// Profiles a task list: typical shapes at the paper's 95% coverage, every gang shape (up to
    /// [`GANG_SHAPES_MAX`]), and the mean accelerator thousandths per task.
    pub fn from_tasks(tasks: &[TaskSpec]) -> Self {
        let typical = TypicalShapes::from_tasks(tasks, TYPICAL_COVERAGE);
        let mut counts: FxHashMap<TaskSpec, u64> = FxHashMap::default();
        for task in tasks.iter().filter(|t| t.accelerators().count() >= 2) {
            *counts.entry(*task).or_default() += 1;
        }
        let mut gangs: Vec<(TaskSpec, u64)> = counts.into_iter().collect();
        // Most frequent first; ties by shape so the order never depends on hashing.
        gangs.sort_unstable_by_key(|(t, n)| {
            (std::cmp::Reverse(*n), t.cpu_milli(), t.memory_mib(), t.accelerators(), t.accepted_models().bits())
        });
        gangs.truncate(GANG_SHAPES_MAX);
        let total = tasks.len().max(1) as f64;
        let gangs = gangs.into_iter().map(|(task, n)| GangShape { task, share: n as f64 / total }).collect();
        let gpu_milli: f64 = tasks.iter().map(|t| f64::from(t.accelerators().total_milli())).sum();
        let mut pinned_share = vec![0.0; MODELS_MAX];
        for task in tasks.iter().filter(|t| t.accelerators().count() > 0 && !t.accepted_models().is_any()) {
            let bits = task.accepted_models().bits();
            let models = bits.count_ones();
            if models == 0 || gpu_milli <= 0.0 {
                continue;
            }
            let each = f64::from(task.accelerators().total_milli()) / f64::from(models) / gpu_milli;
            for (m, share) in pinned_share.iter_mut().enumerate() {
                if bits & (1u128 << m) != 0 {
                    *share += each;
                }
            }
        }
        if pinned_share.iter().all(|s| *s == 0.0) {
            pinned_share.clear();
        }
        WorkloadProfile { typical, gangs, gpu_milli_per_task_mean: gpu_milli / total, pinned_share }
    }

    /// The share of the workload's accelerator demand pinned to model `index` (0 when none is).
    pub fn pinned_share(&self, index: usize) -> f64 {
        self.pinned_share.get(index).copied().unwrap_or(0.0)
    }

    /// Whether some task is pinned to models.
    pub fn has_pinned(&self) -> bool {
        !self.pinned_share.is_empty()
    }

    /// The typical shapes (FGD's).
    pub fn typical(&self) -> &TypicalShapes {
        &self.typical
    }

    /// Multi-device shapes, most frequent first.
    pub fn gangs(&self) -> &[GangShape] {
        &self.gangs
    }

    /// Mean accelerator thousandths one task asks for.
    pub fn gpu_milli_per_task_mean(&self) -> f64 {
        self.gpu_milli_per_task_mean
    }
}
