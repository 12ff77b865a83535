//! `serve`, `agent` and `audit verify`: the process edge of the control plane (runtime, data
//! directory, federation file, demo set-up, signals). The platform itself is `suanwang-server`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use suanwang_agent::backend::Backend;
use suanwang_agent::sandbox::{Enforcement, Isolation, RunAs};
use suanwang_api::admin::NewToken;
use suanwang_control::Control;
use suanwang_control::config::ControlConfig;
use suanwang_model::federation::{BackendKind, Federation};
use suanwang_store::audit::Verdict;
use suanwang_store::model::Write;
use suanwang_store::store::Store;

use crate::args::{
    AgentArgs, AuditHeadArgs, AuditVerifyArgs, BackendArg, Format, IsolationArgs, LogFormat, SandboxExecArgs, ServeArgs,
};
use crate::error::CliError;
use crate::output::print;

/// The Greater Bay Area model, shipped inside the binary so `serve` works from any directory.
const GREATER_BAY_AREA: &str = include_str!("../../../examples/federations/greater-bay-area.toml");

/// The demo federation: the Greater Bay Area model and a pool named `local` on this machine.
pub fn demo_federation_toml() -> String {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let memory_mib = memory_mib().unwrap_or(8192);
    format!(
        "{GREATER_BAY_AREA}
# --- Added by `suanwang serve` when no federation file is given ---

# This machine: its agent runs jobs as local processes (free of charge).
[[site]]
name = \"this-machine\"
city = \"Shenzhen\"
region = \"CN-GD\"
latitude_deg = 22.53
longitude_deg = 113.9

[[pool]]
name = \"local\"
site = \"this-machine\"
provider = \"this machine\"
backend = \"local\"
pue = 1.0
card_hour_fen = {{}}

[[pool.nodes]]
count = 1
accelerators_per_node = 0
cpu_milli = {}
memory_mib = {memory_mib}
",
        cores * 1000
    )
}

/// Total memory from /proc/meminfo (Linux), in MiB.
fn memory_mib() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
    u32::try_from(kib / 1024).ok()
}

/// The user's data folder for Suanwang: `$XDG_DATA_HOME/suanwang`, else
/// `~/.local/share/suanwang` (`~/Library/Application Support/suanwang` on macOS).
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("suanwang");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) if cfg!(target_os = "macos") => PathBuf::from(home).join("Library/Application Support/suanwang"),
        Some(home) => PathBuf::from(home).join(".local/share/suanwang"),
        None => PathBuf::from("suanwang-data"),
    }
}

/// Sends `tracing` events to standard error, filtered by `SUANWANG_LOG` (default `info`).
fn init_logging(format: LogFormat) -> Result<(), CliError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let spec = std::env::var("SUANWANG_LOG").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "info".to_owned());
    let filter: tracing_subscriber::filter::Targets = spec.parse().map_err(|e| {
        CliError::input(
            "invalid_log_filter",
            format!("SUANWANG_LOG={spec:?} is not a log filter (e.g. info,suanwang::http=debug): {e}"),
        )
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(true);
    let installed = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).try_init(),
    };
    // Already installed (a second call in one process) is harmless.
    drop(installed);
    Ok(())
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal("runtime", format!("cannot start the async runtime: {e}")))
}

pub(crate) async fn open_store(data_dir: &Path, database_url: Option<&str>) -> Result<Store, CliError> {
    match database_url {
        Some(url) => Store::open_postgres(url, None)
            .await
            .map_err(|e| CliError::input("database_unavailable", format!("cannot open the PostgreSQL database: {e}"))),
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                CliError::input("data_dir", format!("cannot create the data directory {}: {e}", data_dir.display()))
            })?;
            let path = data_dir.join("suanwang.db");
            let store = Store::open_sqlite(&path)
                .await
                .map_err(|e| CliError::input("database_unavailable", format!("cannot open {}: {e}", path.display())))?;
            make_private(data_dir)?;
            Ok(store)
        }
    }
}

