//! Money on the wire: balances, payments in and payouts, invoices, voucher programmes,
//! applications, claims and redemptions. Programmes, applications and claims are the books' own
//! records (`suanwang-billing`), shown as they are.

use serde::{Deserialize, Serialize};
use suanwang_billing::Program;
use suanwang_billing::books::{Claim, ProgramReport};

/// A tenant's money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    /// Tenant.
    pub tenant: i64,
    /// Paid in, plus subsidies, less charges (negative: owed).
    pub balance_fen: i128,
    /// Charged so far.
    pub charged_fen: u128,
    /// Paid in and subsidised so far.
    pub credited_fen: u128,
}

/// Money moved in or out, idempotent by `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Movement {
    /// Amount.
    pub amount_fen: u64,
    /// The caller's key: the same key again is the same movement.
    pub key: String,
}

/// What a pool's provider has earned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningsView {
    /// Pool.
    pub pool: String,
    /// Earned (charges less the platform's fee).
    pub earned_fen: u128,
    /// Paid out.
    pub paid_out_fen: u128,
    /// Owed.
    pub owed_fen: i128,
    /// The platform's fee, basis points.
    pub platform_fee_bps: u32,
}

/// An invoice's summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSummary {
    /// Tenant.
    pub tenant: i64,
    /// `YYYY-MM` (China Standard Time).
    pub period: String,
    /// Charged.
    pub amount_fen: u64,
    /// Subsidised by vouchers.
    pub subsidy_fen: u64,
    /// The tenant's share: amount − subsidy.
    pub tenant_share_fen: u64,
}

/// `GET /api/v1/invoices?tenant=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    /// Only this tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<i64>,
}

/// Which programme paid what on a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsidyView {
    /// The programme.
    pub program: String,
    /// The claim.
    pub claim: u64,
    /// Paid.
    pub subsidy_fen: u64,
}

/// An invoice line as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineView {
    /// The job.
    pub job: i64,
    /// Where it ran.
    pub pool: String,
    /// What it ran under.
    pub contract: String,
    /// Accelerator-hours.
    pub card_hours: f64,
    /// Charged.
    pub amount_fen: u64,
    /// Subsidised.
    pub subsidy_fen: u64,
    /// The tenant's share.
    pub tenant_share_fen: u64,
    /// Which programmes paid what.
    pub subsidies: Vec<SubsidyView>,
}

/// An invoice: a tenant's lines for a month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvoiceView {
    /// The totals.
    #[serde(flatten)]
    pub summary: InvoiceSummary,
    /// One line per job and pool.
    pub lines: Vec<LineView>,
}

/// `GET /api/v1/ledger/entries?after=&limit=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// After this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many (≤ 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One line of the books' history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position.
    pub seq: i64,
    /// The line (a ledger event, or `F {json}` for a fact).
    pub entry: String,
}

/// A page of the books' history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntriesPage {
    /// The lines.
    pub entries: Vec<Entry>,
    /// Pass as `after` for more; absent on an empty page.
    pub next_after: Option<i64>,
}

/// A programme as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramView {
    /// Its rules.
    pub program: Program,
    /// The year ended.
    pub expired: bool,
    /// Its figures (operators, auditors and its administrators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ProgramReport>,
}

/// `POST /api/v1/programs/{id}/applications` (tenant).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// Provider organisations the tenant is affiliated with.
    #[serde(default)]
    pub affiliations: Vec<String>,
}

/// `GET /api/v1/applications?program=` and `GET /api/v1/claims?program=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramQuery {
    /// Only this programme's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// `POST /api/v1/applications/{id}/decision`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Approve (true) or reject (false).
    pub approve: bool,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/programs/{id}/claims` (tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClaim {
    /// `job:ID`: an on-demand job the tenant ordered through the platform; or `contract:ID`.
    pub contract: String,
    /// The voucher's face value.
    pub amount_fen: u64,
}

/// `POST /api/v1/claims/{id}/redemptions`: the invoice line to redeem against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRedemption {
    /// The invoice's period, `YYYY-MM`.
    pub period: String,
    /// The line's job.
    pub job: i64,
    /// The line's pool (default: the job's pool).
    #[serde(default)]
    pub pool: Option<String>,
}

/// What a redemption paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedemptionView {
    /// Paid to the tenant from the programme's budget.
    pub subsidy_fen: u64,
    /// The claim after it.
    pub claim: Claim,
}
