//! The raw ledger on the wire: accounts and transfers (operators; the books' own accounts are
//! kept apart).

use serde::{Deserialize, Serialize};

fn no_limit() -> String {
    "none".to_owned()
}

/// `POST /api/v1/ledger/accounts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Id (1 or more), chosen by the caller.
    pub id: u64,
    /// `world`, `tenant-cash`, `tenant-hold`, `provider-payable`, `platform-fee`,
    /// `program-budget`, `firm-cap`, `voucher` or `breakage`.
    pub kind: String,
    /// `none`, `debits-within-credits` (no overdraft) or `credits-within-debits`.
    #[serde(default = "no_limit")]
    pub limit: String,
}

/// An account as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Id.
    pub id: u64,
    /// Kind.
    pub kind: String,
    /// Limit.
    pub limit: String,
    /// Debits posted.
    pub debits_posted_fen: u128,
    /// Debits pending.
    pub debits_pending_fen: u128,
    /// Credits posted.
    pub credits_posted_fen: u128,
    /// Credits pending.
    pub credits_pending_fen: u128,
    /// Credits minus debits, posted.
    pub balance_fen: i128,
}

/// `POST /api/v1/ledger/transfers`: one transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// Id (1 or more): the same id with the same fields is the same transfer.
    pub id: u128,
    /// `single`, `pending`, `post` or `void`.
    pub kind: String,
    /// Debited account (`single`, `pending`).
    #[serde(default)]
    pub debit: Option<u64>,
    /// Credited account (`single`, `pending`).
    #[serde(default)]
    pub credit: Option<u64>,
    /// Amount (`single`, `pending`; for `post`, optional: part of the pending amount).
    #[serde(default)]
    pub amount_fen: Option<u64>,
    /// The pending transfer (`post`, `void`).
    #[serde(default)]
    pub pending_id: Option<u128>,
    /// Seconds until a pending transfer voids itself.
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// The caller's reason code.
    #[serde(default)]
    pub code: u16,
}

/// A transfer that was applied (now, or before under the same id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferApplied {
    /// The transfer's id, in decimal.
    pub id: String,
    /// `applied`.
    pub status: String,
}

/// Debits and credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Debits.
    pub debits_fen: u128,
    /// Credits.
    pub credits_fen: u128,
}

/// `GET /api/v1/ledger/trial-balance`: debits equal credits, posted and pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialBalance {
    /// Posted.
    pub posted: Totals,
    /// Pending.
    pub pending: Totals,
}
