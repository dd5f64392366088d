//! A tenant's settings: how its orders treat stock and what its shop says.

use serde::{Deserialize, Serialize};

use crate::contact::PhoneE164;
use crate::field::{FieldError, FieldErrors};

str_enum!(
    /// When orders reserve the stock of their catalog lines.
    ReservationPolicy {
        /// Confirming an order reserves its stock, or fails saying what is short (seed 004).
        OnConfirm = "on_confirm",
        /// Creating an order reserves its stock for a while; unconfirmed
        /// when that runs out, the order is cancelled (seed 003's `reservedUntil`).
        OnCreate = "on_create",
        /// Orders never touch stock.
        None = "none",
    }
);

/// The longest an unconfirmed order may hold stock (30 days).
pub const MAX_RESERVATION_MINUTES: u32 = 30 * 24 * 60;

/// A tenant's settings. Every field has a default, so a tenant that never
/// set anything has all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    pub reservation_policy: ReservationPolicy,
    /// Under `on_create`: how long an unconfirmed order holds its stock.
    pub reservation_minutes: u32,
    /// Whether order lines may be items not in the catalog (a name and a
    /// price), as seed 000's vendors type them.
    pub free_text_lines: bool,
    /// The shop's WhatsApp number, where storefront buyers send their order.
    pub whatsapp_number: Option<PhoneE164>,
    /// Whether the public storefront (its product list and guest
    /// checkout) is open; closed, it answers as if the shop did not exist.
    pub storefront_enabled: bool,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            reservation_policy: ReservationPolicy::OnConfirm,
            reservation_minutes: 30,
            free_text_lines: true,
            whatsapp_number: None,
            storefront_enabled: false,
        }
    }
}

/// Checks the hold of an `on_create` reservation.
pub fn parse_reservation_minutes(n: i64) -> Result<u32, FieldError> {
    u32::try_from(n)
        .ok()
        .filter(|m| (1..=MAX_RESERVATION_MINUTES).contains(m))
        .ok_or_else(|| {
            FieldError::new("reservation_minutes", "not a reservation time")
                .value(n)
                .accepted(format!("1 to {MAX_RESERVATION_MINUTES} minutes"))
        })
}

/// Checks a shop's WhatsApp number.
pub fn parse_whatsapp_number(text: &str) -> Result<PhoneE164, FieldErrors> {
    PhoneE164::parse(text).map_err(|reason| {
        FieldError::new("whatsapp_number", reason)
            .value(text)
            .accepted(PhoneE164::ACCEPTED)
            .into()
    })
}
