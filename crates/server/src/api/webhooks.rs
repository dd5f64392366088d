//! Webhook endpoints: where the tenant's events are sent. Managing them
//! takes an owner, admin or integration key; the signing secret is shown
//! when an endpoint is made and when its secret is rotated, never again.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordo_domain::field::{FieldError, FieldErrors};
use ordo_domain::webhook::MAX_DESCRIPTION_CHARS;
use ordo_domain::{
    EventType, Permission, Timestamp, WebhookDeliveryId, WebhookEndpoint, WebhookEndpointId,
    WebhookSecret, WebhookUrl,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{JsonBody, OptionalJsonBody, PathParams};
use super::orders::present;
use crate::app::AppState;

/// The most a rotated secret may keep signing beside the new one.
const MAX_OVERLAP_HOURS: u32 = 7 * 24;

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// `https://…` (or `http://…`). Not this machine or a private network,
    /// unless `webhooks.allow_private_urls` is set.
    #[schema(example = "https://example.com/hooks/ordo")]
    pub url: String,
    /// Event types to send, e.g. `["order.created", "order.cancelled"]`;
    /// absent, empty or `["*"]`: every type.
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// A change to a webhook endpoint; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `true` also clears a disabling by ordo.
    pub active: Option<bool>,
}

/// How to rotate a secret.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// Hours the current secret keeps signing beside the new one (both
    /// signatures are sent), 0 to 168; default 24.
    pub overlap_hours: Option<u32>,
}

/// When ordo turned an endpoint off itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisabledResponse {
    pub at: String,
    pub reason: String,
}

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    #[schema(example = "whe_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// `["*"]`: every type.
    pub event_types: Vec<String>,
    pub active: bool,
    /// The signing secret: only in the response that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// After a rotation, the previous secret also signs until this time.
    pub previous_secret_expires_at: Option<String>,
    pub disabled: Option<DisabledResponse>,
    pub created_at: String,
    pub updated_at: String,
}

/// The tenant's endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointResponse>,
}

impl EndpointResponse {
    fn of(e: &WebhookEndpoint, secret: Option<&WebhookSecret>) -> Self {
        EndpointResponse {
            id: e.id.to_string(),
            url: e.url.as_str().to_string(),
            description: e.description.clone(),
            event_types: if e.event_types.is_empty() {
                vec!["*".into()]
            } else {
                e.event_types
                    .iter()
                    .map(|t| t.as_str().to_string())
                    .collect()
            },
            active: e.active,
            secret: secret.map(|s| s.expose().to_string()),
            previous_secret_expires_at: e.previous_secret.as_ref().map(|(_, t)| t.to_rfc3339()),
            disabled: e.disabled.as_ref().map(|(at, reason)| DisabledResponse {
                at: at.to_rfc3339(),
                reason: reason.clone(),
            }),
            created_at: e.created_at.to_rfc3339(),
            updated_at: e.updated_at.to_rfc3339(),
        }
    }
}

fn parse_url(state: &AppState, text: &str, errors: &mut FieldErrors) -> Option<WebhookUrl> {
    let allow_private = state.config().webhooks.allow_private_urls;
    match WebhookUrl::parse(text, allow_private) {
        Ok(url) => Some(url),
        Err(reason) => {
            errors.push(
                FieldError::new("url", reason)
                    .value(text)
                    .accepted(if allow_private {
                        "an http or https URL"
                    } else {
                        "an http or https URL of a public host"
                    }),
            );
            None
        }
    }
}

fn parse_types(types: &[String], errors: &mut FieldErrors) -> Vec<EventType> {
    if types.iter().any(|t| t == "*") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, t) in types.iter().enumerate() {
        match EventType::parse(t) {
            Some(kind) if !out.contains(&kind) => out.push(kind),
            Some(_) => {}
            None => errors.push(
                FieldError::new(format!("event_types[{i}]"), "unknown event type")
                    .value(t)
                    .accepted(format!("*, {}", EventType::accepted())),
            ),
        }
    }
    out
}

fn parse_description(text: Option<String>, errors: &mut FieldErrors) -> Option<String> {
    let text = text
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())?;
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.push(
            FieldError::new("description", "too long")
                .accepted(format!("at most {MAX_DESCRIPTION_CHARS} characters")),
        );
        return None;
    }
    Some(text)
}

