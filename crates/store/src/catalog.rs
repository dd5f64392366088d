//! The catalog's rows, written once for every backend: the columns, how a
//! row becomes a [`Product`] or a [`StockMovement`], and the SQL of a page
//! of products.

use std::collections::BTreeMap;

use ordo_domain::pricing::TaxClass;
use ordo_domain::{
    Actor, Currency, MovementKind, Product, ProductId, Sku, StockMovement, StockMovementId,
    TenantId, Timestamp,
};

use crate::query::{Arg, Dialect, Sql};
use crate::{Result, StoreError};

/// Every column of `products`. A change writes them all back (a row's
/// `id`, `sku`, `currency` and `created_at` never change, so rewriting
/// them is harmless and lets insert and update bind the same values).
pub(crate) const PRODUCT_COLUMNS: &str =
    "tenant_id, id, sku, name, description, currency, price, attributes, variant_of, image_url,
     active, track_stock, on_hand, reserved, version, created_at, updated_at, archived_at,
     tax_class, weight_grams";

/// `UPDATE products SET` every column from the parameters of an insert
/// (`$n`/`?n` in [`PRODUCT_COLUMNS`] order), for the row of `$1`, `$2`.
pub(crate) fn update_product(placeholder: char) -> String {
    let sets: Vec<String> = PRODUCT_COLUMNS
        .split(',')
        .map(str::trim)
        .enumerate()
        .skip(2)
        .map(|(i, column)| format!("{column} = {placeholder}{}", i + 1))
        .collect();
    format!(
        "UPDATE products SET {} WHERE tenant_id = {placeholder}1 AND id = {placeholder}2",
        sets.join(", ")
    )
}

/// `INSERT INTO products` with the columns as numbered parameters.
pub(crate) fn insert_product(placeholder: char) -> String {
    let values: Vec<String> = (1..=PRODUCT_COLUMNS.split(',').count())
        .map(|n| format!("{placeholder}{n}"))
        .collect();
    format!(
        "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ({})",
        values.join(", ")
    )
}

pub(crate) const MOVEMENT_COLUMNS: &str =
    "tenant_id, id, product_id, sku, kind, on_hand_change, reserved_change, on_hand, reserved,
     reason, order_id, actor, at";

/// Which products to list; absent filters match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductQuery {
    pub active: Option<bool>,
    /// `Some(true)`: only archived ones; `Some(false)` (the API's default):
    /// none of them.
    pub archived: Option<bool>,
    /// Part of the SKU or the name, without regard to ASCII case.
    pub q: Option<String>,
    pub variant_of: Option<Sku>,
    /// Only products a buyer can (or cannot) have now.
    pub in_stock: Option<bool>,
    /// Only tracked products with at most this many units available.
    pub available_lte: Option<i64>,
    /// Only products after this SKU (a page's last); pages go by SKU.
    pub after: Option<Sku>,
    pub limit: u32,
}

/// A change to one product, run inside the store's write on the current
/// product: it changes the product (its version goes up when it does)
/// and returns the stock movement to record with it, if any.
pub type ProductChange =
    Box<dyn FnOnce(&mut Product) -> Result<Option<StockMovement>> + Send + 'static>;

