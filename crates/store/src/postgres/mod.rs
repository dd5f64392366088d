//! The shared store: PostgreSQL, for many ordo nodes on one database.
//!
//! Nodes keep nothing that another node must see: every write is one
//! transaction, uniqueness is claimed in the database, and each change
//! locks the order row it changes. What a node does keep is a block of each
//! tenant's order numbers (see `numbers`).

mod feed;
mod imports;
mod jobs;
mod orders;
mod products;
mod promotions;
mod staff;
mod tenants;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::collections::BTreeMap;

use ordo_domain::pricing::{Code, Promotion};
use ordo_domain::{
    Actor, ApiKeyId, EventDraft, Namespace, Order, OrderEvent, OrderId, OrderReference, Product,
    ProductId, SecretHash, Sku, StockMovement, TenantId, Timestamp, WebhookDeliveryId,
    WebhookEndpoint, WebhookEndpointId,
};
use ordo_domain::{ImportId, PromotionId};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::numbers::Numbers;
use crate::{
    AdminSession, ApiKey, Changed, ClaimedImport, DeliveryAttempt, DeliveryQuery, DeliveryStatus,
    FeedEvent, FeedQuery, FinishedDelivery, Import, ImportClaim, ImportError, Inserted, Job,
    JobClaim, JobOutcome, NewApiKey, NewJob, NewOrderRecord, NewUser, OrderChange, OrderFilter,
    OrderLookup, OrderQuery, Outgoing, Overview, ProductChange, ProductQuery, Put, RenderedOrder,
    Renderer, Result, Scope, Store, StoreError, Tenant, User, UserChange, WebhookDelivery,
};
use orders::Insert;

/// A pooled connection.
type Db = deadpool_postgres::Object;

const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_core",
        include_str!("../../migrations/postgres/0001_core.sql"),
    ),
    (
        2,
        "0002_jobs",
        include_str!("../../migrations/postgres/0002_jobs.sql"),
    ),
    (
        3,
        "0003_claims",
        include_str!("../../migrations/postgres/0003_claims.sql"),
    ),
    (
        4,
        "0004_feed",
        include_str!("../../migrations/postgres/0004_feed.sql"),
    ),
    (
        5,
        "0005_webhooks",
        include_str!("../../migrations/postgres/0005_webhooks.sql"),
    ),
    (
        6,
        "0006_deliveries",
        include_str!("../../migrations/postgres/0006_deliveries.sql"),
    ),
    (
        7,
        "0007_delivery_jobs",
        include_str!("../../migrations/postgres/0007_delivery_jobs.sql"),
    ),
    (
        8,
        "0008_products",
        include_str!("../../migrations/postgres/0008_products.sql"),
    ),
    (
        9,
        "0009_tenant_settings",
        include_str!("../../migrations/postgres/0009_tenant_settings.sql"),
    ),
    (
        10,
        "0010_reservation_expiry",
        include_str!("../../migrations/postgres/0010_reservation_expiry.sql"),
    ),
    (
        11,
        "0011_payment_transactions",
        include_str!("../../migrations/postgres/0011_payment_transactions.sql"),
    ),
    (
        12,
        "0012_provider_events",
        include_str!("../../migrations/postgres/0012_provider_events.sql"),
    ),
    (
        13,
        "0013_fulfilment",
        include_str!("../../migrations/postgres/0013_fulfilment.sql"),
    ),
    (
        14,
        "0014_conversations",
        include_str!("../../migrations/postgres/0014_conversations.sql"),
    ),
    (
        15,
        "0015_pricing",
        include_str!("../../migrations/postgres/0015_pricing.sql"),
    ),
    (
        16,
        "0016_imports",
        include_str!("../../migrations/postgres/0016_imports.sql"),
    ),
    (
        17,
        "0017_bulk_lane",
        include_str!("../../migrations/postgres/0017_bulk_lane.sql"),
    ),
    (
        18,
        "0018_staff",
        include_str!("../../migrations/postgres/0018_staff.sql"),
    ),
];

