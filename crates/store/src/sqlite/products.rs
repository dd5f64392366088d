//! The catalog on SQLite.

use std::sync::LazyLock;

use ordo_domain::{Product, ProductId, Sku, StockMovement, TenantId};
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension, Row};

use super::{corrupt, unavailable};
use crate::catalog::{
    self, MovementRow, ProductChange, ProductRow, MOVEMENT_COLUMNS, PRODUCT_COLUMNS,
};
use crate::{ProductQuery, Result, StoreError};

fn product_row(r: &Row<'_>) -> rusqlite::Result<ProductRow> {
    Ok(ProductRow {
        tenant_id: r.get(0)?,
        id: r.get(1)?,
        sku: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        currency: r.get(5)?,
        price: r.get(6)?,
        attributes: r.get(7)?,
        variant_of: r.get(8)?,
        image_url: r.get(9)?,
        active: r.get(10)?,
        track_stock: r.get(11)?,
        on_hand: r.get(12)?,
        reserved: r.get(13)?,
        version: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        archived_at: r.get(17)?,
        tax_class: r.get(18)?,
        weight_grams: r.get(19)?,
    })
}

static INSERT: LazyLock<String> = LazyLock::new(|| catalog::insert_product('?'));
static UPDATE: LazyLock<String> = LazyLock::new(|| catalog::update_product('?'));

/// Writes a product's row with `sql` ([`INSERT`] or [`UPDATE`]); returns
/// how many rows it wrote.
fn write(conn: &Connection, sql: &str, p: &Product) -> rusqlite::Result<usize> {
    let attributes = catalog::attributes_json(p)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    conn.prepare_cached(sql)?.execute(params![
        p.tenant_id.to_string(),
        p.id.to_string(),
        p.sku.as_str(),
        p.name,
        p.description,
        p.currency.code(),
        p.price,
        attributes,
        p.variant_of.as_ref().map(Sku::as_str),
        p.image_url,
        p.active,
        p.track_stock,
        p.on_hand,
        p.reserved,
        i64::try_from(p.version).unwrap_or(i64::MAX),
        p.created_at.unix_millis(),
        p.updated_at.unix_millis(),
        p.archived_at.map(|t| t.unix_millis()),
        p.tax_class.as_str(),
        i64::from(p.weight_grams),
    ])
}

/// Adds a product and the movement of its first units: the insert is
/// refused before anything is written, so a refusal leaves nothing behind.
pub(super) fn insert(conn: &Connection, p: &Product, m: Option<&StockMovement>) -> Result<()> {
    match write(conn, &INSERT, p) {
        Ok(_) => m.map_or(Ok(()), |m| record(conn, m)),
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::ConstraintViolation => {
            Err(StoreError::Conflict {
                field: "sku".into(),
                value: p.sku.as_str().to_string(),
            })
        }
        Err(e) => Err(unavailable(e)),
    }
}

pub(super) fn get(conn: &Connection, tenant: TenantId, sku: &Sku) -> Result<Option<Product>> {
    conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = ?1 AND sku = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![tenant.to_string(), sku.as_str()], product_row)
            .optional()
    })
    .map_err(unavailable)?
    .map(|row| row.into_product(tenant))
    .transpose()
}

