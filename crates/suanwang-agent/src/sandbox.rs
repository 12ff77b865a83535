//! How a `local` pool keeps a tenant's job away from everything else on the machine.
//!
//! Each job gets:
//! - its own scratch directory (mode 0700, removed when the job ends), which is its working
//!   directory, `HOME` and `TMPDIR`;
//! - a clean environment: `PATH`, `LANG`, `HOME`, `TMPDIR`, `SUANWANG_JOB_ID` and what the job's
//!   `env` names, never the server's or agent's (no tokens, no database URL);
//! - optionally another user account (`--run-as-user`), which file permissions then separate;
//! - a Landlock sandbox (Linux 5.13 and later, no privileges needed): it may read and run the
//!   system's directories (`/usr`, `/etc`, …, never one that holds a protected path such as the
//!   data directory), write only its own directory, not signal or trace processes outside its
//!   sandbox (so not the server, and not `/proc/PID/environ` of the server), and not reach
//!   abstract Unix sockets outside it.
//!
//! Landlock is applied by the `suanwang` binary itself (`suanwang sandbox-exec DIR -- PROGRAM`,
//! the [`Isolation::launcher`]), which restricts itself and then replaces itself with the job, so
//! no unsafe code runs between fork and exec. Without a launcher (tests of the library) jobs get
//! everything but Landlock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// System directories a job may read and run from (those that exist).
pub const READABLE: &[&str] =
    &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys", "/dev"];

/// Devices a job may also write.
pub const WRITABLE_DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];

/// The `PATH` a job gets when the agent has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The account jobs run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// User name (or the number given).
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl RunAs {
    /// Looks up a user by name in `/etc/passwd`, or takes `UID[:GID]` as numbers.
    pub fn lookup(name: &str) -> Result<RunAs, String> {
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            let (uid, gid) = name.split_once(':').unwrap_or((name, name));
            let number = |n: &str| n.parse().map_err(|_| format!("{name:?} is not a user name or UID[:GID]"));
            return Ok(RunAs { name: name.to_owned(), uid: number(uid)?, gid: number(gid)? });
        }
        let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
        passwd
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(':');
                let user = fields.next()?;
                let _password = fields.next()?;
                let uid = fields.next()?.parse().ok()?;
                let gid = fields.next()?.parse().ok()?;
                (user == name).then(|| RunAs { name: name.to_owned(), uid, gid })
            })
            .next()
            .ok_or_else(|| format!("no user {name:?} on this machine"))
    }
}

/// How many scratch directory names one job tries before giving up.
const JOB_DIR_ATTEMPTS: u32 = 1000;

/// How a `local` agent isolates its jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// The `suanwang` binary, run as `sandbox-exec` to apply Landlock (none: no Landlock).
    pub launcher: Option<PathBuf>,
    /// Where the jobs' scratch directories are made (created 0711 if missing).
    pub jobs_dir: PathBuf,
    /// Run jobs as this account instead of the agent's.
    pub run_as: Option<RunAs>,
    /// Paths no job may read: a system directory holding one is not opened to jobs.
    pub protect: Vec<PathBuf>,
}

impl Isolation {
    /// No Landlock, the agent's own account, scratch directories under the system's temporary
    /// directory: what library tests use.
    pub fn basic() -> Self {
        Isolation {
            launcher: None,
            jobs_dir: std::env::temp_dir().join(format!("suanwang-jobs-{}", std::process::id())),
            run_as: None,
            protect: Vec::new(),
        }
    }

    /// Makes the scratch directory of job `id` (0700, owned by the job's account) and returns it.
    pub fn make_job_dir(&self, id: i64) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !self.jobs_dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o711).create(&self.jobs_dir)?;
            std::fs::set_permissions(&self.jobs_dir, std::fs::Permissions::from_mode(0o711))?;
        }
        // A directory of the same name may be left by a run that was killed, or belong to a run
        // still going (another agent sharing `--jobs-dir`): never reuse or remove it, make the
        // next free name. `create` fails on an existing name, so two runs never share one.
        for attempt in 0..JOB_DIR_ATTEMPTS {
            let name = if attempt == 0 { format!("job-{id}") } else { format!("job-{id}.{attempt}") };
            let dir = self.jobs_dir.join(name);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    if let Some(user) = &self.run_as {
                        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))?;
                    }
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(format!(
            "{JOB_DIR_ATTEMPTS} directories for job {id} already exist in {}",
            self.jobs_dir.display()
        )))
    }

    /// The environment a job starts with: nothing of the agent's but `PATH` and `LANG`.
    pub fn environment(&self, id: i64, dir: &Path, named: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned()));
        env.insert("LANG".to_owned(), std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".to_owned()));
        env.insert("HOME".to_owned(), dir.display().to_string());
        env.insert("TMPDIR".to_owned(), dir.display().to_string());
        env.insert("SUANWANG_JOB_ID".to_owned(), id.to_string());
        for (name, value) in named {
            env.insert(name.clone(), value.clone());
        }
        env
    }
}

