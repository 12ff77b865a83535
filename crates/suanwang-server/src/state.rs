//! What every request handler shares, and time.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use suanwang_model::federation::Federation;
use suanwang_store::store::Store;
use tokio::sync::mpsc;

use crate::auth::TokenCache;
use crate::committer::Committer;
use crate::scheduler::SchedulerMsg;

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// A pool whose agent has not reported for this long is unhealthy: nothing new is placed
    /// there. The jobs of a pool whose agent runs them itself (`local`, `sim`) fail over now.
    pub heartbeat_timeout: Duration,
    /// The jobs of a cluster pool (`slurm`, `kubernetes`) fail over only after its agent has been
    /// silent this long: the cluster runs them without the agent, so a restarted or cut-off
    /// agent finds them there rather than have them run twice.
    pub cluster_failover_timeout: Duration,
    /// Time between scheduling passes when nothing else wakes the scheduler.
    pub tick: Duration,
    /// The queue policy.
    pub policy: suanwang_sched::policy::QueuePolicy,
    /// After a start, the scheduler waits this long for every pool's agent to report before it
    /// places work, so the first jobs are not all sent to whichever pool reported first.
    pub startup_grace: Duration,
    /// Applications (job templates) a body may name with `"template"`.
    pub apps: suanwang_formats::apps::AppCatalog,
    /// The platform's fee on each charge, in basis points (the provider is paid the rest).
    pub platform_fee_bps: u32,
    /// How often the leader rates new usage into charges.
    pub billing_interval: Duration,
    /// How often the leader runs a call auction (published at `/api/v1/market/prices`).
    pub auction_interval: Duration,
    /// How often the dashboard's history samples utilisation and the queue.
    pub sample_interval: Duration,
    /// Trace files the dashboard's simulations page offers (`serve --traces DIR`).
    pub traces_dir: Option<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            heartbeat_timeout: Duration::from_secs(30),
            cluster_failover_timeout: Duration::from_secs(600),
            tick: Duration::from_millis(200),
            policy: "drf+backfill".parse().unwrap_or(suanwang_sched::policy::QueuePolicy::DEFAULT),
            startup_grace: Duration::from_secs(3),
            apps: suanwang_formats::apps::builtin(),
            platform_fee_bps: 500,
            billing_interval: Duration::from_secs(1),
            auction_interval: Duration::from_secs(15 * 60),
            sample_interval: Duration::from_secs(60),
            traces_dir: None,
        }
    }
}

/// The shared state.
pub struct Inner {
    /// Persistence.
    pub store: Store,
    /// Durable, grouped writes.
    pub committer: Committer,
    /// Sites, links and pools.
    pub federation: Federation,
    /// Remembered token lookups.
    pub tokens: TokenCache,
    /// The scheduler task's mailbox.
    pub scheduler: mpsc::Sender<SchedulerMsg>,
    /// Settings.
    pub config: ServerConfig,
    /// Whether this server's scheduler task holds the leader's role.
    pub leader: std::sync::atomic::AtomicBool,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// The books (the ledger and the money rules' state).
    pub ledger: crate::ledger::LedgerState,
    /// Where the biller has read usage up to.
    pub biller: crate::money::BillerState,
    /// Utilisation and queue samples for the dashboard.
    pub history: crate::dashboard::history::History,
    /// Simulation runs (in memory).
    pub simulations: crate::dashboard::sim::Simulations,
    /// The capacity each pool's agent last reported from its cluster (Slurm agents do), by pool
    /// name. In memory: the agent repeats it with every heartbeat.
    pub reported: std::sync::Mutex<std::collections::HashMap<String, suanwang_agent::protocol::Capacity>>,
}

/// A cheap handle to the shared state.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Milliseconds since 1970, UTC.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `2026-11-22T09:13:20.123Z` for milliseconds since 1970 (the API speaks UTC).
pub fn rfc3339(ms: i64) -> String {
    let (seconds, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_338_800_123), "2026-11-22T09:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
