//! `suanwang bench abuse`: does one tenant keep its service while others abuse the platform?
//!
//! A well-behaved tenant submits small jobs at a steady pace, first alone (the baseline), then
//! while A abusive tenants each submit as fast as ten times their rate limit and a crowd of idle
//! sockets is held open (and reopened as the server cuts them off). The bench reports the
//! well-behaved tenant's latency percentiles in both phases and what the abusers got (accepted,
//! 429, other). Tenants and tokens are made with the operator token given.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use suanwang_api::admin::{NewTenant, NewToken};
use suanwang_api::jobs::JobRequest;

use crate::args::{BenchAbuseArgs, Format};
use crate::error::CliError;
use crate::output::{Table, print};

/// One phase's latencies of the well-behaved tenant.
#[derive(Debug, Serialize)]
pub struct Phase {
    /// Submissions made.
    pub submitted: u64,
    /// Of them refused or failed.
    pub errors: u64,
    /// Median.
    pub latency_ms_p50: f64,
    /// 99th percentile.
    pub latency_ms_p99: f64,
    /// Worst.
    pub latency_ms_max: f64,
}

/// What the bench measured.
#[derive(Debug, Serialize)]
pub struct AbuseBench {
    /// The well-behaved tenant alone.
    pub baseline: Phase,
    /// The well-behaved tenant while the others abuse.
    pub under_abuse: Phase,
    /// `under_abuse.p99 / baseline.p99`.
    pub p99_ratio: f64,
    /// Abusive tenants.
    pub abusers: u64,
    /// Each abuser's target: this many times its rate limit.
    pub abuser_rate_multiple: u64,
    /// Requests the abusers sent a second, all together.
    pub abuse_requests_per_s: f64,
    /// Abusive requests accepted (within their rate and quotas).
    pub abuse_accepted: u64,
    /// Abusive requests answered 429.
    pub abuse_limited: u64,
    /// Abusive requests answered otherwise (or failed).
    pub abuse_other: u64,
    /// Idle sockets held open during the abuse.
    pub idle_sockets: u64,
    /// Seconds of each phase.
    pub seconds_per_phase: u64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn job(name: String) -> JobRequest {
    JobRequest {
        command: vec!["true".to_owned()],
        cpu_milli: 100,
        memory_mib: 64,
        duration_s: Some(1),
        ..JobRequest::named(name)
    }
}

/// The well-behaved tenant: one submission every `interval` for `seconds`.
fn behave(server: &str, token: &str, tag: &str, interval: Duration, seconds: u64) -> Phase {
    let client = suanwang_client::Client::new(server, Some(token), Duration::from_secs(60));
    let mut latencies = Vec::new();
    let mut errors = 0;
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let due = started + interval * u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let body = job(format!("good-{tag}-{i}"));
        let t = Instant::now();
        let answer = client.as_ref().map_err(Clone::clone).and_then(|c| c.submit_job(&body, None));
        latencies.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
        if answer.is_err() {
            errors += 1;
        }
        i += 1;
    }
    latencies.sort_unstable();
    Phase {
        submitted: i,
        errors,
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p99: percentile(&latencies, 99.0),
        latency_ms_max: percentile(&latencies, 100.0),
    }
}

