//! The books in the control plane: one in-memory [`Books`] (the ledger and the money rules'
//! state) per server, kept equal to the store's history; and the raw ledger's operations
//! (accounts below 2^56, transfers, the trial balance) for operators and auditors.
//!
//! A write takes the store's write lock (`Store::ledger_commit`), first applies what other servers
//! appended since this one last looked, then applies its transfers, appends the new history lines
//! and commits; only then does it answer. A read first catches up the same way (without the lock).
//! Several servers on one database therefore agree without a leader. If a commit fails, the
//! in-memory ledger may be ahead of the store, so it is rebuilt from the store.

use suanwang_api::ledger::{AccountView, NewAccount, NewTransfer, Totals, TransferApplied, TrialBalance};
use suanwang_api::money::{EntriesPage, EntriesQuery, Entry};
use suanwang_billing::Books;
use suanwang_billing::chart::RESERVED_FROM;
use suanwang_ledger::{
    AccountId, AccountKind, AccountSpec, Ledger, Limit, Transfer, TransferError, TransferId, TransferKind,
};
use suanwang_store::store::{LEDGER_PAGE_MAX, Store};
use tokio::sync::Mutex;

use crate::Control;
use crate::access::{Action, require};
use crate::auth::Caller;
use crate::error::Error;

/// A server's copy of the books and the last history entry it has applied.
#[derive(Default)]
pub struct BooksState {
    inner: Mutex<Option<(Books, i64)>>,
}

/// Account ids below this are the books' fixed accounts (world, platform fee, breakage).
const RESERVED_ACCOUNTS: u64 = 4;

fn internal(message: String) -> Error {
    Error::internal("ledger_corrupt", message)
}

fn apply_lines(books: &mut Books, lines: &[String]) -> Result<(), Error> {
    for line in lines {
        books.replay_line(line).map_err(|e| internal(format!("the stored ledger does not replay: {e}")))?;
    }
    Ok(())
}

/// Applies the store's history after `seq` to `ledger`, page by page; returns the new last seq.
async fn catch_up(store: &Store, ledger: &mut Books, mut seq: i64) -> Result<i64, Error> {
    loop {
        let page = store.ledger_entries(seq, LEDGER_PAGE_MAX).await?;
        let Some(last) = page.last() else { return Ok(seq) };
        seq = last.0;
        let lines: Vec<String> = page.into_iter().map(|(_, line)| line).collect();
        apply_lines(ledger, &lines)?;
    }
}

/// This server's copy (taken out of `slot`), or the whole history read from the store.
async fn take_or_load(store: &Store, slot: &mut Option<(Books, i64)>) -> Result<(Books, i64), Error> {
    if let Some(loaded) = slot.take() {
        return Ok(loaded);
    }
    let mut ledger = Books::new();
    let seq = catch_up(store, &mut ledger, 0).await?;
    Ok((ledger, seq))
}

impl BooksState {
    /// Runs `read` on books caught up with the store.
    pub async fn read<R>(&self, store: &Store, read: impl FnOnce(&Books) -> R) -> Result<R, Error> {
        let mut guard = self.inner.lock().await;
        let (mut ledger, seq) = take_or_load(store, &mut guard).await?;
        let seq = catch_up(store, &mut ledger, seq).await?;
        let result = read(&ledger);
        *guard = Some((ledger, seq));
        Ok(result)
    }

    /// Runs `write` on caught-up books under the store's write lock and commits the history it
    /// adds (at `now_ms`).
    pub async fn write<R: Send>(
        &self,
        store: &Store,
        actor: &str,
        now_ms: i64,
        write: impl FnOnce(&mut Books) -> R + Send,
    ) -> Result<R, Error> {
        let mut guard = self.inner.lock().await;
        // Whatever others appended since is applied inside the commit, under the lock.
        let (mut ledger, seq) = take_or_load(store, &mut guard).await?;
        let committed = store
            .ledger_commit(actor, now_ms, seq, |caught_up| {
                if let Err(e) = apply_lines(&mut ledger, &caught_up) {
                    return (Vec::new(), Err(e));
                }
                let mark = ledger.mark();
                let result = write(&mut ledger);
                (ledger.lines_since(mark), Ok(result))
            })
            .await;
        match committed {
            Ok((seq, Ok(result))) => {
                *guard = Some((ledger, seq));
                Ok(result)
            }
            Ok((_, Err(e))) => Err(e),
            // The in-memory ledger may be ahead of the store: forget it; the next call reloads.
            Err(e) => Err(e.into()),
        }
    }
}

