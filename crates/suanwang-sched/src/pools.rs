//! Pools at run time, and choosing among them.
//!
//! **Feasibility** (static, checked once at submit): the pool has an accelerator model the job
//! accepts (for jobs that need one), lies in the job's residency region, is within the job's
//! latency bound of the job's site, charges no more than the job's price ceiling, and has enough
//! nodes that could each host one task of the gang when empty (a gang runs in one pool).
//!
//! **Choice** (among feasible, healthy pools where the job can start now): the lowest estimated
//! total in fen of
//! - compute: card-hour price × cards × expected hours (the tenant's estimate, or one hour when
//!   there is none, divided by the job's speed on that pool's accelerator);
//! - data: egress price × GiB moved from the data set's site, plus the cards' price while they
//!   wait for the transfer (size ÷ route bandwidth);
//!
//! A tenant who asks for **green** gets, among the pools that cost at most `green_premium_pct`
//! more than the cheapest, the one with the least carbon: board power × cards × hours × PUE ×
//! grid intensity × (1 − the pool's green share).
//!
//! Ties go to the pool with less free accelerator capacity (packing), then to the lower id.

use std::fmt::Write;

use suanwang_model::catalog::{AcceleratorId, Catalog};
use suanwang_model::federation::{Federation, Pool, PoolId};
use suanwang_model::job::{JobSpec, TaskSpec};
use suanwang_model::tariff::{self, Allocation};
use suanwang_placement::cluster::{Cluster, NodeIdx};
use suanwang_placement::policy::Policy;

/// Knobs of pool choice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChoiceConfig {
    /// Hours assumed for jobs without an estimate, when comparing prices.
    pub default_runtime_s: u64,
    /// Dense FP16 TFLOPS of the accelerator a trace's durations were measured on. A job runs
    /// TFLOPS(model) ÷ this times as fast. `None` (the default): every accelerator runs jobs at
    /// their trace speed, since traces rarely say what they ran on.
    pub reference_tflops: Option<f64>,
    /// Grid carbon intensity for sites that do not state theirs, g CO₂ per kWh (Guangdong's
    /// grid is about 500).
    pub grid_carbon_g_per_kwh: f64,
    /// How much more than the cheapest pool (in %) a green tenant accepts for less carbon.
    pub green_premium_pct: f64,
}

impl Default for ChoiceConfig {
    fn default() -> Self {
        ChoiceConfig {
            default_runtime_s: 3600,
            reference_tflops: None,
            grid_carbon_g_per_kwh: 500.0,
            green_premium_pct: 25.0,
        }
    }
}

/// One pool's state while scheduling.
pub struct PoolRuntime {
    /// Its id in the federation.
    pub id: PoolId,
    /// Free and allocated resources.
    pub cluster: Cluster,
    /// False while the pool is down (its agent stopped reporting, or a simulated outage).
    pub healthy: bool,
    /// False while the pool is drained: running jobs continue, nothing new is placed.
    pub accepting: bool,
    /// A job preempted here keeps its resources until its stop is confirmed
    /// ([`crate::scheduler::Scheduler::stopped`]): a cluster (Slurm, Kubernetes) stops a job when
    /// its agent gets to it, and until then the job still holds the cards.
    pub confirms_stops: bool,
    /// The cluster's own queue, when the pool has one ([`crate::scheduler::Scheduler::set_pool_handoff`]):
    /// work placed here that does not fit the nodes now waits in it (the cluster starts it when
    /// something ends), modelled as a copy of part of the pool's nodes. With its node order.
    pub(crate) handoff: Option<(Cluster, Vec<NodeIdx>)>,
    /// Node placement inside the pool.
    pub(crate) node_policy: Box<dyn Policy>,
    /// Node order for placement (ties go to earlier nodes).
    pub(crate) order: Vec<NodeIdx>,
}

