//! `kill -9` under load loses no order that got a 2xx.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{free_port, ordo, plain_order, start, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_order() {
    let db = TestDb::new().await;
    ordo(&db, &["tenants", "create", "crash"]);
    let key = ordo(
        &db,
        &[
            "keys",
            "create",
            "--tenant",
            "crash",
            "--role",
            "integration",
        ],
    );
    assert!(
        key.starts_with("ordo_"),
        "the key is the only line on stdout: {key}"
    );
    let port = free_port();
    let mut server = start(&db, port).await;

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/orders");
    let mut workers = Vec::new();
    for w in 0..16 {
        let (client, url, key, acknowledged) = (
            client.clone(),
            url.clone(),
            key.clone(),
            Arc::clone(&acknowledged),
        );
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let mut body = plain_order();
                body["notes"] = Value::String(format!("worker {w} order {i}"));
                let Ok(r) = client.post(&url).bearer_auth(&key).json(&body).send().await else {
                    break;
                };
                if r.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(order) = r.json::<Value>().await else {
                    break;
                };
                acknowledged.lock().expect("lock").push(order);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().expect("kill -9");
    server.wait().expect("reap");
    for w in workers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 50,
        "the load was real: {} orders",
        acknowledged.len()
    );

    let mut server = start(&db, port).await;
    let mut missing = 0;
    for order in &acknowledged {
        let id = order["id"].as_str().expect("id");
        let r = client
            .get(format!("{url}/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get");
        if r.status() != StatusCode::OK {
            missing += 1;
            continue;
        }
        let stored: Value = r.json().await.expect("json");
        assert_eq!(&stored, order, "the order is intact");
    }
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged orders were lost",
        acknowledged.len()
    );
}

/// `kill -9` while deliveries are pending and in flight; after a restart,
/// every event of every acknowledged order reaches the receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_deliveries_pending_loses_no_event() {
    let receiver = crate::helpers::Receiver::start(0).await;
    let db = TestDb::new().await;
    ordo(&db, &["tenants", "create", "crash"]);
    let key = ordo(
        &db,
        &["keys", "create", "--tenant", "crash", "--role", "owner"],
    );
    let env = [
        ("ORDO_WEBHOOKS__ALLOW_PRIVATE_URLS", "true"),
        ("ORDO_JOBS__POLL_INTERVAL_MS", "20"),
        ("ORDO_JOBS__RETRY_INITIAL_MS", "50"),
        ("ORDO_JOBS__RETRY_MAX_MS", "200"),
        ("ORDO_JOBS__LEASE_SECS", "2"),
    ];
    let port = free_port();
    let mut server = crate::helpers::start_with(&db, port, &env).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let r = client
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": receiver.url, "event_types": ["order.created"]}))
        .send()
        .await
        .expect("endpoint");
    assert_eq!(r.status(), StatusCode::CREATED);

    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, url, key, acknowledged) = (
            client.clone(),
            format!("{base}/v1/orders"),
            key.clone(),
            Arc::clone(&acknowledged),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let Ok(r) = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&plain_order())
                    .send()
                    .await
                else {
                    break;
                };
                if r.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(order) = r.json::<Value>().await else {
                    break;
                };
                let id = order["id"].as_str().expect("id").to_string();
                acknowledged.lock().expect("lock").push(id);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.kill().expect("kill -9");
    server.wait().expect("reap");
    for w in workers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 50,
        "the load was real: {}",
        acknowledged.len()
    );
    let delivered_before = receiver.requests().len();
    eprintln!(
        "acknowledged {}, delivered before the kill {delivered_before}",
        acknowledged.len()
    );

    let mut server = crate::helpers::start_with(&db, port, &env).await;
    let delivered = |receiver: &crate::helpers::Receiver| -> std::collections::HashSet<String> {
        receiver
            .requests()
            .iter()
            .filter_map(|(_, body)| serde_json::from_str::<Value>(body).ok())
            .filter_map(|e| e["data"]["id"].as_str().map(str::to_string))
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = delivered(&receiver);
    while acknowledged.iter().any(|id| !seen.contains(id)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = delivered(&receiver);
    }
    server.kill().expect("kill");
    let _ = server.wait();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !seen.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged orders' events never arrived ({delivered_before} deliveries before the kill)",
        missing.len(),
        acknowledged.len()
    );
}
