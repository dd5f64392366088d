//! What pricing costs in the domain: a 20-line order with three
//! promotions (automatic, a code, one on chosen products), tax rules for
//! several countries and classes, and shipping rates. Target: ≤ 20 µs.
//!
//! `cargo bench -p ordo-domain --bench pricing`

use std::collections::BTreeMap;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ordo_domain::contact::AddressText;
use ordo_domain::pricing::{
    self, Band, Cart, Code, Discount, LineBase, Promotion, Rate, Rules, ShippingBasis,
    ShippingRate, TaxClass, TaxRule, TaxSettings, TaxSource,
};
use ordo_domain::{Address, CountryCode, Currency, LineDraft, Sku, Timestamp};

fn setup() -> (
    Vec<LineDraft>,
    Vec<Promotion>,
    TaxSettings,
    Vec<ShippingRate>,
) {
    let now = Timestamp::from_unix_millis(1_760_000_000_000);
    let classes = ["standard", "reduced", "zero"];
    let lines: Vec<LineDraft> = (0..20)
        .map(|i| LineDraft {
            sku: Sku::parse(&format!("SKU-{i}")).ok(),
            name: format!("Item {i}"),
            description: None,
            quantity: 1 + i % 4,
            unit_price: 150_000 + i64::from(i) * 12_345,
            attributes: BTreeMap::new(),
            product_id: None,
            catalog_price: None,
            instances: Vec::new(),
            tax_class: TaxClass::parse(classes[i as usize % 3]).ok(),
            weight_grams: 250 * (i + 1),
            tax_rate: Rate::ZERO,
        })
        .collect();
    let promotion = |name: &str, code: Option<&str>, discount: Discount, skus: &[&str]| Promotion {
        code: code.and_then(|c| Code::parse(c).ok()),
        skus: skus.iter().filter_map(|s| Sku::parse(s).ok()).collect(),
        min_subtotal: Some(100_000),
        starts_at: Some(Timestamp::from_unix_millis(1_700_000_000_000)),
        ends_at: Some(Timestamp::from_unix_millis(1_900_000_000_000)),
        usage_limit: Some(1_000),
        usage_limit_per_buyer: Some(1),
        uses: 10,
        ..Promotion::new(name, discount, now)
    };
    let rate = |t: &str| Rate::parse(t).unwrap_or_default();
    let promotions = vec![
        promotion("Weekend", None, Discount::Percentage(rate("5")), &[]),
        promotion("Code", Some("WELCOME10"), Discount::Fixed(250_000), &[]),
        promotion(
            "Shoes",
            Some("SHOES"),
            Discount::Percentage(rate("12.5")),
            &["SKU-1", "SKU-4", "SKU-7", "SKU-10"],
        ),
    ];
    let mut rules = Vec::new();
    for country in ["NG", "GH", "KE", "ZA", "GB"] {
        for (class, r) in [("standard", "7.5"), ("reduced", "5"), ("zero", "0")] {
            rules.push(TaxRule {
                name: "VAT".into(),
                country: CountryCode::parse(country).ok(),
                region: None,
                class: TaxClass::parse(class).unwrap_or_default(),
                rate: rate(r),
            });
        }
    }
    rules.push(TaxRule {
        name: "Lagos levy".into(),
        country: CountryCode::parse("NG").ok(),
        region: Some("Lagos".into()),
        class: TaxClass::standard(),
        rate: rate("8"),
    });
    let tax = TaxSettings {
        prices_include_tax: false,
        rules,
        shipping_class: Some(TaxClass::standard()),
    };
    let ngn = Currency::parse("NGN").ok();
    let shipping = ngn
        .into_iter()
        .flat_map(|c| {
            [
                ShippingRate {
                    name: "Flat".into(),
                    currency: c,
                    countries: Vec::new(),
                    basis: ShippingBasis::Flat,
                    bands: vec![Band {
                        limit: 0,
                        amount: 300_000,
                    }],
                    free_above: Some(50_000_000),
                },
                ShippingRate {
                    name: "By weight".into(),
                    currency: c,
                    countries: CountryCode::parse("NG").ok().into_iter().collect(),
                    basis: ShippingBasis::Weight,
                    bands: (1..10)
                        .map(|i| Band {
                            limit: i * 10_000,
                            amount: i * 50_000,
                        })
                        .collect(),
                    free_above: None,
                },
            ]
        })
        .collect();
    (lines, promotions, tax, shipping)
}

fn bench(c: &mut Criterion) {
    let (lines, promotions, tax, shipping) = setup();
    let Ok(address) = Address::parse(AddressText {
        line1: "12 Allen Avenue",
        city: "Ikeja",
        region: Some("Lagos"),
        country: "NG",
        ..AddressText::default()
    }) else {
        return;
    };
    let Ok(currency) = Currency::parse("NGN") else {
        return;
    };
    let codes: Vec<Code> = ["WELCOME10", "SHOES"]
        .iter()
        .filter_map(|c| Code::parse(c).ok())
        .collect();
    let uses = BTreeMap::new();
    let now = Timestamp::from_unix_millis(1_760_000_000_000);
    let applied = pricing::quote(
        &Cart {
            currency,
            lines: &lines,
            shipping_address: Some(&address),
            billing_address: None,
            codes: &codes,
            shipping_method: None,
        },
        &Rules {
            tax: TaxSource::Rules(&tax),
            shipping: &shipping,
            promotions: &promotions,
            buyer_uses: Some(&uses),
            customer: None,
            now,
            code_limits: false,
        },
    );
    println!(
        "the order: {} lines, {} promotions applied, shipping {:?}",
        lines.len(),
        applied.basis.promotions.len(),
        applied.basis.shipping.map(|s| s.name)
    );
    c.bench_function("price a 20-line order (3 promotions, tax, shipping)", |b| {
        b.iter(|| {
            let cart = Cart {
                currency,
                lines: black_box(&lines),
                shipping_address: Some(&address),
                billing_address: None,
                codes: &codes,
                shipping_method: None,
            };
            let rules = Rules {
                tax: TaxSource::Rules(&tax),
                shipping: &shipping,
                promotions: &promotions,
                buyer_uses: Some(&uses),
                customer: None,
                now,
                code_limits: false,
            };
            let quote = pricing::quote(&cart, &rules);
            let bases: Vec<LineBase<'_>> = lines
                .iter()
                .zip(&quote.tax_rates)
                .map(|(l, r)| LineBase {
                    sku: l.sku.as_ref(),
                    amount: l.unit_price * i64::from(l.quantity),
                    tax_rate: *r,
                })
                .collect();
            black_box(pricing::price(&bases, &quote.basis))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
