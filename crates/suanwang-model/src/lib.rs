//! The domain model of a compute-power network: the accelerator catalog, sites and the network
//! between them, pools of nodes, tenants, and the jobs they submit.
//!
//! Everything here is plain data with validating constructors. There is no IO, no clock, no
//! randomness and no serialisation: file formats live in `suanwang-formats` and convert into these
//! types, so a value of any type here has already passed its checks.
//!
//! Units are in the names (`cpu_milli`, `memory_mib`, `latency_us`, `price_fen_per_card_hour`).
//! Quantities that must be exact (resources, money, latency) are integers; published physical
//! figures (TFLOPS, PUE) are `f64`.

pub mod catalog;
pub mod error;
pub mod federation;
pub mod job;
pub mod network;
pub mod platform;
pub mod tariff;
