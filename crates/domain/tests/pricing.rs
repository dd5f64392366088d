//! Pricing: promotions, taxes and shipping, by example and by property.
//! Whatever the cart and the rules, an order's lines add up exactly to
//! its totals, no amount is negative, and tax is what its definition says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ordo_domain::contact::AddressText;
use ordo_domain::pricing::{
    self, Band, Cart, Code, Customer, Discount, NotApplicable, Promotion, Quote, Rate, Rules,
    ShippingBasis, ShippingRate, TaxClass, TaxRule, TaxSettings, TaxSource,
};
use ordo_domain::{
    Actor, Address, Buyer, CancelItems, Channel, Currency, ExternalIds, LineDraft, NewOrder, Order,
    OrderDraft, OrderPatch, OrderReference, PromotionId, Sku, TenantId, Timestamp,
};
use proptest::prelude::*;

fn cur(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

fn rate(text: &str) -> Rate {
    Rate::parse(text).unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_760_000_000_000)
}

fn line(sku: &str, quantity: u32, unit_price: i64) -> LineDraft {
    LineDraft {
        sku: Some(Sku::parse(sku).unwrap()),
        name: sku.to_string(),
        description: None,
        quantity,
        unit_price,
        attributes: BTreeMap::new(),
        product_id: None,
        catalog_price: None,
        instances: Vec::new(),
        tax_class: None,
        weight_grams: 0,
        tax_rate: Rate::ZERO,
    }
}

fn classed(mut l: LineDraft, class: &str, grams: u32) -> LineDraft {
    l.tax_class = Some(TaxClass::parse(class).unwrap());
    l.weight_grams = grams;
    l
}

fn address(country: &str, region: Option<&str>) -> Address {
    Address::parse(AddressText {
        line1: "12 Allen Avenue",
        city: "Ikeja",
        region,
        country,
        ..AddressText::default()
    })
    .unwrap()
}

fn promotion(name: &str, code: Option<&str>, discount: Discount) -> Promotion {
    Promotion {
        code: code.map(|c| Code::parse(c).unwrap()),
        ..Promotion::new(name, discount, now())
    }
}

fn vat(country: Option<&str>, region: Option<&str>, class: &str, r: &str) -> TaxRule {
    TaxRule {
        name: "VAT".into(),
        country: country.map(|c| ordo_domain::CountryCode::parse(c).unwrap()),
        region: region.map(str::to_string),
        class: TaxClass::parse(class).unwrap(),
        rate: rate(r),
    }
}

fn flat(name: &str, currency: &str, amount: i64) -> ShippingRate {
    ShippingRate {
        name: name.into(),
        currency: cur(currency),
        countries: Vec::new(),
        basis: ShippingBasis::Flat,
        bands: vec![Band { limit: 0, amount }],
        free_above: None,
    }
}

struct Setup {
    currency: Currency,
    tax: TaxSettings,
    shipping: Vec<ShippingRate>,
    promotions: Vec<Promotion>,
    buyer_uses: Option<BTreeMap<PromotionId, u32>>,
    customer: Option<Customer>,
}

impl Setup {
    fn new(currency: &str) -> Setup {
        Setup {
            currency: cur(currency),
            tax: TaxSettings::default(),
            shipping: Vec::new(),
            promotions: Vec::new(),
            buyer_uses: Some(BTreeMap::new()),
            customer: None,
        }
    }

    fn quote(&self, lines: &[LineDraft], to: Option<&Address>, codes: &[&str]) -> Quote {
        let codes: Vec<Code> = codes.iter().map(|c| Code::parse(c).unwrap()).collect();
        pricing::quote(
            &Cart {
                currency: self.currency,
                lines,
                shipping_address: to,
                billing_address: None,
                codes: &codes,
                shipping_method: None,
            },
            &Rules {
                tax: TaxSource::Rules(&self.tax),
                shipping: &self.shipping,
                promotions: &self.promotions,
                buyer_uses: self.buyer_uses.as_ref(),
                customer: self.customer.as_ref(),
                now: now(),
                code_limits: true,
            },
        )
    }

