//! `/v1/settings`: how the tenant's orders treat stock, and what its shop
//! says. Every role reads them; owners and admins change them.

use std::collections::BTreeMap;

use axum::extract::State;
use ordo_domain::messaging::{
    check_template, EmailChannel, EmailChannelDraft, MessageKind, MessagingSettings, MetaChannel,
    MetaChannelDraft, SmtpSecurity,
};
use ordo_domain::settings::{
    parse_payment_instructions, parse_reservation_minutes, parse_whatsapp_number,
    OnProviderFailure, PricingProviders, MAX_PRICING_DEADLINE_MS,
};
use ordo_domain::{
    FieldError, FieldErrors, Permission, ProviderSettings, ReservationPolicy, TenantId,
    TenantSettings,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::JsonBody;
use super::orders::present;
use super::pricing::{parse_shipping_rates, ShippingRateBody, TaxBody};
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
    /// How buyers pay (bank details, say): shown on the buyer's order page.
    pub payment_instructions: Option<String>,
    /// Whether the public storefront (`/v1/storefront/{slug}/…`: the
    /// products on sale and guest checkout) is open. Closed (the default),
    /// it answers 404 as if the shop did not exist.
    pub storefront_enabled: bool,
    /// Where card payments are charged and refunded (`POST
    /// /v1/orders/{id}/charges`, refunds of cancelled orders); `null` when
    /// none is set.
    pub payment_provider: Option<ProviderResponse>,
    /// Whether a confirmed order completes by itself (`order.completed`
    /// with `automatic: true`) once it is paid in full and every unit has
    /// been delivered. Off by default.
    pub auto_complete: bool,
    /// The channels the shop talks to its buyers on, and the texts order
    /// events send them.
    pub messaging: MessagingResponse,
    /// The taxes orders pay.
    pub tax: TaxBody,
    /// The ways the shop ships, and what they cost.
    pub shipping_rates: Vec<ShippingRateBody>,
    /// Services that price the shop's orders instead of its own rules.
    pub pricing_providers: PricingProvidersResponse,
}

/// The shop's pricing providers (see the README's contract), their
/// secrets never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct PricingProvidersResponse {
    /// Unit prices of catalog items.
    pub price: Option<EndpointResponse>,
    /// The promotions that apply, instead of the shop's own.
    pub promotion: Option<EndpointResponse>,
    /// Each item's tax rate, instead of the shop's tax rules.
    pub tax: Option<EndpointResponse>,
    /// Whether the buyer is tax exempt.
    pub customer: Option<EndpointResponse>,
    /// The most all of them together may take (they are asked at once).
    #[schema(example = 500)]
    pub deadline_ms: u32,
    /// `fallback` (the shop's own rules price what a provider could not;
    /// the order's `pricing_fallbacks` and its `order.created` event name
    /// it) or `fail` (the request is a 503 naming the provider).
    #[schema(value_type = String, example = "fallback")]
    pub on_failure: OnProviderFailure,
}

/// Where a provider is, its secret shown only by its last four characters.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    #[schema(example = "https://tax.example.com/v1/rates")]
    pub base_url: String,
    #[schema(example = "…9f2c")]
    pub secret_hint: String,
}

/// A change to the pricing providers; absent fields stay as they are,
/// `null` removes a provider.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingProvidersRequest {
    #[serde(default, deserialize_with = "present")]
    pub price: Option<Option<ProviderRequest>>,
    #[serde(default, deserialize_with = "present")]
    pub promotion: Option<Option<ProviderRequest>>,
    #[serde(default, deserialize_with = "present")]
    pub tax: Option<Option<ProviderRequest>>,
    #[serde(default, deserialize_with = "present")]
    pub customer: Option<Option<ProviderRequest>>,
    /// 10 to 10000 ms.
    pub deadline_ms: Option<i64>,
    #[schema(value_type = Option<String>, example = "fallback")]
    pub on_failure: Option<OnProviderFailure>,
}

