//! Promotions on SQLite. Claims run in the single writer, so a limit
//! checked there holds however many orders race for the last use.

use std::collections::BTreeMap;

use ordo_domain::pricing::{self, Code, Promotion};
use ordo_domain::{Order, PromotionId, TenantId, Timestamp};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::unavailable;
use crate::promotions::{self as shared, COLUMNS};
use crate::{Result, StoreError};

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

/// The promotions `sql` (which selects [`COLUMNS`]) finds.
fn query(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Promotion>> {
    let rows = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, read)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    rows.iter()
        .map(|(id, body, uses)| shared::from_row(id, body, *uses))
        .collect()
}

fn conflict_on_code(e: rusqlite::Error, p: &Promotion) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            StoreError::Conflict {
                field: "code".into(),
                value: p.code.as_ref().map(|c| c.to_string()).unwrap_or_default(),
            }
        }
        e => unavailable(e),
    }
}

pub(super) fn insert(conn: &Connection, p: &Promotion, tenant: TenantId) -> Result<()> {
    let body = shared::body(p)?;
    conn.prepare_cached(
        "INSERT INTO promotions (tenant_id, id, code, active, body, uses, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.to_string(),
            p.id.to_string(),
            p.code.as_ref().map(Code::as_str),
            p.active,
            body,
            p.created_at.unix_millis(),
            p.updated_at.unix_millis()
        ])
    })
    .map_err(|e| conflict_on_code(e, p))?;
    Ok(())
}

pub(super) fn update(conn: &Connection, p: &Promotion, tenant: TenantId) -> Result<()> {
    let body = shared::body(p)?;
    let n = conn
        .prepare_cached(
            "UPDATE promotions SET code = ?3, active = ?4, body = ?5, updated_at = ?6
             WHERE tenant_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant.to_string(),
                p.id.to_string(),
                p.code.as_ref().map(Code::as_str),
                p.active,
                body,
                p.updated_at.unix_millis()
            ])
        })
        .map_err(|e| conflict_on_code(e, p))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) fn delete(conn: &Connection, tenant: TenantId, id: PromotionId) -> Result<bool> {
    conn.prepare_cached("DELETE FROM promotions WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| s.execute(params![tenant.to_string(), id.to_string()]))
        .map(|n| n > 0)
        .map_err(unavailable)
}

pub(super) fn get(
    conn: &Connection,
    tenant: TenantId,
    id: PromotionId,
) -> Result<Option<Promotion>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM promotions WHERE tenant_id = ?1 AND id = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![tenant.to_string(), id.to_string()], read)
            .optional()
    })
    .map_err(unavailable)?
    .map(|(id, body, uses)| shared::from_row(&id, &body, uses))
    .transpose()
}

pub(super) fn list(
    conn: &Connection,
    tenant: TenantId,
    after: Option<PromotionId>,
    limit: u32,
) -> Result<Vec<Promotion>> {
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    query(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM promotions WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        params![tenant.to_string(), after, limit],
    )
}

pub(super) fn for_cart(
    conn: &Connection,
    tenant: TenantId,
    codes: &[Code],
) -> Result<Vec<Promotion>> {
    let codes: Vec<&str> = codes.iter().map(Code::as_str).collect();
    let codes = serde_json::to_string(&codes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    query(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM promotions WHERE tenant_id = ?1
             AND ((code IS NULL AND active = 1) OR code IN (SELECT value FROM json_each(?2)))
             ORDER BY id"
        ),
        params![tenant.to_string(), codes],
    )
}

pub(super) fn uses_by(
    conn: &Connection,
    tenant: TenantId,
    buyer: &str,
    ids: &[PromotionId],
) -> Result<BTreeMap<PromotionId, u32>> {
    let rows = conn
        .prepare_cached(
            "SELECT promotion_id, COUNT(*) FROM promotion_uses
             WHERE tenant_id = ?1 AND buyer = ?2 GROUP BY promotion_id",
        )
        .and_then(|mut s| {
            s.query_map(params![tenant.to_string(), buyer], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    Ok(shared::uses_of(rows, ids))
}

/// Checks that `order` may use each limited promotion it applies and did
/// not hold `before` (a new order: all of them); refuses (before anything
/// is written) if one is used up.
pub(super) fn check_claims(conn: &Connection, order: &Order, before: &[PromotionId]) -> Result<()> {
    let buyer = pricing::buyer_key(&order.buyer);
    for applied in shared::to_claim(order, before) {
        let current = get(conn, order.tenant_id, applied.id)?;
        let buyer_uses = match &buyer {
            Some(b) => Some(buyer_count(conn, order.tenant_id, applied.id, b)?),
            None => None,
        };
        shared::check(applied, current.as_ref(), buyer_uses)?;
    }
    Ok(())
}

fn buyer_count(conn: &Connection, tenant: TenantId, id: PromotionId, buyer: &str) -> Result<u32> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM promotion_uses WHERE tenant_id = ?1 AND promotion_id = ?2 AND buyer = ?3",
        )
        .and_then(|mut s| s.query_row(params![tenant.to_string(), id.to_string(), buyer], |r| r.get(0)))
        .map_err(unavailable)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Records the uses [`check_claims`] allowed, and gives back those of
/// promotions the order no longer applies.
pub(super) fn claim(conn: &Connection, order: &Order, before: &[PromotionId]) -> Result<()> {
    let buyer = pricing::buyer_key(&order.buyer);
    let tenant = order.tenant_id.to_string();
    for id in shared::to_release(order, before) {
        let n = conn
            .prepare_cached(
                "DELETE FROM promotion_uses WHERE tenant_id = ?1 AND promotion_id = ?2 AND order_id = ?3",
            )
            .and_then(|mut s| s.execute(params![tenant, id.to_string(), order.id.to_string()]))
            .map_err(unavailable)?;
        if n > 0 {
            conn.prepare_cached(
                "UPDATE promotions SET uses = MAX(uses - 1, 0) WHERE tenant_id = ?1 AND id = ?2",
            )
            .and_then(|mut s| s.execute(params![tenant, id.to_string()]))
            .map_err(unavailable)?;
        }
    }
    for applied in shared::to_claim(order, before) {
        let id = applied.id.to_string();
        conn.prepare_cached(
            "UPDATE promotions SET uses = uses + 1 WHERE tenant_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| s.execute(params![tenant, id]))
        .map_err(unavailable)?;
        conn.prepare_cached(
            "INSERT INTO promotion_uses (tenant_id, promotion_id, order_id, buyer, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant,
                id,
                order.id.to_string(),
                buyer,
                Timestamp::now().unix_millis()
            ])
        })
        .map_err(unavailable)?;
    }
    Ok(())
}
