//! Fit: what a job body means for placement, decided once for the scheduler, the quotes and the
//! refusals at submit. The body's accepted models (with the job's own speed on each) are narrowed
//! by its framework through the adaptation matrix, exactly as the simulator's resolver does; a job
//! that needs cards and names neither a framework, models, a pool nor a contract runs the
//! platform's default framework (`cuda`: code built for NVIDIA cards), written into the stored
//! body so that it never changes.
//!
//! [`unschedulable`] says why no pool of the federation could ever run a job (more cards per task
//! than any node, a model or framework no pool has, a residency region or latency bound no pool
//! meets, a price ceiling below every price, a gang larger than any pool), so that such a job is
//! refused at submit instead of failing later.

use std::collections::BTreeMap;

use suanwang_api::jobs::{DatasetField, JobRequest};
use suanwang_formats::trace::resolve_models;
use suanwang_model::catalog::{AcceleratorSet, AdaptationMatrix};
use suanwang_model::federation::{Federation, PoolId};
use suanwang_model::job::{AcceleratorRequest, DatasetRef, JobSpec, LatencyRequirement, TaskSpec};
use suanwang_sched::job::Job;
use suanwang_sched::pools::{NO_ACCEPTED_MODEL, NO_ROOM, empty_slots, infeasible_reason};

use crate::config::{ControlConfig, TIME_LIMIT_MAX_S};
use crate::error::Error;

/// Longest job name.
pub const NAME_MAX: usize = 128;
/// Most command arguments.
pub const ARGS_MAX: usize = 256;
/// Most bytes in all command arguments together.
pub const COMMAND_BYTES_MAX: usize = 64 * 1024;
/// Longest name of a pool, site, region, framework, template, tenant or contract in a body.
pub const REFERENCE_MAX: usize = 128;
/// Most accepted models one job may list.
pub const MODELS_MAX: usize = 64;
/// The longest run-time estimate or simulated duration: a year.
pub const DURATION_MAX_S: u64 = 366 * 86_400;

fn invalid(message: impl Into<String>) -> Error {
    Error::bad_request("invalid_job", message)
}

/// Most environment variables one job may name.
pub const ENV_MAX: usize = 64;
/// Longest environment variable name.
pub const ENV_NAME_MAX: usize = 128;
/// Longest environment variable value.
pub const ENV_VALUE_MAX: usize = 4096;

