//! The CLI as a client of `serve`: jobs, pools, tenants, tokens, applications and data sets over
//! the REST API, through the one typed client (`suanwang-client`). Human tables by default, the
//! API's JSON with `--format json`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use suanwang_api::admin::{NewTenant, NewToken, PoolView};
use suanwang_api::apps::NewDataset;
use suanwang_api::jobs::{DatasetField, JobRequest, JobView, ListQuery, LogQuery};
use suanwang_client::ClientError;
use suanwang_formats::trace::ModelChoice;

use crate::args::{
    AppCommand, ClientArgs, DatasetCommand, Format, JobCommand, JobIdArgs, JobListArgs, JobSubmitArgs, PoolCommand,
    TenantCommand, TokenCommand,
};
use crate::error::CliError;
use crate::output::{Table, print};

/// Where the server is when nothing says otherwise.
pub const DEFAULT_SERVER: &str = suanwang_client::DEFAULT_SERVER;

/// Seconds before a request gives up.
const TIMEOUT_S: u64 = 60;

/// The config file: `$XDG_CONFIG_HOME/suanwang/config.toml` or `~/.config/suanwang/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("suanwang/config.toml"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".config/suanwang/config.toml"))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
}

fn config_file() -> Result<ConfigFile, CliError> {
    let Some(path) = config_path().filter(|p| p.exists()) else { return Ok(ConfigFile::default()) };
    let text = crate::input::read_text(&path)?;
    toml::from_str(&text).map_err(|e| CliError::input("invalid_config", format!("{}: {e}", path.display())))
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let message = match &e.field {
            Some(field) => format!("{} (field {field})", e.message),
            None => e.message.clone(),
        };
        if e.is_refusal() || e.code == "no_token" || e.code == "invalid_server" {
            CliError::input(e.code, message)
        } else {
            CliError::internal(e.code, message)
        }
    }
}

/// A connection to the platform and how to print its answers.
pub struct Client {
    /// The typed client.
    pub api: suanwang_client::Client,
    /// How to print.
    pub format: Format,
}

impl Client {
    /// Flags first, then `SUANWANG_SERVER` / `SUANWANG_TOKEN`, then the config file.
    pub fn new(args: &ClientArgs) -> Result<Self, CliError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (mut server, mut token) = (
            args.server.clone().or_else(|| env("SUANWANG_SERVER")),
            args.token.clone().or_else(|| env("SUANWANG_TOKEN")),
        );
        if server.is_none() || token.is_none() {
            let file = config_file()?;
            server = server.or(file.server);
            token = token.or(file.token);
        }
        let server = server.unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let api = suanwang_client::Client::new(&server, token.as_deref(), Duration::from_secs(TIMEOUT_S))?;
        Ok(Client { api, format: args.format })
    }

    /// Prints an answer: the API's JSON, or `human`'s text.
    pub(crate) fn show<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) -> Result<(), CliError> {
        match self.format {
            Format::Json => print(&format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default())),
            Format::Table => print(&human(value)),
        }
    }
}

/// `-` for nothing.
pub(crate) fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The body `job submit` sends: a job (from flags or a file) or a template with parameters.
pub fn submit_body(args: &JobSubmitArgs) -> Result<Value, CliError> {
    if let Some(file) = &args.file {
        let text = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
                .map_err(|e| CliError::input("unreadable", format!("standard input: {e}")))?;
            text
        } else {
            crate::input::read_text(file)?
        };
        return serde_json::from_str(&text)
            .map_err(|e| CliError::input("malformed_json", format!("{}: {e}", file.display())));
    }
    let models: Vec<ModelChoice> = args
        .accelerator_models
        .iter()
        .map(|(model, speed)| match speed {
            Some(speed) => ModelChoice::WithSpeed { model: model.clone(), speed: *speed },
            None => ModelChoice::Name(model.clone()),
        })
        .collect();
    if let Some(template) = &args.template {
        // The template's fields, with whatever flags were given over them.
        let mut fields = Map::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                fields.insert(key.to_owned(), value);
            }
        };
        set("name", args.name.clone().map(Value::from));
        set("accelerators", args.accelerators.map(Value::from));
        set("cpu_milli", args.cpu_milli.map(Value::from));
        set("memory_mib", args.memory_mib.map(Value::from));
        set("tasks", args.tasks.map(Value::from));
        set("priority", args.priority.map(Value::from));
        set("pool", args.pool.clone().map(Value::from));
        set("duration_s", args.duration_s.map(Value::from));
        set("estimate_s", args.estimate.map(Value::from));
        set("time_limit_s", args.time_limit.map(Value::from));
        set("tenant", args.tenant.clone().map(Value::from));
        set("dataset", args.dataset.clone().map(Value::from));
        set("framework", args.framework.clone().map(Value::from));
        if !models.is_empty() {
            set("accelerator_models", serde_json::to_value(&models).ok());
        }
        if !args.command.is_empty() {
            set("command", Some(Value::from(args.command.clone())));
        }
        let params: Map<String, Value> = args
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.parse::<i64>().map_or_else(|_| Value::from(v.clone()), Value::from)))
            .collect();
        fields.insert("template".to_owned(), Value::from(template.clone()));
        fields.insert("params".to_owned(), Value::Object(params));
        return Ok(Value::Object(fields));
    }
    let Some(name) = &args.name else {
        return Err(CliError::input("usage", "give --name (and the command after --), --template APP, or --file"));
    };
    // Without a template, unset flags take their documented defaults.
    let job = JobRequest {
        command: args.command.clone(),
        accelerators: args.accelerators.unwrap_or(0),
        accelerator_models: models,
        cpu_milli: args.cpu_milli.unwrap_or(1000),
        memory_mib: args.memory_mib.unwrap_or(1024),
        tasks: args.tasks.unwrap_or(1),
        priority: args.priority.unwrap_or(0),
        pool: args.pool.clone(),
        estimate_s: args.estimate,
        duration_s: args.duration_s,
        dataset: args.dataset.clone().map(DatasetField::Named),
        tenant: args.tenant.clone(),
        framework: args.framework.clone(),
        time_limit_s: args.time_limit,
        ..JobRequest::named(name.clone())
    };
    serde_json::to_value(&job).map_err(|e| CliError::internal("serialize", e.to_string()))
}

