//! The listening socket: how many connections at once, and how long a connection may sit
//! silent. A client that opens sockets and sends nothing (or half a request, or nothing after
//! its last answer) is cut off, and connections past the cap wait in the kernel's backlog rather
//! than use up the process's file descriptors, so `/healthz` and real clients are still served.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How the server treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// A request's headers must arrive within this long of the connection opening or of their
    /// first byte.
    pub header_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (an idle
    /// keep-alive connection, or a body that stopped).
    pub idle_timeout: Duration,
    /// A request's whole body must arrive within this long of its headers (a body sent a byte
    /// every few seconds is never idle, but is cut off here with 408 `body_timeout`).
    pub body_timeout: Duration,
    /// At shutdown, requests in flight get this long to finish.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `stop` fires, then lets connections finish their requests
/// (at most [`Limits::drain_timeout`]).
pub async fn serve(listener: TcpListener, app: axum::Router, limits: Limits, stop: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closed) = watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or the peer went away before we took it: wait a
                    // moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let body_timeout = limits.body_timeout;
            let service = hyper_util::service::TowerToHyperService::new(app.map_request(
                move |request: axum::http::Request<hyper::body::Incoming>| {
                    request.map(|body| axum::body::Body::new(DeadlineBody::new(body, body_timeout)))
                },
            ));
            let io = TokioIo::new(IdleIo::new(stream, limits.idle_timeout));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(io, service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async { drop(closed.wait_for(|c| *c).await) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.drain_timeout, permits.acquire_many(all)).await;
}

/// A request body that fails once its time is up.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: hyper::body::Incoming, within: Duration) -> Self {
        DeadlineBody { inner, deadline: Box::pin(tokio::time::sleep(within)) }
    }
}

/// The error a body that did not arrive in time reads as.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether `error` (an extractor's rejection) comes from a body that did not arrive in time.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

impl hyper::body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that fails a read once nothing has moved either way for `idle`.
struct IdleIo {
    inner: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn new(inner: TcpStream, idle: Duration) -> Self {
        IdleIo { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)) }
    }

    fn touch(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the connection was idle too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.touch();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
