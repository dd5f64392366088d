//! Shipments and returns over HTTP, on whichever store the run uses:
//! partial shipments, stock, transitions, serialised units, returns with
//! restock and refund, automatic completion.

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::charges;
use crate::helpers::{fields, problem, says, settle, spawn_app, spawn_app_with, Receiver, TestApp};
use crate::provider::{FakeProvider, Reply};

impl TestApp {
    /// A confirmed order of catalog lines `(sku, units)`.
    async fn confirmed(&self, lines: &[(&str, u32)]) -> Value {
        let items: Vec<Value> = lines
            .iter()
            .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
            .collect();
        let order = self
            .create(
                &json!({"currency": "NGN", "buyer": {"phone": "+2348012345678"}, "items": items}),
            )
            .await;
        let id = order["id"].as_str().unwrap();
        let r = self
            .post(&format!("/v1/orders/{id}/confirm"), &json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "confirm");
        r.json().await.unwrap()
    }

    async fn ship(&self, order: &str, body: &Value) -> reqwest::Response {
        self.post(&format!("/v1/orders/{order}/shipments"), body)
            .await
    }

    /// Moves shipment `id` by `action`, asserting it was allowed.
    async fn shipment_act(&self, id: &str, action: &str, body: &Value) -> Value {
        let r = self
            .post(&format!("/v1/shipments/{id}/{action}"), body)
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{action}");
        r.json().await.unwrap()
    }

    async fn event_types(&self, order: &str) -> Vec<String> {
        self.json(&format!("/v1/orders/{order}/events")).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }
}

