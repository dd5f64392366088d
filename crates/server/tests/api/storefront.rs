//! The public storefront: products on sale and guest checkout with a
//! WhatsApp link (seed 004), its rate limit and its body limit.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, problem, spawn_app, spawn_app_with, TestApp};
use crate::products::dress;

impl TestApp {
    /// Opens the storefront, with `extra` settings.
    async fn open_storefront(&self, extra: Value) {
        let mut body = json!({"storefront_enabled": true});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = self.patch("/v1/settings", &body).await;
        assert_eq!(r.status(), StatusCode::OK, "open the storefront");
    }

    /// A guest's GET: no key.
    async fn guest_get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A guest's checkout at the test shop: no key.
    async fn checkout(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/storefront/shop/checkout"))
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

fn cart(items: Value) -> Value {
    json!({
        "buyer": {"name": "Ada Obi", "phone": "+234 802 222 3333"},
        "items": items,
        "shipping_address": {"line1": "12 Allen Avenue", "city": "Ikeja", "region": "Lagos", "country": "NG"},
        "notes": "Please call before delivery"
    })
}

/// The `text` of a wa.me link, decoded.
fn whatsapp_text(link: &str) -> String {
    let url = url::Url::parse(link).unwrap();
    assert_eq!(url.host_str(), Some("wa.me"));
    url.query_pairs()
        .find(|(k, _)| k == "text")
        .map(|(_, v)| v.into_owned())
        .expect("a text parameter")
}

#[tokio::test]
async fn the_storefront_lists_what_is_on_sale_once_the_shop_opens_it() {
    let app = spawn_app().await;
    app.add_product(&dress("DRESS", 3)).await;
    let mut scarf = dress("SCARF", 0);
    scarf["attributes"] = json!({});
    app.add_product(&scarf).await;
    let mut card = dress("GIFT-CARD", 0);
    card["track_stock"] = json!(false);
    card["attributes"] = json!({});
    app.add_product(&card).await;
    app.add_product(&dress("OLD", 9)).await;
    app.post("/v1/products/OLD/archive", &json!({})).await;
    let mut hidden = dress("HIDDEN", 9);
    hidden["active"] = json!(false);
    app.add_product(&hidden).await;

    let r = app.guest_get("/v1/storefront/shop/products").await;
    let closed = problem(r, StatusCode::NOT_FOUND).await;
    assert_eq!(closed["type"], "/problems/not-found", "closed by default");

    app.open_storefront(json!({})).await;
    let page: Value = app
        .guest_get("/v1/storefront/shop/products")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["shop"], json!({"slug": "shop", "name": "Shop"}));
    let skus: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(
        skus,
        ["DRESS", "GIFT-CARD", "SCARF"],
        "active, not archived"
    );
    let dress = &page["data"][0];
    assert_eq!(dress["price"], "12500.50");
    assert_eq!(dress["available"], 3);
    assert_eq!(dress["in_stock"], true);
    assert!(dress.get("on_hand").is_none(), "no stock internals");
    assert_eq!(page["data"][1]["available"], Value::Null, "not counted");
    assert_eq!(page["data"][1]["in_stock"], true);
    assert_eq!(page["data"][2]["in_stock"], false);

    let sold_out: Value = app
        .guest_get("/v1/storefront/shop/products?in_stock=false")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sold_out["data"].as_array().unwrap().len(), 1);
    let first: Value = app
        .guest_get("/v1/storefront/shop/products?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .guest_get(&format!(
            "/v1/storefront/shop/products?limit=2&cursor={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"][0]["sku"], "SCARF");
    assert_eq!(rest["has_more"], false);

    for path in [
        "/v1/storefront/nobody/products",
        "/v1/storefront/NOT%20A%20SLUG/products",
    ] {
        assert_eq!(app.guest_get(path).await.status(), StatusCode::NOT_FOUND);
    }
    let r = app
        .guest_get("/v1/storefront/shop/products?in_stock=maybe")
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["in_stock"]);
}

