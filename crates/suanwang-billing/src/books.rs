//! The books: the ledger plus what the money rules remember (usage rated, programmes,
//! applications, claims, invoice lines), changed only through commands that check the rules, move
//! money in the ledger, and record a **fact**.
//!
//! The history is one list of lines: the ledger's events (its codec) and the facts (`F {json}`).
//! A fact is what happened, with every amount already computed, so replaying a history never
//! re-runs a rule: [`Books::replay_line`] rebuilds the same books even if the rules' code has
//! changed since. A command that is refused changes nothing (a refused ledger transfer is
//! remembered by the ledger, as its idempotency demands, but moves no money).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use suanwang_ledger::split::split_floor;
use suanwang_ledger::{AccountId, AccountSpec, Event, Ledger, Transfer, TransferError, TransferId, TransferKind};

use crate::chart::{self, code};
use crate::program::{Expiry, PoolFacts, Program, TenantFacts};
use crate::rating;

/// Most applications, claims or usage events the books keep (each).
pub const RECORDS_MAX: usize = 10_000_000;

/// How a refusal should be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad values (HTTP 400).
    Invalid,
    /// Something named does not exist (HTTP 404).
    NotFound,
    /// It conflicts with what is there (HTTP 409).
    Conflict,
}

/// A refused command: a stable code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MoneyError {
    /// How to report it.
    pub kind: ErrorKind,
    /// Stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

fn err(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> MoneyError {
    MoneyError { kind, code, message: message.into() }
}

fn ledger_refused(e: TransferError) -> MoneyError {
    let kind = match e {
        TransferError::ExceedsCredits
        | TransferError::ExceedsDebits
        | TransferError::ExistsWithDifferentFields
        | TransferError::PendingAlreadyPosted
        | TransferError::PendingAlreadyVoided
        | TransferError::PendingExpired => ErrorKind::Conflict,
        TransferError::DebitAccountNotFound | TransferError::CreditAccountNotFound => ErrorKind::NotFound,
        _ => ErrorKind::Invalid,
    };
    err(kind, e.code(), format!("the ledger refused the transfer: {e}"))
}

/// An invoice line's key: one job on one pool in one month.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LineKey {
    /// The tenant billed.
    pub tenant: i64,
    /// `YYYY-MM` (China Standard Time).
    pub period: String,
    /// The job.
    pub job: i64,
    /// The pool it ran on.
    pub pool: String,
}

/// One run of a job as the platform metered it: how long it held its allocation, and what the
/// allocation costs an hour (the tariff, `suanwang_model::tariff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeter {
    /// Milliseconds the run held its allocation.
    pub ms: u64,
    /// The allocation's rate, milli-fen per hour.
    pub rate_millifen_per_hour: u64,
}

/// Usage to rate: one run (or a part of one) of one job on one pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Who reported it (`agent:POOL`).
    pub source: String,
    /// The reporter's id for it: `(source, event_id)` is rated once.
    pub event_id: String,
    /// The job.
    pub job: i64,
    /// Its tenant.
    pub tenant: i64,
    /// Where it ran.
    pub pool: PoolFacts,
    /// What it ran under: a market contract's id, or `job:ID` for on-demand work.
    pub contract: String,
    /// Accelerator-milliseconds (thousandths of cards × ms ÷ 1000): what the invoice shows.
    pub card_ms: u64,
    /// The contract's price, or the pool's list price, per card-hour.
    pub price_fen_per_card_hour: u64,
    /// When it was reported (ms since 1970, UTC): decides the invoice period.
    pub at_ms: i64,
    /// How it is priced: the run's time at its allocation's rate. Absent only in usage rated
    /// before the platform metered runs itself; that was priced `card_ms` × the card-hour price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunMeter>,
}

/// A contract a claim is made for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// `contract:ID` from the market, or `job:ID` (an on-demand order through the platform).
    pub id: String,
    /// The buyer.
    pub tenant: i64,
    /// The capacity, once known.
    pub pool: Option<PoolFacts>,
    /// Its term in days.
    pub term_days: u32,
    /// Its value, when known in advance (reserved capacity).
    pub value_fen: Option<u64>,
}

/// Where an application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationState {
    /// Waiting for the programme's administrator.
    Pending,
    /// May claim.
    Approved,
    /// May not.
    Rejected,
}

/// A tenant's application to a programme.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Id (1, 2, …).
    pub id: u64,
    /// Programme.
    pub program: String,
    /// The applicant as it was when it applied.
    pub tenant: TenantFacts,
    /// Provider organisations it is affiliated with (their capacity is not subsidised).
    pub affiliations: Vec<String>,
    /// State.
    pub state: ApplicationState,
    /// Why it was decided so.
    pub reason: String,
    /// When it applied.
    pub at_ms: i64,
}

/// Where a claim stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimState {
    /// Value left to redeem.
    Open,
    /// Fully redeemed.
    Used,
    /// The year ended; what was left went back (or to breakage).
    Expired,
}

/// A claim: a voucher of `face_fen` reserved from a programme's budget for one contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Id (1, 2, …), also its voucher account's number.
    pub id: u64,
    /// Programme.
    pub program: String,
    /// The approved application it is made under.
    pub application: u64,
    /// The tenant.
    pub tenant: i64,
    /// The contract (one claim per contract).
    pub contract: String,
    /// Face value.
    pub face_fen: u64,
    /// Redeemed so far.
    pub redeemed_fen: u64,
    /// The open pending transfer holding the rest of the budget.
    #[serde(with = "id_text")]
    pub budget_pending: Option<u128>,
    /// The open pending transfer holding the rest of the firm's cap.
    #[serde(with = "id_text")]
    pub cap_pending: Option<u128>,
    /// State.
    pub state: ClaimState,
    /// When claimed.
    pub at_ms: i64,
}

