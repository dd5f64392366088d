//! Webhook endpoints on PostgreSQL.

use ordo_domain::{
    EventType, TenantId, Timestamp, WebhookDeliveryId, WebhookEndpoint, WebhookEndpointId,
    WebhookSecret, WebhookUrl,
};
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use super::{corrupt, db_error, Db};
use crate::fanout;
use crate::{DeliveryAttempt, DeliveryQuery, DeliveryStatus, Result, StoreError, WebhookDelivery};

const COLUMNS: &str =
    "tenant_id, id, url, description, event_types, active, secret, previous_secret,
    previous_secret_expires_at, created_at, updated_at, disabled_at, disabled_reason";

pub(super) async fn save(db: &Db, e: &WebhookEndpoint, new: bool) -> Result<()> {
    let sql = if new {
        format!("INSERT INTO webhook_endpoints ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
    } else {
        "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, active = $6, secret = $7,
             previous_secret = $8, previous_secret_expires_at = $9, created_at = $10, updated_at = $11,
             disabled_at = $12, disabled_reason = $13
         WHERE tenant_id = $1 AND id = $2"
            .to_string()
    };
    let stmt = db.prepare_cached(&sql).await.map_err(db_error)?;
    let types: Vec<&str> = e.event_types.iter().map(|t| t.as_str()).collect();
    let changed = db
        .execute(
            &stmt,
            &[
                &e.tenant_id.to_string(),
                &e.id.to_string(),
                &e.url.as_str(),
                &e.description,
                &types,
                &e.active,
                &e.secret.expose(),
                &e.previous_secret.as_ref().map(|(s, _)| s.expose()),
                &e.previous_secret.as_ref().map(|(_, t)| t.unix_millis()),
                &e.created_at.unix_millis(),
                &e.updated_at.unix_millis(),
                &e.disabled.as_ref().map(|(t, _)| t.unix_millis()),
                &e.disabled.as_ref().map(|(_, r)| r.as_str()),
            ],
        )
        .await
        .map_err(db_error)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn endpoint(r: &Row) -> Result<WebhookEndpoint> {
    let types: Vec<&str> = r.get(4);
    let previous: Option<String> = r.get(7);
    let previous_until: Option<i64> = r.get(8);
    let disabled_at: Option<i64> = r.get(11);
    let disabled_reason: Option<String> = r.get(12);
    Ok(WebhookEndpoint {
        tenant_id: r.get::<_, &str>(0).parse().map_err(corrupt)?,
        id: r.get::<_, &str>(1).parse().map_err(corrupt)?,
        url: WebhookUrl::from_stored(r.get(2)),
        description: r.get(3),
        event_types: types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| corrupt(format!("unknown event type {t}"))))
            .collect::<Result<_>>()?,
        active: r.get(5),
        secret: WebhookSecret::from_stored(r.get(6)),
        previous_secret: previous.zip(previous_until).map(|(s, t)| {
            (
                WebhookSecret::from_stored(s),
                Timestamp::from_unix_millis(t),
            )
        }),
        created_at: Timestamp::from_unix_millis(r.get(9)),
        updated_at: Timestamp::from_unix_millis(r.get(10)),
        disabled: disabled_at
            .zip(disabled_reason)
            .map(|(t, why)| (Timestamp::from_unix_millis(t), why)),
    })
}

/// The tenant's endpoints, or the one with `id`.
pub(super) async fn list(
    db: &Db,
    tenant: TenantId,
    id: Option<WebhookEndpointId>,
) -> Result<Vec<WebhookEndpoint>> {
    let rows = match id {
        Some(id) => {
            let stmt = db
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
                ))
                .await
                .map_err(db_error)?;
            db.query(&stmt, &[&tenant.to_string(), &id.to_string()])
                .await
        }
        None => {
            let stmt = db
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY id"
                ))
                .await
                .map_err(db_error)?;
            db.query(&stmt, &[&tenant.to_string()]).await
        }
    }
    .map_err(db_error)?;
    rows.iter().map(endpoint).collect()
}

