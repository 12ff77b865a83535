//! Node placement: given the free resources of every node in a cluster and one task, choose the
//! node and the accelerator devices the task gets.
//!
//! - [`cluster`] holds node state and is the only code that changes it; it refuses any allocation
//!   that would over-commit a node or a device.
//! - [`frag`] measures GPU fragmentation against a workload's typical task shapes (the measure of
//!   the FGD paper, ATC'23), which the `fgd` and `frag-plus` policies minimise.
//! - [`policy`] defines the [`Policy`](policy::Policy) trait, the registry of named policies, and
//!   the shared filter → score → pick loop with its tie rule (first node in the run's node order).
//! - [`profile`] summarises a workload for the policies that learn from it.
//!
//! No IO, no clock; the only randomness is a generator seeded by the caller (the `random` policy).

pub mod cluster;
pub mod frag;
pub mod policy;
pub mod profile;