fn endpoint_id(text: &str) -> Result<WebhookEndpointId, ApiError> {
    WebhookEndpointId::parse(text).ok_or(ApiError::NotFound("webhook endpoint"))
}

async fn find(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<WebhookEndpoint, ApiError> {
    state
        .store()
        .webhook_endpoint(principal.tenant_id, endpoint_id(id)?)
        .await?
        .ok_or(ApiError::NotFound("webhook endpoint"))
}

fn json(status: StatusCode, body: EndpointResponse) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Adds an endpoint; the response carries its signing secret, shown only this once.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints", tag = "webhooks",
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Created, with its secret", body = EndpointResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<CreateEndpointRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let req = body.value;
    let mut errors = FieldErrors::new();
    let url = parse_url(&state, &req.url, &mut errors);
    let event_types = parse_types(req.event_types.as_deref().unwrap_or_default(), &mut errors);
    let description = parse_description(req.description, &mut errors);
    let Some(url) = url.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let now = Timestamp::now();
    let endpoint = WebhookEndpoint {
        tenant_id: principal.tenant_id,
        id: WebhookEndpointId::new(),
        url,
        description,
        event_types,
        active: req.active.unwrap_or(true),
        secret: WebhookSecret::generate(),
        previous_secret: None,
        created_at: now,
        updated_at: now,
        disabled: None,
    };
    state
        .store()
        .save_webhook_endpoint(endpoint.clone(), true)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        EndpointResponse::of(&endpoint, Some(&endpoint.secret)),
    ))
}

/// The tenant's endpoints (never their secrets).
#[utoipa::path(
    get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = EndpointList),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<EndpointList>, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let endpoints = state.store().webhook_endpoints(principal.tenant_id).await?;
    Ok(axum::Json(EndpointList {
        data: endpoints
            .iter()
            .map(|e| EndpointResponse::of(e, None))
            .collect(),
    }))
}

/// One endpoint (never its secret).
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (whe_…)")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let endpoint = find(&state, &principal, &id).await?;
    Ok(json(StatusCode::OK, EndpointResponse::of(&endpoint, None)))
}

/// Changes an endpoint.
#[utoipa::path(
    patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (whe_…)")),
    request_body = UpdateEndpointRequest,
    responses(
        (status = 200, description = "The endpoint as changed", body = EndpointResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn update_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    body: JsonBody<UpdateEndpointRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let mut endpoint = find(&state, &principal, &id).await?;
    let req = body.value;
    let mut errors = FieldErrors::new();
    if let Some(url) = req.url.as_deref() {
        if let Some(url) = parse_url(&state, url, &mut errors) {
            endpoint.url = url;
        }
    }
    if let Some(types) = &req.event_types {
        endpoint.event_types = parse_types(types, &mut errors);
    }
    if let Some(description) = req.description {
        endpoint.description = parse_description(description, &mut errors);
    }
    if let Some(active) = req.active {
        endpoint.active = active;
        if active {
            endpoint.disabled = None;
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    endpoint.updated_at = Timestamp::now();
    state
        .store()
        .save_webhook_endpoint(endpoint.clone(), false)
        .await?;
    Ok(json(StatusCode::OK, EndpointResponse::of(&endpoint, None)))
}

/// Removes an endpoint: nothing more is sent to it.
#[utoipa::path(
    delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (whe_…)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    if state
        .store()
        .delete_webhook_endpoint(principal.tenant_id, endpoint_id(&id)?)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("webhook endpoint"))
    }
}