pub(super) async fn delete(db: &Db, tenant: TenantId, id: WebhookEndpointId) -> Result<bool> {
    let stmt = db
        .prepare_cached("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .await
        .map_err(db_error)?;
    db.execute(&stmt, &[&tenant.to_string(), &id.to_string()])
        .await
        .map(|n| n == 1)
        .map_err(db_error)
}

/// Held by the node fanning events out. ("fout" in ASCII.)
const FAN_OUT_LOCK: i64 = 0x666f_7574;

/// Whether some tenant with an endpoint has events past its
/// fan-out cursor (a read, so an idle pass does not write).
async fn fan_out_pending(db: &Db) -> Result<bool> {
    let stmt = db
        .prepare_cached(
            "SELECT EXISTS (
                 SELECT 1 FROM (SELECT DISTINCT tenant_id FROM webhook_endpoints) t
                  WHERE (SELECT MAX(feed_seq) FROM order_events e WHERE e.tenant_id = t.tenant_id)
                        > COALESCE((SELECT position FROM feed_cursors c
                                     WHERE c.tenant_id = t.tenant_id AND c.name = $1), 0))",
        )
        .await
        .map_err(db_error)?;
    Ok(db
        .query_one(&stmt, &[&fanout::CURSOR])
        .await
        .map_err(db_error)?
        .get(0))
}

