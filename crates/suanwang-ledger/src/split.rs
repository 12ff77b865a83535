//! Splitting an amount of fen by a ratio, with **one named rounding rule**: `floor to the fen`.
//!
//! The share (a subsidy, a platform fee) is `floor(amount × bps / 10,000)`, capped by what is left
//! of a budget or a cap; the other party takes the rest. So `share + rest == amount` always, to the
//! fen, and nobody is ever paid a fraction that was not there. Rounding down favours the party
//! that pays the share (a programme pays at most its ratio; a provider loses at most its fee).

/// Basis points in a whole: 10,000 bps = 100%.
pub const BPS_WHOLE: u32 = 10_000;

/// An amount split in two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// `floor(amount × bps / 10,000)`, at most the cap.
    pub share_fen: u64,
    /// `amount − share`.
    pub rest_fen: u64,
}

/// Splits `amount_fen` at `bps` (at most 10,000), the share rounded down to the fen and capped at
/// `cap_fen`.
pub fn split_floor(amount_fen: u64, bps: u32, cap_fen: u64) -> Split {
    let bps = u128::from(bps.min(BPS_WHOLE));
    let share = (u128::from(amount_fen) * bps / u128::from(BPS_WHOLE)) as u64;
    let share_fen = share.min(cap_fen);
    Split { share_fen, rest_fen: amount_fen - share_fen }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_rule_by_example() {
        // A 333.33 yuan invoice line with a 30% subsidy: 99.99 subsidy (99.999 rounded down).
        assert_eq!(split_floor(33_333, 3_000, u64::MAX), Split { share_fen: 9_999, rest_fen: 23_334 });
        // Capped by what is left of a firm's annual cap.
        assert_eq!(split_floor(33_333, 3_000, 5_000), Split { share_fen: 5_000, rest_fen: 28_333 });
        // A 12.5% platform fee on 1 fen is nothing; on 8 fen, 1.
        assert_eq!(split_floor(1, 1_250, u64::MAX).share_fen, 0);
        assert_eq!(split_floor(8, 1_250, u64::MAX).share_fen, 1);
        // Ratios above 100% are 100%.
        assert_eq!(split_floor(500, 20_000, u64::MAX), Split { share_fen: 500, rest_fen: 0 });
    }

    proptest! {
        #[test]
        fn share_plus_rest_is_the_amount_exactly(amount in any::<u64>(), bps in 0..=12_000u32, cap in any::<u64>()) {
            let s = split_floor(amount, bps, cap);
            prop_assert_eq!(u128::from(s.share_fen) + u128::from(s.rest_fen), u128::from(amount));
            prop_assert!(s.share_fen <= cap);
            // Never more than the ratio allows, and short of it by less than a fen unless capped.
            let exact = u128::from(amount) * u128::from(bps.min(BPS_WHOLE));
            prop_assert!(u128::from(s.share_fen) * u128::from(BPS_WHOLE) <= exact);
            if s.share_fen < cap {
                prop_assert!(exact - u128::from(s.share_fen) * u128::from(BPS_WHOLE) < u128::from(BPS_WHOLE));
            }
        }
    }
}
