//! Orders and their lines: creation, edits, and the status actions.
//!
//! An [`OrderDraft`] is input that has been fully parsed; [`Order::create`]
//! turns it into an order with totals, and every later change goes through a
//! method here that checks the transition table, bumps the version and
//! returns the timeline event describing the change.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use crate::contact::{Address, Buyer};
use crate::event::{Actor, EventDraft, EventType};
use crate::field::{FieldError, FieldErrors};
use crate::fulfilment::{check_line_instances, Instance, Serials, Shipment, StateError};
use crate::ids::{LineId, OrderId, ProductId, TenantId};
use crate::ledger::Ledger;
use crate::money::{self, Currency};
use crate::pricing::{self, LineBase, PriceBasis, Rate, TaxClass};
use crate::product::Product;
use crate::reference::OrderReference;
use crate::returns::Return;
use crate::status::{
    Action, FulfillmentStatus, OrderStatus, PaymentStatus, Stage, TransitionError,
};
use crate::timestamp::Timestamp;

pub const MAX_LINES: usize = 500;
pub const MAX_QUANTITY: i64 = 1_000_000;
pub const MAX_NOTES_CHARS: usize = 5_000;
pub const MAX_ATTRIBUTES: usize = 20;
pub const MAX_EXTERNAL_IDS: usize = 10;

/// A stock-keeping unit: 1 to 64 letters, digits and `. _ - /`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    pub const ACCEPTED: &'static str = "1 to 64 letters, digits, '.', '_', '-' or '/'";

    pub fn parse(text: &str) -> Result<Sku, String> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        if ok {
            Ok(Sku(text.to_string()))
        } else {
            Err("not a valid SKU".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The namespace of an external identifier, as in seed 003:
/// `com.acme.order-id`. Lower-case letters, digits, `.`, `-` and `_`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    pub const ACCEPTED: &'static str =
        "1 to 100 lower-case letters, digits, '.', '-' or '_', starting with a letter or digit, e.g. com.acme.order-id";

    pub fn parse(text: &str) -> Result<Namespace, String> {
        let ok = (1..=100).contains(&text.len())
            && text.as_bytes()[0].is_ascii_alphanumeric()
            && text.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
            });
        if ok {
            Ok(Namespace(text.to_string()))
        } else {
            Err("not a valid identifier namespace".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The value of an external identifier: 1 to 200 printable characters.
pub fn parse_external_value(text: &str) -> Result<String, String> {
    if (1..=200).contains(&text.chars().count()) && !text.chars().any(char::is_control) {
        Ok(text.to_string())
    } else {
        Err("an identifier value is 1 to 200 printable characters".to_string())
    }
}

/// Identifiers other systems use for this order, namespace → value, each
/// unique within the tenant.
pub type ExternalIds = BTreeMap<Namespace, String>;

macro_rules! text_newtype_serde {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$t>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use text_newtype_serde;
text_newtype_serde!(Sku);
text_newtype_serde!(Namespace);

str_enum!(
    /// Where the order came from.
    Channel {
        Api = "api",
        Web = "web",
        /// The public storefront's guest checkout.
        Storefront = "storefront",
        Whatsapp = "whatsapp",
        Instagram = "instagram",
        Email = "email",
        Phone = "phone",
        InStore = "in_store",
        Marketplace = "marketplace",
        Import = "import",
        Other = "other",
    }
);

/// A line as given, parsed and checked, before it belongs to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDraft {
    pub sku: Option<Sku>,
    pub name: String,
    pub description: Option<String>,
    pub quantity: u32,
    /// Minor units of the order's currency.
    pub unit_price: i64,
    /// Size, colour and the like.
    pub attributes: BTreeMap<String, String>,
    /// The catalog product the line was taken from; `None` for free text.
    pub product_id: Option<ProductId>,
    /// What the catalog asked when the line was taken (a catalog line
    /// whose `unit_price` differs was priced by the staff).
    pub catalog_price: Option<i64>,
    /// Its serialised units (an IMEI each): none, or one per unit.
    pub instances: Vec<Instance>,
    /// The product's tax class (`standard` when `None`).
    pub tax_class: Option<TaxClass>,
    /// What one unit weighs, in grams (for shipping by weight).
    pub weight_grams: u32,
    /// The tax rate its price was quoted with.
    pub tax_rate: Rate,
}

/// The text of a line as it arrives at the edge.
#[derive(Debug, Clone, Copy)]
pub struct LineText<'a> {
    pub sku: Option<&'a str>,
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub quantity: i64,
    pub unit_price: Option<&'a str>,
    pub attributes: &'a BTreeMap<String, String>,
    pub instances: &'a [Instance],
}

fn check_description(text: Option<&str>, errors: &mut FieldErrors) -> Option<String> {
    let description = text.map(str::trim).filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > 2_000) {
        errors.push(FieldError::new("description", "too long").accepted("at most 2000 characters"));
    }
    description.map(str::to_string)
}

fn check_quantity(quantity: i64, errors: &mut FieldErrors) -> u32 {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        errors.push(
            FieldError::new("quantity", "the quantity must be a positive whole number")
                .value(quantity)
                .accepted(format!("a whole number from 1 to {MAX_QUANTITY}")),
        );
    }
    u32::try_from(quantity).unwrap_or(0)
}

fn check_unit_price(text: &str, currency: Currency, errors: &mut FieldErrors) -> i64 {
    errors
        .take(currency.parse_price("unit_price", text))
        .unwrap_or(0)
}

/// The SKUs of the lines taken from the catalog: the products a change
/// bringing in these lines may reserve.
pub fn catalog_skus(lines: &[LineDraft]) -> Vec<Sku> {
    lines
        .iter()
        .filter(|l| l.product_id.is_some())
        .filter_map(|l| l.sku.clone())
        .collect()
}

