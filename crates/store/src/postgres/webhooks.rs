//! Webhook endpoints on PostgreSQL.

use ordo_domain::{
    EventType, TenantId, Timestamp, WebhookDeliveryId, WebhookEndpoint, WebhookEndpointId,
    WebhookSecret, WebhookUrl,
};
use std::sync::LazyLock;

use tokio_postgres::Row;

use super::{corrupt, db_error, Db};
use crate::fanout;
use crate::{
    DeliveryAttempt, DeliveryQuery, DeliveryStatus, FinishedDelivery, Job, JobClaim, Outgoing,
    Result, StoreError, WebhookDelivery,
};

const COLUMNS: &str =
    "tenant_id, id, url, description, event_types, active, secret, previous_secret,
    previous_secret_expires_at, created_at, updated_at, disabled_at, disabled_reason";

pub(super) async fn save(db: &mut Db, e: &WebhookEndpoint, new: bool) -> Result<()> {
    let tx = db.transaction().await.map_err(db_error)?;
    let sql = if new {
        format!("INSERT INTO webhook_endpoints ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
    } else {
        "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, active = $6, secret = $7,
             previous_secret = $8, previous_secret_expires_at = $9, created_at = $10, updated_at = $11,
             disabled_at = $12, disabled_reason = $13
         WHERE tenant_id = $1 AND id = $2"
            .to_string()
    };
    let stmt = tx.prepare_cached(&sql).await.map_err(db_error)?;
    let types: Vec<&str> = e.event_types.iter().map(|t| t.as_str()).collect();
    let changed = tx
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
    if new {
        tx.execute(
            START_CURSOR.as_str(),
            &[&e.tenant_id.to_string(), &fanout::CURSOR, &e.id.to_string()],
        )
        .await
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
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

/// [`crate::query::RETRY`] and [`crate::query::START_CURSOR`] with
/// PostgreSQL's placeholders, written once.
static RETRY: LazyLock<String> = LazyLock::new(|| crate::query::RETRY.replace('?', "$"));
static START_CURSOR: LazyLock<String> =
    LazyLock::new(|| crate::query::START_CURSOR.replace('?', "$"));

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
            "SELECT feed_seq, id, order_id, sequence, type, at, bulk FROM order_events
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
                bulk: r.get(6),
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
        let bulk: Vec<bool> = planned.iter().map(|d| d.event.bulk).collect();
        let at = now.unix_millis();
        tx.execute(
            "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, order_id, event_sequence,
                                             feed_seq, event_type, status, created_at, updated_at, run_at,
                                             retrying_since, bulk)
             SELECT $1, d.id, d.endpoint_id, d.event_id, d.order_id, d.seq, d.pos, d.kind, 'pending', $9, $9, $9, $9, d.bulk
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $10::boolean[])
                 AS d (id, endpoint_id, event_id, order_id, seq, pos, kind, bulk)",
            &[&tenant, &ids, &endpoint_ids, &event_ids, &orders, &sequences, &positions, &kinds, &at, &bulk],
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
        .map(delivery)
        .collect()
}

/// The delivery in a row's first [`crate::query::DELIVERY_COLUMNS`].
fn delivery(r: &Row) -> Result<WebhookDelivery> {
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
}

/// The claim statement (written once), and the column where its event's
/// [`crate::query::FEED_COLUMNS`] start: the delivery's columns, when its
/// maximum age started and its failures come first.
static CLAIM: LazyLock<(String, usize)> = LazyLock::new(|| {
    let columns: Vec<String> = crate::query::DELIVERY_COLUMNS
        .split(',')
        .map(|c| format!("d.{}", c.trim()))
        .collect();
    let sql = format!(
        "WITH d AS (
             UPDATE webhook_deliveries d SET claimed_by = $1, claim = $2, claimed_until = $3
               FROM (SELECT tenant_id, id FROM webhook_deliveries
                      WHERE bulk = $6 AND run_at <= $4 AND (claimed_until IS NULL OR claimed_until <= $4)
                      ORDER BY run_at LIMIT $5
                      FOR UPDATE SKIP LOCKED) due
              WHERE d.tenant_id = due.tenant_id AND d.id = due.id
             RETURNING d.*
         )
         SELECT {}, d.retrying_since, d.failures, {} FROM d
           LEFT JOIN order_events e ON e.tenant_id = d.tenant_id AND e.order_id = d.order_id
                 AND e.sequence = d.event_sequence AND e.id = d.event_id AND e.feed_seq IS NOT NULL
           LEFT JOIN orders o ON o.tenant_id = d.tenant_id AND o.id = d.order_id",
        columns.join(", "),
        crate::query::FEED_COLUMNS
    );
    (sql, columns.len() + 2)
});