/// Checks the body's own limits: lengths, counts, the text rule on every string, durations. A
/// body that passes is at most about 400 KiB however it is filled (the command, the environment,
/// and at most 64 models and a dozen short references), so no job's stored footprint grows
/// without bound.
pub fn check_limits(body: &JobRequest) -> Result<(), Error> {
    use suanwang_api::text::TextKind::{Line, Lines};
    if body.name.trim().is_empty() || body.name.chars().count() > NAME_MAX {
        return Err(invalid(format!("name must be 1 to {NAME_MAX} characters")).at("name"));
    }
    Error::check_text("name", &body.name, Line, NAME_MAX * 4)?;
    if body.command.len() > ARGS_MAX || body.command.iter().map(String::len).sum::<usize>() > COMMAND_BYTES_MAX {
        return Err(invalid(format!("command must have at most {ARGS_MAX} arguments and {COMMAND_BYTES_MAX} bytes"))
            .at("command"));
    }
    for arg in &body.command {
        Error::check_text("command", arg, Lines, COMMAND_BYTES_MAX)?;
    }
    let references: [(&str, Option<&str>); 7] = [
        ("pool", body.pool.as_deref()),
        ("residency_region", body.residency_region.as_deref()),
        ("framework", body.framework.as_deref()),
        ("template", body.template.as_deref()),
        ("tenant", body.tenant.as_deref()),
        ("contract", body.contract.as_deref()),
        ("latency", body.latency.as_ref().map(|l| l.site.as_str())),
    ];
    for (field, value) in references {
        if let Some(value) = value {
            if value.is_empty() {
                return Err(invalid(format!("{field} must be 1 to {REFERENCE_MAX} bytes")).at(field));
            }
            Error::check_text(field, value, Line, REFERENCE_MAX)?;
        }
    }
    if body.accelerator_models.len() > MODELS_MAX {
        return Err(invalid(format!("at most {MODELS_MAX} accelerator models")).at("accelerator_models"));
    }
    for choice in &body.accelerator_models {
        Error::check_text("accelerator_models", choice.model(), Line, REFERENCE_MAX)?;
    }
    if body.env.len() > ENV_MAX {
        return Err(invalid(format!("at most {ENV_MAX} environment variables")).at("env"));
    }
    for (name, value) in &body.env {
        let valid_name = name.len() <= ENV_NAME_MAX
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(invalid(format!(
                "environment variable names are letters, digits and _ (not first), at most {ENV_NAME_MAX} bytes: {:?}",
                name.chars().take(40).collect::<String>()
            ))
            .at("env"));
        }
        Error::check_text("env", value, Lines, ENV_VALUE_MAX)?;
    }
    for (field, value) in [("estimate_s", body.estimate_s), ("duration_s", body.duration_s)] {
        if value.is_some_and(|v| v > DURATION_MAX_S) {
            return Err(invalid(format!("{field} is at most {DURATION_MAX_S} (a year)")).at(field));
        }
    }
    if body.time_limit_s.is_some_and(|t| t == 0 || t > TIME_LIMIT_MAX_S) {
        return Err(invalid(format!("time_limit_s is 1 to {TIME_LIMIT_MAX_S} (a year)")).at("time_limit_s"));
    }
    if let Some(DatasetField::Given(d)) = &body.dataset {
        if d.site.is_empty() {
            return Err(invalid(format!("dataset.site is 1 to {REFERENCE_MAX} bytes")).at("dataset"));
        }
        Error::check_text("dataset", &d.site, Line, REFERENCE_MAX)?;
        if let Some(name) = &d.name {
            Error::check_text("dataset", name, Line, REFERENCE_MAX)?;
        }
    }
    if let Some(DatasetField::Named(name)) = &body.dataset {
        Error::check_text("dataset", name, Line, REFERENCE_MAX)?;
    }
    Ok(())
}

/// The body with the platform's defaults applied: the default framework for a card job that
/// names neither a framework, models, a pool nor a contract. What is stored and scheduled.
pub fn with_defaults(mut body: JobRequest, config: &ControlConfig) -> JobRequest {
    if body.accelerators > 0
        && body.framework.is_none()
        && body.accelerator_models.is_empty()
        && body.pool.is_none()
        && body.contract.is_none()
    {
        body.framework.clone_from(&config.default_framework);
    }
    body
}

