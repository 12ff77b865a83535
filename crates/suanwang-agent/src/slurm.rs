//! The Slurm backend. This module holds what the agent says to Slurm and reads back, as pure
//! functions: the `sbatch` arguments for a platform job, and parsers for `scontrol show job -d -o`
//! and `sinfo -N` output, testable against real outputs and odd ones. [`cli`] runs the commands
//! (with time limits, sorting failures into "Slurm is away" and "Slurm refuses"); [`agent`] is the
//! agent loop that follows jobs in Slurm and reports them to the platform.
//!
//! Two ways to talk to Slurm, chosen per pool: the command-line tools ([`cli`], the default:
//! they ship with the daemons, need no JWT set-up, and are what a provider's administrator
//! already runs) or slurmrestd ([`rest`], for sites that give the agent no shell on a login
//! node); [`cli::SlurmClient`] is either. Both build their requests from one [`BatchJob`] and
//! read into the same [`SlurmJob`], [`SlurmNode`] and [`PartitionLimits`].
//! Why `scontrol show job` and not `sacct`: `sacct` needs slurmdbd and a database; the
//! controller keeps a finished job's record (`RunTime`, `JOB_GRES`, exit code) for `MinJobAge`
//! seconds, which the agent reads while it follows the job (docs/slurm.md).

pub mod agent;
pub mod cli;
pub mod rest;
pub mod site;

use std::collections::BTreeMap;

use suanwang_api::jobs::JobRequest;

/// The job name that carries the platform's id and acceptance time: `sw-<id>-<created_ms>`. The
/// time tells this job from an earlier platform's job with the same id (a store started afresh
/// while Slurm remembers old jobs).
pub fn job_name(platform_id: i64, created_ms: i64) -> String {
    format!("sw-{platform_id}-{created_ms}")
}

/// The platform id in a job name made by [`job_name`].
pub fn platform_id(job_name: &str) -> Option<i64> {
    let (id, created) = job_name.strip_prefix("sw-")?.split_once('-')?;
    created.parse::<i64>().ok()?;
    id.parse().ok().filter(|id| *id > 0)
}

/// The usage event id for a finished Slurm job: one per cluster, Slurm job id and platform job,
/// so a report retried after Slurm or the platform was away is recorded once (and a cluster whose
/// job ids started again from 1 does not collide with its past).
pub fn usage_event_id(cluster: &str, slurm_job_id: u64, platform_id: i64) -> String {
    format!("slurm:{cluster}:{slurm_job_id}:{platform_id}")
}

/// Why a platform job cannot be given to Slurm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitError(pub String);

/// Where and as what a job is submitted: the pool's partition, the tenant's account and QOS
/// ([`site::JobSite`]), the GRES of the model it was placed on, and its own directory.
#[derive(Clone, Copy, Debug)]
pub struct Submission<'a> {
    /// `--partition` (`None`: the cluster's default).
    pub partition: Option<&'a str>,
    /// Account, QOS (the Unix user is not an argument: `sbatch` runs as it).
    pub site: &'a site::JobSite,
    /// The cards' GRES (`gpu`, `gpu:a100`, `npu:910b`).
    pub gres: &'a site::Gres,
    /// The job's own directory: its working directory and where its output file goes.
    pub dir: &'a str,
}

/// A batch job as the agent asks Slurm for it, whichever way it is sent: `sbatch` arguments
/// ([`BatchJob::sbatch_args`]) or a slurmrestd submission ([`rest::submission`]). Built in one
/// place, [`batch_job`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchJob {
    /// `sw-<id>-<created ms>` ([`job_name`]).
    pub name: String,
    /// Its owner tag ([`owner_tag`]), set by the agent.
    pub comment: Option<String>,
    /// Tasks: 1, or a gang's size (`--ntasks`).
    pub tasks: u32,
    /// Whole cores per task.
    pub cpus_per_task: u64,
    /// Memory, MiB: per node for one task (`--mem`), per CPU for a gang (`--mem-per-cpu`).
    pub memory_mib: Memory,
    /// `--gres` (`gpu:a100:2`): the cards of a single task, or per node for a gang of a GRES
    /// Slurm cannot give per task.
    pub gres: Option<String>,
    /// `--gpus-per-task` (`a100:2`, `2`) for a gang of GPUs.
    pub gpus_per_task: Option<String>,
    /// `--nodes` with one task per node, for a gang of non-GPU cards.
    pub nodes: Option<u32>,
    /// `--time`, minutes (`None`: the partition's default).
    pub time_limit_min: Option<u64>,
    /// The job's own directory (`--chdir`).
    pub dir: String,
    /// The output file in it (`--output`, `%j` for Slurm's id), appended to.
    pub output: String,
    /// `--partition` (`None`: the cluster's default).
    pub partition: Option<String>,
    /// `--account` (`None`: the user's default).
    pub account: Option<String>,
    /// `--qos` (`None`: the association's default).
    pub qos: Option<String>,
    /// The shell command the job runs (`--wrap`): exports, then the command, each quoted.
    pub script: String,
}

/// Memory asked, MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// `--mem` (one task).
    PerNode(u64),
    /// `--mem-per-cpu` (a gang).
    PerCpu(u64),
}

