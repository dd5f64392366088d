use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, plain_order, problem, says, spawn_app};

#[tokio::test]
async fn illegal_transitions_name_the_status_and_the_allowed_actions() {
    let app = spawn_app().await;
    let o = app.create(&plain_order()).await;
    let id = o["id"].as_str().unwrap();
    let p = problem(
        app.post(&format!("/v1/orders/{id}/complete"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["type"], "/problems/invalid-transition");
    assert_eq!(p["current_status"], "pending");
    assert_eq!(
        p["allowed_actions"],
        json!(["confirm", "cancel", "edit", "cancel_items"])
    );
    says(&p, "cannot complete an order whose status is pending");

    app.post(
        &format!("/v1/orders/{id}/cancel"),
        &json!({"reason": "out of stock"}),
    )
    .await;
    let p = problem(
        app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["current_status"], "cancelled");
    assert_eq!(p["allowed_actions"], json!([]));
}

#[tokio::test]
async fn cancel_needs_a_reason_and_actions_take_no_unknown_fields() {
    let app = spawn_app().await;
    let id = app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .post(app.url(&format!("/v1/orders/{id}/cancel")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["reason"]);
    let p = problem(
        app.post(&format!("/v1/orders/{id}/confirm"), &json!({"force": true}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["force"]);
    // An empty body is fine for confirm.
    let r = app
        .client
        .post(app.url(&format!("/v1/orders/{id}/confirm")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_change_is_on_the_timeline() {
    let app = spawn_app().await;
    let id = app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.patch(
        &format!("/v1/orders/{id}"),
        &json!({"notes": "Leave at the gate"}),
    )
    .await;
    app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    app.post(
        &format!("/v1/orders/{id}/cancel"),
        &json!({"reason": "buyer asked"}),
    )
    .await;
    let events: Value = app
        .get(&format!("/v1/orders/{id}/events"))
        .await
        .json()
        .await
        .unwrap();
    let events = events["data"].as_array().unwrap();
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "order.created",
            "order.updated",
            "order.confirmed",
            "order.cancelled"
        ]
    );
    let sequences: Vec<_> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
    assert_eq!(
        events[1]["data"]["changes"]["notes"]["from"],
        "Delivery by 5pm"
    );
    assert_eq!(
        events[1]["data"]["changes"]["notes"]["to"],
        "Leave at the gate"
    );
    assert_eq!(events[2]["data"]["status"]["from"], "pending");
    assert_eq!(events[3]["data"]["reason"], "buyer asked");
    assert_eq!(events[0]["actor"]["type"], "api_key");
    assert_eq!(events[0]["actor"]["role"], "owner");

    let expanded: Value = app
        .get(&format!("/v1/orders/{id}?expand=events"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(expanded["events"].as_array().unwrap().len(), 4);
    problem(
        app.get(&format!("/v1/orders/{id}?expand=payments")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn edits_recompute_totals_while_editable_and_are_refused_after() {
    let app = spawn_app().await;
    let id = app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .patch(&format!("/v1/orders/{id}"), &json!({
            "items": [{"name": "Product A", "quantity": 1, "unit_price": "5000.00"}, {"name": "Gift wrap", "quantity": 1, "unit_price": "500.00"}],
            "shipping_address": {"line1": "1 Marina", "city": "Lagos", "country": "NG"},
            "buyer": {"name": "Ada O.", "email": "ada@example.com"}
        }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["total"], "5500.00");
    assert_eq!(o["items"].as_array().unwrap().len(), 2);
    assert_eq!(o["shipping_address"]["country"], "NG");
    assert_eq!(o["buyer"]["email"], "ada@example.com");
    assert!(
        o["buyer"]["phone"].is_null(),
        "buyer is replaced as a whole"
    );

    let cleared: Value = app
        .patch(
            &format!("/v1/orders/{id}"),
            &json!({"notes": null, "shipping_address": null}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(cleared["notes"].is_null());
    assert!(cleared["shipping_address"].is_null());

    let p = problem(
        app.patch(&format!("/v1/orders/{id}"), &json!({"items": []}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["items"]);

    app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    app.deliver_all(&id).await;
    app.post(&format!("/v1/orders/{id}/complete"), &json!({}))
        .await;
    let p = problem(
        app.patch(
            &format!("/v1/orders/{id}"),
            &json!({"notes": "late change"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["current_status"], "completed");
}

#[tokio::test]
async fn if_match_stops_lost_updates() {
    let app = spawn_app().await;
    let id = app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let send = |etag: &'static str, notes: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            app.client
                .patch(app.url(&format!("/v1/orders/{id}")))
                .bearer_auth(&app.key)
                .header("If-Match", etag)
                .json(&json!({"notes": notes}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(send("\"1\"", "first").await.status(), StatusCode::OK);
    let p = problem(
        send("\"1\"", "second").await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(p["current_version"], 2);
    assert_eq!(send("W/\"2\"", "second").await.status(), StatusCode::OK);
    problem(send("garbage", "x").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let o: Value = app
        .get(&format!("/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(o["notes"], "second");
}

#[tokio::test]
async fn concurrent_writers_with_the_same_version_only_one_wins() {
    let app = spawn_app().await;
    let id = app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let attempts = (0..20).map(|i| {
        let app = &app;
        let id = id.clone();
        async move {
            app.client
                .patch(app.url(&format!("/v1/orders/{id}")))
                .bearer_auth(&app.key)
                .header("If-Match", "\"1\"")
                .json(&json!({"notes": format!("writer {i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
            .count(),
        19
    );
    let o: Value = app
        .get(&format!("/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(o["version"], 2);
}

#[tokio::test]
async fn concurrent_confirms_confirm_once() {
    let app = spawn_app().await;
    let id = app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let statuses = join_all((0..10).map(|_| {
        let app = &app;
        let id = id.clone();
        async move {
            app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
                .await
                .status()
        }
    }))
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        9
    );
    let events: Value = app
        .get(&format!("/v1/orders/{id}/events"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
}
