//! `/v1/orders`: the request and response shapes (the single source of the
//! OpenAPI document) and thin handlers: parse → one use case → render.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ordo_domain::contact::AddressText;
use ordo_domain::order::{check_line_count, parse_external_value, parse_notes, LineText};
use ordo_domain::{
    Action, Address, Buyer, Channel, ChannelId, Currency, Email, FieldError, FieldErrors,
    FulfillmentStatus, Instance, LineDraft, Namespace, Order, OrderDraft, OrderEvent, OrderId,
    OrderPatch, OrderReference, OrderStatus, PaymentStatus, Permission, PhoneE164, Sku, Stage,
    Timestamp,
};
use ordo_store::{Cursor, OrderFilter, OrderLookup, OrderQuery, Put, Sort, SortField};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{JsonBody, OptionalJsonBody, PathParams, QueryParams};
use super::fulfilment::{LineProgressResponse, ReturnResponse, ShipmentResponse};
use super::payments::{PaymentResponse, RefundResponse};
use super::receipts::ReceiptResponse;
use crate::app::AppState;
use crate::catalog::Catalog;
use crate::orders::{self, Created, Idempotency};
use crate::pricing;

// ---------------------------------------------------------------- shapes

/// The buyer: at least one of `phone`, `email` or `channel_id`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerBody {
    #[schema(example = "Ada Obi")]
    pub name: Option<String>,
    /// E.164, e.g. `+2348012345678`.
    #[schema(example = "+2348012345678")]
    pub phone: Option<String>,
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    /// `wa_<digits>` (WhatsApp) or `ig_<id>` (Instagram).
    #[schema(example = "wa_2348012345678")]
    pub channel_id: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    pub name: Option<String>,
    pub company: Option<String>,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `NG`.
    pub country: String,
    pub phone: Option<String>,
}

/// A line of a new or edited order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    /// A catalog product's SKU: the line takes its name, price and
    /// attribute values from the product. Other items (where the tenant
    /// allows them) need a `name` and a `unit_price`, and may carry the
    /// seller's own code here.
    #[schema(example = "SKU-A")]
    pub sku: Option<String>,
    /// Required for an item not in the catalog; a catalog item takes the product's.
    #[schema(example = "Product A")]
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(example = 2, minimum = 1, maximum = 1000000)]
    pub quantity: i64,
    /// Decimal string in major units with at most the currency's decimals.
    /// Required for an item not in the catalog; for a catalog item, the
    /// staff's price instead of the catalog's (the line then says so).
    /// In an edit, a catalog item without one keeps the price of the
    /// order's line of the same product and attributes; only an item the
    /// order did not have takes today's catalog price.
    #[schema(example = "5000.00")]
    pub unit_price: Option<String>,
    /// Size, colour, …: lower-case names, text values. For a catalog item,
    /// among the values the product lists (each attribute with several
    /// values must be chosen).
    #[serde(default)]
    #[schema(example = json!({"size": "M"}))]
    pub attributes: BTreeMap<String, String>,
    /// Serialised units (seed 003's `instances`): none, or one per unit,
    /// each with its `serial` (an IMEI) and/or `refers_to`, the serial of a
    /// unit of an earlier item it belongs to (a mobile plan to its phone).
    /// Shipments may name them instead.
    #[serde(default)]
    pub instances: Vec<Instance>,
}

/// A new order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "currency": "NGN",
    "buyer": {"name": "Ada Obi", "phone": "+2348012345678", "channel_id": "wa_2348012345678"},
    "items": [{"name": "Product A", "quantity": 2, "unit_price": "5000.00", "sku": "SKU-A", "attributes": {"size": "M"}}],
    "notes": "Delivery by 5pm",
    "external_ids": {"com.acme.order-id": "WEB-2024-123456"},
    "channel": "whatsapp"
}))]
pub struct CreateOrderRequest {
    /// ISO 4217 code.
    pub currency: String,
    pub buyer: BuyerBody,
    pub items: Vec<LineInput>,
    pub shipping_address: Option<AddressBody>,
    pub billing_address: Option<AddressBody>,
    pub notes: Option<String>,
    /// Identifiers other systems use for this order: namespace → value, unique per tenant.
    #[serde(default)]
    pub external_ids: BTreeMap<String, String>,
    /// Where the order came from; `api` when not given.
    pub channel: Option<Channel>,
    /// The shipping rate the buyer chose, by name (see the settings'
    /// `shipping_rates`); the cheapest that takes the order otherwise.
    /// Orders without a shipping address ship nothing.
    #[schema(example = "Lagos delivery")]
    pub shipping_method: Option<String>,
    /// Promotion codes (any case), applied in this order after the
    /// shop's automatic promotions; one that does not apply is a 422
    /// saying why (at most 5).
    #[serde(default)]
    #[schema(example = json!(["WELCOME10"]))]
    pub promotion_codes: Vec<String>,
}

/// Distinguishes an absent field (leave as is) from `null` (clear it).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A change to an editable order. Absent fields stay as they are; `null`
/// clears an optional one. `items` replaces all lines; `buyer` replaces the buyer.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrderRequest {
    pub buyer: Option<BuyerBody>,
    pub items: Option<Vec<LineInput>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AddressBody>)]
    pub shipping_address: Option<Option<AddressBody>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AddressBody>)]
    pub billing_address: Option<Option<AddressBody>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    pub external_ids: Option<BTreeMap<String, String>>,
    /// Price the order again by today's rules: catalog prices (the
    /// staff's own prices stand), promotions, tax rates, shipping. Without
    /// it an edit keeps what the order was priced by.
    pub reprice: Option<bool>,
    /// With `reprice`: the codes to apply (default: those the order has).
    pub promotion_codes: Option<Vec<String>>,
    /// With `reprice`: the shipping rate (default: the order's, else the cheapest).
    pub shipping_method: Option<String>,
}

/// Why the order is cancelled.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[schema(example = "Changed my mind")]
    pub reason: String,
}

/// Actions without parameters take an empty body or `{}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// A line of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineResponse {
    pub id: String,
    pub sku: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub quantity: u32,
    #[schema(example = "5000.00")]
    pub unit_price: String,
    pub attributes: BTreeMap<String, String>,
    /// `quantity × unit_price`, exactly.
    #[schema(example = "10000.00")]
    pub line_total: String,
    /// What promotions take off `line_total` (its share of each, see `promotions`).
    #[schema(example = "1000.00")]
    pub discount: String,
    /// The tax rate it pays, in percent.
    #[schema(example = "7.5")]
    pub tax_rate: String,
    /// Its tax: on `line_total − discount`, rounded half up; inside it
    /// when `taxes_included`.
    #[schema(example = "675.00")]
    pub tax: String,
    /// What the buyer pays for it: `line_total − discount`, plus `tax`
    /// unless `taxes_included`. The order's lines' totals and its
    /// shipping add up to its `total` exactly.
    #[schema(example = "9675.00")]
    pub total: String,
    /// The catalog product the line was taken from; `null` for an item not in the catalog.
    pub product_id: Option<String>,
    /// What the catalog asked for one unit when the line was taken.
    pub catalog_price: Option<String>,
    /// The staff set `unit_price` instead of the catalog's price.
    pub price_overridden: bool,
    /// Its serialised units, when given with it (shipments may name them
    /// instead; see `shipments[].lines[].instances`).
    pub instances: Vec<Instance>,
    /// How far its units have got: ordered, packing, shipped, delivered, returned.
    pub fulfillment: LineProgressResponse,
}

