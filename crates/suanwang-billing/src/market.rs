//! The market in the books: limit orders for reserved capacity, call auctions, and the contracts
//! they make. The auction itself is `suanwang-market`'s; this module keeps the book and the
//! contracts as facts, so they persist, replay and are audited with the rest of the money.
//!
//! - A **resource class** is an accelerator model in a region (`A800-SXM4-80GB` in `CN-GD`); a
//!   **product** is a class and a delivery window. Classes are numbered in the order they first
//!   appear (the number is only the auction's key).
//! - Buyers are tenants; sellers are pools (their providers). An order is idempotent by its
//!   owner's key: the same key with the same fields is the same order, with other fields a
//!   conflict.
//! - At each auction every resting order takes part; fills become **contracts** at the uniform
//!   price; standing orders keep what did not fill; the others leave the book.
//! - A contract fixes the price of the buyer's usage on the seller's pool in its window, for up to
//!   its cards: jobs that name it are rated at its price. No money moves when it is made
//!   (take-or-pay is not modelled).
//! - **Conservation.** A pool never promises more cards than it has: at every instant, its
//!   contracts and its resting sell orders together hold at most its cards. A sell order that
//!   would break this is refused (`oversold`); an auction leaves out, and takes from the book,
//!   any sell order that would (one placed before a pool shrank).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use suanwang_market::{Order, Product, Side};

use crate::books::{Books, ErrorKind, Fact, MoneyError};

/// Most orders resting in the book.
pub const BOOK_MAX: usize = 100_000;

/// Longest delivery window: a year and a day.
pub const WINDOW_S_MAX: u64 = 366 * 86_400;

/// Who placed an order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// A tenant (buys).
    Tenant(i64),
    /// A pool, for its provider (sells).
    Pool(String),
}

/// An order as the books keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookOrder {
    /// Id (1, 2, …).
    pub id: u64,
    /// Who.
    pub owner: Owner,
    /// `buy` or `sell`.
    pub side: String,
    /// Accelerator model.
    pub model: String,
    /// Region.
    pub region: String,
    /// Delivery window (seconds since 1970, UTC).
    pub start_s: u64,
    /// End of the window (exclusive).
    pub end_s: u64,
    /// Cards left.
    pub cards: u32,
    /// Limit, fen per card-hour.
    pub limit_fen_per_card_hour: i64,
    /// Fills whole or not at all.
    pub all_or_none: bool,
    /// Rests after an auction it did not fully fill in.
    pub standing: bool,
    /// The owner's idempotency key.
    pub key: String,
    /// When placed (ms).
    pub at_ms: i64,
}

/// A contract: the buyer may use `cards` of the seller's pool in the window at the price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketContract {
    /// Id (1, 2, …); `contract:ID` elsewhere.
    pub id: u64,
    /// The buyer.
    pub tenant: i64,
    /// The seller's pool.
    pub pool: String,
    /// Accelerator model.
    pub model: String,
    /// Region.
    pub region: String,
    /// Window start (s).
    pub start_s: u64,
    /// Window end (s, exclusive).
    pub end_s: u64,
    /// Cards.
    pub cards: u32,
    /// The auction's price, fen per card-hour.
    pub price_fen_per_card_hour: i64,
    /// The buy and sell orders it came from.
    pub orders: (u64, u64),
    /// The auction that made it (ms).
    pub at_ms: i64,
}

impl MarketContract {
    /// Its value if fully used: cards × hours × price, floored to the fen.
    pub fn value_fen(&self) -> u64 {
        let card_ms = u64::from(self.cards).saturating_mul((self.end_s - self.start_s).saturating_mul(1000));
        crate::rating::cost_fen(card_ms, u64::try_from(self.price_fen_per_card_hour).unwrap_or(0))
    }

    /// Its term in days, rounded up.
    pub fn term_days(&self) -> u32 {
        u32::try_from((self.end_s - self.start_s).div_ceil(86_400)).unwrap_or(u32::MAX)
    }
}

/// One auction's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionRecord {
    /// When (ms).
    pub at_ms: i64,
    /// Each product that traded: model, region, window, price.
    pub prices: Vec<(String, String, u64, u64, i64)>,
    /// Contracts made.
    pub contracts: Vec<MarketContract>,
    /// What each resting order has left after it (orders not listed left the book).
    pub book_after: Vec<(u64, u32)>,
}

