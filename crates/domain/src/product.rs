//! The catalog: products, their stock, and every change to that stock.
//!
//! A product is one thing that can be sold, named by a SKU unique in its
//! tenant. A product with sizes or colours either lets the buyer choose
//! among them (`attributes`: name → the values a line may pick, stock kept
//! for the product as a whole, as seed 004's shop does) or is split into
//! variants, each a product with its own SKU, price and stock, pointing at
//! the product it is a variant of (`variant_of`).
//!
//! Stock is two counters: `on_hand` (what the shop holds) and `reserved`
//! (held for open orders); `available` is their difference and is never
//! negative. Every change to either is a [`StockMovement`].

use std::collections::BTreeMap;

use crate::event::Actor;
use crate::field::{FieldError, FieldErrors};
use crate::ids::{OrderId, ProductId, StockMovementId, TenantId};
use crate::money::Currency;
use crate::order::Sku;
use crate::pricing::TaxClass;
use crate::timestamp::Timestamp;

pub const MAX_NAME_CHARS: usize = 500;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;
pub const MAX_ATTRIBUTES: usize = 20;
pub const MAX_ATTRIBUTE_VALUES: usize = 100;
pub const MAX_IMAGE_URL_CHARS: usize = 2_000;
pub const MAX_REASON_CHARS: usize = 500;
/// The most units of one product ordo counts.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// The reason on the movement of a new product's first units.
pub const INITIAL_STOCK: &str = "initial stock";

/// A product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub tenant_id: TenantId,
    pub id: ProductId,
    pub sku: Sku,
    pub name: String,
    pub description: Option<String>,
    pub currency: Currency,
    /// Minor units of `currency`.
    pub price: i64,
    /// The values a line may choose for each attribute, e.g. `size → [S, M, L]`.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The SKU of the product this one is a variant of.
    pub variant_of: Option<Sku>,
    pub image_url: Option<String>,
    /// Sold (listed on the storefront, accepted on new lines) when true.
    pub active: bool,
    /// Whether orders reserve and deduct its stock.
    pub track_stock: bool,
    /// What tax its lines pay (see the tenant's tax rules).
    pub tax_class: TaxClass,
    /// What one unit weighs, in grams (shipping rates by weight).
    pub weight_grams: u32,
    pub on_hand: i64,
    pub reserved: i64,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Archived products are never sold again but stay readable.
    pub archived_at: Option<Timestamp>,
}

impl Product {
    /// On hand less reserved; never negative.
    pub fn available(&self) -> i64 {
        (self.on_hand - self.reserved).max(0)
    }

    /// Whether a buyer can have at least one (always, untracked).
    pub fn in_stock(&self) -> bool {
        !self.track_stock || self.available() > 0
    }

    /// Applies a change to the stock on hand, as a movement; refused if on
    /// hand would fall below zero or below what open orders hold.
    pub fn adjust(
        &mut self,
        change: StockChange,
        reason: String,
        actor: Actor,
        now: Timestamp,
    ) -> Result<StockMovement, StockError> {
        let target = match change {
            StockChange::Delta(d) => self.on_hand.checked_add(d),
            StockChange::Set(n) => Some(n),
        };
        let Some(target) = target.filter(|t| (0..=MAX_STOCK).contains(t)) else {
            return Err(StockError::OutOfRange {
                on_hand: self.on_hand,
                change,
            });
        };
        if target < self.reserved {
            return Err(StockError::BelowReserved {
                on_hand: self.on_hand,
                reserved: self.reserved,
                change,
            });
        }
        let before = self.on_hand;
        self.on_hand = target;
        self.touch(now);
        Ok(StockMovement {
            reason: Some(reason),
            ..self.movement(MovementKind::Adjustment, target - before, 0, actor, now)
        })
    }

    /// The movement that made these changes to the counters, which already
    /// hold the result (no reason, no order: the caller adds them).
    pub(crate) fn movement(
        &self,
        kind: MovementKind,
        on_hand_change: i64,
        reserved_change: i64,
        actor: Actor,
        at: Timestamp,
    ) -> StockMovement {
        StockMovement {
            tenant_id: self.tenant_id,
            id: StockMovementId::new_at(at),
            product_id: self.id,
            sku: self.sku.clone(),
            kind,
            on_hand_change,
            reserved_change,
            on_hand: self.on_hand,
            reserved: self.reserved,
            reason: None,
            order_id: None,
            actor,
            at,
        }
    }

    /// Archives the product; `false` if it already was.
    pub fn archive(&mut self, now: Timestamp) -> bool {
        if self.archived_at.is_some() {
            return false;
        }
        self.archived_at = Some(now);
        self.active = false;
        self.touch(now);
        true
    }

