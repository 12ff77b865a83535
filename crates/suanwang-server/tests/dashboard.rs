//! The dashboard end to end in a real headless Chromium (Debian's `chromium`), against a server
//! on a TCP port: sign-in (missing, wrong and expired tokens give the sign-in page with the
//! reason), every page for each role, submitting and cancelling a job, a bad form value shown next
//! to its field with the API's message, approving a voucher application and a claim, draining a
//! pool, verifying the audit chain, running a simulation, the language switch, the 404 page and
//! keyboard access. Figures on the pages are checked against the API; no page may log a console
//! error; every page is saved as a PNG in the folder printed at the start.
//!
//! Without Chromium the test says so and passes, unless `SUANWANG_REQUIRE_BROWSER=1` (set by
//! `.ci/run`, which installs Chromium).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]
#![allow(clippy::print_stdout, reason = "the test names its screenshot folder")]

mod cdp;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdp::Browser;
use common::{Harness, fast, post, program, tenant, this_year, token};
use serde_json::{Value, json};
use suanwang_control::config::ControlConfig as ServerConfig;

/// A small trace for the simulations page.
const TRACE: &str = r#"{"id":"a","tenant":"x","submit_s":0,"duration_s":3600,"gpus_per_task":8}
{"id":"b","tenant":"y","submit_s":60,"duration_s":1800,"gpus_per_task":4}
{"id":"c","tenant":"x","submit_s":120,"duration_s":600,"gpus_per_task":8}
"#;

/// The API over HTTP, from the test's blocking thread.
struct Api {
    base: String,
}

impl Api {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let request =
            ureq::request(method, &format!("{}{path}", self.base)).set("Authorization", &format!("Bearer {token}"));
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    fn get(&self, path: &str, token: &str) -> Value {
        let (status, value) = self.call("GET", path, token, None);
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }
}

/// `¥1,234.56` as the dashboard writes fen.
fn yuan(fen: i64) -> String {
    suanwang_server::dashboard::yuan(i128::from(fen))
}

struct Session<'a> {
    browser: Browser,
    base: String,
    shots: &'a Path,
}

