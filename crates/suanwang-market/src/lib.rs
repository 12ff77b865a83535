//! The market for reserved accelerator-hours: limit orders cleared in a **uniform-price call
//! auction**. Plain data and functions: no IO, no clock.
//!
//! An order is for one **product**: a resource class (an accelerator model in a region, as an
//! opaque key the caller assigns) and a delivery window `[start_s, end_s)`. Orders meet only
//! orders for the same product; windows are standard products (a day, a week, a month), not
//! ranges to be intersected.
//!
//! At each auction, per product:
//! 1. **Price.** Among the distinct limit prices of the product's orders, the one that executes
//!    the most cards under the allocation below (all-or-none orders included). Ties go to the
//!    smallest imbalance `|demand − supply|` (demand counts buys with a limit ≥ p, supply sells
//!    with a limit ≤ p), then to the lower median of the tied prices. Everyone trades at that one
//!    price. (Prices are tried from the largest divisible volume `min(demand, supply)` down, and
//!    the search stops when no untried price could execute more: that volume is an upper bound.)
//! 2. **Allocation.** Buys with a limit ≥ p by price then time priority (higher price first, then
//!    earlier `seq`), sells with a limit ≤ p likewise (lower price first). Each side fills in order
//!    up to the executable volume; an **all-or-none** order that does not fit whole is skipped (it
//!    never fills in part). If skipping leaves one side short, the other is cut to match, and so on
//!    until both sides agree; a last pass pairs any divisible remainders.
//! 3. **Fills** pair filled buys with filled sells in priority order: each pair becomes a contract
//!    for `cards` at the clearing price.
//! 4. **After.** Standing orders keep what did not fill for the next auction; the others are
//!    dropped.

use std::collections::BTreeMap;

/// Most cards in one order.
pub const CARDS_MAX: u32 = 1_000_000;

/// Highest limit price, fen per card-hour (¥1,000,000).
pub const PRICE_FEN_MAX: i64 = 100_000_000;

/// Most orders one auction takes.
pub const ORDERS_MAX: usize = 10_000_000;

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// A tenant wants cards.
    Buy,
    /// A provider offers cards.
    Sell,
}

/// What an order is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Product {
    /// The resource class (accelerator model and region), as the caller numbers them.
    pub class: u32,
    /// Delivery starts (seconds since 1970, UTC).
    pub start_s: u64,
    /// Delivery ends (exclusive).
    pub end_s: u64,
}

/// A limit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Order {
    /// Id (unique in the book).
    pub id: u64,
    /// Time priority: lower came first.
    pub seq: u64,
    /// Buy or sell.
    pub side: Side,
    /// What for.
    pub product: Product,
    /// Cards wanted or offered (what is left of them, for a resting order).
    pub cards: u32,
    /// Highest price a buyer pays, lowest a seller takes, fen per card-hour.
    pub limit_fen_per_card_hour: i64,
    /// Fills whole or not at all.
    pub all_or_none: bool,
    /// Rests in the book after an auction it did not (fully) fill in.
    pub standing: bool,
}

/// Why an order is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The window ends before it starts.
    #[error("the delivery window is empty: it must end after it starts")]
    WindowEmpty,
    /// 0 cards, or more than [`CARDS_MAX`].
    #[error("cards must be between 1 and {CARDS_MAX}")]
    CardsInvalid,
    /// A price of 0 or less, or above [`PRICE_FEN_MAX`].
    #[error("the limit price must be between 1 and {PRICE_FEN_MAX} fen per card-hour")]
    PriceInvalid,
}

impl OrderError {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            OrderError::WindowEmpty => "window_empty",
            OrderError::CardsInvalid => "cards_invalid",
            OrderError::PriceInvalid => "price_invalid",
        }
    }
}

impl Order {
    /// Checks the order's fields.
    pub fn validate(&self) -> Result<(), OrderError> {
        if self.product.end_s <= self.product.start_s {
            return Err(OrderError::WindowEmpty);
        }
        if self.cards == 0 || self.cards > CARDS_MAX {
            return Err(OrderError::CardsInvalid);
        }
        if self.limit_fen_per_card_hour <= 0 || self.limit_fen_per_card_hour > PRICE_FEN_MAX {
            return Err(OrderError::PriceInvalid);
        }
        Ok(())
    }
}

