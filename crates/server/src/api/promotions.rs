//! `/v1/promotions`: codes buyers give and discounts that apply by
//! themselves. Every role reads them; owners, admins and integration keys
//! change them (as they do the catalog's prices).

use axum::extract::State;
use axum::http::StatusCode;
use ordo_domain::pricing::{Code, Discount, Promotion, Rate, MAX_PROMOTION_SKUS};
use ordo_domain::{Currency, FieldError, FieldErrors, Permission, PromotionId, Sku, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{JsonBody, PathParams, QueryParams};
use super::orders::{discount_parts, page_size, present, time};
use crate::app::AppState;

/// A promotion: a code a buyer gives, or (without `code`) one that
/// applies by itself to every order it fits.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    #[schema(example = "Welcome 10%")]
    pub name: String,
    /// Letters, digits, `-` and `_`, any case (kept upper case), unique
    /// in the shop; leave it out for an automatic promotion.
    #[schema(example = "WELCOME10")]
    pub code: Option<String>,
    /// `percentage` or `fixed`.
    #[serde(rename = "type")]
    #[schema(example = "percentage")]
    pub kind: String,
    /// A percentage (`"10"`, up to 4 decimals) or an amount in `currency` (`"500.00"`).
    #[schema(example = "10")]
    pub value: String,
    /// Needed for a fixed amount or a minimum; the promotion then applies
    /// only to orders in it.
    #[schema(example = "NGN")]
    pub currency: Option<String>,
    /// The products it applies to; every item when empty.
    #[serde(default)]
    pub skus: Vec<String>,
    /// The least subtotal (before discounts) of an order it applies to.
    #[schema(example = "20000.00")]
    pub min_subtotal: Option<String>,
    #[schema(example = "2026-11-27T00:00:00Z")]
    pub starts_at: Option<String>,
    #[schema(example = "2026-12-01T00:00:00Z")]
    pub ends_at: Option<String>,
    /// How many orders may use it in all.
    pub usage_limit: Option<i64>,
    /// How many orders of one buyer (by phone, else email, else channel id) may use it.
    pub usage_limit_per_buyer: Option<i64>,
    /// Default true.
    pub active: Option<bool>,
}

/// A change to a promotion: absent fields stay as they are; `null`
/// clears an optional one (a promotion without a code applies by itself).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePromotionRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub code: Option<Option<String>>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Option<String>>,
    pub skus: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub min_subtotal: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub starts_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub ends_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub usage_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub usage_limit_per_buyer: Option<Option<i64>>,
    pub active: Option<bool>,
}

/// A promotion, with how many orders used it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionResponse {
    #[schema(example = "promo_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub name: String,
    pub code: Option<String>,
    /// `percentage` or `fixed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub currency: Option<String>,
    pub skus: Vec<String>,
    pub min_subtotal: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub usage_limit: Option<u32>,
    pub usage_limit_per_buyer: Option<u32>,
    pub active: bool,
    /// Orders that used it (those with a usage limit are counted).
    pub uses: u32,
    pub created_at: String,
    pub updated_at: String,
}

