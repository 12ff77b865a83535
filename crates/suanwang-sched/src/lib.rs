//! Scheduling over time: which queued job runs next, and in which pool.
//!
//! A [`scheduler::Scheduler`] holds the queue, the running jobs and the state of every pool. Its
//! drivers tell it what happened (a job was submitted, finished, a pool went down) and ask it to
//! [`schedule`](scheduler::Scheduler::schedule) at a given time; it answers with decisions (start
//! this job in that pool on these nodes, and why; preempt that job). The simulator drives it with a
//! virtual clock; the server will drive it with the real one. It never reads a clock and never
//! reads a job's true duration, except the oracle discipline `sjf`, which exists as a bound.
//!
//! - [`policy`]: queue disciplines and their names (`fifo`, `priority`, `sjf`, `las`, `drf`, each
//!   optionally `+backfill`).
//! - [`job`]: what the scheduler knows about a job.
//! - [`pools`]: pool feasibility and choice across the federation, with explanations.
//! - [`scheduler`]: the scheduler itself.

pub mod job;
pub mod policy;
pub mod pools;
pub mod scheduler;
