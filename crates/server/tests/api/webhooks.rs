//! Webhook endpoints: made, read, changed, rotated and removed through the
//! API; URLs checked; secrets shown once.

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    bad_receiver, fields, problem, settle, spawn_app, spawn_app_with, verify, Receiver, TestApp,
};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn endpoints_are_made_read_changed_rotated_and_removed() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://example.com/hooks/ordo", "description": "ERP"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("whe_"));
    let secret = made["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 38,
        "{secret}"
    );
    assert_eq!(made["event_types"], json!(["*"]));
    assert_eq!(made["active"], true);
    assert_eq!(made["url"], "https://example.com/hooks/ordo");

    // Read back: everything but the secret.
    let got: Value = app
        .get(&format!("/v1/webhook-endpoints/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(got.get("secret").is_none(), "the secret is shown once");
    assert_eq!(got["description"], "ERP");
    let list: Value = app.get("/v1/webhook-endpoints").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&secret));

    // Changed.
    let r = app
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            &json!({"event_types": ["order.created", "order.cancelled", "order.created"], "description": null, "active": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(
        changed["event_types"],
        json!(["order.created", "order.cancelled"])
    );
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["active"], false);
    assert!(changed.get("secret").is_none());

    // Rotated: a new secret, the old one signing 2 more hours.
    let r = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &json!({"overlap_hours": 2}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let until = rotated["previous_secret_expires_at"].as_str().unwrap();
    let until = ordo_domain::Timestamp::parse_rfc3339(until).unwrap();
    let minutes = (until.unix_millis() - ordo_domain::Timestamp::now().unix_millis()) / 60_000;
    assert!((115..=120).contains(&minutes), "{minutes} minutes");
    // An empty body rotates with the default overlap.
    let r = app
        .client
        .post(app.url(&format!("/v1/webhook-endpoints/{id}/rotate-secret")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Another tenant cannot see it; removed, it is gone.
    let other = app.other_tenant_key().await;
    let r = app
        .get_as(&other, &format!("/v1/webhook-endpoints/{id}"))
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
    let r = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/webhook-endpoints/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get(&format!("/v1/webhook-endpoints/{id}")).await;
    problem(r, StatusCode::NOT_FOUND).await;
    let r = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/webhook-endpoints/{id}"),
        None,
    )
    .await;
    problem(r, StatusCode::NOT_FOUND).await;
    let r = app.get("/v1/webhook-endpoints/whe_nonsense").await;
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn only_owners_admins_and_integrations_manage_webhooks() {
    let app = spawn_app().await;
    for role in [Role::Vendor, Role::Viewer] {
        let key = app.key_for(role).await;
        let r = app
            .post_as(
                &key,
                "/v1/webhook-endpoints",
                &json!({"url": "https://example.com/"}),
            )
            .await;
        problem(r, StatusCode::FORBIDDEN).await;
        let r = app.get_as(&key, "/v1/webhook-endpoints").await;
        problem(r, StatusCode::FORBIDDEN).await;
    }
    for role in [Role::Admin, Role::Integration] {
        let key = app.key_for(role).await;
        let r = app
            .post_as(
                &key,
                "/v1/webhook-endpoints",
                &json!({"url": "https://example.com/"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn urls_and_event_types_are_checked() {
    let app = spawn_app().await;
    for (url, why) in [
        ("ftp://example.com/x", "scheme"),
        ("not a url", "not a URL"),
        ("http://127.0.0.1:9000/hook", "private network"),
        ("http://localhost:9000/hook", "private network"),
        ("http://169.254.169.254/latest/meta-data", "private network"),
        ("http://10.0.0.7/hook", "private network"),
        ("http://[::1]/hook", "private network"),
    ] {
        let r = app
            .post("/v1/webhook-endpoints", &json!({"url": url}))
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), ["url"], "{url}");
        assert_eq!(p["errors"][0]["value"], url);
        assert!(
            p["errors"][0]["reason"].as_str().unwrap().contains(why),
            "{url}: {p}"
        );
    }
    let r = app
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://example.com/", "event_types": ["order.created", "order.shipped"], "description": "x".repeat(501)}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["event_types[1]", "description"]);
    assert!(p["errors"][0]["accepted"]
        .as_str()
        .unwrap()
        .contains("order.confirmed"));
    let r = app
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://example.com/", "secret": "mine"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = app.post("/v1/webhook-endpoints", &json!({})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["url"]);

    let made: Value = app
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://example.com/"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = made["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            &json!({"url": "http://192.168.1.10/"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["url"]);
    let r = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &json!({"overlap_hours": 169}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["overlap_hours"]);
    // Unchanged by the refused requests.
    let got: Value = app
        .get(&format!("/v1/webhook-endpoints/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["url"], "https://example.com/");
    assert_eq!(got["previous_secret_expires_at"], Value::Null);
}

#[tokio::test]
async fn private_urls_are_allowed_when_configured() {
    let app = spawn_app_with(|c| c.webhooks.allow_private_urls = true).await;
    let r = app
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "http://127.0.0.1:9000/hook"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn events_become_deliveries_for_the_endpoints_that_want_them() {
    // The receiver holds every request longer than the test runs, so no
    // attempt ends while the deliveries are looked at (a URL on the
    // internet would fail fast or slowly depending on the machine's DNS).
    let (stall, _) = bad_receiver(None, std::time::Duration::from_secs(120)).await;
    let app = spawn_app_with(|c| {
        c.webhooks.allow_private_urls = true;
        c.webhooks.timeout_secs = 120;
    })
    .await;
    let hook = |name: &str| format!("{stall}?{name}");
    let make = |body: Value| {
        let app = &app;
        async move {
            let made = app.subscribe(&body).await;
            ordo_domain::WebhookEndpointId::parse(made["id"].as_str().unwrap()).unwrap()
        }
    };
    let all = make(json!({"url": hook("all")})).await;
    let created_only =
        make(json!({"url": hook("created"), "event_types": ["order.created"]})).await;
    let off = make(json!({"url": hook("off"), "active": false})).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(
            app.create(&crate::helpers::plain_order()).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    app.post(&format!("/v1/orders/{}/confirm", orders[0]), &json!({}))
        .await;

    let deliveries = settle(
        || async {
            app.store
                .webhook_deliveries(app.tenant.id, &Default::default())
                .await
                .unwrap()
        },
        |found| found.len() >= 7,
    )
    .await;
    assert_eq!(deliveries.len(), 7, "{deliveries:#?}");
    let to = |e| deliveries.iter().filter(|d| d.endpoint_id == e).count();
    assert_eq!((to(all), to(created_only), to(off)), (4, 3, 0));
    assert!(deliveries
        .iter()
        .all(|d| d.status == ordo_store::DeliveryStatus::Pending && d.attempts == 0));
    let confirmed = deliveries
        .iter()
        .find(|d| d.event_type == ordo_domain::EventType::OrderConfirmed)
        .unwrap();
    assert_eq!((confirmed.endpoint_id, confirmed.event_sequence), (all, 2));
    assert_eq!(confirmed.order_id.to_string(), orders[0]);
    // Each event once per endpoint.
    let mut pairs: Vec<_> = deliveries
        .iter()
        .map(|d| (d.endpoint_id, d.event_id))
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 7);

    // An endpoint made later gets only what happens after it.
    let later = make(json!({"url": hook("later")})).await;
    app.create(&crate::helpers::plain_order()).await;
    let found = settle(
        || async {
            let query = ordo_store::DeliveryQuery {
                endpoint_id: Some(later),
                ..Default::default()
            };
            app.store
                .webhook_deliveries(app.tenant.id, &query)
                .await
                .unwrap()
        },
        |found| !found.is_empty(),
    )
    .await;
    assert_eq!(found.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_until_they_succeed_and_recorded() {
    let receiver = Receiver::start(2).await;
    let app = spawn_app_with(|c| {
        c.webhooks.allow_private_urls = true;
        c.jobs.retry_initial_ms = 50;
        c.jobs.retry_max_ms = 200;
    })
    .await;
    let made = app.subscribe(&json!({"url": receiver.url})).await;
    let secret = made["secret"].as_str().unwrap().to_string();
    let order = app.create(&crate::helpers::plain_order()).await;

    let requests = settle(|| async { receiver.requests() }, |r| r.len() >= 3).await;
    assert_eq!(requests.len(), 3, "two failures, then the success");
    for (headers, body) in &requests {
        let signature = headers["ordo-signature"].to_str().unwrap();
        assert!(verify(&secret, signature, body), "{signature}");
        assert!(!verify("whsec_wrong", signature, body));
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(headers["ordo-event-id"].to_str().unwrap(), event["id"]);
        assert_eq!(event["type"], "order.created");
        assert_eq!(event["sequence"], 1);
        assert_eq!(event["tenant"], app.tenant.id.to_string());
        assert_eq!(event["data"]["id"], order["id"]);
        assert_eq!(headers["content-type"], "application/json");
    }
    assert_eq!(requests[0].1, requests[2].1, "a retry sends the same event");

    let delivery = settle(
        || async {
            app.store
                .webhook_deliveries(app.tenant.id, &Default::default())
                .await
                .unwrap()[0]
                .clone()
        },
        |d| d.status == ordo_store::DeliveryStatus::Succeeded,
    )
    .await;
    assert_eq!(delivery.status, ordo_store::DeliveryStatus::Succeeded);
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.last_status_code, Some(200));
    assert_eq!(delivery.last_error, None);
}

/// A receiver that always fails, an app that gives a delivery up after a
/// second, and an endpoint of it for `order.created`.
async fn failing_for_good() -> (Receiver, TestApp, String) {
    let receiver = Receiver::start(usize::MAX).await;
    let app = spawn_app_with(|c| {
        c.webhooks.allow_private_urls = true;
        c.jobs.retry_initial_ms = 20;
        c.jobs.retry_max_ms = 50;
        c.jobs.max_age_secs = 1;
    })
    .await;
    let made = app
        .subscribe(&json!({"url": receiver.url, "event_types": ["order.created"]}))
        .await;
    let endpoint = made["id"].as_str().unwrap().to_string();
    (receiver, app, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_keeps_failing_dies_is_listed_and_can_be_retried() {
    let (receiver, app, endpoint) = failing_for_good().await;
    let order = app.create(&crate::helpers::plain_order()).await;

    let dead_path = format!("/v1/webhook-deliveries?status=dead&endpoint_id={endpoint}");
    let page = settle(|| app.json(&dead_path), |p| p["data"][0].is_object()).await;
    let dead = page["data"][0].clone();
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["type"], "order.created");
    assert_eq!(dead["order_id"], order["id"]);
    assert_eq!(dead["last_status_code"], 500);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("was disabled"),
        "{dead}"
    );
    // Nothing got through for the maximum age: the endpoint is turned off,
    // says when and why, and new events are not sent to it.
    let ep: Value = app
        .get(&format!("/v1/webhook-endpoints/{endpoint}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ep["active"], false);
    assert!(
        ep["disabled"]["reason"]
            .as_str()
            .unwrap()
            .contains("every delivery failed"),
        "{ep}"
    );
    app.create(&crate::helpers::plain_order()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let all: Value = app
        .get(&format!("/v1/webhook-deliveries?endpoint_id={endpoint}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["data"].as_array().unwrap().len(),
        1,
        "nothing new for a disabled endpoint"
    );
    // Turned back on, it clears the disabling.
    let ep: Value = app
        .patch(
            &format!("/v1/webhook-endpoints/{endpoint}"),
            &json!({"active": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ep["active"].clone(), ep["disabled"].clone()),
        (json!(true), Value::Null)
    );
    let attempts = dead["attempts"].as_u64().unwrap();
    assert!(attempts >= 3, "retried before giving up: {attempts}");
    assert_eq!(receiver.requests().len() as u64, attempts);

    let id = dead["id"].as_str().unwrap();
    let one: Value = app
        .get(&format!("/v1/webhook-deliveries/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let log = one["attempt_log"].as_array().unwrap();
    assert_eq!(log.len() as u64, attempts);
    assert_eq!(log[0]["number"], 1);
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["response_excerpt"], "not now");
    assert!(log[0]["error"].as_str().unwrap().contains("500"));

    // Filters that match nothing, and bad ones named.
    let page: Value = app
        .get("/v1/webhook-deliveries?status=succeeded")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"], json!([]));
    let r = app
        .get("/v1/webhook-deliveries?status=lost&type=order.shipped&limit=0")
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["status", "type", "limit"]);

    // The receiver is fixed; the operator retries; it is delivered.
    receiver.recover();
    let r = app
        .post(&format!("/v1/webhook-deliveries/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let one_path = format!("/v1/webhook-deliveries/{id}");
    let done = settle(|| app.json(&one_path), |one| one["status"] == "succeeded").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"].as_u64().unwrap(), attempts + 1);
    assert_eq!(done["last_status_code"], 200);

    let r = app
        .post("/v1/webhook-deliveries/whd_nothing/retry", &json!({}))
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
    let other = app.other_tenant_key().await;
    let r = app
        .get_as(&other, &format!("/v1/webhook-deliveries/{id}"))
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_stall_refuse_or_hang_up_are_retried_and_each_failure_is_recorded() {
    use crate::helpers::closing_receiver;
    let app = spawn_app_with(|c| {
        c.webhooks.allow_private_urls = true;
        c.webhooks.timeout_secs = 1;
        c.jobs.retry_initial_ms = 50;
        c.jobs.retry_max_ms = 100;
    })
    .await;
    let (stall_url, stall_hits) = bad_receiver(None, std::time::Duration::from_secs(5)).await;
    let (gone_url, gone_hits) = bad_receiver(Some(410), std::time::Duration::ZERO).await;
    let (error_url, error_hits) = bad_receiver(Some(500), std::time::Duration::ZERO).await;
    let (close_url, close_hits) = closing_receiver().await;
    let mut endpoints = Vec::new();
    for url in [&stall_url, &gone_url, &error_url, &close_url] {
        let made = app.subscribe(&json!({"url": url})).await;
        endpoints.push(made["id"].as_str().unwrap().to_string());
    }
    app.create(&crate::helpers::plain_order()).await;

    // Each is tried at least twice, and every attempt says why it failed.
    let hits = settle(
        || async {
            [&stall_hits, &gone_hits, &error_hits, &close_hits]
                .map(|h| h.load(std::sync::atomic::Ordering::SeqCst))
        },
        |hits| hits.iter().all(|n| *n >= 2),
    )
    .await;
    assert!(hits.iter().all(|n| *n >= 2), "{hits:?}");
    let expected = [
        (None::<u64>, "no answer within 1 s"),
        (Some(410), "answered 410"),
        (Some(500), "answered 500"),
        (None, "could not deliver"),
    ];
    for (endpoint, (code, why)) in endpoints.iter().zip(expected) {
        let page: Value = app
            .get(&format!("/v1/webhook-deliveries?endpoint_id={endpoint}"))
            .await
            .json()
            .await
            .unwrap();
        let delivery = &page["data"][0];
        let id = delivery["id"].as_str().unwrap();
        let one: Value = app
            .get(&format!("/v1/webhook-deliveries/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let first = &one["attempt_log"][0];
        assert_eq!(first["status_code"].as_u64(), code, "{one}");
        assert!(first["error"].as_str().unwrap().contains(why), "{one}");
        assert_ne!(one["status"], "succeeded");
    }
    // The stalled attempt was cut off at the timeout, not waited out.
    let page: Value = app
        .get(&format!(
            "/v1/webhook-deliveries?endpoint_id={}",
            endpoints[0]
        ))
        .await
        .json()
        .await
        .unwrap();
    let id = page["data"][0]["id"].as_str().unwrap();
    let one: Value = app
        .get(&format!("/v1/webhook-deliveries/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let latency = one["attempt_log"][0]["latency_ms"].as_u64().unwrap();
    assert!((900..3000).contains(&latency), "{latency} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_of_an_endpoint_are_retried_in_bulk() {
    let (receiver, app, endpoint) = failing_for_good().await;
    let since = ordo_domain::Timestamp::now().to_rfc3339();
    for _ in 0..2 {
        app.create(&crate::helpers::plain_order()).await;
    }
    let page = settle(
        || app.json("/v1/webhook-deliveries?status=dead"),
        |p| p["data"].as_array().unwrap().len() == 2,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2, "{page}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("ordo_webhook_deliveries_total"),
        "{metrics}"
    );

    receiver.recover();
    app.patch(
        &format!("/v1/webhook-endpoints/{endpoint}"),
        &json!({"active": true}),
    )
    .await;
    let r = app
        .post(
            "/v1/webhook-deliveries/retry",
            &json!({"endpoint_id": endpoint, "created_gte": since}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["retried"], 2);
    let page = settle(
        || app.json("/v1/webhook-deliveries?status=succeeded"),
        |p| p["data"].as_array().unwrap().len() == 2,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2, "{page}");
    // Nothing failed in a range that ends before them.
    let r = app
        .post(
            "/v1/webhook-deliveries/retry",
            &json!({"endpoint_id": endpoint, "created_lt": since, "statuses": ["failed", "dead", "succeeded"]}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["retried"], 0);
    let r = app
        .post(
            "/v1/webhook-deliveries/retry",
            &json!({"endpoint_id": endpoint, "statuses": ["lost"], "created_gte": "yesterday"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["statuses[0]", "created_gte"]);
    let r = app
        .post(
            "/v1/webhook-deliveries/retry",
            &json!({"endpoint_id": "whe_01JD5Q4ZB8Y7K6M3N2P1R0S9TV"}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
}