/// A new order's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Who.
    pub owner: Owner,
    /// Buy (tenants) or sell (pools).
    pub side: Side,
    /// Accelerator model.
    pub model: String,
    /// Region.
    pub region: String,
    /// Window.
    pub start_s: u64,
    /// Window end.
    pub end_s: u64,
    /// Cards.
    pub cards: u32,
    /// Limit.
    pub limit_fen_per_card_hour: i64,
    /// All or none.
    pub all_or_none: bool,
    /// Standing.
    pub standing: bool,
    /// Idempotency key (1–128 characters).
    pub key: String,
    /// For a sell: the selling pool's cards (what it may promise at any instant).
    pub pool_cards: Option<u32>,
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn err(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> MoneyError {
    MoneyError { kind, code, message: message.into() }
}

/// The market's part of the books.
#[derive(Clone, Debug, Default)]
pub struct MarketState {
    pub(crate) orders: BTreeMap<u64, BookOrder>,
    /// Every order as it was placed (for retries of its key), by id.
    pub(crate) placed: BTreeMap<u64, BookOrder>,
    pub(crate) next_order: u64,
    pub(crate) keys: BTreeMap<(Owner, String), u64>,
    pub(crate) contracts: Vec<MarketContract>,
    pub(crate) auctions: Vec<AuctionRecord>,
}

impl MarketState {
    pub(crate) fn absorb(&mut self, fact: &Fact) {
        match fact {
            Fact::Ordered { order } => {
                self.keys.insert((order.owner.clone(), order.key.clone()), order.id);
                self.next_order = self.next_order.max(order.id);
                self.orders.insert(order.id, order.clone());
                self.placed.insert(order.id, order.clone());
            }
            Fact::Cancelled { order } => {
                self.orders.remove(order);
            }
            Fact::Auctioned { auction } => {
                let left: BTreeMap<u64, u32> = auction.book_after.iter().copied().collect();
                self.orders.retain(|id, _| left.contains_key(id));
                for (id, cards) in &left {
                    if let Some(o) = self.orders.get_mut(id) {
                        o.cards = *cards;
                    }
                }
                self.contracts.extend(auction.contracts.iter().cloned());
                self.auctions.push(auction.clone());
            }
            _ => {}
        }
    }
}

impl Books {
    /// Resting orders, by id.
    pub fn book(&self) -> impl Iterator<Item = &BookOrder> {
        self.market.orders.values()
    }

    /// Every contract, oldest first.
    pub fn contracts(&self) -> &[MarketContract] {
        &self.market.contracts
    }

    /// A contract.
    pub fn contract(&self, id: u64) -> Option<&MarketContract> {
        self.market.contracts.get(usize::try_from(id).unwrap_or(usize::MAX).wrapping_sub(1))
    }

    /// Every auction's result, oldest first.
    pub fn auctions(&self) -> &[AuctionRecord] {
        &self.market.auctions
    }

    /// Places an order; `true` when it is new (the same key with the same fields again returns the
    /// first order and `false`).
    pub fn place_order(&mut self, new: NewOrder, now_ms: i64) -> Result<(BookOrder, bool), MoneyError> {
        if new.key.is_empty() || new.key.len() > 128 {
            return Err(err(
                ErrorKind::Invalid,
                "invalid_key",
                "an order needs an idempotency key of 1–128 characters",
            ));
        }
        if let Some(id) = self.market.keys.get(&(new.owner.clone(), new.key.clone())) {
            let first = self.market.placed.get(id).cloned();
            let same = first.as_ref().is_some_and(|o| {
                o.side == side_name(new.side)
                    && o.model == new.model
                    && o.region == new.region
                    && (o.start_s, o.end_s) == (new.start_s, new.end_s)
                    && o.limit_fen_per_card_hour == new.limit_fen_per_card_hour
                    && o.cards == new.cards
                    && (o.all_or_none, o.standing) == (new.all_or_none, new.standing)
            });
            return match first {
                Some(o) if same => Ok((self.market.orders.get(&o.id).cloned().unwrap_or(o), false)),
                _ => Err(err(
                    ErrorKind::Conflict,
                    "idempotency_conflict",
                    format!("key {:?} was used for another order ({id})", new.key),
                )),
            };
        }
        let order = Order {
            id: 0,
            seq: 0,
            side: new.side,
            product: Product { class: 0, start_s: new.start_s, end_s: new.end_s },
            cards: new.cards,
            limit_fen_per_card_hour: new.limit_fen_per_card_hour,
            all_or_none: new.all_or_none,
            standing: new.standing,
        };
        order.validate().map_err(|e| err(ErrorKind::Invalid, e.code(), e.to_string()))?;
        let now_s = u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0);
        if new.start_s < now_s {
            return Err(err(ErrorKind::Invalid, "window_past", "the delivery window must start in the future"));
        }
        if new.end_s - new.start_s > WINDOW_S_MAX {
            return Err(err(ErrorKind::Invalid, "window_too_long", "a delivery window is at most a year and a day"));
        }
        if self.market.orders.len() >= BOOK_MAX {
            return Err(err(ErrorKind::Conflict, "book_full", format!("the book holds {BOOK_MAX} orders")));
        }
        if let (Side::Sell, Owner::Pool(pool)) = (new.side, &new.owner) {
            let cards = new.pool_cards.unwrap_or(0);
            let promised = self.promised_cards(pool, new.start_s, new.end_s, None);
            if u64::from(promised) + u64::from(new.cards) > u64::from(cards) {
                return Err(err(
                    ErrorKind::Conflict,
                    "oversold",
                    format!(
                        "pool {pool} has {cards} cards and already promises {promised} of them in that window \
                         (contracts and resting sell orders); it can sell at most {} more",
                        cards.saturating_sub(promised)
                    ),
                ));
            }
        }
        let stored = BookOrder {
            id: self.market.next_order + 1,
            owner: new.owner,
            side: side_name(new.side).to_owned(),
            model: new.model,
            region: new.region,
            start_s: new.start_s,
            end_s: new.end_s,
            cards: new.cards,
            limit_fen_per_card_hour: new.limit_fen_per_card_hour,
            all_or_none: new.all_or_none,
            standing: new.standing,
            key: new.key,
            at_ms: now_ms,
        };
        self.record(Fact::Ordered { order: stored.clone() });
        Ok((stored, true))
    }

    /// Takes a resting order out of the book (only its owner).
    pub fn cancel_order(&mut self, owner: &Owner, id: u64) -> Result<BookOrder, MoneyError> {
        let order =
            self.market.orders.get(&id).filter(|o| &o.owner == owner).cloned().ok_or_else(|| {
                err(ErrorKind::NotFound, "order_not_found", format!("no resting order {id} of yours"))
            })?;
        self.record(Fact::Cancelled { order: id });
        Ok(order)
    }

    /// The most cards `pool` promises at any instant of `[start_s, end_s)`: its contracts and its
    /// resting sell orders (leaving out order `except`).
    pub fn promised_cards(&self, pool: &str, start_s: u64, end_s: u64, except: Option<u64>) -> u32 {
        let mut spans: Vec<(u64, u64, u32)> =
            self.market.contracts.iter().filter(|c| c.pool == pool).map(|c| (c.start_s, c.end_s, c.cards)).collect();
        spans.extend(
            self.market
                .orders
                .values()
                .filter(|o| o.side == "sell" && Some(o.id) != except && o.owner == Owner::Pool(pool.to_owned()))
                .map(|o| (o.start_s, o.end_s, o.cards)),
        );
        promised_at_peak(&spans, start_s, end_s)
    }

    /// Runs a call auction over the book now. `pool_cards` gives each pool's cards: a sell order
    /// that would make its pool promise more than it has is left out and leaves the book.
    pub fn run_auction(&mut self, now_ms: i64, pool_cards: &BTreeMap<String, u32>) -> AuctionRecord {
        // Conservation: sell orders in id order, each kept only if its pool can still keep it.
        let mut kept: BTreeMap<String, Vec<(u64, u64, u32)>> = BTreeMap::new();
        for c in &self.market.contracts {
            kept.entry(c.pool.clone()).or_default().push((c.start_s, c.end_s, c.cards));
        }
        let mut excluded = std::collections::BTreeSet::new();
        for o in self.market.orders.values().filter(|o| o.side == "sell") {
            let Owner::Pool(pool) = &o.owner else { continue };
            let spans = kept.entry(pool.clone()).or_default();
            let promised = promised_at_peak(spans, o.start_s, o.end_s);
            if u64::from(promised) + u64::from(o.cards) > u64::from(pool_cards.get(pool).copied().unwrap_or(0)) {
                excluded.insert(o.id);
            } else {
                spans.push((o.start_s, o.end_s, o.cards));
            }
        }
        let mut classes: BTreeMap<(String, String), u32> = BTreeMap::new();
        let mut orders = Vec::new();
        for o in self.market.orders.values().filter(|o| !excluded.contains(&o.id)) {
            let n = classes.len() as u32;
            let class = *classes.entry((o.model.clone(), o.region.clone())).or_insert(n);
            orders.push(Order {
                id: o.id,
                seq: o.id,
                side: if o.side == "buy" { Side::Buy } else { Side::Sell },
                product: Product { class, start_s: o.start_s, end_s: o.end_s },
                cards: o.cards,
                limit_fen_per_card_hour: o.limit_fen_per_card_hour,
                all_or_none: o.all_or_none,
                standing: o.standing,
            });
        }
        let names: BTreeMap<u32, (String, String)> = classes.into_iter().map(|(k, v)| (v, k)).collect();
        let clearing = suanwang_market::clear(&orders);
        let mut next = self.market.contracts.len() as u64;
        let mut contracts = Vec::new();
        for fill in &clearing.fills {
            let (Some(buy), Some(sell)) = (self.market.orders.get(&fill.buy), self.market.orders.get(&fill.sell))
            else {
                continue;
            };
            let (Owner::Tenant(tenant), Owner::Pool(pool)) = (&buy.owner, &sell.owner) else { continue };
            next += 1;
            contracts.push(MarketContract {
                id: next,
                tenant: *tenant,
                pool: pool.clone(),
                model: buy.model.clone(),
                region: buy.region.clone(),
                start_s: fill.product.start_s,
                end_s: fill.product.end_s,
                cards: fill.cards,
                price_fen_per_card_hour: fill.price_fen_per_card_hour,
                orders: (fill.buy, fill.sell),
                at_ms: now_ms,
            });
        }
        let prices = clearing
            .prices
            .iter()
            .filter_map(|(p, price)| {
                names.get(&p.class).map(|(m, r)| (m.clone(), r.clone(), p.start_s, p.end_s, *price))
            })
            .collect();
        let auction = AuctionRecord {
            at_ms: now_ms,
            prices,
            contracts,
            book_after: clearing.book.iter().filter(|o| !excluded.contains(&o.id)).map(|o| (o.id, o.cards)).collect(),
        };
        self.record(Fact::Auctioned { auction: auction.clone() });
        auction
    }
}

/// The most cards the spans `(start, end, cards)` hold together at any instant of `[start_s,
/// end_s)`: the peak is at the window's start or at a span's start inside it.
pub fn promised_at_peak(spans: &[(u64, u64, u32)], start_s: u64, end_s: u64) -> u32 {
    let at =
        |t: u64| -> u64 { spans.iter().filter(|(s, e, _)| *s <= t && t < *e).map(|(_, _, c)| u64::from(*c)).sum() };
    let instants =
        std::iter::once(start_s).chain(spans.iter().map(|(s, _, _)| *s).filter(|s| (start_s..end_s).contains(s)));
    u32::try_from(instants.map(at).max().unwrap_or(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_where_spans_overlap_most() {
        let spans = [(0, 10, 4), (5, 15, 3), (12, 20, 2)];
        assert_eq!(promised_at_peak(&spans, 0, 20), 7);
        assert_eq!(promised_at_peak(&spans, 10, 20), 5);
        assert_eq!(promised_at_peak(&spans, 15, 20), 2);
        assert_eq!(promised_at_peak(&spans, 20, 30), 0);
        assert_eq!(promised_at_peak(&[], 0, 1), 0);
    }
}
