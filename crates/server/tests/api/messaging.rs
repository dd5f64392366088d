//! Buyer messaging (issue 8): the shop's channels and texts in its
//! settings.

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, plain_order, problem, settle, spawn_app, spawn_app_with, TestApp};
use crate::meta::{FakeGraph, GraphReply, SmtpSink};

pub const TOKEN: &str = "EAAGm0PX4ZCpsBAKZCx2Zd";
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn channels_are_set_up_with_credentials_never_shown_again() {
    let app = spawn_app().await;
    let whatsapp = json!({"phone_number_id": "106540352242922", "access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": "ordo-verify-1"});
    let email = json!({"host": "smtp.example.com", "port": 587, "security": "starttls", "username": "shop", "password": "hunter2hunter2", "from": "orders@example.com", "from_name": "Ada's Fabrics"});
    let r = app
        .patch(
            "/v1/settings",
            &json!({"messaging": {"whatsapp": whatsapp, "email": email}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    let w = &s["messaging"]["whatsapp"];
    assert_eq!(w["account_id"], "106540352242922");
    assert_eq!(w["access_token_hint"], "…x2Zd");
    assert_eq!(
        w["webhook_path"],
        format!("/v1/channels/whatsapp/{}/webhook", app.tenant.id)
    );
    assert_eq!(s["messaging"]["email"]["password_hint"], "…ter2");
    let shown = serde_json::to_string(&app.json("/v1/settings").await).unwrap();
    for secret in [TOKEN, APP_SECRET, "ordo-verify-1", "hunter2hunter2"] {
        assert!(!shown.contains(secret), "{secret} shown");
    }

    // The same number again keeps its credentials; another needs them.
    let r = app
        .patch(
            "/v1/settings",
            &json!({"messaging": {"whatsapp": {"phone_number_id": "106540352242922"}}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({"messaging": {"whatsapp": {"phone_number_id": "2"}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        [
            "messaging.whatsapp.access_token",
            "messaging.whatsapp.app_secret",
            "messaging.whatsapp.verify_token"
        ]
    );
    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({"messaging": {"email": {"host": "smtp.example.com", "port": 0, "security": "ssl", "from": "orders"}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        [
            "messaging.email.port",
            "messaging.email.security",
            "messaging.email.from"
        ]
    );
    assert_eq!(p["errors"][1]["accepted"], "none, starttls, tls");
    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({"messaging": {"email": {"host": "10.0.0.5", "port": 25, "security": "none", "from": "orders@example.com"}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        ["messaging.email.host"],
        "a private mail server"
    );

    // Only owners and admins change them.
    let vendor = app.key_for(Role::Vendor).await;
    let r = app
        .client
        .patch(app.url("/v1/settings"))
        .bearer_auth(&vendor)
        .json(&json!({"messaging": {"whatsapp": null}}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN).await;
    let r = app
        .patch("/v1/settings", &json!({"messaging": {"whatsapp": null}}))
        .await;
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["messaging"]["whatsapp"], Value::Null);
    assert_eq!(s["messaging"]["email"]["host"], "smtp.example.com");
}

#[tokio::test]
async fn the_shop_writes_its_own_texts_checked_when_saved() {
    let app = spawn_app().await;
    let s = app.json("/v1/settings").await;
    let created = &s["messaging"]["templates"]["order_created"];
    assert_eq!(created["custom"], false);
    assert!(created["text"].as_str().unwrap().contains("{reference}"));
    assert!(created["placeholders"]
        .as_array()
        .unwrap()
        .contains(&json!("{total}")));

    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({"messaging": {"templates": {"order_shipped": "Paid {amount}", "order_lost": "x", "order_cancelled": "Cancelled {reason"}}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&p),
        [
            "messaging.templates.order_cancelled",
            "messaging.templates.order_lost",
            "messaging.templates.order_shipped"
        ]
    );
    assert_eq!(p["errors"][2]["value"], "{amount}");

    let text = "Hi {buyer_name}! Order {reference} comes to {total}. Reply CONFIRM or CANCEL. {{shop: {shop}}}";
    let r = app
        .patch(
            "/v1/settings",
            &json!({"messaging": {"templates": {"order_created": text}}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    let created = &s["messaging"]["templates"]["order_created"];
    assert_eq!(
        (&created["text"], &created["custom"]),
        (&json!(text), &json!(true))
    );
    let r = app
        .patch(
            "/v1/settings",
            &json!({"messaging": {"templates": {"order_created": null}}}),
        )
        .await;
    let s: Value = r.json().await.unwrap();
    assert_eq!(
        s["messaging"]["templates"]["order_created"]["custom"],
        false
    );
}

/// An app whose Meta calls go to `graph`, with quick retries, and whose
/// shop has WhatsApp and (for `sink`) email set up.
pub async fn reaching(graph: &FakeGraph, sink: &SmtpSink) -> TestApp {
    let base = graph.base_url.clone();
    let app = spawn_app_with(move |c| {
        c.messaging.graph_base_url = base;
        // The fake Graph API serves buyers' files on 127.0.0.1.
        c.webhooks.allow_private_urls = true;
        c.messaging.timeout_ms = 2_000;
        c.jobs.retry_initial_ms = 50;
        c.jobs.retry_max_ms = 100;
    })
    .await;
    let r = app
        .patch(
            "/v1/settings",
            &json!({"messaging": {
                "whatsapp": {"phone_number_id": "106540352242922", "access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": "ordo-verify-1"},
                "email": {"host": "127.0.0.1", "port": sink.port, "security": "none", "from": "orders@adafabrics.example"}
            }}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app
}

/// The order's timeline once it has `n` events of type `kind`.
async fn timeline_with(app: &TestApp, id: &str, kind: &str, n: usize) -> Vec<Value> {
    let path = format!("/v1/orders/{id}/events");
    let events = settle(
        || app.json(&path),
        |e| {
            e["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == kind)
                .count()
                >= n
        },
    )
    .await;
    events["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn order_events_tell_the_buyer_and_the_timeline_says_how_it_went() {
    let graph = FakeGraph::start().await;
    let sink = SmtpSink::start().await;
    let app = reaching(&graph, &sink).await;
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    let events = timeline_with(&app, id, "message.sent", 1).await;
    let sent = events.iter().find(|e| e["type"] == "message.sent").unwrap();
    assert_eq!(sent["data"]["kind"], "order_created");
    assert_eq!(sent["data"]["channel"], "whatsapp");
    assert_eq!(sent["data"]["provider_id"], "wamid.1");
    assert_eq!(sent["data"]["event_type"], "order.created");
    assert!(
        !sent.to_string().contains("2348012345678"),
        "the number is masked: {sent}"
    );
    let call = &graph.calls()[0];
    assert_eq!(call.body["to"], "2348012345678");
    assert_eq!(call.body["type"], "interactive");
    let text = call.body["interactive"]["body"]["text"].as_str().unwrap();
    assert!(
        text.contains(order["reference"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("₦10,000.00"), "{text}");
    // It carries the buyer's signed link to the order's page.
    let link = text
        .split("🔗 Your order: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no link in {text}"))
        .trim();
    let path = &link[link.find("/o/").unwrap()..];
    let page = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(order["reference"].as_str().unwrap()),
        "{page}"
    );
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        o["version"], 1,
        "telling the buyer does not change the order"
    );

    // Meta is down for a moment: the message goes once it is back.
    graph.then([GraphReply::Error(503, "Service temporarily unavailable")]);
    app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    let events = timeline_with(&app, id, "message.sent", 2).await;
    let confirmed = events
        .iter()
        .filter(|e| e["type"] == "message.sent")
        .nth(1)
        .unwrap();
    assert_eq!(confirmed["data"]["kind"], "order_confirmed");
    assert_eq!(graph.calls().len(), 3, "one failed call, then the message");

    // Refused for good: the timeline says why.
    graph.then([GraphReply::Error(
        400,
        "Recipient phone number not in allowed list",
    )]);
    app.post(
        &format!("/v1/orders/{id}/cancel"),
        &json!({"reason": "out of stock"}),
    )
    .await;
    let events = timeline_with(&app, id, "message.failed", 1).await;
    let failed = events
        .iter()
        .find(|e| e["type"] == "message.failed")
        .unwrap();
    assert_eq!(failed["data"]["kind"], "order_cancelled");
    assert!(
        failed["data"]["error"]
            .as_str()
            .unwrap()
            .contains("not in allowed list"),
        "{failed}"
    );
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["version"], 3);
}

#[tokio::test]
async fn a_buyer_known_by_email_is_mailed() {
    let graph = FakeGraph::start().await;
    let sink = SmtpSink::start().await;
    let app = reaching(&graph, &sink).await;
    let mut body = plain_order();
    body["buyer"] = json!({"name": "Ada Obi", "email": "ada@example.com"});
    let order = app.create(&body).await;
    let id = order["id"].as_str().unwrap();
    let events = timeline_with(&app, id, "message.sent", 1).await;
    let sent = events.iter().find(|e| e["type"] == "message.sent").unwrap();
    assert_eq!(sent["data"]["channel"], "email");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["ada@example.com"]);
    assert!(
        mails[0].data.contains(&format!(
            "Message-ID: {}",
            sent["data"]["provider_id"].as_str().unwrap()
        )),
        "{}",
        mails[0].data
    );
    assert!(graph.calls().is_empty());
}
