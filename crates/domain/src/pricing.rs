//! Pricing: what an order costs, line by line, so that its lines always
//! add up to the totals shown and charged.
//!
//! Pricing runs in two steps. [`quote`] decides, from the tenant's rules
//! at the time of the order, which promotions apply, which tax rate each
//! line and the shipping pay, and what shipping costs: a [`PriceBasis`]
//! kept on the order. [`price`] then turns a basis and the lines into
//! amounts. An edited order is priced again from the basis it kept (its
//! prices, promotions and rates stay those it was quoted), unless it is
//! asked to re-price, which quotes it again.
//!
//! The amounts, in minor units, never floating point:
//! - a line's `line_total` is `quantity × unit_price`, exactly;
//! - each promotion's amount is rounded once (half up) and spread over
//!   the lines it applies to in proportion to what they still cost, by
//!   largest remainder: the shares add up to the amount exactly, and no
//!   line is discounted below zero;
//! - tax is rounded per line, half up: prices exclusive of tax pay
//!   `round(net × rate)` on top; prices inclusive of tax contain
//!   `round(gross × rate / (1 + rate))`;
//! - the order's `total` is the exact sum of its lines' `total`s and the
//!   shipping (with its tax when prices exclude tax).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::contact::{Address, Buyer, CountryCode};
use crate::field::{FieldError, FieldErrors};
use crate::ids::PromotionId;
use crate::money::{self, Currency};
use crate::order::{text_newtype_serde, LineDraft, Sku};
use crate::timestamp::Timestamp;

/// The most promotion codes one order may carry.
pub const MAX_CODES: usize = 5;
/// The most tax rules, shipping rates and the bands of one rate a tenant keeps.
pub const MAX_TAX_RULES: usize = 500;
pub const MAX_SHIPPING_RATES: usize = 100;
pub const MAX_BANDS: usize = 50;
/// The most SKUs a promotion may name.
pub const MAX_PROMOTION_SKUS: usize = 500;

// ------------------------------------------------------------------ rates

/// A percentage, exactly: millionths of the whole (7.5 % is 75 000), from
/// 0 to 100 %.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rate(u32);

const WHOLE: i128 = 1_000_000;

impl Rate {
    pub const ZERO: Rate = Rate(0);
    pub const ACCEPTED: &'static str =
        "a percentage from 0 to 100 with up to 4 decimals, as a string, e.g. \"7.5\"";

    /// Parses a percentage written as a decimal string (`"7.5"`, `"20"`).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let invalid = || format!("{text:?} is not a percentage");
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || text.ends_with('.') {
            return Err(invalid());
        }
        if frac.len() > 4 {
            return Err(format!("{text:?} has more than 4 decimals"));
        }
        let whole: u32 = match whole.trim_start_matches('0') {
            "" => 0,
            w if w.len() > 3 => return Err(format!("{text:?} is more than 100")),
            w => w.parse().map_err(|_| invalid())?,
        };
        let mut micro = 0u32;
        for i in 0..4 {
            micro = micro * 10 + frac.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
        }
        let ppm = whole * 10_000 + micro;
        if ppm > 1_000_000 {
            return Err(format!("{text:?} is more than 100"));
        }
        Ok(Rate(ppm))
    }

    /// Parses the rate given for `field`.
    pub fn parse_field(field: &str, text: &str) -> Result<Rate, FieldError> {
        Rate::parse(text).map_err(|reason| {
            FieldError::new(field, reason)
                .value(text)
                .accepted(Self::ACCEPTED)
        })
    }

    /// The rate in millionths (7.5 % is 75 000).
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// The rate of `ppm` millionths, if at most the whole.
    pub fn from_ppm(ppm: u32) -> Option<Rate> {
        (ppm <= 1_000_000).then_some(Rate(ppm))
    }

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    /// `amount × rate`, rounded half up (`amount` is never negative).
    pub fn of(self, amount: i64) -> i64 {
        div_round(i128::from(amount) * i128::from(self.0), WHOLE)
    }

    /// The tax inside a tax-inclusive `amount`: `amount × rate / (1 + rate)`,
    /// rounded half up.
    pub fn within(self, amount: i64) -> i64 {
        div_round(
            i128::from(amount) * i128::from(self.0),
            WHOLE + i128::from(self.0),
        )
    }
}

