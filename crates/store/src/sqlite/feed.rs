//! The event feed on SQLite. Positions are handed out in the writer, whose
//! transactions exclude every other process's, so there is one sequencer.

use ordo_domain::{EventType, OrderId, Timestamp};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::orders;
use super::{corrupt, unavailable};
use crate::query;
use crate::{FeedEvent, FeedQuery, OrderLookup, Renderer, Result, Scope, StoreError};

/// Whether any committed event waits for a position (a read, so an idle
/// sequencer does not write).
pub(super) fn pending(conn: &Connection) -> Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM order_events WHERE feed_seq IS NULL)")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(unavailable)
}

pub(super) fn sequence(conn: &Connection, limit: u32) -> Result<u64> {
    let waiting: Vec<(String, String, i64)> = conn
        .prepare_cached(
            "SELECT tenant_id, order_id, sequence FROM order_events WHERE feed_seq IS NULL
             ORDER BY tenant_id, id LIMIT ?1",
        )
        .and_then(|mut s| {
            s.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(unavailable)?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let last: i64 = conn
        .prepare_cached("SELECT value FROM counters WHERE name = 'feed'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(unavailable)?
        .ok_or_else(|| corrupt("the feed counter is missing"))?;
    let mut place = conn
        .prepare_cached(
            "UPDATE order_events SET feed_seq = ?4 WHERE tenant_id = ?1 AND order_id = ?2 AND sequence = ?3",
        )
        .map_err(unavailable)?;
    let mut position = last;
    for (tenant, order, sequence) in &waiting {
        position += 1;
        place
            .execute(params![tenant, order, sequence, position])
            .map_err(unavailable)?;
    }
    conn.prepare_cached("UPDATE counters SET value = ?1 WHERE name = 'feed'")
        .and_then(|mut s| s.execute([position]))
        .map_err(unavailable)?;
    Ok(waiting.len() as u64)
}

type FeedRow = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    i64,
    String,
    Option<Vec<u8>>,
);

pub(super) fn page(
    conn: &Connection,
    scope: &Scope,
    q: &FeedQuery,
    renderer: Renderer,
) -> Result<Vec<FeedEvent>> {
    let sql = query::feed(query::SQLITE, scope, q);
    let args = orders::values(sql.args);
    let rows: Vec<FeedRow> = conn
        .prepare_cached(&sql.text)
        .and_then(|mut s| {
            s.query_map(params_from_iter(args), |r| {
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
                ))
            })?
            .collect()
        })
        .map_err(unavailable)?;
    rows.into_iter()
        .map(
            |(position, id, order_id, sequence, kind, actor, at, data, api)| {
                let order_id: OrderId = order_id.parse().map_err(corrupt)?;
                let order = match api {
                    Some(api) => api,
                    // Written before events kept the order: show it as it is now.
                    None => orders::find(
                        conn,
                        &Scope::tenant(scope.tenant_id),
                        &OrderLookup::Id(order_id),
                    )?
                    .map(|o| (renderer.render)(&o))
                    .ok_or(StoreError::NotFound)?,
                };
                Ok(FeedEvent {
                    position: u64::try_from(position).map_err(corrupt)?,
                    event: ordo_domain::OrderEvent {
                        id: id.parse().map_err(corrupt)?,
                        order_id,
                        sequence: u64::try_from(sequence).map_err(corrupt)?,
                        event_type: EventType::parse(&kind)
                            .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
                        actor: serde_json::from_str(&actor).map_err(corrupt)?,
                        at: Timestamp::from_unix_millis(at),
                        data: serde_json::from_str(&data).map_err(corrupt)?,
                    },
                    order,
                })
            },
        )
        .collect()
}