    /// An order of `lines` priced by the setup.
    fn order(&self, mut lines: Vec<LineDraft>, to: Option<Address>, codes: &[&str]) -> Order {
        let quote = self.quote(&lines, to.as_ref(), codes);
        let pricing = quote.apply(&mut lines);
        Order::create(
            OrderDraft {
                currency: self.currency,
                buyer: Buyer::parse(Some("Ada"), None, None, Some("wa_2348012345678")).unwrap(),
                lines,
                shipping_address: to,
                billing_address: None,
                notes: None,
                external_ids: ExternalIds::new(),
                channel: Channel::Api,
                pricing,
            },
            NewOrder {
                tenant_id: TenantId::new(),
                reference: OrderReference::parse("ORD-7K3Q-X2MB").unwrap(),
                created_by: Actor::system(),
                now: now(),
            },
        )
        .unwrap()
        .0
    }
}

/// Every sum the order shows is the exact sum of its parts, no amount is
/// negative, and each tax is its definition rounded half up.
fn assert_adds_up(o: &Order) {
    let included = o.pricing.taxes_included;
    let shipping_tax = o.pricing.shipping.as_ref().map_or(0, |s| s.tax);
    assert_eq!(
        o.subtotal,
        o.lines.iter().map(|l| l.line_total).sum::<i64>(),
        "subtotal"
    );
    assert_eq!(
        o.discount_total,
        o.lines.iter().map(|l| l.discount).sum::<i64>(),
        "discounts by line"
    );
    assert_eq!(
        o.discount_total,
        o.pricing.promotions.iter().map(|p| p.amount).sum::<i64>(),
        "discounts by promotion"
    );
    assert_eq!(
        o.tax_total,
        o.lines.iter().map(|l| l.tax).sum::<i64>() + shipping_tax,
        "tax"
    );
    let lines: i64 = o.lines.iter().map(|l| l.total(included)).sum();
    let shipping = o.shipping_total + if included { 0 } else { shipping_tax };
    assert_eq!(o.total, lines + shipping, "total is the lines and shipping");
    let on_top = if included { 0 } else { o.tax_total };
    assert_eq!(
        o.total,
        o.subtotal - o.discount_total + o.shipping_total + on_top,
        "total from the totals"
    );
    for l in &o.lines {
        assert!(l.discount >= 0 && l.discount <= l.line_total, "{l:?}");
        assert!(l.tax >= 0 && l.total(included) >= 0, "{l:?}");
        let net = i128::from(l.line_total - l.discount);
        assert_rounded(l.tax, net, l.tax_rate, included);
    }
    if let Some(s) = &o.pricing.shipping {
        assert!(s.amount >= 0);
        assert_rounded(s.tax, i128::from(s.amount), s.tax_rate, included);
    }
    for a in [
        o.subtotal,
        o.discount_total,
        o.shipping_total,
        o.tax_total,
        o.total,
    ] {
        assert!(a >= 0);
    }
}

/// `tax` is `amount × r` (exclusive) or `amount × r / (1 + r)` (inclusive)
/// rounded half up: within half a minor unit, and a half rounds up.
fn assert_rounded(tax: i64, amount: i128, r: Rate, included: bool) {
    let ppm = i128::from(r.ppm());
    let d = if included { 1_000_000 + ppm } else { 1_000_000 };
    let exact = amount * ppm; // tax × d, exactly
    let diff = i128::from(tax) * d - exact;
    assert!(
        -d < 2 * diff + 1 && 2 * diff <= d,
        "tax {tax} on {amount} at {r:?} (included: {included})"
    );
}

