//! Pricing in the API: the settings' taxes and shipping rates, and
//! `POST /v1/orders/preview`, which prices a cart without creating anything.

use axum::extract::State;
use ordo_domain::pricing::{
    self, Band, Rate, ShippingBasis, ShippingRate, TaxClass, TaxRule, TaxSettings, MAX_BANDS,
    MAX_SHIPPING_RATES,
};
use ordo_domain::{CountryCode, Currency, FieldError, FieldErrors, Permission};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::JsonBody;
use super::orders::{
    take_in, AppliedPromotionResponse, CreateOrderRequest, FallbackResponse,
    ShippingChargeResponse, TakenIn,
};
use crate::app::AppState;

// ------------------------------------------------------------ settings

/// A tax rate for a class of products in a place.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRuleBody {
    /// What the tax is called (`VAT`, `GST`).
    #[schema(example = "VAT")]
    pub name: String,
    /// ISO 3166-1 alpha-2; leave it out for a rule for everywhere else.
    #[schema(example = "NG")]
    pub country: Option<String>,
    /// A region of the country (a state), as addresses write it.
    #[schema(example = "Lagos")]
    pub region: Option<String>,
    /// The products' tax class it is for; default `standard`.
    #[schema(example = "standard")]
    pub class: Option<String>,
    /// Percent, up to 4 decimals.
    #[schema(example = "7.5")]
    pub rate: String,
}

/// The tenant's taxes. An order's lines pay the rate of the rule for their
/// product's tax class that names the order's region, else its country,
/// else everywhere (the shipping address's, else the billing address's);
/// none when no rule fits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxBody {
    /// Whether prices (catalog, lines, shipping rates) contain their tax.
    #[serde(default)]
    pub prices_include_tax: bool,
    #[serde(default)]
    pub rules: Vec<TaxRuleBody>,
    /// The tax class shipping pays; shipping is untaxed when left out.
    pub shipping_class: Option<String>,
}

/// One band of a banded shipping rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BandBody {
    /// By weight: the heaviest order (grams) the band takes.
    #[schema(example = 1000)]
    pub up_to_grams: Option<i64>,
    /// By subtotal: the least subtotal after discounts the band takes.
    #[schema(example = "20000.00")]
    pub from: Option<String>,
    #[schema(example = "1500.00")]
    pub amount: String,
}

/// A way of shipping: flat (`amount`), by the order's weight or by its
/// subtotal after discounts (`bands`, ascending), where it ships
/// (`countries`, everywhere when empty), free from `free_above`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingRateBody {
    #[schema(example = "Lagos delivery")]
    pub name: String,
    #[schema(example = "NGN")]
    pub currency: String,
    #[serde(default)]
    #[schema(example = json!(["NG"]))]
    pub countries: Vec<String>,
    /// `flat`, `weight` or `subtotal`.
    #[schema(example = "flat")]
    pub basis: String,
    /// A flat rate's amount.
    #[schema(example = "2500.00")]
    pub amount: Option<String>,
    /// A weight or subtotal rate's bands.
    pub bands: Option<Vec<BandBody>>,
    /// Orders whose subtotal after discounts reaches this ship free.
    #[schema(example = "50000.00")]
    pub free_above: Option<String>,
}

impl TaxBody {
    pub(crate) fn of(t: &TaxSettings) -> TaxBody {
        TaxBody {
            prices_include_tax: t.prices_include_tax,
            rules: t
                .rules
                .iter()
                .map(|r| TaxRuleBody {
                    name: r.name.clone(),
                    country: r.country.map(|c| c.to_string()),
                    region: r.region.clone(),
                    class: Some(r.class.to_string()),
                    rate: r.rate.to_string(),
                })
                .collect(),
            shipping_class: t.shipping_class.as_ref().map(|c| c.to_string()),
        }
    }