/// The batch job for a platform job (`request` is the job body as accepted by the API):
/// CPUs rounded up to whole cores, memory in MiB (at least 1), cards as the model's GRES (a gang
/// of several tasks: `--ntasks`, and CPUs, memory and GPUs per task, or one task per node with
/// its cards for a GRES other than `gpu`, which Slurm cannot give per task; the command runs
/// once), a time limit from `time_limit_s`, else `estimate_s` (rounded up to minutes), else none
/// (the partition's default applies), the partition, account and QOS, the job's directory as
/// its working directory with the output file in it, and the command wrapped for a shell with
/// each argument quoted. The job gets none of the agent's environment (the agent holds its pool's
/// token): `sbatch` runs with a cleared environment ([`cli::SlurmCli`]) and exports that
/// (`--export=ALL`); slurmrestd gets only `PATH` and `LANG`; the wrapper sets `PATH`, `LANG`,
/// `SUANWANG_JOB_ID` and the job's own `env`, quoted.
pub fn batch_job(
    platform_id: i64,
    created_ms: i64,
    request: &JobRequest,
    to: Submission<'_>,
) -> Result<BatchJob, SubmitError> {
    let command = &request.command;
    if command.is_empty() {
        return Err(SubmitError("the job has no command to run".to_owned()));
    }
    let cores = u64::from(request.cpu_milli).div_ceil(1000).max(1);
    let memory_mib = u64::from(request.memory_mib).max(1);
    let cards = request.accelerators;
    let tasks = request.tasks.max(1);
    let name = job_name(platform_id, created_ms);
    let mut job = BatchJob {
        output: format!("{}/{name}-%j.out", to.dir),
        name,
        comment: None,
        tasks: u32::from(tasks),
        cpus_per_task: cores,
        memory_mib: Memory::PerNode(memory_mib),
        gres: None,
        gpus_per_task: None,
        nodes: None,
        time_limit_min: request.time_limit_s.or(request.estimate_s).map(|s| s.div_ceil(60).max(1)),
        dir: to.dir.to_owned(),
        partition: to.partition.map(str::to_owned),
        account: to.site.account.clone(),
        qos: to.site.qos.clone(),
        script: String::new(),
    };
    if tasks == 1 {
        if cards > 0 {
            job.gres = Some(format!("{}:{cards}", to.gres.spec()));
        }
    } else {
        // A gang: its tasks start together, each with the request's CPUs, memory and cards,
        // wherever Slurm fits them. The command runs once, in the batch step, with the
        // allocation around it: `mpirun` (or `srun`) in it starts the ranks.
        job.memory_mib = Memory::PerCpu(memory_mib.div_ceil(cores).max(1));
        if cards > 0 && to.gres.name == site::DEFAULT_GRES {
            job.gpus_per_task = Some(match &to.gres.kind {
                Some(kind) => format!("{kind}:{cards}"),
                None => cards.to_string(),
            });
        } else if cards > 0 {
            // Slurm gives per task only GPUs: other cards come per node, so one task per node.
            job.nodes = Some(u32::from(tasks));
            job.gres = Some(format!("{}:{cards}", to.gres.spec()));
        }
    }
    let mut wrap = format!(
        "export PATH={} LANG=C.UTF-8 SUANWANG_JOB_ID={platform_id}{}; ",
        shell_quote(crate::sandbox::DEFAULT_PATH),
        if tasks > 1 { format!(" SUANWANG_TASKS={tasks}") } else { String::new() }
    );
    for (name, value) in &request.env {
        if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(SubmitError(format!("{name:?} is not an environment variable name")));
        }
        wrap.push_str(&format!("export {name}={}; ", shell_quote(value)));
    }
    wrap.push_str(&command.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
    job.script = wrap;
    Ok(job)
}

impl BatchJob {
    /// The `sbatch` arguments for it.
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut args = vec!["--parsable".to_owned()];
        if let Some(comment) = &self.comment {
            args.push(format!("--comment={comment}"));
        }
        args.push(format!("--job-name={}", self.name));
        if self.tasks > 1 {
            args.push(format!("--ntasks={}", self.tasks));
        }
        args.push(format!("--cpus-per-task={}", self.cpus_per_task));
        args.push(match self.memory_mib {
            Memory::PerNode(mib) => format!("--mem={mib}M"),
            Memory::PerCpu(mib) => format!("--mem-per-cpu={mib}M"),
        });
        if let Some(gpus) = &self.gpus_per_task {
            args.push(format!("--gpus-per-task={gpus}"));
        }
        if let Some(nodes) = self.nodes {
            args.push(format!("--nodes={nodes}"));
            args.push("--ntasks-per-node=1".to_owned());
        }
        if let Some(gres) = &self.gres {
            args.push(format!("--gres={gres}"));
        }
        if let Some(minutes) = self.time_limit_min {
            args.push(format!("--time={minutes}"));
        }
        args.push(format!("--chdir={}", self.dir));
        args.push(format!("--output={}", self.output));
        args.push("--open-mode=append".to_owned());
        for (flag, value) in [("partition", &self.partition), ("account", &self.account), ("qos", &self.qos)] {
            if let Some(value) = value {
                args.push(format!("--{flag}={value}"));
            }
        }
        args.push("--export=ALL".to_owned());
        args.push(format!("--wrap={}", self.script));
        args
    }
}

/// `'it'\''s'`: one argument for `sh`, whatever it holds.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// A Slurm job's state, as far as the platform cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlurmState {
    /// Waiting (PENDING, CONFIGURING, REQUEUED…, held).
    Pending,
    /// RUNNING (or COMPLETING, SUSPENDED: it has started and holds its resources).
    Running,
    /// COMPLETED with exit code 0.
    Completed,
    /// FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, DEADLINE, PREEMPTED: with a reason.
    Failed,
    /// CANCELLED.
    Cancelled,
}

