//! `/v1/channels/{whatsapp|instagram}/{tenant_id}/webhook`: Meta's side of
//! a shop's chat channels. `GET` answers Meta's subscription challenge
//! (`hub.mode=subscribe`, the channel's `hub.verify_token`, echoing
//! `hub.challenge`); `POST` takes its signed deliveries: buyers' messages,
//! queued for the chatbot once each (by the channel's message id), and the
//! fate of the messages ordo sent, queued for their orders' timelines.
//!
//! No API key: Meta signs the raw body with the app secret
//! (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`); anything else is a
//! 401 and nothing is read further. Deliveries are answered at once; the
//! work is done by background jobs.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use ordo_domain::inbound::{self, Delivery};
use ordo_domain::messaging::MetaChannel;
use ordo_domain::{TenantId, Timestamp};
use ordo_store::NewJob;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::extract::PathParams;
use crate::app::AppState;

/// The header Meta signs its webhooks in.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Records a channel's report on a message ordo sent.
pub const STATUS_JOB: &str = "message-status";

/// Meta's subscription challenge.
#[derive(Debug, Deserialize)]
pub struct Challenge {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// What ordo made of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelWebhookAnswer {
    /// Buyers' messages queued for the chatbot.
    pub messages: usize,
    /// Messages delivered before (answered, not queued again).
    pub duplicates: usize,
    /// Reports on messages ordo sent.
    pub statuses: usize,
}

/// The shop's channel the path names, or a 404 that says nothing more.
async fn channel_of(
    state: &AppState,
    channel: &str,
    tenant: &str,
) -> Result<(TenantId, MetaChannel), ApiError> {
    let missing = ApiError::NotFound("channel");
    let tenant: TenantId = tenant.parse().map_err(|_| ApiError::NotFound("channel"))?;
    let settings = match state.settings().get(state.store(), tenant).await {
        Ok(s) => s,
        Err(ApiError::NotFound(_)) => return Err(missing),
        Err(e) => return Err(e),
    };
    let found = match channel {
        "whatsapp" => settings.messaging.whatsapp,
        "instagram" => settings.messaging.instagram,
        _ => None,
    };
    Ok((tenant, found.ok_or(missing)?))
}

/// Answer Meta's subscription challenge.
#[utoipa::path(
    get, path = "/v1/channels/{channel}/{tenant_id}/webhook", tag = "messaging",
    params(
        ("channel" = String, Path, description = "whatsapp or instagram"),
        ("tenant_id" = String, Path, description = "The shop's tenant id, as its settings show in the channel's `webhook_path`"),
        ("hub.mode" = String, Query, description = "subscribe"),
        ("hub.verify_token" = String, Query, description = "The channel's verify token"),
        ("hub.challenge" = String, Query, description = "Echoed back"),
    ),
    responses(
        (status = 200, description = "The challenge, echoed", body = String, content_type = "text/plain"),
        (status = 403, description = "Not a subscription, or not the channel's verify token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shop with that channel", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn subscribe(
    State(state): State<AppState>,
    PathParams((channel, tenant)): PathParams<(String, String)>,
    Query(q): Query<Challenge>,
) -> Result<Response, ApiError> {
    let (_, c) = channel_of(&state, &channel, &tenant).await?;
    let token_ok = q.verify_token.as_deref().is_some_and(|t| {
        ordo_domain::constant_eq(t.as_bytes(), c.verify_token.expose().as_bytes())
    });
    match (q.mode.as_deref(), q.challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response()),
        _ => Err(ApiError::Refused(
            "a subscription needs hub.mode=subscribe, the channel's hub.verify_token and a hub.challenge",
        )),
    }
}

/// Meta's signed delivery of messages and statuses.
#[utoipa::path(
    post, path = "/v1/channels/{channel}/{tenant_id}/webhook", tag = "messaging",
    request_body(content = String, description = "Meta's webhook payload (WhatsApp Cloud API or Instagram messaging)", content_type = "application/json"),
    params(
        ("channel" = String, Path, description = "whatsapp or instagram"),
        ("tenant_id" = String, Path, description = "The shop's tenant id"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<hex HMAC-SHA256 of the raw body under the app secret>"),
    ),
    responses(
        (status = 200, description = "Queued (repeats answered, not queued again)", body = ChannelWebhookAnswer),
        (status = 400, description = "Signed, but not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed with the channel's app secret; nothing was read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shop with that channel", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn deliver(
    State(state): State<AppState>,
    PathParams((channel, tenant)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<ChannelWebhookAnswer>, ApiError> {
    let (tenant, c) = channel_of(&state, &channel, &tenant).await?;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !signed(signature, c.app_secret.expose(), &body) {
        tracing::warn!(%tenant, %channel, "a channel webhook without a valid signature was refused");
        return Err(ApiError::Unauthenticated(
            "the X-Hub-Signature-256 header is missing or not the body's signature under the app secret",
        ));
    }
    let payload: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let Delivery { messages, statuses } = match channel.as_str() {
        "whatsapp" => inbound::whatsapp(&payload, &c.account_id),
        _ => inbound::instagram(&payload, &c.account_id),
    };
    let store = state.store();
    let mut answer = ChannelWebhookAnswer {
        messages: 0,
        duplicates: 0,
        statuses: statuses.len(),
    };
    for m in &messages {
        match crate::chatbot::queue(store, tenant, m).await? {
            true => answer.messages += 1,
            false => answer.duplicates += 1,
        }
    }
    for s in statuses {
        store
            .schedule_job(NewJob {
                tenant_id: Some(tenant),
                key: format!("{STATUS_JOB}:{}:{}", s.provider_id, s.status),
                kind: STATUS_JOB.into(),
                payload: serde_json::json!({ "status": s }),
                run_at: Timestamp::now(),
            })
            .await?;
    }
    Ok(axum::Json(answer))
}

/// Whether `header` is `sha256=<hex>` of `body` under `secret`, checked in
/// constant time.
pub fn signed(header: Option<&str>, secret: &str, body: &[u8]) -> bool {
    let Some(given) = header
        .and_then(|h| h.strip_prefix("sha256="))
        .and_then(|hex_sig| hex::decode(hex_sig.trim()).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}