/// The fan-out pass: one node at a time (an advisory lock held by its
/// transaction), each tenant's deliveries, jobs and cursor in one commit.
pub(super) async fn fan_out(db: &mut Db, limit: u32, now: Timestamp) -> Result<u64> {
    if !fan_out_pending(db).await? {
        return Ok(0);
    }
    let tx = db.transaction().await.map_err(db_error)?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&FAN_OUT_LOCK])
        .await
        .map_err(db_error)?
        .get(0);
    if !locked {
        return Ok(0);
    }
    let endpoints = tx
        .query(
            &format!("SELECT {COLUMNS} FROM webhook_endpoints ORDER BY tenant_id, id"),
            &[],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(endpoint)
        .collect::<Result<Vec<_>>>()?;
    let mut made = 0;
    for group in endpoints.chunk_by(|a, b| a.tenant_id == b.tenant_id) {
        made += fan_out_tenant(&tx, group, limit, now).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(made)
}

async fn fan_out_tenant(
    tx: &deadpool_postgres::Transaction<'_>,
    endpoints: &[WebhookEndpoint],
    limit: u32,
    now: Timestamp,
) -> Result<u64> {
    let tenant = endpoints[0].tenant_id.to_string();
    let cursor: i64 = tx
        .query_opt(
            "SELECT position FROM feed_cursors WHERE tenant_id = $1 AND name = $2",
            &[&tenant, &fanout::CURSOR],
        )
        .await
        .map_err(db_error)?
        .map_or(0, |r| r.get(0));
    let events = tx
        .query(
            "SELECT feed_seq, id, order_id, sequence, type, at FROM order_events
              WHERE tenant_id = $1 AND feed_seq > $2 ORDER BY feed_seq LIMIT $3",
            &[&tenant, &cursor, &i64::from(limit)],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            let kind: &str = r.get(4);
            Ok(fanout::FedEvent {
                position: u64::try_from(r.get::<_, i64>(0)).map_err(corrupt)?,
                id: r.get::<_, &str>(1).parse().map_err(corrupt)?,
                order_id: r.get::<_, &str>(2).parse().map_err(corrupt)?,
                sequence: u64::try_from(r.get::<_, i64>(3)).map_err(corrupt)?,
                event_type: EventType::parse(kind)
                    .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
                at: Timestamp::from_unix_millis(r.get(5)),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(0);
    };
    let planned = fanout::plan(endpoints, &events, now);
    if !planned.is_empty() {
        let ids: Vec<String> = planned.iter().map(|d| d.id.to_string()).collect();
        let endpoint_ids: Vec<String> = planned.iter().map(|d| d.endpoint_id.to_string()).collect();
        let event_ids: Vec<String> = planned.iter().map(|d| d.event.id.to_string()).collect();
        let orders: Vec<String> = planned
            .iter()
            .map(|d| d.event.order_id.to_string())
            .collect();
        let sequences: Vec<i64> = planned
            .iter()
            .map(|d| i64::try_from(d.event.sequence).unwrap_or(i64::MAX))
            .collect();
        let positions: Vec<i64> = planned
            .iter()
            .map(|d| i64::try_from(d.event.position).unwrap_or(i64::MAX))
            .collect();
        let kinds: Vec<&str> = planned
            .iter()
            .map(|d| d.event.event_type.as_str())
            .collect();
        let payloads: Vec<Json<&serde_json::Value>> =
            planned.iter().map(|d| Json(&d.job.payload)).collect();
        let at = now.unix_millis();
        tx.execute(
            "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, order_id, event_sequence,
                                             feed_seq, event_type, status, created_at, updated_at)
             SELECT $1, d.id, d.endpoint_id, d.event_id, d.order_id, d.seq, d.pos, d.kind, 'pending', $9, $9
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[])
                 AS d (id, endpoint_id, event_id, order_id, seq, pos, kind)",
            &[&tenant, &ids, &endpoint_ids, &event_ids, &orders, &sequences, &positions, &kinds, &at],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "INSERT INTO jobs (tenant_id, key, kind, payload, run_at, created_at)
             SELECT $1, j.key, $2, j.payload, $4, $4 FROM unnest($3::text[], $5::jsonb[]) AS j (key, payload)
             ON CONFLICT DO NOTHING",
            &[&tenant, &fanout::DELIVER_WEBHOOK, &ids, &at, &payloads],
        )
        .await
        .map_err(db_error)?;
    }
    tx.execute(
        "INSERT INTO feed_cursors (tenant_id, name, position) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, name) DO UPDATE SET position = excluded.position",
        &[
            &tenant,
            &fanout::CURSOR,
            &i64::try_from(last).unwrap_or(i64::MAX),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(planned.len() as u64)
}

pub(super) async fn deliveries(
    db: &Db,
    tenant: TenantId,
    q: &DeliveryQuery,
    id: Option<WebhookDeliveryId>,
) -> Result<Vec<WebhookDelivery>> {
    let sql = crate::query::deliveries(crate::query::POSTGRES, tenant, q, id);
    super::orders::query(db, &sql)
        .await?
        .iter()
        .map(|r| {
            let kind: &str = r.get(7);
            let status: &str = r.get(8);
            Ok(WebhookDelivery {
                tenant_id: r.get::<_, &str>(0).parse().map_err(corrupt)?,
                id: r.get::<_, &str>(1).parse().map_err(corrupt)?,
                endpoint_id: r.get::<_, &str>(2).parse().map_err(corrupt)?,
                event_id: r.get::<_, &str>(3).parse().map_err(corrupt)?,
                order_id: r.get::<_, &str>(4).parse().map_err(corrupt)?,
                event_sequence: u64::try_from(r.get::<_, i64>(5)).map_err(corrupt)?,
                position: u64::try_from(r.get::<_, i64>(6)).map_err(corrupt)?,
                event_type: EventType::parse(kind)
                    .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
                status: DeliveryStatus::parse(status)
                    .ok_or_else(|| corrupt(format!("unknown delivery status {status}")))?,
                attempts: u32::try_from(r.get::<_, i32>(9)).map_err(corrupt)?,
                created_at: Timestamp::from_unix_millis(r.get(10)),
                updated_at: Timestamp::from_unix_millis(r.get(11)),
                last_status_code: r
                    .get::<_, Option<i16>>(12)
                    .and_then(|c| u16::try_from(c).ok()),
                last_error: r.get(13),
            })
        })
        .collect()
}

pub(super) async fn record_attempt(
    db: &Db,
    tenant: TenantId,
    id: WebhookDeliveryId,
    attempt: &DeliveryAttempt,
    status: DeliveryStatus,
) -> Result<()> {
    let stmt = db
        .prepare_cached(
            "WITH delivery AS (
                 UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, updated_at = $4,
                        last_status_code = $5, last_error = $6
                  WHERE tenant_id = $1 AND id = $2
                 RETURNING attempts)
             INSERT INTO webhook_attempts (tenant_id, delivery_id, number, at, status_code, latency_ms, error, response_excerpt)
             SELECT $1, $2, attempts, $4, $5, $7, $6, $8 FROM delivery",
        )
        .await
        .map_err(db_error)?;
    let code = attempt
        .status_code
        .map(|c| i16::try_from(c).unwrap_or(i16::MAX));
    let changed = db
        .execute(
            &stmt,
            &[
                &tenant.to_string(),
                &id.to_string(),
                &status.as_str(),
                &attempt.at.unix_millis(),
                &code,
                &attempt.error,
                &i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
                &attempt.response_excerpt,
            ],
        )
        .await
        .map_err(db_error)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) async fn attempts(
    db: &Db,
    tenant: TenantId,
    id: WebhookDeliveryId,
) -> Result<Vec<(u32, DeliveryAttempt)>> {
    let stmt = db
        .prepare_cached(
            "SELECT number, at, status_code, latency_ms, error, response_excerpt FROM webhook_attempts
              WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY number",
        )
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[&tenant.to_string(), &id.to_string()])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| {
            Ok((
                u32::try_from(r.get::<_, i32>(0)).map_err(corrupt)?,
                DeliveryAttempt {
                    at: Timestamp::from_unix_millis(r.get(1)),
                    status_code: r
                        .get::<_, Option<i16>>(2)
                        .and_then(|c| u16::try_from(c).ok()),
                    latency_ms: u64::try_from(r.get::<_, i64>(3)).map_err(corrupt)?,
                    error: r.get(4),
                    response_excerpt: r.get(5),
                },
            ))
        })
        .collect()
}