impl LineDraft {
    /// Checks a free-text line (one not taken from the catalog); field
    /// names in errors are relative to the line.
    pub fn parse(text: LineText<'_>, currency: Currency) -> Result<LineDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let sku = text.sku.and_then(|s| {
            errors.take(Sku::parse(s).map_err(|reason| {
                FieldError::new("sku", reason)
                    .value(s)
                    .accepted(Sku::ACCEPTED)
            }))
        });
        let name = text.name.map(str::trim).unwrap_or("");
        if name.is_empty() || name.chars().count() > 500 {
            let e =
                FieldError::new("name", "every item needs a name").accepted("1 to 500 characters");
            errors.push(if name.is_empty() { e } else { e.value(name) });
        }
        let description = check_description(text.description, &mut errors);
        let quantity = check_quantity(text.quantity, &mut errors);
        let unit_price = match text.unit_price {
            Some(price) => check_unit_price(price, currency, &mut errors),
            None => {
                errors.push(
                    FieldError::new(
                        "unit_price",
                        "an item not taken from the catalog needs a price",
                    )
                    .accepted("a decimal string in major units, e.g. \"5000.00\""),
                );
                0
            }
        };
        if text.attributes.len() > MAX_ATTRIBUTES {
            errors.push(
                FieldError::new("attributes", "too many attributes")
                    .accepted(format!("at most {MAX_ATTRIBUTES}")),
            );
        }
        for (key, value) in text.attributes {
            let key_ok = (1..=50).contains(&key.len())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !key_ok {
                errors.push(
                    FieldError::new("attributes", "not a valid attribute name")
                        .value(key)
                        .accepted("1 to 50 lower-case letters, digits or '_', e.g. size, colour"),
                );
            }
            if !(1..=200).contains(&value.chars().count()) {
                errors.push(
                    FieldError::new(
                        format!("attributes.{key}"),
                        "an attribute value is 1 to 200 characters",
                    )
                    .value(value),
                );
            }
        }
        errors.finish(|| LineDraft {
            sku,
            name: name.to_string(),
            description,
            quantity,
            unit_price,
            attributes: text.attributes.clone(),
            product_id: None,
            catalog_price: None,
            // Trimmed as kept, so a repeat compares equal; checked with
            // the order's other lines.
            instances: text
                .instances
                .iter()
                .map(|u| u.check().unwrap_or_else(|_| u.clone()))
                .collect(),
            tax_class: None,
            weight_grams: 0,
            tax_rate: Rate::ZERO,
        })
    }

    /// Checks a line of `product`: its name, price and attribute values
    /// are the catalog's as they are now (a snapshot); a `unit_price`
    /// given is the staff's price instead of the catalog's; attributes must
    /// be among the values the product lists, and one with several values
    /// must be chosen. Field names in errors are relative to the line.
    pub fn from_product(
        text: LineText<'_>,
        product: &Product,
        currency: Currency,
    ) -> Result<LineDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let sku = product.sku.as_str();
        if product.archived_at.is_some() || !product.active {
            errors.push(
                FieldError::new(
                    "sku",
                    if product.archived_at.is_some() {
                        "this product is archived and no longer sold"
                    } else {
                        "this product is not on sale (inactive)"
                    },
                )
                .value(sku)
                .accepted("the SKU of an active product"),
            );
        }
        if product.currency != currency {
            errors.push(
                FieldError::new(
                    "sku",
                    format!(
                        "this product is priced in {}, the order in {currency}",
                        product.currency
                    ),
                )
                .value(sku)
                .accepted(format!("a product priced in {currency}")),
            );
        }
        if let Some(name) = text.name.filter(|n| n.trim() != product.name) {
            errors.push(
                FieldError::new("name", "a catalog item takes its name from the product")
                    .value(name)
                    .accepted(format!("no name, or {:?}", product.name)),
            );
        }
        let description = check_description(text.description, &mut errors);
        let quantity = check_quantity(text.quantity, &mut errors);
        let unit_price = match text.unit_price {
            Some(price) => check_unit_price(price, currency, &mut errors),
            None => product.price,
        };
        let mut attributes = BTreeMap::new();
        for (key, value) in text.attributes {
            let Some(values) = product.attributes.get(key) else {
                let names: Vec<&str> = product.attributes.keys().map(String::as_str).collect();
                errors.push(
                    FieldError::new(
                        format!("attributes.{key}"),
                        "the product has no such attribute",
                    )
                    .value(value)
                    .accepted(if names.is_empty() {
                        "no attributes".to_string()
                    } else {
                        names.join(", ")
                    }),
                );
                continue;
            };
            // Buyers type "m" for "M": the catalog's spelling is kept.
            match values.iter().find(|v| v.eq_ignore_ascii_case(value.trim())) {
                Some(v) => {
                    attributes.insert(key.clone(), v.clone());
                }
                None => errors.push(
                    FieldError::new(
                        format!("attributes.{key}"),
                        "not a value this product comes in",
                    )
                    .value(value)
                    .accepted(values.join(", ")),
                ),
            }
        }
        for (key, values) in &product.attributes {
            if text.attributes.contains_key(key) {
                continue;
            }
            match values.as_slice() {
                [only] => {
                    attributes.insert(key.clone(), only.clone());
                }
                _ => errors.push(
                    FieldError::new(format!("attributes.{key}"), "choose one")
                        .accepted(values.join(", ")),
                ),
            }
        }
        errors.finish(|| LineDraft {
            sku: Some(product.sku.clone()),
            name: product.name.clone(),
            description,
            quantity,
            unit_price,
            attributes,
            product_id: Some(product.id),
            catalog_price: Some(product.price),
            // Trimmed as kept, so a repeat compares equal; checked with
            // the order's other lines.
            instances: text
                .instances
                .iter()
                .map(|u| u.check().unwrap_or_else(|_| u.clone()))
                .collect(),
            tax_class: Some(product.tax_class.clone()),
            weight_grams: product.weight_grams,
            tax_rate: Rate::ZERO,
        })
    }
}

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub id: LineId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub quantity: u32,
    pub unit_price: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// `quantity × unit_price`, exactly.
    pub line_total: i64,
    /// The catalog product the line was taken from; `None` for free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ProductId>,
    /// What the catalog asked when the line was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_price: Option<i64>,
    /// Its serialised units, when given with it (shipments may name them
    /// instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// Units called off before they shipped (`quantity` is what is left
    /// ordered; the buyer first asked for `quantity + cancelled`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cancelled: u32,
    /// What promotions take off `line_total`.
    #[serde(default, skip_serializing_if = "is_zero_amount")]
    pub discount: i64,
    /// The tax rate it was priced with.
    #[serde(default, skip_serializing_if = "Rate::is_zero")]
    pub tax_rate: Rate,
    /// Its tax: on top of its price after discounts, or inside it when
    /// the order's prices include tax.
    #[serde(default, skip_serializing_if = "is_zero_amount")]
    pub tax: i64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_amount(n: &i64) -> bool {
    *n == 0
}

