//! A double-entry ledger in integer fen (0.01 RMB): plain data and functions, no IO, no clock.
//!
//! The semantics follow TigerBeetle's, which were designed for exactly this job:
//! - **Accounts** hold four sums: debits and credits, each pending and posted (`u128`, so they
//!   never overflow). An account may limit itself: its debits must not exceed its credits (cash: no
//!   overdraft), or its credits must not exceed its debits (a budget that may only pay out what
//!   was put in). Pending amounts count against the limit.
//! - **Transfers** move `amount_fen > 0` from a debit account to a credit account. Kinds:
//!   single-phase (posted at once); **pending** (reserved: counted as pending on both sides, with an
//!   optional timeout); **post pending** (all or part of a pending transfer becomes posted; the rest
//!   is released); **void pending** (released). A pending transfer resolves **at most once**.
//! - **Idempotent by id.** A transfer id seen before with the same fields returns the first
//!   outcome, success or failure, even if balances have changed since. The same id with other
//!   fields is refused (`exists_with_different_fields`) and nothing is recorded.
//! - **Linked** transfers (`linked: true` chains through the next transfer; the first with
//!   `linked: false` closes the chain) commit all or none.
//! - **Nothing is deleted.** Corrections are new transfers. [`Ledger::events`] is the whole history;
//!   [`Ledger::replay`] rebuilds the same ledger from it (how a store persists and reloads it).
//!
//! Time is the caller's: every call that needs it takes `now_s` (seconds since 1970, UTC).
//!
//! [`split`] holds the one rounding rule for dividing an amount (subsidy and tenant share,
//! platform fee and payout): floor to the fen, the rest to the other party.

mod codec;
pub mod split;

use std::collections::BTreeMap;

/// Largest amount of one transfer: 10^15 fen, ten trillion yuan.
pub const AMOUNT_FEN_MAX: u64 = 1_000_000_000_000_000;

/// Most transfers in one call to [`Ledger::apply`].
pub const BATCH_MAX: usize = 8_192;

/// Longest pending timeout: a year and a day.
pub const TIMEOUT_S_MAX: u64 = 366 * 86_400;

/// An account's id (chosen by the caller; 0 is not an id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub u64);

/// A transfer's id (chosen by the caller, e.g. from an idempotency key; 0 is not an id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId(pub u128);

/// What an account is for. The ledger treats all kinds alike; the kind documents the chart of
/// accounts and lets reports group balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountKind {
    /// Money from outside (bank transfers in and out, government funds).
    World,
    /// A tenant's cash.
    TenantCash,
    /// A tenant's money on hold for running work.
    TenantHold,
    /// What the platform owes a provider.
    ProviderPayable,
    /// The platform's fee income.
    PlatformFee,
    /// A voucher programme's budget.
    ProgramBudget,
    /// A firm's annual cap under a programme (a control account: it only counts).
    FirmCap,
    /// A voucher's value.
    Voucher,
    /// Value that expired unused.
    Breakage,
}

impl AccountKind {
    /// Every kind.
    pub const ALL: [AccountKind; 9] = [
        AccountKind::World,
        AccountKind::TenantCash,
        AccountKind::TenantHold,
        AccountKind::ProviderPayable,
        AccountKind::PlatformFee,
        AccountKind::ProgramBudget,
        AccountKind::FirmCap,
        AccountKind::Voucher,
        AccountKind::Breakage,
    ];

    /// Its stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::World => "world",
            AccountKind::TenantCash => "tenant-cash",
            AccountKind::TenantHold => "tenant-hold",
            AccountKind::ProviderPayable => "provider-payable",
            AccountKind::PlatformFee => "platform-fee",
            AccountKind::ProgramBudget => "program-budget",
            AccountKind::FirmCap => "firm-cap",
            AccountKind::Voucher => "voucher",
            AccountKind::Breakage => "breakage",
        }
    }
}

/// A balance limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// None.
    None,
    /// Debits (pending + posted) must not exceed posted credits: no overdraft.
    DebitsWithinCredits,
    /// Credits (pending + posted) must not exceed posted debits.
    CreditsWithinDebits,
}

/// How to open an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountSpec {
    /// Id.
    pub id: AccountId,
    /// What it is for.
    pub kind: AccountKind,
    /// Its balance limit.
    pub limit: Limit,
}