/// A promotion an order applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppliedPromotionResponse {
    #[schema(example = "promo_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    #[schema(example = "Welcome 10%")]
    pub name: String,
    /// The code the buyer gave; `null` for one that applies by itself.
    #[schema(example = "WELCOME10")]
    pub code: Option<String>,
    /// `percentage` or `fixed`.
    #[serde(rename = "type")]
    #[schema(example = "percentage")]
    pub kind: String,
    /// A percentage (`"10"`) or an amount (`"500.00"`).
    #[schema(example = "10")]
    pub value: String,
    /// The SKUs it applies to; every item when empty.
    pub skus: Vec<String>,
    /// What it takes off this order.
    #[schema(example = "1000.00")]
    pub amount: String,
    /// The promotion provider's id for it, when it came from one.
    pub external_id: Option<String>,
}

/// A pricing provider the shop's own rules stood in for.
#[derive(Debug, Serialize, ToSchema)]
pub struct FallbackResponse {
    /// `price`, `promotion`, `tax` or `customer`.
    #[schema(example = "tax")]
    pub provider: String,
    #[schema(example = "the tax provider did not answer after 1 attempts: timed out")]
    pub error: String,
}

impl FallbackResponse {
    pub(crate) fn all(basis: &ordo_domain::pricing::PriceBasis) -> Vec<FallbackResponse> {
        basis
            .fallbacks
            .iter()
            .map(|f| FallbackResponse {
                provider: f.provider.clone(),
                error: f.error.clone(),
            })
            .collect()
    }
}

impl AppliedPromotionResponse {
    pub(crate) fn of(p: &ordo_domain::pricing::AppliedPromotion, c: Currency) -> Self {
        let (kind, value) = discount_parts(p.discount, c);
        AppliedPromotionResponse {
            id: p.id.to_string(),
            name: p.name.clone(),
            code: p.code.as_ref().map(|c| c.to_string()),
            kind,
            value,
            skus: p.skus.iter().map(|s| s.as_str().to_string()).collect(),
            amount: c.format_amount(p.amount),
            external_id: p.external_id.clone(),
        }
    }
}

/// A discount's type and value as the API writes them.
pub(crate) fn discount_parts(d: ordo_domain::pricing::Discount, c: Currency) -> (String, String) {
    match d {
        ordo_domain::pricing::Discount::Percentage(r) => ("percentage".into(), r.to_string()),
        ordo_domain::pricing::Discount::Fixed(a) => ("fixed".into(), c.format_amount(a)),
    }
}

/// The shipping an order pays.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShippingChargeResponse {
    /// The shipping rate's name.
    #[schema(example = "Lagos delivery")]
    pub name: String,
    #[schema(example = "2500.00")]
    pub amount: String,
    #[schema(example = "7.5")]
    pub tax_rate: String,
    #[schema(example = "187.50")]
    pub tax: String,
}

impl ShippingChargeResponse {
    pub(crate) fn of(s: &ordo_domain::pricing::ShippingCharge, c: Currency) -> Self {
        ShippingChargeResponse {
            name: s.name.clone(),
            amount: c.format_amount(s.amount),
            tax_rate: s.tax_rate.to_string(),
            tax: c.format_amount(s.tax),
        }
    }
}

/// Who made an order or a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorResponse {
    /// `api_key`, `user`, `buyer` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub role: Option<String>,
}

/// An event on an order's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    pub id: String,
    /// 1, 2, 3… per order.
    pub sequence: u64,
    /// `order.created`, `order.updated`, `order.confirmed`, `order.cancelled`, `order.completed`, `payment.*`, `refund.*`, `receipt.*`, `shipment.*`, `return.*` (see the webhooks' event types).
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: ActorResponse,
    pub at: String,
    /// What changed, with before and after values.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    #[schema(example = "ord_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    #[schema(example = "ORD-7K3Q-X2MB")]
    pub reference: String,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub fulfillment_status: FulfillmentStatus,
    /// One word for people and chat, derived from the three statuses.
    pub stage: Stage,
    /// What can be done to the order now.
    pub allowed_actions: Vec<Action>,
    pub currency: String,
    pub buyer: BuyerBody,
    pub items: Vec<LineResponse>,
    pub shipping_address: Option<AddressBody>,
    pub billing_address: Option<AddressBody>,
    pub notes: Option<String>,
    pub external_ids: BTreeMap<String, String>,
    pub channel: Channel,
    pub created_by: ActorResponse,
    pub batch_id: Option<String>,
    pub cancel_reason: Option<String>,
    /// Σ `line_total`.
    #[schema(example = "10000.00")]
    pub subtotal: String,
    /// What promotions take off (Σ of the lines' `discount`).
    #[schema(example = "1000.00")]
    pub discount_total: String,
    #[schema(example = "2500.00")]
    pub shipping_total: String,
    /// The lines' and the shipping's tax.
    #[schema(example = "675.00")]
    pub tax_total: String,
    /// What the buyer pays: `subtotal − discount_total + shipping_total`,
    /// plus `tax_total` unless `taxes_included`; exactly the sum of the
    /// lines' `total`s and the shipping.
    #[schema(example = "12175.00")]
    pub total: String,
    /// Whether the prices (lines and shipping) contain their tax.
    pub taxes_included: bool,
    /// The promotions applied, in the order they were applied.
    pub promotions: Vec<AppliedPromotionResponse>,
    /// The shipping charged; `null` when none.
    pub shipping: Option<ShippingChargeResponse>,
    /// Pricing providers that could not be asked when the order was
    /// priced: the shop's own rules priced their part.
    pub pricing_fallbacks: Vec<FallbackResponse>,
    /// Grows by one with every change; also the `ETag`.
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub confirmed_at: Option<String>,
    pub completed_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// Units of stock reserved for the order, by SKU.
    #[schema(example = json!({"ANKARA-DRESS": 2}))]
    pub reserved: BTreeMap<String, u32>,
    /// When the reservation of an unconfirmed order lapses (the order is
    /// then cancelled with reason `reservation_expired`).
    pub reserved_until: Option<String>,
    /// Succeeded payments.
    #[schema(example = "10000.00")]
    pub amount_paid: String,
    /// Succeeded refunds.
    #[schema(example = "0.00")]
    pub amount_refunded: String,
    /// Payments not yet confirmed by whoever moves the money.
    #[schema(example = "0.00")]
    pub amount_pending: String,
    /// What the buyer still owes: total − (paid − refunded), never below 0.
    #[schema(example = "0.00")]
    pub amount_due: String,
    /// What the shop holds beyond the total (paid − refunded − total, never below 0).
    #[schema(example = "0.00")]
    pub amount_overpaid: String,
    /// Payments recorded, oldest first (split payments are several).
    pub payments: Vec<PaymentResponse>,
    /// Refunds recorded, oldest first.
    pub refunds: Vec<RefundResponse>,
    /// Receipts the buyer sent: in review, approved or rejected.
    pub receipts: Vec<ReceiptResponse>,
    /// Shipments of its units, oldest first (cancelled ones included).
    pub shipments: Vec<ShipmentResponse>,
    /// Returns of delivered units, oldest first.
    pub returns: Vec<ReturnResponse>,
    /// The timeline, with `?expand=events`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventResponse>>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub data: Vec<OrderResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// How many orders match.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderCount {
    pub count: u64,
}

/// A timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub data: Vec<EventResponse>,
}

