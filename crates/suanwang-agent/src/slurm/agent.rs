//! The Slurm agent's loop. Slurm holds the jobs; the agent is a bridge that keeps nothing of its
//! own on disk. Every poll it:
//!
//! 1. lists the platform's jobs the controller knows (`scontrol show job -d -o`, named
//!    `sw-<id>-<accepted ms>`) and the pool's nodes (`sinfo -N`);
//! 2. pulls work (placed, running and cancelled jobs). Jobs to account for that the controller
//!    has forgotten (older than `MinJobAge`) are read from slurmdbd (`sacct`). A job the platform
//!    places or runs here that Slurm has but the agent does not track (it restarted) is adopted,
//!    so a restart neither submits a job twice nor loses its usage;
//! 3. follows each tracked job: `running` when Slurm starts it, new lines of its output file as
//!    log chunks, and at its end one usage event (`RunTime` × GPUs held) and its final state;
//! 4. sends a heartbeat: healthy when the controller answers and a node can take work; the
//!    tracked jobs as running; `running_unknown` until its first listing succeeds, and while
//!    slurmdbd is away with jobs to look up (so a restart while Slurm is down loses nothing);
//!    the capacity Slurm reports;
//! 5. `scancel`s what was cancelled and `sbatch`es what was placed here. A job Slurm refuses fails
//!    on the platform with Slurm's reason.
//!
//! Reports the platform does not take (it is away) stay queued on the tracked job and are sent
//! again next poll with the same ids (log chunks by byte offset, usage by Slurm job id), so they
//! are recorded once. While Slurm is away, polls back off up to [`BACKOFF_MAX`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::cli::{SlurmClient, SlurmError};
use super::site::{SiteError, SlurmSite, UnixUser};
use super::{
    SlurmJob, SlurmNode, SlurmState, Submission, batch_job, cards_in, job_name, owner_tag, platform_id, usage_event_id,
};
use crate::backend::{LOG_LINE_MAX, truncate_on_char};
use suanwang_api::agent::{
    Capacity, Heartbeat, JobRef, LogChunk, NODES_MAX, NodeReport, RunState, StateReport, UsageReport, Work,
};

use crate::protocol::{Platform, PlatformError};
use crate::run::RUNNING_MAX;
use crate::run::wall_ms;

/// The longest wait between polls while Slurm is away.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Output lines sent in one request.
pub const LINES_PER_BATCH: usize = 1024;

/// Bytes of output read for one request (its JSON stays under the platform's 1 MiB body limit
/// even if every byte had to be escaped).
pub const BYTES_PER_BATCH: usize = 128 * 1024;

/// Bytes of output sent per job per poll (the rest follow next poll).
pub const BYTES_PER_POLL: u64 = 4 * 1024 * 1024;

/// How the Slurm agent behaves.
#[derive(Clone, Debug)]
pub struct SlurmConfig {
    /// The cluster's name in usage event ids (`slurm:<cluster>:<job id>:<platform id>`).
    pub cluster: String,
    /// Where jobs' directories go (`<job name>/`, each the job's working directory, holding its
    /// output file `<job name>-<slurm id>.out`, readable only by the user it runs as): written on
    /// the node, read by the agent, so a shared filesystem on a real cluster.
    pub output_dir: PathBuf,
    /// The commands or slurmrestd, with the partition.
    pub cli: SlurmClient,
    /// Time between polls.
    pub poll: Duration,
    /// Accounts, QOS, Unix users and GRES (the site file).
    pub site: SlurmSite,
    /// The Unix users the site file names, looked up when the agent started.
    pub users: BTreeMap<String, UnixUser>,
    /// The agent's own Unix user (name or uid), whose jobs it lists with the site's users.
    pub own_user: String,
}

impl SlurmConfig {
    /// The site file's users, looked up on this machine ([`UnixUser::lookup`]); and the agent's
    /// own user. Errors name the user.
    pub fn users_of(site: &SlurmSite) -> Result<(BTreeMap<String, UnixUser>, String), SiteError> {
        let mut users = BTreeMap::new();
        for name in site.users() {
            let user = UnixUser::lookup(&name)?;
            users.insert(name, user);
        }
        Ok((users, own_user()))
    }
}

/// The agent's Unix user id (the owner of `/proc/self`), as `squeue --user` takes it.
fn own_user() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or_else(|_| std::env::var("USER").unwrap_or_default(), |m| m.uid().to_string())
}

/// How long a refusal that names the site's configuration (account, QOS, GRES, partition)
/// stays in the pool's health.
pub const CONFIG_PROBLEM_FOR: Duration = Duration::from_secs(600);

/// Followed jobs whose record (`scontrol show job`) is read in one poll.
pub const DETAILS_PER_POLL: usize = 512;

/// One platform job the agent follows in Slurm.
#[derive(Debug)]
struct Tracked {
    slurm_id: u64,
    /// Its Slurm job name (`sw-<id>-<created ms>`).
    name: String,
    /// Its output file.
    output: PathBuf,
    /// Whether `running` was reported (accepted).
    started: bool,
    /// When the agent first saw it running (for a run time Slurm cannot give).
    seen_running: Option<Instant>,
    /// How long Slurm said it had run when the agent first saw it running (an adopted job).
    ran_before_seen_ms: i64,
    /// Bytes of the output file sent so far.
    offset: u64,
    /// The platform cancelled it: its end is not reported as a state.
    cancelled: bool,
    /// Why Slurm keeps it pending, as last reported to the platform.
    reported_reason: Option<String>,
    /// A new pending reason to report.
    reason_due: Option<String>,
    /// It ended in Slurm: what is left to report (usage first, then the state).
    ending: Option<Ending>,
}

#[derive(Debug)]
struct Ending {
    usage: Option<UsageReport>,
    state: Option<StateReport>,
}

/// Jobs asked of `sacct` in one poll.
pub const ACCOUNTING_BATCH: usize = 100;

/// What reading Slurm's accounting gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accounting {
    /// Read (or nothing needed it).
    Read,
    /// slurmdbd does not answer: try again next poll.
    Away,
    /// The cluster keeps no accounting (no slurmdbd), or refused the query.
    Absent,
}