impl Claim {
    /// Face value not yet redeemed.
    pub fn remaining_fen(&self) -> u64 {
        self.face_fen - self.redeemed_fen
    }
}

/// A subsidy paid on an invoice line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSubsidy {
    /// The programme.
    pub program: String,
    /// The claim.
    pub claim: u64,
    /// The line's amount this claim has been redeemed against.
    pub redeemed_on_fen: u64,
    /// Paid.
    pub subsidy_fen: u64,
}

/// An invoice line: a job's usage on a pool in a month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Which.
    pub key: LineKey,
    /// The contract it ran under.
    pub contract: String,
    /// The pool's facts.
    pub pool: PoolFacts,
    /// Accelerator-milliseconds.
    pub card_ms: u64,
    /// Charged.
    pub amount_fen: u64,
    /// Subsidies paid on it.
    pub subsidies: Vec<LineSubsidy>,
}

impl Line {
    /// Subsidies paid on it.
    pub fn subsidy_fen(&self) -> u64 {
        self.subsidies.iter().map(|s| s.subsidy_fen).sum()
    }

    /// What the tenant pays: the amount less the subsidies (so subsidy + tenant share = amount).
    pub fn tenant_share_fen(&self) -> u64 {
        self.amount_fen - self.subsidy_fen()
    }
}

/// A programme and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramState {
    /// Its rules.
    pub program: Program,
    /// The year ended and its open claims were closed.
    pub expired: bool,
}

/// What happened (the books' half of the history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// Usage was rated.
    Rated {
        /// The usage.
        usage: Usage,
        /// Charged for it.
        amount_fen: u64,
        /// The platform's part of that.
        fee_fen: u64,
    },
    /// A programme was loaded and funded.
    Program {
        /// Its rules.
        program: Program,
    },
    /// A tenant applied.
    Applied {
        /// The application.
        application: Application,
    },
    /// An application was decided.
    Decided {
        /// Which.
        application: u64,
        /// Approved or rejected.
        state: ApplicationState,
        /// Why.
        reason: String,
    },
    /// A claim was made.
    Claimed {
        /// The claim.
        claim: Claim,
    },
    /// A claim was redeemed against a line.
    Redeemed {
        /// The claim.
        claim: u64,
        /// The line.
        line: LineKey,
        /// The line's amount it was redeemed against.
        line_fen: u64,
        /// Paid.
        subsidy_fen: u64,
        /// The new pending transfers holding the rest (none once used up).
        #[serde(with = "id_text")]
        budget_pending: Option<u128>,
        /// Same, for the cap.
        #[serde(with = "id_text")]
        cap_pending: Option<u128>,
    },
    /// A programme's year ended.
    Expired {
        /// Which.
        program: String,
    },
    /// A market order was placed.
    Ordered {
        /// The order.
        order: crate::market::BookOrder,
    },
    /// A resting order was cancelled.
    Cancelled {
        /// Its id.
        order: u64,
    },
    /// A call auction ran.
    Auctioned {
        /// What it did.
        auction: crate::market::AuctionRecord,
    },
}

/// Where a history ends, to collect what a command added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    ledger: usize,
    facts: usize,
}

/// A programme's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramReport {
    /// Id.
    pub program: String,
    /// Budget.
    pub budget_fen: u64,
    /// Held by open claims.
    pub reserved_fen: u64,
    /// Paid out in subsidies.
    pub paid_fen: u64,
    /// Written off at expiry.
    pub breakage_fen: u64,
    /// Neither reserved nor paid.
    pub available_fen: u64,
    /// Applications, by state.
    pub applications: BTreeMap<String, u64>,
    /// Claims.
    pub claims: u64,
    /// Each firm's use.
    pub firms: Vec<FirmUse>,
    /// The year ended.
    pub expired: bool,
}

/// A firm's use of a programme.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmUse {
    /// The tenant.
    pub tenant: i64,
    /// Its cap, if the programme has one.
    pub cap_fen: Option<u64>,
    /// Reserved by its open claims.
    pub reserved_fen: u64,
    /// Redeemed.
    pub redeemed_fen: u64,
}

/// The books.
#[derive(Clone, Debug, Default)]
pub struct Books {
    ledger: Ledger,
    facts: Vec<Fact>,
    programs: BTreeMap<String, ProgramState>,
    applications: Vec<Application>,
    claims: Vec<Claim>,
    claim_by_contract: HashMap<String, u64>,
    rated: HashMap<(String, String), usize>,
    meters: HashMap<(i64, String, u64), u64>,
    /// Per (job, pool, rate): milliseconds rated so far at that rate.
    run_meters: HashMap<(i64, String, u64), u64>,
    lines: BTreeMap<LineKey, Line>,
    breakage: BTreeMap<String, u64>,
    pub(crate) market: crate::market::MarketState,
}

fn check_amount(amount_fen: u64) -> Result<(), MoneyError> {
    if amount_fen == 0 || amount_fen > suanwang_ledger::AMOUNT_FEN_MAX {
        return Err(err(ErrorKind::Invalid, "amount_invalid", "an amount must be 1 fen or more (at most 10^15)"));
    }
    Ok(())
}

fn now_s(now_ms: i64) -> u64 {
    u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0)
}

fn single(id: TransferId, debit: AccountId, credit: AccountId, amount_fen: u64, code: u16, linked: bool) -> Transfer {
    Transfer { id, kind: TransferKind::Single { debit, credit, amount_fen }, linked, code }
}

fn pending(id: TransferId, debit: AccountId, credit: AccountId, amount_fen: u64, code: u16, linked: bool) -> Transfer {
    Transfer { id, kind: TransferKind::Pending { debit, credit, amount_fen, timeout_s: None }, linked, code }
}