/// Filters for listing and counting orders. List values are comma-separated
/// (`status=pending,confirmed`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersParams {
    /// pending, confirmed, completed, cancelled
    pub status: Option<String>,
    /// unpaid, pending, partially_paid, paid, partially_refunded, refunded
    pub payment_status: Option<String>,
    /// unfulfilled, partially_shipped, shipped, partially_delivered, delivered, partially_returned, returned
    pub fulfillment_status: Option<String>,
    /// pending, confirmed, paid, shipped, delivered, completed, cancelled
    pub stage: Option<String>,
    /// api, web, whatsapp, instagram, email, phone, in_store, marketplace, import, other
    pub channel: Option<String>,
    /// E.164 phone of the buyer.
    pub buyer_phone: Option<String>,
    pub buyer_email: Option<String>,
    /// `wa_…` or `ig_…`.
    pub buyer_channel_id: Option<String>,
    /// Text: a reference, a phone number, or part of the buyer's name or email.
    pub q: Option<String>,
    /// Created at or after this RFC 3339 time.
    pub created_gte: Option<String>,
    /// Created before this RFC 3339 time.
    pub created_lt: Option<String>,
    /// `namespace:value`, e.g. `com.acme.order-id:WEB-2024-123456`.
    pub external_id: Option<String>,
    /// Id of the API key that created the order.
    pub created_by: Option<String>,
    pub batch_id: Option<String>,
    /// created_at, updated_at or total; `-` in front for descending. Default `-created_at`.
    pub sort: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Options for reading one order.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetOrderParams {
    /// `events` to include the timeline.
    pub expand: Option<String>,
}

// ---------------------------------------------------------------- parsing

impl BuyerBody {
    fn parse(&self) -> Result<Buyer, FieldErrors> {
        Buyer::parse(
            self.name.as_deref(),
            self.phone.as_deref(),
            self.email.as_deref(),
            self.channel_id.as_deref(),
        )
        .map_err(|e| e.under("buyer"))
    }

    fn from_domain(b: &Buyer) -> Self {
        BuyerBody {
            name: b.name.clone(),
            phone: b.phone.as_ref().map(|p| p.as_str().to_string()),
            email: b.email.as_ref().map(|e| e.as_str().to_string()),
            channel_id: b.channel_id.as_ref().map(ToString::to_string),
        }
    }
}

impl AddressBody {
    pub(crate) fn parse(&self, field: &str) -> Result<Address, FieldErrors> {
        Address::parse(AddressText {
            name: self.name.as_deref(),
            company: self.company.as_deref(),
            line1: &self.line1,
            line2: self.line2.as_deref(),
            city: &self.city,
            region: self.region.as_deref(),
            postal_code: self.postal_code.as_deref(),
            country: &self.country,
            phone: self.phone.as_deref(),
        })
        .map_err(|e| e.under(field))
    }

    fn from_domain(a: &Address) -> Self {
        AddressBody {
            name: a.name.clone(),
            company: a.company.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.to_string(),
            phone: a.phone.as_ref().map(|p| p.as_str().to_string()),
        }
    }
}

fn parse_lines(
    items: &[LineInput],
    currency: Currency,
    catalog: &Catalog,
    errors: &mut FieldErrors,
) -> Option<Vec<LineDraft>> {
    errors.take(check_line_count(items.len()));
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let parsed = catalog.line(
            LineText {
                sku: item.sku.as_deref(),
                name: item.name.as_deref(),
                description: item.description.as_deref(),
                quantity: item.quantity,
                unit_price: item.unit_price.as_deref(),
                attributes: &item.attributes,
                instances: &item.instances,
            },
            currency,
        );
        if let Some(line) = errors.take_all(parsed.map_err(|e| e.under(&format!("items[{i}]")))) {
            lines.push(line);
        }
    }
    Some(lines)
}

fn parse_external_ids(
    ids: &BTreeMap<String, String>,
    errors: &mut FieldErrors,
) -> ordo_domain::ExternalIds {
    let mut out = ordo_domain::ExternalIds::new();
    if ids.len() > ordo_domain::order::MAX_EXTERNAL_IDS {
        errors.push(
            FieldError::new("external_ids", "too many identifiers")
                .accepted(format!("at most {}", ordo_domain::order::MAX_EXTERNAL_IDS)),
        );
    }
    for (ns, value) in ids {
        let ns_parsed = errors.take(Namespace::parse(ns).map_err(|r| {
            FieldError::new("external_ids", r)
                .value(ns)
                .accepted(Namespace::ACCEPTED)
        }));
        let value_parsed = errors.take(
            parse_external_value(value)
                .map_err(|r| FieldError::new(format!("external_ids.{ns}"), r).value(value)),
        );
        if let (Some(n), Some(v)) = (ns_parsed, value_parsed) {
            out.insert(n, v);
        }
    }
    out
}

/// The SKUs a request's lines name (malformed ones are reported by the
/// line checks).
pub(crate) fn line_skus<'a>(skus: impl Iterator<Item = Option<&'a str>>) -> Vec<Sku> {
    skus.filter_map(|s| Sku::parse(s?).ok()).collect()
}

fn input_skus(items: &[LineInput]) -> Vec<Sku> {
    line_skus(items.iter().map(|i| i.sku.as_deref()))
}

impl CreateOrderRequest {
    /// What it asks of pricing (`preview`: see [`pricing::Ask`]).
    pub fn ask(&self, preview: bool) -> Result<pricing::Ask, ApiError> {
        let mut errors = FieldErrors::new();
        let codes = pricing::parse_codes(&self.promotion_codes, &mut errors);
        errors
            .finish(|| pricing::Ask {
                shipping_method: self.shipping_method.clone(),
                codes,
                preview,
                exclude: Vec::new(),
            })
            .map_err(ApiError::Validation)
    }

    /// The SKUs its lines name, to read from the catalog.
    pub fn skus(&self) -> Vec<Sku> {
        input_skus(&self.items)
    }

    pub fn into_draft(self, catalog: &Catalog) -> Result<OrderDraft, ApiError> {
        let mut errors = FieldErrors::new();
        let currency = errors.take(Currency::parse_field("currency", &self.currency));
        let buyer = errors.take_all(self.buyer.parse());
        let lines = currency.and_then(|c| parse_lines(&self.items, c, catalog, &mut errors));
        let shipping = self
            .shipping_address
            .as_ref()
            .and_then(|a| errors.take_all(a.parse("shipping_address")));
        let billing = self
            .billing_address
            .as_ref()
            .and_then(|a| errors.take_all(a.parse("billing_address")));
        let notes = errors.take(parse_notes(self.notes.as_deref())).flatten();
        let external_ids = parse_external_ids(&self.external_ids, &mut errors);
        match (currency, buyer, lines) {
            (Some(currency), Some(buyer), Some(lines)) if errors.is_empty() => Ok(OrderDraft {
                currency,
                buyer,
                lines,
                shipping_address: shipping,
                billing_address: billing,
                notes,
                external_ids,
                channel: self.channel.unwrap_or(Channel::Api),
                pricing: Default::default(),
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

impl UpdateOrderRequest {
    fn into_patch(self, currency: Currency, catalog: &Catalog) -> Result<OrderPatch, ApiError> {
        let mut errors = FieldErrors::new();
        let buyer = self.buyer.as_ref().and_then(|b| errors.take_all(b.parse()));
        let lines = self
            .items
            .as_ref()
            .and_then(|items| parse_lines(items, currency, catalog, &mut errors));
        let shipping = self
            .shipping_address
            .map(|a| a.and_then(|a| errors.take_all(a.parse("shipping_address"))));
        let billing = self
            .billing_address
            .map(|a| a.and_then(|a| errors.take_all(a.parse("billing_address"))));
        let notes = self
            .notes
            .map(|n| errors.take(parse_notes(n.as_deref())).flatten());
        let external_ids = self
            .external_ids
            .as_ref()
            .map(|ids| parse_external_ids(ids, &mut errors));
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(OrderPatch {
            buyer,
            lines,
            shipping_address: shipping,
            billing_address: billing,
            notes,
            external_ids,
            reprice: None,
        })
    }
}

pub(crate) fn list_of<T: Copy>(
    field: &str,
    text: Option<&str>,
    parse: fn(&str) -> Option<T>,
    accepted: String,
    errors: &mut FieldErrors,
) -> Vec<T> {
    let Some(text) = text else { return Vec::new() };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match parse(part) {
            Some(v) => out.push(v),
            None => errors.push(
                FieldError::new(field, "unknown value")
                    .value(part)
                    .accepted(accepted.clone()),
            ),
        }
    }
    out
}

const SORTS: &str = "created_at, -created_at, updated_at, -updated_at, total, -total";

fn parse_sort(text: Option<&str>) -> Result<Sort, FieldError> {
    let text = text.unwrap_or("-created_at");
    let (descending, name) = match text.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, text),
    };
    let field = match name {
        "created_at" => SortField::CreatedAt,
        "updated_at" => SortField::UpdatedAt,
        "total" => SortField::Total,
        _ => {
            return Err(FieldError::new("sort", "unknown sort")
                .value(text)
                .accepted(SORTS))
        }
    };
    Ok(Sort { field, descending })
}

fn sort_code(sort: Sort) -> String {
    let name = match sort.field {
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
        SortField::Total => "total",
    };
    format!("{}{name}", if sort.descending { "-" } else { "" })
}

fn encode_cursor(sort: Sort, cursor: Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{}|{}",
        sort_code(sort),
        cursor.value,
        cursor.id
    ))
}

