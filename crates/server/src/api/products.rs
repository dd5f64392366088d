//! `/v1/products`: the catalog and its stock. Every role reads it; changing
//! it takes an owner, admin or integration key. Products are named by their
//! SKU in paths (`/v1/products/TEE-M`; a `/` in a SKU is sent as `%2F`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use ordo_domain::pricing::TaxClass;
use ordo_domain::product::{self, MAX_STOCK};
use ordo_domain::{
    Currency, FieldError, FieldErrors, Permission, Product, ProductDraft, ProductPatch, Refusal,
    Sku, StockChange, StockMovement, StockMovementId, TenantId, Timestamp,
};
use ordo_store::{ProductChange, ProductQuery, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{JsonBody, OptionalJsonBody, PathParams, QueryParams};
use super::orders::{
    if_match, json_response, page_size, present, time, ActorResponse, EmptyRequest,
    DEFAULT_PAGE_SIZE,
};
use crate::app::AppState;

// ---------------------------------------------------------------- shapes

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// Unique in the tenant; 1 to 64 letters, digits, `.`, `_`, `-` or `/`.
    #[schema(example = "ANKARA-DRESS-M")]
    pub sku: String,
    #[schema(example = "Ankara dress")]
    pub name: String,
    pub description: Option<String>,
    /// ISO 4217; orders of this product must be in it.
    #[schema(example = "NGN")]
    pub currency: String,
    /// Decimal string in major units.
    #[schema(example = "12500.00")]
    pub price: String,
    /// The values a buyer may choose per attribute, e.g. `{"size": ["S", "M", "L"]}`.
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The SKU of an existing product this one is a variant of.
    pub variant_of: Option<String>,
    pub image_url: Option<String>,
    /// Default true: listed on the storefront and accepted on new lines.
    pub active: Option<bool>,
    /// Default true: orders reserve and deduct its stock.
    pub track_stock: Option<bool>,
    /// The tax its lines pay, by the tenant's tax rules for this class;
    /// default `standard`.
    #[schema(example = "standard")]
    pub tax_class: Option<String>,
    /// What one unit weighs, in grams (shipping rates by weight); default 0.
    #[schema(example = 450)]
    pub weight_grams: Option<i64>,
    /// Units on hand to start with (recorded as a stock movement); default 0.
    pub on_hand: Option<i64>,
}

/// A change to a product; absent fields stay as they are, `null` clears an
/// optional one. The SKU, currency and stock do not change here (stock
/// changes through stock adjustments).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub price: Option<String>,
    /// Replaces every attribute.
    pub attributes: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub variant_of: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub image_url: Option<Option<String>>,
    /// An archived product must be restored before it is turned on.
    pub active: Option<bool>,
    /// Cannot be turned off while open orders hold units.
    pub track_stock: Option<bool>,
    pub tax_class: Option<String>,
    pub weight_grams: Option<i64>,
}

/// A product as a file of products gives it (one NDJSON line, or one CSV
/// row): all a new product needs, or the fields of an existing one to
/// change; absent ones stay as they are. `on_hand` is the count on hand,
/// set by a stock movement. The fields `GET /v1/products` adds are read
/// over, so a saved listing can be imported as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUpsert {
    pub sku: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub currency: Option<String>,
    pub price: Option<String>,
    pub attributes: Option<BTreeMap<String, Vec<String>>>,
    pub variant_of: Option<String>,
    pub image_url: Option<String>,
    pub active: Option<bool>,
    pub track_stock: Option<bool>,
    pub tax_class: Option<String>,
    pub weight_grams: Option<i64>,
    pub on_hand: Option<i64>,
    #[serde(default, rename = "id")]
    _id: serde::de::IgnoredAny,
    #[serde(default, rename = "reserved")]
    _reserved: serde::de::IgnoredAny,
    #[serde(default, rename = "available")]
    _available: serde::de::IgnoredAny,
    #[serde(default, rename = "in_stock")]
    _in_stock: serde::de::IgnoredAny,
    #[serde(default, rename = "version")]
    _version: serde::de::IgnoredAny,
    #[serde(default, rename = "created_at")]
    _created_at: serde::de::IgnoredAny,
    #[serde(default, rename = "updated_at")]
    _updated_at: serde::de::IgnoredAny,
    #[serde(default, rename = "archived_at")]
    _archived_at: serde::de::IgnoredAny,
}

