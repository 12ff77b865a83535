//! The interface an agent talks to the platform through. The wire types are `suanwang-api`'s
//! (`suanwang_api::agent`); this trait lets the same agent loop run over HTTP
//! ([`crate::http`]) or in the server's process.

use std::time::Duration;

use suanwang_api::agent::{Heartbeat, LogChunk, StateReport, UsageReport, Work};

/// Why a call to the platform failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformError {
    /// Stable code (from the platform's error body, or `unreachable`).
    pub code: String,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl PlatformError {
    /// The platform is away or busy: the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self.code.as_str(), "unreachable" | "unavailable" | "internal")
    }
}

/// The platform as an agent sees it.
pub trait Platform: Send + Sync + 'static {
    /// Reports the pool's health.
    fn heartbeat(&self, heartbeat: Heartbeat) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// Fetches what to start and stop.
    fn work(&self) -> impl Future<Output = Result<Work, PlatformError>> + Send;
    /// Reports a job's state.
    fn report_state(&self, job_id: i64, report: StateReport) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// Sends a piece of a job's log.
    fn report_log(&self, job_id: i64, chunk: LogChunk) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// Sends consecutive pieces of a job's log at once (all or, on an error, possibly some:
    /// each piece is stored once by its `seq`, so the same batch may be sent again).
    fn report_logs(
        &self,
        job_id: i64,
        chunks: Vec<LogChunk>,
    ) -> impl Future<Output = Result<(), PlatformError>> + Send {
        async move {
            for chunk in chunks {
                self.report_log(job_id, chunk).await?;
            }
            Ok(())
        }
    }
    /// Waits up to `wait` while the pool's work version is `after` (see [`Work::version`]);
    /// the version then. A platform that cannot tell just waits.
    fn wait_for_work(&self, after: u64, wait: Duration) -> impl Future<Output = Result<u64, PlatformError>> + Send {
        async move {
            tokio::time::sleep(wait).await;
            Ok(after)
        }
    }
    /// Sends the agent's own measure of a run (evidence; the platform bills its own record).
    fn report_usage(&self, usage: UsageReport) -> impl Future<Output = Result<(), PlatformError>> + Send;
}
