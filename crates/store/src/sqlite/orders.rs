//! Orders, their external identifiers, timeline and idempotency keys on SQLite.

use ordo_domain::{
    Actor, EventDraft, EventId, EventType, ExternalIds, Namespace, Order, OrderEvent, OrderId,
    Timestamp,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension};

use super::{corrupt, unavailable};
use crate::query::{self, sequence_of, Arg, KEEP_SNAPSHOT};
use crate::{
    Changed, Inserted, NewOrderRecord, OrderChange, OrderFilter, OrderLookup, OrderQuery, Put,
    RenderedOrder, Renderer, Result, Scope, StoreError, StoredResponse,
};
use crate::{DaySales, Overview};
use ordo_domain::Stage;

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn parse_order(body: &str, scope: &Scope) -> Result<Order> {
    let order: Order = serde_json::from_str(body).map_err(corrupt)?;
    // Belt and braces: a row of another tenant is never returned.
    if order.tenant_id != scope.tenant_id {
        return Err(corrupt("an order row belongs to another tenant"));
    }
    Ok(order)
}

/// The stored form of an order.
pub(super) fn body(order: &Order) -> Result<String> {
    serde_json::to_string(order).map_err(corrupt)
}

/// The stored representations of an order: its body and its rendering.
pub(super) struct Stored {
    pub body: String,
    pub api: Vec<u8>,
}

impl Stored {
    pub(super) fn of(
        order: &Order,
        renderer: Renderer,
        rendered: Option<Vec<u8>>,
    ) -> Result<Stored> {
        Ok(Stored {
            body: body(order)?,
            api: rendered.unwrap_or_else(|| (renderer.render)(order)),
        })
    }
}

/// The columns every write of an order sets, as `?1` to `?10`: the key
/// (tenant, id), then what no index covers, then `updated_at`.
const PLAIN: &str =
    "tenant_id, id, reference, currency, buyer_name, version, body, api, api_version, updated_at";

fn plain(order: &Order, stored: Stored, renderer: Renderer) -> Vec<Value> {
    vec![
        Value::Text(order.tenant_id.to_string()),
        Value::Text(order.id.to_string()),
        Value::Text(order.reference.as_str().to_string()),
        Value::Text(order.currency.code().to_string()),
        order.buyer.name.clone().map_or(Value::Null, Value::Text),
        Value::Integer(i64::try_from(order.version).unwrap_or(i64::MAX)),
        Value::Text(stored.body),
        Value::Blob(stored.api),
        Value::Integer(i64::from(renderer.version)),
        Value::Integer(order.updated_at.unix_millis()),
    ]
}

/// Takes a block of the tenant's order numbers, past the highest handed
/// out and past any order already stored; returns its last number. Runs
/// in the writer, whose transactions exclude every other process's.
pub(super) fn take_numbers(
    conn: &Connection,
    tenant: ordo_domain::TenantId,
    block: u32,
) -> Result<u64> {
    let last: Option<i64> = conn
        .prepare_cached(
            "UPDATE tenants SET order_numbers_taken = MAX(order_numbers_taken,
                 (SELECT COALESCE(MAX(reference_seq), 0) FROM orders WHERE tenant_id = ?1)) + ?2
             WHERE id = ?1 RETURNING order_numbers_taken",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant.to_string(), block], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    u64::try_from(last.ok_or(StoreError::NotFound)?).map_err(corrupt)
}

/// The tenant's order number behind the order's reference (what is indexed).
fn reference_seq(order: &Order) -> i64 {
    i64::try_from(order.reference.sequence(order.tenant_id)).unwrap_or(i64::MAX)
}

