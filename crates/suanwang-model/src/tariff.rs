//! The tariff: what one hour of an allocation costs in a pool. One rule for the scheduler's
//! estimates, quotes, the market's prices, the simulator and the server's billing.
//!
//! **Rule.** An allocation (the whole gang: cards, CPU, memory, and the model its cards are) costs
//! per hour the larger of
//! - its **cards**: thousandths of a card × the card-hour price of that model (a contract's price
//!   when the job runs under one, else the pool's list price), and
//! - its **host**: thousandths of a core × the core-hour price, plus MiB × the GiB-hour price ÷ 1024.
//!
//! So an accelerator job pays for its cards (the card price includes the share of the host that
//! usually comes with a card), a CPU-only job pays for CPU and memory, and an accelerator job that
//! asks for far more of the host than its cards come with pays for the host instead. Fractions
//! of a card cost that fraction.
//!
//! The rate is exact in **milli-fen per hour** (only memory's ÷ 1024 is floored, to the
//! milli-fen). Turning time into fen is `suanwang_billing::rating`'s rounding rule.

use crate::catalog::AcceleratorId;
use crate::federation::PriceList;
use crate::job::JobSpec;

/// What one run of a job holds in a pool: its whole gang.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Allocation {
    /// The model of its cards (`None` for CPU-only work).
    pub model: Option<AcceleratorId>,
    /// Thousandths of a card, all tasks together.
    pub card_milli: u64,
    /// Thousandths of a core, all tasks together.
    pub cpu_milli: u64,
    /// Memory, all tasks together.
    pub memory_mib: u64,
}

impl Allocation {
    /// What `spec` holds when its cards are of `model`.
    pub fn of(spec: &JobSpec, model: Option<AcceleratorId>) -> Self {
        let gang = u64::from(spec.gang_size);
        let card_milli = u64::from(spec.task.accelerators().total_milli()) * gang;
        Allocation {
            model: if card_milli == 0 { None } else { model },
            card_milli,
            cpu_milli: u64::from(spec.task.cpu_milli()) * gang,
            memory_mib: u64::from(spec.task.memory_mib()) * gang,
        }
    }
}

/// Milli-fen per hour of an allocation (see the module's rule).
pub fn rate_millifen_per_hour(prices: &PriceList, allocation: &Allocation, card_price_fen: Option<i64>) -> u64 {
    let non_negative = |fen: i64| u128::try_from(fen).unwrap_or(0);
    let card_price =
        card_price_fen.or_else(|| allocation.model.and_then(|m| prices.card_hour_fen.get(&m).copied())).unwrap_or(0);
    let cards = u128::from(allocation.card_milli) * non_negative(card_price);
    let host = u128::from(allocation.cpu_milli) * non_negative(prices.cpu_core_hour_fen)
        + u128::from(allocation.memory_mib) * non_negative(prices.memory_gib_hour_fen) * 1000 / 1024;
    u64::try_from(cards.max(host)).unwrap_or(u64::MAX)
}

/// The same rate in fen per hour, for estimates and explanations (not for billing).
pub fn rate_fen_per_hour(prices: &PriceList, allocation: &Allocation, card_price_fen: Option<i64>) -> f64 {
    rate_millifen_per_hour(prices, allocation, card_price_fen) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalog::AcceleratorSet;
    use crate::job::{AcceleratorRequest, TaskSpec};

    fn prices() -> PriceList {
        PriceList {
            card_hour_fen: BTreeMap::from([(AcceleratorId(0), 800)]),
            cpu_core_hour_fen: 5,
            memory_gib_hour_fen: 1,
        }
    }

    fn spec(cards: u8, milli: u16, cpu_milli: u32, memory_mib: u32, gang: u16) -> JobSpec {
        let request =
            AcceleratorRequest::new(cards, if cards == 0 { 0 } else { milli }).unwrap_or(AcceleratorRequest::NONE);
        JobSpec {
            name: "j".to_owned(),
            tenant: 0,
            task: TaskSpec::new(cpu_milli, memory_mib, request, AcceleratorSet::ANY).unwrap_or_else(|e| panic!("{e}")),
            gang_size: gang,
            priority: 0,
            preemptible: false,
            dataset: None,
            residency_region: None,
            latency: None,
            price_fen_per_card_hour_max: None,
            deadline_unix_s: None,
            runtime_estimate_s: None,
            speeds: Vec::new(),
        }
    }

    fn check(spec: &JobSpec, contract: Option<i64>, millifen: u64) {
        let allocation = Allocation::of(spec, Some(AcceleratorId(0)));
        assert_eq!(rate_millifen_per_hour(&prices(), &allocation, contract), millifen, "{allocation:?}");
    }

    #[test]
    fn by_example() {
        // 8 cards × 2 tasks at ¥8.00: ¥128.00 an hour; the host is cheaper.
        check(&spec(8, 1000, 96_000, 786_432, 2), None, 12_800_000);
        // Half a card: ¥4.00.
        check(&spec(1, 500, 1_000, 1_024, 1), None, 400_000);
        // CPU only: 4 cores × ¥0.05 + 8 GiB × ¥0.01 = ¥0.28.
        check(&spec(0, 0, 4_000, 8_192, 1), None, 28_000);
        // One card and 256 cores: the host (¥12.80 + ¥0.01) costs more than the card.
        check(&spec(1, 1000, 256_000, 1_024, 1), None, 1_281_000);
        // Under a contract at ¥7.00 a card-hour.
        check(&spec(8, 1000, 0, 0, 1), Some(700), 5_600_000);
        // Memory's ÷ 1024 is floored to the milli-fen: 1 MiB × ¥0.01 = 0.9765625 milli-fen.
        check(&spec(0, 0, 0, 1, 1), None, 0);
        assert_eq!(rate_fen_per_hour(&prices(), &Allocation::of(&spec(1, 500, 0, 0, 1), None), None), 0.0);
    }
}
