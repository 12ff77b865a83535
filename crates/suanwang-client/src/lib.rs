//! One typed client of the platform's REST API (`suanwang-api`'s types on the wire), used by the
//! CLI, the benchmarks and every agent that runs apart from the server. It is blocking (ureq):
//! async callers run it on a blocking thread.
//!
//! Every refusal comes back as a [`ClientError`] with the server's stable code, its sentence and
//! the field at fault; a server that cannot be reached is `unreachable`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use suanwang_api::admin::{
    AuditQuery, AuditVerdict, AuditView, Health, LinkView, NewTenant, NewToken, PoolView, SiteView, TenantView,
    TokenView,
};
use suanwang_api::agent::{Ack, Heartbeat, LogBatch, LogChunk, StateReport, UsageRecorded, UsageReport, Work};
use suanwang_api::apps::{DatasetView, NewDataset};
use suanwang_api::error::ErrorBody;
use suanwang_api::jobs::{Explanation, JobDetail, JobPage, JobRequest, JobView, ListQuery, LogPage, LogQuery};
use suanwang_api::ledger::TrialBalance;
use suanwang_api::market::{AuctionSummary, BookView, OrderBody, Prices, Quote, QuoteRequest};
use suanwang_api::money::{
    BalanceView, DecisionBody, EarningsView, InvoiceSummary, InvoiceView, Movement, NewApplication, NewClaim,
    NewRedemption, ProgramView, RedemptionView,
};
use suanwang_billing::Program;
use suanwang_billing::books::{Application, Claim};
use suanwang_billing::market::{AuctionRecord, BookOrder, MarketContract};
use suanwang_formats::apps::App;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The server's stable code, or `unreachable`, `no_token`, `invalid_response`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// The request field at fault, when the server named one.
    pub field: Option<String>,
}

impl ClientError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        ClientError { status: None, code: code.to_owned(), message: message.into(), field: None }
    }

    /// The server refused the request as it was (a 4xx): sending it again will not help.
    pub fn is_refusal(&self) -> bool {
        self.status.is_some_and(|s| (400..500).contains(&s))
    }

    /// Worth retrying later: the server could not be reached or was unavailable.
    pub fn is_transient(&self) -> bool {
        self.status.is_none_or(|s| s >= 500) && self.code != "no_token" && self.code != "invalid_response"
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ClientError {}

/// The platform's URL when nothing says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// A connection to the platform: its URL and a token.
#[derive(Clone, Debug)]
pub struct Client {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
    /// Waits a request may spend on `429 rate_limited` answers before giving up.
    rate_limit_patience: Duration,
}

/// How long one request waits, in all, on a token's rate limit before it gives up (each wait is
/// the server's `Retry-After`, at most [`RETRY_AFTER_MAX`]).
pub const RATE_LIMIT_PATIENCE: Duration = Duration::from_secs(30);

/// The longest single wait a `Retry-After` may ask for.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(10);

/// Percent-encodes a path segment or query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.,~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `?a=1&b=x` from a query struct's set fields.
fn query<Q: Serialize>(query: &Q) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(query) else { return String::new() };
    let pairs: Vec<String> = fields
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            format!("{k}={}", encode(&text))
        })
        .collect();
    if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) }
}