/// What the scheduler needs of a body (used on submit and on restart): resources, the accepted
/// models narrowed by the framework, the job's speeds, constraints by id. `tenant` is the
/// scheduler's tenant index.
pub fn scheduler_job(
    federation: &Federation,
    adaptation: &AdaptationMatrix,
    tenant: u32,
    body: &JobRequest,
    submit_s: u64,
) -> Result<Job, Error> {
    let catalog = federation.catalog();
    let milli = if body.accelerators == 0 { 0 } else { body.accelerator_milli };
    let request =
        AcceleratorRequest::new(body.accelerators, milli).map_err(|e| invalid(e.to_string()).at("accelerators"))?;
    let (mut models, speeds) = resolve_models(&body.accelerator_models, catalog)
        .map_err(|e| invalid(e.to_string()).at("accelerator_models"))?;
    if let Some(framework) = &body.framework {
        let narrowed = adaptation.narrow(framework, models, catalog).map_err(|e| {
            let code = if e.code() == "unknown_reference" { "unknown_framework" } else { "unschedulable" };
            Error::new(
                if code == "unschedulable" { crate::error::Kind::Unprocessable } else { crate::error::Kind::Invalid },
                code,
                e.to_string(),
            )
            .at("framework")
        })?;
        // A CPU-only job runs anywhere its framework's CPU build does: narrowing is for cards.
        if request.count() > 0 {
            models = narrowed;
        }
    }
    let field = if body.cpu_milli > suanwang_model::job::limits::TASK_CPU_MILLI_MAX {
        "cpu_milli"
    } else if body.memory_mib > suanwang_model::job::limits::TASK_MEMORY_MIB_MAX {
        "memory_mib"
    } else {
        "body"
    };
    let task = TaskSpec::new(body.cpu_milli, body.memory_mib, request, models)
        .map_err(|e| invalid(e.to_string()).at(field))?;
    let site = |name: &str, field: &'static str| {
        federation
            .site_id(name)
            .ok_or_else(|| Error::bad_request("unknown_site", format!("unknown site {name:?}")).at(field))
    };
    let dataset = match &body.dataset {
        None => None,
        Some(DatasetField::Given(d)) => Some(DatasetRef { site: site(&d.site, "dataset")?, size_bytes: d.size_bytes }),
        Some(DatasetField::Named(name)) => {
            return Err(Error::bad_request("unknown_dataset", format!("data set {name:?} is not resolved")));
        }
    };
    let latency = match &body.latency {
        None => None,
        Some(l) if l.max_ms.is_finite() && (0.0..=10_000.0).contains(&l.max_ms) => Some(LatencyRequirement {
            site: site(&l.site, "latency")?,
            latency_us_max: (l.max_ms * 1000.0).round() as u32,
        }),
        Some(_) => return Err(invalid("latency.max_ms must be between 0 and 10000").at("latency")),
    };
    let pool = body
        .pool
        .as_ref()
        .map(|name| {
            federation
                .pools()
                .find(|(_, p)| &p.name == name)
                .map(|(id, _)| id)
                .ok_or_else(|| Error::bad_request("unknown_pool", format!("unknown pool {name:?}")).at("pool"))
        })
        .transpose()?;
    let spec = JobSpec {
        name: body.name.clone(),
        tenant,
        task,
        gang_size: body.tasks,
        priority: body.priority,
        preemptible: body.preemptible,
        dataset,
        residency_region: body.residency_region.clone(),
        latency,
        price_fen_per_card_hour_max: body.max_price_fen_per_card_hour,
        deadline_unix_s: None,
        runtime_estimate_s: body.estimate_s,
        speeds: speeds.into_iter().filter(|(m, _)| models.contains(*m)).collect(),
    };
    spec.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(Job { spec, submit_s, green: body.green, oracle_duration_s: None, pool })
}