/// A job's speed on an accelerator model relative to the reference: the job's own factor for the
/// model when it gave one, else the model's published TFLOPS over the reference's (1.0 without a
/// reference or a published figure).
pub fn speed(catalog: &Catalog, spec: &JobSpec, model: Option<AcceleratorId>, config: &ChoiceConfig) -> f64 {
    if let Some(milli) = model.and_then(|m| spec.speed_milli(m)) {
        return f64::from(milli) / 1000.0;
    }
    match (model.and_then(|m| catalog.get(m).fp16_dense_tflops), config.reference_tflops) {
        (Some(tflops), Some(reference)) if reference > 0.0 => tflops / reference,
        _ => 1.0,
    }
}

/// How many tasks of this shape the pool's nodes could host when empty (its gang limit).
pub fn empty_slots(pool: &Pool, task: &TaskSpec) -> u64 {
    let request = task.accelerators();
    pool.nodes
        .iter()
        .map(|n| {
            if request.count() > 0 && !n.accelerator.is_some_and(|m| task.accepted_models().contains(m)) {
                return 0;
            }
            let by = |capacity: u32, need: u32| capacity.checked_div(need).map_or(u64::MAX, u64::from);
            by(n.cpu_milli, task.cpu_milli())
                .min(by(n.memory_mib, task.memory_mib()))
                .min(by(u32::from(n.accelerators), u32::from(request.count())))
        })
        .fold(0u64, |total, s| total.saturating_add(s))
}

/// How the reason for a pool without any card the job accepts begins (the pool's models follow).
pub const NO_ACCEPTED_MODEL: &str = "no accepted card";

/// How the reason for a pool where not even one task fits an empty node begins.
pub const NO_ROOM: &str = "no node holds one task even when empty";

/// Why a job cannot run in a pool, for explanations and rejections. `slots` computes
/// [`empty_slots`] (callers may remember it per task shape).
pub fn infeasible_reason(
    federation: &Federation,
    pool: &Pool,
    spec: &JobSpec,
    empty_slots: impl FnOnce(&Pool, &TaskSpec) -> u64,
) -> Option<String> {
    let catalog = federation.catalog();
    let request = spec.task.accelerators();
    let site = federation.site(pool.site);
    if request.count() > 0
        && !pool.nodes.iter().any(|n| n.accelerator.is_some_and(|m| spec.task.accepted_models().contains(m)))
    {
        let mut models: Vec<&str> =
            pool.nodes.iter().filter_map(|n| n.accelerator).map(|m| catalog.get(m).model.as_str()).collect();
        models.sort_unstable();
        models.dedup();
        let has = if models.is_empty() { "none".to_owned() } else { models.join(", ") };
        return Some(format!("{NO_ACCEPTED_MODEL} (it has {has})"));
    }
    if let Some(region) = &spec.residency_region
        && &site.region != region
    {
        return Some(format!("outside residency region {region}"));
    }
    if let Some(latency) = spec.latency {
        match federation.network().route(latency.site, pool.site) {
            Some(route) if route.latency_us <= latency.latency_us_max => {}
            Some(route) => {
                return Some(format!(
                    "{:.1} ms from {}, above the {:.1} ms allowed",
                    f64::from(route.latency_us) / 1000.0,
                    federation.site(latency.site).name,
                    f64::from(latency.latency_us_max) / 1000.0
                ));
            }
            None => return Some(format!("not reachable from {}", federation.site(latency.site).name)),
        }
    }
    if let Some(max) = spec.price_fen_per_card_hour_max
        && request.count() > 0
        && !pool.prices.card_hour_fen.iter().any(|(m, fen)| spec.task.accepted_models().contains(*m) && *fen <= max)
    {
        return Some(format!("every accepted card costs more than ¥{:.2}/card-hour", max as f64 / 100.0));
    }
    let slots = empty_slots(pool, &spec.task);
    if slots == 0 {
        let accepted = |n: &&suanwang_model::federation::NodeSpec| {
            request.count() == 0 || n.accelerator.is_some_and(|m| spec.task.accepted_models().contains(m))
        };
        let most = |f: fn(&suanwang_model::federation::NodeSpec) -> u32| {
            pool.nodes.iter().filter(accepted).map(f).max().unwrap_or(0)
        };
        let (cards, cpu_milli, memory_mib) =
            (most(|n| u32::from(n.accelerators)), most(|n| n.cpu_milli), most(|n| n.memory_mib));
        let memory =
            if memory_mib % 1024 == 0 { format!("{} GiB", memory_mib / 1024) } else { format!("{memory_mib} MiB") };
        let cores = f64::from(cpu_milli) / 1000.0;
        let largest = if request.count() > 0 {
            format!("{cards} cards, {cores} cores, {memory}")
        } else {
            format!("{cores} cores, {memory}")
        };
        return Some(format!("{NO_ROOM} (its nodes have at most {largest})"));
    }
    if slots < u64::from(spec.gang_size) {
        return Some(format!("room for {slots} of the gang's {} tasks even when empty", spec.gang_size));
    }
    None
}

