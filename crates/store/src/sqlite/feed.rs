//! The event feed on SQLite. Positions are handed out as events are written,
//! in the writer, whose transactions exclude every other process's: they
//! grow in commit order without a sequencer.

use ordo_domain::{EventType, OrderId, Timestamp};
use rusqlite::{params_from_iter, Connection};

use super::orders;
use super::{corrupt, unavailable};
use crate::query;
use crate::{FeedEvent, FeedQuery, Result, Scope};

/// The last feed position handed out.
pub(super) fn last_position(conn: &Connection) -> Result<u64> {
    let last: i64 = conn
        .prepare_cached("SELECT value FROM counters WHERE name = 'feed'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(unavailable)?;
    u64::try_from(last).map_err(corrupt)
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
    Vec<u8>,
);

pub(super) fn page(conn: &Connection, scope: &Scope, q: &FeedQuery) -> Result<Vec<FeedEvent>> {
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
                    order: api,
                })
            },
        )
        .collect()
}
