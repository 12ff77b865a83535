//! The placement protocol of the FGD paper (ATC'23), exactly as `../shared/traces/README.md`
//! states it:
//!
//! 1. The task list is sorted by name, shuffled, then **inflated**: tasks drawn uniformly with
//!    replacement from the sorted list are appended until the next draw would take the total
//!    requested accelerator thousandths past `inflation` × the cluster's.
//! 2. One permutation of the nodes is drawn and fixed for the run; ties go to the earlier node.
//! 3. Each task is tried **once**, in order; tasks never leave.
//! 4. After every task: arrived% (requested so far, failures included, over capacity),
//!    allocated% (rounded to two decimals), and the cluster's fragmentation against the typical
//!    shapes of the original task list.
//! 5. Records are bucketed by arrived% rounded to a whole number and averaged per bucket (an empty
//!    bucket takes the records within ±1); across seeds each bucket takes the median.
//!
//! One seed drives all randomness of a run, in this order: shuffle, inflation draws, node
//! permutation; the `random` policy draws from its own generator seeded with the same seed.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use suanwang_model::job::TaskSpec;
use suanwang_placement::cluster::{Cluster, NodeIdx, NodeState};
use suanwang_placement::frag::{FragMeasure, FragMeter};
use suanwang_placement::policy::{self, PolicyContext, PolicyName};
use suanwang_placement::profile::WorkloadProfile;

use crate::stats::{mean, median, round2};

/// The most tasks one run may try after inflation.
pub const TASKS_MAX: usize = 20_000_000;

/// The largest inflation factor accepted.
pub const INFLATION_MAX: f64 = 10.0;

/// Why a simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The task list is empty.
    #[error("the task list is empty")]
    NoTasks,
    /// No task of the workload fits any node, even when the cluster is empty: there is nothing to
    /// replay. (Some tasks that fit no node are tried, fail and are counted, as the paper's
    /// simulator does: [`Workload::infeasible`].)
    #[error("no task fits any node even in an empty cluster; for example {0}")]
    NoTaskFits(InfeasibleTask),
    /// The inflation factor is out of range.
    #[error("inflation must be a number in (0, {INFLATION_MAX}], got {0}")]
    BadInflation(f64),
    /// Inflation would make too many tasks.
    #[error("inflation would need more than {TASKS_MAX} tasks")]
    TooManyTasks,
    /// The cluster has no accelerators, so arrived% is undefined.
    #[error("the cluster has no accelerators; the placement protocol measures GPU allocation")]
    NoAccelerators,
}

impl SimError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SimError::NoTasks => "empty_input",
            SimError::NoTaskFits(_) => "task_fits_no_node",
            SimError::BadInflation(_) => "invalid_argument",
            SimError::TooManyTasks => "limit_exceeded",
            SimError::NoAccelerators => "no_accelerators",
        }
    }
}

/// A task list ready for the protocol: sorted by name, with its typical shapes.
#[derive(Clone, Debug)]
pub struct Workload {
    names: Vec<String>,
    tasks: Vec<TaskSpec>,
    profile: WorkloadProfile,
}

