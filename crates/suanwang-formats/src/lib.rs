//! File formats, parsed from text into validated `suanwang-model` values.
//!
//! Every parser takes the text and a `source` name (usually the path) and never touches the file
//! system itself: the binary reads files, this crate only interprets them. Every error carries the
//! source, and the line and column when there is one, so a user can go straight to the mistake.
//!
//! - [`catalog`]: the accelerator catalog (`catalog/accelerators.toml`, built into the binary).
//! - [`federation`]: federation files (`examples/federations/*.toml`), documented in
//!   `docs/federation-format.md`.
//! - [`openb`]: the node and task lists of the Alibaba GPU cluster trace 2023 ("openb").
//! - [`trace`]: job traces for the queueing simulator (Philly, openb, SWF, our JSONL).

pub mod apps;
pub mod catalog;
pub mod error;
pub mod federation;
pub mod openb;
pub mod trace;
