//! Black-box tests of the real binary as a platform: `serve --demo` with the CLI client, the
//! exit codes of client mistakes, and the crash test (submissions with idempotency keys while the
//! server is killed with SIGKILL and restarted; afterwards every acknowledged job exists exactly
//! once, no job ran twice, and the audit chain verifies); and, when `SUANWANG_TEST_DATABASE_URL`
//! names a PostgreSQL server, two `serve` processes sharing one database, one scheduling at a time.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_suanwang");
const ADMIN: &str = "sw_admin_token_for_black_box_tests";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("suanwang-serve-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    url: String,
    args: Vec<String>,
}

impl Server {
    fn start(data_dir: &Path, demo: bool) -> Server {
        let mut args = vec!["--data-dir".to_owned(), data_dir.display().to_string()];
        if demo {
            args.push("--demo".to_owned());
        }
        Server::start_with(args)
    }

    /// `suanwang serve` on a free port with `extra` arguments.
    fn start_with(extra: Vec<String>) -> Server {
        let port = free_port();
        let mut args = vec!["serve".to_owned(), "--listen".to_owned(), format!("127.0.0.1:{port}")];
        args.extend(extra);
        let mut server = Server { child: spawn(&args), url: format!("http://127.0.0.1:{port}"), args };
        server.wait_healthy();
        server
    }

    /// What `/healthz` says this server's scheduler is: `leader` or `standby`.
    fn role(&self) -> String {
        let health: Value = ureq::get(&format!("{}/healthz", self.url)).call().unwrap().into_json().unwrap();
        health["scheduler"].as_str().unwrap().to_owned()
    }