impl Line {
    /// Whether `draft` says this line: as it is, or, when some of its
    /// units were called off, as it was first ordered (what an
    /// integration sending the order again says).
    fn same_as(&self, draft: &LineDraft) -> bool {
        let units = if draft.quantity == self.quantity {
            draft.instances == self.instances
        } else {
            let first = draft.quantity as usize;
            self.cancelled > 0
                && draft.quantity == self.quantity + self.cancelled
                && (draft.instances.is_empty() && self.instances.is_empty()
                    || draft.instances.len() == first
                        && self.instances.iter().all(|u| draft.instances.contains(u)))
        };
        units
            && self.sku == draft.sku
            && self.name == draft.name
            && self.description == draft.description
            && self.unit_price == draft.unit_price
            && self.attributes == draft.attributes
            && self.product_id == draft.product_id
            && self.catalog_price == draft.catalog_price
    }

    /// Whether the staff priced a catalog line instead of the catalog.
    pub fn price_overridden(&self) -> bool {
        self.catalog_price.is_some_and(|c| c != self.unit_price)
    }

    /// What the buyer pays for the line: `line_total − discount`, plus its
    /// tax unless the prices include it.
    pub fn total(&self, taxes_included: bool) -> i64 {
        let net = self.line_total - self.discount;
        if taxes_included {
            net
        } else {
            net + self.tax
        }
    }

    /// What `units` of the line cost the buyer, counted after the first
    /// `after` (those already given back): `V(after + units) − V(after)`,
    /// where `V(n)` is `n`'s share of the line's total rounded half up and
    /// all of its units are its total exactly, so units given back one by
    /// one add up to the line's total, never a minor unit more. Units
    /// beyond `quantity` (called off) are valued at the same share; a line
    /// with every unit called off, at its unit price.
    pub fn value_of(&self, units: u32, after: u32, taxes_included: bool) -> i64 {
        let q = i128::from(self.quantity);
        if q == 0 {
            return money::line_total(units, self.unit_price).unwrap_or(0);
        }
        let total = i128::from(self.total(taxes_included));
        let share = |n: i128| (2 * total * n + q) / (2 * q);
        let v = |n: i128| if n == q { total } else { share(n) };
        let (from, to) = (i128::from(after), i128::from(after) + i128::from(units));
        i64::try_from(v(to) - v(from)).unwrap_or(0)
    }
}

/// A new order's content, fully parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    pub currency: Currency,
    pub buyer: Buyer,
    pub lines: Vec<LineDraft>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub notes: Option<String>,
    pub external_ids: ExternalIds,
    pub channel: Channel,
    /// What it is priced by (see [`pricing::quote`]); each line carries
    /// its tax rate.
    pub pricing: PriceBasis,
}

/// Checks free-text notes.
pub fn parse_notes(text: Option<&str>) -> Result<Option<String>, FieldError> {
    let notes = text.map(str::trim).filter(|n| !n.is_empty());
    match notes {
        Some(n) if n.chars().count() > MAX_NOTES_CHARS => {
            Err(FieldError::new("notes", "the notes are too long")
                .accepted(format!("at most {MAX_NOTES_CHARS} characters")))
        }
        n => Ok(n.map(str::to_string)),
    }
}

/// Checks the number of lines of an order.
pub fn check_line_count(count: usize) -> Result<(), FieldError> {
    if count == 0 {
        return Err(FieldError::new("items", "an order needs at least one item")
            .accepted(format!("1 to {MAX_LINES} items")));
    }
    if count > MAX_LINES {
        return Err(FieldError::new("items", "too many items")
            .value(count)
            .accepted(format!("1 to {MAX_LINES} items")));
    }
    Ok(())
}

/// A change to an order's content. `None` leaves a field as it is; for the
/// optional fields, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderPatch {
    pub buyer: Option<Buyer>,
    pub lines: Option<Vec<LineDraft>>,
    pub shipping_address: Option<Option<Address>>,
    pub billing_address: Option<Option<Address>>,
    pub notes: Option<Option<String>>,
    pub external_ids: Option<ExternalIds>,
    /// Prices the order again on this basis, each line at its draft's tax
    /// rate (`lines` must then be given); otherwise the order keeps the
    /// basis it has, and only new lines take their draft's rate.
    pub reprice: Option<PriceBasis>,
}

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    NotAllowed(#[from] TransitionError),
    #[error("{0}")]
    Invalid(FieldErrors),
}

/// Why a repeated create (PUT by external id) cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    #[error("the order's {field} is {current} and cannot change to {given}")]
    Immutable {
        field: &'static str,
        current: String,
        given: String,
    },
    #[error(transparent)]
    NotEditable(#[from] TransitionError),
}