fn insert_row(conn: &Connection, order: &Order, stored: Stored, renderer: Renderer) -> Result<()> {
    static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let n = PLAIN.split(", ").count() + 1 + INDEXED.len();
        let slots: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO orders ({PLAIN}, created_at, {}) VALUES ({})",
            INDEXED.join(", "),
            slots.join(", ")
        )
    });
    let mut values = plain(order, stored, renderer);
    values.push(Value::Integer(order.created_at.unix_millis()));
    values.extend(indexed(order));
    let mut stmt = conn.prepare_cached(&INSERT).map_err(unavailable)?;
    match stmt.execute(params_from_iter(values.iter())) {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
            field: "reference".into(),
            value: order.reference.to_string(),
        }),
        Err(e) => Err(unavailable(e)),
    }
}

/// The columns an index covers (beyond `updated_at`, which every change
/// moves), as [`indexed`] gives their values.
const INDEXED: [&str; 12] = [
    "status",
    "payment_status",
    "fulfillment_status",
    "stage",
    "buyer_phone",
    "buyer_email",
    "buyer_channel_id",
    "channel",
    "created_by",
    "batch_id",
    "total",
    "reference_seq",
];

/// The values of the [`INDEXED`] columns.
fn indexed(order: &Order) -> [Value; 12] {
    let text = |s: &str| Value::Text(s.to_string());
    let opt = |s: Option<String>| s.map_or(Value::Null, Value::Text);
    [
        text(order.status.as_str()),
        text(order.payment_status.as_str()),
        text(order.fulfillment_status.as_str()),
        text(order.stage().as_str()),
        opt(order.buyer.phone.as_ref().map(|p| p.as_str().to_string())),
        opt(order.buyer.email.as_ref().map(|e| e.as_str().to_string())),
        opt(order.buyer.channel_id.as_ref().map(ToString::to_string)),
        text(order.channel.as_str()),
        text(&order.created_by.id),
        opt(order.batch_id.clone()),
        Value::Integer(order.total),
        Value::Integer(reference_seq(order)),
    ]
}

/// Writes a changed order over its row. An indexed column is written only
/// if its value changed (`before` holds the values as read): SQLite updates
/// every index whose column a statement assigns, so a confirmation touches
/// the status and stage indexes and leaves the buyer's, the channel's and
/// the total's alone.
fn update_row(
    conn: &Connection,
    order: &Order,
    before: &[Value; 12],
    stored: Stored,
    renderer: Renderer,
) -> Result<()> {
    // Every column but the key, each from its slot.
    static SET_PLAIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let assigned: Vec<String> = PLAIN
            .split(", ")
            .enumerate()
            .skip(2)
            .map(|(i, column)| format!("{column} = ?{}", i + 1))
            .collect();
        format!("UPDATE orders SET {}", assigned.join(", "))
    });
    let mut args = plain(order, stored, renderer);
    let mut sql = SET_PLAIN.clone();
    for ((column, was), now) in INDEXED.iter().zip(before).zip(indexed(order)) {
        if *was != now {
            args.push(now);
            sql.push_str(&format!(", {column} = ?{}", args.len()));
        }
    }
    sql.push_str(" WHERE tenant_id = ?1 AND id = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute(params_from_iter(args.iter())))
        .map_err(unavailable)?;
    Ok(())
}

fn order_with_external_id(
    conn: &Connection,
    scope: &Scope,
    ns: &Namespace,
    value: &str,
) -> Result<Option<Order>> {
    conn.prepare_cached(
        "SELECT o.body FROM order_external_ids x JOIN orders o ON o.tenant_id = x.tenant_id AND o.id = x.order_id
         WHERE x.tenant_id = ?1 AND x.namespace = ?2 AND x.value = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![scope.tenant_id.to_string(), ns.as_str(), value], |r| r.get::<_, String>(0))
            .optional()
    })
    .map_err(unavailable)?
    .map(|body| parse_order(&body, &Scope::tenant(scope.tenant_id)))
    .transpose()
}