fn decode_cursor(sort: Sort, text: &str) -> Result<Cursor, FieldError> {
    let bad = || {
        FieldError::new("cursor", "not a cursor from this list")
            .value(text)
            .accepted("the next_cursor of a previous page")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, '|');
    let (Some(code), Some(value), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if code != sort_code(sort) {
        return Err(
            FieldError::new("cursor", "the cursor belongs to another sort order")
                .value(text)
                .accepted(format!(
                    "a cursor from a list sorted by {}",
                    sort_code(sort)
                )),
        );
    }
    Ok(Cursor {
        value: value.parse().map_err(|_| bad())?,
        id: OrderId::parse(id).ok_or_else(bad)?,
    })
}

impl ListOrdersParams {
    fn filter(&self, errors: &mut FieldErrors) -> OrderFilter {
        let time = |field: &str, text: &Option<String>, errors: &mut FieldErrors| {
            text.as_deref().and_then(|t| {
                errors.take(Timestamp::parse_rfc3339(t).ok_or_else(|| {
                    FieldError::new(field, "not a time")
                        .value(t)
                        .accepted("an RFC 3339 time such as 2026-11-24T06:00:00Z")
                }))
            })
        };
        let external_id = self.external_id.as_deref().and_then(|text| {
            let accepted = "namespace:value, e.g. com.acme.order-id:WEB-2024-123456";
            let Some((ns, value)) = text.split_once(':') else {
                errors.push(
                    FieldError::new("external_id", "expected namespace:value")
                        .value(text)
                        .accepted(accepted),
                );
                return None;
            };
            match Namespace::parse(ns) {
                Ok(ns) => Some((ns, value.to_string())),
                Err(r) => {
                    errors.push(
                        FieldError::new("external_id", r)
                            .value(text)
                            .accepted(accepted),
                    );
                    None
                }
            }
        });
        let q = self.q.clone().filter(|q| {
            let ok = q.chars().count() <= 200;
            if !ok {
                errors.push(
                    FieldError::new("q", "the search text is too long")
                        .accepted("at most 200 characters"),
                );
            }
            ok
        });
        OrderFilter {
            status: list_of(
                "status",
                self.status.as_deref(),
                OrderStatus::parse,
                OrderStatus::accepted(),
                errors,
            ),
            payment_status: list_of(
                "payment_status",
                self.payment_status.as_deref(),
                PaymentStatus::parse,
                PaymentStatus::accepted(),
                errors,
            ),
            fulfillment_status: list_of(
                "fulfillment_status",
                self.fulfillment_status.as_deref(),
                FulfillmentStatus::parse,
                FulfillmentStatus::accepted(),
                errors,
            ),
            stage: list_of(
                "stage",
                self.stage.as_deref(),
                Stage::parse,
                Stage::accepted(),
                errors,
            ),
            channel: list_of(
                "channel",
                self.channel.as_deref(),
                Channel::parse,
                Channel::accepted(),
                errors,
            ),
            buyer_phone: self.buyer_phone.as_deref().and_then(|p| {
                errors.take(PhoneE164::parse(p).map_err(|r| {
                    FieldError::new("buyer_phone", r)
                        .value(p)
                        .accepted(PhoneE164::ACCEPTED)
                }))
            }),
            buyer_email: self.buyer_email.as_deref().and_then(|e| {
                errors.take(Email::parse(e).map_err(|r| {
                    FieldError::new("buyer_email", r)
                        .value(e)
                        .accepted(Email::ACCEPTED)
                }))
            }),
            buyer_channel_id: self.buyer_channel_id.as_deref().and_then(|c| {
                errors.take(ChannelId::parse(c).map_err(|r| {
                    FieldError::new("buyer_channel_id", r)
                        .value(c)
                        .accepted(ChannelId::ACCEPTED)
                }))
            }),
            q,
            created_gte: time("created_gte", &self.created_gte, errors),
            created_lt: time("created_lt", &self.created_lt, errors),
            external_id,
            created_by: self.created_by.clone(),
            batch_id: self.batch_id.clone(),
        }
    }

    pub(crate) fn query(&self) -> Result<OrderQuery, ApiError> {
        let mut errors = FieldErrors::new();
        let filter = self.filter(&mut errors);
        let sort = errors
            .take(parse_sort(self.sort.as_deref()))
            .unwrap_or_default();
        let limit = errors
            .take(page_size(self.limit.as_deref()))
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let after = self
            .cursor
            .as_deref()
            .and_then(|c| errors.take(decode_cursor(sort, c)));
        errors
            .finish(|| OrderQuery {
                filter,
                sort,
                after,
                limit,
            })
            .map_err(ApiError::Validation)
    }
}

pub(crate) const DEFAULT_PAGE_SIZE: u32 = 50;

/// Reads a list's `limit`: 1 to 200, [`DEFAULT_PAGE_SIZE`] when absent.
pub(crate) fn page_size(text: Option<&str>) -> Result<u32, FieldError> {
    let Some(text) = text else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=200).contains(n))
        .ok_or_else(|| {
            FieldError::new("limit", "not a page size")
                .value(text)
                .accepted("a whole number from 1 to 200")
        })
}

/// `ord_…` or a reference such as `ORD-7K3Q-X2MB`; anything else cannot exist.
pub(crate) fn lookup(id: &str) -> Result<OrderLookup, ApiError> {
    if let Some(id) = OrderId::parse(id) {
        return Ok(OrderLookup::Id(id));
    }
    if let Some(reference) = OrderReference::parse(id) {
        return Ok(OrderLookup::Reference(reference));
    }
    Err(ApiError::NotFound("order"))
}

/// The order `lookup` names, as `principal` may see it; 404 otherwise.
pub(crate) async fn read_order(
    state: &AppState,
    principal: &Principal,
    lookup: &OrderLookup,
) -> Result<Order, ApiError> {
    state
        .store()
        .order(&principal.scope(), lookup)
        .await?
        .ok_or(ApiError::NotFound("order"))
}

