//! The catalog on PostgreSQL. A change locks its product's row (`FOR
//! UPDATE`) for the length of its transaction, so changes to one product
//! from any number of nodes happen one after the other.

use std::sync::LazyLock;

use deadpool_postgres::GenericClient;
use ordo_domain::{Product, ProductId, Sku, StockMovement, TenantId};
use tokio_postgres::Row;

use super::{corrupt, db_error, Db};
use crate::catalog::{
    self, MovementRow, ProductChange, ProductRow, MOVEMENT_COLUMNS, PRODUCT_COLUMNS,
};
use crate::{ProductQuery, Result, StoreError};

fn product_row(r: &Row) -> ProductRow {
    ProductRow {
        tenant_id: r.get(0),
        id: r.get(1),
        sku: r.get(2),
        name: r.get(3),
        description: r.get(4),
        currency: r.get(5),
        price: r.get(6),
        attributes: r.get(7),
        variant_of: r.get(8),
        image_url: r.get(9),
        active: r.get(10),
        track_stock: r.get(11),
        on_hand: r.get(12),
        reserved: r.get(13),
        version: r.get(14),
        created_at: r.get(15),
        updated_at: r.get(16),
        archived_at: r.get(17),
        tax_class: r.get(18),
        weight_grams: r.get(19),
    }
}

static INSERT: LazyLock<String> = LazyLock::new(|| catalog::insert_product('$'));
static UPDATE: LazyLock<String> = LazyLock::new(|| catalog::update_product('$'));

/// Writes a product's row with `sql` ([`INSERT`] or [`UPDATE`]); returns
/// how many rows it wrote.
async fn write<C: GenericClient>(db: &C, sql: &str, p: &Product) -> Result<u64> {
    let stmt = db.prepare_cached(sql).await.map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &p.tenant_id.to_string(),
            &p.id.to_string(),
            &p.sku.as_str(),
            &p.name,
            &p.description,
            &p.currency.code(),
            &p.price,
            &catalog::attributes_json(p)?,
            &p.variant_of.as_ref().map(Sku::as_str),
            &p.image_url,
            &p.active,
            &p.track_stock,
            &p.on_hand,
            &p.reserved,
            &i64::try_from(p.version).unwrap_or(i64::MAX),
            &p.created_at.unix_millis(),
            &p.updated_at.unix_millis(),
            &p.archived_at.map(|t| t.unix_millis()),
            &p.tax_class.as_str(),
            &i64::from(p.weight_grams),
        ],
    )
    .await
    .map_err(db_error)
}

/// Adds a product and the movement of its first units, in one transaction.
pub(super) async fn insert(db: &mut Db, p: &Product, m: Option<&StockMovement>) -> Result<()> {
    let tx = db.transaction().await.map_err(db_error)?;
    match write(&tx, &INSERT, p).await {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(StoreError::Conflict {
                field: "sku".into(),
                value: p.sku.as_str().to_string(),
            })
        }
        Err(e) => return Err(e),
    }
    if let Some(m) = m {
        record(&tx, m).await?;
    }
    tx.commit().await.map_err(db_error)
}

pub(super) async fn get(db: &Db, tenant: TenantId, sku: &Sku) -> Result<Option<Product>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = $1 AND sku = $2"
        ))
        .await
        .map_err(db_error)?;
    db.query_opt(&stmt, &[&tenant.to_string(), &sku.as_str()])
        .await
        .map_err(db_error)?
        .map(|r| product_row(&r).into_product(tenant))
        .transpose()
}

pub(super) async fn list(db: &Db, tenant: TenantId, q: &ProductQuery) -> Result<Vec<Product>> {
    let sql = catalog::products(crate::query::POSTGRES, tenant, q);
    super::orders::query(db, &sql)
        .await?
        .iter()
        .map(|r| product_row(r).into_product(tenant))
        .collect()
}

pub(super) async fn change(
    db: &mut Db,
    tenant: TenantId,
    sku: &Sku,
    expected_version: Option<u64>,
    change: ProductChange,
) -> Result<(Product, Option<StockMovement>)> {
    let tx = db.transaction().await.map_err(db_error)?;
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = $1 AND sku = $2 FOR UPDATE"
        ))
        .await
        .map_err(db_error)?;
    let current = tx
        .query_opt(&stmt, &[&tenant.to_string(), &sku.as_str()])
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound)
        .and_then(|r| product_row(&r).into_product(tenant))?;
    let done = catalog::run_change(current, expected_version, change)?;
    if !done.changed() {
        return Ok((done.product, None));
    }
    let updated = write(&tx, &UPDATE, &done.product).await?;
    if updated != 1 {
        return Err(corrupt("a locked product changed"));
    }
    if let Some(m) = &done.movement {
        record(&tx, m).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok((done.product, done.movement))
}

