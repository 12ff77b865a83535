//! The web dashboard at `/ui/`: pages rendered on the server from the same functions the API
//! handlers are (so a page and the API never disagree), SVG charts drawn here, and one small
//! script of our own that refreshes figures in place and sends forms to the API.
//!
//! - Sign-in keeps the token in an `HttpOnly`, `SameSite=Strict` cookie ([`auth::COOKIE`]). The
//!   API accepts that cookie too, so the script's calls are the API's calls under the same roles;
//!   changes must also carry [`auth::CSRF_HEADER`].
//! - Words come from [`i18n`]: Chinese by default, English by the `lang` cookie.
//! - Money is shown in yuan with two decimals, computed from integer fen; times are sent as UTC in
//!   `<time datetime>` and shown in the viewer's zone by the script.
//! - Everything (script, style) is compiled into the binary: no network at run time.

pub mod charts;
pub mod i18n;
pub mod pages;
pub mod sim;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use suanwang_control::Control;
use suanwang_control::auth::Caller;
use suanwang_control::clock::rfc3339;
use suanwang_control::error::Error;
use suanwang_model::platform::Role;

use crate::auth;
use crate::error::status;
use i18n::{Lang, M};

pub use suanwang_report::html::{escape, thousands as group};

/// The dashboard's routes (mounted by [`crate::router`]).
pub fn routes() -> Router<Control> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::overview))
        .route("/ui/pools", get(pages::pools))
        .route("/ui/jobs", get(pages::jobs))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/market", get(pages::market))
        .route("/ui/vouchers", get(pages::vouchers))
        .route("/ui/money", get(pages::money))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/tokens", get(pages::tokens))
        .route("/ui/simulations", get(sim::page))
        .route("/ui/signin", get(signin_page).post(signin))
        .route("/ui/signout", post(signout))
        .route("/ui/lang", post(set_lang))
        .route("/ui/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/ui/assets/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
}

const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// The signed-in person looking at a page.
pub struct Viewer {
    /// Who, with the API's roles.
    pub caller: Caller,
    /// Their language.
    pub lang: Lang,
    /// The path they asked for (for the language switch to come back to).
    pub path: String,
}

impl Viewer {
    /// A message in the viewer's language.
    pub fn t(&self, message: M) -> &'static str {
        self.lang.t(message)
    }

    /// Whether the viewer is the operator or the auditor (who see everything).
    pub fn sees_everything(&self) -> bool {
        self.caller.sees_everything()
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.caller.role()
    }

    /// A whole page: navigation, the heading, `body`.
    pub fn page(&self, title: M, body: &str) -> Response {
        self.page_with_status(StatusCode::OK, self.t(title), title, body)
    }

    /// A page with its own heading, under the navigation entry `active`.
    pub fn page_titled(&self, heading: &str, active: M, body: &str) -> Response {
        self.page_with_status(StatusCode::OK, heading, active, body)
    }

    fn page_with_status(&self, status: StatusCode, heading: &str, active: M, body: &str) -> Response {
        let mut nav = String::new();
        for (message, href) in NAV {
            // Tokens are shown only to those who may read them.
            if *message == M::Tokens
                && suanwang_control::access::require(&self.caller, suanwang_control::access::Action::ReadTokens)
                    .is_err()
            {
                continue;
            }
            let current = if *message == active { " aria-current=\"page\"" } else { "" };
            nav += &format!("<li><a href=\"{href}\"{current}>{}</a></li>", self.t(*message));
        }
        let principal = &self.caller.principal;
        let name = if principal.label.is_empty() { self.caller.actor() } else { principal.label.clone() };
        let who = format!("{} · {}", escape(&name), self.caller.role().as_str());
        let chrome = format!(
            "<header class=\"top\"><a class=\"brand\" href=\"/ui/\">算网 Suanwang</a>\
             <nav aria-label=\"{nav_label}\"><ul>{nav}</ul></nav>\
             <div class=\"who\"><span title=\"{signed}\">{who}</span>{switch}\
             <form method=\"post\" action=\"/ui/signout\"><button type=\"submit\">{signout}</button></form></div></header>",
            nav_label = self.t(M::MainNav),
            signed = self.t(M::SignedInAs),
            switch = lang_switch(self.lang, &self.path),
            signout = self.t(M::SignOut),
        );
        let html = document(self.lang, heading, &chrome, &format!("<h1>{}</h1>\n{body}", escape(heading)));
        (status, Html(html)).into_response()
    }

    /// A page for an error the API would have answered with (403, 404, 503, …).
    pub fn error(&self, error: &Error) -> Response {
        let status = status(error.kind);
        let title = match status {
            StatusCode::NOT_FOUND => M::NotFoundTitle,
            StatusCode::FORBIDDEN => M::ForbiddenTitle,
            StatusCode::SERVICE_UNAVAILABLE => M::UnavailableTitle,
            _ => M::ErrorTitle,
        };
        let body = format!(
            "<p class=\"error\" role=\"alert\"><code>{}</code> {}</p><p><a href=\"/ui/\">{}</a></p>",
            escape(error.code),
            escape(&error.message),
            self.t(M::Overview)
        );
        self.page_with_status(status, self.t(title), title, &body)
    }
}