/// Makes a new signing secret (shown only this once); the current one
/// keeps signing beside it for `overlap_hours`, so receivers can switch.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (whe_…)")),
    request_body(content = RotateSecretRequest, description = "Optional"),
    responses(
        (status = 200, description = "The endpoint, with its new secret", body = EndpointResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "overlap_hours is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(req): OptionalJsonBody<Option<RotateSecretRequest>>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let hours = req.and_then(|r| r.overlap_hours).unwrap_or(24);
    if hours > MAX_OVERLAP_HOURS {
        let mut errors = FieldErrors::new();
        errors.push(
            FieldError::new("overlap_hours", "too long")
                .value(hours.to_string())
                .accepted(format!("0 to {MAX_OVERLAP_HOURS}")),
        );
        return Err(ApiError::Validation(errors));
    }
    let mut endpoint = find(&state, &principal, &id).await?;
    let secret = endpoint
        .rotate_secret(Timestamp::now(), i64::from(hours) * 3_600_000)
        .clone();
    state
        .store()
        .save_webhook_endpoint(endpoint.clone(), false)
        .await?;
    Ok(json(
        StatusCode::OK,
        EndpointResponse::of(&endpoint, Some(&secret)),
    ))
}

// ------------------------------------------------------------ deliveries

/// Which deliveries to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only to this endpoint (`whe_…`).
    pub endpoint_id: Option<String>,
    /// pending, succeeded, failed or dead.
    pub status: Option<String>,
    /// An event type, e.g. `order.created`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only of this order (`ord_…`).
    pub order_id: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<String>,
}

/// One attempt at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    pub number: u32,
    pub at: String,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// One event on its way to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    #[schema(example = "whd_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub order_id: String,
    /// The event's sequence on its order.
    pub sequence: u64,
    /// pending, succeeded, failed (will be retried) or dead (given up; retry by hand).
    pub status: String,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Every attempt, when one delivery is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptResponse>>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<DeliveryResponse>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

impl DeliveryResponse {
    fn of(d: &ordo_store::WebhookDelivery) -> Self {
        DeliveryResponse {
            id: d.id.to_string(),
            endpoint_id: d.endpoint_id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.as_str().to_string(),
            order_id: d.order_id.to_string(),
            sequence: d.event_sequence,
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            created_at: d.created_at.to_rfc3339(),
            updated_at: d.updated_at.to_rfc3339(),
            attempt_log: None,
        }
    }
}

fn parse_id<T>(
    field: &str,
    text: Option<&str>,
    parse: fn(&str) -> Option<T>,
    accepted: &str,
    errors: &mut FieldErrors,
) -> Option<T> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    let parsed = parse(text);
    if parsed.is_none() {
        errors.push(
            FieldError::new(field, "not valid")
                .value(text)
                .accepted(accepted),
        );
    }
    parsed
}

/// Deliveries, oldest first, filtered.
#[utoipa::path(
    get, path = "/v1/webhook-deliveries", tag = "webhooks",
    params(DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    super::extract::QueryParams(params): super::extract::QueryParams<DeliveryParams>,
) -> Result<axum::Json<DeliveryPage>, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let mut errors = FieldErrors::new();
    let endpoint_id = parse_id(
        "endpoint_id",
        params.endpoint_id.as_deref(),
        WebhookEndpointId::parse,
        "an endpoint id (whe_…)",
        &mut errors,
    );
    let status = parse_id(
        "status",
        params.status.as_deref(),
        ordo_store::DeliveryStatus::parse,
        &ordo_store::DeliveryStatus::accepted(),
        &mut errors,
    );
    let event_type = parse_id(
        "type",
        params.event_type.as_deref(),
        EventType::parse,
        "an event type, e.g. order.created",
        &mut errors,
    );
    let order_id = parse_id(
        "order_id",
        params.order_id.as_deref(),
        ordo_domain::OrderId::parse,
        "an order id (ord_…)",
        &mut errors,
    );
    let after = parse_id(
        "after",
        params.after.as_deref(),
        WebhookDeliveryId::parse,
        "the next_cursor of a page",
        &mut errors,
    );
    let limit = match params.limit.as_deref().map(str::trim) {
        None | Some("") => 50,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => {
                errors.push(
                    FieldError::new("limit", "not a page size")
                        .value(t)
                        .accepted("a whole number from 1 to 200"),
                );
                50
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let query = ordo_store::DeliveryQuery {
        endpoint_id,
        status,
        event_type,
        order_id,
        after,
        limit: Some(limit + 1),
    };
    let mut found = state
        .store()
        .webhook_deliveries(principal.tenant_id, &query)
        .await?;
    let has_more = found.len() > limit as usize;
    found.truncate(limit as usize);
    Ok(axum::Json(DeliveryPage {
        next_cursor: found.last().map(|d| d.id.to_string()),
        data: found.iter().map(DeliveryResponse::of).collect(),
        has_more,
    }))
}

fn delivery_id(text: &str) -> Result<WebhookDeliveryId, ApiError> {
    WebhookDeliveryId::parse(text).ok_or(ApiError::NotFound("delivery"))
}

async fn find_delivery(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<DeliveryResponse, ApiError> {
    let delivery = state
        .store()
        .webhook_delivery(principal.tenant_id, delivery_id(id)?)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    with_attempts(state, principal, &delivery).await
}

/// A delivery as the API shows one, with its attempts.
async fn with_attempts(
    state: &AppState,
    principal: &Principal,
    delivery: &ordo_store::WebhookDelivery,
) -> Result<DeliveryResponse, ApiError> {
    let attempts = state
        .store()
        .delivery_attempts(principal.tenant_id, delivery.id)
        .await?;
    let mut body = DeliveryResponse::of(delivery);
    body.attempt_log = Some(
        attempts
            .into_iter()
            .map(|(number, a)| AttemptResponse {
                number,
                at: a.at.to_rfc3339(),
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
                response_excerpt: a.response_excerpt,
            })
            .collect(),
    );
    Ok(body)
}

/// One delivery, with every attempt.
#[utoipa::path(
    get, path = "/v1/webhook-deliveries/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Delivery id (whd_…)")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<DeliveryResponse>, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    Ok(axum::Json(find_delivery(&state, &principal, &id).await?))
}