/// Why a change to an order was refused by the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Reconcile(ReconcileError),
    /// A payment or refund the ledger cannot take.
    #[error(transparent)]
    Ledger(crate::payment::LedgerRefusal),
    /// Not enough stock of these SKUs.
    #[error("not enough stock of {}", .0.iter().map(|s| s.sku.as_str()).collect::<Vec<_>>().join(", "))]
    Short(Vec<crate::stock::Shortage>),
    /// A shipment's or a return's state does not allow the action.
    #[error(transparent)]
    State(#[from] StateError),
    /// The order has no such shipment, return, …
    #[error("no {0} with that id on this order")]
    Missing(&'static str),
    /// A promotion the order applied can no longer be used (its limits
    /// were reached while the order was being placed).
    #[error(transparent)]
    Promotion(Box<PromotionRefusal>),
}

/// A promotion an order applied that can no longer be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("promotion {}: {reason}", .code.as_ref().map_or(.name.as_str(), |c| c.as_str()))]
pub struct PromotionRefusal {
    pub id: crate::ids::PromotionId,
    pub name: String,
    pub code: Option<pricing::Code>,
    pub reason: pricing::NotApplicable,
}

impl From<EditError> for Refusal {
    fn from(e: EditError) -> Self {
        match e {
            EditError::NotAllowed(t) => Refusal::Transition(t),
            EditError::Invalid(f) => Refusal::Invalid(f),
        }
    }
}

impl From<ReconcileError> for Refusal {
    fn from(e: ReconcileError) -> Self {
        match e {
            ReconcileError::NotEditable(t) => Refusal::Transition(t),
            other => Refusal::Reconcile(other),
        }
    }
}

/// What a repeated create amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconcile {
    /// The order already is what was sent.
    Unchanged,
    /// The order differs and can take this edit.
    Edit(Box<OrderPatch>),
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub tenant_id: TenantId,
    pub reference: OrderReference,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub fulfillment_status: FulfillmentStatus,
    pub currency: Currency,
    pub buyer: Buyer,
    pub lines: Vec<Line>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: ExternalIds,
    pub channel: Channel,
    /// Who created it; a vendor sees only the orders it created.
    pub created_by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Σ `quantity × unit_price` of its lines.
    pub subtotal: i64,
    /// What promotions take off.
    #[serde(default, skip_serializing_if = "is_zero_amount")]
    pub discount_total: i64,
    #[serde(default, skip_serializing_if = "is_zero_amount")]
    pub shipping_total: i64,
    /// The tax of its lines and shipping (inside `total` or on top of the
    /// prices, as `pricing.taxes_included` says).
    #[serde(default, skip_serializing_if = "is_zero_amount")]
    pub tax_total: i64,
    /// What the buyer pays: the exact sum of its lines' totals and the
    /// shipping (with its tax when prices exclude tax).
    pub total: i64,
    /// What it was priced by: its promotions, its shipping, whether its
    /// prices include tax.
    #[serde(default, skip_serializing_if = "PriceBasis::is_empty")]
    pub pricing: PriceBasis,
    /// Starts at 1 and grows by one with every change (optimistic concurrency).
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
    /// Whether the order holds stock for its catalog lines: it reserves
    /// what they need while it does, and lets it go when it stops.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_stock: bool,
    /// Units reserved for the order, by SKU: what it holds of each product.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reserved: BTreeMap<Sku, u32>,
    /// When an unconfirmed order's reservation lapses (the order is then
    /// cancelled with reason `reservation_expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_until: Option<Timestamp>,
    /// Payments, refunds and receipts in review; `payment_status` is
    /// derived from it.
    #[serde(default, skip_serializing_if = "Ledger::is_empty")]
    pub ledger: Ledger,
    /// Parcels of its units, cancelled ones included; `fulfillment_status`
    /// is derived from them and the returns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipments: Vec<Shipment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returns: Vec<Return>,
}

/// Everything an order needs besides its content.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub tenant_id: TenantId,
    pub reference: OrderReference,
    pub created_by: Actor,
    pub now: Timestamp,
}

fn build_lines(drafts: Vec<LineDraft>, previous: &[Line]) -> Result<Vec<Line>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut lines = Vec::with_capacity(drafts.len());
    for (i, mut d) in drafts.into_iter().enumerate() {
        let mut unit_errors = FieldErrors::new();
        d.instances = check_line_instances(&d.instances, d.quantity, &mut unit_errors);
        for e in unit_errors.under(&format!("items[{i}]")).0 {
            errors.push(e);
        }
        if let Some(p) = previous.get(i).filter(|p| p.same_as(&d)) {
            // The line as it is, units called off included.
            lines.push(p.clone());
            continue;
        }
        let Some(line_total) = money::line_total(d.quantity, d.unit_price) else {
            errors.push(FieldError::new(
                format!("items[{i}]"),
                "quantity × unit_price is larger than ordo accepts",
            ));
            continue;
        };
        lines.push(Line {
            id: LineId::new(),
            sku: d.sku,
            name: d.name,
            description: d.description,
            quantity: d.quantity,
            unit_price: d.unit_price,
            attributes: d.attributes,
            line_total,
            product_id: d.product_id,
            catalog_price: d.catalog_price,
            instances: d.instances,
            cancelled: 0,
            discount: 0,
            tax_rate: d.tax_rate,
            tax: 0,
        });
    }
    let mut serials = Serials::default();
    for (i, line) in lines.iter().enumerate() {
        serials.admit(
            i,
            &line.instances,
            &format!("items[{i}].instances"),
            &mut errors,
        );
    }
    errors.finish(|| lines)
}

