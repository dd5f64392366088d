//! The single writer, with group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs an fsync.
//! So one thread owns the write connection: it takes every write queued
//! while the previous commit was being flushed, runs each in its own
//! savepoint (a refused or failed write rolls back alone), commits them all
//! at once, and only then answers each caller. A 2xx therefore always means
//! the order is on disk, and many orders share one fsync.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// One write: run inside the batch's transaction, answered after commit.
pub(crate) trait WriteOp: Send {
    /// Does the work; false means it failed and its savepoint is rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the result once the batch's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Op<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
            tracing::error!("a write panicked; it was rolled back");
            Err(StoreError::Unavailable(
                "the write failed unexpectedly".into(),
            ))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let outcome = match committed {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(StoreError::Unavailable("the write did not run".into()))),
            Err(e) => Err(StoreError::Unavailable(e)),
        };
        // The caller may have gone away (client disconnected); the write
        // stands either way.
        let _ = self.reply.send(outcome);
    }
}

pub(crate) enum Job {
    Write(Box<dyn WriteOp>),
    Shutdown(oneshot::Sender<()>),
}

/// The sending side, held by the store.
#[derive(Clone)]
pub(crate) struct WriteQueue {
    tx: mpsc::Sender<Job>,
}

impl WriteQueue {
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op = Op {
            work: Some(work),
            result: None,
            reply,
        };
        self.tx
            .send(Job::Write(Box::new(op)))
            .await
            .map_err(|_| StoreError::Unavailable("the store is shut down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }

    /// Finishes everything queued so far, then stops the writer.
    pub(crate) async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

pub(crate) fn start(
    conn: Connection,
    max_batch: usize,
    queue_depth: usize,
) -> std::io::Result<WriteQueue> {
    let (tx, rx) = mpsc::channel(queue_depth);
    std::thread::Builder::new()
        .name("ordo-sqlite-writer".into())
        .spawn(move || run(conn, rx, max_batch))?;
    Ok(WriteQueue { tx })
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        let mut shutdown = None;
        match first {
            Job::Write(op) => batch.push(op),
            Job::Shutdown(done) => shutdown = Some(done),
        }
        while shutdown.is_none() && batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Job::Write(op)) => batch.push(op),
                Ok(Job::Shutdown(done)) => shutdown = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch);
        }
        if let Some(done) = shutdown {
            rx.close();
            // Anything that slipped in before the close still gets written.
            while let Ok(Job::Write(op)) = rx.try_recv() {
                batch.push(op);
            }
            if !batch.is_empty() {
                commit_batch(&conn, &mut batch);
            }
            let _ = done.send(());
            return;
        }
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn WriteOp>>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "could not begin a write transaction");
        for op in batch.drain(..) {
            op.finish(Err(e.clone()));
        }
        return;
    }
    for op in batch.iter_mut() {
        let outcome = exec(conn, "SAVEPOINT op").and_then(|()| {
            if op.run(conn) {
                exec(conn, "RELEASE op")
            } else {
                exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
            }
        });
        if let Err(e) = outcome {
            // The transaction itself is in trouble: give up on the batch.
            tracing::error!(error = %e, "a savepoint failed; rolling back the batch");
            let _ = exec(conn, "ROLLBACK");
            for op in batch.drain(..) {
                op.finish(Err(e.clone()));
            }
            return;
        }
    }
    let committed = exec(conn, "COMMIT");
    if let Err(e) = &committed {
        tracing::error!(error = %e, "commit failed; the batch is rolled back");
        let _ = exec(conn, "ROLLBACK");
    }
    metrics_batch(batch.len());
    for op in batch.drain(..) {
        op.finish(committed.clone());
    }
}

fn metrics_batch(size: usize) {
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!("ordo_store_commit_batch_size").record(size as f64);
}
