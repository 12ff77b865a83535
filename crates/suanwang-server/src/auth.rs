//! Bearer tokens: random, shown once, stored only as SHA-256 hashes. Every request names its
//! caller; roles decide what it may do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use suanwang_store::model::{Principal, Role};

use crate::error::ApiError;
use crate::state::AppState;

/// How long a token lookup is remembered.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// Tokens remembered at once.
const CACHE_MAX: usize = 10_000;

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

    fn put(&self, hash: String, principal: Principal) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (principal, Instant::now()));
        }
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
}

impl Caller {
    /// The audit log's name for this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.principal.token_id)
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// Fails unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.principal.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("a {} token cannot do this", self.principal.role.as_str())))
        }
    }

    /// Whether the caller may see everything (operator, auditor).
    pub fn sees_everything(&self) -> bool {
        matches!(self.principal.role, Role::Operator | Role::Auditor)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthenticated("unauthenticated", "send a token: Authorization: Bearer <token>")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| {
                ApiError::unauthenticated("unauthenticated", "the Authorization header must be: Bearer <token>")
            })?;
        let hash = hash_token(token);
        if let Some(principal) = state.tokens.get(&hash) {
            return Ok(Caller { principal });
        }
        let principal = state
            .store
            .principal(&hash)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("invalid_token", "the token is not valid"))?;
        state.tokens.put(hash, principal.clone());
        Ok(Caller { principal })
    }
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
