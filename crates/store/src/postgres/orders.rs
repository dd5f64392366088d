//! Orders, their external identifiers, timeline and idempotency keys on
//! PostgreSQL.
//!
//! Every write is one transaction on one connection. Its statements are
//! pipelined (sent together, answered together), so a new order costs three
//! round trips whatever its shape: BEGIN, the inserts, COMMIT. Uniqueness
//! (idempotency keys, external identifiers) is claimed with `ON CONFLICT DO
//! NOTHING`: a second node inserting the same key waits for the first to
//! commit and then sees a conflict, so two nodes can never both win. A change
//! locks the order row (`FOR UPDATE`) before reading its version, so two
//! nodes changing one order run one after the other and neither update is
//! lost.

use deadpool_postgres::Transaction;
use futures_util::future::try_join_all;
use ordo_domain::{
    Actor, EventDraft, EventId, EventType, ExternalIds, Namespace, Order, OrderEvent, OrderId,
    Timestamp,
};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;

use super::{corrupt, db_error, Db};
use crate::query::{self, sequence_of, Arg, KEEP_SNAPSHOT};
use crate::{
    Changed, Inserted, NewOrderRecord, OrderChange, OrderFilter, OrderLookup, OrderQuery,
    RenderedOrder, Renderer, Result, Scope, StoreError, StoredResponse,
};
use crate::{DaySales, Overview};
use ordo_domain::Stage;

type Param<'a> = &'a (dyn ToSql + Sync);

fn checked(order: Order, scope: &Scope) -> Result<Order> {
    // Belt and braces: a row of another tenant is never returned.
    if order.tenant_id != scope.tenant_id {
        return Err(corrupt("an order row belongs to another tenant"));
    }
    Ok(order)
}

/// An order as the row's parameters, `$1`–`$23` of [`INSERT_ORDER`] and
/// [`UPDATE_ORDER`].
struct OrderRow<'a> {
    order: &'a Order,
    c: Columns,
    body: Json<&'a Order>,
    api: &'a [u8],
}

impl<'a> OrderRow<'a> {
    fn new(order: &'a Order, api: &'a [u8], renderer: Renderer) -> Self {
        OrderRow {
            order,
            c: Columns::of(order, renderer),
            body: Json(order),
            api,
        }
    }

    fn params(&self) -> Vec<Param<'_>> {
        let (o, c) = (self.order, &self.c);
        vec![
            &c.tenant_id,
            &c.id,
            &c.reference,
            &c.status,
            &c.payment_status,
            &c.fulfillment_status,
            &c.stage,
            &c.currency,
            &o.buyer.name,
            &c.buyer_phone,
            &c.buyer_email,
            &c.buyer_channel_id,
            &c.channel,
            &o.created_by.id,
            &o.batch_id,
            &o.total,
            &c.version,
            &self.body,
            &self.api,
            &c.api_version,
            &c.reference_seq,
            &c.created_at,
            &c.updated_at,
        ]
    }

    /// A unique violation of the row, as the conflict it is.
    fn conflict(&self, e: &tokio_postgres::Error) -> Option<StoreError> {
        let (field, value) = match e.as_db_error()?.constraint()? {
            "orders_reference" => ("reference", self.order.reference.to_string()),
            "orders_pkey" => ("id", self.order.id.to_string()),
            _ => return None,
        };
        Some(StoreError::Conflict {
            field: field.into(),
            value,
        })
    }
}

/// An order's derived columns.
struct Columns {
    tenant_id: String,
    id: String,
    reference: String,
    status: &'static str,
    payment_status: &'static str,
    fulfillment_status: &'static str,
    stage: &'static str,
    currency: &'static str,
    channel: &'static str,
    buyer_phone: Option<String>,
    buyer_email: Option<String>,
    buyer_channel_id: Option<String>,
    version: i64,
    reference_seq: i64,
    api_version: i32,
    created_at: i64,
    updated_at: i64,
}

