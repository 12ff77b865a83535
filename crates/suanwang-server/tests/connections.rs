//! Issue 15: 21,000 idle sockets once used up the server's file descriptors and `/healthz`
//! stopped answering. Now idle and half-sent connections are cut off, connections past the cap
//! wait in the backlog, and the server keeps answering.

#![allow(clippy::unwrap_used, reason = "a test that cannot set itself up should fail loudly")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Harness, fast};
use suanwang_server::listen::{Limits, serve};

async fn start(h: &Harness, limits: Limits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    addr
}

/// One request on a fresh connection; the status line and how long it took.
fn request(addr: SocketAddr, path: &str, token: Option<&str>) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    (answer.lines().next().unwrap_or_default().to_owned(), started.elapsed())
}

fn idle_sockets(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count).map(|_| TcpStream::connect(addr).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_while_5000_idle_sockets_are_open() {
    let h = Harness::new(fast()).await;
    let tenant = h.tenant("t").await;
    let limits =
        Limits { header_timeout: Duration::from_secs(2), idle_timeout: Duration::from_secs(4), ..Limits::default() };
    let addr = start(&h, limits).await;
    let (idle, health, jobs) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut idle = idle_sockets(addr, 5_000);
        eprintln!("5,000 sockets open in {:?}", started.elapsed());
        // Half a request, too: the header timeout covers it.
        for socket in idle.iter_mut().take(100) {
            socket.write_all(b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
        }
        let health = request(addr, "/healthz", None);
        let jobs = request(addr, "/api/v1/jobs", Some(&tenant));
        (idle, health, jobs)
    })
    .await
    .unwrap();
    assert_eq!(health.0, "HTTP/1.1 200 OK");
    assert!(health.1 < Duration::from_secs(2), "/healthz took {:?}", health.1);
    assert_eq!(jobs.0, "HTTP/1.1 200 OK");
    // Every idle socket is let go by the server within the header timeout (and a margin): the
    // client reads an end of stream (after a 408 answer, for some) or a reset.
    let started = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .filter(|socket| {
                socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buffer = [0u8; 256];
                loop {
                    match (&*socket).read(&mut buffer) {
                        Ok(0) => return true,
                        Ok(_) => {}
                        Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
                    }
                }
            })
            .count()
    })
    .await
    .unwrap();
    eprintln!("closed within {:?}", started.elapsed());
    assert_eq!(closed, 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_idle_ones_are_cut_off() {
    let h = Harness::new(fast()).await;
    let limits = Limits { max_connections: 100, header_timeout: Duration::from_secs(1), ..Limits::default() };
    let addr = start(&h, limits).await;
    let health = tokio::task::spawn_blocking(move || {
        let _idle = idle_sockets(addr, 300);
        request(addr, "/healthz", None)
    })
    .await
    .unwrap();
    assert_eq!(health.0, "HTTP/1.1 200 OK");
    assert!(health.1 < Duration::from_secs(8), "/healthz took {:?}", health.1);
}

/// A body sent a byte at a time, never idle long enough to be cut off as idle, is cut off when
/// its time is up, with the JSON 408; other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_is_cut_off() {
    let h = Harness::new(fast()).await;
    let tenant = h.tenant("t").await;
    let limits =
        Limits { idle_timeout: Duration::from_secs(2), body_timeout: Duration::from_secs(3), ..Limits::default() };
    let addr = start(&h, limits).await;
    let (answer, took, health) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = r#"{"name": "slow", "cpu_milli": 100}"#;
        write!(
            stream,
            "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tenant}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        let mut health = None;
        for byte in body.bytes() {
            if stream.write_all(&[byte]).is_err() {
                break;
            }
            if health.is_none() {
                health = Some(request(addr, "/healthz", None));
            }
            std::thread::sleep(Duration::from_millis(500));
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        (answer, started.elapsed(), health)
    })
    .await
    .unwrap();
    assert_eq!(health.map(|h| h.0).as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(took < Duration::from_secs(8), "cut off after {took:?}");
    let (_, jobs) = common::get(&h, &h.operator, "/api/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(0), "nothing was accepted");
}