/// What an upsert by SKU did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upserted {
    Created,
    Updated,
    Unchanged,
}

/// A change to the stock on hand: exactly one of `delta` and `set`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockAdjustmentRequest {
    /// Units to add (negative: take away), e.g. `12` after a delivery.
    pub delta: Option<i64>,
    /// The units counted on hand, e.g. after a stock count.
    pub set: Option<i64>,
    /// Why, e.g. `restock`, `stock count`, `damaged`.
    #[schema(example = "restock")]
    pub reason: Option<String>,
}

/// A product, with its stock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    #[schema(example = "prod_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub currency: String,
    /// Decimal string in major units.
    #[schema(example = "12500.00")]
    pub price: String,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub variant_of: Option<String>,
    pub image_url: Option<String>,
    pub active: bool,
    pub track_stock: bool,
    /// The tax its lines pay (see the settings' `tax.rules`).
    #[schema(example = "standard")]
    pub tax_class: String,
    /// What one unit weighs, in grams.
    pub weight_grams: u32,
    /// Units the shop holds.
    pub on_hand: i64,
    /// Units held for open orders.
    pub reserved: i64,
    /// On hand less reserved; never negative.
    pub available: i64,
    /// Whether a buyer can have at least one (always, when stock is not tracked).
    pub in_stock: bool,
    /// Grows by one with every change; also the `ETag`.
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    /// Archived products are never sold again; `null` while not archived.
    pub archived_at: Option<String>,
}

/// A page of products, by SKU.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub data: Vec<ProductResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// One change to a product's stock, with the counters after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockMovementResponse {
    #[schema(example = "smv_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub sku: String,
    /// `adjustment`, `reservation`, `release` or `deduction`.
    pub kind: String,
    pub on_hand_change: i64,
    pub reserved_change: i64,
    /// On hand after the movement.
    pub on_hand: i64,
    /// Reserved after the movement.
    pub reserved: i64,
    pub reason: Option<String>,
    /// The order that moved the stock, if one did.
    pub order_id: Option<String>,
    pub actor: ActorResponse,
    pub at: String,
}

/// What a stock adjustment did.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockAdjustmentResponse {
    pub movement: StockMovementResponse,
    pub product: ProductResponse,
}

/// A page of a product's stock movements, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockMovementPage {
    pub data: Vec<StockMovementResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// Filters for listing products. Products are listed by SKU.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListProductsParams {
    /// `true` or `false`.
    pub active: Option<String>,
    /// `false` (default): not archived; `true`: only archived; `any`: both.
    pub archived: Option<String>,
    /// Part of the SKU or the name, without regard to case.
    pub q: Option<String>,
    /// Only variants of this SKU.
    pub variant_of: Option<String>,
    /// `true`: only products a buyer can have now; `false`: only those sold out.
    pub in_stock: Option<String>,
    /// Only products whose stock is tracked with at most this many units
    /// available (a low-stock list: `available_lte=5`); 0 or more.
    pub available_lte: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<String>,
}

/// Paging through stock movements.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListMovementsParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `asc` (the default: oldest first) or `desc` (newest first).
    pub order: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<String>,
}

impl ProductResponse {
    pub fn from_domain(p: &Product) -> Self {
        ProductResponse {
            id: p.id.to_string(),
            sku: p.sku.as_str().to_string(),
            name: p.name.clone(),
            description: p.description.clone(),
            currency: p.currency.code().to_string(),
            price: p.currency.format_amount(p.price),
            attributes: p.attributes.clone(),
            variant_of: p.variant_of.as_ref().map(|s| s.as_str().to_string()),
            image_url: p.image_url.clone(),
            active: p.active,
            track_stock: p.track_stock,
            tax_class: p.tax_class.to_string(),
            weight_grams: p.weight_grams,
            on_hand: p.on_hand,
            reserved: p.reserved,
            available: p.available(),
            in_stock: p.in_stock(),
            version: p.version,
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
            archived_at: p.archived_at.map(time),
        }
    }
}

