//! `/v1/settings`: how the tenant's orders treat stock, and what its shop
//! says. Every role reads them; owners and admins change them.

use axum::extract::State;
use ordo_domain::settings::{parse_reservation_minutes, parse_whatsapp_number};
use ordo_domain::{
    FieldErrors, Permission, ProviderSettings, ReservationPolicy, TenantId, TenantSettings,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::JsonBody;
use super::orders::present;
use crate::app::AppState;

/// The tenant's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsResponse {
    /// When orders reserve the stock of their catalog lines: `on_confirm`
    /// (confirming reserves, or fails naming what is short), `on_create`
    /// (creating reserves for `reservation_minutes`; an order still
    /// unconfirmed then is cancelled with reason `reservation_expired`) or
    /// `none` (orders never touch stock).
    #[schema(value_type = String, example = "on_confirm")]
    pub reservation_policy: ReservationPolicy,
    /// Under `on_create`: how long an unconfirmed order holds its stock.
    pub reservation_minutes: u32,
    /// Whether order lines may be items not in the catalog (a name and a price).
    pub free_text_lines: bool,
    /// The shop's WhatsApp number (E.164), where storefront buyers send their order.
    pub whatsapp_number: Option<String>,
    /// Whether the public storefront (`/v1/storefront/{slug}/…`: the
    /// products on sale and guest checkout) is open. Closed (the default),
    /// it answers 404 as if the shop did not exist.
    pub storefront_enabled: bool,
    /// Where card payments are charged and refunded (`POST
    /// /v1/orders/{id}/charges`, refunds of cancelled orders); `null` when
    /// none is set.
    pub payment_provider: Option<ProviderResponse>,
    /// Whether a confirmed order completes by itself (`order.completed`
    /// with `automatic: true`) once it is paid in full and every unit has
    /// been delivered. Off by default.
    pub auto_complete: bool,
}

/// The tenant's payment provider, its secret never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderResponse {
    #[schema(example = "https://payments.example.com")]
    pub base_url: String,
    /// The secret's last four characters.
    #[schema(example = "…9f2c")]
    pub secret_hint: String,
    /// Where the provider sends its signed webhooks.
    #[schema(example = "/v1/payment-provider/ten_01JD8X1Q2W3E4R5T6Y7U8I9O0P/webhook")]
    pub webhook_path: String,
}

/// A payment provider: seed 001's contract (`POST /api/v1/payments`, `GET
/// /api/v1/payments/order/{order_id}`, `POST /api/v1/payments/refund`) under
/// `base_url`, called with `Authorization: Bearer <secret>`; its webhooks
/// are signed with the same secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    #[schema(example = "https://payments.example.com")]
    pub base_url: String,
    /// 16 to 200 printable characters; may be left out to keep the one set.
    #[schema(example = "psk_live_51HxY2c9f2c4e8a1b")]
    pub secret: Option<String>,
}

/// A change to the settings; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettingsRequest {
    #[schema(value_type = Option<String>, example = "on_create")]
    pub reservation_policy: Option<ReservationPolicy>,
    /// 1 to 43200 (30 days).
    pub reservation_minutes: Option<i64>,
    pub free_text_lines: Option<bool>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "+2348012345678")]
    pub whatsapp_number: Option<Option<String>>,
    pub storefront_enabled: Option<bool>,
    /// `null` removes the provider.
    #[serde(default, deserialize_with = "present")]
    pub payment_provider: Option<Option<ProviderRequest>>,
    pub auto_complete: Option<bool>,
}

impl SettingsResponse {
    fn of(s: &TenantSettings, tenant: TenantId) -> Self {
        SettingsResponse {
            reservation_policy: s.reservation_policy,
            reservation_minutes: s.reservation_minutes,
            free_text_lines: s.free_text_lines,
            whatsapp_number: s.whatsapp_number.as_ref().map(|p| p.as_str().to_string()),
            storefront_enabled: s.storefront_enabled,
            payment_provider: s.payment_provider.as_ref().map(|p| ProviderResponse {
                base_url: p.base_url.as_str().to_string(),
                secret_hint: p.secret_hint(),
                webhook_path: format!("/v1/payment-provider/{tenant}/webhook"),
            }),
            auto_complete: s.auto_complete,
        }
    }
}

/// The tenant's settings.
#[utoipa::path(
    get, path = "/v1/settings", tag = "settings",
    responses(
        (status = 200, description = "The settings", body = SettingsResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<SettingsResponse>, ApiError> {
    let settings = state.store().tenant_settings(principal.tenant_id).await?;
    Ok(axum::Json(SettingsResponse::of(
        &settings,
        principal.tenant_id,
    )))
}

/// Change the tenant's settings. A new reservation policy applies to what
/// orders do next: an order keeps what it already holds until it is
/// cancelled, completed or edited.
#[utoipa::path(
    patch, path = "/v1/settings", tag = "settings",
    request_body = UpdateSettingsRequest,
    responses(
        (status = 200, description = "The settings as changed", body = SettingsResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only owners and admins change settings", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn update_settings(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<UpdateSettingsRequest>,
) -> Result<axum::Json<SettingsResponse>, ApiError> {
    principal.require(Permission::ManageSettings, "change settings")?;
    let req = body.value;
    let mut settings = state.store().tenant_settings(principal.tenant_id).await?;
    let mut errors = FieldErrors::new();
    if let Some(policy) = req.reservation_policy {
        settings.reservation_policy = policy;
    }
    if let Some(m) = req.reservation_minutes {
        if let Some(m) = errors.take(parse_reservation_minutes(m)) {
            settings.reservation_minutes = m;
        }
    }
    if let Some(free) = req.free_text_lines {
        settings.free_text_lines = free;
    }
    if let Some(open) = req.storefront_enabled {
        settings.storefront_enabled = open;
    }
    if let Some(auto) = req.auto_complete {
        settings.auto_complete = auto;
    }
    match req.whatsapp_number {
        None => {}
        Some(None) => settings.whatsapp_number = None,
        Some(Some(text)) => {
            settings.whatsapp_number = errors.take_all(parse_whatsapp_number(&text));
        }
    }
    match req.payment_provider {
        None => {}
        Some(None) => settings.payment_provider = None,
        Some(Some(p)) => {
            let allow_private = state.config().webhooks.allow_private_urls;
            let current = settings.payment_provider.as_ref();
            let parsed = ProviderSettings::parse(&p.base_url, p.secret, current, allow_private);
            if let Some(provider) = errors.take_all(parsed) {
                settings.payment_provider = Some(provider);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    state
        .store()
        .save_tenant_settings(principal.tenant_id, settings.clone())
        .await?;
    state.settings().put(principal.tenant_id, settings.clone());
    Ok(axum::Json(SettingsResponse::of(
        &settings,
        principal.tenant_id,
    )))
}