/// Links a chain: every transfer but the last is linked.
fn chain(mut transfers: Vec<Transfer>) -> Vec<Transfer> {
    let n = transfers.len();
    for (i, t) in transfers.iter_mut().enumerate() {
        t.linked = i + 1 < n;
    }
    transfers
}

impl Books {
    /// Empty books with the fixed accounts open.
    pub fn new() -> Books {
        let mut books = Books::default();
        for spec in chart::fixed() {
            // A fresh ledger accepts them.
            let _ = books.ledger.open(spec);
        }
        books
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The ledger, for the raw transfers API (operators' corrections).
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The end of the history now.
    pub fn mark(&self) -> Mark {
        Mark { ledger: self.ledger.events().len(), facts: self.facts.len() }
    }

    /// The history added since `mark`, as lines to store.
    pub fn lines_since(&self, mark: Mark) -> Vec<String> {
        let ledger = self.ledger.events()[mark.ledger..].iter().map(Event::encode);
        let facts = self.facts[mark.facts..].iter().map(|f| {
            format!("F {}", serde_json::to_string(f).unwrap_or_else(|e| format!("{{\"unencodable\":\"{e}\"}}")))
        });
        ledger.chain(facts).collect()
    }

    /// The whole history as lines.
    pub fn lines(&self) -> Vec<String> {
        self.lines_since(Mark { ledger: 0, facts: 0 })
    }

    /// Applies one stored line (a ledger event or a fact) as it happened.
    pub fn replay_line(&mut self, line: &str) -> Result<(), String> {
        if let Some(json) = line.strip_prefix("F ") {
            let fact: Fact = serde_json::from_str(json).map_err(|e| format!("not a fact: {e}: {line:?}"))?;
            self.absorb(fact);
            Ok(())
        } else {
            let event = Event::decode(line)?;
            self.ledger.replay_event(&event)
        }
    }

    /// Records a fact and updates the books by it (commands and replay share `absorb`).
    pub(crate) fn record(&mut self, fact: Fact) {
        self.absorb(fact);
    }

    fn absorb(&mut self, fact: Fact) {
        match &fact {
            Fact::Rated { usage, amount_fen, .. } => {
                self.rated.insert((usage.source.clone(), usage.event_id.clone()), self.facts.len());
                match usage.run {
                    Some(run) => {
                        *self
                            .run_meters
                            .entry((usage.job, usage.pool.pool.clone(), run.rate_millifen_per_hour))
                            .or_default() += run.ms;
                    }
                    None => {
                        *self
                            .meters
                            .entry((usage.job, usage.pool.pool.clone(), usage.price_fen_per_card_hour))
                            .or_default() += usage.card_ms;
                    }
                }
                let key = LineKey {
                    tenant: usage.tenant,
                    period: rating::period(usage.at_ms),
                    job: usage.job,
                    pool: usage.pool.pool.clone(),
                };
                let line = self.lines.entry(key.clone()).or_insert_with(|| Line {
                    key,
                    contract: usage.contract.clone(),
                    pool: usage.pool.clone(),
                    card_ms: 0,
                    amount_fen: 0,
                    subsidies: Vec::new(),
                });
                line.card_ms += usage.card_ms;
                line.amount_fen += amount_fen;
            }
            Fact::Program { program } => {
                self.programs.insert(program.id.clone(), ProgramState { program: program.clone(), expired: false });
            }
            Fact::Applied { application } => self.applications.push(application.clone()),
            Fact::Decided { application, state, reason } => {
                if let Some(a) = self.applications.get_mut(index(*application)) {
                    a.state = *state;
                    a.reason.clone_from(reason);
                }
            }
            Fact::Claimed { claim } => {
                self.claim_by_contract.insert(claim.contract.clone(), claim.id);
                self.claims.push(claim.clone());
            }
            Fact::Redeemed { claim, line, line_fen, subsidy_fen, budget_pending, cap_pending } => {
                let Some(c) = self.claims.get_mut(index(*claim)) else { return self.facts.push(fact) };
                c.redeemed_fen += subsidy_fen;
                c.budget_pending = *budget_pending;
                c.cap_pending = *cap_pending;
                if c.remaining_fen() == 0 {
                    c.state = ClaimState::Used;
                }
                let (program, id) = (c.program.clone(), c.id);
                if let Some(l) = self.lines.get_mut(line) {
                    match l.subsidies.iter_mut().find(|s| s.claim == id) {
                        Some(s) => {
                            s.redeemed_on_fen = *line_fen;
                            s.subsidy_fen += subsidy_fen;
                        }
                        None => l.subsidies.push(LineSubsidy {
                            program,
                            claim: id,
                            redeemed_on_fen: *line_fen,
                            subsidy_fen: *subsidy_fen,
                        }),
                    }
                }
            }
            Fact::Ordered { .. } | Fact::Cancelled { .. } | Fact::Auctioned { .. } => self.market.absorb(&fact),
            Fact::Expired { program } => {
                if let Some(p) = self.programs.get_mut(program) {
                    p.expired = true;
                }
                let breakage = self.programs.get(program).is_some_and(|p| p.program.expiry == Expiry::Breakage);
                for c in self.claims.iter_mut().filter(|c| &c.program == program && c.state == ClaimState::Open) {
                    if breakage {
                        *self.breakage.entry(program.clone()).or_default() += c.remaining_fen();
                    }
                    c.state = ClaimState::Expired;
                    c.budget_pending = None;
                    c.cap_pending = None;
                }
            }
        }
        self.facts.push(fact);
    }

    /// Opens an account if it is not open (the books' accounts are opened on first use).
    fn ensure(&mut self, spec: AccountSpec) -> Result<(), MoneyError> {
        self.ledger.open(spec).map_err(|e| err(ErrorKind::Conflict, e.code(), format!("account {}: {e}", spec.id.0)))
    }

    /// Applies a chain; the first refusal (not the links it broke) is the error.
    fn transfer(&mut self, transfers: &[Transfer], now_ms: i64) -> Result<(), Vec<Result<(), TransferError>>> {
        let results = self.ledger.apply(transfers, now_s(now_ms));
        if results.iter().all(Result::is_ok) { Ok(()) } else { Err(results) }
    }

    /// What an account limited to its credits may still pay: posted credits less all debits.
    fn available_fen(&self, id: AccountId) -> u128 {
        self.ledger
            .account(id)
            .map_or(0, |a| a.credits_posted_fen.saturating_sub(a.debits_posted_fen + a.debits_pending_fen))
    }

    fn first_refusal(results: &[Result<(), TransferError>]) -> (usize, TransferError) {
        results
            .iter()
            .enumerate()
            .find_map(|(i, r)| match r {
                Err(e) if *e != TransferError::LinkedEventFailed => Some((i, *e)),
                _ => None,
            })
            .unwrap_or((0, TransferError::LinkedEventFailed))
    }

    // ---------------------------------------------------------------- metering and billing

    /// Rates usage into a charge to the tenant, paid to the pool's provider less the platform fee
    /// (`fee_bps`, by [`split_floor`]). Idempotent by `(source, event_id)`: a repeat returns the
    /// first charge; a repeat with another job, pool or amount is refused (`usage_conflict`).
    pub fn rate(&mut self, usage: Usage, fee_bps: u32, now_ms: i64) -> Result<(u64, bool), MoneyError> {
        if let Some(&i) = self.rated.get(&(usage.source.clone(), usage.event_id.clone())) {
            let Some(Fact::Rated { usage: first, amount_fen, .. }) = self.facts.get(i) else {
                return Err(err(ErrorKind::Conflict, "usage_conflict", "the usage event is known but not as usage"));
            };
            if first.job != usage.job
                || first.pool.pool != usage.pool.pool
                || first.card_ms != usage.card_ms
                || first.run != usage.run
            {
                return Err(err(
                    ErrorKind::Conflict,
                    "usage_conflict",
                    format!(
                        "usage event {}/{} was rated before with other values ({} ms of job {} on {})",
                        usage.source, usage.event_id, first.card_ms, first.job, first.pool.pool
                    ),
                ));
            }
            return Ok((*amount_fen, false));
        }
        if usage.source.is_empty()
            || usage.event_id.is_empty()
            || usage.source.len() > 200
            || usage.event_id.len() > 200
        {
            return Err(err(
                ErrorKind::Invalid,
                "invalid_usage",
                "usage needs a source and an event id (1–200 characters)",
            ));
        }
        if self.rated.len() >= RECORDS_MAX {
            return Err(err(ErrorKind::Conflict, "books_full", "the books hold the most usage events they may"));
        }
        let amount = match usage.run {
            Some(run) => {
                let key = (usage.job, usage.pool.pool.clone(), run.rate_millifen_per_hour);
                let used = self.run_meters.get(&key).copied().unwrap_or(0);
                rating::run_increment_fen(used, run.ms, run.rate_millifen_per_hour)
            }
            None => {
                let key = (usage.job, usage.pool.pool.clone(), usage.price_fen_per_card_hour);
                let used = self.meters.get(&key).copied().unwrap_or(0);
                rating::increment_fen(used, usage.card_ms, usage.price_fen_per_card_hour)
            }
        };
        let fee = split_floor(amount, fee_bps, amount).share_fen;
        if amount > 0 {
            let cash = chart::tenant_cash(usage.tenant);
            let payable = chart::provider_payable(&usage.pool.pool);
            self.ensure(cash)?;
            self.ensure(payable)?;
            let id = |part: &str| chart::transfer_id(&["usage", &usage.source, &usage.event_id, part]);
            let mut transfers = Vec::new();
            if amount - fee > 0 {
                transfers.push(single(id("charge"), cash.id, payable.id, amount - fee, code::CHARGE, false));
            }
            if fee > 0 {
                transfers.push(single(id("fee"), cash.id, chart::PLATFORM_FEE, fee, code::FEE, false));
            }
            self.transfer(&chain(transfers), now_ms).map_err(|r| ledger_refused(Self::first_refusal(&r).1))?;
        }
        self.record(Fact::Rated { usage, amount_fen: amount, fee_fen: fee });
        Ok((amount, true))
    }

    /// What is left of a programme's budget (neither reserved nor paid).
    pub fn budget_left_fen(&self, program: &str) -> u64 {
        u64::try_from(self.available_fen(chart::program_budget(program).id)).unwrap_or(u64::MAX)
    }

    /// What is left of a firm's annual cap in a programme (`None`: the programme has no cap).
    pub fn cap_left_fen(&self, program: &str, tenant: i64) -> Option<u64> {
        let cap = self.programs.get(program)?.program.firm_cap_fen?;
        let spec = chart::firm_cap(program, tenant);
        Some(match self.ledger.account(spec.id) {
            Some(_) => u64::try_from(self.available_fen(spec.id)).unwrap_or(u64::MAX),
            // Not approved yet: the whole cap.
            None => cap,
        })
    }

    /// Whether a usage event has been rated.
    pub fn is_rated(&self, source: &str, event_id: &str) -> bool {
        self.rated.contains_key(&(source.to_owned(), event_id.to_owned()))
    }

    /// Money a tenant paid in (idempotent by `key`).
    pub fn top_up(&mut self, tenant: i64, amount_fen: u64, key: &str, now_ms: i64) -> Result<(), MoneyError> {
        check_amount(amount_fen)?;
        let cash = chart::tenant_cash(tenant);
        self.ensure(cash)?;
        let id = chart::transfer_id(&["top-up", &tenant.to_string(), key]);
        let t = single(id, chart::WORLD, cash.id, amount_fen, code::TOP_UP, false);
        self.transfer(&[t], now_ms).map_err(|r| ledger_refused(Self::first_refusal(&r).1))
    }

    /// A payout to a pool's provider, at most what it is owed (idempotent by `key`).
    pub fn payout(&mut self, pool: &str, amount_fen: u64, key: &str, now_ms: i64) -> Result<(), MoneyError> {
        check_amount(amount_fen)?;
        let payable = chart::provider_payable(pool);
        let id = chart::transfer_id(&["payout", pool, key]);
        let owed = self.available_fen(payable.id);
        if self.ledger.outcome(id).is_none() && owed < u128::from(amount_fen) {
            return Err(err(
                ErrorKind::Conflict,
                "exceeds_payable",
                format!("pool {pool} is owed {owed} fen, less than {amount_fen}"),
            ));
        }
        let t = single(id, payable.id, chart::WORLD, amount_fen, code::PAYOUT, false);
        self.transfer(&[t], now_ms).map_err(|r| match Self::first_refusal(&r).1 {
            TransferError::ExceedsCredits => {
                err(ErrorKind::Conflict, "exceeds_payable", format!("pool {pool} is owed less than {amount_fen} fen"))
            }
            e => ledger_refused(e),
        })
    }

    /// An invoice line.
    pub fn line(&self, key: &LineKey) -> Option<&Line> {
        self.lines.get(key)
    }

    /// A tenant's invoice lines for a period, by job.
    pub fn invoice(&self, tenant: i64, period: &str) -> Vec<&Line> {
        self.lines.values().filter(|l| l.key.tenant == tenant && l.key.period == period).collect()
    }

    /// The periods a tenant has lines in (all tenants: `None`), with their totals
    /// `(tenant, period, amount, subsidy)`.
    pub fn invoices(&self, tenant: Option<i64>) -> Vec<(i64, String, u64, u64)> {
        let mut out: BTreeMap<(i64, String), (u64, u64)> = BTreeMap::new();
        for l in self.lines.values().filter(|l| tenant.is_none_or(|t| t == l.key.tenant)) {
            let e = out.entry((l.key.tenant, l.key.period.clone())).or_default();
            e.0 += l.amount_fen;
            e.1 += l.subsidy_fen();
        }
        out.into_iter().map(|((t, p), (a, s))| (t, p, a, s)).collect()
    }

    /// Every line, by key.
    pub fn all_lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.values()
    }

    // ---------------------------------------------------------------- programmes

    /// A programme.
    pub fn program(&self, id: &str) -> Option<&ProgramState> {
        self.programs.get(id)
    }

    /// Every programme.
    pub fn programs(&self) -> impl Iterator<Item = &ProgramState> {
        self.programs.values()
    }

    /// An application.
    pub fn application(&self, id: u64) -> Option<&Application> {
        self.applications.get(index(id))
    }

    /// Every application.
    pub fn applications(&self) -> &[Application] {
        &self.applications
    }

    /// A claim.
    pub fn claim(&self, id: u64) -> Option<&Claim> {
        self.claims.get(index(id))
    }

    /// Every claim.
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    /// Loads a programme and funds its budget from its funders (the same file again is a no-op).
    pub fn load_program(&mut self, program: Program, now_ms: i64) -> Result<(), MoneyError> {
        program.validate().map_err(|m| err(ErrorKind::Invalid, "invalid_program", m))?;
        if let Some(existing) = self.programs.get(&program.id) {
            if existing.program == program {
                return Ok(());
            }
            return Err(err(
                ErrorKind::Conflict,
                "program_exists",
                format!(
                    "programme {} is loaded with other rules; a programme never changes, load it under a new id",
                    program.id
                ),
            ));
        }
        let budget = chart::program_budget(&program.id);
        self.ensure(budget)?;
        let transfers: Vec<Transfer> = program
            .funding()
            .iter()
            .enumerate()
            .filter(|(_, (_, fen))| *fen > 0)
            .map(|(i, (_, fen))| {
                let id = chart::transfer_id(&["fund", &program.id, &i.to_string()]);
                single(id, chart::WORLD, budget.id, *fen, code::FUNDING, false)
            })
            .collect();
        self.transfer(&chain(transfers), now_ms).map_err(|r| ledger_refused(Self::first_refusal(&r).1))?;
        self.record(Fact::Program { program });
        Ok(())
    }

    fn open_program(&self, id: &str, now_ms: i64) -> Result<&ProgramState, MoneyError> {
        let p = self
            .programs
            .get(id)
            .ok_or_else(|| err(ErrorKind::NotFound, "program_not_found", format!("no programme {id}")))?;
        let year = p.program.fiscal_year;
        if p.expired || now_ms >= rating::year_start_ms(year + 1) {
            return Err(err(ErrorKind::Conflict, "program_expired", format!("programme {id} ended with {year}")));
        }
        if now_ms < rating::year_start_ms(year) {
            return Err(err(ErrorKind::Conflict, "program_not_started", format!("programme {id} opens in {year}")));
        }
        Ok(p)
    }

    /// A tenant applies (applying again returns the first application).
    pub fn apply(
        &mut self,
        program: &str,
        tenant: TenantFacts,
        affiliations: Vec<String>,
        now_ms: i64,
    ) -> Result<Application, MoneyError> {
        let p = self.open_program(program, now_ms)?;
        if let Some(a) = self.applications.iter().find(|a| a.program == program && a.tenant.id == tenant.id) {
            return Ok(a.clone());
        }
        if let Some(why) = p.program.ineligible_tenant(&tenant) {
            return Err(err(ErrorKind::Conflict, "not_eligible", why));
        }
        if affiliations.len() > 64 || affiliations.iter().any(|a| a.trim().is_empty() || a.len() > 200) {
            return Err(err(
                ErrorKind::Invalid,
                "invalid_application",
                "affiliations: at most 64 names of 1–200 characters",
            ));
        }
        if self.applications.len() >= RECORDS_MAX {
            return Err(err(ErrorKind::Conflict, "books_full", "the books hold the most applications they may"));
        }
        let application = Application {
            id: self.applications.len() as u64 + 1,
            program: program.to_owned(),
            tenant,
            affiliations,
            state: ApplicationState::Pending,
            reason: String::new(),
            at_ms: now_ms,
        };
        self.record(Fact::Applied { application: application.clone() });
        Ok(application)
    }

    /// The programme's administrator approves or rejects an application. Approval grants the
    /// firm's annual cap (deciding the same way again is a no-op).
    pub fn decide(
        &mut self,
        application: u64,
        approve: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<Application, MoneyError> {
        let a = self.application(application).cloned().ok_or_else(|| {
            err(ErrorKind::NotFound, "application_not_found", format!("no application {application}"))
        })?;
        let state = if approve { ApplicationState::Approved } else { ApplicationState::Rejected };
        if a.state == state {
            return Ok(a);
        }
        if a.state != ApplicationState::Pending {
            return Err(err(
                ErrorKind::Conflict,
                "application_decided",
                format!("application {application} is already {:?}", a.state),
            ));
        }
        let cap = self.open_program(&a.program, now_ms)?.program.firm_cap_fen;
        if let (true, Some(cap_fen)) = (approve, cap) {
            let spec = chart::firm_cap(&a.program, a.tenant.id);
            self.ensure(spec)?;
            let id = chart::transfer_id(&["cap", &a.program, &a.tenant.id.to_string()]);
            let t = single(id, chart::WORLD, spec.id, cap_fen, code::CAP_GRANT, false);
            self.transfer(&[t], now_ms).map_err(|r| ledger_refused(Self::first_refusal(&r).1))?;
        }
        let reason = reason.chars().take(500).collect::<String>();
        self.record(Fact::Decided { application, state, reason });
        Ok(self.applications[index(application)].clone())
    }

    /// A claim for a contract: reserves `face_fen` of the budget and of the firm's cap (pending
    /// transfers). One claim per contract: the same claim again returns the first.
    pub fn file_claim(
        &mut self,
        program: &str,
        contract: &Contract,
        face_fen: u64,
        now_ms: i64,
    ) -> Result<Claim, MoneyError> {
        let p = self.open_program(program, now_ms)?.program.clone();
        if let Some(&id) = self.claim_by_contract.get(&contract.id) {
            let c = &self.claims[index(id)];
            if c.program == program && c.tenant == contract.tenant && c.face_fen == face_fen {
                return Ok(c.clone());
            }
            return Err(err(
                ErrorKind::Conflict,
                "claim_exists",
                format!("{} already has claim {id} (one claim per contract)", contract.id),
            ));
        }
        let application = self
            .applications
            .iter()
            .find(|a| a.program == program && a.tenant.id == contract.tenant)
            .cloned()
            .ok_or_else(|| {
                err(ErrorKind::Conflict, "not_approved", format!("the tenant has not applied to {program}"))
            })?;
        if application.state != ApplicationState::Approved {
            return Err(err(
                ErrorKind::Conflict,
                "not_approved",
                format!("application {} to {program} is {:?}", application.id, application.state),
            ));
        }
        if face_fen == 0 || face_fen > suanwang_ledger::AMOUNT_FEN_MAX {
            return Err(err(ErrorKind::Invalid, "amount_invalid", "a claim's amount must be above 0"));
        }
        if let Some(max) = p.max_term_days
            && contract.term_days > max
        {
            return Err(err(
                ErrorKind::Conflict,
                "term_too_long",
                format!(
                    "{} runs {} days; {program} subsidises contracts of at most {max}",
                    contract.id, contract.term_days
                ),
            ));
        }
        if let Some(pool) = &contract.pool {
            self.check_pool(&p, &application, pool)?;
        }
        if let Some(value) = contract.value_fen {
            let best = [false, true].map(|d| p.ratio_bps(&application.tenant.kind, d)).into_iter().max().unwrap_or(0);
            let most = split_floor(value, best, value).share_fen;
            if face_fen > most {
                return Err(err(
                    ErrorKind::Conflict,
                    "claim_exceeds_ratio",
                    format!("{program} pays at most {best} bps of the contract's {value} fen: {most} fen"),
                ));
            }
        }
        if self.claims.len() >= RECORDS_MAX {
            return Err(err(ErrorKind::Conflict, "books_full", "the books hold the most claims they may"));
        }
        let budget_left = self.available_fen(chart::program_budget(program).id);
        if budget_left < u128::from(face_fen) {
            return Err(err(
                ErrorKind::Conflict,
                "exceeds_budget",
                format!("{program}'s budget has {budget_left} fen left, less than {face_fen}"),
            ));
        }
        if p.firm_cap_fen.is_some() {
            let cap_left = self.available_fen(chart::firm_cap(program, contract.tenant).id);
            if cap_left < u128::from(face_fen) {
                return Err(err(
                    ErrorKind::Conflict,
                    "exceeds_firm_cap",
                    format!("the firm's annual cap in {program} has {cap_left} fen left, less than {face_fen}"),
                ));
            }
        }
        let id = self.claims.len() as u64 + 1;
        let voucher = chart::voucher(id);
        self.ensure(voucher)?;
        let budget = chart::program_budget(program).id;
        let n = self.ledger.events().len().to_string();
        let budget_pending = chart::transfer_id(&["claim", program, &id.to_string(), "budget", &n]);
        let mut transfers = vec![pending(budget_pending, budget, voucher.id, face_fen, code::CLAIM_BUDGET, false)];
        let cap_pending = p.firm_cap_fen.map(|_| {
            let tid = chart::transfer_id(&["claim", program, &id.to_string(), "cap", &n]);
            let cap = chart::firm_cap(program, contract.tenant).id;
            transfers.push(pending(tid, cap, chart::WORLD, face_fen, code::CLAIM_CAP, false));
            tid
        });
        if let Err(results) = self.transfer(&chain(transfers), now_ms) {
            return Err(match Self::first_refusal(&results) {
                (0, TransferError::ExceedsCredits) => err(
                    ErrorKind::Conflict,
                    "exceeds_budget",
                    format!("{program}'s budget has less than {face_fen} fen left"),
                ),
                (1, TransferError::ExceedsCredits) => err(
                    ErrorKind::Conflict,
                    "exceeds_firm_cap",
                    format!("the firm's annual cap in {program} has less than {face_fen} fen left"),
                ),
                (_, e) => ledger_refused(e),
            });
        }
        let claim = Claim {
            id,
            program: program.to_owned(),
            application: application.id,
            tenant: contract.tenant,
            contract: contract.id.clone(),
            face_fen,
            redeemed_fen: 0,
            budget_pending: Some(budget_pending.0),
            cap_pending: cap_pending.map(|t| t.0),
            state: ClaimState::Open,
            at_ms: now_ms,
        };
        self.record(Fact::Claimed { claim: claim.clone() });
        Ok(claim)
    }

    fn check_pool(&self, p: &Program, application: &Application, pool: &PoolFacts) -> Result<(), MoneyError> {
        if let Some(why) = p.ineligible_pool(pool) {
            return Err(err(ErrorKind::Conflict, "pool_not_eligible", why));
        }
        if application.affiliations.iter().any(|a| a.trim().eq_ignore_ascii_case(pool.provider.trim())) {
            return Err(err(
                ErrorKind::Conflict,
                "provider_affiliated",
                format!("provider {} is affiliated with the buyer; {} does not subsidise it", pool.provider, p.id),
            ));
        }
        Ok(())
    }

    /// Redeems a claim against an invoice line of its contract: pays
    /// `floor((line − already redeemed on) × ratio)`, at most what is left of the voucher and of
    /// the line, from the budget to the tenant. The rest of the voucher stays reserved.
    pub fn redeem(&mut self, claim: u64, line: &LineKey, now_ms: i64) -> Result<(u64, Claim), MoneyError> {
        let c = self
            .claim(claim)
            .cloned()
            .ok_or_else(|| err(ErrorKind::NotFound, "claim_not_found", format!("no claim {claim}")))?;
        let p = self.open_program(&c.program, now_ms)?.program.clone();
        if c.state != ClaimState::Open || c.remaining_fen() == 0 {
            return Err(err(
                ErrorKind::Conflict,
                "voucher_used_up",
                format!("claim {claim} has nothing left to redeem"),
            ));
        }
        let l = self.lines.get(line).cloned().ok_or_else(|| {
            err(
                ErrorKind::NotFound,
                "invoice_not_found",
                format!(
                    "tenant {} has no invoice line for job {} on {} in {}",
                    line.tenant, line.job, line.pool, line.period
                ),
            )
        })?;
        if l.key.tenant != c.tenant || l.contract != c.contract {
            return Err(err(
                ErrorKind::Conflict,
                "line_not_in_contract",
                format!("the line is for {}, the claim for {}", l.contract, c.contract),
            ));
        }
        let application = self.applications[index(c.application)].clone();
        self.check_pool(&p, &application, &l.pool)?;
        for other in l.subsidies.iter().filter(|s| s.program != c.program) {
            let other_stacks = self.programs.get(&other.program).is_some_and(|o| o.program.stacking);
            if !(p.stacking && other_stacks) {
                return Err(err(
                    ErrorKind::Conflict,
                    "stacking_not_allowed",
                    format!("the line is already subsidised by {}; the programmes do not stack", other.program),
                ));
            }
        }
        let on = l.subsidies.iter().find(|s| s.claim == claim).map_or(0, |s| s.redeemed_on_fen);
        let delta = l.amount_fen - on;
        if delta == 0 {
            return Err(err(
                ErrorKind::Conflict,
                "already_redeemed",
                format!("claim {claim} is redeemed on all of this line"),
            ));
        }
        let ratio = p.ratio_bps(&application.tenant.kind, l.pool.domestic);
        let room = c.remaining_fen().min(l.amount_fen - l.subsidy_fen());
        let subsidy = split_floor(delta, ratio, room).share_fen;
        if subsidy == 0 {
            return Err(err(
                ErrorKind::Conflict,
                "nothing_to_redeem",
                format!("{ratio} bps of {delta} fen is less than a fen"),
            ));
        }
        let rest = c.remaining_fen() - subsidy;
        let voucher = chart::voucher(claim).id;
        let cash = chart::tenant_cash(c.tenant);
        self.ensure(cash)?;
        let n = self.ledger.events().len().to_string();
        let tid = |part: &str| chart::transfer_id(&["redeem", &claim.to_string(), part, &n]);
        let mut transfers = Vec::new();
        let budget_pending = c.budget_pending.map(TransferId);
        if let Some(open) = budget_pending {
            transfers.push(Transfer {
                id: tid("post-budget"),
                kind: TransferKind::PostPending { pending: open, amount_fen: Some(subsidy) },
                linked: false,
                code: code::CLAIM_BUDGET,
            });
        }
        let new_budget = (rest > 0).then(|| tid("budget"));
        if let Some(id) = new_budget {
            transfers.push(pending(id, chart::program_budget(&c.program).id, voucher, rest, code::CLAIM_BUDGET, false));
        }
        if let Some(open) = c.cap_pending.map(TransferId) {
            transfers.push(Transfer {
                id: tid("post-cap"),
                kind: TransferKind::PostPending { pending: open, amount_fen: Some(subsidy) },
                linked: false,
                code: code::CLAIM_CAP,
            });
        }
        let new_cap = (rest > 0 && c.cap_pending.is_some()).then(|| tid("cap"));
        if let Some(id) = new_cap {
            transfers.push(pending(
                id,
                chart::firm_cap(&c.program, c.tenant).id,
                chart::WORLD,
                rest,
                code::CLAIM_CAP,
                false,
            ));
        }
        transfers.push(single(tid("subsidy"), voucher, cash.id, subsidy, code::SUBSIDY, false));
        self.transfer(&chain(transfers), now_ms).map_err(|r| ledger_refused(Self::first_refusal(&r).1))?;
        self.record(Fact::Redeemed {
            claim,
            line: line.clone(),
            line_fen: l.amount_fen,
            subsidy_fen: subsidy,
            budget_pending: new_budget.map(|t| t.0),
            cap_pending: new_cap.map(|t| t.0),
        });
        Ok((subsidy, self.claims[index(claim)].clone()))
    }

    /// Ends a programme's year: open claims are voided, their rest returning to the budget or
    /// written off to breakage as the programme says (again: a no-op).
    pub fn expire_program(&mut self, program: &str, now_ms: i64) -> Result<(), MoneyError> {
        let p = self
            .programs
            .get(program)
            .ok_or_else(|| err(ErrorKind::NotFound, "program_not_found", format!("no programme {program}")))?;
        if p.expired {
            return Ok(());
        }
        let end = rating::year_start_ms(p.program.fiscal_year + 1);
        if now_ms < end {
            return Err(err(
                ErrorKind::Conflict,
                "program_not_ended",
                format!("programme {program} runs until {end} ms"),
            ));
        }
        let breakage = p.program.expiry == Expiry::Breakage;
        let budget = chart::program_budget(program).id;
        let open: Vec<Claim> =
            self.claims.iter().filter(|c| c.program == program && c.state == ClaimState::Open).cloned().collect();
        let mut transfers = Vec::new();
        for c in &open {
            let tid = |part: &str| chart::transfer_id(&["expire", &c.id.to_string(), part]);
            if let Some(b) = c.budget_pending {
                transfers.push(Transfer {
                    id: tid("budget"),
                    kind: TransferKind::VoidPending { pending: TransferId(b) },
                    linked: false,
                    code: code::CLAIM_BUDGET,
                });
            }
            if let Some(cap) = c.cap_pending {
                transfers.push(Transfer {
                    id: tid("cap"),
                    kind: TransferKind::VoidPending { pending: TransferId(cap) },
                    linked: false,
                    code: code::CLAIM_CAP,
                });
            }
            if breakage && c.remaining_fen() > 0 {
                transfers.push(single(
                    tid("breakage"),
                    budget,
                    chart::BREAKAGE,
                    c.remaining_fen(),
                    code::BREAKAGE,
                    false,
                ));
            }
        }
        for batch in transfers.chunks(suanwang_ledger::BATCH_MAX) {
            // Each void and write-off stands alone: a void of an already-resolved transfer cannot
            // happen (the books track them), and a retry is idempotent by id.
            let results = self.ledger.apply(batch, now_s(now_ms));
            if let Some(e) = results.iter().find_map(|r| r.err()) {
                return Err(ledger_refused(e));
            }
        }
        self.record(Fact::Expired { program: program.to_owned() });
        Ok(())
    }

    /// A programme's figures.
    pub fn report(&self, program: &str) -> Option<ProgramReport> {
        let p = self.programs.get(program)?;
        let mut firms: BTreeMap<i64, FirmUse> = BTreeMap::new();
        let (mut reserved, mut paid) = (0u64, 0u64);
        for c in self.claims.iter().filter(|c| c.program == program) {
            let f = firms.entry(c.tenant).or_insert(FirmUse {
                tenant: c.tenant,
                cap_fen: p.program.firm_cap_fen,
                reserved_fen: 0,
                redeemed_fen: 0,
            });
            f.redeemed_fen += c.redeemed_fen;
            paid += c.redeemed_fen;
            if c.state == ClaimState::Open {
                f.reserved_fen += c.remaining_fen();
                reserved += c.remaining_fen();
            }
        }
        let mut applications = BTreeMap::new();
        for a in self.applications.iter().filter(|a| a.program == program) {
            let state = match a.state {
                ApplicationState::Pending => "pending",
                ApplicationState::Approved => "approved",
                ApplicationState::Rejected => "rejected",
            };
            *applications.entry(state.to_owned()).or_default() += 1;
        }
        let breakage = self.breakage.get(program).copied().unwrap_or(0);
        Some(ProgramReport {
            program: program.to_owned(),
            budget_fen: p.program.budget_fen,
            reserved_fen: reserved,
            paid_fen: paid,
            breakage_fen: breakage,
            available_fen: p.program.budget_fen - reserved - paid - breakage,
            applications,
            claims: self.claims.iter().filter(|c| c.program == program).count() as u64,
            firms: firms.into_values().collect(),
            expired: p.expired,
        })
    }
}

/// Transfer ids as decimal text in JSON (a 128-bit number does not survive JSON readers, serde's
/// internally tagged enums included).
mod id_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_some(&id.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| t.parse::<u128>().map_err(serde::de::Error::custom)).transpose()
    }
}

fn index(id: u64) -> usize {
    usize::try_from(id).unwrap_or(usize::MAX).wrapping_sub(1)
}
