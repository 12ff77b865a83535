//! Prometheus metrics at `GET /metrics` (OpenMetrics text).
//!
//! Three kinds of figure:
//! - **HTTP**, counted by a middleware on every request: requests by method, route and status,
//!   and latency by route (the route's template, `/api/v1/jobs/{id}`, never a raw path, so the
//!   number of series stays bounded).
//! - **The scheduler's view**, published by the scheduler task once a second while it leads:
//!   queue length, and each pool's capacity and use (cards, CPU, memory). A standby reports
//!   `suanwang_scheduler_leader 0` and none of these; scrape every server and use the leader's.
//! - **The store's**, read when scraped: jobs by state and pool health. Every server reports the
//!   same figures here, whoever leads.
//!
//! Everything is an aggregate: no tenant, job id or token appears, so the endpoint needs no token
//! (as is usual for Prometheus targets; restrict it at the network if pool names are private).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use suanwang_model::platform::JobState;

use crate::Control;
use crate::error::Error;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of a route's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// One pool's capacity and use, as the scheduler sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolUse {
    /// Accelerator capacity, milli-cards.
    pub gpu_milli_capacity: u64,
    /// Accelerators allocated, milli-cards.
    pub gpu_milli_allocated: u64,
    /// CPU capacity, milli-cores.
    pub cpu_milli_capacity: u64,
    /// CPU allocated, milli-cores.
    pub cpu_milli_allocated: u64,
    /// Memory capacity, MiB.
    pub memory_mib_capacity: u64,
    /// Memory allocated, MiB.
    pub memory_mib_allocated: u64,
}

/// What the leading scheduler last published.
#[derive(Clone, Debug, Default)]
pub struct SchedulerView {
    /// Jobs waiting for a place.
    pub queued: u64,
    /// Each pool's capacity and use, in the federation's pool order.
    pub pools: Vec<PoolUse>,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    jobs: Family<StateLabels, Gauge>,
    leader: Gauge,
    queued: Gauge,
    /// Placements and preemptions this server's scheduler decided.
    pub decisions: Counter,
    pool_healthy: Family<PoolLabels, Gauge>,
    pool_drained: Family<PoolLabels, Gauge>,
    cards: Family<PoolLabels, FloatGauge>,
    cards_allocated: Family<PoolLabels, FloatGauge>,
    cpu: Family<PoolLabels, FloatGauge>,
    cpu_allocated: Family<PoolLabels, FloatGauge>,
    memory: Family<PoolLabels, Gauge>,
    memory_allocated: Family<PoolLabels, Gauge>,
    /// The scheduler's latest view; `None` while this server does not lead.
    pub view: Mutex<Option<SchedulerView>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("suanwang");
        let metrics = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            jobs: Family::default(),
            leader: Gauge::default(),
            queued: Gauge::default(),
            decisions: Counter::default(),
            pool_healthy: Family::default(),
            pool_drained: Family::default(),
            cards: Family::default(),
            cards_allocated: Family::default(),
            cpu: Family::default(),
            cpu_allocated: Family::default(),
            memory: Family::default(),
            memory_allocated: Family::default(),
            view: Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests by method, route and status", metrics.requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            metrics.latency.clone(),
        );
        registry.register("jobs", "Jobs in the store by state", metrics.jobs.clone());
        registry.register("scheduler_leader", "1 if this server schedules, 0 if it stands by", metrics.leader.clone());
        registry.register("queue_length", "Jobs waiting for a place (leader only)", metrics.queued.clone());
        registry.register(
            "scheduler_decisions",
            "Placements and preemptions this server's scheduler decided",
            metrics.decisions.clone(),
        );
        registry.register(
            "pool_healthy",
            "1 if the pool's agent reports and says it is healthy",
            metrics.pool_healthy.clone(),
        );
        registry.register("pool_drained", "1 if the pool takes no new work", metrics.pool_drained.clone());
        registry.register("pool_cards", "Accelerator cards in the pool (leader only)", metrics.cards.clone());
        registry.register(
            "pool_cards_allocated",
            "Accelerator cards allocated to jobs, fractions included (leader only)",
            metrics.cards_allocated.clone(),
        );
        registry.register("pool_cpu_cores", "CPU cores in the pool (leader only)", metrics.cpu.clone());
        registry.register(
            "pool_cpu_cores_allocated",
            "CPU cores allocated to jobs (leader only)",
            metrics.cpu_allocated.clone(),
        );
        registry.register("pool_memory_mib", "Memory in the pool, MiB (leader only)", metrics.memory.clone());
        registry.register(
            "pool_memory_mib_allocated",
            "Memory allocated to jobs, MiB (leader only)",
            metrics.memory_allocated.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// Counts one HTTP request and its latency (the server's middleware calls it).
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_owned() }).observe(seconds);
    }

    /// The scheduler task publishes its view (or `None` when it stops leading).
    pub fn publish(&self, view: Option<SchedulerView>) {
        if let Ok(mut slot) = self.view.lock() {
            *slot = view;
        }
    }
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The metrics as OpenMetrics text (`GET /metrics`).
pub async fn render(ctl: &Control) -> Result<String, Error> {
    let m = &ctl.metrics;
    let counts = ctl.store.job_counts().await?;
    for s in JobState::ALL {
        let n = counts.iter().find(|(state, _)| *state == s).map_or(0, |(_, n)| *n);
        m.jobs.get_or_create(&StateLabels { state: s.as_str() }).set(n);
    }
    let statuses = ctl.store.pool_statuses().await?;
    for (_, pool) in ctl.federation.pools() {
        let status = statuses.iter().find(|s| s.name == pool.name);
        let labels = PoolLabels { pool: pool.name.clone() };
        m.pool_healthy.get_or_create(&labels).set(i64::from(status.is_some_and(|s| s.healthy)));
        m.pool_drained.get_or_create(&labels).set(i64::from(status.is_some_and(|s| s.drained)));
    }
    let view = m.view.lock().ok().and_then(|v| v.clone());
    m.leader.set(i64::from(view.is_some()));
    if let Some(view) = &view {
        m.queued.set(gauge(view.queued));
        for ((_, pool), used) in ctl.federation.pools().zip(&view.pools) {
            let labels = PoolLabels { pool: pool.name.clone() };
            m.cards.get_or_create(&labels).set(used.gpu_milli_capacity as f64 / 1000.0);
            m.cards_allocated.get_or_create(&labels).set(used.gpu_milli_allocated as f64 / 1000.0);
            m.cpu.get_or_create(&labels).set(used.cpu_milli_capacity as f64 / 1000.0);
            m.cpu_allocated.get_or_create(&labels).set(used.cpu_milli_allocated as f64 / 1000.0);
            m.memory.get_or_create(&labels).set(gauge(used.memory_mib_capacity));
            m.memory_allocated.get_or_create(&labels).set(gauge(used.memory_mib_allocated));
        }
    } else {
        // A standby has no view: drop the per-pool series rather than report stale ones.
        m.queued.set(0);
        for family in [&m.cards, &m.cards_allocated, &m.cpu, &m.cpu_allocated] {
            family.clear();
        }
        m.memory.clear();
        m.memory_allocated.clear();
    }
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &m.registry)
        .map_err(|e| Error::internal("internal", format!("cannot encode the metrics: {e}")))?;
    Ok(body)
}
