//! Slurm through slurmrestd (OpenAPI `v0.0.38` and `dbv0.0.38`, as Slurm 22.05 ships them),
//! for sites that give the agent no shell on a login node. The same operations as
//! [`super::cli::SlurmCli`], read into the same types; what differs:
//!
//! - Authentication is a JSON Web Token (`X-SLURM-USER-TOKEN`), read from a file on every
//!   request so the site can rotate it (`scontrol token lifespan=…` writes one). A token of the
//!   `SlurmUser` (or root) lets the agent submit as the tenant's Unix user
//!   (`X-SLURM-USER-NAME`), as `sbatch` run as that user does with the commands.
//! - `GET /slurm/v0.0.38/jobs` has no user filter: every job the controller knows is read (at
//!   most [`super::cli::OUTPUT_MAX`] bytes), then the platform's are kept.
//! - The accounting endpoint of 22.05 cannot parse a list of names: one request per job name.
//! - Plain `http://` only (slurmrestd listens on the site's own network or localhost).
//!
//! The parsers are pure and tested against responses of a real slurmrestd 22.05.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::cli::{OUTPUT_MAX, SlurmError, classify};
use super::site::UnixUser;
use super::{BatchJob, Holds, Memory, PartitionLimits, SlurmJob, SlurmNode, SlurmState, platform_id, state_of};

/// The OpenAPI versions spoken (Slurm 22.05's newest).
pub const API: &str = "v0.0.38";

/// Longest token file read.
pub const TOKEN_BYTES_MAX: u64 = 16 * 1024;

/// Slurm's error number for a job id it does not know.
const INVALID_JOB_ID: i64 = 2017;
/// Slurm's error number for a job that already completed (or is completing).
const ALREADY_DONE: i64 = 2021;
/// Slurm's error numbers for "Unable to connect to database" (slurmdbd away), and the next.
const DB_CONNECTION: i64 = 7000;

/// A listing of every job the controller knows at most this often (and whenever the agent asks
/// for all, at start); in between, [`SlurmRest::jobs`] lists nothing, so the agent reads each job
/// it follows by its id (about 2 ms each, where a listing of 4,000 jobs is 15 MB and 0.85 s).
/// Jobs of the platform it does not follow (reconciliation, a tenant's own `sbatch`) are found
/// at the next full listing.
pub const FULL_LISTING_EVERY: Duration = Duration::from_secs(10);

/// A slurmrestd.
#[derive(Clone, Debug)]
pub struct SlurmRest {
    /// `http://host:port`.
    pub url: String,
    /// The file holding the token (`scontrol token` output, `SLURM_JWT=…`, or the bare token).
    pub token_file: PathBuf,
    /// The Unix user the token is for: requests not made for a tenant run as it.
    pub user: String,
    /// How long one request may take before Slurm counts as away.
    pub timeout: Duration,
    /// The partition whose nodes make the pool (all nodes when `None`).
    pub partition: Option<String>,
    /// When every job was last listed ([`FULL_LISTING_EVERY`]).
    listed_all_at: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// One HTTP client for every request, so connections to slurmrestd are kept and reused.
    agent: ureq::Agent,
}

impl SlurmRest {
    /// A slurmrestd at `url` (see the fields).
    pub fn new(url: String, token_file: PathBuf, user: String, timeout: Duration, partition: Option<String>) -> Self {
        SlurmRest {
            url,
            token_file,
            user,
            timeout,
            partition,
            listed_all_at: Default::default(),
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
        }
    }
}

/// The token in a token file's text: the bare token or `SLURM_JWT=<token>` (what `scontrol
/// token` prints), surrounding space ignored.
pub fn token_in(text: &str) -> Option<&str> {
    let text = text.trim();
    let token = text.strip_prefix("SLURM_JWT=").unwrap_or(text).trim();
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())).then_some(token)
}

/// `errors` of a slurmrestd answer.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    errors: Vec<RestError>,
}

#[derive(Debug, Default, Deserialize)]
struct RestError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_number: Option<i64>,
    #[serde(default)]
    error_code: Option<i64>,
}

impl RestError {
    fn number(&self) -> i64 {
        self.error_number.or(self.error_code).unwrap_or(0)
    }

    fn text(&self) -> String {
        match (&self.description, &self.error) {
            (Some(d), Some(e)) if !d.is_empty() && d != e => format!("{e}: {d}"),
            (_, Some(e)) if !e.is_empty() => e.clone(),
            (Some(d), _) => d.clone(),
            _ => format!("error {}", self.number()),
        }
    }
}

