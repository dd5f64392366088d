use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, order_body, plain_order, problem, spawn_app};

#[tokio::test]
async fn a_created_order_has_the_documented_shape() {
    let app = spawn_app().await;
    let r = app.post("/v1/orders", &order_body()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["etag"], "\"1\"");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let o: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/orders/{}", o["id"].as_str().unwrap())
    );
    for field in [
        "id",
        "reference",
        "status",
        "payment_status",
        "fulfillment_status",
        "stage",
        "currency",
        "buyer",
        "items",
        "subtotal",
        "total",
        "notes",
        "external_ids",
        "version",
        "created_at",
        "updated_at",
    ] {
        assert!(!o[field].is_null(), "{field} missing");
    }
    assert!(o["reference"].as_str().unwrap().starts_with("ORD-"));
    assert_eq!(o["payment_status"], "unpaid");
    assert_eq!(o["fulfillment_status"], "unfulfilled");
    assert_eq!(o["stage"], "pending");
    assert_eq!(o["items"][0]["attributes"]["size"], "M");
    assert_eq!(o["items"][0]["sku"], "SKU-A");
    assert_eq!(o["external_ids"]["com.acme.order-id"], "WEB-2024-123456");
    assert_eq!(o["channel"], "whatsapp");
    assert_eq!(o["version"], 1);
    assert_eq!(
        o["allowed_actions"],
        json!(["confirm", "cancel", "edit", "cancel_items"])
    );
}

#[tokio::test]
async fn an_order_is_found_by_id_reference_and_external_id() {
    let app = spawn_app().await;
    let o = app.create(&order_body()).await;
    let id = o["id"].as_str().unwrap();
    let reference = o["reference"].as_str().unwrap();
    for path in [
        format!("/v1/orders/{id}"),
        format!("/v1/orders/{reference}"),
        format!("/v1/orders/{}", reference.to_lowercase()),
        "/v1/orders/external/com.acme.order-id/WEB-2024-123456".to_string(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["etag"], "\"1\"");
        let got: Value = r.json().await.unwrap();
        assert_eq!(got["id"], o["id"], "{path}");
    }
    problem(
        app.get("/v1/orders/ord_01JD5Q4ZB8Y7K6M3N2P1R0S9TV").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(app.get("/v1/orders/nonsense").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn money_follows_the_currency_precision() {
    let app = spawn_app().await;
    let mut jpy = plain_order();
    jpy["currency"] = json!("JPY");
    jpy["items"] = json!([{"name": "Tea", "quantity": 3, "unit_price": "1200"}, {"name": "Cup", "quantity": 1, "unit_price": "350"}]);
    let o = app.create(&jpy).await;
    assert_eq!(o["total"], "3950");
    assert_eq!(o["items"][0]["line_total"], "3600");

    let mut kwd = plain_order();
    kwd["currency"] = json!("KWD");
    kwd["items"] = json!([{"name": "Dates", "quantity": 3, "unit_price": "1.255"}]);
    assert_eq!(app.create(&kwd).await["total"], "3.765");

    jpy["items"] = json!([{"name": "Tea", "quantity": 1, "unit_price": "1200.5"}]);
    let p = problem(
        app.post("/v1/orders", &jpy).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["items[0].unit_price"]);
    assert_eq!(p["errors"][0]["value"], "1200.5");
}

#[tokio::test]
async fn repeating_a_create_with_the_same_external_id_is_idempotent() {
    let app = spawn_app().await;
    let first = app.create(&order_body()).await;
    let r = app.post("/v1/orders", &order_body()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let mut different = order_body();
    different["items"][0]["quantity"] = json!(3);
    let p = problem(
        app.post("/v1/orders", &different).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["existing_order_id"], first["id"]);
    assert_eq!(fields(&p), ["external_ids.com.acme.order-id"]);
    let count: Value = app.get("/v1/orders/count").await.json().await.unwrap();
    assert_eq!(count["count"], 1);
}

#[tokio::test]
async fn put_by_external_id_creates_then_updates_then_refuses() {
    let app = spawn_app().await;
    let path = "/v1/orders/external/com.acme.order-id/WEB-9";
    let put = |body: Value| {
        let app = &app;
        async move { app.put(path, &body).await }
    };
    let body = plain_order();
    let r = put(body.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["external_ids"]["com.acme.order-id"], "WEB-9");

    let r = put(body.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let same: Value = r.json().await.unwrap();
    assert_eq!(same["id"], created["id"]);
    assert_eq!(same["version"], 1, "an identical repeat changes nothing");

    let mut changed = body.clone();
    changed["items"][0]["quantity"] = json!(5);
    let updated: Value = put(changed.clone()).await.json().await.unwrap();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["total"], "25000.00");

    let id = created["id"].as_str().unwrap();
    app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    app.deliver_all(id).await;
    app.post(&format!("/v1/orders/{id}/complete"), &json!({}))
        .await;
    let r = put(changed.clone()).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "identical to a completed order is still fine"
    );
    changed["items"][0]["quantity"] = json!(6);
    let p = problem(put(changed).await, StatusCode::CONFLICT).await;
    assert_eq!(p["current_status"], "completed");

    let mut mismatch = body;
    mismatch["external_ids"] = json!({"com.acme.order-id": "WEB-10"});
    problem(put(mismatch).await, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn external_ids_are_unique_per_tenant_not_globally() {
    let app = spawn_app().await;
    app.create(&order_body()).await;
    let other = app.other_tenant_key().await;
    let r = app.post_as(&other, "/v1/orders", &order_body()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn put_counts_the_path_identifier_in_the_limit() {
    let app = spawn_app().await;
    let mut body = plain_order();
    body["external_ids"] = Value::Object(
        (0..10)
            .map(|i| (format!("com.acme.id-{i}"), json!("x")))
            .collect(),
    );
    let r = app
        .put("/v1/orders/external/com.acme.order-id/WEB-11", &body)
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["external_ids"]);
}
