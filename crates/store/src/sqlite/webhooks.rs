//! Webhook endpoints on SQLite.

use ordo_domain::{
    EventType, TenantId, Timestamp, WebhookDeliveryId, WebhookEndpoint, WebhookEndpointId,
    WebhookSecret, WebhookUrl,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{corrupt, unavailable};
use crate::fanout;
use crate::query::RETRY;
use crate::{
    DeliveryAttempt, DeliveryQuery, DeliveryStatus, FeedQuery, FinishedDelivery, Job, JobClaim,
    Outgoing, Result, Scope, StoreError, WebhookDelivery,
};

const COLUMNS: &str =
    "tenant_id, id, url, description, event_types, active, secret, previous_secret,
    previous_secret_expires_at, created_at, updated_at, disabled_at, disabled_reason";

pub(super) fn save(conn: &Connection, e: &WebhookEndpoint, new: bool) -> Result<()> {
    let types =
        serde_json::to_string(&e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
            .map_err(corrupt)?;
    let sql = if new {
        format!("INSERT INTO webhook_endpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
    } else {
        "UPDATE webhook_endpoints SET url = ?3, description = ?4, event_types = ?5, active = ?6, secret = ?7,
             previous_secret = ?8, previous_secret_expires_at = ?9, created_at = ?10, updated_at = ?11,
             disabled_at = ?12, disabled_reason = ?13
         WHERE tenant_id = ?1 AND id = ?2"
            .to_string()
    };
    let changed = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.execute(params![
                e.tenant_id.to_string(),
                e.id.to_string(),
                e.url.as_str(),
                e.description,
                types,
                e.active,
                e.secret.expose(),
                e.previous_secret
                    .as_ref()
                    .map(|(s, _)| s.expose().to_string()),
                e.previous_secret.as_ref().map(|(_, t)| t.unix_millis()),
                e.created_at.unix_millis(),
                e.updated_at.unix_millis(),
                e.disabled.as_ref().map(|(t, _)| t.unix_millis()),
                e.disabled.as_ref().map(|(_, r)| r.clone()),
            ])
        })
        .map_err(unavailable)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    if new {
        conn.prepare_cached(crate::query::START_CURSOR)
            .and_then(|mut s| {
                s.execute(params![
                    e.tenant_id.to_string(),
                    fanout::CURSOR,
                    e.id.to_string()
                ])
            })
            .map_err(unavailable)?;
    }
    Ok(())
}

type EndpointRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    bool,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn row(r: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

fn endpoint(r: EndpointRow) -> Result<WebhookEndpoint> {
    let types: Vec<String> = serde_json::from_str(&r.4).map_err(corrupt)?;
    Ok(WebhookEndpoint {
        tenant_id: r.0.parse().map_err(corrupt)?,
        id: r.1.parse().map_err(corrupt)?,
        url: WebhookUrl::from_stored(r.2),
        description: r.3,
        event_types: types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| corrupt(format!("unknown event type {t}"))))
            .collect::<Result<_>>()?,
        active: r.5,
        secret: WebhookSecret::from_stored(r.6),
        previous_secret: r.7.zip(r.8).map(|(s, t)| {
            (
                WebhookSecret::from_stored(s),
                Timestamp::from_unix_millis(t),
            )
        }),
        created_at: Timestamp::from_unix_millis(r.9),
        updated_at: Timestamp::from_unix_millis(r.10),
        disabled: r
            .11
            .zip(r.12)
            .map(|(t, why)| (Timestamp::from_unix_millis(t), why)),
    })
}

/// The tenant's endpoints, or the one with `id`.
pub(super) fn list(
    conn: &Connection,
    tenant: TenantId,
    id: Option<WebhookEndpointId>,
) -> Result<Vec<WebhookEndpoint>> {
    let rows = match id {
        Some(id) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2"
            ))
            .and_then(|mut s| {
                s.query_map(params![tenant.to_string(), id.to_string()], row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }),
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 ORDER BY id"
            ))
            .and_then(|mut s| {
                s.query_map(params![tenant.to_string()], row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }),
    }
    .map_err(unavailable)?;
    rows.into_iter().map(endpoint).collect()
}

pub(super) fn delete(conn: &Connection, tenant: TenantId, id: WebhookEndpointId) -> Result<bool> {
    conn.prepare_cached("DELETE FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| s.execute(params![tenant.to_string(), id.to_string()]))
        .map(|n| n == 1)
        .map_err(unavailable)
}

/// Every endpoint of every tenant (inactive ones too: the cursor moves
/// past what they miss, so turning one back on does not replay it).
fn all_endpoints(conn: &Connection) -> Result<Vec<WebhookEndpoint>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints ORDER BY tenant_id, id"
        ))
        .and_then(|mut s| s.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(unavailable)?;
    rows.into_iter().map(endpoint).collect()
}