/// Refuses identifiers of `order` (beyond `previous`) that already name
/// another order of the tenant. Called before anything is written.
fn check_external_ids(conn: &Connection, order: &Order, previous: &ExternalIds) -> Result<()> {
    for (ns, value) in &order.external_ids {
        if previous.get(ns) == Some(value) {
            continue;
        }
        let owner: Option<String> = conn
            .prepare_cached("SELECT order_id FROM order_external_ids WHERE tenant_id = ?1 AND namespace = ?2 AND value = ?3")
            .and_then(|mut s| s.query_row(params![order.tenant_id.to_string(), ns.as_str(), value], |r| r.get(0)).optional())
            .map_err(unavailable)?;
        if owner.is_some_and(|o| o != order.id.to_string()) {
            return Err(StoreError::Conflict {
                field: format!("external_ids.{ns}"),
                value: value.clone(),
            });
        }
    }
    Ok(())
}

/// Makes the identifier table match the order's identifiers (checked
/// beforehand with [`check_external_ids`]).
fn sync_external_ids(conn: &Connection, order: &Order, previous: &ExternalIds) -> Result<()> {
    let tenant = order.tenant_id.to_string();
    let id = order.id.to_string();
    for (ns, value) in previous {
        if order.external_ids.get(ns) != Some(value) {
            conn.prepare_cached("DELETE FROM order_external_ids WHERE tenant_id = ?1 AND namespace = ?2 AND value = ?3 AND order_id = ?4")
                .and_then(|mut s| s.execute(params![tenant, ns.as_str(), value, id]))
                .map_err(unavailable)?;
        }
    }
    for (ns, value) in &order.external_ids {
        if previous.get(ns) == Some(value) {
            continue;
        }
        let result = conn
            .prepare_cached("INSERT INTO order_external_ids (tenant_id, namespace, value, order_id) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![tenant, ns.as_str(), value, id]));
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict {
                    field: format!("external_ids.{ns}"),
                    value: value.clone(),
                })
            }
            Err(e) => return Err(unavailable(e)),
        }
    }
    Ok(())
}

/// Appends an event to the order's timeline at the next feed position;
/// `first` when the order is new (its sequence is then 1 without asking);
/// `bulk` when an import's write made it (its deliveries wait for live ones).
/// The writer's transaction excludes every other writer, so feed positions
/// grow in commit order. The order as the API shows it after the event is
/// the order row's rendering until the next change (see [`keep_snapshot`]).
fn append_event(
    conn: &Connection,
    order: &Order,
    actor: &Actor,
    draft: EventDraft,
    first: bool,
    bulk: bool,
) -> Result<OrderEvent> {
    let tenant = order.tenant_id.to_string();
    let order_id = order.id.to_string();
    let last: i64 = if first {
        0
    } else {
        conn.prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM order_events WHERE tenant_id = ?1 AND order_id = ?2")
            .and_then(|mut s| s.query_row(params![tenant, order_id], |r| r.get(0)))
            .map_err(unavailable)?
    };
    let event = OrderEvent {
        id: EventId::new_at(order.updated_at),
        order_id: order.id,
        sequence: u64::try_from(last + 1).unwrap_or(1),
        event_type: draft.event_type,
        actor: actor.clone(),
        at: order.updated_at,
        data: draft.data,
    };
    let position: i64 = conn
        .prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'feed' RETURNING value")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(unavailable)?;
    conn.prepare_cached(
        "INSERT INTO order_events (tenant_id, order_id, sequence, id, type, actor, at, data, feed_seq, bulk)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant,
            order_id,
            last + 1,
            event.id.to_string(),
            event.event_type.as_str(),
            serde_json::to_string(&event.actor).unwrap_or_default(),
            event.at.unix_millis(),
            event.data.to_string(),
            position,
            bulk,
        ])
    })
    .map_err(unavailable)?;
    Ok(event)
}