/// The products of `skus` that exist, in SKU order; with `lock`, locked
/// for the rest of the transaction (taken in SKU order, so two changes
/// never wait on each other in a circle).
async fn of_skus<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    skus: &[Sku],
    lock: bool,
) -> Result<Vec<Product>> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = $1 AND sku = ANY($2)
              ORDER BY sku{}",
            if lock { " FOR UPDATE" } else { "" }
        ))
        .await
        .map_err(db_error)?;
    let names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
    db.query(&stmt, &[&tenant.to_string(), &names])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| product_row(r).into_product(tenant))
        .collect()
}

pub(super) async fn by_sku(db: &Db, tenant: TenantId, skus: &[Sku]) -> Result<Vec<Product>> {
    of_skus(db, tenant, skus, false).await
}

/// Locks the products of `skus` for a change to an order.
pub(super) async fn lock<C: GenericClient>(
    tx: &C,
    tenant: TenantId,
    skus: &[Sku],
) -> Result<Vec<Product>> {
    of_skus(tx, tenant, skus, true).await
}

/// Writes what a change to an order did to stock.
pub(super) async fn save<C: GenericClient>(
    tx: &C,
    products: &[Product],
    movements: &[StockMovement],
) -> Result<()> {
    for p in products {
        if write(tx, &UPDATE, p).await? != 1 {
            return Err(corrupt("a locked product changed"));
        }
    }
    for m in movements {
        record(tx, m).await?;
    }
    Ok(())
}

async fn record<C: GenericClient>(db: &C, m: &StockMovement) -> Result<()> {
    let stmt = db
        .prepare_cached(&format!(
            "INSERT INTO stock_movements ({MOVEMENT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .await
        .map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &m.tenant_id.to_string(),
            &m.id.to_string(),
            &m.product_id.to_string(),
            &m.sku.as_str(),
            &m.kind.as_str(),
            &m.on_hand_change,
            &m.reserved_change,
            &m.on_hand,
            &m.reserved,
            &m.reason,
            &m.order_id.map(|o| o.to_string()),
            &catalog::actor_json(m)?,
            &m.at.unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The stock ledger, in one repeatable-read snapshot.
pub(super) async fn ledger(db: &mut Db, tenant: TenantId) -> Result<Vec<catalog::StockLedger>> {
    let tx = db
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_error)?;
    let t = tenant.to_string();
    let products = tx
        .query(
            "SELECT sku, on_hand, reserved FROM products WHERE tenant_id = $1",
            &[&t],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let held = tx
        .query(
            "SELECT j.key, SUM(j.value::bigint)::bigint FROM orders o,
                    jsonb_each_text(o.body -> 'reserved') j
              WHERE o.tenant_id = $1 GROUP BY j.key",
            &[&t],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let moved = tx
        .query(
            "SELECT sku, SUM(on_hand_change)::bigint, SUM(reserved_change)::bigint
               FROM stock_movements WHERE tenant_id = $1 GROUP BY sku",
            &[&t],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    tx.commit().await.map_err(db_error)?;
    catalog::ledger(products, held, moved)
}

pub(super) async fn movements(
    db: &Db,
    tenant: TenantId,
    product: ProductId,
    page: crate::MovementPage,
) -> Result<Vec<StockMovement>> {
    let (after, limit) = (page.after, page.limit);
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {MOVEMENT_COLUMNS} FROM stock_movements
              WHERE tenant_id = $1 AND product_id = $2 AND {}",
            if page.newest_first {
                "($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
            } else {
                "id > $3 ORDER BY id LIMIT $4"
            }
        ))
        .await
        .map_err(db_error)?;
    db.query(
        &stmt,
        &[
            &tenant.to_string(),
            &product.to_string(),
            &after.map(|a| a.to_string()).unwrap_or_default(),
            &i64::from(limit),
        ],
    )
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        MovementRow {
            tenant_id: r.get(0),
            id: r.get(1),
            product_id: r.get(2),
            sku: r.get(3),
            kind: r.get(4),
            on_hand_change: r.get(5),
            reserved_change: r.get(6),
            on_hand: r.get(7),
            reserved: r.get(8),
            reason: r.get(9),
            order_id: r.get(10),
            actor: r.get(11),
            at: r.get(12),
        }
        .into_movement()
    })
    .collect()
}
