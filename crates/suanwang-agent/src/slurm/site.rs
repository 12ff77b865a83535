//! What a Slurm centre configures for the platform's jobs: the site file
//! (`suanwang agent --backend slurm --slurm-site FILE`, TOML). Which Slurm account, QOS and
//! Unix user each tenant's jobs run under, and which GRES each accelerator model is. Plain data,
//! checked when the agent starts; the agent resolves the Unix users once ([`UnixUser::lookup`]).
//!
//! ```toml
//! account = "suanwang"        # tenants not listed below (none: Slurm's default account)
//! qos = "normal"              # every job's QOS unless its tenant names one
//! unlisted_tenants = "run"    # or "refuse": only tenants listed below run here
//!
//! [gres]                      # accelerator model -> GRES name[:type]; unlisted models: "gpu"
//! "A100-80G" = "gpu:a100"
//! "Ascend910B" = "npu:910b"
//!
//! [tenants.acme]
//! account = "acme"
//! user = "sw-acme"            # Unix user its jobs run as (the agent must run as root)
//! qos = "high"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Tenants one site file may list.
pub const TENANTS_MAX: usize = 10_000;

/// Models one site file may map to GRES.
pub const GRES_MAX: usize = 1_000;

/// Longest Slurm name (account, QOS, user, GRES name or type) the file may hold.
pub const NAME_MAX: usize = 64;

/// The GRES of models the site file does not map (Slurm's usual name for accelerator cards).
pub const DEFAULT_GRES: &str = "gpu";

/// A site file as read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSite {
    /// The account of tenants not listed (`None`: Slurm's default account of the submitting user).
    #[serde(default)]
    pub account: Option<String>,
    /// The QOS of every job whose tenant names none (`None`: the account's default QOS).
    #[serde(default)]
    pub qos: Option<String>,
    /// What happens to jobs of tenants not listed in `tenants`.
    #[serde(default)]
    pub unlisted_tenants: Unlisted,
    /// Accelerator model (as the federation file names it) to GRES, `name` or `name:type`.
    #[serde(default)]
    pub gres: BTreeMap<String, String>,
    /// Tenant name (as the platform knows it) to what its jobs run as.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSite>,
}

/// Jobs of tenants the site file does not list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlisted {
    /// They run under the file's `account` and `qos`, as the agent's own Unix user.
    #[default]
    Run,
    /// They are refused (fail with a message that says so).
    Refuse,
}

/// One tenant's mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSite {
    /// Its Slurm account (`None`: the file's `account`).
    #[serde(default)]
    pub account: Option<String>,
    /// Its QOS (`None`: the file's `qos`).
    #[serde(default)]
    pub qos: Option<String>,
    /// The Unix user its jobs run as (`None`: the agent's own user, shared by every unmapped
    /// tenant).
    #[serde(default)]
    pub user: Option<String>,
}

/// Why a site file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteError(pub String);

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GRES as `sbatch` names it: `gpu`, or `gpu:a100`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gres {
    /// Its name (`gpu`, `npu`, `mlu`).
    pub name: String,
    /// Its type (`a100`, `910b`), when typed.
    pub kind: Option<String>,
}

impl Gres {
    /// Whether a GRES entry of `name` and `kind` (Slurm's words) is of this GRES: the same name,
    /// and the same type where this one is typed.
    pub fn matches(&self, name: &str, kind: Option<&str>) -> bool {
        self.name == name && self.kind.as_deref().is_none_or(|k| kind == Some(k))
    }