/// `n / d` rounded half up, for `n ≥ 0`, `d > 0`.
fn div_round(n: i128, d: i128) -> i64 {
    i64::try_from((2 * n + d) / (2 * d)).unwrap_or(i64::MAX)
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let frac = self.0 % 10_000;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let text = format!("{frac:04}");
        write!(f, "{whole}.{}", text.trim_end_matches('0'))
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}%")
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Rate::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Splits `amount` over `weights` in proportion to them, by largest
/// remainder: the shares add up to `amount` exactly, and none is more than
/// its weight while `amount` is at most their sum. Equal remainders go to
/// the earlier weight. Weights and amount are never negative.
pub fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum == 0 || amount == 0 {
        return vec![0; weights.len()];
    }
    let amount = i128::from(amount);
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: i128 = 0;
    for (i, w) in weights.iter().enumerate() {
        let exact = amount * i128::from(*w);
        let share = exact / sum;
        given += share;
        shares.push(i64::try_from(share).unwrap_or(i64::MAX));
        remainders.push((exact % sum, i));
    }
    // Largest remainder first; equal ones in line order.
    remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = usize::try_from(amount - given).unwrap_or(0);
    for &(_, i) in remainders.iter().take(left) {
        shares[i] += 1;
    }
    shares
}

// ------------------------------------------------------------- tax classes

/// What kind of tax a product pays (`standard`, `reduced`, `zero`, …): a
/// lower-case name. Products without one are `standard`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaxClass(String);

impl TaxClass {
    pub const STANDARD: &'static str = "standard";
    pub const ACCEPTED: &'static str =
        "1 to 40 lower-case letters, digits, '-' or '_', e.g. standard or reduced";

    pub fn standard() -> TaxClass {
        TaxClass(Self::STANDARD.to_string())
    }

    pub fn parse(text: &str) -> Result<TaxClass, String> {
        let ok = (1..=40).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(TaxClass(text.to_string()))
        } else {
            Err("not a tax class".to_string())
        }
    }

    pub fn parse_field(field: &str, text: &str) -> Result<TaxClass, FieldError> {
        TaxClass::parse(text).map_err(|reason| {
            FieldError::new(field, reason)
                .value(text)
                .accepted(Self::ACCEPTED)
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_standard(&self) -> bool {
        self.0 == Self::STANDARD
    }
}

impl Default for TaxClass {
    fn default() -> Self {
        TaxClass::standard()
    }
}

text_newtype_serde!(TaxClass);

// -------------------------------------------------------------------- tax

/// One tax rate: for a class of products, in a country (and region), or
/// everywhere when it names no country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRule {
    /// What the tax is called on receipts (`VAT`, `GST`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// A region of `country` (a state, a province), compared without regard to case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "TaxClass::is_standard")]
    pub class: TaxClass,
    pub rate: Rate,
}

impl TaxRule {
    /// How closely the rule names `to`: 2 for its region, 1 for its
    /// country, 0 for a rule for everywhere; `None` when it does not apply.
    fn fit(&self, to: Option<(CountryCode, Option<&str>)>) -> Option<u8> {
        match (&self.country, &self.region, to) {
            (None, _, _) => Some(0),
            (Some(c), None, Some((country, _))) if *c == country => Some(1),
            (Some(c), Some(r), Some((country, Some(region))))
                if *c == country && r.eq_ignore_ascii_case(region.trim()) =>
            {
                Some(2)
            }
            _ => None,
        }
    }

    /// Checks the rule alone, as `at`: its name, and a region only with a
    /// country.
    pub fn check(&self, at: &str) -> FieldErrors {
        let mut errors = FieldErrors::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            errors.push(
                FieldError::new(format!("{at}.name"), "a tax needs a name")
                    .value(&self.name)
                    .accepted("1 to 100 characters, e.g. VAT"),
            );
        }
        if self.region.is_some() && self.country.is_none() {
            errors.push(
                FieldError::new(format!("{at}.region"), "a region needs its country")
                    .accepted("a country with the region"),
            );
        }
        let blank_or_long = |r: &&str| r.trim().is_empty() || r.chars().count() > 100;
        if let Some(r) = self.region.as_deref().filter(blank_or_long) {
            errors.push(
                FieldError::new(format!("{at}.region"), "not a region")
                    .value(r)
                    .accepted("1 to 100 characters, as addresses write it"),
            );
        }
        errors
    }
}