impl Control {
    /// Runs `read` on the books caught up with the store.
    pub async fn read_books<R>(&self, read: impl FnOnce(&Books) -> R) -> Result<R, Error> {
        self.books.read(&self.store, read).await
    }

    /// Runs `write` on the caught-up books and commits what it adds (see [`BooksState::write`]).
    pub async fn write_books<R: Send>(
        &self,
        actor: &str,
        write: impl FnOnce(&mut Books) -> R + Send,
    ) -> Result<R, Error> {
        self.books.write(&self.store, actor, self.now_ms(), write).await
    }
}

fn view(a: &suanwang_ledger::Account) -> AccountView {
    AccountView {
        id: a.spec.id.0,
        kind: a.spec.kind.as_str().to_owned(),
        limit: a.spec.limit.as_str().to_owned(),
        debits_posted_fen: a.debits_posted_fen,
        debits_pending_fen: a.debits_pending_fen,
        credits_posted_fen: a.credits_posted_fen,
        credits_pending_fen: a.credits_pending_fen,
        balance_fen: a.credit_balance_fen(),
    }
}

/// Opens a raw account (operators); `created` is false for the same account again.
pub async fn open_account(ctl: &Control, caller: &Caller, body: NewAccount) -> Result<(AccountView, bool), Error> {
    require(caller, Action::WriteLedger)?;
    let kind = AccountKind::ALL.into_iter().find(|k| k.as_str() == body.kind).ok_or_else(|| {
        let kinds: Vec<&str> = AccountKind::ALL.iter().map(|k| k.as_str()).collect();
        Error::bad_request(
            "invalid_kind",
            format!("unknown account kind {:?}; kinds are {}", body.kind, kinds.join(", ")),
        )
    })?;
    let limit = [Limit::None, Limit::DebitsWithinCredits, Limit::CreditsWithinDebits]
        .into_iter()
        .find(|l| l.as_str() == body.limit)
        .ok_or_else(|| {
            Error::bad_request(
                "invalid_limit",
                format!(
                    "unknown limit {:?}; limits are none, debits-within-credits, credits-within-debits",
                    body.limit
                ),
            )
        })?;
    if body.id < RESERVED_ACCOUNTS || body.id >= RESERVED_FROM {
        return Err(Error::bad_request(
            "id_reserved",
            format!("account ids 1–3 and from 2^56 are the books' own; choose one from 4 to {}", RESERVED_FROM - 1),
        ));
    }
    let spec = AccountSpec { id: AccountId(body.id), kind, limit };
    let (created, account) = ctl
        .write_books(&caller.actor(), move |books| {
            let ledger = books.ledger_mut();
            let existed = ledger.account(spec.id).is_some();
            ledger.open(spec).map(|()| (!existed, ledger.account(spec.id).map(view)))
        })
        .await?
        .map_err(|e| match e {
            suanwang_ledger::AccountError::IdZero => Error::bad_request(e.code(), e.to_string()),
            suanwang_ledger::AccountError::ExistsWithDifferentFields => Error::conflict(e.code(), e.to_string()),
        })?;
    let account = account.ok_or_else(|| internal("the account vanished".to_owned()))?;
    Ok((account, created))
}

/// One account (operators, auditors).
pub async fn show_account(ctl: &Control, caller: &Caller, id: u64) -> Result<AccountView, Error> {
    require(caller, Action::ReadLedger)?;
    ctl.read_books(|books| books.ledger().account(AccountId(id)).map(view))
        .await?
        .ok_or_else(|| Error::not_found(format!("account {id}")))
}

fn transfer_error(e: TransferError) -> Error {
    match e {
        TransferError::ExceedsCredits
        | TransferError::ExceedsDebits
        | TransferError::ExistsWithDifferentFields
        | TransferError::PendingAlreadyPosted
        | TransferError::PendingAlreadyVoided
        | TransferError::PendingExpired => Error::conflict(e.code(), e.to_string()),
        _ => Error::bad_request(e.code(), e.to_string()),
    }
}

