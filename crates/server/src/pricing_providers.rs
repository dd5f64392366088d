//! A tenant's pricing providers (seed 002's Pricing, Promotion, Tax and
//! Customer services), asked all at once, within one deadline.
//!
//! The contract: each provider is POSTed the same JSON cart, with
//! `Authorization: Bearer <secret>`:
//!
//! ```json
//! {"tenant_id": "ten_…", "currency": "NGN",
//!  "buyer": {"name": "Ada", "phone": "+234…", "email": null, "channel_id": null},
//!  "shipping_address": {…} | null, "billing_address": {…} | null,
//!  "items": [{"index": 0, "sku": "DRESS", "quantity": 2, "unit_price": "15000.00",
//!             "catalog": true, "tax_class": "standard"}],
//!  "promotion_codes": ["WELCOME10"]}
//! ```
//!
//! and answers 200 with its part:
//! - price: `{"items": [{"index": 0, "unit_price": "14000.00"}]}` (catalog
//!   items only; those it leaves out keep the catalog's price);
//! - promotion: `{"promotions": [{"id": "…", "name": "…", "code": "VIP" | null,
//!   "type": "percentage" | "fixed", "value": "10" | "500.00", "skus": []}],
//!   "rejected_codes": [{"code": "…", "reason": "…"}]}` (the promotions that
//!   apply, instead of the tenant's own);
//! - tax: `{"prices_include_tax": false, "items": [{"index": 0, "rate": "7.5"}],
//!   "shipping_rate": "7.5"}` (rates, not amounts: ordo rounds, so the lines
//!   add up);
//! - customer: `{"tax_exempt": false}`.
//!
//! Since no answer depends on another, the four calls run concurrently: the
//! whole takes as long as the slowest. Each is retried on transport errors
//! and 5xx with backoff, through its circuit breaker, as payment provider
//! calls are, but never past the tenant's deadline.

use std::time::{Duration, Instant};

use ordo_domain::pricing::{Code, Customer, Discount, NotApplicable, Promotion, Rate, Rejected};
use ordo_domain::settings::PricingProviders;
use ordo_domain::{Currency, OrderDraft, ProviderSettings, Sku, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::provider::{Provider, ProviderError, Providers};

/// A promotion provider's answer: each promotion that applies with the
/// provider's id for it, and the codes it turned down.
pub type ExternalPromotions = (Vec<(String, Promotion)>, Vec<Rejected>);

/// What the providers said; `None` for those not set up or not answering
/// (their failures are in `failures`).
#[derive(Debug, Default)]
pub struct Consulted {
    /// A unit price per line, for the lines the price provider priced.
    pub prices: Option<Vec<Option<i64>>>,
    /// The promotions that apply (each with the provider's id for it) and
    /// the codes it turned down.
    pub promotions: Option<ExternalPromotions>,
    /// Whether prices include tax, each line's rate, shipping's rate.
    pub tax: Option<(bool, Vec<Rate>, Rate)>,
    pub customer: Option<Customer>,
    /// Each provider asked that gave no usable answer, and why.
    pub failures: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct CartBody<'a> {
    tenant_id: String,
    currency: &'a str,
    buyer: serde_json::Value,
    shipping_address: serde_json::Value,
    billing_address: serde_json::Value,
    items: Vec<ItemBody<'a>>,
    promotion_codes: Vec<&'a str>,
}

#[derive(Serialize)]
struct ItemBody<'a> {
    index: usize,
    sku: Option<&'a str>,
    quantity: u32,
    unit_price: String,
    catalog: bool,
    tax_class: &'a str,
}

#[derive(Deserialize)]
struct PriceAnswer {
    items: Vec<PricedItem>,
}

#[derive(Deserialize)]
struct PricedItem {
    index: usize,
    unit_price: String,
}

#[derive(Deserialize)]
struct PromotionAnswer {
    promotions: Vec<ExternalPromotion>,
    #[serde(default)]
    rejected_codes: Vec<ExternalRejection>,
}

