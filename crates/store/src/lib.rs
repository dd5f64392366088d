//! Where orders live.
//!
//! [`Store`] is the one interface the rest of ordo uses; it speaks of
//! tenants, keys and orders, never of SQL. Each database has one
//! implementation ([`sqlite::SqliteStore`] is the embedded default). Database
//! facts are mapped to [`StoreError`] here, once: a missing row is
//! `NotFound`, a unique violation is a `Conflict` naming the field, a stale
//! version is `VersionMismatch` with the current version.
//!
//! Business rules stay in the domain: a change to an order is a closure
//! that the store runs on the current order inside its write transaction,
//! and the timeline event it returns is written in that same transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use ordo_domain::pricing::{Code, Promotion};
use ordo_domain::{
    Actor, ApiKeyId, Channel, ChannelId, Email, EventDraft, EventId, EventType, FulfillmentStatus,
    ImportId, Namespace, Order, OrderEvent, OrderId, OrderReference, OrderStatus, PaymentId,
    PaymentStatus, PhoneE164, Product, ProductId, PromotionId, Refusal, Role, SecretHash,
    ShipmentId, Sku, Stage, StockBook, StockMovement, StockMovementId, TenantId, TenantSettings,
    Timestamp, UserId, WebhookDeliveryId, WebhookEndpoint, WebhookEndpointId,
};

pub use catalog::{ProductChange, ProductQuery, StockLedger};
pub use imports::{
    ClaimedImport, Import, ImportClaim, ImportCounts, ImportError, ImportFailure, ImportFormat,
    ImportKind, ImportOptions, ImportState, OnError, MAX_IMPORT_ERRORS,
};

pub mod catalog;
pub mod fanout;
mod imports;
mod numbers;
pub mod postgres;
mod promotions;
mod query;
pub mod sqlite;
pub mod transfer;

/// A business using ordo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
}

impl Tenant {
    /// What a slug may be: 1 to 50 lower-case letters, digits and `-`, not
    /// starting with `-` (it names the tenant in URLs and commands).
    pub const SLUG_ACCEPTED: &'static str = "1 to 50 lower-case letters, digits and '-'";

    pub fn is_valid_slug(slug: &str) -> bool {
        (1..=50).contains(&slug.len())
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !slug.starts_with('-')
    }
}

/// An API key as stored: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    /// The first and last characters of the key, to recognise it in a list.
    pub hint: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A key to create, with the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    pub hint: String,
    pub secret_hash: SecretHash,
}

/// A person who signs in to the admin pages, with a role as a key has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    /// Lower-case; one user per address in a tenant.
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

/// A user to create, with the hash of their password (a PHC string).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub tenant_id: TenantId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

/// What to change of a user; `None` keeps it.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    /// `Some(true)` disables the user and ends their sessions.
    pub disabled: Option<bool>,
}

/// A signed-in browser: found by the hash of its cookie, within its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    pub tenant_id: TenantId,
    pub token_hash: SecretHash,
    pub user: User,
    /// The token every form of the session carries (CSRF).
    pub csrf: String,
    pub created_at: Timestamp,
    pub seen_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Which orders a request may touch: always one tenant, and for a vendor
/// only the orders it created. An order outside the scope does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub tenant_id: TenantId,
    /// When set, only orders whose creator has this id.
    pub creator: Option<String>,
}

impl Scope {
    pub fn tenant(tenant_id: TenantId) -> Self {
        Scope {
            tenant_id,
            creator: None,
        }
    }

    pub fn allows(&self, order: &Order) -> bool {
        order.tenant_id == self.tenant_id
            && self
                .creator
                .as_ref()
                .is_none_or(|c| *c == order.created_by.id)
    }
}

/// How an order is named in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderLookup {
    Id(OrderId),
    Reference(OrderReference),
    External(Namespace, String),
    /// The order a shipment belongs to.
    Shipment(ShipmentId),
}

/// A page of a product's stock movements: oldest first after `after`, or
/// newest first before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MovementPage {
    pub after: Option<StockMovementId>,
    pub limit: u32,
    pub newest_first: bool,
}

/// What the admin dashboard shows: orders by stage, and orders and their
/// totals a day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    pub stages: Vec<(Stage, u64)>,
    pub days: Vec<DaySales>,
}