/// A contract: a buyer gets `cards` of a seller's for the product's window at `price`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The product.
    pub product: Product,
    /// The buy order.
    pub buy: u64,
    /// The sell order.
    pub sell: u64,
    /// Cards.
    pub cards: u32,
    /// The auction's uniform price, fen per card-hour.
    pub price_fen_per_card_hour: i64,
}

/// What an auction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clearing {
    /// Each product that traded, and its price.
    pub prices: BTreeMap<Product, i64>,
    /// The contracts.
    pub fills: Vec<Fill>,
    /// The book after: standing orders with what they have left.
    pub book: Vec<Order>,
}

/// Runs one auction over `orders` (already validated; at most [`ORDERS_MAX`]).
pub fn clear(orders: &[Order]) -> Clearing {
    let mut by_product: BTreeMap<Product, Vec<Order>> = BTreeMap::new();
    for order in orders.iter().take(ORDERS_MAX) {
        by_product.entry(order.product).or_default().push(*order);
    }
    let mut clearing = Clearing::default();
    for (product, orders) in by_product {
        clear_product(product, orders, &mut clearing);
    }
    clearing
}

fn clear_product(product: Product, orders: Vec<Order>, clearing: &mut Clearing) {
    let (mut buys, mut sells): (Vec<Order>, Vec<Order>) = orders.into_iter().partition(|o| o.side == Side::Buy);
    // Priority: price, then time, then id (ids are unique, so the order is total).
    buys.sort_by_key(|o| (std::cmp::Reverse(o.limit_fen_per_card_hour), o.seq, o.id));
    sells.sort_by_key(|o| (o.limit_fen_per_card_hour, o.seq, o.id));
    let Some((price, buy_fill, sell_fill)) = clearing_price(&buys, &sells) else {
        keep_standing(buys.into_iter().chain(sells), &mut clearing.book);
        return;
    };
    // Pair filled buys with filled sells in priority order.
    let (mut i, mut j) = (0, 0);
    let (mut left_b, mut left_s) = (0u32, 0u32);
    let mut traded = false;
    loop {
        while left_b == 0 && i < buys.len() {
            left_b = buy_fill[i];
            if left_b == 0 {
                i += 1;
            }
        }
        while left_s == 0 && j < sells.len() {
            left_s = sell_fill[j];
            if left_s == 0 {
                j += 1;
            }
        }
        if left_b == 0 || left_s == 0 {
            break;
        }
        let cards = left_b.min(left_s);
        clearing.fills.push(Fill {
            product,
            buy: buys[i].id,
            sell: sells[j].id,
            cards,
            price_fen_per_card_hour: price,
        });
        traded = true;
        left_b -= cards;
        left_s -= cards;
        if left_b == 0 {
            i += 1;
        }
        if left_s == 0 {
            j += 1;
        }
    }
    if traded {
        clearing.prices.insert(product, price);
    }
    let rest = buys
        .iter()
        .zip(&buy_fill)
        .chain(sells.iter().zip(&sell_fill))
        .filter(|(o, filled)| **filled < o.cards)
        .map(|(o, filled)| Order { cards: o.cards - filled, ..*o });
    keep_standing(rest, &mut clearing.book);
}

fn keep_standing(orders: impl Iterator<Item = Order>, book: &mut Vec<Order>) {
    book.extend(orders.filter(|o| o.standing));
}

/// Fills `side` in order up to `target` cards (all-or-none orders whole or not at all); returns
/// the cards filled.
fn allocate(side: &[Order], target: u64, fill: &mut [u32]) -> u64 {
    let mut filled = 0u64;
    for (order, f) in side.iter().zip(fill.iter_mut()) {
        let room = target - filled;
        let take = if order.all_or_none {
            if u64::from(order.cards) <= room { order.cards } else { 0 }
        } else {
            u32::try_from(room.min(u64::from(order.cards))).unwrap_or(order.cards)
        };
        *f = take;
        filled += u64::from(take);
    }
    filled
}