/// Taken by `migrate` for its transaction, so nodes starting together apply
/// each migration once. ("ordo" in ASCII.)
const MIGRATION_LOCK: i64 = 0x6f72_646f;

/// How the shared database is used.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections this node keeps open (and the most statements it runs at
    /// once). Summed over nodes, it must stay under the server's
    /// `max_connections`.
    pub pool_size: usize,
    /// Order numbers a node takes from a tenant's counter at a time (every
    /// create waiting for a number waits for that commit, so not too few).
    pub order_number_block: u32,
    /// How long a request waits for a free connection before it fails.
    pub wait_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 32,
            order_number_block: 1024,
            wait_timeout: Duration::from_secs(10),
        }
    }
}

/// ordo's shared store.
pub struct PostgresStore {
    pool: Pool,
    renderer: Renderer,
    numbers: Numbers,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A database error as the store reports it; the server's own message, if
/// it sent one, rather than tokio-postgres's "db error".
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if db.code() == &SqlState::UNIQUE_VIOLATION => StoreError::Conflict {
            field: db.constraint().unwrap_or("unique").to_string(),
            value: db.detail().unwrap_or_default().to_string(),
        },
        Some(db) => StoreError::Unavailable(format!("{}: {}", db.code().code(), db.message())),
        None => {
            // "error connecting to server" alone does not say why: add the causes.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            StoreError::Unavailable(text)
        }
    }
}

/// The URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // The key=value form: hide the value of `password`.
        return url
            .split(' ')
            .map(|kv| match kv.split_once('=') {
                Some(("password", _)) => "password=***",
                _ => kv,
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Applies the migrations not yet applied, all in one transaction under an
/// advisory lock: a node starting beside another waits, then finds them done.
async fn migrate(db: &mut Db) -> Result<Vec<String>> {
    let tx = db.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     integer PRIMARY KEY,
             name        text    NOT NULL,
             applied_at  bigint  NOT NULL
         )",
    )
    .await
    .map_err(db_error)?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await
            .map_err(db_error)?
            .is_some();
        if done {
            continue;
        }
        tx.batch_execute(sql).await.map_err(db_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[version, name, &Timestamp::now().unix_millis()],
        )
        .await
        .map_err(db_error)?;
        applied.push((*name).to_string());
    }
    tx.commit().await.map_err(db_error)?;
    Ok(applied)
}