impl Session<'_> {
    fn sign_in(&mut self, token: &str) {
        self.browser.goto(&format!("{}/ui/signin", self.base));
        self.browser.eval(&format!("document.getElementById('token').value = {}", json!(token)));
        self.browser.navigate_with("document.querySelector('form.signin').submit()");
    }

    fn sign_out(&mut self) {
        self.browser.navigate_with("document.querySelector('form[action=\"/ui/signout\"]').submit()");
    }

    /// Opens a page, checks it rendered with a heading and without console errors, saves it.
    fn visit(&mut self, path: &str, shot: &str) -> String {
        self.browser.goto(&format!("{}{path}", self.base));
        let heading = self.browser.text("main h1");
        assert!(!heading.is_empty(), "{path} has a heading");
        self.no_console_errors(path);
        self.browser.screenshot(&self.shots.join(format!("{shot}.png")));
        heading
    }

    fn no_console_errors(&mut self, when: &str) {
        let errors = self.browser.take_console();
        assert!(errors.is_empty(), "console errors at {when}: {errors:#?}");
    }

    /// Console entries expected from a deliberate HTTP error (the browser logs the failed
    /// request): only those, with this status.
    fn only_http_errors(&mut self, status: u16, when: &str) {
        for entry in self.browser.take_console() {
            assert!(
                entry.text.contains(&format!("status of {status}")),
                "unexpected console entry at {when}: {entry:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let Some(chromium) = cdp::find_chromium() else {
        assert!(
            std::env::var("SUANWANG_REQUIRE_BROWSER").is_err(),
            "SUANWANG_REQUIRE_BROWSER is set but no Chromium was found (apt-get install chromium)"
        );
        eprintln!("SKIPPED: no Chromium (/usr/bin/chromium); install it to run the dashboard tests");
        return;
    };
    let traces = std::env::temp_dir().join(format!("suanwang_traces_{}", std::process::id()));
    std::fs::create_dir_all(&traces).unwrap();
    std::fs::write(traces.join("small.jsonl"), TRACE).unwrap();
    let config =
        ServerConfig { sample_interval: Duration::from_millis(200), traces_dir: Some(traces.clone()), ..fast() };
    let h = Harness::new(config).await;
    h.start_agents();
    let op = h.operator.clone();

    // A programme, its administrator, a start-up tenant that applied, and a finished GPU job,
    // rated into an invoice.
    assert_eq!(post(&h, &op, "/api/v1/programs", program("sz-dash", this_year(), 10_000_000, None)).await.0, 201);
    let admin = token(&h, json!({"role": "program-admin", "program": "sz-dash"})).await;
    let (tid, t) = tenant(&h, "acme", "startup", "Shenzhen").await;
    let (status, application) = post(&h, &t, "/api/v1/programs/sz-dash/applications", json!({})).await;
    assert_eq!(status, 201, "{application}");
    let (_, other) = tenant(&h, "globex", "sme", "Shenzhen").await;
    let (status, other_application) = post(&h, &other, "/api/v1/programs/sz-dash/applications", json!({})).await;
    assert_eq!(status, 201, "{other_application}");
    let other_application = other_application["id"].as_u64().unwrap();
    // Six seconds on 8 A800s at ¥12 a card-hour: 16 fen, metered by the platform.
    let body = json!({"name": "train", "command": ["train"], "accelerators": 8, "duration_s": 6});
    let (status, job) = post(&h, &t, "/api/v1/jobs", body).await;
    assert_eq!(status, 201, "{job}");
    let gpu_job = job["id"].as_i64().unwrap();
    h.wait_for_state(&t, gpu_job, "succeeded").await;
    suanwang_control::money::bill(&h.state).await.unwrap();
    let expiring = token(&h, json!({"role": "auditor", "ttl_seconds": 1})).await;
    let spare = token(&h, json!({"role": "auditor", "label": "spare"})).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, h.app.clone()).into_future());
    let shots = std::env::var("SUANWANG_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    println!("screenshots: {}", shots.display());
    let profile = std::env::temp_dir().join(format!("suanwang_chromium_{}", std::process::id()));
    let application_id = application["id"].as_u64().unwrap();

    let driven = tokio::task::spawn_blocking(move || {
        let api = Api { base: base.clone() };
        let mut s = Session { browser: Browser::start(&chromium, &profile), base: base.clone(), shots: &shots };

        // --- Signing in: no token, a wrong one, an expired one, then the tenant's.
        s.browser.goto(&format!("{base}/ui/jobs"));
        assert_eq!(s.browser.text("main h1"), "登录", "Chinese by default; the sign-in page, not a blank one");
        assert!(s.browser.text("#signin-reason").contains("请先登录"));
        assert_eq!(s.browser.eval("document.documentElement.lang"), "zh-CN");
        s.only_http_errors(401, "the sign-in page");
        s.browser.screenshot(&shots.join("zh-signin.png"));
        s.sign_in("sw_not_a_real_token");
        assert!(s.browser.text("#signin-reason").contains("令牌无效"));
        s.only_http_errors(401, "a wrong token");
        std::thread::sleep(Duration::from_millis(1100));
        s.sign_in(&expiring);
        assert!(s.browser.text("#signin-reason").contains("已过期"), "{}", s.browser.text("main"));
        s.only_http_errors(401, "an expired token");
        s.browser.screenshot(&shots.join("zh-signin-expired.png"));

        // Keyboard: the first Tab reaches the skip link.
        s.browser.goto(&format!("{base}/ui/signin"));
        s.browser.take_console();
        s.browser.press_tab();
        assert_eq!(s.browser.eval("document.activeElement.className"), "skip");

        s.sign_in(&t);
        assert_eq!(s.browser.text("main h1"), "联邦总览");
        assert_eq!(s.browser.eval("document.querySelector('nav a[href=\"/ui/tokens\"]') === null"), true);
        s.no_console_errors("the tenant's overview");

        // --- Overview figures are the API's.
        let pools = api.get("/api/v1/pools", &t);
        let cards: u64 = pools.as_array().unwrap().iter().map(|p| p["cards"].as_u64().unwrap()).sum();
        s.visit("/ui/", "zh-tenant-overview");
        assert_eq!(s.browser.text("#t-cards"), suanwang_server::dashboard::group(cards));
        assert_eq!(s.browser.text("#t-pools"), pools.as_array().unwrap().len().to_string());
        assert!(s.browser.eval("document.querySelectorAll('svg').length").as_u64().unwrap() >= 1, "the map");
        // Live numbers: the history chart appears without a reload once samples exist.
        s.browser.eval("window.__noReload = 1");
        s.browser.wait("document.querySelector('#history svg') !== null && window.__noReload === 1");

        // --- The tenant's pages.
        for (path, shot) in [
            ("/ui/pools", "zh-tenant-pools"),
            ("/ui/market", "zh-tenant-market"),
            ("/ui/vouchers", "zh-tenant-vouchers"),
            ("/ui/simulations", "zh-tenant-simulations"),
        ] {
            s.visit(path, shot);
        }
        // Money: the balance is the API's.
        s.visit("/ui/money", "zh-tenant-money");
        let balance = api.get(&format!("/api/v1/tenants/{tid}/balance"), &t);
        assert_eq!(s.browser.text("#t-balance"), yuan(balance["balance_fen"].as_i64().unwrap()));
        // The market: a buy order from the form (price in yuan, window in local time), a bad
        // price shown next to its field, then the order cancelled by its button.
        s.visit("/ui/market", "zh-tenant-market-form");
        let local = |days: u32| {
            format!(
                "(() => {{ const d = new Date(Date.now() + {days} * 86400000); const p = n => String(n).padStart(2, '0'); \
                 return `${{d.getFullYear()}}-${{p(d.getMonth() + 1)}}-${{p(d.getDate())}}T${{p(d.getHours())}}:00`; }})()"
            )
        };
        s.browser.eval(&format!("document.getElementById('order-start_s').value = {}", local(2)));
        s.browser.eval(&format!("document.getElementById('order-end_s').value = {}", local(3)));
        s.browser.eval("document.getElementById('order-limit_fen_per_card_hour').value = 'cheap'");
        s.browser.eval("document.getElementById('order').requestSubmit()");
        s.browser.wait("document.getElementById('order-limit_fen_per_card_hour-error').innerText.length > 0");
        s.only_http_errors(400, "a bad price");
        s.browser.eval("document.getElementById('order-limit_fen_per_card_hour').value = '12.5'");
        s.browser.navigate_with("document.getElementById('order').requestSubmit()");
        let book = api.get("/api/v1/market/book", &t);
        let order = &book["mine"][0];
        assert_eq!(
            (order["limit_fen_per_card_hour"].as_i64(), order["cards"].as_u64()),
            (Some(1250), Some(8)),
            "{book}"
        );
        assert_eq!(
            order["end_s"].as_u64().unwrap() - order["start_s"].as_u64().unwrap(),
            86_400,
            "local times, one day apart"
        );
        let order_id = order["id"].as_u64().unwrap();
        assert!(s.browser.text("#my-orders").contains("¥12.50"));
        s.browser.screenshot(&shots.join("zh-tenant-market-order.png"));
        s.browser.navigate_with(&format!("document.getElementById('cancel-order-{order_id}').requestSubmit()"));
        assert_eq!(api.get("/api/v1/market/book", &t)["mine"], json!([]));
        s.no_console_errors("placing and cancelling an order");

        // A tenant does not see the audit log: a proper page says so.
        s.browser.goto(&format!("{base}/ui/audit"));
        assert_eq!(s.browser.text("main h1"), "无权访问");
        s.only_http_errors(403, "the audit page for a tenant");

        // --- Jobs: a bad value is shown next to its field, with the API's own message.
        s.visit("/ui/jobs", "zh-tenant-jobs");
        assert!(s.browser.text("#job-list").contains("train"), "the tenant's job is listed");
        s.browser.eval("document.getElementById('submit-name').value = 'x'.repeat(300)");
        s.browser.eval("document.getElementById('submit').requestSubmit()");
        s.browser.wait("document.getElementById('submit-name-error').innerText.length > 0");
        let (status, e) = api.call("POST", "/api/v1/jobs", &t, Some(json!({"name": "x".repeat(300), "command": []})));
        assert_eq!(status, 400);
        let shown = s.browser.text("#submit-name-error");
        assert!(shown.contains(e["error"]["message"].as_str().unwrap()), "{shown} vs {e}");
        assert_eq!(s.browser.eval("document.getElementById('submit-name').getAttribute('aria-invalid')"), "true");
        s.browser.eval("document.getElementById('submit-name').value = 'dash-bad'");
        s.browser.eval("document.getElementById('submit-cpu_milli').value = '-5'");
        s.browser.eval("document.getElementById('submit').requestSubmit()");
        s.browser.wait("document.getElementById('submit-cpu_milli-error').innerText.length > 0");
        assert!(s.browser.text("#submit-cpu_milli-error").contains("cpu_milli"));
        s.browser.screenshot(&shots.join("zh-tenant-jobs-bad-value.png"));
        s.only_http_errors(400, "bad form values");

        // Chip fit from the form: jax on Ascend cards only can run nowhere; the refusal says so
        // next to the framework, and the models with a speed reached the API as typed choices.
        s.browser.eval("document.getElementById('submit-cpu_milli').value = '1000'");
        s.browser.eval("document.getElementById('submit-accelerators').value = '1'");
        s.browser.eval("document.getElementById('submit-framework').value = 'jax'");
        s.browser.eval("document.getElementById('submit-accelerator_models').value = 'Ascend-910B:0.6'");
        s.browser.eval("document.getElementById('submit').requestSubmit()");
        s.browser.wait("document.getElementById('submit-framework-error').innerText.length > 0");
        let shown = s.browser.text("#submit-framework-error");
        assert!(shown.contains("jax"), "{shown}");
        s.only_http_errors(422, "an unschedulable job from the form");
        s.browser.eval("document.getElementById('submit-accelerators').value = '0'");
        s.browser.eval("document.getElementById('submit-framework').value = ''");
        s.browser.eval("document.getElementById('submit-accelerator_models').value = ''");

        // Submit a long job, see it on its page, cancel it; the API agrees.
        s.browser.eval("document.getElementById('submit-name').value = 'dash-sleep'");
        s.browser.eval("document.getElementById('submit-command').value = 'sleep 60'");
        s.browser.eval("document.getElementById('submit-cpu_milli').value = '100'");
        s.browser.eval("document.getElementById('submit-memory_mib').value = '64'");
        s.browser.navigate_with("document.getElementById('submit').requestSubmit()");
        s.browser.wait("location.pathname.startsWith('/ui/jobs/')");
        let id: i64 = s.browser.eval("location.pathname.split('/').pop()").as_str().unwrap().parse().unwrap();
        let job = api.get(&format!("/api/v1/jobs/{id}"), &t);
        assert_eq!(job["name"], "dash-sleep");
        assert_eq!(job["request"]["command"], json!(["sleep", "60"]));
        s.browser
            .wait("['running', 'placed', 'queued'].includes(document.getElementById('job-state').innerText.trim())");
        s.browser.screenshot(&shots.join("zh-tenant-job.png"));
        s.browser.eval("document.getElementById('cancel').requestSubmit()");
        s.browser.wait("document.getElementById('job-state') && document.getElementById('job-state').innerText.trim() === 'cancelled'");
        assert_eq!(api.get(&format!("/api/v1/jobs/{id}"), &t)["state"], "cancelled");
        s.no_console_errors("submitting and cancelling a job");

        // --- Switch to English; the choice sticks across pages.
        s.browser.navigate_with("document.querySelector('form[action=\"/ui/lang\"]').submit()");
        assert_eq!(s.browser.eval("document.documentElement.lang"), "en");
        assert_eq!(s.browser.text("main h1"), format!("Job {id}"));
        s.visit("/ui/jobs", "en-tenant-jobs");
        assert_eq!(s.browser.text("main h1"), "Jobs");
        s.sign_out();
        assert!(s.browser.text("#signin-reason").contains("signed out"));

        // --- The programme's administrator approves the application, then pays a claim.
        s.sign_in(&admin);
        s.visit("/ui/vouchers", "en-admin-vouchers");
        s.browser.eval(&format!("document.getElementById('approve-app-{application_id}').requestSubmit()"));
        s.browser.wait(&format!("document.getElementById('approve-app-{application_id}') === null"));
        let apps = api.get("/api/v1/applications", &admin);
        assert_eq!(apps[0]["state"], "approved", "{apps}");
        // The other one is rejected with a reason typed into its form.
        let form = format!("reject-app-{other_application}");
        s.browser.eval(&format!("document.getElementById('{form}-reason').value = 'no registered office found'"));
        s.browser.navigate_with(&format!("document.getElementById('{form}').requestSubmit()"));
        let apps = api.get("/api/v1/applications", &admin);
        let rejected = apps.as_array().unwrap().iter().find(|a| a["id"] == other_application).unwrap();
        assert_eq!(
            (rejected["state"].as_str(), rejected["reason"].as_str()),
            (Some("rejected"), Some("no registered office found"))
        );
        let (status, claim) = api.call(
            "POST",
            "/api/v1/programs/sz-dash/claims",
            &t,
            Some(json!({"contract": format!("job:{gpu_job}"), "amount_fen": 10_000})),
        );
        assert_eq!(status, 201, "{claim}");
        let claim_id = claim["id"].as_u64().unwrap();
        s.browser.goto(&format!("{base}/ui/vouchers"));
        let form = format!("redeem-{claim_id}");
        assert_eq!(s.browser.eval(&format!("document.getElementById('{form}-job').value")), gpu_job.to_string());
        s.browser.screenshot(&shots.join("en-admin-claim.png"));
        s.browser.eval(&format!("document.getElementById('{form}').requestSubmit()"));
        s.browser.wait(&format!("document.getElementById('claim-{claim_id}-left').innerText !== '¥100.00'"));
        let claim = api.get(&format!("/api/v1/claims/{claim_id}"), &admin);
        assert!(claim["redeemed_fen"].as_u64().unwrap() > 0, "{claim}");
        let remaining = claim["face_fen"].as_i64().unwrap() - claim["redeemed_fen"].as_i64().unwrap();
        assert_eq!(s.browser.text(&format!("#claim-{claim_id}-left")), yuan(remaining));
        let report = api.get("/api/v1/programs/sz-dash", &admin);
        assert_eq!(s.browser.text("#paid-sz-dash"), yuan(report["report"]["paid_fen"].as_i64().unwrap()));
        s.no_console_errors("approving");
        s.sign_out();

        // --- The operator: every page, a drain, the audit chain, a simulation, the 404 page.
        s.sign_in(&h_operator());
        for (path, shot) in [
            ("/ui/", "en-operator-overview"),
            ("/ui/pools", "en-operator-pools"),
            ("/ui/jobs", "en-operator-jobs"),
            ("/ui/market", "en-operator-market"),
            ("/ui/vouchers", "en-operator-vouchers"),
            ("/ui/money", "en-operator-money"),
            ("/ui/audit", "en-operator-audit"),
            ("/ui/simulations", "en-operator-simulations"),
        ] {
            s.visit(path, shot);
        }
        s.visit("/ui/pools", "en-operator-pools");
        s.browser.eval("document.getElementById('drain-gpu').requestSubmit()");
        s.browser.wait("document.getElementById('undrain-gpu') !== null");
        assert_eq!(api.get("/api/v1/pools/gpu", &h_operator())["drained"], true);
        s.browser.eval("document.getElementById('undrain-gpu').requestSubmit()");
        s.browser.wait("document.getElementById('drain-gpu') !== null");
        assert_eq!(api.get("/api/v1/pools/gpu", &h_operator())["drained"], false);

        s.visit("/ui/audit", "en-operator-audit");
        s.browser.eval("document.getElementById('verify').click()");
        s.browser.wait("document.getElementById('verify-result').innerText.length > 0");
        let verdict = api.get("/api/v1/audit/verify", &h_operator());
        assert!(s.browser.text("#verify-result").contains(&format!("{} entries", verdict["entries"])));
        assert_eq!(verdict["intact"], true);

        // Tokens: listed without secrets; the spare one revoked with a click stops working.
        assert_eq!(s.browser.eval("document.querySelector('nav a[href=\"/ui/tokens\"]') !== null"), true);
        assert_eq!(s.visit("/ui/tokens", "en-operator-tokens"), "Tokens");
        let html = s.browser.eval("document.documentElement.outerHTML").as_str().unwrap().to_owned();
        assert!(!html.contains(&spare) && !html.contains(&h_operator()), "a token's secret on the page");
        assert_eq!(s.browser.eval("document.getElementById('revoke-1') === null"), true, "the last operator's token");
        let listed = api.get("/api/v1/tokens", &h_operator());
        let spare_id =
            listed["tokens"].as_array().unwrap().iter().find(|t| t["label"] == "spare").unwrap()["id"].clone();
        assert_eq!(api.call("GET", "/api/v1/pools", &spare, None).0, 200);
        s.browser.eval(&format!("document.getElementById('revoke-{spare_id}').requestSubmit()"));
        s.browser.wait(&format!(
            "document.getElementById('token-{spare_id}') && !document.getElementById('revoke-{spare_id}')"
        ));
        assert!(s.browser.text(&format!("#token-{spare_id}")).contains("revoked"));
        assert_eq!(api.call("GET", "/api/v1/pools", &spare, None).0, 401);
        s.no_console_errors("revoking a token");

        s.visit("/ui/simulations", "en-operator-simulations");
        s.browser.eval("document.getElementById('sim-trace_file').value = 'small.jsonl'");
        s.browser.eval("document.getElementById('sim').requestSubmit()");
        s.browser.wait("document.getElementById('report') !== null");
        let runs = api.get("/api/v1/simulations", &h_operator());
        assert_eq!(runs[0]["jobs"], 3, "{runs}");
        assert!(s.browser.text("#h-report").contains("small.jsonl"));
        s.browser.screenshot(&shots.join("en-operator-simulation-report.png"));
        s.no_console_errors("a simulation");

        s.browser.goto(&format!("{base}/ui/no-such-page"));
        assert_eq!(s.browser.text("main h1"), "Page not found");
        s.only_http_errors(404, "the 404 page");
        s.browser.screenshot(&shots.join("en-404.png"));
        shots
    });
    let shots = driven.await.unwrap();
    h.audit_verifies().await;
    let saved = std::fs::read_dir(&shots).unwrap().count();
    assert!(saved >= 20, "screenshots saved: {saved}");
    let _ = std::fs::remove_dir_all(&traces);
}

/// The operator token every harness bootstraps.
fn h_operator() -> String {
    "sw_operator_for_tests".to_owned()
}