/// The data directory 0700 and every file in it 0600: the database holds token hashes, tenants'
/// jobs and the books; `demo-tokens.json` holds tokens.
fn make_private(data_dir: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |path: &Path, e: std::io::Error| CliError::input("data_dir", format!("{}: {e}", path.display()));
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| fail(data_dir, e))?;
    for entry in std::fs::read_dir(data_dir).map_err(|e| fail(data_dir, e))? {
        let path = entry.map_err(|e| fail(data_dir, e))?.path();
        let mode = if path.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(|e| fail(&path, e))?;
    }
    Ok(())
}

/// How this process's `local` jobs are isolated: through this very binary's `sandbox-exec`.
fn isolation(args: &IsolationArgs, protect: Vec<PathBuf>) -> Result<Isolation, CliError> {
    let as_root = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata("/proc/self").map_err(|e| CliError::internal("sandbox", format!("/proc/self: {e}")))?,
    ) == 0;
    let run_as = match (&args.run_as_user, as_root) {
        (Some(user), _) => {
            let user =
                RunAs::lookup(user).map_err(|e| CliError::input("invalid_argument", format!("--run-as-user: {e}")))?;
            if user.uid == 0 {
                tracing::warn!("local jobs run as root (--run-as-user): a job can do anything on this machine");
            }
            Some(user).filter(|u| u.uid != 0 || !as_root)
        }
        (None, true) => {
            let nobody = RunAs::lookup("nobody").unwrap_or(RunAs { name: "nobody".to_owned(), uid: 65534, gid: 65534 });
            tracing::info!(
                uid = nobody.uid,
                "the server runs as root: local jobs run as nobody (--run-as-user to choose)"
            );
            Some(nobody)
        }
        (None, false) => None,
    };
    let launcher = std::env::current_exe()
        .map_err(|e| CliError::internal("sandbox", format!("cannot find this program's own path: {e}")))?;
    let jobs_dir = match &args.jobs_dir {
        Some(dir) => {
            std::path::absolute(dir).map_err(|e| CliError::input("invalid_argument", format!("--jobs-dir: {e}")))?
        }
        None => std::env::temp_dir().join(format!("suanwang-jobs-{}", std::process::id())),
    };
    if let Some(inside) = protect.iter().find(|p| jobs_dir.starts_with(p)) {
        return Err(CliError::input(
            "invalid_argument",
            format!("--jobs-dir must be outside {} (jobs may not see it)", inside.display()),
        ));
    }
    let isolation = Isolation { launcher: Some(launcher), jobs_dir, run_as, protect };
    match isolation.probe() {
        Ok(Enforcement::Full) => tracing::info!("local jobs run in a Landlock sandbox"),
        Ok(Enforcement::Partial) => tracing::warn!("this kernel's Landlock holds only part of the local jobs' sandbox"),
        Ok(Enforcement::None) => tracing::warn!(
            "this kernel has no Landlock: local jobs get a clean environment and their own directory, but can read \
             what this account can; use --run-as-user"
        ),
        Err(e) => return Err(CliError::internal("sandbox", e)),
    }
    Ok(isolation)
}

/// `suanwang sandbox-exec`: restricts itself, then becomes the job.
pub fn sandbox_exec(args: &SandboxExecArgs) -> Result<(), CliError> {
    let enforcement = suanwang_agent::sandbox::restrict_self(&args.dir, &args.protect)
        .map_err(|e| CliError::internal("sandbox", e))?;
    if args.probe {
        return print(&format!("{}\n", enforcement.name()));
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err(CliError::input("invalid_argument", "sandbox-exec needs a command after --"));
    };
    let mut command = std::process::Command::new(program);
    command.args(rest);
    if let (Some(uid), Some(gid)) = (args.uid, args.gid) {
        std::os::unix::process::CommandExt::uid(&mut command, uid);
        std::os::unix::process::CommandExt::gid(&mut command, gid);
    }
    let error = std::os::unix::process::CommandExt::exec(&mut command);
    Err(CliError::input("cannot_start", format!("cannot start {}: {error}", program.to_string_lossy())))
}

fn load_federation(path: Option<&Path>) -> Result<Federation, CliError> {
    let catalog = suanwang_formats::catalog::builtin();
    match path {
        Some(path) => {
            let text = crate::input::read_text(path)?;
            Ok(suanwang_formats::federation::parse(&path.display().to_string(), &text, &catalog)?)
        }
        None => Ok(suanwang_formats::federation::parse("the demo federation", &demo_federation_toml(), &catalog)?),
    }
}

