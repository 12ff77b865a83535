//! Where an agent's jobs run.

use std::process::Stdio;
use std::time::Duration;

use suanwang_api::jobs::JobRequest;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::sandbox::Isolation;

/// Seconds a simulated job runs when its body gives no `duration_s`.
pub const SIM_DEFAULT_DURATION_S: u64 = 30;

/// The longest log line sent as one chunk, newline included: longer lines are split into pieces
/// of this size, so a job printing one endless line never makes the agent hold it whole.
pub const LOG_LINE_MAX: usize = 64 * 1024;

/// Where jobs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// As processes on this machine (the job's `command`).
    Local,
    /// Simulated: a job runs for its `duration_s` and succeeds.
    Sim,
}

impl Backend {
    /// Parses `local` or `sim`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "local" => Some(Backend::Local),
            "sim" => Some(Backend::Sim),
            _ => None,
        }
    }
}

/// What happened to a job, as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A line of output.
    Line(String),
    /// It ended: success, and a sentence.
    Exited(bool, String),
    /// It was stopped by the agent (the job was cancelled, or the agent is shutting down); the
    /// platform decides what that means, so the agent reports no state for it.
    Stopped,
}

/// Runs job `id`; sends its events; returns when it ended. `stop` ends it early. `local` jobs
/// run isolated as `isolation` says (see [`crate::sandbox`]).
pub async fn run_job(
    backend: Backend,
    id: i64,
    request: &JobRequest,
    isolation: &Isolation,
    events: mpsc::Sender<Event>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    match backend {
        Backend::Sim => {
            let seconds = request.duration_s.unwrap_or(SIM_DEFAULT_DURATION_S);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(seconds)) => {
                    let _ = events.send(Event::Line(format!("simulated run of {seconds} s\n"))).await;
                    let _ = events.send(Event::Exited(true, format!("simulated for {seconds} s"))).await;
                }
                _ = &mut stop => {
                    let _ = events.send(Event::Stopped).await;
                }
            }
        }
        Backend::Local => {
            let Some((program, args)) = request.command.split_first() else {
                let _ = events.send(Event::Exited(false, "the job has no command to run".to_owned())).await;
                return;
            };
            let dir = match isolation.make_job_dir(id) {
                Ok(dir) => dir,
                Err(e) => {
                    let _ = events.send(Event::Exited(false, format!("cannot make the job's directory: {e}"))).await;
                    return;
                }
            };
            let mut command = match &isolation.launcher {
                Some(launcher) => {
                    let mut command = Command::new(launcher);
                    command.arg("sandbox-exec");
                    for path in &isolation.protect {
                        command.arg("--protect").arg(path);
                    }
                    // The launcher switches account itself, after the sandbox is in place, so
                    // it need not be readable by the job's account.
                    if let Some(user) = &isolation.run_as {
                        command.arg("--uid").arg(user.uid.to_string()).arg("--gid").arg(user.gid.to_string());
                    }
                    command.arg(&dir).arg("--").arg(program);
                    command
                }
                None => Command::new(program),
            };
            if let (None, Some(user)) = (&isolation.launcher, &isolation.run_as) {
                command.uid(user.uid).gid(user.gid);
            }
            let spawned = command
                .args(args)
                .env_clear()
                .envs(isolation.environment(id, &dir, &request.env))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            let mut child = match spawned {
                Ok(child) => child,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    let _ = events.send(Event::Exited(false, format!("cannot start {program}: {e}"))).await;
                    return;
                }
            };
            let mut readers = Vec::new();
            for stream in [
                child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                child.stderr.take().map(|s| Box::new(s) as _),
            ]
            .into_iter()
            .flatten()
            {
                readers.push(tokio::spawn(forward_output(stream, events.clone())));
            }
            let outcome = tokio::select! {
                status = child.wait() => match status {
                    Ok(s) if s.success() => Event::Exited(true, "exit code 0".to_owned()),
                    Ok(s) => Event::Exited(false, s.code().map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit code {c}"))),
                    Err(e) => Event::Exited(false, format!("cannot wait for the process: {e}")),
                },
                _ = &mut stop => {
                    let _ = child.kill().await;
                    Event::Stopped
                }
            };
            for reader in readers {
                let _ = reader.await;
            }
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(job_id = id, error = %e, "cannot remove the job's directory");
            }
            let _ = events.send(outcome).await;
        }
    }
}

