//! The embedded store: SQLite in WAL mode, one writer with group commit,
//! a small pool of readers.

mod feed;
mod imports;
mod jobs;
mod orders;
mod products;
mod promotions;
mod staff;
mod tenants;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use std::collections::BTreeMap;

use ordo_domain::pricing::{Code, Promotion};
use ordo_domain::{
    Actor, ApiKeyId, EventDraft, Namespace, Order, OrderEvent, OrderId, OrderReference, Product,
    ProductId, SecretHash, Sku, StockMovement, TenantId, Timestamp, WebhookDeliveryId,
    WebhookEndpoint, WebhookEndpointId,
};
use ordo_domain::{ImportId, PromotionId};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::numbers::Numbers;
use crate::{
    AdminSession, ApiKey, Changed, ClaimedImport, DeliveryAttempt, DeliveryQuery, DeliveryStatus,
    FeedEvent, FeedQuery, FinishedDelivery, Import, ImportClaim, ImportError, Inserted, Job,
    JobClaim, JobOutcome, NewApiKey, NewJob, NewOrderRecord, NewUser, OrderChange, OrderFilter,
    OrderLookup, OrderQuery, Outgoing, Overview, ProductChange, ProductQuery, Put, RenderedOrder,
    Renderer, Result, Scope, Store, StoreError, Tenant, User, UserChange, WebhookDelivery,
};
use writer::WriteQueue;

/// Order numbers a store takes from a tenant's counter at a time. Taking a
/// block is a write through the group commit that every create needing a
/// number waits for: blocks of 64 cost creation 16% of its throughput
/// (measured), blocks of 1,024 nothing measurable. A gap left by a restart
/// is invisible behind the permutation.
const ORDER_NUMBER_BLOCK: u32 = 1024;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_core",
        include_str!("../../migrations/sqlite/0001_core.sql"),
    ),
    (
        2,
        "0002_order_numbers",
        include_str!("../../migrations/sqlite/0002_order_numbers.sql"),
    ),
    (
        3,
        "0003_jobs",
        include_str!("../../migrations/sqlite/0003_jobs.sql"),
    ),
    (
        4,
        "0004_feed",
        include_str!("../../migrations/sqlite/0004_feed.sql"),
    ),
    (
        5,
        "0005_webhooks",
        include_str!("../../migrations/sqlite/0005_webhooks.sql"),
    ),
    (
        6,
        "0006_deliveries",
        include_str!("../../migrations/sqlite/0006_deliveries.sql"),
    ),
    (
        7,
        "0007_delivery_jobs",
        include_str!("../../migrations/sqlite/0007_delivery_jobs.sql"),
    ),
    (
        8,
        "0008_products",
        include_str!("../../migrations/sqlite/0008_products.sql"),
    ),
    (
        9,
        "0009_tenant_settings",
        include_str!("../../migrations/sqlite/0009_tenant_settings.sql"),
    ),
    (
        10,
        "0010_reservation_expiry",
        include_str!("../../migrations/sqlite/0010_reservation_expiry.sql"),
    ),
    (
        11,
        "0011_payment_transactions",
        include_str!("../../migrations/sqlite/0011_payment_transactions.sql"),
    ),
    (
        12,
        "0012_provider_events",
        include_str!("../../migrations/sqlite/0012_provider_events.sql"),
    ),
    (
        13,
        "0013_fulfilment",
        include_str!("../../migrations/sqlite/0013_fulfilment.sql"),
    ),
    (
        14,
        "0014_conversations",
        include_str!("../../migrations/sqlite/0014_conversations.sql"),
    ),
    (
        15,
        "0015_pricing",
        include_str!("../../migrations/sqlite/0015_pricing.sql"),
    ),
    (
        16,
        "0016_imports",
        include_str!("../../migrations/sqlite/0016_imports.sql"),
    ),
    (
        17,
        "0017_bulk_lane",
        include_str!("../../migrations/sqlite/0017_bulk_lane.sql"),
    ),
    (
        18,
        "0018_staff",
        include_str!("../../migrations/sqlite/0018_staff.sql"),
    ),
];