impl Columns {
    fn of(order: &Order, renderer: Renderer) -> Columns {
        Columns {
            tenant_id: order.tenant_id.to_string(),
            id: order.id.to_string(),
            reference: order.reference.to_string(),
            status: order.status.as_str(),
            payment_status: order.payment_status.as_str(),
            fulfillment_status: order.fulfillment_status.as_str(),
            stage: order.stage().as_str(),
            currency: order.currency.code(),
            channel: order.channel.as_str(),
            buyer_phone: order.buyer.phone.as_ref().map(|p| p.as_str().to_string()),
            buyer_email: order.buyer.email.as_ref().map(|e| e.as_str().to_string()),
            buyer_channel_id: order.buyer.channel_id.as_ref().map(ToString::to_string),
            version: i64::try_from(order.version).unwrap_or(i64::MAX),
            reference_seq: i64::try_from(order.reference.sequence(order.tenant_id))
                .unwrap_or(i64::MAX),
            api_version: i32::try_from(renderer.version).unwrap_or(i32::MAX),
            created_at: order.created_at.unix_millis(),
            updated_at: order.updated_at.unix_millis(),
        }
    }
}

/// The INSERT of an order row, parameters `$1`–`$23` in the order of
/// [`OrderRow::params`] (a macro, so the one-statement create can embed it).
macro_rules! insert_order_sql {
    () => {
        "INSERT INTO orders (tenant_id, id, reference, status, payment_status, fulfillment_status, stage, currency,
                    buyer_name, buyer_phone, buyer_email, buyer_channel_id, channel, created_by, batch_id,
                    total, version, body, api, api_version, reference_seq, created_at, updated_at)
 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
    };
}

const INSERT_ORDER: &str = insert_order_sql!();

const UPDATE_ORDER: &str = "UPDATE orders SET reference = $3, status = $4, payment_status = $5, fulfillment_status = $6, stage = $7,
                  currency = $8, buyer_name = $9, buyer_phone = $10, buyer_email = $11, buyer_channel_id = $12,
                  channel = $13, created_by = $14, batch_id = $15, total = $16, version = $17, body = $18, api = $19,
                  api_version = $20, reference_seq = $21, created_at = $22, updated_at = $23
 WHERE tenant_id = $1 AND id = $2";

/// Writes the order row, new or changed.
async fn write_row(
    tx: &Transaction<'_>,
    sql: &str,
    order: &Order,
    api: &[u8],
    renderer: Renderer,
) -> Result<u64> {
    let stmt = tx.prepare_cached(sql).await.map_err(db_error)?;
    let row = OrderRow::new(order, api, renderer);
    tx.execute(&stmt, &row.params())
        .await
        .map_err(|e| row.conflict(&e).unwrap_or_else(|| db_error(e)))
}

const CLAIM_EXTERNAL_ID: &str =
    "INSERT INTO order_external_ids (tenant_id, namespace, value, order_id) VALUES ($1, $2, $3, $4)
 ON CONFLICT DO NOTHING";

const RELEASE_EXTERNAL_ID: &str = "DELETE FROM order_external_ids WHERE tenant_id = $1 AND namespace = $2 AND value = $3 AND order_id = $4";

/// Claims the identifiers of `order` that `previous` lacks and releases
/// those it dropped. Returns the first identifier another order holds.
async fn sync_external_ids(
    tx: &Transaction<'_>,
    order: &Order,
    previous: &ExternalIds,
) -> Result<Option<(Namespace, String)>> {
    let claim = tx
        .prepare_cached(CLAIM_EXTERNAL_ID)
        .await
        .map_err(db_error)?;
    let release = tx
        .prepare_cached(RELEASE_EXTERNAL_ID)
        .await
        .map_err(db_error)?;
    let (tenant, id) = (order.tenant_id.to_string(), order.id.to_string());
    let released = previous
        .iter()
        .filter(|(ns, value)| order.external_ids.get(*ns) != Some(*value))
        .map(|(ns, value)| {
            let (release, tenant, id) = (&release, &tenant, &id);
            async move {
                tx.execute(release, &[tenant, &ns.as_str(), value, id])
                    .await
            }
        });
    try_join_all(released).await.map_err(db_error)?;
    let wanted: Vec<(&Namespace, &String)> = order
        .external_ids
        .iter()
        .filter(|(ns, value)| previous.get(*ns) != Some(*value))
        .collect();
    let claimed = try_join_all(wanted.iter().map(|(ns, value)| {
        let (claim, tenant, id) = (&claim, &tenant, &id);
        async move { tx.execute(claim, &[tenant, &ns.as_str(), *value, id]).await }
    }))
    .await
    .map_err(db_error)?;
    Ok(wanted
        .into_iter()
        .zip(claimed)
        .find(|(_, n)| *n == 0)
        .map(|((ns, value), _)| (ns.clone(), value.clone())))
}

