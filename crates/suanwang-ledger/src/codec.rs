//! A line of text per [`Event`], for storing the ledger's history: one word per field, separated
//! by spaces, so a row in a database reads as what happened.
//!
//! ```text
//! A 7 tenant-cash debits-within-credits            an account
//! T 1700000000 42 3 0 S 1 7 50000 ok               a single transfer of 500.00 yuan, applied
//! T 1700000000 43 3 1 P 7 9 1200 3600 ok           a pending transfer (linked), 1 h timeout
//! T 1700000001 44 3 0 PP 43 1000 ok                posts 10.00 of it
//! T 1700000001 45 3 0 S 7 9 999999 exceeds_credits a refusal, remembered
//! E 1700003600 43                                  a pending transfer timed out
//! ```

use crate::{AccountId, AccountKind, AccountSpec, Event, Limit, Transfer, TransferError, TransferId, TransferKind};

impl Limit {
    /// Its stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::None => "none",
            Limit::DebitsWithinCredits => "debits-within-credits",
            Limit::CreditsWithinDebits => "credits-within-debits",
        }
    }
}

const ERRORS: [TransferError; 17] = [
    TransferError::IdZero,
    TransferError::AmountInvalid,
    TransferError::SameAccount,
    TransferError::DebitAccountNotFound,
    TransferError::CreditAccountNotFound,
    TransferError::ExceedsCredits,
    TransferError::ExceedsDebits,
    TransferError::ExistsWithDifferentFields,
    TransferError::PendingNotFound,
    TransferError::PendingAlreadyPosted,
    TransferError::PendingAlreadyVoided,
    TransferError::PendingExpired,
    TransferError::PostAmountInvalid,
    TransferError::TimeoutInvalid,
    TransferError::LinkedEventFailed,
    TransferError::LinkedChainOpen,
    TransferError::BatchTooLarge,
];