/// An account and its sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    /// How it was opened.
    pub spec: AccountSpec,
    /// Debits reserved by pending transfers.
    pub debits_pending_fen: u128,
    /// Debits posted.
    pub debits_posted_fen: u128,
    /// Credits reserved by pending transfers.
    pub credits_pending_fen: u128,
    /// Credits posted.
    pub credits_posted_fen: u128,
}

impl Account {
    fn new(spec: AccountSpec) -> Self {
        Account { spec, debits_pending_fen: 0, debits_posted_fen: 0, credits_pending_fen: 0, credits_posted_fen: 0 }
    }

    /// Posted credits minus posted debits (positive for money held, e.g. a tenant's cash).
    pub fn credit_balance_fen(&self) -> i128 {
        self.credits_posted_fen as i128 - self.debits_posted_fen as i128
    }

    /// Whether its limit holds.
    pub fn within_limit(&self) -> bool {
        match self.spec.limit {
            Limit::None => true,
            Limit::DebitsWithinCredits => self.debits_pending_fen + self.debits_posted_fen <= self.credits_posted_fen,
            Limit::CreditsWithinDebits => self.credits_pending_fen + self.credits_posted_fen <= self.debits_posted_fen,
        }
    }
}

/// What a transfer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// Posted at once.
    Single {
        /// Debited.
        debit: AccountId,
        /// Credited.
        credit: AccountId,
        /// Amount.
        amount_fen: u64,
    },
    /// Reserved until posted or voided (or until it times out, which voids it).
    Pending {
        /// Debited.
        debit: AccountId,
        /// Credited.
        credit: AccountId,
        /// Amount.
        amount_fen: u64,
        /// Seconds until it voids itself; `None`: never.
        timeout_s: Option<u64>,
    },
    /// Posts a pending transfer: `None` posts all of it; `Some(a)` posts `a` of it (at most its
    /// amount) and releases the rest.
    PostPending {
        /// The pending transfer.
        pending: TransferId,
        /// How much to post.
        amount_fen: Option<u64>,
    },
    /// Releases a pending transfer.
    VoidPending {
        /// The pending transfer.
        pending: TransferId,
    },
}

/// A transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transfer {
    /// Id: the same id with the same fields is the same transfer.
    pub id: TransferId,
    /// What it does.
    pub kind: TransferKind,
    /// Commits together with the next transfer of the batch.
    pub linked: bool,
    /// Why (the caller's reason code: usage charge, payout, claim, …).
    pub code: u16,
}

/// Why a transfer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TransferError {
    /// Id 0.
    #[error("a transfer id must not be 0")]
    IdZero,
    /// Amount 0, or above [`AMOUNT_FEN_MAX`].
    #[error("the amount must be between 1 and {AMOUNT_FEN_MAX} fen")]
    AmountInvalid,
    /// Debit and credit are the same account.
    #[error("the debit and credit accounts must differ")]
    SameAccount,
    /// The debit account does not exist.
    #[error("unknown debit account")]
    DebitAccountNotFound,
    /// The credit account does not exist.
    #[error("unknown credit account")]
    CreditAccountNotFound,
    /// The debit account's debits would exceed its credits.
    #[error("the debit account's debits would exceed its credits (insufficient funds)")]
    ExceedsCredits,
    /// The credit account's credits would exceed its debits.
    #[error("the credit account's credits would exceed its debits")]
    ExceedsDebits,
    /// The id was used before with other fields.
    #[error("a transfer with this id exists with different fields")]
    ExistsWithDifferentFields,
    /// The pending transfer does not exist (or is not pending).
    #[error("no pending transfer with that id")]
    PendingNotFound,
    /// It was posted already.
    #[error("the pending transfer was already posted")]
    PendingAlreadyPosted,
    /// It was voided already.
    #[error("the pending transfer was already voided")]
    PendingAlreadyVoided,
    /// It timed out (and was voided).
    #[error("the pending transfer expired")]
    PendingExpired,
    /// Posting more than the pending amount, or 0.
    #[error("the amount to post must be between 1 and the pending amount")]
    PostAmountInvalid,
    /// A timeout of 0 or above [`TIMEOUT_S_MAX`].
    #[error("the timeout must be between 1 and {TIMEOUT_S_MAX} seconds")]
    TimeoutInvalid,
    /// Another transfer of its linked chain failed.
    #[error("another transfer of its linked chain failed")]
    LinkedEventFailed,
    /// The batch ended inside a linked chain.
    #[error("the batch ends inside a linked chain")]
    LinkedChainOpen,
    /// More than [`BATCH_MAX`] transfers.
    #[error("at most {BATCH_MAX} transfers per batch")]
    BatchTooLarge,
}