const APPEND_EVENT: &str =
    "INSERT INTO order_events (tenant_id, order_id, sequence, id, type, actor, at, data, bulk)
 SELECT $1, $2, COALESCE(MAX(sequence), 0) + 1, $3, $4, $5, $6, $7, $8
   FROM order_events WHERE tenant_id = $1 AND order_id = $2
 RETURNING sequence";

/// Appends an event to the order's timeline, numbered after the last one.
/// The order row is locked (or new), so no other event of the order can be
/// written at the same time. The order as the API shows it after the event
/// is the row's rendering until the next change (`KEEP_SNAPSHOT`). `bulk`
/// when an import's write made it (its deliveries wait for live ones).
async fn append_event(
    tx: &Transaction<'_>,
    order: &Order,
    actor: &Actor,
    draft: EventDraft,
    bulk: bool,
) -> Result<OrderEvent> {
    let stmt = tx.prepare_cached(APPEND_EVENT).await.map_err(db_error)?;
    let id = EventId::new_at(order.updated_at);
    let row = tx
        .query_one(
            &stmt,
            &[
                &order.tenant_id.to_string(),
                &order.id.to_string(),
                &id.to_string(),
                &draft.event_type.as_str(),
                &Json(actor),
                &order.updated_at.unix_millis(),
                &Json(&draft.data),
                &bulk,
            ],
        )
        .await
        .map_err(db_error)?;
    Ok(OrderEvent {
        id,
        order_id: order.id,
        sequence: u64::try_from(row.get::<_, i64>(0)).map_err(corrupt)?,
        event_type: draft.event_type,
        actor: actor.clone(),
        at: order.updated_at,
        data: draft.data,
    })
}

/// What inserting an order in a transaction came to; on anything but
/// `Done` the transaction must be rolled back.
pub(super) enum Insert {
    Done,
    KeyTaken,
    ExternalIdTaken(Namespace, String),
    /// What collided is gone again: try afresh.
    Raced,
}

const CLAIM_IDEMPOTENCY_KEY: &str =
    "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, body, order_id, created_at)
 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

/// Inserts the order, its identifiers, first event and idempotency key, all
/// statements sent at once.
pub(super) async fn insert(
    tx: &Transaction<'_>,
    record: &NewOrderRecord,
    api: &[u8],
    renderer: Renderer,
) -> Result<Insert> {
    let order = &record.order;
    let held = if order.reserved.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let skus: Vec<_> = order.reserved.keys().cloned().collect();
        let products = super::products::lock(tx, order.tenant_id, &skus).await?;
        crate::reserve_new(order, products, &record.actor)?
    };
    let tenant = order.tenant_id.to_string();
    let order_id = order.id.to_string();
    let idem_stmt = match &record.idempotency {
        Some(_) => Some(
            tx.prepare_cached(CLAIM_IDEMPOTENCY_KEY)
                .await
                .map_err(db_error)?,
        ),
        None => None,
    };
    let key = async {
        match (&record.idempotency, &idem_stmt) {
            (Some(claim), Some(stmt)) => {
                let status = i16::try_from(claim.response.status).unwrap_or(i16::MAX);
                tx.execute(
                    stmt,
                    &[
                        &tenant,
                        &claim.key,
                        &&claim.fingerprint[..],
                        &status,
                        &claim.response.body,
                        &order_id,
                        &claim.at.unix_millis(),
                    ],
                )
                .await
                .map_err(db_error)
                .map(|n| n == 1)
            }
            _ => Ok(true),
        }
    };
    let row = write_row(tx, INSERT_ORDER, order, api, renderer);
    let none = ExternalIds::new();
    let ids = sync_external_ids(tx, order, &none);
    let event = append_event(
        tx,
        order,
        &record.actor,
        record.event.clone(),
        order.batch_id.is_some(),
    );
    let (key_claimed, _, taken, event) = futures_util::try_join!(key, row, ids, event)?;
    if !key_claimed {
        return Ok(Insert::KeyTaken);
    }
    if let Some((ns, value)) = taken {
        return Ok(Insert::ExternalIdTaken(ns, value));
    }
    // After the key and identifiers: a replay is never refused for a use
    // the first request took.
    super::promotions::claim(tx, order, &[]).await?;
    if record.notify {
        for job in crate::message_jobs(order, std::slice::from_ref(&event)) {
            super::jobs::schedule(tx, &job).await?;
        }
    }
    super::products::save(tx, &held.0, &held.1).await?;
    Ok(Insert::Done)
}