/// A product row as both databases hand it over.
pub(crate) struct ProductRow {
    pub tenant_id: String,
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub currency: String,
    pub price: i64,
    pub attributes: String,
    pub variant_of: Option<String>,
    pub image_url: Option<String>,
    pub active: bool,
    pub track_stock: bool,
    pub on_hand: i64,
    pub reserved: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived_at: Option<i64>,
    pub tax_class: String,
    pub weight_grams: i64,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl ProductRow {
    pub(crate) fn into_product(self, tenant: TenantId) -> Result<Product> {
        let tenant_id: TenantId = self.tenant_id.parse().map_err(corrupt)?;
        // Belt and braces: a row of another tenant is never returned.
        if tenant_id != tenant {
            return Err(corrupt("a product row belongs to another tenant"));
        }
        let attributes: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&self.attributes).map_err(corrupt)?;
        Ok(Product {
            tenant_id,
            id: ProductId::parse(&self.id)
                .ok_or_else(|| corrupt(format!("product id {}", self.id)))?,
            sku: Sku::parse(&self.sku).map_err(corrupt)?,
            name: self.name,
            description: self.description,
            currency: Currency::parse(&self.currency).map_err(corrupt)?,
            price: self.price,
            attributes,
            variant_of: self
                .variant_of
                .map(|s| Sku::parse(&s))
                .transpose()
                .map_err(corrupt)?,
            image_url: self.image_url,
            active: self.active,
            track_stock: self.track_stock,
            on_hand: self.on_hand,
            reserved: self.reserved,
            version: u64::try_from(self.version).map_err(corrupt)?,
            created_at: Timestamp::from_unix_millis(self.created_at),
            updated_at: Timestamp::from_unix_millis(self.updated_at),
            archived_at: self.archived_at.map(Timestamp::from_unix_millis),
            tax_class: TaxClass::parse(&self.tax_class).map_err(corrupt)?,
            weight_grams: u32::try_from(self.weight_grams).map_err(corrupt)?,
        })
    }
}

/// How a product's attributes are stored (JSON text on both databases).
pub(crate) fn attributes_json(p: &Product) -> Result<String> {
    serde_json::to_string(&p.attributes).map_err(corrupt)
}

/// A stock movement row as both databases hand it over.
pub(crate) struct MovementRow {
    pub tenant_id: String,
    pub id: String,
    pub product_id: String,
    pub sku: String,
    pub kind: String,
    pub on_hand_change: i64,
    pub reserved_change: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub reason: Option<String>,
    pub order_id: Option<String>,
    pub actor: String,
    pub at: i64,
}

impl MovementRow {
    pub(crate) fn into_movement(self) -> Result<StockMovement> {
        Ok(StockMovement {
            tenant_id: self.tenant_id.parse().map_err(corrupt)?,
            id: StockMovementId::parse(&self.id)
                .ok_or_else(|| corrupt(format!("stock movement id {}", self.id)))?,
            product_id: ProductId::parse(&self.product_id)
                .ok_or_else(|| corrupt(format!("product id {}", self.product_id)))?,
            sku: Sku::parse(&self.sku).map_err(corrupt)?,
            kind: MovementKind::parse(&self.kind)
                .ok_or_else(|| corrupt(format!("stock movement kind {}", self.kind)))?,
            on_hand_change: self.on_hand_change,
            reserved_change: self.reserved_change,
            on_hand: self.on_hand,
            reserved: self.reserved,
            reason: self.reason,
            order_id: self
                .order_id
                .map(|o| o.parse())
                .transpose()
                .map_err(corrupt)?,
            actor: serde_json::from_str::<Actor>(&self.actor).map_err(corrupt)?,
            at: Timestamp::from_unix_millis(self.at),
        })
    }
}

pub(crate) fn actor_json(m: &StockMovement) -> Result<String> {
    serde_json::to_string(&m.actor).map_err(corrupt)
}

/// A page of the tenant's products, by SKU.
pub(crate) fn products(dialect: Dialect, tenant: TenantId, q: &ProductQuery) -> Sql {
    let mut sql = Sql::new(
        dialect,
        format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = "),
    );
    sql.arg(Arg::Text(tenant.to_string()));
    match q.active {
        Some(true) => sql.push(" AND active = TRUE"),
        Some(false) => sql.push(" AND active = FALSE"),
        None => {}
    }
    match q.archived {
        Some(true) => sql.push(" AND archived_at IS NOT NULL"),
        Some(false) => sql.push(" AND archived_at IS NULL"),
        None => {}
    }
    match q.in_stock {
        Some(true) => sql.push(" AND (track_stock = FALSE OR on_hand > reserved)"),
        Some(false) => sql.push(" AND track_stock = TRUE AND on_hand <= reserved"),
        None => {}
    }
    if let Some(n) = q.available_lte {
        sql.push(" AND track_stock = TRUE AND on_hand - reserved <= ");
        sql.arg(Arg::Int(n));
    }
    if let Some(parent) = &q.variant_of {
        sql.push(" AND variant_of = ");
        sql.arg(Arg::Text(parent.as_str().to_string()));
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", crate::query::escape_like(text));
        let like = dialect.like;
        sql.push(&format!(" AND (sku {like} "));
        sql.arg(Arg::Text(pattern));
        let p = sql.placeholder(sql.args.len());
        sql.push(&format!(" ESCAPE '\\' OR name {like} {p} ESCAPE '\\')"));
    }
    if let Some(after) = &q.after {
        sql.push(" AND sku > ");
        sql.arg(Arg::Text(after.as_str().to_string()));
    }
    sql.push(" ORDER BY sku LIMIT ");
    sql.arg(Arg::Int(i64::from(q.limit)));
    sql
}