/// The most attempts at a write that lost a race (a key or identifier
/// claimed by another node between our look and our insert).
const RACE_ATTEMPTS: usize = 3;

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`)
    /// and applies pending migrations. Returns the store and the migrations
    /// applied.
    pub async fn open(
        url: &str,
        options: PostgresOptions,
        renderer: Renderer,
    ) -> Result<(PostgresStore, Vec<String>)> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| unavailable(format!("{}: {e}", redact(url))))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(unavailable)?;
        let store = PostgresStore {
            pool,
            renderer,
            numbers: Numbers::new(options.order_number_block),
        };
        let mut db = store.db().await?;
        let applied = migrate(&mut db).await?;
        Ok((store, applied))
    }

    async fn db(&self) -> Result<Db> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => db_error(e),
            other => unavailable(other),
        })
    }

    /// Takes a block of the tenant's order numbers: past the highest
    /// handed out and past any order already stored (an import may have
    /// added some). Returns the last number of the block.
    async fn take_block(&self, tenant: TenantId, block: u32) -> Result<u64> {
        let db = self.db().await?;
        let stmt = db
            .prepare_cached(
                "UPDATE tenants SET order_numbers_taken = GREATEST(order_numbers_taken,
                     (SELECT COALESCE(MAX(reference_seq), 0) FROM orders WHERE tenant_id = $1)) + $2
                 WHERE id = $1 RETURNING order_numbers_taken",
            )
            .await
            .map_err(db_error)?;
        let row = db
            .query_opt(&stmt, &[&tenant.to_string(), &i64::from(block)])
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound)?;
        u64::try_from(row.get::<_, i64>(0)).map_err(corrupt)
    }

    async fn insert_once(&self, record: &NewOrderRecord, api: &[u8]) -> Result<Option<Inserted>> {
        let mut db = self.db().await?;
        // An order that reserves stock locks its products first, so it
        // takes a transaction; the rest go in one statement.
        let outcome = if record.order.reserved.is_empty()
            && !record.notify
            && crate::promotions::limited(&record.order).next().is_none()
        {
            orders::insert_statement(&db, record, api, self.renderer).await?
        } else {
            let tx = db.transaction().await.map_err(db_error)?;
            let outcome = orders::insert(&tx, record, api, self.renderer).await?;
            if matches!(outcome, Insert::Done) {
                tx.commit().await.map_err(db_error)?;
            }
            outcome
        };
        match outcome {
            Insert::Done => Ok(Some(Inserted::Created(Box::new(record.order.clone())))),
            Insert::KeyTaken => orders::idempotency_key(&db, record).await,
            Insert::Raced => Ok(None),
            Insert::ExternalIdTaken(namespace, value) => {
                let scope = Scope::tenant(record.order.tenant_id);
                let lookup = OrderLookup::External(namespace.clone(), value.clone());
                Ok(orders::find(&db, &scope, &lookup).await?.map(|existing| {
                    Inserted::ExternalIdTaken {
                        namespace,
                        value,
                        existing: Box::new(existing),
                    }
                }))
            }
        }
    }

    /// One attempt at a create-or-update; `None` when another node created
    /// the order between our look and our insert.
    async fn put_once(
        &self,
        scope: &Scope,
        key: &(Namespace, String),
        record: &NewOrderRecord,
        api: &[u8],
        change: &mut Option<OrderChange>,
    ) -> Result<Option<Put>> {
        let mut db = self.db().await?;
        let tx = db.transaction().await.map_err(db_error)?;
        let lookup = OrderLookup::External(key.0.clone(), key.1.clone());
        let tenant = Scope::tenant(scope.tenant_id);
        let Some(existing) = orders::find_for_update(&tx, &tenant, &lookup).await? else {
            return match orders::insert(&tx, record, api, self.renderer).await? {
                Insert::Done => {
                    tx.commit().await.map_err(db_error)?;
                    Ok(Some(Put::Created(Box::new(record.order.clone()))))
                }
                Insert::ExternalIdTaken(ns, value) if ns == key.0 && value == key.1 => {
                    tx.rollback().await.map_err(db_error)?;
                    Ok(None)
                }
                Insert::ExternalIdTaken(ns, value) => Err(StoreError::Conflict {
                    field: format!("external_ids.{ns}"),
                    value,
                }),
                Insert::KeyTaken => Err(corrupt("idempotency without a key")),
                Insert::Raced => Ok(None),
            };
        };
        if !scope.allows(&existing) {
            // Another creator's order: the identifier is taken, and nothing more is said.
            return Err(StoreError::Conflict {
                field: format!("external_ids.{}", key.0),
                value: key.1.clone(),
            });
        }
        let change = change
            .take()
            .ok_or_else(|| corrupt("a change was applied twice"))?;
        let changed =
            orders::apply_change(&tx, existing, &record.actor, change, self.renderer).await?;
        if changed.event.is_none() {
            return Ok(Some(Put::Unchanged(Box::new(changed.order))));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(Some(Put::Updated(Box::new(changed.order))))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<()> {
        let db = self.db().await?;
        db.simple_query("SELECT 1").await.map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close();
    }

    async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant> {
        tenants::create_tenant(&self.db().await?, slug, name).await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        tenants::tenants(&self.db().await?).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        tenants::tenant_by_slug(&self.db().await?, slug).await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        tenants::tenant_by_id(&self.db().await?, id).await
    }

    async fn tenant_settings(&self, tenant: TenantId) -> Result<crate::TenantSettings> {
        tenants::settings(&self.db().await?, tenant).await
    }

    async fn save_tenant_settings(
        &self,
        tenant: TenantId,
        settings: crate::TenantSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(&settings).map_err(corrupt)?;
        tenants::save_settings(&self.db().await?, tenant, &json).await
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        staff::create_user(&self.db().await?, &user).await
    }

    async fn users(&self, tenant: TenantId) -> Result<Vec<User>> {
        staff::users(&self.db().await?, tenant).await
    }

    async fn user_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<(User, String)>> {
        staff::user_by_email(&self.db().await?, tenant, email).await
    }

    async fn change_user(&self, tenant: TenantId, email: &str, change: UserChange) -> Result<User> {
        staff::change_user(&self.db().await?, tenant, email, &change).await
    }

    async fn create_session(&self, session: AdminSession) -> Result<()> {
        staff::create_session(&self.db().await?, &session).await
    }

    async fn admin_session(
        &self,
        tenant: TenantId,
        hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<(AdminSession, Tenant)>> {
        staff::admin_session(&self.db().await?, tenant, hash, now).await
    }

    async fn touch_session(
        &self,
        tenant: TenantId,
        hash: SecretHash,
        seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        staff::touch_session(&self.db().await?, tenant, hash, seen_at, expires_at).await
    }

    async fn delete_session(&self, tenant: TenantId, hash: SecretHash) -> Result<()> {
        staff::delete_session(&self.db().await?, tenant, hash).await
    }

    async fn tenant_secret(&self, tenant: TenantId, name: &str) -> Result<Vec<u8>> {
        staff::tenant_secret(&self.db().await?, tenant, name).await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        tenants::create_api_key(&self.db().await?, &key).await
    }

    async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>> {
        tenants::api_keys(&self.db().await?, tenant).await
    }

    async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId) -> Result<ApiKey> {
        tenants::revoke_api_key(&self.db().await?, tenant, id).await
    }

    async fn api_key_by_secret(
        &self,
        tenant: TenantId,
        hash: SecretHash,
    ) -> Result<Option<ApiKey>> {
        tenants::api_key_by_secret(&self.db().await?, tenant, hash).await
    }

    async fn next_reference(&self, tenant: TenantId) -> Result<OrderReference> {
        self.numbers
            .next(tenant, |block| self.take_block(tenant, block))
            .await
    }

    async fn insert_order(&self, record: NewOrderRecord) -> Result<Inserted> {
        let mut record = record;
        let api = record
            .rendered
            .take()
            .unwrap_or_else(|| (self.renderer.render)(&record.order));
        let tenant = record.order.tenant_id;
        for _ in 0..RACE_ATTEMPTS {
            let result = self.insert_once(&record, &api).await;
            self.numbers.forget_on_conflict(tenant, &result).await;
            // `None`: what we collided with is gone again (a key pruned, an
            // order's identifier changed); try afresh.
            if let Some(inserted) = result? {
                return Ok(inserted);
            }
        }
        Err(unavailable(
            "the order kept colliding with concurrent writes",
        ))
    }

    async fn put_order(
        &self,
        scope: Scope,
        key: (Namespace, String),
        record: NewOrderRecord,
        change: OrderChange,
    ) -> Result<Put> {
        let mut record = record;
        record.idempotency = None;
        let api = record
            .rendered
            .take()
            .unwrap_or_else(|| (self.renderer.render)(&record.order));
        let tenant = record.order.tenant_id;
        let mut change = Some(change);
        for _ in 0..RACE_ATTEMPTS {
            let result = self
                .put_once(&scope, &key, &record, &api, &mut change)
                .await;
            self.numbers.forget_on_conflict(tenant, &result).await;
            if let Some(put) = result? {
                return Ok(put);
            }
        }
        Err(unavailable(
            "the order kept colliding with concurrent writes",
        ))
    }

    async fn order(&self, scope: &Scope, lookup: &OrderLookup) -> Result<Option<Order>> {
        orders::find(&self.db().await?, scope, lookup).await
    }

    async fn rendered_order(
        &self,
        scope: &Scope,
        lookup: &OrderLookup,
    ) -> Result<Option<RenderedOrder>> {
        orders::find_rendered(&self.db().await?, scope, lookup, self.renderer).await
    }

    async fn rendered_orders(
        &self,
        scope: &Scope,
        query: &OrderQuery,
    ) -> Result<Vec<RenderedOrder>> {
        orders::list_rendered(&self.db().await?, scope, query, self.renderer).await
    }

    async fn count_orders(&self, scope: &Scope, filter: &OrderFilter) -> Result<u64> {
        orders::count(&self.db().await?, scope, filter).await
    }

    async fn overview(&self, scope: &Scope, since: Option<Timestamp>) -> Result<Overview> {
        orders::overview(&self.db().await?, scope, since).await
    }

    async fn change_order(
        &self,
        scope: Scope,
        lookup: OrderLookup,
        expected_version: Option<u64>,
        actor: Actor,
        change: OrderChange,
    ) -> Result<Changed> {
        let mut db = self.db().await?;
        let tx = db.transaction().await.map_err(db_error)?;
        let order = orders::find_for_update(&tx, &scope, &lookup)
            .await?
            .filter(|o| scope.allows(o))
            .ok_or(StoreError::NotFound)?;
        if let Some(expected) = expected_version {
            if order.version != expected {
                return Err(StoreError::VersionMismatch {
                    expected,
                    current: order.version,
                });
            }
        }
        let changed = orders::apply_change(&tx, order, &actor, change, self.renderer).await?;
        if changed.event.is_some() {
            tx.commit().await.map_err(db_error)?;
        }
        Ok(changed)
    }

    async fn lapsed_reservations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(TenantId, OrderId)>> {
        orders::lapsed_reservations(&self.db().await?, now, limit).await
    }

    async fn order_events(&self, scope: &Scope, id: OrderId) -> Result<Vec<OrderEvent>> {
        orders::events(&self.db().await?, scope, id).await
    }

    async fn append_events(
        &self,
        scope: Scope,
        id: OrderId,
        actor: Actor,
        at: Timestamp,
        events: Vec<EventDraft>,
    ) -> Result<Vec<OrderEvent>> {
        let mut db = self.db().await?;
        let tx = db.transaction().await.map_err(db_error)?;
        let appended = orders::append_events(&tx, &scope, id, &actor, at, events).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(appended)
    }

    async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        orders::prune_idempotency_keys(&self.db().await?, before).await
    }

    async fn sequence_events(&self, limit: u32) -> Result<u64> {
        feed::sequence(&mut self.db().await?, limit).await
    }

    async fn feed(&self, scope: &Scope, query: &FeedQuery) -> Result<Vec<FeedEvent>> {
        feed::page(&self.db().await?, scope, query).await
    }

    async fn save_webhook_endpoint(&self, endpoint: WebhookEndpoint, new: bool) -> Result<()> {
        webhooks::save(&mut self.db().await?, &endpoint, new).await
    }

    async fn webhook_endpoints(&self, tenant: TenantId) -> Result<Vec<WebhookEndpoint>> {
        webhooks::list(&self.db().await?, tenant, None).await
    }

    async fn webhook_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>> {
        Ok(webhooks::list(&self.db().await?, tenant, Some(id))
            .await?
            .pop())
    }

    async fn delete_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> Result<bool> {
        webhooks::delete(&self.db().await?, tenant, id).await
    }

    async fn fan_out_events(&self, limit: u32) -> Result<u64> {
        webhooks::fan_out(&mut self.db().await?, limit, Timestamp::now()).await
    }

    async fn webhook_deliveries(
        &self,
        tenant: TenantId,
        query: &DeliveryQuery,
    ) -> Result<Vec<WebhookDelivery>> {
        webhooks::deliveries(&self.db().await?, tenant, query, None).await
    }

    async fn delivery_attempts(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
    ) -> Result<Vec<(u32, DeliveryAttempt)>> {
        webhooks::attempts(&self.db().await?, tenant, id).await
    }

    async fn retry_delivery(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
        now: Timestamp,
    ) -> Result<Option<WebhookDelivery>> {
        webhooks::retry(&mut self.db().await?, tenant, id, now).await
    }

    async fn webhook_delivery(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
    ) -> Result<Option<WebhookDelivery>> {
        Ok(webhooks::deliveries(
            &self.db().await?,
            tenant,
            &DeliveryQuery::default(),
            Some(id),
        )
        .await?
        .pop())
    }

    async fn endpoint_succeeded_since(
        &self,
        tenant: TenantId,
        endpoint: WebhookEndpointId,
        since: Timestamp,
    ) -> Result<bool> {
        webhooks::succeeded_since(&self.db().await?, tenant, endpoint, since).await
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
        webhooks::retry_many(
            &mut self.db().await?,
            tenant,
            endpoint,
            &statuses,
            from,
            to,
            now,
        )
        .await
    }

    async fn delivery_backlog(&self) -> Result<(u64, Option<Timestamp>)> {
        webhooks::backlog(&self.db().await?).await
    }

    async fn claim_deliveries(&self, claim: JobClaim) -> Result<Vec<Outgoing>> {
        webhooks::claim(&self.db().await?, &claim).await
    }

    async fn finish_deliveries(&self, finished: Vec<FinishedDelivery>) -> Result<Vec<bool>> {
        webhooks::finish(&self.db().await?, &finished).await
    }

    async fn insert_product(
        &self,
        product: Product,
        movement: Option<StockMovement>,
    ) -> Result<()> {
        products::insert(&mut self.db().await?, &product, movement.as_ref()).await
    }

    async fn product(&self, tenant: TenantId, sku: &Sku) -> Result<Option<Product>> {
        products::get(&self.db().await?, tenant, sku).await
    }

    async fn products_by_sku(&self, tenant: TenantId, skus: &[Sku]) -> Result<Vec<Product>> {
        products::by_sku(&self.db().await?, tenant, skus).await
    }

    async fn products(&self, tenant: TenantId, query: &ProductQuery) -> Result<Vec<Product>> {
        products::list(&self.db().await?, tenant, query).await
    }

    async fn change_product(
        &self,
        tenant: TenantId,
        sku: Sku,
        expected_version: Option<u64>,
        change: ProductChange,
    ) -> Result<(Product, Option<StockMovement>)> {
        products::change(
            &mut self.db().await?,
            tenant,
            &sku,
            expected_version,
            change,
        )
        .await
    }

    async fn stock_ledger(&self, tenant: TenantId) -> Result<Vec<crate::StockLedger>> {
        products::ledger(&mut self.db().await?, tenant).await
    }

    async fn stock_movements(
        &self,
        tenant: TenantId,
        product: ProductId,
        page: crate::MovementPage,
    ) -> Result<Vec<StockMovement>> {
        products::movements(&self.db().await?, tenant, product, page).await
    }

    async fn provider_event(&self, tenant: TenantId, event_id: &str) -> Result<Option<String>> {
        orders::provider_event(&self.db().await?, tenant, event_id).await
    }

    async fn record_provider_event(
        &self,
        tenant: TenantId,
        event_id: &str,
        order: OrderId,
        outcome: &str,
    ) -> Result<()> {
        orders::record_provider_event(&self.db().await?, tenant, event_id, order, outcome).await
    }

    async fn idempotent_response(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<([u8; 32], crate::StoredResponse)>> {
        orders::idempotent_response(&self.db().await?, tenant, key).await
    }

    async fn insert_promotion(&self, tenant: TenantId, p: Promotion) -> Result<()> {
        promotions::insert(&self.db().await?, &p, tenant).await
    }

    async fn update_promotion(&self, tenant: TenantId, p: Promotion) -> Result<()> {
        promotions::update(&self.db().await?, &p, tenant).await
    }

    async fn promotion(&self, tenant: TenantId, id: PromotionId) -> Result<Option<Promotion>> {
        promotions::get(&self.db().await?, tenant, id).await
    }

    async fn promotions(
        &self,
        tenant: TenantId,
        after: Option<PromotionId>,
        limit: u32,
    ) -> Result<Vec<Promotion>> {
        promotions::list(&self.db().await?, tenant, after, limit).await
    }

    async fn delete_promotion(&self, tenant: TenantId, id: PromotionId) -> Result<bool> {
        promotions::delete(&self.db().await?, tenant, id).await
    }

    async fn promotions_for(&self, tenant: TenantId, codes: &[Code]) -> Result<Vec<Promotion>> {
        promotions::for_cart(&self.db().await?, tenant, codes).await
    }

    async fn promotion_uses(
        &self,
        tenant: TenantId,
        buyer: &str,
        ids: &[PromotionId],
    ) -> Result<BTreeMap<PromotionId, u32>> {
        promotions::uses_by(&self.db().await?, tenant, buyer, ids).await
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        channel: &str,
    ) -> Result<Option<serde_json::Value>> {
        tenants::conversation(&self.db().await?, tenant, channel).await
    }

    async fn save_conversation(
        &self,
        tenant: TenantId,
        channel: &str,
        state: Option<serde_json::Value>,
    ) -> Result<()> {
        tenants::save_conversation(&self.db().await?, tenant, channel, state.as_ref()).await
    }

    async fn schedule_job(&self, job: NewJob) -> Result<bool> {
        jobs::schedule(&self.db().await?, &job).await
    }

    async fn insert_import(&self, import: Import) -> Result<()> {
        imports::insert(&self.db().await?, &import).await
    }

    async fn import(&self, tenant: TenantId, id: ImportId) -> Result<Option<Import>> {
        imports::get(&self.db().await?, tenant, id).await
    }

    async fn imports(
        &self,
        tenant: TenantId,
        before: Option<ImportId>,
        limit: u32,
    ) -> Result<Vec<Import>> {
        imports::list(&self.db().await?, tenant, before, limit).await
    }

    async fn claim_import(&self, claim: ImportClaim) -> Result<Option<ClaimedImport>> {
        imports::claim(&self.db().await?, &claim).await
    }

    async fn save_import(
        &self,
        claimed: &ClaimedImport,
        errors: Vec<ImportError>,
        until: Timestamp,
    ) -> Result<bool> {
        imports::save(&mut self.db().await?, claimed, &errors, until).await
    }

    async fn import_errors(
        &self,
        tenant: TenantId,
        id: ImportId,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<ImportError>> {
        imports::errors(&self.db().await?, tenant, id, from_seq, limit).await
    }

    async fn claim_jobs(&self, claim: JobClaim) -> Result<Vec<Job>> {
        jobs::claim(&self.db().await?, &claim).await
    }

    async fn finish_job(&self, job: &Job, outcome: JobOutcome) -> Result<bool> {
        jobs::finish(&self.db().await?, job, &outcome).await
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            redact("postgres://ordo:s3cret@db.internal:5432/ordo"),
            "postgres://ordo:***@db.internal:5432/ordo"
        );
        assert_eq!(
            redact("postgres://ordo@localhost/ordo"),
            "postgres://ordo@localhost/ordo"
        );
        assert_eq!(
            redact("host=localhost password=s3cret user=ordo"),
            "host=localhost password=*** user=ordo"
        );
    }
}