/// The tokens `serve --demo` hands out, kept in the data directory so a restart shows them again.
#[derive(Debug, Serialize, Deserialize)]
struct DemoTokens {
    operator: String,
    tenant: String,
    auditor: String,
}

async fn demo_tokens(ctl: &Control, data_dir: &Path) -> Result<DemoTokens, CliError> {
    let path = data_dir.join("demo-tokens.json");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(tokens) = serde_json::from_str::<DemoTokens>(&text)
    {
        let mut valid = true;
        for token in [&tokens.operator, &tokens.tenant, &tokens.auditor] {
            valid &= ctl.store.principal(&suanwang_control::auth::hash_token(token)).await.ok().flatten().is_some();
        }
        if valid {
            return Ok(tokens);
        }
    }
    let fail = |e: suanwang_control::error::Error| {
        CliError::internal("demo", format!("cannot set up the demo: {}", e.message))
    };
    if ctl.store.tenant_by_name("demo").await.map_err(|e| CliError::internal("demo", e.to_string()))?.is_none() {
        let write = Write::CreateTenant {
            name: "demo".to_owned(),
            kind: suanwang_model::job::TenantKind::Startup,
            registration_city: "Shenzhen".to_owned(),
        };
        ctl.committer.write("demo", write).await.map_err(|e| fail(e.into()))?;
    }
    let token = |role: &str, tenant: Option<&str>| NewToken {
        role: role.to_owned(),
        tenant: tenant.map(str::to_owned),
        pool: None,
        program: None,
        label: format!("demo {role}"),
        ttl_seconds: None,
    };
    let operator =
        suanwang_control::admin::issue_token(ctl, "demo", token("operator", None)).await.map_err(fail)?.token;
    let tenant =
        suanwang_control::admin::issue_token(ctl, "demo", token("tenant", Some("demo"))).await.map_err(fail)?.token;
    let auditor = suanwang_control::admin::issue_token(ctl, "demo", token("auditor", None)).await.map_err(fail)?.token;
    let tokens = DemoTokens { operator, tenant, auditor };
    let text = serde_json::to_string_pretty(&tokens).map_err(|e| CliError::internal("demo", e.to_string()))?;
    write_private(&path, &text)?;
    Ok(tokens)
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).map_err(|e| CliError::internal("write_failed", format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| CliError::internal("write_failed", format!("{}: {e}", path.display())))
}

/// The dense FP16 TFLOPS of the reference card (`--reference-accelerator`).
fn reference_tflops(federation: &Federation, name: &str) -> Result<f64, CliError> {
    let catalog = federation.catalog();
    let id = catalog.resolve(name).map_err(|e| CliError::input(e.code(), format!("--reference-accelerator: {e}")))?;
    catalog.get(id).fp16_dense_tflops.ok_or_else(|| {
        CliError::input(
            "invalid_argument",
            format!("--reference-accelerator: {name} has no published FP16 figure to measure speeds against"),
        )
    })
}