    /// Brings an archived product back, inactive until turned on; `false`
    /// if it was not archived.
    pub fn restore(&mut self, now: Timestamp) -> bool {
        if self.archived_at.take().is_none() {
            return false;
        }
        self.touch(now);
        true
    }

    /// Applies a patch; `false` if it changed nothing.
    pub fn apply(&mut self, patch: ProductPatch, now: Timestamp) -> Result<bool, FieldErrors> {
        if patch.active == Some(true) && self.archived_at.is_some() {
            return Err(
                FieldError::new("active", "an archived product cannot be sold")
                    .value(true)
                    .accepted("restore it first (POST /v1/products/{sku}/restore)")
                    .into(),
            );
        }
        if patch.track_stock == Some(false) && self.track_stock && self.reserved > 0 {
            return Err(FieldError::new(
                "track_stock",
                format!(
                    "{} units are reserved for open orders; stock cannot stop being tracked while they are",
                    self.reserved
                ),
            )
            .value(false)
            .accepted("false once no open order holds any unit")
            .into());
        }
        let before = self.clone();
        if let Some(name) = patch.name {
            self.name = name;
        }
        if let Some(description) = patch.description {
            self.description = description;
        }
        if let Some(price) = patch.price {
            self.price = price;
        }
        if let Some(attributes) = patch.attributes {
            self.attributes = attributes;
        }
        if let Some(variant_of) = patch.variant_of {
            self.variant_of = variant_of;
        }
        if let Some(image_url) = patch.image_url {
            self.image_url = image_url;
        }
        if let Some(active) = patch.active {
            self.active = active;
        }
        if let Some(track) = patch.track_stock {
            self.track_stock = track;
        }
        if let Some(class) = patch.tax_class {
            self.tax_class = class;
        }
        if let Some(grams) = patch.weight_grams {
            self.weight_grams = grams;
        }
        if *self == before {
            return Ok(false);
        }
        self.touch(now);
        Ok(true)
    }

    fn touch(&mut self, now: Timestamp) {
        self.version += 1;
        self.updated_at = now;
    }
}

/// A new product, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDraft {
    pub sku: Sku,
    pub name: String,
    pub description: Option<String>,
    pub currency: Currency,
    pub price: i64,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub variant_of: Option<Sku>,
    pub image_url: Option<String>,
    pub active: bool,
    pub track_stock: bool,
    pub tax_class: TaxClass,
    pub weight_grams: u32,
    pub on_hand: i64,
}

impl ProductDraft {
    /// The product, and the stock movement that brought its first units
    /// in (none when it starts with none), so every unit on hand is
    /// accounted for by a movement.
    pub fn into_product(
        self,
        tenant_id: TenantId,
        actor: Actor,
        now: Timestamp,
    ) -> (Product, Option<StockMovement>) {
        let product = Product {
            tenant_id,
            id: ProductId::new_at(now),
            sku: self.sku,
            name: self.name,
            description: self.description,
            currency: self.currency,
            price: self.price,
            attributes: self.attributes,
            variant_of: self.variant_of,
            image_url: self.image_url,
            active: self.active,
            track_stock: self.track_stock,
            tax_class: self.tax_class,
            weight_grams: self.weight_grams,
            on_hand: self.on_hand,
            reserved: 0,
            version: 1,
            created_at: now,
            updated_at: now,
            archived_at: None,
        };
        let movement = (product.on_hand != 0).then(|| StockMovement {
            reason: Some(INITIAL_STOCK.to_string()),
            ..product.movement(MovementKind::Adjustment, product.on_hand, 0, actor, now)
        });
        (product, movement)
    }
}

/// A change to a product; `None` leaves a field as it is, `Some(None)`
/// clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub price: Option<i64>,
    pub attributes: Option<BTreeMap<String, Vec<String>>>,
    pub variant_of: Option<Option<Sku>>,
    pub image_url: Option<Option<String>>,
    pub active: Option<bool>,
    pub track_stock: Option<bool>,
    pub tax_class: Option<TaxClass>,
    pub weight_grams: Option<u32>,
}

/// Checks a SKU, for a field named `field`.
pub fn parse_sku(field: &str, text: &str) -> Result<Sku, FieldError> {
    Sku::parse(text).map_err(|reason| {
        FieldError::new(field, reason)
            .value(text)
            .accepted(Sku::ACCEPTED)
    })
}

/// Checks a product name.
pub fn parse_name(text: &str) -> Result<String, FieldError> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        let e = FieldError::new("name", "a product needs a name")
            .accepted(format!("1 to {MAX_NAME_CHARS} characters"));
        return Err(if name.is_empty() { e } else { e.value(name) });
    }
    Ok(name.to_string())
}