impl Workload {
    /// Sorts the tasks by name (stably) and computes the typical shapes over all of them.
    pub fn new(mut tasks: Vec<(String, TaskSpec)>) -> Result<Self, SimError> {
        if tasks.is_empty() {
            return Err(SimError::NoTasks);
        }
        if tasks.len() > TASKS_MAX {
            return Err(SimError::TooManyTasks);
        }
        tasks.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, tasks): (Vec<String>, Vec<TaskSpec>) = tasks.into_iter().unzip();
        let profile = WorkloadProfile::from_tasks(&tasks);
        Ok(Workload { names, tasks, profile })
    }

    /// The tasks, sorted by name.
    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// The profile policies learn from (over the original list, before shuffle and inflation).
    pub fn profile(&self) -> &WorkloadProfile {
        &self.profile
    }

    /// Which tasks fit no node even when the cluster is empty (more CPU, memory or cards than
    /// any node has, or a model no node has). They stay in the workload: tried, they fail and
    /// are counted ([`SeedRun::tasks_infeasible`]), as in the paper's simulator. An error only
    /// when the cluster has no accelerators or no task fits at all.
    pub fn infeasible(&self, cluster: &Cluster) -> Result<Infeasible, SimError> {
        if cluster.gpu_milli_capacity() == 0 {
            return Err(SimError::NoAccelerators);
        }
        let fits = self.fits_on(cluster);
        let mut found = Infeasible { tasks: 0, examples: Vec::new() };
        for ((name, task), fits) in self.names.iter().zip(&self.tasks).zip(&fits) {
            if *fits {
                continue;
            }
            found.tasks += 1;
            if found.examples.len() < INFEASIBLE_EXAMPLES && !found.examples.iter().any(|e| e.shape == *task) {
                found.examples.push(InfeasibleTask::of(name, task));
            }
        }
        if found.tasks == self.tasks.len() as u64 {
            return Err(SimError::NoTaskFits(found.examples.swap_remove(0)));
        }
        Ok(found)
    }

    /// Per task (in [`Workload::tasks`] order): whether some node of the empty cluster fits it.
    /// Distinct nodes and shapes are few: each shape is checked against each distinct node once.
    pub fn fits_on(&self, cluster: &Cluster) -> Vec<bool> {
        let mut empty: Vec<&NodeState> = Vec::new();
        for node in cluster.nodes() {
            if !empty.iter().any(|e| same_capacity(e, node)) {
                empty.push(node);
            }
        }
        let mut known: std::collections::HashMap<TaskSpec, bool> = std::collections::HashMap::new();
        self.tasks
            .iter()
            .map(|task| *known.entry(*task).or_insert_with(|| empty.iter().any(|n| n.fits(task))))
            .collect()
    }
}

/// Examples of tasks that fit no node kept by [`Workload::infeasible`] (distinct shapes).
pub const INFEASIBLE_EXAMPLES: usize = 5;

/// The tasks of a workload that fit no node of the empty cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Infeasible {
    /// How many tasks of the original list (before inflation).
    pub tasks: u64,
    /// A few of them, of distinct shapes, in name order.
    pub examples: Vec<InfeasibleTask>,
}

/// One task that fits no node, for people.
#[derive(Clone, Debug, PartialEq)]
pub struct InfeasibleTask {
    /// Its name.
    pub name: String,
    /// What it asks for.
    pub shape: TaskSpec,
}

impl InfeasibleTask {
    fn of(name: &str, task: &TaskSpec) -> Self {
        InfeasibleTask { name: name.to_owned(), shape: *task }
    }
}

impl std::fmt::Display for InfeasibleTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let request = self.shape.accelerators();
        write!(
            f,
            "task {} (cpu {} milli, memory {} MiB, {} × {} milli-GPU",
            self.name,
            self.shape.cpu_milli(),
            self.shape.memory_mib(),
            request.count(),
            request.milli_per_device()
        )?;
        let models = self.shape.accepted_models();
        if !models.is_any() && request.count() > 0 {
            write!(f, " of {} pinned model(s)", models.bits().count_ones())?;
        }
        write!(f, ")")
    }
}

fn same_capacity(a: &NodeState, b: &NodeState) -> bool {
    a.cpu_milli_capacity() == b.cpu_milli_capacity()
        && a.memory_mib_capacity() == b.memory_mib_capacity()
        && a.model() == b.model()
        && a.device_count() == b.device_count()
}

/// Settings of the protocol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProtocolConfig {
    inflation: f64,
}

impl ProtocolConfig {
    /// The paper's setting: inflate to 1.3 × capacity.
    pub const PAPER: ProtocolConfig = ProtocolConfig { inflation: 1.3 };

    /// A protocol with another inflation factor.
    pub fn new(inflation: f64) -> Result<Self, SimError> {
        if !(inflation.is_finite() && inflation > 0.0 && inflation <= INFLATION_MAX) {
            return Err(SimError::BadInflation(inflation));
        }
        Ok(ProtocolConfig { inflation })
    }