/// `suanwang serve`.
pub fn serve(args: &ServeArgs) -> Result<(), CliError> {
    let started = Instant::now();
    init_logging(args.log_format)?;
    let federation = load_federation(args.federation.as_deref())?;
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    runtime()?.block_on(async {
        let store = open_store(&data_dir, args.database_url.as_deref()).await?;
        let mut config = ControlConfig {
            heartbeat_timeout: Duration::from_secs(args.heartbeat_timeout_s),
            cluster_failover_timeout: Duration::from_secs(
                args.cluster_failover_timeout_s.max(args.heartbeat_timeout_s),
            ),
            traces_dir: args.traces.clone(),
            ..ControlConfig::default()
        };
        let protect = if args.database_url.is_some() {
            Vec::new()
        } else {
            vec![std::path::absolute(&data_dir).unwrap_or(data_dir.clone())]
        };
        config.isolation = Arc::new(isolation(&args.isolation, protect)?);
        if let Some(url) = &args.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(CliError::input(
                "invalid_argument",
                format!("--public-url must be an http:// or https:// URL, not {url:?}"),
            ));
        }
        config.public_url.clone_from(&args.public_url);
        if let Some(policy) = args.policy {
            config.policy = policy;
        }
        // Every pool's agent simulates in process: no cluster has a queue of its own.
        config.cluster_queues = !args.demo;
        config.choice.reference_tflops = Some(reference_tflops(&federation, &args.reference_accelerator)?);
        config.default_framework = match args.default_framework.as_str() {
            "none" => None,
            name => {
                suanwang_formats::catalog::builtin_adaptation()
                    .models(name, federation.catalog())
                    .map_err(|e| CliError::input("invalid_argument", format!("--default-framework: {e}")))?;
                Some(name.to_owned())
            }
        };
        let pools: Vec<(String, BackendKind)> = federation.pools().map(|(_, p)| (p.name.clone(), p.backend)).collect();
        let ctl = suanwang_control::start(store, federation, config);
        if let Some(token) = std::env::var("SUANWANG_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()) {
            let created = suanwang_control::bootstrap(&ctl, &token)
                .await
                .map_err(|e| CliError::internal("bootstrap", format!("cannot create the operator: {e}")))?;
            if created {
                tracing::info!("created the operator token from SUANWANG_ADMIN_TOKEN");
            }
        }
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let url = format!("http://{}", args.listen);
        if args.demo {
            let tokens = demo_tokens(&ctl, &data_dir).await?;
            // Every pool gets an in-process agent: `local` pools run real processes, the rest simulate.
            let agents: Vec<(String, Backend)> = pools
                .into_iter()
                .map(|(name, kind)| (name, if kind == BackendKind::Local { Backend::Local } else { Backend::Sim }))
                .collect();
            suanwang_control::start_agents(&ctl, &agents, &shutdown_rx);
            print(&format!(
                "Suanwang demo: {} pools with in-process agents ({} runs jobs on this machine).\n\n  \
                 export SUANWANG_SERVER={url}\n  export SUANWANG_TOKEN={}   # tenant \"demo\"\n  \
                 operator token: {}\n  auditor token:  {}\n  (kept in {})\n\n  \
                 dashboard: {url}/ui/ (sign in with one of the tokens)\n\n  \
                 suanwang job submit --name hello --cpu-milli 500 --memory-mib 256 -- sh -c 'echo hello'\n  \
                 suanwang job ls\n\n",
                agents.len(),
                agents.iter().find(|(_, b)| *b == Backend::Local).map_or("no pool", |(n, _)| n.as_str()),
                tokens.tenant,
                tokens.operator,
                tokens.auditor,
                data_dir.join("demo-tokens.json").display(),
            ))?;
        }
        let where_ = args
            .database_url
            .as_ref()
            .map_or_else(|| data_dir.join("suanwang.db").display().to_string(), |_| "PostgreSQL".to_owned());
        tracing::info!(
            %url,
            store = %where_,
            ready_ms = started.elapsed().as_millis() as u64,
            "suanwang serving {url}"
        );
        let limits = suanwang_server::listen::Limits {
            max_connections: connection_cap(args.max_connections),
            header_timeout: Duration::from_secs(args.header_timeout_s),
            idle_timeout: Duration::from_secs(args.idle_timeout_s),
            body_timeout: Duration::from_secs(args.body_timeout_s),
            ..suanwang_server::listen::Limits::default()
        };
        suanwang_server::serve(ctl, args.listen, limits, shutdown).await.map_err(|e| CliError::input("listen", e))
    })
}