impl Client {
    /// A client of `server` (an `http://` URL) calling with `token`; each request gives up after
    /// `timeout`.
    pub fn new(server: &str, token: Option<&str>, timeout: Duration) -> Result<Self, ClientError> {
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(ClientError::new(
                "invalid_server",
                format!("the server must be an http:// URL, not {server:?}"),
            ));
        }
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        Ok(Client {
            server: server.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()).map(str::to_owned),
            agent,
            rate_limit_patience: RATE_LIMIT_PATIENCE,
        })
    }

    /// A client that answers `429 rate_limited` at once instead of waiting and sending again
    /// (what a load generator wants).
    pub fn impatient(mut self) -> Self {
        self.rate_limit_patience = Duration::ZERO;
        self
    }

    /// The server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Calls `method path` with an optional JSON body and headers; decodes the answer.
    pub fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        headers: &[(&str, &str)],
    ) -> Result<R, ClientError> {
        let token = self.token.as_deref().ok_or_else(|| {
            ClientError::new(
                "no_token",
                "no token: pass --token, set SUANWANG_TOKEN, or put token = \"…\" in the config file",
            )
        })?;
        // A body is serialised once: a request refused for its rate is sent again as it was.
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::new("invalid_request", format!("cannot write the request: {e}")))?;
        let mut waited = Duration::ZERO;
        let response = loop {
            let mut request = self
                .agent
                .request(method, &format!("{}{path}", self.server))
                .set("Authorization", &format!("Bearer {token}"));
            for (name, value) in headers {
                request = request.set(name, value);
            }
            let response = match &body {
                Some(body) => request.set("Content-Type", "application/json").send_bytes(body),
                None => request.call(),
            };
            // A 429 with Retry-After (`rate_limited`) was refused before anything was done:
            // waiting and sending the same request again is safe. Other 429s (a full quota)
            // carry no Retry-After and are answers.
            if let Err(ureq::Error::Status(429, r)) = &response
                && waited < self.rate_limit_patience
                && let Some(seconds) = r.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok())
            {
                let wait = Duration::from_secs(seconds).clamp(Duration::from_millis(100), RETRY_AFTER_MAX);
                std::thread::sleep(wait);
                waited += wait;
                continue;
            }
            break response;
        };
        match response {
            Ok(r) => r.into_json::<R>().map_err(|e| {
                ClientError::new("invalid_response", format!("the server's answer is not what this client reads: {e}"))
            }),
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let (code, message, field) = match serde_json::from_str::<ErrorBody>(&text) {
                    Ok(body) => (body.error.code, body.error.message, body.error.field),
                    Err(_) => ("http_error".to_owned(), format!("the server answered {status}"), None),
                };
                Err(ClientError { status: Some(status), code, message, field })
            }
            Err(e) => Err(ClientError::new("unreachable", format!("cannot reach {}: {e}", self.server))),
        }
    }

    fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.call::<(), R>("GET", path, None, &[])
    }

    fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R, ClientError> {
        self.call("POST", path, Some(body), &[])
    }

    fn post_empty<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.call("POST", path, Some(&serde_json::json!({})), &[])
    }

    /// `GET /healthz` (needs no token).
    pub fn health(&self) -> Result<Health, ClientError> {
        let response = self.agent.get(&format!("{}/healthz", self.server)).call();
        match response {
            Ok(r) => r.into_json().map_err(|e| ClientError::new("invalid_response", e.to_string())),
            Err(e) => Err(ClientError::new("unreachable", format!("cannot reach {}: {e}", self.server))),
        }
    }

    // ------------------------------------------------------------------------------------ jobs

    /// `POST /api/v1/jobs` with any body (a job, or a template with parameters); `key` makes a
    /// retry safe.
    pub fn submit<B: Serialize>(&self, body: &B, key: Option<&str>) -> Result<JobView, ClientError> {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        self.call("POST", "/api/v1/jobs", Some(body), &headers)
    }

    /// `POST /api/v1/job-arrays`: `size` jobs from one body (a job or a template with
    /// parameters); `key` makes a retry safe.
    pub fn submit_array<B: Serialize>(
        &self,
        size: u16,
        body: &B,
        key: Option<&str>,
    ) -> Result<suanwang_api::jobs::JobArrayView, ClientError> {
        let job = serde_json::to_value(body).map_err(|e| ClientError::new("invalid_body", e.to_string()))?;
        let request = suanwang_api::jobs::JobArrayRequest { size, job };
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        self.call("POST", "/api/v1/job-arrays", Some(&request), &headers)
    }

    /// `POST /api/v1/jobs`.
    pub fn submit_job(&self, job: &JobRequest, key: Option<&str>) -> Result<JobView, ClientError> {
        self.submit(job, key)
    }

    /// `GET /api/v1/jobs`.
    pub fn jobs(&self, q: &ListQuery) -> Result<JobPage, ClientError> {
        self.get(&format!("/api/v1/jobs{}", query(q)))
    }

    /// `GET /api/v1/jobs/{id}`.
    pub fn job(&self, id: i64) -> Result<JobDetail, ClientError> {
        self.get(&format!("/api/v1/jobs/{id}"))
    }

    /// `POST /api/v1/jobs/{id}/cancel`.
    pub fn cancel_job(&self, id: i64) -> Result<JobView, ClientError> {
        self.post_empty(&format!("/api/v1/jobs/{id}/cancel"))
    }

    /// `GET /api/v1/jobs/{id}/logs`.
    pub fn logs(&self, id: i64, q: &LogQuery) -> Result<LogPage, ClientError> {
        self.get(&format!("/api/v1/jobs/{id}/logs{}", query(q)))
    }

    /// `GET /api/v1/jobs/{id}/explain`.
    pub fn explain(&self, id: i64) -> Result<Explanation, ClientError> {
        self.get(&format!("/api/v1/jobs/{id}/explain"))
    }

    // ---------------------------------------------------------------------- pools, tenants, …

    /// `GET /api/v1/pools`.
    pub fn pools(&self) -> Result<Vec<PoolView>, ClientError> {
        self.get("/api/v1/pools")
    }

    /// `GET /api/v1/pools/{name}`.
    pub fn pool(&self, name: &str) -> Result<PoolView, ClientError> {
        self.get(&format!("/api/v1/pools/{}", encode(name)))
    }

    /// `POST /api/v1/pools/{name}/drain` or `/undrain`.
    pub fn drain(&self, name: &str, drained: bool) -> Result<PoolView, ClientError> {
        let verb = if drained { "drain" } else { "undrain" };
        self.post_empty(&format!("/api/v1/pools/{}/{verb}", encode(name)))
    }

    /// `GET /api/v1/sites`.
    pub fn sites(&self) -> Result<Vec<SiteView>, ClientError> {
        self.get("/api/v1/sites")
    }

    /// `GET /api/v1/links`.
    pub fn links(&self) -> Result<Vec<LinkView>, ClientError> {
        self.get("/api/v1/links")
    }

    /// `POST /api/v1/tenants`.
    pub fn create_tenant(&self, tenant: &NewTenant) -> Result<TenantView, ClientError> {
        self.post("/api/v1/tenants", tenant)
    }

    /// `GET /api/v1/tenants`.
    pub fn tenants(&self) -> Result<Vec<TenantView>, ClientError> {
        self.get("/api/v1/tenants")
    }

    /// `POST /api/v1/tokens`.
    pub fn create_token(&self, token: &NewToken) -> Result<TokenView, ClientError> {
        self.post("/api/v1/tokens", token)
    }

    /// `GET /api/v1/tokens` (every page).
    pub fn tokens(&self) -> Result<Vec<suanwang_api::admin::TokenInfo>, ClientError> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page: suanwang_api::admin::TokenPage = self.get(&format!("/api/v1/tokens?after={after}"))?;
            all.extend(page.tokens);
            match page.next_after {
                Some(next) if next > after => after = next,
                _ => return Ok(all),
            }
        }
    }

    /// `POST /api/v1/tokens/{id}/revoke`.
    pub fn revoke_token(&self, id: i64) -> Result<suanwang_api::admin::TokenInfo, ClientError> {
        self.post(&format!("/api/v1/tokens/{id}/revoke"), &serde_json::json!({}))
    }

    /// `GET /api/v1/tenants/{id}/quotas`.
    pub fn quotas(&self, tenant_id: i64) -> Result<suanwang_api::admin::Quotas, ClientError> {
        self.get(&format!("/api/v1/tenants/{tenant_id}/quotas"))
    }

    /// `POST /api/v1/tenants/{id}/quotas`.
    pub fn set_quotas(
        &self,
        tenant_id: i64,
        change: &suanwang_api::admin::QuotaChange,
    ) -> Result<suanwang_api::admin::Quotas, ClientError> {
        self.post(&format!("/api/v1/tenants/{tenant_id}/quotas"), change)
    }

    /// `GET /api/v1/audit`.
    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditView>, ClientError> {
        self.get(&format!("/api/v1/audit{}", query(q)))
    }

    /// `GET /api/v1/audit/verify`.
    pub fn verify_audit(&self) -> Result<AuditVerdict, ClientError> {
        self.get("/api/v1/audit/verify")
    }

    /// `GET /api/v1/apps`.
    pub fn apps(&self) -> Result<Vec<App>, ClientError> {
        self.get("/api/v1/apps")
    }

    /// `GET /api/v1/apps/{name}`.
    pub fn app(&self, name: &str) -> Result<App, ClientError> {
        self.get(&format!("/api/v1/apps/{}", encode(name)))
    }

    /// `POST /api/v1/datasets`.
    pub fn register_dataset(&self, dataset: &NewDataset) -> Result<DatasetView, ClientError> {
        self.post("/api/v1/datasets", dataset)
    }

    /// `GET /api/v1/datasets`.
    pub fn datasets(&self) -> Result<Vec<DatasetView>, ClientError> {
        self.get("/api/v1/datasets")
    }

    // ------------------------------------------------------------------------------------ money

    /// `POST /api/v1/programs`.
    pub fn load_program(&self, program: &Program) -> Result<ProgramView, ClientError> {
        self.post("/api/v1/programs", program)
    }

    /// `GET /api/v1/programs`.
    pub fn programs(&self) -> Result<Vec<ProgramView>, ClientError> {
        self.get("/api/v1/programs")
    }

    /// `GET /api/v1/programs/{id}`.
    pub fn program(&self, id: &str) -> Result<ProgramView, ClientError> {
        self.get(&format!("/api/v1/programs/{}", encode(id)))
    }

    /// `POST /api/v1/programs/{id}/expire`.
    pub fn expire_program(&self, id: &str) -> Result<ProgramView, ClientError> {
        self.post_empty(&format!("/api/v1/programs/{}/expire", encode(id)))
    }

    /// `POST /api/v1/programs/{id}/applications`.
    pub fn apply(&self, program: &str, body: &NewApplication) -> Result<Application, ClientError> {
        self.post(&format!("/api/v1/programs/{}/applications", encode(program)), body)
    }

    /// `GET /api/v1/applications`.
    pub fn applications(&self, program: Option<&str>) -> Result<Vec<Application>, ClientError> {
        self.get(&format!("/api/v1/applications{}", program_filter(program)))
    }

    /// `POST /api/v1/applications/{id}/decision`.
    pub fn decide(&self, id: u64, body: &DecisionBody) -> Result<Application, ClientError> {
        self.post(&format!("/api/v1/applications/{id}/decision"), body)
    }

    /// `POST /api/v1/programs/{id}/claims`.
    pub fn claim(&self, program: &str, body: &NewClaim) -> Result<Claim, ClientError> {
        self.post(&format!("/api/v1/programs/{}/claims", encode(program)), body)
    }

    /// `GET /api/v1/claims`.
    pub fn claims(&self, program: Option<&str>) -> Result<Vec<Claim>, ClientError> {
        self.get(&format!("/api/v1/claims{}", program_filter(program)))
    }

    /// `POST /api/v1/claims/{id}/redemptions`.
    pub fn redeem(&self, claim: u64, body: &NewRedemption) -> Result<RedemptionView, ClientError> {
        self.post(&format!("/api/v1/claims/{claim}/redemptions"), body)
    }

    /// `GET /api/v1/invoices`.
    pub fn invoices(&self, tenant: Option<i64>) -> Result<Vec<InvoiceSummary>, ClientError> {
        self.get(&format!("/api/v1/invoices{}", tenant.map(|t| format!("?tenant={t}")).unwrap_or_default()))
    }

    /// `GET /api/v1/invoices/{tenant}/{period}`.
    pub fn invoice(&self, tenant: i64, period: &str) -> Result<InvoiceView, ClientError> {
        self.get(&format!("/api/v1/invoices/{tenant}/{}", encode(period)))
    }

    /// `GET /api/v1/tenants/{id}/balance`.
    pub fn balance(&self, tenant: i64) -> Result<BalanceView, ClientError> {
        self.get(&format!("/api/v1/tenants/{tenant}/balance"))
    }

    /// `POST /api/v1/tenants/{id}/payments`.
    pub fn pay(&self, tenant: i64, body: &Movement) -> Result<BalanceView, ClientError> {
        self.post(&format!("/api/v1/tenants/{tenant}/payments"), body)
    }

    /// `GET /api/v1/pools/{name}/earnings`.
    pub fn earnings(&self, pool: &str) -> Result<EarningsView, ClientError> {
        self.get(&format!("/api/v1/pools/{}/earnings", encode(pool)))
    }

    /// `POST /api/v1/pools/{name}/payouts`.
    pub fn payout(&self, pool: &str, body: &Movement) -> Result<EarningsView, ClientError> {
        self.post(&format!("/api/v1/pools/{}/payouts", encode(pool)), body)
    }

    /// `GET /api/v1/ledger/trial-balance`.
    pub fn trial_balance(&self) -> Result<TrialBalance, ClientError> {
        self.get("/api/v1/ledger/trial-balance")
    }

    // ----------------------------------------------------------------------------------- market

    /// `GET /api/v1/market/prices`.
    pub fn prices(&self) -> Result<Prices, ClientError> {
        self.get("/api/v1/market/prices")
    }

    /// `POST /api/v1/market/orders` with an idempotency key.
    pub fn place_order(&self, order: &OrderBody, key: &str) -> Result<BookOrder, ClientError> {
        self.call("POST", "/api/v1/market/orders", Some(order), &[("Idempotency-Key", key)])
    }

    /// `POST /api/v1/market/orders/{id}/cancel`.
    pub fn cancel_order(&self, id: u64) -> Result<BookOrder, ClientError> {
        self.post_empty(&format!("/api/v1/market/orders/{id}/cancel"))
    }

    /// `GET /api/v1/market/book`.
    pub fn book(&self) -> Result<BookView, ClientError> {
        self.get("/api/v1/market/book")
    }

    /// `POST /api/v1/market/auctions`.
    pub fn run_auction(&self) -> Result<AuctionRecord, ClientError> {
        self.post_empty("/api/v1/market/auctions")
    }

    /// `GET /api/v1/market/auctions`.
    pub fn auctions(&self) -> Result<Vec<AuctionSummary>, ClientError> {
        self.get("/api/v1/market/auctions")
    }

    /// `GET /api/v1/market/contracts`.
    pub fn contracts(&self) -> Result<Vec<MarketContract>, ClientError> {
        self.get("/api/v1/market/contracts")
    }

    /// `POST /api/v1/quotes`.
    pub fn quote(&self, request: &QuoteRequest) -> Result<Quote, ClientError> {
        self.post("/api/v1/quotes", request)
    }

    // ------------------------------------------------------------------------------------ agents

    /// `POST /api/v1/agent/heartbeat`.
    pub fn heartbeat(&self, beat: &Heartbeat) -> Result<Ack, ClientError> {
        self.post("/api/v1/agent/heartbeat", beat)
    }

    /// `GET /api/v1/agent/work`.
    pub fn work(&self) -> Result<Work, ClientError> {
        self.get("/api/v1/agent/work")
    }

    /// `POST /api/v1/agent/jobs/{id}/state`.
    pub fn report_state(&self, job: i64, report: &StateReport) -> Result<Ack, ClientError> {
        self.post(&format!("/api/v1/agent/jobs/{job}/state"), report)
    }

    /// `POST /api/v1/agent/jobs/{id}/logs`.
    pub fn report_log(&self, job: i64, chunk: &LogChunk) -> Result<Ack, ClientError> {
        self.post(&format!("/api/v1/agent/jobs/{job}/logs"), chunk)
    }

    /// `GET /api/v1/agent/work?wait_s=…&after=…`: answered once the pool's work version is no
    /// longer `after`, or after `wait_s`.
    pub fn wait_for_work(&self, after: u64, wait_s: u64) -> Result<Work, ClientError> {
        self.get(&format!("/api/v1/agent/work?wait_s={wait_s}&after={after}"))
    }

    /// `POST /api/v1/agent/jobs/{id}/log-batches`.
    pub fn report_logs(&self, job: i64, batch: &LogBatch) -> Result<Ack, ClientError> {
        self.post(&format!("/api/v1/agent/jobs/{job}/log-batches"), batch)
    }

    /// `POST /api/v1/agent/usage`.
    pub fn report_usage(&self, usage: &UsageReport) -> Result<UsageRecorded, ClientError> {
        self.post("/api/v1/agent/usage", usage)
    }
}

fn program_filter(program: Option<&str>) -> String {
    program.map(|p| format!("?program={}", encode(p))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_carry_only_what_is_set() {
        assert_eq!(query(&ListQuery::default()), "");
        let q = ListQuery { state: Some("queued,running".to_owned()), limit: Some(5), ..ListQuery::default() };
        assert_eq!(query(&q), "?limit=5&state=queued,running");
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn servers_are_urls() {
        assert_eq!(Client::new("localhost:8080", None, Duration::from_secs(1)).unwrap_err().code, "invalid_server");
        let client = Client::new("http://127.0.0.1:1/", None, Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.server(), "http://127.0.0.1:1");
        assert_eq!(client.jobs(&ListQuery::default()).unwrap_err().code, "no_token");
    }
}
