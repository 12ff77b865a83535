//! Suanwang's money rules over the ledger (`suanwang-ledger`): plain data and functions, no IO,
//! no clock (every command takes `now_ms`).
//!
//! - [`chart`]: the chart of accounts (which account holds whose money) and reason codes.
//! - [`rating`]: usage to fen (the metering rule) and the calendar (months and years in China
//!   Standard Time).
//! - [`program`]: a voucher programme's published rules, as a file.
//! - [`market`]: the market's book, call auctions (`suanwang-market`) and contracts, kept in the
//!   books as facts.
//! - [`books`]: the books: commands that check the rules and move money (rate usage, top up, pay
//!   out, load a programme, apply, decide, claim, redeem, expire), and the facts they record, so
//!   that the server, the simulator and the tests share one implementation.
//!
//! Every split of an amount (platform fee and payout, subsidy and tenant share) uses
//! [`suanwang_ledger::split::split_floor`]: floor to the fen, the rest to the other party.

pub mod books;
pub mod chart;
pub mod market;
pub mod program;
pub mod rating;

pub use books::{Books, Contract, ErrorKind, LineKey, MoneyError, RunMeter, Usage};
pub use program::{PoolFacts, Program, TenantFacts};
