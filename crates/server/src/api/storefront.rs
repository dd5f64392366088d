//! `/v1/storefront/{slug}`: the public face of a shop that opened its
//! storefront (`storefront_enabled` in its settings). No key: guests browse
//! the products on sale and check out a cart, which becomes a pending order
//! on channel `storefront` and a WhatsApp link to send the shop (seed 004).
//! Every request counts against its client address's rate limit.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ordo_domain::order::{check_line_count, parse_notes, LineText};
use ordo_domain::{
    Buyer, Channel, Currency, FieldError, FieldErrors, Order, OrderDraft, OrderStatus, Sku, Stage,
    TenantSettings,
};
use ordo_store::{ProductQuery, Tenant};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Problem};
use super::extract::{JsonBody, PathParams, QueryParams};
use super::orders::{idempotency, json_response, line_skus, time, AddressBody};
use super::products::ListProductsParams;
use crate::app::AppState;
use crate::catalog::Catalog;
use crate::orders::{self, Author, Created, Rendering};

// ---------------------------------------------------------------- shapes

/// The shop.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShopResponse {
    #[schema(example = "ada-styles")]
    pub slug: String,
    #[schema(example = "Ada Styles")]
    pub name: String,
}

/// A product on sale.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontProduct {
    #[schema(example = "ANKARA-DRESS")]
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    #[schema(example = "NGN")]
    pub currency: String,
    /// Decimal string in major units.
    #[schema(example = "12500.00")]
    pub price: String,
    /// The values a buyer picks from (each attribute with several values
    /// must be chosen at checkout).
    #[schema(example = json!({"size": ["S", "M", "L"], "colour": ["red"]}))]
    pub attributes: BTreeMap<String, Vec<String>>,
    pub variant_of: Option<String>,
    pub image_url: Option<String>,
    /// Whether a buyer can have at least one now.
    pub in_stock: bool,
    /// Units a buyer can have now; `null` when the shop does not count
    /// this product's stock.
    pub available: Option<i64>,
}

/// A page of the products on sale, by SKU.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontPage {
    pub shop: ShopResponse,
    pub data: Vec<StorefrontProduct>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// Filters for the products on sale.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StorefrontProductsParams {
    /// Part of the SKU or the name, without regard to case.
    pub q: Option<String>,
    /// `true`: only what a buyer can have now; `false`: only what is sold out.
    pub in_stock: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<String>,
}

/// The guest who checks out.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBuyer {
    #[schema(example = "Ada Obi")]
    pub name: String,
    /// E.164, e.g. `+2348012345678`: where the shop reaches the buyer.
    #[schema(example = "+2348012345678")]
    pub phone: String,
    pub email: Option<String>,
}

/// A line of the cart: a product on sale, how many, and the values chosen.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutItem {
    #[schema(example = "ANKARA-DRESS")]
    pub sku: String,
    #[schema(example = 1, minimum = 1, maximum = 1000000)]
    pub quantity: i64,
    /// One value for each attribute the product offers several of (size,
    /// colour, …), among those it lists.
    #[serde(default)]
    #[schema(example = json!({"size": "M"}))]
    pub attributes: BTreeMap<String, String>,
}

/// A guest's cart. Prices are the catalog's: a cart cannot set them.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "buyer": {"name": "Ada Obi", "phone": "+2348012345678"},
    "items": [{"sku": "ANKARA-DRESS", "quantity": 2, "attributes": {"size": "M"}}],
    "shipping_address": {"line1": "12 Allen Avenue", "city": "Ikeja", "region": "Lagos", "country": "NG"},
    "notes": "Please call before delivery"
}))]
pub struct CheckoutRequest {
    pub buyer: CheckoutBuyer,
    pub items: Vec<CheckoutItem>,
    /// Where to deliver; leave it out for pickup.
    pub shipping_address: Option<AddressBody>,
    pub notes: Option<String>,
    /// The shipping rate chosen, by name; the cheapest that delivers
    /// there otherwise.
    pub shipping_method: Option<String>,
    /// Promotion codes the buyer typed.
    #[serde(default)]
    pub promotion_codes: Vec<String>,
}

/// A line of the order placed.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutLine {
    pub sku: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub quantity: u32,
    #[schema(example = "12500.00")]
    pub unit_price: String,
    #[schema(example = "25000.00")]
    pub line_total: String,
}