/// What a request gave: the body when slurmrestd reported no error, else its errors.
enum Reply {
    Ok(String),
    Errors(Vec<(i64, String)>),
}

/// The message of an answer's errors, sorted into away and refused as the commands' are (a
/// controller that does not answer is away). slurmrestd 22.05 says only "Unspecified error"
/// (number -1) when the controller is down for a listing, and when it refuses the token: both
/// are away (the pool waits, its health says why), never a refusal that would fail a job.
pub fn error_of(errors: &[(i64, String)]) -> SlurmError {
    let message = errors.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("\n");
    if errors.iter().any(|(n, _)| (DB_CONNECTION..=DB_CONNECTION + 1).contains(n)) {
        return SlurmError::Unavailable(format!("slurmdbd does not answer: {}", message.replace('\n', "; ")));
    }
    if errors.iter().any(|(n, _)| *n <= 0) {
        let message = message.lines().collect::<Vec<_>>().join("; ");
        return SlurmError::Unavailable(format!(
            "slurmrestd got no answer from Slurm (the controller is away, or it refused the token): {message}"
        ));
    }
    classify(&message)
}

impl SlurmRest {
    /// The token, read now (a missing or empty file is the site's to fix: the pool waits,
    /// unhealthy, saying why, and no job fails for it).
    fn token(&self) -> Result<String, SlurmError> {
        let mut text = String::new();
        std::fs::File::open(&self.token_file).and_then(|f| f.take(TOKEN_BYTES_MAX).read_to_string(&mut text)).map_err(
            |e| SlurmError::Unavailable(format!("cannot read the slurmrestd token {}: {e}", self.token_file.display())),
        )?;
        token_in(&text).map(str::to_owned).ok_or_else(|| {
            SlurmError::Unavailable(format!("the slurmrestd token file {} holds no token", self.token_file.display()))
        })
    }

    /// One request, as `user` (the token's own when `None`), on a blocking thread.
    async fn call(
        &self,
        method: &'static str,
        path: String,
        body: Option<Value>,
        user: Option<&str>,
    ) -> Result<Reply, SlurmError> {
        let token = self.token()?;
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let user = user.unwrap_or(&self.user).to_owned();
        let agent = self.agent.clone();
        let done = tokio::task::spawn_blocking(move || {
            let request = agent
                .request(method, &url)
                .set("X-SLURM-USER-NAME", &user)
                .set("X-SLURM-USER-TOKEN", &token)
                .set("Accept", "application/json");
            let response = match body {
                Some(body) => request.send_json(body),
                None => request.call(),
            };
            let (status, response) = match response {
                Ok(r) => (r.status(), r),
                Err(ureq::Error::Status(status, r)) => (status, r),
                Err(ureq::Error::Transport(e)) => {
                    return Err(SlurmError::Unavailable(format!("slurmrestd at {url} does not answer: {e}")));
                }
            };
            let mut text = String::new();
            response
                .into_reader()
                .take(OUTPUT_MAX as u64 + 1)
                .read_to_string(&mut text)
                .map_err(|e| SlurmError::Unavailable(format!("slurmrestd's answer broke off: {e}")))?;
            if text.len() > OUTPUT_MAX {
                return Err(SlurmError::Unreadable(format!("slurmrestd answered more than {OUTPUT_MAX} bytes")));
            }
            Ok((status, text))
        })
        .await
        .map_err(|e| SlurmError::Unavailable(format!("the request to slurmrestd failed: {e}")))?;
        let (status, text) = done?;
        let answer: Answer = match serde_json::from_str(&text) {
            Ok(answer) => answer,
            Err(_) if status >= 400 => {
                let said = text.trim().chars().take(200).collect::<String>();
                return Err(if status >= 500 || status == 401 || status == 403 {
                    SlurmError::Unavailable(format!("slurmrestd answered {status}: {said}"))
                } else {
                    SlurmError::Refused(format!("slurmrestd answered {status}: {said}"))
                });
            }
            Err(e) => return Err(SlurmError::Unreadable(format!("slurmrestd's answer is not its JSON: {e}"))),
        };
        if answer.errors.is_empty() && status < 400 {
            return Ok(Reply::Ok(text));
        }
        let mut errors: Vec<(i64, String)> = answer.errors.iter().map(|e| (e.number(), e.text())).collect();
        if errors.is_empty() {
            errors.push((0, format!("slurmrestd answered {status}")));
        }
        Ok(Reply::Errors(errors))
    }