    pub(crate) fn parse(&self, errors: &mut FieldErrors) -> Option<TaxSettings> {
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut parsed_at = Vec::with_capacity(self.rules.len());
        let mut ok = true;
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("tax.rules[{i}]");
            let country = r.country.as_deref().map(|c| {
                errors.take(CountryCode::parse(c).map_err(|reason| {
                    FieldError::new(format!("{at}.country"), reason)
                        .value(c)
                        .accepted(CountryCode::ACCEPTED)
                }))
            });
            let class = match r.class.as_deref() {
                None => Some(TaxClass::standard()),
                Some(c) => errors.take(TaxClass::parse_field(&format!("{at}.class"), c)),
            };
            let rate = errors.take(Rate::parse_field(&format!("{at}.rate"), &r.rate));
            match (country, class, rate) {
                (Some(None), ..) => ok = false,
                (country, Some(class), Some(rate)) => {
                    parsed_at.push(i);
                    rules.push(TaxRule {
                        name: r.name.trim().to_string(),
                        country: country.flatten(),
                        region: r.region.as_deref().map(|r| r.trim().to_string()),
                        class,
                        rate,
                    })
                }
                _ => ok = false,
            }
        }
        let shipping_class = match self.shipping_class.as_deref() {
            None => None,
            Some(c) => {
                let parsed = errors.take(TaxClass::parse_field("tax.shipping_class", c));
                ok &= parsed.is_some();
                parsed
            }
        };
        let tax = TaxSettings {
            prices_include_tax: self.prices_include_tax,
            rules,
            shipping_class,
        };
        if !ok {
            // Some rules did not parse: those that did are checked alone,
            // under their own index.
            for (at, rule) in parsed_at.iter().zip(&tax.rules) {
                errors.extend(rule.check(&format!("tax.rules[{at}]")));
            }
            return None;
        }
        errors.take_all(tax.check("tax")).map(|()| tax)
    }
}

impl ShippingRateBody {
    pub(crate) fn of(r: &ShippingRate) -> ShippingRateBody {
        let c = r.currency;
        let bands = || {
            r.bands
                .iter()
                .map(|b| BandBody {
                    up_to_grams: (r.basis == ShippingBasis::Weight).then_some(b.limit),
                    from: (r.basis == ShippingBasis::Subtotal).then(|| c.format_amount(b.limit)),
                    amount: c.format_amount(b.amount),
                })
                .collect()
        };
        ShippingRateBody {
            name: r.name.clone(),
            currency: c.code().to_string(),
            countries: r.countries.iter().map(|c| c.to_string()).collect(),
            basis: r.basis.to_string(),
            amount: match r.basis {
                ShippingBasis::Flat => r.bands.first().map(|b| c.format_amount(b.amount)),
                _ => None,
            },
            bands: (r.basis != ShippingBasis::Flat).then(bands),
            free_above: r.free_above.map(|a| c.format_amount(a)),
        }
    }