/// A tenant's taxes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaxSettings {
    /// Whether prices (catalog, lines, shipping) already contain their tax.
    pub prices_include_tax: bool,
    pub rules: Vec<TaxRule>,
    /// The class shipping is taxed as; untaxed when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_class: Option<TaxClass>,
}

impl TaxSettings {
    /// The rule for `class` delivered to `to`: the one naming the region,
    /// else the country, else everywhere; the first of equals.
    pub fn rule(
        &self,
        class: &TaxClass,
        to: Option<(CountryCode, Option<&str>)>,
    ) -> Option<&TaxRule> {
        let mut best: Option<(u8, &TaxRule)> = None;
        for rule in self.rules.iter().filter(|r| r.class == *class) {
            if let Some(fit) = rule.fit(to) {
                if best.is_none_or(|(b, _)| fit > b) {
                    best = Some((fit, rule));
                }
            }
        }
        best.map(|(_, r)| r)
    }

    /// Checks the rules: names, regions only with a country, no two rules
    /// for the same place and class.
    pub fn check(&self, field: &str) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        if self.rules.len() > MAX_TAX_RULES {
            errors.push(
                FieldError::new(format!("{field}.rules"), "too many tax rules")
                    .accepted(format!("at most {MAX_TAX_RULES}")),
            );
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("{field}.rules[{i}]");
            errors.extend(rule.check(&at));
            let same = self.rules[..i].iter().position(|o| {
                o.class == rule.class
                    && o.country == rule.country
                    && match (&o.region, &rule.region) {
                        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
                        (None, None) => true,
                        _ => false,
                    }
            });
            if let Some(j) = same {
                errors.push(
                    FieldError::new(at, "another rule is for the same place and class")
                        .accepted(format!("one rule per place and class (see rules[{j}])")),
                );
            }
        }
        errors.finish(|| ())
    }
}

/// Where an order's taxes and shipping are decided: its shipping address,
/// else its billing address.
pub fn destination<'a>(
    shipping: Option<&'a Address>,
    billing: Option<&'a Address>,
) -> Option<(CountryCode, Option<&'a str>)> {
    shipping
        .or(billing)
        .map(|a| (a.country, a.region.as_deref()))
}

// --------------------------------------------------------------- shipping

/// One band of a banded shipping price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    /// By weight: up to this many grams; by subtotal: from this amount
    /// (minor units).
    pub limit: i64,
    pub amount: i64,
}

str_enum!(
    /// How a shipping rate is priced.
    ShippingBasis {
        /// One amount for any order.
        Flat = "flat",
        /// By the order's weight: the first band whose `limit` (grams) it does not pass.
        Weight = "weight",
        /// By the order's subtotal after discounts: the last band whose `limit` it reaches.
        Subtotal = "subtotal",
    }
);

/// A way of shipping an order, and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRate {
    /// What the buyer chooses by (`Standard`, `Lagos express`).
    pub name: String,
    pub currency: Currency,
    /// Where it ships; everywhere when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<CountryCode>,
    pub basis: ShippingBasis,
    /// Flat: one band with the amount (its limit unused); weight: bands
    /// by ascending grams; subtotal: bands by ascending amount.
    pub bands: Vec<Band>,
    /// Free for orders whose subtotal after discounts reaches this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_above: Option<i64>,
}

impl ShippingRate {
    /// What the rate charges for an order of `weight` grams and `subtotal`
    /// (after discounts) delivered to `country`; `None` when it does not
    /// take the order.
    pub fn charge(
        &self,
        currency: Currency,
        country: Option<CountryCode>,
        weight: i64,
        subtotal: i64,
    ) -> Option<i64> {
        if self.currency != currency {
            return None;
        }
        if !self.countries.is_empty() && !country.is_some_and(|c| self.countries.contains(&c)) {
            return None;
        }
        let amount = match self.basis {
            ShippingBasis::Flat => self.bands.first()?.amount,
            ShippingBasis::Weight => self.bands.iter().find(|b| weight <= b.limit)?.amount,
            ShippingBasis::Subtotal => {
                self.bands
                    .iter()
                    .rev()
                    .find(|b| subtotal >= b.limit)?
                    .amount
            }
        };
        Some(match self.free_above {
            Some(free) if subtotal >= free => 0,
            _ => amount,
        })
    }

