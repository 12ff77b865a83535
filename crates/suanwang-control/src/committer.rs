//! Group commit: concurrent writes wait in a bounded queue; one task takes everything waiting (up
//! to a batch), writes it in one transaction, and answers each request once it is durable. A 2xx
//! is only ever sent after this answer.

use std::sync::Arc;

use suanwang_store::error::StoreError;
use suanwang_store::model::{Outcome, Write, WriteError};
use suanwang_store::store::{BATCH_MAX, Request, Store};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::error::Error;

/// Writes that may wait at once; past this the API answers 503.
pub const QUEUE_MAX: usize = 65_536;

/// Why a write did not happen.
#[derive(Debug)]
pub enum Failure {
    /// The store refused this write (the others of its batch are unaffected).
    Refused(WriteError),
    /// The database failed; nothing of the batch was written.
    Store(String),
    /// Too many writes are waiting.
    Busy,
}

type Pending = (Request, oneshot::Sender<Result<Outcome, Failure>>);

/// A handle to the committer task.
#[derive(Clone, Debug)]
pub struct Committer {
    queue: mpsc::Sender<Pending>,
}

impl Committer {
    /// Starts the task; `clock` gives the commit time.
    pub fn start(store: Store, clock: Arc<dyn Clock>) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Pending>(QUEUE_MAX);
        tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(BATCH_MAX);
            while let Some(first) = waiting.recv().await {
                batch.push(first);
                while batch.len() < BATCH_MAX {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let requests: Vec<Request> = batch.iter().map(|(r, _)| r.clone()).collect();
                let result: Result<_, StoreError> = store.write(&requests, clock.now_ms()).await;
                match result {
                    Ok(outcomes) => {
                        for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                            let _ = reply.send(outcome.map_err(Failure::Refused));
                        }
                    }
                    Err(error) => {
                        let message = error.to_string();
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(Failure::Store(message.clone())));
                        }
                    }
                }
            }
        });
        Committer { queue }
    }

    /// Writes one change durably, grouped with whatever else is waiting.
    pub async fn write(&self, actor: impl Into<String>, write: Write) -> Result<Outcome, Failure> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send((Request { actor: actor.into(), write }, reply)).map_err(|_| Failure::Busy)?;
        answer.await.unwrap_or_else(|_| Err(Failure::Store("the committer stopped".to_owned())))
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(error) => error.into(),
            Failure::Store(message) => {
                tracing::error!(error = %message, "a write batch failed");
                Error::unavailable("the database is unavailable; try again")
            }
            Failure::Busy => Error::unavailable("too many writes are waiting; try again shortly"),
        }
    }
}