/// The order placed, and how to tell the shop about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    #[schema(example = "ord_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub order_id: String,
    /// What the buyer quotes to the shop.
    #[schema(example = "ORD-7K3Q-X2MB")]
    pub reference: String,
    pub status: OrderStatus,
    pub stage: Stage,
    pub currency: String,
    pub items: Vec<CheckoutLine>,
    #[schema(example = "25000.00")]
    pub subtotal: String,
    /// What promotions take off.
    #[schema(example = "0.00")]
    pub discount_total: String,
    #[schema(example = "2500.00")]
    pub shipping_total: String,
    /// On top of the prices, or inside them when `taxes_included`.
    #[schema(example = "2062.50")]
    pub tax_total: String,
    pub taxes_included: bool,
    #[schema(example = "29562.50")]
    pub total: String,
    /// The total as the shop writes it, e.g. `₦25,000.00`.
    #[schema(example = "₦25,000.00")]
    pub total_display: String,
    /// When the stock held for the order is let go unless the shop
    /// confirms it first (only under the `on_create` reservation policy).
    pub reserved_until: Option<String>,
    pub created_at: String,
    /// Opens a WhatsApp chat with the shop, `message` typed in; `null`
    /// when the shop has no WhatsApp number.
    #[schema(
        example = "https://wa.me/2348012345678?text=Hello%20Ada%20Styles%2C%20I%20would%20like%20to%20place%20this%20order%3A…"
    )]
    pub whatsapp_url: Option<String>,
    /// The order in words, for the buyer to send the shop: reference,
    /// items, total and where it goes.
    pub message: String,
}

// ---------------------------------------------------------------- the guest

/// A storefront caller whose client address has requests left. Behind a
/// reverse proxy (`storefront.trust_forwarded_for`), the address is the
/// last one in `X-Forwarded-For`.
pub struct Guest;

impl FromRequestParts<AppState> for Guest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(address) = client_address(state, parts) else {
            return Ok(Guest);
        };
        state
            .storefront_limiter()
            .check(address)
            .map_err(|wait| ApiError::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            })?;
        Ok(Guest)
    }
}

/// The caller's address: the peer's, or behind a reverse proxy
/// (`storefront.trust_forwarded_for`) the last one in `X-Forwarded-For`.
pub(crate) fn client_address(state: &AppState, parts: &Parts) -> Option<IpAddr> {
    let forwarded = state
        .config()
        .storefront
        .trust_forwarded_for
        .then(|| last_forwarded(&parts.headers))
        .flatten();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    forwarded.or(peer)
}

fn last_forwarded(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()?
        .trim()
        .parse()
        .ok()
}

/// The shop of `slug`, if it exists and its storefront is open; a closed
/// storefront is not told apart from a missing one.
async fn open_shop(state: &AppState, slug: &str) -> Result<(Tenant, TenantSettings), ApiError> {
    let tenant = if Tenant::is_valid_slug(slug) {
        state.shop(slug).await?
    } else {
        None
    };
    let Some(tenant) = tenant else {
        return Err(ApiError::NotFound("shop"));
    };
    let settings = state.settings().get(state.store(), tenant.id).await?;
    if !settings.storefront_enabled {
        return Err(ApiError::NotFound("shop"));
    }
    Ok((tenant, settings))
}

// ---------------------------------------------------------------- parsing

impl StorefrontProductsParams {
    /// The staff list's query, narrowed to what is on sale.
    fn query(&self) -> Result<ProductQuery, ApiError> {
        let mut query = ListProductsParams {
            q: self.q.clone(),
            in_stock: self.in_stock.clone(),
            cursor: self.cursor.clone(),
            limit: self.limit.clone(),
            ..ListProductsParams::default()
        }
        .query()?;
        query.active = Some(true);
        query.archived = Some(false);
        Ok(query)
    }
}

impl CheckoutRequest {
    fn skus(&self) -> Vec<Sku> {
        line_skus(self.items.iter().map(|i| Some(i.sku.as_str())))
    }