#[tokio::test]
async fn a_guest_checks_out_and_gets_a_whatsapp_link_with_the_order() {
    let app = spawn_app().await;
    app.open_storefront(json!({"whatsapp_number": "+234 809 999 9999"}))
        .await;
    app.add_product(&dress("DRESS", 5)).await;
    let mut scarf = dress("SCARF", 10);
    scarf["name"] = json!("Silk scarf");
    scarf["price"] = json!("3000.00");
    scarf["attributes"] = json!({"colour": ["gold"]});
    app.add_product(&scarf).await;

    let r = app
        .checkout(&cart(json!([
            {"sku": "DRESS", "quantity": 2, "attributes": {"size": "m", "colour": "Red"}},
            {"sku": "SCARF", "quantity": 1}
        ])))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let placed: Value = r.json().await.unwrap();
    let reference = placed["reference"].as_str().unwrap();
    assert_eq!(placed["status"], "pending");
    assert_eq!(placed["currency"], "NGN");
    assert_eq!(placed["total"], "28001.00");
    assert_eq!(placed["total_display"], "₦28,001.00");
    assert_eq!(
        placed["items"][0]["attributes"],
        json!({"colour": "red", "size": "M"})
    );
    assert_eq!(placed["items"][1]["attributes"], json!({"colour": "gold"}));
    assert_eq!(
        placed["reserved_until"],
        Value::Null,
        "on_confirm holds nothing"
    );

    let link = placed["whatsapp_url"].as_str().unwrap();
    assert!(
        link.starts_with("https://wa.me/2348099999999?text="),
        "{link}"
    );
    let expected = format!(
        "Hello Shop, I would like to place this order:\n\
         Order reference: {reference}\n\
         \n\
         1. Ankara dress (colour: red, size: M) x2 - ₦25,001.00\n\
         2. Silk scarf (colour: gold) x1 - ₦3,000.00\n\
         \n\
         Total: ₦28,001.00\n\
         Name: Ada Obi\n\
         Phone: +2348022223333\n\
         Deliver to: 12 Allen Avenue, Ikeja, Lagos, NG\n\
         Note: Please call before delivery"
    );
    assert_eq!(whatsapp_text(link), expected);
    assert_eq!(placed["message"], expected.as_str());

    // The shop sees a pending storefront order, taken from its catalog.
    let order = app
        .json(&format!(
            "/v1/orders/{}",
            placed["order_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(order["reference"], reference);
    assert_eq!(order["channel"], "storefront");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["created_by"]["type"], "buyer");
    assert_eq!(order["created_by"]["id"], "+2348022223333");
    assert_eq!(order["items"][0]["price_overridden"], false);
    assert!(order["items"][0]["product_id"]
        .as_str()
        .unwrap()
        .starts_with("prod_"));
    assert_eq!(order["shipping_address"]["city"], "Ikeja");
    let listed = app.json("/v1/orders?channel=storefront").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    // Confirming it reserves the stock, as for any order.
    let id = order["id"].as_str().unwrap();
    let r = app
        .post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let dress = app.json("/v1/products/DRESS").await;
    assert_eq!(
        (dress["on_hand"].as_i64(), dress["reserved"].as_i64()),
        (Some(5), Some(2))
    );
}

#[tokio::test]
async fn a_checkout_without_a_whatsapp_number_still_places_the_order() {
    let app = spawn_app().await;
    app.open_storefront(json!({})).await;
    app.add_product(&dress("DRESS", 5)).await;
    let r = app
        .checkout(&cart(
            json!([{"sku": "DRESS", "quantity": 1, "attributes": {"size": "S", "colour": "blue"}}]),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let placed: Value = r.json().await.unwrap();
    assert_eq!(placed["whatsapp_url"], Value::Null);
    assert!(placed["message"]
        .as_str()
        .unwrap()
        .contains("Total: ₦12,500.50"));
}

#[tokio::test]
async fn bad_carts_are_refused_naming_the_line_and_nothing_is_created() {
    let app = spawn_app().await;
    app.open_storefront(json!({"whatsapp_number": "+2348099999999"}))
        .await;
    app.add_product(&dress("DRESS", 2)).await;
    app.add_product(&dress("OLD", 5)).await;
    app.post("/v1/products/OLD/archive", &json!({})).await;
    let mut dollars = dress("USD-HAT", 5);
    dollars["currency"] = json!("USD");
    dollars["attributes"] = json!({});
    app.add_product(&dollars).await;
    let m = json!({"size": "M", "colour": "red"});

    let cases = [
        (json!([{"sku": "NOPE", "quantity": 1}]), "items[0].sku"),
        (json!([{"sku": "bad sku!", "quantity": 1}]), "items[0].sku"),
        (
            json!([{"sku": "DRESS", "quantity": 1, "attributes": m}, {"sku": "OLD", "quantity": 1, "attributes": m}]),
            "items[1].sku",
        ),
        (
            json!([{"sku": "DRESS", "quantity": 0, "attributes": m}]),
            "items[0].quantity",
        ),
        (
            json!([{"sku": "DRESS", "quantity": 10_000_000, "attributes": m}]),
            "items[0].quantity",
        ),
        (
            json!([{"sku": "DRESS", "quantity": 1, "attributes": {"size": "XXL", "colour": "red"}}]),
            "items[0].attributes.size",
        ),
        (
            json!([{"sku": "DRESS", "quantity": 1, "attributes": {"size": "M"}}]),
            "items[0].attributes.colour",
        ),
        (
            json!([{"sku": "DRESS", "quantity": 1, "attributes": m, "unit_price": "1.00"}]),
            "items[0].unit_price",
        ),
        (
            json!([{"sku": "DRESS", "quantity": 1, "attributes": m}, {"sku": "USD-HAT", "quantity": 1}]),
            "items[1].sku",
        ),
        (json!([]), "items"),
    ];
    for (items, field) in cases {
        let r = app.checkout(&cart(items.clone())).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), [field], "{items}: {p}");
    }
    let mut no_phone = cart(json!([{"sku": "DRESS", "quantity": 1, "attributes": m}]));
    no_phone["buyer"]["phone"] = json!("not a phone");
    no_phone["buyer"]["name"] = json!(" ");
    let r = app.checkout(&no_phone).await;
    let mut got = fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await);
    got.sort();
    assert_eq!(got, ["buyer.name", "buyer.phone"]);

    // More than is available now: every short SKU, with what is left.
    let r = app
        .checkout(&cart(json!([
            {"sku": "DRESS", "quantity": 2, "attributes": m},
            {"sku": "DRESS", "quantity": 1, "attributes": {"size": "L", "colour": "red"}}
        ])))
        .await;
    let p = problem(r, StatusCode::CONFLICT).await;
    assert_eq!(p["type"], "/problems/insufficient-stock");
    assert_eq!(
        p["shortages"],
        json!([{"sku": "DRESS", "requested": 3, "available": 2}])
    );

    // The body limit is the storefront's, and the refusal names it.
    let mut huge = cart(json!([{"sku": "DRESS", "quantity": 1, "attributes": m}]));
    huge["notes"] = json!("x".repeat(20_000));
    let r = app.checkout(&huge).await;
    assert!(problem(r, StatusCode::PAYLOAD_TOO_LARGE).await["detail"]
        .as_str()
        .unwrap()
        .contains("16384"));

    let count = app.json("/v1/orders/count").await;
    assert_eq!(count["count"], 0, "{count}");
}

#[tokio::test]
async fn a_retried_checkout_places_one_order() {
    let app = spawn_app().await;
    app.open_storefront(json!({})).await;
    app.add_product(&dress("DRESS", 5)).await;
    let body = cart(
        json!([{"sku": "DRESS", "quantity": 1, "attributes": {"size": "M", "colour": "red"}}]),
    );
    let send = |body: Value| {
        app.client
            .post(app.url("/v1/storefront/shop/checkout"))
            .header("idempotency-key", "cart-7f3a")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    let mut other = body;
    other["items"][0]["quantity"] = json!(2);
    let r = send(other).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(app.json("/v1/orders/count").await["count"], 1);
}

#[tokio::test]
async fn under_on_create_a_checkout_holds_its_stock() {
    let app = spawn_app().await;
    app.open_storefront(json!({"reservation_policy": "on_create", "reservation_minutes": 15}))
        .await;
    app.add_product(&dress("DRESS", 3)).await;
    let m = json!({"size": "M", "colour": "red"});
    let r = app
        .checkout(&cart(
            json!([{"sku": "DRESS", "quantity": 2, "attributes": m}]),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let placed: Value = r.json().await.unwrap();
    assert!(placed["reserved_until"].is_string());
    let dress = app.json("/v1/products/DRESS").await;
    assert_eq!(dress["reserved"], 2);
    let r = app
        .checkout(&cart(
            json!([{"sku": "DRESS", "quantity": 2, "attributes": m}]),
        ))
        .await;
    assert_eq!(
        problem(r, StatusCode::CONFLICT).await["shortages"],
        json!([{"sku": "DRESS", "requested": 2, "available": 1}])
    );
}

#[tokio::test]
async fn each_client_address_is_rate_limited() {
    let app = spawn_app_with(|c| {
        c.storefront.requests_per_minute = 6;
        c.storefront.burst = 3;
        c.storefront.trust_forwarded_for = true;
    })
    .await;
    app.open_storefront(json!({})).await;
    let from = |address: &str| {
        app.client
            .get(app.url("/v1/storefront/shop/products"))
            .header("x-forwarded-for", format!("198.51.100.1, {address}"))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(from("203.0.113.5").await.unwrap().status(), StatusCode::OK);
    }
    let r = from("203.0.113.5").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "one request every 10 s: {wait}");
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(p["type"], "/problems/rate-limited");
    assert_eq!(p["status"], 429);
    // Checkout counts against the same address; another address has its own.
    let r = app
        .client
        .post(app.url("/v1/storefront/shop/checkout"))
        .header("x-forwarded-for", "203.0.113.5")
        .json(&cart(json!([])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(from("203.0.113.6").await.unwrap().status(), StatusCode::OK);
    // Staff with a key are not a storefront's guests.
    for _ in 0..5 {
        assert_eq!(app.get("/v1/products").await.status(), StatusCode::OK);
    }
}
