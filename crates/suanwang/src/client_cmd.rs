//! The CLI as a client of `serve`: jobs, pools, tenants and tokens over the REST API. Human tables
//! by default, the API's JSON with `--format json`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::args::{
    AppCommand, ClientArgs, DatasetCommand, Format, JobCommand, JobIdArgs, JobListArgs, JobSubmitArgs, PoolCommand,
    TenantCommand, TokenCommand,
};
use crate::error::CliError;
use crate::output::{Table, print};

/// Where the server is when nothing says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

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

/// A connection to the platform.
pub struct Client {
    server: String,
    token: Option<String>,
    agent: ureq::Agent,
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
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(CliError::input(
                "invalid_server",
                format!("the server must be an http:// URL, not {server:?}"),
            ));
        }
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(TIMEOUT_S)).build();
        Ok(Client { server: server.trim_end_matches('/').to_owned(), token, agent, format: args.format })
    }

    /// Calls the API; API errors become CLI errors with the API's code (exit 2 for 4xx).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, CliError> {
        let token = self.token.as_deref().ok_or_else(|| {
            CliError::input(
                "no_token",
                "no token: pass --token, set SUANWANG_TOKEN, or put token = \"…\" in the config file",
            )
        })?;
        let mut request = self
            .agent
            .request(method, &format!("{}{path}", self.server))
            .set("Authorization", &format!("Bearer {token}"));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => r
                .into_json()
                .map_err(|e| CliError::internal("invalid_response", format!("the server's answer is not JSON: {e}"))),
            Err(ureq::Error::Status(status, r)) => {
                let body: Value = r.into_json().unwrap_or_default();
                let code = body["error"]["code"].as_str().unwrap_or("http_error").to_owned();
                let message = body["error"]["message"]
                    .as_str()
                    .map_or_else(|| format!("the server answered {status}"), str::to_owned);
                Err(if status < 500 { CliError::input(code, message) } else { CliError::internal(code, message) })
            }
            Err(e) => Err(CliError::internal("unreachable", format!("cannot reach {}: {e}", self.server))),
        }
    }

    pub(crate) fn show(&self, value: &Value, human: impl FnOnce(&Value) -> String) -> Result<(), CliError> {
        match self.format {
            Format::Json => print(&format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default())),
            Format::Table => print(&human(value)),
        }
    }
}

pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.,~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The body `job submit` sends.
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
    let mut body = serde_json::Map::new();
    match &args.template {
        Some(template) => {
            body.insert("template".to_owned(), Value::from(template.clone()));
            let params: serde_json::Map<String, Value> = args
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.parse::<i64>().map_or_else(|_| Value::from(v.clone()), Value::from)))
                .collect();
            body.insert("params".to_owned(), Value::Object(params));
        }
        None => {
            if args.name.is_none() {
                return Err(CliError::input(
                    "usage",
                    "give --name (and the command after --), --template APP, or --file",
                ));
            }
            // Without a template, unset flags take their documented defaults.
            body.insert("accelerators".to_owned(), Value::from(args.accelerators.unwrap_or(0)));
            body.insert("cpu_milli".to_owned(), Value::from(args.cpu_milli.unwrap_or(1000)));
            body.insert("memory_mib".to_owned(), Value::from(args.memory_mib.unwrap_or(1024)));
            body.insert("tasks".to_owned(), Value::from(args.tasks.unwrap_or(1)));
            body.insert("priority".to_owned(), Value::from(args.priority.unwrap_or(0)));
        }
    }
    if !args.command.is_empty() || args.template.is_none() {
        body.insert("command".to_owned(), Value::from(args.command.clone()));
    }
    for (key, value) in [
        ("name", args.name.clone().map(Value::from)),
        ("accelerators", args.accelerators.map(Value::from)),
        ("cpu_milli", args.cpu_milli.map(Value::from)),
        ("memory_mib", args.memory_mib.map(Value::from)),
        ("tasks", args.tasks.map(Value::from)),
        ("priority", args.priority.map(Value::from)),
        ("pool", args.pool.clone().map(Value::from)),
        ("duration_s", args.duration_s.map(Value::from)),
        ("tenant", args.tenant.clone().map(Value::from)),
        ("dataset", args.dataset.clone().map(Value::from)),
    ] {
        if let Some(value) = value {
            body.insert(key.to_owned(), value);
        }
    }
    Ok(Value::Object(body))
}

