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