/// Before an order changes, gives its latest event the order as the API
/// showed it until now (the row's rendering), which the event has shared
/// with the row so far. A new order thus costs no second copy of itself.
fn keep_snapshot(conn: &Connection, order: &Order) -> Result<()> {
    conn.prepare_cached(KEEP_SNAPSHOT)
        .and_then(|mut s| s.execute(params![order.tenant_id.to_string(), order.id.to_string()]))
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn insert(
    conn: &Connection,
    record: NewOrderRecord,
    stored: Stored,
    renderer: Renderer,
) -> Result<Inserted> {
    let order = record.order;
    let scope = Scope::tenant(order.tenant_id);
    let tenant = order.tenant_id.to_string();
    if let Some(claim) = &record.idempotency {
        let found = conn
            .prepare_cached("SELECT fingerprint, status, body, order_id FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2")
            .and_then(|mut s| {
                s.query_row(params![tenant, claim.key], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, String>(3)?))
                })
                .optional()
            })
            .map_err(unavailable)?;
        if let Some((fingerprint, status, body, order_id)) = found {
            if fingerprint != claim.fingerprint {
                return Ok(Inserted::KeyReused {
                    key: claim.key.clone(),
                });
            }
            return Ok(Inserted::Replayed(StoredResponse {
                status: u16::try_from(status).map_err(corrupt)?,
                body,
                order_id: order_id.parse().map_err(corrupt)?,
            }));
        }
    }
    for (ns, value) in &order.external_ids {
        if let Some(existing) = order_with_external_id(conn, &scope, ns, value)? {
            return Ok(Inserted::ExternalIdTaken {
                namespace: ns.clone(),
                value: value.clone(),
                existing: Box::new(existing),
            });
        }
    }
    // Checked before anything is written, like the rest.
    let held = if order.reserved.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let skus: Vec<_> = order.reserved.keys().cloned().collect();
        let products = super::products::of_skus(conn, order.tenant_id, &skus)?;
        crate::reserve_new(&order, products, &record.actor)?
    };
    super::promotions::check_claims(conn, &order, &[])?;
    insert_row(conn, &order, stored, renderer)?;
    super::products::save(conn, &held.0, &held.1)?;
    super::promotions::claim(conn, &order, &[])?;
    sync_external_ids(conn, &order, &ExternalIds::new())?;
    let bulk = order.batch_id.is_some();
    let event = append_event(conn, &order, &record.actor, record.event, true, bulk)?;
    if record.notify {
        for job in crate::message_jobs(&order, std::slice::from_ref(&event)) {
            super::jobs::schedule(conn, &job)?;
        }
    }
    if let Some(claim) = record.idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, body, order_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                claim.key,
                &claim.fingerprint[..],
                claim.response.status,
                claim.response.body,
                order.id.to_string(),
                claim.at.unix_millis()
            ])
        })
        .map_err(unavailable)?;
    }
    Ok(Inserted::Created(Box::new(order)))
}