    /// The body of a request that must succeed.
    async fn get(&self, path: String) -> Result<String, SlurmError> {
        match self.call("GET", path, None, None).await? {
            Reply::Ok(text) => Ok(text),
            Reply::Errors(errors) => Err(error_of(&errors)),
        }
    }

    /// Submits a batch job as `user` (the token's user when `None`); its Slurm id.
    pub async fn submit(&self, job: &BatchJob, user: Option<&UnixUser>) -> Result<u64, SlurmError> {
        let path = format!("/slurm/{API}/job/submit");
        match self.call("POST", path, Some(submission(job)), user.map(|u| u.name.as_str())).await? {
            Reply::Ok(text) => {
                #[derive(Deserialize)]
                struct Submitted {
                    job_id: Option<u64>,
                }
                let submitted: Submitted = serde_json::from_str(&text)
                    .map_err(|e| SlurmError::Unreadable(format!("slurmrestd's submission answer: {e}")))?;
                submitted.job_id.ok_or_else(|| SlurmError::Unreadable("slurmrestd answered no job id".to_owned()))
            }
            Reply::Errors(errors) => Err(error_of(&errors)),
        }
    }

    /// The platform's jobs of `users` that may still run (or with `all`, also those ended
    /// within `MinJobAge`), as [`super::cli::SlurmCli::jobs`] gives them; nothing between full
    /// listings ([`FULL_LISTING_EVERY`]: slurmrestd 22.05 cannot list one user's jobs).
    pub async fn jobs(
        &self,
        users: &[String],
        platform_users: &[String],
        all: bool,
    ) -> Result<(Vec<SlurmJob>, Vec<super::ParseError>), SlurmError> {
        let due = |at: &Option<std::time::Instant>| at.is_none_or(|t| t.elapsed() >= FULL_LISTING_EVERY);
        if !all && !self.listed_all_at.lock().map_or(true, |at| due(&at)) {
            return Ok((Vec::new(), Vec::new()));
        }
        let started = std::time::Instant::now();
        let text = self.get(format!("/slurm/{API}/jobs")).await?;
        if let Ok(mut at) = self.listed_all_at.lock() {
            *at = Some(started);
        }
        let (jobs, errors) = parse_jobs(&text, now_s())?;
        let jobs = jobs
            .into_iter()
            .filter(|job| {
                let user = job.user.as_deref().unwrap_or("");
                let ours = platform_id(&job.name).is_some() || platform_users.iter().any(|u| u == user);
                // `users` names the site's users and the agent's own (by uid, which a
                // listing does not say): the token's user stands for the agent's.
                let listed = users.iter().any(|u| u == user) || user == self.user;
                ours && listed && (all || matches!(job.state, SlurmState::Pending | SlurmState::Running))
            })
            .collect();
        Ok((jobs, errors))
    }

    /// One job as the controller knows it; `None` when it no longer does.
    pub async fn job(&self, slurm_id: u64) -> Result<Option<SlurmJob>, SlurmError> {
        match self.call("GET", format!("/slurm/{API}/job/{slurm_id}"), None, None).await? {
            Reply::Ok(text) => {
                let (jobs, errors) = parse_jobs(&text, now_s())?;
                if let Some(e) = errors.into_iter().next() {
                    return Err(e.into());
                }
                Ok(jobs.into_iter().find(|j| j.id == slurm_id))
            }
            Reply::Errors(errors) if errors.iter().any(|(n, _)| *n == INVALID_JOB_ID) => Ok(None),
            Reply::Errors(errors) => Err(error_of(&errors)),
        }
    }

    /// The jobs of these names in Slurm's accounting (slurmdbd), one request per name.
    pub async fn accounting(&self, names: &[String]) -> Result<(Vec<SlurmJob>, Vec<super::ParseError>), SlurmError> {
        let mut jobs = Vec::new();
        let mut errors = Vec::new();
        for group in names.chunks(16) {
            let answers = futures_util::future::join_all(group.iter().map(|name| {
                // 22.05 reads no `T` in a time here, nor a list of names.
                self.get(format!("/slurmdb/{API}/jobs?job_name={name}&start_time=1970-01-02"))
            }))
            .await;
            for (name, answer) in group.iter().zip(answers) {
                let (found, bad) = parse_accounted(&answer?, name)?;
                jobs.extend(found);
                errors.extend(bad);
            }
        }
        Ok((jobs, errors))
    }