/// Claims due deliveries, live ones first and then an import's (`bulk`)
/// for the rest of the batch: two range scans of the `(bulk, run_at)`
/// index, each stopping at the first delivery not yet due.
pub(super) async fn claim(db: &Db, c: &JobClaim) -> Result<Vec<Outgoing>> {
    let mut claimed = claim_lane(db, c, false).await?;
    let left = c
        .limit
        .saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
    if left > 0 {
        let rest = JobClaim {
            limit: left,
            ..c.clone()
        };
        claimed.extend(claim_lane(db, &rest, true).await?);
    }
    Ok(claimed)
}

/// Claims due deliveries of one lane (`FOR UPDATE SKIP LOCKED`: nodes
/// polling at once take different ones) and reads each with its event as
/// the feed shows it, in one statement.
async fn claim_lane(db: &Db, c: &JobClaim, bulk: bool) -> Result<Vec<Outgoing>> {
    let (sql, events_at) = &*CLAIM;
    let events_at = *events_at;
    let stmt = db.prepare_cached(sql).await.map_err(db_error)?;
    let token = ulid::Ulid::new().to_string();
    let until = c.now.plus_millis(c.lease_ms);
    db.query(
        &stmt,
        &[
            &c.node,
            &token,
            &until.unix_millis(),
            &c.now.unix_millis(),
            &i64::from(c.limit),
            &bulk,
        ],
    )
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        let delivery = delivery(r)?;
        let found = r.get::<_, Option<&str>>(events_at + 1).is_some();
        Ok(Outgoing {
            job: Job {
                tenant_id: Some(delivery.tenant_id),
                key: delivery.id.to_string(),
                kind: fanout::DELIVER_WEBHOOK.into(),
                payload: serde_json::Value::Null,
                created_at: Timestamp::from_unix_millis(r.get(events_at - 2)),
                attempts: u32::try_from(r.get::<_, i32>(events_at - 1)).map_err(corrupt)?,
                claim: token.clone(),
                claimed_until: until,
            },
            delivery,
            event: found
                .then(|| super::feed::event(r, events_at))
                .transpose()?,
        })
    })
    .collect()
}

/// Every attempt recorded, and each delivery whose claim still holds given
/// its status and next time, in one statement: one round trip, one commit
/// for a worker's whole batch. Returns the ids whose claim held.
const FINISH: &str = "WITH f AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int2[], $6::text[],
                         $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::int4[])
      AS f (tenant_id, id, status, at, code, error, latency, excerpt, claim, run_at, failed)
), held AS (
    UPDATE webhook_deliveries d SET status = f.status, attempts = d.attempts + 1, updated_at = f.at,
           last_status_code = f.code, last_error = f.error, run_at = f.run_at,
           failures = d.failures + f.failed, claimed_by = NULL, claim = NULL, claimed_until = NULL
      FROM f WHERE d.tenant_id = f.tenant_id AND d.id = f.id AND d.claim = f.claim
    RETURNING d.tenant_id, d.id, d.attempts
), lost AS (
    UPDATE webhook_deliveries d SET attempts = d.attempts + 1
      FROM f WHERE d.tenant_id = f.tenant_id AND d.id = f.id AND d.claim IS DISTINCT FROM f.claim
    RETURNING d.tenant_id, d.id, d.attempts
), a AS (
    INSERT INTO webhook_attempts (tenant_id, delivery_id, number, at, status_code, latency_ms, error,
                                  response_excerpt)
    SELECT d.tenant_id, d.id, d.attempts, f.at, f.code, f.latency, f.error, f.excerpt
      FROM (SELECT * FROM held UNION ALL SELECT * FROM lost) d
      JOIN f ON f.tenant_id = d.tenant_id AND f.id = d.id
)
SELECT id FROM held";