/// How well the sandbox holds on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Every restriction asked for holds.
    Full,
    /// This kernel's Landlock holds only some of them.
    Partial,
    /// This kernel has no Landlock: only the clean environment, the directory and the account hold.
    None,
}

impl Enforcement {
    /// `full`, `partial` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Enforcement::Full => "full",
            Enforcement::Partial => "partial",
            Enforcement::None => "none",
        }
    }
}

impl Isolation {
    /// How well the launcher's sandbox holds on this kernel (it runs `sandbox-exec --probe`).
    /// Without a launcher: [`Enforcement::None`].
    pub fn probe(&self) -> Result<Enforcement, String> {
        let Some(launcher) = &self.launcher else { return Ok(Enforcement::None) };
        let output = std::process::Command::new(launcher)
            .args(["sandbox-exec", "--probe", "/"])
            .env_clear()
            .output()
            .map_err(|e| format!("cannot run {}: {e}", launcher.display()))?;
        match String::from_utf8_lossy(&output.stdout).trim() {
            "full" => Ok(Enforcement::Full),
            "partial" => Ok(Enforcement::Partial),
            "none" => Ok(Enforcement::None),
            _ => Err(format!(
                "{} sandbox-exec --probe failed: {}",
                launcher.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }
}

/// Restricts this process (and what it executes next) to `dir` as described in the module
/// documentation. Called by `suanwang sandbox-exec` just before it executes the job.
pub fn restrict_self(dir: &Path, protect: &[PathBuf]) -> Result<Enforcement, String> {
    use landlock::{
        ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
    };
    let abi = ABI::V6;
    let readable: Vec<&str> =
        READABLE.iter().copied().filter(|root| !protect.iter().any(|p| p.starts_with(root))).collect();
    let fail = |e: landlock::RulesetError| format!("cannot set up the sandbox: {e}");
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(fail)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(fail)?
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(&readable, AccessFs::from_read(abi)))
        .map_err(fail)?
        .add_rules(path_beneath_rules(WRITABLE_DEVICES, AccessFs::from_read(abi) | AccessFs::WriteFile))
        .map_err(fail)?
        .add_rules(path_beneath_rules([dir], AccessFs::from_all(abi)))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Full,
        RulesetStatus::PartiallyEnforced => Enforcement::Partial,
        _ => Enforcement::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_by_name_or_number() {
        assert_eq!(RunAs::lookup("root").map(|u| (u.uid, u.gid)), Ok((0, 0)));
        assert_eq!(RunAs::lookup("65534:65534").map(|u| (u.uid, u.gid)), Ok((65534, 65534)));
        assert_eq!(RunAs::lookup("1000").map(|u| (u.uid, u.gid)), Ok((1000, 1000)));
        assert!(RunAs::lookup("no-such-user-here").is_err());
        assert!(RunAs::lookup("12x").is_err());
    }

    #[test]
    fn the_environment_holds_only_what_a_job_needs() {
        let isolation = Isolation::basic();
        let named = BTreeMap::from([("EPOCHS".to_owned(), "3".to_owned())]);
        let env = isolation.environment(7, Path::new("/scratch/job-7"), &named);
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(names, ["EPOCHS", "HOME", "LANG", "PATH", "SUANWANG_JOB_ID", "TMPDIR"]);
        assert_eq!(env["HOME"], "/scratch/job-7");
    }

    #[test]
    fn job_directories_are_private_start_empty_and_are_never_shared() {
        use std::os::unix::fs::PermissionsExt;
        let isolation = Isolation { jobs_dir: Isolation::basic().jobs_dir.join("dirs"), ..Isolation::basic() };
        let dir = isolation.make_job_dir(3).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("left"), "x").unwrap_or_else(|e| panic!("{e}"));
        let again = isolation.make_job_dir(3).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(again, dir, "a directory left by another run is never reused");
        assert!(!again.join("left").exists() && dir.join("left").exists());
        let mode = std::fs::metadata(&again).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode, 0o700);
        let _ = std::fs::remove_dir_all(&isolation.jobs_dir);
    }
}
