//! `POST /v1/payment-provider/{tenant_id}/webhook`: what a shop's payment
//! provider says about the payments and refunds ordo asked of it.
//!
//! No API key: the provider signs the raw body with the secret it shares
//! with the shop (`Payment-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256 of "<t>.<body>">`, within 5 minutes of now); anything else
//! is a 401 and nothing is read further. A webhook is handled once per
//! provider event id (a repeat is answered `duplicate`), and a report can
//! never move an entry back: a late `pending` after `succeeded`, or a
//! contradicting end, is answered 200 `stale` and changes nothing, so the
//! provider stops sending it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use ordo_domain::{
    Actor, EntryState, FieldError, FieldErrors, LedgerError, LedgerRefusal, OrderId, Refusal,
    Settlement, TenantId, Timestamp,
};
use ordo_store::{OrderChange, OrderLookup, Scope, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::extract::PathParams;
use crate::app::AppState;
use crate::charging::entry_of;

/// The header the provider signs its webhooks in.
pub const SIGNATURE_HEADER: &str = "payment-signature";

/// A provider's webhook.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProviderWebhook {
    /// The provider's id of this event: a repeat is handled once.
    #[schema(example = "evt_81KQ")]
    pub id: String,
    /// What happened, for people reading logs (`payment.succeeded`, …);
    /// `data.status` is what counts.
    #[serde(default, rename = "type")]
    #[schema(example = "payment.succeeded")]
    pub event_type: Option<String>,
    pub data: ProviderWebhookData,
}

/// The payment or refund a provider's webhook is about.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProviderWebhookData {
    /// The provider's id of the payment or refund.
    #[schema(example = "pp_8JX2Q")]
    pub id: String,
    #[schema(example = "ord_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub order_id: String,
    /// ordo's id of it, as sent in the charge or refund call (`pay_…`, `ref_…`).
    #[schema(example = "pay_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub reference: String,
    /// `pending`, `succeeded` or `failed`.
    #[schema(example = "succeeded")]
    pub status: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// What ordo made of a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderWebhookAnswer {
    /// `applied` (the order changed), `unchanged` (it already said so),
    /// `stale` (it would move an entry back; ignored) or `duplicate` (this
    /// event id was handled before).
    #[schema(example = "applied")]
    pub outcome: &'static str,
}

fn field(name: &str, value: &str, accepted: &str) -> FieldError {
    FieldError::new(name, "not understood")
        .value(value)
        .accepted(accepted.to_string())
}

/// A payment provider's signed webhook.
#[utoipa::path(
    post, path = "/v1/payment-provider/{tenant_id}/webhook", tag = "payments",
    request_body = ProviderWebhook,
    params(
        ("tenant_id" = String, Path, description = "The shop's tenant id, as its settings show in `payment_provider.webhook_path`"),
        ("Payment-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" under the provider secret>"),
    ),
    responses(
        (status = 200, description = "Handled (or a repeat, or stale)", body = ProviderWebhookAnswer),
        (status = 401, description = "Not signed, or not with the shop's provider secret; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shop with a provider, or no such order or entry", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The entry was not made through the payment provider (a refund the shop pays back by hand)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not understood", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn provider_webhook(
    State(state): State<AppState>,
    PathParams(tenant): PathParams<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<ProviderWebhookAnswer>, ApiError> {
    let tenant: TenantId = tenant
        .parse()
        .map_err(|_| ApiError::NotFound("payment provider"))?;
    let settings = match state.settings().get(state.store(), tenant).await {
        Ok(s) => s,
        Err(ApiError::NotFound(_)) => return Err(ApiError::NotFound("payment provider")),
        Err(e) => return Err(e),
    };
    let provider = settings
        .payment_provider
        .ok_or(ApiError::NotFound("payment provider"))?;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    crate::webhooks::verify(signature, &provider.secret, &body, Timestamp::now()).map_err(|bad| {
        tracing::warn!(%tenant, reason = bad.describe(), "a payment provider webhook was refused");
        ApiError::Unauthenticated(bad.describe())
    })?;
    let hook: ProviderWebhook =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if state
        .store()
        .provider_event(tenant, &hook.id)
        .await?
        .is_some()
    {
        return Ok(axum::Json(ProviderWebhookAnswer {
            outcome: "duplicate",
        }));
    }
    let d = hook.data;
    let mut errors = FieldErrors::new();
    let order = errors.take(d.order_id.parse::<OrderId>().map_err(|_| {
        field(
            "data.order_id",
            &d.order_id,
            "the order id sent in the call (ord_…)",
        )
    }));
    let entry = errors.take(entry_of(&d.reference).ok_or_else(|| {
        field(
            "data.reference",
            &d.reference,
            "the reference sent in the call (pay_… or ref_…)",
        )
    }));
    let status = errors.take(
        EntryState::parse(&d.status)
            .ok_or_else(|| field("data.status", &d.status, "pending, succeeded, failed")),
    );
    let (Some(order), Some(entry), Some(status)) = (order, entry, status) else {
        return Err(ApiError::Validation(errors));
    };
    let report = Settlement {
        state: status,
        provider_id: Some(d.id),
        error: d.error,
    };
    let settings = state.settings().get(state.store(), tenant).await?;
    let change = OrderChange::new(move |o, _book| o.settle(entry, report, true, Timestamp::now()))
        .completing(settings.auto_complete)
        .notifying(settings.messaging.reaches_buyers());
    let changed = state
        .store()
        .change_order(
            Scope::tenant(tenant),
            OrderLookup::Id(order),
            None,
            Actor::payment_provider(),
            change,
        )
        .await;
    let outcome = match changed {
        Ok(c) if c.event.is_some() => "applied",
        Ok(_) => "unchanged",
        Err(StoreError::Refused(Refusal::Ledger(LedgerRefusal {
            error: e @ LedgerError::Ended { .. },
            ..
        }))) => {
            tracing::warn!(%tenant, %order, event = %hook.id, error = %e, "a payment provider webhook would move an entry back; ignored");
            "stale"
        }
        Err(StoreError::NotFound) => return Err(ApiError::NotFound("order")),
        Err(e) => return Err(e.into()),
    };
    state
        .store()
        .record_provider_event(tenant, &hook.id, order, outcome)
        .await?;
    tracing::info!(%tenant, %order, event = %hook.id, kind = hook.event_type.as_deref().unwrap_or(""), outcome, "payment provider webhook");
    Ok(axum::Json(ProviderWebhookAnswer { outcome }))
}