/// Checks a description; blank is none.
pub fn parse_description(text: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldError::new("description", "too long")
            .accepted(format!("at most {MAX_DESCRIPTION_CHARS} characters")));
    }
    Ok(Some(text.to_string()))
}

/// Checks the attributes a line may choose: names as on order lines, each
/// with 1 to [`MAX_ATTRIBUTE_VALUES`] distinct values.
pub fn parse_attributes(
    given: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<String>>, FieldErrors> {
    let mut errors = FieldErrors::new();
    if given.len() > MAX_ATTRIBUTES {
        errors.push(
            FieldError::new("attributes", "too many attributes")
                .accepted(format!("at most {MAX_ATTRIBUTES}")),
        );
    }
    let mut out = BTreeMap::new();
    for (name, values) in given {
        let name_ok = (1..=50).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            errors.push(
                FieldError::new("attributes", "not a valid attribute name")
                    .value(name)
                    .accepted("1 to 50 lower-case letters, digits or '_', e.g. size, colour"),
            );
            continue;
        }
        if values.is_empty() || values.len() > MAX_ATTRIBUTE_VALUES {
            errors.push(
                FieldError::new(
                    format!("attributes.{name}"),
                    "an attribute lists the values a buyer may choose",
                )
                .value(values.len())
                .accepted(format!("1 to {MAX_ATTRIBUTE_VALUES} values")),
            );
            continue;
        }
        let mut kept: Vec<String> = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let value = value.trim();
            if !(1..=200).contains(&value.chars().count()) {
                errors.push(
                    FieldError::new(
                        format!("attributes.{name}[{i}]"),
                        "an attribute value is 1 to 200 characters",
                    )
                    .value(value),
                );
            } else if kept.iter().any(|k| k == value) {
                errors.push(
                    FieldError::new(format!("attributes.{name}[{i}]"), "listed twice").value(value),
                );
            } else {
                kept.push(value.to_string());
            }
        }
        out.insert(name.clone(), kept);
    }
    errors.finish(|| out)
}

/// Checks an image URL: http(s), at most [`MAX_IMAGE_URL_CHARS`]; blank is none.
pub fn parse_image_url(text: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let scheme_ok = text
        .split_once("://")
        .is_some_and(|(s, rest)| matches!(s, "http" | "https") && !rest.is_empty());
    if !scheme_ok
        || text.chars().count() > MAX_IMAGE_URL_CHARS
        || text.chars().any(char::is_whitespace)
    {
        return Err(FieldError::new("image_url", "not an image URL")
            .value(text)
            .accepted(format!(
                "an http or https URL of at most {MAX_IMAGE_URL_CHARS} characters"
            )));
    }
    Ok(Some(text.to_string()))
}

/// The heaviest unit ordo weighs: 1,000 tonnes, in grams.
pub const MAX_WEIGHT_GRAMS: i64 = 1_000_000_000;

/// Checks a unit's weight in grams.
pub fn parse_weight(n: i64) -> Result<u32, FieldError> {
    u32::try_from(n)
        .ok()
        .filter(|g| i64::from(*g) <= MAX_WEIGHT_GRAMS)
        .ok_or_else(|| {
            FieldError::new("weight_grams", "a weight is a whole number of grams")
                .value(n)
                .accepted(format!("0 to {MAX_WEIGHT_GRAMS}"))
        })
}

/// Checks a stock count for `field`.
pub fn parse_stock(field: &str, n: i64) -> Result<i64, FieldError> {
    if (0..=MAX_STOCK).contains(&n) {
        Ok(n)
    } else {
        Err(
            FieldError::new(field, "a stock count is a whole number of units")
                .value(n)
                .accepted(format!("0 to {MAX_STOCK}")),
        )
    }
}

/// Checks the reason given for a stock adjustment.
pub fn parse_reason(text: Option<&str>) -> Result<String, FieldError> {
    let reason = text.map(str::trim).unwrap_or("");
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        let e = FieldError::new("reason", "every adjustment needs a reason").accepted(format!(
            "1 to {MAX_REASON_CHARS} characters, e.g. \"restock\", \"stock count\", \"damaged\""
        ));
        return Err(if reason.is_empty() {
            e
        } else {
            e.value(reason)
        });
    }
    Ok(reason.to_string())
}

/// How stock on hand changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    /// Add (or, negative, take away) units.
    Delta(i64),
    /// Counted: this many units are on hand.
    Set(i64),
}

impl StockChange {
    /// The request field that carried it.
    pub fn field(self) -> &'static str {
        match self {
            StockChange::Delta(_) => "delta",
            StockChange::Set(_) => "set",
        }
    }

    pub fn amount(self) -> i64 {
        match self {
            StockChange::Delta(n) | StockChange::Set(n) => n,
        }
    }
}