pub(super) async fn finish(db: &Db, finished: &[FinishedDelivery]) -> Result<Vec<bool>> {
    let stmt = db.prepare_cached(FINISH).await.map_err(db_error)?;
    let mut tenants = Vec::new();
    let mut ids = Vec::new();
    for f in finished {
        let (tenant, id) = crate::delivery_of(&f.job).ok_or(StoreError::NotFound)?;
        tenants.push(tenant.to_string());
        ids.push(id.to_string());
    }
    let statuses: Vec<&str> = finished.iter().map(|f| f.status.as_str()).collect();
    let at: Vec<i64> = finished
        .iter()
        .map(|f| f.attempt.at.unix_millis())
        .collect();
    let codes: Vec<Option<i16>> = finished
        .iter()
        .map(|f| {
            f.attempt
                .status_code
                .map(|c| i16::try_from(c).unwrap_or(i16::MAX))
        })
        .collect();
    let errors: Vec<Option<&str>> = finished
        .iter()
        .map(|f| f.attempt.error.as_deref())
        .collect();
    let latencies: Vec<i64> = finished
        .iter()
        .map(|f| i64::try_from(f.attempt.latency_ms).unwrap_or(i64::MAX))
        .collect();
    let excerpts: Vec<Option<&str>> = finished
        .iter()
        .map(|f| f.attempt.response_excerpt.as_deref())
        .collect();
    let claims: Vec<&str> = finished.iter().map(|f| f.job.claim.as_str()).collect();
    let (run_at, failed): (Vec<Option<i64>>, Vec<i32>) = finished
        .iter()
        .map(|f| {
            let (run_at, failed) = fanout::next_run(&f.outcome);
            (run_at, i32::from(failed))
        })
        .unzip();
    let held: std::collections::HashSet<String> = db
        .query(
            &stmt,
            &[
                &tenants, &ids, &statuses, &at, &codes, &errors, &latencies, &excerpts, &claims,
                &run_at, &failed,
            ],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(ids.iter().map(|id| held.contains(id)).collect())
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
    let changed = db
        .execute(
            &format!(
                "UPDATE webhook_deliveries SET {} WHERE tenant_id = $1 AND id = $2",
                &*RETRY
            ),
            &[&tenant.to_string(), &id.to_string(), &now.unix_millis()],
        )
        .await
        .map_err(db_error)?;
    if changed == 0 {
        return Ok(None);
    }
    Ok(deliveries(db, tenant, &DeliveryQuery::default(), Some(id))
        .await?
        .pop())
}

pub(super) async fn backlog(db: &Db) -> Result<(u64, Option<Timestamp>)> {
    let row = db
        .query_one(
            "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE run_at IS NOT NULL",
            &[],
        )
        .await
        .map_err(db_error)?;
    Ok((
        u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        row.get::<_, Option<i64>>(1)
            .map(Timestamp::from_unix_millis),
    ))
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
    db.execute(
        &format!(
            "UPDATE webhook_deliveries SET {}
              WHERE tenant_id = $1 AND endpoint_id = $2 AND status = ANY($4)
                AND ($5::bigint IS NULL OR created_at >= $5) AND ($6::bigint IS NULL OR created_at < $6)",
            &*RETRY
        ),
        &[
            &tenant.to_string(),
            &endpoint.to_string(),
            &now.unix_millis(),
            &wanted,
            &from.map(Timestamp::unix_millis),
            &to.map(Timestamp::unix_millis),
        ],
    )
    .await
    .map_err(db_error)
}