    /// Checks a rate: a name, bands in ascending order of their limits,
    /// amounts of at least zero.
    pub fn check(&self, field: &str) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            errors.push(
                FieldError::new(format!("{field}.name"), "a shipping rate needs a name")
                    .value(&self.name)
                    .accepted("1 to 100 characters"),
            );
        }
        let wanted = match self.basis {
            ShippingBasis::Flat => 1..=1,
            _ => 1..=MAX_BANDS,
        };
        if !wanted.contains(&self.bands.len()) {
            errors.push(
                FieldError::new(format!("{field}.bands"), "not the bands this basis needs")
                    .value(self.bands.len())
                    .accepted(match self.basis {
                        ShippingBasis::Flat => "a flat rate has one amount".to_string(),
                        _ => format!("1 to {MAX_BANDS} bands"),
                    }),
            );
        }
        for (i, band) in self.bands.iter().enumerate() {
            if !(0..=money::MAX_MINOR).contains(&band.amount) {
                errors.push(
                    FieldError::new(format!("{field}.bands[{i}].amount"), "not an amount")
                        .accepted("at least 0"),
                );
            }
            if i > 0 && band.limit <= self.bands[i - 1].limit && self.basis != ShippingBasis::Flat {
                errors.push(
                    FieldError::new(
                        format!("{field}.bands[{i}]"),
                        "bands go in ascending order of their limits",
                    )
                    .accepted("each band's limit above the one before"),
                );
            }
        }
        errors.finish(|| ())
    }
}

// ------------------------------------------------------------- promotions

/// What a promotion takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum Discount {
    /// A share of what the items it applies to cost.
    Percentage(Rate),
    /// An amount (minor units of the promotion's currency), at most what
    /// the items cost.
    Fixed(i64),
}

/// A promotion code as a buyer types it: letters, digits, `-` and `_`,
/// compared without regard to case (kept upper case).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(String);

impl Code {
    pub const ACCEPTED: &'static str = "1 to 40 letters, digits, '-' or '_', e.g. WELCOME10";

