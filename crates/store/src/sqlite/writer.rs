//! The single writer, with group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs an fsync.
//! So one thread owns the write connection: it takes every write queued
//! while the previous commit was being flushed, runs them one after the
//! other in one transaction, commits them all at once, and only then answers
//! each caller. A 2xx therefore always means the order is on disk, and many
//! orders share one fsync. A refused write refuses before it changes
//! anything; if one ever fails after changing rows, the whole batch rolls
//! back and every caller is told to retry.
//!
//! By default ordo flushes the WAL itself: SQLite commits without an fsync
//! (`synchronous=NORMAL`), and a second thread fsyncs the WAL before the
//! batch's callers are answered, while the writer already runs the next
//! batch. An acknowledged write is on disk either way; a reader may see a
//! committed write a millisecond before its fsync completes.
//!
//! Checkpoints (copying the WAL into the database file) run on their own
//! thread; only when the WAL has grown past its bound does the writer finish
//! one between two batches (see `finish_checkpoint`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// One write: run inside the batch's transaction, answered after commit.
pub(crate) trait WriteOp: Send {
    /// Does the work; false means it failed (and changed nothing).
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
    /// Set for good when a flush to disk fails (see `sync_loop`).
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

const FLUSH_FAILED: &str =
    "a flush to disk failed: ordo takes no more writes until it is restarted (check the disk)";

impl WriteQueue {
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.has_failed() {
            return Err(StoreError::Unavailable(FLUSH_FAILED.into()));
        }
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

    /// True once a flush to disk has failed.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Finishes everything queued so far, then stops the writer.
    pub(crate) async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// How a committed batch becomes durable before its callers hear back.
pub(crate) enum Durability {
    /// SQLite fsyncs inside COMMIT (`synchronous=FULL`): answer at once.
    InCommit,
    /// No fsync at all (`synchronous=NORMAL`): survives a crash of ordo,
    /// not of the machine.
    Unsynced,
    /// ordo fsyncs the WAL file itself, on another thread, before answering:
    /// the next batch executes while the disk flushes the last one.
    Pipelined(PathBuf),
}

enum ToSync {
    Batch(Vec<Box<dyn WriteOp>>),
    Done(oneshot::Sender<()>),
}

pub(crate) fn start(
    conn: Connection,
    max_batch: usize,
    queue_depth: usize,
    durability: Durability,
    finish: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<WriteQueue> {
    let (tx, rx) = mpsc::channel(queue_depth);
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let syncer = match durability {
        Durability::Pipelined(wal) => {
            let (sync_tx, sync_rx) = std::sync::mpsc::channel();
            let failed = std::sync::Arc::clone(&failed);
            std::thread::Builder::new()
                .name("ordo-sqlite-fsync".into())
                .spawn(move || sync_loop(&wal, &sync_rx, &failed))?;
            Some(sync_tx)
        }
        Durability::InCommit | Durability::Unsynced => None,
    };
    std::thread::Builder::new()
        .name("ordo-sqlite-writer".into())
        .spawn(move || run(&conn, rx, max_batch, syncer.as_ref(), &finish))?;
    Ok(WriteQueue { tx, failed })
}

fn run(
    conn: &Connection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    syncer: Option<&std::sync::mpsc::Sender<ToSync>>,
    finish: &std::sync::atomic::AtomicBool,
) {
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(max_batch);
    let deliver =
        |batch: Vec<Box<dyn WriteOp>>, committed: Result<(), String>| match (syncer, committed) {
            (Some(s), Ok(())) => {
                if let Err(std::sync::mpsc::SendError(ToSync::Batch(ops))) =
                    s.send(ToSync::Batch(batch))
                {
                    for op in ops {
                        op.finish(Err("the fsync thread stopped".into()));
                    }
                }
            }
            (_, committed) => {
                for op in batch {
                    op.finish(committed.clone());
                }
            }
        };
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
            let committed = commit_batch(conn, &mut batch);
            deliver(std::mem::take(&mut batch), committed);
        }
        if finish.swap(false, std::sync::atomic::Ordering::AcqRel) {
            finish_checkpoint(conn);
        }
        if let Some(done) = shutdown {
            rx.close();
            // Anything that slipped in before the close still gets written.
            while let Ok(Job::Write(op)) = rx.try_recv() {
                batch.push(op);
            }
            if !batch.is_empty() {
                let committed = commit_batch(conn, &mut batch);
                deliver(std::mem::take(&mut batch), committed);
            }
            match syncer {
                Some(s) => {
                    if let Err(std::sync::mpsc::SendError(ToSync::Done(done))) =
                        s.send(ToSync::Done(done))
                    {
                        let _ = done.send(());
                    }
                }
                None => {
                    let _ = done.send(());
                }
            }
            return;
        }
    }
}

/// Finishes a checkpoint between two batches, when the checkpoint thread
/// asks for it after a pass.
///
/// The checkpoint thread copies the WAL into the database in the
/// background, but under a steady stream of commits it never catches up
/// with the last frames, and SQLite only rewinds the WAL once every frame is
/// copied: the WAL would grow without end, and every frame would be written
/// into freshly allocated file blocks (which the kernel zeroes first). The
/// writer, between two batches, is the one moment no commit is racing: a
/// passive checkpoint then copies the little the background pass left, and
/// the next transaction starts the WAL from its beginning again.
fn finish_checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpoint failed; will retry");
    }
}

