//! What the API tests share: a small federation (a free `local` pool and a simulated GPU pool), a
//! server on a fresh SQLite file with an operator token, and helpers to call it in process.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use suanwang_agent::backend::Backend;

use suanwang_control::Control;
use suanwang_control::clock::{ManualClock, SystemClock};
use suanwang_control::config::ControlConfig as ServerConfig;
use suanwang_store::audit::Verdict;
use suanwang_store::store::Store;
use tower::ServiceExt;

pub const FEDERATION: &str = r#"
name = "test"
[[site]]
name = "here"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.5
longitude_deg = 113.9

[[site]]
name = "there"
city = "Guangzhou"
region = "CN-GD"
latitude_deg = 23.1
longitude_deg = 113.3

[[link]]
between = ["here", "there"]
latency_ms = 2.0
bandwidth_gbps = 100

[[pool]]
name = "local"
site = "here"
provider = "this machine"
backend = "local"
pue = 1.0
card_hour_fen = {}
[[pool.nodes]]
count = 1
accelerators_per_node = 0
cpu_milli = 4000
memory_mib = 8192

[[pool]]
name = "gpu"
site = "there"
provider = "a data centre"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800-SXM4-80GB" = 1200 }
cpu_core_hour_fen = 5
[[pool.nodes]]
count = 2
accelerator = "A800-SXM4-80GB"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576
"#;

/// The Greater Bay Area model (18 pools, NVIDIA, Ascend, Cambricon and Hygon cards).
pub const GREATER_BAY_AREA: &str = include_str!("../../../../examples/federations/greater-bay-area.toml");