pub(crate) fn external_key(namespace: &str, value: &str) -> Result<(Namespace, String), ApiError> {
    let mut errors = FieldErrors::new();
    let ns = errors.take(Namespace::parse(namespace).map_err(|r| {
        FieldError::new("namespace", r)
            .value(namespace)
            .accepted(Namespace::ACCEPTED)
    }));
    let value = errors
        .take(parse_external_value(value).map_err(|r| FieldError::new("value", r).value(value)));
    match (ns, value) {
        (Some(ns), Some(value)) => Ok((ns, value)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Reads `If-Match`: `"3"`, `W/"3"` or `*`.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<u64>().map(Some).map_err(|_| {
        ApiError::field(
            FieldError::new("If-Match", "not an ETag of this API")
                .value(text)
                .accepted("the ETag last read, e.g. \"3\""),
        )
    })
}

/// Reads the `Idempotency-Key` header and fingerprints the request. Keys
/// belong to the tenant; a vendor's request also carries who sent it, so one
/// vendor reusing another's key gets a 409, never the other's order.
pub(crate) fn idempotency(
    headers: &HeaderMap,
    body: &[u8],
    route: &str,
    creator: Option<&str>,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    if !(1..=255).contains(&key.len()) || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ApiError::field(
            FieldError::new("Idempotency-Key", "not a valid idempotency key")
                .value(String::from_utf8_lossy(value.as_bytes()))
                .accepted("1 to 255 visible ASCII characters, e.g. a UUID"),
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    if let Some(creator) = creator {
        hasher.update(b"\n");
        hasher.update(creator.as_bytes());
    }
    hasher.update(b"\n");
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => canonical(&v, &mut hasher),
        Err(_) => hasher.update(body),
    }
    Ok(Some(Idempotency {
        key: key.to_string(),
        fingerprint: hasher.finalize().into(),
    }))
}

/// Hashes JSON with object keys in sorted order, so two spellings of the
/// same request share a fingerprint.
fn canonical(value: &serde_json::Value, hasher: &mut Sha256) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for k in keys {
                hasher.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                hasher.update(b":");
                canonical(&map[k], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

// ---------------------------------------------------------------- rendering

pub(crate) fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

impl ActorResponse {
    pub(crate) fn from_domain(a: &ordo_domain::Actor) -> Self {
        ActorResponse {
            kind: a.kind.clone(),
            id: a.id.clone(),
            role: a.role.clone(),
        }
    }
}

impl EventResponse {
    fn from_domain(e: &OrderEvent) -> Self {
        EventResponse {
            id: e.id.to_string(),
            sequence: e.sequence,
            kind: e.event_type.as_str().to_string(),
            actor: ActorResponse::from_domain(&e.actor),
            at: time(e.at),
            data: e.data.clone(),
        }
    }
}

impl OrderResponse {
    pub fn from_domain(o: &Order) -> Self {
        let c = o.currency;
        let totals = o.ledger.totals(o.total);
        let progress = o.progress();
        OrderResponse {
            id: o.id.to_string(),
            reference: o.reference.to_string(),
            status: o.status,
            payment_status: o.payment_status,
            fulfillment_status: o.fulfillment_status,
            stage: o.stage(),
            allowed_actions: o.allowed_actions(),
            currency: c.code().to_string(),
            buyer: BuyerBody::from_domain(&o.buyer),
            items: o
                .lines
                .iter()
                .zip(progress)
                .map(|(l, p)| LineResponse {
                    id: l.id.to_string(),
                    sku: l.sku.as_ref().map(|s| s.as_str().to_string()),
                    name: l.name.clone(),
                    description: l.description.clone(),
                    quantity: l.quantity,
                    unit_price: c.format_amount(l.unit_price),
                    attributes: l.attributes.clone(),
                    line_total: c.format_amount(l.line_total),
                    discount: c.format_amount(l.discount),
                    tax_rate: l.tax_rate.to_string(),
                    tax: c.format_amount(l.tax),
                    total: c.format_amount(l.total(o.pricing.taxes_included)),
                    product_id: l.product_id.map(|p| p.to_string()),
                    catalog_price: l.catalog_price.map(|p| c.format_amount(p)),
                    price_overridden: l.price_overridden(),
                    instances: l.instances.clone(),
                    fulfillment: p.into(),
                })
                .collect(),
            shipping_address: o.shipping_address.as_ref().map(AddressBody::from_domain),
            billing_address: o.billing_address.as_ref().map(AddressBody::from_domain),
            notes: o.notes.clone(),
            external_ids: o
                .external_ids
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            channel: o.channel,
            created_by: ActorResponse {
                kind: o.created_by.kind.clone(),
                id: o.created_by.id.clone(),
                role: o.created_by.role.clone(),
            },
            batch_id: o.batch_id.clone(),
            cancel_reason: o.cancel_reason.clone(),
            subtotal: c.format_amount(o.subtotal),
            discount_total: c.format_amount(o.discount_total),
            shipping_total: c.format_amount(o.shipping_total),
            tax_total: c.format_amount(o.tax_total),
            total: c.format_amount(o.total),
            taxes_included: o.pricing.taxes_included,
            promotions: o
                .pricing
                .promotions
                .iter()
                .map(|p| AppliedPromotionResponse::of(p, c))
                .collect(),
            shipping: o
                .pricing
                .shipping
                .as_ref()
                .map(|s| ShippingChargeResponse::of(s, c)),
            pricing_fallbacks: FallbackResponse::all(&o.pricing),
            version: o.version,
            created_at: time(o.created_at),
            updated_at: time(o.updated_at),
            confirmed_at: o.confirmed_at.map(time),
            completed_at: o.completed_at.map(time),
            cancelled_at: o.cancelled_at.map(time),
            reserved: o
                .reserved
                .iter()
                .map(|(sku, n)| (sku.as_str().to_string(), *n))
                .collect(),
            reserved_until: o.reserved_until.map(time),
            amount_paid: c.format_amount(totals.paid),
            amount_refunded: c.format_amount(totals.refunded),
            amount_pending: c.format_amount(totals.pending),
            amount_due: c.format_amount(totals.due),
            amount_overpaid: c.format_amount(totals.overpaid),
            payments: o
                .ledger
                .payments
                .iter()
                .map(|p| PaymentResponse::from_domain(p, c))
                .collect(),
            refunds: o
                .ledger
                .refunds
                .iter()
                .map(|r| RefundResponse::from_domain(r, c))
                .collect(),
            receipts: o
                .ledger
                .receipts
                .iter()
                .map(|r| ReceiptResponse::from_domain(o, r))
                .collect(),
            shipments: o
                .shipments
                .iter()
                .map(|s| ShipmentResponse::from_domain(o, s))
                .collect(),
            returns: o
                .returns
                .iter()
                .map(|r| ReturnResponse::from_domain(o, r))
                .collect(),
            events: None,
        }
    }
}

/// The version of [`render`]'s output. The store keeps each order's
/// rendering and serves it as is; bump this whenever `OrderResponse` or its
/// parts change, and older renderings are redone when read.
pub const RENDER_VERSION: u32 = 10;

/// How the store renders orders for the API.
pub const RENDERER: ordo_store::Renderer = ordo_store::Renderer {
    version: RENDER_VERSION,
    render,
};

pub fn render(order: &Order) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    let _ = serde_json::to_writer(&mut out, &OrderResponse::from_domain(order));
    out
}

/// Writes an [`OrderPage`] from the orders' stored renderings, without
/// decoding them. The output is byte for byte `serde_json::to_vec(&OrderPage)`
/// (a test holds it to that).
fn render_page(
    orders: &[ordo_store::RenderedOrder],
    next_cursor: Option<&str>,
    has_more: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + orders.iter().map(|o| o.json.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"data\":[");
    for (i, order) in orders.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&order.json);
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    let _ = serde_json::to_writer(&mut out, &next_cursor);
    out.extend_from_slice(if has_more {
        b",\"has_more\":true}"
    } else {
        b",\"has_more\":false}"
    });
    out
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>, version: Option<u64>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = version {
        headers.insert(header::ETAG, etag(v));
    }
    response
}

pub(crate) fn order_response(status: StatusCode, order: &Order) -> Response {
    json_response(status, render(order), Some(order.version))
}

fn location(order_id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/v1/orders/{order_id}"))
        .unwrap_or(HeaderValue::from_static("/v1/orders"))
}

// ---------------------------------------------------------------- handlers

/// A create request taken in, not yet priced: its draft (catalog lines
/// taken from the catalog), what it asks of pricing (`preview`: see
/// [`pricing::Ask`]), the terms the tenant's settings take it in on
/// (holding its stock under the `on_create` policy; telling its buyer),
/// and the settings.
pub(crate) struct TakenIn {
    pub draft: OrderDraft,
    pub ask: pricing::Ask,
    pub terms: orders::Terms,
    pub settings: ordo_domain::TenantSettings,
}

pub(crate) async fn take_in(
    state: &AppState,
    principal: &Principal,
    req: CreateOrderRequest,
    preview: bool,
) -> Result<TakenIn, ApiError> {
    let settings = state
        .settings()
        .get(state.store(), principal.tenant_id)
        .await?;
    let catalog = Catalog::read(
        state.store(),
        principal.tenant_id,
        req.skus(),
        settings.free_text_lines,
    )
    .await?;
    TakenIn::new(settings, &catalog, req, preview)
}

impl TakenIn {
    /// A request taken in by `settings`, its lines from `catalog`.
    pub(crate) fn new(
        settings: ordo_domain::TenantSettings,
        catalog: &Catalog,
        req: CreateOrderRequest,
        preview: bool,
    ) -> Result<TakenIn, ApiError> {
        let ask = req.ask(preview)?;
        let draft = req.into_draft(catalog)?;
        Ok(TakenIn {
            draft,
            ask,
            terms: orders::Terms::of(&settings, catalog),
            settings,
        })
    }
}

/// Create an order.
///
/// With an `Idempotency-Key` header, a repeat of the same request replays
/// the first response (with `Idempotent-Replayed: true`); the same key with
/// a different body is a 409. With `external_ids` that already name an order
/// of identical content, the existing order is returned with 200.
#[utoipa::path(
    post, path = "/v1/orders", tag = "orders",
    request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1 to 255 visible ASCII characters, kept at least 24 hours")),
    responses(
        (status = 201, description = "Created", body = OrderResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 200, description = "An order with these external ids and this content already exists", body = OrderResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not create orders", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency key reused with another body, or external id taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_order(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: JsonBody<CreateOrderRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "create orders")?;
    let idempotency = idempotency(
        &headers,
        &body.raw,
        "POST /v1/orders",
        principal.scope().creator.as_deref(),
    )?;
    let taken = take_in(&state, &principal, body.value, false).await?;
    let rendering = orders::Rendering {
        order: &render,
        reply: None,
    };
    let author = orders::Author::from(&principal);
    let store = state.store();
    let created = pricing::place(
        &state,
        principal.tenant_id,
        (&taken.settings, &taken.draft),
        taken.ask.clone(),
        || {
            Box::pin(orders::replay(
                store,
                &author,
                &taken.draft,
                idempotency.as_ref(),
            ))
        },
        |priced| {
            let (idempotency, terms) = (idempotency.clone(), taken.terms.clone());
            Box::pin(orders::create(
                store,
                &author,
                priced,
                idempotency,
                terms,
                rendering,
            ))
        },
    )
    .await?;
    Ok(match created {
        Created::New { order, body } => {
            let mut r = json_response(StatusCode::CREATED, body, Some(order.version));
            r.headers_mut()
                .insert(header::LOCATION, location(&order.id.to_string()));
            r
        }
        Created::Replayed(stored) => {
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED);
            let mut r = json_response(status, stored.body, Some(1));
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            r.headers_mut()
                .insert(header::LOCATION, location(&stored.order_id.to_string()));
            r
        }
        Created::Existing(order) => order_response(StatusCode::OK, &order),
    })
}

/// Create or update the order named by an external identifier.
///
/// Seed 003's idempotent create: 201 the first time, 200 and unchanged for
/// an identical repeat, 200 with the changes applied while the order can be
/// edited, 409 once it cannot.
#[utoipa::path(
    put, path = "/v1/orders/external/{namespace}/{value}", tag = "orders",
    request_body = CreateOrderRequest,
    params(("namespace" = String, Path, description = "e.g. com.acme.order-id"), ("value" = String, Path, description = "e.g. WEB-2024-123456")),
    responses(
        (status = 201, description = "Created", body = OrderResponse),
        (status = 200, description = "Existed: unchanged or updated", body = OrderResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not write orders", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order differs and can no longer be edited", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn put_order(
    State(state): State<AppState>,
    principal: Principal,
    PathParams((namespace, value)): PathParams<(String, String)>,
    body: JsonBody<CreateOrderRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "create orders")?;
    let key = external_key(&namespace, &value)?;
    let taken = take_in(&state, &principal, body.value, false).await?;
    let author = orders::Author::from(&principal);
    Ok(match put_by_key(&state, &author, key, taken).await? {
        Put::Created(order) => {
            let mut r = order_response(StatusCode::CREATED, &order);
            r.headers_mut()
                .insert(header::LOCATION, location(&order.id.to_string()));
            r
        }
        Put::Updated(order) | Put::Unchanged(order) => order_response(StatusCode::OK, &order),
    })
}

/// Prices a request taken in and creates the order `key` names with it,
/// or brings that order in line (a PUT by external id; an imported order).
pub(crate) async fn put_by_key(
    state: &AppState,
    author: &orders::Author,
    key: (Namespace, String),
    taken: TakenIn,
) -> Result<Put, ApiError> {
    let TakenIn {
        mut draft,
        ask,
        terms,
        settings,
    } = taken;
    match draft.external_ids.get(&key.0) {
        Some(v) if *v != key.1 => {
            return Err(ApiError::field(
                FieldError::new(
                    format!("external_ids.{}", key.0),
                    "differs from the identifier in the path",
                )
                .value(v)
                .accepted(&key.1),
            ))
        }
        _ => {
            draft.external_ids.insert(key.0.clone(), key.1.clone());
        }
    }
    if draft.external_ids.len() > ordo_domain::order::MAX_EXTERNAL_IDS {
        return Err(ApiError::field(
            FieldError::new(
                "external_ids",
                "too many identifiers, counting the one in the path",
            )
            .accepted(format!("at most {}", ordo_domain::order::MAX_EXTERNAL_IDS)),
        ));
    }
    let store = state.store();
    pricing::place(
        state,
        author.tenant_id,
        (&settings, &draft),
        ask,
        || Box::pin(orders::put_replay(store, author, &key, &draft)),
        |priced| {
            Box::pin(orders::put(
                store,
                author,
                key.clone(),
                priced,
                terms.clone(),
            ))
        },
    )
    .await
}

async fn get_with(
    state: &AppState,
    principal: &Principal,
    lookup: OrderLookup,
    expand: Option<&str>,
) -> Result<Response, ApiError> {
    let mut expand_events = false;
    for part in expand
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part {
            "events" => expand_events = true,
            other => {
                return Err(ApiError::field(
                    FieldError::new("expand", "cannot expand this")
                        .value(other)
                        .accepted("events"),
                ))
            }
        }
    }
    let scope = principal.scope();
    if !expand_events {
        let rendered = state
            .store()
            .rendered_order(&scope, &lookup)
            .await?
            .ok_or(ApiError::NotFound("order"))?;
        return Ok(json_response(
            StatusCode::OK,
            rendered.json,
            Some(rendered.version),
        ));
    }
    let order = read_order(state, principal, &lookup).await?;
    let events = state.store().order_events(&scope, order.id).await?;
    let mut body = OrderResponse::from_domain(&order);
    body.events = Some(events.iter().map(EventResponse::from_domain).collect());
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
        Some(order.version),
    ))
}