/// Whether some tenant with an endpoint has events past its
/// fan-out cursor (a read, so an idle pass does not write).
pub(super) fn fan_out_pending(conn: &Connection) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (
             SELECT 1 FROM (SELECT DISTINCT tenant_id FROM webhook_endpoints) t
              WHERE (SELECT MAX(feed_seq) FROM order_events e WHERE e.tenant_id = t.tenant_id)
                    > COALESCE((SELECT position FROM feed_cursors c
                                 WHERE c.tenant_id = t.tenant_id AND c.name = ?1), 0))",
    )
    .and_then(|mut s| s.query_row([fanout::CURSOR], |r| r.get(0)))
    .map_err(unavailable)
}

/// The fan-out pass, in the writer (which excludes every other process).
pub(super) fn fan_out(conn: &Connection, limit: u32, now: Timestamp) -> Result<u64> {
    let endpoints = all_endpoints(conn)?;
    let mut made = 0;
    let mut start = 0;
    while start < endpoints.len() {
        let tenant = endpoints[start].tenant_id;
        let end = endpoints[start..]
            .iter()
            .position(|e| e.tenant_id != tenant)
            .map_or(endpoints.len(), |n| start + n);
        made += fan_out_tenant(conn, tenant, &endpoints[start..end], limit, now)?;
        start = end;
    }
    Ok(made)
}

fn fan_out_tenant(
    conn: &Connection,
    tenant: TenantId,
    endpoints: &[WebhookEndpoint],
    limit: u32,
    now: Timestamp,
) -> Result<u64> {
    let tenant_text = tenant.to_string();
    let cursor: i64 = conn
        .prepare_cached("SELECT position FROM feed_cursors WHERE tenant_id = ?1 AND name = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant_text, fanout::CURSOR], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?
        .unwrap_or(0);
    let events = conn
        .prepare_cached(
            "SELECT feed_seq, id, order_id, sequence, type, at, bulk FROM order_events
              WHERE tenant_id = ?1 AND feed_seq > ?2 ORDER BY feed_seq LIMIT ?3",
        )
        .and_then(|mut s| {
            s.query_map(params![tenant_text, cursor, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?
        .into_iter()
        .map(|(position, id, order, sequence, kind, at, bulk)| {
            Ok(fanout::FedEvent {
                position: u64::try_from(position).map_err(corrupt)?,
                id: id.parse().map_err(corrupt)?,
                order_id: order.parse().map_err(corrupt)?,
                sequence: u64::try_from(sequence).map_err(corrupt)?,
                event_type: EventType::parse(&kind)
                    .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
                at: Timestamp::from_unix_millis(at),
                bulk,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(0);
    };
    let planned = fanout::plan(endpoints, &events, now);
    for d in &planned {
        conn.prepare_cached(
            "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, order_id, event_sequence,
                                             feed_seq, event_type, status, created_at, updated_at, run_at,
                                             retrying_since, bulk)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9, ?9, ?9, ?10)",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant_text,
                d.id.to_string(),
                d.endpoint_id.to_string(),
                d.event.id.to_string(),
                d.event.order_id.to_string(),
                i64::try_from(d.event.sequence).unwrap_or(i64::MAX),
                i64::try_from(d.event.position).unwrap_or(i64::MAX),
                d.event.event_type.as_str(),
                now.unix_millis(),
                d.event.bulk,
            ])
        })
        .map_err(unavailable)?;
    }
    conn.prepare_cached(
        "INSERT INTO feed_cursors (tenant_id, name, position) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant_id, name) DO UPDATE SET position = excluded.position",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant_text,
            fanout::CURSOR,
            i64::try_from(last).unwrap_or(i64::MAX)
        ])
    })
    .map_err(unavailable)?;
    Ok(planned.len() as u64)
}

