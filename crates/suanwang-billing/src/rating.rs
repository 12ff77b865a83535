//! Rating usage into money, and the calendar the books keep.
//!
//! **Rule:** a meter (one job on one pool at one rate) is charged `floor(ms × rate / 3.6e9)` fen
//! for everything it has used so far, where `rate` is the allocation's milli-fen per hour
//! (`suanwang_model::tariff`); each usage event is charged the increase. So however a job's
//! usage is cut into events, its total charge is the floor of its exact cost, never a fen more,
//! and less than a fen short. (Usage rated before the platform metered runs itself was
//! `card_ms` at a price per card-hour, by the same floor: [`cost_fen`].)
//!
//! **Calendar:** invoice periods are calendar months and programme years are calendar years in
//! China Standard Time (UTC+8, no daylight saving), where the platform's tenants and issuers are.

/// Milliseconds in an hour.
pub const MS_PER_HOUR: u128 = 3_600_000;

/// China Standard Time's offset from UTC, in milliseconds.
pub const CST_OFFSET_MS: i64 = 8 * 3_600_000;

/// What `card_ms` accelerator-milliseconds cost at `price_fen_per_card_hour`, floored to the fen.
pub fn cost_fen(card_ms: u64, price_fen_per_card_hour: u64) -> u64 {
    let exact = u128::from(card_ms) * u128::from(price_fen_per_card_hour) / MS_PER_HOUR;
    u64::try_from(exact).unwrap_or(u64::MAX)
}

/// Milli-fen in a fen times milliseconds in an hour: `ms × rate_millifen_per_hour ÷ this` is fen.
pub const MILLIFEN_MS_PER_FEN_HOUR: u128 = 3_600_000_000;

/// What `ms` milliseconds of an allocation cost at `rate_millifen_per_hour`, floored to the fen.
pub fn run_cost_fen(ms: u64, rate_millifen_per_hour: u64) -> u64 {
    let exact = u128::from(ms) * u128::from(rate_millifen_per_hour) / MILLIFEN_MS_PER_FEN_HOUR;
    u64::try_from(exact).unwrap_or(u64::MAX)
}

/// The charge for adding `add_ms` to a run meter that has used `used_ms`.
pub fn run_increment_fen(used_ms: u64, add_ms: u64, rate_millifen_per_hour: u64) -> u64 {
    run_cost_fen(used_ms.saturating_add(add_ms), rate_millifen_per_hour) - run_cost_fen(used_ms, rate_millifen_per_hour)
}

/// The charge for adding `add_ms` to a meter that has used `used_ms`.
pub fn increment_fen(used_ms: u64, add_ms: u64, price_fen_per_card_hour: u64) -> u64 {
    let after = cost_fen(used_ms.saturating_add(add_ms), price_fen_per_card_hour);
    after - cost_fen(used_ms, price_fen_per_card_hour)
}

/// The spot price: the list price scaled by the pool's utilisation `u` (allocated ÷ capacity),
/// from 50% of list when idle to 150% when full, linearly, floored to the fen:
/// `floor(list × (5,000 + 10,000 × u) / 10,000)`. A pool with no capacity is at list.
pub fn spot_price_fen(list_fen: u64, allocated_milli: u64, capacity_milli: u64) -> u64 {
    if capacity_milli == 0 {
        return list_fen;
    }
    let u_bps = u128::from(allocated_milli.min(capacity_milli)) * 10_000 / u128::from(capacity_milli);
    u64::try_from(u128::from(list_fen) * (5_000 + u_bps) / 10_000).unwrap_or(u64::MAX)
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01: Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The invoice period (`YYYY-MM`, China Standard Time) of an instant (ms since 1970, UTC).
pub fn period(at_ms: i64) -> String {
    let (y, m, _) = civil_from_days((at_ms + CST_OFFSET_MS).div_euclid(86_400_000));
    format!("{y:04}-{m:02}")
}

/// The calendar year (China Standard Time) of an instant.
pub fn year(at_ms: i64) -> i64 {
    civil_from_days((at_ms + CST_OFFSET_MS).div_euclid(86_400_000)).0
}

/// When a year starts (ms since 1970, UTC): 1 January 00:00 China Standard Time.
pub fn year_start_ms(year: i64) -> i64 {
    days_from_civil(year, 1, 1) * 86_400_000 - CST_OFFSET_MS
}

/// Whether `s` is a period `YYYY-MM`.
pub fn is_period(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit())
        && matches!(s[5..].parse::<u32>(), Ok(1..=12))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn by_example() {
        // One card-hour at 12.34 yuan.
        assert_eq!(cost_fen(3_600_000, 1_234), 1_234);
        // 1 ms at 12.34 yuan an hour is nothing; the meter keeps the fraction for later.
        assert_eq!(increment_fen(0, 1, 1_234), 0);
        // 2026-11-30 16:00 UTC is 2026-12-01 00:00 in Beijing.
        assert_eq!(period(1_796_054_400_000), "2026-12");
        assert_eq!(period(1_796_054_399_999), "2026-11");
        assert_eq!(year_start_ms(2027), 1_798_761_600_000 - CST_OFFSET_MS);
        assert_eq!(year(year_start_ms(2027)), 2027);
        assert_eq!(year(year_start_ms(2027) - 1), 2026);
        // An hour of 8 cards at ¥8.00 (6,400,000 milli-fen an hour) is ¥64.00.
        assert_eq!(run_cost_fen(3_600_000, 6_400_000), 6_400);
        assert_eq!(run_cost_fen(1, 6_400_000), 0);
        assert_eq!(spot_price_fen(1_000, 0, 8_000), 500);
        assert_eq!(spot_price_fen(1_000, 4_000, 8_000), 1_000);
        assert_eq!(spot_price_fen(1_000, 8_000, 8_000), 1_500);
        assert_eq!(spot_price_fen(1_000, 1, 0), 1_000);
        assert!(is_period("2026-11") && !is_period("2026-13") && !is_period("2026-1") && !is_period("20x6-01"));
    }

    proptest! {
        #[test]
        fn however_usage_is_cut_the_total_is_the_floor_of_the_exact_cost(
            parts in proptest::collection::vec(0u64..10_000_000_000, 0..20),
            price in 0u64..10_000_000,
        ) {
            let mut used = 0u64;
            let mut charged = 0u64;
            for p in &parts {
                charged += increment_fen(used, *p, price);
                used += p;
            }
            prop_assert_eq!(charged, cost_fen(used, price));
        }

        #[test]
        fn however_a_run_is_cut_the_total_is_the_floor_of_the_exact_cost(
            parts in proptest::collection::vec(0u64..10_000_000_000, 0..20),
            rate in 0u64..100_000_000_000,
        ) {
            let mut used = 0u64;
            let mut charged = 0u64;
            for p in &parts {
                charged += run_increment_fen(used, *p, rate);
                used += p;
            }
            prop_assert_eq!(charged, run_cost_fen(used, rate));
        }

        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