impl PricingProvidersRequest {
    fn apply(self, p: &mut PricingProviders, allow_private: bool, errors: &mut FieldErrors) {
        for (name, change, slot) in [
            ("price", self.price, &mut p.price),
            ("promotion", self.promotion, &mut p.promotion),
            ("tax", self.tax, &mut p.tax),
            ("customer", self.customer, &mut p.customer),
        ] {
            match change {
                None => {}
                Some(None) => *slot = None,
                Some(Some(r)) => {
                    let field = format!("pricing_providers.{name}");
                    let parsed = ProviderSettings::parse(
                        &field,
                        &r.base_url,
                        r.secret,
                        slot.as_ref(),
                        allow_private,
                    );
                    if let Some(provider) = errors.take_all(parsed) {
                        *slot = Some(provider);
                    }
                }
            }
        }
        if let Some(ms) = self.deadline_ms {
            match u32::try_from(ms)
                .ok()
                .filter(|ms| (10..=MAX_PRICING_DEADLINE_MS).contains(ms))
            {
                Some(ms) => p.deadline_ms = ms,
                None => errors.push(
                    FieldError::new("pricing_providers.deadline_ms", "not a deadline")
                        .value(ms)
                        .accepted(format!("10 to {MAX_PRICING_DEADLINE_MS} milliseconds")),
                ),
            }
        }
        if let Some(f) = self.on_failure {
            p.on_failure = f;
        }
    }
}

impl PricingProvidersResponse {
    fn of(p: &PricingProviders) -> Self {
        let shown = |p: &Option<ProviderSettings>| {
            p.as_ref().map(|p| EndpointResponse {
                base_url: p.base_url.as_str().to_string(),
                secret_hint: p.secret_hint(),
            })
        };
        PricingProvidersResponse {
            price: shown(&p.price),
            promotion: shown(&p.promotion),
            tax: shown(&p.tax),
            customer: shown(&p.customer),
            deadline_ms: p.deadline_ms,
            on_failure: p.on_failure,
        }
    }
}

/// The shop's messaging channels, their credentials shown only by their
/// last four characters, and every message's text.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagingResponse {
    /// WhatsApp Cloud API; `null` when not set up.
    pub whatsapp: Option<MetaChannelResponse>,
    /// Instagram messaging; `null` when not set up.
    pub instagram: Option<MetaChannelResponse>,
    /// Email over SMTP; `null` when not set up.
    pub email: Option<EmailResponse>,
    /// Each message an order event sends, by kind (`order_created`,
    /// `order_confirmed`, `receipt_received`, `receipt_approved`,
    /// `receipt_rejected`, `payment_received`, `order_shipped`,
    /// `order_delivered`, `order_cancelled`, `order_refunded`).
    pub templates: BTreeMap<String, TemplateResponse>,
}

/// A Meta channel (WhatsApp or Instagram), its credentials never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetaChannelResponse {
    /// WhatsApp: the business phone number's id; Instagram: the account id.
    #[schema(example = "106540352242922")]
    pub account_id: String,
    #[schema(example = "…x2Zd")]
    pub access_token_hint: String,
    #[schema(example = "…9f2c")]
    pub app_secret_hint: String,
    #[schema(example = "…ify1")]
    pub verify_token_hint: String,
    /// The callback URL's path to give Meta (its subscription challenge
    /// and signed messages).
    #[schema(example = "/v1/channels/whatsapp/ten_01JD8X1Q2W3E4R5T6Y7U8I9O0P/webhook")]
    pub webhook_path: String,
}

/// Email over SMTP, its password never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailResponse {
    #[schema(example = "smtp.example.com")]
    pub host: String,
    #[schema(example = 587)]
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    #[schema(value_type = String, example = "starttls")]
    pub security: SmtpSecurity,
    pub username: Option<String>,
    #[schema(example = "…ter2")]
    pub password_hint: Option<String>,
    #[schema(example = "orders@example.com")]
    pub from: String,
    pub from_name: Option<String>,
}