/// Get an order by id (`ord_…`) or reference (`ORD-7K3Q-X2MB`).
#[utoipa::path(
    get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id or reference"), GetOrderParams),
    responses(
        (status = 200, description = "The order", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order for this key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid expand", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    QueryParams(params): QueryParams<GetOrderParams>,
) -> Result<Response, ApiError> {
    get_with(&state, &principal, lookup(&id)?, params.expand.as_deref()).await
}

/// Get an order by external identifier.
#[utoipa::path(
    get, path = "/v1/orders/external/{namespace}/{value}", tag = "orders",
    params(("namespace" = String, Path), ("value" = String, Path), GetOrderParams),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid identifier", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_order_by_external_id(
    State(state): State<AppState>,
    principal: Principal,
    PathParams((namespace, value)): PathParams<(String, String)>,
    QueryParams(params): QueryParams<GetOrderParams>,
) -> Result<Response, ApiError> {
    let (ns, value) = external_key(&namespace, &value)?;
    get_with(
        &state,
        &principal,
        OrderLookup::External(ns, value),
        params.expand.as_deref(),
    )
    .await
}

/// List orders, newest first by default, with filters and cursor pagination.
#[utoipa::path(
    get, path = "/v1/orders", tag = "orders",
    params(ListOrdersParams),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_orders(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams<ListOrdersParams>,
) -> Result<Response, ApiError> {
    let mut query = params.query()?;
    let limit = query.limit as usize;
    // One more than the page tells whether another page follows.
    query.limit += 1;
    let mut found = state
        .store()
        .rendered_orders(&principal.scope(), &query)
        .await?;
    let has_more = found.len() > limit;
    found.truncate(limit);
    let next_cursor = if has_more {
        found
            .last()
            .map(|o| encode_cursor(query.sort, o.cursor(query.sort.field)))
    } else {
        None
    };
    Ok(json_response(
        StatusCode::OK,
        render_page(&found, next_cursor.as_deref(), has_more),
        None,
    ))
}