/// Claims the transaction ids of the payments a change recorded (those
/// after the first `before`), refusing one the tenant already has before
/// anything is written.
fn claim_transactions(conn: &Connection, order: &Order, before: usize) -> Result<()> {
    let claims = crate::new_transactions(order, before);
    if claims.is_empty() {
        return Ok(());
    }
    let tenant = order.tenant_id.to_string();
    for (transaction_id, _) in &claims {
        let taken = conn
            .prepare_cached(
                "SELECT 1 FROM payment_transactions WHERE tenant_id = ?1 AND transaction_id = ?2",
            )
            .and_then(|mut s| s.exists(params![tenant, transaction_id]))
            .map_err(unavailable)?;
        if taken {
            return Err(StoreError::Conflict {
                field: "transaction_id".into(),
                value: (*transaction_id).to_string(),
            });
        }
    }
    let id = order.id.to_string();
    for (transaction_id, payment_id) in claims {
        conn.prepare_cached("INSERT INTO payment_transactions (tenant_id, transaction_id, order_id, payment_id) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![tenant, transaction_id, id, payment_id.to_string()]))
            .map_err(unavailable)?;
    }
    Ok(())
}

fn apply_change(
    conn: &Connection,
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
    let before = indexed(&order);
    let promotions = crate::promotions::held(&order);
    let skus = change.stock_skus(&order);
    let products = super::products::of_skus(conn, order.tenant_id, &skus)?;
    let Some((drafts, products, movements)) =
        crate::run_change(&mut order, change, products, actor)?
    else {
        return Ok(Changed { order, event: None });
    };
    // An import's edit gives the order its batch id.
    let bulk = order.batch_id.is_some() && order.batch_id != batch_before;
    if order.external_ids != previous_ids {
        check_external_ids(conn, &order, &previous_ids)?;
    }
    super::promotions::check_claims(conn, &order, &promotions)?;
    claim_transactions(conn, &order, payments)?;
    super::promotions::claim(conn, &order, &promotions)?;
    index_shipments(conn, &order, shipments)?;
    for job in crate::provider_jobs(&order, payments, refunds) {
        super::jobs::schedule(conn, &job)?;
    }
    super::products::save(conn, &products, &movements)?;
    let stored = Stored::of(&order, renderer, None)?;
    keep_snapshot(conn, &order)?;
    update_row(conn, &order, &before, stored, renderer)?;
    if order.external_ids != previous_ids {
        sync_external_ids(conn, &order, &previous_ids)?;
    }
    let mut appended = Vec::with_capacity(drafts.len());
    for draft in drafts {
        appended.push(append_event(conn, &order, actor, draft, false, bulk)?);
    }
    if notify {
        for job in crate::message_jobs(&order, &appended) {
            super::jobs::schedule(conn, &job)?;
        }
    }
    let event = appended.into_iter().next();
    Ok(Changed { order, event })
}

/// Records which order each new shipment belongs to, so that it can be
/// found by its id alone.
fn index_shipments(conn: &Connection, order: &Order, before: usize) -> Result<()> {
    for id in crate::new_shipments(order, before) {
        conn.prepare_cached(
            "INSERT INTO order_shipments (tenant_id, id, order_id) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| {
            s.execute(params![
                order.tenant_id.to_string(),
                id.to_string(),
                order.id.to_string()
            ])
        })
        .map_err(unavailable)?;
    }
    Ok(())
}

pub(super) fn put(
    conn: &Connection,
    scope: &Scope,
    key: &(Namespace, String),
    record: NewOrderRecord,
    stored: Stored,
    change: OrderChange,
    renderer: Renderer,
) -> Result<Put> {
    let Some(existing) = order_with_external_id(conn, scope, &key.0, &key.1)? else {
        let actor = record.actor.clone();
        return match insert(
            conn,
            NewOrderRecord {
                idempotency: None,
                actor,
                ..record
            },
            stored,
            renderer,
        )? {
            Inserted::Created(order) => Ok(Put::Created(order)),
            Inserted::ExternalIdTaken {
                namespace, value, ..
            } => Err(StoreError::Conflict {
                field: format!("external_ids.{namespace}"),
                value,
            }),
            Inserted::Replayed(_) | Inserted::KeyReused { .. } => {
                Err(corrupt("idempotency without a key"))
            }
        };
    };
    if !scope.allows(&existing) {
        // Another creator's order: the identifier is taken, and nothing more is said.
        return Err(StoreError::Conflict {
            field: format!("external_ids.{}", key.0),
            value: key.1.clone(),
        });
    }
    let changed = apply_change(conn, existing, &record.actor, change, renderer)?;
    Ok(match changed.event {
        Some(_) => Put::Updated(Box::new(changed.order)),
        None => Put::Unchanged(Box::new(changed.order)),
    })
}