/// The estimated total of running `spec` in `pool` on `model`, with its explanation.
pub struct Estimate {
    /// Total in fen (compute + data), for comparing pools.
    pub total_fen: f64,
    /// Compute part.
    pub compute_fen: f64,
    /// Data part (egress and cards idle during transfer).
    pub data_fen: f64,
    /// Expected emissions, kg CO₂.
    pub carbon_kg: f64,
    /// Transfer time of the data set, seconds.
    pub transfer_s: f64,
    /// Bytes moved.
    pub moved_bytes: u64,
    /// Expected run seconds on this pool.
    pub runtime_s: f64,
}

/// Estimates the cost of running `spec` in `pool` on accelerator `model`: the tariff's hourly
/// rate (`suanwang_model::tariff`) × the expected hours on that model (the estimate ÷ the speed),
/// so pools are compared per unit of work, not per card-hour.
pub fn estimate(
    federation: &Federation,
    pool: &Pool,
    spec: &JobSpec,
    model: Option<AcceleratorId>,
    config: &ChoiceConfig,
) -> Estimate {
    let allocation = Allocation::of(spec, model);
    let runtime_s = spec.runtime_estimate_s.unwrap_or(config.default_runtime_s) as f64
        / speed(federation.catalog(), spec, allocation.model, config);
    let hours = runtime_s / 3600.0;
    let hourly_fen = tariff::rate_fen_per_hour(&pool.prices, &allocation, None);
    let compute_fen = hourly_fen * hours;
    let (mut data_fen, mut transfer_s, mut moved_bytes) = (0.0, 0.0, 0);
    if let Some(dataset) = spec.dataset
        && dataset.site != pool.site
        && let Some(route) = federation.network().route(dataset.site, pool.site)
    {
        transfer_s = dataset.size_bytes as f64 * 8.0 / (f64::from(route.bandwidth_gbps) * 1e9);
        let gib = dataset.size_bytes as f64 / f64::from(1u32 << 30);
        data_fen = gib * route.egress_fen_per_gib as f64 + hourly_fen * transfer_s / 3600.0;
        moved_bytes = dataset.size_bytes;
    }
    // Power is drawn by every device the job holds, fractions included.
    let cards = f64::from(spec.task.accelerators().count()) * f64::from(spec.gang_size);
    let power_w = allocation.model.and_then(|m| federation.catalog().get(m).board_power_w).unwrap_or(300) as f64;
    let kwh = power_w * cards * hours * pool.pue / 1000.0;
    let grid = federation.site(pool.site).grid_carbon_g_per_kwh.map_or(config.grid_carbon_g_per_kwh, f64::from);
    let carbon_kg = kwh * grid * (1.0 - f64::from(pool.green_share_pct) / 100.0) / 1000.0;
    Estimate { total_fen: compute_fen + data_fen, compute_fen, data_fen, carbon_kg, transfer_s, moved_bytes, runtime_s }
}