    /// The inflation factor.
    pub fn inflation(&self) -> f64 {
        self.inflation
    }
}

/// What one seed fixes for every policy: the task sequence and the node order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trial {
    /// The seed.
    pub seed: u64,
    /// Indices into [`Workload::tasks`], in arrival order.
    pub tasks: Vec<u32>,
    /// The node order, fixed for the run.
    pub nodes: Vec<NodeIdx>,
}

impl Trial {
    /// Draws the shuffle, the inflation and the node permutation from `seed`.
    pub fn new(cluster: &Cluster, workload: &Workload, seed: u64, config: ProtocolConfig) -> Result<Self, SimError> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let count = workload.tasks.len();
        let mut tasks: Vec<u32> = (0..count as u32).collect();
        tasks.shuffle(&mut rng);
        let limit = config.inflation * cluster.gpu_milli_capacity() as f64;
        let mut requested: u64 =
            tasks.iter().map(|&i| u64::from(workload.tasks[i as usize].accelerators().total_milli())).sum();
        // A workload without accelerator requests can never reach the limit: do not inflate it.
        if requested > 0 {
            loop {
                let drawn = rng.random_range(0..count) as u32;
                let milli = u64::from(workload.tasks[drawn as usize].accelerators().total_milli());
                if (requested + milli) as f64 > limit {
                    break;
                }
                if tasks.len() == TASKS_MAX {
                    return Err(SimError::TooManyTasks);
                }
                requested += milli;
                tasks.push(drawn);
            }
        }
        let mut nodes: Vec<NodeIdx> = (0..cluster.len() as u32).map(NodeIdx).collect();
        nodes.shuffle(&mut rng);
        Ok(Trial { seed, tasks, nodes })
    }
}

/// The state of the cluster after one task was tried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    /// Accelerator thousandths requested by every task tried so far.
    pub arrived_milli: u64,
    /// Accelerator thousandths allocated.
    pub allocated_milli: u64,
    /// Σ over nodes of F, in accelerator thousandths.
    pub fragment_milli: f64,
}

/// One policy on one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedRun {
    /// The policy.
    pub policy: PolicyName,
    /// The seed.
    pub seed: u64,
    /// Accelerator capacity of the cluster in thousandths.
    pub capacity_milli: u64,
    /// Tasks tried.
    pub tasks_tried: u64,
    /// Tasks that found no node.
    pub tasks_failed: u64,
    /// Of those, tasks that fit no node even in the empty cluster ([`Workload::infeasible`]).
    pub tasks_infeasible: u64,
    /// One record per task tried.
    pub records: Vec<Record>,
}

/// Runs one policy on one trial. `cluster` is the empty cluster; it is copied, not changed.
pub fn run(cluster: &Cluster, workload: &Workload, trial: &Trial, policy_name: PolicyName) -> SeedRun {
    let mut cluster = cluster.clone();
    let context = PolicyContext { profile: workload.profile.clone(), seed: trial.seed, nodes: cluster.len() };
    let mut policy = policy::build(policy_name, &context);
    let mut meter = FragMeter::new(workload.profile.typical().clone(), FragMeasure::NextTask, cluster.len());
    let mut fragment: f64 = (0..cluster.len() as u32).map(|i| meter.node(&cluster, NodeIdx(i))).sum();
    let mut records = Vec::with_capacity(trial.tasks.len());
    let mut arrived_milli = 0u64;
    let mut tasks_failed = 0u64;
    let mut tasks_infeasible = 0u64;
    let fits = workload.fits_on(&cluster);
    for &index in &trial.tasks {
        let task = &workload.tasks[index as usize];
        arrived_milli += u64::from(task.accelerators().total_milli());
        if !fits[index as usize] {
            // Tried and failed, as every task that finds no node (the paper's simulator): no
            // policy is asked, none could place it.
            tasks_failed += 1;
            tasks_infeasible += 1;
            records.push(Record {
                arrived_milli,
                allocated_milli: cluster.gpu_milli_allocated(),
                fragment_milli: fragment,
            });
            continue;
        }
        match policy.select(&cluster, &trial.nodes, task) {
            Some(assignment) => {
                let before = meter.node(&cluster, assignment.node);
                cluster.allocate(assignment, task).expect("policies choose only nodes that fit");
                fragment += meter.node(&cluster, assignment.node) - before;
            }
            None => tasks_failed += 1,
        }
        records.push(Record {
            arrived_milli,
            allocated_milli: cluster.gpu_milli_allocated(),
            fragment_milli: fragment,
        });
    }
    SeedRun {
        policy: policy_name,
        seed: trial.seed,
        capacity_milli: cluster.gpu_milli_capacity(),
        tasks_tried: trial.tasks.len() as u64,
        tasks_failed,
        tasks_infeasible,
        records,
    }
}

