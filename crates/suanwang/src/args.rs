//! Command-line arguments (clap). Help texts teach: each command says what it does, what its
//! inputs look like, and gives an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use suanwang_placement::policy::PolicyName;
use suanwang_sched::policy::QueuePolicy;

/// Suanwang (算网): federate compute pools into one compute-power network, schedule AI jobs
/// across them, and plan by simulation.
#[derive(Parser, Debug)]
#[command(name = "suanwang", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  suanwang federation show examples/federations/greater-bay-area.toml
  suanwang catalog
  suanwang simulate placement \\
      --nodes ../shared/traces/alibaba-gpu-v2023/openb_node_list_gpu_node.csv \\
      --tasks ../shared/traces/alibaba-gpu-v2023/openb_pod_list_default.csv \\
      --policy all --report placement.html";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect federation files (sites, links, pools).
    #[command(subcommand)]
    Federation(FederationCommand),
    /// List the accelerator catalog (models, memory, FP16 TFLOPS, software stack).
    Catalog(CatalogArgs),
    /// Replay traces against the scheduling core.
    #[command(subcommand)]
    Simulate(SimulateCommand),
    /// Work with job traces (convert between formats).
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Measure the platform's own speed.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the platform: the REST API, the store, the scheduler (and, with --demo, agents).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Run a pool's agent next to the pool: it pulls work from the platform and reports back.
    #[command(
        after_help = "Examples:\n  suanwang agent --server http://127.0.0.1:8080 --token \"$POOL_TOKEN\" --backend local\n  \
                      suanwang agent --server http://127.0.0.1:8080 --token \"$POOL_TOKEN\" --backend slurm \\\n      \
                      --slurm-partition gpu --slurm-output-dir /shared/suanwang/out\n  \
                      suanwang agent --server http://127.0.0.1:8080 --token \"$POOL_TOKEN\" --backend slurm \\\n      \
                      --slurmrestd http://127.0.0.1:6820 --slurmrestd-user slurm --slurmrestd-token-file /etc/suanwang/jwt"
    )]
    Agent(AgentArgs),
    /// Runs a `local` job inside its sandbox (used by agents; not for people).
    #[command(hide = true)]
    SandboxExec(SandboxExecArgs),
    /// Check the audit chain offline.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Submit, list, show, cancel jobs and read their logs (a client of `serve`).
    #[command(subcommand)]
    Job(JobCommand),
    /// List and show pools; drain and undrain them (a client of `serve`).
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Create and list tenants (a client of `serve`; operators).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Create tokens (a client of `serve`; operators).
    #[command(subcommand)]
    Token(TokenCommand),
    /// List and show applications: job templates (a client of `serve`).
    #[command(subcommand)]
    App(AppCommand),
    /// Register and list data sets (a client of `serve`).
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Voucher programmes: load, list, show (with the report), end the year (a client of `serve`).
    #[command(subcommand)]
    Program(ProgramCommand),
    /// Vouchers: apply, decide, claim, redeem (a client of `serve`).
    #[command(subcommand)]
    Voucher(VoucherCommand),
    /// Invoices: a tenant's charges by month, with subsidies (a client of `serve`).
    #[command(subcommand)]
    Invoice(InvoiceCommand),
    /// Money: balances, payments in, providers' earnings and payouts, the trial balance (a
    /// client of `serve`).
    #[command(subcommand)]
    Money(MoneyCommand),
    /// The market for reserved accelerator-hours: prices, orders, the book, auctions, contracts
    /// (a client of `serve`).
    #[command(subcommand)]
    Market(MarketCommand),
    /// What a job would cost in each pool, at list and spot prices (a client of `serve`).
    #[command(after_help = "Example:\n  suanwang quote --accelerators 8 --duration-s 36000")]
    Quote(QuoteArgs),
}

#[derive(Subcommand, Debug)]
pub enum MarketCommand {
    /// Posted and spot prices per pool, the auction interval, the last clearing prices.
    Prices(ClientOnly),
    /// Place a limit order (tenants buy; a pool's provider token sells its pool's cards).
    #[command(
        after_help = "Example:\n  suanwang market order --side buy --model A800-SXM4-80GB --region CN-GD \\\n    --start-s 1798761600 --end-s 1798848000 --cards 8 --limit-fen 1500 --key q1-train"
    )]
    Order(OrderArgs),
    /// Take a resting order out of the book.
    Cancel(OrderIdArgs),
    /// The book's depth by product, and your own orders.
    Book(ClientOnly),
    /// Run a call auction now (operators).
    Auction(ClientOnly),
    /// Contracts made by auctions (yours; all for operators and auditors).
    Contracts(ClientOnly),
}

#[derive(Args, Debug)]
pub struct OrderArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// buy or sell.
    #[arg(long)]
    pub side: String,
    /// Accelerator model (buys).
    #[arg(long)]
    pub model: Option<String>,
    /// Region (buys).
    #[arg(long)]
    pub region: Option<String>,
    /// Delivery window start, seconds since 1970 (UTC).
    #[arg(long)]
    pub start_s: u64,
    /// Delivery window end (exclusive), seconds since 1970 (UTC).
    #[arg(long)]
    pub end_s: u64,
    /// Cards.
    #[arg(long)]
    pub cards: u32,
    /// Limit price, fen per card-hour.
    #[arg(long)]
    pub limit_fen: i64,
    /// Fill whole or not at all.
    #[arg(long)]
    pub all_or_none: bool,
    /// Take part in the next auction only (default: rest until filled or cancelled).
    #[arg(long)]
    pub once: bool,
    /// Idempotency key: the same key again is the same order.
    #[arg(long)]
    pub key: String,
}