/// Why no pool of the federation could ever run `job` (even empty, healthy and undrained), with
/// the body field at fault; `None` when some pool could.
pub fn unschedulable(federation: &Federation, job: &Job) -> Option<Error> {
    let spec = &job.spec;
    let mut reasons: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (id, pool) in federation.pools() {
        if job.pool.is_some_and(|pinned| pinned != id) {
            continue;
        }
        match infeasible_reason(federation, pool, spec, empty_slots) {
            None => return None,
            Some(reason) => reasons.entry(reason).or_default().push(&pool.name),
        }
    }
    let refuse = |message: String, field: &str| Some(Error::unprocessable("unschedulable", message).at(field));
    let task = &spec.task;
    let accepted = task.accepted_models();
    let request = task.accelerators();
    let pools_considered: Vec<PoolId> =
        federation.pools().map(|(id, _)| id).filter(|id| job.pool.is_none_or(|p| p == *id)).collect();
    let nodes = || pools_considered.iter().flat_map(|&id| federation.pool(id).nodes.iter());
    let catalog = federation.catalog();
    if request.count() > 0 && !nodes().any(|n| n.accelerator.is_some_and(|m| accepted.contains(m))) {
        let names = model_names(federation, accepted);
        let field = if job.pool.is_some() { "pool" } else { "accelerator_models" };
        return refuse(format!("no pool has cards it accepts ({names})"), field);
    }
    if request.count() > 0 {
        let largest = nodes()
            .filter(|n| n.accelerator.is_some_and(|m| accepted.contains(m)))
            .map(|n| n.accelerators)
            .max()
            .unwrap_or(0);
        if request.count() > largest {
            return refuse(
                format!(
                    "a task asks for {} cards, and no node with cards it accepts has more than {largest}; \
                     ask for at most {largest} cards per task and more tasks",
                    request.count()
                ),
                "accelerators",
            );
        }
    }
    let fits_host = |n: &&suanwang_model::federation::NodeSpec| {
        (request.count() == 0 || n.accelerator.is_some_and(|m| accepted.contains(m)))
            && n.cpu_milli >= task.cpu_milli()
            && n.memory_mib >= task.memory_mib()
    };
    if !nodes().any(|n| fits_host(&n)) {
        let cpu = nodes().map(|n| n.cpu_milli).max().unwrap_or(0);
        let field = if task.cpu_milli() > cpu { "cpu_milli" } else { "memory_mib" };
        return refuse(
            format!(
                "a task asks for {} cores and {} MiB, more than any node it could use has",
                f64::from(task.cpu_milli()) / 1000.0,
                task.memory_mib()
            ),
            field,
        );
    }
    if let Some(region) = &spec.residency_region
        && !pools_considered.iter().any(|&id| &federation.site(federation.pool(id).site).region == region)
    {
        let mut regions: Vec<&str> = federation.sites().iter().map(|s| s.region.as_str()).collect();
        regions.sort_unstable();
        regions.dedup();
        return refuse(
            format!("no pool is in region {region:?} (pools are in {})", regions.join(", ")),
            "residency_region",
        );
    }
    if let Some(max) = spec.price_fen_per_card_hour_max
        && request.count() > 0
    {
        let cheapest = pools_considered
            .iter()
            .flat_map(|&id| federation.pool(id).prices.card_hour_fen.iter())
            .filter(|(m, _)| accepted.contains(**m))
            .map(|(_, fen)| *fen)
            .min();
        if cheapest.is_some_and(|c| c > max) {
            return refuse(
                format!(
                    "the price ceiling ¥{} a card-hour is below every price of the cards it accepts (the cheapest is ¥{})",
                    yuan(max),
                    yuan(cheapest.unwrap_or(0))
                ),
                "max_price_fen_per_card_hour",
            );
        }
    }
    let _ = catalog;
    // The pools that have the cards are the ones that say why: leave out those that do not.
    let relevant: BTreeMap<&String, &Vec<&str>> = {
        let with_model: BTreeMap<&String, &Vec<&str>> =
            reasons.iter().filter(|(r, _)| !r.starts_with(NO_ACCEPTED_MODEL)).collect();
        if with_model.is_empty() { reasons.iter().collect() } else { with_model }
    };
    if relevant.keys().all(|r| r.contains("of the gang's") || r.starts_with(NO_ROOM)) {
        let most = pools_considered
            .iter()
            .map(|&id| (empty_slots(federation.pool(id), task), federation.pool(id).name.as_str()))
            .max_by_key(|(slots, _)| *slots);
        let (slots, pool) = most.unwrap_or((0, "none"));
        return refuse(
            format!(
                "no pool has room for {} tasks of this shape even when empty (the most is {slots}, in {pool})",
                spec.gang_size
            ),
            "tasks",
        );
    }
    if spec.latency.is_some() && relevant.keys().all(|r| r.contains(" ms from ") || r.contains("not reachable")) {
        let first = relevant.keys().next().map_or("", |r| r.as_str());
        return refuse(format!("no pool with cards it accepts is near enough: {first}"), "latency");
    }
    // Several reasons at once (say, the only pools near enough are too small): list them.
    let mut parts: Vec<String> = relevant
        .iter()
        .map(|(reason, pools)| match pools.as_slice() {
            [one] => format!("{one}: {reason}"),
            many => format!("{} pools ({}…): {reason}", many.len(), many[0]),
        })
        .collect();
    parts.truncate(5);
    refuse(format!("no pool could ever run it: {}", parts.join("; ")), "body")
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, (fen % 100).abs())
}

