//! The market on the wire: posted and spot prices, orders for reserved capacity, the book's
//! depth, auctions, and quotes. Orders, contracts and auctions are the books' own records
//! (`suanwang-billing`), shown as they are.

use serde::{Deserialize, Serialize};
use suanwang_formats::trace::ModelChoice;

use crate::jobs::{DatasetField, LatencyBody};

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// A pool's offer: what the platform posts for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolPrice {
    /// Pool.
    pub pool: String,
    /// Its accelerator model (the cheapest, for pools with several).
    pub model: String,
    /// Its site's region.
    pub region: String,
    /// Cards.
    pub cards: u32,
    /// Posted on-demand price, fen per card-hour.
    pub list_fen_per_card_hour: u64,
    /// The spot price now (the rule in `suanwang_billing::rating::spot_price_fen`).
    pub spot_fen_per_card_hour: u64,
    /// Cards allocated now, as the leading scheduler last saw them (`None` on a standby).
    pub utilisation_pct: Option<f64>,
}

/// `GET /api/v1/market/prices`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    /// Every pool with accelerators.
    pub pools: Vec<PoolPrice>,
    /// Seconds between auctions.
    pub auction_interval_s: u64,
    /// The last auction's clearing prices: model, region, window start, end, price.
    pub last_clearing: Vec<(String, String, u64, u64, i64)>,
}

/// `POST /api/v1/market/orders`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    /// `buy` (tenants) or `sell` (a pool's provider).
    pub side: String,
    /// Accelerator model (buys; a sell is for its pool's model).
    #[serde(default)]
    pub model: Option<String>,
    /// Region (buys; a sell is in its pool's region).
    #[serde(default)]
    pub region: Option<String>,
    /// Window start, seconds since 1970 (UTC).
    pub start_s: u64,
    /// Window end (exclusive).
    pub end_s: u64,
    /// Cards.
    pub cards: u32,
    /// Limit price, fen per card-hour.
    pub limit_fen_per_card_hour: i64,
    /// Fill whole or not at all.
    #[serde(default)]
    pub all_or_none: bool,
    /// Rest in the book until filled or cancelled.
    #[serde(default = "yes")]
    pub standing: bool,
}

/// One price level of the book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// Limit, fen per card-hour.
    pub price_fen_per_card_hour: i64,
    /// Cards at that price.
    pub cards: u64,
    /// Orders.
    pub orders: u64,
}

/// One product's depth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    /// Model.
    pub model: String,
    /// Region.
    pub region: String,
    /// Window.
    pub start_s: u64,
    /// Window end.
    pub end_s: u64,
    /// Bids, best (highest) first.
    pub buys: Vec<Level>,
    /// Asks, best (lowest) first.
    pub sells: Vec<Level>,
}

/// `GET /api/v1/market/book`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookView {
    /// Depth by product (anonymous).
    pub depth: Vec<Depth>,
    /// The caller's own resting orders.
    pub mine: Vec<suanwang_billing::market::BookOrder>,
}

/// One auction in `GET /api/v1/market/auctions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionSummary {
    /// When (ms since 1970).
    pub at_ms: i64,
    /// Clearing prices: model, region, window start, end, price.
    pub prices: Vec<(String, String, u64, u64, i64)>,
    /// Contracts made.
    pub contracts: usize,
    /// Cards in them.
    pub cards: u64,
}

/// `POST /api/v1/quotes`: what a job would cost where, and whether it would start now. The job
/// is described as in a job body (`accelerators` per task, `tasks`, models, framework,
/// constraints), with `duration_s` its expected run time on the reference card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Cards per task.
    pub accelerators: u32,
    /// Thousandths of each card (below 1000 only with one card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_milli: Option<u16>,
    /// Tasks (a gang).
    #[serde(default = "one")]
    pub tasks: u32,
    /// Expected run time on the reference card, seconds.
    pub duration_s: u64,
    /// Only this model (a shorthand for `accelerator_models: [model]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Accepted models, each a name or `{"model", "speed"}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accelerator_models: Vec<ModelChoice>,
    /// The framework it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// CPU per task, thousandths of a core.
    #[serde(default)]
    pub cpu_milli: u32,
    /// Memory per task.
    #[serde(default)]
    pub memory_mib: u32,
    /// Region the job must stay in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency_region: Option<String>,
    /// Latency bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyBody>,
    /// Input data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetField>,
    /// Price ceiling, fen per card-hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price_fen_per_card_hour: Option<i64>,
    /// Only this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// One option of a quote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuoteOption {
    /// Pool.
    pub pool: String,
    /// The model the job would run on there.
    pub model: String,
    /// Region.
    pub region: String,
    /// Posted price of that model.
    pub list_fen_per_card_hour: u64,
    /// Expected run time on that model (the duration ÷ the job's speed there), seconds.
    pub expected_run_s: u64,
    /// Cost of the expected run at the posted price (the tariff, data transfer excluded).
    pub cost_fen: u64,
    /// Spot price now.
    pub spot_fen_per_card_hour: u64,
    /// Cost of the expected run at the spot price.
    pub spot_cost_fen: u64,
    /// `now` when the scheduler would start the job there now, `queued` when it would wait,
    /// `unknown` on a server that does not schedule (a standby).
    pub expected_start: String,
}

/// A pool a quote leaves out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteAbsent {
    /// Pool.
    pub pool: String,
    /// Why the job cannot run there.
    pub reason: String,
}

/// `POST /api/v1/quotes`' answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Pools that could run the job, cheapest per unit of work first.
    pub options: Vec<QuoteOption>,
    /// Pools that could never run it, with the reason.
    pub absent: Vec<QuoteAbsent>,
}