impl TransferError {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            TransferError::IdZero => "id_zero",
            TransferError::AmountInvalid => "amount_invalid",
            TransferError::SameAccount => "same_account",
            TransferError::DebitAccountNotFound => "debit_account_not_found",
            TransferError::CreditAccountNotFound => "credit_account_not_found",
            TransferError::ExceedsCredits => "exceeds_credits",
            TransferError::ExceedsDebits => "exceeds_debits",
            TransferError::ExistsWithDifferentFields => "exists_with_different_fields",
            TransferError::PendingNotFound => "pending_not_found",
            TransferError::PendingAlreadyPosted => "pending_already_posted",
            TransferError::PendingAlreadyVoided => "pending_already_voided",
            TransferError::PendingExpired => "pending_expired",
            TransferError::PostAmountInvalid => "post_amount_invalid",
            TransferError::TimeoutInvalid => "timeout_invalid",
            TransferError::LinkedEventFailed => "linked_event_failed",
            TransferError::LinkedChainOpen => "linked_chain_open",
            TransferError::BatchTooLarge => "batch_too_large",
        }
    }

    /// Whether the refusal is remembered under the transfer's id (a retry fails the same way).
    /// Refusals caused by something outside the transfer (its chain, the batch, a clash of ids)
    /// are not: the transfer never happened, and may be sent again.
    pub fn is_remembered(self) -> bool {
        !matches!(
            self,
            TransferError::LinkedEventFailed
                | TransferError::LinkedChainOpen
                | TransferError::BatchTooLarge
                | TransferError::ExistsWithDifferentFields
                | TransferError::IdZero
        )
    }
}

/// Why an account could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Id 0.
    #[error("an account id must not be 0")]
    IdZero,
    /// The id is taken by an account opened differently.
    #[error("an account with this id exists with different fields")]
    ExistsWithDifferentFields,
}

impl AccountError {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            AccountError::IdZero => "id_zero",
            AccountError::ExistsWithDifferentFields => "exists_with_different_fields",
        }
    }
}

/// Where a pending transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingState {
    /// Reserved.
    Open,
    /// Posted (this much).
    Posted(u64),
    /// Voided.
    Voided,
    /// Timed out (voided).
    Expired,
}

/// A pending transfer's reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Debited.
    pub debit: AccountId,
    /// Credited.
    pub credit: AccountId,
    /// Reserved.
    pub amount_fen: u64,
    /// When it voids itself.
    pub expires_at_s: Option<u64>,
    /// Where it stands.
    pub state: PendingState,
}

/// One entry of the ledger's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An account was opened.
    Account(AccountSpec),
    /// A transfer was applied at `at_s` (`Ok`), or refused in a way that is remembered (`Err`).
    Transfer {
        /// The transfer.
        transfer: Transfer,
        /// When.
        at_s: u64,
        /// Its outcome.
        outcome: Result<(), TransferError>,
    },
    /// A pending transfer timed out and was voided.
    Expired {
        /// The pending transfer.
        pending: TransferId,
        /// When it was noticed.
        at_s: u64,
    },
}

/// Sums over every account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrialBalance {
    /// Posted debits.
    pub posted_debits_fen: u128,
    /// Posted credits.
    pub posted_credits_fen: u128,
    /// Pending debits.
    pub pending_debits_fen: u128,
    /// Pending credits.
    pub pending_credits_fen: u128,
}

impl TrialBalance {
    /// Debits equal credits, posted and pending.
    pub fn balances(&self) -> bool {
        self.posted_debits_fen == self.posted_credits_fen && self.pending_debits_fen == self.pending_credits_fen
    }
}

/// What to undo if a linked chain fails.
enum Undo {
    Balances { debit: AccountId, credit: AccountId, pending_delta: u128, posted_delta: u128, pending_released: u128 },
    Pending { id: TransferId, before: Option<Pending> },
    Outcome { id: TransferId },
}