/// `A800-SXM4-80GB, Ascend-910B` (or `any model`).
pub fn model_names(federation: &Federation, models: AcceleratorSet) -> String {
    if models.is_any() {
        return "any model".to_owned();
    }
    let names: Vec<&str> =
        federation.catalog().iter().filter(|(id, _)| models.contains(*id)).map(|(_, a)| a.model.as_str()).collect();
    if names.len() > 8 { format!("{} and {} more", names[..8].join(", "), names.len() - 8) } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn federation() -> Federation {
        let catalog = suanwang_formats::catalog::builtin();
        let text = include_str!("../../../examples/federations/greater-bay-area.toml");
        suanwang_formats::federation::parse("gba", text, &catalog).unwrap_or_else(|e| panic!("{e}"))
    }

    fn body(json: &str) -> JobRequest {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The refusal's code, field and a phrase of its sentence; `None` when some pool fits.
    fn check(json: &str, expect: Option<(&str, &str, &str)>) {
        let federation = federation();
        let adaptation = suanwang_formats::catalog::builtin_adaptation();
        let config = ControlConfig::default();
        let request = with_defaults(body(json), &config);
        let outcome = scheduler_job(&federation, &adaptation, 0, &request, 0)
            .and_then(|job| unschedulable(&federation, &job).map_or(Ok(()), Err));
        match (outcome, expect) {
            (Ok(()), None) => {}
            (Err(e), Some((code, field, phrase))) => {
                assert_eq!((e.code, e.field.as_deref()), (code, Some(field)), "{json}: {}", e.message);
                assert!(e.message.contains(phrase), "{json}: {:?} lacks {phrase:?}", e.message);
            }
            (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn refusals_say_why_no_pool_could_ever_run_it() {
        check(r#"{"name":"j","accelerators":8}"#, None);
        check(r#"{"name":"j","accelerators":17}"#, Some(("invalid_job", "accelerators", "at most 16")));
        check(
            r#"{"name":"j","accelerators":16}"#,
            Some(("unschedulable", "accelerators", "no node with cards it accepts has more than 8")),
        );
        check(
            r#"{"name":"j","accelerators":1,"framework":"jax","accelerator_models":["Ascend-910B"]}"#,
            Some(("unschedulable", "framework", "no accepted accelerator model runs jax")),
        );
        check(
            r#"{"name":"j","accelerators":1,"framework":"tensorflow","accelerator_models":["MLU370-X8"]}"#,
            Some(("unschedulable", "framework", "runs tensorflow")),
        );
        check(
            r#"{"name":"j","accelerators":1,"framework":"fortran"}"#,
            Some(("unknown_framework", "framework", "known frameworks")),
        );
        check(
            r#"{"name":"j","accelerators":1,"residency_region":"CN-BJ"}"#,
            Some(("unschedulable", "residency_region", "no pool is in region \"CN-BJ\"")),
        );
        check(
            r#"{"name":"j","accelerators":1,"max_price_fen_per_card_hour":10}"#,
            Some(("unschedulable", "max_price_fen_per_card_hour", "below every price")),
        );
        check(r#"{"name":"j","cpu_milli":5000000}"#, Some(("invalid_job", "cpu_milli", "at most")));
        check(r#"{"name":"j","cpu_milli":1000000}"#, Some(("unschedulable", "cpu_milli", "more than any node")));
        check(
            r#"{"name":"j","accelerators":8,"tasks":4000}"#,
            Some(("unschedulable", "tasks", "no pool has room for 4000 tasks")),
        );
        check(
            r#"{"name":"j","accelerators":1,"latency":{"site":"huizhou-zhongkai","max_ms":0.0}}"#,
            Some(("unschedulable", "latency", "near enough")),
        );
        check(
            r#"{"name":"j","accelerators":1,"pool":"zhongshan-inference","accelerator_models":["A800"]}"#,
            Some(("unschedulable", "pool", "no pool has cards it accepts")),
        );
    }

    #[test]
    fn a_plain_card_job_runs_cuda_unless_it_says_otherwise() {
        let config = ControlConfig::default();
        assert_eq!(with_defaults(body(r#"{"name":"j","accelerators":8}"#), &config).framework.as_deref(), Some("cuda"));
        for said in [
            r#"{"name":"j","accelerators":8,"framework":"mindspore"}"#,
            r#"{"name":"j","accelerators":8,"accelerator_models":["MLU370-X8"]}"#,
            r#"{"name":"j","accelerators":8,"pool":"jiangmen-mlu"}"#,
            r#"{"name":"j","cpu_milli":1000}"#,
        ] {
            let b = body(said);
            assert_eq!(with_defaults(b.clone(), &config).framework, b.framework, "{said}");
        }
        let federation = federation();
        let adaptation = suanwang_formats::catalog::builtin_adaptation();
        let job = scheduler_job(
            &federation,
            &adaptation,
            0,
            &with_defaults(body(r#"{"name":"j","accelerators":8}"#), &config),
            0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mlu = federation.catalog().lookup("MLU370-X8").unwrap_or_else(|| panic!("MLU370"));
        let ascend = federation.catalog().lookup("Ascend-910B").unwrap_or_else(|| panic!("910B"));
        let a800 = federation.catalog().lookup("A800").unwrap_or_else(|| panic!("A800"));
        let models = job.spec.task.accepted_models();
        assert!(!models.contains(mlu) && !models.contains(ascend) && models.contains(a800));
    }

    #[test]
    fn speeds_come_with_their_models() {
        let federation = federation();
        let adaptation = suanwang_formats::catalog::builtin_adaptation();
        let b = body(
            r#"{"name":"j","accelerators":1,"framework":"pytorch","accelerator_models":[{"model":"Ascend-910B","speed":0.8},"A800"]}"#,
        );
        let job = scheduler_job(&federation, &adaptation, 0, &b, 0).unwrap_or_else(|e| panic!("{e}"));
        let ascend = federation.catalog().lookup("Ascend-910B").unwrap_or_else(|| panic!("910B"));
        assert_eq!(job.spec.speeds, vec![(ascend, 800)]);
        let bad = body(r#"{"name":"j","accelerators":1,"accelerator_models":[{"model":"A800","speed":0}]}"#);
        let e = scheduler_job(&federation, &adaptation, 0, &bad, 0).unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), ("invalid_job", Some("accelerator_models")));
    }

    #[test]
    fn limits_hold() {
        let long = "x".repeat(200);
        for (json, code, field) in [
            (format!(r#"{{"name":"j","residency_region":"{long}"}}"#), "too_long", "residency_region"),
            (r#"{"name":"a\u0000b"}"#.to_owned(), "invalid_text", "name"),
            (r#"{"name":"a\u001b[2Jb"}"#.to_owned(), "invalid_text", "name"),
            (r#"{"name":"j","command":["a\u0000"]}"#.to_owned(), "invalid_text", "command"),
            (r#"{"name":"j","env":{"A":"\u0000"}}"#.to_owned(), "invalid_text", "env"),
            (r#"{"name":"j","env":{"1A":"x"}}"#.to_owned(), "invalid_job", "env"),
            (r#"{"name":"j","accelerator_models":["A\u0007"]}"#.to_owned(), "invalid_text", "accelerator_models"),
            (r#"{"name":"j","estimate_s":99999999999}"#.to_owned(), "invalid_job", "estimate_s"),
            (r#"{"name":"j","time_limit_s":0}"#.to_owned(), "invalid_job", "time_limit_s"),
        ] {
            let error = check_limits(&body(&json)).unwrap_err();
            assert_eq!((error.code, error.field.as_deref()), (code, Some(field)), "{json}");
        }
        assert!(check_limits(&body(r#"{"name":"ok","command":["sh","-c","a\n\tb"],"env":{"EPOCHS":"3"}}"#)).is_ok());
        assert!(check_limits(&body(r#"{"name":"ok","residency_region":"CN-GD"}"#)).is_ok());
    }
}