    /// Waits until `/healthz` reports `role`.
    fn wait_role(&self, role: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.role() != role {
            assert!(Instant::now() < deadline, "{} never became {role}", self.url);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_healthy(&mut self) -> Duration {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if ureq::get(&format!("{}/healthz", self.url)).timeout(Duration::from_millis(500)).call().is_ok() {
                return started.elapsed();
            }
            assert!(self.child.try_wait().unwrap().is_none(), "the server exited");
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server never became healthy");
    }

    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
        self.child = spawn(&self.args);
        self.wait_healthy();
    }

    fn terminate(mut self) -> i32 {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `suanwang` with `args`; its log goes to `server.log` in its data directory, if it has one.
fn spawn(args: &[String]) -> Child {
    let log = args.iter().position(|a| a == "--data-dir").and_then(|i| {
        let path = Path::new(&args[i + 1]).join("server.log");
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok()
    });
    Command::new(BIN)
        .args(args)
        .env("SUANWANG_ADMIN_TOKEN", ADMIN)
        .env("SUANWANG_LOG", "debug,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.map_or_else(Stdio::null, Stdio::from))
        .spawn()
        .unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(server: &str, token: &str, args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .args(args)
        .env("SUANWANG_SERVER", server)
        .env("SUANWANG_TOKEN", token)
        .env("XDG_CONFIG_HOME", std::env::temp_dir().join("suanwang-no-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn the_demo_runs_a_job_submitted_with_the_cli() {
    let dir = scratch("demo");
    let server = Server::start(&dir, true);
    let tokens: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("demo-tokens.json")).unwrap()).unwrap();
    let tenant = tokens["tenant"].as_str().unwrap();
    let run = cli(
        &server.url,
        tenant,
        &[
            "job",
            "submit",
            "--name",
            "hello",
            "--cpu-milli",
            "500",
            "--memory-mib",
            "256",
            "--format",
            "json",
            "--",
            "sh",
            "-c",
            "echo hello",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let job: Value = serde_json::from_str(&run.stdout).unwrap();
    let id = job["id"].as_i64().unwrap().to_string();
    let mut state = String::new();
    for _ in 0..300 {
        let run = cli(&server.url, tenant, &["job", "show", &id, "--format", "json"]);
        state = serde_json::from_str::<Value>(&run.stdout).unwrap()["state"].as_str().unwrap().to_owned();
        if state == "succeeded" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(state, "succeeded");
    assert_eq!(cli(&server.url, tenant, &["job", "logs", &id]).stdout, "hello\n");
    let listed = cli(&server.url, tenant, &["job", "ls"]);
    assert!(listed.stdout.contains("hello") && listed.stdout.contains("local"), "{}", listed.stdout);
    let pools = cli(&server.url, tenant, &["pool", "ls", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&pools.stdout).unwrap().as_array().unwrap().len(), 19);
    // Applications and data sets: a fine-tune from its template, reading a registered data set.
    let apps = cli(&server.url, tenant, &["app", "ls"]);
    assert!(apps.stdout.contains("fine-tune") && apps.stdout.contains("大模型微调"), "{}", apps.stdout);
    let show = cli(&server.url, tenant, &["app", "show", "hpc-mpi"]);
    assert!(show.stdout.contains("program") && show.stdout.contains("mpirun"), "{}", show.stdout);
    let register =
        cli(&server.url, tenant, &["dataset", "register", "corpus", "--site", "shaoguan-hub", "--size", "2TB"]);
    assert_eq!(register.code, 0, "{}", register.stderr);
    let again = cli(&server.url, tenant, &["dataset", "register", "corpus", "--site", "shaoguan-hub", "--size", "2TB"]);
    assert_eq!((again.code, again.stderr.starts_with("error[already_exists]:")), (2, true), "{}", again.stderr);
    let tuned = cli(
        &server.url,
        tenant,
        &[
            "job",
            "submit",
            "--template",
            "fine-tune",
            "--param",
            "model=qwen2-7b",
            "--param",
            "dataset=corpus",
            "--format",
            "json",
        ],
    );
    assert_eq!(tuned.code, 0, "{}", tuned.stderr);
    let tuned: Value = serde_json::from_str(&tuned.stdout).unwrap();
    assert_eq!(
        (tuned["name"].as_str(), tuned["request"]["accelerators"].as_i64()),
        (Some("fine-tune-qwen2-7b"), Some(8))
    );
    assert_eq!(tuned["request"]["dataset"]["size_bytes"], 2_000_000_000_000_u64);
    let missing = cli(&server.url, tenant, &["job", "submit", "--template", "fine-tune"]);
    assert_eq!((missing.code, missing.stderr.starts_with("error[missing_param]:")), (2, true), "{}", missing.stderr);
    // A job no pool could ever run is refused at once, with the reason (exit 2).
    let impossible =
        cli(&server.url, tenant, &["job", "submit", "--name", "big", "--accelerators", "16", "--", "train"]);
    assert_eq!(impossible.code, 2, "{}", impossible.stderr);
    assert!(
        impossible.stderr.starts_with("error[unschedulable]:") && impossible.stderr.contains("more than 8"),
        "{}",
        impossible.stderr
    );
    // The framework and models with speeds from the CLI.
    let jax = cli(
        &server.url,
        tenant,
        &[
            "job",
            "submit",
            "--name",
            "jax",
            "--accelerators",
            "1",
            "--framework",
            "jax",
            "--accelerator-model",
            "H100:3",
            "--accelerator-model",
            "A800",
            "--estimate",
            "2h",
            "--duration-s",
            "1",
            "--format",
            "json",
            "--",
            "train",
        ],
    );
    assert_eq!(jax.code, 0, "{}", jax.stderr);
    let jax: Value = serde_json::from_str(&jax.stdout).unwrap();
    assert_eq!(jax["request"]["accelerator_models"], json!([{"model": "H100", "speed": 3.0}, "A800"]), "{jax}");
    assert_eq!(jax["request"]["estimate_s"], 7_200);
    let bad_speed = cli(&server.url, tenant, &["job", "submit", "--name", "x", "--accelerator-model", "H100:fast"]);
    assert_eq!(bad_speed.code, 2, "{}", bad_speed.stderr);
    let quote = cli(&server.url, tenant, &["quote", "--accelerators", "8", "--duration-s", "3600", "--explain"]);
    assert!(
        quote.code == 0 && quote.stdout.contains("left out:") && quote.stdout.contains("zhongshan-inference"),
        "{}",
        quote.stdout
    );
    // An operator makes a tenant and a token for it; the token is printed once, as JSON.
    let operator = tokens["operator"].as_str().unwrap();
    assert_eq!(cli(&server.url, operator, &["tenant", "create", "acme"]).code, 0);
    let token = cli(&server.url, operator, &["token", "create", "--tenant", "acme", "--format", "json"]);
    let token: Value = serde_json::from_str(&token.stdout).unwrap();
    let acme = token["token"].as_str().unwrap();
    // Another tenant's job is not found (exit 2, the API's code).
    let other = cli(&server.url, acme, &["job", "show", &id]);
    assert_eq!(other.code, 2);
    assert!(other.stderr.starts_with("error[not_found]:"), "{}", other.stderr);
    let wrong = cli(&server.url, "sw_nope", &["job", "ls"]);
    assert_eq!((wrong.code, wrong.stderr.starts_with("error[invalid_token]:")), (2, true), "{}", wrong.stderr);
    assert_eq!(server.terminate(), 0, "SIGTERM is a clean shutdown");
    let verify =
        Command::new(BIN).args(["audit", "verify", "--data-dir", &dir.display().to_string()]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&verify.stdout).starts_with("audit chain intact"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tenant's job on the demo's `local` pool tries what an attacker would: print its
/// environment, read the data directory and the server's environment, signal the server. It
/// gets nothing of value (issue 15).
#[test]
fn a_local_job_cannot_reach_the_servers_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("isolation");
    let data = dir.join("data");
    let server = Server::start(&data, true);
    let tokens: Value = serde_json::from_str(&std::fs::read_to_string(data.join("demo-tokens.json")).unwrap()).unwrap();
    let tenant = tokens["tenant"].as_str().unwrap();
    let spy = format!(
        "env; echo ---; ls -la {data}; cat {data}/demo-tokens.json {data}/suanwang.db; \
         cat /proc/$PPID/environ; kill -0 $PPID && echo SIGNALLED; echo private > $HOME/x && cat $HOME/x",
        data = data.display()
    );
    let run = cli(
        &server.url,
        tenant,
        &["job", "submit", "--name", "spy", "--pool", "local", "--cpu-milli", "100", "--", "sh", "-c", &spy],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    wait_for(&format!("{}/api/v1/jobs/1", server.url), tenant, Duration::from_secs(30), "the spy ends", |j| {
        j["state"] == "succeeded" || j["state"] == "failed"
    });
    let logs = cli(&server.url, tenant, &["job", "logs", "1"]).stdout;
    for secret in [ADMIN, tokens["operator"].as_str().unwrap(), tokens["auditor"].as_str().unwrap(), tenant] {
        assert!(!logs.contains(secret), "a token leaked into the job:\n{logs}");
    }
    for leak in ["SUANWANG_LOG", "SQLite format", "SIGNALLED", "demo-tokens.json\n"] {
        assert!(!logs.contains(leak), "{leak:?} reached the job:\n{logs}");
    }
    assert!(logs.contains("SUANWANG_JOB_ID=1") && logs.contains("private"), "{logs}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "server.log") {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[test]
fn client_mistakes_exit_2_with_a_code() {
    let unreachable = cli("http://127.0.0.1:9", "t", &["job", "ls"]);
    assert_eq!(unreachable.code, 1, "an unreachable server is not the user's mistake");
    assert!(unreachable.stderr.starts_with("error[unreachable]:"));
    let no_name = cli("http://127.0.0.1:9", "t", &["job", "submit"]);
    assert_eq!(no_name.code, 2);
    let bad_url = cli("ftp://x", "t", &["pool", "ls"]);
    assert_eq!((bad_url.code, bad_url.stderr.starts_with("error[invalid_server]:")), (2, true));
    let no_store = Command::new(BIN).args(["audit", "verify", "--data-dir", "/nonexistent/suanwang"]).output().unwrap();
    assert_eq!(no_store.status.code(), Some(2));
    let bad_log = Command::new(BIN)
        .args(["serve", "--data-dir", "/nonexistent/suanwang", "--listen", "127.0.0.1:9"])
        .env("SUANWANG_LOG", "=x")
        .output()
        .unwrap();
    assert_eq!(bad_log.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_log.stderr).starts_with("error[invalid_log_filter]:"));
}

/// Jobs in the crash test (`SUANWANG_CRASH_JOBS` changes it).
fn crash_jobs() -> u64 {
    std::env::var("SUANWANG_CRASH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// The submissions are spread over this long, so that all three kills land while clients submit
/// and while the scheduler and the agents are changing jobs' states.
const SUBMIT_OVER: Duration = Duration::from_secs(12);

#[test]
fn acknowledged_jobs_survive_sigkill_exactly_once() {
    let jobs = crash_jobs();
    let dir = scratch("crash");
    let server = Mutex::new(Server::start(&dir, true));
    let url = server.lock().unwrap().url.clone();
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    agent
        .post(&format!("{url}/api/v1/tenants"))
        .set("Authorization", &format!("Bearer {ADMIN}"))
        .send_json(json!({"name": "crash"}))
        .unwrap();
    let next = AtomicU64::new(0);
    let acknowledged = Mutex::new(BTreeMap::<u64, i64>::new());
    let (kills, started) = (AtomicU64::new(0), Instant::now());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    let due = started + SUBMIT_OVER.mul_f64(i as f64 / jobs as f64);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let body = json!({"name": format!("crash-{i}"), "tenant": "crash", "command": ["true"], "cpu_milli": 100, "memory_mib": 64, "duration_s": 1});
                    // A careful client retries with the same key until it gets an answer.
                    loop {
                        let response = agent
                            .post(&format!("{url}/api/v1/jobs"))
                            .set("Authorization", &format!("Bearer {ADMIN}"))
                            .set("Idempotency-Key", &format!("crash-{i}"))
                            .send_json(&body);
                        match response {
                            Ok(r) => {
                                let job: Value = r.into_json().unwrap();
                                let previous = acknowledged.lock().unwrap().insert(i, job["id"].as_i64().unwrap());
                                assert!(previous.is_none());
                                break;
                            }
                            Err(ureq::Error::Status(code, r)) if code < 500 => panic!("{code}: {}", r.into_string().unwrap()),
                            Err(_) => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                }
            });
        }
        // The killer: three SIGKILLs at a quarter, a half and three quarters of the way.
        scope.spawn(|| {
            for quarter in 1..=3 {
                while (acknowledged.lock().unwrap().len() as u64) < jobs * quarter / 4 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                // Let the scheduler and the agents get going before each kill.
                std::thread::sleep(Duration::from_millis(1500));
                server.lock().unwrap().kill_and_restart();
                kills.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert_eq!(kills.load(Ordering::Relaxed), 3);
    assert_eq!(acknowledged.len() as u64, jobs);
    // Every acknowledged job exists, exactly once, under its key's id.
    let mut stored = BTreeMap::<String, (i64, String)>::new();
    let mut after = 0;
    loop {
        let page: Value = agent
            .get(&format!("{url}/api/v1/jobs?limit=1000&after={after}"))
            .set("Authorization", &format!("Bearer {ADMIN}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        for job in page["jobs"].as_array().unwrap() {
            let name = job["name"].as_str().unwrap().to_owned();
            let previous =
                stored.insert(name.clone(), (job["id"].as_i64().unwrap(), job["state"].as_str().unwrap().to_owned()));
            assert!(previous.is_none(), "{name} stored twice");
        }
        match page["next_after"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(stored.len() as u64, jobs, "no job lost and none doubled");
    for (i, id) in &acknowledged {
        assert_eq!(stored[&format!("crash-{i}")].0, *id);
    }
    // Every job runs to its end, the ones whose runs the kills cut short included.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let open: Value = agent
            .get(&format!("{url}/api/v1/jobs?limit=1&state=queued,placed,running,preempted"))
            .set("Authorization", &format!("Bearer {ADMIN}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        if open["jobs"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "jobs still open after 3 minutes: {open}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let code = server.into_inner().unwrap().terminate();
    assert_eq!(code, 0);
    // No job ran twice: every job has at most one terminal event and nothing after it.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut reruns = 0;
    runtime.block_on(async {
        let store = suanwang_store::store::Store::open_sqlite(&dir.join("suanwang.db")).await.unwrap();
        for (id, _) in stored.values() {
            let events = store.job_events(*id).await.unwrap();
            let terminal = events.iter().position(|e| e.state.is_terminal());
            if let Some(at) = terminal {
                assert_eq!(at, events.len() - 1, "job {id} changed after it ended: {events:?}");
            }
            reruns += usize::from(
                events.iter().filter(|e| e.state == suanwang_model::platform::JobState::Running).count() > 1,
            );
            let succeeded = events.iter().filter(|e| e.state == suanwang_model::platform::JobState::Succeeded).count();
            assert_eq!(succeeded, 1, "job {id} must succeed once: {events:?}");
        }
    });
    let verify = Command::new(BIN)
        .args(["audit", "verify", "--data-dir", &dir.display().to_string(), "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    let verdict: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verdict["intact"], true);
    eprintln!(
        "crash test: {jobs} jobs acknowledged through 3 SIGKILLs; each stored once and succeeded once ({reruns} runs cut short by a kill ran again); {} audit entries verify; {:.1} s",
        verdict["entries"],
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh PostgreSQL database for one test, dropped when the guard goes.
struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    fn create(admin_url: &str, name: &str) -> ScratchDatabase {
        let name = format!("{name}_{}", std::process::id());
        let psql = |sql: &str| {
            let status = Command::new("psql")
                .args([admin_url, "-qc", sql])
                .env("PGOPTIONS", "-c client_min_messages=warning")
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "psql {sql}");
        };
        psql(&format!("DROP DATABASE IF EXISTS {name}"));
        psql(&format!("CREATE DATABASE {name}"));
        let (base, query) = admin_url.split_once('?').map_or((admin_url, ""), |(b, q)| (b, q));
        let (server, _) = base.rsplit_once('/').unwrap();
        let url = if query.is_empty() { format!("{server}/{name}") } else { format!("{server}/{name}?{query}") };
        ScratchDatabase { admin_url: admin_url.to_owned(), name, url }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin_url, "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .stdout(Stdio::null())
            .status();
    }
}

fn post(url: &str, token: &str, body: &Value) -> Value {
    match ureq::post(url)
        .set("Authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_secs(10))
        .send_json(body)
    {
        Ok(response) => response.into_json().unwrap(),
        Err(ureq::Error::Status(code, response)) => panic!("POST {url}: {code} {}", response.into_string().unwrap()),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

fn job_states(url: &str, ids: &[i64]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            let job: Value = ureq::get(&format!("{url}/api/v1/jobs/{id}"))
                .set("Authorization", &format!("Bearer {ADMIN}"))
                .call()
                .unwrap()
                .into_json()
                .unwrap();
            job["state"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn wait_succeeded(url: &str, ids: &[i64], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let states = job_states(url, ids);
        if states.iter().all(|s| s == "succeeded") {
            return;
        }
        assert!(Instant::now() < deadline, "jobs did not all succeed: {states:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Two `serve` processes on one PostgreSQL database: one schedules, the other serves the API and
/// takes over when the first is killed; the pool's agent talks to the standby throughout.
#[test]
fn two_servers_share_postgres_and_the_standby_takes_over() {
    let Ok(admin_url) = std::env::var("SUANWANG_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("SUANWANG_REQUIRE_POSTGRES").is_none(),
            "SUANWANG_REQUIRE_POSTGRES is set but SUANWANG_TEST_DATABASE_URL is not"
        );
        eprintln!("SKIPPED: set SUANWANG_TEST_DATABASE_URL to run the two-server test on PostgreSQL");
        return;
    };
    let database = ScratchDatabase::create(&admin_url, "sw_two_servers");
    let args =
        || vec!["--database-url".to_owned(), database.url.clone(), "--heartbeat-timeout-s".to_owned(), "5".to_owned()];
    let first = Server::start_with(args());
    first.wait_role("leader", Duration::from_secs(10));
    let second = Server::start_with(args());
    std::thread::sleep(Duration::from_millis(2500)); // longer than a standby's retry interval
    assert_eq!((first.role(), second.role()), ("leader".to_owned(), "standby".to_owned()));

    // Everything below goes through the standby.
    let api = format!("{}/api/v1", second.url);
    post(&format!("{api}/tenants"), ADMIN, &json!({"name": "ha"}));
    let pool = "qianhai-a800";
    let agent_token = post(&format!("{api}/tokens"), ADMIN, &json!({"role": "provider", "pool": pool}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut agent = Command::new(BIN)
        .args(["agent", "--server", &second.url, "--token", &agent_token, "--backend", "sim", "--poll-s", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let submit = |i: usize| {
        let body = json!({"name": format!("ha-{i}"), "tenant": "ha", "pool": pool, "command": ["true"],
            "cpu_milli": 100, "memory_mib": 64, "duration_s": 1});
        post(&format!("{api}/jobs"), ADMIN, &body)["id"].as_i64().unwrap()
    };
    // Submitted to the standby, scheduled by the leader, run by the agent that talks to the standby.
    let before: Vec<i64> = (0..5).map(submit).collect();
    wait_succeeded(&second.url, &before, Duration::from_secs(30));

    // The leader dies; the standby takes the lock and schedules what comes next.
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    second.wait_role("leader", Duration::from_secs(10));
    let after: Vec<i64> = (5..10).map(submit).collect();
    wait_succeeded(&second.url, &after, Duration::from_secs(30));

    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(second.terminate(), 0);
    let verify = Command::new(BIN)
        .args(["audit", "verify", "--database-url", &database.url, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn bench_ledger_commits_balances_and_replays() {
    let dir = scratch("bench-ledger");
    let run = Command::new(BIN)
        .args(["bench", "ledger", "--transfers", "30000", "--batch", "1000", "--format", "json", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let result: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!((result["trial_balance_exact"].as_bool(), result["replay_matches"].as_bool()), (Some(true), Some(true)));
    assert_eq!(result["transfers"], 30_000);
    // The ledger in that directory is no longer empty: a second run refuses (exit 2).
    let again =
        Command::new(BIN).args(["bench", "ledger", "--transfers", "10", "--data-dir"]).arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("error[ledger_not_empty]:"));
    let bad = Command::new(BIN).args(["bench", "ledger", "--batch", "0"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The money commands end to end on the demo: a programme loaded from a file, a tenant applies, a
/// programme administrator approves, a GPU job runs and is billed, its voucher is claimed and
/// redeemed, and the ledger balances.
#[test]
fn a_voucher_from_the_cli_pays_a_share_of_a_billed_job() {
    let dir = scratch("money");
    let server = Server::start(&dir, true);
    let tokens: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("demo-tokens.json")).unwrap()).unwrap();
    let (tenant, operator) = (tokens["tenant"].as_str().unwrap(), tokens["operator"].as_str().unwrap());
    let year =
        1970 + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 31_556_952;
    let shenzhen =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/programs/shenzhen.toml"))
            .unwrap()
            .replace("fiscal_year = 2026", &format!("fiscal_year = {year}"));
    let file = dir.join("shenzhen.toml");
    std::fs::write(&file, shenzhen).unwrap();
    for _ in 0..2 {
        let load = cli(&server.url, operator, &["program", "load", file.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{}", load.stderr);
    }
    let apply = cli(&server.url, tenant, &["voucher", "apply", "shenzhen-training", "--format", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let application = serde_json::from_str::<Value>(&apply.stdout).unwrap()["id"].to_string();
    let admin = cli(&server.url, operator, &["token", "create", "--program", "shenzhen-training"]);
    assert_eq!(admin.code, 0, "{}", admin.stderr);
    let admin = admin.stdout.trim().to_owned();
    let usage = cli(&server.url, &admin, &["voucher", "decide", &application]);
    assert_eq!(usage.code, 2, "neither --approve nor --reject is a usage error");
    let decide = cli(&server.url, &admin, &["voucher", "decide", &application, "--approve"]);
    assert!(decide.code == 0 && decide.stdout.contains("approved"), "{}", decide.stderr);

    let submit = cli(
        &server.url,
        tenant,
        &[
            "job",
            "submit",
            "--name",
            "train",
            "--accelerators",
            "8",
            "--duration-s",
            "6",
            "--format",
            "json",
            "--",
            "train",
        ],
    );
    assert_eq!(submit.code, 0, "{}", submit.stderr);
    let job = serde_json::from_str::<Value>(&submit.stdout).unwrap()["id"].as_i64().unwrap();
    // Wait until the job succeeded and its usage is on an invoice.
    for _ in 0..300 {
        let run = cli(&server.url, tenant, &["job", "show", &job.to_string(), "--format", "json"]);
        let state = serde_json::from_str::<Value>(&run.stdout).unwrap()["state"].clone();
        let listed: Value =
            serde_json::from_str(&cli(&server.url, tenant, &["invoice", "ls", "--format", "json"]).stdout).unwrap();
        if state == "succeeded" && listed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The biller rates usage within a second; let it take the last report too.
    std::thread::sleep(Duration::from_millis(2_500));
    let invoices: Value =
        serde_json::from_str(&cli(&server.url, tenant, &["invoice", "ls", "--format", "json"]).stdout).unwrap();
    let invoice = &invoices[0];
    // 8 cards for 6 s on the demo's GPU pools: a few fen, enough for a 60% share of at least 1.
    assert!(invoice["amount_fen"].as_u64().unwrap() >= 2, "{invoices}");
    let claim = cli(
        &server.url,
        tenant,
        &[
            "voucher",
            "claim",
            "shenzhen-training",
            "--contract",
            &format!("job:{job}"),
            "--amount-fen",
            "100000",
            "--format",
            "json",
        ],
    );
    assert_eq!(claim.code, 0, "{}", claim.stderr);
    let claim_id = serde_json::from_str::<Value>(&claim.stdout).unwrap()["id"].to_string();
    let zero = cli(
        &server.url,
        tenant,
        &["voucher", "claim", "shenzhen-training", "--contract", "job:999999", "--amount-fen", "0"],
    );
    assert!(zero.code == 2 && zero.stderr.starts_with("error[contract_not_found]"), "{}", zero.stderr);
    let period = invoice["period"].as_str().unwrap();
    let redeem = cli(
        &server.url,
        tenant,
        &["voucher", "redeem", &claim_id, "--period", period, "--job", &job.to_string(), "--format", "json"],
    );
    assert_eq!(redeem.code, 0, "{}", redeem.stderr);
    let paid = serde_json::from_str::<Value>(&redeem.stdout).unwrap()["subsidy_fen"].as_u64().unwrap();
    // The demo tenant is a start-up: 60% of the line, floored.
    assert_eq!(paid, invoice["amount_fen"].as_u64().unwrap() * 6 / 10);
    let shown = cli(&server.url, tenant, &["invoice", "show", &invoice["tenant"].to_string(), period]);
    assert!(shown.code == 0 && shown.stdout.contains(&format!("job:{job}")), "{}", shown.stdout);
    let report = cli(&server.url, &admin, &["program", "show", "shenzhen-training"]);
    assert!(report.code == 0 && report.stdout.contains("shenzhen-training"), "{}", report.stderr);
    let balance = cli(&server.url, operator, &["money", "trial-balance"]);
    assert!(
        balance.code == 0 && balance.stdout.contains("balanced") && !balance.stdout.contains("NOT"),
        "{}",
        balance.stdout
    );

    // The market from the CLI: prices, a quote, an order, the book, and a clear error.
    let prices = cli(&server.url, tenant, &["market", "prices"]);
    assert!(prices.code == 0 && prices.stdout.contains("spot"), "{}", prices.stderr);
    let quote = cli(&server.url, tenant, &["quote", "--accelerators", "8", "--duration-s", "3600", "--format", "json"]);
    assert_eq!(quote.code, 0, "{}", quote.stderr);
    assert!(!serde_json::from_str::<Value>(&quote.stdout).unwrap()["options"].as_array().unwrap().is_empty());
    let start =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3_600).to_string();
    let end = (start.parse::<u64>().unwrap() + 86_400).to_string();
    let order = |key: &str, end: &str| {
        cli(
            &server.url,
            tenant,
            &[
                "market",
                "order",
                "--side",
                "buy",
                "--model",
                "A800-SXM4-80GB",
                "--region",
                "CN-GD",
                "--start-s",
                &start,
                "--end-s",
                end,
                "--cards",
                "8",
                "--limit-fen",
                "1500",
                "--key",
                key,
            ],
        )
    };
    let placed = order("k1", &end);
    assert_eq!(placed.code, 0, "{}", placed.stderr);
    let empty = order("k2", &start);
    assert!(empty.code == 2 && empty.stderr.starts_with("error[window_empty]"), "{}", empty.stderr);
    let book = cli(&server.url, tenant, &["market", "book"]);
    assert!(book.code == 0 && book.stdout.contains("A800-SXM4-80GB"), "{}", book.stdout);
    assert_eq!(server.terminate(), 0);
}

/// Whether a Slurm answers here (`scripts/slurm.sh start` and `SLURM_CONF`); `.ci/run` starts one
/// and sets `SUANWANG_REQUIRE_SLURM=1`, elsewhere the Slurm test says SKIPPED without one.
fn slurm_answers() -> bool {
    let answers = std::env::var_os("SLURM_CONF").is_some()
        && Command::new("scontrol").arg("ping").output().is_ok_and(|o| o.status.success());
    if !answers && std::env::var("SUANWANG_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
        panic!("SUANWANG_REQUIRE_SLURM is set but no Slurm answers (scripts/slurm.sh start; export SLURM_CONF=…)");
    }
    if answers {
        clear_leaked_gres();
    }
    answers
}

/// Slurm 22.05's controller, stopped and started under running jobs (the fault test does it
/// again and again), has been seen keeping GRES counted as allocated on a node with no job on it
/// (`AllocTRES=gres/gpu=8`, `CPUAlloc=0`), so every later GPU job pends with `Resources`. A
/// restart of the controller recounts. Done here, before a test starts, only when no job is in
/// the controller and the node still says it has GRES allocated.
fn clear_leaked_gres() {
    let queue = Command::new("squeue").args(["-h", "-o", "%i"]).output().unwrap();
    if !String::from_utf8_lossy(&queue.stdout).trim().is_empty() {
        return;
    }
    let nodes = Command::new("scontrol").args(["show", "node", "-o"]).output().unwrap();
    let text = String::from_utf8_lossy(&nodes.stdout).into_owned();
    let leaked = text.split_whitespace().any(|f| f.strip_prefix("AllocTRES=").is_some_and(|v| v.contains("gres/")));
    if leaked {
        eprintln!("Slurm's controller counts GRES allocated with no job in it ({text}); restarting it");
        slurm_script(&["stop-controller"]);
        slurm_script(&["start-controller"]);
    }
}

fn slurm_script(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm.sh");
    let status = Command::new("bash").arg(script).args(args).stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "scripts/slurm.sh {args:?} failed");
}

/// One test at a time on the shared Slurm (they stop its controller), across threads
/// (`cargo test`) and processes (`cargo nextest`): held until dropped.
fn slurm_lock() -> std::fs::File {
    let file = std::fs::File::create(std::env::temp_dir().join("suanwang-slurm-tests.lock")).unwrap();
    file.lock().unwrap();
    file
}

/// Whether the Slurm here keeps accounting in slurmdbd (`sacct` answers): `scripts/slurm.sh
/// start` runs one when MariaDB answers, and `.ci/run` requires it (`SUANWANG_SLURM_DBD=1`).
fn slurm_accounting() -> bool {
    let conf = std::fs::read_to_string(std::env::var_os("SLURM_CONF").unwrap()).unwrap_or_default();
    conf.contains("accounting_storage/slurmdbd")
}

/// For a test that needs slurmdbd (for `what`): whether it is here; without it the test says
/// SKIPPED, or fails where Slurm is required (`.ci/run` starts it with `SUANWANG_SLURM_DBD=1`).
fn slurm_accounting_or_skip(what: &str) -> bool {
    if slurm_accounting() {
        return true;
    }
    assert!(
        std::env::var("SUANWANG_REQUIRE_SLURM").map_or(true, |v| v != "1"),
        "SUANWANG_REQUIRE_SLURM is set but this Slurm keeps no accounting for {what}: start it with SUANWANG_SLURM_DBD=1"
    );
    eprintln!("SKIPPED: no slurmdbd here for {what} (SUANWANG_SLURM_DBD=1 scripts/slurm.sh start)");
    false
}

/// `suanwang agent --backend slurm`, killed when dropped.
struct Agent(Child);

impl Agent {
    /// An agent whose jobs carry `cluster` in their tag (tests sharing the Slurm use their own).
    fn start_as(url: &str, token: &str, dir: &Path, cluster: &str) -> Agent {
        Agent::start_with(url, token, dir, cluster, &[])
    }

    /// The same with more arguments (`--slurm-site`, `--slurm-partition`).
    fn start_with(url: &str, token: &str, dir: &Path, cluster: &str, more: &[String]) -> Agent {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("agent.log")).unwrap();
        let child = Command::new(BIN)
            .args(["agent", "--backend", "slurm", "--poll-s", "1", "--slurm-cluster", cluster, "--server", url])
            .args(more)
            .arg("--slurm-output-dir")
            .arg(dir.join("out"))
            .env("SUANWANG_TOKEN", token)
            .env("SUANWANG_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Agent(child)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str, token: &str) -> Value {
    ureq::get(url).set("Authorization", &format!("Bearer {token}")).call().unwrap().into_json().unwrap()
}

/// Waits until `check` holds for what `GET url` returns.
fn wait_for(url: &str, token: &str, within: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let value = get(url, token);
        if check(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: still {value:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The platform billed a job as Slurm ran it: Slurm's `RunTime` (whole seconds: its start and end
/// are kept in seconds, so a run of 2.2 s can read 3) × `cards`, or up to a second less when the
/// platform placed the job less than `RunTime` before Slurm ended it (a run is billed from its
/// placement at the earliest). Never more.
fn billed_as_slurm_ran(job: &Value, run_time_s: u64, cards: u64) {
    let billed = job["usage_accelerator_s"].as_f64().unwrap_or(-1.0);
    let most = (run_time_s * cards) as f64;
    let least = (run_time_s.saturating_sub(1) * cards) as f64;
    assert!(billed <= most && billed > least, "billed {billed} card-s for Slurm's {run_time_s} s × {cards}: {job:#}");
}

/// `scontrol show job -d -o` for the platform's job `id`, as key=value pairs.
fn slurm_job(id: i64) -> BTreeMap<String, String> {
    let out = Command::new("scontrol").args(["show", "job", "-d", "-o"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let prefix = format!("JobName=sw-{id}-");
    let line = text.lines().rfind(|l| l.contains(&prefix)).unwrap_or_else(|| panic!("no Slurm job for {id}"));
    line.split_whitespace().filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// The Slurm backend end to end on a real Slurm: `serve` and `suanwang agent --backend slurm`;
/// jobs submitted through the API run in Slurm, one succeeds (its output and usage arrive, usage =
/// Slurm's `RunTime` × GPUs), one fails with its exit code, one Slurm refuses (the platform job
/// fails with Slurm's reason), one is cancelled (and gone from Slurm). Then faults: slurmctld stops
/// under a running job and the agent restarts meanwhile (the pool goes unhealthy, the job stays
/// running, nothing is requeued; when Slurm is back the job ends and is billed once); the node is
/// drained under a running job (the pool goes unhealthy, the job finishes). Usage is rated and
/// billed, and the ledger balances.
#[test]
fn jobs_run_on_a_real_slurm_through_faults_and_are_billed() {
    jobs_through_faults(&[]);
}

/// The same through slurmrestd.
#[test]
fn jobs_run_on_a_real_slurm_through_slurmrestd_and_faults_and_are_billed() {
    if std::env::var_os("SLURM_CONF").is_none() && std::env::var("SUANWANG_REQUIRE_SLURM").map_or(true, |v| v != "1") {
        eprintln!("SKIPPED: no Slurm answers (scripts/slurm.sh start; export SLURM_CONF=…)");
        return;
    }
    let Some(rest) = slurmrestd_or_skip() else { return };
    jobs_through_faults(&rest);
}

/// The faults scenario, with the agent's `way` to Slurm (nothing: its commands).
fn jobs_through_faults(way: &[String]) {
    // First the lock: another test may have the controller stopped.
    let _slurm = slurm_lock();
    if !slurm_answers() {
        eprintln!("SKIPPED: no Slurm answers (scripts/slurm.sh start; export SLURM_CONF=…)");
        return;
    }
    let dir = scratch(if way.is_empty() { "slurm" } else { "slurm-rest" });
    // The federation promises more memory than Slurm's node has, so a job Slurm cannot fit is
    // placed and Slurm refuses it.
    let federation = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/federations/slurm-local.toml"),
    )
    .unwrap()
    .replace("memory_mib = 30517", "memory_mib = 65536");
    std::fs::write(dir.join("federation.toml"), federation).unwrap();
    // A silent Slurm agent is not a lost cluster: its pool's jobs fail over only after the
    // cluster failover timeout (ten minutes by default), so the agent can be down below while a
    // job ends.
    let server = Server::start_with(vec![
        "--data-dir".into(),
        dir.display().to_string(),
        "--federation".into(),
        dir.join("federation.toml").display().to_string(),
    ]);
    let url = server.url.clone();
    let provider = cli(&url, ADMIN, &["token", "create", "--role", "provider", "--pool", "slurm-local"]);
    assert_eq!(provider.code, 0, "{}", provider.stderr);
    let provider = provider.stdout.trim().to_owned();
    assert_eq!(cli(&url, ADMIN, &["tenant", "create", "acme"]).code, 0);
    let tenant = cli(&url, ADMIN, &["token", "create", "--tenant", "acme"]).stdout.trim().to_owned();
    // `scontrol update partitionname=main SETTING`.
    let partition = |setting: &str| {
        let status = Command::new("scontrol").args(["update", "partitionname=main", setting]).status().unwrap();
        assert!(status.success(), "scontrol update partition {setting}");
    };
    // The partition allows two days at most (restored to unlimited at the end).
    partition("maxtime=2-00:00:00");
    let mut agent = Agent::start_with(&url, &provider, &dir, "ci-test", way);
    let pool = format!("{url}/api/v1/pools/slurm-local");
    let reported =
        wait_for(&pool, &tenant, Duration::from_secs(20), "the pool reports healthy", |p| p["healthy"] == true);
    assert_eq!(reported["reported"]["gpus"].as_u64(), Some(8), "capacity from sinfo: {reported:#}");

    let submit = |body: Value| post(&format!("{url}/api/v1/jobs"), &tenant, &body)["id"].as_i64().unwrap();
    let job_url = |id: i64| format!("{url}/api/v1/jobs/{id}");
    let ended = |j: &Value| ["succeeded", "failed", "cancelled"].contains(&j["state"].as_str().unwrap_or(""));
    let ok = submit(json!({"name": "ok", "command": ["sh", "-c", "echo hello from slurm; env; sleep 2; echo bye"],
        "cpu_milli": 1000, "memory_mib": 256, "accelerators": 2}));
    let fails = submit(json!({"name": "fails", "command": ["sh", "-c", "echo failing >&2; exit 3"],
        "cpu_milli": 1000, "memory_mib": 128}));
    let too_big = submit(json!({"name": "too-big", "command": ["true"], "cpu_milli": 1000, "memory_mib": 40000}));
    // A gang (issue 16: gangs were placed on Slurm pools and then refused): two tasks start
    // together with a GPU each; the command runs once with the allocation around it.
    let gang = submit(json!({"name": "gang", "command": ["sh", "-c", "echo tasks=$SLURM_NTASKS gang=$SUANWANG_TASKS"],
        "cpu_milli": 1000, "memory_mib": 128, "accelerators": 1, "tasks": 2}));
    let cancelled = submit(json!({"name": "cancelled", "command": ["sleep", "300"], "cpu_milli": 1000,
        "memory_mib": 128, "accelerators": 1}));
    wait_for(&job_url(cancelled), &tenant, Duration::from_secs(30), "the long job runs", |j| j["state"] == "running");
    post(&format!("{url}/api/v1/jobs/{cancelled}/cancel"), &tenant, &json!({}));

    let ok_job = wait_for(&job_url(ok), &tenant, Duration::from_secs(60), "ok ends", ended);
    assert_eq!(ok_job["state"], "succeeded", "{ok_job:#}");
    let logs = get(&format!("{url}/api/v1/jobs/{ok}/logs"), &tenant).to_string();
    assert!(logs.contains("hello from slurm") && logs.contains("bye"), "{logs}");
    // The job sees its own variables, never the agent's (whose environment holds the pool's token).
    assert!(logs.contains(&format!("SUANWANG_JOB_ID={ok}")), "{logs}");
    assert!(!logs.contains("SUANWANG_TOKEN") && !logs.contains(&provider), "the agent's token reached a job: {logs}");
    // Usage is Slurm's own accounting: RunTime × the GPUs Slurm allocated.
    let record = slurm_job(ok);
    assert_eq!(record["JobState"], "COMPLETED");
    let run_time: u64 = record["RunTime"].rsplit(':').next().unwrap().parse().unwrap();
    assert!(record["JOB_GRES"].ends_with(":2"), "{record:?}");
    let ok_job = wait_for(&job_url(ok), &tenant, Duration::from_secs(10), "ok's usage", |j| {
        j["usage_accelerator_s"].as_f64().is_some_and(|u| u > 0.0)
    });
    billed_as_slurm_ran(&ok_job, run_time, 2);

    let failed = wait_for(&job_url(fails), &tenant, Duration::from_secs(60), "fails ends", ended);
    assert_eq!(failed["state"], "failed");
    let history = failed.to_string();
    assert!(history.contains("FAILED (NonZeroExitCode), exit code 3"), "{failed:#}");
    // A time limit past the partition's MaxTime would pend for ever: the agent refuses it.
    let too_long = submit(json!({"name": "too-long", "command": ["true"], "cpu_milli": 1000, "memory_mib": 128,
        "time_limit_s": 3 * 86_400}));
    let refused_long = wait_for(&job_url(too_long), &tenant, Duration::from_secs(60), "too-long ends", ended);
    assert_eq!(refused_long["state"], "failed", "{refused_long:#}");
    assert!(
        refused_long.to_string().contains("asks a time limit of 72 h and partition main allows at most 48 h"),
        "{refused_long:#}"
    );
    let gang_job = wait_for(&job_url(gang), &tenant, Duration::from_secs(60), "gang ends", ended);
    assert_eq!(gang_job["state"], "succeeded", "{gang_job:#}");
    let logs = get(&format!("{url}/api/v1/jobs/{gang}/logs"), &tenant).to_string();
    assert!(logs.contains("tasks=2 gang=2"), "{logs}");
    assert!(slurm_job(gang)["NumTasks"] == "2", "{:?}", slurm_job(gang));
    // Slurm's pending reason reaches the job's history: the partition is down, so the job waits
    // in Slurm (Reason=PartitionDown); once it is up again the job runs.
    partition("state=DOWN");
    let waits = submit(json!({"name": "waits", "command": ["true"], "cpu_milli": 1000, "memory_mib": 128}));
    let noted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&job_url(waits), &tenant, Duration::from_secs(30), "the pending reason", |j| {
            j.to_string().contains("is pending (PartitionDown)")
        })
    }));
    partition("state=UP");
    let noted = noted.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert_eq!(noted["state"], "placed", "{noted:#}");
    let ran = wait_for(&job_url(waits), &tenant, Duration::from_secs(60), "waits ends", ended);
    assert_eq!(ran["state"], "succeeded", "{ran:#}");
    let refused = wait_for(&job_url(too_big), &tenant, Duration::from_secs(60), "too-big ends", ended);
    assert_eq!(refused["state"], "failed");
    assert!(refused.to_string().contains("Slurm refused the job"), "{refused:#}");
    let gone = wait_for(&job_url(cancelled), &tenant, Duration::from_secs(30), "cancel", ended);
    assert_eq!(gone["state"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(20);
    while slurm_job(cancelled)["JobState"] != "CANCELLED" {
        assert!(Instant::now() < deadline, "the cancelled job still runs in Slurm: {:?}", slurm_job(cancelled));
        std::thread::sleep(Duration::from_millis(200));
    }

    // A cancel sent while the agent is down used to be lost (the restarted agent never cancelled
    // the job: it ran on, unbilled). The restarted agent finds its own Slurm job that the platform
    // no longer runs and cancels it.
    let orphan = submit(json!({"name": "orphan", "command": ["sleep", "300"], "cpu_milli": 1000,
        "memory_mib": 128, "accelerators": 1}));
    wait_for(&job_url(orphan), &tenant, Duration::from_secs(30), "orphan runs", |j| j["state"] == "running");
    assert_eq!(slurm_job(orphan)["Comment"], "suanwang:ci-test:default", "{:?}", slurm_job(orphan));
    let _ = agent.0.kill();
    let _ = agent.0.wait();
    post(&format!("{url}/api/v1/jobs/{orphan}/cancel"), &tenant, &json!({}));
    assert_eq!(slurm_job(orphan)["JobState"], "RUNNING", "nobody cancelled it in Slurm yet");
    agent = Agent::start_with(&url, &provider, &dir, "ci-test", way);
    let deadline = Instant::now() + Duration::from_secs(30);
    while slurm_job(orphan)["JobState"] != "CANCELLED" {
        assert!(Instant::now() < deadline, "the restarted agent left it running: {:?}", slurm_job(orphan));
        std::thread::sleep(Duration::from_millis(200));
    }
    let agent_log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
    assert!(agent_log.contains("cancelled a Slurm job the platform no longer runs here"), "{agent_log}");
    assert_eq!(get(&job_url(orphan), &tenant)["state"], "cancelled");

    // slurmctld goes away under a running job, and the agent restarts while it is away.
    let outage = submit(json!({"name": "outage", "command": ["sh", "-c", "echo start; sleep 8; echo end"],
        "cpu_milli": 1000, "memory_mib": 128, "accelerators": 4}));
    wait_for(&job_url(outage), &tenant, Duration::from_secs(30), "outage runs", |j| j["state"] == "running");
    slurm_script(&["stop-controller"]);
    let restart = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&pool, &tenant, Duration::from_secs(20), "the pool goes unhealthy", |p| p["healthy"] == false);
        drop(std::mem::replace(&mut agent, Agent::start_with(&url, &provider, &dir, "ci-test", way)));
        std::thread::sleep(Duration::from_secs(3));
        let job = get(&job_url(outage), &tenant);
        assert_eq!(job["state"], "running", "nothing is requeued while Slurm is away: {job:#}");
    }));
    slurm_script(&["start-controller"]);
    if let Err(panic) = restart {
        std::panic::resume_unwind(panic);
    }
    let done = wait_for(&job_url(outage), &tenant, Duration::from_secs(90), "outage ends", ended);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let record = slurm_job(outage);
    let run_time: u64 = record["RunTime"].rsplit(':').next().unwrap().parse().unwrap();
    let done = wait_for(&job_url(outage), &tenant, Duration::from_secs(10), "outage's usage", |j| {
        j["usage_accelerator_s"].as_f64().is_some_and(|u| u > 0.0)
    });
    billed_as_slurm_ran(&done, run_time, 4);
    let logs = get(&format!("{url}/api/v1/jobs/{outage}/logs"), &tenant).to_string();
    assert_eq!(logs.matches("start").count(), 1, "a restarted agent resends no line: {logs}");
    wait_for(&pool, &tenant, Duration::from_secs(30), "the pool is healthy again", |p| p["healthy"] == true);

    // The node is drained under a running job: the pool takes no new work; the job finishes.
    let node = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap();
    let drained = submit(json!({"name": "drained", "command": ["sleep", "4"], "cpu_milli": 1000,
        "memory_mib": 128, "accelerators": 1}));
    wait_for(&job_url(drained), &tenant, Duration::from_secs(30), "drained runs", |j| j["state"] == "running");
    let scontrol = |state: &str| {
        let status = Command::new("scontrol")
            .args(["update", &format!("nodename={}", node.trim()), &format!("state={state}")])
            .args((state == "drain").then_some("reason=suanwang-test"))
            .status()
            .unwrap();
        assert!(status.success(), "scontrol update state={state}");
    };
    scontrol("drain");
    let unhealthy = wait_for(&pool, &tenant, Duration::from_secs(20), "drained pool", |p| p["healthy"] == false);
    scontrol("resume");
    assert_eq!(unhealthy["reported"]["nodes_usable"], 0, "{unhealthy:#}");
    assert_eq!(
        unhealthy["problem"], "none of the partition's 1 nodes can take work (down, drained or failing)",
        "the pool's health says why: {unhealthy:#}"
    );
    let finished = wait_for(&job_url(drained), &tenant, Duration::from_secs(60), "drained ends", ended);
    assert_eq!(finished["state"], "succeeded", "{finished:#}");
    wait_for(&pool, &tenant, Duration::from_secs(30), "resumed pool", |p| p["healthy"] == true);

    // The agent is down while a job ends, and stays down until the controller has forgotten the
    // job (MinJobAge): its end and usage are read from Slurm's accounting (sacct, slurmdbd).
    let mut billed = vec![ok, gang, cancelled, orphan, outage, drained];
    if slurm_accounting() {
        let forgotten = submit(json!({"name": "forgotten", "command": ["sh", "-c", "echo once; sleep 2"],
            "cpu_milli": 1000, "memory_mib": 128, "accelerators": 3}));
        wait_for(&job_url(forgotten), &tenant, Duration::from_secs(30), "forgotten runs", |j| j["state"] == "running");
        let _ = agent.0.kill();
        let _ = agent.0.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while slurm_job(forgotten)["JobState"] != "COMPLETED" {
            assert!(Instant::now() < deadline, "forgotten does not end in Slurm: {:?}", slurm_job(forgotten));
            std::thread::sleep(Duration::from_millis(200));
        }
        let record = slurm_job(forgotten);
        let run_time: u64 = record["RunTime"].rsplit(':').next().unwrap().parse().unwrap();
        slurm_script(&["min-job-age", "2"]);
        let purged = std::panic::catch_unwind(|| {
            // slurmctld purges old jobs once a minute.
            let deadline = Instant::now() + Duration::from_secs(150);
            let named = format!("JobName=sw-{forgotten}-");
            loop {
                let out = Command::new("scontrol").args(["show", "job", "-o"]).output().unwrap();
                if !String::from_utf8_lossy(&out.stdout).contains(&named) {
                    break;
                }
                assert!(Instant::now() < deadline, "the controller still remembers forgotten");
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        slurm_script(&["min-job-age", "3600"]);
        if let Err(panic) = purged {
            std::panic::resume_unwind(panic);
        }
        let job = get(&job_url(forgotten), &tenant);
        assert_eq!(job["state"], "running", "the platform still waits for the agent: {job:#}");
        // The agent comes back while slurmdbd is away: the job waits for it (neither failed
        // nor requeued as lost), then ends from sacct once slurmdbd answers.
        slurm_script(&["stop-dbd"]);
        let away = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            agent = Agent::start_with(&url, &provider, &dir, "ci-test", way);
            std::thread::sleep(Duration::from_secs(4));
            let job = get(&job_url(forgotten), &tenant);
            assert_eq!(job["state"], "running", "waits while slurmdbd is away: {job:#}");
        }));
        slurm_script(&["start-dbd"]);
        if let Err(panic) = away {
            std::panic::resume_unwind(panic);
        }
        let done = wait_for(&job_url(forgotten), &tenant, Duration::from_secs(30), "forgotten ends", ended);
        assert_eq!(done["state"], "succeeded", "read from sacct: {done:#}");
        let done = wait_for(&job_url(forgotten), &tenant, Duration::from_secs(10), "forgotten's usage", |j| {
            j["usage_accelerator_s"].as_f64().is_some_and(|u| u > 0.0)
        });
        billed_as_slurm_ran(&done, run_time, 3);
        let logs = get(&format!("{url}/api/v1/jobs/{forgotten}/logs"), &tenant).to_string();
        assert_eq!(logs.matches("once").count(), 1, "{logs}");
        let agent_log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
        assert!(agent_log.contains("read jobs the controller forgot from sacct"), "sacct was not read: {agent_log}");
        assert!(agent_log.contains("accounting is away"), "slurmdbd was not seen away: {agent_log}");
        billed.push(forgotten);
    } else {
        eprintln!("no slurmdbd here: the forgotten-job part is skipped (scripts/slurm.sh start with MariaDB runs one)");
    }

    // Usage is rated and billed, and the ledger balances.
    // Each job's line is its usage at the pool's list price, 1,200 fen per card-hour, floored.
    // The cancelled job ran a few seconds on one GPU before its cancel: that is billed too.
    let expected_fen: u64 = billed
        .iter()
        .map(|&id| (get(&job_url(id), &tenant)["usage_accelerator_s"].as_f64().unwrap() as u64) * 1200 / 3600)
        .sum();
    let total = |v: &Value| v.as_array().map_or(0, |a| a.iter().map(|i| i["amount_fen"].as_u64().unwrap_or(0)).sum());
    let invoices = wait_for(&format!("{url}/api/v1/invoices"), &tenant, Duration::from_secs(20), "invoiced", |v| {
        total(v) == expected_fen
    });
    assert!(expected_fen > 0, "{invoices:#}");
    let balance = cli(&url, ADMIN, &["money", "trial-balance"]);
    assert!(
        balance.code == 0 && balance.stdout.contains("balanced") && !balance.stdout.contains("NOT"),
        "{}",
        balance.stdout
    );
    partition("maxtime=UNLIMITED");
    drop(agent);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tenants on a real Slurm as a centre sets them up (issue 16; `scripts/slurm.sh` makes Unix
/// users `sw-acme` and `sw-beta` and Slurm accounts `acme` and `beta`, and enforces
/// associations). Two pools on one controller: GPUs in partition `main`, Ascend NPUs (GRES
/// `npu:910b`) in partition `npu`, each agent with its site file. A tenant's job runs as its own
/// user under its own account, in a directory of its own, with none of the agent's environment;
/// another tenant's job can neither read that output, nor cancel that job, nor run unbilled work
/// with `sbatch` (the agent cancels it). NPUs are requested as their GRES and billed as cards of
/// their model. A wrong account, an unlisted tenant and a GRES no node has are clear failures,
/// and the pool's health says what is wrong.
#[test]
fn tenants_on_a_real_slurm_run_as_their_own_users_and_accounts() {
    tenants_on_a_real_slurm(&[]);
}

/// The same through slurmrestd (`--slurmrestd`): the agent runs no Slurm command.
#[test]
fn tenants_on_a_real_slurm_through_slurmrestd_run_as_their_own_users_and_accounts() {
    let _slurm = slurm_lock();
    if !slurm_answers() {
        eprintln!("SKIPPED: no Slurm answers (scripts/slurm.sh start; export SLURM_CONF=…)");
        return;
    }
    let Some(rest) = slurmrestd_or_skip() else { return };
    drop(_slurm);
    tenants_on_a_real_slurm(&rest);
}

/// The agent's arguments for the slurmrestd `scripts/slurm.sh start` runs (it exports
/// `SUANWANG_SLURMRESTD` and `SUANWANG_SLURMRESTD_TOKEN`); `None` (SKIPPED) without one, a
/// failure where Slurm is required.
fn slurmrestd_or_skip() -> Option<Vec<String>> {
    let url = std::env::var("SUANWANG_SLURMRESTD").ok().filter(|u| !u.is_empty());
    let token = std::env::var("SUANWANG_SLURMRESTD_TOKEN").ok().filter(|t| !t.is_empty());
    let (Some(url), Some(token)) = (url, token) else {
        assert!(
            std::env::var("SUANWANG_REQUIRE_SLURM").map_or(true, |v| v != "1"),
            "SUANWANG_REQUIRE_SLURM is set but no slurmrestd is (source the output of scripts/slurm.sh start)"
        );
        eprintln!("SKIPPED: no slurmrestd here (scripts/slurm.sh start exports SUANWANG_SLURMRESTD)");
        return None;
    };
    Some(vec![
        "--slurmrestd".to_owned(),
        url,
        "--slurmrestd-token-file".to_owned(),
        token,
        "--slurmrestd-user".to_owned(),
        "root".to_owned(),
    ])
}

/// The tenants scenario, with the agent's `way` to Slurm (nothing: its commands).
fn tenants_on_a_real_slurm(way: &[String]) {
    let _slurm = slurm_lock();
    if !slurm_answers() {
        eprintln!("SKIPPED: no Slurm answers (scripts/slurm.sh start; export SLURM_CONF=…)");
        return;
    }
    if !slurm_accounting_or_skip("Slurm accounts") {
        return;
    }
    let rest = !way.is_empty();
    let dir = scratch(if rest { "slurm-tenants-rest" } else { "slurm-tenants" });
    let federation = r#"
name = "slurm-tenants"
[[site]]
name = "local"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.54
longitude_deg = 113.93

[[pool]]
name = "slurm-gpu"
site = "local"
provider = "this machine's Slurm, partition main"
backend = "slurm"
pue = 1.3
green_share_pct = 0
card_hour_fen = { "A800-SXM4-80GB" = 1200 }
[[pool.nodes]]
count = 1
accelerator = "A800-SXM4-80GB"
accelerators_per_node = 8
cpu_milli = 16000
memory_mib = 30517

[[pool]]
name = "slurm-npu"
site = "local"
provider = "this machine's Slurm, partition npu"
backend = "slurm"
pue = 1.3
green_share_pct = 0
card_hour_fen = { "Ascend-910B" = 3600 }
[[pool.nodes]]
count = 1
accelerator = "Ascend-910B"
accelerators_per_node = 4
cpu_milli = 16000
memory_mib = 30517
"#;
    std::fs::write(dir.join("federation.toml"), federation).unwrap();
    let server = Server::start_with(vec![
        "--data-dir".into(),
        dir.display().to_string(),
        "--federation".into(),
        dir.join("federation.toml").display().to_string(),
    ]);
    let url = server.url.clone();
    let provider = |pool: &str| {
        let run = cli(&url, ADMIN, &["token", "create", "--role", "provider", "--pool", pool]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.trim().to_owned()
    };
    let (gpu_token, npu_token) = (provider("slurm-gpu"), provider("slurm-npu"));
    let tenant = |name: &str| {
        assert_eq!(cli(&url, ADMIN, &["tenant", "create", name]).code, 0);
        cli(&url, ADMIN, &["token", "create", "--tenant", name]).stdout.trim().to_owned()
    };
    let (acme, beta, gamma, delta) = (tenant("acme"), tenant("beta"), tenant("gamma"), tenant("delta"));
    let site = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let gpu_site = site(
        "gpu-site.toml",
        r#"
unlisted_tenants = "refuse"
[gres]
"A800-SXM4-80GB" = "gpu:sim"
[tenants.acme]
account = "acme"
user = "sw-acme"
[tenants.beta]
account = "beta"
user = "sw-beta"
qos = "normal"
[tenants.gamma]
account = "no-such-account"
"#,
    );
    let npu_site = |gres: &str| {
        site(
            "npu-site.toml",
            &format!("[gres]\n\"Ascend-910B\" = \"{gres}\"\n[tenants.acme]\naccount = \"acme\"\nuser = \"sw-acme\"\n"),
        )
    };
    // Not under the server's data directory, which is 0700: the tenants' users must get through.
    let agents = scratch(if rest { "slurm-tenants-rest-agents" } else { "slurm-tenants-agents" });
    let (gpu_dir, npu_dir) = (agents.join("gpu"), agents.join("npu"));
    std::fs::create_dir_all(&gpu_dir).unwrap();
    std::fs::create_dir_all(&npu_dir).unwrap();
    // A centre's output directory would be on a shared filesystem; here everything above the
    // agents' output directories must let the tenants' users through.
    use std::os::unix::fs::PermissionsExt;
    for open in [&agents, &gpu_dir, &npu_dir] {
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let args = |site: String, partition: &str| {
        let mut args = vec!["--slurm-site".to_owned(), site, "--slurm-partition".to_owned(), partition.to_owned()];
        args.extend_from_slice(way);
        args
    };
    let _gpu_agent = Agent::start_with(&url, &gpu_token, &gpu_dir, "ci-tenants", &args(gpu_site, "main"));
    let mut npu_agent = Agent::start_with(&url, &npu_token, &npu_dir, "ci-tenants", &args(npu_site("npu:910b"), "npu"));
    let pool = |name: &str| format!("{url}/api/v1/pools/{name}");
    wait_for(&pool("slurm-gpu"), &acme, Duration::from_secs(20), "the GPU pool is healthy", |p| p["healthy"] == true);
    let npus = wait_for(&pool("slurm-npu"), &acme, Duration::from_secs(20), "the NPU pool is healthy", |p| {
        p["healthy"] == true
    });
    assert_eq!(npus["reported"]["gpus"].as_u64(), Some(4), "NPUs are the pool's cards: {npus:#}");

    let submit = |token: &str, body: Value| post(&format!("{url}/api/v1/jobs"), token, &body)["id"].as_i64().unwrap();
    let job_url = |id: i64| format!("{url}/api/v1/jobs/{id}");
    let ended = |j: &Value| ["succeeded", "failed", "cancelled"].contains(&j["state"].as_str().unwrap_or(""));
    let logs = |id: i64, token: &str| get(&format!("{url}/api/v1/jobs/{id}/logs"), token).to_string();

    // acme's job: its user, its account, its own directory, no agent environment.
    let secret = submit(
        &acme,
        json!({"name": "secret", "pool": "slurm-gpu", "accelerators": 1, "cpu_milli": 1000,
        "memory_mib": 128, "command": ["sh", "-c", "id -un; pwd; env; echo acme-secret-words; sleep 60"]}),
    );
    wait_for(&job_url(secret), &acme, Duration::from_secs(30), "secret runs", |j| j["state"] == "running");
    let record = slurm_job(secret);
    assert_eq!(
        (record["UserId"].split('(').next(), record["Account"].as_str()),
        (Some("sw-acme"), "acme"),
        "{record:?}"
    );
    assert_eq!(record["JOB_GRES"], "gpu:sim:1", "typed GRES: {record:?}");
    let wait_logs = |id: i64, token: &str, words: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = logs(id, token);
            if text.contains(words) {
                return text;
            }
            assert!(Instant::now() < deadline, "no {words:?} in the logs of {id}: {text}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let text = wait_logs(secret, &acme, "acme-secret-words");
    let job_dir = record["WorkDir"].clone();
    assert!(text.contains("sw-acme") && text.contains(&job_dir), "{text}");
    assert!(text.contains("SLURM_JOB_ACCOUNT=acme"), "{text}");
    assert!(!text.contains("SUANWANG_TOKEN") && !text.contains(&gpu_token), "the agent's token reached a job: {text}");
    let out_file = record["StdOut"].clone();
    assert!(out_file.starts_with(&job_dir), "output in the job's own directory: {record:?}");

    // beta's job tries what a hostile tenant would.
    let hostile = format!(
        "cat {out_file} && echo READ-IT; ls {parent} && echo LISTED-IT; scancel {slurm_id} && echo CANCELLED-IT; \
         echo sbatch=$(sbatch --parsable --job-name=free-work --wrap='sleep 300'); echo hostile-done",
        parent = gpu_dir.join("out").display(),
        slurm_id = record["JobId"],
    );
    let attack = submit(
        &beta,
        json!({"name": "hostile", "pool": "slurm-gpu", "cpu_milli": 1000, "memory_mib": 128,
        "command": ["sh", "-c", hostile]}),
    );
    let attacked = wait_for(&job_url(attack), &beta, Duration::from_secs(60), "hostile ends", ended);
    let text = logs(attack, &beta);
    assert!(text.contains("hostile-done"), "{attacked:#} {text}");
    for done in ["READ-IT", "LISTED-IT", "CANCELLED-IT", "acme-secret-words"] {
        assert!(!text.contains(done), "beta's job did {done}: {text}");
    }
    assert_eq!(slurm_job(secret)["JobState"], "RUNNING", "acme's job still runs");
    // The Slurm job beta's job submitted itself is cancelled by the agent.
    let free: u64 = text
        .split("sbatch=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the hostile job could not sbatch at all: {text}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out =
            Command::new("squeue").args(["-h", "-t", "all", "-j", &free.to_string(), "-o", "%T"]).output().unwrap();
        let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if state == "CANCELLED" {
            break;
        }
        assert!(Instant::now() < deadline, "the agent left beta's own Slurm job {free} in {state}");
        std::thread::sleep(Duration::from_millis(300));
    }
    post(&format!("{url}/api/v1/jobs/{secret}/cancel"), &acme, &json!({}));

    // NPUs: the model's GRES, billed as that model's cards.
    let npu_job = submit(
        &acme,
        json!({"name": "npu", "pool": "slurm-npu", "accelerators": 2, "cpu_milli": 1000,
        "memory_mib": 128, "command": ["sh", "-c", "echo on npus; sleep 2"]}),
    );
    let done = wait_for(&job_url(npu_job), &acme, Duration::from_secs(60), "npu ends", ended);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let record = slurm_job(npu_job);
    assert_eq!((record["JOB_GRES"].as_str(), record["Partition"].as_str()), ("npu:910b:2", "npu"), "{record:?}");
    let run_time: u64 = record["RunTime"].rsplit(':').next().unwrap().parse().unwrap();
    let done = wait_for(&job_url(npu_job), &acme, Duration::from_secs(10), "npu's usage", |j| {
        j["usage_accelerator_s"].as_f64().is_some_and(|u| u > 0.0)
    });
    billed_as_slurm_ran(&done, run_time, 2);

    // An array from the CLI: three Slurm jobs, each told its index, each billed on its own.
    let array = cli(
        &url,
        &acme,
        &[
            "job",
            "submit",
            "--name",
            "sweep",
            "--array",
            "3",
            "--pool",
            "slurm-gpu",
            "--accelerators",
            "1",
            "--cpu-milli",
            "1000",
            "--memory-mib",
            "128",
            "--",
            "sh",
            "-c",
            "echo index=$SUANWANG_ARRAY_INDEX of $SUANWANG_ARRAY_SIZE; sleep 1",
        ],
    );
    assert_eq!(array.code, 0, "{}", array.stderr);
    let ids: Vec<i64> = array
        .stdout
        .trim()
        .strip_prefix("array of 3 jobs: ")
        .unwrap_or_else(|| panic!("{}", array.stdout))
        .split(' ')
        .map(|id| id.parse().unwrap())
        .collect();
    let mut slurm_ids = BTreeSet::new();
    for (index, id) in ids.iter().enumerate() {
        let done = wait_for(&job_url(*id), &acme, Duration::from_secs(60), "an array job ends", |j| {
            ended(j) && j["usage_accelerator_s"].as_f64().is_some_and(|u| u > 0.0)
        });
        assert_eq!(
            (done["state"].as_str(), done["name"].as_str()),
            (Some("succeeded"), Some(format!("sweep[{index}]").as_str()))
        );
        wait_logs(*id, &acme, &format!("index={index} of 3"));
        slurm_ids.insert(slurm_job(*id)["JobId"].clone());
    }
    assert_eq!(slurm_ids.len(), 3, "one Slurm job each");

    // A wrong account: the job fails saying so, and so does the pool's health.
    let wrong = submit(
        &gamma,
        json!({"name": "wrong-account", "pool": "slurm-gpu", "cpu_milli": 1000,
        "memory_mib": 128, "command": ["true"]}),
    );
    let failed = wait_for(&job_url(wrong), &gamma, Duration::from_secs(30), "wrong-account ends", ended);
    assert_eq!(failed["state"], "failed");
    assert!(failed.to_string().contains("provider's configuration (account)"), "{failed:#}");
    let health = wait_for(&pool("slurm-gpu"), &gamma, Duration::from_secs(10), "the account problem", |p| {
        p["problem"].as_str().is_some_and(|m| m.contains("Slurm refuses this pool's account"))
    });
    assert_eq!(health["healthy"], true, "one tenant's account does not stop the others: {health:#}");
    // A tenant the site file does not list.
    let unlisted = submit(
        &delta,
        json!({"name": "unlisted", "pool": "slurm-gpu", "cpu_milli": 1000,
        "memory_mib": 128, "command": ["true"]}),
    );
    let failed = wait_for(&job_url(unlisted), &delta, Duration::from_secs(30), "unlisted ends", ended);
    assert!(failed.to_string().contains("tenant delta is not one of them"), "{failed:#}");

    // A GRES type no node has.
    drop(std::mem::replace(
        &mut npu_agent,
        Agent::start_with(&url, &npu_token, &npu_dir, "ci-tenants", &args(npu_site("npu:910c"), "npu")),
    ));
    let mistyped = submit(
        &acme,
        json!({"name": "mistyped", "pool": "slurm-npu", "accelerators": 1,
        "cpu_milli": 1000, "memory_mib": 128, "command": ["true"]}),
    );
    let failed = wait_for(&job_url(mistyped), &acme, Duration::from_secs(30), "mistyped ends", ended);
    assert!(failed.to_string().contains("GRES npu:910c"), "{failed:#}");
    wait_for(&pool("slurm-npu"), &acme, Duration::from_secs(10), "the GRES problem", |p| {
        p["problem"].as_str().is_some_and(|m| m.contains("none of the partition's nodes has"))
    });
    let log = std::fs::read_to_string(npu_dir.join("agent.log")).unwrap();
    assert!(log.contains("check the site file's [gres]"), "{log}");
    let log = std::fs::read_to_string(gpu_dir.join("agent.log")).unwrap();
    assert!(log.contains("outside the platform"), "{log}");
    drop(npu_agent);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&agents);
}

/// Parity: the same small workload through `simulate queue --programs` and through `serve` with
/// simulated agents on the same federation gets the same pools and the same money to the fen:
/// charges per tenant and in all, the platform's fee, and the subsidy a programme pays.
///
/// What differs by design (also in docs/money.md):
/// - **Time.** The simulator replays on a virtual clock that starts on 1 January of the first
///   programme's year; the server runs on the wall clock. Invoice periods (months) differ; totals
///   do not.
/// - **Default framework.** The server runs a card job that names neither a framework, models, a
///   pool nor a contract as `cuda` (`serve --default-framework`); a trace's job runs anywhere
///   unless it says. Every card job here says.
/// - **Vouchers.** The simulator applies every tenant to every programme, approves the eligible,
///   claims for each job from the programme that pays most (the programme's ratio of the job's
///   charges) and redeems each line. On the platform tenants and bureaus take these steps; this
///   test takes them as the simulator does.
/// - **Run times.** The simulator runs a job for its duration at the reference card's speed, so a
///   card k times as fast finishes in 1/k of it; a simulated pool on the platform runs a job for
///   its `duration_s` of wall time (it knows no speeds), and the platform bills the run from its
///   agent's start and end within its own record. This test gives each server job the duration
///   the simulator ran it for.
/// - Prices here are a hundred times real ones, so that runs of seconds cost whole yuan.
#[test]
fn the_simulator_and_the_server_agree_on_pools_and_money() {
    let dir = scratch("parity");
    let year: i64 = 1970
        + (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 31_556_952) as i64;
    let federation = dir.join("parity.toml");
    std::fs::write(
        &federation,
        r#"
name = "parity"
[[site]]
name = "a"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.5
longitude_deg = 113.9
[[site]]
name = "b"
city = "Guangzhou"
region = "CN-GD"
latitude_deg = 23.1
longitude_deg = 113.3
[[link]]
between = ["a", "b"]
latency_ms = 2.0
bandwidth_gbps = 100

[[pool]]
name = "a800"
site = "a"
provider = "alpha"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800-SXM4-80GB" = 120000 }
cpu_core_hour_fen = 500
memory_gib_hour_fen = 100
[[pool.nodes]]
count = 4
accelerator = "A800-SXM4-80GB"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576

[[pool]]
name = "ascend"
site = "b"
provider = "beta"
backend = "sim"
pue = 1.3
card_hour_fen = { "Ascend-910B" = 80000 }
cpu_core_hour_fen = 400
memory_gib_hour_fen = 100
[[pool.nodes]]
count = 4
accelerator = "Ascend-910B"
accelerators_per_node = 8
cpu_milli = 192000
memory_mib = 1572864

[[pool]]
name = "t4"
site = "a"
provider = "gamma"
backend = "sim"
pue = 1.1
card_hour_fen = { "T4" = 20000 }
cpu_core_hour_fen = 300
memory_gib_hour_fen = 100
[[pool.nodes]]
count = 2
accelerator = "T4"
accelerators_per_node = 4
cpu_milli = 64000
memory_mib = 262144

[[tenant]]
name = "acme"
kind = "startup"
registration_city = "Shenzhen"

[[tenant]]
name = "globex"
kind = "sme"
registration_city = "Shenzhen"
"#,
    )
    .unwrap();
    let programs = dir.join("programs");
    std::fs::create_dir_all(&programs).unwrap();
    std::fs::write(
        programs.join("sz.toml"),
        format!(
            r#"id = "sz-parity"
name = "Parity vouchers"
issuer = "Shenzhen"
fiscal_year = {year}
budget_fen = 100_000_000
[eligibility]
registration_cities = ["Shenzhen"]
[subsidy]
default_ratio_bps = 5_000
[[subsidy.rules]]
tenant_kinds = ["startup"]
ratio_bps = 6_000
"#
        ),
    )
    .unwrap();
    // The workload: every job at once, none waits (so arrival timing cannot change placement).
    let jobs = [
        json!({"id": "train-pt", "tenant": "acme", "submit_s": 0, "duration_s": 7, "estimate_s": 3600, "gpus_per_task": 8, "framework": "pytorch"}),
        json!({"id": "train-cuda", "tenant": "acme", "submit_s": 0, "duration_s": 5, "estimate_s": 3600, "gpus_per_task": 8, "framework": "cuda"}),
        json!({"id": "half-t4", "tenant": "globex", "submit_s": 0, "duration_s": 2, "gpus_per_task": 1, "gpu_milli": 500, "accelerators": ["T4"]}),
        json!({"id": "cpu", "tenant": "globex", "submit_s": 0, "duration_s": 4, "cpu_milli": 4000, "memory_mib": 8192}),
        json!({"id": "gang-ms", "tenant": "acme", "submit_s": 0, "duration_s": 3, "estimate_s": 600, "tasks": 2, "gpus_per_task": 8, "framework": "mindspore"}),
        json!({"id": "fast-ascend", "tenant": "globex", "submit_s": 0, "duration_s": 8, "estimate_s": 7200, "gpus_per_task": 1,
               "accelerators": [{"model": "Ascend-910B", "speed": 2.0}, "A800-SXM4-80GB"]}),
    ];
    let trace = dir.join("parity.jsonl");
    std::fs::write(&trace, jobs.iter().map(|j| format!("{j}\n")).collect::<String>()).unwrap();

    // The simulator.
    let explain = dir.join("explain.jsonl");
    let sim = Command::new(BIN)
        .args(["simulate", "queue", "--trace"])
        .arg(&trace)
        .args(["--trace-format", "jsonl", "--federation"])
        .arg(&federation)
        .args(["--policy", "fifo+backfill", "--reference-accelerator", "A100-SXM4-80GB", "--format", "json"])
        .arg("--programs")
        .arg(&programs)
        .arg("--explain")
        .arg(&explain)
        .output()
        .unwrap();
    assert!(sim.status.success(), "{}", String::from_utf8_lossy(&sim.stderr));
    let simulated: Value = serde_json::from_slice(&sim.stdout).unwrap();
    let simulated = if simulated.is_array() { simulated[0].clone() } else { simulated };
    let sim_pools: BTreeMap<String, String> = std::fs::read_to_string(&explain)
        .unwrap()
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            let pool = e["reason"].as_str().unwrap().split(':').next().unwrap().to_owned();
            (e["job"].as_str().unwrap().to_owned(), pool)
        })
        .collect();
    assert_eq!(sim_pools.len(), jobs.len(), "every job started in the simulation: {sim_pools:?}");
    let money = &simulated["money"];
    // How long the simulator ran each job: its duration over its speed on the pool's card (the
    // job's own speed for that model, else the card's TFLOPS over the A100's), rounded up.
    let catalog = suanwang_formats::catalog::builtin();
    let tflops = |model: &str| catalog.get(catalog.resolve(model).unwrap()).fp16_dense_tflops.unwrap();
    let ran_s = |j: &Value| -> u64 {
        let pool_model = match sim_pools[j["id"].as_str().unwrap()].as_str() {
            "a800" => "A800-SXM4-80GB",
            "ascend" => "Ascend-910B",
            _ => "T4",
        };
        let own = j["accelerators"].as_array().and_then(|models| {
            models
                .iter()
                .find(|m| m["model"].as_str().is_some_and(|m| m == pool_model))
                .map(|m| m["speed"].as_f64().unwrap())
        });
        let speed =
            if j.get("gpus_per_task").is_none() { 1.0 } else { own.unwrap_or(tflops(pool_model) / tflops("A100")) };
        (j["duration_s"].as_f64().unwrap() / speed).ceil() as u64
    };

    // The server, with a simulating agent per pool.
    let data = dir.join("server");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start_with(vec![
        "--data-dir".to_owned(),
        data.display().to_string(),
        "--federation".to_owned(),
        federation.display().to_string(),
        "--demo".to_owned(),
        "--policy".to_owned(),
        "fifo+backfill".to_owned(),
    ]);
    let url = server.url.clone();
    let post = |token: &str, path: &str, body: Value| -> Value {
        match ureq::post(&format!("{url}{path}")).set("Authorization", &format!("Bearer {token}")).send_json(&body) {
            Ok(r) => r.into_json().unwrap(),
            Err(ureq::Error::Status(code, r)) => panic!("POST {path}: {code} {}", r.into_string().unwrap()),
            Err(e) => panic!("POST {path}: {e}"),
        }
    };
    let mut tokens = BTreeMap::new();
    for (name, kind) in [("acme", "startup"), ("globex", "sme")] {
        post(ADMIN, "/api/v1/tenants", json!({"name": name, "kind": kind, "registration_city": "Shenzhen"}));
        let token = post(ADMIN, "/api/v1/tokens", json!({"role": "tenant", "tenant": name}));
        tokens.insert(name, token["token"].as_str().unwrap().to_owned());
    }
    let program = std::fs::read_to_string(programs.join("sz.toml")).unwrap();
    let program: Value = serde_json::to_value(suanwang_billing::Program::from_toml(&program).unwrap()).unwrap();
    post(ADMIN, "/api/v1/programs", program);
    for token in tokens.values() {
        let a = post(token, "/api/v1/programs/sz-parity/applications", json!({}));
        post(ADMIN, &format!("/api/v1/applications/{}/decision", a["id"]), json!({"approve": true}));
    }
    // The scheduler waits for every pool's agent to report before it places work.
    std::thread::sleep(Duration::from_secs(4));
    let mut ids = BTreeMap::new();
    for j in &jobs {
        let mut body = json!({
            "name": j["id"], "duration_s": ran_s(j), "accelerators": j.get("gpus_per_task").cloned().unwrap_or(json!(0)),
            "accelerator_milli": j.get("gpu_milli").cloned().unwrap_or(json!(1000)), "tasks": j.get("tasks").cloned().unwrap_or(json!(1)),
            "cpu_milli": j.get("cpu_milli").cloned().unwrap_or(json!(0)), "memory_mib": j.get("memory_mib").cloned().unwrap_or(json!(0)),
        });
        for (from, to) in
            [("estimate_s", "estimate_s"), ("framework", "framework"), ("accelerators", "accelerator_models")]
        {
            if let Some(v) = j.get(from).filter(|_| from != "accelerators" || j[from].is_array()) {
                body[to] = v.clone();
            }
        }
        let tenant = j["tenant"].as_str().unwrap();
        let job = post(&tokens[tenant], "/api/v1/jobs", body);
        ids.insert(j["id"].as_str().unwrap().to_owned(), (tenant, job["id"].as_i64().unwrap()));
    }
    // Same pools.
    for (name, (tenant, id)) in &ids {
        let done =
            wait_for(&format!("{url}/api/v1/jobs/{id}"), &tokens[tenant], Duration::from_secs(60), "success", |j| {
                j["state"] == "succeeded"
            });
        assert_eq!(done["pool"].as_str(), Some(sim_pools[name].as_str()), "{name}: {done:#}");
    }
    // Charges: per tenant and in all; the platform's fee.
    std::thread::sleep(Duration::from_millis(2_500));
    let mut charged = BTreeMap::new();
    let mut lines_of = BTreeMap::new();
    for (tenant, token) in &tokens {
        let invoices = get(&format!("{url}/api/v1/invoices"), token);
        for invoice in invoices.as_array().unwrap() {
            let inv = get(
                &format!("{url}/api/v1/invoices/{}/{}", invoice["tenant"], invoice["period"].as_str().unwrap()),
                token,
            );
            for line in inv["lines"].as_array().unwrap() {
                *charged.entry(*tenant).or_insert(0u64) += line["amount_fen"].as_u64().unwrap();
                lines_of.insert(
                    line["job"].as_i64().unwrap(),
                    (invoice["period"].as_str().unwrap().to_owned(), line["amount_fen"].as_u64().unwrap()),
                );
            }
        }
    }
    for t in simulated["tenants"].as_array().unwrap() {
        let tenant = t["tenant"].as_str().unwrap();
        assert_eq!(
            charged.get(tenant).copied().unwrap_or(0),
            t["cost_fen"].as_u64().unwrap(),
            "{tenant}: {simulated:#}"
        );
    }
    assert_eq!(charged.values().sum::<u64>(), money["cost_fen"].as_u64().unwrap(), "{money:#}");
    let fee = get(&format!("{url}/api/v1/ledger/accounts/{}", suanwang_billing::chart::PLATFORM_FEE.0), ADMIN);
    assert_eq!(fee["credits_posted_fen"].as_u64(), money["platform_fee_fen"].as_u64(), "{fee:#}");
    // Vouchers, as the simulator takes the steps: claim the ratio of each job's charges, redeem.
    let mut subsidy = 0;
    for (name, (tenant, id)) in &ids {
        let (period, amount) = lines_of[id].clone();
        let ratio = if *tenant == "acme" { 6_000 } else { 5_000 };
        let face = amount * ratio / 10_000;
        if face == 0 {
            continue;
        }
        let claim = post(
            &tokens[tenant],
            "/api/v1/programs/sz-parity/claims",
            json!({"contract": format!("job:{id}"), "amount_fen": face}),
        );
        let paid = post(
            &tokens[tenant],
            &format!("/api/v1/claims/{}/redemptions", claim["id"]),
            json!({"period": period, "job": id}),
        );
        subsidy += paid["subsidy_fen"].as_u64().unwrap_or_else(|| panic!("{name}: {paid}"));
    }
    assert_eq!(subsidy, money["subsidy_fen"].as_u64().unwrap(), "{money:#}");
    assert!(money["cost_fen"].as_u64().unwrap() > 0 && subsidy > 0, "{money:#}");
    server.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Random faults on a real Slurm, from a seed (`SUANWANG_FAULT_SEED`, printed): jobs of random
/// priority and size under `--policy priority` (so jobs are preempted), cancels, the agent
/// killed with SIGKILL and restarted, and slurmctld stopped and started. Afterwards, from
/// Slurm's accounting: no platform job ever ran in two Slurm jobs at once, each ran in Slurm at
/// most once per placement, no Slurm job of ours is left running, and the platform billed no
/// job whose ends it learned from the agent more card-seconds than Slurm ran it.
#[test]
fn random_faults_on_a_real_slurm_never_run_a_job_twice_or_bill_a_second_twice() {
    // First the lock: another test may have the controller stopped.
    let _slurm = slurm_lock();
    if !slurm_answers() {
        eprintln!("SKIPPED: no Slurm answers (scripts/slurm.sh start; export SLURM_CONF=…)");
        return;
    }
    if !slurm_accounting_or_skip("the fault test's reading of sacct") {
        return;
    }
    let seed: u64 = std::env::var("SUANWANG_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("fault seed: {seed} (SUANWANG_FAULT_SEED={seed} repeats the same faults)");
    let mut state = seed | 1;
    let mut random = move |below: u64| {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    };
    let dir = scratch("slurm-faults");
    let federation = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/federations/slurm-local.toml");
    let server = Server::start_with(vec![
        "--data-dir".into(),
        dir.display().to_string(),
        "--federation".into(),
        federation.display().to_string(),
        "--policy".into(),
        "priority".into(),
    ]);
    let url = server.url.clone();
    let provider = cli(&url, ADMIN, &["token", "create", "--role", "provider", "--pool", "slurm-local"]);
    let provider = provider.stdout.trim().to_owned();
    assert_eq!(cli(&url, ADMIN, &["tenant", "create", "faults"]).code, 0);
    // The checks below read every job at once: more than a tenant's default 10 requests a second.
    assert_eq!(cli(&url, ADMIN, &["tenant", "quotas", "faults", "--requests-per-s", "1000"]).code, 0);
    let tenant = cli(&url, ADMIN, &["token", "create", "--tenant", "faults"]).stdout.trim().to_owned();
    let since = chrono_now_utc();
    let mut agent = Some(Agent::start_as(&url, &provider, &dir, "ci-faults"));
    let pool = format!("{url}/api/v1/pools/slurm-local");
    wait_for(&pool, &tenant, Duration::from_secs(30), "the pool reports healthy", |p| p["healthy"] == true);

    let mut jobs: Vec<i64> = Vec::new();
    // Cancels, agent kills, controller outages done.
    let mut faults = [0u32; 3];
    for step in 0..36 {
        match random(100) {
            0..50 => {
                let body = json!({"name": format!("f{step}"), "command": ["sleep", (2 + random(5)).to_string()],
                    "cpu_milli": 1000, "memory_mib": 128, "accelerators": 1 + random(4),
                    "priority": random(6), "preemptible": random(10) < 7});
                jobs.push(post(&format!("{url}/api/v1/jobs"), &tenant, &body)["id"].as_i64().unwrap());
            }
            50..65 if !jobs.is_empty() => {
                let id = jobs[random(jobs.len() as u64) as usize];
                faults[0] += 1;
                let _ = ureq::post(&format!("{url}/api/v1/jobs/{id}/cancel"))
                    .set("Authorization", &format!("Bearer {tenant}"))
                    .send_string("{}");
            }
            65..75 => match agent.take() {
                Some(mut running) => {
                    faults[1] += 1;
                    running.0.kill().unwrap(); // SIGKILL, mid-whatever it was doing
                    running.0.wait().unwrap();
                }
                None => agent = Some(Agent::start_as(&url, &provider, &dir, "ci-faults")),
            },
            75..83 => {
                faults[2] += 1;
                slurm_script(&["stop-controller"]);
                std::thread::sleep(Duration::from_millis(1000 + 500 * random(6)));
                slurm_script(&["start-controller"]);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(300 + 100 * random(10)));
    }
    if agent.is_none() {
        agent = Some(Agent::start_as(&url, &provider, &dir, "ci-faults"));
    }
    // Everything ends: what is left runs out (the jobs are short), or is cancelled after a while
    // (once, after a controller restart, the test Slurm left its cards idle with jobs pending
    // for minutes).
    let ended = |j: &Value| ["succeeded", "failed", "cancelled"].contains(&j["state"].as_str().unwrap_or(""));
    let deadline = Instant::now() + Duration::from_secs(90);
    for &id in &jobs {
        let url_job = format!("{url}/api/v1/jobs/{id}");
        while !ended(&get(&url_job, &tenant)) {
            if Instant::now() > deadline {
                let _ = ureq::post(&format!("{url_job}/cancel"))
                    .set("Authorization", &format!("Bearer {tenant}"))
                    .send_string("{}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    // And Slurm has nothing of ours left running.
    let tag = "suanwang:ci-faults:default";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("squeue").args(["-h", "-o", "%i %k"]).output().unwrap();
        let live = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(tag)).count();
        if live == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{live} Slurm jobs of ours still live after every platform job ended");
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(agent);
    // Slurm's accounting of every run: name, start, end, seconds, GPUs.
    let out = Command::new("sacct")
        .args(["-n", "-P", "-X", "-S", &since, "-o", "JobName,JobID,State,Start,End,ElapsedRaw,AllocTRES"])
        .output()
        .unwrap();
    let accounting = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut checked_runs = 0;
    let mut preemptions = 0;
    for &id in &jobs {
        let job = get(&format!("{url}/api/v1/jobs/{id}"), &tenant);
        let prefix = format!("sw-{id}-");
        let runs: Vec<Vec<&str>> = accounting
            .lines()
            .map(|l| l.split('|').collect::<Vec<_>>())
            .filter(|f| f.len() == 7 && f[0].starts_with(&prefix) && f[3] != "Unknown" && f[3] != "None")
            .filter(|f| f[5].parse::<u64>().unwrap_or(0) > 0)
            .collect();
        checked_runs += runs.len();
        let history = job["history"].as_array().unwrap();
        let placements = history.iter().filter(|e| e["state"] == "placed").count();
        preemptions += history.iter().filter(|e| e["state"] == "preempted").count();
        assert!(
            runs.len() <= placements,
            "seed {seed}: job {id} ran {} times in Slurm for {placements} placements: {runs:?}\n{job:#}",
            runs.len()
        );
        // Never two runs at once (Slurm's times are whole seconds: an end and the next start may
        // share one).
        let mut spans: Vec<(&str, &str)> = runs.iter().map(|f| (f[3], f[4])).collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[1].0 >= pair[0].1, "seed {seed}: job {id} ran twice at once: {spans:?}");
        }
        // Billed no more than Slurm ran it (a second of rounding per run), when the platform
        // learned of each end from the agent. A run the platform itself ended (preempted or
        // cancelled) is metered until that decision: if the job had ended in Slurm while the
        // agent was down, the platform knew no better (a known gap: ROADMAP.md).
        let ended_by_platform = history.windows(2).any(|pair| {
            pair[0]["state"] == "running" && (pair[1]["state"] == "preempted" || pair[1]["state"] == "cancelled")
        });
        if ended_by_platform {
            continue;
        }
        // (slurmdbd keeps GRES only when configured to: the GPUs are the job's own request.)
        let gpus = job["request"]["accelerators"].as_u64().unwrap_or(0);
        let slurm_card_s: u64 = runs.iter().map(|f| f[5].parse::<u64>().unwrap() * gpus).sum();
        let billed = job["usage_accelerator_s"].as_f64().unwrap();
        let slack = (runs.len() as u64 + 1) * gpus;
        assert!(
            billed <= (slurm_card_s + slack) as f64,
            "seed {seed}: job {id} billed {billed} card-s, Slurm ran it {slurm_card_s}: {runs:?}\n{job:#}"
        );
    }
    eprintln!(
        "seed {seed}: {} jobs, {checked_runs} Slurm runs, {preemptions} preemptions, {} cancels, {} agent kills, {} controller outages",
        jobs.len(),
        faults[0],
        faults[1],
        faults[2]
    );
    assert!(checked_runs > 0, "seed {seed}: nothing ran in Slurm");
}

/// Now, as `sacct -S` reads it (local time).
fn chrono_now_utc() -> String {
    let out = Command::new("date").args(["+%Y-%m-%dT%H:%M:%S"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
