use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{plain_order, problem, spawn_app};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(
        ready,
        serde_json::json!({"status": "ready", "payment_providers": []}),
        "no provider called yet"
    );
    app.create(&plain_order()).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("ordo_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/v1/orders\""));
    assert!(metrics.contains("ordo_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("ordo_orders_created_total"));
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_error() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/orders", "post"),
        ("/v1/orders", "get"),
        ("/v1/orders/count", "get"),
        ("/v1/orders/{id}", "get"),
        ("/v1/orders/{id}", "patch"),
        ("/v1/orders/external/{namespace}/{value}", "put"),
        ("/v1/orders/external/{namespace}/{value}", "get"),
        ("/v1/orders/{id}/confirm", "post"),
        ("/v1/orders/{id}/cancel", "post"),
        ("/v1/orders/{id}/complete", "post"),
        ("/v1/orders/{id}/events", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} missing");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.contains_key("401"),
            "{method} {path} does not declare 401"
        );
        assert!(
            responses.keys().any(|k| k.starts_with('4') && k != "401"),
            "{method} {path} declares no other error"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "CreateOrderRequest",
        "OrderResponse",
        "Problem",
        "OrderStatus",
        "Channel",
    ] {
        assert!(schemas.contains_key(s), "{s} missing");
    }
    let statuses: Vec<_> = schemas["OrderStatus"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "confirmed", "completed", "cancelled"]);
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "the docs page is served locally");
}

#[tokio::test]
async fn request_ids_go_in_and_out() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 26);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    let p = problem(app.get("/v2/nothing").await, StatusCode::NOT_FOUND).await;
    assert_eq!(p["type"], "/problems/no-such-route");
    let r = app
        .client
        .delete(app.url("/v1/orders"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
    let page = app
        .client
        .get(app.url("/problems/invalid-transition"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("allowed_actions"));
}

/// Background work runs on its own threads at a lower CPU priority, so a
/// saturated machine serves requests first.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn background_work_runs_at_a_lower_cpu_priority() {
    let _app = spawn_app().await;
    let ours = niceness(std::path::Path::new("/proc/thread-self")).unwrap();
    let expected = (ours + ordo::app::BACKGROUND_NICENESS).min(19);
    // A thread is seen a moment before it lowers its own priority.
    let background = crate::helpers::settle(
        || async { background_niceness() },
        |found| !found.is_empty() && found.iter().all(|&n| n == expected),
    )
    .await;
    assert!(!background.is_empty(), "no ordo-background thread");
    assert!(
        background.iter().all(|&n| n == expected),
        "background threads at {background:?}, requests at {ours}"
    );
}

/// The niceness of every `ordo-background` thread of this process.
#[cfg(target_os = "linux")]
fn background_niceness() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let task = task.ok()?.path();
            let name = std::fs::read_to_string(task.join("comm")).ok()?;
            (name.trim() == "ordo-background").then(|| niceness(&task))?
        })
        .collect()
}

/// A thread's niceness, from `/proc/.../stat` (the 19th field; the name,
/// the 2nd, is in parentheses and may hold spaces). None once it ended.
#[cfg(target_os = "linux")]
fn niceness(task: &std::path::Path) -> Option<i32> {
    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    after.split(' ').nth(16)?.parse().ok()
}
