use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{plain_order, problem, says, spawn_app};

#[tokio::test]
async fn no_key_or_a_bad_key_is_401() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/orders")).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    problem(r, StatusCode::UNAUTHORIZED).await;
    for bad in [
        "nonsense",
        "ordo_x_y",
        &format!("{}x", app.key),
        "ordo_01jd5q4zb8y7k6m3n2p1r0s9tv_abcdefghijklmnopqrstuvwxyz012345",
    ] {
        problem(
            app.get_as(bad, "/v1/orders").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let r = app
        .client
        .get(app.url("/v1/orders"))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn another_tenants_order_does_not_exist() {
    let app = spawn_app().await;
    let mine = app.create(&crate::helpers::order_body()).await;
    let id = mine["id"].as_str().unwrap();
    let other = app.other_tenant_key().await;
    let p = problem(
        app.get_as(&other, &format!("/v1/orders/{id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(p["type"], "/problems/not-found");
    problem(
        app.get_as(
            &other,
            &format!("/v1/orders/{}", mine["reference"].as_str().unwrap()),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get_as(
            &other,
            "/v1/orders/external/com.acme.order-id/WEB-2024-123456",
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.post_as(&other, &format!("/v1/orders/{id}/confirm"), &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get_as(&other, &format!("/v1/orders/{id}/events")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let list: Value = app.get_as(&other, "/v1/orders").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    let count: Value = app
        .get_as(&other, "/v1/orders/count")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 0);
}

#[tokio::test]
async fn a_vendor_sees_and_changes_only_its_own_orders() {
    let app = spawn_app().await;
    let vendor = app.key_for(Role::Vendor).await;
    let other_vendor = app.key_for(Role::Vendor).await;
    let own = app.create_as(&vendor, &plain_order()).await;
    let theirs = app.create_as(&other_vendor, &plain_order()).await;
    let staff = app.create(&plain_order()).await;
    let list: Value = app
        .get_as(&vendor, "/v1/orders")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!(ids, [own["id"].clone()]);
    let count: Value = app
        .get_as(&vendor, "/v1/orders/count")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 1);
    for other in [&theirs, &staff] {
        let id = other["id"].as_str().unwrap();
        problem(
            app.get_as(&vendor, &format!("/v1/orders/{id}")).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            app.post_as(
                &vendor,
                &format!("/v1/orders/{id}/cancel"),
                &json!({"reason": "x"}),
            )
            .await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let creator = theirs["created_by"]["id"].as_str().unwrap();
    let list: Value = app
        .get_as(&vendor, &format!("/v1/orders?created_by={creator}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    let id = own["id"].as_str().unwrap();
    assert_eq!(
        app.post_as(&vendor, &format!("/v1/orders/{id}/confirm"), &json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    // The owner sees all three.
    let all: Value = app.get("/v1/orders/count").await.json().await.unwrap();
    assert_eq!(all["count"], 3);
}

#[tokio::test]
async fn a_viewer_reads_but_does_not_write() {
    let app = spawn_app().await;
    let viewer = app.key_for(Role::Viewer).await;
    let o = app.create(&plain_order()).await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(
        app.get_as(&viewer, &format!("/v1/orders/{id}"))
            .await
            .status(),
        StatusCode::OK
    );
    let p = problem(
        app.post_as(&viewer, "/v1/orders", &plain_order()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    says(&p, "viewer");
    problem(
        app.post_as(&viewer, &format!("/v1/orders/{id}/confirm"), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let integration = app.key_for(Role::Integration).await;
    assert_eq!(
        app.post_as(
            &integration,
            &format!("/v1/orders/{id}/confirm"),
            &json!({})
        )
        .await
        .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working() {
    let app = spawn_app().await;
    let admin = app.key_for(Role::Admin).await;
    assert_eq!(
        app.get_as(&admin, "/v1/orders").await.status(),
        StatusCode::OK
    );
    let keys = app.store.api_keys(app.tenant.id).await.unwrap();
    let admin_key = keys.iter().find(|k| k.role == Role::Admin).unwrap();
    app.store
        .revoke_api_key(app.tenant.id, admin_key.id)
        .await
        .unwrap();
    // The key cache forgets within its TTL.
    tokio::time::sleep(ordo::api::auth::KeyCache::TTL + std::time::Duration::from_millis(200))
        .await;
    problem(
        app.get_as(&admin, "/v1/orders").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(app.get("/v1/orders").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_key_under_another_tenants_name_is_refused_without_harm() {
    let app = spawn_app().await;
    // The same secret behind another tenant's id.
    let other = app.store.create_tenant("other", "Other").await.unwrap();
    let secret = app.key.rsplit('_').next().unwrap();
    let forged = format!(
        "ordo_{}_{secret}",
        other.id.ulid().to_string().to_lowercase()
    );
    problem(
        app.get_as(&forged, "/v1/orders").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // The real key is not affected by the failed attempt.
    assert_eq!(app.get("/v1/orders").await.status(), StatusCode::OK);
    problem(
        app.get_as(&forged, "/v1/orders").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
