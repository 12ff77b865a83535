//! State-machine property tests of the ledger: random sequences of transfers (single, pending,
//! post, void, linked chains, retries and clashing ids), clock jumps and restarts (the ledger
//! rebuilt from its history). After every step: debits equal credits (posted and pending), no
//! balance limit is broken, a pending transfer resolves at most once, a remembered outcome is
//! returned again for a retry, and a restart changes nothing.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use proptest::prelude::*;
use suanwang_ledger::{
    AccountId, AccountKind, AccountSpec, Ledger, Limit, PendingState, Transfer, TransferError, TransferId, TransferKind,
};

const ACCOUNTS: u64 = 6;

fn accounts() -> Vec<AccountSpec> {
    let limits = [
        Limit::None,
        Limit::DebitsWithinCredits,
        Limit::DebitsWithinCredits,
        Limit::CreditsWithinDebits,
        Limit::None,
        Limit::DebitsWithinCredits,
    ];
    (1..=ACCOUNTS)
        .map(|i| AccountSpec {
            id: AccountId(i),
            kind: AccountKind::ALL[i as usize % AccountKind::ALL.len()],
            limit: limits[(i - 1) as usize],
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Batch(Vec<Transfer>),
    Advance(u64),
    Restart,
}

fn account() -> impl Strategy<Value = AccountId> {
    // Mostly real accounts, sometimes an unknown one.
    prop_oneof![9 => (1..=ACCOUNTS).prop_map(AccountId), 1 => Just(AccountId(99))]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 20 => 1..5_000u64]
}

fn kind() -> impl Strategy<Value = TransferKind> {
    // Ids 1..=60: small enough that retries, clashes and posts of real pending ids happen often.
    prop_oneof![
        4 => (account(), account(), amount())
            .prop_map(|(debit, credit, amount_fen)| TransferKind::Single { debit, credit, amount_fen }),
        3 => (account(), account(), amount(), prop::option::of(1..300u64))
            .prop_map(|(debit, credit, amount_fen, timeout_s)| TransferKind::Pending { debit, credit, amount_fen, timeout_s }),
        2 => (1..=60u128, prop::option::of(0..6_000u64))
            .prop_map(|(p, amount_fen)| TransferKind::PostPending { pending: TransferId(p), amount_fen }),
        1 => (1..=60u128).prop_map(|p| TransferKind::VoidPending { pending: TransferId(p) }),
    ]
}

fn transfer() -> impl Strategy<Value = Transfer> {
    (1..=60u128, kind(), 0..3u16).prop_map(|(id, kind, code)| Transfer {
        id: TransferId(id),
        kind,
        linked: false,
        code,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => transfer().prop_map(|t| Op::Batch(vec![t])),
        3 => prop::collection::vec(transfer(), 2..4).prop_map(|mut chain| {
            let last = chain.len() - 1;
            for t in &mut chain[..last] {
                t.linked = true;
            }
            Op::Batch(chain)
        }),
        2 => prop::collection::vec(transfer(), 2..6).prop_map(Op::Batch),
        2 => (1..200u64).prop_map(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

/// Posted debits and credits per account, as the test saw them succeed.
type Posted = BTreeMap<AccountId, (u128, u128)>;

fn check(ledger: &Ledger, posted: &Posted) {
    assert!(ledger.trial_balance().balances(), "{:?}", ledger.trial_balance());
    let mut reserved: BTreeMap<AccountId, (u128, u128)> = BTreeMap::new();
    for (_, p) in ledger.pendings().filter(|(_, p)| p.state == PendingState::Open) {
        reserved.entry(p.debit).or_default().0 += u128::from(p.amount_fen);
        reserved.entry(p.credit).or_default().1 += u128::from(p.amount_fen);
    }
    for a in ledger.accounts() {
        assert!(a.within_limit(), "{a:?}");
        let id = a.spec.id;
        let (debits, credits) = posted.get(&id).copied().unwrap_or_default();
        assert_eq!((a.debits_posted_fen, a.credits_posted_fen), (debits, credits), "posted sums of {id:?}");
        let (debits, credits) = reserved.get(&id).copied().unwrap_or_default();
        assert_eq!((a.debits_pending_fen, a.credits_pending_fen), (debits, credits), "pending sums of {id:?}");
    }
}

fn add(posted: &mut Posted, debit: AccountId, credit: AccountId, amount_fen: u64) {
    posted.entry(debit).or_default().0 += u128::from(amount_fen);
    posted.entry(credit).or_default().1 += u128::from(amount_fen);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_keeps_its_invariants(ops in prop::collection::vec(op(), 1..120)) {
        let mut ledger = Ledger::new();
        for spec in accounts() {
            ledger.open(spec).unwrap();
        }
        // The world funds every limited account first, so transfers often succeed.
        let funding: Vec<Transfer> = (2..=ACCOUNTS)
            .map(|i| Transfer {
                id: TransferId(1_000 + u128::from(i)),
                kind: TransferKind::Single { debit: AccountId(1), credit: AccountId(i), amount_fen: 20_000 },
                linked: false,
                code: 9,
            })
            .collect();
        let funded = ledger.apply(&funding, 0);
        let mut posted = Posted::new();
        for (t, r) in funding.iter().zip(&funded) {
            if let (TransferKind::Single { debit, credit, amount_fen }, Ok(())) = (t.kind, r) {
                add(&mut posted, debit, credit, amount_fen);
            }
        }
        let mut now = 1u64;
        // What the ledger remembered for each id, as seen from outside.
        let mut remembered: BTreeMap<TransferId, (Transfer, Result<(), TransferError>)> = BTreeMap::new();
        // Successful resolutions (post or void) of each pending id.
        let mut resolutions: BTreeMap<TransferId, u32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Advance(s) => {
                    now += s;
                    ledger.expire(now);
                }
                Op::Restart => {
                    let rebuilt = Ledger::replay(ledger.events()).unwrap();
                    prop_assert_eq!(&rebuilt, &ledger);
                    ledger = rebuilt;
                }
                Op::Batch(batch) => {
                    let before = ledger.clone();
                    let results = ledger.apply(&batch, now);
                    prop_assert_eq!(results.len(), batch.len());
                    let chained = batch.iter().any(|t| t.linked);
                    if chained && results.iter().any(Result::is_err) {
                        // A chain that failed somewhere: as if it never happened (bar expiries).
                        let mut expected = before.clone();
                        expected.expire(now);
                        prop_assert_eq!(&ledger, &expected);
                    }
                    let mut seen = std::collections::BTreeSet::new();
                    for (t, r) in batch.iter().zip(&results) {
                        // A success that moved money: new to the ledger, and first in its batch.
                        let fresh = r.is_ok() && before.outcome(t.id).is_none() && seen.insert(t.id);
                        if fresh {
                            match t.kind {
                                TransferKind::Single { debit, credit, amount_fen } => add(&mut posted, debit, credit, amount_fen),
                                TransferKind::PostPending { pending, amount_fen } => {
                                    let p = ledger.pending(pending).copied().unwrap();
                                    add(&mut posted, p.debit, p.credit, amount_fen.unwrap_or(p.amount_fen));
                                }
                                _ => {}
                            }
                        }
                        if let Some((first, outcome)) = remembered.get(&t.id) {
                            if first == t {
                                let chain_failure = matches!(r, Err(TransferError::LinkedEventFailed));
                                prop_assert!(chain_failure || r == outcome, "retry of {:?}: {:?} then {:?}", t, outcome, r);
                            } else if !matches!(r, Err(TransferError::LinkedEventFailed)) {
                                prop_assert_eq!(*r, Err(TransferError::ExistsWithDifferentFields));
                            }
                        }
                        if let Some(outcome) = ledger.outcome(t.id)
                            && ledger.events().iter().any(|e| matches!(e, suanwang_ledger::Event::Transfer { transfer, .. } if transfer == t))
                        {
                            remembered.entry(t.id).or_insert((*t, outcome));
                        }
                        if fresh
                            && let TransferKind::PostPending { pending, .. } | TransferKind::VoidPending { pending } = t.kind
                        {
                            *resolutions.entry(pending).or_default() += 1;
                        }
                    }
                }
            }
            check(&ledger, &posted);
            for (id, n) in &resolutions {
                prop_assert!(*n <= 1, "pending {:?} resolved {} times", id, n);
                let state = ledger.pending(*id).map(|p| p.state);
                prop_assert!(matches!(state, Some(PendingState::Posted(_) | PendingState::Voided)), "{:?}", state);
            }
        }
        let rebuilt = Ledger::replay(ledger.events()).unwrap();
        prop_assert_eq!(&rebuilt, &ledger);
    }
}

/// The trial balance stays exact over a million random operations in batches of 1,000 (single,
/// pending with timeouts, post, void), and every posted fen is accounted for. About a second.
#[test]
fn a_million_operations_keep_the_trial_balance_exact() {
    use rand_like::Pcg;
    let mut ledger = Ledger::new();
    for spec in accounts() {
        ledger.open(spec).unwrap();
    }
    let mut rng = Pcg(0x5eed);
    let mut open_pendings: Vec<TransferId> = Vec::new();
    let mut expected_posted: u128 = 0;
    let mut batch = Vec::with_capacity(1_000);
    let mut now = 0;
    for (next_id, step) in (1u128..).zip(0..1_000_000u64) {
        let debit = AccountId(1 + rng.below(ACCOUNTS));
        let credit = AccountId(1 + rng.below(ACCOUNTS));
        let amount_fen = 1 + rng.below(10_000);
        let kind = match rng.below(10) {
            0..=5 => TransferKind::Single { debit, credit, amount_fen },
            6 | 7 => TransferKind::Pending { debit, credit, amount_fen, timeout_s: Some(1 + rng.below(50)) },
            8 if !open_pendings.is_empty() => {
                let i = rng.below(open_pendings.len() as u64) as usize;
                TransferKind::PostPending { pending: open_pendings.swap_remove(i), amount_fen: None }
            }
            _ if !open_pendings.is_empty() => {
                let i = rng.below(open_pendings.len() as u64) as usize;
                TransferKind::VoidPending { pending: open_pendings.swap_remove(i) }
            }
            _ => TransferKind::Single { debit: AccountId(1), credit, amount_fen },
        };
        let t = Transfer { id: TransferId(next_id), kind, linked: false, code: 0 };
        batch.push(t);
        if batch.len() == 1_000 || step == 999_999 {
            now += 1;
            let results = ledger.apply(&batch, now);
            for (t, r) in batch.iter().zip(&results) {
                match (t.kind, r) {
                    (TransferKind::Single { amount_fen, .. }, Ok(())) => expected_posted += u128::from(amount_fen),
                    (TransferKind::Pending { .. }, Ok(())) => open_pendings.push(t.id),
                    (TransferKind::PostPending { pending, .. }, Ok(())) => {
                        if let Some(p) = ledger.pending(pending) {
                            expected_posted += u128::from(p.amount_fen);
                        }
                    }
                    _ => {}
                }
            }
            batch.clear();
        }
    }
    let total = ledger.trial_balance();
    assert!(total.balances(), "{total:?}");
    assert_eq!(total.posted_debits_fen, expected_posted, "every posted fen is accounted for");
    for a in ledger.accounts() {
        assert!(a.within_limit(), "{a:?}");
    }
}

/// A tiny seeded generator (PCG-XSH-RR), so the test needs no dependency.
mod rand_like {
    pub struct Pcg(pub u64);

    impl Pcg {
        pub fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let x = (((self.0 >> 18) ^ self.0) >> 27) as u32;
            let r = x.rotate_right((self.0 >> 59) as u32);
            u64::from(r) % n
        }
    }
}