/// The text a message sends.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateResponse {
    pub text: String,
    /// Whether it is the shop's own (otherwise ordo's default).
    pub custom: bool,
    /// The placeholders it may use, as `{name}`.
    pub placeholders: Vec<String>,
}

/// A WhatsApp Cloud API number. Credentials left out keep those set for
/// the same number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppRequest {
    #[schema(example = "106540352242922")]
    pub phone_number_id: String,
    /// A Graph API token allowed to send messages and read media.
    pub access_token: Option<String>,
    /// The Meta app's secret, which signs its webhooks.
    pub app_secret: Option<String>,
    /// What Meta echoes when it subscribes the webhook (8 to 200 characters).
    pub verify_token: Option<String>,
}

/// An Instagram messaging account. Credentials left out keep those set
/// for the same account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstagramRequest {
    #[schema(example = "17841400000000")]
    pub account_id: String,
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
}

/// Email over SMTP. A password left out keeps the one set for the same
/// host and username.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[schema(example = "smtp.example.com")]
    pub host: String,
    #[schema(example = 587)]
    pub port: i64,
    /// `none`, `starttls` or `tls`.
    #[schema(example = "starttls")]
    pub security: String,
    pub username: Option<String>,
    pub password: Option<String>,
    #[schema(example = "orders@example.com")]
    pub from: String,
    #[schema(example = "Ada's Fabrics")]
    pub from_name: Option<String>,
}

/// A change to the messaging settings; absent fields stay as they are,
/// `null` removes a channel.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagingRequest {
    #[serde(default, deserialize_with = "present")]
    pub whatsapp: Option<Option<WhatsAppRequest>>,
    #[serde(default, deserialize_with = "present")]
    pub instagram: Option<Option<InstagramRequest>>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<EmailRequest>>,
    /// Texts by message kind; `null` goes back to the default. Placeholders
    /// are checked against the kind's.
    #[schema(example = json!({"order_created": "Hi {buyer_name}! Order {reference}: {total}. Reply CONFIRM or CANCEL."}))]
    pub templates: Option<BTreeMap<String, Option<String>>>,
}

impl MessagingResponse {
    fn of(m: &MessagingSettings, tenant: TenantId) -> Self {
        let meta = |c: &MetaChannel, channel: &str| MetaChannelResponse {
            account_id: c.account_id.clone(),
            access_token_hint: c.access_token.hint(),
            app_secret_hint: c.app_secret.hint(),
            verify_token_hint: c.verify_token.hint(),
            webhook_path: format!("/v1/channels/{channel}/{tenant}/webhook"),
        };
        MessagingResponse {
            whatsapp: m.whatsapp.as_ref().map(|c| meta(c, "whatsapp")),
            instagram: m.instagram.as_ref().map(|c| meta(c, "instagram")),
            email: m.email.as_ref().map(|e| EmailResponse {
                host: e.host.clone(),
                port: e.port,
                security: e.security,
                username: e.username.clone(),
                password_hint: e.password.as_ref().map(|p| p.hint()),
                from: e.from.as_str().to_string(),
                from_name: e.from_name.clone(),
            }),
            templates: MessageKind::ALL
                .iter()
                .map(|k| {
                    let shown = TemplateResponse {
                        text: m.template(*k).to_string(),
                        custom: m.templates.contains_key(k.as_str()),
                        placeholders: k
                            .placeholders()
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect(),
                    };
                    (k.as_str().to_string(), shown)
                })
                .collect(),
        }
    }
}

