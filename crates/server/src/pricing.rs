//! Pricing an order's draft by the tenant's rules: every path that creates
//! an order (the API, the storefront's checkout, a PUT by external id) and
//! the preview price through here, so an order is priced the same way
//! wherever it comes from.

use std::collections::BTreeMap;

use ordo_domain::pricing::{self, Cart, Code, Fallback, Promotion, Quote, Rules, TaxSource};
use ordo_domain::settings::OnProviderFailure;
use ordo_domain::{
    FieldError, FieldErrors, Order, OrderDraft, OrderPatch, PromotionId, TenantId, TenantSettings,
    Timestamp,
};

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::pricing_providers::consult;

/// What a request asks of pricing besides its lines and addresses.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// The shipping rate the buyer chose, by name.
    pub shipping_method: Option<String>,
    /// The promotion codes the buyer gave.
    pub codes: Vec<Code>,
    /// A preview: codes that do not apply are reported, not refused, and
    /// their usage limits are checked here (a create leaves those to the
    /// store, inside the order's transaction).
    pub preview: bool,
}

/// Parses the codes a request gave, naming `promotion_codes[i]`.
pub fn parse_codes(given: &[String], errors: &mut FieldErrors) -> Vec<Code> {
    given
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            errors.take(Code::parse(text).map_err(|reason| {
                FieldError::new(format!("promotion_codes[{i}]"), reason)
                    .value(text)
                    .accepted(Code::ACCEPTED)
            }))
        })
        .collect()
}

/// The promotions that may apply to a cart with `codes`: none without
/// reading when the tenant is known to have none.
async fn candidates(
    state: &AppState,
    tenant: TenantId,
    codes: &[Code],
) -> Result<Vec<Promotion>, ApiError> {
    if state.has_promotions().get(&tenant) == Some(false) {
        return Ok(Vec::new());
    }
    let found = state.store().promotions_for(tenant, codes).await?;
    if !found.is_empty() {
        state.has_promotions().put(tenant, true);
    } else if codes.is_empty() {
        state.has_promotions().put(tenant, false);
    }
    Ok(found)
}

