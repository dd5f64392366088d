//! Time-ordered, prefixed identifiers: `ord_01JD…`, `ten_…`, `key_…`.
//!
//! Each is a ULID behind a short prefix that says what it names, so an id
//! pasted into the wrong place is refused at the edge, and ids sort by the
//! time they were made.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

use crate::timestamp::Timestamp;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id whose time part is `at`.
            pub fn new_at(at: Timestamp) -> Self {
                let ms = u64::try_from(at.unix_millis()).unwrap_or(0);
                $name(Ulid::from_parts(ms, rand::random::<u128>()))
            }

            /// The smallest id made at `at`: ids at or after `at` sort at or
            /// after it, so a time range is an id range.
            pub fn lowest_at(at: Timestamp) -> Self {
                let ms = u64::try_from(at.unix_millis()).unwrap_or(0);
                $name(Ulid::from_parts(ms, 0))
            }

            pub fn new() -> Self {
                Self::new_at(Timestamp::now())
            }

            /// When this id was made, to the millisecond.
            pub fn timestamp(self) -> Timestamp {
                Timestamp::from_unix_millis(i64::try_from(self.0.timestamp_ms()).unwrap_or(i64::MAX))
            }

            /// The id without its prefix (the bare ULID).
            pub fn ulid(self) -> Ulid {
                self.0
            }

            pub fn from_ulid(u: Ulid) -> Self {
                $name(u)
            }

            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?;
                if rest.len() != 26 {
                    return None;
                }
                Ulid::from_string(rest).ok().map($name)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::parse(s).ok_or_else(|| format!(concat!("expected an id like ", $prefix, "01JD5Q4ZB8Y7K6M3N2P1R0S9TV, got {:?}"), s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An order.
    OrderId, "ord_"
);
prefixed_id!(
    /// A line of an order.
    LineId, "li_"
);
prefixed_id!(
    /// A business using ordo; every row belongs to exactly one.
    TenantId, "ten_"
);
prefixed_id!(
    /// An API key (the id is public; the secret never is).
    ApiKeyId, "key_"
);
prefixed_id!(
    /// A person who signs in to the admin pages.
    UserId, "usr_"
);
prefixed_id!(
    /// A timeline event.
    EventId, "evt_"
);
prefixed_id!(
    /// A webhook endpoint: where a tenant's events are sent.
    WebhookEndpointId, "whe_"
);
prefixed_id!(
    /// One event on its way to one webhook endpoint.
    WebhookDeliveryId, "whd_"
);
prefixed_id!(
    /// A product of the catalog.
    ProductId, "prod_"
);
prefixed_id!(
    /// One change to a product's stock.
    StockMovementId, "smv_"
);
prefixed_id!(
    /// A payment recorded against an order.
    PaymentId, "pay_"
);
prefixed_id!(
    /// A refund paid out of an order's payments.
    RefundId, "ref_"
);

prefixed_id!(
    /// A receipt a buyer sent for an order.
    ReceiptId, "rcpt_"
);

prefixed_id!(
    /// A parcel of some or all of an order's units.
    ShipmentId, "shp_"
);

prefixed_id!(
    /// Units a buyer sends back.
    ReturnId, "ret_"
);
prefixed_id!(
    /// A promotion: a code, or a discount that applies by itself.
    PromotionId, "promo_"
);
prefixed_id!(
    /// A file of orders or products being imported.
    ImportId, "imp_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = OrderId::new();
        let text = id.to_string();
        assert!(text.starts_with("ord_"));
        assert_eq!(text.len(), 30);
        assert_eq!(OrderId::parse(&text), Some(id));
    }

    #[test]
    fn a_wrong_prefix_is_refused() {
        let id = TenantId::new().to_string();
        assert_eq!(OrderId::parse(&id), None);
        assert_eq!(OrderId::parse("ord_"), None);
        assert_eq!(OrderId::parse("ord_not-a-ulid-at-all-xxxxxxxx"), None);
    }

    #[test]
    fn ids_carry_their_time_and_sort_by_it() {
        let early = OrderId::new_at(Timestamp::from_unix_millis(1_700_000_000_000));
        let late = OrderId::new_at(Timestamp::from_unix_millis(1_700_000_000_001));
        assert!(early < late);
        assert!(early.to_string() < late.to_string());
        assert_eq!(early.timestamp().unix_millis(), 1_700_000_000_000);
    }
}