/// One job as `scontrol show job -d -o` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmJob {
    /// Slurm's id.
    pub id: u64,
    /// Its name (`sw-<platform id>-<created ms>` for ours).
    pub name: String,
    /// Where it is.
    pub state: SlurmState,
    /// Slurm's own word for the state (`NODE_FAIL`), for messages.
    pub state_text: String,
    /// Why it waits or failed (`Reason=`), when Slurm gives one.
    pub reason: Option<String>,
    /// The exit code of its script (the part before `:`), when known.
    pub exit_code: Option<i32>,
    /// Seconds it has run (`RunTime`); `None` when Slurm gave no readable time (`INVALID`).
    pub run_time_s: Option<u64>,
    /// When it started (`StartTime`, the controller's local time), when it has.
    pub start_time: Option<String>,
    /// What it holds, in Slurm's words: count its cards with [`SlurmJob::cards`].
    pub holds: Holds,
    /// CPUs it holds.
    pub cpus: u64,
    /// Its `--comment`: [`owner_tag`] for the jobs an agent submitted (absent from accounting).
    pub comment: Option<String>,
    /// The Unix user it runs as (`squeue` listings only).
    pub user: Option<String>,
}

/// What a job holds, as Slurm wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holds {
    /// Not said (a `squeue` listing).
    Unknown,
    /// `scontrol`'s `JOB_GRES` (`gpu:a100:2(IDX:0-1),npu:1`).
    Gres(String),
    /// `sacct`'s `AllocTRES` (`cpu=1,gres/gpu=2,gres/gpu:a100=2`).
    Tres(String),
}

impl SlurmJob {
    /// The accelerator cards it holds: of the pool's card GRES ([`site::SlurmSite::cards`]),
    /// summed; 0 when the listing did not say.
    pub fn cards(&self, cards: &[site::Gres]) -> u64 {
        match &self.holds {
            Holds::Unknown => 0,
            Holds::Gres(gres) => cards_in(gres, cards),
            Holds::Tres(tres) => cards_in_tres(tres, cards),
        }
    }
}

/// The `--comment` an agent gives its jobs: which agent's they are (`suanwang:<cluster>:<partition>`,
/// `default` without a partition, characters outside `[A-Za-z0-9_.-]` as `_`). Reconciliation
/// cancels only jobs with its own tag, never another pool's that shares the controller.
pub fn owner_tag(cluster: &str, partition: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect()
    };
    format!("suanwang:{}:{}", clean(cluster), clean(partition.unwrap_or("default")))
}

/// Output Slurm gave that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

/// `key=value` pairs of one `-o` line (values hold no spaces in these fields).
fn pairs(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace().filter_map(|pair| pair.split_once('=')).collect()
}

/// Parses one line of `scontrol show job -d -o`.
pub fn parse_job(line: &str) -> Result<SlurmJob, ParseError> {
    let fields = pairs(line);
    let get = |key: &str| fields.get(key).copied();
    let id = get("JobId")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ParseError(format!("no JobId in {:?}", truncate(line))))?;
    let state_text = get("JobState").ok_or_else(|| ParseError(format!("job {id}: no JobState")))?.to_owned();
    let exit_code = get("ExitCode").and_then(exit_code_in);
    let state = state_of(&state_text, exit_code)
        .ok_or_else(|| ParseError(format!("job {id}: unknown JobState {state_text:?}")))?;
    Ok(SlurmJob {
        id,
        name: get("JobName").unwrap_or("").to_owned(),
        state,
        state_text,
        reason: get("Reason").filter(|r| *r != "None" && *r != "(null)").map(str::to_owned),
        exit_code,
        run_time_s: get("RunTime").and_then(|v| parse_duration(v).ok()),
        start_time: get("StartTime").filter(|t| t.starts_with(|c: char| c.is_ascii_digit())).map(str::to_owned),
        holds: get("JOB_GRES").map_or(Holds::Unknown, |g| Holds::Gres(g.to_owned())),
        cpus: get("NumCPUs").and_then(|v| v.parse().ok()).unwrap_or(0),
        comment: get("Comment").filter(|c| *c != "(null)").map(str::to_owned),
        user: None,
    })
}

/// The script's exit code in Slurm's `code:signal`.
fn exit_code_in(text: &str) -> Option<i32> {
    text.split(':').next()?.parse().ok()
}

/// Sorts Slurm's word for a job's state (`scontrol`'s `JobState`, `sacct`'s `State`).
fn state_of(text: &str, exit_code: Option<i32>) -> Option<SlurmState> {
    Some(match text {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" | "SPECIAL_EXIT"
        | "STAGE_OUT" | "RESIZING" | "SIGNALING" => SlurmState::Pending,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" => SlurmState::Running,
        "COMPLETED" if exit_code.unwrap_or(0) == 0 => SlurmState::Completed,
        "CANCELLED" => SlurmState::Cancelled,
        "COMPLETED" | "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "BOOT_FAIL" | "DEADLINE" | "PREEMPTED"
        | "REVOKED" => SlurmState::Failed,
        _ => return None,
    })
}

/// The states a listing asks for (`squeue --states`): those in which a job may still run.
pub const LIVE_STATES: &str = "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,REQUEUED,REQUEUE_HOLD,REQUEUE_FED,\
RESV_DEL_HOLD,SPECIAL_EXIT,STAGE_OUT,RESIZING,SIGNALING,STOPPED";

/// The fields of a listing (`squeue --format`), in the order [`parse_listed`] reads them: the
/// free-text name and comment last.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r|%M|%S|%C|%u|%j|%k";

