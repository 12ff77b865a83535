//! Who is calling: a bearer token, or the dashboard's cookie (then a change must also carry the
//! CSRF header). What the caller may do is the control plane's access policy.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use suanwang_control::Control;
use suanwang_control::auth::{Caller, authenticate};
use suanwang_control::error::Error;

use crate::error::ApiError;

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

/// The authenticated caller of a request.
pub struct Auth(pub Caller);

impl FromRequestParts<Control> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctl: &Control) -> Result<Self, Self::Rejection> {
        if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token =
                header.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).ok_or_else(|| {
                    Error::unauthenticated("unauthenticated", "the Authorization header must be: Bearer <token>")
                })?;
            return Ok(Auth(authenticate(ctl, token).await?));
        }
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(Error::unauthenticated("unauthenticated", "send a token: Authorization: Bearer <token>").into());
        };
        let safe = matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
        if !safe && !parts.headers.contains_key(CSRF_HEADER) {
            return Err(Error::forbidden(
                "a change authenticated by the dashboard's cookie must carry the X-Suanwang-CSRF header",
            )
            .into());
        }
        Ok(Auth(authenticate(ctl, token).await?))
    }
}

#[cfg(test)]
mod tests {
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