/// Metrics of one arrived% bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// The bucket: arrived% rounded to a whole number.
    pub arrived_pct: u32,
    /// Allocated share of capacity, %.
    pub allocated_pct: f64,
    /// Fragmentation over capacity, %.
    pub frag_amount_pct: f64,
    /// Fragmentation over idle capacity, %.
    pub frag_ratio_pct: f64,
}

impl Bucket {
    /// 100 − allocated%.
    pub fn unallocated_pct(&self) -> f64 {
        100.0 - self.allocated_pct
    }
}

impl SeedRun {
    /// Per-record percentages: (arrived, allocated rounded to 2 decimals, frag amount, frag ratio).
    fn percentages(&self) -> impl Iterator<Item = (f64, f64, f64, f64)> + '_ {
        let capacity = self.capacity_milli as f64;
        self.records.iter().map(move |r| {
            let idle = capacity - r.allocated_milli as f64;
            (
                r.arrived_milli as f64 * 100.0 / capacity,
                round2(r.allocated_milli as f64 * 100.0 / capacity),
                r.fragment_milli * 100.0 / capacity,
                if idle > 0.0 { r.fragment_milli * 100.0 / idle } else { 0.0 },
            )
        })
    }

    /// Buckets 1 ..= the last arrived% (rounded); `None` where no record is within ±1.
    pub fn buckets(&self) -> Vec<Option<Bucket>> {
        let last = self.percentages().last().map_or(0, |p| p.0.round() as usize);
        let mut sums = vec![(0u32, 0.0, 0.0, 0.0); last + 1];
        for (arrived, allocated, amount, ratio) in self.percentages() {
            let sum = &mut sums[arrived.round() as usize];
            *sum = (sum.0 + 1, sum.1 + allocated, sum.2 + amount, sum.3 + ratio);
        }
        (1..=last)
            .map(|k| {
                let mut sum = sums[k];
                if sum.0 == 0 {
                    for (arrived, allocated, amount, ratio) in self.percentages() {
                        if (arrived - k as f64).abs() <= 1.0 {
                            sum = (sum.0 + 1, sum.1 + allocated, sum.2 + amount, sum.3 + ratio);
                        }
                    }
                }
                (sum.0 > 0).then(|| {
                    let n = f64::from(sum.0);
                    Bucket {
                        arrived_pct: k as u32,
                        allocated_pct: sum.1 / n,
                        frag_amount_pct: sum.2 / n,
                        frag_ratio_pct: sum.3 / n,
                    }
                })
            })
            .collect()
    }
}

/// One policy over all its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyResult {
    /// The policy.
    pub policy: PolicyName,
    /// The seeds, in the order run.
    pub seeds: Vec<u64>,
    /// Per bucket, the median over seeds of each metric.
    pub buckets: Vec<Bucket>,
    /// Per seed: (seed, unallocated% at arrived 100, tasks tried, tasks failed).
    pub per_seed: Vec<SeedSummary>,
    /// The headline figures.
    pub summary: Summary,
}

/// One seed's headline figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedSummary {
    /// The seed.
    pub seed: u64,
    /// Unallocated% in the arrived-100 bucket.
    pub unallocated_pct_at_arrived_100: Option<f64>,
    /// Tasks tried.
    pub tasks_tried: u64,
    /// Tasks that found no node.
    pub tasks_failed: u64,
    /// Of those, tasks that fit no node even in the empty cluster.
    pub tasks_infeasible: u64,
}