/// The button that switches to the other language and comes back to `back`.
fn lang_switch(lang: Lang, back: &str) -> String {
    let other = lang.other();
    format!(
        "<form method=\"post\" action=\"/ui/lang\"><input type=\"hidden\" name=\"lang\" value=\"{code}\">\
         <input type=\"hidden\" name=\"back\" value=\"{back}\">\
         <button type=\"submit\" lang=\"{code}\" aria-label=\"{switch}: {name}\">{name}</button></form>",
        code = other.code(),
        name = other.name(),
        back = escape(back),
        switch = lang.t(M::SwitchLanguage),
    )
}

/// The navigation: every page, in order.
pub const NAV: &[(M, &str)] = &[
    (M::Overview, "/ui/"),
    (M::Pools, "/ui/pools"),
    (M::Jobs, "/ui/jobs"),
    (M::Market, "/ui/market"),
    (M::Vouchers, "/ui/vouchers"),
    (M::Money, "/ui/money"),
    (M::Audit, "/ui/audit"),
    (M::Tokens, "/ui/tokens"),
    (M::Simulations, "/ui/simulations"),
];

/// The HTML document around a page.
fn document(lang: Lang, title: &str, chrome: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · {brand}</title>\n<link rel=\"icon\" href=\"data:,\">\n<link rel=\"stylesheet\" href=\"/ui/assets/app.css\">\n\
         <script src=\"/ui/assets/app.js\" defer></script>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">{skip}</a>\n{chrome}\n<main id=\"main\" tabindex=\"-1\">\n{main}\n</main>\n</body>\n</html>\n",
        code = lang.code(),
        title = escape(title),
        brand = lang.t(M::Brand),
        skip = lang.t(M::SkipToContent),
    )
}

/// Why a page request has no viewer: sent to the sign-in page (with the reason) instead.
pub struct SignInFirst {
    lang: Lang,
    reason: M,
    next: String,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let mut response = signin_response(self.lang, Some(self.reason), &self.next, StatusCode::UNAUTHORIZED);
        if self.reason != M::ReasonMissing {
            // A bad or expired token is forgotten, so the next visit starts clean.
            response.headers_mut().append(header::SET_COOKIE, clear_cookie());
        }
        response
    }
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::parse(auth::cookie(headers, "lang"))
}

impl FromRequestParts<Control> for Viewer {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, ctl: &Control) -> Result<Self, Self::Rejection> {
        let lang = lang_of(&parts.headers);
        let path = parts.uri.path_and_query().map_or("/ui/", |p| p.as_str()).to_owned();
        let Some(token) = auth::cookie(&parts.headers, auth::COOKIE) else {
            return Err(SignInFirst { lang, reason: M::ReasonMissing, next: path });
        };
        match suanwang_control::auth::authenticate(ctl, token).await {
            Ok(caller) => Ok(Viewer { caller, lang, path }),
            Err(e) if e.code == "token_expired" => Err(SignInFirst { lang, reason: M::ReasonExpired, next: path }),
            Err(e) if e.kind == suanwang_control::error::Kind::Unauthenticated => {
                Err(SignInFirst { lang, reason: M::ReasonInvalid, next: path })
            }
            // The database is down: say so rather than blame the token.
            Err(_) => Err(SignInFirst { lang, reason: M::UnavailableTitle, next: path }),
        }
    }
}