    /// The order the cart makes: every line from the catalog, in the
    /// currency its products are priced in.
    fn into_draft(self, catalog: &Catalog) -> Result<OrderDraft, ApiError> {
        let mut errors = FieldErrors::new();
        let buyer = errors.take_all(
            Buyer::parse(
                Some(&self.buyer.name),
                Some(&self.buyer.phone),
                self.buyer.email.as_deref(),
                None,
            )
            .map_err(|e| e.under("buyer")),
        );
        if self.buyer.name.trim().is_empty() {
            errors.push(
                FieldError::new("buyer.name", "the buyer's name is required")
                    .value(&self.buyer.name)
                    .accepted("1 to 200 characters"),
            );
        }
        errors.take(check_line_count(self.items.len()));
        let currency = self.items.iter().find_map(|i| {
            let sku = Sku::parse(&i.sku).ok()?;
            catalog.product(&sku).map(|p| p.currency)
        });
        let lines = self.lines(currency, catalog, &mut errors);
        let shipping_address = self
            .shipping_address
            .as_ref()
            .and_then(|a| errors.take_all(a.parse("shipping_address")));
        let notes = errors.take(parse_notes(self.notes.as_deref())).flatten();
        match (buyer, currency) {
            (Some(buyer), Some(currency)) if errors.is_empty() => Ok(OrderDraft {
                currency,
                buyer,
                lines,
                shipping_address,
                billing_address: None,
                notes,
                external_ids: ordo_domain::ExternalIds::new(),
                channel: Channel::Storefront,
                pricing: Default::default(),
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }

    fn lines(
        &self,
        currency: Option<Currency>,
        catalog: &Catalog,
        errors: &mut FieldErrors,
    ) -> Vec<ordo_domain::LineDraft> {
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let text = LineText {
                sku: Some(&item.sku),
                name: None,
                description: None,
                quantity: item.quantity,
                unit_price: None,
                attributes: &item.attributes,
                instances: &[],
            };
            let parsed = match currency {
                Some(currency) => catalog.line(text, currency),
                // No line names a product on sale, and a storefront's
                // catalog takes no free text: each line says why.
                None => Err(catalog.refuse_free_text(&text).err().unwrap_or_default()),
            };
            if let Some(line) = errors.take_all(parsed.map_err(|e| e.under(&format!("items[{i}]"))))
            {
                lines.push(line);
            }
        }
        lines
    }
}

// ---------------------------------------------------------------- rendering

impl StorefrontProduct {
    fn from_domain(p: &ordo_domain::Product) -> Self {
        StorefrontProduct {
            sku: p.sku.as_str().to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            currency: p.currency.code().to_string(),
            price: p.currency.format_amount(p.price),
            attributes: p.attributes.clone(),
            variant_of: p.variant_of.as_ref().map(|s| s.as_str().to_string()),
            image_url: p.image_url.clone(),
            in_stock: p.in_stock(),
            available: p.track_stock.then(|| p.available()),
        }
    }
}

impl CheckoutResponse {
    fn of(order: &Order, shop: &Tenant, settings: &TenantSettings) -> Self {
        let c = order.currency;
        let message = crate::storefront::checkout_message(&shop.name, order);
        CheckoutResponse {
            order_id: order.id.to_string(),
            reference: order.reference.to_string(),
            status: order.status,
            stage: order.stage(),
            currency: c.code().to_string(),
            items: order
                .lines
                .iter()
                .map(|l| CheckoutLine {
                    sku: l
                        .sku
                        .as_ref()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    name: l.name.clone(),
                    attributes: l.attributes.clone(),
                    quantity: l.quantity,
                    unit_price: c.format_amount(l.unit_price),
                    line_total: c.format_amount(l.line_total),
                })
                .collect(),
            subtotal: c.format_amount(order.subtotal),
            discount_total: c.format_amount(order.discount_total),
            shipping_total: c.format_amount(order.shipping_total),
            tax_total: c.format_amount(order.tax_total),
            taxes_included: order.pricing.taxes_included,
            total: c.format_amount(order.total),
            total_display: c.display_amount(order.total),
            reserved_until: order.reserved_until.map(time),
            created_at: time(order.created_at),
            whatsapp_url: settings
                .whatsapp_number
                .as_ref()
                .map(|n| crate::storefront::whatsapp_url(n, &message)),
            message,
        }
    }
}

// ---------------------------------------------------------------- handlers

/// The products a shop has on sale, with what is available.
#[utoipa::path(
    get, path = "/v1/storefront/{slug}/products", tag = "storefront",
    params(("slug" = String, Path, description = "The shop's slug"), StorefrontProductsParams),
    responses(
        (status = 200, description = "A page of the products on sale", body = StorefrontPage),
        (status = 404, description = "No open storefront has this slug", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = String))),
    )
)]
pub async fn list_products(
    State(state): State<AppState>,
    _guest: Guest,
    PathParams(slug): PathParams<String>,
    QueryParams(params): QueryParams<StorefrontProductsParams>,
) -> Result<axum::Json<StorefrontPage>, ApiError> {
    let (shop, _) = open_shop(&state, &slug).await?;
    let (found, next_cursor) = super::products::page(&state, shop.id, params.query()?).await?;
    Ok(axum::Json(StorefrontPage {
        shop: ShopResponse {
            slug: shop.slug,
            name: shop.name,
        },
        has_more: next_cursor.is_some(),
        next_cursor,
        data: found.iter().map(StorefrontProduct::from_domain).collect(),
    }))
}

