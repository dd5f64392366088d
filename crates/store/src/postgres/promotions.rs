//! Promotions on PostgreSQL. A claim locks the promotion's row (`FOR
//! UPDATE`) in the order's transaction, so orders racing for its last use
//! from any number of nodes take it one after the other.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use ordo_domain::pricing::{self, Code, Promotion};
use ordo_domain::{Order, PromotionId, TenantId, Timestamp};

use super::db_error;
use crate::promotions::{self as shared, COLUMNS};
use crate::{Result, StoreError};

fn rows_to(rows: &[tokio_postgres::Row]) -> Result<Vec<Promotion>> {
    rows.iter()
        .map(|r| shared::from_row(r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn on_code(e: StoreError, p: &Promotion) -> StoreError {
    match e {
        StoreError::Conflict { .. } => StoreError::Conflict {
            field: "code".into(),
            value: p.code.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        },
        e => e,
    }
}

pub(super) async fn insert<C: GenericClient>(
    db: &C,
    p: &Promotion,
    tenant: TenantId,
) -> Result<()> {
    let stmt = db
        .prepare_cached(
            "INSERT INTO promotions (tenant_id, id, code, active, body, uses, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
        )
        .await
        .map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &tenant.to_string(),
            &p.id.to_string(),
            &p.code.as_ref().map(Code::as_str),
            &p.active,
            &shared::body(p)?,
            &p.created_at.unix_millis(),
            &p.updated_at.unix_millis(),
        ],
    )
    .await
    .map_err(|e| on_code(db_error(e), p))?;
    Ok(())
}

pub(super) async fn update<C: GenericClient>(
    db: &C,
    p: &Promotion,
    tenant: TenantId,
) -> Result<()> {
    let stmt = db
        .prepare_cached(
            "UPDATE promotions SET code = $3, active = $4, body = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2",
        )
        .await
        .map_err(db_error)?;
    let n = db
        .execute(
            &stmt,
            &[
                &tenant.to_string(),
                &p.id.to_string(),
                &p.code.as_ref().map(Code::as_str),
                &p.active,
                &shared::body(p)?,
                &p.updated_at.unix_millis(),
            ],
        )
        .await
        .map_err(|e| on_code(db_error(e), p))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) async fn delete<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    id: PromotionId,
) -> Result<bool> {
    let stmt = db
        .prepare_cached("DELETE FROM promotions WHERE tenant_id = $1 AND id = $2")
        .await
        .map_err(db_error)?;
    let n = db
        .execute(&stmt, &[&tenant.to_string(), &id.to_string()])
        .await
        .map_err(db_error)?;
    Ok(n > 0)
}

async fn get_with<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    id: PromotionId,
    lock: bool,
) -> Result<Option<Promotion>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM promotions WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let stmt = db.prepare_cached(&sql).await.map_err(db_error)?;
    let row = db
        .query_opt(&stmt, &[&tenant.to_string(), &id.to_string()])
        .await
        .map_err(db_error)?;
    row.map(|r| shared::from_row(r.get(0), r.get(1), r.get(2)))
        .transpose()
}

pub(super) async fn get<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    id: PromotionId,
) -> Result<Option<Promotion>> {
    get_with(db, tenant, id, false).await
}

pub(super) async fn list<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    after: Option<PromotionId>,
    limit: u32,
) -> Result<Vec<Promotion>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM promotions WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .await
        .map_err(db_error)?;
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let rows = db
        .query(&stmt, &[&tenant.to_string(), &after, &i64::from(limit)])
        .await
        .map_err(db_error)?;
    rows_to(&rows)
}

pub(super) async fn for_cart<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    codes: &[Code],
) -> Result<Vec<Promotion>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM promotions WHERE tenant_id = $1
             AND ((code IS NULL AND active) OR code = ANY($2)) ORDER BY id"
        ))
        .await
        .map_err(db_error)?;
    let codes: Vec<&str> = codes.iter().map(Code::as_str).collect();
    let rows = db
        .query(&stmt, &[&tenant.to_string(), &codes])
        .await
        .map_err(db_error)?;
    rows_to(&rows)
}

