//! The hash-chained audit log: every entry's hash covers the previous entry's hash and its own
//! fields, so changing, inserting or removing any entry breaks the chain from there on.

use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (ms since 1970, UTC).
    pub at_ms: i64,
    /// Who (`token:12`, `scheduler`, `agent:pool`).
    pub actor: String,
    /// What (`job.submit`, `job.running`, `tenant.create`, …).
    pub action: String,
    /// What it was done to (`job:42`).
    pub subject: String,
    /// Digest of the subject before (or `-`).
    pub before_digest: String,
    /// Digest of the subject after.
    pub after_digest: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Hex SHA-256 of some text.
pub fn digest(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// What an audit entry records, besides its place in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<'a> {
    /// When (ms).
    pub at_ms: i64,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// To what.
    pub subject: &'a str,
    /// Digest before.
    pub before: &'a str,
    /// Digest after.
    pub after: &'a str,
}

/// The hash of entry `seq` recording `change`, after `prev_hash`.
pub fn entry_hash(prev_hash: &str, seq: i64, change: &Change<'_>) -> String {
    let mut hasher = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        &change.at_ms.to_string(),
        change.actor,
        change.action,
        change.subject,
        change.before,
        change.after,
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

impl AuditEntry {
    /// What the entry records (the part its hash covers, with the sequence number and previous hash).
    pub fn change(&self) -> Change<'_> {
        Change {
            at_ms: self.at_ms,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            before: &self.before_digest,
            after: &self.after_digest,
        }
    }
}

/// The result of checking a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry checks out.
    Intact {
        /// Entries checked.
        entries: i64,
    },
    /// The first entry that does not.
    Broken {
        /// Its sequence number.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

/// Checks entries in order, continuing from `prev_hash` and expecting `next_seq` first.
pub fn check(entries: &[AuditEntry], prev_hash: &mut String, next_seq: &mut i64) -> Option<Verdict> {
    for e in entries {
        if e.seq != *next_seq {
            return Some(Verdict::Broken {
                seq: *next_seq,
                reason: format!("entry {} is missing (found {} next)", next_seq, e.seq),
            });
        }
        if e.prev_hash != *prev_hash {
            return Some(Verdict::Broken {
                seq: e.seq,
                reason: "its previous-hash does not match the entry before it".to_owned(),
            });
        }
        let expected = entry_hash(&e.prev_hash, e.seq, &e.change());
        if e.hash != expected {
            return Some(Verdict::Broken {
                seq: e.seq,
                reason: "its contents do not match its hash (changed after writing)".to_owned(),
            });
        }
        prev_hash.clone_from(&e.hash);
        *next_seq += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let subject = format!("job:{seq}");
                let hash = entry_hash(
                    &prev,
                    seq,
                    &Change {
                        at_ms: seq * 10,
                        actor: "a",
                        action: "job.submit",
                        subject: &subject,
                        before: "-",
                        after: "x",
                    },
                );
                let e = AuditEntry {
                    seq,
                    at_ms: seq * 10,
                    actor: "a".to_owned(),
                    action: "job.submit".to_owned(),
                    subject: format!("job:{seq}"),
                    before_digest: "-".to_owned(),
                    after_digest: "x".to_owned(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry]) -> Option<Verdict> {
        check(entries, &mut GENESIS.to_owned(), &mut 1)
    }

    #[test]
    fn a_chain_verifies_and_tampering_is_named() {
        let good = chain(5);
        assert_eq!(verify(&good), None);
        let mut edited = good.clone();
        edited[2].actor = "mallory".to_owned();
        assert_eq!(
            verify(&edited),
            Some(Verdict::Broken {
                seq: 3,
                reason: "its contents do not match its hash (changed after writing)".to_owned()
            })
        );
        let mut removed = good.clone();
        removed.remove(1);
        assert!(matches!(verify(&removed), Some(Verdict::Broken { seq: 2, .. })));
        let mut rehashed = good;
        rehashed[1].after_digest = "y".to_owned();
        rehashed[1].hash = entry_hash(
            &rehashed[1].prev_hash,
            2,
            &Change { at_ms: 20, actor: "a", action: "job.submit", subject: "job:2", before: "-", after: "y" },
        );
        assert!(
            matches!(verify(&rehashed), Some(Verdict::Broken { seq: 3, .. })),
            "re-hashing one entry breaks the next"
        );
        assert_eq!(digest("").len(), 64);
    }
}