/// `suanwang app ls|show`.
pub fn app(command: &AppCommand) -> Result<(), CliError> {
    match command {
        AppCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let apps = client.api.apps()?;
            client.show(&apps, |apps| {
                let mut table = Table::new(&["name", "kind", "title", "标题", "parameters"]);
                for app in apps {
                    let params: Vec<String> = app
                        .params
                        .iter()
                        .map(|p| if p.required { p.name.clone() } else { format!("[{}]", p.name) })
                        .collect();
                    table.row(vec![
                        app.name.clone(),
                        app.kind.clone(),
                        app.title.clone(),
                        app.title_zh.clone(),
                        params.join(" "),
                    ]);
                }
                table.render()
            })
        }
        AppCommand::Show(args) => {
            let client = Client::new(&args.client)?;
            let app = client.api.app(&args.name)?;
            client.show(&app, |app| {
                let mut out =
                    format!("{} — {} ({})\n{}\n\n{}\n\n", app.name, app.title, app.kind, app.title_zh, app.description);
                let mut table = Table::new(&["parameter", "type", "required", "default", "range", "meaning"]);
                for p in &app.params {
                    let range = match (p.min, p.max) {
                        (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
                        (Some(lo), None) => format!(">= {lo}"),
                        (None, Some(hi)) => format!("<= {hi}"),
                        (None, None) => String::new(),
                    };
                    table.row(vec![
                        p.name.clone(),
                        serde_json::to_value(p.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        if p.required { "yes".to_owned() } else { String::new() },
                        p.default.as_ref().map_or_else(String::new, |d| match d {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }),
                        range,
                        p.description.clone(),
                    ]);
                }
                out.push_str(&table.render());
                out.push_str(&format!(
                    "\njob template:\n{}\n",
                    serde_json::to_string_pretty(&app.job).unwrap_or_default()
                ));
                out
            })
        }
    }
}

/// `suanwang dataset register|ls`.
pub fn dataset(command: &DatasetCommand) -> Result<(), CliError> {
    match command {
        DatasetCommand::Register(args) => {
            let client = Client::new(&args.client)?;
            let body = NewDataset {
                name: args.name.clone(),
                site: args.site.clone(),
                size_bytes: args.size,
                tenant: args.tenant.clone(),
            };
            let dataset = client.api.register_dataset(&body)?;
            client.show(&dataset, |d| format!("data set {} registered at {} (id {})\n", d.name, d.site, d.id))
        }
        DatasetCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let datasets = client.api.datasets()?;
            client.show(&datasets, |ds| {
                let mut table = Table::new(&["id", "tenant", "name", "site", "size", "registered"]);
                for d in ds {
                    table.row(vec![
                        d.id.to_string(),
                        d.tenant_id.to_string(),
                        d.name.clone(),
                        d.site.clone(),
                        human_bytes(u64::try_from(d.size_bytes).unwrap_or(0)),
                        d.created_at.clone(),
                    ]);
                }
                table.render()
            })
        }
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn job_table(jobs: &[JobView]) -> String {
    let mut table = Table::new(&["id", "name", "state", "pool", "created"]);
    for job in jobs {
        table.row(vec![
            job.id.to_string(),
            job.name.clone(),
            job.state.to_string(),
            or_dash(job.pool.as_ref()),
            job.created_at.clone(),
        ]);
    }
    table.render()
}

/// `suanwang job …`.
pub fn job(command: &JobCommand) -> Result<(), CliError> {
    match command {
        JobCommand::Submit(args) => {
            let client = Client::new(&args.client)?;
            let body = submit_body(args)?;
            if let Some(size) = args.array {
                let array = client.api.submit_array(size, &body, args.idempotency_key.as_deref())?;
                return client.show(&array, |a| {
                    let ids: Vec<String> = a.job_ids.iter().map(i64::to_string).collect();
                    format!("array of {} jobs: {}\n", a.size, ids.join(" "))
                });
            }
            let job = client.api.submit(&body, args.idempotency_key.as_deref())?;
            client.show(&job, |j| format!("job {} {}\n", j.id, j.state))
        }
        JobCommand::Ls(args) => list(args),
        JobCommand::Show(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let job = client.api.job(*id)?;
            client.show(&job, |j| {
                let mut out = String::new();
                let v = &j.job;
                for (key, value) in [
                    ("id", v.id.to_string()),
                    ("name", v.name.clone()),
                    ("tenant_id", v.tenant_id.to_string()),
                    ("state", v.state.to_string()),
                    ("pool", or_dash(v.pool.as_ref())),
                    ("explanation", or_dash(v.explanation.as_ref())),
                    ("created_at", v.created_at.clone()),
                    ("updated_at", v.updated_at.clone()),
                    ("usage_accelerator_s", j.usage_accelerator_s.to_string()),
                ] {
                    out.push_str(&format!("{key:<20} {value}\n"));
                }
                if let Some(a) = &j.allocation {
                    out.push_str(&format!(
                        "{:<20} {} × {}, {} cores, {} MiB at ¥{}/h ({})\n",
                        "holds",
                        a.card_milli as f64 / 1000.0,
                        a.model.as_deref().unwrap_or("no card"),
                        a.cpu_milli as f64 / 1000.0,
                        a.memory_mib,
                        a.rate_millifen_per_hour as f64 / 100_000.0,
                        a.contract
                    ));
                }
                let mut history = Table::new(&["at", "state", "detail"]);
                for e in &j.history {
                    history.row(vec![e.at.clone(), e.state.to_string(), e.detail.clone()]);
                }
                out.push('\n');
                out.push_str(&history.render());
                out
            })
        }
        JobCommand::Cancel(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let job = client.api.cancel_job(*id)?;
            client.show(&job, |j| format!("job {} {}\n", j.id, j.state))
        }
        JobCommand::Logs(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let (mut after, mut all) = (0, Vec::new());
            loop {
                let page = client.api.logs(*id, &LogQuery { after: Some(after), ..LogQuery::default() })?;
                if page.chunks.is_empty() {
                    break;
                }
                after = page.next_after;
                all.extend(page.chunks);
            }
            let value = suanwang_api::jobs::LogPage { chunks: all, next_after: after };
            client.show(&value, |v| v.chunks.iter().map(|(_, text)| text.as_str()).collect())
        }
        JobCommand::Explain(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let why = client.api.explain(*id)?;
            client.show(&why, |w| {
                format!(
                    "job {} {} in {}: {}\n",
                    w.id,
                    w.state,
                    or_dash(w.pool.as_ref()),
                    or_dash(w.explanation.as_ref())
                )
            })
        }
    }
}

fn list(args: &JobListArgs) -> Result<(), CliError> {
    let client = Client::new(&args.client)?;
    let query = ListQuery {
        state: args.state.clone(),
        pool: args.pool.clone(),
        tenant: args.tenant.clone(),
        after: args.after,
        limit: Some(args.limit),
        order: None,
    };
    let page = client.api.jobs(&query)?;
    client.show(&page, |p| {
        let mut out = job_table(&p.jobs);
        if let Some(next) = p.next_after {
            out.push_str(&format!("(more: --after {next})\n"));
        }
        out
    })
}

fn pool_table(pools: &[PoolView]) -> String {
    let mut table = Table::new(&["name", "site", "backend", "nodes", "cards", "healthy", "drained", "last seen"]);
    for p in pools {
        table.row(vec![
            p.name.clone(),
            p.site.clone(),
            p.backend.clone(),
            p.nodes.to_string(),
            p.cards.to_string(),
            if p.healthy { "yes" } else { "no" }.to_owned(),
            if p.drained { "yes" } else { "no" }.to_owned(),
            or_dash(p.last_seen_at.as_ref()),
        ]);
    }
    table.render()
}

/// `suanwang pool …`.
pub fn pool(command: &PoolCommand) -> Result<(), CliError> {
    match command {
        PoolCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let pools = client.api.pools()?;
            client.show(&pools, |p| pool_table(p))
        }
        PoolCommand::Show(args) | PoolCommand::Drain(args) | PoolCommand::Undrain(args) => {
            let client = Client::new(&args.client)?;
            let pool = match command {
                PoolCommand::Drain(_) => client.api.drain(&args.name, true)?,
                PoolCommand::Undrain(_) => client.api.drain(&args.name, false)?,
                _ => client.api.pool(&args.name)?,
            };
            client.show(&pool, |p| pool_table(std::slice::from_ref(p)))
        }
    }
}

/// `suanwang tenant …`.
pub fn tenant(command: &TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Create(args) => {
            let client = Client::new(&args.client)?;
            let body =
                NewTenant { name: args.name.clone(), kind: args.kind.clone(), registration_city: args.city.clone() };
            let tenant = client.api.create_tenant(&body)?;
            client.show(&tenant, |t| format!("tenant {} created (id {})\n", t.name, t.id))
        }
        TenantCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let tenants = client.api.tenants()?;
            client.show(&tenants, |ts| {
                let mut table = Table::new(&["id", "name", "kind", "city", "created"]);
                for t in ts {
                    table.row(vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.kind.clone(),
                        t.registration_city.clone(),
                        t.created_at.clone(),
                    ]);
                }
                table.render()
            })
        }
        TenantCommand::Quotas(args) => {
            let client = Client::new(&args.client)?;
            let tenant = client.api.tenants()?.into_iter().find(|t| t.name == args.name).ok_or_else(|| {
                CliError::input("unknown_tenant", format!("no tenant {:?} (suanwang tenant ls)", args.name))
            })?;
            let change = suanwang_api::admin::QuotaChange {
                requests_per_s: args.requests_per_s,
                queued_jobs: args.queued_jobs,
                open_orders: args.open_orders,
                book_share_bps: args.book_share_bps,
                running_simulations: args.running_simulations,
                datasets: args.datasets,
            };
            let quotas = if change == suanwang_api::admin::QuotaChange::default() {
                client.api.quotas(tenant.id)?
            } else {
                client.api.set_quotas(tenant.id, &change)?
            };
            client.show(&quotas, |q| {
                format!(
                    "requests_per_s       {}\nqueued_jobs          {}\nopen_orders          {}\nbook_share_bps       {}\nrunning_simulations  {}\ndatasets             {}\n",
                    q.requests_per_s, q.queued_jobs, q.open_orders, q.book_share_bps, q.running_simulations, q.datasets
                )
            })
        }
    }
}