    /// `gpu` or `gpu:a100`.
    pub fn spec(&self) -> String {
        match &self.kind {
            Some(kind) => format!("{}:{kind}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What one job runs as: account, QOS, Unix user (`None`: the agent's own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobSite {
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// The Unix user `sbatch` runs as.
    pub user: Option<String>,
}

impl SlurmSite {
    /// Reads and checks a site file's text.
    pub fn parse(text: &str) -> Result<SlurmSite, SiteError> {
        let site: SlurmSite = toml::from_str(text).map_err(|e| SiteError(e.message().to_owned()))?;
        site.check()?;
        Ok(site)
    }

    /// Every name is a Slurm name; the lists are bounded.
    pub fn check(&self) -> Result<(), SiteError> {
        if self.tenants.len() > TENANTS_MAX {
            return Err(SiteError(format!("at most {TENANTS_MAX} tenants, not {}", self.tenants.len())));
        }
        if self.gres.len() > GRES_MAX {
            return Err(SiteError(format!("at most {GRES_MAX} models in [gres], not {}", self.gres.len())));
        }
        check_name("account", self.account.as_deref())?;
        check_name("qos", self.qos.as_deref())?;
        for (model, gres) in &self.gres {
            parse_gres(gres).map_err(|e| SiteError(format!("[gres] {model:?}: {}", e.0)))?;
        }
        for (tenant, t) in &self.tenants {
            let at = |e: SiteError| SiteError(format!("[tenants.{tenant}] {}", e.0));
            check_name("account", t.account.as_deref()).map_err(at)?;
            check_name("qos", t.qos.as_deref()).map_err(at)?;
            check_name("user", t.user.as_deref()).map_err(at)?;
        }
        Ok(())
    }

    /// What a job of `tenant` runs as; an error (for the job's failure) when the file refuses
    /// unlisted tenants and this one is not listed.
    pub fn for_tenant(&self, tenant: Option<&str>) -> Result<JobSite, SiteError> {
        match tenant.and_then(|t| self.tenants.get(t)) {
            Some(t) => Ok(JobSite {
                account: t.account.clone().or_else(|| self.account.clone()),
                qos: t.qos.clone().or_else(|| self.qos.clone()),
                user: t.user.clone(),
            }),
            None if self.unlisted_tenants == Unlisted::Refuse => Err(SiteError(format!(
                "this Slurm pool runs only the tenants its provider lists, and tenant {} is not one of them",
                tenant.unwrap_or("(unknown)")
            ))),
            None => Ok(JobSite { account: self.account.clone(), qos: self.qos.clone(), user: None }),
        }
    }

    /// The GRES of a model (`None`: CPU-only work).
    pub fn gres_of(&self, model: Option<&str>) -> Gres {
        model
            .and_then(|m| self.gres.get(m))
            .and_then(|g| parse_gres(g).ok())
            .unwrap_or_else(|| Gres { name: DEFAULT_GRES.to_owned(), kind: None })
    }

    /// The pool's card GRES (counted as cards in usage and capacity): those `[gres]` maps
    /// models to, or every `gpu` when it maps none.
    pub fn cards(&self) -> Vec<Gres> {
        let mut cards: Vec<Gres> = self.gres.values().filter_map(|g| parse_gres(g).ok()).collect();
        if cards.is_empty() {
            cards.push(Gres { name: DEFAULT_GRES.to_owned(), kind: None });
        }
        cards.sort_by(|a, b| (&a.name, &a.kind).cmp(&(&b.name, &b.kind)));
        cards.dedup();
        cards
    }

    /// The Unix users the file names (each must exist where the agent runs).
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self.tenants.values().filter_map(|t| t.user.clone()).collect();
        users.sort();
        users.dedup();
        users
    }
}

/// `gpu` or `gpu:a100` (a count is the job's, not the file's).
pub fn parse_gres(text: &str) -> Result<Gres, SiteError> {
    let mut parts = text.split(':');
    let name = parts.next().unwrap_or("");
    let kind = parts.next();
    if parts.next().is_some() {
        return Err(SiteError(format!("{text:?} is not a GRES as name or name:type (no count)")));
    }
    check_name("GRES name", Some(name))?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(SiteError(format!("GRES name {name:?} cannot start with a digit")));
    }
    check_name("GRES type", kind)?;
    Ok(Gres { name: name.to_owned(), kind: kind.map(str::to_owned) })
}

/// A name Slurm takes in an option: 1–[`NAME_MAX`] of `[A-Za-z0-9_.-]`, not starting with `-`.
fn check_name(what: &str, name: Option<&str>) -> Result<(), SiteError> {
    let Some(name) = name else { return Ok(()) };
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SiteError(format!(
            "{what} {name:?} is not a Slurm name (1 to {NAME_MAX} of letters, digits, '_', '.', '-')"
        )))
    }
}

/// A Unix user as the agent runs `sbatch` under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixUser {
    /// Name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

impl UnixUser {
    /// Reads a user from a `passwd` line (`name:x:uid:gid:gecos:home:shell`).
    pub fn from_passwd(line: &str) -> Option<UnixUser> {
        let fields: Vec<&str> = line.trim_end().split(':').collect();
        let [name, _, uid, gid, _, home, _] = fields.as_slice() else { return None };
        Some(UnixUser { name: (*name).to_owned(), uid: uid.parse().ok()?, gid: gid.parse().ok()?, home: home.into() })
    }