/// What a change came to, before it is stored.
pub(crate) struct ProductChanged {
    pub before_version: u64,
    pub product: Product,
    pub movement: Option<StockMovement>,
}

impl ProductChanged {
    /// Whether there is anything to write.
    pub(crate) fn changed(&self) -> bool {
        self.product.version != self.before_version
    }
}

/// Runs `change` on the current product, after checking its version.
pub(crate) fn run_change(
    mut product: Product,
    expected_version: Option<u64>,
    change: ProductChange,
) -> Result<ProductChanged> {
    let before_version = product.version;
    if let Some(expected) = expected_version.filter(|v| *v != before_version) {
        return Err(StoreError::VersionMismatch {
            expected,
            current: before_version,
        });
    }
    let (id, tenant) = (product.id, product.tenant_id);
    let movement = change(&mut product)?;
    if product.id != id || product.tenant_id != tenant {
        return Err(corrupt("a change tried to move a product"));
    }
    Ok(ProductChanged {
        before_version,
        product,
        movement,
    })
}

/// One product's stock three ways: its counters, what the tenant's orders
/// hold of it, and the sums of its movements. In balance, the three agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLedger {
    pub sku: Sku,
    pub on_hand: i64,
    pub reserved: i64,
    /// The sum of what every order holds of it.
    pub held_by_orders: i64,
    /// The sums of its movements' changes.
    pub on_hand_moved: i64,
    pub reserved_moved: i64,
}

impl StockLedger {
    pub fn in_balance(&self) -> bool {
        self.reserved == self.held_by_orders
            && self.on_hand == self.on_hand_moved
            && self.reserved == self.reserved_moved
    }
}

/// Puts the three sums together, by SKU: products first, then what orders
/// hold and what movements add up to (a SKU held or moved but with no
/// product shows with zero counters).
pub(crate) fn ledger(
    products: Vec<(String, i64, i64)>,
    held: Vec<(String, i64)>,
    moved: Vec<(String, i64, i64)>,
) -> Result<Vec<StockLedger>> {
    fn entry<'a>(
        out: &'a mut BTreeMap<String, StockLedger>,
        sku: &str,
    ) -> Result<&'a mut StockLedger> {
        if !out.contains_key(sku) {
            let parsed = Sku::parse(sku).map_err(corrupt)?;
            out.insert(
                sku.to_string(),
                StockLedger {
                    sku: parsed,
                    on_hand: 0,
                    reserved: 0,
                    held_by_orders: 0,
                    on_hand_moved: 0,
                    reserved_moved: 0,
                },
            );
        }
        out.get_mut(sku).ok_or_else(|| corrupt("ledger entry"))
    }
    let mut out: BTreeMap<String, StockLedger> = BTreeMap::new();
    for (sku, on_hand, reserved) in products {
        let e = entry(&mut out, &sku)?;
        e.on_hand = on_hand;
        e.reserved = reserved;
    }
    for (sku, n) in held {
        entry(&mut out, &sku)?.held_by_orders = n;
    }
    for (sku, on_hand, reserved) in moved {
        let e = entry(&mut out, &sku)?;
        e.on_hand_moved = on_hand;
        e.reserved_moved = reserved;
    }
    Ok(out.into_values().collect())
}