impl StockMovementResponse {
    fn from_domain(m: &StockMovement) -> Self {
        StockMovementResponse {
            id: m.id.to_string(),
            sku: m.sku.as_str().to_string(),
            kind: m.kind.as_str().to_string(),
            on_hand_change: m.on_hand_change,
            reserved_change: m.reserved_change,
            on_hand: m.on_hand,
            reserved: m.reserved,
            reason: m.reason.clone(),
            order_id: m.order_id.map(|o| o.to_string()),
            actor: ActorResponse::from_domain(&m.actor),
            at: time(m.at),
        }
    }
}

// ---------------------------------------------------------------- parsing

pub(crate) fn parse_bool(
    field: &str,
    text: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<bool> {
    match text? {
        "true" => Some(true),
        "false" => Some(false),
        other => {
            errors.push(
                FieldError::new(field, "not a boolean")
                    .value(other)
                    .accepted("true or false"),
            );
            None
        }
    }
}

/// A variant's parent: an existing product of the tenant, not itself.
async fn parent(
    state: &AppState,
    tenant: TenantId,
    own: &Sku,
    text: &str,
    errors: &mut FieldErrors,
) -> Result<Option<Sku>, ApiError> {
    let Some(sku) = errors.take(product::parse_sku("variant_of", text)) else {
        return Ok(None);
    };
    if sku == *own {
        errors.push(
            FieldError::new("variant_of", "a product cannot be a variant of itself")
                .value(text)
                .accepted("the SKU of another product"),
        );
        return Ok(None);
    }
    if state.store().product(tenant, &sku).await?.is_none() {
        errors.push(
            FieldError::new("variant_of", "no product has this SKU")
                .value(text)
                .accepted("the SKU of an existing product"),
        );
        return Ok(None);
    }
    Ok(Some(sku))
}

impl CreateProductRequest {
    async fn into_draft(
        self,
        state: &AppState,
        tenant: TenantId,
    ) -> Result<ProductDraft, ApiError> {
        let mut errors = FieldErrors::new();
        let sku = errors.take(product::parse_sku("sku", &self.sku));
        let name = errors.take(product::parse_name(&self.name));
        let description = errors.take(product::parse_description(self.description.as_deref()));
        let currency = errors.take(Currency::parse_field("currency", &self.currency));
        let price = currency.and_then(|c| errors.take(c.parse_price("price", &self.price)));
        let attributes = errors.take_all(product::parse_attributes(&self.attributes));
        let image_url = errors.take(product::parse_image_url(self.image_url.as_deref()));
        let on_hand = errors.take(product::parse_stock("on_hand", self.on_hand.unwrap_or(0)));
        let tax_class = match self.tax_class.as_deref() {
            None => Some(TaxClass::standard()),
            Some(text) => errors.take(TaxClass::parse_field("tax_class", text)),
        };
        let weight_grams = errors.take(product::parse_weight(self.weight_grams.unwrap_or(0)));
        let variant_of = match (&sku, self.variant_of.as_deref()) {
            (Some(sku), Some(text)) => parent(state, tenant, sku, text, &mut errors).await?,
            _ => None,
        };
        let (
            Some(sku),
            Some(name),
            Some(description),
            Some(currency),
            Some(price),
            Some(attributes),
            Some(image_url),
            Some(on_hand),
        ) = (
            sku,
            name,
            description,
            currency,
            price,
            attributes,
            image_url,
            on_hand,
        )
        else {
            return Err(ApiError::Validation(errors));
        };
        errors
            .finish(|| ProductDraft {
                sku,
                name,
                description,
                currency,
                price,
                attributes,
                variant_of,
                image_url,
                active: self.active.unwrap_or(true),
                track_stock: self.track_stock.unwrap_or(true),
                tax_class: tax_class.unwrap_or_default(),
                weight_grams: weight_grams.unwrap_or(0),
                on_hand,
            })
            .map_err(ApiError::Validation)
    }
}

impl UpdateProductRequest {
    async fn into_patch(
        self,
        state: &AppState,
        current: &Product,
    ) -> Result<ProductPatch, ApiError> {
        let mut errors = FieldErrors::new();
        let mut patch = ProductPatch {
            active: self.active,
            track_stock: self.track_stock,
            ..ProductPatch::default()
        };
        if let Some(name) = &self.name {
            patch.name = errors.take(product::parse_name(name));
        }
        if let Some(description) = &self.description {
            patch.description = errors.take(product::parse_description(description.as_deref()));
        }
        if let Some(price) = &self.price {
            patch.price = errors.take(current.currency.parse_price("price", price));
        }
        if let Some(attributes) = &self.attributes {
            patch.attributes = errors.take_all(product::parse_attributes(attributes));
        }
        if let Some(image_url) = &self.image_url {
            patch.image_url = errors.take(product::parse_image_url(image_url.as_deref()));
        }
        if let Some(class) = &self.tax_class {
            patch.tax_class = errors.take(TaxClass::parse_field("tax_class", class));
        }
        if let Some(grams) = self.weight_grams {
            patch.weight_grams = errors.take(product::parse_weight(grams));
        }
        match self.variant_of.as_ref().map(Option::as_deref) {
            None => {}
            Some(None) => patch.variant_of = Some(None),
            Some(Some(text)) => {
                let tenant = current.tenant_id;
                if let Some(sku) = parent(state, tenant, &current.sku, text, &mut errors).await? {
                    patch.variant_of = Some(Some(sku));
                }
            }
        }
        errors.finish(|| patch).map_err(ApiError::Validation)
    }
}

impl ListProductsParams {
    pub(crate) fn query(&self) -> Result<ProductQuery, ApiError> {
        let mut errors = FieldErrors::new();
        let active = parse_bool("active", self.active.as_deref(), &mut errors);
        let in_stock = parse_bool("in_stock", self.in_stock.as_deref(), &mut errors);
        let archived = match self.archived.as_deref() {
            None | Some("false") => Some(false),
            Some("true") => Some(true),
            Some("any") => None,
            Some(other) => {
                errors.push(
                    FieldError::new("archived", "unknown value")
                        .value(other)
                        .accepted("true, false or any"),
                );
                None
            }
        };
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
        let variant_of = self
            .variant_of
            .as_deref()
            .and_then(|s| errors.take(product::parse_sku("variant_of", s)));
        let available_lte = self.available_lte.as_deref().and_then(|text| {
            let n = text.trim().parse::<i64>().ok().filter(|n| *n >= 0);
            if n.is_none() {
                errors.push(
                    FieldError::new("available_lte", "not a number of units")
                        .value(text)
                        .accepted("a whole number, 0 or more"),
                );
            }
            n
        });
        let after = self
            .cursor
            .as_deref()
            .and_then(|c| errors.take(decode_cursor(c)));
        let limit = errors
            .take(page_size(self.limit.as_deref()))
            .unwrap_or(DEFAULT_PAGE_SIZE);
        errors
            .finish(|| ProductQuery {
                active,
                archived,
                q,
                variant_of,
                in_stock,
                available_lte,
                after,
                limit,
            })
            .map_err(ApiError::Validation)
    }
}

fn encode_cursor(sku: &Sku) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sku|{}", sku.as_str()))
}

