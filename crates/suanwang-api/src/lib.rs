//! The platform's wire types: what travels as JSON between the server and its clients (the CLI,
//! the dashboard's script, scripts of users) and between the server and the pools' agents.
//!
//! These are deliberate, separate from the stored history (`suanwang-store`'s records) and from
//! the domain (`suanwang-model`): a field here is a promise to clients. Every request type denies
//! unknown fields; every answer type also deserialises, so the typed client (`suanwang-client`)
//! reads exactly what the server writes.
//!
//! - [`jobs`]: the job body (one typed spec for the API, the store, the agents and the CLI) and
//!   the job views.
//! - [`agent`]: the agent protocol (heartbeats, work, state, logs, usage evidence).
//! - [`admin`]: tenants, tokens, pools, sites, links, the audit log.
//! - [`apps`]: data sets.
//! - [`money`]: balances, payments, earnings, invoices, programmes, applications, claims.
//! - [`market`]: prices, orders, the book, auctions, quotes.
//! - [`ledger`]: the raw ledger's accounts and transfers.
//! - [`error`]: the error body every refusal carries.
//! - [`text`]: what a string from outside may hold (the one rule, applied at the door).

pub mod admin;
pub mod agent;
pub mod apps;
pub mod error;
pub mod jobs;
pub mod ledger;
pub mod market;
pub mod money;
pub mod names;
pub mod text;