    /// Cancels a job (one already ended or unknown is not an error).
    pub async fn cancel(&self, slurm_id: u64) -> Result<(), SlurmError> {
        match self.call("DELETE", format!("/slurm/{API}/job/{slurm_id}"), None, None).await? {
            Reply::Ok(_) => Ok(()),
            Reply::Errors(errors) if errors.iter().all(|(n, _)| *n == INVALID_JOB_ID || *n == ALREADY_DONE) => Ok(()),
            Reply::Errors(errors) => Err(error_of(&errors)),
        }
    }

    /// The time limits of the pool's partition (else the cluster's default partition).
    pub async fn partition_limits(&self) -> Result<Option<PartitionLimits>, SlurmError> {
        let parts = parse_partitions(&self.get(format!("/slurm/{API}/partitions")).await?)?;
        Ok(parts.into_iter().find(|p| match &self.partition {
            Some(name) => &p.name == name,
            None => p.default,
        }))
    }

    /// The pool's nodes.
    pub async fn nodes(&self) -> Result<Vec<SlurmNode>, SlurmError> {
        Ok(parse_nodes(&self.get(format!("/slurm/{API}/nodes")).await?, self.partition.as_deref())?)
    }
}

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The slurmrestd submission of a batch job: the same request as its `sbatch` arguments. The
/// job's environment is only `PATH` and `LANG` (slurmrestd exports exactly what it is given).
pub fn submission(job: &BatchJob) -> Value {
    let mut properties = serde_json::Map::new();
    let mut set = |key: &str, value: Value| {
        properties.insert(key.to_owned(), value);
    };
    set("name", json!(job.name));
    if let Some(comment) = &job.comment {
        set("comment", json!(comment));
    }
    if job.tasks > 1 {
        set("tasks", json!(job.tasks));
    }
    set("cpus_per_task", json!(job.cpus_per_task));
    match job.memory_mib {
        Memory::PerNode(mib) => set("memory_per_node", json!(mib)),
        Memory::PerCpu(mib) => set("memory_per_cpu", json!(mib)),
    }
    if let Some(gpus) = &job.gpus_per_task {
        set("gpus_per_task", json!(gpus));
    }
    if let Some(nodes) = job.nodes {
        set("nodes", json!([nodes, nodes]));
        set("tasks_per_node", json!(1));
    }
    if let Some(gres) = &job.gres {
        set("gres", json!(gres));
    }
    if let Some(minutes) = job.time_limit_min {
        set("time_limit", json!(minutes));
    }
    set("current_working_directory", json!(job.dir));
    set("standard_output", json!(job.output));
    set("open_mode", json!("append"));
    for (key, value) in [("partition", &job.partition), ("account", &job.account), ("qos", &job.qos)] {
        if let Some(value) = value {
            set(key, json!(value));
        }
    }
    set("environment", json!({"PATH": crate::sandbox::DEFAULT_PATH, "LANG": "C.UTF-8"}));
    json!({"script": format!("#!/bin/sh\n{}\n", job.script), "job": properties})
}

/// One job of `GET /slurm/v0.0.38/jobs` (the fields read).
#[derive(Debug, Deserialize)]
struct RestJob {
    job_id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    job_state: Option<String>,
    #[serde(default)]
    state_reason: Option<String>,
    /// The script's wait status (`768`: exit code 3).
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    end_time: Option<i64>,
    #[serde(default)]
    tres_alloc_str: Option<String>,
    #[serde(default)]
    gres_detail: Vec<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    cpus: Option<u64>,
    #[serde(default)]
    array_job_id: Option<u64>,
}

/// The `jobs` of a listing (`slurm` or `slurmdb`), each read on its own so one odd job is an
/// error of its own.
#[derive(Deserialize)]
struct JobList {
    #[serde(default)]
    jobs: Vec<Value>,
}