/// The orders created on one UTC day in one currency, cancelled ones aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySales {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub currency: String,
    pub orders: u64,
    /// The sum of their totals, in minor units.
    pub total: i64,
}

/// Filters for listing and counting orders. Empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub status: Vec<OrderStatus>,
    pub payment_status: Vec<PaymentStatus>,
    pub fulfillment_status: Vec<FulfillmentStatus>,
    pub stage: Vec<Stage>,
    pub channel: Vec<Channel>,
    pub buyer_phone: Option<PhoneE164>,
    pub buyer_email: Option<Email>,
    pub buyer_channel_id: Option<ChannelId>,
    /// Free text: a reference, a phone number, or part of the buyer's name.
    pub q: Option<String>,
    pub created_gte: Option<Timestamp>,
    pub created_lt: Option<Timestamp>,
    pub external_id: Option<(Namespace, String)>,
    pub created_by: Option<String>,
    pub batch_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: SortField::CreatedAt,
            descending: true,
        }
    }
}

/// Where a page ends: the sort value and id of its last order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub value: i64,
    pub id: OrderId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    pub filter: OrderFilter,
    pub sort: Sort,
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// A response kept for an idempotency key, replayed for a repeat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub order_id: OrderId,
}

/// An idempotency key claimed by a create request, with the fingerprint
/// of the request and the response to replay.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub key: String,
    pub fingerprint: [u8; 32],
    pub response: StoredResponse,
    pub at: Timestamp,
}

/// A new order, its `order.created` event, and how to make it idempotent.
#[derive(Debug, Clone)]
pub struct NewOrderRecord {
    pub order: Order,
    pub event: EventDraft,
    pub actor: Actor,
    /// Whether the shop reaches its buyers: the event's message to the
    /// buyer is then scheduled with it ([`message_jobs`]).
    pub notify: bool,
    pub idempotency: Option<IdempotencyClaim>,
    /// The order as the API shows it, when the caller has it already
    /// (otherwise the store's [`Renderer`] makes it).
    pub rendered: Option<Vec<u8>>,
}

/// How the API shows an order. The store keeps that rendering beside each
/// order, written in the same statement as the order itself, so reads and
/// lists serve it without decoding and re-rendering. Rows rendered by an
/// older `version` are rendered afresh when read.
#[derive(Clone, Copy)]
pub struct Renderer {
    pub version: u32,
    pub render: fn(&Order) -> Vec<u8>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Renderer(v{})", self.version)
    }
}

/// An order as the API shows it, with what a response needs beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedOrder {
    pub id: OrderId,
    pub version: u64,
    pub updated_at: Timestamp,
    pub total: i64,
    /// The JSON of the order.
    pub json: Vec<u8>,
}

impl RenderedOrder {
    pub fn cursor(&self, field: SortField) -> Cursor {
        let value = match field {
            SortField::CreatedAt => self.id.timestamp().unix_millis(),
            SortField::UpdatedAt => self.updated_at.unix_millis(),
            SortField::Total => self.total,
        };
        Cursor { value, id: self.id }
    }
}

/// What an attempt to insert an order came to.
#[derive(Debug, Clone)]
pub enum Inserted {
    Created(Box<Order>),
    /// The idempotency key was used before with the same request.
    Replayed(StoredResponse),
    /// The idempotency key was used before with a different request.
    KeyReused {
        key: String,
    },
    /// An external identifier already names an order of the tenant.
    ExternalIdTaken {
        namespace: Namespace,
        value: String,
        existing: Box<Order>,
    },
}

/// The work of an [`OrderChange`]: it changes the order (moving stock
/// through the book) and returns the timeline event, or `None` for no change.
pub type ApplyChange =
    Box<dyn FnOnce(&mut Order, &mut StockBook) -> Result<Option<EventDraft>, Refusal> + Send>;

/// A change to one order, run inside the store's write transaction on the
/// current order, with the products of the order's stock (and of `skus`)
/// read in the same transaction; PostgreSQL locks them in SKU order.
pub struct OrderChange {
    /// SKUs beyond the order's own whose products the change may move
    /// (those of the lines an edit brings in).
    pub skus: Vec<Sku>,
    pub apply: ApplyChange,
    /// Completes the order, in the same transaction, when the change
    /// leaves it paid in full and fully delivered (the tenant's
    /// `auto_complete`).
    pub complete_when_done: bool,
    /// Whether the shop reaches its buyers: the messages of the change's
    /// events are then scheduled with them ([`message_jobs`]).
    pub notify: bool,
}

