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
    /// Automatic promotions not to apply (used up as the order was placed).
    pub exclude: Vec<PromotionId>,
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

/// One step of [`place`]: a boxed future, so the handlers' futures stay `Send`.
pub type Step<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// How many times an order is priced again when automatic promotions run
/// out under it as it is placed.
const REPRICES: usize = 3;

/// Prices a copy of `draft` and hands it to `place` (which creates the
/// order). When an automatic promotion it was priced with ran out as it
/// was placed, it is priced again without it. When pricing refuses the
/// request (a code switched off since, a provider down), `replay` is asked
/// first whether the request is a retry of one that got through: that is
/// answered as it was then.
pub async fn place<'a, T>(
    state: &AppState,
    tenant: TenantId,
    (settings, draft): (&TenantSettings, &OrderDraft),
    mut ask: Ask,
    replay: impl FnOnce() -> Step<'a, Option<T>>,
    mut place: impl FnMut(OrderDraft) -> Step<'a, T>,
) -> Result<T, ApiError> {
    let mut repriced = 0;
    loop {
        let mut priced = draft.clone();
        if let Err(refused) = price_draft(state, tenant, settings, &mut priced, &ask).await {
            return match replay().await? {
                Some(done) => Ok(done),
                None => Err(refused),
            };
        }
        match place(priced).await {
            Err(ApiError::PromotionGone { id, .. })
                if repriced < REPRICES && !ask.exclude.contains(&id) =>
            {
                repriced += 1;
                ask.exclude.push(id);
            }
            placed => return placed,
        }
    }
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
    price_draft_holding(state, tenant, settings, draft, ask, &[]).await
}