    pub fn parse(text: &str) -> Result<Code, String> {
        let text = text.trim();
        let ok = (1..=40).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Code(text.to_ascii_uppercase()))
        } else {
            Err("not a promotion code".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_newtype_serde!(Code);

/// A promotion: a code a buyer gives, or one that applies by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: PromotionId,
    pub name: String,
    /// `None`: applies by itself to every order it fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    pub discount: Discount,
    /// The products it applies to; the whole order when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<Sku>,
    /// The currency of its amounts (a fixed discount, a minimum): it then
    /// applies only to orders in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// The least subtotal (before discounts) of an order it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_subtotal: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// How many orders may use it in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<u32>,
    /// How many orders of one buyer may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit_per_buyer: Option<u32>,
    pub active: bool,
    /// Orders that used it (kept by the store, in the order's transaction).
    #[serde(default)]
    pub uses: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Why a promotion does not apply to an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    #[error("no promotion has this code")]
    Unknown,
    #[error("this code was given twice")]
    Repeated,
    #[error("at most {MAX_CODES} codes per order")]
    TooMany,
    #[error("this promotion is switched off")]
    Inactive,
    #[error("this promotion starts at {0}")]
    NotStarted(Timestamp),
    #[error("this promotion ended at {0}")]
    Ended(Timestamp),
    #[error("this promotion is for orders in {0}")]
    Currency(Currency),
    #[error("this promotion needs a subtotal of at least {needed} (the order's is {subtotal})")]
    BelowMinimum { needed: String, subtotal: String },
    #[error("none of the order's items is one this promotion applies to")]
    NoItems,
    #[error("this promotion has been used up ({0} orders)")]
    UsedUp(u32),
    #[error("this buyer has already used this promotion ({0} per buyer)")]
    UsedUpByBuyer(u32),
    #[error("this promotion is limited per buyer and the order's buyer has no phone, email or channel id")]
    NoBuyer,
    /// The promotion provider's own reason.
    #[error("{0}")]
    Provider(String),
}

impl Promotion {
    /// A promotion for every order in any currency, for all time, without
    /// limits (the caller narrows it).
    pub fn new(name: impl Into<String>, discount: Discount, now: Timestamp) -> Promotion {
        Promotion {
            id: PromotionId::new_at(now),
            name: name.into(),
            code: None,
            discount,
            skus: Vec::new(),
            currency: None,
            min_subtotal: None,
            starts_at: None,
            ends_at: None,
            usage_limit: None,
            usage_limit_per_buyer: None,
            active: true,
            uses: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether it applies to the cart: everything but the items it names
    /// and its limits, which [`quote`] checks with the lines and counts.
    fn fits(
        &self,
        currency: Currency,
        subtotal: i64,
        now: Timestamp,
        limits: bool,
    ) -> Result<(), NotApplicable> {
        if !self.active {
            return Err(NotApplicable::Inactive);
        }
        if let Some(start) = self.starts_at.filter(|s| now < *s) {
            return Err(NotApplicable::NotStarted(start));
        }
        if let Some(end) = self.ends_at.filter(|e| now >= *e) {
            return Err(NotApplicable::Ended(end));
        }
        if let Some(c) = self.currency.filter(|c| *c != currency) {
            return Err(NotApplicable::Currency(c));
        }
        if let Some(min) = self.min_subtotal.filter(|m| subtotal < *m) {
            return Err(NotApplicable::BelowMinimum {
                needed: currency.display_amount(min),
                subtotal: currency.display_amount(subtotal),
            });
        }
        match self.usage_limit.filter(|l| limits && self.uses >= *l) {
            Some(limit) => Err(NotApplicable::UsedUp(limit)),
            None => Ok(()),
        }
    }

    fn covers(&self, sku: Option<&Sku>) -> bool {
        self.skus.is_empty() || sku.is_some_and(|s| self.skus.contains(s))
    }
}

/// Who a buyer is for per-buyer limits: their phone, else their email,
/// else their channel id; `None` when the order has none of them.
pub fn buyer_key(buyer: &Buyer) -> Option<String> {
    if let Some(p) = &buyer.phone {
        return Some(p.as_str().to_string());
    }
    if let Some(e) = &buyer.email {
        return Some(e.as_str().to_ascii_lowercase());
    }
    buyer.channel_id.as_ref().map(|c| c.to_string())
}

/// Whether one more order may use `p` (as the store has it, with its
/// uses so far), by a buyer who used it `buyer_uses` times (`None`: a
/// buyer who cannot be told apart). What the store checks inside the
/// order's transaction, so limits hold however many orders race.
pub fn may_use(p: &Promotion, buyer_uses: Option<u32>) -> Result<(), NotApplicable> {
    if let Some(limit) = p.usage_limit.filter(|l| p.uses >= *l) {
        return Err(NotApplicable::UsedUp(limit));
    }
    match (p.usage_limit_per_buyer, buyer_uses) {
        (Some(_), None) => Err(NotApplicable::NoBuyer),
        (Some(limit), Some(n)) if n >= limit => Err(NotApplicable::UsedUpByBuyer(limit)),
        _ => Ok(()),
    }
}

// ------------------------------------------------------------------ basis

/// A promotion as an order applied it: what it was, and what it took off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPromotion {
    pub id: PromotionId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    pub discount: Discount,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<Sku>,
    /// What it takes off the order as it is now.
    pub amount: i64,
    /// Whether it counts towards the promotion's usage limits (those of
    /// an external promotion provider do not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub limited: bool,
    /// The promotion provider's id for it, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A pricing provider that could not be asked, so the tenant's own rules
/// priced its part of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// `price`, `promotion`, `tax` or `customer`.
    pub provider: String,
    pub error: String,
}

/// The shipping an order pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingCharge {
    /// The rate's name.
    pub name: String,
    /// As charged: with its tax when prices include tax.
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Rate::is_zero")]
    pub tax_rate: Rate,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tax: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What an order was priced by, kept with it: whether its prices include
/// tax, its promotions and its shipping. Each line keeps its tax rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriceBasis {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub taxes_included: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<AppliedPromotion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingCharge>,
    /// Providers that could not be asked (the tenant's own rules stood in).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<Fallback>,
}

impl PriceBasis {
    pub fn is_empty(&self) -> bool {
        *self == PriceBasis::default()
    }
}

/// What [`price`] needs of a line.
#[derive(Debug, Clone, Copy)]
pub struct LineBase<'a> {
    pub sku: Option<&'a Sku>,
    /// `quantity × unit_price`.
    pub amount: i64,
    pub tax_rate: Rate,
}

/// The amounts of one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineAmounts {
    /// `quantity × unit_price`.
    pub line_total: i64,
    pub discount: i64,
    pub tax: i64,
    /// What the buyer pays for the line: `amount − discount`, plus `tax`
    /// when prices exclude tax.
    pub total: i64,
}

