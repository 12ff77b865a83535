//! The Slurm commands the agent runs (`sbatch`, `scontrol`, `scancel`, `sinfo`), each with a
//! time limit. A failure is sorted into "Slurm is away" (the controller is down or slow: retry
//! later, with backoff) and "Slurm refuses" (the request itself is wrong: report it).

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::site::UnixUser;
use super::{
    LIVE_STATES, ParseError, SACCT_FIELDS, SQUEUE_FORMAT, SlurmJob, SlurmNode, parse_accounting, parse_job,
    parse_listed, parse_nodes, platform_id,
};

/// Longest output read from one command (a controller with very many jobs is cut off here).
pub const OUTPUT_MAX: usize = 64 * 1024 * 1024;

/// Why a Slurm command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlurmError {
    /// The controller cannot be reached or did not answer in time: try again later.
    Unavailable(String),
    /// Slurm refused the request (with its own words).
    Refused(String),
    /// Slurm answered with something the agent cannot read.
    Unreadable(String),
}

impl std::fmt::Display for SlurmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlurmError::Unavailable(m) => write!(f, "slurm_unavailable: {m}"),
            SlurmError::Refused(m) => write!(f, "slurm_refused: {m}"),
            SlurmError::Unreadable(m) => write!(f, "slurm_unreadable: {m}"),
        }
    }
}

impl From<ParseError> for SlurmError {
    fn from(e: ParseError) -> Self {
        SlurmError::Unreadable(e.0)
    }
}

/// Sorts a failed command's standard error: words Slurm's client library uses when it cannot
/// talk to the controller mean "away"; anything else is Slurm's answer.
pub fn classify(stderr: &str) -> SlurmError {
    const AWAY: [&str; 8] = [
        "Unable to contact slurm controller",
        "Socket timed out",
        "temporarily unable",
        "Zero Bytes were transmitted",
        "Connection refused",
        "Communication connection failure",
        "Slurm backup controller in standby mode",
        "Transport endpoint is not connected",
    ];
    let message = stderr.trim().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    let message = if message.is_empty() { "the command failed without a message".to_owned() } else { message };
    if AWAY.iter().any(|w| message.to_ascii_lowercase().contains(&w.to_ascii_lowercase())) {
        SlurmError::Unavailable(message)
    } else {
        SlurmError::Refused(message)
    }
}

/// The job id in `sbatch --parsable` output: `123` or `123;cluster`.
pub fn parse_submitted(stdout: &str) -> Result<u64, SlurmError> {
    stdout
        .trim()
        .split(';')
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| SlurmError::Unreadable(format!("sbatch printed {:?}, not a job id", stdout.trim())))
}

/// Runs Slurm's commands.
#[derive(Clone, Debug)]
pub struct SlurmCli {
    /// How long one command may take before Slurm counts as away.
    pub timeout: Duration,
    /// The partition whose nodes make the pool (all nodes when `None`).
    pub partition: Option<String>,
}

impl SlurmCli {
    async fn run(&self, program: &str, args: &[String]) -> Result<String, SlurmError> {
        Ok(self.run_as(program, args, None).await?.0)
    }

    async fn run_full(&self, program: &str, args: &[String]) -> Result<(String, String), SlurmError> {
        self.run_as(program, args, None).await
    }