/// [`price_draft`] for an order that already holds a use of each of
/// `held` (re-pricing it).
async fn price_draft_holding(
    state: &AppState,
    tenant: TenantId,
    settings: &TenantSettings,
    draft: &mut OrderDraft,
    ask: &Ask,
    held: &[PromotionId],
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
        None => {
            let mut found = candidates(state, tenant, &ask.codes).await?;
            found.retain(|p| !ask.exclude.contains(&p.id));
            (found, BTreeMap::new(), Vec::new())
        }
    };
    let buyer = pricing::buyer_key(&draft.buyer);
    let limited: Vec<_> = promotions
        .iter()
        .filter(|p| p.usage_limit_per_buyer.is_some())
        .map(|p| p.id)
        .collect();
    let mut buyer_uses = match &buyer {
        Some(b) if !limited.is_empty() => {
            Some(state.store().promotion_uses(tenant, b, &limited).await?)
        }
        Some(_) => Some(BTreeMap::new()),
        None => None,
    };
    // A re-priced order's own uses do not count against it.
    let mut promotions = promotions;
    for p in promotions.iter_mut().filter(|p| held.contains(&p.id)) {
        p.uses = p.uses.saturating_sub(1);
        if let Some(n) = buyer_uses.as_mut().and_then(|u| u.get_mut(&p.id)) {
            *n = n.saturating_sub(1);
        }
    }
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
            errors.push(code_refused(
                format!("promotion_codes[{at}]"),
                &r.code,
                &r.reason,
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    draft.pricing = quote.clone().apply(&mut draft.lines);
    Ok(quote)
}

/// Turns `patch` into a re-pricing of `order` by today's rules: its lines
/// (the patch's, or its own with today's catalog prices unless the staff
/// set them), delivered where the patch leaves it, with `codes` (`None`:
/// those it applied) and `ask`'s shipping (default: the rate it has).
/// Limited promotions it keeps keep their use; new ones are claimed, and
/// those it drops given back, in the edit's transaction.
pub async fn reprice(
    state: &AppState,
    settings: &TenantSettings,
    order: &Order,
    catalog: &crate::catalog::Catalog,
    patch: &mut OrderPatch,
    codes: Option<Vec<Code>>,
    mut ask: Ask,
) -> Result<(), ApiError> {
    let lines = match patch.lines.take() {
        Some(lines) => lines,
        None => order
            .lines
            .iter()
            .map(|l| today(l, catalog, order.currency))
            .collect(),
    };
    ask.codes = codes.unwrap_or_else(|| {
        order
            .pricing
            .promotions
            .iter()
            .filter_map(|p| p.code.clone())
            .collect()
    });
    if ask.shipping_method.is_none() {
        ask.shipping_method = order.pricing.shipping.as_ref().map(|s| s.name.clone());
    }
    let mut draft = draft_of(order, patch, lines);
    let held: Vec<PromotionId> = order
        .pricing
        .promotions
        .iter()
        .filter(|p| p.limited)
        .map(|p| p.id)
        .collect();
    price_draft_holding(state, order.tenant_id, settings, &mut draft, &ask, &held).await?;
    patch.lines = Some(draft.lines);
    patch.reprice = Some(draft.pricing);
    Ok(())
}

/// An order's line as it would be taken today: a catalog line not priced
/// by the staff at the catalog's price now (with its tax class and weight).
fn today(
    line: &ordo_domain::Line,
    catalog: &crate::catalog::Catalog,
    currency: ordo_domain::Currency,
) -> ordo_domain::LineDraft {
    let product = line
        .sku
        .as_ref()
        .and_then(|s| catalog.product(s))
        .filter(|p| line.product_id == Some(p.id) && p.currency == currency);
    let mut draft = ordo_domain::LineDraft {
        sku: line.sku.clone(),
        name: line.name.clone(),
        description: line.description.clone(),
        quantity: line.quantity,
        unit_price: line.unit_price,
        attributes: line.attributes.clone(),
        product_id: line.product_id,
        catalog_price: line.catalog_price,
        instances: line.instances.clone(),
        tax_class: None,
        weight_grams: 0,
        tax_rate: line.tax_rate,
    };
    if let Some(p) = product {
        if !line.price_overridden() {
            draft.unit_price = p.price;
        }
        draft.catalog_price = Some(p.price);
        draft.tax_class = Some(p.tax_class.clone());
        draft.weight_grams = p.weight_grams;
    }
    draft
}

/// A code the order cannot use, as a field error.
pub fn code_refused(field: String, code: &Code, reason: &pricing::NotApplicable) -> FieldError {
    FieldError::new(field, reason.to_string())
        .value(code.as_str())
        .accepted("a code that applies to this order (POST /v1/orders/preview says which do)")
}

/// Gives the lines of an edit the tax rates the order, as edited, would be
/// quoted now (the tenant's rules, or its tax provider): lines the order
/// already has keep their own, so only new lines take these. Prices stay
/// as the edit gives them; nothing else is re-priced.
pub async fn rate_new_lines(
    state: &AppState,
    settings: &TenantSettings,
    order: &Order,
    patch: &mut OrderPatch,
) -> Result<(), ApiError> {
    let Some(lines) = patch.lines.take() else {
        return Ok(());
    };
    let mut draft = draft_of(order, patch, lines.clone());
    price_draft(
        state,
        order.tenant_id,
        settings,
        &mut draft,
        &Ask::default(),
    )
    .await?;
    let rated = lines
        .into_iter()
        .zip(draft.lines)
        .map(|(line, priced)| ordo_domain::LineDraft {
            tax_rate: priced.tax_rate,
            ..line
        })
        .collect();
    patch.lines = Some(rated);
    Ok(())
}

/// The draft an edit of `order` with `lines` would make: the patch's
/// buyer and addresses where it changes them, the order's otherwise.
fn draft_of(order: &Order, patch: &OrderPatch, lines: Vec<ordo_domain::LineDraft>) -> OrderDraft {
    OrderDraft {
        currency: order.currency,
        buyer: patch.buyer.clone().unwrap_or_else(|| order.buyer.clone()),
        lines,
        shipping_address: patch
            .shipping_address
            .clone()
            .unwrap_or_else(|| order.shipping_address.clone()),
        billing_address: patch
            .billing_address
            .clone()
            .unwrap_or_else(|| order.billing_address.clone()),
        notes: order.notes.clone(),
        external_ids: order.external_ids.clone(),
        channel: order.channel,
        pricing: Default::default(),
    }
}