fn decode_cursor(text: &str) -> Result<Sku, FieldError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|raw| Sku::parse(raw.strip_prefix("sku|")?).ok())
        .ok_or_else(|| {
            FieldError::new("cursor", "not a cursor from this list")
                .value(text)
                .accepted("the next_cursor of a previous page")
        })
}

impl StockAdjustmentRequest {
    fn parse(self) -> Result<(StockChange, String), ApiError> {
        let mut errors = FieldErrors::new();
        let change = match (self.delta, self.set) {
            (Some(d), None) if d != 0 && d.abs() <= MAX_STOCK => Some(StockChange::Delta(d)),
            (Some(d), None) => {
                errors.push(
                    FieldError::new("delta", "a delta moves at least one unit")
                        .value(d)
                        .accepted(format!(
                            "a whole number from -{MAX_STOCK} to {MAX_STOCK}, not 0"
                        )),
                );
                None
            }
            (None, Some(n)) => errors
                .take(product::parse_stock("set", n))
                .map(StockChange::Set),
            (Some(_), Some(_)) | (None, None) => {
                errors.push(
                    FieldError::new("delta", "give exactly one of delta and set")
                        .accepted("delta (units to add or take away) or set (units counted)"),
                );
                None
            }
        };
        let reason = errors.take(product::parse_reason(self.reason.as_deref()));
        match (change, reason) {
            (Some(change), Some(reason)) if errors.is_empty() => Ok((change, reason)),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

// ---------------------------------------------------------------- helpers

fn product_error(e: StoreError) -> ApiError {
    ApiError::from_store(e, "product")
}

/// A SKU from a path; one that cannot be a SKU names no product.
fn path_sku(text: &str) -> Result<Sku, ApiError> {
    Sku::parse(text).map_err(|_| ApiError::NotFound("product"))
}

async fn find(state: &AppState, tenant: TenantId, sku: &Sku) -> Result<Product, ApiError> {
    state
        .store()
        .product(tenant, sku)
        .await
        .map_err(product_error)?
        .ok_or(ApiError::NotFound("product"))
}

fn product_response(status: StatusCode, p: &Product) -> Response {
    let body = serde_json::to_vec(&ProductResponse::from_domain(p)).unwrap_or_default();
    json_response(status, body, Some(p.version))
}

fn location(sku: &Sku) -> HeaderValue {
    let path: String = url::form_urlencoded::byte_serialize(sku.as_str().as_bytes()).collect();
    HeaderValue::from_str(&format!("/v1/products/{path}"))
        .unwrap_or(HeaderValue::from_static("/v1/products"))
}

/// Runs a change that records no stock movement on the current product.
async fn change(
    state: &AppState,
    principal: &Principal,
    sku: Sku,
    expected: Option<u64>,
    apply: impl FnOnce(&mut Product, Timestamp) -> Result<(), FieldErrors> + Send + 'static,
) -> Result<Response, ApiError> {
    let change: ProductChange = Box::new(move |p| {
        apply(p, Timestamp::now()).map_err(|e| StoreError::Refused(Refusal::Invalid(e)))?;
        Ok(None)
    });
    let (product, _) = state
        .store()
        .change_product(principal.tenant_id, sku, expected, change)
        .await
        .map_err(product_error)?;
    Ok(product_response(StatusCode::OK, &product))
}

/// Creates the product `input` names by SKU or changes the one there, as
/// `POST /v1/products` and `PATCH /v1/products/{sku}` would (with a stock
/// adjustment to `on_hand`, for `reason`). Only checks, when not `write`:
/// the outcome says what writing would do.
pub(crate) async fn put_by_sku(
    state: &AppState,
    tenant: TenantId,
    actor: ordo_domain::Actor,
    input: ProductUpsert,
    reason: &str,
    write: bool,
) -> Result<Upserted, ApiError> {
    let sku = product::parse_sku("sku", &input.sku).map_err(ApiError::field)?;
    let Some(current) = state
        .store()
        .product(tenant, &sku)
        .await
        .map_err(product_error)?
    else {
        let mut errors = FieldErrors::new();
        for (field, given) in [
            ("name", input.name.is_some()),
            ("currency", input.currency.is_some()),
            ("price", input.price.is_some()),
        ] {
            if !given {
                errors.push(FieldError::new(field, "a new product needs one"));
            }
        }
        let request = CreateProductRequest {
            sku: input.sku,
            name: input.name.unwrap_or_default(),
            description: input.description,
            currency: input.currency.unwrap_or_default(),
            price: input.price.unwrap_or_default(),
            attributes: input.attributes.unwrap_or_default(),
            variant_of: input.variant_of,
            image_url: input.image_url,
            active: input.active,
            track_stock: input.track_stock,
            tax_class: input.tax_class,
            weight_grams: input.weight_grams,
            on_hand: input.on_hand,
        };
        // Every problem at once: what is missing, and what is wrong with
        // the rest.
        let draft = match request.into_draft(state, tenant).await {
            Ok(draft) if errors.is_empty() => draft,
            Ok(_) => return Err(ApiError::Validation(errors)),
            Err(ApiError::Validation(more)) => {
                let missing: Vec<String> = errors.0.iter().map(|e| e.field.clone()).collect();
                errors
                    .0
                    .extend(more.0.into_iter().filter(|e| !missing.contains(&e.field)));
                return Err(ApiError::Validation(errors));
            }
            Err(e) => return Err(e),
        };
        if write {
            let (product, first) = draft.into_product(tenant, actor, Timestamp::now());
            state
                .store()
                .insert_product(product, first)
                .await
                .map_err(product_error)?;
        }
        return Ok(Upserted::Created);
    };
    if let Some(currency) = input.currency.as_deref().map(str::trim) {
        if Currency::parse_field("currency", currency).map_err(ApiError::field)? != current.currency
        {
            return Err(ApiError::field(
                FieldError::new("currency", "a product's currency does not change")
                    .value(currency)
                    .accepted(current.currency.code()),
            ));
        }
    }
    let on_hand = match input.on_hand {
        None => None,
        Some(n) => Some(product::parse_stock("on_hand", n).map_err(ApiError::field)?),
    };
    let request = UpdateProductRequest {
        name: input.name,
        description: input.description.map(Some),
        price: input.price,
        attributes: input.attributes,
        variant_of: input.variant_of.map(Some),
        image_url: input.image_url.map(Some),
        active: input.active,
        track_stock: input.track_stock,
        tax_class: input.tax_class,
        weight_grams: input.weight_grams,
    };
    let patch = request.into_patch(state, &current).await?;
    // Tried on a copy first: what it would change, and whether it may.
    let reason = reason.to_string();
    let change = move |p: &mut Product| -> Result<Option<StockMovement>, StoreError> {
        let now = Timestamp::now();
        p.apply(patch, now)
            .map_err(|e| StoreError::Refused(Refusal::Invalid(e)))?;
        match on_hand.filter(|n| *n != p.on_hand) {
            None => Ok(None),
            // Named by the file's column (`StoreError::Stock` would name
            // the adjustment's `set`).
            Some(n) => Ok(Some(
                p.adjust(StockChange::Set(n), reason, actor, now)
                    .map_err(|e| {
                        StoreError::Refused(Refusal::Invalid(
                            FieldError::new("on_hand", e.to_string()).value(n).into(),
                        ))
                    })?,
            )),
        }
    };
    if !write {
        let mut copy = current.clone();
        change(&mut copy).map_err(product_error)?;
        return Ok(if copy == current {
            Upserted::Unchanged
        } else {
            Upserted::Updated
        });
    }
    let (changed, _) = state
        .store()
        .change_product(tenant, sku, None, Box::new(change))
        .await
        .map_err(product_error)?;
    Ok(if changed.version == current.version {
        Upserted::Unchanged
    } else {
        Upserted::Updated
    })
}

// ---------------------------------------------------------------- handlers

/// Add a product.
#[utoipa::path(
    post, path = "/v1/products", tag = "products",
    request_body = CreateProductRequest,
    responses(
        (status = 201, description = "Created", body = ProductResponse, headers(("ETag" = String), ("Location" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage the catalog", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The SKU is already used", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_product(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<CreateProductRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageCatalog, "manage the catalog")?;
    let draft = body.value.into_draft(&state, principal.tenant_id).await?;
    let (product, first) =
        draft.into_product(principal.tenant_id, principal.actor(), Timestamp::now());
    state
        .store()
        .insert_product(product.clone(), first)
        .await
        .map_err(product_error)?;
    let mut r = product_response(StatusCode::CREATED, &product);
    r.headers_mut()
        .insert(header::LOCATION, location(&product.sku));
    Ok(r)
}

/// List products by SKU, with filters and cursor pagination.
#[utoipa::path(
    get, path = "/v1/products", tag = "products",
    params(ListProductsParams),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_products(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams<ListProductsParams>,
) -> Result<axum::Json<ProductPage>, ApiError> {
    let (found, next_cursor) = page(&state, principal.tenant_id, params.query()?).await?;
    Ok(axum::Json(ProductPage {
        has_more: next_cursor.is_some(),
        next_cursor,
        data: found.iter().map(ProductResponse::from_domain).collect(),
    }))
}

/// A page of the products `query` asks for, and the cursor of the next
/// page if there is one.
pub(crate) async fn page(
    state: &AppState,
    tenant: TenantId,
    mut query: ProductQuery,
) -> Result<(Vec<Product>, Option<String>), ApiError> {
    let limit = query.limit as usize;
    query.limit += 1;
    let mut found = state
        .store()
        .products(tenant, &query)
        .await
        .map_err(product_error)?;
    let has_more = found.len() > limit;
    found.truncate(limit);
    let next = has_more
        .then(|| found.last().map(|p| encode_cursor(&p.sku)))
        .flatten();
    Ok((found, next))
}

/// Get a product by SKU.
#[utoipa::path(
    get, path = "/v1/products/{sku}", tag = "products",
    params(("sku" = String, Path, description = "The product's SKU")),
    responses(
        (status = 200, description = "The product", body = ProductResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_product(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(sku): PathParams<String>,
) -> Result<Response, ApiError> {
    let product = find(&state, principal.tenant_id, &path_sku(&sku)?).await?;
    Ok(product_response(StatusCode::OK, &product))
}

/// Change a product's name, description, price, attributes, parent, image,
/// active flag or stock tracking.
#[utoipa::path(
    patch, path = "/v1/products/{sku}", tag = "products",
    request_body = UpdateProductRequest,
    params(("sku" = String, Path, description = "The product's SKU"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The product as changed", body = ProductResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage the catalog", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn update_product(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(sku): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<UpdateProductRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageCatalog, "manage the catalog")?;
    let sku = path_sku(&sku)?;
    let expected = if_match(&headers)?;
    // The price is parsed in the product's currency, which never changes.
    let current = find(&state, principal.tenant_id, &sku).await?;
    let patch = body.value.into_patch(&state, &current).await?;
    change(&state, &principal, sku, expected, move |p, now| {
        p.apply(patch, now).map(drop)
    })
    .await
}

macro_rules! archive_handler {
    ($name:ident, $path:literal, $doc:literal, |$p:ident, $now:ident| $apply:expr) => {
        #[doc = $doc]
        #[utoipa::path(
            post, path = $path, tag = "products",
            params(("sku" = String, Path, description = "The product's SKU"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
            responses(
                (status = 200, description = "The product (unchanged if it already was)", body = ProductResponse, headers(("ETag" = String))),
                (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
                (status = 403, description = "The key's role may not manage the catalog", body = Problem, content_type = "application/problem+json"),
                (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
                (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
            ),
            security(("api_key" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            principal: Principal,
            PathParams(sku): PathParams<String>,
            headers: HeaderMap,
            _body: OptionalJsonBody<EmptyRequest>,
        ) -> Result<Response, ApiError> {
            principal.require(Permission::ManageCatalog, "manage the catalog")?;
            let sku = path_sku(&sku)?;
            let expected = if_match(&headers)?;
            change(&state, &principal, sku, expected, |$p, $now| {
                $apply;
                Ok(())
            })
            .await
        }
    };
}

archive_handler!(
    archive_product,
    "/v1/products/{sku}/archive",
    "Archive a product: it is never sold again, stays readable, and keeps its stock and what open orders hold.",
    |p, now| p.archive(now)
);
archive_handler!(
    restore_product,
    "/v1/products/{sku}/restore",
    "Bring an archived product back, inactive until turned on.",
    |p, now| p.restore(now)
);

/// Change the stock on hand by a delta or to a counted figure, with a
/// reason; recorded as a stock movement. On hand never goes below zero or
/// below what open orders hold (a 409 says how far it may go). Send
/// `If-Match` to make a retry safe: a repeat of an applied adjustment is a
/// 412, never a second change.
#[utoipa::path(
    post, path = "/v1/products/{sku}/stock-adjustments", tag = "products",
    request_body = StockAdjustmentRequest,
    params(("sku" = String, Path, description = "The product's SKU"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 201, description = "Applied", body = StockAdjustmentResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage the catalog", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "On hand would fall below zero or below the reserved units", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn adjust_stock(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(sku): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<StockAdjustmentRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageCatalog, "adjust stock")?;
    let sku = path_sku(&sku)?;
    let expected = if_match(&headers)?;
    let (stock_change, reason) = body.value.parse()?;
    let actor = principal.actor();
    let change: ProductChange = Box::new(move |p| {
        Ok(Some(p.adjust(
            stock_change,
            reason,
            actor,
            Timestamp::now(),
        )?))
    });
    let (product, movement) = state
        .store()
        .change_product(principal.tenant_id, sku, expected, change)
        .await
        .map_err(product_error)?;
    let movement =
        movement.ok_or_else(|| ApiError::Internal("an adjustment moved nothing".into()))?;
    let body = serde_json::to_vec(&StockAdjustmentResponse {
        movement: StockMovementResponse::from_domain(&movement),
        product: ProductResponse::from_domain(&product),
    })
    .unwrap_or_default();
    Ok(json_response(
        StatusCode::CREATED,
        body,
        Some(product.version),
    ))
}

/// A product's stock movements, oldest first: adjustments, and the
/// reservations, releases and deductions of orders.
#[utoipa::path(
    get, path = "/v1/products/{sku}/stock-movements", tag = "products",
    params(("sku" = String, Path, description = "The product's SKU"), ListMovementsParams),
    responses(
        (status = 200, description = "A page of movements", body = StockMovementPage),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid cursor or limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_stock_movements(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(sku): PathParams<String>,
    QueryParams(params): QueryParams<ListMovementsParams>,
) -> Result<axum::Json<StockMovementPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = errors.take(page_size(params.limit.as_deref()));
    let after = params.cursor.as_deref().and_then(|c| {
        errors.take(StockMovementId::parse(c).ok_or_else(|| {
            FieldError::new("cursor", "not a cursor from this list")
                .value(c)
                .accepted("the next_cursor of a previous page")
        }))
    });
    let newest_first = match params.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            errors.push(
                FieldError::new("order", "not an order of the list")
                    .value(other)
                    .accepted("asc or desc"),
            );
            false
        }
    };
    let Some(limit) = limit.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let product = find(&state, principal.tenant_id, &path_sku(&sku)?).await?;
    let page = ordo_store::MovementPage {
        after,
        limit: limit + 1,
        newest_first,
    };
    let mut found = state
        .store()
        .stock_movements(principal.tenant_id, product.id, page)
        .await
        .map_err(product_error)?;
    let has_more = found.len() > limit as usize;
    found.truncate(limit as usize);
    Ok(axum::Json(StockMovementPage {
        next_cursor: has_more
            .then(|| found.last().map(|m| m.id.to_string()))
            .flatten(),
        has_more,
        data: found
            .iter()
            .map(StockMovementResponse::from_domain)
            .collect(),
    }))
}

/// A product whose stock does not add up.
#[derive(Debug, Serialize, ToSchema)]
pub struct DriftResponse {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// The sum of what the tenant's orders hold of it; should equal `reserved`.
    pub held_by_orders: i64,
    /// The sums of its stock movements; should equal `on_hand` and `reserved`.
    pub on_hand_by_movements: i64,
    pub reserved_by_movements: i64,
}

/// What a reconciliation found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileResponse {
    /// True when every product's stock adds up.
    pub in_balance: bool,
    /// How many products (and SKUs held or moved) were checked.
    pub checked: usize,
    /// Every product whose stock does not add up (there should be none).
    pub drift: Vec<DriftResponse>,
}

/// Check the stock: every product's reserved units against what the
/// tenant's orders hold, and its counters against the sum of its stock
/// movements, in one consistent read.
#[utoipa::path(
    get, path = "/v1/stock/reconcile", tag = "products",
    responses(
        (status = 200, description = "What was found", body = ReconcileResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn reconcile_stock(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<ReconcileResponse>, ApiError> {
    let ledger = state.store().stock_ledger(principal.tenant_id).await?;
    let drift: Vec<DriftResponse> = ledger
        .iter()
        .filter(|l| !l.in_balance())
        .map(|l| DriftResponse {
            sku: l.sku.as_str().to_string(),
            on_hand: l.on_hand,
            reserved: l.reserved,
            held_by_orders: l.held_by_orders,
            on_hand_by_movements: l.on_hand_moved,
            reserved_by_movements: l.reserved_moved,
        })
        .collect();
    if !drift.is_empty() {
        tracing::error!(tenant = %principal.tenant_id, skus = drift.len(), "stock drift found");
    }
    Ok(axum::Json(ReconcileResponse {
        in_balance: drift.is_empty(),
        checked: ledger.len(),
        drift,
    }))
}