impl OrderChange {
    pub fn new(
        apply: impl FnOnce(&mut Order, &mut StockBook) -> Result<Option<EventDraft>, Refusal>
            + Send
            + 'static,
    ) -> Self {
        OrderChange {
            skus: Vec::new(),
            apply: Box::new(apply),
            complete_when_done: false,
            notify: false,
        }
    }

    /// Schedules the buyer's messages of its events, if `yes`.
    pub fn notifying(mut self, yes: bool) -> Self {
        self.notify = yes;
        self
    }

    /// Completes the order when the change leaves it done, if `yes`.
    pub fn completing(mut self, yes: bool) -> Self {
        self.complete_when_done = yes;
        self
    }

    pub fn with_skus(mut self, skus: Vec<Sku>) -> Self {
        self.skus = skus;
        self
    }

    /// Every SKU whose product the change may move, in order.
    pub(crate) fn stock_skus(&self, order: &Order) -> Vec<Sku> {
        let mut skus = order.stock_skus();
        skus.extend(self.skus.iter().cloned());
        skus.into_iter().collect()
    }
}

/// Reserves, on `products` as read in the insert's transaction, what a new
/// order holds; returns the products changed and their movements.
pub(crate) fn reserve_new(
    order: &Order,
    products: Vec<Product>,
    actor: &Actor,
) -> Result<(Vec<Product>, Vec<StockMovement>)> {
    let mut book = StockBook::new(products, actor.clone(), Timestamp::now());
    book.reserve_new(order)?;
    Ok(book.into_changes())
}

/// What a change did: its events (the change's own, then those of the
/// other parts it moved, then any completion it led to), and the products
/// it changed with their stock movements.
pub(crate) type ChangeDone = (Vec<EventDraft>, Vec<Product>, Vec<StockMovement>);

/// Runs `change` on the order inside a store's write, with `products` the
/// store read for it; a change that would move the order to another id or
/// tenant, or move stock without changing the order, is refused as corrupt.
/// Returns the event, the products it changed and their movements.
pub(crate) fn run_change(
    order: &mut Order,
    change: OrderChange,
    products: Vec<Product>,
    actor: &Actor,
) -> Result<Option<ChangeDone>> {
    let (id, tenant) = (order.id, order.tenant_id);
    let now = Timestamp::now();
    let mut book = StockBook::new(products, actor.clone(), now);
    let before = order.before_change();
    let draft = (change.apply)(order, &mut book)?;
    if order.id != id || order.tenant_id != tenant {
        return Err(StoreError::Corrupt(
            "a change tried to move an order".into(),
        ));
    }
    match draft {
        Some(draft) => {
            let aftermath = order.aftermath(&before, &draft, now);
            let mut drafts = vec![draft];
            drafts.extend(aftermath);
            if change.complete_when_done {
                if let Some(done) = order.complete_if_done(now) {
                    order.sync_stock(&mut book)?;
                    drafts.push(done);
                }
            }
            let (products, movements) = book.into_changes();
            Ok(Some((drafts, products, movements)))
        }
        None if book.is_empty() => Ok(None),
        None => Err(StoreError::Corrupt(
            "a change moved stock without changing the order".into(),
        )),
    }
}

/// The shipments a change added: those after the first `before` (an
/// order's shipments are only ever appended), for the stores' index of
/// shipment ids.
pub(crate) fn new_shipments(order: &Order, before: usize) -> Vec<ShipmentId> {
    order.shipments.iter().skip(before).map(|s| s.id).collect()
}

/// The transaction ids of the payments a change recorded: those after the
/// first `before` (a ledger only ever appends).
pub(crate) fn new_transactions(order: &Order, before: usize) -> Vec<(&str, PaymentId)> {
    order
        .ledger
        .payments
        .iter()
        .skip(before)
        .filter_map(|p| Some((p.transaction_id.as_deref()?, p.id)))
        .collect()
}

/// Sends a buyer the message of an order event.
pub const MESSAGE_JOB: &str = "message";