#[derive(Args, Debug)]
pub struct OrderIdArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The order's id.
    pub id: u64,
}

#[derive(Args, Debug)]
pub struct QuoteArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Cards per task.
    #[arg(long)]
    pub accelerators: u32,
    /// Tasks (a gang).
    #[arg(long, default_value_t = 1)]
    pub tasks: u32,
    /// Expected run time on an A100-class card, seconds.
    #[arg(long)]
    pub duration_s: u64,
    /// Only this accelerator model.
    #[arg(long)]
    pub model: Option<String>,
    /// The framework it runs (as for `job submit`).
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,
    /// An accepted model, optionally with its speed: `Ascend-910B:0.8` (repeatable).
    #[arg(long = "accelerator-model", value_name = "MODEL[:SPEED]", value_parser = parse_model_choice)]
    pub accelerator_models: Vec<(String, Option<f64>)>,
    /// CPU per task, thousandths of a core.
    #[arg(long, default_value_t = 0)]
    pub cpu_milli: u32,
    /// Memory per task, MiB.
    #[arg(long, default_value_t = 0)]
    pub memory_mib: u32,
    /// Also list the pools that could never run it, and why.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Subcommand, Debug)]
pub enum ProgramCommand {
    /// Load a programme file (TOML, docs/programs.md) and fund its budget (operators).
    #[command(after_help = "Example:\n  suanwang program load examples/programs/hangzhou.toml")]
    Load(PathArgs),
    /// List programmes.
    Ls(ClientOnly),
    /// Show a programme's rules and, for those who may see it, its report.
    Show(IdArgs),
    /// End a programme's year: open claims are voided (operators, its administrators).
    Expire(IdArgs),
}

#[derive(Args, Debug)]
pub struct PathArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The file.
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The id.
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ProgramFilterArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only this programme's.
    #[arg(long)]
    pub program: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum VoucherCommand {
    /// Apply to a programme (tenants).
    Apply(ApplyArgs),
    /// List applications.
    Applications(ProgramFilterArgs),
    /// Approve or reject an application (its programme's administrator, operators).
    Decide(DecideArgs),
    /// Claim a voucher for a contract (tenants).
    #[command(after_help = "Example:\n  suanwang voucher claim hangzhou-compute --contract job:42 --amount-fen 500000")]
    Claim(ClaimArgs),
    /// List claims.
    Claims(ProgramFilterArgs),
    /// Redeem a claim against an invoice line of its contract.
    #[command(after_help = "Example:\n  suanwang voucher redeem 7 --period 2026-11 --job 42")]
    Redeem(RedeemArgs),
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The programme.
    pub program: String,
    /// A provider organisation the tenant is affiliated with (repeatable).
    #[arg(long = "affiliation", value_name = "PROVIDER")]
    pub affiliations: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The application's id.
    pub id: u64,
    /// Approve it.
    #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
    pub approve: bool,
    /// Reject it.
    #[arg(long)]
    pub reject: bool,
    /// Why.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Args, Debug)]
pub struct ClaimArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The programme.
    pub program: String,
    /// The contract: job:ID.
    #[arg(long)]
    pub contract: String,
    /// The voucher's face value, in fen.
    #[arg(long)]
    pub amount_fen: u64,
}

#[derive(Args, Debug)]
pub struct RedeemArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The claim's id.
    pub claim: u64,
    /// The invoice's month, YYYY-MM.
    #[arg(long)]
    pub period: String,
    /// The line's job.
    #[arg(long)]
    pub job: i64,
    /// The line's pool (default: the job's).
    #[arg(long)]
    pub pool: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum InvoiceCommand {
    /// List invoices (a tenant's own; all, or --tenant, for operators and auditors).
    Ls(InvoiceListArgs),
    /// Show an invoice with its lines.
    Show(InvoiceShowArgs),
}

#[derive(Args, Debug)]
pub struct InvoiceListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only this tenant's (by id).
    #[arg(long)]
    pub tenant: Option<i64>,
}

#[derive(Args, Debug)]
pub struct InvoiceShowArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The tenant's id.
    pub tenant: i64,
    /// The month, YYYY-MM.
    pub period: String,
}

#[derive(Subcommand, Debug)]
pub enum MoneyCommand {
    /// A tenant's balance (negative: owed).
    Balance(TenantIdArgs),
    /// Record money a tenant paid in (operators).
    Pay(PayArgs),
    /// What a pool's provider earned, was paid and is owed.
    Earnings(PoolNameArgs),
    /// Pay a pool's provider (operators).
    Payout(PayoutArgs),
    /// The ledger's trial balance (operators, auditors).
    TrialBalance(ClientOnly),
}

#[derive(Args, Debug)]
pub struct TenantIdArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The tenant's id.
    pub tenant: i64,
}

#[derive(Args, Debug)]
pub struct PayArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The tenant's id.
    pub tenant: i64,
    /// Amount, in fen.
    #[arg(long)]
    pub amount_fen: u64,
    /// Idempotency key (e.g. the bank reference): the same key again is the same payment.
    #[arg(long)]
    pub key: String,
}

#[derive(Args, Debug)]
pub struct PayoutArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The pool.
    pub pool: String,
    /// Amount, in fen.
    #[arg(long)]
    pub amount_fen: u64,
    /// Idempotency key: the same key again is the same payout.
    #[arg(long)]
    pub key: String,
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// List applications.
    Ls(ClientOnly),
    /// Show one application with its parameters and job template.
    Show(AppShowArgs),
}