/// Flushes the WAL to disk for every batch committed since the last flush,
/// then answers their callers. One fsync covers all of them.
///
/// A failed fsync leaves the batch committed (readers may see it) but of
/// unknown durability, and after one failure a later successful fsync
/// proves nothing (the kernel may have dropped the pages). So, as
/// PostgreSQL does, ordo stops: those callers and every later writer are
/// told the outcome is unknown, and writes resume only after a restart,
/// which recovers from what is really on disk.
fn sync_loop(
    wal: &Path,
    rx: &std::sync::mpsc::Receiver<ToSync>,
    failed: &std::sync::atomic::AtomicBool,
) {
    let mut file: Option<(std::fs::File, u64)> = None;
    while let Ok(first) = rx.recv() {
        let mut batches = Vec::new();
        let mut done = None;
        let mut take = |m: ToSync| match m {
            ToSync::Batch(ops) => batches.push(ops),
            ToSync::Done(d) => done = Some(d),
        };
        take(first);
        while let Ok(m) = rx.try_recv() {
            take(m);
        }
        if !batches.is_empty() {
            let synced = if failed.load(std::sync::atomic::Ordering::Acquire) {
                Err(FLUSH_FAILED.to_string())
            } else {
                sync_wal(wal, &mut file).map_err(|e| {
                    failed.store(true, std::sync::atomic::Ordering::Release);
                    tracing::error!(error = %e, "fsync of the WAL failed; ordo takes no more writes until restarted");
                    format!("{e}: these writes may or may not be on disk; {FLUSH_FAILED}")
                })
            };
            for op in batches.into_iter().flatten() {
                op.finish(synced.clone());
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
            return;
        }
    }
}

fn sync_wal(wal: &Path, file: &mut Option<(std::fs::File, u64)>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(wal)
        .map_err(|e| format!("the WAL file is gone: {e}"))?
        .ino();
    // SQLite keeps the WAL file while the writer's connection is open; should
    // it ever be replaced, the new one is the one to flush.
    if file.as_ref().is_none_or(|(_, ino)| *ino != inode) {
        let f = std::fs::File::open(wal).map_err(|e| format!("cannot open the WAL file: {e}"))?;
        *file = Some((f, inode));
    }
    match file {
        Some((f, _)) => f.sync_data().map_err(|e| format!("fsync failed: {e}")),
        None => Err("no WAL file".into()),
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs a batch in one transaction; the caller delivers the outcome.
fn commit_batch(conn: &Connection, batch: &mut [Box<dyn WriteOp>]) -> Result<(), String> {
    exec(conn, "BEGIN IMMEDIATE")
        .inspect_err(|e| tracing::error!(error = %e, "could not begin a write transaction"))?;
    for op in batch.iter_mut() {
        // Writes check before they change anything, so a refused write
        // leaves nothing behind and needs no savepoint of its own (which
        // would copy every page it touches). Should one ever fail after
        // changing rows, the whole batch is rolled back and every caller
        // is told to retry: nothing half-done is ever committed.
        let before = conn.total_changes();
        if op.run(conn) {
            continue;
        }
        // Some errors (a full disk, an I/O error) make SQLite roll the whole
        // transaction back on its own: the writes before this one are gone,
        // and nothing after it may run outside a transaction.
        if conn.is_autocommit() {
            let e = "the database rolled the batch back after an error; retry".to_string();
            tracing::error!("{e}");
            return Err(e);
        }
        if conn.total_changes() != before {
            let e =
                "a write failed after changing rows; the batch was rolled back, retry".to_string();
            tracing::error!("{e}");
            let _ = exec(conn, "ROLLBACK");
            return Err(e);
        }
    }
    let committed = exec(conn, "COMMIT");
    if let Err(e) = &committed {
        tracing::error!(error = %e, "commit failed; the batch is rolled back");
        let _ = exec(conn, "ROLLBACK");
    }
    metrics_batch(batch.len());
    committed
}

fn metrics_batch(size: usize) {
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!("ordo_store_commit_batch_size").record(size as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<T: Send + 'static>(
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> (Box<dyn WriteOp>, oneshot::Receiver<Result<T, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let op = Op {
            work: Some(work),
            result: None,
            reply,
        };
        (Box::new(op), answer)
    }

    fn insert(conn: &Connection, n: i64) -> Result<(), StoreError> {
        conn.execute("INSERT INTO t (n) VALUES (?1)", [n])
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    fn table() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL UNIQUE)")
            .expect("table");
        conn
    }

    #[test]
    fn a_refusal_that_changed_nothing_leaves_the_rest_of_the_batch() {
        let conn = table();
        let (a, a_answer) = op(|c| insert(c, 1));
        let (b, b_answer) = op(|_| Err::<(), _>(StoreError::NotFound));
        let (c, c_answer) = op(|c| insert(c, 2));
        let mut batch = vec![a, b, c];
        assert_eq!(commit_batch(&conn, &mut batch), Ok(()));
        for op in batch {
            op.finish(Ok(()));
        }
        assert!(a_answer.blocking_recv().expect("answer").is_ok());
        assert!(matches!(
            b_answer.blocking_recv().expect("answer"),
            Err(StoreError::NotFound)
        ));
        assert!(c_answer.blocking_recv().expect("answer").is_ok());
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn a_failure_after_changing_rows_rolls_back_the_whole_batch() {
        let conn = table();
        let (a, _) = op(|c| insert(c, 1));
        let (b, _) = op(|c| {
            insert(c, 2)?;
            Err::<(), _>(StoreError::NotFound)
        });
        let mut batch = vec![a, b];
        assert!(commit_batch(&conn, &mut batch).is_err());
        assert_eq!(count(&conn), 0, "nothing half-done is committed");
    }

    #[test]
    fn a_transaction_the_database_rolled_back_fails_the_batch_and_runs_nothing_after() {
        let conn = table();
        let (a, _) = op(|c| insert(c, 1));
        // What SQLite does on its own after a full disk or an I/O error.
        let (b, _) = op(|c| {
            c.execute_batch("ROLLBACK")
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            Err::<(), _>(StoreError::Unavailable("disk full".into()))
        });
        let (c, _) = op(|c| insert(c, 2));
        let mut batch = vec![a, b, c];
        assert!(commit_batch(&conn, &mut batch).is_err());
        assert_eq!(count(&conn), 0, "nothing runs outside the transaction");
    }

    #[test]
    fn a_failed_flush_fails_its_writes_and_every_later_one() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("no-such-wal");
        let failed = std::sync::atomic::AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel();
        let (a, a_answer) = op(|_| Ok(()));
        let (b, b_answer) = op(|_| Ok(()));
        let (done, finished) = oneshot::channel();
        tx.send(ToSync::Batch(vec![a])).expect("send");
        tx.send(ToSync::Batch(vec![b])).expect("send");
        tx.send(ToSync::Done(done)).expect("send");
        sync_loop(&missing, &rx, &failed);
        finished.blocking_recv().expect("done");
        assert!(failed.load(std::sync::atomic::Ordering::Acquire));
        assert!(a_answer.blocking_recv().expect("answer").is_err());
        assert!(b_answer.blocking_recv().expect("answer").is_err());
    }

    #[test]
    fn a_panicking_write_is_contained() {
        let conn = table();
        let (a, a_answer) = op(|_| -> Result<(), StoreError> { panic!("bug") });
        let (b, _) = op(|c| insert(c, 1));
        let mut batch = vec![a, b];
        assert_eq!(commit_batch(&conn, &mut batch), Ok(()));
        for op in batch {
            op.finish(Ok(()));
        }
        assert!(a_answer.blocking_recv().expect("answer").is_err());
        assert_eq!(count(&conn), 1);
    }
}