/// The headline figures of one policy (medians over seeds unless named otherwise).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// 100 − median allocated% at arrived 100.
    pub unallocated_pct_at_arrived_100: Option<f64>,
    /// Median allocated% at arrived 90.
    pub allocated_pct_at_arrived_90: Option<f64>,
    /// Mean over seeds of allocated% at arrived 130.
    pub allocated_pct_mean_at_arrived_130: Option<f64>,
    /// Median fragmentation ratio at arrived 90.
    pub frag_ratio_pct_at_arrived_90: Option<f64>,
}

/// Aggregates the runs of one policy (all runs must be of the same policy).
pub fn summarise(runs: &[SeedRun]) -> PolicyResult {
    assert!(!runs.is_empty() && runs.iter().all(|r| r.policy == runs[0].policy), "one policy, at least one run");
    let per_run: Vec<Vec<Option<Bucket>>> = runs.iter().map(SeedRun::buckets).collect();
    let last = per_run.iter().map(Vec::len).max().unwrap_or(0);
    let at = |k: usize| -> Vec<Bucket> { per_run.iter().filter_map(|b| b.get(k - 1).copied().flatten()).collect() };
    let buckets: Vec<Bucket> = (1..=last)
        .filter_map(|k| {
            let values = at(k);
            let metric = |f: fn(&Bucket) -> f64| median(&values.iter().map(f).collect::<Vec<_>>());
            Some(Bucket {
                arrived_pct: k as u32,
                allocated_pct: metric(|b| b.allocated_pct)?,
                frag_amount_pct: metric(|b| b.frag_amount_pct)?,
                frag_ratio_pct: metric(|b| b.frag_ratio_pct)?,
            })
        })
        .collect();
    let bucket = |k: u32| buckets.iter().find(|b| b.arrived_pct == k);
    let summary = Summary {
        unallocated_pct_at_arrived_100: bucket(100).map(Bucket::unallocated_pct),
        allocated_pct_at_arrived_90: bucket(90).map(|b| b.allocated_pct),
        allocated_pct_mean_at_arrived_130: if last >= 130 {
            mean(&at(130).iter().map(|b| b.allocated_pct).collect::<Vec<_>>())
        } else {
            None
        },
        frag_ratio_pct_at_arrived_90: bucket(90).map(|b| b.frag_ratio_pct),
    };
    let per_seed = runs
        .iter()
        .zip(&per_run)
        .map(|(run, buckets)| SeedSummary {
            seed: run.seed,
            unallocated_pct_at_arrived_100: buckets.get(99).copied().flatten().map(|b| b.unallocated_pct()),
            tasks_tried: run.tasks_tried,
            tasks_failed: run.tasks_failed,
            tasks_infeasible: run.tasks_infeasible,
        })
        .collect();
    PolicyResult { policy: runs[0].policy, seeds: runs.iter().map(|r| r.seed).collect(), buckets, per_seed, summary }
}

#[cfg(test)]
mod tests {
    use suanwang_model::catalog::{Accelerator, AcceleratorSet, Catalog};
    use suanwang_model::federation::NodeSpec;
    use suanwang_model::job::AcceleratorRequest;

    use super::*;

    fn cluster(gpus_per_node: &[u8]) -> Cluster {
        let catalog = Catalog::new(vec![Accelerator {
            model: "G".to_owned(),
            aliases: vec![],
            vendor: "t".to_owned(),
            memory_gib: None,
            fp16_dense_tflops: None,
            bf16_dense_tflops: None,
            domestic: false,
            software_stack: "CUDA".to_owned(),
            board_power_w: None,
            note: String::new(),
        }])
        .unwrap();
        let g = catalog.lookup("G").unwrap();
        let nodes: Vec<NodeSpec> = gpus_per_node
            .iter()
            .enumerate()
            .map(|(i, &n)| NodeSpec {
                name: format!("n{i}"),
                cpu_milli: 64_000,
                memory_mib: 1 << 20,
                accelerator: (n > 0).then_some(g),
                accelerators: n,
            })
            .collect();
        Cluster::new(&nodes).unwrap()
    }