#[derive(Deserialize)]
struct ExternalPromotion {
    id: String,
    name: String,
    code: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    value: String,
    #[serde(default)]
    skus: Vec<String>,
}

#[derive(Deserialize)]
struct ExternalRejection {
    code: String,
    reason: String,
}

#[derive(Deserialize)]
struct TaxAnswer {
    #[serde(default)]
    prices_include_tax: bool,
    items: Vec<TaxedItem>,
    shipping_rate: Option<String>,
}

#[derive(Deserialize)]
struct TaxedItem {
    index: usize,
    rate: String,
}

#[derive(Deserialize)]
struct CustomerAnswer {
    #[serde(default)]
    tax_exempt: bool,
}

/// Asks every provider the tenant set up about `draft`, at once, within
/// the tenant's deadline.
pub async fn consult(
    providers: &Providers,
    settings: &PricingProviders,
    tenant: TenantId,
    draft: &OrderDraft,
    codes: &[Code],
) -> Consulted {
    let mut out = Consulted::default();
    if !settings.any() {
        return out;
    }
    let c = draft.currency;
    let cart = CartBody {
        tenant_id: tenant.to_string(),
        currency: c.code(),
        buyer: serde_json::to_value(&draft.buyer).unwrap_or_default(),
        shipping_address: serde_json::to_value(&draft.shipping_address).unwrap_or_default(),
        billing_address: serde_json::to_value(&draft.billing_address).unwrap_or_default(),
        items: draft
            .lines
            .iter()
            .enumerate()
            .map(|(index, l)| ItemBody {
                index,
                sku: l.sku.as_ref().map(Sku::as_str),
                quantity: l.quantity,
                unit_price: c.format_amount(l.unit_price),
                catalog: l.product_id.is_some(),
                tax_class: l
                    .tax_class
                    .as_ref()
                    .map_or(ordo_domain::pricing::TaxClass::STANDARD, |t| t.as_str()),
            })
            .collect(),
        promotion_codes: codes.iter().map(Code::as_str).collect(),
    };
    let Ok(body) = serde_json::to_vec(&cart) else {
        return out;
    };
    let deadline = Instant::now() + Duration::from_millis(u64::from(settings.deadline_ms));
    let ask = |p: &Option<ProviderSettings>| {
        let body = body.clone();
        let provider = p.as_ref().map(Provider::from);
        async move {
            let provider = provider?;
            // A circuit of its own: a tenant's short deadline or a slow
            // pricing service never opens the circuit of a payment
            // provider at the same address.
            let circuit = format!("pricing {}", provider.base_url);
            let asked = providers
                .exchange(
                    &provider,
                    (reqwest::Method::POST, ""),
                    Some((body, None)),
                    Some(deadline),
                    Some(&circuit),
                )
                .await;
            Some(asked)
        }
    };
    let all = async {
        tokio::join!(
            ask(&settings.price),
            ask(&settings.promotion),
            ask(&settings.tax),
            ask(&settings.customer)
        )
    };
    // Belt and braces: the calls keep to the deadline themselves.
    let grace = deadline + Duration::from_millis(50);
    let Ok((price, promotion, tax, customer)) = tokio::time::timeout_at(grace.into(), all).await
    else {
        for (name, p) in [
            ("price", &settings.price),
            ("promotion", &settings.promotion),
            ("tax", &settings.tax),
            ("customer", &settings.customer),
        ] {
            if p.is_some() {
                out.failures.push((name, "timed out".into()));
            }
        }
        return out;
    };
    let now = Timestamp::now();
    let n = draft.lines.len();
    if let Some(answer) = price {
        match read::<PriceAnswer>("price", answer).and_then(|a| prices(a, c, n)) {
            Ok(p) => out.prices = Some(p),
            Err(e) => out.failures.push(("price", e)),
        }
    }
    if let Some(answer) = promotion {
        match read::<PromotionAnswer>("promotion", answer).and_then(|a| promotions(a, c, now)) {
            Ok(p) => out.promotions = Some(p),
            Err(e) => out.failures.push(("promotion", e)),
        }
    }
    if let Some(answer) = tax {
        match read::<TaxAnswer>("tax", answer).and_then(|a| taxes(a, n)) {
            Ok(t) => out.tax = Some(t),
            Err(e) => out.failures.push(("tax", e)),
        }
    }
    if let Some(answer) = customer {
        match read::<CustomerAnswer>("customer", answer) {
            Ok(a) => {
                out.customer = Some(Customer {
                    tax_exempt: a.tax_exempt,
                })
            }
            Err(e) => out.failures.push(("customer", e)),
        }
    }
    for (name, error) in &out.failures {
        tracing::warn!(provider = name, %error, "pricing provider failed");
        metrics::counter!("ordo_pricing_provider_failures_total", "provider" => *name).increment(1);
    }
    out
}