/// The pools a job can never run in, grouped by why, in words: `left out 9 pools — no accepted
/// card (it has Ascend-910B): qianhai-ascend, nansha-ascend and 2 more; …`; empty when none is.
/// At most three reasons, so the sentence stays short.
pub fn left_out(reasons: &[(&str, String)]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (pool, reason) in reasons {
        match groups.iter_mut().find(|(r, _)| r == reason) {
            Some((_, pools)) => pools.push(pool),
            None => groups.push((reason, vec![pool])),
        }
    }
    groups.sort_by_key(|(_, pools)| std::cmp::Reverse(pools.len()));
    let shown = groups.len().min(3);
    let mut parts: Vec<String> = groups[..shown]
        .iter()
        .map(|(reason, pools)| {
            let names = match pools.len() {
                1 | 2 => pools.join(", "),
                n => format!("{}, {} and {} more", pools[0], pools[1], n - 2),
            };
            format!("{reason}: {names}")
        })
        .collect();
    let rest: usize = groups[shown..].iter().map(|(_, p)| p.len()).sum();
    if rest > 0 {
        parts.push(format!("{rest} for other reasons"));
    }
    let pools = if reasons.len() == 1 { "pool" } else { "pools" };
    format!("left out {} {pools} — {}", reasons.len(), parts.join("; "))
}

/// An explanation of a choice, in words.
pub fn explain(
    federation: &Federation,
    pool: &Pool,
    spec: &JobSpec,
    estimate: &Estimate,
    feasible: usize,
    candidates: usize,
    green: Option<f64>,
) -> String {
    let mut text = if let Some(premium) = green.filter(|_| candidates > 1) {
        format!("least carbon of {candidates} pools that could start it now within {premium:.0}% of the cheapest price")
    } else if candidates > 1 {
        format!("cheapest of {candidates} pools that could start it now ({feasible} feasible)")
    } else if feasible > 1 {
        format!("the only one of {feasible} feasible pools that could start it now")
    } else {
        "the only feasible pool".to_owned()
    };
    let _ = write!(text, "; est. ¥{:.2} for {:.1} h", estimate.total_fen / 100.0, estimate.runtime_s / 3600.0);
    if let Some(latency) = spec.latency
        && let Some(route) = federation.network().route(latency.site, pool.site)
    {
        let _ = write!(
            text,
            "; {:.1} ms from {}",
            f64::from(route.latency_us) / 1000.0,
            federation.site(latency.site).city
        );
    }
    if estimate.moved_bytes > 0 {
        let _ = write!(
            text,
            "; {:.0} GB moved in {}",
            estimate.moved_bytes as f64 / 1e9,
            if estimate.transfer_s < 90.0 {
                format!("{:.0} s", estimate.transfer_s)
            } else {
                format!("{:.0} min", estimate.transfer_s / 60.0)
            }
        );
    } else if spec.dataset.is_some() {
        let _ = write!(text, "; data already here");
    }
    if green.is_some() {
        let _ = write!(text, "; {}% green power, {:.1} kg CO₂", pool.green_share_pct, estimate.carbon_kg);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_out_groups_pools_by_why() {
        assert_eq!(left_out(&[]), "");
        let model = "no accepted card (it has MLU370-X8)".to_owned();
        let small = "room for 0 of the gang's 1 tasks even when empty".to_owned();
        let reasons = [("a", model.clone()), ("b", model.clone()), ("c", model.clone()), ("d", small.clone())];
        assert_eq!(
            left_out(&reasons),
            "left out 4 pools — no accepted card (it has MLU370-X8): a, b and 1 more; room for 0 of the gang's 1 tasks even when empty: d"
        );
        let many: Vec<(&str, String)> = ["p", "q", "r", "s"].iter().map(|p| (*p, format!("reason {p}"))).collect();
        assert!(left_out(&many).ends_with("; 1 for other reasons"), "{}", left_out(&many));
    }
}