/// A page of promotions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionPage {
    pub data: Vec<PromotionResponse>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListPromotionsParams {
    /// 1 to 200 (default 50).
    pub limit: Option<String>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

impl PromotionResponse {
    fn of(p: &Promotion) -> PromotionResponse {
        let c = p.currency;
        let amount = |a: i64| match c {
            Some(c) => c.format_amount(a),
            None => a.to_string(),
        };
        let (kind, value) = match (p.discount, c) {
            (d, Some(c)) => discount_parts(d, c),
            (Discount::Percentage(r), None) => ("percentage".into(), r.to_string()),
            (Discount::Fixed(a), None) => ("fixed".into(), a.to_string()),
        };
        PromotionResponse {
            id: p.id.to_string(),
            name: p.name.clone(),
            code: p.code.as_ref().map(|c| c.to_string()),
            kind,
            value,
            currency: c.map(|c| c.code().to_string()),
            skus: p.skus.iter().map(|s| s.as_str().to_string()).collect(),
            min_subtotal: p.min_subtotal.map(amount),
            starts_at: p.starts_at.map(time),
            ends_at: p.ends_at.map(time),
            usage_limit: p.usage_limit,
            usage_limit_per_buyer: p.usage_limit_per_buyer,
            active: p.active,
            uses: p.uses,
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
        }
    }
}

impl PromotionRequest {
    /// The request a promotion would be written as (what a change starts from).
    fn of(p: &Promotion) -> PromotionRequest {
        let shown = PromotionResponse::of(p);
        PromotionRequest {
            name: shown.name,
            code: shown.code,
            kind: shown.kind,
            value: shown.value,
            currency: shown.currency,
            skus: shown.skus,
            min_subtotal: shown.min_subtotal,
            starts_at: shown.starts_at,
            ends_at: shown.ends_at,
            usage_limit: shown.usage_limit.map(i64::from),
            usage_limit_per_buyer: shown.usage_limit_per_buyer.map(i64::from),
            active: Some(shown.active),
        }
    }

    /// The promotion it describes, as `id` made at `created_at`.
    fn parse(&self, id: PromotionId, created_at: Timestamp) -> Result<Promotion, ApiError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(
                FieldError::new("name", "a promotion needs a name")
                    .value(&self.name)
                    .accepted("1 to 200 characters"),
            );
        }
        let code = self.code.as_deref().and_then(|c| {
            errors.take(Code::parse(c).map_err(|reason| {
                FieldError::new("code", reason)
                    .value(c)
                    .accepted(Code::ACCEPTED)
            }))
        });
        let currency = self
            .currency
            .as_deref()
            .and_then(|c| errors.take(Currency::parse_field("currency", c)));
        let needs_currency = |field: &str, errors: &mut FieldErrors| {
            errors.push(
                FieldError::new(field, "an amount needs the promotion's currency")
                    .accepted("a currency with it, e.g. \"currency\": \"NGN\""),
            );
        };
        let discount = match self.kind.as_str() {
            "percentage" => errors
                .take(Rate::parse_field("value", &self.value))
                .map(Discount::Percentage),
            "fixed" => match currency {
                Some(c) => errors
                    .take(c.parse_price("value", &self.value))
                    .map(Discount::Fixed),
                None if self.currency.is_none() => {
                    needs_currency("value", &mut errors);
                    None
                }
                None => None,
            },
            other => {
                errors.push(
                    FieldError::new("type", "not a kind of discount")
                        .value(other)
                        .accepted("percentage or fixed"),
                );
                None
            }
        };
        let min_subtotal = match (&self.min_subtotal, currency) {
            (None, _) => None,
            (Some(m), Some(c)) => errors.take(c.parse_price("min_subtotal", m)),
            (Some(_), None) => {
                if self.currency.is_none() {
                    needs_currency("min_subtotal", &mut errors);
                }
                None
            }
        };
        if self.skus.len() > MAX_PROMOTION_SKUS {
            errors.push(
                FieldError::new("skus", "too many products")
                    .accepted(format!("at most {MAX_PROMOTION_SKUS}")),
            );
        }
        let skus: Vec<Sku> = self
            .skus
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                errors.take(ordo_domain::product::parse_sku(&format!("skus[{i}]"), s))
            })
            .collect();
        let when = |field: &str, text: &Option<String>, errors: &mut FieldErrors| {
            text.as_deref().and_then(|t| {
                errors.take(Timestamp::parse_rfc3339(t).ok_or_else(|| {
                    FieldError::new(field, "not a time")
                        .value(t)
                        .accepted("an RFC 3339 time such as 2026-11-27T00:00:00Z")
                }))
            })
        };
        let starts_at = when("starts_at", &self.starts_at, &mut errors);
        let ends_at = when("ends_at", &self.ends_at, &mut errors);
        if let (Some(s), Some(e)) = (starts_at, ends_at) {
            if e <= s {
                errors.push(
                    FieldError::new("ends_at", "ends before it starts")
                        .value(self.ends_at.clone().unwrap_or_default())
                        .accepted("a time after starts_at"),
                );
            }
        }
        let limit = |field: &str, n: Option<i64>, errors: &mut FieldErrors| {
            n.and_then(|n| {
                errors.take(u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                    FieldError::new(field, "not a number of orders")
                        .value(n)
                        .accepted("a whole number of at least 1")
                }))
            })
        };
        let usage_limit = limit("usage_limit", self.usage_limit, &mut errors);
        let per_buyer = limit(
            "usage_limit_per_buyer",
            self.usage_limit_per_buyer,
            &mut errors,
        );
        match discount {
            Some(discount) if errors.is_empty() => Ok(Promotion {
                id,
                name: name.to_string(),
                code,
                discount,
                skus,
                currency,
                min_subtotal,
                starts_at,
                ends_at,
                usage_limit,
                usage_limit_per_buyer: per_buyer,
                active: self.active.unwrap_or(true),
                uses: 0,
                created_at,
                updated_at: Timestamp::now(),
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

fn promotion_id(text: &str) -> Result<PromotionId, ApiError> {
    PromotionId::parse(text).ok_or(ApiError::NotFound("promotion"))
}

/// A taken code, said as such.
fn code_taken(e: ordo_store::StoreError) -> ApiError {
    match e {
        ordo_store::StoreError::Conflict { value, .. } => ApiError::Conflict {
            detail: format!("another promotion has the code {value}"),
            errors: vec![FieldError::new("code", "already used by another promotion").value(value)],
            existing_order_id: None,
        },
        e => e.into(),
    }
}

/// Create a promotion.
#[utoipa::path(
    post, path = "/v1/promotions", tag = "promotions",
    request_body = PromotionRequest,
    responses(
        (status = 201, description = "Created", body = PromotionResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not change prices", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another promotion has the code", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_promotion(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<PromotionRequest>,
) -> Result<(StatusCode, axum::Json<PromotionResponse>), ApiError> {
    principal.require(Permission::ManageCatalog, "manage promotions")?;
    let now = Timestamp::now();
    let promotion = body.value.parse(PromotionId::new_at(now), now)?;
    state
        .store()
        .insert_promotion(principal.tenant_id, promotion.clone())
        .await
        .map_err(code_taken)?;
    state.has_promotions().put(principal.tenant_id, true);
    Ok((
        StatusCode::CREATED,
        axum::Json(PromotionResponse::of(&promotion)),
    ))
}

/// The shop's promotions, oldest first.
#[utoipa::path(
    get, path = "/v1/promotions", tag = "promotions",
    params(ListPromotionsParams),
    responses(
        (status = 200, description = "A page of promotions", body = PromotionPage),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_promotions(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams<ListPromotionsParams>,
) -> Result<axum::Json<PromotionPage>, ApiError> {
    let limit = page_size(params.limit.as_deref()).map_err(|e| ApiError::Validation(e.into()))?;
    let after = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(PromotionId::parse(c).ok_or_else(|| {
            ApiError::Validation(
                FieldError::new("cursor", "not a cursor")
                    .value(c)
                    .accepted("the next_cursor of the page before")
                    .into(),
            )
        })?),
    };
    let mut found = state
        .store()
        .promotions(principal.tenant_id, after, limit + 1)
        .await?;
    let has_more = found.len() > limit as usize;
    found.truncate(limit as usize);
    Ok(axum::Json(PromotionPage {
        next_cursor: has_more
            .then(|| found.last().map(|p| p.id.to_string()))
            .flatten(),
        has_more,
        data: found.iter().map(PromotionResponse::of).collect(),
    }))
}

/// One promotion.
#[utoipa::path(
    get, path = "/v1/promotions/{id}", tag = "promotions",
    params(("id" = String, Path, description = "Promotion id (promo_…)")),
    responses(
        (status = 200, description = "The promotion", body = PromotionResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such promotion", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_promotion(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<PromotionResponse>, ApiError> {
    let found = state
        .store()
        .promotion(principal.tenant_id, promotion_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("promotion"))?;
    Ok(axum::Json(PromotionResponse::of(&found)))
}

/// Change a promotion. Orders that already applied it keep it as they
/// applied it.
#[utoipa::path(
    patch, path = "/v1/promotions/{id}", tag = "promotions",
    params(("id" = String, Path, description = "Promotion id (promo_…)")),
    request_body = UpdatePromotionRequest,
    responses(
        (status = 200, description = "The promotion as changed", body = PromotionResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not change prices", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such promotion", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another promotion has the code", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn update_promotion(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    body: JsonBody<UpdatePromotionRequest>,
) -> Result<axum::Json<PromotionResponse>, ApiError> {
    principal.require(Permission::ManageCatalog, "manage promotions")?;
    let current = state
        .store()
        .promotion(principal.tenant_id, promotion_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("promotion"))?;
    let change = body.value;
    let mut req = PromotionRequest::of(&current);
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = change.$field { req.$field = v; })* };
    }
    set!(
        code,
        currency,
        min_subtotal,
        starts_at,
        ends_at,
        usage_limit,
        usage_limit_per_buyer
    );
    if let Some(name) = change.name {
        req.name = name;
    }
    if let Some(kind) = change.kind {
        req.kind = kind;
    }
    if let Some(value) = change.value {
        req.value = value;
    }
    if let Some(skus) = change.skus {
        req.skus = skus;
    }
    if change.active.is_some() {
        req.active = change.active;
    }
    let mut promotion = req.parse(current.id, current.created_at)?;
    promotion.uses = current.uses;
    state
        .store()
        .update_promotion(principal.tenant_id, promotion.clone())
        .await
        .map_err(code_taken)?;
    state.has_promotions().put(principal.tenant_id, true);
    Ok(axum::Json(PromotionResponse::of(&promotion)))
}

/// Delete a promotion: it no longer applies to new orders; those that
/// applied it keep it.
#[utoipa::path(
    delete, path = "/v1/promotions/{id}", tag = "promotions",
    params(("id" = String, Path, description = "Promotion id (promo_…)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not change prices", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such promotion", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn delete_promotion(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageCatalog, "manage promotions")?;
    if state
        .store()
        .delete_promotion(principal.tenant_id, promotion_id(&id)?)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("promotion"))
    }
}
