//! Pool agents. A provider runs an agent next to its cluster with a token scoped to its pool; the
//! agent pulls work from the platform and reports back, so the platform never holds the
//! cluster's credentials. The same agent runs in-process for `serve --demo`, through the same
//! [`protocol::Platform`] interface.
//!
//! - [`protocol`]: the `Platform` trait an agent talks through (the wire types are
//!   `suanwang_api::agent`'s).
//! - [`backend`]: where jobs run: `local` processes or `sim`ulated.
//! - [`sandbox`]: how `local` jobs are kept from the machine, the server and each other.
//! - [`run`]: the loop: heartbeat, pull, start, watch, report.
//! - [`http`]: a `Platform` over HTTP (the typed client), for agents outside the server.
//! - [`slurm`]: the Slurm backend's text: `sbatch` arguments and parsers of `scontrol` and
//!   `sinfo` output (the process calls come with the backend, issue 7).

pub mod backend;
pub mod http;
pub mod protocol;
pub mod run;
pub mod sandbox;
pub mod slurm;