/// Prices `draft`: asks the tenant's pricing providers (all at once,
/// within its deadline), quotes it by their answers and the tenant's own
/// rules, and puts the quote on it (each line's price from a price
/// provider and its tax rate; the basis). A provider that cannot be asked
/// fails the request or, as the tenant chose, leaves its part to the
/// tenant's rules and is named in the basis's `fallbacks`. A shipping
/// method no rate by that name takes is a 422 naming the rates that do; so
/// is a code that does not apply, saying why (a preview reports those).
pub async fn price_draft(
    state: &AppState,
    tenant: TenantId,
    settings: &TenantSettings,
    draft: &mut OrderDraft,
    ask: &Ask,
) -> Result<Quote, ApiError> {
    let providers = &settings.pricing_providers;
    let consulted = consult(state.providers(), providers, tenant, draft, &ask.codes).await;
    if !consulted.failures.is_empty() && providers.on_failure == OnProviderFailure::Fail {
        let why: Vec<&str> = consulted.failures.iter().map(|(_, e)| e.as_str()).collect();
        return Err(ApiError::PricingProvider(format!(
            "the order cannot be priced: {} (the shop's pricing_providers.on_failure is fail)",
            why.join("; ")
        )));
    }
    if let Some(prices) = &consulted.prices {
        for (line, price) in draft.lines.iter_mut().zip(prices) {
            // The staff's own price stands; the catalog's gives way.
            if let Some(p) = price.filter(|_| line.catalog_price == Some(line.unit_price)) {
                line.unit_price = p;
                line.catalog_price = Some(p);
            }
        }
    }
    let (promotions, external, provider_rejected) = match consulted.promotions {
        Some((found, rejected)) => {
            let ids: BTreeMap<PromotionId, String> =
                found.iter().map(|(e, p)| (p.id, e.clone())).collect();
            (found.into_iter().map(|(_, p)| p).collect(), ids, rejected)
        }
        None => (
            candidates(state, tenant, &ask.codes).await?,
            BTreeMap::new(),
            Vec::new(),
        ),
    };
    let buyer = pricing::buyer_key(&draft.buyer);
    let limited: Vec<_> = promotions
        .iter()
        .filter(|p| p.usage_limit_per_buyer.is_some())
        .map(|p| p.id)
        .collect();
    let buyer_uses = match &buyer {
        Some(b) if !limited.is_empty() => {
            Some(state.store().promotion_uses(tenant, b, &limited).await?)
        }
        Some(_) => Some(BTreeMap::new()),
        None => None,
    };
    let tax = match &consulted.tax {
        Some((included, lines, shipping)) => TaxSource::Given {
            prices_include_tax: *included,
            lines,
            shipping: *shipping,
        },
        None => TaxSource::Rules(&settings.tax),
    };
    let mut quote = pricing::quote(
        &Cart {
            currency: draft.currency,
            lines: &draft.lines,
            shipping_address: draft.shipping_address.as_ref(),
            billing_address: draft.billing_address.as_ref(),
            codes: &ask.codes,
            shipping_method: ask.shipping_method.as_deref(),
        },
        &Rules {
            tax,
            shipping: &settings.shipping_rates,
            promotions: &promotions,
            buyer_uses: buyer_uses.as_ref(),
            customer: consulted.customer.as_ref(),
            now: Timestamp::now(),
            code_limits: ask.preview,
        },
    );
    for p in &mut quote.basis.promotions {
        p.external_id = external.get(&p.id).cloned();
    }
    // The provider's own reasons for the codes it turned down.
    for r in &mut quote.rejected {
        if let Some(said) = provider_rejected.iter().find(|x| x.code == r.code) {
            r.reason = said.reason.clone();
        }
    }
    quote.basis.fallbacks = consulted
        .failures
        .into_iter()
        .map(|(provider, error)| Fallback {
            provider: provider.to_string(),
            error,
        })
        .collect();
    let mut errors = FieldErrors::new();
    if quote.shipping_unavailable {
        let accepted = if quote.shipping_options.is_empty() {
            "none: no shipping rate takes this order (is there a shipping address?)".to_string()
        } else {
            quote
                .shipping_options
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let method = ask.shipping_method.as_deref().unwrap_or_default();
        errors.push(
            FieldError::new(
                "shipping_method",
                "no shipping rate by this name takes the order",
            )
            .value(method)
            .accepted(accepted),
        );
    }
    if !ask.preview {
        for r in &quote.rejected {
            let at = ask.codes.iter().position(|c| *c == r.code).unwrap_or(0);
            errors.push(code_refused(at, &r.code, &r.reason));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    draft.pricing = quote.clone().apply(&mut draft.lines);
    Ok(quote)
}

/// A code the order cannot use, as a field error.
pub fn code_refused(at: usize, code: &Code, reason: &pricing::NotApplicable) -> FieldError {
    FieldError::new(format!("promotion_codes[{at}]"), reason.to_string())
        .value(code.as_str())
        .accepted("a code that applies to this order (POST /v1/orders/preview says which do)")
}

/// Gives the lines of an edit the tax rates the tenant's rules have for
/// them now, delivered where the order (as edited) goes: lines the order
/// already has keep their own, so only new lines take these.
pub fn rate_new_lines(settings: &TenantSettings, order: &Order, patch: &mut OrderPatch) {
    let Some(lines) = patch.lines.as_mut() else {
        return;
    };
    let shipping_address = match &patch.shipping_address {
        Some(a) => a.as_ref(),
        None => order.shipping_address.as_ref(),
    };
    let billing_address = match &patch.billing_address {
        Some(a) => a.as_ref(),
        None => order.billing_address.as_ref(),
    };
    let quote = pricing::quote(
        &Cart {
            currency: order.currency,
            lines,
            shipping_address,
            billing_address,
            codes: &[],
            shipping_method: None,
        },
        &Rules {
            tax: TaxSource::Rules(&settings.tax),
            shipping: &[],
            promotions: &[],
            buyer_uses: None,
            customer: None,
            now: Timestamp::now(),
            code_limits: false,
        },
    );
    quote.apply(lines);
}
