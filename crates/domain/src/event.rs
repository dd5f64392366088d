//! The timeline: every change to an order appends an event, written in the
//! same transaction as the change. It is the audit log, and (later) the
//! source of webhooks and buyer messages.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, OrderId};
use crate::timestamp::Timestamp;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `api_key`, `user`, `buyer`, `payment_provider` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The key, user or buyer id; `ordo` for the system itself.
    pub id: String,
    /// The role it acted with, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Actor {
    pub fn api_key(id: impl Into<String>, role: impl Into<String>) -> Self {
        Actor {
            kind: "api_key".into(),
            id: id.into(),
            role: Some(role.into()),
        }
    }

    /// A member of staff signed in to the admin pages.
    pub fn user(id: impl Into<String>, role: impl Into<String>) -> Self {
        Actor {
            kind: "user".into(),
            id: id.into(),
            role: Some(role.into()),
        }
    }

    /// A buyer acting without an account (a storefront guest), known by
    /// the phone number they gave.
    pub fn buyer(id: impl Into<String>) -> Self {
        Actor {
            kind: "buyer".into(),
            id: id.into(),
            role: None,
        }
    }

    /// The tenant's payment provider, reporting by an answer or a webhook.
    pub fn payment_provider() -> Self {
        Actor {
            kind: "payment_provider".into(),
            id: "provider".into(),
            role: None,
        }
    }

    pub fn system() -> Self {
        Actor {
            kind: "system".into(),
            id: "ordo".into(),
            role: None,
        }
    }
}

macro_rules! event_types {
    ($($variant:ident = $text:literal),+ $(,)?) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType { $(#[serde(rename = $text)] $variant),+ }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(EventType::$variant),)+ _ => None }
            }

            /// The accepted values, for error messages.
            pub fn accepted() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

event_types! {
    OrderCreated = "order.created",
    OrderUpdated = "order.updated",
    OrderConfirmed = "order.confirmed",
    OrderCancelled = "order.cancelled",
    OrderCompleted = "order.completed",
    PaymentRecorded = "payment.recorded",
    PaymentProcessing = "payment.processing",
    PaymentSucceeded = "payment.succeeded",
    PaymentFailed = "payment.failed",
    PaymentAttemptFailed = "payment.attempt_failed",
    RefundRecorded = "refund.recorded",
    RefundProcessing = "refund.processing",
    RefundSucceeded = "refund.succeeded",
    RefundFailed = "refund.failed",
    RefundAttemptFailed = "refund.attempt_failed",
    ReceiptUploaded = "receipt.uploaded",
    ReceiptApproved = "receipt.approved",
    ReceiptRejected = "receipt.rejected",
    ShipmentCreated = "shipment.created",
    ShipmentUpdated = "shipment.updated",
    ShipmentShipped = "shipment.shipped",
    ShipmentInTransit = "shipment.in_transit",
    ShipmentDelivered = "shipment.delivered",
    ShipmentCancelled = "shipment.cancelled",
    ReturnRequested = "return.requested",
    ReturnReceived = "return.received",
    ReturnRefundPending = "return.refund_pending",
    ReturnRefunded = "return.refunded",
    ReturnRefundFailed = "return.refund_failed",
    ReturnClosed = "return.closed",
    MessageSent = "message.sent",
    MessageDelivered = "message.delivered",
    MessageRead = "message.read",
    MessageFailed = "message.failed",
}

/// An event as the domain produces it, before the store gives it an id,
/// a sequence number and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub event_type: EventType,
    /// What changed: for a change, `{"field": {"from": …, "to": …}}`.
    pub data: serde_json::Value,
}

/// An event on an order's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub id: EventId,
    pub order_id: OrderId,
    /// 1, 2, 3… per order, so receivers can put events in order.
    pub sequence: u64,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub actor: Actor,
    pub at: Timestamp,
    pub data: serde_json::Value,
}