/// A local path to go back to after signing in (never another site).
fn safe_next(next: &str) -> &str {
    if next.starts_with("/ui/") && !next.starts_with("//") && next.len() <= 512 { next } else { "/ui/" }
}

fn signin_response(lang: Lang, reason: Option<M>, next: &str, status: StatusCode) -> Response {
    let reason = reason
        .map(|r| format!("<p class=\"error\" role=\"alert\" id=\"signin-reason\">{}</p>", lang.t(r)))
        .unwrap_or_default();
    let chrome = format!(
        "<header class=\"top\"><a class=\"brand\" href=\"/ui/\">算网 Suanwang</a><div class=\"who\">{}</div></header>",
        lang_switch(lang, "/ui/signin")
    );
    let main = format!(
        "<h1>{title}</h1>\n{reason}<p>{intro}</p>\
         <form method=\"post\" action=\"/ui/signin\" class=\"signin\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label for=\"token\">{token}</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required \
         spellcheck=\"false\" size=\"70\" aria-describedby=\"signin-reason\">\
         <button type=\"submit\">{title}</button></form>",
        title = lang.t(M::SignIn),
        intro = lang.t(M::SignInIntro),
        token = lang.t(M::Token),
        next = escape(safe_next(next)),
    );
    (status, Html(document(lang, lang.t(M::SignIn), &chrome, &main))).into_response()
}

/// Query of `GET /ui/signin`.
#[derive(Debug, Deserialize)]
pub struct SigninQuery {
    /// Where to go after signing in.
    #[serde(default)]
    next: Option<String>,
    /// `signed-out` after signing out.
    #[serde(default)]
    status: Option<String>,
}

