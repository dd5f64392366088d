//! The payment provider's webhooks: signed with the shop's provider secret,
//! handled once per event id, never moving a payment or refund back, in
//! whatever order and however often they come.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::charges::{app_with, charge, order, order_when, types, SECRET};
use crate::helpers::{fields, problem, TestApp};
use crate::provider::{now_secs, sign, FakeProvider, Reply};

/// A provider's webhook sender: signs as the provider would.
struct Sender<'a> {
    app: &'a TestApp,
    secret: &'a str,
}

impl Sender<'_> {
    fn path(&self) -> String {
        format!("/v1/payment-provider/{}/webhook", self.app.tenant.id)
    }

    fn sign(&self, t: i64, body: &[u8]) -> String {
        sign(self.secret, t, body)
    }

    async fn send_signed(&self, body: &Value, signature: Option<String>) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut request = self
            .app
            .client
            .post(self.app.url(&self.path()))
            .header("content-type", "application/json")
            .body(bytes);
        if let Some(s) = signature {
            request = request.header("payment-signature", s);
        }
        request.send().await.unwrap()
    }

    /// Sends `body` signed now; the outcome ordo answered.
    async fn send(&self, body: &Value) -> String {
        let t = now_secs();
        let signature = self.sign(t, &serde_json::to_vec(body).unwrap());
        let r = self.send_signed(body, Some(signature)).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let answer: Value = r.json().await.unwrap();
        answer["outcome"].as_str().unwrap().to_string()
    }
}

fn event(id: &str, provider_id: &str, order: &str, reference: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": format!("payment.{status}"),
        "data": {"id": provider_id, "order_id": order, "reference": reference, "status": status}
    })
}

#[tokio::test]
async fn webhooks_settle_once_in_any_order_and_never_move_back() {
    let fake = FakeProvider::start().await;
    // The provider holds charges pending: its webhooks say how they end.
    fake.always(Reply::Ok("pending"));
    let app = app_with(&fake, 100).await;
    let hooks = Sender {
        app: &app,
        secret: SECRET,
    };
    let id = order(&app).await;
    let charged = charge(&app, &id).await;
    let pid = charged["payments"][0]["id"].as_str().unwrap().to_string();
    let processing = order_when(&app, &id, |o| o["payments"][0]["provider"]["id"] == "pp_0").await;
    assert_eq!(processing["payment_status"], "pending");

    // Forged, unsigned, replayed from long ago: 401, nothing changes.
    let succeeded = event("evt_1", "pp_0", &id, &pid, "succeeded");
    let forged = Sender {
        app: &app,
        secret: "not_the_secret_at_all",
    };
    let body = serde_json::to_vec(&succeeded).unwrap();
    for signature in [
        Some(forged.sign(now_secs(), &body)),
        None,
        Some("t=1,v1=zz".into()),
        Some(hooks.sign(now_secs() - 600, &body)),
    ] {
        let r = hooks.send_signed(&succeeded, signature).await;
        problem(r, StatusCode::UNAUTHORIZED).await;
    }
    // Signed for another body.
    let other = serde_json::to_vec(&event("evt_1", "pp_0", &id, &pid, "failed")).unwrap();
    let r = hooks
        .send_signed(&succeeded, Some(hooks.sign(now_secs(), &other)))
        .await;
    problem(r, StatusCode::UNAUTHORIZED).await;
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payments"][0]["state"], "pending");

    // The real one, then again (a duplicate), then older news and a
    // contradiction (stale): the payment stays succeeded.
    assert_eq!(hooks.send(&succeeded).await, "applied");
    assert_eq!(hooks.send(&succeeded).await, "duplicate");
    assert_eq!(
        hooks
            .send(&event("evt_0", "pp_0", &id, &pid, "pending"))
            .await,
        "stale"
    );
    assert_eq!(
        hooks
            .send(&event("evt_2", "pp_0", &id, &pid, "failed"))
            .await,
        "stale"
    );
    assert_eq!(
        hooks
            .send(&event("evt_3", "pp_0", &id, &pid, "succeeded"))
            .await,
        "unchanged",
        "the same news under another event id"
    );
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payments"][0]["state"], "succeeded");
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(
        types(&app, &id).await,
        [
            "order.created",
            "payment.recorded",
            "payment.processing",
            "payment.succeeded"
        ]
    );
    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    assert_eq!(events["data"][3]["actor"]["type"], "payment_provider");

    // A refund the provider holds pending, settled by its webhook.
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "out of stock"}),
        )
        .await;
    let cancelled: Value = r.json().await.unwrap();
    let rid = cancelled["refunds"][0]["id"].as_str().unwrap().to_string();
    order_when(&app, &id, |o| o["refunds"][0]["provider"]["id"] == "pp_1").await;
    let refunded = json!({
        "id": "evt_4", "type": "refund.succeeded",
        "data": {"id": "pp_1", "order_id": id, "reference": rid, "status": "succeeded"}
    });
    assert_eq!(hooks.send(&refunded).await, "applied");
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payment_status"], "refunded");
}