#[test]
fn nigerian_vat_on_top_with_a_code_and_delivery() {
    let mut s = Setup::new("NGN");
    s.tax.rules.push(vat(Some("NG"), None, "standard", "7.5"));
    s.tax.shipping_class = Some(TaxClass::standard());
    s.shipping.push(flat("Lagos delivery", "NGN", 250_000));
    s.promotions.push(promotion(
        "Ten off",
        Some("TEN"),
        Discount::Percentage(rate("10")),
    ));
    let o = s.order(
        vec![line("DRESS", 2, 1_500_000), line("SCARF", 1, 333_333)],
        Some(address("NG", Some("Lagos"))),
        &["ten"],
    );
    assert_adds_up(&o);
    assert_eq!(o.subtotal, 3_333_333);
    // 10 % of 33,333.33 is 3,333.3333 → 3,333.33, spread 30,000 : 3,333.33.
    assert_eq!(o.discount_total, 333_333);
    assert_eq!(
        o.lines.iter().map(|l| l.discount).collect::<Vec<_>>(),
        vec![300_000, 33_333]
    );
    // 7.5 % of 27,000.00 = 2,025.00; of 3,000.00 = 225.00; of 2,500.00 = 187.50.
    assert_eq!(
        o.lines.iter().map(|l| l.tax).collect::<Vec<_>>(),
        vec![202_500, 22_500]
    );
    assert_eq!(o.shipping_total, 250_000);
    assert_eq!(o.tax_total, 202_500 + 22_500 + 18_750);
    assert_eq!(o.total, 3_000_000 + 250_000 + 243_750);
    assert_eq!(
        o.pricing.promotions[0].code.as_ref().unwrap().as_str(),
        "TEN"
    );
}

#[test]
fn prices_that_include_tax_contain_it_and_a_fixed_discount_is_spread_exactly() {
    let mut s = Setup::new("GBP");
    s.tax.prices_include_tax = true;
    s.tax.rules.push(vat(Some("GB"), None, "standard", "20"));
    s.tax.rules.push(vat(Some("GB"), None, "zero", "0"));
    s.promotions
        .push(promotion("Fiver", None, Discount::Fixed(500)));
    let o = s.order(
        vec![
            line("A", 1, 1_000),
            line("B", 1, 1_000),
            classed(line("BOOK", 1, 1_000), "zero", 300),
        ],
        Some(address("GB", None)),
        &[],
    );
    assert_adds_up(&o);
    // £5 over three equal lines: 1.67, 1.67, 1.66 (largest remainder, ties to the first).
    assert_eq!(
        o.lines.iter().map(|l| l.discount).collect::<Vec<_>>(),
        vec![167, 167, 166]
    );
    // 20 % VAT inside £8.33 is £1.388… → £1.39; the book pays none.
    assert_eq!(
        o.lines.iter().map(|l| l.tax).collect::<Vec<_>>(),
        vec![139, 139, 0]
    );
    assert_eq!(o.total, 2_500, "inclusive: the tax is inside the total");
    assert_eq!(o.tax_total, 278);
}

#[test]
fn the_rule_for_the_region_beats_the_country_which_beats_everywhere() {
    let mut s = Setup::new("USD");
    s.tax.rules.push(vat(None, None, "standard", "5"));
    s.tax.rules.push(vat(Some("US"), None, "standard", "6"));
    s.tax
        .rules
        .push(vat(Some("US"), Some("CA"), "standard", "7.25"));
    let lines = [line("A", 1, 10_000)];
    let at = |s: &Setup, to: Option<Address>| s.quote(&lines, to.as_ref(), &[]).tax_rates[0];
    assert_eq!(at(&s, Some(address("US", Some("ca")))), rate("7.25"));
    assert_eq!(at(&s, Some(address("US", Some("NY")))), rate("6"));
    assert_eq!(at(&s, Some(address("NG", None))), rate("5"));
    assert_eq!(
        at(&s, None),
        rate("5"),
        "no address: the rule for everywhere"
    );
    s.customer = Some(Customer { tax_exempt: true });
    assert_eq!(at(&s, Some(address("US", None))), Rate::ZERO, "tax exempt");
}