/// Runs the bench.
pub fn run(args: &BenchAbuseArgs) -> Result<(), CliError> {
    let server = args.server.trim_end_matches('/').to_owned();
    let host = server.strip_prefix("http://").ok_or_else(|| {
        CliError::input("invalid_server", format!("the server must be an http:// URL, not {:?}", args.server))
    })?;
    let address: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CliError::input("invalid_server", format!("cannot resolve {host}")))?;
    let operator = suanwang_client::Client::new(&server, Some(&args.token), Duration::from_secs(60))
        .map_err(|e| CliError::input("invalid_server", e.to_string()))?;
    let run =
        format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    let tenant_token = |name: &str| -> Result<(i64, String), CliError> {
        let body =
            NewTenant { name: name.to_owned(), kind: "sme".to_owned(), registration_city: "Shenzhen".to_owned() };
        let tenant = operator.create_tenant(&body).map_err(|e| CliError::input("bench_setup", e.to_string()))?;
        let token = NewToken {
            role: "tenant".to_owned(),
            tenant: Some(name.to_owned()),
            pool: None,
            program: None,
            label: "bench abuse".to_owned(),
            ttl_seconds: None,
        };
        let token = operator.create_token(&token).map_err(|e| CliError::input("bench_setup", e.to_string()))?;
        Ok((tenant.id, token.token))
    };
    let (good_id, good) = tenant_token(&format!("good-{run}"))?;
    // A well-behaved tenant keeps within its rate: one that needs more has it raised by an
    // operator, as here.
    let good_rate = operator.quotas(good_id).map_err(|e| CliError::input("bench_setup", e.to_string()))?.requests_per_s;
    if u64::from(good_rate) < args.good_per_s {
        let change = suanwang_api::admin::QuotaChange {
            requests_per_s: Some(u32::try_from(args.good_per_s).unwrap_or(u32::MAX)),
            ..Default::default()
        };
        operator.set_quotas(good_id, &change).map_err(|e| CliError::input("bench_setup", e.to_string()))?;
    }
    let mut abusers = Vec::new();
    for i in 0..args.abusers {
        let (id, token) = tenant_token(&format!("abuser-{run}-{i}"))?;
        let rate = operator.quotas(id).map_err(|e| CliError::input("bench_setup", e.to_string()))?.requests_per_s;
        abusers.push((token, u64::from(rate) * args.rate_multiple));
    }
    let interval = Duration::from_micros(1_000_000 / args.good_per_s.max(1));
    let baseline = behave(&server, &good, "baseline", interval, args.seconds);

    let stop = AtomicBool::new(false);
    let opened = AtomicBool::new(args.idle_sockets == 0);
    let (accepted, limited, other, sent) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let under_abuse = std::thread::scope(|scope| {
        for (n, (token, target_per_s)) in abusers.iter().enumerate() {
            let (stop, accepted, limited, other, sent) = (&stop, &accepted, &limited, &other, &sent);
            let server = &server;
            scope.spawn(move || {
                let client =
                    suanwang_client::Client::new(server, Some(token), Duration::from_secs(30)).map(|c| c.impatient());
                let gap = Duration::from_micros(1_000_000 / (*target_per_s).max(1));
                let started = Instant::now();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(wait) = (started + gap * i).checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    i += 1;
                    let body = job(format!("abuse-{n}-{i}"));
                    let answer = client.as_ref().map_err(Clone::clone).and_then(|c| c.submit_job(&body, None));
                    sent.fetch_add(1, Ordering::Relaxed);
                    match answer {
                        Ok(_) => accepted.fetch_add(1, Ordering::Relaxed),
                        Err(e) if e.status == Some(429) => limited.fetch_add(1, Ordering::Relaxed),
                        Err(_) => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
        let stop_ref = &stop;
        let idle = args.idle_sockets;
        let opened = &opened;
        scope.spawn(move || {
            let mut sockets: Vec<std::net::TcpStream> = Vec::new();
            while !stop_ref.load(Ordering::Relaxed) {
                // Keep `idle` sockets open: drop those the server closed, open new ones.
                sockets.retain(|s| {
                    let _ = s.set_nonblocking(true);
                    let mut byte = [0u8; 1];
                    !matches!(std::io::Read::read(&mut &*s, &mut byte), Ok(0))
                });
                while (sockets.len() as u64) < idle && !stop_ref.load(Ordering::Relaxed) {
                    match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
                        Ok(mut s) => {
                            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHo");
                            sockets.push(s);
                        }
                        Err(_) => break,
                    }
                }
                opened.store(true, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        // The abuse builds up first: every idle socket open (at most 60 s), then 2 s more.
        let building = Instant::now();
        while !opened.load(Ordering::Relaxed) && building.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(2));
        let build_up_s = building.elapsed().as_secs();
        let phase = behave(&server, &good, "abused", interval, args.seconds);
        stop.store(true, Ordering::Relaxed);
        (phase, build_up_s)
    });
    let (under_abuse, build_up_s) = under_abuse;
    let abuse_seconds = (args.seconds + build_up_s).max(1) as f64;
    let result = AbuseBench {
        p99_ratio: ((under_abuse.latency_ms_p99 / baseline.latency_ms_p99.max(0.001)) * 100.0).round() / 100.0,
        baseline,
        under_abuse,
        abusers: args.abusers,
        abuser_rate_multiple: args.rate_multiple,
        abuse_requests_per_s: (sent.into_inner() as f64 / abuse_seconds).round(),
        abuse_accepted: accepted.into_inner(),
        abuse_limited: limited.into_inner(),
        abuse_other: other.into_inner(),
        idle_sockets: args.idle_sockets,
        seconds_per_phase: args.seconds,
    };
    match args.format {
        Format::Json => print(&format!("{}\n", serde_json::to_string(&result).unwrap_or_default())),
        Format::Table => {
            let mut table = Table::new(&["phase", "submitted", "errors", "p50 ms", "p99 ms", "max ms"]);
            for (name, p) in [("alone", &result.baseline), ("under abuse", &result.under_abuse)] {
                table.row(vec![
                    name.to_owned(),
                    p.submitted.to_string(),
                    p.errors.to_string(),
                    format!("{:.2}", p.latency_ms_p50),
                    format!("{:.2}", p.latency_ms_p99),
                    format!("{:.2}", p.latency_ms_max),
                ]);
            }
            print(&format!(
                "{}p99 ratio {:.2}; {} abusers sent {}/s (accepted {}, 429 {}, other {}), {} idle sockets\n",
                table.render(),
                result.p99_ratio,
                result.abusers,
                result.abuse_requests_per_s,
                result.abuse_accepted,
                result.abuse_limited,
                result.abuse_other,
                result.idle_sockets
            ))
        }
    }
}
