//! Buyer messaging (issue 8): the shop's channels and texts in its
//! settings.

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, problem, spawn_app};

const TOKEN: &str = "EAAGm0PX4ZCpsBAKZCx2Zd";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

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