/// The jobs that send `order`'s buyer the messages of `events` (those of
/// a kind that tells the buyer something), each keyed by its event so it
/// is scheduled once. Scheduled in the transaction that writes the events:
/// no event that tells the buyer something is without its job.
pub(crate) fn message_jobs(order: &Order, events: &[OrderEvent]) -> Vec<NewJob> {
    events
        .iter()
        .filter(|e| ordo_domain::messaging::MessageKind::of(e.event_type).is_some())
        .map(|e| NewJob {
            tenant_id: Some(order.tenant_id),
            key: format!("{MESSAGE_JOB}:{}", e.id),
            kind: MESSAGE_JOB.into(),
            payload: serde_json::json!({ "order_id": order.id, "event_id": e.id }),
            run_at: Timestamp::now(),
        })
        .collect()
}

/// Charges a card payment through the tenant's payment provider.
pub const CHARGE_JOB: &str = "charge";
/// Pays a refund back through the tenant's payment provider.
pub const REFUND_JOB: &str = "refund";

/// The provider work a change put under way: a job for each pending entry
/// the provider moves that the change added (after the first
/// `payments_before` payments and `refunds_before` refunds; a ledger only
/// ever appends). The stores schedule them in the change's transaction, so
/// no such entry is ever without the job that moves it.
pub(crate) fn provider_jobs(
    order: &Order,
    payments_before: usize,
    refunds_before: usize,
) -> Vec<NewJob> {
    let job = |kind: &str, id: String| NewJob {
        tenant_id: Some(order.tenant_id),
        key: format!("{kind}:{id}"),
        kind: kind.into(),
        payload: serde_json::json!({ "order_id": order.id, "entry_id": id }),
        run_at: Timestamp::now(),
    };
    let pending = |state: &ordo_domain::EntryState, provider: bool| {
        provider && *state == ordo_domain::EntryState::Pending
    };
    let charges = order.ledger.payments.iter().skip(payments_before);
    let refunds = order.ledger.refunds.iter().skip(refunds_before);
    charges
        .filter(|p| pending(&p.state, p.provider.is_some()))
        .map(|p| job(CHARGE_JOB, p.id.to_string()))
        .chain(
            refunds
                .filter(|r| pending(&r.state, r.provider.is_some()))
                .map(|r| job(REFUND_JOB, r.id.to_string())),
        )
        .collect()
}

/// The tenant, order and entry a job of [`provider_jobs`] moves money for.
pub fn provider_work_of(job: &Job) -> Option<(TenantId, OrderId, ordo_domain::Entry)> {
    let order = OrderId::parse(job.payload.get("order_id")?.as_str()?)?;
    let entry = job.payload.get("entry_id")?.as_str()?;
    let entry = match job.kind.as_str() {
        CHARGE_JOB => ordo_domain::Entry::Payment(PaymentId::parse(entry)?),
        REFUND_JOB => ordo_domain::Entry::Refund(ordo_domain::RefundId::parse(entry)?),
        _ => return None,
    };
    Some((job.tenant_id?, order, entry))
}

/// What a change came to.
#[derive(Debug, Clone)]
pub struct Changed {
    pub order: Order,
    pub event: Option<OrderEvent>,
}

/// What a create-or-update by external identifier came to.
#[derive(Debug, Clone)]
pub enum Put {
    Created(Box<Order>),
    Updated(Box<Order>),
    Unchanged(Box<Order>),
}

/// A page of the event feed: events in the order they entered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedQuery {
    /// Only events after this feed position (0: from the start).
    pub after: u64,
    /// Only these types (empty: all).
    pub types: Vec<EventType>,
    /// Only the events of this order.
    pub order_id: Option<OrderId>,
    pub limit: u32,
}

/// An event as the feed carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// Its place in the tenant's feed: increasing, handed out after commit.
    pub position: u64,
    pub event: OrderEvent,
    /// The order as the API showed it right after the event.
    pub order: Vec<u8>,
}

pub use ordo_domain::DeliveryStatus;

/// One event on its way to one webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub tenant_id: TenantId,
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    pub order_id: OrderId,
    /// The event's sequence on its order.
    pub event_sequence: u64,
    /// The event's feed position.
    pub position: u64,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

/// Which deliveries to list. Absent filters match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    pub endpoint_id: Option<WebhookEndpointId>,
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<EventType>,
    pub order_id: Option<OrderId>,
    /// Only deliveries after this one (a page's last).
    pub after: Option<WebhookDeliveryId>,
    pub limit: Option<u32>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong, if it did.
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// The delivery a claimed delivery's job is for.
pub fn delivery_of(job: &Job) -> Option<(TenantId, WebhookDeliveryId)> {
    Some((job.tenant_id?, WebhookDeliveryId::parse(&job.key)?))
}