/// Count orders matching the same filters as the list.
#[utoipa::path(
    get, path = "/v1/orders/count", tag = "orders",
    params(ListOrdersParams),
    responses(
        (status = 200, description = "The count", body = OrderCount),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn count_orders(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams<ListOrdersParams>,
) -> Result<axum::Json<OrderCount>, ApiError> {
    let mut errors = FieldErrors::new();
    for (name, given) in [
        ("sort", &params.sort),
        ("limit", &params.limit),
        ("cursor", &params.cursor),
    ] {
        if let Some(v) = given {
            errors.push(
                FieldError::new(name, "a count takes filters only")
                    .value(v)
                    .accepted("the filters of GET /v1/orders"),
            );
        }
    }
    let filter = params.filter(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let count = state
        .store()
        .count_orders(&principal.scope(), &filter)
        .await?;
    Ok(axum::Json(OrderCount { count }))
}

/// Edit an order while it is editable (pending, or confirmed with nothing
/// paid or shipped). Totals follow.
#[utoipa::path(
    patch, path = "/v1/orders/{id}", tag = "orders",
    request_body = UpdateOrderRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The order after the edit", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order can no longer be edited", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn update_order(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<UpdateOrderRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "edit orders")?;
    let lookup = lookup(&id)?;
    let expected = if_match(&headers)?;
    // Amounts are parsed in the order's currency, read first; the edit
    // itself runs on the current order inside the write.
    let current = read_order(&state, &principal, &lookup).await?;
    let req = body.value;
    let settings = state
        .settings()
        .get(state.store(), principal.tenant_id)
        .await?;
    let reprice = req.reprice == Some(true);
    let mut errors = FieldErrors::new();
    let codes = req
        .promotion_codes
        .as_deref()
        .map(|c| pricing::parse_codes(c, &mut errors));
    for (field, given) in [
        ("promotion_codes", req.promotion_codes.is_some()),
        ("shipping_method", req.shipping_method.is_some()),
    ] {
        if given && !reprice {
            errors.push(
                FieldError::new(field, "only a re-pricing takes this")
                    .accepted("\"reprice\": true with it"),
            );
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let shipping_method = req.shipping_method.clone();
    let priced: Vec<bool> = req
        .items
        .iter()
        .flatten()
        .map(|l| l.unit_price.is_some())
        .collect();
    let mut skus = req.items.as_deref().map(input_skus).unwrap_or_default();
    if reprice && req.items.is_none() {
        skus = current.lines.iter().filter_map(|l| l.sku.clone()).collect();
    }
    let catalog = Catalog::read(
        state.store(),
        principal.tenant_id,
        skus,
        settings.free_text_lines,
    )
    .await?;
    let mut patch = req.into_patch(current.currency, &catalog)?;
    if reprice {
        let ask = pricing::Ask {
            shipping_method,
            codes: Vec::new(),
            preview: false,
            exclude: Vec::new(),
        };
        pricing::reprice(
            &state, &settings, &current, &catalog, &mut patch, codes, ask,
        )
        .await?;
    } else {
        pricing::rate_new_lines(&state, &settings, &current, &mut patch).await?;
        keep_prices(&current, &mut patch, &priced);
    }
    let skus = patch
        .lines
        .as_deref()
        .map(ordo_domain::order::catalog_skus)
        .unwrap_or_default();
    let changed = orders::change(
        &state,
        &principal,
        lookup,
        expected,
        Action::Edit.as_str(),
        skus,
        move |o, book, now| {
            let event = o.edit(patch, now)?;
            if event.is_some() {
                o.sync_stock(book)?;
            }
            Ok(event)
        },
    )
    .await?;
    Ok(order_response(StatusCode::OK, &changed.order))
}

/// An edit keeps what the order was priced by: a catalog item given no
/// `unit_price` keeps the price, catalog price and tax rate of the order's
/// line of the same product and attributes (the one at its place first),
/// not today's catalog price; only a new item takes that. `reprice`
/// prices every line again.
fn keep_prices(current: &Order, patch: &mut OrderPatch, priced: &[bool]) {
    let Some(drafts) = patch.lines.as_mut() else {
        return;
    };
    for (i, draft) in drafts.iter_mut().enumerate() {
        if priced.get(i).copied().unwrap_or(true) || draft.product_id.is_none() {
            continue;
        }
        let same = |line: &&ordo_domain::Line| {
            line.product_id == draft.product_id && line.attributes == draft.attributes
        };
        let old = current
            .lines
            .get(i)
            .filter(same)
            .or_else(|| current.lines.iter().find(same));
        if let Some(old) = old {
            draft.unit_price = old.unit_price;
            draft.catalog_price = old.catalog_price;
            draft.tax_rate = old.tax_rate;
        }
    }
}

macro_rules! action_handler {
    ($name:ident, $path:literal, $action:expr, $doc:literal, $body:ty, |$o:ident, $book:ident, $now:ident, $req:ident, $settings:ident| $apply:expr) => {
        #[doc = $doc]
        #[utoipa::path(
            post, path = $path, tag = "orders",
            request_body(content = $body, description = "Optional for confirm and complete"),
            params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
            responses(
                (status = 200, description = "The order after the action", body = OrderResponse, headers(("ETag" = String))),
                (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
                (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
                (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "Not allowed from the current status (the body names it and the allowed actions), or not enough stock to reserve (`/problems/insufficient-stock`: `shortages` lists every short SKU)", body = Problem, content_type = "application/problem+json"),
                (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
            ),
            security(("api_key" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            principal: Principal,
            PathParams(id): PathParams<String>,
            headers: HeaderMap,
            OptionalJsonBody($req): OptionalJsonBody<$body>,
        ) -> Result<Response, ApiError> {
            principal.require(Permission::WriteOrders, "change orders")?;
            let lookup = lookup(&id)?;
            let expected = if_match(&headers)?;
            let $settings = state.settings().get(state.store(), principal.tenant_id).await?;
            let changed = orders::change(&state, &principal, lookup, expected, $action.as_str(), Vec::new(), move |$o, $book, $now| $apply).await?;
            Ok(order_response(StatusCode::OK, &changed.order))
        }
    };
}

action_handler!(
    confirm_order,
    "/v1/orders/{id}/confirm",
    Action::Confirm,
    "Confirm a pending order. Under the `on_confirm` reservation policy this reserves the stock of its catalog lines, or fails with a 409 listing every short SKU; an order that holds stock from its creation keeps it, no longer with an expiry.",
    EmptyRequest,
    |o, book, now, _req, settings| orders::confirm(o, book, now, &settings)
);
action_handler!(
    complete_order,
    "/v1/orders/{id}/complete",
    Action::Complete,
    "Complete a confirmed order once every unit has been delivered (otherwise a 409 says so). Stock left the shop as its shipments shipped; with the tenant's `auto_complete` a paid, delivered order completes by itself.",
    EmptyRequest,
    |o, book, now, _req, _settings| {
        let event = o.complete(now)?;
        o.sync_stock(book)?;
        Ok(Some(event))
    }
);

/// The reason of a cancel, checked.
fn cancel_reason(req: Option<CancelRequest>) -> Result<String, ApiError> {
    let reason = req.map(|r| r.reason.trim().to_string()).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::field(
            FieldError::new("reason", "a cancellation needs a reason")
                .accepted("1 to 500 characters"),
        ));
    }
    Ok(reason)
}

/// Cancel an order that has not shipped, with a reason.
#[utoipa::path(
    post, path = "/v1/orders/{id}/cancel", tag = "orders",
    request_body = CancelRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the current status", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason given", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn cancel_order(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    OptionalJsonBody(req): OptionalJsonBody<Option<CancelRequest>>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "change orders")?;
    let lookup = lookup(&id)?;
    let expected = if_match(&headers)?;
    let reason = cancel_reason(req)?;
    let changed = orders::change(
        &state,
        &principal,
        lookup,
        expected,
        Action::Cancel.as_str(),
        Vec::new(),
        move |o, book, now| orders::cancel(o, book, now, reason),
    )
    .await?;
    Ok(order_response(StatusCode::OK, &changed.order))
}

/// The order's timeline, oldest first.
#[utoipa::path(
    get, path = "/v1/orders/{id}/events", tag = "orders",
    params(("id" = String, Path, description = "Order id or reference")),
    responses(
        (status = 200, description = "The timeline", body = EventList),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn order_events(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<EventList>, ApiError> {
    let order = read_order(&state, &principal, &lookup(&id)?).await?;
    let events = state
        .store()
        .order_events(&principal.scope(), order.id)
        .await?;
    Ok(axum::Json(EventList {
        data: events.iter().map(EventResponse::from_domain).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        let request: CreateOrderRequest = serde_json::from_value(serde_json::json!({
            "currency": "NGN",
            "buyer": {"name": "Ada \"Obi\"", "channel_id": "wa_2348012345678"},
            "items": [{"name": "Product A", "quantity": 2, "unit_price": "5000.00", "attributes": {"size": "M"}}],
            "notes": "line one\nline two"
        }))
        .expect("request");
        let draft = request.into_draft(&Catalog::empty(true)).expect("valid");
        Order::create(
            draft,
            ordo_domain::NewOrder {
                tenant_id: ordo_domain::TenantId::new(),
                reference: OrderReference::from_sequence(ordo_domain::TenantId::new(), 1)
                    .expect("first"),
                created_by: ordo_domain::Actor::system(),
                now: Timestamp::now(),
            },
        )
        .expect("order")
        .0
    }

    fn rendered(o: &Order) -> ordo_store::RenderedOrder {
        ordo_store::RenderedOrder {
            id: o.id,
            version: o.version,
            updated_at: o.updated_at,
            total: o.total,
            json: render(o),
        }
    }

    /// Stored renderings are served as they are, so a change to the order's
    /// response shape must come with a new `RENDER_VERSION` (old rows are
    /// then rendered afresh). This pins the shape to the version: when it
    /// fails, bump `RENDER_VERSION` and put the new fingerprint here.
    #[test]
    fn the_render_version_changes_with_the_response_shape() {
        use sha2::{Digest, Sha256};
        let doc = serde_json::to_value(crate::api::openapi()).expect("openapi");
        let schemas = &doc["components"]["schemas"];
        let mut shape = String::new();
        for name in [
            "OrderResponse",
            "LineResponse",
            "BuyerBody",
            "AddressBody",
            "ActorResponse",
            "PaymentResponse",
            "RefundResponse",
            "RefundLineBody",
            "ReceiptResponse",
            "ThroughProviderResponse",
            "Instance",
            "LineProgressResponse",
            "ShipmentResponse",
            "ShipmentLineResponse",
            "ReturnResponse",
            "ReturnLineResponse",
            "AppliedPromotionResponse",
            "ShippingChargeResponse",
            "FallbackResponse",
        ] {
            assert!(schemas[name].is_object(), "{name} is in the document");
            shape.push_str(&schemas[name].to_string());
        }
        let fingerprint = hex::encode(&Sha256::digest(shape.as_bytes())[..8]);
        let pinned = [(10, "44d02b6f68986c6e")];
        assert!(
            pinned.contains(&(RENDER_VERSION, fingerprint.as_str())),
            "the order response shape changed (fingerprint {fingerprint}): bump RENDER_VERSION and pin the new fingerprint"
        );
    }

    #[test]
    fn a_page_is_written_exactly_as_its_schema_type_serialises() {
        let orders = [order(), order()];
        let stored: Vec<_> = orders.iter().map(rendered).collect();
        for (cursor, more) in [(None, false), (Some("abc"), true)] {
            let expected = serde_json::to_vec(&OrderPage {
                data: orders.iter().map(OrderResponse::from_domain).collect(),
                next_cursor: cursor.map(str::to_string),
                has_more: more,
            })
            .expect("serialise");
            assert_eq!(render_page(&stored, cursor, more), expected);
        }
        assert_eq!(
            render_page(&[], None, false),
            serde_json::to_vec(&OrderPage {
                data: vec![],
                next_cursor: None,
                has_more: false
            })
            .expect("serialise")
        );
    }
}