    fn parse(&self, at: &str, errors: &mut FieldErrors) -> Option<ShippingRate> {
        let mut local = FieldErrors::new();
        let currency = local.take(Currency::parse_field(
            &format!("{at}.currency"),
            &self.currency,
        ));
        let countries: Vec<CountryCode> = self
            .countries
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                local.take(CountryCode::parse(c).map_err(|reason| {
                    FieldError::new(format!("{at}.countries[{i}]"), reason)
                        .value(c)
                        .accepted(CountryCode::ACCEPTED)
                }))
            })
            .collect();
        let basis = ShippingBasis::parse(&self.basis);
        if basis.is_none() {
            local.push(
                FieldError::new(format!("{at}.basis"), "not a shipping basis")
                    .value(&self.basis)
                    .accepted(ShippingBasis::accepted()),
            );
        }
        let mut bands = Vec::new();
        if let (Some(c), Some(basis)) = (currency, basis) {
            let amount = |field: String, text: &str, local: &mut FieldErrors| {
                local.take(c.parse_price(&field, text))
            };
            match (basis, &self.amount, &self.bands) {
                (ShippingBasis::Flat, Some(a), None) => {
                    if let Some(a) = amount(format!("{at}.amount"), a, &mut local) {
                        bands.push(Band {
                            limit: 0,
                            amount: a,
                        });
                    }
                }
                (ShippingBasis::Flat, ..) => local.push(
                    FieldError::new(
                        format!("{at}.amount"),
                        "a flat rate has one amount and no bands",
                    )
                    .accepted("an amount, e.g. \"2500.00\""),
                ),
                (_, None, Some(given)) if given.len() <= MAX_BANDS => {
                    for (i, b) in given.iter().enumerate() {
                        let field = format!("{at}.bands[{i}]");
                        let limit = match (basis, b.up_to_grams, &b.from) {
                            (ShippingBasis::Weight, Some(g), None) if g >= 0 => Some(g),
                            (ShippingBasis::Subtotal, None, Some(from)) => {
                                amount(format!("{field}.from"), from, &mut local)
                            }
                            _ => {
                                local.push(
                                    FieldError::new(field.clone(), "not a band of this basis")
                                        .accepted(if basis == ShippingBasis::Weight {
                                            "up_to_grams (0 or more) and an amount"
                                        } else {
                                            "from (an amount) and an amount"
                                        }),
                                );
                                None
                            }
                        };
                        let a = amount(format!("{field}.amount"), &b.amount, &mut local);
                        if let (Some(limit), Some(amount)) = (limit, a) {
                            bands.push(Band { limit, amount });
                        }
                    }
                }
                _ => local.push(
                    FieldError::new(
                        format!("{at}.bands"),
                        "a weight or subtotal rate has bands and no amount",
                    )
                    .accepted(format!("1 to {MAX_BANDS} bands")),
                ),
            }
        }
        let free_above = match (currency, &self.free_above) {
            (Some(c), Some(text)) => local.take(c.parse_price(&format!("{at}.free_above"), text)),
            _ => None,
        };
        let (Some(currency), Some(basis)) = (currency, basis) else {
            errors.extend(local);
            return None;
        };
        let rate = ShippingRate {
            name: self.name.trim().to_string(),
            currency,
            countries,
            basis,
            bands,
            free_above,
        };
        if local.is_empty() {
            local.take_all(rate.check(at));
        }
        let ok = local.is_empty();
        errors.extend(local);
        ok.then_some(rate)
    }
}

/// Checks a list of shipping rates: each rate, and no two with one name.
pub(crate) fn parse_shipping_rates(
    given: &[ShippingRateBody],
    errors: &mut FieldErrors,
) -> Option<Vec<ShippingRate>> {
    let mut local = FieldErrors::new();
    if given.len() > MAX_SHIPPING_RATES {
        local.push(
            FieldError::new("shipping_rates", "too many shipping rates")
                .accepted(format!("at most {MAX_SHIPPING_RATES}")),
        );
    }
    let mut rates = Vec::with_capacity(given.len());
    for (i, body) in given.iter().enumerate() {
        let at = format!("shipping_rates[{i}]");
        if given[..i]
            .iter()
            .any(|b| b.name.trim().eq_ignore_ascii_case(body.name.trim()))
        {
            local.push(
                FieldError::new(format!("{at}.name"), "another rate has this name")
                    .value(&body.name)
                    .accepted("a name of its own: buyers choose rates by name"),
            );
        }
        if let Some(rate) = body.parse(&at, &mut local) {
            rates.push(rate);
        }
    }
    let ok = local.is_empty();
    errors.extend(local);
    ok.then_some(rates)
}

// ------------------------------------------------------------- preview

/// A line as priced.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewLine {
    pub sku: Option<String>,
    pub name: String,
    pub quantity: u32,
    #[schema(example = "5000.00")]
    pub unit_price: String,
    #[schema(example = "10000.00")]
    pub line_total: String,
    #[schema(example = "1000.00")]
    pub discount: String,
    #[schema(example = "7.5")]
    pub tax_rate: String,
    #[schema(example = "675.00")]
    pub tax: String,
    #[schema(example = "9675.00")]
    pub total: String,
}

/// A shipping rate that takes the cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShippingOptionResponse {
    #[schema(example = "Lagos delivery")]
    pub name: String,
    #[schema(example = "2500.00")]
    pub amount: String,
}