#[test]
fn codes_that_do_not_apply_say_why() {
    let mut s = Setup::new("NGN");
    let mut add = |code: &str, change: &dyn Fn(&mut Promotion)| {
        let mut p = promotion(code, Some(code), Discount::Percentage(rate("5")));
        change(&mut p);
        s.promotions.push(p);
    };
    add("OFF", &|p| p.active = false);
    add("LATER", &|p| {
        p.starts_at = Some(Timestamp::from_unix_millis(1_800_000_000_000))
    });
    add("GONE", &|p| p.ends_at = Some(now()));
    add("USD", &|p| p.currency = Some(cur("USD")));
    add("BIG", &|p| p.min_subtotal = Some(10_000_000));
    add("SHOES", &|p| p.skus = vec![Sku::parse("SHOE").unwrap()]);
    add("FULL", &|p| {
        p.usage_limit = Some(3);
        p.uses = 3
    });
    add("ONCE", &|p| p.usage_limit_per_buyer = Some(1));
    add("OK", &|_| {});
    let once = s.promotions[7].id;
    s.buyer_uses = Some(BTreeMap::from([(once, 1)]));
    let lines = [line("DRESS", 1, 1_000_000)];
    let reasons = |codes: &[&str]| -> Vec<(String, NotApplicable)> {
        s.quote(&lines, None, codes)
            .rejected
            .into_iter()
            .map(|r| (r.code.to_string(), r.reason))
            .collect()
    };
    let first = reasons(&["off", "later", "gone", "usd", "big"]);
    assert!(matches!(first[0].1, NotApplicable::Inactive));
    assert!(matches!(first[1].1, NotApplicable::NotStarted(_)));
    assert!(matches!(first[2].1, NotApplicable::Ended(_)));
    assert!(matches!(first[3].1, NotApplicable::Currency(_)));
    assert_eq!(
        first[4].1.to_string(),
        "this promotion needs a subtotal of at least ₦100,000.00 (the order's is ₦10,000.00)"
    );
    let second = reasons(&["shoes", "full", "once", "nope", "ok"]);
    assert!(matches!(second[0].1, NotApplicable::NoItems), "{second:?}");
    assert!(matches!(second[1].1, NotApplicable::UsedUp(3)));
    assert!(matches!(second[2].1, NotApplicable::UsedUpByBuyer(1)));
    assert!(matches!(second[3].1, NotApplicable::Unknown));
    assert_eq!(second.len(), 4, "OK applies");
    assert_eq!(second[3].0, "NOPE", "codes are shown upper case");
    let q = s.quote(&lines, None, &["ok", "OK"]);
    assert!(matches!(q.rejected[0].reason, NotApplicable::Repeated));
    assert_eq!(q.basis.promotions.len(), 1, "OK applies once");
    // Six codes: the sixth is one too many.
    let q = s.quote(&lines, None, &["A1", "A2", "A3", "A4", "A5", "A6"]);
    assert!(matches!(q.rejected[5].reason, NotApplicable::TooMany));
    // A per-buyer limit needs a buyer that can be told apart.
    s.buyer_uses = None;
    let q = s.quote(&lines, None, &["once"]);
    assert!(matches!(q.rejected[0].reason, NotApplicable::NoBuyer));
}

#[test]
fn automatic_promotions_apply_by_themselves_and_stack_before_codes() {
    let mut s = Setup::new("NGN");
    let mut shoes = promotion("Shoe week", None, Discount::Percentage(rate("50")));
    shoes.skus = vec![Sku::parse("SHOE").unwrap()];
    s.promotions.push(shoes);
    let mut big = promotion("Big spender", None, Discount::Fixed(100_000));
    big.min_subtotal = Some(5_000_000);
    s.promotions.push(big);
    s.promotions
        .push(promotion("Code", Some("X"), Discount::Fixed(1_000)));
    let o = s.order(
        vec![line("SHOE", 1, 2_000_000), line("HAT", 1, 1_000_000)],
        None,
        &["x"],
    );
    assert_adds_up(&o);
    let names: Vec<&str> = o
        .pricing
        .promotions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["Shoe week", "Code"],
        "below the big spender's minimum"
    );
    assert_eq!(
        o.lines[1].discount, 500,
        "the code on what is left: half on the hat"
    );
    assert_eq!(o.lines[0].discount, 1_000_000 + 500);
}