const INSERT_STATEMENT: &str = concat!(
    "WITH claimed_key AS (
    INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, body, order_id, created_at)
    SELECT $1, $24::text, $25::bytea, $26::smallint, $27::bytea, $2, $28::bigint WHERE $24::text IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING 1
), claimed_ids AS (
    INSERT INTO order_external_ids (tenant_id, namespace, value, order_id)
    SELECT $1, x.namespace, x.value, $2 FROM unnest($29::text[], $30::text[]) AS x (namespace, value)
    ON CONFLICT DO NOTHING RETURNING 1
), new_order AS (
",
    insert_order_sql!(),
    "
), first_event AS (
    INSERT INTO order_events (tenant_id, order_id, sequence, id, type, actor, at, data)
    VALUES ($1, $2, 1, $31, $32, $33, $23, $34)
)
SELECT ordo_claims_held($24::text IS NULL OR EXISTS (SELECT 1 FROM claimed_key),
                        (SELECT count(*) FROM claimed_ids) = cardinality($29::text[]))"
);

/// Inserts a new order (its idempotency key, external ids, row and first
/// event) in one statement, so in one round trip and one implicit
/// transaction. A taken key or identifier rolls the whole statement back.
pub(super) async fn insert_statement(
    db: &Db,
    record: &NewOrderRecord,
    api: &[u8],
    renderer: Renderer,
) -> Result<Insert> {
    let stmt = db
        .prepare_cached(INSERT_STATEMENT)
        .await
        .map_err(db_error)?;
    let order = &record.order;
    let row = OrderRow::new(order, api, renderer);
    let claim = record.idempotency.as_ref();
    let key = claim.map(|k| k.key.as_str());
    let fingerprint = claim.map(|k| &k.fingerprint[..]);
    let status = claim.map(|k| i16::try_from(k.response.status).unwrap_or(i16::MAX));
    let response = claim.map(|k| k.response.body.as_slice());
    let key_at = claim.map(|k| k.at.unix_millis());
    let namespaces: Vec<&str> = order.external_ids.keys().map(|n| n.as_str()).collect();
    let values: Vec<&str> = order.external_ids.values().map(String::as_str).collect();
    let event_id = EventId::new_at(order.updated_at).to_string();
    let actor = Json(&record.actor);
    let data = Json(&record.event.data);
    let event_type = record.event.event_type.as_str();
    let mut params = row.params();
    params.extend([
        &key as Param<'_>,
        &fingerprint,
        &status,
        &response,
        &key_at,
        &namespaces,
        &values,
        &event_id,
        &event_type,
        &actor,
        &data,
    ]);
    match db.execute(&stmt, &params).await {
        Ok(_) => Ok(Insert::Done),
        Err(e) => match e.as_db_error().map(|d| (d.code().code(), d.constraint())) {
            Some(("OR001", _)) => Ok(Insert::KeyTaken),
            Some(("OR002", _)) => taken_external_id(db, order).await,
            _ => Err(row.conflict(&e).unwrap_or_else(|| db_error(e))),
        },
    }
}

/// Which of the order's identifiers another order holds.
async fn taken_external_id(db: &Db, order: &Order) -> Result<Insert> {
    let stmt = db
        .prepare_cached(
            "SELECT order_id FROM order_external_ids WHERE tenant_id = $1 AND namespace = $2 AND value = $3",
        )
        .await
        .map_err(db_error)?;
    let tenant = order.tenant_id.to_string();
    for (ns, value) in &order.external_ids {
        if db
            .query_opt(&stmt, &[&tenant, &ns.as_str(), value])
            .await
            .map_err(db_error)?
            .is_some()
        {
            return Ok(Insert::ExternalIdTaken(ns.clone(), value.clone()));
        }
    }
    // Released again since: the caller tries afresh.
    Ok(Insert::Raced)
}