/// Why a change to stock was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("on hand would be {}, outside 0 to {MAX_STOCK} (it is {on_hand})", match change { StockChange::Delta(d) => on_hand.saturating_add(*d), StockChange::Set(n) => *n })]
    OutOfRange { on_hand: i64, change: StockChange },
    #[error("on hand cannot go below the {reserved} units reserved by open orders (it is {on_hand}; release or cancel those orders first)")]
    BelowReserved {
        on_hand: i64,
        reserved: i64,
        change: StockChange,
    },
}

str_enum!(
    /// What moved stock.
    MovementKind {
        /// Counted or corrected by hand.
        Adjustment = "adjustment",
        /// Held for an order.
        Reservation = "reservation",
        /// An order's hold let go (cancelled, edited, expired).
        Release = "release",
        /// Left the shop in a shipment.
        Deduction = "deduction",
        /// Came back in a return, in sellable state.
        Restock = "restock",
    }
);

/// One change to a product's stock, with the counters after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMovement {
    pub tenant_id: TenantId,
    pub id: StockMovementId,
    pub product_id: ProductId,
    pub sku: Sku,
    pub kind: MovementKind,
    pub on_hand_change: i64,
    pub reserved_change: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub reason: Option<String>,
    pub order_id: Option<OrderId>,
    pub actor: Actor,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(on_hand: i64, reserved: i64) -> Product {
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let mut p = ProductDraft {
            sku: Sku::parse("TEE-M").unwrap(),
            name: "Tee".into(),
            description: None,
            currency: Currency::parse("NGN").unwrap(),
            price: 1_000_000,
            attributes: BTreeMap::new(),
            variant_of: None,
            image_url: None,
            active: true,
            track_stock: true,
            tax_class: Default::default(),
            weight_grams: 0,
            on_hand,
        }
        .into_product(TenantId::new(), actor(), now)
        .0;
        p.reserved = reserved;
        p
    }

    fn actor() -> Actor {
        Actor::api_key("key_x", "owner")
    }

    #[test]
    fn adjustments_move_on_hand_and_say_so() {
        let mut p = product(5, 2);
        let now = Timestamp::from_unix_millis(1_700_000_001_000);
        let m = p
            .adjust(StockChange::Delta(3), "restock".into(), actor(), now)
            .unwrap();
        assert_eq!((p.on_hand, p.available(), p.version), (8, 6, 2));
        assert_eq!((m.on_hand_change, m.on_hand, m.reserved), (3, 8, 2));
        let m = p
            .adjust(StockChange::Set(4), "count".into(), actor(), now)
            .unwrap();
        assert_eq!((m.on_hand_change, p.on_hand), (-4, 4));
    }

    #[test]
    fn on_hand_never_falls_below_reserved_or_zero() {
        let mut p = product(5, 3);
        let now = Timestamp::from_unix_millis(1_700_000_001_000);
        let e = p
            .adjust(StockChange::Delta(-3), "damaged".into(), actor(), now)
            .unwrap_err();
        assert!(
            matches!(e, StockError::BelowReserved { reserved: 3, .. }),
            "{e}"
        );
        assert!(p
            .adjust(StockChange::Set(-1), "x".into(), actor(), now)
            .is_err());
        assert!(p
            .adjust(StockChange::Delta(i64::MAX), "x".into(), actor(), now)
            .is_err());
        assert_eq!((p.on_hand, p.version), (5, 1));
    }

    #[test]
    fn availability_and_in_stock() {
        let mut p = product(2, 2);
        assert_eq!(p.available(), 0);
        assert!(!p.in_stock());
        p.track_stock = false;
        assert!(p.in_stock());
    }

    #[test]
    fn archived_products_cannot_be_turned_on_until_restored() {
        let mut p = product(1, 0);
        let now = Timestamp::from_unix_millis(1_700_000_001_000);
        assert!(p.archive(now));
        assert!(!p.active && !p.archive(now));
        let patch = ProductPatch {
            active: Some(true),
            ..ProductPatch::default()
        };
        assert!(p.apply(patch.clone(), now).is_err());
        assert!(p.restore(now));
        assert!(p.apply(patch, now).unwrap());
        assert!(p.active);
    }

    #[test]
    fn attributes_are_checked() {
        let mut given = BTreeMap::new();
        given.insert("size".to_string(), vec!["S".into(), " M ".into()]);
        assert_eq!(parse_attributes(&given).unwrap()["size"], ["S", "M"]);
        given.insert("Colour".to_string(), vec!["red".into()]);
        given.insert("fit".to_string(), vec![]);
        given.insert("cut".to_string(), vec!["a".into(), "a".into()]);
        let errors = parse_attributes(&given).unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.clone()).collect();
        assert_eq!(
            fields,
            ["attributes", "attributes.cut[1]", "attributes.fit"]
        );
    }
}
