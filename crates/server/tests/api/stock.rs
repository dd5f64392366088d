//! Orders and stock: catalog lines, reservations on confirm, releases on
//! cancel and edit, deductions on shipment, and tenant settings.

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, problem, spawn_app, TestApp};
use crate::products::dress;

fn order_of(lines: Value) -> Value {
    json!({
        "currency": "NGN",
        "buyer": {"name": "Ada Obi", "phone": "+2348012345678"},
        "items": lines
    })
}

impl TestApp {
    pub(crate) async fn product(&self, sku: &str) -> Value {
        self.json(&format!("/v1/products/{sku}")).await
    }

    pub(crate) async fn stock(&self, sku: &str) -> (i64, i64) {
        let p = self.product(sku).await;
        (
            p["on_hand"].as_i64().unwrap(),
            p["reserved"].as_i64().unwrap(),
        )
    }

    async fn act(&self, order: &Value, action: &str) -> reqwest::Response {
        let id = order["id"].as_str().unwrap();
        let body = if action == "cancel" {
            json!({"reason": "buyer changed their mind"})
        } else {
            json!({})
        };
        self.post(&format!("/v1/orders/{id}/{action}"), &body).await
    }

    /// Asserts that every product's stock adds up.
    async fn assert_no_drift(&self) {
        let r = self.json("/v1/stock/reconcile").await;
        assert_eq!(r["drift"], json!([]), "{r}");
        assert_eq!(r["in_balance"], true);
    }

    /// Adds a product with no attributes to choose.
    pub(crate) async fn add_plain_product(&self, sku: &str, on_hand: i64) {
        let mut body = dress(sku, on_hand);
        body["attributes"] = json!({});
        self.add_product(&body).await;
    }

    pub(crate) async fn settings(&self, body: Value) {
        let r = self.patch("/v1/settings", &body).await;
        assert_eq!(r.status(), StatusCode::OK, "settings");
    }
}

#[tokio::test]
async fn catalog_lines_take_a_snapshot_of_the_product() {
    let app = spawn_app().await;
    let mut body = dress("DRESS", 5);
    body["attributes"] = json!({"size": ["S", "M", "L"], "colour": ["red"]});
    app.add_product(&body).await;
    let order = app
        .create(&order_of(json!([
            {"sku": "DRESS", "quantity": 2, "attributes": {"size": "m"}},
            {"sku": "DRESS", "quantity": 1, "attributes": {"size": "L"}, "unit_price": "10000.00"},
            {"sku": "OWN-CODE", "name": "Gift wrap", "quantity": 1, "unit_price": "500.00"}
        ])))
        .await;
    let line = &order["items"][0];
    assert_eq!(line["name"], "Ankara dress");
    assert_eq!(line["unit_price"], "12500.50");
    assert_eq!(line["attributes"], json!({"size": "M", "colour": "red"}));
    assert!(line["product_id"].as_str().unwrap().starts_with("prod_"));
    assert_eq!(line["price_overridden"], false);
    let staff = &order["items"][1];
    assert_eq!(
        (
            &staff["unit_price"],
            &staff["catalog_price"],
            &staff["price_overridden"]
        ),
        (&json!("10000.00"), &json!("12500.50"), &json!(true))
    );
    // A code not in the catalog, with a name and a price, is free text.
    assert_eq!(order["items"][2]["product_id"], Value::Null);
    assert_eq!(order["total"], "35501.00");
    // Pending orders reserve nothing under the default policy.
    assert_eq!(order["reserved"], json!({}));
    assert_eq!(app.stock("DRESS").await, (5, 0));

    // The snapshot stays as it was when the catalog changes.
    app.patch(
        "/v1/products/DRESS",
        &json!({"price": "20000", "name": "Renamed"}),
    )
    .await;
    let id = order["id"].as_str().unwrap();
    let again = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(again["items"][0]["name"], "Ankara dress");
    assert_eq!(again["items"][0]["unit_price"], "12500.50");
}