#[derive(Args, Debug)]
pub struct AppShowArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The application's name.
    pub name: String,
}

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Register a data set: where it is stored and how big it is.
    #[command(after_help = "Example:\n  suanwang dataset register corpus --site shaoguan-hub --size 2TB")]
    Register(DatasetRegisterArgs),
    /// List data sets (a tenant's own; all for operators and auditors).
    Ls(ClientOnly),
}

#[derive(Args, Debug)]
pub struct DatasetRegisterArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Its name (letters, digits, '-', '_', '.'), unique for the tenant.
    pub name: String,
    /// The federation site where it is stored.
    #[arg(long)]
    pub site: String,
    /// Its size: bytes, or with a unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB).
    #[arg(long, value_parser = parse_size)]
    pub size: u64,
    /// Register for this tenant (operators).
    #[arg(long)]
    pub tenant: Option<String>,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => return Err(format!("unknown unit {other:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB")),
    };
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a size"))?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > i64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes.round() as u64)
}

const SERVE_EXAMPLES: &str = "\
Examples:
  suanwang serve --demo
  SUANWANG_ADMIN_TOKEN=sw_... suanwang serve --federation my-federation.toml
  suanwang serve --database-url postgres://postgres@127.0.0.1/suanwang --listen 0.0.0.0:8080";

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Where the embedded SQLite database (and the demo's tokens) live (default: the user's data
    /// folder, e.g. ~/.local/share/suanwang).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of SQLite (postgres://user@host/db). Several servers may share one.
    #[arg(long, value_name = "URL", env = "SUANWANG_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The federation file (default: the Greater Bay Area model plus a `local` pool).
    #[arg(long, value_name = "FILE")]
    pub federation: Option<PathBuf>,
    /// Demo mode: agents in process (simulated pools, and `local` running real processes), a demo
    /// tenant, and tokens printed at start.
    #[arg(long)]
    pub demo: bool,
    /// Queue policy.
    #[arg(long, value_parser = |s: &str| s.parse::<QueuePolicy>().map_err(|e| e.to_string()))]
    pub policy: Option<QueuePolicy>,
    /// Seconds without a report after which a pool is unhealthy (no new work). The jobs of a
    /// `local` or `sim` pool fail over then.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_timeout_s: u64,
    /// Seconds without a report after which the jobs of a `slurm` or `kubernetes` pool fail over
    /// (the cluster keeps running them while its agent is away). At least the heartbeat timeout.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub cluster_failover_timeout_s: u64,
    /// A directory of trace files (JSON Lines, Philly CSV, openb CSV, SWF; two levels deep) that
    /// the dashboard's simulations page offers. Uploads work without it.
    #[arg(long, value_name = "DIR")]
    pub traces: Option<PathBuf>,
    /// The card that jobs' run-time estimates and speeds are measured against: pools are compared
    /// per unit of work on it (a card twice as fast does an hour's work in half an hour).
    #[arg(long, value_name = "MODEL", default_value = "A100-SXM4-80GB")]
    pub reference_accelerator: String,
    /// The framework a card job runs when it names neither a framework, models, a pool nor a
    /// contract (`none`: any card will do).
    #[arg(long, value_name = "NAME", default_value = "cuda")]
    pub default_framework: String,
    /// Where users reach this server (e.g. https://compute.example.cn behind a TLS proxy): with
    /// https, the dashboard's cookies are marked Secure.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Connections open at once (more wait in the backlog); at most this process's open-file
    /// limit less 256 (raise it with `ulimit -n` or systemd's LimitNOFILE).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub max_connections: u64,
    /// Seconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout_s: u64,
    /// Seconds a connection may sit with nothing moving before it is closed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_s: u64,
    /// Seconds a client has to send a request's whole body, once its headers are in (408
    /// `body_timeout` after that).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_s: u64,
    /// How jobs on `local` pools are isolated.
    #[command(flatten)]
    pub isolation: IsolationArgs,
    /// Log lines on standard error: `text` for people, `json` (one object per line) for log
    /// pipelines. The level comes from `SUANWANG_LOG` (default `info`; e.g.
    /// `info,suanwang::http=debug` also logs every request).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SUANWANG_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The platform's URL.
    #[arg(long, env = "SUANWANG_SERVER", value_name = "URL")]
    pub server: String,
    /// The pool's provider token (from `suanwang token create --role provider --pool NAME`).
    #[arg(long, env = "SUANWANG_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: String,
    /// Where jobs run: `local` (processes on this machine), `sim` (simulated) or `slurm` (a Slurm
    /// cluster, through sbatch, squeue, scontrol, scancel, sinfo and sacct on this machine's PATH,
    /// or through slurmrestd with --slurmrestd).
    #[arg(long, value_enum)]
    pub backend: BackendArg,
    /// Slurm: the partition jobs go to and whose nodes make the pool (default: Slurm's default
    /// partition, all nodes).
    #[arg(long, value_name = "NAME")]
    pub slurm_partition: Option<String>,
    /// Slurm: the cluster's name in usage event ids.
    #[arg(long, value_name = "NAME", default_value = "slurm")]
    pub slurm_cluster: String,
    /// Slurm: where job output goes (Slurm writes it on the node, the agent reads it: a shared
    /// filesystem on a real cluster).
    #[arg(long, value_name = "DIR", default_value = "suanwang-slurm-output")]
    pub slurm_output_dir: PathBuf,
    /// Slurm: the site file (TOML): each tenant's account, QOS and Unix user, and each
    /// accelerator model's GRES (docs/slurm.md, "What a centre sets up"). Without it, jobs run as
    /// the agent's user under its default account, with untyped `gpu` GRES.
    #[arg(long, value_name = "FILE")]
    pub slurm_site: Option<PathBuf>,
    /// Slurm: talk to Slurm through slurmrestd at this `http://` URL (OpenAPI v0.0.38, Slurm
    /// 22.05 or later) instead of its commands, for sites that allow the agent no shell
    /// (docs/slurm.md, "slurmrestd").
    #[arg(long, value_name = "URL", requires_all = ["slurmrestd_token_file", "slurmrestd_user"])]
    pub slurmrestd: Option<String>,
    /// Slurm: the file holding slurmrestd's JSON Web Token (`scontrol token` output), read on
    /// every request so the site can rotate it. A token of `SlurmUser` lets jobs run as the
    /// tenants' users of the site file.
    #[arg(long, value_name = "FILE", requires = "slurmrestd")]
    pub slurmrestd_token_file: Option<PathBuf>,
    /// Slurm: the user the token is for (`scontrol token username=NAME`).
    #[arg(long, value_name = "NAME", requires = "slurmrestd")]
    pub slurmrestd_user: Option<String>,
    /// Slurm: seconds a Slurm command may take before Slurm counts as away.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub slurm_timeout_s: u64,
    /// Seconds between polls (default: 1 for `slurm`, which sees a job end only when it looks,
    /// 2 for the others). Work the platform places wakes the agent at once either way.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub poll_s: Option<u64>,
    /// How jobs on `local` pools are isolated.
    #[command(flatten)]
    pub isolation: IsolationArgs,
    /// Log lines on standard error: `text` for people, `json` (one object per line) for log
    /// pipelines. The level comes from `SUANWANG_LOG` (default `info`; e.g.
    /// `info,suanwang::http=debug` also logs every request).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SUANWANG_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Where `local` jobs run and as whom (see `suanwang_agent::sandbox`).
#[derive(Args, Debug, Clone)]
pub struct IsolationArgs {
    /// Run `local` jobs as this account (a name, or UID[:GID]) instead of the server's own; the
    /// server must be able to switch to it. A server running as root runs them as `nobody`
    /// unless told otherwise: tenants' code never runs as root unless `--run-as-user root`.
    #[arg(long, value_name = "USER")]
    pub run_as_user: Option<String>,
    /// Where `local` jobs get their scratch directories (each 0700, removed when the job ends;
    /// default: suanwang-jobs in the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub jobs_dir: Option<PathBuf>,
}

/// `suanwang sandbox-exec`: what a `local` agent runs a job through (not for people).
#[derive(Args, Debug)]
pub struct SandboxExecArgs {
    /// A path the job may not read (a system directory that holds it stays closed).
    #[arg(long, value_name = "PATH")]
    pub protect: Vec<PathBuf>,
    /// Run the job as this user id (after the sandbox is in place).
    #[arg(long, value_name = "UID", requires = "gid")]
    pub uid: Option<u32>,
    /// … and this group id.
    #[arg(long, value_name = "GID", requires = "uid")]
    pub gid: Option<u32>,
    /// Print how well the sandbox holds on this kernel (full, partial, none) and exit.
    #[arg(long)]
    pub probe: bool,
    /// The job's directory: the one place it may write.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The program and its arguments.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Processes on this machine.
    Local,
    /// Simulated runs.
    Sim,
    /// A Slurm cluster.
    Slurm,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the audit chain's hashes and name the first broken entry (exit 1 if broken).
    #[command(
        after_help = "Examples:\n  suanwang audit verify\n  suanwang audit verify --database-url postgres://postgres@127.0.0.1/suanwang"
    )]
    Verify(AuditVerifyArgs),
    /// Print the newest entry's sequence number and hash, as JSON: keep it somewhere the
    /// platform's operators cannot write, and `audit verify --since-head FILE` proves later that
    /// the chain still extends it (nothing cut off the end, nothing rewritten).
    #[command(
        after_help = "Examples:\n  suanwang audit head > head-2026-12-07.json\n  suanwang audit verify --since-head head-2026-12-07.json"
    )]
    Head(AuditHeadArgs),
}

