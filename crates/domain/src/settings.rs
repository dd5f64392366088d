//! A tenant's settings: how its orders treat stock and what its shop says.

use serde::{Deserialize, Serialize};

use crate::contact::PhoneE164;
use crate::field::{FieldError, FieldErrors};
use crate::messaging::MessagingSettings;
use crate::pricing::{ShippingRate, TaxSettings};
use crate::webhook::WebhookUrl;

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
    /// How buyers pay (bank details, say), shown on their order page.
    pub payment_instructions: Option<String>,
    /// Whether the public storefront (its product list and guest
    /// checkout) is open; closed, it answers as if the shop did not exist.
    pub storefront_enabled: bool,
    /// Where card payments are charged and refunded (seed 001's contract).
    pub payment_provider: Option<ProviderSettings>,
    /// Whether a confirmed order completes by itself once it is paid in
    /// full and every unit has been delivered.
    pub auto_complete: bool,
    /// The channels the shop talks to its buyers on, and its texts.
    pub messaging: MessagingSettings,
    /// The taxes its orders pay.
    pub tax: TaxSettings,
    /// The ways it ships, and what they cost.
    pub shipping_rates: Vec<ShippingRate>,
    /// Services that price its orders instead of its own rules.
    pub pricing_providers: PricingProviders,
}

str_enum!(
    /// What happens to an order when a pricing provider cannot be asked.
    OnProviderFailure {
        /// The request fails, saying which provider and why.
        Fail = "fail",
        /// The tenant's own rules price that part, and the order says so.
        Fallback = "fallback",
    }
);

/// The longest a tenant may let its pricing providers take (10 s).
pub const MAX_PRICING_DEADLINE_MS: u32 = 10_000;

/// External services that price a tenant's orders (seed 002's pricing,
/// promotion, tax and customer lookups): each called with the cart, all
/// of them at once, within one deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PricingProviders {
    /// Unit prices of catalog items.
    pub price: Option<ProviderSettings>,
    /// The promotions that apply (instead of the tenant's own).
    pub promotion: Option<ProviderSettings>,
    /// Each item's tax rate (instead of the tenant's tax rules).
    pub tax: Option<ProviderSettings>,
    /// What the buyer is (tax exempt).
    pub customer: Option<ProviderSettings>,
    /// The most all of them together may take.
    pub deadline_ms: u32,
    pub on_failure: OnProviderFailure,
}

impl Default for PricingProviders {
    fn default() -> Self {
        PricingProviders {
            price: None,
            promotion: None,
            tax: None,
            customer: None,
            deadline_ms: 500,
            on_failure: OnProviderFailure::Fallback,
        }
    }
}

impl PricingProviders {
    pub fn any(&self) -> bool {
        self.price.is_some()
            || self.promotion.is_some()
            || self.tax.is_some()
            || self.customer.is_some()
    }
}

/// A tenant's payment provider: its base URL, and the secret ordo sends as
/// a bearer token and checks the provider's webhook signatures with. The
/// secret is written, never shown again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSettings {
    pub base_url: WebhookUrl,
    pub secret: String,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("base_url", &self.base_url)
            .field("secret", &self.secret_hint())
            .finish()
    }
}

/// The shortest and longest provider secret accepted.
pub const PROVIDER_SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=200;

impl ProviderSettings {
    /// The secret as it may be shown: its last four characters.
    pub fn secret_hint(&self) -> String {
        let tail: String = self.secret.chars().rev().take(4).collect();
        format!("…{}", tail.chars().rev().collect::<String>())
    }

    /// Checks a provider's settings; `secret` may be left out when one is
    /// already set (`current`) for the same URL, which it then keeps. `allow_private` lets
    /// the URL name this machine or a private network.
    pub fn parse(
        field: &str,
        base_url: &str,
        secret: Option<String>,
        current: Option<&ProviderSettings>,
        allow_private: bool,
    ) -> Result<ProviderSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let url = WebhookUrl::parse(base_url, allow_private).map_err(|reason| {
            FieldError::new(format!("{field}.base_url"), reason)
                .value(base_url)
                .accepted("an http or https URL of the provider's API")
        });
        let url = errors.take(url);
        let secret = match (secret, current) {
            (Some(secret), _) => {
                let ok = PROVIDER_SECRET_LEN.contains(&secret.len())
                    && secret.bytes().all(|b| b.is_ascii_graphic());
                if ok {
                    Some(secret)
                } else {
                    errors.push(
                        FieldError::new(format!("{field}.secret"), "not a usable secret")
                            .accepted("16 to 200 printable ASCII characters, no spaces"),
                    );
                    None
                }
            }
            // Kept only for the same URL: the secret goes where the URL
            // points, so pointing it elsewhere needs the secret again.
            (None, Some(current)) if url.as_ref() == Some(&current.base_url) => {
                Some(current.secret.clone())
            }
            (None, Some(_)) => {
                errors.push(
                    FieldError::new(
                        format!("{field}.secret"),
                        "a new base_url needs the secret again",
                    )
                    .accepted("16 to 200 printable ASCII characters, no spaces"),
                );
                None
            }
            (None, None) => {
                errors.push(
                    FieldError::new(format!("{field}.secret"), "a provider needs a secret")
                        .accepted("16 to 200 printable ASCII characters, no spaces"),
                );
                None
            }
        };
        match (url, secret) {
            (Some(base_url), Some(secret)) if errors.is_empty() => {
                Ok(ProviderSettings { base_url, secret })
            }
            _ => Err(errors),
        }
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            reservation_policy: ReservationPolicy::OnConfirm,
            reservation_minutes: 30,
            free_text_lines: true,
            whatsapp_number: None,
            payment_instructions: None,
            storefront_enabled: false,
            payment_provider: None,
            auto_complete: false,
            messaging: MessagingSettings::default(),
            tax: TaxSettings::default(),
            shipping_rates: Vec::new(),
            pricing_providers: PricingProviders::default(),
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

/// The longest payment instructions.
pub const MAX_PAYMENT_INSTRUCTIONS_CHARS: usize = 2000;

/// Checks how a shop's buyers pay: 1 to 2000 characters, trimmed.
pub fn parse_payment_instructions(text: &str) -> Result<String, FieldError> {
    let trimmed = text.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > MAX_PAYMENT_INSTRUCTIONS_CHARS {
        return Err(
            FieldError::new("payment_instructions", "not payment instructions")
                .value(if n > 40 {
                    format!("{} characters", n)
                } else {
                    text.to_string()
                })
                .accepted(format!(
                    "1 to {MAX_PAYMENT_INSTRUCTIONS_CHARS} characters, or null"
                )),
        );
    }
    Ok(trimmed.to_string())
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