#[test]
fn shipping_takes_the_cheapest_rate_for_the_place_weight_and_subtotal() {
    let mut s = Setup::new("NGN");
    let mut lagos = flat("Lagos", "NGN", 150_000);
    lagos.countries = vec![ordo_domain::CountryCode::parse("NG").unwrap()];
    lagos.free_above = Some(5_000_000);
    s.shipping.push(lagos);
    s.shipping.push(ShippingRate {
        name: "By weight".into(),
        currency: cur("NGN"),
        countries: Vec::new(),
        basis: ShippingBasis::Weight,
        bands: vec![
            Band {
                limit: 1_000,
                amount: 100_000,
            },
            Band {
                limit: 5_000,
                amount: 300_000,
            },
        ],
        free_above: None,
    });
    s.shipping.push(ShippingRate {
        name: "By subtotal".into(),
        currency: cur("NGN"),
        countries: Vec::new(),
        basis: ShippingBasis::Subtotal,
        bands: vec![
            Band {
                limit: 0,
                amount: 400_000,
            },
            Band {
                limit: 2_000_000,
                amount: 200_000,
            },
        ],
        free_above: None,
    });
    s.shipping.push(flat("Dollars", "USD", 1));
    let ng = address("NG", None);
    let gh = address("GH", None);
    let light = [classed(line("A", 2, 1_000_000), "standard", 400)];
    let heavy = [classed(line("A", 2, 1_000_000), "standard", 2_000)];
    let options = |lines: &[LineDraft], to: &Address| -> Vec<(String, i64)> {
        s.quote(lines, Some(to), &[])
            .shipping_options
            .into_iter()
            .map(|o| (o.name, o.amount))
            .collect()
    };
    assert_eq!(
        options(&light, &ng),
        [
            ("By weight".to_string(), 100_000),
            ("Lagos".into(), 150_000),
            ("By subtotal".into(), 200_000)
        ]
    );
    assert_eq!(
        options(&heavy, &gh),
        [
            ("By subtotal".to_string(), 200_000),
            ("By weight".into(), 300_000)
        ],
        "Lagos ships only in Nigeria"
    );
    let past_free = [line("A", 5, 1_000_000)];
    assert_eq!(options(&past_free, &ng)[0], ("Lagos".to_string(), 0));
    assert_eq!(
        s.quote(&light, None, &[]).basis.shipping,
        None,
        "no address, no shipping"
    );
    let o = s.order(light.to_vec(), Some(ng), &[]);
    assert_eq!(o.shipping_total, 100_000);
    assert_adds_up(&o);
}

#[test]
fn an_edit_keeps_the_basis_and_a_reprice_replaces_it() {
    let mut s = Setup::new("NGN");
    s.tax.rules.push(vat(None, None, "standard", "7.5"));
    s.promotions.push(promotion(
        "Ten",
        Some("TEN"),
        Discount::Percentage(rate("10")),
    ));
    let mut o = s.order(vec![line("A", 1, 100_000)], None, &["TEN"]);
    // The shop drops the promotion and raises VAT; the order keeps its own.
    s.promotions.clear();
    s.tax.rules[0].rate = rate("10");
    let mut lines = vec![line("A", 1, 100_000), line("B", 2, 50_000)];
    let quote = s.quote(&lines, None, &["TEN"]);
    let basis = quote.apply(&mut lines);
    let edited = o.edit(
        OrderPatch {
            lines: Some(lines.clone()),
            ..OrderPatch::default()
        },
        now(),
    );
    assert!(edited.unwrap().is_some());
    assert_adds_up(&o);
    assert_eq!(o.discount_total, 20_000, "10 % of everything, still");
    assert_eq!(
        o.lines[0].tax_rate,
        rate("7.5"),
        "the kept line keeps its rate"
    );
    assert_eq!(o.lines[1].tax_rate, rate("10"), "a new line takes today's");
    let edited = o.edit(
        OrderPatch {
            lines: Some(lines),
            reprice: Some(basis),
            ..OrderPatch::default()
        },
        now(),
    );
    let event = edited.unwrap().unwrap();
    assert!(event.data["changes"]["pricing"].is_object());
    assert_adds_up(&o);
    assert_eq!(o.discount_total, 0);
    assert_eq!(o.tax_total, 20_000);
}

// ------------------------------------------------------------- properties

fn arb_discount() -> impl Strategy<Value = Discount> {
    prop_oneof![
        (0u32..=1_000_000).prop_map(|ppm| Discount::Percentage(Rate::from_ppm(ppm).unwrap())),
        (0i64..5_000_000).prop_map(Discount::Fixed),
    ]
}

const SKUS: [&str; 4] = ["A", "B", "C", "D"];

fn arb_promotion() -> impl Strategy<Value = Promotion> {
    (
        arb_discount(),
        proptest::collection::vec(0usize..4, 0..3),
        proptest::option::of(0i64..2_000_000),
        any::<bool>(),
    )
        .prop_map(|(discount, skus, min, coded)| {
            let mut p = promotion("P", None, discount);
            p.skus = skus.iter().map(|i| Sku::parse(SKUS[*i]).unwrap()).collect();
            p.min_subtotal = min;
            if coded {
                p.code = Some(Code::parse(&format!("C{}", p.id.ulid())).unwrap());
            }
            p
        })
}