/// Applies one raw transfer (operators): applied (or already applied under that id), or refused
/// with the ledger's code. A refused id stays refused the same way.
pub async fn transfer(ctl: &Control, caller: &Caller, body: NewTransfer) -> Result<TransferApplied, Error> {
    require(caller, Action::WriteLedger)?;
    let missing =
        |field: &str| Error::bad_request("invalid_transfer", format!("a {} transfer needs {field}", body.kind));
    let amount = || body.amount_fen.ok_or_else(|| missing("amount_fen"));
    let accounts = || {
        Ok::<_, Error>((
            AccountId(body.debit.ok_or_else(|| missing("debit"))?),
            AccountId(body.credit.ok_or_else(|| missing("credit"))?),
        ))
    };
    let kind = match body.kind.as_str() {
        "single" => {
            let (debit, credit) = accounts()?;
            TransferKind::Single { debit, credit, amount_fen: amount()? }
        }
        "pending" => {
            let (debit, credit) = accounts()?;
            TransferKind::Pending { debit, credit, amount_fen: amount()?, timeout_s: body.timeout_s }
        }
        "post" => TransferKind::PostPending {
            pending: TransferId(body.pending_id.ok_or_else(|| missing("pending_id"))?),
            amount_fen: body.amount_fen,
        },
        "void" => {
            TransferKind::VoidPending { pending: TransferId(body.pending_id.ok_or_else(|| missing("pending_id"))?) }
        }
        other => {
            return Err(Error::bad_request(
                "invalid_transfer",
                format!("unknown transfer kind {other:?}; kinds are single, pending, post, void"),
            ));
        }
    };
    let transfer = Transfer { id: TransferId(body.id), kind, linked: false, code: body.code };
    let now_s = (ctl.now_ms() / 1000) as u64;
    let outcome = ctl
        .write_books(&caller.actor(), move |books| {
            // The books' own pending transfers (voucher claims) resolve only through the books.
            if let TransferKind::PostPending { pending, .. } | TransferKind::VoidPending { pending } = transfer.kind
                && let Some(p) = books.ledger().pending(pending)
                && (p.debit.0 >= RESERVED_FROM || p.credit.0 >= RESERVED_FROM)
                && books.ledger().outcome(transfer.id).is_none()
            {
                return Err(None);
            }
            books.ledger_mut().apply(&[transfer], now_s)[0].map_err(Some)
        })
        .await?;
    if let Err(None) = outcome {
        return Err(Error::conflict(
            "books_pending",
            "this pending transfer belongs to the books (a voucher claim); it resolves through redemption or expiry",
        ));
    }
    let outcome = outcome.map_err(|e| e.unwrap_or(TransferError::PendingNotFound));
    outcome.map_err(transfer_error)?;
    Ok(TransferApplied { id: body.id.to_string(), status: "applied".to_owned() })
}

/// Debits and credits, posted and pending (operators, auditors).
pub async fn trial_balance(ctl: &Control, caller: &Caller) -> Result<TrialBalance, Error> {
    require(caller, Action::ReadLedger)?;
    let total = ctl.read_books(|books| Ledger::trial_balance(books.ledger())).await?;
    Ok(TrialBalance {
        posted: Totals { debits_fen: total.posted_debits_fen, credits_fen: total.posted_credits_fen },
        pending: Totals { debits_fen: total.pending_debits_fen, credits_fen: total.pending_credits_fen },
    })
}

/// The most history lines one page returns.
pub const ENTRIES_PAGE_MAX: u32 = 10_000;

/// A page of the books' history (operators, auditors).
pub async fn entries(ctl: &Control, caller: &Caller, query: &EntriesQuery) -> Result<EntriesPage, Error> {
    require(caller, Action::ReadLedger)?;
    let limit = query.limit.unwrap_or(1_000).clamp(1, ENTRIES_PAGE_MAX);
    let page = ctl.store.ledger_entries(query.after.unwrap_or(0), limit).await?;
    let next_after = page.last().map(|(seq, _)| *seq);
    Ok(EntriesPage { entries: page.into_iter().map(|(seq, entry)| Entry { seq, entry }).collect(), next_after })
}