impl Order {
    /// A new, pending order from a draft, and its `order.created` event.
    pub fn create(draft: OrderDraft, new: NewOrder) -> Result<(Order, EventDraft), FieldErrors> {
        let lines = build_lines(draft.lines, &[]).map_err(|e| e.under_items())?;
        let mut order = Order {
            id: OrderId::new_at(new.now),
            tenant_id: new.tenant_id,
            reference: new.reference,
            status: OrderStatus::Pending,
            payment_status: PaymentStatus::Unpaid,
            fulfillment_status: FulfillmentStatus::Unfulfilled,
            currency: draft.currency,
            buyer: draft.buyer,
            lines,
            shipping_address: draft.shipping_address,
            billing_address: draft.billing_address,
            notes: draft.notes,
            external_ids: draft.external_ids,
            channel: draft.channel,
            created_by: new.created_by,
            batch_id: None,
            cancel_reason: None,
            subtotal: 0,
            discount_total: 0,
            shipping_total: 0,
            tax_total: 0,
            total: 0,
            pricing: draft.pricing,
            version: 1,
            created_at: new.now,
            updated_at: new.now,
            confirmed_at: None,
            completed_at: None,
            cancelled_at: None,
            holds_stock: false,
            reserved: BTreeMap::new(),
            reserved_until: None,
            ledger: Ledger::default(),
            shipments: Vec::new(),
            returns: Vec::new(),
        };
        order.price_lines()?;
        let mut event = EventDraft {
            event_type: EventType::OrderCreated,
            data: json!({
                "reference": order.reference.as_str(),
                "status": order.status,
                "currency": order.currency,
                "total": order.currency.format_amount(order.total),
                "items": order.lines.len(),
                "channel": order.channel,
            }),
        };
        if !order.pricing.fallbacks.is_empty() {
            // The timeline says which providers the shop's own rules stood in for.
            event.data["pricing_fallbacks"] = json!(order.pricing.fallbacks);
        }
        Ok((order, event))
    }

    pub fn stage(&self) -> Stage {
        Stage::of(self.status, self.payment_status, self.fulfillment_status)
    }

    /// Refuses `action` unless the three statuses (and the goods) allow it.
    pub fn check(&self, action: Action) -> Result<OrderStatus, TransitionError> {
        self.allows(action)
            .map_err(|reason| self.refusal(action, reason))
    }

    /// `action` refused in the order's current state, because of `reason`
    /// (`None` when the status alone says it).
    pub(crate) fn refusal(&self, action: Action, reason: Option<&'static str>) -> TransitionError {
        TransitionError {
            action,
            status: self.status,
            payment_status: self.payment_status,
            fulfillment_status: self.fulfillment_status,
            reason,
            allowed: self.allowed_actions(),
        }
    }