/// The jobs in a `jobs` answer (`now_s` for the run time of a running job), and those that
/// cannot be read; an answer that is not slurmrestd's JSON is an error.
pub fn parse_jobs(text: &str, now_s: i64) -> Result<(Vec<SlurmJob>, Vec<super::ParseError>), SlurmError> {
    let list: JobList =
        serde_json::from_str(text).map_err(|e| SlurmError::Unreadable(format!("slurmrestd's jobs: {e}")))?;
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for value in list.jobs {
        match serde_json::from_value::<RestJob>(value)
            .map_err(|e| super::ParseError(format!("a job: {e}")))
            .and_then(job_of)
        {
            Ok(job) => jobs.push(job),
            Err(e) => errors.push(e),
        }
    }
    for job in &mut jobs {
        if job.state == SlurmState::Running {
            job.run_time_s = job.run_time_s.map(|started| u64::try_from(now_s).unwrap_or(0).saturating_sub(started));
        }
    }
    Ok((jobs, errors))
}

/// A job of the listing. A running job's `run_time_s` holds its start (made a duration by
/// [`parse_jobs`]); an array task is its array's job (as `squeue` lists it).
fn job_of(job: RestJob) -> Result<SlurmJob, super::ParseError> {
    let state_text = job.job_state.unwrap_or_default();
    // The wait status: the exit code is its high byte; killed by a signal, 0 (as `0:9`).
    let exit_code = job.exit_code.map(|status| i32::try_from((status >> 8) & 0xff).unwrap_or(0));
    let state = state_of(&state_text, exit_code)
        .ok_or_else(|| super::ParseError(format!("job {}: unknown job_state {state_text:?}", job.job_id)))?;
    let start = job.start_time.filter(|t| *t > 0);
    let run_time_s = match (state, start) {
        (SlurmState::Pending, _) => Some(0),
        (_, None) => Some(0),
        (SlurmState::Running, Some(start)) => u64::try_from(start).ok(),
        (_, Some(start)) => job.end_time.map(|end| u64::try_from(end.saturating_sub(start)).unwrap_or(0)),
    };
    let holds = if !job.gres_detail.is_empty() {
        Holds::Gres(job.gres_detail.join(","))
    } else {
        job.tres_alloc_str.filter(|t| !t.is_empty()).map_or(Holds::Unknown, Holds::Tres)
    };
    Ok(SlurmJob {
        id: job.array_job_id.filter(|a| *a > 0).unwrap_or(job.job_id),
        name: job.name.unwrap_or_default(),
        state,
        state_text,
        reason: job.state_reason.filter(|r| !r.is_empty() && r != "None"),
        exit_code,
        run_time_s,
        start_time: start.map(|s| s.to_string()),
        holds,
        cpus: job.cpus.unwrap_or(0),
        comment: job.comment.filter(|c| !c.is_empty()),
        user: job.user_name,
    })
}