/// The ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    accounts: BTreeMap<AccountId, Account>,
    /// Every transfer id seen, with its fields and its (remembered) outcome.
    outcomes: BTreeMap<TransferId, (Transfer, Result<(), TransferError>)>,
    pendings: BTreeMap<TransferId, Pending>,
    /// Open pending transfers by expiry, for [`Ledger::expire`].
    expiries: BTreeMap<(u64, TransferId), ()>,
    events: Vec<Event>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// Opens an account; opening the same account again is a no-op.
    pub fn open(&mut self, spec: AccountSpec) -> Result<(), AccountError> {
        if spec.id.0 == 0 {
            return Err(AccountError::IdZero);
        }
        match self.accounts.get(&spec.id) {
            Some(existing) if existing.spec == spec => Ok(()),
            Some(_) => Err(AccountError::ExistsWithDifferentFields),
            None => {
                self.accounts.insert(spec.id, Account::new(spec));
                self.events.push(Event::Account(spec));
                Ok(())
            }
        }
    }

    /// An account.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// Every account, by id.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// A pending transfer's reservation and state.
    pub fn pending(&self, id: TransferId) -> Option<&Pending> {
        self.pendings.get(&id)
    }

    /// Every pending transfer ever made, by id, with its state.
    pub fn pendings(&self) -> impl Iterator<Item = (TransferId, &Pending)> {
        self.pendings.iter().map(|(id, p)| (*id, p))
    }

    /// The outcome remembered for a transfer id.
    pub fn outcome(&self, id: TransferId) -> Option<Result<(), TransferError>> {
        self.outcomes.get(&id).map(|(_, outcome)| *outcome)
    }

    /// The whole history, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Sums over every account.
    pub fn trial_balance(&self) -> TrialBalance {
        let mut total = TrialBalance::default();
        for a in self.accounts.values() {
            total.posted_debits_fen += a.debits_posted_fen;
            total.posted_credits_fen += a.credits_posted_fen;
            total.pending_debits_fen += a.debits_pending_fen;
            total.pending_credits_fen += a.credits_pending_fen;
        }
        total
    }

    /// Rebuilds a ledger from its history.
    pub fn replay(events: &[Event]) -> Result<Ledger, String> {
        let mut ledger = Ledger::new();
        for (i, event) in events.iter().enumerate() {
            ledger.replay_event(event).map_err(|e| format!("event {i}: {e}"))?;
        }
        Ok(ledger)
    }

    /// Applies one event of a history (written by this or another process) as it happened.
    pub fn replay_event(&mut self, event: &Event) -> Result<(), String> {
        match *event {
            Event::Account(spec) => self.open(spec).map_err(|e| e.to_string())?,
            Event::Transfer { transfer, at_s, outcome: Ok(()) } => {
                let mut undo = Vec::new();
                self.apply_one(&transfer, at_s, &mut undo).outcome.map_err(|e| e.to_string())?;
                self.events.push(*event);
            }
            Event::Transfer { transfer, outcome: Err(error), .. } => {
                self.outcomes.insert(transfer.id, (transfer, Err(error)));
                self.events.push(*event);
            }
            Event::Expired { pending, at_s } => {
                if !self.expire_one(pending) {
                    return Err(format!("transfer {} is not an open pending transfer", pending.0));
                }
                self.events.push(Event::Expired { pending, at_s });
            }
        }
        Ok(())
    }

    /// Voids every pending transfer whose timeout has passed; returns them.
    pub fn expire(&mut self, now_s: u64) -> Vec<TransferId> {
        let due: Vec<TransferId> =
            self.expiries.range(..(now_s.saturating_add(1), TransferId(0))).map(|(&(_, id), ())| id).collect();
        for &id in &due {
            if self.expire_one(id) {
                self.events.push(Event::Expired { pending: id, at_s: now_s });
            }
        }
        due
    }

    fn expire_one(&mut self, id: TransferId) -> bool {
        let Some(pending) = self.pendings.get(&id).copied() else { return false };
        if pending.state != PendingState::Open {
            return false;
        }
        self.release(&pending);
        if let Some(at) = pending.expires_at_s {
            self.expiries.remove(&(at, id));
        }
        if let Some(p) = self.pendings.get_mut(&id) {
            p.state = PendingState::Expired;
        }
        true
    }

    fn release(&mut self, pending: &Pending) {
        let amount = u128::from(pending.amount_fen);
        if let Some(a) = self.accounts.get_mut(&pending.debit) {
            a.debits_pending_fen -= amount;
        }
        if let Some(a) = self.accounts.get_mut(&pending.credit) {
            a.credits_pending_fen -= amount;
        }
    }

    /// Applies a batch at `now_s` (expiring due pending transfers first). Each transfer gets its
    /// outcome; a linked chain commits all or none.
    pub fn apply(&mut self, batch: &[Transfer], now_s: u64) -> Vec<Result<(), TransferError>> {
        if batch.len() > BATCH_MAX {
            return vec![Err(TransferError::BatchTooLarge); batch.len()];
        }
        self.expire(now_s);
        let mut results = Vec::with_capacity(batch.len());
        let mut start = 0;
        while start < batch.len() {
            // The chain: up to and including the first transfer that is not linked.
            let end = batch[start..].iter().position(|t| !t.linked).map(|i| start + i + 1);
            let Some(end) = end else {
                results.extend(std::iter::repeat_n(Err(TransferError::LinkedChainOpen), batch.len() - start));
                break;
            };
            self.apply_chain(&batch[start..end], now_s, &mut results);
            start = end;
        }
        results
    }

    fn apply_chain(&mut self, chain: &[Transfer], now_s: u64, results: &mut Vec<Result<(), TransferError>>) {
        let mut undo = Vec::new();
        let mut done = Vec::with_capacity(chain.len());
        let mut failed = None;
        for (i, transfer) in chain.iter().enumerate() {
            let applied = self.apply_one(transfer, now_s, &mut undo);
            if applied.outcome.is_err() && chain.len() > 1 {
                failed = Some((i, applied.outcome));
                break;
            }
            done.push(applied);
        }
        match failed {
            None => {
                for (transfer, applied) in chain.iter().zip(&done) {
                    let remembered = applied.outcome.err().is_none_or(TransferError::is_remembered);
                    if applied.fresh && remembered {
                        self.events.push(Event::Transfer {
                            transfer: *transfer,
                            at_s: now_s,
                            outcome: applied.outcome,
                        });
                    }
                    results.push(applied.outcome);
                }
            }
            Some((at, outcome)) => {
                // A failed chain leaves no trace: every member may be sent again.
                for step in undo.into_iter().rev() {
                    self.undo(step);
                }
                for i in 0..chain.len() {
                    results.push(if i == at { outcome } else { Err(TransferError::LinkedEventFailed) });
                }
            }
        }
    }

    fn undo(&mut self, step: Undo) {
        match step {
            Undo::Balances { debit, credit, pending_delta, posted_delta, pending_released } => {
                if let Some(a) = self.accounts.get_mut(&debit) {
                    a.debits_pending_fen = a.debits_pending_fen + pending_released - pending_delta;
                    a.debits_posted_fen -= posted_delta;
                }
                if let Some(a) = self.accounts.get_mut(&credit) {
                    a.credits_pending_fen = a.credits_pending_fen + pending_released - pending_delta;
                    a.credits_posted_fen -= posted_delta;
                }
            }
            Undo::Pending { id, before } => {
                if let Some(p) = self.pendings.get(&id).copied()
                    && let Some(at) = p.expires_at_s
                {
                    self.expiries.remove(&(at, id));
                }
                match before {
                    Some(p) => {
                        if p.state == PendingState::Open
                            && let Some(at) = p.expires_at_s
                        {
                            self.expiries.insert((at, id), ());
                        }
                        self.pendings.insert(id, p);
                    }
                    None => {
                        self.pendings.remove(&id);
                    }
                }
            }
            Undo::Outcome { id } => {
                self.outcomes.remove(&id);
            }
        }
    }

    /// Applies one transfer, recording what to undo. A retry (same id, same fields) returns the
    /// remembered outcome and changes nothing.
    fn apply_one(&mut self, transfer: &Transfer, now_s: u64, undo: &mut Vec<Undo>) -> Applied {
        if transfer.id.0 == 0 {
            return Applied { outcome: Err(TransferError::IdZero), fresh: false };
        }
        if let Some((first, outcome)) = self.outcomes.get(&transfer.id) {
            let outcome = if first == transfer { *outcome } else { Err(TransferError::ExistsWithDifferentFields) };
            return Applied { outcome, fresh: false };
        }
        let outcome = self.check_and_apply(transfer, now_s, undo);
        if outcome.err().is_none_or(TransferError::is_remembered) {
            self.outcomes.insert(transfer.id, (*transfer, outcome));
            undo.push(Undo::Outcome { id: transfer.id });
        }
        Applied { outcome, fresh: true }
    }

    fn check_and_apply(&mut self, transfer: &Transfer, now_s: u64, undo: &mut Vec<Undo>) -> Result<(), TransferError> {
        match transfer.kind {
            TransferKind::Single { debit, credit, amount_fen } => {
                self.check_accounts(debit, credit, amount_fen)?;
                self.move_fen(debit, credit, 0, u128::from(amount_fen), 0, undo);
                Ok(())
            }
            TransferKind::Pending { debit, credit, amount_fen, timeout_s } => {
                if timeout_s.is_some_and(|t| t == 0 || t > TIMEOUT_S_MAX) {
                    return Err(TransferError::TimeoutInvalid);
                }
                self.check_accounts(debit, credit, amount_fen)?;
                self.move_fen(debit, credit, u128::from(amount_fen), 0, 0, undo);
                let expires_at_s = timeout_s.map(|t| now_s + t);
                let pending = Pending { debit, credit, amount_fen, expires_at_s, state: PendingState::Open };
                undo.push(Undo::Pending { id: transfer.id, before: None });
                self.pendings.insert(transfer.id, pending);
                if let Some(at) = expires_at_s {
                    self.expiries.insert((at, transfer.id), ());
                }
                Ok(())
            }
            TransferKind::PostPending { pending: id, amount_fen } => {
                let pending = self.open_pending(id)?;
                let posted = amount_fen.unwrap_or(pending.amount_fen);
                if posted == 0 || posted > pending.amount_fen {
                    return Err(TransferError::PostAmountInvalid);
                }
                // The reservation already passed the limits; posting part of it only loosens them.
                self.move_fen(
                    pending.debit,
                    pending.credit,
                    0,
                    u128::from(posted),
                    u128::from(pending.amount_fen),
                    undo,
                );
                self.resolve(id, pending, PendingState::Posted(posted), undo);
                Ok(())
            }
            TransferKind::VoidPending { pending: id } => {
                let pending = self.open_pending(id)?;
                self.move_fen(pending.debit, pending.credit, 0, 0, u128::from(pending.amount_fen), undo);
                self.resolve(id, pending, PendingState::Voided, undo);
                Ok(())
            }
        }
    }

    fn open_pending(&self, id: TransferId) -> Result<Pending, TransferError> {
        let pending = *self.pendings.get(&id).ok_or(TransferError::PendingNotFound)?;
        match pending.state {
            PendingState::Open => Ok(pending),
            PendingState::Posted(_) => Err(TransferError::PendingAlreadyPosted),
            PendingState::Voided => Err(TransferError::PendingAlreadyVoided),
            PendingState::Expired => Err(TransferError::PendingExpired),
        }
    }

    fn resolve(&mut self, id: TransferId, before: Pending, state: PendingState, undo: &mut Vec<Undo>) {
        undo.push(Undo::Pending { id, before: Some(before) });
        if let Some(at) = before.expires_at_s {
            self.expiries.remove(&(at, id));
        }
        self.pendings.insert(id, Pending { state, ..before });
    }

    fn check_accounts(&self, debit: AccountId, credit: AccountId, amount_fen: u64) -> Result<(), TransferError> {
        if amount_fen == 0 || amount_fen > AMOUNT_FEN_MAX {
            return Err(TransferError::AmountInvalid);
        }
        if debit == credit {
            return Err(TransferError::SameAccount);
        }
        let d = self.accounts.get(&debit).ok_or(TransferError::DebitAccountNotFound)?;
        let c = self.accounts.get(&credit).ok_or(TransferError::CreditAccountNotFound)?;
        let amount = u128::from(amount_fen);
        if d.spec.limit == Limit::DebitsWithinCredits
            && d.debits_pending_fen + d.debits_posted_fen + amount > d.credits_posted_fen
        {
            return Err(TransferError::ExceedsCredits);
        }
        if c.spec.limit == Limit::CreditsWithinDebits
            && c.credits_pending_fen + c.credits_posted_fen + amount > c.debits_posted_fen
        {
            return Err(TransferError::ExceedsDebits);
        }
        Ok(())
    }

    /// Adds `pending` to both sides' pending sums and `posted` to their posted sums, after
    /// releasing `released` from their pending sums.
    fn move_fen(
        &mut self,
        debit: AccountId,
        credit: AccountId,
        pending: u128,
        posted: u128,
        released: u128,
        undo: &mut Vec<Undo>,
    ) {
        if let Some(a) = self.accounts.get_mut(&debit) {
            a.debits_pending_fen = a.debits_pending_fen - released + pending;
            a.debits_posted_fen += posted;
        }
        if let Some(a) = self.accounts.get_mut(&credit) {
            a.credits_pending_fen = a.credits_pending_fen - released + pending;
            a.credits_posted_fen += posted;
        }
        undo.push(Undo::Balances {
            debit,
            credit,
            pending_delta: pending,
            posted_delta: posted,
            pending_released: released,
        });
    }
}

