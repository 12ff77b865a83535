//! The books in the server: one in-memory [`Books`] (the ledger and the money rules' state) per
//! server, kept equal to the store's history.
//!
//! A write takes the store's write lock (`Store::ledger_commit`), first applies what other servers
//! appended since this one last looked, then applies its transfers, appends the new history lines
//! and commits; only then does it answer. A read first catches up the same way (without the lock).
//! Several servers on one database therefore agree without a leader. If a commit fails, the
//! in-memory ledger may be ahead of the store, so it is rebuilt from the store.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use suanwang_billing::Books;
use suanwang_billing::chart::RESERVED_FROM;
use suanwang_ledger::{
    AccountId, AccountKind, AccountSpec, Ledger, Limit, Transfer, TransferError, TransferId, TransferKind,
};
use suanwang_store::model::Role;
use suanwang_store::store::{LEDGER_PAGE_MAX, Store};
use tokio::sync::Mutex;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::Body;
use crate::state::{AppState, now_ms};

/// A server's copy of the books and the last history entry it has applied.
#[derive(Default)]
pub struct LedgerState {
    inner: Mutex<Option<(Books, i64)>>,
}

/// Account ids below this are the books' fixed accounts (world, platform fee, breakage).
const RESERVED_ACCOUNTS: u64 = 4;

fn internal(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ledger_corrupt", message)
}

fn apply_lines(books: &mut Books, lines: &[String]) -> Result<(), ApiError> {
    for line in lines {
        books.replay_line(line).map_err(|e| internal(format!("the stored ledger does not replay: {e}")))?;
    }
    Ok(())
}

/// Applies the store's history after `seq` to `ledger`, page by page; returns the new last seq.
async fn catch_up(store: &Store, ledger: &mut Books, mut seq: i64) -> Result<i64, ApiError> {
    loop {
        let page = store.ledger_entries(seq, LEDGER_PAGE_MAX).await?;
        let Some(last) = page.last() else { return Ok(seq) };
        seq = last.0;
        let lines: Vec<String> = page.into_iter().map(|(_, line)| line).collect();
        apply_lines(ledger, &lines)?;
    }
}

/// This server's copy (taken out of `slot`), or the whole history read from the store.
async fn take_or_load(store: &Store, slot: &mut Option<(Books, i64)>) -> Result<(Books, i64), ApiError> {
    if let Some(loaded) = slot.take() {
        return Ok(loaded);
    }
    let mut ledger = Books::new();
    let seq = catch_up(store, &mut ledger, 0).await?;
    Ok((ledger, seq))
}

impl LedgerState {
    /// Runs `read` on books caught up with the store.
    pub async fn read<R>(&self, store: &Store, read: impl FnOnce(&Books) -> R) -> Result<R, ApiError> {
        let mut guard = self.inner.lock().await;
        let (mut ledger, seq) = take_or_load(store, &mut guard).await?;
        let seq = catch_up(store, &mut ledger, seq).await?;
        let result = read(&ledger);
        *guard = Some((ledger, seq));
        Ok(result)
    }

