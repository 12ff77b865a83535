//! Persistence for the control plane: the only crate that knows SQL.
//!
//! One [`store::Store`] over embedded **SQLite** (the default: one file, WAL, a full sync at every
//! commit) or **PostgreSQL** (production: several servers share one database; writers are ordered
//! by an advisory lock so the audit chain has one order). Both run the same SQL (`db.rs` numbers
//! placeholders for PostgreSQL) and the same conformance suite (`tests/conformance.rs`).
//!
//! Writes come in batches applied in one transaction ([`store::Store::write`]): a server groups
//! concurrent requests into one commit, which is what makes durable writes fast. Every state
//! change appends to a hash-chained audit log ([`audit`]) in the same transaction, so the log and
//! the data never disagree. Nothing is deleted.

pub mod audit;
mod db;
pub mod error;
pub mod model;
pub mod store;