/// One transfer's outcome, and whether it was new (not a retry).
struct Applied {
    outcome: Result<(), TransferError>,
    fresh: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORLD: AccountId = AccountId(1);
    const CASH: AccountId = AccountId(2);
    const FEE: AccountId = AccountId(3);
    const BUDGET: AccountId = AccountId(4);

    fn ledger() -> Ledger {
        let mut l = Ledger::new();
        for (id, kind, limit) in [
            (WORLD, AccountKind::World, Limit::None),
            (CASH, AccountKind::TenantCash, Limit::DebitsWithinCredits),
            (FEE, AccountKind::PlatformFee, Limit::None),
            (BUDGET, AccountKind::ProgramBudget, Limit::DebitsWithinCredits),
        ] {
            l.open(AccountSpec { id, kind, limit }).unwrap_or_else(|e| panic!("{e}"));
        }
        l
    }

    fn single(id: u128, debit: AccountId, credit: AccountId, amount_fen: u64) -> Transfer {
        Transfer {
            id: TransferId(id),
            kind: TransferKind::Single { debit, credit, amount_fen },
            linked: false,
            code: 1,
        }
    }

    fn pending(id: u128, debit: AccountId, credit: AccountId, amount_fen: u64, timeout_s: Option<u64>) -> Transfer {
        Transfer {
            id: TransferId(id),
            kind: TransferKind::Pending { debit, credit, amount_fen, timeout_s },
            linked: false,
            code: 2,
        }
    }

