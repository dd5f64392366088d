//! Which events go to which webhook endpoints: decided here, once, for
//! every database. A database's fan-out pass reads a tenant's active
//! endpoints and the events past its cursor, asks [`plan`], and writes the
//! deliveries (each its own job: workers claim deliveries) and the new
//! cursor in one transaction.

use ordo_domain::{
    EventId, EventType, OrderId, TenantId, Timestamp, WebhookDeliveryId, WebhookEndpoint,
    WebhookEndpointId,
};

/// The job kind of a claimed delivery.
pub const DELIVER_WEBHOOK: &str = "webhook.deliver";

/// The cursor name of the fan-out pass in `feed_cursors`.
pub(crate) const CURSOR: &str = "webhooks";

/// What the fan-out needs of an event in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FedEvent {
    pub position: u64,
    pub id: EventId,
    pub order_id: OrderId,
    pub sequence: u64,
    pub event_type: EventType,
    pub at: Timestamp,
    /// An import's: delivered after live events' deliveries that are due.
    pub bulk: bool,
}

/// A delivery to write, due at once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewDelivery {
    pub id: WebhookDeliveryId,
    pub tenant_id: TenantId,
    pub endpoint_id: WebhookEndpointId,
    pub event: FedEvent,
}

/// The deliveries of `events` to the tenant's `endpoints`: each event to
/// each endpoint that is active, wants its type and existed when it
/// happened. (An inactive endpoint misses the events of its inactive time
/// for good: the cursor moves past them.)
pub(crate) fn plan(
    endpoints: &[WebhookEndpoint],
    events: &[FedEvent],
    now: Timestamp,
) -> Vec<NewDelivery> {
    let mut out = Vec::new();
    for event in events {
        for endpoint in endpoints {
            if !endpoint.wants(event.event_type)
                || event.at.unix_millis() < endpoint.created_at.unix_millis()
            {
                continue;
            }
            out.push(NewDelivery {
                id: WebhookDeliveryId::new_at(now),
                tenant_id: endpoint.tenant_id,
                endpoint_id: endpoint.id,
                event: event.clone(),
            });
        }
    }
    out
}

/// When a delivery whose attempt ended so is tried next (`None`: never),
/// and whether the attempt failed.
pub(crate) fn next_run(outcome: &crate::JobOutcome) -> (Option<i64>, bool) {
    match outcome {
        crate::JobOutcome::Done => (None, false),
        crate::JobOutcome::Again(at) => (Some(at.unix_millis()), false),
        crate::JobOutcome::Retry { at, .. } => (Some(at.unix_millis()), true),
        crate::JobOutcome::Dead { .. } => (None, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_domain::{WebhookSecret, WebhookUrl};

    fn endpoint(types: Vec<EventType>, active: bool, created_at: Timestamp) -> WebhookEndpoint {
        WebhookEndpoint {
            tenant_id: TenantId::new(),
            id: WebhookEndpointId::new(),
            url: WebhookUrl::parse("https://example.com/", false).expect("url"),
            description: None,
            event_types: types,
            active,
            secret: WebhookSecret::generate(),
            previous_secret: None,
            created_at,
            updated_at: created_at,
            disabled: None,
        }
    }

    #[test]
    fn each_event_goes_to_each_endpoint_that_wants_it() {
        let t0 = Timestamp::from_unix_millis(1_000_000);
        let event = |position, event_type, at| FedEvent {
            position,
            id: EventId::new(),
            order_id: OrderId::new(),
            sequence: 1,
            event_type,
            at: Timestamp::from_unix_millis(at),
            bulk: position % 2 == 0,
        };
        let all = endpoint(vec![], true, t0);
        let created_only = endpoint(vec![EventType::OrderCreated], true, t0);
        let off = endpoint(vec![], false, t0);
        let late = endpoint(vec![], true, Timestamp::from_unix_millis(2_000_000));
        let events = [
            event(1, EventType::OrderCreated, 1_500_000),
            event(2, EventType::OrderCancelled, 2_500_000),
        ];
        let planned = plan(
            &[all.clone(), created_only.clone(), off, late.clone()],
            &events,
            t0,
        );
        let pairs: Vec<(u64, WebhookEndpointId)> = planned
            .iter()
            .map(|d| (d.event.position, d.endpoint_id))
            .collect();
        assert_eq!(
            pairs,
            [(1, all.id), (1, created_only.id), (2, all.id), (2, late.id)]
        );
        let mut ids: Vec<_> = planned.iter().map(|d| d.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4, "each delivery its own id");
    }
}