#[tokio::test]
async fn a_webhook_that_beats_the_answer_wins_and_the_answer_changes_nothing() {
    let fake = FakeProvider::start().await;
    fake.always(Reply::Slow(
        Duration::from_millis(300),
        Box::new(Reply::Ok("succeeded")),
    ));
    let app = app_with(&fake, 100).await;
    let hooks = Sender {
        app: &app,
        secret: SECRET,
    };
    let id = order(&app).await;
    let charged = charge(&app, &id).await;
    let pid = charged["payments"][0]["id"].as_str().unwrap().to_string();
    // The charge is sent; while its answer is on the way, the webhook comes.
    let sent = crate::helpers::settle(|| async { fake.seen().len() }, |n| *n >= 1).await;
    assert_eq!(sent, 1);
    assert_eq!(
        hooks
            .send(&event("evt_9", "pp_0", &id, &pid, "succeeded"))
            .await,
        "applied"
    );
    // The job's answer, saying the same, changes nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(
        types(&app, &id).await,
        ["order.created", "payment.recorded", "payment.succeeded"]
    );
}

#[tokio::test]
async fn webhooks_that_name_nothing_known_are_refused_plainly() {
    let fake = FakeProvider::start().await;
    let app = app_with(&fake, 100).await;
    let hooks = Sender {
        app: &app,
        secret: SECRET,
    };
    let id = order(&app).await;
    let t = now_secs();
    let send = |body: Value| {
        let hooks = &hooks;
        async move {
            let bytes = serde_json::to_vec(&body).unwrap();
            hooks.send_signed(&body, Some(hooks.sign(t, &bytes))).await
        }
    };
    let r = send(event("evt_1", "pp_0", &id, "nonsense", "done")).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["data.reference", "data.status"]);
    let r = send(json!({"id": "evt_1"})).await;
    problem(r, StatusCode::BAD_REQUEST).await;
    let unknown = "pay_01JD5Q4ZB8Y7K6M3N2P1R0S9TV";
    let r = send(event("evt_2", "pp_0", &id, unknown, "succeeded")).await;
    problem(r, StatusCode::NOT_FOUND).await;
    let r = send(event(
        "evt_3",
        "pp_0",
        "ord_01JD5Q4ZB8Y7K6M3N2P1R0S9TV",
        unknown,
        "succeeded",
    ))
    .await;
    problem(r, StatusCode::NOT_FOUND).await;
    // A shop without a provider takes no provider webhooks.
    let r = app
        .patch("/v1/settings", &json!({"payment_provider": null}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(event("evt_4", "pp_0", &id, unknown, "succeeded")).await;
    problem(r, StatusCode::NOT_FOUND).await;
    let r = app
        .client
        .post(app.url("/v1/payment-provider/ten_nope/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn the_provider_repeating_and_reordering_its_webhooks_changes_nothing_twice() {
    let fake = FakeProvider::start().await;
    fake.always(Reply::Ok("pending"));
    let app = app_with(&fake, 100).await;
    // After each answer: the success, the success again, then older news.
    let url = app.url(&format!("/v1/payment-provider/{}/webhook", app.tenant.id));
    fake.notify(
        url,
        SECRET,
        vec![(2, "succeeded"), (2, "succeeded"), (1, "pending")],
    );
    let id = order(&app).await;
    charge(&app, &id).await;
    let paid = order_when(&app, &id, |o| o["payment_status"] == "paid").await;
    assert_eq!(paid["payments"][0]["provider"]["id"], "pp_0");
    let outcomes = crate::helpers::settle(|| async { fake.outcomes() }, |o| o.len() == 3).await;
    // The job's answer (pending) and the first webhook may come in either
    // order; the rest is fixed.
    assert_eq!(outcomes, ["applied", "duplicate", "stale"]);
    let kinds = types(&app, &id).await;
    assert_eq!(kinds.last().unwrap(), "payment.succeeded");
    assert_eq!(
        kinds.iter().filter(|k| *k == "payment.succeeded").count(),
        1
    );
}