    fn post(id: u128, of: u128, amount_fen: Option<u64>) -> Transfer {
        Transfer {
            id: TransferId(id),
            kind: TransferKind::PostPending { pending: TransferId(of), amount_fen },
            linked: false,
            code: 3,
        }
    }

    fn void(id: u128, of: u128) -> Transfer {
        Transfer {
            id: TransferId(id),
            kind: TransferKind::VoidPending { pending: TransferId(of) },
            linked: false,
            code: 4,
        }
    }

    fn cash(l: &Ledger) -> i128 {
        l.account(CASH).map_or(0, Account::credit_balance_fen)
    }

    #[test]
    fn a_failed_id_keeps_failing_the_same_way_even_after_funding() {
        let mut l = ledger();
        assert_eq!(l.apply(&[single(10, CASH, FEE, 500)], 0), [Err(TransferError::ExceedsCredits)]);
        assert_eq!(l.apply(&[single(11, WORLD, CASH, 1_000)], 0), [Ok(())]);
        assert_eq!(l.apply(&[single(10, CASH, FEE, 500)], 1), [Err(TransferError::ExceedsCredits)]);
        assert_eq!(cash(&l), 1_000);
        // The same id with other fields is refused and changes nothing.
        assert_eq!(l.apply(&[single(11, WORLD, CASH, 2_000)], 2), [Err(TransferError::ExistsWithDifferentFields)]);
        assert_eq!(
            l.apply(&[single(11, WORLD, CASH, 1_000)], 2),
            [Ok(())],
            "a retry succeeds without moving money again"
        );
        assert_eq!(cash(&l), 1_000);
    }