#[tokio::test]
async fn bad_catalog_lines_are_refused_naming_the_line_field_and_value() {
    let app = spawn_app().await;
    app.add_product(&dress("DRESS", 5)).await;
    app.add_product(&dress("OLD", 5)).await;
    app.post("/v1/products/OLD/archive", &json!({})).await;
    let p = problem(
        app.post(
            "/v1/orders",
            &order_of(json!([
                {"sku": "DRESS", "quantity": 1, "attributes": {"size": "XXL", "colour": "red"}},
                {"sku": "DRESS", "quantity": 1, "attributes": {"size": "S"}},
                {"sku": "DRESS", "quantity": 0, "attributes": {"size": "S", "colour": "red"}},
                {"sku": "DRESS", "quantity": 1, "unit_price": "1.001", "attributes": {"size": "S", "colour": "red", "fit": "slim"}},
                {"sku": "OLD", "quantity": 1, "attributes": {"size": "S", "colour": "red"}},
                {"sku": "NOPE", "quantity": 1},
                {"sku": "DRESS", "name": "Something else", "quantity": 1, "attributes": {"size": "S", "colour": "red"}}
            ])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        [
            "items[0].attributes.size",
            "items[1].attributes.colour",
            "items[2].quantity",
            "items[3].unit_price",
            "items[3].attributes.fit",
            "items[4].sku",
            "items[5].sku",
            "items[6].name"
        ]
    );
    let size = &p["errors"][0];
    assert_eq!(
        (&size["value"], &size["accepted"]),
        (&json!("XXL"), &json!("S, M, L"))
    );
    assert_eq!(p["errors"][1]["accepted"], "red, blue");

    // A shop that sells only from its catalog refuses anything else.
    app.settings(json!({"free_text_lines": false})).await;
    let p = problem(
        app.post(
            "/v1/orders",
            &order_of(json!([
                {"sku": "NOPE", "name": "X", "quantity": 1, "unit_price": "1.00"},
                {"name": "Y", "quantity": 1, "unit_price": "1.00"}
            ])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["items[0].sku", "items[1].sku"]);
}

#[tokio::test]
async fn confirming_reserves_stock_or_names_every_short_sku() {
    let app = spawn_app().await;
    for (sku, n) in [("A", 3), ("B", 1), ("C", 0)] {
        app.add_plain_product(sku, n).await;
    }
    let greedy = app
        .create(&order_of(json!([
            {"sku": "A", "quantity": 2},
            {"sku": "B", "quantity": 2},
            {"sku": "C", "quantity": 1}
        ])))
        .await;
    let p = problem(app.act(&greedy, "confirm").await, StatusCode::CONFLICT).await;
    assert_eq!(p["type"], "/problems/insufficient-stock");
    assert_eq!(
        p["shortages"],
        json!([
            {"sku": "B", "requested": 2, "available": 1},
            {"sku": "C", "requested": 1, "available": 0}
        ])
    );
    assert_eq!(fields(&p), ["items[1].quantity", "items[2].quantity"]);
    // Nothing was reserved, and the order is still pending.
    assert_eq!(app.stock("A").await, (3, 0));
    let id = greedy["id"].as_str().unwrap();
    assert_eq!(
        app.json(&format!("/v1/orders/{id}")).await["status"],
        "pending"
    );

    let order = app
        .create(&order_of(json!([{"sku": "A", "quantity": 2}])))
        .await;
    let confirmed: Value = app.act(&order, "confirm").await.json().await.unwrap();
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(confirmed["reserved"], json!({"A": 2}));
    assert_eq!(app.stock("A").await, (3, 2));
    assert_eq!(app.product("A").await["available"], 1);
    // Stock cannot be counted below what is reserved.
    let p = problem(
        app.post(
            "/v1/products/A/stock-adjustments",
            &json!({"set": 1, "reason": "count"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "set");

    let cancelled: Value = app.act(&confirmed, "cancel").await.json().await.unwrap();
    assert_eq!(cancelled["reserved"], json!({}));
    assert_eq!(app.stock("A").await, (3, 0));

    let sold = app
        .create(&order_of(json!([{"sku": "A", "quantity": 3}])))
        .await;
    let sold: Value = app.act(&sold, "confirm").await.json().await.unwrap();
    let delivered = app.deliver_all(sold["id"].as_str().unwrap()).await;
    assert_eq!(
        delivered["reserved"],
        json!({}),
        "shipping took the reservation"
    );
    let done: Value = app.act(&sold, "complete").await.json().await.unwrap();
    assert_eq!(done["reserved"], json!({}));
    assert_eq!(app.stock("A").await, (0, 0));
    assert_eq!(app.product("A").await["in_stock"], false);

    // Every movement names its order.
    let moves = app.json("/v1/products/A/stock-movements").await;
    let kinds: Vec<(String, i64, i64)> = moves["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_string(),
                m["on_hand_change"].as_i64().unwrap(),
                m["reserved_change"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("adjustment".to_string(), 3, 0),
            ("reservation".to_string(), 0, 2),
            ("release".to_string(), 0, -2),
            ("reservation".to_string(), 0, 3),
            ("deduction".to_string(), -3, -3),
        ]
    );
    assert_eq!(moves["data"][4]["order_id"], sold["id"]);
    app.assert_no_drift().await;
}

#[tokio::test]
async fn edits_of_a_confirmed_order_reserve_and_release_the_difference() {
    let app = spawn_app().await;
    for (sku, n) in [("A", 5), ("B", 2)] {
        app.add_plain_product(sku, n).await;
    }
    let order = app
        .create(&order_of(json!([{"sku": "A", "quantity": 2}])))
        .await;
    app.act(&order, "confirm").await;
    let id = order["id"].as_str().unwrap();
    let path = format!("/v1/orders/{id}");
    let edit = |items: Value| {
        let app = &app;
        let path = path.clone();
        async move { app.patch(&path, &json!({ "items": items })).await }
    };
    let r = edit(json!([{"sku": "A", "quantity": 4}])).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.stock("A").await, (5, 4));
    edit(json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])).await;
    assert_eq!(
        (app.stock("A").await, app.stock("B").await),
        ((5, 1), (2, 2))
    );
    // Asking for more than there is changes nothing.
    let p = problem(
        edit(json!([{"sku": "A", "quantity": 9}])).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        p["shortages"],
        json!([{"sku": "A", "requested": 8, "available": 4}])
    );
    assert_eq!(
        (app.stock("A").await, app.stock("B").await),
        ((5, 1), (2, 2))
    );
    let r: Value = edit(json!([{"name": "Gift wrap", "quantity": 1, "unit_price": "5.00"}]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["reserved"], json!({}));
    assert_eq!(
        (app.stock("A").await, app.stock("B").await),
        ((5, 0), (2, 0))
    );
    app.assert_no_drift().await;
}

#[tokio::test]
async fn concurrent_confirmations_never_oversell() {
    let app = spawn_app().await;
    app.add_plain_product("HOT", 10).await;
    let mut orders = Vec::new();
    for _ in 0..100 {
        orders.push(
            app.create(&order_of(json!([{"sku": "HOT", "quantity": 1}])))
                .await,
        );
    }
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = orders
        .into_iter()
        .map(|o| {
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move { app.act(&o, "confirm").await.status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let short = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((ok, short), (10, 90), "{statuses:?}");
    assert_eq!(app.stock("HOT").await, (10, 10));
    let confirmed = app.json("/v1/orders/count?status=confirmed").await;
    assert_eq!(confirmed["count"], 10);
    let r = app.json("/v1/stock/reconcile").await;
    assert_eq!((&r["in_balance"], &r["checked"]), (&json!(true), &json!(1)));
}

#[tokio::test]
async fn settings_are_read_by_all_and_changed_by_owners_and_admins() {
    let app = spawn_app().await;
    let mut s = app.json("/v1/settings").await;
    let messaging = s.as_object_mut().unwrap().remove("messaging").unwrap();
    assert_eq!(
        s,
        json!({"reservation_policy": "on_confirm", "reservation_minutes": 30, "free_text_lines": true, "whatsapp_number": null, "payment_instructions": null, "storefront_enabled": false, "payment_provider": null, "auto_complete": false,
            "tax": {"prices_include_tax": false, "rules": [], "shipping_class": null}, "shipping_rates": [],
            "pricing_providers": {"price": null, "promotion": null, "tax": null, "customer": null, "deadline_ms": 500, "on_failure": "fallback"}})
    );
    assert_eq!(
        (&messaging["whatsapp"], &messaging["email"]),
        (&Value::Null, &Value::Null),
        "no channel until the shop sets one up"
    );
    let integration = app.key_for(Role::Integration).await;
    let r = app
        .client
        .patch(app.url("/v1/settings"))
        .bearer_auth(&integration)
        .json(&json!({"free_text_lines": false}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN).await;
    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({"reservation_minutes": 0, "whatsapp_number": "080", "reservation_policy": "later"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["reservation_policy"]);
    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({"reservation_minutes": 0, "whatsapp_number": "080", "payment_instructions": "  "}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        [
            "reservation_minutes",
            "whatsapp_number",
            "payment_instructions"
        ]
    );
    app.settings(json!({"reservation_policy": "none", "whatsapp_number": "+234 801 234 5678", "payment_instructions": " Bank transfer: GTBank 0123456789 "}))
        .await;
    let s = app.json("/v1/settings").await;
    assert_eq!(
        (
            &s["reservation_policy"],
            &s["whatsapp_number"],
            &s["payment_instructions"]
        ),
        (
            &json!("none"),
            &json!("+2348012345678"),
            &json!("Bank transfer: GTBank 0123456789")
        )
    );
    app.settings(json!({"payment_instructions": null})).await;
    assert_eq!(
        app.json("/v1/settings").await["payment_instructions"],
        Value::Null
    );
    // Under `none`, orders never touch stock.
    app.add_plain_product("A", 1).await;
    let order = app
        .create(&order_of(json!([{"sku": "A", "quantity": 5}])))
        .await;
    let confirmed: Value = app.act(&order, "confirm").await.json().await.unwrap();
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(app.stock("A").await, (1, 0));
    app.deliver_all(confirmed["id"].as_str().unwrap()).await;
    app.act(&confirmed, "complete").await;
    assert_eq!(
        app.stock("A").await,
        (1, 0),
        "an order that holds nothing deducts nothing"
    );
}

#[tokio::test]
async fn reconcile_reports_stock_that_does_not_add_up() {
    let app = spawn_app().await;
    app.add_plain_product("A", 4).await;
    app.assert_no_drift().await;
    // A reservation no order holds, written behind the domain's back.
    let skew: ordo_store::ProductChange = Box::new(|p: &mut ordo_domain::Product| {
        p.reserved += 1;
        p.version += 1;
        Ok(None)
    });
    app.store
        .change_product(
            app.tenant.id,
            ordo_domain::Sku::parse("A").unwrap(),
            None,
            skew,
        )
        .await
        .unwrap();
    let r = app.json("/v1/stock/reconcile").await;
    assert_eq!(r["in_balance"], false);
    assert_eq!(
        r["drift"],
        json!([{"sku": "A", "on_hand": 4, "reserved": 1, "held_by_orders": 0, "on_hand_by_movements": 4, "reserved_by_movements": 0}])
    );
}

#[tokio::test]
async fn on_create_reservations_hold_stock_until_they_lapse() {
    let app = crate::helpers::spawn_app_with(|c| c.jobs.poll_interval_ms = 100).await;
    app.settings(json!({"reservation_policy": "on_create", "reservation_minutes": 1}))
        .await;
    app.add_plain_product("A", 5).await;
    let before = ordo_domain::Timestamp::now();
    let kept = app
        .create(&order_of(json!([{"sku": "A", "quantity": 2}])))
        .await;
    assert_eq!(kept["reserved"], json!({"A": 2}));
    let until =
        ordo_domain::Timestamp::parse_rfc3339(kept["reserved_until"].as_str().unwrap()).unwrap();
    let ahead = until.unix_millis() - before.unix_millis();
    assert!((59_000..=61_000).contains(&ahead), "{ahead} ms ahead");
    // Creating more than is available is refused, naming what is short.
    let p = problem(
        app.post(
            "/v1/orders",
            &order_of(json!([{"sku": "A", "quantity": 4}])),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        p["shortages"],
        json!([{"sku": "A", "requested": 4, "available": 3}])
    );
    // Free-text orders hold nothing, so nothing lapses.
    let free = app
        .create(&order_of(
            json!([{"name": "Gift wrap", "quantity": 1, "unit_price": "5.00"}]),
        ))
        .await;
    assert_eq!(free["reserved_until"], Value::Null);
    let lapsing = app
        .create(&order_of(json!([{"sku": "A", "quantity": 3}])))
        .await;
    assert_eq!(app.stock("A").await, (5, 5));
    // Confirming keeps the stock and drops the expiry.
    let confirmed: Value = app.act(&kept, "confirm").await.json().await.unwrap();
    assert_eq!(
        (&confirmed["reserved"], &confirmed["reserved_until"]),
        (&json!({"A": 2}), &Value::Null)
    );

    // Time passes for the other one (its expiry is moved into the past).
    let id: ordo_domain::OrderId = lapsing["id"].as_str().unwrap().parse().unwrap();
    let past = ordo_domain::Timestamp::now().plus_millis(-1);
    app.store
        .change_order(
            ordo_store::Scope::tenant(app.tenant.id),
            ordo_store::OrderLookup::Id(id),
            None,
            ordo_domain::Actor::system(),
            ordo_store::OrderChange::new(move |o, _| {
                o.reserved_until = Some(past);
                Ok(Some(ordo_domain::EventDraft {
                    event_type: ordo_domain::EventType::OrderUpdated,
                    data: json!({"test": "the clock moved"}),
                }))
            }),
        )
        .await
        .unwrap();
    let path = format!("/v1/orders/{id}?expand=events");
    let expired =
        crate::helpers::settle(|| app.json(&path), |o: &Value| o["status"] == "cancelled").await;
    assert_eq!(expired["cancel_reason"], "reservation_expired");
    assert_eq!(expired["reserved"], json!({}));
    let last = expired["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (
            &last["type"],
            &last["data"]["reason"],
            &last["actor"]["type"]
        ),
        (
            &json!("order.cancelled"),
            &json!("reservation_expired"),
            &json!("system")
        )
    );
    assert_eq!(app.stock("A").await, (5, 2));
    // The others are untouched.
    let free_id = free["id"].as_str().unwrap();
    assert_eq!(
        app.json(&format!("/v1/orders/{free_id}")).await["status"],
        "pending"
    );
    app.assert_no_drift().await;
}
