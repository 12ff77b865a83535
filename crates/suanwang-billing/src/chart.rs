//! The chart of accounts: which ledger account holds whose money, and the reason codes of the
//! transfers the books make.
//!
//! | account | id | limit | credited by | debited by |
//! |---|---|---|---|---|
//! | world | 1 | none | payouts, firm-cap releases | top-ups, programme funding, cap grants |
//! | platform fee | 2 | none | the fee on each charge | — |
//! | breakage | 3 | none | voucher value that expired | — |
//! | tenant cash | `0x10 << 56 \| tenant` | none (post-paid: negative means owed) | top-ups, subsidies | charges |
//! | provider payable | `0x20 << 56 \| h(pool)` | debits ≤ credits | charges less the fee | payouts |
//! | programme budget | `0x30 << 56 \| h(programme)` | debits ≤ credits | funders' shares | claims (pending), redemptions (posted), breakage |
//! | firm cap | `0x40 << 56 \| h(programme, tenant)` | debits ≤ credits | the annual cap, on approval | claims and redemptions |
//! | voucher | `0x50 << 56 \| claim` | debits ≤ credits | redeemed subsidy | the same, to the tenant |
//!
//! `h` is the first 56 bits of SHA-256 of the name. Ids below 2^56 are the callers' own (the raw
//! ledger API); the books never use them except 1–3.
//!
//! The firm-cap accounts are *control* accounts (TigerBeetle's pattern for limits): they hold a
//! firm's allowance, not money, and every movement on them is balanced against the world account,
//! so the trial balance still balances and the ledger's own limit enforces the cap.

use sha2::{Digest, Sha256};
use suanwang_ledger::{AccountId, AccountKind, AccountSpec, Limit, TransferId};

/// The outside world: bank transfers, government funds.
pub const WORLD: AccountId = AccountId(1);
/// The platform's fee income.
pub const PLATFORM_FEE: AccountId = AccountId(2);
/// Voucher value that expired unused.
pub const BREAKAGE: AccountId = AccountId(3);

/// Ids at or above this are the books' own.
pub const RESERVED_FROM: u64 = 1 << 56;

/// Reason codes of the books' transfers (`Transfer::code`).
pub mod code {
    /// Money paid in by a tenant.
    pub const TOP_UP: u16 = 1;
    /// A usage charge, to the provider.
    pub const CHARGE: u16 = 10;
    /// The platform's fee on a charge.
    pub const FEE: u16 = 11;
    /// A payout to a provider.
    pub const PAYOUT: u16 = 20;
    /// A funder's share of a programme's budget.
    pub const FUNDING: u16 = 30;
    /// A firm's annual cap, granted on approval.
    pub const CAP_GRANT: u16 = 31;
    /// A claim's reservation of budget.
    pub const CLAIM_BUDGET: u16 = 32;
    /// A claim's reservation of the firm's cap.
    pub const CLAIM_CAP: u16 = 33;
    /// A redeemed subsidy paid to the tenant.
    pub const SUBSIDY: u16 = 34;
    /// Unredeemed voucher value written off at expiry.
    pub const BREAKAGE: u16 = 35;
}

fn h56(parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes[1..].copy_from_slice(&digest[..7]);
    u64::from_be_bytes(bytes)
}

fn spec(id: u64, kind: AccountKind, limit: Limit) -> AccountSpec {
    AccountSpec { id: AccountId(id), kind, limit }
}

/// The fixed accounts.
pub fn fixed() -> [AccountSpec; 3] {
    [
        AccountSpec { id: WORLD, kind: AccountKind::World, limit: Limit::None },
        AccountSpec { id: PLATFORM_FEE, kind: AccountKind::PlatformFee, limit: Limit::None },
        AccountSpec { id: BREAKAGE, kind: AccountKind::Breakage, limit: Limit::None },
    ]
}

/// A tenant's cash (post-paid: it may go below zero, which is what the tenant owes).
pub fn tenant_cash(tenant: i64) -> AccountSpec {
    spec((0x10 << 56) | (tenant as u64 & (RESERVED_FROM - 1)), AccountKind::TenantCash, Limit::None)
}

/// What the platform owes for a pool's work (its provider is paid out of it).
pub fn provider_payable(pool: &str) -> AccountSpec {
    spec((0x20 << 56) | h56(&["pool", pool]), AccountKind::ProviderPayable, Limit::DebitsWithinCredits)
}

/// A programme's budget.
pub fn program_budget(program: &str) -> AccountSpec {
    spec((0x30 << 56) | h56(&["program", program]), AccountKind::ProgramBudget, Limit::DebitsWithinCredits)
}

/// A firm's remaining annual cap in a programme.
pub fn firm_cap(program: &str, tenant: i64) -> AccountSpec {
    spec((0x40 << 56) | h56(&["cap", program, &tenant.to_string()]), AccountKind::FirmCap, Limit::DebitsWithinCredits)
}

/// A claim's voucher.
pub fn voucher(claim: u64) -> AccountSpec {
    spec((0x50 << 56) | (claim & (RESERVED_FROM - 1)), AccountKind::Voucher, Limit::DebitsWithinCredits)
}

/// A transfer id for a purpose (`"usage"`, source, event id, …): the first 128 bits of SHA-256.
pub fn transfer_id(parts: &[&str]) -> TransferId {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    TransferId(u128::from_be_bytes(bytes).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_do_not_overlap() {
        let ids = [
            tenant_cash(7).id.0,
            provider_payable("p").id.0,
            program_budget("p").id.0,
            firm_cap("p", 7).id.0,
            voucher(7).id.0,
        ];
        for (i, id) in ids.iter().enumerate() {
            assert!(*id >= RESERVED_FROM);
            assert_eq!(id >> 56, [0x10, 0x20, 0x30, 0x40, 0x50][i]);
        }
        assert_ne!(firm_cap("p", 7).id, firm_cap("p", 8).id);
        assert_ne!(transfer_id(&["a", "bc"]), transfer_id(&["ab", "c"]));
    }
}