    #[test]
    fn bad_transfers_are_refused_with_a_code() {
        let mut l = ledger();
        let cases = [
            (single(1, WORLD, CASH, 0), "amount_invalid"),
            (single(2, WORLD, CASH, AMOUNT_FEN_MAX + 1), "amount_invalid"),
            (single(3, WORLD, WORLD, 5), "same_account"),
            (single(4, AccountId(99), CASH, 5), "debit_account_not_found"),
            (single(5, WORLD, AccountId(99), 5), "credit_account_not_found"),
            (single(0, WORLD, CASH, 5), "id_zero"),
            (post(6, 404, None), "pending_not_found"),
            (pending(7, WORLD, CASH, 5, Some(0)), "timeout_invalid"),
        ];
        for (transfer, code) in cases {
            assert_eq!(l.apply(&[transfer], 0)[0].map_err(TransferError::code), Err(code), "{transfer:?}");
        }
        assert_eq!(l.trial_balance(), TrialBalance::default(), "nothing moved");
    }

    #[test]
    fn a_pending_transfer_posts_partly_once_and_releases_the_rest() {
        let mut l = ledger();
        l.apply(&[single(1, WORLD, CASH, 1_000)], 0);
        assert_eq!(l.apply(&[pending(2, CASH, FEE, 800, None)], 0), [Ok(())]);
        // The hold counts against the limit.
        assert_eq!(l.apply(&[single(3, CASH, FEE, 300)], 0), [Err(TransferError::ExceedsCredits)]);
        assert_eq!(l.apply(&[post(4, 2, Some(900))], 0), [Err(TransferError::PostAmountInvalid)]);
        assert_eq!(l.apply(&[post(5, 2, Some(600))], 0), [Ok(())]);
        assert_eq!(l.apply(&[post(6, 2, None)], 0), [Err(TransferError::PendingAlreadyPosted)]);
        assert_eq!(l.apply(&[void(7, 2)], 0), [Err(TransferError::PendingAlreadyPosted)]);
        assert_eq!(cash(&l), 400);
        let a = l.account(CASH).copied().unwrap_or_else(|| panic!());
        assert_eq!(a.debits_pending_fen, 0, "the remaining 200 was released");
        assert!(l.trial_balance().balances());
    }