/// Parses one line of `squeue -h --format=`[`SQUEUE_FORMAT`]. A name or comment holding `|`
/// cannot be told apart: the name is then read up to the last `|` (no platform job's name or
/// tag holds one, so such a job is never taken for the platform's).
pub fn parse_listed(line: &str) -> Result<SlurmJob, ParseError> {
    let fields: Vec<&str> = line.splitn(8, '|').collect();
    let [id, state, reason, used, start, cpus, user, rest] = fields.as_slice() else {
        return Err(ParseError(format!("not a listing line: {:?}", truncate(line))));
    };
    // An array's tasks are `1019_988` and `1019_[3-9]`: the array's job id (cancelling it
    // cancels them all).
    let id = id.trim().split('_').next().unwrap_or("");
    let id: u64 = id.parse().map_err(|_| ParseError(format!("not a job id in a listing: {:?}", truncate(id))))?;
    let (name, comment) = rest.rsplit_once('|').unwrap_or((rest, ""));
    let state_text = (*state).to_owned();
    let state =
        state_of(&state_text, None).ok_or_else(|| ParseError(format!("job {id}: unknown state {state_text:?}")))?;
    Ok(SlurmJob {
        id,
        name: name.to_owned(),
        state,
        state_text,
        reason: Some(*reason).filter(|r| !r.is_empty() && *r != "None" && *r != "(null)").map(str::to_owned),
        exit_code: None,
        run_time_s: parse_duration(used).ok(),
        start_time: Some(*start).filter(|t| t.starts_with(|c: char| c.is_ascii_digit())).map(str::to_owned),
        holds: Holds::Unknown,
        cpus: cpus.parse().unwrap_or(0),
        comment: Some(comment).filter(|c| !c.is_empty() && *c != "(null)").map(str::to_owned),
        user: Some((*user).to_owned()).filter(|u| !u.is_empty()),
    })
}

/// The fields asked of `sacct` (`-o`), in the order [`parse_accounting`] reads them.
pub const SACCT_FIELDS: &str = "JobIDRaw,JobName,State,ExitCode,ElapsedRaw,AllocTRES,Start,AllocCPUS";

/// Parses one line of `sacct -X -n -P -o` [`SACCT_FIELDS`] (slurmdbd's record of a job, kept
/// after the controller forgets it): the same [`SlurmJob`] as `scontrol` gives, GPUs from
/// `AllocTRES` (`gres/gpu=N`, which needs `AccountingStorageTRES=gres/gpu`).
pub fn parse_accounting(line: &str) -> Result<SlurmJob, ParseError> {
    let fields: Vec<&str> = line.split('|').collect();
    let [id, name, state, exit, elapsed, tres, start, cpus] = fields.as_slice() else {
        return Err(ParseError(format!("not an accounting line: {:?}", truncate(line))));
    };
    let id: u64 = id.parse().map_err(|_| ParseError(format!("not a job id in accounting: {:?}", truncate(id))))?;
    // `CANCELLED by 0`: the word before the user.
    let state_text = state.split_whitespace().next().unwrap_or("").to_owned();
    let exit_code = exit_code_in(exit);
    let state = state_of(&state_text, exit_code)
        .ok_or_else(|| ParseError(format!("job {id}: unknown State {:?} in accounting", truncate(&state_text))))?;
    Ok(SlurmJob {
        id,
        name: (*name).to_owned(),
        state,
        state_text,
        reason: None,
        exit_code,
        run_time_s: elapsed.parse().ok(),
        start_time: Some(*start).filter(|t| t.starts_with(|c: char| c.is_ascii_digit())).map(str::to_owned),
        holds: Holds::Tres((*tres).to_owned()),
        cpus: cpus.parse().unwrap_or(0),
        comment: None,
        user: None,
    })
}

/// Cards in a TRES list (`sacct`'s `AllocTRES`): per GRES name of `cards`, `gres/gpu=2` (the
/// total), else the sum of the typed entries of `cards`' types (`gres/gpu:a100=2`).
pub fn cards_in_tres(tres: &str, cards: &[site::Gres]) -> u64 {
    let mut names: Vec<&str> = cards.iter().map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let entries: Vec<(&str, u64)> = tres
        .split(',')
        .filter_map(|t| t.split_once('='))
        .filter_map(|(key, value)| Some((key.strip_prefix("gres/")?, value.parse().ok()?)))
        .collect();
    let mut sum = 0u64;
    for name in names {
        let mut total = None;
        let mut typed = 0u64;
        for &(key, n) in &entries {
            match key.split_once(':') {
                None if key == name => total = Some(n),
                Some((k, kind)) if k == name && cards.iter().any(|g| g.matches(name, Some(kind))) => {
                    typed = typed.saturating_add(n)
                }
                _ => {}
            }
        }
        sum = sum.saturating_add(total.unwrap_or(typed));
    }
    sum
}

/// Seconds in a Slurm duration: `SS`, `MM:SS`, `HH:MM:SS` or `D-HH:MM:SS`. `INVALID`, `UNLIMITED`
/// and `Partition_Limit` (what Slurm prints for no value) are errors: a run time must be a time.
pub fn parse_duration(text: &str) -> Result<u64, ParseError> {
    let bad = || ParseError(format!("not a duration: {:?}", truncate(text)));
    let (days, clock) = match text.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().map_err(|_| bad())?, rest),
        None => (0, text),
    };
    let parts: Vec<u64> = clock.split(':').map(|p| p.parse::<u64>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    let (h, m, s) = match parts.as_slice() {
        [s] => (0, 0, *s),
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    if m >= 60 || s >= 60 || (days > 0 && h >= 24) || days > 100_000 || h > 2_400_000 {
        return Err(bad());
    }
    Ok(((days * 24 + h) * 60 + m) * 60 + s)
}

/// A partition's time limits, from `scontrol show partition -o`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLimits {
    /// Its name.
    pub name: String,
    /// Whether jobs that name no partition go here.
    pub default: bool,
    /// The longest time limit a job may ask (`MaxTime`), seconds; `None`: unlimited.
    pub max_time_s: Option<u64>,
    /// The time limit of a job that asks none (`DefaultTime`), seconds; `None`: `MaxTime`.
    pub default_time_s: Option<u64>,
}