#[derive(Args, Debug)]
pub struct AuditHeadArgs {
    /// The data directory of an SQLite platform (default: the user's data folder).
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL platform.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct AuditVerifyArgs {
    /// The data directory of an SQLite platform (default: the user's data folder).
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL platform.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// A head printed earlier by `audit head`: the chain must still extend it.
    #[arg(long, value_name = "FILE")]
    pub since_head: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Where the server is and who is asking: flags, else `SUANWANG_SERVER` / `SUANWANG_TOKEN`, else
/// the config file (~/.config/suanwang/config.toml: `server = "…"`, `token = "…"`).
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The platform's URL (default http://127.0.0.1:8080).
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// A token.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Submit a job: from a JSON file (`--file job.json`, `-` for stdin) or from flags and the
    /// command after `--`.
    #[command(
        after_help = "Examples:\n  suanwang job submit --name hello --cpu-milli 500 --memory-mib 256 -- sh -c 'echo hello'\n  suanwang job submit --file train.json --idempotency-key order-42\n  suanwang job submit --name sweep --array 100 -- python sweep.py --case '$SUANWANG_ARRAY_INDEX'"
    )]
    Submit(Box<JobSubmitArgs>),
    /// List jobs (newest pages with --after).
    Ls(JobListArgs),
    /// Show a job with its history.
    Show(JobIdArgs),
    /// Cancel a job.
    Cancel(JobIdArgs),
    /// Print a job's output.
    Logs(JobIdArgs),
    /// Where the job went and why.
    Explain(JobIdArgs),
}

