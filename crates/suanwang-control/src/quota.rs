//! Limits per tenant and per token, so that one tenant cannot crowd out the others: a request
//! rate per token (a token bucket, 429 with `Retry-After`), and quotas per tenant on what it
//! holds at once (queued jobs, resting orders and their share of the book, running simulations,
//! data sets). Quotas have defaults ([`DEFAULTS`]); an operator changes them per tenant (an
//! audited write). They are read through a cache of [`CACHE_TTL`], so a change reaches other
//! servers within that time.
//!
//! Counts are checked before a write, not in the same transaction: a burst of concurrent
//! submissions can overshoot a quota by at most the requests in flight at once.

use std::collections::HashMap;
use std::sync::Mutex;

use suanwang_api::admin::{QuotaChange, Quotas};
use suanwang_model::platform::{Role, TenantId};
use suanwang_store::model::{Outcome, Write};

use crate::Control;
use crate::access::{Action, Owner, may, require};
use crate::auth::Caller;
use crate::error::{Error, Kind};

/// What every tenant gets until an operator says otherwise. Ten requests a second per token
/// (bursts of twenty) is more than people and scripts need (the dashboard refreshes a page every
/// 5 s; Kubernetes' client-go defaults to 5 a second, bursts of 10; Slurm's rate limiting refills
/// 2 a second into a bucket of 30) and bounds what twenty tenants at their limit ask of one
/// server (200 jobs a second, against a design load of a million a day, about 12 a second).
pub const DEFAULTS: Quotas = Quotas {
    requests_per_s: 10,
    queued_jobs: 10_000,
    open_orders: 1_000,
    book_share_bps: 1_000,
    running_simulations: 1,
    datasets: 1_000,
};

/// The bounds an operator's quotas must keep: `(field, most)` (each at least 0, the rate at
/// least 1).
pub const MOST: [(&str, u32); 6] = [
    ("requests_per_s", 100_000),
    ("queued_jobs", 1_000_000),
    ("open_orders", 100_000),
    ("book_share_bps", 10_000),
    ("running_simulations", 20),
    ("datasets", 10_000),
];

/// Requests per second per token of operators, auditors, providers (their agents report every
/// log line) and programme administrators.
pub const STAFF_REQUESTS_PER_S: u32 = 2_000;

/// How long a tenant's quotas are remembered.
pub const CACHE_TTL_MS: i64 = 10_000;

/// Token buckets kept at once (idle ones are dropped first).
const BUCKETS_MAX: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens_milli: i64,
    at_ms: i64,
}

/// Request budgets per token, and remembered quotas.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<i64, Bucket>>,
    quotas: Mutex<HashMap<TenantId, (Quotas, i64)>>,
}

impl Limiter {
    /// Takes one request from token `id`'s bucket (`rate` a second, bursts of twice that); the
    /// whole seconds to wait when it is empty.
    pub fn admit(&self, id: i64, rate: u32, now_ms: i64) -> Result<(), u32> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() >= BUCKETS_MAX {
            buckets.retain(|_, b| now_ms - b.at_ms < 60_000);
            if buckets.len() >= BUCKETS_MAX {
                buckets.clear();
            }
        }
        let burst_milli = i64::from(rate) * 2_000;
        let bucket = buckets.entry(id).or_insert(Bucket { tokens_milli: burst_milli, at_ms: now_ms });
        let elapsed_ms = (now_ms - bucket.at_ms).clamp(0, 3_600_000);
        bucket.tokens_milli = (bucket.tokens_milli + elapsed_ms * i64::from(rate)).min(burst_milli);
        bucket.at_ms = now_ms;
        if bucket.tokens_milli >= 1_000 {
            bucket.tokens_milli -= 1_000;
            Ok(())
        } else {
            let missing_milli = 1_000 - bucket.tokens_milli;
            // The bucket gains `rate` thousandths of a request every millisecond.
            let wait_ms = missing_milli / i64::from(rate.max(1));
            Err(u32::try_from(((wait_ms + 999) / 1_000).max(1)).unwrap_or(u32::MAX))
        }
    }

    fn remembered(&self, tenant: TenantId, now_ms: i64) -> Option<Quotas> {
        let quotas = self.quotas.lock().ok()?;
        quotas.get(&tenant).filter(|(_, at)| now_ms - at < CACHE_TTL_MS).map(|(q, _)| *q)
    }

    fn remember(&self, tenant: TenantId, quotas: Quotas, now_ms: i64) {
        if let Ok(mut remembered) = self.quotas.lock() {
            if remembered.len() >= BUCKETS_MAX {
                remembered.clear();
            }
            remembered.insert(tenant, (quotas, now_ms));
        }
    }
}

