//! ordo's order domain.
//!
//! Everything here is pure: no I/O, no async, no database. Input from the
//! edge is parsed into the newtypes of this crate (parse, don't validate),
//! money is integer minor units, and every status change goes through an
//! explicit transition table. The HTTP layer and the stores build on it.

/// A closed set of names, written in snake_case on the wire, with the list
/// of accepted values for error messages.
macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(::utoipa::ToSchema))]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted values, for error messages: `pending, confirmed, …`.
            pub fn accepted() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod access;
pub mod aftermath;
pub mod cancel_items;
pub mod charge;
pub mod contact;
pub mod dialogue;
pub mod event;
pub mod field;
pub mod fulfilment;
pub mod ids;
pub mod inbound;
pub mod intent;
pub mod ledger;
pub mod messaging;
pub mod money;
pub mod order;
pub mod payment;
pub mod pricing;
pub mod product;
pub mod reference;
pub mod returns;
pub mod settings;
pub mod status;
pub mod stock;
pub mod timestamp;
pub mod webhook;

pub use access::{constant_eq, random_text, ApiKeySecret, Permission, Role, SecretHash};
pub use cancel_items::CancelItems;
pub use charge::{Entry, Settlement};
pub use contact::{Address, Buyer, ChannelId, CountryCode, Email, PhoneE164};
pub use event::{Actor, EventDraft, EventType, OrderEvent};
pub use field::{FieldError, FieldErrors};
pub use fulfilment::{
    Instance, LineProgress, Shipment, ShipmentAction, ShipmentDraft, ShipmentLine,
    ShipmentLineDraft, ShipmentState, StateError, Tracking,
};
pub use ids::{
    ApiKeyId, EventId, ImportId, LineId, OrderId, PaymentId, ProductId, PromotionId, ReceiptId,
    RefundId, ReturnId, ShipmentId, StockMovementId, TenantId, UserId, WebhookDeliveryId,
    WebhookEndpointId,
};
pub use ledger::{
    EntryState, FileKind, Ledger, LedgerError, Payment, PaymentMethod, Receipt, ReceiptState,
    Refund, RefundLine, ThroughProvider, Totals,
};
pub use money::{Currency, MoneyError};
pub use order::{
    Channel, EditError, ExternalIds, Line, LineDraft, Namespace, NewOrder, Order, OrderDraft,
    OrderPatch, Reconcile, ReconcileError, Refusal, Sku,
};
pub use payment::{LedgerRefusal, PaymentDraft, ReceiptDecision, RefundDraft};
pub use product::{
    MovementKind, Product, ProductDraft, ProductPatch, StockChange, StockError, StockMovement,
};
pub use reference::OrderReference;
pub use returns::{
    Restock, Return, ReturnAction, ReturnDraft, ReturnLine, ReturnRefund, ReturnState,
};
pub use settings::{ProviderSettings, ReservationPolicy, TenantSettings};
pub use status::{Action, FulfillmentStatus, OrderStatus, PaymentStatus, Stage, TransitionError};
pub use stock::{Shortage, StockBook};
pub use timestamp::Timestamp;
pub use webhook::{DeliveryStatus, WebhookEndpoint, WebhookSecret, WebhookUrl};