pub(super) fn find(
    conn: &Connection,
    scope: &Scope,
    lookup: &OrderLookup,
) -> Result<Option<Order>> {
    let tenant = scope.tenant_id.to_string();
    let body: Option<String> = match lookup {
        OrderLookup::Id(id) => conn
            .prepare_cached("SELECT body FROM orders WHERE tenant_id = ?1 AND id = ?2")
            .and_then(|mut s| {
                s.query_row(params![tenant, id.to_string()], |r| r.get(0))
                    .optional()
            }),
        OrderLookup::Reference(reference) => conn
            .prepare_cached("SELECT body FROM orders WHERE tenant_id = ?1 AND reference_seq = ?2")
            .and_then(|mut s| {
                s.query_row(params![tenant, sequence_of(reference, scope)], |r| r.get(0))
                    .optional()
            }),
        OrderLookup::External(ns, value) => {
            return Ok(order_with_external_id(conn, scope, ns, value)?.filter(|o| scope.allows(o)))
        }
        OrderLookup::Shipment(id) => conn
            .prepare_cached(
                "SELECT body FROM orders WHERE tenant_id = ?1 AND id =
                   (SELECT order_id FROM order_shipments WHERE tenant_id = ?1 AND id = ?2)",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant, id.to_string()], |r| r.get(0))
                    .optional()
            }),
    }
    .map_err(unavailable)?;
    Ok(body
        .map(|b| parse_order(&b, scope))
        .transpose()?
        .filter(|o| scope.allows(o)))
}

/// Appends `drafts` to order `id`'s timeline at `at`, the order unchanged:
/// its latest event first keeps the rendering it shared with the row.
pub(super) fn append_events(
    conn: &Connection,
    scope: &Scope,
    id: OrderId,
    actor: &Actor,
    at: Timestamp,
    drafts: Vec<EventDraft>,
) -> Result<Vec<OrderEvent>> {
    let mut order = find(conn, scope, &OrderLookup::Id(id))?.ok_or(StoreError::NotFound)?;
    keep_snapshot(conn, &order)?;
    // Events are stamped with the order's time; these happen later.
    order.updated_at = at.max(order.updated_at);
    drafts
        .into_iter()
        .map(|draft| append_event(conn, &order, actor, draft, false, false))
        .collect()
}

pub(super) fn change(
    conn: &Connection,
    scope: &Scope,
    lookup: &OrderLookup,
    expected_version: Option<u64>,
    actor: &Actor,
    change: OrderChange,
    renderer: Renderer,
) -> Result<Changed> {
    let order = find(conn, scope, lookup)?.ok_or(StoreError::NotFound)?;
    if let Some(expected) = expected_version {
        if order.version != expected {
            return Err(StoreError::VersionMismatch {
                expected,
                current: order.version,
            });
        }
    }
    apply_change(conn, order, actor, change, renderer)
}

pub(super) fn values(args: Vec<Arg>) -> Vec<Value> {
    args.into_iter()
        .map(|a| match a {
            Arg::Text(s) => Value::Text(s),
            Arg::Int(i) => Value::Integer(i),
        })
        .collect()
}

const RENDERED: &str = "id, version, updated_at, total, api_version, api, created_by";

type RenderedRow = (String, i64, i64, i64, i64, Vec<u8>, String);

fn rendered_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RenderedRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

/// A stored rendering, or a fresh one when it was made by an older renderer.
fn rendered(
    conn: &Connection,
    scope: &Scope,
    row: RenderedRow,
    renderer: Renderer,
) -> Result<RenderedOrder> {
    let (id, version, updated_at, total, api_version, api, _) = row;
    let id: OrderId = id.parse().map_err(corrupt)?;
    if api_version == i64::from(renderer.version) {
        return Ok(RenderedOrder {
            id,
            version: u64::try_from(version).map_err(corrupt)?,
            updated_at: Timestamp::from_unix_millis(updated_at),
            total,
            json: api,
        });
    }
    // Rendered by an older renderer: render the order afresh, and take the
    // version from the order read, so ETag and body agree.
    let order = find(conn, scope, &OrderLookup::Id(id))?.ok_or(StoreError::NotFound)?;
    Ok(RenderedOrder {
        id,
        version: order.version,
        updated_at: order.updated_at,
        total: order.total,
        json: (renderer.render)(&order),
    })
}

