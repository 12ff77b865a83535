//! The CLI as a client of `serve`: jobs, pools, tenants and tokens over the REST API. Human tables
//! by default, the API's JSON with `--format json`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::args::{
    ClientArgs, Format, JobCommand, JobIdArgs, JobListArgs, JobSubmitArgs, PoolCommand, TenantCommand, TokenCommand,
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

    fn show(&self, value: &Value, human: impl FnOnce(&Value) -> String) -> Result<(), CliError> {
        match self.format {
            Format::Json => print(&format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default())),
            Format::Table => print(&human(value)),
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
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
    let name = args
        .name
        .clone()
        .ok_or_else(|| CliError::input("usage", "give --name (and the command after --) or --file"))?;
    let mut body = json!({
        "name": name,
        "command": args.command,
        "accelerators": args.accelerators,
        "cpu_milli": args.cpu_milli,
        "memory_mib": args.memory_mib,
        "tasks": args.tasks,
        "priority": args.priority,
    });
    for (key, value) in [
        ("pool", args.pool.clone().map(Value::from)),
        ("duration_s", args.duration_s.map(Value::from)),
        ("tenant", args.tenant.clone().map(Value::from)),
    ] {
        if let Some(value) = value {
            body[key] = value;
        }
    }
    Ok(body)
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
    let role = match (&args.role, &args.tenant, &args.pool) {
        (Some(role), _, _) => role.clone(),
        (None, Some(_), _) => "tenant".to_owned(),
        (None, None, Some(_)) => "provider".to_owned(),
        (None, None, None) => return Err(CliError::input("usage", "give --tenant NAME, --pool NAME or --role ROLE")),
    };
    let client = Client::new(&args.client)?;
    let body = json!({"role": role, "tenant": args.tenant, "pool": args.pool, "label": args.label});
    let token = client.call("POST", "/api/v1/tokens", Some(&body), &[])?;
    let value = json!({"token": token["token"], "id": token["id"], "role": token["role"]});
    client.show(&value, |t| format!("{}\n", text(&t["token"])))
}
