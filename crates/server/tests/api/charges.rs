//! Charging and refunding through the shop's payment provider: a fake
//! provider on 127.0.0.1 (see `provider.rs`) that answers, fails or hangs
//! as each test says, and the order's ledger and timeline as the jobs leave
//! them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use ordo::config::Config;

use crate::helpers::{fields, plain_order, problem, says, settle, spawn_app_with, TestApp};
use crate::provider::{FakeProvider, Reply};

pub const SECRET: &str = "psk_test_0123456789abcdef";

/// An app whose shop charges through `fake`, with short waits everywhere
/// and a circuit that opens after `breaker_failures`.
pub async fn app_with(fake: &FakeProvider, breaker_failures: u32) -> TestApp {
    app_configured(fake, |c| c.payments.breaker_failures = breaker_failures).await
}

/// Like [`app_with`], with `configure` changing the configuration last.
pub async fn app_configured(fake: &FakeProvider, configure: impl FnOnce(&mut Config)) -> TestApp {
    let app = spawn_app_with(|c| {
        c.webhooks.allow_private_urls = true;
        c.jobs.retry_initial_ms = 100;
        c.jobs.retry_max_ms = 200;
        c.payments.provider_attempts = 2;
        c.payments.provider_backoff_ms = 10;
        c.payments.provider_timeout_ms = 400;
        c.payments.breaker_open_ms = 600;
        configure(c);
    })
    .await;
    let r = app
        .patch(
            "/v1/settings",
            &json!({"payment_provider": {"base_url": fake.url, "secret": SECRET}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app
}

pub async fn order(app: &TestApp) -> String {
    app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn charge(app: &TestApp, id: &str) -> Value {
    let r = app
        .post(&format!("/v1/orders/{id}/charges"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.json().await.unwrap()
}

pub async fn types(app: &TestApp, id: &str) -> Vec<String> {
    app.json(&format!("/v1/orders/{id}/events")).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// The order once `done` holds of it (or after the wait runs out).
pub async fn order_when(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/orders/{id}");
    settle(|| app.json(&path), done).await
}

#[tokio::test]
async fn a_charge_is_answered_at_once_and_settled_by_a_job() {
    let fake = FakeProvider::start().await;
    // The provider takes its time: nobody's request waits for it.
    fake.always(Reply::Slow(
        Duration::from_millis(300),
        Box::new(Reply::Ok("succeeded")),
    ));
    let app = app_with(&fake, 5).await;
    let started = Instant::now();
    let id = order(&app).await;
    let charged = charge(&app, &id).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let payment = &charged["payments"][0];
    assert_eq!(payment["method"], "card");
    assert_eq!(payment["state"], "pending");
    assert_eq!(payment["amount"], "10000.00");
    assert_eq!(payment["provider"]["id"], Value::Null);
    assert_eq!(charged["payment_status"], "pending");
    assert_eq!(charged["amount_pending"], "10000.00");

    let paid = order_when(&app, &id, |o| o["payment_status"] == "paid").await;
    assert_eq!(paid["payments"][0]["state"], "succeeded");
    assert_eq!(paid["payments"][0]["provider"]["id"], "pp_0");
    assert_eq!(paid["amount_due"], "0.00");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let pid = payment["id"].as_str().unwrap();
    assert_eq!(
        seen[0].key.as_deref(),
        Some(pid),
        "the payment id is the idempotency key"
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(
        seen[0].body,
        json!({"order_id": id, "reference": pid, "amount": "10000.00", "currency": "NGN"})
    );
    assert_eq!(
        types(&app, &id).await,
        ["order.created", "payment.recorded", "payment.succeeded"]
    );
    // Paid in full: nothing is left to charge.
    let r = app
        .post(&format!("/v1/orders/{id}/charges"), &json!({}))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["amount"]);
}

#[tokio::test]
async fn a_hanging_provider_never_blocks_orders_or_charges() {
    let fake = FakeProvider::start().await;
    fake.always(Reply::Slow(
        Duration::from_secs(5),
        Box::new(Reply::Ok("succeeded")),
    ));
    let app = app_with(&fake, 100).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let id = order(&app).await;
        charge(&app, &id).await;
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "slowest create + charge: {slowest:?}"
    );
    // The calls time out (400 ms each) and are noted on the timeline.
    let id = order(&app).await;
    charge(&app, &id).await;
    let o = order_when(&app, &id, |o| {
        o["payments"][0]["provider"]["error"].is_string()
    })
    .await;
    assert_eq!(o["payments"][0]["state"], "pending");
    assert!(
        o["payments"][0]["provider"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{o}"
    );
    assert!(types(&app, &id)
        .await
        .contains(&"payment.attempt_failed".to_string()));
}

#[tokio::test]
async fn failing_calls_are_retried_under_one_key_with_each_failure_on_the_timeline() {
    let fake = FakeProvider::start().await;
    // Two chains of two attempts fail; the third chain's first succeeds.
    fake.then([
        Reply::Status(503),
        Reply::Status(502),
        Reply::Status(500),
        Reply::Status(503),
    ]);
    let app = app_with(&fake, 100).await;
    let id = order(&app).await;
    charge(&app, &id).await;
    let paid = order_when(&app, &id, |o| o["payment_status"] == "paid").await;
    assert_eq!(paid["payments"][0]["provider"]["error"], Value::Null);
    let seen = fake.seen();
    assert_eq!(seen.len(), 5);
    let pid = paid["payments"][0]["id"].as_str().unwrap();
    assert!(seen.iter().all(|s| s.key.as_deref() == Some(pid)));
    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    let events = events["data"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "order.created",
            "payment.recorded",
            "payment.attempt_failed",
            "payment.attempt_failed",
            "payment.succeeded"
        ]
    );
    let failed = &events[2];
    assert_eq!(
        failed["data"]["error"],
        "the payment provider failed after 2 attempts: HTTP 502"
    );
    assert!(failed["data"]["next_attempt_at"].is_string());
    assert_eq!(failed["actor"]["type"], "payment_provider");
    assert_eq!(failed["data"]["payment_status"]["to"], "pending");
}

#[tokio::test]
async fn a_refused_charge_fails_the_payment() {
    let fake = FakeProvider::start().await;
    fake.then([Reply::Status(402)]);
    let app = app_with(&fake, 5).await;
    let id = order(&app).await;
    charge(&app, &id).await;
    let o = order_when(&app, &id, |o| o["payments"][0]["state"] == "failed").await;
    assert_eq!(o["payment_status"], "unpaid");
    assert!(o["payments"][0]["provider"]["error"]
        .as_str()
        .unwrap()
        .contains("HTTP 402"));
    assert_eq!(fake.seen().len(), 1, "a refusal is not retried");
    assert_eq!(
        types(&app, &id).await,
        ["order.created", "payment.recorded", "payment.failed"]
    );
    // It can be charged again.
    charge(&app, &id).await;
    order_when(&app, &id, |o| o["payment_status"] == "paid").await;
}

#[tokio::test]
async fn the_circuit_opens_shows_in_readyz_and_recovers() {
    let fake = FakeProvider::start().await;
    fake.always(Reply::Status(503));
    let app = app_with(&fake, 2).await;
    let id = order(&app).await;
    charge(&app, &id).await;
    let ready = settle(
        || async {
            let r = app.client.get(app.url("/readyz")).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        },
        |r| r["payment_providers"][0]["state"] == "open",
    )
    .await;
    assert_eq!(
        ready["status"], "ready",
        "a provider's circuit is not the node's health"
    );
    assert_eq!(ready["payment_providers"][0]["provider"], fake.url);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("ordo_provider_circuit_state"), "{metrics}");
    let o = order_when(&app, &id, |o| {
        o["payments"][0]["provider"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("circuit is open"))
    })
    .await;
    assert_eq!(o["payment_status"], "pending");

    // The provider recovers: a probe after the open period closes it.
    fake.always(Reply::Ok("succeeded"));
    order_when(&app, &id, |o| o["payment_status"] == "paid").await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["payment_providers"][0]["state"], "closed");
}

#[tokio::test]
async fn charges_need_a_provider_an_open_order_and_an_amount_due() {
    let fake = FakeProvider::start().await;
    let app = spawn_app_with(|c| c.webhooks.allow_private_urls = true).await;
    let id = order(&app).await;
    let r = app
        .post(&format!("/v1/orders/{id}/charges"), &json!({}))
        .await;
    let p = problem(r, StatusCode::CONFLICT).await;
    says(&p, "payment_provider");

    let r = app
        .patch(
            "/v1/settings",
            &json!({"payment_provider": {"base_url": fake.url, "secret": SECRET}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            &format!("/v1/orders/{id}/charges"),
            &json!({"amount": "10000.01"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "amount");
    assert_eq!(
        p["errors"][0]["accepted"],
        "more than zero and at most 10000.00"
    );
    let r = app
        .post(&format!("/v1/orders/{id}/charges"), &json!({"amount": "x"}))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;

    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(&format!("/v1/orders/{id}/charges"), &json!({}))
        .await;
    let p = problem(r, StatusCode::CONFLICT).await;
    says(&p, "cancelled");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn the_provider_secret_is_written_never_shown() {
    let app = spawn_app_with(|c| c.webhooks.allow_private_urls = true).await;
    let set = |body: Value| {
        let app = &app;
        async move {
            app.patch("/v1/settings", &json!({ "payment_provider": body }))
                .await
        }
    };
    let r = set(json!({"base_url": "http://127.0.0.1:9/pay", "secret": SECRET})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown: Value = r.json().await.unwrap();
    let text = shown.to_string();
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(shown["payment_provider"]["secret_hint"], "…cdef");
    assert_eq!(
        shown["payment_provider"]["webhook_path"],
        format!("/v1/payment-provider/{}/webhook", app.tenant.id)
    );
    // Sent again without the secret for the same URL, it keeps it; a URL
    // elsewhere needs the secret again (it is where the secret is sent).
    let r = set(json!({"base_url": "http://127.0.0.1:9/pay"})).await;
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown["payment_provider"]["secret_hint"], "…cdef");
    let r = set(json!({"base_url": "http://127.0.0.1:10/pay"})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["payment_provider.secret"]);
    let r = set(json!({"base_url": "http://127.0.0.1:10/pay", "secret": SECRET})).await;
    let shown: Value = r.json().await.unwrap();
    assert_eq!(
        shown["payment_provider"]["base_url"],
        "http://127.0.0.1:10/pay"
    );

    let r = set(json!({"base_url": "ftp://x", "secret": "short"})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        fields(&p),
        ["payment_provider.base_url", "payment_provider.secret"]
    );
    assert!(!p.to_string().contains("short"), "the secret is not echoed");

    let r = app
        .patch("/v1/settings", &json!({"payment_provider": null}))
        .await;
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown["payment_provider"], Value::Null);
    let r = set(json!({"base_url": "http://127.0.0.1:10/pay"})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["payment_provider.secret"]);

    // Private addresses only where the operator allows them.
    let closed = spawn_app_with(|_| {}).await;
    let r = closed
        .patch(
            "/v1/settings",
            &json!({"payment_provider": {"base_url": "http://127.0.0.1:9", "secret": SECRET}}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["payment_provider.base_url"]);
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_through_whoever_took_the_money() {
    let fake = FakeProvider::start().await;
    let app = app_with(&fake, 100).await;

    // Charged by the provider: the provider pays it back.
    let id = order(&app).await;
    charge(&app, &id).await;
    let paid = order_when(&app, &id, |o| o["payment_status"] == "paid").await;
    fake.then([Reply::Status(503), Reply::Status(503)]);
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "out of stock"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(
        cancelled["payment_status"], "pending",
        "a refund is under way"
    );
    let refund = &cancelled["refunds"][0];
    assert_eq!(refund["state"], "pending");
    assert_eq!(refund["amount"], "10000.00");
    assert_eq!(refund["reason"], "order cancelled");
    assert_eq!(refund["payment_id"], paid["payments"][0]["id"]);
    let refunded = order_when(&app, &id, |o| o["payment_status"] == "refunded").await;
    assert_eq!(refunded["refunds"][0]["state"], "succeeded");
    assert_eq!(refunded["refunds"][0]["provider"]["id"], "pp_1");
    assert_eq!(refunded["amount_refunded"], "10000.00");
    let rid = refund["id"].as_str().unwrap();
    let call = fake.seen().into_iter().last().unwrap();
    assert_eq!(call.path, "/api/v1/payments/refund");
    assert_eq!(call.key.as_deref(), Some(rid));
    assert_eq!(
        call.body,
        json!({"payment_id": "pp_0", "order_id": id, "reference": rid, "amount": "10000.00", "currency": "NGN"})
    );
    assert_eq!(
        types(&app, &id).await,
        [
            "order.created",
            "payment.recorded",
            "payment.succeeded",
            "order.cancelled",
            "refund.recorded",
            "refund.attempt_failed",
            "refund.succeeded"
        ]
    );
    // The provider's refund cannot be settled by hand.
    let r = app
        .post(
            &format!("/v1/orders/{id}/refunds/{rid}/settle"),
            &json!({"state": "failed"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT).await;

    // Paid by bank transfer: the shop pays it back and says so.
    let id = order(&app).await;
    let r = app
        .post(
            &format!("/v1/orders/{id}/payments"),
            &json!({"method": "bank_transfer", "amount": "10000.00", "currency": "NGN"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "buyer asked"}),
        )
        .await;
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["payment_status"], "pending");
    let refund = &cancelled["refunds"][0];
    assert_eq!(refund["provider"], Value::Null, "paid back by hand");
    let rid = refund["id"].as_str().unwrap();
    let settle_path = format!("/v1/orders/{id}/refunds/{rid}/settle");
    let r = app
        .post(
            &format!("/v1/orders/{id}/refunds/ref_nonsense/settle"),
            &json!({"state": "succeeded"}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
    let r = app.post(&settle_path, &json!({"state": "pending"})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["state"]);
    let r = app.post(&settle_path, &json!({"state": "succeeded"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["payment_status"], "refunded");
    let r = app.post(&settle_path, &json!({"state": "failed"})).await;
    problem(r, StatusCode::CONFLICT).await;
    // Money that arrives after the cancel goes back too.
    let r = app
        .post(
            &format!("/v1/orders/{id}/payments"),
            &json!({"method": "cash", "amount": "500.00", "currency": "NGN"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let late: Value = r.json().await.unwrap();
    assert_eq!(late["refunds"][1]["amount"], "500.00");
    assert_eq!(late["refunds"][1]["state"], "pending");
    assert_eq!(late["payment_status"], "pending");
    let calls = fake.seen().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.seen().len(),
        calls,
        "no provider call for money it never took"
    );
}

#[tokio::test]
async fn a_refund_the_provider_keeps_failing_stays_pending_in_plain_view() {
    let fake = FakeProvider::start().await;
    let app = app_configured(&fake, |c| {
        c.jobs.retry_initial_ms = 50;
        c.jobs.retry_max_ms = 100;
        // Given up after a second of failing.
        c.jobs.max_age_secs = 1;
        c.payments.provider_attempts = 1;
    })
    .await;
    let id = order(&app).await;
    charge(&app, &id).await;
    order_when(&app, &id, |o| o["payment_status"] == "paid").await;
    fake.always(Reply::Status(500));
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "out of stock"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let path = format!("/v1/orders/{id}/events");
    let events = settle(
        || app.json(&path),
        |e| {
            e["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["data"]["given_up"] == true)
        },
    )
    .await;
    let last = events["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "refund.attempt_failed");
    assert_eq!(last["data"]["given_up"], true);
    // HTTP 500 until the circuit opens; then not called at all.
    let error = last["data"]["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 500") || error.contains("circuit is open"),
        "{error}"
    );
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payment_status"], "pending");
    assert_eq!(o["refunds"][0]["state"], "pending");
    assert!(o["refunds"][0]["provider"]["error"].is_string());
    assert_eq!(o["refunds"][0]["provider"]["given_up"], true);

    // ordo gave up: the shop says how it ended, from the provider's records.
    let rid = o["refunds"][0]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/orders/{id}/refunds/{rid}/settle"),
            &json!({"state": "succeeded"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = r.json().await.unwrap();
    assert_eq!(
        (&o["refunds"][0]["state"], &o["payment_status"]),
        (&json!("succeeded"), &json!("refunded"))
    );
}