/// The partitions in `scontrol show partition -o` output. A limit Slurm writes as `UNLIMITED`,
/// `NONE` or something unreadable is no limit.
pub fn parse_partitions(output: &str) -> Vec<PartitionLimits> {
    output
        .lines()
        .filter_map(|line| {
            let fields = pairs(line);
            let time = |key: &str| fields.get(key).and_then(|v| parse_duration(v).ok());
            Some(PartitionLimits {
                name: (*fields.get("PartitionName")?).to_owned(),
                default: fields.get("Default") == Some(&"YES"),
                max_time_s: time("MaxTime"),
                default_time_s: time("DefaultTime"),
            })
        })
        .collect()
}

/// Whether a job asking `limit_s` (none: the partition's default) may run in `partition`; the
/// refusal in words when not.
pub fn check_time_limit(limit_s: Option<u64>, partition: &PartitionLimits) -> Result<(), SubmitError> {
    match (limit_s, partition.max_time_s) {
        (Some(asked), Some(most)) if asked.div_ceil(60) * 60 > most => Err(SubmitError(format!(
            "the job asks a time limit of {} and partition {} allows at most {}",
            hours(asked.div_ceil(60) * 60),
            partition.name,
            hours(most)
        ))),
        _ => Ok(()),
    }
}

/// `36 h`, `90 min`.
fn hours(seconds: u64) -> String {
    if seconds.is_multiple_of(3600) { format!("{} h", seconds / 3600) } else { format!("{} min", seconds.div_ceil(60)) }
}

/// Cards in a GRES list (`JOB_GRES`, `sinfo`'s `%G`: `gpu:sim:2`, `gpu:2`,
/// `gpu:a100:2(IDX:0-1),gpu:t4:1`, `npu:910b:4(S:0)`, `(null)`) that are of `cards` (by name, and
/// by type where the card GRES is typed). A GRES of another name (`mps`, `shard`) is not a card.
pub fn cards_in(gres: &str, cards: &[site::Gres]) -> u64 {
    gres.split(',')
        .filter_map(|entry| {
            let entry = entry.split('(').next()?;
            let parts: Vec<&str> = entry.split(':').collect();
            let (name, kind, count) = match parts.as_slice() {
                [name, count] => (*name, None, *count),
                [name, kind, count] => (*name, Some(*kind), *count),
                _ => return None,
            };
            let count: u64 = count.parse().ok()?;
            cards.iter().any(|g| g.matches(name, kind)).then_some(count)
        })
        .fold(0u64, u64::saturating_add)
}

/// Whether a node's GRES list has `gres` (of its type, when typed).
pub fn has_gres(node_gres: &str, gres: &site::Gres) -> bool {
    cards_in(node_gres, std::slice::from_ref(gres)) > 0
}

/// The card GRES of a pool whose site file maps no model: every `gpu`.
pub fn gpu_only() -> Vec<site::Gres> {
    vec![site::Gres { name: site::DEFAULT_GRES.to_owned(), kind: None }]
}

/// One node as `sinfo -N -h -o '%N %c %m %G %T'` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmNode {
    /// Name.
    pub name: String,
    /// CPUs.
    pub cpus: u64,
    /// Memory, MB.
    pub memory_mb: u64,
    /// Its GRES in Slurm's words (`gpu:a100:8`): count its cards with [`cards_in`].
    pub gres: String,
    /// Whether it can take work (idle, mixed, allocated, completing; not down, drained, failing).
    pub usable: bool,
    /// Slurm's state word.
    pub state: String,
}

/// Parses `sinfo -N -h -o '%N %c %m %G %T'` (a node in several partitions appears once).
pub fn parse_nodes(output: &str) -> Result<Vec<SlurmNode>, ParseError> {
    let mut nodes: Vec<SlurmNode> = Vec::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        let [name, cpus, memory, gres, state] = columns.as_slice() else {
            return Err(ParseError(format!("not a node line: {:?}", truncate(line))));
        };
        if nodes.iter().any(|n| n.name == *name) {
            continue;
        }
        let number = |v: &str| v.parse::<u64>().map_err(|_| ParseError(format!("node {name}: not a number: {v:?}")));
        let state = state.trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-']).to_ascii_lowercase();
        nodes.push(SlurmNode {
            name: (*name).to_owned(),
            cpus: number(cpus)?,
            memory_mb: number(memory)?,
            gres: (*gres).to_owned(),
            usable: matches!(state.as_str(), "idle" | "mixed" | "allocated" | "completing" | "planned"),
            state,
        });
    }
    Ok(nodes)
}