#[derive(Args, Debug)]
pub struct JobSubmitArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The job body as JSON (see docs/server.md); `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "command"])]
    pub file: Option<PathBuf>,
    /// The job's name (optional with --template).
    #[arg(long)]
    pub name: Option<String>,
    /// Make the job from an application (`suanwang app ls`); --param sets its parameters, and
    /// any other flag given overrides the template's value.
    #[arg(long, value_name = "APP")]
    pub template: Option<String>,
    /// A template parameter, KEY=VALUE (repeatable; whole numbers are sent as numbers).
    #[arg(long = "param", value_name = "KEY=VALUE", requires = "template", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Input data: a registered data set's name (`suanwang dataset ls`).
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Accelerators per task [default: 0].
    #[arg(long)]
    pub accelerators: Option<u8>,
    /// The framework it runs (pytorch, mindspore, paddlepaddle, tensorflow, jax, vllm, cuda): it
    /// runs only on cards whose software stack supports it. A card job that names neither a
    /// framework, models nor a pool runs cuda (code built for NVIDIA cards).
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,
    /// An accepted accelerator model, optionally with the job's speed on it relative to an
    /// A100-class card: `Ascend-910B:0.8` (repeatable; default: any the framework runs on).
    #[arg(long = "accelerator-model", value_name = "MODEL[:SPEED]", value_parser = parse_model_choice)]
    pub accelerator_models: Vec<(String, Option<f64>)>,
    /// Expected run time on an A100-class card (`90`, `90s`, `30m`, `8h`, `2d`), for the
    /// scheduler's estimates and backfilling.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_s)]
    pub estimate: Option<u64>,
    /// The longest one run may take (`8h`, `2d`); the platform bills no run for longer
    /// [default: 7 days].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_s)]
    pub time_limit: Option<u64>,
    /// CPU per task, thousandths of a core [default: 1000].
    #[arg(long)]
    pub cpu_milli: Option<u32>,
    /// Memory per task, MiB [default: 1024].
    #[arg(long)]
    pub memory_mib: Option<u32>,
    /// Tasks in the gang [default: 1].
    #[arg(long)]
    pub tasks: Option<u16>,
    /// Run only in this pool.
    #[arg(long)]
    pub pool: Option<String>,
    /// Priority (higher first under the priority policy) [default: 0].
    #[arg(long)]
    pub priority: Option<i32>,
    /// How long a simulated pool runs it, seconds.
    #[arg(long)]
    pub duration_s: Option<u64>,
    /// Submit for this tenant (operators).
    #[arg(long)]
    pub tenant: Option<String>,
    /// The same key returns the same job (safe retries).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Submit N copies as an array (1 to 1000): job i is named NAME[i] and runs with
    /// SUANWANG_ARRAY_INDEX=i and SUANWANG_ARRAY_SIZE=N; each is placed, billed and cancelled
    /// on its own.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub array: Option<u16>,
    /// The program and its arguments.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `MODEL` or `MODEL:SPEED`.
pub fn parse_model_choice(text: &str) -> Result<(String, Option<f64>), String> {
    match text.rsplit_once(':') {
        Some((model, speed)) if !model.is_empty() => {
            let speed: f64 = speed.parse().map_err(|_| format!("{speed:?} is not a speed (a number such as 0.8)"))?;
            if !(speed.is_finite() && (0.001..=100.0).contains(&speed)) {
                return Err(format!("a speed is 0.001 to 100 times an A100-class card, not {speed}"));
            }
            Ok((model.to_owned(), Some(speed)))
        }
        _ if !text.is_empty() => Ok((text.to_owned(), None)),
        _ => Err("give a model name (suanwang catalog lists them)".to_owned()),
    }
}

/// Seconds from `90`, `90s`, `30m`, `8h` or `2d`.
pub fn parse_duration_s(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 90s, 30m, 8h or 2d"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(factor).filter(|&s| s <= 366 * 86_400).ok_or_else(|| format!("{text:?} is longer than a year"))
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[derive(Args, Debug)]
pub struct JobListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only these states (comma-separated).
    #[arg(long)]
    pub state: Option<String>,
    /// Only this pool.
    #[arg(long)]
    pub pool: Option<String>,
    /// Only this tenant (operators, auditors).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Jobs with ids above this.
    #[arg(long)]
    pub after: Option<i64>,
    /// At most this many (1–1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

#[derive(Args, Debug)]
pub struct JobIdArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The job's id.
    pub id: i64,
}

#[derive(Subcommand, Debug)]
pub enum PoolCommand {
    /// List pools with capacity and health.
    Ls(ClientOnly),
    /// Show one pool.
    Show(PoolNameArgs),
    /// Take no new work (running jobs finish).
    Drain(PoolNameArgs),
    /// Take new work again.
    Undrain(PoolNameArgs),
}

#[derive(Args, Debug)]
pub struct ClientOnly {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct PoolNameArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The pool's name.
    pub name: String,
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant.
    Create(TenantCreateArgs),
    /// List tenants.
    Ls(ClientOnly),
    /// Show a tenant's quotas, or change them (operators).
    #[command(
        after_help = "Examples:\n  suanwang tenant quotas acme\n  suanwang tenant quotas acme --queued-jobs 50000 --requests-per-s 200"
    )]
    Quotas(TenantQuotasArgs),
}

#[derive(Args, Debug)]
pub struct TenantQuotasArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The tenant's name.
    pub name: String,
    /// API requests a second per token (bursts of twice this).
    #[arg(long)]
    pub requests_per_s: Option<u32>,
    /// Jobs waiting in the queue at once.
    #[arg(long)]
    pub queued_jobs: Option<u32>,
    /// Market orders resting in the book at once.
    #[arg(long)]
    pub open_orders: Option<u32>,
    /// The most of the book its orders may be, in basis points.
    #[arg(long)]
    pub book_share_bps: Option<u32>,
    /// Simulations running at once.
    #[arg(long)]
    pub running_simulations: Option<u32>,
    /// Registered data sets.
    #[arg(long)]
    pub datasets: Option<u32>,
}

#[derive(Args, Debug)]
pub struct TenantCreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Its name (letters, digits, '-', '_', '.').
    pub name: String,
    /// startup, sme, manufacturer, research-institute, university, government or enterprise.
    #[arg(long, default_value = "enterprise")]
    pub kind: String,
    /// City of registration.
    #[arg(long, default_value = "")]
    pub city: String,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it once.
    #[command(
        after_help = "Examples:\n  suanwang token create --tenant acme\n  suanwang token create --role provider --pool local --format json\n  suanwang token create --role auditor --ttl 8h"
    )]
    Create(TokenCreateArgs),
    /// List tokens: role, scope, label, dates (never the secret).
    Ls(ClientOnly),
    /// Revoke a token by id: it stops working at once (within 10 s on other servers).
    #[command(after_help = "Examples:\n  suanwang token ls\n  suanwang token revoke 7")]
    Revoke(TokenRevokeArgs),
}

#[derive(Args, Debug)]
pub struct TokenRevokeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The token's id (from `suanwang token ls`).
    pub id: i64,
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// operator, provider, tenant, program-admin or auditor (default: tenant with --tenant).
    #[arg(long)]
    pub role: Option<String>,
    /// For a tenant token: the tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// For a provider (agent) token: the pool.
    #[arg(long)]
    pub pool: Option<String>,
    /// For a programme administrator's token: the programme.
    #[arg(long)]
    pub program: Option<String>,
    /// A label for people.
    #[arg(long, default_value = "")]
    pub label: String,
    /// The token stops working after this long: seconds, or a number with s, m, h or d
    /// (`90m`, `8h`, `30d`). Default: never.
    #[arg(long, value_parser = parse_ttl)]
    pub ttl: Option<u64>,
}

/// `90`, `90s`, `30m`, `8h`, `7d` as seconds.
fn parse_ttl(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a duration like 90m, 8h or 30d"))
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Queue N synthetic Philly-shaped jobs against a federation and measure scheduling decisions
    /// per second in steady state (one job finishes, the scheduler makes a pass), with latency
    /// percentiles and peak memory.
    #[command(
        after_help = "Example:\n  suanwang bench scheduler --federation examples/federations/greater-bay-area.toml --jobs 200000"
    )]
    Scheduler(BenchSchedulerArgs),
    /// Submit N small jobs to a running server from C concurrent clients; report submissions per
    /// second, latency percentiles and errors.
    #[command(
        after_help = "Example:\n  suanwang bench api --server http://127.0.0.1:8080 --token \"$SUANWANG_TOKEN\" --jobs 20000 --concurrency 32"
    )]
    Api(BenchApiArgs),
    /// One well-behaved tenant's submission latency alone and while abusive tenants send ten
    /// times their rate limit and hold idle sockets open (against a running server).
    #[command(
        after_help = "Example:\n  suanwang bench abuse --server http://127.0.0.1:8080 --token \"$OPERATOR_TOKEN\" --abusers 20 --seconds 20"
    )]
    Abuse(BenchAbuseArgs),
    /// Apply N random transfers (top-ups, usage charges, fees, holds posted or released) to the
    /// ledger in batches, each made durable in the store before the next; report transfers per
    /// second, then check that the stored history replays to the same, balanced ledger.
    #[command(
        after_help = "Examples:\n  suanwang bench ledger --transfers 1000000\n  suanwang bench ledger --transfers 200000 --database-url postgres://postgres@127.0.0.1/bench"
    )]
    Ledger(BenchLedgerArgs),
    /// Clear one call auction over N random resting orders for reserved capacity and report the
    /// time it takes.
    #[command(after_help = "Example:\n  suanwang bench auction --orders 100000")]
    Auction(BenchAuctionArgs),
}

#[derive(Args, Debug)]
pub struct BenchAuctionArgs {
    /// Resting orders (1..=10,000,000).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub orders: u64,
    /// Seed of the random orders.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct BenchLedgerArgs {
    /// Transfers (1..=100,000,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub transfers: u64,
    /// Transfers per durable commit (1..=8192, the ledger's batch limit).
    #[arg(long, default_value_t = 8_192, value_parser = parse_batch)]
    pub batch: usize,
    /// SQLite in this directory (default: a fresh temporary one, removed afterwards).
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL instead (its ledger must be empty).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Seed of the random transfers.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_batch(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=8_192).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a batch size from 1 to 8192")),
    }
}

#[derive(Args, Debug)]
pub struct BenchAbuseArgs {
    /// The server.
    #[arg(long, env = "SUANWANG_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An operator token (the bench makes its tenants and their tokens).
    #[arg(long, env = "SUANWANG_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Abusive tenants.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=200))]
    pub abusers: u64,
    /// Each abuser sends this many times its rate limit.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub rate_multiple: u64,
    /// Idle sockets held open during the abuse.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=20_000))]
    pub idle_sockets: u64,
    /// The well-behaved tenant's submissions a second.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub good_per_s: u64,
    /// Seconds of each phase (alone, under abuse).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct BenchApiArgs {
    /// The platform's URL.
    #[arg(long, env = "SUANWANG_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// A tenant token (or an operator token with --tenant).
    #[arg(long, env = "SUANWANG_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Submit for this tenant (operator tokens).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Jobs to submit (1..=10,000,000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub jobs: u64,
    /// Concurrent clients (1..=1024).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct BenchSchedulerArgs {
    /// The federation file (TOML).
    #[arg(long, value_name = "FILE")]
    pub federation: PathBuf,
    /// Jobs to queue (1..=10,000,000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub jobs: u64,
    /// Queue policy (default: the scheduler's default).
    #[arg(long, value_parser = |s: &str| s.parse::<QueuePolicy>().map_err(|e| e.to_string()))]
    pub policy: Option<QueuePolicy>,
    /// Completions to measure in steady state (default: a quarter of the jobs, at most 50,000).
    #[arg(long)]
    pub completions: Option<u64>,
    /// Seed for the synthetic jobs.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// Read a trace in any supported format and write it as Suanwang's JSONL (docs/trace-formats.md).
    #[command(
        after_help = "Example:\n  suanwang trace convert --trace ../shared/traces/philly/philly.csv --trace-format philly > philly.jsonl"
    )]
    Convert(ConvertArgs),
}

#[derive(Args, Debug)]
pub struct TraceInput {
    /// The trace file.
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// Its format.
    #[arg(long, value_enum)]
    pub trace_format: TraceFormatArg,
    /// Continue past malformed lines (they are counted and the first few shown) instead of failing.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Split jobs needing more accelerators than this into gangs of equal tasks (Philly, SWF).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub max_gpus_per_task: u8,
    /// SWF: processors per accelerator; 0 reads processors as CPU cores.
    #[arg(long, default_value_t = 0)]
    pub swf_processors_per_gpu: u32,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub input: TraceInput,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TraceFormatArg {
    /// timestamp,duration,num_gpus,gpu_time,cluster
    Philly,
    /// an openb task list (creation and deletion times)
    Openb,
    /// Standard Workload Format (Parallel Workloads Archive)
    Swf,
    /// Suanwang's JSON Lines
    Jsonl,
}

#[derive(Subcommand, Debug)]
pub enum FederationCommand {
    /// Print a federation's pools, and its cards and PFLOPS by site and by accelerator.
    ///
    /// The file format is documented in docs/federation-format.md.
    Show(FederationShowArgs),
}

#[derive(Args, Debug)]
pub struct FederationShowArgs {
    /// The federation file (TOML).
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Show this catalog file instead of the built-in one (checks it, too).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum SimulateCommand {
    /// Replay a task list against a node list with the FGD paper's protocol (ATC'23).
    ///
    /// Tasks are sorted by name, shuffled and inflated until they ask for --inflation times the
    /// cluster's GPUs; each is tried once and never leaves. After every task the allocated share
    /// and the fragmentation are recorded against the arrived share; per seed, records are
    /// bucketed by whole arrived%, and each bucket reports the median over the seeds.
    ///
    /// Inputs are the openb CSVs of the Alibaba GPU trace 2023 (see ../shared/traces/README.md).
    #[command(after_help = PLACEMENT_EXAMPLES)]
    Placement(PlacementArgs),
    /// Replay a job trace over time against a federation: queues, fair share, gangs, preemption,
    /// failover, and pool choice by price, latency, data and energy.
    ///
    /// A discrete-event simulation with a virtual clock drives the same scheduler the server runs.
    /// Policies are a discipline (fifo, priority, sjf, las, drf) with or without +backfill; sjf
    /// reads true durations and is an oracle bound, the others never do. Without --policy the
    /// default (las+backfill) runs.
    #[command(after_help = QUEUE_EXAMPLES)]
    Queue(QueueArgs),
}

const QUEUE_EXAMPLES: &str = "\
Examples:
  # Every policy on the whole Philly trace, 624 GPUs:
  suanwang simulate queue --trace ../shared/traces/philly/philly.csv --trace-format philly \\
      --federation examples/federations/philly.toml --policy all
  # The default policy with an outage of the pool from day 10 for 6 hours, and explanations:
  suanwang simulate queue --trace T.csv --trace-format philly --federation F.toml \\
      --outage philly:864000:21600 --explain why.jsonl --format json";

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[command(flatten)]
    pub input: TraceInput,
    /// The federation file (TOML).
    #[arg(long, value_name = "FILE")]
    pub federation: PathBuf,
    /// Queue policies, comma-separated, or `all`: DISCIPLINE[+backfill] with DISCIPLINE one of
    /// fifo, priority, sjf, las, drf.
    #[arg(long, value_name = "NAME[,NAME…]", value_parser = parse_queue_policies)]
    pub policy: Option<QueuePolicyList>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write a self-contained HTML report with plots to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Write why each job went where it did, one JSON object per start.
    #[arg(long, value_name = "FILE.jsonl")]
    pub explain: Option<PathBuf>,
    /// Take a pool down: POOL:START_S:DURATION_S (repeatable). Its jobs fail over.
    #[arg(long, value_name = "POOL:START:DURATION")]
    pub outage: Vec<String>,
    /// Node placement inside a pool.
    #[arg(long, default_value = "best-fit", value_parser = |s: &str| s.parse::<PolicyName>().map_err(|e| e.to_string()))]
    pub placement: PolicyName,
    /// las: device-seconds of service after which a job drops to the lower queue.
    #[arg(long, default_value_t = 3600)]
    pub las_threshold: u64,
    /// las: a job of the lower queue that has waited this long in all is promoted, as Tiresias
    /// does (its attained service starts again, so it queues with the new jobs): `4h` (default),
    /// `90m`, `2d`; `0` turns the bound off.
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = parse_duration_s)]
    pub las_starvation: u64,
    /// drf: a tenant's weight, TENANT=WEIGHT (repeatable; others weigh 1). A tenant of weight 2
    /// may hold twice the dominant share of one of weight 1.
    #[arg(long, value_name = "TENANT=WEIGHT")]
    pub tenant_weight: Vec<String>,
    /// The accelerator the trace's durations were measured on; jobs run faster or slower
    /// elsewhere by FP16 TFLOPS. Without it, every accelerator runs jobs at trace speed.
    #[arg(long, value_name = "MODEL")]
    pub reference_accelerator: Option<String>,
    /// Worker threads for several policies (default: the number of cores).
    /// Voucher programmes (a folder of programme files, e.g. examples/programs): rate usage with
    /// the platform's money rules and report cost, subsidy per programme and budget left.
    #[arg(long, value_name = "DIR")]
    pub programs: Option<PathBuf>,
    /// The platform's fee on each charge, in basis points (with --programs).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub platform_fee_bps: u32,
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
}

/// Queue policies named on the command line.
#[derive(Clone, Debug)]
pub struct QueuePolicyList(pub Vec<QueuePolicy>);

fn parse_queue_policies(text: &str) -> Result<QueuePolicyList, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(QueuePolicyList(QueuePolicy::all()));
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        let policy: QueuePolicy =
            part.parse().map_err(|e: suanwang_sched::policy::UnknownQueuePolicy| e.to_string())?;
        if !out.contains(&policy) {
            out.push(policy);
        }
    }
    Ok(QueuePolicyList(out))
}

const PLACEMENT_EXAMPLES: &str = "\
Examples:
  # The project's default policy, ten seeds, a table:
  suanwang simulate placement --nodes openb_node_list_gpu_node.csv --tasks openb_pod_list_default.csv
  # Every policy, JSON for scripts, and an HTML report with plots:
  suanwang simulate placement --nodes N.csv --tasks T.csv --policy all --format json --report out.html
  # Two baselines on three seeds:
  suanwang simulate placement --nodes N.csv --tasks T.csv --policy best-fit,fgd --seeds 42..44";

#[derive(Args, Debug)]
pub struct PlacementArgs {
    /// Node list CSV: sn,cpu_milli,memory_mib,gpu,model.
    #[arg(long, value_name = "FILE")]
    pub nodes: PathBuf,
    /// Task list CSV: name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,…].
    #[arg(long, value_name = "FILE")]
    pub tasks: PathBuf,
    /// Policies to compare, comma-separated, or `all`: random, dot-product, gpu-clustering,
    /// gpu-packing, best-fit, fgd (the paper's baselines) and frag-plus (ours, the default).
    #[arg(long, value_name = "NAME[,NAME…]", value_parser = parse_policies)]
    pub policy: Option<PolicyList>,
    /// Seeds: `42..51` (inclusive), `7`, or a list like `1,2,5..8`.
    #[arg(long, value_name = "SEEDS", default_value = "42..51", value_parser = parse_seeds)]
    pub seeds: SeedList,
    /// Inflate the task list until it asks for this many times the cluster's GPUs.
    #[arg(long, default_value_t = 1.3)]
    pub inflation: f64,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write a self-contained HTML report with plots to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Worker threads (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Use this accelerator catalog instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Policies named on the command line, without repeats, in the order given.
#[derive(Clone, Debug)]
pub struct PolicyList(pub Vec<PolicyName>);

/// Seeds named on the command line.
#[derive(Clone, Debug)]
pub struct SeedList(pub Vec<u64>);

/// Most seeds one command may run.
pub const SEEDS_MAX: usize = 10_000;

fn parse_policies(text: &str) -> Result<PolicyList, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(PolicyList(PolicyName::ALL.to_vec()));
    }
    let mut names = Vec::new();
    for part in text.split(',') {
        let name: PolicyName = part.parse().map_err(|e: suanwang_placement::policy::UnknownPolicy| e.to_string())?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(PolicyList(names))
}

fn parse_seeds(text: &str) -> Result<SeedList, String> {
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("{s:?} is not a seed (a whole number)"));
        match part.split_once("..") {
            Some((first, last)) => {
                let last = last.strip_prefix('=').unwrap_or(last);
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    return Err(format!("the range {part} is reversed; write {last}..{first}"));
                }
                if last - first >= SEEDS_MAX as u64 {
                    return Err(format!("at most {SEEDS_MAX} seeds"));
                }
                seeds.extend(first..=last);
            }
            None => seeds.push(number(part)?),
        }
        if seeds.len() > SEEDS_MAX {
            return Err(format!("at most {SEEDS_MAX} seeds"));
        }
    }
    Ok(SeedList(seeds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        assert_eq!(parse_seeds("42..51").unwrap().0, (42..=51).collect::<Vec<_>>());
        assert_eq!(parse_seeds("7").unwrap().0, vec![7]);
        assert_eq!(parse_seeds("1,2,5..=6").unwrap().0, vec![1, 2, 5, 6]);
        assert_eq!(parse_seeds("51..42").unwrap_err(), "the range 51..42 is reversed; write 42..51");
        assert!(parse_seeds("a..3").is_err());
        assert!(parse_seeds("0..100000").is_err());
    }

    #[test]
    fn policies() {
        assert_eq!(parse_policies("all").unwrap().0.len(), PolicyName::ALL.len());
        assert_eq!(parse_policies("fgd,best-fit,fgd").unwrap().0, vec![PolicyName::Fgd, PolicyName::BestFit]);
        assert!(parse_policies("fgd,worst").unwrap_err().contains("unknown policy \"worst\""));
    }
}
