//! Order use cases: each decides what one request does, over the domain and
//! the store, and where its transaction is (one store call, one transaction).

use ordo_domain::{
    Actor, EventDraft, Namespace, NewOrder, Order, OrderDraft, Reconcile, Refusal,
    ReservationPolicy, Sku, StockBook, TenantId, TenantSettings, Timestamp,
};
use ordo_store::{
    Changed, IdempotencyClaim, Inserted, NewOrderRecord, OrderChange, OrderLookup, Put, Scope,
    Store, StoreError, StoredResponse,
};

use crate::api::auth::Principal;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::catalog::Catalog;

/// How many references to try when one is already taken (only when another
/// process added orders to the same database since the numbers were read).
const REFERENCE_ATTEMPTS: usize = 5;

/// An idempotency key and the fingerprint of the request that carried it.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: [u8; 32],
}

/// Who creates an order: an API key, or a storefront guest.
#[derive(Debug, Clone)]
pub struct Author {
    pub tenant_id: TenantId,
    pub actor: Actor,
    /// The orders the author may see (an existing order with the same
    /// external identifiers is shown only if it is in scope).
    pub scope: Scope,
    /// The import writing the order: the batch id of the orders it
    /// creates and changes.
    pub batch: Option<String>,
}

impl Author {
    /// A guest buying through the tenant's storefront.
    pub fn buyer(tenant_id: TenantId, id: impl Into<String>) -> Author {
        Author {
            tenant_id,
            actor: Actor::buyer(id),
            scope: Scope::tenant(tenant_id),
            batch: None,
        }
    }
}

impl From<&Principal> for Author {
    fn from(p: &Principal) -> Author {
        Author {
            tenant_id: p.tenant_id,
            actor: p.actor(),
            scope: p.scope(),
            batch: None,
        }
    }
}

/// A new order that reserves its stock from the start (the `on_create`
/// policy): until when, and its products as read before its transaction.
#[derive(Debug, Clone)]
pub struct Hold {
    pub until: Timestamp,
    pub products: Vec<ordo_domain::Product>,
}

impl Hold {
    /// How a new order holds its stock under the tenant's policy: only
    /// under `on_create`, for `reservation_minutes` from now.
    pub fn under(settings: &TenantSettings, catalog: &Catalog) -> Option<Hold> {
        (settings.reservation_policy == ReservationPolicy::OnCreate).then(|| Hold {
            until: Timestamp::now().plus_millis(i64::from(settings.reservation_minutes) * 60_000),
            products: catalog.products(),
        })
    }
}

/// How the tenant's settings take a new order in: whether it holds its
/// stock from the start, and whether its buyer is told.
#[derive(Debug, Clone)]
pub struct Terms {
    pub hold: Option<Hold>,
    pub notify: bool,
}

impl Terms {
    pub fn of(settings: &TenantSettings, catalog: &Catalog) -> Terms {
        Terms {
            hold: Hold::under(settings, catalog),
            notify: settings.messaging.reaches_buyers(),
        }
    }
}

/// A new order from `draft`, with the tenant's next reference, ready to
/// insert; holding its stock when the terms say so (the store reserves it
/// on the products as they are in the insert's transaction).
async fn new_record(
    store: &dyn Store,
    author: &Author,
    draft: &OrderDraft,
    now: Timestamp,
    terms: &Terms,
) -> Result<NewOrderRecord, ApiError> {
    let hold = terms.hold.as_ref();
    let reference = store.next_reference(author.tenant_id).await?;
    let (mut order, event) = Order::create(
        draft.clone(),
        NewOrder {
            tenant_id: author.tenant_id,
            reference,
            created_by: author.actor.clone(),
            now,
        },
    )?;
    order.batch_id.clone_from(&author.batch);
    if let Some(hold) = hold {
        let mut book = StockBook::new(hold.products.clone(), author.actor.clone(), now);
        order.hold_stock(Some(hold.until), &mut book)?;
        // Nothing to hold (no tracked catalog lines): nothing to let lapse.
        if order.reserved.is_empty() {
            order.holds_stock = false;
            order.reserved_until = None;
        }
    }
    Ok(NewOrderRecord {
        order,
        event,
        actor: author.actor.clone(),
        notify: terms.notify,
        idempotency: None,
        rendered: None,
    })
}

/// What a create request came to.
#[derive(Debug)]
pub enum Created {
    /// A new order; `body` is the response, as stored for replays.
    New { order: Box<Order>, body: Vec<u8> },
    /// The idempotency key was seen before: the first response, again.
    Replayed(StoredResponse),
    /// An order with the same external identifier and the same content
    /// exists: creating it again is a no-op.
    Existing(Box<Order>),
}