/// Adds up to `extra` cards to the divisible orders of `side`, in order.
fn top_up(side: &[Order], mut extra: u64, fill: &mut [u32]) {
    for (order, f) in side.iter().zip(fill.iter_mut()) {
        if extra == 0 {
            break;
        }
        if order.all_or_none {
            continue;
        }
        let more = u32::try_from(extra.min(u64::from(order.cards - *f))).unwrap_or(0);
        *f += more;
        extra -= u64::from(more);
    }
}

/// Cards that execute at `price`: fills of both sides (all-or-none whole), and the fills.
fn execute(buys: &[Order], sells: &[Order], price: i64) -> (u64, Vec<u32>, Vec<u32>) {
    let eligible_buys = buys.iter().take_while(|o| o.limit_fen_per_card_hour >= price).count();
    let eligible_sells = sells.iter().take_while(|o| o.limit_fen_per_card_hour <= price).count();
    let mut buy_fill = vec![0u32; buys.len()];
    let mut sell_fill = vec![0u32; sells.len()];
    let volume = |side: &[Order]| side.iter().map(|o| u64::from(o.cards)).sum::<u64>();
    let mut target = volume(&buys[..eligible_buys]).min(volume(&sells[..eligible_sells]));
    // Fill both sides up to the target; all-or-none orders that do not fit are skipped, which may
    // leave a side short; then the target shrinks to the shorter side, until both agree.
    let executed = loop {
        let b = allocate(&buys[..eligible_buys], target, &mut buy_fill[..eligible_buys]);
        let s = allocate(&sells[..eligible_sells], b, &mut sell_fill[..eligible_sells]);
        if s == b {
            break s;
        }
        target = s;
    };
    // Divisible remainders on both sides still cross at the price: pair them.
    let spare = |side: &[Order], fill: &[u32]| -> u64 {
        side.iter().zip(fill).filter(|(o, _)| !o.all_or_none).map(|(o, f)| u64::from(o.cards - f)).sum()
    };
    let extra = spare(&buys[..eligible_buys], &buy_fill).min(spare(&sells[..eligible_sells], &sell_fill));
    top_up(&buys[..eligible_buys], extra, &mut buy_fill);
    top_up(&sells[..eligible_sells], extra, &mut sell_fill);
    (executed + extra, buy_fill, sell_fill)
}