/// The response kept for an idempotency key, if the key is known.
pub(super) async fn idempotency_key(db: &Db, record: &NewOrderRecord) -> Result<Option<Inserted>> {
    let Some(claim) = &record.idempotency else {
        return Ok(None);
    };
    let stmt = db
        .prepare_cached(
            "SELECT fingerprint, status, body, order_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        )
        .await
        .map_err(db_error)?;
    let Some(row) = db
        .query_opt(&stmt, &[&record.order.tenant_id.to_string(), &claim.key])
        .await
        .map_err(db_error)?
    else {
        return Ok(None);
    };
    if row.get::<_, &[u8]>(0) != claim.fingerprint {
        return Ok(Some(Inserted::KeyReused {
            key: claim.key.clone(),
        }));
    }
    Ok(Some(Inserted::Replayed(StoredResponse {
        status: u16::try_from(row.get::<_, i16>(1)).map_err(corrupt)?,
        body: row.get(2),
        order_id: row.get::<_, &str>(3).parse().map_err(corrupt)?,
    })))
}

const CLAIM_TRANSACTION: &str =
    "INSERT INTO payment_transactions (tenant_id, transaction_id, order_id, payment_id)
 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// Claims the transaction ids of the payments a change recorded (those
/// after the first `before`). Returns the first one the tenant already has.
async fn claim_transactions(
    tx: &Transaction<'_>,
    order: &Order,
    before: usize,
) -> Result<Option<String>> {
    let claims = crate::new_transactions(order, before);
    if claims.is_empty() {
        return Ok(None);
    }
    let claim = tx
        .prepare_cached(CLAIM_TRANSACTION)
        .await
        .map_err(db_error)?;
    let (tenant, id) = (order.tenant_id.to_string(), order.id.to_string());
    for (transaction_id, payment_id) in claims {
        let n = tx
            .execute(
                &claim,
                &[&tenant, &transaction_id, &id, &payment_id.to_string()],
            )
            .await
            .map_err(db_error)?;
        if n == 0 {
            return Ok(Some(transaction_id.to_string()));
        }
    }
    Ok(None)
}

/// Applies `change` to `order` (locked by the caller) and writes the result.
pub(super) async fn apply_change(
    tx: &Transaction<'_>,
    mut order: Order,
    actor: &Actor,
    change: OrderChange,
    renderer: Renderer,
) -> Result<Changed> {
    let previous_ids = order.external_ids.clone();
    let batch_before = order.batch_id.clone();
    let (payments, refunds) = (order.ledger.payments.len(), order.ledger.refunds.len());
    let shipments = order.shipments.len();
    let notify = change.notify;
    let promotions = crate::promotions::held(&order);
    let skus = change.stock_skus(&order);
    let products = super::products::lock(tx, order.tenant_id, &skus).await?;
    let Some((drafts, products, movements)) =
        crate::run_change(&mut order, change, products, actor)?
    else {
        return Ok(Changed { order, event: None });
    };
    // An import's edit gives the order its batch id.
    let bulk = order.batch_id.is_some() && order.batch_id != batch_before;
    if let Some(taken) = claim_transactions(tx, &order, payments).await? {
        return Err(StoreError::Conflict {
            field: "transaction_id".into(),
            value: taken,
        });
    }
    super::promotions::claim(tx, &order, &promotions).await?;
    for job in crate::provider_jobs(&order, payments, refunds) {
        super::jobs::schedule(tx, &job).await?;
    }
    index_shipments(tx, &order, shipments).await?;
    super::products::save(tx, &products, &movements).await?;
    let api = (renderer.render)(&order);
    // Sent and answered before the row changes: the latest event keeps the
    // rendering it shared with the row.
    let keep = tx.prepare_cached(KEEP_SNAPSHOT).await.map_err(db_error)?;
    tx.execute(
        &keep,
        &[&order.tenant_id.to_string(), &order.id.to_string()],
    )
    .await
    .map_err(db_error)?;
    let row = write_row(tx, UPDATE_ORDER, &order, &api, renderer);
    let ids = async {
        if order.external_ids == previous_ids {
            return Ok(None);
        }
        sync_external_ids(tx, &order, &previous_ids).await
    };
    let events = async {
        let mut appended = Vec::with_capacity(drafts.len());
        for draft in drafts {
            appended.push(append_event(tx, &order, actor, draft, bulk).await?);
        }
        Ok(appended)
    };
    let (_, taken, appended) = futures_util::try_join!(row, ids, events)?;
    if let Some((ns, value)) = taken {
        return Err(StoreError::Conflict {
            field: format!("external_ids.{ns}"),
            value,
        });
    }
    if notify {
        for job in crate::message_jobs(&order, &appended) {
            super::jobs::schedule(tx, &job).await?;
        }
    }
    let event = appended.into_iter().next();
    Ok(Changed { order, event })
}

/// Appends `drafts` to order `id`'s timeline at `at`, the order (locked)
/// unchanged: its latest event first keeps the rendering it shared with
/// the row.
pub(super) async fn append_events(
    tx: &Transaction<'_>,
    scope: &Scope,
    id: OrderId,
    actor: &Actor,
    at: Timestamp,
    drafts: Vec<EventDraft>,
) -> Result<Vec<OrderEvent>> {
    let mut order = find_for_update(tx, scope, &OrderLookup::Id(id))
        .await?
        .filter(|o| scope.allows(o))
        .ok_or(StoreError::NotFound)?;
    let keep = tx.prepare_cached(KEEP_SNAPSHOT).await.map_err(db_error)?;
    tx.execute(
        &keep,
        &[&order.tenant_id.to_string(), &order.id.to_string()],
    )
    .await
    .map_err(db_error)?;
    // Events are stamped with the order's time; these happen later.
    order.updated_at = at.max(order.updated_at);
    let mut appended = Vec::with_capacity(drafts.len());
    for draft in drafts {
        appended.push(append_event(tx, &order, actor, draft, false).await?);
    }
    Ok(appended)
}

/// Records which order each new shipment belongs to, so that it can be
/// found by its id alone.
async fn index_shipments(tx: &Transaction<'_>, order: &Order, before: usize) -> Result<()> {
    let ids: Vec<String> = crate::new_shipments(order, before)
        .iter()
        .map(ToString::to_string)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO order_shipments (tenant_id, id, order_id) SELECT $1, unnest($2::text[]), $3",
        )
        .await
        .map_err(db_error)?;
    tx.execute(
        &stmt,
        &[&order.tenant_id.to_string(), &ids, &order.id.to_string()],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

fn lookup_sql(lookup: &OrderLookup, select: &str, lock: bool) -> String {
    let lock = if lock { " FOR UPDATE OF o" } else { "" };
    match lookup {
        OrderLookup::Id(_) => {
            format!("SELECT {select} FROM orders o WHERE o.tenant_id = $1 AND o.id = $2{lock}")
        }
        OrderLookup::Reference(_) => format!(
            "SELECT {select} FROM orders o WHERE o.tenant_id = $1 AND o.reference_seq = $2{lock}"
        ),
        OrderLookup::External(..) => format!(
            "SELECT {select} FROM order_external_ids x JOIN orders o ON o.tenant_id = x.tenant_id AND o.id = x.order_id
             WHERE x.tenant_id = $1 AND x.namespace = $2 AND x.value = $3{lock}"
        ),
        OrderLookup::Shipment(_) => format!(
            "SELECT {select} FROM order_shipments s JOIN orders o ON o.tenant_id = s.tenant_id AND o.id = s.order_id
             WHERE s.tenant_id = $1 AND s.id = $2{lock}"
        ),
    }
}

/// The parameters of the lookup's statement.
fn lookup_params(scope: &Scope, lookup: &OrderLookup) -> Vec<Box<dyn ToSql + Sync + Send>> {
    let tenant = Box::new(scope.tenant_id.to_string());
    match lookup {
        OrderLookup::Id(id) => vec![tenant, Box::new(id.to_string())],
        OrderLookup::Shipment(id) => vec![tenant, Box::new(id.to_string())],
        OrderLookup::Reference(r) => vec![tenant, Box::new(sequence_of(r, scope))],
        OrderLookup::External(ns, value) => vec![
            tenant,
            Box::new(ns.as_str().to_string()),
            Box::new(value.clone()),
        ],
    }
}

fn refs(owned: &[Box<dyn ToSql + Sync + Send>]) -> Vec<Param<'_>> {
    owned.iter().map(|p| p.as_ref() as Param<'_>).collect()
}

/// The order, read and locked for the rest of the transaction.
pub(super) async fn find_for_update(
    tx: &Transaction<'_>,
    scope: &Scope,
    lookup: &OrderLookup,
) -> Result<Option<Order>> {
    let stmt = tx
        .prepare_cached(&lookup_sql(lookup, "o.body", true))
        .await
        .map_err(db_error)?;
    let owned = lookup_params(scope, lookup);
    let row = tx.query_opt(&stmt, &refs(&owned)).await.map_err(db_error)?;
    row.map(|r| checked(r.get::<_, Json<Order>>(0).0, scope))
        .transpose()
}

pub(super) async fn find(db: &Db, scope: &Scope, lookup: &OrderLookup) -> Result<Option<Order>> {
    let stmt = db
        .prepare_cached(&lookup_sql(lookup, "o.body", false))
        .await
        .map_err(db_error)?;
    let owned = lookup_params(scope, lookup);
    let row = db.query_opt(&stmt, &refs(&owned)).await.map_err(db_error)?;
    Ok(row
        .map(|r| checked(r.get::<_, Json<Order>>(0).0, scope))
        .transpose()?
        .filter(|o| scope.allows(o)))
}

const RENDERED: &str = "o.id, o.version, o.updated_at, o.total, o.api_version, o.api, o.created_by";

/// A stored rendering, or a fresh one when it was made by an older renderer.
async fn rendered(db: &Db, scope: &Scope, row: &Row, renderer: Renderer) -> Result<RenderedOrder> {
    let id: OrderId = row.get::<_, &str>(0).parse().map_err(corrupt)?;
    if row.get::<_, i32>(4) == i32::try_from(renderer.version).unwrap_or(i32::MAX) {
        return Ok(RenderedOrder {
            id,
            version: u64::try_from(row.get::<_, i64>(1)).map_err(corrupt)?,
            updated_at: Timestamp::from_unix_millis(row.get(2)),
            total: row.get(3),
            json: row.get(5),
        });
    }
    // Rendered by an older renderer: render the order afresh, and take the
    // version from the order read, so ETag and body agree.
    let order = find(db, scope, &OrderLookup::Id(id))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(RenderedOrder {
        id,
        version: order.version,
        updated_at: order.updated_at,
        total: order.total,
        json: (renderer.render)(&order),
    })
}

pub(super) async fn find_rendered(
    db: &Db,
    scope: &Scope,
    lookup: &OrderLookup,
    renderer: Renderer,
) -> Result<Option<RenderedOrder>> {
    let stmt = db
        .prepare_cached(&lookup_sql(lookup, RENDERED, false))
        .await
        .map_err(db_error)?;
    let owned = lookup_params(scope, lookup);
    let Some(row) = db.query_opt(&stmt, &refs(&owned)).await.map_err(db_error)? else {
        return Ok(None);
    };
    // A vendor sees only the orders it created.
    if scope
        .creator
        .as_ref()
        .is_some_and(|c| c != row.get::<_, &str>(6))
    {
        return Ok(None);
    }
    rendered(db, scope, &row, renderer).await.map(Some)
}

fn params(args: &[Arg]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    args.iter()
        .map(|a| -> Box<dyn ToSql + Sync + Send> {
            match a {
                Arg::Text(s) => Box::new(s.clone()),
                Arg::Int(i) => Box::new(*i),
            }
        })
        .collect()
}

pub(super) async fn query(db: &Db, sql: &query::Sql) -> Result<Vec<Row>> {
    let stmt = db.prepare_cached(&sql.text).await.map_err(db_error)?;
    let owned = params(&sql.args);
    db.query(&stmt, &refs(&owned)).await.map_err(db_error)
}

pub(super) async fn list_rendered(
    db: &Db,
    scope: &Scope,
    q: &OrderQuery,
    renderer: Renderer,
) -> Result<Vec<RenderedOrder>> {
    let sql = query::page(query::POSTGRES, scope, q, RENDERED);
    let rows = query(db, &sql).await?;
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        page.push(rendered(db, scope, row, renderer).await?);
    }
    Ok(page)
}

pub(super) async fn count(db: &Db, scope: &Scope, filter: &OrderFilter) -> Result<u64> {
    let sql = query::count(query::POSTGRES, scope, filter);
    let rows = query(db, &sql).await?;
    let n: i64 = rows.first().map_or(0, |r| r.get(0));
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) async fn overview(db: &Db, scope: &Scope, since: Option<Timestamp>) -> Result<Overview> {
    let rows = query(db, &query::stage_counts(query::POSTGRES, scope)).await?;
    let mut stages = Vec::with_capacity(rows.len());
    for row in &rows {
        let stage: &str = row.get(0);
        let stage = Stage::parse(stage).ok_or_else(|| corrupt(format!("unknown stage {stage}")))?;
        stages.push((stage, u64::try_from(row.get::<_, i64>(1)).unwrap_or(0)));
    }
    let Some(since) = since else {
        return Ok(Overview {
            stages,
            days: Vec::new(),
        });
    };
    let rows = query(db, &query::daily_sales(query::POSTGRES, scope, since)).await?;
    let days = rows
        .iter()
        .map(|row| DaySales {
            day: row.get(0),
            currency: row.get(1),
            orders: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
            total: row.get(3),
        })
        .collect();
    Ok(Overview { stages, days })
}

pub(super) async fn events(db: &Db, scope: &Scope, id: OrderId) -> Result<Vec<OrderEvent>> {
    if find(db, scope, &OrderLookup::Id(id)).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    let stmt = db
        .prepare_cached(
            "SELECT id, sequence, type, actor, at, data FROM order_events WHERE tenant_id = $1 AND order_id = $2 ORDER BY sequence",
        )
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[&scope.tenant_id.to_string(), &id.to_string()])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            let kind: &str = r.get(2);
            Ok(OrderEvent {
                id: r.get::<_, &str>(0).parse().map_err(corrupt)?,
                order_id: id,
                sequence: u64::try_from(r.get::<_, i64>(1)).map_err(corrupt)?,
                event_type: EventType::parse(kind)
                    .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
                actor: r.get::<_, Json<Actor>>(3).0,
                at: Timestamp::from_unix_millis(r.get(4)),
                data: r.get::<_, Json<serde_json::Value>>(5).0,
            })
        })
        .collect()
}