pub(super) async fn uses_by<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    buyer: &str,
    ids: &[PromotionId],
) -> Result<BTreeMap<PromotionId, u32>> {
    let stmt = db
        .prepare_cached(
            "SELECT promotion_id, COUNT(*) FROM promotion_uses
             WHERE tenant_id = $1 AND buyer = $2 GROUP BY promotion_id",
        )
        .await
        .map_err(db_error)?;
    let rows = db
        .query(&stmt, &[&tenant.to_string(), &buyer])
        .await
        .map_err(db_error)?;
    Ok(shared::uses_of(
        rows.iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))),
        ids,
    ))
}

/// Claims a use of each limited promotion `order` applies and did not
/// hold `before` (a new order: all of them), in its transaction: the
/// promotion's row is locked, its limits checked, its count raised and
/// the use recorded; a used-up one refuses the order (the transaction
/// then rolls back). Uses of promotions it no longer applies go back.
pub(super) async fn claim<C: GenericClient>(
    db: &C,
    order: &Order,
    before: &[PromotionId],
) -> Result<()> {
    let buyer = pricing::buyer_key(&order.buyer);
    let tenant = order.tenant_id.to_string();
    let released = shared::to_release(order, before);
    // Every row this takes, locked at once in id order: two orders naming
    // the same promotions in another order never wait on each other.
    let mut ids: Vec<String> = released
        .iter()
        .copied()
        .chain(shared::to_claim(order, before).map(|p| p.id))
        .map(|id| id.to_string())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    let stmt = db
        .prepare_cached(
            "SELECT 1 FROM promotions WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
        )
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[&tenant, &ids]).await.map_err(db_error)?;
    for id in released {
        let stmt = db
            .prepare_cached(
                "WITH gone AS (DELETE FROM promotion_uses WHERE tenant_id = $1 AND promotion_id = $2 AND order_id = $3 RETURNING 1)
                 UPDATE promotions SET uses = GREATEST(uses - (SELECT count(*) FROM gone), 0) WHERE tenant_id = $1 AND id = $2",
            )
            .await
            .map_err(db_error)?;
        db.execute(&stmt, &[&tenant, &id.to_string(), &order.id.to_string()])
            .await
            .map_err(db_error)?;
    }
    for applied in shared::to_claim(order, before) {
        let current = get_with(db, order.tenant_id, applied.id, true).await?;
        let buyer_uses = match &buyer {
            Some(b) => {
                let stmt = db
                    .prepare_cached(
                        "SELECT COUNT(*) FROM promotion_uses WHERE tenant_id = $1 AND promotion_id = $2 AND buyer = $3",
                    )
                    .await
                    .map_err(db_error)?;
                let n: i64 = db
                    .query_one(&stmt, &[&tenant, &applied.id.to_string(), b])
                    .await
                    .map_err(db_error)?
                    .get(0);
                Some(u32::try_from(n).unwrap_or(u32::MAX))
            }
            None => None,
        };
        shared::check(applied, current.as_ref(), buyer_uses)?;
        let stmt = db
            .prepare_cached(
                "UPDATE promotions SET uses = uses + 1 WHERE tenant_id = $1 AND id = $2",
            )
            .await
            .map_err(db_error)?;
        db.execute(&stmt, &[&tenant, &applied.id.to_string()])
            .await
            .map_err(db_error)?;
        let stmt = db
            .prepare_cached(
                "INSERT INTO promotion_uses (tenant_id, promotion_id, order_id, buyer, at) VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(db_error)?;
        db.execute(
            &stmt,
            &[
                &tenant,
                &applied.id.to_string(),
                &order.id.to_string(),
                &buyer,
                &Timestamp::now().unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?;
    }
    Ok(())
}