/// A tenant's quotas (remembered for [`CACHE_TTL_MS`]).
pub async fn of(ctl: &Control, tenant: TenantId) -> Result<Quotas, Error> {
    let now = ctl.now_ms();
    if let Some(quotas) = ctl.limits.remembered(tenant, now) {
        return Ok(quotas);
    }
    let quotas = match ctl.store.quotas(tenant).await? {
        Some(json) => apply(DEFAULTS, serde_json::from_str(&json).unwrap_or_default()),
        None => DEFAULTS,
    };
    ctl.limits.remember(tenant, quotas, now);
    Ok(quotas)
}

fn apply(base: Quotas, change: QuotaChange) -> Quotas {
    Quotas {
        requests_per_s: change.requests_per_s.unwrap_or(base.requests_per_s),
        queued_jobs: change.queued_jobs.unwrap_or(base.queued_jobs),
        open_orders: change.open_orders.unwrap_or(base.open_orders),
        book_share_bps: change.book_share_bps.unwrap_or(base.book_share_bps),
        running_simulations: change.running_simulations.unwrap_or(base.running_simulations),
        datasets: change.datasets.unwrap_or(base.datasets),
    }
}

/// Takes one request of `caller`'s budget: 429 `rate_limited` when it is spent.
pub async fn admit(ctl: &Control, caller: &Caller) -> Result<(), Error> {
    let rate = match (caller.principal.role, caller.principal.tenant_id) {
        (Role::Tenant, Some(tenant)) => of(ctl, tenant).await?.requests_per_s,
        _ => STAFF_REQUESTS_PER_S,
    };
    ctl.limits.admit(caller.principal.token_id, rate, ctl.now_ms()).map_err(|wait_s| {
        Error::new(
            Kind::TooMany,
            "rate_limited",
            format!("this token may send {rate} requests a second; try again in {wait_s} s"),
        )
    })
}

/// A refusal for a full quota.
pub fn exceeded(what: &str, most: u32) -> Error {
    Error::new(
        Kind::TooMany,
        "quota_exceeded",
        format!("your quota allows {most} {what} at once; ask an operator to raise it"),
    )
}

/// `GET /api/v1/tenants/{id}/quotas`: operators and auditors any tenant's, a tenant its own.
pub async fn show(ctl: &Control, caller: &Caller, tenant: TenantId) -> Result<Quotas, Error> {
    require(caller, Action::ReadQuotas)?;
    if !may(caller, Action::ReadQuotas, Owner::tenant(tenant)) || ctl.store.tenant(tenant).await?.is_none() {
        return Err(Error::not_found(format!("tenant {}", tenant.0)));
    }
    of(ctl, tenant).await
}

/// `POST /api/v1/tenants/{id}/quotas` (operators).
pub async fn set(ctl: &Control, caller: &Caller, tenant: TenantId, change: QuotaChange) -> Result<Quotas, Error> {
    require(caller, Action::SetQuotas)?;
    if ctl.store.tenant(tenant).await?.is_none() {
        return Err(Error::not_found(format!("tenant {}", tenant.0)));
    }
    let values = [
        change.requests_per_s,
        change.queued_jobs,
        change.open_orders,
        change.book_share_bps,
        change.running_simulations,
        change.datasets,
    ];
    for ((field, most), value) in MOST.iter().zip(values) {
        if let Some(value) = value
            && (value > *most || (*field == "requests_per_s" && value == 0))
        {
            let least = u32::from(*field == "requests_per_s");
            return Err(Error::bad_request("invalid_quota", format!("{field} is {least} to {most}")).at(*field));
        }
    }
    let current = of(ctl, tenant).await?;
    let quotas = apply(current, change);
    let json = serde_json::to_string(&quotas).map_err(|e| Error::internal("quotas", e.to_string()))?;
    match ctl.committer.write(caller.actor(), Write::SetQuotas { tenant_id: tenant, quotas: json }).await? {
        Outcome::Quotas => {}
        other => return Err(Error::unavailable(format!("unexpected write outcome {other:?}"))),
    }
    ctl.limits.remember(tenant, quotas, ctl.now_ms());
    Ok(quotas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_bursts_of_twice_the_rate_then_the_rate() {
        let limiter = Limiter::default();
        let admitted = (0..30).filter(|_| limiter.admit(1, 10, 1_000).is_ok()).count();
        assert_eq!(admitted, 20, "a burst of twice the rate");
        assert_eq!(limiter.admit(1, 10, 1_000), Err(1));
        assert!(limiter.admit(2, 10, 1_000).is_ok(), "another token has its own bucket");
        let later = (0..30).filter(|_| limiter.admit(1, 10, 1_500).is_ok()).count();
        assert_eq!(later, 5, "half a second refills half the rate");
        assert_eq!(limiter.admit(3, 1, 0).and(limiter.admit(3, 1, 0)).and(limiter.admit(3, 1, 0)), Err(1));
    }

    #[test]
    fn changes_keep_what_they_leave_out() {
        let changed = apply(DEFAULTS, QuotaChange { datasets: Some(3), ..QuotaChange::default() });
        assert_eq!(changed, Quotas { datasets: 3, ..DEFAULTS });
    }
}