impl MessagingRequest {
    /// Applies the change to `m`, naming every field that is wrong; a mail
    /// server on this machine or a private network only if
    /// `allow_private`.
    fn apply(self, m: &mut MessagingSettings, allow_private: bool, errors: &mut FieldErrors) {
        match self.whatsapp {
            None => {}
            Some(None) => m.whatsapp = None,
            Some(Some(w)) => {
                let draft = MetaChannelDraft {
                    account_id: &w.phone_number_id,
                    access_token: w.access_token.as_deref(),
                    app_secret: w.app_secret.as_deref(),
                    verify_token: w.verify_token.as_deref(),
                };
                let parsed = MetaChannel::parse(
                    "messaging.whatsapp",
                    "phone_number_id",
                    draft,
                    m.whatsapp.as_ref(),
                );
                if let Some(c) = errors.take_all(parsed) {
                    m.whatsapp = Some(c);
                }
            }
        }
        match self.instagram {
            None => {}
            Some(None) => m.instagram = None,
            Some(Some(i)) => {
                let draft = MetaChannelDraft {
                    account_id: &i.account_id,
                    access_token: i.access_token.as_deref(),
                    app_secret: i.app_secret.as_deref(),
                    verify_token: i.verify_token.as_deref(),
                };
                let parsed = MetaChannel::parse(
                    "messaging.instagram",
                    "account_id",
                    draft,
                    m.instagram.as_ref(),
                );
                if let Some(c) = errors.take_all(parsed) {
                    m.instagram = Some(c);
                }
            }
        }
        match self.email {
            None => {}
            Some(None) => m.email = None,
            Some(Some(e)) => {
                let draft = EmailChannelDraft {
                    host: &e.host,
                    port: e.port,
                    security: &e.security,
                    username: e.username.as_deref(),
                    password: e.password.as_deref(),
                    from: &e.from,
                    from_name: e.from_name.as_deref(),
                };
                let parsed = EmailChannel::parse("messaging.email", draft, m.email.as_ref());
                match errors.take_all(parsed) {
                    Some(c) if !allow_private && private_host(&c.host) => errors.push(
                        FieldError::new("messaging.email.host", "a private address")
                            .value(&c.host)
                            .accepted("a mail server on the internet (webhooks.allow_private_urls lets private ones in)"),
                    ),
                    Some(c) => m.email = Some(c),
                    None => {}
                }
            }
        }
        for (key, text) in self.templates.unwrap_or_default() {
            let field = format!("messaging.templates.{key}");
            let Some(kind) = MessageKind::parse(&key) else {
                errors.push(
                    FieldError::new(field, "no such message")
                        .value(&key)
                        .accepted(MessageKind::accepted()),
                );
                continue;
            };
            match text {
                None => {
                    m.templates.remove(kind.as_str());
                }
                Some(text) => {
                    if let Some(text) = errors.take(check_template(&field, kind, &text)) {
                        m.templates.insert(kind.as_str().to_string(), text);
                    }
                }
            }
        }
    }
}

/// Whether `host` names this machine or a private network.
fn private_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(ordo_domain::webhook::is_private)
}

/// The tenant's payment provider, its secret never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderResponse {
    #[schema(example = "https://payments.example.com")]
    pub base_url: String,
    /// The secret's last four characters.
    #[schema(example = "…9f2c")]
    pub secret_hint: String,
    /// Where the provider sends its signed webhooks.
    #[schema(example = "/v1/payment-provider/ten_01JD8X1Q2W3E4R5T6Y7U8I9O0P/webhook")]
    pub webhook_path: String,
}

/// A payment provider: seed 001's contract (`POST /api/v1/payments`, `GET
/// /api/v1/payments/order/{order_id}`, `POST /api/v1/payments/refund`) under
/// `base_url`, called with `Authorization: Bearer <secret>`; its webhooks
/// are signed with the same secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    #[schema(example = "https://payments.example.com")]
    pub base_url: String,
    /// 16 to 200 printable characters; may be left out to keep the one set.
    #[schema(example = "psk_live_51HxY2c9f2c4e8a1b")]
    pub secret: Option<String>,
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
    /// 1 to 2000 characters; `null` clears them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "Bank transfer to Ada Fabrics, GTBank 0123456789, with your order number as the reference.")]
    pub payment_instructions: Option<Option<String>>,
    pub storefront_enabled: Option<bool>,
    /// `null` removes the provider.
    #[serde(default, deserialize_with = "present")]
    pub payment_provider: Option<Option<ProviderRequest>>,
    pub auto_complete: Option<bool>,
    pub messaging: Option<MessagingRequest>,
    /// Replaces the taxes.
    #[schema(example = json!({"prices_include_tax": false, "rules": [{"name": "VAT", "country": "NG", "rate": "7.5"}], "shipping_class": "standard"}))]
    pub tax: Option<TaxBody>,
    /// The services that price orders: `price`, `promotion`, `tax`,
    /// `customer` (each `{"base_url", "secret"}`, called with `Authorization:
    /// Bearer <secret>`; `null` removes it), `deadline_ms`, `on_failure`.
    pub pricing_providers: Option<PricingProvidersRequest>,
    /// Replaces every shipping rate.
    #[schema(example = json!([{"name": "Lagos delivery", "currency": "NGN", "countries": ["NG"], "basis": "flat", "amount": "2500.00", "free_above": "50000.00"}]))]
    pub shipping_rates: Option<Vec<ShippingRateBody>>,
}