/// Sends a delivery again as soon as a worker can, whatever its status
/// (a dead one gets a fresh three days).
#[utoipa::path(
    post, path = "/v1/webhook-deliveries/{id}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "Delivery id (whd_…)")),
    responses(
        (status = 202, description = "Queued again", body = DeliveryResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn retry_delivery(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let delivery = state
        .store()
        .retry_delivery(principal.tenant_id, delivery_id(&id)?, Timestamp::now())
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    let body = with_attempts(&state, &principal, &delivery).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// Which deliveries of an endpoint to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetryRequest {
    /// The endpoint (`whe_…`).
    pub endpoint_id: String,
    /// Default `["failed", "dead"]`.
    pub statuses: Option<Vec<String>>,
    /// Only deliveries made at or after this RFC 3339 time.
    pub created_gte: Option<String>,
    /// Only deliveries made before this RFC 3339 time.
    pub created_lt: Option<String>,
}

/// How many deliveries were queued again.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRetryResponse {
    pub retried: u64,
}

/// Sends an endpoint's failed and dead deliveries (of a time range) again.
#[utoipa::path(
    post, path = "/v1/webhook-deliveries/retry", tag = "webhooks",
    request_body = BulkRetryRequest,
    responses(
        (status = 202, description = "Queued again", body = BulkRetryResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key's role may not manage webhooks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn retry_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<BulkRetryRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageWebhooks, "manage webhooks")?;
    let req = body.value;
    let mut errors = FieldErrors::new();
    let endpoint = parse_id(
        "endpoint_id",
        Some(&req.endpoint_id),
        WebhookEndpointId::parse,
        "an endpoint id (whe_…)",
        &mut errors,
    );
    let statuses = match &req.statuses {
        None => vec![
            ordo_store::DeliveryStatus::Failed,
            ordo_store::DeliveryStatus::Dead,
        ],
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                parse_id(
                    &format!("statuses[{i}]"),
                    Some(s),
                    ordo_store::DeliveryStatus::parse,
                    &ordo_store::DeliveryStatus::accepted(),
                    &mut errors,
                )
            })
            .collect(),
    };
    let from = parse_id(
        "created_gte",
        req.created_gte.as_deref(),
        Timestamp::parse_rfc3339,
        "an RFC 3339 time",
        &mut errors,
    );
    let to = parse_id(
        "created_lt",
        req.created_lt.as_deref(),
        Timestamp::parse_rfc3339,
        "an RFC 3339 time",
        &mut errors,
    );
    let Some(endpoint) = endpoint.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    state
        .store()
        .webhook_endpoint(principal.tenant_id, endpoint)
        .await?
        .ok_or(ApiError::NotFound("webhook endpoint"))?;
    let retried = state
        .store()
        .retry_deliveries(
            principal.tenant_id,
            endpoint,
            statuses,
            from,
            to,
            Timestamp::now(),
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(BulkRetryResponse { retried }),
    )
        .into_response())
}