/// Runs the agent until `shutdown` fires. Slurm's jobs keep running when it stops.
pub async fn run<P: Platform>(platform: Arc<P>, config: SlurmConfig, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if let Err(e) = std::fs::create_dir_all(&config.output_dir) {
        tracing::error!(dir = %config.output_dir.display(), error = %e, "cannot create the output directory");
    }
    let mut agent = SlurmAgent {
        platform,
        config,
        tracked: HashMap::new(),
        done: HashSet::new(),
        listed: false,
        ended_now: HashSet::new(),
        no_nodes_said: false,
        limits: None,
        work_version: None,
        full_listed: false,
        busy: false,
        last_churn: None,
        config_problem: None,
        node_gres: Vec::new(),
        nodes_sent: None,
        beat_sent: None,
    };
    let mut away_since: Option<Instant> = None;
    let mut wait = agent.config.poll;
    loop {
        let reachable = agent.poll().await;
        match (reachable, away_since) {
            (true, Some(since)) => {
                tracing::info!(away_s = since.elapsed().as_secs(), "Slurm answers again");
                away_since = None;
                wait = agent.config.poll;
            }
            // Jobs ending and starting: look again soon, or Slurm runs dry before the agent has
            // seen the ends that let the platform send more.
            (true, None) if agent.busy => wait = agent.config.poll.min(BUSY_POLL),
            (true, None) => wait = agent.config.poll,
            (false, None) => {
                away_since = Some(Instant::now());
                wait = agent.config.poll;
            }
            (false, Some(_)) => wait = (wait * 2).min(BACKOFF_MAX).max(agent.config.poll),
        }
        // Between polls, the platform answers as soon as work is placed or cancelled here: the
        // next poll then starts at once (a hint only; the poll reads the work itself).
        let platform = Arc::clone(&agent.platform);
        let woken = async {
            match (reachable, agent.work_version) {
                (true, Some(version)) => match platform.wait_for_work(version, wait).await {
                    Ok(now) if now != version => {}
                    _ => std::future::pending().await,
                },
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = woken => {}
            _ = shutdown.changed() => return,
        }
    }
}

struct SlurmAgent<P> {
    platform: Arc<P>,
    config: SlurmConfig,
    /// By platform id.
    tracked: HashMap<i64, Tracked>,
    /// Slurm ids of ended jobs fully reported (forgotten once Slurm forgets them).
    done: HashSet<u64>,
    /// Whether a listing has succeeded since start.
    listed: bool,
    /// Platform ids whose end was reported in this poll.
    ended_now: HashSet<i64>,
    /// Slurm listed no node for the pool at the last poll (and the agent said so).
    no_nodes_said: bool,
    /// The partition's time limits, and when they were read.
    limits: Option<(super::PartitionLimits, Instant)>,
    /// The pool's work version at the last fetch (see [`Work::version`]).
    work_version: Option<u64>,
    /// Whether a listing of finished jobs too has succeeded since start (or since an `sbatch`
    /// whose outcome is unknown): until then a placed job may have a Slurm copy that already
    /// ended, which only such a listing shows.
    full_listed: bool,
    /// Jobs ended or were submitted within [`BUSY_FOR`]: the next poll comes after
    /// [`BUSY_POLL`].
    busy: bool,
    /// When a poll last saw a job end or submitted one.
    last_churn: Option<Instant>,
    /// Slurm refused a job for the site's configuration (account, QOS, GRES, partition): what
    /// it said, and when.
    config_problem: Option<(String, Instant)>,
    /// The GRES of the pool's nodes at the last listing (`gpu:sim:8,npu:910b:4`), to refuse a
    /// job whose GRES no node has (Slurm would only say "Requested node configuration is not
    /// available").
    node_gres: Vec<String>,
    /// The node list last sent with a heartbeat, and when.
    nodes_sent: Option<(Vec<NodeReport>, Instant)>,
    /// What the last heartbeat said (health, running jobs, whether it could tell, the
    /// problem), and when.
    beat_sent: Option<(Said, Instant)>,
}

/// The wait between polls while jobs end and start (see [`SlurmAgent::busy`]): a poll lists
/// the agent's own live jobs only, so polling faster costs little.
pub const BUSY_POLL: Duration = Duration::from_millis(250);

/// How long after the last end or start the agent keeps polling every [`BUSY_POLL`].
pub const BUSY_FOR: Duration = Duration::from_secs(3);

/// The longest time between heartbeats that would say the same.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

/// What a heartbeat says, to tell whether the next one would say something new.
type Said = (bool, Vec<i64>, bool, Option<String>);

/// How often the partition's limits are read again.
const LIMITS_EVERY: Duration = Duration::from_secs(60);

/// Whether the platform was away (retry) rather than refusing (drop).
fn away(e: &PlatformError) -> bool {
    matches!(e.code.as_str(), "unreachable" | "unavailable" | "internal" | "invalid_response")
}

impl<P: Platform> SlurmAgent<P> {
    /// One round; whether Slurm answered.
    async fn poll(&mut self) -> bool {
        let started = Instant::now();
        let users = self.listing_users();
        let full = !self.full_listed;
        let platform_users: Vec<String> = self.config.users.keys().cloned().collect();
        // Jobs and nodes at once (two commands, each a round trip to the controller).
        let (mut listing, nodes) =
            tokio::join!(self.config.cli.jobs(&users, &platform_users, full), self.config.cli.nodes());
        // The controller did not answer for the nodes: this poll decides nothing from the jobs
        // either (through slurmrestd, most polls list no job, and reading each followed job
        // from an absent controller would take its timeout per job).
        if let (Ok(_), Err(e @ SlurmError::Unavailable(_))) = (&listing, &nodes) {
            listing = Err(e.clone());
        }
        if listing.is_ok() && full {
            self.full_listed = true;
        }
        // Whether jobs the controller forgot could not be looked up (slurmdbd away): the
        // heartbeat then cannot say which of the platform's jobs still run.
        let mut accounting_away = false;
        let mut orphans = Vec::new();
        let listed_at = started.elapsed();
        let reachable = listing.is_ok();
        // The platform's view comes before the heartbeat: an agent that restarted adopts what
        // still runs in Slurm first, so its first heartbeat lists it.
        let work = if reachable {
            match self.platform.work().await {
                Ok(work) => {
                    self.work_version = Some(work.version);
                    Some(work)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch work");
                    None
                }
            }
        } else {
            None
        };
        match &mut listing {
            Ok((jobs, errors)) => {
                for e in errors.iter() {
                    tracing::warn!(error = %e.0, "a job of ours in Slurm cannot be read; it is looked at again next poll");
                }
                let named = |work: &Work| {
                    let placed = work.start.iter().map(|w| JobRef { id: w.id, created_ms: w.created_ms });
                    work.running.iter().copied().chain(placed).collect::<Vec<_>>()
                };
                if let Some(work) = &work {
                    self.adopt(jobs, named(work).into_iter());
                }
                // The listing shows live jobs: those followed that left it are read one by one.
                let unsure = self.details(jobs).await;
                // Jobs the controller has forgotten (older than MinJobAge) are read from slurmdbd.
                let accounting = self.accounting(jobs, work.as_ref().map_or(&[][..], |w| &w.running)).await;
                accounting_away = accounting == Accounting::Away;
                if let Some(work) = &work {
                    self.adopt(jobs, named(work).into_iter());
                    self.listed = true;
                    orphans = self.orphans(jobs, work);
                }
                self.follow(jobs, accounting, &unsure);
            }
            Err(e) => tracing::warn!(error = %e, "cannot list Slurm's jobs"),
        }
        if let Err(e) = &nodes
            && reachable
        {
            tracing::warn!(error = %e, "cannot list Slurm's nodes");
        }
        // A wrong `--slurm-partition` lists no node (sinfo says nothing else): say so once.
        let none = matches!(&nodes, Ok(n) if n.is_empty());
        if none && !self.no_nodes_said {
            tracing::error!(
                partition = self.config.cli.partition().unwrap_or("(any)"),
                "Slurm lists no node for this pool: check --slurm-partition (`sinfo -s` lists the partitions); the pool stays unhealthy"
            );
        }
        self.no_nodes_said = none;
        let followed_at = started.elapsed();
        self.cancel_orphans(orphans).await;
        self.flush().await;
        let flushed_at = started.elapsed();
        let card_gres = self.config.site.cards();
        let capacity = nodes.as_ref().ok().map(|n| capacity(n, &card_gres));
        if let Ok(nodes) = &nodes {
            // Distinct lists only (a thousand alike nodes are one).
            let mut gres: Vec<String> = nodes.iter().map(|n| n.gres.clone()).collect();
            gres.sort();
            gres.dedup();
            self.node_gres = gres;
        }
        let healthy = reachable && capacity.is_some_and(|c| c.nodes_usable > 0);
        // Why not, for the pool's health.
        let problem = match (&listing, &nodes, capacity) {
            (Err(e), _, _) => Some(format!("Slurm does not answer: {e}")),
            (_, Err(e), _) => Some(format!("Slurm's nodes cannot be listed: {e}")),
            (_, _, Some(c)) if c.nodes == 0 => Some(format!(
                "Slurm lists no node in partition {}: check the agent's --slurm-partition (`sinfo -s` lists them)",
                self.config.cli.partition().unwrap_or("(default)")
            )),
            (_, _, Some(c)) if c.nodes_usable == 0 => {
                Some(format!("none of the partition's {} nodes can take work (down, drained or failing)", c.nodes))
            }
            _ => {
                self.config_problem.as_ref().filter(|(_, at)| at.elapsed() < CONFIG_PROBLEM_FOR).map(|(p, _)| p.clone())
            }
        }
        .map(|mut p| {
            truncate_on_char(&mut p, 1000);
            p.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
        });
        // The nodes, when they changed or every NODES_EVERY.
        let reports = nodes.as_ref().ok().map(|n| node_reports(n, &card_gres));
        let nodes_due = match (&reports, &self.nodes_sent) {
            (Some(now), Some((sent, at))) => now != sent || at.elapsed() >= NODES_EVERY,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let mut running: Vec<i64> = self.tracked.keys().copied().collect();
        running.sort_unstable();
        let running_unknown = !self.listed || accounting_away;
        // Polling every 250 ms while jobs churn, the heartbeat (a write on the platform) goes
        // at most once a second unless what runs, the health or the nodes changed.
        let said = (healthy, running.clone(), running_unknown, problem.clone());
        let beat_due =
            nodes_due || self.beat_sent.as_ref().is_none_or(|(last, at)| *last != said || at.elapsed() >= BEAT_EVERY);
        if beat_due {
            let heartbeat = Heartbeat {
                healthy,
                running,
                running_unknown,
                capacity,
                problem,
                nodes: reports.clone().filter(|_| nodes_due),
            };
            if let Err(e) = self.platform.heartbeat(heartbeat).await {
                tracing::warn!(error = %e, "heartbeat failed");
                return reachable;
            }
            self.beat_sent = Some((said, Instant::now()));
            if nodes_due && let Some(reports) = reports {
                self.nodes_sent = Some((reports, Instant::now()));
            }
        }
        // The ends just reported free room the platform fills at once: fetch again so that what
        // it placed meanwhile goes to Slurm in this poll rather than the next.
        let work = match work {
            Some(earlier) if !self.ended_now.is_empty() => match self.platform.work().await {
                Ok(work) => {
                    self.work_version = Some(work.version);
                    Some(work)
                }
                Err(_) => Some(earlier),
            },
            work => work,
        };
        let beat_at = started.elapsed();
        let submitted = self.tracked.len();
        if let Some(work) = work {
            self.take_work(work).await;
        }
        if !self.ended_now.is_empty() || self.tracked.len() > submitted {
            self.last_churn = Some(Instant::now());
        }
        self.busy = self.last_churn.is_some_and(|at| at.elapsed() < BUSY_FOR);
        // Where a poll's time goes (`SUANWANG_LOG=suanwang_agent=debug`).
        tracing::debug!(
            list_ms = listed_at.as_millis() as u64,
            follow_ms = (followed_at - listed_at).as_millis() as u64,
            report_ms = (flushed_at - followed_at).as_millis() as u64,
            beat_ms = (beat_at - flushed_at).as_millis() as u64,
            submit_ms = (started.elapsed() - beat_at).as_millis() as u64,
            ended = self.ended_now.len(),
            submitted = self.tracked.len().saturating_sub(submitted),
            "poll"
        );
        reachable
    }

    /// Adopts the jobs the platform places or runs here that Slurm has but the agent does not
    /// track (it restarted): the newest unfinished run, or else the newest finished one not yet
    /// reported. Only jobs the platform names are adopted, so Slurm's memory of jobs long
    /// reported (or of another platform's) is left alone.
    fn adopt(&mut self, jobs: &[SlurmJob], named: impl Iterator<Item = JobRef>) {
        for JobRef { id, created_ms } in named {
            if self.tracked.contains_key(&id) || self.tracked.len() >= RUNNING_MAX {
                continue;
            }
            let name = job_name(id, created_ms);
            let candidate = jobs
                .iter()
                .filter(|j| j.name == name && !self.done.contains(&j.id))
                .max_by_key(|j| (matches!(j.state, SlurmState::Pending | SlurmState::Running), j.id));
            if let Some(job) = candidate {
                tracing::info!(job_id = id, slurm_id = job.id, state = %job.state_text, "adopting a job found in Slurm");
                let output = output_path(&self.config.output_dir, &name, job.id);
                self.tracked.insert(id, Tracked::new(job.id, name, output));
            }
        }
    }

    /// This agent's jobs in Slurm that may still run but that the platform neither runs nor
    /// places here, and that the agent does not follow: cancelled or preempted while the agent
    /// was away, failed over elsewhere, or a second copy of a job another copy of which is
    /// followed. Only jobs with this agent's [`owner_tag`] are considered, so another pool's jobs
    /// on the same controller (or anyone else's) are left alone.
    fn orphans(&self, jobs: &[SlurmJob], work: &Work) -> Vec<SlurmJob> {
        let tag = owner_tag(&self.config.cluster, self.config.cli.partition());
        let platform_users: HashSet<&str> = self.config.users.keys().map(String::as_str).collect();
        orphans(jobs, work, &self.tracked, &self.done, &tag, &platform_users)
    }

    /// The Unix users whose jobs the agent lists: its own, and the site file's.
    fn listing_users(&self) -> Vec<String> {
        std::iter::once(self.config.own_user.clone()).chain(self.config.users.keys().cloned()).collect()
    }

    /// Reads the record (`scontrol show job`) of each followed job the listing does not show
    /// live: it ended (its cards and exit code are read here), or the controller forgot it (left
    /// to accounting). Up to [`DETAILS_PER_POLL`] a poll, [`REPORTS_AT_ONCE`] at once; the Slurm
    /// ids it could not read (Slurm away, or over the limit) are returned and not judged this poll.
    async fn details(&self, jobs: &mut Vec<SlurmJob>) -> HashSet<u64> {
        let live: HashSet<u64> = jobs
            .iter()
            .filter(|j| matches!(j.state, SlurmState::Pending | SlurmState::Running))
            .map(|j| j.id)
            .collect();
        let mut wanted: Vec<u64> = self
            .tracked
            .values()
            .filter(|t| t.ending.is_none() && !live.contains(&t.slurm_id))
            .map(|t| t.slurm_id)
            .collect();
        wanted.sort_unstable();
        let unsure: HashSet<u64> = wanted.split_off(wanted.len().min(DETAILS_PER_POLL)).into_iter().collect();
        let mut unsure = unsure;
        let cli = &self.config.cli;
        for group in wanted.chunks(REPORTS_AT_ONCE) {
            let found = join_all(group.iter().map(|&id| async move { (id, cli.job(id).await) })).await;
            for (id, result) in found {
                match result {
                    Ok(record) => {
                        jobs.retain(|j| j.id != id);
                        jobs.extend(record.filter(|r| r.id == id));
                    }
                    Err(e) => {
                        tracing::warn!(slurm_id = id, error = %e, "cannot read a job's record; trying again next poll");
                        unsure.insert(id);
                    }
                }
            }
        }
        unsure
    }

    /// Cancels [`SlurmAgent::orphans`] and reports what each ran as usage evidence (the
    /// platform bills its own record, which ended when it stopped the job). A cancelled orphan
    /// is never adopted later: its Slurm id is kept with the jobs already reported.
    async fn cancel_orphans(&mut self, orphans: Vec<SlurmJob>) {
        let card_gres = self.config.site.cards();
        for job in orphans {
            let Some(id) = platform_id(&job.name) else {
                // A job a platform user submitted itself (from inside a job, say): unbilled work.
                match self.config.cli.cancel(job.id).await {
                    Ok(()) => {
                        tracing::warn!(
                            slurm_id = job.id,
                            user = job.user.as_deref().unwrap_or(""),
                            name = %job.name,
                            "cancelled a Slurm job a tenant's user submitted outside the platform"
                        );
                        self.done.insert(job.id);
                    }
                    Err(e) => tracing::warn!(slurm_id = job.id, error = %e, "cannot cancel; trying again next poll"),
                }
                continue;
            };
            // The listing does not say what it holds: its record does (before it is cancelled).
            let job = match self.config.cli.job(job.id).await {
                Ok(Some(record)) => record,
                _ => job,
            };
            match self.config.cli.cancel(job.id).await {
                Ok(()) => {
                    tracing::warn!(
                        job_id = id,
                        slurm_id = job.id,
                        state = %job.state_text,
                        "cancelled a Slurm job the platform no longer runs here"
                    );
                    self.done.insert(job.id);
                    let accelerator_ms =
                        job.run_time_s.unwrap_or(0).saturating_mul(1000).saturating_mul(job.cards(&card_gres));
                    if accelerator_ms > 0 {
                        let usage = UsageReport {
                            event_id: usage_event_id(&self.config.cluster, job.id, id),
                            job_id: id,
                            accelerator_ms: i64::try_from(accelerator_ms).unwrap_or(i64::MAX),
                        };
                        if let Err(e) = self.platform.report_usage(usage).await {
                            tracing::info!(job_id = id, error = %e, "the usage of a cancelled orphan was not taken");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(job_id = id, slurm_id = job.id, error = %e, "cannot cancel an orphan; trying again next poll")
                }
            }
        }
    }

    /// Reads from Slurm's accounting (`sacct`) the jobs the agent must account for that the
    /// controller no longer lists (it forgets a finished job after `MinJobAge`): tracked jobs
    /// that had started, and jobs the platform runs here that the agent does not track (it was
    /// down meanwhile). What it finds joins `jobs`, so they are followed and adopted as if the
    /// controller had listed them.
    async fn accounting(&mut self, jobs: &mut Vec<SlurmJob>, running: &[JobRef]) -> Accounting {
        let listed: HashSet<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        let tracked = self
            .tracked
            .values()
            .filter(|t| t.ending.is_none() && (t.started || t.seen_running.is_some()))
            .map(|t| t.name.clone());
        let untracked =
            running.iter().filter(|r| !self.tracked.contains_key(&r.id)).map(|r| job_name(r.id, r.created_ms));
        let mut names: Vec<String> = tracked.chain(untracked).filter(|n| !listed.contains(n.as_str())).collect();
        if names.is_empty() {
            return Accounting::Read;
        }
        names.sort();
        names.dedup();
        names.truncate(ACCOUNTING_BATCH);
        match self.config.cli.accounting(&names).await {
            Ok((found, errors)) => {
                for e in errors {
                    tracing::warn!(error = %e.0, "a job of ours in Slurm's accounting cannot be read");
                }
                tracing::info!(asked = names.len(), found = found.len(), "read jobs the controller forgot from sacct");
                let known: HashSet<u64> = jobs.iter().map(|j| j.id).collect();
                jobs.extend(found.into_iter().filter(|j| !known.contains(&j.id)));
                Accounting::Read
            }
            Err(SlurmError::Unavailable(e)) => {
                tracing::warn!(error = %e, "Slurm's accounting is away; jobs the controller forgot wait for it");
                Accounting::Away
            }
            Err(e) => {
                tracing::warn!(error = %e, "no Slurm accounting to read jobs the controller forgot");
                Accounting::Absent
            }
        }
    }

    /// Follows the tracked jobs in Slurm's listing (with what accounting added). A started job
    /// found in neither fails, unless accounting is away (it is looked for again next poll).
    fn follow(&mut self, jobs: &[SlurmJob], accounting: Accounting, unsure: &HashSet<u64>) {
        let by_id: HashMap<u64, &SlurmJob> = jobs.iter().map(|j| (j.id, j)).collect();
        // Forget finished jobs Slurm no longer lists.
        self.done.retain(|id| by_id.contains_key(id));
        let cluster = self.config.cluster.clone();
        let card_gres = self.config.site.cards();
        for (&id, tracked) in &mut self.tracked {
            if tracked.ending.is_some() || unsure.contains(&tracked.slurm_id) {
                continue;
            }
            let Some(job) = by_id.get(&tracked.slurm_id) else {
                // Submitted after this listing was taken, or ended while the agent was away and
                // known to neither the controller nor accounting.
                if (tracked.started || tracked.seen_running.is_some()) && accounting != Accounting::Away {
                    tracked.ending = Some(Ending {
                        usage: None,
                        state: Some(StateReport::now(
                            RunState::Failed,
                            format!(
                                "Slurm no longer knows job {} (it ended while the agent could not see it)",
                                tracked.slurm_id
                            ),
                        )),
                    });
                }
                continue;
            };
            if job.state != SlurmState::Pending && tracked.seen_running.is_none() {
                tracked.seen_running = Some(Instant::now());
                tracked.ran_before_seen_ms =
                    i64::try_from(job.run_time_s.unwrap_or(0).saturating_mul(1000)).unwrap_or(0);
            }
            // Why it waits (`Resources`, `Priority`, `JobHeldAdmin`, …), each new reason once.
            if job.state == SlurmState::Pending
                && let Some(reason) = &job.reason
                && tracked.reported_reason.as_ref() != Some(reason)
            {
                tracked.reason_due = Some(reason.clone());
            }
            if matches!(job.state, SlurmState::Pending | SlurmState::Running) {
                continue;
            }
            let run_time_s = job.run_time_s.unwrap_or_else(|| {
                let seen = tracked.seen_running.map_or(0, |t| t.elapsed().as_secs());
                tracing::warn!(
                    job_id = id,
                    slurm_id = job.id,
                    seen_s = seen,
                    "Slurm gave no run time; using the agent's own"
                );
                seen
            });
            let accelerator_ms = run_time_s.saturating_mul(1000).saturating_mul(job.cards(&card_gres));
            let usage = (accelerator_ms > 0).then(|| UsageReport {
                event_id: usage_event_id(&cluster, job.id, id),
                job_id: id,
                accelerator_ms: i64::try_from(accelerator_ms).unwrap_or(i64::MAX),
            });
            // Slurm's run time dates the run: it ended now (as far as the agent can tell), so it
            // started that long ago.
            let ended_ms = wall_ms();
            let started_ms = ended_ms.saturating_sub(i64::try_from(run_time_s.saturating_mul(1000)).unwrap_or(0));
            let state = final_state(job, tracked.cancelled).map(|mut report| {
                report.at_ms = Some(ended_ms);
                report.started_ms = Some(started_ms);
                report
            });
            tracked.ending = Some(Ending { usage, state });
        }
    }

    /// Sends what is due: `running`, output lines, and the ending, for up to
    /// [`REPORTS_AT_ONCE`] jobs at a time. Stops at the first report the platform does not take
    /// for a job (it is tried again next poll).
    async fn flush(&mut self) {
        let platform = &*self.platform;
        let cli = &self.config.cli;
        let mut finished = Vec::new();
        let mut entries: Vec<(&i64, &mut Tracked)> = self.tracked.iter_mut().collect();
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(REPORTS_AT_ONCE));
            let group = std::mem::replace(&mut entries, rest);
            let done = join_all(
                group
                    .into_iter()
                    .map(|(&id, tracked)| async move { flush_one(platform, cli, id, tracked).await.then_some(id) }),
            )
            .await;
            finished.extend(done.into_iter().flatten());
        }
        self.ended_now.clear();
        for id in finished {
            if let Some(tracked) = self.tracked.remove(&id) {
                self.done.insert(tracked.slurm_id);
                self.ended_now.insert(id);
            }
        }
    }

    /// The partition's time limits, read again every [`LIMITS_EVERY`] (`None`: unknown).
    async fn partition_limits(&mut self) -> Option<super::PartitionLimits> {
        if self.limits.as_ref().is_none_or(|(_, at)| at.elapsed() >= LIMITS_EVERY) {
            match self.config.cli.partition_limits().await {
                Ok(Some(limits)) => self.limits = Some((limits, Instant::now())),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the partition's time limits"),
            }
        }
        self.limits.as_ref().map(|(l, _)| l.clone())
    }

    /// Cancels what the platform cancelled; submits what it placed here.
    async fn take_work(&mut self, work: Work) {
        for id in work.stop {
            let Some(tracked) = self.tracked.get_mut(&id) else { continue };
            if tracked.cancelled || tracked.ending.is_some() {
                continue;
            }
            match self.config.cli.cancel(tracked.slurm_id).await {
                Ok(()) => {
                    tracing::info!(job_id = id, slurm_id = tracked.slurm_id, "cancelled in Slurm");
                    tracked.cancelled = true;
                }
                Err(e) => tracing::warn!(job_id = id, error = %e, "cannot cancel in Slurm; trying again next poll"),
            }
        }
        let mut ready = Vec::new();
        for item in work.start {
            // The work list was fetched before this poll's reports: a job that ended just now is
            // still listed as placed.
            if self.tracked.contains_key(&item.id)
                || self.ended_now.contains(&item.id)
                || self.tracked.len() + ready.len() >= RUNNING_MAX
            {
                continue;
            }
            // A time limit the partition does not allow would pend for ever: refused with both.
            if let Some(limits) = self.partition_limits().await
                && let Err(e) = super::check_time_limit(item.request.time_limit_s.or(item.request.estimate_s), &limits)
            {
                self.refuse(item.id, &e.0).await;
                continue;
            }
            let name = job_name(item.id, item.created_ms);
            // What it runs as: the tenant's account, QOS and Unix user in the site file.
            let job_site = match self.config.site.for_tenant(item.tenant.as_deref()) {
                Ok(job_site) => job_site,
                Err(e) => {
                    self.refuse(item.id, &e.0).await;
                    continue;
                }
            };
            let user = job_site.user.as_ref().and_then(|u| self.config.users.get(u)).cloned();
            let gres = self.config.site.gres_of(item.model.as_deref());
            if item.request.accelerators > 0
                && !self.node_gres.is_empty()
                && !self.node_gres.iter().any(|g| super::has_gres(g, &gres))
            {
                let problem = format!(
                    "model {} is GRES {} in the site file, which none of the partition's nodes has (they have {})",
                    item.model.as_deref().unwrap_or("(none)"),
                    gres.spec(),
                    self.node_gres.join(" ")
                );
                tracing::error!(job_id = item.id, "{problem}: check the site file's [gres]");
                self.config_problem = Some((problem.clone(), Instant::now()));
                self.refuse(
                    item.id,
                    &format!("Slurm cannot run the job for its provider's configuration (GRES): {problem}"),
                )
                .await;
                continue;
            }
            // Its own directory, the user's alone.
            let dir = self.config.output_dir.join(&name);
            if let Err(e) = job_dir(&dir, user.as_ref()) {
                tracing::error!(job_id = item.id, dir = %dir.display(), error = %e, "cannot make the job's directory");
                self.config_problem = Some((
                    format!("the agent cannot make job directories in {}: {e}", self.config.output_dir.display()),
                    Instant::now(),
                ));
                continue;
            }
            let partition = self.config.cli.partition();
            let dir_text = dir.to_string_lossy();
            let to = Submission { partition, site: &job_site, gres: &gres, dir: &dir_text };
            match batch_job(item.id, item.created_ms, &item.request, to) {
                Ok(mut job) => {
                    job.comment = Some(owner_tag(&self.config.cluster, partition));
                    ready.push((item.id, name, job, user));
                }
                Err(e) => self.refuse(item.id, &e.0).await,
            }
        }
        // Several `sbatch` at once: each waits for slurmctld, which takes them in parallel.
        let mut ready = ready.into_iter().peekable();
        while ready.peek().is_some() {
            let group: Vec<_> = ready.by_ref().take(SUBMITS_AT_ONCE).collect();
            let cli = &self.config.cli;
            let results = join_all(group.iter().map(|(_, _, job, user)| cli.submit(job, user.as_ref()))).await;
            let mut away = false;
            for ((id, name, _, _), result) in group.into_iter().zip(results) {
                match result {
                    Ok(slurm_id) => {
                        tracing::info!(job_id = id, slurm_id, "submitted to Slurm");
                        let output = output_path(&self.config.output_dir, &name, slurm_id);
                        self.tracked.insert(id, Tracked::new(slurm_id, name, output));
                    }
                    Err(SlurmError::Refused(reason)) => {
                        if let Some(what) = site_refusal(&reason) {
                            // Not the job's fault: the provider's configuration. The job fails
                            // with that said, and the pool's health says it too.
                            tracing::error!(job_id = id, reason = %reason, "Slurm refuses the pool's {what}: check the site file and --slurm-partition");
                            let problem = format!("Slurm refuses this pool's {what}: {reason}");
                            self.config_problem = Some((problem, Instant::now()));
                            let detail =
                                format!("Slurm refused the job for its provider's configuration ({what}): {reason}");
                            self.refuse(id, &detail).await;
                        } else {
                            self.refuse(id, &format!("Slurm refused the job: {reason}")).await;
                        }
                    }
                    Err(e) => {
                        // It may have been submitted all the same: the next poll adopts it by
                        // its name if Slurm has it (reading finished jobs too, in case it has
                        // already ended), and submits it otherwise.
                        tracing::warn!(job_id = id, error = %e, "cannot submit; trying again next poll");
                        self.full_listed = false;
                        away = true;
                    }
                }
            }
            if away {
                return;
            }
        }
    }

    /// Fails a placed job the agent cannot give to Slurm.
    async fn refuse(&self, id: i64, reason: &str) {
        tracing::warn!(job_id = id, reason, "job refused");
        let mut detail = reason.to_owned();
        truncate_on_char(&mut detail, 1000);
        if let Err(e) = self.platform.report_state(id, StateReport::now(RunState::Failed, detail)).await {
            tracing::warn!(job_id = id, error = %e, "cannot report the refusal; it is tried again next poll");
        }
    }
}

/// See [`SlurmAgent::orphans`]: the jobs in `jobs` tagged `tag` that may still run, are not
/// followed (nor already reported), and are not wanted by `work` or are a second copy of one
/// that is followed.
///
/// Jobs of the site file's Unix users (`platform_users`, which belong to the platform) whose
/// name is not a platform job's are orphans too, whatever their tag: no agent submitted them (a
/// tenant's job ran `sbatch` itself).
fn orphans(
    jobs: &[SlurmJob],
    work: &Work,
    tracked: &HashMap<i64, Tracked>,
    done: &HashSet<u64>,
    tag: &str,
    platform_users: &HashSet<&str>,
) -> Vec<SlurmJob> {
    let wanted: HashSet<String> = work
        .running
        .iter()
        .map(|r| job_name(r.id, r.created_ms))
        .chain(work.start.iter().map(|w| job_name(w.id, w.created_ms)))
        .collect();
    let followed_ids: HashSet<u64> = tracked.values().map(|t| t.slurm_id).collect();
    let followed_names: HashSet<&str> = tracked.values().map(|t| t.name.as_str()).collect();
    jobs.iter()
        .filter(|j| matches!(j.state, SlurmState::Pending | SlurmState::Running))
        .filter(|j| {
            let ours = j.comment.as_deref() == Some(tag) && platform_id(&j.name).is_some();
            // A platform user's job that no agent submitted (a platform job's name belongs to
            // whichever agent's tag it carries: another pool may share the controller and users).
            let stray = platform_id(&j.name).is_none() && j.user.as_deref().is_some_and(|u| platform_users.contains(u));
            ours || stray
        })
        .filter(|j| !followed_ids.contains(&j.id) && !done.contains(&j.id))
        .filter(|j| {
            platform_id(&j.name).is_none() || !wanted.contains(&j.name) || followed_names.contains(j.name.as_str())
        })
        .cloned()
        .collect()
}

impl Tracked {
    fn new(slurm_id: u64, name: String, output: PathBuf) -> Self {
        Tracked {
            slurm_id,
            name,
            output,
            started: false,
            seen_running: None,
            ran_before_seen_ms: 0,
            offset: 0,
            cancelled: false,
            reported_reason: None,
            reason_due: None,
            ending: None,
        }
    }
}

/// `sbatch` commands run at once.
pub const SUBMITS_AT_ONCE: usize = 8;

/// Jobs whose reports are sent at once.
pub const REPORTS_AT_ONCE: usize = 16;

/// Sends what is due for one job (see [`SlurmAgent::flush`]); whether all of it, its end
/// included, was taken.
async fn flush_one<P: Platform>(platform: &P, cli: &SlurmClient, id: i64, tracked: &mut Tracked) -> bool {
    if let Some(reason) = tracked.reason_due.clone()
        && !tracked.started
        && !tracked.cancelled
        && tracked.seen_running.is_none()
    {
        let report =
            StateReport::now(RunState::Pending, format!("Slurm job {} is pending ({reason})", tracked.slurm_id));
        match platform.report_state(id, report).await {
            Ok(()) => {
                tracked.reported_reason = Some(reason);
                tracked.reason_due = None;
            }
            Err(e) if away(&e) => return false,
            Err(e) => {
                tracing::info!(job_id = id, error = %e, "the platform did not take the pending reason");
                tracked.reason_due = None;
            }
        }
    }
    if !tracked.started && !tracked.cancelled && tracked.seen_running.is_some() {
        // When Slurm started it (its run time so far, back from now).
        let ran_ms = tracked.seen_running.map_or(0, |t| i64::try_from(t.elapsed().as_millis()).unwrap_or(0));
        let report = StateReport {
            state: RunState::Running,
            detail: format!("running in Slurm as job {}", tracked.slurm_id),
            at_ms: Some(wall_ms().saturating_sub(ran_ms.saturating_add(tracked.ran_before_seen_ms))),
            started_ms: None,
        };
        match platform.report_state(id, report).await {
            Ok(()) => tracked.started = true,
            Err(e) if away(&e) => return false,
            Err(e) => {
                // Not this pool's job any more (failed over while the agent was away):
                // stop the Slurm copy so it does not run twice.
                tracing::warn!(job_id = id, error = %e, "the platform refused the start; cancelling in Slurm");
                let _ = cli.cancel(tracked.slurm_id).await;
                tracked.started = true;
                tracked.cancelled = true;
            }
        }
    }
    let path = tracked.output.clone();
    let ended = tracked.ending.is_some();
    if tracked.seen_running.is_some() && !send_lines(platform, id, &path, &mut tracked.offset, ended).await {
        return false;
    }
    let Some(ending) = tracked.ending.as_mut() else { return false };
    if let Some(usage) = ending.usage.clone() {
        match platform.report_usage(usage.clone()).await {
            Ok(()) => ending.usage = None,
            Err(e) if away(&e) => return false,
            Err(e) => {
                tracing::error!(job_id = id, event_id = %usage.event_id, error = %e, "the platform refused usage");
                ending.usage = None;
            }
        }
    }
    if let Some(state) = ending.state.clone() {
        match platform.report_state(id, state).await {
            Ok(()) => ending.state = None,
            Err(e) if away(&e) => return false,
            Err(e) => {
                tracing::warn!(job_id = id, error = %e, "the platform refused the final state");
                ending.state = None;
            }
        }
    }
    true
}

/// The state to report for a job that ended in Slurm (`None`: the platform cancelled it and
/// knows).
fn final_state(job: &SlurmJob, cancelled_by_platform: bool) -> Option<StateReport> {
    let reason = job.reason.as_deref().map_or_else(String::new, |r| format!(" ({r})"));
    let exit = job.exit_code.map_or_else(String::new, |c| format!(", exit code {c}"));
    match job.state {
        SlurmState::Completed => {
            Some(StateReport::now(RunState::Succeeded, format!("Slurm job {}: COMPLETED{exit}", job.id)))
        }
        SlurmState::Failed => {
            Some(StateReport::now(RunState::Failed, format!("Slurm job {}: {}{reason}{exit}", job.id, job.state_text)))
        }
        SlurmState::Cancelled if cancelled_by_platform => None,
        SlurmState::Cancelled => {
            Some(StateReport::now(RunState::Failed, format!("Slurm job {} was cancelled in Slurm{reason}", job.id)))
        }
        SlurmState::Pending | SlurmState::Running => None,
    }
}

/// How often the node list goes with a heartbeat when it has not changed (a restarted platform
/// has it again within this).
pub const NODES_EVERY: Duration = Duration::from_secs(60);

/// The nodes as the heartbeat lists them (cards: the GRES of `cards`), bounded as the platform
/// takes them: at most [`NODES_MAX`] nodes, names of at most 128 bytes, 64 cards.
pub fn node_reports(nodes: &[SlurmNode], cards: &[super::site::Gres]) -> Vec<NodeReport> {
    nodes
        .iter()
        .take(NODES_MAX)
        .map(|node| {
            let mut name: String = node.name.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
            truncate_on_char(&mut name, 128);
            NodeReport {
                name,
                cards: u32::try_from(cards_in(&node.gres, cards)).unwrap_or(u32::MAX).min(64),
                cpus: u32::try_from(node.cpus).unwrap_or(u32::MAX).min(65_536),
                memory_mb: node.memory_mb.min(1 << 40),
                usable: node.usable,
            }
        })
        .collect()
}

/// The pool's capacity from its nodes (cards: the GRES of `cards`).
pub fn capacity(nodes: &[SlurmNode], cards: &[super::site::Gres]) -> Capacity {
    let mut c = Capacity::default();
    for node in nodes {
        let cards = cards_in(&node.gres, cards);
        c.nodes += 1;
        c.cpus += node.cpus;
        c.memory_mb += node.memory_mb;
        c.gpus += cards;
        if node.usable {
            c.nodes_usable += 1;
            c.gpus_usable += cards;
        }
    }
    c
}

/// Where Slurm writes a job's output (`sbatch` is given `<dir>/<job name>/<job name>-%j.out`).
pub fn output_path(dir: &Path, job_name: &str, slurm_id: u64) -> PathBuf {
    dir.join(job_name).join(format!("{job_name}-{slurm_id}.out"))
}

/// Makes a job's directory, readable and writable by the user it runs as alone (mode 0700,
/// owned by `user` when the agent runs jobs as another user). The directory above it is left
/// traversable but not listable (0711), so no job learns the others' names.
pub fn job_dir(dir: &Path, user: Option<&UnixUser>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
        if std::fs::metadata(parent)?.permissions().mode() & 0o777 != 0o711 {
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711))?;
        }
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    if let Some(user) = user {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))?;
        // The job's user must be able to reach its directory: every directory above it must let
        // others pass (a 0700 home or data directory on the way is a set-up mistake).
        for above in dir.ancestors().skip(1) {
            let mode = std::fs::metadata(above)?.permissions().mode();
            if mode & 0o001 == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{} (mode {:o}) does not let other users through, so user {} cannot reach its job's directory",
                        above.display(),
                        mode & 0o777,
                        user.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Which part of the site's configuration a refusal of `sbatch` names (`None`: the job's own
/// request): an account, a QOS, a GRES or a partition Slurm does not know or lets no one use.
pub fn site_refusal(reason: &str) -> Option<&'static str> {
    let lower = reason.to_ascii_lowercase();
    [
        ("invalid account", "account"),
        ("invalid qos", "QOS"),
        ("invalid generic resource", "GRES"),
        ("invalid gres", "GRES"),
        ("invalid partition", "partition"),
        ("not allowed to use", "partition or account"),
        ("user's group not permitted", "partition"),
    ]
    .into_iter()
    .find(|(words, _)| lower.contains(words))
    .map(|(_, what)| what)
}