    /// Where `action` leads, or why not (`None` when the status alone says it).
    fn allows(&self, action: Action) -> Result<OrderStatus, Option<&'static str>> {
        let next = self.status.after(action).ok_or(None)?;
        let reason = match action {
            Action::Cancel if self.fulfillment_status.has_shipped() => {
                Some("goods have already shipped; record a return instead")
            }
            Action::Edit if self.payment_status != PaymentStatus::Unpaid => {
                Some("payments have been recorded against it")
            }
            Action::Edit if self.fulfillment_status.has_shipped() => {
                Some("goods have already shipped")
            }
            Action::CancelItems
                if self.ledger.totals(self.total).pending > 0
                    || self.ledger.receipts_in_review() > 0 =>
            {
                Some("a payment or receipt awaits a decision; settle it first")
            }
            _ => self.goods_refuse(action),
        };
        reason.map_or(Ok(next), |r| Err(Some(r)))
    }

    /// The actions the current state allows.
    pub fn allowed_actions(&self) -> Vec<Action> {
        Action::ALL
            .iter()
            .copied()
            .filter(|a| self.allows(*a).is_ok())
            .collect()
    }

    pub(crate) fn touch(&mut self, now: Timestamp) {
        self.version += 1;
        // Never let time run backwards on one order, whatever the clock does.
        self.updated_at = now.max(self.updated_at);
    }

    fn status_event(&self, event_type: EventType, from: OrderStatus) -> EventDraft {
        EventDraft {
            event_type,
            data: json!({ "status": { "from": from, "to": self.status } }),
        }
    }

    pub fn confirm(&mut self, now: Timestamp) -> Result<EventDraft, TransitionError> {
        let from = self.status;
        self.status = self.check(Action::Confirm)?;
        self.confirmed_at = Some(now);
        self.touch(now);
        Ok(self.status_event(EventType::OrderConfirmed, from))
    }

    pub fn complete(&mut self, now: Timestamp) -> Result<EventDraft, TransitionError> {
        let from = self.status;
        self.status = self.check(Action::Complete)?;
        self.completed_at = Some(now);
        // Every unit has shipped: nothing is left to hold.
        self.holds_stock = false;
        self.reserved_until = None;
        self.touch(now);
        Ok(self.status_event(EventType::OrderCompleted, from))
    }

    pub fn cancel(
        &mut self,
        reason: String,
        now: Timestamp,
    ) -> Result<EventDraft, TransitionError> {
        let from = self.status;
        self.status = self.check(Action::Cancel)?;
        self.cancelled_at = Some(now);
        self.touch(now);
        let mut event = self.status_event(EventType::OrderCancelled, from);
        event.data["reason"] = Value::String(reason.clone());
        self.cancel_reason = Some(reason);
        let called_off = self.cancel_pending_shipments(now);
        if !called_off.is_empty() {
            event.data["shipments_cancelled"] = json!(called_off);
        }
        // What the order holds goes back: through the provider for what it
        // charged, by hand for the rest (seed 001's refund on cancel).
        let refunds = self.compensate(now);
        if !refunds.is_empty() {
            let paid = self.payment_status;
            self.payment_status = self.ledger.status(self.total);
            event.data["refunds"] = Value::Array(refunds);
            event.data["payment_status"] = json!({ "from": paid, "to": self.payment_status });
        }
        Ok(event)
    }

    /// Applies an edit. Nothing that equals the current content counts as a
    /// change; an edit that changes nothing returns `Ok(None)` and leaves
    /// the version alone, whatever the status.
    pub fn edit(
        &mut self,
        patch: OrderPatch,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, EditError> {
        let mut changes = serde_json::Map::new();
        let mut next = self.clone();
        if let Some(buyer) = patch.buyer.filter(|b| *b != self.buyer) {
            changes.insert("buyer".into(), json!({ "from": self.buyer, "to": buyer }));
            next.buyer = buyer;
        }
        if let Some(drafts) = patch.lines {
            let unchanged = drafts.len() == self.lines.len()
                && self.lines.iter().zip(&drafts).all(|(l, d)| l.same_as(d));
            let rates: Vec<Rate> = drafts.iter().map(|d| d.tax_rate).collect();
            if !unchanged || patch.reprice.is_some() {
                let mut lines = build_lines(drafts, &self.lines)
                    .map_err(|e| EditError::Invalid(e.under_items()))?;
                if let Some(basis) = patch.reprice {
                    for (line, rate) in lines.iter_mut().zip(rates) {
                        line.tax_rate = rate;
                    }
                    next.pricing = basis;
                }
                next.lines = lines;
                next.price_lines().map_err(EditError::Invalid)?;
                if !unchanged {
                    changes.insert(
                        "items".into(),
                        json!({ "from": self.line_summary(), "to": next.line_summary() }),
                    );
                }
                if next.pricing != self.pricing {
                    changes.insert(
                        "pricing".into(),
                        json!({ "from": self.pricing, "to": next.pricing }),
                    );
                }
                if !unchanged || next.total != self.total {
                    changes.insert(
                        "total".into(),
                        json!({ "from": self.currency.format_amount(self.total), "to": self.currency.format_amount(next.total) }),
                    );
                }
            }
        }
        if let Some(address) = patch
            .shipping_address
            .filter(|a| *a != self.shipping_address)
        {
            changes.insert(
                "shipping_address".into(),
                json!({ "from": self.shipping_address, "to": address }),
            );
            next.shipping_address = address;
        }
        if let Some(address) = patch.billing_address.filter(|a| *a != self.billing_address) {
            changes.insert(
                "billing_address".into(),
                json!({ "from": self.billing_address, "to": address }),
            );
            next.billing_address = address;
        }
        if let Some(notes) = patch.notes.filter(|n| *n != self.notes) {
            changes.insert("notes".into(), json!({ "from": self.notes, "to": notes }));
            next.notes = notes;
        }
        if let Some(ids) = patch.external_ids.filter(|ids| *ids != self.external_ids) {
            changes.insert(
                "external_ids".into(),
                json!({ "from": self.external_ids, "to": ids }),
            );
            next.external_ids = ids;
        }
        if changes.is_empty() {
            return Ok(None);
        }
        self.check(Action::Edit)?;
        next.touch(now);
        *self = next;
        Ok(Some(EventDraft {
            event_type: EventType::OrderUpdated,
            data: json!({ "changes": changes }),
        }))
    }

    /// Compares a repeated create (seed 003's PUT by external id) with the
    /// order as it is: unchanged, an edit to apply, or a conflict.
    pub fn reconcile(&self, draft: OrderDraft) -> Result<Reconcile, ReconcileError> {
        if draft.currency != self.currency {
            return Err(ReconcileError::Immutable {
                field: "currency",
                current: self.currency.to_string(),
                given: draft.currency.to_string(),
            });
        }
        if draft.channel != self.channel {
            return Err(ReconcileError::Immutable {
                field: "channel",
                current: self.channel.to_string(),
                given: draft.channel.to_string(),
            });
        }
        let same_lines = draft.lines.len() == self.lines.len()
            && self
                .lines
                .iter()
                .zip(&draft.lines)
                .all(|(l, d)| l.same_as(d));
        let patch = OrderPatch {
            buyer: (draft.buyer != self.buyer).then_some(draft.buyer),
            lines: (!same_lines).then_some(draft.lines),
            shipping_address: (draft.shipping_address != self.shipping_address)
                .then_some(draft.shipping_address),
            billing_address: (draft.billing_address != self.billing_address)
                .then_some(draft.billing_address),
            notes: (draft.notes != self.notes).then_some(draft.notes),
            external_ids: (draft.external_ids != self.external_ids).then_some(draft.external_ids),
            reprice: None,
        };
        if patch == OrderPatch::default() {
            return Ok(Reconcile::Unchanged);
        }
        self.check(Action::Edit)?;
        Ok(Reconcile::Edit(Box::new(patch)))
    }

    /// Prices the lines on the order's basis: each line's discount and
    /// tax, each promotion's amount, the shipping's tax and the totals.
    pub(crate) fn price_lines(&mut self) -> Result<(), FieldErrors> {
        let totals = {
            let bases: Vec<LineBase<'_>> = self
                .lines
                .iter()
                .map(|l| LineBase {
                    sku: l.sku.as_ref(),
                    amount: l.line_total,
                    tax_rate: l.tax_rate,
                })
                .collect();
            pricing::price(&bases, &self.pricing)
        };
        let Some(t) = totals else {
            return Err(
                FieldError::new("items", "the order total is larger than ordo accepts").into(),
            );
        };
        for (line, a) in self.lines.iter_mut().zip(&t.lines) {
            line.discount = a.discount;
            line.tax = a.tax;
        }
        for (p, amount) in self.pricing.promotions.iter_mut().zip(&t.promotions) {
            p.amount = *amount;
        }
        if let Some(s) = &mut self.pricing.shipping {
            s.tax = t.shipping_tax;
        }
        self.subtotal = t.subtotal;
        self.discount_total = t.discount_total;
        self.shipping_total = t.shipping_total;
        self.tax_total = t.tax_total;
        self.total = t.total;
        Ok(())
    }

    pub(crate) fn line_summary(&self) -> Value {
        summary(&self.lines, self.currency)
    }
}