/// A claimed delivery, with what it sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The claim, as a job of kind [`fanout::DELIVER_WEBHOOK`] keyed by the
    /// delivery's id: `created_at` is when its maximum age started (it was
    /// made, or retried by hand), `attempts` its failures since.
    pub job: Job,
    pub delivery: WebhookDelivery,
    /// The event as the feed shows it; `None` if it is no longer stored.
    pub event: Option<FeedEvent>,
}

/// An attempt at a claimed delivery, and how its claim ends.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedDelivery {
    pub job: Job,
    pub outcome: JobOutcome,
    pub attempt: DeliveryAttempt,
    pub status: DeliveryStatus,
}

/// Background work to do at `run_at`, by whichever process claims it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// `None` for work of the whole installation.
    pub tenant_id: Option<TenantId>,
    /// Unique in the tenant: scheduling a key that exists does nothing.
    pub key: String,
    /// Which handler runs it.
    pub kind: String,
    pub payload: serde_json::Value,
    pub run_at: Timestamp,
}

/// A job claimed by this process until `claimed_until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub tenant_id: Option<TenantId>,
    pub key: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// When it was first scheduled.
    pub created_at: Timestamp,
    /// Failed attempts so far.
    pub attempts: u32,
    /// This claim's token: finishing the job is only possible with it, so a
    /// process whose lease ran out cannot finish work another one took over.
    pub claim: String,
    pub claimed_until: Timestamp,
}

/// How a claimed job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Done; the job is removed.
    Done,
    /// Done for now; run it again at this time (periodic work).
    Again(Timestamp),
    /// Failed; try again at this time.
    Retry { at: Timestamp, error: String },
    /// Failed for good: kept, never claimed again.
    Dead { error: String },
}

