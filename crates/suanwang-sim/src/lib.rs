//! Trace-driven simulators that run the same placement core the platform runs.
//!
//! [`placement`] implements the evaluation protocol of the FGD paper (ATC'23) on the Alibaba GPU
//! trace: tasks arrive one by one and never leave, each is tried once, and allocation and
//! fragmentation are recorded against the share of capacity that has arrived.
//!
//! [`queue`] replays job traces over time against a federation, driving the scheduler of
//! `suanwang-sched` with a virtual clock.
//!
//! [`resolve`] turns a parsed trace into the scheduler's jobs for a federation.
//!
//! [`money`] rates a queue run's usage and applies voucher programmes with the server's own money
//! rules (`suanwang-billing`).
//!
//! Everything here is deterministic: a run is a function of its inputs and its seed. Running many
//! seeds in parallel, progress bars and files are the caller's business.

pub mod money;
pub mod placement;
pub mod queue;
pub mod resolve;
pub mod stats;