/// Check out a cart as a guest.
///
/// Creates a pending order on channel `storefront` at the catalog's prices
/// and answers with its reference, totals and a `wa.me` link whose message
/// lists the items and the total, for the buyer to send the shop. Items not
/// available now are refused (409, every short SKU listed); under the
/// shop's `on_create` policy the stock is also held until `reserved_until`.
/// With an `Idempotency-Key`, a retried checkout answers the first order
/// again instead of placing a second.
#[utoipa::path(
    post, path = "/v1/storefront/{slug}/checkout", tag = "storefront",
    request_body = CheckoutRequest,
    params(("slug" = String, Path, description = "The shop's slug"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried checkout safe: 1 to 255 visible ASCII characters")),
    responses(
        (status = 201, description = "The order placed (or, for a retry with the same Idempotency-Key, the first answer again with Idempotent-Replayed: true)", body = CheckoutResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No open storefront has this slug", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock, or the Idempotency-Key was used for another cart", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over storefront.body_limit_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: unknown or archived SKU, bad quantity, attribute values not offered, …", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = String))),
    )
)]
pub async fn checkout(
    State(state): State<AppState>,
    _guest: Guest,
    PathParams(slug): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<CheckoutRequest>,
) -> Result<Response, ApiError> {
    let (shop, settings) = open_shop(&state, &slug).await?;
    let idempotency = idempotency(&headers, &body.raw, "POST /v1/storefront/checkout", None)?;
    let req = body.value;
    let catalog = Catalog::read(state.store(), shop.id, req.skus(), false).await?;
    let mut errors = FieldErrors::new();
    let ask = crate::pricing::Ask {
        shipping_method: req.shipping_method.clone(),
        codes: crate::pricing::parse_codes(&req.promotion_codes, &mut errors),
        preview: false,
        exclude: Vec::new(),
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let draft = req.into_draft(&catalog)?;
    let short = catalog.shortages(&draft.lines);
    if !short.is_empty() {
        return Err(ApiError::Short(short));
    }
    let author = Author::buyer(
        shop.id,
        draft
            .buyer
            .phone
            .as_ref()
            .map_or("guest", |p| p.as_str())
            .to_string(),
    );
    let terms = orders::Terms::of(&settings, &catalog);
    let reply = |order: &Order| {
        serde_json::to_vec(&CheckoutResponse::of(order, &shop, &settings)).unwrap_or_default()
    };
    let rendering = Rendering {
        order: &super::orders::render,
        reply: Some(&reply),
    };
    let store = state.store();
    let created = crate::pricing::place(
        &state,
        shop.id,
        (&settings, &draft),
        ask,
        || Box::pin(orders::replay(store, &author, &draft, idempotency.as_ref())),
        |priced| {
            let (idempotency, terms) = (idempotency.clone(), terms.clone());
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
    let (status, body, replayed) = match created {
        Created::New { body, .. } => (StatusCode::CREATED, body, false),
        Created::Replayed(stored) => (
            StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED),
            stored.body,
            true,
        ),
        // A checkout has no external identifiers to match.
        Created::Existing(order) => (StatusCode::OK, reply(&order), false),
    };
    if status == StatusCode::CREATED && !replayed {
        metrics::counter!("ordo_storefront_checkouts_total").increment(1);
    }
    let mut response = json_response(status, body, None);
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}