pub(super) async fn retry(
    db: &mut Db,
    tenant: TenantId,
    id: WebhookDeliveryId,
    now: Timestamp,
) -> Result<Option<WebhookDelivery>> {
    let tx = db.transaction().await.map_err(db_error)?;
    let changed = tx
        .execute(
            "UPDATE webhook_deliveries SET status = 'pending', updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            &[&tenant.to_string(), &id.to_string(), &now.unix_millis()],
        )
        .await
        .map_err(db_error)?;
    if changed == 0 {
        return Ok(None);
    }
    // A new job, or the old one revived with a fresh maximum age (a live
    // claim is left alone; its attempt ends as it ends).
    tx.execute(
        "INSERT INTO jobs (tenant_id, key, kind, payload, run_at, created_at) VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (tenant_id, key) DO UPDATE SET status = 'queued', run_at = excluded.run_at,
             created_at = excluded.created_at, attempts = 0",
        &[
            &tenant.to_string(),
            &id.to_string(),
            &fanout::DELIVER_WEBHOOK,
            &Json(serde_json::json!({ "delivery_id": id.to_string() })),
            &now.unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(deliveries(db, tenant, &DeliveryQuery::default(), Some(id))
        .await?
        .pop())
}

pub(super) async fn succeeded_since(
    db: &Db,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    since: Timestamp,
) -> Result<bool> {
    let stmt = db
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2
                  AND status = 'succeeded' AND updated_at >= $3)",
        )
        .await
        .map_err(db_error)?;
    Ok(db
        .query_one(
            &stmt,
            &[
                &tenant.to_string(),
                &endpoint.to_string(),
                &since.unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?
        .get(0))
}

pub(super) async fn retry_many(
    db: &mut Db,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    statuses: &[DeliveryStatus],
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    now: Timestamp,
) -> Result<u64> {
    let wanted: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let tx = db.transaction().await.map_err(db_error)?;
    let ids: Vec<String> = tx
        .query(
            "UPDATE webhook_deliveries SET status = 'pending', updated_at = $6
              WHERE tenant_id = $1 AND endpoint_id = $2 AND status = ANY($3)
                AND ($4::bigint IS NULL OR created_at >= $4) AND ($5::bigint IS NULL OR created_at < $5)
             RETURNING id",
            &[
                &tenant.to_string(),
                &endpoint.to_string(),
                &wanted,
                &from.map(Timestamp::unix_millis),
                &to.map(Timestamp::unix_millis),
                &now.unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let payloads: Vec<Json<serde_json::Value>> = ids
        .iter()
        .map(|id| Json(serde_json::json!({ "delivery_id": id })))
        .collect();
    tx.execute(
        "INSERT INTO jobs (tenant_id, key, kind, payload, run_at, created_at)
         SELECT $1, j.key, $2, j.payload, $4, $4 FROM unnest($3::text[], $5::jsonb[]) AS j (key, payload)
         ON CONFLICT (tenant_id, key) DO UPDATE SET status = 'queued', run_at = excluded.run_at,
             created_at = excluded.created_at, attempts = 0",
        &[&tenant.to_string(), &fanout::DELIVER_WEBHOOK, &ids, &now.unix_millis(), &payloads],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(ids.len() as u64)
}