/// Sends a stream's output as lines of at most [`LOG_LINE_MAX`] bytes (longer lines in pieces),
/// whatever bytes it holds: invalid UTF-8 and control characters other than tab and carriage
/// return become U+FFFD.
async fn forward_output(stream: Box<dyn tokio::io::AsyncRead + Unpin + Send>, events: mpsc::Sender<Event>) {
    let mut reader = BufReader::with_capacity(LOG_LINE_MAX, stream);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    while let Ok(buf) = reader.fill_buf().await {
        if buf.is_empty() {
            if !line.is_empty() {
                let _ = events.send(Event::Line(piece(&mut line, true))).await;
            }
            break;
        }
        let room = LOG_LINE_MAX - 1 - line.len();
        let window = &buf[..buf.len().min(room)];
        let (taken, ended) = match window.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (window.len(), false),
        };
        line.extend_from_slice(&window[..taken - usize::from(ended)]);
        reader.consume(taken);
        if (ended || line.len() >= LOG_LINE_MAX - 1) && events.send(Event::Line(piece(&mut line, ended))).await.is_err()
        {
            break;
        }
    }
}

/// Takes a line (or, when `whole` is false, the longest prefix that ends on a character
/// boundary) out of `bytes` as clean text with a newline.
fn piece(bytes: &mut Vec<u8>, whole: bool) -> String {
    let cut = if whole {
        bytes.len()
    } else {
        match std::str::from_utf8(bytes) {
            Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
            _ => bytes.len(),
        }
    };
    let rest = bytes.split_off(cut);
    let text = clean_line(bytes);
    *bytes = rest;
    text
}

/// A line of output as the platform stores it: invalid UTF-8 and control characters other than
/// tab and carriage return shown as U+FFFD, one newline at the end.
pub fn clean_line(bytes: &[u8]) -> String {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() && c != '\t' && c != '\r' { '\u{fffd}' } else { c })
        .collect();
    text.push('\n');
    text
}

/// Cuts `text` to at most `max` bytes without splitting a character.
pub(crate) fn truncate_on_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_between_characters() {
        let mut text = "算网".repeat(10);
        truncate_on_char(&mut text, 7);
        assert_eq!(text, "算网");
        let mut short = "ok".to_owned();
        truncate_on_char(&mut short, 7);
        assert_eq!(short, "ok");
    }

    #[test]
    fn pieces_are_clean_text_cut_between_characters() {
        let mut bytes = b"ok\x00\x1b[31m\xff".to_vec();
        assert_eq!(piece(&mut bytes, true), "ok\u{fffd}\u{fffd}[31m\u{fffd}\n");
        assert!(bytes.is_empty());
        let mut split = "算网".as_bytes().to_vec();
        split.pop();
        assert_eq!(piece(&mut split, false), "算\n");
        assert_eq!(split.len(), 2);
    }

    #[tokio::test]
    async fn an_endless_line_arrives_in_bounded_pieces() {
        let (tx, mut rx) = mpsc::channel(1024);
        let (_stop, stop) = tokio::sync::oneshot::channel();
        let request = JobRequest {
            command: vec!["sh".into(), "-c".into(), "head -c 300000 /dev/zero | tr '\\0' x; echo; echo end".into()],
            ..JobRequest::named("t")
        };
        run_job(Backend::Local, 2, &request, &Isolation::basic(), tx, stop).await;
        let mut lines = Vec::new();
        while let Some(Event::Line(line)) = rx.recv().await {
            lines.push(line);
        }
        assert!(lines.iter().all(|l| l.len() <= LOG_LINE_MAX && l.ends_with('\n')));
        assert_eq!(lines.iter().map(|l| l.trim_end().len()).sum::<usize>(), 300_003);
        assert_eq!(lines.last().map(String::as_str), Some("end\n"));
    }

    #[tokio::test]
    async fn a_local_job_reports_its_output_and_exit_code() {
        let (tx, mut rx) = mpsc::channel(16);
        let (_stop, stop) = tokio::sync::oneshot::channel();
        let request = JobRequest {
            command: vec!["sh".into(), "-c".into(), "echo out; echo err >&2; exit 3".into()],
            ..JobRequest::named("t")
        };
        run_job(Backend::Local, 1, &request, &Isolation::basic(), tx, stop).await;
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        assert_eq!(events.last(), Some(&Event::Exited(false, "exit code 3".to_owned())));
        assert!(events.contains(&Event::Line("out\n".to_owned())) && events.contains(&Event::Line("err\n".to_owned())));
    }

    #[tokio::test]
    async fn a_stopped_job_is_killed_and_says_so() {
        let (tx, mut rx) = mpsc::channel(16);
        let (stop_tx, stop) = tokio::sync::oneshot::channel();
        let request = JobRequest { command: vec!["sleep".into(), "60".into()], ..JobRequest::named("t") };
        let started = std::time::Instant::now();
        let run =
            tokio::spawn(async move { run_job(Backend::Local, 1, &request, &Isolation::basic(), tx, stop).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stop_tx.send(());
        let _ = run.await;
        assert_eq!(rx.recv().await, Some(Event::Stopped));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
