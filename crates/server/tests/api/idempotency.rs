use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{plain_order, problem, spawn_app, spawn_app_prepared, TestDb};

pub(crate) async fn post_with_key(
    app: &crate::helpers::TestApp,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/orders"))
        .bearer_auth(&app.key)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_response() {
    let app = spawn_app().await;
    let first = post_with_key(&app, "k-1", &plain_order()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body = first.text().await.unwrap();
    // Same request, keys in another order: still the same request.
    let reordered: Value =
        serde_json::from_str(&serde_json::to_string(&plain_order()).unwrap()).unwrap();
    let again = post_with_key(&app, "k-1", &reordered).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    let count: Value = app.get("/v1/orders/count").await.json().await.unwrap();
    assert_eq!(count["count"], 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    let app = spawn_app().await;
    post_with_key(&app, "k-2", &plain_order()).await;
    let mut other = plain_order();
    other["notes"] = json!("something else");
    let p = problem(
        post_with_key(&app, "k-2", &other).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["type"], "/problems/idempotency-key-reused");
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_order() {
    let app = spawn_app().await;
    let body = plain_order();
    let responses = join_all((0..25).map(|_| post_with_key(&app, "same-key", &body))).await;
    let mut ids = std::collections::BTreeSet::new();
    for r in responses {
        assert_eq!(r.status(), StatusCode::CREATED);
        let o: Value = r.json().await.unwrap();
        ids.insert(o["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1);
    let count: Value = app.get("/v1/orders/count").await.json().await.unwrap();
    assert_eq!(count["count"], 1);
}

#[tokio::test]
async fn keys_are_scoped_to_the_tenant_and_checked() {
    let app = spawn_app().await;
    post_with_key(&app, "k-3", &plain_order()).await;
    let other = app.other_tenant_key().await;
    let r = app
        .client
        .post(app.url("/v1/orders"))
        .bearer_auth(&other)
        .header("Idempotency-Key", "k-3")
        .json(&plain_order())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let long = "x".repeat(256);
    let p = problem(
        post_with_key(&app, &long, &plain_order()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
}

#[tokio::test]
async fn a_vendor_cannot_replay_another_vendors_order() {
    let app = spawn_app().await;
    let first = app.key_for(ordo_domain::Role::Vendor).await;
    let second = app.key_for(ordo_domain::Role::Vendor).await;
    let send = |key: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/orders"))
                .bearer_auth(key)
                .header("Idempotency-Key", "shared-key")
                .json(&plain_order())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(send(first.clone()).await.status(), StatusCode::CREATED);
    let replay = send(first).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let p = problem(send(second).await, StatusCode::CONFLICT).await;
    assert_eq!(p["type"], "/problems/idempotency-key-reused");
}

#[tokio::test]
async fn keys_are_forgotten_after_24_hours_by_background_work() {
    use ordo_domain::{
        Actor, Buyer, Channel, Currency, ExternalIds, LineDraft, NewOrder, Order, OrderDraft,
        Timestamp,
    };
    use ordo_store::{IdempotencyClaim, NewOrderRecord, StoredResponse};

    // A key first used 25 hours ago, as the store keeps it, there before
    // the server starts.
    let old_order = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = std::sync::Arc::clone(&old_order);
    let app = spawn_app_prepared(TestDb::new().await, |store, tenant| async move {
        let then = Timestamp::now().plus_millis(-25 * 3_600_000);
        let reference = store.next_reference(tenant.id).await.unwrap();
        let draft = OrderDraft {
            currency: Currency::parse("NGN").unwrap(),
            buyer: Buyer::parse(Some("Ada"), Some("+2348012345678"), None, None).unwrap(),
            lines: vec![LineDraft {
                sku: None,
                name: "Product A".into(),
                description: None,
                quantity: 1,
                unit_price: 500_000,
                attributes: Default::default(),
                product_id: None,
                catalog_price: None,
                instances: Vec::new(),
                tax_class: None,
                weight_grams: 0,
                tax_rate: Default::default(),
            }],
            shipping_address: None,
            billing_address: None,
            notes: None,
            external_ids: ExternalIds::new(),
            channel: Channel::Whatsapp,
            pricing: Default::default(),
        };
        let (order, event) = Order::create(
            draft,
            NewOrder {
                tenant_id: tenant.id,
                reference,
                created_by: Actor::system(),
                now: then,
            },
        )
        .unwrap();
        let id = order.id;
        store
            .insert_order(NewOrderRecord {
                order,
                event,
                actor: Actor::system(),
                notify: false,
                idempotency: Some(IdempotencyClaim {
                    key: "yesterday".into(),
                    fingerprint: [0; 32],
                    response: StoredResponse {
                        status: 201,
                        body: b"{}".to_vec(),
                        order_id: id,
                    },
                    at: then,
                }),
                rendered: None,
            })
            .await
            .unwrap();
        *seen.lock().unwrap() = Some(id);
    })
    .await;
    let id = old_order.lock().unwrap().unwrap();
    let fresh = post_with_key(&app, "fresh", &plain_order()).await;
    assert_eq!(fresh.status(), StatusCode::CREATED);

    // The hourly sweep runs at start (every 50 ms in tests until it has):
    // the old key becomes free for a new request, the fresh one does not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = post_with_key(&app, "yesterday", &plain_order()).await;
        if r.status() == StatusCode::CREATED {
            assert!(r.headers().get("idempotent-replayed").is_none());
            break;
        }
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(
            std::time::Instant::now() < deadline,
            "the old key was never forgotten"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut other = plain_order();
    other["notes"] = json!("a different request");
    let r = post_with_key(&app, "fresh", &other).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "a key used today is kept");
    // The order made with the forgotten key is still there.
    let r = app.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
}
