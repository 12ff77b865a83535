//! `suanwang bench auction`: one call auction over N random resting orders (8 resource classes,
//! one delivery day, prices ¥10.00–¥19.99 per card-hour, one in five all-or-none); reports the
//! time to clear them.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;
use suanwang_market::{Order, Product, Side, clear};

use crate::args::{BenchAuctionArgs, Format};
use crate::error::CliError;
use crate::output::{Table, print};

/// What the bench measured.
#[derive(Debug, Serialize)]
pub struct AuctionBench {
    /// Resting orders.
    pub orders: u64,
    /// Products that traded.
    pub products_traded: usize,
    /// Contracts made.
    pub fills: usize,
    /// Cards traded.
    pub cards_traded: u64,
    /// Orders left in the book.
    pub book_after: usize,
    /// Time to clear, milliseconds.
    pub clear_ms: f64,
}

/// Runs the bench.
pub fn run(args: &BenchAuctionArgs) -> Result<(), CliError> {
    let mut rng = Pcg64Mcg::seed_from_u64(args.seed);
    let orders: Vec<Order> = (0..args.orders)
        .map(|i| Order {
            id: i + 1,
            seq: i,
            side: if rng.random_bool(0.5) { Side::Buy } else { Side::Sell },
            product: Product { class: rng.random_range(0..8), start_s: 1_790_000_000, end_s: 1_790_086_400 },
            cards: rng.random_range(1..=64),
            limit_fen_per_card_hour: rng.random_range(1_000..2_000),
            all_or_none: rng.random_ratio(1, 5),
            standing: true,
        })
        .collect();
    let started = Instant::now();
    let clearing = clear(&orders);
    let clear_ms = started.elapsed().as_secs_f64() * 1000.0;
    let result = AuctionBench {
        orders: args.orders,
        products_traded: clearing.prices.len(),
        fills: clearing.fills.len(),
        cards_traded: clearing.fills.iter().map(|f| u64::from(f.cards)).sum(),
        book_after: clearing.book.len(),
        clear_ms: (clear_ms * 100.0).round() / 100.0,
    };
    print(&match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&result).unwrap_or_default()),
        Format::Table => {
            let mut table = Table::new(&["orders", "products", "fills", "cards traded", "book after", "clear ms"]);
            table.row(vec![
                result.orders.to_string(),
                result.products_traded.to_string(),
                result.fills.to_string(),
                result.cards_traded.to_string(),
                result.book_after.to_string(),
                format!("{:.1}", result.clear_ms),
            ]);
            table.render()
        }
    })
}