/// An order's amounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub lines: Vec<LineAmounts>,
    /// What each of the basis's promotions takes off, in its order.
    pub promotions: Vec<i64>,
    pub shipping_tax: i64,
    /// Σ `quantity × unit_price`.
    pub subtotal: i64,
    pub discount_total: i64,
    pub shipping_total: i64,
    pub tax_total: i64,
    /// Σ line totals + shipping (+ its tax when prices exclude tax).
    pub total: i64,
}

/// The amounts of `lines` under `basis` (see the module's rules). `None`
/// only past [`money::MAX_MINOR`].
pub fn price(lines: &[LineBase<'_>], basis: &PriceBasis) -> Option<Totals> {
    let mut left: Vec<i64> = lines.iter().map(|l| l.amount.max(0)).collect();
    let mut discounts = vec![0i64; lines.len()];
    let mut promotions = Vec::with_capacity(basis.promotions.len());
    let mut weights = Vec::with_capacity(lines.len());
    for p in &basis.promotions {
        weights.clear();
        weights.extend(lines.iter().zip(&left).map(|(l, left)| {
            if p.skus.is_empty() || l.sku.is_some_and(|s| p.skus.contains(s)) {
                *left
            } else {
                0
            }
        }));
        let base = money::checked_sum(weights.iter().copied())?;
        let amount = match p.discount {
            Discount::Percentage(rate) => rate.of(base),
            Discount::Fixed(amount) => amount.clamp(0, base),
        };
        for (i, share) in allocate(amount, &weights).into_iter().enumerate() {
            left[i] -= share;
            discounts[i] += share;
        }
        promotions.push(amount);
    }
    let included = basis.taxes_included;
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let net = left[i];
        let tax = if included {
            l.tax_rate.within(net)
        } else {
            l.tax_rate.of(net)
        };
        out.push(LineAmounts {
            line_total: l.amount,
            discount: discounts[i],
            tax,
            total: if included { net } else { net.checked_add(tax)? },
        });
    }
    let (shipping, shipping_tax) = match &basis.shipping {
        Some(s) if included => (s.amount, s.tax_rate.within(s.amount)),
        Some(s) => (s.amount, s.tax_rate.of(s.amount)),
        None => (0, 0),
    };
    let line_totals = money::checked_sum(out.iter().map(|l| l.total))?;
    let total = money::checked_sum([
        line_totals,
        shipping,
        if included { 0 } else { shipping_tax },
    ])?;
    Some(Totals {
        subtotal: money::checked_sum(lines.iter().map(|l| l.amount))?,
        discount_total: money::checked_sum(discounts.iter().copied())?,
        shipping_total: shipping,
        tax_total: money::checked_sum(out.iter().map(|l| l.tax).chain([shipping_tax]))?,
        total,
        lines: out,
        promotions,
        shipping_tax,
    })
}

/// [`price`] for lines not yet on an order, each at its draft's tax
/// rate; `None` when an amount is past [`money::MAX_MINOR`].
pub fn price_drafts(lines: &[LineDraft], basis: &PriceBasis) -> Option<Totals> {
    let bases = lines
        .iter()
        .map(|l| {
            Some(LineBase {
                sku: l.sku.as_ref(),
                amount: money::line_total(l.quantity, l.unit_price)?,
                tax_rate: l.tax_rate,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    price(&bases, basis)
}

// ------------------------------------------------------------------ quote

/// What a buyer tells about themselves through a customer provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    /// Pays no tax (a reseller, a charity).
    pub tax_exempt: bool,
}

/// Where the tax rates come from: the tenant's rules, or a tax provider's
/// answer (a rate per line, and one for shipping).
#[derive(Debug, Clone, Copy)]
pub enum TaxSource<'a> {
    Rules(&'a TaxSettings),
    Given {
        prices_include_tax: bool,
        lines: &'a [Rate],
        shipping: Rate,
    },
}

/// The cart being priced.
#[derive(Debug, Clone, Copy)]
pub struct Cart<'a> {
    pub currency: Currency,
    pub lines: &'a [LineDraft],
    pub shipping_address: Option<&'a Address>,
    pub billing_address: Option<&'a Address>,
    /// The codes the buyer gave, in their order.
    pub codes: &'a [Code],
    /// The shipping rate the buyer chose, by name; the cheapest that
    /// takes the order otherwise.
    pub shipping_method: Option<&'a str>,
}

/// The tenant's rules at the time of the order.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub tax: TaxSource<'a>,
    pub shipping: &'a [ShippingRate],
    /// Automatic promotions and those of the cart's codes (others are
    /// ignored), with their uses so far.
    pub promotions: &'a [Promotion],
    /// How many orders of this buyer used each promotion (for per-buyer
    /// limits); `None` when the order's buyer cannot be told apart.
    pub buyer_uses: Option<&'a BTreeMap<PromotionId, u32>>,
    pub customer: Option<&'a Customer>,
    pub now: Timestamp,
    /// Whether the usage limits of codes are checked here (a preview) or
    /// left to the store, which checks them in the order's transaction
    /// (a create: a retried request must not be refused for the use its
    /// first attempt took). Automatic promotions' limits are always
    /// checked here, so a used-up one simply stops applying.
    pub code_limits: bool,
}

/// A code the order cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub code: Code,
    pub reason: NotApplicable,
}

