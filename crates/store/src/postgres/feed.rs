//! The event feed on PostgreSQL. One node at a time hands out positions
//! (a transaction-scoped advisory lock; a node that dies releases it), to
//! events whose transactions have committed, so positions only grow in the
//! order readers can see them.

use ordo_domain::{Actor, EventType, OrderEvent, Timestamp};
use tokio_postgres::types::Json;

use super::orders;
use super::{corrupt, db_error, Db};
use crate::query;
use crate::{FeedEvent, FeedQuery, Result, Scope};

/// Held by the node handing out feed positions. ("feed" in ASCII.)
const SEQUENCER_LOCK: i64 = 0x6665_6564;

const SEQUENCE: &str = "WITH next AS (
    SELECT tenant_id, order_id, sequence, row_number() OVER (ORDER BY tenant_id, id) AS n
      FROM (SELECT tenant_id, order_id, sequence, id FROM order_events
             WHERE feed_seq IS NULL ORDER BY tenant_id, id LIMIT $1) waiting
), base AS (
    UPDATE counters SET value = value + (SELECT count(*) FROM next) WHERE name = 'feed'
    RETURNING value - (SELECT count(*) FROM next) AS start
)
UPDATE order_events e SET feed_seq = base.start + next.n
  FROM next, base
 WHERE e.tenant_id = next.tenant_id AND e.order_id = next.order_id AND e.sequence = next.sequence";

pub(super) async fn sequence(db: &mut Db, limit: u32) -> Result<u64> {
    let pending = db
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM order_events WHERE feed_seq IS NULL)")
        .await
        .map_err(db_error)?;
    if !db
        .query_one(&pending, &[])
        .await
        .map_err(db_error)?
        .get::<_, bool>(0)
    {
        return Ok(0);
    }
    let tx = db.transaction().await.map_err(db_error)?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SEQUENCER_LOCK])
        .await
        .map_err(db_error)?
        .get(0);
    if !locked {
        return Ok(0);
    }
    let stmt = tx.prepare_cached(SEQUENCE).await.map_err(db_error)?;
    let placed = tx
        .execute(&stmt, &[&i64::from(limit)])
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(placed)
}

pub(super) async fn page(db: &Db, scope: &Scope, q: &FeedQuery) -> Result<Vec<FeedEvent>> {
    let sql = query::feed(query::POSTGRES, scope, q);
    let rows = orders::query(db, &sql).await?;
    rows.iter().map(|r| event(r, 0)).collect()
}

/// The event in a row's [`query::FEED_COLUMNS`], which start at column `at`.
pub(super) fn event(r: &tokio_postgres::Row, at: usize) -> Result<FeedEvent> {
    // (A stored event always has its order: the row's rendering or its own.)
    let kind: &str = r.get(at + 4);
    Ok(FeedEvent {
        position: u64::try_from(r.get::<_, i64>(at)).map_err(corrupt)?,
        event: OrderEvent {
            id: r.get::<_, &str>(at + 1).parse().map_err(corrupt)?,
            order_id: r.get::<_, &str>(at + 2).parse().map_err(corrupt)?,
            sequence: u64::try_from(r.get::<_, i64>(at + 3)).map_err(corrupt)?,
            event_type: EventType::parse(kind)
                .ok_or_else(|| corrupt(format!("unknown event type {kind}")))?,
            actor: r.get::<_, Json<Actor>>(at + 5).0,
            at: Timestamp::from_unix_millis(r.get(at + 6)),
            data: r.get::<_, Json<serde_json::Value>>(at + 7).0,
        },
        order: r.get(at + 8),
    })
}