/// One line of a job's output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputLine {
    /// The byte offset it starts at.
    pub at: u64,
    /// Its text, ending in a newline.
    pub text: String,
    /// Bytes of the file it covers.
    pub len: u64,
}

/// The complete lines of `path` after `offset` (and, when `ended`, a last line without a newline),
/// at most [`LINES_PER_BATCH`] in [`BYTES_PER_BATCH`]; a line longer than [`LOG_LINE_MAX`] bytes
/// is sent in pieces.
pub fn read_lines(path: &Path, offset: u64, ended: bool) -> std::io::Result<Vec<OutputLine>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let window = BYTES_PER_BATCH.max(LOG_LINE_MAX + 1);
    let mut bytes = Vec::new();
    file.take(window as u64).read_to_end(&mut bytes)?;
    // The window reached the end of the file: a last line without a newline is whole once the
    // job has ended (otherwise it was only cut by the window).
    let at_end = bytes.len() < window;
    let mut lines = Vec::new();
    let mut start = 0;
    while lines.len() < LINES_PER_BATCH && start < bytes.len() {
        let rest = &bytes[start..];
        let end = match rest.iter().take(LOG_LINE_MAX + 1).position(|&b| b == b'\n') {
            Some(i) => start + i + 1,
            None if rest.len() > LOG_LINE_MAX => start + LOG_LINE_MAX,
            None if ended && at_end => bytes.len(),
            None => break,
        };
        let text = crate::backend::clean_line(&bytes[start..end]);
        lines.push(OutputLine { at: offset + start as u64, text, len: (end - start) as u64 });
        start = end;
    }
    Ok(lines)
}

