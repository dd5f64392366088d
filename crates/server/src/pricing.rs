//! Pricing an order's draft by the tenant's rules: every path that creates
//! an order (the API, the storefront's checkout, a PUT by external id) and
//! the preview price through here, so an order is priced the same way
//! wherever it comes from.

use ordo_domain::pricing::{self, Cart, Quote, Rules, TaxSource};
use ordo_domain::{
    FieldError, FieldErrors, Order, OrderDraft, OrderPatch, TenantSettings, Timestamp,
};

use crate::api::error::ApiError;

/// What a request asks of pricing besides its lines and addresses.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// The shipping rate the buyer chose, by name.
    pub shipping_method: Option<String>,
}

/// Quotes `draft` by the tenant's rules as they are now.
pub fn quote(settings: &TenantSettings, draft: &OrderDraft, ask: &Ask) -> Quote {
    pricing::quote(
        &Cart {
            currency: draft.currency,
            lines: &draft.lines,
            shipping_address: draft.shipping_address.as_ref(),
            billing_address: draft.billing_address.as_ref(),
            codes: &[],
            shipping_method: ask.shipping_method.as_deref(),
        },
        &Rules {
            tax: TaxSource::Rules(&settings.tax),
            shipping: &settings.shipping_rates,
            promotions: &[],
            buyer_uses: None,
            customer: None,
            now: Timestamp::now(),
        },
    )
}

/// Prices `draft`: quotes it and puts the quote on it (each line's tax
/// rate, the basis). A shipping method no rate by that name takes is a
/// 422 naming the rates that do.
pub fn price_draft(
    settings: &TenantSettings,
    draft: &mut OrderDraft,
    ask: &Ask,
) -> Result<Quote, ApiError> {
    let quote = quote(settings, draft, ask);
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
        return Err(ApiError::Validation(FieldErrors::from(
            FieldError::new(
                "shipping_method",
                "no shipping rate by this name takes the order",
            )
            .value(method)
            .accepted(accepted),
        )));
    }
    draft.pricing = quote.clone().apply(&mut draft.lines);
    Ok(quote)
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
        },
    );
    quote.apply(lines);
}