    /// Runs `write` on caught-up books under the store's write lock and commits the history it
    /// adds.
    pub async fn write<R: Send>(
        &self,
        store: &Store,
        actor: &str,
        write: impl FnOnce(&mut Books) -> R + Send,
    ) -> Result<R, ApiError> {
        let mut guard = self.inner.lock().await;
        // Whatever others appended since is applied inside the commit, under the lock.
        let (mut ledger, seq) = take_or_load(store, &mut guard).await?;
        let committed = store
            .ledger_commit(actor, now_ms(), seq, |caught_up| {
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

/// `POST /api/v1/ledger/accounts`.
#[derive(Debug, Deserialize)]
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

fn no_limit() -> String {
    "none".to_owned()
}

/// An account as the API shows it.
#[derive(Debug, Serialize)]
pub struct AccountView {
    /// Id.
    pub id: u64,
    /// Kind.
    pub kind: &'static str,
    /// Limit.
    pub limit: &'static str,
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

fn view(a: &suanwang_ledger::Account) -> AccountView {
    AccountView {
        id: a.spec.id.0,
        kind: a.spec.kind.as_str(),
        limit: a.spec.limit.as_str(),
        debits_posted_fen: a.debits_posted_fen,
        debits_pending_fen: a.debits_pending_fen,
        credits_posted_fen: a.credits_posted_fen,
        credits_pending_fen: a.credits_pending_fen,
        balance_fen: a.credit_balance_fen(),
    }
}

/// `POST /api/v1/ledger/accounts` (operator): opens an account; the same account again is 200.
pub async fn open_account(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    caller.require(&[Role::Operator])?;
    let kind = AccountKind::ALL.into_iter().find(|k| k.as_str() == body.kind).ok_or_else(|| {
        let kinds: Vec<&str> = AccountKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::bad_request(
            "invalid_kind",
            format!("unknown account kind {:?}; kinds are {}", body.kind, kinds.join(", ")),
        )
    })?;
    let limit = [Limit::None, Limit::DebitsWithinCredits, Limit::CreditsWithinDebits]
        .into_iter()
        .find(|l| l.as_str() == body.limit)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_limit",
                format!(
                    "unknown limit {:?}; limits are none, debits-within-credits, credits-within-debits",
                    body.limit
                ),
            )
        })?;
    if body.id < RESERVED_ACCOUNTS || body.id >= RESERVED_FROM {
        return Err(ApiError::bad_request(
            "id_reserved",
            format!("account ids 1–3 and from 2^56 are the books' own; choose one from 4 to {}", RESERVED_FROM - 1),
        ));
    }
    let spec = AccountSpec { id: AccountId(body.id), kind, limit };
    let (created, account) = state
        .ledger
        .write(&state.store, &caller.actor(), move |books| {
            let ledger = books.ledger_mut();
            let existed = ledger.account(spec.id).is_some();
            ledger.open(spec).map(|()| (!existed, ledger.account(spec.id).map(view)))
        })
        .await?
        .map_err(|e| match e {
            suanwang_ledger::AccountError::IdZero => ApiError::bad_request(e.code(), e.to_string()),
            suanwang_ledger::AccountError::ExistsWithDifferentFields => ApiError::conflict(e.code(), e.to_string()),
        })?;
    let account = account.ok_or_else(|| internal("the account vanished".to_owned()))?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(account)))
}

/// `GET /api/v1/ledger/accounts/{id}` (operator, auditor).
pub async fn show_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<AccountView>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    state
        .ledger
        .read(&state.store, |books| books.ledger().account(AccountId(id)).map(view))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("account {id}")))
}

/// `POST /api/v1/ledger/transfers`: one transfer.
#[derive(Debug, Deserialize)]
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

fn transfer_error(e: TransferError) -> ApiError {
    match e {
        TransferError::ExceedsCredits
        | TransferError::ExceedsDebits
        | TransferError::ExistsWithDifferentFields
        | TransferError::PendingAlreadyPosted
        | TransferError::PendingAlreadyVoided
        | TransferError::PendingExpired => ApiError::conflict(e.code(), e.to_string()),
        _ => ApiError::bad_request(e.code(), e.to_string()),
    }
}

/// `POST /api/v1/ledger/transfers` (operator): applies one transfer; 200 when applied (or
/// already applied under that id), a 4xx with the ledger's code when refused. A refused id stays
/// refused the same way.
pub async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewTransfer>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&[Role::Operator])?;
    let missing =
        |field: &str| ApiError::bad_request("invalid_transfer", format!("a {} transfer needs {field}", body.kind));
    let amount = || body.amount_fen.ok_or_else(|| missing("amount_fen"));
    let accounts = || {
        Ok::<_, ApiError>((
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
            return Err(ApiError::bad_request(
                "invalid_transfer",
                format!("unknown transfer kind {other:?}; kinds are single, pending, post, void"),
            ));
        }
    };
    let transfer = Transfer { id: TransferId(body.id), kind, linked: false, code: body.code };
    let now_s = (now_ms() / 1000) as u64;
    let outcome = state
        .ledger
        .write(&state.store, &caller.actor(), move |books| {
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
        return Err(ApiError::conflict(
            "books_pending",
            "this pending transfer belongs to the books (a voucher claim); it resolves through redemption or expiry",
        ));
    }
    let outcome = outcome.map_err(|e| e.unwrap_or(TransferError::PendingNotFound));
    outcome.map_err(transfer_error)?;
    Ok(Json(serde_json::json!({"id": body.id.to_string(), "status": "applied"})))
}

/// `GET /api/v1/ledger/trial-balance` (operator, auditor).
pub async fn trial_balance(State(state): State<AppState>, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&[Role::Operator, Role::Auditor])?;
    let total = state.ledger.read(&state.store, |books| Ledger::trial_balance(books.ledger())).await?;
    Ok(Json(serde_json::json!({
        "posted": {"debits_fen": total.posted_debits_fen, "credits_fen": total.posted_credits_fen},
        "pending": {"debits_fen": total.pending_debits_fen, "credits_fen": total.pending_credits_fen},
    })))
}