/// What to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaim {
    /// The process claiming, for operators reading the table.
    pub node: String,
    pub kinds: Vec<String>,
    pub limit: u32,
    /// How long the claim holds before another process may take the job.
    pub lease_ms: i64,
    pub now: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("version {expected} is stale: the current version is {current}")]
    VersionMismatch { expected: u64, current: u64 },
    #[error("{field} {value:?} is already taken")]
    Conflict { field: String, value: String },
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A change to stock the domain refused.
    #[error(transparent)]
    Stock(#[from] ordo_domain::StockError),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything ordo keeps, in the language of orders.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Fails unless the database answers.
    async fn ping(&self) -> Result<()>;
    /// Finishes queued writes and stops background threads.
    async fn close(&self);

    async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant>;
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>>;
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>>;
    /// The tenant's settings (defaults for whatever was never set);
    /// `NotFound` if there is no such tenant.
    async fn tenant_settings(&self, tenant: TenantId) -> Result<TenantSettings>;

    /// Adds a promotion; a code another of the tenant's promotions has is
    /// a `Conflict` on `code`.
    async fn insert_promotion(&self, tenant: TenantId, p: Promotion) -> Result<()>;
    /// Replaces a promotion's definition (never its uses): `NotFound`
    /// when there is none, `Conflict` on `code`.
    async fn update_promotion(&self, tenant: TenantId, p: Promotion) -> Result<()>;
    async fn promotion(&self, tenant: TenantId, id: PromotionId) -> Result<Option<Promotion>>;
    /// The tenant's promotions by id, after `after`.
    async fn promotions(
        &self,
        tenant: TenantId,
        after: Option<PromotionId>,
        limit: u32,
    ) -> Result<Vec<Promotion>>;
    /// Whether there was one to delete (orders that used it keep it as they applied it).
    async fn delete_promotion(&self, tenant: TenantId, id: PromotionId) -> Result<bool>;
    /// What may apply to a cart: the tenant's active automatic promotions
    /// and those with these codes (active or not, to say why not).
    async fn promotions_for(&self, tenant: TenantId, codes: &[Code]) -> Result<Vec<Promotion>>;
    /// How many orders of `buyer` (see [`ordo_domain::pricing::buyer_key`]) used each of `ids`.
    async fn promotion_uses(
        &self,
        tenant: TenantId,
        buyer: &str,
        ids: &[PromotionId],
    ) -> Result<BTreeMap<PromotionId, u32>>;
    async fn save_tenant_settings(&self, tenant: TenantId, settings: TenantSettings) -> Result<()>;

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>>;
    async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId) -> Result<ApiKey>;
    /// Adds a user; `Conflict` on `email` if the tenant has one with the
    /// address, `NotFound` if there is no such tenant.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    async fn users(&self, tenant: TenantId) -> Result<Vec<User>>;
    /// The user with `email` (lower-case) and their password hash,
    /// disabled or not.
    async fn user_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<(User, String)>>;
    /// Changes a user (`NotFound` if none); disabling one ends their
    /// sessions, as does a new password.
    async fn change_user(&self, tenant: TenantId, email: &str, change: UserChange) -> Result<User>;
    /// Starts a session (and forgets the tenant's expired ones).
    async fn create_session(&self, session: AdminSession) -> Result<()>;
    /// The session with this cookie hash, if it has not expired at `now`
    /// and its user is not disabled, with its tenant (read in the same
    /// query: every admin page needs both).
    async fn admin_session(
        &self,
        tenant: TenantId,
        hash: SecretHash,
        now: Timestamp,
    ) -> Result<Option<(AdminSession, Tenant)>>;
    /// Records that the session was used at `seen_at`, now expiring at
    /// `expires_at`.
    async fn touch_session(
        &self,
        tenant: TenantId,
        hash: SecretHash,
        seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;
    async fn delete_session(&self, tenant: TenantId, hash: SecretHash) -> Result<()>;
    /// The tenant's random key called `name`, made (32 bytes) the first
    /// time it is asked for; every node gets the same one.
    async fn tenant_secret(&self, tenant: TenantId, name: &str) -> Result<Vec<u8>>;

    /// The live (not revoked) key with this secret, if any.
    async fn api_key_by_secret(&self, tenant: TenantId, hash: SecretHash)
        -> Result<Option<ApiKey>>;

    /// The reference for the tenant's next order. References are never
    /// reused; one taken but not used leaves a gap.
    async fn next_reference(&self, tenant: TenantId) -> Result<OrderReference>;
    /// Inserts a new order with its first event, honouring its idempotency
    /// key and the uniqueness of its reference and external identifiers.
    async fn insert_order(&self, record: NewOrderRecord) -> Result<Inserted>;
    /// Creates the order named by an external identifier, or applies
    /// `change` to the order that already has it.
    async fn put_order(
        &self,
        scope: Scope,
        key: (Namespace, String),
        record: NewOrderRecord,
        change: OrderChange,
    ) -> Result<Put>;
    async fn order(&self, scope: &Scope, lookup: &OrderLookup) -> Result<Option<Order>>;
    /// The order as the API shows it.
    async fn rendered_order(
        &self,
        scope: &Scope,
        lookup: &OrderLookup,
    ) -> Result<Option<RenderedOrder>>;
    /// A page of orders as the API shows them.
    async fn rendered_orders(
        &self,
        scope: &Scope,
        query: &OrderQuery,
    ) -> Result<Vec<RenderedOrder>>;
    async fn count_orders(&self, scope: &Scope, filter: &OrderFilter) -> Result<u64>;
    /// The scope's orders by stage, and by day since `since` if given (see
    /// [`Overview`]).
    async fn overview(&self, scope: &Scope, since: Option<Timestamp>) -> Result<Overview>;
    /// Applies `change` to the current order; with `expected_version`, only
    /// if the order is still at that version.
    async fn change_order(
        &self,
        scope: Scope,
        lookup: OrderLookup,
        expected_version: Option<u64>,
        actor: Actor,
        change: OrderChange,
    ) -> Result<Changed>;
    async fn order_events(&self, scope: &Scope, id: OrderId) -> Result<Vec<OrderEvent>>;
    /// Appends `events` to order `id`'s timeline (and the feed) at `at`,
    /// leaving the order itself as it is (its version too): what happened
    /// around it, such as a message sent to its buyer. `NotFound` when the
    /// scope has no such order.
    async fn append_events(
        &self,
        scope: Scope,
        id: OrderId,
        actor: Actor,
        at: Timestamp,
        events: Vec<EventDraft>,
    ) -> Result<Vec<OrderEvent>>;
    /// Up to `limit` pending orders, of any tenant, whose stock
    /// reservation lapsed at or before `now`.
    async fn lapsed_reservations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(TenantId, OrderId)>>;
    /// The fingerprint and response kept for an idempotency key, if any
    /// (a retried request, looked up before it is done again).
    async fn idempotent_response(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<Option<([u8; 32], StoredResponse)>>;
    /// Forgets idempotency keys first used before `before`.
    async fn prune_idempotency_keys(&self, before: Timestamp) -> Result<u64>;

    /// Puts committed events that are not in the feed yet into it (up to
    /// `limit`, oldest first) and returns how many entered the feed: where
    /// positions are handed out after commit (PostgreSQL), only one node
    /// does this at a time and the others get 0; where they are handed out
    /// as events are written (SQLite), it returns how many entered the feed
    /// since the last call.
    async fn sequence_events(&self, limit: u32) -> Result<u64>;
    /// A page of the tenant's event feed.
    async fn feed(&self, scope: &Scope, query: &FeedQuery) -> Result<Vec<FeedEvent>>;

    /// Stores a webhook endpoint: a new one (`new`), or the whole of an
    /// existing one (`NotFound` if it is gone).
    async fn save_webhook_endpoint(&self, endpoint: WebhookEndpoint, new: bool) -> Result<()>;
    /// The tenant's webhook endpoints, oldest first.
    async fn webhook_endpoints(&self, tenant: TenantId) -> Result<Vec<WebhookEndpoint>>;
    async fn webhook_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>>;
    /// `false` if there was no such endpoint.
    async fn delete_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> Result<bool>;

    /// Turns events that entered the feed into deliveries, with their jobs,
    /// for the webhook endpoints that want them (up to `limit` events of
    /// each tenant per call); returns how many deliveries it made. One
    /// process at a time does this; the others get 0.
    async fn fan_out_events(&self, limit: u32) -> Result<u64>;
    /// The tenant's deliveries that match, oldest first.
    async fn webhook_deliveries(
        &self,
        tenant: TenantId,
        query: &DeliveryQuery,
    ) -> Result<Vec<WebhookDelivery>>;
    /// A delivery's attempts, first first, numbered from 1.
    async fn delivery_attempts(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
    ) -> Result<Vec<(u32, DeliveryAttempt)>>;
    /// Sends a delivery again as soon as a worker can (a fresh maximum
    /// age); `None` if there is no such delivery.
    async fn retry_delivery(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
        now: Timestamp,
    ) -> Result<Option<WebhookDelivery>>;

    async fn webhook_delivery(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
    ) -> Result<Option<WebhookDelivery>>;
    /// Whether any delivery to the endpoint succeeded at or after `since`.
    async fn endpoint_succeeded_since(
        &self,
        tenant: TenantId,
        endpoint: WebhookEndpointId,
        since: Timestamp,
    ) -> Result<bool>;

    /// Sends the endpoint's deliveries in `statuses` made in `[from, to)`
    /// again now (each with a fresh maximum age); returns how many.
    async fn retry_deliveries(
        &self,
        tenant: TenantId,
        endpoint: WebhookEndpointId,
        statuses: Vec<DeliveryStatus>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64>;
    /// Deliveries still to be sent (of every tenant) and when the oldest
    /// was made.
    async fn delivery_backlog(&self) -> Result<(u64, Option<Timestamp>)>;

    /// Claims up to `limit` due deliveries that no live claim holds, as
    /// [`Store::claim_jobs`] claims jobs (`kinds` is not used), each with
    /// the event it sends.
    async fn claim_deliveries(&self, claim: JobClaim) -> Result<Vec<Outgoing>>;
    /// Records attempts at claimed deliveries and when each is tried next
    /// (never, once it succeeded or died), all in one write; for each,
    /// `false` if its claim had run out (the attempt is recorded all the
    /// same: it happened; the rest is the new claimant's).
    async fn finish_deliveries(&self, finished: Vec<FinishedDelivery>) -> Result<Vec<bool>>;

    /// Adds a product with the movement of its first units, if any; a SKU
    /// the tenant already uses is a `Conflict` on `sku`.
    async fn insert_product(&self, product: Product, movement: Option<StockMovement>)
        -> Result<()>;
    async fn product(&self, tenant: TenantId, sku: &Sku) -> Result<Option<Product>>;
    /// The products of these SKUs that exist (in no particular order).
    async fn products_by_sku(&self, tenant: TenantId, skus: &[Sku]) -> Result<Vec<Product>>;
    /// A page of the tenant's products, by SKU.
    async fn products(&self, tenant: TenantId, query: &ProductQuery) -> Result<Vec<Product>>;
    /// Runs `change` on the current product inside a write and stores what
    /// it did (nothing if its version did not move) with its stock
    /// movement; with `expected_version`, only if the product is still at
    /// that version.
    async fn change_product(
        &self,
        tenant: TenantId,
        sku: Sku,
        expected_version: Option<u64>,
        change: ProductChange,
    ) -> Result<(Product, Option<StockMovement>)>;
    /// Every product's stock three ways (counters, what orders hold, what
    /// movements add up to), by SKU, read in one snapshot.
    async fn stock_ledger(&self, tenant: TenantId) -> Result<Vec<StockLedger>>;
    /// A product's stock movements, oldest first, after `after`.
    async fn stock_movements(
        &self,
        tenant: TenantId,
        product: ProductId,
        page: MovementPage,
    ) -> Result<Vec<StockMovement>>;

    /// How the provider webhook `event_id` of the tenant was handled, if it
    /// was.
    async fn provider_event(&self, tenant: TenantId, event_id: &str) -> Result<Option<String>>;
    /// Remembers that the provider webhook `event_id` was handled, and how
    /// (the first record stands).
    async fn record_provider_event(
        &self,
        tenant: TenantId,
        event_id: &str,
        order: OrderId,
        outcome: &str,
    ) -> Result<()>;

    /// Schedules a job; `false` if one with its key is already scheduled.
    async fn schedule_job(&self, job: NewJob) -> Result<bool>;
    /// What the chatbot waits on from the buyer at `channel` (as it saved
    /// it), if anything.
    async fn conversation(
        &self,
        tenant: TenantId,
        channel: &str,
    ) -> Result<Option<serde_json::Value>>;
    /// Saves what the chatbot waits on from the buyer at `channel`, or
    /// forgets it (`None`).
    async fn save_conversation(
        &self,
        tenant: TenantId,
        channel: &str,
        state: Option<serde_json::Value>,
    ) -> Result<()>;
    async fn insert_import(&self, import: Import) -> Result<()>;
    async fn import(&self, tenant: TenantId, id: ImportId) -> Result<Option<Import>>;
    /// A tenant's imports, newest first, after the one given.
    async fn imports(
        &self,
        tenant: TenantId,
        before: Option<ImportId>,
        limit: u32,
    ) -> Result<Vec<Import>>;
    /// Claims the oldest import waiting to run, or running with a lapsed
    /// claim (its node died), until `now + lease_ms`.
    async fn claim_import(&self, claim: ImportClaim) -> Result<Option<ClaimedImport>>;
    /// Saves an import's progress with the problems found since the last
    /// save, in one transaction, and holds its claim until `until` (a
    /// finished import lets it go). False when the claim was lost: another
    /// node runs the import now, and nothing was saved.
    async fn save_import(
        &self,
        claimed: &ClaimedImport,
        errors: Vec<ImportError>,
        until: Timestamp,
    ) -> Result<bool>;
    /// An import's problems in order, from `from_seq`.
    async fn import_errors(
        &self,
        tenant: TenantId,
        id: ImportId,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<ImportError>>;

    /// Claims up to `limit` due jobs that no live claim holds: each job is
    /// claimed by one process at a time, and claimed again once a claim's
    /// lease has run out (its process died or hung).
    async fn claim_jobs(&self, claim: JobClaim) -> Result<Vec<Job>>;
    /// Ends a claim; `false` if the claim was lost (its lease ran out and
    /// another process claimed the job), in which case nothing changes.
    async fn finish_job(&self, job: &Job, outcome: JobOutcome) -> Result<bool>;
}

/// How a job's tenant is stored: `''` for the whole installation.
pub(crate) fn job_tenant(tenant: Option<TenantId>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

pub(crate) fn parse_job_tenant(stored: &str) -> Result<Option<TenantId>> {
    if stored.is_empty() {
        return Ok(None);
    }
    stored
        .parse()
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("job tenant {stored:?}: {e}")))
}

pub type DynStore = Arc<dyn Store>;