/// The jobs named `name` in a `dbv0.0.38` `jobs` answer.
pub fn parse_accounted(text: &str, name: &str) -> Result<(Vec<SlurmJob>, Vec<super::ParseError>), SlurmError> {
    #[derive(Deserialize)]
    struct DbJob {
        job_id: u64,
        #[serde(default)]
        name: String,
        state: DbState,
        #[serde(default)]
        exit_code: Option<DbExit>,
        #[serde(default)]
        time: Option<DbTime>,
        #[serde(default)]
        tres: Option<DbTres>,
        #[serde(default)]
        required: Option<BTreeMap<String, Value>>,
    }
    #[derive(Deserialize)]
    struct DbState {
        current: String,
        #[serde(default)]
        reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct DbExit {
        #[serde(default)]
        return_code: Option<i32>,
    }
    #[derive(Deserialize)]
    struct DbTime {
        #[serde(default)]
        elapsed: Option<u64>,
        #[serde(default)]
        start: Option<i64>,
    }
    #[derive(Deserialize)]
    struct DbTres {
        #[serde(default)]
        allocated: Vec<DbTresItem>,
    }
    #[derive(Deserialize)]
    struct DbTresItem {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        count: Option<i64>,
    }
    let list: JobList =
        serde_json::from_str(text).map_err(|e| SlurmError::Unreadable(format!("slurmrestd's accounting: {e}")))?;
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for value in list.jobs {
        let job = match serde_json::from_value::<DbJob>(value) {
            Ok(job) => job,
            Err(e) => {
                errors.push(super::ParseError(format!("an accounted job: {e}")));
                continue;
            }
        };
        if job.name != name {
            continue;
        }
        let exit_code = job.exit_code.and_then(|e| e.return_code);
        let Some(state) = state_of(&job.state.current, exit_code) else {
            errors.push(super::ParseError(format!("job {}: unknown state {:?}", job.job_id, job.state.current)));
            continue;
        };
        // `cpu=1,gres/gpu=2`, as sacct's AllocTRES.
        let tres = job
            .tres
            .map(|t| {
                t.allocated
                    .iter()
                    .filter_map(|i| {
                        let count = i.count?;
                        Some(match &i.name {
                            Some(n) if !n.is_empty() => format!("{}/{n}={count}", i.kind),
                            _ => format!("{}={count}", i.kind),
                        })
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let cpus = job.required.as_ref().and_then(|r| r.get("CPUs")).and_then(Value::as_u64).unwrap_or(0);
        let start = job.time.as_ref().and_then(|t| t.start).filter(|s| *s > 0);
        jobs.push(SlurmJob {
            id: job.job_id,
            name: job.name,
            state,
            state_text: job.state.current,
            reason: job.state.reason.filter(|r| !r.is_empty() && r != "None"),
            exit_code,
            run_time_s: job.time.and_then(|t| t.elapsed),
            start_time: start.map(|s| s.to_string()),
            holds: if tres.is_empty() { Holds::Unknown } else { Holds::Tres(tres) },
            cpus,
            comment: None,
            user: None,
        });
    }
    Ok((jobs, errors))
}

/// The partitions in a `partitions` answer. `max_time_limit` and `default_time_limit` are
/// minutes; a negative one or none is no limit.
pub fn parse_partitions(text: &str) -> Result<Vec<PartitionLimits>, SlurmError> {
    #[derive(Deserialize)]
    struct Partitions {
        #[serde(default)]
        partitions: Vec<Part>,
    }
    #[derive(Deserialize)]
    struct Part {
        name: String,
        #[serde(default)]
        flags: Vec<String>,
        #[serde(default)]
        max_time_limit: Option<i64>,
        #[serde(default)]
        default_time_limit: Option<i64>,
    }
    let list: Partitions =
        serde_json::from_str(text).map_err(|e| SlurmError::Unreadable(format!("slurmrestd's partitions: {e}")))?;
    let seconds =
        |minutes: Option<i64>| minutes.filter(|m| *m >= 0).and_then(|m| u64::try_from(m).ok()).map(|m| m * 60);
    Ok(list
        .partitions
        .into_iter()
        .map(|p| PartitionLimits {
            default: p.flags.iter().any(|f| f.eq_ignore_ascii_case("default")),
            max_time_s: seconds(p.max_time_limit),
            default_time_s: seconds(p.default_time_limit),
            name: p.name,
        })
        .collect())
}

/// The nodes in a `nodes` answer (of `partition` when one is named). A node can take work when
/// its state is one `sinfo` calls usable and no flag says drain, fail, maintenance or down.
pub fn parse_nodes(text: &str, partition: Option<&str>) -> Result<Vec<SlurmNode>, super::ParseError> {
    #[derive(Deserialize)]
    struct Nodes {
        #[serde(default)]
        nodes: Vec<Node>,
    }
    #[derive(Deserialize)]
    struct Node {
        name: String,
        #[serde(default)]
        cpus: u64,
        #[serde(default)]
        real_memory: u64,
        #[serde(default)]
        gres: Option<String>,
        #[serde(default)]
        state: String,
        #[serde(default)]
        state_flags: Vec<String>,
        #[serde(default)]
        partitions: Vec<String>,
    }
    let list: Nodes = serde_json::from_str(text).map_err(|e| super::ParseError(format!("slurmrestd's nodes: {e}")))?;
    Ok(list
        .nodes
        .into_iter()
        .filter(|n| partition.is_none_or(|p| n.partitions.iter().any(|q| q == p)))
        .map(|n| {
            let state = n.state.to_ascii_lowercase();
            let flagged = n.state_flags.iter().any(|f| {
                let f = f.to_ascii_uppercase();
                ["DRAIN", "FAIL", "MAINT", "NOT_RESPONDING", "POWER", "REBOOT"].iter().any(|w| f.contains(w))
            });
            SlurmNode {
                usable: !flagged && matches!(state.as_str(), "idle" | "mixed" | "allocated" | "completing" | "planned"),
                name: n.name,
                cpus: n.cpus,
                memory_mb: n.real_memory,
                gres: n.gres.filter(|g| !g.is_empty()).unwrap_or_else(|| "(null)".to_owned()),
                state,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed answers of a real slurmrestd 22.05.8 (`openapi/v0.0.38`, `dbv0.0.38`).
    const JOBS: &str = r#"{"meta": {}, "errors": [], "jobs": [
        {"job_id": 1, "name": "sw-1-100", "job_state": "FAILED", "state_reason": "NonZeroExitCode", "exit_code": 768,
         "start_time": 1796687073, "end_time": 1796687076, "tres_alloc_str": "cpu=1,mem=100M,node=1,billing=1,gres\/gpu=2",
         "gres_detail": [], "comment": "suanwang:c:main", "user_name": "sw-acme", "cpus": 1, "array_job_id": 0, "array_task_id": null},
        {"job_id": 2, "name": "sw-2-100", "job_state": "RUNNING", "state_reason": "None", "exit_code": 0,
         "start_time": 1796687073, "end_time": 1796687373, "tres_alloc_str": "cpu=2,mem=200M,node=1,billing=2,gres\/gpu=2",
         "gres_detail": ["gpu:sim:2(IDX:2-3)"], "comment": "suanwang:c:main", "user_name": "sw-acme", "cpus": 2, "array_job_id": 0},
        {"job_id": 3, "name": "x", "job_state": "PENDING", "state_reason": "Resources", "exit_code": 0, "start_time": 0,
         "user_name": "root", "array_job_id": 0},
        {"job_id": 5, "name": "hist", "job_state": "COMPLETED", "exit_code": 0, "start_time": 10, "end_time": 12,
         "user_name": "root", "array_job_id": 4},
        {"job_id": 6, "name": "odd", "job_state": "NOT_A_STATE"},
        {"name": "no id"}
    ]}"#;

    #[test]
    fn real_job_listings_parse() {
        let (jobs, errors) = parse_jobs(JOBS, 1_796_687_083).unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let failed = &jobs[0];
        assert_eq!((failed.state, failed.exit_code, failed.run_time_s), (SlurmState::Failed, Some(3), Some(3)));
        assert_eq!(failed.cards(&super::super::gpu_only()), 2, "from the allocated TRES");
        assert_eq!(failed.user.as_deref(), Some("sw-acme"));
        assert_eq!(failed.comment.as_deref(), Some("suanwang:c:main"));
        let running = &jobs[1];
        assert_eq!(
            (running.state, running.run_time_s, running.reason.as_deref()),
            (SlurmState::Running, Some(10), None)
        );
        assert_eq!(running.cards(&[super::super::site::parse_gres("gpu:sim").unwrap()]), 2);
        assert_eq!(running.cards(&[super::super::site::parse_gres("gpu:a100").unwrap()]), 0);
        assert_eq!(
            (jobs[2].state, jobs[2].reason.as_deref(), jobs[2].run_time_s),
            (SlurmState::Pending, Some("Resources"), Some(0))
        );
        assert_eq!(jobs[3].id, 4, "an array task is its array's job");
        assert!(parse_jobs("Unable to parse query.", 0).is_err());
        assert!(parse_jobs("{}", 0).unwrap().0.is_empty());
    }

    #[test]
    fn real_accounting_parses() {
        let text = r#"{"errors": [], "jobs": [{"job_id": 1, "name": "sw-1-100", "state": {"current": "FAILED", "reason": "None"},
            "exit_code": {"status": "SUCCESS", "return_code": 0}, "time": {"elapsed": 3, "start": 1796687073},
            "tres": {"allocated": [{"type": "cpu", "name": null, "id": 1, "count": 1}, {"type": "energy", "name": null, "count": null},
                                   {"type": "gres", "name": "gpu", "id": 1001, "count": 2}]},
            "required": {"CPUs": 1, "memory": 100}},
            {"job_id": 9, "name": "sw-1-1000", "state": {"current": "COMPLETED"}},
            {"job_id": 10, "name": "sw-1-100", "state": {"current": "WEIRD"}}]}"#;
        let (jobs, errors) = parse_accounted(text, "sw-1-100").unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!((jobs[0].state, jobs[0].run_time_s, jobs[0].cpus), (SlurmState::Failed, Some(3), 1));
        assert_eq!(jobs[0].holds, Holds::Tres("cpu=1,gres/gpu=2".to_owned()));
        assert_eq!(jobs[0].cards(&super::super::gpu_only()), 2);
    }

    #[test]
    fn real_partitions_and_nodes_parse() {
        let parts = r#"{"partitions": [{"flags": ["default"], "name": "main", "max_time_limit": -1, "default_time_limit": null},
            {"flags": [], "name": "short", "max_time_limit": 1440, "default_time_limit": 30}]}"#;
        let parts = parse_partitions(parts).unwrap();
        assert_eq!((parts[0].default, parts[0].max_time_s, parts[0].default_time_s), (true, None, None));
        assert_eq!(
            (parts[1].default, parts[1].max_time_s, parts[1].default_time_s),
            (false, Some(86_400), Some(1_800))
        );
        let nodes = r#"{"nodes": [{"name": "vm", "cpus": 16, "real_memory": 32000, "gres": "gpu:sim:8,npu:910b:4",
                "state": "idle", "state_flags": [], "partitions": ["main", "npu"]},
            {"name": "b", "cpus": 8, "real_memory": 1000, "gres": "", "state": "idle", "state_flags": ["DRAIN"], "partitions": ["main"]},
            {"name": "c", "cpus": 8, "real_memory": 1000, "state": "down", "partitions": ["other"]}]}"#;
        let main = parse_nodes(nodes, Some("main")).unwrap();
        assert_eq!(main.len(), 2);
        assert!(main[0].usable && !main[1].usable, "a drained node takes no work");
        assert_eq!((main[0].cpus, main[0].memory_mb, main[0].gres.as_str()), (16, 32_000, "gpu:sim:8,npu:910b:4"));
        assert_eq!(main[1].gres, "(null)");
        assert_eq!(parse_nodes(nodes, None).unwrap().len(), 3);
        assert!(parse_nodes("nope", None).is_err());
    }

    #[test]
    fn errors_are_sorted_as_slurmrestd_words_them() {
        // Real answers of slurmrestd 22.05 with slurmctld stopped, for a wrong token, and for
        // a wrong account.
        let down = [(1800, "Unable to contact slurm controller (connect failure)".to_owned())];
        assert!(matches!(error_of(&down), SlurmError::Unavailable(_)));
        let listing_down = [(-1, "Unspecified error: Failed while looking for jobs".to_owned())];
        assert!(matches!(error_of(&listing_down), SlurmError::Unavailable(m) if m.contains("refused the token")));
        let dbd_down = [(7000, "Unable to connect to database: Failed connecting to slurmdbd".to_owned())];
        assert!(matches!(error_of(&dbd_down), SlurmError::Unavailable(_)));
        let bad_token = [(5005, "Zero Bytes were transmitted or received".to_owned())];
        assert!(matches!(error_of(&bad_token), SlurmError::Unavailable(_)));
        let account = [(2045, "Invalid account or account/partition combination specified".to_owned())];
        assert!(
            matches!(error_of(&account), SlurmError::Refused(m) if super::super::agent::site_refusal(&m) == Some("account"))
        );
    }

    #[test]
    fn submissions_carry_what_sbatch_would() {
        let job = BatchJob {
            name: "sw-42-1".into(),
            comment: Some("suanwang:c:gpu".into()),
            tasks: 4,
            cpus_per_task: 2,
            memory_mib: Memory::PerCpu(1024),
            gres: Some("npu:910b:2".into()),
            gpus_per_task: None,
            nodes: Some(4),
            time_limit_min: Some(5),
            dir: "/o/sw-42-1".into(),
            output: "/o/sw-42-1/sw-42-1-%j.out".into(),
            partition: Some("npu".into()),
            account: Some("acme".into()),
            qos: None,
            script: "export A=1; true".into(),
        };
        let body = submission(&job);
        assert_eq!(body["script"], "#!/bin/sh\nexport A=1; true\n");
        let j = &body["job"];
        assert_eq!(
            (j["tasks"].as_u64(), j["nodes"].clone(), j["tasks_per_node"].as_u64()),
            (Some(4), json!([4, 4]), Some(1))
        );
        assert_eq!(
            (j["gres"].as_str(), j["memory_per_cpu"].as_u64(), j["time_limit"].as_u64()),
            (Some("npu:910b:2"), Some(1024), Some(5))
        );
        assert_eq!((j["account"].as_str(), j.get("qos")), (Some("acme"), None));
        assert_eq!(j["environment"]["PATH"], crate::sandbox::DEFAULT_PATH);
        assert_eq!(j["environment"].as_object().unwrap().len(), 2, "nothing of the agent's");
        assert_eq!(token_in("SLURM_JWT=abc.def\n"), Some("abc.def"));
        assert_eq!(token_in("  abc  "), Some("abc"));
        assert_eq!(token_in("SLURM_JWT=\n"), None);
        assert_eq!(token_in("a b"), None);
    }
}