async fn signin_page(
    headers: HeaderMap,
    query: Result<Query<SigninQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.ok().map(|q| q.0);
    let reason =
        query.as_ref().and_then(|q| q.status.as_deref()).filter(|s| *s == "signed-out").map(|_| M::ReasonSignedOut);
    let next = query.and_then(|q| q.next).unwrap_or_else(|| "/ui/".to_owned());
    signin_response(lang_of(&headers), reason, &next, StatusCode::OK)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SigninForm {
    token: String,
    #[serde(default)]
    next: String,
}

fn token_cookie(token: &str, max_age_s: Option<i64>) -> HeaderValue {
    let max_age = max_age_s.map(|s| format!("; Max-Age={}", s.max(1))).unwrap_or_default();
    HeaderValue::from_str(&format!("{}={token}; Path=/; HttpOnly; SameSite=Strict{max_age}", auth::COOKIE))
        .unwrap_or_else(|_| clear_cookie())
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("sw_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a form post comes from this site: a browser sends `Origin` with every POST, and
/// another site's page would name itself there (no `Origin`: not a browser form, allowed).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

fn cross_site() -> Response {
    crate::error::ApiError(Error::forbidden("this form must be sent from the dashboard's own pages")).into_response()
}

async fn signin(State(ctl): State<Control>, headers: HeaderMap, Form(form): Form<SigninForm>) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let lang = lang_of(&headers);
    let token = form.token.trim();
    // A token is `sw_` and hex: anything else cannot be one and must not reach a cookie header.
    if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return signin_response(lang, Some(M::ReasonInvalid), &form.next, StatusCode::UNAUTHORIZED);
    }
    match suanwang_control::auth::authenticate(&ctl, token).await {
        Ok(caller) => {
            let max_age = caller.principal.expires_ms.map(|e| (e - ctl.now_ms()) / 1000);
            let mut response = Redirect::to(safe_next(&form.next)).into_response();
            response.headers_mut().append(header::SET_COOKIE, token_cookie(token, max_age));
            response
        }
        Err(e) => {
            let reason = match e.code {
                "token_expired" => M::ReasonExpired,
                _ if e.kind == suanwang_control::error::Kind::Unauthenticated => M::ReasonInvalid,
                _ => M::UnavailableTitle,
            };
            signin_response(lang, Some(reason), &form.next, status(e.kind))
        }
    }
}

async fn signout(headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let mut response = Redirect::to("/ui/signin?status=signed-out").into_response();
    response.headers_mut().append(header::SET_COOKIE, clear_cookie());
    response
}

/// The language switch.
#[derive(Debug, Deserialize)]
pub struct LangForm {
    lang: String,
    #[serde(default)]
    back: String,
}

async fn set_lang(headers: HeaderMap, Form(form): Form<LangForm>) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let lang = Lang::parse(Some(form.lang.as_str()));
    let back = if form.back == "/ui/signin" { "/ui/signin" } else { safe_next(&form.back) };
    let mut response = Redirect::to(back).into_response();
    let cookie = format!("lang={}; Path=/; SameSite=Lax; Max-Age=31536000", lang.code());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The 404 page for paths outside the API (the API's own unknown paths answer JSON).
pub async fn not_found(State(ctl): State<Control>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::error::ApiError(Error::new(
            suanwang_control::error::Kind::NotFound,
            "not_found",
            "no such endpoint; see /api/v1/openapi.json",
        ))
        .into_response();
    }
    let lang = lang_of(&headers);
    let signed_in = match auth::cookie(&headers, auth::COOKIE) {
        Some(token) => suanwang_control::auth::authenticate(&ctl, token).await.ok(),
        None => None,
    };
    let message = format!("{} (<code>{}</code>)", lang.t(M::NotFoundText), escape(uri.path()));
    match signed_in {
        Some(caller) => {
            let viewer = Viewer { caller, lang, path: "/ui/".to_owned() };
            let body = format!("<p>{message}</p><p><a href=\"/ui/\">{}</a></p>", lang.t(M::Overview));
            viewer.page_with_status(StatusCode::NOT_FOUND, lang.t(M::NotFoundTitle), M::NotFoundTitle, &body)
        }
        None => {
            let main = format!(
                "<h1>{}</h1><p>{message}</p><p><a href=\"/ui/signin\">{}</a></p>",
                lang.t(M::NotFoundTitle),
                lang.t(M::SignIn)
            );
            let chrome = "<header class=\"top\"><a class=\"brand\" href=\"/ui/\">算网 Suanwang</a></header>";
            (StatusCode::NOT_FOUND, Html(document(lang, lang.t(M::NotFoundTitle), chrome, &main))).into_response()
        }
    }
}

/// `¥1,234.56` from fen (negative amounts keep their sign).
pub fn yuan(fen: i128) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", group(abs / 100), abs % 100)
}

/// A time the script shows in the viewer's zone (UTC until it does).
pub fn time(ms: i64) -> String {
    let iso = rfc3339(ms);
    format!("<time datetime=\"{iso}\">{}</time>", &iso[..16].replace('T', " "))
}

/// A time from the API's RFC 3339 text.
pub fn time_text(iso: &str) -> String {
    let shown = iso.get(..16).unwrap_or(iso).replace('T', " ");
    format!("<time datetime=\"{}\">{}</time>", escape(iso), escape(&shown))
}

/// The control plane's answer as a page value, or the page for its error.
#[allow(clippy::result_large_err, reason = "the error is the page to show, built once per request")]
pub fn ok<T>(viewer: &Viewer, result: Result<T, Error>) -> Result<T, Response> {
    result.map_err(|e| viewer.error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_yuan_with_two_decimals() {
        assert_eq!(yuan(0), "¥0.00");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(123_456_789), "¥1,234,567.89");
        assert_eq!(yuan(-100_000), "-¥1,000.00");
        assert_eq!(group(44_376u64), "44,376");
        assert_eq!(group(999u64), "999");
    }

    #[test]
    fn forms_come_from_this_site() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers), "no Origin: not a browser form");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn next_is_local() {
        assert_eq!(safe_next("/ui/jobs?state=queued"), "/ui/jobs?state=queued");
        assert_eq!(safe_next("https://evil.example/"), "/ui/");
        assert_eq!(safe_next("//evil.example/ui/"), "/ui/");
    }

    #[test]
    fn times_carry_utc_for_the_script() {
        assert_eq!(time(0), "<time datetime=\"1970-01-01T00:00:00.000Z\">1970-01-01 00:00</time>");
    }
}