pub const HELLO: &str =
    r#"{"name":"hello","command":["sh","-c","echo hello"],"accelerators":0,"cpu_milli":500,"memory_mib":256}"#;

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Harness {
    pub state: Control,
    pub app: Router,
    pub operator: String,
    pub dir: std::path::PathBuf,
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl Harness {
    pub async fn new(config: ServerConfig) -> Self {
        Self::with_federation(FEDERATION, config).await
    }

    pub async fn open(dir: std::path::PathBuf, config: ServerConfig) -> Self {
        Self::open_with(dir, FEDERATION, config).await
    }

    /// A harness on another federation (TOML text).
    pub async fn with_federation(federation: &str, config: ServerConfig) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "suanwang_api_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self::open_with(dir, federation, config).await
    }

    /// A harness whose control plane reads `clock` (a test moves it by hand).
    pub async fn with_clock(config: ServerConfig, clock: Arc<ManualClock>) -> Self {
        Self::with_federation_and_clock(FEDERATION, config, clock).await
    }

    /// Another federation, and a clock moved by hand.
    pub async fn with_federation_and_clock(federation: &str, config: ServerConfig, clock: Arc<ManualClock>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "suanwang_api_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self::open_on(dir, federation, config, clock).await
    }

    async fn open_with(dir: std::path::PathBuf, federation: &str, config: ServerConfig) -> Self {
        Self::open_on(dir, federation, config, Arc::new(SystemClock)).await
    }

    /// A harness on a fresh schema of the PostgreSQL server that `SUANWANG_TEST_DATABASE_URL`
    /// names; `None` without one (a failure when `SUANWANG_REQUIRE_POSTGRES` is set, as in CI).
    pub async fn postgres(config: ServerConfig) -> Option<Self> {
        let Ok(url) = std::env::var("SUANWANG_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("SUANWANG_REQUIRE_POSTGRES").is_none(),
                "SUANWANG_REQUIRE_POSTGRES is set but SUANWANG_TEST_DATABASE_URL is not"
            );
            eprintln!("SKIPPED: set SUANWANG_TEST_DATABASE_URL to run this test on PostgreSQL");
            return None;
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let schema = format!("sw_api_{}_{n}", std::process::id());
        let store = Store::open_postgres(&url, Some(&schema)).await.unwrap();
        let dir = std::env::temp_dir().join(format!("suanwang_api_{}_{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Self::on_store(store, dir, FEDERATION, config, Arc::new(SystemClock)).await)
    }

    async fn open_on(
        dir: std::path::PathBuf,
        federation: &str,
        config: ServerConfig,
        clock: Arc<dyn suanwang_control::clock::Clock>,
    ) -> Self {
        let store = Store::open_sqlite(&dir.join("suanwang.db")).await.unwrap();
        Self::on_store(store, dir, federation, config, clock).await
    }

    async fn on_store(
        store: Store,
        dir: std::path::PathBuf,
        federation: &str,
        config: ServerConfig,
        clock: Arc<dyn suanwang_control::clock::Clock>,
    ) -> Self {
        let federation =
            suanwang_formats::federation::parse("test.toml", federation, &suanwang_formats::catalog::builtin())
                .unwrap();
        let state = suanwang_control::start_with_clock(store, federation, config, clock);
        let operator = "sw_operator_for_tests".to_owned();
        suanwang_control::bootstrap(&state, &operator).await.unwrap();
        let app = suanwang_server::router(state.clone());
        let (shutdown, _) = tokio::sync::watch::channel(false);
        Harness { state, app, operator, dir, shutdown }
    }

    /// A simulating in-process agent for every pool.
    pub fn start_sim_agents(&self) {
        let agents: Vec<(String, Backend)> =
            self.state.federation.pools().map(|(_, p)| (p.name.clone(), Backend::Sim)).collect();
        suanwang_control::start_agents(&self.state, &agents, &self.shutdown.subscribe());
    }

    pub fn start_agents(&self) {
        let agents = [("local".to_owned(), Backend::Local), ("gpu".to_owned(), Backend::Sim)];
        suanwang_control::start_agents(&self.state, &agents, &self.shutdown.subscribe());
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        self.call_with(method, uri, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Creates a tenant and returns a token for it.
    pub async fn tenant(&self, name: &str) -> String {
        let (status, tenant) = self
            .call(Method::POST, "/api/v1/tenants", Some(&self.operator), Some(&json!({"name": name}).to_string()))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let id = tenant["id"].as_i64().unwrap();
        let body = json!({"role": "tenant", "tenant": name}).to_string();
        let (status, token) = self.call(Method::POST, "/api/v1/tokens", Some(&self.operator), Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        raise_rate(self, id).await;
        token["token"].as_str().unwrap().to_owned()
    }

    pub async fn wait_for_state(&self, token: &str, id: i64, wanted: &str) -> Value {
        for _ in 0..200 {
            let (status, job) = self.call(Method::GET, &format!("/api/v1/jobs/{id}"), Some(token), None).await;
            assert_eq!(status, StatusCode::OK);
            if job["state"] == wanted {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, job) = self.call(Method::GET, &format!("/api/v1/jobs/{id}"), Some(token), None).await;
        panic!("job {id} never became {wanted}: {job:#}");
    }

    pub async fn audit_verifies(&self) {
        assert!(matches!(self.state.store.verify_audit().await.unwrap(), Verdict::Intact { .. }));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn post(h: &Harness, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    h.call(Method::POST, path, Some(token), Some(&body.to_string())).await
}

pub async fn get(h: &Harness, token: &str, path: &str) -> (StatusCode, Value) {
    h.call(Method::GET, path, Some(token), None).await
}

/// A tenant of a kind in a city, and its token.
pub async fn tenant(h: &Harness, name: &str, kind: &str, city: &str) -> (i64, String) {
    let (id, token) = tenant_with_default_quotas(h, name, kind, city).await;
    raise_rate(h, id).await;
    (id, token)
}

/// Tests poll far faster than people and scripts do (every 50 ms): their tenants get a request
/// rate of 1,000 a second instead of the default. The rate limit itself is tested with
/// [`tenant_with_default_quotas`].
async fn raise_rate(h: &Harness, id: i64) {
    let (status, q) =
        post(h, &h.operator, &format!("/api/v1/tenants/{id}/quotas"), json!({"requests_per_s": 1000})).await;
    assert_eq!(status, StatusCode::OK, "{q}");
}

/// A tenant and its token, with the platform's default quotas.
pub async fn tenant_with_default_quotas(h: &Harness, name: &str, kind: &str, city: &str) -> (i64, String) {
    let body = json!({"name": name, "kind": kind, "registration_city": city});
    let (status, t) = post(h, &h.operator, "/api/v1/tenants", body).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let (status, token) = post(h, &h.operator, "/api/v1/tokens", json!({"role": "tenant", "tenant": name})).await;
    assert_eq!(status, StatusCode::CREATED);
    (t["id"].as_i64().unwrap(), token["token"].as_str().unwrap().to_owned())
}

pub async fn token(h: &Harness, body: Value) -> String {
    let (status, token) = post(h, &h.operator, "/api/v1/tokens", body).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    token["token"].as_str().unwrap().to_owned()
}

pub fn program(id: &str, fiscal_year: i64, budget_fen: u64, cap: Option<u64>) -> Value {
    json!({
        "id": id,
        "name": "Test compute vouchers",
        "issuer": "Shenzhen",
        "fiscal_year": fiscal_year,
        "budget_fen": budget_fen,
        "firm_cap_fen": cap,
        "eligibility": {"registration_cities": ["Shenzhen"]},
        "subsidy": {"default_ratio_bps": 2000, "rules": [{"tenant_kinds": ["startup"], "ratio_bps": 6000}]},
    })
}

pub fn this_year() -> i64 {
    suanwang_billing::rating::year(wall_ms())
}

pub fn fast() -> ServerConfig {
    ServerConfig { tick: Duration::from_millis(20), startup_grace: Duration::from_secs(1), ..ServerConfig::default() }
}

/// The wall clock's now, for a manual clock to start at.
pub fn wall_ms() -> i64 {
    suanwang_control::clock::Clock::now_ms(&SystemClock)
}

/// Plays the `gpu` pool's agent (with `agent`'s token) for one job: reports the pool healthy,
/// waits until the job is placed there, starts it now, lets `run_ms` pass on `clock`, and ends it
/// successfully. Returns the run's start and end by the clock.
pub async fn run_as_agent(h: &Harness, clock: &ManualClock, agent: &str, job: i64, run_ms: i64) -> (i64, i64) {
    for _ in 0..400 {
        let beat = json!({"healthy": true, "running": []});
        assert_eq!(post(h, agent, "/api/v1/agent/heartbeat", beat).await.0, StatusCode::OK);
        let (status, work) = get(h, agent, "/api/v1/agent/work").await;
        assert_eq!(status, StatusCode::OK, "{work}");
        if work["start"].as_array().unwrap().iter().any(|w| w["id"] == job) {
            let started = suanwang_control::clock::Clock::now_ms(clock);
            let running = json!({"state": "running", "detail": "started", "at_ms": started});
            let (status, r) = post(h, agent, &format!("/api/v1/agent/jobs/{job}/state"), running).await;
            assert_eq!(status, StatusCode::OK, "{r}");
            clock.advance(run_ms);
            let ended = started + run_ms;
            let done = json!({"state": "succeeded", "detail": "exit code 0", "at_ms": ended});
            let (status, r) = post(h, agent, &format!("/api/v1/agent/jobs/{job}/state"), done).await;
            assert_eq!(status, StatusCode::OK, "{r}");
            return (started, ended);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {job} was never placed in gpu");
}
