//! Tenants, tokens, pools, sites, links and the audit log on the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use suanwang_model::platform::Role;

use crate::agent::Capacity;

fn enterprise() -> String {
    "enterprise".to_owned()
}

/// `POST /api/v1/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Unique name (1–64 characters: letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// `startup`, `sme`, `manufacturer`, `research-institute`, `university`, `government`, `enterprise`.
    #[serde(default = "enterprise")]
    pub kind: String,
    /// City of registration.
    #[serde(default)]
    pub registration_city: String,
}

/// A tenant as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// City.
    pub registration_city: String,
    /// When created (UTC).
    pub created_at: String,
}

/// `POST /api/v1/tokens`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `operator`, `provider`, `tenant`, `program-admin` or `auditor`.
    pub role: String,
    /// For tenant tokens: the tenant's name.
    #[serde(default)]
    pub tenant: Option<String>,
    /// For provider (agent) tokens: the pool's name.
    #[serde(default)]
    pub pool: Option<String>,
    /// For programme-administrator tokens: the programme's id.
    #[serde(default)]
    pub program: Option<String>,
    /// A label for people.
    #[serde(default)]
    pub label: String,
    /// The token stops working this many seconds from now (1 to 10 years' worth); absent: never.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A new token: shown once, never again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    /// Id (in the audit log as `token:ID`).
    pub id: i64,
    /// The token itself.
    pub token: String,
    /// Role.
    #[serde(with = "crate::names::role")]
    pub role: Role,
    /// When it stops working (UTC), if ever.
    pub expires_at: Option<String>,
}

/// A pool as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolView {
    /// Name.
    pub name: String,
    /// Site.
    pub site: String,
    /// `slurm`, `kubernetes`, `local`, `sim`.
    pub backend: String,
    /// Provider.
    pub provider: String,
    /// Nodes.
    pub nodes: u64,
    /// Accelerator cards.
    pub cards: u64,
    /// Dense FP16 PFLOPS.
    pub pflops_fp16: f64,
    /// On-demand card-hour prices by model, fen.
    pub card_hour_fen: BTreeMap<String, i64>,
    /// Its agent reports and it is usable.
    pub healthy: bool,
    /// Takes no new work.
    pub drained: bool,
    /// Last report (UTC), if any.
    pub last_seen_at: Option<String>,
    /// What the pool's cluster reports having (Slurm agents report it), when its agent does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Capacity>,
    /// Why the pool cannot take work, as its agent last said (absent when it said nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A site as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteView {
    /// Name.
    pub name: String,
    /// City.
    pub city: String,
    /// Residency region.
    pub region: String,
}

/// A link as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    /// The two sites.
    pub between: [String; 2],
    /// One-way latency.
    pub latency_ms: f64,
    /// Bandwidth.
    pub bandwidth_gbps: u32,
    /// Egress price.
    pub egress_fen_per_gib: i64,
}

/// Query of `GET /api/v1/audit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries after this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many (1–1000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// An audit entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    /// Position in the chain.
    pub seq: i64,
    /// When (UTC).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub subject: String,
    /// Digest before.
    pub before_digest: String,
    /// Digest after.
    pub after_digest: String,
    /// Previous hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// `GET /api/v1/audit/verify`: whether the chain is intact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerdict {
    /// Every entry links to the one before and hashes to what it says.
    pub intact: bool,
    /// Entries checked (when intact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<i64>,
    /// The first entry that does not check (when broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<i64>,
    /// Why (when broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `leader` (this server schedules) or `standby`.
    pub scheduler: String,
}

/// A token as `GET /api/v1/tokens` lists it: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Id (in the audit log as `token:ID`).
    pub id: i64,
    /// Role.
    #[serde(with = "crate::names::role")]
    pub role: Role,
    /// For tenant tokens: the tenant's id.
    pub tenant_id: Option<i64>,
    /// For provider tokens: the pool; for programme administrators: the programme.
    pub scope: Option<String>,
    /// The label.
    pub label: String,
    /// When issued (UTC).
    pub created_at: String,
    /// When it stops working (UTC), if ever.
    pub expires_at: Option<String>,
    /// When it was revoked (UTC), if it was.
    pub revoked_at: Option<String>,
}

/// A page of tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPage {
    /// Oldest first.
    pub tokens: Vec<TokenInfo>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// Query of `GET /api/v1/tokens`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Tokens with ids above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
}

/// `GET /api/v1/audit/head`: the newest entry, to export and check against later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Its sequence number (0: the chain is empty).
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

/// A tenant's limits: `GET /api/v1/tenants/{id}/quotas`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// API requests per second per token (bursts of twice this).
    pub requests_per_s: u32,
    /// Jobs waiting in the queue at once.
    pub queued_jobs: u32,
    /// Market orders resting in the book at once.
    pub open_orders: u32,
    /// The most of the whole book one tenant's orders may be, in basis points.
    pub book_share_bps: u32,
    /// Simulations running at once.
    pub running_simulations: u32,
    /// Registered data sets.
    pub datasets: u32,
}

/// `POST /api/v1/tenants/{id}/quotas` (operators): fields left out keep their value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaChange {
    /// See [`Quotas`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_s: Option<u32>,
    /// See [`Quotas`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_jobs: Option<u32>,
    /// See [`Quotas`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_orders: Option<u32>,
    /// See [`Quotas`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub book_share_bps: Option<u32>,
    /// See [`Quotas`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_simulations: Option<u32>,
    /// See [`Quotas`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<u32>,
}