/// `suanwang app ls|show`.
pub fn app(command: &AppCommand) -> Result<(), CliError> {
    match command {
        AppCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let apps = client.call("GET", "/api/v1/apps", None, &[])?;
            client.show(&apps, |apps| {
                let mut table = Table::new(&["name", "kind", "title", "标题", "parameters"]);
                for app in apps.as_array().into_iter().flatten() {
                    let params: Vec<String> = app["param"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            let name = text(&p["name"]);
                            if p["required"] == true { name } else { format!("[{name}]") }
                        })
                        .collect();
                    table.row(vec![
                        text(&app["name"]),
                        text(&app["kind"]),
                        text(&app["title"]),
                        text(&app["title_zh"]),
                        params.join(" "),
                    ]);
                }
                table.render()
            })
        }
        AppCommand::Show(args) => {
            let client = Client::new(&args.client)?;
            let app = client.call("GET", &format!("/api/v1/apps/{}", encode(&args.name)), None, &[])?;
            client.show(&app, |app| {
                let mut out = format!(
                    "{} — {} ({})\n{}\n\n{}\n\n",
                    text(&app["name"]),
                    text(&app["title"]),
                    text(&app["kind"]),
                    text(&app["title_zh"]),
                    text(&app["description"])
                );
                let mut table = Table::new(&["parameter", "type", "required", "default", "range", "meaning"]);
                for p in app["param"].as_array().into_iter().flatten() {
                    let range = match (p["min"].as_i64(), p["max"].as_i64()) {
                        (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
                        (Some(lo), None) => format!(">= {lo}"),
                        (None, Some(hi)) => format!("<= {hi}"),
                        (None, None) => String::new(),
                    };
                    table.row(vec![
                        text(&p["name"]),
                        text(&p["type"]),
                        if p["required"] == true { "yes".to_owned() } else { String::new() },
                        text(&p["default"]),
                        range,
                        text(&p["description"]),
                    ]);
                }
                out.push_str(&table.render());
                out.push_str(&format!(
                    "\njob template:\n{}\n",
                    serde_json::to_string_pretty(&app["job"]).unwrap_or_default()
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
            let body = json!({"name": args.name, "site": args.site, "size_bytes": args.size, "tenant": args.tenant});
            let dataset = client.call("POST", "/api/v1/datasets", Some(&body), &[])?;
            client.show(&dataset, |d| {
                format!("data set {} registered at {} (id {})\n", text(&d["name"]), text(&d["site"]), text(&d["id"]))
            })
        }
        DatasetCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let datasets = client.call("GET", "/api/v1/datasets", None, &[])?;
            client.show(&datasets, |ds| {
                let mut table = Table::new(&["id", "tenant", "name", "site", "size", "registered"]);
                for d in ds.as_array().into_iter().flatten() {
                    table.row(vec![
                        text(&d["id"]),
                        text(&d["tenant_id"]),
                        text(&d["name"]),
                        text(&d["site"]),
                        human_bytes(d["size_bytes"].as_u64().unwrap_or(0)),
                        text(&d["created_at"]),
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

fn job_table(jobs: &[Value]) -> String {
    let mut table = Table::new(&["id", "name", "state", "pool", "created"]);
    for job in jobs {
        table.row(vec![
            text(&job["id"]),
            text(&job["name"]),
            text(&job["state"]),
            text(&job["pool"]),
            text(&job["created_at"]),
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
            let headers: Vec<(&str, &str)> =
                args.idempotency_key.as_deref().map(|k| ("Idempotency-Key", k)).into_iter().collect();
            let job = client.call("POST", "/api/v1/jobs", Some(&body), &headers)?;
            client.show(&job, |j| format!("job {} {}\n", text(&j["id"]), text(&j["state"])))
        }
        JobCommand::Ls(args) => list(args),
        JobCommand::Show(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let job = client.call("GET", &format!("/api/v1/jobs/{id}"), None, &[])?;
            client.show(&job, |j| {
                let mut out = String::new();
                for key in [
                    "id",
                    "name",
                    "tenant_id",
                    "state",
                    "pool",
                    "explanation",
                    "created_at",
                    "updated_at",
                    "usage_accelerator_s",
                ] {
                    out.push_str(&format!("{key:<20} {}\n", text(&j[key])));
                }
                let mut history = Table::new(&["at", "state", "detail"]);
                for e in j["history"].as_array().into_iter().flatten() {
                    history.row(vec![text(&e["at"]), text(&e["state"]), text(&e["detail"])]);
                }
                out.push('\n');
                out.push_str(&history.render());
                out
            })
        }
        JobCommand::Cancel(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let job = client.call("POST", &format!("/api/v1/jobs/{id}/cancel"), None, &[])?;
            client.show(&job, |j| format!("job {} {}\n", text(&j["id"]), text(&j["state"])))
        }
        JobCommand::Logs(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let (mut after, mut all) = (0, Vec::new());
            loop {
                let page = client.call("GET", &format!("/api/v1/jobs/{id}/logs?after={after}"), None, &[])?;
                let chunks = page["chunks"].as_array().cloned().unwrap_or_default();
                if chunks.is_empty() {
                    break;
                }
                after = page["next_after"].as_i64().unwrap_or(after);
                all.extend(chunks);
            }
            let value = json!({"chunks": all});
            client.show(&value, |v| {
                v["chunks"].as_array().into_iter().flatten().map(|c| c[1].as_str().unwrap_or("").to_owned()).collect()
            })
        }
        JobCommand::Explain(JobIdArgs { client, id }) => {
            let client = Client::new(client)?;
            let why = client.call("GET", &format!("/api/v1/jobs/{id}/explain"), None, &[])?;
            client.show(&why, |w| {
                format!(
                    "job {} {} in {}: {}\n",
                    text(&w["id"]),
                    text(&w["state"]),
                    text(&w["pool"]),
                    text(&w["explanation"])
                )
            })
        }
    }
}

fn list(args: &JobListArgs) -> Result<(), CliError> {
    let client = Client::new(&args.client)?;
    let mut query = format!("limit={}", args.limit);
    for (key, value) in [("state", &args.state), ("pool", &args.pool), ("tenant", &args.tenant)] {
        if let Some(value) = value {
            query.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    if let Some(after) = args.after {
        query.push_str(&format!("&after={after}"));
    }
    let page = client.call("GET", &format!("/api/v1/jobs?{query}"), None, &[])?;
    client.show(&page, |p| {
        let mut out = job_table(p["jobs"].as_array().map_or(&[][..], Vec::as_slice));
        if let Some(next) = p["next_after"].as_i64() {
            out.push_str(&format!("(more: --after {next})\n"));
        }
        out
    })
}

fn pool_table(pools: &[Value]) -> String {
    let mut table = Table::new(&["name", "site", "backend", "nodes", "cards", "healthy", "drained", "last seen"]);
    for p in pools {
        table.row(vec![
            text(&p["name"]),
            text(&p["site"]),
            text(&p["backend"]),
            text(&p["nodes"]),
            text(&p["cards"]),
            if p["healthy"] == true { "yes" } else { "no" }.to_owned(),
            if p["drained"] == true { "yes" } else { "no" }.to_owned(),
            text(&p["last_seen_at"]),
        ]);
    }
    table.render()
}

/// `suanwang pool …`.
pub fn pool(command: &PoolCommand) -> Result<(), CliError> {
    let (client, path, method) = match command {
        PoolCommand::Ls(args) => (&args.client, "/api/v1/pools".to_owned(), "GET"),
        PoolCommand::Show(args) => (&args.client, format!("/api/v1/pools/{}", encode(&args.name)), "GET"),
        PoolCommand::Drain(args) => (&args.client, format!("/api/v1/pools/{}/drain", encode(&args.name)), "POST"),
        PoolCommand::Undrain(args) => (&args.client, format!("/api/v1/pools/{}/undrain", encode(&args.name)), "POST"),
    };
    let client = Client::new(client)?;
    let value = client.call(method, &path, None, &[])?;
    client.show(&value, |v| match v.as_array() {
        Some(pools) => pool_table(pools),
        None => pool_table(std::slice::from_ref(v)),
    })
}

/// `suanwang tenant …`.
pub fn tenant(command: &TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Create(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({"name": args.name, "kind": args.kind, "registration_city": args.city});
            let tenant = client.call("POST", "/api/v1/tenants", Some(&body), &[])?;
            client.show(&tenant, |t| format!("tenant {} created (id {})\n", text(&t["name"]), text(&t["id"])))
        }
        TenantCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let tenants = client.call("GET", "/api/v1/tenants", None, &[])?;
            client.show(&tenants, |ts| {
                let mut table = Table::new(&["id", "name", "kind", "city", "created"]);
                for t in ts.as_array().into_iter().flatten() {
                    table.row(vec![
                        text(&t["id"]),
                        text(&t["name"]),
                        text(&t["kind"]),
                        text(&t["registration_city"]),
                        text(&t["created_at"]),
                    ]);
                }
                table.render()
            })
        }
    }
}

/// `suanwang token create`.
pub fn token(command: &TokenCommand) -> Result<(), CliError> {
    let TokenCommand::Create(args) = command;
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
    let body = json!({"role": role, "tenant": args.tenant, "pool": args.pool, "program": args.program, "label": args.label, "ttl_seconds": args.ttl});
    let token = client.call("POST", "/api/v1/tokens", Some(&body), &[])?;
    let value =
        json!({"token": token["token"], "id": token["id"], "role": token["role"], "expires_at": token["expires_at"]});
    client.show(&value, |t| format!("{}\n", text(&t["token"])))
}