pub(super) fn list_rendered(
    conn: &Connection,
    scope: &Scope,
    query: &OrderQuery,
    renderer: Renderer,
) -> Result<Vec<RenderedOrder>> {
    let sql = query::page(query::SQLITE, scope, query, RENDERED);
    let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
    let rows = stmt
        .query_map(params_from_iter(values(sql.args)), rendered_row)
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|row| rendered(conn, scope, row, renderer))
        .collect()
}

pub(super) fn find_rendered(
    conn: &Connection,
    scope: &Scope,
    lookup: &OrderLookup,
    renderer: Renderer,
) -> Result<Option<RenderedOrder>> {
    let tenant = scope.tenant_id.to_string();
    let row = match lookup {
        OrderLookup::Id(id) => conn
            .prepare_cached(&format!("SELECT {RENDERED} FROM orders WHERE tenant_id = ?1 AND id = ?2"))
            .and_then(|mut s| s.query_row(params![tenant, id.to_string()], rendered_row).optional()),
        OrderLookup::Reference(reference) => conn
            .prepare_cached(&format!("SELECT {RENDERED} FROM orders WHERE tenant_id = ?1 AND reference_seq = ?2"))
            .and_then(|mut s| s.query_row(params![tenant, sequence_of(reference, scope)], rendered_row).optional()),
        OrderLookup::External(ns, value) => conn
            .prepare_cached(&format!(
                "SELECT {RENDERED} FROM orders WHERE tenant_id = ?1 AND id =
                   (SELECT order_id FROM order_external_ids WHERE tenant_id = ?1 AND namespace = ?2 AND value = ?3)"
            ))
            .and_then(|mut s| s.query_row(params![tenant, ns.as_str(), value], rendered_row).optional()),
        OrderLookup::Shipment(id) => conn
            .prepare_cached(&format!(
                "SELECT {RENDERED} FROM orders WHERE tenant_id = ?1 AND id =
                   (SELECT order_id FROM order_shipments WHERE tenant_id = ?1 AND id = ?2)"
            ))
            .and_then(|mut s| s.query_row(params![tenant, id.to_string()], rendered_row).optional()),
    }
    .map_err(unavailable)?;
    let Some(row) = row else { return Ok(None) };
    // A vendor sees only the orders it created.
    if scope.creator.as_ref().is_some_and(|c| *c != row.6) {
        return Ok(None);
    }
    rendered(conn, scope, row, renderer).map(Some)
}