    /// Looks a user up with `getent passwd` (files, LDAP, SSSD: whatever the node uses). A user
    /// with uid 0 is refused: a tenant's jobs never run as root.
    pub fn lookup(name: &str) -> Result<UnixUser, SiteError> {
        let output = std::process::Command::new("getent")
            .args(["passwd", name])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| SiteError(format!("cannot run getent to look up user {name}: {e}")))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let user =
            text.lines().filter_map(UnixUser::from_passwd).find(|u| u.name == name).ok_or_else(|| {
                SiteError(format!("there is no Unix user {name} on this machine (getent passwd {name})"))
            })?;
        if user.uid == 0 {
            return Err(SiteError(format!("user {name} is root: a tenant's jobs never run as root")));
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        account = "suanwang"
        qos = "normal"

        [gres]
        "A100-80G" = "gpu:a100"
        "Ascend910B" = "npu:910b"

        [tenants.acme]
        account = "acme"
        user = "sw-acme"
        qos = "high"

        [tenants.beta]
        account = "beta"
    "#;

    #[test]
    fn tenants_map_to_accounts_users_and_qos() {
        let site = SlurmSite::parse(EXAMPLE).unwrap();
        let acme = site.for_tenant(Some("acme")).unwrap();
        assert_eq!(
            acme,
            JobSite { account: Some("acme".into()), qos: Some("high".into()), user: Some("sw-acme".into()) }
        );
        let beta = site.for_tenant(Some("beta")).unwrap();
        assert_eq!(beta, JobSite { account: Some("beta".into()), qos: Some("normal".into()), user: None });
        let other = site.for_tenant(Some("other")).unwrap();
        assert_eq!(other, JobSite { account: Some("suanwang".into()), qos: Some("normal".into()), user: None });
        assert_eq!(site.users(), ["sw-acme"]);
        let strict = SlurmSite { unlisted_tenants: Unlisted::Refuse, ..site };
        assert!(strict.for_tenant(Some("other")).unwrap_err().0.contains("tenant other is not one of them"));
        assert!(strict.for_tenant(None).is_err());
        assert!(strict.for_tenant(Some("acme")).is_ok());
        assert_eq!(SlurmSite::default().for_tenant(Some("x")).unwrap(), JobSite::default());
    }

    #[test]
    fn models_map_to_gres() {
        let site = SlurmSite::parse(EXAMPLE).unwrap();
        assert_eq!(site.gres_of(Some("A100-80G")).spec(), "gpu:a100");
        assert_eq!(site.gres_of(Some("Ascend910B")).spec(), "npu:910b");
        assert_eq!(site.gres_of(Some("H800")).spec(), "gpu");
        assert_eq!(site.gres_of(None).spec(), "gpu");
        let cards: Vec<String> = site.cards().iter().map(Gres::spec).collect();
        assert_eq!(cards, ["gpu:a100", "npu:910b"]);
        assert_eq!(SlurmSite::default().cards()[0].spec(), "gpu");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        for (text, words) in [
            ("acount = \"x\"", "unknown field"),
            ("account = \"a b\"", "account \"a b\" is not a Slurm name"),
            ("account = \"--uid=0\"", "is not a Slurm name"),
            ("[gres]\nA100 = \"gpu:a100:8\"", "no count"),
            ("[gres]\nA100 = \"8\"", "cannot start with a digit"),
            ("[gres]\nA100 = \"\"", "GRES name \"\" is not"),
            ("[tenants.x]\nuser = \"a;rm\"", "[tenants.x] user"),
            ("unlisted_tenants = \"maybe\"", "unknown variant"),
        ] {
            let e = SlurmSite::parse(text).unwrap_err();
            assert!(e.0.contains(words), "{text:?}: {e}");
        }
        let long = format!("qos = \"{}\"", "q".repeat(NAME_MAX + 1));
        assert!(SlurmSite::parse(&long).is_err());
    }

    #[test]
    fn passwd_lines_parse() {
        let user = UnixUser::from_passwd("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n").unwrap();
        assert_eq!((user.uid, user.gid, user.home.to_str()), (65534, 65534, Some("/nonexistent")));
        assert_eq!(UnixUser::from_passwd("a:x:notanumber:1::/h:/bin/sh"), None);
        assert_eq!(UnixUser::from_passwd("short"), None);
        assert!(UnixUser::lookup("root").unwrap_err().0.contains("never run as root"));
        assert!(UnixUser::lookup("no-such-user-here").unwrap_err().0.contains("no Unix user"));
    }
}