impl SettingsResponse {
    fn of(s: &TenantSettings, tenant: TenantId) -> Self {
        SettingsResponse {
            reservation_policy: s.reservation_policy,
            reservation_minutes: s.reservation_minutes,
            free_text_lines: s.free_text_lines,
            whatsapp_number: s.whatsapp_number.as_ref().map(|p| p.as_str().to_string()),
            payment_instructions: s.payment_instructions.clone(),
            storefront_enabled: s.storefront_enabled,
            payment_provider: s.payment_provider.as_ref().map(|p| ProviderResponse {
                base_url: p.base_url.as_str().to_string(),
                secret_hint: p.secret_hint(),
                webhook_path: format!("/v1/payment-provider/{tenant}/webhook"),
            }),
            auto_complete: s.auto_complete,
            messaging: MessagingResponse::of(&s.messaging, tenant),
            tax: TaxBody::of(&s.tax),
            shipping_rates: s.shipping_rates.iter().map(ShippingRateBody::of).collect(),
            pricing_providers: PricingProvidersResponse::of(&s.pricing_providers),
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
    Ok(axum::Json(SettingsResponse::of(
        &settings,
        principal.tenant_id,
    )))
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
    if let Some(auto) = req.auto_complete {
        settings.auto_complete = auto;
    }
    match req.whatsapp_number {
        None => {}
        Some(None) => settings.whatsapp_number = None,
        Some(Some(text)) => {
            settings.whatsapp_number = errors.take_all(parse_whatsapp_number(&text));
        }
    }
    match req.payment_instructions {
        None => {}
        Some(None) => settings.payment_instructions = None,
        Some(Some(text)) => {
            settings.payment_instructions = errors.take(parse_payment_instructions(&text));
        }
    }
    match req.payment_provider {
        None => {}
        Some(None) => settings.payment_provider = None,
        Some(Some(p)) => {
            let allow_private = state.config().webhooks.allow_private_urls;
            let current = settings.payment_provider.as_ref();
            let parsed = ProviderSettings::parse(
                "payment_provider",
                &p.base_url,
                p.secret,
                current,
                allow_private,
            );
            if let Some(provider) = errors.take_all(parsed) {
                settings.payment_provider = Some(provider);
            }
        }
    }
    if let Some(m) = req.messaging {
        let allow_private = state.config().webhooks.allow_private_urls;
        m.apply(&mut settings.messaging, allow_private, &mut errors);
    }
    if let Some(tax) = req.tax {
        if let Some(tax) = tax.parse(&mut errors) {
            settings.tax = tax;
        }
    }
    if let Some(p) = req.pricing_providers {
        let allow_private = state.config().webhooks.allow_private_urls;
        p.apply(&mut settings.pricing_providers, allow_private, &mut errors);
    }
    if let Some(rates) = req.shipping_rates {
        if let Some(rates) = parse_shipping_rates(&rates, &mut errors) {
            settings.shipping_rates = rates;
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
    Ok(axum::Json(SettingsResponse::of(
        &settings,
        principal.tenant_id,
    )))
}
