//! Payments and refunds: the ledger through the API.

use futures::future::join_all;
use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, plain_order, problem, says, settle, spawn_app, TestApp};

fn payment(amount: &str, transaction_id: Option<&str>) -> Value {
    json!({"method": "bank_transfer", "amount": amount, "currency": "NGN", "transaction_id": transaction_id})
}

/// A new order of 10,000.00 NGN; its id.
async fn order(app: &TestApp) -> String {
    app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn pay(app: &TestApp, id: &str, body: &Value) -> Value {
    let r = app.post(&format!("/v1/orders/{id}/payments"), body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "payment refused");
    r.json().await.unwrap()
}

#[tokio::test]
async fn split_payments_make_an_order_paid_and_overpayment_shows() {
    let app = spawn_app().await;
    let id = order(&app).await;
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payment_status"], "unpaid");
    assert_eq!(o["amount_due"], "10000.00");
    assert_eq!(o["payments"], json!([]));

    let o = pay(&app, &id, &payment("4000.00", Some("FT-1"))).await;
    assert_eq!(o["payment_status"], "partially_paid");
    assert_eq!(o["amount_paid"], "4000.00");
    assert_eq!(o["amount_due"], "6000.00");
    assert_eq!(o["version"], 2);
    let p = &o["payments"][0];
    assert_eq!(p["method"], "bank_transfer");
    assert_eq!(p["amount"], "4000.00");
    assert_eq!(p["transaction_id"], "FT-1");
    assert_eq!(p["state"], "succeeded");
    assert_eq!(p["recorded_by"]["type"], "api_key");
    assert!(p["id"].as_str().unwrap().starts_with("pay_"));
    assert!(
        !o["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("edit")),
        "a paid order's content is fixed"
    );
    let p = problem(
        app.patch(&format!("/v1/orders/{id}"), &json!({"notes": "later"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    says(&p, "payments");

    let cash = json!({"method": "cash", "amount": "7000.00", "currency": "ngn", "paid_at": "2026-01-05T09:30:00Z"});
    let o = pay(&app, &id, &cash).await;
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(o["amount_paid"], "11000.00");
    assert_eq!(o["amount_due"], "0.00");
    assert_eq!(o["amount_overpaid"], "1000.00");
    assert_eq!(o["payments"][1]["paid_at"], "2026-01-05T09:30:00.000Z");
    assert_eq!(app.json(&format!("/v1/orders/{id}")).await, o, "as read");

    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    let last = &events["data"][2];
    assert_eq!(last["type"], "payment.recorded");
    assert_eq!(last["data"]["payment"]["method"], "cash");
    assert_eq!(
        last["data"]["payment_status"],
        json!({"from": "partially_paid", "to": "paid"})
    );
    assert_eq!(last["data"]["amount_overpaid"], "1000.00");
    // The feed shows events once they are placed in it, just after commit.
    let feed = settle(
        || app.json("/v1/events?types=payment.recorded"),
        |f| f["data"].as_array().is_some_and(|d| d.len() >= 2),
    )
    .await;
    assert_eq!(feed["data"].as_array().unwrap().len(), 2);
    assert_eq!(feed["data"][1]["data"]["payment_status"], "paid");
    let listed = app.json("/v1/orders?payment_status=paid").await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_transaction_id_records_one_payment_per_shop() {
    let app = spawn_app().await;
    let (a, b) = (order(&app).await, order(&app).await);
    let body = payment("2500.00", Some("FT-77"));
    let first = pay(&app, &a, &body).await;

    let r = app.post(&format!("/v1/orders/{a}/payments"), &body).await;
    assert_eq!(r.status(), StatusCode::OK, "the same payment again");
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let again: Value = r.json().await.unwrap();
    assert_eq!(again, first, "nothing changed");

    let p = problem(
        app.post(
            &format!("/v1/orders/{a}/payments"),
            &payment("2600.00", Some("FT-77")),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["type"], "/problems/transaction-id-reused");
    assert_eq!(fields(&p), ["transaction_id"]);
    assert_eq!(p["errors"][0]["value"], "FT-77");

    let p = problem(
        app.post(&format!("/v1/orders/{b}/payments"), &body).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["type"], "/problems/transaction-id-reused");
    says(&p, "another order");
    let b_now = app.json(&format!("/v1/orders/{b}")).await;
    assert_eq!(
        (b_now["version"].clone(), b_now["payment_status"].clone()),
        (json!(1), json!("unpaid")),
        "a refused payment leaves the order as it was"
    );

    // Another shop has its own transaction ids.
    let other = app.other_tenant_key().await;
    let r = app.post_as(&other, "/v1/orders", &plain_order()).await;
    let theirs: Value = r.json().await.unwrap();
    let r = app
        .post_as(
            &other,
            &format!("/v1/orders/{}/payments", theirs["id"].as_str().unwrap()),
            &body,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Twenty racing requests carrying one new id, split over two orders:
    // one payment is recorded, and every other answer is a replay of it or
    // a 409.
    let racing = payment("100.00", Some("FT-RACE"));
    let answers = join_all((0..20).map(|i| {
        let (app, racing) = (&app, &racing);
        let id = if i % 2 == 0 { &a } else { &b };
        async move {
            app.post(&format!("/v1/orders/{id}/payments"), racing)
                .await
                .status()
        }
    }))
    .await;
    let created = answers
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(answers
        .iter()
        .all(|s| [StatusCode::CREATED, StatusCode::OK, StatusCode::CONFLICT].contains(s)));
    let mut holding = 0;
    for id in [&a, &b] {
        let o = app.json(&format!("/v1/orders/{id}")).await;
        holding += o["payments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["transaction_id"] == "FT-RACE")
            .count();
    }
    assert_eq!(holding, 1);
}

#[tokio::test]
async fn refunds_take_back_at_most_what_was_paid() {
    let app = spawn_app().await;
    let id = order(&app).await;
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/refunds"),
            &json!({"amount": "1.00", "reason": "goodwill"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["type"], "/problems/refund-exceeds-paid");
    assert_eq!(p["errors"][0]["accepted"], "at most 0.00");

    let o = pay(&app, &id, &payment("10000.00", None)).await;
    let line = o["items"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/v1/orders/{id}/refunds"),
            &json!({"lines": [{"line_id": line, "quantity": 1}], "reason": "returned: wrong size"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["payment_status"], "partially_refunded");
    assert_eq!(o["amount_refunded"], "5000.00");
    assert_eq!(o["amount_due"], "5000.00");
    assert_eq!(
        o["refunds"][0]["lines"],
        json!([{"line_id": line, "quantity": 1}])
    );
    assert_eq!(o["refunds"][0]["reason"], "returned: wrong size");

    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/refunds"),
            &json!({"lines": [{"line_id": line, "quantity": 2}], "reason": "again"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["lines[0].quantity"]);
    assert_eq!(p["errors"][0]["accepted"], "1 to 1");
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/refunds"),
            &json!({"amount": "5000.01", "reason": "too much"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["errors"][0]["value"], "5000.01");
    assert_eq!(p["errors"][0]["accepted"], "at most 5000.00");

    let vendor = app.key_for(Role::Vendor).await;
    let r = app
        .post_as(
            &vendor,
            &format!("/v1/orders/{id}/refunds"),
            &json!({"amount": "1.00", "reason": "x"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = app
        .post(
            &format!("/v1/orders/{id}/refunds"),
            &json!({"amount": "5000.00", "reason": "cancelled by buyer"}),
        )
        .await;
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["payment_status"], "refunded");
    assert_eq!(o["amount_refunded"], "10000.00");
    let types: Vec<_> = app.json(&format!("/v1/orders/{id}/events")).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "order.created",
            "payment.recorded",
            "refund.recorded",
            "refund.recorded"
        ]
    );
}

#[tokio::test]
async fn bad_payments_and_refunds_name_each_field() {
    let app = spawn_app().await;
    let id = order(&app).await;
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/payments"),
            &json!({"method": "cheque", "amount": "0.00", "currency": "USD", "transaction_id": " ", "paid_at": "2999-01-01T00:00:00Z"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        ["method", "currency", "amount", "transaction_id", "paid_at"]
    );
    assert_eq!(p["errors"][1]["accepted"], "NGN");
    assert!(p["errors"][0]["accepted"]
        .as_str()
        .unwrap()
        .contains("mobile_money"));
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/payments"),
            &json!({"method": "cash", "amount": "1.005", "currency": "NGN"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["amount"]);
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/refunds"),
            &json!({"lines": [{"line_id": "li_nope", "quantity": 1}], "reason": ""}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["lines[0].line_id", "reason"]);
    let p = problem(
        app.post(
            &format!("/v1/orders/{id}/refunds"),
            &json!({"reason": "no amount"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["amount"]);
    let viewer = app.key_for(Role::Viewer).await;
    let r = app
        .post_as(
            &viewer,
            &format!("/v1/orders/{id}/payments"),
            &payment("1.00", None),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let other = app.other_tenant_key().await;
    let r = app
        .post_as(
            &other,
            &format!("/v1/orders/{id}/payments"),
            &payment("1.00", None),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