/// A shipping rate that takes the order, and what it would cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingOption {
    pub name: String,
    pub amount: i64,
}

/// A cart priced by the tenant's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub basis: PriceBasis,
    /// Each line's tax rate.
    pub tax_rates: Vec<Rate>,
    /// Codes that do not apply.
    pub rejected: Vec<Rejected>,
    /// Every rate that takes the order, cheapest first.
    pub shipping_options: Vec<ShippingOption>,
    /// A chosen shipping method that no rate by that name takes.
    pub shipping_unavailable: bool,
}

impl Quote {
    /// Puts the quote on `lines`, in the cart's order: each line's tax
    /// rate; the basis is returned for the order or the edit.
    pub fn apply(self, lines: &mut [LineDraft]) -> PriceBasis {
        for (line, rate) in lines.iter_mut().zip(&self.tax_rates) {
            line.tax_rate = *rate;
        }
        self.basis
    }
}

/// Decides what the cart is priced by under `rules`: automatic promotions
/// first (in the order given), then the codes in the order the buyer gave
/// them, each on what earlier ones left; the tax rate of each line; the
/// shipping rate chosen, or the cheapest that takes the order (none when
/// the order has no shipping address).
pub fn quote(cart: &Cart<'_>, rules: &Rules<'_>) -> Quote {
    let currency = cart.currency;
    let amounts: Vec<i64> = cart
        .lines
        .iter()
        .map(|l| money::line_total(l.quantity, l.unit_price).unwrap_or(0))
        .collect();
    let subtotal = money::checked_sum(amounts.iter().copied()).unwrap_or(0);
    let mut rejected = Vec::new();
    let mut chosen: Vec<&Promotion> = Vec::new();
    let buyer_limit = |p: &Promotion| -> Result<(), NotApplicable> {
        match (p.usage_limit_per_buyer, rules.buyer_uses) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(NotApplicable::NoBuyer),
            (Some(limit), Some(uses)) if uses.get(&p.id).copied().unwrap_or(0) >= limit => {
                Err(NotApplicable::UsedUpByBuyer(limit))
            }
            _ => Ok(()),
        }
    };
    let has_items = |p: &Promotion| cart.lines.iter().any(|l| p.covers(l.sku.as_ref()));
    let check = |p: &Promotion| -> Result<(), NotApplicable> {
        let limits = rules.code_limits || p.code.is_none();
        p.fits(currency, subtotal, rules.now, limits)?;
        if !has_items(p) {
            return Err(NotApplicable::NoItems);
        }
        match buyer_limit(p) {
            Err(NotApplicable::UsedUpByBuyer(_)) if !limits => Ok(()),
            verdict => verdict,
        }
    };
    for p in rules.promotions.iter().filter(|p| p.code.is_none()) {
        if check(p).is_ok() {
            chosen.push(p);
        }
    }
    for (i, code) in cart.codes.iter().enumerate() {
        let verdict = if i >= MAX_CODES {
            Err(NotApplicable::TooMany)
        } else if cart.codes[..i].contains(code) {
            Err(NotApplicable::Repeated)
        } else {
            match rules
                .promotions
                .iter()
                .find(|p| p.code.as_ref() == Some(code))
            {
                None => Err(NotApplicable::Unknown),
                Some(p) => check(p).map(|()| p),
            }
        };
        match verdict {
            Ok(p) => chosen.push(p),
            Err(reason) => rejected.push(Rejected {
                code: code.clone(),
                reason,
            }),
        }
    }
    let promotions: Vec<AppliedPromotion> = chosen
        .into_iter()
        .map(|p| AppliedPromotion {
            id: p.id,
            name: p.name.clone(),
            code: p.code.clone(),
            discount: p.discount,
            skus: p.skus.clone(),
            amount: 0,
            limited: p.usage_limit.is_some() || p.usage_limit_per_buyer.is_some(),
            external_id: None,
        })
        .collect();

    let to = destination(cart.shipping_address, cart.billing_address);
    let exempt = rules.customer.is_some_and(|c| c.tax_exempt);
    let (taxes_included, tax_rates, shipping_rate) = match rules.tax {
        TaxSource::Rules(tax) => {
            let rate_of = |class: &TaxClass| tax.rule(class, to).map_or(Rate::ZERO, |r| r.rate);
            let rates = cart
                .lines
                .iter()
                .map(|l| rate_of(l.tax_class.as_ref().unwrap_or(&TaxClass::standard())))
                .collect();
            let shipping = tax.shipping_class.as_ref().map_or(Rate::ZERO, rate_of);
            (tax.prices_include_tax, rates, shipping)
        }
        TaxSource::Given {
            prices_include_tax,
            lines,
            shipping,
        } => (prices_include_tax, lines.to_vec(), shipping),
    };
    let (tax_rates, shipping_rate) = if exempt {
        (vec![Rate::ZERO; cart.lines.len()], Rate::ZERO)
    } else {
        (tax_rates, shipping_rate)
    };

    // Shipping is priced on the subtotal after discounts.
    let mut basis = PriceBasis {
        taxes_included,
        promotions,
        shipping: None,
        fallbacks: Vec::new(),
    };
    let discounted =
        price_drafts(cart.lines, &basis).map_or(subtotal, |t| subtotal - t.discount_total);
    let weight: i64 = cart
        .lines
        .iter()
        .map(|l| i64::from(l.weight_grams) * i64::from(l.quantity))
        .sum();
    let mut shipping_options: Vec<ShippingOption> = match cart.shipping_address {
        None => Vec::new(),
        Some(address) => rules
            .shipping
            .iter()
            .filter_map(|r| {
                let amount = r.charge(currency, Some(address.country), weight, discounted)?;
                Some(ShippingOption {
                    name: r.name.clone(),
                    amount,
                })
            })
            .collect(),
    };
    shipping_options.sort_by_key(|o| o.amount);
    let pick = match cart.shipping_method {
        Some(name) => shipping_options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name.trim())),
        None => shipping_options.first(),
    };
    basis.shipping = pick.map(|o| ShippingCharge {
        name: o.name.clone(),
        amount: o.amount,
        tax_rate: shipping_rate,
        tax: 0,
    });
    Quote {
        shipping_unavailable: cart.shipping_method.is_some() && pick.is_none(),
        basis,
        tax_rates,
        rejected,
        shipping_options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::parse(text).unwrap()
    }

    #[test]
    fn rates_are_exact_percentages() {
        assert_eq!(rate("7.5").ppm(), 75_000);
        assert_eq!(rate("100").ppm(), 1_000_000);
        assert_eq!(rate("0.0001").ppm(), 1);
        assert_eq!(rate("007.50").to_string(), "7.5");
        assert_eq!(rate("20").to_string(), "20");
        for bad in [
            "", "7.", ".5", "-1", "100.0001", "1e2", "7,5", "1.00001", "1000",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rounding_is_half_up_and_inclusive_tax_is_inside_the_price() {
        // 7.5 % of 1.00 is 0.075 → 0.08; of 0.06 is 0.0045 → 0.
        assert_eq!(rate("7.5").of(100), 8);
        assert_eq!(rate("7.5").of(6), 0);
        assert_eq!(rate("50").of(1), 1, "half goes up");
        // 20 % VAT inside 120.00 is 20.00; inside 1.00 it is 0.1666… → 0.17.
        assert_eq!(rate("20").within(12_000), 2_000);
        assert_eq!(rate("20").within(100), 17);
    }

    #[test]
    fn shares_add_up_and_follow_the_weights() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(10, &[0, 5, 5]), vec![0, 5, 5]);
        assert_eq!(allocate(0, &[3, 4]), vec![0, 0]);
        assert_eq!(allocate(7, &[]), Vec::<i64>::new());
        assert_eq!(
            allocate(5, &[1, 2, 7]),
            vec![1, 1, 3],
            "ties to the earlier"
        );
    }
}