/// The connection cap: what was asked, but never so many that sockets use up the open-file limit
/// the database, the logs and the jobs' pipes also need.
fn connection_cap(asked: u64) -> usize {
    let soft_limit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<u64>().ok()
    });
    let cap = match soft_limit {
        Some(limit) if limit.saturating_sub(256) < asked => {
            let cap = limit.saturating_sub(256).max(16);
            tracing::warn!(asked, cap, open_file_limit = limit, "--max-connections lowered to fit the open-file limit");
            cap
        }
        _ => asked,
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// `suanwang agent`.
pub fn agent(args: &AgentArgs) -> Result<(), CliError> {
    init_logging(args.log_format)?;
    if !(args.server.starts_with("http://") || args.server.starts_with("https://")) {
        return Err(CliError::input(
            "invalid_server",
            format!("the server must be an http:// URL, not {:?}", args.server),
        ));
    }
    let backend = match args.backend {
        BackendArg::Local => Some(Backend::Local),
        BackendArg::Sim => Some(Backend::Sim),
        BackendArg::Slurm => None,
    };
    if backend.is_some() && (args.slurm_partition.is_some() || args.slurm_site.is_some() || args.slurmrestd.is_some()) {
        return Err(CliError::input(
            "invalid_agent",
            "--slurm-partition, --slurm-site and --slurmrestd are for --backend slurm",
        ));
    }
    let timeout = Duration::from_secs(args.slurm_timeout_s);
    let slurm = match (&args.slurmrestd, &args.slurmrestd_token_file, &args.slurmrestd_user) {
        (Some(url), Some(token_file), Some(user)) => {
            if !url.starts_with("http://") || url.len() > 2048 {
                return Err(CliError::input(
                    "invalid_agent",
                    format!("--slurmrestd must be an http:// URL, not {url:?}"),
                ));
            }
            let text = std::fs::read_to_string(token_file).map_err(|e| {
                CliError::input("invalid_agent", format!("--slurmrestd-token-file {}: {e}", token_file.display()))
            })?;
            if suanwang_agent::slurm::rest::token_in(&text).is_none() {
                return Err(CliError::input(
                    "invalid_agent",
                    format!("--slurmrestd-token-file {} holds no token", token_file.display()),
                ));
            }
            if user.is_empty()
                || user.len() > 64
                || !user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(CliError::input("invalid_agent", "--slurmrestd-user must be a Unix user name"));
            }
            suanwang_agent::slurm::cli::SlurmClient::Rest(suanwang_agent::slurm::rest::SlurmRest::new(
                url.clone(),
                std::path::absolute(token_file)
                    .map_err(|e| CliError::input("invalid_agent", format!("--slurmrestd-token-file: {e}")))?,
                user.clone(),
                timeout,
                args.slurm_partition.clone(),
            ))
        }
        _ => suanwang_agent::slurm::cli::SlurmClient::Cli(suanwang_agent::slurm::cli::SlurmCli {
            timeout,
            partition: args.slurm_partition.clone(),
        }),
    };
    // The site file and its users are checked before connecting: a mistake in them is the
    // provider's to fix, not something to retry.
    let site = match &args.slurm_site {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::input("invalid_site", format!("cannot read {}: {e}", path.display())))?;
            suanwang_agent::slurm::site::SlurmSite::parse(&text)
                .map_err(|e| CliError::input("invalid_site", format!("{}: {e}", path.display())))?
        }
        None => suanwang_agent::slurm::site::SlurmSite::default(),
    };
    let (users, own_user) = suanwang_agent::slurm::agent::SlurmConfig::users_of(&site)
        .map_err(|e| CliError::input("invalid_site", e.to_string()))?;
    if args.slurm_cluster.is_empty() || args.slurm_cluster.len() > 64 || args.slurm_cluster.contains(':') {
        return Err(CliError::input(
            "invalid_agent",
            "--slurm-cluster is 1 to 64 characters without ':' (it goes into usage event ids)",
        ));
    }
    runtime()?.block_on(async {
        let platform = Arc::new(
            suanwang_agent::http::HttpPlatform::new(&args.server, &args.token)
                .map_err(|e| CliError::input("invalid_agent", e.to_string()))?,
        );
        // Check the token before looping: a wrong token is the user's mistake, not a retry.
        use suanwang_agent::protocol::Platform;
        // It cannot say yet what runs: the platform keeps its record until the loop's first report.
        let hello = suanwang_api::agent::Heartbeat {
            healthy: false,
            running: Vec::new(),
            running_unknown: true,
            capacity: None,
            problem: Some("the agent is starting".to_owned()),
            nodes: None,
        };
        if let Err(e) = platform.heartbeat(hello).await {
            let bad_input = matches!(e.code.as_str(), "invalid_token" | "unauthenticated" | "forbidden");
            let error = format!("the platform at {} refused the agent: {e}", args.server);
            return Err(if bad_input {
                CliError::input("agent_refused", error)
            } else {
                CliError::internal("agent_refused", error)
            });
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop.send(true);
        });
        let poll_s = args.poll_s.unwrap_or(if backend.is_none() { 1 } else { 2 });
        tracing::info!(server = %args.server, poll_s, "agent connected");
        let poll = Duration::from_secs(poll_s);
        match backend {
            Some(backend) => {
                let isolation = Arc::new(isolation(&args.isolation, Vec::new())?);
                let config = suanwang_agent::run::AgentConfig { backend, poll, isolation };
                suanwang_agent::run::run(platform, config, stopped).await;
            }
            None => {
                let config = suanwang_agent::slurm::agent::SlurmConfig {
                    cluster: args.slurm_cluster.clone(),
                    output_dir: std::path::absolute(&args.slurm_output_dir)
                        .map_err(|e| CliError::input("invalid_agent", format!("--slurm-output-dir: {e}")))?,
                    cli: slurm,
                    poll,
                    site,
                    users,
                    own_user,
                };
                suanwang_agent::slurm::agent::run(platform, config, stopped).await;
            }
        }
        Ok(())
    })
}