/// How the embedded database is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Read connections kept open (and the most used at once).
    pub readers: usize,
    /// The most writes committed together.
    pub max_batch: usize,
    /// `FULL` makes every acknowledged commit survive power loss; `NORMAL`
    /// survives a crash of ordo but not of the machine.
    pub synchronous: Synchronous,
    /// Page cache per connection, in KiB.
    pub cache_kib: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Full,
    Normal,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 8,
            max_batch: 1024,
            synchronous: Synchronous::Full,
            cache_kib: 16 * 1024,
        }
    }
}

struct Readers {
    path: PathBuf,
    cache_kib: u32,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Readers {
    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -{}; PRAGMA query_only = 1;",
            self.cache_kib
        ))
        .map_err(unavailable)?;
        Ok(conn)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self
            .idle
            .lock()
            .map_err(|_| unavailable("reader pool poisoned"))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open()?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }
}

/// ordo's embedded store.
pub struct SqliteStore {
    renderer: Renderer,
    numbers: Numbers,
    /// The last feed position `sequence_events` reported.
    feed_seen: std::sync::atomic::AtomicU64,
    queue: WriteQueue,
    checkpointer: Checkpointer,
    readers: Arc<Readers>,
    path: PathBuf,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn open_writer(path: &Path, options: &SqliteOptions) -> Result<Connection> {
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(unavailable)?;
    let sync = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    // Checkpoints run on their own thread (see `Checkpointer`).
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {sync};
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{};
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = {WAL_LIMIT_BYTES};",
        options.cache_kib,
    ))
    .map_err(unavailable)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Past this many frames (about 256 MiB of 4 KiB pages), the writer
/// finishes a checkpoint between two batches so the WAL starts over; below
/// it, the background passes alone keep up whenever writes pause.
const WAL_FINISH_FRAMES: i64 = 65_536;

/// The WAL file is cut back to this size after it starts over.
const WAL_LIMIT_BYTES: i64 = 256 * 1024 * 1024;