    /// Standard output and standard error of a command that succeeded, run as `user` (the
    /// agent's own when `None`).
    async fn run_as(
        &self,
        program: &str,
        args: &[String],
        user: Option<&UnixUser>,
    ) -> Result<(String, String), SlurmError> {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).kill_on_drop(true);
        if program == "sbatch" {
            // A job is exported sbatch's environment (`--export=ALL`), so sbatch gets none of the
            // agent's (which holds the pool's token): only what it needs to find Slurm, and the
            // site's `SBATCH_*` defaults. (`--export=NONE` would do the same but makes every node
            // load a login environment first, about a second per job start.)
            command.env_clear();
            for (name, value) in std::env::vars_os() {
                let keep = name.to_str().is_some_and(|n| {
                    matches!(n, "PATH" | "SLURM_CONF" | "HOME" | "USER" | "LOGNAME") || n.starts_with("SBATCH_")
                });
                if keep {
                    command.env(name, value);
                }
            }
            command.env("LANG", "C.UTF-8");
            if let Some(user) = user {
                // As `sbatch --uid` would, which also needs root: the job is that user's, with
                // that user's home (supplementary groups are dropped with the switch).
                command.uid(user.uid).gid(user.gid);
                command.env("HOME", &user.home).env("USER", &user.name).env("LOGNAME", &user.name);
            }
        }
        let output = match tokio::time::timeout(self.timeout, command.output()).await {
            Err(_) => {
                return Err(SlurmError::Unavailable(format!(
                    "{program} did not answer within {} s",
                    self.timeout.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(SlurmError::Unavailable(format!("cannot run {program}: {e}"))),
            Ok(Ok(output)) => output,
        };
        if !output.status.success() {
            return Err(classify(&String::from_utf8_lossy(&output.stderr)));
        }
        if output.stdout.len() > OUTPUT_MAX {
            return Err(SlurmError::Unreadable(format!("{program} printed more than {OUTPUT_MAX} bytes")));
        }
        Ok((String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned()))
    }

    /// Submits a batch job as `user` (the agent's own user when `None`); its Slurm id.
    pub async fn submit(&self, args: &[String], user: Option<&UnixUser>) -> Result<u64, SlurmError> {
        parse_submitted(&self.run_as("sbatch", args, user).await?.0)
    }

    /// The platform's jobs of `users` the controller lists (`squeue -u`: Slurm filters by user
    /// itself when there is one), those that may still run, or with `all` also those finished
    /// within `MinJobAge` (read once when the agent starts, to adopt what ended while it was
    /// away); and the lines of ours it could not read. A listing says neither cards nor exit
    /// code: [`SlurmCli::job`] reads those of a job that ended.
    /// Only lines that may concern the platform are read: a platform job's name, or a job of
    /// one of `platform_users` (the site file's, all of whose jobs are judged); the agent's own
    /// user's other jobs (an administrator's job arrays, say) are skipped unread.
    pub async fn jobs(
        &self,
        users: &[String],
        platform_users: &[String],
        all: bool,
    ) -> Result<(Vec<SlurmJob>, Vec<ParseError>), SlurmError> {
        let args: Vec<String> = vec![
            "-h".into(),
            format!("--user={}", users.join(",")),
            format!("--states={}", if all { "all" } else { LIVE_STATES }),
            format!("--format={SQUEUE_FORMAT}"),
        ];
        let out = self.run("squeue", &args).await?;
        Ok(listed_jobs(&out, platform_users))
    }

    /// One job as the controller knows it (`scontrol show job -d -o <id>`), with its cards and
    /// exit code; `None` when the controller no longer knows it.
    pub async fn job(&self, slurm_id: u64) -> Result<Option<SlurmJob>, SlurmError> {
        let args: Vec<String> = vec!["show".into(), "job".into(), "-d".into(), "-o".into(), slurm_id.to_string()];
        match self.run("scontrol", &args).await {
            Ok(out) => Ok(out.lines().find(|l| !l.trim().is_empty()).map(parse_job).transpose()?),
            Err(SlurmError::Refused(m)) if m.contains("Invalid job id") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The jobs of these names in Slurm's accounting (slurmdbd, read with `sacct`), for jobs the
    /// controller has forgotten. Names are `sw-<id>-<created ms>`, so the whole history is
    /// searched (`--starttime` 1970) without finding another platform's job.
    pub async fn accounting(&self, names: &[String]) -> Result<(Vec<SlurmJob>, Vec<ParseError>), SlurmError> {
        if names.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let args: Vec<String> = vec![
            "-X".into(),
            "-n".into(),
            "-P".into(),
            "--starttime=1970-01-01T00:00:00".into(),
            format!("--name={}", names.join(",")),
            format!("--format={SACCT_FIELDS}"),
        ];
        let (out, err) = self.run_full("sacct", &args).await?;
        // sacct may print rows it has and a warning when it could not reach slurmdbd.
        if let SlurmError::Unavailable(m) = classify(&err) {
            return Err(SlurmError::Unavailable(m));
        }
        Ok(accounted_jobs(&out, names))
    }

    /// Cancels a job (a job that already ended is not an error).
    pub async fn cancel(&self, slurm_id: u64) -> Result<(), SlurmError> {
        match self.run("scancel", &[slurm_id.to_string()]).await {
            Err(SlurmError::Refused(m)) if m.contains("already completed") || m.contains("Invalid job id") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The time limits of the pool's partition (`--slurm-partition`, else the cluster's default
    /// partition); `None` when Slurm lists no such partition.
    pub async fn partition_limits(&self) -> Result<Option<super::PartitionLimits>, SlurmError> {
        let out = self.run("scontrol", &["show".into(), "partition".into(), "-o".into()]).await?;
        let parts = super::parse_partitions(&out);
        Ok(parts.into_iter().find(|p| match &self.partition {
            Some(name) => &p.name == name,
            None => p.default,
        }))
    }

    /// The pool's nodes.
    pub async fn nodes(&self) -> Result<Vec<SlurmNode>, SlurmError> {
        let mut args: Vec<String> = vec!["-N".into(), "-h".into(), "-o".into(), "%N %c %m %G %T".into()];
        if let Some(partition) = &self.partition {
            args.push(format!("--partition={partition}"));
        }
        Ok(parse_nodes(&self.run("sinfo", &args).await?)?)
    }
}

/// The way a pool talks to Slurm: its commands, or slurmrestd. The same operations either way.
#[derive(Clone, Debug)]
pub enum SlurmClient {
    /// `sbatch`, `squeue`, `scontrol`, `scancel`, `sinfo`, `sacct`.
    Cli(SlurmCli),
    /// slurmrestd's OpenAPI.
    Rest(super::rest::SlurmRest),
}

impl SlurmClient {
    /// The pool's partition (`None`: the cluster's default).
    pub fn partition(&self) -> Option<&str> {
        match self {
            SlurmClient::Cli(c) => c.partition.as_deref(),
            SlurmClient::Rest(r) => r.partition.as_deref(),
        }
    }

    /// Submits a batch job as `user` (the agent's own user, or the token's, when `None`).
    pub async fn submit(&self, job: &super::BatchJob, user: Option<&UnixUser>) -> Result<u64, SlurmError> {
        match self {
            SlurmClient::Cli(c) => c.submit(&job.sbatch_args(), user).await,
            SlurmClient::Rest(r) => r.submit(job, user).await,
        }
    }

    /// See [`SlurmCli::jobs`].
    pub async fn jobs(
        &self,
        users: &[String],
        platform_users: &[String],
        all: bool,
    ) -> Result<(Vec<SlurmJob>, Vec<ParseError>), SlurmError> {
        match self {
            SlurmClient::Cli(c) => c.jobs(users, platform_users, all).await,
            SlurmClient::Rest(r) => r.jobs(users, platform_users, all).await,
        }
    }

    /// See [`SlurmCli::job`].
    pub async fn job(&self, slurm_id: u64) -> Result<Option<SlurmJob>, SlurmError> {
        match self {
            SlurmClient::Cli(c) => c.job(slurm_id).await,
            SlurmClient::Rest(r) => r.job(slurm_id).await,
        }
    }

    /// See [`SlurmCli::accounting`].
    pub async fn accounting(&self, names: &[String]) -> Result<(Vec<SlurmJob>, Vec<ParseError>), SlurmError> {
        match self {
            SlurmClient::Cli(c) => c.accounting(names).await,
            SlurmClient::Rest(r) => r.accounting(names).await,
        }
    }

    /// See [`SlurmCli::cancel`].
    pub async fn cancel(&self, slurm_id: u64) -> Result<(), SlurmError> {
        match self {
            SlurmClient::Cli(c) => c.cancel(slurm_id).await,
            SlurmClient::Rest(r) => r.cancel(slurm_id).await,
        }
    }

    /// See [`SlurmCli::partition_limits`].
    pub async fn partition_limits(&self) -> Result<Option<super::PartitionLimits>, SlurmError> {
        match self {
            SlurmClient::Cli(c) => c.partition_limits().await,
            SlurmClient::Rest(r) => r.partition_limits().await,
        }
    }

    /// See [`SlurmCli::nodes`].
    pub async fn nodes(&self) -> Result<Vec<SlurmNode>, SlurmError> {
        match self {
            SlurmClient::Cli(c) => c.nodes().await,
            SlurmClient::Rest(r) => r.nodes().await,
        }
    }
}

/// The jobs in `squeue --format=`[`SQUEUE_FORMAT`] output that may concern the platform (see
/// [`SlurmCli::jobs`]), and the lines of them that cannot be read.
pub fn listed_jobs(output: &str, platform_users: &[String]) -> (Vec<SlurmJob>, Vec<ParseError>) {
    read_ours(
        output,
        |line| {
            let user = line.split('|').nth(6).unwrap_or("");
            let name = line.splitn(8, '|').nth(7).and_then(|rest| rest.rsplit_once('|')).map_or("", |(name, _)| name);
            platform_id(name).is_some() || platform_users.iter().any(|u| u == user)
        },
        parse_listed,
    )
}

/// The jobs of these names in `sacct -X -n -P` output, and the lines of them that cannot be read.
pub fn accounted_jobs(output: &str, names: &[String]) -> (Vec<SlurmJob>, Vec<ParseError>) {
    read_ours(
        output,
        |line| line.split('|').nth(1).is_some_and(|name| names.iter().any(|n| n == name)),
        parse_accounting,
    )
}

/// Parses the lines that are `ours`, sorting them into jobs and errors.
fn read_ours(
    output: &str,
    ours: impl Fn(&str) -> bool,
    parse: impl Fn(&str) -> Result<SlurmJob, ParseError>,
) -> (Vec<SlurmJob>, Vec<ParseError>) {
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for line in output.lines().filter(|l| ours(l)) {
        match parse(line) {
            Ok(job) => jobs.push(job),
            Err(e) => errors.push(e),
        }
    }
    (jobs, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_sorted_into_away_and_refused() {
        // Real words of Slurm 22.05 with slurmctld stopped, and for a request it cannot meet.
        let down = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)";
        assert!(matches!(classify(down), SlurmError::Unavailable(_)));
        let load = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)";
        assert!(matches!(classify(load), SlurmError::Unavailable(_)));
        let refused = "sbatch: error: Batch job submission failed: Requested node configuration is not available";
        assert_eq!(classify(refused), SlurmError::Refused(refused.to_owned()));
        assert_eq!(classify("  \n"), SlurmError::Refused("the command failed without a message".to_owned()));
        assert_eq!(classify("a\n\nb\n"), SlurmError::Refused("a; b".to_owned()));
    }

    #[test]
    fn only_the_asked_jobs_are_read_from_accounting() {
        let names = vec!["sw-7-100".to_owned(), "sw-8-100".to_owned()];
        let out = "1|other|WEIRD|0:0|1||Unknown|1\n\
                   2|sw-7-100|COMPLETED|0:0|4|cpu=1,gres/gpu=2|2026-11-22T19:00:00|1\n\
                   3|sw-8-100|NOT_A_STATE|0:0|1||Unknown|1\n\
                   4|sw-9-100|COMPLETED|0:0|1||Unknown|1\n\n";
        let (jobs, errors) = accounted_jobs(out, &names);
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].id, jobs[0].cards(&super::super::gpu_only()), jobs[0].run_time_s), (2, 2, Some(4)));
        assert_eq!(errors.len(), 1);
        // slurmdbd down: sacct's words mean "away", not "no accounting".
        let down = "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:vm:16819: Connection refused";
        assert!(matches!(classify(down), SlurmError::Unavailable(_)));
        assert!(matches!(classify("sacct: error: Slurm accounting storage is disabled"), SlurmError::Refused(_)));
    }

    #[test]
    fn a_listing_reads_only_what_concerns_the_platform() {
        // The agent's own user's job array (ids `1019_988`), a platform job, a site user's stray.
        let out = "1019_988|COMPLETED|None|0:00|2026-12-07T20:59:00|1|root|hist|(null)\n\
                   1020|RUNNING|None|0:03|2026-12-07T20:59:00|1|root|sw-5-100|suanwang:c:main\n\
                   1021_[3-9]|PENDING|Resources|0:00|N/A|1|sw-acme|free|(null)\n";
        let (jobs, errors) = listed_jobs(out, &["sw-acme".to_owned()]);
        assert!(errors.is_empty(), "{errors:?}");
        let ids: Vec<u64> = jobs.iter().map(|j| j.id).collect();
        assert_eq!(ids, [1020, 1021], "an array is its job's id");
        let (jobs, _) = listed_jobs(out, &[]);
        assert_eq!(jobs.len(), 1);
    }

    #[test]
    fn submitted_ids_parse() {
        assert_eq!(parse_submitted("123\n"), Ok(123));
        assert_eq!(parse_submitted("77;cluster\n"), Ok(77));
        assert!(parse_submitted("Submitted batch job 5").is_err());
        assert!(parse_submitted("").is_err());
    }
}