/// Sends new output lines as chunks numbered by byte offset + 1 (so a resend after a restart is
/// stored once), up to [`LINES_PER_BATCH`] lines a request and [`BYTES_PER_POLL`] a poll; whether
/// the platform took all that was due (for an ended job: the whole file).
async fn send_lines<P: Platform>(platform: &P, id: i64, path: &Path, offset: &mut u64, ended: bool) -> bool {
    let mut sent = 0u64;
    while sent < BYTES_PER_POLL {
        let lines = match read_lines(path, *offset, ended) {
            Ok(lines) => lines,
            Err(e) => {
                tracing::warn!(job_id = id, path = %path.display(), error = %e, "cannot read the job's output");
                return true;
            }
        };
        let Some(last) = lines.last() else { break };
        let next = last.at + last.len;
        let chunks: Vec<LogChunk> = lines
            .into_iter()
            .map(|line| LogChunk { seq: i64::try_from(line.at).unwrap_or(i64::MAX - 1) + 1, chunk: line.text })
            .collect();
        match platform.report_logs(id, chunks).await {
            Ok(()) => {}
            Err(e) if away(&e) => return false,
            Err(e) => tracing::warn!(job_id = id, error = %e, "the platform refused a batch of log lines"),
        }
        sent += next - *offset;
        *offset = next;
    }
    !ended || *offset >= std::fs::metadata(path).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::parse_job;

    #[test]
    fn output_is_read_in_whole_lines_by_offset() {
        let dir = std::env::temp_dir().join(format!("suanwang-agent-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        std::fs::write(&path, "one\ntwo\npart").unwrap();
        let lines = read_lines(&path, 0, false).unwrap();
        let texts: Vec<_> = lines.iter().map(|l| (l.at, l.text.as_str(), l.len)).collect();
        assert_eq!(texts, [(0, "one\n", 4), (4, "two\n", 4)], "a partial line waits");
        assert_eq!(read_lines(&path, 8, false).unwrap(), []);
        let last = read_lines(&path, 8, true).unwrap();
        assert_eq!((last[0].at, last[0].text.as_str(), last[0].len), (8, "part\n", 4), "at the end it goes");
        let long = "x".repeat(LOG_LINE_MAX + 10);
        std::fs::write(&path, format!("{long}\n")).unwrap();
        let pieces = read_lines(&path, 0, false).unwrap();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].len, LOG_LINE_MAX as u64);
        assert_eq!(pieces[1].at, LOG_LINE_MAX as u64);
        assert!(read_lines(&dir.join("missing"), 0, true).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn orphans_are_this_agents_untracked_unwanted_live_jobs() {
        let tag = owner_tag("c", Some("gpu"));
        let job = |id: u64, name: &str, state: &str, comment: &str| {
            parse_job(&format!("JobId={id} JobName={name} JobState={state} Comment={comment}")).unwrap()
        };
        let jobs = vec![
            job(1, "sw-10-5", "RUNNING", &tag),               // cancelled while the agent was away
            job(2, "sw-11-5", "PENDING", &tag),               // still placed here: wanted
            job(3, "sw-12-5", "RUNNING", &tag),               // followed
            job(4, "sw-12-5", "RUNNING", &tag),               // a second copy of a followed job
            job(5, "sw-13-5", "RUNNING", "suanwang:c:other"), // another pool's
            job(6, "sw-14-5", "RUNNING", "(null)"),           // untagged (submitted before tags)
            job(7, "sw-15-5", "COMPLETED", &tag),             // ended
            job(8, "training", "RUNNING", &tag),              // not a platform job's name
            job(9, "sw-16-5", "RUNNING", &tag),               // already reported
        ];
        let work = Work {
            start: Vec::new(),
            stop: Vec::new(),
            running: vec![JobRef { id: 11, created_ms: 5 }, JobRef { id: 12, created_ms: 5 }],
            version: 1,
        };
        let tracked = HashMap::from([(12, Tracked::new(3, "sw-12-5".to_owned(), PathBuf::from("/o")))]);
        let done = HashSet::from([9]);
        let found: Vec<u64> =
            orphans(&jobs, &work, &tracked, &done, &tag, &HashSet::new()).iter().map(|j| j.id).collect();
        assert_eq!(found, [1, 4]);
        // A platform user's jobs are judged whatever their tag or name: one the platform did
        // not submit is cancelled, a wanted one is left to be adopted.
        let listed = |line: &str| crate::slurm::parse_listed(line).unwrap();
        let tenant_jobs = vec![
            listed("20|RUNNING|None|0:05|2026-12-07T20:00:00|1|sw-acme|mine|(null)"),
            listed("21|PENDING|None|0:00|N/A|1|sw-acme|sw-11-5|(null)"),
            listed("22|RUNNING|None|0:05|2026-12-07T20:00:00|1|someone|theirs|(null)"),
            // Another pool's agent on the same controller runs acme's jobs too.
            listed("23|RUNNING|None|0:05|2026-12-07T20:00:00|1|sw-acme|sw-40-5|suanwang:c:npu"),
        ];
        let users = HashSet::from(["sw-acme"]);
        let found: Vec<u64> =
            orphans(&tenant_jobs, &work, &tracked, &done, &tag, &users).iter().map(|j| j.id).collect();
        assert_eq!(found, [20]);
        assert_eq!(owner_tag("my cluster", None), "suanwang:my_cluster:default");
    }

    #[test]
    fn endings_carry_slurms_words() {
        let job = |line: &str| parse_job(line).unwrap();
        let done = final_state(&job("JobId=5 JobState=COMPLETED ExitCode=0:0"), false).unwrap();
        assert_eq!((done.state, done.detail.as_str()), (RunState::Succeeded, "Slurm job 5: COMPLETED, exit code 0"));
        let failed = final_state(&job("JobId=6 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0"), false).unwrap();
        assert_eq!(failed.detail, "Slurm job 6: FAILED (NonZeroExitCode), exit code 3");
        let lost = final_state(&job("JobId=7 JobState=NODE_FAIL Reason=NodeDown"), false).unwrap();
        assert_eq!((lost.state, lost.detail.as_str()), (RunState::Failed, "Slurm job 7: NODE_FAIL (NodeDown)"));
        assert_eq!(final_state(&job("JobId=8 JobState=CANCELLED"), true), None, "the platform cancelled it");
        let admin = final_state(&job("JobId=8 JobState=CANCELLED"), false).unwrap();
        assert_eq!(admin.state, RunState::Failed, "cancelled by Slurm's administrator");
        assert_eq!(final_state(&job("JobId=9 JobState=RUNNING"), false), None);
    }

    #[test]
    fn capacity_counts_usable_nodes() {
        let nodes = crate::slurm::parse_nodes("a 8 1000 gpu:sim:4 idle\nb 8 1000 gpu:sim:4 drained\n").unwrap();
        let c = capacity(&nodes, &crate::slurm::gpu_only());
        assert_eq!((c.nodes, c.nodes_usable, c.cpus, c.memory_mb, c.gpus, c.gpus_usable), (2, 1, 16, 2000, 8, 4));
        // NPUs count where the site file names them.
        let nodes = crate::slurm::parse_nodes("n 192 1000 npu:910b:8(S:0-1) idle\n").unwrap();
        assert_eq!(capacity(&nodes, &crate::slurm::gpu_only()).gpus, 0);
        assert_eq!(capacity(&nodes, &[crate::slurm::site::parse_gres("npu").unwrap()]).gpus, 8);
        // Each node as the heartbeat lists it, bounded as the platform takes it.
        let nodes = crate::slurm::parse_nodes("a 8 1000 gpu:sim:4 idle\nb 99999 9 gpu:99 drained\n").unwrap();
        let reports = node_reports(&nodes, &crate::slurm::gpu_only());
        assert_eq!(reports[0], NodeReport { name: "a".into(), cards: 4, cpus: 8, memory_mb: 1000, usable: true });
        assert_eq!((reports[1].cards, reports[1].cpus, reports[1].usable), (64, 65_536, false));
    }

    #[test]
    fn refusals_for_the_sites_configuration_are_told_apart() {
        // Slurm 22.05's own words.
        let account =
            "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified";
        assert_eq!(site_refusal(account), Some("account"));
        assert_eq!(site_refusal("sbatch: error: Batch job submission failed: Invalid qos specification"), Some("QOS"));
        let gres = "sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification";
        assert_eq!(site_refusal(gres), Some("GRES"));
        assert_eq!(site_refusal("sbatch: error: invalid partition specified: nope"), Some("partition"));
        let own = "sbatch: error: Batch job submission failed: Requested node configuration is not available";
        assert_eq!(site_refusal(own), None);
    }

    #[test]
    fn a_jobs_directory_is_its_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("suanwang-agent-dirs-{}", std::process::id()));
        let dir = root.join("sw-1-2");
        job_dir(&dir, None).unwrap();
        job_dir(&dir, None).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o711);
        assert_eq!(output_path(&root, "sw-1-2", 9), dir.join("sw-1-2-9.out"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