/// The uniform price for sorted buys (best first) and sells (best first), with the fills at it;
/// `None` when nothing can trade.
fn clearing_price(buys: &[Order], sells: &[Order]) -> Option<(i64, Vec<u32>, Vec<u32>)> {
    let (best_bid, best_ask) = (buys.first()?.limit_fen_per_card_hour, sells.first()?.limit_fen_per_card_hour);
    if best_bid < best_ask {
        return None;
    }
    // Candidate prices in the crossing range, ascending.
    let mut candidates: Vec<i64> = buys
        .iter()
        .chain(sells)
        .map(|o| o.limit_fen_per_card_hour)
        .filter(|p| (best_ask..=best_bid).contains(p))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    // The volume each price would execute if every order were divisible (an upper bound), and the
    // imbalance: demand at p counts buys with limit ≥ p, supply sells with limit ≤ p.
    let total_demand: u64 = buys.iter().map(|o| u64::from(o.cards)).sum();
    let (mut demand_below, mut supply) = (0u64, 0u64);
    let (mut bi, mut si) = (buys.len(), 0usize);
    let mut bounds: Vec<(u64, u64, i64)> = Vec::with_capacity(candidates.len());
    for &p in &candidates {
        while bi > 0 && buys[bi - 1].limit_fen_per_card_hour < p {
            bi -= 1;
            demand_below += u64::from(buys[bi].cards);
        }
        while si < sells.len() && sells[si].limit_fen_per_card_hour <= p {
            supply += u64::from(sells[si].cards);
            si += 1;
        }
        let demand = total_demand - demand_below;
        bounds.push((demand.min(supply), demand.abs_diff(supply), p));
    }
    // Try prices from the largest bound down, executing each for real (all-or-none orders may
    // execute less than the bound), until no untried price could beat the best found.
    bounds.sort_by_key(|&(bound, imbalance, p)| (std::cmp::Reverse(bound), imbalance, p));
    let mut tied: Vec<(u64, i64)> = Vec::new(); // (imbalance, price) of the best executed volume
    let mut best = 0u64;
    for &(bound, imbalance, p) in &bounds {
        if bound < best || bound == 0 {
            break;
        }
        let (executed, ..) = execute(buys, sells, p);
        if executed > best {
            best = executed;
            tied.clear();
        }
        if executed == best && executed > 0 {
            tied.push((imbalance, p));
        }
    }
    // Among the prices that execute the most: the smallest imbalance, then the lower median price.
    let least = tied.iter().map(|&(i, _)| i).min()?;
    let mut prices: Vec<i64> = tied.iter().filter(|&&(i, _)| i == least).map(|&(_, p)| p).collect();
    prices.sort_unstable();
    let price = prices[(prices.len() - 1) / 2];
    let (_, buy_fill, sell_fill) = execute(buys, sells, price);
    Some((price, buy_fill, sell_fill))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCT: Product = Product { class: 1, start_s: 0, end_s: 86_400 };

    fn order(id: u64, side: Side, cards: u32, price: i64) -> Order {
        Order {
            id,
            seq: id,
            side,
            product: PRODUCT,
            cards,
            limit_fen_per_card_hour: price,
            all_or_none: false,
            standing: true,
        }
    }

    #[test]
    fn the_price_maximises_volume_and_everyone_pays_it() {
        let orders = [
            order(1, Side::Buy, 10, 1_500),
            order(2, Side::Buy, 10, 1_200),
            order(3, Side::Sell, 8, 1_000),
            order(4, Side::Sell, 8, 1_300),
        ];
        let c = clear(&orders);
        // At 1,300: demand 10, supply 16 → 10. At 1,200: demand 20, supply 8 → 8. At 1,500: 10.
        // 1,300 and 1,500 tie on volume (10) and imbalance (6): the lower median, 1,300.
        assert_eq!(c.prices.get(&PRODUCT), Some(&1_300));
        let bought: u32 = c.fills.iter().filter(|f| f.buy == 1).map(|f| f.cards).sum();
        assert_eq!(bought, 10);
        assert!(c.fills.iter().all(|f| f.price_fen_per_card_hour == 1_300));
        // What is left rests: buy 2 whole, and 6 cards of sell 4.
        assert!(c.book.contains(&order(2, Side::Buy, 10, 1_200)));
        assert!(c.book.contains(&Order { cards: 6, ..order(4, Side::Sell, 8, 1_300) }));
    }

    #[test]
    fn all_or_none_orders_fill_whole_or_not_at_all() {
        let orders = [
            Order { all_or_none: true, ..order(1, Side::Buy, 10, 2_000) },
            order(2, Side::Buy, 3, 1_900),
            order(3, Side::Sell, 6, 1_000),
        ];
        let c = clear(&orders);
        let filled = |id| c.fills.iter().filter(|f| f.buy == id || f.sell == id).map(|f| f.cards).sum::<u32>();
        assert_eq!(filled(1), 0, "10 cards do not fit into 6");
        assert_eq!(filled(2), 3);
        assert_eq!(filled(3), 3);
    }

    #[test]
    fn nothing_trades_when_nothing_crosses_and_non_standing_orders_go() {
        let orders = [order(1, Side::Buy, 5, 900), Order { standing: false, ..order(2, Side::Sell, 5, 1_000) }];
        let c = clear(&orders);
        assert!(c.fills.is_empty() && c.prices.is_empty());
        assert_eq!(c.book, [order(1, Side::Buy, 5, 900)]);
    }

    #[test]
    fn bad_orders_are_refused_with_a_code() {
        let ok = order(1, Side::Buy, 5, 900);
        assert_eq!(ok.validate(), Ok(()));
        let empty = Order { product: Product { end_s: 0, ..PRODUCT }, ..ok };
        assert_eq!(empty.validate().map_err(OrderError::code), Err("window_empty"));
        assert_eq!(Order { cards: 0, ..ok }.validate().map_err(OrderError::code), Err("cards_invalid"));
        assert_eq!(
            Order { limit_fen_per_card_hour: 0, ..ok }.validate().map_err(OrderError::code),
            Err("price_invalid")
        );
    }
}