fn line(order: &Value, i: usize) -> String {
    order["items"][i]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_multi_line_order_ships_in_two_parcels_and_stock_follows() {
    let app = spawn_app().await;
    app.add_plain_product("A", 10).await;
    app.add_plain_product("B", 10).await;
    let order = app.confirmed(&[("A", 3), ("B", 2)]).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        (app.stock("A").await, app.stock("B").await),
        ((10, 3), (10, 2))
    );
    assert_eq!(
        order["allowed_actions"],
        json!(["cancel", "edit", "ship", "cancel_items"])
    );

    // Parcel 1: two of A.
    let r = app
        .ship(
            id,
            &json!({"lines": [{"line_id": line(&order, 0), "quantity": 2}], "carrier": "GIG Logistics"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let first: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/shipments/{}", first["id"].as_str().unwrap())
    );
    assert_eq!(first["state"], "pending");
    assert_eq!(first["allowed_actions"], json!(["ship", "cancel"]));
    assert_eq!(first["order_id"], order["id"]);
    assert_eq!(app.json(&location).await, first);
    assert_eq!(app.stock("A").await, (10, 3), "packing moves nothing");
    let shipped = app
        .shipment_act(
            first["id"].as_str().unwrap(),
            "ship",
            &json!({"tracking_number": "GIG-1"}),
        )
        .await;
    assert_eq!(
        (&shipped["state"], &shipped["tracking_number"]),
        (&json!("shipped"), &json!("GIG-1"))
    );
    assert_eq!(
        app.stock("A").await,
        (8, 1),
        "two left stock and the reservation"
    );
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (&o["fulfillment_status"], &o["stage"]),
        (&json!("partially_shipped"), &json!("shipped"))
    );
    assert_eq!(
        o["items"][0]["fulfillment"],
        json!({"ordered": 3, "packing": 0, "shipped": 2, "delivered": 0, "returned": 0, "cancelled": 0})
    );
    assert_eq!(o["reserved"], json!({"A": 1, "B": 2}));

    // Parcel 2: whatever is left.
    let second: Value = app.ship(id, &json!({})).await.json().await.unwrap();
    let units: Vec<(String, u64)> = second["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["line_id"].as_str().unwrap().to_string(),
                l["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(units, [(line(&order, 0), 1), (line(&order, 1), 2)]);
    let p = problem(app.ship(id, &json!({})).await, StatusCode::CONFLICT).await;
    says(&p, "every unit is already in a shipment");
    let sid = second["id"].as_str().unwrap();
    app.shipment_act(sid, "ship", &json!({})).await;
    assert_eq!(
        (app.stock("A").await, app.stock("B").await),
        ((7, 0), (8, 0))
    );
    let in_transit = app
        .shipment_act(
            sid,
            "in_transit",
            &json!({"tracking_url": "https://track.example.com/GIG-2"}),
        )
        .await;
    assert_eq!(
        in_transit["tracking_url"],
        "https://track.example.com/GIG-2"
    );
    app.shipment_act(first["id"].as_str().unwrap(), "deliver", &json!({}))
        .await;
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["fulfillment_status"], "partially_delivered");
    let p = problem(
        app.post(&format!("/v1/orders/{id}/complete"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    says(&p, "not every unit has been delivered");
    app.shipment_act(sid, "deliver", &json!({})).await;
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (&o["fulfillment_status"], &o["stage"]),
        (&json!("delivered"), &json!("delivered"))
    );
    assert_eq!(o["reserved"], json!({}));
    let done: Value = app
        .post(&format!("/v1/orders/{id}/complete"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "completed");

    let list = app.json(&format!("/v1/orders/{id}/shipments")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"], o["shipments"]);
    assert_eq!(
        app.event_types(id).await,
        [
            "order.created",
            "order.confirmed",
            "shipment.created",
            "shipment.shipped",
            "shipment.created",
            "shipment.shipped",
            "shipment.in_transit",
            "shipment.delivered",
            "shipment.delivered",
            "order.completed"
        ]
    );
    // The feed (what webhooks deliver) has them too.
    let feed = app
        .json(&format!("/v1/events?order_id={id}&types=shipment.shipped"))
        .await;
    assert_eq!(feed["data"].as_array().unwrap().len(), 2);
    let moves = app.json("/v1/products/A/stock-movements").await;
    let kinds: Vec<&str> = moves["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "deduction").count(),
        2,
        "{kinds:?}"
    );
    let r = app.json("/v1/stock/reconcile").await;
    assert_eq!(r["in_balance"], true, "{r}");
}

#[tokio::test]
async fn shipments_refuse_what_their_state_does_not_allow() {
    let app = spawn_app().await;
    app.add_plain_product("A", 5).await;
    let pending = app
        .create(&json!({"currency": "NGN", "buyer": {"phone": "+2348012345678"}, "items": [{"sku": "A", "quantity": 2}]}))
        .await;
    let pid = pending["id"].as_str().unwrap();
    let p = problem(app.ship(pid, &json!({})).await, StatusCode::CONFLICT).await;
    assert_eq!(
        (&p["current_status"], &p["type"]),
        (&json!("pending"), &json!("/problems/invalid-transition"))
    );

    let order = app.confirmed(&[("A", 2)]).await;
    let id = order["id"].as_str().unwrap();
    let s: Value = app.ship(id, &json!({})).await.json().await.unwrap();
    let sid = s["id"].as_str().unwrap();
    let p = problem(
        app.post(&format!("/v1/shipments/{sid}/deliver"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["current_state"], "pending");
    assert_eq!(p["allowed_actions"], json!(["ship", "cancel"]));
    assert_eq!(
        p["detail"],
        "cannot deliver a shipment whose state is pending; allowed now: ship, cancel"
    );
    let p = problem(
        app.patch(&format!("/v1/orders/{id}"), &json!({"notes": "x"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    says(&p, "a shipment is being packed");

    // Cancelled before it left: stock as it was, the units free again.
    let cancelled = app.shipment_act(sid, "cancel", &json!({})).await;
    assert_eq!(
        (&cancelled["state"], &cancelled["allowed_actions"]),
        (&json!("cancelled"), &json!([]))
    );
    assert_eq!(app.stock("A").await, (5, 2));
    let again = app.shipment_act(sid, "cancel", &json!({})).await;
    assert_eq!(again, cancelled, "the same action again changes nothing");
    let p = problem(
        app.post(&format!("/v1/shipments/{sid}/ship"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        p["detail"],
        "cannot ship a shipment whose state is cancelled; nothing more can be done to it"
    );

    // Unknown actions, ids, other tenants and read-only keys.
    problem(
        app.post(&format!("/v1/shipments/{sid}/teleport"), &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/v1/shipments/shp_nonsense").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/v1/shipments/shp_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let other = app.other_tenant_key().await;
    problem(
        app.get_as(&other, &format!("/v1/shipments/{sid}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.post_as(&other, &format!("/v1/shipments/{sid}/ship"), &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let viewer = app.key_for(Role::Viewer).await;
    problem(
        app.post_as(&viewer, &format!("/v1/orders/{id}/shipments"), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Bad lines and tracking are named.
    let p = problem(
        app.ship(
            id,
            &json!({"lines": [{"line_id": line(&order, 0), "quantity": 3}, {"line_id": "li_x"}], "tracking_url": "ftp://x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["tracking_url", "lines[1].line_id"]);
    let p = problem(
        app.ship(
            id,
            &json!({"lines": [{"line_id": line(&order, 0), "quantity": 3}]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["accepted"], "1 to 2");

    // A stale If-Match ships nothing twice.
    let current = app.json(&format!("/v1/orders/{id}")).await["version"]
        .as_u64()
        .unwrap();
    let s = app
        .client
        .post(app.url(&format!("/v1/orders/{id}/shipments")))
        .bearer_auth(&app.key)
        .header("if-match", format!("\"{}\"", current - 1))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(s.status(), StatusCode::PRECONDITION_FAILED);

    // Cancelling the order calls off the shipment being packed.
    let s: Value = app.ship(id, &json!({})).await.json().await.unwrap();
    let p = problem(
        app.post(
            &format!("/v1/shipments/{}/cancel", s["id"].as_str().unwrap()),
            &json!({"tracking_url": "https://track.example.com/1"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["tracking_url"]);
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "out of time"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let s = app
        .json(&format!("/v1/shipments/{}", s["id"].as_str().unwrap()))
        .await;
    assert_eq!(s["state"], "cancelled");
    assert_eq!(app.stock("A").await, (5, 0));

    // Shipped goods cannot be cancelled.
    let order = app.confirmed(&[("A", 1)]).await;
    let id = order["id"].as_str().unwrap();
    let s: Value = app.ship(id, &json!({})).await.json().await.unwrap();
    app.shipment_act(s["id"].as_str().unwrap(), "ship", &json!({}))
        .await;
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "late"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    says(&p, "record a return instead");
    let r = app.json("/v1/stock/reconcile").await;
    assert_eq!(r["in_balance"], true, "{r}");
}

#[tokio::test]
async fn serialised_units_are_checked_when_given_and_when_shipped() {
    let app = spawn_app().await;
    let order = |items: Value| json!({"currency": "SEK", "buyer": {"email": "ada@example.com"}, "items": items});
    let phone = |units: Value| json!({"name": "iPhone 16 Pro", "unit_price": "12990.00", "quantity": 2, "instances": units});
    let plan = |units: Value| json!({"name": "Unlimited plan", "unit_price": "399.00", "quantity": 1, "instances": units});

    let p = problem(
        app.post(
            "/v1/orders",
            &order(json!([phone(json!([{"serial": "359876543210123"}]))])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["items[0].instances"]);
    assert_eq!(
        p["errors"][0]["accepted"],
        "none, or exactly 2 (the quantity)"
    );
    let p = problem(
        app.post(
            "/v1/orders",
            &order(json!([
                plan(json!([{"refers_to": "359876543210123"}])),
                phone(json!([{"serial": "359876543210123"}, {"serial": "359876543210124"}]))
            ])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        ["items[0].instances[0].refers_to"],
        "the phone must come first"
    );
    let p = problem(
        app.post(
            "/v1/orders",
            &order(json!([phone(
                json!([{"serial": "359876543210123"}, {"serial": " 359876543210123 "}])
            )])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["items[0].instances[1].serial"]);

    let created = app
        .create(&order(json!([
            phone(json!([{"serial": "359876543210123"}, {"serial": "359876543210124"}])),
            plan(json!([{"refers_to": "359876543210124"}])),
            {"name": "SIM", "unit_price": "10.00", "quantity": 1}
        ])))
        .await;
    assert_eq!(
        created["items"][1]["instances"],
        json!([{"refers_to": "359876543210124"}])
    );
    let id = created["id"].as_str().unwrap();
    app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    let ship = |i: usize, units: Value| json!({"lines": [{"line_id": line(&created, i), "quantity": 1, "instances": units}]});
    let p = problem(
        app.ship(id, &ship(0, json!([{"serial": "359876543210999"}])))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["lines[0].instances[0]"]);
    assert!(
        p["errors"][0]["accepted"]
            .as_str()
            .unwrap()
            .contains("359876543210123"),
        "{p}"
    );
    let s: Value = app
        .ship(id, &ship(0, json!([{"serial": "359876543210124"}])))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        s["lines"][0]["instances"],
        json!([{"serial": "359876543210124"}])
    );
    // A unit given at shipment to an item that had none: new, and for an earlier item's unit.
    let p = problem(
        app.ship(
            id,
            &ship(
                2,
                json!([{"serial": "8946000000000000001", "refers_to": "359876543210999"}]),
            ),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["lines[0].instances[0].refers_to"]);
    let s: Value = app
        .ship(
            id,
            &ship(
                2,
                json!([{"serial": "8946000000000000001", "refers_to": "359876543210124"}]),
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        s["lines"][0]["instances"][0]["serial"],
        "8946000000000000001"
    );
    // The rest of the phones: the next unit given with it.
    let rest: Value = app.ship(id, &json!({})).await.json().await.unwrap();
    assert_eq!(
        rest["lines"][0]["instances"],
        json!([{"serial": "359876543210123"}])
    );

    // Sent again by an integration (seed 003's PUT), the units compare
    // as given, spaces and all; an edit may change them, checked the same.
    let path = "/v1/orders/external/com.acme.order-id/SO-77";
    let body = order(json!([
        phone(json!([{"serial": " 359876543210555"}, {"serial": "359876543210556"}])),
        plan(json!([{"refers_to": "359876543210556 "}]))
    ]));
    let r = app.put(path, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    let r = app.put(path, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["version"], first["version"], "nothing changed");
    let id = first["id"].as_str().unwrap();
    let p = problem(
        app.patch(
            &format!("/v1/orders/{id}"),
            &json!({"items": [phone(json!([{"serial": "359876543210557"}]))]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["items[0].instances"]);
    let r = app
        .patch(
            &format!("/v1/orders/{id}"),
            &json!({"items": [
                phone(json!([{"serial": "359876543210557"}, {"serial": "359876543210556"}])),
                plan(json!([{"refers_to": "359876543210557"}]))
            ]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let edited: Value = r.json().await.unwrap();
    assert_eq!(
        edited["items"][1]["instances"],
        json!([{"refers_to": "359876543210557"}])
    );
}

#[tokio::test]
async fn returns_are_bounded_restocked_and_refunded() {
    let app = spawn_app().await;
    app.add_plain_product("A", 10).await;
    let order = app.confirmed(&[("A", 3)]).await;
    let id = order["id"].as_str().unwrap();
    app.pay_in_full(&order).await;
    let ret = |lines: Value| json!({"lines": lines, "reason": "wrong size"});
    let a = line(&order, 0);
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/returns"),
            &ret(json!([{"line_id": a, "quantity": 1}])),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    says(&p, "no delivered units are left to return");
    let s: Value = app
        .ship(id, &json!({"lines": [{"line_id": a, "quantity": 2}]}))
        .await
        .json()
        .await
        .unwrap();
    let sid = s["id"].as_str().unwrap();
    app.shipment_act(sid, "ship", &json!({})).await;
    app.shipment_act(sid, "deliver", &json!({})).await;
    assert_eq!(app.stock("A").await, (8, 1));

    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/returns"),
            &ret(json!([{"line_id": a, "quantity": 3}])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        (fields(&p), &p["errors"][0]["accepted"]),
        (vec!["lines[0].quantity".to_string()], &json!("1 to 2"))
    );
    let r = app
        .post(
            &format!("/v1/orders/{id}/returns"),
            &ret(json!([{"line_id": a, "quantity": 1}])),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    assert_eq!(
        (&first["state"], &first["allowed_actions"]),
        (&json!("requested"), &json!(["receive", "close"]))
    );
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/returns"),
            &ret(json!([{"line_id": a, "quantity": 2}])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        p["errors"][0]["accepted"], "1 to 1",
        "one is already in a return"
    );
    let rid = first["id"].as_str().unwrap();
    let p = problem(
        app.post(&format!("/v1/orders/{id}/returns/{rid}/refund"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["current_state"], "requested");

    // Received back into stock, then refunded.
    let received: Value = app
        .post(
            &format!("/v1/orders/{id}/returns/{rid}/receive"),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(received["lines"][0]["restocked"], 1, "{received}");
    assert_eq!(received["lines"][0]["restock"], true);
    assert_eq!(app.stock("A").await, (9, 1), "the unit is back on hand");
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["fulfillment_status"], "partially_returned");
    assert_eq!(o["items"][0]["fulfillment"]["returned"], 1);
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/returns/{rid}/refund"),
            &json!({"amount": "12500.51"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["amount"]);
    assert_eq!(p["errors"][0]["accepted"], "at most 12500.50");
    let refunded: Value = app
        .post(&format!("/v1/orders/{id}/returns/{rid}/refund"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refunded["state"], "refunded");
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payment_status"], "partially_refunded");
    assert_eq!(o["refunds"][0]["amount"], "12500.50");
    assert_eq!(
        o["refunds"][0]["lines"],
        json!([{"line_id": a, "quantity": 1}])
    );
    assert_eq!(refunded["refund_ids"], json!([o["refunds"][0]["id"]]));
    let p = problem(
        app.post(&format!("/v1/orders/{id}/returns/{rid}/close"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["allowed_actions"], json!([]));

    // The other delivered unit comes back damaged: not restocked, closed without a refund.
    let second: Value = app
        .post(
            &format!("/v1/orders/{id}/returns"),
            &json!({"reason": "damaged"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["lines"],
        json!([{"line_id": a, "quantity": 1, "restock": null, "restocked": 0}])
    );
    let sid2 = second["id"].as_str().unwrap();
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/returns/{sid2}/receive"),
            &json!({"lines": [{"line_id": "li_01JD5Q4ZB8Y7K6M3N2P1R0S9TV", "restock": true}]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["lines[0].line_id"]);
    app.post(
        &format!("/v1/orders/{id}/returns/{sid2}/receive"),
        &json!({"restock": false}),
    )
    .await;
    assert_eq!(
        app.stock("A").await,
        (9, 1),
        "damaged goods stay out of stock"
    );
    let closed: Value = app
        .post(&format!("/v1/orders/{id}/returns/{sid2}/close"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(closed["state"], "closed");
    let returns = app.json(&format!("/v1/orders/{id}/returns")).await;
    assert_eq!(returns["data"].as_array().unwrap().len(), 2);
    problem(
        app.post(&format!("/v1/orders/{id}/returns/ret_x/close"), &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let types = app.event_types(id).await;
    for t in [
        "return.requested",
        "return.received",
        "return.refunded",
        "return.closed",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    let r = app.json("/v1/stock/reconcile").await;
    assert_eq!(r["in_balance"], true, "{r}");
}

#[tokio::test]
async fn a_paid_order_completes_itself_when_delivered_if_the_shop_asks() {
    let app = spawn_app().await;
    app.add_plain_product("A", 4).await;
    app.settings(json!({"auto_complete": true})).await;
    let order = app.confirmed(&[("A", 1)]).await;
    let id = order["id"].as_str().unwrap();
    app.pay_in_full(&order).await;
    let o = app.deliver_all(id).await;
    assert_eq!(
        (&o["status"], &o["stage"]),
        (&json!("completed"), &json!("completed"))
    );
    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    let last = events["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["type"], &last["data"]["automatic"]),
        (&json!("order.completed"), &json!(true))
    );

    // Delivered first, paid after: the payment completes it.
    let order = app.confirmed(&[("A", 1)]).await;
    let id = order["id"].as_str().unwrap();
    let o = app.deliver_all(id).await;
    assert_eq!(o["status"], "confirmed", "not paid yet");
    let paid = app.pay_in_full(&order).await;
    assert_eq!(paid["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipment_and_return_events_reach_the_webhooks_that_want_them() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(|c| c.webhooks.allow_private_urls = true).await;
    app.add_plain_product("A", 4).await;
    app.settings(json!({"auto_complete": true})).await;
    app.subscribe(&json!({"url": receiver.url, "event_types": ["shipment.shipped", "shipment.delivered", "order.completed", "return.received"]}))
        .await;
    let order = app.confirmed(&[("A", 1)]).await;
    let id = order["id"].as_str().unwrap();
    app.pay_in_full(&order).await;
    app.deliver_all(id).await;
    let ret: Value = app
        .post(
            &format!("/v1/orders/{id}/returns"),
            &json!({"reason": "too small"}),
        )
        .await
        .json()
        .await
        .unwrap();
    app.post(
        &format!(
            "/v1/orders/{id}/returns/{}/receive",
            ret["id"].as_str().unwrap()
        ),
        &json!({}),
    )
    .await;

    let requests = settle(|| async { receiver.requests() }, |r| r.len() >= 4).await;
    let mut events: Vec<Value> = requests
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect();
    events.sort_by_key(|e| e["sequence"].as_u64().unwrap());
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "shipment.shipped",
            "shipment.delivered",
            "order.completed",
            "return.received"
        ]
    );
    // Each carries the order as it was right after it.
    assert_eq!(events[0]["data"]["fulfillment_status"], "shipped");
    assert_eq!(events[2]["data"]["status"], "completed");
    assert_eq!(events[3]["data"]["fulfillment_status"], "returned");
    assert_eq!(app.stock("A").await, (4, 0), "shipped, then back on hand");
}

#[tokio::test]
async fn a_return_refunded_through_the_provider_waits_for_it_and_may_be_tried_again() {
    let fake = FakeProvider::start().await;
    let app = charges::app_with(&fake, 100).await;
    let id = charges::order(&app).await;
    let r = app
        .post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    charges::charge(&app, &id).await;
    charges::order_when(&app, &id, |o| o["payment_status"] == "paid").await;
    app.deliver_all(&id).await;
    let r = app
        .post(
            &format!("/v1/orders/{id}/returns"),
            &json!({"reason": "too small"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/orders/{id}/returns/{rid}/receive"),
        &json!({"restock": false}),
    )
    .await;
    let the_return = || async {
        let all = app.json(&format!("/v1/orders/{id}/returns")).await;
        all["data"][0].clone()
    };

    // The provider refuses the refund: the return is received again.
    fake.then([Reply::Ok("failed")]);
    let r = app
        .post(&format!("/v1/orders/{id}/returns/{rid}/refund"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let pending: Value = r.json().await.unwrap();
    assert_eq!(
        (&pending["state"], &pending["allowed_actions"]),
        (&json!("refund_pending"), &json!([]))
    );
    assert_eq!(pending["refund_amount"], "10000.00");
    let failed = settle(the_return, |r| r["state"] == "received").await;
    assert_eq!(failed["state"], "received", "{failed}");
    assert_eq!(failed["allowed_actions"], json!(["refund", "close"]));

    // Tried again, it succeeds: the second refund carries the units.
    let r = app
        .post(&format!("/v1/orders/{id}/returns/{rid}/refund"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = settle(the_return, |r| r["state"] == "refunded").await;
    assert_eq!(done["state"], "refunded", "{done}");
    assert_eq!(done["refund_ids"].as_array().unwrap().len(), 2);
    assert_eq!(done["refund_amount"], "10000.00");
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payment_status"], "refunded");
    assert_eq!(
        (&o["refunds"][0]["state"], &o["refunds"][1]["state"]),
        (&json!("failed"), &json!("succeeded"))
    );
    assert_eq!(o["refunds"][1]["lines"][0]["quantity"], 2);
    let types = app.event_types(&id).await;
    let after_receive: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .skip_while(|t| *t != "return.received")
        .skip(1)
        .collect();
    assert_eq!(
        after_receive,
        [
            "return.refund_pending",
            "refund.recorded",
            "refund.failed",
            "return.refund_failed",
            "return.refund_pending",
            "refund.recorded",
            "refund.succeeded",
            "return.refunded"
        ]
    );
}

#[tokio::test]
async fn a_partly_shipped_order_calls_off_the_rest_and_completes() {
    let app = spawn_app().await;
    app.add_plain_product("A", 10).await;
    app.add_plain_product("B", 10).await;
    let order = app.confirmed(&[("A", 2), ("B", 1)]).await;
    let id = order["id"].as_str().unwrap();
    app.pay_in_full(&order).await;
    let (a, b) = (line(&order, 0), line(&order, 1));
    let s: Value = app
        .ship(id, &json!({"lines": [{"line_id": a, "quantity": 1}]}))
        .await
        .json()
        .await
        .unwrap();
    let sid = s["id"].as_str().unwrap();
    app.shipment_act(sid, "ship", &json!({})).await;
    app.shipment_act(sid, "deliver", &json!({})).await;
    let p = problem(
        app.post(&format!("/v1/orders/{id}/cancel"), &json!({"reason": "x"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(p["allowed_actions"]
        .as_array()
        .unwrap()
        .contains(&json!("cancel_items")));

    let path = format!("/v1/orders/{id}/cancel-items");
    let cancel = |body: Value| {
        let path = path.clone();
        let app = &app;
        async move { app.post(&path, &body).await }
    };
    let p = problem(
        cancel(json!({"lines": [{"line_id": a, "quantity": 2}], "reason": "gone"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        (fields(&p), &p["errors"][0]["accepted"]),
        (vec!["lines[0].quantity".to_string()], &json!("1 to 1"))
    );
    let p = problem(
        cancel(json!({"reason": " "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["reason"]);
    let other = app.other_tenant_key().await;
    let r = app
        .post_as(
            &other,
            &format!("/v1/orders/{id}/cancel-items"),
            &json!({"reason": "not mine"}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;

    let r = cancel(json!({"reason": "out of stock"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &o["items"][0]["quantity"],
            &o["items"][0]["fulfillment"]["cancelled"]
        ),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        (
            &o["items"][1]["quantity"],
            &o["items"][1]["fulfillment"]["cancelled"]
        ),
        (&json!(0), &json!(1))
    );
    assert_eq!(o["total"], "12500.50");
    assert_eq!(o["fulfillment_status"], "delivered");
    assert_eq!(o["refunds"][0]["amount"], "25001.00");
    assert_eq!(o["refunds"][0]["state"], "pending", "paid back by hand");
    assert_eq!(o["payment_status"], "pending");
    assert_eq!(app.stock("A").await, (9, 0), "the unshipped A is let go");
    assert_eq!(app.stock("B").await, (10, 0));
    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    let updated = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "order.updated")
        .unwrap()
        .clone();
    assert_eq!(
        updated["data"]["cancelled_items"],
        json!([{"line_id": a, "quantity": 1}, {"line_id": b, "quantity": 1}])
    );
    assert_eq!(updated["data"]["reason"], "out of stock");
    let types = app.event_types(id).await;
    assert_eq!(
        types[types.len() - 2..],
        ["order.updated", "refund.recorded"]
    );
    problem(
        cancel(json!({"reason": "again"})).await,
        StatusCode::CONFLICT,
    )
    .await;

    // What is left was delivered: the order completes…
    let r = app
        .post(&format!("/v1/orders/{id}/complete"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // …and still takes its goods back.
    let r = app
        .post(
            &format!("/v1/orders/{id}/returns"),
            &json!({"reason": "faulty"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for step in ["receive", "refund"] {
        let r = app
            .post(&format!("/v1/orders/{id}/returns/{rid}/{step}"), &json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{step}");
    }
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (&o["status"], &o["fulfillment_status"]),
        (&json!("completed"), &json!("returned"))
    );
    assert_eq!(o["refunds"][1]["amount"], "12500.50");
    assert_eq!(app.stock("A").await, (10, 0), "the unit is back on hand");

    // An order that shipped nothing keeps at least one unit.
    let order = app.confirmed(&[("A", 2)]).await;
    let id = order["id"].as_str().unwrap();
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/cancel-items"),
            &json!({"reason": "all of it"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    says(&p, "cancel the order instead");
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel-items"),
            &json!({"lines": [{"line_id": line(&order, 0), "quantity": 1}], "reason": "one only"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.stock("A").await, (10, 1));
    let r = app.json("/v1/stock/reconcile").await;
    assert_eq!(r["in_balance"], true, "{r}");
}
