//! The agent loop: every poll, report health, pull work, start what was placed here, stop what
//! was cancelled, and report each job's state, output and usage as it happens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use suanwang_api::agent::{Heartbeat, LogChunk, RunState, StateReport, UsageReport};
use suanwang_api::jobs::JobRequest;

use crate::backend::{Backend, Event, run_job};
use crate::protocol::Platform;
use crate::sandbox::Isolation;

/// Jobs one agent runs at once.
pub const RUNNING_MAX: usize = 4096;

/// How an agent behaves.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Where jobs run.
    pub backend: Backend,
    /// Time between polls.
    pub poll: Duration,
    /// How `local` jobs are isolated.
    pub isolation: Arc<Isolation>,
}

/// Runs the agent until the platform drops or `shutdown` fires. Errors talking to the platform
/// are retried at the next poll (with the same event ids, so nothing is counted twice).
pub async fn run<P: Platform>(platform: Arc<P>, config: AgentConfig, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut running: HashMap<i64, oneshot::Sender<()>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::channel::<i64>(1024);
    loop {
        while let Ok(id) = done_rx.try_recv() {
            running.remove(&id);
        }
        let heartbeat = Heartbeat {
            healthy: true,
            running: running.keys().copied().collect(),
            running_unknown: false,
            capacity: None,
            problem: None,
            nodes: None,
        };
        if let Err(e) = platform.heartbeat(heartbeat).await {
            tracing::warn!(error = %e, "heartbeat failed");
        } else {
            match platform.work().await {
                Ok(work) => {
                    for id in work.stop {
                        if let Some(stop) = running.remove(&id) {
                            let _ = stop.send(());
                        }
                    }
                    for item in work.start {
                        if running.contains_key(&item.id) || running.len() >= RUNNING_MAX {
                            continue;
                        }
                        let (stop_tx, stop_rx) = oneshot::channel();
                        tracing::info!(job_id = item.id, "starting a job");
                        running.insert(item.id, stop_tx);
                        tokio::spawn(watch(
                            Arc::clone(&platform),
                            config.backend,
                            Arc::clone(&config.isolation),
                            item.id,
                            item.request,
                            stop_rx,
                            done_tx.clone(),
                        ));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot fetch work"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(config.poll) => {}
            _ = shutdown.changed() => {
                for (_, stop) in running.drain() {
                    let _ = stop.send(());
                }
                return;
            }
        }
    }
}

/// Milliseconds since 1970 by this machine's clock.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Retries a report until it is accepted or clearly refused (at most a few times).
async fn retry<F, Fut>(mut call: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), crate::protocol::PlatformError>>,
{
    for attempt in 0..5u32 {
        match call().await {
            Ok(()) => return,
            Err(e) if e.is_transient() => {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "report refused");
                return;
            }
        }
    }
}

async fn watch<P: Platform>(
    platform: Arc<P>,
    backend: Backend,
    isolation: Arc<Isolation>,
    id: i64,
    request: JobRequest,
    stop: oneshot::Receiver<()>,
    done: mpsc::Sender<i64>,
) {
    let started_ms = wall_ms();
    let running = StateReport {
        state: RunState::Running,
        detail: "started".to_owned(),
        at_ms: Some(started_ms),
        started_ms: None,
    };
    retry(|| platform.report_state(id, running.clone())).await;
    let started = Instant::now();
    let (events_tx, mut events) = mpsc::channel(256);
    let job = tokio::spawn({
        let request = request.clone();
        async move { run_job(backend, id, &request, &isolation, events_tx, stop).await }
    });
    let mut seq = 0;
    let mut outcome = Some((false, "the job ended without a status".to_owned()));
    while let Some(event) = events.recv().await {
        match event {
            Event::Line(line) => {
                seq += 1;
                let chunk = LogChunk { seq, chunk: line };
                retry(|| platform.report_log(id, chunk.clone())).await;
            }
            Event::Exited(ok, detail) => outcome = Some((ok, detail)),
            Event::Stopped => outcome = None,
        }
    }
    let _ = job.await;
    // A simulated run lasts exactly its duration; a process as long as it ran.
    let elapsed_ms = match (backend, &outcome) {
        (Backend::Sim, Some(_)) => {
            request.duration_s.unwrap_or(crate::backend::SIM_DEFAULT_DURATION_S).saturating_mul(1000)
        }
        _ => u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let card_milli = u64::from(request.accelerators)
        * u64::from(if request.accelerators == 0 { 0 } else { request.accelerator_milli })
        * u64::from(request.tasks);
    let usage = UsageReport {
        event_id: format!("job-{id}-run"),
        job_id: id,
        accelerator_ms: i64::try_from(elapsed_ms.saturating_mul(card_milli) / 1000).unwrap_or(i64::MAX),
    };
    if usage.accelerator_ms > 0 {
        retry(|| platform.report_usage(usage.clone())).await;
    }
    // A stopped job was cancelled (the platform knows) or its agent is shutting down (the
    // platform fails it over when the heartbeats stop): either way there is no state to report.
    if let Some((ok, detail)) = outcome {
        let state = if ok { RunState::Succeeded } else { RunState::Failed };
        let ended_ms = started_ms.saturating_add(i64::try_from(elapsed_ms).unwrap_or(i64::MAX));
        let report = StateReport { state, detail, at_ms: Some(ended_ms), started_ms: Some(started_ms) };
        retry(|| platform.report_state(id, report.clone())).await;
    }
    let _ = done.send(id).await;
}