fn truncate(text: &str) -> &str {
    let end = text.char_indices().nth(120).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Real output of Slurm 22.05.8 on this kind of machine (`scripts/slurm.sh`), 2026-11-22.
    const COMPLETED: &str = "JobId=1 JobName=sw-test UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 DerivedExitCode=0:0 RunTime=00:00:02 TimeLimit=00:05:00 TimeMin=N/A SubmitTime=2026-11-22T17:18:03 EligibleTime=2026-11-22T17:18:03 StartTime=2026-11-22T17:18:06 EndTime=2026-11-22T17:18:08 Partition=main NodeList=vm NumNodes=1 NumCPUs=2 NumTasks=1 CPUs/Task=2 TRES=cpu=2,mem=100M,node=1,billing=2 JOB_GRES=gpu:sim:2 Nodes=vm CPU_IDs=0-1 Mem=100 GRES= TresPerNode=gres:gpu:2";
    const ACCOUNTED: &str =
        "4|sw-9-1795380000000|COMPLETED|0:0|2|billing=1,cpu=1,gres/gpu=3,mem=128M,node=1|2026-11-22T19:50:01|1";
    const FAILED: &str = "JobId=2 JobName=sw-fail UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:00 NumCPUs=1 JOB_GRES=(null)";

    #[test]
    fn real_scontrol_lines_parse() {
        let job = parse_job(COMPLETED).unwrap();
        assert_eq!((job.id, job.name.as_str(), job.state), (1, "sw-test", SlurmState::Completed));
        assert_eq!(
            (job.run_time_s, job.cards(&gpu_only()), job.cpus, job.exit_code, job.reason),
            (Some(2), 2, 2, Some(0), None)
        );
        assert_eq!(job.start_time.as_deref(), Some("2026-11-22T17:18:06"));
        let job = parse_job(FAILED).unwrap();
        assert_eq!(
            (job.state, job.exit_code, job.reason.as_deref()),
            (SlurmState::Failed, Some(3), Some("NonZeroExitCode"))
        );
        assert_eq!(job.cards(&gpu_only()), 0);
    }

    #[test]
    fn odd_values_are_errors_not_panics() {
        assert!(parse_job("").is_err());
        assert!(parse_job("JobId=x JobState=RUNNING").is_err());
        assert!(parse_job("JobId=3").is_err());
        assert!(parse_job("JobId=3 JobState=WEIRD").is_err());
        // A run time Slurm cannot give is unknown, not zero and not an error: the agent falls
        // back to the time it saw the job run.
        for odd in ["INVALID", "-1", "00:61:00", "", "4294967294:00:00"] {
            let job = parse_job(&format!("JobId=3 JobState=RUNNING RunTime={odd} StartTime=Unknown")).unwrap();
            assert_eq!((job.run_time_s, job.start_time), (None, None), "{odd}");
        }
        // A COMPLETED job with a non-zero exit code did not succeed.
        assert_eq!(parse_job("JobId=3 JobState=COMPLETED ExitCode=1:0").unwrap().state, SlurmState::Failed);
        assert_eq!(parse_job("JobId=3 JobState=NODE_FAIL Reason=NodeDown").unwrap().state, SlurmState::Failed);
        assert_eq!(parse_job("JobId=3 JobState=CANCELLED").unwrap().state, SlurmState::Cancelled);
        assert_eq!(
            parse_job("JobId=3 JobState=PENDING Reason=Resources").unwrap().reason.as_deref(),
            Some("Resources")
        );
    }

    #[test]
    fn accounting_lines_parse() {
        // `sacct -X -n -P -o` SACCT_FIELDS of Slurm 22.05.8 with slurmdbd (scripts/slurm.sh).
        let job = parse_accounting(ACCOUNTED).unwrap();
        assert_eq!((job.id, job.name.as_str(), job.state), (4, "sw-9-1795380000000", SlurmState::Completed));
        assert_eq!((job.run_time_s, job.cards(&gpu_only()), job.cpus, job.exit_code), (Some(2), 3, 1, Some(0)));
        assert!(job.start_time.is_some());
        let cancelled =
            parse_accounting("5|sw-1-2|CANCELLED by 0|0:15|7|billing=1,cpu=1,mem=1M,node=1|2026-11-22T19:00:00|1")
                .unwrap();
        assert_eq!(
            (cancelled.state, cancelled.state_text.as_str(), cancelled.cards(&gpu_only())),
            (SlurmState::Cancelled, "CANCELLED", 0)
        );
        let failed = parse_accounting("6|sw-1-2|FAILED|3:0|0||Unknown|0").unwrap();
        assert_eq!((failed.state, failed.exit_code, failed.start_time), (SlurmState::Failed, Some(3), None));
    }

    #[test]
    fn odd_accounting_values_are_errors_or_unknown_not_panics() {
        for bad in [
            "",
            "1|sw-1-2|COMPLETED",
            "x|sw-1-2|COMPLETED|0:0|1||Unknown|1",
            "1|sw-1-2|WEIRD|0:0|1||Unknown|1",
            "1|sw-1-2||0:0|1||Unknown|1",
            "1|a|b|c|d|e|f|g|h",
        ] {
            assert!(parse_accounting(bad).is_err(), "{bad:?}");
        }
        // An elapsed time sacct cannot give is unknown (the agent's own time is used).
        for odd in ["", "-1", "INVALID", "18446744073709551616"] {
            let job = parse_accounting(&format!("1|sw-1-2|RUNNING|0:0|{odd}|gres/gpu=x|None|?")).unwrap();
            assert_eq!((job.run_time_s, job.cards(&gpu_only()), job.cpus), (None, 0, 0), "{odd:?}");
        }
        let gpu = gpu_only();
        assert_eq!(cards_in_tres("billing=4,cpu=1,gres/gpu:sim=2,gres/gpu=2,mem=1M", &gpu), 2);
        assert_eq!(cards_in_tres("gres/gpu:a=1,gres/gpu:b=2", &gpu), 3);
        assert_eq!(cards_in_tres("cpu=1,gres/gpumem=4000", &gpu), 0);
        let npu = vec![site::parse_gres("npu:910b").unwrap()];
        assert_eq!(cards_in_tres("cpu=1,gres/npu=4,gres/npu:910b=4", &npu), 4);
        assert_eq!(cards_in_tres("cpu=1,gres/gpu=4", &npu), 0);
        let two = vec![site::parse_gres("gpu:a100").unwrap(), site::parse_gres("gpu:h100").unwrap()];
        assert_eq!(cards_in_tres("gres/gpu=2,gres/gpu:a100=2", &two), 2, "one total per name");
        assert_eq!(cards_in_tres("gres/gpu:a100=2,gres/gpu:t4=1", &two), 2);
    }

    #[test]
    fn real_squeue_lines_parse() {
        // `squeue -h --states=all --format=SQUEUE_FORMAT` of Slurm 22.05.8, 2026-12-07.
        let held = parse_listed("3|PENDING|JobHeldUser|0:00|N/A|1|root|sw-1-2|suanwang:c:main").unwrap();
        assert_eq!((held.id, held.state, held.reason.as_deref()), (3, SlurmState::Pending, Some("JobHeldUser")));
        assert_eq!(
            (held.name.as_str(), held.comment.as_deref(), held.user.as_deref()),
            ("sw-1-2", Some("suanwang:c:main"), Some("root"))
        );
        assert_eq!((held.run_time_s, held.start_time.as_deref(), held.cards(&gpu_only())), (Some(0), None, 0));
        let done = parse_listed("2|COMPLETED|None|1:02:03|2026-12-07T20:02:12|4|sw-acme|wrap|(null)").unwrap();
        assert_eq!(
            (done.state, done.reason, done.run_time_s, done.cpus, done.comment),
            (SlurmState::Completed, None, Some(3723), 4, None)
        );
        // A name with `|` in it is read up to the last one: never a platform job's name.
        let odd = parse_listed("4|RUNNING|None|0:01|2026-12-07T20:02:12|1|root|sw-1-2|x|suanwang:c:main").unwrap();
        assert_eq!((odd.name.as_str(), platform_id(&odd.name)), ("sw-1-2|x", None));
        for bad in ["", "x|RUNNING|None|0:00|N/A|1|root|a|b", "5|WEIRD|None|0:00|N/A|1|root|a|b", "5|RUNNING"] {
            assert!(parse_listed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("59").unwrap(), 59);
        assert_eq!(parse_duration("01:02").unwrap(), 62);
        assert_eq!(parse_duration("01:02:03").unwrap(), 3723);
        assert_eq!(parse_duration("2-00:00:01").unwrap(), 172_801);
        for bad in ["", "UNLIMITED", "Partition_Limit", "1:2:3:4", "x-01:00:00", "1-24:00:00", "00:00:60"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gpus_from_gres() {
        let gpu = gpu_only();
        assert_eq!(cards_in("gpu:sim:2", &gpu), 2);
        assert_eq!(cards_in("gpu:4", &gpu), 4);
        assert_eq!(cards_in("gpu:a100:2(IDX:0-1),gpu:t4:1(IDX:2)", &gpu), 3);
        assert_eq!(cards_in("(null)", &gpu), 0);
        assert_eq!(cards_in("mps:100", &gpu), 0);
        assert_eq!(cards_in("gpumem:100", &gpu), 0, "a name that starts like gpu is another GRES");
        let both = vec![site::parse_gres("gpu").unwrap(), site::parse_gres("npu").unwrap()];
        assert_eq!(cards_in("npu:910b:4(S:0),gpu:1,mps:50", &both), 5);
        assert_eq!(cards_in("npu:910b:4(S:0)", &gpu), 0);
        // A typed card GRES counts its type only: a pool of NPUs on nodes that also hold GPUs.
        let npu = vec![site::parse_gres("npu:910b").unwrap()];
        assert_eq!(cards_in("gpu:sim:8,npu:910b:4", &npu), 4);
        assert_eq!(cards_in("gpu:sim:8,npu:910c:4", &npu), 0);
        assert_eq!(cards_in("gpu:sim:x,gpu", &gpu), 0, "odd entries count nothing");
    }

    #[test]
    fn real_sinfo_output_parses() {
        let nodes = parse_nodes("vm 16 32000 gpu:sim:8 idle\n").unwrap();
        assert_eq!(
            nodes[0],
            SlurmNode {
                name: "vm".into(),
                cpus: 16,
                memory_mb: 32000,
                gres: "gpu:sim:8".into(),
                usable: true,
                state: "idle".into()
            }
        );
        let nodes = parse_nodes("a 8 1000 (null) drained*\nb 8 1000 gpu:2 down~\na 8 1000 (null) drained*\n").unwrap();
        assert_eq!(nodes.len(), 2, "a node in two partitions is listed once");
        assert!(!nodes[0].usable && !nodes[1].usable);
        assert_eq!(nodes[0].state, "drained");
        assert!(parse_nodes("vm sixteen 1 (null) idle").is_err());
        assert!(parse_nodes("vm 1").is_err());
    }

    /// `sbatch` arguments for a platform job: [`batch_job`], as [`BatchJob::sbatch_args`].
    fn sbatch_args(
        platform_id: i64,
        created_ms: i64,
        request: &JobRequest,
        to: Submission<'_>,
    ) -> Result<Vec<String>, SubmitError> {
        Ok(batch_job(platform_id, created_ms, request, to)?.sbatch_args())
    }

    /// A submission to partition `gpu` in directory `/o`, with the site's defaults.
    fn to<'a>(site: &'a site::JobSite, gres: &'a site::Gres) -> Submission<'a> {
        Submission { partition: None, site, gres, dir: "/o" }
    }

    #[test]
    fn sbatch_arguments_carry_the_request() {
        let body = json!({"name": "t", "command": ["python", "train.py", "--lr", "it's 0.1"], "cpu_milli": 1500,
            "memory_mib": 2048, "accelerators": 2, "estimate_s": 90, "env": {"EPOCHS": "3 more"}});
        let request: JobRequest = serde_json::from_value(body).unwrap();
        let site =
            site::JobSite { account: Some("acme".into()), qos: Some("high".into()), user: Some("sw-acme".into()) };
        let gres = site::parse_gres("gpu:a100").unwrap();
        let submission =
            Submission { partition: Some("gpu"), site: &site, gres: &gres, dir: "/var/sw/sw-42-1795338800123" };
        let args = sbatch_args(42, 1_795_338_800_123, &request, submission).unwrap();
        assert_eq!(
            args,
            [
                "--parsable",
                "--job-name=sw-42-1795338800123",
                "--cpus-per-task=2",
                "--mem=2048M",
                "--gres=gpu:a100:2",
                "--time=2",
                "--chdir=/var/sw/sw-42-1795338800123",
                "--output=/var/sw/sw-42-1795338800123/sw-42-1795338800123-%j.out",
                "--open-mode=append",
                "--partition=gpu",
                "--account=acme",
                "--qos=high",
                "--export=ALL",
                r#"--wrap=export PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 SUANWANG_JOB_ID=42; export EPOCHS='3 more'; python train.py --lr 'it'\''s 0.1'"#,
            ]
        );
        assert_eq!(platform_id("sw-42-1795338800123"), Some(42));
        assert_eq!(platform_id("sw-42"), None);
        assert_eq!(platform_id("sw-x-1"), None);
        assert_eq!(platform_id("sw-0-1"), None);
        assert_eq!(platform_id("other"), None);
        let job = |command: &[&str]| JobRequest {
            command: command.iter().map(|c| (*c).to_owned()).collect(),
            ..JobRequest::named("t")
        };
        let plain = site::JobSite::default();
        let gpu = site::parse_gres("gpu").unwrap();
        let minimal = sbatch_args(1, 0, &job(&["true"]), to(&plain, &gpu)).unwrap();
        assert!(minimal.contains(&"--cpus-per-task=1".to_owned()));
        assert!(!minimal.iter().any(|a| a.starts_with("--time")), "the partition's default applies: {minimal:?}");
        assert!(
            !minimal.iter().any(|a| a.starts_with("--account") || a.starts_with("--qos") || a.starts_with("--gres"))
        );
        let limited =
            sbatch_args(1, 0, &JobRequest { time_limit_s: Some(601), ..job(&["true"]) }, to(&plain, &gpu)).unwrap();
        assert!(limited.contains(&"--time=11".to_owned()));
        assert!(sbatch_args(1, 0, &job(&[]), to(&plain, &gpu)).is_err());
        let gang =
            JobRequest { tasks: 4, cpu_milli: 32_000, memory_mib: 65_536, accelerators: 2, ..job(&["mpirun", "x"]) };
        let args = sbatch_args(1, 0, &gang, to(&plain, &gpu)).unwrap();
        for wanted in ["--ntasks=4", "--cpus-per-task=32", "--mem-per-cpu=2048M", "--gpus-per-task=2"] {
            assert!(args.contains(&wanted.to_owned()), "{wanted} in {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--mem=") || a.starts_with("--gres=")), "{args:?}");
        assert!(args.last().unwrap().contains("SUANWANG_TASKS=4; mpirun x"), "{args:?}");
        let a100 = site::parse_gres("gpu:a100").unwrap();
        assert!(sbatch_args(1, 0, &gang, to(&plain, &a100)).unwrap().contains(&"--gpus-per-task=a100:2".to_owned()));
        // NPUs come per node: one task per node, each with its cards.
        let npu = site::parse_gres("npu:910b").unwrap();
        assert!(has_gres("gpu:sim:8(S:0-1),npu:910b:4", &npu));
        assert!(has_gres("gpu:sim:8(S:0-1),npu:910b:4", &gpu));
        assert!(!has_gres("gpu:sim:8(S:0-1),npu:910b:4", &a100));
        assert!(!has_gres("(null)", &gpu));
        assert!(has_gres("gpu:2", &gpu) && !has_gres("gpu:2", &a100));
        let args = sbatch_args(1, 0, &gang, to(&plain, &npu)).unwrap();
        for wanted in ["--ntasks=4", "--nodes=4", "--ntasks-per-node=1", "--gres=npu:910b:2"] {
            assert!(args.contains(&wanted.to_owned()), "{wanted} in {args:?}");
        }
        assert!(!args.iter().any(|a| a.starts_with("--gpus-per-task")), "{args:?}");
        assert_eq!(usage_event_id("suanwang", 7, 42), "slurm:suanwang:7:42");
    }

    #[test]
    fn partition_limits_are_read_and_respected() {
        let out = "PartitionName=main Default=YES DefaultTime=NONE MaxTime=UNLIMITED State=UP\n\
                   PartitionName=short Default=NO DefaultTime=00:30:00 MaxTime=1-00:00:00 State=UP\n\
                   garbage\n";
        let parts = parse_partitions(out);
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].default, parts[0].max_time_s, parts[0].default_time_s), (true, None, None));
        assert_eq!((parts[1].max_time_s, parts[1].default_time_s), (Some(86_400), Some(1_800)));
        assert!(check_time_limit(Some(86_400), &parts[1]).is_ok());
        assert!(check_time_limit(None, &parts[1]).is_ok());
        let refused = check_time_limit(Some(2 * 86_400), &parts[1]).unwrap_err();
        assert_eq!(refused.0, "the job asks a time limit of 48 h and partition short allows at most 24 h");
        assert!(check_time_limit(Some(86_401), &parts[1]).is_err(), "rounded up to minutes, as asked of Slurm");
        assert!(check_time_limit(Some(10 * 86_400), &parts[0]).is_ok());
    }

    #[test]
    fn quoting_survives_anything() {
        assert_eq!(shell_quote("plain-arg_1.txt"), "plain-arg_1.txt");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_quote("'"), "''\\'''");
    }
}
