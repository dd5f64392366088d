//! Two ordo processes on one database (on PostgreSQL: two nodes behind a
//! load balancer; on SQLite: two processes on one file) never disagree.

use futures::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{free_port, ordo, plain_order, start_with, Receiver, TestDb};

struct Nodes {
    urls: [String; 2],
    key: String,
    client: Client,
    children: Vec<std::process::Child>,
    _db: TestDb,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn two_nodes() -> Nodes {
    let db = TestDb::new().await;
    ordo(&db, &["tenants", "create", "shop"]);
    let key = ordo(
        &db,
        &["keys", "create", "--tenant", "shop", "--role", "owner"],
    );
    let (a, b) = (free_port(), free_port());
    let env = [
        ("ORDO_WEBHOOKS__ALLOW_PRIVATE_URLS", "true"),
        ("ORDO_JOBS__POLL_INTERVAL_MS", "20"),
    ];
    let children = vec![
        start_with(&db, a, &env).await,
        start_with(&db, b, &env).await,
    ];
    Nodes {
        urls: [a, b].map(|p| format!("http://127.0.0.1:{p}")),
        key,
        client: Client::new(),
        children,
        _db: db,
    }
}

impl Nodes {
    /// Node `i % 2`.
    fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.urls[i % 2])
    }

    async fn get(&self, i: usize, path: &str) -> Value {
        let r = self
            .client
            .get(self.url(i, path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn post(&self, i: usize, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(i, path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_actions_on_two_nodes_have_one_winner_and_one_timeline() {
    let nodes = two_nodes().await;
    let created: Value = nodes
        .client
        .post(nodes.url(0, "/v1/orders"))
        .bearer_auth(&nodes.key)
        .json(&plain_order())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();

    // Confirm on one node, cancel on the other, ten of each at once, all
    // against version 1: exactly one request wins.
    let attempts = (0..20).map(|i| {
        let (nodes, id) = (&nodes, &id);
        async move {
            let action = if i % 2 == 0 { "confirm" } else { "cancel" };
            let body = if action == "cancel" {
                json!({"reason": "buyer changed their mind"})
            } else {
                json!({})
            };
            let r = nodes
                .client
                .post(nodes.url(i, &format!("/v1/orders/{id}/{action}")))
                .bearer_auth(&nodes.key)
                .header("If-Match", "\"1\"")
                .json(&body)
                .send()
                .await
                .unwrap();
            (action, r.status())
        }
    });
    let results = join_all(attempts).await;
    let statuses: Vec<StatusCode> = results.iter().map(|(_, s)| *s).collect();
    assert_eq!(count(&statuses, StatusCode::OK), 1, "{results:?}");
    assert_eq!(
        count(&statuses, StatusCode::PRECONDITION_FAILED),
        19,
        "{results:?}"
    );
    let winner = results
        .iter()
        .find(|(_, s)| *s == StatusCode::OK)
        .map(|(a, _)| *a)
        .unwrap();

    // Without If-Match, shipping every unit asked of both nodes at once
    // happens once; the rest are refused: nothing is left to ship.
    let order = nodes.get(1, &format!("/v1/orders/{id}")).await;
    if winner == "confirm" {
        assert_eq!(order["status"], "confirmed");
        let completes = join_all((0..10).map(|i| {
            let (nodes, id) = (&nodes, &id);
            async move {
                nodes
                    .client
                    .post(nodes.url(i, &format!("/v1/orders/{id}/shipments")))
                    .bearer_auth(&nodes.key)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        }))
        .await;
        assert_eq!(count(&completes, StatusCode::CREATED), 1, "{completes:?}");
        assert_eq!(count(&completes, StatusCode::CONFLICT), 9, "{completes:?}");
    } else {
        assert_eq!(order["status"], "cancelled");
    }

    // Both nodes show one timeline: numbered 1, 2, … with no gap or
    // repeat, one event per version.
    let a = nodes.get(0, &format!("/v1/orders/{id}/events")).await;
    let b = nodes.get(1, &format!("/v1/orders/{id}/events")).await;
    assert_eq!(a, b);
    let events = a["data"].as_array().unwrap();
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>());
    let order = nodes.get(0, &format!("/v1/orders/{id}")).await;
    assert_eq!(order["version"].as_u64().unwrap(), events.len() as u64);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let expected: &[&str] = if winner == "confirm" {
        &["order.created", "order.confirmed", "shipment.created"]
    } else {
        &["order.created", "order.cancelled"]
    };
    assert_eq!(types, expected);
}

/// Seed 004's crash, and every order system's most reported bug: two
/// processes confirming orders for the same last units at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_on_two_nodes_never_oversell_a_hot_sku() {
    let nodes = two_nodes().await;
    let r = nodes
        .post(
            0,
            "/v1/products",
            &json!({"sku": "HOT", "name": "Limited drop", "currency": "NGN", "price": "5000.00", "on_hand": 10}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order = json!({
        "currency": "NGN",
        "buyer": {"name": "Ada Obi", "phone": "+2348012345678"},
        "items": [{"sku": "HOT", "quantity": 1}]
    });
    let ids: Vec<String> = join_all((0..100).map(|i| {
        let (nodes, order) = (&nodes, &order);
        async move {
            let r = nodes.post(i, "/v1/orders", order).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            let created: Value = r.json().await.unwrap();
            created["id"].as_str().unwrap().to_string()
        }
    }))
    .await;

    // Each order confirmed on the node the other one created it on.
    let confirms = join_all(ids.iter().enumerate().map(|(i, id)| {
        let nodes = &nodes;
        async move {
            let r = nodes
                .post(i + 1, &format!("/v1/orders/{id}/confirm"), &json!({}))
                .await;
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let statuses: Vec<StatusCode> = confirms.iter().map(|(s, _)| *s).collect();
    assert_eq!(count(&statuses, StatusCode::OK), 10, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::CONFLICT), 90, "{statuses:?}");
    for (_, body) in confirms.iter().filter(|(s, _)| *s == StatusCode::CONFLICT) {
        assert_eq!(body["type"], "/problems/insufficient-stock", "{body}");
        assert_eq!(
            body["shortages"],
            json!([{"sku": "HOT", "requested": 1, "available": 0}])
        );
    }
    for node in 0..2 {
        let product = nodes.get(node, "/v1/products/HOT").await;
        assert_eq!(
            (&product["on_hand"], &product["reserved"]),
            (&json!(10), &json!(10))
        );
        let confirmed = nodes.get(node, "/v1/orders/count?status=confirmed").await;
        assert_eq!(confirmed["count"], 10);
        let reconcile = nodes.get(node, "/v1/stock/reconcile").await;
        assert_eq!(reconcile["drift"], json!([]), "{reconcile}");
        assert_eq!(reconcile["in_balance"], true);
    }
    let movements = nodes
        .get(1, "/v1/products/HOT/stock-movements?limit=200")
        .await;
    assert_eq!(
        movements["data"].as_array().unwrap().len(),
        11,
        "the first stock and one reservation per confirmed order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_to_two_nodes_at_once_creates_one_order() {
    let nodes = two_nodes().await;
    for round in 0..3 {
        let key = format!("checkout-{round}");
        let responses = join_all((0..12).map(|i| {
            let (nodes, key) = (&nodes, &key);
            async move {
                let r = nodes
                    .client
                    .post(nodes.url(i, "/v1/orders"))
                    .bearer_auth(&nodes.key)
                    .header("Idempotency-Key", key)
                    .json(&plain_order())
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let replayed = r.headers().get("idempotent-replayed").cloned();
                (status, replayed, r.json::<Value>().await.unwrap())
            }
        }))
        .await;
        for (status, _, body) in &responses {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
        }
        let fresh = responses.iter().filter(|(_, r, _)| r.is_none()).count();
        assert_eq!(
            fresh, 1,
            "one request created the order, the rest replayed it"
        );
        let first = &responses[0].2;
        assert!(
            responses.iter().all(|(_, _, body)| body == first),
            "every response is the same order"
        );
    }
    let list = nodes.get(1, "/v1/orders?limit=100").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_nodes_each_event_is_delivered_once() {
    let receiver = Receiver::start(0).await;
    let nodes = two_nodes().await;
    let r = nodes
        .client
        .post(nodes.url(0, "/v1/webhook-endpoints"))
        .bearer_auth(&nodes.key)
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = join_all((0..60).map(|i| {
        let nodes = &nodes;
        async move {
            let o: Value = nodes
                .client
                .post(nodes.url(i, "/v1/orders"))
                .bearer_auth(&nodes.key)
                .json(&plain_order())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            o["id"].as_str().unwrap().to_string()
        }
    }))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while receiver.requests().len() < 60 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A little longer, for any duplicate to show itself.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut delivered: Vec<String> = receiver
        .requests()
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["data"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(delivered.len(), 60, "one request per event, from one node");
    delivered.sort();
    let mut expected = created;
    expected.sort();
    assert_eq!(delivered, expected);
}
