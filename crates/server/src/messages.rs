//! The job that tells a buyer what an order event means for them: it
//! composes the event's message (the shop's text or the default, on the
//! buyer's channel), sends it, and puts the outcome on the order's
//! timeline (`message.sent` with the channel's message id, or
//! `message.failed`) without changing the order. A failure worth trying
//! again is retried with the job policy's backoff until the job is too old.

use ordo_domain::messaging::{compose, Outgoing};
use ordo_domain::{
    Actor, EventDraft, EventId, EventType, OrderId, TenantId, TenantSettings, Timestamp,
};
use ordo_store::{Job, JobOutcome, OrderLookup, Scope, StoreError};
use serde_json::json;

use crate::app::AppState;
use crate::channels::{Channels, SendError};
use crate::jobs::RetryPolicy;

/// Sends the message of the event a [`ordo_store::MESSAGE_JOB`] names.
pub async fn run(
    state: &AppState,
    channels: &Channels,
    job: &Job,
    policy: &RetryPolicy,
) -> Result<JobOutcome, StoreError> {
    let now = Timestamp::now();
    let named = job.payload["order_id"]
        .as_str()
        .and_then(|o| o.parse::<OrderId>().ok())
        .zip(job.payload["event_id"].as_str().and_then(EventId::parse));
    let (Some(tenant), Some((order_id, event_id))) = (job.tenant_id, named) else {
        return Ok(JobOutcome::Dead {
            error: format!("a message job that names no order event: {}", job.payload),
        });
    };
    let store = state.store();
    let scope = Scope::tenant(tenant);
    let Some(order) = store.order(&scope, &OrderLookup::Id(order_id)).await? else {
        return Ok(JobOutcome::Done);
    };
    let events = store.order_events(&scope, order_id).await?;
    let Some(event) = events.iter().find(|e| e.id == event_id) else {
        return Ok(JobOutcome::Done);
    };
    let (settings, shop) = shop_of(state, tenant).await?;
    let link = crate::links::url(state, tenant, order.id).await?;
    let Some(out) = compose(
        &settings.messaging,
        &shop,
        &order,
        (event.event_type, &event.data),
        &link,
    ) else {
        return Ok(JobOutcome::Done);
    };
    let kind = out.kind.map_or("reply", |k| k.as_str());
    let told = |extra: serde_json::Value| {
        let mut data = json!({
            "kind": kind,
            "channel": channel(&out),
            "to": out.to.masked(),
            "event_id": event.id,
            "event_type": event.event_type,
        });
        if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
            data.extend(extra.clone());
        }
        data
    };
    let (outcome, record) = match channels.send(&settings.messaging, &shop, &out).await {
        Ok(sent) => {
            metrics::counter!("ordo_buyer_messages_total", "outcome" => "sent").increment(1);
            tracing::info!(order.id = %order.id, to = %out.to.masked(), kind, "told the buyer");
            let data = told(json!({ "provider_id": sent.provider_id }));
            (JobOutcome::Done, Some((EventType::MessageSent, data)))
        }
        Err(SendError::Transient(error)) => {
            let outcome = policy.after_failure(job, now, error.clone());
            tracing::warn!(order.id = %order.id, to = %out.to.masked(), %error, "could not tell the buyer; retrying");
            let record = matches!(outcome, JobOutcome::Dead { .. }).then(|| {
                metrics::counter!("ordo_buyer_messages_total", "outcome" => "failed").increment(1);
                let data = told(json!({ "error": error, "given_up": true }));
                (EventType::MessageFailed, data)
            });
            (outcome, record)
        }
        Err(e) => {
            metrics::counter!("ordo_buyer_messages_total", "outcome" => "failed").increment(1);
            tracing::warn!(order.id = %order.id, to = %out.to.masked(), error = %e, "the channel refused the buyer's message");
            let data = told(json!({ "error": e.to_string() }));
            (JobOutcome::Done, Some((EventType::MessageFailed, data)))
        }
    };
    if let Some((event_type, data)) = record {
        let draft = EventDraft { event_type, data };
        let appended = store
            .append_events(scope, order_id, Actor::system(), now, vec![draft])
            .await;
        // Sent is sent: a timeline that could not take it is not a reason
        // to send the message again.
        if let Err(e) = appended {
            tracing::warn!(order.id = %order_id, error = %e, "a message's outcome is not on the order's timeline");
        }
    }
    Ok(outcome)
}

/// Puts a channel's report on a message ordo sent on its order's timeline
/// (`message.delivered`, `message.read`, `message.failed`; `sent` says
/// nothing `message.sent` did not).
pub async fn status(state: &AppState, job: &Job) -> Result<JobOutcome, StoreError> {
    let report: Option<ordo_domain::inbound::Status> =
        serde_json::from_value(job.payload["status"].clone()).ok();
    let (Some(tenant), Some(report)) = (job.tenant_id, report) else {
        return Ok(JobOutcome::Dead {
            error: format!("a status job without a status: {}", job.payload),
        });
    };
    let event_type = match report.status.as_str() {
        "delivered" => EventType::MessageDelivered,
        "read" => EventType::MessageRead,
        "failed" => EventType::MessageFailed,
        _ => return Ok(JobOutcome::Done),
    };
    // Only messages ordo sent about an order carry it back.
    let Some(order) = report
        .callback
        .as_deref()
        .and_then(|c| c.parse::<OrderId>().ok())
    else {
        return Ok(JobOutcome::Done);
    };
    let mut data = json!({ "provider_id": report.provider_id });
    if let Some(error) = report.error {
        data["error"] = json!(error);
    }
    let draft = EventDraft { event_type, data };
    let appended = state
        .store()
        .append_events(
            Scope::tenant(tenant),
            order,
            Actor::system(),
            Timestamp::now(),
            vec![draft],
        )
        .await;
    match appended {
        Ok(_) | Err(StoreError::NotFound) => Ok(JobOutcome::Done),
        Err(e) => Err(e),
    }
}

/// The tenant's settings and name (what buyers know the shop by).
pub(crate) async fn shop_of(
    state: &AppState,
    tenant: TenantId,
) -> Result<(TenantSettings, String), StoreError> {
    let store = state.store();
    let settings = state
        .settings()
        .get(store, tenant)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let shop = store
        .tenant(tenant)
        .await?
        .map_or_else(|| "the shop".to_string(), |t| t.name);
    Ok((settings, shop))
}

fn channel(out: &Outgoing) -> &'static str {
    match out.to {
        ordo_domain::messaging::Recipient::Whatsapp(_) => "whatsapp",
        ordo_domain::messaging::Recipient::Instagram(_) => "instagram",
        ordo_domain::messaging::Recipient::Email(_) => "email",
    }
}