/// The answer's body as `T`, or why not, in words.
fn read<T: for<'de> Deserialize<'de>>(
    role: &str,
    answer: Result<Option<String>, ProviderError>,
) -> Result<T, String> {
    let text = match answer {
        Ok(Some(text)) => text,
        Ok(None) => return Err(format!("the {role} provider answered 404")),
        Err(e) => return Err(e.said_by(role)),
    };
    serde_json::from_str(&text).map_err(|e| {
        let start: String = text.chars().take(200).collect();
        format!("the {role} provider's answer is not the contract's: {e}: {start}")
    })
}

fn prices(a: PriceAnswer, c: Currency, lines: usize) -> Result<Vec<Option<i64>>, String> {
    let mut out = vec![None; lines];
    for item in a.items {
        let slot = out
            .get_mut(item.index)
            .ok_or_else(|| format!("the price provider priced item {} of {lines}", item.index))?;
        let price = c
            .parse_price("unit_price", &item.unit_price)
            .map_err(|e| format!("the price provider's price for item {}: {e}", item.index))?;
        *slot = Some(price);
    }
    Ok(out)
}

fn promotions(
    a: PromotionAnswer,
    c: Currency,
    now: Timestamp,
) -> Result<ExternalPromotions, String> {
    let mut out = Vec::with_capacity(a.promotions.len());
    for (i, p) in a.promotions.into_iter().enumerate() {
        let bad = |what: String| format!("the promotion provider's promotion {i}: {what}");
        let discount = match p.kind.as_str() {
            "percentage" => Discount::Percentage(Rate::parse(&p.value).map_err(bad)?),
            "fixed" => Discount::Fixed(
                c.parse_price("value", &p.value)
                    .map_err(|e| bad(e.to_string()))?,
            ),
            other => return Err(bad(format!("type {other:?} is not percentage or fixed"))),
        };
        let code = p
            .code
            .as_deref()
            .map(Code::parse)
            .transpose()
            .map_err(bad)?;
        let skus = p
            .skus
            .iter()
            .map(|s| Sku::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        out.push((
            p.id,
            Promotion {
                code,
                skus,
                currency: Some(c),
                ..Promotion::new(p.name, discount, now)
            },
        ));
    }
    let rejected = a
        .rejected_codes
        .into_iter()
        .filter_map(|r| {
            Some(Rejected {
                code: Code::parse(&r.code).ok()?,
                reason: NotApplicable::Provider(r.reason),
            })
        })
        .collect();
    Ok((out, rejected))
}

fn taxes(a: TaxAnswer, lines: usize) -> Result<(bool, Vec<Rate>, Rate), String> {
    let mut rates: Vec<Option<Rate>> = vec![None; lines];
    for item in a.items {
        let slot = rates
            .get_mut(item.index)
            .ok_or_else(|| format!("the tax provider taxed item {} of {lines}", item.index))?;
        *slot = Some(
            Rate::parse(&item.rate)
                .map_err(|e| format!("the tax provider's rate for item {}: {e}", item.index))?,
        );
    }
    let rates = rates
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| format!("the tax provider gave no rate for item {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let shipping = match a.shipping_rate {
        Some(r) => Rate::parse(&r).map_err(|e| format!("the tax provider's shipping rate: {e}"))?,
        None => Rate::ZERO,
    };
    Ok((a.prices_include_tax, rates, shipping))
}