/// Copies the WAL into the database file every so often, on its own
/// connection and thread, so commits do not wait for the bulk of it. PASSIVE
/// checkpoints never block readers or the writer; past
/// [`WAL_FINISH_FRAMES`] the writer finishes one between two batches so the
/// WAL can start over; a last one truncates the WAL on close.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Checkpointer {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(200);

    /// `finish` is raised after a pass that found the WAL past
    /// [`WAL_FINISH_FRAMES`], for the writer to finish the checkpoint between
    /// two batches.
    fn start(path: &Path, finish: Arc<std::sync::atomic::AtomicBool>) -> Result<Checkpointer> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(unavailable)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ordo-sqlite-checkpoint".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                loop {
                    let last = match stopped.recv_timeout(Self::EVERY) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    let mode = if last { "TRUNCATE" } else { "PASSIVE" };
                    let pass = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                        r.get::<_, i64>(1)
                    });
                    match pass {
                        Ok(frames) if frames >= WAL_FINISH_FRAMES => {
                            finish.store(true, std::sync::atomic::Ordering::Release);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "checkpoint failed; will retry"),
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(unavailable)?;
        Ok(Checkpointer {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs a last, truncating checkpoint and waits for it.
    async fn finish(&self) {
        let _ = self.stop.send(());
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Picks how commits become durable. With `full`, ordo fsyncs the WAL
/// itself in a pipeline (and SQLite commits with `NORMAL`), unless the WAL
/// file cannot be found, in which case SQLite fsyncs in every commit.
fn durability(
    conn: &Connection,
    path: &Path,
    synchronous: Synchronous,
) -> Result<writer::Durability> {
    if synchronous == Synchronous::Normal {
        return Ok(writer::Durability::Unsynced);
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    if std::fs::File::open(&wal).is_ok() {
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(unavailable)?;
        tracing::debug!(wal = %wal.display(), "commits are made durable by a pipelined fsync of the WAL");
        Ok(writer::Durability::Pipelined(wal))
    } else {
        tracing::warn!("no WAL file found; SQLite will fsync in every commit");
        Ok(writer::Durability::InCommit)
    }
}

/// Applies the migrations not yet applied, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<Vec<String>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER NOT NULL PRIMARY KEY,
             name        TEXT    NOT NULL,
             applied_at  INTEGER NOT NULL
         ) STRICT;",
    )
    .map_err(unavailable)?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let done: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )
            .map_err(unavailable)?;
        if !done {
            tx.execute_batch(sql).map_err(unavailable)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![version, name, Timestamp::now().unix_millis()],
            )
            .map_err(unavailable)?;
            applied.push((*name).to_string());
        }
        tx.commit().map_err(unavailable)?;
    }
    Ok(applied)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies
    /// pending migrations. Returns the store and the migrations applied.
    pub fn open(
        path: &Path,
        options: SqliteOptions,
        renderer: Renderer,
    ) -> Result<(SqliteStore, Vec<String>)> {
        let mut conn = open_writer(path, &options)?;
        let applied = migrate(&mut conn)?;
        let durability = durability(&conn, path, options.synchronous)?;
        let finish = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let queue = writer::start(
            conn,
            options.max_batch.max(1),
            4096,
            durability,
            Arc::clone(&finish),
        )
        .map_err(unavailable)?;
        let checkpointer = Checkpointer::start(path, finish)?;
        let readers = Arc::new(Readers {
            path: path.to_path_buf(),
            cache_kib: options.cache_kib,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(options.readers.max(1)),
        });
        Ok((
            SqliteStore {
                renderer,
                numbers: Numbers::new(ORDER_NUMBER_BLOCK),
                feed_seen: std::sync::atomic::AtomicU64::new(0),
                queue,
                checkpointer,
                readers,
                path: path.to_path_buf(),
            },
            applied,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A point read (a primary or unique key lookup, microseconds) runs on
    /// the calling thread: handing it to another thread would cost more than
    /// the read. Anything that scans runs on the blocking pool via [`read`](Self::read).
    async fn point_read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| unavailable("the store is shut down"))?;
        self.readers.with(f)
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| unavailable("the store is shut down"))?;
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| unavailable(format!("a read failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        if self.queue.has_failed() {
            return Err(unavailable("a flush to disk failed; restart ordo"));
        }
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    async fn close(&self) {
        self.queue.shutdown().await;
        self.readers.permits.close();
        self.checkpointer.finish().await;
    }

    async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant> {
        let (slug, name) = (slug.to_string(), name.to_string());
        self.queue
            .write(move |conn| tenants::create_tenant(conn, &slug, &name))
            .await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        self.read(tenants::tenants).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let slug = slug.to_string();
        self.read(move |conn| tenants::tenant_by_slug(conn, &slug))
            .await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        self.point_read(move |conn| tenants::tenant_by_id(conn, id))
            .await
    }

    async fn tenant_settings(&self, tenant: TenantId) -> Result<crate::TenantSettings> {
        self.point_read(|conn| tenants::settings(conn, tenant))
            .await
    }

    async fn save_tenant_settings(
        &self,
        tenant: TenantId,
        settings: crate::TenantSettings,
    ) -> Result<()> {
        let json =
            serde_json::to_string(&settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.queue
            .write(move |conn| tenants::save_settings(conn, tenant, &json))
            .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        self.queue
            .write(move |conn| tenants::create_api_key(conn, &key))
            .await
    }

    async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>> {
        self.read(move |conn| tenants::api_keys(conn, tenant)).await
    }

    async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId) -> Result<ApiKey> {
        self.queue
            .write(move |conn| tenants::revoke_api_key(conn, tenant, id))
            .await
    }

    async fn api_key_by_secret(
        &self,
        tenant: TenantId,
        hash: SecretHash,
    ) -> Result<Option<ApiKey>> {
        self.point_read(move |conn| tenants::api_key_by_secret(conn, tenant, hash))
            .await
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        self.queue
            .write(move |conn| staff::create_user(conn, &user))
            .await
    }

    async fn users(&self, tenant: TenantId) -> Result<Vec<User>> {
        self.read(move |conn| staff::users(conn, tenant)).await
    }

    async fn user_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<(User, String)>> {
        let email = email.to_string();
        self.point_read(move |conn| staff::user_by_email(conn, tenant, &email))
            .await
    }

    async fn change_user(&self, tenant: TenantId, email: &str, change: UserChange) -> Result<User> {
        let email = email.to_string();
        self.queue
            .write(move |conn| staff::change_user(conn, tenant, &email, &change))
            .await
    }

    async fn create_session(&self, session: AdminSession) -> Result<()> {
        self.queue
            .write(move |conn| staff::create_session(conn, &session))
            .await
    }

    async fn admin_session(
        &self,
        tenant: TenantId,
        hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<(AdminSession, Tenant)>> {
        self.point_read(move |conn| staff::admin_session(conn, tenant, hash, now))
            .await
    }

    async fn touch_session(
        &self,
        tenant: TenantId,
        hash: SecretHash,
        seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.queue
            .write(move |conn| staff::touch_session(conn, tenant, hash, seen_at, expires_at))
            .await
    }

    async fn delete_session(&self, tenant: TenantId, hash: SecretHash) -> Result<()> {
        self.queue
            .write(move |conn| staff::delete_session(conn, tenant, hash))
            .await
    }

    async fn tenant_secret(&self, tenant: TenantId, name: &str) -> Result<Vec<u8>> {
        let name = name.to_string();
        self.queue
            .write(move |conn| staff::tenant_secret(conn, tenant, &name))
            .await
    }

    async fn next_reference(&self, tenant: TenantId) -> Result<OrderReference> {
        self.numbers
            .next(tenant, |block| {
                self.queue
                    .write(move |conn| orders::take_numbers(conn, tenant, block))
            })
            .await
    }

    async fn insert_order(&self, record: NewOrderRecord) -> Result<Inserted> {
        // Serialised and rendered here, on the caller's thread, not in the
        // single writer.
        let renderer = self.renderer;
        let mut record = record;
        let stored = orders::Stored::of(&record.order, renderer, record.rendered.take())?;
        let tenant = record.order.tenant_id;
        let inserted = self
            .queue
            .write(move |conn| orders::insert(conn, record, stored, renderer))
            .await;
        self.numbers.forget_on_conflict(tenant, &inserted).await;
        inserted
    }

    async fn put_order(
        &self,
        scope: Scope,
        key: (Namespace, String),
        record: NewOrderRecord,
        change: OrderChange,
    ) -> Result<Put> {
        let renderer = self.renderer;
        let mut record = record;
        let stored = orders::Stored::of(&record.order, renderer, record.rendered.take())?;
        let tenant = record.order.tenant_id;
        let put = self
            .queue
            .write(move |conn| orders::put(conn, &scope, &key, record, stored, change, renderer))
            .await;
        self.numbers.forget_on_conflict(tenant, &put).await;
        put
    }

    async fn order(&self, scope: &Scope, lookup: &OrderLookup) -> Result<Option<Order>> {
        self.point_read(|conn| orders::find(conn, scope, lookup))
            .await
    }

    async fn rendered_order(
        &self,
        scope: &Scope,
        lookup: &OrderLookup,
    ) -> Result<Option<RenderedOrder>> {
        let renderer = self.renderer;
        self.point_read(|conn| orders::find_rendered(conn, scope, lookup, renderer))
            .await
    }

    async fn rendered_orders(
        &self,
        scope: &Scope,
        query: &OrderQuery,
    ) -> Result<Vec<RenderedOrder>> {
        let (scope, query, renderer) = (scope.clone(), query.clone(), self.renderer);
        self.read(move |conn| orders::list_rendered(conn, &scope, &query, renderer))
            .await
    }

    async fn count_orders(&self, scope: &Scope, filter: &OrderFilter) -> Result<u64> {
        let (scope, filter) = (scope.clone(), filter.clone());
        self.read(move |conn| orders::count(conn, &scope, &filter))
            .await
    }

    async fn overview(&self, scope: &Scope, since: Option<Timestamp>) -> Result<Overview> {
        let scope = scope.clone();
        self.read(move |conn| orders::overview(conn, &scope, since))
            .await
    }

    async fn change_order(
        &self,
        scope: Scope,
        lookup: OrderLookup,
        expected_version: Option<u64>,
        actor: Actor,
        change: OrderChange,
    ) -> Result<Changed> {
        let renderer = self.renderer;
        self.queue
            .write(move |conn| {
                orders::change(
                    conn,
                    &scope,
                    &lookup,
                    expected_version,
                    &actor,
                    change,
                    renderer,
                )
            })
            .await
    }

    async fn lapsed_reservations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(TenantId, OrderId)>> {
        self.read(move |conn| orders::lapsed_reservations(conn, now, limit))
            .await
    }

    async fn order_events(&self, scope: &Scope, id: OrderId) -> Result<Vec<OrderEvent>> {
        let scope = scope.clone();
        self.read(move |conn| orders::events(conn, &scope, id))
            .await
    }

    async fn append_events(
        &self,
        scope: Scope,
        id: OrderId,
        actor: Actor,
        at: Timestamp,
        events: Vec<EventDraft>,
    ) -> Result<Vec<OrderEvent>> {
        self.queue
            .write(move |conn| orders::append_events(conn, &scope, id, &actor, at, events))
            .await
    }

    async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        self.queue
            .write(move |conn| orders::prune_idempotency_keys(conn, before))
            .await
    }

    /// Events get their positions as they are written; this says how many
    /// entered the feed (from any process) since the last call.
    async fn sequence_events(&self, _limit: u32) -> Result<u64> {
        let last = self.point_read(feed::last_position).await?;
        let seen = self
            .feed_seen
            .swap(last, std::sync::atomic::Ordering::AcqRel);
        Ok(last.saturating_sub(seen))
    }

    async fn feed(&self, scope: &Scope, query: &FeedQuery) -> Result<Vec<FeedEvent>> {
        let (scope, query) = (scope.clone(), query.clone());
        self.read(move |conn| feed::page(conn, &scope, &query))
            .await
    }

    async fn save_webhook_endpoint(&self, endpoint: WebhookEndpoint, new: bool) -> Result<()> {
        self.queue
            .write(move |conn| webhooks::save(conn, &endpoint, new))
            .await
    }

    async fn webhook_endpoints(&self, tenant: TenantId) -> Result<Vec<WebhookEndpoint>> {
        self.read(move |conn| webhooks::list(conn, tenant, None))
            .await
    }

    async fn webhook_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>> {
        self.point_read(move |conn| webhooks::list(conn, tenant, Some(id)))
            .await
            .map(|mut found| found.pop())
    }

    async fn delete_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> Result<bool> {
        self.queue
            .write(move |conn| webhooks::delete(conn, tenant, id))
            .await
    }

    async fn fan_out_events(&self, limit: u32) -> Result<u64> {
        if !self.point_read(webhooks::fan_out_pending).await? {
            return Ok(0);
        }
        self.queue
            .write(move |conn| webhooks::fan_out(conn, limit, Timestamp::now()))
            .await
    }

    async fn webhook_deliveries(
        &self,
        tenant: TenantId,
        query: &DeliveryQuery,
    ) -> Result<Vec<WebhookDelivery>> {
        let query = query.clone();
        self.read(move |conn| webhooks::deliveries(conn, tenant, &query, None))
            .await
    }

    async fn delivery_attempts(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
    ) -> Result<Vec<(u32, DeliveryAttempt)>> {
        self.read(move |conn| webhooks::attempts(conn, tenant, id))
            .await
    }

    async fn retry_delivery(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
        now: Timestamp,
    ) -> Result<Option<WebhookDelivery>> {
        self.queue
            .write(move |conn| webhooks::retry(conn, tenant, id, now))
            .await
    }

    async fn webhook_delivery(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
    ) -> Result<Option<WebhookDelivery>> {
        self.point_read(move |conn| {
            webhooks::deliveries(conn, tenant, &DeliveryQuery::default(), Some(id))
        })
        .await
        .map(|mut found| found.pop())
    }

    async fn endpoint_succeeded_since(
        &self,
        tenant: TenantId,
        endpoint: WebhookEndpointId,
        since: Timestamp,
    ) -> Result<bool> {
        self.read(move |conn| webhooks::succeeded_since(conn, tenant, endpoint, since))
            .await
    }

    async fn retry_deliveries(
        &self,
        tenant: TenantId,
        endpoint: WebhookEndpointId,
        statuses: Vec<DeliveryStatus>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64> {
        self.queue
            .write(move |conn| {
                webhooks::retry_many(conn, tenant, endpoint, &statuses, from, to, now)
            })
            .await
    }

    async fn delivery_backlog(&self) -> Result<(u64, Option<Timestamp>)> {
        self.read(webhooks::backlog).await
    }

    async fn claim_deliveries(&self, claim: JobClaim) -> Result<Vec<Outgoing>> {
        let jobs = self
            .queue
            .write(move |conn| webhooks::claim(conn, &claim))
            .await?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| webhooks::outgoing(conn, jobs)).await
    }

    async fn finish_deliveries(&self, finished: Vec<FinishedDelivery>) -> Result<Vec<bool>> {
        self.queue
            .write(move |conn| finished.iter().map(|f| webhooks::finish(conn, f)).collect())
            .await
    }

    async fn insert_product(
        &self,
        product: Product,
        movement: Option<StockMovement>,
    ) -> Result<()> {
        self.queue
            .write(move |conn| products::insert(conn, &product, movement.as_ref()))
            .await
    }

    async fn product(&self, tenant: TenantId, sku: &Sku) -> Result<Option<Product>> {
        let sku = sku.clone();
        self.point_read(move |conn| products::get(conn, tenant, &sku))
            .await
    }

    async fn products_by_sku(&self, tenant: TenantId, skus: &[Sku]) -> Result<Vec<Product>> {
        let skus = skus.to_vec();
        self.point_read(move |conn| products::of_skus(conn, tenant, &skus))
            .await
    }

    async fn products(&self, tenant: TenantId, query: &ProductQuery) -> Result<Vec<Product>> {
        let query = query.clone();
        self.read(move |conn| products::list(conn, tenant, &query))
            .await
    }

    async fn change_product(
        &self,
        tenant: TenantId,
        sku: Sku,
        expected_version: Option<u64>,
        change: ProductChange,
    ) -> Result<(Product, Option<StockMovement>)> {
        self.queue
            .write(move |conn| products::change(conn, tenant, &sku, expected_version, change))
            .await
    }

    async fn stock_ledger(&self, tenant: TenantId) -> Result<Vec<crate::StockLedger>> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction().map_err(unavailable)?;
            let ledger = products::ledger(&tx, tenant)?;
            tx.finish().map_err(unavailable)?;
            Ok(ledger)
        })
        .await
    }

    async fn stock_movements(
        &self,
        tenant: TenantId,
        product: ProductId,
        page: crate::MovementPage,
    ) -> Result<Vec<StockMovement>> {
        self.read(move |conn| products::movements(conn, tenant, product, page))
            .await
    }

    async fn provider_event(&self, tenant: TenantId, event_id: &str) -> Result<Option<String>> {
        let event_id = event_id.to_string();
        self.point_read(move |conn| orders::provider_event(conn, tenant, &event_id))
            .await
    }

    async fn record_provider_event(
        &self,
        tenant: TenantId,
        event_id: &str,
        order: OrderId,
        outcome: &str,
    ) -> Result<()> {
        let (event_id, outcome) = (event_id.to_string(), outcome.to_string());
        self.queue
            .write(move |conn| {
                orders::record_provider_event(conn, tenant, &event_id, order, &outcome)
            })
            .await
    }

    async fn idempotent_response(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<([u8; 32], crate::StoredResponse)>> {
        let key = key.to_string();
        self.point_read(move |conn| orders::idempotent_response(conn, tenant, &key))
            .await
    }

    async fn insert_promotion(&self, tenant: TenantId, p: Promotion) -> Result<()> {
        self.queue
            .write(move |conn| promotions::insert(conn, &p, tenant))
            .await
    }

    async fn update_promotion(&self, tenant: TenantId, p: Promotion) -> Result<()> {
        self.queue
            .write(move |conn| promotions::update(conn, &p, tenant))
            .await
    }

    async fn promotion(&self, tenant: TenantId, id: PromotionId) -> Result<Option<Promotion>> {
        self.point_read(move |conn| promotions::get(conn, tenant, id))
            .await
    }

    async fn promotions(
        &self,
        tenant: TenantId,
        after: Option<PromotionId>,
        limit: u32,
    ) -> Result<Vec<Promotion>> {
        self.point_read(move |conn| promotions::list(conn, tenant, after, limit))
            .await
    }

    async fn delete_promotion(&self, tenant: TenantId, id: PromotionId) -> Result<bool> {
        self.queue
            .write(move |conn| promotions::delete(conn, tenant, id))
            .await
    }

    async fn promotions_for(&self, tenant: TenantId, codes: &[Code]) -> Result<Vec<Promotion>> {
        let codes = codes.to_vec();
        self.point_read(move |conn| promotions::for_cart(conn, tenant, &codes))
            .await
    }

    async fn promotion_uses(
        &self,
        tenant: TenantId,
        buyer: &str,
        ids: &[PromotionId],
    ) -> Result<BTreeMap<PromotionId, u32>> {
        let (buyer, ids) = (buyer.to_string(), ids.to_vec());
        self.point_read(move |conn| promotions::uses_by(conn, tenant, &buyer, &ids))
            .await
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        channel: &str,
    ) -> Result<Option<serde_json::Value>> {
        let channel = channel.to_string();
        self.point_read(move |conn| tenants::conversation(conn, tenant, &channel))
            .await
    }

    async fn save_conversation(
        &self,
        tenant: TenantId,
        channel: &str,
        state: Option<serde_json::Value>,
    ) -> Result<()> {
        let channel = channel.to_string();
        self.queue
            .write(move |conn| tenants::save_conversation(conn, tenant, &channel, state.as_ref()))
            .await
    }

    async fn schedule_job(&self, job: NewJob) -> Result<bool> {
        self.queue
            .write(move |conn| jobs::schedule(conn, &job))
            .await
    }

    async fn insert_import(&self, import: Import) -> Result<()> {
        self.queue
            .write(move |conn| imports::insert(conn, &import))
            .await
    }

    async fn import(&self, tenant: TenantId, id: ImportId) -> Result<Option<Import>> {
        self.point_read(move |conn| imports::get(conn, tenant, id))
            .await
    }

    async fn imports(
        &self,
        tenant: TenantId,
        before: Option<ImportId>,
        limit: u32,
    ) -> Result<Vec<Import>> {
        self.read(move |conn| imports::list(conn, tenant, before, limit))
            .await
    }

    async fn claim_import(&self, claim: ImportClaim) -> Result<Option<ClaimedImport>> {
        self.queue
            .write(move |conn| imports::claim(conn, &claim))
            .await
    }

    async fn save_import(
        &self,
        claimed: &ClaimedImport,
        errors: Vec<ImportError>,
        until: Timestamp,
    ) -> Result<bool> {
        let claimed = claimed.clone();
        self.queue
            .write(move |conn| imports::save(conn, &claimed, &errors, until))
            .await
    }

    async fn import_errors(
        &self,
        tenant: TenantId,
        id: ImportId,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<ImportError>> {
        self.read(move |conn| imports::errors(conn, tenant, id, from_seq, limit))
            .await
    }

    async fn claim_jobs(&self, claim: JobClaim) -> Result<Vec<Job>> {
        self.queue
            .write(move |conn| jobs::claim(conn, &claim))
            .await
    }

    async fn finish_job(&self, job: &Job, outcome: JobOutcome) -> Result<bool> {
        let job = job.clone();
        self.queue
            .write(move |conn| jobs::finish(conn, &job, &outcome))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database migrated up to (not including) migration `upto`.
    fn migrated_before(upto: usize) -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;",
        )
        .expect("table");
        for (version, name, sql) in &MIGRATIONS[..upto - 1] {
            conn.execute_batch(sql).expect("migration");
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![version, name],
            )
            .expect("record");
        }
        conn
    }

    #[test]
    fn delivery_jobs_become_columns_of_their_deliveries() {
        let mut conn = migrated_before(7);
        for (id, status) in [
            ("whd_1", "pending"),
            ("whd_2", "failed"),
            ("whd_3", "succeeded"),
            ("whd_4", "dead"),
        ] {
            conn.execute(
                "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, order_id, event_sequence,
                                                 feed_seq, event_type, status, created_at, updated_at)
                 VALUES ('ten_a', ?1, 'whe_1', 'evt_1', 'ord_1', 1, 1, 'order.created', ?2, 100, 200)",
                rusqlite::params![id, status],
            )
            .expect("delivery");
        }
        // whd_1 is claimed by a node, whd_2 waits for its retry, whd_4's
        // job is dead; a job of another kind stays.
        conn.execute_batch(
            "INSERT INTO jobs (tenant_id, key, kind, payload, run_at, created_at, attempts, claimed_by, claim, claimed_until)
             VALUES ('ten_a', 'whd_1', 'webhook.deliver', '{}', 150, 100, 0, 'n1', 'c1', 999),
                    ('ten_a', 'whd_2', 'webhook.deliver', '{}', 5000, 120, 3, NULL, NULL, NULL),
                    ('', 'prune-idempotency-keys', 'prune-idempotency-keys', '{}', 0, 0, 0, NULL, NULL, NULL);
             INSERT INTO jobs (tenant_id, key, kind, payload, run_at, created_at, status)
             VALUES ('ten_a', 'whd_4', 'webhook.deliver', '{}', 0, 100, 'dead');",
        )
        .expect("jobs");
        assert_eq!(
            migrate(&mut conn).expect("migrate")[0],
            "0007_delivery_jobs"
        );
        type Row = (String, Option<i64>, i64, i64, Option<String>, Option<i64>);
        let rows: Vec<Row> = conn
            .prepare("SELECT id, run_at, retrying_since, failures, claim, claimed_until FROM webhook_deliveries ORDER BY id")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(
            rows,
            [
                (
                    "whd_1".into(),
                    Some(150),
                    100,
                    0,
                    Some("c1".into()),
                    Some(999)
                ),
                ("whd_2".into(), Some(5000), 120, 3, None, None),
                ("whd_3".into(), None, 100, 0, None, None),
                ("whd_4".into(), None, 100, 0, None, None),
            ]
        );
        let left: Vec<String> = conn
            .prepare("SELECT key FROM jobs")
            .expect("select")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(left, ["prune-idempotency-keys"]);
    }

    #[test]
    fn events_written_before_the_feed_enter_it_in_time_order() {
        let mut conn = migrated_before(4);
        // Three events of two tenants, inserted out of time order.
        for (tenant, order, id) in [
            ("ten_b", "ord_2", "evt_03"),
            ("ten_a", "ord_1", "evt_01"),
            ("ten_a", "ord_3", "evt_02"),
        ] {
            conn.execute(
                "INSERT INTO order_events (tenant_id, order_id, sequence, id, type, actor, at, data)
                 VALUES (?1, ?2, 1, ?3, 'order.created', '{}', 0, '{}')",
                rusqlite::params![tenant, order, id],
            )
            .expect("event");
        }
        let applied = migrate(&mut conn).expect("migrate");
        assert_eq!(applied.first().map(String::as_str), Some("0004_feed"));
        let positions: Vec<(String, i64)> = conn
            .prepare("SELECT id, feed_seq FROM order_events ORDER BY feed_seq")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(
            positions,
            [
                ("evt_01".into(), 1),
                ("evt_02".into(), 2),
                ("evt_03".into(), 3)
            ]
        );
        let counter: i64 = conn
            .query_row("SELECT value FROM counters WHERE name = 'feed'", [], |r| {
                r.get(0)
            })
            .expect("counter");
        assert_eq!(counter, 3);
    }
}