/// How a new order is rendered: `order` for the order's stored rendering
/// (what `GET` serves), `reply` for the create's answer when it is not the
/// order itself (the storefront's checkout). The answer is what an
/// idempotent retry replays.
#[derive(Clone, Copy)]
pub struct Rendering<'a> {
    pub order: &'a Render<'a>,
    pub reply: Option<&'a Render<'a>>,
}

/// Turns an order into a response body.
pub type Render<'a> = dyn Fn(&Order) -> Vec<u8> + Sync + 'a;

#[tracing::instrument(skip_all, fields(order.id, buyer = %draft.buyer.masked()))]
pub async fn create(
    store: &dyn Store,
    author: &Author,
    draft: OrderDraft,
    idempotency: Option<Idempotency>,
    terms: Terms,
    rendering: Rendering<'_>,
) -> Result<Created, ApiError> {
    for _ in 0..REFERENCE_ATTEMPTS {
        let now = Timestamp::now();
        let mut record = new_record(store, author, &draft, now, &terms).await?;
        let rendered = (rendering.order)(&record.order);
        let body = match rendering.reply {
            Some(reply) => reply(&record.order),
            None => rendered.clone(),
        };
        record.idempotency = idempotency.as_ref().map(|i| IdempotencyClaim {
            key: i.key.clone(),
            fingerprint: i.fingerprint,
            response: StoredResponse {
                status: 201,
                body: body.clone(),
                order_id: record.order.id,
            },
            at: now,
        });
        record.rendered = Some(rendered);
        match store.insert_order(record).await {
            Ok(Inserted::Created(order)) => {
                tracing::Span::current().record("order.id", tracing::field::display(order.id));
                metrics::counter!("ordo_orders_created_total").increment(1);
                tracing::debug!(reference = %order.reference, total = order.total, "order created");
                return Ok(Created::New { order, body });
            }
            Ok(Inserted::Replayed(response)) => return Ok(Created::Replayed(response)),
            Ok(Inserted::KeyReused { key }) => return Err(ApiError::IdempotencyKeyReused(key)),
            Ok(Inserted::ExternalIdTaken {
                namespace,
                value,
                existing,
            }) => {
                let visible = author.scope.allows(&existing);
                if visible && matches!(existing.reconcile(draft), Ok(Reconcile::Unchanged)) {
                    return Ok(Created::Existing(existing));
                }
                return Err(external_id_taken(
                    &namespace,
                    &value,
                    visible.then_some(&*existing),
                ));
            }
            Err(StoreError::Conflict { field, .. }) if field == "reference" => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(
        "could not find a free order reference".into(),
    ))
}

fn external_id_taken(namespace: &Namespace, value: &str, existing: Option<&Order>) -> ApiError {
    ApiError::Conflict {
        detail: match existing {
            Some(o) => format!(
                "external id {namespace}={value} already belongs to order {} with different content; use PUT /v1/orders/external/{namespace}/{value} to update it",
                o.id
            ),
            None => format!("external id {namespace}={value} is already used"),
        },
        errors: vec![ordo_domain::FieldError::new(format!("external_ids.{namespace}"), "already used by another order").value(value)],
        existing_order_id: existing.map(|o| o.id.to_string()),
    }
}

/// What a retried create is, looked up before it is done again: the
/// response its idempotency key keeps (a different request under the key
/// is a 409), or the order its external identifiers already name with the
/// same content; `None` when it is not a retry.
pub async fn replay(
    store: &dyn Store,
    author: &Author,
    draft: &OrderDraft,
    idempotency: Option<&Idempotency>,
) -> Result<Option<Created>, ApiError> {
    if let Some(i) = idempotency {
        if let Some((fingerprint, stored)) =
            store.idempotent_response(author.tenant_id, &i.key).await?
        {
            if fingerprint != i.fingerprint {
                return Err(ApiError::IdempotencyKeyReused(i.key.clone()));
            }
            return Ok(Some(Created::Replayed(stored)));
        }
    }
    for (ns, value) in &draft.external_ids {
        let lookup = OrderLookup::External(ns.clone(), value.clone());
        if let Some(existing) = store.order(&author.scope, &lookup).await? {
            if matches!(existing.reconcile(draft.clone()), Ok(Reconcile::Unchanged)) {
                return Ok(Some(Created::Existing(Box::new(existing))));
            }
        }
    }
    Ok(None)
}

/// [`replay`] for a PUT by external identifier: the order `key` names,
/// when the draft would leave it unchanged.
pub async fn put_replay(
    store: &dyn Store,
    author: &Author,
    key: &(Namespace, String),
    draft: &OrderDraft,
) -> Result<Option<Put>, ApiError> {
    let lookup = OrderLookup::External(key.0.clone(), key.1.clone());
    Ok(store
        .order(&author.scope, &lookup)
        .await?
        .filter(|o| matches!(o.reconcile(draft.clone()), Ok(Reconcile::Unchanged)))
        .map(|o| Put::Unchanged(Box::new(o))))
}

/// Creates the order named by `(namespace, value)`, or brings the existing
/// one in line with `draft` (seed 003's idempotent PUT).
#[tracing::instrument(skip_all, fields(namespace = %key.0, buyer = %draft.buyer.masked()))]
pub async fn put(
    store: &dyn Store,
    author: &Author,
    key: (Namespace, String),
    draft: OrderDraft,
    terms: Terms,
) -> Result<Put, ApiError> {
    for _ in 0..REFERENCE_ATTEMPTS {
        let now = Timestamp::now();
        let record = new_record(store, author, &draft, now, &terms).await?;
        let wanted = draft.clone();
        let batch = author.batch.clone();
        let change = OrderChange::new(move |existing: &mut Order, book: &mut StockBook| {
            match existing.reconcile(wanted)? {
                Reconcile::Unchanged => Ok(None),
                Reconcile::Edit(patch) => {
                    let event = existing.edit(*patch, now)?;
                    if batch.is_some() {
                        existing.batch_id.clone_from(&batch);
                    }
                    existing.sync_stock(book)?;
                    Ok(event)
                }
            }
        })
        .with_skus(ordo_domain::order::catalog_skus(&draft.lines))
        .notifying(terms.notify);
        match store
            .put_order(author.scope.clone(), key.clone(), record, change)
            .await
        {
            Ok(put) => {
                if matches!(put, Put::Created(_)) {
                    metrics::counter!("ordo_orders_created_total").increment(1);
                }
                return Ok(put);
            }
            Err(StoreError::Conflict { field, .. }) if field == "reference" => continue,
            Err(StoreError::Conflict { field, value }) if field.starts_with("external_ids.") => {
                let ns = Namespace::parse(&field["external_ids.".len()..])
                    .map_err(|_| ApiError::Internal(field.clone()))?;
                return Err(external_id_taken(&ns, &value, None));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(
        "could not find a free order reference".into(),
    ))
}

/// Applies one change to one order, at `expected_version` if given. The
/// change moves stock through the book: the products of the order's stock
/// and of `skus` (those an edit brings in), read in its transaction. Under
/// the tenant's `auto_complete`, an order the change leaves paid and
/// delivered completes in the same transaction.
#[tracing::instrument(skip_all, fields(?lookup, ?action))]
pub async fn change(
    state: &AppState,
    principal: &Principal,
    lookup: OrderLookup,
    expected_version: Option<u64>,
    action: &'static str,
    skus: Vec<Sku>,
    change: impl FnOnce(&mut Order, &mut StockBook, Timestamp) -> Result<Option<EventDraft>, Refusal>
        + Send
        + 'static,
) -> Result<Changed, ApiError> {
    let by = (principal.scope(), principal.actor());
    change_by(state, by, lookup, expected_version, skus, change).await
}

/// [`change`], by `actor` on the orders `scope` lets it see (a buyer
/// writing to the chatbot, say).
#[tracing::instrument(skip_all, fields(?lookup))]
pub async fn change_by(
    state: &AppState,
    (scope, actor): (Scope, Actor),
    lookup: OrderLookup,
    expected_version: Option<u64>,
    skus: Vec<Sku>,
    change: impl FnOnce(&mut Order, &mut StockBook, Timestamp) -> Result<Option<EventDraft>, Refusal>
        + Send
        + 'static,
) -> Result<Changed, ApiError> {
    let now = Timestamp::now();
    let store = state.store();
    let settings = state.settings().get(store, scope.tenant_id).await?;
    let change =
        OrderChange::new(move |order: &mut Order, book: &mut StockBook| change(order, book, now))
            .with_skus(skus)
            .completing(settings.auto_complete)
            .notifying(settings.messaging.reaches_buyers());
    Ok(store
        .change_order(scope, lookup, expected_version, actor, change)
        .await?)
}

/// Confirms `o`: it then holds its stock under a reservation policy (or
/// keeps what it holds from its creation, no longer with an expiry).
pub fn confirm(
    o: &mut Order,
    book: &mut StockBook,
    now: Timestamp,
    settings: &TenantSettings,
) -> Result<Option<EventDraft>, Refusal> {
    let event = o.confirm(now)?;
    if o.holds_stock || settings.reservation_policy != ReservationPolicy::None {
        o.hold_stock(None, book)?;
    }
    Ok(Some(event))
}

/// Cancels `o` for `reason`, letting its stock go (and its money, by the
/// refunds the cancel puts under way).
pub fn cancel(
    o: &mut Order,
    book: &mut StockBook,
    now: Timestamp,
    reason: String,
) -> Result<Option<EventDraft>, Refusal> {
    let event = o.cancel(reason, now)?;
    o.release_stock(book)?;
    Ok(Some(event))
}
