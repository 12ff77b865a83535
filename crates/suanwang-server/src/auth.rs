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

/// The dashboard's cookie: the token itself, `HttpOnly` and `SameSite=Strict`.
pub const COOKIE: &str = "sw_token";

/// The header the dashboard's script sends with every call. A request authenticated by the
/// cookie that changes something must carry it: another site's form cannot set a header, so it
/// cannot act with a signed-in user's cookie (on top of `SameSite=Strict`).
pub const CSRF_HEADER: &str = "x-suanwang-csrf";

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Who holds `token`: remembered for a few seconds, refused when unknown, revoked or expired.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::unauthenticated("invalid_token", "the token is not valid"));
    }
    let hash = hash_token(token);
    let principal = match state.tokens.get(&hash) {
        Some(principal) => principal,
        None => {
            let principal = state
                .store
                .principal(&hash)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("invalid_token", "the token is not valid"))?;
            state.tokens.put(hash, principal.clone());
            principal
        }
    };
    if let Some(expires) = principal.expires_ms.filter(|e| *e <= crate::state::now_ms()) {
        return Err(ApiError::unauthenticated(
            "token_expired",
            format!("the token expired at {}; ask an operator for a new one", crate::state::rfc3339(expires)),
        ));
    }
    Ok(Caller { principal })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token =
                header.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).ok_or_else(|| {
                    ApiError::unauthenticated("unauthenticated", "the Authorization header must be: Bearer <token>")
                })?;
            return authenticate(state, token).await;
        }
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(ApiError::unauthenticated("unauthenticated", "send a token: Authorization: Bearer <token>"));
        };
        let safe = matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
        if !safe && !parts.headers.contains_key(CSRF_HEADER) {
            return Err(ApiError::forbidden(
                "a change authenticated by the dashboard's cookie must carry the X-Suanwang-CSRF header",
            ));
        }
        authenticate(state, token).await
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

#[cfg(test)]
mod cookie_tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = axum::http::HeaderMap::new();
        headers
            .append(axum::http::header::COOKIE, "lang=en; sw_token=sw_abc".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(cookie(&headers, "sw_token"), Some("sw_abc"));
        assert_eq!(cookie(&headers, "lang"), Some("en"));
        assert_eq!(cookie(&headers, "other"), None);
    }
}
