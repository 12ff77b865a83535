//! The dashboard's HTTP side in process (the browser test drives the same pages in Chromium):
//! sign-in by cookie and its refusals, the cookie on the API and its CSRF header, expired tokens,
//! pages per role, 404s, error fields for forms, newest-first job lists, audit verification and
//! the simulations API's bad input.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Harness, fast, post, tenant, token};
use serde_json::json;
use tower::ServiceExt;

/// A request with optional cookie and form or JSON body; the status, headers and text.
async fn send(
    h: &Harness,
    method: Method,
    uri: &str,
    cookie: Option<&str>,
    body: Option<(&str, String)>,
    extra: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let request = match body {
        Some((content_type, body)) => request.header(header::CONTENT_TYPE, content_type).body(Body::from(body)),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = h.app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn signing_in_sets_a_strict_cookie_and_bad_tokens_say_why() {
    let h = Harness::new(fast()).await;
    // No cookie: the sign-in page with the reason, in Chinese by default.
    let (status, _, page) = send(&h, Method::GET, "/ui/jobs", None, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("<html lang=\"zh-CN\">") && page.contains("请先登录"), "{page}");
    assert!(page.contains("name=\"next\" value=\"/ui/jobs\""), "comes back to the page asked for");
    // English by the lang cookie.
    let (_, _, page) = send(&h, Method::GET, "/ui/", Some("lang=en"), None, &[]).await;
    assert!(page.contains("Please sign in first."));
    // A wrong token.
    let form = ("application/x-www-form-urlencoded", "token=sw_wrong&next=%2Fui%2Fpools".to_owned());
    let (status, _, page) = send(&h, Method::POST, "/ui/signin", None, Some(form), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("令牌无效"));
    // Something that cannot be a token never reaches a header.
    let form = ("application/x-www-form-urlencoded", "token=a%0d%0aSet-Cookie:%20x=1".to_owned());
    let (status, headers, _) = send(&h, Method::POST, "/ui/signin", None, Some(form), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    // The operator's token: a strict, HttpOnly cookie and back to the page asked for; never
    // another site.
    let form = ("application/x-www-form-urlencoded", format!("token={}&next=%2Fui%2Fpools", h.operator));
    let (status, headers, _) = send(&h, Method::POST, "/ui/signin", None, Some(form), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/ui/pools");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let form = ("application/x-www-form-urlencoded", format!("token={}&next=https://evil.example/", h.operator));
    let (_, headers, _) = send(&h, Method::POST, "/ui/signin", None, Some(form), &[]).await;
    assert_eq!(headers[header::LOCATION], "/ui/");
    // Another site's page cannot sign a visitor in (or out, or switch the language).
    let form = ("application/x-www-form-urlencoded", format!("token={}", h.operator));
    let cross = [("origin", "https://evil.example"), ("host", "127.0.0.1:8080")];
    let (status, headers, _) = send(&h, Method::POST, "/ui/signin", None, Some(form), &cross).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(header::SET_COOKIE).is_none());

    // An expired token is refused by the API and the pages alike, with the reason.
    let expiring = token(&h, json!({"role": "auditor", "ttl_seconds": 1})).await;
    let (status, e) = post(&h, &h.operator, "/api/v1/tokens", json!({"role": "auditor", "ttl_seconds": 0})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_ttl")));
    assert_eq!(h.call(Method::GET, "/api/v1/pools", Some(&expiring), None).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, e) = h.call(Method::GET, "/api/v1/pools", Some(&expiring), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_expired")));
    let cookie = format!("sw_token={expiring}");
    let (status, headers, page) = send(&h, Method::GET, "/ui/", Some(&cookie), None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("已过期"));
    assert!(headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"), "the dead cookie is cleared");
}

#[tokio::test]
async fn the_cookie_works_on_the_api_and_changes_need_the_csrf_header() {
    let h = Harness::new(fast()).await;
    let cookie = format!("sw_token={}", h.operator);
    let (status, _, body) = send(&h, Method::GET, "/api/v1/pools", Some(&cookie), None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A change with only the cookie (what another site's form could send) is refused.
    let (status, _, body) = send(&h, Method::POST, "/api/v1/pools/gpu/drain", Some(&cookie), None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) =
        send(&h, Method::POST, "/api/v1/pools/gpu/drain", Some(&cookie), None, &[("x-suanwang-csrf", "1")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn every_page_renders_for_every_role_and_missing_pages_are_404() {
    let h = Harness::new(fast()).await;
    let (_, t) = tenant(&h, "acme", "startup", "Shenzhen").await;
    let provider = token(&h, json!({"role": "provider", "pool": "gpu"})).await;
    let auditor = token(&h, json!({"role": "auditor"})).await;
    let body = json!({"name": "a<b>", "command": ["true"], "accelerators": 0, "cpu_milli": 100, "memory_mib": 64});
    let (status, job) = post(&h, &t, "/api/v1/jobs", body).await;
    assert_eq!(status, StatusCode::CREATED);
    let job_page = format!("/ui/jobs/{}", job["id"]);
    let pages = [
        "/ui/",
        "/ui/pools",
        "/ui/jobs",
        job_page.as_str(),
        "/ui/market",
        "/ui/vouchers",
        "/ui/money",
        "/ui/simulations",
    ];
    for who in [&h.operator, &t, &provider, &auditor] {
        let cookie = format!("sw_token={who}; lang=en");
        for page in pages {
            let (status, _, html) = send(&h, Method::GET, page, Some(&cookie), None, &[]).await;
            let expected = if page == job_page && (*who == provider) { StatusCode::NOT_FOUND } else { StatusCode::OK };
            assert_eq!(status, expected, "{page}: {html}");
            assert!(html.contains("<main id=\"main\"") && html.contains("<h1>"), "{page}");
            assert!(!html.contains("a<b>"), "names are escaped");
        }
    }
    // The audit page is for operators and auditors; others get a proper 403 page.
    let (status, _, _) = send(&h, Method::GET, "/ui/audit", Some(&format!("sw_token={auditor}")), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, html) = send(&h, Method::GET, "/ui/audit", Some(&format!("sw_token={t}")), None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("无权访问"));
    // A missing page is a 404 page; a missing API path is JSON.
    let (status, _, html) = send(&h, Method::GET, "/ui/nope", Some(&format!("sw_token={t}")), None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("页面不存在"));
    let (status, _, html) = send(&h, Method::GET, "/nope", None, None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("<!DOCTYPE html>"));
    let (status, e) = h.call(Method::GET, "/api/v1/nope", Some(&t), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    // Assets are in the binary.
    let (status, headers, js) = send(&h, Method::GET, "/ui/assets/app.js", None, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.contains("X-Suanwang-CSRF"));
}

#[tokio::test]
async fn api_errors_name_the_field_and_lists_go_newest_first() {
    let h = Harness::new(fast()).await;
    let (_, t) = tenant(&h, "acme", "startup", "Shenzhen").await;
    for (body, field) in [
        (json!({"name": "", "command": []}), "name"),
        (json!({"name": "x", "cpu_milli": -5}), "cpu_milli"),
        (json!({"name": "x", "accelerators": 99}), "accelerators"),
        (json!({"name": "x", "cpu_milli": 10, "pool": "nowhere"}), "pool"),
    ] {
        let (status, e) = post(&h, &t, "/api/v1/jobs", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(e["error"]["field"], field, "{body}: {e}");
    }
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = json!({"name": format!("j{i}"), "command": ["true"], "cpu_milli": 10, "memory_mib": 16});
        ids.push(post(&h, &t, "/api/v1/jobs", body).await.1["id"].as_i64().unwrap());
    }
    let (_, page) = h.call(Method::GET, "/api/v1/jobs?order=desc&limit=2", Some(&t), None).await;
    let got: Vec<i64> = page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(got, vec![ids[4], ids[3]]);
    let after = page["next_after"].as_i64().unwrap();
    let (_, page) =
        h.call(Method::GET, &format!("/api/v1/jobs?order=desc&limit=2&after={after}"), Some(&t), None).await;
    assert_eq!(page["jobs"][0]["id"], ids[2]);
    let path = format!("/api/v1/jobs/{}/logs?tail=5&after=1", ids[0]);
    assert_eq!(h.call(Method::GET, &path, Some(&t), None).await.0, StatusCode::BAD_REQUEST);
    let path = format!("/api/v1/jobs/{}/logs?tail=5", ids[0]);
    assert_eq!(h.call(Method::GET, &path, Some(&t), None).await.0, StatusCode::OK);
    let (status, e) = h.call(Method::GET, "/api/v1/jobs?order=sideways", Some(&t), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
}

#[tokio::test]
async fn audit_verification_and_simulations_through_the_api() {
    let h = Harness::new(fast()).await;
    let (_, t) = tenant(&h, "acme", "startup", "Shenzhen").await;
    let (status, verdict) = h.call(Method::GET, "/api/v1/audit/verify", Some(&h.operator), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verdict["intact"], true);
    assert!(verdict["entries"].as_i64().unwrap() >= 2);
    assert_eq!(h.call(Method::GET, "/api/v1/audit/verify", Some(&t), None).await.0, StatusCode::FORBIDDEN);

    let trace = "{\"id\":\"a\",\"tenant\":\"x\",\"submit_s\":0,\"duration_s\":60,\"gpus_per_task\":8}\n";
    let (status, run) = post(&h, &t, "/api/v1/simulations", json!({"trace": trace})).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!((run["jobs"].as_u64(), run["federation"].as_str()), (Some(1), Some("test")));
    let (status, run2) =
        post(&h, &t, "/api/v1/simulations", json!({"trace": trace, "federation": "greater-bay-area"})).await;
    assert_eq!(status, StatusCode::CREATED, "{run2}");
    // Your runs, newest first; other tenants see none of them.
    let (_, mine) = h.call(Method::GET, "/api/v1/simulations", Some(&t), None).await;
    assert_eq!(mine[0]["id"], run2["id"]);
    let (_, other) = tenant(&h, "globex", "sme", "Shenzhen").await;
    let (_, theirs) = h.call(Method::GET, "/api/v1/simulations", Some(&other), None).await;
    assert_eq!(theirs, json!([]));
    let path = format!("/api/v1/simulations/{}", run["id"]);
    assert_eq!(h.call(Method::GET, &path, Some(&other), None).await.0, StatusCode::NOT_FOUND);
    // Bad input: a 400 naming the field.
    for (body, code, field) in [
        (json!({"trace": trace, "federation": "atlantis"}), "unknown_federation", "federation"),
        (json!({"trace": trace, "policy": "chaos"}), "invalid_policy", "policy"),
        (json!({}), "invalid_trace", "trace"),
        (json!({"trace": "not json\n"}), "malformed_trace", "trace"),
        (json!({"trace_file": "../../etc/passwd"}), "unknown_trace", "trace_file"),
        (json!({"trace": trace, "trace_format": "xml"}), "invalid_trace_format", "trace_format"),
    ] {
        let (status, e) = post(&h, &t, "/api/v1/simulations", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!((e["error"]["code"].as_str(), e["error"]["field"].as_str()), (Some(code), Some(field)), "{e}");
    }
}
