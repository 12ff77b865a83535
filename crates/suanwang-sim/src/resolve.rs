//! Trace jobs (named tenants, sites and frameworks) resolved against a federation into the
//! scheduler's jobs (ids), for the queue simulator. Shared by the CLI and the server.

use std::collections::BTreeMap;

use suanwang_formats::trace::Trace;
use suanwang_model::federation::Federation;
use suanwang_model::job::{DatasetRef, JobSpec, LatencyRequirement, TaskSpec};
use suanwang_sched::job::Job;

use crate::queue::SimJob;

/// Why a trace does not fit a federation: a stable code and a sentence naming the line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ResolveError {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ResolveError {
    fn new(code: &'static str, message: String) -> Self {
        ResolveError { code, message }
    }
}

/// Tenants by name (sorted) and the jobs resolved against a federation.
pub struct Resolved {
    /// Tenant names, sorted; a job's tenant is an index into this.
    pub tenants: Vec<String>,
    /// The jobs, in trace order.
    pub jobs: Vec<SimJob>,
    /// Mean run time at speed 1, seconds.
    pub duration_s_mean: f64,
}

/// Turns trace jobs (with names) into scheduler jobs (with ids) for `federation`.
pub fn resolve(trace: &Trace, federation: &Federation, source: &str) -> Result<Resolved, ResolveError> {
    let adaptation = suanwang_formats::catalog::builtin_adaptation();
    let tenants: Vec<String> =
        trace.jobs.iter().map(|j| j.tenant.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let tenant_index: BTreeMap<&str, u32> = tenants.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
    let site = |name: &str, line: u64| {
        federation.site_id(name).ok_or_else(|| {
            ResolveError::new(
                "unknown_reference",
                format!("{source}:{line}: unknown site {name:?} in the federation {}", federation.name),
            )
        })
    };
    let mut jobs = Vec::with_capacity(trace.jobs.len());
    for t in &trace.jobs {
        let dataset = t
            .dataset
            .as_ref()
            .map(|d| Ok::<_, ResolveError>(DatasetRef { site: site(&d.site, t.line)?, size_bytes: d.size_bytes }))
            .transpose()?;
        let latency = t
            .latency
            .as_ref()
            .map(|l| {
                Ok::<_, ResolveError>(LatencyRequirement {
                    site: site(&l.site, t.line)?,
                    latency_us_max: (l.max_ms * 1000.0).round() as u32,
                })
            })
            .transpose()?;
        let task = match &t.framework {
            Some(framework) if t.task.accelerators().count() > 0 => {
                let runs_on = adaptation
                    .narrow(framework, t.task.accepted_models(), federation.catalog())
                    .map_err(|e| ResolveError::new(e.code(), format!("{source}:{}: {e}", t.line)))?;
                TaskSpec::new(t.task.cpu_milli(), t.task.memory_mib(), t.task.accelerators(), runs_on)
                    .map_err(|e| ResolveError::new(e.code(), format!("{source}:{}: {e}", t.line)))?
            }
            _ => t.task,
        };
        let speeds = t.speeds.iter().copied().filter(|(m, _)| task.accepted_models().contains(*m)).collect();
        let spec = JobSpec {
            name: t.id.clone(),
            tenant: tenant_index[t.tenant.as_str()],
            task,
            gang_size: t.gang_size,
            priority: t.priority,
            preemptible: t.preemptible,
            dataset,
            residency_region: t.residency_region.clone(),
            latency,
            price_fen_per_card_hour_max: t.price_fen_per_card_hour_max,
            deadline_unix_s: t.deadline_s.map(|d| d as i64),
            runtime_estimate_s: t.estimate_s,
            speeds,
        };
        spec.validate().map_err(|e| ResolveError::new(e.code(), format!("{source}:{}: {e}", t.line)))?;
        jobs.push(SimJob {
            name: t.id.clone(),
            job: Job { spec, submit_s: t.submit_s, green: t.green, oracle_duration_s: Some(t.duration_s), pool: None },
            duration_s: t.duration_s,
        });
    }
    let duration_s_mean = trace.jobs.iter().map(|j| j.duration_s as f64).sum::<f64>() / trace.jobs.len().max(1) as f64;
    Ok(Resolved { tenants, jobs, duration_s_mean })
}
