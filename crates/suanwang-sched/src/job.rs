//! What the scheduler knows about a job, and what becomes of it.

use suanwang_model::federation::PoolId;
use suanwang_model::job::JobSpec;
use suanwang_placement::cluster::Assignment;

/// A job's index in its scheduler, in submit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u32);

impl JobId {
    /// As a slice index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A job as submitted.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// What it needs and its constraints (the tenant's run-time estimate included).
    pub spec: JobSpec,
    /// When it was submitted (seconds on the driver's clock).
    pub submit_s: u64,
    /// The tenant asks for low-carbon pools.
    pub green: bool,
    /// The true duration, for the oracle discipline `sjf` only; every other discipline ignores
    /// it, and the server leaves it empty.
    pub oracle_duration_s: Option<u64>,
    /// Run only in this pool (the tenant pinned it).
    pub pool: Option<PoolId>,
}

/// Where a job is in the scheduler (the platform's own states are `suanwang_model::platform::JobState`).
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Waiting in the queue.
    Queued,
    /// Running in a pool.
    Running {
        /// The pool.
        pool: PoolId,
        /// One assignment per task.
        assignments: Vec<Assignment>,
        /// When this run started.
        started_s: u64,
    },
    /// Done (the driver said it finished).
    Finished {
        /// When.
        end_s: u64,
    },
    /// Never schedulable in this federation; the reason says why.
    Rejected {
        /// Why, in words.
        reason: String,
    },
}