pub(super) async fn prune_idempotency_keys(db: &Db, before: Timestamp) -> Result<u64> {
    let tenants = db
        .query("SELECT id FROM tenants", &[])
        .await
        .map_err(db_error)?;
    let stmt = db
        .prepare_cached("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2")
        .await
        .map_err(db_error)?;
    let events = db
        .prepare_cached("DELETE FROM provider_events WHERE tenant_id = $1 AND received_at < $2")
        .await
        .map_err(db_error)?;
    let mut removed = 0;
    for t in tenants {
        let tenant: &str = t.get(0);
        removed += db
            .execute(&stmt, &[&tenant, &before.unix_millis()])
            .await
            .map_err(db_error)?;
        // Provider webhooks are remembered as long: a later repeat is
        // still harmless (an ended entry never moves).
        db.execute(&events, &[&tenant, &before.unix_millis()])
            .await
            .map_err(db_error)?;
    }
    Ok(removed)
}

pub(super) async fn provider_event(
    db: &Db,
    tenant: ordo_domain::TenantId,
    event_id: &str,
) -> Result<Option<String>> {
    let stmt = db
        .prepare_cached(
            "SELECT outcome FROM provider_events WHERE tenant_id = $1 AND event_id = $2",
        )
        .await
        .map_err(db_error)?;
    let row = db
        .query_opt(&stmt, &[&tenant.to_string(), &event_id])
        .await
        .map_err(db_error)?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) async fn record_provider_event(
    db: &Db,
    tenant: ordo_domain::TenantId,
    event_id: &str,
    order: OrderId,
    outcome: &str,
) -> Result<()> {
    let stmt = db
        .prepare_cached(
            "INSERT INTO provider_events (tenant_id, event_id, order_id, outcome, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &tenant.to_string(),
            &event_id,
            &order.to_string(),
            &outcome,
            &Timestamp::now().unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn lapsed_reservations(
    db: &Db,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<(ordo_domain::TenantId, OrderId)>> {
    let stmt = db
        .prepare_cached(
            "SELECT tenant_id, id FROM orders
              WHERE status = 'pending' AND body ? 'reserved_until'
                AND (body ->> 'reserved_until') COLLATE \"C\" <= $1
              LIMIT $2",
        )
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[&now.to_rfc3339(), &i64::from(limit)])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            Ok((
                r.get::<_, &str>(0).parse().map_err(corrupt)?,
                r.get::<_, &str>(1).parse().map_err(corrupt)?,
            ))
        })
        .collect()
}

/// The fingerprint and response kept for an idempotency key.
pub(super) async fn idempotent_response(
    db: &Db,
    tenant: ordo_domain::TenantId,
    key: &str,
) -> Result<Option<([u8; 32], StoredResponse)>> {
    let stmt = db
        .prepare_cached(
            "SELECT fingerprint, status, body, order_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        )
        .await
        .map_err(db_error)?;
    let row = db
        .query_opt(&stmt, &[&tenant.to_string(), &key])
        .await
        .map_err(db_error)?;
    row.map(|r| {
        let fingerprint: Vec<u8> = r.get(0);
        let status: i16 = r.get(1);
        let order_id: String = r.get(3);
        Ok((
            <[u8; 32]>::try_from(fingerprint.as_slice()).map_err(corrupt)?,
            StoredResponse {
                status: u16::try_from(status).map_err(corrupt)?,
                body: r.get(2),
                order_id: order_id.parse().map_err(corrupt)?,
            },
        ))
    })
    .transpose()
}