/// `suanwang token create`, `ls` and `revoke`.
pub fn token(command: &TokenCommand) -> Result<(), CliError> {
    let args = match command {
        TokenCommand::Create(args) => args,
        TokenCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let tokens = client.api.tokens()?;
            return client.show(&tokens, |ts| {
                let mut table =
                    Table::new(&["id", "role", "tenant", "scope", "label", "created", "expires", "revoked"]);
                for t in ts {
                    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
                    table.row(vec![
                        t.id.to_string(),
                        t.role.as_str().to_owned(),
                        t.tenant_id.map_or_else(|| "-".to_owned(), |id| id.to_string()),
                        or_dash(&t.scope),
                        t.label.clone(),
                        t.created_at.clone(),
                        or_dash(&t.expires_at),
                        or_dash(&t.revoked_at),
                    ]);
                }
                table.render()
            });
        }
        TokenCommand::Revoke(args) => {
            let client = Client::new(&args.client)?;
            let token = client.api.revoke_token(args.id)?;
            return client.show(&token, |t| {
                format!(
                    "token {} ({} {}) revoked at {}\n",
                    t.id,
                    t.role.as_str(),
                    t.label,
                    t.revoked_at.clone().unwrap_or_default()
                )
            });
        }
    };
    let role = match (&args.role, &args.tenant, &args.pool, &args.program) {
        (Some(role), ..) => role.clone(),
        (None, Some(_), _, _) => "tenant".to_owned(),
        (None, None, Some(_), _) => "provider".to_owned(),
        (None, None, None, Some(_)) => "program-admin".to_owned(),
        (None, None, None, None) => {
            return Err(CliError::input("usage", "give --tenant NAME, --pool NAME, --program ID or --role ROLE"));
        }
    };
    let client = Client::new(&args.client)?;
    let body = NewToken {
        role,
        tenant: args.tenant.clone(),
        pool: args.pool.clone(),
        program: args.program.clone(),
        label: args.label.clone(),
        ttl_seconds: args.ttl,
    };
    let token = client.api.create_token(&body)?;
    client.show(&token, |t| format!("{}\n", t.token))
}