fn summary(lines: &[Line], currency: Currency) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|l| {
                json!({
                    "sku": l.sku,
                    "name": l.name,
                    "quantity": l.quantity,
                    "unit_price": currency.format_amount(l.unit_price),
                })
            })
            .collect(),
    )
}

impl FieldErrors {
    /// Errors from line building already name `items[i]`; others get `items.`.
    fn under_items(self) -> FieldErrors {
        FieldErrors(
            self.0
                .into_iter()
                .map(|e| {
                    if e.field.starts_with("items") {
                        e
                    } else {
                        e.under("items")
                    }
                })
                .collect(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A pending NGN order of free-text lines, each `(quantity, unit_price)`.
    pub(crate) fn order_of(lines: &[(u32, i64)]) -> Order {
        new_order(
            lines
                .iter()
                .enumerate()
                .map(|(i, (q, p))| line(&format!("Item {i}"), *q, *p))
                .collect(),
        )
    }

    fn ngn() -> Currency {
        Currency::parse("NGN").expect("NGN")
    }

    fn line(name: &str, quantity: u32, unit_price: i64) -> LineDraft {
        LineDraft {
            sku: None,
            name: name.into(),
            description: None,
            quantity,
            unit_price,
            attributes: BTreeMap::new(),
            product_id: None,
            catalog_price: None,
            instances: Vec::new(),
            tax_class: None,
            weight_grams: 0,
            tax_rate: Rate::ZERO,
        }
    }

    fn draft(lines: Vec<LineDraft>) -> OrderDraft {
        OrderDraft {
            currency: ngn(),
            buyer: Buyer::parse(Some("Ada"), None, None, Some("wa_2348012345678")).expect("buyer"),
            lines,
            shipping_address: None,
            billing_address: None,
            notes: Some("Delivery by 5pm".into()),
            external_ids: ExternalIds::new(),
            channel: Channel::Whatsapp,
            pricing: PriceBasis::default(),
        }
    }

    fn new_order(lines: Vec<LineDraft>) -> Order {
        Order::create(
            draft(lines),
            NewOrder {
                tenant_id: TenantId::new(),
                reference: OrderReference::from_sequence(TenantId::new(), 1).expect("first"),
                created_by: Actor::system(),
                now: Timestamp::from_unix_millis(1_700_000_000_000),
            },
        )
        .expect("valid")
        .0
    }

    fn later() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_001_000)
    }

    #[test]
    fn totals_are_the_exact_sum_of_lines() {
        let o = new_order(vec![line("Product A", 2, 500_000), line("B", 3, 1)]);
        assert_eq!(o.lines[0].line_total, 1_000_000);
        assert_eq!(o.subtotal, 1_000_003);
        assert_eq!(o.total, 1_000_003);
        assert_eq!(o.version, 1);
        assert_eq!(o.stage(), Stage::Pending);
        assert_eq!(o.id.timestamp(), o.created_at);
    }

    #[test]
    fn lines_are_checked_with_every_problem_named() {
        let attrs = BTreeMap::from([("Size".to_string(), "M".to_string())]);
        let err = LineDraft::parse(
            LineText {
                sku: Some("bad sku"),
                name: None,
                description: None,
                quantity: 0,
                unit_price: Some("5.001"),
                attributes: &attrs,
                instances: &[],
            },
            ngn(),
        )
        .expect_err("invalid");
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["sku", "name", "quantity", "unit_price", "attributes"]
        );
        let attrs = BTreeMap::from([("size".to_string(), "M".to_string())]);
        let ok = LineDraft::parse(
            LineText {
                sku: Some("SKU-A"),
                name: Some("Product A"),
                description: None,
                quantity: 2,
                unit_price: Some("5000.00"),
                attributes: &attrs,
                instances: &[],
            },
            ngn(),
        )
        .expect("valid");
        assert_eq!(ok.unit_price, 500_000);
    }

    #[test]
    fn an_overflowing_order_is_refused_not_wrapped() {
        let huge = line("Huge", 1_000_000, money::MAX_MINOR);
        let err = Order::create(
            draft(vec![huge]),
            NewOrder {
                tenant_id: TenantId::new(),
                reference: OrderReference::from_sequence(TenantId::new(), 1).expect("first"),
                created_by: Actor::system(),
                now: Timestamp::now(),
            },
        )
        .expect_err("overflow");
        assert_eq!(err.0[0].field, "items[0]");
    }

    #[test]
    fn confirm_then_complete() {
        let mut o = new_order(vec![line("A", 1, 100)]);
        let e = o.confirm(later()).expect("confirm");
        assert_eq!(e.event_type, EventType::OrderConfirmed);
        assert_eq!(e.data["status"]["from"], "pending");
        assert_eq!(o.status, OrderStatus::Confirmed);
        assert_eq!(o.version, 2);
        assert_eq!(o.confirmed_at, Some(later()));
        let err = o.confirm(later()).expect_err("twice");
        assert_eq!(err.status, OrderStatus::Confirmed);
        assert_eq!(
            err.allowed,
            vec![
                Action::Cancel,
                Action::Edit,
                Action::Ship,
                Action::CancelItems
            ]
        );
        assert_eq!(o.version, 2, "a refused action changes nothing");
        let err = o.complete(later()).expect_err("nothing delivered yet");
        assert_eq!(
            err.reason,
            Some("not every unit has been delivered; ship and deliver them first")
        );
        crate::fulfilment::tests::deliver_everything(&mut o);
        assert_eq!(o.allowed_actions(), vec![Action::Complete, Action::Return]);
        o.complete(later()).expect("complete");
        assert_eq!(o.stage(), Stage::Completed);
        assert_eq!(o.allowed_actions(), vec![Action::Return]);
    }