fn option(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

impl Event {
    /// The event as one line.
    pub fn encode(&self) -> String {
        match self {
            Event::Account(spec) => format!("A {} {} {}", spec.id.0, spec.kind.as_str(), spec.limit.as_str()),
            Event::Transfer { transfer: t, at_s, outcome } => {
                let kind = match t.kind {
                    TransferKind::Single { debit, credit, amount_fen } => {
                        format!("S {} {} {amount_fen}", debit.0, credit.0)
                    }
                    TransferKind::Pending { debit, credit, amount_fen, timeout_s } => {
                        format!("P {} {} {amount_fen} {}", debit.0, credit.0, option(timeout_s))
                    }
                    TransferKind::PostPending { pending, amount_fen } => {
                        format!("PP {} {}", pending.0, option(amount_fen))
                    }
                    TransferKind::VoidPending { pending } => format!("VP {}", pending.0),
                };
                let outcome = outcome.err().map_or("ok", TransferError::code);
                format!("T {at_s} {} {} {} {kind} {outcome}", t.id.0, t.code, u8::from(t.linked))
            }
            Event::Expired { pending, at_s } => format!("E {at_s} {}", pending.0),
        }
    }

    /// Reads a line written by [`Event::encode`].
    pub fn decode(line: &str) -> Result<Event, String> {
        let words: Vec<&str> = line.split(' ').collect();
        let bad = || format!("not a ledger event: {line:?}");
        let int = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok()).ok_or_else(bad);
        let opt = |i: usize| match words.get(i) {
            Some(&"-") => Ok(None),
            Some(w) => w.parse::<u64>().map(Some).map_err(|_| bad()),
            None => Err(bad()),
        };
        match words.first() {
            Some(&"A") if words.len() == 4 => {
                let kind = AccountKind::ALL.into_iter().find(|k| k.as_str() == words[2]).ok_or_else(bad)?;
                let limit = [Limit::None, Limit::DebitsWithinCredits, Limit::CreditsWithinDebits]
                    .into_iter()
                    .find(|l| l.as_str() == words[3])
                    .ok_or_else(bad)?;
                Ok(Event::Account(AccountSpec { id: AccountId(int(1)?), kind, limit }))
            }
            Some(&"E") if words.len() == 3 => {
                let pending = words[2].parse::<u128>().map_err(|_| bad())?;
                Ok(Event::Expired { pending: TransferId(pending), at_s: int(1)? })
            }
            Some(&"T") if words.len() >= 8 => {
                let id = words[2].parse::<u128>().map_err(|_| bad())?;
                let code = u16::try_from(int(3)?).map_err(|_| bad())?;
                let linked = match words[4] {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad()),
                };
                let (kind, used) = match words[5] {
                    "S" => (
                        TransferKind::Single {
                            debit: AccountId(int(6)?),
                            credit: AccountId(int(7)?),
                            amount_fen: int(8)?,
                        },
                        9,
                    ),
                    "P" => (
                        TransferKind::Pending {
                            debit: AccountId(int(6)?),
                            credit: AccountId(int(7)?),
                            amount_fen: int(8)?,
                            timeout_s: opt(9)?,
                        },
                        10,
                    ),
                    "PP" => {
                        let pending = words[6].parse::<u128>().map_err(|_| bad())?;
                        (TransferKind::PostPending { pending: TransferId(pending), amount_fen: opt(7)? }, 8)
                    }
                    "VP" => {
                        let pending = words[6].parse::<u128>().map_err(|_| bad())?;
                        (TransferKind::VoidPending { pending: TransferId(pending) }, 7)
                    }
                    _ => return Err(bad()),
                };
                if words.len() != used + 1 {
                    return Err(bad());
                }
                let outcome = match words[used] {
                    "ok" => Ok(()),
                    code => Err(ERRORS.into_iter().find(|e| e.code() == code).ok_or_else(bad)?),
                };
                Ok(Event::Transfer {
                    transfer: Transfer { id: TransferId(id), kind, linked, code },
                    at_s: int(1)?,
                    outcome,
                })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn kind() -> impl Strategy<Value = TransferKind> {
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(d, c, amount_fen)| TransferKind::Single {
                debit: AccountId(d),
                credit: AccountId(c),
                amount_fen
            }),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<Option<u64>>()).prop_map(
                |(d, c, amount_fen, timeout_s)| {
                    TransferKind::Pending { debit: AccountId(d), credit: AccountId(c), amount_fen, timeout_s }
                }
            ),
            (any::<u128>(), any::<Option<u64>>())
                .prop_map(|(p, amount_fen)| TransferKind::PostPending { pending: TransferId(p), amount_fen }),
            any::<u128>().prop_map(|p| TransferKind::VoidPending { pending: TransferId(p) }),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (any::<u64>(), 0..AccountKind::ALL.len(), 0..3usize).prop_map(|(id, k, l)| Event::Account(AccountSpec {
                id: AccountId(id),
                kind: AccountKind::ALL[k],
                limit: [Limit::None, Limit::DebitsWithinCredits, Limit::CreditsWithinDebits][l],
            })),
            (any::<u128>(), kind(), any::<bool>(), any::<u16>(), any::<u64>(), prop::option::of(0..ERRORS.len()))
                .prop_map(|(id, kind, linked, code, at_s, error)| Event::Transfer {
                    transfer: Transfer { id: TransferId(id), kind, linked, code },
                    at_s,
                    outcome: error.map_or(Ok(()), |e| Err(ERRORS[e])),
                }),
            (any::<u128>(), any::<u64>()).prop_map(|(p, at_s)| Event::Expired { pending: TransferId(p), at_s }),
        ]
    }

    proptest! {
        #[test]
        fn every_event_reads_back_as_written(event in event()) {
            prop_assert_eq!(Event::decode(&event.encode()), Ok(event));
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(line in ".{0,60}") {
            let _ = Event::decode(&line);
        }
    }

    #[test]
    fn a_line_reads_as_documented() {
        let line = "T 1700000000 42 3 0 S 1 7 50000 ok";
        let event = Event::decode(line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event.encode(), line);
        assert!(Event::decode("T 1 2 3 0 S 1 7 50000 ok extra").is_err());
        assert!(Event::decode("T 1 2 3 0 S 1 7 50000 bogus").is_err());
    }
}