pub(super) fn deliveries(
    conn: &Connection,
    tenant: TenantId,
    q: &DeliveryQuery,
    id: Option<WebhookDeliveryId>,
) -> Result<Vec<WebhookDelivery>> {
    let sql = crate::query::deliveries(crate::query::SQLITE, tenant, q, id);
    let rows = conn
        .prepare_cached(&sql.text)
        .and_then(|mut s| {
            s.query_map(
                rusqlite::params_from_iter(super::orders::values(sql.args)),
                |r| {
                    Ok((
                        (
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                        ),
                        (
                            r.get::<_, String>(7)?,
                            r.get::<_, String>(8)?,
                            r.get::<_, i64>(9)?,
                            r.get::<_, i64>(10)?,
                            r.get::<_, i64>(11)?,
                            r.get::<_, Option<i64>>(12)?,
                            r.get::<_, Option<String>>(13)?,
                        ),
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    rows.into_iter()
        .map(
            |(
                (t, id, ep, ev, order, seq, pos),
                (kind, status, attempts, created, updated, code, error),
            )| {
                Ok(WebhookDelivery {
                    tenant_id: t.parse().map_err(corrupt)?,
                    id: id.parse().map_err(corrupt)?,
                    endpoint_id: ep.parse().map_err(corrupt)?,
                    event_id: ev.parse().map_err(corrupt)?,
                    order_id: order.parse().map_err(corrupt)?,
                    event_sequence: u64::try_from(seq).map_err(corrupt)?,
                    position: u64::try_from(pos).map_err(corrupt)?,
                    event_type: EventType::parse(&kind)
                        .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
                    status: DeliveryStatus::parse(&status)
                        .ok_or_else(|| corrupt(format!("unknown delivery status {status}")))?,
                    attempts: u32::try_from(attempts).map_err(corrupt)?,
                    created_at: Timestamp::from_unix_millis(created),
                    updated_at: Timestamp::from_unix_millis(updated),
                    last_status_code: code.and_then(|c| u16::try_from(c).ok()),
                    last_error: error,
                })
            },
        )
        .collect()
}

/// Claims due deliveries (in the writer, so no other process claims them
/// too); what they send is read by [`outgoing`].
/// Claims due deliveries, live ones first and then an import's (`bulk`)
/// for the rest of the batch: two range scans of the `(bulk, run_at)`
/// index, each stopping at the first delivery not yet due.
pub(super) fn claim(conn: &Connection, c: &JobClaim) -> Result<Vec<Job>> {
    let token = ulid::Ulid::new().to_string();
    let mut claimed = claim_lane(conn, c, &token, false)?;
    let left = c
        .limit
        .saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
    if left > 0 {
        let rest = JobClaim {
            limit: left,
            ..c.clone()
        };
        claimed.extend(claim_lane(conn, &rest, &token, true)?);
    }
    Ok(claimed)
}

fn claim_lane(conn: &Connection, c: &JobClaim, token: &str, bulk: bool) -> Result<Vec<Job>> {
    let until = c.now.plus_millis(c.lease_ms);
    let rows = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET claimed_by = ?1, claim = ?2, claimed_until = ?3
              WHERE (tenant_id, id) IN
                    (SELECT tenant_id, id FROM webhook_deliveries
                      WHERE bulk = ?6 AND run_at IS NOT NULL AND run_at <= ?4
                        AND (claimed_until IS NULL OR claimed_until <= ?4)
                      ORDER BY run_at LIMIT ?5)
             RETURNING tenant_id, id, retrying_since, failures",
        )
        .and_then(|mut s| {
            s.query_map(
                params![
                    c.node,
                    token,
                    until.unix_millis(),
                    c.now.unix_millis(),
                    c.limit,
                    bulk
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(tenant, key, since, failures)| {
            Ok(Job {
                tenant_id: Some(tenant.parse().map_err(corrupt)?),
                key,
                kind: fanout::DELIVER_WEBHOOK.into(),
                payload: serde_json::Value::Null,
                created_at: Timestamp::from_unix_millis(since),
                attempts: u32::try_from(failures).map_err(corrupt)?,
                claim: token.to_string(),
                claimed_until: until,
            })
        })
        .collect()
}

/// The claimed deliveries and their events, read one after the other on
/// one connection (each an index lookup).
pub(super) fn outgoing(conn: &Connection, jobs: Vec<Job>) -> Result<Vec<Outgoing>> {
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Some((tenant, id)) = crate::delivery_of(&job) else {
            continue;
        };
        let Some(delivery) = deliveries(conn, tenant, &DeliveryQuery::default(), Some(id))?.pop()
        else {
            continue;
        };
        let query = FeedQuery {
            after: delivery.position.saturating_sub(1),
            types: Vec::new(),
            order_id: Some(delivery.order_id),
            limit: 1,
        };
        let event = super::feed::page(conn, &Scope::tenant(tenant), &query)?
            .into_iter()
            .find(|e| e.event.id == delivery.event_id);
        out.push(Outgoing {
            job,
            delivery,
            event,
        });
    }
    Ok(out)
}

/// Records an attempt at a claimed delivery and, if the claim still holds,
/// its new status and when it is tried next; says whether it held.
pub(super) fn finish(conn: &Connection, f: &FinishedDelivery) -> Result<bool> {
    let Some((tenant, id)) = crate::delivery_of(&f.job) else {
        return Ok(false);
    };
    let (tenant, id) = (tenant.to_string(), id.to_string());
    let (run_at, failed) = fanout::next_run(&f.outcome);
    let attempt = &f.attempt;
    // While the claim holds: the attempt's outcome and the next time.
    let held: Option<i64> = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, updated_at = ?3, last_status_code = ?4,
                    last_error = ?5, status = ?6, run_at = ?7, failures = failures + ?8,
                    claimed_by = NULL, claim = NULL, claimed_until = NULL
              WHERE tenant_id = ?1 AND id = ?2 AND claim = ?9
             RETURNING attempts",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    tenant,
                    id,
                    attempt.at.unix_millis(),
                    attempt.status_code,
                    attempt.error,
                    f.status.as_str(),
                    run_at,
                    i64::from(failed),
                    f.job.claim
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(unavailable)?;
    let number = match held {
        Some(number) => number,
        // Lost: the attempt happened and is counted; the rest is the
        // new claimant's (or, with no delivery, there is nothing to keep).
        None => match conn
            .prepare_cached(
                "UPDATE webhook_deliveries SET attempts = attempts + 1 WHERE tenant_id = ?1 AND id = ?2
                 RETURNING attempts",
            )
            .and_then(|mut s| s.query_row(params![tenant, id], |r| r.get(0)).optional())
            .map_err(unavailable)?
        {
            Some(number) => number,
            None => return Ok(false),
        },
    };
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (tenant_id, delivery_id, number, at, status_code, latency_ms, error, response_excerpt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant,
            id,
            number,
            attempt.at.unix_millis(),
            attempt.status_code,
            i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
            attempt.error,
            attempt.response_excerpt
        ])
    })
    .map_err(unavailable)?;
    Ok(held.is_some())
}

pub(super) fn attempts(
    conn: &Connection,
    tenant: TenantId,
    id: WebhookDeliveryId,
) -> Result<Vec<(u32, DeliveryAttempt)>> {
    let rows = conn
        .prepare_cached(
            "SELECT number, at, status_code, latency_ms, error, response_excerpt FROM webhook_attempts
              WHERE tenant_id = ?1 AND delivery_id = ?2 ORDER BY number",
        )
        .and_then(|mut s| {
            s.query_map(params![tenant.to_string(), id.to_string()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(n, at, code, latency, error, excerpt)| {
            Ok((
                u32::try_from(n).map_err(corrupt)?,
                DeliveryAttempt {
                    at: Timestamp::from_unix_millis(at),
                    status_code: code.and_then(|c| u16::try_from(c).ok()),
                    latency_ms: u64::try_from(latency).map_err(corrupt)?,
                    error,
                    response_excerpt: excerpt,
                },
            ))
        })
        .collect()
}

pub(super) fn retry(
    conn: &Connection,
    tenant: TenantId,
    id: WebhookDeliveryId,
    now: Timestamp,
) -> Result<Option<WebhookDelivery>> {
    let changed = conn
        .prepare_cached(&format!(
            "UPDATE webhook_deliveries SET {RETRY} WHERE tenant_id = ?1 AND id = ?2"
        ))
        .and_then(|mut s| {
            s.execute(params![
                tenant.to_string(),
                id.to_string(),
                now.unix_millis()
            ])
        })
        .map_err(unavailable)?;
    if changed == 0 {
        return Ok(None);
    }
    Ok(deliveries(conn, tenant, &DeliveryQuery::default(), Some(id))?.pop())
}

pub(super) fn backlog(conn: &Connection) -> Result<(u64, Option<Timestamp>)> {
    let (count, oldest): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE run_at IS NOT NULL",
        )
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(unavailable)?;
    Ok((
        u64::try_from(count).unwrap_or(0),
        oldest.map(Timestamp::from_unix_millis),
    ))
}

pub(super) fn succeeded_since(
    conn: &Connection,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    since: Timestamp,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE tenant_id = ?1 AND endpoint_id = ?2
                  AND status = 'succeeded' AND updated_at >= ?3)",
    )
    .and_then(|mut s| {
        s.query_row(
            params![
                tenant.to_string(),
                endpoint.to_string(),
                since.unix_millis()
            ],
            |r| r.get(0),
        )
    })
    .map_err(unavailable)
}

pub(super) fn retry_many(
    conn: &Connection,
    tenant: TenantId,
    endpoint: WebhookEndpointId,
    statuses: &[DeliveryStatus],
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    now: Timestamp,
) -> Result<u64> {
    let wanted = serde_json::to_string(&statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        .map_err(corrupt)?;
    let n = conn
        .prepare_cached(&format!(
            "UPDATE webhook_deliveries SET {}
              WHERE tenant_id = ?1 AND endpoint_id = ?2 AND status IN (SELECT value FROM json_each(?4))
                AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at < ?6)",
            RETRY
        ))
        .and_then(|mut s| {
            s.execute(params![
                tenant.to_string(),
                endpoint.to_string(),
                now.unix_millis(),
                wanted,
                from.map(Timestamp::unix_millis),
                to.map(Timestamp::unix_millis),
            ])
        })
        .map_err(unavailable)?;
    Ok(n as u64)
}