    #[test]
    fn a_pending_transfer_times_out() {
        let mut l = ledger();
        l.apply(&[single(1, WORLD, CASH, 1_000)], 0);
        l.apply(&[pending(2, CASH, FEE, 800, Some(60))], 100);
        assert_eq!(l.apply(&[post(3, 2, None)], 161), [Err(TransferError::PendingExpired)]);
        assert_eq!(l.pending(TransferId(2)).map(|p| p.state), Some(PendingState::Expired));
        assert_eq!(l.account(CASH).map(|a| a.debits_pending_fen), Some(0));
        assert_eq!(Ledger::replay(l.events()).as_ref(), Ok(&l));
    }

    #[test]
    fn a_linked_chain_commits_all_or_none() {
        let mut l = ledger();
        l.apply(&[single(1, WORLD, CASH, 1_000)], 0);
        let chain = [
            Transfer { linked: true, ..single(2, CASH, FEE, 600) },
            Transfer { linked: true, ..single(3, CASH, FEE, 600) }, // overdraws
            single(4, WORLD, BUDGET, 5),
        ];
        let results = l.apply(&chain, 0);
        assert_eq!(
            results,
            [
                Err(TransferError::LinkedEventFailed),
                Err(TransferError::ExceedsCredits),
                Err(TransferError::LinkedEventFailed)
            ]
        );
        assert_eq!(cash(&l), 1_000, "the first transfer was rolled back");
        assert_eq!(l.outcome(TransferId(2)), None, "a failed chain remembers nothing");
        // Fixed, the chain goes through; an open chain at the end of a batch does not.
        let fixed = [Transfer { linked: true, ..single(2, CASH, FEE, 600) }, single(3, CASH, FEE, 400)];
        assert_eq!(l.apply(&fixed, 1), [Ok(()), Ok(())]);
        assert_eq!(
            l.apply(&[Transfer { linked: true, ..single(9, WORLD, CASH, 1) }], 1),
            [Err(TransferError::LinkedChainOpen)]
        );
        assert_eq!(cash(&l), 0);
        assert_eq!(Ledger::replay(l.events()).as_ref(), Ok(&l));
    }

    #[test]
    fn accounts_open_once() {
        let mut l = ledger();
        let spec = AccountSpec { id: CASH, kind: AccountKind::TenantCash, limit: Limit::DebitsWithinCredits };
        assert_eq!(l.open(spec), Ok(()));
        assert_eq!(l.open(AccountSpec { limit: Limit::None, ..spec }), Err(AccountError::ExistsWithDifferentFields));
        assert_eq!(l.open(AccountSpec { id: AccountId(0), ..spec }), Err(AccountError::IdZero));
    }
}
