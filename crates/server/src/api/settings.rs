//! `/v1/settings`: how the tenant's orders treat stock, and what its shop
//! says. Every role reads them; owners and admins change them.

use axum::extract::State;
use ordo_domain::settings::{parse_reservation_minutes, parse_whatsapp_number};
use ordo_domain::{FieldErrors, Permission, ReservationPolicy, TenantSettings};
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
}

impl SettingsResponse {
    fn of(s: &TenantSettings) -> Self {
        SettingsResponse {
            reservation_policy: s.reservation_policy,
            reservation_minutes: s.reservation_minutes,
            free_text_lines: s.free_text_lines,
            whatsapp_number: s.whatsapp_number.as_ref().map(|p| p.as_str().to_string()),
            storefront_enabled: s.storefront_enabled,
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
    Ok(axum::Json(SettingsResponse::of(&settings)))
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
    match req.whatsapp_number {
        None => {}
        Some(None) => settings.whatsapp_number = None,
        Some(Some(text)) => {
            settings.whatsapp_number = errors.take_all(parse_whatsapp_number(&text));
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
    Ok(axum::Json(SettingsResponse::of(&settings)))
}