    #[test]
    fn cancel_records_the_reason() {
        let mut o = new_order(vec![line("A", 1, 100)]);
        let e = o.cancel("Changed my mind".into(), later()).expect("cancel");
        assert_eq!(e.data["reason"], "Changed my mind");
        assert_eq!(o.cancel_reason.as_deref(), Some("Changed my mind"));
        assert!(o.cancel("again".into(), later()).is_err());
        assert!(o.complete(later()).is_err());
    }

    #[test]
    fn edits_recompute_totals_and_keep_unchanged_line_ids() {
        let mut o = new_order(vec![line("A", 1, 100), line("B", 1, 200)]);
        let first_id = o.lines[0].id;
        let event = o
            .edit(
                OrderPatch {
                    lines: Some(vec![line("A", 1, 100), line("B", 5, 200)]),
                    ..Default::default()
                },
                later(),
            )
            .expect("editable")
            .expect("a change");
        assert_eq!(o.total, 1_100);
        assert_eq!(o.lines[0].id, first_id);
        assert_eq!(o.version, 2);
        assert_eq!(event.data["changes"]["total"]["from"], "3.00");
        assert_eq!(event.data["changes"]["total"]["to"], "11.00");
    }

    #[test]
    fn an_edit_that_changes_nothing_is_not_a_change() {
        let mut o = new_order(vec![line("A", 1, 100)]);
        let same = OrderPatch {
            notes: Some(Some("Delivery by 5pm".into())),
            ..Default::default()
        };
        assert_eq!(o.edit(same.clone(), later()), Ok(None));
        assert_eq!(o.version, 1);
        o.complete(later()).expect_err("pending cannot complete");
        o.cancel("x".into(), later()).expect("cancel");
        assert_eq!(
            o.edit(same, later()),
            Ok(None),
            "no change, even when not editable"
        );
        let real = OrderPatch {
            notes: Some(None),
            ..Default::default()
        };
        assert!(matches!(
            o.edit(real, later()),
            Err(EditError::NotAllowed(_))
        ));
    }

    #[test]
    fn reconcile_tells_unchanged_from_edit_from_conflict() {
        let mut o = new_order(vec![line("A", 1, 100)]);
        assert_eq!(
            o.reconcile(draft(vec![line("A", 1, 100)])),
            Ok(Reconcile::Unchanged)
        );
        assert!(matches!(
            o.reconcile(draft(vec![line("A", 2, 100)])),
            Ok(Reconcile::Edit(_))
        ));
        let mut other = draft(vec![line("A", 1, 100)]);
        other.currency = Currency::parse("USD").expect("USD");
        assert!(matches!(
            o.reconcile(other),
            Err(ReconcileError::Immutable {
                field: "currency",
                ..
            })
        ));
        o.confirm(later()).expect("confirm");
        crate::fulfilment::tests::deliver_everything(&mut o);
        o.complete(later()).expect("complete");
        assert!(matches!(
            o.reconcile(draft(vec![line("A", 2, 100)])),
            Err(ReconcileError::NotEditable(_))
        ));
        assert_eq!(
            o.reconcile(draft(vec![line("A", 1, 100)])),
            Ok(Reconcile::Unchanged)
        );
    }

    #[test]
    fn storage_round_trip_is_exact() {
        let mut o = new_order(vec![line("A", 3, 12_345)]);
        o.external_ids.insert(
            Namespace::parse("com.acme.order-id").expect("ns"),
            "WEB-1".into(),
        );
        let text = serde_json::to_string(&o).expect("serialise");
        let back: Order = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(back, o);
    }

    fn any_action() -> impl Strategy<Value = Action> {
        prop::sample::select(Action::ALL.to_vec())
    }

    proptest! {
        /// Any sequence of actions keeps the invariants: the version counts
        /// the changes, a refused action changes nothing, totals stay exact.
        #[test]
        fn actions_keep_the_invariants(actions in prop::collection::vec((any_action(), 1u32..5), 0..20)) {
            let mut o = new_order(vec![line("A", 1, 100)]);
            let mut changes = 0;
            for (action, q) in actions {
                let before = o.clone();
                let result = match action {
                    Action::Confirm => o.confirm(later()).map(Some).map_err(|_| ()),
                    Action::Cancel => o.cancel("r".into(), later()).map(Some).map_err(|_| ()),
                    Action::Complete => o.complete(later()).map(Some).map_err(|_| ()),
                    Action::Edit => o
                        .edit(OrderPatch { lines: Some(vec![line("A", q, 100)]), ..Default::default() }, later())
                        .map_err(|_| ()),
                    Action::Ship => o
                        .create_shipment(crate::ShipmentDraft::default(), Actor::system(), later())
                        .map(Some)
                        .map_err(|_| ()),
                    Action::Return => o
                        .request_return(crate::ReturnDraft { lines: None, reason: "r".into() }, Actor::system(), later())
                        .map(Some)
                        .map_err(|_| ()),
                    Action::CancelItems => {
                        let lines = Some(vec![(o.lines[0].id, Some(q))]);
                        let mut book = crate::StockBook::new([], Actor::system(), later());
                        o.cancel_items(crate::CancelItems { lines, reason: "r".into() }, Actor::system(), &mut book, later())
                            .map(Some)
                            .map_err(|_| ())
                    }
                };
                match result {
                    Ok(Some(_)) => changes += 1,
                    Ok(None) => prop_assert_eq!(&o, &before),
                    Err(()) => prop_assert_eq!(&o, &before),
                }
                prop_assert_eq!(o.version, 1 + changes);
                prop_assert_eq!(o.total, o.lines.iter().map(|l| l.line_total).sum::<i64>());
            }
        }
    }
}