pub(super) fn list(conn: &Connection, tenant: TenantId, q: &ProductQuery) -> Result<Vec<Product>> {
    let sql = catalog::products(crate::query::SQLITE, tenant, q);
    conn.prepare_cached(&sql.text)
        .and_then(|mut s| {
            s.query_map(
                params_from_iter(super::orders::values(sql.args)),
                product_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?
        .into_iter()
        .map(|row| row.into_product(tenant))
        .collect()
}

/// Runs a change in the writer: read, change, write back with its movement.
pub(super) fn change(
    conn: &Connection,
    tenant: TenantId,
    sku: &Sku,
    expected_version: Option<u64>,
    change: ProductChange,
) -> Result<(Product, Option<StockMovement>)> {
    let current = get(conn, tenant, sku)?.ok_or(StoreError::NotFound)?;
    let done = catalog::run_change(current, expected_version, change)?;
    if !done.changed() {
        return Ok((done.product, None));
    }
    let updated = write(conn, &UPDATE, &done.product).map_err(unavailable)?;
    if updated != 1 {
        return Err(corrupt("a product changed under the writer"));
    }
    if let Some(m) = &done.movement {
        record(conn, m)?;
    }
    Ok((done.product, done.movement))
}

/// The products of `skus` that exist, in the order given.
pub(super) fn of_skus(conn: &Connection, tenant: TenantId, skus: &[Sku]) -> Result<Vec<Product>> {
    let mut found = Vec::with_capacity(skus.len());
    for sku in skus {
        found.extend(get(conn, tenant, sku)?);
    }
    Ok(found)
}

/// Writes what a change to an order did to stock.
pub(super) fn save(
    conn: &Connection,
    products: &[Product],
    movements: &[StockMovement],
) -> Result<()> {
    for p in products {
        if write(conn, &UPDATE, p).map_err(unavailable)? != 1 {
            return Err(corrupt("a product changed under the writer"));
        }
    }
    movements.iter().try_for_each(|m| record(conn, m))
}

fn record(conn: &Connection, m: &StockMovement) -> Result<()> {
    let actor = catalog::actor_json(m)?;
    conn.prepare_cached(&format!(
        "INSERT INTO stock_movements ({MOVEMENT_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            m.tenant_id.to_string(),
            m.id.to_string(),
            m.product_id.to_string(),
            m.sku.as_str(),
            m.kind.as_str(),
            m.on_hand_change,
            m.reserved_change,
            m.on_hand,
            m.reserved,
            m.reason,
            m.order_id.map(|o| o.to_string()),
            actor,
            m.at.unix_millis(),
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

/// The stock ledger; the caller runs it in one read transaction.
pub(super) fn ledger(conn: &Connection, tenant: TenantId) -> Result<Vec<catalog::StockLedger>> {
    let t = tenant.to_string();
    let products = conn
        .prepare_cached("SELECT sku, on_hand, reserved FROM products WHERE tenant_id = ?1")
        .and_then(|mut s| {
            s.query_map([&t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    let held = conn
        .prepare_cached(
            "SELECT j.key, SUM(j.value) FROM orders o, json_each(o.body, '$.reserved') j
              WHERE o.tenant_id = ?1 GROUP BY j.key",
        )
        .and_then(|mut s| {
            s.query_map([&t], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    let moved = conn
        .prepare_cached(
            "SELECT sku, SUM(on_hand_change), SUM(reserved_change) FROM stock_movements
              WHERE tenant_id = ?1 GROUP BY sku",
        )
        .and_then(|mut s| {
            s.query_map([&t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    catalog::ledger(products, held, moved)
}

pub(super) fn movements(
    conn: &Connection,
    tenant: TenantId,
    product: ProductId,
    page: crate::MovementPage,
) -> Result<Vec<StockMovement>> {
    let (after, limit) = (page.after, page.limit);
    conn.prepare_cached(&format!(
        "SELECT {MOVEMENT_COLUMNS} FROM stock_movements
          WHERE tenant_id = ?1 AND product_id = ?2 AND {}",
        if page.newest_first {
            "(?3 = '' OR id < ?3) ORDER BY id DESC LIMIT ?4"
        } else {
            "id > ?3 ORDER BY id LIMIT ?4"
        }
    ))
    .and_then(|mut s| {
        s.query_map(
            params![
                tenant.to_string(),
                product.to_string(),
                after.map(|a| a.to_string()).unwrap_or_default(),
                limit
            ],
            |r| {
                Ok(MovementRow {
                    tenant_id: r.get(0)?,
                    id: r.get(1)?,
                    product_id: r.get(2)?,
                    sku: r.get(3)?,
                    kind: r.get(4)?,
                    on_hand_change: r.get(5)?,
                    reserved_change: r.get(6)?,
                    on_hand: r.get(7)?,
                    reserved: r.get(8)?,
                    reason: r.get(9)?,
                    order_id: r.get(10)?,
                    actor: r.get(11)?,
                    at: r.get(12)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(unavailable)?
    .into_iter()
    .map(MovementRow::into_movement)
    .collect()
}
