//! Pricing over HTTP: the settings' taxes and shipping rates, products'
//! tax classes and weights, the preview, and orders priced the same way
//! by every path that creates them.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::idempotency::post_with_key;

/// A Lagos shop: 7.5 % VAT on top (5 % on `reduced` goods, shipping
/// taxed as `standard`), delivery in Nigeria flat or by weight.
async fn lagos_shop() -> TestApp {
    lagos_setup(spawn_app().await).await
}

/// [`lagos_shop`]'s settings and catalog on `app`.
pub(crate) async fn lagos_setup(app: TestApp) -> TestApp {
    let r = app
        .patch(
            "/v1/settings",
            &json!({
                "tax": {
                    "rules": [
                        {"name": "VAT", "country": "NG", "rate": "7.5"},
                        {"name": "VAT", "country": "NG", "class": "reduced", "rate": "5"},
                        {"name": "Lagos levy", "country": "NG", "region": "Lagos", "rate": "8"}
                    ],
                    "shipping_class": "standard"
                },
                "shipping_rates": [
                    {"name": "Lagos delivery", "currency": "NGN", "countries": ["NG"], "basis": "flat", "amount": "2500.00", "free_above": "100000.00"},
                    {"name": "Courier", "currency": "NGN", "basis": "weight", "bands": [
                        {"up_to_grams": 1000, "amount": "1500.00"},
                        {"up_to_grams": 10000, "amount": "4000.00"}
                    ]}
                ],
                "storefront_enabled": true
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    for (sku, price, class, grams) in [
        ("DRESS", "15000.00", "standard", 400),
        ("BOOK", "3333.33", "reduced", 300),
    ] {
        let r = app
            .post(
                "/v1/products",
                &json!({"sku": sku, "name": sku, "currency": "NGN", "price": price, "tax_class": class, "weight_grams": grams, "on_hand": 50}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    app
}

pub(crate) fn cart(region: &str) -> Value {
    json!({
        "currency": "NGN",
        "buyer": {"name": "Ada", "phone": "+2348012345678"},
        "items": [{"sku": "DRESS", "quantity": 2}, {"sku": "BOOK", "quantity": 1}],
        "shipping_address": {"line1": "1 Marina", "city": "Lagos", "region": region, "country": "NG"}
    })
}

pub(crate) fn amount(v: &Value) -> i64 {
    let text = v.as_str().expect("an amount");
    let (whole, frac) = text.split_once('.').expect("two decimals");
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

/// The order (or preview) adds up: its lines' totals and the shipping
/// make its total exactly.
pub(crate) fn assert_adds_up(o: &Value) {
    let items = o["items"].as_array().unwrap();
    let lines: i64 = items.iter().map(|l| amount(&l["total"])).sum();
    let shipping = o["shipping"].as_object().map_or(0, |s| {
        amount(&s["amount"])
            + if o["taxes_included"] == json!(true) {
                0
            } else {
                amount(&s["tax"])
            }
    });
    assert_eq!(amount(&o["total"]), lines + shipping, "{o}");
    let tax: i64 = items.iter().map(|l| amount(&l["tax"])).sum::<i64>()
        + o["shipping"].as_object().map_or(0, |s| amount(&s["tax"]));
    assert_eq!(amount(&o["tax_total"]), tax);
}

#[tokio::test]
async fn a_preview_prices_the_cart_as_the_order_is_then_priced() {
    let app = lagos_shop().await;
    let r = app.post("/v1/orders/preview", &cart("Ogun")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let p: Value = r.json().await.unwrap();
    assert_adds_up(&p);
    assert_eq!(p["subtotal"], "33333.33");
    assert_eq!(
        p["items"][0]["tax"], "2250.00",
        "7.5 % of 30,000.00 (Ogun is not Lagos)"
    );
    assert_eq!(p["items"][1]["tax_rate"], "5");
    assert_eq!(p["items"][1]["tax"], "166.67", "5 % of 3,333.33, half up");
    // 1.1 kg: the courier's second band (₦4,000) is dearer than Lagos delivery.
    assert_eq!(
        p["shipping_options"],
        json!([{"name": "Lagos delivery", "amount": "2500.00"}, {"name": "Courier", "amount": "4000.00"}])
    );
    assert_eq!(
        p["shipping"],
        json!({"name": "Lagos delivery", "amount": "2500.00", "tax_rate": "7.5", "tax": "187.50"})
    );
    assert_eq!(p["total"], "38437.50");
    assert_eq!(
        app.json("/v1/orders/count").await["count"],
        0,
        "a preview creates nothing"
    );

    let order = app.create(&cart("Ogun")).await;
    for field in [
        "subtotal",
        "discount_total",
        "shipping_total",
        "tax_total",
        "total",
        "shipping",
        "taxes_included",
    ] {
        assert_eq!(order[field], p[field], "{field}");
    }
    assert_adds_up(&order);
    assert_eq!(order["items"][0]["total"], "32250.00");
    assert_eq!(order["amount_due"], "38437.50", "tax and shipping are owed");
    let paid = app.pay_in_full(&order).await;
    assert_eq!(paid["payment_status"], "paid");

    // In Lagos the regional rule applies; a chosen courier ships it.
    let mut body = cart("lagos");
    body["shipping_method"] = json!("courier");
    let o = app.create(&body).await;
    assert_eq!(o["items"][0]["tax_rate"], "8");
    assert_eq!(o["shipping"]["name"], "Courier");
    assert_adds_up(&o);
}

#[tokio::test]
async fn a_shipping_method_no_rate_takes_is_refused_naming_those_that_do() {
    let app = lagos_shop().await;
    let mut body = cart("Lagos");
    body["shipping_method"] = json!("Drone");
    let p = problem(
        app.post("/v1/orders/preview", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["shipping_method"]);
    assert_eq!(p["errors"][0]["accepted"], "Lagos delivery, Courier", "{p}");
    let r = app.post("/v1/orders", &body).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Without an address nothing ships, and nothing is charged for it.
    let mut pickup = cart("Lagos");
    pickup.as_object_mut().unwrap().remove("shipping_address");
    let o = app.create(&pickup).await;
    assert_eq!(o["shipping"], Value::Null);
    assert_eq!(o["shipping_total"], "0.00");
    assert_eq!(o["items"][0]["tax_rate"], "0", "no place, no tax rule fits");
}

#[tokio::test]
async fn an_edit_keeps_the_rates_the_order_was_priced_with() {
    let app = lagos_shop().await;
    let order = app.create(&cart("Ogun")).await;
    let id = order["id"].as_str().unwrap();
    let r = app
        .patch(
            "/v1/settings",
            &json!({"tax": {"rules": [{"name": "VAT", "country": "NG", "rate": "10"}]}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .patch(
            &format!("/v1/orders/{id}"),
            &json!({"items": [{"sku": "DRESS", "quantity": 2}, {"sku": "BOOK", "quantity": 1}, {"name": "Gift wrap", "quantity": 1, "unit_price": "1000.00"}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = r.json().await.unwrap();
    assert_adds_up(&o);
    assert_eq!(o["items"][0]["tax_rate"], "7.5", "kept lines keep theirs");
    assert_eq!(o["items"][1]["tax_rate"], "5");
    assert_eq!(o["items"][2]["tax_rate"], "10", "a new line takes today's");
    assert_eq!(o["shipping"], order["shipping"], "shipping stays as quoted");
}

#[tokio::test]
async fn the_storefront_prices_a_checkout_too() {
    let app = lagos_shop().await;
    let r = app
        .post(
            "/v1/storefront/shop/checkout",
            &json!({
                "buyer": {"name": "Ada", "phone": "+2348012345678"},
                "items": [{"sku": "DRESS", "quantity": 1}],
                "shipping_address": {"line1": "1 Marina", "city": "Lagos", "region": "Lagos", "country": "NG"}
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    let order = app
        .json(&format!("/v1/orders/{}", c["order_id"].as_str().unwrap()))
        .await;
    assert_adds_up(&order);
    // 400 g: the courier's ₦1,500 is the cheapest; Lagos's 8 % on both.
    assert_eq!(order["shipping"]["name"], "Courier");
    assert_eq!(order["total"], "17820.00");
    assert_eq!(c["total"], order["total"]);
    assert_eq!(
        (&c["shipping_total"], &c["tax_total"]),
        (&json!("1500.00"), &json!("1320.00"))
    );
    let message = c["message"].as_str().unwrap();
    for line in [
        "Subtotal: ₦15,000.00",
        "Delivery (Courier): ₦1,500.00",
        "Tax: ₦1,320.00",
        "Total: ₦17,820.00",
    ] {
        assert!(message.contains(line), "{line:?} not in {message}");
    }
}

#[tokio::test]
async fn tax_and_shipping_settings_say_what_is_wrong() {
    let app = spawn_app().await;
    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({
                "tax": {"rules": [
                    {"name": "VAT", "country": "NG", "rate": "7,5"},
                    {"name": "VAT", "region": "Lagos", "rate": "5"},
                    {"name": "VAT", "country": "XX", "rate": "5"},
                    {"name": "GST", "country": "GH", "rate": "101"}
                ], "shipping_class": "Standard"},
                "shipping_rates": [
                    {"name": "A", "currency": "NGN", "basis": "flat", "bands": [{"up_to_grams": 1, "amount": "1.00"}]},
                    {"name": "a", "currency": "NGN", "basis": "weight", "bands": [
                        {"up_to_grams": 500, "amount": "1.00"}, {"up_to_grams": 100, "amount": "2.00"}
                    ]},
                    {"name": "B", "currency": "NGN", "basis": "by_drone", "amount": "1.00"},
                    {"name": "C", "currency": "JPY", "basis": "flat", "amount": "1.50"}
                ]
            }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let named = fields(&p);
    for field in [
        "tax.rules[0].rate",
        "tax.rules[1].region",
        "tax.rules[2].country",
        "tax.rules[3].rate",
        "tax.shipping_class",
        "shipping_rates[0].amount",
        "shipping_rates[1].name",
        "shipping_rates[1].bands[1]",
        "shipping_rates[2].basis",
        "shipping_rates[3].amount",
    ] {
        assert!(
            named.contains(&field.to_string()),
            "{field} not in {named:?}"
        );
    }
    let settings = app.json("/v1/settings").await;
    assert_eq!(settings["tax"]["rules"], json!([]), "nothing was saved");
    // Product tax classes and weights are checked too.
    let p = problem(
        app.post(
            "/v1/products",
            &json!({"sku": "X", "name": "X", "currency": "NGN", "price": "1.00", "tax_class": "Zero Rated", "weight_grams": -1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["tax_class", "weight_grams"]);
}

async fn promote(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/promotions", &body).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

/// Posts every order at once; their statuses and answers, in order.
async fn race(app: &std::sync::Arc<TestApp>, orders: Vec<Value>) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = orders
        .into_iter()
        .map(|body| {
            let app = std::sync::Arc::clone(app);
            tokio::spawn(async move {
                let r = app.post("/v1/orders", &body).await;
                let status = r.status();
                (status, r.json::<Value>().await.unwrap_or_default())
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

fn dress_order(phone: &str, codes: &[&str]) -> Value {
    json!({
        "currency": "NGN",
        "buyer": {"name": "Ada", "phone": phone},
        "items": [{"sku": "DRESS", "quantity": 1}],
        "promotion_codes": codes
    })
}

#[tokio::test]
async fn promotions_are_kept_changed_and_removed_and_say_what_is_wrong() {
    let app = spawn_app().await;
    let p = promote(
        &app,
        json!({"name": "Welcome", "code": "welcome10", "type": "percentage", "value": "10", "usage_limit": 100}),
    )
    .await;
    assert_eq!(p["code"], "WELCOME10");
    assert_eq!((&p["uses"], &p["active"]), (&json!(0), &json!(true)));
    let id = p["id"].as_str().unwrap();
    let r = app
        .post(
            "/v1/promotions",
            &json!({"name": "Again", "code": "Welcome10", "type": "fixed", "value": "5.00", "currency": "NGN"}),
        )
        .await;
    let taken = problem(r, StatusCode::CONFLICT).await;
    assert_eq!(fields(&taken), ["code"]);
    let bad = problem(
        app.post(
            "/v1/promotions",
            &json!({"name": "", "code": "no spaces", "type": "bogo", "value": "1", "min_subtotal": "10.00",
                    "starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-11-01T00:00:00Z", "usage_limit": 0}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&bad),
        [
            "name",
            "code",
            "type",
            "min_subtotal",
            "ends_at",
            "usage_limit"
        ]
    );
    let fixed = problem(
        app.post(
            "/v1/promotions",
            &json!({"name": "Five off", "type": "fixed", "value": "5.00"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&fixed), ["value"], "a fixed amount needs a currency");

    let r = app
        .patch(
            &format!("/v1/promotions/{id}"),
            &json!({"value": "15", "usage_limit": null, "skus": ["DRESS"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &changed["value"],
            &changed["usage_limit"],
            &changed["skus"],
            &changed["code"]
        ),
        (
            &json!("15"),
            &Value::Null,
            &json!(["DRESS"]),
            &json!("WELCOME10")
        )
    );
    let page = app.json("/v1/promotions").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let viewer = app.key_for(ordo_domain::Role::Viewer).await;
    let r = app
        .post_as(
            &viewer,
            "/v1/promotions",
            &json!({"name": "x", "type": "percentage", "value": "1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .delete(app.url(&format!("/v1/promotions/{id}")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/v1/promotions/{id}")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn codes_and_automatic_promotions_price_orders_and_say_why_not() {
    let app = lagos_shop().await;
    promote(
        &app,
        json!({"name": "Dress week", "type": "percentage", "value": "20", "skus": ["DRESS"]}),
    )
    .await;
    promote(
        &app,
        json!({"name": "Big basket", "code": "BIG", "type": "fixed", "value": "1000.00", "currency": "NGN", "min_subtotal": "50000.00"}),
    )
    .await;
    promote(
        &app,
        json!({"name": "Five off", "code": "FIVE", "type": "fixed", "value": "500.00", "currency": "NGN"}),
    )
    .await;
    let mut body = cart("Ogun");
    body["promotion_codes"] = json!(["five", "big", "nope"]);
    let r = app.post("/v1/orders/preview", &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let p: Value = r.json().await.unwrap();
    assert_adds_up(&p);
    let names: Vec<&str> = p["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Dress week", "Five off"]);
    assert_eq!(
        p["promotions"][0]["amount"], "6000.00",
        "20 % of the dresses"
    );
    assert_eq!(
        p["rejected_codes"],
        json!([
            {"code": "BIG", "reason": "this promotion needs a subtotal of at least ₦50,000.00 (the order's is ₦33,333.33)"},
            {"code": "NOPE", "reason": "no promotion has this code"}
        ])
    );
    // Creating with a code that does not apply is refused, saying why.
    let refused = problem(
        app.post("/v1/orders", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&refused),
        ["promotion_codes[1]", "promotion_codes[2]"]
    );
    assert_eq!(app.json("/v1/orders/count").await["count"], 0);
    body["promotion_codes"] = json!(["five"]);
    let o = app.create(&body).await;
    assert_adds_up(&o);
    assert_eq!(o["discount_total"], p["discount_total"]);
    assert_eq!(o["total"], p["total"]);
    // The five-off is spread over what is left after the dress week.
    let discounts: Vec<i64> = o["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| amount(&l["discount"]))
        .collect();
    assert_eq!(discounts.iter().sum::<i64>(), 600_000 + 50_000);
}

#[tokio::test]
async fn usage_limits_hold_under_concurrent_checkouts() {
    let app = std::sync::Arc::new(lagos_shop().await);
    let limited = promote(
        &app,
        json!({"name": "First five", "code": "FIRST5", "type": "percentage", "value": "10", "usage_limit": 5}),
    )
    .await;
    let once = promote(
        &app,
        json!({"name": "Once each", "code": "ONCE", "type": "percentage", "value": "5", "usage_limit_per_buyer": 1}),
    )
    .await;
    let orders = (0..20)
        .map(|i| dress_order(&format!("+23480100000{i:02}"), &["FIRST5"]))
        .chain((0..10).map(|_| dress_order("+2348099999999", &["ONCE"])))
        .collect();
    let statuses: Vec<StatusCode> = race(&app, orders)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let created = |range: std::ops::Range<usize>| {
        statuses[range]
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count()
    };
    assert_eq!(created(0..20), 5, "{statuses:?}");
    assert_eq!(created(20..30), 1, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::UNPROCESSABLE_ENTITY));
    for (p, uses) in [(&limited, 5), (&once, 1)] {
        let now = app
            .json(&format!("/v1/promotions/{}", p["id"].as_str().unwrap()))
            .await;
        assert_eq!(now["uses"], uses);
    }
    assert_eq!(app.json("/v1/orders/count").await["count"], 6);
    // What the next one hears.
    let refused = problem(
        app.post("/v1/orders", &dress_order("+2348011111111", &["first5"]))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        refused["errors"][0]["reason"],
        "this promotion has been used up (5 orders)"
    );
}

#[tokio::test]
async fn a_retried_create_replays_instead_of_refusing_the_use_it_took() {
    let app = lagos_shop().await;
    promote(
        &app,
        json!({"name": "Once each", "code": "ONCE", "type": "percentage", "value": "5", "usage_limit_per_buyer": 1}),
    )
    .await;
    let body = dress_order("+2348012345678", &["ONCE"]);
    let first = post_with_key(&app, "checkout-42", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = post_with_key(&app, "checkout-42", &body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // A new order by the same buyer is refused the code.
    let r = app.post("/v1/orders", &body).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        p["errors"][0]["reason"],
        "this buyer has already used this promotion (1 per buyer)"
    );
}

#[tokio::test]
async fn a_used_up_automatic_promotion_stops_applying() {
    let app = lagos_shop().await;
    promote(
        &app,
        json!({"name": "First order", "type": "fixed", "value": "1000.00", "currency": "NGN", "usage_limit": 1}),
    )
    .await;
    let first = app.create(&dress_order("+2348012345678", &[])).await;
    assert_eq!(first["discount_total"], "1000.00");
    let second = app.create(&dress_order("+2348012345679", &[])).await;
    assert_eq!(second["discount_total"], "0.00");
    assert_eq!(second["promotions"], json!([]));
}

#[tokio::test]
async fn an_order_is_priced_again_only_when_asked() {
    let app = lagos_shop().await;
    let once = promote(
        &app,
        json!({"name": "Only one", "code": "ONE", "type": "fixed", "value": "500.00", "currency": "NGN", "usage_limit": 1}),
    )
    .await;
    let once_id = once["id"].as_str().unwrap().to_string();
    let mut body = cart("Ogun");
    body["promotion_codes"] = json!(["one"]);
    let order = app.create(&body).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["discount_total"], "500.00");
    // The shop changes its prices and taxes, and starts a sale.
    let r = app
        .patch("/v1/products/DRESS", &json!({"price": "16000.00"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .patch(
            "/v1/settings",
            &json!({"tax": {"rules": [{"name": "VAT", "country": "NG", "rate": "10"}]}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    promote(
        &app,
        json!({"name": "Sale", "type": "percentage", "value": "10"}),
    )
    .await;
    // A plain edit keeps the prices the order was made with.
    let r = app
        .patch(&format!("/v1/orders/{id}"), &json!({"notes": "ring twice"}))
        .await;
    let edited: Value = r.json().await.unwrap();
    assert_eq!(edited["total"], order["total"]);
    assert_eq!(edited["items"][0]["unit_price"], "15000.00");
    // So does an edit of the items: the dress it had keeps its price and
    // line; only an item it did not have takes today's.
    let mut items = order["items"].as_array().unwrap().clone();
    let kept: Vec<Value> = items
        .iter_mut()
        .map(|l| json!({"sku": l["sku"], "quantity": l["quantity"], "attributes": l["attributes"]}))
        .collect();
    let r = app
        .patch(&format!("/v1/orders/{id}"), &json!({"items": kept}))
        .await;
    let same: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &same["items"][0]["id"],
            &same["items"][0]["unit_price"],
            &same["version"]
        ),
        (
            &order["items"][0]["id"],
            &json!("15000.00"),
            &edited["version"]
        ),
        "nothing changed: {same}"
    );
    let mut more = kept.clone();
    more[0]["quantity"] = json!(3);
    let r = app
        .patch(&format!("/v1/orders/{id}"), &json!({"items": more}))
        .await;
    let two: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &two["items"][0]["quantity"],
            &two["items"][0]["unit_price"],
            &two["items"][0]["price_overridden"]
        ),
        (&json!(3), &json!("15000.00"), &json!(false)),
        "{two}"
    );
    let r = app
        .patch(&format!("/v1/orders/{id}"), &json!({"items": kept}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Codes and a shipping method go only with a re-pricing.
    let p = problem(
        app.patch(&format!("/v1/orders/{id}"), &json!({"promotion_codes": []}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["promotion_codes"]);
    // Re-priced: today's prices, rates and sale; the code it holds stays
    // (its own use does not count against it).
    let r = app
        .patch(&format!("/v1/orders/{id}"), &json!({"reprice": true}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_adds_up(&again);
    assert_eq!(again["items"][0]["unit_price"], "16000.00");
    assert_eq!(again["items"][0]["tax_rate"], "10");
    let names: Vec<&str> = again["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Sale", "Only one"]);
    let promotion = format!("/v1/promotions/{once_id}");
    assert_eq!(app.json(&promotion).await["uses"], 1);
    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    let last = events["data"].as_array().unwrap().last().unwrap().clone();
    assert!(last["data"]["changes"]["pricing"].is_object(), "{last}");
    // Re-priced without the code: its use goes back, and another order may take it.
    let r = app
        .patch(
            &format!("/v1/orders/{id}"),
            &json!({"reprice": true, "promotion_codes": []}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.json(&promotion).await["uses"], 0);
    let other = app.create(&body).await;
    assert_eq!(other["promotions"][1]["code"], "ONE");
    assert_eq!(app.json(&promotion).await["uses"], 1);
    // And this order cannot take it back now.
    let p = problem(
        app.patch(
            &format!("/v1/orders/{id}"),
            &json!({"reprice": true, "promotion_codes": ["ONE"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        p["errors"][0]["reason"],
        "this promotion has been used up (1 orders)"
    );
}

#[tokio::test]
async fn a_retry_is_answered_as_before_even_when_its_code_no_longer_applies() {
    let app = lagos_shop().await;
    let p = promote(
        &app,
        json!({"name": "Launch", "code": "LAUNCH", "type": "percentage", "value": "10"}),
    )
    .await;
    let body = dress_order("+2348012345678", &["LAUNCH"]);
    let send = |body: Value| {
        let app = &app;
        async move { post_with_key(app, "launch-1", &body).await }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let mut put_body = body.clone();
    put_body["external_ids"] = json!({"com.shop.cart": "C-9"});
    let r = app
        .put("/v1/orders/external/com.shop.cart/C-9", &put_body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The shop switches the code off.
    let r = app
        .patch(
            &format!("/v1/promotions/{}", p["id"].as_str().unwrap()),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let again = send(body.clone()).await;
    assert_eq!(again.status(), StatusCode::CREATED, "replayed, not refused");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let r = app
        .put("/v1/orders/external/com.shop.cart/C-9", &put_body)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "unchanged, not refused");
    // Another body under the key is still a 409; a new order is refused the code.
    let other = send(dress_order("+2348012345679", &["LAUNCH"])).await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let p = problem(
        app.post("/v1/orders", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["reason"], "this promotion is switched off");
}

#[tokio::test]
async fn orders_racing_for_an_automatic_promotion_are_all_placed() {
    let app = std::sync::Arc::new(lagos_shop().await);
    let p = promote(
        &app,
        json!({"name": "First three", "type": "fixed", "value": "100.00", "currency": "NGN", "usage_limit": 3}),
    )
    .await;
    let orders = (0..20)
        .map(|i| dress_order(&format!("+23480200000{i:02}"), &[]))
        .collect();
    let mut discounted = 0;
    for (status, order) in race(&app, orders).await {
        assert_eq!(status, StatusCode::CREATED, "every order is placed");
        if order["discount_total"] == "100.00" {
            discounted += 1;
        }
    }
    assert_eq!(discounted, 3);
    let now = app
        .json(&format!("/v1/promotions/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(now["uses"], 3);
}