/// What the cart would cost as an order now: the same amounts creating it
/// would give (promotions with usage limits are checked again then).
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewResponse {
    pub currency: String,
    pub items: Vec<PreviewLine>,
    #[schema(example = "10000.00")]
    pub subtotal: String,
    #[schema(example = "1000.00")]
    pub discount_total: String,
    #[schema(example = "2500.00")]
    pub shipping_total: String,
    #[schema(example = "862.50")]
    pub tax_total: String,
    #[schema(example = "12362.50")]
    pub total: String,
    pub taxes_included: bool,
    pub promotions: Vec<AppliedPromotionResponse>,
    pub shipping: Option<ShippingChargeResponse>,
    /// Every shipping rate that takes the cart, cheapest first.
    pub shipping_options: Vec<ShippingOptionResponse>,
    /// The codes that do not apply, and why (a create with them is a 422).
    pub rejected_codes: Vec<RejectedCodeResponse>,
    /// Pricing providers that could not be asked: the shop's own rules priced their part.
    pub pricing_fallbacks: Vec<FallbackResponse>,
}

/// A promotion code that does not apply to the cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedCodeResponse {
    #[schema(example = "WELCOME10")]
    pub code: String,
    #[schema(
        example = "this promotion needs a subtotal of at least ₦20,000.00 (the order's is ₦12,000.00)"
    )]
    pub reason: String,
}

/// Price a cart without creating an order.
///
/// Takes the body of `POST /v1/orders` and answers what the order would
/// cost: each line's discount, tax and total, the shipping, the totals,
/// and the shipping rates to choose from. Nothing is written.
#[utoipa::path(
    post, path = "/v1/orders/preview", tag = "orders",
    request_body = CreateOrderRequest,
    responses(
        (status = 200, description = "The cart, priced", body = PreviewResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not create orders", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (as a create would say)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn preview_order(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<CreateOrderRequest>,
) -> Result<axum::Json<PreviewResponse>, ApiError> {
    principal.require(Permission::WriteOrders, "price orders")?;
    let TakenIn {
        mut draft,
        ask,
        settings,
        ..
    } = take_in(&state, &principal, body.value, true).await?;
    let quote =
        crate::pricing::price_draft(&state, principal.tenant_id, &settings, &mut draft, &ask)
            .await?;
    let c = draft.currency;
    let totals = pricing::price_drafts(&draft.lines, &draft.pricing).ok_or_else(|| {
        ApiError::Validation(
            FieldError::new("items", "the order total is larger than ordo accepts").into(),
        )
    })?;
    let mut basis = draft.pricing.clone();
    for (p, amount) in basis.promotions.iter_mut().zip(&totals.promotions) {
        p.amount = *amount;
    }
    if let Some(s) = &mut basis.shipping {
        s.tax = totals.shipping_tax;
    }
    let included = basis.taxes_included;
    Ok(axum::Json(PreviewResponse {
        currency: c.code().to_string(),
        items: draft
            .lines
            .iter()
            .zip(&totals.lines)
            .map(|(l, a)| PreviewLine {
                sku: l.sku.as_ref().map(|s| s.as_str().to_string()),
                name: l.name.clone(),
                quantity: l.quantity,
                unit_price: c.format_amount(l.unit_price),
                line_total: c.format_amount(a.line_total),
                discount: c.format_amount(a.discount),
                tax_rate: l.tax_rate.to_string(),
                tax: c.format_amount(a.tax),
                total: c.format_amount(a.total),
            })
            .collect(),
        subtotal: c.format_amount(totals.subtotal),
        discount_total: c.format_amount(totals.discount_total),
        shipping_total: c.format_amount(totals.shipping_total),
        tax_total: c.format_amount(totals.tax_total),
        total: c.format_amount(totals.total),
        taxes_included: included,
        promotions: basis
            .promotions
            .iter()
            .map(|p| AppliedPromotionResponse::of(p, c))
            .collect(),
        shipping: basis
            .shipping
            .as_ref()
            .map(|s| ShippingChargeResponse::of(s, c)),
        shipping_options: quote
            .shipping_options
            .iter()
            .map(|o| ShippingOptionResponse {
                name: o.name.clone(),
                amount: c.format_amount(o.amount),
            })
            .collect(),
        rejected_codes: quote
            .rejected
            .iter()
            .map(|r| RejectedCodeResponse {
                code: r.code.to_string(),
                reason: r.reason.to_string(),
            })
            .collect(),
        pricing_fallbacks: FallbackResponse::all(&basis),
    }))
}
