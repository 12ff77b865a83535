//! The platform over HTTP, for agents that run next to a provider's cluster.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{Heartbeat, LogChunk, Platform, PlatformError, StateReport, UsageReport, Work};

/// Seconds before a request to the platform gives up.
const TIMEOUT_S: u64 = 30;

/// A platform at `server` (e.g. `http://127.0.0.1:8080`), called with a pool token.
#[derive(Clone, Debug)]
pub struct HttpPlatform {
    server: String,
    token: String,
    agent: ureq::Agent,
}

impl HttpPlatform {
    /// A client for `server` with `token`.
    pub fn new(server: &str, token: &str) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(TIMEOUT_S)).build();
        HttpPlatform { server: server.trim_end_matches('/').to_owned(), token: token.to_owned(), agent }
    }

    async fn call<B: Serialize + Send + 'static, R: DeserializeOwned + Send + 'static>(
        &self,
        method: &'static str,
        path: String,
        body: Option<B>,
    ) -> Result<R, PlatformError> {
        let url = format!("{}{path}", self.server);
        let request = self.agent.request(method, &url).set("Authorization", &format!("Bearer {}", self.token));
        tokio::task::spawn_blocking(move || {
            let response = match body {
                Some(body) => request.send_json(body),
                None => request.call(),
            };
            match response {
                Ok(r) => r
                    .into_json::<R>()
                    .map_err(|e| PlatformError { code: "invalid_response".to_owned(), message: e.to_string() }),
                Err(ureq::Error::Status(_, r)) => {
                    let body: serde_json::Value = r.into_json().unwrap_or_default();
                    let code = body["error"]["code"].as_str().unwrap_or("error").to_owned();
                    let message =
                        body["error"]["message"].as_str().unwrap_or("the platform refused the request").to_owned();
                    Err(PlatformError { code, message })
                }
                Err(e) => Err(PlatformError { code: "unreachable".to_owned(), message: e.to_string() }),
            }
        })
        .await
        .map_err(|e| PlatformError { code: "internal".to_owned(), message: e.to_string() })?
    }
}

impl Platform for HttpPlatform {
    async fn heartbeat(&self, heartbeat: Heartbeat) -> Result<(), PlatformError> {
        self.call::<_, serde_json::Value>("POST", "/api/v1/agent/heartbeat".to_owned(), Some(heartbeat))
            .await
            .map(|_| ())
    }

    async fn work(&self) -> Result<Work, PlatformError> {
        self.call::<(), Work>("GET", "/api/v1/agent/work".to_owned(), None).await
    }

    async fn report_state(&self, job_id: i64, report: StateReport) -> Result<(), PlatformError> {
        self.call::<_, serde_json::Value>("POST", format!("/api/v1/agent/jobs/{job_id}/state"), Some(report))
            .await
            .map(|_| ())
    }

    async fn report_log(&self, job_id: i64, chunk: LogChunk) -> Result<(), PlatformError> {
        self.call::<_, serde_json::Value>("POST", format!("/api/v1/agent/jobs/{job_id}/logs"), Some(chunk))
            .await
            .map(|_| ())
    }

    async fn report_usage(&self, usage: UsageReport) -> Result<(), PlatformError> {
        self.call::<_, serde_json::Value>("POST", "/api/v1/agent/usage".to_owned(), Some(usage)).await.map(|_| ())
    }
}
