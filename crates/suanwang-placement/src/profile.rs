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

/// A summary of a workload for placement policies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadProfile {
    typical: TypicalShapes,
    gangs: Vec<GangShape>,
    gpu_milli_per_task_mean: f64,
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
        WorkloadProfile { typical, gangs, gpu_milli_per_task_mean: gpu_milli / total }
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
