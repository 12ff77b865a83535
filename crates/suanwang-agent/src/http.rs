//! The platform over HTTP, for agents that run next to a provider's cluster: the typed client
//! (`suanwang-client`) on a blocking thread.

use std::sync::Arc;
use std::time::Duration;

use suanwang_api::agent::{Heartbeat, LogBatch, LogChunk, StateReport, UsageReport, Work};
use suanwang_client::{Client, ClientError};

use crate::protocol::{Platform, PlatformError};

/// Seconds before a request to the platform gives up.
const TIMEOUT_S: u64 = 30;

/// A platform at a URL, called with a pool token.
#[derive(Clone, Debug)]
pub struct HttpPlatform {
    client: Arc<Client>,
}

impl HttpPlatform {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`) with `token`.
    pub fn new(server: &str, token: &str) -> Result<Self, PlatformError> {
        let client = Client::new(server, Some(token), Duration::from_secs(TIMEOUT_S)).map_err(platform_error)?;
        Ok(HttpPlatform { client: Arc::new(client) })
    }

    async fn call<R: Send + 'static>(
        &self,
        call: impl FnOnce(&Client) -> Result<R, ClientError> + Send + 'static,
    ) -> Result<R, PlatformError> {
        let client = Arc::clone(&self.client);
        tokio::task::spawn_blocking(move || call(&client).map_err(platform_error))
            .await
            .map_err(|e| PlatformError { code: "internal".to_owned(), message: e.to_string() })?
    }
}

fn platform_error(e: ClientError) -> PlatformError {
    // A 5xx keeps its code (`unavailable`), so the agent retries it.
    PlatformError { code: e.code, message: e.message }
}

impl Platform for HttpPlatform {
    async fn heartbeat(&self, heartbeat: Heartbeat) -> Result<(), PlatformError> {
        self.call(move |c| c.heartbeat(&heartbeat)).await.map(|_| ())
    }

    async fn work(&self) -> Result<Work, PlatformError> {
        self.call(|c| c.work()).await
    }

    async fn report_state(&self, job_id: i64, report: StateReport) -> Result<(), PlatformError> {
        self.call(move |c| c.report_state(job_id, &report)).await.map(|_| ())
    }

    async fn report_log(&self, job_id: i64, chunk: LogChunk) -> Result<(), PlatformError> {
        self.call(move |c| c.report_log(job_id, &chunk)).await.map(|_| ())
    }

    async fn report_logs(&self, job_id: i64, chunks: Vec<LogChunk>) -> Result<(), PlatformError> {
        self.call(move |c| c.report_logs(job_id, &LogBatch { chunks })).await.map(|_| ())
    }

    async fn report_usage(&self, usage: UsageReport) -> Result<(), PlatformError> {
        self.call(move |c| c.report_usage(&usage)).await.map(|_| ())
    }

    async fn wait_for_work(&self, after: u64, wait: Duration) -> Result<u64, PlatformError> {
        // Whole seconds, at least one and below the client's timeout.
        let wait_s = wait.as_secs().clamp(1, TIMEOUT_S - 5);
        self.call(move |c| c.wait_for_work(after, wait_s)).await.map(|w| w.version)
    }
}