    fn task(cpu: u32, count: u8, milli: u16) -> TaskSpec {
        TaskSpec::new(cpu, 1024, AcceleratorRequest::new(count, milli).unwrap(), AcceleratorSet::ANY).unwrap()
    }

    fn workload(tasks: &[(&str, TaskSpec)]) -> Workload {
        Workload::new(tasks.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect()).unwrap()
    }

    #[test]
    fn inflation_stops_before_passing_the_limit() {
        // 10 GPUs; five 1-GPU tasks; 1.3 × 10,000 = 13,000 milli: exactly 8 copies are appended.
        let cluster = cluster(&[8, 2]);
        let w = workload(&[
            ("a", task(1000, 1, 1000)),
            ("b", task(1000, 1, 1000)),
            ("c", task(1000, 1, 1000)),
            ("d", task(1000, 1, 1000)),
            ("e", task(1000, 1, 1000)),
        ]);
        let trial = Trial::new(&cluster, &w, 42, ProtocolConfig::PAPER).unwrap();
        assert_eq!(trial.tasks.len(), 13);
        // No inflation below 1: the original tasks only.
        let trial = Trial::new(&cluster, &w, 42, ProtocolConfig::new(0.2).unwrap()).unwrap();
        assert_eq!(trial.tasks.len(), 5);
        // CPU-only workloads are never inflated (they would never reach the limit).
        let cpu_only = workload(&[("a", task(1000, 0, 0))]);
        assert_eq!(Trial::new(&cluster, &cpu_only, 1, ProtocolConfig::PAPER).unwrap().tasks.len(), 1);
    }

    #[test]
    fn trials_are_a_function_of_the_seed() {
        let cluster = cluster(&[8, 8, 8, 2, 2, 1]);
        let tasks: Vec<(String, TaskSpec)> =
            (0..40).map(|i| (format!("t{i:02}"), task(1000, 1, 100 + i * 20))).collect();
        let w = Workload::new(tasks.clone()).unwrap();
        let mut reversed = tasks;
        reversed.reverse();
        let same_list_other_order = Workload::new(reversed).unwrap();
        let a = Trial::new(&cluster, &w, 42, ProtocolConfig::PAPER).unwrap();
        assert_eq!(a, Trial::new(&cluster, &w, 42, ProtocolConfig::PAPER).unwrap());
        assert_eq!(
            a,
            Trial::new(&cluster, &same_list_other_order, 42, ProtocolConfig::PAPER).unwrap(),
            "sorted by name first"
        );
        assert_ne!(a, Trial::new(&cluster, &w, 43, ProtocolConfig::PAPER).unwrap());
        let mut nodes = a.nodes.clone();
        nodes.sort();
        assert_eq!(nodes, (0..6).map(NodeIdx).collect::<Vec<_>>(), "the node order is a permutation");
    }

    #[test]
    fn buckets_average_records_and_borrow_neighbours_when_empty() {
        let record =
            |arrived, allocated| Record { arrived_milli: arrived, allocated_milli: allocated, fragment_milli: 0.0 };
        let run = SeedRun {
            policy: PolicyName::Fgd,
            seed: 1,
            capacity_milli: 1000,
            tasks_tried: 4,
            tasks_failed: 0,
            tasks_infeasible: 0,
            // arrived 1.0%, 1.2%, 3.0% (bucket 2 is empty), 3.4%
            records: vec![record(10, 10), record(12, 12), record(30, 20), record(34, 30)],
        };
        let buckets = run.buckets();
        assert_eq!(buckets.len(), 3);
        assert!((buckets[0].unwrap().allocated_pct - 1.1).abs() < 1e-9);
        // Bucket 2 takes every record within ±1 (1.0, 1.2, 3.0): (1 + 1.2 + 2) / 3.
        assert!((buckets[1].unwrap().allocated_pct - 1.4).abs() < 1e-9);
        assert!((buckets[2].unwrap().allocated_pct - 2.5).abs() < 1e-9);
        assert_eq!(buckets[2].unwrap().unallocated_pct(), 97.5);
    }