/// The newest audit entry, as `audit head` prints it and `audit verify --since-head` reads it.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    seq: i64,
    hash: String,
}

/// The store of an existing platform (for the offline audit commands).
fn existing_store(
    data_dir: Option<&Path>,
    database_url: Option<&str>,
) -> Result<(tokio::runtime::Runtime, Store), CliError> {
    let data_dir = data_dir.map_or_else(default_data_dir, Path::to_path_buf);
    if database_url.is_none() && !data_dir.join("suanwang.db").exists() {
        return Err(CliError::input("no_store", format!("no platform database in {}", data_dir.display())));
    }
    let runtime = runtime()?;
    let store = runtime.block_on(open_store(&data_dir, database_url))?;
    Ok((runtime, store))
}

/// `suanwang audit head`.
pub fn audit_head(args: &AuditHeadArgs) -> Result<(), CliError> {
    let (runtime, store) = existing_store(args.data_dir.as_deref(), args.database_url.as_deref())?;
    let (seq, hash) = runtime
        .block_on(store.audit_head_hash())
        .map_err(|e| CliError::internal("database_unavailable", e.to_string()))?;
    let text = serde_json::to_string(&Head { seq, hash }).map_err(|e| CliError::internal("audit", e.to_string()))?;
    print(&format!("{text}\n"))
}

/// `suanwang audit verify`.
pub fn audit_verify(args: &AuditVerifyArgs) -> Result<(), CliError> {
    let head = match &args.since_head {
        Some(path) => {
            let text = crate::input::read_text(path)?;
            Some(serde_json::from_str::<Head>(&text).map_err(|e| {
                CliError::input("invalid_head", format!("{}: not a head printed by `audit head`: {e}", path.display()))
            })?)
        }
        None => None,
    };
    let (runtime, store) = existing_store(args.data_dir.as_deref(), args.database_url.as_deref())?;
    let verdict = runtime
        .block_on(async {
            match &head {
                Some(head) => store.verify_since_head(head.seq, &head.hash).await,
                None => store.verify_audit().await,
            }
        })
        .map_err(|e| CliError::internal("database_unavailable", e.to_string()))?;
    let (json, text, ok) = match &verdict {
        Verdict::Intact { entries } => (
            serde_json::json!({"intact": true, "entries": entries}),
            format!("audit chain intact: {entries} entries verified\n"),
            true,
        ),
        Verdict::Broken { seq, reason } => (
            serde_json::json!({"intact": false, "first_broken": seq, "reason": reason}),
            format!("audit chain BROKEN at entry {seq}: {reason}\n"),
            false,
        ),
    };
    print(&match args.format {
        Format::Json => format!("{json}\n"),
        Format::Table => text,
    })?;
    if ok { Ok(()) } else { Err(CliError::internal("audit_broken", "the audit chain does not verify")) }
}