fn arb_line() -> impl Strategy<Value = LineDraft> {
    (0usize..4, 1u32..50, 0i64..3_000_000, 0usize..3, 0u32..5_000).prop_map(
        |(sku, q, price, class, grams)| {
            let class = ["standard", "reduced", "zero"][class];
            classed(line(SKUS[sku], q, price), class, grams)
        },
    )
}

fn arb_tax() -> impl Strategy<Value = TaxSettings> {
    (
        any::<bool>(),
        proptest::collection::vec((0usize..3, 0u32..=300_000), 0..4),
        any::<bool>(),
    )
        .prop_map(|(included, rules, ship)| TaxSettings {
            prices_include_tax: included,
            rules: rules
                .into_iter()
                .map(|(class, ppm)| TaxRule {
                    name: "Tax".into(),
                    country: None,
                    region: None,
                    class: TaxClass::parse(["standard", "reduced", "zero"][class]).unwrap(),
                    rate: Rate::from_ppm(ppm).unwrap(),
                })
                .collect(),
            shipping_class: ship.then(TaxClass::standard),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lines_always_add_up_to_the_totals(
        currency in prop_oneof![Just("NGN"), Just("JPY"), Just("KWD"), Just("USD")],
        lines in proptest::collection::vec(arb_line(), 1..20),
        promotions in proptest::collection::vec(arb_promotion(), 0..4),
        tax in arb_tax(),
        shipping in proptest::option::of(0i64..1_000_000),
        keep in proptest::collection::vec(any::<bool>(), 20),
    ) {
        let mut s = Setup::new(currency);
        s.tax = tax;
        s.shipping = shipping.map(|a| flat("Ship", currency, a)).into_iter().collect();
        let codes: Vec<String> = promotions.iter().filter_map(|p| p.code.as_ref().map(|c| c.to_string())).collect();
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        s.promotions = promotions;
        let mut o = s.order(lines.clone(), Some(address("NG", None)), &codes);
        assert_adds_up(&o);
        // Units called off are priced again on the same basis, and the
        // total drops by no more than they cost.
        let mut called_off = o.clone();
        called_off.confirm(now()).unwrap();
        let asked: Vec<_> = called_off.lines.iter().zip(&keep)
            .filter(|(l, k)| **k && l.quantity > 1)
            .map(|(l, _)| (l.id, Some(l.quantity / 2)))
            .collect();
        if !asked.is_empty() {
            let before = called_off.total;
            let mut book = ordo_domain::StockBook::new(Vec::new(), Actor::system(), now());
            called_off
                .cancel_items(CancelItems { lines: Some(asked), reason: "out of stock".into() }, Actor::system(), &mut book, now())
                .unwrap();
            assert_adds_up(&called_off);
            assert!(called_off.total <= before);
        }
        // An edit keeping some lines is priced again on the same basis.
        let kept: Vec<LineDraft> = lines.iter().zip(&keep).filter(|(_, k)| **k).map(|(l, _)| l.clone()).collect();
        if !kept.is_empty() {
            o.edit(OrderPatch { lines: Some(kept), ..OrderPatch::default() }, now()).unwrap();
            assert_adds_up(&o);
        }
    }
}

#[test]
fn units_given_back_one_by_one_add_up_to_the_line() {
    let mut s = Setup::new("NGN");
    s.promotions
        .push(promotion("Hundred off", None, Discount::Fixed(100)));
    let o = s.order(vec![line("A", 3, 100)], None, &[]);
    let l = &o.lines[0];
    assert_eq!(l.total(false), 200);
    let one_by_one: Vec<i64> = (0..3).map(|after| l.value_of(1, after, false)).collect();
    assert_eq!(one_by_one, vec![67, 66, 67]);
    assert_eq!(
        one_by_one.iter().sum::<i64>(),
        200,
        "never a minor unit more"
    );
    assert_eq!(l.value_of(3, 0, false), 200);
    assert_eq!(l.value_of(2, 1, false), 133);
}