pub(super) fn count(conn: &Connection, scope: &Scope, filter: &OrderFilter) -> Result<u64> {
    let sql = query::count(query::SQLITE, scope, filter);
    let n: i64 = conn
        .prepare_cached(&sql.text)
        .and_then(|mut s| s.query_row(params_from_iter(values(sql.args)), |r| r.get(0)))
        .map_err(unavailable)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn overview(
    conn: &Connection,
    scope: &Scope,
    since: Option<Timestamp>,
) -> Result<Overview> {
    let sql = query::stage_counts(query::SQLITE, scope);
    let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
    let rows = stmt
        .query_map(params_from_iter(values(sql.args)), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    let mut stages = Vec::with_capacity(rows.len());
    for (stage, n) in rows {
        let stage =
            Stage::parse(&stage).ok_or_else(|| corrupt(format!("unknown stage {stage}")))?;
        stages.push((stage, u64::try_from(n).unwrap_or(0)));
    }
    let Some(since) = since else {
        return Ok(Overview {
            stages,
            days: Vec::new(),
        });
    };
    let sql = query::daily_sales(query::SQLITE, scope, since);
    let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
    let days = stmt
        .query_map(params_from_iter(values(sql.args)), |r| {
            Ok(DaySales {
                day: r.get(0)?,
                currency: r.get(1)?,
                orders: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                total: r.get(3)?,
            })
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    Ok(Overview { stages, days })
}

pub(super) fn events(conn: &Connection, scope: &Scope, id: OrderId) -> Result<Vec<OrderEvent>> {
    if find(conn, scope, &OrderLookup::Id(id))?.is_none() {
        return Err(StoreError::NotFound);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, sequence, type, actor, at, data FROM order_events WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY sequence",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(params![scope.tenant_id.to_string(), id.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(eid, seq, kind, actor, at, data)| {
            Ok(OrderEvent {
                id: eid.parse().map_err(corrupt)?,
                order_id: id,
                sequence: u64::try_from(seq).map_err(corrupt)?,
                event_type: EventType::parse(&kind)
                    .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
                actor: serde_json::from_str(&actor).map_err(corrupt)?,
                at: Timestamp::from_unix_millis(at),
                data: serde_json::from_str(&data).map_err(corrupt)?,
            })
        })
        .collect()
}

pub(super) fn prune_idempotency_keys(conn: &Connection, before: Timestamp) -> Result<u64> {
    let tenants: Vec<String> = conn
        .prepare_cached("SELECT id FROM tenants")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(unavailable)?;
    let mut removed = 0;
    for tenant in tenants {
        removed += conn
            .prepare_cached("DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND created_at < ?2")
            .and_then(|mut s| s.execute(params![tenant, before.unix_millis()]))
            .map_err(unavailable)?;
        // Provider webhooks are remembered as long: a later repeat is
        // still harmless (an ended entry never moves).
        conn.prepare_cached(
            "DELETE FROM provider_events WHERE tenant_id = ?1 AND received_at < ?2",
        )
        .and_then(|mut s| s.execute(params![tenant, before.unix_millis()]))
        .map_err(unavailable)?;
    }
    Ok(removed as u64)
}

pub(super) fn provider_event(
    conn: &Connection,
    tenant: ordo_domain::TenantId,
    event_id: &str,
) -> Result<Option<String>> {
    conn.prepare_cached(
        "SELECT outcome FROM provider_events WHERE tenant_id = ?1 AND event_id = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![tenant.to_string(), event_id], |r| r.get(0))
            .optional()
    })
    .map_err(unavailable)
}

pub(super) fn record_provider_event(
    conn: &Connection,
    tenant: ordo_domain::TenantId,
    event_id: &str,
    order: OrderId,
    outcome: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO provider_events (tenant_id, event_id, order_id, outcome, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.to_string(),
            event_id,
            order.to_string(),
            outcome,
            Timestamp::now().unix_millis()
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn lapsed_reservations(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<(ordo_domain::TenantId, OrderId)>> {
    conn.prepare_cached(
        "SELECT tenant_id, id FROM orders
          WHERE status = 'pending' AND json_extract(body, '$.reserved_until') IS NOT NULL
            AND json_extract(body, '$.reserved_until') <= ?1
          LIMIT ?2",
    )
    .and_then(|mut s| {
        s.query_map(params![now.to_rfc3339(), limit], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(unavailable)?
    .into_iter()
    .map(|(t, o)| Ok((t.parse().map_err(corrupt)?, o.parse().map_err(corrupt)?)))
    .collect()
}

/// The fingerprint and response kept for an idempotency key.
pub(super) fn idempotent_response(
    conn: &Connection,
    tenant: ordo_domain::TenantId,
    key: &str,
) -> Result<Option<([u8; 32], StoredResponse)>> {
    let found = conn
        .prepare_cached("SELECT fingerprint, status, body, order_id FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.to_string(), key], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, String>(3)?))
            })
            .optional()
        })
        .map_err(unavailable)?;
    found
        .map(|(fingerprint, status, body, order_id)| {
            Ok((
                <[u8; 32]>::try_from(fingerprint.as_slice()).map_err(corrupt)?,
                StoredResponse {
                    status: u16::try_from(status).map_err(corrupt)?,
                    body,
                    order_id: order_id.parse().map_err(corrupt)?,
                },
            ))
        })
        .transpose()
}
