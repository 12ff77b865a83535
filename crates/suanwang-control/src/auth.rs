//! Tokens: random, shown once, stored only as SHA-256 hashes; and the caller a token names.
//! What a caller may do is [`crate::access`]'s to say.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::TryRngCore;
use sha2::{Digest, Sha256};
use suanwang_model::platform::{Role, TenantId};
use suanwang_store::model::Principal;

use crate::Control;
use crate::clock::rfc3339;
use crate::error::Error;

/// How long a token lookup is remembered.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// Tokens remembered at once.
const CACHE_MAX: usize = 10_000;

/// The longest token accepted (ours are 67 characters).
pub const TOKEN_MAX: usize = 256;

/// A fresh token: `sw_` and 64 hex digits of operating-system randomness.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system provides randomness");
    format!("sw_{}", hex(&bytes))
}

/// The hash the store keeps for a token.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Remembered token lookups.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        entries.get(hash).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(p, _)| p.clone())
    }

    /// Forgets every lookup (after a revocation).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    fn put(&self, hash: String, principal: Principal) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (principal, Instant::now()));
        }
    }
}

/// The authenticated caller of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
}

impl Caller {
    /// The platform acting for a pool (an in-process agent).
    pub fn agent_of(pool: &str) -> Self {
        Caller {
            principal: Principal {
                token_id: 0,
                role: Role::Provider,
                tenant_id: None,
                pool: Some(pool.to_owned()),
                label: format!("in-process agent of {pool}"),
                expires_ms: None,
            },
        }
    }

    /// The audit log's name for this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.principal.token_id)
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// A tenant token's tenant.
    pub fn tenant(&self) -> Option<TenantId> {
        if self.principal.role == Role::Tenant { self.principal.tenant_id } else { None }
    }

    /// A provider token's pool.
    pub fn pool(&self) -> Option<&str> {
        if self.principal.role == Role::Provider { self.principal.pool.as_deref() } else { None }
    }

    /// A programme administrator's programme (kept in the token's scope column).
    pub fn program(&self) -> Option<&str> {
        if self.principal.role == Role::ProgramAdmin { self.principal.pool.as_deref() } else { None }
    }

    /// Whether the caller may see everything (operator, auditor).
    pub fn sees_everything(&self) -> bool {
        matches!(self.principal.role, Role::Operator | Role::Auditor)
    }
}

/// Who holds `token`: remembered for a few seconds, refused when unknown, revoked or expired,
/// and when the token has used up its request rate ([`crate::quota::admit`]).
pub async fn authenticate(ctl: &Control, token: &str) -> Result<Caller, Error> {
    if token.is_empty() || token.len() > TOKEN_MAX {
        return Err(Error::unauthenticated("invalid_token", "the token is not valid"));
    }
    let hash = hash_token(token);
    let principal = match ctl.tokens.get(&hash) {
        Some(principal) => principal,
        None => {
            let principal = ctl
                .store
                .principal(&hash)
                .await?
                .ok_or_else(|| Error::unauthenticated("invalid_token", "the token is not valid"))?;
            ctl.tokens.put(hash, principal.clone());
            principal
        }
    };
    if let Some(expires) = principal.expires_ms.filter(|e| *e <= ctl.now_ms()) {
        return Err(Error::unauthenticated(
            "token_expired",
            format!("the token expired at {}; ask an operator for a new one", rfc3339(expires)),
        ));
    }
    let caller = Caller { principal };
    crate::quota::admit(ctl, &caller).await?;
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("sw_") && a.len() == 67);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), a);
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
