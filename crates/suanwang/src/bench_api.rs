//! `suanwang bench api`: C client threads submit N small jobs (each with its own idempotency key,
//! as a careful client would) to a running server over HTTP/1.1 keep-alive connections, and the
//! bench reports accepted submissions per second, latency percentiles and errors.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use suanwang_api::jobs::JobRequest;

use crate::args::{BenchApiArgs, Format};
use crate::error::CliError;
use crate::output::{Table, print};

/// What the bench measured.
#[derive(Debug, Serialize)]
pub struct ApiBench {
    /// Jobs asked for.
    pub jobs: u64,
    /// Concurrent clients.
    pub concurrency: u64,
    /// Accepted (2xx) submissions per second of wall time.
    pub submitted_per_s: f64,
    /// Median latency of a submission.
    pub latency_ms_p50: f64,
    /// 99th percentile.
    pub latency_ms_p99: f64,
    /// Worst.
    pub latency_ms_max: f64,
    /// Submissions that did not get a 2xx.
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Wall time.
    pub seconds: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Runs the bench.
pub fn run(args: &BenchApiArgs) -> Result<(), CliError> {
    if !(args.server.starts_with("http://") || args.server.starts_with("https://")) {
        return Err(CliError::input(
            "invalid_server",
            format!("the server must be an http:// URL, not {:?}", args.server),
        ));
    }
    let server = args.server.trim_end_matches('/').to_owned();
    let run_id =
        format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let next = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let first_error = Mutex::new(None::<String>);
    let latencies = Mutex::new(Vec::with_capacity(usize::try_from(args.jobs).unwrap_or(0)));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.concurrency {
            scope.spawn(|| {
                let client = suanwang_client::Client::new(&server, Some(&args.token), Duration::from_secs(60));
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.jobs {
                        break;
                    }
                    let body = JobRequest {
                        command: vec!["true".to_owned()],
                        cpu_milli: 100,
                        memory_mib: 64,
                        duration_s: Some(1),
                        tenant: args.tenant.clone(),
                        ..JobRequest::named(format!("bench-{i}"))
                    };
                    let key = format!("bench-{run_id}-{i}");
                    let t = Instant::now();
                    let response = client.as_ref().map_err(Clone::clone).and_then(|c| c.submit_job(&body, Some(&key)));
                    let elapsed = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                    match response {
                        Ok(_) => mine.push(elapsed),
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut first) = first_error.lock() {
                                first.get_or_insert(e.to_string());
                            }
                        }
                    }
                }
                if let Ok(mut all) = latencies.lock() {
                    all.extend(mine);
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies = latencies.into_inner().unwrap_or_default();
    latencies.sort_unstable();
    let result = ApiBench {
        jobs: args.jobs,
        concurrency: args.concurrency,
        submitted_per_s: (latencies.len() as f64 / seconds * 10.0).round() / 10.0,
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p99: percentile(&latencies, 99.0),
        latency_ms_max: percentile(&latencies, 100.0),
        errors: errors.into_inner(),
        first_error: first_error.into_inner().unwrap_or_default(),
        seconds: (seconds * 1000.0).round() / 1000.0,
    };
    match args.format {
        Format::Json => print(&format!("{}\n", serde_json::to_string_pretty(&result).unwrap_or_default()))?,
        Format::Table => {
            let mut table =
                Table::new(&["jobs", "concurrency", "submitted/s", "p50 ms", "p99 ms", "max ms", "errors", "seconds"]);
            table.row(vec![
                result.jobs.to_string(),
                result.concurrency.to_string(),
                format!("{:.1}", result.submitted_per_s),
                format!("{:.2}", result.latency_ms_p50),
                format!("{:.2}", result.latency_ms_p99),
                format!("{:.2}", result.latency_ms_max),
                result.errors.to_string(),
                format!("{:.2}", result.seconds),
            ]);
            let mut text = table.render();
            if let Some(e) = &result.first_error {
                text.push_str(&format!("first error: {e}\n"));
            }
            print(&text)?;
        }
    }
    if result.errors == args.jobs {
        return Err(CliError::input("bench_failed", "every submission failed; see the first error above"));
    }
    Ok(())
}