    #[test]
    fn the_summary_takes_medians_over_seeds() {
        // 240 GPUs: every task is under 1% of capacity, so every bucket has records.
        let cluster = cluster(&[8; 30]);
        let shape = |i: u32| match i % 4 {
            0 => task(2000 + i * 100, 1, 1000),
            1 => task(1000, 1, 300 + (i % 5) as u16 * 100),
            2 => task(4000, 2, 1000),
            _ => task(8000, 0, 0),
        };
        let tasks: Vec<(String, TaskSpec)> = (0..60).map(|i| (format!("t{i:02}"), shape(i))).collect();
        let w = Workload::new(tasks).unwrap();
        let runs: Vec<SeedRun> = (1..=3)
            .map(|seed| {
                run(&cluster, &w, &Trial::new(&cluster, &w, seed, ProtocolConfig::PAPER).unwrap(), PolicyName::Fgd)
            })
            .collect();
        let result = summarise(&runs);
        let at_100: Vec<f64> = runs.iter().map(|r| r.buckets()[99].unwrap().allocated_pct).collect();
        let median = median(&at_100).unwrap();
        assert_eq!(result.summary.unallocated_pct_at_arrived_100, Some(100.0 - median));
        assert_eq!(result.seeds, vec![1, 2, 3]);
        assert!(result.buckets.iter().all(|b| b.allocated_pct <= f64::from(b.arrived_pct) + 1e-9 + 1.0));
        assert_eq!(result.summary.allocated_pct_mean_at_arrived_130.is_some(), result.buckets.len() >= 130);
    }

    #[test]
    fn tasks_that_fit_no_node_are_tried_failed_and_counted() {
        let w = workload(&[("big", task(1000, 8, 1000)), ("ok", task(1000, 1, 1000)), ("huge", task(1000, 8, 1000))]);
        let cluster = cluster(&[4, 2]);
        let infeasible = w.infeasible(&cluster).unwrap();
        assert_eq!(infeasible.tasks, 2);
        assert_eq!(infeasible.examples.len(), 1, "one example per shape");
        assert!(
            infeasible.examples[0].to_string().starts_with("task big (cpu 1000 milli"),
            "{}",
            infeasible.examples[0]
        );
        let trial = Trial::new(&cluster, &w, 1, ProtocolConfig::PAPER).unwrap();
        for policy in PolicyName::ALL {
            let run = run(&cluster, &w, &trial, policy);
            let tried_big = trial.tasks.iter().filter(|&&i| w.tasks()[i as usize].accelerators().count() == 8).count();
            assert_eq!(run.tasks_infeasible, tried_big as u64, "{policy:?}");
            assert!(run.tasks_failed >= run.tasks_infeasible);
            assert_eq!(run.records.len(), trial.tasks.len(), "every task is tried");
        }
    }

    #[test]
    fn impossible_inputs_are_errors() {
        let w = workload(&[("big", task(1000, 8, 1000)), ("ok", task(1000, 1, 1000))]);
        let only_big = workload(&[("big", task(1000, 8, 1000)), ("bigger", task(2000, 8, 1000))]);
        let err = only_big.infeasible(&cluster(&[4, 2])).unwrap_err();
        assert_eq!(err.code(), "task_fits_no_node");
        assert!(
            err.to_string().starts_with("no task fits any node even in an empty cluster; for example task big"),
            "{err}"
        );
        assert_eq!(w.infeasible(&cluster(&[0])).unwrap_err(), SimError::NoAccelerators);
        assert_eq!(Workload::new(vec![]).unwrap_err(), SimError::NoTasks);
        for bad in [0.0, -1.0, f64::NAN, 11.0] {
            assert!(ProtocolConfig::new(bad).is_err(), "{bad}");
        }
    }
}
